//! The running configuration: im_regmon inputs with their baselines, om_file
//! outputs, routes between them, schedules, and the loop that drives scans
//! until a signal stops it.

mod clock;
pub mod coverage;
mod deliver;
mod error;
mod exec;
mod fileop;
mod hives;
mod input;
pub mod internal;

pub use error::RunError;

use crate::baseline::outbox::Queued;
use crate::baseline::{Baseline, BaselineError, Compared, Fault, Guard, MergeError};
use crate::config::input::scope_of;
use crate::config::Scope;
use crate::event::{self, Origin};
use crate::model::{sort_changes, Change};
use crate::model::{Entry, Item, KeyHints, KeyItem, KeyStats, Snapshot};
use crate::path::region::{in_any, Region};
#[cfg(windows)]
use crate::source::Source;
use chrono::Utc;
use deliver::Attempt;
use exec::{Ctx, Intervals, Schedules};
use input::{claim, sanitize, Bound, Input, OutputSlot};
use internal::{Internal, Quiet};
use nxconf::{Config, Outcome, Record};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the baseline side of a scan did.
enum Reconciled {
    /// Rebuilt with this many values.
    Rebuilt(usize),
    /// Compared with the baseline.
    Changes(Compared),
}

/// Whose outbox: an im_regmon input's (in its baseline) or an im_internal
/// instance's (a file of its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Queue {
    Input(usize),
    Internal(usize),
}

pub struct Runtime {
    config: Config,
    pub inputs: Vec<Input>,
    /// im_internal instances.
    internals: Vec<Internal>,
    outputs: Vec<OutputSlot>,
    host: String,
    /// The baseline key and side records (see [`crate::baseline::seal`]).
    /// Loaded at first use, so `--verify` never creates the key.
    guard: std::cell::OnceCell<Guard>,
    /// Per input: its patterns' counts at the last scan (see [`coverage`]).
    seen: Vec<coverage::Seen>,
}

