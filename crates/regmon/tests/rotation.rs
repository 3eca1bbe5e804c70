//! om_file and log rotation: files renamed, removed or truncated under a
//! running monitor, many output files under a low descriptor limit,
//! reopen()/rotate_to()/file_cycle(), queued events after a corrected
//! `File`, and `Truncate TRUE`.

mod common;

use common::*;
use hive::write::KeyNode;
use hive::ValueType;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// `HKLM\SOFTWARE\P` with `n` DWORD values `v00000`... whose data depends
/// on `generation` (each generation changes every value).
fn tree(n: u32, generation: u32) -> KeyNode {
    dword_tree("P", n, |i| format!("v{i:05}"), |i| data(generation, i))
}

fn data(generation: u32, i: u32) -> u32 {
    generation * 1_000_000 + i
}

/// The CHANGE lines from `generation - 1` to `generation` for values `range`.
fn changes(generation: u32, range: std::ops::Range<u32>) -> Vec<String> {
    range
        .map(|i| {
            expect_line(
                "regmon",
                &format!("HKLM\\SOFTWARE\\P\\v{i:05}"),
                Some(&v(ValueType::DWORD, dword(data(generation - 1, i)))),
                Some(&v(ValueType::DWORD, dword(data(generation, i)))),
            )
        })
        .collect()
}

/// A configuration: input `regmon` over `P` with `input` directives, the
/// `file` output with `output` directives, and `extra` blocks.
fn conf(env: &Env, input: &str, output: &str, extra: &str) -> String {
    let text = format!(
        "<Extension json>\n Module xm_json\n</Extension>\n{extra}\
         <Input regmon>\n Module im_regmon\n HiveFile 'HKLM\\SOFTWARE' 'SOFTWARE'\n RegValue 'HKLM\\SOFTWARE\\P\\*'\n{input}\n</Input>\n\
         <Output file>\n Module om_file\n{output}\n</Output>\n\
         <Route r>\n Path regmon => file\n</Route>\n"
    );
    env.write("regmon.conf", &text);
    "regmon.conf".into()
}

fn json_to(env: &Env, rel: &str) -> String {
    format!(" File '{}'\n Exec to_json();", env.abs(rel))
}

/// Waits until the monitor's log shows the baseline built.
fn wait_baseline(env: &Env) {
    assert!(
        wait_for(Duration::from_secs(20), || env
            .read("run.log")
            .contains("baseline built")),
        "no baseline: {}",
        env.read("run.log")
    );
}

fn wait_lines(env: &Env, rel: &str, n: usize) -> bool {
    wait_for(Duration::from_secs(20), || env.lines(rel).len() >= n)
}

/// A running monitor, killed if a test fails before stopping it.
struct Monitor(Child);

impl Drop for Monitor {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.0.kill().ok();
            self.0.wait().ok();
        }
    }
}

fn spawn(env: &Env, conf: &str) -> Monitor {
    Monitor(env.spawn(conf, "run.log"))
}

fn stop(env: &Env, mut m: Monitor) -> String {
    sigterm(&m.0);
    let st = wait_exit(&mut m.0, Duration::from_secs(20));
    let log = env.read("run.log");
    assert!(st.success(), "SIGTERM must end regmon cleanly: {st}; {log}");
    log
}

/// logrotate's default: the file is renamed (and, a rotation later,
/// removed) while the monitor runs; later events go to a new file at the
/// configured path, none to the renamed or unlinked one.
#[test]
fn events_after_a_rename_and_delete_land_in_the_new_file() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &tree(5, 0));
    let c = conf(&env, " ScanInterval 1", &json_to(&env, "out.log"), "");
    let child = spawn(&env, &c);
    wait_baseline(&env);
    env.write_hive("SOFTWARE", &tree(5, 1));
    assert!(wait_lines(&env, "out.log", 5), "{}", env.read("run.log"));
    // Rename, then remove: the monitor's open file is now unlinked.
    std::fs::rename(env.path("out.log"), env.path("out.log.1")).unwrap();
    std::fs::remove_file(env.path("out.log.1")).unwrap();
    env.write_hive("SOFTWARE", &tree(5, 2));
    let after_delete = wait_lines(&env, "out.log", 5);
    // Rename only: nothing more may go to the renamed file.
    std::fs::rename(env.path("out.log"), env.path("out.log.1")).unwrap();
    env.write_hive("SOFTWARE", &tree(5, 3));
    let after_rename = wait_lines(&env, "out.log", 5);
    let log = stop(&env, child);
    assert!(after_delete, "no events after the delete: {log}");
    assert!(after_rename, "no events after the rename: {log}");
    assert_eq!(env.lines("out.log.1"), changes(2, 0..5));
    assert_eq!(env.lines("out.log"), changes(3, 0..5));
}

