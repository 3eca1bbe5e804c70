//! The one-shot commands end to end: `diff` on damaged hives, its ECS
//! output, exit codes and pipes; `hive edit`'s order and what it keeps;
//! `--once`'s exit code when events cannot be delivered.

mod common;

use common::*;
use hive::write::{to_bytes, KeyNode, WriteOptions};
use hive::{HiveFile, ValueType};
use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};

fn stdout_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(normalise)
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// Keys `P\A`, `P\Broken`, `P\C`, each with `v1` and a subkey `Sub` with `v2`.
fn three_keys() -> KeyNode {
    let mut root = KeyNode::new("ROOT");
    for k in ["A", "Broken", "C"] {
        let key = root.key_mut(&format!("P\\{k}"));
        key.set_value("v1", ValueType::DWORD, dword(1));
        key.key_mut("Sub")
            .set_value("v2", ValueType::DWORD, dword(2));
    }
    root
}

/// The hive of `tree` with the cell signature of key `Broken` destroyed.
fn damaged(tree: &KeyNode) -> Vec<u8> {
    let mut bytes = to_bytes(tree, &WriteOptions::default());
    let at = bytes.windows(6).position(|w| w == b"Broken").unwrap();
    // The name sits 76 bytes after the "nk" signature (see damage.rs).
    bytes[at - 76..at - 74].copy_from_slice(b"XX");
    bytes
}

