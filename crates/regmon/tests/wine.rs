//! End-to-end tests of the live Windows registry backend, under Wine.
//!
//! `scripts/wine-test.sh` builds `regmon.exe` for x86_64-pc-windows-gnu
//! (with the bcryptprimitives.dll shim beside it), makes a fresh
//! WINEPREFIX and runs this file with `REGMON_EXE` (and `REGMON_WINEPREFIX`)
//! set, with `--include-ignored`: every test here is `#[ignore]`d, so a
//! plain `cargo test` reports them as ignored, never as passed.
//!
//! One prefix serves the whole test binary (wineboot takes seconds); each
//! test uses its own registry keys and work folder, and the tests that use
//! the reference configurations verbatim (shared keys, `C:\test\regmon.log`)
//! take a lock. Changes are made with Wine's own `reg add` / `reg delete`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

/// NXLog's first im_regmon example, verbatim.
const REF1: &str = r"<Extension json>
Module xm_json
</Extension>
<Input regmon>
Module im_regmon
RegValue 'HKLM\Software\Policies\*'
ScanInterval 10
</Input>
<Output file>
Module om_file
File 'C:\test\regmon.log'
Exec to_json();
</Output>
<Route regmon_to_file>
Path regmon => file
</Route>
";

/// NXLog's second im_regmon example, verbatim apart from the schedule time
/// (`When @daily` would wait for midnight).
const REF2: &str = r"<Extension json>
Module xm_json
</Extension>
<Input regmon>
Module im_regmon
RegValue 'HKLM\Software\*'
Exclude 'HKLM\Software\Program Groups\*'
ScanInterval 0
<Schedule>
Every 1 sec
Exec start_scan();
</Schedule>
</Input>
<Output file>
Module om_file
File 'C:\test\regmon.log'
Exec to_json();
</Output>
<Route dailycheck>
Path regmon => file
</Route>
";

struct Wine {
    loader: PathBuf,
    exe: PathBuf,
    prefix: PathBuf,
}

static WINE: OnceLock<Option<Wine>> = OnceLock::new();
/// Held by tests that use HKLM\Software\Policies, values directly under
/// HKLM\Software, or C:\test\regmon.log.
static REFERENCE: Mutex<()> = Mutex::new(());

fn reference_lock() -> MutexGuard<'static, ()> {
    REFERENCE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The Wine setup, or None when REGMON_EXE is not set.
fn wine() -> Option<&'static Wine> {
    WINE.get_or_init(|| {
        let exe = PathBuf::from(std::env::var_os("REGMON_EXE")?);
        assert!(exe.is_file(), "REGMON_EXE={} is not a file", exe.display());
        let loader = std::env::var_os("WINE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let w64 = PathBuf::from("/usr/lib/wine/wine64");
                if w64.is_file() {
                    w64
                } else {
                    PathBuf::from("wine64")
                }
            });
        let prefix = match std::env::var_os("REGMON_WINEPREFIX") {
            Some(p) => PathBuf::from(p),
            None => {
                let p = std::env::temp_dir().join(format!("regmon-wine-{}", std::process::id()));
                eprintln!(
                    "REGMON_WINEPREFIX not set: using a fresh prefix in {}",
                    p.display()
                );
                p
            }
        };
        std::fs::create_dir_all(&prefix).unwrap();
        let w = Wine {
            loader,
            exe,
            prefix,
        };
        let t = Instant::now();
        // One wineserver for the whole run (it exits by itself 60 s after
        // the last Wine process): otherwise every command starts a new Wine
        // session, at seconds each. The wrapper in /usr/bin adds -p0.
        let server = std::env::var_os("WINESERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let s = PathBuf::from("/usr/lib/wine/wineserver64");
                if s.is_file() {
                    s
                } else {
                    PathBuf::from("wineserver")
                }
            });
        let _ = Command::new(server)
            .arg("-p60")
            .env("WINEPREFIX", &w.prefix)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let out = w
            .cmd(&["wineboot", "-i"])
            // No Mono / Gecko install prompts (there is no network anyway).
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .run();
        assert!(out.status.success(), "wineboot failed: {out:?}");
        eprintln!("wine prefix ready in {:.1} s", t.elapsed().as_secs_f64());
        std::fs::create_dir_all(w.prefix.join("drive_c/test")).unwrap();
        Some(w)
    })
    .as_ref()
}

macro_rules! wine_or_skip {
    () => {
        match wine() {
            Some(w) => w,
            // Ignored tests run only when asked for: then Wine must be there.
            None => panic!("REGMON_EXE is not set: scripts/wine-test.sh runs these tests"),
        }
    };
}

impl Wine {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.loader);
        c.args(args)
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            // Non-ASCII command-line arguments are passed on as UTF-8.
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::null());
        c
    }

    /// `reg ARGS`, which must succeed.
    fn reg(&self, args: &[&str]) {
        let mut a = vec!["reg"];
        a.extend_from_slice(args);
        let out = self.cmd(&a).run();
        assert!(
            out.status.success(),
            "reg {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `reg delete KEY /f`, whether or not the key exists.
    fn reg_delete_key(&self, key: &str) {
        let _ = self.cmd(&["reg", "delete", key, "/f"]).run();
    }

    /// `regmon.exe ARGS` in `dir`.
    fn regmon(&self, dir: &Path, args: &[&str]) -> Output {
        let mut a = vec![self.exe.to_str().unwrap()];
        a.extend_from_slice(args);
        self.cmd(&a).current_dir(dir).run()
    }

    /// `regmon.exe -c CONF --once` in `dir`, which must succeed.
    fn once(&self, dir: &Path, conf: &str) -> String {
        let out = self.regmon(dir, &["-c", conf, "--once"]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "regmon --once failed: {err}");
        err
    }

    /// `regmon.exe -c CONF` in the foreground, killed when dropped.
    fn spawn(&self, dir: &Path, conf: &str) -> Running {
        let err = dir.join("regmon.stderr");
        let child = self
            .cmd(&[self.exe.to_str().unwrap(), "-c", conf])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("starting regmon.exe");
        Running { child, err }
    }

    /// The Linux path of C:\test\regmon.log.
    fn c_test_log(&self) -> PathBuf {
        self.prefix.join("drive_c/test/regmon.log")
    }
}

/// Runs a command to completion with its output in files, not pipes: Wine
/// services started by a command inherit its standard handles and outlive
/// it, so reading a pipe to its end would wait for them. A command Wine
/// could not launch at all is started again (see [`LAUNCH_FAILED`]).
trait Run {
    fn run(&mut self) -> Output;
}

/// What Wine's launcher prints when it could not start a program at all
/// (seen now and then under load): nothing ran, so it is safe to retry. A
/// failure with no output at all is the same (every program these tests
/// run says why it fails; `reg` changes are idempotent with /f).
const LAUNCH_FAILED: &str = "ShellExecuteEx failed";

/// What a Wine process prints when it lost its connection to wineserver
/// (seen once in CI under load: "wine client error:2d4: write: Bad file
/// descriptor", nothing else): the program did not run; retried likewise.
const CLIENT_ERROR: &str = "wine client error:";

/// Whether the output is only Wine's own client errors.
fn only_client_errors(b: &[u8]) -> bool {
    let text = String::from_utf8_lossy(b);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty()).peekable();
    lines.peek().is_some() && lines.all(|l| l.starts_with(CLIENT_ERROR))
}

