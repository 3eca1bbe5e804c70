//! `64BitView BOTH` (our extension): the 64-bit and the 32-bit registry
//! view in one scan, each physical value reported once.
//!
//! Two passes run, one per view, and are merged:
//! - a value whose key is one physical key in both views (everything
//!   outside `HKLM\SOFTWARE`, SOFTWARE's shared keys, see
//!   [`crate::source::wow64`]) is the 64-bit pass's, as `64BitView TRUE`
//!   reports it;
//! - at a logical path WOW64 redirects, the views hold different physical
//!   values: both are kept, marked with their view (see
//!   [`crate::path::ident::View`]; events carry `RegistryView`);
//! - the `Wow6432Node` trees (`HKLM\SOFTWARE\Wow6432Node`,
//!   `HKLM\SOFTWARE\Classes\Wow6432Node`) hold what the 32-bit pass shows
//!   under logical names: a value the 64-bit pass finds there is dropped
//!   when the 32-bit pass reported it (else a recursive SOFTWARE scan would
//!   report each 32-bit value twice), and kept under its physical name
//!   otherwise (a pattern naming `Wow6432Node`, or a copy the 32-bit view
//!   does not show, such as `Wow6432Node\Policies` below a shared key).
//!
//! Keys (`KeyEvents`) are logical: a key is in scope while either view has
//! it. Counts per pattern and per `Exclude` are the sum of both passes (what
//! the scan read: a shared value is read in each view).

use crate::config::Scope;
use crate::model::Snapshot;
use crate::path::ident::{self, View};
use crate::path::pattern::{same_name, Root};
use crate::source::{wow64, Source};
use std::collections::HashSet;

/// Scans `scope` (with `both_views`) over its hive files.
pub fn scan(scope: &Scope, size_hint: usize) -> Snapshot {
    // One pace for both passes.
    let _pace = super::pace::Scan::begin(&scope.pace);
    // The hives are found once for both passes (an image's discovery reads
    // its SOFTWARE hive); what finding them said comes first.
    let mut found = Snapshot::default();
    let mounts = scope.source.mounts_now(&mut found).into_owned();
    let fixed = Scope {
        source: Source::Hives(mounts),
        ..scope.clone()
    };
    let (s64, s32) = passes(&fixed);
    let a = super::scan(&s64, size_hint);
    // Only a hive mounted at HKLM\SOFTWARE reads differently in the 32-bit
    // view; without one the second pass would find the same values.
    let mut snap = if fixed.mounts().iter().any(wow64::applies) {
        let b = super::scan(&s32, 0);
        merge(a, b, false)
    } else {
        a
    };
    found.warnings.append(&mut snap.warnings);
    snap.warnings = found.warnings;
    snap.unreadable.append(&mut found.unreadable);
    snap.unreadable.sort();
    snap.unreadable.dedup();
    snap
}

/// Scans `scope` (with `both_views`) over the live registry: the 64-bit
/// pass opens keys with KEY_WOW64_64KEY, the 32-bit one with KEY_WOW64_32KEY.
#[cfg(windows)]
pub fn scan_live(scope: &Scope) -> Snapshot {
    let _pace = super::pace::Scan::begin(&scope.pace);
    let (s64, s32) = passes(scope);
    let a = super::live::scan_live(&s64);
    let b = super::live::scan_live(&s32);
    merge(a, b, true)
}

/// The single-view scopes of the two passes.
fn passes(scope: &Scope) -> (Scope, Scope) {
    // No key is carried (`Incremental`): a value's identity is logical, so
    // one key's stats from one view would keep the other view's values.
    let one = |view64| Scope {
        view64,
        both_views: false,
        hints: None,
        ..scope.clone()
    };
    (one(true), one(false))
}

/// Where a key lies, for the views.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// One physical key in both views.
    Shared,
    /// Each view has its own key at this logical path.
    Redirected,
    /// Inside a `Wow6432Node` tree (the 32-bit copies, physically): the
    /// index of the `Wow6432Node` component in the key's identity parts.
    WowNode(usize),
}

