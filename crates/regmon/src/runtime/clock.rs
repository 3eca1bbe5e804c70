//! Time as the foreground loop sees it: a monotonic clock for intervals
//! (`ScanInterval`, `Every`), the wall clock for `EventTime` and `When`.
//!
//! The wall clock may step back or forward (NTP, an administrator, a VM
//! restored from a snapshot); the monotonic clock never goes back but may
//! stand still while the machine is suspended or a VM is paused. The
//! [`Timeline`] compares the two at every tick: wall time that ran ahead of
//! the monotonic clock is counted as elapsed time (a pause the monotonic
//! clock did not see), so an interval missed during a suspend runs once at
//! resume; wall time that went back is not, and is logged.

use chrono::{DateTime, Local, NaiveDateTime, Utc};
use std::time::{Duration, Instant};

/// The two clocks, and waiting. The real one is [`SystemClock`]; tests use
/// [`SimClock`].
pub(crate) trait Clock {
    /// Time since an arbitrary origin; never goes back.
    fn now_monotonic(&self) -> Duration;
    /// The wall clock: what EventTime shows.
    fn now_wall(&self) -> DateTime<Utc>;
    /// `wall` as local time, which `When` crontab schedules follow (as in
    /// NXLog).
    fn local(&self, wall: DateTime<Utc>) -> NaiveDateTime {
        wall.with_timezone(&Local).naive_local()
    }
    fn sleep(&self, d: Duration);
}

/// The operating system's clocks.
pub(crate) struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub(crate) fn new() -> SystemClock {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now_monotonic(&self) -> Duration {
        self.origin.elapsed()
    }

    fn now_wall(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// Differences between the clocks below this are drift, slewing or the
/// time a tick took, not a jump.
const SLACK: Duration = Duration::from_secs(2);

/// A jump of the wall clock relative to the monotonic clock, seen at a tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Jump {
    /// The wall clock ran ahead by this much: a suspend, a paused or
    /// restored VM, or a forward step.
    Forward(Duration),
    /// The wall clock went back by this much.
    Back(Duration),
}

/// One reading of both clocks, as the loop's schedules use it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tick {
    /// Elapsed time: the monotonic clock plus every pause it did not see.
    /// Never goes back.
    pub(crate) elapsed: Duration,
    /// The wall clock in local time (for `When`).
    pub(crate) local: NaiveDateTime,
    /// Whether the wall clock jumped since the previous tick.
    pub(crate) jump: Option<Jump>,
}

/// Reads the clocks tick by tick and keeps the elapsed time honest.
pub(crate) struct Timeline {
    last_mono: Duration,
    last_wall: DateTime<Utc>,
    /// Pauses found so far (wall time the monotonic clock did not count).
    paused: Duration,
}

impl Timeline {
    pub(crate) fn new(clock: &dyn Clock) -> Timeline {
        Timeline {
            last_mono: clock.now_monotonic(),
            last_wall: clock.now_wall(),
            paused: Duration::ZERO,
        }
    }

    /// The first reading (no jump can be seen yet).
    pub(crate) fn start(&self, clock: &dyn Clock) -> Tick {
        Tick {
            elapsed: self.last_mono + self.paused,
            local: clock.local(self.last_wall),
            jump: None,
        }
    }

