//! The corpus (issue 15): real, public nxlog.conf files for SIEMs and log
//! services (tests/corpus/NAME.conf; SOURCES.md gives each one's source,
//! license and whether it is kept verbatim or rebuilt), each with an
//! im_regmon input and a route into its outputs added (NAME.regmon).
//!
//! - `--verify` of each, compared with NAME.verify (exit code, stdout,
//!   stderr; the temp folder shown as `$DIR`, log times as `TIME`).
//!   `REGMON_BLESS=1` rewrites the expected files; review the diff.
//! - Where the output is a network one, two `--once` runs (a baseline, then
//!   a changed hive) against a receiver started here on 127.0.0.1: rsyslog
//!   for syslog (TCP, UDP, TLS), small listeners for GELF, JSON and raw
//!   lines; the registry events are checked in the wire format the
//!   configuration asks for. A configuration refused for a placeholder
//!   runs with it filled in; one refused for a module, a procedure or a
//!   route regmon does not run has no run.
//!
//! Network safety: the published files keep their hosts (real addresses,
//! placeholders). `--verify` reads them inside a network namespace with no
//! network at all when `unshare -rn` works (it does not connect anyway);
//! every run uses a copy whose Output blocks' Host, Port, URL and
//! certificate lines were rewritten, checked to name 127.0.0.1 only before
//! the binary starts.
#![cfg(unix)]

mod common;

use common::http::make_certs;
use common::listen::{Datagrams, TcpLines};
use common::rsyslog::{Rsyslog, Tls};
use common::*;
use hive::write::KeyNode;
use hive::ValueType;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The corpus folder; `REGMON_CORPUS_DIR` names another (the same file
/// names, e.g. variants reduced to what a branch supports, to try the
/// harness itself).
fn corpus_dir() -> PathBuf {
    std::env::var_os("REGMON_CORPUS_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus"),
        PathBuf::from,
    )
}

/// One configuration of the corpus and what `--verify` must answer.
struct Case {
    name: &'static str,
    /// `--verify`'s exit code (0: regmon runs the im_regmon part faithfully).
    verify_exit: i32,
    /// Why, when it is 1 (also what NAME.verify must say).
    refusal: &'static str,
}

/// Every configuration of the corpus. The runs are the tests below.
const CASES: &[Case] = &[
    Case {
        name: "alienvault_usm",
        verify_exit: 1,
        refusal: "CHANGEME",
    },
    Case {
        name: "blumira",
        verify_exit: 0,
        refusal: "",
    },
    Case {
        name: "datadog_tcp",
        verify_exit: 0,
        refusal: "",
    },
    Case {
        name: "dhcp_syslog",
        verify_exit: 1,
        refusal: "# your syslog address here!!!",
    },
    Case {
        name: "elk_logstash_json",
        verify_exit: 0,
        refusal: "",
    },
    // om_http's set_http_request_path() is NXLog's, not regmon's (yet).
    Case {
        name: "es_sysmon_http",
        verify_exit: 1,
        refusal: "set_http_request_path",
    },
    Case {
        name: "graylog_gelf_udp",
        verify_exit: 1,
        refusal: "[Graylog.Server.IP.Address]",
    },
    Case {
        name: "graylog_security_ids",
        verify_exit: 0,
        refusal: "",
    },
    Case {
        name: "logdna",
        verify_exit: 1,
        refusal: "CUSTOM_PORT",
    },
    Case {
        name: "logentries_iis",
        verify_exit: 0,
        refusal: "",
    },
    // Its published route puts an Output between '=>'s.
    Case {
        name: "nps_userid",
        verify_exit: 1,
        refusal: "expected an <Processor>",
    },
    Case {
        name: "nxlog_guide_buffer",
        verify_exit: 0,
        refusal: "",
    },
    Case {
        name: "rapid7_insightidr",
        verify_exit: 0,
        refusal: "",
    },
    Case {
        name: "splunk_exec_null",
        verify_exit: 1,
        refusal: "om_null",
    },
    Case {
        name: "wef_patterndb",
        verify_exit: 1,
        refusal: "pm_pattern",
    },
    Case {
        name: "winlogs_udp_json",
        verify_exit: 1,
        refusal: "$IP",
    },
];

fn corpus_file(name: &str) -> PathBuf {
    corpus_dir().join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(corpus_file(name))
        .unwrap_or_else(|e| panic!("{}: {e}", corpus_file(name).display()))
}

