//! Background priority for the threads of a scan (`LowPriority TRUE`).
//!
//! - Linux: the calling thread (Linux priorities are per thread) gets nice
//!   19 (`setpriority(PRIO_PROCESS, tid, 19)`) and the idle I/O class
//!   (`ioprio_set(IOPRIO_WHO_PROCESS, tid, IOPRIO_CLASS_IDLE)`): it runs and
//!   reads the disk only when nothing else wants to. Both are restored when
//!   the [`Lowered`] is dropped. The I/O class always can be; raising the
//!   nice value back needs CAP_SYS_NICE (or an RLIMIT_NICE that allows it):
//!   without it the thread stays at nice 19 (said once in the log): the
//!   scan's worker threads end with the scan, but the thread that called
//!   the scan (the service's main loop, which also delivers events) then
//!   keeps running at nice 19.
//! - Windows: `THREAD_MODE_BACKGROUND_BEGIN` (low CPU, I/O and memory
//!   priority for the thread), ended by `THREAD_MODE_BACKGROUND_END`.
//!   Wine 8 refuses the mode (ERROR_INVALID_PARAMETER): scans under Wine
//!   run at normal priority (logged at debug).
//! - Elsewhere: nothing is changed (said once in the log).

/// A thread lowered to background priority; restored when dropped.
pub struct Lowered {
    #[cfg(target_os = "linux")]
    old: linux::Saved,
    #[cfg(windows)]
    began: bool,
}

/// Lowers the calling thread to background CPU and I/O priority until the
/// returned value is dropped. Failures are logged (debug), never fatal:
/// a scan at normal priority still finds the same values.
pub fn lower_this_thread() -> Lowered {
    #[cfg(target_os = "linux")]
    {
        Lowered {
            old: linux::lower(),
        }
    }
    #[cfg(windows)]
    {
        let began = match windows::begin() {
            Ok(()) => {
                tracing::debug!("LowPriority: scan thread in background mode");
                true
            }
            Err(e) => {
                // Wine 8 does not know the mode (ERROR_INVALID_PARAMETER).
                tracing::debug!("LowPriority: cannot begin background mode: {e}");
                false
            }
        };
        Lowered { began }
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            tracing::info!("LowPriority: thread priorities are not changed on this system")
        });
        Lowered {}
    }
}

impl Drop for Lowered {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        linux::restore(&self.old);
        #[cfg(windows)]
        if self.began {
            windows::end();
        }
    }
}

/// The calling thread's nice value (Linux), for the log and the tests.
#[cfg(target_os = "linux")]
pub fn thread_nice() -> i32 {
    linux::nice(linux::tid())
}

#[cfg(target_os = "linux")]
mod linux {
    /// ioprio_set/get's `which` for a thread id.
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_IDLE: libc::c_long = 3;
    const IOPRIO_CLASS_SHIFT: u32 = 13;
    /// The lowest CPU priority.
    const NICE_LOW: i32 = 19;

    /// A thread's priorities before it was lowered (None: not changed).
    pub struct Saved {
        tid: libc::pid_t,
        nice: Option<i32>,
        ioprio: Option<libc::c_long>,
    }

    pub fn tid() -> libc::pid_t {
        // SAFETY: gettid takes no arguments and cannot fail.
        unsafe { libc::gettid() }
    }