impl Run for Command {
    fn run(&mut self) -> Output {
        let mut out = run_once(self);
        for _ in 0..4 {
            let says = |b: &[u8]| String::from_utf8_lossy(b).contains(LAUNCH_FAILED);
            let silent = out.stdout.is_empty() && out.stderr.is_empty();
            let client = out.stdout.is_empty() && only_client_errors(&out.stderr);
            let failed_to_launch = !out.status.success()
                && (silent || client || says(&out.stdout) || says(&out.stderr));
            if !failed_to_launch {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
            out = run_once(self);
        }
        out
    }
}

/// One run of `cmd`, its output in files.
fn run_once(cmd: &mut Command) -> Output {
    use std::io::{Read, Seek};
    let mut out = tempfile::tempfile().unwrap();
    let mut err = tempfile::tempfile().unwrap();
    let status = cmd
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .status()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    out.rewind().unwrap();
    out.read_to_end(&mut stdout).unwrap();
    err.rewind().unwrap();
    err.read_to_end(&mut stderr).unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

struct Running {
    child: Child,
    err: PathBuf,
}

impl Running {
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits until regmon's log holds `text`.
    fn wait_log(&mut self, text: &str, limit: Duration) {
        let t = Instant::now();
        while !self.stderr().contains(text) {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("regmon exited ({st}): {}", self.stderr());
            }
            assert!(
                t.elapsed() < limit,
                "no '{text}' in regmon's log after {limit:?}: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn workdir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("regmon-wine-{name}-"))
        .tempdir()
        .unwrap()
}

fn write_conf(dir: &Path, text: &str) -> &'static str {
    std::fs::write(dir.join("regmon.conf"), text).unwrap();
    "regmon.conf"
}

/// A configuration monitoring `patterns` with `extra` input directives,
/// writing JSON to out.log in the work folder.
fn conf(patterns: &[&str], extra: &str) -> String {
    let mut s = String::from(
        "<Extension json>\nModule xm_json\n</Extension>\n<Input regmon>\nModule im_regmon\n",
    );
    for p in patterns {
        s.push_str(&format!("RegValue '{p}'\n"));
    }
    s.push_str(extra);
    s.push_str(
        "</Input>\n<Output file>\nModule om_file\nFile 'out.log'\nExec to_json();\n</Output>\n\
         <Route r>\nPath regmon => file\n</Route>\n",
    );
    s
}

/// One event, reduced to what the tests compare.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Ev {
    kind: String,
    name: String,
    size: Option<u64>,
    prev_size: Option<u64>,
    digest: Option<String>,
    prev_digest: Option<String>,
}

fn ev(kind: &str, name: &str, new: Option<&[u8]>, old: Option<&[u8]>) -> Ev {
    Ev {
        kind: kind.into(),
        name: name.into(),
        size: new.map(|d| d.len() as u64),
        prev_size: old.map(|d| d.len() as u64),
        digest: new.map(sha1_hex),
        prev_digest: old.map(sha1_hex),
    }
}

fn sha1_hex(data: &[u8]) -> String {
    Sha1::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The events in a JSON-lines file (CRLF line ends, as om_file writes them
/// on Windows), from byte `from` on.
fn events(path: &Path, from: usize) -> Vec<Ev> {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8(text[from.min(text.len())..].to_vec()).expect("UTF-8 output");
    let mut out = Vec::new();
    for line in text.split_inclusive('\n') {
        assert!(line.ends_with("\r\n"), "line without CRLF: {line:?}");
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).expect("a JSON line");
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
        let n = |k: &str| v.get(k).and_then(|x| x.as_u64());
        // A pattern matching nothing yet (the test's keys are made after
        // the first scan) is a NO_MATCH notice: tests/coverage.rs checks
        // those; here only registry events.
        if s("EventType").as_deref() == Some("NO_MATCH") {
            continue;
        }
        assert_eq!(s("DigestName").as_deref(), Some("SHA1"), "{line}");
        assert_eq!(s("Severity").as_deref(), Some("WARNING"), "{line}");
        out.push(Ev {
            kind: s("EventType").unwrap(),
            name: s("RegistryValueName").unwrap(),
            size: n("ValueSize"),
            prev_size: n("PrevValueSize"),
            digest: s("Digest"),
            prev_digest: s("PrevDigest"),
        });
    }
    out.sort();
    out
}

fn sorted(mut v: Vec<Ev>) -> Vec<Ev> {
    v.sort();
    v
}

fn file_len(p: &Path) -> usize {
    std::fs::metadata(p).map(|m| m.len() as usize).unwrap_or(0)
}

/// REG_SZ / REG_EXPAND_SZ data as `reg add` stores it: UTF-16LE and a NUL.
fn sz(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// REG_MULTI_SZ data: each string NUL-terminated, and one more NUL.
fn multi(items: &[&str]) -> Vec<u8> {
    let mut v: Vec<u8> = items.iter().flat_map(|s| sz(s)).collect();
    v.extend_from_slice(&[0, 0]);
    v
}

// ---------------------------------------------------------------------------

/// Puts HKLM\Software\Policies in its starting state: Keep, Chg, Del and
/// Sub\S.
fn policies_start(w: &Wine) {
    w.reg_delete_key(r"HKLM\Software\Policies");
    w.reg(&[
        r"add",
        r"HKLM\Software\Policies",
        "/v",
        "Keep",
        "/d",
        "kept",
        "/f",
    ]);
    w.reg(&[
        r"add",
        r"HKLM\Software\Policies",
        "/v",
        "Chg",
        "/t",
        "REG_DWORD",
        "/d",
        "1",
        "/f",
    ]);
    w.reg(&[
        r"add",
        r"HKLM\Software\Policies",
        "/v",
        "Del",
        "/d",
        "bye",
        "/f",
    ]);
    w.reg(&[
        r"add",
        r"HKLM\Software\Policies\Sub",
        "/v",
        "S",
        "/d",
        "x",
        "/f",
    ]);
}

fn policies_change(w: &Wine) {
    w.reg(&[
        r"add",
        r"HKLM\Software\Policies",
        "/v",
        "New",
        "/d",
        "hello",
        "/f",
    ]);
    w.reg(&[
        r"add",
        r"HKLM\Software\Policies",
        "/v",
        "Chg",
        "/t",
        "REG_DWORD",
        "/d",
        "2",
        "/f",
    ]);
    w.reg(&["delete", r"HKLM\Software\Policies", "/v", "Del", "/f"]);
    w.reg(&[
        r"add",
        r"HKLM\Software\Policies\Sub",
        "/v",
        "S",
        "/d",
        "y",
        "/f",
    ]);
}

fn policies_expected() -> Vec<Ev> {
    vec![
        ev(
            "NEW",
            r"HKLM\Software\Policies\New",
            Some(&sz("hello")),
            None,
        ),
        ev(
            "CHANGE",
            r"HKLM\Software\Policies\Chg",
            Some(&2u32.to_le_bytes()),
            Some(&1u32.to_le_bytes()),
        ),
        ev(
            "DELETE",
            r"HKLM\Software\Policies\Del",
            None,
            Some(&sz("bye")),
        ),
    ]
}

#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn reference_config_1_verbatim() {
    let w = wine_or_skip!();
    let _g = reference_lock();
    let dir = workdir("ref1");
    let c = write_conf(dir.path(), REF1);
    policies_start(w);
    let log = w.c_test_log();
    let start = file_len(&log);
    let err = w.once(dir.path(), c);
    assert!(err.contains("baseline"), "{err}");
    assert_eq!(file_len(&log), start, "the first scan reports nothing");
    policies_change(w);
    w.once(dir.path(), c);
    // No Recursive in the configuration: the change in Sub is not covered.
    assert_eq!(events(&log, start), sorted(policies_expected()));
    // A scan with nothing changed reports nothing.
    let now = file_len(&log);
    w.once(dir.path(), c);
    assert_eq!(file_len(&log), now);
}

#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn reference_config_1_recursive() {
    let w = wine_or_skip!();
    let _g = reference_lock();
    let dir = workdir("ref1r");
    let text = REF1.replace("ScanInterval 10\n", "ScanInterval 10\nRecursive TRUE\n");
    let c = write_conf(dir.path(), &text);
    policies_start(w);
    let log = w.c_test_log();
    let start = file_len(&log);
    w.once(dir.path(), c);
    assert_eq!(file_len(&log), start);
    policies_change(w);
    w.once(dir.path(), c);
    let mut want = policies_expected();
    want.push(ev(
        "CHANGE",
        r"HKLM\Software\Policies\Sub\S",
        Some(&sz("y")),
        Some(&sz("x")),
    ));
    assert_eq!(events(&log, start), sorted(want));
}

#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn reference_config_2_schedule_drives_scans() {
    let w = wine_or_skip!();
    let _g = reference_lock();
    let log = w.c_test_log();
    w.reg_delete_key(r"HKLM\Software\Program Groups");
    let _ = w
        .cmd(&["reg", "delete", r"HKLM\Software", "/v", "RegmonRef2", "/f"])
        .run();

    // ScanInterval 0 and no Schedule: no scan at all.
    let idle = workdir("ref2idle");
    let mut no_sched = REF2.to_string();
    let a = no_sched.find("<Schedule>").unwrap();
    let b = no_sched.find("</Schedule>\n").unwrap() + "</Schedule>\n".len();
    no_sched.replace_range(a..b, "");
    let c = write_conf(idle.path(), &no_sched);
    let mut r = w.spawn(idle.path(), c);
    r.wait_log("regmon started", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(3));
    assert!(!r.stderr().contains("baseline"), "{}", r.stderr());
    drop(r);

    // With the Schedule, start_scan() every second drives the scans.
    let dir = workdir("ref2");
    let c = write_conf(dir.path(), REF2);
    let start = file_len(&log);
    let mut r = w.spawn(dir.path(), c);
    r.wait_log("baseline", Duration::from_secs(20));
    w.reg(&[
        "add",
        r"HKLM\Software",
        "/v",
        "RegmonRef2",
        "/d",
        "two",
        "/f",
    ]);
    w.reg(&[
        "add",
        r"HKLM\Software\Program Groups",
        "/v",
        "X",
        "/d",
        "x",
        "/f",
    ]);
    let want = vec![ev(
        "NEW",
        r"HKLM\Software\RegmonRef2",
        Some(&sz("two")),
        None,
    )];
    let t = Instant::now();
    while events(&log, start).is_empty() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    // One more scheduled scan: still nothing for Program Groups.
    std::thread::sleep(Duration::from_millis(1500));
    drop(r);
    w.reg(&["delete", r"HKLM\Software", "/v", "RegmonRef2", "/f"]);
    w.reg_delete_key(r"HKLM\Software\Program Groups");
    assert_eq!(events(&log, start), want);
}

#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn value_types_default_and_non_ascii_names() {
    let w = wine_or_skip!();
    let k = r"HKLM\Software\RegmonTest\Types";
    w.reg_delete_key(k);
    w.reg(&[
        "add",
        k,
        "/v",
        "Multi",
        "/t",
        "REG_MULTI_SZ",
        "/d",
        r"ab\0c",
        "/f",
    ]);
    w.reg(&[
        "add",
        k,
        "/v",
        "Gone",
        "/t",
        "REG_SZ",
        "/d",
        "soon gone",
        "/f",
    ]);
    let dir = workdir("types");
    let c = write_conf(dir.path(), &conf(&[&format!("{k}\\*")], "ScanInterval 0\n"));
    w.once(dir.path(), c);

