//! Limits: a configuration of 10,000 RegValue lines, a key path deeper than
//! Windows' 512 levels, a 100 MB value, a million values in one key. Each
//! ends in events or clear warnings, never a panic; the hives are built
//! here with the project's writer. Times are printed (`--nocapture`) for
//! the README's figures, not asserted.

mod common;

use common::*;
use hive::write::{KeyNode, ValueNode};
use hive::ValueType;
use std::time::Instant;

fn value(name: &str, ty: ValueType, data: Vec<u8>) -> ValueNode {
    ValueNode {
        name: name.encode_utf16().collect(),
        value_type: ty,
        data,
    }
}

/// `regmon -c CONF --once`, timed; its log.
fn timed_once(env: &Env, conf: &str, what: &str) -> String {
    let t = Instant::now();
    let log = env.once(conf);
    eprintln!("{what}: {:.2}s", t.elapsed().as_secs_f64());
    log
}

/// Events of `out.log` as (EventType, RegistryValueName), the file removed.
fn events(env: &Env) -> Vec<(String, String)> {
    let text = env.read("out.log");
    std::fs::remove_file(env.path("out.log")).ok();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["EventType"].as_str().unwrap_or_default().to_string(),
                v["RegistryValueName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

fn ev(kind: &str, name: &str) -> (String, String) {
    (kind.to_string(), name.to_string())
}

/// 10,000 keys `K00000`.. under SOFTWARE, each with `v` (= i) and `w`.
fn keys_tree(n: u32, bump: &[u32]) -> KeyNode {
    let mut root = KeyNode::new("ROOT");
    for i in 0..n {
        let mut k = KeyNode::new(&format!("K{i:05}"));
        let x = if bump.contains(&i) { i + 1_000_000 } else { i };
        k.values.push(value("v", ValueType::DWORD, dword(x)));
        k.values.push(value("w", ValueType::DWORD, dword(x)));
        root.subkeys.push(k);
    }
    root
}

#[test]
fn ten_thousand_regvalue_lines() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &keys_tree(10_000, &[]));
    // Half literal value paths, half a wildcard value name in a literal key.
    let mut directives = String::new();
    for i in 0..10_000 {
        if i % 2 == 0 {
            directives.push_str(&format!(" RegValue 'HKLM\\SOFTWARE\\K{i:05}\\v'\n"));
        } else {
            directives.push_str(&format!(" RegValue 'HKLM\\SOFTWARE\\K{i:05}\\*'\n"));
        }
    }
    let conf = simple_conf(&env, &directives);
    let t = Instant::now();
    let out = env.run(&["-c", &conf, "--verify"]);
    eprintln!(
        "--verify, 10,000 RegValue: {:.2}s",
        t.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = timed_once(&env, &conf, "first scan, 10,000 RegValue");
    assert!(log.contains("15000 values"), "{log}");
    env.write_hive("SOFTWARE", &keys_tree(10_000, &[2, 3, 9_999]));
    timed_once(&env, &conf, "second scan, 10,000 RegValue");
    assert_eq!(
        events(&env),
        [
            ev("CHANGE", r"HKLM\SOFTWARE\K00002\v"),
            ev("CHANGE", r"HKLM\SOFTWARE\K00003\v"),
            ev("CHANGE", r"HKLM\SOFTWARE\K00003\w"),
            ev("CHANGE", r"HKLM\SOFTWARE\K09999\v"),
            ev("CHANGE", r"HKLM\SOFTWARE\K09999\w"),
        ]
    );
}

/// A chain of `depth` keys `d1\d2\...` under SOFTWARE, a value `x` (= n)
/// at every 100th level.
fn deep_tree(depth: usize, n: u32) -> KeyNode {
    let mut node = KeyNode::new(&format!("d{depth}"));
    node.values.push(value("x", ValueType::DWORD, dword(n)));
    for level in (1..depth).rev() {
        let mut parent = KeyNode::new(&format!("d{level}"));
        if level % 100 == 0 {
            parent.values.push(value("x", ValueType::DWORD, dword(n)));
        }
        parent.subkeys.push(node);
        node = parent;
    }
    let mut root = KeyNode::new("ROOT");
    root.subkeys.push(node);
    root
}

/// Each line of `log` cut to its first and last 100 characters.
fn short_lines(log: &str) -> String {
    log.lines()
        .map(|l| {
            let c: Vec<char> = l.chars().collect();
            if c.len() <= 200 {
                return l.to_string();
            }
            let head: String = c[..100].iter().collect();
            let tail: String = c[c.len() - 100..].iter().collect();
            format!("{head} ... {tail}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_key_path_deeper_than_512_levels() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &deep_tree(600, 1));
    let conf = simple_conf(&env, " RegValue 'HKLM\\SOFTWARE\\*'\n Recursive TRUE");
    let log = timed_once(&env, &conf, "first scan, 600 levels");
    // HKLM\SOFTWARE\d1...d511 is 512 levels below the root: its subkeys
    // would be deeper than Windows allows and are not scanned.
    let at: Vec<String> = (1..=511).map(|l| format!("d{l}")).collect();
    let key = format!("HKLM\\SOFTWARE\\{}", at.join("\\"));
    assert!(
        log.contains(&format!(
            "{key}: key nesting deeper than 512 levels (the Windows limit)"
        )),
        "{}",
        short_lines(&log)
    );
    assert!(
        log.contains("5 values"),
        "{}",
        &log[log.len().saturating_sub(2000)..]
    );
    env.write_hive("SOFTWARE", &deep_tree(600, 2));
    timed_once(&env, &conf, "second scan, 600 levels");
    let got = events(&env);
    let want: Vec<(String, String)> = (1..=5)
        .map(|h| {
            let path: Vec<String> = (1..=h * 100).map(|l| format!("d{l}")).collect();
            ev("CHANGE", &format!("HKLM\\SOFTWARE\\{}\\x", path.join("\\")))
        })
        .collect();
    assert_eq!(got, want, "no event (and no DELETE) past the limit");
    // The hive tools walk it too.
    let out = env.run(&["hive", "dump", "SOFTWARE"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 6);
}

#[test]
fn a_100_mb_value() {
    const SIZE: usize = 100 << 20;
    let env = Env::new();
    let tree = |last: u8| {
        let mut data = vec![0x5a; SIZE];
        data[SIZE - 1] = last;
        let mut root = KeyNode::new("ROOT");
        let mut k = KeyNode::new("Big");
        k.values.push(value("blob", ValueType::BINARY, data));
        k.values.push(value("small", ValueType::DWORD, dword(1)));
        root.subkeys.push(k);
        root
    };
    env.write_hive("SOFTWARE", &tree(0));
    let conf = simple_conf(&env, " RegValue 'HKLM\\SOFTWARE\\Big\\*'\n ReportData TRUE");
    timed_once(&env, &conf, "first scan, 100 MB value");
    env.write_hive("SOFTWARE", &tree(1));
    timed_once(&env, &conf, "second scan, 100 MB value");
    let text = env.read("out.log");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text:.2000}");
    // The event carries MaxDataSize (4096) bytes of the data, base64, and says it was cut.
    assert!(lines[0].len() < 16 * 1024, "{} bytes", lines[0].len());
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["EventType"], "CHANGE");
    assert_eq!(v["ValueSize"], SIZE as u64);
    assert_eq!(v["ValueTruncated"], true);
    assert_eq!(v["PrevValueTruncated"], true);
    let mut data = vec![0x5a; SIZE];
    data[SIZE - 1] = 1;
    assert_eq!(v["Digest"], sha1_hex(&data));
    // What an event may carry is bounded: MaxDataSize has a ceiling.
    let conf = simple_conf(
        &env,
        " RegValue 'HKLM\\SOFTWARE\\Big\\*'\n ReportData TRUE\n MaxDataSize 200000000",
    );
    let out = env.run(&["-c", &conf, "--verify"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("regmon.conf:")
            && err.contains("MaxDataSize 200000000 is over the limit of 1048576 bytes"),
        "{err}"
    );
}

/// One key with `n` values `v0000000`..; the values in `bump` changed.
fn wide_tree(n: u32, bump: &[u32]) -> KeyNode {
    let mut k = KeyNode::new("Wide");
    k.values.reserve(n as usize);
    for i in 0..n {
        let x = if bump.contains(&i) { i + 1 } else { i };
        k.values
            .push(value(&format!("v{i:07}"), ValueType::DWORD, dword(x)));
    }
    let mut root = KeyNode::new("ROOT");
    root.subkeys.push(k);
    root
}

#[test]
fn a_million_values_in_one_key() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &wide_tree(1_000_000, &[]));
    let conf = simple_conf(&env, " RegValue 'HKLM\\SOFTWARE\\Wide\\*'");
    let log = timed_once(&env, &conf, "first scan, 1,000,000 values");
    assert!(log.contains("1000000 values"), "{log}");
    env.write_hive("SOFTWARE", &wide_tree(1_000_000, &[0, 999_999]));
    timed_once(&env, &conf, "second scan, 1,000,000 values");
    assert_eq!(
        events(&env),
        [
            ev("CHANGE", r"HKLM\SOFTWARE\Wide\v0000000"),
            ev("CHANGE", r"HKLM\SOFTWARE\Wide\v0999999"),
        ]
    );
}
