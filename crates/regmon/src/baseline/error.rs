//! What can go wrong with a baseline database, as a type: the runtime
//! decides what to do by kind (and prints it only at the edge).

use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum BaselineError {
    /// The cache folder could not be created.
    Folder {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// The database could not be opened.
    Open {
        file: PathBuf,
        source: rusqlite::Error,
    },
    /// SQLite failed on an open database (a damaged file, a full disk...).
    Sqlite {
        file: PathBuf,
        source: rusqlite::Error,
        /// After an I/O error: the free space of the disk holding the file
        /// (SQLite says only "disk I/O error" when a write finds it full).
        free: Option<u64>,
    },
    /// Another configuration's input owns it (and that configuration still
    /// exists): sharing would rebuild it back and forth.
    Foreign(Box<Foreign>),
    /// A queued event's stored record could not be read back.
    Record { file: PathBuf, problem: String },
    /// The baseline cannot be trusted (see [`Fault`]): the runtime moves it
    /// aside and starts a new one.
    Damaged { file: PathBuf, fault: Fault },
}

/// Why a baseline cannot be used (and is replaced rather than stopping
/// monitoring).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Not a database, or SQLite found it damaged (the message).
    Damaged(String),
    /// Written by a later regmon in a layout this one does not know.
    LaterLayout { layout: String, known: u32 },
    /// Written on another host (its name).
    OtherHost(String),
    /// The rows or `meta` do not match their keyed checksums.
    Tampered(String),
    /// An older copy than the last one written (fewer commits than its
    /// side record), or emptied.
    RolledBack { found: u64, recorded: u64 },
    /// Gone, although this input had one.
    Missing,
}

impl Fault {
    /// One word for the event's `BaselineRestartReason` and the moved file's name.
    pub fn word(&self) -> &'static str {
        match self {
            Fault::Damaged(_) => "damaged",
            Fault::LaterLayout { .. } => "later-layout",
            Fault::OtherHost(_) => "other-host",
            Fault::Tampered(_) => "tampered",
            Fault::RolledBack { .. } => "rolled-back",
            Fault::Missing => "missing",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Damaged(m) => write!(f, "damaged: {m}"),
            Fault::LaterLayout { layout, known } => write!(
                f,
                "written by a later regmon (layout {layout}; this one knows {known})"
            ),
            Fault::OtherHost(h) => write!(f, "written on another host ({h})"),
            Fault::Tampered(m) => write!(f, "tampered with: {m}"),
            Fault::RolledBack { found, recorded } => write!(
                f,
                "an older copy than the last one written (commit {found}, recorded {recorded}): \
                 restored, rolled back or emptied"
            ),
            Fault::Missing => f.write_str("missing, although this input had one (deleted)"),
        }
    }
}

/// A baseline another input owns (see [`BaselineError::Foreign`]).
#[derive(Debug)]
pub struct Foreign {
    pub file: PathBuf,
    /// Owner: configuration file and input.
    pub owner: (String, String),
    /// Who asked: configuration file and input.
    pub claimant: (String, String),
}

impl BaselineError {
    /// Why this error means the baseline must be replaced, if it does: a
    /// file SQLite cannot read as a database or finds damaged, or a
    /// [`BaselineError::Damaged`]. (A full disk or a permission problem is
    /// not the file's fault: it stays an error.)
    pub fn fault(&self) -> Option<Fault> {
        use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
        match self {
            BaselineError::Damaged { fault, .. } => Some(fault.clone()),
            BaselineError::Open { source, .. } | BaselineError::Sqlite { source, .. } => {
                match source.sqlite_error_code() {
                    Some(DatabaseCorrupt | NotADatabase) => {
                        Some(Fault::Damaged(source.to_string()))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// A converter of SQLite errors on `file`, for `map_err`.
    pub fn sqlite(file: &std::path::Path) -> impl Fn(rusqlite::Error) -> BaselineError + Copy + '_ {
        move |source| {
            let io = matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure)
            );
            let free = io
                .then(|| file.parent().and_then(|d| fs4::available_space(d).ok()))
                .flatten();
            BaselineError::Sqlite {
                file: file.to_path_buf(),
                source,
                free,
            }
        }
    }
}

impl fmt::Display for BaselineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BaselineError::Folder { dir, source } => {
                write!(f, "cannot create cache folder {}: {source}", dir.display())
            }
            BaselineError::Open { file, source } => {
                write!(f, "cannot open baseline {}: {source}", file.display())
            }
            BaselineError::Sqlite { file, source, free } => {
                write!(f, "baseline {}: {source}", file.display())?;
                match free {
                    // Less than SQLite needs for a page and its journal.
                    Some(n) if *n < 1 << 16 => {
                        write!(f, " (no space left on the disk holding it: {n} bytes free)")
                    }
                    _ => Ok(()),
                }
            }
            BaselineError::Foreign(x) => write!(
                f,
                "baseline {} belongs to input '{}' of {}; input '{}' of {} cannot share it: \
                 give one of the configurations its own CacheDir, or the input another name",
                x.file.display(),
                x.owner.1,
                x.owner.0,
                x.claimant.1,
                x.claimant.0
            ),
            BaselineError::Record { file, problem } => {
                write!(f, "baseline {}: {problem}", file.display())
            }
            BaselineError::Damaged { file, fault } => {
                write!(f, "baseline {}: {fault}", file.display())
            }
        }
    }
}

impl std::error::Error for BaselineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BaselineError::Folder { source, .. } => Some(source),
            BaselineError::Open { source, .. } | BaselineError::Sqlite { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }
}

/// The runtime still reports in text; this is where a baseline error
/// becomes one.
impl From<BaselineError> for String {
    fn from(e: BaselineError) -> String {
        e.to_string()
    }
}
