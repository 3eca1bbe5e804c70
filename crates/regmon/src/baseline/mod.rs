//! The durable baseline: one SQLite database per input under CacheDir.
//!
//! A scan's result is compared with the stored baseline by a merge of two
//! sorted streams (the scan's entries in memory, the baseline read in path
//! order from disk), so a scan never holds more than one copy of the
//! baseline. The changed rows and the events they produce are written in one
//! transaction: after a crash the database holds the old baseline or the new
//! one with its undelivered events, never a mix.

mod error;
mod merge;
mod migrate;
pub mod outbox;

pub use error::{BaselineError, Foreign};
pub use merge::{differs, merge_keys, Compared, MergeError, Merger};
use migrate::{v1_key_id, v1_scope, v1_value_id};

use crate::model::digest::Digest;
use crate::model::{Change, Entry, Item, KeyEntry, Snapshot};
use crate::path::region::{in_any, Region};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

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
                "INSERT OR REPLACE INTO value (id, type, size, digest, data) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?,
            del_value: tx.prepare("DELETE FROM value WHERE id = ?1")?,
            put_key: tx.prepare("INSERT OR REPLACE INTO key (id, last_written) VALUES (?1, ?2)")?,
            del_key: tx.prepare("DELETE FROM key WHERE id = ?1")?,
        })
    }

    fn put_value(&mut self, e: &Entry) -> rusqlite::Result<()> {
        self.put_value
            .execute(params![
                e.id,
                e.value_type as i64,
                e.size as i64,
                &e.digest[..],
                e.data
            ])
            .map(drop)
    }

    fn put_key(&mut self, k: &KeyEntry) -> rusqlite::Result<()> {
        self.put_key
            .execute(params![k.id, k.last_written.map(|t| t as i64)])
            .map(drop)
    }
}

pub struct Baseline {
    conn: Connection,
    path: PathBuf,
}

/// The layout this release writes (meta 'schema'). 1 (no 'schema' row):
/// values keyed by their path text, which two different values could share
/// (see [`crate::path::ident`]); migrated on open.
const SCHEMA: u32 = 2;

