//! How hard a scan pushes (`ScanRate`, `LowPriority`; see [`Pace`]).
//!
//! A scan's entry points ([`super::scan`], [`super::scan_streamed`], the live
//! scan) open a [`Scan`] on their thread; the threads they start join it
//! ([`Scan::join`]), so one scan has one pace however many threads or passes
//! it runs (the live split scan's workers, the streamed scan's worker, the
//! two passes of `64BitView BOTH`). The scanner reports each key's values as
//! it takes them ([`tick`]).
//!
//! `ScanRate N` is a deadline pacer: value `k` of the scan is due `k / N`
//! seconds after the scan began, and a thread that is ahead sleeps until its
//! values are due. The clock is read once per step of about 20 ms worth of
//! values, never per value, and an unpaced scan pays one thread-local read
//! per key. A scan of few values takes at least its count / N seconds and
//! no more than that plus one step.
//!
//! `LowPriority TRUE` lowers every thread of the scan to background CPU and
//! I/O priority while it scans ([`crate::platform::priority`]).
//!
//! A stop request (the service's, see [`stop_on`]) lifts the pace: the scan
//! in progress finishes at full speed, its changes reported and committed,
//! instead of holding the stop for as long as its rate would take (hours
//! at `ScanRate 100` over a million values).

use crate::config::Pace;
use crate::platform::priority;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The pace one scan shares between its threads.
#[derive(Debug)]
pub struct Shared {
    pace: Pace,
    /// When the scan began: value k is due k / rate seconds later.
    start: Instant,
    /// Values taken so far, by every thread of the scan.
    done: AtomicU64,
    /// Values per clock check (about 20 ms of the rate).
    step: u64,
    /// The stop request the scan's pace gives way to.
    stop: Option<Arc<AtomicBool>>,
}

