//! Opening a hive file for reading: a safe open (a checked read into memory;
//! see `hive::HiveFile::open`), or the in-memory result of replaying its
//! transaction logs when it is dirty. The user's files are never written.

use hive::replay::{self, LogFile, ReplayReport};
use hive::HiveFile;
use std::path::Path;

/// An opened hive and what was done to read it.
pub struct Opened {
    pub file: HiveFile,
    /// Set when the hive was dirty and logs were looked for.
    pub replay: Option<ReplayReport>,
}

/// Opens `path`; when the hive is dirty and `use_logs` holds, applies the
/// `.LOG1` / `.LOG2` / `.LOG` files found beside it.
pub fn open(path: &Path, use_logs: bool) -> Result<Opened, String> {
    let named = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let f = HiveFile::open(path).map_err(|e| named(&e))?;
    // Check the base block now so a broken file fails here, with its name.
    f.hive().map_err(|e| named(&e))?;
    if !use_logs || !replay::is_dirty(f.bytes()) {
        return Ok(Opened {
            file: f,
            replay: None,
        });
    }
    let paths = replay::find_logs(path);
    let mut datas = Vec::new();
    let mut unreadable = Vec::new();
    for p in &paths {
        // Logs are read with the same care as the hive: bounded, and
        // refused if they change while read.
        match hive::file::read_stable(p, |_| hive::file::MAX_HIVE_FILE) {
            Ok(d) => datas.push((p.display().to_string(), d)),
            // A log being written means the hive is too: not read this time.
            Err(e @ hive::file::ReadError::Changed(_)) => {
                return Err(format!("{}: {e}", p.display()))
            }
            Err(e) => unreadable.push(format!("{}: {e}", p.display())),
        }
    }
    let logs: Vec<LogFile<'_>> = datas
        .iter()
        .map(|(name, data)| LogFile {
            name: name.clone(),
            data,
        })
        .collect();
    let r = replay::replay(f.bytes(), &logs).map_err(|e| named(&e))?;
    let mut report = r.report;
    report.warnings.extend(unreadable);
    if paths.is_empty() {
        report
            .notes
            .push("dirty hive, no transaction logs beside it: reading the primary alone".into());
    }
    let file = if r.data.as_slice() != f.bytes() {
        HiveFile::from_bytes(r.data)
    } else {
        f
    };
    Ok(Opened {
        file,
        replay: Some(report),
    })
}

/// One-line summary of a replay for logs and warnings.
pub fn describe(r: &ReplayReport) -> String {
    match (r.first_seq, r.last_seq) {
        (Some(a), Some(b)) => format!(
            "replayed {} {} log entries (sequence {a}-{b}, {} pages) from {}",
            r.entries_applied,
            r.format,
            r.pages_applied,
            r.logs_used.join(", ")
        ),
        _ => "dirty hive: no log entries applied".into(),
    }
}
