//! A scan: the values an input's scope covers, each with its type, size and
//! digest, read from the hive files mounted under registry paths.
//!
//! The registry a scan sees is a virtual tree: the predefined roots, the
//! mount points of `HiveFile` (e.g. `HKLM\SOFTWARE`) and, below each, the
//! mounted hive's keys. Patterns resolve through it component by component;
//! `Recursive` walks whole subtrees; `Exclude` prunes keys and values.
//!
//! The scanner does not know where keys come from: a backend gives it
//! [`RegKey`]s (offline hive keys here, live registry keys on Windows).

use crate::digest::{Digest, DigestAlgorithm};
use crate::ident;
use crate::pattern::{Excludes, Pattern, Root};
use crate::wow64;
use hive::{Hive, HiveFile, Key};
use std::collections::HashSet;
use std::path::PathBuf;

/// Subkeys with their names (as text), or the error for one entry.
pub type Children<K> = Vec<Result<(String, K), String>>;

/// What [`RegKey::for_each_value`] hands over per value: the name as text
/// ("" = the default value), the exact name (WTF-8) when the text is not
/// exactly it (an unpaired surrogate), the type and the data.
pub type ValueFn<'f> = dyn FnMut(&str, Option<&[u8]>, u32, &[u8]) + 'f;

/// A registry key as a backend presents it to the scanner. Problems are
/// returned as text naming what failed; the scanner adds the key path.
pub trait RegKey: Sized {
    /// The subkeys with their names as stored. Entries that cannot be read
    /// come as errors; the others still come.
    fn subkeys(&self, path: &[String]) -> Result<Children<Self>, String>;
    /// The subkey named `name` (case-insensitive).
    fn subkey(&self, name: &str, path: &[String]) -> Result<Option<(String, Self)>, String>;
    /// Calls `f` for each value (see [`ValueFn`]).
    fn for_each_value(
        &self,
        f: &mut ValueFn<'_>,
        warn: &mut dyn FnMut(String),
    ) -> Result<(), String>;
    /// The key's exact name (WTF-8) when the text the backend gave for it
    /// is not exactly it (an unpaired surrogate shown as U+FFFD).
    fn exact_name(&self) -> Option<Vec<u8>> {
        None
    }
    /// A stable identity for cycle detection, when the backend has one.
    fn identity(&self) -> Option<(usize, u64)>;
    /// Last-written time (FILETIME), when the backend knows it.
    fn last_written(&self) -> Option<u64> {
        None
    }
}

/// One value as a scan found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The value's identity: its key path and name exactly as stored (see
    /// [`crate::ident`]); scans and the baseline are ordered by it.
    pub id: Vec<u8>,
    pub value_type: u32,
    pub size: u64,
    pub digest: Digest,
    /// The first bytes of the data (up to `ReportData`'s MaxDataSize), kept
    /// only for inputs that report data and values not under `NoDataFor`.
    pub data: Option<Vec<u8>>,
}

impl Entry {
    /// The key components and the value name (WTF-8).
    pub fn parts(&self) -> (Vec<Vec<u8>>, Vec<u8>) {
        match ident::parse(&self.id) {
            Some(p) => (p.keys, p.value.unwrap_or_default()),
            None => (Vec::new(), Vec::new()),
        }
    }

    /// The path events show: `HKLM\Key\Name`, the default value as
    /// `KEY\(Default)`.
    pub fn display_path(&self) -> String {
        let (keys, name) = self.parts();
        let mut s = ident::display_key(&keys);
        if !keys.is_empty() {
            s.push('\\');
        }
        s.push_str(&ident::display_value_name(&name));
        s
    }
}

/// A key in scope, for `KeyEvents`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEntry {
    /// The key's identity (see [`crate::ident`]).
    pub id: Vec<u8>,
    /// Last-written time (FILETIME), when the backend knows it.
    pub last_written: Option<u64>,
}

impl KeyEntry {
    /// The path events show: `HKLM\Key`.
    pub fn display_path(&self) -> String {
        ident::parse(&self.id)
            .map(|p| ident::display_key(&p.keys))
            .unwrap_or_default()
    }
}

/// What data a scan keeps beside the digests (`ReportData`).
#[derive(Clone, Debug)]
pub struct Capture {
    /// Bytes kept per value (`MaxDataSize`).
    pub max: usize,
    /// `NoDataFor`: values whose data is never kept (secrets).
    pub never: Excludes,
}

