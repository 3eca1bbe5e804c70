//! A hive damaged inside (one key's cell broken) is read in part: the damage
//! is a warning naming the key and the hive offset, and the values it hides
//! are not reported deleted; the rest of the scan goes on.

use hive::write::{to_bytes, KeyNode, WriteOptions};
use hive::ValueType;
use std::process::Command;

#[test]
fn damaged_key_hides_values_without_a_delete_storm() {
    let dir = tempfile::tempdir().unwrap();
    let mut root = KeyNode::new("ROOT");
    for k in ["A", "Broken", "C"] {
        let key = root.key_mut(&format!("P\\{k}"));
        key.set_value("v1", ValueType::DWORD, vec![1, 0, 0, 0]);
        key.key_mut("Sub")
            .set_value("v2", ValueType::DWORD, vec![2, 0, 0, 0]);
    }
    let hive = dir.path().join("SOFTWARE");
    let bytes = to_bytes(&root, &WriteOptions::default());
    std::fs::write(&hive, &bytes).unwrap();
    std::fs::write(
        dir.path().join("r.conf"),
        "<Input regmon>\n Module im_regmon\n RegValue 'HKLM\\SOFTWARE\\*'\n Recursive TRUE\n\
         HiveFile 'HKLM\\SOFTWARE' 'SOFTWARE'\n</Input>\n<Output file>\n Module om_file\n File 'out.log'\n</Output>\n",
    )
    .unwrap();
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_regmon"))
            .current_dir(dir.path())
            // The baseline key and side records: never the real home.
            .env("REGMON_KEY_DIR", dir.path().join(".regmon-keys"))
            .args(["-c", "r.conf", "--once"])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    run();
    // Break the signature of the key "Broken".
    let mut damaged = bytes.clone();
    let at = damaged.windows(6).position(|w| w == b"Broken").unwrap();
    damaged[at - 76..at - 74].copy_from_slice(b"XX");
    std::fs::write(&hive, &damaged).unwrap();
    let log = run();
    assert!(
        log.contains("HKLM\\SOFTWARE\\P") && log.contains("hive offset 0x"),
        "{log}"
    );
    let events = std::fs::read_to_string(dir.path().join("out.log")).unwrap_or_default();
    assert!(
        !events.contains("DELETE"),
        "no DELETE for values hidden by damage: {events}"
    );
    // Repaired: nothing changed, nothing reported.
    std::fs::write(&hive, &bytes).unwrap();
    run();
    let events = std::fs::read_to_string(dir.path().join("out.log")).unwrap_or_default();
    assert!(events.is_empty(), "{events}");
}
