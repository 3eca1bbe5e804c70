//! `regmon-bench`: walk a hive, read every value's data and SHA-1 it, with
//! our reader and with peers doing the same job, side by side.
//!
//!   regmon-bench [--runs N] [--no-peers] HIVE...
//!   regmon-bench --make-big OUT [--seed N] [--keys N]
//!   regmon-bench --make-seeds DIR
//!   regmon-bench --scan [--runs N] [--against REGMON] HIVE...   (regmon's scan; see scan.rs)
//!   regmon-bench --replay [--runs N] HIVE... (log replay + walk vs the primary alone)
//!
//! Every measurement runs in a child process (this binary re-run with
//! `--one TOOL HIVE`, or the peer's own process), so each one's peak memory
//! is its own (`wait4` rusage). Tools, per hive:
//!
//! * `ours`: `hive::walk` over the file opened as regmon opens it
//!   (`HiveFile::open`: a checked read into memory on Unix), `Value::data`,
//!   SHA-1 per value, as `regmon hive dump` does (single thread);
//! * `ours-map`: the same over a memory map (`HiveFile::map`, what regmon
//!   used before; unsafe if the file is truncated meanwhile);
//! * `ours-2t`: the same work split across two threads (`par::walk_par`);
//! * `floor`: read the file into memory and SHA-1 the same value bytes
//!   (their ranges are collected beforehand, untimed, by a child);
//! * `floor-map`: the same over a memory map instead of a read: the
//!   stricter floor for a reader that maps the file, as ours does;
//! * `notatin`: the notatin crate's iterator, SHA-1 of each value's bytes;
//! * `hivex`: python3-hivex, hashlib.sha1 of each value's bytes (whole process);
//! * `reglookup`: the C tool printing every key and value to /dev/null
//!   (whole process).
//!
//! "work" is the time the tool spends from opening the hive to the last hash
//! (in-process for the Rust tools, the whole process for the others);
//! "process" is the wall time of the whole child process. Each is the median
//! of `--runs` runs after one warm-up run, interleaved across tools (a tool
//! whose warm-up takes over 10 s is timed by that run alone); "cpu" is the
//! median user + system time (all threads), which the noise of a shared
//! machine disturbs less. The value count, byte count and an order-free sum
//! of the SHA-1s are checked against ours (reglookup prints no hashes: its
//! value rows are counted).

mod gen;
mod par;
mod scan;
mod ship;

use sha1::{Digest, Sha1};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

const HIVEX_PY: &str = r#"
import hashlib, sys, time, hivex
t = time.perf_counter()
h = hivex.Hivex(sys.argv[1])
n = nb = acc = 0
stack = [h.root()]
while stack:
    node = stack.pop()
    for v in h.node_values(node):
        d = h.value_value(v)[1]
        acc += int.from_bytes(hashlib.sha1(d).digest()[:16], "little")
        n += 1
        nb += len(d)
    stack.extend(h.node_children(node))
print("RESULT", n, nb, "%032x" % (acc % (1 << 128)), time.perf_counter() - t)
"#;

/// What one tool reports: values hashed, data bytes, the wrapping sum of the
/// first 16 bytes of each SHA-1 (order-free), and its own time.
#[derive(Clone, Debug, Default, PartialEq)]
struct Tally {
    values: u64,
    bytes: u64,
    sum: u128,
}

impl Tally {
    fn add(&mut self, data: &[u8]) {
        self.add_digest(&Sha1::digest(data), data.len());
    }

    fn add_digest(&mut self, d: &[u8], len: usize) {
        self.values += 1;
        self.bytes += len as u64;
        self.sum = self
            .sum
            .wrapping_add(u128::from_le_bytes(d[..16].try_into().unwrap()));
    }

