//! `regmon -c FILE --verify`: what regmon will do with each part of a
//! configuration, on stdout, for people (aligned columns) and for tests
//! (a stable order, nothing from the machine or the clock). The format is
//! documented in the README ("Checking a configuration").

use nxconf::{Config, Location, Route, Status};
use std::fmt::Write as _;

/// The report of a configuration that loaded and whose runtime was built.
pub fn report(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Configuration: {}\n", config.path);

    out.push_str("Module instances (file order):\n");
    let rows = config
        .instances
        .iter()
        .map(|i| {
            vec![
                i.kind.block_name().to_string(),
                i.name.clone(),
                i.module.clone(),
                i.location.to_string(),
                status(&i.status),
            ]
        })
        .collect();
    table(
        &mut out,
        &["KIND", "NAME", "MODULE", "WHERE", "STATUS"],
        rows,
    );

    out.push_str("\nRoutes regmon runs:\n");
    let rows = config
        .routes
        .iter()
        .map(|r| vec![r.name.clone(), path(r), r.location.to_string()])
        .collect();
    table(&mut out, &["NAME", "PATH", "WHERE"], rows);

    out.push_str("\nRoutes dropped:\n");
    let rows = config
        .dropped_routes
        .iter()
        .map(|(r, why)| vec![r.name.clone(), path(r), r.location.to_string(), why.clone()])
        .collect();
    table(&mut out, &["NAME", "PATH", "WHERE", "REASON"], rows);

    out.push_str("\nim_regmon inputs:\n");
    let mut any = false;
    for m in &config.modules {
        let Some(rm) = m.im_regmon() else { continue };
        if any {
            out.push('\n');
        }
        any = true;
        let _ = writeln!(out, "  {} ({})", m.name, m.location);
        let mut lines: Vec<(&str, String)> = Vec::new();
        lines.extend(
            rm.reg_values
                .iter()
                .map(|p| ("RegValue", p.pattern.clone())),
        );
        lines.extend(rm.excludes.iter().map(|p| ("Exclude", p.pattern.clone())));
        for h in &rm.hive_files {
            let logs = if h.no_logs { " (NoLogs)" } else { "" };
            lines.push(("HiveFile", format!("{} = {}{logs}", h.key, h.path)));
        }
        if let Some(w) = &rm.windows_image {
            lines.push(("WindowsImage", w.pattern.clone()));
        }
        if let Some(u) = &rm.user {
            lines.push(("User", u.pattern.clone()));
        }
        lines.push(("Recursive", upper(rm.recursive)));
        lines.push((
            "ScanInterval",
            match rm.scan_interval {
                0 => "0 (start_scan() only)".to_string(),
                n => n.to_string(),
            },
        ));
        let defaults = nxconf::ImRegmon::default();
        if rm.digest != defaults.digest {
            lines.push(("Digest", rm.digest.config_name().to_string()));
        }
        for (key, value, default) in [
            ("64BitView", rm.view_64bit, defaults.view_64bit),
            ("Realtime", rm.realtime, defaults.realtime),
            ("ReportData", rm.report_data, defaults.report_data),
            ("KeyEvents", rm.key_events, defaults.key_events),
            (
                "ExcludeClasses",
                rm.exclude_classes,
                defaults.exclude_classes,
            ),
        ] {
            if value != default {
                lines.push((key, upper(value)));
            }
        }
        // How hard the scans push (our extensions).
        if let Some(n) = rm.scan_rate {
            lines.push(("ScanRate", format!("{n} values/s")));
        }
        if rm.low_priority {
            lines.push(("LowPriority", upper(true)));
        }
        if rm.incremental {
            lines.push(("Incremental", upper(true)));
            lines.push((
                "FullScanInterval",
                match rm.full_scan_interval {
                    0 => "0 (full rehash at start only)".to_string(),
                    n => n.to_string(),
                },
            ));
        }
        let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in lines {
            let _ = writeln!(out, "    {k:width$}  {v}");
        }
    }
    if !any {
        out.push_str("  (none)\n");
    }

    out.push_str("\nNotes:\n");
    let mut notes: Vec<&nxconf::Note> = config.notes.iter().collect();
    let rank = file_ranks(config);
    notes.sort_by_key(|n| (rank(&n.location), n.location.line));
    let rows = notes
        .iter()
        .map(|n| {
            vec![
                n.location.to_string(),
                n.level.as_str().to_string(),
                n.message.clone(),
            ]
        })
        .collect();
    table(&mut out, &["WHERE", "LEVEL", "MESSAGE"], rows);

    let inputs = config
        .modules
        .iter()
        .filter(|m| m.im_regmon().is_some())
        .count();
    let _ = writeln!(
        out,
        "\n{}: configuration is valid: regmon runs {inputs} im_regmon input(s) faithfully",
        config.path
    );
    out
}

