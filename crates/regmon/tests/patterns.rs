//! What exactly a `RegValue` pattern watches, rule by rule, as the README
//! section "What exactly is watched" states it: each rule over a synthetic
//! hive, checked with the NEW events of a `--once` scan (a first scan of an
//! empty hive records an empty baseline; the second reports every covered
//! value as NEW), and `**` against `Recursive` on a real SYSTEM hive.

mod common;

use common::*;
use hive::write::KeyNode;
use hive::ValueType;

/// The names of the values `directives` watch in `tree` (mounted at
/// `mount` from the file `file`), in the order the events came.
fn watched_at(mount: &str, file: &str, tree: &KeyNode, directives: &str) -> Vec<String> {
    let env = Env::new();
    env.write_hive(file, &KeyNode::new("ROOT"));
    let text = format!(
        "<Input regmon>\n Module im_regmon\n HiveFile '{mount}' '{file}'\n{directives}\n</Input>\n{}",
        json_output(&env.abs("out.log"))
    );
    env.write("regmon.conf", &text);
    env.once("regmon.conf");
    env.write_hive(file, tree);
    env.once("regmon.conf");
    new_values(&env.read("out.log"))
}

/// The RegistryValueName of each NEW event in JSON lines.
fn new_values(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|j| j["EventType"] == "NEW")
        .filter_map(|j| j["RegistryValueName"].as_str().map(String::from))
        .collect()
}

/// `watched_at` for HKLM\SOFTWARE.
fn watched(tree: &KeyNode, directives: &str) -> Vec<String> {
    watched_at("HKLM\\SOFTWARE", "SOFTWARE", tree, directives)
}

/// `paths` (below HKLM\SOFTWARE) in the order events come in.
fn expect(paths: &[&str]) -> Vec<String> {
    let mut p: Vec<String> = paths
        .iter()
        .map(|p| format!("HKLM\\SOFTWARE\\{p}"))
        .collect();
    sort_as_events(&mut p);
    p
}

/// A tree with a DWORD `v` and `w` (and the default value) in each key.
fn tree(keys: &[&str]) -> KeyNode {
    let mut t = KeyNode::new("ROOT");
    for k in keys {
        let k = t.key_mut(k);
        for n in ["v", "w", ""] {
            k.set_value(n, ValueType::DWORD, dword(1));
        }
    }
    t
}

fn all(keys: &[&str], names: &[&str]) -> Vec<String> {
    let paths: Vec<String> = keys
        .iter()
        .flat_map(|k| names.iter().map(move |n| format!("{k}\\{n}")))
        .collect();
    expect(&paths.iter().map(String::as_str).collect::<Vec<_>>())
}

const KEYS: &[&str] = &[
    "App",
    "App\\Sub",
    "App\\Sub\\Deep",
    "App\\Other",
    "Vendor\\App",
    "Vendor\\App\\Sub",
];

#[test]
fn roots_case_and_value_component() {
    let t = tree(KEYS);
    // Long root names, any case; events show names as stored.
    assert_eq!(
        watched(&t, " RegValue 'HKEY_LOCAL_MACHINE\\software\\APP\\V'"),
        expect(&["App\\v"])
    );
    // The value component: a name, `*`, `?`, `(Default)`.
    assert_eq!(
        watched(&t, " RegValue 'HKLM\\SOFTWARE\\App\\*'"),
        all(&["App"], &["(Default)", "v", "w"])
    );
    assert_eq!(
        watched(&t, " RegValue 'HKLM\\SOFTWARE\\App\\?'"),
        all(&["App"], &["v", "w"])
    );
    assert_eq!(
        watched(&t, " RegValue 'HKLM\\SOFTWARE\\App\\(Default)'"),
        all(&["App"], &["(Default)"])
    );
}

#[test]
fn key_wildcards_are_one_level() {
    let t = tree(KEYS);
    assert_eq!(
        watched(&t, " RegValue 'HKLM\\SOFTWARE\\*\\Sub\\v'"),
        expect(&["App\\Sub\\v"])
    );
    assert_eq!(
        watched(&t, " RegValue 'HKLM\\SOFTWARE\\App\\?ub\\v'"),
        expect(&["App\\Sub\\v"])
    );
    // `a**b` inside a name is an ordinary glob: one level.
    assert_eq!(
        watched(&t, " RegValue 'HKLM\\SOFTWARE\\A**p\\v'"),
        expect(&["App\\v"])
    );
}