    fn merge(&mut self, o: &Tally) {
        self.values += o.values;
        self.bytes += o.bytes;
        self.sum = self.sum.wrapping_add(o.sum);
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("regmon-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut runs = 5usize;
    let mut peers = true;
    let mut seed = 1u64;
    let mut keys = None;
    let mut hives = Vec::new();
    let mut it = args.iter();
    let val = |it: &mut std::slice::Iter<String>, what: &str| {
        it.next()
            .cloned()
            .ok_or_else(|| format!("{what} needs a value"))
    };
    let mut make_big = None;
    let mut scan = false;
    let mut replay = false;
    let mut ship = false;
    let mut events = 1_000_000u32;
    let mut against = None;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--scan" => scan = true,
            "--replay" => replay = true,
            "--ship" => ship = true,
            "--events" => {
                events = val(&mut it, a)?
                    .parse()
                    .map_err(|e| format!("--events: {e}"))?
            }
            "--against" => against = Some(PathBuf::from(val(&mut it, a)?)),
            "--one" => {
                let tool = val(&mut it, "--one")?;
                let hive = val(&mut it, "--one")?;
                let extra = it.next().cloned();
                return one(&tool, Path::new(&hive), extra.as_deref());
            }
            "--make-seeds" => return make_seeds(Path::new(&val(&mut it, a)?)),
            // Used by --scan (in a child process, see scan.rs).
            "--changed-copy" => {
                let hive = val(&mut it, a)?;
                let out = val(&mut it, a)?;
                let (n, all) = scan::changed_copy(Path::new(&hive), Path::new(&out), 100)?;
                println!("changed {n} of {all} values");
                return Ok(());
            }
            "--make-big" => make_big = Some(val(&mut it, a)?),
            "--seed" => {
                seed = val(&mut it, a)?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "--keys" => {
                keys = Some(
                    val(&mut it, a)?
                        .parse()
                        .map_err(|e| format!("--keys: {e}"))?,
                )
            }
            "--runs" => {
                runs = val(&mut it, a)?
                    .parse()
                    .map_err(|e| format!("--runs: {e}"))?
            }
            "--no-peers" => peers = false,
            "-h" | "--help" => {
                println!(
                    "usage: regmon-bench [--runs N] [--no-peers] HIVE...\n       \
                     regmon-bench --make-big OUT [--seed N] [--keys N]\n       \
                     regmon-bench --make-seeds DIR\n       \
                     regmon-bench --scan [--runs N] [--against REGMON] HIVE...\n       \
                     regmon-bench --replay [--runs N] HIVE...\n       \
                     regmon-bench --ship [--events N] [--runs N]"
                );
                return Ok(());
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => hives.push(PathBuf::from(s)),
        }
    }
    if let Some(out) = make_big {
        let mut p = gen::Params {
            seed,
            ..Default::default()
        };
        if let Some(k) = keys {
            p.keys = k;
        }
        return make_big_hive(Path::new(&out), &p);
    }
    if ship {
        return ship::bench_ship(events, runs.max(1));
    }
    if hives.is_empty() {
        return Err("no hive given (see --help)".into());
    }
    for h in &hives {
        if scan {
            scan::bench_scan(h, runs.max(1), against.as_deref())?;
        } else if replay {
            bench_replay(h, runs.max(1))?;
        } else {
            bench_hive(h, runs.max(1), peers)?;
        }
    }
    Ok(())
}

fn make_big_hive(out: &Path, p: &gen::Params) -> Result<(), String> {
    let t = Instant::now();
    let bytes = gen::hive_bytes(p);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    let file = hive::HiveFile::from_bytes(bytes);
    let h = file.hive().map_err(|e| e.to_string())?;
    let root = h.root().map_err(|e| e.to_string())?;
    let (mut k, mut v) = (0u64, 0u64);
    hive::walk(root, h.cells().bins_len(), |s| {
        if let hive::Step::Key(c) = s {
            k += 1;
            v += c[c.len() - 1].value_count() as u64;
        }
    });
    println!(
        "{}: {} bytes, {k} keys, {v} values (seed {}), built in {:.1} s",
        out.display(),
        file.bytes().len(),
        p.seed,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn make_seeds(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (name, bytes) in gen::seeds() {
        let p = dir.join(name);
        std::fs::write(&p, &bytes).map_err(|e| format!("{}: {e}", p.display()))?;
        println!("{} ({} bytes)", p.display(), bytes.len());
    }
    Ok(())
}

// ---------------------------------------------------------------- one tool

fn one(tool: &str, path: &Path, extra: Option<&str>) -> Result<(), String> {
    let t = Instant::now();
    let tally = match tool {
        "ours" => ours(path)?,
        "ours-map" => {
            // SAFETY: a benchmark over a file nobody changes while it runs.
            let f = unsafe { hive::HiveFile::map(path) }
                .map_err(|e| format!("{}: {e}", path.display()))?;
            walk_hash(&f)?
        }
        "ours-logs" => ours_logs(path)?,
        "ours-2t" => ours_par(path, 2)?,
        "floor" => floor(
            path,
            Path::new(extra.ok_or("floor needs a ranges file")?),
            false,
        )?,
        "floor-map" => floor(
            path,
            Path::new(extra.ok_or("floor needs a ranges file")?),
            true,
        )?,
        "ranges" => return write_ranges(path, Path::new(extra.ok_or("ranges needs an output")?)),
        "reglookup-count" => {
            let n = count_reglookup_values(path).ok_or("reglookup failed")?;
            println!("RESULT {n} 0 0 0");
            return Ok(());
        }
        "notatin" => notatin(path)?,
        _ => return Err(format!("unknown tool {tool}")),
    };
    let secs = t.elapsed().as_secs_f64();
    println!(
        "RESULT {} {} {:032x} {secs}",
        tally.values, tally.bytes, tally.sum
    );
    Ok(())
}

fn open(path: &Path) -> Result<hive::HiveFile, String> {
    hive::HiveFile::open(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// What `regmon hive dump` does, minus the JSON: walk, read, hash.
fn ours(path: &Path) -> Result<Tally, String> {
    walk_hash(&open(path)?)
}

/// The same after replaying the transaction logs beside the hive (in
/// memory, as regmon does for a dirty hive).
fn ours_logs(path: &Path) -> Result<Tally, String> {
    let primary = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let datas: Vec<(String, Vec<u8>)> = hive::replay::find_logs(path)
        .into_iter()
        .filter_map(|p| Some((p.display().to_string(), std::fs::read(&p).ok()?)))
        .collect();
    let logs: Vec<hive::replay::LogFile<'_>> = datas
        .iter()
        .map(|(name, data)| hive::replay::LogFile {
            name: name.clone(),
            data,
        })
        .collect();
    let r = hive::replay::replay(&primary, &logs).map_err(|e| e.to_string())?;
    eprintln!(
        "replayed {} entries, {} pages from {} logs",
        r.report.entries_applied,
        r.report.pages_applied,
        r.report.logs_used.len()
    );
    walk_hash(&hive::HiveFile::from_bytes(r.data))
}

fn walk_hash(file: &hive::HiveFile) -> Result<Tally, String> {
    let h = file.hive().map_err(|e| e.to_string())?;
    let root = h.root().map_err(|e| e.to_string())?;
    let mut tally = Tally::default();
    hive::walk(root, h.cells().bins_len(), |step| {
        if let hive::Step::Key(chain) = step {
            if let Ok(values) = chain[chain.len() - 1].values() {
                for v in values.flatten() {
                    if let Ok(d) = v.data() {
                        tally.add(&d);
                    }
                }
            }
        }
    });
    Ok(tally)
}

fn ours_par(path: &Path, threads: usize) -> Result<Tally, String> {
    let file = open(path)?;
    let h = file.hive().map_err(|e| e.to_string())?;
    let root = h.root().map_err(|e| e.to_string())?;
    let (parts, _warnings) = par::walk_par(
        root,
        h.cells().bins_len(),
        threads,
        Tally::default,
        |tally, key| {
            if let Ok(values) = key.values() {
                for v in values.flatten() {
                    if let Ok(d) = v.data() {
                        tally.add(&d);
                    }
                }
            }
        },
    );
    let mut tally = Tally::default();
    for p in &parts {
        tally.merge(p);
    }
    Ok(tally)
}

/// The byte ranges (file offsets) of every value's data, in walk order:
/// per value a segment count, then (offset, length) per segment.
fn collect_ranges(path: &Path) -> Result<Vec<u64>, String> {
    let file = open(path)?;
    let bytes = file.bytes();
    let base = bytes.as_ptr() as usize;
    let h = file.hive().map_err(|e| e.to_string())?;
    let root = h.root().map_err(|e| e.to_string())?;
    let cells = h.cells();
    let mut out = Vec::new();
    hive::walk(root, cells.bins_len(), |step| {
        let hive::Step::Key(chain) = step else { return };
        let Ok(values) = chain[chain.len() - 1].values() else {
            return;
        };
        for v in values.flatten() {
            let Ok(d) = v.data() else { continue };
            match d {
                std::borrow::Cow::Borrowed(b) => {
                    out.extend([1, (b.as_ptr() as usize - base) as u64, b.len() as u64]);
                }
                std::borrow::Cow::Owned(o) => {
                    // Big data: find the segments again through the db cell.
                    let segs = big_segments(&cells, bytes, &v, o.len());
                    out.push(segs.len() as u64);
                    for (off, len) in segs {
                        out.extend([off, len]);
                    }
                }
            }
        }
    });
    Ok(out)
}

fn big_segments(
    cells: &hive::Cells<'_>,
    bytes: &[u8],
    v: &hive::Value<'_>,
    len: usize,
) -> Vec<(u64, u64)> {
    let base = bytes.as_ptr() as usize;
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let vk = cells.cell(v.offset()).unwrap();
    let db = cells.cell(u32_at(vk, 8)).unwrap();
    let count = u16::from_le_bytes([db[2], db[3]]) as usize;
    let list = cells.cell(u32_at(db, 4)).unwrap();
    let mut left = len;
    let mut out = Vec::new();
    for i in 0..count {
        if left == 0 {
            break;
        }
        let seg = cells.cell(u32_at(list, 4 * i)).unwrap();
        let take = left.min(hive::BIG_DATA_SEGMENT).min(seg.len());
        out.push(((seg.as_ptr() as usize - base) as u64, take as u64));
        left -= take;
    }
    out
}

fn write_ranges(path: &Path, out: &Path) -> Result<(), String> {
    let ranges = collect_ranges(path)?;
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?,
    );
    for r in &ranges {
        f.write_all(&r.to_le_bytes()).map_err(|e| e.to_string())?;
    }
    f.flush().map_err(|e| e.to_string())
}

/// Read the whole file (or map it, with `map`), then SHA-1 each value's
/// bytes where they lie, in walk order.
fn floor(path: &Path, ranges: &Path, map: bool) -> Result<Tally, String> {
    // The ranges were written by the parent; reading them is not timed.
    let raw = std::fs::read(ranges).map_err(|e| format!("{}: {e}", ranges.display()))?;
    let r: Vec<u64> = raw
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    drop(raw);
    let t = Instant::now();
    let file;
    let read;
    let bytes: &[u8] = if map {
        file = open(path)?;
        file.bytes()
    } else {
        read = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        &read
    };
    let mut tally = Tally::default();
    let mut i = 0;
    while i < r.len() {
        let n = r[i] as usize;
        i += 1;
        let mut h = Sha1::new();
        let mut len = 0;
        for _ in 0..n {
            let (o, l) = (r[i] as usize, r[i + 1] as usize);
            h.update(&bytes[o..o + l]);
            len += l;
            i += 2;
        }
        tally.add_digest(&h.finalize(), len);
    }
    // Report the timed part only: print it as an adjustment on stderr.
    eprintln!("FLOOR {}", t.elapsed().as_secs_f64());
    Ok(tally)
}

fn notatin(path: &Path) -> Result<Tally, String> {
    use notatin::parser::ParserIterator;
    use notatin::parser_builder::ParserBuilder;
    let parser = ParserBuilder::from_path(PathBuf::from(path))
        .build()
        .map_err(|e| format!("notatin: {e:?}"))?;
    let mut tally = Tally::default();
    for key in ParserIterator::new(&parser).iter() {
        for v in key.value_iter() {
            match v.detail.value_bytes() {
                Some(b) => tally.add(&b),
                None => tally.add(&[]),
            }
        }
    }
    Ok(tally)
}

// ---------------------------------------------------------------- driver

#[derive(Clone, Debug, Default)]
struct Sample {
    work: f64,
    process: f64,
    cpu: f64,
    rss_kb: u64,
    tally: Option<Tally>,
}

/// What `measure` saw of one child process.
pub(crate) struct Run {
    out: String,
    err: String,
    wall: f64,
    /// User + system CPU seconds, all threads.
    cpu: f64,
    rss_kb: u64,
}

/// Runs `cmd` to the end; returns its output, wall and CPU time, peak RSS.
/// `quiet`: its stdout and stderr go to /dev/null.
pub(crate) fn measure(cmd: &mut Command, quiet: bool) -> Result<Run, String> {
    cmd.stdin(Stdio::null());
    if quiet {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    } else {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let t = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("{cmd:?}: {e}"))?;
    let mut out = String::new();
    let mut err = String::new();
    let mut so = child.stdout.take();
    let se = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut se) = se {
            let _ = se.read_to_string(&mut s);
        }
        s
    });
    if let Some(so) = so.as_mut() {
        let _ = so.read_to_string(&mut out);
    }
    let (status, cpu, rss_kb) = reap(&mut child);
    let wall = t.elapsed().as_secs_f64();
    err.push_str(&reader.join().unwrap_or_default());
    if status != 0 {
        return Err(format!("{cmd:?} exited with status {status:#x}: {err}"));
    }
    Ok(Run {
        out,
        err,
        wall,
        cpu,
        rss_kb,
    })
}

/// Reaps one child: its exit status, CPU seconds and peak RSS in KiB (its
/// own, from `wait4`'s rusage).
#[cfg(unix)]
pub(crate) fn reap(child: &mut std::process::Child) -> (i32, f64, u64) {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is a plain C struct for which all-zero bytes are valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own unreaped child (spawned above, never waited
        // for by `Child`); `status` and `ru` are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        if r == -1 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            status = -1;
            break;
        }
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    // Linux reports ru_maxrss in KiB.
    (
        status,
        tv(ru.ru_utime) + tv(ru.ru_stime),
        ru.ru_maxrss as u64,
    )
}

/// Elsewhere the benchmark still runs, without CPU time or peak RSS (0).
#[cfg(not(unix))]
pub(crate) fn reap(child: &mut std::process::Child) -> (i32, f64, u64) {
    let status = child.wait().ok().and_then(|s| s.code()).unwrap_or(-1);
    (status, 0.0, 0)
}

fn parse_result(out: &str) -> Option<(Tally, f64)> {
    let line = out.lines().find(|l| l.starts_with("RESULT "))?;
    let f: Vec<&str> = line.split_whitespace().collect();
    Some((
        Tally {
            values: f.get(1)?.parse().ok()?,
            bytes: f.get(2)?.parse().ok()?,
            sum: u128::from_str_radix(f.get(3)?, 16).ok()?,
        },
        f.get(4)?.parse().ok()?,
    ))
}

struct Tool {
    name: &'static str,
    cmd: Box<dyn Fn() -> Command>,
    quiet: bool,
    /// Reports its own work time (else the whole process is timed).
    in_process: bool,
}

pub(crate) fn which(prog: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
}

fn bench_hive(path: &Path, runs: usize, peers: bool) -> Result<(), String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // Children spawned with posix_spawn (CLONE_VM) start from this process's
    // peak RSS, so this process stays small: the page cache is warmed in
    // chunks, and the floor's byte ranges are collected by a child.
    warm(path)?;
    let ranges_file =
        std::env::temp_dir().join(format!("regmon-bench-{}.ranges", std::process::id()));
    measure(
        Command::new(&exe)
            .arg("--one")
            .arg("ranges")
            .arg(path)
            .arg(&ranges_file),
        true,
    )?;

    let mut tools: Vec<Tool> = Vec::new();
    for name in ["ours", "ours-2t", "floor", "floor-map"] {
        let (exe, p, rf) = (exe.clone(), path.to_path_buf(), ranges_file.clone());
        tools.push(Tool {
            name,
            cmd: Box::new(move || {
                let mut c = Command::new(&exe);
                c.arg("--one").arg(name).arg(&p);
                if name.starts_with("floor") {
                    c.arg(&rf);
                }
                c
            }),
            quiet: false,
            in_process: true,
        });
    }
    let py = std::env::temp_dir().join(format!("regmon-bench-{}.py", std::process::id()));
    if peers {
        let (exe, p) = (exe.clone(), path.to_path_buf());
        tools.push(Tool {
            name: "notatin",
            cmd: Box::new(move || {
                let mut c = Command::new(&exe);
                c.arg("--one").arg("notatin").arg(&p);
                c
            }),
            quiet: false,
            in_process: true,
        });
        if Path::new("/usr/bin/python3").is_file() {
            std::fs::write(&py, HIVEX_PY).map_err(|e| e.to_string())?;
            let (py, p) = (py.clone(), path.to_path_buf());
            tools.push(Tool {
                name: "hivex",
                cmd: Box::new(move || {
                    let mut c = Command::new("/usr/bin/python3");
                    c.arg(&py).arg(&p);
                    c
                }),
                quiet: false,
                in_process: false,
            });
        }
        if which("reglookup") {
            let p = path.to_path_buf();
            tools.push(Tool {
                name: "reglookup",
                cmd: Box::new(move || {
                    let mut c = Command::new("reglookup");
                    c.arg("-H").arg(&p);
                    c
                }),
                quiet: true,
                in_process: false,
            });
        }
    }

    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); tools.len()];
    let mut failed: Vec<Option<String>> = vec![None; tools.len()];
    // A tool slower than this gets one timed run, its warm-up run.
    const SLOW: f64 = 10.0;
    let mut slow = vec![false; tools.len()];
    // One warm-up round, then `runs` rounds, interleaved.
    for round in 0..=runs {
        for (i, t) in tools.iter().enumerate() {
            if failed[i].is_some() || slow[i] {
                continue;
            }
            let r = match measure(&mut (t.cmd)(), t.quiet) {
                Ok(r) => r,
                Err(e) => {
                    failed[i] = Some(e);
                    continue;
                }
            };
            let parsed = parse_result(&r.out);
            let mut work = match &parsed {
                Some(p) if t.in_process => p.1,
                _ => r.wall,
            };
            if let Some(l) = r.err.lines().find_map(|l| l.strip_prefix("FLOOR ")) {
                work = l.trim().parse().unwrap_or(work);
            }
            slow[i] = round == 0 && r.wall > SLOW;
            if round > 0 || slow[i] {
                samples[i].push(Sample {
                    work,
                    process: r.wall,
                    cpu: r.cpu,
                    rss_kb: r.rss_kb,
                    tally: parsed.map(|p| p.0),
                });
            }
        }
    }
    let _ = std::fs::remove_file(&ranges_file);
    let _ = std::fs::remove_file(&py);

    // reglookup prints no hashes: count its value rows once, untimed.
    // (In a child, so that this process stays small.)
    let reglookup_count = if tools.iter().any(|t| t.name == "reglookup") {
        measure(
            Command::new(&exe)
                .arg("--one")
                .arg("reglookup-count")
                .arg(path),
            false,
        )
        .ok()
        .and_then(|r| parse_result(&r.out))
        .map(|(t, _)| t.values)
    } else {
        None
    };

    struct Row {
        name: &'static str,
        runs: usize,
        work: f64,
        process: f64,
        cpu: f64,
        rss: f64,
        tally: Option<Tally>,
        values: Option<u64>,
    }
    let mut rows = Vec::new();
    for (i, t) in tools.iter().enumerate() {
        if let Some(e) = &failed[i] {
            println!("{}: failed: {}", t.name, e.lines().next().unwrap_or(""));
            continue;
        }
        let s = &samples[i];
        let tally = s[0].tally.clone();
        let values = match &tally {
            Some(t) => Some(t.values),
            None if t.name == "reglookup" => reglookup_count,
            None => None,
        };
        rows.push(Row {
            name: t.name,
            runs: s.len(),
            work: median(s.iter().map(|x| x.work).collect()),
            process: median(s.iter().map(|x| x.process).collect()),
            cpu: median(s.iter().map(|x| x.cpu).collect()),
            rss: s.iter().map(|x| x.rss_kb).max().unwrap_or(0) as f64 * 1024.0,
            tally,
            values,
        });
    }
    let get = |name: &str| rows.iter().find(|r| r.name == name);
    let ours_1t = get("ours").map_or(f64::NAN, |r| r.work);
    let ours_best = ["ours", "ours-2t"]
        .iter()
        .filter_map(|n| get(n).map(|r| r.work))
        .fold(f64::INFINITY, f64::min);
    let ref_tally = get("ours").and_then(|r| r.tally.clone());
    let ref_values = ref_tally.as_ref().map_or(0, |t| t.values);

    let mb = size as f64 / 1e6;
    println!();
    println!(
        "== {}: {:.1} MB, {} values, {:.1} MB of value data; median of {runs} runs",
        path.display(),
        mb,
        ref_values,
        ref_tally.as_ref().map_or(0.0, |t| t.bytes as f64 / 1e6)
    );
    println!(
        "{:<10} {:>8} {:>9} {:>7} {:>10} {:>8} {:>10} {:>8} {:>8}  values hashed (check)",
        "tool",
        "work s",
        "process s",
        "cpu s",
        "values/s",
        "MB/s",
        "peak RSS",
        "RSS/file",
        "vs ours"
    );
    for r in &rows {
        let check = match (&r.tally, r.values) {
            (Some(t), _) if Some(t) == ref_tally.as_ref() => {
                format!("{} (bytes + SHA-1s match)", t.values)
            }
            (Some(t), _) if t.values == ref_values => {
                format!(
                    "{} (count matches; {} bytes, SHA-1s differ)",
                    t.values, t.bytes
                )
            }
            (Some(t), _) => format!("{} MISMATCH ({} bytes)", t.values, t.bytes),
            (None, Some(v)) if v == ref_values => format!("{v} (rows counted, match)"),
            (None, Some(v)) => format!("{v} rows MISMATCH"),
            (None, None) => "-".into(),
        };
        let check = if r.runs == runs {
            check
        } else {
            format!("{check}; {} run(s) only, over {SLOW} s", r.runs)
        };
        println!(
            "{:<10} {:>8.3} {:>9.3} {:>7.3} {:>10.0} {:>8.1} {:>7.1} MB {:>7.2}x {:>7.2}x  {}",
            r.name,
            r.work,
            r.process,
            r.cpu,
            r.values.unwrap_or(ref_values) as f64 / r.work,
            mb / r.work,
            r.rss / 1e6,
            r.rss / size as f64,
            r.work / ours_best,
            check
        );
    }
    let floor = get("floor").map_or(f64::NAN, |r| r.work);
    let floor_map = get("floor-map").map_or(f64::NAN, |r| r.work);
    let rss_ours = ["ours", "ours-2t"]
        .iter()
        .filter_map(|n| get(n).map(|r| r.rss))
        .fold(0.0, f64::max);
    println!(
        "ours: 1 thread {ours_1t:.3} s, best {ours_best:.3} s; vs floor (read) {:.2}x, \
         vs floor (map) {:.2}x (1 thread: {:.2}x, {:.2}x); peak RSS {:.2}x file",
        ours_best / floor,
        ours_best / floor_map,
        ours_1t / floor,
        ours_1t / floor_map,
        rss_ours / size as f64
    );
    let fastest = ["notatin", "hivex", "reglookup"]
        .iter()
        .filter_map(|n| get(n))
        .min_by(|a, b| a.work.total_cmp(&b.work));
    if let Some(f) = fastest {
        println!(
            "fastest peer: {} {:.3} s = {:.2}x our best time (1 thread: {:.2}x)",
            f.name,
            f.work,
            f.work / ours_best,
            f.work / ours_1t
        );
        println!(
            "targets: >= 4x the fastest peer: {} ({:.2}x); peak RSS < 1.2x file: {} ({:.2}x); \
             within 1.5x of the floor (read + SHA-1): {} ({:.2}x; the mmap floor: {:.2}x)",
            yes(f.work / ours_best >= 4.0),
            f.work / ours_best,
            yes(rss_ours < 1.2 * size as f64),
            rss_ours / size as f64,
            yes(ours_best / floor <= 1.5),
            ours_best / floor,
            ours_best / floor_map
        );
    }
    Ok(())
}

