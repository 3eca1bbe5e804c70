//! Registry links offline, as Windows resolves them.
//!
//! Two kinds exist. `HKLM\SYSTEM\CurrentControlSet` (and each control
//! set's `Hardware Profiles\Current`) are volatile links Windows creates at
//! boot, so a hive file never holds them: they are rebuilt here from
//! `SYSTEM\Select\Current` (and `Control\IDConfigDB\CurrentConfig`). Symbolic
//! links stored in a hive are keys flagged `KEY_SYM_LINK` whose value
//! `SymbolicLinkValue` (REG_LINK) names the target, as
//! `\REGISTRY\MACHINE\...` or `\REGISTRY\USER\...`.

use crate::path::pattern::{same_name, Root};
use hive::{Key, ValueType};

/// The value of a link key that names its target.
pub const LINK_VALUE: &str = "SymbolicLinkValue";
/// The name of the control-set link below `HKLM\SYSTEM`.
pub const CURRENT_CONTROL_SET: &str = "CurrentControlSet";
/// Links followed one after another before giving up (Windows stops after
/// a handful; a longer chain is a loop or hostile).
pub const MAX_HOPS: usize = 16;

/// Where `CurrentControlSet` of a SYSTEM hive points.
#[derive(Clone)]
pub enum Current<'h> {
    /// `ControlSet<n>` (the key) and the link's target text.
    Set { key: Key<'h>, target: String },
    /// Neither `Select\Current` nor `Select\Default` names an existing
    /// control set: why, for the warning.
    Unresolved(String),
}

/// The control set `CurrentControlSet` follows in a SYSTEM hive (`root`):
/// `Select\Current`, else `Select\Default` (a warning says why, naming
/// `file`). Returns the resolution and the warnings.
pub fn current_control_set<'h>(root: Key<'h>, file: &str) -> (Current<'h>, Vec<String>) {
    let mut warnings = Vec::new();
    let current = control_set(root, "Current");
    match current {
        Ok(set) => (set, warnings),
        Err(why_current) => match control_set(root, "Default") {
            Ok(set) => {
                if let Current::Set { target, .. } = &set {
                    warnings.push(format!(
                        "{file}: key Select: {why_current}; CurrentControlSet follows Select\\Default ({})",
                        target.rsplit('\\').next().unwrap_or_default()
                    ));
                }
                (set, warnings)
            }
            Err(why_default) => (
                Current::Unresolved(format!(
                    "CurrentControlSet cannot be resolved in {file}: key Select: {why_current}, and {why_default}; \
                     what is under it keeps its baseline"
                )),
                warnings,
            ),
        },
    }
}

/// `ControlSet<n>` for the DWORD `Select\<which>`, or why not.
fn control_set<'h>(root: Key<'h>, which: &str) -> Result<Current<'h>, String> {
    let select = match root.subkey("Select") {
        Ok(Some(k)) => k,
        Ok(None) => return Err("the key is missing".into()),
        Err(e) => return Err(format!("unreadable ({e})")),
    };
    let n = dword(select, which).map_err(|e| format!("value {which} {e}"))?;
    let name = format!("ControlSet{n:03}");
    match root.subkey(&name) {
        Ok(Some(key)) => Ok(Current::Set {
            key,
            target: format!("\\REGISTRY\\MACHINE\\SYSTEM\\{name}"),
        }),
        Ok(None) => Err(format!("value {which} is {n}, but there is no {name}")),
        Err(e) => Err(format!(
            "value {which} is {n}, but {name} is unreadable ({e})"
        )),
    }
}

/// The DWORD value `name` of `key`, or why not (for a message).
fn dword(key: Key<'_>, name: &str) -> Result<u32, String> {
    let v = match key.value(name) {
        Ok(Some(v)) => v,
        Ok(None) => return Err("is missing".into()),
        Err(e) => return Err(format!("is unreadable ({e})")),
    };
    let data = v.data().map_err(|e| format!("is unreadable ({e})"))?;
    match (v.value_type(), <[u8; 4]>::try_from(&data[..])) {
        (ValueType::DWORD, Ok(b)) => Ok(u32::from_le_bytes(b)),
        (t, _) => Err(format!(
            "is not a REG_DWORD of 4 bytes (type {}, {} bytes)",
            t.0,
            data.len()
        )),
    }
}

