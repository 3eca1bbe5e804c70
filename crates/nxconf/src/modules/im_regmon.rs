//! im_regmon: the registry monitor input. Its settings, directives and
//! builder; the scanning itself is regmon's.

use super::spec::{Build, DirectiveSpec, ValueType as V};
use crate::diag::{Diagnostic, Location};
use crate::directive::Directive;
use crate::lang::lexer::{tokenize, Tok};
use crate::lang::scope::ExecApi;
use crate::value::Value;

/// The largest `MaxDataSize`: what one value may put into an event.
pub const MAX_DATA_SIZE: i64 = 1 << 20;

/// Directives, in the order messages list them; defaults as NXLog documents
/// them (and as [`ImRegmon::default`] sets them).
pub(crate) const DIRECTIVES: &[DirectiveSpec] = &[
    DirectiveSpec::many("RegValue", V::String),
    DirectiveSpec::many("Exclude", V::String),
    DirectiveSpec::once("Recursive", V::Bool, Some("FALSE")),
    DirectiveSpec::once("64BitView", V::Special, Some("TRUE")),
    DirectiveSpec::once("Digest", V::Word, Some("sha1")),
    DirectiveSpec::once("ScanInterval", V::Integer, Some("86400")),
    DirectiveSpec::many("HiveFile", V::Special),
    DirectiveSpec::once("Realtime", V::Bool, Some("FALSE")),
    DirectiveSpec::once("ReportData", V::Bool, Some("FALSE")),
    DirectiveSpec::once("MaxDataSize", V::Integer, None),
    DirectiveSpec::many("NoDataFor", V::String),
    DirectiveSpec::once("KeyEvents", V::Bool, Some("FALSE")),
    DirectiveSpec::once("Schema", V::String, None),
    DirectiveSpec::once("WindowsImage", V::String, None),
    DirectiveSpec::once("User", V::String, None),
    DirectiveSpec::once("ExcludeClasses", V::Bool, Some("FALSE")),
    DirectiveSpec::once("Incremental", V::Bool, Some("FALSE")),
    DirectiveSpec::once("FullScanInterval", V::Integer, Some("86400")),
    DirectiveSpec::once("ScanRate", V::Integer, None),
    DirectiveSpec::once("LowPriority", V::Bool, Some("FALSE")),
];

/// start_scan(): scan now (regmon runs it).
pub(crate) const EXEC: ExecApi = ExecApi {
    procedures: &[("start_scan", 0)],
    global: false,
    json: false,
    owner_hint: true,
};

/// A registry path pattern with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathPattern {
    pub pattern: String,
    pub location: Location,
}

/// `HiveFile 'HKLM\SOFTWARE' '/mnt/win/.../SOFTWARE'`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HiveFile {
    pub key: String,
    pub path: String,
    /// `NoLogs`: read the file alone, without replaying its transaction logs.
    pub no_logs: bool,
    pub location: Location,
}

/// Digest (hash) algorithms im_regmon supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Rmd160,
    Blake2b512,
    Blake2s256,
    Sha3_256,
    Sha3_512,
    Blake3,
}

impl DigestAlgorithm {
    pub const ALL: [DigestAlgorithm; 12] = [
        DigestAlgorithm::Md5,
        DigestAlgorithm::Sha1,
        DigestAlgorithm::Sha224,
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha384,
        DigestAlgorithm::Sha512,
        DigestAlgorithm::Rmd160,
        DigestAlgorithm::Blake2b512,
        DigestAlgorithm::Blake2s256,
        DigestAlgorithm::Sha3_256,
        DigestAlgorithm::Sha3_512,
        DigestAlgorithm::Blake3,
    ];

    /// The name as configured (lower case): `sha1`, `sha3-256`, ...
    pub fn config_name(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "md5",
            DigestAlgorithm::Sha1 => "sha1",
            DigestAlgorithm::Sha224 => "sha224",
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha384 => "sha384",
            DigestAlgorithm::Sha512 => "sha512",
            DigestAlgorithm::Rmd160 => "rmd160",
            DigestAlgorithm::Blake2b512 => "blake2b512",
            DigestAlgorithm::Blake2s256 => "blake2s256",
            DigestAlgorithm::Sha3_256 => "sha3-256",
            DigestAlgorithm::Sha3_512 => "sha3-512",
            DigestAlgorithm::Blake3 => "blake3",
        }
    }

    /// `$DigestName`: the canonical upper-case name (`SHA1`).
    pub fn canonical_name(self) -> String {
        self.config_name().to_ascii_uppercase()
    }

    /// Case-insensitive; `ripemd160` is accepted for rmd160.
    pub fn parse(s: &str) -> Result<DigestAlgorithm, String> {
        let l = s.trim().to_ascii_lowercase();
        if l == "ripemd160" {
            return Ok(DigestAlgorithm::Rmd160);
        }
        DigestAlgorithm::ALL
            .iter()
            .copied()
            .find(|d| d.config_name() == l)
            .ok_or_else(|| {
                format!(
                    "unsupported Digest '{}' (supported: {})",
                    s.trim(),
                    DigestAlgorithm::ALL.map(|d| d.config_name()).join(", ")
                )
            })
    }
}

