//! The request to stop the foreground loop: SIGINT / SIGTERM on Unix;
//! Ctrl-C, Ctrl-Break, closing the console, logoff and shutdown on Windows.
//! Either sets one flag that the loop polls, so a scan in progress finishes
//! and its events are delivered before regmon exits.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Sets `stop` when the process is asked to stop.
#[cfg(unix)]
pub fn on_stop(stop: Arc<AtomicBool>) -> Result<(), String> {
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
    }
    Ok(())
}

// The C runtime's signal() emulation is not used on Windows: console control
// events are the native way (and Wine's CRT SIGINT path crashed here).
#[cfg(windows)]
static STOP: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

/// Sets `stop` when the process is asked to stop.
#[cfg(windows)]
pub fn on_stop(stop: Arc<AtomicBool>) -> Result<(), String> {
    use windows_sys::Win32::System::Console::SetConsoleCtrlHandler;
    if STOP.set(stop).is_err() {
        return Err("the stop handler is already installed".into());
    }
    // SAFETY: `handler` is a valid `extern "system"` routine for the process'
    // whole life; it only touches a static atomic.
    if unsafe { SetConsoleCtrlHandler(Some(handler), 1) } == 0 {
        return Err(format!(
            "cannot install a console control handler: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[cfg(windows)]
unsafe extern "system" fn handler(_event: u32) -> windows_sys::core::BOOL {
    if let Some(stop) = STOP.get() {
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    // Handled: the process is not ended at once, the loop winds down.
    1
}
