//! An open hive: its base block and its cells, over borrowed bytes or an owned file.

use crate::base::{BaseBlock, BASE_BLOCK_SIZE};
use crate::cells::Cells;
use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use std::path::Path;

/// A hive over a borrowed byte slice (zero-copy; a memory map in practice).
#[derive(Clone)]
pub struct Hive<'a> {
    data: &'a [u8],
    base: BaseBlock,
    cells: Cells<'a>,
    warnings: Vec<String>,
}

impl<'a> Hive<'a> {
    /// Parses the base block and locates the hive-bins data. Cells are
    /// decoded lazily, so opening costs nothing whatever the hive's size.
    pub fn new(data: &'a [u8]) -> Result<Hive<'a>> {
        let base = BaseBlock::parse(data)?;
        let mut warnings = Vec::new();
        if !base.checksum_ok {
            warnings.push(format!(
                "base block checksum is {:#010x}, stored {:#010x}",
                crate::base::compute_checksum(data),
                base.checksum
            ));
        }
        if data.len() < BASE_BLOCK_SIZE {
            return Err(Error::at(
                ErrorKind::Truncated(format!("hive: {} bytes, no hive bins", data.len())),
                0,
            ));
        }
        let avail = data.len() - BASE_BLOCK_SIZE;
        let declared = base.bins_size as usize;
        // Trust the declared size when it fits; a truncated file or a zeroed
        // field falls back to what is there, with a warning.
        let len = if declared == 0 || declared > avail {
            warnings.push(format!(
                "base block declares {declared} bytes of hive bins, file holds {avail}"
            ));
            avail
        } else {
            declared
        };
        let cells = Cells {
            bins: &data[BASE_BLOCK_SIZE..BASE_BLOCK_SIZE + len],
        };
        Ok(Hive {
            data,
            base,
            cells,
            warnings,
        })
    }

    pub fn base_block(&self) -> &BaseBlock {
        &self.base
    }

    /// The whole file as given.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    pub fn cells(&self) -> Cells<'a> {
        self.cells
    }

    /// Problems found while opening (checksum, sizes) that did not stop it.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn is_dirty(&self) -> bool {
        self.base.is_dirty()
    }

    /// The root key.
    pub fn root(&self) -> Result<Key<'a>> {
        if self.base.major != 1 || self.base.minor < 3 {
            return Err(Error::at(
                ErrorKind::UnsupportedVersion {
                    major: self.base.major,
                    minor: self.base.minor,
                },
                20,
            ));
        }
        Key::parse(self.cells, self.base.root_offset)
    }
}

/// A hive file owned in memory: memory-mapped from disk, or bytes (e.g. the
/// result of replaying transaction logs).
pub struct HiveFile {
    storage: Storage,
}

enum Storage {
    Map(memmap2::Mmap),
    Bytes(Vec<u8>),
}

impl HiveFile {
    /// Maps the file read-only.
    pub fn open(path: &Path) -> Result<HiveFile> {
        let file = std::fs::File::open(path).map_err(Error::io)?;
        let len = file.metadata().map_err(Error::io)?.len();
        if len == 0 {
            // Mapping an empty file fails on some systems; an empty Vec reads the same.
            return Ok(HiveFile::from_bytes(Vec::new()));
        }
        // SAFETY: the map is read-only. Another process truncating the file while
        // it is mapped could fault; hive files are copies or exclusively held by the
        // OS in practice, and reading a live file races regardless of the method.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(Error::io)?;
        Ok(HiveFile {
            storage: Storage::Map(map),
        })
    }

    pub fn from_bytes(bytes: Vec<u8>) -> HiveFile {
        HiveFile {
            storage: Storage::Bytes(bytes),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.storage {
            Storage::Map(m) => m,
            Storage::Bytes(b) => b,
        }
    }

    pub fn hive(&self) -> Result<Hive<'_>> {
        Hive::new(self.bytes())
    }
}