/// copytruncate: the file is copied and truncated in place; the next events
/// start at offset 0 (append mode), with no gap of NULs before them.
#[test]
fn events_after_a_copytruncate_start_the_file() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &tree(5, 0));
    let c = conf(&env, " ScanInterval 1", &json_to(&env, "out.log"), "");
    let child = spawn(&env, &c);
    wait_baseline(&env);
    env.write_hive("SOFTWARE", &tree(5, 1));
    assert!(wait_lines(&env, "out.log", 5), "{}", env.read("run.log"));
    std::fs::copy(env.path("out.log"), env.path("out.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(env.path("out.log"))
        .unwrap()
        .set_len(0)
        .unwrap();
    env.write_hive("SOFTWARE", &tree(5, 2));
    let appeared = wait_lines(&env, "out.log", 5);
    let log = stop(&env, child);
    assert!(appeared, "no events after the truncation: {log}");
    let bytes = std::fs::read(env.path("out.log")).unwrap();
    assert!(!bytes.contains(&0), "NUL bytes in the truncated file");
    assert_eq!(bytes.first(), Some(&b'{'));
    assert_eq!(env.lines("out.log"), changes(2, 0..5));
    assert_eq!(env.lines("out.log.1"), changes(1, 0..5));
}

/// A per-event `File` with 10,000 distinct files under `ulimit -n 256`:
/// every event is delivered, and the scans that follow still open the hive
/// and the baseline (at most 64 output files are open at once).
#[test]
fn ten_thousand_files_under_a_low_descriptor_limit() {
    const N: u32 = 10_000;
    let env = Env::new();
    env.write_hive("SOFTWARE", &tree(N, 0));
    let dir = env.abs("t");
    let c = conf(
        &env,
        " ScanInterval 1",
        &format!(
            " File '{dir}/' + $F + '.log'\n CreateDir TRUE\n Exec if $RegistryValueName =~ /(v\\d+)$/ $F = $1;\n Exec to_json();"
        ),
        "",
    );
    let log = std::fs::File::create(env.path("run.log")).unwrap();
    let mut cmd = std::process::Command::new("sh");
    cmd.current_dir(env.dir.path())
        // The baseline key and side records: never the real home.
        .env("REGMON_KEY_DIR", env.path(".regmon-keys"))
        .args(["-c", &format!("ulimit -n 256 && exec {BIN} -c {c}")])
        .stdout(Stdio::null())
        .stderr(log);
    let child = Monitor(cmd.spawn().unwrap());
    wait_baseline(&env);
    let last = format!("t/v{:05}.log", N - 1);
    let mut took = Vec::new();
    for generation in 1..=2u32 {
        let t0 = Instant::now();
        env.write_hive("SOFTWARE", &tree(N, generation));
        let done = wait_for(Duration::from_secs(120), || {
            env.read(&last).lines().count() >= generation as usize
        });
        took.push(t0.elapsed());
        assert!(
            done,
            "generation {generation} not delivered: {}",
            tail(&env)
        );
    }
    let log = stop(&env, child);
    eprintln!("10,000 files: delivered in {took:?} (scan interval 1 s included)");
    assert!(!log.contains("Too many open files"), "{}", tail(&env));
    assert!(!log.contains("failed"), "{}", tail(&env));
    let files = std::fs::read_dir(env.path("t")).unwrap().count();
    assert_eq!(files, N as usize);
    for i in [0, 1, 4999, 9998] {
        let got: Vec<String> = env
            .lines(&format!("t/v{i:05}.log"))
            .iter()
            .map(|l| l.replace(&format!(",\"F\":\"v{i:05}\""), ""))
            .collect();
        let want = [changes(1, i..i + 1), changes(2, i..i + 1)].concat();
        assert_eq!(got, want);
    }
    for i in 0..N {
        let n = env.read(&format!("t/v{i:05}.log")).lines().count();
        assert_eq!(n, 2, "v{i:05}.log");
    }
}

fn tail(env: &Env) -> String {
    let log = env.read("run.log");
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// xm_fileop's file_cycle() from a Schedule: `out.log` becomes `.1`, `.1`
/// becomes `.2`, and with max 3 the old `.3` is removed; the scan's events
/// then go to a new `out.log`.
#[test]
fn file_cycle_from_a_schedule() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &tree(3, 0));
    let out = env.abs("out.log");
    let c = conf(
        &env,
        " ScanInterval 1",
        &json_to(&env, "out.log"),
        &format!(
            "<Extension fileop>\n Module xm_fileop\n <Schedule>\n  When @startup\n  Exec file_cycle('{out}', 3);\n </Schedule>\n</Extension>\n"
        ),
    );
    env.once(&c);
    env.write("out.log", "gen0\n");
    env.write("out.log.1", "gen1\n");
    env.write("out.log.3", "gen3\n");
    env.write_hive("SOFTWARE", &tree(3, 1));
    let child = spawn(&env, &c);
    let appeared = wait_lines(&env, "out.log", 3);
    let log = stop(&env, child);
    assert!(appeared, "{log}");
    assert_eq!(env.read("out.log.1"), "gen0\n");
    assert_eq!(env.read("out.log.2"), "gen1\n");
    assert!(!env.path("out.log.3").exists());
    assert_eq!(env.lines("out.log"), changes(1, 0..3));
}

