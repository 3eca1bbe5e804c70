//! Transaction-log replay for dirty REGF hives (issue 6).
//!
//! A hive copied from a running or crashed Windows machine is usually *dirty*: its newest changes
//! live only in the transaction logs beside it (`NAME.LOG1`, `NAME.LOG2`, `NAME.LOG`). This module
//! applies those logs **in memory** to a copy of the primary file and returns the patched image;
//! it never writes to the caller's files and depends only on `std`.
//!
//! Both log formats are handled:
//!
//! * **New format** (file type 6, Windows 8.1+): `HvLE` entries protected by two Marvin32 hashes
//!   (see [`crate::marvin`] for the seed's byte order). The entries of LOG1 and LOG2 are replayed
//!   as one run in sequence order; either file may hold the earlier entries. The run starts with
//!   the log whose base-block sequence number is the lowest one not below the primary's secondary
//!   sequence number (it may be well above it: a partial reconcile leaves such logs), continues
//!   with the next log whose first entry is `last + 1`, and stops at the first gap, bad hash, bad
//!   size or truncated entry. The hive grows (or shrinks) to each entry's hive-bins size. After the
//!   run, bins whose header page came from the log and is not a valid `hbin` header are replaced
//!   by a dummy (free) bin, as Windows does. Bit 0 of the base block's flags is taken from the last
//!   entry. If the primary's base block is invalid, only the log with the latest entries is used,
//!   and its base block replaces the primary's.
//! * **Old format** (file type 1, or 2 on NT/2000; XP to 8.0): a `DIRT` bitmap with one bit per
//!   512-byte page of hive-bins data, then the dirty pages. A log applies when its last-written
//!   timestamp equals the primary's (or, if the primary's base block is invalid, the first bin's).
//!   Bins touched by the log are checked; replay stops (the failing bin and everything after it
//!   keep the primary's bytes) at the first invalid one.
//!
//! Logs that do not belong to the hive (different RmId GUID, or different embedded file name when
//! no GUID is recorded), logs with an invalid or dirty base block, and entries that are not valid
//! are skipped with a warning that names the log file and the byte offset. Nothing here panics on
//! any input, every loop is bounded by the input sizes, and the image never grows beyond
//! `min(2 GiB, primary + total log bytes)` of hive-bins data (see [`hive_bins_limit`]).
//!
//! The patched image's base block is made consistent: both sequence numbers equal the last applied
//! sequence number, the file type is 0 (primary), the hive-bins size is the last entry's, and the
//! checksum is recomputed; so [`is_dirty`] is false on the result once anything was applied.
//! A clean primary is returned as an unchanged copy with an empty report.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::marvin::{marvin32, REGF_LOG_SEED};

/// Size of a primary file's base block.
pub const BASE_BLOCK_SIZE: usize = 4096;
/// Size of the (partial) base block at the start of a transaction log.
pub const LOG_BASE_BLOCK_SIZE: usize = 512;
/// Largest hive-bins data size replay will ever produce (Windows' limit for a stable hive).
pub const MAX_HIVE_BINS_SIZE: u32 = 0x8000_0000;

const PAGE: u32 = 4096;
const SECTOR: usize = 512;
const FILE_TYPE_PRIMARY: u32 = 0;
const FILE_TYPE_LOG_OLD: u32 = 1;
const FILE_TYPE_LOG_VERY_OLD: u32 = 2;
const FILE_TYPE_LOG_NEW: u32 = 6;
const ENTRY_HEADER: usize = 40;

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/// One transaction log, already read into memory.
#[derive(Debug, Clone)]
pub struct LogFile<'a> {
    /// Path or name of the log, used in messages.
    pub name: String,
    /// Whole content of the log file.
    pub data: &'a [u8],
}

/// Which log format was replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Nothing was replayed.
    #[default]
    None,
    /// Windows 8.1+ `HvLE` entries.
    New,
    /// XP to 8.0 `DIRT` bitmap.
    Old,
}

impl LogFormat {
    /// `"none"`, `"new"` or `"old"` (for JSON output).
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::None => "none",
            LogFormat::New => "new",
            LogFormat::Old => "old",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What replay did. All fields are plain values so they map one to one onto JSON fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// The primary was dirty (checksum wrong, sequence numbers differ, or base block unreadable).
    pub dirty: bool,
    /// Format of the log data that was applied.
    pub format: LogFormat,
    /// Log entries applied (an old-format log counts as one entry).
    pub entries_applied: u32,
    /// Sequence number of the first applied entry.
    pub first_seq: Option<u32>,
    /// Sequence number of the last applied entry (now both sequence numbers of the image).
    pub last_seq: Option<u32>,
    /// Dirty pages written (new format: page references; old format: 512-byte pages).
    pub pages_applied: u64,
    /// Bytes of hive-bins data written from the logs.
    pub bytes_applied: u64,
    /// Hive-bins data size of the primary's base block (0 if it was invalid).
    pub hive_bins_size_before: u32,
    /// Hive-bins data size of the result.
    pub hive_bins_size_after: u32,
    /// The primary's base block was invalid and was replaced by a log's.
    pub base_block_recovered: bool,
    /// Bins from the log that were invalid and replaced by an empty dummy bin.
    pub dummy_bins: u32,
    /// Names of the logs whose data was applied, in the order applied.
    pub logs_used: Vec<String>,
    /// Problems: each names the log file and, where there is one, the byte offset.
    pub warnings: Vec<String>,
    /// Informational messages (logs skipped for ordinary reasons, e.g. already reconciled).
    pub notes: Vec<String>,
}

