//! `ScanRate` and `LowPriority` end to end: a paced scan takes its values'
//! count over the rate; a low-priority scan runs its threads at nice 19;
//! neither changes what a scan reports.
//!
//! The elapsed-time check is not a performance test: `ScanRate N` promises
//! that a scan reads at most N values per second, so a scan of 2,000 values
//! at 1,000/s cannot take less than about 2 s on any machine, however fast
//! or loaded. Only that floor (with 10% off) is asserted, and a ceiling far
//! above it that only a broken pacer (sleeping per value, or forever) would
//! reach.

mod common;

use common::*;
use hive::write::KeyNode;
use hive::ValueType;
use std::time::{Duration, Instant};

/// A SOFTWARE hive with `keys` keys of `per` DWORD values each; `bump`
/// changes every 10th value's data.
fn tree(keys: u32, per: u32, bump: u32) -> KeyNode {
    let mut root = KeyNode::new("ROOT");
    for k in 0..keys {
        let key = root.key_mut(&format!("App\\K{k:04}"));
        for i in 0..per {
            let data = if i % 10 == 0 { i + bump } else { i };
            key.values.push(hive::write::ValueNode {
                name: format!("V{i:03}").encode_utf16().collect(),
                value_type: ValueType::DWORD,
                data: dword(data),
            });
        }
    }
    root
}

/// A configuration over `SOFTWARE` with `extra` directives and the debug log.
fn conf(env: &Env, extra: &str) -> String {
    let text = format!(
        "LogLevel DEBUG\n<Input regmon>\n Module im_regmon\n HiveFile 'HKLM\\SOFTWARE' 'SOFTWARE'\n \
         RegValue 'HKLM\\SOFTWARE\\*'\n Recursive TRUE\n ScanInterval 0\n{extra}\n</Input>\n{}",
        json_output(&env.abs("out.log"))
    );
    env.write("regmon.conf", &text);
    "regmon.conf".into()
}

#[test]
fn scan_rate_paces_a_scan_to_its_values_per_second() {
    let env = Env::new();
    // 2,000 values in 100 keys.
    env.write_hive("SOFTWARE", &tree(100, 20, 0));
    let c = conf(&env, " ScanRate 1000");
    let t = Instant::now();
    env.once(&c);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1800),
        "2,000 values at 1,000/s took {took:?}"
    );
    assert!(
        took < Duration::from_secs(20),
        "2,000 values at 1,000/s took {took:?}"
    );
}

#[test]
fn a_scan_of_few_values_is_not_held_beyond_its_rate() {
    let env = Env::new();
    // 20 values at 1,000/s: due after 20 ms; well under a second however
    // slow the machine is.
    env.write_hive("SOFTWARE", &tree(2, 10, 0));
    let c = conf(&env, " ScanRate 1000");
    let t = Instant::now();
    env.once(&c);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

/// The nice values of `pid`'s threads: (thread id, nice).
#[cfg(target_os = "linux")]
fn thread_nices(pid: u32) -> Vec<(u32, i32)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        // After "tid (comm) ": field 3 (state) on; nice is field 19.
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let nice = rest.split_whitespace().nth(16).and_then(|n| n.parse().ok());
        let tid = t.file_name().to_string_lossy().parse().ok();
        if let (Some(tid), Some(nice)) = (tid, nice) {
            out.push((tid, nice));
        }
    }
    out
}

#[cfg(target_os = "linux")]
#[test]
fn low_priority_runs_the_scan_threads_at_nice_19() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &tree(150, 20, 0));
    // Paced so the scan lasts ~3 s: time to look at its threads.
    let c = conf(&env, " ScanRate 1000\n LowPriority TRUE");
    let log = std::fs::File::create(env.path("run.log")).unwrap();
    let mut child = env
        .cmd(&["-c", &c, "--once"])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut low_main = false;
    let mut low_other = false;
    let mut seen_normal = None;
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(60) {
        for (tid, nice) in thread_nices(pid) {
            match (tid == pid, nice) {
                (true, 19) => low_main = true,
                (false, 19) => low_other = true,
                (_, n) if seen_normal.is_none() => seen_normal = Some((tid, n)),
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = child.wait().unwrap();
    let log = env.read("run.log");
    assert!(status.success(), "{log}");
    // The streamed scan: the scanning worker and the thread comparing its
    // values with the baseline, both lowered.
    assert!(low_main, "the main thread never ran at nice 19: {log}");
    assert!(low_other, "the scan worker never ran at nice 19: {log}");
    assert!(
        log.contains("at nice 19") && log.contains("I/O class idle"),
        "{log}"
    );
}

#[test]
fn paced_low_priority_scans_report_what_unpaced_ones_do() {
    let plain = Env::new();
    let paced = Env::new();
    let confs = [
        conf(&plain, ""),
        conf(&paced, " ScanRate 5000\n LowPriority TRUE"),
    ];
    for (env, c) in [&plain, &paced].into_iter().zip(&confs) {
        env.write_hive("SOFTWARE", &tree(50, 20, 0));
        env.once(c);
        // Every 10th value changed, and keys added and removed.
        let mut t = tree(50, 20, 7);
        let gone: Vec<u16> = "K0049".encode_utf16().collect();
        t.key_mut("App").subkeys.retain(|k| k.name != gone);
        t.key_mut("App\\New")
            .set_value("N", ValueType::DWORD, dword(1));
        env.write_hive("SOFTWARE", &t);
        env.once(c);
    }
    let a = plain.lines("out.log");
    let b = paced.lines("out.log");
    // 49 keys x 2 changed values, 20 values of the removed key, 1 added.
    assert_eq!(a.len(), 49 * 2 + 20 + 1, "{a:#?}");
    assert_eq!(a, b);
}

#[test]
fn verify_lists_scan_rate_and_low_priority() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &tree(1, 1, 0));
    let c = conf(&env, " ScanRate 250\n LowPriority TRUE");
    let out = env.run(&["-c", &c, "--verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let line = |k: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(k))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
    };
    assert_eq!(line("ScanRate").as_deref(), Some("250 values/s"), "{text}");
    assert_eq!(line("LowPriority").as_deref(), Some("TRUE"), "{text}");
}
