//! im_internal: regmon's own log records (warnings, errors, scan
//! summaries, at or above the global LogLevel) as events, with the fields
//! NXLog's im_internal gives them, routed like any other input's events.
//!
//! A tracing layer ([`layer`]) copies each record into a bounded buffer;
//! the runtime takes them from there ([`take`]), runs them through the
//! im_internal instance's Exec and queues them in that instance's own
//! outbox (a SQLite file in CacheDir, the same outbox as an input's), from
//! which they are delivered like change events.
//!
//! No loop: records logged while the runtime handles internal events
//! (queueing, delivering, their Exec) are not captured ([`Quiet`]); they
//! still reach LogFile.

use super::input::Bound;
use crate::baseline::Baseline;
use chrono::{DateTime, Utc};
use nxconf::Record;
use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;

/// Records kept while the runtime has not taken them yet; more are
/// counted and reported once.
pub const CAPTURE_LIMIT: usize = 10_000;

/// One log record as captured.
#[derive(Clone, Debug)]
pub(crate) struct Logged {
    pub(crate) time: DateTime<Utc>,
    pub(crate) level: Level,
    pub(crate) message: String,
    /// The `input=` or `output=` field: the instance the record is about.
    pub(crate) input: Option<String>,
    pub(crate) output: Option<String>,
}

struct Buffer {
    records: VecDeque<Logged>,
    dropped: u64,
}

static CAPTURE: Mutex<Buffer> = Mutex::new(Buffer {
    records: VecDeque::new(),
    dropped: 0,
});

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// While alive, this thread's log records are not captured: the runtime is
/// handling internal events, and a record about that must not become a new
/// internal event (a failing output would otherwise feed itself).
pub(crate) struct Quiet(bool);

impl Quiet {
    pub(crate) fn new() -> Quiet {
        Quiet(QUIET.with(|q| q.replace(true)))
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        let was = self.0;
        QUIET.with(|q| q.set(was));
    }
}

/// The layer that captures log records for im_internal; `None` (nothing
/// captured) when the configuration has no im_internal instance or when
/// regmon only checks it (`--verify`).
pub fn layer(config: &nxconf::Config, verify: bool) -> Option<CaptureLayer> {
    let wanted = !verify
        && config
            .modules
            .iter()
            .any(|m| m.module.eq_ignore_ascii_case("im_internal"));
    wanted.then_some(CaptureLayer(()))
}

/// See [`layer`].
pub struct CaptureLayer(());

impl<S: Subscriber> tracing_subscriber::Layer<S> for CaptureLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if QUIET.with(Cell::get) {
            return;
        }
        let mut v = Fields::default();
        event.record(&mut v);
        let logged = Logged {
            time: Utc::now(),
            level: *event.metadata().level(),
            message: v.message,
            input: v.input,
            output: v.output,
        };
        push(logged);
    }
}

/// Keeps `logged` for the runtime, or counts it when [`CAPTURE_LIMIT`]
/// records already wait.
fn push(logged: Logged) {
    let mut buf = CAPTURE.lock().unwrap_or_else(|e| e.into_inner());
    if buf.records.len() >= CAPTURE_LIMIT {
        buf.dropped += 1;
    } else {
        buf.records.push_back(logged);
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    input: Option<String>,
    output: Option<String>,
    /// Other fields, `name=value` after the message (as LogFile shows them).
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => {
                self.message = value;
                if !self.rest.is_empty() {
                    self.message.push_str(&std::mem::take(&mut self.rest));
                }
            }
            "input" => self.input = Some(value),
            "output" => self.output = Some(value),
            name => {
                let target = if self.message.is_empty() {
                    &mut self.rest
                } else {
                    &mut self.message
                };
                let _ = write!(target, " {name}={value}");
            }
        }
    }
}

/// The records captured since the last call, and how many did not fit.
pub(crate) fn take() -> (Vec<Logged>, u64) {
    let mut buf = CAPTURE.lock().unwrap_or_else(|e| e.into_inner());
    let records = buf.records.drain(..).collect();
    (records, std::mem::take(&mut buf.dropped))
}

