//! `Incremental TRUE` and `FullScanInterval` on hive files: a change that
//! touches its key's last-write time (as every registry write does, and as
//! `regmon hive edit` does) gives exactly the events of a full scan; a
//! forged one (data changed, the key's last-write time and counts kept) is
//! not seen by a hinted scan and is seen by the next full rehash.
//!
//! regmon runs in this process through its library (`Runtime::scan`), as a
//! service process does: the first scan is a full rehash, the next ones use
//! the stats the last whole scan kept in memory.

mod common;

use common::{dword, json_output, write_hive, Env};
use hive::write::KeyNode;
use hive::ValueType;
use regmon::runtime::Runtime;
use std::sync::Once;
use std::time::Duration;

/// FILETIMEs for the keys' last-write times.
const T0: u64 = 133_500_000_000_000_000;
const T1: u64 = T0 + 10_000_000;

/// The baseline key folder: never the real home (all tests share one).
fn key_dir() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let d =
            std::env::temp_dir().join(format!("regmon-incremental-keys-{}", std::process::id()));
        std::env::set_var("REGMON_KEY_DIR", d);
    });
}

fn key(name: &str, values: &[(&str, u32)]) -> KeyNode {
    let mut k = KeyNode::new(name);
    k.last_written = T0;
    for (n, v) in values {
        k.set_value(n, ValueType::DWORD, dword(*v));
    }
    k
}

/// SOFTWARE: App (A, B) with App\Sub (C), Other (D), Big (1,000 values).
fn tree() -> KeyNode {
    let mut root = key("ROOT", &[]);
    root.subkeys
        .push(key("App", &[("A", 1), ("B", 2)]).with_subkey(key("Sub", &[("C", 3)])));
    root.subkeys.push(key("Other", &[("D", 4)]));
    let big: Vec<(String, u32)> = (0..1000).map(|i| (format!("v{i:04}"), i)).collect();
    let big: Vec<(&str, u32)> = big.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    root.subkeys.push(key("Big", &big));
    root
}

/// Sets value `name` of the key at `path` below `root`, as the registry
/// does (the key's last-write time moves) or forged (`touch` false: it
/// stays, and so do the counts when the value exists).
fn set(root: &mut KeyNode, path: &str, name: &str, v: u32, touch: bool) {
    let k = root.key_mut(path);
    k.set_value(name, ValueType::DWORD, dword(v));
    if touch {
        k.last_written += 10_000_000;
    }
}

/// An input over the hive `SOFTWARE` of `env` with `directives`, in this
/// process.
fn runtime(env: &Env, directives: &str) -> Runtime {
    key_dir();
    let conf = format!(
        "<Input regmon>\n Module im_regmon\n HiveFile 'HKLM\\SOFTWARE' 'SOFTWARE'\n \
         ScanInterval 0\n{directives}\n</Input>\n{}",
        json_output(&env.abs("out.log"))
    );
    env.write("regmon.conf", &conf);
    Runtime::new(nxconf::load(env.path("regmon.conf")).unwrap()).unwrap()
}

/// The events written since the last call: `EventType name digest`.
/// The events since the last look are one CHANGE of the value `path`.
fn one_change(env: &Env, path: &str) {
    let seen = events(env);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].starts_with(&format!("CHANGE {path}")), "{seen:?}");
}

fn events(env: &Env) -> Vec<String> {
    common::take_event_summaries(&env.path("out.log"))
}

const RECURSIVE: &str = " RegValue 'HKLM\\SOFTWARE\\*'\n Recursive TRUE\n KeyEvents TRUE";
/// Two patterns: the scan is held in memory and sorted (not streamed).
const TWO_PATTERNS: &str =
    " RegValue 'HKLM\\SOFTWARE\\App\\*'\n RegValue 'HKLM\\SOFTWARE\\Other\\*'\n \
     RegValue 'HKLM\\SOFTWARE\\Big\\*'\n Recursive TRUE";

