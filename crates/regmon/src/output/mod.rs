//! Where events go: the [`Output`] trait every output module implements,
//! and the table that builds them from the configuration.
//!
//! Delivery is driven by the baseline's outbox (see
//! `crate::baseline::outbox`): the runtime groups queued events by output
//! and target, asks the output to [`Output::prepare`] a batch, records the
//! batch's resume token (what the output needs to find, after a crash, how
//! much of the batch it already has), then [`Output::write`]s it and
//! forgets the events. A new output is one file here and one line in
//! [`OUTPUTS`] (and its directives, one entry in nxconf's module table).

pub mod file;

use nxconf::{ExecContext, Module, Record, Value};

/// Targets delivered per round: each round records its batches' resume
/// tokens in one transaction, and om_file keeps that many files open.
pub const TARGETS_PER_ROUND: usize = file::MAX_OPEN;

/// A batch ready to go: what [`Output::prepare`] decided.
pub enum Prepared {
    /// Write the batch from this byte on: a crash had cut an earlier
    /// delivery of it short (the rest was delivered already).
    Resume(usize),
    /// Write it all; the token is recorded in the outbox before writing
    /// (om_file: where the batch starts in its file).
    Fresh(u64),
}

/// An output module instance.
pub trait Output {
    /// The instance name (as configured).
    fn name(&self) -> &str;

    /// Where an event goes, evaluated over its record (after the output's
    /// Exec), under the current configuration.
    fn target(&self, rec: &Record, ctx: &mut dyn ExecContext) -> Result<String, String>;

    /// The target when it does not depend on the event.
    fn constant_target(&self) -> Option<&str>;

    /// The bytes of a batch of event lines, in the output's framing, and
    /// the lines actually to send (om_file's `Truncate` keeps the last).
    fn frame(&self, lines: &[&[u8]]) -> Vec<u8>;

    /// Which lines of a batch to send (all, unless the output keeps fewer).
    fn keep<'l>(&self, lines: &'l [&'l [u8]]) -> &'l [&'l [u8]] {
        lines
    }

    /// Gets ready to send `batch` to `target`. `resume`: the token recorded
    /// for this batch by a delivery a crash cut short, if any.
    fn prepare(
        &mut self,
        target: &str,
        batch: &[u8],
        resume: Option<u64>,
    ) -> Result<Prepared, OutputError>;

    /// Sends `bytes` (a batch, or the rest of one) to `target`.
    fn write(&mut self, target: &str, bytes: &[u8], fresh: bool) -> Result<(), OutputError>;

    /// An Exec procedure of this module (`reopen()`...); None when it has
    /// no such procedure.
    fn procedure(&mut self, name: &str, args: &[Value]) -> Option<Result<(), String>> {
        let _ = (name, args);
        None
    }

    /// A file this output may hold open was renamed or removed (file_cycle).
    fn forget(&mut self, path: &str) {
        let _ = path;
    }

    /// Closes what was not used for a while.
    fn close_idle(&mut self) {}

    /// Flushes everything (shutdown, end of `--once`).
    fn flush(&mut self) {}
}

/// A delivery problem: which output, what it was doing, and the system's
/// error when there is one. Its text names all three.
#[derive(Debug)]
pub struct OutputError {
    pub output: String,
    /// What failed, naming the target: "cannot open /var/log/x.log".
    pub what: String,
    pub source: Option<std::io::Error>,
}

impl OutputError {
    /// A converter of I/O errors of `output` doing `what`, for `map_err`.
    pub fn io(output: &str, what: String) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
        move |e| OutputError {
            output: output.to_string(),
            what,
            source: Some(e),
        }
    }
}

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "output '{}': {}", self.output, self.what)?;
        match &self.source {
            Some(e) => write!(f, ": {e}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for OutputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

/// Builds an output from its configured module, if the module is one.
type Build = fn(&Module) -> Option<Box<dyn Output>>;

/// The output modules regmon runs: one line each.
const OUTPUTS: &[Build] = &[file::build];

/// The output `m` configures, if it is an output module regmon runs.
pub fn build(m: &Module) -> Option<Box<dyn Output>> {
    OUTPUTS.iter().find_map(|b| b(m))
}
