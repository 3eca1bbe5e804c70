//! A hive file changed under a running scan: truncated, extended, replaced
//! by a rename, rewritten in place (as `cp` does: truncate, then write), at
//! several moments of a `--once` scan of a large hive. regmon must never
//! die by a signal (a memory map of a truncated file faults: SIGBUS), must
//! end well or with an error naming the file, and must report nothing: the
//! hive's content never changes, so any event is one the damage made up
//! (a DELETE for values it hid, above all).
//!
//! `REGMON_TEST_BIN` runs it against another build of regmon (e.g. one
//! that maps the file, to see the test catch the fault).

mod common;

use common::*;
use hive::write::{to_bytes, KeyNode, WriteOptions};
use hive::ValueType;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// About 60 MB: 1000 keys of 60 values of 1 KB, so a scan lasts long
/// enough (seconds here) to be hit in the middle.
fn big_tree() -> KeyNode {
    let mut root = KeyNode::new("ROOT");
    for k in 0..1000u32 {
        let key = root.key_mut(&format!("G{:02}\\K{k:04}", k % 20));
        for i in 0..60u32 {
            let data: Vec<u8> = (0..1024u32).map(|j| (j ^ k ^ (i << 3)) as u8).collect();
            key.set_value(&format!("v{i:02}"), ValueType::BINARY, data);
        }
    }
    root
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// `truncate -s` to a fifth of the file.
    Truncate,
    /// Zeros appended.
    Extend,
    /// Truncated, then extended back to its size with zeros.
    TruncateExtend,
    /// The same bytes written beside and renamed over it.
    Replace,
    /// Truncated to nothing, then written again in chunks (as `cp` does).
    Rewrite,
}

fn apply(f: Fault, path: &Path, good: &[u8]) {
    let open = || std::fs::OpenOptions::new().write(true).open(path).unwrap();
    match f {
        Fault::Truncate => open().set_len(good.len() as u64 / 5).unwrap(),
        Fault::Extend => open().set_len(good.len() as u64 + (8 << 20)).unwrap(),
        Fault::TruncateExtend => {
            let file = open();
            file.set_len(good.len() as u64 / 3).unwrap();
            file.set_len(good.len() as u64).unwrap();
        }
        Fault::Replace => restore(path, good),
        Fault::Rewrite => {
            let mut file = open();
            file.set_len(0).unwrap();
            for chunk in good.chunks(4 << 20) {
                file.write_all(chunk).unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// Puts the good file back (a new inode, as a restore from backup does).
fn restore(path: &Path, good: &[u8]) {
    let tmp = path.with_extension("restore");
    std::fs::write(&tmp, good).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_hive_changed_during_a_scan_never_kills_regmon_nor_fakes_events() {
    let t0 = Instant::now();
    let bin = std::env::var("REGMON_TEST_BIN").unwrap_or_else(|_| BIN.to_string());
    let env = Env::new();
    let conf = simple_conf(&env, " RegValue 'HKLM\\SOFTWARE\\*'\n Recursive TRUE");
    let good = to_bytes(&big_tree(), &WriteOptions::default());
    let hive = env.path("SOFTWARE");
    restore(&hive, &good);
    let once = || {
        Command::new(&bin)
            .current_dir(env.dir.path())
            // The baseline key and side records: never the real home.
            .env("REGMON_KEY_DIR", env.path(".regmon-keys"))
            .args(["-c", &conf, "--once"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let out = once().wait_with_output().unwrap();
    assert!(out.status.success(), "baseline: {out:?}");
    let first = t0.elapsed();
    env.take("out.log");

    let faults = [
        Fault::Truncate,
        Fault::Rewrite,
        Fault::Extend,
        Fault::Replace,
        Fault::TruncateExtend,
    ];
    // While the file is read (startup takes some of it), mid-scan, late.
    let delays = [15u64, 60, 250, 700];
    let budget = Duration::from_secs(60);
    let mut done = 0;
    let rounds = delays
        .iter()
        .flat_map(|&d| faults.iter().map(move |&f| (f, d)));
    for (i, (fault, delay)) in rounds.enumerate() {
        // A slow machine runs fewer rounds, but every fault once.
        if i >= faults.len() && t0.elapsed() + first > budget {
            break;
        }
        let what = format!("{fault:?} after {delay} ms");
        let child = once();
        std::thread::sleep(Duration::from_millis(delay));
        apply(fault, &hive, &good);
        let out = child.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                out.status.signal(),
                None,
                "{what}: regmon died by a signal: {log}"
            );
        }
        assert!(
            out.status.success() || log.contains("SOFTWARE"),
            "{what}: failed without naming the hive ({}): {log}",
            out.status
        );
        // What happened, for the test's log (--nocapture).
        let said = log
            .lines()
            .find(|l| l.contains("SOFTWARE"))
            .unwrap_or("read whole");
        eprintln!("{what}: {}; {said}", out.status);
        let events = env.take("out.log");
        assert!(
            events.is_empty(),
            "{what}: {} events from an unchanged hive, e.g. {:?}\n{log}",
            events.len(),
            events.first()
        );
        restore(&hive, &good);
        done += 1;
    }
    // Restored: the next scan reads it whole and finds nothing.
    let out = once().wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "after the faults: {log}");
    assert!(!log.contains("could not be read"), "{log}");
    assert_eq!(env.take("out.log"), Vec::<String>::new(), "{log}");
    eprintln!(
        "{done} faults in {:.1} s (one scan {:.1} s, hive {} MB)",
        t0.elapsed().as_secs_f64(),
        first.as_secs_f64(),
        good.len() >> 20
    );
}
