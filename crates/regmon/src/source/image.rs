//! `WindowsImage`: a Windows volume seen as a folder (a mounted VM disk, a
//! snapshot, a forensic image) whose hives are mounted where Windows mounts
//! them: `Windows\System32\config\{SYSTEM,SOFTWARE,SAM,SECURITY}` under
//! `HKLM`, `DEFAULT` at `HKU\.DEFAULT`, and each profile of the SOFTWARE
//! hive's `ProfileList` with its `NTUSER.DAT` at `HKU\<SID>` and its
//! `UsrClass.dat` at `HKU\<SID>_Classes`.
//!
//! A volume copied onto a case-sensitive file system keeps Windows' mixed
//! case (`windows/system32/CONFIG/system`), so every path component is found
//! case-insensitively. Discovery runs at load (to check the configuration)
//! and again at each scan (a profile created since is picked up).

use super::hivefile;
use super::Mount;
use crate::model::Snapshot;
use crate::path::pattern::{same_name, Root};
use std::path::{Path, PathBuf};

/// Profiles read from one ProfileList at most: a hostile hive with a million
/// entries must not mount a million files.
pub const MAX_PROFILES: usize = 10_000;
/// The longest Windows path, in UTF-16 units (data past it is not a path).
const MAX_PATH_UNITS: usize = 32_767;
/// A SID is at most `S-1-` and 16 numbers; anything longer is not one.
const MAX_SID_LEN: usize = 256;

/// The machine hives of `Windows\System32\config`: file, root, key.
pub const MACHINE_HIVES: [(&str, Root, &str); 5] = [
    ("SYSTEM", Root::Hklm, "SYSTEM"),
    ("SOFTWARE", Root::Hklm, "SOFTWARE"),
    ("SAM", Root::Hklm, "SAM"),
    ("SECURITY", Root::Hklm, "SECURITY"),
    ("DEFAULT", Root::Hku, ".DEFAULT"),
];

/// Where a profile's `UsrClass.dat` lies below its folder: Vista and later,
/// then XP.
const USRCLASS: [&[&str]; 2] = [
    &["AppData", "Local", "Microsoft", "Windows", "UsrClass.dat"],
    &[
        "Local Settings",
        "Application Data",
        "Microsoft",
        "Windows",
        "UsrClass.dat",
    ],
];

/// Where a profile's `NTUSER.DAT` lies below its folder.
const NTUSER: [&[&str]; 1] = [&["NTUSER.DAT"]];

/// LocalSystem's profile: Windows shows the `DEFAULT` hive at
/// `HKU\S-1-5-18` too (it is `HKU\.DEFAULT`), so it gets no mount of its own.
pub const LOCAL_SYSTEM: &str = "S-1-5-18";

/// A `WindowsImage` directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// The volume's root folder (relative paths already joined to the
    /// configuration's folder).
    pub dir: PathBuf,
    /// `ExcludeClasses TRUE`: no `HKU\<SID>_Classes` mounts.
    pub exclude_classes: bool,
}

/// A profile of the ProfileList.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub sid: String,
    /// `ProfileImagePath` as stored (`%SystemDrive%\Users\bob`).
    pub path: String,
    /// Its last component, the name `User` may give (`bob`).
    pub name: String,
}

/// What a discovery found.
#[derive(Debug, Default)]
pub struct Found {
    pub mounts: Vec<Mount>,
    pub profiles: Vec<Profile>,
    pub warnings: Vec<String>,
    /// Mount points whose hive file is missing now: what a baseline holds
    /// below them is kept, not reported deleted (a copy in progress, an
    /// unmounted disk).
    pub missing: Vec<Mount>,
}

