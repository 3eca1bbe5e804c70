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
    },
    /// Written by a later regmon, in a layout this one does not know.
    LaterLayout {
        file: PathBuf,
        layout: String,
        known: u32,
    },
    /// Another configuration's input owns it (and that configuration still
    /// exists): sharing would rebuild it back and forth.
    Foreign(Box<Foreign>),
    /// A queued event's stored record could not be read back.
    Record { file: PathBuf, problem: String },
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
    /// A converter of SQLite errors on `file`, for `map_err`.
    pub fn sqlite(file: &std::path::Path) -> impl Fn(rusqlite::Error) -> BaselineError + Copy + '_ {
        move |source| BaselineError::Sqlite {
            file: file.to_path_buf(),
            source,
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
            BaselineError::Sqlite { file, source } => {
                write!(f, "baseline {}: {source}", file.display())
            }
            BaselineError::LaterLayout {
                file,
                layout,
                known,
            } => write!(
                f,
                "baseline {}: written by a later regmon (layout {layout}; this one knows {known})",
                file.display()
            ),
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
