//! The offline backend: keys of hive files mounted at registry paths.

use super::hivefile;
use super::{classes, links};
use super::{Children, RegKey, VNode, ValueFn};
use crate::model::{KeyStats, Snapshot};
use crate::path::ident;
use crate::path::pattern::{same_name, Root};
use crate::source::{wow64, Mount};
use hive::{Cells, Hive, HiveFile, Key};
use std::collections::HashSet;
use std::sync::Arc;

/// Opens a mount's hive: the file, with its transaction logs replayed when
/// it is dirty and that is allowed.
/// Returns the file, what was replayed (for the log), and warnings.
pub fn open_hive(m: &Mount) -> Result<(HiveFile, Vec<String>, Vec<String>), String> {
    let o = hivefile::open(&m.file, m.use_logs)?;
    let (mut notes, mut warnings) = (Vec::new(), Vec::new());
    // A truncated file (read consistently, but shorter than its base block
    // says) is read in part: what lies past the end is unreadable, and the
    // scanner keeps its baseline. Say so once, for the whole file.
    if let Ok(h) = o.file.hive() {
        let declared = u64::from(h.base_block().bins_size);
        let held = h.cells().bins_len() as u64;
        if declared > held {
            warnings.push(format!(
                "truncated: the base block declares {declared} bytes of hive bins, \
                 the file holds {held}; keys past the end are unreadable and their baseline is kept"
            ));
        }
    }
    if let Some(r) = &o.replay {
        notes.push(hivefile::describe(r));
        notes.extend(r.notes.iter().cloned());
        warnings.extend(r.warnings.iter().cloned());
    }
    Ok((o.file, notes, warnings))
}

/// The mounted hives of one scan, as the keys below see them: every
/// mount's root (links may lead from one hive into another) and, for a
/// hive mounted at `HKLM\SYSTEM`, where `CurrentControlSet` points.
pub struct Forest<'s, 'h> {
    mounts: &'s [Mount],
    /// Per mount: its hive's cells and root key, when the hive opened.
    roots: Vec<Option<(Cells<'h>, Key<'h>)>>,
    /// Per mount: `CurrentControlSet`, for a hive mounted at `HKLM\SYSTEM`.
    current: Vec<Option<links::Current<'h>>>,
    view64: bool,
}

/// A key of a mounted hive and where it sits.
#[derive(Clone, Copy)]
struct At<'h> {
    mount: usize,
    key: Key<'h>,
}

#[derive(Clone)]
enum Kind<'h> {
    /// A key of one hive.
    One(At<'h>),
    /// An `HKCR` key present in both the user's and the machine's classes.
    Both { user: At<'h>, machine: At<'h> },
    /// A link that cannot be followed: the full warning, and its cause
    /// (shared by links whose target is this one).
    Broken { why: Arc<str>, cause: Arc<str> },
}

/// A key of a mounted hive file (the offline backend), or of a view made of
/// them (a followed link, `HKCR`'s merge).
#[derive(Clone)]
pub struct HiveKey<'s, 'h> {
    forest: &'s Forest<'s, 'h>,
    kind: Kind<'h>,
    /// The key whose name this one shows: the link key for a followed link;
    /// none for a name regmon makes (`CurrentControlSet`).
    named: Option<Key<'h>>,
    /// Read as stored, without the 32-bit view (reached through a link or
    /// a merge, whose targets are physical paths).
    plain: bool,
    /// Reached through a registry link: its target as Windows writes it.
    link: Option<Arc<str>>,
    /// This key or one above it was reached through a link.
    linked: bool,
}

/// The link keys being followed (mount, cell offset), innermost last.
type Trail = Vec<(usize, u32)>;

impl<'s, 'h> Forest<'s, 'h> {
    fn key(&'s self, at: At<'h>, plain: bool) -> HiveKey<'s, 'h> {
        HiveKey {
            forest: self,
            kind: Kind::One(at),
            named: Some(at.key),
            plain,
            link: None,
            linked: false,
        }
    }

    fn broken(&'s self, why: String, cause: Arc<str>) -> HiveKey<'s, 'h> {
        HiveKey {
            forest: self,
            kind: Kind::Broken {
                why: why.into(),
                cause,
            },
            named: None,
            plain: true,
            link: None,
            linked: true,
        }
    }