/// The patched hive image and what was done to it.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// Complete hive image (base block + hive bins), base block consistent.
    pub data: Vec<u8>,
    /// What was replayed.
    pub report: ReplayReport,
}

impl Replayed {
    /// True if the image differs from the primary (entries applied or base block rebuilt).
    pub fn changed(&self) -> bool {
        self.report.entries_applied > 0 || self.report.base_block_recovered
    }
}

/// Replay cannot produce an image at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayError {
    /// The primary is shorter than a base block (4096 bytes).
    PrimaryTooShort { len: usize },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::PrimaryTooShort { len } => write!(
                f,
                "primary file is {len} bytes, shorter than a {BASE_BLOCK_SIZE}-byte base block"
            ),
        }
    }
}

impl std::error::Error for ReplayError {}

// ---------------------------------------------------------------------------------------------
// Public functions
// ---------------------------------------------------------------------------------------------

/// Transaction logs beside `hive_path`: files in the same directory named `NAME.LOG1`,
/// `NAME.LOG2` or `NAME.LOG` where `NAME` is the hive's file name, compared ignoring ASCII case.
/// Returned in that order (LOG1, LOG2, LOG; ties by name). Unreadable directories give an empty
/// list.
pub fn find_logs(hive_path: &Path) -> Vec<PathBuf> {
    let Some(file_name) = hive_path.file_name() else {
        return Vec::new();
    };
    let dir = match hive_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = file_name.as_encoded_bytes();
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found: Vec<(usize, Vec<u8>, PathBuf)> = Vec::new();
    for ent in rd.flatten() {
        let name = ent.file_name();
        let n = name.as_encoded_bytes();
        if n.len() <= base.len() || !n[..base.len()].eq_ignore_ascii_case(base) {
            continue;
        }
        let rank = match &n[base.len()..] {
            s if s.eq_ignore_ascii_case(b".LOG1") => 0,
            s if s.eq_ignore_ascii_case(b".LOG2") => 1,
            s if s.eq_ignore_ascii_case(b".LOG") => 2,
            _ => continue,
        };
        let path = dir.join(&name);
        if path.is_file() {
            found.push((rank, n.to_vec(), path));
        }
    }
    found.sort();
    found.into_iter().map(|(_, _, p)| p).collect()
}

/// True if the primary needs recovery: base block unreadable (shorter than 512 bytes or no
/// `regf` signature), checksum wrong, or primary sequence number ≠ secondary sequence number.
pub fn is_dirty(primary: &[u8]) -> bool {
    match BaseInfo::parse(primary) {
        None => true,
        Some(b) => !b.valid() || b.seq1 != b.seq2,
    }
}

/// XOR-32 checksum of the first 508 bytes of a base block (0 → 1, 0xFFFFFFFF → 0xFFFFFFFE), or
/// `None` if `block` is shorter than 512 bytes.
pub fn base_block_checksum(block: &[u8]) -> Option<u32> {
    let b = block.get(..508)?;
    let x = b.chunks_exact(4).fold(0u32, |acc, c| {
        acc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]])
    });
    Some(match x {
        0 => 1,
        0xFFFF_FFFF => 0xFFFF_FFFE,
        v => v,
    })
}