/// om_file's rotate_to() from the output's Schedule renames the output
/// file; reopen() (here on every event, through the instance) is harmless.
#[test]
fn rotate_to_and_reopen_from_the_output() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &tree(3, 0));
    let rotated = env.abs("rotated.log");
    let c = conf(
        &env,
        " ScanInterval 1",
        &format!(
            " File '{}'\n Exec to_json(); file->reopen();\n <Schedule>\n  When @startup\n  Exec rotate_to('{rotated}');\n </Schedule>",
            env.abs("out.log")
        ),
        "",
    );
    env.once(&c);
    env.write("out.log", "an older line\n");
    env.write_hive("SOFTWARE", &tree(3, 1));
    let child = spawn(&env, &c);
    let appeared = wait_lines(&env, "out.log", 3);
    let log = stop(&env, child);
    assert!(appeared, "{log}");
    assert_eq!(env.read("rotated.log"), "an older line\n");
    assert_eq!(env.lines("out.log"), changes(1, 0..3));
}

/// Events queued for a `File` whose folder is missing are delivered where
/// the corrected configuration says, not to the path they were queued for.
#[test]
fn queued_events_follow_a_corrected_file() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &tree(3, 0));
    let c = conf(&env, "", &json_to(&env, "missing/out.log"), "");
    env.once(&c);
    env.write_hive("SOFTWARE", &tree(3, 1));
    let out = env.run(&["-c", &c, "--once"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("stay queued"), "{log}");
    let c = conf(&env, "", &json_to(&env, "fixed.log"), "");
    env.once(&c);
    assert!(!env.path("missing").exists());
    assert_eq!(env.lines("fixed.log"), changes(1, 0..3));
}

/// The same with a File expression over event fields: the corrected
/// expression is evaluated over each queued event's fields.
#[test]
fn queued_events_follow_a_corrected_file_expression() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &tree(3, 0));
    let broken = format!(
        " File '{}/missing/' + $EventType + '.log'\n Exec to_json();",
        env.abs("")
    );
    let c = conf(&env, "", &broken, "");
    env.once(&c);
    env.write_hive("SOFTWARE", &tree(3, 1));
    let _ = env.run(&["-c", &c, "--once"]);
    let fixed = format!(
        " File '{}/' + lc($EventType) + '-' + $SourceModuleName + '.log'\n Exec to_json();",
        env.abs("")
    );
    let c = conf(&env, "", &fixed, "");
    env.once(&c);
    assert!(!env.path("missing").exists());
    assert_eq!(env.lines("change-regmon.log"), changes(1, 0..3));
}

/// An outbox written by the previous release (no `record` column) is still
/// delivered after the upgrade.
#[test]
fn an_outbox_from_the_previous_release_is_delivered() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &tree(3, 0));
    let c = conf(&env, "", &json_to(&env, "out.log"), "");
    env.once(&c);
    let db = rusqlite::Connection::open(env.path("regmon-cache/regmon-regmon.sqlite")).unwrap();
    db.execute_batch("ALTER TABLE outbox DROP COLUMN record")
        .unwrap();
    for (target, line) in [
        (env.abs("out.log"), "{\"old\":1}"),
        (env.abs("missing/out.log"), "{\"old\":2}"),
    ] {
        db.execute(
            "INSERT INTO outbox (output, target, line) VALUES ('file', ?1, ?2)",
            rusqlite::params![target, line.as_bytes()],
        )
        .unwrap();
    }
    drop(db);
    env.once(&c);
    // A constant File is evaluated again: both go to today's out.log.
    assert_eq!(env.read("out.log"), "{\"old\":1}\n{\"old\":2}\n");
}

/// `Truncate TRUE`: the file is emptied before each write, so it holds the
/// last event written.
#[test]
fn truncate_empties_the_file_before_each_write() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &tree(3, 0));
    let c = conf(
        &env,
        "",
        &format!("{}\n Truncate TRUE", json_to(&env, "out.log")),
        "",
    );
    env.once(&c);
    env.write("out.log", "an older line that is longer than any event, so that a write in place would leave its tail behind..............................................................................................................................................................................................................................................................................................................................................................................................................\n");
    env.write_hive("SOFTWARE", &tree(3, 1));
    env.once(&c);
    assert_eq!(env.lines("out.log"), changes(1, 2..3));
    let mut t = tree(3, 1);
    t.key_mut("P")
        .set_value("v00000", ValueType::DWORD, dword(data(2, 0)));
    env.write_hive("SOFTWARE", &t);
    env.once(&c);
    let want = expect_line(
        "regmon",
        "HKLM\\SOFTWARE\\P\\v00000",
        Some(&v(ValueType::DWORD, dword(data(1, 0)))),
        Some(&v(ValueType::DWORD, dword(data(2, 0)))),
    );
    assert_eq!(env.lines("out.log"), [want]);
}