/// im_regmon settings, defaults as NXLog documents them.
#[derive(Clone, Debug)]
pub struct ImRegmon {
    /// RegValue patterns (at least one).
    pub reg_values: Vec<PathPattern>,
    pub excludes: Vec<PathPattern>,
    /// Default FALSE.
    pub recursive: bool,
    /// 64BitView, default TRUE (FALSE: the 32-bit view).
    pub view_64bit: bool,
    /// regmon extension: `64BitView BOTH` (then `view_64bit` is TRUE too).
    pub both_views: bool,
    /// Default sha1.
    pub digest: DigestAlgorithm,
    /// Seconds, default 86400; 0 = scans only through start_scan().
    pub scan_interval: u64,
    pub hive_files: Vec<HiveFile>,
    /// regmon extension: watch for changes as they happen (default FALSE).
    pub realtime: bool,
    /// regmon extension: report old and new data in events (default FALSE).
    pub report_data: bool,
    /// regmon extension: largest data reported with ReportData, in bytes.
    pub max_data_size: Option<u64>,
    /// regmon extension: patterns whose data is never reported.
    pub no_data_for: Vec<PathPattern>,
    /// regmon extension: also report keys appearing/disappearing (default FALSE).
    pub key_events: bool,
    /// regmon extension: event schema name, validated by the runtime.
    pub schema: Option<String>,
    /// regmon extension: `WindowsImage 'DIR'`, a Windows volume whose hives
    /// are mounted where Windows mounts them (relative to the config's folder).
    pub windows_image: Option<PathPattern>,
    /// regmon extension: `User 'SID or profile name'`, whose hives HKCU (and
    /// the user part of HKCR) are in an image.
    pub user: Option<PathPattern>,
    /// regmon extension: `ExcludeClasses TRUE` skips `HKU\*_Classes`.
    pub exclude_classes: bool,
    /// regmon extension: `Incremental TRUE` trusts a key's last-write time,
    /// value count and subkey count: an unchanged key's values are not read.
    pub incremental: bool,
    /// regmon extension: seconds between full rehashes when `Incremental`
    /// (default 86400; 0 = only the one at start).
    pub full_scan_interval: u64,
    /// regmon extension: `ScanRate N` paces a scan to N values per second.
    pub scan_rate: Option<u64>,
    /// regmon extension: `LowPriority TRUE` scans at background CPU and I/O
    /// priority.
    pub low_priority: bool,
}

impl Default for ImRegmon {
    fn default() -> Self {
        ImRegmon {
            reg_values: Vec::new(),
            excludes: Vec::new(),
            recursive: false,
            view_64bit: true,
            both_views: false,
            digest: DigestAlgorithm::Sha1,
            scan_interval: 86400,
            hive_files: Vec::new(),
            realtime: false,
            report_data: false,
            max_data_size: None,
            no_data_for: Vec::new(),
            key_events: false,
            schema: None,
            windows_image: None,
            user: None,
            exclude_classes: false,
            incremental: false,
            full_scan_interval: 86400,
            scan_rate: None,
            low_priority: false,
        }
    }
}

/// `HiveFile 'KEY' 'PATH' [NoLogs]`: the two strings, and whether
/// transaction-log replay is turned off.
fn hive_file_args(d: &Directive) -> Result<(Vec<String>, bool), Diagnostic> {
    const USAGE: &str = "HiveFile 'KEY' 'PATH' [NoLogs], e.g. HiveFile 'HKLM\\SOFTWARE' '/mnt/win/Windows/System32/config/SOFTWARE'";
    let value = d.value.trim_end();
    let (head, no_logs) = match value.rsplit_once(char::is_whitespace) {
        Some((h, last)) if last.eq_ignore_ascii_case("NoLogs") => (h, true),
        _ => (value, false),
    };
    let mut only = d.clone();
    only.value = head.to_string();
    Ok((string_literals(&only, 2, USAGE)?, no_logs))
}

/// Exactly `n` quoted string literals (HiveFile).
fn string_literals(d: &Directive, n: usize, usage: &str) -> Result<Vec<String>, Diagnostic> {
    let bad = || d.err(format!("expected {usage}"));
    let toks = tokenize(&d.value).map_err(|_| bad())?;
    let mut out = Vec::new();
    for t in toks {
        match t.tok {
            Tok::Lit(Value::String(s)) => out.push(s),
            Tok::Eof => break,
            _ => return Err(bad()),
        }
    }
    if out.len() != n {
        return Err(bad());
    }
    Ok(out)
}

