//! Users' hives on the live registry: loaded and unloaded under
//! `HKEY_USERS` as at logon and logoff (Windows only; under Wine through
//! cargo's runner, see README "Development"). The hives are written with
//! `RegSaveKeyW` (Wine's own file format) and loaded and unloaded with
//! `RegLoadKeyW` / `RegUnLoadKeyW` (Wine 8's `reg.exe` has no LOAD/UNLOAD),
//! which need SeBackupPrivilege and SeRestorePrivilege enabled (Wine checks
//! them). regmon runs in this process, through its library.

#![cfg(windows)]

use regmon::runtime::Runtime;
use std::path::Path;
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, LUID};
use windows_sys::Win32::Security::{
    AdjustTokenPrivileges, LookupPrivilegeValueW, LUID_AND_ATTRIBUTES, SE_PRIVILEGE_ENABLED,
    TOKEN_ADJUST_PRIVILEGES, TOKEN_PRIVILEGES, TOKEN_QUERY,
};
use windows_sys::Win32::System::Registry::{
    RegCloseKey, RegCreateKeyExW, RegDeleteTreeW, RegLoadKeyW, RegSaveKeyW, RegSetValueExW,
    RegUnLoadKeyW, HKEY, HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE, HKEY_USERS, KEY_ALL_ACCESS,
    REG_DWORD, REG_EXPAND_SZ,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain([0]).collect()
}

/// Enables a privilege of this process's token (SeBackupPrivilege...).
fn enable(privilege: &str) {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: valid out pointer; the pseudo handle of this process.
    let ok = unsafe {
        OpenProcessToken(
            GetCurrentProcess(),
            TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY,
            &mut token,
        )
    };
    assert_ne!(ok, 0, "OpenProcessToken");
    let mut luid = LUID {
        LowPart: 0,
        HighPart: 0,
    };
    let name = wide(privilege);
    // SAFETY: NUL-terminated name, valid out pointer.
    let ok = unsafe { LookupPrivilegeValueW(std::ptr::null(), name.as_ptr(), &mut luid) };
    assert_ne!(ok, 0, "LookupPrivilegeValueW {privilege}");
    let tp = TOKEN_PRIVILEGES {
        PrivilegeCount: 1,
        Privileges: [LUID_AND_ATTRIBUTES {
            Luid: luid,
            Attributes: SE_PRIVILEGE_ENABLED,
        }],
    };
    // SAFETY: `token` is open with TOKEN_ADJUST_PRIVILEGES; `tp` is valid.
    let ok = unsafe {
        AdjustTokenPrivileges(token, 0, &tp, 0, std::ptr::null_mut(), std::ptr::null_mut())
    };
    assert_ne!(ok, 0, "AdjustTokenPrivileges {privilege}");
    // SAFETY: opened above, closed once.
    unsafe { CloseHandle(token) };
}

struct Key(HKEY);

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: opened by RegCreateKeyExW, closed once.
        unsafe { RegCloseKey(self.0) };
    }
}

