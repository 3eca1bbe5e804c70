//! A scan: the values an input's scope covers, each with its type, size and
//! digest, read from the hive files mounted under registry paths.
//!
//! The registry a scan sees is a virtual tree: the predefined roots, the
//! mount points of `HiveFile` (e.g. `HKLM\SOFTWARE`) and, below each, the
//! mounted hive's keys. Patterns resolve through it component by component
//! (`**`, and `Recursive` on a pattern with a literal key path, walk whole
//! subtrees); `Exclude` prunes keys and values.
//!
//! The scanner does not know where keys come from: a backend gives it
//! [`RegKey`]s (offline hive keys here, live registry keys on Windows).

#[cfg(windows)]
pub mod live;
pub mod pace;
pub mod views;

use crate::config::Scope;
use crate::model::digest::Digest;
use crate::model::{Coverage, Entry, Item, KeyEntry, KeyItem, Pruned, Snapshot, COVERAGE_SAMPLE};
use crate::path::ident;
use crate::path::pattern::{same_name, KeyPath, Pattern, Root, States};
use crate::source::hive::with_hive_roots;
use crate::source::{Node, RegKey, VNode};
use std::collections::HashMap;
/// Scans `scope` over its mounted hive files. Never fails as a whole: an
/// unreadable mount is listed in `failed_mounts`, a damaged key or value
/// becomes a warning.
pub fn scan(scope: &Scope, size_hint: usize) -> Snapshot {
    let _pace = pace::Scan::begin(&scope.pace);
    if scope.both_views {
        return views::scan(scope, size_hint);
    }
    let mut snap = Snapshot::default();
    // The last scan's size: saves re-growing a vector of a million entries.
    snap.entries.reserve(size_hint);
    let mounts = scope.source.mounts_now(&mut snap);
    with_hive_roots(
        (&mounts, scope.user.as_deref()),
        scope.view64,
        &mut snap,
        |roots, snap| scan_tree(scope, roots, snap),
    );
    snap
}

/// Items go over in batches, to keep the channel's cost per value small.
const BATCH: usize = 2048;

/// Whether [`scan_streamed`] can hand values over in path order: one
/// pattern over hive files (several patterns may overlap and interleave).
pub fn can_stream(scope: &Scope) -> bool {
    // Both views are two passes, merged (scan/views.rs).
    scope.patterns.len() == 1 && !scope.mounts().is_empty() && !scope.both_views
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
    let _pace = pace::Scan::begin(&scope.pace);
    let mut snap = Snapshot::default();
    let mounts = scope.source.mounts_now(&mut snap);
    let r = with_hive_roots(
        (&mounts, scope.user.as_deref()),
        scope.view64,
        &mut snap,
        |roots, snap| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Item>>(8);
            let shared = pace::current();
            std::thread::scope(|s| {
                let worker = s.spawn(move || {
                    let _pace = pace::Scan::join(shared);
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
                snap.coverage = part.coverage;
                snap.pruned = part.pruned;
                r
            })
        },
    );
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
        key_items: Vec::new(),
        warnings: Vec::new(),
        unreadable: Vec::new(),
        id: Vec::new(),
        marks: Vec::new(),
        coverage: vec![Coverage::default(); scope.patterns.len()],
        pruned: vec![Pruned::default(); scope.excludes.len()],
        current: 0,
        nearest_depth: 0,
        pending_link: None,
    };
    for (i, p) in scope.patterns.iter().enumerate() {
        scanner.current = i;
        scanner.nearest_depth = 0;
        let Some((_, vroot)) = roots.iter().find(|(r, _)| *r == p.root) else {
            continue;
        };
        scanner.id = ident::key_id(&[p.root.short()]);
        scanner.marks.clear();
        scanner.pending_link = None;
        scanner.walk(p, Node::Virtual(vroot));
    }
    scanner.out.flush();
    snap.warnings.append(&mut scanner.warnings);
    snap.unreadable.append(&mut scanner.unreadable);
    merge_counts(&mut snap.coverage, scanner.coverage);
    merge_pruned(&mut snap.pruned, scanner.pruned);
    let mut keys = scanner.keys;
    if !keys.is_sorted_by(|a, b| a.id <= b.id) {
        keys.sort_by(|a, b| a.id.cmp(&b.id));
    }
    keys.dedup_by(|a, b| a.id == b.id);
    snap.keys = keys;
    let mut items = scanner.key_items;
    if !items.is_sorted_by(|a, b| a.id <= b.id) {
        items.sort_by(|a, b| a.id.cmp(&b.id));
    }
    items.dedup_by(|a, b| a.id == b.id);
    snap.key_items = items;
    scanner.out
}

