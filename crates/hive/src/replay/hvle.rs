//! New-format (Windows 8.1+, file type 6) logs: a run of `HvLE` entries, each protected by two
//! Marvin32 hashes, replayed in sequence order across LOG1 and LOG2.

use crate::base::{BaseBlock, LOG_BASE_BLOCK_SIZE};
use crate::bytes::{u32_at, Reader};
use crate::marvin::{marvin32, REGF_LOG_SEED};
use crate::replay::ctx::{same_hive, seq_before, Ctx};
use crate::replay::image::{page_aligned, Image, PAGE};
use crate::replay::report::{LogFile, LogFormat};

const ENTRY_SIGNATURE: &[u8] = b"HvLE";
/// Entry sizes are whole sectors.
const SECTOR: usize = 512;

/// The header of an `HvLE` entry, in on-disk order; page references and pages follow it.
struct EntryHeader {
    /// Size of the whole entry (header, references, pages).
    size: u32,
    /// Base-block flags at the time of the entry (bit 0 is carried over).
    flags: u32,
    seq: u32,
    /// Hive-bins data size after this entry.
    bins_size: u32,
    page_count: u32,
    /// Marvin32 of everything after the header.
    hash1: u64,
    /// Marvin32 of the header before the hashes.
    hash2: u64,
}

impl EntryHeader {
    const SIZE: usize = 40;
    /// Bytes of the header that hash-2 covers.
    const HASHED: usize = 32;

    fn read(b: &[u8]) -> Option<EntryHeader> {
        let mut r = Reader::new(b.get(..Self::SIZE)?, "log entry", 0);
        let _signature: [u8; 4] = r.array().ok()?;
        Some(EntryHeader {
            size: r.u32().ok()?,
            flags: r.u32().ok()?,
            seq: r.u32().ok()?,
            bins_size: r.u32().ok()?,
            page_count: r.u32().ok()?,
            hash1: r.u64().ok()?,
            hash2: r.u64().ok()?,
        })
    }
}

/// The (hive-bins offset, size) pairs of an entry's page references.
fn page_refs(refs: &[u8]) -> impl Iterator<Item = (u32, u32)> + '_ {
    refs.chunks_exact(8)
        .map(|r| (u32_at(r, 0).unwrap_or(0), u32_at(r, 4).unwrap_or(0)))
}

/// One new-format log entry that passed validation.
struct Entry<'a> {
    size: u32,
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

impl ChainEnd {
    fn with_offset(self, off: usize) -> ChainEnd {
        match self {
            ChainEnd::Remnant { seq, .. } => ChainEnd::Remnant { offset: off, seq },
            other => other,
        }
    }
}

/// Validate the consecutive entries of one new-format log, starting at offset 512 with the
/// base block's sequence number. Stops at the first entry that is not valid.
fn scan_chain<'a>(ctx: &Ctx<'_>, idx: usize, log: &LogFile<'a>, base: &BaseBlock) -> Chain<'a> {
    let d = log.data;
    let name = log.name.as_str();
    let mut entries = Vec::new();
    let mut off = LOG_BASE_BLOCK_SIZE;
    let mut expect = base.primary_seq;
    let end = loop {
        let Some(rest) = d.get(off..) else {
            break ChainEnd::Clean;
        };
        if !rest.starts_with(ENTRY_SIGNATURE) {
            break ChainEnd::Clean;
        }
        match check_entry(ctx, rest, expect, &|m: String| {
            format!("{name}: entry at offset {off} ({off:#x}): {m}")
        }) {
            Ok(e) => {
                let size = e.size as usize;
                entries.push(e);
                expect = expect.wrapping_add(1);
                off = off.saturating_add(size);
            }
            Err(end) => break end.with_offset(off),
        }
    };
    Chain {
        log: idx,
        base_seq: base.primary_seq,
        entries,
        end,
        same_hive: match &ctx.pbase {
            Some(pb) => same_hive(pb, base),
            None => Ok(()),
        },
    }
}

