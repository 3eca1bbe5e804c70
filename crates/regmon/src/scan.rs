//! A scan: the values an input's scope covers, each with its type, size and
//! digest, read from the hive files mounted under registry paths.
//!
//! The registry a scan sees is a virtual tree: the predefined roots, the
//! mount points of `HiveFile` (e.g. `HKLM\SOFTWARE`) and, below each, the
//! mounted hive's keys. Patterns resolve through it component by component;
//! `Recursive` walks whole subtrees; `Exclude` prunes keys and values.

use crate::digest::DigestAlg;
use crate::pattern::{Excludes, Pattern, Root};
use crate::wow64;
use hive::{Hive, HiveFile, Key};
use std::collections::HashSet;
use std::path::PathBuf;

/// One value as a scan found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The full value path, `HKLM\Key\Name`; the default value is `KEY\(Default)`.
    pub path: String,
    pub value_type: u32,
    pub size: u64,
    pub digest: Vec<u8>,
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
        let root = parts
            .next()
            .and_then(Root::parse)
            .ok_or_else(|| format!("HiveFile '{key_path}': the key path must start with HKLM, HKCU, HKU, HKCR or HKCC"))?;
        let keys: Vec<String> = parts.map(String::from).collect();
        Ok(Mount {
            root,
            keys,
            file,
            use_logs,
        })
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
    pub digest: DigestAlg,
    pub mounts: Vec<Mount>,
}

/// The result of a scan: entries sorted by path (byte order, unique) and the
/// mounts that could not be read, whose baseline entries must be kept.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub entries: Vec<Entry>,
    pub failed_mounts: Vec<String>,
    pub warnings: Vec<String>,
}

impl Snapshot {
    /// Whether `path` lies under a mount that failed to read.
    pub fn is_unavailable(&self, path: &str) -> bool {
        self.failed_mounts.iter().any(|m| {
            path.len() > m.len()
                && path.as_bytes()[m.len()] == b'\\'
                && path[..m.len()].eq_ignore_ascii_case(m)
        })
    }
}

/// Opens a mount's hive: the file, with its transaction logs replayed when
/// it is dirty and that is allowed.
pub fn open_hive(m: &Mount) -> Result<(HiveFile, Vec<String>), String> {
    let o = crate::hivefile::open(&m.file, m.use_logs)?;
    let mut notes = Vec::new();
    if let Some(r) = &o.replay {
        notes.push(crate::hivefile::describe(r));
        notes.extend(r.warnings.iter().cloned());
    }
    Ok((o.file, notes))
}

/// A node of the virtual tree.
#[derive(Clone, Copy)]
enum Node<'t, 'h> {
    /// A root or a mount-path component with mounts below it.
    Virtual(&'t VNode<'h>),
    /// A key inside mounted hive `mount`.
    Real { key: Key<'h>, mount: usize, depth: usize },
}

struct VNode<'h> {
    name: String,
    children: Vec<VNode<'h>>,
    /// The hive mounted exactly here, if any.
    hive: Option<(usize, Key<'h>)>,
}

impl<'h> VNode<'h> {
    fn child_mut(&mut self, name: &str) -> &mut VNode<'h> {
        let i = match self.children.iter().position(|c| c.name.eq_ignore_ascii_case(name)) {
            Some(i) => i,
            None => {
                self.children.push(VNode {
                    name: name.to_string(),
                    children: Vec::new(),
                    hive: None,
                });
                self.children.len() - 1
            }
        };
        &mut self.children[i]
    }
}

