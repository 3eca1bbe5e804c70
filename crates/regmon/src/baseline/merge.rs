//! Comparing a scan with the baseline: a merge of two streams in identity
//! order (the stored rows, the scan's items), pure and unit-tested apart
//! from the store.

use super::BaselineError;
use crate::model::{Change, Entry, Item, KeyEntry};
use crate::path::ident;

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
    /// The last new identity taken, to check the order and drop duplicates.
    prev: Vec<u8>,
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
            prev: Vec::new(),
            started: false,
            count: 0,
            changes: Vec::new(),
            refresh: false,
            refreshed: Vec::new(),
        }
    }

    fn peek(&mut self) -> Result<Option<&Entry>, MergeError> {
        while self.peeked.is_none() {
            match self.items.next() {
                None => break,
                Some(Item::Unreadable(p)) => self.unavailable.push(p),
                // Per-key storage and Incremental use them; the merge of
                // values does not.
                Some(Item::Key(_)) => {}
                Some(Item::Entry(e)) => {
                    if self.started {
                        match e.id.cmp(&self.prev) {
                            std::cmp::Ordering::Less => return Err(MergeError::Disorder),
                            // Two patterns reaching the same value: once.
                            std::cmp::Ordering::Equal => continue,
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
        }
        Ok(self.peeked.as_ref())
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
        if self.unavailable.is_empty() || !ident::under_any(&self.unavailable, id) {
            self.changes.push(Change::Delete(entry()?));
        }
        Ok(())
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
    /// Unchanged values whose kept data is to be rewritten (ReportData,
    /// MaxDataSize or NoDataFor changed): no events.
    pub refreshed: Vec<Entry>,
}

/// Whether two states of a value differ (data or type).
pub fn differs(o: &Entry, n: &Entry) -> bool {
    o.digest[..] != n.digest[..] || o.value_type != n.value_type || o.size != n.size
}