    /// The key at `root\comps` (a physical path), links followed; none
    /// when no such key exists. A mount that covers the path must exist.
    fn open(
        &'s self,
        root: Root,
        comps: &[String],
        trail: &mut Trail,
    ) -> Result<Option<HiveKey<'s, 'h>>, Stop> {
        let best = self
            .mounts
            .iter()
            .enumerate()
            .filter(|(_, m)| {
                m.root == root
                    && m.keys.len() <= comps.len()
                    && m.keys.iter().zip(comps).all(|(a, b)| same_name(a, b))
            })
            .max_by_key(|(_, m)| m.keys.len());
        let Some((i, m)) = best else {
            return Err(Stop::cause("the target is not mounted in this input"));
        };
        let Some((_, root_key)) = self.roots.get(i).copied().flatten() else {
            return Err(Stop::cause("the target's hive file could not be read"));
        };
        let mut cur = self.key(
            At {
                mount: i,
                key: root_key,
            },
            true,
        );
        for c in &comps[m.keys.len()..] {
            if let Kind::Broken { cause, .. } = &cur.kind {
                return Err(Stop(cause.clone()));
            }
            match cur.find(c, trail) {
                Ok(Some((_, k))) => cur = k,
                Ok(None) => return Ok(None),
                Err(e) => return Err(Stop(format!("the target cannot be read ({e})").into())),
            }
        }
        Ok(Some(cur))
    }

    /// What a symbolic link key leads to: its target's key (showing the
    /// link's name), or a broken key saying why the link is not followed.
    fn follow(&'s self, mount: usize, link: Key<'h>, trail: &mut Trail) -> HiveKey<'s, 'h> {
        let not_followed = |why: String, cause: Arc<str>| HiveKey {
            named: Some(link),
            ..self.broken(why, cause)
        };
        let target = match links::stored_target(link) {
            Ok(t) => t,
            Err(e) => {
                return not_followed(
                    format!("registry link not followed: {e}; what is below it keeps its baseline"),
                    Arc::from("a link key whose target cannot be read"),
                )
            }
        };
        let fail = |cause: Arc<str>| {
            not_followed(
                format!(
                    "registry link to {target} not followed: {cause}; what is below it keeps its baseline"
                ),
                cause,
            )
        };
        if trail.contains(&(mount, link.offset())) {
            return fail(Arc::from("the link leads back to itself (a loop)"));
        }
        if trail.len() >= links::MAX_HOPS {
            return fail(Arc::from(format!(
                "more than {} links in a row",
                links::MAX_HOPS
            )));
        }
        let Some((root, comps)) = links::parse_target(&target) else {
            return fail(Arc::from(
                "the target is not under \\REGISTRY\\MACHINE or \\REGISTRY\\USER",
            ));
        };
        trail.push((mount, link.offset()));
        let found = self.open(root, &comps, trail);
        trail.pop();
        match found {
            Ok(Some(k)) => match &k.kind {
                Kind::Broken { cause, .. } => fail(cause.clone()),
                Kind::One(at) if at.mount == mount && self.encloses(at, link) => fail(Arc::from(
                    "the target is the link itself or one of its parent keys (a loop)",
                )),
                _ => HiveKey {
                    named: Some(link),
                    plain: true,
                    link: Some(Arc::from(target.as_str())),
                    linked: true,
                    ..k
                },
            },
            Ok(None) => fail(Arc::from("the target key does not exist")),
            Err(Stop(cause)) => fail(cause),
        }
    }

    /// Whether `at` is `key` or one of its parents (same hive).
    fn encloses(&self, at: &At<'h>, key: Key<'h>) -> bool {
        let Some((cells, root)) = self.roots.get(at.mount).copied().flatten() else {
            return false;
        };
        let mut k = key;
        for _ in 0..=MAX_KEY_DEPTH {
            if k.offset() == at.key.offset() {
                return true;
            }
            if k.offset() == root.offset() {
                return false;
            }
            match Key::parse(cells, k.parent_offset()) {
                Ok(p) => k = p,
                Err(_) => return false,
            }
        }
        false
    }

