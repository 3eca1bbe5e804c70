//! The durable baseline: one SQLite database per input under CacheDir.
//!
//! Stored the way the registry is: one row per key (`keyvals`) holding the
//! key's stats and all its values (names, types, sizes, digests, kept data)
//! in one blob ([`rows`]), with one MAC per row. A scan's result is compared
//! with the stored baseline by a merge of two sorted streams (the scan's
//! entries, the baseline read in path order from disk, each key row
//! expanded into its values), so a scan never holds more than one copy of
//! the baseline; a commit rewrites only the rows of keys that changed. The changed rows and the events they produce are written in one
//! transaction: after a crash the database holds the old baseline or the new
//! one with its undelivered events, never a mix.

mod error;
mod merge;
mod migrate;
pub mod outbox;
pub mod rows;
pub mod seal;

pub use error::{BaselineError, Fault, Foreign};
pub use merge::{differs, merge_keys, Compared, MergeError, Merger};
use migrate::{v1_key_id, v1_scope, v1_value_id};
pub use seal::Guard;
use seal::{Key, Ledger, Sum};

use crate::model::{Change, Entry, Item, KeyEntry, KeyHints, KeyStats, Snapshot};
use crate::path::region::Region;
use rusqlite::{params, Connection, OptionalExtension};
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

/// Prepared statements that write baseline rows inside a transaction,
/// keeping their MACs and the sums over them.
struct Rows<'t> {
    get_row: rusqlite::Statement<'t>,
    put_row: rusqlite::Statement<'t>,
    take_row: rusqlite::Statement<'t>,
    put_key: rusqlite::Statement<'t>,
    take_key: rusqlite::Statement<'t>,
    key: Option<&'t Key>,
    path: &'t Path,
    st: &'t mut State,
    /// The tables were just emptied: no old row to take out of the sums.
    fresh: bool,
}

/// A key's stats from the columns `last_written, nvalues, nsubkeys` starting
/// at `at` (all NULL: unknown).
fn stats_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Option<KeyStats>> {
    let t: Option<i64> = r.get(at)?;
    let v: Option<i64> = r.get(at + 1)?;
    let s: Option<i64> = r.get(at + 2)?;
    Ok(match (t, v, s) {
        (Some(t), Some(v), Some(s)) => Some(KeyStats {
            last_written: t as u64,
            values: v as u32,
            subkeys: s as u32,
        }),
        _ => None,
    })
}

impl<'t> Rows<'t> {
    fn new(
        tx: &'t rusqlite::Transaction<'_>,
        key: Option<&'t Key>,
        path: &'t Path,
        st: &'t mut State,
        fresh: bool,
    ) -> rusqlite::Result<Rows<'t>> {
        Ok(Rows {
            get_row: tx.prepare(
                "SELECT last_written, nvalues, nsubkeys, vals, mac FROM keyvals WHERE id = ?1",
            )?,
            put_row: tx.prepare(
                "INSERT OR REPLACE INTO keyvals (id, last_written, nvalues, nsubkeys, vals, mac) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?,
            take_row: tx.prepare("DELETE FROM keyvals WHERE id = ?1 RETURNING mac")?,
            put_key: tx.prepare(
                "INSERT OR REPLACE INTO key (id, last_written, mac) VALUES (?1, ?2, ?3)",
            )?,
            take_key: tx.prepare("DELETE FROM key WHERE id = ?1 RETURNING mac")?,
            key,
            path,
            st,
            fresh,
        })
    }

    /// Writes the row of key `id`: its stats and the blob of its values.
    fn put_row(
        &mut self,
        id: &[u8],
        stats: Option<KeyStats>,
        values: &[u8],
    ) -> rusqlite::Result<()> {
        if !self.fresh {
            self.del_row(id)?;
        }
        let mac = self.key.map(|k| k.row_mac(id, stats, values));
        self.put_row.execute(params![
            id,
            stats.map(|s| s.last_written as i64),
            stats.map(|s| i64::from(s.values)),
            stats.map(|s| i64::from(s.subkeys)),
            values,
            mac.as_ref().map(|m| &m[..])
        ])?;
        add(&mut self.st.vsum, mac.as_ref());
        Ok(())
    }

    fn del_row(&mut self, id: &[u8]) -> rusqlite::Result<()> {
        take(&mut self.take_row, &mut self.st.vsum, id)
    }

    /// The stored row of key `id` (stats, values), its MAC checked: a
    /// commit never seals a row it did not write.
    fn get_row(&mut self, id: &[u8]) -> Result<Option<StoredRow>, BaselineError> {
        let err = BaselineError::sqlite(self.path);
        let row: Option<(Option<KeyStats>, Vec<u8>, Mac)> = self
            .get_row
            .query_row(params![id], |r| Ok((stats_at(r, 0)?, r.get(3)?, r.get(4)?)))
            .optional()
            .map_err(err)?;
        let Some((stats, values, stored)) = row else {
            return Ok(None);
        };
        if let Some(k) = self.key {
            if stored.as_deref() != Some(&k.row_mac(id, stats, &values)[..]) {
                return Err(tampered_row(self.path, id));
            }
        }
        Ok(Some((stats, values)))
    }

    /// Applies `edit` to the row of key `id` (which may not exist yet):
    /// rewritten, or deleted when no value is left. Returns the change in
    /// the number of values stored.
    fn apply(&mut self, id: &[u8], edit: &mut Edit<'_>) -> Result<i64, BaselineError> {
        let err = BaselineError::sqlite(self.path);
        let old = self.get_row(id)?;
        let (old_stats, blob) = match &old {
            Some((s, b)) => (*s, b.as_slice()),
            None => (None, &[][..]),
        };
        let stored = rows::decode(blob).map_err(|m| malformed_row(self.path, id, &m))?;
        let before = stored.len() as i64;
        edit.puts.sort_by(|a, b| a.id.cmp(&b.id));
        edit.puts.dedup_by(|a, b| a.id == b.id);
        edit.dels.sort();
        let klen = id.len() + 1;
        let mut out: Vec<rows::Stored<'_>> = Vec::with_capacity(stored.len() + edit.puts.len());
        let mut puts = edit.puts.iter().peekable();
        for v in stored {
            while let Some(p) = puts.next_if(|p| &p.id[klen..] < v.rest) {
                out.push(stored_of(p, klen));
            }
            if let Some(p) = puts.next_if(|p| &p.id[klen..] == v.rest) {
                out.push(stored_of(p, klen));
            } else if edit
                .dels
                .binary_search_by(|d| d[klen..].cmp(v.rest))
                .is_err()
            {
                out.push(v);
            }
        }
        out.extend(puts.map(|p| stored_of(p, klen)));
        let after = out.len() as i64;
        let stats = edit.stats.unwrap_or(old_stats);
        if out.is_empty() {
            if old.is_some() {
                self.del_row(id).map_err(err)?;
            }
        } else {
            let values = rows::encode(out);
            if old.is_none() {
                // Nothing to take out of the sums.
                let fresh = std::mem::replace(&mut self.fresh, true);
                let r = self.put_row(id, stats, &values);
                self.fresh = fresh;
                r.map_err(err)?;
            } else {
                self.put_row(id, stats, &values).map_err(err)?;
            }
        }
        Ok(after - before)
    }

    fn put_key_raw(&mut self, id: &[u8], last_written: Option<i64>) -> rusqlite::Result<()> {
        if !self.fresh {
            self.del_key(id)?;
        }
        let mac = self.key.map(|k| k.key_mac(id, last_written));
        self.put_key
            .execute(params![id, last_written, mac.as_ref().map(|m| &m[..])])?;
        add(&mut self.st.ksum, mac.as_ref());
        Ok(())
    }