/// Each step's events from an Incremental input equal a full scan's.
fn same_events_as_a_full_scan(patterns: &str) {
    let (inc, full) = (Env::new(), Env::new());
    let mut t = tree();
    for e in [&inc, &full] {
        write_hive(&e.path("SOFTWARE"), &t);
    }
    let mut rt_inc = runtime(&inc, &format!("{patterns}\n Incremental TRUE"));
    let mut rt_full = runtime(&full, patterns);
    let steps: [fn(&mut KeyNode); 8] = [
        // Nothing changed.
        |_| {},
        |t| set(t, "App", "A", 10, true),
        // Same size, same type, another digest.
        |t| set(t, "App\\Sub", "C", 30, true),
        |t| set(t, "Big", "v0500", 5, true),
        // A new value (a count changes too), a deleted one.
        |t| set(t, "Other", "E", 5, true),
        |t| {
            let k = t.key_mut("App");
            k.remove_value("B");
            k.last_written += 10_000_000;
        },
        // A key gone, a key new (the parent's subkey count changes).
        |t| {
            t.remove_key("App\\Sub");
            t.key_mut("App").last_written += 10_000_000;
        },
        |t| {
            let mut k = key("New", &[("N", 1)]);
            k.last_written = T1;
            t.key_mut("Other").subkeys.push(k);
        },
    ];
    for (n, step) in steps.iter().enumerate() {
        step(&mut t);
        for e in [&inc, &full] {
            write_hive(&e.path("SOFTWARE"), &t);
        }
        rt_inc.scan(0).unwrap();
        rt_full.scan(0).unwrap();
        let (a, b) = (events(&inc), events(&full));
        assert_eq!(a, b, "step {n}");
        if n > 0 {
            assert!(!a.is_empty(), "step {n}: no events");
        }
    }
    // The hints were used: a forged change is seen by the full scan only.
    set(&mut t, "Big", "v0001", 7, false);
    for e in [&inc, &full] {
        write_hive(&e.path("SOFTWARE"), &t);
    }
    rt_inc.scan(0).unwrap();
    rt_full.scan(0).unwrap();
    assert!(events(&inc).is_empty());
    assert_eq!(events(&full).len(), 1);
}

#[test]
fn a_hinted_scan_reports_what_a_full_scan_reports() {
    same_events_as_a_full_scan(RECURSIVE);
}

#[test]
fn a_hinted_scan_held_in_memory_reports_what_a_full_scan_reports() {
    same_events_as_a_full_scan(TWO_PATTERNS);
}

#[test]
fn a_forged_change_waits_for_the_full_rehash() {
    let env = Env::new();
    let mut t = tree();
    write_hive(&env.path("SOFTWARE"), &t);
    let mut rt = runtime(
        &env,
        &format!("{RECURSIVE}\n Incremental TRUE\n FullScanInterval 3"),
    );
    rt.scan(0).unwrap();
    assert!(events(&env).is_empty());
    let started = std::time::Instant::now();
    // Data changed, the key's time and counts kept (NtSetInformationKey,
    // or a hive file's times restored): the hints cannot tell.
    set(&mut t, "Other", "D", 40, false);
    // And a real change beside it, which is seen.
    set(&mut t, "App", "A", 10, true);
    write_hive(&env.path("SOFTWARE"), &t);
    rt.scan(0).unwrap();
    let seen = events(&env);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the machine was too slow for this test's interval"
    );
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].starts_with("CHANGE HKLM\\SOFTWARE\\App\\A"),
        "{seen:?}"
    );
    // FullScanInterval has passed: every value is read again.
    std::thread::sleep(Duration::from_millis(3100).saturating_sub(started.elapsed()));
    rt.scan(0).unwrap();
    one_change(&env, "HKLM\\SOFTWARE\\Other\\D");
}

#[test]
fn without_incremental_a_forged_change_is_seen_at_once() {
    let env = Env::new();
    let mut t = tree();
    write_hive(&env.path("SOFTWARE"), &t);
    let mut rt = runtime(&env, &format!("{RECURSIVE}\n FullScanInterval 0"));
    rt.scan(0).unwrap();
    set(&mut t, "Other", "D", 40, false);
    write_hive(&env.path("SOFTWARE"), &t);
    rt.scan(0).unwrap();
    one_change(&env, "HKLM\\SOFTWARE\\Other\\D");
}

#[test]
fn full_scan_interval_0_rehashes_only_at_start() {
    let env = Env::new();
    let mut t = tree();
    write_hive(&env.path("SOFTWARE"), &t);
    let directives = format!("{RECURSIVE}\n Incremental TRUE\n FullScanInterval 0");
    let mut rt = runtime(&env, &directives);
    rt.scan(0).unwrap();
    set(&mut t, "Other", "D", 40, false);
    write_hive(&env.path("SOFTWARE"), &t);
    for _ in 0..2 {
        rt.scan(0).unwrap();
        assert!(events(&env).is_empty());
    }
    // A new service process starts with a full rehash.
    drop(rt);
    let mut rt = runtime(&env, &directives);
    rt.scan(0).unwrap();
    one_change(&env, "HKLM\\SOFTWARE\\Other\\D");
}

