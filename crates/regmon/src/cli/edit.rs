//! `regmon hive edit` (change values and keys of a hive file, for
//! walkthroughs and tests) and `regmon hive sample` (write the sample hive).

use hive::write::{to_bytes, KeyNode, WriteOptions};
use hive::{upcase_unit, HiveFile, ValueType};
use std::path::Path;
use std::process::ExitCode;

/// One edit, in the order given.
pub enum Edit {
    Set {
        key: String,
        name: String,
        ty: String,
        data: String,
    },
    DeleteValue {
        key: String,
        name: String,
    },
    DeleteKey {
        key: String,
    },
}

/// Encodes command-line data for a value type: text for the string types
/// (`|` separates REG_MULTI_SZ items), decimal or 0x-hex for DWORD/QWORD,
/// hex for everything else; `hex:...` gives raw bytes for any type.
pub fn encode(ty: ValueType, data: &str) -> Result<Vec<u8>, String> {
    let utf16 = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect() };
    if let Some(h) = data.strip_prefix("hex:") {
        return decode_hex(h);
    }
    let int = |s: &str| -> Result<u64, String> {
        let r = match s.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16),
            None => s.parse(),
        };
        r.map_err(|_| format!("'{s}' is not a number"))
    };
    Ok(match ty {
        ValueType::SZ | ValueType::EXPAND_SZ | ValueType::LINK => {
            let mut v = utf16(data);
            v.extend_from_slice(&[0, 0]);
            v
        }
        ValueType::MULTI_SZ => {
            let mut v = Vec::new();
            if !data.is_empty() {
                for item in data.split('|') {
                    v.extend(utf16(item));
                    v.extend_from_slice(&[0, 0]);
                }
            }
            v.extend_from_slice(&[0, 0]);
            v
        }
        ValueType::DWORD => (int(data)? as u32).to_le_bytes().to_vec(),
        ValueType::DWORD_BIG_ENDIAN => (int(data)? as u32).to_be_bytes().to_vec(),
        ValueType::QWORD => int(data)?.to_le_bytes().to_vec(),
        _ => decode_hex(data)?,
    })
}

fn decode_hex(h: &str) -> Result<Vec<u8>, String> {
    let h: String = h
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ',')
        .collect();
    if !h.len().is_multiple_of(2) {
        return Err(format!("hex data '{h}' has an odd number of digits"));
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).map_err(|_| format!("'{h}' is not hex")))
        .collect()
}

fn now_filetime() -> u64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() + 11_644_473_600) * 10_000_000 + u64::from(d.subsec_nanos() / 100)
}

/// The value name as stored: `(Default)` is the default value, ''.
fn value_name(name: &str) -> &str {
    if name.eq_ignore_ascii_case("(Default)") {
        ""
    } else {
        name
    }
}

/// The parts of a key path relative to the hive root.
fn parts(path: &str) -> impl Iterator<Item = &str> {
    path.split('\\').filter(|p| !p.is_empty())
}

/// Registry name comparison (case-insensitive, as the hive's own rules).
fn same(units: &[u16], name: &str) -> bool {
    let mut n = name.encode_utf16();
    units
        .iter()
        .all(|&u| n.next().is_some_and(|v| upcase_unit(u) == upcase_unit(v)))
        && n.next().is_none()
}

/// The key at `path`, if it exists.
fn find<'k>(root: &'k mut KeyNode, path: &str) -> Option<&'k mut KeyNode> {
    let mut k = root;
    for part in parts(path) {
        k = k.subkeys.iter_mut().find(|s| same(&s.name, part))?;
    }
    Some(k)
}

/// The key at `path`, created with any missing parents. As on Windows, a
/// created key and the key that gains it as a subkey are written at `now`.
fn find_or_create<'k>(root: &'k mut KeyNode, path: &str, now: u64) -> &'k mut KeyNode {
    let mut k = root;
    for part in parts(path) {
        let i = match k.subkeys.iter().position(|s| same(&s.name, part)) {
            Some(i) => i,
            None => {
                k.last_written = now;
                let mut created = KeyNode::new(part);
                created.last_written = now;
                k.subkeys.push(created);
                k.subkeys.len() - 1
            }
        };
        k = &mut k.subkeys[i];
    }
    k
}

