//! Why a scan or a delivery stopped, as a type; the binary prints it.

use crate::baseline::BaselineError;
use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum RunError {
    /// The baseline database failed (see [`BaselineError`]).
    Baseline(BaselineError),
    /// A scan's values came out of identity order where they are sorted:
    /// a bug, reported rather than compared wrongly.
    Disorder,
    /// The baseline's lock file could not be made or taken.
    Lock {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
}

impl From<crate::baseline::MergeError> for RunError {
    fn from(e: crate::baseline::MergeError) -> Self {
        match e {
            crate::baseline::MergeError::Failed(e) => RunError::Baseline(e),
            crate::baseline::MergeError::Disorder => RunError::Disorder,
        }
    }
}

impl From<BaselineError> for RunError {
    fn from(e: BaselineError) -> Self {
        RunError::Baseline(e)
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Baseline(e) => e.fmt(f),
            RunError::Disorder => f.write_str("scan values out of order"),
            RunError::Lock { path, what, source } => {
                write!(f, "{what} {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Baseline(e) => Some(e),
            RunError::Lock { source, .. } => Some(source),
            RunError::Disorder => None,
        }
    }
}
