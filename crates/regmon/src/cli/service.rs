//! regmon as a Windows service, as NXLog runs: `regmon service install -c
//! FILE` registers it (automatic start, LocalSystem), the service control
//! manager then starts `regmon service run -c FILE`, which runs the same
//! foreground loop as `regmon -c FILE` until the service is stopped or the
//! system shuts down; `regmon service uninstall` stops and removes it.

use regmon::source::live::wide;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use windows_sys::Win32::Foundation::{
    ERROR_CALL_NOT_IMPLEMENTED, ERROR_SERVICE_SPECIFIC_ERROR, NO_ERROR,
};
use windows_sys::Win32::System::Services::{
    CloseServiceHandle, ControlService, CreateServiceW, DeleteService, OpenSCManagerW,
    OpenServiceW, RegisterServiceCtrlHandlerExW, SetServiceStatus, StartServiceCtrlDispatcherW,
    SC_HANDLE, SC_MANAGER_CONNECT, SC_MANAGER_CREATE_SERVICE, SERVICE_ACCEPT_SHUTDOWN,
    SERVICE_ACCEPT_STOP, SERVICE_ALL_ACCESS, SERVICE_AUTO_START, SERVICE_CONTROL_INTERROGATE,
    SERVICE_CONTROL_SHUTDOWN, SERVICE_CONTROL_STOP, SERVICE_ERROR_NORMAL, SERVICE_QUERY_STATUS,
    SERVICE_RUNNING, SERVICE_START_PENDING, SERVICE_STATUS, SERVICE_STATUS_HANDLE, SERVICE_STOP,
    SERVICE_STOPPED, SERVICE_STOP_PENDING, SERVICE_TABLE_ENTRYW, SERVICE_WIN32_OWN_PROCESS,
};

/// The default service name.
pub const DEFAULT_NAME: &str = "regmon";

/// DELETE (a standard access right).
const DELETE: u32 = 0x0001_0000;

fn last_error() -> String {
    std::io::Error::last_os_error().to_string()
}

/// A service control manager handle, closed on drop.
struct Sc(SC_HANDLE);

impl Drop for Sc {
    fn drop(&mut self) {
        // SAFETY: the handle came from OpenSCManagerW / CreateServiceW /
        // OpenServiceW and is closed once.
        unsafe { CloseServiceHandle(self.0) };
    }
}

fn manager(access: u32) -> Result<Sc, String> {
    // SAFETY: null machine and database names mean the local, active ones.
    let h = unsafe { OpenSCManagerW(std::ptr::null(), std::ptr::null(), access) };
    if h.is_null() {
        Err(format!(
            "cannot open the service control manager: {} (an administrator's console is needed)",
            last_error()
        ))
    } else {
        Ok(Sc(h))
    }
}

