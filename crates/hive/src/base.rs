//! The 4096-byte base block at the start of every hive file.

use crate::error::{Error, ErrorKind, Result};

pub const BASE_BLOCK_SIZE: usize = 4096;

/// The fields of the base block that a reader needs or a user asks about.
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
}

impl BaseBlock {
    pub fn parse(data: &[u8]) -> Result<BaseBlock> {
        if data.len() < 512 {
            return Err(Error::at(
                ErrorKind::BadBaseBlock(format!("file is {} bytes, too small", data.len())),
                0,
            ));
        }
        if &data[0..4] != b"regf" {
            return Err(Error::at(
                ErrorKind::BadBaseBlock("no 'regf' signature".into()),
                0,
            ));
        }
        let u = |o: usize| u32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]);
        let name_units: Vec<u16> = data[48..112]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        let checksum = u(508);
        Ok(BaseBlock {
            primary_seq: u(4),
            secondary_seq: u(8),
            last_written: u64::from(u(12)) | (u64::from(u(16)) << 32),
            major: u(20),
            minor: u(24),
            file_type: u(28),
            format: u(32),
            root_offset: u(36),
            bins_size: u(40),
            clustering: u(44),
            file_name: String::from_utf16_lossy(&name_units),
            checksum,
            checksum_ok: checksum == compute_checksum(data),
        })
    }

    /// Dirty: the last write did not complete (sequence numbers differ) or
    /// the base block itself is damaged. The transaction logs hold the rest.
    pub fn is_dirty(&self) -> bool {
        !self.checksum_ok || self.primary_seq != self.secondary_seq
    }

    pub fn version(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
}

/// XOR of the first 127 dwords, with 0 and 0xFFFFFFFF remapped as Windows does.
/// `data` must hold at least 508 bytes.
pub fn compute_checksum(data: &[u8]) -> u32 {
    let x = data[..508].chunks_exact(4).fold(0u32, |a, c| {
        a ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]])
    });
    match x {
        0xFFFF_FFFF => 0xFFFF_FFFE,
        0 => 1,
        x => x,
    }
}