fn status(s: &Status) -> String {
    match s {
        Status::Runs => "RUNS".into(),
        Status::NoEffect(why) => format!("NO EFFECT ({why})"),
        Status::LeftToNxlog(why) => format!("LEFT TO NXLOG ({why})"),
    }
}

fn upper(b: bool) -> String {
    if b { "TRUE" } else { "FALSE" }.into()
}

/// `in1, in2 => proc => out1, out2`.
fn path(r: &Route) -> String {
    let mut stages = vec![r.inputs.join(", ")];
    stages.extend(r.processors.iter().cloned());
    stages.push(r.outputs.join(", "));
    stages.join(" => ")
}

/// Notes sort by file (the main file first, then included files in the
/// order their first note appears), then by line.
fn file_ranks(config: &Config) -> impl Fn(&Location) -> usize + '_ {
    let mut files: Vec<&str> = vec![config.path.as_str()];
    for n in &config.notes {
        if !files.contains(&n.location.file.as_str()) {
            files.push(&n.location.file);
        }
    }
    move |l: &Location| {
        files
            .iter()
            .position(|f| *f == l.file)
            .unwrap_or(usize::MAX)
    }
}

/// Rows under a header, each column as wide as its widest cell plus two
/// spaces; no trailing spaces; `(none)` for no rows.
fn table(out: &mut String, header: &[&str], rows: Vec<Vec<String>>) {
    if rows.is_empty() {
        out.push_str("  (none)\n");
        return;
    }
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in std::iter::once(&head).chain(&rows) {
        let mut line = String::from("  ");
        for (c, w) in r.iter().zip(&widths) {
            line.push_str(c);
            let pad = w.saturating_sub(c.chars().count()) + 2;
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn report_of_a_mixed_configuration() {
        let text = "\
Panic Soft
<Extension json>
    Module xm_json
</Extension>
<Input eventlog>
    Module im_msvistalog
</Input>
<Input regmon>
    Module im_regmon
    RegValue 'HKLM\\Software\\Policies\\*'
    Exclude 'HKLM\\Software\\Policies\\Microsoft\\*'
    HiveFile 'HKLM\\SOFTWARE' 'hives/SOFTWARE' NoLogs
    Recursive TRUE
    ScanInterval 60
    Digest sha256
</Input>
<Output file>
    Module om_file
    File 'out.log'
</Output>
<Output nxfile>
    Module om_file
    File 'nx.log'
</Output>
<Route events>
    Path eventlog => nxfile
</Route>
<Route registry>
    Path regmon => file
</Route>
";
        let cfg = nxconf::parse_str(text, "r.conf").unwrap_or_else(|e| panic!("{e}"));
        let want = "\
Configuration: r.conf

Module instances (file order):
  KIND       NAME      MODULE         WHERE      STATUS
  Extension  json      xm_json        r.conf:2   RUNS
  Input      eventlog  im_msvistalog  r.conf:5   LEFT TO NXLOG (regmon runs im_regmon inputs only; this input is left to NXLog)
  Input      regmon    im_regmon      r.conf:8   RUNS
  Output     file      om_file        r.conf:17  RUNS
  Output     nxfile    om_file        r.conf:21  LEFT TO NXLOG (only routes regmon does not run reach it)

Routes regmon runs:
  NAME      PATH            WHERE
  registry  regmon => file  r.conf:28

Routes dropped:
  NAME    PATH                WHERE      REASON
  events  eventlog => nxfile  r.conf:25  its inputs are left to NXLog (eventlog)

im_regmon inputs:
  regmon (r.conf:8)
    RegValue      HKLM\\Software\\Policies\\*
    Exclude       HKLM\\Software\\Policies\\Microsoft\\*
    HiveFile      HKLM\\SOFTWARE = hives/SOFTWARE (NoLogs)
    Recursive     TRUE
    ScanInterval  60
    Digest        sha256

Notes:
  WHERE      LEVEL    MESSAGE
  r.conf:1   INFO     Panic has no effect in regmon
  r.conf:6   WARNING  regmon runs im_regmon inputs only; this input is left to NXLog
  r.conf:26  WARNING  route 'events' is dropped: its inputs are left to NXLog (eventlog)

r.conf: configuration is valid: regmon runs 1 im_regmon input(s) faithfully
";
        assert_eq!(super::report(&cfg), want);
    }
}