/// A `HiveFile` mapping: the registry path where a hive file is mounted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub root: Root,
    /// Key components below the root, as the configuration spells them.
    pub keys: Vec<String>,
    pub file: PathBuf,
    /// Replay transaction logs found beside the file (when dirty).
    pub use_logs: bool,
}

impl Mount {
    pub fn parse(key_path: &str, file: PathBuf, use_logs: bool) -> Result<Mount, String> {
        let mut parts = key_path.split('\\').filter(|p| !p.is_empty());
        let root = parts.next().and_then(Root::parse).ok_or_else(|| {
            format!(
                "HiveFile '{key_path}': the key path must start with HKLM, HKCU, HKU, HKCR or HKCC"
            )
        })?;
        let keys: Vec<String> = parts.map(String::from).collect();
        Ok(Mount {
            root,
            keys,
            file,
            use_logs,
        })
    }

    /// The identity of the mount point (see [`crate::ident`]).
    pub fn id(&self) -> Vec<u8> {
        let mut id = ident::key_id(&[self.root.short()]);
        for k in &self.keys {
            ident::push_key(&mut id, k.as_bytes());
        }
        id
    }

    pub fn display(&self) -> String {
        let mut s = self.root.short().to_string();
        for k in &self.keys {
            s.push('\\');
            s.push_str(k);
        }
        s
    }
}

/// What an input scans.
#[derive(Clone, Debug)]
pub struct Scope {
    pub patterns: Vec<Pattern>,
    pub excludes: Excludes,
    pub recursive: bool,
    /// `64BitView`: false reads the 32-bit view (WOW64 redirection).
    pub view64: bool,
    pub digest: DigestAlgorithm,
    pub mounts: Vec<Mount>,
    /// `ReportData TRUE`: keep data for `$Value` / `$PrevValue`.
    pub capture: Option<Capture>,
    /// `KeyEvents TRUE`: also list the keys in scope.
    pub key_events: bool,
}

#[cfg(test)]
impl Scope {
    /// A live-registry scope of `patterns` with defaults (SHA-1, 64-bit view).
    pub fn for_test(patterns: &[&str], recursive: bool) -> Scope {
        Scope {
            patterns: patterns
                .iter()
                .map(|p| Pattern::parse(p).unwrap())
                .collect(),
            excludes: Excludes::default(),
            recursive,
            view64: true,
            digest: DigestAlgorithm::parse("sha1").unwrap(),
            mounts: Vec::new(),
            capture: None,
            key_events: false,
        }
    }
}

/// The result of a scan: entries sorted by path (byte order, unique) and the
/// mounts that could not be read, whose baseline entries must be kept.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub entries: Vec<Entry>,
    /// Keys in scope, sorted by path (only with `KeyEvents`).
    pub keys: Vec<KeyEntry>,
    /// Mount points (as shown) whose hive could not be read.
    pub failed_mounts: Vec<String>,
    /// Identities of keys whose contents are unknown: the failed mounts,
    /// and keys whose subkeys or values could not all be read (damaged
    /// cells). What is missing below them is unknown, not deleted.
    pub unreadable: Vec<Vec<u8>>,
    pub warnings: Vec<String>,
    /// What is worth a line in the log (e.g. transaction logs replayed).
    pub notes: Vec<String>,
}

impl Snapshot {
    /// Whether `id` lies under a mount that failed to read or a key that
    /// could not be read whole: its absence from the scan proves nothing.
    pub fn is_unavailable(&self, id: &[u8]) -> bool {
        ident::under_any(&self.unreadable, id)
    }
}

/// Opens a mount's hive: the file, with its transaction logs replayed when
/// it is dirty and that is allowed.
/// Returns the file, what was replayed (for the log), and warnings.
pub fn open_hive(m: &Mount) -> Result<(HiveFile, Vec<String>, Vec<String>), String> {
    let o = crate::hivefile::open(&m.file, m.use_logs)?;
    let (mut notes, mut warnings) = (Vec::new(), Vec::new());
    if let Some(r) = &o.replay {
        notes.push(crate::hivefile::describe(r));
        notes.extend(r.notes.iter().cloned());
        warnings.extend(r.warnings.iter().cloned());
    }
    Ok((o.file, notes, warnings))
}

