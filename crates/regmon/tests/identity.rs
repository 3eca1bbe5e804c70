//! Every change reported exactly once (issue 11): values that text would
//! confuse keep their own identities, one owner and one process at a time
//! per baseline, only scope directives rebuild, and baselines written by
//! the previous release are migrated without re-reporting anything.

mod common;

use common::*;
use hive::write::{KeyNode, ValueNode};
use hive::ValueType;
use std::path::Path;

/// (EventType, RegistryValueName, RegistryValueNameUTF16 if any) per line.
fn events(lines: &[String]) -> Vec<(String, String, Option<String>)> {
    lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["EventType"].as_str().unwrap().to_string(),
                v["RegistryValueName"]
                    .as_str()
                    .or(v["RegistryKeyName"].as_str())
                    .unwrap_or("")
                    .to_string(),
                v["RegistryValueNameUTF16"].as_str().map(String::from),
            )
        })
        .collect()
}

fn ev(kind: &str, name: &str, exact: Option<&str>) -> (String, String, Option<String>) {
    (kind.into(), name.into(), exact.map(String::from))
}

/// Sets a value whose name is given as raw UTF-16 code units.
fn set_raw(key: &mut KeyNode, name: &[u16], data: Vec<u8>) {
    key.values.retain(|v| v.name != name);
    key.values.push(ValueNode {
        name: name.to_vec(),
        value_type: ValueType::DWORD,
        data,
    });
}

