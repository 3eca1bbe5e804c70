//! Conformance against third-party readers.
//!
//! * `real_hives_match_manifest_and_hivex`: every primary hive in
//!   the corpus (`$REGMON_HIVES`, else the committed subset in
//!   testdata/hives) that all five reference readers open
//!   (manifest.json) is walked with our reader; key and value counts must
//!   equal the manifest's hivex counts, and every key (depth, name,
//!   last-written time, value count) and value (name, type, data bytes) must
//!   equal what hivex returns, dumped at test time by `hivex_dump.py`.
//! * `damaged_hives_fail_cleanly`: the hives no reference reader opens give a
//!   clear error or a partial read with warnings that name a file offset.
//! * `written_hives_read_identically_by_hivex_and_libregf`: hives built by our
//!   writer (every list format, `ri`, big data, odd types, UTF-16 names,
//!   class names) read back identically through hivex and libregf (and with
//!   the same key and value counts through reglookup).
//! * `unpaired_surrogate_names_in_hivex`: a name that is not valid UTF-16.
//!
//! The real hives are `$REGMON_HIVES` (the full corpus) when set, else the
//! subset committed in testdata/hives. The tests that need the reference
//! readers (python3-hivex, python3-libregf, reglookup) are `#[ignore]`d, so
//! a plain `cargo test` reports them as ignored, and `scripts/test.sh`
//! (which installs the readers) runs them with `--ignored`. Run that way, a
//! missing tool fails them.
//!
//! Known, accepted differences (each counted and printed, never silent):
//! * A UTF-16 name with an unpaired surrogate cannot be decoded by hivex (it
//!   recodes names to UTF-8 with iconv, which fails); our reader keeps the
//!   code units. Accepted when hivex reports the failure for exactly the names
//!   that are not valid Unicode.
//! * libregf decodes compressed names with the Windows-1252 code page (its
//!   default; it accepts no ISO-8859-1), while the format specification
//!   defines them as "extended ASCII": UTF-16 code units below 256 with the
//!   high byte dropped, i.e. Latin-1 (shared/specs/regf-format-specification.md,
//!   `lf` "Name hint" and nk `KEY_COMP_NAME`). Bytes 0x80..0x9F are the only
//!   ones where the two differ, so the writer test keeps them out of names.
//! * Written hives only: libregf returns wrong bytes for inline data of 1 to
//!   3 bytes (a libregf bug, see `check_dump`).

mod common;
use common::utf16z;

use hive::write::{to_bytes, KeyNode, ListFormat, ValueNode, WriteOptions};
use hive::{walk, Error, HiveFile, Key, Step, ValueType};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const PYTHON: &str = "/usr/bin/python3";
const HELPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hivex_dump.py");

// ---------------------------------------------------------------- plumbing

/// The real hives: `$REGMON_HIVES` (the full corpus) when set, else the
/// subset committed in testdata/hives (see the `testdata` crate).
fn hives_dir(_test: &str) -> Option<testdata::Corpus> {
    Some(testdata::hives())
}

/// Whether the Python module imports. When it does not: fail if
/// `REGMON_HIVES` is set (the test script installs every tool), else skip.
fn have_module(test: &str, module: &str, package: &str) -> bool {
    let ok = Command::new(PYTHON)
        .args([HELPER, "check", module])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let msg = format!(
            "{test}: {PYTHON} cannot import {module}: install the Debian package {package} \
             (scripts/test.sh does)"
        );
        panic!("{msg}");
    }
    ok
}

/// A running `hivex_dump.py`, read line by line.
struct Dump {
    child: Child,
    out: BufReader<ChildStdout>,
    line: String,
    /// `W` lines seen so far.
    warnings: Vec<String>,
}

impl Dump {
    fn spawn(mode: &str, hive: &Path) -> Dump {
        let mut child = Command::new(PYTHON)
            .arg(HELPER)
            .arg(mode)
            .arg(hive)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {PYTHON} {HELPER}: {e}"));
        let out = BufReader::with_capacity(1 << 16, child.stdout.take().unwrap());
        Dump {
            child,
            out,
            line: String::new(),
            warnings: Vec::new(),
        }
    }