/// Upper bound on the hive-bins size replay accepts for these inputs:
/// `min(MAX_HIVE_BINS_SIZE, primary + all logs, rounded up to 4096)`. Real growth during replay is
/// always below it, because every page added to the hive must be carried by a log.
pub fn hive_bins_limit(primary_len: usize, logs: &[LogFile<'_>]) -> u32 {
    let total = logs
        .iter()
        .fold(primary_len as u64, |acc, l| acc.saturating_add(l.data.len() as u64));
    let rounded = total.saturating_add(u64::from(PAGE) - 1) / u64::from(PAGE) * u64::from(PAGE);
    rounded.min(u64::from(MAX_HIVE_BINS_SIZE)) as u32
}

/// Apply the transaction logs to a dirty primary, in memory.
///
/// Returns the patched image and a report. A clean primary is returned unchanged (a copy) with
/// `report.dirty == false` and nothing applied; logs are then not even parsed. A dirty primary for
/// which nothing could be applied is also returned unchanged, with a warning. The only error is a
/// primary too short to hold a base block.
pub fn replay(primary: &[u8], logs: &[LogFile<'_>]) -> Result<Replayed, ReplayError> {
    if primary.len() < BASE_BLOCK_SIZE {
        return Err(ReplayError::PrimaryTooShort { len: primary.len() });
    }
    let mut report = ReplayReport::default();
    let pbase = BaseInfo::parse(primary);
    let pvalid = pbase.as_ref().is_some_and(BaseInfo::valid);
    if let Some(b) = pbase.as_ref().filter(|b| b.valid()) {
        report.hive_bins_size_before = b.hbins;
        report.hive_bins_size_after = b.hbins;
    }
    if !is_dirty(primary) {
        return Ok(Replayed {
            data: primary.to_vec(),
            report,
        });
    }
    report.dirty = true;
    if logs.is_empty() {
        report.warnings.push(dirty_message(pbase.as_ref(), "no transaction log was found"));
        return Ok(Replayed {
            data: primary.to_vec(),
            report,
        });
    }

    let limit = hive_bins_limit(primary.len(), logs);
    let mut ctx = Ctx {
        primary,
        pbase: pbase.filter(|b| b.valid()),
        limit,
        report,
    };

    // Classify the logs.
    let mut new_logs = Vec::new();
    let mut old_logs = Vec::new();
    for (i, log) in logs.iter().enumerate() {
        match ctx.classify(log) {
            Some(Kind::New(b)) => new_logs.push((i, b)),
            Some(Kind::Old(b)) => old_logs.push((i, b)),
            None => {}
        }
    }

    let mut image = Image::new(primary);
    let mut done = false;
    if !new_logs.is_empty() {
        done = ctx.replay_new(&mut image, logs, &new_logs);
    }
    if !done && !old_logs.is_empty() {
        done = ctx.replay_old(&mut image, logs, &old_logs);
    }
    if !done && !pvalid {
        // Nothing to apply, but a log can still give the base block back (Windows does this).
        let best = new_logs
            .iter()
            .chain(old_logs.iter())
            .copied()
            .reduce(|a, b| if seq_before(a.1.seq1, b.1.seq1) { b } else { a });
        if let Some((i, b)) = best {
            image.restore_base_block(logs[i].data);
            let hbins = b.hbins.min(limit);
            if hbins % PAGE == 0 && hbins > 0 {
                image.ensure_hbins(hbins);
                image.hbins = hbins;
            }
            image.finish(b.seq1, None);
            ctx.report.base_block_recovered = true;
            ctx.report.hive_bins_size_after = image.hbins;
            ctx.report.logs_used.push(logs[i].name.clone());
            ctx.report.warnings.push(format!(
                "{}: primary base block is invalid; rebuilt it from this log's base block \
                 (no log entries could be applied)",
                logs[i].name
            ));
            done = true;
        }
    }
    if !done {
        let msg = dirty_message(ctx.pbase.as_ref(), "no log data could be applied");
        ctx.report.warnings.push(msg);
        return Ok(Replayed {
            data: primary.to_vec(),
            report: ctx.report,
        });
    }
    Ok(Replayed {
        data: image.data,
        report: ctx.report,
    })
}

// ---------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------

fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    let b = d.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_at(d: &[u8], off: usize) -> Option<u64> {
    let b = d.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

fn put_u32(d: &mut [u8], off: usize, v: u32) {
    if let Some(b) = d.get_mut(off..off + 4) {
        b.copy_from_slice(&v.to_le_bytes());
    }
}

/// `a` comes before `b` in wrapping 32-bit sequence order.
fn seq_before(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) > 0
}

fn dirty_message(b: Option<&BaseInfo>, what: &str) -> String {
    match b {
        Some(b) => format!(
            "hive is dirty (sequence numbers {}/{}) but {what}; its data may be stale",
            b.seq1, b.seq2
        ),
        None => format!("hive is dirty (base block invalid) but {what}; its data may be stale"),
    }
}

/// The fields of a base block that replay needs (the first 512 bytes are enough).
#[derive(Debug, Clone, Copy)]
struct BaseInfo {
    signature_ok: bool,
    checksum_ok: bool,
    seq1: u32,
    seq2: u32,
    timestamp: u64,
    file_type: u32,
    hbins: u32,
    flags: u32,
}

impl BaseInfo {
    fn parse(d: &[u8]) -> Option<BaseInfo> {
        let blk = d.get(..LOG_BASE_BLOCK_SIZE)?;
        Some(BaseInfo {
            signature_ok: &blk[..4] == b"regf",
            checksum_ok: base_block_checksum(blk) == u32_at(blk, 508),
            seq1: u32_at(blk, 4)?,
            seq2: u32_at(blk, 8)?,
            timestamp: u64_at(blk, 12)?,
            file_type: u32_at(blk, 28)?,
            hbins: u32_at(blk, 40)?,
            flags: u32_at(blk, 144)?,
        })
    }

    fn valid(&self) -> bool {
        self.signature_ok && self.checksum_ok
    }
}

/// Identity of the hive a base block belongs to: `Err(reason)` if `log` is not `primary`'s.
/// With an RmId GUID ("rmtm" signature, non-zero GUID) on both sides the GUIDs must match;
/// otherwise the embedded file names (UTF-16LE, offset 48, 64 bytes) must.
fn same_hive(primary: &[u8], log: &[u8]) -> Result<(), String> {
    let (Some(p), Some(l)) = (primary.get(..LOG_BASE_BLOCK_SIZE), log.get(..LOG_BASE_BLOCK_SIZE))
    else {
        return Ok(());
    };
    let rmid = |b: &[u8]| -> Option<[u8; 16]> {
        let mut g = [0u8; 16];
        g.copy_from_slice(&b[112..128]);
        (&b[164..168] == b"rmtm" && g != [0u8; 16]).then_some(g)
    };
    if let (Some(a), Some(b)) = (rmid(p), rmid(l)) {
        if a != b {
            return Err(format!(
                "RmId {} differs from the primary's {}",
                guid(&b),
                guid(&a)
            ));
        }
        return Ok(());
    }
    if p[48..112] != l[48..112] {
        return Err(format!(
            "embedded file name {:?} differs from the primary's {:?}",
            utf16_name(&l[48..112]),
            utf16_name(&p[48..112])
        ));
    }
    Ok(())
}

fn guid(g: &[u8; 16]) -> String {
    g.iter().map(|b| format!("{b:02x}")).collect()
}

fn utf16_name(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

enum Kind {
    New(BaseInfo),
    Old(BaseInfo),
}

struct Ctx<'p> {
    primary: &'p [u8],
    /// The primary's base block, if valid.
    pbase: Option<BaseInfo>,
    limit: u32,
    report: ReplayReport,
}

/// One new-format log entry that passed validation.
struct Entry<'a> {
    flags: u32,
    seq: u32,
    hbins: u32,
    refs: &'a [u8],
    pages: &'a [u8],
}

/// Why a scan of a log's entries stopped.
enum ChainEnd {
    /// End of file, or no `HvLE` signature where the next entry would be.
    Clean,
    /// A valid-looking entry of an earlier cycle (sequence number below the expected one).
    Remnant { offset: usize, seq: u32 },
    /// A broken entry: message (already naming file and offset).
    Bad(String),
}

struct Chain<'a> {
    log: usize,
    base_seq: u32,
    entries: Vec<Entry<'a>>,
    end: ChainEnd,
    same_hive: Result<(), String>,
}