impl Image {
    /// Finds the image's hives. An error only when the volume has no
    /// `Windows\System32\config` folder; any hive or profile missing is a
    /// warning naming the path.
    pub fn discover(&self) -> Result<Found, String> {
        if !self.dir.is_dir() {
            return Err(format!("{}: no such folder", self.dir.display()));
        }
        let config = find_path(&self.dir, &["Windows", "System32", "config"])
            .filter(|p| p.is_dir())
            .ok_or_else(|| {
                format!(
                    "{}: no Windows{sep}System32{sep}config folder (looked for in any case); \
                     WindowsImage names the root folder of a Windows volume",
                    self.dir.display(),
                    sep = std::path::MAIN_SEPARATOR
                )
            })?;
        let mut found = Found::default();
        let mut software = None;
        for (file, root, key) in MACHINE_HIVES {
            let m = Mount {
                root,
                keys: vec![key.to_string()],
                file: config.join(file),
                use_logs: true,
            };
            match find_path(&config, &[file]).filter(|p| p.is_file()) {
                Some(p) => {
                    if file == "SOFTWARE" {
                        software = Some(p.clone());
                    }
                    found.mounts.push(Mount { file: p, ..m });
                }
                None => {
                    found.warnings.push(format!(
                        "{}: not found; {} is not mounted",
                        m.file.display(),
                        m.display()
                    ));
                    found.missing.push(m);
                }
            }
        }
        let Some(software) = software else {
            found.warnings.push(format!(
                "{}: no SOFTWARE hive, so no ProfileList: no user hives mounted",
                config.display()
            ));
            return Ok(found);
        };
        match read_profiles(&software) {
            Ok((profiles, warnings)) => {
                found.warnings.extend(warnings);
                found.profiles = profiles;
            }
            Err(e) => {
                found.warnings.push(format!(
                    "{e}; its ProfileList could not be read: no user hives mounted"
                ));
                return Ok(found);
            }
        }
        for p in found.profiles.clone() {
            self.mount_profile(&p, &mut found);
        }
        Ok(found)
    }

    /// Mounts one profile's hives into `found`, or says what is missing.
    fn mount_profile(&self, p: &Profile, found: &mut Found) {
        if same_name(&p.sid, LOCAL_SYSTEM) {
            return;
        }
        let user = Mount {
            root: Root::Hku,
            keys: vec![p.sid.clone()],
            file: PathBuf::new(),
            use_logs: true,
        };
        let classes = Mount {
            keys: vec![format!("{}{}", p.sid, super::CLASSES_SUFFIX)],
            ..user.clone()
        };
        let mut want: Vec<(Mount, &[&[&str]])> = vec![(user, &NTUSER[..])];
        if !self.exclude_classes {
            want.push((classes, &USRCLASS[..]));
        }
        let comps = match map_windows_path(&p.path) {
            Ok(c) => c,
            Err(e) => {
                found.warnings.push(format!(
                    "ProfileList\\{}: ProfileImagePath '{}' {e}; {} not mounted",
                    p.sid,
                    p.path,
                    names(&want)
                ));
                return;
            }
        };
        let refs: Vec<&str> = comps.iter().map(String::as_str).collect();
        let Some(folder) = find_path(&self.dir, &refs).filter(|f| f.is_dir()) else {
            found.warnings.push(format!(
                "{}: profile folder of {} (ProfileImagePath '{}') not found; {} not mounted",
                self.dir.join(comps.join("/")).display(),
                p.sid,
                p.path,
                names(&want)
            ));
            found.missing.extend(want.into_iter().map(|(m, _)| m));
            return;
        };
        for (m, places) in want {
            match places
                .iter()
                .find_map(|rel| find_path(&folder, rel).filter(|f| f.is_file()))
            {
                Some(file) => found.mounts.push(Mount { file, ..m }),
                None => {
                    found.warnings.push(format!(
                        "{}: not found; {} is not mounted",
                        folder.join(places[0].join("/")).display(),
                        m.display()
                    ));
                    found.missing.push(m);
                }
            }
        }
    }
}

