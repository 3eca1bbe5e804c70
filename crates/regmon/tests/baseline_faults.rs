//! A damaged, tampered, foreign, older or missing baseline never stops
//! monitoring: the run goes on, the file is moved aside (where there is
//! one), exactly one BASELINE_RESTART event reaches the output, and the
//! next change is reported as usual.

mod common;

use common::*;
use hive::write::KeyNode;
use hive::ValueType;

const BASELINE: &str = "regmon-cache/regmon-regmon.sqlite";

fn tree(a: u32) -> KeyNode {
    let mut root = KeyNode::new("ROOT");
    let p = root.key_mut("P");
    p.set_value("A", ValueType::DWORD, dword(a));
    p.set_value("B", ValueType::DWORD, dword(2));
    p.key_mut("Sub").set_value("C", ValueType::DWORD, dword(3));
    root
}

/// A monitored hive with a baseline built (no events).
fn setup() -> (Env, String) {
    let env = Env::new();
    env.write_hive("SOFTWARE", &tree(1));
    let conf = simple_conf(&env, " RegValue 'HKLM\\SOFTWARE\\*'\n Recursive TRUE");
    env.once(&conf);
    assert!(env.take("out.log").is_empty());
    (env, conf)
}

fn events(env: &Env) -> Vec<serde_json::Value> {
    let lines = env.read("out.log");
    std::fs::remove_file(env.path("out.log")).ok();
    lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn moved_aside(env: &Env, word: &str) -> Vec<String> {
    std::fs::read_dir(env.path("regmon-cache"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with(&format!("regmon-regmon.sqlite.{word}-"))
                && !n.ends_with("-wal")
                && !n.ends_with("-shm")
        })
        .collect()
}

/// The run after the fault: one restart event with `reason`, the file
/// moved aside (unless missing); then a change is reported normally.
fn expect_restart(env: &Env, conf: &str, reason: &str) {
    let log = env.once(conf);
    assert!(log.contains("restarted without a baseline"), "{log}");
    let ev = events(env);
    assert_eq!(ev.len(), 1, "{ev:?}\n{log}");
    let e = &ev[0];
    assert_eq!(e["EventType"], "BASELINE_RESTART", "{e}");
    assert_eq!(e["BaselineRestartReason"], reason, "{e}");
    assert!(
        e["BaselineFile"]
            .as_str()
            .unwrap()
            .ends_with("regmon-regmon.sqlite"),
        "{e}"
    );
    assert!(e["NotComparedSince"].is_string(), "{e}");
    if reason == "missing" {
        assert!(e.get("BaselineMovedTo").is_none(), "{e}");
    } else {
        let moved = moved_aside(env, reason);
        assert_eq!(moved.len(), 1, "{moved:?}");
        assert!(
            e["BaselineMovedTo"].as_str().unwrap().ends_with(&moved[0]),
            "{e}"
        );
        assert!(
            log.contains(&moved[0]),
            "the log names the moved file: {log}"
        );
    }
    // Nothing more on the next run; a change is reported.
    env.once(conf);
    assert!(events(env).is_empty());
    env.write_hive("SOFTWARE", &tree(77));
    env.once(conf);
    let ev = events(env);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["EventType"], "CHANGE");
    assert_eq!(ev[0]["RegistryValueName"], "HKLM\\SOFTWARE\\P\\A");
}

fn sql(env: &Env, statements: &str) {
    let c = rusqlite::Connection::open(env.path(BASELINE)).unwrap();
    c.execute_batch(statements).unwrap();
}

#[test]
fn garbage_over_the_baseline() {
    let (env, conf) = setup();
    std::fs::write(env.path(BASELINE), vec![0x5a; 64 * 1024]).unwrap();
    expect_restart(&env, &conf, "damaged");
}

#[test]
fn a_truncated_baseline() {
    let (env, conf) = setup();
    let len = std::fs::metadata(env.path(BASELINE)).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(env.path(BASELINE))
        .unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    let log = env.once(&conf);
    let ev = events(&env);
    assert_eq!(ev.len(), 1, "{ev:?}\n{log}");
    assert_eq!(ev[0]["EventType"], "BASELINE_RESTART");
    // Depending on where it was cut: SQLite's check, or fewer rows than sealed.
    let reason = ev[0]["BaselineRestartReason"].as_str().unwrap().to_string();
    assert!(
        ["damaged", "tampered"].contains(&reason.as_str()),
        "{reason}"
    );
    assert_eq!(moved_aside(&env, &reason).len(), 1);
    env.write_hive("SOFTWARE", &tree(77));
    env.once(&conf);
    let ev = events(&env);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["EventType"], "CHANGE");
}

#[test]
fn an_emptied_baseline() {
    let (env, conf) = setup();
    std::fs::write(env.path(BASELINE), b"").unwrap();
    expect_restart(&env, &conf, "rolled-back");
}

