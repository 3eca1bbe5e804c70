//! [`replay()`]: checks the primary, classifies the logs, replays the new format, else the old
//! one, else at least gives an invalid primary its base block back from a log.

use crate::base::{is_dirty, BaseBlock, BASE_BLOCK_SIZE};
use crate::replay::ctx::{dirty_message, seq_before, Ctx, Kind};
use crate::replay::dirt::replay_old;
use crate::replay::hvle::replay_new;
use crate::replay::image::{page_aligned, Image, PAGE};
use crate::replay::report::{LogFile, ReplayError, ReplayReport, Replayed};

/// Largest hive-bins data size replay will ever produce (Windows' limit for a stable hive).
pub const MAX_HIVE_BINS_SIZE: u32 = 0x8000_0000;

/// Upper bound on the hive-bins size replay accepts for these inputs:
/// `min(MAX_HIVE_BINS_SIZE, primary + all logs, rounded up to 4096)`. Real growth during replay is
/// always below it, because every page added to the hive must be carried by a log.
pub fn hive_bins_limit(primary_len: usize, logs: &[LogFile<'_>]) -> u32 {
    let total = logs.iter().fold(primary_len as u64, |acc, l| {
        acc.saturating_add(l.data.len() as u64)
    });
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
    let pbase = BaseBlock::read(primary).ok();
    let pvalid = pbase.as_ref().is_some_and(BaseBlock::is_valid);
    if let Some(b) = pbase.as_ref().filter(|b| b.is_valid()) {
        report.hive_bins_size_before = b.bins_size;
        report.hive_bins_size_after = b.bins_size;
    }
    if !is_dirty(primary) {
        return Ok(Replayed {
            data: primary.to_vec(),
            report,
        });
    }
    report.dirty = true;
    if logs.is_empty() {
        report.warnings.push(dirty_message(
            pbase.as_ref(),
            "no transaction log was found",
        ));
        return Ok(Replayed {
            data: primary.to_vec(),
            report,
        });
    }

    let limit = hive_bins_limit(primary.len(), logs);
    let mut ctx = Ctx {
        primary,
        pbase: pbase.filter(|b| b.is_valid()),
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
        done = replay_new(&mut ctx, &mut image, logs, &new_logs);
    }
    if !done && !old_logs.is_empty() {
        done = replay_old(&mut ctx, &mut image, logs, &old_logs);
    }
    if !done && !pvalid {
        // Nothing to apply, but a log can still give the base block back (Windows does this).
        let best = new_logs.iter().chain(old_logs.iter()).reduce(|a, b| {
            if seq_before(a.1.primary_seq, b.1.primary_seq) {
                b
            } else {
                a
            }
        });
        if let Some((i, b)) = best {
            let i = *i;
            image.restore_base_block(logs[i].data);
            let hbins = b.bins_size.min(limit);
            if page_aligned(hbins) && hbins > 0 {
                image.ensure_hbins(hbins);
                image.hbins = hbins;
            }
            image.finish(b.primary_seq, None);
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
