//! Least privilege for what regmon writes: folders and files it creates are
//! its account's alone (0700/0600 on Unix; on Windows a protected DACL for
//! SYSTEM, Administrators and the account regmon runs as), paths are not
//! followed through symbolic links that another user placed, and a warning
//! names a configuration file or CacheDir that others could change.
//!
//! The baseline holds digests and possibly value data (secrets), and
//! whoever can change it, or the configuration, can hide a change or switch
//! monitoring off: both are worth guarding.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Component, Path, PathBuf};

/// Symbolic links followed in one path, at most (Linux's limit).
const MAX_LINKS: usize = 40;

/// Creates `dir` and its missing parents, each private to regmon's account;
/// folders that exist are left as they are. A symbolic link another user
/// placed on the way is refused (see [`check_path`]).
pub fn create_dir_private(dir: &Path) -> io::Result<()> {
    check_path(dir)?;
    if dir.is_dir() {
        return Ok(());
    }
    imp::create_dir_all(dir)
}

/// Opens `path` with `opts`, creating it private to regmon's account if it
/// is missing (an existing file keeps its permissions). A symbolic link
/// another user placed anywhere in the path is refused, and the last
/// component is opened without following a link unless it is one of ours.
pub fn open_private(path: &Path, opts: &mut OpenOptions) -> io::Result<File> {
    check_path(path)?;
    let trusted_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    imp::open(path, opts.create(true), trusted_link)
}

/// Refuses `path` when a symbolic link (on Windows, a symbolic link or
/// junction) on the way to it, the last component included, is owned by
/// someone other than regmon's account or the system's administrators
/// (root; SYSTEM, Administrators, TrustedInstaller): such a link would let
/// that user point regmon's writes wherever they like. The targets of
/// trusted links are checked the same way. The check stops at the first
/// component that does not exist (regmon creates the rest) or cannot be
/// examined (the open that follows reports it).
pub fn check_path(path: &Path) -> io::Result<()> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut pending: Vec<OsString> = abs
        .components()
        .rev()
        .map(|c| c.as_os_str().to_owned())
        .collect();
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        let part = Path::new(&c);
        match part.components().next() {
            Some(Component::ParentDir) => {
                resolved.pop();
                continue;
            }
            Some(Component::CurDir) | None => continue,
            Some(Component::Normal(_)) => {}
            Some(Component::Prefix(_) | Component::RootDir) => {
                resolved.push(part);
                continue;
            }
        }
        let next = resolved.join(part);
        let Ok(meta) = std::fs::symlink_metadata(&next) else {
            return Ok(());
        };
        if !meta.file_type().is_symlink() {
            resolved = next;
            continue;
        }
        if let Some(owner) = imp::untrusted_owner(&next, &meta)? {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is a symbolic link owned by {owner}, not by regmon's account or an \
                     administrator: not followed (whoever placed it could redirect what regmon writes)",
                    next.display()
                ),
            ));
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: more than {MAX_LINKS} symbolic links", path.display()),
            ));
        }
        let target = std::fs::read_link(&next)?;
        if target.is_absolute() {
            resolved = PathBuf::new();
        } else if target.has_root() {
            // Windows: `\dir` is on the current drive.
            resolved = resolved.components().take(1).collect();
        }
        pending.extend(target.components().rev().map(|c| c.as_os_str().to_owned()));
    }
    Ok(())
}

/// Why `path` (a configuration file or CacheDir) could be changed by
/// someone other than regmon's account and the administrators, if it can;
/// None when it is safe or cannot be examined.
pub fn writable_by_others(path: &Path) -> Option<String> {
    imp::writable_by_others(path)
}

/// Logs a warning at start when `path` could be changed by others.
pub fn warn_if_writable_by_others(path: &Path, what: &str, why: &str) {
    if let Some(reason) = writable_by_others(path) {
        tracing::warn!(
            "{what} {} is not private to regmon's account: {reason}; {why}",
            path.display()
        );
    }
}

#[cfg(unix)]
mod imp {
    use std::fs::{DirBuilder, File, OpenOptions};
    use std::io;
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
    use std::path::Path;

