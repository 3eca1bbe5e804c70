//! Where events go: the [`Output`] trait every output module implements,
//! and the table that builds them from the configuration.
//!
//! Delivery is driven by the baseline's outbox (see
//! `crate::baseline::outbox`): the runtime groups queued events by output
//! and target and hands each batch to the output's [`Sink`]: a
//! [`FileSink`] is asked to prepare the batch, its resume token (what the
//! output needs to find, after a crash, how much of the batch it already
//! has) is recorded, then it is written and the events forgotten; a
//! [`StreamSink`] sends and says how many events went, the rest waiting
//! for the next attempt after a [`Backoff`]. A new output is one file here and one line in
//! [`OUTPUTS`] (and its directives, one entry in nxconf's module table).

pub mod file;
pub mod gelf;
pub mod http;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod net;
pub mod ssl;
pub mod tcp;
pub mod tls;
pub mod udp;

use nxconf::{ExecContext, Module, Record, Value};
use std::time::{Duration, Instant};

/// Targets delivered per round: each round records its batches' resume
/// tokens in one transaction, and om_file keeps that many files open.
pub const TARGETS_PER_ROUND: usize = file::MAX_OPEN;

/// The longest wait between attempts at a file output that failed (a
/// scan tries again anyway).
pub const FILE_BACKOFF: Duration = Duration::from_secs(60);

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
    /// Exec), under the current configuration. Outputs with one destination
    /// (the network outputs) return their constant target.
    /// The default: one destination for every event (the network outputs).
    fn target(&self, rec: &Record, ctx: &mut dyn ExecContext) -> Result<String, String> {
        let _ = (rec, ctx);
        Ok(String::new())
    }

    /// The target when it does not depend on the event (by default, the
    /// one destination).
    fn constant_target(&self) -> Option<&str> {
        Some("")
    }

    /// The bytes queued for one event, from its record after the output's
    /// Exec: `$raw_event` (given as text) for most outputs; an output type
    /// that formats the record itself (GELF) builds them here.
    fn payload(&self, rec: &Record, raw_event: String) -> Vec<u8> {
        let _ = rec;
        raw_event.into_bytes()
    }

    /// How the output takes batches.
    fn sink(&mut self) -> Sink<'_>;

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

/// The two ways an output takes a batch.
pub enum Sink<'a> {
    /// Writes whose start is recorded first, so a crash mid-batch resumes
    /// without repeating a line (om_file).
    File(&'a mut dyn FileSink),
    /// Sends that report how many events the transport took (network).
    Stream(&'a mut dyn StreamSink),
}

/// An output that writes batches it can find again after a crash.
pub trait FileSink {
    /// The bytes of a batch of event lines, in the output's framing.
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
}

/// An output that sends events over a connection (or datagrams) and knows
/// how many of them went.
pub trait StreamSink {
    /// Sends `events` (each one event's payload, as queued) in order.
    /// Returns within bounded time (connect, write and response timeouts):
    /// the runtime's loop waits for it.
    fn send(&mut self, events: &[&[u8]]) -> Sent;

    /// The longest wait between attempts after failures (NXLog: 200 s for
    /// om_tcp, om_udp and om_ssl; 20 minutes for om_http).
    fn max_backoff(&self) -> Duration {
        Duration::from_secs(200)
    }
}

/// What became of events handed to [`StreamSink::send`].
#[derive(Debug, Default)]
pub struct Sent {
    /// Events, from the first, that the transport took or the receiver
    /// confirmed: removed from the outbox.
    pub done: usize,
    /// Among those, events the receiver refused for good (HTTP 4xx other
    /// than 408 and 429): (index, why). They go to the dead-letter file.
    pub rejected: Vec<(usize, String)>,
    /// Why the rest were not sent (refused, reset, timeout, 5xx...): they
    /// stay queued and are retried after a backoff.
    pub error: Option<OutputError>,
}

/// Doubling waits between delivery attempts of one output after failures:
/// 1 s, 2 s, 4 s... up to the output's maximum; back to none on success.
#[derive(Debug, Default)]
pub struct Backoff {
    delay: Duration,
    next: Option<Instant>,
}

impl Backoff {
    /// May the output be tried at `now`?
    pub fn ready(&self, now: Instant) -> bool {
        self.next.is_none_or(|t| now >= t)
    }

    /// A failed attempt at `now`: the wait before the next one.
    pub fn failed(&mut self, now: Instant, max: Duration) -> Duration {
        self.delay = if self.delay.is_zero() {
            Duration::from_secs(1)
        } else {
            (self.delay * 2).min(max)
        }
        .min(max);
        self.next = Some(now + self.delay);
        self.delay
    }

    /// A successful attempt.
    pub fn succeeded(&mut self) {
        self.delay = Duration::ZERO;
        self.next = None;
    }
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
const OUTPUTS: &[Build] = &[
    file::build,
    tcp::build,
    udp::build,
    http::build,
    ssl::build,
    #[cfg(feature = "kafka")]
    kafka::build,
];

/// The output `m` configures, if it is an output module regmon runs.
pub fn build(m: &Module) -> Option<Box<dyn Output>> {
    OUTPUTS.iter().find_map(|b| b(m))
}

/// Why this regmon cannot run the output `m` configures (a module left out
/// of this build by a cargo feature), so it refuses to start rather than
/// drop the events routed to it.
pub fn missing(m: &Module) -> Option<String> {
    #[cfg(not(feature = "kafka"))]
    if matches!(m.settings, nxconf::ModuleSettings::OmKafka(_)) {
        return Some(format!(
            "{}: <Output {}> uses om_kafka, but this regmon was built without om_kafka; build with --features kafka",
            m.location, m.name
        ));
    }
    let _ = m;
    None
}

#[cfg(test)]
mod tests {
    /// A configuration using an output left out of this build is refused,
    /// naming the place and the cargo feature.
    #[test]
    fn an_output_left_out_of_the_build_is_named() {
        let text = "<Output k>\nModule om_kafka\nBrokerList 127.0.0.1:9092\nTopic t\n</Output>\n";
        let cfg = nxconf::parse_str(text, "k.conf").expect("valid");
        let m = cfg.module("k").expect("k");
        let missing = super::missing(m);
        if cfg!(feature = "kafka") {
            assert!(missing.is_none());
            assert!(super::build(m).is_some());
        } else {
            let e = missing.expect("refused");
            assert!(e.starts_with("k.conf:1"), "{e}");
            assert!(e.contains("build with --features kafka"), "{e}");
        }
    }
}