fn create(parent: HKEY, path: &str) -> Key {
    let mut k: HKEY = std::ptr::null_mut();
    let p = wide(path);
    // SAFETY: NUL-terminated path, valid out pointer.
    let rc = unsafe {
        RegCreateKeyExW(
            parent,
            p.as_ptr(),
            0,
            std::ptr::null(),
            0,
            KEY_ALL_ACCESS,
            std::ptr::null(),
            &mut k,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "RegCreateKeyExW {path}");
    Key(k)
}

fn set(k: &Key, name: &str, ty: u32, data: &[u8]) {
    let n = wide(name);
    // SAFETY: NUL-terminated name; `data` is readable for its length.
    let rc = unsafe { RegSetValueExW(k.0, n.as_ptr(), 0, ty, data.as_ptr(), data.len() as u32) };
    assert_eq!(rc, 0, "RegSetValueExW {name}");
}

fn set_dword(k: &Key, name: &str, v: u32) {
    set(k, name, REG_DWORD, &v.to_le_bytes());
}

/// Writes a hive file whose root holds `Software\<key>` with `values`.
fn save_hive(file: &Path, key: &str, values: &[(&str, u32)]) {
    let src = format!(r"Software\regmon-hive-source-{key}");
    {
        let k = create(HKEY_CURRENT_USER, &format!(r"{src}\Software\{key}"));
        for (n, v) in values {
            set_dword(&k, n, *v);
        }
        let root = create(HKEY_CURRENT_USER, &src);
        let f = wide(file.to_str().unwrap());
        let _ = std::fs::remove_file(file);
        // SAFETY: an open key, a NUL-terminated file name.
        let rc = unsafe { RegSaveKeyW(root.0, f.as_ptr(), std::ptr::null()) };
        assert_eq!(rc, 0, "RegSaveKeyW {}", file.display());
    }
    let s = wide(&src);
    // SAFETY: NUL-terminated path.
    unsafe { RegDeleteTreeW(HKEY_CURRENT_USER, s.as_ptr()) };
    let s = wide(&format!(r"Software\regmon-hive-source-{key}"));
    // SAFETY: as above (the now empty key itself).
    unsafe { windows_sys::Win32::System::Registry::RegDeleteKeyW(HKEY_CURRENT_USER, s.as_ptr()) };
}

fn load(sid: &str, file: &Path) {
    let (s, f) = (wide(sid), wide(file.to_str().unwrap()));
    // SAFETY: NUL-terminated strings.
    let rc = unsafe { RegLoadKeyW(HKEY_USERS, s.as_ptr(), f.as_ptr()) };
    assert_eq!(rc, 0, "RegLoadKeyW {sid} {}", file.display());
}

fn unload(sid: &str) {
    let s = wide(sid);
    // SAFETY: a NUL-terminated string.
    let rc = unsafe { RegUnLoadKeyW(HKEY_USERS, s.as_ptr()) };
    assert_eq!(rc, 0, "RegUnLoadKeyW {sid}");
}

fn runtime(dir: &Path, key: &str, extra: &str) -> Runtime {
    let conf = dir.join("regmon.conf");
    std::fs::write(
        &conf,
        format!(
            "<Extension json>\nModule xm_json\n</Extension>\n<Input r>\nModule im_regmon\n\
             RegValue 'HKU\\*\\Software\\{key}\\*'\nScanInterval 0\n{extra}</Input>\n\
             <Output o>\nModule om_file\nFile '{}'\nExec to_json();\n</Output>\n\
             <Route route>\nPath r => o\n</Route>\n",
            dir.join("out.log").display()
        ),
    )
    .unwrap();
    Runtime::new(nxconf::load(&conf).unwrap()).unwrap()
}

/// The events written since the last call: (EventType, key or value path),
/// and the JSON records.
fn take(dir: &Path) -> (Vec<String>, Vec<serde_json::Value>) {
    let p = dir.join("out.log");
    let text = std::fs::read_to_string(&p).unwrap_or_default();
    std::fs::write(&p, "").unwrap();
    let recs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l.trim_end()).unwrap())
        .collect();
    let kinds = recs
        .iter()
        .map(|e| {
            let name = e
                .get("RegistryValueName")
                .or_else(|| e.get("RegistryKeyName"))
                .and_then(|v| v.as_str())
                .unwrap_or("");
            format!("{} {name}", e["EventType"].as_str().unwrap_or(""))
        })
        .collect();
    (kinds, recs)
}

/// Privileges, and the one lock both tests hold: each test's scan of
/// `HKU\*\...` opens every loaded hive, the other test's too, and a hive
/// with an open handle cannot be unloaded (Wine and Windows answer
/// ERROR_ACCESS_DENIED), so the tests run one at a time however cargo
/// schedules them.
fn setup() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    enable("SeBackupPrivilege");
    enable("SeRestorePrivilege");
    guard
}