    w.reg(&["add", k, "/v", "Sz", "/t", "REG_SZ", "/d", "text", "/f"]);
    w.reg(&[
        "add",
        k,
        "/v",
        "Exp",
        "/t",
        "REG_EXPAND_SZ",
        "/d",
        "%SystemRoot%\\x",
        "/f",
    ]);
    // The same total size, the boundary between the strings moved.
    w.reg(&[
        "add",
        k,
        "/v",
        "Multi",
        "/t",
        "REG_MULTI_SZ",
        "/d",
        r"a\0bc",
        "/f",
    ]);
    w.reg(&[
        "add",
        k,
        "/v",
        "Bin",
        "/t",
        "REG_BINARY",
        "/d",
        "0102ff00",
        "/f",
    ]);
    w.reg(&[
        "add",
        k,
        "/v",
        "Dw",
        "/t",
        "REG_DWORD",
        "/d",
        "0x12345678",
        "/f",
    ]);
    w.reg(&[
        "add",
        k,
        "/v",
        "Qw",
        "/t",
        "REG_QWORD",
        "/d",
        "0x1122334455667788",
        "/f",
    ]);
    w.reg(&["add", k, "/v", "None", "/t", "REG_NONE", "/d", "", "/f"]);
    w.reg(&["add", k, "/ve", "/d", "default!", "/f"]);
    w.reg(&["add", k, "/v", "Grüße €✓ 日本", "/d", "ü", "/f"]);
    w.reg(&["delete", k, "/v", "Gone", "/f"]);
    w.once(dir.path(), c);
    let p = |n: &str| format!("{k}\\{n}");
    let want = vec![
        ev("NEW", &p("Sz"), Some(&sz("text")), None),
        // REG_EXPAND_SZ: the stored text, not expanded.
        ev("NEW", &p("Exp"), Some(&sz("%SystemRoot%\\x")), None),
        ev(
            "CHANGE",
            &p("Multi"),
            Some(&multi(&["a", "bc"])),
            Some(&multi(&["ab", "c"])),
        ),
        ev("NEW", &p("Bin"), Some(&[1, 2, 0xff, 0]), None),
        ev("NEW", &p("Dw"), Some(&0x1234_5678u32.to_le_bytes()), None),
        ev(
            "NEW",
            &p("Qw"),
            Some(&0x1122_3344_5566_7788u64.to_le_bytes()),
            None,
        ),
        ev("NEW", &p("None"), Some(&[0, 0]), None),
        ev("NEW", &p("(Default)"), Some(&sz("default!")), None),
        ev("NEW", &p("Grüße €✓ 日本"), Some(&sz("ü")), None),
        ev("DELETE", &p("Gone"), None, Some(&sz("soon gone"))),
    ];
    assert_eq!(events(&dir.path().join("out.log"), 0), sorted(want));