#[test]
fn a_later_layout() {
    let (env, conf) = setup();
    sql(&env, "UPDATE meta SET value = '99' WHERE key = 'schema'");
    expect_restart(&env, &conf, "later-layout");
}

#[test]
fn a_baseline_of_another_host() {
    let (env, conf) = setup();
    sql(
        &env,
        "UPDATE meta SET value = 'elsewhere' WHERE key = 'host'",
    );
    expect_restart(&env, &conf, "other-host");
}

/// The rows of values (one per key): key identity and values blob.
fn key_rows(c: &rusqlite::Connection) -> Vec<(Vec<u8>, Vec<u8>)> {
    c.prepare("SELECT id, vals FROM keyvals")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

#[test]
fn a_row_edited_to_hide_a_change() {
    use regmon::baseline::rows;
    let (env, conf) = setup();
    // The attacker changes A and makes the baseline say it always was so:
    // in the row of key P, A's digest replaced by B's (B holds the same
    // DWORD 2).
    env.write_hive("SOFTWARE", &tree(2));
    let c = rusqlite::Connection::open(env.path(BASELINE)).unwrap();
    let all = key_rows(&c);
    let (id, blob) = all
        .iter()
        .find(|r| id_to_path(&r.0).ends_with("SOFTWARE\\P"))
        .unwrap();
    let mut values = rows::decode(blob).unwrap();
    assert_eq!(values.len(), 2);
    values[0].digest = values[1].digest;
    c.execute(
        "UPDATE keyvals SET vals = ?1 WHERE id = ?2",
        rusqlite::params![rows::encode(values), id],
    )
    .unwrap();
    drop(c);
    let log = env.once(&conf);
    let ev = events(&env);
    assert_eq!(ev.len(), 1, "{ev:?}\n{log}");
    assert_eq!(ev[0]["BaselineRestartReason"], "tampered");
    assert!(
        log.contains("key HKLM\\SOFTWARE\\P does not match its MAC"),
        "{log}"
    );
    env.write_hive("SOFTWARE", &tree(77));
    env.once(&conf);
    let ev = events(&env);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["EventType"], "CHANGE");
}

#[test]
fn a_row_deleted() {
    let (env, conf) = setup();
    // Deleting the row of key Sub (MACs of the others intact) would hide
    // the deletion of C.
    let c = rusqlite::Connection::open(env.path(BASELINE)).unwrap();
    let all = key_rows(&c);
    let (id, _) = all
        .iter()
        .find(|r| id_to_path(&r.0).ends_with("P\\Sub"))
        .unwrap();
    c.execute("DELETE FROM keyvals WHERE id = ?1", [id])
        .unwrap();
    drop(c);
    expect_restart(&env, &conf, "tampered");
}

#[test]
fn an_old_copy_restored() {
    let (env, conf) = setup();
    let old = std::fs::read(env.path(BASELINE)).unwrap();
    env.write_hive("SOFTWARE", &tree(5));
    env.once(&conf);
    assert_eq!(events(&env).len(), 1);
    // Restored: it says A is 1, hiding that A became 5.
    std::fs::write(env.path(BASELINE), old).unwrap();
    env.write_hive("SOFTWARE", &tree(1));
    expect_restart(&env, &conf, "rolled-back");
}

#[test]
fn a_missing_baseline_after_one_existed() {
    let (env, conf) = setup();
    std::fs::remove_file(env.path(BASELINE)).unwrap();
    expect_restart(&env, &conf, "missing");
}

#[test]
fn another_configuration_s_baseline_is_left_alone() {
    let (env, conf) = setup();
    // A second configuration with the same CacheDir and input name.
    let text = format!(
        "CacheDir '{}'\n<Input regmon>\n Module im_regmon\n HiveFile 'HKLM\\SOFTWARE' '{}'\n \
         RegValue 'HKLM\\SOFTWARE\\P\\*'\n</Input>\n{}",
        env.abs("regmon-cache"),
        env.abs("SOFTWARE"),
        json_output(&env.abs("other.log"))
    );
    env.write("other/regmon.conf", &text);
    let before = std::fs::read(env.path(BASELINE)).unwrap();
    let log = env.once("other/regmon.conf");
    assert!(log.contains("left alone"), "{log}");
    assert_eq!(std::fs::read(env.path(BASELINE)).unwrap(), before);
    env.write_hive("SOFTWARE", &tree(9));
    env.once(&conf);
    env.once("other/regmon.conf");
    for out in ["out.log", "other.log"] {
        let lines = env.read(out);
        assert_eq!(lines.lines().count(), 1, "{out}: {lines}");
        assert!(lines.contains("\"CHANGE\""), "{out}: {lines}");
    }
}