/// Damage in the new hive hides values: no DELETE for them, exit 3, and
/// each warning names the file and the key as the events print it.
#[test]
fn diff_of_a_damaged_hive_reports_no_delete_for_hidden_values_and_exits_3() {
    let env = Env::new();
    let old = three_keys();
    let mut new = old.clone();
    new.key_mut("P\\A")
        .set_value("v1", ValueType::DWORD, dword(7));
    env.write_hive("OLD", &old);
    std::fs::write(env.path("NEW"), damaged(&new)).unwrap();
    let change = expect_line(
        "diff",
        "P\\A\\v1",
        Some(&v(ValueType::DWORD, dword(1))),
        Some(&v(ValueType::DWORD, dword(7))),
    );

    let out = env.run(&["diff", "OLD", "NEW"]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert_eq!(stdout_lines(&out), [change], "{log}");
    assert!(log.contains("NEW: key 'P': "), "{log}");
    assert!(log.contains("hive offset 0x"), "{log}");
    assert!(
        !log.contains("HKLM"),
        "no paths that the output does not use: {log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "no colour codes off a terminal: {log}"
    );

    // With --root the warnings use the paths of the events.
    let out = env.run(&["diff", "OLD", "NEW", "--root", "HKLM\\SOFTWARE"]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{log}");
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("\"CHANGE\""), "{lines:?}");
    assert!(log.contains("NEW: key 'HKLM\\SOFTWARE\\P': "), "{log}");

    // Damage in the old hive: the values it hid are not NEW either.
    let out = env.run(&["diff", "NEW", "OLD"]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{log}");
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("\"CHANGE\""), "{lines:?}");

    // Undamaged hives still exit 0.
    env.write_hive("NEW2", &new);
    let out = env.run(&["diff", "OLD", "NEW2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout_lines(&out).len(), 1);
}

/// Without --root there is no hive: `registry.hive` is left out and the
/// key and value names are whole, for values at the root too.
#[test]
fn diff_ecs_fields_with_and_without_root() {
    let env = Env::new();
    let mut old = KeyNode::new("ROOT");
    old.set_value("Top", ValueType::DWORD, dword(1));
    old.key_mut("A\\B")
        .set_value("val", ValueType::DWORD, dword(1));
    let mut new = old.clone();
    new.set_value("Top", ValueType::DWORD, dword(2));
    new.key_mut("A\\B")
        .set_value("val", ValueType::DWORD, dword(2));
    env.write_hive("OLD", &old);
    env.write_hive("NEW", &new);

    let out = env.run(&["diff", "OLD", "NEW", "--schema", "ecs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let events: Vec<_> = stdout_lines(&out).iter().map(|l| json(l)).collect();
    assert_eq!(events.len(), 2);
    let reg = |i: usize| events[i]["registry"].clone();
    // A key's values come before its subkeys.
    assert_eq!(events[1]["RegistryValueName"], "A\\B\\val");
    assert_eq!(reg(1)["key"], "A\\B");
    assert_eq!(reg(1)["value"], "val");
    assert_eq!(reg(1)["path"], "A\\B\\val");
    assert!(reg(1).get("hive").is_none(), "{}", reg(1));
    assert_eq!(events[0]["RegistryValueName"], "Top");
    assert_eq!(reg(0)["key"], "");
    assert_eq!(reg(0)["value"], "Top");
    assert_eq!(reg(0)["path"], "Top");
    assert!(reg(0).get("hive").is_none(), "{}", reg(0));

    let out = env.run(&[
        "diff",
        "OLD",
        "NEW",
        "--schema",
        "ecs",
        "--root",
        "HKLM\\SOFTWARE",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let events: Vec<_> = stdout_lines(&out).iter().map(|l| json(l)).collect();
    assert_eq!(events.len(), 2);
    let reg = |i: usize| events[i]["registry"].clone();
    assert_eq!(reg(1)["hive"], "HKLM");
    assert_eq!(reg(1)["key"], "SOFTWARE\\A\\B");
    assert_eq!(reg(1)["value"], "val");
    assert_eq!(reg(0)["hive"], "HKLM");
    assert_eq!(reg(0)["key"], "SOFTWARE");
    assert_eq!(reg(0)["value"], "Top");
    assert_eq!(reg(0)["path"], "HKLM\\SOFTWARE\\Top");
}

/// `diff ... | head -1`: the reader leaves early; regmon stops without a
/// word (no broken-pipe error, no panic).
#[test]
fn diff_into_a_closed_pipe_is_quiet() {
    let env = Env::new();
    let mut old = KeyNode::new("ROOT");
    for k in 0..50 {
        let key = old.key_mut(&format!("K{k:02}"));
        for i in 0..100 {
            key.set_value(&format!("v{i:03}"), ValueType::DWORD, dword(i));
        }
    }
    env.write_hive("OLD", &KeyNode::new("ROOT"));
    env.write_hive("NEW", &old);
    // 5000 NEW lines: far more than a pipe holds.
    let mut child = env
        .cmd(&["diff", "OLD", "NEW"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is dropped here: the pipe closes.
    assert!(first.contains("\"NEW\""), "{first}");
    let out = child.wait_with_output().unwrap();
    let log = stderr(&out);
    assert!(log.is_empty(), "quiet on a closed pipe: {log}");
    assert_eq!(out.status.code(), Some(0));

    // A reader gone before anything is written: the last flush fails.
    env.write_hive(
        "SMALL",
        &KeyNode::new("ROOT").with_value("x", ValueType::DWORD, dword(1)),
    );
    let mut child = env
        .cmd(&["diff", "OLD", "SMALL"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let log = stderr(&out);
    assert!(log.is_empty(), "quiet on a closed pipe: {log}");
    assert_eq!(out.status.code(), Some(0));
}

/// `--data` alone is 4096 bytes and never takes the next argument;
/// `--data=N` gives the byte count.
#[test]
fn data_takes_its_byte_count_after_an_equals_sign() {
    let env = Env::new();
    let old = KeyNode::new("ROOT");
    let mut new = old.clone();
    new.set_value("s", ValueType::SZ, utf16z("abcdef"));
    env.write_hive("OLD", &old);
    env.write_hive("NEW", &new);

    let out = env.run(&["diff", "--data", "OLD", "NEW"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let e = json(&stdout_lines(&out)[0]);
    assert_eq!(e["Value"], "abcdef");
    assert!(e.get("ValueTruncated").is_none());

    let out = env.run(&["diff", "--data=4", "OLD", "NEW"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let e = json(&stdout_lines(&out)[0]);
    assert_eq!(e["Value"], "ab");
    assert_eq!(e["ValueTruncated"], true);

    // `--data 4` would make 4 a third file name: a usage error.
    let out = env.run(&["diff", "--data", "4", "OLD", "NEW"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// The values of a hive: (key path, name) -> data, via `hive dump`'s view.
fn read_hive(path: &std::path::Path) -> (hive::BaseBlock, KeyNode) {
    let f = HiveFile::open(path).unwrap();
    let h = f.hive().unwrap();
    let root = KeyNode::from_key(&h.root().unwrap()).unwrap();
    (h.base_block().clone(), root)
}

fn find<'k>(root: &'k KeyNode, path: &str) -> Option<&'k KeyNode> {
    let mut k = root;
    for p in path.split('\\').filter(|p| !p.is_empty()) {
        k = k.subkeys.iter().find(|s| s.name_lossy() == p)?;
    }
    Some(k)
}

fn value<'k>(root: &'k KeyNode, key: &str, name: &str) -> Option<&'k [u8]> {
    find(root, key)?
        .values
        .iter()
        .find(|v| String::from_utf16_lossy(&v.name) == name)
        .map(|v| v.data.as_slice())
}

#[test]
fn hive_edit_applies_operations_in_the_order_given() {
    let env = Env::new();
    let mut tree = KeyNode::new("ROOT");
    tree.key_mut("K").set_value("v", ValueType::DWORD, dword(1));
    env.write_hive("H", &tree);
    let edit = |args: &[&str]| {
        let mut all = vec!["hive", "edit", "H"];
        all.extend_from_slice(args);
        let out = env.run(&all);
        assert!(out.status.success(), "{}", stderr(&out));
        read_hive(&env.path("H")).1
    };
    // Delete, then set again: the value is there.
    let r = edit(&[
        "--delete-value",
        "K",
        "v",
        "--set",
        "K",
        "v",
        "REG_DWORD",
        "2",
    ]);
    assert_eq!(value(&r, "K", "v"), Some(&dword(2)[..]));
    // Set, then delete: it is gone.
    let r = edit(&[
        "--set",
        "K",
        "v",
        "REG_DWORD",
        "3",
        "--delete-value",
        "K",
        "v",
    ]);
    assert_eq!(value(&r, "K", "v"), None);
    // Delete the key, then create it anew with one value.
    let r = edit(&[
        "--set",
        "K",
        "old",
        "REG_DWORD",
        "1",
        "--delete-key",
        "K",
        "--set",
        "K",
        "fresh",
        "REG_DWORD",
        "4",
    ]);
    assert_eq!(value(&r, "K", "old"), None);
    assert_eq!(value(&r, "K", "fresh"), Some(&dword(4)[..]));
    // A failing operation changes nothing.
    let before = std::fs::read(env.path("H")).unwrap();
    let out = env.run(&["hive", "edit", "H", "--delete-value", "Nope", "x"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no key 'Nope'"), "{}", stderr(&out));
    assert_eq!(std::fs::read(env.path("H")).unwrap(), before);
}

#[test]
fn hive_edit_keeps_the_embedded_name_and_untouched_times() {
    let env = Env::new();
    const T0: u64 = 133_000_000_000_000_000; // 2022
    let mut tree = KeyNode::new("ROOT");
    for k in ["A", "A\\Deep", "B", "C\\Gone"] {
        tree.key_mut(k).set_value("v", ValueType::DWORD, dword(1));
    }
    fn stamp(k: &mut KeyNode, t: &mut u64) {
        k.last_written = *t;
        *t += 1;
        for s in &mut k.subkeys {
            stamp(s, t);
        }
    }
    let mut t = T0;
    stamp(&mut tree, &mut t);
    let opts = WriteOptions {
        timestamp: T0 - 5,
        file_name: "\\??\\C:\\Windows\\System32\\SOFTWARE".into(),
        ..WriteOptions::default()
    };
    std::fs::write(env.path("H"), to_bytes(&tree, &opts)).unwrap();
    let (base0, before) = read_hive(&env.path("H"));
    let out = env.run(&[
        "hive",
        "edit",
        "H",
        "--set",
        "A",
        "v",
        "REG_DWORD",
        "2",
        "--set",
        "B\\New",
        "v",
        "REG_DWORD",
        "1",
        "--delete-key",
        "C\\Gone",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (base, after) = read_hive(&env.path("H"));
    assert_eq!(base.file_name, base0.file_name);
    assert_eq!(base.last_written, T0 - 5);
    assert_eq!(base.minor, base0.minor);
    let time = |r: &KeyNode, p: &str| find(r, p).unwrap().last_written;
    // Untouched keys keep their times.
    for k in ["", "A\\Deep"] {
        assert_eq!(time(&after, k), time(&before, k), "key '{k}'");
    }
    // Written keys (a value set, a subkey added or removed) get a new one.
    for k in ["A", "B", "B\\New", "C"] {
        assert!(time(&after, k) > T0 + 100, "key '{k}' was written");
    }
    assert!(find(&after, "C\\Gone").is_none());
}

/// `--once` exits non-zero when events could not be written; they stay
/// queued and the next run delivers them.
#[test]
fn once_fails_while_events_cannot_be_delivered() {
    let env = Env::new();
    let mut tree = KeyNode::new("ROOT");
    tree.key_mut("Policies")
        .set_value("v", ValueType::DWORD, dword(1));
    env.write_hive("SOFTWARE", &tree);
    let conf = simple_conf(&env, " RegValue 'HKLM\\SOFTWARE\\Policies\\*'");
    // The output file is a folder: writing it fails.
    std::fs::create_dir(env.path("out.log")).unwrap();
    // The first run builds the baseline: no events, nothing undelivered.
    env.once(&conf);
    tree.key_mut("Policies")
        .set_value("v", ValueType::DWORD, dword(2));
    env.write_hive("SOFTWARE", &tree);
    let out = env.run(&["-c", &conf, "--once"]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("1 event(s) could not be delivered"), "{log}");
    // Still failing: still queued, still non-zero.
    let out = env.run(&["-c", &conf, "--once"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    std::fs::remove_dir(env.path("out.log")).unwrap();
    env.once(&conf);
    let lines = env.lines("out.log");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("\"CHANGE\""), "{lines:?}");
}