#[test]
fn a_region_rescan_carries_unchanged_keys_too() {
    let env = Env::new();
    let mut t = tree();
    write_hive(&env.path("SOFTWARE"), &t);
    let mut rt = runtime(
        &env,
        &format!("{RECURSIVE}\n Incremental TRUE\n FullScanInterval 3600"),
    );
    rt.scan(0).unwrap();
    set(&mut t, "App\\Sub", "C", 40, false);
    set(&mut t, "App", "A", 10, true);
    write_hive(&env.path("SOFTWARE"), &t);
    let region = regmon::path::region::Region {
        root: regmon::path::pattern::Root::Hklm,
        path: vec!["SOFTWARE".into(), "App".into()],
        subtree: true,
    };
    rt.scan_regions(0, &[region]).unwrap();
    one_change(&env, "HKLM\\SOFTWARE\\App\\A");
    // Nothing below a carried key was reported deleted; a whole scan agrees.
    rt.scan(0).unwrap();
    assert!(events(&env).is_empty());
}

/// `--once` runs (cron): the baseline's stored stats are the hints until
/// FullScanInterval is due. Needs a baseline that stores each key's stats
/// (`Baseline::key_hints`, the per-key layout).
#[test]
fn once_runs_use_the_stored_hints_until_the_interval_is_due() {
    let env = Env::new();
    let mut t = tree();
    env.write_hive("SOFTWARE", &t);
    let conf = common::simple_conf(
        &env,
        &format!("{RECURSIVE}\n Incremental TRUE\n FullScanInterval 3"),
    );
    let started = std::time::Instant::now();
    let log = env.once(&conf);
    assert!(log.contains("baseline built"), "{log}");
    set(&mut t, "Other", "D", 40, false);
    set(&mut t, "App", "A", 10, true);
    env.write_hive("SOFTWARE", &t);
    let log = env.once(&conf);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "too slow for the interval"
    );
    assert!(log.contains("incremental: "), "{log}");
    one_change(&env, "HKLM\\SOFTWARE\\App\\A");
    std::thread::sleep(Duration::from_millis(3100).saturating_sub(started.elapsed()));
    let log = env.once(&conf);
    assert!(log.contains("full rehash"), "{log}");
    one_change(&env, "HKLM\\SOFTWARE\\Other\\D");
}

/// A scope change rebuilds the baseline (a full read); a data-setting
/// change reads every value too (with `--once`, where hints would apply).
#[test]
fn a_data_setting_change_reads_every_value() {
    let env = Env::new();
    let mut t = tree();
    env.write_hive("SOFTWARE", &t);
    let conf = common::simple_conf(
        &env,
        &format!("{RECURSIVE}\n Incremental TRUE\n FullScanInterval 3600\n ReportData TRUE"),
    );
    env.once(&conf);
    set(&mut t, "Other", "D", 40, false);
    env.write_hive("SOFTWARE", &t);
    let log = env.once(&conf);
    assert!(log.contains("incremental: "), "{log}");
    assert!(events(&env).is_empty());
    let conf = common::simple_conf(
        &env,
        &format!(
            "{RECURSIVE}\n Incremental TRUE\n FullScanInterval 3600\n ReportData TRUE\n MaxDataSize 2"
        ),
    );
    let log = env.once(&conf);
    assert!(log.contains("full rehash"), "{log}");
    one_change(&env, "HKLM\\SOFTWARE\\Other\\D");
}

#[test]
fn verify_lists_the_incremental_directives() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &tree());
    let conf = common::simple_conf(
        &env,
        &format!("{RECURSIVE}\n Incremental TRUE\n FullScanInterval 600"),
    );
    let out = env.run(&["-c", &conf, "--verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let line = |k: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(k))
            .map(str::split_whitespace)
            .map(|w| w.collect::<Vec<_>>())
    };
    assert_eq!(
        line("Incremental"),
        Some(vec!["Incremental", "TRUE"]),
        "{text}"
    );
    assert_eq!(
        line("FullScanInterval"),
        Some(vec!["FullScanInterval", "600"]),
        "{text}"
    );
    // Off (the default): neither is listed.
    let conf = common::simple_conf(&env, RECURSIVE);
    let out = env.run(&["-c", &conf, "--verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("Incremental") && !text.contains("FullScanInterval"),
        "{text}"
    );
}

/// `64BitView BOTH`: a value's identity is logical (one key in two views),
/// so nothing is carried: a forged change in a key seen by both views is
/// reported at once, as without Incremental.
#[test]
fn both_views_read_every_value() {
    let env = Env::new();
    let mut t = tree();
    write_hive(&env.path("SOFTWARE"), &t);
    let mut rt = runtime(
        &env,
        &format!("{RECURSIVE}\n 64BitView BOTH\n Incremental TRUE\n FullScanInterval 3600"),
    );
    rt.scan(0).unwrap();
    events(&env);
    set(&mut t, "Other", "D", 40, false);
    write_hive(&env.path("SOFTWARE"), &t);
    rt.scan(0).unwrap();
    let seen = events(&env);
    assert!(!seen.is_empty(), "the forged change was carried");
    assert!(
        seen.iter()
            .all(|e| e.starts_with("CHANGE HKLM\\SOFTWARE\\Other\\D")),
        "{seen:?}"
    );
}
