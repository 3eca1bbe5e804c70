//! Comparing a scan with the baseline: a merge of two streams in identity
//! order (the stored rows, the scan's items), pure and unit-tested apart
//! from the store.

use super::BaselineError;
use crate::model::{Change, Entry, Item, KeyEntry};
use crate::path::ident;
use std::collections::VecDeque;

/// The key changes from `old` to `new`, both sorted by path.
pub fn merge_keys(
    old: impl Iterator<Item = Result<KeyEntry, BaselineError>>,
    new: &[KeyEntry],
    unavailable: impl Fn(&[u8]) -> bool,
) -> Result<Vec<Change>, BaselineError> {
    use std::cmp::Ordering;
    let mut changes = Vec::new();
    let mut old = old.peekable();
    let mut new = new.iter().peekable();
    loop {
        let ord = match (old.peek(), new.peek()) {
            (None, None) => break,
            (Some(Err(_)), _) => return Err(old.next().expect("peeked").unwrap_err()),
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(Ok(o)), Some(n)) => o.id.cmp(&n.id),
        };
        match ord {
            Ordering::Less => {
                let o = old.next().expect("peeked")?;
                if !unavailable(&o.id) {
                    changes.push(Change::DeleteKey(o));
                }
            }
            Ordering::Greater => changes.push(Change::NewKey(new.next().expect("peeked").clone())),
            Ordering::Equal => {
                old.next();
                new.next();
            }
        }
    }
    Ok(changes)
}

/// Why a comparison stopped.
#[derive(Debug)]
pub enum MergeError {
    /// The scan's values did not come in path order (the caller scans again
    /// in memory, where it sorts).
    Disorder,
    Failed(BaselineError),
}

impl From<BaselineError> for MergeError {
    fn from(e: BaselineError) -> Self {
        MergeError::Failed(e)
    }
}

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MergeError::Disorder => f.write_str("scan values out of order"),
            MergeError::Failed(e) => e.fmt(f),
        }
    }
}

/// Finds the changes between an old state, fed one row at a time in path
/// order, and a scan's items (arriving in path order, possibly while the
/// scan runs). Unchanged rows are compared in place and never copied, so a
/// no-change rescan allocates nothing here.
pub struct Merger<'i> {
    items: &'i mut dyn Iterator<Item = Item>,
    peeked: Option<Entry>,
    /// Keys (identities) whose missing values are not deletions: failed
    /// mounts, and keys the scan could not read whole (they arrive with the
    /// items).
    unavailable: Vec<Vec<u8>>,
    /// Keys the scan carried (`Incremental`: stats equal to the baseline's,
    /// values not read), in path order, those behind the old rows dropped:
    /// their stored values stand as they are.
    carried: VecDeque<Vec<u8>>,
    /// Stored values kept unread under carried keys.
    kept: usize,
    /// The last new identity taken, to check the order and drop duplicates.
    prev: Vec<u8>,
    /// The identity of the last key item taken.
    last_key: Vec<u8>,
    started: bool,
    /// New values seen.
    count: usize,
    changes: Vec<Change>,
    /// Rewrite unchanged rows too (their kept data), silently.
    pub refresh: bool,
    refreshed: Vec<Entry>,
}

impl<'i> Merger<'i> {
    pub fn new(items: &'i mut dyn Iterator<Item = Item>, unavailable: Vec<Vec<u8>>) -> Self {
        Merger {
            items,
            peeked: None,
            unavailable,
            carried: VecDeque::new(),
            kept: 0,
            prev: Vec::new(),
            last_key: Vec::new(),
            started: false,
            count: 0,
            changes: Vec::new(),
            refresh: false,
            refreshed: Vec::new(),
        }
    }

    fn peek(&mut self) -> Result<Option<&Entry>, MergeError> {
        while self.peeked.is_none() {
            if !self.pull()? {
                break;
            }
        }
        Ok(self.peeked.as_ref())
    }

