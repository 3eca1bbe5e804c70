//! Reading configuration text into logical lines: comments, `\` line
//! continuation, `define`/`%NAME%`, `envvar` and `include` (with wildcards and
//! cycle detection) are all resolved here, so the block parser sees clean
//! lines that each remember their file and line number.

use crate::diag::{Diagnostic, Location, LogLevel, Note};
use std::path::{Path, PathBuf};

/// One logical line (continuations joined), comments stripped, defines substituted.
#[derive(Clone, Debug)]
pub(crate) struct SrcLine {
    pub loc: Location,
    pub text: String,
    /// The first physical line as written, for quoting in messages.
    pub raw: String,
}

pub(crate) struct Reader {
    pub defines: Vec<(String, String)>,
    pub lines: Vec<SrcLine>,
    pub errors: Vec<Diagnostic>,
    pub notes: Vec<Note>,
    /// Canonical paths of the files being read, innermost last (cycle check).
    stack: Vec<PathBuf>,
    /// Bytes added by define substitution so far (see MAX_EXPANDED_TOTAL).
    expanded: usize,
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

impl Reader {
    pub fn new() -> Self {
        Reader {
            defines: Vec::new(),
            lines: Vec::new(),
            errors: Vec::new(),
            notes: Vec::new(),
            stack: Vec::new(),
            expanded: 0,
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
        let mut acc: Option<(usize, String, String)> = None; // (line, raw, text)
        for (i, phys) in text.split('\n').enumerate() {
            let phys = phys.strip_suffix('\r').unwrap_or(phys);
            let lineno = i + 1;
            let trimmed = phys.trim();
            if trimmed.starts_with('#') {
                continue;
            }
            let content = strip_comment(phys);
            let (content, cont) = match content.trim_end().strip_suffix('\\') {
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
                self.logical(Location::new(display, line), raw, logical, dir);
            }
        }
        if let Some((line, raw, logical)) = acc.take() {
            self.logical(Location::new(display, line), raw, logical, dir);
        }
    }

    fn logical(&mut self, loc: Location, raw: String, text: String, dir: &Path) {
        if text.trim().is_empty() {
            return;
        }
        let text = match self.substitute(&text) {
            Ok(t) => t,
            Err(msg) => {
                self.errors.push(Diagnostic::new(&loc, &raw, msg));
                return;
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
                    return;
                }
                let value = value.trim().to_string();
                if let Some(d) = self.defines.iter_mut().find(|(n, _)| n == name) {
                    self.notes.push(Note {
                        level: LogLevel::Warning,
                        location: loc.clone(),
                        message: format!("define {name} redefined"),
                    });
                    d.1 = value;
                } else {
                    self.defines.push((name.to_string(), value));
                }
            }
            "envvar" => {
                let (name, extra) = split_word(rest);
                if !is_name(name) || !extra.trim().is_empty() {
                    self.errors
                        .push(Diagnostic::new(&loc, &raw, "expected 'envvar NAME'"));
                    return;
                }
                match std::env::var(name) {
                    Ok(v) => {
                        self.defines.retain(|(n, _)| n != name);
                        self.defines.push((name.to_string(), v));
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
                    return;
                }
                self.include(&loc, &raw, target, dir);
            }
            "include_stdout" => self.errors.push(Diagnostic::new(
                &loc,
                &raw,
                "include_stdout is not supported by regmon (use include PATH)",
            )),
            _ => self.lines.push(SrcLine { loc, text, raw }),
        }
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
                self.defines
                    .iter()
                    .find(|(n, _)| n == name)
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
}