/// The binary under test; `REGMON_CORPUS_BIN` names another build (to try
/// the corpus on a branch without rebuilding this test).
fn bin() -> PathBuf {
    std::env::var_os("REGMON_CORPUS_BIN").map_or_else(|| PathBuf::from(BIN), PathBuf::from)
}

/// `cmd` run in `env`'s folder, with the baseline key folder there too.
fn in_env<'a>(cmd: &'a mut Command, env: &Env) -> &'a mut Command {
    cmd.current_dir(env.dir.path())
        .env("REGMON_KEY_DIR", env.dir.path().join(".regmon-keys"))
}

/// The published configuration with the im_regmon input and route added.
fn joined(name: &str) -> String {
    format!(
        "{}\n{}",
        read(&format!("{name}.conf")),
        read(&format!("{name}.regmon"))
    )
}

/// The registry the added inputs watch (`HKLM\SOFTWARE\Policies`, with a
/// subkey: the inputs are Recursive), generation 1 or 2.
fn tree(generation: u32) -> KeyNode {
    let mut root = KeyNode::new("ROOT");
    let p = root.key_mut("Policies");
    p.set_value("NoAutoUpdate", ValueType::DWORD, dword(2 - generation));
    if generation == 1 {
        p.set_value("Blob", ValueType::BINARY, vec![1u8, 2, 3, 4]);
    } else {
        p.set_value("NewSetting", ValueType::SZ, utf16z("added"));
    }
    let sub = p.key_mut("Sub");
    sub.set_value("Deep", ValueType::SZ, utf16z(&format!("text {generation}")));
    root
}

/// The events the second run reports: (EventType, RegistryValueName).
fn expected_events() -> BTreeSet<(String, String)> {
    [
        ("DELETE", "Blob"),
        ("NEW", "NewSetting"),
        ("CHANGE", "NoAutoUpdate"),
        ("CHANGE", "Sub\\Deep"),
    ]
    .iter()
    .map(|(t, v)| (t.to_string(), format!("HKLM\\SOFTWARE\\Policies\\{v}")))
    .collect()
}