thread_local! {
    /// The scan this thread works for, if any.
    static CURRENT: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
    /// The stop request scans begun on this thread give way to.
    static STOP: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// While the returned guard lives, scans begun on this thread stop pacing
/// once `stop` is set (the service loop's stop request).
pub fn stop_on(stop: Arc<AtomicBool>) -> StopGuard {
    STOP.with(|s| *s.borrow_mut() = Some(stop));
    StopGuard(())
}

/// See [`stop_on`].
pub struct StopGuard(());

impl Drop for StopGuard {
    fn drop(&mut self) {
        STOP.with(|s| *s.borrow_mut() = None);
    }
}

/// The longest a paced thread sleeps before looking at the stop request.
const NAP: Duration = Duration::from_millis(50);

/// Values per clock check: about this long's worth of the rate.
const STEP: Duration = Duration::from_millis(20);

/// A thread's part in a scan's pace; the thread leaves it (and gets its
/// priority back, where the system allows) when this is dropped.
pub struct Scan {
    /// False when the thread was in a scan already (a nested entry point,
    /// e.g. each pass of `64BitView BOTH`): dropping it changes nothing.
    owner: bool,
    _lowered: Option<priority::Lowered>,
}

impl Scan {
    /// Opens a scan with `pace` on this thread, or joins the one this
    /// thread works for already.
    pub fn begin(pace: &Pace) -> Scan {
        if current().is_some() {
            return Scan {
                owner: false,
                _lowered: None,
            };
        }
        let shared = Arc::new(Shared {
            pace: *pace,
            start: Instant::now(),
            done: AtomicU64::new(0),
            step: pace
                .rate
                .map(|r| ((r as f64 * STEP.as_secs_f64()) as u64).max(1))
                .unwrap_or(u64::MAX),
            stop: STOP.with(|s| s.borrow().clone()),
        });
        Scan::join(Some(shared))
    }

    /// Joins the scan `shared` (see [`current`]) on this thread, a thread
    /// the scan started: lowered too when the scan is `LowPriority`.
    pub fn join(shared: Option<Arc<Shared>>) -> Scan {
        let Some(shared) = shared else {
            return Scan {
                owner: false,
                _lowered: None,
            };
        };
        let lowered = shared.pace.low_priority.then(priority::lower_this_thread);
        CURRENT.with(|c| *c.borrow_mut() = Some(shared));
        Scan {
            owner: true,
            _lowered: lowered,
        }
    }
}

impl Drop for Scan {
    fn drop(&mut self) {
        if self.owner {
            CURRENT.with(|c| *c.borrow_mut() = None);
        }
        // `_lowered` restores the priority after this.
    }
}

/// The scan this thread works for, to hand to the threads it starts.
pub fn current() -> Option<Arc<Shared>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// `n` more values taken by this thread's scan: sleeps while the scan is
/// ahead of its `ScanRate`.
pub fn tick(n: usize) {
    if n == 0 {
        return;
    }
    CURRENT.with(|c| {
        if let Some(s) = c.borrow().as_ref() {
            s.tick(n as u64);
        }
    });
}

impl Shared {
    fn tick(&self, n: u64) {
        let Some(rate) = self.pace.rate.filter(|&r| r > 0) else {
            return;
        };
        let before = self.done.fetch_add(n, Ordering::Relaxed);
        let after = before + n;
        // The clock is read when the count crosses a step, not per key.
        if after / self.step == before / self.step {
            return;
        }
        let due = self.start + Duration::from_secs_f64(after as f64 / rate as f64);
        loop {
            if self.stopping() {
                return;
            }
            let now = Instant::now();
            if due <= now {
                return;
            }
            std::thread::sleep((due - now).min(NAP));
        }
    }

    fn stopping(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paced(rate: u64) -> Pace {
        Pace {
            rate: Some(rate),
            low_priority: false,
        }
    }

    #[test]
    fn a_paced_scan_takes_its_count_over_the_rate() {
        let _s = Scan::begin(&paced(1000));
        let t = Instant::now();
        // 300 values in keys of 7: due at 0.3 s.
        for _ in 0..43 {
            tick(7);
        }
        assert!(
            t.elapsed() >= Duration::from_millis(280),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn without_a_rate_nothing_waits_and_nothing_is_counted() {
        let _s = Scan::begin(&Pace::default());
        for _ in 0..1_000_000 {
            tick(100);
        }
        let cur = current().unwrap();
        assert_eq!(cur.done.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn nested_entry_points_and_started_threads_share_one_pace() {
        let outer = Scan::begin(&paced(1000));
        let shared = current().unwrap();
        {
            let _inner = Scan::begin(&paced(5));
            // The outer scan's pace, not a new one.
            assert!(Arc::ptr_eq(&current().unwrap(), &shared));
            tick(3);
        }
        // The nested entry point left the thread in the outer scan.
        assert!(Arc::ptr_eq(&current().unwrap(), &shared));
        let handed = current();
        std::thread::spawn(move || {
            let _j = Scan::join(handed);
            tick(4);
        })
        .join()
        .unwrap();
        assert_eq!(shared.done.load(Ordering::Relaxed), 7);
        drop(outer);
        assert!(current().is_none());
    }

    #[test]
    fn a_stop_request_lifts_the_pace() {
        let stop = Arc::new(AtomicBool::new(false));
        let _g = stop_on(stop.clone());
        // 1000 values at 10 per second: 100 s paced.
        let _s = Scan::begin(&paced(10));
        let setter = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                stop.store(true, Ordering::SeqCst);
            })
        };
        let t = Instant::now();
        for _ in 0..1000 {
            tick(1);
        }
        setter.join().unwrap();
        let took = t.elapsed();
        assert!(took < Duration::from_secs(10), "{took:?}");
        assert!(took >= Duration::from_millis(150), "{took:?}");
    }

    #[test]
    fn ticks_outside_a_scan_do_nothing() {
        assert!(current().is_none());
        tick(1_000_000);
    }
}
