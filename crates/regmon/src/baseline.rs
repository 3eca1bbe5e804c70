//! The durable baseline: one SQLite database per input under CacheDir.
//!
//! A scan's result is compared with the stored baseline by a merge of two
//! sorted streams (the scan's entries in memory, the baseline read in path
//! order from disk), so a scan never holds more than one copy of the
//! baseline. The changed rows and the events they produce are written in one
//! transaction: after a crash the database holds the old baseline or the new
//! one with its undelivered events, never a mix.

use crate::digest::Digest;
use crate::region::{in_any, Region};
use crate::scan::{Entry, Item, KeyEntry, Snapshot};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

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
    pub fn path(&self) -> &str {
        match self {
            Change::New(e) | Change::Delete(e) => &e.path,
            Change::Changed { new, .. } => &new.path,
            Change::NewKey(k) | Change::DeleteKey(k) => &k.path,
        }
    }

    fn is_key(&self) -> bool {
        matches!(self, Change::NewKey(_) | Change::DeleteKey(_))
    }
}

/// Orders changes by path, a key before the values inside it, so a deleted
/// key reads as one DELETE_KEY followed by a DELETE per value.
pub fn sort_changes(changes: &mut [Change]) {
    changes.sort_by(|a, b| a.path().cmp(b.path()).then(b.is_key().cmp(&a.is_key())));
}