/// Scans `scope`. Never fails as a whole: an unreadable mount is listed in
/// `failed_mounts`, a damaged key or value becomes a warning.
pub fn scan(scope: &Scope) -> Snapshot {
    let mut snap = Snapshot::default();
    let mut files: Vec<Option<HiveFile>> = Vec::new();
    for m in &scope.mounts {
        match open_hive(m) {
            Ok((f, warnings)) => {
                for w in warnings {
                    snap.warnings.push(format!("{}: {w}", m.file.display()));
                }
                files.push(Some(f));
            }
            Err(e) => {
                snap.warnings.push(e);
                snap.failed_mounts.push(m.display());
                files.push(None);
            }
        }
    }
    let hives: Vec<Option<Hive<'_>>> = files
        .iter()
        .zip(&scope.mounts)
        .map(|(f, m)| {
            let f = f.as_ref()?;
            match f.hive() {
                Ok(h) => Some(h),
                Err(e) => {
                    snap.warnings.push(format!("{}: {e}", m.file.display()));
                    snap.failed_mounts.push(m.display());
                    None
                }
            }
        })
        .collect();
    let mut roots: Vec<(Root, VNode<'_>)> = Vec::new();
    for (i, (m, h)) in scope.mounts.iter().zip(&hives).enumerate() {
        let Some(h) = h else { continue };
        let root = match h.root() {
            Ok(r) => r,
            Err(e) => {
                snap.warnings.push(format!("{}: {e}", m.file.display()));
                snap.failed_mounts.push(m.display());
                continue;
            }
        };
        let vi = match roots.iter().position(|(r, _)| *r == m.root) {
            Some(vi) => vi,
            None => {
                roots.push((
                    m.root,
                    VNode {
                        name: m.root.short().to_string(),
                        children: Vec::new(),
                        hive: None,
                    },
                ));
                roots.len() - 1
            }
        };
        let mut v = &mut roots[vi].1;
        for k in &m.keys {
            v = v.child_mut(k);
        }
        v.hive = Some((i, root));
    }

    let mut scanner = Scanner {
        scope,
        hives: &hives,
        out: Vec::new(),
        warnings: Vec::new(),
        data_buf: Vec::new(),
    };
    for p in &scope.patterns {
        let Some((_, vroot)) = roots.iter().find(|(r, _)| *r == p.root) else {
            continue;
        };
        let mut path = Vec::new();
        scanner.resolve(p, Node::Virtual(vroot), 0, &mut path);
    }
    let mut entries = scanner.out;
    snap.warnings.append(&mut scanner.warnings);
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    entries.dedup_by(|a, b| a.path == b.path);
    snap.entries = entries;
    snap
}

struct Scanner<'s, 'h> {
    scope: &'s Scope,
    hives: &'s [Option<Hive<'h>>],
    out: Vec<Entry>,
    warnings: Vec<String>,
    data_buf: Vec<u8>,
}

/// Windows' maximum key depth; deeper chains are corrupt or hostile.
const MAX_DEPTH: usize = 512;

impl<'t, 'h> Scanner<'_, 'h> {
    fn path_string(&self, root: Root, path: &[String]) -> String {
        let mut s = root.short().to_string();
        for p in path {
            s.push('\\');
            s.push_str(p);
        }
        s
    }

    fn warn(&mut self, root: Root, path: &[String], e: impl std::fmt::Display) {
        let p = self.path_string(root, path);
        self.warnings.push(format!("{p}: {e}"));
    }

    /// The children of a node, with their display names.
    fn children(&mut self, root: Root, node: Node<'t, 'h>, path: &[String]) -> Vec<(String, Node<'t, 'h>)> {
        match node {
            Node::Virtual(v) => {
                let mut out: Vec<(String, Node<'t, 'h>)> = v
                    .children
                    .iter()
                    .map(|c| (c.name.clone(), Node::Virtual(c)))
                    .collect();
                if let Some((mount, key)) = v.hive {
                    out.extend(self.key_children(root, key, mount, 0, path));
                }
                out
            }
            Node::Real { key, mount, depth } => self.key_children(root, key, mount, depth, path),
        }
    }

    fn key_children(
        &mut self,
        root: Root,
        key: Key<'h>,
        mount: usize,
        depth: usize,
        path: &[String],
    ) -> Vec<(String, Node<'t, 'h>)> {
        if depth >= MAX_DEPTH {
            self.warn(root, path, "key nesting deeper than 512 levels; not descending");
            return Vec::new();
        }
        let mut out = Vec::new();
        let view32 = !self.scope.view64 && wow64::applies(&self.scope.mounts[mount], depth);
        let subkeys = if view32 {
            wow64::children_32(&self.scope.mounts[mount], key, self.hive_root(mount), path)
        } else {
            key.subkeys().map(|it| it.collect::<Vec<_>>())
        };
        match subkeys {
            Ok(list) => {
                for k in list {
                    match k {
                        Ok(k) => out.push((
                            k.name().to_string_lossy().into_owned(),
                            Node::Real {
                                key: k,
                                mount,
                                depth: depth + 1,
                            },
                        )),
                        Err(e) => self.warn(root, path, e),
                    }
                }
            }
            Err(e) => self.warn(root, path, e),
        }
        out
    }