    // A type change with the same bytes is a CHANGE.
    w.reg(&[
        "add",
        k,
        "/v",
        "Sz",
        "/t",
        "REG_EXPAND_SZ",
        "/d",
        "text",
        "/f",
    ]);
    let from = file_len(&dir.path().join("out.log"));
    w.once(dir.path(), c);
    assert_eq!(
        events(&dir.path().join("out.log"), from),
        vec![ev("CHANGE", &p("Sz"), Some(&sz("text")), Some(&sz("text")))]
    );
    w.reg_delete_key(k);
}

#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn names_keep_the_stored_case() {
    let w = wine_or_skip!();
    let k = r"HKLM\Software\RegmonTest\MiXeD Case\Ünïcode Kéy";
    w.reg_delete_key(r"HKLM\Software\RegmonTest\MiXeD Case");
    w.reg(&["add", k, "/v", "VaLuE", "/d", "v", "/f"]);
    let dir = workdir("case");
    // The configuration spells every component differently.
    let c = write_conf(
        dir.path(),
        &conf(
            &[r"hkey_local_machine\SOFTWARE\regmontest\mixed case\*\value"],
            "ScanInterval 0\n",
        ),
    );
    w.once(dir.path(), c);
    w.reg(&["add", k, "/v", "VaLuE", "/d", "w", "/f"]);
    w.once(dir.path(), c);
    assert_eq!(
        events(&dir.path().join("out.log"), 0),
        vec![ev(
            "CHANGE",
            r"HKLM\Software\RegmonTest\MiXeD Case\Ünïcode Kéy\VaLuE",
            Some(&sz("w")),
            Some(&sz("v")),
        )]
    );
    w.reg_delete_key(r"HKLM\Software\RegmonTest\MiXeD Case");
}

#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn deleted_key_and_excluded_subtree() {
    let w = wine_or_skip!();
    let base = r"HKLM\Software\RegmonTest\Tree";
    w.reg_delete_key(base);
    w.reg(&["add", &format!(r"{base}\A"), "/v", "a", "/d", "1", "/f"]);
    w.reg(&[
        "add",
        &format!(r"{base}\A\Deep"),
        "/v",
        "d",
        "/d",
        "2",
        "/f",
    ]);
    w.reg(&["add", &format!(r"{base}\Skip"), "/v", "s", "/d", "3", "/f"]);
    w.reg(&[
        "add",
        &format!(r"{base}\Skip\Deeper"),
        "/v",
        "s2",
        "/d",
        "4",
        "/f",
    ]);
    w.reg(&["add", &format!(r"{base}\Keep"), "/v", "k", "/d", "5", "/f"]);
    let dir = workdir("tree");
    let extra = format!("Recursive TRUE\nExclude '{base}\\Skip'\nScanInterval 0\n");
    let c = write_conf(dir.path(), &conf(&[&format!("{base}\\*")], &extra));
    w.once(dir.path(), c);
    // Delete key A (and A\Deep); change everything under the excluded Skip.
    w.reg(&["delete", &format!(r"{base}\A"), "/f"]);
    w.reg(&[
        "add",
        &format!(r"{base}\Skip"),
        "/v",
        "s",
        "/d",
        "changed",
        "/f",
    ]);
    w.reg(&[
        "add",
        &format!(r"{base}\Skip\Deeper"),
        "/v",
        "new",
        "/d",
        "n",
        "/f",
    ]);
    w.reg(&["add", &format!(r"{base}\Keep"), "/v", "k", "/d", "6", "/f"]);
    w.once(dir.path(), c);
    let want = vec![
        ev("DELETE", &format!(r"{base}\A\a"), None, Some(&sz("1"))),
        ev("DELETE", &format!(r"{base}\A\Deep\d"), None, Some(&sz("2"))),
        ev(
            "CHANGE",
            &format!(r"{base}\Keep\k"),
            Some(&sz("6")),
            Some(&sz("5")),
        ),
    ];
    assert_eq!(events(&dir.path().join("out.log"), 0), sorted(want));
    w.reg_delete_key(base);
}

#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn view_32_reads_reg_32_values() {
    let w = wine_or_skip!();
    let k = r"HKLM\Software\RegmonTest\View";
    w.reg_delete_key(k);
    let _ = w.cmd(&["reg", "delete", k, "/f", "/reg:32"]).run();
    let d32 = workdir("view32");
    let d64 = workdir("view64");
    // Spelled in another case: events show the stored names, also through
    // the redirected 32-bit view.
    let pat = format!("{}\\*", k.to_lowercase());
    let c32 = write_conf(
        d32.path(),
        &conf(&[&pat], "64BitView FALSE\nScanInterval 0\n"),
    );
    let c64 = write_conf(
        d64.path(),
        &conf(&[&pat], "64BitView TRUE\nScanInterval 0\n"),
    );
    w.once(d32.path(), c32);
    w.once(d64.path(), c64);
    w.reg(&[
        "add",
        k,
        "/v",
        "Only32",
        "/d",
        "thirty-two",
        "/f",
        "/reg:32",
    ]);
    w.reg(&[
        "add",
        k,
        "/v",
        "Only64",
        "/d",
        "sixty-four",
        "/f",
        "/reg:64",
    ]);
    w.once(d32.path(), c32);
    w.once(d64.path(), c64);
    assert_eq!(
        events(&d32.path().join("out.log"), 0),
        vec![ev(
            "NEW",
            &format!(r"{k}\Only32"),
            Some(&sz("thirty-two")),
            None
        )]
    );
    assert_eq!(
        events(&d64.path().join("out.log"), 0),
        vec![ev(
            "NEW",
            &format!(r"{k}\Only64"),
            Some(&sz("sixty-four")),
            None
        )]
    );
    w.reg_delete_key(k);
    let _ = w.cmd(&["reg", "delete", k, "/f", "/reg:32"]).run();
}

/// Foreground: after the baseline, a `reg add` must reach out.log within
/// `limit`. Returns regmon's log.
fn foreground_latency(name: &str, extra: &str, limit: Duration) -> String {
    let w = wine_or_skip!();
    let k = format!(r"HKLM\Software\RegmonTest\{name}");
    w.reg_delete_key(&k);
    w.reg(&["add", &k, "/v", "Before", "/d", "b", "/f"]);
    let dir = workdir(name);
    let c = write_conf(dir.path(), &conf(&[&format!("{k}\\*")], extra));
    let mut r = w.spawn(dir.path(), c);
    r.wait_log("baseline", Duration::from_secs(30));
    let out = dir.path().join("out.log");
    let mut seen = BTreeSet::new();
    for round in 0..2 {
        let v = format!("After{round}");
        w.reg(&["add", &k, "/v", &v, "/d", "a", "/f"]);
        let t = Instant::now();
        loop {
            let evs = events(&out, 0);
            if evs.iter().any(|e| e.name.ends_with(&format!("\\{v}"))) {
                seen.extend(evs.into_iter().map(|e| e.name));
                break;
            }
            assert!(
                t.elapsed() < limit,
                "{name}: no event for {v} within {limit:?}; log: {}",
                r.stderr()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        eprintln!(
            "{name}: {v} reported {:.2} s after reg add",
            t.elapsed().as_secs_f64()
        );
    }
    let log = r.stderr();
    drop(r);
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        vec![format!(r"{k}\After0"), format!(r"{k}\After1")]
    );
    w.reg_delete_key(&k);
    log
}

#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn realtime_reports_within_2_seconds() {
    wine_or_skip!();
    let log = foreground_latency(
        "Realtime",
        "ScanInterval 3600\nRealtime TRUE\n",
        Duration::from_secs(2),
    );
    // The notification's key alone was rescanned, not the whole input.
    assert!(
        log.contains(r"rescan of HKLM\Software\RegmonTest\Realtime: "),
        "{log}"
    );
}

