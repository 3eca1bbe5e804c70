//! The base block at the start of every hive file and transaction log: the
//! crate's one parser of it, for primary files (`Hive`) and transaction logs
//! (`replay`) alike, and the one dirtiness rule.

use crate::bytes::{u32_words, utf16_units, Reader};
use crate::error::{Error, ErrorKind, Result};

/// Size of a primary file's base block; the hive bins follow it.
pub const BASE_BLOCK_SIZE: usize = 4096;
/// The part of a base block that holds fields and is checksummed; a
/// transaction log stores only this much before its own data.
pub const LOG_BASE_BLOCK_SIZE: usize = 512;

/// `file_type` of a primary file.
pub(crate) const FILE_TYPE_PRIMARY: u32 = 0;
/// `file_type` of an XP to 8.0 log (`DIRT` bitmap).
pub(crate) const FILE_TYPE_LOG_OLD: u32 = 1;
/// `file_type` of an NT 3.x / 2000 log (same layout as type 1).
pub(crate) const FILE_TYPE_LOG_VERY_OLD: u32 = 2;
/// `file_type` of a Windows 8.1+ log (`HvLE` entries).
pub(crate) const FILE_TYPE_LOG_NEW: u32 = 6;

/// Offsets of the base-block fields that replay writes back.
pub(crate) mod field {
    pub const PRIMARY_SEQ: usize = 4;
    pub const SECONDARY_SEQ: usize = 8;
    pub const FILE_TYPE: usize = 28;
    pub const BINS_SIZE: usize = 40;
    pub const FLAGS: usize = 144;
    pub const CHECKSUM: usize = 508;
}

/// The fields of a base block (the first 512 bytes), named as in the format
/// specification, in on-disk order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseBlock {
    pub primary_seq: u32,
    pub secondary_seq: u32,
    /// Last-written time (FILETIME). Windows 8.1+ stops updating it.
    pub last_written: u64,
    pub major: u32,
    pub minor: u32,
    /// 0 primary, 1 old-format log, 2 NT 3.x log, 6 new-format log.
    pub file_type: u32,
    pub format: u32,
    /// Cell offset of the root key, relative to the hive-bins data.
    pub root_offset: u32,
    /// Size of the hive-bins data as the base block declares it.
    pub bins_size: u32,
    pub clustering: u32,
    /// The embedded file name (UTF-16LE, up to 32 units), lossy.
    pub file_name: String,
    pub checksum: u32,
    pub checksum_ok: bool,
    /// `regf`, or whatever a damaged file holds there.
    pub(crate) signature: [u8; 4],
    /// The embedded file name exactly as stored, for comparing a log's with
    /// its primary's.
    pub(crate) file_name_raw: [u8; 64],
    /// Resource-manager GUID; meaningful when `guid_signature` is `rmtm`.
    pub(crate) rm_id: [u8; 16],
    pub(crate) guid_signature: [u8; 4],
}

impl BaseBlock {
    /// Parses the base block of a primary file or log; it must be at least
    /// 512 bytes long and start with `regf`.
    pub fn parse(data: &[u8]) -> Result<BaseBlock> {
        let b = Self::read(data)?;
        if !b.signature_ok() {
            return Err(Error::at(
                ErrorKind::BadBaseBlock("no 'regf' signature".into()),
                0,
            ));
        }
        Ok(b)
    }

    /// Like [`BaseBlock::parse`] without the signature check, so replay can
    /// say which of the two a log fails.
    pub(crate) fn read(data: &[u8]) -> Result<BaseBlock> {
        let Some(block) = data.get(..LOG_BASE_BLOCK_SIZE) else {
            return Err(Error::at(
                ErrorKind::BadBaseBlock(format!("file is {} bytes, too small", data.len())),
                0,
            ));
        };
        let mut r = Reader::new(block, "base block", 0);
        let signature = r.array()?;
        let primary_seq = r.u32()?;
        let secondary_seq = r.u32()?;
        let last_written = r.u64()?;
        let major = r.u32()?;
        let minor = r.u32()?;
        let file_type = r.u32()?;
        let format = r.u32()?;
        let root_offset = r.u32()?;
        let bins_size = r.u32()?;
        let clustering = r.u32()?;
        let file_name_raw: [u8; 64] = r.array()?;
        let rm_id = r.array()?;
        let _log_id: [u8; 16] = r.array()?;
        let _flags = r.u32()?;
        let _tm_id: [u8; 16] = r.array()?;
        let guid_signature = r.array()?;
        let _last_reorganized = r.u64()?;
        r.bytes(field::CHECKSUM - 176)?;
        let checksum = r.u32()?;
        let name_units: Vec<u16> = utf16_units(&file_name_raw)
            .take_while(|&u| u != 0)
            .collect();
        Ok(BaseBlock {
            primary_seq,
            secondary_seq,
            last_written,
            major,
            minor,
            file_type,
            format,
            root_offset,
            bins_size,
            clustering,
            file_name: String::from_utf16_lossy(&name_units),
            checksum,
            checksum_ok: checksum == compute_checksum(block),
            signature,
            file_name_raw,
            rm_id,
            guid_signature,
        })
    }

    pub(crate) fn signature_ok(&self) -> bool {
        &self.signature == b"regf"
    }

    /// Signature and checksum both right: the fields can be trusted.
    pub(crate) fn is_valid(&self) -> bool {
        self.signature_ok() && self.checksum_ok
    }

    /// Dirty: the last write did not complete (sequence numbers differ) or
    /// the base block itself is damaged. The transaction logs hold the rest.
    pub fn is_dirty(&self) -> bool {
        !self.is_valid() || self.primary_seq != self.secondary_seq
    }

    /// The resource-manager GUID, when one is recorded (`rmtm`, non-zero).
    pub(crate) fn rm_id(&self) -> Option<[u8; 16]> {
        (&self.guid_signature == b"rmtm" && self.rm_id != [0u8; 16]).then_some(self.rm_id)
    }

    pub fn version(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
}

/// Whether a file needs recovery from its logs: base block unreadable
/// (shorter than 512 bytes, no `regf`), checksum wrong, or sequence numbers
/// differ.
pub fn is_dirty(file: &[u8]) -> bool {
    BaseBlock::parse(file).map_or(true, |b| b.is_dirty())
}

/// XOR of the first 127 dwords, with 0 and 0xFFFFFFFF remapped as Windows does.
/// A shorter `data` (never a valid base block) is summed over the dwords it has.
pub fn compute_checksum(data: &[u8]) -> u32 {
    let block = data.get(..field::CHECKSUM).unwrap_or(data);
    let x = u32_words(block).fold(0u32, |a, w| a ^ w);
    match x {
        0xFFFF_FFFF => 0xFFFF_FFFE,
        0 => 1,
        x => x,
    }
}
