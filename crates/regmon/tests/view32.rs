//! `64BitView FALSE` on an offline SOFTWARE hive: redirected keys are read
//! from `Wow6432Node`, shared keys from their own place, and `Wow6432Node`
//! itself is hidden.

mod common;

use common::{dword, id_to_path};
use hive::write::{to_bytes, KeyNode, WriteOptions};
use hive::ValueType;
use std::process::Command;

/// The value paths of a scan, each with its digest.
fn scan(view64: bool) -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let mut root = KeyNode::new("ROOT");
    root.key_mut("Vendor\\App")
        .set_value("Bits", ValueType::DWORD, dword(64));
    root.key_mut("Wow6432Node\\Vendor\\App")
        .set_value("Bits", ValueType::DWORD, dword(32));
    root.key_mut("Wow6432Node\\Legacy")
        .set_value("Only32", ValueType::DWORD, dword(1));
    root.key_mut("Policies\\Corp")
        .set_value("Shared", ValueType::DWORD, dword(1));
    root.key_mut("Wow6432Node\\Policies\\Corp")
        .set_value("Ignored", ValueType::DWORD, dword(1));
    root.key_mut("Classes\\.txt")
        .set_value("", ValueType::SZ, vec![0, 0]);
    root.key_mut("Classes\\CLSID\\{64}")
        .set_value("", ValueType::SZ, vec![0, 0]);
    root.key_mut("Classes\\Wow6432Node\\CLSID\\{32}")
        .set_value("", ValueType::SZ, vec![0, 0]);
    std::fs::write(
        dir.path().join("SOFTWARE"),
        to_bytes(&root, &WriteOptions::default()),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("r.conf"),
        format!(
            "CacheDir cache\n<Input regmon>\n Module im_regmon\n RegValue 'HKLM\\SOFTWARE\\*'\n Recursive TRUE\n\
             HiveFile 'HKLM\\SOFTWARE' 'SOFTWARE'\n 64BitView {}\n</Input>\n",
            if view64 { "TRUE" } else { "FALSE" }
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_regmon"))
        .current_dir(dir.path())
        // The baseline key and side records: never the real home.
        .env("REGMON_KEY_DIR", dir.path().join(".regmon-keys"))
        .args(["-c", "r.conf", "--once"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows =
        regmon::baseline::stored_values(&dir.path().join("cache/regmon-regmon.sqlite")).unwrap();
    rows.into_iter()
        .map(|e| (id_to_path(&e.id), e.digest.to_vec()))
        .map(|(p, d)| (p.replace("HKLM\\SOFTWARE\\", ""), d))
        .collect()
}

fn paths(view64: bool) -> Vec<String> {
    scan(view64).into_iter().map(|(p, _)| p).collect()
}

#[test]
fn the_32_bit_view_follows_wow64_redirection() {
    assert_eq!(
        paths(false),
        [
            "Classes\\.txt\\(Default)",
            "Classes\\CLSID\\{32}\\(Default)",
            "Legacy\\Only32",
            "Policies\\Corp\\Shared",
            "Vendor\\App\\Bits",
        ]
    );
    // Vendor\App is the 32-bit copy.
    use sha1::Digest as _;
    let bits = scan(false)
        .into_iter()
        .find(|(p, _)| p == "Vendor\\App\\Bits")
        .unwrap()
        .1;
    assert_eq!(bits, sha1::Sha1::digest(dword(32)).to_vec());
    // The 64-bit view sees the hive as it is, Wow6432Node included.
    let all = paths(true);
    assert!(all.contains(&"Wow6432Node\\Legacy\\Only32".to_string()));
    assert!(all.contains(&"Classes\\CLSID\\{64}\\(Default)".to_string()));
    assert_eq!(all.len(), 8);
}
