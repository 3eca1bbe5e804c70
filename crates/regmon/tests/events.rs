//! Events that say what changed (issue 7): value types, ReportData with
//! MaxDataSize and NoDataFor, KeyEvents, and Schema ecs, through the binary.

use hive::write::{to_bytes, KeyNode, WriteOptions};
use hive::ValueType;
use serde_json::Value as J;
use std::path::Path;
use std::process::Command;

mod common;

use common::{multi, utf16z, BIN};

fn base_tree() -> KeyNode {
    let mut root = KeyNode::new("ROOT");
    let p = root.key_mut("Policies");
    p.set_value("Str", ValueType::SZ, utf16z("hello"));
    p.set_value("Exp", ValueType::EXPAND_SZ, utf16z("%SystemRoot%\\x"));
    p.set_value("Multi", ValueType::MULTI_SZ, multi(&["ab", "c"]));
    p.set_value("Dw", ValueType::DWORD, 7u32.to_le_bytes().to_vec());
    p.set_value(
        "Be",
        ValueType::DWORD_BIG_ENDIAN,
        7u32.to_be_bytes().to_vec(),
    );
    p.set_value("Qw", ValueType::QWORD, 9u64.to_le_bytes().to_vec());
    p.set_value("Bin", ValueType::BINARY, vec![1, 2, 3]);
    p.set_value("Odd", ValueType(0x4242), vec![9]);
    p.set_value("Big", ValueType::BINARY, vec![5; 10_000]);
    p.set_value("Password", ValueType::SZ, utf16z("hunter2"));
    p.key_mut("Secret")
        .set_value("Token", ValueType::SZ, utf16z("abc"));
    p.key_mut("Gone\\Deeper")
        .set_value("x", ValueType::DWORD, vec![1, 0, 0, 0]);
    p.key_mut("Gone")
        .set_value("y", ValueType::DWORD, vec![2, 0, 0, 0]);
    root
}

fn write(path: &Path, tree: &KeyNode) {
    std::fs::write(path, to_bytes(tree, &WriteOptions::default())).unwrap();
}

fn config(dir: &Path, extra: &str) {
    let text = format!(
        "<Extension json>\n Module xm_json\n</Extension>\n\
         <Input regmon>\n Module im_regmon\n RegValue 'HKLM\\Software\\Policies\\*'\n Recursive TRUE\n\
         HiveFile 'HKLM\\SOFTWARE' 'SOFTWARE'\n{extra}\n</Input>\n\
         <Output file>\n Module om_file\n File 'out.log'\n Exec to_json();\n</Output>\n\
         <Route r>\n Path regmon => file\n</Route>\n"
    );
    std::fs::write(dir.join("regmon.conf"), text).unwrap();
}

fn once(dir: &Path) -> Vec<J> {
    let out = Command::new(BIN)
        .current_dir(dir)
        // The baseline key and side records: never the real home.
        .env("REGMON_KEY_DIR", dir.join(".regmon-keys"))
        .args(["-c", "regmon.conf", "--once"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join("out.log")).unwrap_or_default();
    std::fs::remove_file(dir.join("out.log")).ok();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn by_name<'a>(events: &'a [J], suffix: &str) -> &'a J {
    events
        .iter()
        .find(|e| {
            e["RegistryValueName"]
                .as_str()
                .is_some_and(|n| n.ends_with(suffix))
                || e["RegistryKeyName"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(suffix))
        })
        .unwrap_or_else(|| panic!("no event for {suffix} in {events:#?}"))
}

/// Baseline with `before`, then scan `after`: the events.
fn scenario(extra: &str, after: impl FnOnce(&mut KeyNode)) -> Vec<J> {
    let dir = tempfile::tempdir().unwrap();
    let hive = dir.path().join("SOFTWARE");
    let mut tree = base_tree();
    write(&hive, &tree);
    config(dir.path(), extra);
    assert!(
        once(dir.path()).is_empty(),
        "the first scan reports nothing"
    );
    after(&mut tree);
    write(&hive, &tree);
    once(dir.path())
}

fn change_everything(t: &mut KeyNode) {
    let p = t.key_mut("Policies");
    p.set_value("Str", ValueType::SZ, utf16z("world"));
    p.set_value("Exp", ValueType::EXPAND_SZ, utf16z("%windir%\\y"));
    p.set_value("Multi", ValueType::MULTI_SZ, multi(&["a", "bc"]));
    p.set_value("Dw", ValueType::DWORD, u32::MAX.to_le_bytes().to_vec());
    p.set_value(
        "Be",
        ValueType::DWORD_BIG_ENDIAN,
        256u32.to_be_bytes().to_vec(),
    );
    p.set_value("Qw", ValueType::QWORD, (1u64 << 40).to_le_bytes().to_vec());
    p.set_value("Bin", ValueType::BINARY, vec![0xff, 0, 1]);
    p.set_value("Odd", ValueType(0x4242), vec![8]);
    p.set_value("Big", ValueType::BINARY, vec![6; 10_000]);
    p.set_value("Password", ValueType::SZ, utf16z("hunter3"));
    p.key_mut("Secret")
        .set_value("Token", ValueType::SZ, utf16z("abd"));
}

