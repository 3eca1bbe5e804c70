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
    /// Its outbox's bound (OutboxMaxSize or a pm_buffer on its routes).
    pub(crate) bound: Bound,
    /// `Incremental`: the schedule of full rehashes and the hints.
    pub(crate) incremental: Incremental,
}

/// When an `Incremental` input reads every value (a full rehash) and what
/// its other scans compare keys with.
#[derive(Debug)]
pub(crate) struct Incremental {
    /// `FullScanInterval` in seconds (0: never after the first).
    pub(crate) interval: u64,
    /// The next whole scan is a full rehash whatever the schedule says:
    /// the first scan of a service process. `--once` (cron) clears it, so
    /// such runs use hints until the interval is due.
    pub(crate) at_start: bool,
    /// The key stats of the last whole scan of this process, kept in
    /// memory (a service process): this scan's hints. None: from the
    /// baseline ([`crate::baseline::Baseline::key_hints`]).
    pub(crate) hints: Option<Arc<crate::model::KeyHints>>,
    /// Keep each whole scan's key stats as the next one's hints (a
    /// service); `--once` keeps none.
    pub(crate) keep_hints: bool,
}

impl Incremental {
    pub(crate) fn new(interval: u64) -> Incremental {
        Incremental {
            interval,
            at_start: true,
            hints: None,
            keep_hints: true,
        }
    }

    /// Whether a full rehash is due at `now` (ms since the epoch) after the
    /// last one at `last` (None: never, or not recorded). A clock that went
    /// back past `last` proves nothing: due.
    pub(crate) fn due(&self, last: Option<i64>, now: i64) -> bool {
        match last {
            None => true,
            Some(_) if self.at_start => true,
            Some(_) if self.interval == 0 => false,
            Some(t) => now < t || (now - t) / 1000 >= self.interval as i64,
        }
    }
}

/// The bound of one outbox: the global OutboxMaxSize, lowered by the
/// MaxSize of a pm_buffer on a route the outbox's events take, and the
/// WarnLimit of such a pm_buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Bound {
    /// Bytes of lines and records the outbox may hold.
    pub(crate) limit: u64,
    /// The pm_buffer whose MaxSize is `limit` (none: OutboxMaxSize).
    pub(crate) by: Option<String>,
    /// The pm_buffer whose WarnLimit applies, and that limit in bytes.
    pub(crate) warn: Option<(String, u64)>,
}

impl Bound {
    /// The bound of the outbox of input (or im_internal instance) `name`:
    /// the smallest of OutboxMaxSize (or its default) and the MaxSize of
    /// every pm_buffer on a route from it; the smallest WarnLimit of those.
    pub(crate) fn of(config: &nxconf::Config, name: &str) -> Bound {
        let mut b = Bound {
            limit: config
                .globals
                .outbox_max_size
                .unwrap_or(crate::baseline::OUTBOX_LIMIT),
            by: None,
            warn: None,
        };
        let routes = config
            .routes
            .iter()
            .filter(|r| r.inputs.iter().any(|i| i.eq_ignore_ascii_case(name)));
        for p in routes.flat_map(|r| &r.processors) {
            let Some((m, pb)) = config
                .modules
                .iter()
                .find(|m| m.name.eq_ignore_ascii_case(p))
                .and_then(|m| Some((m, m.pm_buffer()?)))
            else {
                continue;
            };
            if pb.max_size < b.limit {
                b.limit = pb.max_size;
                b.by = Some(m.name.clone());
            }
            if let Some(w) = pb.warn_limit {
                if b.warn.as_ref().is_none_or(|(_, cur)| w < *cur) {
                    b.warn = Some((m.name.clone(), w));
                }
            }
        }
        b
    }

    /// The bound as messages name it.
    pub(crate) fn describe(&self) -> String {
        match &self.by {
            Some(p) => format!("pm_buffer '{p}' MaxSize {} bytes", self.limit),
            None => format!("OutboxMaxSize {} bytes", self.limit),
        }
    }

    /// Says when an outbox holding `bytes` crossed the WarnLimit, up
    /// (a warning) or back down (a note), once per crossing: `over` is
    /// whether it was past it when last looked at; the new state when it
    /// changed.
    pub(crate) fn watch(&self, queue: &str, bytes: u64, over: bool) -> Option<bool> {
        let (buffer, warn) = self.warn.as_ref()?;
        if bytes > *warn && !over {
            tracing::warn!(
                input = %queue,
                "pm_buffer '{buffer}': the outbox of '{queue}' holds {bytes} bytes of undelivered events, over WarnLimit {warn} bytes (MaxSize {} bytes)",
                self.limit
            );
            Some(true)
        } else if bytes <= *warn && over {
            tracing::info!(
                input = %queue,
                "pm_buffer '{buffer}': the outbox of '{queue}' is back under WarnLimit {warn} bytes ({bytes} bytes undelivered)"
            );
            Some(false)
        } else {
            None
        }
    }
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

#[cfg(test)]
mod tests {
    use super::Incremental;

    #[test]
    fn a_full_rehash_is_due_at_start_after_the_interval_and_when_the_clock_went_back() {
        let mut inc = Incremental::new(60);
        assert!(
            inc.due(Some(1_000_000), 1_000_001),
            "first scan of a process"
        );
        inc.at_start = false;
        assert!(inc.due(None, 5), "never rehashed");
        assert!(!inc.due(Some(1_000_000), 1_000_000 + 59_999));
        assert!(inc.due(Some(1_000_000), 1_000_000 + 60_000));
        assert!(inc.due(Some(1_000_000), 999_999), "the clock went back");
        let mut never = Incremental::new(0);
        never.at_start = false;
        assert!(!never.due(Some(1), 1 << 40));
        assert!(never.due(None, 1));
    }
}
