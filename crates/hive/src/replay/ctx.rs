//! What both log formats share: the replay state, sorting the logs into formats, and telling
//! whether a log belongs to the primary at all.

use crate::base::{BaseBlock, FILE_TYPE_LOG_NEW, FILE_TYPE_LOG_OLD, FILE_TYPE_LOG_VERY_OLD};
use crate::replay::report::{LogFile, ReplayReport};

/// A usable log, by format, with its base block.
pub(crate) enum Kind {
    New(BaseBlock),
    Old(BaseBlock),
}

/// Replay state: the inputs every step consults and the report they fill.
pub(crate) struct Ctx<'p> {
    pub(crate) primary: &'p [u8],
    /// The primary's base block, if valid.
    pub(crate) pbase: Option<BaseBlock>,
    /// Largest hive-bins size to accept (see `hive_bins_limit`).
    pub(crate) limit: u32,
    pub(crate) report: ReplayReport,
}

impl Ctx<'_> {
    /// The log's format, or `None` (with a note or warning saying why) if it cannot be used.
    pub(crate) fn classify(&mut self, log: &LogFile<'_>) -> Option<Kind> {
        let name = log.name.as_str();
        if log.data.is_empty() {
            self.report.notes.push(format!("{name}: empty, ignored"));
            return None;
        }
        let Ok(b) = BaseBlock::read(log.data) else {
            self.report.warnings.push(format!(
                "{name}: offset 0: only {} bytes, too short for a log base block; log ignored",
                log.data.len()
            ));
            return None;
        };
        if !b.signature_ok() {
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
        if b.primary_seq != b.secondary_seq {
            self.report.warnings.push(format!(
                "{name}: offset 4: base block sequence numbers differ ({}/{}), the log was not \
                 completely written; log ignored",
                b.primary_seq, b.secondary_seq
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
}

/// `a` comes before `b` in wrapping 32-bit sequence order.
pub(crate) fn seq_before(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) > 0
}

pub(crate) fn dirty_message(b: Option<&BaseBlock>, what: &str) -> String {
    match b {
        Some(b) => format!(
            "hive is dirty (sequence numbers {}/{}) but {what}; its data may be stale",
            b.primary_seq, b.secondary_seq
        ),
        None => format!("hive is dirty (base block invalid) but {what}; its data may be stale"),
    }
}

/// Identity of the hive a log's base block belongs to: `Err(reason)` if it is not the primary's.
/// With an RmId GUID ("rmtm" signature, non-zero GUID) on both sides the GUIDs must match;
/// otherwise the embedded file names (as stored) must.
pub(crate) fn same_hive(primary: &BaseBlock, log: &BaseBlock) -> Result<(), String> {
    if let (Some(a), Some(b)) = (primary.rm_id(), log.rm_id()) {
        if a != b {
            return Err(format!(
                "RmId {} differs from the primary's {}",
                guid(&b),
                guid(&a)
            ));
        }
        return Ok(());
    }
    if primary.file_name_raw != log.file_name_raw {
        return Err(format!(
            "embedded file name {:?} differs from the primary's {:?}",
            log.file_name, primary.file_name
        ));
    }
    Ok(())
}

fn guid(g: &[u8; 16]) -> String {
    g.iter().map(|b| format!("{b:02x}")).collect()
}