fn check_entry<'a>(
    ctx: &Ctx<'_>,
    rest: &'a [u8],
    expect: u32,
    at: &dyn Fn(String) -> String,
) -> Result<Entry<'a>, ChainEnd> {
    let bad = |m: String| ChainEnd::Bad(at(m));
    let Some(h) = EntryHeader::read(rest) else {
        return Err(bad(format!(
            "truncated: {} bytes left, an entry header needs {}",
            rest.len(),
            EntryHeader::SIZE
        )));
    };
    let (size, flags, seq, hbins, count) = (h.size, h.flags, h.seq, h.bins_size, h.page_count);
    if seq != expect {
        if seq_before(seq, expect) {
            return Err(ChainEnd::Remnant { offset: 0, seq });
        }
        return Err(bad(format!(
            "sequence number {seq}, expected {expect} (gap)"
        )));
    }
    let size_us = size as usize;
    if size_us < SECTOR || size_us & (SECTOR - 1) != 0 {
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
    // Hash-2 covers the header up to the hashes, hash-1 everything after the header.
    if marvin32(REGF_LOG_SEED, &ent[..EntryHeader::HASHED]) != h.hash2 {
        return Err(bad(format!("seq {seq}: hash-2 (header) mismatch")));
    }
    if marvin32(REGF_LOG_SEED, &ent[EntryHeader::SIZE..]) != h.hash1 {
        return Err(bad(format!("seq {seq}: hash-1 (data) mismatch")));
    }
    if hbins == 0 || !page_aligned(hbins) {
        return Err(bad(format!(
            "seq {seq}: hive-bins size {hbins} is not a non-zero multiple of 4096"
        )));
    }
    if hbins > ctx.limit {
        return Err(bad(format!(
            "seq {seq}: hive-bins size {hbins} exceeds the limit {} (primary + logs, \
             at most 2 GiB)",
            ctx.limit
        )));
    }
    if count == 0 {
        return Err(bad(format!("seq {seq}: no dirty pages")));
    }
    let refs_len = u64::from(count) * 8;
    let avail = (size_us - EntryHeader::SIZE) as u64;
    if refs_len > avail {
        return Err(bad(format!(
            "seq {seq}: {count} page references do not fit in {size} bytes"
        )));
    }
    let refs_len = refs_len as usize;
    let refs = &ent[EntryHeader::SIZE..EntryHeader::SIZE + refs_len];
    let mut total: u64 = 0;
    for (i, (po, ps)) in page_refs(refs).enumerate() {
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
    let pages = &ent[EntryHeader::SIZE + refs_len..];
    Ok(Entry {
        size,
        flags,
        seq,
        hbins,
        refs,
        pages,
    })
}

/// Replays the new-format logs; false if no entry could be applied.
pub(crate) fn replay_new(
    ctx: &mut Ctx<'_>,
    image: &mut Image,
    logs: &[LogFile<'_>],
    new_logs: &[(usize, BaseBlock)],
) -> bool {
    let chains: Vec<Chain<'_>> = new_logs
        .iter()
        .map(|(i, b)| scan_chain(ctx, *i, &logs[*i], b))
        .collect();
    let mut used = vec![false; chains.len()];
    let mut order: Vec<usize> = Vec::new();

    match &ctx.pbase {
        Some(pb) => {
            let floor = pb.secondary_seq;
            // Reject logs of another hive and logs entirely older than the primary.
            let mut eligible = Vec::new();
            for (ci, c) in chains.iter().enumerate() {
                let name = logs[c.log].name.as_str();
                if let Err(why) = &c.same_hive {
                    ctx.report.warnings.push(format!(
                        "{name}: offset 0: log of another hive ({why}); log ignored"
                    ));
                    used[ci] = true;
                } else if seq_before(c.base_seq, floor) {
                    ctx.report.notes.push(format!(
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
        if c.same_hive.is_err() && ctx.pbase.is_some() {
            continue;
        }
        if ctx
            .pbase
            .as_ref()
            .is_some_and(|pb| seq_before(c.base_seq, pb.secondary_seq))
        {
            continue;
        }
        if in_run || c.entries.is_empty() {
            match &c.end {
                ChainEnd::Bad(m) => ctx.report.warnings.push(format!(
                    "{m}; replay of this log stopped{}",
                    match c.last_seq() {
                        Some(s) => format!(" after sequence number {s}"),
                        None => " before its first entry".to_string(),
                    }
                )),
                ChainEnd::Remnant { offset, seq } => ctx.report.notes.push(format!(
                    "{name}: entry at offset {offset} ({offset:#x}) has the earlier sequence \
                     number {seq}: remnant of a previous cycle, end of this log"
                )),
                ChainEnd::Clean => {}
            }
        }
        if !in_run && !c.entries.is_empty() {
            let (a, b) = (c.base_seq, c.last_seq().unwrap_or(c.base_seq));
            let why = match (ctx.pbase.is_some(), applied_last) {
                (false, _) => {
                    "the primary's base block is invalid, so only the log with the latest \
                     entries is used"
                        .to_string()
                }
                (true, Some(l)) => {
                    format!("they do not continue the run that ended at sequence number {l} (gap)")
                }
                (true, None) => "no run of entries could start".to_string(),
            };
            ctx.report
                .warnings
                .push(format!("{name}: entries {a}..={b} not applied: {why}"));
        }
    }

    if order.is_empty() {
        return false;
    }

    if ctx.pbase.is_none() {
        let ci = order[0];
        image.restore_base_block(logs[chains[ci].log].data);
        ctx.report.base_block_recovered = true;
        ctx.report.warnings.push(format!(
            "{}: primary base block is invalid; rebuilt it from this log's base block",
            logs[chains[ci].log].name
        ));
    }

    let mut flags_bit = 0;
    let mut last = 0;
    for &ci in &order {
        let c = &chains[ci];
        ctx.report.logs_used.push(logs[c.log].name.clone());
        for e in &c.entries {
            image.ensure_hbins(e.hbins);
            image.hbins = e.hbins;
            let mut pos = 0usize;
            for (po, ps) in page_refs(e.refs) {
                let ps = ps as usize;
                let end = pos.saturating_add(ps);
                if let Some(bytes) = e.pages.get(pos..end) {
                    image.write(po, bytes);
                    ctx.report.bytes_applied += ps as u64;
                }
                pos = end;
                ctx.report.pages_applied += 1;
            }
            if ctx.report.first_seq.is_none() {
                ctx.report.first_seq = Some(e.seq);
            }
            ctx.report.entries_applied += 1;
            flags_bit = e.flags & 1;
            last = e.seq;
        }
    }
    ctx.report.last_seq = Some(last);
    ctx.report.format = LogFormat::New;

    // Bins that came from the log and are not valid become dummy bins.
    let mut p: u32 = 0;
    while p < image.hbins {
        match image.bin_at(p) {
            Some(size) => p = p.saturating_add(size),
            None => {
                if image.is_dirty_block(p) {
                    image.write_dummy_bin(p);
                    ctx.report.dummy_bins += 1;
                    ctx.report.warnings.push(format!(
                        "hive bin at offset {p} ({p:#x}) written by the logs is invalid; \
                         replaced by an empty bin"
                    ));
                }
                p = p.saturating_add(PAGE);
            }
        }
    }

    image.finish(last, Some(flags_bit));
    ctx.report.hive_bins_size_after = image.hbins;
    true
}
