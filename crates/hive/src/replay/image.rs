//! The hive image being patched: the primary's bytes, grown as the logs say, with a record of
//! which 4096-byte blocks came from a log.

use crate::base::{
    compute_checksum, field, BaseBlock, BASE_BLOCK_SIZE, FILE_TYPE_PRIMARY, LOG_BASE_BLOCK_SIZE,
};
use crate::bytes::{u32_at, Reader};

/// Hive bins are whole pages; log entries and the dirty bitmap count in them.
pub(crate) const PAGE: u32 = 4096;

/// `x` is a multiple of 4096.
pub(crate) fn page_aligned(x: u32) -> bool {
    x & (PAGE - 1) == 0
}

fn put_u32(d: &mut [u8], off: usize, v: u32) {
    if let Some(b) = d.get_mut(off..off + 4) {
        b.copy_from_slice(&v.to_le_bytes());
    }
}

/// The fields of a hive bin's 32-byte header that replay checks, in on-disk order.
struct BinHeader {
    signature: [u8; 4],
    /// The bin's own offset in the hive-bins data.
    offset: u32,
    size: u32,
}

impl BinHeader {
    const SIZE: usize = 32;

    fn read(b: &[u8]) -> Option<BinHeader> {
        let mut r = Reader::new(b.get(..Self::SIZE)?, "hive bin", 0);
        Some(BinHeader {
            signature: r.array().ok()?,
            offset: r.u32().ok()?,
            size: r.u32().ok()?,
        })
    }
}
/// The hive image being patched.
pub(crate) struct Image {
    pub(crate) data: Vec<u8>,
    /// Current hive-bins data size.
    pub(crate) hbins: u32,
    /// One flag per 4096-byte block of hive-bins data written from a log.
    dirty: Vec<bool>,
}

impl Image {
    pub(crate) fn new(primary: &[u8]) -> Image {
        let hbins = BaseBlock::read(primary)
            .ok()
            .filter(BaseBlock::is_valid)
            .map_or(0, |b| b.bins_size);
        Image {
            data: primary.to_vec(),
            hbins,
            dirty: Vec::new(),
        }
    }

    /// Grow the image (zero-filled) so that `hbins` bytes of hive-bins data fit. Callers check
    /// `hbins` against the limit first.
    pub(crate) fn ensure_hbins(&mut self, hbins: u32) {
        let need = BASE_BLOCK_SIZE + hbins as usize;
        if self.data.len() < need {
            self.data.resize(need, 0);
        }
    }

    /// Write `bytes` at hive-bins offset `rel` (ignored if out of range: callers validate).
    pub(crate) fn write(&mut self, rel: u32, bytes: &[u8]) {
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

    pub(crate) fn is_dirty_block(&self, rel: u32) -> bool {
        self.dirty
            .get((rel / PAGE) as usize)
            .copied()
            .unwrap_or(false)
    }

    /// Size of a valid hive bin starting at hive-bins offset `p`, or `None`.
    pub(crate) fn bin_at(&self, p: u32) -> Option<u32> {
        let h = BinHeader::read(self.data.get(BASE_BLOCK_SIZE + p as usize..)?)?;
        let size = h.size;
        let ok = &h.signature == b"hbin"
            && h.offset == p
            && size >= PAGE
            && page_aligned(size)
            && u64::from(p) + u64::from(size) <= u64::from(self.hbins);
        ok.then_some(size)
    }

    /// An empty 4096-byte bin at `p`: header, then one free cell over the rest.
    pub(crate) fn write_dummy_bin(&mut self, p: u32) {
        let at = BASE_BLOCK_SIZE + p as usize;
        if let Some(b) = self.data.get_mut(at..at + PAGE as usize) {
            b.fill(0);
            b[..4].copy_from_slice(b"hbin");
            b[4..8].copy_from_slice(&p.to_le_bytes());
            b[8..12].copy_from_slice(&PAGE.to_le_bytes());
            let free = BinHeader::SIZE;
            b[free..free + 4].copy_from_slice(&(PAGE - free as u32).to_le_bytes());
        }
    }

    /// Replace the first 512 bytes of the base block by a log's (file type fixed in `finish`).
    pub(crate) fn restore_base_block(&mut self, log: &[u8]) {
        if let (Some(dst), Some(src)) = (
            self.data.get_mut(..LOG_BASE_BLOCK_SIZE),
            log.get(..LOG_BASE_BLOCK_SIZE),
        ) {
            dst.copy_from_slice(src);
        }
        if let Ok(b) = BaseBlock::read(&self.data) {
            self.hbins = b.bins_size;
        }
    }

    /// Make the base block consistent: both sequence numbers `seq`, file type primary, hive-bins
    /// size, flags bit 0 (new format), checksum.
    pub(crate) fn finish(&mut self, seq: u32, flags_bit: Option<u32>) {
        let d = &mut self.data;
        put_u32(d, field::PRIMARY_SEQ, seq);
        put_u32(d, field::SECONDARY_SEQ, seq);
        put_u32(d, field::FILE_TYPE, FILE_TYPE_PRIMARY);
        put_u32(d, field::BINS_SIZE, self.hbins);
        if let Some(bit) = flags_bit {
            let flags = u32_at(d, field::FLAGS).unwrap_or(0);
            put_u32(d, field::FLAGS, (flags & !1) | (bit & 1));
        }
        // The image is at least a base block long (replay refuses shorter primaries).
        let sum = compute_checksum(d);
        put_u32(d, field::CHECKSUM, sum);
    }
}