/// The place of the key with identity parts `keys`. The 32-bit view differs
/// below `HKLM\SOFTWARE` and, live, below `HKCR` (Windows merges
/// `HKLM\SOFTWARE\Classes` into it, redirection included). Offline, HKCR
/// is read in the 64-bit view only.
fn place(keys: &[Vec<u8>], live: bool) -> Place {
    let names: Vec<std::borrow::Cow<'_, str>> =
        keys.iter().map(|k| ident::display_name(k)).collect();
    let mut rel: Vec<&str> = Vec::with_capacity(names.len());
    // Where `rel` starts in `keys` (HKCR's `Classes` is not in them).
    let start = match names.first().map(|r| Root::parse(r)) {
        Some(Some(Root::Hklm)) if names.len() > 1 && same_name(&names[1], "SOFTWARE") => {
            rel.extend(names[2..].iter().map(|c| c.as_ref()));
            2
        }
        Some(Some(Root::Hkcr)) if live => {
            rel.push("Classes");
            rel.extend(names[1..].iter().map(|c| c.as_ref()));
            0
        }
        _ => return Place::Shared,
    };
    if wow64::in_wow_node(&rel) {
        // `Wow6432Node` or `Classes\Wow6432Node`: the component after the
        // first when `rel` starts with Classes.
        let wow = usize::from(same_name(rel[0], "Classes"));
        Place::WowNode(start + wow)
    } else if wow64::is_redirected(&rel) {
        Place::Redirected
    } else {
        Place::Shared
    }
}

/// The place of identities' keys, remembered for the last key (entries
/// come in identity order: a key's values one after another).
struct Places {
    live: bool,
    last: Option<(Vec<u8>, Place)>,
}

impl Places {
    fn of(&mut self, id: &[u8]) -> Place {
        let key = &id[..ident::key_len(id)];
        if let Some((k, p)) = &self.last {
            if k == key {
                return *p;
            }
        }
        let p = match ident::parse(key) {
            Some(parts) => place(&parts.keys, self.live),
            None => Place::Shared,
        };
        self.last = Some((key.to_vec(), p));
        p
    }
}

/// The identity `id` (of a key inside a `Wow6432Node` tree) without its
/// `Wow6432Node` component `at`: where the 32-bit view shows it.
fn logical(id: &[u8], at: usize) -> Option<Vec<u8>> {
    let mut parts = ident::parse(id)?;
    if at >= parts.keys.len() {
        return None;
    }
    parts.keys.remove(at);
    let key = ident::key_id(&parts.keys);
    Some(match parts.value {
        Some(v) => ident::value_id(&key, &v),
        None => key,
    })
}