/// Check an `<Input>` block's im_regmon directives into [`ImRegmon`].
pub(crate) fn build(cx: &mut Build) -> Option<ImRegmon> {
    let b = cx.block;
    let mut x = ImRegmon::default();
    let pattern = |cx: &mut Build, d: &Directive| -> Option<PathPattern> {
        let s = cx.constant_string(d)?;
        if s.trim().is_empty() {
            cx.error(d, format!("{} needs a registry path", d.name));
            return None;
        }
        Some(PathPattern {
            pattern: s,
            location: d.location.clone(),
        })
    };
    for d in cx.each("RegValue") {
        if let Some(p) = pattern(cx, d) {
            x.reg_values.push(p);
        }
    }
    if cx.one("RegValue").is_none() {
        cx.block_error(format!(
            "<Input {}> (im_regmon) needs at least one RegValue directive, e.g. RegValue 'HKLM\\Software\\Policies\\*'",
            b.name
        ));
    }
    for d in cx.each("Exclude") {
        if let Some(p) = pattern(cx, d) {
            x.excludes.push(p);
        }
    }
    for d in cx.each("NoDataFor") {
        if let Some(p) = pattern(cx, d) {
            x.no_data_for.push(p);
        }
    }
    for d in cx.each("HiveFile") {
        if let Some((v, no_logs)) = cx.keep(hive_file_args(d)) {
            x.hive_files.push(HiveFile {
                key: v[0].clone(),
                path: v[1].clone(),
                no_logs,
                location: d.location.clone(),
            });
        }
    }
    cx.bool_into("Recursive", &mut x.recursive);
    if let Some(d) = cx.one("64BitView") {
        if d.value.trim().eq_ignore_ascii_case("BOTH") {
            x.view_64bit = true;
            x.both_views = true;
        } else if let Some(v) = cx.keep(d.as_bool().map_err(|_| {
            d.err(format!(
                "64BitView takes TRUE, FALSE or BOTH (both views, a regmon extension), not '{}'",
                d.value.trim()
            ))
        })) {
            x.view_64bit = v;
        }
    }
    cx.bool_into("ExcludeClasses", &mut x.exclude_classes);
    cx.bool_into("Incremental", &mut x.incremental);
    cx.bool_into("LowPriority", &mut x.low_priority);
    if let Some(d) = cx.one("FullScanInterval") {
        match d.as_integer() {
            Ok(v) if v >= 0 => x.full_scan_interval = v as u64,
            Ok(_) => cx.error(
                d,
                "FullScanInterval must be 0 (only at start) or a positive number of seconds",
            ),
            Err(e) => cx.errors.push(e),
        }
    }
    if let Some(d) = cx.one("ScanRate") {
        match d.as_integer() {
            Ok(v) if v > 0 => x.scan_rate = Some(v as u64),
            Ok(_) => cx.error(
                d,
                "ScanRate is values per second and must be positive (leave it out for no limit)",
            ),
            Err(e) => cx.errors.push(e),
        }
    }
    cx.bool_into("Realtime", &mut x.realtime);
    cx.bool_into("ReportData", &mut x.report_data);
    cx.bool_into("KeyEvents", &mut x.key_events);
    if let Some(d) = cx.one("Digest") {
        if let Some(s) = cx.constant_string(d) {
            match DigestAlgorithm::parse(&s) {
                Ok(a) => x.digest = a,
                Err(m) => cx.error(d, m),
            }
        }
    }
    if let Some(d) = cx.one("ScanInterval") {
        match d.as_integer() {
            Ok(v) if v >= 0 => x.scan_interval = v as u64,
            Ok(_) => cx.error(d, "ScanInterval must be 0 or a positive number of seconds"),
            Err(e) => cx.errors.push(e),
        }
    }
    if let Some(d) = cx.one("MaxDataSize") {
        match d.as_integer() {
            Ok(v) if (0..=MAX_DATA_SIZE).contains(&v) => x.max_data_size = Some(v as u64),
            // Kept data goes into the baseline and into every event as text:
            // bounded so one large value cannot make an enormous event.
            Ok(v) if v > MAX_DATA_SIZE => cx.error(
                d,
                format!("MaxDataSize {v} is over the limit of {MAX_DATA_SIZE} bytes (1 MiB)"),
            ),
            Ok(_) => cx.error(d, "MaxDataSize must not be negative"),
            Err(e) => cx.errors.push(e),
        }
    }
    if let Some(d) = cx.one("Schema") {
        x.schema = cx.constant_string(d);
    }
    for (name, what, slot) in [
        (
            "WindowsImage",
            "the folder of a Windows volume",
            &mut x.windows_image,
        ),
        ("User", "a SID or a profile name", &mut x.user),
    ] {
        if let Some(d) = cx.one(name) {
            match cx.constant_string(d) {
                Some(s) if s.trim().is_empty() => cx.error(d, format!("{name} needs {what}")),
                // A profile is named by its folder (`alice`), never as an
                // account (`CORP\alice`): say so rather than find nothing.
                Some(s) if name == "User" && s.contains(['\\', '/']) => cx.error(
                    d,
                    format!(
                        "User '{}': give a SID or a profile folder name (e.g. 'alice'), not an account or a path",
                        s.trim()
                    ),
                ),
                Some(s) => {
                    *slot = Some(PathPattern {
                        pattern: s,
                        location: d.location.clone(),
                    })
                }
                None => {}
            }
        }
    }
    Some(x)
}
