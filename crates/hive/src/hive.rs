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

/// A hive file owned in memory: read from disk (or, on Windows, mapped
/// while nobody else may write it), or bytes (e.g. the result of replaying
/// transaction logs).
pub struct HiveFile {
    storage: Storage,
}

enum Storage {
    Map(memmap2::Mmap),
    Bytes(Vec<u8>),
}

impl HiveFile {
    /// Opens `path` in a way nothing done to the file meanwhile can fault:
    /// on Windows a memory map of the file opened with read sharing only
    /// (no one can then write, truncate or delete it while it is mapped),
    /// else, or when another process holds it open for writing, a checked
    /// read into memory ([`HiveFile::read`]).
    pub fn open(path: &Path) -> Result<HiveFile> {
        #[cfg(windows)]
        {
            use std::os::windows::fs::OpenOptionsExt;
            const FILE_SHARE_READ: u32 = 1;
            const ERROR_SHARING_VIOLATION: i32 = 32;
            match std::fs::OpenOptions::new()
                .read(true)
                .share_mode(FILE_SHARE_READ)
                .open(path)
            {
                Ok(file) => {
                    if file.metadata().map_err(Error::io)?.len() == 0 {
                        return Ok(HiveFile::from_bytes(Vec::new()));
                    }
                    // SAFETY: the handle denies write and delete sharing, so
                    // while it (and the map, which keeps the file open) lives
                    // no other process can change the mapped bytes; Windows
                    // also refuses to truncate a mapped file.
                    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(Error::io)?;
                    return Ok(HiveFile {
                        storage: Storage::Map(map),
                    });
                }
                Err(e) if e.raw_os_error() == Some(ERROR_SHARING_VIOLATION) => {}
                Err(e) => return Err(Error::io(e)),
            }
        }
        HiveFile::read(path)
    }

    /// Reads the file into memory (at most what its base block declares,
    /// or the format allows), checking it did not change or get replaced
    /// during the read: see [`crate::file::read_stable`].
    pub fn read(path: &Path) -> Result<HiveFile> {
        crate::file::read_stable(path, crate::file::hive_read_limit)
            .map(HiveFile::from_bytes)
            .map_err(Error::from)
    }

    /// Maps the file read-only, as earlier versions did: the fastest open,
    /// kept for benchmarks.
    ///
    /// # Safety
    ///
    /// The file must not be truncated while the map lives (a read past the
    /// new end faults: SIGBUS on Unix), and bytes written to it meanwhile
    /// show through. Use [`HiveFile::open`] unless the file is known stable.
    pub unsafe fn map(path: &Path) -> Result<HiveFile> {
        let file = std::fs::File::open(path).map_err(Error::io)?;
        let len = file.metadata().map_err(Error::io)?.len();
        if len == 0 {
            // Mapping an empty file fails on some systems; an empty Vec reads the same.
            return Ok(HiveFile::from_bytes(Vec::new()));
        }
        // SAFETY: read-only map; the caller guarantees the file is stable.
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