/// Applies one edit; only the keys it writes get a new last-written time.
fn apply(root: &mut KeyNode, e: &Edit, now: u64) -> Result<(), String> {
    match e {
        Edit::Set {
            key,
            name,
            ty,
            data,
        } => {
            let t = ValueType::from_name(ty)
                .ok_or_else(|| format!("unknown value type '{ty}' (REG_SZ, ..., or a number)"))?;
            let bytes = encode(t, data)?;
            let k = find_or_create(root, key, now);
            k.set_value(value_name(name), t, bytes);
            k.last_written = now;
        }
        Edit::DeleteValue { key, name } => {
            let k = find(root, key).ok_or_else(|| format!("no key '{key}'"))?;
            if !k.remove_value(value_name(name)) {
                return Err(format!("no value '{name}' in key '{key}'"));
            }
            k.last_written = now;
        }
        Edit::DeleteKey { key } => {
            let (parent, last) = match key.trim_end_matches('\\').rsplit_once('\\') {
                Some((p, l)) => (p, l),
                None => ("", key.trim_end_matches('\\')),
            };
            let p = find(root, parent)
                .filter(|_| !last.is_empty())
                .ok_or_else(|| format!("no key '{key}'"))?;
            let before = p.subkeys.len();
            p.subkeys.retain(|s| !same(&s.name, last));
            if p.subkeys.len() == before {
                return Err(format!("no key '{key}'"));
            }
            p.last_written = now;
        }
    }
    Ok(())
}

/// Applies `edits` in the order given and rewrites the file. What the edits
/// do not touch is kept: the base block's embedded name, time and format
/// version, and every other key's last-written time.
pub fn edit(path: &Path, edits: &[Edit]) -> Result<ExitCode, String> {
    let named = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let (mut root, base) = {
        let f = HiveFile::open(path).map_err(|e| named(&e))?;
        let h = f.hive().map_err(|e| named(&e))?;
        let r = h.root().map_err(|e| named(&e))?;
        let root = KeyNode::from_key(&r).map_err(|e| named(&e))?;
        (root, h.base_block().clone())
    };
    let now = now_filetime();
    for e in edits {
        apply(&mut root, e, now)?;
    }
    let opts = WriteOptions {
        // The versions the writer knows; another is written as 1.5.
        minor: if (3..=6).contains(&base.minor) {
            base.minor
        } else {
            WriteOptions::default().minor
        },
        timestamp: base.last_written,
        file_name: base.file_name,
        ..WriteOptions::default()
    };
    write_atomic(path, &to_bytes(&root, &opts))?;
    Ok(ExitCode::SUCCESS)
}