    pub fn nice(tid: libc::pid_t) -> i32 {
        // SAFETY: plain system call on this thread's id; -1 is both a nice
        // value and the error return, but a live thread's own id cannot
        // fail (ESRCH/EINVAL are for other ids and `which` values).
        unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) }
    }

    fn set_nice(tid: libc::pid_t, n: i32) -> std::io::Result<()> {
        // SAFETY: plain system call with integer arguments.
        let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, n) };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    fn ioprio(tid: libc::pid_t) -> std::io::Result<libc::c_long> {
        // SAFETY: ioprio_get takes two integers and returns one.
        let r = unsafe {
            libc::syscall(
                libc::SYS_ioprio_get,
                IOPRIO_WHO_PROCESS,
                tid as libc::c_long,
            )
        };
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }

    fn set_ioprio(tid: libc::pid_t, prio: libc::c_long) -> std::io::Result<()> {
        // SAFETY: ioprio_set takes three integers.
        let r = unsafe {
            libc::syscall(
                libc::SYS_ioprio_set,
                IOPRIO_WHO_PROCESS,
                tid as libc::c_long,
                prio,
            )
        };
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    pub fn lower() -> Saved {
        let tid = tid();
        let was = nice(tid);
        let nice_saved = match set_nice(tid, NICE_LOW) {
            Ok(()) => Some(was),
            Err(e) => {
                tracing::debug!("LowPriority: cannot set thread {tid} to nice {NICE_LOW}: {e}");
                None
            }
        };
        let ioprio_saved = match ioprio(tid)
            .and_then(|old| set_ioprio(tid, IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT).map(|()| old))
        {
            Ok(old) => Some(old),
            Err(e) => {
                tracing::debug!("LowPriority: cannot set thread {tid} to the idle I/O class: {e}");
                None
            }
        };
        tracing::debug!(
            "LowPriority: scan thread {tid} at nice {} (was {was}), I/O class {}",
            nice(tid),
            if ioprio_saved.is_some() {
                "idle"
            } else {
                "unchanged"
            }
        );
        Saved {
            tid,
            nice: nice_saved,
            ioprio: ioprio_saved,
        }
    }

    pub fn restore(s: &Saved) {
        if let Some(p) = s.ioprio {
            if let Err(e) = set_ioprio(s.tid, p) {
                tracing::debug!(
                    "LowPriority: cannot restore the I/O class of thread {}: {e}",
                    s.tid
                );
            }
        }
        if let Some(n) = s.nice.filter(|&n| n != NICE_LOW) {
            if let Err(e) = set_nice(s.tid, n) {
                static ONCE: std::sync::Once = std::sync::Once::new();
                ONCE.call_once(|| {
                    tracing::info!(
                        "LowPriority: thread {} stays at nice {NICE_LOW} after the scan: raising it back to {n} needs CAP_SYS_NICE ({e})",
                        s.tid
                    )
                });
            }
        }
    }
}

#[cfg(windows)]
mod windows {
    use windows_sys::Win32::System::Threading::{
        GetCurrentThread, SetThreadPriority, THREAD_MODE_BACKGROUND_BEGIN,
        THREAD_MODE_BACKGROUND_END,
    };

    /// Begins background mode for this thread (an error: it failed, or
    /// the thread was in it already, which is not ours to end).
    pub fn begin() -> std::io::Result<()> {
        // SAFETY: GetCurrentThread returns a pseudo handle valid on this
        // thread; SetThreadPriority only changes this thread's scheduling.
        let ok = unsafe { SetThreadPriority(GetCurrentThread(), THREAD_MODE_BACKGROUND_BEGIN) };
        if ok == 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn end() {
        // SAFETY: as in `begin`, on the thread that began background mode.
        let ok = unsafe { SetThreadPriority(GetCurrentThread(), THREAD_MODE_BACKGROUND_END) };
        if ok == 0 {
            tracing::debug!(
                "LowPriority: cannot end background mode: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn a_lowered_thread_runs_at_nice_19_and_the_others_do_not() {
        let main_before = super::thread_nice();
        std::thread::spawn(|| {
            let before = super::thread_nice();
            let l = super::lower_this_thread();
            assert_eq!(super::thread_nice(), 19);
            let other = std::thread::spawn(super::thread_nice).join().unwrap();
            assert_eq!(
                other, 19,
                "a thread started by a lowered one inherits its nice value"
            );
            drop(l);
            let after = super::thread_nice();
            // Raised back where allowed (root here), else it stays low.
            assert!(after == before || after == 19, "{before} -> {after}");
        })
        .join()
        .unwrap();
        // Linux priorities are per thread: the spawning thread is untouched.
        assert_eq!(super::thread_nice(), main_before);
    }
}

#[cfg(all(test, windows))]
mod win_tests {
    #[test]
    fn background_mode_begins_for_the_scan_and_ends_after() {
        std::thread::spawn(|| {
            // ERROR_INVALID_PARAMETER: Wine 8, which does not implement
            // background mode (the scan then runs at normal priority).
            const ERROR_INVALID_PARAMETER: i32 = 87;
            if let Err(e) = super::windows::begin() {
                assert_eq!(e.raw_os_error(), Some(ERROR_INVALID_PARAMETER), "{e}");
                let l = super::lower_this_thread();
                assert!(!l.began);
                return;
            }
            super::windows::end();
            let l = super::lower_this_thread();
            assert!(l.began);
            // In background mode: a second BEGIN is refused, and the
            // scan's guard will not end a mode it did not begin.
            assert!(super::windows::begin().is_err());
            drop(l);
            // Ended: it begins again.
            assert!(super::windows::begin().is_ok());
            super::windows::end();
        })
        .join()
        .unwrap();
    }
}
