//! Transaction-log replay for dirty REGF hives (issue 6). This file is the table of contents.
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
//!
//! Layout: `report` (the public input and output types), `find` (logs beside a hive), `run`
//! ([`replay()`]: classify the logs, pick a format, fall back to a log's base block), `ctx` (state
//! shared by both formats, log classification and identity), `hvle` (new format), `dirt` (old
//! format), `image` (the hive image being patched). The base block itself is parsed by
//! [`crate::BaseBlock`], the crate's one parser of it, for primaries and logs alike.

mod ctx;
mod dirt;
mod find;
mod hvle;
mod image;
mod report;
mod run;
#[cfg(test)]
mod tests;

pub use crate::base::{is_dirty, LOG_BASE_BLOCK_SIZE};
pub use find::*;
pub use report::*;
pub use run::*;
