//! `64BitView BOTH` on an offline SOFTWARE hive: both views in one scan,
//! each physical value once; values of redirected keys carry the view they
//! were read in (`RegistryView`).

mod common;

use common::{dword, id_to_path, simple_conf, Env};
use hive::write::KeyNode;
use hive::ValueType;

/// A SOFTWARE hive with a redirected key in both physical trees (one value
/// the same in both, one different), a key only the 32-bit view has,
/// shared keys (Policies, Classes) and redirected Classes\CLSID.
fn software() -> KeyNode {
    let mut root = KeyNode::new("ROOT");
    let app = root.key_mut("Vendor\\App");
    app.set_value("Same", ValueType::DWORD, dword(7));
    app.set_value("Diff", ValueType::DWORD, dword(64));
    let app32 = root.key_mut("Wow6432Node\\Vendor\\App");
    app32.set_value("Same", ValueType::DWORD, dword(7));
    app32.set_value("Diff", ValueType::DWORD, dword(32));
    root.key_mut("Wow6432Node\\Legacy")
        .set_value("Only32", ValueType::DWORD, dword(1));
    root.key_mut("Policies\\Corp")
        .set_value("Shared", ValueType::DWORD, dword(1));
    // Below a shared key the 32-bit view reads Policies itself: this copy
    // is in neither view's logical tree, only under its physical name.
    root.key_mut("Wow6432Node\\Policies\\Corp")
        .set_value("Hidden", ValueType::DWORD, dword(1));
    root.key_mut("Classes\\.txt")
        .set_value("", ValueType::SZ, vec![0, 0]);
    root.key_mut("Classes\\CLSID\\{64}")
        .set_value("", ValueType::SZ, vec![0, 0]);
    root.key_mut("Classes\\Wow6432Node\\CLSID\\{32}")
        .set_value("", ValueType::SZ, vec![0, 0]);
    root
}

fn conf(env: &Env, view: &str) -> String {
    simple_conf(
        env,
        &format!(" RegValue 'HKLM\\SOFTWARE\\*'\n Recursive TRUE\n 64BitView {view}"),
    )
}

/// The baseline's rows: (path as shown, view marker) in identity order.
fn rows(env: &Env) -> Vec<(String, Option<i64>)> {
    regmon::baseline::stored_values(&env.path("regmon-cache/regmon-regmon.sqlite"))
        .unwrap()
        .into_iter()
        .map(|e| {
            let id = e.id;
            let view = regmon::path::ident::view(&id).map(|v| v.bits());
            (id_to_path(&id).replace("HKLM\\SOFTWARE\\", ""), view)
        })
        .collect()
}

fn event(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap()
}

/// (EventType, RegistryValueName below SOFTWARE, RegistryView) of each line.
fn events(lines: &[String]) -> Vec<(String, String, Option<i64>)> {
    lines
        .iter()
        .map(|l| {
            let e = event(l);
            (
                e["EventType"].as_str().unwrap().to_string(),
                e["RegistryValueName"]
                    .as_str()
                    .unwrap()
                    .replace("HKLM\\SOFTWARE\\", ""),
                e["RegistryView"].as_i64(),
            )
        })
        .collect()
}

#[test]
fn both_views_report_each_physical_value_once() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &software());
    let c = conf(&env, "BOTH");
    env.once(&c);
    assert!(env.take("out.log").is_empty());
    let r = rows(&env);
    let want: Vec<(String, Option<i64>)> = [
        ("Classes\\.txt\\(Default)", None),
        ("Classes\\CLSID\\{32}\\(Default)", Some(32)),
        ("Classes\\CLSID\\{64}\\(Default)", Some(64)),
        ("Legacy\\Only32", Some(32)),
        ("Policies\\Corp\\Shared", None),
        ("Vendor\\App\\Diff", Some(64)),
        ("Vendor\\App\\Same", Some(64)),
        ("Vendor\\App\\Diff", Some(32)),
        ("Vendor\\App\\Same", Some(32)),
        ("Wow6432Node\\Policies\\Corp\\Hidden", None),
    ]
    .iter()
    .map(|(p, v)| (p.to_string(), *v))
    .collect();
    assert_eq!(r, want);
    // Ten physical values in the hive, ten rows.
    assert_eq!(r.len(), 10);
}

#[test]
fn a_change_in_one_view_is_one_event_naming_the_view() {
    let env = Env::new();
    let mut tree = software();
    env.write_hive("SOFTWARE", &tree);
    let c = conf(&env, "BOTH");
    env.once(&c);
    assert!(env.take("out.log").is_empty());

    // Only the 32-bit copy changes; the same value in the 64-bit view does not.
    tree.key_mut("Wow6432Node\\Vendor\\App")
        .set_value("Same", ValueType::DWORD, dword(8));
    env.write_hive("SOFTWARE", &tree);
    env.once(&c);
    let lines = env.take("out.log");
    assert_eq!(
        events(&lines),
        [("CHANGE".into(), "Vendor\\App\\Same".into(), Some(32))]
    );
    // The field comes after NXLog's fields and regmon's type fields.
    let l = &lines[0];
    assert!(
        l.find("\"PrevRegistryValueType\"").unwrap() < l.find("\"RegistryView\"").unwrap(),
        "{l}"
    );

    // NEW and DELETE likewise; the 64-bit copy and shared keys change too.
    tree.key_mut("Wow6432Node\\Vendor\\App")
        .set_value("New32", ValueType::DWORD, dword(1));
    tree.key_mut("Wow6432Node\\Legacy").values.clear();
    tree.key_mut("Vendor\\App")
        .set_value("Diff", ValueType::DWORD, dword(65));
    tree.key_mut("Policies\\Corp")
        .set_value("Shared", ValueType::DWORD, dword(2));
    env.write_hive("SOFTWARE", &tree);
    env.once(&c);
    assert_eq!(
        events(&env.take("out.log")),
        [
            ("DELETE".into(), "Legacy\\Only32".into(), Some(32)),
            ("CHANGE".into(), "Policies\\Corp\\Shared".into(), None),
            ("CHANGE".into(), "Vendor\\App\\Diff".into(), Some(64)),
            ("NEW".into(), "Vendor\\App\\New32".into(), Some(32)),
        ]
    );
}

#[test]
fn switching_to_both_rebuilds_the_baseline() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &software());
    env.once(&conf(&env, "TRUE"));
    assert!(env.take("out.log").is_empty());
    // 64BitView TRUE sees the hive as it is, Wow6432Node included.
    assert!(rows(&env)
        .iter()
        .any(|(p, v)| p == "Wow6432Node\\Vendor\\App\\Diff" && v.is_none()));
    let log = env.once(&conf(&env, "BOTH"));
    assert!(log.contains("64BitView changed"), "{log}");
    // No value events: one notice that the baseline was rebuilt.
    let lines = env.take("out.log");
    let kinds: Vec<String> = lines
        .iter()
        .map(|l| event(l)["EventType"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.iter().all(|k| k == "BASELINE_REBUILD"), "{lines:?}");
    assert_eq!(rows(&env).len(), 10);
    // And nothing to report at the next scan.
    env.once(&conf(&env, "BOTH"));
    assert!(env.take("out.log").is_empty());
}
