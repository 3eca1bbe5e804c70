//! Reading a hive (or log) file into memory safely: bounded, and checked
//! against changes. A memory map of a file that another process truncates
//! faults (SIGBUS) on the pages past the new end; a read cannot, and the
//! file's identity taken before and after the read tells a torn copy from a
//! consistent one.

use crate::base::{BaseBlock, BASE_BLOCK_SIZE};
use crate::error::{Error, ErrorKind};
use std::fmt;
use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

/// The largest file the format can address: the base block and hive bins
/// whose cell offsets are 32-bit.
pub const MAX_HIVE_FILE: u64 = BASE_BLOCK_SIZE as u64 + u32::MAX as u64;

/// Reads of a file that keeps changing, before giving up on it.
const ATTEMPTS: u32 = 4;
/// Pause between two reads: long enough for a copy in progress to finish.
const PAUSE: Duration = Duration::from_millis(100);

/// Why a file could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// Opening or reading failed.
    Io(std::io::Error),
    /// Larger than memory allows.
    TooBig(u64),
    /// It kept changing (or was replaced) while it was read.
    Changed(String),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::TooBig(n) => write!(f, "cannot allocate {n} bytes to read it"),
            ReadError::Changed(why) => write!(
                f,
                "changed while it was read ({why}; {ATTEMPTS} attempts); not read this time"
            ),
        }
    }
}

impl std::error::Error for ReadError {}

impl From<ReadError> for Error {
    fn from(e: ReadError) -> Error {
        Error {
            kind: ErrorKind::Io(e.to_string()),
            offset: None,
        }
    }
}

type Result<T> = std::result::Result<T, ReadError>;

/// What says "the same file, unchanged": where it is (device and inode on
/// Unix), its size, and its times (on Unix the change time too, which a
/// writer cannot set back). [`read_stable`] compares it before and after a
/// read; regmon records it for a baseline it closed whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub dev: u64,
    pub ino: u64,
    /// Status-change time, nanoseconds since 1970 (0 off Unix).
    pub changed: i128,
    pub len: u64,
    /// Modification time, nanoseconds since 1970 (0 where unknown).
    pub modified: i128,
}

impl FileStamp {
    pub fn of(m: &Metadata) -> FileStamp {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        #[cfg(unix)]
        let (dev, ino, changed) = (
            m.dev(),
            m.ino(),
            i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        );
        #[cfg(not(unix))]
        let (dev, ino, changed) = (0, 0, 0);
        let modified = m
            .modified()
            .map_or(0, |t| match t.duration_since(UNIX_EPOCH) {
                Ok(d) => d.as_nanos() as i128,
                Err(e) => -(e.duration().as_nanos() as i128),
            });
        FileStamp {
            dev,
            ino,
            changed,
            len: m.len(),
            modified,
        }
    }

    /// The stamp of the file at `path`, if it can be read.
    pub fn of_path(path: &Path) -> Option<FileStamp> {
        std::fs::metadata(path).ok().map(|m| FileStamp::of(&m))
    }
}

/// How many bytes of a hive file to read, from its first bytes: a clean
/// base block's declared hive-bins size (what the reader uses), else as
/// much as the format allows (a dirty hive's logs may need all of it).
pub fn hive_read_limit(head: &[u8]) -> u64 {
    match BaseBlock::parse(head) {
        Ok(b) if !b.is_dirty() && b.bins_size != 0 => BASE_BLOCK_SIZE as u64 + b.bins_size as u64,
        _ => MAX_HIVE_FILE,
    }
}

/// Reads `path` into memory: at most `limit(first 4096 bytes)` bytes (and
/// never more than [`MAX_HIVE_FILE`]), the allocation checked (a huge size
/// is an error, not an abort). The file must be the same (device, inode,
/// size, times; and still the one at `path`, not replaced by a rename)
/// before and after the read; a file that changed is read again after a
/// pause, and after a few attempts refused with an error saying so.
pub fn read_stable(path: &Path, limit: impl Fn(&[u8]) -> u64) -> Result<Vec<u8>> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(PAUSE);
        }
        match read_once(path, &limit)? {
            Ok(data) => return Ok(data),
            Err(why) => last = why,
        }
    }
    Err(ReadError::Changed(last))
}