fn warm(path: &Path) -> Result<(), String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf).map_err(|e| e.to_string())? > 0 {}
    Ok(())
}

/// reglookup's value rows (all rows but keys), streamed.
fn count_reglookup_values(path: &Path) -> Option<u64> {
    use std::io::BufRead;
    let mut child = Command::new("reglookup")
        .arg("-H")
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let out = std::io::BufReader::new(child.stdout.take()?);
    let mut n = 0;
    for line in out.split(b'\n') {
        let line = line.ok()?;
        if line
            .split(|&b| b == b',')
            .nth(1)
            .is_some_and(|t| t != b"KEY")
        {
            n += 1;
        }
    }
    child.wait().ok()?;
    Some(n)
}

fn yes(b: bool) -> &'static str {
    if b {
        "met"
    } else {
        "MISSED"
    }
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// `--replay`: the cost of applying a dirty hive's transaction logs, beside
/// the walk of the primary file alone (each in its own process).
fn bench_replay(hive: &Path, runs: usize) -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for tool in ["ours", "ours-logs"] {
        let mut work = Vec::new();
        let mut rss = 0;
        let mut tally = None;
        measure(Command::new(&me).arg("--one").arg(tool).arg(hive), true)?;
        for _ in 0..runs {
            let r = measure(Command::new(&me).arg("--one").arg(tool).arg(hive), false)?;
            let (t, secs) = parse_result(&r.out).ok_or("no RESULT line")?;
            work.push(secs);
            rss = rss.max(r.rss_kb);
            tally = Some(t);
        }
        rows.push((
            tool,
            median(work),
            rss,
            tally.map(|t| t.values).unwrap_or(0),
        ));
    }
    println!("\n== replay {}: median of {runs} runs", hive.display());
    println!(
        "{:<10} {:>8} {:>10} {:>8}",
        "tool", "work s", "peak RSS", "values"
    );
    for (tool, w, rss, values) in &rows {
        println!(
            "{tool:<10} {w:>8.4} {:>7.1} MB {values:>8}",
            *rss as f64 / 1024.0
        );
    }
    println!(
        "replay + walk / primary-only walk: {:.2}x",
        rows[1].1 / rows[0].1
    );
    Ok(())
}