#[test]
fn value_types_are_always_reported_and_data_only_with_report_data() {
    let ev = scenario("", change_everything);
    let s = by_name(&ev, "\\Str");
    assert_eq!(s["RegistryValueType"], "REG_SZ");
    assert_eq!(s["PrevRegistryValueType"], "REG_SZ");
    assert!(s.get("Value").is_none() && s.get("PrevValue").is_none());
    assert_eq!(by_name(&ev, "\\Odd")["RegistryValueType"], 0x4242);
}

#[test]
fn report_data_renders_every_type() {
    let ev = scenario("ReportData TRUE\nMaxDataSize 64\nNoDataFor 'HKLM\\Software\\Policies\\Password'\nNoDataFor 'HKLM\\Software\\Policies\\Secret\\*'", change_everything);
    let get = |n: &str| by_name(&ev, n).clone();
    assert_eq!(get("\\Str")["Value"], "world");
    assert_eq!(get("\\Str")["PrevValue"], "hello");
    // REG_EXPAND_SZ is never expanded.
    assert_eq!(get("\\Exp")["Value"], "%windir%\\y");
    // A moved REG_MULTI_SZ boundary at the same total size is a CHANGE with both lists.
    let m = get("\\Multi");
    assert_eq!(m["EventType"], "CHANGE");
    assert_eq!(m["ValueSize"], m["PrevValueSize"]);
    assert_eq!(m["Value"], serde_json::json!(["a", "bc"]));
    assert_eq!(m["PrevValue"], serde_json::json!(["ab", "c"]));
    assert_eq!(get("\\Dw")["Value"], 4294967295u64);
    assert_eq!(get("\\Dw")["PrevValue"], 7);
    assert_eq!(get("\\Be")["Value"], 256);
    assert_eq!(get("\\Qw")["Value"], 1u64 << 40);
    assert_eq!(get("\\Bin")["Value"], "/wAB");
    assert_eq!(get("\\Odd")["Value"], "CA==");
    // MaxDataSize cuts the rendering and says so.
    let big = get("\\Big");
    assert_eq!(big["ValueTruncated"], true);
    assert_eq!(big["PrevValueTruncated"], true);
    assert_eq!(
        big["Value"].as_str().unwrap().len(),
        88,
        "base64 of 64 bytes"
    );
    assert!(get("\\Str").get("ValueTruncated").is_none());
    // NoDataFor: digests only, for a value and for a key's subtree.
    for n in ["\\Password", "\\Secret\\Token"] {
        let e = get(n);
        assert_eq!(e["EventType"], "CHANGE");
        assert!(
            e.get("Value").is_none() && e.get("PrevValue").is_none(),
            "{n}: {e}"
        );
        assert!(e.get("Digest").is_some());
    }
}

#[test]
fn type_only_change_carries_both_types() {
    let ev = scenario("ReportData TRUE", |t| {
        t.key_mut("Policies")
            .set_value("Dw", ValueType::BINARY, 7u32.to_le_bytes().to_vec());
    });
    assert_eq!(ev.len(), 1);
    let e = &ev[0];
    assert_eq!(e["EventType"], "CHANGE");
    assert_eq!(e["Digest"], e["PrevDigest"]);
    assert_eq!(e["RegistryValueType"], "REG_BINARY");
    assert_eq!(e["PrevRegistryValueType"], "REG_DWORD");
    assert_eq!(e["Value"], "BwAAAA==");
    assert_eq!(e["PrevValue"], 7);
}

#[test]
fn key_events_come_before_their_values() {
    let ev = scenario("KeyEvents TRUE", |t| {
        t.key_mut("Policies").remove_key("Gone");
        t.key_mut("Policies\\Fresh")
            .set_value("z", ValueType::DWORD, vec![3, 0, 0, 0]);
    });
    let kinds: Vec<(String, String)> = ev
        .iter()
        .map(|e| {
            let name = e["RegistryKeyName"]
                .as_str()
                .or(e["RegistryValueName"].as_str())
                .unwrap();
            (
                e["EventType"].as_str().unwrap().to_string(),
                name.to_string(),
            )
        })
        .collect();
    let p = "HKLM\\SOFTWARE\\Policies";
    assert_eq!(
        kinds,
        vec![
            ("NEW_KEY".into(), format!("{p}\\Fresh")),
            ("NEW".into(), format!("{p}\\Fresh\\z")),
            // A key, its values, then its subkeys.
            ("DELETE_KEY".into(), format!("{p}\\Gone")),
            ("DELETE".into(), format!("{p}\\Gone\\y")),
            ("DELETE_KEY".into(), format!("{p}\\Gone\\Deeper")),
            ("DELETE".into(), format!("{p}\\Gone\\Deeper\\x")),
        ]
    );
    let k = &ev[0];
    assert!(k.get("RegistryKeyLastWriteTime").is_some());
    assert!(k.get("Digest").is_none());
}

