//! Reading configuration text into logical lines: comments, `\` line
//! continuation, `define`/`%NAME%`, `envvar`, `include` (with wildcards and
//! cycle detection) and `include_stdout` are all resolved here, so the block
//! parser sees clean lines that each remember their file and line number.
//!
//! Blocks NXLog keeps as text (`<QueryXML>`, and any other tag nested in a
//! module block that is not `<Exec>` or `<Schedule>`) are read here too, line
//! by line as written (no comments, no continuation), because `#` and `\`
//! mean nothing in XML; the block parser gets them as one line carrying the
//! text ([`RawText`]).

use crate::diag::{Diagnostic, Location, LogLevel, Note};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One logical line (continuations joined), comments stripped, defines substituted.
#[derive(Clone, Debug)]
pub(crate) struct SrcLine {
    pub loc: Location,
    pub text: String,
    /// The first physical line as written, for quoting in messages.
    pub raw: String,
    /// A block kept as text (`<QueryXML>`...), read whole: `text` is then its
    /// opening tag.
    pub verbatim: Option<RawText>,
}

/// A block kept as text, as NXLog keeps `<QueryXML>`: its tag as written and
/// the text between its opening and closing tags (lines joined with `\n`,
/// `%NAME%` defines replaced, nothing else changed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawText {
    pub tag: String,
    pub body: String,
}

pub(crate) struct Reader {
    pub defines: Vec<(String, String)>,
    /// Where each define is in `defines` (a configuration may hold many).
    define_at: HashMap<String, usize>,
    pub lines: Vec<SrcLine>,
    pub errors: Vec<Diagnostic>,
    pub notes: Vec<Note>,
    /// Canonical paths of the files being read, innermost last (cycle check).
    stack: Vec<PathBuf>,
    /// Bytes added by define substitution so far (see MAX_EXPANDED_TOTAL).
    expanded: usize,
    /// Inside `<Input>`, `<Output>`, `<Extension>` or `<Processor>` (unknown
    /// nested tags are then kept as text), and inside its `<Exec>` (where
    /// they are not). Kept across includes, as an include inside a block
    /// adds to it.
    in_module: bool,
    in_exec: bool,
    /// include_stdout bounds (tests shorten them).
    pub stdout_timeout: Duration,
    pub stdout_limit: usize,
}

const MAX_INCLUDE_DEPTH: usize = 32;
/// The longest a logical line may get once `%NAME%` defines are replaced.
/// Defines are expanded when defined, so `define B %A%%A%` doubles each
/// time; without a bound forty such lines need a terabyte.
const MAX_EXPANDED_LINE: usize = 1 << 20;
/// Total bytes defines may add to a configuration (all lines together).
const MAX_EXPANDED_TOTAL: usize = 16 << 20;
/// Refuse absurd files instead of allocating without bound.
const MAX_FILE_SIZE: u64 = 64 << 20;
/// How long an include_stdout command may run, and how much it may print.
const STDOUT_TIMEOUT: Duration = Duration::from_secs(30);
const STDOUT_LIMIT: usize = 1 << 20;
/// Tags that open a module block and its parts the block parser reads.
const MODULE_BLOCKS: &[&str] = &["Input", "Output", "Extension", "Processor"];

impl Reader {
    pub fn new() -> Self {
        Reader {
            defines: Vec::new(),
            define_at: HashMap::new(),
            lines: Vec::new(),
            errors: Vec::new(),
            notes: Vec::new(),
            stack: Vec::new(),
            expanded: 0,
            in_module: false,
            in_exec: false,
            stdout_timeout: STDOUT_TIMEOUT,
            stdout_limit: STDOUT_LIMIT,
        }
    }