/// An input's image: the directive, the input's `HiveFile` lines, and the
/// mounts found at load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSource {
    pub image: Image,
    /// The `HiveFile` lines of the same input.
    pub hive_files: Vec<Mount>,
    /// The `HiveFile` lines and the image's hives as found at load.
    pub at_load: Vec<Mount>,
}

impl ImageSource {
    /// The mounts of a scan: the image's hives found again now. Warnings
    /// go to `snap`, and so do the mount points of hives missing
    /// now (their baseline is kept). When the volume itself is gone, the
    /// mounts found at load: they fail to open, and their baseline is kept.
    pub fn mounts_now(&self, snap: &mut Snapshot) -> Vec<Mount> {
        match self.image.discover() {
            Ok(found) => {
                snap.warnings.extend(found.warnings);
                snap.unreadable.extend(found.missing.iter().map(Mount::id));
                let (mounts, warnings) = combine(&self.hive_files, found.mounts);
                snap.warnings.extend(warnings);
                mounts
            }
            Err(e) => {
                snap.warnings.push(format!("WindowsImage: {e}"));
                self.at_load.clone()
            }
        }
    }
}

/// The `HiveFile` mounts and the image's, leaving out (with a warning) an
/// image hive that clashes with a `HiveFile` line: the line says what the
/// user wants there.
pub fn combine(hive_files: &[Mount], found: Vec<Mount>) -> (Vec<Mount>, Vec<String>) {
    let mut mounts = hive_files.to_vec();
    let mut warnings = Vec::new();
    for m in found {
        match hive_files.iter().find_map(|h| Some((h, m.clash(h)?))) {
            Some((h, how)) => warnings.push(format!(
                "{} of the image is not mounted: {} is {how} HiveFile '{}' ({})",
                m.file.display(),
                m.display(),
                h.display(),
                h.file.display()
            )),
            None => mounts.push(m),
        }
    }
    (mounts, warnings)
}