/// The ECS registry field set (ECS 8.x): name -> type. `registry.data.strings`
/// is a wildcard array; the others are keywords.
const ECS_REGISTRY: &[(&str, &str)] = &[
    ("registry.data.bytes", "keyword"),
    ("registry.data.strings", "wildcard[]"),
    ("registry.data.type", "keyword"),
    ("registry.hive", "keyword"),
    ("registry.key", "keyword"),
    ("registry.path", "keyword"),
    ("registry.value", "keyword"),
];
const ECS_EVENT: &[(&str, &str)] = &[
    ("event.kind", "keyword"),
    ("event.category", "keyword[]"),
    ("event.type", "keyword[]"),
    ("event.action", "keyword"),
];
const EVENT_CATEGORY_ALLOWED: &[&str] = &["registry"];
const EVENT_TYPE_ALLOWED: &[&str] = &["creation", "change", "deletion"];

fn flatten(prefix: &str, v: &J, out: &mut Vec<(String, J)>) {
    match v {
        J::Object(m) => {
            for (k, v) in m {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, v, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

fn check_type(name: &str, ty: &str, v: &J) {
    let ok = match ty {
        "keyword" => v.is_string(),
        "keyword[]" | "wildcard[]" => v.as_array().is_some_and(|a| a.iter().all(J::is_string)),
        _ => false,
    };
    assert!(ok, "{name}: {v} is not a {ty}");
}

#[test]
fn ecs_fields_follow_the_registry_field_set() {
    let ev = scenario("Schema ecs\nReportData TRUE\nKeyEvents TRUE", |t| {
        change_everything(t);
        t.key_mut("Policies").remove_key("Gone");
    });
    assert!(ev.len() > 10);
    for e in &ev {
        // NXLog's fields stay at the top level, as they were.
        assert!(e["EventType"].is_string() && e["Hostname"].is_string());
        let mut flat = Vec::new();
        flatten("", e, &mut flat);
        for (name, v) in &flat {
            if let Some((_, ty)) = ECS_REGISTRY
                .iter()
                .chain(ECS_EVENT)
                .find(|(n, _)| n == name)
            {
                check_type(name, ty, v);
            } else if name.starts_with("registry.") {
                // regmon's extensions: the digest and the previous state.
                assert!(
                    name.starts_with("registry.data.hash.")
                        || name.starts_with("registry.previous.data."),
                    "unexpected ECS field {name}"
                );
                assert!(v.is_string() || v.is_array(), "{name}");
            } else if name.starts_with("event.") {
                assert_eq!(name, "event.changed_fields");
                check_type(name, "keyword[]", v);
            }
        }
        for c in e["event"]["category"].as_array().unwrap() {
            assert!(EVENT_CATEGORY_ALLOWED.contains(&c.as_str().unwrap()));
        }
        for t in e["event"]["type"].as_array().unwrap() {
            assert!(EVENT_TYPE_ALLOWED.contains(&t.as_str().unwrap()));
        }
        assert_eq!(e["event"]["kind"], "event");
        assert_eq!(e["registry"]["hive"], "HKLM");
    }
    let m = by_name(&ev, "\\Multi");
    assert_eq!(m["registry"]["key"], "SOFTWARE\\Policies");
    assert_eq!(m["registry"]["value"], "Multi");
    assert_eq!(
        m["registry"]["data"]["strings"],
        serde_json::json!(["a", "bc"])
    );
    assert_eq!(
        m["registry"]["previous"]["data"]["strings"],
        serde_json::json!(["ab", "c"])
    );
    assert_eq!(
        m["event"]["changed_fields"],
        serde_json::json!(["registry.data.hash.sha1"])
    );
    assert_eq!(
        by_name(&ev, "\\Dw")["registry"]["data"]["strings"],
        serde_json::json!(["4294967295"])
    );
    let gone = ev.iter().find(|e| e["EventType"] == "DELETE_KEY").unwrap();
    assert_eq!(gone["event"]["type"], serde_json::json!(["deletion"]));
    assert_eq!(gone["registry"]["key"], "SOFTWARE\\Policies\\Gone");
}