    fn put_key(&mut self, k: &KeyEntry) -> rusqlite::Result<()> {
        self.put_key_raw(&k.id, k.last_written.map(|t| t as i64))
    }

    fn del_key(&mut self, id: &[u8]) -> rusqlite::Result<()> {
        take(&mut self.take_key, &mut self.st.ksum, id)
    }
}

/// A key's row as stored: its stats and the blob of its values.
type StoredRow = (Option<KeyStats>, Vec<u8>);

/// A row's MAC column (NULL without a key).
type Mac = Option<Vec<u8>>;

/// The changes to one key's row of values.
#[derive(Default)]
struct Edit<'a> {
    /// Values written (new, changed, refreshed).
    puts: Vec<&'a Entry>,
    /// Identities of values deleted.
    dels: Vec<&'a [u8]>,
    /// New stats (Some(None): now unknown), None: as stored.
    stats: Option<Option<KeyStats>>,
}

/// An entry as a stored value of its key (`klen`: its key's identity and
/// the value mark).
fn stored_of(e: &Entry, klen: usize) -> rows::Stored<'_> {
    rows::Stored {
        rest: &e.id[klen..],
        ty: e.value_type,
        size: e.size,
        digest: &e.digest,
        data: e.data.as_deref(),
    }
}

/// The key part of a value's identity.
fn key_of(id: &[u8]) -> &[u8] {
    &id[..crate::path::ident::key_len(id)]
}

fn tampered_row(path: &Path, id: &[u8]) -> BaselineError {
    tampered_at(
        path,
        format!("the row of key {} does not match its MAC", row_name(id)),
    )
}

fn malformed_row(path: &Path, id: &[u8], m: &rows::Malformed) -> BaselineError {
    BaselineError::Damaged {
        file: path.to_path_buf(),
        fault: Fault::Damaged(format!(
            "the row of key {} cannot be read: {}",
            row_name(id),
            m.0
        )),
    }
}

/// Writes values arriving in identity order as one row per key.
#[derive(Default)]
struct Grouper {
    /// The key being collected and its stats.
    key: Vec<u8>,
    stats: Option<KeyStats>,
    blob: Vec<u8>,
    /// The last value's identity (order check), empty before the first.
    last: Vec<u8>,
    /// The last key item seen (a streamed scan hands it over before its
    /// values).
    item: Option<(Vec<u8>, Option<KeyStats>)>,
}

/// What [`Grouper::add`] did with a value.
enum Added {
    Stored,
    /// The same identity as the one before (two patterns reaching it).
    Duplicate,
    /// Before the one before: the caller applies it to the stored row.
    Late,
}

impl Grouper {
    fn add(
        &mut self,
        rows: &mut Rows<'_>,
        id: &[u8],
        ty: u32,
        size: u64,
        digest: &[u8],
        data: Option<&[u8]>,
    ) -> rusqlite::Result<Added> {
        if !self.last.is_empty() {
            match id.cmp(&self.last) {
                std::cmp::Ordering::Less => return Ok(Added::Late),
                std::cmp::Ordering::Equal => return Ok(Added::Duplicate),
                std::cmp::Ordering::Greater => {}
            }
        }
        let k = key_of(id);
        if k != self.key.as_slice() || self.last.is_empty() {
            self.flush(rows)?;
            self.key.clear();
            self.key.extend_from_slice(k);
            self.stats = match &self.item {
                Some((i, s)) if i.as_slice() == k => *s,
                _ => None,
            };
        }
        rows::push(&mut self.blob, &id[k.len() + 1..], ty, size, digest, data);
        self.last.clear();
        self.last.extend_from_slice(id);
        Ok(Added::Stored)
    }

    fn flush(&mut self, rows: &mut Rows<'_>) -> rusqlite::Result<()> {
        if !self.blob.is_empty() {
            rows.put_row(&self.key, self.stats, &self.blob)?;
            self.blob.clear();
        }
        Ok(())
    }
}

/// Deletes row `id` with `stmt` (a `DELETE ... RETURNING mac`) and takes
/// its MAC out of `sum`.
fn take(stmt: &mut rusqlite::Statement<'_>, sum: &mut Sum, id: &[u8]) -> rusqlite::Result<()> {
    let old: Option<Option<Vec<u8>>> = stmt.query_row(params![id], |r| r.get(0)).optional()?;
    if let Some(mac) = old {
        remove(sum, mac.as_deref());
    }
    Ok(())
}

fn add(sum: &mut Sum, mac: Option<&[u8; seal::MAC_LEN]>) {
    match mac {
        Some(m) => sum.add(m),
        None => sum.count += 1,
    }
}

fn remove(sum: &mut Sum, mac: Option<&[u8]>) {
    match mac {
        Some(m) => sum.remove(m),
        None => sum.count = sum.count.saturating_sub(1),
    }
}

/// The sealed state of a baseline: how many sealed commits it has had and
/// the sums over the MACs of its rows of values (one per key) and of its
/// key rows (`KeyEvents`) (meta `commits`, `vsum`, `ksum`).
#[derive(Clone, Copy, Debug, Default)]
struct State {
    commits: u64,
    vsum: Sum,
    ksum: Sum,
}

pub struct Baseline {
    conn: Connection,
    path: PathBuf,
    key: Option<Key>,
    ledger: Option<Ledger>,
    state: State,
    /// The outbox's bound in bytes (global `OutboxMaxSize`).
    outbox_limit: u64,
    /// The keys whose stats the last comparison found changed (or new
    /// keys with values), with the scan's stats: written by the commit
    /// that follows it.
    pending: RefCell<Vec<(Vec<u8>, Option<KeyStats>)>>,
    /// When the file's structure was last checked whole and passed (Unix
    /// seconds): at this open, or as the side record says (see `settle`).
    checked: i64,
}

/// How long a structural check of an unchanged file counts: a day, so a
/// file damaged at rest (bad sectors, a copy gone wrong) is found by the
/// next day's first open at the latest, even where no row read trips on it.
const RECHECK_SECS: i64 = 86_400;

/// Changes rendered into events at a time when committing.
const RENDER_CHUNK: usize = 4096;

/// The outbox's bound when the configuration sets none: 1 GiB.
pub const OUTBOX_LIMIT: u64 = 1 << 30;

/// The layout this release writes (meta 'schema'). 1 (no 'schema' row):
/// values keyed by their path text, which two different values could share
/// (see [`crate::path::ident`]); 2: no MACs; 3: one row per value. All
/// migrated on open.
const SCHEMA: u32 = 4;