    fn euid() -> u32 {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() }
    }

    pub fn create_dir_all(dir: &Path) -> io::Result<()> {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)
    }

    pub fn open(path: &Path, opts: &mut OpenOptions, trusted_link: bool) -> io::Result<File> {
        opts.mode(0o600);
        if !trusted_link {
            opts.custom_flags(libc::O_NOFOLLOW);
        }
        opts.open(path)
    }

    pub fn untrusted_owner(_: &Path, meta: &std::fs::Metadata) -> io::Result<Option<String>> {
        let uid = meta.uid();
        Ok((uid != euid() && uid != 0).then(|| format!("uid {uid}")))
    }

    pub fn writable_by_others(path: &Path) -> Option<String> {
        let m = std::fs::metadata(path).ok()?;
        let mode = m.permissions().mode() & 0o7777;
        if m.uid() != euid() && m.uid() != 0 {
            Some(format!(
                "it is owned by uid {}, who can change it (mode {mode:04o})",
                m.uid()
            ))
        } else if mode & 0o002 != 0 {
            Some(format!("every user can write to it (mode {mode:04o})"))
        } else if mode & 0o020 != 0 {
            Some(format!(
                "group gid {} can write to it (mode {mode:04o})",
                m.gid()
            ))
        } else {
            None
        }
    }
}

#[cfg(windows)]
mod imp {
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::os::windows::ffi::OsStrExt;
    use std::path::Path;
    use windows_sys::Win32::Foundation::{
        CloseHandle, LocalFree, ERROR_ALREADY_EXISTS, GENERIC_ALL, GENERIC_WRITE,
        INVALID_HANDLE_VALUE,
    };
    use windows_sys::Win32::Security::Authorization::{
        ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW,
        GetNamedSecurityInfoW, GetSecurityInfo, SDDL_REVISION_1, SE_FILE_OBJECT,
    };
    use windows_sys::Win32::Security::{
        GetAce, IsWellKnownSid, WinAuthenticatedUserSid, WinBuiltinUsersSid, WinWorldSid,
        ACCESS_ALLOWED_ACE, ACL, DACL_SECURITY_INFORMATION, INHERIT_ONLY_ACE,
        OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID, SECURITY_ATTRIBUTES,
    };
    use windows_sys::Win32::Storage::FileSystem::{
        CreateDirectoryW, CreateFileW, CREATE_NEW, FILE_ATTRIBUTE_NORMAL,
        FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT, FILE_SHARE_DELETE,
        FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING, READ_CONTROL,
    };

    /// SIDs trusted besides regmon's account: SYSTEM, BUILTIN\Administrators,
    /// NT SERVICE\TrustedInstaller (which owns the system's own links).
    const TRUSTED: [&str; 3] = [
        "S-1-5-18",
        "S-1-5-32-544",
        "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464",
    ];

    /// ACCESS_ALLOWED_ACE_TYPE (in a feature of windows-sys not otherwise needed).
    const ACCESS_ALLOWED: u8 = 0;

    /// Rights that let a holder change a file or a folder's content:
    /// FILE_WRITE_DATA / FILE_ADD_FILE, FILE_APPEND_DATA /
    /// FILE_ADD_SUBDIRECTORY, FILE_DELETE_CHILD, DELETE, WRITE_DAC,
    /// WRITE_OWNER, GENERIC_WRITE, GENERIC_ALL.
    const WRITE_RIGHTS: u32 =
        0x2 | 0x4 | 0x40 | 0x1_0000 | 0x4_0000 | 0x8_0000 | GENERIC_WRITE | GENERIC_ALL;

    fn wide(p: &Path) -> Vec<u16> {
        p.as_os_str().encode_wide().chain(Some(0)).collect()
    }

    /// A SID as text (S-1-...).
    fn sid_string(sid: PSID) -> Option<String> {
        let mut s: *mut u16 = std::ptr::null_mut();
        // SAFETY: `sid` is a valid SID (callers' contract); `s` is a valid out pointer.
        if unsafe { ConvertSidToStringSidW(sid, &mut s) } == 0 || s.is_null() {
            return None;
        }
        // SAFETY: on success `s` is a NUL-terminated string allocated by
        // LocalAlloc, read here and freed once.
        let text = unsafe {
            let len = (0..).take_while(|&i| *s.add(i) != 0).count();
            let t = String::from_utf16_lossy(std::slice::from_raw_parts(s, len));
            LocalFree(s.cast());
            t
        };
        Some(text)
    }

    /// The SID of the account regmon runs as, as text.
    fn user_sid() -> io::Result<String> {
        crate::platform::account::with_user_sid(sid_string)?
            .ok_or_else(|| io::Error::other("the account's SID could not be converted to text"))
    }

