//! What replay takes (the logs) and gives (the patched image and a report).

use std::fmt;

use crate::base::BASE_BLOCK_SIZE;

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