/// `HKU\A and HKU\A_Classes` for a message.
fn names(want: &[(Mount, &[&[&str]])]) -> String {
    want.iter()
        .map(|(m, _)| m.display())
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The profiles of the ProfileList of the SOFTWARE hive at `software` (its
/// transaction logs replayed when it is dirty), and warnings about entries
/// left out. At most [`MAX_PROFILES`].
pub fn read_profiles(software: &Path) -> Result<(Vec<Profile>, Vec<String>), String> {
    let named = |e: &dyn std::fmt::Display| format!("{}: {e}", software.display());
    let opened = hivefile::open(software, true)?;
    let hive = opened.file.hive().map_err(|e| named(&e))?;
    let mut key = hive.root().map_err(|e| named(&e))?;
    let mut warnings = Vec::new();
    const WHERE: &str = "Microsoft\\Windows NT\\CurrentVersion\\ProfileList";
    for part in WHERE.split('\\') {
        match key.subkey(part) {
            Ok(Some(k)) => key = k,
            Ok(None) => {
                warnings.push(format!(
                    "{}: no {WHERE} key: no user hives mounted",
                    software.display()
                ));
                return Ok((Vec::new(), warnings));
            }
            Err(e) => return Err(named(&format!("{WHERE}: {e}"))),
        }
    }
    let at = |sid: &str| format!("{}: {WHERE}\\{sid}", software.display());
    let mut profiles = Vec::new();
    for (i, sub) in key.subkeys().map_err(|e| named(&e))?.enumerate() {
        if i == MAX_PROFILES {
            warnings.push(format!(
                "{}: {WHERE} has more than {MAX_PROFILES} entries; the rest are left out",
                software.display()
            ));
            break;
        }
        let sub = match sub {
            Ok(s) => s,
            Err(e) => {
                warnings.push(named(&format!("{WHERE}: {e}")));
                continue;
            }
        };
        let sid = sub.name().to_string_lossy().into_owned();
        // `S-1-5-21-...-1001.bak` is the copy Windows keeps of a profile it
        // could not load: not a loaded user's hive.
        if !looks_like_sid(&sid) {
            continue;
        }
        let v = match sub.value("ProfileImagePath") {
            Ok(Some(v)) => v,
            Ok(None) => {
                warnings.push(format!("{}: no ProfileImagePath; skipped", at(&sid)));
                continue;
            }
            Err(e) => {
                warnings.push(format!("{}: {e}", at(&sid)));
                continue;
            }
        };
        let ty = v.value_type().0;
        if ty != 1 && ty != 2 {
            warnings.push(format!(
                "{}: ProfileImagePath is of type {ty}, not a string; skipped",
                at(&sid)
            ));
            continue;
        }
        if v.data_size() as usize > MAX_PATH_UNITS * 2 + 2 {
            warnings.push(format!(
                "{}: ProfileImagePath is {} bytes, longer than any Windows path; skipped",
                at(&sid),
                v.data_size()
            ));
            continue;
        }
        let data = match v.data() {
            Ok(d) => d,
            Err(e) => {
                warnings.push(format!("{}: ProfileImagePath: {e}", at(&sid)));
                continue;
            }
        };
        let units: Vec<u16> = data
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        let path = String::from_utf16_lossy(&units);
        let name = path
            .rsplit(['\\', '/'])
            .find(|c| !c.is_empty())
            .unwrap_or_default()
            .to_string();
        profiles.push(Profile { sid, path, name });
    }
    Ok((profiles, warnings))
}

/// `S-1-` then numbers separated by `-` (a SID as Windows writes it).
pub fn looks_like_sid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("S-1-").or_else(|| s.strip_prefix("s-1-")) else {
        return false;
    };
    s.len() <= MAX_SID_LEN
        && rest
            .split('-')
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A Windows path on the image's volume as components below its root:
/// `C:\Users\alice` and `%SystemDrive%\Users\alice` give `Users/alice`,
/// `%SystemRoot%\ServiceProfiles\LocalService` (or `%windir%`) gives
/// `Windows/ServiceProfiles/LocalService`. A network path, another
/// variable, or a `..` (which would leave the volume) is refused.
pub fn map_windows_path(p: &str) -> Result<Vec<String>, String> {
    let mut s = p.trim();
    for prefix in ["\\\\?\\", "\\??\\"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest;
        }
    }
    if s.starts_with("\\\\") {
        return Err("is a network path, not on this volume".into());
    }
    let mut out: Vec<String> = Vec::new();
    if let Some(rest) = s.strip_prefix('%') {
        let (var, tail) = rest
            .split_once('%')
            .ok_or_else(|| "has an unclosed %".to_string())?;
        match var.to_ascii_uppercase().as_str() {
            "SYSTEMDRIVE" => {}
            "SYSTEMROOT" | "WINDIR" => out.push("Windows".into()),
            _ => return Err(format!("uses %{var}%, which regmon cannot expand offline")),
        }
        s = tail;
    } else if s.len() >= 2 && s.as_bytes()[0].is_ascii_alphabetic() && s.as_bytes()[1] == b':' {
        s = &s[2..];
    } else if !s.starts_with('\\') {
        return Err("is not an absolute path".into());
    }
    for c in s.split(['\\', '/']) {
        match c {
            "" | "." => {}
            ".." => return Err("has a '..' component".into()),
            c if c.contains([':', '%', '\0']) => {
                return Err(format!("has a component '{c}' regmon cannot map"))
            }
            c => out.push(c.to_string()),
        }
    }
    Ok(out)
}

/// `base` joined with `comps`, each component found case-insensitively
/// (Windows' rule): the exact name when it exists, else the first entry in
/// byte order whose name matches. None when one is missing.
pub fn find_path(base: &Path, comps: &[&str]) -> Option<PathBuf> {
    let mut p = base.to_path_buf();
    for c in comps {
        p = find_entry(&p, c)?;
    }
    Some(p)
}

fn find_entry(dir: &Path, name: &str) -> Option<PathBuf> {
    let exact = dir.join(name);
    if exact.exists() {
        return Some(exact);
    }
    let mut best: Option<String> = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let n = e.file_name();
        let Some(n) = n.to_str() else { continue };
        if same_name(n, name) && best.as_deref().is_none_or(|b| n < b) {
            best = Some(n.to_string());
        }
    }
    best.map(|b| dir.join(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comps(p: &str) -> Result<String, String> {
        map_windows_path(p).map(|c| c.join("/"))
    }

    #[test]
    fn windows_paths_map_onto_the_volume() {
        assert_eq!(comps("C:\\Users\\alice").unwrap(), "Users/alice");
        assert_eq!(comps("d:/Users/alice/").unwrap(), "Users/alice");
        assert_eq!(comps("%SystemDrive%\\Users\\bob").unwrap(), "Users/bob");
        assert_eq!(
            comps("%systemroot%\\ServiceProfiles\\LocalService").unwrap(),
            "Windows/ServiceProfiles/LocalService"
        );
        assert_eq!(comps("%WINDIR%\\x").unwrap(), "Windows/x");
        assert_eq!(comps("\\\\?\\C:\\Users\\c").unwrap(), "Users/c");
        assert_eq!(comps("\\Users\\.\\d").unwrap(), "Users/d");
        for bad in [
            "C:\\Users\\..\\..\\etc",
            "\\\\server\\share\\alice",
            "%USERPROFILE%\\x",
            "%SystemDrive\\x",
            "Users\\alice",
            "C:\\Users\\%USERNAME%",
            "C:\\a\\b:c",
        ] {
            assert!(map_windows_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sids_are_recognised() {
        assert!(looks_like_sid("S-1-5-21-1-2-3-1001"));
        assert!(looks_like_sid("S-1-5-18"));
        assert!(!looks_like_sid("S-1-5-21-1-2-3-1001.bak"));
        assert!(!looks_like_sid("S-1-"));
        assert!(!looks_like_sid("S-1-5--1"));
        assert!(!looks_like_sid("alice"));
        assert!(!looks_like_sid(&format!("S-1-{}", "1-".repeat(200) + "1")));
    }

    #[test]
    fn components_are_found_in_any_case() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("windows/system32/CONFIG")).unwrap();
        std::fs::write(d.path().join("windows/system32/CONFIG/system"), b"x").unwrap();
        let p = find_path(d.path(), &["Windows", "System32", "config", "SYSTEM"]).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"x");
        assert!(find_path(d.path(), &["Windows", "System32", "config", "SAM"]).is_none());
        if cfg!(windows) {
            // The file system itself ignores case there: the names as
            // asked for are the file, and two spellings cannot both exist.
            return;
        }
        assert_eq!(p, d.path().join("windows/system32/CONFIG/system"));
        // The exact name wins over another spelling; else byte order decides.
        std::fs::create_dir_all(d.path().join("Users/b")).unwrap();
        std::fs::create_dir_all(d.path().join("Users/B")).unwrap();
        std::fs::create_dir_all(d.path().join("Users/c")).unwrap();
        assert_eq!(
            find_path(d.path(), &["users", "b"]).unwrap(),
            d.path().join("Users/b")
        );
        assert_eq!(
            find_path(d.path(), &["USERS", "C"]).unwrap(),
            d.path().join("Users/c")
        );
    }

    #[test]
    fn a_volume_without_config_folder_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let img = Image {
            dir: d.path().to_path_buf(),
            exclude_classes: false,
        };
        let e = img.discover().unwrap_err();
        assert!(e.contains("System32") && e.contains("config"), "{e}");
        let gone = Image {
            dir: d.path().join("nope"),
            exclude_classes: false,
        };
        assert!(gone.discover().unwrap_err().contains("no such folder"));
    }
}
