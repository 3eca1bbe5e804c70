//! One error type for everything the reader can find wrong with a hive.

use std::fmt;

/// What went wrong, and where: `offset` is a file offset (not a cell offset),
/// so a user can find the spot with a hex editor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    /// File offset of the structure at fault, when there is one.
    pub offset: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be read (open, map).
    Io(String),
    /// Not a REGF file, or its base block is unusable.
    BadBaseBlock(String),
    /// A format version this reader does not parse.
    UnsupportedVersion { major: u32, minor: u32 },
    /// A cell offset points outside the hive-bins data.
    OffsetOutOfRange,
    /// The cell's size field is zero, misaligned or runs past its bin.
    BadCell(String),
    /// A cell does not carry the signature its referrer expects.
    BadSignature {
        expected: &'static str,
        found: [u8; 2],
    },
    /// A structure is shorter than its own fields say.
    Truncated(String),
    /// A count is larger than the cell holding it allows.
    BadCount(String),
    /// A subkey list references itself or an ancestor, or nests too deep.
    Cycle,
    /// Value data is inconsistent (size, big-data segments).
    BadData(String),
}

impl Error {
    pub(crate) fn at(kind: ErrorKind, offset: u64) -> Self {
        Error {
            kind,
            offset: Some(offset),
        }
    }
    pub(crate) fn io(e: std::io::Error) -> Self {
        Error {
            kind: ErrorKind::Io(e.to_string()),
            offset: None,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Io(s) => write!(f, "{s}"),
            ErrorKind::BadBaseBlock(s) => write!(f, "bad base block: {s}"),
            ErrorKind::UnsupportedVersion { major, minor } => {
                write!(f, "unsupported hive format version {major}.{minor}")?;
                if *major == 1 && *minor < 3 {
                    write!(f, " (Windows NT 3.x layout)")?;
                }
                Ok(())
            }
            ErrorKind::OffsetOutOfRange => write!(f, "cell offset out of range"),
            ErrorKind::BadCell(s) => write!(f, "bad cell: {s}"),
            ErrorKind::BadSignature { expected, found } => write!(
                f,
                "expected a '{expected}' cell, found signature {:02x} {:02x}",
                found[0], found[1]
            ),
            ErrorKind::Truncated(s) => write!(f, "truncated {s}"),
            ErrorKind::BadCount(s) => write!(f, "bad count: {s}"),
            ErrorKind::Cycle => write!(f, "cyclic or over-nested subkey structure"),
            ErrorKind::BadData(s) => write!(f, "bad value data: {s}"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(o) => write!(f, "{} at hive offset {:#x}", self.kind, o),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