/// The key changes from `old` to `new`, both sorted by path.
pub fn merge_keys(
    old: impl Iterator<Item = Result<KeyEntry, String>>,
    new: &[KeyEntry],
    unavailable: impl Fn(&str) -> bool,
) -> Result<Vec<Change>, String> {
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
            (Some(Ok(o)), Some(n)) => o.path.as_str().cmp(n.path.as_str()),
        };
        match ord {
            Ordering::Less => {
                let o = old.next().expect("peeked")?;
                if !unavailable(&o.path) {
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

/// Prepared statements that write baseline rows inside a transaction.
struct Rows<'t> {
    put_value: rusqlite::Statement<'t>,
    del_value: rusqlite::Statement<'t>,
    put_key: rusqlite::Statement<'t>,
    del_key: rusqlite::Statement<'t>,
}

impl<'t> Rows<'t> {
    fn new(tx: &'t rusqlite::Transaction<'_>) -> rusqlite::Result<Rows<'t>> {
        Ok(Rows {
            put_value: tx.prepare(
                "INSERT OR REPLACE INTO value (path, key_len, type, size, digest, data) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?,
            del_value: tx.prepare("DELETE FROM value WHERE path = ?1")?,
            put_key: tx
                .prepare("INSERT OR REPLACE INTO key (path, last_written) VALUES (?1, ?2)")?,
            del_key: tx.prepare("DELETE FROM key WHERE path = ?1")?,
        })
    }

    fn put_value(&mut self, e: &Entry) -> rusqlite::Result<()> {
        self.put_value
            .execute(params![
                e.path,
                e.key_len as i64,
                e.value_type as i64,
                e.size as i64,
                &e.digest[..],
                e.data
            ])
            .map(drop)
    }

    fn put_key(&mut self, k: &KeyEntry) -> rusqlite::Result<()> {
        self.put_key
            .execute(params![k.path, k.last_written.map(|t| t as i64)])
            .map(drop)
    }
}

pub struct Baseline {
    conn: Connection,
    path: PathBuf,
}

/// Why a comparison stopped.
#[derive(Debug)]
pub enum MergeError {
    /// The scan's values did not come in path order (the caller scans again
    /// in memory, where it sorts).
    Disorder,
    Failed(String),
}

impl From<String> for MergeError {
    fn from(e: String) -> Self {
        MergeError::Failed(e)
    }
}

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MergeError::Disorder => f.write_str("scan values out of order"),
            MergeError::Failed(e) => f.write_str(e),
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
    /// Paths whose missing values are not deletions: failed mounts, and
    /// keys the scan could not read whole (they arrive with the items).
    unavailable: Vec<String>,
    /// The last new path taken, to check the order and drop duplicates.
    prev: String,
    started: bool,
    /// New values seen.
    count: usize,
    changes: Vec<Change>,
}

impl<'i> Merger<'i> {
    pub fn new(items: &'i mut dyn Iterator<Item = Item>, unavailable: Vec<String>) -> Self {
        Merger {
            items,
            peeked: None,
            unavailable,
            prev: String::new(),
            started: false,
            count: 0,
            changes: Vec::new(),
        }
    }

    fn peek(&mut self) -> Result<Option<&Entry>, MergeError> {
        while self.peeked.is_none() {
            match self.items.next() {
                None => break,
                Some(Item::Unreadable(p)) => self.unavailable.push(p),
                Some(Item::Entry(e)) => {
                    if self.started {
                        match e.path.as_str().cmp(&self.prev) {
                            std::cmp::Ordering::Less => return Err(MergeError::Disorder),
                            // Two patterns reaching the same value: once.
                            std::cmp::Ordering::Equal => continue,
                            std::cmp::Ordering::Greater => {}
                        }
                    }
                    self.prev.clear();
                    self.prev.push_str(&e.path);
                    self.started = true;
                    self.count += 1;
                    self.peeked = Some(e);
                }
            }
        }
        Ok(self.peeked.as_ref())
    }

    /// One old row: its path, a test of whether it equals a new entry
    /// (type, size, digest), and a way to copy it when it is reported.
    pub fn old(
        &mut self,
        path: &[u8],
        same: impl FnOnce(&Entry) -> Result<bool, String>,
        entry: impl FnOnce() -> Result<Entry, String>,
    ) -> Result<(), MergeError> {
        // One comparison per row in the common case (the paths are equal).
        while let Some(n) = self.peek()? {
            match n.path.as_bytes().cmp(path) {
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
                    }
                    return Ok(());
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        if self.unavailable.is_empty()
            || !under_any(&self.unavailable, &String::from_utf8_lossy(path))
        {
            self.changes.push(Change::Delete(entry()?));
        }
        Ok(())
    }

    /// The changes and the number of new values, once every old row was given.
    pub fn finish(mut self) -> Result<(Vec<Change>, usize), MergeError> {
        while self.peek()?.is_some() {
            let n = self.peeked.take().expect("peeked");
            self.changes.push(Change::New(n));
        }
        Ok((self.changes, self.count))
    }
}

/// Whether `path` is one of `prefixes` or lies below one (case-insensitive).
pub fn under_any(prefixes: &[String], path: &str) -> bool {
    prefixes.iter().any(|m| {
        path.len() >= m.len()
            && path.is_char_boundary(m.len())
            && path[..m.len()].eq_ignore_ascii_case(m)
            && (path.len() == m.len() || path.as_bytes()[m.len()] == b'\\')
    })
}

/// Whether two states of a value differ (data or type).
pub fn differs(o: &Entry, n: &Entry) -> bool {
    o.digest[..] != n.digest[..] || o.value_type != n.value_type || o.size != n.size
}

/// The changes from `old` to `new`, both sorted by path (byte order).
pub fn merge(old: &[Entry], new: Vec<Entry>) -> Vec<Change> {
    let mut items = new.into_iter().map(Item::Entry);
    let mut m = Merger::new(&mut items, Vec::new());
    for o in old {
        // In-memory entries cannot fail, and sorted ones are in order.
        let _ = m.old(o.path.as_bytes(), |n| Ok(!differs(o, n)), || Ok(o.clone()));
    }
    m.finish().map(|(c, _)| c).unwrap_or_default()
}

impl Baseline {
    pub fn open(path: &Path) -> Result<Baseline, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create cache folder {}: {e}", dir.display()))?;
        }
        let conn = Connection::open(path)
            .map_err(|e| format!("cannot open baseline {}: {e}", path.display()))?;
        let err = |e: rusqlite::Error| format!("baseline {}: {e}", path.display());
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA cache_size=-8192;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS value (
                 path TEXT PRIMARY KEY,
                 key_len INTEGER NOT NULL,
                 type INTEGER NOT NULL,
                 size INTEGER NOT NULL,
                 digest BLOB NOT NULL,
                 data BLOB
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS key (
                 path TEXT PRIMARY KEY,
                 last_written INTEGER
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS outbox (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 output TEXT NOT NULL,
                 target TEXT NOT NULL,
                 line BLOB NOT NULL,
                 start INTEGER
             );",
        )
        .map_err(err)?;
        crate::outbox::migrate(&conn).map_err(err)?;
        Ok(Baseline {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, e: rusqlite::Error) -> String {
        format!("baseline {}: {e}", self.path.display())
    }

    /// The events this database holds for delivery (see [`crate::outbox`]).
    pub fn outbox(&mut self) -> crate::outbox::Outbox<'_> {
        crate::outbox::Outbox {
            conn: &mut self.conn,
            path: &self.path,
        }
    }

    /// The scope the stored baseline was built for, if any.
    pub fn scope(&self) -> Result<Option<String>, String> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'scope'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Why the stored baseline cannot be used for `scope`, if it cannot.
    pub fn rebuild_reason(&self, scope: &str) -> Result<Option<&'static str>, String> {
        Ok(match self.scope()? {
            None => Some("no baseline yet"),
            Some(s) if s != scope => Some("the input's scope changed"),
            Some(_) => None,
        })
    }

    /// Compares the stored values with a scan's items (in path order),
    /// reading the baseline in path order alongside. `unavailable`: paths
    /// known up front whose values must not be reported deleted. `within`:
    /// the scan covered only these regions; rows outside them are left as
    /// they are (the items must lie inside them).
    pub fn compare_values(
        &self,
        unavailable: Vec<String>,
        items: &mut dyn Iterator<Item = Item>,
        within: Option<&[Region]>,
    ) -> Result<(Vec<Change>, usize), MergeError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT path, key_len, type, size, digest, data FROM value ORDER BY path",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut merger = Merger::new(items, unavailable);
        let err = |e: rusqlite::Error| format!("baseline {}: {e}", self.path.display());
        while let Some(r) = rows.next().map_err(err)? {
            // Bytes, not str: the stored paths are valid UTF-8 (they were
            // Strings), and checking that again for every row costs.
            let path = r.get_ref(0).and_then(|v| Ok(v.as_bytes()?)).map_err(err)?;
            if let Some(regions) = within {
                let key_len = r.get::<_, i64>(1).map_err(err)? as usize;
                if !in_any(regions, &String::from_utf8_lossy(path), key_len) {
                    continue;
                }
            }
            merger.old(
                path,
                |n| {
                    let ty = r.get_ref(2).and_then(|v| Ok(v.as_i64()?)).map_err(err)?;
                    let size = r.get_ref(3).and_then(|v| Ok(v.as_i64()?)).map_err(err)?;
                    let digest = r.get_ref(4).and_then(|v| Ok(v.as_blob()?)).map_err(err)?;
                    Ok(ty as u32 == n.value_type
                        && size as u64 == n.size
                        && digest == &n.digest[..])
                },
                || {
                    Ok(Entry {
                        path: String::from_utf8_lossy(path).into_owned(),
                        key_len: r.get::<_, i64>(1).map_err(err)? as usize,
                        value_type: r.get::<_, i64>(2).map_err(err)? as u32,
                        size: r.get::<_, i64>(3).map_err(err)? as u64,
                        digest: Digest::from_slice(&r.get::<_, Vec<u8>>(4).map_err(err)?),
                        data: r.get(5).map_err(err)?,
                    })
                },
            )?;
        }
        merger.finish()
    }

    /// The key changes (`KeyEvents`) between the baseline and a finished scan
    /// (of `within` only, when given).
    pub fn compare_keys(
        &self,
        snap: &Snapshot,
        within: Option<&[Region]>,
    ) -> Result<Vec<Change>, String> {
        let mut kstmt = self
            .conn
            .prepare_cached("SELECT path, last_written FROM key ORDER BY path")
            .map_err(|e| self.err(e))?;
        let krows = kstmt.query([]).map_err(|e| self.err(e))?;
        let old_keys = krows
            .mapped(|r| {
                Ok(KeyEntry {
                    path: r.get(0)?,
                    last_written: r.get::<_, Option<i64>>(1)?.map(|t| t as u64),
                })
            })
            .map(|r| r.map_err(|e| format!("baseline: {e}")))
            .filter(|k| match (k, within) {
                (Ok(k), Some(regions)) => regions.iter().any(|r| r.contains_key(&k.path)),
                _ => true,
            });
        merge_keys(old_keys, &snap.keys, |p| snap.is_unavailable(p))
    }

    /// Starts replacing the whole baseline (first run, scope change): the
    /// stored values are replaced by the scan's items, in one transaction
    /// that also forgets the scope, so a crash before
    /// [`Baseline::finish_rebuild`] leaves "no baseline" (rebuilt at the next
    /// scan), never a mix. Returns the number of values stored.
    pub fn rebuild_values(
        &mut self,
        items: &mut dyn Iterator<Item = Item>,
    ) -> Result<usize, String> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| format!("baseline {}: {e}", path.display());
        // A rebuild rewrites nearly every page: through a rollback journal
        // they are written once, where WAL would write them twice (log, then
        // checkpoint). Atomic and durable alike; WAL comes back after.
        self.conn
            .pragma_update(None, "journal_mode", "DELETE")
            .map_err(err)?;
        let r = self.rebuild_in_transaction(items);
        let back = self.conn.pragma_update(None, "journal_mode", "WAL");
        let count = r?;
        back.map_err(err)?;
        Ok(count)
    }

    fn rebuild_in_transaction(
        &mut self,
        items: &mut dyn Iterator<Item = Item>,
    ) -> Result<usize, String> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| format!("baseline {}: {e}", path.display());
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute("DELETE FROM meta WHERE key IN ('scope', 'values')", [])
            .map_err(err)?;
        tx.execute("DELETE FROM value", []).map_err(err)?;
        tx.execute("DELETE FROM key", []).map_err(err)?;
        let mut count = 0;
        {
            let mut rows = Rows::new(&tx).map_err(err)?;
            for item in items {
                if let Item::Entry(e) = item {
                    rows.put_value(&e).map_err(err)?;
                    count += 1;
                }
            }
        }
        tx.commit().map_err(err)?;
        Ok(count)
    }

    /// Completes a rebuild: the scan's keys, the scope and the value count.
    pub fn finish_rebuild(
        &mut self,
        scope: &str,
        snap: &Snapshot,
        count: usize,
    ) -> Result<(), String> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| format!("baseline {}: {e}", path.display());
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut rows = Rows::new(&tx).map_err(err)?;
            for k in &snap.keys {
                rows.put_key(k).map_err(err)?;
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('scope', ?1), ('values', ?2)",
            params![scope, count.to_string()],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// How many values the baseline holds (kept in `meta`; 0 when unknown).
    pub fn value_count(&self) -> usize {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'values'", [], |r| {
                r.get::<_, String>(0)
            })
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Applies changes and queues their rendered events, atomically.
    pub fn commit(
        &mut self,
        changes: &[Change],
        events: &[crate::outbox::Queued],
    ) -> Result<(), String> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| format!("baseline {}: {e}", path.display());
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut rows = Rows::new(&tx).map_err(err)?;
            for c in changes {
                match c {
                    Change::New(e) | Change::Changed { new: e, .. } => rows.put_value(e),
                    Change::Delete(e) => rows.del_value.execute(params![e.path]).map(drop),
                    Change::NewKey(k) => rows.put_key(k),
                    Change::DeleteKey(k) => rows.del_key.execute(params![k.path]).map(drop),
                }
                .map_err(err)?;
            }
            let delta: i64 = changes
                .iter()
                .map(|c| match c {
                    Change::New(_) => 1,
                    Change::Delete(_) => -1,
                    _ => 0,
                })
                .sum();
            tx.execute(
                "UPDATE meta SET value = CAST(MAX(0, CAST(value AS INTEGER) + ?1) AS TEXT) WHERE key = 'values'",
                params![delta],
            )
            .map_err(err)?;
            crate::outbox::queue(&tx, events).map_err(err)?;
        }
        tx.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(path: &str, d: u8) -> Entry {
        Entry {
            path: path.into(),
            key_len: 1,
            value_type: 1,
            size: 1,
            digest: Digest::from_slice(&[d]),
            data: None,
        }
    }

    fn items(v: Vec<Entry>) -> impl Iterator<Item = Item> {
        v.into_iter().map(Item::Entry)
    }

    #[test]
    fn merge_finds_every_kind_of_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Baseline::open(&dir.path().join("b.sqlite")).unwrap();
        assert_eq!(b.rebuild_reason("s").unwrap(), Some("no baseline yet"));
        let first = vec![e("A\\a", 1), e("A\\b", 2), e("B\\c", 3), e("M\\x", 4)];
        let n = b.rebuild_values(&mut items(first)).unwrap();
        b.finish_rebuild("s", &Snapshot::default(), n).unwrap();
        assert_eq!(b.rebuild_reason("s").unwrap(), None);
        assert_eq!(b.value_count(), 4);
        let second = vec![e("A\\a", 1), e("A\\b", 9), e("C\\d", 5)];
        // M is a mount that failed to read: its value is not deleted.
        let (ch, count) = b
            .compare_values(vec!["M".into()], &mut items(second.clone()), None)
            .unwrap();
        assert_eq!(count, 3);
        assert_eq!(
            ch,
            vec![
                Change::Changed {
                    old: e("A\\b", 2),
                    new: e("A\\b", 9)
                },
                Change::Delete(e("B\\c", 3)),
                Change::New(e("C\\d", 5)),
            ]
        );
        let q = crate::outbox::Queued {
            output: "out".into(),
            target: "f".into(),
            line: b"line".to_vec(),
            record: None,
        };
        b.commit(&ch, &[q]).unwrap();
        assert_eq!(b.outbox().pending().unwrap().len(), 1);
        assert_eq!(b.value_count(), 4);
        let (ch, _) = b
            .compare_values(vec!["M".into()], &mut items(second), None)
            .unwrap();
        assert!(ch.is_empty());
        assert_eq!(
            b.rebuild_reason("other").unwrap(),
            Some("the input's scope changed")
        );
    }

    #[test]
    fn unreadable_keys_in_the_stream_keep_their_values() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Baseline::open(&dir.path().join("b.sqlite")).unwrap();
        let n = b
            .rebuild_values(&mut items(vec![
                e("K\\a", 1),
                e("K\\S\\b", 2),
                e("Z\\c", 3),
            ]))
            .unwrap();
        b.finish_rebuild("s", &Snapshot::default(), n).unwrap();
        // In path order: `K\S` sorts before `K\a`.
        let mut stream = vec![
            Item::Unreadable("K\\S".into()),
            Item::Entry(e("K\\a", 1)),
            Item::Entry(e("Z\\c", 3)),
        ]
        .into_iter();
        let (ch, _) = b.compare_values(Vec::new(), &mut stream, None).unwrap();
        assert!(ch.is_empty(), "{ch:?}");
    }

    #[test]
    fn out_of_order_items_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let b = Baseline::open(&dir.path().join("b.sqlite")).unwrap();
        let r = b.compare_values(Vec::new(), &mut items(vec![e("B", 1), e("A", 1)]), None);
        assert!(matches!(r, Err(MergeError::Disorder)));
        // Duplicates (two patterns reaching one value) count once.
        let (ch, n) = b
            .compare_values(Vec::new(), &mut items(vec![e("A", 1), e("A", 1)]), None)
            .unwrap();
        assert_eq!((ch.len(), n), (1, 1));
    }
}