/// One read: the bytes, or (inner `Err`) what changed meanwhile.
fn read_once(
    path: &Path,
    limit: &impl Fn(&[u8]) -> u64,
) -> Result<std::result::Result<Vec<u8>, String>> {
    let mut file = File::open(path).map_err(ReadError::Io)?;
    let before = FileStamp::of(&file.metadata().map_err(ReadError::Io)?);
    let head_len = before.len.min(BASE_BLOCK_SIZE as u64);
    let mut data = Vec::new();
    read_into(&mut file, &mut data, head_len)?;
    let want = before
        .len
        .min(limit(&data).max(head_len))
        .min(MAX_HIVE_FILE);
    let rest = want.saturating_sub(data.len() as u64);
    read_into(&mut file, &mut data, rest)?;
    let after = FileStamp::of(&file.metadata().map_err(ReadError::Io)?);
    // A rename over the path or a removal: what we read is no longer the file.
    let now = std::fs::metadata(path).map(|m| FileStamp::of(&m));
    if data.len() as u64 != want {
        return Ok(Err(format!(
            "{} bytes read of {want}: it shrank",
            data.len()
        )));
    }
    if after != before {
        return Ok(Err(if after.len != before.len {
            format!("size {} -> {} bytes", before.len, after.len)
        } else {
            "written to".into()
        }));
    }
    match now {
        Ok(now) if now == after => Ok(Ok(data)),
        Ok(_) => Ok(Err("replaced".into())),
        Err(e) => Ok(Err(format!("gone: {e}"))),
    }
}

/// Appends up to `n` more bytes of `file` to `data`, reserving them first.
fn read_into(file: &mut File, data: &mut Vec<u8>, n: u64) -> Result<()> {
    let size = usize::try_from(n).map_err(|_| ReadError::TooBig(n))?;
    data.try_reserve_exact(size)
        .map_err(|_| ReadError::TooBig(n))?;
    file.take(n).read_to_end(data).map_err(ReadError::Io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_whole_file_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![7u8; 10_000]).unwrap();
        assert_eq!(read_stable(&p, |_| u64::MAX).unwrap().len(), 10_000);
        assert_eq!(read_stable(&p, |_| 5000).unwrap().len(), 5000);
        // Never less than the head that decides the limit.
        assert_eq!(read_stable(&p, |_| 0).unwrap().len(), 4096);
        std::fs::write(&p, b"").unwrap();
        assert!(read_stable(&p, |_| u64::MAX).unwrap().is_empty());
        assert!(read_stable(&dir.path().join("none"), |_| 1).is_err());
    }

    #[test]
    fn a_clean_base_block_bounds_the_read() {
        let tree = crate::write::KeyNode::new("R");
        let mut bytes = crate::write::to_bytes(&tree, &crate::write::WriteOptions::default());
        let exact = bytes.len() as u64;
        assert_eq!(hive_read_limit(&bytes), exact);
        bytes.extend([0u8; 8192]);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h");
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(
            read_stable(&p, hive_read_limit).unwrap().len() as u64,
            exact
        );
        assert_eq!(hive_read_limit(b"junk"), MAX_HIVE_FILE);
    }

    #[test]
    fn a_file_that_keeps_changing_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![1u8; 100_000]).unwrap();
        let n = std::cell::Cell::new(0u64);
        // The limit function runs mid-read: grow the file there each time.
        let e = read_stable(&p, |_| {
            n.set(n.get() + 1);
            std::fs::write(&p, vec![2u8; 100_000 + n.get() as usize]).unwrap();
            u64::MAX
        })
        .unwrap_err();
        assert!(matches!(e, ReadError::Changed(_)), "{e}");
        assert!(e.to_string().contains("changed while it was read"), "{e}");
        assert_eq!(n.get(), u64::from(ATTEMPTS));
        // Changed once, then stable: the second read is taken.
        let once = std::cell::Cell::new(false);
        let d = read_stable(&p, |_| {
            if !once.replace(true) {
                std::fs::write(&p, vec![3u8; 50]).unwrap();
            }
            u64::MAX
        })
        .unwrap();
        assert_eq!(d, vec![3u8; 50]);
    }
}
