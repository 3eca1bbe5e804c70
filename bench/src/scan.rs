//! `regmon-bench --scan HIVE...`: regmon's own job on a large hive, beside
//! the bare walk. For each hive it mounts the file at `HKLM\X` under an input
//! with `RegValue 'HKLM\X\*'` and `Recursive TRUE`, and times, each in its own
//! process (peak memory is the child's own):
//!
//! * `build`: `regmon -c FILE --once` with no baseline (the first scan:
//!   walk, digest, write the whole SQLite baseline);
//! * `rescan`: the same with the baseline in place and nothing changed
//!   (walk, digest, compare with the baseline read from disk);
//! * `walk`: the hive-reader benchmark's `ours` (walk + data + SHA-1, the
//!   file opened as regmon opens it: read into memory, checked);
//! * `walk-map`: the same over a memory map (`ours-map`);
//! * with `--against REGMON`, `build-2` and `rescan-2`: the same jobs by
//!   another regmon binary (e.g. a release that mapped the file), with the
//!   same configuration and its own baseline.

use crate::{measure, median};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The regmon binary beside this one (built with it).
pub(crate) fn regmon_bin() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin = me.with_file_name("regmon");
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not found: build it first (cargo build --release -p regmon)",
            bin.display()
        ))
    }
}

pub fn bench_scan(hive: &Path, runs: usize, against: Option<&Path>) -> Result<(), String> {
    let regmon = regmon_bin()?;
    let hive = std::fs::canonicalize(hive).map_err(|e| format!("{}: {e}", hive.display()))?;
    let size = std::fs::metadata(&hive).map_err(|e| e.to_string())?.len();
    let dir = std::env::temp_dir().join(format!("regmon-scan-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let conf = dir.join("scan.conf");
    std::fs::write(
        &conf,
        format!(
            "LogLevel WARNING\n<Input big>\n Module im_regmon\n RegValue 'HKLM\\X\\*'\n Recursive TRUE\n\
             HiveFile 'HKLM\\X' '{}'\n ScanInterval 0\n</Input>\n",
            hive.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let cache = dir.join("regmon-cache");
    let once_with = |bin: &Path| {
        let mut c = Command::new(bin);
        c.arg("-c").arg(&conf).arg("--once");
        c
    };
    let regmon_once = || once_with(&regmon);
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let (mut build, mut rescan, mut walk) = (Vec::new(), Vec::new(), Vec::new());
    let (mut walk_map, mut build2, mut rescan2) = (Vec::new(), Vec::new(), Vec::new());
    // One warm-up of each, then interleaved runs.
    let _ = std::fs::remove_dir_all(&cache);
    measure(&mut regmon_once(), true)?;
    measure(&mut regmon_once(), true)?;
    for _ in 0..runs {
        let _ = std::fs::remove_dir_all(&cache);
        build.push(measure(&mut regmon_once(), true)?);
        rescan.push(measure(&mut regmon_once(), true)?);
        walk.push(measure(
            Command::new(&me).arg("--one").arg("ours").arg(&hive),
            true,
        )?);
        walk_map.push(measure(
            Command::new(&me).arg("--one").arg("ours-map").arg(&hive),
            true,
        )?);
        if let Some(other) = against {
            let _ = std::fs::remove_dir_all(&cache);
            build2.push(measure(&mut once_with(other), true)?);
            rescan2.push(measure(&mut once_with(other), true)?);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let wall = |v: &[crate::Run]| median(v.iter().map(|r| r.wall).collect());
    let cpu = |v: &[crate::Run]| median(v.iter().map(|r| r.cpu).collect());
    let rss = |v: &[crate::Run]| v.iter().map(|r| r.rss_kb).max().unwrap_or(0) as f64 / 1024.0;
    let w = wall(&walk);
    println!(
        "\n== scan {}: {:.1} MB; median of {runs} runs (whole processes)",
        hive.display(),
        size as f64 / 1e6
    );
    println!(
        "{:<8} {:>8} {:>8} {:>10} {:>9} {:>9}",
        "job", "wall s", "cpu s", "peak RSS", "RSS/file", "vs walk"
    );
    for (name, v) in [
        ("walk", &walk),
        ("walk-map", &walk_map),
        ("build", &build),
        ("rescan", &rescan),
        ("build-2", &build2),
        ("rescan-2", &rescan2),
    ] {
        if v.is_empty() {
            continue;
        }
        println!(
            "{:<8} {:>8.3} {:>8.3} {:>7.1} MB {:>8.2}x {:>8.2}x",
            name,
            wall(v),
            cpu(v),
            rss(v),
            rss(v) * 1024.0 * 1024.0 / size as f64,
            wall(v) / w
        );
    }
    println!(
        "targets: rescan within 2x of the walk: {}; build within 4x: {}",
        if wall(&rescan) <= 2.0 * w {
            "met"
        } else {
            "MISSED"
        },
        if wall(&build) <= 4.0 * w {
            "met"
        } else {
            "MISSED"
        }
    );
    Ok(())
}