    /// The next record (not a `W` line), or `None` at the end of the output.
    fn next(&mut self) -> Option<Rec<'_>> {
        loop {
            self.line.clear();
            let n = self.out.read_line(&mut self.line).expect("read dump");
            if n == 0 {
                return None;
            }
            if let Some(w) = self.line.strip_prefix("W ") {
                self.warnings.push(w.trim_end().to_string());
                continue;
            }
            return Some(Rec::parse(self.line.trim_end()));
        }
    }

    fn finish(mut self) {
        // Drain so the child never blocks on a full pipe, then reap it.
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut self.out, &mut sink);
        let status = self.child.wait().expect("wait for dump helper");
        assert!(status.success(), "hivex_dump.py failed: {status}");
    }
}

/// One line of a dump. Fields stay as text: `x<hex>`, `!` (the reader
/// failed), `-`/`?` (class absent / not exposed).
#[derive(Debug)]
#[allow(dead_code)] // some fields are only shown in messages, through Debug
enum Rec<'l> {
    Key {
        depth: usize,
        name: &'l str,
        ts: &'l str,
        class: &'l str,
        nsub: usize,
        nval: usize,
    },
    Val {
        name: &'l str,
        ty: &'l str,
        data: &'l str,
    },
    End(usize, usize),
    Fatal(&'l str),
    Other(&'l str),
}

impl<'l> Rec<'l> {
    fn parse(line: &'l str) -> Rec<'l> {
        let f: Vec<&str> = line.split(' ').collect();
        let num = |s: &str| s.parse::<usize>().unwrap_or(usize::MAX);
        match f.as_slice() {
            ["K", depth, name, ts, class, nsub, nval] => Rec::Key {
                depth: num(depth),
                name,
                ts,
                class,
                nsub: num(nsub),
                nval: num(nval),
            },
            ["V", name, ty, data] => Rec::Val { name, ty, data },
            ["END", k, v] => Rec::End(num(k), num(v)),
            ["E", ..] => Rec::Fatal(&line[2..]),
            _ => Rec::Other(line),
        }
    }
}

/// `x` + lowercase hex of `bytes`, into `out`.
fn hex_field(bytes: &[u8], out: &mut String) {
    out.clear();
    out.reserve(1 + 2 * bytes.len());
    out.push('x');
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

/// A name as a dump shows it: UTF-8 hex, or `None` when it is not valid
/// Unicode (unpaired surrogates), which hivex cannot decode.
fn name_field(units: impl Iterator<Item = u16>) -> Option<String> {
    let s = char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()?;
    let mut out = String::new();
    hex_field(s.as_bytes(), &mut out);
    Some(out)
}

/// Decodes a `x<hex>` field holding UTF-8.
fn unhex(field: &str) -> String {
    let h = field.strip_prefix('x').unwrap_or(field);
    let bytes: Vec<u8> = (0..h.len() / 2)
        .filter_map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).ok())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Decodes a `x<hex>` field, for messages.
fn unhex_lossy(field: &str) -> String {
    let Some(h) = field.strip_prefix('x') else {
        return field.to_string();
    };
    let bytes: Vec<u8> = (0..h.len() / 2)
        .filter_map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).ok())
        .collect();
    format!("{:?}", String::from_utf8_lossy(&bytes))
}

fn short(field: &str) -> String {
    if field.len() > 80 {
        format!("{}...({} hex digits)", &field[..80], field.len() - 1)
    } else {
        field.to_string()
    }
}

fn path_of(chain: &[Key<'_>]) -> String {
    let p = hive::path_lossy(chain);
    if p.is_empty() {
        "(root)".into()
    } else {
        p
    }
}

// ------------------------------------------------------ real-hive conformance

/// A primary hive all five readers open, with the manifest's hivex counts.
struct Row {
    file: String,
    keys: usize,
    values: usize,
}

fn manifest_rows(dir: &Path) -> Vec<Row> {
    let manifest = dir.join("manifest.json");
    assert!(manifest.is_file(), "{} is missing", manifest.display());
    let out = Command::new(PYTHON)
        .args([HELPER.as_ref(), "manifest".as_ref(), manifest.as_os_str()])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON}: {e}"));
    assert!(
        out.status.success(),
        "reading the manifest failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 4, "bad manifest line {l:?}");
            Row {
                file: f[1].to_string(),
                keys: f[2].parse().unwrap(),
                values: f[3].parse().unwrap(),
            }
        })
        .collect()
}

