//! pm_buffer on a route (`Path regmon => buf => file`): its MaxSize bounds
//! the outbox of the route's inputs (as OutboxMaxSize does, the smaller
//! one applies), WarnLimit warns once when the undelivered events grow past
//! it and notes when they fall back under, and Type Mem is kept on disk.

mod common;

use common::*;
use hive::write::KeyNode;

fn tree(n: u32, gen: u32) -> KeyNode {
    dword_tree("Watched", n, |i| format!("V{i:03}"), |i| i + gen)
}

/// A configuration whose output writes into `missing/` (absent until the
/// test creates it), through pm_buffer `buf` with `buffer` directives.
fn conf(env: &Env, globals: &str, buffer: &str) {
    let out = env.abs("missing/out.log");
    env.write(
        "regmon.conf",
        &format!(
            "{globals}\
             <Extension json>\n Module xm_json\n</Extension>\n\
             <Input regmon>\n Module im_regmon\n HiveFile 'HKLM\\SOFTWARE' 'SOFTWARE'\n RegValue 'HKLM\\SOFTWARE\\Watched\\*'\n</Input>\n\
             <Processor buf>\n Module pm_buffer\n{buffer}</Processor>\n\
             <Output file>\n Module om_file\n File '{out}'\n Exec to_json();\n</Output>\n\
             <Route r>\n Path regmon => buf => file\n</Route>\n"
        ),
    );
}

fn events(env: &Env) -> Vec<serde_json::Value> {
    env.lines("missing/out.log")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn max_size_bounds_the_outbox_and_the_loss_is_reported() {
    let env = Env::new();
    // The pm_buffer's 4 KiB is smaller than OutboxMaxSize: it applies.
    conf(&env, "OutboxMaxSize 1M\n", " MaxSize 4\n Type Disk\n");
    env.write_hive("SOFTWARE", &tree(100, 0));
    env.once("regmon.conf");
    env.write_hive("SOFTWARE", &tree(100, 1000));
    let run = env.run(&["-c", "regmon.conf", "--once"]);
    assert!(!run.status.success(), "undelivered events: exit 1");
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(
        log.contains("outbox full (pm_buffer 'buf' MaxSize 4096 bytes)"),
        "{log}"
    );
    std::fs::create_dir(env.path("missing")).unwrap();
    env.once("regmon.conf");
    let events = events(&env);
    let changes = events.iter().filter(|e| e["EventType"] == "CHANGE").count();
    let overflow: Vec<_> = events
        .iter()
        .filter(|e| e["EventType"] == "OUTBOX_OVERFLOW")
        .collect();
    assert_eq!(overflow.len(), 1, "{events:?}");
    let dropped = overflow[0]["OutboxDropped"].as_u64().unwrap() as usize;
    assert!(
        changes > 0 && dropped > 0,
        "{changes} kept, {dropped} dropped"
    );
    assert_eq!(changes + dropped, 100);
    assert_eq!(overflow[0]["OutboxMaxSize"], 4096);
    let message = overflow[0]["Message"].as_str().unwrap();
    assert!(
        message.contains("pm_buffer 'buf' MaxSize 4096 bytes"),
        "{message}"
    );
    // The oldest are kept.
    let first = events.iter().find(|e| e["EventType"] == "CHANGE").unwrap();
    assert_eq!(first["RegistryValueName"], "HKLM\\SOFTWARE\\Watched\\V000");
}

#[test]
fn the_smaller_of_outbox_max_size_and_max_size_applies() {
    let env = Env::new();
    conf(&env, "OutboxMaxSize 4K\n", " MaxSize 1024\n Type Disk\n");
    env.write_hive("SOFTWARE", &tree(100, 0));
    env.once("regmon.conf");
    env.write_hive("SOFTWARE", &tree(100, 1000));
    let run = env.run(&["-c", "regmon.conf", "--once"]);
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(
        log.contains("outbox full (OutboxMaxSize 4096 bytes)"),
        "{log}"
    );
}

#[test]
fn warn_limit_warns_once_per_crossing_and_type_mem_is_said() {
    let env = Env::new();
    conf(&env, "", " MaxSize 64\n WarnLimit 2\n Type Mem\n");
    env.write_hive("SOFTWARE", &tree(40, 0));
    let log = env.once("regmon.conf");
    assert!(
        log.contains("pm_buffer 'buf': Type Mem is kept on disk by regmon (the outbox)"),
        "{log}"
    );
    assert!(!log.contains("WarnLimit"), "{log}");
    // 40 changes wait (the folder is missing): past 2 KiB.
    env.write_hive("SOFTWARE", &tree(40, 1000));
    let run = env.run(&["-c", "regmon.conf", "--once"]);
    let log = String::from_utf8_lossy(&run.stderr);
    let warned = |log: &str| {
        log.lines()
            .filter(|l| l.contains("WARN") && l.contains("over WarnLimit 2048 bytes"))
            .count()
    };
    assert_eq!(warned(&log), 1, "{log}");
    assert!(
        log.contains("pm_buffer 'buf': the outbox of 'regmon' holds"),
        "{log}"
    );
    // Delivered: back under, said once.
    std::fs::create_dir(env.path("missing")).unwrap();
    let log = env.once("regmon.conf");
    assert!(
        log.contains("pm_buffer 'buf': the outbox of 'regmon' is back under WarnLimit 2048 bytes"),
        "{log}"
    );
    assert_eq!(events(&env).len(), 40);
}
