//! Registry links offline: `HKLM\SYSTEM\CurrentControlSet` follows
//! `Select\Current` of a real SYSTEM hive, symbolic links stored in hives
//! are followed (loops, chains and unmounted targets are not), and `HKCC` /
//! `HKCR` are built from the mounted hives.

mod common;

use common::{dword, id_to_path, Env};
use hive::write::{to_bytes, KeyNode, WriteOptions};
use hive::{Hive, ValueType};
use std::collections::BTreeMap;

/// The baseline's values: path -> (type, digest).
fn baseline(env: &Env) -> BTreeMap<String, (i64, Vec<u8>)> {
    regmon::baseline::stored_values(&env.path("cache/regmon-regmon.sqlite"))
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                id_to_path(&e.id),
                (i64::from(e.value_type), e.digest.to_vec()),
            )
        })
        .collect()
}

/// A configuration over the given mounts (registry path, file).
fn conf(env: &Env, directives: &str, mounts: &[(&str, &str)]) -> String {
    let mut text = String::from("CacheDir cache\n<Input regmon>\n Module im_regmon\n");
    text.push_str(directives);
    for (at, file) in mounts {
        text.push_str(&format!(" HiveFile '{at}' '{}'\n", env.abs(file)));
    }
    text.push_str("</Input>\n");
    text.push_str(&common::json_output(&env.abs("out.log")));
    env.write("regmon.conf", &text);
    "regmon.conf".into()
}