    /// Read a file from disk (the top-level file or an include).
    pub fn read_file(&mut self, path: &Path, display: &str, from: Option<(&Location, &str)>) {
        let fail = |msg: String| match from {
            Some((loc, raw)) => Diagnostic::new(loc, raw, msg),
            None => Diagnostic::new(&Location::new(display, 0), "", msg),
        };
        let canon = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if self.stack.contains(&canon) {
            let mut chain: Vec<String> =
                self.stack.iter().map(|p| p.display().to_string()).collect();
            chain.push(canon.display().to_string());
            let start = self.stack.iter().position(|p| *p == canon).unwrap_or(0);
            self.errors.push(fail(format!(
                "include cycle: {}",
                chain[start..].join(" -> ")
            )));
            return;
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            self.errors.push(fail(format!(
                "includes nested deeper than {MAX_INCLUDE_DEPTH} levels"
            )));
            return;
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                self.errors
                    .push(fail(format!("cannot read '{display}': it is a directory")));
                return;
            }
            Ok(m) if m.len() > MAX_FILE_SIZE => {
                self.errors.push(fail(format!(
                    "cannot read '{display}': larger than {MAX_FILE_SIZE} bytes"
                )));
                return;
            }
            _ => {}
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                self.errors
                    .push(fail(format!("cannot read '{display}': {}", io_reason(&e))));
                return;
            }
        };
        if let Some(kind) = utf16_kind(&bytes) {
            // One clear message instead of a parse error for every line.
            self.errors.push(fail(format!(
                "cannot read '{display}': the file is {kind} text; regmon, like NXLog, reads configuration files as UTF-8 (save it as UTF-8, e.g. in Notepad: Save As, Encoding UTF-8)"
            )));
            return;
        }
        let text = String::from_utf8_lossy(&bytes);
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text).to_string();
        self.stack.push(canon);
        self.read_text(&text, display, path.parent().unwrap_or(Path::new("")));
        self.stack.pop();
    }

    /// Read text under a (possibly virtual) file name; includes resolve
    /// relative to `dir`.
    pub fn read_text(&mut self, text: &str, display: &str, dir: &Path) {
        if self.stack.is_empty() {
            // a virtual top-level file: remember it so a self-include is a cycle
            let p = dir.join(Path::new(display).file_name().unwrap_or_default());
            self.stack.push(p.canonicalize().unwrap_or(p));
            self.read_lines(text, display, dir);
            self.stack.pop();
        } else {
            self.read_lines(text, display, dir);
        }
    }

    fn read_lines(&mut self, text: &str, display: &str, dir: &Path) {
        // a byte-order mark, also on text that did not come from a file
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut acc: Option<(usize, String, String)> = None; // (line, raw, text)
        let mut open: Option<OpenText> = None;
        for (i, phys) in text.split('\n').enumerate() {
            let phys = phys.strip_suffix('\r').unwrap_or(phys);
            let lineno = i + 1;
            if let Some(mut t) = open.take() {
                if let Some(close) = t.interrupted_by(phys) {
                    self.errors.push(Diagnostic::new(
                        &t.loc,
                        &t.raw,
                        format!(
                            "<{}> is not closed (expected </{}> before {close} at line {lineno})",
                            t.tag, t.tag
                        ),
                    ));
                    // read this line as usual: it closes the module block
                } else {
                    let line = match self.substitute(phys) {
                        Ok(l) => l,
                        Err(msg) => {
                            self.errors.push(Diagnostic::new(
                                &Location::new(display, lineno),
                                phys,
                                msg,
                            ));
                            String::new()
                        }
                    };
                    match t.feed(&line, false) {
                        None => open = Some(t),
                        Some(after) => self.close_text(t, &after, display, lineno, phys),
                    }
                    continue;
                }
            }
            let trimmed = phys.trim();
            if trimmed.starts_with('#') {
                continue;
            }
            let content = strip_comment(phys);
            // as NXLog: a final `\` continues the line, a final `\\` is
            // one backslash (so a Windows path may end with one)
            let (content, cont) = match content.trim_end().strip_suffix('\\') {
                Some(c) if c.ends_with('\\') => (c.to_string(), false),
                Some(c) => (c.trim_end().to_string(), true),
                None => (content.to_string(), false),
            };
            let entry = acc.get_or_insert_with(|| (lineno, phys.to_string(), String::new()));
            if !entry.2.is_empty() {
                entry.2.push(' ');
                entry.2.push_str(content.trim());
            } else {
                entry.2.push_str(&content);
            }
            if cont {
                continue;
            }
            if let Some((line, raw, logical)) = acc.take() {
                open = self.logical(Location::new(display, line), raw, logical, dir);
            }
        }
        if let Some((line, raw, logical)) = acc.take() {
            open = self.logical(Location::new(display, line), raw, logical, dir);
        }
        if let Some(t) = open {
            let hint = if t.tag.eq_ignore_ascii_case("QueryXML") {
                ""
            } else {
                "; a tag inside a module block is read as text up to its closing tag, as NXLog reads <QueryXML>"
            };
            self.errors.push(Diagnostic::new(
                &t.loc,
                &t.raw,
                format!("<{}> is not closed (expected </{}>{hint})", t.tag, t.tag),
            ));
        }
    }

    /// A block kept as text has closed: hand it on as one line. `after` is
    /// what followed the closing tag on its line (`close_line`).
    fn close_text(
        &mut self,
        t: OpenText,
        after: &str,
        display: &str,
        line: usize,
        close_line: &str,
    ) {
        let rest = strip_comment(after).trim();
        if !rest.is_empty() {
            self.errors.push(Diagnostic::new(
                &Location::new(display, line),
                close_line,
                format!("unexpected text after </{}>: '{rest}'", t.tag),
            ));
        }
        let body = t.body.join("\n");
        self.lines.push(SrcLine {
            text: t.open_tag,
            loc: t.loc,
            raw: t.raw,
            verbatim: Some(RawText { tag: t.tag, body }),
        });
    }

    /// Whether this logical line opens a block kept as text (then that
    /// block, or Done when it closed on the same line and was handed on).
    /// Keeps track of module and Exec blocks for the next lines.
    fn text_block(&mut self, loc: &Location, raw: &str, text: &str) -> TextBlock {
        let t = text.trim();
        let Some(inner) = t.strip_prefix('<') else {
            return TextBlock::No;
        };
        if let Some(close) = inner.strip_prefix('/') {
            let name = tag_name(close);
            if MODULE_BLOCKS.iter().any(|b| b.eq_ignore_ascii_case(name)) {
                self.in_module = false;
                self.in_exec = false;
            } else if name.eq_ignore_ascii_case("exec") {
                self.in_exec = false;
            }
            return TextBlock::No;
        }
        let name = tag_name(inner);
        let known = |n: &str| {
            MODULE_BLOCKS
                .iter()
                .chain(&["Route", "Exec", "Schedule"])
                .any(|b| b.eq_ignore_ascii_case(n))
        };
        if known(name) {
            self.in_module = MODULE_BLOCKS.iter().any(|b| b.eq_ignore_ascii_case(name))
                || (self.in_module && !name.eq_ignore_ascii_case("route"));
            self.in_exec = name.eq_ignore_ascii_case("exec");
            return TextBlock::No;
        }
        let textual = (name.eq_ignore_ascii_case("QueryXML") || self.in_module) && !self.in_exec;
        if !textual || !is_tag_name(name) {
            return TextBlock::No;
        }
        // the opening tag ends at its first '>'; without one the block
        // parser reports the malformed tag
        let Some(gt) = inner.find('>') else {
            return TextBlock::No;
        };
        let open_tag = t[..gt + 2].to_string();
        let mut open = OpenText {
            tag: name.to_string(),
            open_tag,
            loc: loc.clone(),
            raw: raw.to_string(),
            body: Vec::new(),
            depth: 0,
            in_comment: false,
        };
        if inner[..gt].trim_end().ends_with('/') {
            // <Tag/>: empty
            let display = loc.file.clone();
            self.close_text(open, &inner[gt + 1..], &display, loc.line, raw);
            return TextBlock::Done;
        }
        match open.feed(&inner[gt + 1..], true) {
            None => TextBlock::Open(open),
            Some(after) => {
                let display = loc.file.clone();
                self.close_text(open, &after, &display, loc.line, raw);
                TextBlock::Done
            }
        }
    }

    /// One logical line; returns the block kept as text it opens, if any.
    fn logical(
        &mut self,
        loc: Location,
        raw: String,
        text: String,
        dir: &Path,
    ) -> Option<OpenText> {
        if text.trim().is_empty() {
            return None;
        }
        let text = match self.substitute(&text) {
            Ok(t) => t,
            Err(msg) => {
                self.errors.push(Diagnostic::new(&loc, &raw, msg));
                return None;
            }
        };
        let trimmed = text.trim_start();
        let (word, rest) = split_word(trimmed);
        let lw = word.to_ascii_lowercase();
        match lw.as_str() {
            "define" => {
                let (name, value) = split_word(rest);
                if !is_name(name) || value.trim().is_empty() {
                    self.errors
                        .push(Diagnostic::new(&loc, &raw, "expected 'define NAME value'"));
                    return None;
                }
                let value = value.trim().to_string();
                if self.set_define(name, value) {
                    self.notes.push(Note {
                        level: LogLevel::Warning,
                        location: loc.clone(),
                        message: format!("define {name} redefined"),
                    });
                }
            }
            "envvar" => {
                let (name, extra) = split_word(rest);
                if !is_name(name) || !extra.trim().is_empty() {
                    self.errors
                        .push(Diagnostic::new(&loc, &raw, "expected 'envvar NAME'"));
                    return None;
                }
                match std::env::var(name) {
                    Ok(v) => {
                        self.set_define(name, v);
                    }
                    Err(_) => self.errors.push(Diagnostic::new(
                        &loc,
                        &raw,
                        format!("environment variable '{name}' is not set"),
                    )),
                }
            }
            "include" => {
                let target = unquote(rest.trim());
                if target.is_empty() {
                    self.errors
                        .push(Diagnostic::new(&loc, &raw, "expected 'include PATH'"));
                    return None;
                }
                self.include(&loc, &raw, target, dir);
            }
            "include_stdout" => {
                let command = unquote(rest.trim());
                if command.is_empty() {
                    self.errors.push(Diagnostic::new(
                        &loc,
                        &raw,
                        "expected 'include_stdout COMMAND'",
                    ));
                    return None;
                }
                self.include_stdout(&loc, &raw, command, dir);
            }
            _ => {
                match self.text_block(&loc, &raw, &text) {
                    TextBlock::Open(open) => return Some(open),
                    TextBlock::Done => return None,
                    TextBlock::No => {}
                }
                self.lines.push(SrcLine {
                    loc,
                    text,
                    raw,
                    verbatim: None,
                });
            }
        }
        None
    }

    fn include(&mut self, loc: &Location, raw: &str, target: &str, dir: &Path) {
        let p = Path::new(target);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            dir.join(p)
        };
        let name = full
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = full.parent().map(Path::to_path_buf).unwrap_or_default();
        if parent.to_string_lossy().contains(['*', '?']) {
            self.errors.push(Diagnostic::new(
                loc,
                raw,
                "wildcards are supported only in the file name of an include, not in directories",
            ));
            return;
        }
        if !name.contains(['*', '?']) {
            let shown = full.display().to_string();
            self.read_file(&full, &shown, Some((loc, raw)));
            return;
        }
        let entries = match std::fs::read_dir(if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &parent
        }) {
            Ok(e) => e,
            Err(e) => {
                self.errors.push(Diagnostic::new(
                    loc,
                    raw,
                    format!(
                        "cannot read directory '{}': {}",
                        parent.display(),
                        io_reason(&e)
                    ),
                ));
                return;
            }
        };
        let mut matches: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().map(|t| !t.is_dir()).unwrap_or(false))
            .filter(|e| wildcard_match(&name, &e.file_name().to_string_lossy()))
            .map(|e| parent.join(e.file_name()))
            .collect();
        matches.sort();
        if matches.is_empty() {
            self.notes.push(Note {
                level: LogLevel::Debug,
                location: loc.clone(),
                message: format!("include {target}: no file matches"),
            });
        }
        for m in matches {
            let shown = m.display().to_string();
            self.read_file(&m, &shown, Some((loc, raw)));
        }
    }

    /// `include_stdout COMMAND`: run COMMAND (a program or script, no
    /// arguments, no shell: as NXLog) and read what it prints as
    /// configuration, in place of this line. Bounded in time and size.
    fn include_stdout(&mut self, loc: &Location, raw: &str, command: &str, dir: &Path) {
        if cfg!(fuzzing) {
            // a fuzzer must not run the programs it happens to name
            self.errors.push(Diagnostic::new(
                loc,
                raw,
                "include_stdout is disabled in fuzzing builds",
            ));
            return;
        }
        let p = Path::new(command);
        let program = if p.is_absolute() || p.components().count() == 1 && !dir.join(p).is_file() {
            // absolute, or a bare name not beside the file: as given (PATH)
            p.to_path_buf()
        } else {
            dir.join(p)
        };
        // a command that includes itself would run forever
        let marker = PathBuf::from(format!("include_stdout {}", program.display()));
        if self.stack.contains(&marker) || self.stack.len() >= MAX_INCLUDE_DEPTH {
            self.errors.push(Diagnostic::new(
                loc,
                raw,
                format!(
                    "include_stdout {command}: its output includes it again (or includes are nested deeper than {MAX_INCLUDE_DEPTH} levels)"
                ),
            ));
            return;
        }
        let output = match run_command(&program, self.stdout_timeout, self.stdout_limit) {
            Ok(o) => o,
            Err(why) => {
                let hint = match command.split_once(char::is_whitespace) {
                    Some((first, _)) if !program.exists() => format!(
                        " (include_stdout runs one program without arguments, as in NXLog; '{first}' with arguments belongs in a script)"
                    ),
                    _ => String::new(),
                };
                self.errors.push(Diagnostic::new(
                    loc,
                    raw,
                    format!("include_stdout {command}: {why}{hint}"),
                ));
                return;
            }
        };
        let shown = format!("{} (output)", program.display());
        if let Some(kind) = utf16_kind(&output) {
            self.errors.push(Diagnostic::new(
                loc,
                raw,
                format!("include_stdout {command}: the output is {kind} text; configuration must be UTF-8"),
            ));
            return;
        }
        let text = String::from_utf8_lossy(&output).into_owned();
        self.stack.push(marker);
        self.read_lines(&text, &shown, dir);
        self.stack.pop();
    }

    /// Set a define (or an envvar); whether it replaced one.
    fn set_define(&mut self, name: &str, value: String) -> bool {
        match self.define_at.get(name) {
            Some(&at) if at < self.defines.len() => {
                self.defines[at].1 = value;
                true
            }
            _ => {
                self.define_at.insert(name.to_string(), self.defines.len());
                self.defines.push((name.to_string(), value));
                false
            }
        }
    }

    /// Replace `%NAME%` of known defines; unknown `%...%` stays (strftime
    /// formats such as `%Y%m%d` must survive). Refuses to grow a line past
    /// MAX_EXPANDED_LINE or the configuration past MAX_EXPANDED_TOTAL,
    /// checked before each piece is appended.
    fn substitute(&mut self, text: &str) -> Result<String, String> {
        if self.defines.is_empty() || !text.contains('%') {
            return Ok(text.to_string());
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find('%') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let end = after.find('%');
            let hit = end.and_then(|e| {
                let name = &after[..e];
                self.define_at
                    .get(name)
                    .and_then(|&at| self.defines.get(at))
                    .map(|(_, v)| (e, v))
            });
            match hit {
                Some((e, v)) => {
                    if out.len() + v.len() > MAX_EXPANDED_LINE {
                        return Err(format!(
                            "define expansion too large: this line would be longer than {} MiB once %NAME% defines are replaced",
                            MAX_EXPANDED_LINE >> 20
                        ));
                    }
                    if self.expanded + v.len() > MAX_EXPANDED_TOTAL {
                        return Err(format!(
                            "define expansion too large: %NAME% defines would add more than {} MiB to the configuration",
                            MAX_EXPANDED_TOTAL >> 20
                        ));
                    }
                    self.expanded += v.len();
                    out.push_str(v);
                    rest = &after[e + 1..];
                }
                None => {
                    out.push('%');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// A block kept as text, open: what has been read of it so far.
struct OpenText {
    /// The tag as written (`QueryXML`) and the whole opening tag.
    tag: String,
    open_tag: String,
    loc: Location,
    raw: String,
    body: Vec<String>,
    /// Same-named tags opened inside it and not yet closed.
    depth: usize,
    /// Inside `<!-- -->`, where tags mean nothing.
    in_comment: bool,
}

impl OpenText {
    /// Read one more line (`opening`: the rest of the opening line).
    /// Returns what follows the closing tag once it is found; the text
    /// before it is kept, blank ends of the opening and closing lines not.
    fn feed(&mut self, line: &str, opening: bool) -> Option<String> {
        match self.close_in(line) {
            Some((start, end)) => {
                if !line[..start].trim().is_empty() {
                    self.body.push(line[..start].to_string());
                }
                Some(line[end..].to_string())
            }
            None => {
                if !(opening && line.trim().is_empty()) {
                    self.body.push(line.to_string());
                }
                None
            }
        }
    }

    /// Where this block's closing tag is on `line` (start and end byte),
    /// following `<!-- -->` comments and same-named nested tags.
    fn close_in(&mut self, line: &str) -> Option<(usize, usize)> {
        // ASCII lower-casing keeps byte positions
        let lower = line.to_ascii_lowercase();
        let tag = self.tag.to_ascii_lowercase();
        let mut i = 0;
        while i < lower.len() {
            if self.in_comment {
                let k = lower[i..].find("-->")?;
                i += k + 3;
                self.in_comment = false;
                continue;
            }
            let k = lower[i..].find('<')?;
            i += k;
            let rest = &lower[i..];
            if rest.starts_with("<!--") {
                self.in_comment = true;
                i += 4;
                continue;
            }
            if let Some(after) = rest
                .strip_prefix("</")
                .and_then(|r| r.strip_prefix(tag.as_str()))
            {
                let gap = after.len() - after.trim_start().len();
                if after[gap..].starts_with('>') {
                    let end = i + (rest.len() - after.len()) + gap + 1;
                    if self.depth == 0 {
                        return Some((i, end));
                    }
                    self.depth -= 1;
                    i = end;
                    continue;
                }
            } else if let Some(after) = rest
                .strip_prefix('<')
                .and_then(|r| r.strip_prefix(tag.as_str()))
            {
                if after.starts_with(|c: char| c.is_whitespace() || c == '>') {
                    let self_closing = after
                        .find('>')
                        .is_some_and(|g| after[..g].trim_end().ends_with('/'));
                    if !self_closing {
                        self.depth += 1;
                    }
                }
            }
            i += 1;
        }
        None
    }

    /// A line that closes a module block (`</Input>`) while this block is
    /// open: its own closing tag is missing. Returns that tag as written.
    fn interrupted_by<'a>(&self, line: &'a str) -> Option<&'a str> {
        if self.in_comment {
            return None;
        }
        let t = line.trim();
        let name = tag_name(t.strip_prefix("</")?);
        let ends = t.strip_suffix('>')?.trim_end().len() == 2 + name.len();
        (ends
            && !name.eq_ignore_ascii_case(&self.tag)
            && MODULE_BLOCKS
                .iter()
                .chain(&["Route"])
                .any(|b| b.eq_ignore_ascii_case(name)))
        .then_some(t)
    }
}

/// What a logical line is to the reader of blocks kept as text.
enum TextBlock {
    No,
    Open(OpenText),
    /// Opened and closed on this line, and handed on.
    Done,
}

/// The name at the start of a tag's inside (`Input in` in `<Input in>`).
fn tag_name(inner: &str) -> &str {
    let end = inner
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .unwrap_or(inner.len());
    &inner[..end]
}

/// An XML-like tag name: a letter, then letters, digits, `_`, `-`, `.`, `:`.
fn is_tag_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic())
        && c.all(|x| x.is_ascii_alphanumeric() || matches!(x, '_' | '-' | '.' | ':'))
}