    /// Runs `f` with SECURITY_ATTRIBUTES holding a protected DACL: full
    /// control for SYSTEM, Administrators and regmon's account only
    /// (inherited by what a folder will hold when `dir`).
    fn with_private<R>(dir: bool, f: impl FnOnce(&SECURITY_ATTRIBUTES) -> R) -> io::Result<R> {
        let inherit = if dir { "OICI" } else { "" };
        let sddl = format!(
            "D:P(A;{inherit};FA;;;SY)(A;{inherit};FA;;;BA)(A;{inherit};FA;;;{})",
            user_sid()?
        );
        let sddl: Vec<u16> = sddl.encode_utf16().chain(Some(0)).collect();
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `sddl` is NUL-terminated; `sd` is a valid out pointer.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        let sa = SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: sd,
            bInheritHandle: 0,
        };
        let r = f(&sa);
        // SAFETY: `sd` was allocated by the conversion above and is freed once.
        unsafe { LocalFree(sd) };
        Ok(r)
    }

    pub fn create_dir_all(dir: &Path) -> io::Result<()> {
        // A relative path ends in "": the current folder, which exists.
        let missing: Vec<&Path> = dir
            .ancestors()
            .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
            .collect();
        for d in missing.into_iter().rev() {
            let w = wide(d);
            // SAFETY: `w` is NUL-terminated; `sa` is valid during the call.
            let ok = with_private(true, |sa| unsafe { CreateDirectoryW(w.as_ptr(), sa) })?;
            if ok == 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(ERROR_ALREADY_EXISTS as i32) {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Creates the file first with the private DACL (CREATE_NEW: an
    /// existing file is left alone), then opens it as asked.
    pub fn open(path: &Path, opts: &mut OpenOptions, _trusted_link: bool) -> io::Result<File> {
        let mut created = false;
        if std::fs::symlink_metadata(path).is_err() {
            let w = wide(path);
            let h = with_private(false, |sa| {
                // SAFETY: `w` is NUL-terminated; `sa` is valid during the call.
                unsafe {
                    CreateFileW(
                        w.as_ptr(),
                        GENERIC_WRITE,
                        FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                        sa,
                        CREATE_NEW,
                        FILE_ATTRIBUTE_NORMAL,
                        std::ptr::null_mut(),
                    )
                }
            })?;
            // On failure (created meanwhile, a device name such as NUL) the
            // open below says what the path is.
            if h != INVALID_HANDLE_VALUE {
                // SAFETY: `h` was just created and is closed once.
                unsafe { CloseHandle(h) };
                created = true;
            }
        }
        if created {
            // Made just now, by us: a `create_new` asked of the caller's
            // options is satisfied (the open would fail on our own file).
            opts.create_new(false);
        }
        opts.open(path)
    }

    pub fn untrusted_owner(path: &Path, _: &std::fs::Metadata) -> io::Result<Option<String>> {
        let w = wide(path);
        // SAFETY: `w` is NUL-terminated; the link itself is opened (not its
        // target) for reading its security descriptor only.
        let h = unsafe {
            CreateFileW(
                w.as_ptr(),
                READ_CONTROL,
                FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                std::ptr::null(),
                OPEN_EXISTING,
                FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS,
                std::ptr::null_mut(),
            )
        };
        if h == INVALID_HANDLE_VALUE {
            return Err(io::Error::last_os_error());
        }
        let mut owner: PSID = std::ptr::null_mut();
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `h` is open with READ_CONTROL; the out pointers are valid.
        let rc = unsafe {
            GetSecurityInfo(
                h,
                SE_FILE_OBJECT,
                OWNER_SECURITY_INFORMATION,
                &mut owner,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut sd,
            )
        };
        // SAFETY: `h` was opened above and is closed once.
        unsafe { CloseHandle(h) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc as i32));
        }
        let who = sid_string(owner);
        // SAFETY: `sd` was allocated by GetSecurityInfo; `owner` points into
        // it and is not used after this.
        unsafe { LocalFree(sd) };
        let who = who.unwrap_or_else(|| "an unknown account".into());
        let me = user_sid()?;
        Ok((who != me && !TRUSTED.contains(&who.as_str())).then_some(who))
    }

    pub fn writable_by_others(path: &Path) -> Option<String> {
        let w = wide(path);
        let mut dacl: *mut ACL = std::ptr::null_mut();
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `w` is NUL-terminated; the out pointers are valid.
        let rc = unsafe {
            GetNamedSecurityInfoW(
                w.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut dacl,
                std::ptr::null_mut(),
                &mut sd,
            )
        };
        if rc != 0 {
            return None;
        }
        let mut found = None;
        if dacl.is_null() {
            found = Some("it has no DACL: everyone has full control".to_string());
        } else {
            // SAFETY: `dacl` points into `sd`, alive until freed below.
            let count = unsafe { (*dacl).AceCount };
            for i in 0..u32::from(count) {
                let mut ace: *mut core::ffi::c_void = std::ptr::null_mut();
                // SAFETY: `i` is below the ACL's count; `ace` is a valid out pointer.
                if unsafe { GetAce(dacl, i, &mut ace) } == 0 || ace.is_null() {
                    continue;
                }
                let ace = ace.cast::<ACCESS_ALLOWED_ACE>();
                // SAFETY: every ACE starts with an ACE_HEADER; Mask and
                // SidStart follow for ACCESS_ALLOWED_ACE_TYPE, checked first.
                let (kind, flags, mask) =
                    unsafe { ((*ace).Header.AceType, (*ace).Header.AceFlags, (*ace).Mask) };
                if kind != ACCESS_ALLOWED
                    || u32::from(flags) & INHERIT_ONLY_ACE != 0
                    || mask & WRITE_RIGHTS == 0
                {
                    continue;
                }
                // SAFETY: the SID starts at SidStart inside the ACE.
                let sid: PSID = unsafe { std::ptr::addr_of_mut!((*ace).SidStart) }.cast();
                for (ty, name) in [
                    (WinWorldSid, "Everyone"),
                    (WinBuiltinUsersSid, "BUILTIN\\Users"),
                    (WinAuthenticatedUserSid, "Authenticated Users"),
                ] {
                    // SAFETY: `sid` is a valid SID inside the ACE.
                    if unsafe { IsWellKnownSid(sid, ty) } != 0 {
                        found = Some(format!("its DACL lets {name} change it"));
                    }
                }
                if found.is_some() {
                    break;
                }
            }
        }
        // SAFETY: `sd` was allocated by GetNamedSecurityInfoW and is freed once.
        unsafe { LocalFree(sd) };
        found
    }
}

/// On every platform (the Windows build runs it under Wine).
#[cfg(test)]
mod portable_tests {
    use super::*;

    #[test]
    fn create_new_makes_a_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut o = OpenOptions::new();
        o.write(true).create_new(true);
        let mut f = open_private(&p, &mut o.clone()).unwrap();
        std::io::Write::write_all(&mut f, b"x").unwrap();
        drop(f);
        let again = open_private(&p, &mut o);
        assert_eq!(
            again.map(drop).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"x");
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn created_private_on_unix() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/b");
        create_dir_private(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&t.path().join("a")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        let f = dir.join("f");
        open_private(&f, OpenOptions::new().append(true)).unwrap();
        assert_eq!(mode(&f), 0o600);
        // An existing file keeps its mode.
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        open_private(&f, OpenOptions::new().append(true)).unwrap();
        assert_eq!(mode(&f), 0o640);
    }

    #[test]
    fn own_links_are_followed() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", t.path().join("link")).unwrap();
        std::os::unix::fs::symlink("real/f", t.path().join("flink")).unwrap();
        open_private(&t.path().join("link/f"), OpenOptions::new().append(true)).unwrap();
        open_private(&t.path().join("flink"), OpenOptions::new().append(true)).unwrap();
        assert!(t.path().join("real/f").is_file());
    }

    #[test]
    fn links_of_other_users_are_refused() {
        use std::os::unix::fs::lchown;
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("real")).unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(t.path().join("real"), &link).unwrap();
        let flink = t.path().join("flink");
        std::os::unix::fs::symlink(t.path().join("real/f"), &flink).unwrap();
        // Giving a link away needs root; as another user this test checks
        // what it can: our own links are followed (own_links_are_followed).
        if lchown(&link, Some(65534), None).is_err() {
            eprintln!(
                "not root: a link owned by another user cannot be made; checked own links only"
            );
            return;
        }
        lchown(&flink, Some(65534), None).unwrap();
        let e = create_dir_private(&link.join("cache")).unwrap_err();
        assert!(e.to_string().contains(&link.display().to_string()), "{e}");
        assert!(e.to_string().contains("uid 65534"), "{e}");
        let e = open_private(&flink, OpenOptions::new().append(true)).unwrap_err();
        assert!(e.to_string().contains("flink"), "{e}");
        assert!(!t.path().join("real/f").exists());
        assert!(!t.path().join("real/cache").exists());
    }

    #[test]
    fn writable_by_others_names_the_reason() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let set = |m| std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(m));
        set(0o700).unwrap();
        assert_eq!(writable_by_others(t.path()), None);
        set(0o777).unwrap();
        assert!(writable_by_others(t.path())
            .unwrap()
            .contains("every user can write to it (mode 0777)"));
        set(0o770).unwrap();
        assert!(writable_by_others(t.path()).unwrap().contains("group"));
        assert_eq!(writable_by_others(&t.path().join("missing")), None);
    }
}