/// Adds one part's pattern counts to a snapshot's (same pattern order).
pub fn merge_counts(into: &mut Vec<Coverage>, from: Vec<Coverage>) {
    if into.is_empty() {
        *into = from;
        return;
    }
    for (a, b) in into.iter_mut().zip(&from) {
        a.add(b);
    }
}

/// Adds one part's `Exclude` counts to a snapshot's.
pub fn merge_pruned(into: &mut Vec<Pruned>, from: Vec<Pruned>) {
    if into.is_empty() {
        *into = from;
        return;
    }
    for (a, b) in into.iter_mut().zip(&from) {
        a.keys += b.keys;
        a.values += b.values;
    }
}

/// The value a registry link is reported as (see [`RegKey::link`]).
pub const LINK_VALUE: &str = "SymbolicLinkValue";
/// REG_LINK.
const REG_LINK: u32 = 6;

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

    /// A key before its values: streamed, or handed back to be kept
    /// beside the entries in memory.
    fn key(&mut self, k: KeyItem) -> Option<KeyItem> {
        match self {
            Sink::Memory(_) => Some(k),
            Sink::Stream { batch, .. } => {
                batch.push(Item::Key(k));
                None
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
    /// The keys whose values were taken ([`Snapshot::key_items`]), when
    /// the sink is memory.
    key_items: Vec<KeyItem>,
    warnings: Vec<String>,
    /// The identity of the key at the current path (root included), kept
    /// in step with the path: `marks[i]` is its length before component i.
    id: Vec<u8>,
    marks: Vec<usize>,
    /// Per pattern: what it matched ([`Snapshot::coverage`]).
    coverage: Vec<Coverage>,
    /// Per `Exclude` rule: what it pruned.
    pruned: Vec<Pruned>,
    /// The pattern being resolved (index into `scope.patterns`).
    current: usize,
    /// Depth of [`Coverage::nearest`] of the current pattern.
    nearest_depth: usize,
    /// The link entry of the key just entered, reported with its values
    /// (so entries stay in identity order) or when the walk goes on below.
    pending_link: Option<Entry>,
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
        self.pending_link = None;
        match node {
            Node::Real(k) => {
                match k.exact_name() {
                    Some(exact) => ident::push_key(&mut self.id, &exact),
                    None => ident::push_key(&mut self.id, name.as_bytes()),
                }
                if let Some(target) = k.link() {
                    self.pending_link = Some(self.link_entry(&target));
                }
            }
            Node::Virtual(_) => ident::push_key(&mut self.id, name.as_bytes()),
        }
        path.push(name);
    }

    /// The entry a link is reported as: the value [`LINK_VALUE`] of the
    /// key at the current path, REG_LINK, its data the target in UTF-16LE
    /// (as Windows stores it), always kept so events can name the target.
    fn link_entry(&self, target: &str) -> Entry {
        let data: Vec<u8> = target.encode_utf16().flat_map(u16::to_le_bytes).collect();
        Entry {
            id: ident::value_id(&self.id, LINK_VALUE.as_bytes()),
            value_type: REG_LINK,
            size: data.len() as u64,
            digest: Digest::of(self.scope.digest, &data),
            data: Some(data),
        }
    }

    /// Reports the pending link entry now (the walk goes on below the link
    /// without taking the link key's own values).
    fn flush_link(&mut self) {
        if let Some(e) = self.pending_link.take() {
            self.out.push(e);
        }
    }

    /// Whether an `Exclude` rule cuts the key at `path` (counted).
    fn key_excluded(&mut self, root: Root, path: &[String]) -> bool {
        match self.scope.excludes.key_rule(root, path) {
            Some(i) => {
                if let Some(c) = self.pruned.get_mut(i) {
                    c.keys += 1;
                }
                true
            }
            None => false,
        }
    }

    /// The key at `path` exists on the way of the current pattern: the
    /// deepest such key is where a pattern that matches nothing stops.
    fn reached(&mut self, root: Root, path: &[String]) {
        if path.len() >= self.nearest_depth {
            self.nearest_depth = path.len() + 1;
            if let Some(c) = self.coverage.get_mut(self.current) {
                c.nearest = Some(path_string(root, path));
            }
        }
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
                if let Some(c) = v.children.iter().find(|c| same_name(&c.name, name)) {
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

    /// Walks the keys `p` covers from the root `node` and takes their
    /// matching values. Depth first on an explicit stack (no recursion to
    /// overflow on deep trees), siblings in identity order, so the output
    /// is in identity order; each key carries the set of pattern positions
    /// its path is at ([`KeyPath`]), so a key is visited once however many
    /// ways `**` matches it. Children are looked up by name where every
    /// component still to match is a literal name, listed otherwise.
    fn walk<'t, K: RegKey + Clone>(&mut self, p: &Pattern, node: Node<'t, K>) {
        /// A key still to visit: at a path level, under a name, at these
        /// pattern positions.
        struct Visit<'t, K> {
            node: Node<'t, K>,
            level: usize,
            name: Option<String>,
            states: States,
        }
        let kp = KeyPath::new(p.walked_keys(self.scope.recursive));
        // Keys at most this deep are on the pattern's way (before `**`).
        let way = (0..kp.len()).find(|&i| kp.is_deep(i)).unwrap_or(kp.len());
        let mut path: Vec<String> = Vec::new();
        let mut seen: HashMap<(usize, u64), bool> = HashMap::new();
        let mut stack: Vec<Visit<'t, K>> = vec![Visit {
            node,
            level: 0,
            name: None,
            states: kp.start(),
        }];
        while let Some(Visit {
            node,
            level,
            name,
            states,
        }) = stack.pop()
        {
            self.leave(&mut path, level);
            if let Some(n) = name {
                self.enter(&mut path, n, &node);
                if self.key_excluded(p.root, &path) {
                    continue;
                }
            }
            let key = match &node {
                Node::Virtual(v) => v.key.as_ref(),
                Node::Real(k) => Some(k),
            };
            if let Some(k) = key {
                if let Some(id) = k.identity() {
                    // A cycle in a damaged hive, or a key reached through a
                    // registry link: walked once through links
                    // (CurrentControlSet beside ControlSet001; the link
                    // itself still reported), and under its own path even
                    // when a link to it came first.
                    let linked = k.through_link();
                    match seen.get(&id) {
                        None => {
                            seen.insert(id, linked);
                        }
                        Some(&true) if !linked => {
                            seen.insert(id, false);
                        }
                        Some(_) => {
                            if k.link().is_some() {
                                self.flush_link();
                            } else if !linked {
                                self.warn(p.root, &path, "subkey cycle; key already visited");
                            }
                            continue;
                        }
                    }
                }
            }
            if path.len() <= way {
                self.reached(p.root, &path);
            }
            if kp.accepts(&states) {
                if let Some(k) = key {
                    self.take_values(p, k, &path);
                }
            }
            // Still here (no values taken): the walk passes through it.
            self.flush_link();
            if !kp.goes_on(&states) {
                continue;
            }
            if key.is_some() && path.len() >= MAX_DEPTH {
                // Deeper chains are corrupt or hostile: not walked, and
                // what they hold keeps its baseline (no DELETE for it).
                self.broken(
                    p.root,
                    &path,
                    format!("key nesting deeper than {MAX_DEPTH} levels (the Windows limit); its subkeys are not scanned and keep their baseline"),
                );
                continue;
            }
            let mut kids: Vec<(String, Node<'t, K>)> = match kp.next_names(&states) {
                Some(names) => {
                    let mut found: Vec<(String, Node<'t, K>)> = Vec::new();
                    for n in names {
                        if let Some(c) = self.child(p.root, &node, n, &path) {
                            // Two names of one key (`A\a`): one visit.
                            if !found.iter().any(|(f, _)| same_name(f, &c.0)) {
                                found.push(c);
                            }
                        }
                    }
                    found
                }
                None => self.children(p.root, &node, &path),
            };
            if kids.len() > 1 {
                sort_siblings(&mut kids);
            }
            let level = path.len();
            let at = stack.len();
            for (n, c) in kids {
                let states = kp.step(&states, &n);
                if !states.is_empty() {
                    stack.push(Visit {
                        node: c,
                        level,
                        name: Some(n),
                        states,
                    });
                }
            }
            // First sibling on top.
            stack[at..].reverse();
        }
        self.leave(&mut path, 0);
    }

    /// Takes the matching values of the key `k` at `path` (the current
    /// key), with its link entry, and counts them for the pattern.
    fn take_values<K: RegKey>(&mut self, p: &Pattern, k: &K, path: &[String]) {
        if self.scope.key_events {
            self.keys.push(KeyEntry {
                id: self.id.clone(),
                last_written: k.last_written(),
            });
        }
        // Asked only by `Incremental` (a live key then lists its subkeys
        // and its values separately, so a carried key's stay unread).
        let stats = if self.scope.incremental {
            k.stats()
        } else {
            None
        };
        // `Incremental`: a key whose last-write time and counts equal the
        // baseline's keeps its stored values unread (a key with a pending
        // link entry is read: its target may come from another key).
        let carried = match (&self.scope.hints, &stats) {
            (Some(h), Some(s)) => self.pending_link.is_none() && h.get(&self.id) == Some(s),
            _ => false,
        };
        // Only `Incremental` stores and compares key stats: other inputs
        // pay no copy of each key's identity for them.
        if self.scope.incremental {
            let item = KeyItem {
                id: self.id.clone(),
                stats,
                carried,
            };
            if let Some(item) = self.out.key(item) {
                self.key_items.push(item);
            }
        }
        if carried {
            // Counted as a key; its values are the baseline's, not counted
            // here (the comparison counts them: `Compared::kept`).
            if let Some(c) = self.coverage.get_mut(self.current) {
                c.keys += 1;
                c.carried += 1;
                if c.sample.len() < COVERAGE_SAMPLE {
                    c.sample.push(path_string(p.root, path));
                }
            }
            return;
        }
        let mut values = self.values(p, k, path);
        if let Some(c) = self.coverage.get_mut(self.current) {
            c.keys += 1;
            c.values += values.len() as u64;
            c.bytes += values.iter().map(|v| v.size).sum::<u64>();
            if c.sample.len() < COVERAGE_SAMPLE {
                c.sample.push(path_string(p.root, path));
            }
        }
        // A link key's own entry goes with its values (a real value of
        // that name would be the same one).
        if let Some(l) = self.pending_link.take() {
            if !values.iter().any(|v| v.id == l.id) {
                values.push(l);
            }
        }
        values.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        // Identity order (see crate::path::ident): a key's values, then
        // each subkey's subtree in turn. The scan's output is then sorted
        // already (see `scan_tree`).
        for v in values {
            self.out.push(v);
        }
    }

    fn values<K: RegKey>(&mut self, p: &Pattern, key: &K, path: &[String]) -> Vec<Entry> {
        let scope = self.scope;
        let key_id = &self.id;
        let pruned = &mut self.pruned;
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        let r = key.for_each_value(
            &mut |name, exact, ty, data| {
                if !p.matches_value_name(name) {
                    return;
                }
                if let Some(i) = scope.excludes.value_rule(p.root, path, name) {
                    if let Some(c) = pruned.get_mut(i) {
                        c.values += 1;
                    }
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
        pace::tick(out.len());
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
