//! `regmon-bench --ship [--events N] [--runs R]`: a burst of N changes
//! (default 1,000,000) delivered to rsyslog over TCP on loopback, side by
//! side with `logger` (util-linux) sending the same lines and with
//! `nc < FILE` (the floor: bytes straight into the socket).
//!
//! Set-up (not timed): a hive of N DWORD values (1,000 per key), its
//! baseline, then every value changed and scanned while the collector's
//! port is closed, so the N events wait in regmon's durable outbox; their
//! lines are also written to a file for the peers (om_file, same Exec).
//! Timed, each in its own process, rsyslog restarted empty before each:
//!
//! * `regmon`: `regmon -c FILE --once` delivering the outbox to rsyslog
//!   (om_tcp, LineBased); the hive is moved away first, so the run's scan
//!   fails fast and the figure is delivery alone;
//! * `logger`: `logger --tcp -n 127.0.0.1 -P PORT -f FILE`;
//! * `nc`: `nc -N 127.0.0.1 PORT < FILE`.
//!
//! Each sender is timed from its process's start to the moment rsyslog
//! has written the first and the N-th line: the total, the start-up (to
//! the first line), the rate after it, and the sender's peak RSS (VmHWM
//! polled from /proc while it runs).

use crate::median;
use hive::write::{to_bytes, KeyNode, ValueNode, WriteOptions};
use hive::ValueType;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A hive of `n` DWORD values, 1,000 per key, each `i + gen`.
fn write_hive(path: &Path, n: u32, gen: u32) -> Result<(), String> {
    let mut root = KeyNode::new("ROOT");
    let mut i = 0;
    let mut k = 0;
    while i < n {
        let mut key = KeyNode::new(&format!("K{k:05}"));
        for _ in 0..1000.min(n - i) {
            key.values.push(ValueNode {
                name: format!("V{i:07}").encode_utf16().collect(),
                value_type: ValueType::DWORD,
                data: (i.wrapping_add(gen)).to_le_bytes().to_vec(),
            });
            i += 1;
        }
        root.subkeys.push(key);
        k += 1;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, to_bytes(&root, &WriteOptions::default())).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// rsyslogd on 127.0.0.1:`port` writing every message as received
/// (`%rawmsg%`) to `out`, one per line.
struct Rsyslog {
    child: Child,
    out: PathBuf,
}

impl Rsyslog {
    fn start(dir: &Path, port: u16) -> Result<Rsyslog, String> {
        let out = dir.join("recv.log");
        let _ = std::fs::remove_file(&out);
        let work = dir.join("rsyslog-work");
        std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{work}\" maxMessageSize=\"64k\")\n\
                 module(load=\"imtcp\")\n\
                 template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
                 ruleset(name=\"bench\") {{ action(type=\"omfile\" file=\"{out}\" template=\"raw\" ioBufferSize=\"256k\" flushOnTXEnd=\"on\") }}\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"bench\")\n",
                work = work.display(),
                out = out.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("rsyslogd: {e} (apt-get install rsyslog)"))?;
        let r = Rsyslog { child, out };
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if t.elapsed() > Duration::from_secs(10) {
                return Err("rsyslogd did not listen within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(r)
    }

    /// Lines written so far.
    fn lines(&self, seen: &mut (u64, usize)) -> usize {
        if let Ok(mut f) = std::fs::File::open(&self.out) {
            use std::io::{Seek, SeekFrom};
            if f.seek(SeekFrom::Start(seen.0)).is_ok() {
                let mut buf = Vec::new();
                if f.read_to_end(&mut buf).is_ok() {
                    seen.0 += buf.len() as u64;
                    seen.1 += buf.iter().filter(|&&b| b == b'\n').count();
                }
            }
        }
        seen.1
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Shot {
    /// From the process's start to the N-th line at rsyslog.
    secs: f64,
    /// From the process's start to the first line (start-up: opening and
    /// checking the baseline, connecting).
    first: f64,
    /// Peak RSS in KiB (VmHWM, polled: fork's copy of this process is not counted).
    rss_kb: u64,
}

/// The peak RSS of process `pid` so far, in KiB (Linux).
fn vm_hwm(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `cmd` and waits until rsyslog has `n` lines (or 300 s).
fn shot(cmd: &mut Command, rs: &Rsyslog, n: usize) -> Result<Shot, String> {
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let t = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("{cmd:?}: {e}"))?;
    let pid = child.id();
    let reaper = std::thread::spawn(move || crate::reap(&mut child));
    let mut seen = (0, 0);
    let (mut secs, mut first, mut rss_kb) = (None, None, 0);
    while t.elapsed() < Duration::from_secs(300) {
        if let Some(k) = vm_hwm(pid) {
            rss_kb = rss_kb.max(k);
        }
        let got = rs.lines(&mut seen);
        if got > 0 && first.is_none() {
            first = Some(t.elapsed().as_secs_f64());
        }
        if got >= n {
            secs = Some(t.elapsed().as_secs_f64());
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = reaper.join().map_err(|_| "reaper panicked")?;
    match (secs, first) {
        (Some(secs), Some(first)) => Ok(Shot {
            secs,
            first,
            rss_kb,
        }),
        _ => Err(format!(
            "{cmd:?}: rsyslog had {} of {n} lines after 300 s",
            seen.1
        )),
    }
}

pub fn bench_ship(n: u32, runs: usize) -> Result<(), String> {
    let regmon = crate::scan::regmon_bin()?;
    let dir = std::env::temp_dir().join(format!("regmon-ship-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let hive = dir.join("SOFTWARE");
    let lines = dir.join("lines.txt");
    let port = free_port()?;
    let conf = |name: &str, output: &str| -> Result<PathBuf, String> {
        let p = dir.join(name);
        std::fs::write(
            &p,
            format!(
                "LogLevel WARNING\nCacheDir '{cache}'\n\
                 <Extension json>\n Module xm_json\n</Extension>\n\
                 <Input regmon>\n Module im_regmon\n RegValue 'HKLM\\X\\*'\n Recursive TRUE\n\
                 HiveFile 'HKLM\\X' '{hive}'\n</Input>\n\
                 <Output out>\n{output}\n Exec to_json();\n</Output>\n\
                 <Route r>\n Path regmon => out\n</Route>\n",
                cache = dir.join("cache").display(),
                hive = hive.display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        Ok(p)
    };
    let tcp = conf(
        "tcp.conf",
        &format!(" Module om_tcp\n Host 127.0.0.1:{port}"),
    )?;
    let file = conf(
        "file.conf",
        &format!(" Module om_file\n File '{}'", lines.display()),
    )?;
    // The baseline key and side records live in the bench's folder, saved
    // and restored with the baselines (a restored copy would otherwise be
    // taken for a rolled-back baseline).
    let keys = dir.join("keys");
    let once = |c: &Path| {
        Command::new(&regmon)
            .env("REGMON_KEY_DIR", &keys)
            .arg("-c")
            .arg(c)
            .arg("--once")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| e.to_string())
    };
    eprintln!("set-up: {n} values, baseline, {n} changes queued (port {port} closed)");
    write_hive(&hive, n, 0)?;
    // The file output's baseline, then the lines the peers send.
    once(&file)?;
    write_hive(&hive, n, 1_000_000_000)?;
    once(&file)?;
    write_hive(&hive, n, 0)?;
    // Both configurations share the input's baseline: rebuild it for tcp.
    let cache = dir.join("cache");
    let _ = std::fs::remove_dir_all(&cache);
    once(&tcp)?;
    write_hive(&hive, n, 1_000_000_000)?;
    let st = once(&tcp)?;
    if st.success() {
        return Err("the queuing run delivered: was the port open?".into());
    }
    std::fs::rename(&hive, dir.join("SOFTWARE.away")).map_err(|e| e.to_string())?;
    let saved = dir.join("cache.saved");
    let _ = std::fs::remove_dir_all(&saved);
    copy_dir(&cache, &saved)?;
    let saved_keys = dir.join("keys.saved");
    let _ = std::fs::remove_dir_all(&saved_keys);
    copy_tree(&keys, &saved_keys)?;
    let count = std::fs::read(&lines)
        .map_err(|e| e.to_string())?
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    if count != n as usize {
        return Err(format!("{} has {count} lines, not {n}", lines.display()));
    }
    let bytes = std::fs::metadata(&lines).map_err(|e| e.to_string())?.len();

    let has = |p: &str| crate::which(p);
    let mut res: Vec<(&str, Vec<Shot>)> = vec![("regmon", vec![])];
    if has("logger") {
        res.push(("logger", vec![]));
    }
    if has("nc") {
        res.push(("nc", vec![]));
    }
    for _ in 0..runs {
        for (tool, shots) in res.iter_mut() {
            let rs = Rsyslog::start(&dir, port)?;
            let mut cmd = match *tool {
                "regmon" => {
                    let _ = std::fs::remove_dir_all(&cache);
                    copy_dir(&saved, &cache)?;
                    let _ = std::fs::remove_dir_all(&keys);
                    copy_tree(&saved_keys, &keys)?;
                    let mut c = Command::new(&regmon);
                    c.env("REGMON_KEY_DIR", &keys);
                    c.arg("-c").arg(&tcp).arg("--once");
                    c
                }
                "logger" => {
                    let mut c = Command::new("logger");
                    c.args(["--tcp", "-n", "127.0.0.1", "-P", &port.to_string(), "-f"])
                        .arg(&lines);
                    c
                }
                _ => {
                    let mut c = Command::new("nc");
                    c.args(["-N", "127.0.0.1", &port.to_string()])
                        .stdin(std::fs::File::open(&lines).map_err(|e| e.to_string())?);
                    c
                }
            };
            shots.push(shot(&mut cmd, &rs, n as usize)?);
            drop(rs);
        }
    }
    println!(
        "\n{n} events ({:.1} MB of lines) to rsyslog over TCP on 127.0.0.1, median of {runs}:\n",
        bytes as f64 / 1e6
    );
    println!("| sender | total (s) | first line (s) | events/s after the first | peak RSS (MB) | total / nc |");
    println!("|---|---:|---:|---:|---:|---:|");
    let floor = res
        .iter()
        .find(|(t, _)| *t == "nc")
        .map(|(_, s)| median(s.iter().map(|x| x.secs).collect()));
    for (tool, shots) in &res {
        let secs = median(shots.iter().map(|x| x.secs).collect());
        let first = median(shots.iter().map(|x| x.first).collect());
        let rate = median(
            shots
                .iter()
                .map(|x| (n as f64 - 1.0) / (x.secs - x.first).max(1e-6))
                .collect(),
        );
        let rss = median(shots.iter().map(|x| x.rss_kb as f64).collect()) / 1024.0;
        let ratio = floor.map_or("-".to_string(), |f| format!("{:.2}", secs / f));
        println!("| {tool} | {secs:.2} | {first:.2} | {rate:.0} | {rss:.1} | {ratio} |");
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| e.to_string())?;
    for e in std::fs::read_dir(from).map_err(|e| e.to_string())? {
        let e = e.map_err(|e| e.to_string())?;
        let p = e.path();
        if p.is_file() {
            std::fs::copy(&p, to.join(e.file_name())).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| e.to_string())?;
    for e in std::fs::read_dir(from).map_err(|e| e.to_string())? {
        let e = e.map_err(|e| e.to_string())?;
        let p = e.path();
        if p.is_dir() {
            copy_tree(&p, &to.join(e.file_name()))?;
        } else {
            std::fs::copy(&p, to.join(e.file_name())).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