fn utf16_hex(units: &[u16]) -> String {
    units
        .iter()
        .flat_map(|u| u.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn values_that_text_would_confuse_are_told_apart() {
    let env = Env::new();
    let mut tree = KeyNode::new("ROOT");
    let p = tree.key_mut("Policies");
    p.set_value("", ValueType::DWORD, dword(1));
    p.set_value("(Default)", ValueType::DWORD, dword(1));
    p.set_value("a\\b", ValueType::DWORD, dword(1));
    p.key_mut("a").set_value("b", ValueType::DWORD, dword(1));
    let lead: Vec<u16> = vec![0x61, 0xD800];
    let trail: Vec<u16> = vec![0x61, 0xDC00];
    let fffd: Vec<u16> = vec![0x61, 0xFFFD];
    for n in [&lead, &trail, &fffd] {
        set_raw(p, n, dword(1));
    }
    env.write_hive("SOFTWARE", &tree);
    let conf = simple_conf(
        &env,
        " RegValue 'HKLM\\SOFTWARE\\Policies\\*'\n Recursive TRUE",
    );
    let log = env.once(&conf);
    assert!(log.contains("baseline built with 7 values"), "{log}");

    // Each of them changed alone is one event, naming it.
    let mut expect = |edit: &dyn Fn(&mut KeyNode), want: (String, String, Option<String>)| {
        edit(tree.key_mut("Policies"));
        env.write_hive("SOFTWARE", &tree);
        env.once(&conf);
        assert_eq!(events(&env.take("out.log")), [want]);
    };
    expect(
        &|p| p.set_value("(Default)", ValueType::DWORD, dword(2)),
        ev(
            "CHANGE",
            r"HKLM\SOFTWARE\Policies\(Default)",
            Some(&utf16_hex(&"(Default)".encode_utf16().collect::<Vec<_>>())),
        ),
    );
    expect(
        &|p| p.set_value("", ValueType::DWORD, dword(2)),
        ev("CHANGE", r"HKLM\SOFTWARE\Policies\(Default)", None),
    );
    expect(
        &|p| p.set_value("a\\b", ValueType::DWORD, dword(2)),
        ev(
            "CHANGE",
            r"HKLM\SOFTWARE\Policies\a\b",
            Some(&utf16_hex(&"a\\b".encode_utf16().collect::<Vec<_>>())),
        ),
    );
    expect(
        &|p| p.key_mut("a").set_value("b", ValueType::DWORD, dword(2)),
        ev("CHANGE", r"HKLM\SOFTWARE\Policies\a\b", None),
    );
    expect(
        &|p| set_raw(p, &[0x61, 0xD800], dword(2)),
        ev(
            "CHANGE",
            "HKLM\\SOFTWARE\\Policies\\a\u{FFFD}",
            Some("610000d8"),
        ),
    );
    expect(
        &|p| set_raw(p, &[0x61, 0xDC00], dword(2)),
        ev(
            "CHANGE",
            "HKLM\\SOFTWARE\\Policies\\a\u{FFFD}",
            Some("610000dc"),
        ),
    );
    expect(
        &|p| set_raw(p, &[0x61, 0xFFFD], dword(2)),
        ev("CHANGE", "HKLM\\SOFTWARE\\Policies\\a\u{FFFD}", None),
    );
    // Deleting the literal "(Default)" deletes that value only.
    expect(
        &|p| {
            p.remove_value("(Default)");
        },
        ev(
            "DELETE",
            r"HKLM\SOFTWARE\Policies\(Default)",
            Some(&utf16_hex(&"(Default)".encode_utf16().collect::<Vec<_>>())),
        ),
    );
    env.once(&conf);
    assert!(env.take("out.log").is_empty());
}

/// regipy's SYSTEM hive has a value literally named "(Default)" beside the
/// default value (ControlSet001\Control\Nls\Locale): every value is its own
/// baseline row.
#[test]
fn a_real_hive_with_a_literal_default_keeps_every_value() {
    let src = testdata::hives().path("regipy/SYSTEM");
    assert!(src.exists(), "{}", src.display());
    let env = Env::new();
    std::fs::copy(&src, env.path("SYSTEM")).unwrap();
    let text = format!(
        "<Input regmon>\n Module im_regmon\n HiveFile 'HKLM\\SYSTEM' 'SYSTEM'\n \
         RegValue 'HKLM\\SYSTEM\\*'\n Recursive TRUE\n</Input>\n{}",
        json_output(&env.abs("out.log"))
    );
    env.write("r.conf", &text);
    let log = env.once("r.conf");
    // The manifest's value count (hivex, libregf, python-registry agree),
    // and the link values of CurrentControlSet and of each control set's
    // Hardware Profiles\Current (their contents are read once, under
    // their own names).
    assert!(log.contains("baseline built with 73458 values"), "{log}");
}

#[test]
fn duplicate_or_nested_hive_mounts_are_configuration_errors() {
    let env = Env::new();
    env.write_hive("A", &KeyNode::new("ROOT"));
    env.write_hive("B", &KeyNode::new("ROOT"));
    for (second, how) in [
        ("HKLM\\software", "the same key as"),
        ("HKLM\\SOFTWARE\\Sub", "a key nested with"),
        ("HKLM", "a key nested with"),
    ] {
        let text = format!(
            "<Input regmon>\n Module im_regmon\n RegValue 'HKLM\\SOFTWARE\\*'\n\
             HiveFile 'HKLM\\SOFTWARE' 'A'\n HiveFile '{second}' 'B'\n</Input>\n{}",
            json_output("out.log")
        );
        env.write("r.conf", &text);
        let out = env.run(&["-c", "r.conf", "--verify"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("r.conf:5:")
                && err.contains(how)
                && err.contains("HiveFile 'HKLM\\SOFTWARE' at ")
                && err.contains("r.conf:4"),
            "{second}: {err}"
        );
    }
}

/// Two configurations in one folder, both with `<Input regmon>` and the
/// default CacheDir: the second leaves the first one's baseline alone (never
/// sharing and rebuilding it) and keeps one of its own, with a warning
/// naming both.
#[test]
fn a_baseline_has_one_owner() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &KeyNode::new("ROOT"));
    let conf = |name: &str, pat: &str| {
        let text = format!(
            "<Input regmon>\n Module im_regmon\n HiveFile 'HKLM\\SOFTWARE' 'SOFTWARE'\n RegValue '{pat}'\n</Input>\n{}",
            json_output("out.log")
        );
        env.write(name, &text);
    };
    conf("policies.conf", "HKLM\\SOFTWARE\\Policies\\*");
    conf("daily.conf", "HKLM\\SOFTWARE\\Run\\*");
    env.once("policies.conf");
    let err = env.once("daily.conf");
    assert!(
        err.contains("belongs to input 'regmon' of")
            && err.contains("policies.conf")
            && err.contains("left alone")
            && err.contains("CacheDir"),
        "{err}"
    );
    // The owner's baseline is untouched: no rebuild at its next run.
    let log = env.once("policies.conf");
    assert!(!log.contains("baseline built"), "{log}");
    // A configuration renamed (the old file gone) takes its baseline over.
    std::fs::rename(env.path("policies.conf"), env.path("renamed.conf")).unwrap();
    let log = env.once("renamed.conf");
    assert!(
        log.contains("takes it over") && !log.contains("rebuilt"),
        "{log}"
    );
}

/// Two processes scanning one baseline at once (a `--once` by hand while
/// the service runs): each change is reported once, never twice.
#[test]
fn two_processes_at_once_report_each_change_once() {
    let env = Env::new();
    let mut tree = KeyNode::new("ROOT");
    let big = tree.key_mut("Policies");
    for i in 0..3000u32 {
        big.set_value(&format!("v{i:05}"), ValueType::DWORD, dword(i));
    }
    env.write_hive("SOFTWARE", &tree);
    let conf = simple_conf(&env, " RegValue 'HKLM\\SOFTWARE\\Policies\\*'");
    env.once(&conf);
    for trial in 0..20u32 {
        for i in 0..3u32 {
            tree.key_mut("Policies").set_value(
                &format!("v{:05}", trial * 3 + i),
                ValueType::DWORD,
                dword(100_000 + trial),
            );
        }
        env.write_hive("SOFTWARE", &tree);
        let a = env.cmd(&["-c", &conf, "--once"]).spawn().unwrap();
        let b = env.cmd(&["-c", &conf, "--once"]).spawn().unwrap();
        for mut c in [a, b] {
            assert!(c.wait().unwrap().success());
        }
        let got = env.take("out.log");
        assert_eq!(got.len(), 3, "trial {trial}: {got:#?}");
    }
}

/// Directives that change no watched value take effect without a rebuild,
/// so what changed meanwhile is still reported.
#[test]
fn only_scope_directives_rebuild_the_baseline() {
    let env = Env::new();
    let mut tree = KeyNode::new("ROOT");
    let p = tree.key_mut("Policies");
    p.set_value("A", ValueType::DWORD, dword(1));
    p.set_value("Secret", ValueType::SZ, utf16z("s1"));
    p.key_mut("Sub").set_value("B", ValueType::DWORD, dword(1));
    env.write_hive("SOFTWARE", &tree);
    let base = " RegValue 'HKLM\\SOFTWARE\\Policies\\*'\n Recursive TRUE";
    let conf = simple_conf(&env, base);
    env.once(&conf);
    let mut change = |name: &str, n: u32| {
        tree.key_mut("Policies")
            .set_value(name, ValueType::DWORD, dword(n));
        env.write_hive("SOFTWARE", &tree);
    };

    // ReportData on: the change made meanwhile is reported (no PrevValue:
    // no data was kept), then data is kept from then on.
    change("A", 2);
    let conf = simple_conf(&env, &format!("{base}\n ReportData TRUE"));
    let log = env.once(&conf);
    assert!(
        !log.contains("rebuilt") && !log.contains("baseline built"),
        "{log}"
    );
    let out = env.take("out.log");
    assert_eq!(out.len(), 1, "{out:?}");
    let e: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
    assert_eq!(e["Value"], 2);
    assert!(e.get("PrevValue").is_none(), "{e}");
    change("A", 3);
    env.once(&conf);
    let e: serde_json::Value = serde_json::from_str(&env.take("out.log")[0]).unwrap();
    assert_eq!(
        (e["PrevValue"].clone(), e["Value"].clone()),
        (2.into(), 3.into())
    );

    // NoDataFor, MaxDataSize, KeyEvents and a repeated RegValue line: no
    // rebuild, the change meanwhile is reported, no key-event storm.
    change("A", 4);
    let conf = simple_conf(
        &env,
        &format!(
            "{base}\n RegValue 'HKLM\\SOFTWARE\\Policies\\*'\n ReportData TRUE\n MaxDataSize 2\n \
             NoDataFor 'HKLM\\SOFTWARE\\Policies\\Secret'\n KeyEvents TRUE"
        ),
    );
    let log = env.once(&conf);
    assert!(
        !log.contains("rebuilt") && !log.contains("baseline built"),
        "{log}"
    );
    let out = events(&env.take("out.log"));
    assert_eq!(out, [ev("CHANGE", r"HKLM\SOFTWARE\Policies\A", None)]);
    // The data was rewritten under the new settings: the secret is gone
    // from the baseline, and a key event is reported from now on.
    let kept: Vec<Option<Vec<u8>>> =
        regmon::baseline::stored_values(&env.path("regmon-cache/regmon-regmon.sqlite"))
            .unwrap()
            .into_iter()
            .map(|e| e.data)
            .collect();
    assert_eq!(kept, [Some(vec![4, 0]), None, Some(vec![1, 0])]);
    tree.key_mut("Policies").remove_key("Sub");
    env.write_hive("SOFTWARE", &tree);
    env.once(&conf);
    assert_eq!(
        events(&env.take("out.log")),
        [
            ev("DELETE_KEY", r"HKLM\SOFTWARE\Policies\Sub", None),
            ev("DELETE", r"HKLM\SOFTWARE\Policies\Sub\B", None)
        ]
    );

    // A scope directive rebuilds, with a warning naming it.
    let conf = simple_conf(&env, " RegValue 'HKLM\\SOFTWARE\\Policies\\*'");
    let log = env.once(&conf);
    assert!(
        log.contains("WARN") && log.contains("Recursive changed"),
        "{log}"
    );
}

/// A baseline written by the previous release (schema 1, values keyed by
/// their path text) with an event still queued: after the upgrade the
/// queued event is delivered once, nothing else is reported, and later
/// changes are reported as usual.
///
/// The fixture was made by the previous release in `/tmp/regmon-v1-fixture`
/// (the baseline's scope names its hive by absolute path, so the test
/// recreates that folder): `fixtures/v1/regmon.conf` over
/// `fixtures/v1/SOFTWARE`, a `--once` to build the baseline, then a change
/// of `Policies\NoAutoUpdate` scanned while the output could not be
/// written (its path was a folder), so one event stayed queued.
#[test]
fn a_baseline_of_the_previous_release_is_migrated() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1");
    let dir = Path::new("/tmp/regmon-v1-fixture");
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("regmon-cache")).unwrap();
    for f in ["regmon.conf", "SOFTWARE"] {
        std::fs::copy(fixture.join(f), dir.join(f)).unwrap();
    }
    std::fs::copy(
        fixture.join("regmon-regmon.sqlite"),
        dir.join("regmon-cache/regmon-regmon.sqlite"),
    )
    .unwrap();
    let run = || {
        let out = std::process::Command::new(BIN)
            .current_dir(dir)
            .env("REGMON_KEY_DIR", dir.join("keys"))
            .args(["-c", "regmon.conf", "--once"])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{log}");
        assert!(
            !log.contains("baseline built") && !log.contains("rebuilt"),
            "{log}"
        );
        let lines = std::fs::read_to_string(dir.join("out.log")).unwrap_or_default();
        let _ = std::fs::remove_file(dir.join("out.log"));
        events(&lines.lines().map(String::from).collect::<Vec<_>>())
    };
    assert_eq!(
        run(),
        [ev("CHANGE", r"HKLM\SOFTWARE\Policies\NoAutoUpdate", None)]
    );
    assert!(run().is_empty());
    let mut tree = hive::write::KeyNode::from_key(
        &hive::HiveFile::open(&dir.join("SOFTWARE"))
            .unwrap()
            .hive()
            .unwrap()
            .root()
            .unwrap(),
    )
    .unwrap();
    tree.key_mut("Policies")
        .set_value("", ValueType::SZ, utf16z("changed"));
    write_hive(&dir.join("SOFTWARE"), &tree);
    assert_eq!(
        run(),
        [ev("CHANGE", r"HKLM\SOFTWARE\Policies\(Default)", None)]
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A baseline of the release before per-key rows (schema 4), one row per
/// value with its MAC (schema 3; written here with that layout's SQL from
/// what this release stored), is regrouped by key in place when opened:
/// nothing is rebuilt or re-reported, the changes made meanwhile are
/// reported once each, and the next scan reports nothing.
#[test]
fn a_baseline_of_one_row_per_value_is_migrated() {
    use regmon::baseline::seal::{Key, Sum};
    let env = Env::new();
    let mut tree = KeyNode::new("ROOT");
    let p = tree.key_mut("Policies");
    p.set_value("A", ValueType::DWORD, dword(1));
    p.set_value("B", ValueType::SZ, utf16z("b"));
    p.key_mut("Sub").set_value("C", ValueType::DWORD, dword(3));
    tree.key_mut("Other")
        .set_value("D", ValueType::DWORD, dword(4));
    tree.key_mut("Other")
        .set_value("E", ValueType::DWORD, dword(5));
    env.write_hive("SOFTWARE", &tree);
    let conf = simple_conf(
        &env,
        " RegValue 'HKLM\\SOFTWARE\\*'\n Recursive TRUE\n KeyEvents TRUE\n ReportData TRUE",
    );
    env.once(&conf);
    assert!(env.take("out.log").is_empty());
    env.once(&conf);
    let file = env.path("regmon-cache/regmon-regmon.sqlite");
    let values = regmon::baseline::stored_values(&file).unwrap();
    assert_eq!(values.len(), 5);
    let key = Key::from_bytes(
        std::fs::read(env.path(".regmon-keys/baseline.key"))
            .unwrap()
            .try_into()
            .unwrap(),
    );
    let c = rusqlite::Connection::open(&file).unwrap();
    c.execute_batch(
        "BEGIN; DROP TABLE keyvals;
         CREATE TABLE value (id BLOB PRIMARY KEY, type INTEGER NOT NULL, size INTEGER NOT NULL,
             digest BLOB NOT NULL, data BLOB, mac BLOB) WITHOUT ROWID;",
    )
    .unwrap();
    let mut sum = Sum::default();
    for e in &values {
        let (ty, size) = (i64::from(e.value_type), e.size as i64);
        let mac = key.value_mac(&e.id, ty, size, &e.digest, e.data.as_deref());
        sum.add(&mac);
        c.execute(
            "INSERT INTO value VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![e.id, ty, size, &e.digest[..], e.data, &mac[..]],
        )
        .unwrap();
    }
    c.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'vsum'",
        [sum.to_text()],
    )
    .unwrap();
    c.execute("UPDATE meta SET value = '3' WHERE key = 'schema'", [])
        .unwrap();
    let meta: Vec<(String, String)> = c
        .prepare("SELECT key, value FROM meta WHERE key != 'seal' ORDER BY key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let seal = key.seal("regmon-regmon.sqlite", &meta);
    c.execute("UPDATE meta SET value = ?1 WHERE key = 'seal'", [seal])
        .unwrap();
    c.execute_batch("COMMIT;").unwrap();
    drop(c);
    // Meanwhile: A changed, D deleted.
    tree.key_mut("Policies")
        .set_value("A", ValueType::DWORD, dword(2));
    tree.key_mut("Other").remove_value("D");
    env.write_hive("SOFTWARE", &tree);
    let log = env.once(&conf);
    assert!(
        !log.contains("rebuilt") && !log.contains("restarted") && !log.contains("built"),
        "{log}"
    );
    let mut got = events(&env.take("out.log"));
    got.sort();
    assert_eq!(
        got,
        [
            ev("CHANGE", r"HKLM\SOFTWARE\Policies\A", None),
            ev("DELETE", r"HKLM\SOFTWARE\Other\D", None),
        ],
        "{log}"
    );
    let c = rusqlite::Connection::open(&file).unwrap();
    let schema: String = c
        .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(schema, "4");
    drop(c);
    assert_eq!(regmon::baseline::stored_values(&file).unwrap().len(), 4);
    env.once(&conf);
    assert!(env.take("out.log").is_empty());
}

/// The literal "(Default)" value of regipy's SYSTEM changed with hivex (a
/// third-party writer): `regmon diff` and `--once` each report that one
/// change, named exactly, and nothing else.
#[test]
#[ignore = "needs python3-hivex (a third-party writer); scripts/test.sh installs it and runs it"]
fn a_change_of_a_real_literal_default_is_reported() {
    let src = testdata::hives().path("regipy/SYSTEM");
    let env = Env::new();
    std::fs::copy(src, env.path("SYSTEM")).unwrap();
    let text = format!(
        "<Input regmon>\n Module im_regmon\n HiveFile 'HKLM\\SYSTEM' 'SYSTEM'\n \
         RegValue 'HKLM\\SYSTEM\\ControlSet001\\Control\\Nls\\*'\n Recursive TRUE\n</Input>\n{}",
        json_output(&env.abs("out.log"))
    );
    env.write("r.conf", &text);
    env.once("r.conf");
    std::fs::copy(env.path("SYSTEM"), env.path("OLD")).unwrap();
    // hivex (Debian's python3-hivex, installed by scripts/test.sh) sets the
    // value whose name is the text "(Default)", leaving the unnamed one.
    let script = r#"
import hivex, sys
h = hivex.Hivex(sys.argv[1], write=True)
n = h.root()
for p in ["ControlSet001", "Control", "Nls", "Locale"]:
    n = h.node_get_child(n, p)
vals = [{"key": h.value_key(v), "t": h.value_type(v)[0], "value": h.value_value(v)[1]}
        for v in h.node_values(n)]
assert sum(1 for v in vals if v["key"] == "(Default)") == 1
assert sum(1 for v in vals if v["key"] == "") == 1
for v in vals:
    if v["key"] == "(Default)":
        v["value"] = "changed\0".encode("utf-16-le")
h.node_set_values(n, vals)
h.commit(sys.argv[1])
"#;
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script, env.path("SYSTEM").to_str().unwrap()])
        .output()
        .expect("/usr/bin/python3 with python3-hivex (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exact = utf16_hex(&"(Default)".encode_utf16().collect::<Vec<_>>());
    let want = [ev(
        "CHANGE",
        r"HKLM\SYSTEM\ControlSet001\Control\Nls\Locale\(Default)",
        Some(&exact),
    )];
    env.once("r.conf");
    assert_eq!(events(&env.take("out.log")), want);
    let out = env.run(&["diff", "OLD", "SYSTEM", "--root", "HKLM\\SYSTEM"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(events(&lines), want);
}
