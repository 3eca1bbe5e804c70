//! im_internal: regmon's own log records become events with NXLog's
//! im_internal fields, run through the instance's Exec and routed to its
//! outputs, with --once and in the loop; a delivery failure of those
//! events does not feed itself.

mod common;

use common::*;
use hive::write::KeyNode;
use hive::ValueType;
use std::time::Duration;

fn tree(gen: u32) -> KeyNode {
    let mut root = KeyNode::new("ROOT");
    root.key_mut("Watched")
        .set_value("A", ValueType::DWORD, dword(gen));
    root
}

/// im_regmon `regmon` over SOFTWARE and `broken` over a HiveFile that
/// does not exist (a warning at every scan), writing JSON to `out.log`; im_internal
/// `internal` with `exec`, to `internal` (JSON to `internal_file`) and
/// `raw` (raw_event lines to raw.log).
fn conf(env: &Env, exec: &str, internal_file: &str) {
    let (out, int, raw) = (
        env.abs("out.log"),
        env.abs(internal_file),
        env.abs("raw.log"),
    );
    env.write(
        "regmon.conf",
        &format!(
            "<Extension json>\n Module xm_json\n</Extension>\n\
             <Input regmon>\n Module im_regmon\n HiveFile 'HKLM\\SOFTWARE' 'SOFTWARE'\n\
             \x20RegValue 'HKLM\\SOFTWARE\\Watched\\*'\n ScanInterval 1\n</Input>\n\
             <Input broken>\n Module im_regmon\n HiveFile 'HKLM\\SYSTEM' 'gone.hive'\n\
             \x20RegValue 'HKLM\\SYSTEM\\X\\*'\n ScanInterval 1\n</Input>\n\
             <Input internal>\n Module im_internal\n{exec}</Input>\n\
             <Output file>\n Module om_file\n File '{out}'\n Exec to_json();\n</Output>\n\
             <Output internal_out>\n Module om_file\n File '{int}'\n Exec to_json();\n</Output>\n\
             <Output raw>\n Module om_file\n File '{raw}'\n</Output>\n\
             <Route r>\n Path regmon, broken => file\n</Route>\n\
             <Route i>\n Path internal => internal_out, raw\n</Route>\n"
        ),
    );
}