    fn hive_root(&self, mount: usize) -> Option<Key<'h>> {
        self.hives[mount].as_ref().and_then(|h| h.root().ok())
    }

    /// The child named `name` (case-insensitive), by lookup, not a scan.
    fn child(&mut self, root: Root, node: Node<'t, 'h>, name: &str, path: &[String]) -> Option<(String, Node<'t, 'h>)> {
        let (key, mount, depth) = match node {
            Node::Virtual(v) => {
                if let Some(c) = v.children.iter().find(|c| c.name.eq_ignore_ascii_case(name)) {
                    return Some((c.name.clone(), Node::Virtual(c)));
                }
                let (mount, key) = v.hive?;
                (key, mount, 0)
            }
            Node::Real { key, mount, depth } => (key, mount, depth),
        };
        if !self.scope.view64 && wow64::applies(&self.scope.mounts[mount], depth) {
            // The 32-bit view merges two physical trees: enumerate and filter.
            return self
                .key_children(root, key, mount, depth, path)
                .into_iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name));
        }
        match key.subkey(name) {
            Ok(Some(k)) => Some((
                k.name().to_string_lossy().into_owned(),
                Node::Real {
                    key: k,
                    mount,
                    depth: depth + 1,
                },
            )),
            Ok(None) => None,
            Err(e) => {
                self.warn(root, path, e);
                None
            }
        }
    }

    /// Follows the key components of `p` from `node` (at component `i`).
    fn resolve(&mut self, p: &Pattern, node: Node<'t, 'h>, i: usize, path: &mut Vec<String>) {
        let excludes = &self.scope.excludes;
        if !path.is_empty() && excludes.excludes_key(p.root, path) {
            return;
        }
        if i == p.keys.len() {
            let mut seen = HashSet::new();
            self.collect(p, node, path, &mut seen);
            return;
        }
        let g = &p.keys[i];
        let next: Vec<(String, Node<'t, 'h>)> = if g.is_literal() {
            self.child(p.root, node, g.text(), path).into_iter().collect()
        } else {
            self.children(p.root, node, path)
                .into_iter()
                .filter(|(n, _)| g.matches(n))
                .collect()
        };
        for (name, child) in next {
            path.push(name);
            self.resolve(p, child, i + 1, path);
            path.pop();
        }
    }

    /// Takes the matching values of `node` and, when recursive, of its
    /// whole subtree (iteratively: no recursion to overflow on deep trees).
    fn collect(&mut self, p: &Pattern, node: Node<'t, 'h>, path: &mut Vec<String>, seen: &mut HashSet<(usize, u32)>) {
        let mut stack: Vec<(Node<'t, 'h>, usize, Option<String>)> = vec![(node, path.len(), None)];
        let base = path.len();
        while let Some((node, level, name)) = stack.pop() {
            path.truncate(level);
            if let Some(n) = name {
                path.push(n);
                if self.scope.excludes.excludes_key(p.root, path) {
                    continue;
                }
            }
            if let Node::Real { key, mount, .. } = node {
                if !seen.insert((mount, key.offset())) {
                    self.warn(p.root, path, "subkey cycle; key already visited");
                    continue;
                }
                self.values(p, key, mount, path);
            } else if let Node::Virtual(v) = node {
                if let Some((mount, key)) = v.hive {
                    if seen.insert((mount, key.offset())) {
                        self.values(p, key, mount, path);
                    }
                }
            }
            if self.scope.recursive {
                let kids = self.children(p.root, node, path);
                let level = path.len();
                for (n, c) in kids.into_iter().rev() {
                    stack.push((c, level, Some(n)));
                }
            }
        }
        path.truncate(base);
    }

    fn values(&mut self, p: &Pattern, key: Key<'h>, _mount: usize, path: &[String]) {
        let values = match key.values() {
            Ok(v) => v,
            Err(e) => return self.warn(p.root, path, e),
        };
        let prefix = self.path_string(p.root, path);
        for v in values {
            let v = match v {
                Ok(v) => v,
                Err(e) => {
                    self.warnings.push(format!("{prefix}: {e}"));
                    continue;
                }
            };
            let name = v.name().to_string_lossy();
            if !p.matches_value_name(&name) || self.scope.excludes.excludes_value(p.root, path, &name) {
                continue;
            }
            let data = match v.data() {
                Ok(d) => d,
                Err(e) => {
                    self.warnings.push(format!("{prefix}\\{name}: {e}"));
                    continue;
                }
            };
            self.data_buf.clear();
            let mut full = String::with_capacity(prefix.len() + 1 + name.len().max(9));
            full.push_str(&prefix);
            full.push('\\');
            full.push_str(if name.is_empty() { "(Default)" } else { &name });
            self.out.push(Entry {
                path: full,
                value_type: v.value_type().0,
                size: data.len() as u64,
                digest: self.scope.digest.digest(&data),
            });
        }
    }
}