/// `Hardware Profiles\Current` of the control set `set`: the profile key
/// `Control\IDConfigDB\CurrentConfig` names (`Hardware Profiles\0001`),
/// with the link's target text, or why not.
pub fn current_profile<'h>(set: Key<'h>) -> Result<(Key<'h>, String), String> {
    let idconfig = match set
        .subkey("Control")
        .and_then(|c| c.map(|c| c.subkey("IDConfigDB")).transpose())
    {
        Ok(Some(Some(k))) => k,
        Ok(_) => return Err("key Control\\IDConfigDB is missing".into()),
        Err(e) => return Err(format!("key Control\\IDConfigDB is unreadable ({e})")),
    };
    let n = dword(idconfig, "CurrentConfig")
        .map_err(|e| format!("value Control\\IDConfigDB\\CurrentConfig {e}"))?;
    let name = format!("{n:04}");
    match set.subkey("Hardware Profiles").and_then(|h| match h {
        Some(h) => h.subkey(&name),
        None => Ok(None),
    }) {
        Ok(Some(k)) => Ok((
            k,
            format!("\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Hardware Profiles\\{name}"),
        )),
        Ok(None) => Err(format!(
            "CurrentConfig is {n}, but there is no Hardware Profiles\\{name}"
        )),
        Err(e) => Err(format!("Hardware Profiles\\{name} is unreadable ({e})")),
    }
}

/// The target a symbolic link key names (its `SymbolicLinkValue`, REG_LINK,
/// UTF-16LE; trailing NULs dropped), or why it cannot be read.
pub fn stored_target(key: Key<'_>) -> Result<String, String> {
    let v = match key.value(LINK_VALUE) {
        Ok(Some(v)) => v,
        Ok(None) => return Err(format!("a link key without a {LINK_VALUE} value")),
        Err(e) => return Err(format!("{LINK_VALUE} is unreadable ({e})")),
    };
    let data = v
        .data()
        .map_err(|e| format!("{LINK_VALUE} is unreadable ({e})"))?;
    if v.value_type() != ValueType::LINK {
        return Err(format!(
            "{LINK_VALUE} is of type {}, not REG_LINK",
            v.value_type().0
        ));
    }
    let mut units: Vec<u16> = data
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    while units.last() == Some(&0) {
        units.pop();
    }
    Ok(String::from_utf16_lossy(&units))
}

/// A link target as a registry root and key components:
/// `\REGISTRY\MACHINE\X\Y` is `HKLM` + `[X, Y]`, `\REGISTRY\USER\S` is
/// `HKU` + `[S]` (case-insensitive). None for anything else.
pub fn parse_target(target: &str) -> Option<(Root, Vec<String>)> {
    let mut parts = target.split('\\').filter(|p| !p.is_empty());
    if !parts.next().is_some_and(|p| same_name(p, "REGISTRY")) {
        return None;
    }
    let root = match parts.next() {
        Some(p) if same_name(p, "MACHINE") => Root::Hklm,
        Some(p) if same_name(p, "USER") => Root::Hku,
        _ => return None,
    };
    Some((root, parts.map(String::from).collect()))
}

