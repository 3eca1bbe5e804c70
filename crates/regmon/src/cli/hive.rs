//! `regmon hive dump` and `regmon hive stats`.

use hive::replay::ReplayReport;
use hive::{json_escape_units, walk, HiveFile, Key, Step};
use sha1::{Digest, Sha1};
use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

/// Exit status when the hive was read only in part (warnings were printed).
const PARTIAL: u8 = 3;

fn open(path: &Path, use_logs: bool) -> Result<(HiveFile, Option<ReplayReport>), String> {
    let o = regmon::source::hivefile::open(path, use_logs)?;
    if let Some(r) = &o.replay {
        for w in &r.warnings {
            eprintln!("regmon: warning: {w}");
        }
    }
    Ok((o.file, o.replay))
}

/// Appends the JSON-escaped path of `chain` (root excluded), losslessly.
fn push_path(chain: &[Key<'_>], out: &mut String) {
    for (i, k) in chain.iter().skip(1).enumerate() {
        if i > 0 {
            out.push_str("\\\\");
        }
        json_escape_units(k.name().units(), out);
    }
}

fn warn(path: &Path, chain: &[Key<'_>], e: impl std::fmt::Display) {
    eprintln!(
        "regmon: warning: {}: key '{}': {e}",
        path.display(),
        hive::path_lossy(chain)
    );
}

pub fn dump(path: &Path, use_logs: bool) -> Result<ExitCode, String> {
    let (file, _) = open(path, use_logs)?;
    let hive = file
        .hive()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    for w in hive.warnings() {
        eprintln!("regmon: warning: {}: {w}", path.display());
    }
    let root = hive
        .root()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut warnings = 0usize;
    let mut line = String::with_capacity(256);
    let mut key_json = String::with_capacity(256);
    let mut io_err = None;
    walk(root, hive.cells().bins_len(), |step| {
        let chain = match step {
            Step::Key(c) => c,
            Step::Warning(chain, e) => {
                warnings += 1;
                warn(path, chain, e);
                return;
            }
        };
        let key = chain[chain.len() - 1];
        key_json.clear();
        push_path(chain, &mut key_json);
        let values = match key.values() {
            Ok(v) => v,
            Err(e) => {
                warnings += 1;
                warn(path, chain, e);
                return;
            }
        };
        for v in values {
            let v = match v {
                Ok(v) => v,
                Err(e) => {
                    warnings += 1;
                    warn(path, chain, e);
                    continue;
                }
            };
            let data = match v.data() {
                Ok(d) => d,
                Err(e) => {
                    warnings += 1;
                    warn(path, chain, format!("value '{}': {e}", v.name()));
                    continue;
                }
            };
            line.clear();
            line.push_str("{\"key\":\"");
            line.push_str(&key_json);
            line.push_str("\",\"name\":\"");
            json_escape_units(v.name().units(), &mut line);
            line.push_str("\",\"type\":");
            let t = v.value_type();
            match t.name() {
                Some(n) => {
                    let _ = write!(line, "\"{n}\"");
                }
                None => {
                    let _ = write!(line, "{}", t.0);
                }
            }
            let _ = write!(line, ",\"size\":{},\"sha1\":\"", data.len());
            push_hex(&Sha1::digest(&data), &mut line);
            line.push_str("\"}\n");
            if io_err.is_none() {
                if let Err(e) = out.write_all(line.as_bytes()) {
                    io_err = Some(e);
                }
            }
        }
    });
    if let Some(e) = io_err.or_else(|| out.flush().err()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Ok(ExitCode::SUCCESS);
        }
        return Err(format!("writing output: {e}"));
    }
    Ok(if warnings > 0 {
        ExitCode::from(PARTIAL)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn push_hex(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
}

pub fn stats(path: &Path, use_logs: bool) -> Result<ExitCode, String> {
    let (file, replay) = open(path, use_logs)?;
    let hive = file
        .hive()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let base = hive.base_block().clone();
    let mut warnings: Vec<String> = hive.warnings().to_vec();
    let (mut keys, mut values) = (0u64, 0u64);
    match hive.root() {
        Ok(root) => walk(root, hive.cells().bins_len(), |step| {
            let chain = match step {
                Step::Key(c) => c,
                Step::Warning(chain, e) => {
                    warnings.push(format!("key '{}': {e}", hive::path_lossy(chain)));
                    return;
                }
            };
            keys += 1;
            match chain[chain.len() - 1].values() {
                Ok(vs) => {
                    for v in vs {
                        match v {
                            Ok(_) => values += 1,
                            Err(e) => {
                                warnings.push(format!("key '{}': {e}", hive::path_lossy(chain)))
                            }
                        }
                    }
                }
                Err(e) => warnings.push(format!("key '{}': {e}", hive::path_lossy(chain))),
            }
        }),
        Err(e) => warnings.push(e.to_string()),
    }
    // Dirty describes the file on disk; the state says whether logs fixed it.
    let dirty = replay.as_ref().map_or(base.is_dirty(), |r| r.dirty);
    let state = match &replay {
        Some(r) if r.entries_applied > 0 => "recovered",
        _ if dirty => "dirty",
        _ => "clean",
    };
    let mut s = String::new();
    s.push('{');
    s.push_str("\"file\":\"");
    json_str(&path.display().to_string(), &mut s);
    let _ = write!(
        s,
        "\",\"keys\":{keys},\"values\":{values},\"version\":\"{}\",\"dirty\":{},\"state\":\"{}\",\"primary_seq\":{},\"secondary_seq\":{},\"checksum_ok\":{},\"file_type\":{},\"hive_bins_size\":{},\"root_name\":\"",
        base.version(),
        dirty,
        state,
        base.primary_seq,
        base.secondary_seq,
        base.checksum_ok,
        base.file_type,
        base.bins_size,
    );
    if let Ok(root) = hive.root() {
        json_escape_units(root.name().units(), &mut s);
    }
    s.push_str("\",\"embedded_name\":\"");
    json_str(&base.file_name, &mut s);
    s.push_str("\",\"replay\":");
    match &replay {
        None => s.push_str("null"),
        Some(r) => {
            let _ = write!(
                s,
                "{{\"format\":\"{}\",\"entries\":{},\"first_seq\":{},\"last_seq\":{},\"pages\":{},\"bytes\":{},\"logs\":[",
                r.format,
                r.entries_applied,
                r.first_seq.map_or("null".into(), |v| v.to_string()),
                r.last_seq.map_or("null".into(), |v| v.to_string()),
                r.pages_applied,
                r.bytes_applied,
            );
            for (i, l) in r.logs_used.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push('"');
                json_str(l, &mut s);
                s.push('"');
            }
            s.push_str("]}");
            warnings.extend(r.warnings.iter().cloned());
        }
    }
    s.push_str(",\"warnings\":[");
    for (i, w) in warnings.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('"');
        json_str(w, &mut s);
        s.push('"');
    }
    s.push_str("]}");
    // println! would panic on a closed pipe; a reader that left wants no more.
    match writeln!(std::io::stdout(), "{s}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(format!("writing output: {e}"))
        }
        _ => {}
    }
    for w in &warnings {
        eprintln!("regmon: warning: {}: {w}", path.display());
    }
    Ok(if warnings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(PARTIAL)
    })
}

fn json_str(s: &str, out: &mut String) {
    for c in s.chars() {
        hive::json_escape_char(c, out);
    }
}