    /// Whether `at` is the root of a hive mounted at `HKLM\SYSTEM`.
    fn current_of(&self, at: &At<'h>) -> Option<&links::Current<'h>> {
        let c = self.current.get(at.mount)?.as_ref()?;
        let (_, root) = self.roots.get(at.mount).copied().flatten()?;
        (root.offset() == at.key.offset()).then_some(c)
    }

    /// For `Hardware Profiles` of a control set of a SYSTEM hive: its
    /// `Current` link, when `Control\IDConfigDB\CurrentConfig` resolves.
    fn current_profile(&self, at: &At<'h>) -> Option<(Key<'h>, String)> {
        self.current.get(at.mount)?.as_ref()?;
        if !same_name(&at.key.name().to_string_lossy(), "Hardware Profiles") {
            return None;
        }
        let (cells, root) = self.roots.get(at.mount).copied().flatten()?;
        let set = Key::parse(cells, at.key.parent_offset()).ok()?;
        if set.parent_offset() != root.offset() {
            return None;
        }
        links::current_profile(set).ok()
    }
}

/// Why a target could not be reached (a short cause for the warning).
struct Stop(Arc<str>);

impl Stop {
    fn cause(s: &str) -> Stop {
        Stop(Arc::from(s))
    }
}

/// Hive nesting deeper than Windows allows is corrupt: parent walks stop.
const MAX_KEY_DEPTH: usize = 512;

impl<'s, 'h> HiveKey<'s, 'h> {
    fn view32(&self) -> Option<At<'h>> {
        match &self.kind {
            Kind::One(at)
                if !self.plain
                    && !self.forest.view64
                    && wow64::applies(&self.forest.mounts[at.mount]) =>
            {
                Some(*at)
            }
            _ => None,
        }
    }

    /// A key found below this one: a link key becomes what it leads to.
    fn adopt(&self, mount: usize, key: Key<'h>, trail: &mut Trail) -> (String, Self) {
        let name = key.name().to_string_lossy().into_owned();
        if key.is_symlink() {
            return (name, self.forest.follow(mount, key, trail));
        }
        (
            name,
            HiveKey {
                linked: self.linked,
                ..self.forest.key(At { mount, key }, self.plain)
            },
        )
    }

    /// The links Windows makes at boot below `at` (none in a hive file):
    /// `CurrentControlSet` below a SYSTEM hive's root, `Current` below a
    /// control set's `Hardware Profiles`.
    fn made_links(&self, at: &At<'h>) -> Option<(String, Self)> {
        let f = self.forest;
        if let Some(c) = f.current_of(at) {
            let k = match c {
                links::Current::Set { key, target } => HiveKey {
                    named: None,
                    link: Some(Arc::from(target.as_str())),
                    linked: true,
                    ..f.key(
                        At {
                            mount: at.mount,
                            key: *key,
                        },
                        true,
                    )
                },
                links::Current::Unresolved(why) => f.broken(
                    why.clone(),
                    Arc::from("CurrentControlSet cannot be resolved"),
                ),
            };
            return Some((links::CURRENT_CONTROL_SET.to_string(), k));
        }
        let (key, target) = f.current_profile(at)?;
        Some((
            "Current".to_string(),
            HiveKey {
                named: None,
                link: Some(Arc::from(target.as_str())),
                linked: true,
                ..f.key(
                    At {
                        mount: at.mount,
                        key,
                    },
                    true,
                )
            },
        ))
    }

    /// The subkeys as stored (64-bit view), links followed, with the links
    /// Windows makes at boot.
    fn kids(&self, trail: &mut Trail) -> Result<Children<Self>, String> {
        match &self.kind {
            Kind::Broken { why, .. } => Err(why.to_string()),
            Kind::One(at) => {
                let mut out: Children<Self> = Vec::new();
                for r in at.key.subkeys().map_err(|e| e.to_string())? {
                    out.push(
                        r.map(|k| self.adopt(at.mount, k, trail))
                            .map_err(|e| e.to_string()),
                    );
                }
                if let Some((n, k)) = self.made_links(at) {
                    let stored = out
                        .iter()
                        .any(|r| matches!(r, Ok((m, _)) if same_name(m, &n)));
                    if !stored {
                        out.push(Ok((n, k)));
                    }
                }
                Ok(out)
            }
            Kind::Both { user, machine } => {
                let u = self.side(*user).kids(trail)?;
                let m = self.side(*machine).kids(trail)?;
                Ok(classes::union(u, m)
                    .into_iter()
                    .filter_map(|r| match r {
                        Ok((n, u, m)) => merge(u, m).map(|k| Ok((n, k))),
                        Err(e) => Some(Err(e)),
                    })
                    .collect())
            }
        }
    }