/// What to show of a retargeted link: the parts of the two targets after
/// their common parent (`ControlSet002` and `ControlSet001`), or the whole
/// targets when they differ higher up.
pub fn retarget_texts<'a>(new: &'a str, old: &'a str) -> (&'a str, &'a str) {
    match (new.rsplit_once('\\'), old.rsplit_once('\\')) {
        (Some((np, nl)), Some((op, ol))) if same_name(np, op) && !np.is_empty() => (nl, ol),
        _ => (new, old),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive::write::{to_bytes, KeyNode, WriteOptions};
    use hive::Hive;

    fn system(edit: impl FnOnce(&mut KeyNode)) -> Vec<u8> {
        let mut root = KeyNode::new("ROOT");
        root.key_mut("ControlSet001\\Services");
        root.key_mut("ControlSet002\\Services");
        root.key_mut("Select")
            .set_value("Current", ValueType::DWORD, 2u32.to_le_bytes().to_vec());
        root.key_mut("Select")
            .set_value("Default", ValueType::DWORD, 1u32.to_le_bytes().to_vec());
        edit(&mut root);
        to_bytes(&root, &WriteOptions::default())
    }

    fn resolve(bytes: &[u8]) -> (Result<String, String>, Vec<String>) {
        let h = Hive::new(bytes).unwrap();
        let (c, w) = current_control_set(h.root().unwrap(), "SYS");
        let r = match c {
            Current::Set { target, .. } => Ok(target),
            Current::Unresolved(why) => Err(why),
        };
        (r, w)
    }

    #[test]
    fn select_current_then_default_then_nothing() {
        let (r, w) = resolve(&system(|_| {}));
        assert_eq!(r.unwrap(), "\\REGISTRY\\MACHINE\\SYSTEM\\ControlSet002");
        assert!(w.is_empty());

        // Current names a set that does not exist: Default, with a warning.
        let (r, w) = resolve(&system(|k| {
            k.key_mut("Select")
                .set_value("Current", ValueType::DWORD, 7u32.to_le_bytes().to_vec())
        }));
        assert_eq!(r.unwrap(), "\\REGISTRY\\MACHINE\\SYSTEM\\ControlSet001");
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("SYS: key Select: value Current is 7, but there is no ControlSet007"),
            "{w:?}"
        );
        assert!(
            w[0].contains("follows Select\\Default (ControlSet001)"),
            "{w:?}"
        );

        // Current of the wrong type.
        let (r, w) = resolve(&system(|k| {
            k.key_mut("Select")
                .set_value("Current", ValueType::SZ, vec![0x31, 0, 0, 0])
        }));
        assert!(r.is_ok());
        assert!(w[0].contains("not a REG_DWORD"), "{w:?}");

        // No Select at all.
        let (r, w) = resolve(&system(|k| {
            k.remove_key("Select");
        }));
        let why = r.unwrap_err();
        assert!(why.contains("key Select: the key is missing"), "{why}");
        assert!(why.contains("keeps its baseline"), "{why}");
        assert!(w.is_empty());
    }

    #[test]
    fn targets_parse_case_insensitively() {
        assert_eq!(
            parse_target("\\Registry\\Machine\\System\\ControlSet001"),
            Some((Root::Hklm, vec!["System".into(), "ControlSet001".into()]))
        );
        assert_eq!(
            parse_target("\\REGISTRY\\USER\\S-1-5-18"),
            Some((Root::Hku, vec!["S-1-5-18".into()]))
        );
        assert_eq!(parse_target("\\REGISTRY\\A\\B"), None);
        assert_eq!(parse_target("C:\\Windows"), None);
        assert_eq!(
            retarget_texts(
                "\\REGISTRY\\MACHINE\\SYSTEM\\ControlSet002",
                "\\REGISTRY\\MACHINE\\SYSTEM\\ControlSet001"
            ),
            ("ControlSet002", "ControlSet001")
        );
        assert_eq!(retarget_texts("\\A\\B", "\\C\\D"), ("\\A\\B", "\\C\\D"));
    }

    #[test]
    fn the_hardware_profile_follows_current_config() {
        let bytes = system(|k| {
            k.key_mut("ControlSet001\\Control\\IDConfigDB").set_value(
                "CurrentConfig",
                ValueType::DWORD,
                1u32.to_le_bytes().to_vec(),
            );
            k.key_mut("ControlSet001\\Hardware Profiles\\0001\\Software");
        });
        let h = Hive::new(&bytes).unwrap();
        let set = h.root().unwrap().subkey("ControlSet001").unwrap().unwrap();
        let (k, t) = current_profile(set).unwrap();
        assert_eq!(k.name().to_string_lossy(), "0001");
        assert_eq!(
            t,
            "\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Hardware Profiles\\0001"
        );
        let set2 = h.root().unwrap().subkey("ControlSet002").unwrap().unwrap();
        assert!(current_profile(set2)
            .unwrap_err()
            .contains("IDConfigDB is missing"));
    }
}