/// One im_internal instance as the runtime holds it.
pub(crate) struct Internal {
    pub(crate) name: String,
    pub(crate) module: usize,
    /// Output indexes its events go to (through routes).
    pub(crate) routes: Vec<usize>,
    /// Its outbox: `regmon-internal-<name>-<hash of the configuration
    /// path>.sqlite` in CacheDir, this configuration's alone.
    pub(crate) path: PathBuf,
    pub(crate) db: Option<Baseline>,
    pub(crate) bound: Bound,
    pub(crate) undelivered: bool,
}

/// NXLog's name and number for a level (SeverityValue: DEBUG 1, INFO 2,
/// WARNING 3, ERROR 4, CRITICAL 5).
fn severity(level: Level) -> (&'static str, i64) {
    match level {
        Level::ERROR => ("ERROR", 4),
        Level::WARN => ("WARNING", 3),
        Level::INFO => ("INFO", 2),
        _ => ("DEBUG", 1),
    }
}

/// What a record is about: (ModuleName, ModuleType), when it names an
/// instance of the configuration.
pub(crate) type About<'a> = Option<(&'a str, &'a str)>;

/// The event for one log record, with NXLog im_internal's fields in its
/// order; `raw_event` as NXLog writes it: `<time> <host> <SEVERITY> <message>`.
pub(crate) fn record(
    l: &Logged,
    about: About<'_>,
    host: &str,
    instance: &str,
    received: DateTime<Utc>,
) -> Record {
    let (sev, value) = severity(l.level);
    let mut r = Record::new();
    r.set("EventTime", l.time);
    r.set("Hostname", host);
    r.set("SeverityValue", value);
    r.set("Severity", sev);
    r.set("SourceName", "regmon");
    r.set("ProcessID", i64::from(std::process::id()));
    r.set("Message", l.message.as_str());
    if let Some((name, kind)) = about {
        r.set("ModuleName", name);
        r.set("ModuleType", kind);
    }
    r.set("EventReceivedTime", received);
    r.set("SourceModuleName", instance);
    r.set("SourceModuleType", "im_internal");
    let local = l.time.with_timezone(&chrono::Local);
    r.set(
        "raw_event",
        format!(
            "{} {host} {sev} {}",
            local.format("%Y-%m-%d %H:%M:%S"),
            l.message
        ),
    );
    r
}

/// The record that says `n` log records were not captured.
pub(crate) fn dropped_notice(n: u64) -> Logged {
    Logged {
        time: Utc::now(),
        level: Level::WARN,
        message: format!(
            "{n} log records were not passed to im_internal: more than {CAPTURE_LIMIT} were waiting"
        ),
        input: None,
        output: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_raw_event_follow_nxlog() {
        let l = Logged {
            time: Utc::now(),
            level: Level::WARN,
            message: "scan done".into(),
            input: Some("r".into()),
            output: None,
        };
        let r = record(&l, Some(("r", "im_regmon")), "host", "internal", Utc::now());
        assert_eq!(r.get_str("Severity"), Some("WARNING"));
        assert_eq!(r.get_str("SourceModuleType"), Some("im_internal"));
        assert_eq!(r.get_str("ModuleType"), Some("im_regmon"));
        let raw = r.get_str("raw_event").unwrap();
        assert!(raw.ends_with(" host WARNING scan done"), "{raw}");
    }

    /// The only test touching the capture (no layer is installed in unit
    /// tests, so nothing else fills it).
    #[test]
    fn the_capture_is_bounded_and_counts_what_it_drops() {
        for _ in 0..CAPTURE_LIMIT + 5 {
            push(dropped_notice(1));
        }
        let (records, dropped) = take();
        assert_eq!((records.len(), dropped), (CAPTURE_LIMIT, 5));
        assert_eq!(take().1, 0, "reported once");
    }

    #[test]
    fn quiet_nests() {
        {
            let _a = Quiet::new();
            {
                let _b = Quiet::new();
            }
            assert!(QUIET.with(Cell::get));
        }
        assert!(!QUIET.with(Cell::get));
    }
}
