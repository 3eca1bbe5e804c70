//! The durable baseline: one SQLite database per input under CacheDir.
//!
//! A scan's result is compared with the stored baseline by a merge of two
//! sorted streams (the scan's entries in memory, the baseline read in path
//! order from disk), so a scan never holds more than one copy of the
//! baseline. The changed rows and the events they produce are written in one
//! transaction: after a crash the database holds the old baseline or the new
//! one with its undelivered events, never a mix.

use crate::scan::{Entry, Snapshot};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

/// A difference between the baseline and a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    New(Entry),
    Changed { old: Entry, new: Entry },
    Delete(Entry),
}

impl Change {
    pub fn path(&self) -> &str {
        match self {
            Change::New(e) | Change::Delete(e) => &e.path,
            Change::Changed { new, .. } => &new.path,
        }
    }
}

/// An event rendered for one output, kept until that output has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub id: i64,
    pub output: String,
    /// The destination file, for outputs that write files.
    pub target: String,
    /// The line as the output will write it.
    pub line: Vec<u8>,
}

pub struct Baseline {
    conn: Connection,
    path: PathBuf,
}

/// What `Baseline::compare` decided.
pub enum Comparison {
    /// No usable baseline (first run or scope change): it is rebuilt, no events.
    Rebuild {
        reason: &'static str,
    },
    Changes(Vec<Change>),
}

/// The changes from `old` to `new`, both sorted by path (byte order).
/// A path for which `unavailable` holds is never reported deleted.
pub fn merge(
    old: impl Iterator<Item = Result<Entry, String>>,
    new: &[Entry],
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
                    changes.push(Change::Delete(o));
                }
            }
            Ordering::Greater => changes.push(Change::New(new.next().expect("peeked").clone())),
            Ordering::Equal => {
                let o = old.next().expect("peeked")?;
                let n = new.next().expect("peeked");
                if o.digest != n.digest || o.value_type != n.value_type || o.size != n.size {
                    changes.push(Change::Changed {
                        old: o,
                        new: n.clone(),
                    });
                }
            }
        }
    }
    Ok(changes)
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
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS value (
                 path TEXT PRIMARY KEY,
                 type INTEGER NOT NULL,
                 size INTEGER NOT NULL,
                 digest BLOB NOT NULL
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS outbox (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 output TEXT NOT NULL,
                 target TEXT NOT NULL,
                 line BLOB NOT NULL
             );",
        )
        .map_err(err)?;
        Ok(Baseline {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, e: rusqlite::Error) -> String {
        format!("baseline {}: {e}", self.path.display())
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

    /// Compares a scan with the baseline built for `scope`.
    pub fn compare(&self, scope: &str, snap: &Snapshot) -> Result<Comparison, String> {
        match self.scope()? {
            None => {
                return Ok(Comparison::Rebuild {
                    reason: "no baseline yet",
                })
            }
            Some(s) if s != scope => {
                return Ok(Comparison::Rebuild {
                    reason: "the input's scope changed",
                })
            }
            Some(_) => {}
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path, type, size, digest FROM value ORDER BY path")
            .map_err(|e| self.err(e))?;
        let rows = stmt.query([]).map_err(|e| self.err(e))?;
        let old = rows.mapped(|r| {
            Ok(Entry {
                path: r.get(0)?,
                value_type: r.get::<_, i64>(1)? as u32,
                size: r.get::<_, i64>(2)? as u64,
                digest: r.get(3)?,
            })
        });
        let old = old.map(|r| r.map_err(|e| format!("baseline: {e}")));
        let changes = merge(old, &snap.entries, |p| snap.is_unavailable(p))?;
        Ok(Comparison::Changes(changes))
    }

    /// Replaces the whole baseline with a scan (first run, scope change).
    pub fn rebuild(&mut self, scope: &str, snap: &Snapshot) -> Result<(), String> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| format!("baseline {}: {e}", path.display());
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute("DELETE FROM value", []).map_err(err)?;
        {
            let mut ins = tx
                .prepare("INSERT OR REPLACE INTO value (path, type, size, digest) VALUES (?1, ?2, ?3, ?4)")
                .map_err(err)?;
            for e in &snap.entries {
                ins.execute(params![
                    e.path,
                    e.value_type as i64,
                    e.size as i64,
                    e.digest
                ])
                .map_err(err)?;
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('scope', ?1)",
            params![scope],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Applies changes and queues their rendered events, atomically.
    pub fn commit(
        &mut self,
        changes: &[Change],
        events: &[(String, String, Vec<u8>)],
    ) -> Result<(), String> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| format!("baseline {}: {e}", path.display());
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut up = tx
                .prepare("INSERT OR REPLACE INTO value (path, type, size, digest) VALUES (?1, ?2, ?3, ?4)")
                .map_err(err)?;
            let mut del = tx
                .prepare("DELETE FROM value WHERE path = ?1")
                .map_err(err)?;
            for c in changes {
                match c {
                    Change::New(e) | Change::Changed { new: e, .. } => {
                        up.execute(params![
                            e.path,
                            e.value_type as i64,
                            e.size as i64,
                            e.digest
                        ])
                        .map_err(err)?;
                    }
                    Change::Delete(e) => {
                        del.execute(params![e.path]).map_err(err)?;
                    }
                }
            }
            let mut q = tx
                .prepare("INSERT INTO outbox (output, target, line) VALUES (?1, ?2, ?3)")
                .map_err(err)?;
            for (output, target, line) in events {
                q.execute(params![output, target, line]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Events committed but not yet confirmed delivered, oldest first.
    pub fn pending(&self) -> Result<Vec<Pending>, String> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, output, target, line FROM outbox ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Pending {
                    id: r.get(0)?,
                    output: r.get(1)?,
                    target: r.get(2)?,
                    line: r.get(3)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Forgets delivered events.
    pub fn delivered(&mut self, ids: &[i64]) -> Result<(), String> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| format!("baseline {}: {e}", path.display());
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut del = tx
                .prepare("DELETE FROM outbox WHERE id = ?1")
                .map_err(err)?;
            for id in ids {
                del.execute(params![id]).map_err(err)?;
            }
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
            value_type: 1,
            size: 1,
            digest: vec![d],
        }
    }

    #[test]
    fn merge_finds_every_kind_of_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Baseline::open(&dir.path().join("b.sqlite")).unwrap();
        let snap1 = Snapshot {
            entries: vec![e("A\\a", 1), e("A\\b", 2), e("B\\c", 3), e("M\\x", 4)],
            ..Default::default()
        };
        assert!(matches!(
            b.compare("s", &snap1).unwrap(),
            Comparison::Rebuild { .. }
        ));
        b.rebuild("s", &snap1).unwrap();
        let snap2 = Snapshot {
            entries: vec![e("A\\a", 1), e("A\\b", 9), e("C\\d", 5)],
            failed_mounts: vec!["M".into()],
            ..Default::default()
        };
        let Comparison::Changes(ch) = b.compare("s", &snap2).unwrap() else {
            panic!("expected changes")
        };
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
        b.commit(&ch, &[("out".into(), "f".into(), b"line".to_vec())])
            .unwrap();
        assert_eq!(b.pending().unwrap().len(), 1);
        let Comparison::Changes(ch) = b.compare("s", &snap2).unwrap() else {
            panic!()
        };
        assert!(ch.is_empty());
        assert!(matches!(
            b.compare("other", &snap2).unwrap(),
            Comparison::Rebuild { .. }
        ));
    }
}