impl Chain<'_> {
    fn last_seq(&self) -> Option<u32> {
        self.entries.last().map(|e| e.seq)
    }
}

impl Ctx<'_> {
    fn classify(&mut self, log: &LogFile<'_>) -> Option<Kind> {
        let name = log.name.as_str();
        if log.data.is_empty() {
            self.report.notes.push(format!("{name}: empty, ignored"));
            return None;
        }
        let Some(b) = BaseInfo::parse(log.data) else {
            self.report.warnings.push(format!(
                "{name}: offset 0: only {} bytes, too short for a log base block; log ignored",
                log.data.len()
            ));
            return None;
        };
        if !b.signature_ok {
            self.report.warnings.push(format!(
                "{name}: offset 0: no \"regf\" signature; log ignored"
            ));
            return None;
        }
        if !b.checksum_ok {
            self.report.warnings.push(format!(
                "{name}: offset 508: base block checksum mismatch; log ignored"
            ));
            return None;
        }
        if b.seq1 != b.seq2 {
            self.report.warnings.push(format!(
                "{name}: offset 4: base block sequence numbers differ ({}/{}), the log was not \
                 completely written; log ignored",
                b.seq1, b.seq2
            ));
            return None;
        }
        match b.file_type {
            FILE_TYPE_LOG_NEW => Some(Kind::New(b)),
            FILE_TYPE_LOG_OLD | FILE_TYPE_LOG_VERY_OLD => Some(Kind::Old(b)),
            t => {
                self.report.warnings.push(format!(
                    "{name}: offset 28: file type {t} is not a transaction log; log ignored"
                ));
                None
            }
        }
    }

    /// Validate the consecutive entries of one new-format log, starting at offset 512 with the
    /// base block's sequence number. Stops at the first entry that is not valid.
    fn scan_chain<'a>(&self, idx: usize, log: &LogFile<'a>, base: &BaseInfo) -> Chain<'a> {
        let d = log.data;
        let name = log.name.as_str();
        let mut entries = Vec::new();
        let mut off = LOG_BASE_BLOCK_SIZE;
        let mut expect = base.seq1;
        let end = loop {
            let Some(rest) = d.get(off..) else {
                break ChainEnd::Clean;
            };
            if rest.len() < 4 || &rest[..4] != b"HvLE" {
                break ChainEnd::Clean;
            }
            match self.check_entry(rest, expect, &|m: String| {
                format!("{name}: entry at offset {off} ({off:#x}): {m}")
            }) {
                Ok(e) => {
                    let size = u32_at(rest, 4).unwrap_or(0) as usize;
                    entries.push(e);
                    expect = expect.wrapping_add(1);
                    off = off.saturating_add(size);
                }
                Err(end) => break end.with_offset(off),
            }
        };
        Chain {
            log: idx,
            base_seq: base.seq1,
            entries,
            end,
            same_hive: match &self.pbase {
                Some(_) => same_hive(self.primary, d),
                None => Ok(()),
            },
        }
    }

    fn check_entry<'a>(
        &self,
        rest: &'a [u8],
        expect: u32,
        at: &dyn Fn(String) -> String,
    ) -> Result<Entry<'a>, ChainEnd> {
        let bad = |m: String| ChainEnd::Bad(at(m));
        if rest.len() < ENTRY_HEADER {
            return Err(bad(format!(
                "truncated: {} bytes left, an entry header needs {ENTRY_HEADER}",
                rest.len()
            )));
        }
        let field = |o: usize| u32_at(rest, o).unwrap_or(0);
        let (size, flags, seq, hbins, count) = (field(4), field(8), field(12), field(16), field(20));
        if seq != expect {
            if seq_before(seq, expect) {
                return Err(ChainEnd::Remnant { offset: 0, seq });
            }
            return Err(bad(format!(
                "sequence number {seq}, expected {expect} (gap)"
            )));
        }
        let size_us = size as usize;
        if size_us < SECTOR || size_us % SECTOR != 0 {
            return Err(bad(format!(
                "seq {seq}: size {size} is not a non-zero multiple of 512"
            )));
        }
        if size_us > rest.len() {
            return Err(bad(format!(
                "seq {seq}: truncated: entry declares {size} bytes, only {} remain",
                rest.len()
            )));
        }
        let ent = &rest[..size_us];
        let h1 = u64_at(ent, 24).unwrap_or(0);
        let h2 = u64_at(ent, 32).unwrap_or(0);
        if marvin32(REGF_LOG_SEED, &ent[..32]) != h2 {
            return Err(bad(format!("seq {seq}: hash-2 (header) mismatch")));
        }
        if marvin32(REGF_LOG_SEED, &ent[ENTRY_HEADER..]) != h1 {
            return Err(bad(format!("seq {seq}: hash-1 (data) mismatch")));
        }
        if hbins == 0 || hbins % PAGE != 0 {
            return Err(bad(format!(
                "seq {seq}: hive-bins size {hbins} is not a non-zero multiple of 4096"
            )));
        }
        if hbins > self.limit {
            return Err(bad(format!(
                "seq {seq}: hive-bins size {hbins} exceeds the limit {} (primary + logs, \
                 at most 2 GiB)",
                self.limit
            )));
        }
        if count == 0 {
            return Err(bad(format!("seq {seq}: no dirty pages")));
        }
        let refs_len = u64::from(count) * 8;
        let avail = (size_us - ENTRY_HEADER) as u64;
        if refs_len > avail {
            return Err(bad(format!(
                "seq {seq}: {count} page references do not fit in {size} bytes"
            )));
        }
        let refs_len = refs_len as usize;
        let refs = &ent[ENTRY_HEADER..ENTRY_HEADER + refs_len];
        let mut total: u64 = 0;
        for (i, r) in refs.chunks_exact(8).enumerate() {
            let po = u32::from_le_bytes([r[0], r[1], r[2], r[3]]);
            let ps = u32::from_le_bytes([r[4], r[5], r[6], r[7]]);
            if u64::from(po) + u64::from(ps) > u64::from(hbins) {
                return Err(bad(format!(
                    "seq {seq}: page {i} (offset {po}, size {ps}) lies beyond the hive-bins \
                     size {hbins}"
                )));
            }
            total += u64::from(ps);
        }
        if total > avail - refs_len as u64 {
            return Err(bad(format!(
                "seq {seq}: pages total {total} bytes, more than the entry holds"
            )));
        }
        let pages = &ent[ENTRY_HEADER + refs_len..];
        Ok(Entry {
            flags,
            seq,
            hbins,
            refs,
            pages,
        })
    }

    fn replay_new(
        &mut self,
        image: &mut Image,
        logs: &[LogFile<'_>],
        new_logs: &[(usize, BaseInfo)],
    ) -> bool {
        let chains: Vec<Chain<'_>> = new_logs
            .iter()
            .map(|(i, b)| self.scan_chain(*i, &logs[*i], b))
            .collect();
        let mut used = vec![false; chains.len()];
        let mut order: Vec<usize> = Vec::new();

        match &self.pbase {
            Some(pb) => {
                let floor = pb.seq2;
                // Reject logs of another hive and logs entirely older than the primary.
                let mut eligible = Vec::new();
                for (ci, c) in chains.iter().enumerate() {
                    let name = logs[c.log].name.as_str();
                    if let Err(why) = &c.same_hive {
                        self.report.warnings.push(format!(
                            "{name}: offset 0: log of another hive ({why}); log ignored"
                        ));
                        used[ci] = true;
                    } else if seq_before(c.base_seq, floor) {
                        self.report.notes.push(format!(
                            "{name}: starts at sequence number {}, below the primary's {floor}: \
                             already reconciled, not applied",
                            c.base_seq
                        ));
                        used[ci] = true;
                    } else {
                        eligible.push(ci);
                    }
                }
                let first = eligible
                    .iter()
                    .copied()
                    .filter(|&ci| !chains[ci].entries.is_empty())
                    .min_by_key(|&ci| chains[ci].base_seq.wrapping_sub(floor));
                if let Some(mut ci) = first {
                    loop {
                        used[ci] = true;
                        order.push(ci);
                        let Some(last) = chains[ci].last_seq() else {
                            break;
                        };
                        let want = last.wrapping_add(1);
                        match (0..chains.len()).find(|&k| {
                            !used[k] && chains[k].base_seq == want && !chains[k].entries.is_empty()
                        }) {
                            Some(k) => ci = k,
                            None => break,
                        }
                    }
                }
            }
            None => {
                // Invalid primary base block: only the log with the latest entries is used.
                let best = (0..chains.len())
                    .filter(|&k| !chains[k].entries.is_empty())
                    .reduce(|a, b| {
                        let (la, lb) = (chains[a].last_seq(), chains[b].last_seq());
                        match (la, lb) {
                            (Some(x), Some(y)) if seq_before(x, y) => b,
                            _ => a,
                        }
                    });
                if let Some(ci) = best {
                    used[ci] = true;
                    order.push(ci);
                }
            }
        }

        // Report why each chain ended or was left out.
        let applied_last = order.last().and_then(|&ci| chains[ci].last_seq());
        for (ci, c) in chains.iter().enumerate() {
            let name = logs[c.log].name.as_str();
            let in_run = order.contains(&ci);
            if c.same_hive.is_err() && self.pbase.is_some() {
                continue;
            }
            if self.pbase.as_ref().is_some_and(|pb| seq_before(c.base_seq, pb.seq2)) {
                continue;
            }
            if in_run || c.entries.is_empty() {
                match &c.end {
                    ChainEnd::Bad(m) => self.report.warnings.push(format!(
                        "{m}; replay of this log stopped{}",
                        match c.last_seq() {
                            Some(s) => format!(" after sequence number {s}"),
                            None => " before its first entry".to_string(),
                        }
                    )),
                    ChainEnd::Remnant { offset, seq } => self.report.notes.push(format!(
                        "{name}: entry at offset {offset} ({offset:#x}) has the earlier sequence \
                         number {seq}: remnant of a previous cycle, end of this log"
                    )),
                    ChainEnd::Clean => {}
                }
            }
            if !in_run && !c.entries.is_empty() {
                let (a, b) = (c.base_seq, c.last_seq().unwrap_or(c.base_seq));
                let why = match (self.pbase.is_some(), applied_last) {
                    (false, _) => {
                        "the primary's base block is invalid, so only the log with the latest \
                         entries is used"
                            .to_string()
                    }
                    (true, Some(l)) => format!("they do not follow sequence number {l} (gap)"),
                    (true, None) => "no run of entries could start".to_string(),
                };
                self.report.warnings.push(format!(
                    "{name}: entries {a}..={b} not applied: {why}"
                ));
            }
        }

        if order.is_empty() {
            return false;
        }

        if self.pbase.is_none() {
            let ci = order[0];
            image.restore_base_block(logs[chains[ci].log].data);
            self.report.base_block_recovered = true;
            self.report.warnings.push(format!(
                "{}: primary base block is invalid; rebuilt it from this log's base block",
                logs[chains[ci].log].name
            ));
        }

        let mut flags_bit = 0;
        let mut last = 0;
        for &ci in &order {
            let c = &chains[ci];
            self.report.logs_used.push(logs[c.log].name.clone());
            for e in &c.entries {
                image.ensure_hbins(e.hbins);
                image.hbins = e.hbins;
                let mut pos = 0usize;
                for r in e.refs.chunks_exact(8) {
                    let po = u32::from_le_bytes([r[0], r[1], r[2], r[3]]);
                    let ps = u32::from_le_bytes([r[4], r[5], r[6], r[7]]) as usize;
                    let end = pos.saturating_add(ps);
                    if let Some(bytes) = e.pages.get(pos..end) {
                        image.write(po, bytes);
                        self.report.bytes_applied += ps as u64;
                    }
                    pos = end;
                    self.report.pages_applied += 1;
                }
                if self.report.first_seq.is_none() {
                    self.report.first_seq = Some(e.seq);
                }
                self.report.entries_applied += 1;
                flags_bit = e.flags & 1;
                last = e.seq;
            }
        }
        self.report.last_seq = Some(last);
        self.report.format = LogFormat::New;

        // Bins that came from the log and are not valid become dummy bins.
        let mut p: u32 = 0;
        while p < image.hbins {
            match image.bin_at(p) {
                Some(size) => p = p.saturating_add(size),
                None => {
                    if image.is_dirty_block(p) {
                        image.write_dummy_bin(p);
                        self.report.dummy_bins += 1;
                        self.report.warnings.push(format!(
                            "hive bin at offset {p} ({p:#x}) written by the logs is invalid; \
                             replaced by an empty bin"
                        ));
                    }
                    p = p.saturating_add(PAGE);
                }
            }
        }

        image.finish(last, Some(flags_bit));
        self.report.hive_bins_size_after = image.hbins;
        true
    }

    fn replay_old(
        &mut self,
        image: &mut Image,
        logs: &[LogFile<'_>],
        old_logs: &[(usize, BaseInfo)],
    ) -> bool {
        // The timestamp the log must carry: the primary's, or the first bin's if the base block
        // is invalid.
        let want_ts = match &self.pbase {
            Some(pb) => pb.timestamp,
            None => u64_at(self.primary, BASE_BLOCK_SIZE + 20).unwrap_or(0),
        };
        let mut best: Option<(usize, &BaseInfo)> = None;
        for (i, b) in old_logs {
            let name = logs[*i].name.as_str();
            if self.pbase.is_some() {
                if let Err(why) = same_hive(self.primary, logs[*i].data) {
                    self.report.warnings.push(format!(
                        "{name}: offset 0: log of another hive ({why}); log ignored"
                    ));
                    continue;
                }
            }
            if b.timestamp != want_ts {
                self.report.notes.push(format!(
                    "{name}: last-written timestamp {:#x} differs from the primary's {want_ts:#x}: \
                     log does not apply",
                    b.timestamp
                ));
                continue;
            }
            if best.is_none_or(|(_, bb)| seq_before(bb.seq1, b.seq1)) {
                best = Some((*i, b));
            }
        }
        let Some((li, lb)) = best else {
            return false;
        };
        let log = &logs[li];
        let name = log.name.as_str();
        let d = log.data;
        let hbins = lb.hbins;
        if hbins == 0 || hbins % PAGE != 0 || hbins > self.limit {
            self.report.warnings.push(format!(
                "{name}: offset 40: hive-bins size {hbins} is invalid (not a non-zero multiple of \
                 4096 or above the limit {}); log ignored",
                self.limit
            ));
            return false;
        }
        let bitmap_len = (hbins / PAGE) as usize;
        if d.get(SECTOR..SECTOR + 4) != Some(b"DIRT".as_slice()) {
            self.report.warnings.push(format!(
                "{name}: offset 512: no \"DIRT\" signature; log ignored"
            ));
            return false;
        }
        let Some(bitmap) = d.get(SECTOR + 4..SECTOR + 4 + bitmap_len) else {
            self.report.warnings.push(format!(
                "{name}: offset 516: truncated dirty bitmap ({bitmap_len} bytes expected); log \
                 ignored"
            ));
            return false;
        };
        let pages_start = (SECTOR + 4 + bitmap_len).div_ceil(SECTOR) * SECTOR;

        let before = image.data.clone();
        let before_hbins = image.hbins;
        let base_recovered = self.pbase.is_none();
        if base_recovered {
            image.restore_base_block(d);
        }
        image.ensure_hbins(hbins);
        image.hbins = hbins;

        let mut k = 0usize; // index of the dirty page in the log
        let mut truncated_at: Option<u32> = None;
        let mut pages = 0u64;
        'bits: for (byte_i, &byte) in bitmap.iter().enumerate() {
            if byte == 0 {
                continue;
            }
            for bit in 0..8 {
                if byte & (1 << bit) == 0 {
                    continue;
                }
                let rel = ((byte_i * 8 + bit) * SECTOR) as u32;
                let lo = pages_start + k * SECTOR;
                match d.get(lo..lo + SECTOR) {
                    Some(page) => {
                        image.write(rel, page);
                        pages += 1;
                    }
                    None => {
                        self.report.warnings.push(format!(
                            "{name}: offset {lo} ({lo:#x}): log truncated, dirty page for hive-bins \
                             offset {rel} missing"
                        ));
                        truncated_at = Some(rel);
                        break 'bits;
                    }
                }
                k += 1;
            }
        }

        // Check the bins the log touched; stop at the first bad one.
        let mut fail: Option<u32> = None;
        let mut p: u32 = 0;
        while p < image.hbins {
            match image.bin_at(p) {
                Some(size) => {
                    let end = p.saturating_add(size);
                    if truncated_at.is_some_and(|t| t >= p && t < end) {
                        fail = Some(p);
                        break;
                    }
                    p = end;
                }
                None => {
                    if image.is_dirty_block(p) || truncated_at.is_some_and(|t| t / PAGE == p / PAGE)
                    {
                        fail = Some(p);
                        break;
                    }
                    p = p.saturating_add(PAGE);
                }
            }
        }
        if let Some(t) = truncated_at {
            if fail.is_none_or(|f| t < f) {
                fail = Some(t / PAGE * PAGE);
            }
        }
        if let Some(f) = fail {
            // Keep the primary's bytes from the failing bin on.
            let start = BASE_BLOCK_SIZE + f as usize;
            for (i, b) in image.data.iter_mut().enumerate().skip(start) {
                *b = before.get(i).copied().unwrap_or(0);
            }
            let prim_hbins = if before_hbins > 0 { before_hbins } else { hbins };
            image.hbins = f.max(prim_hbins.min(hbins));
            self.report.warnings.push(format!(
                "{name}: hive bin at offset {f} ({f:#x}) is invalid after applying the log; \
                 replay stopped there, the primary's data is kept from that offset on"
            ));
        }

        if base_recovered {
            self.report.base_block_recovered = true;
            self.report.warnings.push(format!(
                "{name}: primary base block is invalid; rebuilt it from this log's base block"
            ));
        }
        self.report.format = LogFormat::Old;
        self.report.entries_applied = 1;
        self.report.first_seq = Some(lb.seq1);
        self.report.last_seq = Some(lb.seq1);
        self.report.pages_applied = pages;
        self.report.bytes_applied = pages * SECTOR as u64;
        self.report.logs_used.push(name.to_string());
        image.finish(lb.seq1, None);
        self.report.hive_bins_size_after = image.hbins;
        true
    }
}