/// A key of a mounted hive file (the offline backend).
#[derive(Clone, Copy)]
pub struct HiveKey<'s, 'h> {
    key: Key<'h>,
    mount: usize,
    mounts: &'s [Mount],
    /// The hive's root key, for 32-bit view lookups.
    root: Key<'h>,
    view64: bool,
}

impl<'s, 'h> HiveKey<'s, 'h> {
    fn wrap(&self, key: Key<'h>) -> (String, Self) {
        (
            key.name().to_string_lossy().into_owned(),
            HiveKey { key, ..*self },
        )
    }

    fn view32(&self) -> bool {
        !self.view64 && wow64::applies(&self.mounts[self.mount])
    }
}

impl RegKey for HiveKey<'_, '_> {
    fn subkeys(&self, path: &[String]) -> Result<Children<Self>, String> {
        let list = if self.view32() {
            wow64::children_32(&self.mounts[self.mount], self.root, path)
        } else {
            self.key.subkeys().map(|it| it.collect::<Vec<_>>())
        }
        .map_err(|e| e.to_string())?;
        Ok(list
            .into_iter()
            .map(|r| r.map(|k| self.wrap(k)).map_err(|e| e.to_string()))
            .collect())
    }

    fn subkey(&self, name: &str, path: &[String]) -> Result<Option<(String, Self)>, String> {
        if self.view32() {
            // The 32-bit view merges two physical trees: enumerate and filter.
            let kids = self.subkeys(path)?;
            return Ok(kids
                .into_iter()
                .flatten()
                .find(|(n, _)| n.eq_ignore_ascii_case(name)));
        }
        match self.key.subkey(name) {
            Ok(k) => Ok(k.map(|k| self.wrap(k))),
            Err(e) => Err(e.to_string()),
        }
    }

    fn for_each_value(
        &self,
        f: &mut ValueFn<'_>,
        warn: &mut dyn FnMut(String),
    ) -> Result<(), String> {
        let mut exact = Vec::new();
        for v in self.key.values().map_err(|e| e.to_string())? {
            let v = match v {
                Ok(v) => v,
                Err(e) => {
                    warn(e.to_string());
                    continue;
                }
            };
            let name = v.name().to_string_lossy();
            let exact = match &name {
                // Lossy only for an unpaired surrogate.
                std::borrow::Cow::Owned(_) if !v.name().is_valid_unicode() => {
                    exact.clear();
                    ident::wtf8_from_utf16(v.name().units(), &mut exact);
                    Some(&exact[..])
                }
                _ => None,
            };
            match v.data() {
                Ok(d) => f(&name, exact, v.value_type().0, &d),
                Err(e) => warn(format!("value '{name}': {e}")),
            }
        }
        Ok(())
    }

    fn identity(&self) -> Option<(usize, u64)> {
        Some((self.mount, u64::from(self.key.offset())))
    }

    fn exact_name(&self) -> Option<Vec<u8>> {
        let n = self.key.name();
        if n.is_valid_unicode() {
            return None;
        }
        let mut out = Vec::new();
        ident::wtf8_from_utf16(n.units(), &mut out);
        Some(out)
    }

    fn last_written(&self) -> Option<u64> {
        Some(self.key.last_written())
    }
}

/// A node of the virtual tree.
enum Node<'t, K> {
    /// A root or a mount-path component with mounts below it.
    Virtual(&'t VNode<K>),
    /// A key of a backend.
    Real(K),
}

/// The virtual tree above the backends' keys: roots and mount points.
pub struct VNode<K> {
    name: String,
    children: Vec<VNode<K>>,
    /// The backend key mounted exactly here, if any.
    key: Option<K>,
}

impl<K> VNode<K> {
    pub fn new(name: &str) -> VNode<K> {
        VNode {
            name: name.to_string(),
            children: Vec::new(),
            key: None,
        }
    }

    /// Mounts `key` at `path` below this node.
    pub fn mount(&mut self, path: &[String], key: K) {
        let mut v = self;
        for p in path {
            let i = match v
                .children
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(p))
            {
                Some(i) => i,
                None => {
                    v.children.push(VNode::new(p));
                    v.children.len() - 1
                }
            };
            v = &mut v.children[i];
        }
        v.key = Some(key);
    }
}

