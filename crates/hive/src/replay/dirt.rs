//! Old-format (XP to 8.0, file type 1 or 2) logs: a `DIRT` bitmap with one bit per 512-byte page
//! of hive-bins data, then the dirty pages in order.

use crate::base::{BaseBlock, BASE_BLOCK_SIZE};
use crate::bytes::u64_at;
use crate::replay::ctx::{same_hive, seq_before, Ctx};
use crate::replay::image::{page_aligned, Image, PAGE};
use crate::replay::report::{LogFile, LogFormat};

const DIRT_SIGNATURE: &[u8] = b"DIRT";
/// The bitmap's unit, and where it starts (right after the log's 512-byte base block).
const SECTOR: usize = 512;
/// Offset of the last-written time in a hive bin's header (the first bin's stands in for an
/// invalid base block's).
const BIN_TIMESTAMP: usize = 20;

/// Replays the best matching old-format log; false if none applies.
pub(crate) fn replay_old(
    ctx: &mut Ctx<'_>,
    image: &mut Image,
    logs: &[LogFile<'_>],
    old_logs: &[(usize, BaseBlock)],
) -> bool {
    // The timestamp the log must carry: the primary's, or the first bin's if the base block
    // is invalid.
    let want_ts = match &ctx.pbase {
        Some(pb) => pb.last_written,
        None => u64_at(ctx.primary, BASE_BLOCK_SIZE + BIN_TIMESTAMP).unwrap_or(0),
    };
    let mut best: Option<(usize, &BaseBlock)> = None;
    for (i, b) in old_logs {
        let name = logs[*i].name.as_str();
        if let Some(pb) = &ctx.pbase {
            if let Err(why) = same_hive(pb, b) {
                ctx.report.warnings.push(format!(
                    "{name}: offset 0: log of another hive ({why}); log ignored"
                ));
                continue;
            }
        }
        if b.last_written != want_ts {
            ctx.report.notes.push(format!(
                "{name}: last-written timestamp {:#x} differs from the primary's {want_ts:#x}: \
                 log does not apply",
                b.last_written
            ));
            continue;
        }
        let better = match best {
            None => true,
            Some((_, bb)) => seq_before(bb.primary_seq, b.primary_seq),
        };
        if better {
            best = Some((*i, b));
        }
    }
    let Some((li, lb)) = best else {
        return false;
    };
    let log = &logs[li];
    let name = log.name.as_str();
    let d = log.data;
    let hbins = lb.bins_size;
    if hbins == 0 || !page_aligned(hbins) || hbins > ctx.limit {
        ctx.report.warnings.push(format!(
            "{name}: offset 40: hive-bins size {hbins} is invalid (not a non-zero multiple of \
             4096 or above the limit {}); log ignored",
            ctx.limit
        ));
        return false;
    }
    let bitmap_len = (hbins / PAGE) as usize;
    if d.get(SECTOR..SECTOR + 4) != Some(DIRT_SIGNATURE) {
        ctx.report.warnings.push(format!(
            "{name}: offset 512: no \"DIRT\" signature; log ignored"
        ));
        return false;
    }
    let Some(bitmap) = d.get(SECTOR + 4..SECTOR + 4 + bitmap_len) else {
        ctx.report.warnings.push(format!(
            "{name}: offset 516: truncated dirty bitmap ({bitmap_len} bytes expected); log \
             ignored"
        ));
        return false;
    };
    let pages_start = (SECTOR + 4 + bitmap_len).div_ceil(SECTOR) * SECTOR;

    // `image` is still an unmodified copy of the primary here (new-format replay only touches
    // it once it applies something), so a failed bin is restored from `ctx.primary`.
    let before_hbins = image.hbins;
    let base_recovered = ctx.pbase.is_none();
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
                    ctx.report.warnings.push(format!(
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
                if image.is_dirty_block(p) || truncated_at.is_some_and(|t| t / PAGE == p / PAGE) {
                    fail = Some(p);
                    break;
                }
                p = p.saturating_add(PAGE);
            }
        }
    }
    if let Some(t) = truncated_at {
        if !matches!(fail, Some(f) if f <= t) {
            fail = Some(t / PAGE * PAGE);
        }
    }
    if let Some(f) = fail {
        // Keep the primary's bytes from the failing bin on.
        let start = BASE_BLOCK_SIZE + f as usize;
        for (i, b) in image.data.iter_mut().enumerate().skip(start) {
            *b = ctx.primary.get(i).copied().unwrap_or(0);
        }
        let prim_hbins = if before_hbins > 0 {
            before_hbins
        } else {
            hbins
        };
        image.hbins = f.max(prim_hbins.min(hbins));
        ctx.report.warnings.push(format!(
            "{name}: hive bin at offset {f} ({f:#x}) is invalid after applying the log; \
             replay stopped there, the primary's data is kept from that offset on"
        ));
    }

    if base_recovered {
        ctx.report.base_block_recovered = true;
        ctx.report.warnings.push(format!(
            "{name}: primary base block is invalid; rebuilt it from this log's base block"
        ));
    }
    ctx.report.format = LogFormat::Old;
    ctx.report.entries_applied = 1;
    ctx.report.first_seq = Some(lb.primary_seq);
    ctx.report.last_seq = Some(lb.primary_seq);
    ctx.report.pages_applied = pages;
    ctx.report.bytes_applied = pages * SECTOR as u64;
    ctx.report.logs_used.push(name.to_string());
    image.finish(lb.primary_seq, None);
    ctx.report.hive_bins_size_after = image.hbins;
    true
}
