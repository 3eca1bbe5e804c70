//! Exec's view of the host (logging, module procedures: start_scan(),
//! reopen(), rotate_to(), xm_fileop's file_cycle(), file_rename()... in
//! `fileop`) and the Schedule blocks.

use crate::runtime::clock::{Jump, Tick};
use crate::runtime::input::{Input, OutputSlot};
use chrono::NaiveDateTime;
use nxconf::schedule::When;
use nxconf::{Config, ExecContext, LogLevel, ProcedureCall};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Exec's view of the host: logging, start_scan() for im_regmon, reopen()
/// and rotate_to() for om_file, xm_fileop's procedures.
pub(crate) struct Ctx<'a> {
    pub(crate) inputs: &'a [Input],
    pub(crate) outputs: &'a [OutputSlot],
    pub(crate) host: &'a str,
}

impl ExecContext for Ctx<'_> {
    fn log(&mut self, level: LogLevel, module: &str, message: &str) {
        match level {
            LogLevel::Debug => tracing::debug!(module, "{message}"),
            LogLevel::Info => tracing::info!(module, "{message}"),
            LogLevel::Warning => tracing::warn!(module, "{message}"),
            _ => tracing::error!(module, "{message}"),
        }
    }

    fn call_procedure(&mut self, call: &ProcedureCall<'_>) -> Option<Result<(), String>> {
        let module = call.module.to_ascii_lowercase();
        match (module.as_str(), call.name) {
            ("im_regmon", "start_scan") => {
                let input = self
                    .inputs
                    .iter()
                    .find(|i| i.name.eq_ignore_ascii_case(call.instance))?;
                // Returns at once; at most one more scan is queued however often it is called.
                input.requested.store(true, Ordering::SeqCst);
                Some(Ok(()))
            }
            (m, _) if m.starts_with("om_") => {
                let out = self
                    .outputs
                    .iter()
                    .find(|o| o.name.eq_ignore_ascii_case(call.instance))?;
                let Ok(mut sink) = out.sink.try_borrow_mut() else {
                    return Some(Err(format!("{}() cannot run here", call.name)));
                };
                sink.procedure(call.name, call.args)
            }
            ("xm_fileop", name) => {
                let r = super::fileop::run(name, call.args)?;
                Some(r.map(|touched| {
                    // A renamed, removed or cycled file an output holds open
                    // is closed now, not at its next batch.
                    for path in &touched {
                        for o in self.outputs {
                            if let Ok(mut sink) = o.sink.try_borrow_mut() {
                                sink.forget(path);
                            }
                        }
                    }
                }))
            }
            _ => None,
        }
    }

    fn hostname(&self) -> String {
        self.host.to_string()
    }
}

/// When a schedule runs next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    Never,
    /// At this local wall time (`When`, `First`).
    Local(NaiveDateTime),
    /// At this elapsed time ([`Tick::elapsed`]: `Every`, `@startup`).
    Elapsed(Duration),
}

struct Item {
    schedule: nxconf::Schedule,
    next: Next,
}

/// The Schedule blocks of every module, with their next due times.
///
/// `When` follows the local wall clock, as cron does: after a forward jump
/// (or a suspend) the missed runs collapse into one; after the wall clock
/// goes back, the schedule waits until the wall clock reaches again the
/// time it was waiting for, so no minute runs twice (a DST fall-back or an
/// NTP step back). `Every` counts elapsed time (the monotonic clock plus
/// pauses it did not see): wall clock steps do not move it, and the runs a
/// pause missed collapse into one; `First` is a local wall time.
pub(crate) struct Schedules {
    items: Vec<Item>,
}

impl Schedules {
    pub(crate) fn new(config: &Config, now: &Tick) -> Schedules {
        let schedules = config.modules.iter().flat_map(|m| m.schedules.iter());
        Self::of(schedules.cloned(), now)
    }