    /// The subkey `name` as stored (64-bit view), links followed.
    fn find(&self, name: &str, trail: &mut Trail) -> Result<Option<(String, Self)>, String> {
        match &self.kind {
            Kind::Broken { why, .. } => Err(why.to_string()),
            Kind::One(at) => match at.key.subkey(name) {
                Ok(Some(k)) => Ok(Some(self.adopt(at.mount, k, trail))),
                // The lookup skips entries it cannot read: a miss is only
                // final when the whole list reads (else a key hidden by
                // damage would look deleted). Misses are rare; this costs
                // one pass over the list.
                Ok(None) => found_or_broken(self.kids(trail)?, name),
                Err(e) => Err(e.to_string()),
            },
            Kind::Both { user, machine } => {
                let u = self.side(*user).find(name, trail)?;
                let m = self.side(*machine).find(name, trail)?;
                Ok(match (u, m) {
                    (Some((n, u)), m) => merge(Some(u), m.map(|m| m.1)).map(|k| (n, k)),
                    (None, m) => m,
                })
            }
        }
    }

    /// One side of a merged key, as a key of its own.
    fn side(&self, at: At<'h>) -> Self {
        self.forest.key(at, true)
    }

    /// The key whose values this one shows.
    fn values_key(&self) -> Option<Key<'h>> {
        match &self.kind {
            Kind::One(at) | Kind::Both { user: at, .. } => Some(at.key),
            Kind::Broken { .. } => None,
        }
    }
}

/// A merged `HKCR` key from the user's and the machine's keys of one
/// name: both when both are plain keys, else the one that is there (the
/// user's first).
fn merge<'s, 'h>(
    user: Option<HiveKey<'s, 'h>>,
    machine: Option<HiveKey<'s, 'h>>,
) -> Option<HiveKey<'s, 'h>> {
    match (user, machine) {
        (Some(u), Some(m)) => Some(match (&u.kind, &m.kind) {
            (Kind::One(ua), Kind::One(ma)) => HiveKey {
                kind: Kind::Both {
                    user: *ua,
                    machine: *ma,
                },
                ..u
            },
            _ => u,
        }),
        (u, m) => u.or(m),
    }
}

impl RegKey for HiveKey<'_, '_> {
    fn subkeys(&self, path: &[String]) -> Result<Children<Self>, String> {
        let Some(at) = self.view32() else {
            return self.kids(&mut Trail::new());
        };
        let Some((_, root)) = self.forest.roots.get(at.mount).copied().flatten() else {
            return self.kids(&mut Trail::new());
        };
        let list = wow64::children_32(&self.forest.mounts[at.mount], root, path)
            .map_err(|e| e.to_string())?;
        let mut trail = Trail::new();
        Ok(list
            .into_iter()
            .map(|r| {
                r.map(|k| self.adopt(at.mount, k, &mut trail))
                    .map_err(|e| e.to_string())
            })
            .collect())
    }

    fn subkey(&self, name: &str, path: &[String]) -> Result<Option<(String, Self)>, String> {
        if self.view32().is_some() {
            // The 32-bit view merges two physical trees: enumerate and filter.
            let kids = self.subkeys(path)?;
            return found_or_broken(kids, name);
        }
        self.find(name, &mut Trail::new())
    }