    /// Takes one item of the scan; false at its end.
    fn pull(&mut self) -> Result<bool, MergeError> {
        match self.items.next() {
            None => return Ok(false),
            Some(Item::Unreadable(p)) => self.unavailable.push(p),
            // A key comes before its values (and before its subkeys'):
            // every carried key at or before an old row's key has been
            // seen by the time that row is matched.
            Some(Item::Key(k)) => {
                self.last_key.clear();
                self.last_key.extend_from_slice(&k.id);
                if k.carried {
                    self.carried.push_back(k.id);
                }
            }
            Some(Item::Entry(e)) => {
                if self.started {
                    match e.id.cmp(&self.prev) {
                        std::cmp::Ordering::Less => return Err(MergeError::Disorder),
                        // Two patterns reaching the same value: once.
                        std::cmp::Ordering::Equal => return Ok(true),
                        std::cmp::Ordering::Greater => {}
                    }
                }
                self.prev.clear();
                self.prev.extend_from_slice(&e.id);
                self.started = true;
                self.count += 1;
                self.peeked = Some(e);
            }
        }
        Ok(true)
    }

    /// One old row: its identity, a test of whether it equals a new entry
    /// (type, size, digest), and a way to copy it when it is reported.
    pub fn old(
        &mut self,
        id: &[u8],
        same: impl FnOnce(&Entry) -> Result<bool, BaselineError>,
        entry: impl FnOnce() -> Result<Entry, BaselineError>,
    ) -> Result<(), MergeError> {
        // One comparison per row in the common case (the paths are equal).
        while let Some(n) = self.peek()? {
            match n.id.as_slice().cmp(id) {
                std::cmp::Ordering::Less => {
                    let n = self.peeked.take().expect("peeked");
                    self.changes.push(Change::New(n));
                }
                std::cmp::Ordering::Equal => {
                    let n = self.peeked.take().expect("peeked");
                    if !same(&n)? {
                        self.changes.push(Change::Changed {
                            old: entry()?,
                            new: n,
                        });
                    } else if self.refresh {
                        self.refreshed.push(n);
                    }
                    return Ok(());
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        if self.under_carried(id) {
            // Not read, and unchanged as far as its key tells: kept.
            self.kept += 1;
            if self.refresh {
                self.refreshed.push(entry()?);
            }
            return Ok(());
        }
        if self.unavailable.is_empty() || !ident::under_any(&self.unavailable, id) {
            self.changes.push(Change::Delete(entry()?));
        }
        Ok(())
    }

    /// Whether the old row `id` is a value of a key the scan carried.
    fn under_carried(&mut self, id: &[u8]) -> bool {
        self.carried_now(&id[..ident::key_len(id)])
    }

    /// Whether the scan carried `key`, as far as the items taken so far
    /// tell. Old rows come in path order, so their keys never go back:
    /// carried keys before `key` are done with.
    fn carried_now(&mut self, key: &[u8]) -> bool {
        if self.carried.is_empty() {
            return false;
        }
        while self.carried.front().is_some_and(|c| c.as_slice() < key) {
            self.carried.pop_front();
        }
        self.carried.front().is_some_and(|c| c.as_slice() == key)
    }

    /// Whether the scan carried the key `key`, whose stored values come
    /// next: then the caller may [`Merger::keep`] them as a count instead
    /// of giving them one by one (a hinted rescan does no work per value
    /// of an unchanged key). The scan's values before the key's are taken
    /// (reported NEW, as [`Merger::old`] would report them), so the key's
    /// own item, which comes before any value at or after it, has been seen.
    /// Items are taken only until one lies past `key` (in identity order,
    /// everything at or before it has then been seen): a scan that carries
    /// every key sends no values, and its keys are not all queued here.
    pub fn carried(&mut self, key: &[u8]) -> Result<bool, MergeError> {
        loop {
            if let Some(n) = &self.peeked {
                if n.id.as_slice() >= key {
                    break;
                }
                let n = self.peeked.take().expect("peeked");
                self.changes.push(Change::New(n));
                continue;
            }
            if self.last_key.as_slice() > key || !self.pull()? {
                break;
            }
        }
        Ok(self.carried_now(key))
    }

    /// `n` stored values of a carried key (see [`Merger::carried`]): kept
    /// as they are.
    pub fn keep(&mut self, n: usize) {
        self.kept += n;
    }

    /// The changes and the number of new values, once every old row was given.
    pub fn finish(self) -> Result<(Vec<Change>, usize), MergeError> {
        self.finish_all().map(|c| (c.changes, c.count))
    }

    /// Everything the comparison found, once every old row was given.
    pub fn finish_all(mut self) -> Result<Compared, MergeError> {
        while self.peek()?.is_some() {
            let n = self.peeked.take().expect("peeked");
            self.changes.push(Change::New(n));
        }
        Ok(Compared {
            changes: self.changes,
            count: self.count,
            kept: self.kept,
            refreshed: self.refreshed,
        })
    }
}

/// What a comparison with the baseline found.
#[derive(Debug, Default)]
pub struct Compared {
    pub changes: Vec<Change>,
    /// Values scanned.
    pub count: usize,
    /// Stored values kept unread under carried keys (`Incremental`): with
    /// `count`, the values in scope.
    pub kept: usize,
    /// Unchanged values whose kept data is to be rewritten (ReportData,
    /// MaxDataSize or NoDataFor changed): no events.
    pub refreshed: Vec<Entry>,
}

/// Whether two states of a value differ (data or type).
pub fn differs(o: &Entry, n: &Entry) -> bool {
    o.digest[..] != n.digest[..] || o.value_type != n.value_type || o.size != n.size
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::digest::Digest;
    use crate::model::{KeyItem, KeyStats};
    use crate::path::ident::{key_id, value_id};

    fn entry(key: &[&str], name: &str, n: u8) -> Entry {
        Entry {
            id: value_id(&key_id(key), name.as_bytes()),
            value_type: 4,
            size: 4,
            digest: Digest::from_slice(&[n; 20]),
            data: None,
        }
    }

    fn key(path: &[&str], carried: bool) -> Item {
        Item::Key(KeyItem {
            id: key_id(path),
            stats: Some(KeyStats {
                last_written: 1,
                values: 1,
                subkeys: 1,
            }),
            carried,
        })
    }

    /// The changes (kind and value name) of comparing `old` rows with `new`.
    fn compare(old: &[Entry], new: Vec<Item>, refresh: bool) -> (Vec<String>, Compared) {
        let mut items = new.into_iter();
        let mut m = Merger::new(&mut items, Vec::new());
        m.refresh = refresh;
        for o in old {
            m.old(&o.id, |n| Ok(!differs(o, n)), || Ok(o.clone()))
                .unwrap();
        }
        let c = m.finish_all().unwrap();
        let names = c
            .changes
            .iter()
            .map(|c| {
                let (kind, e) = match c {
                    Change::New(e) => ("NEW", e),
                    Change::Delete(e) => ("DELETE", e),
                    Change::Changed { new, .. } => ("CHANGE", new),
                    _ => ("KEY", &old[0]),
                };
                let parts = ident::parse(&e.id).unwrap();
                let mut s = ident::display_key(&parts.keys);
                s.push('\\');
                s.push_str(&String::from_utf8_lossy(&parts.value.unwrap()));
                format!("{kind} {s}")
            })
            .collect();
        (names, c)
    }

    #[test]
    fn a_carried_key_asked_before_its_rows_is_kept_as_a_count() {
        // As the per-key store asks: is key A carried? (a new value of an
        // earlier key is reported on the way), then A's rows as a count.
        let new = vec![
            Item::Entry(entry(&["HKLM", "0"], "n", 1)),
            key(&["HKLM", "A"], true),
            key(&["HKLM", "B"], false),
            Item::Entry(entry(&["HKLM", "B"], "w", 2)),
        ];
        let mut items = new.into_iter();
        let mut m = Merger::new(&mut items, Vec::new());
        assert!(m.carried(&key_id(&["HKLM", "A"])).unwrap());
        m.keep(2);
        assert!(!m.carried(&key_id(&["HKLM", "B"])).unwrap());
        let w = entry(&["HKLM", "B"], "w", 1);
        m.old(&w.id, |n| Ok(!differs(&w, n)), || Ok(w.clone()))
            .unwrap();
        let c = m.finish_all().unwrap();
        let kinds: Vec<_> = c
            .changes
            .iter()
            .map(|c| match c {
                Change::New(_) => "NEW",
                Change::Changed { .. } => "CHANGE",
                _ => "OTHER",
            })
            .collect();
        assert_eq!(kinds, ["NEW", "CHANGE"]);
        assert_eq!((c.count, c.kept), (2, 2));
    }

    #[test]
    fn a_carried_key_keeps_its_values_and_only_its_own() {
        let old = [
            entry(&["HKLM", "A"], "x", 1),
            entry(&["HKLM", "A"], "y", 1),
            entry(&["HKLM", "A", "S"], "z", 1),
            entry(&["HKLM", "B"], "w", 1),
        ];
        // A carried, its subkey S read (z changed), B gone.
        let new = vec![
            key(&["HKLM", "A"], true),
            key(&["HKLM", "A", "S"], false),
            Item::Entry(entry(&["HKLM", "A", "S"], "z", 2)),
        ];
        let (changes, c) = compare(&old, new, false);
        assert_eq!(changes, ["CHANGE HKLM\\A\\S\\z", "DELETE HKLM\\B\\w"]);
        assert_eq!((c.count, c.kept), (1, 2));
        assert!(c.refreshed.is_empty());
    }

    #[test]
    fn a_carried_key_s_values_are_handed_back_when_refreshing() {
        let old = [entry(&["HKLM", "A"], "x", 1), entry(&["HKLM", "B"], "y", 1)];
        let new = vec![
            key(&["HKLM", "A"], true),
            key(&["HKLM", "B"], false),
            Item::Entry(entry(&["HKLM", "B"], "y", 1)),
        ];
        let (changes, c) = compare(&old, new, true);
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!(
            c.refreshed.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
            [old[0].id.clone(), old[1].id.clone()]
        );
    }

    #[test]
    fn a_key_read_in_full_is_compared_as_before() {
        let old = [entry(&["HKLM", "A"], "x", 1), entry(&["HKLM", "A"], "y", 1)];
        let new = vec![
            key(&["HKLM", "A"], false),
            Item::Entry(entry(&["HKLM", "A"], "x", 1)),
            Item::Entry(entry(&["HKLM", "A"], "z", 1)),
        ];
        let (changes, c) = compare(&old, new, false);
        assert_eq!(changes, ["DELETE HKLM\\A\\y", "NEW HKLM\\A\\z"]);
        assert_eq!(c.kept, 0);
    }

    #[test]
    fn a_carried_key_inside_an_unreadable_key_keeps_its_values() {
        let old = [
            entry(&["HKLM", "A"], "x", 1),
            entry(&["HKLM", "A", "S"], "z", 1),
            entry(&["HKLM", "A", "T"], "t", 1),
        ];
        let new = vec![
            Item::Unreadable(key_id(&["HKLM", "A"])),
            key(&["HKLM", "A", "S"], true),
        ];
        let (changes, c) = compare(&old, new, false);
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!(c.kept, 1);
    }

    #[test]
    fn asking_for_a_carried_key_takes_items_only_up_to_it() {
        // A hinted scan that changed nothing: keys only, every one carried.
        let all: Vec<Item> = (0..1000)
            .map(|i| key(&["R", &format!("K{i:04}")], true))
            .collect();
        let mut items = all.into_iter();
        let mut m = Merger::new(&mut items, Vec::new());
        for i in [0, 1, 500] {
            assert!(m.carried(&key_id(&["R", &format!("K{i:04}")])).unwrap());
            m.keep(2);
        }
        // A key the scan did not carry (never sent): no.
        assert!(!m.carried(&key_id(&["R", "K0500x"])).unwrap());
        // Not the whole stream queued: at most the keys around the last.
        assert!(m.carried.len() <= 2, "{} keys queued", m.carried.len());
        let c = m.finish_all().unwrap();
        assert!(c.changes.is_empty());
        assert_eq!(c.kept, 6);
    }
}