impl ChainEnd {
    fn with_offset(self, off: usize) -> ChainEnd {
        match self {
            ChainEnd::Remnant { seq, .. } => ChainEnd::Remnant { offset: off, seq },
            other => other,
        }
    }
}

/// The hive image being patched.
struct Image {
    data: Vec<u8>,
    /// Current hive-bins data size.
    hbins: u32,
    /// One flag per 4096-byte block of hive-bins data written from a log.
    dirty: Vec<bool>,
}

impl Image {
    fn new(primary: &[u8]) -> Image {
        let hbins = BaseInfo::parse(primary)
            .filter(BaseInfo::valid)
            .map_or(0, |b| b.hbins);
        Image {
            data: primary.to_vec(),
            hbins,
            dirty: Vec::new(),
        }
    }

    /// Grow the image (zero-filled) so that `hbins` bytes of hive-bins data fit. Callers check
    /// `hbins` against the limit first.
    fn ensure_hbins(&mut self, hbins: u32) {
        let need = BASE_BLOCK_SIZE + hbins as usize;
        if self.data.len() < need {
            self.data.resize(need, 0);
        }
    }

    /// Write `bytes` at hive-bins offset `rel` (ignored if out of range: callers validate).
    fn write(&mut self, rel: u32, bytes: &[u8]) {
        let start = BASE_BLOCK_SIZE + rel as usize;
        let Some(dst) = self.data.get_mut(start..start + bytes.len()) else {
            return;
        };
        dst.copy_from_slice(bytes);
        if bytes.is_empty() {
            return;
        }
        let first = (rel / PAGE) as usize;
        let last = ((rel as usize + bytes.len() - 1) / PAGE as usize).max(first);
        if self.dirty.len() <= last {
            self.dirty.resize(last + 1, false);
        }
        for f in &mut self.dirty[first..=last] {
            *f = true;
        }
    }