/// Opens the mounted hive files of `scope` (recording those that fail in
/// `snap`) and hands `f` the virtual tree over them.
fn with_hive_roots<R>(
    scope: &Scope,
    snap: &mut Snapshot,
    f: impl FnOnce(&[(Root, VNode<HiveKey<'_, '_>>)], &mut Snapshot) -> R,
) -> R {
    let mut files: Vec<Option<HiveFile>> = Vec::new();
    for m in &scope.mounts {
        match open_hive(m) {
            Ok((f, notes, warnings)) => {
                for n in notes {
                    snap.notes.push(format!("{}: {n}", m.file.display()));
                }
                for w in warnings {
                    snap.warnings.push(format!("{}: {w}", m.file.display()));
                }
                files.push(Some(f));
            }
            Err(e) => {
                snap.warnings.push(e);
                snap.failed_mounts.push(m.display());
                snap.unreadable.push(m.id());
                files.push(None);
            }
        }
    }
    let mut roots: Vec<(Root, VNode<HiveKey<'_, '_>>)> = Vec::new();
    let hives: Vec<Option<Hive<'_>>> = files
        .iter()
        .map(|f| f.as_ref().and_then(|f| f.hive().ok()))
        .collect();
    for (i, (m, h)) in scope.mounts.iter().zip(&hives).enumerate() {
        let Some(h) = h else { continue };
        let root = match h.root() {
            Ok(r) => r,
            Err(e) => {
                snap.warnings.push(format!("{}: {e}", m.file.display()));
                snap.failed_mounts.push(m.display());
                snap.unreadable.push(m.id());
                continue;
            }
        };
        let key = HiveKey {
            key: root,
            mount: i,
            mounts: &scope.mounts,
            root,
            view64: scope.view64,
        };
        match roots.iter_mut().find(|(r, _)| *r == m.root) {
            Some((_, v)) => v.mount(&m.keys, key),
            None => {
                let mut v = VNode::new(m.root.short());
                v.mount(&m.keys, key);
                roots.push((m.root, v));
            }
        }
    }
    f(&roots, snap)
}

/// Scans `scope` over its mounted hive files. Never fails as a whole: an
/// unreadable mount is listed in `failed_mounts`, a damaged key or value
/// becomes a warning.
pub fn scan(scope: &Scope, size_hint: usize) -> Snapshot {
    let mut snap = Snapshot::default();
    // The last scan's size: saves re-growing a vector of a million entries.
    snap.entries.reserve(size_hint);
    with_hive_roots(scope, &mut snap, |roots, snap| {
        scan_tree(scope, roots, snap)
    });
    snap
}

/// What a streamed scan hands over, in path order.
pub enum Item {
    Entry(Entry),
    /// A key (its identity) that could not be read whole: see
    /// [`Snapshot::unreadable`]. It comes before any entry inside the key.
    Unreadable(Vec<u8>),
}

/// Items go over in batches, to keep the channel's cost per value small.
const BATCH: usize = 2048;

/// Whether [`scan_streamed`] can hand values over in path order: one
/// pattern over hive files (several patterns may overlap and interleave).
pub fn can_stream(scope: &Scope) -> bool {
    scope.patterns.len() == 1 && !scope.mounts.is_empty()
}

/// Scans `scope` over its hive files on a second thread while `consume`
/// runs on this one with the values, in path order, as they are found: the
/// scan is never held in memory as a whole, and both cores work. `consume`
/// gets the identities of the mounts that failed (their baseline must be
/// kept) and the items.
/// The returned snapshot has no entries: warnings, unreadable keys, failed
/// mounts, and keys (for `KeyEvents`).
pub fn scan_streamed<R>(
    scope: &Scope,
    consume: impl FnOnce(&[Vec<u8>], &mut dyn Iterator<Item = Item>) -> R,
) -> (Snapshot, R) {
    let mut snap = Snapshot::default();
    let r = with_hive_roots(scope, &mut snap, |roots, snap| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Item>>(8);
        std::thread::scope(|s| {
            let worker = s.spawn(move || {
                let mut part = Snapshot::default();
                run_scanner(
                    scope,
                    roots,
                    &mut part,
                    Sink::Stream {
                        tx,
                        batch: Vec::with_capacity(BATCH),
                    },
                );
                part
            });
            let mut items = rx.iter().flatten();
            let r = consume(&snap.unreadable, &mut items);
            // Unblock the worker if `consume` stopped early.
            drop(items);
            let part = worker.join().unwrap_or_default();
            snap.warnings.extend(part.warnings);
            snap.unreadable.extend(part.unreadable);
            snap.keys = part.keys;
            r
        })
    });
    (snap, r)
}

