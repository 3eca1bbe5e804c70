//! The outbox's bound (global `OutboxMaxSize`): when undelivered events
//! fill it, the oldest are kept, new ones are dropped and counted, and an
//! OUTBOX_OVERFLOW event says how many and when once there is room.

mod common;

use common::*;
use hive::write::KeyNode;

fn tree(n: u32, gen: u32) -> KeyNode {
    dword_tree("Watched", n, |i| format!("V{i:03}"), |i| i + gen)
}

#[test]
fn a_full_outbox_drops_new_events_and_says_how_many() {
    let env = Env::new();
    let out = env.abs("missing/out.log");
    let conf = format!(
        "OutboxMaxSize 4K\n\
         <Extension json>\n Module xm_json\n</Extension>\n\
         <Input regmon>\n Module im_regmon\n HiveFile 'HKLM\\SOFTWARE' 'SOFTWARE'\n RegValue 'HKLM\\SOFTWARE\\Watched\\*'\n</Input>\n\
         <Output file>\n Module om_file\n File '{out}'\n Exec to_json();\n</Output>\n\
         <Route r>\n Path regmon => file\n</Route>\n"
    );
    env.write("regmon.conf", &conf);
    env.write_hive("SOFTWARE", &tree(100, 0));
    env.once("regmon.conf");
    // 100 changes while the output's folder is missing: a few fit.
    env.write_hive("SOFTWARE", &tree(100, 1000));
    let run = env.run(&["-c", "regmon.conf", "--once"]);
    assert!(!run.status.success(), "undelivered events: exit 1");
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(log.contains("outbox full"), "{log}");
    std::fs::create_dir(env.path("missing")).unwrap();
    env.once("regmon.conf");
    let lines = env.lines("missing/out.log");
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let changes = events.iter().filter(|e| e["EventType"] == "CHANGE").count();
    let overflow: Vec<_> = events
        .iter()
        .filter(|e| e["EventType"] == "OUTBOX_OVERFLOW")
        .collect();
    assert_eq!(overflow.len(), 1, "{lines:?}");
    let dropped = overflow[0]["OutboxDropped"].as_u64().unwrap() as usize;
    assert!(
        changes > 0 && dropped > 0,
        "{changes} delivered, {dropped} dropped"
    );
    assert_eq!(
        changes + dropped,
        100,
        "every change is delivered or counted"
    );
    assert_eq!(overflow[0]["OutboxMaxSize"], 4096);
    assert!(is_json_time(
        overflow[0]["OutboxDroppedFirst"].as_str().unwrap()
    ));
    assert!(overflow[0]["Message"]
        .as_str()
        .unwrap()
        .contains("were dropped"));
    // The oldest are the ones kept: the first values in event order.
    let kept: Vec<&str> = events
        .iter()
        .filter(|e| e["EventType"] == "CHANGE")
        .map(|e| e["RegistryValueName"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..changes)
        .map(|i| format!("HKLM\\SOFTWARE\\Watched\\V{i:03}"))
        .collect();
    assert_eq!(kept, want);
    // Reported once.
    env.write_hive("SOFTWARE", &tree(100, 1000));
    env.once("regmon.conf");
    assert_eq!(env.lines("missing/out.log").len(), lines.len());
}
