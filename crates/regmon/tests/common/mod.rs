//! Helpers for the end-to-end tests: temp folders with hives and configs,
//! running the real binary, and reading its output with the volatile fields
//! (times, host name) normalised so whole lines compare byte for byte.
#![allow(dead_code)]

pub mod http;
pub mod listen;
pub mod rsyslog;

use hive::write::{to_bytes, KeyNode, WriteOptions};
use hive::ValueType;
use sha1::Digest as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_regmon");

/// A temp folder holding hives, configurations and outputs.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The absolute path of `rel`, as text for a configuration.
    pub fn abs(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }

    pub fn write_hive(&self, rel: &str, tree: &KeyNode) {
        write_hive(&self.path(rel), tree);
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(p, text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_default()
    }

    /// The binary with `args`, run in the temp folder.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path()).args(args);
        // The baseline key and side records: never the real home.
        c.env("REGMON_KEY_DIR", self.dir.path().join(".regmon-keys"));
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// `regmon -c CONF --once`, which must succeed; returns its log (stderr).
    pub fn once(&self, conf: &str) -> String {
        let out = self.run(&["-c", conf, "--once"]);
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "--once failed ({}): {log}",
            out.status
        );
        log
    }

    /// The normalised lines of an output file, then the file is removed.
    pub fn take(&self, rel: &str) -> Vec<String> {
        let lines = self.lines(rel);
        std::fs::remove_file(self.path(rel)).ok();
        lines
    }

    /// The normalised lines of an output file.
    pub fn lines(&self, rel: &str) -> Vec<String> {
        self.read(rel).lines().map(normalise).collect()
    }

    /// Starts the monitor in the foreground, its log going to `log`.
    pub fn spawn(&self, conf: &str, log: &str) -> Child {
        let f = std::fs::File::create(self.path(log)).unwrap();
        self.cmd(&["-c", conf])
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .unwrap()
    }
}

pub fn write_hive(path: &Path, tree: &KeyNode) {
    // Write beside and rename: a running monitor never maps a half-written file.
    let tmp = path.with_extension("tmp-write");
    let mut f = std::fs::File::create(&tmp).unwrap();
    f.write_all(&to_bytes(tree, &WriteOptions::default()))
        .unwrap();
    drop(f);
    std::fs::rename(&tmp, path).unwrap();
}

/// Waits up to `limit` for `cond`; true if it held.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    cond()
}

