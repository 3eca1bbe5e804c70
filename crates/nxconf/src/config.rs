//! The configuration model (what the host program uses) and the block parser
//! that turns logical lines into raw blocks for validation.

use crate::diag::{Diagnostic, Location, Note};
use crate::eval::{Program, StringExpr};
use crate::lang::parser::ExecSource;
use crate::record::JsonOptions;
use crate::schedule::When;
use crate::source::{split_word, SrcLine};
use crate::value::DateFormat;
use crate::LogLevel;
use chrono::NaiveDateTime;
use std::time::Duration;

/// A loaded and validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The top-level file as given.
    pub path: String,
    pub globals: Globals,
    /// Module instances in file order.
    pub modules: Vec<Module>,
    pub routes: Vec<Route>,
    /// `define`s and `envvar`s in effect at the end of the file.
    pub defines: Vec<(String, String)>,
    /// Non-fatal messages for the host to log (inert directives, unused modules).
    pub notes: Vec<Note>,
}

impl Config {
    /// A module instance by name (case-insensitive).
    pub fn module(&self, name: &str) -> Option<&Module> {
        self.modules
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case(name))
    }
    pub fn inputs(&self) -> impl Iterator<Item = &Module> {
        self.modules.iter().filter(|m| m.kind == ModuleKind::Input)
    }
    pub fn outputs(&self) -> impl Iterator<Item = &Module> {
        self.modules.iter().filter(|m| m.kind == ModuleKind::Output)
    }
    pub fn extensions(&self) -> impl Iterator<Item = &Module> {
        self.modules
            .iter()
            .filter(|m| m.kind == ModuleKind::Extension)
    }
    /// The xm_json settings to_json() uses (first xm_json instance).
    pub fn json_options(&self) -> Option<&JsonOptions> {
        self.modules.iter().find_map(|m| match &m.settings {
            ModuleSettings::XmJson(x) => Some(&x.options),
            _ => None,
        })
    }
}

/// Global directives.
#[derive(Clone, Debug, Default)]
pub struct Globals {
    pub cache_dir: Option<String>,
    pub log_file: Option<String>,
    pub log_level: Option<LogLevel>,
    pub spool_dir: Option<String>,
    pub pid_file: Option<String>,
    /// Accepted for compatibility; regmon has no loadable modules.
    pub module_dir: Option<String>,
    /// Datetimes in string context (default `YYYY-MM-DD hh:mm:ss`).
    pub date_format: DateFormat,
    /// `NoCache TRUE`: do not keep the baseline on disk.
    pub no_cache: bool,
    /// Every global directive as written.
    pub directives: Vec<Directive>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleKind {
    Extension,
    Input,
    Output,
}

impl ModuleKind {
    pub fn block_name(self) -> &'static str {
        match self {
            ModuleKind::Extension => "Extension",
            ModuleKind::Input => "Input",
            ModuleKind::Output => "Output",
        }
    }
}

/// A module instance (`<Input regmon> Module im_regmon ... </Input>`).
#[derive(Clone, Debug)]
pub struct Module {
    pub kind: ModuleKind,
    /// Instance name (`regmon`).
    pub name: String,
    /// Module type, lower case (`im_regmon`).
    pub module: String,
    pub location: Location,
    /// Typed, validated settings of the module type.
    pub settings: ModuleSettings,
    /// Every directive as written (except Exec), in order.
    pub directives: Vec<Directive>,
    /// All Exec directives and `<Exec>` blocks, compiled in order.
    pub exec: Option<Program>,
    pub schedules: Vec<Schedule>,
}

impl Module {
    /// The first directive named `name` (case-insensitive).
    pub fn directive(&self, name: &str) -> Option<&Directive> {
        self.directives
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }
    /// Every directive named `name`, in order (repeatable directives).
    pub fn directives_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Directive> + 'a {
        self.directives
            .iter()
            .filter(move |d| d.name.eq_ignore_ascii_case(name))
    }
    pub fn im_regmon(&self) -> Option<&ImRegmon> {
        match &self.settings {
            ModuleSettings::ImRegmon(x) => Some(x),
            _ => None,
        }
    }
    pub fn om_file(&self) -> Option<&OmFile> {
        match &self.settings {
            ModuleSettings::OmFile(x) => Some(x),
            _ => None,
        }
    }
    pub fn xm_json(&self) -> Option<&XmJson> {
        match &self.settings {
            ModuleSettings::XmJson(x) => Some(x),
            _ => None,
        }
    }
}