    fn for_each_value(
        &self,
        f: &mut ValueFn<'_>,
        warn: &mut dyn FnMut(String),
    ) -> Result<(), String> {
        let key = match (&self.kind, self.values_key()) {
            (Kind::Broken { why, .. }, _) => return Err(why.to_string()),
            (_, Some(k)) => k,
            (_, None) => return Ok(()),
        };
        let mut exact = Vec::new();
        for v in key.values().map_err(|e| e.to_string())? {
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
        match &self.kind {
            Kind::One(at) => Some((at.mount, u64::from(at.key.offset()))),
            Kind::Both { user, machine } => Some(classes::both_identity(
                (user.mount, u64::from(user.key.offset())),
                (machine.mount, u64::from(machine.key.offset())),
            )),
            Kind::Broken { .. } => None,
        }
    }

    fn exact_name(&self) -> Option<Vec<u8>> {
        let n = self.named?.name();
        if n.is_valid_unicode() {
            return None;
        }
        let mut out = Vec::new();
        ident::wtf8_from_utf16(n.units(), &mut out);
        Some(out)
    }

    fn last_written(&self) -> Option<u64> {
        self.values_key().map(|k| k.last_written())
    }

    fn stats(&self) -> Option<KeyStats> {
        // A key of one hive, in its own view: the cell tells what it holds.
        // Merged keys (HKCR, the 32-bit view's merged trees) are read.
        match &self.kind {
            Kind::One(at) if self.view32().is_none() => Some(KeyStats {
                last_written: at.key.last_written(),
                values: at.key.value_count(),
                subkeys: at.key.subkey_count(),
            }),
            _ => None,
        }
    }

    fn link(&self) -> Option<String> {
        self.link.as_deref().map(String::from)
    }

    fn through_link(&self) -> bool {
        self.linked
    }
}

/// The child `name` of a listing; none only when every entry could be read.
fn found_or_broken<K>(kids: Children<K>, name: &str) -> Result<Option<(String, K)>, String> {
    let mut broken = None;
    for kid in kids {
        match kid {
            Ok((n, k)) if crate::path::pattern::same_name(&n, name) => return Ok(Some((n, k))),
            Ok(_) => {}
            Err(e) => broken = broken.or(Some(e)),
        }
    }
    match broken {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// Opens the mounted hive files (recording those that fail in `snap`) and
/// hands `f` the virtual tree over them (64-bit or 32-bit view), with
/// `user` (a SID: `HKCU` and the user's part of `HKCR`, when those are not
/// mounted themselves).
pub fn with_hive_roots<R>(
    (mounts, user): (&[Mount], Option<&str>),
    view64: bool,
    snap: &mut Snapshot,
    f: impl FnOnce(&[(Root, VNode<HiveKey<'_, '_>>)], &mut Snapshot) -> R,
) -> R {
    let mut files: Vec<Option<HiveFile>> = Vec::new();
    for m in mounts {
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
    let hives: Vec<Option<Hive<'_>>> = files
        .iter()
        .map(|f| f.as_ref().and_then(|f| f.hive().ok()))
        .collect();
    let mut forest = Forest {
        mounts,
        roots: Vec::with_capacity(mounts.len()),
        current: Vec::with_capacity(mounts.len()),
        view64,
    };
    for (m, h) in mounts.iter().zip(&hives) {
        let root = match h.as_ref().map(|h| h.root().map(|r| (h.cells(), r))) {
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => {
                snap.warnings.push(format!("{}: {e}", m.file.display()));
                snap.failed_mounts.push(m.display());
                snap.unreadable.push(m.id());
                None
            }
            None => None,
        };
        let current = match root {
            Some((_, r)) if is_system(m) => {
                let (c, warnings) = links::current_control_set(r, &m.file.display().to_string());
                snap.warnings.extend(warnings);
                Some(c)
            }
            _ => None,
        };
        forest.roots.push(root);
        forest.current.push(current);
    }
    let forest = forest;
    let mut roots: Vec<(Root, VNode<HiveKey<'_, '_>>)> = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let Some((_, root)) = forest.roots[i] else {
            continue;
        };
        let key = forest.key(
            At {
                mount: i,
                key: root,
            },
            false,
        );
        match roots.iter_mut().find(|(r, _)| *r == m.root) {
            Some((_, v)) => v.mount(&m.keys, key),
            None => {
                let mut v = VNode::new(m.root.short());
                v.mount(&m.keys, key);
                roots.push((m.root, v));
            }
        }
    }
    for (root, key) in views(&forest, user) {
        if !roots.iter().any(|(r, _)| *r == root) {
            let mut v = VNode::new(root.short());
            v.key = Some(key);
            roots.push((root, v));
        }
    }
    let before = snap.warnings.len();
    let r = f(&roots, snap);
    // A key that cannot be read is met by each way in (its values, its
    // subkeys, each pattern): say it once.
    let mut said = HashSet::new();
    let mut i = 0;
    snap.warnings.retain(|w| {
        i += 1;
        i <= before || said.insert(w.clone())
    });
    r
}

/// Whether `m` is mounted at `HKLM\SYSTEM`.
fn is_system(m: &Mount) -> bool {
    m.root == Root::Hklm && m.keys.len() == 1 && same_name(&m.keys[0], "SYSTEM")
}

/// The roots Windows builds from others, for those not mounted themselves:
/// `HKCC` (`HKLM\SYSTEM\CurrentControlSet\Hardware Profiles\Current`),
/// `HKCU` (`HKU\<user>`) and `HKCR` (`HKLM\SOFTWARE\Classes` merged with
/// `HKU\<user>_Classes`).
fn views<'s, 'h>(forest: &'s Forest<'s, 'h>, user: Option<&str>) -> Vec<(Root, HiveKey<'s, 'h>)> {
    let mounted = |r: Root| forest.mounts.iter().any(|m| m.root == r);
    let open = |root: Root, comps: &[&str]| {
        let comps: Vec<String> = comps.iter().map(|c| c.to_string()).collect();
        match forest.open(root, &comps, &mut Trail::new()) {
            Ok(Some(k)) => Some(k),
            Ok(None) | Err(_) => None,
        }
    };
    let mut out = Vec::new();
    if !mounted(Root::Hkcc) && forest.mounts.iter().any(is_system) {
        if let Some(k) = open(
            Root::Hklm,
            &[
                "SYSTEM",
                links::CURRENT_CONTROL_SET,
                "Hardware Profiles",
                "Current",
            ],
        ) {
            out.push((Root::Hkcc, k));
        }
    }
    if let Some(sid) = user {
        if !mounted(Root::Hkcu) {
            if let Some(k) = open(Root::Hku, &[sid]) {
                out.push((Root::Hkcu, k));
            }
        }
    }
    if !mounted(Root::Hkcr) {
        let machine = open(Root::Hklm, &["SOFTWARE", "Classes"]);
        let classes = user.map(|sid| format!("{sid}{}", super::CLASSES_SUFFIX));
        let mine = classes.and_then(|c| open(Root::Hku, &[&c]));
        if let Some(k) = merge(mine, machine) {
            out.push((Root::Hkcr, k));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Scope;
    use crate::source::Source;
    use hive::write::{to_bytes, KeyNode, WriteOptions};
    use hive::ValueType;
    use std::path::Path;

    fn sz(s: &str) -> Vec<u8> {
        format!("{s}\0")
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect()
    }

    fn mount(dir: &Path, at: &str, file: &str, root: &KeyNode) -> Mount {
        let p = dir.join(file);
        std::fs::write(&p, to_bytes(root, &WriteOptions::default())).unwrap();
        Mount::parse(at, p, false).unwrap()
    }

    /// The paths a scan of `pattern` (recursive) finds, each with the
    /// first byte of its data's digest (to tell the sides apart).
    fn scan(pattern: &str, mounts: Vec<Mount>, user: Option<&str>) -> Vec<(String, u8)> {
        let mut scope = Scope::for_test(&[pattern], true);
        scope.source = Source::Hives(mounts);
        scope.user = user.map(String::from);
        let snap = crate::scan::scan(&scope, 0);
        assert!(snap.warnings.is_empty(), "{:?}", snap.warnings);
        snap.entries
            .iter()
            .map(|e| (e.display_path(), e.digest[0]))
            .collect()
    }

    fn machine_and_user(dir: &Path) -> Vec<Mount> {
        let mut software = KeyNode::new("SOFTWARE");
        let txt = software.key_mut("Classes\\.txt");
        txt.set_value("", ValueType::SZ, sz("txtfile"));
        txt.set_value("Content Type", ValueType::SZ, sz("text/plain"));
        software
            .key_mut("Classes\\.txt\\ShellNew")
            .set_value("NullFile", ValueType::SZ, sz(""));
        software
            .key_mut("Classes\\txtfile\\shell\\open\\command")
            .set_value("", ValueType::EXPAND_SZ, sz("notepad.exe %1"));
        let mut classes = KeyNode::new("S-1-5-21-1-2-3-1001_Classes");
        classes
            .key_mut(".TXT")
            .set_value("", ValueType::SZ, sz("myeditor"));
        classes
            .key_mut(".TXT\\OpenWithList\\a")
            .set_value("", ValueType::SZ, sz("x.exe"));
        classes
            .key_mut("MyApp")
            .set_value("", ValueType::SZ, sz("app"));
        let mut ntuser = KeyNode::new("NTUSER");
        ntuser
            .key_mut("Software\\Microsoft\\Windows\\CurrentVersion\\Run")
            .set_value("Updater", ValueType::SZ, sz("u.exe"));
        vec![
            mount(dir, "HKLM\\SOFTWARE", "SOFTWARE", &software),
            mount(
                dir,
                "HKU\\S-1-5-21-1-2-3-1001_Classes",
                "UsrClass.dat",
                &classes,
            ),
            mount(dir, "HKU\\S-1-5-21-1-2-3-1001", "NTUSER.DAT", &ntuser),
        ]
    }

    #[test]
    fn hkcr_merges_the_user_s_classes_over_the_machine_s() {
        let dir = tempfile::tempdir().unwrap();
        let mounts = machine_and_user(dir.path());
        let sid = "S-1-5-21-1-2-3-1001";
        let names = |v: Vec<(String, u8)>| v.into_iter().map(|(p, _)| p).collect::<Vec<_>>();
        let merged = scan("HKCR\\*", mounts.clone(), Some(sid));
        // The user's .txt hides the machine's values (Content Type), its
        // subkeys join the machine's (ShellNew); the name is the user's.
        assert_eq!(
            names(merged.clone()),
            [
                "HKCR\\.TXT\\(Default)",
                "HKCR\\.TXT\\OpenWithList\\a\\(Default)",
                "HKCR\\.TXT\\ShellNew\\NullFile",
                "HKCR\\MyApp\\(Default)",
                "HKCR\\txtfile\\shell\\open\\command\\(Default)",
            ]
        );
        let machine = scan("HKCR\\*", mounts.clone(), None);
        assert_eq!(
            names(machine.clone()),
            [
                "HKCR\\.txt\\(Default)",
                "HKCR\\.txt\\Content Type",
                "HKCR\\.txt\\ShellNew\\NullFile",
                "HKCR\\txtfile\\shell\\open\\command\\(Default)",
            ]
        );
        assert_ne!(merged[0].1, machine[0].1, "the user's (Default) wins");

        // HKCU is the user's hive, only with a user.
        assert_eq!(
            names(scan(
                "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\*",
                mounts.clone(),
                Some(sid)
            )),
            ["HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\Updater"]
        );
        assert!(scan("HKCU\\*", mounts.clone(), None).is_empty());

        // A literal path finds the merged key too.
        assert_eq!(
            names(scan(
                "HKCR\\.txt\\ShellNew\\NullFile",
                mounts.clone(),
                Some(sid)
            )),
            ["HKCR\\.TXT\\ShellNew\\NullFile"]
        );

        // HKCR mounted explicitly is that hive alone.
        let mut own = KeyNode::new("CR");
        own.key_mut("only")
            .set_value("v", ValueType::DWORD, vec![1, 0, 0, 0]);
        let mut with_own = mounts;
        with_own.push(mount(dir.path(), "HKCR", "CR", &own));
        assert_eq!(
            names(scan("HKCR\\*", with_own, Some(sid))),
            ["HKCR\\only\\v"]
        );
    }

    #[test]
    fn a_merged_scan_finds_the_same_twice() {
        let dir = tempfile::tempdir().unwrap();
        let mounts = machine_and_user(dir.path());
        let a = scan("HKCR\\*", mounts.clone(), Some("S-1-5-21-1-2-3-1001"));
        let b = scan("HKCR\\*", mounts, Some("S-1-5-21-1-2-3-1001"));
        assert_eq!(a, b);
    }
}