fn json(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn log_records_become_events_with_nxlog_s_fields() {
    let env = Env::new();
    conf(&env, "", "internal.log");
    env.write_hive("SOFTWARE", &tree(1));
    env.once("regmon.conf");
    // The second run compares: a scan summary.
    env.write_hive("SOFTWARE", &tree(2));
    env.once("regmon.conf");
    let text = env.read("internal.log");
    let events = json(&text.lines().map(String::from).collect::<Vec<_>>());
    let unread = events
        .iter()
        .find(|e| e["Message"].as_str().unwrap().contains("gone.hive"))
        .unwrap_or_else(|| panic!("no record of the unreadable hive: {events:?}"));
    // In NXLog's order (serde_json's map sorts: read the line).
    let line = text.lines().find(|l| l.contains("gone.hive")).unwrap();
    let mut names: Vec<(usize, &str)> = unread
        .as_object()
        .unwrap()
        .keys()
        .map(|k| (line.find(&format!("\"{k}\":")).unwrap(), k.as_str()))
        .collect();
    names.sort();
    let names: Vec<&str> = names.into_iter().map(|n| n.1).collect();
    assert_eq!(
        names,
        [
            "EventTime",
            "Hostname",
            "SeverityValue",
            "Severity",
            "SourceName",
            "ProcessID",
            "Message",
            "ModuleName",
            "ModuleType",
            "EventReceivedTime",
            "SourceModuleName",
            "SourceModuleType",
        ]
    );
    assert_eq!(unread["Severity"], "WARNING");
    assert_eq!(unread["SeverityValue"], 3);
    assert_eq!(unread["SourceName"], "regmon");
    assert_eq!(unread["SourceModuleName"], "internal");
    assert_eq!(unread["SourceModuleType"], "im_internal");
    assert_eq!(unread["ModuleName"], "broken");
    assert_eq!(unread["ModuleType"], "im_regmon");
    assert!(unread["ProcessID"].as_u64().is_some_and(|p| p > 0));
    assert!(is_json_time(unread["EventTime"].as_str().unwrap()));
    // Errors and scan summaries too, each with NXLog's severity numbers.
    assert!(events
        .iter()
        .any(|e| e["Severity"] == "ERROR" && e["SeverityValue"] == 4));
    assert!(events.iter().any(|e| e["Severity"] == "INFO"
        && e["SeverityValue"] == 2
        && e["Message"].as_str().unwrap().starts_with("scan done")));
    // raw_event as NXLog writes it: time, host, severity, message.
    let raw = env.read("raw.log");
    let line = raw
        .lines()
        .find(|l| l.contains("gone.hive"))
        .unwrap_or_else(|| panic!("{raw}"));
    let parts: Vec<&str> = line.splitn(5, ' ').collect();
    assert_eq!(parts[0].len(), "YYYY-MM-DD".len(), "{line}");
    assert_eq!(parts[1].len(), "hh:mm:ss".len(), "{line}");
    assert_eq!(parts[2], unread["Hostname"].as_str().unwrap());
    assert_eq!(parts[3], "WARNING");
    assert_eq!(parts[4], unread["Message"].as_str().unwrap());
}

#[test]
fn the_im_internal_exec_runs() {
    let env = Env::new();
    conf(
        &env,
        " Exec if $SeverityValue < 3 drop();\n Exec $Tag = 'regmon-' + $Severity;\n",
        "internal.log",
    );
    env.write_hive("SOFTWARE", &tree(1));
    env.once("regmon.conf");
    let events = json(
        &env.read("internal.log")
            .lines()
            .map(String::from)
            .collect::<Vec<_>>(),
    );
    assert!(!events.is_empty());
    for e in &events {
        assert!(e["SeverityValue"].as_i64().unwrap() >= 3, "{e}");
        assert_eq!(
            e["Tag"].as_str().unwrap(),
            format!("regmon-{}", e["Severity"].as_str().unwrap())
        );
    }
}

#[test]
fn a_failing_output_of_internal_events_does_not_feed_itself() {
    let env = Env::new();
    conf(&env, "", "missing/internal.log");
    env.write_hive("SOFTWARE", &tree(1));
    let run = env.run(&["-c", "regmon.conf", "--once"]);
    assert!(!run.status.success(), "internal events undelivered: exit 1");
    let log = String::from_utf8_lossy(&run.stderr);
    // The failure is in LogFile/stderr, not an internal event about itself.
    assert!(log.contains("stay queued"), "{log}");
    std::fs::create_dir(env.path("missing")).unwrap();
    env.once("regmon.conf");
    let events = json(&env.lines("missing/internal.log"));
    let about_delivery = events
        .iter()
        .filter(|e| e["Message"].as_str().unwrap().contains("stay queued"))
        .count();
    assert_eq!(about_delivery, 0, "{events:?}");
    // Both runs' records arrive, the first run's first (kept on disk).
    let pids: Vec<u64> = events
        .iter()
        .map(|e| e["ProcessID"].as_u64().unwrap())
        .collect();
    assert!(pids.first() != pids.last(), "{pids:?}");
}

#[test]
fn the_loop_delivers_records_as_they_come() {
    let env = Env::new();
    conf(&env, "", "internal.log");
    env.write_hive("SOFTWARE", &tree(1));
    let mut child = env.spawn("regmon.conf", "log.txt");
    let scans = |env: &Env| {
        env.read("internal.log")
            .lines()
            .filter(|l| l.contains("scan done") && l.contains(r#""ModuleName":"regmon""#))
            .count()
    };
    let ok = wait_for(Duration::from_secs(20), || scans(&env) >= 2);
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(10));
    assert!(ok, "{}", env.read("log.txt"));
}

#[test]
fn im_internal_alone_is_nothing_to_monitor() {
    let env = Env::new();
    env.write(
        "regmon.conf",
        &format!(
            "<Extension json>\n Module xm_json\n</Extension>\n\
             <Input internal>\n Module im_internal\n</Input>\n\
             <Output file>\n Module om_file\n File '{}'\n Exec to_json();\n</Output>\n\
             <Route i>\n Path internal => file\n</Route>\n",
            env.abs("out.log")
        ),
    );
    let run = env.run(&["-c", "regmon.conf", "--once"]);
    assert!(!run.status.success());
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(log.contains("nothing to monitor"), "{log}");
}
