//! The outbox: events a scan committed (in the same transaction as its
//! baseline changes) and that their output has not confirmed yet. It lives
//! in the input's baseline database, table `outbox`.
//!
//! A row holds the line as the output will write it and, when the output's
//! `File` is an expression over event fields, the event record after the
//! output's Exec (`record`, a lossless encoding). The destination file is
//! worked out at delivery from the *current* configuration: a constant
//! `File` is simply evaluated again, a field expression is evaluated over the
//! stored record. So correcting a wrong `File` delivers what was queued for
//! it. `target` (the file as evaluated when the event was queued) is kept
//! for rows written before `record` existed, whose records are unknown.

use nxconf::{Record, Value};
use rusqlite::{params, Connection, Transaction};
use std::path::Path;

/// An event to queue: (output, target at render time, line, record).
#[derive(Clone, Debug, PartialEq)]
pub struct Queued {
    pub output: String,
    pub target: String,
    pub line: Vec<u8>,
    /// The encoded record, when the output's File reads event fields.
    pub record: Option<Vec<u8>>,
}

/// An event rendered for one output, kept until that output has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub id: i64,
    pub output: String,
    /// The destination file as evaluated when the event was queued.
    pub target: String,
    /// The line as the output will write it.
    pub line: Vec<u8>,
    /// The encoded record (see [`encode`]), if it was stored.
    pub record: Option<Vec<u8>>,
    /// The resume token of the batch holding this line, once a delivery of
    /// it began: defined by its output (om_file: the file offset where the
    /// batch starts; see the outputs' `prepare`). Stored in the
    /// column `start`, the name earlier releases gave it.
    pub resume: Option<u64>,
}

/// Adds the `record` column to an outbox made by an earlier release (whose
/// rows are then delivered to their stored target when File reads fields).
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has = conn
        .prepare("SELECT 1 FROM pragma_table_info('outbox') WHERE name = 'record'")?
        .exists([])?;
    if !has {
        conn.execute_batch("ALTER TABLE outbox ADD COLUMN record BLOB")?;
    }
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS outbox_overflow (
            output TEXT PRIMARY KEY,
            dropped INTEGER NOT NULL,
            first INTEGER NOT NULL,
            last INTEGER NOT NULL
        )",
    )?;
    Ok(())
}

/// What an outbox holds, in bytes: each queued event's line and record.
/// (The bound counts these; SQLite's own overhead comes on top.)
fn bytes(tx: &Connection) -> rusqlite::Result<u64> {
    tx.query_row(
        "SELECT COALESCE(SUM(length(line) + COALESCE(length(record), 0)), 0) FROM outbox",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n.max(0) as u64)
}

fn size_of(e: &Queued) -> u64 {
    (e.line.len() + e.record.as_ref().map_or(0, Vec::len)) as u64
}

/// Queues events inside the caller's transaction (the scan's commit),
/// while the outbox holds less than `limit` bytes: the events already
/// queued are kept, and those that do not fit are dropped and counted per
/// output in `outbox_overflow` (an `OUTBOX_OVERFLOW` event reports them
/// when there is room again; see [`Outbox::overflow`]). Returns how many
/// were dropped.
pub fn queue(tx: &Transaction<'_>, events: &[Queued], limit: u64) -> rusqlite::Result<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    let mut used = bytes(tx)?;
    let mut q = tx.prepare_cached(
        "INSERT INTO outbox (output, target, line, record) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut dropped: Vec<(&str, i64)> = Vec::new();
    for e in events {
        let size = size_of(e);
        if used.saturating_add(size) > limit {
            match dropped.iter_mut().find(|(o, _)| *o == e.output) {
                Some((_, n)) => *n += 1,
                None => dropped.push((&e.output, 1)),
            }
            continue;
        }
        used += size;
        q.execute(params![e.output, e.target, e.line, e.record])?;
    }
    let now = chrono::Utc::now().timestamp();
    let mut up = tx.prepare_cached(
        "INSERT INTO outbox_overflow (output, dropped, first, last) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT(output) DO UPDATE SET dropped = dropped + ?2, last = ?3",
    )?;
    for (o, n) in &dropped {
        up.execute(params![o, n, now])?;
    }
    Ok(dropped.iter().map(|(_, n)| *n as usize).sum())
}

/// Events dropped for one output because the outbox was full.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overflow {
    pub output: String,
    pub dropped: u64,
    /// When the first and the last of them were dropped (Unix seconds).
    pub first: i64,
    pub last: i64,
}