#[test]
fn any_depth() {
    let t = tree(KEYS);
    // `**` in the middle: zero or more levels.
    assert_eq!(
        watched(&t, " RegValue 'HKLM\\SOFTWARE\\**\\Sub\\v'"),
        expect(&["App\\Sub\\v", "Vendor\\App\\Sub\\v"])
    );
    assert_eq!(
        watched(&t, " RegValue 'HKLM\\SOFTWARE\\**\\App\\v'"),
        expect(&["App\\v", "Vendor\\App\\v"])
    );
    // A last `**`: every value at any depth, the key's own included.
    let sub = ["App\\Sub", "App\\Sub\\Deep"];
    assert_eq!(
        watched(&t, " RegValue 'HKLM\\SOFTWARE\\App\\Sub\\**'"),
        all(&sub, &["(Default)", "v", "w"])
    );
    assert_eq!(
        watched(&t, " RegValue 'HKLM\\SOFTWARE\\App\\Sub\\**\\*'"),
        all(&sub, &["(Default)", "v", "w"])
    );
    // `**` needs no Recursive, and Recursive adds nothing below it.
    assert_eq!(
        watched(
            &t,
            " RegValue 'HKLM\\SOFTWARE\\**\\Sub\\v'\n Recursive TRUE"
        ),
        expect(&["App\\Sub\\v", "Vendor\\App\\Sub\\v"])
    );
}

/// NXLog's reference on Recursive, its three examples literally (HKCU
/// mounted from a user's hive).
#[test]
fn recursive_as_nxlog_documents_it() {
    let mut t = KeyNode::new("ROOT");
    for (k, n) in [
        ("test", "value"),
        ("test\\subkey", "value"),
        ("test\\subkey", "value2"),
        ("test\\subkey\\deeper", "value"),
        ("other", "value"),
    ] {
        t.key_mut(k).set_value(n, ValueType::DWORD, dword(1));
    }
    let hkcu = |directives: &str| watched_at("HKCU", "NTUSER.DAT", &t, directives);
    let sorted = |p: &[&str]| {
        let mut p: Vec<String> = p.iter().map(|s| s.to_string()).collect();
        sort_as_events(&mut p);
        p
    };
    // "HKCU\test\value will match HKCU\test\subkey\value"
    assert_eq!(
        hkcu(" RegValue 'HKCU\\test\\value'\n Recursive TRUE"),
        sorted(&[
            "HKCU\\test\\value",
            "HKCU\\test\\subkey\\value",
            "HKCU\\test\\subkey\\deeper\\value",
        ])
    );
    // Without Recursive: the key's own value only.
    assert_eq!(
        hkcu(" RegValue 'HKCU\\test\\value'"),
        sorted(&["HKCU\\test\\value"])
    );
    // "HKCU\test\value* will match HKCU\test\subkey\value2"
    assert_eq!(
        hkcu(" RegValue 'HKCU\\test\\value*'\n Recursive TRUE"),
        sorted(&[
            "HKCU\\test\\value",
            "HKCU\\test\\subkey\\value",
            "HKCU\\test\\subkey\\value2",
            "HKCU\\test\\subkey\\deeper\\value",
        ])
    );
    // "HKCU\*\value will not match HKCU\test\subkey\value"
    assert_eq!(
        hkcu(" RegValue 'HKCU\\*\\value'\n Recursive TRUE"),
        sorted(&["HKCU\\other\\value", "HKCU\\test\\value"])
    );
    // `**` is the way to any depth.
    assert_eq!(
        hkcu(" RegValue 'HKCU\\**\\value'"),
        sorted(&[
            "HKCU\\other\\value",
            "HKCU\\test\\value",
            "HKCU\\test\\subkey\\value",
            "HKCU\\test\\subkey\\deeper\\value",
        ])
    );
}

/// A wildcard key path with Recursive TRUE gets a note at load time.
#[test]
fn recursive_below_wildcards_is_noted() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &tree(KEYS));
    let conf = simple_conf(
        &env,
        " RegValue 'HKLM\\SOFTWARE\\*\\Sub\\*'\n Recursive TRUE",
    );
    let log = env.once(&conf);
    assert!(
        log.contains("Recursive does not reach below wildcard key components")
            && log.contains("HKLM\\SOFTWARE\\*\\Sub\\*")
            && log.contains("'regmon'"),
        "{log}"
    );
    let conf = simple_conf(&env, " RegValue 'HKLM\\SOFTWARE\\App\\*'\n Recursive TRUE");
    assert!(!env.once(&conf).contains("Recursive does not reach"));
}