#[test]
fn a_user_hive_unloaded_and_loaded_again_is_a_state_change_not_a_deletion() {
    let _one = setup();
    const SID: &str = "S-1-5-21-1111-2222-3333-1001";
    const KEY: &str = "RegmonUsersA";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let profile = create(
        HKEY_LOCAL_MACHINE,
        &format!(r"SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList\{SID}"),
    );
    let path: Vec<u8> = r"C:\users\alice"
        .encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect();
    set(&profile, "ProfileImagePath", REG_EXPAND_SZ, &path);
    drop(profile);
    let (first, changed) = (d.join("user1.hiv"), d.join("user2.hiv"));
    save_hive(&first, KEY, &[("A", 1), ("B", 2)]);
    save_hive(&changed, KEY, &[("A", 7), ("B", 2)]);

    load(SID, &first);
    let mut rt = runtime(d, KEY, "");
    rt.scan(0).unwrap();
    assert!(take(d).0.is_empty());

    // Logoff: no DELETE, one HIVE_OFFLINE naming the user.
    unload(SID);
    rt.scan(0).unwrap();
    let (kinds, recs) = take(d);
    assert_eq!(kinds, [format!(r"HIVE_OFFLINE HKU\{SID}")]);
    assert_eq!(recs[0]["UserSID"], SID);
    assert_eq!(recs[0]["UserName"], "alice");
    rt.scan(0).unwrap();
    assert!(take(d).0.is_empty());
    // A restart while it is unloaded says nothing more.
    drop(rt);
    let mut rt = runtime(d, KEY, "");
    rt.scan(0).unwrap();
    assert!(take(d).0.is_empty());

    // Logon, nothing changed: HIVE_ONLINE only.
    load(SID, &first);
    rt.scan(0).unwrap();
    assert_eq!(take(d).0, [format!(r"HIVE_ONLINE HKU\{SID}")]);
    rt.scan(0).unwrap();
    assert!(take(d).0.is_empty());

    // Logoff, then logon with one value changed: exactly that CHANGE.
    unload(SID);
    rt.scan(0).unwrap();
    assert_eq!(take(d).0, [format!(r"HIVE_OFFLINE HKU\{SID}")]);
    load(SID, &changed);
    rt.scan(0).unwrap();
    assert_eq!(
        take(d).0,
        [
            format!(r"HIVE_ONLINE HKU\{SID}"),
            format!(r"CHANGE HKU\{SID}\Software\{KEY}\A"),
        ]
    );
    drop(rt);
    unload(SID);
}

#[test]
fn exclude_classes_skips_the_users_classes_hives() {
    let _one = setup();
    const SID: &str = "S-1-5-21-1111-2222-3333-1002";
    const KEY: &str = "RegmonUsersB";
    let classes = format!("{SID}_Classes");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (user, cls) = (d.join("ntuser.hiv"), d.join("usrclass.hiv"));
    save_hive(&user, KEY, &[("U", 1)]);
    save_hive(&cls, KEY, &[("C", 1)]);
    load(SID, &user);
    load(&classes, &cls);
    let mut rt = runtime(d, KEY, "ExcludeClasses TRUE\n");
    rt.scan(0).unwrap();
    assert!(take(d).0.is_empty());
    for hive in [SID, classes.as_str()] {
        let k = create(HKEY_USERS, &format!(r"{hive}\Software\{KEY}"));
        set_dword(&k, "N", 5);
    }
    rt.scan(0).unwrap();
    assert_eq!(take(d).0, [format!(r"NEW HKU\{SID}\Software\{KEY}\N")]);
    // Its classes hive was never watched: unloading it is no event.
    unload(&classes);
    rt.scan(0).unwrap();
    assert!(take(d).0.is_empty());
    unload(SID);
    rt.scan(0).unwrap();
    assert_eq!(take(d).0, [format!(r"HIVE_OFFLINE HKU\{SID}")]);
    drop(rt);

    // Without ExcludeClasses the classes hive is watched like any other.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    load(SID, &user);
    load(&classes, &cls);
    let mut rt = runtime(d, KEY, "");
    rt.scan(0).unwrap();
    unload(&classes);
    rt.scan(0).unwrap();
    assert_eq!(take(d).0, [format!(r"HIVE_OFFLINE HKU\{classes}")]);
    drop(rt);
    unload(SID);
}
