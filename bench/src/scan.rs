//! `regmon-bench --scan HIVE...`: regmon's own job on a large hive, beside
//! the bare walk. For each hive it mounts the file at `HKLM\X` under an input
//! with `RegValue 'HKLM\X\*'` and `Recursive TRUE`, and times, each in its own
//! process (peak memory is the child's own):
//!
//! * `walk`: the hive-reader benchmark's `ours` (walk + data + SHA-1, the
//!   file opened as regmon opens it: read into memory, checked);
//! * `walk-map`: the same over a memory map (`ours-map`);
//! * `build`: `regmon -c FILE --once` with no baseline (the first scan:
//!   walk, digest, write the whole SQLite baseline);
//! * `rescan`: the same with the baseline in place and nothing changed
//!   (walk, digest, compare with the baseline read from disk);
//! * `rescan-1%`: the baseline built from the hive, rescanned against a copy
//!   of it with the data of 1% of its values changed (every 100th value in
//!   walk order, one byte flipped in place: same layout, same keys). The copy
//!   is made once, before the timed runs; the baseline is restored from a
//!   copy before each run, so every run compares the same;
//! * `hinted`: an input with `Incremental TRUE`: its second `--once` run,
//!   nothing changed, may carry keys whose stats equal the baseline's
//!   (FullScanInterval is not due). Whether regmon said it used hints is
//!   printed (its log lines naming hints or carried keys);
//! * with `--against REGMON`, `build-2`, `rescan-2` and `rescan-1%-2`: the
//!   same jobs by another regmon binary (e.g. a release that mapped the
//!   file), with the same configuration and its own baseline.
//!
//! The hive is mounted through a hard link (a copy where links fail) in the
//! bench's folder, which is switched between the hive and its changed copy:
//! the configuration, and so the baseline's scope, stay the same.

use crate::{measure, median, Run};
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

/// Writes `out`: `hive` with one byte of the data of every `every`th value
/// (walk order) flipped in place. Values whose data are not one stretch of
/// the file (big data, split in segments) are passed over for the next.
/// Returns how many values were changed and how many there are.
pub(crate) fn changed_copy(hive: &Path, out: &Path, every: u64) -> Result<(u64, u64), String> {
    let file = hive::HiveFile::read(hive).map_err(|e| format!("{}: {e}", hive.display()))?;
    let base = file.bytes().as_ptr() as usize;
    let len = file.bytes().len();
    let h = file
        .hive()
        .map_err(|e| format!("{}: {e}", hive.display()))?;
    let root = h.root().map_err(|e| format!("{}: {e}", hive.display()))?;
    let (mut seen, mut due) = (0u64, false);
    let mut at: Vec<usize> = Vec::new();
    hive::walk(root, h.cells().bins_len(), |step| {
        if let hive::Step::Key(chain) = step {
            if let Ok(values) = chain[chain.len() - 1].values() {
                for v in values.flatten() {
                    seen += 1;
                    due |= seen % every == 0;
                    if !due {
                        continue;
                    }
                    if let Ok(std::borrow::Cow::Borrowed(d)) = v.data() {
                        let p = d.as_ptr() as usize;
                        if !d.is_empty() && p >= base && p < base + len {
                            at.push(p - base);
                            due = false;
                        }
                    }
                }
            }
        }
    });
    let mut bytes = file.bytes().to_vec();
    drop(file);
    for &i in &at {
        bytes[i] ^= 0x01;
    }
    std::fs::write(out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok((at.len() as u64, seen))
}

/// Points `link` at `target`: a hard link, or a copy where links fail.
fn point(link: &Path, target: &Path) -> Result<(), String> {
    let _ = std::fs::remove_file(link);
    if std::fs::hard_link(target, link).is_err() {
        std::fs::copy(target, link).map_err(|e| format!("{}: {e}", link.display()))?;
    }
    Ok(())
}

/// Copies the files of folder `from` into a fresh folder `to`.
fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for e in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let e = e.map_err(|e| e.to_string())?;
        if e.file_type().map_err(|e| e.to_string())?.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).map_err(|x| x.to_string())?;
        }
    }
    Ok(())
}

/// Lines of a regmon log that say a scan used hints (carried keys).
fn hint_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("hint") || l.contains("carried")
        })
        .collect()
}