#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn realtime_recursive_sees_new_subkeys() {
    let w = wine_or_skip!();
    let k = r"HKLM\Software\RegmonTest\RealtimeTree";
    w.reg_delete_key(k);
    w.reg(&["add", k, "/v", "Top", "/d", "t", "/f"]);
    let dir = workdir("rttree");
    let c = write_conf(
        dir.path(),
        &conf(
            &[&format!("{k}\\*")],
            "ScanInterval 3600\nRecursive TRUE\nRealtime TRUE\n",
        ),
    );
    let mut r = w.spawn(dir.path(), c);
    r.wait_log("baseline", Duration::from_secs(30));
    w.reg(&[
        "add",
        &format!(r"{k}\New\Deeper"),
        "/v",
        "Deep",
        "/d",
        "d",
        "/f",
    ]);
    let t = Instant::now();
    let out = dir.path().join("out.log");
    while events(&out, 0).is_empty() {
        assert!(t.elapsed() < Duration::from_secs(2), "{}", r.stderr());
        std::thread::sleep(Duration::from_millis(25));
    }
    drop(r);
    assert_eq!(
        events(&out, 0),
        vec![ev(
            "NEW",
            &format!(r"{k}\New\Deeper\Deep"),
            Some(&sz("d")),
            None
        )]
    );
    w.reg_delete_key(k);
}

#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn scan_interval_2_reports_within_5_seconds() {
    let _ = foreground_latency(
        "Polling",
        "ScanInterval 2\nRealtime FALSE\n",
        Duration::from_secs(5),
    );
}

#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn windows_paths_and_cli() {
    let w = wine_or_skip!();
    let dir = workdir("cli");
    let log = r"C:\test\regmon-cli\out.log";
    let text = conf(&[r"HKLM\Software\RegmonTest\Cli\*"], "ScanInterval 0\n")
        .replace("File 'out.log'", &format!("File '{log}'\nCreateDir TRUE"));
    let c = write_conf(dir.path(), &text);
    let file = w.prefix.join("drive_c/test/regmon-cli/out.log");
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
    w.reg_delete_key(r"HKLM\Software\RegmonTest\Cli");
    let out = w.regmon(dir.path(), &["-c", c, "--verify"]);
    assert!(out.status.success(), "{out:?}");
    // A broken configuration: an error naming the file and line, exit 1.
    std::fs::write(
        dir.path().join("bad.conf"),
        "<Input x>\nModule im_nothing\n</Input>\n",
    )
    .unwrap();
    let out = w.regmon(dir.path(), &["-c", "bad.conf", "--verify"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.conf"),
        "{out:?}"
    );

    w.reg(&[
        "add",
        r"HKLM\Software\RegmonTest\Cli",
        "/v",
        "x",
        "/d",
        "1",
        "/f",
    ]);
    w.once(dir.path(), c);
    w.reg(&[
        "add",
        r"HKLM\Software\RegmonTest\Cli",
        "/v",
        "x",
        "/d",
        "2",
        "/f",
    ]);
    w.once(dir.path(), c);
    assert!(file.is_file(), "CreateDir made C:\\test\\regmon-cli");
    assert_eq!(
        events(&file, 0),
        vec![ev(
            "CHANGE",
            r"HKLM\Software\RegmonTest\Cli\x",
            Some(&sz("2")),
            Some(&sz("1"))
        )]
    );
    w.reg_delete_key(r"HKLM\Software\RegmonTest\Cli");

    // Offline hives work under Windows too: hive dump and diff.
    let out = w.regmon(dir.path(), &["hive", "sample", "sample.hiv"]);
    assert!(out.status.success(), "{out:?}");
    let out = w.regmon(dir.path(), &["hive", "dump", "sample.hiv"]);
    assert!(out.status.success(), "{out:?}");
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(dump.lines().count() > 3, "{dump}");
    assert!(dump.contains("NoAutoUpdate"), "{dump}");
    let out = w.regmon(dir.path(), &["diff", "sample.hiv", "sample.hiv"]);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
}

#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn ctrl_c_stops_the_foreground_loop_cleanly() {
    let w = wine_or_skip!();
    let k = r"HKLM\Software\RegmonTest\CtrlC";
    w.reg_delete_key(k);
    w.reg(&["add", k, "/v", "V", "/d", "v", "/f"]);
    let dir = workdir("ctrlc");
    let c = write_conf(
        dir.path(),
        &conf(&[&format!("{k}\\*")], "ScanInterval 3600\n"),
    );
    let mut r = w.spawn(dir.path(), c);
    r.wait_log("baseline", Duration::from_secs(30));
    // Wine turns SIGINT into a console CTRL_C_EVENT for the process.
    let pid = r.child.id().to_string();
    let st = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(st.success());
    let t = Instant::now();
    let status = loop {
        if let Some(st) = r.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "still running 10 s after Ctrl-C: {}",
            r.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}: {}", r.stderr());
    assert!(r.stderr().contains("INFO stopped"), "{}", r.stderr());
    w.reg_delete_key(k);
}

#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn every_predefined_root_is_read() {
    let w = wine_or_skip!();
    // One key per root, named as `reg` and regmon both spell the roots.
    let keys = [
        r"HKLM\Software\RegmonTest\Roots",
        r"HKCU\Software\RegmonTest\Roots",
        r"HKU\.DEFAULT\Software\RegmonTest\Roots",
        r"HKCR\RegmonTest.Roots",
        r"HKCC\Software\RegmonTest\Roots",
    ];
    for k in keys {
        w.reg_delete_key(k);
        w.reg(&["add", k, "/v", "V", "/d", "before", "/f"]);
    }
    let dir = workdir("roots");
    let pats: Vec<String> = keys.iter().map(|k| format!("{k}\\*")).collect();
    let pats: Vec<&str> = pats.iter().map(String::as_str).collect();
    let c = write_conf(dir.path(), &conf(&pats, "ScanInterval 0\n"));
    let err = w.once(dir.path(), c);
    // Not a service here: no warning about HKCU belonging to the service's
    // own account.
    assert!(!err.contains("HKCU is that account's own hive"), "{err}");
    for k in keys {
        w.reg(&["add", k, "/v", "V", "/d", "after", "/f"]);
    }
    w.once(dir.path(), c);
    let want: Vec<Ev> = keys
        .iter()
        .map(|k| {
            // Names as stored: Wine's prefix spells HKU's key ".Default".
            let k = k.replace(".DEFAULT", ".Default");
            ev(
                "CHANGE",
                &format!(r"{k}\V"),
                Some(&sz("after")),
                Some(&sz("before")),
            )
        })
        .collect();
    assert_eq!(events(&dir.path().join("out.log"), 0), sorted(want));
    for k in keys {
        w.reg_delete_key(k);
    }
}

