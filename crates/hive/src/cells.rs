//! Bounds-checked access to the cells of the hive-bins data.

use crate::base::BASE_BLOCK_SIZE;
use crate::bytes::i32_at;
use crate::error::{Error, ErrorKind, Result};

/// The hive-bins data and the format details needed to decode cells. Small
/// and `Copy`, so keys and values carry it instead of a reference.
#[derive(Clone, Copy)]
pub struct Cells<'a> {
    pub(crate) bins: &'a [u8],
}

impl<'a> Cells<'a> {
    /// File offset of a cell offset, for messages.
    pub fn file_offset(off: u32) -> u64 {
        off as u64 + BASE_BLOCK_SIZE as u64
    }

    pub fn bins_len(&self) -> usize {
        self.bins.len()
    }

    /// The payload of the cell at `off` (after its 4-byte size field).
    /// Free cells are read too: forensic readers must see what a reference
    /// points at even when the allocator has released it.
    pub fn cell(&self, off: u32) -> Result<&'a [u8]> {
        let pos = off as usize;
        let at = Self::file_offset(off);
        let raw = match i32_at(self.bins, pos) {
            Some(raw) if off != u32::MAX => raw,
            _ => return Err(Error::at(ErrorKind::OffsetOutOfRange, at)),
        };
        if !off.is_multiple_of(4) {
            return Err(Error::at(
                ErrorKind::BadCell("misaligned offset".into()),
                at,
            ));
        }
        let size = raw.unsigned_abs() as usize;
        if size < 8 {
            return Err(Error::at(ErrorKind::BadCell(format!("size {raw}")), at));
        }
        match self.bins.get(pos + 4..pos.saturating_add(size)) {
            Some(payload) => Ok(payload),
            None => Err(Error::at(
                ErrorKind::BadCell(format!("size {size} runs past the end of the hive bins")),
                at,
            )),
        }
    }

    /// A cell that must start with a two-byte signature.
    pub fn cell_sig(&self, off: u32, sig: &'static str) -> Result<&'a [u8]> {
        let c = self.cell(off)?;
        if c.get(..2) != Some(sig.as_bytes()) {
            let found = [
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ];
            return Err(Error::at(
                ErrorKind::BadSignature {
                    expected: sig,
                    found,
                },
                Self::file_offset(off),
            ));
        }
        Ok(c)
    }
}