pub fn bench_scan(hive: &Path, runs: usize, against: Option<&Path>) -> Result<(), String> {
    let regmon = regmon_bin()?;
    let hive = std::fs::canonicalize(hive).map_err(|e| format!("{}: {e}", hive.display()))?;
    let size = std::fs::metadata(&hive).map_err(|e| e.to_string())?.len();
    let dir = std::env::temp_dir().join(format!("regmon-scan-bench-{}", std::process::id()));
    let r = bench_in(&dir, &regmon, &hive, size, runs, against);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn bench_in(
    dir: &Path,
    regmon: &Path,
    hive: &Path,
    size: u64,
    runs: usize,
    against: Option<&Path>,
) -> Result<(), String> {
    let inc = dir.join("incremental");
    std::fs::create_dir_all(&inc).map_err(|e| e.to_string())?;
    let mounted = dir.join("X.hive");
    let changed = dir.join("changed.hive");
    // In a child process: the copy's memory would otherwise stay in this
    // process and count in every later child's peak RSS (a forked child's
    // high-water mark starts at its parent's resident size).
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let made = measure(
        Command::new(&me)
            .arg("--changed-copy")
            .arg(hive)
            .arg(&changed),
        false,
    )?;
    let (n_changed, n_values) = made
        .out
        .split_whitespace()
        .filter_map(|w| w.parse::<u64>().ok())
        .fold((None, None), |(a, b), n| match a {
            None => (Some(n), b),
            Some(_) => (a, b.or(Some(n))),
        });
    let (n_changed, n_values) = (n_changed.unwrap_or(0), n_values.unwrap_or(0));
    let conf_text = |extra: &str| {
        format!(
            "LogLevel {}\n<Input big>\n Module im_regmon\n RegValue 'HKLM\\X\\*'\n Recursive TRUE\n\
             HiveFile 'HKLM\\X' '{}'\n ScanInterval 0\n{extra}</Input>\n",
            if extra.is_empty() { "WARNING" } else { "INFO" },
            mounted.display()
        )
    };
    let conf = dir.join("scan.conf");
    std::fs::write(&conf, conf_text("")).map_err(|e| e.to_string())?;
    let conf_inc = inc.join("scan.conf");
    std::fs::write(&conf_inc, conf_text(" Incremental TRUE\n")).map_err(|e| e.to_string())?;
    let cache = dir.join("regmon-cache");
    let saved = dir.join("baseline-of-the-original");
    let cache_inc = inc.join("regmon-cache");
    let once_with = |bin: &Path, conf: &Path| {
        let mut c = Command::new(bin);
        c.arg("-c").arg(conf).arg("--once");
        c
    };
    let regmon_once = || once_with(regmon, &conf);
    let (mut build, mut rescan, mut rescan1, mut hinted) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut walk, mut walk_map) = (Vec::new(), Vec::new());
    let (mut build2, mut rescan2, mut rescan1_2) = (Vec::new(), Vec::new(), Vec::new());
    let mut hint_said: Vec<String> = Vec::new();
    // The 1%-change rescan of `bin`: from the baseline of the original
    // (saved), against the changed copy; the original mounted again after.
    let one_percent = |bin: &Path| -> Result<Run, String> {
        copy_dir(&saved, &cache)?;
        point(&mounted, &changed)?;
        let r = measure(&mut once_with(bin, &conf), true);
        point(&mounted, hive)?;
        r
    };
    point(&mounted, hive)?;
    // One warm-up of each, then interleaved runs.
    let _ = std::fs::remove_dir_all(&cache);
    measure(&mut regmon_once(), true)?;
    measure(&mut regmon_once(), true)?;
    for _ in 0..runs {
        let _ = std::fs::remove_dir_all(&cache);
        build.push(measure(&mut regmon_once(), true)?);
        rescan.push(measure(&mut regmon_once(), true)?);
        copy_dir(&cache, &saved)?;
        rescan1.push(one_percent(regmon)?);
        // Incremental: a first run builds, the second may use hints.
        let _ = std::fs::remove_dir_all(&cache_inc);
        measure(&mut once_with(regmon, &conf_inc), true)?;
        let h = measure(&mut once_with(regmon, &conf_inc), false)?;
        hint_said = hint_lines(&h.err).iter().map(|s| s.to_string()).collect();
        hinted.push(h);
        walk.push(measure(
            Command::new(&me).arg("--one").arg("ours").arg(hive),
            true,
        )?);
        walk_map.push(measure(
            Command::new(&me).arg("--one").arg("ours-map").arg(hive),
            true,
        )?);
        if let Some(other) = against {
            let _ = std::fs::remove_dir_all(&cache);
            build2.push(measure(&mut once_with(other, &conf), true)?);
            rescan2.push(measure(&mut once_with(other, &conf), true)?);
            copy_dir(&cache, &saved)?;
            rescan1_2.push(one_percent(other)?);
        }
    }
    let wall = |v: &[Run]| median(v.iter().map(|r| r.wall).collect());
    let cpu = |v: &[Run]| median(v.iter().map(|r| r.cpu).collect());
    let rss = |v: &[Run]| v.iter().map(|r| r.rss_kb).max().unwrap_or(0) as f64 / 1024.0;
    let w = wall(&walk);
    println!(
        "\n== scan {}: {:.1} MB, {n_values} values ({n_changed} changed for rescan-1%); \
         median of {runs} runs (whole processes)",
        hive.display(),
        size as f64 / 1e6
    );
    println!(
        "{:<11} {:>8} {:>8} {:>10} {:>9} {:>9}",
        "job", "wall s", "cpu s", "peak RSS", "RSS/file", "vs walk"
    );
    for (name, v) in [
        ("walk", &walk),
        ("walk-map", &walk_map),
        ("build", &build),
        ("rescan", &rescan),
        ("rescan-1%", &rescan1),
        ("hinted", &hinted),
        ("build-2", &build2),
        ("rescan-2", &rescan2),
        ("rescan-1%-2", &rescan1_2),
    ] {
        if v.is_empty() {
            continue;
        }
        println!(
            "{:<11} {:>8.3} {:>8.3} {:>7.1} MB {:>8.2}x {:>8.2}x",
            name,
            wall(v),
            cpu(v),
            rss(v),
            rss(v) * 1024.0 * 1024.0 / size as f64,
            wall(v) / w
        );
    }
    match hint_said.as_slice() {
        [] => println!(
            "hinted: regmon logged nothing about hints: a full scan (Incremental not built in this binary?)"
        ),
        lines => println!("hinted: regmon said: {}", lines.join(" | ")),
    }
    let peak = [&build, &rescan, &rescan1, &hinted]
        .iter()
        .map(|v| rss(v))
        .fold(0.0, f64::max);
    let met = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "targets: build <= 2.0x the walk: {}; rescan <= 1.2x: {}; rescan-1% <= 1.5x: {}; \
         hinted <= 0.3x: {}; peak RSS <= 1.1x the file: {}",
        met(wall(&build) <= 2.0 * w),
        met(wall(&rescan) <= 1.2 * w),
        met(wall(&rescan1) <= 1.5 * w),
        met(wall(&hinted) <= 0.3 * w),
        met(peak * 1024.0 * 1024.0 <= 1.1 * size as f64),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use hive::write::{to_bytes, KeyNode, WriteOptions};
    use hive::ValueType;

    /// The data of each value of a hive file, in walk order.
    fn datas(path: &std::path::Path) -> Vec<Vec<u8>> {
        let file = hive::HiveFile::read(path).unwrap();
        let h = file.hive().unwrap();
        let mut out = Vec::new();
        hive::walk(h.root().unwrap(), h.cells().bins_len(), |step| {
            if let hive::Step::Key(chain) = step {
                for v in chain[chain.len() - 1].values().unwrap().flatten() {
                    out.push(v.data().unwrap().into_owned());
                }
            }
        });
        out
    }

    #[test]
    fn the_changed_copy_differs_in_every_hundredth_value_only() {
        let dir = std::env::temp_dir().join(format!("regmon-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut root = KeyNode::new("ROOT");
        for k in 0..10 {
            let key = root.key_mut(&format!("K{k}"));
            for i in 0..50u32 {
                // Inline DWORDs and strings in their own cells.
                if i % 2 == 0 {
                    key.set_value(&format!("D{i}"), ValueType::DWORD, i.to_le_bytes().to_vec());
                } else {
                    key.set_value(&format!("S{i}"), ValueType::SZ, vec![b'x'; 40]);
                }
            }
        }
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::write(&a, to_bytes(&root, &WriteOptions::default())).unwrap();
        let (n, all) = super::changed_copy(&a, &b, 100).unwrap();
        assert_eq!((n, all), (5, 500));
        let (x, y) = (datas(&a), datas(&b));
        assert_eq!(x.len(), y.len());
        let differ: Vec<usize> = (0..x.len()).filter(|&i| x[i] != y[i]).collect();
        assert_eq!(differ, vec![99, 199, 299, 399, 499]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
