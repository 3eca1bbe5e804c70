//! A zero-copy reader and a writer for Windows registry hive files (REGF).
//!
//! Reading works over a byte slice, usually a memory map ([`HiveFile`]):
//! [`Hive`] checks the base block and hands out [`Key`]s; keys give their
//! subkeys ([`Key::subkeys`], [`Key::subkey`] for a case-insensitive lookup
//! through the sorted lists) and [`Value`]s, whose data is borrowed from the
//! file unless it is split into big-data segments. Everything is bounds-checked:
//! a hostile hive yields an [`Error`] naming the file offset, never a panic,
//! and [`walk()`] visits a whole tree once even when lists form cycles.
//!
//! [`replay`] applies transaction logs (`.LOG1`/`.LOG2`/`.LOG`) to a dirty
//! hive in memory, so a copied hive reads as Windows would see it.
//!
//! [`write`] builds a hive file from an in-memory tree (for tests and samples).
//!
//! Layout: `bytes` (the one checked little-endian reader), `base` (base
//! block, for primaries and logs), `cells` (cell access), `hive` (an open
//! hive, [`HiveFile`]), `key` (nk and subkey lists), `value` (vk and data),
//! `name` (names and the one case rule, [`same_name_str`]), `walk`, `write`,
//! `marvin` (log hashes), `replay/` (transaction logs, by format).

mod base;
mod bytes;
mod cells;
mod error;
pub mod file;
mod hive;
mod key;
mod marvin;
mod name;
pub mod replay;
mod value;
mod walk;
pub mod write;

pub use base::{compute_checksum, BaseBlock, BASE_BLOCK_SIZE};
pub use cells::Cells;
pub use error::{Error, ErrorKind, Result};
pub use hive::{Hive, HiveFile};
pub use key::{Key, Subkeys, KEY_COMP_NAME, KEY_HIVE_ENTRY, KEY_SYM_LINK};
pub use name::{
    json_escape_char, json_escape_units, lh_hash_units, same_name_str, same_name_units, upcase_str,
    upcase_unit, Name,
};
pub use value::{Value, ValueType, Values, BIG_DATA_SEGMENT};
pub use walk::{path_lossy, walk, Step};

/// Windows FILETIME (100 ns since 1601) to Unix seconds and nanoseconds.
pub fn filetime_to_unix(ft: u64) -> (i64, u32) {
    const EPOCH_DIFF: i64 = 11_644_473_600;
    let secs = (ft / 10_000_000) as i64 - EPOCH_DIFF;
    let nanos = ((ft % 10_000_000) * 100) as u32;
    (secs, nanos)
}