/// The events a moved-aside (damaged) baseline still held, as far as they
/// can be read: the rows before the first that cannot.
pub fn salvage(file: &Path) -> Vec<Queued> {
    let mut out = Vec::new();
    let Ok(conn) = Connection::open(file) else {
        return out;
    };
    let Ok(mut q) = conn.prepare("SELECT output, target, line, record FROM outbox ORDER BY id")
    else {
        return out;
    };
    let Ok(mut rows) = q.query([]) else {
        return out;
    };
    while let Ok(Some(r)) = rows.next() {
        let row = (|| -> rusqlite::Result<Queued> {
            Ok(Queued {
                output: r.get(0)?,
                target: r.get(1)?,
                line: r.get(2)?,
                record: r.get(3)?,
            })
        })();
        match row {
            Ok(q) => out.push(q),
            Err(_) => break,
        }
    }
    out
}

/// How many events a moved-aside baseline held, if that can be read.
pub fn count(file: &Path) -> Option<usize> {
    let conn = Connection::open(file).ok()?;
    conn.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))
        .ok()
        .map(|n| n.max(0) as usize)
}

/// The outbox of one baseline database.
pub struct Outbox<'a> {
    pub(crate) conn: &'a mut Connection,
    pub(crate) path: &'a Path,
}

impl Outbox<'_> {
    fn err(&self, e: rusqlite::Error) -> super::BaselineError {
        super::BaselineError::sqlite(self.path)(e)
    }

    /// How many events are committed but not yet confirmed delivered.
    pub fn count(&self) -> Result<usize, super::BaselineError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as usize)
            .map_err(|e| self.err(e))
    }

    /// The bytes the outbox holds (what its bound counts).
    pub fn bytes(&self) -> Result<u64, super::BaselineError> {
        bytes(self.conn).map_err(|e| self.err(e))
    }

    /// Up to `limit` events committed but not yet confirmed delivered,
    /// oldest first, after the one numbered `after` (0: from the first).
    pub fn page(&self, after: i64, limit: usize) -> Result<Vec<Pending>, super::BaselineError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, output, target, line, record, start FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![after, limit as i64], |r| {
                Ok(Pending {
                    id: r.get(0)?,
                    output: r.get(1)?,
                    target: r.get(2)?,
                    line: r.get(3)?,
                    record: r.get(4)?,
                    resume: r.get::<_, Option<i64>>(5)?.map(|v| v as u64),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Records each batch's resume token, before any is written (one
    /// transaction for many batches: one sync, not one per target).
    pub fn mark_resume(&mut self, batches: &[(&[i64], u64)]) -> Result<(), super::BaselineError> {
        if batches.is_empty() {
            return Ok(());
        }
        let path = self.path;
        let err = super::BaselineError::sqlite(path);
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut up = tx
                .prepare("UPDATE outbox SET start = ?2 WHERE id = ?1")
                .map_err(err)?;
            for (ids, start) in batches {
                for id in *ids {
                    up.execute(params![id, *start as i64]).map_err(err)?;
                }
            }
        }
        tx.commit().map_err(err)
    }

    /// Drops not yet reported, when the outbox has room again (holds less
    /// than `limit` bytes); empty otherwise.
    pub fn overflow(&self, limit: u64) -> Result<Vec<Overflow>, super::BaselineError> {
        let err = |e| self.err(e);
        if bytes(self.conn).map_err(err)? >= limit {
            return Ok(Vec::new());
        }
        let mut q = self
            .conn
            .prepare("SELECT output, dropped, first, last FROM outbox_overflow ORDER BY first")
            .map_err(err)?;
        let rows = q
            .query_map([], |r| {
                Ok(Overflow {
                    output: r.get(0)?,
                    dropped: r.get::<_, i64>(1)?.max(0) as u64,
                    first: r.get(2)?,
                    last: r.get(3)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err)
    }

    /// Queues the events that report `reported` drops and forgets those
    /// drops, in one transaction (the notices may exceed the bound: they
    /// are what says it was reached).
    pub fn report_overflow(
        &mut self,
        reported: &[Overflow],
        notices: &[Queued],
    ) -> Result<(), super::BaselineError> {
        let path = self.path;
        let err = super::BaselineError::sqlite(path);
        let tx = self.conn.transaction().map_err(err)?;
        queue(&tx, notices, u64::MAX).map_err(err)?;
        for o in reported {
            // Drops counted since they were read are kept for the next report.
            tx.execute(
                "UPDATE outbox_overflow SET dropped = dropped - ?2 WHERE output = ?1",
                params![o.output, o.dropped as i64],
            )
            .map_err(err)?;
        }
        tx.execute("DELETE FROM outbox_overflow WHERE dropped <= 0", [])
            .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Forgets delivered events.
    pub fn delivered(&mut self, ids: &[i64]) -> Result<(), super::BaselineError> {
        if ids.is_empty() {
            return Ok(());
        }
        let path = self.path;
        let err = super::BaselineError::sqlite(path);
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

// The record encoding: a version byte, then per field its name and a tagged
// value. Every Value variant round-trips exactly (datetimes to the
// nanosecond), which JSON would not (datetimes and binary become strings).
// `raw_event`, when a string, is left out: it is the row's line.

const VERSION: u8 = 1;

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Undef => out.push(0),
        Value::String(s) => {
            out.push(1);
            put_bytes(out, s.as_bytes());
        }
        Value::Integer(n) => {
            out.push(2);
            out.extend_from_slice(&n.to_le_bytes());
        }
        Value::Boolean(b) => out.extend_from_slice(&[3, u8::from(*b)]),
        Value::DateTime(t) => {
            out.push(4);
            out.extend_from_slice(&t.timestamp().to_le_bytes());
            out.extend_from_slice(&t.timestamp_subsec_nanos().to_le_bytes());
        }
        Value::Binary(b) => {
            out.push(5);
            put_bytes(out, b);
        }
        Value::Array(items) => {
            out.push(6);
            out.extend_from_slice(&(items.len() as u32).to_le_bytes());
            for i in items {
                put_value(out, i);
            }
        }
    }
}

/// Encodes a record for the outbox.
pub fn encode(rec: &Record) -> Vec<u8> {
    let mut out = vec![VERSION];
    for (name, v) in rec.iter() {
        if name.eq_ignore_ascii_case("raw_event") && matches!(v, Value::String(_)) {
            continue;
        }
        put_bytes(&mut out, name.as_bytes());
        put_value(&mut out, v);
    }
    out
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err("stored record is truncated".into());
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }

    fn i64(&mut self) -> Result<i64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(i64::from_le_bytes(a))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "stored record is not UTF-8".into())
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > 64 {
            return Err("stored record nests too deeply".into());
        }
        Ok(match self.take(1)?[0] {
            0 => Value::Undef,
            1 => Value::String(self.string()?),
            2 => Value::Integer(self.i64()?),
            3 => Value::Boolean(self.take(1)?[0] != 0),
            4 => {
                let secs = self.i64()?;
                let nanos = self.u32()?;
                let t = chrono::DateTime::from_timestamp(secs, nanos)
                    .ok_or("stored record has an invalid datetime")?;
                Value::DateTime(t)
            }
            5 => Value::Binary(self.bytes()?.to_vec()),
            6 => {
                let n = self.u32()? as usize;
                // Each item takes at least one byte: a bound on hostile counts.
                let mut items = Vec::with_capacity(n.min(self.b.len()));
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            t => return Err(format!("stored record has an unknown value tag {t}")),
        })
    }
}

/// Decodes a stored record; `line` restores `$raw_event`.
pub fn decode(bytes: &[u8], line: &[u8]) -> Result<Record, String> {
    let mut r = Reader { b: bytes };
    let v = r.take(1)?[0];
    if v != VERSION {
        return Err(format!("stored record has unknown version {v}"));
    }
    let mut rec = Record::new();
    let mut raw = true;
    while !r.b.is_empty() {
        let name = r.string()?;
        let value = r.value(0)?;
        raw &= !name.eq_ignore_ascii_case("raw_event");
        rec.set(&name, value);
    }
    if raw {
        rec.set("raw_event", String::from_utf8_lossy(line).into_owned());
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn records_round_trip_exactly() {
        let t = chrono::Utc
            .timestamp_opt(1_700_000_000, 123_456_789)
            .single()
            .unwrap();
        let rec = Record::new()
            .with("EventType", "NEW")
            .with("Size", Value::Integer(-42))
            .with("Flag", Value::Boolean(true))
            .with("EventTime", Value::DateTime(t))
            .with("Data", Value::Binary(vec![0, 1, 255]))
            .with(
                "List",
                Value::Array(vec![Value::String("a".into()), Value::Integer(1)]),
            )
            .with("raw_event", "the line");
        let enc = encode(&rec);
        assert!(!enc.windows(8).any(|w| w == b"the line"));
        assert_eq!(decode(&enc, b"the line").unwrap(), rec);
        // A raw_event that is not a string is stored as it is.
        let odd = Record::new().with("raw_event", Value::Integer(7));
        assert_eq!(decode(&encode(&odd), b"7").unwrap(), odd);
    }

    #[test]
    fn a_full_outbox_keeps_the_oldest_and_counts_the_dropped() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, output TEXT NOT NULL,
             target TEXT NOT NULL, line BLOB NOT NULL, start INTEGER)",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let ev = |o: &str, n: usize| Queued {
            output: o.into(),
            target: String::new(),
            line: vec![b'x'; n],
            record: Some(vec![1; 10]),
        };
        let tx = conn.transaction().unwrap();
        // 3 x 110 bytes fit in 350; the 4th and 5th do not.
        let events = [
            ev("a", 100),
            ev("a", 100),
            ev("b", 100),
            ev("a", 100),
            ev("b", 100),
        ];
        assert_eq!(queue(&tx, &events, 350).unwrap(), 2);
        // Later events do not fit either: the first three stay.
        assert_eq!(queue(&tx, &[ev("a", 30)], 350).unwrap(), 1);
        tx.commit().unwrap();
        let path = Path::new("mem");
        let mut ob = Outbox {
            conn: &mut conn,
            path,
        };
        assert_eq!(ob.count().unwrap(), 3);
        // No room: no report yet.
        assert!(ob.overflow(330).unwrap().is_empty());
        let lost = ob.overflow(1000).unwrap();
        let counts: Vec<(&str, u64)> = lost.iter().map(|o| (&o.output[..], o.dropped)).collect();
        assert_eq!(counts, [("a", 2), ("b", 1)]);
        assert!(lost.iter().all(|o| o.first <= o.last));
        // Reporting queues the notices even beyond the bound and forgets the drops.
        ob.report_overflow(&lost, &[ev("a", 500)]).unwrap();
        assert_eq!(ob.count().unwrap(), 4);
        assert!(ob.overflow(u64::MAX).unwrap().is_empty());
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let enc = encode(&Record::new().with("A", "b").with("N", Value::Integer(1)));
        for n in 0..enc.len() {
            let _ = decode(&enc[..n], b"");
        }
        assert!(decode(&[VERSION, 1, 0, 0, 0, b'A', 99], b"").is_err());
        assert!(decode(&[9], b"").is_err());
        let huge = [VERSION, 1, 0, 0, 0, b'A', 6, 255, 255, 255, 255];
        assert!(decode(&huge, b"").is_err());
    }
}