/// Scans `scope` over a virtual tree of backend keys, adding to `snap`.
pub fn scan_tree<K: RegKey + Clone>(
    scope: &Scope,
    roots: &[(Root, VNode<K>)],
    snap: &mut Snapshot,
) {
    let out = std::mem::take(&mut snap.entries);
    let mut entries = match run_scanner(scope, roots, snap, Sink::Memory(out)) {
        Sink::Memory(v) => v,
        Sink::Stream { .. } => Vec::new(),
    };
    // One pattern yields sorted entries; several may not (stable sort
    // merges the sorted runs cheaply).
    if !entries.is_sorted_by(|a, b| a.id <= b.id) {
        entries.sort_by(|a, b| a.id.cmp(&b.id));
    }
    entries.dedup_by(|a, b| a.id == b.id);
    snap.entries = entries;
}

/// Runs the patterns of `scope`; warnings, unreadable keys and keys go to
/// `snap`, values to `sink`, which is returned.
fn run_scanner<K: RegKey + Clone>(
    scope: &Scope,
    roots: &[(Root, VNode<K>)],
    snap: &mut Snapshot,
    sink: Sink,
) -> Sink {
    let mut scanner = Scanner {
        scope,
        out: sink,
        keys: Vec::new(),
        warnings: Vec::new(),
        unreadable: Vec::new(),
        id: Vec::new(),
        marks: Vec::new(),
    };
    for p in &scope.patterns {
        let Some((_, vroot)) = roots.iter().find(|(r, _)| *r == p.root) else {
            continue;
        };
        let mut path = Vec::new();
        scanner.id = ident::key_id(&[p.root.short()]);
        scanner.marks.clear();
        scanner.resolve(p, Node::Virtual(vroot), 0, &mut path);
    }
    scanner.out.flush();
    snap.warnings.append(&mut scanner.warnings);
    snap.unreadable.append(&mut scanner.unreadable);
    let mut keys = scanner.keys;
    if !keys.is_sorted_by(|a, b| a.id <= b.id) {
        keys.sort_by(|a, b| a.id.cmp(&b.id));
    }
    keys.dedup_by(|a, b| a.id == b.id);
    snap.keys = keys;
    scanner.out
}

/// Where a scanner puts values: a vector, or a channel to a consumer.
enum Sink {
    Memory(Vec<Entry>),
    Stream {
        tx: std::sync::mpsc::SyncSender<Vec<Item>>,
        batch: Vec<Item>,
    },
}

impl Sink {
    fn push(&mut self, e: Entry) {
        match self {
            Sink::Memory(v) => v.push(e),
            Sink::Stream { batch, .. } => {
                batch.push(Item::Entry(e));
                if batch.len() >= BATCH {
                    self.flush();
                }
            }
        }
    }

    fn unreadable(&mut self, id: &[u8]) {
        if let Sink::Stream { batch, .. } = self {
            batch.push(Item::Unreadable(id.to_vec()));
        }
    }

    fn flush(&mut self) {
        if let Sink::Stream { tx, batch } = self {
            if !batch.is_empty() {
                // A consumer that stopped early drops its end; the rest of
                // the scan is then discarded.
                let _ = tx.send(std::mem::replace(batch, Vec::with_capacity(BATCH)));
            }
        }
    }
}

struct Scanner<'s> {
    scope: &'s Scope,
    unreadable: Vec<Vec<u8>>,
    out: Sink,
    keys: Vec<KeyEntry>,
    warnings: Vec<String>,
    /// The identity of the key at the current path (root included), kept
    /// in step with the path: `marks[i]` is its length before component i.
    id: Vec<u8>,
    marks: Vec<usize>,
}

