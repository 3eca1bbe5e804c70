//! Which account regmon runs as (Windows): HKCU is that account's own hive,
//! which is worth a warning when it is a service account.

use std::sync::atomic::{AtomicBool, Ordering};
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
use windows_sys::Win32::Security::PSID;

/// Set by the Windows service dispatcher when regmon runs as a service.
static AS_SERVICE: AtomicBool = AtomicBool::new(false);

/// Records that this process runs as a service (the service dispatcher
/// calls it before the runtime starts).
pub fn set_running_as_service() {
    AS_SERVICE.store(true, Ordering::SeqCst);
}

/// Whether this process runs as a service.
pub fn running_as_service() -> bool {
    AS_SERVICE.load(Ordering::SeqCst)
}

/// Runs `f` with the SID of the account this process runs as (read from
/// its token); the SID is valid only during the call.
pub fn with_user_sid<R>(f: impl FnOnce(PSID) -> R) -> std::io::Result<R> {
    use windows_sys::Win32::Security::{GetTokenInformation, TokenUser, TOKEN_QUERY, TOKEN_USER};
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: GetCurrentProcess returns a pseudo handle; `token` is a valid
    // out pointer.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut buf = vec![0u64; 64];
    let mut len = 0u32;
    // SAFETY: `buf` is writable for the byte length passed; `len` is a valid
    // out pointer; the token handle was just opened.
    let ok = unsafe {
        GetTokenInformation(
            token,
            TokenUser,
            buf.as_mut_ptr().cast(),
            (buf.len() * 8) as u32,
            &mut len,
        )
    } != 0;
    let err = std::io::Error::last_os_error();
    // SAFETY: `token` was opened above and is closed once.
    unsafe { CloseHandle(token) };
    if !ok {
        return Err(err);
    }
    // SAFETY: on success the buffer starts with a TOKEN_USER whose SID
    // pointer points into the same buffer, alive until the end of this call.
    let sid = unsafe { (*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    Ok(f(sid))
}

/// Which service account the process runs as, if any; or "a service" when
/// started by the service control manager or in the services' session (0).
pub fn service_account() -> Option<&'static str> {
    use windows_sys::Win32::Security::{
        IsWellKnownSid, WinLocalServiceSid, WinLocalSystemSid, WinNetworkServiceSid,
    };
    use windows_sys::Win32::System::RemoteDesktop::ProcessIdToSessionId;
    use windows_sys::Win32::System::Threading::GetCurrentProcessId;
    let found = with_user_sid(|sid| {
        [
            (WinLocalSystemSid, "SYSTEM"),
            (WinLocalServiceSid, "LOCAL SERVICE"),
            (WinNetworkServiceSid, "NETWORK SERVICE"),
        ]
        .into_iter()
        // SAFETY: `sid` is a valid SID during this call.
        .find(|&(ty, _)| unsafe { IsWellKnownSid(sid, ty) } != 0)
        .map(|(_, name)| name)
    });
    if let Ok(Some(name)) = found {
        return Some(name);
    }
    if running_as_service() {
        return Some("a service");
    }
    let mut session = u32::MAX;
    // SAFETY: `session` is a valid out pointer.
    let ok = unsafe { ProcessIdToSessionId(GetCurrentProcessId(), &mut session) } != 0;
    (ok && session == 0).then_some("a service (session 0)")
}