    fn of(schedules: impl Iterator<Item = nxconf::Schedule>, now: &Tick) -> Schedules {
        let items = schedules
            .map(|s| {
                let next = match (&s.when, &s.every, s.first) {
                    (Some(When::Startup), _, _) => Next::Elapsed(now.elapsed),
                    (Some(When::Cron(c)), _, _) => {
                        c.next_after(now.local).map_or(Next::Never, Next::Local)
                    }
                    (None, Some(_), Some(first)) => Next::Local(first),
                    (None, Some(every), None) => Next::Elapsed(now.elapsed + *every),
                    (None, None, _) => Next::Never,
                };
                Item { schedule: s, next }
            })
            .collect();
        Schedules { items }
    }

    /// The schedules due now, advanced to their next time.
    pub(crate) fn due(&mut self, now: &Tick) -> Vec<nxconf::Program> {
        self.due_indices(now)
            .into_iter()
            .map(|i| self.items[i].schedule.exec.clone())
            .collect()
    }

    /// The positions of the schedules due at `now`, each run at most once
    /// however many of its times a jump or a pause skipped.
    fn due_indices(&mut self, now: &Tick) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, item) in self.items.iter_mut().enumerate() {
            let s = &item.schedule;
            if let (Some(Jump::Back(_)), Next::Local(t)) = (now.jump, item.next) {
                if t > now.local + chrono::Duration::minutes(1) {
                    tracing::info!(
                        "Schedule at {}: the wall clock went back; the next run stays at {t}, which it had already reached (no run repeats)",
                        s.location
                    );
                }
            }
            let due = match item.next {
                Next::Never => false,
                Next::Local(t) => t <= now.local,
                Next::Elapsed(e) => e <= now.elapsed,
            };
            if !due {
                continue;
            }
            out.push(i);
            item.next = match (&s.when, s.every) {
                (Some(When::Cron(c)), _) => {
                    if let Next::Local(t) = item.next {
                        if c.next_after(t).is_some_and(|n| n <= now.local) {
                            tracing::info!(
                                "Schedule at {}: runs once for the times from {t} to {} that the clock skipped",
                                s.location,
                                now.local.format("%Y-%m-%d %H:%M")
                            );
                        }
                    }
                    c.next_after(now.local).map_or(Next::Never, Next::Local)
                }
                (None, Some(every)) => {
                    Next::Elapsed(now.elapsed + until_next(item.next, every, now))
                }
                _ => Next::Never,
            };
        }
        out
    }
}

/// For an `Every` schedule that ran at `now` and was due at `was`: the time
/// to its next run, on the grid of its earlier runs (a pause skips the
/// runs it missed instead of running them in a burst).
fn until_next(was: Next, every: Duration, now: &Tick) -> Duration {
    if every.is_zero() {
        return Duration::MAX / 2;
    }
    let late = match was {
        Next::Elapsed(e) => now.elapsed.saturating_sub(e),
        // First: late by the wall time since it.
        Next::Local(t) => (now.local - t).to_std().unwrap_or_default(),
        Next::Never => Duration::ZERO,
    };
    let every_ns = every.as_nanos();
    let into = late.as_nanos() % every_ns;
    Duration::from_nanos(u64::try_from(every_ns - into).unwrap_or(u64::MAX))
}

/// The periodic scans (`ScanInterval`), on elapsed time: each input's next
/// whole scan is one interval after the last one started. A pause longer
/// than an interval gives one scan, not one per interval missed.
pub(crate) struct Intervals {
    /// Per input: the interval (none for 0) and the next due time.
    items: Vec<Option<(Duration, Duration)>>,
}

impl Intervals {
    /// A first scan at `now` for every input with an interval.
    pub(crate) fn new(seconds: impl Iterator<Item = u64>, now: &Tick) -> Intervals {
        Intervals {
            items: seconds
                .map(|s| (s > 0).then(|| (Duration::from_secs(s), now.elapsed)))
                .collect(),
        }
    }