/// A directive as written: name and raw value (defines substituted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub value: String,
    pub location: Location,
    /// The configuration line, for messages.
    pub line_text: String,
}

impl Directive {
    fn err(&self, msg: String) -> Diagnostic {
        Diagnostic::new(&self.location, &self.line_text, msg)
    }
    /// TRUE/FALSE/YES/NO/1/0, any case.
    pub fn as_bool(&self) -> Result<bool, Diagnostic> {
        parse_bool(&self.value).ok_or_else(|| {
            self.err(format!(
                "invalid value '{}' for {}: expected a boolean (TRUE, FALSE, YES, NO, 1 or 0)",
                self.value, self.name
            ))
        })
    }
    /// An integer, with optional K/M/G (1024-based) suffix.
    pub fn as_integer(&self) -> Result<i64, Diagnostic> {
        parse_int(&self.value).ok_or_else(|| {
            self.err(format!(
                "invalid value '{}' for {}: expected an integer (K, M, G suffixes allowed)",
                self.value, self.name
            ))
        })
    }
    /// A string: a quoted constant string expression, or the raw text.
    pub fn as_string(&self) -> Result<String, Diagnostic> {
        crate::validate::constant_string(self)
    }
}

/// TRUE/FALSE/YES/NO/1/0 in any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_uppercase().as_str() {
        "TRUE" | "YES" | "1" => Some(true),
        "FALSE" | "NO" | "0" => Some(false),
        _ => None,
    }
}

/// Decimal integer with an optional K, M or G suffix (1024-based).
pub fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1024),
        'm' | 'M' => (&s[..s.len() - 1], 1024 * 1024),
        'g' | 'G' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    num.trim().parse::<i64>().ok()?.checked_mul(mult)
}

/// Typed settings per module type.
#[derive(Clone, Debug)]
pub enum ModuleSettings {
    ImRegmon(Box<ImRegmon>),
    XmJson(XmJson),
    OmFile(OmFile),
    /// xm_fileop: no directives; its procedures (file_cycle()) run in Exec.
    XmFileop,
}

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
    /// 64BitView, default TRUE.
    pub view_64bit: bool,
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
}

impl Default for ImRegmon {
    fn default() -> Self {
        ImRegmon {
            reg_values: Vec::new(),
            excludes: Vec::new(),
            recursive: false,
            view_64bit: true,
            digest: DigestAlgorithm::Sha1,
            scan_interval: 86400,
            hive_files: Vec::new(),
            realtime: false,
            report_data: false,
            max_data_size: None,
            no_data_for: Vec::new(),
            key_events: false,
            schema: None,
        }
    }
}

/// xm_json settings.
#[derive(Clone, Debug, Default)]
pub struct XmJson {
    pub options: JsonOptions,
}

/// om_file settings.
#[derive(Clone, Debug)]
pub struct OmFile {
    /// The output file name; may depend on the event (`'/var/log/' + $Hostname + '.log'`).
    pub file: StringExpr,
    /// Default FALSE.
    pub create_dir: bool,
    /// Default FALSE.
    pub truncate: bool,
    /// Default FALSE.
    pub sync: bool,
}

/// A `<Schedule>` block.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub when: Option<When>,
    pub every: Option<Duration>,
    /// When an `Every` schedule first runs (local time).
    pub first: Option<NaiveDateTime>,
    /// The raw texts as written.
    pub when_text: Option<String>,
    pub every_text: Option<String>,
    pub first_text: Option<String>,
    pub exec: Program,
    pub location: Location,
}

/// A `<Route>` block: `Path in1, in2 => out1, out2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub priority: Option<i64>,
    pub location: Location,
}

// ---------------------------------------------------------------------------
// Block structure

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlockKind {
    Extension,
    Input,
    Output,
    Processor,
    Route,
}

