//! `Incremental TRUE` on the live registry (Windows only; under Wine
//! through cargo's runner, see scripts/wine-test.sh): values changed with
//! `reg add` / `reg delete` give the events a full scan gives. regmon runs
//! in this process, through its library, as a service process does: the
//! first scan is the full rehash, the next ones carry the keys whose
//! `RegQueryInfoKeyW` last-write time and counts did not move.

#![cfg(windows)]

mod common;

use regmon::runtime::Runtime;
use std::path::Path;
use std::process::Command;

const KEY: &str = r"HKCU\Software\RegmonIncrementalLive";

fn reg(args: &[&str]) {
    let out = Command::new("reg").args(args).output().expect("reg runs");
    assert!(out.status.success(), "reg {args:?}: {out:?}");
}

fn runtime(dir: &Path, extra: &str) -> Runtime {
    let conf = dir.join("regmon.conf");
    std::fs::write(
        &conf,
        format!(
            "<Extension json>\nModule xm_json\n</Extension>\n<Input r>\nModule im_regmon\n\
             RegValue '{KEY}\\*'\nRecursive TRUE\nScanInterval 0\n{extra}</Input>\n\
             <Output o>\nModule om_file\nFile '{}'\nExec to_json();\n</Output>\n\
             <Route route>\nPath r => o\n</Route>\n",
            dir.join("out.log").display()
        ),
    )
    .unwrap();
    Runtime::new(nxconf::load(&conf).unwrap()).unwrap()
}

/// The events written since the last call: `EventType name Digest`.
fn take(dir: &Path) -> Vec<String> {
    common::take_event_summaries(&dir.join("out.log"))
}

#[test]
fn live_hinted_scans_report_what_full_scans_report() {
    let _ = Command::new("reg").args(["delete", KEY, "/f"]).output();
    for (k, v) in [("", "A"), (r"\Sub", "C"), (r"\Other", "D")] {
        reg(&[
            "add",
            &format!("{KEY}{k}"),
            "/v",
            v,
            "/t",
            "REG_DWORD",
            "/d",
            "1",
            "/f",
        ]);
    }
    let (inc_dir, full_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (inc, full) = (inc_dir.path(), full_dir.path());
    std::env::set_var("REGMON_KEY_DIR", inc.join("keys"));
    let mut rt_inc = runtime(inc, "Incremental TRUE\nFullScanInterval 3600\n");
    let mut rt_full = runtime(full, "");
    let steps: [&[&str]; 5] = [
        &["add", KEY, "/v", "A", "/t", "REG_DWORD", "/d", "2", "/f"],
        &[
            "add",
            &format!(r"{KEY}\Sub"),
            "/v",
            "C",
            "/t",
            "REG_SZ",
            "/d",
            "c",
            "/f",
        ],
        &[
            "add",
            &format!(r"{KEY}\Other"),
            "/v",
            "E",
            "/t",
            "REG_DWORD",
            "/d",
            "5",
            "/f",
        ],
        &["delete", &format!(r"{KEY}\Other"), "/v", "D", "/f"],
        &[
            "add",
            &format!(r"{KEY}\Sub\New"),
            "/v",
            "N",
            "/t",
            "REG_DWORD",
            "/d",
            "7",
            "/f",
        ],
    ];
    let owned: Vec<Vec<String>> = steps
        .iter()
        .map(|s| s.iter().map(|a| a.to_string()).collect())
        .collect();
    rt_inc.scan(0).unwrap();
    rt_full.scan(0).unwrap();
    assert!(take(inc).is_empty() && take(full).is_empty());
    // Nothing changed: nothing reported.
    rt_inc.scan(0).unwrap();
    rt_full.scan(0).unwrap();
    assert!(take(inc).is_empty() && take(full).is_empty());
    for (n, args) in owned.iter().enumerate() {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        reg(&args);
        rt_inc.scan(0).unwrap();
        rt_full.scan(0).unwrap();
        let (a, b) = (take(inc), take(full));
        assert!(!a.is_empty(), "step {n}: no events");
        assert_eq!(a, b, "step {n}");
    }
    let _ = Command::new("reg").args(["delete", KEY, "/f"]).output();
}