#[derive(Default)]
struct Report {
    keys: usize,
    values: usize,
    hivex_end: Option<(usize, usize)>,
    /// Values whose name, type and data were compared with hivex's.
    compared: usize,
    /// Names hivex could not decode (unpaired surrogates), ours valid.
    surrogate_names: usize,
    /// Values whose data neither reader could return.
    both_failed: usize,
    our_warnings: Vec<String>,
    hivex_warnings: Vec<String>,
    mismatches: Vec<String>,
    mismatch_count: usize,
}

impl Report {
    fn mismatch(&mut self, msg: String) {
        self.mismatch_count += 1;
        if self.mismatches.len() < 20 {
            self.mismatches.push(msg);
        }
    }
}

/// Walks `path` with our reader and, in the same pass, the hivex dump.
fn compare_with_hivex(path: &Path) -> Report {
    let mut r = Report::default();
    let file = HiveFile::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let hive = file
        .hive()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let root = hive
        .root()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut dump = Dump::spawn("hivex", path);
    let mut desync = false;
    let mut buf = String::new();
    walk(root, hive.cells().bins_len(), |step| {
        let chain = match step {
            Step::Key(chain) => chain,
            Step::Warning(chain, e) => {
                r.our_warnings.push(format!("{}: {e}", path_of(chain)));
                return;
            }
        };
        r.keys += 1;
        let key = chain.last().unwrap();
        let values: Vec<_> = match key.values() {
            Ok(vs) => vs.collect(),
            Err(e) => {
                r.our_warnings
                    .push(format!("{}: values: {e}", path_of(chain)));
                Vec::new()
            }
        };
        r.values += values.iter().filter(|v| v.is_ok()).count();
        if desync {
            return;
        }
        let ours_name = name_field(key.name().units());
        match dump.next() {
            Some(Rec::Key {
                depth,
                name,
                ts,
                nsub,
                nval,
                ..
            }) => {
                let name_ok = match &ours_name {
                    Some(n) => n == name,
                    None => {
                        r.surrogate_names += usize::from(name == "!");
                        name == "!"
                    }
                };
                if depth != chain.len() - 1 || !name_ok {
                    r.mismatch(format!(
                        "key order differs at {} (depth {}): hivex has {} at depth {depth}; \
                         comparison stopped",
                        path_of(chain),
                        chain.len() - 1,
                        unhex_lossy(name)
                    ));
                    desync = true;
                    return;
                }
                let lw = key.last_written();
                let ts_ok = if lw > i64::MAX as u64 {
                    ts == "!"
                } else {
                    ts == lw.to_string()
                };
                if !ts_ok {
                    r.mismatch(format!("{}: last written {lw}, hivex {ts}", path_of(chain)));
                }
                let our_nsub = key.subkeys().map_or(0, |s| s.count());
                if nsub != our_nsub {
                    r.mismatch(format!(
                        "{}: {our_nsub} subkeys, hivex {nsub}",
                        path_of(chain)
                    ));
                    desync = true;
                    return;
                }
                if nval != values.len() {
                    r.mismatch(format!(
                        "{}: {} values, hivex {nval}",
                        path_of(chain),
                        values.len()
                    ));
                    desync = true;
                    return;
                }
            }
            other => {
                r.mismatch(format!(
                    "{}: hivex has no more keys here (got {other:?}); comparison stopped",
                    path_of(chain)
                ));
                desync = true;
                return;
            }
        }
        for v in &values {
            let rec = dump.next();
            let Some(Rec::Val { name, ty, data }) = rec else {
                let got = format!("{rec:?}");
                r.mismatch(format!(
                    "{}: hivex dump lacks a value line (got {got})",
                    path_of(chain)
                ));
                desync = true;
                return;
            };
            let v = match v {
                Ok(v) => v,
                Err(e) => {
                    r.mismatch(format!(
                        "{}: our reader cannot parse a value hivex reads ({}): {e}",
                        path_of(chain),
                        unhex_lossy(name)
                    ));
                    continue;
                }
            };
            let vname = v.name().to_string_lossy();
            let at = format!("{} value {vname:?}", path_of(chain));
            match name_field(v.name().units()) {
                Some(n) if n == name => {}
                None if name == "!" => r.surrogate_names += 1,
                ours => {
                    r.mismatch(format!("{at}: name {ours:?}, hivex {}", unhex_lossy(name)));
                }
            }
            if ty != v.value_type().0.to_string() {
                r.mismatch(format!("{at}: type {}, hivex {ty}", v.value_type().0));
            }
            match v.data() {
                Ok(d) => {
                    hex_field(&d, &mut buf);
                    if buf != data {
                        r.mismatch(format!(
                            "{at}: data {} ({} bytes), hivex {}",
                            short(&buf),
                            d.len(),
                            short(data)
                        ));
                    }
                }
                Err(e) if data == "!" => {
                    r.both_failed += 1;
                    r.our_warnings.push(format!("{at}: {e} (hivex fails too)"));
                }
                Err(e) => r.mismatch(format!("{at}: our reader: {e}; hivex {}", short(data))),
            }
            r.compared += 1;
        }
    });
    if !desync {
        match dump.next() {
            Some(Rec::End(k, v)) => r.hivex_end = Some((k, v)),
            Some(Rec::Fatal(e)) => r.mismatch(format!("hivex cannot open it: {e}")),
            other => r.mismatch(format!("hivex has more: {other:?}")),
        }
    }
    r.hivex_warnings = std::mem::take(&mut dump.warnings);
    dump.finish();
    r
}