/// Writes beside the target and renames over it, so a reader (a running
/// regmon) sees the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("regmon-tmp");
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The sample SOFTWARE hive shipped in the repository (examples/sample/SOFTWARE).
pub fn sample_tree() -> KeyNode {
    let t = |ty, d: &str| encode(ty, d).expect("static sample data");
    let ts = 133_500_000_000_000_000; // 2024-01-21, fixed so the file is reproducible
    let mut root = KeyNode::new("CMI-CreateHive{regmon-sample}");
    let pol = root.key_mut("Policies");
    pol.set_value("", ValueType::SZ, t(ValueType::SZ, "default value"));
    pol.set_value("NoAutoUpdate", ValueType::DWORD, t(ValueType::DWORD, "1"));
    pol.set_value(
        "ProxyServer",
        ValueType::SZ,
        t(ValueType::SZ, "proxy.corp.example:8080"),
    );
    pol.set_value(
        "ScriptPath",
        ValueType::EXPAND_SZ,
        t(ValueType::EXPAND_SZ, "%SystemRoot%\\scripts"),
    );
    pol.set_value(
        "TrustedSites",
        ValueType::MULTI_SZ,
        t(ValueType::MULTI_SZ, "https://a.example|https://b.example"),
    );
    pol.set_value(
        "Blob",
        ValueType::BINARY,
        t(ValueType::BINARY, "00112233445566778899aabbccddeeff"),
    );
    pol.set_value(
        "MaxSize",
        ValueType::QWORD,
        t(ValueType::QWORD, "1099511627776"),
    );
    pol.set_value("Marker", ValueType::NONE, Vec::new());
    pol.set_value("Größe", ValueType::DWORD, t(ValueType::DWORD, "42"));
    let defender = pol.key_mut("Microsoft\\Windows Defender");
    defender.set_value(
        "DisableAntiSpyware",
        ValueType::DWORD,
        t(ValueType::DWORD, "0"),
    );
    defender.key_mut("Real-Time Protection").set_value(
        "DisableRealtimeMonitoring",
        ValueType::DWORD,
        t(ValueType::DWORD, "0"),
    );
    let run = root.key_mut("Microsoft\\Windows\\CurrentVersion\\Run");
    run.set_value(
        "SecurityHealth",
        ValueType::EXPAND_SZ,
        t(
            ValueType::EXPAND_SZ,
            "%windir%\\system32\\SecurityHealthSystray.exe",
        ),
    );
    run.set_value(
        "OneDrive",
        ValueType::SZ,
        t(
            ValueType::SZ,
            "C:\\Program Files\\Microsoft OneDrive\\OneDrive.exe /background",
        ),
    );
    let wow_run = root.key_mut("Wow6432Node\\Microsoft\\Windows\\CurrentVersion\\Run");
    wow_run.set_value(
        "LegacyAgent",
        ValueType::SZ,
        t(ValueType::SZ, "C:\\Program Files (x86)\\Agent\\agent.exe"),
    );
    let pg = root.key_mut("Program Groups");
    pg.set_value("Accessories", ValueType::SZ, t(ValueType::SZ, "noisy"));
    pg.key_mut("Startup")
        .set_value("Items", ValueType::DWORD, t(ValueType::DWORD, "3"));
    let vendor = root.key_mut("Vendor\\App");
    vendor.set_value("Version", ValueType::SZ, t(ValueType::SZ, "1.2.3"));
    vendor.set_value(
        "Certificate",
        ValueType::BINARY,
        (0..20_000u32).map(|i| (i % 251) as u8).collect(),
    );
    stamp(&mut root, ts);
    root
}

fn stamp(k: &mut KeyNode, ts: u64) {
    k.last_written = ts;
    for s in &mut k.subkeys {
        stamp(s, ts);
    }
}

/// The sample hive's bytes: the same on every run and machine.
pub fn sample_bytes() -> Vec<u8> {
    let opts = WriteOptions {
        timestamp: 133_500_000_000_000_000,
        file_name: "SOFTWARE".into(),
        ..Default::default()
    };
    to_bytes(&sample_tree(), &opts)
}

pub fn sample(out: &Path) -> Result<ExitCode, String> {
    write_atomic(out, &sample_bytes())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_sample_is_what_the_writer_makes() {
        let shipped = include_bytes!("../../../../examples/sample/SOFTWARE");
        assert!(
            shipped.as_slice() == sample_bytes().as_slice(),
            "examples/sample/SOFTWARE is stale: run `regmon hive sample examples/sample/SOFTWARE`"
        );
    }

    #[test]
    fn data_encodings() {
        assert_eq!(encode(ValueType::DWORD, "0x10").unwrap(), vec![16, 0, 0, 0]);
        assert_eq!(
            encode(ValueType::QWORD, "1").unwrap(),
            vec![1, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(encode(ValueType::SZ, "a").unwrap(), vec![b'a', 0, 0, 0]);
        assert_eq!(
            encode(ValueType::MULTI_SZ, "a|b").unwrap(),
            vec![b'a', 0, 0, 0, b'b', 0, 0, 0, 0, 0]
        );
        assert_eq!(encode(ValueType::BINARY, "0aff").unwrap(), vec![10, 255]);
        assert_eq!(encode(ValueType::SZ, "hex:01").unwrap(), vec![1]);
        assert!(encode(ValueType::BINARY, "abc").is_err());
        assert!(encode(ValueType::DWORD, "x").is_err());
    }
}