/// A canonical path without its `\\?\` prefix (`\\?\UNC\` becomes `\\`):
/// the service's command line reads better so, and means the same.
fn plain(p: &Path) -> String {
    let s = p.to_string_lossy();
    if let Some(rest) = s.strip_prefix(r"\\?\UNC\") {
        format!(r"\\{rest}")
    } else {
        s.strip_prefix(r"\\?\").unwrap_or(&s).to_string()
    }
}

/// Registers the service `name` running `regmon service run -c CONFIG`.
pub fn install(name: &str, config: &Path) -> Result<ExitCode, String> {
    let config = std::fs::canonicalize(config).map_err(|e| format!("{}: {e}", config.display()))?;
    let config = plain(&config);
    let exe = std::env::current_exe().map_err(|e| format!("cannot find regmon.exe: {e}"))?;
    let exe = plain(&exe);
    let command = format!("\"{exe}\" service run --name \"{name}\" -c \"{config}\"");
    let scm = manager(SC_MANAGER_CREATE_SERVICE)?;
    // Display names must be unique too.
    let display = match name {
        DEFAULT_NAME => "regmon registry integrity monitor".to_string(),
        _ => format!("regmon registry integrity monitor ({name})"),
    };
    let (wname, display, wcommand) = (wide(name), wide(&display), wide(&command));
    // SAFETY: every string is NUL-terminated and outlives the call; null
    // group, dependencies, account (LocalSystem) and password.
    let h = unsafe {
        CreateServiceW(
            scm.0,
            wname.as_ptr(),
            display.as_ptr(),
            SERVICE_ALL_ACCESS,
            SERVICE_WIN32_OWN_PROCESS,
            SERVICE_AUTO_START,
            SERVICE_ERROR_NORMAL,
            wcommand.as_ptr(),
            std::ptr::null(),
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if h.is_null() {
        return Err(format!(
            "cannot create the service '{name}': {}",
            last_error()
        ));
    }
    drop(Sc(h));
    println!("service '{name}' installed (automatic start): {command}");
    Ok(ExitCode::SUCCESS)
}

/// Stops (if running) and removes the service `name`.
pub fn uninstall(name: &str) -> Result<ExitCode, String> {
    let scm = manager(SC_MANAGER_CONNECT)?;
    let wname = wide(name);
    // SAFETY: `wname` is NUL-terminated; the manager handle is open.
    let h = unsafe {
        OpenServiceW(
            scm.0,
            wname.as_ptr(),
            SERVICE_STOP | SERVICE_QUERY_STATUS | DELETE,
        )
    };
    if h.is_null() {
        return Err(format!(
            "cannot open the service '{name}': {}",
            last_error()
        ));
    }
    let svc = Sc(h);
    let mut status = SERVICE_STATUS::default();
    // Not running is fine: the error is ignored.
    // SAFETY: the service handle is open; `status` is a valid out pointer.
    unsafe { ControlService(svc.0, SERVICE_CONTROL_STOP, &mut status) };
    // SAFETY: the service handle is open with DELETE access.
    if unsafe { DeleteService(svc.0) } == 0 {
        return Err(format!(
            "cannot delete the service '{name}': {}",
            last_error()
        ));
    }
    println!("service '{name}' removed");
    Ok(ExitCode::SUCCESS)
}

/// What the service's threads share: set before the dispatcher starts.
struct Shared {
    name: Vec<u16>,
    config: PathBuf,
    stop: Arc<AtomicBool>,
    handle: Mutex<Option<usize>>,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

/// Runs as the service `name` (what the service control manager starts).
pub fn run(name: &str, config: &Path) -> Result<ExitCode, String> {
    let shared = Shared {
        name: wide(name),
        config: config.to_path_buf(),
        stop: Arc::new(AtomicBool::new(false)),
        handle: Mutex::new(None),
    };
    if SHARED.set(shared).is_err() {
        return Err("the service is already running in this process".into());
    }
    let mut wname = wide(name);
    let table = [
        SERVICE_TABLE_ENTRYW {
            lpServiceName: wname.as_mut_ptr(),
            lpServiceProc: Some(service_main),
        },
        SERVICE_TABLE_ENTRYW {
            lpServiceName: std::ptr::null_mut(),
            lpServiceProc: None,
        },
    ];
    // SAFETY: the table ends with a null entry and outlives the call, which
    // returns when the service has stopped.
    if unsafe { StartServiceCtrlDispatcherW(table.as_ptr()) } == 0 {
        return Err(format!(
            "not started by the service control manager ({}); to run in a console use regmon -c FILE",
            last_error()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn set_status(state: u32, exit: u32) {
    let Some(shared) = SHARED.get() else { return };
    let Some(h) = *shared.handle.lock().unwrap_or_else(|e| e.into_inner()) else {
        return;
    };
    let status = SERVICE_STATUS {
        dwServiceType: SERVICE_WIN32_OWN_PROCESS,
        dwCurrentState: state,
        dwControlsAccepted: if state == SERVICE_RUNNING {
            SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN
        } else {
            0
        },
        dwWin32ExitCode: if exit == 0 {
            NO_ERROR
        } else {
            ERROR_SERVICE_SPECIFIC_ERROR
        },
        dwServiceSpecificExitCode: exit,
        dwCheckPoint: 0,
        dwWaitHint: if state == SERVICE_RUNNING || state == SERVICE_STOPPED {
            0
        } else {
            30_000
        },
    };
    // SAFETY: `h` came from RegisterServiceCtrlHandlerExW; `status` is valid.
    unsafe { SetServiceStatus(h as SERVICE_STATUS_HANDLE, &status) };
}

unsafe extern "system" fn service_main(_argc: u32, _argv: *mut windows_sys::core::PWSTR) {
    let Some(shared) = SHARED.get() else { return };
    // SAFETY: the name is NUL-terminated and lives in a static; `handler`
    // is a valid routine for the process' life.
    let h = unsafe {
        RegisterServiceCtrlHandlerExW(shared.name.as_ptr(), Some(handler), std::ptr::null())
    };
    if h.is_null() {
        return;
    }
    *shared.handle.lock().unwrap_or_else(|e| e.into_inner()) = Some(h as usize);
    // The HKCU warning (regmon::platform::account) needs to know.
    regmon::platform::account::set_running_as_service();
    set_status(SERVICE_START_PENDING, 0);
    let code = match crate::cli::run::start(&shared.config, false) {
        Ok(mut rt) => {
            set_status(SERVICE_RUNNING, 0);
            tracing::info!(
                "regmon started as a service with {}",
                shared.config.display()
            );
            match rt.run(shared.stop.clone()) {
                Ok(()) => 0,
                Err(e) => {
                    tracing::error!("{e}");
                    1
                }
            }
        }
        Err(_) => 1,
    };
    set_status(SERVICE_STOPPED, code);
}

unsafe extern "system" fn handler(
    control: u32,
    _event: u32,
    _data: *mut core::ffi::c_void,
    _context: *mut core::ffi::c_void,
) -> u32 {
    match control {
        SERVICE_CONTROL_STOP | SERVICE_CONTROL_SHUTDOWN => {
            if let Some(shared) = SHARED.get() {
                shared.stop.store(true, Ordering::SeqCst);
            }
            set_status(SERVICE_STOP_PENDING, 0);
            NO_ERROR
        }
        SERVICE_CONTROL_INTERROGATE => NO_ERROR,
        _ => ERROR_CALL_NOT_IMPLEMENTED,
    }
}