/// Merges the 64-bit pass `a` and the 32-bit pass `b` (see the module).
fn merge(mut a: Snapshot, b: Snapshot, live: bool) -> Snapshot {
    let mut places = Places { live, last: None };
    // The 32-bit view's own values and keys (by logical identity).
    let mut entries: Vec<_> = b
        .entries
        .into_iter()
        .filter(|e| places.of(&e.id) == Place::Redirected)
        .collect();
    let mut keys: Vec<_> = b
        .keys
        .into_iter()
        .filter(|k| places.of(&k.id) == Place::Redirected)
        .collect();
    let seen32: HashSet<&[u8]> = entries
        .iter()
        .map(|e| e.id.as_slice())
        .chain(keys.iter().map(|k| k.id.as_slice()))
        .collect();
    // The 64-bit pass's copies of those, found in Wow6432Node.
    let shown32 = |places: &mut Places, id: &[u8]| match places.of(id) {
        Place::WowNode(at) => logical(id, at).is_some_and(|l| seen32.contains(l.as_slice())),
        _ => false,
    };
    let mut own64 = Vec::with_capacity(a.entries.len());
    for mut e in std::mem::take(&mut a.entries) {
        if shown32(&mut places, &e.id) {
            continue;
        }
        if places.of(&e.id) == Place::Redirected {
            e.id = ident::with_view(&e.id, View::V64);
        }
        own64.push(e);
    }
    let keys64: Vec<_> = std::mem::take(&mut a.keys)
        .into_iter()
        .filter(|k| !shown32(&mut places, &k.id))
        .collect();
    drop(seen32);
    for e in &mut entries {
        e.id = ident::with_view(&e.id, View::V32);
    }
    entries.extend(own64);
    // Sorted runs: the stable sort merges them.
    entries.sort_by(|x, y| x.id.cmp(&y.id));
    entries.dedup_by(|x, y| x.id == y.id);
    a.entries = entries;
    keys.extend(keys64);
    keys.sort_by(|x, y| x.id.cmp(&y.id));
    keys.dedup_by(|x, y| x.id == y.id);
    a.keys = keys;

    // What could not be read in either view keeps its baseline (an
    // unreadable key's logical identity covers both views' values).
    a.unreadable.extend(b.unreadable);
    a.unreadable.sort();
    a.unreadable.dedup();
    // Both passes open the same files: say each thing once.
    for (into, from) in [
        (&mut a.failed_mounts, b.failed_mounts),
        (&mut a.warnings, b.warnings),
        (&mut a.notes, b.notes),
    ] {
        let mut seen: HashSet<String> = into.iter().cloned().collect();
        into.extend(from.into_iter().filter(|s| seen.insert(s.clone())));
    }
    super::merge_counts(&mut a.coverage, b.coverage);
    super::merge_pruned(&mut a.pruned, b.pruned);
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::digest::{Digest, DigestAlgorithm};
    use crate::model::{Entry, KeyEntry};

    fn entry(path: &str, name: &str, data: u8) -> Entry {
        let keys: Vec<&str> = path.split('\\').collect();
        Entry {
            id: ident::value_id(&ident::key_id(&keys), name.as_bytes()),
            value_type: 4,
            size: 1,
            digest: Digest::of(DigestAlgorithm::parse("sha1").unwrap(), &[data]),
            data: None,
        }
    }

    fn snap(entries: Vec<Entry>) -> Snapshot {
        let keys = entries
            .iter()
            .map(|e| KeyEntry {
                id: e.id[..ident::key_len(&e.id)].to_vec(),
                last_written: None,
            })
            .collect();
        Snapshot {
            entries,
            keys,
            ..Snapshot::default()
        }
    }

    fn shown(s: &Snapshot) -> Vec<(String, Option<View>, u8)> {
        s.entries
            .iter()
            .map(|e| {
                let d = e.digest[0];
                (e.display_path(), ident::view(&e.id), d)
            })
            .collect()
    }

    #[test]
    fn shared_once_redirected_per_view_wow_node_copies_once() {
        let a = snap(vec![
            entry(r"HKLM\SOFTWARE\Policies\Corp", "Shared", 1),
            entry(r"HKLM\SOFTWARE\Vendor\App", "Bits", 64),
            entry(r"HKLM\SOFTWARE\Wow6432Node\Policies\Corp", "Hidden", 1),
            entry(r"HKLM\SOFTWARE\Wow6432Node\Vendor\App", "Bits", 32),
            entry(r"HKLM\SYSTEM\Select", "Current", 1),
        ]);
        let b = snap(vec![
            entry(r"HKLM\SOFTWARE\Policies\Corp", "Shared", 1),
            entry(r"HKLM\SOFTWARE\Vendor\App", "Bits", 32),
            entry(r"HKLM\SYSTEM\Select", "Current", 1),
        ]);
        let d64 = a.entries[1].digest[0];
        let d32 = b.entries[1].digest[0];
        let d1 = a.entries[0].digest[0];
        let m = merge(a, b, false);
        assert_eq!(
            shown(&m),
            vec![
                (r"HKLM\SOFTWARE\Policies\Corp\Shared".into(), None, d1),
                (
                    r"HKLM\SOFTWARE\Vendor\App\Bits".into(),
                    Some(View::V64),
                    d64
                ),
                (
                    r"HKLM\SOFTWARE\Vendor\App\Bits".into(),
                    Some(View::V32),
                    d32
                ),
                // Below a shared key: not in the 32-bit view, kept as it is.
                (
                    r"HKLM\SOFTWARE\Wow6432Node\Policies\Corp\Hidden".into(),
                    None,
                    d1
                ),
                (r"HKLM\SYSTEM\Select\Current".into(), None, d1),
            ]
        );
        // Keys are logical: Vendor\App once (its Wow6432Node copy is the 32-bit one).
        let keys: Vec<String> = m.keys.iter().map(|k| k.display_path()).collect();
        assert_eq!(
            keys,
            [
                r"HKLM\SOFTWARE\Policies\Corp",
                r"HKLM\SOFTWARE\Vendor\App",
                r"HKLM\SOFTWARE\Wow6432Node\Policies\Corp",
                r"HKLM\SYSTEM\Select"
            ]
        );
    }

    #[test]
    fn hkcr_follows_the_views_live_only() {
        let a = snap(vec![entry(r"HKCR\CLSID\{x}", "", 64)]);
        let b = snap(vec![entry(r"HKCR\CLSID\{x}", "", 32)]);
        let m = merge(a, b, true);
        let views: Vec<_> = m.entries.iter().map(|e| ident::view(&e.id)).collect();
        assert_eq!(views, [Some(View::V64), Some(View::V32)]);
        let a = snap(vec![entry(r"HKCR\CLSID\{x}", "", 64)]);
        let b = snap(vec![entry(r"HKCR\CLSID\{x}", "", 64)]);
        let m = merge(a, b, false);
        assert_eq!(m.entries.len(), 1);
        assert_eq!(ident::view(&m.entries[0].id), None);
    }
}