fn events(env: &Env) -> Vec<serde_json::Value> {
    let text = env.read("out.log");
    std::fs::remove_file(env.path("out.log")).ok();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// The real SYSTEM hive with two control sets, as a tree to edit.
fn real_system() -> KeyNode {
    let bytes = std::fs::read(testdata::hives().path("regipy/SYSTEM")).unwrap();
    let h = Hive::new(&bytes).unwrap();
    KeyNode::from_key(&h.root().unwrap()).unwrap()
}

fn write(env: &Env, rel: &str, tree: &KeyNode) {
    std::fs::write(env.path(rel), to_bytes(tree, &WriteOptions::default())).unwrap();
}

const IMAGE_PATHS: &str = " RegValue 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\*\\ImagePath'\n";
const LINK: &str = "HKLM\\SYSTEM\\CurrentControlSet\\SymbolicLinkValue";

#[test]
fn current_control_set_is_the_control_set_select_names() {
    let env = Env::new();
    std::fs::copy(testdata::hives().path("regipy/SYSTEM"), env.path("SYSTEM")).unwrap();
    let c = conf(&env, IMAGE_PATHS, &[("HKLM\\SYSTEM", "SYSTEM")]);
    let log = env.once(&c);
    // 401 image paths, and the link itself.
    assert!(log.contains("baseline built with 402 values"), "{log}");
    let via_link = baseline(&env);
    assert_eq!(
        via_link[LINK].0, 6,
        "the link is a REG_LINK value of CurrentControlSet"
    );

    // The same values as ControlSet001 written out.
    let env1 = Env::new();
    std::fs::copy(env.path("SYSTEM"), env1.path("SYSTEM")).unwrap();
    let c1 = conf(
        &env1,
        " RegValue 'HKLM\\SYSTEM\\ControlSet001\\Services\\*\\ImagePath'\n",
        &[("HKLM\\SYSTEM", "SYSTEM")],
    );
    env1.once(&c1);
    let direct = baseline(&env1);
    assert_eq!(direct.len(), 401);
    let mut renamed: BTreeMap<String, (i64, Vec<u8>)> = via_link
        .iter()
        .filter(|(p, _)| p.as_str() != LINK)
        .map(|(p, v)| (p.replace("CurrentControlSet", "ControlSet001"), v.clone()))
        .collect();
    assert_eq!(renamed.len(), 401);
    assert_eq!(std::mem::take(&mut renamed), direct);
}

#[test]
fn a_change_of_select_current_is_one_link_change_and_the_real_differences() {
    let env = Env::new();
    let mut tree = real_system();
    write(&env, "SYSTEM", &tree);
    let c = conf(&env, IMAGE_PATHS, &[("HKLM\\SYSTEM", "SYSTEM")]);
    env.once(&c);
    let before = baseline(&env);

    tree.key_mut("Select")
        .set_value("Current", ValueType::DWORD, dword(2));
    write(&env, "SYSTEM", &tree);
    let log = env.once(&c);
    assert!(
        log.contains(
            "HKLM\\SYSTEM\\CurrentControlSet now links to ControlSet002 (was ControlSet001)"
        ),
        "{log}"
    );
    let evs = events(&env);
    let link: Vec<&serde_json::Value> = evs
        .iter()
        .filter(|e| e["RegistryValueName"] == LINK)
        .collect();
    assert_eq!(link.len(), 1, "{evs:?}");
    assert_eq!(link[0]["EventType"], "CHANGE");
    assert_eq!(link[0]["RegistryValueType"], "REG_LINK");
    assert_eq!(
        link[0]["LinkTarget"],
        "\\REGISTRY\\MACHINE\\SYSTEM\\ControlSet002"
    );
    assert_eq!(
        link[0]["PrevLinkTarget"],
        "\\REGISTRY\\MACHINE\\SYSTEM\\ControlSet001"
    );

    // The other events are exactly where the two control sets differ.
    let after = baseline(&env);
    let mut expected: Vec<(String, &str)> = Vec::new();
    for (p, v) in &after {
        match before.get(p) {
            None => expected.push((p.clone(), "NEW")),
            Some(o) if o != v => expected.push((p.clone(), "CHANGE")),
            _ => {}
        }
    }
    for p in before.keys().filter(|p| !after.contains_key(*p)) {
        expected.push((p.clone(), "DELETE"));
    }
    let mut got: Vec<(String, &str)> = evs
        .iter()
        .map(|e| {
            (
                e["RegistryValueName"].as_str().unwrap().to_string(),
                e["EventType"].as_str().unwrap(),
            )
        })
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    // Far fewer than a DELETE and a NEW per value.
    assert!(got.len() < 100, "{}", got.len());
    eprintln!(
        "Select\\Current 1 -> 2 on regipy/SYSTEM: {} events over {} values",
        got.len(),
        after.len()
    );
}

#[test]
fn without_select_current_control_set_keeps_its_baseline_with_a_warning() {
    let env = Env::new();
    let mut tree = real_system();
    write(&env, "SYSTEM", &tree);
    let c = conf(&env, IMAGE_PATHS, &[("HKLM\\SYSTEM", "SYSTEM")]);
    env.once(&c);
    let before = baseline(&env);

    // Current names a missing set: Default, with a warning.
    tree.key_mut("Select")
        .set_value("Current", ValueType::DWORD, dword(7));
    write(&env, "SYSTEM", &tree);
    let log = env.once(&c);
    assert!(
        log.contains("key Select: value Current is 7, but there is no ControlSet007; CurrentControlSet follows Select\\Default (ControlSet001)"),
        "{log}"
    );
    assert!(log.contains(&env.abs("SYSTEM")), "{log}");
    assert!(events(&env).is_empty());

    // No Select at all: a warning naming the key, the baseline kept.
    tree.remove_key("Select");
    write(&env, "SYSTEM", &tree);
    let log = env.once(&c);
    assert!(
        log.contains("HKLM\\SYSTEM\\CurrentControlSet: CurrentControlSet cannot be resolved"),
        "{log}"
    );
    assert!(log.contains("key Select: the key is missing"), "{log}");
    assert!(events(&env).is_empty());
    assert_eq!(baseline(&env), before);
}

#[test]
fn a_recursive_walk_of_system_visits_the_control_set_once() {
    let env = Env::new();
    let mut root = KeyNode::new("SYSTEM");
    root.key_mut("ControlSet001\\Services\\Svc").set_value(
        "ImagePath",
        ValueType::EXPAND_SZ,
        utf16("a.sys\0"),
    );
    root.key_mut("Select")
        .set_value("Current", ValueType::DWORD, dword(1));
    write(&env, "SYSTEM", &root);
    let c = conf(
        &env,
        " RegValue 'HKLM\\SYSTEM\\*'\n Recursive TRUE\n",
        &[("HKLM\\SYSTEM", "SYSTEM")],
    );
    let log = env.once(&c);
    assert!(!log.contains("cycle"), "{log}");
    let got: Vec<String> = baseline(&env).into_keys().collect();
    assert_eq!(
        got,
        [
            "HKLM\\SYSTEM\\ControlSet001\\Services\\Svc\\ImagePath",
            LINK,
            "HKLM\\SYSTEM\\Select\\Current",
        ]
    );
}

/// A SOFTWARE hive with symbolic links: to a key of the same hive, to
/// one inside CurrentControlSet of the SYSTEM hive, a chain, a loop, a
/// link to an ancestor and one to a hive that is not mounted.
fn linked_software() -> KeyNode {
    let mut root = KeyNode::new("SOFTWARE");
    root.key_mut("Vendor\\Real")
        .set_value("X", ValueType::DWORD, dword(1));
    let mut link = |name: &str, target: &str| {
        let k = root.key_mut(&format!("Vendor\\{name}"));
        k.symlink = true;
        k.set_value("SymbolicLinkValue", ValueType::LINK, utf16(target));
    };
    link("Link", "\\REGISTRY\\MACHINE\\SOFTWARE\\Vendor\\Real");
    link("Chain", "\\Registry\\Machine\\software\\vendor\\link");
    link("Self", "\\REGISTRY\\MACHINE\\SOFTWARE\\Vendor\\Self");
    link("Up", "\\REGISTRY\\MACHINE\\SOFTWARE\\Vendor");
    link("Away", "\\REGISTRY\\USER\\S-1-5-21-1-2-3-1001");
    link(
        "Svc",
        "\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\Svc",
    );
    root
}

fn small_system() -> KeyNode {
    let mut root = KeyNode::new("SYSTEM");
    root.key_mut("ControlSet001\\Services\\Svc").set_value(
        "ImagePath",
        ValueType::EXPAND_SZ,
        utf16("a.sys\0"),
    );
    root.key_mut("ControlSet001\\Control\\IDConfigDB")
        .set_value("CurrentConfig", ValueType::DWORD, dword(1));
    root.key_mut("ControlSet001\\Hardware Profiles\\0001\\Software\\Fonts")
        .set_value("LogPixels", ValueType::DWORD, dword(96));
    root.key_mut("Select")
        .set_value("Current", ValueType::DWORD, dword(1));
    root
}

#[test]
fn symbolic_links_are_followed_within_the_input_and_loops_are_not() {
    let env = Env::new();
    write(&env, "SOFTWARE", &linked_software());
    write(&env, "SYSTEM", &small_system());
    let c = conf(
        &env,
        " RegValue 'HKLM\\SOFTWARE\\Vendor\\*'\n Recursive TRUE\n",
        &[("HKLM\\SOFTWARE", "SOFTWARE"), ("HKLM\\SYSTEM", "SYSTEM")],
    );
    let log = env.once(&c);
    let got: Vec<String> = baseline(&env).into_keys().collect();
    assert_eq!(
        got,
        [
            "HKLM\\SOFTWARE\\Vendor\\Chain\\SymbolicLinkValue",
            "HKLM\\SOFTWARE\\Vendor\\Chain\\X",
            "HKLM\\SOFTWARE\\Vendor\\Link\\SymbolicLinkValue",
            "HKLM\\SOFTWARE\\Vendor\\Real\\X",
            "HKLM\\SOFTWARE\\Vendor\\Svc\\ImagePath",
            "HKLM\\SOFTWARE\\Vendor\\Svc\\SymbolicLinkValue",
        ],
        "{log}"
    );
    for (key, why) in [
        ("Self", "the link leads back to itself (a loop)"),
        (
            "Up",
            "the target is the link itself or one of its parent keys (a loop)",
        ),
        ("Away", "the target is not mounted in this input"),
    ] {
        let line = format!("HKLM\\SOFTWARE\\Vendor\\{key}: registry link to ");
        let hit = log
            .lines()
            .find(|l| l.contains(&line))
            .unwrap_or_else(|| panic!("no warning for {key}: {log}"));
        assert!(hit.contains(why), "{hit}");
        assert_eq!(log.matches(&line).count(), 1, "said once: {log}");
    }
    assert!(!log.contains("cycle"), "{log}");

    // A literal path through a link and a chain of links.
    let env2 = Env::new();
    write(&env2, "SOFTWARE", &linked_software());
    write(&env2, "SYSTEM", &small_system());
    let c2 = conf(
        &env2,
        " RegValue 'HKLM\\SOFTWARE\\Vendor\\Chain\\X'\n",
        &[("HKLM\\SOFTWARE", "SOFTWARE"), ("HKLM\\SYSTEM", "SYSTEM")],
    );
    env2.once(&c2);
    let got: Vec<String> = baseline(&env2).into_keys().collect();
    assert_eq!(
        got,
        [
            "HKLM\\SOFTWARE\\Vendor\\Chain\\SymbolicLinkValue",
            "HKLM\\SOFTWARE\\Vendor\\Chain\\X",
        ]
    );
}

#[test]
fn a_link_whose_target_goes_away_keeps_its_baseline() {
    let env = Env::new();
    write(&env, "SOFTWARE", &linked_software());
    write(&env, "SYSTEM", &small_system());
    let c = conf(
        &env,
        " RegValue 'HKLM\\SOFTWARE\\Vendor\\Svc\\*'\n",
        &[("HKLM\\SOFTWARE", "SOFTWARE"), ("HKLM\\SYSTEM", "SYSTEM")],
    );
    env.once(&c);
    assert_eq!(baseline(&env).len(), 2);
    // The SYSTEM hive cannot be read: the link is not followed, nothing
    // under it is reported deleted.
    std::fs::write(env.path("SYSTEM"), b"not a hive").unwrap();
    let log = env.once(&c);
    assert!(
        log.contains("HKLM\\SOFTWARE\\Vendor\\Svc: registry link to"),
        "{log}"
    );
    assert!(events(&env).is_empty());
    assert_eq!(baseline(&env).len(), 2);
}

#[test]
fn hkcc_is_the_current_hardware_profile() {
    let env = Env::new();
    std::fs::copy(testdata::hives().path("regipy/SYSTEM"), env.path("SYSTEM")).unwrap();
    let c = conf(
        &env,
        " RegValue 'HKCC\\Software\\Fonts\\LogPixels'\n",
        &[("HKLM\\SYSTEM", "SYSTEM")],
    );
    let log = env.once(&c);
    assert!(log.contains("baseline built with 1 values"), "{log}");
    let got: Vec<String> = baseline(&env).into_keys().collect();
    assert_eq!(got, ["HKCC\\Software\\Fonts\\LogPixels"]);

    // The same through HKLM: Hardware Profiles\Current is a link too.
    let env2 = Env::new();
    write(&env2, "SYSTEM", &small_system());
    let c2 = conf(
        &env2,
        " RegValue 'HKLM\\SYSTEM\\CurrentControlSet\\Hardware Profiles\\Current\\Software\\Fonts\\*'\n",
        &[("HKLM\\SYSTEM", "SYSTEM")],
    );
    env2.once(&c2);
    let got: Vec<String> = baseline(&env2).into_keys().collect();
    assert_eq!(
        got,
        [
            "HKLM\\SYSTEM\\CurrentControlSet\\Hardware Profiles\\Current\\Software\\Fonts\\LogPixels",
            "HKLM\\SYSTEM\\CurrentControlSet\\Hardware Profiles\\Current\\SymbolicLinkValue",
            LINK,
        ]
    );
}

#[test]
fn hkcr_is_the_machine_classes_without_a_user() {
    let env = Env::new();
    let mut root = KeyNode::new("SOFTWARE");
    root.key_mut("Classes\\.txt")
        .set_value("", ValueType::SZ, utf16("txtfile\0"));
    root.key_mut("Classes\\txtfile\\shell\\open\\command")
        .set_value("", ValueType::EXPAND_SZ, utf16("notepad.exe %1\0"));
    write(&env, "SOFTWARE", &root);
    let c = conf(
        &env,
        " RegValue 'HKCR\\*'\n Recursive TRUE\n",
        &[("HKLM\\SOFTWARE", "SOFTWARE")],
    );
    env.once(&c);
    let got: Vec<String> = baseline(&env).into_keys().collect();
    assert_eq!(
        got,
        [
            "HKCR\\.txt\\(Default)",
            "HKCR\\txtfile\\shell\\open\\command\\(Default)",
        ]
    );
}