impl Runtime {
    /// Builds the runtime from a loaded configuration. Every problem found
    /// is returned, each naming file and line.
    pub fn new(config: Config) -> Result<Runtime, Vec<String>> {
        // Canonical, so the scope (which names the hive files) does not
        // depend on how the configuration's path was spelled on the command line.
        let config_dir = {
            let d = Path::new(&config.path).parent().unwrap_or(Path::new("."));
            let d = if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            };
            std::fs::canonicalize(d).unwrap_or_else(|_| d.to_path_buf())
        };
        let cache_dir = match &config.globals.cache_dir {
            Some(d) => config_dir.join(d),
            None => config_dir.join("regmon-cache"),
        };
        let config_file =
            std::fs::canonicalize(&config.path).unwrap_or_else(|_| PathBuf::from(&config.path));
        let mut errors = Vec::new();
        let mut inputs = Vec::new();
        let mut internals = Vec::new();
        let mut outputs = Vec::new();
        for (i, m) in config.modules.iter().enumerate() {
            if m.module.eq_ignore_ascii_case("im_internal") {
                internals.push(Internal {
                    name: m.name.clone(),
                    module: i,
                    routes: Vec::new(),
                    path: cache_dir.join(own_name(
                        &format!("internal-{}", sanitize(&m.name)),
                        &config_file,
                    )),
                    db: None,
                    bound: Bound::of(&config, &m.name),
                    undelivered: true,
                });
            } else if let Some(rm) = m.im_regmon() {
                match scope_of(m, rm, &config_dir) {
                    Ok(s) => inputs.push(Input {
                        name: m.name.clone(),
                        schema: s.schema,
                        module: i,
                        scope: s.scope,
                        scope_key: s.scope_key,
                        data_key: s.data_key,
                        owner: format!("{}\n{}", config_file.display(), m.name),
                        scan_interval: rm.scan_interval,
                        realtime: rm.realtime,
                        baseline_path: own_or_shared(&cache_dir, &sanitize(&m.name), &config_file),
                        baseline: None,
                        routes: Vec::new(),
                        requested: Arc::new(AtomicBool::new(false)),
                        changed: Arc::new(Mutex::new(Vec::new())),
                        undelivered: true,
                        last_count: 0,
                        bound: Bound::of(&config, &m.name),
                        incremental: input::Incremental::new(rm.full_scan_interval),
                    }),
                    Err(mut e) => errors.append(&mut e),
                }
            } else if let Some(e) = crate::output::missing(m) {
                errors.push(e);
            } else if let Some(out) = crate::output::build(m) {
                outputs.push(OutputSlot {
                    module: i,
                    name: m.name.clone(),
                    sink: RefCell::new(out),
                    backoff: RefCell::default(),
                });
            }
        }
        for r in &config.routes {
            for iname in &r.inputs {
                let routes = match inputs
                    .iter_mut()
                    .find(|x| x.name.eq_ignore_ascii_case(iname))
                {
                    Some(inp) => &mut inp.routes,
                    None => match internals
                        .iter_mut()
                        .find(|x| x.name.eq_ignore_ascii_case(iname))
                    {
                        Some(x) => &mut x.routes,
                        None => continue,
                    },
                };
                for oname in &r.outputs {
                    if let Some(oi) = outputs
                        .iter()
                        .position(|o| config.modules[o.module].name.eq_ignore_ascii_case(oname))
                    {
                        if !routes.contains(&oi) {
                            routes.push(oi);
                        }
                    }
                }
            }
        }
        // Names become file names with other characters as '_': two inputs
        // must not end up sharing one baseline ('a b' and 'a_b').
        for (k, a) in inputs.iter().enumerate() {
            if let Some(b) = inputs[..k]
                .iter()
                .find(|b| b.baseline_path == a.baseline_path)
            {
                errors.push(format!(
                    "{}: inputs '{}' and '{}' would share the baseline file {} (names differ only in characters other than letters and digits); rename one",
                    config.modules[a.module].location,
                    b.name,
                    a.name,
                    a.baseline_path.display()
                ));
            }
        }
        if inputs.is_empty() && errors.is_empty() {
            errors.push(format!(
                "{}: no im_regmon input: nothing to monitor",
                config.path
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Runtime {
            config,
            seen: inputs.iter().map(|_| coverage::Seen::default()).collect(),
            inputs,
            internals,
            outputs,
            host: event::short_hostname(),
            guard: std::cell::OnceCell::new(),
        })
    }

    /// Input `i`'s baseline, opened (and claimed) on first use. One that
    /// cannot be trusted is moved aside and replaced (see [`Runtime::restart`]).
    /// The baseline key and side records, loaded (or created) at first use.
    fn guard(&self) -> &Guard {
        self.guard.get_or_init(Guard::load)
    }

    fn baseline(&mut self, i: usize) -> Result<&mut Baseline, RunError> {
        if self.inputs[i].baseline.is_none() {
            let b = match self.open_claimed(i) {
                Ok(b) => b,
                Err(e) => match e.fault() {
                    Some(fault) => self.restart(i, fault)?,
                    None => return Err(e.into()),
                },
            };
            self.set_baseline(i, b);
        }
        Ok(self.inputs[i].baseline.as_mut().expect("opened above"))
    }

    /// Makes `b` input `i`'s baseline, with its outbox bound
    /// (OutboxMaxSize, or a pm_buffer's MaxSize).
    fn set_baseline(&mut self, i: usize, mut b: Baseline) {
        b.set_outbox_limit(self.inputs[i].bound.limit);
        self.inputs[i].baseline = Some(b);
    }

    /// The database holding queue `q`'s outbox, opened on first use.
    fn db(&mut self, q: Queue) -> Result<&mut Baseline, RunError> {
        let k = match q {
            Queue::Input(i) => return self.baseline(i),
            Queue::Internal(k) => k,
        };
        if self.internals[k].db.is_none() {
            let path = self.internals[k].path.clone();
            let mut b = match Baseline::open(&path, self.guard()) {
                Ok(b) => b,
                // Only log records wait there: one that cannot be trusted
                // is moved aside and a new one started.
                Err(e) if e.fault().is_some() => {
                    let moved = match path.exists() {
                        true => move_aside(&path, "damaged", Utc::now()).map_err(|source| {
                            RunError::Lock {
                                path: path.clone(),
                                what: "cannot move aside the damaged im_internal outbox",
                                source,
                            }
                        })?,
                        false => path.clone(),
                    };
                    if let Some(l) = self.guard().ledger(&path) {
                        l.clear();
                    }
                    tracing::warn!(
                        input = %self.internals[k].name,
                        "im_internal outbox {} {e}: moved aside to {}; its records are not delivered",
                        path.display(),
                        moved.display()
                    );
                    Baseline::open(&path, self.guard())?
                }
                Err(e) => return Err(e.into()),
            };
            b.set_outbox_limit(self.internals[k].bound.limit);
            self.internals[k].db = Some(b);
        }
        Ok(self.internals[k].db.as_mut().expect("opened above"))
    }

    /// Queue `q`'s name (its instance's), for messages.
    fn queue_name(&self, q: Queue) -> &str {
        match q {
            Queue::Input(i) => &self.inputs[i].name,
            Queue::Internal(k) => &self.internals[k].name,
        }
    }

    /// Queue `q`'s file (the folder beside it keeps dead letters).
    fn queue_path(&self, q: Queue) -> &Path {
        match q {
            Queue::Input(i) => &self.inputs[i].baseline_path,
            Queue::Internal(k) => &self.internals[k].path,
        }
    }

    /// Queue `q`'s bound (OutboxMaxSize or a pm_buffer).
    fn bound(&self, q: Queue) -> &Bound {
        match q {
            Queue::Input(i) => &self.inputs[i].bound,
            Queue::Internal(k) => &self.internals[k].bound,
        }
    }

    fn set_undelivered(&mut self, q: Queue, left: bool) {
        match q {
            Queue::Input(i) => self.inputs[i].undelivered = left,
            Queue::Internal(k) => self.internals[k].undelivered = left,
        }
    }

    /// Opens input `i`'s baseline and claims it; one that another
    /// configuration (still there) owns is left alone and this input
    /// switches to a file of its own.
    fn open_claimed(&mut self, i: usize) -> Result<Baseline, BaselineError> {
        // the field, not guard(): inputs is borrowed mutably beside it
        let guard = self.guard.get_or_init(Guard::load);
        let inp = &mut self.inputs[i];
        let mut b = Baseline::open(&inp.baseline_path, guard)?;
        match claim(&mut b, &inp.owner) {
            Err(BaselineError::Foreign(f)) => {
                drop(b);
                let (dir, config) = (
                    inp.baseline_path.parent().unwrap_or(Path::new(".")),
                    inp.owner.split_once('\n').map_or(&inp.owner[..], |o| o.0),
                );
                let own = dir.join(own_name(&sanitize(&inp.name), Path::new(config)));
                tracing::warn!(
                    input = %inp.name,
                    "baseline {} belongs to input '{}' of {}, which still exists: left alone; \
                     this input keeps its own baseline {} (give each configuration its own CacheDir \
                     to avoid this)",
                    f.file.display(),
                    f.owner.1,
                    f.owner.0,
                    own.display()
                );
                inp.baseline_path = own;
                let mut b = Baseline::open(&inp.baseline_path, guard)?;
                claim(&mut b, &inp.owner)?;
                Ok(b)
            }
            Err(e) => Err(e),
            Ok(()) => Ok(b),
        }
    }

    /// Replaces input `i`'s baseline that cannot be trusted (`fault`): the
    /// file (with its -wal and -shm) is moved aside to a name saying why and
    /// when, a new baseline is started (the next scan builds it, with no
    /// events), and one BASELINE_RESTART event is queued for the outputs,
    /// saying since when changes could not be compared.
    fn restart(&mut self, i: usize, fault: Fault) -> Result<Baseline, RunError> {
        self.inputs[i].baseline = None;
        self.inputs[i].incremental.hints = None;
        let name = self.inputs[i].name.clone();
        let path = self.inputs[i].baseline_path.clone();
        let ledger = self.guard().ledger(&path);
        let recorded = ledger.as_ref().and_then(|l| l.read());
        let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let now = Utc::now();
        // Since when: the last commit its side record saw, else when the
        // file was last written.
        let since = recorded
            .and_then(|r| chrono::DateTime::from_timestamp(r.good, 0))
            .or_else(|| modified.map(chrono::DateTime::<Utc>::from));
        let moved = if path.exists() {
            Some(
                move_aside(&path, fault.word(), now).map_err(|source| RunError::Lock {
                    path: path.clone(),
                    what: "cannot move aside the untrusted baseline",
                    source,
                })?,
            )
        } else {
            None
        };
        if let Some(l) = &ledger {
            l.clear();
        }
        let mut b = Baseline::open(&path, self.guard())?;
        claim(&mut b, &self.inputs[i].owner)?;
        // Undelivered events of a damaged file are taken over where they can
        // be read; those of a file that may be forged or foreign are not.
        let (recovered, lost) = match &moved {
            Some(m) if matches!(fault, Fault::Damaged(_)) => {
                let rows = crate::baseline::outbox::salvage(m);
                let n = rows.len();
                b.queue(&rows)?;
                (
                    n,
                    crate::baseline::outbox::count(m).map(|c| c.saturating_sub(n)),
                )
            }
            Some(m) => (0, crate::baseline::outbox::count(m)),
            None => (0, None),
        };
        let mut message = format!(
            "monitoring of input '{name}' restarted without a baseline: baseline {} {fault}",
            path.display()
        );
        if let Some(m) = &moved {
            message.push_str(&format!("; moved aside to {}", m.display()));
        }
        match since {
            Some(t) => message.push_str(&format!(
                "; changes since {} could not be compared and are not reported",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
            None => message.push_str("; changes since the last scan are not reported"),
        }
        if recovered > 0 {
            message.push_str(&format!(
                "; {recovered} undelivered events recovered from it"
            ));
        }
        match lost {
            Some(n) if n > 0 => {
                message.push_str(&format!("; {n} undelivered events in it are lost"))
            }
            None if moved.is_some() => {
                message.push_str("; its undelivered events, if any, could not be read and are lost")
            }
            _ => {}
        }
        tracing::error!(input = %name, "{message}");
        let mut fields: Vec<(&str, nxconf::Value)> = vec![
            ("BaselineRestartReason", fault.word().into()),
            ("BaselineFile", path.display().to_string().into()),
        ];
        if let Some(m) = &moved {
            fields.push(("BaselineMovedTo", m.display().to_string().into()));
        }
        if let Some(t) = since {
            fields.push(("NotComparedSince", t.into()));
        }
        if let Some(n) = lost {
            fields.push(("LostEvents", (n as i64).into()));
        }
        let events = self.render_notice_with(i, "BASELINE_RESTART", &message, &fields);
        b.queue(&events)?;
        Ok(b)
    }

    /// Takes input `i`'s lock and opens its baseline; if that switched the
    /// input to a file of its own, that file's lock instead.
    fn locked(&mut self, i: usize) -> Result<std::fs::File, RunError> {
        let before = self.inputs[i].baseline_path.clone();
        let lock = self.lock(i)?;
        self.baseline(i)?;
        if self.inputs[i].baseline_path != before {
            return self.lock(i);
        }
        Ok(lock)
    }

    /// Takes input `i`'s baseline lock, waiting while another regmon process
    /// holds it: from reading the baseline to delivering the batch one
    /// process at a time, so no change is reported twice.
    fn lock(&self, i: usize) -> Result<std::fs::File, RunError> {
        let inp = &self.inputs[i];
        lock_file(&inp.baseline_path, &inp.name)
    }

    /// Delivers events left in every outbox by an earlier run that stopped
    /// before confirming them; lines already in their file are not repeated.
    pub fn recover(&mut self) -> Result<(), RunError> {
        for i in 0..self.inputs.len() {
            let _lock = self.locked(i)?;
            self.deliver(i, Attempt::Recover)?;
        }
        for k in 0..self.internals.len() {
            self.deliver_internal(k, Attempt::Recover);
        }
        Ok(())
    }

    /// Delivers what im_internal instance `k`'s outbox holds; a failure is
    /// logged (not captured: see [`Quiet`]).
    fn deliver_internal(&mut self, k: usize, attempt: Attempt) {
        let _quiet = Quiet::new();
        let r = lock_file(&self.internals[k].path, &self.internals[k].name)
            .and_then(|_lock| self.deliver_queue(Queue::Internal(k), attempt));
        if let Err(e) = r {
            tracing::error!(input = %self.internals[k].name, "delivery failed: {e}");
        }
    }

    /// Turns the log records captured since the last call into events of
    /// every im_internal instance, queues and delivers them.
    fn pump_internal(&mut self, attempt: Attempt) {
        if self.internals.is_empty() {
            return;
        }
        let _quiet = Quiet::new();
        let (mut logged, dropped) = internal::take();
        if dropped > 0 {
            let notice = internal::dropped_notice(dropped);
            tracing::warn!("{}", notice.message);
            logged.push(notice);
        }
        if logged.is_empty() {
            return;
        }
        let now = Utc::now();
        for k in 0..self.internals.len() {
            let records = logged
                .iter()
                .map(|l| {
                    let about = self.about(l);
                    internal::record(l, about, &self.host, &self.internals[k].name, now)
                })
                .collect();
            let internal = &self.internals[k];
            let events = self.render_through(internal.module, &internal.routes, records);
            let r = lock_file(&internal.path, &internal.name).and_then(|_lock| {
                let dropped = self.db(Queue::Internal(k))?.queue(&events)?;
                self.warn_dropped(Queue::Internal(k), dropped);
                self.deliver_queue(Queue::Internal(k), attempt)
            });
            if let Err(e) = r {
                tracing::error!(input = %self.internals[k].name, "im_internal: {e}");
            }
        }
    }

    /// A notice about im_internal instance `k`'s own outbox, as one of its
    /// events with `fields` added.
    fn render_internal_notice(
        &self,
        k: usize,
        message: &str,
        fields: &[(&str, nxconf::Value)],
    ) -> Vec<Queued> {
        let now = Utc::now();
        let logged = internal::Logged {
            time: now,
            level: tracing::Level::WARN,
            message: message.to_string(),
            input: None,
            output: None,
        };
        let internal = &self.internals[k];
        let mut r = internal::record(&logged, None, &self.host, &internal.name, now);
        for (name, v) in fields {
            r.set(name, v.clone());
        }
        self.render_through(internal.module, &internal.routes, vec![r])
    }

    /// The instance a log record names (its `input=` or `output=` field):
    /// (ModuleName, ModuleType).
    fn about(&self, l: &internal::Logged) -> internal::About<'_> {
        let name = l.input.as_deref().or(l.output.as_deref())?;
        let m = self
            .config
            .modules
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case(name))?;
        Some((&m.name, &m.module))
    }

    fn take_snapshot(&self, scope: &Scope, size_hint: usize) -> Snapshot {
        #[cfg(windows)]
        if scope.source == Source::Live {
            return crate::scan::live::scan_live(scope);
        }
        crate::scan::scan(scope, size_hint)
    }

    /// One scan of input `i`: compare, commit, deliver.
    pub fn scan(&mut self, i: usize) -> Result<(), RunError> {
        self.scan_in(i, None)
    }

    /// A rescan of input `i` limited to `regions` (what Realtime
    /// notifications named): only the baseline rows inside them are
    /// compared; the rest is left as it is. Without a baseline yet, or after
    /// a scope change, it is a whole scan.
    pub fn scan_regions(&mut self, i: usize, regions: &[Region]) -> Result<(), RunError> {
        self.scan_in(i, Some(regions))
    }

    /// A scan of input `i`, whole or within `regions`.
    ///
    /// A single-pattern scan of hive files streams: the scan runs on a second
    /// thread and its values are compared with the baseline (or written into
    /// it) as they are found, never held in memory as a whole. Otherwise the
    /// scan is collected and sorted first.
    fn scan_in(&mut self, i: usize, regions: Option<&[Region]>) -> Result<(), RunError> {
        let _lock = self.locked(i)?;
        match self.scan_locked(i, regions) {
            // Found damaged or tampered while reading it: replaced, and
            // this scan builds the new one.
            Err(RunError::Baseline(e)) => match e.fault() {
                Some(fault) => {
                    let b = self.restart(i, fault)?;
                    self.set_baseline(i, b);
                    self.scan_locked(i, None)
                }
                None => Err(RunError::Baseline(e)),
            },
            r => r,
        }
    }

    fn scan_locked(&mut self, i: usize, regions: Option<&[Region]>) -> Result<(), RunError> {
        let started = Instant::now();
        let name = self.inputs[i].name.clone();
        let scope_key = self.inputs[i].scope_key.clone();
        let data_key = self.inputs[i].data_key.clone();
        let key_events = self.inputs[i].scope.key_events;
        let capture = self.inputs[i].scope.capture.is_some();
        let rebuild = self.baseline(i)?.rebuild_reason(&scope_key)?;
        // A baseline to rebuild is rebuilt whole.
        let within = regions.filter(|_| rebuild.is_none());
        // Settings that change no watched value take effect without a
        // rebuild: kept data is rewritten at the next whole scan (no
        // events), key lists start silently.
        let mut refresh = false;
        let mut keys_kept = false;
        let mut data_changed = false;
        if rebuild.is_none() {
            let b = self.baseline(i)?;
            if b.meta("data")?.as_deref() != Some(data_key.as_str()) {
                data_changed = true;
                if capture {
                    refresh = within.is_none();
                } else {
                    b.forget_data()?;
                    b.set_meta("data", Some(&data_key))?;
                }
            }
            keys_kept = b.meta("keys")?.as_deref() == Some("1");
            if keys_kept && !key_events {
                b.replace_keys(&[])?;
                b.set_meta("keys", None)?;
                keys_kept = false;
            }
        }
        let plan = self.plan_incremental(i, rebuild.is_some() || data_changed, within.is_some())?;
        let mut scope = match within {
            Some(r) => self.inputs[i].scope.within(r),
            None => self.inputs[i].scope.clone(),
        };
        scope.hints = plan.hints.clone();
        // The keys a whole scan took values from, with their stats: the
        // next scan's hints (see `Incremental`).
        let collect = scope.incremental && within.is_none();
        // A `--once` run scans no more: no next hints to keep (the stats
        // of every key in scope would only cost memory).
        let keep_stats = self.inputs[i].incremental.keep_hints;
        let fresh = || Seen {
            keep_stats,
            ..Seen::default()
        };
        let mut seen = fresh();
        // Entries a region scan yields outside its regions are dropped (a
        // pinned key name is matched exactly, so there should be none).
        let inside = |it: &Item| match (it, within) {
            (Item::Entry(e), Some(r)) => in_any(r, &e.id),
            _ => true,
        };
        let mut done = None;
        if crate::scan::can_stream(&scope) {
            let baseline = self.baseline(i)?;
            let seen = &mut seen;
            let (snap, r) = crate::scan::scan_streamed(&scope, |failed, items| {
                let items = &mut items.filter(inside).inspect(|it| {
                    if collect {
                        seen.note(it)
                    }
                });
                match rebuild {
                    Some(_) => baseline
                        .rebuild_values(items)
                        .map(Reconciled::Rebuilt)
                        .map_err(MergeError::Failed),
                    None => baseline
                        .compare_values(failed.to_vec(), items, within, refresh)
                        .map(Reconciled::Changes),
                }
            });
            match r {
                Ok(o) => done = Some((snap, o)),
                Err(MergeError::Disorder) => {
                    tracing::debug!(input = %name, "values came out of order; scanning again in memory")
                }
                Err(MergeError::Failed(e)) => return Err(e.into()),
            }
        }
        let (snap, outcome) = match done {
            Some(d) => d,
            None => {
                if within.is_none() && self.inputs[i].last_count == 0 {
                    self.inputs[i].last_count = self.baseline(i)?.value_count();
                }
                let hint = if within.is_some() {
                    0
                } else {
                    self.inputs[i].last_count
                };
                let mut snap = self.snapshot_following_hives(i, &scope, hint, rebuild.is_some())?;
                // A key before its values, as a streamed scan gives them.
                let keys = std::mem::take(&mut snap.key_items);
                seen = fresh();
                if collect {
                    for k in &keys {
                        seen.key(k);
                    }
                }
                let mut items = interleave(keys, std::mem::take(&mut snap.entries)).filter(inside);
                let unavailable = snap.unreadable.clone();
                let baseline = self.baseline(i)?;
                let o = match rebuild {
                    Some(_) => Reconciled::Rebuilt(baseline.rebuild_values(&mut items)?),
                    None => Reconciled::Changes(baseline.compare_values(
                        unavailable,
                        &mut items,
                        within,
                        refresh,
                    )?),
                };
                (snap, o)
            }
        };
        for n in &snap.notes {
            tracing::info!(input = %name, "{n}");
        }
        for w in &snap.warnings {
            tracing::warn!(input = %name, "{w}");
        }
        for m in &snap.failed_mounts {
            tracing::error!(
                input = %name,
                "hive mounted at {m} could not be read; its baseline is kept and it is retried at the next scan"
            );
        }
        // A region rescan counts only inside its regions: not a pattern's
        // whole coverage.
        if within.is_none() {
            self.judge_coverage(i, &snap)?;
        }
        let compared = match outcome {
            Reconciled::Rebuilt(_) if !snap.failed_mounts.is_empty() => {
                // Recording a hive that could not be read as empty would make
                // all its values NEW later: no baseline yet, built next time.
                tracing::warn!(
                    input = %name,
                    "baseline not recorded: a hive could not be read; it is built at the next scan"
                );
                return self.deliver(i, Attempt::Scan);
            }
            Reconciled::Rebuilt(count) => {
                self.baseline(i)?
                    .finish_rebuild(&scope_key, &data_key, &snap, key_events, count)?;
                self.inputs[i].last_count = count;
                if collect {
                    self.record_whole_scan(i, seen, &snap, true, plan.now)?;
                }
                let reason = rebuild.unwrap_or_default();
                if self.baseline(i)?.value_count() == count && reason == "no baseline yet" {
                    tracing::info!(
                        input = %name,
                        "baseline built with {count} values ({reason}); no events for this scan"
                    );
                    // A restart's notice waits in the outbox.
                    return self.deliver(i, Attempt::Scan);
                } else {
                    // Changes made since the last scan cannot be told apart
                    // from the new scope's values: say so, to the outputs too.
                    let message = format!(
                        "baseline of input '{name}' rebuilt with {count} values: {reason}; \
                         changes since the last scan are not reported"
                    );
                    tracing::warn!(input = %name, "{message}");
                    let file = self.inputs[i].baseline_path.display().to_string();
                    let events = self.render_notice_with(
                        i,
                        "BASELINE_REBUILD",
                        &message,
                        &[
                            ("BaselineRestartReason", "scope".into()),
                            ("BaselineFile", file.into()),
                        ],
                    );
                    let dropped = self.baseline(i)?.queue(&events)?;
                    self.warn_dropped(Queue::Input(i), dropped);
                    return self.deliver(i, Attempt::Scan);
                }
            }
            Reconciled::Changes(c) => c,
        };
        let count = compared.count;
        let mut changes = compared.changes;
        let mut snap = snap;
        if let Some(r) = within {
            snap.keys
                .retain(|k| r.iter().any(|r| r.contains_key(&k.id)));
        }
        if key_events && keys_kept {
            changes.extend(self.baseline(i)?.compare_keys(&snap, within)?);
        } else if key_events && within.is_none() {
            // KeyEvents was just switched on: the keys are recorded now and
            // reported from the next scan on.
            let b = self.baseline(i)?;
            b.replace_keys(&snap.keys)?;
            b.set_meta("keys", Some("1"))?;
        }
        sort_changes(&mut changes);
        for m in changes.iter().filter_map(event::link_retarget) {
            tracing::warn!(input = %name, "{m}");
        }
        self.baseline(i)?;
        let mut b = self.inputs[i].baseline.take().expect("opened above");
        let r = b.commit(&changes, &compared.refreshed, &mut |c| self.render(i, c));
        self.inputs[i].baseline = Some(b);
        self.warn_dropped(Queue::Input(i), r?);
        if refresh {
            self.baseline(i)?.set_meta("data", Some(&data_key))?;
        }
        let how = match (scope.incremental, &plan.hints) {
            (false, _) => String::new(),
            (true, Some(_)) => format!(
                ", incremental: {} of {} keys carried, {} values kept unread",
                seen.carried, seen.keys, compared.kept
            ),
            (true, None) => ", full rehash".to_string(),
        };
        match within {
            None => {
                self.inputs[i].last_count = count + compared.kept;
                if collect {
                    self.record_whole_scan(i, seen, &snap, plan.hints.is_none(), plan.now)?;
                }
                tracing::info!(
                    input = %name,
                    "scan done: {count} values, {} changes, {:.3}s{how}",
                    changes.len(),
                    started.elapsed().as_secs_f64()
                );
            }
            Some(r) => tracing::info!(
                input = %name,
                "rescan of {}: {count} values, {} changes, {:.3}s",
                r.iter().map(Region::to_string).collect::<Vec<_>>().join(", "),
                changes.len(),
                started.elapsed().as_secs_f64()
            ),
        }
        self.deliver(i, Attempt::Scan)
    }

    /// `Incremental`: whether this scan of input `i` may carry unchanged
    /// keys, and with which hints. A full rehash (no hints) when the
    /// input is not incremental, at a rebuild or after a data-setting
    /// change (`reset`), at the first scan of a service process, when
    /// `FullScanInterval` has passed since the last one (its time in the
    /// baseline, so `--once` runs follow it too), and when there are no
    /// hints. A region scan (`region`) uses hints when a whole scan would;
    /// it never counts as a full rehash.
    fn plan_incremental(&mut self, i: usize, reset: bool, region: bool) -> Result<Plan, RunError> {
        let now = Utc::now().timestamp_millis();
        if !self.inputs[i].scope.incremental || reset {
            return Ok(Plan { hints: None, now });
        }
        let last = self
            .baseline(i)?
            .meta(FULL_SCAN_META)?
            .and_then(|v| v.parse::<i64>().ok());
        if self.inputs[i].incremental.due(last, now) && !region {
            return Ok(Plan { hints: None, now });
        }
        // In memory from this process's last whole scan (a service), else
        // as the baseline stores them (`--once`).
        let hints = match &self.inputs[i].incremental.hints {
            Some(h) => Some(h.clone()),
            None => {
                let t = Instant::now();
                let h = self.baseline(i)?.key_hints()?.map(Arc::new);
                tracing::debug!(
                    input = %self.inputs[i].name,
                    "key stats of {} keys read from the baseline in {:.3}s",
                    h.as_ref().map_or(0, |h| h.len()),
                    t.elapsed().as_secs_f64()
                );
                h
            }
        };
        Ok(Plan { hints, now })
    }

    /// After a whole scan of an `Incremental` input was recorded: the
    /// keys it took values from become the next scan's hints (but not
    /// those under a key or mount that could not be read: their baseline
    /// was kept, so their stats would not describe it); a scan that read
    /// every value (`full`) is recorded as the last full rehash.
    fn record_whole_scan(
        &mut self,
        i: usize,
        seen: Seen,
        snap: &Snapshot,
        full: bool,
        now: i64,
    ) -> Result<(), RunError> {
        let mut keys = seen.stats;
        if !snap.unreadable.is_empty() {
            keys.retain(|(id, _)| !snap.is_unavailable(id));
        }
        if self.inputs[i].incremental.keep_hints {
            self.inputs[i].incremental.hints = Some(Arc::new(KeyHints::new(keys)));
        }
        if full {
            self.baseline(i)?
                .set_meta(FULL_SCAN_META, Some(&now.to_string()))?;
            self.inputs[i].incremental.at_start = false;
        }
        Ok(())
    }

    /// Logs what each pattern of input `i` matched in a whole scan and
    /// queues a `NO_MATCH` event for each pattern that matches nothing
    /// (see [`coverage`]).
    fn judge_coverage(&mut self, i: usize, snap: &Snapshot) -> Result<(), RunError> {
        let locations = self.pattern_locations(i);
        let verdict = self.seen[i].judge(&self.inputs[i].scope, snap, &locations);
        let name = &self.inputs[i].name;
        for (level, line) in &verdict.lines {
            match level {
                coverage::Level::Debug => tracing::debug!(input = %name, "{line}"),
                coverage::Level::Info => tracing::info!(input = %name, "{line}"),
                coverage::Level::Warn => tracing::warn!(input = %name, "{line}"),
            }
        }
        if verdict.no_match.is_empty() {
            return Ok(());
        }
        let mut events = Vec::new();
        for m in &verdict.no_match {
            let mut fields: Vec<(&str, nxconf::Value)> =
                vec![("RegValuePattern", m.pattern.clone().into())];
            if let Some(l) = &m.location {
                fields.push(("RegValueLocation", l.clone().into()));
            }
            if let Some(n) = &m.nearest {
                fields.push(("NearestKey", n.clone().into()));
            }
            if let Some(b) = m.before {
                fields.push(("PrevMatchedValues", (b as i64).into()));
            }
            events.extend(self.render_notice_with(i, coverage::NO_MATCH, &m.message, &fields));
        }
        let dropped = self.baseline(i)?.queue(&events)?;
        self.warn_dropped(Queue::Input(i), dropped);
        Ok(())
    }

    /// `file:line` of each pattern of input `i` (its RegValue directive).
    pub fn pattern_locations(&self, i: usize) -> Vec<Option<String>> {
        let inp = &self.inputs[i];
        let rm = self.config.modules[inp.module].im_regmon();
        inp.scope
            .patterns
            .iter()
            .map(|p| {
                rm.and_then(|rm| rm.reg_values.iter().find(|r| r.pattern == p.text))
                    .map(|r| r.location.to_string())
            })
            .collect()
    }

    /// Where input `i`'s block starts (`file:line`).
    pub fn input_location(&self, i: usize) -> String {
        self.config.modules[self.inputs[i].module]
            .location
            .to_string()
    }

    /// The configuration file's path, as given.
    pub fn config_path(&self) -> &str {
        &self.config.path
    }

    /// `file:line` of each `Exclude` rule of input `i`, with its text.
    pub fn exclude_rules(&self, i: usize) -> Vec<(String, String)> {
        self.config.modules[self.inputs[i].module]
            .im_regmon()
            .map(|rm| {
                rm.excludes
                    .iter()
                    .map(|e| (e.pattern.clone(), e.location.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The input `i`'s scope (its `Scope`), scanned as a run would scan it
    /// (hive files, or the live registry), without its values: what
    /// `--explain` shows. Nothing is written. Also the values' count and
    /// bytes (each value once).
    pub fn dry_scan(&self, i: usize) -> (Snapshot, u64, u64) {
        let scope = &self.inputs[i].scope;
        let tally = |items: &mut dyn Iterator<Item = Item>| {
            let (mut n, mut b) = (0u64, 0u64);
            for it in items {
                if let Item::Entry(e) = it {
                    n += 1;
                    b += e.size;
                }
            }
            (n, b)
        };
        if crate::scan::can_stream(scope) {
            let (snap, (n, b)) = crate::scan::scan_streamed(scope, |_, items| tally(items));
            return (snap, n, b);
        }
        let mut snap = self.take_snapshot(scope, 0);
        let entries = std::mem::take(&mut snap.entries);
        let (n, b) = tally(&mut entries.into_iter().map(Item::Entry));
        (snap, n, b)
    }

    /// Says that `dropped` events of queue `q` did not fit in its outbox
    /// (an OUTBOX_OVERFLOW event follows when there is room).
    fn warn_dropped(&self, q: Queue, dropped: usize) {
        if dropped > 0 {
            let bound = self.bound(q).describe();
            tracing::error!(
                input = %self.queue_name(q),
                "outbox full ({bound}): {dropped} new events dropped; the oldest undelivered are kept, and an OUTBOX_OVERFLOW event reports the loss when there is room",
            );
        }
    }

    /// Events for the changes, through the input's Exec and each route's
    /// output Exec, queued with the record after that Exec, so that the
    /// output's File is evaluated when they are written.
    fn render(&self, i: usize, changes: &[Change]) -> Vec<Queued> {
        let inp = &self.inputs[i];
        let module = &self.config.modules[inp.module];
        let src = Origin {
            hostname: &self.host,
            module_name: &module.name,
            digest: inp.scope.digest,
            report_data: inp.scope.capture.is_some(),
            schema: inp.schema,
        };
        let now = Utc::now();
        let records = changes
            .iter()
            .map(|c| event::record(c, &src, now))
            .collect();
        self.render_records(i, records)
    }

    /// Input `i`'s event records through its Exec, each route's output Exec
    /// and the output's File expression: (output, file, line).
    fn render_records(&self, i: usize, records: Vec<Record>) -> Vec<Queued> {
        let inp = &self.inputs[i];
        self.render_through(inp.module, &inp.routes, records)
    }

    /// Event records through the Exec of module `module` (their input),
    /// each route's output Exec and the output's File expression.
    fn render_through(&self, module: usize, routes: &[usize], records: Vec<Record>) -> Vec<Queued> {
        let module = &self.config.modules[module];
        let mut ctx = Ctx {
            inputs: &self.inputs,
            outputs: &self.outputs,
            host: &self.host,
        };
        let mut out = Vec::new();
        for mut rec in records {
            if let Some(p) = &module.exec {
                if p.run(&mut rec, &mut ctx) == Outcome::Drop {
                    continue;
                }
            }
            for &o in routes {
                let output = &self.outputs[o];
                let omod = &self.config.modules[output.module];
                let mut r = rec.clone();
                if let Some(p) = &omod.exec {
                    if p.run(&mut r, &mut ctx) == Outcome::Drop {
                        continue;
                    }
                }
                let line = match r.get("raw_event") {
                    Some(nxconf::Value::String(s)) => s.clone(),
                    Some(v) => v
                        .to_string_with(&self.config.globals.date_format, nxconf::Zone::Local)
                        .unwrap_or_default(),
                    None => r.to_raw_event_kv(),
                };
                let q = match output.sink.try_borrow() {
                    Ok(sink) => Queued {
                        output: omod.name.clone(),
                        // Kept for reference (and for older releases reading
                        // the outbox); delivery evaluates the target again. A
                        // failure here is reported, with the event kept, when
                        // delivery meets it.
                        target: sink.target(&r, &mut ctx).unwrap_or_default(),
                        // Kept only where delivery evaluates the target
                        // over it (om_file's File reading event fields).
                        record: match sink.constant_target() {
                            Some(_) => None,
                            None => Some(crate::baseline::outbox::encode(&r)),
                        },
                        line: sink.payload(&r, line),
                    },
                    // Busy (an Exec procedure of this output is running):
                    // the record is kept, delivery works the rest out.
                    Err(_) => Queued {
                        output: omod.name.clone(),
                        target: String::new(),
                        record: Some(crate::baseline::outbox::encode(&r)),
                        line: line.into_bytes(),
                    },
                };
                out.push(q);
            }
        }
        out
    }

    /// A notice about the monitoring of input `i` (not a registry change),
    /// through the same Execs and routes as its change events.
    fn render_notice_with(
        &self,
        i: usize,
        kind: &str,
        message: &str,
        fields: &[(&str, nxconf::Value)],
    ) -> Vec<Queued> {
        let inp = &self.inputs[i];
        let module = &self.config.modules[inp.module];
        let src = Origin {
            hostname: &self.host,
            module_name: &module.name,
            digest: inp.scope.digest,
            report_data: false,
            schema: inp.schema,
        };
        self.render_records(
            i,
            vec![event::notice_with(kind, message, fields, &src, Utc::now())],
        )
    }

    pub fn flush(&mut self) {
        for o in &mut self.outputs {
            o.sink.get_mut().flush();
        }
    }

    /// Delivers what earlier attempts left queued, for outputs whose
    /// backoff is over.
    fn retry_deliveries(&mut self) {
        let now = Instant::now();
        for i in 0..self.inputs.len() {
            let inp = &self.inputs[i];
            if !inp.undelivered || !self.outputs.iter().any(|o| o.backoff.borrow().ready(now)) {
                continue;
            }
            let r = self
                .locked(i)
                .and_then(|_lock| self.deliver(i, Attempt::Retry));
            if let Err(e) = r {
                tracing::error!(input = %self.inputs[i].name, "delivery failed: {e}");
            }
        }
        for k in 0..self.internals.len() {
            if self.internals[k].undelivered
                && self.outputs.iter().any(|o| o.backoff.borrow().ready(now))
            {
                self.deliver_internal(k, Attempt::Retry);
            }
        }
    }

    /// Closes output files not written for a while.
    fn close_idle(&mut self) {
        for o in &mut self.outputs {
            o.sink.get_mut().close_idle();
        }
    }

    /// `--once`: one scan of every input.
    pub fn run_once(&mut self) -> Result<(), RunError> {
        // Runs scheduled by cron: hints until FullScanInterval is due.
        // One scan each: nothing to keep for a next one.
        for inp in &mut self.inputs {
            inp.incremental.at_start = false;
            inp.incremental.keep_hints = false;
        }
        self.start_warnings();
        self.recover()?;
        for i in 0..self.inputs.len() {
            self.scan(i)?;
        }
        // What this run logged goes out before it ends.
        self.pump_internal(Attempt::Scan);
        self.flush();
        Ok(())
    }

    /// Events still queued in the outboxes (not confirmed delivered): what
    /// `--once` must not exit 0 with.
    pub fn undelivered(&mut self) -> Result<usize, RunError> {
        let mut n = 0;
        for i in 0..self.inputs.len() {
            n += self.baseline(i)?.outbox().count()?;
        }
        for k in 0..self.internals.len() {
            n += self.db(Queue::Internal(k))?.outbox().count()?;
        }
        Ok(n)
    }

    /// What is worth knowing before the first scan.
    fn start_warnings(&self) {
        use crate::platform::perms::warn_if_writable_by_others as warn;
        warn(
            Path::new(&self.config.path),
            "the configuration file",
            "whoever can change it can change what regmon watches or switch it off",
        );
        if let Some(dir) = self.inputs.first().and_then(|i| i.baseline_path.parent()) {
            warn(
                dir,
                "CacheDir",
                "whoever can change it can alter or replace the baselines and so hide a change",
            );
        }
        #[cfg(windows)]
        for inp in &self.inputs {
            if inp.scope.source == Source::Live {
                crate::scan::live::warn_hkcu_once(&inp.scope);
            }
        }
        for m in &self.config.modules {
            if m.pm_buffer()
                .is_some_and(|b| b.kind == nxconf::BufferType::Mem)
            {
                tracing::info!(
                    "{}: pm_buffer '{}': Type Mem is kept on disk by regmon (the outbox)",
                    m.location,
                    m.name
                );
            }
        }
    }

    /// The foreground loop, until `stop` is set.
    pub fn run(&mut self, stop: Arc<AtomicBool>) -> Result<(), RunError> {
        // A paced scan in progress gives way to a stop (see scan::pace).
        let _pace = crate::scan::pace::stop_on(stop.clone());
        self.run_with(&stop, &clock::SystemClock::new())
    }

    /// The foreground loop on `clock`: periodic scans and `Every` on
    /// elapsed time, `When` on local wall time (see [`clock::Timeline`]).
    fn run_with(&mut self, stop: &AtomicBool, clock: &dyn clock::Clock) -> Result<(), RunError> {
        self.start_warnings();
        self.recover()?;
        let mut timeline = clock::Timeline::new(clock);
        let start = timeline.start(clock);
        let mut intervals = Intervals::new(self.inputs.iter().map(|i| i.scan_interval), &start);
        let mut schedules = Schedules::new(&self.config, &start);
        #[cfg(windows)]
        let _watchers = self.start_watchers();
        #[cfg(not(windows))]
        for inp in &self.inputs {
            if inp.realtime {
                tracing::warn!(input = %inp.name, "Realtime works on the live Windows registry only; hive files are scanned every ScanInterval");
            }
        }
        let mut first = true;
        while !stop.load(Ordering::SeqCst) {
            let now = if first { start } else { timeline.tick(clock) };
            first = false;
            // Schedules due now run their Exec (which may call start_scan()).
            for prog in schedules.due(&now) {
                let mut ctx = Ctx {
                    inputs: &self.inputs,
                    outputs: &self.outputs,
                    host: &self.host,
                };
                prog.run(&mut Record::new(), &mut ctx);
            }
            for i in 0..self.inputs.len() {
                let periodic = intervals.take_due(i, &now);
                let requested = self.inputs[i].requested.swap(false, Ordering::SeqCst);
                // A whole scan covers every region a notification named.
                let regions = std::mem::take(
                    &mut *self.inputs[i]
                        .changed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()),
                );
                let r = if periodic || requested {
                    self.scan(i)
                } else if !regions.is_empty() {
                    self.scan_regions(i, &regions)
                } else {
                    continue;
                };
                if let Err(e) = r {
                    tracing::error!(input = %self.inputs[i].name, "scan failed: {e}");
                }
            }
            self.pump_internal(Attempt::Scan);
            self.retry_deliveries();
            self.close_idle();
            clock.sleep(Duration::from_millis(50));
        }
        self.pump_internal(Attempt::Scan);
        self.flush();
        tracing::info!("stopped");
        Ok(())
    }

    #[cfg(windows)]
    fn start_watchers(&self) -> Vec<crate::source::live::watch::Watcher> {
        let mut out = Vec::new();
        for inp in &self.inputs {
            if inp.realtime && inp.scope.source != Source::Live {
                tracing::warn!(input = %inp.name, "Realtime works on the live registry only; hive files are scanned every ScanInterval");
            }
            if inp.realtime && inp.scope.source == Source::Live {
                let changed = inp.changed.clone();
                let notify = move |r: Region| {
                    let mut list = changed.lock().unwrap_or_else(|e| e.into_inner());
                    if !list.contains(&r) {
                        list.push(r);
                    }
                };
                match crate::source::live::watch::watch(&inp.scope, notify) {
                    Ok(w) => out.push(w),
                    Err(e) => {
                        tracing::error!(input = %inp.name, "Realtime: {e}; periodic scans only")
                    }
                }
            }
        }
        out
    }
}

/// The baseline's `meta` entry holding when the last full rehash of an
/// `Incremental` input started (ms since the epoch, UTC).
const FULL_SCAN_META: &str = "full_scan";

/// How a scan reads (see [`Runtime::plan_incremental`]).
struct Plan {
    /// Some: keys whose stats equal these are carried.
    hints: Option<Arc<KeyHints>>,
    /// When it started (ms since the epoch).
    now: i64,
}

/// The keys a whole scan took values from: their stats (the next hints)
/// and counts for the log.
#[derive(Default)]
struct Seen {
    /// Kept only for a next scan of this process (not `--once`).
    stats: Vec<(Vec<u8>, KeyStats)>,
    keep_stats: bool,
    keys: usize,
    carried: usize,
}

impl Seen {
    fn note(&mut self, it: &Item) {
        if let Item::Key(k) = it {
            self.key(k);
        }
    }

    fn key(&mut self, k: &KeyItem) {
        self.keys += 1;
        self.carried += usize::from(k.carried);
        if let (true, Some(s)) = (self.keep_stats, k.stats) {
            self.stats.push((k.id.clone(), s));
        }
    }
}

/// A scan held in memory as a streamed scan hands it over: each key's
/// item before its values (both lists sorted by identity; a key's identity
/// sorts before its values').
fn interleave(keys: Vec<KeyItem>, entries: Vec<Entry>) -> impl Iterator<Item = Item> {
    let mut keys = keys.into_iter().peekable();
    let mut entries = entries.into_iter().peekable();
    std::iter::from_fn(move || match (keys.peek(), entries.peek()) {
        (Some(k), Some(e)) if k.id < e.id => keys.next().map(Item::Key),
        (Some(_), None) => keys.next().map(Item::Key),
        _ => entries.next().map(Item::Entry),
    })
}

/// Takes the lock of the database at `db` (`<db>.lock` beside it), waiting
/// while another regmon process holds it; `name` is the instance, for the
/// message.
impl Drop for Runtime {
    /// Each baseline this run opened is settled (see
    /// [`Baseline::settle`]) and closed while holding its lock, when the
    /// lock is free now: a process waiting for it is about to write the
    /// file anyway, and this one does not wait at exit.
    fn drop(&mut self) {
        for inp in &mut self.inputs {
            let Some(b) = inp.baseline.take() else {
                continue;
            };
            let held = open_lock(&lock_path(&inp.baseline_path))
                .ok()
                .filter(|f| f.try_lock().is_ok());
            if held.is_some() {
                b.settle();
            }
            drop(b);
        }
    }
}

/// The lock file beside the baseline `db`.
fn lock_path(db: &Path) -> PathBuf {
    db.with_extension("sqlite.lock")
}

/// Opens (or creates, private) a lock file; locking is the caller's.
fn open_lock(path: &Path) -> std::io::Result<std::fs::File> {
    crate::platform::perms::open_private(
        path,
        std::fs::OpenOptions::new().truncate(false).write(true),
    )
}

fn lock_file(db: &Path, name: &str) -> Result<std::fs::File, RunError> {
    let path = lock_path(db);
    if let Some(dir) = path.parent() {
        crate::platform::perms::create_dir_private(dir).map_err(|source| RunError::Lock {
            path: dir.to_path_buf(),
            what: "cannot create cache folder",
            source,
        })?;
    }
    // SQLite follows links to the baseline and its journals: none may be another user's.
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.to_path_buf().into_os_string();
        p.push(suffix);
        crate::platform::perms::check_path(Path::new(&p)).map_err(|source| RunError::Lock {
            path: p.into(),
            what: "refusing baseline",
            source,
        })?;
    }
    let f = open_lock(&path).map_err(|source| RunError::Lock {
        path: path.clone(),
        what: "cannot open lock",
        source,
    })?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            tracing::info!(
                input = %name,
                "waiting for another regmon process that is using {}",
                db.display()
            );
            f.lock().map_err(|source| RunError::Lock {
                path: path.clone(),
                what: "cannot lock",
                source,
            })?;
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(RunError::Lock {
                path,
                what: "cannot lock",
                source: e,
            })
        }
    }
    Ok(f)
}

/// The name of input `input`'s own baseline when another configuration
/// owns the shared one: with a short hash of this configuration's path.
fn own_name(input: &str, config: &Path) -> String {
    let h = blake3::hash(config.to_string_lossy().as_bytes()).to_hex();
    format!("regmon-{input}-{}.sqlite", &h[..8])
}

/// `regmon-<input>.sqlite`, or this configuration's own file where an
/// earlier run had to make one (so the other's file is not opened again).
fn own_or_shared(cache_dir: &Path, input: &str, config: &Path) -> PathBuf {
    let own = cache_dir.join(own_name(input, config));
    if own.exists() {
        return own;
    }
    cache_dir.join(format!("regmon-{input}.sqlite"))
}

/// Moves `path` and its -wal and -shm files aside to
/// `<path>.<why>-<UTC time>` (`-2`... when taken), kept for inspection.
fn move_aside(path: &Path, why: &str, now: chrono::DateTime<Utc>) -> std::io::Result<PathBuf> {
    let base = format!("{}.{why}-{}", path.display(), now.format("%Y%m%dT%H%M%SZ"));
    let mut to = PathBuf::from(&base);
    let mut n = 2;
    while to.exists() {
        to = PathBuf::from(format!("{base}-{n}"));
        n += 1;
    }
    std::fs::rename(path, &to)?;
    for ext in ["-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{ext}", path.display()));
        if from.exists() {
            std::fs::rename(&from, format!("{}{ext}", to.display()))?;
        }
    }
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::pattern::Root;
    use hive::write::{to_bytes, KeyNode, WriteOptions};
    use hive::ValueType;