const CREATE: &str = "
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS value (
        id BLOB PRIMARY KEY,
        type INTEGER NOT NULL,
        size INTEGER NOT NULL,
        digest BLOB NOT NULL,
        data BLOB
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS key (
        id BLOB PRIMARY KEY,
        last_written INTEGER
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        output TEXT NOT NULL,
        target TEXT NOT NULL,
        line BLOB NOT NULL,
        start INTEGER
    );";

/// The directives whose lines differ between two scope texts, as a reason.
fn scope_difference(old: &str, new: &str) -> String {
    let directive = |line: &str| match line.split(':').next().unwrap_or("") {
        "value" => "RegValue",
        "exclude" => "Exclude",
        "hive" => "HiveFile",
        "recursive" => "Recursive",
        "64bit" => "64BitView",
        "digest" => "Digest",
        _ => "the scope",
    };
    let (o, n): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let mut names: Vec<&str> = Vec::new();
    for l in o
        .iter()
        .filter(|l| !n.contains(l))
        .chain(n.iter().filter(|l| !o.contains(l)))
    {
        let d = directive(l);
        if !names.contains(&d) {
            names.push(d);
        }
    }
    if names.is_empty() {
        names.push("the scope");
    }
    format!("{} changed", names.join(", "))
}

impl Baseline {
    pub fn open(path: &Path) -> Result<Baseline, BaselineError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| BaselineError::Folder {
                dir: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|source| BaselineError::Open {
            file: path.to_path_buf(),
            source,
        })?;
        let err = BaselineError::sqlite(path);
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA cache_size=-8192;
             PRAGMA synchronous=FULL;",
        )
        .map_err(err)?;
        let mut b = Baseline {
            conn,
            path: path.to_path_buf(),
        };
        b.upgrade()?;
        crate::baseline::outbox::migrate(&b.conn).map_err(err)?;
        Ok(b)
    }

    /// Creates the tables, or brings a baseline of an earlier release to
    /// this layout in one transaction (nothing re-reported, nothing lost).
    fn upgrade(&mut self) -> Result<(), BaselineError> {
        let path = self.path.clone();
        let err = BaselineError::sqlite(&path);
        let tx = self.conn.transaction().map_err(err)?;
        let v1 = tx
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('value') WHERE name = 'path'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(err)?
            > 0;
        if v1 {
            tx.execute_batch(
                "ALTER TABLE value RENAME TO value_v1;
                 ALTER TABLE key RENAME TO key_v1;",
            )
            .map_err(err)?;
        }
        tx.execute_batch(CREATE).map_err(err)?;
        let stored: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err)?;
        if let Some(v) = &stored {
            if v.parse::<u32>().map_or(true, |v| v > SCHEMA) {
                return Err(BaselineError::LaterLayout {
                    file: path.clone(),
                    layout: v.clone(),
                    known: SCHEMA,
                });
            }
        }
        if v1 {
            {
                let mut get = tx
                    .prepare("SELECT path, key_len, type, size, digest, data FROM value_v1")
                    .map_err(err)?;
                let mut put = tx
                    .prepare(
                        "INSERT OR REPLACE INTO value (id, type, size, digest, data) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .map_err(err)?;
                let mut rows = get.query([]).map_err(err)?;
                while let Some(r) = rows.next().map_err(err)? {
                    let p: String = r.get(0).map_err(err)?;
                    let key_len = r.get::<_, i64>(1).map_err(err)? as usize;
                    put.execute(params![
                        v1_value_id(&p, key_len),
                        r.get::<_, i64>(2).map_err(err)?,
                        r.get::<_, i64>(3).map_err(err)?,
                        r.get::<_, Vec<u8>>(4).map_err(err)?,
                        r.get::<_, Option<Vec<u8>>>(5).map_err(err)?,
                    ])
                    .map_err(err)?;
                }
                let mut get = tx
                    .prepare("SELECT path, last_written FROM key_v1")
                    .map_err(err)?;
                let mut put = tx
                    .prepare("INSERT OR REPLACE INTO key (id, last_written) VALUES (?1, ?2)")
                    .map_err(err)?;
                let mut rows = get.query([]).map_err(err)?;
                while let Some(r) = rows.next().map_err(err)? {
                    let p: String = r.get(0).map_err(err)?;
                    put.execute(params![
                        v1_key_id(&p),
                        r.get::<_, Option<i64>>(1).map_err(err)?
                    ])
                    .map_err(err)?;
                }
            }
            tx.execute_batch("DROP TABLE value_v1; DROP TABLE key_v1;")
                .map_err(err)?;
            let old: Option<String> = tx
                .query_row("SELECT value FROM meta WHERE key = 'scope'", [], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(err)?;
            if let Some(old) = old {
                let (scope, data, keys) = v1_scope(&old);
                tx.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('scope', ?1), ('data', ?2)",
                    params![scope, data],
                )
                .map_err(err)?;
                if keys {
                    tx.execute(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES ('keys', '1')",
                        [],
                    )
                    .map_err(err)?;
                }
            }
        }
        if stored.is_none() {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?1)",
                params![SCHEMA.to_string()],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    fn err(&self, e: rusqlite::Error) -> BaselineError {
        BaselineError::sqlite(&self.path)(e)
    }

    /// The file this baseline is kept in.
    pub fn file(&self) -> &Path {
        &self.path
    }

    /// The events this database holds for delivery (see [`crate::baseline::outbox`]).
    pub fn outbox(&mut self) -> crate::baseline::outbox::Outbox<'_> {
        crate::baseline::outbox::Outbox {
            conn: &mut self.conn,
            path: &self.path,
        }
    }

    /// A `meta` setting.
    pub fn meta(&self, key: &str) -> Result<Option<String>, BaselineError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Sets (or, with None, forgets) a `meta` setting.
    pub fn set_meta(&mut self, key: &str, value: Option<&str>) -> Result<(), BaselineError> {
        match value {
            Some(v) => self.conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, v],
            ),
            None => self.conn.execute("DELETE FROM meta WHERE key = ?1", [key]),
        }
        .map(drop)
        .map_err(|e| self.err(e))
    }

    /// The scope the stored baseline was built for, if any.
    pub fn scope(&self) -> Result<Option<String>, BaselineError> {
        self.meta("scope")
    }

    /// Why the stored baseline cannot be used for `scope`, if it cannot:
    /// naming the directives whose lines differ. The scope text has one
    /// line per setting, `kind:text` (see the runtime's scope key).
    pub fn rebuild_reason(&self, scope: &str) -> Result<Option<String>, BaselineError> {
        Ok(match self.scope()? {
            None => Some("no baseline yet".to_string()),
            Some(s) if s != scope => Some(scope_difference(&s, scope)),
            Some(_) => None,
        })
    }

    /// Drops the kept data of every value (ReportData switched off).
    pub fn forget_data(&mut self) -> Result<(), BaselineError> {
        self.conn
            .execute("UPDATE value SET data = NULL WHERE data IS NOT NULL", [])
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Replaces the stored keys with `keys`, silently (KeyEvents switched
    /// on: there is no earlier list to compare with).
    pub fn replace_keys(&mut self, keys: &[KeyEntry]) -> Result<(), BaselineError> {
        let path = self.path.clone();
        let err = BaselineError::sqlite(&path);
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute("DELETE FROM key", []).map_err(err)?;
        {
            let mut rows = Rows::new(&tx).map_err(err)?;
            for k in keys {
                rows.put_key(k).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Compares the stored values with a scan's items (in identity order),
    /// reading the baseline in that order alongside. `unavailable`: keys
    /// known up front whose values must not be reported deleted. `within`:
    /// the scan covered only these regions; rows outside them are left as
    /// they are (the items must lie inside them). `refresh`: also hand back
    /// the unchanged values, whose kept data is to be rewritten.
    pub fn compare_values(
        &self,
        unavailable: Vec<Vec<u8>>,
        items: &mut dyn Iterator<Item = Item>,
        within: Option<&[Region]>,
        refresh: bool,
    ) -> Result<Compared, MergeError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, type, size, digest, data FROM value ORDER BY id")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut merger = Merger::new(items, unavailable);
        merger.refresh = refresh;
        let err = BaselineError::sqlite(&self.path);
        while let Some(r) = rows.next().map_err(err)? {
            let id = r.get_ref(0).and_then(|v| Ok(v.as_blob()?)).map_err(err)?;
            if let Some(regions) = within {
                if !in_any(regions, id) {
                    continue;
                }
            }
            merger.old(
                id,
                |n| {
                    let ty = r.get_ref(1).and_then(|v| Ok(v.as_i64()?)).map_err(err)?;
                    let size = r.get_ref(2).and_then(|v| Ok(v.as_i64()?)).map_err(err)?;
                    let digest = r.get_ref(3).and_then(|v| Ok(v.as_blob()?)).map_err(err)?;
                    Ok(ty as u32 == n.value_type
                        && size as u64 == n.size
                        && digest == &n.digest[..])
                },
                || {
                    Ok(Entry {
                        id: id.to_vec(),
                        value_type: r.get::<_, i64>(1).map_err(err)? as u32,
                        size: r.get::<_, i64>(2).map_err(err)? as u64,
                        digest: Digest::from_slice(&r.get::<_, Vec<u8>>(3).map_err(err)?),
                        data: r.get(4).map_err(err)?,
                    })
                },
            )?;
        }
        merger.finish_all()
    }

    /// The key changes (`KeyEvents`) between the baseline and a finished scan
    /// (of `within` only, when given).
    pub fn compare_keys(
        &self,
        snap: &Snapshot,
        within: Option<&[Region]>,
    ) -> Result<Vec<Change>, BaselineError> {
        let mut kstmt = self
            .conn
            .prepare_cached("SELECT id, last_written FROM key ORDER BY id")
            .map_err(|e| self.err(e))?;
        let krows = kstmt.query([]).map_err(|e| self.err(e))?;
        let old_keys = krows
            .mapped(|r| {
                Ok(KeyEntry {
                    id: r.get(0)?,
                    last_written: r.get::<_, Option<i64>>(1)?.map(|t| t as u64),
                })
            })
            .map(|r| r.map_err(|e| self.err(e)))
            .filter(|k| match (k, within) {
                (Ok(k), Some(regions)) => regions.iter().any(|r| r.contains_key(&k.id)),
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
    ) -> Result<usize, BaselineError> {
        let path = self.path.clone();
        let err = BaselineError::sqlite(&path);
        // A rebuild rewrites nearly every page: through a rollback journal
        // they are written once, where WAL would write them twice (log, then
        // checkpoint). Atomic and durable alike; WAL comes back after.
        // Another connection (someone reading it with sqlite3) keeps it in
        // WAL mode: then the rebuild is written through WAL, just slower.
        let switched = self
            .conn
            .pragma_update(None, "journal_mode", "DELETE")
            .is_ok();
        let r = self.rebuild_in_transaction(items);
        let back = if switched {
            self.conn.pragma_update(None, "journal_mode", "WAL")
        } else {
            Ok(())
        };
        let count = r?;
        back.map_err(err)?;
        Ok(count)
    }

    fn rebuild_in_transaction(
        &mut self,
        items: &mut dyn Iterator<Item = Item>,
    ) -> Result<usize, BaselineError> {
        let path = self.path.clone();
        let err = BaselineError::sqlite(&path);
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "DELETE FROM meta WHERE key IN ('scope', 'values', 'data', 'keys')",
            [],
        )
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

    /// Completes a rebuild: the scan's keys, the scope, the data settings
    /// the values were kept with, and the value count.
    pub fn finish_rebuild(
        &mut self,
        scope: &str,
        data: &str,
        snap: &Snapshot,
        keys: bool,
        count: usize,
    ) -> Result<(), BaselineError> {
        let path = self.path.clone();
        let err = BaselineError::sqlite(&path);
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut rows = Rows::new(&tx).map_err(err)?;
            for k in &snap.keys {
                rows.put_key(k).map_err(err)?;
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('scope', ?1), ('values', ?2), ('data', ?3)",
            params![scope, count.to_string(), data],
        )
        .map_err(err)?;
        if keys {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('keys', '1')",
                [],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// How many values the baseline holds (kept in `meta`; 0 when unknown).
    pub fn value_count(&self) -> usize {
        self.meta("values")
            .ok()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Applies changes (and rewrites refreshed rows' data) and queues their
    /// rendered events, atomically.
    pub fn commit(
        &mut self,
        changes: &[Change],
        refreshed: &[Entry],
        events: &[crate::baseline::outbox::Queued],
    ) -> Result<(), BaselineError> {
        let path = self.path.clone();
        let err = BaselineError::sqlite(&path);
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut rows = Rows::new(&tx).map_err(err)?;
            for c in changes {
                match c {
                    Change::New(e) | Change::Changed { new: e, .. } => rows.put_value(e),
                    Change::Delete(e) => rows.del_value.execute(params![e.id]).map(drop),
                    Change::NewKey(k) => rows.put_key(k),
                    Change::DeleteKey(k) => rows.del_key.execute(params![k.id]).map(drop),
                }
                .map_err(err)?;
            }
            for e in refreshed {
                rows.put_value(e).map_err(err)?;
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
            crate::baseline::outbox::queue(&tx, events).map_err(err)?;
        }
        tx.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::ident;

    /// An entry at `KEY\NAME` (the last component is the value's name).
    fn e(path: &str, d: u8) -> Entry {
        let (key, name) = path.rsplit_once('\\').unwrap_or(("", path));
        Entry {
            id: ident::value_id(&k(key), name.as_bytes()),
            value_type: 1,
            size: 1,
            digest: Digest::from_slice(&[d]),
            data: None,
        }
    }

    fn k(path: &str) -> Vec<u8> {
        ident::key_id(
            &path
                .split('\\')
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>(),
        )
    }

    fn items(v: Vec<Entry>) -> impl Iterator<Item = Item> {
        v.into_iter().map(Item::Entry)
    }

    #[test]
    fn merge_finds_every_kind_of_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Baseline::open(&dir.path().join("b.sqlite")).unwrap();
        assert_eq!(
            b.rebuild_reason("s").unwrap(),
            Some("no baseline yet".to_string())
        );
        let first = vec![e("A\\a", 1), e("A\\b", 2), e("B\\c", 3), e("M\\x", 4)];
        let n = b.rebuild_values(&mut items(first)).unwrap();
        b.finish_rebuild("s", "", &Snapshot::default(), false, n)
            .unwrap();
        assert_eq!(b.rebuild_reason("s").unwrap(), None);
        assert_eq!(b.value_count(), 4);
        let second = vec![e("A\\a", 1), e("A\\b", 9), e("C\\d", 5)];
        // M is a mount that failed to read: its value is not deleted.
        let c = b
            .compare_values(vec![k("M")], &mut items(second.clone()), None, false)
            .unwrap();
        let (ch, count) = (c.changes, c.count);
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
        let q = crate::baseline::outbox::Queued {
            output: "out".into(),
            target: "f".into(),
            line: b"line".to_vec(),
            record: None,
        };
        b.commit(&ch, &[], &[q]).unwrap();
        assert_eq!(b.outbox().pending().unwrap().len(), 1);
        assert_eq!(b.value_count(), 4);
        let ch = b
            .compare_values(vec![k("M")], &mut items(second), None, false)
            .unwrap()
            .changes;
        assert!(ch.is_empty());
        assert_eq!(
            b.rebuild_reason("other").unwrap(),
            Some("the scope changed".to_string())
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
        b.finish_rebuild("s", "", &Snapshot::default(), false, n)
            .unwrap();
        // In path order: `K\S` sorts before `K\a`.
        let mut stream = vec![
            Item::Unreadable(k("K\\S")),
            Item::Entry(e("K\\a", 1)),
            Item::Entry(e("Z\\c", 3)),
        ]
        .into_iter();
        let ch = b
            .compare_values(Vec::new(), &mut stream, None, false)
            .unwrap()
            .changes;
        assert!(ch.is_empty(), "{ch:?}");
    }

    #[test]
    fn out_of_order_items_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let b = Baseline::open(&dir.path().join("b.sqlite")).unwrap();
        let r = b.compare_values(
            Vec::new(),
            &mut items(vec![e("B", 1), e("A", 1)]),
            None,
            false,
        );
        assert!(matches!(r, Err(MergeError::Disorder)));
        // Duplicates (two patterns reaching one value) count once.
        let c = b
            .compare_values(
                Vec::new(),
                &mut items(vec![e("A", 1), e("A", 1)]),
                None,
                false,
            )
            .unwrap();
        assert_eq!((c.changes.len(), c.count), (1, 1));
    }
}
