//! `regmon diff OLD NEW`: the events between two hive files.

use crate::baseline::{merge, Change};
use crate::digest::DigestAlgorithm;
use crate::event::{self, Schema, Source};
use crate::pattern::{Excludes, Pattern};
use crate::scan::{scan, Entry, Mount, Scope, Snapshot};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub struct Options {
    pub old: PathBuf,
    pub new: PathBuf,
    /// Registry path the hives stand for (e.g. `HKLM\SOFTWARE`); none = paths
    /// relative to the hive root.
    pub root: Option<String>,
    pub digest: DigestAlgorithm,
    pub use_logs: bool,
    /// Add `$Value` / `$PrevValue` (up to this many bytes each).
    pub report_data: Option<usize>,
    pub schema: Schema,
}

fn whole_hive(file: &Path, opts: &Options) -> Result<Snapshot, String> {
    let (root, digest, use_logs) = (&opts.root, opts.digest, opts.use_logs);
    let mount_path = root.clone().unwrap_or_else(|| "HKLM".into());
    let mount = Mount::parse(&mount_path, file.to_path_buf(), use_logs)?;
    let pattern = Pattern::parse(&format!("{}\\*", mount.display()))?;
    let scope = Scope {
        patterns: vec![pattern],
        excludes: Excludes::default(),
        recursive: true,
        view64: true,
        digest,
        mounts: vec![mount],
        capture: opts.report_data.map(|max| crate::scan::Capture {
            max,
            never: Excludes::default(),
        }),
        key_events: false,
    };
    let snap = scan(&scope, 0);
    if !snap.failed_mounts.is_empty() {
        return Err(snap.warnings.join("; "));
    }
    for w in &snap.warnings {
        tracing::warn!("{w}");
    }
    Ok(snap)
}

pub fn run(opts: &Options) -> Result<ExitCode, String> {
    let old = whole_hive(&opts.old, opts)?;
    let new = whole_hive(&opts.new, opts)?;
    let changes = merge(&old.entries, new.entries);
    let host = event::short_hostname();
    let src = Source {
        hostname: &host,
        module_name: "diff",
        digest: opts.digest,
        report_data: opts.report_data.is_some(),
        schema: opts.schema,
    };
    let now = chrono::Utc::now();
    let strip = opts.root.is_none();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for c in &changes {
        let c = if strip { relabel(c) } else { c.clone() };
        let r = event::record(&c, &src, now);
        if let Err(e) = writeln!(out, "{}", r.to_json()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(format!("writing output: {e}"));
        }
    }
    out.flush().map_err(|e| format!("writing output: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

fn relabel(c: &Change) -> Change {
    // Names relative to the hive root: the identity without its root.
    let f = |e: &Entry| {
        let cut =
            e.id.iter()
                .position(|&b| b == crate::ident::KEY_END)
                .map_or(0, |p| p + 1);
        Entry {
            id: e.id[cut..].to_vec(),
            ..e.clone()
        }
    };
    match c {
        Change::New(e) => Change::New(f(e)),
        Change::Delete(e) => Change::Delete(f(e)),
        Change::Changed { old, new } => Change::Changed {
            old: f(old),
            new: f(new),
        },
        Change::NewKey(_) | Change::DeleteKey(_) => c.clone(),
    }
}