    pub(crate) fn tick(&mut self, clock: &dyn Clock) -> Tick {
        let mono = clock.now_monotonic().max(self.last_mono);
        let wall = clock.now_wall();
        let d_mono = mono - self.last_mono;
        let d_wall = wall - self.last_wall;
        let jump = match d_wall.to_std() {
            Ok(d) if d > d_mono + SLACK => Some(Jump::Forward(d - d_mono)),
            Ok(d) if d + SLACK < d_mono => Some(Jump::Back(d_mono - d)),
            Ok(_) => None,
            // The wall clock is behind where it was.
            Err(_) => Some(Jump::Back(
                d_mono + (-d_wall).to_std().unwrap_or(Duration::ZERO),
            )),
        };
        match jump {
            Some(Jump::Forward(d)) => {
                self.paused += d;
                tracing::warn!(
                    "the wall clock ran {} ahead of the monotonic clock (suspend, paused or restored VM, or a clock step): \
                     intervals count it as elapsed; a missed scan runs once, not once per missed interval",
                    human(d)
                );
            }
            Some(Jump::Back(d)) => tracing::warn!(
                "the wall clock went back by {} (from {} to {}): EventTime follows the wall clock; \
                 intervals are unaffected; a When schedule does not run again for a minute it already ran",
                human(d),
                self.last_wall.format("%Y-%m-%d %H:%M:%S UTC"),
                wall.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            None => {}
        }
        self.last_mono = mono;
        self.last_wall = wall;
        Tick {
            elapsed: mono + self.paused,
            local: clock.local(wall),
            jump,
        }
    }
}

/// `d` for a log line: `1h 2m 3s`, `4.5s`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        return format!("{:.1}s", d.as_secs_f64());
    }
    let (days, h, m, s) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    let mut out = String::new();
    for (n, unit) in [(days, "d"), (h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

/// A simulated clock: time moves only when a test (or `sleep`) moves it.
/// Local time is UTC, so tests do not depend on the machine's zone.
#[cfg(test)]
pub(crate) struct SimClock {
    mono: std::cell::Cell<Duration>,
    wall: std::cell::Cell<DateTime<Utc>>,
}

#[cfg(test)]
impl SimClock {
    /// Starts at `wall` (`YYYY-MM-DD hh:mm:ss`, UTC).
    pub(crate) fn at(wall: &str) -> SimClock {
        let t = NaiveDateTime::parse_from_str(wall, "%Y-%m-%d %H:%M:%S")
            .expect("a test datetime")
            .and_utc();
        SimClock {
            mono: std::cell::Cell::new(Duration::from_secs(1000)),
            wall: std::cell::Cell::new(t),
        }
    }

    /// Real time passes: both clocks move.
    pub(crate) fn advance(&self, d: Duration) {
        self.mono.set(self.mono.get() + d);
        self.wall.set(self.wall.get() + d);
    }

    /// The wall clock is stepped by `secs` (negative: back).
    pub(crate) fn step_wall(&self, secs: i64) {
        self.wall
            .set(self.wall.get() + chrono::Duration::seconds(secs));
    }

    /// The machine is suspended for `d`: the wall clock moves, the
    /// monotonic clock stands still.
    pub(crate) fn suspend(&self, d: Duration) {
        self.wall.set(self.wall.get() + d);
    }
}

#[cfg(test)]
impl Clock for SimClock {
    fn now_monotonic(&self) -> Duration {
        self.mono.get()
    }

    fn now_wall(&self) -> DateTime<Utc> {
        self.wall.get()
    }

    fn local(&self, wall: DateTime<Utc>) -> NaiveDateTime {
        wall.naive_utc()
    }

    fn sleep(&self, d: Duration) {
        self.advance(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn jumps_are_seen_and_pauses_count_as_elapsed() {
        let c = SimClock::at("2024-03-10 12:00:00");
        let mut t = Timeline::new(&c);
        let e0 = t.start(&c).elapsed;
        c.advance(SEC);
        let k = t.tick(&c);
        assert_eq!((k.elapsed - e0, k.jump), (SEC, None));
        // A one-second step is within the slack: no jump.
        c.step_wall(1);
        assert_eq!(t.tick(&c).jump, None);
        c.step_wall(-3600);
        let k = t.tick(&c);
        assert_eq!(k.jump, Some(Jump::Back(3600 * SEC)));
        assert_eq!(
            k.elapsed - e0,
            SEC,
            "a step back does not move elapsed time"
        );
        c.suspend(6 * 3600 * SEC);
        let k = t.tick(&c);
        assert_eq!(k.jump, Some(Jump::Forward(6 * 3600 * SEC)));
        assert_eq!(k.elapsed - e0, SEC + 6 * 3600 * SEC);
        assert_eq!(human(6 * 3600 * SEC + 61 * SEC), "6h 1m 1s");
        assert_eq!(human(SEC / 2), "0.5s");
    }
}
