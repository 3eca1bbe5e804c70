//! The shared vocabulary of a scan and its comparison: what a scan found
//! (values, keys, what could not be read) and how the baseline differs from
//! it. Plain data; the stages that make and use it live elsewhere.

pub mod digest;

use crate::path::ident;
use digest::Digest;

/// One value as a scan found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The value's identity: its key path and name exactly as stored (see
    /// [`crate::path::ident`]); scans and the baseline are ordered by it.
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
    /// The key's identity (see [`crate::path::ident`]).
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

/// The result of a scan: entries sorted by path (byte order, unique) and the
/// mounts that could not be read, whose baseline entries must be kept.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub entries: Vec<Entry>,
    /// Keys in scope, sorted by path (only with `KeyEvents`).
    pub keys: Vec<KeyEntry>,
    /// The keys whose values the scan took, sorted by path (a scan held
    /// in memory; a streamed scan hands them over as [`Item::Key`]).
    pub key_items: Vec<KeyItem>,
    /// Mount points (as shown) whose hive could not be read.
    pub failed_mounts: Vec<String>,
    /// Identities of keys whose contents are unknown: the failed mounts,
    /// and keys whose subkeys or values could not all be read (damaged
    /// cells). What is missing below them is unknown, not deleted.
    pub unreadable: Vec<Vec<u8>>,
    pub warnings: Vec<String>,
    /// What is worth a line in the log (e.g. transaction logs replayed).
    pub notes: Vec<String>,
    /// What each `RegValue` pattern matched, in the scope's pattern order
    /// (empty for a scan that does not count, e.g. a region rescan).
    pub coverage: Vec<Coverage>,
    /// Per `Exclude` rule (configuration order): the keys and values it
    /// pruned from the scan.
    pub pruned: Vec<Pruned>,
}

/// How many keys a few of them shown, [`Coverage::sample`] keeps.
pub const COVERAGE_SAMPLE: usize = 5;

/// What one `RegValue` pattern matched in a scan: the keys whose values it
/// took (with `Recursive`, their subkeys too), the values and their bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    pub keys: u64,
    pub values: u64,
    /// Bytes of data of those values.
    pub bytes: u64,
    /// Of `keys`, those an `Incremental` scan carried: their values were
    /// not read (nor counted in `values` and `bytes`), the baseline's stand.
    pub carried: u64,
    /// The first keys covered, as shown (`HKLM\...`), at most [`COVERAGE_SAMPLE`].
    pub sample: Vec<String>,
    /// The deepest existing key on the pattern's way (as shown): where a
    /// pattern that matches nothing stops finding keys.
    pub nearest: Option<String>,
}

impl Coverage {
    /// Adds `other` (the same pattern's count from another part of a scan).
    pub fn add(&mut self, other: &Coverage) {
        self.keys += other.keys;
        self.values += other.values;
        self.bytes += other.bytes;
        self.carried += other.carried;
        for k in &other.sample {
            if self.sample.len() < COVERAGE_SAMPLE && !self.sample.contains(k) {
                self.sample.push(k.clone());
            }
        }
        let depth = |s: &Option<String>| s.as_ref().map_or(0, |s| s.matches('\\').count() + 1);
        if depth(&other.nearest) > depth(&self.nearest) {
            self.nearest = other.nearest.clone();
        }
    }
}

/// What one `Exclude` rule pruned in a scan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Keys excluded with their subtrees (each counted once, where the rule cut).
    pub keys: u64,
    pub values: u64,
}

impl Snapshot {
    /// Whether `id` lies under a mount that failed to read or a key that
    /// could not be read whole: its absence from the scan proves nothing.
    pub fn is_unavailable(&self, id: &[u8]) -> bool {
        ident::under_any(&self.unreadable, id)
    }
}

/// What a key holds, as its backend tells it without reading the values
/// (a hive's key cell; live, `RegQueryInfoKey`): what `Incremental`
/// compares with the baseline's copy to leave an unchanged key's values
/// unread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyStats {
    /// Last-written time (FILETIME).
    pub last_written: u64,
    pub values: u32,
    pub subkeys: u32,
}

/// A key whose values a scan took: handed over before those values (its
/// identity sorts first), so the baseline can store per key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyItem {
    pub id: Vec<u8>,
    /// None where the backend cannot tell (merged views): never carried.
    pub stats: Option<KeyStats>,
    /// `Incremental`: the stats equal the baseline's, so the values were
    /// not read and no `Item::Entry` follows for this key: the baseline's
    /// values of this key stand as they are.
    pub carried: bool,
}

/// The baseline's [`KeyStats`] per key, handed to an `Incremental` scan.
#[derive(Default)]
pub struct KeyHints {
    /// Sorted by identity.
    keys: Vec<(Vec<u8>, KeyStats)>,
}

impl KeyHints {
    pub fn new(mut keys: Vec<(Vec<u8>, KeyStats)>) -> KeyHints {
        keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        keys.dedup_by(|a, b| a.0 == b.0);
        KeyHints { keys }
    }

    pub fn get(&self, id: &[u8]) -> Option<&KeyStats> {
        self.keys
            .binary_search_by(|(k, _)| k.as_slice().cmp(id))
            .ok()
            .map(|i| &self.keys[i].1)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl std::fmt::Debug for KeyHints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyHints({} keys)", self.keys.len())
    }
}

/// What a streamed scan hands over, in path order.
pub enum Item {
    /// A key, before its values (see [`KeyItem`]).
    Key(KeyItem),
    Entry(Entry),
    /// A key (its identity) that could not be read whole: see
    /// [`Snapshot::unreadable`]. It comes before any entry inside the key.
    Unreadable(Vec<u8>),
}

/// A difference between the baseline and a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    New(Entry),
    Changed {
        old: Entry,
        new: Entry,
    },
    Delete(Entry),
    /// `KeyEvents`: a key appeared in scope.
    NewKey(KeyEntry),
    /// `KeyEvents`: a key left the registry (its values come as DELETEs).
    DeleteKey(KeyEntry),
}

impl Change {
    /// The identity of the value or key changed.
    pub fn id(&self) -> &[u8] {
        match self {
            Change::New(e) | Change::Delete(e) => &e.id,
            Change::Changed { new, .. } => &new.id,
            Change::NewKey(k) | Change::DeleteKey(k) => &k.id,
        }
    }
}

/// Orders changes by identity: a key, then its values, then its subkeys,
/// so a deleted key reads as one DELETE_KEY followed by a DELETE per value.
pub fn sort_changes(changes: &mut [Change]) {
    changes.sort_by(|a, b| a.id().cmp(b.id()));
}