#[test]
#[ignore = "needs the reference reader python3-hivex; scripts/test.sh installs it and runs it"]
fn real_hives_match_manifest_and_hivex() {
    const T: &str = "real_hives_match_manifest_and_hivex";
    let Some(corpus) = hives_dir(T) else { return };
    let dir = corpus.dir;
    if !have_module(T, "hivex", "python3-hivex") {
        return;
    }
    let rows = manifest_rows(&dir);
    // The full corpus has 36 such hives, the committed subset 31.
    let least = if corpus.full { 30 } else { 31 };
    assert!(
        rows.len() >= least,
        "only {} hives in the manifest qualify",
        rows.len()
    );
    for row in &rows {
        assert!(
            dir.join(&row.file).is_file(),
            "{} is in the manifest but missing from {}",
            row.file,
            dir.display()
        );
    }
    // Hives are independent: compare several at once.
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Report)>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(row) = rows.get(i) else { break };
                let rep = compare_with_hivex(&dir.join(&row.file));
                results.lock().unwrap().push((i, rep));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    assert_eq!(results.len(), rows.len(), "a hive's comparison panicked");

    let mut failures = Vec::new();
    let mut total = 0;
    eprintln!(
        "{:<62} {:>7} {:>7} {:>9} {:>5}",
        "hive", "keys", "values", "compared", "notes"
    );
    for (i, rep) in &results {
        let row = &rows[*i];
        total += rep.compared;
        let mut notes = Vec::new();
        if rep.surrogate_names > 0 {
            notes.push(format!("{} unpaired-surrogate names", rep.surrogate_names));
        }
        if rep.both_failed > 0 {
            notes.push(format!("{} values unreadable by both", rep.both_failed));
        }
        if !rep.our_warnings.is_empty() {
            notes.push(format!("our warnings: {:?}", rep.our_warnings));
        }
        if !rep.hivex_warnings.is_empty() {
            notes.push(format!("hivex warnings: {:?}", rep.hivex_warnings));
        }
        eprintln!(
            "{:<62} {:>7} {:>7} {:>9} {}",
            row.file,
            rep.keys,
            rep.values,
            rep.compared,
            notes.join("; ")
        );
        let mut fail = Vec::new();
        if (rep.keys, rep.values) != (row.keys, row.values) {
            fail.push(format!(
                "counts {} keys {} values, manifest (hivex) {} {}",
                rep.keys, rep.values, row.keys, row.values
            ));
        }
        if let Some((k, v)) = rep.hivex_end {
            if (k, v) != (row.keys, row.values) {
                fail.push(format!(
                    "hivex now counts {k} keys {v} values, manifest {} {}",
                    row.keys, row.values
                ));
            }
        }
        if rep.mismatch_count > 0 {
            fail.push(format!(
                "{} differences from hivex:\n    {}",
                rep.mismatch_count,
                rep.mismatches.join("\n    ")
            ));
        }
        if !fail.is_empty() {
            failures.push(format!("{}: {}", row.file, fail.join("\n  ")));
        }
    }
    eprintln!(
        "{} hives, {total} values compared with hivex byte for byte",
        rows.len()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// ------------------------------------------------------------ damaged hives

/// Opens, walks and reads every value of a hive no reference reader opens.
/// Returns the errors met; panics if a problem does not name an offset.
fn read_everything(path: &Path) -> (usize, usize, Vec<Error>) {
    let mut errors = Vec::new();
    let file = match HiveFile::open(path) {
        Ok(f) => f,
        Err(e) => return (0, 0, vec![e]),
    };
    let hive = match file.hive() {
        Ok(h) => h,
        Err(e) => return (0, 0, vec![e]),
    };
    let root = match hive.root() {
        Ok(r) => r,
        Err(e) => return (0, 0, vec![e]),
    };
    let (mut keys, mut values) = (0, 0);
    walk(root, hive.cells().bins_len(), |step| match step {
        Step::Key(chain) => {
            keys += 1;
            let key = chain.last().unwrap();
            let _ = key.class_name().map_err(|e| errors.push(e));
            let _ = key.security_descriptor().map_err(|e| errors.push(e));
            match key.values() {
                Ok(vs) => {
                    for v in vs {
                        match v.and_then(|v| {
                            let _ = v.name().to_string_lossy();
                            v.data().map(|_| ())
                        }) {
                            Ok(()) => values += 1,
                            Err(e) => errors.push(e),
                        }
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        Step::Warning(_, e) => errors.push(e),
    });
    (keys, values, errors)
}

#[test]
fn damaged_hives_fail_cleanly() {
    const T: &str = "damaged_hives_fail_cleanly";
    let Some(corpus) = hives_dir(T) else { return };
    // The NT 3.1 hive (no license stated) is in the full corpus only.
    let files = ["regipy/corrupted_system_hive", "regf-samples/nt31/SOFTWARE"];
    let files: Vec<&str> = files.into_iter().filter(|f| corpus.covers(f)).collect();
    assert!(!files.is_empty());
    for file in files {
        let path = corpus.path(file);
        assert!(path.is_file(), "{} is missing", path.display());
        let (keys, values, errors) = read_everything(&path);
        eprintln!(
            "{file}: {keys} keys, {values} values read, {} problems{}",
            errors.len(),
            errors
                .iter()
                .take(5)
                .map(|e| format!("\n  {e}"))
                .collect::<String>()
        );
        assert!(
            !errors.is_empty(),
            "{file}: a hive no reader opens read without a single warning"
        );
        for e in &errors {
            let text = e.to_string();
            assert!(
                e.offset.is_some() && text.contains("offset 0x"),
                "{file}: problem without a file offset: {text}"
            );
        }
    }
}

// ------------------------------------------------------- writer interop

fn units(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

/// A tree exercising what the writer can express, with distinct
/// last-written times so a mixed-up key shows.
fn interop_tree() -> KeyNode {
    let mut clock = 132_000_000_000_000_000u64;
    let mut tick = || {
        clock += 10_000_019;
        clock
    };
    let mut root = KeyNode::new("ROOT");
    root.last_written = tick();

    let mut types = KeyNode::new("Types");
    types.last_written = tick();
    types.class = Some(units("TypesClass"));
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let vals: Vec<(&str, u32, Vec<u8>)> = vec![
        ("", 1, utf16z("default value")),
        ("none", 0, vec![0xAB, 0xCD]),
        ("sz", 1, utf16z("hello, world")),
        ("expand", 2, utf16z("%SystemRoot%\\system32")),
        ("binary", 3, vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        ("dword", 4, 0xDEAD_BEEFu32.to_le_bytes().to_vec()),
        ("dword_be", 5, 0x0102_0304u32.to_be_bytes().to_vec()),
        ("link", 6, utf16z("\\Registry\\Machine\\Software")),
        ("multi", 7, utf16z("one\0two\0three\0")),
        ("resource_list", 8, vec![1, 0, 0, 0, 5, 0, 0, 0, 9]),
        ("full_resource", 9, vec![5; 40]),
        ("requirements", 10, vec![0x20, 0, 0, 0, 1, 2, 3]),
        ("qword", 11, 0x0123_4567_89AB_CDEFu64.to_le_bytes().to_vec()),
        ("unknown_12", 12, vec![1, 2, 3, 4, 5]),
        ("unknown_big_type", 0x1234_5678, vec![1, 2, 3]),
        (
            "unknown_high_bit",
            0xFFFF_0010,
            vec![9, 8, 7, 6, 5, 4, 3, 2],
        ),
        ("empty_binary", 3, vec![]),
        ("empty_sz", 1, vec![]),
        ("empty_none", 0, vec![]),
        ("one_byte", 3, vec![0x7F]),
        ("four_bytes", 3, vec![1, 2, 3, 4]),
        ("five_bytes", 3, vec![1, 2, 3, 4, 5]),
        ("big_100000", 3, big.clone()),
        ("exactly_16344", 3, vec![0x11; 16344]),
        ("just_over_16345", 3, vec![0x22; 16345]),
        ("two_segments_32688", 3, vec![0x33; 32688]),
        ("big_sz", 1, utf16z(&"long string ".repeat(3000))),
    ];
    for (name, ty, data) in vals {
        types.values.push(ValueNode {
            name: units(name),
            value_type: ValueType(ty),
            data,
        });
    }
    root.subkeys.push(types);

    // Names: Latin-1 (stored compressed), non-Latin-1 BMP and a surrogate
    // pair (stored as UTF-16), mixed case to check the sort order.
    let mut names = KeyNode::new("Names");
    names.last_written = tick();
    for n in [
        "café",
        "Straße",
        "ÿ_Latin1_max",
        "© ±",
        "Ключ",
        "日本語",
        "emoji 😀",
        "MiXeD",
        "mixed2",
        "_underscore",
        "a",
        "Z",
        "é",
        "Ā wide",
        "名",
    ] {
        let mut k = KeyNode::new(n);
        k.last_written = tick();
        k.values.push(ValueNode {
            name: units(n),
            value_type: ValueType::SZ,
            data: utf16z(n),
        });
        if n.chars().any(|c| c as u32 > 0xFF) {
            k.class = Some(units(&format!("class {n}")));
        }
        names.subkeys.push(k);
    }
    names.values.push(ValueNode {
        name: units("Ωmega value"),
        value_type: ValueType::DWORD,
        data: vec![1, 0, 0, 0],
    });
    root.subkeys.push(names);

    // Enough subkeys for an `ri` root at the default leaf size (1012).
    let mut wide = KeyNode::new("Wide");
    wide.last_written = tick();
    for i in (0..1500u32).rev() {
        let mut k = KeyNode::new(&format!("k{i:05}"));
        k.last_written = tick();
        if i % 500 == 0 {
            k.values.push(ValueNode {
                name: units("n"),
                value_type: ValueType::DWORD,
                data: i.to_le_bytes().to_vec(),
            });
        }
        wide.subkeys.push(k);
    }
    root.subkeys.push(wide);

    let mut deep = KeyNode::new("Deep");
    deep.last_written = tick();
    let mut cur = &mut deep;
    for d in 0..20 {
        let mut k = KeyNode::new(&format!("level{d}"));
        k.last_written = tick();
        k.class = Some(units(&format!("c{d}")));
        cur.subkeys.push(k);
        cur = cur.subkeys.last_mut().unwrap();
    }
    cur.values.push(ValueNode {
        name: units("leaf"),
        value_type: ValueType::SZ,
        data: utf16z("bottom"),
    });
    root.subkeys.push(deep);
    root
}

/// The dump lines a reader should print for `tree`, in on-disk order
/// (subkeys sorted by upper-cased name, as the writer stores them).
/// `class`: whether the reader exposes class names.
fn expected_dump(tree: &KeyNode, class: bool) -> Vec<String> {
    fn go(k: &KeyNode, depth: usize, class: bool, out: &mut Vec<String>) {
        let cls = if !class {
            "?".to_string()
        } else {
            match &k.class {
                Some(c) if !c.is_empty() => name_field(c.iter().copied()).unwrap(),
                _ => "-".to_string(),
            }
        };
        out.push(format!(
            "K {depth} {} {} {cls} {} {}",
            name_field(k.name.iter().copied()).unwrap(),
            k.last_written,
            k.subkeys.len(),
            k.values.len()
        ));
        for v in &k.values {
            let mut data = String::new();
            hex_field(&v.data, &mut data);
            out.push(format!(
                "V {} {} {data}",
                name_field(v.name.iter().copied()).unwrap(),
                v.value_type.0
            ));
        }
        let mut subs: Vec<&KeyNode> = k.subkeys.iter().collect();
        subs.sort_by(|a, b| {
            let up = |n: &KeyNode| -> Vec<u16> {
                n.name.iter().map(|&u| hive::upcase_unit(u)).collect()
            };
            up(a).cmp(&up(b))
        });
        for s in subs {
            go(s, depth + 1, class, out);
        }
    }
    let mut out = Vec::new();
    go(tree, 0, class, &mut out);
    out
}

fn keys_and_values(k: &KeyNode) -> (usize, usize) {
    k.subkeys
        .iter()
        .map(keys_and_values)
        .fold((1, k.values.len()), |(a, b), (c, d)| (a + c, b + d))
}

/// Accepted differences found by [`check_dump`].
#[derive(Default)]
struct Accepted {
    /// libregf: inline data of 1 to 3 bytes, whose bytes libregf gets wrong.
    libregf_inline: usize,
}

/// Runs a dump to the end and compares it with `expected`, line by line.
///
/// One reader bug is accepted, only in its exact form, and counted:
/// libregf's data for inline values of 1 to 3 bytes. The spec: "when data contains less than 4
/// bytes, it is being stored as is in the beginning of the Data offset
/// field"; libregf 20201007 returns the end of the field instead (and for
/// REG_SZ rounds the size up to even). Real Windows hives show it is
/// libregf's bug: regipy/NTUSER.DAT "SchemeLangID" (REG_BINARY, 2 bytes) is
/// `09 04` to hivex and to us, `00 00` to libregf; dfwinreg/SYSTEM has 26
/// more such values. Names and types are still compared for those values.
fn check_dump(mode: &str, path: &Path, expected: &[String], what: &str) -> Accepted {
    let out = Command::new(PYTHON)
        .arg(HELPER)
        .arg(mode)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {mode} dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let warnings: Vec<&&str> = lines.iter().filter(|l| l.starts_with("W ")).collect();
    assert!(warnings.is_empty(), "{what}: {mode} warns: {warnings:?}");
    assert!(
        !lines.first().is_some_and(|l| l.starts_with("E ")),
        "{what}: {mode} cannot open it: {}",
        lines[0]
    );
    let end = lines.pop().unwrap_or_default();
    let mut path_stack: Vec<String> = Vec::new();
    let mut acc = Accepted::default();
    for (i, exp) in expected.iter().enumerate() {
        let got = lines.get(i).copied().unwrap_or("(end of dump)");
        let exp_rec = Rec::parse(exp);
        if let Rec::Key { depth, name, .. } = exp_rec {
            path_stack.truncate(depth);
            path_stack.push(unhex(name));
        }
        if got == exp {
            continue;
        }
        if let (
            Rec::Val { name, ty, data },
            Rec::Val {
                name: gn,
                ty: gt,
                data: _,
            },
        ) = (exp_rec, Rec::parse(got))
        {
            let inline_len = data.len() / 2;
            if mode == "libregf" && name == gn && ty == gt && (1..=3).contains(&inline_len) {
                acc.libregf_inline += 1;
                continue;
            }
        }
        panic!(
            "{what}: {mode} differs at line {i}, key {}:\n  expected {}\n  got      {}",
            path_stack.join("\\"),
            short(exp),
            short(got)
        );
    }
    assert_eq!(
        lines.len(),
        expected.len(),
        "{what}: {mode} has extra lines"
    );
    let k = expected.iter().filter(|l| l.starts_with("K ")).count();
    let v = expected.len() - k;
    assert_eq!(end, format!("END {k} {v}"), "{what}: {mode} totals");
    acc
}

/// Key and value counts as reglookup prints them (`-H`: no header).
fn reglookup_counts(path: &Path) -> (usize, usize) {
    let out = Command::new("reglookup")
        .arg("-H")
        .arg(path)
        .output()
        .expect("run reglookup");
    assert!(out.status.success(), "reglookup failed");
    // reglookup prints names in US-ASCII and warns (WARN:) about every
    // non-ASCII name and uninterpretable data; anything else is a problem.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let bad: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("WARN:") && !l.trim().is_empty())
        .collect();
    assert!(bad.is_empty(), "reglookup reports: {bad:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut keys = 0;
    let mut values = 0;
    for line in text.lines() {
        // PATH,TYPE,VALUE,MTIME: keys have type KEY.
        match line.split(',').nth(1) {
            Some("KEY") => keys += 1,
            Some(_) => values += 1,
            None => {}
        }
    }
    (keys, values)
}

static TEMP_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A temporary file removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn with(bytes: &[u8]) -> TempFile {
        let p = std::env::temp_dir().join(format!(
            "regmon-conformance-{}-{}.hive",
            std::process::id(),
            TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&p, bytes).unwrap();
        TempFile(p)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
#[ignore = "needs the reference readers (hivex, libregf, reglookup); scripts/test.sh installs them and runs it"]
fn written_hives_read_identically_by_hivex_and_libregf() {
    const T: &str = "written_hives_read_identically_by_hivex_and_libregf";
    let hivex = have_module(T, "hivex", "python3-hivex");
    let libregf = have_module(T, "pyregf", "python3-libregf");
    let reglookup = Command::new("reglookup")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !reglookup {
        panic!("{T}: reglookup missing: install the Debian package reglookup");
    }
    if !hivex && !libregf && !reglookup {
        return;
    }
    let tree = interop_tree();
    let (keys, values) = keys_and_values(&tree);
    let with_class = expected_dump(&tree, true);
    let without_class = expected_dump(&tree, false);
    let mut variants = Vec::new();
    for fmt in [ListFormat::Li, ListFormat::Lf, ListFormat::Lh] {
        for max_leaf in [1012, 7] {
            variants.push(WriteOptions {
                list_format: fmt,
                max_leaf,
                file_name: "interop.hive".into(),
                timestamp: 132_500_000_000_000_000,
                ..Default::default()
            });
        }
    }
    // Format 1.3 has no big-data cells: long data sits in one cell.
    variants.push(WriteOptions {
        minor: 3,
        list_format: ListFormat::Lf,
        ..Default::default()
    });
    for opts in &variants {
        let what = format!(
            "1.{} {:?} max_leaf {}",
            opts.minor, opts.list_format, opts.max_leaf
        );
        let file = TempFile::with(&to_bytes(&tree, opts));
        let mut notes = Vec::new();
        if hivex {
            check_dump("hivex", &file.0, &without_class, &what);
            notes.push("hivex: identical".to_string());
        }
        if libregf {
            let a = check_dump("libregf", &file.0, &with_class, &what);
            notes.push(format!(
                "libregf: {} inline values of 1-3 bytes wrong",
                a.libregf_inline
            ));
        }
        if reglookup {
            assert_eq!(
                reglookup_counts(&file.0),
                (keys, values),
                "{what}: reglookup"
            );
        }
        eprintln!(
            "{what}: {keys} keys, {values} values identical in third-party readers except \
             the accepted reader bugs (see check_dump): {}",
            notes.join("; ")
        );
    }
}

/// A name that is not valid UTF-16 survives our writer and reader, and hivex
/// reports it as undecodable instead of returning something else.
#[test]
#[ignore = "needs the reference reader python3-hivex; scripts/test.sh installs it and runs it"]
fn unpaired_surrogate_names_in_hivex() {
    const T: &str = "unpaired_surrogate_names_in_hivex";
    if !have_module(T, "hivex", "python3-hivex") {
        return;
    }
    let mut root = KeyNode::new("R");
    let mut k = KeyNode::new("ok");
    k.values.push(ValueNode {
        name: vec![0x41, 0xD800, 0x42],
        value_type: ValueType::DWORD,
        data: vec![1, 0, 0, 0],
    });
    root.subkeys.push(k);
    let file = TempFile::with(&to_bytes(&root, &WriteOptions::default()));
    let r = compare_with_hivex(&file.0);
    assert_eq!(r.mismatch_count, 0, "{:?}", r.mismatches);
    assert_eq!((r.keys, r.values, r.surrogate_names), (2, 1, 1));
}
