//! No silent zero coverage, end to end: each scan says what each RegValue
//! pattern matched; a pattern that matches nothing at the first scan, or
//! whose count falls to zero, is a warning and a NO_MATCH event naming the
//! pattern (with its file:line) and the nearest existing key, once per
//! transition; an INFO line says when it matches again; a hive that could
//! not be read is not reported a second time as zero coverage.

mod common;

use common::*;
use hive::write::KeyNode;
use hive::ValueType;
use std::time::Duration;

/// SOFTWARE with Microsoft\Run (two values) and Policies (one value).
fn software() -> KeyNode {
    KeyNode::new("ROOT")
        .with_subkey(
            KeyNode::new("Microsoft").with_subkey(
                KeyNode::new("Run")
                    .with_value("A", ValueType::SZ, utf16z("a.exe"))
                    .with_value("B", ValueType::SZ, utf16z("b.exe")),
            ),
        )
        .with_subkey(KeyNode::new("Policies").with_value("P", ValueType::DWORD, dword(1)))
}

/// The JSON events of out.log with the given EventType.
fn events(env: &Env, kind: &str) -> Vec<serde_json::Value> {
    env.read("out.log")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["EventType"] == kind)
        .collect()
}

#[test]
fn a_pattern_that_matches_nothing_at_the_first_scan_is_a_warning_and_an_event() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &software());
    // RegValue lines 4 and 5 of regmon.conf.
    let conf = simple_conf(
        &env,
        " RegValue 'HKLM\\SOFTWARE\\Microsoft\\Run\\*'\n RegValue 'HKLM\\SOFTWARE\\Micrsoft\\*'\n ScanInterval 0",
    );
    let log = env.once(&conf);
    assert!(
        log.contains(
            "RegValue 'HKLM\\SOFTWARE\\Microsoft\\Run\\*' (regmon.conf:4) matched 1 keys, 2 values (24 bytes)"
        ),
        "{log}"
    );
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("Micrsoft"))
        .unwrap_or_else(|| panic!("no warning: {log}"));
    assert!(
        warning.contains(
            "RegValue 'HKLM\\SOFTWARE\\Micrsoft\\*' (regmon.conf:5) matches nothing: nearest existing key HKLM\\SOFTWARE; \
             no subkey of HKLM\\SOFTWARE matches 'Micrsoft' (a typo?)"
        ),
        "{warning}"
    );
    let ev = events(&env, "NO_MATCH");
    assert_eq!(ev.len(), 1, "{}", env.read("out.log"));
    let e = &ev[0];
    assert_eq!(e["RegValuePattern"], "HKLM\\SOFTWARE\\Micrsoft\\*");
    assert_eq!(e["RegValueLocation"], "regmon.conf:5");
    assert_eq!(e["NearestKey"], "HKLM\\SOFTWARE");
    assert_eq!(e["Severity"], "WARNING");
    assert_eq!(e["SourceModuleName"], "regmon");
    assert!(e["Message"].as_str().unwrap().contains("(a typo?)"), "{e}");
    assert!(e.get("PrevMatchedValues").is_none(), "{e}");
    // The next run is a first scan too: said again (once per start).
    std::fs::remove_file(env.path("out.log")).unwrap();
    env.once(&conf);
    assert_eq!(events(&env, "NO_MATCH").len(), 1);
}

#[test]
fn a_count_falling_to_zero_is_reported_once_and_its_recovery_is_logged() {
    let env = Env::new();
    let mut tree = software();
    env.write_hive("SOFTWARE", &tree);
    let conf = simple_conf(
        &env,
        " RegValue 'HKLM\\SOFTWARE\\Microsoft\\Run\\*'\n ScanInterval 1",
    );
    let mut child = env.spawn(&conf, "run.log");
    assert!(
        wait_for(Duration::from_secs(10), || env
            .read("run.log")
            .contains("matched 1 keys, 2 values")),
        "{}",
        env.read("run.log")
    );
    tree.key_mut("Microsoft").remove_key("Run");
    env.write_hive("SOFTWARE", &tree);
    let fell = wait_for(Duration::from_secs(10), || {
        env.read("run.log").contains("matches nothing now")
    });
    // Two more scans with nothing: no second warning.
    let scans = |env: &Env| env.read("run.log").matches("scan done").count();
    let at = scans(&env);
    wait_for(Duration::from_secs(10), || scans(&env) >= at + 2);
    tree.key_mut("Microsoft")
        .key_mut("Run")
        .set_value("C", ValueType::DWORD, dword(3));
    env.write_hive("SOFTWARE", &tree);
    let back = wait_for(Duration::from_secs(10), || {
        env.read("run.log").contains("matches again")
    });
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(10));
    let log = env.read("run.log");
    assert!(fell && back, "{log}");
    assert_eq!(log.matches("matches nothing").count(), 1, "{log}");
    assert!(
        log.contains(
            "RegValue 'HKLM\\SOFTWARE\\Microsoft\\Run\\*' (regmon.conf:4) matches nothing now (2 values at the scan before): \
             nearest existing key HKLM\\SOFTWARE\\Microsoft; no subkey of HKLM\\SOFTWARE\\Microsoft matches 'Run' (a typo?)"
        ),
        "{log}"
    );
    assert!(
        log.contains("(regmon.conf:4) matches again: matched 1 keys, 1 values (4 bytes)"),
        "{log}"
    );
    let ev = events(&env, "NO_MATCH");
    assert_eq!(ev.len(), 1, "{}", env.read("out.log"));
    assert_eq!(ev[0]["PrevMatchedValues"], 2);
    assert_eq!(ev[0]["NearestKey"], "HKLM\\SOFTWARE\\Microsoft");
    // The values themselves were reported as they went and came.
    assert_eq!(events(&env, "DELETE").len(), 2);
    assert_eq!(events(&env, "NEW").len(), 1);
}

#[test]
fn a_hive_that_cannot_be_read_is_not_also_zero_coverage() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &software());
    env.write("SYSTEM", "not a hive");
    let conf = simple_conf(
        &env,
        " HiveFile 'HKLM\\SYSTEM' 'SYSTEM'\n RegValue 'HKLM\\SYSTEM\\Select\\*'\n \
         RegValue 'HKLM\\SOFTWARE\\Policies\\*'\n ScanInterval 0",
    );
    let out = env.run(&["-c", &conf, "--once"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("could not be read"), "{log}");
    assert!(!log.contains("matches nothing"), "{log}");
    assert!(events(&env, "NO_MATCH").is_empty());
    // A hive mounted where no pattern goes is no excuse for a pattern.
    let conf = simple_conf(
        &env,
        " HiveFile 'HKLM\\SYSTEM' 'SYSTEM'\n RegValue 'HKLM\\SOFTWARE\\Nothere\\*'\n ScanInterval 0",
    );
    let out = env.run(&["-c", &conf, "--once"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("RegValue 'HKLM\\SOFTWARE\\Nothere\\*' (regmon.conf:5) matches nothing"),
        "{log}"
    );
}