/// Sorts sibling keys in identity order (their exact names' bytes).
fn sort_siblings<K: RegKey>(kids: &mut [(String, Node<'_, K>)]) {
    let exact = |n: &str, k: &Node<'_, K>| {
        match k {
            Node::Real(k) => k.exact_name(),
            Node::Virtual(_) => None,
        }
        .unwrap_or_else(|| n.as_bytes().to_vec())
    };
    if kids.iter().all(|(_, k)| match k {
        Node::Real(k) => k.exact_name().is_none(),
        Node::Virtual(_) => true,
    }) {
        // The common case: every text is exact; no copies.
        kids.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    } else {
        kids.sort_by_cached_key(|(n, k)| exact(n, k));
    }
}

/// Windows' maximum key depth; deeper chains are corrupt or hostile.
const MAX_DEPTH: usize = 512;

fn path_string(root: Root, path: &[String]) -> String {
    let mut s = root.short().to_string();
    for p in path {
        s.push('\\');
        s.push_str(p);
    }
    s
}

impl Scanner<'_> {
    fn warn(&mut self, root: Root, path: &[String], e: impl std::fmt::Display) {
        let p = path_string(root, path);
        self.warnings.push(format!("{p}: {e}"));
    }

    /// A part of the key at `path` (the current key) could not be read:
    /// warn, and keep the baseline below it (no DELETE for what the damage
    /// hides).
    fn broken(&mut self, root: Root, path: &[String], e: impl std::fmt::Display) {
        self.warn(root, path, e);
        self.out.unreadable(&self.id);
        self.unreadable.push(self.id.clone());
    }

    /// Enters child `name` of the current key (path and identity).
    fn enter<K: RegKey>(&mut self, path: &mut Vec<String>, name: String, node: &Node<'_, K>) {
        self.marks.push(self.id.len());
        match node {
            Node::Real(k) => match k.exact_name() {
                Some(exact) => ident::push_key(&mut self.id, &exact),
                None => ident::push_key(&mut self.id, name.as_bytes()),
            },
            Node::Virtual(_) => ident::push_key(&mut self.id, name.as_bytes()),
        }
        path.push(name);
    }

    /// Goes back up to `level` components.
    fn leave(&mut self, path: &mut Vec<String>, level: usize) {
        if let Some(&m) = self.marks.get(level) {
            self.id.truncate(m);
            self.marks.truncate(level);
        }
        path.truncate(level);
    }

    /// The children of a node, with their display names.
    fn children<'t, K: RegKey + Clone>(
        &mut self,
        root: Root,
        node: &Node<'t, K>,
        path: &[String],
    ) -> Vec<(String, Node<'t, K>)> {
        let (mut out, key): (Vec<(String, Node<'t, K>)>, Option<&K>) = match node {
            Node::Virtual(v) => (
                v.children
                    .iter()
                    .map(|c| (c.name.clone(), Node::Virtual(c)))
                    .collect(),
                v.key.as_ref(),
            ),
            Node::Real(k) => (Vec::new(), Some(k)),
        };
        if let Some(k) = key {
            if path.len() >= MAX_DEPTH {
                self.warn(
                    root,
                    path,
                    "key nesting deeper than 512 levels; not descending",
                );
                return out;
            }
            match k.subkeys(path) {
                Ok(list) => {
                    for r in list {
                        match r {
                            Ok((n, k)) => out.push((n, Node::Real(k))),
                            Err(e) => self.broken(root, path, e),
                        }
                    }
                }
                Err(e) => self.broken(root, path, e),
            }
        }
        out
    }

    /// The child named `name` (case-insensitive), by lookup, not a scan.
    fn child<'t, K: RegKey + Clone>(
        &mut self,
        root: Root,
        node: &Node<'t, K>,
        name: &str,
        path: &[String],
    ) -> Option<(String, Node<'t, K>)> {
        let key = match node {
            Node::Virtual(v) => {
                if let Some(c) = v
                    .children
                    .iter()
                    .find(|c| c.name.eq_ignore_ascii_case(name))
                {
                    return Some((c.name.clone(), Node::Virtual(c)));
                }
                v.key.as_ref()?
            }
            Node::Real(k) => k,
        };
        match key.subkey(name, path) {
            Ok(k) => k.map(|(n, k)| (n, Node::Real(k))),
            Err(e) => {
                self.broken(root, path, e);
                None
            }
        }
    }

    /// Follows the key components of `p` from `node` (at component `i`).
    fn resolve<'t, K: RegKey + Clone>(
        &mut self,
        p: &Pattern,
        node: Node<'t, K>,
        i: usize,
        path: &mut Vec<String>,
    ) {
        if !path.is_empty() && self.scope.excludes.excludes_key(p.root, path) {
            return;
        }
        if i == p.keys.len() {
            self.collect(p, node, path);
            return;
        }
        let g = &p.keys[i];
        let next: Vec<(String, Node<'t, K>)> = if g.is_literal() {
            self.child(p.root, &node, g.text(), path)
                .into_iter()
                .collect()
        } else {
            let mut m: Vec<(String, Node<'t, K>)> = self
                .children(p.root, &node, path)
                .into_iter()
                .filter(|(n, _)| g.matches(n))
                .collect();
            sort_siblings(&mut m);
            m
        };
        let level = path.len();
        for (name, child) in next {
            self.enter(path, name, &child);
            self.resolve(p, child, i + 1, path);
            self.leave(path, level);
        }
    }

    /// Takes the matching values of `node` and, when recursive, of its
    /// whole subtree (iteratively: no recursion to overflow on deep trees).
    fn collect<'t, K: RegKey + Clone>(
        &mut self,
        p: &Pattern,
        node: Node<'t, K>,
        path: &mut Vec<String>,
    ) {
        /// Work left on the explicit stack: a key to visit (at a path
        /// level, under a name).
        enum Work<'t, K> {
            Visit(Node<'t, K>, usize, Option<String>),
        }
        let mut seen: HashSet<(usize, u64)> = HashSet::new();
        let base = path.len();
        let mut stack: Vec<Work<'t, K>> = vec![Work::Visit(node, base, None)];
        while let Some(work) = stack.pop() {
            let Work::Visit(node, level, name) = work;
            self.leave(path, level);
            if let Some(n) = name {
                self.enter(path, n, &node);
                if self.scope.excludes.excludes_key(p.root, path) {
                    continue;
                }
            }
            let key = match &node {
                Node::Virtual(v) => v.key.as_ref(),
                Node::Real(k) => Some(k),
            };
            let mut values = Vec::new();
            if let Some(k) = key {
                if let Some(id) = k.identity() {
                    if !seen.insert(id) {
                        self.warn(p.root, path, "subkey cycle; key already visited");
                        continue;
                    }
                }
                if self.scope.key_events {
                    self.keys.push(KeyEntry {
                        id: self.id.clone(),
                        last_written: k.last_written(),
                    });
                }
                values = self.values(p, k, path);
                values.sort_unstable_by(|a, b| a.id.cmp(&b.id));
            }
            // Identity order (see crate::ident): a key's values, then each
            // subkey's subtree in turn. The scan's output is then sorted
            // already (see `scan_tree`).
            for v in values {
                self.out.push(v);
            }
            if !self.scope.recursive {
                continue;
            }
            let mut kids = self.children(p.root, &node, path);
            sort_siblings(&mut kids);
            let level = path.len();
            stack.extend(
                kids.into_iter()
                    .rev()
                    .map(|(n, c)| Work::Visit(c, level, Some(n))),
            );
        }
        self.leave(path, base);
    }

    fn values<K: RegKey>(&mut self, p: &Pattern, key: &K, path: &[String]) -> Vec<Entry> {
        let scope = self.scope;
        let key_id = &self.id;
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        let r = key.for_each_value(
            &mut |name, exact, ty, data| {
                if !p.matches_value_name(name) || scope.excludes.excludes_value(p.root, path, name)
                {
                    return;
                }
                let kept = scope.capture.as_ref().and_then(|c| {
                    (!c.never.excludes_key(p.root, path)
                        && !c.never.excludes_value(p.root, path, name))
                    .then(|| data[..data.len().min(c.max)].to_vec())
                });
                out.push(Entry {
                    id: ident::value_id(key_id, exact.unwrap_or(name.as_bytes())),
                    value_type: ty,
                    size: data.len() as u64,
                    digest: Digest::of(scope.digest, data),
                    data: kept,
                });
            },
            &mut |w| warnings.push(w),
        );
        if !warnings.is_empty() || r.is_err() {
            self.out.unreadable(&self.id);
            self.unreadable.push(self.id.clone());
        }
        if !warnings.is_empty() || r.is_err() {
            let prefix = path_string(p.root, path);
            self.warnings
                .extend(warnings.into_iter().map(|w| format!("{prefix}: {w}")));
            if let Err(e) = r {
                self.warnings.push(format!("{prefix}: {e}"));
            }
        }
        out
    }
}