#[test]
fn excludes_on_keys_and_values() {
    let t = tree(KEYS);
    // A rule matching a key path cuts the key with its subtree; one
    // matching a value path cuts that value.
    assert_eq!(
        watched(
            &t,
            " RegValue 'HKLM\\SOFTWARE\\App\\**\\v'\n\
             Exclude 'HKLM\\SOFTWARE\\App\\Sub'\n Exclude 'HKLM\\SOFTWARE\\App\\Other\\v'"
        ),
        expect(&["App\\v"])
    );
    // `**` in an Exclude: a key of that name at any depth, a value of
    // that name in any key.
    assert_eq!(
        watched(
            &t,
            " RegValue 'HKLM\\SOFTWARE\\**'\n Exclude 'HKLM\\SOFTWARE\\**\\Sub'\n\
             Exclude 'HKLM\\SOFTWARE\\**\\w'\n Exclude 'HKLM\\SOFTWARE\\**\\(Default)'"
        ),
        expect(&["App\\v", "App\\Other\\v", "Vendor\\App\\v"])
    );
    // `X\**` excludes X's values and everything below it.
    assert_eq!(
        watched(
            &t,
            " RegValue 'HKLM\\SOFTWARE\\**\\v'\n Exclude 'HKLM\\SOFTWARE\\App\\**'"
        ),
        expect(&["Vendor\\App\\v", "Vendor\\App\\Sub\\v"])
    );
}

/// Patterns that overlap (and `**` matching one key several ways) report
/// each value once, in registry order.
#[test]
fn overlapping_patterns_report_once() {
    let t = tree(KEYS);
    let got = watched(
        &t,
        " RegValue 'HKLM\\SOFTWARE\\App\\v'\n RegValue 'HKLM\\SOFTWARE\\**\\v'\n\
         RegValue 'HKLM\\SOFTWARE\\*\\Sub\\v'\n RegValue 'HKLM\\SOFTWARE\\**\\Sub\\**\\v'",
    );
    assert_eq!(got, all(KEYS, &["v"]));
    // One pattern whose `**` can match a key two ways: once.
    let mut t = KeyNode::new("ROOT");
    t.key_mut("A\\A\\A")
        .set_value("v", ValueType::DWORD, dword(1));
    t.key_mut("A\\A").set_value("v", ValueType::DWORD, dword(1));
    assert_eq!(
        watched(&t, " RegValue 'HKLM\\SOFTWARE\\**\\A\\**\\v'"),
        expect(&["A\\A\\v", "A\\A\\A\\v"])
    );
}

/// On a real SYSTEM hive, the services' image paths at any depth: `**` and
/// Recursive on a literal key path watch the same values.
#[test]
fn any_depth_equals_recursive_on_a_real_hive() {
    let src = testdata::hives().path("regipy/SYSTEM");
    assert!(src.exists(), "{}", src.display());
    let run = |directives: &str| {
        let env = Env::new();
        env.write_hive("SYSTEM", &KeyNode::new("ROOT"));
        let text = format!(
            "<Input regmon>\n Module im_regmon\n HiveFile 'HKLM\\SYSTEM' 'SYSTEM'\n{directives}\n</Input>\n{}",
            json_output(&env.abs("out.log"))
        );
        env.write("r.conf", &text);
        env.once("r.conf");
        std::fs::copy(&src, env.path("SYSTEM")).unwrap();
        env.once("r.conf");
        new_values(&env.read("out.log"))
    };
    let deep = run(" RegValue 'HKLM\\SYSTEM\\ControlSet001\\Services\\**\\ImagePath'");
    let rec = run(" RegValue 'HKLM\\SYSTEM\\ControlSet001\\Services\\ImagePath'\n Recursive TRUE");
    assert!(deep.len() > 300, "{}", deep.len());
    assert_eq!(deep, rec);
    // One level: the services' own image paths, a subset.
    let one = run(" RegValue 'HKLM\\SYSTEM\\ControlSet001\\Services\\*\\ImagePath'");
    assert!(!one.is_empty() && one.iter().all(|v| deep.contains(v)));
}