    fn is_dirty_block(&self, rel: u32) -> bool {
        self.dirty
            .get((rel / PAGE) as usize)
            .copied()
            .unwrap_or(false)
    }

    /// Size of a valid hive bin starting at hive-bins offset `p`, or `None`.
    fn bin_at(&self, p: u32) -> Option<u32> {
        let at = BASE_BLOCK_SIZE + p as usize;
        let h = self.data.get(at..at + 32)?;
        let off = u32_at(h, 4)?;
        let size = u32_at(h, 8)?;
        let ok = &h[..4] == b"hbin"
            && off == p
            && size >= PAGE
            && size % PAGE == 0
            && u64::from(p) + u64::from(size) <= u64::from(self.hbins);
        ok.then_some(size)
    }

    /// An empty 4096-byte bin at `p`: header, then one free cell over the rest.
    fn write_dummy_bin(&mut self, p: u32) {
        let at = BASE_BLOCK_SIZE + p as usize;
        if let Some(b) = self.data.get_mut(at..at + PAGE as usize) {
            b.fill(0);
            b[..4].copy_from_slice(b"hbin");
            b[4..8].copy_from_slice(&p.to_le_bytes());
            b[8..12].copy_from_slice(&PAGE.to_le_bytes());
            b[32..36].copy_from_slice(&(PAGE - 32).to_le_bytes());
        }
    }

    /// Replace the first 512 bytes of the base block by a log's (file type fixed in `finish`).
    fn restore_base_block(&mut self, log: &[u8]) {
        if let (Some(dst), Some(src)) = (
            self.data.get_mut(..LOG_BASE_BLOCK_SIZE),
            log.get(..LOG_BASE_BLOCK_SIZE),
        ) {
            dst.copy_from_slice(src);
        }
        if let Some(b) = BaseInfo::parse(&self.data) {
            self.hbins = b.hbins;
        }
    }

    /// Make the base block consistent: both sequence numbers `seq`, file type primary, hive-bins
    /// size, flags bit 0 (new format), checksum.
    fn finish(&mut self, seq: u32, flags_bit: Option<u32>) {
        let d = &mut self.data;
        put_u32(d, 4, seq);
        put_u32(d, 8, seq);
        put_u32(d, 28, FILE_TYPE_PRIMARY);
        put_u32(d, 40, self.hbins);
        if let Some(bit) = flags_bit {
            let flags = u32_at(d, 144).unwrap_or(0);
            put_u32(d, 144, (flags & !1) | (bit & 1));
        }
        if let Some(c) = base_block_checksum(d) {
            put_u32(d, 508, c);
        }
    }
}
