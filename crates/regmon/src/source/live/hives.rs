//! The hives loaded under `HKEY_USERS`: users' hives come and go with
//! logon, logoff and fast user switching, services' profiles with their
//! services. Listing `HKU`'s subkeys tells which are loaded now; the
//! runtime compares that with the baseline (see `runtime::hives`).

use super::{describe, open, read_key, wide, Handle};
use windows_sys::Win32::Foundation::ERROR_SUCCESS;
use windows_sys::Win32::System::Registry::{
    RegQueryValueExW, HKEY_LOCAL_MACHINE, HKEY_USERS, KEY_QUERY_VALUE, KEY_WOW64_64KEY,
};

/// The names of the hives loaded under `HKU` now (`.DEFAULT`, `S-1-5-18`,
/// `S-1-5-21-..._Classes`...), as stored: one consistent listing of its
/// subkeys. Listing needs no access to the hives themselves, so a hive
/// whose key is access-denied is listed (the scan then warns about it).
pub fn loaded() -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    let (c, _) = read_key(HKEY_USERS, None, true, false, &mut |w| warnings.push(w))
        .map_err(|e| format!("HKU: {e}"))?;
    if let Some(w) = warnings.first() {
        // An entry that could not be read: the list is not known whole.
        return Err(format!("HKU: {w}"));
    }
    Ok(c.subs
        .unwrap_or_default()
        .into_iter()
        .map(|s| String::from_utf16_lossy(&s.name))
        .collect())
}

/// The profile folder of `sid` as the profile list records it
/// (`HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList\<SID>`,
/// value `ProfileImagePath`, e.g. `C:\Users\alice` or
/// `%systemroot%\system32\config\systemprofile`), when it has one.
pub fn profile_path(sid: &str) -> Option<String> {
    let path = format!(r"SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList\{sid}");
    let key: Handle = open(
        HKEY_LOCAL_MACHINE,
        &wide(&path),
        KEY_QUERY_VALUE | KEY_WOW64_64KEY,
    )
    .ok()?;
    let name = wide("ProfileImagePath");
    let mut buf = vec![0u16; 261];
    for _ in 0..3 {
        let mut bytes = (buf.len() * 2) as u32;
        let mut ty = 0u32;
        // SAFETY: `name` is NUL-terminated; `buf` is writable for `bytes`
        // bytes; the out pointers are valid.
        let rc = unsafe {
            RegQueryValueExW(
                key.0,
                name.as_ptr(),
                std::ptr::null(),
                &mut ty,
                buf.as_mut_ptr().cast(),
                &mut bytes,
            )
        };
        if rc == ERROR_SUCCESS {
            let n = (bytes as usize / 2).min(buf.len());
            let text = String::from_utf16_lossy(&buf[..n]);
            let text = text.trim_end_matches('\0').to_string();
            return (!text.is_empty()).then_some(text);
        }
        if (bytes as usize) <= buf.len() * 2 || bytes > 1 << 16 {
            tracing::debug!("ProfileList\\{sid}: {}", describe(rc));
            return None;
        }
        buf = vec![0u16; bytes as usize / 2 + 1];
    }
    None
}

/// Whether a hive name is a user's classes hive (`..._Classes`, any case).
pub fn is_classes(name: &str) -> bool {
    crate::source::classes_sid(name).is_some()
}

/// [`is_classes`] of a UTF-16 name as enumerated.
pub(crate) fn is_classes_units(name: &[u16]) -> bool {
    let suffix: Vec<u16> = crate::source::CLASSES_SUFFIX.encode_utf16().collect();
    name.len() > suffix.len()
        && name[name.len() - suffix.len()..]
            .iter()
            .zip(&suffix)
            .all(|(&a, &b)| hive::upcase_unit(a) == hive::upcase_unit(b))
}