    /// Whether input `i`'s periodic scan is due; if it is, the next one is
    /// set an interval from now.
    pub(crate) fn take_due(&mut self, i: usize, now: &Tick) -> bool {
        match self.items.get_mut(i) {
            Some(Some((every, next))) if *next <= now.elapsed => {
                *next = now.elapsed.saturating_add(*every);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::clock::{Clock, SimClock, Timeline};

    const MIN: u64 = 60;
    const HOUR: u64 = 3600;
    const DAY: u64 = 86400;

    /// One `Schedule` per entry (`When ...` or `Every ...` lines), in order.
    fn schedules(blocks: &[&str], now: &Tick) -> Schedules {
        let mut text = String::from("<Extension e>\nModule xm_json\n");
        for b in blocks {
            text.push_str(&format!(
                "<Schedule>\n{b}\nExec log_info('x');\n</Schedule>\n"
            ));
        }
        text.push_str("</Extension>\n");
        let config = nxconf::parse_str(&text, "t.conf").unwrap();
        Schedules::new(&config, now)
    }

    /// What the clock does between ticks.
    enum Step {
        /// Real time passes (ticks every 10 s).
        Run(u64),
        /// The wall clock is stepped by this many seconds.
        Wall(i64),
        /// A suspend of this many seconds (the monotonic clock stands still).
        Suspend(u64),
    }

    /// Drives the schedules `blocks` and one input with `ScanInterval
    /// interval` through `steps` from 2024-03-10 12:00:00 (local = UTC),
    /// and lists what ran: `S<n> <local time>` for schedule n, `scan
    /// <local time>` for the periodic scan.
    fn drive(blocks: &[&str], interval: u64, steps: &[Step]) -> Vec<String> {
        let c = SimClock::at("2024-03-10 12:00:00");
        let mut timeline = Timeline::new(&c);
        let start = timeline.start(&c);
        let mut s = schedules(blocks, &start);
        let mut iv = Intervals::new([interval].into_iter(), &start);
        let mut log = Vec::new();
        let mut look = |now: &Tick, log: &mut Vec<String>| {
            let at = now.local.format("%d %H:%M:%S");
            for i in s.due_indices(now) {
                log.push(format!("S{i} {at}"));
            }
            if iv.take_due(0, now) {
                log.push(format!("scan {at}"));
            }
        };
        look(&start, &mut log);
        for step in steps {
            match *step {
                Step::Run(secs) => {
                    for _ in 0..secs / 10 {
                        c.sleep(Duration::from_secs(10));
                        look(&timeline.tick(&c), &mut log);
                    }
                }
                Step::Wall(secs) => c.step_wall(secs),
                Step::Suspend(secs) => c.suspend(Duration::from_secs(secs)),
            }
        }
        log
    }

    const HALF_HOURLY: &str = "When */30 * * * *";
    const EVERY_HOUR: &str = "Every 1 hour";

    #[test]
    fn steady_time() {
        assert_eq!(
            drive(&[HALF_HOURLY, EVERY_HOUR], HOUR, &[Step::Run(2 * HOUR)]),
            [
                "scan 10 12:00:00",
                "S0 10 12:30:00",
                "S0 10 13:00:00",
                "S1 10 13:00:00",
                "scan 10 13:00:00",
                "S0 10 13:30:00",
                "S0 10 14:00:00",
                "S1 10 14:00:00",
                "scan 10 14:00:00",
            ]
        );
    }

    #[test]
    fn a_step_back_repeats_no_minute_and_leaves_intervals_alone() {
        // From 12:30:30 the wall clock goes back; the loop then runs until
        // 14:00 real time.
        let cases: [(i64, &[&str]); 3] = [
            // 30 s: 12:30 does not run again; Every and the interval stay
            // on real time (13:00 real is 12:59:30 on the stepped clock).
            (
                30,
                &[
                    "scan 10 12:00:00",
                    "S0 10 12:30:00",
                    "S1 10 12:59:30",
                    "scan 10 12:59:30",
                    "S0 10 13:00:00",
                    "S0 10 13:30:00",
                    "S1 10 13:59:30",
                    "scan 10 13:59:30",
                ],
            ),
            // An hour: the half-hourly waits for 13:00, the time it was
            // waiting for (12:30 does not run again).
            (
                HOUR as i64,
                &[
                    "scan 10 12:00:00",
                    "S0 10 12:30:00",
                    "S1 10 12:00:00",
                    "scan 10 12:00:00",
                    "S0 10 13:00:00",
                    "S1 10 13:00:00",
                    "scan 10 13:00:00",
                ],
            ),
            // A day: the half-hourly waits a day; the others keep going.
            (
                DAY as i64,
                &[
                    "scan 10 12:00:00",
                    "S0 10 12:30:00",
                    "S1 09 13:00:00",
                    "scan 09 13:00:00",
                    "S1 09 14:00:00",
                    "scan 09 14:00:00",
                ],
            ),
        ];
        for (back, want) in cases {
            let got = drive(
                &[HALF_HOURLY, EVERY_HOUR],
                HOUR,
                &[
                    Step::Run(30 * MIN + 30),
                    Step::Wall(-back),
                    Step::Run(2 * HOUR - 30 * MIN - 30),
                ],
            );
            assert_eq!(got, want, "back {back} s");
        }
    }

    #[test]
    fn a_step_forward_runs_each_schedule_once() {
        // At 12:20 the wall clock jumps ahead; the loop then runs 40 min.
        // A step forward cannot be told from a suspend: Every and the
        // interval count it as elapsed time too (one run each, then on
        // their grids).
        let cases: [(i64, &[&str]); 3] = [
            (
                20,
                &[
                    "scan 10 12:00:00",
                    "S0 10 12:30:00",
                    "S0 10 13:00:00",
                    "S1 10 13:00:00",
                    "scan 10 13:00:00",
                ],
            ),
            // One run for 12:30 and 13:00 together.
            (
                HOUR as i64,
                &[
                    "scan 10 12:00:00",
                    "S0 10 13:20:10",
                    "S1 10 13:20:10",
                    "scan 10 13:20:10",
                    "S0 10 13:30:00",
                    "S0 10 14:00:00",
                    "S1 10 14:00:00",
                ],
            ),
            (
                DAY as i64,
                &[
                    "scan 10 12:00:00",
                    "S0 11 12:20:10",
                    "S1 11 12:20:10",
                    "scan 11 12:20:10",
                    "S0 11 12:30:00",
                    "S0 11 13:00:00",
                    "S1 11 13:00:00",
                ],
            ),
        ];
        for (ahead, want) in cases {
            let got = drive(
                &[HALF_HOURLY, EVERY_HOUR],
                HOUR,
                &[Step::Run(20 * MIN), Step::Wall(ahead), Step::Run(40 * MIN)],
            );
            assert_eq!(got, want, "ahead {ahead} s");
        }
    }

    #[test]
    fn a_six_hour_suspend_runs_what_it_missed_once() {
        assert_eq!(
            drive(
                &[
                    HALF_HOURLY,
                    EVERY_HOUR,
                    "Every 1 hour\nFirst 2024-03-10 12:15:00"
                ],
                HOUR,
                &[
                    Step::Run(20 * MIN),
                    Step::Suspend(6 * HOUR),
                    Step::Run(HOUR + 10),
                ],
            ),
            [
                "scan 10 12:00:00",
                "S2 10 12:15:00",
                // Resumed at 18:20:00; the first tick is 10 s later.
                "S0 10 18:20:10",
                "S1 10 18:20:10",
                "S2 10 18:20:10",
                "scan 10 18:20:10",
                "S0 10 18:30:00",
                // Every keeps its grid (12:00 + 7 h, 12:15 + 7 h); the
                // interval counts from the scan at 18:20:10.
                "S0 10 19:00:00",
                "S1 10 19:00:00",
                "S2 10 19:15:00",
                "scan 10 19:20:10",
            ]
        );
    }

    #[test]
    fn startup_runs_once() {
        assert_eq!(
            drive(&["When @startup"], 0, &[Step::Suspend(DAY), Step::Run(60)]),
            ["S0 10 12:00:00"]
        );
    }
}
