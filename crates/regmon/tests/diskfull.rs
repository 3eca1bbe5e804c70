//! A full disk under the output or under CacheDir: regmon reports it,
//! keeps its baseline and queued events, and delivers every change once
//! when space is back. The disk is a small tmpfs mounted by the test, which
//! needs root (scripts/test.sh runs these as root, with --ignored).

mod common;

use common::*;
use hive::write::KeyNode;
use hive::ValueType;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A small tmpfs, unmounted when dropped.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs on {}", dir.display());
        SmallDisk {
            dir: dir.to_path_buf(),
        }
    }

    /// Fills the disk with one file (removed by `free`).
    fn fill(&self) {
        use std::io::Write as _;
        let mut f = std::fs::File::create(self.dir.join("filler")).unwrap();
        let block = vec![0x55u8; 4096];
        // Bounded: the disk is a few MB.
        for _ in 0..100_000 {
            if f.write_all(&block).is_err() {
                break;
            }
        }
        let _ = f.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.dir.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

fn tree(n: u32) -> KeyNode {
    let mut root = KeyNode::new("ROOT");
    let k = root.key_mut("Policies\\P");
    k.set_value("v", ValueType::DWORD, n.to_le_bytes().to_vec());
    k.set_value("s", ValueType::SZ, utf16z("same"));
    root
}

fn conf(env: &Env, cache: &Path, out: &Path) -> String {
    let text = format!(
        "CacheDir '{}'\n<Input regmon>\n Module im_regmon\n RegValue 'HKLM\\SOFTWARE\\Policies\\*'\n \
         Recursive TRUE\n HiveFile 'HKLM\\SOFTWARE' 'SOFTWARE'\n</Input>\n{}",
        cache.display(),
        json_output(&out.display().to_string())
    );
    env.write("r.conf", &text);
    "r.conf".into()
}

fn once(env: &Env, conf: &str) -> (Option<i32>, String) {
    let out = env.run(&["-c", conf, "--once"]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn changes(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(normalise)
        .collect()
}

#[test]
#[ignore = "needs root: mounts a small tmpfs and fills it"]
fn full_output_disk_keeps_events_until_space_returns() {
    let env = Env::new();
    let disk = SmallDisk::mount(&env.path("outdisk"), "1m");
    let out = disk.dir.join("events.log");
    let conf = conf(&env, &env.path("cache"), &out);
    env.write_hive("SOFTWARE", &tree(1));
    let (code, log) = once(&env, &conf);
    assert_eq!(code, Some(0), "{log}");

    disk.fill();
    env.write_hive("SOFTWARE", &tree(2));
    let (code, log) = once(&env, &conf);
    assert!(code.is_some(), "no signal death: {log}");
    assert!(
        log.contains(&out.display().to_string()) && log.contains("No space left"),
        "the error names the file and the cause: {log}"
    );
    assert!(changes(&out).is_empty());

    // Nothing new happens meanwhile; space comes back; the queued CHANGE is
    // delivered once.
    disk.free();
    let (code, log) = once(&env, &conf);
    assert_eq!(code, Some(0), "{log}");
    let lines = changes(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("\"EventType\":\"CHANGE\""), "{lines:?}");
    let (code, log) = once(&env, &conf);
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(changes(&out).len(), 1, "delivered once");
}

#[test]
#[ignore = "needs root: mounts a small tmpfs and fills it"]
fn full_cache_disk_keeps_the_baseline_and_reports_later() {
    let env = Env::new();
    let disk = SmallDisk::mount(&env.path("cachedisk"), "2m");
    let out = env.path("events.log");
    let conf = conf(&env, &disk.dir.join("cache"), &out);
    env.write_hive("SOFTWARE", &tree(1));
    let (code, log) = once(&env, &conf);
    assert_eq!(code, Some(0), "{log}");

    disk.fill();
    env.write_hive("SOFTWARE", &tree(2));
    let (code, log) = once(&env, &conf);
    assert!(code.is_some(), "no signal death: {log}");
    assert!(
        log.contains("regmon-regmon.sqlite") && log.contains("no space left"),
        "the error names the baseline and the cause: {log}"
    );

    // Whatever this scan could or could not commit, once space is back the
    // change is reported exactly once and the baseline is whole.
    disk.free();
    let (code, log) = once(&env, &conf);
    assert_eq!(code, Some(0), "{log}");
    let (code, log) = once(&env, &conf);
    assert_eq!(code, Some(0), "{log}");
    let lines = changes(&out);
    assert_eq!(lines.len(), 1, "{lines:?}\n{log}");
    assert!(lines[0].contains("\"EventType\":\"CHANGE\""), "{lines:?}");
    env.write_hive("SOFTWARE", &tree(3));
    let (code, log) = once(&env, &conf);
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(changes(&out).len(), 2);
}
