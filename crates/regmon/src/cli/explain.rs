//! `regmon -c FILE --explain`: each im_regmon input scanned as a run would
//! scan it (hive files, or the live registry), and what each `RegValue`
//! pattern covers (counts and a sample of keys), what each `Exclude` rule
//! pruned, the scan's cost, and the patterns that match nothing with the
//! nearest existing key. Writes nothing: no baseline, no outbox, no log
//! file (like `--verify`). The format is documented in the README ("What
//! exactly is watched").

use regmon::runtime::coverage::{bytes, explain_zero, unknown};
use regmon::runtime::Runtime;
use regmon::source::Source;
use std::fmt::Write as _;
use std::process::ExitCode;

/// Prints the report; exit 0 when every pattern of every input matches
/// something and every hive could be read, 1 otherwise.
pub fn run(rt: &Runtime) -> ExitCode {
    let (text, ok) = report(rt);
    print!("{text}");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The report, and whether every pattern matched something.
fn report(rt: &Runtime) -> (String, bool) {
    let mut out = String::new();
    let (mut patterns, mut empty, mut failed) = (0usize, 0usize, 0usize);
    for (i, inp) in rt.inputs.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let scope = &inp.scope;
        let from = match &scope.source {
            Source::Live => "the live registry".to_string(),
            _ => {
                let list: Vec<String> = scope
                    .mounts()
                    .iter()
                    .map(|m| format!("{} = {}", m.display(), m.file.display()))
                    .collect();
                format!("hive files {}", list.join(", "))
            }
        };
        let _ = writeln!(
            out,
            "Input '{}' ({}): {from}; Recursive {}",
            inp.name,
            rt.input_location(i),
            if scope.recursive { "TRUE" } else { "FALSE" }
        );
        let started = std::time::Instant::now();
        let (snap, values, data) = rt.dry_scan(i);
        let took = started.elapsed().as_secs_f64();
        for n in &snap.notes {
            let _ = writeln!(out, "  note: {n}");
        }
        for w in &snap.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
        for m in &snap.failed_mounts {
            failed += 1;
            let _ = writeln!(out, "  ERROR: the hive mounted at {m} could not be read");
        }
        let locations = rt.pattern_locations(i);
        for (k, p) in scope.patterns.iter().enumerate() {
            patterns += 1;
            let at = match locations.get(k).cloned().flatten() {
                Some(l) => format!(" ({l})"),
                None => String::new(),
            };
            let _ = writeln!(out, "  RegValue '{}'{at}", p.text);
            let Some(c) = snap.coverage.get(k) else {
                let _ = writeln!(out, "    not counted");
                continue;
            };
            if c.values == 0 && unknown(p, &snap) {
                let _ = writeln!(out, "    not counted: a key on its way could not be read");
                continue;
            }
            if c.values == 0 {
                empty += 1;
                let _ = writeln!(
                    out,
                    "    WARNING: matches nothing: {}",
                    explain_zero(scope, p, c)
                );
                continue;
            }
            let _ = writeln!(
                out,
                "    covers {} keys, {} values ({})",
                c.keys,
                c.values,
                bytes(c.bytes)
            );
            let shown = if (c.sample.len() as u64) < c.keys {
                format!("first {} of {}", c.sample.len(), c.keys)
            } else {
                "all".to_string()
            };
            let _ = writeln!(out, "    keys ({shown}):");
            for s in &c.sample {
                let _ = writeln!(out, "      {s}");
            }
        }
        for (k, (text, at)) in rt.exclude_rules(i).iter().enumerate() {
            let _ = match snap.pruned.get(k) {
                Some(p) if p.keys > 0 || p.values > 0 => writeln!(
                    out,
                    "  Exclude '{text}' ({at}): pruned {} keys (with their subtrees), {} values",
                    p.keys, p.values
                ),
                Some(_) => writeln!(
                    out,
                    "  Exclude '{text}' ({at}): pruned nothing (a typo, or nothing there to exclude)"
                ),
                None => writeln!(out, "  Exclude '{text}' ({at}): not counted"),
            };
        }
        let walked: u64 = snap.coverage.iter().map(|c| c.keys).sum();
        let _ = writeln!(
            out,
            "  Scan: {walked} keys, {values} values ({}) in {took:.3} s",
            bytes(data)
        );
    }
    let ok = empty == 0 && failed == 0;
    let _ = match (empty, failed) {
        (0, 0) => writeln!(
            out,
            "\n{}: every RegValue pattern ({patterns}) matches something",
            rt.config_path()
        ),
        _ => writeln!(
            out,
            "\n{}: {empty} of {patterns} RegValue patterns match nothing; {failed} hive(s) could not be read",
            rt.config_path()
        ),
    };
    (out, ok)
}
