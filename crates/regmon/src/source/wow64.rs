//! The 32-bit registry view (`64BitView FALSE`) of an offline SOFTWARE hive.
//!
//! On 64-bit Windows a 32-bit program opening `HKLM\SOFTWARE\X` is redirected
//! to `HKLM\SOFTWARE\Wow6432Node\X`, except for the shared keys Microsoft
//! lists in "Registry Keys Affected by WOW64" (Windows 7 and later), which
//! both views see as one. Redirected keys below the shared `Classes` live in
//! `Classes\Wow6432Node`. The view applies to a hive mounted at
//! `HKLM\SOFTWARE`; other mounts read the same in both views.
//!
//! A logical key's children are the names found in either physical tree
//! whose own physical key (by the rule above) exists; `Wow6432Node` itself is
//! hidden, as Windows hides it from 32-bit programs.

use crate::path::pattern::same_name;
use crate::source::Mount;
use hive::{Key, Result};

/// Shared paths (relative to SOFTWARE) and the redirected exceptions below
/// them. The longest matching prefix decides; anything else is redirected.
const TABLE: &[(&str, bool)] = &[
    ("Classes", true),
    ("Classes\\CLSID", false),
    ("Classes\\DirectShow", false),
    ("Classes\\Interface", false),
    ("Classes\\Media Type", false),
    ("Classes\\MediaFoundation", false),
    ("Clients", true),
    ("Microsoft\\COM3", true),
    ("Microsoft\\Cryptography\\Calais\\Current", true),
    ("Microsoft\\Cryptography\\Calais\\Readers", true),
    ("Microsoft\\Cryptography\\Services", true),
    ("Microsoft\\CTF\\SystemShared", true),
    ("Microsoft\\CTF\\TIP", true),
    ("Microsoft\\DFS", true),
    ("Microsoft\\Driver Signing", true),
    ("Microsoft\\EnterpriseCertificates", true),
    ("Microsoft\\EventSystem", true),
    ("Microsoft\\MSMQ", true),
    ("Microsoft\\Non-Driver Signing", true),
    ("Microsoft\\Notepad\\DefaultFonts", true),
    ("Microsoft\\OLE", true),
    ("Microsoft\\RAS", true),
    ("Microsoft\\RPC", true),
    ("Microsoft\\Shared Tools\\MSInfo", true),
    ("Microsoft\\SystemCertificates", true),
    ("Microsoft\\TermServLicensing", true),
    ("Microsoft\\Transaction Server", true),
    ("Microsoft\\Windows\\CurrentVersion\\App Paths", true),
    (
        "Microsoft\\Windows\\CurrentVersion\\Control Panel\\Cursors\\Schemes",
        true,
    ),
    (
        "Microsoft\\Windows\\CurrentVersion\\Explorer\\AutoplayHandlers",
        true,
    ),
    (
        "Microsoft\\Windows\\CurrentVersion\\Explorer\\DriveIcons",
        true,
    ),
    (
        "Microsoft\\Windows\\CurrentVersion\\Explorer\\KindMap",
        true,
    ),
    ("Microsoft\\Windows\\CurrentVersion\\Group Policy", true),
    ("Microsoft\\Windows\\CurrentVersion\\Policies", true),
    ("Microsoft\\Windows\\CurrentVersion\\PreviewHandlers", true),
    ("Microsoft\\Windows\\CurrentVersion\\Setup", true),
    (
        "Microsoft\\Windows\\CurrentVersion\\Telephony\\Locations",
        true,
    ),
    ("Microsoft\\Windows NT\\CurrentVersion\\Console", true),
    ("Microsoft\\Windows NT\\CurrentVersion\\FontDpi", true),
    ("Microsoft\\Windows NT\\CurrentVersion\\FontLink", true),
    ("Microsoft\\Windows NT\\CurrentVersion\\FontMapper", true),
    ("Microsoft\\Windows NT\\CurrentVersion\\Fonts", true),
    (
        "Microsoft\\Windows NT\\CurrentVersion\\FontSubstitutes",
        true,
    ),
    (
        "Microsoft\\Windows NT\\CurrentVersion\\Gre_Initialize",
        true,
    ),
    (
        "Microsoft\\Windows NT\\CurrentVersion\\Image File Execution Options",
        true,
    ),
    ("Microsoft\\Windows NT\\CurrentVersion\\LanguagePack", true),
    ("Microsoft\\Windows NT\\CurrentVersion\\NetworkCards", true),
    ("Microsoft\\Windows NT\\CurrentVersion\\Perflib", true),
    ("Microsoft\\Windows NT\\CurrentVersion\\Ports", true),
    ("Microsoft\\Windows NT\\CurrentVersion\\Print", true),
    ("Microsoft\\Windows NT\\CurrentVersion\\ProfileList", true),
    ("Microsoft\\Windows NT\\CurrentVersion\\Time Zones", true),
    ("Policies", true),
    ("RegisteredApplications", true),
];

const WOW: &str = "Wow6432Node";

/// Whether the 32-bit view changes what is below this key of `mount`.
pub fn applies(mount: &Mount) -> bool {
    mount.root == crate::path::pattern::Root::Hklm
        && mount.keys.len() == 1
        && same_name(&mount.keys[0], "SOFTWARE")
}