/// The JSON lines of a file, in order.
fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn report_data_and_key_events_on_the_live_registry() {
    let w = wine_or_skip!();
    let k = r"HKLM\Software\RegmonTest\Data";
    w.reg_delete_key(k);
    w.reg(&["add", k, "/v", "Keep", "/t", "REG_DWORD", "/d", "7", "/f"]);
    let dir = workdir("data");
    let extra = "Recursive TRUE\nReportData TRUE\nKeyEvents TRUE\nScanInterval 0\n";
    let c = write_conf(dir.path(), &conf(&[&format!("{k}\\*")], extra));
    w.once(dir.path(), c);
    let sub = format!(r"{k}\New");
    w.reg(&[
        "add",
        &sub,
        "/v",
        "Multi",
        "/t",
        "REG_MULTI_SZ",
        "/d",
        r"a\0bc",
        "/f",
    ]);
    w.reg(&["add", k, "/v", "Keep", "/t", "REG_DWORD", "/d", "8", "/f"]);
    w.once(dir.path(), c);
    w.reg(&["delete", &sub, "/f"]);
    w.once(dir.path(), c);
    let got: Vec<String> = json_lines(&dir.path().join("out.log"))
        .iter()
        .map(|v| {
            let name = v
                .get("RegistryValueName")
                .or_else(|| v.get("RegistryKeyName"))
                .and_then(|n| n.as_str())
                .unwrap();
            let show = |f: &str| v.get(f).map(|x| x.to_string()).unwrap_or_default();
            format!(
                "{} {name} {} {} {}",
                v["EventType"].as_str().unwrap(),
                show("RegistryValueType"),
                show("Value"),
                show("PrevValue")
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            format!(r#"CHANGE {k}\Keep "REG_DWORD" 8 7"#),
            format!(r#"NEW_KEY {k}\New   "#),
            format!(r#"NEW {k}\New\Multi "REG_MULTI_SZ" ["a","bc"] "#),
            format!(r#"DELETE_KEY {k}\New   "#),
            format!(r#"DELETE {k}\New\Multi   ["a","bc"]"#),
        ]
    );
    w.reg_delete_key(k);
}

#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn a_scan_split_across_threads_equals_one_on_a_single_thread() {
    let w = wine_or_skip!();
    let k = r"HKLM\Software\RegmonTest\Split";
    w.reg_delete_key(k);
    // Values on the monitored key itself and in subtrees of several sizes;
    // names chosen so that values and subkeys interleave in path order.
    let mut reg = format!("Windows Registry Editor Version 5.00\r\n\r\n[{k}]\r\n");
    reg.push_str("\"A\"=\"top a\"\r\n\"C\\\\x\"=\"top c\"\r\n\"z\"=dword:00000001\r\n");
    for (i, sub) in ["A", "B", "C", "Skip", "b2"].iter().enumerate() {
        for d in 0..3 {
            let path = format!("{k}\\{sub}{}", "\\deeper".repeat(d));
            reg.push_str(&format!("\r\n[{path}]\r\n"));
            for v in 0..(i + d + 1) {
                reg.push_str(&format!("\"v{v}\"=\"{sub} {d} {v}\"\r\n"));
            }
        }
    }
    let dir = workdir("split");
    std::fs::write(dir.path().join("split.reg"), reg).unwrap();
    let out = w
        .cmd(&["reg", "import", "split.reg"])
        .current_dir(dir.path())
        .run();
    assert!(out.status.success(), "{out:?}");
    let extra = format!("Recursive TRUE\nKeyEvents TRUE\nExclude '{k}\\Skip'\nScanInterval 0\n");
    let text = format!(
        "LogLevel DEBUG\n{}",
        conf(&[&format!("{k}\\*"), &format!("{k}\\B\\*")], &extra)
    );
    let (one, many) = (workdir("split1"), workdir("splitn"));
    let run = |d: &Path, threads: &str| {
        let out = w
            .cmd(&[w.exe.to_str().unwrap(), "-c", "regmon.conf", "--once"])
            .env("REGMON_LIVE_THREADS", threads)
            .current_dir(d)
            .run();
        assert!(out.status.success(), "{out:?}");
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        // The monitored key's own values and each subkey's subtree.
        assert_eq!(
            log.contains("live registry scan in 6 parts on 2 threads")
                || log.contains("live registry scan in 7 parts on 2 threads"),
            threads == "2",
            "{log}"
        );
    };
    for (d, threads) in [(&one, "1"), (&many, "2")] {
        write_conf(d.path(), &text);
        run(d.path(), threads);
    }
    w.reg(&["add", k, "/v", "A", "/d", "top a2", "/f"]);
    w.reg(&["delete", &format!(r"{k}\C\deeper"), "/f"]);
    w.reg(&[
        "add",
        &format!(r"{k}\B\deeper"),
        "/v",
        "new",
        "/d",
        "n",
        "/f",
    ]);
    w.reg(&[
        "add",
        &format!(r"{k}\Skip"),
        "/v",
        "hidden",
        "/d",
        "h",
        "/f",
    ]);
    w.reg(&["add", &format!(r"{k}\New\Key"), "/v", "n", "/d", "n", "/f"]);
    for (d, threads) in [(&one, "1"), (&many, "2")] {
        run(d.path(), threads);
    }
    let lines = |d: &Path| {
        json_lines(&d.join("out.log"))
            .into_iter()
            .map(|mut v| {
                let o = v.as_object_mut().unwrap();
                o.remove("EventTime");
                o.remove("EventReceivedTime");
                v.to_string()
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (lines(one.path()), lines(many.path()));
    let kinds: Vec<&str> = a
        .iter()
        .map(|l| {
            l.split("\"EventType\":\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
        })
        .collect();
    // A changed value at the top, a new one deep in B, C\deeper deleted
    // (2 keys of 4 and 5 values, each key before its values), the new key
    // pair with its value; nothing from the excluded Skip.
    let mut want = vec!["CHANGE", "NEW", "DELETE_KEY"];
    want.extend(["DELETE"; 4]);
    want.push("DELETE_KEY");
    want.extend(["DELETE"; 5]);
    want.extend(["NEW_KEY", "NEW_KEY", "NEW"]);
    assert_eq!(kinds, want, "{a:#?}");
    assert_eq!(a, b);
    w.reg_delete_key(k);
}

#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn a_key_that_cannot_be_read_is_one_warning_and_the_scan_goes_on() {
    let w = wine_or_skip!();
    // Wine 8's 32-bit Perflib\009 opens but cannot be queried ("invalid
    // handle"): a key regmon cannot read, as an access-denied one is on
    // Windows (Wine does not enforce key security, so that cannot be made
    // here). The same code path reports both.
    let broken = r"HKLM\Software\Wow6432Node\Microsoft\Windows NT\CurrentVersion\Perflib";
    let k = r"HKLM\Software\RegmonTest\BesideBroken";
    w.reg_delete_key(k);
    w.reg(&["add", k, "/v", "V", "/d", "before", "/f"]);
    let dir = workdir("broken");
    let c = write_conf(
        dir.path(),
        &conf(
            &[&format!("{broken}\\*"), &format!("{k}\\*")],
            "Recursive TRUE\nScanInterval 0\n",
        ),
    );
    let err = w.once(dir.path(), c);
    let warning = format!(r"WARN {broken}\009: cannot read the key: ");
    assert_eq!(
        err.matches(&warning).count(),
        1,
        "this test expects Wine 8's unreadable Perflib\\009 (one warning naming it): {err}"
    );
    w.reg(&["add", k, "/v", "V", "/d", "after", "/f"]);
    let err = w.once(dir.path(), c);
    assert_eq!(err.matches(&warning).count(), 1, "{err}");
    assert_eq!(
        events(&dir.path().join("out.log"), 0),
        vec![ev(
            "CHANGE",
            &format!(r"{k}\V"),
            Some(&sz("after")),
            Some(&sz("before"))
        )]
    );
    w.reg_delete_key(k);
}

/// Churn under key `k` while regmon scans it: the stable entries of `reg`
/// (a .reg file body) are imported once; `add` and `del` (reg arguments)
/// create and delete an entry that sorts before them all, so every change
/// shifts the later indexes mid-enumeration. Only `churned` may have
/// events, and they net to nothing; returns the events and how many key
/// listings had to be repeated.
fn churn_never_hides_others(
    k: &str,
    reg: String,
    extra: &str,
    add: &[&str],
    del: &[&str],
    churned: &str,
) -> (usize, usize, usize) {
    let w = wine().expect("checked by the caller");
    let dir = workdir("churn");
    std::fs::write(dir.path().join("churn.reg"), reg).unwrap();
    let out = w
        .cmd(&["reg", "import", "churn.reg"])
        .current_dir(dir.path())
        .run();
    assert!(out.status.success(), "{out:?}");
    let c = write_conf(
        dir.path(),
        &format!("LogLevel DEBUG\n{}", conf(&[&format!("{k}\\*")], extra)),
    );
    w.once(dir.path(), c);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        let add: Vec<String> = add.iter().map(|a| a.to_string()).collect();
        let del: Vec<String> = del.iter().map(|a| a.to_string()).collect();
        std::thread::spawn(move || {
            let (add, del): (Vec<&str>, Vec<&str>) = (
                add.iter().map(String::as_str).collect(),
                del.iter().map(String::as_str).collect(),
            );
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                w.reg(&add);
                w.reg(&del);
                n += 1;
            }
            n
        })
    };
    let mut relisted = 0;
    for _ in 0..10 {
        relisted += w.once(dir.path(), c).matches("listing it again").count();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let rounds = churn.join().unwrap();
    w.once(dir.path(), c);
    let evs = events(&dir.path().join("out.log"), 0);
    let wrong: Vec<&Ev> = evs.iter().filter(|e| e.name != churned).collect();
    assert!(
        wrong.is_empty(),
        "{rounds} churn rounds; events for stable values: {wrong:?}"
    );
    // The last scan ran after the churn stopped with the entry deleted: the
    // net of its events is "absent".
    let net: i32 = evs
        .iter()
        .map(|e| match e.kind.as_str() {
            "NEW" => 1,
            "DELETE" => -1,
            _ => 0,
        })
        .sum();
    assert_eq!(net, 0, "{evs:?}");
    w.reg_delete_key(k);
    (rounds, evs.len(), relisted)
}

#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn values_added_and_deleted_mid_scan_never_hide_others() {
    let w = wine_or_skip!();
    let k = r"HKLM\Software\RegmonTest\Churn";
    w.reg_delete_key(k);
    let mut reg = format!("Windows Registry Editor Version 5.00\r\n\r\n[{k}]\r\n");
    for i in 0..3000 {
        reg.push_str(&format!("\"S{i:04}\"=\"value {i}\"\r\n"));
    }
    let (rounds, n, relisted) = churn_never_hides_others(
        k,
        reg,
        "ScanInterval 0\n",
        &["add", k, "/v", "A0", "/d", "x", "/f"],
        &["delete", k, "/v", "A0", "/f"],
        &format!(r"{k}\A0"),
    );
    eprintln!("churn: {rounds} add/delete rounds during 10 scans, {n} A0 events, {relisted} keys listed again");
}

#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn subkeys_added_and_deleted_mid_scan_never_hide_others() {
    let w = wine_or_skip!();
    let k = r"HKLM\Software\RegmonTest\KeyChurn";
    w.reg_delete_key(k);
    let mut reg = format!("Windows Registry Editor Version 5.00\r\n\r\n[{k}]\r\n");
    for i in 0..1500 {
        reg.push_str(&format!("\r\n[{k}\\S{i:04}]\r\n\"v\"=\"value {i}\"\r\n"));
    }
    let sub = format!(r"{k}\A0");
    let (rounds, n, relisted) = churn_never_hides_others(
        k,
        reg,
        "Recursive TRUE\nScanInterval 0\n",
        &["add", &sub, "/v", "a", "/d", "x", "/f"],
        &["delete", &sub, "/f"],
        &format!(r"{sub}\a"),
    );
    eprintln!("key churn: {rounds} create/delete rounds during 10 scans, {n} A0 events, {relisted} keys listed again");
}

/// An access control entry: type, flags, access mask, SID as text.
#[cfg(unix)]
type Ace = (u8, u8, u32, String);

/// Wine keeps a file's security descriptor in the `user.wine.sd` extended
/// attribute (two bytes, then the server's `security_descriptor`: control,
/// owner, group, SACL and DACL lengths as u32, then those parts); it does
/// not enforce it on access, but maps it to the Unix mode bits, which the
/// kernel enforces. Returns the DACL's control bits and its ACEs as (type,
/// flags, mask, SID text).
#[cfg(unix)]
fn wine_dacl(path: &Path) -> Option<(u32, Vec<Ace>)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let name = c"user.wine.sd";
    let mut buf = vec![0u8; 65536];
    // SAFETY: `c` and `name` are NUL-terminated; `buf` is writable for its length.
    let n = unsafe {
        libc::getxattr(
            c.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let b = buf.get(..usize::try_from(n).ok()?)?;
    let u32_at = |i: usize| Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?));
    let control = u32_at(2)?;
    let (owner, group, sacl) = (u32_at(6)?, u32_at(10)?, u32_at(14)?);
    let dacl = 22 + (owner + group + sacl) as usize;
    let count = u16::from_le_bytes(b.get(dacl + 4..dacl + 6)?.try_into().ok()?);
    let mut aces = Vec::new();
    let mut at = dacl + 8;
    for _ in 0..count {
        let size = u16::from_le_bytes(b.get(at + 2..at + 4)?.try_into().ok()?) as usize;
        let sid = b.get(at + 8..at + size)?;
        let auth = sid
            .get(2..8)?
            .iter()
            .fold(0u64, |a, &x| a << 8 | u64::from(x));
        let mut text = format!("S-{}-{auth}", sid[0]);
        for k in 0..usize::from(sid[1]) {
            let sub = sid.get(8 + 4 * k..12 + 4 * k)?;
            text.push_str(&format!("-{}", u32::from_le_bytes(sub.try_into().ok()?)));
        }
        aces.push((b[at], b[at + 1], u32_at(at + 4)?, text));
        at += size;
    }
    Some((control, aces))
}

#[cfg(unix)]
#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn created_files_get_a_private_dacl_and_writable_config_warns() {
    use std::os::unix::fs::PermissionsExt;
    let w = wine_or_skip!();
    let k = r"HKLM\Software\RegmonTest\Perms";
    w.reg_delete_key(k);
    w.reg(&["add", k, "/v", "V", "/d", "before", "/f"]);
    let dir = workdir("perms");
    let text = conf(&[&format!("{k}\\*")], "ScanInterval 0\n")
        .replace("File 'out.log'", "File 'logs\\out.log'\nCreateDir TRUE");
    let c = write_conf(dir.path(), &format!("CacheDir 'state\\cache'\n{text}"));
    // Others may write the configuration: Wine shows a 0666 file as a DACL
    // granting Everyone write access, which regmon names.
    std::fs::set_permissions(dir.path().join(c), std::fs::Permissions::from_mode(0o666)).unwrap();
    let err = w.once(dir.path(), c);
    assert!(
        err.contains("the configuration file regmon.conf is not private to regmon's account: its DACL lets Everyone change it"),
        "{err}"
    );
    w.reg(&["add", k, "/v", "V", "/d", "after", "/f"]);
    w.once(dir.path(), c);
    for rel in [
        "state",
        "state/cache",
        "state/cache/regmon-regmon.sqlite.lock",
        "logs",
        "logs/out.log",
    ] {
        let p = dir.path().join(rel);
        let is_dir = p.is_dir();
        // Wine maps the DACL given at creation to the Unix mode, which the
        // kernel enforces: nothing for others, and no write for the group
        // (Wine 8 gives the group read: 0740 / 0640).
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        eprintln!("{rel}: mode {:o}", mode & 0o7777);
        assert_eq!(mode & 0o027, 0, "{rel}: mode {mode:o}");
        // Wine 8 does not store a descriptor given at creation (only one set
        // later, with SetSecurityInfo); when it does, it must be ours.
        let Some((control, aces)) = wine_dacl(&p) else {
            continue;
        };
        // SE_DACL_PROTECTED: nothing inherited from the parent.
        assert_ne!(control & 0x1000, 0, "{rel}: DACL not protected");
        let inherit = if is_dir { 3 } else { 0 }; // OBJECT_INHERIT | CONTAINER_INHERIT
        let sids: Vec<&str> = aces.iter().map(|a| a.3.as_str()).collect();
        assert_eq!(aces.len(), 3, "{rel}: {aces:?}");
        assert_eq!(&sids[..2], ["S-1-5-18", "S-1-5-32-544"], "{rel}");
        assert!(sids[2].starts_with("S-1-5-21-"), "{rel}: {aces:?}");
        for (ty, flags, mask, sid) in &aces {
            assert_eq!(
                (*ty, *flags, *mask),
                (0, inherit, 0x1f_01ff),
                "{rel}: {sid}"
            );
        }
    }
    assert_eq!(events(&dir.path().join("logs/out.log"), 0).len(), 1);
    w.reg_delete_key(k);
}

// ---------------------------------------------------------------------------
// Shipping from the Windows binary (issue 14): om_tcp frames LineBased
// events with CRLF, as NXLog does on Windows; om_ssl does the same inside
// TLS. The receivers are in this test, on 127.0.0.1.

/// Accepts connections on `l` and gathers every byte received, over TLS
/// when `tls` is given, until `stop` is set.
fn gather(
    l: std::net::TcpListener,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> std::sync::Arc<Mutex<Vec<u8>>> {
    use std::io::Read;
    let got = std::sync::Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { return };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
            let g = g.clone();
            let tls = tls.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let mut stream: Box<dyn Read> = match tls {
                    Some(cfg) => Box::new(rustls::StreamOwned::new(
                        rustls::ServerConnection::new(cfg).unwrap(),
                        conn,
                    )),
                    None => Box::new(conn),
                };
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    g.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
    });
    got
}

/// Three changes under `key` shipped by regmon.exe through `output` (an
/// `<Output t>` body); returns what the receiver got once it holds three
/// CRLF-ended lines.
fn ship_three(w: &Wine, name: &str, key: &str, output: &str, got: &Mutex<Vec<u8>>) -> Vec<u8> {
    let dir = workdir(name);
    w.reg_delete_key(key);
    w.reg(&["add", key, "/v", "Chg", "/t", "REG_DWORD", "/d", "1", "/f"]);
    w.reg(&["add", key, "/v", "Del", "/d", "bye", "/f"]);
    let text = format!(
        "<Extension json>\nModule xm_json\n</Extension>\n<Input regmon>\nModule im_regmon\n\
         RegValue '{key}\\*'\nScanInterval 0\n</Input>\n<Output t>\n{output}Exec to_json();\n</Output>\n\
         <Route r>\nPath regmon => t\n</Route>\n"
    );
    let conf = write_conf(dir.path(), &text);
    w.once(dir.path(), conf);
    w.reg(&["add", key, "/v", "Chg", "/t", "REG_DWORD", "/d", "2", "/f"]);
    w.reg(&["delete", key, "/v", "Del", "/f"]);
    w.reg(&["add", key, "/v", "New", "/d", "hi", "/f"]);
    w.once(dir.path(), conf);
    let t = Instant::now();
    loop {
        let bytes = got.lock().unwrap().clone();
        if bytes.windows(2).filter(|p| p == b"\r\n").count() >= 3 {
            w.reg_delete_key(key);
            return bytes;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the receiver has {:?}",
            String::from_utf8_lossy(&bytes)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every line ends with CRLF (no bare LF) and is one event's JSON.
fn crlf_events(bytes: &[u8]) -> BTreeSet<(String, String)> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(text.ends_with("\r\n"), "{text:?}");
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    lines
        .iter()
        .map(|l| {
            assert!(!l.contains('\n'), "a bare LF: {text:?}");
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["EventType"].as_str().unwrap().to_string(),
                v["RegistryValueName"]
                    .as_str()
                    .unwrap()
                    .rsplit('\\')
                    .next()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

fn three() -> BTreeSet<(String, String)> {
    [("CHANGE", "Chg"), ("DELETE", "Del"), ("NEW", "New")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn om_tcp_from_windows_ends_lines_with_crlf() {
    let w = wine_or_skip!();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = gather(l, None);
    let bytes = ship_three(
        w,
        "tcp",
        r"HKLM\Software\RegmonShipTcp",
        &format!("Module om_tcp\nHost 127.0.0.1:{port}\n"),
        &got,
    );
    assert_eq!(crlf_events(&bytes), three());
}

#[test]
#[ignore = "needs Wine and REGMON_EXE; scripts/wine-test.sh runs it"]
fn om_ssl_from_windows_checks_the_certificate_and_ends_lines_with_crlf() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let w = wine_or_skip!();
    let dir = workdir("ssl-pki");
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "regmon wine CA");
    let ca_key = KeyPair::generate().unwrap();
    std::fs::write(
        dir.path().join("ca.pem"),
        ca.self_signed(&ca_key).unwrap().pem(),
    )
    .unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = gather(l, Some(std::sync::Arc::new(cfg)));
    // The CA file by its Windows path (Z: is the Linux root under Wine).
    let ca_path = format!("Z:{}", dir.path().join("ca.pem").display()).replace('/', "\\");
    let bytes = ship_three(
        w,
        "ssl",
        r"HKLM\Software\RegmonShipSsl",
        &format!("Module om_ssl\nHost localhost:{port}\nCAFile '{ca_path}'\n"),
        &got,
    );
    assert_eq!(crlf_events(&bytes), three());
}