/// Run `program` (no arguments, no shell; on Windows a `.cmd`/`.bat` runs
/// through cmd.exe, which is what CreateProcess does for NXLog too) and
/// return its standard output. Fails when it cannot start, runs longer than
/// `timeout` (it is then killed), prints more than `limit` bytes or exits
/// unsuccessfully; the message then ends with its last line on stderr.
fn run_command(program: &Path, timeout: Duration, limit: usize) -> Result<Vec<u8>, String> {
    let mut child = Command::new(program)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run '{}': {}", program.display(), io_reason(&e)))?;
    let deadline = Instant::now() + timeout;
    let (out_tx, out_rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let res = out.take(limit as u64 + 1).read_to_end(&mut buf);
            let _ = out_tx.send(res.map(|_| buf));
        });
    }
    let (err_tx, err_rx) = mpsc::channel();
    if let Some(mut err) = child.stderr.take() {
        std::thread::spawn(move || {
            // read it all (a full pipe would block the command), keep the end
            let mut tail: Vec<u8> = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = err.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&chunk[..n]);
                if tail.len() > 8192 {
                    tail.drain(..tail.len() - 4096);
                }
            }
            let _ = err_tx.send(tail);
        });
    }
    let mut output: Option<Vec<u8>> = None;
    let mut status = None;
    let failure = loop {
        if output.is_none() {
            match out_rx.try_recv() {
                Ok(Ok(buf)) if buf.len() > limit => {
                    break Some(format!("its output is larger than {} KiB", limit >> 10));
                }
                Ok(Ok(buf)) => output = Some(buf),
                Ok(Err(e)) => break Some(format!("cannot read its output: {e}")),
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => output = Some(Vec::new()),
            }
        }
        if status.is_none() {
            match child.try_wait() {
                Ok(s) => status = s,
                Err(e) => break Some(format!("cannot wait for it: {e}")),
            }
        }
        if output.is_some() && status.is_some() {
            break None;
        }
        if Instant::now() >= deadline {
            let secs = timeout.as_secs_f64();
            break Some(match status {
                None => format!("it did not finish within {secs} s and was stopped"),
                // a program it started in the background holds the output
                Some(_) => format!("it exited, but its output was not closed within {secs} s"),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if let Some(why) = failure {
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        return Err(why);
    }
    let status = status.ok_or("no exit status")?;
    if !status.success() {
        let tail = err_rx
            .recv_timeout(Duration::from_millis(500))
            .unwrap_or_default();
        let last = String::from_utf8_lossy(&tail)
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| format!(": {l}"))
            .unwrap_or_default();
        let code = status
            .code()
            .map_or_else(|| "by a signal".to_string(), |c| format!("with status {c}"));
        return Err(format!("the command failed (exited {code}){last}"));
    }
    Ok(output.unwrap_or_default())
}

/// Whether `bytes` look like UTF-16 text, and which kind: a byte-order mark,
/// or (without one) NUL bytes in every other position, which is how ASCII
/// text looks in UTF-16 and never how a UTF-8 configuration looks.
pub(crate) fn utf16_kind(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0xFF, 0xFE, ..] => return Some("UTF-16 (little-endian, with byte-order mark)"),
        [0xFE, 0xFF, ..] => return Some("UTF-16 (big-endian, with byte-order mark)"),
        _ => {}
    }
    let head = &bytes[..bytes.len().min(4096) & !1];
    if head.len() < 2 {
        return None;
    }
    let pairs = head.len() / 2;
    let nul_at = |odd: usize| {
        head.iter()
            .skip(odd)
            .step_by(2)
            .filter(|b| **b == 0)
            .count()
    };
    let (even, odd) = (nul_at(0), nul_at(1));
    // mostly one side NUL, hardly any on the other
    if odd * 10 >= pairs * 6 && even * 10 <= pairs {
        Some("UTF-16 (little-endian)")
    } else if even * 10 >= pairs * 6 && odd * 10 <= pairs {
        Some("UTF-16 (big-endian)")
    } else {
        None
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

pub(crate) fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

pub(crate) fn unquote(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// Remove a trailing `# comment`: a `#` outside quotes that starts the line
/// or follows whitespace (so `/#x/` in a regex and `a#b` stay).
pub(crate) fn strip_comment(line: &str) -> &str {
    let b = line.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) => {
                if q == b'"' && c == b'\\' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None => {
                if c == b'"' || c == b'\'' {
                    quote = Some(c);
                } else if c == b'#' && (i == 0 || b[i - 1].is_ascii_whitespace()) {
                    return &line[..i];
                }
            }
        }
        i += 1;
    }
    line
}

/// `*` and `?` file-name matching (case-insensitive on Windows).
pub(crate) fn wildcard_match(pat: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = if cfg!(windows) {
        (
            pat.to_lowercase().chars().collect(),
            name.to_lowercase().chars().collect(),
        )
    } else {
        (pat.chars().collect(), name.chars().collect())
    };
    // iterative matcher with single backtrack point: O(len(p) * len(n))
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments() {
        assert_eq!(strip_comment("File 'a#b' # c"), "File 'a#b' ");
        assert_eq!(
            strip_comment("Exec if $x =~ /#x/ drop();"),
            "Exec if $x =~ /#x/ drop();"
        );
        assert_eq!(
            strip_comment("Exec $a = \"x\\\" # y\"; # z"),
            "Exec $a = \"x\\\" # y\"; "
        );
        assert_eq!(strip_comment("# all"), "");
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*.conf", "a.conf"));
        assert!(wildcard_match("a?c*", "abcdef"));
        assert!(!wildcard_match("*.conf", "a.conf.bak"));
        assert!(wildcard_match("*", ""));
    }

    #[test]
    fn defines_and_continuation() {
        let mut r = Reader::new();
        r.read_text(
            "define ROOT C:\\nxlog\ndefine LOG %ROOT%\\log # comment\n  LogFile %LOG%\nExec $a = 1 + \\\n   2;\nFile '%Y%m%d'\n",
            "t.conf",
            Path::new(""),
        );
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let texts: Vec<_> = r
            .lines
            .iter()
            .map(|l| (l.loc.line, l.text.trim().to_string()))
            .collect();
        assert_eq!(
            texts,
            vec![
                (3, "LogFile C:\\nxlog\\log".to_string()),
                (4, "Exec $a = 1 + 2;".to_string()),
                (6, "File '%Y%m%d'".to_string())
            ]
        );
    }

    fn read(text: &str) -> Reader {
        let mut r = Reader::new();
        r.read_text(text, "t.conf", Path::new(""));
        r
    }

    fn texts(r: &Reader) -> Vec<(usize, String, Option<RawText>)> {
        r.lines
            .iter()
            .map(|l| (l.loc.line, l.text.trim().to_string(), l.verbatim.clone()))
            .collect()
    }

    fn raw(tag: &str, body: &str) -> Option<RawText> {
        Some(RawText {
            tag: tag.into(),
            body: body.into(),
        })
    }

    #[test]
    fn query_xml_is_kept_as_text() {
        let r = read(concat!(
            "define LOG Security\n",
            "<Input in>\n",
            "    Module im_msvistalog\n",
            "    <QueryXML>\n",
            "        <QueryList>\n",
            "            <Query Id=\"0\">\n",
            "                <Select Path=\"%LOG%\">*</Select>\n",
            "                <!-- not these:\n",
            "                </QueryXML> inside a comment does not close it\n",
            "                -->\n",
            "# not a comment in XML\n",
            "                <Suppress Path=\"%LOG%\">*[System[(EventID=4624)]]</Suppress> \\\n",
            "            </Query>\n",
            "        </QueryList>\n",
            "    </queryxml>\n",
            "</Input>\n",
        ));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let body = concat!(
            "        <QueryList>\n",
            "            <Query Id=\"0\">\n",
            "                <Select Path=\"Security\">*</Select>\n",
            "                <!-- not these:\n",
            "                </QueryXML> inside a comment does not close it\n",
            "                -->\n",
            "# not a comment in XML\n",
            "                <Suppress Path=\"Security\">*[System[(EventID=4624)]]</Suppress> \\\n",
            "            </Query>\n",
            "        </QueryList>",
        );
        assert_eq!(
            texts(&r),
            vec![
                (2, "<Input in>".into(), None),
                (3, "Module im_msvistalog".into(), None),
                (4, "<QueryXML>".into(), raw("QueryXML", body)),
                (16, "</Input>".into(), None),
            ]
        );
    }

    #[test]
    fn other_tags_in_a_module_are_text_too() {
        // pm_evcorr-style rule blocks, a one-line element, nesting of the
        // same tag, a self-closing tag; a <Route> and the top level are not
        // module blocks, and <Exec>/<Schedule> keep their meaning
        let r = read(concat!(
            "<Processor evcorr>\n",
            "  Module pm_evcorr\n",
            "  <Simple>\n",
            "    Exec if $Message =~ /x/ drop(); # kept\n",
            "    <Simple>inner</Simple>\n",
            "  </Simple>\n",
            "  <Select Path=\"System\">*</Select>\n",
            "  <Empty/>\n",
            "  <Schedule>\n",
            "    Every 1 min\n",
            "    <Exec>\n",
            "      log_info(\"x\");\n",
            "    </Exec>\n",
            "  </Schedule>\n",
            "</Processor>\n",
            "<Route r>\n",
            "  <Odd>\n",
            "</Route>\n",
        ));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let got = texts(&r);
        assert_eq!(
            got[2],
            (
                3,
                "<Simple>".into(),
                raw(
                    "Simple",
                    "    Exec if $Message =~ /x/ drop(); # kept\n    <Simple>inner</Simple>"
                )
            )
        );
        assert_eq!(
            got[3],
            (7, "<Select Path=\"System\">".into(), raw("Select", "*"))
        );
        assert_eq!(got[4], (8, "<Empty/>".into(), raw("Empty", "")));
        let plain: Vec<&str> = got[5..]
            .iter()
            .map(|(_, t, v)| {
                assert!(v.is_none());
                t.as_str()
            })
            .collect();
        assert_eq!(
            plain,
            [
                "<Schedule>",
                "Every 1 min",
                "<Exec>",
                "log_info(\"x\");",
                "</Exec>",
                "</Schedule>",
                "</Processor>",
                "<Route r>",
                "<Odd>",
                "</Route>"
            ]
        );
    }

    #[test]
    fn unclosed_text_blocks_name_their_line() {
        let r = read("<Input in>\n  Module im_msvistalog\n  <QueryXML>\n    <QueryList>\n");
        let msgs: Vec<String> = r.errors.iter().map(|e| e.headline()).collect();
        assert_eq!(
            msgs,
            ["t.conf:3: <QueryXML> is not closed (expected </QueryXML>)"]
        );

        // the module block's end shows where it should have closed, and
        // that line still closes the module block
        let r = read("<Input in>\n  <Rules>\n    a\n</Input>\n<Output o>\n</Output>\n");
        let msgs: Vec<String> = r.errors.iter().map(|e| e.headline()).collect();
        assert_eq!(
            msgs,
            ["t.conf:2: <Rules> is not closed (expected </Rules> before </Input> at line 4)"]
        );
        let t: Vec<String> = texts(&r).into_iter().map(|x| x.1).collect();
        assert_eq!(t, ["<Input in>", "</Input>", "<Output o>", "</Output>"]);

        let r = read("<Input in>\n  <Rules>\n");
        assert!(
            r.errors[0]
                .message
                .contains("read as text up to its closing tag"),
            "{:?}",
            r.errors
        );

        let r = read("<Input in>\n  <QueryXML>\n  </QueryXML> trailing\n  <QueryXML>x</QueryXML> # fine\n</Input>\n");
        let msgs: Vec<String> = r.errors.iter().map(|e| e.headline()).collect();
        assert_eq!(
            msgs,
            ["t.conf:3: unexpected text after </QueryXML>: 'trailing'"]
        );
    }

    #[test]
    fn bom_crlf_tabs_and_continued_defines() {
        let r = read("\u{feff}define EXCLUDED 4624, \\\r\n\t4625, \\\r\n  4634\r\n<Input\tin>\r\nModule\tim_regmon\r\n</Input>\r\n");
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(
            r.defines,
            [("EXCLUDED".to_string(), "4624, 4625, 4634".to_string())]
        );
        let t: Vec<String> = texts(&r).into_iter().map(|x| x.1).collect();
        assert_eq!(t, ["<Input\tin>", "Module\tim_regmon", "</Input>"]);
        assert_eq!(r.lines[0].loc.line, 4);
    }

    #[test]
    fn a_final_double_backslash_is_one_backslash() {
        let r = read("define DIR C:\\logs\\\\\nFile '%DIR%x.log'\nExec $a = 1 + \\\n 2;\n");
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.defines, [("DIR".to_string(), "C:\\logs\\".to_string())]);
        let t: Vec<String> = texts(&r).into_iter().map(|x| x.1).collect();
        assert_eq!(t, ["File 'C:\\logs\\x.log'", "Exec $a = 1 + 2;"]);
    }

    #[test]
    fn defines_inside_strings_and_regexes() {
        let r = read("define PATTERN ^(a|b)\\d+$\ndefine WHO 'admin'\nExec if $Message =~ /%PATTERN%/ $User = \"x %WHO% y\";\n");
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(
            r.lines[0].text,
            "Exec if $Message =~ /^(a|b)\\d+$/ $User = \"x 'admin' y\";"
        );
    }

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/syntax")
    }

    fn run_stdout(cmd: &str, timeout: Duration, limit: usize) -> Reader {
        let mut r = Reader::new();
        r.stdout_timeout = timeout;
        r.stdout_limit = limit;
        r.read_text(&format!("include_stdout {cmd}\n"), "t.conf", &fixtures());
        r
    }

    #[cfg(unix)]
    #[test]
    fn include_stdout_reads_the_output() {
        let r = run_stdout("print-conf.sh", STDOUT_TIMEOUT, STDOUT_LIMIT);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let t: Vec<(String, usize, String)> = r
            .lines
            .iter()
            .map(|l| (l.loc.file.clone(), l.loc.line, l.text.trim().to_string()))
            .collect();
        let shown = format!("{} (output)", fixtures().join("print-conf.sh").display());
        assert_eq!(t[0], (shown.clone(), 1, "<Output generated>".to_string()));
        assert_eq!(t[3], (shown, 4, "</Output>".to_string()));
    }

    #[cfg(unix)]
    #[test]
    fn include_stdout_failures_name_the_line() {
        let one = |cmd: &str, timeout: Duration, limit: usize| {
            let r = run_stdout(cmd, timeout, limit);
            assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
            assert!(r.lines.is_empty(), "nothing is read from a failed command");
            r.errors[0].headline()
        };
        let t = Duration::from_secs(20);
        assert_eq!(
            one("fail.sh", t, STDOUT_LIMIT),
            "t.conf:1: include_stdout fail.sh: the command failed (exited with status 3): cannot reach the configuration server"
        );
        let start = Instant::now();
        assert_eq!(
            one("slow.sh", Duration::from_millis(300), STDOUT_LIMIT),
            "t.conf:1: include_stdout slow.sh: it did not finish within 0.3 s and was stopped"
        );
        assert!(start.elapsed() < Duration::from_secs(10));
        assert_eq!(
            one("background.sh", Duration::from_millis(300), STDOUT_LIMIT),
            "t.conf:1: include_stdout background.sh: it exited, but its output was not closed within 0.3 s"
        );
        assert_eq!(
            one("flood.sh", t, 64 << 10),
            "t.conf:1: include_stdout flood.sh: its output is larger than 64 KiB"
        );
        let missing = one("no-such-script.sh", t, STDOUT_LIMIT);
        assert!(
            missing.contains("cannot run") && missing.contains("no such file"),
            "{missing}"
        );
        let args = one("print-conf.sh --all", t, STDOUT_LIMIT);
        assert!(args.contains("without arguments"), "{args}");
        let again = one("self.sh", t, STDOUT_LIMIT);
        assert!(again.contains("includes it again"), "{again}");
    }

    /// A `.cmd` script runs through cmd.exe, as NXLog's CreateProcess runs it.
    #[cfg(windows)]
    #[test]
    fn include_stdout_runs_cmd_scripts() {
        let r = run_stdout("print-conf.cmd", STDOUT_TIMEOUT, STDOUT_LIMIT);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let t: Vec<String> = texts(&r).into_iter().map(|x| x.1).collect();
        assert_eq!(
            t,
            [
                "<Output generated>",
                "Module  om_file",
                "File    'generated.log'",
                "</Output>"
            ]
        );
        let r = run_stdout("fail.cmd", STDOUT_TIMEOUT, STDOUT_LIMIT);
        let msgs: Vec<String> = r.errors.iter().map(|e| e.headline()).collect();
        assert_eq!(
            msgs,
            ["t.conf:1: include_stdout fail.cmd: the command failed (exited with status 3): cannot reach the configuration server"]
        );
    }
}
