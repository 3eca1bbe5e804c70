//! `regmon diff OLD NEW`: the events between two hive files.
//!
//! It follows the engine's rules: a value under a key that one of the hives
//! could not read whole is neither deleted nor new (the damage hides it),
//! a partial read exits 3, and every warning names the file and the key path
//! as the events print them.

use nxconf::Record;
use regmon::baseline::{differs, MergeError, Merger};
use regmon::config::{Capture, Scope};
use regmon::event::{self, Origin, Schema};
use regmon::model::digest::DigestAlgorithm;
use regmon::model::{Change, Entry, Item, Snapshot};
use regmon::path::ident;
use regmon::path::pattern::{Excludes, Pattern, Root};
use regmon::scan::scan;
use regmon::source::{Mount, Source as HiveSource};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit status when a hive was read only in part (warnings were printed).
const PARTIAL: u8 = 3;

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

/// How the paths of a scan are shown: under `--root` as scanned, without it
/// relative to the hive root (the scan mounts the hive at `HKLM`).
struct Paths {
    mount: String,
    relative: bool,
}

impl Paths {
    fn new(opts: &Options) -> Result<Paths, String> {
        let root = opts.root.as_deref().unwrap_or(Root::Hklm.short());
        // As the scanner spells it (`HKEY_LOCAL_MACHINE` becomes `HKLM`).
        let mount = Mount::parse(root, PathBuf::new(), false)?.display();
        Ok(Paths {
            mount,
            relative: opts.root.is_none(),
        })
    }

    /// A scanned path as printed (the hive root itself is '' when relative).
    fn show<'p>(&self, path: &'p str) -> &'p str {
        if !self.relative {
            return path;
        }
        let short = Root::Hklm.short();
        match path.strip_prefix(short) {
            Some("") => "",
            Some(rest) => rest.strip_prefix('\\').unwrap_or(path),
            None => path,
        }
    }

    /// The entry with its identity relative to the hive root (the root
    /// component cut off).
    fn entry(&self, e: &Entry) -> Entry {
        let cut =
            e.id.iter()
                .position(|&b| b == ident::KEY_END)
                .map_or(0, |p| p + 1);
        Entry {
            id: e.id[cut..].to_vec(),
            ..e.clone()
        }
    }

    fn change(&self, c: &Change) -> Change {
        if !self.relative {
            return c.clone();
        }
        match c {
            Change::New(e) => Change::New(self.entry(e)),
            Change::Delete(e) => Change::Delete(self.entry(e)),
            Change::Changed { old, new } => Change::Changed {
                old: self.entry(old),
                new: self.entry(new),
            },
            Change::NewKey(_) | Change::DeleteKey(_) => c.clone(),
        }
    }

    /// A scanner warning (`PATH: problem`) as `FILE: key 'PATH': problem`;
    /// warnings that already name the file (replay, open) are kept as they are.
    fn warning(&self, file: &Path, w: &str) -> String {
        let m = &self.mount;
        let at_mount = w.len() >= m.len()
            && w.is_char_boundary(m.len())
            && w[..m.len()].eq_ignore_ascii_case(m)
            && matches!(w.as_bytes().get(m.len()), Some(b'\\' | b':'));
        match w.split_once(": ").filter(|_| at_mount) {
            Some((path, problem)) => {
                format!("{}: key '{}': {problem}", file.display(), self.show(path))
            }
            None => w.to_string(),
        }
    }
}

fn whole_hive(file: &Path, opts: &Options, paths: &Paths) -> Result<Snapshot, String> {
    let mount = Mount::parse(&paths.mount, file.to_path_buf(), opts.use_logs)?;
    let pattern = Pattern::parse(&format!("{}\\*", mount.display()))?;
    let scope = Scope {
        patterns: vec![pattern],
        excludes: Excludes::default(),
        recursive: true,
        view64: true,
        both_views: false,
        user: None,
        exclude_classes: false,
        digest: opts.digest,
        source: HiveSource::Hives(vec![mount]),
        capture: opts.report_data.map(|max| Capture {
            max,
            never: Excludes::default(),
        }),
        key_events: false,
        incremental: false,
        pace: Default::default(),
        hints: None,
    };
    let snap = scan(&scope, 0);
    if !snap.failed_mounts.is_empty() {
        return Err(snap.warnings.join("; "));
    }
    for w in &snap.warnings {
        warn(&paths.warning(file, w));
    }
    Ok(snap)
}

/// Warnings go straight to stderr (no log formatting, so no colour codes);
/// a closed stderr is no reason to fail.
fn warn(msg: &str) {
    let _ = writeln!(std::io::stderr(), "regmon: warning: {msg}");
}

/// The changes from `old` to `new` by the engine's rules: no DELETE under a
/// key the new hive could not read, no NEW under one the old hive could not.
fn changes(old: &Snapshot, new: Snapshot) -> Result<Vec<Change>, String> {
    let mut items = new.entries.into_iter().map(Item::Entry);
    let mut m = Merger::new(&mut items, new.unreadable);
    let disorder = |e: MergeError| format!("comparing the hives: {e}");
    for o in &old.entries {
        m.old(&o.id, |n| Ok(!differs(o, n)), || Ok(o.clone()))
            .map_err(disorder)?;
    }
    let (mut changes, _) = m.finish().map_err(disorder)?;
    if !old.unreadable.is_empty() {
        changes
            .retain(|c| !matches!(c, Change::New(e) if ident::under_any(&old.unreadable, &e.id)));
    }
    Ok(changes)
}

/// Without `--root` there is no hive name: event.rs splits `registry.hive`
/// off the front of the key path, so the ECS location fields are set here.
fn relative_ecs(r: &mut Record, c: &Change) {
    let e = match c {
        Change::New(e) | Change::Delete(e) | Change::Changed { new: e, .. } => e,
        Change::NewKey(_) | Change::DeleteKey(_) => return,
    };
    let (keys, name) = e.parts();
    r.remove("registry.hive");
    r.set("registry.key", ident::display_key(&keys).as_str());
    r.set("registry.value", ident::display_value_name(&name).as_ref());
}

pub fn run(opts: &Options) -> Result<ExitCode, String> {
    let paths = Paths::new(opts)?;
    let old = whole_hive(&opts.old, opts, &paths)?;
    let new = whole_hive(&opts.new, opts, &paths)?;
    let partial = [&old, &new]
        .iter()
        .any(|s| !s.warnings.is_empty() || !s.unreadable.is_empty());
    let code = if partial {
        ExitCode::from(PARTIAL)
    } else {
        ExitCode::SUCCESS
    };
    let changes = changes(&old, new)?;
    let host = event::short_hostname();
    let src = Origin {
        hostname: &host,
        module_name: "diff",
        digest: opts.digest,
        report_data: opts.report_data.is_some(),
        schema: opts.schema,
    };
    let now = chrono::Utc::now();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut written = Ok(());
    for c in &changes {
        let c = paths.change(c);
        let mut r = event::record(&c, &src, now);
        if paths.relative && opts.schema == Schema::Ecs {
            relative_ecs(&mut r, &c);
        }
        written = writeln!(out, "{}", r.to_json());
        if written.is_err() {
            break;
        }
    }
    match written.and_then(|()| out.flush()) {
        Ok(()) => Ok(code),
        // The reader went away (`| head`): nothing more to say.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(code),
        Err(e) => Err(format!("writing output: {e}")),
    }
}
