//! The offline backend: keys of hive files mounted at registry paths.

use super::hivefile;
use super::{Children, RegKey, VNode, ValueFn};
use crate::model::Snapshot;
use crate::path::ident;
use crate::path::pattern::Root;
use crate::source::{wow64, Mount};
use hive::{Hive, HiveFile, Key};

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
            return found_or_broken(kids, name);
        }
        match self.key.subkey(name) {
            Ok(Some(k)) => Ok(Some(self.wrap(k))),
            // The lookup skips entries it cannot read: a miss is only
            // final when the whole list reads (else a key hidden by
            // damage would look deleted). Misses are rare; this costs one
            // pass over the list.
            Ok(None) => found_or_broken(self.subkeys(path)?, name),
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

/// Opens the mounted hive files (recording those that fail in
/// `snap`) and hands `f` the virtual tree over them.
pub fn with_hive_roots<R>(
    mounts: &[Mount],
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
    let mut roots: Vec<(Root, VNode<HiveKey<'_, '_>>)> = Vec::new();
    let hives: Vec<Option<Hive<'_>>> = files
        .iter()
        .map(|f| f.as_ref().and_then(|f| f.hive().ok()))
        .collect();
    for (i, (m, h)) in mounts.iter().zip(&hives).enumerate() {
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
            mounts,
            root,
            view64,
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