/// Test certificates: CA, and a server certificate for 127.0.0.1.
struct Certs {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Certs {
    fn new(env: &Env) -> Certs {
        let (ca, cert, key) = make_certs(env.dir.path(), "corpus-ca");
        Certs { ca, cert, key }
    }
}

/// Where a run sends: the receiver's port, and its URL for om_http.
struct Dest {
    port: u16,
    url: Option<String>,
}

/// `text` with the given directives of every Output block rewritten by
/// `f(directive lower case, indentation) -> Some(new line)`; other lines
/// (and every line outside Output blocks) unchanged.
fn rewrite_outputs(text: &str, f: impl Fn(&str, &str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut in_output = false;
    for line in text.lines() {
        let t = line.trim_start();
        let lower = t.to_ascii_lowercase();
        if lower.starts_with("<output") {
            in_output = true;
        } else if lower.starts_with("</output") {
            in_output = false;
        }
        let word = lower.split_whitespace().next().unwrap_or("");
        let indent = &line[..line.len() - t.len()];
        match (in_output && !t.starts_with('#'))
            .then(|| f(word, indent))
            .flatten()
        {
            Some(new) => out.push_str(&new),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Certificate paths of Output blocks pointed at the test's certificates
/// (the published ones are Windows paths that do not exist here).
fn with_test_certs(text: &str, certs: &Certs) -> String {
    rewrite_outputs(text, |word, indent| {
        let (name, p) = match word {
            "cafile" => ("CAFile", &certs.ca),
            "certfile" => ("CertFile", &certs.cert),
            "certkeyfile" => ("CertKeyFile", &certs.key),
            _ => return None,
        };
        Some(format!("{indent}{name} '{}'", p.display()))
    })
}

/// The copy a run uses: every Output's Host, Port and URL point at `dest`.
fn localized(text: &str, certs: &Certs, dest: &Dest) -> String {
    let text = with_test_certs(text, certs);
    let text = rewrite_outputs(&text, |word, indent| match word {
        "host" => Some(format!("{indent}Host 127.0.0.1")),
        "port" => Some(format!("{indent}Port {}", dest.port)),
        "url" => dest.url.as_ref().map(|u| format!("{indent}URL {u}")),
        _ => None,
    });
    assert_only_local(&text);
    text
}

/// Every Host and URL of every Output block names 127.0.0.1: the run may
/// start. (Inputs are not checked: regmon runs im_regmon inputs only.)
fn assert_only_local(text: &str) {
    let mut in_output = false;
    for line in text.lines() {
        let t = line.trim();
        let lower = t.to_ascii_lowercase();
        if lower.starts_with("<output") {
            in_output = true;
        } else if lower.starts_with("</output") {
            in_output = false;
        } else if in_output && !t.starts_with('#') {
            let mut words = t.split_whitespace();
            let word = words.next().unwrap_or("").to_ascii_lowercase();
            let value = words.next().unwrap_or("");
            let ok = match word.as_str() {
                "host" => value == "127.0.0.1",
                "url" => value.starts_with("http://127.0.0.1:"),
                "brokerlist" => value.starts_with("127.0.0.1:"),
                _ => true,
            };
            assert!(ok, "refusing to run: '{t}' is not 127.0.0.1");
        }
    }
}

/// A corpus configuration in a temp folder with the generation-1 hive.
struct Corpus {
    name: &'static str,
    env: Env,
    certs: Certs,
}

impl Corpus {
    fn new(name: &'static str) -> Corpus {
        let env = Env::new();
        env.write_hive("SOFTWARE", &tree(1));
        let certs = Certs::new(&env);
        Corpus { name, env, certs }
    }

    /// Baseline run, the hive changed, second run: the events are sent.
    fn two_runs(&self, dest: &Dest) {
        let text = localized(&joined(self.name), &self.certs, dest);
        self.env.write("nxlog.conf", &text);
        self.once();
        self.env.write_hive("SOFTWARE", &tree(2));
        self.once();
    }

    fn once(&self) {
        let out = in_env(&mut Command::new(bin()), &self.env)
            .args(["-c", "nxlog.conf", "--once"])
            .output()
            .expect("run regmon --once");
        if !out.status.success() {
            panic!(
                "{}: --once failed ({}): {}\n{}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.logs()
            );
        }
    }

    /// Every file the run wrote whose name ends in `.log` (LogFile of
    /// Windows paths lands in the folder with backslashes in its name).
    fn logs(&self) -> String {
        let mut s = String::new();
        for e in std::fs::read_dir(self.env.dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with(".log") {
                s += &format!(
                    "--- {n}\n{}",
                    std::fs::read_to_string(e.path()).unwrap_or_default()
                );
            }
        }
        s
    }
}

/// (EventType, RegistryValueName) of each registry event in `texts` (JSON
/// anywhere in the text, GELF's `_` fields, or `Key=Value` pairs); texts
/// about no `HKLM\SOFTWARE\Policies` value (regmon's own log) are skipped.
/// A registry event of the test's pattern, not regmon's own log, which
/// names the pattern too (its coverage line) where a file routes im_internal
/// to the same output.
fn is_event(text: &str) -> bool {
    text.contains("Policies") && text.contains("RegistryValueName")
}

fn events_in(texts: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in texts {
        if !t.contains("Policies") {
            continue;
        }
        let json = t
            .find('{')
            .zip(t.rfind('}'))
            .and_then(|(a, b)| serde_json::from_str::<serde_json::Value>(&t[a..=b]).ok());
        let field = |k: &str| -> Option<String> {
            let j = json.as_ref()?;
            j.get(k)
                .or_else(|| j.get(format!("_{k}")))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        // Key=Value pairs, or RFC 5424 SD-PARAMs (quoted, `\\` escaped).
        let kv = |k: &str| -> Option<String> {
            let at = t.find(&format!("{k}="))? + k.len() + 1;
            let v = &t[at..];
            Some(match v.strip_prefix('"') {
                Some(q) => {
                    let mut s = String::new();
                    let mut chars = q.chars();
                    while let Some(c) = chars.next() {
                        match c {
                            '"' => break,
                            '\\' => s.extend(chars.next()),
                            c => s.push(c),
                        }
                    }
                    s
                }
                None => v.split(' ').next().unwrap_or("").to_string(),
            })
        };
        let path = field("RegistryValueName").or_else(|| kv("RegistryValueName"));
        let kind = field("EventType").or_else(|| kv("EventType"));
        if let (Some(k), Some(p)) = (kind, path) {
            if p.starts_with("HKLM\\SOFTWARE\\Policies\\") {
                out.push((k, p));
            }
        }
    }
    out.sort();
    out
}

/// regmon's own log came too, as im_internal events (a scan summary of
/// each run), where the configuration routes its im_internal input to the
/// same output (a route mixing it with inputs left to NXLog keeps it).
fn assert_internal(name: &str, texts: &[String]) {
    assert!(
        texts
            .iter()
            .any(|t| t.contains("\"SourceModuleType\":\"im_internal\"") && t.contains("scan done")),
        "{name}: no im_internal scan summary arrived; all: {texts:#?}"
    );
}

fn assert_events(name: &str, texts: &[String]) {
    let got = events_in(texts);
    let want: Vec<_> = expected_events().into_iter().collect();
    assert_eq!(
        got, want,
        "{name}: the registry events received; all: {texts:#?}"
    );
}

/// What rsyslog got: the PRI it parsed, and the message as received (the
/// text searched for events: a BSD header without a TAG makes rsyslog take
/// the start of the JSON for one).
fn rsyslog_texts(rs: &Rsyslog) -> Vec<(String, String)> {
    rs.messages()
        .iter()
        .map(|m| {
            let s = |k: &str| m[k].as_str().unwrap_or("").to_string();
            (s("pri"), s("raw"))
        })
        .collect()
}

fn wait_rsyslog(rs: &Rsyslog, n: usize) -> Vec<(String, String)> {
    let start = std::time::Instant::now();
    loop {
        let all = rsyslog_texts(rs);
        let texts: Vec<String> = all.iter().map(|(_, m)| m.clone()).collect();
        if events_in(&texts).len() >= n || start.elapsed() > Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(300));
            return rsyslog_texts(rs);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The registry events rsyslog got carry PRI `pri`; returns rsyslog's
/// parsed messages (JSON text) of the registry events.
fn check_rsyslog(name: &str, rs: &Rsyslog, pri: &str) -> Vec<serde_json::Value> {
    let all = wait_rsyslog(rs, 4);
    let texts: Vec<String> = all.iter().map(|(_, m)| m.clone()).collect();
    assert_events(name, &texts);
    let ours: Vec<serde_json::Value> = rs
        .messages()
        .into_iter()
        // The registry events only: regmon's own log (im_internal, routed
        // to the same output by some of these files) names the pattern's
        // path too, in its coverage line, with its own PRI.
        .filter(|m| is_event(&m.to_string()))
        .collect();
    for m in &ours {
        assert_eq!(m["pri"], pri, "{name}: {m}");
    }
    ours
}

// ---------------------------------------------------------------- verify

/// Normalised output of `--verify` for NAME.verify.
/// With `crlf`, the file is written with CRLF line ends (as Notepad saves
/// it): the answer must not change.
/// Each in a fresh folder (the first `--verify` there creates the
/// baseline key, and says so).
fn verify_text(name: &str, crlf: bool) -> (i32, String) {
    let env = Env::new();
    env.write_hive("SOFTWARE", &tree(1));
    let certs = Certs::new(&env);
    let text = with_test_certs(&joined(name), &certs);
    let text = if crlf {
        text.replace('\n', "\r\n")
    } else {
        text
    };
    env.write("nxlog.conf", &text);
    // No network at all for the published hosts, where namespaces work.
    let mut cmd = if unshare_works() {
        let mut u = Command::new("unshare");
        u.arg("-rn").arg(bin());
        u
    } else {
        Command::new(bin())
    };
    let out = in_env(&mut cmd, &env)
        .args(["-c", "nxlog.conf", "--verify"])
        .output()
        .expect("run regmon --verify");
    let code = out.status.code().unwrap_or(-1);
    let dir = env.dir.path().display().to_string();
    let norm = |b: &[u8]| -> String {
        String::from_utf8_lossy(b)
            .replace(&dir, "$DIR")
            .lines()
            .map(log_time)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let text = format!(
        "exit {code}\n--- stdout\n{}\n--- stderr\n{}\n",
        norm(&out.stdout),
        norm(&out.stderr)
    );
    (code, text)
}

/// A log line's leading RFC 3339 time replaced by `TIME`.
fn log_time(line: &str) -> String {
    let b = line.as_bytes();
    let timed =
        b.len() > 20 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[10] == b'T';
    match line.find(' ').filter(|_| timed) {
        Some(sp) => format!("TIME{}", &line[sp..]),
        None => line.to_string(),
    }
}

fn unshare_works() -> bool {
    Command::new("unshare")
        .args(["-rn", "true"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// `--verify` of every configuration against NAME.verify (and the same
/// answer for its CRLF copy), and its exit code against the table; every
/// difference is reported at once.
#[test]
fn verify_matches_expected() {
    let bless = std::env::var_os("REGMON_BLESS").is_some();
    let mut failures = Vec::new();
    for case in CASES {
        let (code, text) = verify_text(case.name, false);
        let (_, crlf) = verify_text(case.name, true);
        if crlf != text {
            failures.push(format!(
                "{}: --verify answers otherwise for the CRLF copy:\n{crlf}",
                case.name
            ));
        }
        let file = corpus_file(&format!("{}.verify", case.name));
        if bless {
            std::fs::write(&file, &text).unwrap();
        }
        let want = std::fs::read_to_string(&file).unwrap_or_default();
        if text != want {
            failures.push(format!(
                "{}: --verify differs from {} (REGMON_BLESS=1 rewrites it):\n{text}",
                case.name,
                file.display()
            ));
        }
        if code != case.verify_exit {
            failures.push(format!(
                "{}: --verify exit {code}, expected {}:\n{text}",
                case.name, case.verify_exit
            ));
        }
        failures.extend(report_problems(case, &joined(case.name), &text));
        if case.verify_exit == 1 && !text.contains(case.refusal) {
            failures.push(format!(
                "{}: --verify does not name '{}':\n{text}",
                case.name, case.refusal
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Module instances of a configuration: (kind, name, module lower case),
/// from its active lines (`#` comments are not instances).
fn instances(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') {
            continue;
        }
        let lower = t.to_ascii_lowercase();
        for kind in ["extension", "input", "output", "processor"] {
            if lower.starts_with(&format!("<{kind} ")) {
                let name = t[kind.len() + 1..].trim_end_matches('>').trim().to_string();
                open = Some((kind.to_string(), name));
            }
        }
        if let (Some((kind, name)), Some(m)) = (open.as_ref(), lower.strip_prefix("module")) {
            let module = m.split_whitespace().next().unwrap_or("").to_string();
            out.push((kind.clone(), name.clone(), module));
            open = None;
        }
    }
    out
}

/// What a `--verify` answer must hold whatever the blessed file says
/// (helper B's format, /work/notes/verify-format.md): on success, every
/// module instance with its status, the added route, the added input's
/// patterns; on failure, nothing on stdout and the error count last.
fn report_problems(case: &Case, conf: &str, text: &str) -> Vec<String> {
    let mut bad = Vec::new();
    let (stdout, stderr) = text.split_once("\n--- stderr\n").unwrap_or((text, ""));
    if case.verify_exit == 0 {
        for (kind, name, module) in instances(conf) {
            let shown = stdout.lines().any(|l| {
                let l = l.to_ascii_lowercase();
                l.contains(&kind)
                    && l.contains(&format!(" {} ", name.to_ascii_lowercase()))
                    && l.contains(&format!(" {module} "))
                    && ["runs", "no effect", "left to nxlog"]
                        .iter()
                        .any(|s| l.contains(s))
            });
            if !shown {
                bad.push(format!(
                    "{}: --verify does not show {kind} '{name}' ({module}) with a status",
                    case.name
                ));
            }
        }
        for want in [
            "regmon_route",
            "HKLM\\SOFTWARE\\Policies\\*",
            "configuration is valid",
        ] {
            if !stdout.contains(want) {
                bad.push(format!("{}: --verify's report lacks '{want}'", case.name));
            }
        }
    } else {
        if stdout.trim() != "exit 1\n--- stdout".trim() {
            bad.push(format!(
                "{}: --verify failed but wrote a report on stdout",
                case.name
            ));
        }
        if !stderr.trim_end().ends_with("not started") {
            bad.push(format!(
                "{}: --verify's errors do not end with the count",
                case.name
            ));
        }
    }
    bad
}

/// Every NAME.conf has its NAME.regmon, a row in CASES and one in SOURCES.md.
#[test]
fn corpus_is_complete() {
    let sources = read("SOURCES.md");
    let mut names = BTreeSet::new();
    for e in std::fs::read_dir(corpus_dir()).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = n.strip_suffix(".conf") {
            names.insert(stem.to_string());
        }
    }
    assert!(names.len() >= 15, "{names:?}");
    let cases: BTreeSet<String> = CASES.iter().map(|c| c.name.to_string()).collect();
    assert_eq!(names, cases, "tests/corpus/*.conf and CASES");
    for n in &names {
        assert!(corpus_file(&format!("{n}.regmon")).exists(), "{n}.regmon");
        let row = sources
            .lines()
            .find(|l| l.starts_with(&format!("| {n} |")))
            .unwrap_or_else(|| panic!("{n} has no row in SOURCES.md"));
        // A rebuilt file says so on its first line; a verbatim one is the
        // published text, which does not.
        let first = read(&format!("{n}.conf"))
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        let rebuilt = first.starts_with("# Rebuilt (see SOURCES.md)");
        assert_eq!(rebuilt, row.contains("| rebuilt"), "{n}: '{first}' / {row}");
        assert!(rebuilt || row.contains("| verbatim |"), "{row}");
        assert!(row.contains("https://"), "{n}: no source URL");
    }
}

/// The harness never lets a published host through to a run.
#[test]
fn runs_only_reach_localhost() {
    let env = Env::new();
    let certs = Certs::new(&env);
    let dest = Dest {
        port: 9,
        url: Some("http://127.0.0.1:9/".into()),
    };
    for case in CASES {
        let text = localized(&joined(case.name), &certs, &dest);
        for published in [".invalid", "logdna.com", "logentries.com", "datadoghq"] {
            let active: Vec<&str> = text
                .lines()
                .filter(|l| {
                    !l.trim_start().starts_with('#') && !l.trim_start().starts_with("define")
                })
                .filter(|l| l.contains(published))
                .collect();
            assert!(
                active
                    .iter()
                    .all(|l| !l.trim_start().to_ascii_lowercase().starts_with("host")),
                "{}: {active:?}",
                case.name
            );
        }
    }
    let bad = "<Output o>\n Module om_tcp\n Host %SIEM%\n</Output>\n";
    let caught = std::panic::catch_unwind(|| assert_only_local(bad));
    assert!(caught.is_err(), "a published Host must stop the run");
}

// ------------------------------------------------------------------ runs

/// Blumira: RFC 3164 over TCP (to_syslog_bsd), the event as JSON in $Message.
#[test]
fn blumira_bsd_syslog_over_tcp() {
    let rs = Rsyslog::start_new();
    let c = Corpus::new("blumira");
    c.two_runs(&Dest {
        port: rs.tcp_port,
        url: None,
    });
    for m in check_rsyslog("blumira", &rs, "12") {
        assert!(
            m["msg"]
                .as_str()
                .unwrap_or("")
                .contains("\"SourceModuleType\":\"im_regmon\""),
            "{m}"
        );
    }
}

/// AlienVault USM: to_syslog_bsd over UDP after $EventTime became seconds.
#[test]
fn alienvault_bsd_syslog_over_udp() {
    let rs = Rsyslog::start_new();
    let c = Corpus::new("alienvault_usm");
    c.two_runs(&Dest {
        port: rs.udp_port,
        url: None,
    });
    check_rsyslog("alienvault_usm", &rs, "12");
}

/// Rapid7 InsightIDR: to_syslog_bsd over TLS (om_ssl, AllowUntrusted TRUE).
#[test]
fn rapid7_bsd_syslog_over_tls() {
    let c = Corpus::new("rapid7_insightidr");
    let mut rs = Rsyslog::with_tls(Tls {
        ca: c.certs.ca.clone(),
        cert: c.certs.cert.clone(),
        key: c.certs.key.clone(),
    });
    rs.start();
    let port = rs.tls_port.expect("TLS port");
    c.two_runs(&Dest { port, url: None });
    check_rsyslog("rapid7_insightidr", &rs, "12");
    let raw: Vec<String> = rsyslog_texts(&rs).into_iter().map(|(_, r)| r).collect();
    assert_internal("rapid7_insightidr", &raw);
}

/// LogDNA: RFC 5424 over TLS (CAFile verified) through a disk pm_buffer.
#[test]
fn logdna_ietf_syslog_over_tls_through_pm_buffer() {
    let c = Corpus::new("logdna");
    let mut rs = Rsyslog::with_tls(Tls {
        ca: c.certs.ca.clone(),
        cert: c.certs.cert.clone(),
        key: c.certs.key.clone(),
    });
    rs.start();
    let port = rs.tls_port.expect("TLS port");
    c.two_runs(&Dest { port, url: None });
    for m in check_rsyslog("logdna", &rs, "12") {
        assert!(
            m["sd"].as_str().unwrap_or("").starts_with("[NXLOG@14506 "),
            "{m}"
        );
    }
}

/// Logentries: RFC 5424 over TCP, its SD-ID replaced by the token (replace()).
#[test]
fn logentries_token_in_ietf_syslog_over_tcp() {
    let rs = Rsyslog::start_new();
    let c = Corpus::new("logentries_iis");
    c.two_runs(&Dest {
        port: rs.tcp_port,
        url: None,
    });
    for m in check_rsyslog("logentries_iis", &rs, "12") {
        assert!(
            m["sd"]
                .as_str()
                .unwrap_or("")
                .starts_with("[LOG-TOKEN-HERE@41506 tag=\"logentries\"]"),
            "{m}"
        );
    }
}

/// Windows DHCP's syslog idiom: $SyslogFacility LOCAL4, severity 6 -> PRI 166, over UDP.
#[test]
fn dhcp_syslog_facility_fields_over_udp() {
    let rs = Rsyslog::start_new();
    let c = Corpus::new("dhcp_syslog");
    c.two_runs(&Dest {
        port: rs.udp_port,
        url: None,
    });
    check_rsyslog("dhcp_syslog", &rs, "166");
}

/// Graylog: GELF datagrams (OutputType GELF) over UDP.
#[test]
fn graylog_gelf_over_udp() {
    for name in ["graylog_gelf_udp", "graylog_security_ids"] {
        let rx = Datagrams::start();
        let c = Corpus::new(name);
        c.two_runs(&Dest {
            port: rx.port,
            url: None,
        });
        let got = rx.got.wait_for(4, Duration::from_secs(30), is_event);
        assert_events(name, &got);
        for d in got.iter().filter(|d| is_event(d)) {
            let j: serde_json::Value =
                serde_json::from_str(d).unwrap_or_else(|e| panic!("{name}: {e}: {d}"));
            assert_eq!(j["version"], "1.1", "{name}: {d}");
            assert!(j["short_message"].is_string(), "{name}: {d}");
        }
    }
}

/// ELK: one JSON object per line over TCP (to_json()).
#[test]
fn elk_json_lines_over_tcp() {
    let rx = TcpLines::start();
    let c = Corpus::new("elk_logstash_json");
    c.two_runs(&Dest {
        port: rx.port,
        url: None,
    });
    let got = rx.got.wait_for(4, Duration::from_secs(30), is_event);
    assert_events("elk_logstash_json", &got);
    for l in got.iter().filter(|l| is_event(l)) {
        assert!(serde_json::from_str::<serde_json::Value>(l).is_ok(), "{l}");
    }
    assert_internal("elk_logstash_json", &got);
}

/// WinLogsZero2Hero: JSON datagrams over UDP (file_read() of a missing file
/// is a run-time error: logged, the statement skipped).
#[test]
fn winlogs_json_over_udp() {
    let rx = Datagrams::start();
    let c = Corpus::new("winlogs_udp_json");
    c.two_runs(&Dest {
        port: rx.port,
        url: None,
    });
    let got = rx.got.wait_for(4, Duration::from_secs(30), is_event);
    assert_events("winlogs_udp_json", &got);
}

/// Datadog: the API key, a space, then RFC 5424, one line per event over TCP.
#[test]
fn datadog_api_key_before_ietf_syslog_over_tcp() {
    let rx = TcpLines::start();
    let c = Corpus::new("datadog_tcp");
    c.two_runs(&Dest {
        port: rx.port,
        url: None,
    });
    let got = rx.got.wait_for(4, Duration::from_secs(30), is_event);
    assert_events("datadog_tcp", &got);
    for l in got.iter().filter(|l| is_event(l)) {
        assert!(l.starts_with("<DATADOG_API_KEY> <12>1 "), "{l}");
    }
}

/// NXLog's pm_buffer example: raw events over TCP through a memory buffer.
#[test]
fn nxlog_guide_buffer_raw_over_tcp() {
    let rx = TcpLines::start();
    let c = Corpus::new("nxlog_guide_buffer");
    c.two_runs(&Dest {
        port: rx.port,
        url: None,
    });
    let got = rx.got.wait_for(4, Duration::from_secs(30), is_event);
    assert_events("nxlog_guide_buffer", &got);
}