impl BlockKind {
    pub fn name(self) -> &'static str {
        match self {
            BlockKind::Extension => "Extension",
            BlockKind::Input => "Input",
            BlockKind::Output => "Output",
            BlockKind::Processor => "Processor",
            BlockKind::Route => "Route",
        }
    }
    fn parse(s: &str) -> Option<BlockKind> {
        match s.to_ascii_lowercase().as_str() {
            "extension" => Some(BlockKind::Extension),
            "input" => Some(BlockKind::Input),
            "output" => Some(BlockKind::Output),
            "processor" => Some(BlockKind::Processor),
            "route" => Some(BlockKind::Route),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct RawDirective {
    pub d: Directive,
    /// 1-based column of the value in the line (approximate after `%NAME%`).
    pub value_col: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct RawSchedule {
    pub loc: Location,
    pub raw: String,
    pub directives: Vec<RawDirective>,
    pub execs: Vec<ExecSource>,
}

#[derive(Clone, Debug)]
pub(crate) struct RawBlock {
    pub kind: BlockKind,
    pub name: String,
    pub loc: Location,
    pub raw: String,
    pub directives: Vec<RawDirective>,
    pub execs: Vec<ExecSource>,
    pub schedules: Vec<RawSchedule>,
}

#[derive(Default)]
pub(crate) struct Structure {
    pub globals: Vec<RawDirective>,
    pub blocks: Vec<RawBlock>,
}

enum Tag<'a> {
    Open(&'a str, &'a str),
    Close(&'a str),
}

fn parse_tag(t: &str) -> Option<Result<Tag<'_>, String>> {
    let t = t.trim();
    if !t.starts_with('<') {
        return None;
    }
    let Some(inner) = t.strip_suffix('>') else {
        return Some(Err("expected '>' at the end of the block tag".into()));
    };
    if let Some(name) = inner.strip_prefix("</") {
        return Some(Ok(Tag::Close(name.trim())));
    }
    let inner = &inner[1..];
    let (name, arg) = split_word(inner);
    Some(Ok(Tag::Open(name, arg.trim())))
}

fn valid_instance_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn directive_of(line: &SrcLine) -> Result<RawDirective, Diagnostic> {
    let text = line.text.trim();
    let (name, value) = split_word(text);
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.is_empty() {
        return Err(Diagnostic::new(
            &line.loc,
            &line.raw,
            format!("expected a directive name or a block tag, found '{name}'"),
        ));
    }
    let lead = line.text.len() - line.text.trim_start().len();
    let value_col = lead + (text.len() - value.len()) + 1;
    Ok(RawDirective {
        d: Directive {
            name: name.to_string(),
            value: value.trim().to_string(),
            location: line.loc.clone(),
            line_text: line.raw.trim().to_string(),
        },
        value_col,
    })
}

fn exec_from_directive(rd: &RawDirective) -> ExecSource {
    let mut src = ExecSource::default();
    src.push(
        &rd.d.value,
        rd.d.location.clone(),
        &rd.d.line_text,
        rd.value_col,
    );
    src
}

/// Split logical lines into globals and blocks, reporting structural errors.
pub(crate) fn parse_structure(lines: &[SrcLine], errors: &mut Vec<Diagnostic>) -> Structure {
    let mut st = Structure::default();
    let mut block: Option<RawBlock> = None;
    let mut sched: Option<RawSchedule> = None;
    // an open <Exec> block: its source and the opening line
    let mut exec: Option<(ExecSource, Location, String)> = None;
    let err = |l: &SrcLine, m: String| Diagnostic::new(&l.loc, &l.raw, m);

    for line in lines {
        if let Some((src, _, _)) = exec.as_mut() {
            if let Some(Ok(Tag::Close(n))) = parse_tag(&line.text) {
                if n.eq_ignore_ascii_case("exec") {
                    let (src, _, _) = exec.take().expect("open exec");
                    match (sched.as_mut(), block.as_mut()) {
                        (Some(s), _) => s.execs.push(src),
                        (None, Some(b)) => b.execs.push(src),
                        _ => {}
                    }
                    continue;
                }
            }
            let lead = line.text.len() - line.text.trim_start().len();
            src.push(line.text.trim(), line.loc.clone(), &line.raw, lead + 1);
            continue;
        }
        match parse_tag(&line.text) {
            Some(Err(m)) => errors.push(err(line, m)),
            Some(Ok(Tag::Open(tag, arg))) => {
                let lt = tag.to_ascii_lowercase();
                if lt == "exec" {
                    if block.is_none() {
                        errors.push(err(line, "<Exec> outside a module block".into()));
                    }
                    if !arg.is_empty() {
                        errors.push(err(
                            line,
                            "expected '<Exec>' with nothing after 'Exec'".into(),
                        ));
                    }
                    exec = Some((ExecSource::default(), line.loc.clone(), line.raw.clone()));
                    continue;
                }
                if lt == "schedule" {
                    match &block {
                        None => errors.push(err(line, "<Schedule> outside a module block".into())),
                        Some(b) if b.kind == BlockKind::Route => {
                            errors.push(err(line, "<Schedule> is not allowed in <Route>".into()))
                        }
                        Some(_) if sched.is_some() => errors.push(err(
                            line,
                            "<Schedule> inside <Schedule> (missing </Schedule>?)".into(),
                        )),
                        Some(_) => {}
                    }
                    if !arg.is_empty() {
                        errors.push(err(
                            line,
                            "expected '<Schedule>' with nothing after 'Schedule'".into(),
                        ));
                    }
                    sched = Some(RawSchedule {
                        loc: line.loc.clone(),
                        raw: line.raw.trim().to_string(),
                        directives: Vec::new(),
                        execs: Vec::new(),
                    });
                    continue;
                }
                let Some(kind) = BlockKind::parse(tag) else {
                    errors.push(err(
                        line,
                        format!("unknown block <{tag}> (supported: Extension, Input, Output, Route; Schedule and Exec inside a module)"),
                    ));
                    continue;
                };
                if let Some(open) = &block {
                    errors.push(err(
                        line,
                        format!(
                            "<{}> inside <{} {}> (missing </{}>?)",
                            kind.name(),
                            open.kind.name(),
                            open.name,
                            open.kind.name()
                        ),
                    ));
                    if let Some(b) = block.take() {
                        st.blocks.push(b);
                    }
                    sched = None;
                }
                if arg.is_empty() {
                    errors.push(err(
                        line,
                        format!("expected a name: <{} NAME>", kind.name()),
                    ));
                } else if !valid_instance_name(arg) {
                    errors.push(err(
                        line,
                        format!("invalid name '{arg}' (letters, digits, '_', '-' and '.' only)"),
                    ));
                }
                block = Some(RawBlock {
                    kind,
                    name: arg.to_string(),
                    loc: line.loc.clone(),
                    raw: line.raw.trim().to_string(),
                    directives: Vec::new(),
                    execs: Vec::new(),
                    schedules: Vec::new(),
                });
            }
            Some(Ok(Tag::Close(tag))) => {
                let lt = tag.to_ascii_lowercase();
                if lt == "schedule" {
                    match (sched.take(), block.as_mut()) {
                        (Some(s), Some(b)) => b.schedules.push(s),
                        (Some(_), None) => {}
                        (None, _) => {
                            errors.push(err(line, "</Schedule> without <Schedule>".into()))
                        }
                    }
                    continue;
                }
                if lt == "exec" {
                    errors.push(err(line, "</Exec> without <Exec>".into()));
                    continue;
                }
                match block.take() {
                    Some(b) if b.kind.name().eq_ignore_ascii_case(tag) => {
                        if let Some(s) = sched.take() {
                            errors.push(Diagnostic::new(
                                &s.loc,
                                &s.raw,
                                "<Schedule> is not closed (expected </Schedule>)",
                            ));
                        }
                        st.blocks.push(b);
                    }
                    Some(b) => {
                        errors.push(err(
                            line,
                            format!(
                                "</{tag}> does not match <{} {}> (expected </{}>)",
                                b.kind.name(),
                                b.name,
                                b.kind.name()
                            ),
                        ));
                        block = Some(b);
                    }
                    None => errors.push(err(
                        line,
                        format!("</{tag}> without a matching opening tag"),
                    )),
                }
            }
            None => {
                let rd = match directive_of(line) {
                    Ok(d) => d,
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                };
                if let Some(s) = sched.as_mut() {
                    if rd.d.name.eq_ignore_ascii_case("exec") {
                        s.execs.push(exec_from_directive(&rd));
                    } else {
                        s.directives.push(rd);
                    }
                } else if let Some(b) = block.as_mut() {
                    if rd.d.name.eq_ignore_ascii_case("exec") && b.kind != BlockKind::Route {
                        b.execs.push(exec_from_directive(&rd));
                    } else {
                        b.directives.push(rd);
                    }
                } else {
                    st.globals.push(rd);
                }
            }
        }
    }
    if let Some((_, loc, raw)) = exec {
        errors.push(Diagnostic::new(
            &loc,
            &raw,
            "<Exec> is not closed (expected </Exec>)",
        ));
    }
    if let Some(s) = sched {
        errors.push(Diagnostic::new(
            &s.loc,
            &s.raw,
            "<Schedule> is not closed (expected </Schedule>)",
        ));
    }
    if let Some(b) = block {
        errors.push(Diagnostic::new(
            &b.loc,
            &b.raw,
            format!(
                "<{} {}> is not closed (expected </{}>)",
                b.kind.name(),
                b.name,
                b.kind.name()
            ),
        ));
        st.blocks.push(b);
    }
    st
}