    fn dword(n: u32) -> Vec<u8> {
        n.to_le_bytes().to_vec()
    }

    /// SOFTWARE with Policies (A, B), Policies\Sub (C) and Other (D), after
    /// `edit`.
    fn write_hive(path: &Path, edit: impl FnOnce(&mut KeyNode)) {
        let mut root = KeyNode::new("ROOT")
            .with_subkey(
                KeyNode::new("Policies")
                    .with_value("A", ValueType::DWORD, dword(1))
                    .with_value("B", ValueType::DWORD, dword(2))
                    .with_subkey(KeyNode::new("Sub").with_value("C", ValueType::DWORD, dword(3))),
            )
            .with_subkey(KeyNode::new("Other").with_value("D", ValueType::DWORD, dword(4)));
        edit(&mut root);
        std::fs::write(path, to_bytes(&root, &WriteOptions::default())).unwrap();
    }

    #[test]
    fn inputs_whose_names_make_one_file_name_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("r.conf");
        let input = |name: &str| {
            format!("<Input {name}>\nModule im_regmon\nRegValue 'HKLM\\SOFTWARE\\*'\nHiveFile 'HKLM\\SOFTWARE' 'h.hive'\n</Input>\n")
        };
        std::fs::write(
            &conf,
            format!(
                "{}{}<Output o>\nModule om_file\nFile 'out.log'\n</Output>\n",
                input("a b"),
                input("a_b")
            ),
        )
        .unwrap();
        let errors = Runtime::new(nxconf::load(&conf).unwrap())
            .err()
            .expect("refused");
        assert!(
            errors[0].contains("r.conf:6") && errors[0].contains("'a b' and 'a_b'"),
            "{errors:?}"
        );
    }

    fn runtime(dir: &Path, pattern: &str, extra: &str) -> Runtime {
        let conf = dir.join("r.conf");
        let out = dir.join("out.log");
        std::fs::write(
            &conf,
            format!(
                "<Input r>\nModule im_regmon\nRegValue '{pattern}'\nHiveFile 'HKLM\\SOFTWARE' 'h.hive'\n\
                 ScanInterval 0\n{extra}</Input>\n<Extension json>\nModule xm_json\n</Extension>\n\
                 <Output o>\nModule om_file\nFile '{}'\nExec to_json();\n</Output>\n",
                out.display()
            ),
        )
        .unwrap();
        Runtime::new(nxconf::load(&conf).unwrap()).unwrap()
    }

    /// (EventType, RegistryValueName or RegistryKeyName) of out.log, emptied.
    fn take_events(dir: &Path) -> Vec<(String, String)> {
        let p = dir.join("out.log");
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        std::fs::write(&p, "").unwrap();
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let name = v
                    .get("RegistryValueName")
                    .or_else(|| v.get("RegistryKeyName"))
                    .and_then(|n| n.as_str())
                    .unwrap();
                (
                    v["EventType"].as_str().unwrap().to_string(),
                    name.to_string(),
                )
            })
            .collect()
    }

    fn ev(kind: &str, name: &str) -> (String, String) {
        (kind.to_string(), name.to_string())
    }

    fn region(path: &str, subtree: bool) -> Region {
        Region {
            root: Root::Hklm,
            path: path.split('\\').map(String::from).collect(),
            subtree,
        }
    }

    #[test]
    fn a_region_rescan_reports_only_inside_the_region() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_hive(&d.join("h.hive"), |_| {});
        let mut rt = runtime(d, r"HKLM\SOFTWARE\*", "Recursive TRUE\nKeyEvents TRUE\n");
        rt.scan(0).unwrap();
        assert!(take_events(d).is_empty());
        write_hive(&d.join("h.hive"), |root| {
            let p = root.key_mut("Policies");
            p.set_value("A", ValueType::DWORD, dword(10));
            p.remove_key("Sub");
            p.key_mut("New")
                .set_value("E", ValueType::SZ, b"e\0\0\0".to_vec());
            root.key_mut("Other")
                .set_value("D", ValueType::DWORD, dword(40));
        });
        // The region as a notification names it: spelled as configured.
        rt.scan_regions(0, &[region(r"software\POLICIES", true)])
            .unwrap();
        assert_eq!(
            take_events(d),
            [
                ev("CHANGE", r"HKLM\SOFTWARE\Policies\A"),
                ev("NEW_KEY", r"HKLM\SOFTWARE\Policies\New"),
                ev("NEW", r"HKLM\SOFTWARE\Policies\New\E"),
                ev("DELETE_KEY", r"HKLM\SOFTWARE\Policies\Sub"),
                ev("DELETE", r"HKLM\SOFTWARE\Policies\Sub\C"),
            ]
        );
        // Nothing inside is reported twice; the change outside the region
        // was left for the next whole scan.
        rt.scan_regions(0, &[region(r"SOFTWARE\Policies", true)])
            .unwrap();
        assert!(take_events(d).is_empty());
        rt.scan(0).unwrap();
        assert_eq!(take_events(d), [ev("CHANGE", r"HKLM\SOFTWARE\Other\D")]);
    }

    #[test]
    fn a_key_region_covers_that_key_s_values_only() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_hive(&d.join("h.hive"), |_| {});
        let mut rt = runtime(d, r"HKLM\SOFTWARE\Policies\*", "Recursive TRUE\n");
        rt.scan(0).unwrap();
        write_hive(&d.join("h.hive"), |root| {
            let p = root.key_mut("Policies");
            p.remove_value("B");
            p.key_mut("Sub").set_value("C", ValueType::DWORD, dword(30));
        });
        rt.scan_regions(0, &[region(r"SOFTWARE\Policies", false)])
            .unwrap();
        assert_eq!(take_events(d), [ev("DELETE", r"HKLM\SOFTWARE\Policies\B")]);
        // A region no pattern reaches scans nothing and changes nothing.
        rt.scan_regions(0, &[region(r"SOFTWARE\Other", true)])
            .unwrap();
        assert!(take_events(d).is_empty());
        rt.scan_regions(0, &[region(r"SOFTWARE\Policies\Sub", true)])
            .unwrap();
        assert_eq!(
            take_events(d),
            [ev("CHANGE", r"HKLM\SOFTWARE\Policies\Sub\C")]
        );
    }

    #[test]
    fn without_a_baseline_a_region_rescan_builds_it_whole() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_hive(&d.join("h.hive"), |_| {});
        let mut rt = runtime(d, r"HKLM\SOFTWARE\*", "Recursive TRUE\n");
        rt.scan_regions(0, &[region(r"SOFTWARE\Policies", true)])
            .unwrap();
        write_hive(&d.join("h.hive"), |root| {
            root.key_mut("Other")
                .set_value("D", ValueType::DWORD, dword(40));
        });
        rt.scan(0).unwrap();
        assert_eq!(take_events(d), [ev("CHANGE", r"HKLM\SOFTWARE\Other\D")]);
    }
}