const CREATE: &str = "
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS keyvals (
        id BLOB PRIMARY KEY,
        last_written INTEGER,
        nvalues INTEGER,
        nsubkeys INTEGER,
        vals BLOB NOT NULL,
        mac BLOB
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS key (
        id BLOB PRIMARY KEY,
        last_written INTEGER,
        mac BLOB
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

/// Reads the `meta` rows but the seal, sorted by name: what the seal covers.
fn sealed_meta(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut q = conn.prepare("SELECT key, value FROM meta WHERE key != 'seal' ORDER BY key")?;
    let rows = q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Writes the state and a new seal inside the caller's transaction.
fn reseal(
    conn: &Connection,
    key: Option<&Key>,
    file_name: &str,
    st: &State,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('commits', ?1), ('vsum', ?2), ('ksum', ?3)",
        params![st.commits.to_string(), st.vsum.to_text(), st.ksum.to_text()],
    )?;
    match key {
        Some(k) => {
            let seal = k.seal(file_name, &sealed_meta(conn)?);
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('seal', ?1)",
                [seal],
            )
        }
        None => conn.execute("DELETE FROM meta WHERE key = 'seal'", []),
    }
    .map(drop)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The sealed state as stored now (another regmon process may have
/// committed since this one read it), its seal checked.
fn current(conn: &Connection, key: Option<&Key>, path: &Path) -> Result<State, BaselineError> {
    let err = BaselineError::sqlite(path);
    let meta = sealed_meta(conn).map_err(err)?;
    let get = |k: &str| meta.iter().find(|m| m.0 == k).map(|m| m.1.as_str());
    if let Some(k) = key {
        let seal: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'seal'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err)?;
        let why = match seal {
            Some(s) if s == k.seal(&file_name(path), &meta) => None,
            Some(_) => Some("meta does not match its seal"),
            None => Some("no seal"),
        };
        if let Some(why) = why {
            return Err(BaselineError::Damaged {
                file: path.to_path_buf(),
                fault: Fault::Tampered(why.into()),
            });
        }
    }
    Ok(State {
        commits: get("commits").and_then(|v| v.parse().ok()).unwrap_or(0),
        vsum: get("vsum").and_then(Sum::parse).unwrap_or_default(),
        ksum: get("ksum").and_then(Sum::parse).unwrap_or_default(),
    })
}

/// Whether SQLite's log beside the baseline (`FILE-wal`) is absent or
/// empty: otherwise the file alone is not the whole database.
fn no_pending_log(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(&wal).map_or(true, |m| m.len() == 0)
}

impl Baseline {
    /// Opens (or creates) the baseline at `path`, checked against `guard`:
    /// a file that is not a database, damaged, of a later layout, of another
    /// host, tampered with, older than the last one written, or missing
    /// although there was one, is a [`BaselineError::Damaged`] (see
    /// [`BaselineError::fault`]).
    pub fn open(path: &Path, guard: &Guard) -> Result<Baseline, BaselineError> {
        if let Some(dir) = path.parent() {
            // Private, like everything regmon creates (see platform::perms).
            crate::platform::perms::create_dir_private(dir).map_err(|source| {
                BaselineError::Folder {
                    dir: dir.to_path_buf(),
                    source,
                }
            })?;
        }
        let damaged = |fault| BaselineError::Damaged {
            file: path.to_path_buf(),
            fault,
        };
        let ledger = guard.ledger(path);
        let recorded = ledger.as_ref().and_then(Ledger::read);
        if !path.exists() {
            if recorded.is_some_and(|r| r.commits > 0) {
                return Err(damaged(Fault::Missing));
            }
            // Readable by its owner only: SQLite gives its -wal and -shm
            // files the same permissions.
            seal::create_private(path).map_err(|source| BaselineError::Folder {
                dir: path.to_path_buf(),
                source,
            })?;
        }
        let now = chrono::Utc::now().timestamp();
        // The file exactly as this program closed it, its structure checked
        // less than a day ago: the whole-file check is not repeated.
        let settled = recorded.and_then(|r| r.settled).filter(|s| {
            Some(s.stamp) == hive::file::FileStamp::of_path(path)
                && (0..RECHECK_SECS).contains(&(now - s.checked))
                && no_pending_log(path)
        });
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
        let checked = match settled {
            Some(s) => {
                tracing::debug!(
                    "{}: unchanged since regmon closed it; structure checked at {}",
                    path.display(),
                    s.checked
                );
                s.checked
            }
            None => {
                let check: Vec<String> = conn
                    .prepare("PRAGMA quick_check(5)")
                    .and_then(|mut q| {
                        q.query_map([], |r| r.get::<_, String>(0))?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(err)?;
                if check.first().map(String::as_str) != Some("ok") {
                    return Err(damaged(Fault::Damaged(format!(
                        "quick_check: {}",
                        check.join("; ")
                    ))));
                }
                now
            }
        };
        let mut b = Baseline {
            conn,
            path: path.to_path_buf(),
            key: guard.key.clone(),
            ledger,
            state: State::default(),
            outbox_limit: OUTBOX_LIMIT,
            pending: RefCell::new(Vec::new()),
            checked,
        };
        let before = b.upgrade(&guard.host)?;
        crate::baseline::outbox::migrate(&b.conn).map_err(err)?;
        if let Some(h) = b.meta("host")? {
            if h != guard.host {
                return Err(damaged(Fault::OtherHost(h)));
            }
        }
        current(&b.conn, b.key.as_ref(), path)?;
        if let Some(r) = recorded {
            if r.commits > before {
                return Err(damaged(Fault::RolledBack {
                    found: before,
                    recorded: r.commits,
                }));
            }
        }
        Ok(b)
    }

    /// Creates the tables, or brings a baseline of an earlier release to
    /// this layout in one transaction (nothing re-reported, nothing lost),
    /// computing the MACs. Returns the sealed commits the file had before.
    fn upgrade(&mut self, host: &str) -> Result<u64, BaselineError> {
        let path = self.path.clone();
        let err = BaselineError::sqlite(&path);
        let name = file_name(&path);
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )
        .map_err(err)?;
        let get = |k: &str| {
            tx.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| {
                r.get::<_, String>(0)
            })
            .optional()
        };
        let stored = get("schema").map_err(err)?;
        let layout = match &stored {
            None => None,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if n <= SCHEMA => Some(n),
                _ => {
                    return Err(BaselineError::Damaged {
                        file: path.clone(),
                        fault: Fault::LaterLayout {
                            layout: v.clone(),
                            known: SCHEMA,
                        },
                    })
                }
            },
        };
        if layout == Some(SCHEMA) {
            let st = State {
                commits: get("commits")
                    .map_err(err)?
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                vsum: get("vsum")
                    .map_err(err)?
                    .and_then(|v| Sum::parse(&v))
                    .unwrap_or_default(),
                ksum: get("ksum")
                    .map_err(err)?
                    .and_then(|v| Sum::parse(&v))
                    .unwrap_or_default(),
            };
            tx.execute_batch(CREATE).map_err(err)?;
            tx.commit().map_err(err)?;
            self.state = st;
            return Ok(st.commits);
        }
        let table = |t: &str| -> rusqlite::Result<bool> {
            tx.query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [t],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
        };
        let v1 = tx
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('value') WHERE name = 'path'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(err)?
            > 0;
        // Layouts 1 to 3 kept one row per value: they are regrouped into
        // one row per key, with MACs. Layout 3 is sealed: its seal, row MACs
        // and sums are checked first, so a file edited while regmon was
        // stopped is refused rather than sealed anew.
        let sealed = layout == Some(3);
        let mut before = 0;
        let mut old_vsum = Sum::default();
        let mut st = State::default();
        if sealed {
            let old = current(&tx, self.key.as_ref(), &path)?;
            before = old.commits;
            old_vsum = old.vsum;
            // Layout 3's key table is this layout's: kept with its MACs.
            st.ksum = old.ksum;
        }
        let old = table("value").map_err(err)?;
        let old_keys = table("key").map_err(err)? && !sealed;
        if old {
            tx.execute_batch("ALTER TABLE value RENAME TO value_old;")
                .map_err(err)?;
        }
        if old_keys {
            tx.execute_batch("ALTER TABLE key RENAME TO key_old;")
                .map_err(err)?;
        }
        tx.execute_batch(CREATE).map_err(err)?;
        let mut vsum = Sum::default();
        {
            let mut rows = Rows::new(&tx, self.key.as_ref(), &path, &mut st, true).map_err(err)?;
            if old {
                type Old = (Vec<u8>, i64, i64, Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>);
                let mut group = Grouper::default();
                let mut add = |rows: &mut Rows<'_>, v: Old| -> Result<(), BaselineError> {
                    let (id, ty, size, digest, data, mac) = v;
                    if sealed {
                        if let Some(k) = &self.key {
                            let m = k.value_mac(&id, ty, size, &digest, data.as_deref());
                            if mac.as_deref() != Some(&m[..]) {
                                return Err(tampered_at(
                                    &path,
                                    format!("the row of {} does not match its MAC", row_name(&id)),
                                ));
                            }
                            vsum.add(&m);
                        }
                    }
                    // Out of order only if two schema-1 paths made one
                    // identity: the first is kept.
                    group
                        .add(rows, &id, ty as u32, size as u64, &digest, data.as_deref())
                        .map_err(err)?;
                    Ok(())
                };
                if v1 {
                    // Schema 1 keyed values by path text, whose order is not
                    // the identities': sorted here (a one-time conversion).
                    let mut all: Vec<Old> = Vec::new();
                    let mut get = tx
                        .prepare("SELECT path, key_len, type, size, digest, data FROM value_old")
                        .map_err(err)?;
                    let mut q = get.query([]).map_err(err)?;
                    while let Some(r) = q.next().map_err(err)? {
                        let p: String = r.get(0).map_err(err)?;
                        let key_len = r.get::<_, i64>(1).map_err(err)? as usize;
                        all.push((
                            v1_value_id(&p, key_len),
                            r.get(2).map_err(err)?,
                            r.get(3).map_err(err)?,
                            r.get(4).map_err(err)?,
                            r.get(5).map_err(err)?,
                            None,
                        ));
                    }
                    all.sort_by(|a, b| a.0.cmp(&b.0));
                    for v in all {
                        add(&mut rows, v)?;
                    }
                } else {
                    let mac = if sealed { "mac" } else { "NULL" };
                    let mut get = tx
                        .prepare(&format!(
                            "SELECT id, type, size, digest, data, {mac} FROM value_old ORDER BY id"
                        ))
                        .map_err(err)?;
                    let mut q = get.query([]).map_err(err)?;
                    while let Some(r) = q.next().map_err(err)? {
                        add(
                            &mut rows,
                            (
                                r.get(0).map_err(err)?,
                                r.get(1).map_err(err)?,
                                r.get(2).map_err(err)?,
                                r.get(3).map_err(err)?,
                                r.get(4).map_err(err)?,
                                r.get(5).map_err(err)?,
                            ),
                        )?;
                    }
                }
                group.flush(&mut rows).map_err(err)?;
            }
            if old_keys {
                let cols = if v1 {
                    "path, last_written"
                } else {
                    "id, last_written"
                };
                let mut get = tx
                    .prepare(&format!("SELECT {cols} FROM key_old"))
                    .map_err(err)?;
                let mut q = get.query([]).map_err(err)?;
                while let Some(r) = q.next().map_err(err)? {
                    let id = if v1 {
                        v1_key_id(&r.get::<_, String>(0).map_err(err)?)
                    } else {
                        r.get(0).map_err(err)?
                    };
                    rows.put_key_raw(&id, r.get(1).map_err(err)?).map_err(err)?;
                }
            }
        }
        if sealed && self.key.is_some() && vsum != old_vsum {
            return Err(tampered_at(
                &path,
                format!(
                    "the value rows ({}) do not match the recorded sum ({} rows): rows deleted, added or restored",
                    vsum.count, old_vsum.count
                ),
            ));
        }
        if old {
            tx.execute_batch("DROP TABLE value_old;").map_err(err)?;
        }
        if old_keys {
            tx.execute_batch("DROP TABLE key_old;").map_err(err)?;
        }
        if v1 {
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
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?1)",
            params![SCHEMA.to_string()],
        )
        .map_err(err)?;
        // Written where it was made (a baseline of an earlier release:
        // here, as far as anyone can tell).
        tx.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('host', ?1)",
            params![host],
        )
        .map_err(err)?;
        st.commits = before + 1;
        reseal(&tx, self.key.as_ref(), &name, &st).map_err(err)?;
        tx.commit().map_err(err)?;
        self.state = st;
        self.record();
        Ok(before)
    }

    /// Notes a commit in the side record (after it is durable: a crash
    /// between leaves the record behind the file, which is accepted).
    fn record(&self) {
        if let Some(l) = &self.ledger {
            l.write(seal::Entry {
                commits: self.state.commits,
                good: chrono::Utc::now().timestamp(),
                settled: None,
            });
        }
    }

    /// Records the file as it is now, when all of it is in the file (every
    /// logged page copied in): the next open of the file unchanged skips
    /// the structural check. For the end of a run, by the process holding
    /// the baseline's lock (no one else writes meanwhile); the checkpoint
    /// is passive: it never waits for or blocks another connection.
    pub fn settle(&self) {
        let Some(l) = &self.ledger else {
            return;
        };
        let done = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            });
        match done {
            Ok((0, logged, copied)) if logged == copied => {}
            _ => return,
        }
        if let Some(stamp) = hive::file::FileStamp::of_path(&self.path) {
            l.settle(stamp, self.checked);
        }
    }

    /// The side record of this baseline, if kept.
    pub fn ledger(&self) -> Option<&Ledger> {
        self.ledger.as_ref()
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

    /// The keys directly below the key `parent` (an identity) under which
    /// the baseline holds rows (keys with values, or keys for `KeyEvents`): their
    /// identities, in order. One index seek per key found, so a large
    /// subtree costs no more than a small one.
    pub fn child_keys(&self, parent: &[u8]) -> Result<Vec<Vec<u8>>, BaselineError> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        for table in ["keyvals", "key"] {
            let mut st = self
                .conn
                .prepare_cached(&format!(
                    "SELECT id FROM {table} WHERE id >= ?1 ORDER BY id LIMIT 1"
                ))
                .map_err(|e| self.err(e))?;
            // A name's first byte is at least 2 (0 and 1 are separators and
            // are escaped): this skips the parent's own rows.
            let mut from = parent.to_vec();
            from.push(2);
            loop {
                let id: Option<Vec<u8>> = st
                    .query_row([&from], |r| r.get(0))
                    .optional()
                    .map_err(|e| self.err(e))?;
                let Some(id) = id.filter(|id| id.starts_with(parent)) else {
                    break;
                };
                let Some(end) = crate::path::ident::component_end(&id[parent.len()..]) else {
                    break;
                };
                let child = id[..parent.len() + end].to_vec();
                // Past every row under `child`: its last byte (the key end,
                // 1) raised to 2.
                from = child.clone();
                if let Some(last) = from.last_mut() {
                    *last = 2;
                }
                if !out.contains(&child) {
                    out.push(child);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Sets (or, with None, forgets) a `meta` setting.
    pub fn set_meta(&mut self, key: &str, value: Option<&str>) -> Result<(), BaselineError> {
        let path = self.path.clone();
        let err = BaselineError::sqlite(&path);
        let tx = self.conn.transaction().map_err(err)?;
        let mut st = current(&tx, self.key.as_ref(), &path)?;
        st.commits += 1;
        match value {
            Some(v) => tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, v],
            ),
            None => tx.execute("DELETE FROM meta WHERE key = ?1", [key]),
        }
        .map_err(err)?;
        reseal(&tx, self.key.as_ref(), &file_name(&path), &st).map_err(err)?;
        tx.commit().map_err(err)?;
        self.committed(st);
        Ok(())
    }

    fn committed(&mut self, st: State) {
        self.state = st;
        self.record();
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
        let path = self.path.clone();
        let err = BaselineError::sqlite(&path);
        let tx = self.conn.transaction().map_err(err)?;
        let mut st = current(&tx, self.key.as_ref(), &path)?;
        st.commits += 1;
        {
            let mut get = tx
                .prepare("SELECT id, last_written, nvalues, nsubkeys, vals FROM keyvals")
                .map_err(err)?;
            let mut q = get.query([]).map_err(err)?;
            // The rows that keep data, without it.
            let mut found: Vec<(Vec<u8>, Option<KeyStats>, Vec<u8>)> = Vec::new();
            while let Some(r) = q.next().map_err(err)? {
                let id: Vec<u8> = r.get(0).map_err(err)?;
                let blob = r.get_ref(4).and_then(|v| Ok(v.as_blob()?)).map_err(err)?;
                let values = rows::decode(blob).map_err(|m| malformed_row(&path, &id, &m))?;
                if values.iter().any(|v| v.data.is_some()) {
                    let stats = stats_at(r, 1).map_err(err)?;
                    let blob =
                        rows::encode(values.into_iter().map(|v| rows::Stored { data: None, ..v }));
                    found.push((id, stats, blob));
                }
            }
            drop(q);
            let mut rows = Rows::new(&tx, self.key.as_ref(), &path, &mut st, false).map_err(err)?;
            for (id, stats, blob) in found {
                rows.put_row(&id, stats, &blob).map_err(err)?;
            }
        }
        reseal(&tx, self.key.as_ref(), &file_name(&path), &st).map_err(err)?;
        tx.commit().map_err(err)?;
        self.committed(st);
        Ok(())
    }

    /// The stored stats of every key with values in the baseline, for an
    /// `Incremental` scan; None when none are stored (a baseline just
    /// migrated from a layout without them, or a backend that has none).
    /// Not checked against the MACs here: the rows of the keys a scan
    /// carries are checked when it is compared.
    pub fn key_hints(&self) -> Result<Option<KeyHints>, BaselineError> {
        let mut q = self
            .conn
            .prepare_cached(
                "SELECT id, last_written, nvalues, nsubkeys FROM keyvals \
                 WHERE last_written IS NOT NULL ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let found: Vec<(Vec<u8>, KeyStats)> = q
            .query_map([], |r| Ok((r.get(0)?, stats_at(r, 1)?)))
            .map_err(|e| self.err(e))?
            .filter_map(|r| match r {
                Ok((id, Some(s))) => Some(Ok((id, s))),
                Ok((_, None)) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))?;
        Ok((!found.is_empty()).then(|| KeyHints::new(found)))
    }

    /// Replaces the stored keys with `keys`, silently (KeyEvents switched
    /// on: there is no earlier list to compare with).
    pub fn replace_keys(&mut self, keys: &[KeyEntry]) -> Result<(), BaselineError> {
        let path = self.path.clone();
        let err = BaselineError::sqlite(&path);
        let tx = self.conn.transaction().map_err(err)?;
        let mut st = current(&tx, self.key.as_ref(), &path)?;
        st.commits += 1;
        st.ksum = Sum::default();
        tx.execute("DELETE FROM key", []).map_err(err)?;
        {
            let mut rows = Rows::new(&tx, self.key.as_ref(), &path, &mut st, true).map_err(err)?;
            for k in keys {
                rows.put_key(k).map_err(err)?;
            }
        }
        reseal(&tx, self.key.as_ref(), &file_name(&path), &st).map_err(err)?;
        tx.commit().map_err(err)?;
        self.committed(st);
        Ok(())
    }

    /// Compares the stored values with a scan's items (in identity order),
    /// reading the baseline in that order alongside, one row per key. `unavailable`: keys
    /// known up front whose values must not be reported deleted. `within`:
    /// the scan covered only these regions; rows outside them are left as
    /// they are (the items must lie inside them). `refresh`: also hand back
    /// the unchanged values, whose kept data is to be rewritten. The keys
    /// whose stats changed are remembered for the next [`Baseline::commit`].
    pub fn compare_values(
        &self,
        unavailable: Vec<Vec<u8>>,
        items: &mut dyn Iterator<Item = Item>,
        within: Option<&[Region]>,
        refresh: bool,
    ) -> Result<Compared, MergeError> {
        self.pending.borrow_mut().clear();
        // Another process may have committed since this one opened it.
        let state = current(&self.conn, self.key.as_ref(), &self.path)?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, last_written, nvalues, nsubkeys, vals, mac FROM keyvals ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let seen = RefCell::new(VecDeque::new());
        let mut watch = Watch {
            items,
            current: Vec::new(),
            stats: None,
            open: false,
            seen: &seen,
        };
        let mut merger = Merger::new(&mut watch, unavailable);
        merger.refresh = refresh;
        let err = BaselineError::sqlite(&self.path);
        let mut sum = Sum::default();
        let mut pending = Vec::new();
        let mut id = Vec::new();
        while let Some(r) = rows.next().map_err(err)? {
            let key = r.get_ref(0).and_then(|v| Ok(v.as_blob()?)).map_err(err)?;
            if let Some(regions) = within {
                // A row's values all lie in its key: in a region or not.
                if !regions.iter().any(|g| g.contains_key(key)) {
                    continue;
                }
            }
            let stats = stats_at(r, 1).map_err(err)?;
            let blob = r.get_ref(4).and_then(|v| Ok(v.as_blob()?)).map_err(err)?;
            if let Some(k) = &self.key {
                // Every row read is checked; a whole comparison also checks
                // that no row was added, removed or put back.
                let stored = r
                    .get_ref(5)
                    .and_then(|v| Ok(v.as_blob_or_null()?))
                    .map_err(err)?;
                let mac = k.row_mac(key, stats, blob);
                if stored != Some(&mac[..]) {
                    return Err(tampered_row(&self.path, key).into());
                }
                sum.add(&mac);
            }
            // The row's values in identity order, each handed to the merge
            // as a borrowed view (a copy only when reported).
            id.clear();
            id.extend_from_slice(key);
            id.push(crate::path::ident::VALUE_MARK);
            let base = id.len();
            let mut values = rows::Reader::new(blob);
            let mut prev: Option<&[u8]> = None;
            let malformed = |m: rows::Malformed| malformed_row(&self.path, key, &m);
            // A key an Incremental scan carried: its values stand as they
            // are, counted (and the blob still checked whole) but not
            // merged one by one. Refreshing needs each of them.
            let carried = !refresh && merger.carried(key)?;
            let mut kept = 0;
            while let Some(v) = values.next_value().map_err(malformed)? {
                if prev.is_some_and(|p| p >= v.rest) {
                    return Err(malformed(rows::Malformed("values out of order")).into());
                }
                prev = Some(v.rest);
                if carried {
                    kept += 1;
                    continue;
                }
                id.truncate(base);
                id.extend_from_slice(v.rest);
                merger.old(&id, |n| Ok(v.same(n)), || Ok(v.entry(key)))?;
            }
            merger.keep(kept);
            // The scan's keys up to this one: a key with values and no row
            // gets one (its stats come with it); this key's row is
            // rewritten if its stats changed.
            let mut q = seen.borrow_mut();
            while let Some(front) = q.front() {
                match front.0.as_slice().cmp(key) {
                    std::cmp::Ordering::Greater => break,
                    std::cmp::Ordering::Less => {
                        let (i, s) = q.pop_front().expect("front");
                        if s.is_some() {
                            pending.push((i, s));
                        }
                    }
                    std::cmp::Ordering::Equal => {
                        let (i, s) = q.pop_front().expect("front");
                        if s != stats {
                            pending.push((i, s));
                        }
                    }
                }
            }
        }
        if self.key.is_some() && within.is_none() && sum != state.vsum {
            return Err(self
                .tampered(format!(
                    "the value rows ({}) do not match the recorded sum ({} rows): rows deleted, added or restored",
                    sum.count, state.vsum.count
                ))
                .into());
        }
        let compared = merger.finish_all()?;
        pending.extend(seen.into_inner().into_iter().filter(|(_, s)| s.is_some()));
        *self.pending.borrow_mut() = pending;
        Ok(compared)
    }

    fn tampered(&self, why: String) -> BaselineError {
        tampered_at(&self.path, why)
    }

    /// The key changes (`KeyEvents`) between the baseline and a finished scan
    /// (of `within` only, when given).
    pub fn compare_keys(
        &self,
        snap: &Snapshot,
        within: Option<&[Region]>,
    ) -> Result<Vec<Change>, BaselineError> {
        let state = current(&self.conn, self.key.as_ref(), &self.path)?;
        let mut kstmt = self
            .conn
            .prepare_cached("SELECT id, last_written, mac FROM key ORDER BY id")
            .map_err(|e| self.err(e))?;
        let krows = kstmt.query([]).map_err(|e| self.err(e))?;
        let mut sum = Sum::default();
        let old_keys = krows
            .mapped(|r| {
                Ok((
                    KeyEntry {
                        id: r.get(0)?,
                        last_written: r.get::<_, Option<i64>>(1)?.map(|t| t as u64),
                    },
                    r.get::<_, Option<Vec<u8>>>(2)?,
                ))
            })
            .map(|r| r.map_err(|e| self.err(e)))
            .filter(|k| match (k, within) {
                (Ok((k, _)), Some(regions)) => regions.iter().any(|r| r.contains_key(&k.id)),
                _ => true,
            })
            .map(|r| {
                let (k, stored) = r?;
                if let Some(key) = &self.key {
                    let mac = key.key_mac(&k.id, k.last_written.map(|t| t as i64));
                    if stored.as_deref() != Some(&mac[..]) {
                        return Err(self.tampered(format!(
                            "the row of key {} does not match its MAC",
                            row_name(&k.id)
                        )));
                    }
                    sum.add(&mac);
                }
                Ok(k)
            });
        let changes = merge_keys(old_keys, &snap.keys, |p| snap.is_unavailable(p))?;
        if self.key.is_some() && within.is_none() && sum != state.ksum {
            return Err(self.tampered(format!(
                "the key rows ({}) do not match the recorded sum ({} rows): rows deleted, added or restored",
                sum.count, state.ksum.count
            )));
        }
        Ok(changes)
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
        self.pending.borrow_mut().clear();
        let tx = self.conn.transaction().map_err(err)?;
        let mut st = State {
            commits: current(&tx, self.key.as_ref(), &path)?.commits + 1,
            ..State::default()
        };
        tx.execute(
            "DELETE FROM meta WHERE key IN ('scope', 'values', 'data', 'keys')",
            [],
        )
        .map_err(err)?;
        tx.execute("DELETE FROM keyvals", []).map_err(err)?;
        tx.execute("DELETE FROM key", []).map_err(err)?;
        let mut count = 0;
        {
            let mut rows = Rows::new(&tx, self.key.as_ref(), &path, &mut st, true).map_err(err)?;
            let mut group = Grouper::default();
            // Values that came before the one before (not expected from a
            // scan, but a rebuild takes any order): added to their rows last.
            let mut late: Vec<Entry> = Vec::new();
            for item in items {
                match item {
                    Item::Key(k) => group.item = Some((k.id, k.stats)),
                    Item::Entry(e) => {
                        let added = group
                            .add(
                                &mut rows,
                                &e.id,
                                e.value_type,
                                e.size,
                                &e.digest,
                                e.data.as_deref(),
                            )
                            .map_err(err)?;
                        match added {
                            Added::Stored => count += 1,
                            Added::Duplicate => {}
                            Added::Late => late.push(e),
                        }
                    }
                    Item::Unreadable(_) => {}
                }
            }
            group.flush(&mut rows).map_err(err)?;
            rows.fresh = false;
            late.sort_by(|a, b| a.id.cmp(&b.id));
            let mut at = 0;
            while at < late.len() {
                let k = key_of(&late[at].id);
                let n = late[at..].iter().take_while(|e| key_of(&e.id) == k).count();
                let mut edit = Edit {
                    puts: late[at..at + n].iter().collect(),
                    ..Edit::default()
                };
                count = (count as i64 + rows.apply(k, &mut edit)?) as usize;
                at += n;
            }
        }
        reseal(&tx, self.key.as_ref(), &file_name(&path), &st).map_err(err)?;
        tx.commit().map_err(err)?;
        self.committed(st);
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
        let mut st = current(&tx, self.key.as_ref(), &path)?;
        st.commits += 1;
        {
            let mut rows = Rows::new(&tx, self.key.as_ref(), &path, &mut st, false).map_err(err)?;
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
        reseal(&tx, self.key.as_ref(), &file_name(&path), &st).map_err(err)?;
        tx.commit().map_err(err)?;
        self.committed(st);
        Ok(())
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
    /// rendered events, atomically. Only the rows of keys with a changed
    /// value or changed stats (see [`Baseline::compare_values`]) are written.
    pub fn commit(
        &mut self,
        changes: &[Change],
        refreshed: &[Entry],
        render: &mut dyn FnMut(&[Change]) -> Vec<crate::baseline::outbox::Queued>,
    ) -> Result<usize, BaselineError> {
        let path = self.path.clone();
        let err = BaselineError::sqlite(&path);
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        let tx = self.conn.transaction().map_err(err)?;
        let mut st = current(&tx, self.key.as_ref(), &path)?;
        st.commits += 1;
        let dropped;
        {
            let mut edits: BTreeMap<&[u8], Edit<'_>> = BTreeMap::new();
            let mut keys: Vec<&KeyEntry> = Vec::new();
            let mut gone: Vec<&[u8]> = Vec::new();
            for c in changes {
                match c {
                    Change::New(e) | Change::Changed { new: e, .. } => {
                        edits.entry(key_of(&e.id)).or_default().puts.push(e)
                    }
                    Change::Delete(e) => edits.entry(key_of(&e.id)).or_default().dels.push(&e.id),
                    Change::NewKey(k) => keys.push(k),
                    Change::DeleteKey(k) => gone.push(&k.id),
                }
            }
            for e in refreshed {
                edits.entry(key_of(&e.id)).or_default().puts.push(e);
            }
            for (k, s) in &pending {
                edits.entry(k.as_slice()).or_default().stats = Some(*s);
            }
            let mut rows = Rows::new(&tx, self.key.as_ref(), &path, &mut st, false).map_err(err)?;
            let mut delta = 0i64;
            for (k, mut edit) in edits {
                delta += rows.apply(k, &mut edit)?;
            }
            for k in keys {
                rows.put_key(k).map_err(err)?;
            }
            for k in gone {
                rows.del_key(k).map_err(err)?;
            }
            tx.execute(
                "UPDATE meta SET value = CAST(MAX(0, CAST(value AS INTEGER) + ?1) AS TEXT) WHERE key = 'values'",
                params![delta],
            )
            .map_err(err)?;
            // Rendered a slice at a time: a burst of changes never has all
            // its events in memory at once.
            let mut n = 0;
            for slice in changes.chunks(RENDER_CHUNK) {
                let events = render(slice);
                n +=
                    crate::baseline::outbox::queue(&tx, &events, self.outbox_limit).map_err(err)?;
            }
            dropped = n;
        }
        reseal(&tx, self.key.as_ref(), &file_name(&path), &st).map_err(err)?;
        tx.commit().map_err(err)?;
        self.committed(st);
        Ok(dropped)
    }

    /// Queues events alone (a notice), not a sealed commit. Returns how
    /// many did not fit in the outbox.
    pub fn queue(
        &mut self,
        events: &[crate::baseline::outbox::Queued],
    ) -> Result<usize, BaselineError> {
        let path = self.path.clone();
        let err = BaselineError::sqlite(&path);
        let tx = self.conn.transaction().map_err(err)?;
        let dropped =
            crate::baseline::outbox::queue(&tx, events, self.outbox_limit).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(dropped)
    }

    /// Sets the outbox's bound in bytes.
    pub fn set_outbox_limit(&mut self, bytes: u64) {
        self.outbox_limit = bytes;
    }

    /// The outbox's bound in bytes.
    pub fn outbox_limit(&self) -> u64 {
        self.outbox_limit
    }
}

/// Passes a scan's items on to the merge, noting the stats of each key that
/// has values in the scan (a key item is followed by its values), for the
/// comparison with the stored rows. Keys without values need no row;
/// carried keys keep theirs as it is.
struct Watch<'a> {
    items: &'a mut dyn Iterator<Item = Item>,
    /// The last key item's identity and stats, until its first value.
    current: Vec<u8>,
    stats: Option<KeyStats>,
    open: bool,
    seen: &'a RefCell<VecDeque<(Vec<u8>, Option<KeyStats>)>>,
}

impl Iterator for Watch<'_> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        let it = self.items.next()?;
        match &it {
            Item::Key(k) => {
                self.open = !k.carried;
                if self.open {
                    self.current.clear();
                    self.current.extend_from_slice(&k.id);
                    self.stats = k.stats;
                }
            }
            Item::Entry(e) if self.open && key_of(&e.id) == self.current.as_slice() => {
                self.open = false;
                self.seen
                    .borrow_mut()
                    .push_back((self.current.clone(), self.stats));
            }
            _ => {}
        }
        Some(it)
    }
}

fn tampered_at(path: &Path, why: String) -> BaselineError {
    BaselineError::Damaged {
        file: path.to_path_buf(),
        fault: Fault::Tampered(why),
    }
}

/// Every value stored in the baseline file `path`, in identity order, read
/// without any check (for tests and inspection).
pub fn stored_values(path: &Path) -> Result<Vec<Entry>, BaselineError> {
    let err = BaselineError::sqlite(path);
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(err)?;
    let mut q = conn
        .prepare("SELECT id, vals FROM keyvals ORDER BY id")
        .map_err(err)?;
    let mut rows = q.query([]).map_err(err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(err)? {
        let id: Vec<u8> = r.get(0).map_err(err)?;
        let blob = r.get_ref(1).and_then(|v| Ok(v.as_blob()?)).map_err(err)?;
        let values = rows::decode(blob).map_err(|m| malformed_row(path, &id, &m))?;
        out.extend(values.iter().map(|v| v.entry(&id)));
    }
    Ok(out)
}

/// A row's identity as a path, for messages.
fn row_name(id: &[u8]) -> String {
    match crate::path::ident::parse(id) {
        Some(p) => {
            let mut s = crate::path::ident::display_key(&p.keys);
            if let Some(n) = p.value {
                s.push('\\');
                s.push_str(&crate::path::ident::display_value_name(&n));
            }
            s
        }
        None => seal::hex(id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::digest::Digest;
    use crate::model::KeyItem;
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
    fn child_keys_lists_each_key_below_a_parent_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Baseline::open(&dir.path().join("b.sqlite"), &Guard::none()).unwrap();
        let rows = vec![
            e("HKLM\\X\\a", 1),
            e("HKU\\own", 1),
            e("HKU\\S-1\\Software\\a", 1),
            e("HKU\\S-1\\Software\\Sub\\b", 1),
            e("HKU\\S-1\\z", 1),
            e("HKU\\S-1_Classes\\c", 1),
            e("HKU\\S-12\\d", 1),
            // A name with an escaped byte (0x01) sorts after its prefix.
            e("HKU\\S-1\u{1}x\\e", 1),
            e("HKUX\\f", 1),
        ];
        let mut rows = rows;
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        let n = b.rebuild_values(&mut items(rows)).unwrap();
        let snap = Snapshot {
            keys: vec![KeyEntry {
                id: k("HKU\\OnlyKey"),
                last_written: None,
            }],
            ..Snapshot::default()
        };
        b.finish_rebuild("s", "", &snap, true, n).unwrap();
        let got = b.child_keys(&k("HKU")).unwrap();
        let mut want = vec![
            k("HKU\\S-1"),
            k("HKU\\S-1_Classes"),
            k("HKU\\S-12"),
            k("HKU\\S-1\u{1}x"),
            k("HKU\\OnlyKey"),
        ];
        want.sort();
        assert_eq!(got, want);
        assert!(b.child_keys(&k("HKCU")).unwrap().is_empty());
    }

    #[test]
    fn merge_finds_every_kind_of_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Baseline::open(&dir.path().join("b.sqlite"), &Guard::none()).unwrap();
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
        b.commit(&ch, &[], &mut |_| vec![q.clone()]).unwrap();
        assert_eq!(b.outbox().count().unwrap(), 1);
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
        let mut b = Baseline::open(&dir.path().join("b.sqlite"), &Guard::none()).unwrap();
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
        let b = Baseline::open(&dir.path().join("b.sqlite"), &Guard::none()).unwrap();
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

    /// A baseline of layout 3 (one row per value, sealed) as the previous
    /// release wrote it.
    fn write_v3(path: &Path, key: &Key, values: &[Entry]) {
        let c = Connection::open(path).unwrap();
        c.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE value (id BLOB PRIMARY KEY, type INTEGER NOT NULL, size INTEGER NOT NULL,
                 digest BLOB NOT NULL, data BLOB, mac BLOB) WITHOUT ROWID;
             CREATE TABLE key (id BLOB PRIMARY KEY, last_written INTEGER, mac BLOB) WITHOUT ROWID;",
        )
        .unwrap();
        let mut vsum = Sum::default();
        for e in values {
            let mac = key.value_mac(
                &e.id,
                e.value_type as i64,
                e.size as i64,
                &e.digest,
                e.data.as_deref(),
            );
            vsum.add(&mac);
            c.execute(
                "INSERT INTO value VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    e.id,
                    e.value_type as i64,
                    e.size as i64,
                    &e.digest[..],
                    e.data,
                    &mac[..]
                ],
            )
            .unwrap();
        }
        c.execute(
            "INSERT INTO meta VALUES ('schema', '3'), ('commits', '7'), ('vsum', ?1), \
             ('ksum', ?2), ('host', 'test'), ('scope', 's'), ('values', ?3), ('data', '')",
            params![
                vsum.to_text(),
                Sum::default().to_text(),
                values.len().to_string()
            ],
        )
        .unwrap();
        let meta = sealed_meta(&c).unwrap();
        let seal = key.seal(&file_name(path), &meta);
        c.execute("INSERT INTO meta VALUES ('seal', ?1)", [seal])
            .unwrap();
    }

    #[test]
    fn a_baseline_of_one_row_per_value_is_regrouped_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.sqlite");
        let key = Key::from_bytes([9; 32]);
        let mut old = vec![e("A\\a", 1), e("A\\b", 2), e("A\\S\\c", 3), e("B\\d", 4)];
        old[1].data = Some(vec![2, 0]);
        old.sort_by(|a, b| a.id.cmp(&b.id));
        write_v3(&path, &key, &old);
        let guard = Guard {
            key: Some(key.clone()),
            host: "test".into(),
            ledger_dir: None,
        };
        let mut b = Baseline::open(&path, &guard).unwrap();
        assert_eq!(b.meta("schema").unwrap().as_deref(), Some("4"));
        assert_eq!(b.state.commits, 8);
        assert_eq!(b.rebuild_reason("s").unwrap(), None);
        assert_eq!(stored_values(&path).unwrap(), old);
        // One row per key, no stats yet: no hints.
        let n: i64 = b
            .conn
            .query_row("SELECT COUNT(*) FROM keyvals", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
        assert!(b.key_hints().unwrap().is_none());
        // The next scan reports only what changed.
        let mut now = old.clone();
        now[1] = e("A\\b", 9);
        now[1].data = Some(vec![2, 0]);
        let stats = KeyStats {
            last_written: 5,
            values: 2,
            subkeys: 1,
        };
        let mut scan = vec![Item::Key(KeyItem {
            id: k("A"),
            stats: Some(stats),
            carried: false,
        })];
        scan.extend(now.iter().cloned().map(Item::Entry));
        let c = b
            .compare_values(Vec::new(), &mut scan.into_iter(), None, false)
            .unwrap();
        assert_eq!(
            c.changes,
            vec![Change::Changed {
                old: old[1].clone(),
                new: now[1].clone()
            }]
        );
        b.commit(&c.changes, &[], &mut |_| Vec::new()).unwrap();
        drop(b);
        let b = Baseline::open(&path, &guard).unwrap();
        assert_eq!(stored_values(&path).unwrap(), now);
        let hints = b.key_hints().unwrap().unwrap();
        assert_eq!((hints.len(), hints.get(&k("A"))), (1, Some(&stats)));
        let c = b
            .compare_values(Vec::new(), &mut items(now.clone()), None, false)
            .unwrap();
        assert!(c.changes.is_empty(), "{:?}", c.changes);
    }

    #[test]
    fn a_tampered_baseline_of_one_row_per_value_is_refused_not_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.sqlite");
        let key = Key::from_bytes([9; 32]);
        write_v3(&path, &key, &[e("A\\a", 1), e("B\\b", 2)]);
        let c = Connection::open(&path).unwrap();
        c.execute(
            "UPDATE value SET digest = x'07' WHERE id = ?1",
            [e("A\\a", 1).id],
        )
        .unwrap();
        drop(c);
        let guard = Guard {
            key: Some(key),
            host: "test".into(),
            ledger_dir: None,
        };
        match Baseline::open(&path, &guard) {
            Err(BaselineError::Damaged {
                fault: Fault::Tampered(why),
                ..
            }) => assert!(why.contains("does not match its MAC"), "{why}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a tampered baseline was migrated"),
        }
        // Left as it was (the transaction rolled back).
        let c = Connection::open(&path).unwrap();
        let schema: String = c
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(schema, "3");
    }

    #[test]
    fn only_the_rows_of_changed_keys_are_written_and_stats_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Baseline::open(&dir.path().join("b.sqlite"), &Guard::none()).unwrap();
        let st = |t| KeyStats {
            last_written: t,
            values: 1,
            subkeys: 0,
        };
        let key_item = |p: &str, t| {
            Item::Key(KeyItem {
                id: k(p),
                stats: Some(st(t)),
                carried: false,
            })
        };
        let first = vec![
            key_item("A", 1),
            Item::Entry(e("A\\a", 1)),
            key_item("B", 1),
            Item::Entry(e("B\\b", 2)),
            key_item("C", 1),
            Item::Entry(e("C\\c", 3)),
        ];
        let n = b.rebuild_values(&mut first.into_iter()).unwrap();
        b.finish_rebuild("s", "", &Snapshot::default(), false, n)
            .unwrap();
        assert_eq!(n, 3);
        let hints = b.key_hints().unwrap().unwrap();
        assert_eq!(hints.get(&k("B")), Some(&st(1)));
        let mac_of = |b: &Baseline, p: &str| -> Vec<u8> {
            b.conn
                .query_row("SELECT vals FROM keyvals WHERE id = ?1", [k(p)], |r| {
                    r.get(0)
                })
                .unwrap()
        };
        let c_before = mac_of(&b, "C");
        // B's stats change (not its values), C is carried, A's value changes,
        // D is new.
        let second = vec![
            key_item("A", 2),
            Item::Entry(e("A\\a", 5)),
            key_item("B", 3),
            Item::Entry(e("B\\b", 2)),
            Item::Key(KeyItem {
                id: k("C"),
                stats: Some(st(1)),
                carried: true,
            }),
            key_item("D", 4),
            Item::Entry(e("D\\d", 6)),
        ];
        let c = b
            .compare_values(Vec::new(), &mut second.into_iter(), None, false)
            .unwrap();
        // (C's value is reported deleted until the Merger keeps carried
        // keys: that rule is not the store's.)
        let changes: Vec<Change> = c
            .changes
            .into_iter()
            .filter(|c| !matches!(c, Change::Delete(d) if d.id == e("C\\c", 3).id))
            .collect();
        assert_eq!(changes.len(), 2, "{changes:?}");
        b.commit(&changes, &[], &mut |_| Vec::new()).unwrap();
        let hints = b.key_hints().unwrap().unwrap();
        assert_eq!(hints.get(&k("A")), Some(&st(2)));
        assert_eq!(hints.get(&k("B")), Some(&st(3)));
        assert_eq!(hints.get(&k("C")), Some(&st(1)));
        assert_eq!(hints.get(&k("D")), Some(&st(4)));
        assert_eq!(mac_of(&b, "C"), c_before);
        assert_eq!(b.value_count(), 4);
        assert_eq!(
            stored_values(b.file()).unwrap(),
            vec![e("A\\a", 5), e("B\\b", 2), e("C\\c", 3), e("D\\d", 6)]
        );
    }

    #[test]
    fn an_unchanged_file_skips_the_structural_check_a_changed_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache").join("b.sqlite");
        let guard = Guard {
            key: Some(Key::from_bytes([7; 32])),
            host: "test".into(),
            ledger_dir: Some(dir.path().join("ledger")),
        };
        let mut b = Baseline::open(&path, &guard).unwrap();
        b.set_meta("scope", Some("s")).unwrap();
        let ledger = b.ledger().unwrap().clone();
        b.settle();
        drop(b);
        // Settled, closed: recorded with the file's stamp.
        let settled = ledger.read().unwrap().settled.unwrap();
        assert_eq!(Some(settled.stamp), hive::file::FileStamp::of_path(&path));
        assert!(no_pending_log(&path));
        // Checked an hour ago, unchanged since: not checked again.
        let hour_ago = chrono::Utc::now().timestamp() - 3600;
        ledger.settle(settled.stamp, hour_ago);
        let b = Baseline::open(&path, &guard).unwrap();
        assert_eq!(b.checked, hour_ago);
        drop(b);
        // Checked two days ago: checked now.
        let stamp = ledger.read().unwrap().settled.unwrap().stamp;
        ledger.settle(stamp, hour_ago - 2 * RECHECK_SECS);
        let mut b = Baseline::open(&path, &guard).unwrap();
        assert!(b.checked > hour_ago);
        // A commit forgets the record: a crash before the close leaves none.
        b.set_meta("scope", Some("t")).unwrap();
        assert_eq!(ledger.read().unwrap().settled, None);
        // A file closed without settling has no record either.
        drop(b);
        assert_eq!(ledger.read().unwrap().settled, None);
        let b = Baseline::open(&path, &guard).unwrap();
        b.settle();
        drop(b);
        // Written by someone else after the close (same length, one byte
        // of the last page): another stamp, so checked, and the damage found.
        let stamp = ledger.read().unwrap().settled.unwrap().stamp;
        ledger.settle(stamp, hour_ago);
        let mut bytes = std::fs::read(&path).unwrap();
        let page = 4096.min(bytes.len());
        let at = bytes.len() - page;
        for x in &mut bytes[at..at + 100.min(page)] {
            *x ^= 0xff;
        }
        std::fs::write(&path, &bytes).unwrap();
        assert_ne!(hive::file::FileStamp::of_path(&path), Some(stamp));
        match Baseline::open(&path, &guard) {
            Err(BaselineError::Damaged { .. }) => {}
            Err(e) => panic!("not a damaged-baseline error: {e}"),
            Ok(b) => assert!(b.checked > hour_ago, "the check was skipped"),
        }
    }
}
