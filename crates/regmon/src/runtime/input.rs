//! An input and an output as the runtime holds them, and who may use an
//! input's baseline.

use crate::baseline::{Baseline, BaselineError, Foreign};
use crate::config::{Schema, Scope};
use crate::output::{Backoff, Output};
use crate::path::region::Region;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

/// One im_regmon input.
pub struct Input {
    pub name: String,
    pub(crate) schema: Schema,
    pub(crate) module: usize,
    pub scope: Scope,
    /// A canonical text of what decides the set of watched values
    /// (RegValue, Exclude, Recursive, 64BitView, HiveFile, Digest): a
    /// change means a new baseline.
    pub(crate) scope_key: String,
    /// A canonical text of what decides the data kept beside digests
    /// (ReportData, MaxDataSize, NoDataFor): a change rewrites the kept
    /// data at the next whole scan, with no events.
    pub(crate) data_key: String,
    /// Who owns the baseline: the canonical configuration file and the
    /// input's name, one per line.
    pub(crate) owner: String,
    pub(crate) scan_interval: u64,
    pub(crate) realtime: bool,
    pub(crate) baseline_path: PathBuf,
    pub(crate) baseline: Option<Baseline>,
    /// Output indexes this input's events go to (through routes).
    pub(crate) routes: Vec<usize>,
    /// Set by start_scan(): scan soon.
    pub(crate) requested: Arc<AtomicBool>,
    /// Regions a Realtime notification named: rescan them soon.
    pub(crate) changed: Arc<Mutex<Vec<Region>>>,
    /// Events may wait in the outbox (a delivery left some): the loop
    /// tries again when their output's backoff is over.
    pub(crate) undelivered: bool,
    /// Values found by the last scan (a capacity hint for the next).
    pub(crate) last_count: usize,
}

/// An output of the configuration, as the runtime holds it.
pub(crate) struct OutputSlot {
    pub(crate) module: usize,
    /// The instance name (as configured).
    pub(crate) name: String,
    /// In a cell: Exec code (reopen(), rotate_to()) reaches it while the
    /// runtime reads the configuration beside it.
    pub(crate) sink: RefCell<Box<dyn Output>>,
    /// The wait before the next delivery attempt after failures.
    pub(crate) backoff: RefCell<Backoff>,
}

/// Makes `owner` (configuration file and input) the owner of baseline `b`,
/// unless another configuration that still exists owns it: two inputs
/// sharing one baseline would each rebuild it for their own scope, and no
/// change would ever be reported.
pub(crate) fn claim(b: &mut Baseline, owner: &str) -> Result<(), BaselineError> {
    match b.meta("owner")? {
        Some(o) if o == owner => Ok(()),
        Some(o) => {
            let (file, input) = o.split_once('\n').unwrap_or((&o, ""));
            let (my_file, my_input) = owner.split_once('\n').unwrap_or((owner, ""));
            if Path::new(file).exists() {
                return Err(BaselineError::Foreign(Box::new(Foreign {
                    file: b.file().to_path_buf(),
                    owner: (file.to_string(), input.to_string()),
                    claimant: (my_file.to_string(), my_input.to_string()),
                })));
            }
            tracing::warn!(
                "baseline {} belonged to input '{input}' of {file}, which no longer exists; \
                 input '{my_input}' of {my_file} takes it over",
                b.file().display()
            );
            b.set_meta("owner", Some(owner))
        }
        None => b.set_meta("owner", Some(owner)),
    }
}

pub(crate) fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