/// Sends SIGTERM to a child (through kill(1): no libc in the tests).
pub fn sigterm(child: &Child) {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// Waits for a child to exit, killing it after `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if start.elapsed() > limit {
            child.kill().ok();
            panic!("the monitor did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A JSON string field's value replaced by `with`; the value is checked by `check`.
fn replace_field(line: &mut String, field: &str, with: &str, check: impl Fn(&str) -> bool) {
    let key = format!("\"{field}\":\"");
    if let Some(at) = line.find(&key) {
        let start = at + key.len();
        let end = start + line[start..].find('"').expect("closed string");
        assert!(
            check(&line[start..end]),
            "{field} '{}' is malformed in {line}",
            &line[start..end]
        );
        line.replace_range(start..end, with);
    }
}

/// `YYYY-MM-DDThh:mm:ss.ffffff+hh:mm` (xm_json's default, local time).
pub fn is_json_time(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.into_iter().all(|i| b[i].is_ascii_digit());
    b.len() == 32
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..26)
        && (b[26] == b'+' || b[26] == b'-')
        && digits(27..29)
        && b[29] == b':'
        && digits(30..32)
}

/// The line with EventTime, EventReceivedTime (checked to be well formed)
/// and Hostname (checked non-empty) replaced by `T`, `T` and `HOST`.
pub fn normalise(line: &str) -> String {
    let mut s = line.to_string();
    replace_field(&mut s, "EventTime", "T", is_json_time);
    replace_field(&mut s, "EventReceivedTime", "T", is_json_time);
    replace_field(&mut s, "Hostname", "HOST", |h| {
        !h.is_empty() && !h.contains('.')
    });
    s
}

pub fn sha1_hex(data: &[u8]) -> String {
    sha1::Sha1::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// JSON string escaping of a registry path (backslashes only, in these tests).
fn js(s: &str) -> String {
    s.replace('\\', "\\\\")
}

fn type_field(t: ValueType) -> String {
    match t.name() {
        Some(n) => format!("\"{n}\""),
        None => t.0.to_string(),
    }
}

/// One state of a value: type and data.
#[derive(Clone)]
pub struct V {
    pub ty: ValueType,
    pub data: Vec<u8>,
}

pub fn v(ty: ValueType, data: impl Into<Vec<u8>>) -> V {
    V {
        ty,
        data: data.into(),
    }
}

/// The normalised JSON line regmon must write for an event (SHA1, module
/// `regmon`): NXLog's fields in NXLog's order, then regmon's value types.
pub fn expect_line(module: &str, path: &str, old: Option<&V>, new: Option<&V>) -> String {
    let kind = match (old, new) {
        (None, Some(_)) => "NEW",
        (Some(_), Some(_)) => "CHANGE",
        (Some(_), None) => "DELETE",
        (None, None) => unreachable!(),
    };
    let mut s = format!(
        "{{\"EventTime\":\"T\",\"Hostname\":\"HOST\",\"EventType\":\"{kind}\",\"RegistryValueName\":\"{}\"",
        js(path)
    );
    if let Some(o) = old {
        s += &format!(",\"PrevValueSize\":{}", o.data.len());
    }
    if let Some(n) = new {
        s += &format!(",\"ValueSize\":{}", n.data.len());
    }
    s += ",\"DigestName\":\"SHA1\"";
    if let Some(o) = old {
        s += &format!(",\"PrevDigest\":\"{}\"", sha1_hex(&o.data));
    }
    if let Some(n) = new {
        s += &format!(",\"Digest\":\"{}\"", sha1_hex(&n.data));
    }
    s += &format!(
        ",\"Severity\":\"WARNING\",\"SeverityValue\":3,\"EventReceivedTime\":\"T\",\"SourceModuleName\":\"{module}\",\"SourceModuleType\":\"im_regmon\""
    );
    if let Some(n) = new {
        s += &format!(",\"RegistryValueType\":{}", type_field(n.ty));
    }
    if let Some(o) = old {
        s += &format!(",\"PrevRegistryValueType\":{}", type_field(o.ty));
    }
    s.push('}');
    s
}

pub fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain([0])
        .flat_map(|u| u.to_le_bytes())
        .collect()
}

pub fn multi(items: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for i in items {
        out.extend(utf16z(i));
    }
    out.extend([0, 0]);
    out
}

pub fn dword(n: u32) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

/// A hive tree with `n` DWORD values under `ROOT\key`, value `i` named
/// `name(i)` with data `data(i)` (names are unique, so values are pushed
/// without the lookup `set_value` does for each).
pub fn dword_tree(
    key: &str,
    n: u32,
    name: impl Fn(u32) -> String,
    data: impl Fn(u32) -> u32,
) -> KeyNode {
    let mut root = KeyNode::new("ROOT");
    let k = root.key_mut(key);
    for i in 0..n {
        k.values.push(hive::write::ValueNode {
            name: name(i).encode_utf16().collect(),
            value_type: ValueType::DWORD,
            data: dword(data(i)),
        });
    }
    root
}

/// The standard output section of the tests' configurations: JSON lines to `file`.
/// `EventType name Digest` of each JSON event in the file at `path` (the
/// value's name, or the key's for key events), which is then emptied.
pub fn take_event_summaries(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    std::fs::write(path, "").unwrap();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let name = v
                .get("RegistryValueName")
                .or_else(|| v.get("RegistryKeyName"))
                .and_then(|n| n.as_str())
                .unwrap_or("");
            let digest = v.get("Digest").and_then(|n| n.as_str()).unwrap_or("");
            format!("{} {name} {digest}", v["EventType"].as_str().unwrap_or(""))
        })
        .collect()
}

pub fn json_output(file: &str) -> String {
    format!(
        "<Extension json>\n Module xm_json\n</Extension>\n\
         <Output file>\n Module om_file\n File '{file}'\n Exec to_json();\n</Output>\n\
         <Route r>\n Path regmon => file\n</Route>\n"
    )
}

/// A configuration with one im_regmon input `regmon` over `SOFTWARE`
/// (mounted at HKLM\SOFTWARE) and its directives, writing JSON to `out.log`.
pub fn simple_conf(env: &Env, input_directives: &str) -> String {
    let text = format!(
        "<Input regmon>\n Module im_regmon\n HiveFile 'HKLM\\SOFTWARE' 'SOFTWARE'\n{input_directives}\n</Input>\n{}",
        json_output(&env.abs("out.log"))
    );
    env.write("regmon.conf", &text);
    "regmon.conf".into()
}

/// The order regmon reports values in: their identities' order (see
/// `regmon::path::ident`). `path` is `KEY\...\NAME`, its last component the
/// value's name.
pub fn event_order_key(path: &str) -> Vec<u8> {
    let (key, name) = path.rsplit_once('\\').unwrap_or(("", path));
    let parts: Vec<&str> = key.split('\\').filter(|p| !p.is_empty()).collect();
    regmon::path::ident::value_id(&regmon::path::ident::key_id(&parts), name.as_bytes())
}

/// Sorts value paths as regmon reports them (see [`event_order_key`]).
pub fn sort_as_events(paths: &mut [String]) {
    paths.sort_by_key(|p| event_order_key(p));
}

/// A baseline row's identity as a path, `KEY\...\NAME`, the default value
/// as `(Default)`, as events show it.
pub fn id_to_path(id: &[u8]) -> String {
    use regmon::path::ident;
    let parts = ident::parse(id).expect("a baseline identity");
    let mut p = ident::display_key(&parts.keys);
    if let Some(name) = parts.value {
        p.push('\\');
        p.push_str(&ident::display_value_name(&name));
    }
    p
}