/// Whether the logical path (components below SOFTWARE) is shared.
pub fn is_shared(rel: &[&str]) -> bool {
    let mut best: (usize, bool) = (0, false);
    for (p, shared) in TABLE {
        let comps: Vec<&str> = p.split('\\').collect();
        if comps.len() <= rel.len()
            && comps.len() > best.0
            && comps.iter().zip(rel).all(|(a, b)| same_name(a, b))
        {
            best = (comps.len(), *shared);
        }
    }
    best.1
}

/// Whether the logical path (components below SOFTWARE) lies in a
/// `Wow6432Node` tree itself (`Wow6432Node\...`, `Classes\Wow6432Node\...`):
/// the 32-bit copies, which the 32-bit view shows under their logical names.
pub fn in_wow_node(rel: &[&str]) -> bool {
    match rel {
        [first, ..] if same_name(first, WOW) => true,
        [classes, second, ..] => same_name(classes, "Classes") && same_name(second, WOW),
        _ => false,
    }
}

/// Whether the two views hold different keys at this logical path (below
/// SOFTWARE): the 32-bit view reads its own copy (`Wow6432Node\...`).
/// Shared keys, SOFTWARE itself and the `Wow6432Node` trees are one key
/// in both views.
pub fn is_redirected(rel: &[&str]) -> bool {
    !rel.is_empty() && !in_wow_node(rel) && !is_shared(rel)
}

/// The physical path of a logical path in the 32-bit view.
pub fn physical(rel: &[&str]) -> Vec<String> {
    if rel.is_empty() || is_shared(rel) {
        return rel.iter().map(|s| s.to_string()).collect();
    }
    redirected(rel)
}

/// Where the 32-bit copy of a logical path lives (`Wow6432Node\...`, or
/// `Classes\Wow6432Node\...` below Classes).
fn redirected(rel: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(rel.len() + 1);
    if rel.first().is_some_and(|r| same_name(r, "Classes")) {
        out.push(rel[0].to_string());
        out.push(WOW.to_string());
        out.extend(rel[1..].iter().map(|s| s.to_string()));
    } else {
        out.push(WOW.to_string());
        out.extend(rel.iter().map(|s| s.to_string()));
    }
    out
}

fn lookup<'h>(root: Key<'h>, path: &[String]) -> Result<Option<Key<'h>>> {
    let mut k = root;
    for p in path {
        match k.subkey(p)? {
            Some(c) => k = c,
            None => return Ok(None),
        }
    }
    Ok(Some(k))
}

/// The children of the logical key at `path` (display components from the
/// registry root, the mount's own components first), each as its physical key.
pub fn children_32<'h>(
    mount: &Mount,
    root: Key<'h>,
    path: &[String],
) -> Result<Vec<Result<Key<'h>>>> {
    let rel: Vec<&str> = path[mount.keys.len().min(path.len())..]
        .iter()
        .map(String::as_str)
        .collect();
    // Candidate names from both physical places this logical key may have.
    let mut names: Vec<String> = Vec::new();
    let plain: Vec<String> = rel.iter().map(|s| s.to_string()).collect();
    for phys in [plain, redirected(&rel)] {
        if let Some(k) = lookup(root, &phys)? {
            for c in k.subkeys()?.flatten() {
                let n = c.name().to_string_lossy().into_owned();
                if !names.iter().any(|x| same_name(x, &n)) {
                    names.push(n);
                }
            }
        }
    }
    let hide_wow = rel.is_empty() || (rel.len() == 1 && same_name(rel[0], "Classes"));
    let mut out = Vec::new();
    for n in names {
        if hide_wow && same_name(&n, WOW) {
            continue;
        }
        let mut child: Vec<&str> = rel.clone();
        child.push(&n);
        match lookup(root, &physical(&child)) {
            Ok(Some(k)) => out.push(Ok(k)),
            Ok(None) => {}
            Err(e) => out.push(Err(e)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_and_redirected() {
        assert!(!is_shared(&["Microsoft"]));
        assert!(is_shared(&["Policies", "x"]));
        assert!(is_shared(&["Classes", ".txt"]));
        assert!(!is_shared(&["Classes", "CLSID", "{x}"]));
        assert!(is_shared(&[
            "Microsoft",
            "Windows",
            "CurrentVersion",
            "App Paths",
            "a.exe"
        ]));
        assert!(!is_shared(&[
            "Microsoft",
            "Windows",
            "CurrentVersion",
            "Run"
        ]));
        assert_eq!(
            physical(&["Vendor", "App"]),
            ["Wow6432Node", "Vendor", "App"]
        );
        assert_eq!(
            physical(&["Classes", "CLSID"]),
            ["Classes", "Wow6432Node", "CLSID"]
        );
        assert_eq!(physical(&["Policies"]), ["Policies"]);
    }

    #[test]
    fn redirected_keys_differ_between_the_views() {
        assert!(is_redirected(&["Vendor", "App"]));
        assert!(is_redirected(&["Classes", "CLSID", "{x}"]));
        assert!(!is_redirected(&[]));
        assert!(!is_redirected(&["Policies", "Corp"]));
        assert!(!is_redirected(&["Classes", ".txt"]));
        assert!(!is_redirected(&["WOW6432Node", "Vendor"]));
        assert!(!is_redirected(&["Classes", "wow6432node", "CLSID"]));
        assert!(in_wow_node(&["Wow6432Node"]));
        assert!(in_wow_node(&["classes", "Wow6432Node", "x"]));
        assert!(!in_wow_node(&["Classes"]));
        assert!(!in_wow_node(&["Vendor", "Wow6432Node"]));
    }
}
