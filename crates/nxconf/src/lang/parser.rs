//! Recursive-descent parser and load-time checker for Exec code.
//!
//! Precedence, loosest first (NXLog's order): `or`, `xor`, `and`, `not`,
//! comparisons (`== != < <= > >= =~ !~ in`, `not in`), `+ -`, `* / %`,
//! unary (`-`, `defined`). Names are resolved and types checked while parsing,
//! so unknown functions and type errors knowable at load time fail the load.

use super::ast::*;
use super::lexer::{tokenize, Tok, Token};
use super::scope::{ExecScope, Extension};
use crate::diag::{Diagnostic, Location};
use crate::syslog::SyslogFormat;
use crate::value::{DateFormat, Type, Value};
use crate::LogLevel;
use regex::RegexBuilder;
use std::sync::Arc;

/// Exec source text with a map back to configuration lines.
#[derive(Clone, Debug, Default)]
pub(crate) struct ExecSource {
    pub text: String,
    pub segs: Vec<Seg>,
}

#[derive(Clone, Debug)]
pub(crate) struct Seg {
    pub start: usize,
    pub loc: Location,
    pub line_text: String,
    /// 1-based column where this segment's text starts in its line.
    pub col0: usize,
}

impl ExecSource {
    pub fn push(&mut self, text: &str, loc: Location, line_text: &str, col0: usize) {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.segs.push(Seg {
            start: self.text.len(),
            loc,
            line_text: line_text.to_string(),
            col0,
        });
        self.text.push_str(text);
    }

    fn seg(&self, off: usize) -> Option<&Seg> {
        self.segs
            .iter()
            .rev()
            .find(|s| s.start <= off)
            .or(self.segs.first())
    }

    pub fn loc(&self, off: usize) -> Location {
        self.seg(off)
            .map(|s| s.loc.clone())
            .unwrap_or_else(|| Location::new("<exec>", 0))
    }

    pub fn diag(&self, off: usize, msg: String) -> Diagnostic {
        match self.seg(off) {
            Some(s) => {
                let off = off.min(self.text.len());
                let col = s.col0 + self.text[s.start.min(off)..off].chars().count();
                Diagnostic::new(&s.loc, &s.line_text, msg).with_column(col)
            }
            None => Diagnostic::new(&Location::new("<exec>", 0), "", msg),
        }
    }
}

struct PErr {
    off: usize,
    msg: String,
}

type PResult<T> = Result<T, PErr>;

struct Parser<'a> {
    toks: Vec<Token>,
    pos: usize,
    src: &'a ExecSource,
    scope: &'a ExecScope,
    depth: usize,
}

/// How deeply parentheses, blocks, `if` bodies, function arguments and
/// unary operators may nest. The evaluator recurses once per level (the
/// parser runs on its own thread, see [`PARSE_STACK`]), so this bound, not
/// the input, decides its stack use: far above what a real configuration
/// needs, and small enough that running the deepest accepted code fits a
/// 2 MiB thread stack with room to spare (tests/fuzz.rs checks it). Flat
/// runs (`a + b + ...`, `else if` chains, statement lists) do not count.
pub(crate) const MAX_DEPTH: usize = 100;

/// The tallest expression tree accepted (see [`Expr::height`]); the
/// evaluator recurses once per level.
pub(crate) const MAX_HEIGHT: u32 = 100;

/// Stack for the thread that compiles Exec code. The parser recurses about
/// fifteen calls per nesting level, which at [`MAX_DEPTH`] levels can need
/// over 1 MiB in a debug build: more than a caller's 2 MiB thread can be
/// assumed to have free. Compiling on a thread of our own makes the limit
/// independent of the caller (the memory is reserved, not committed).
const PARSE_STACK: usize = 16 << 20;

/// Run `f` on a thread with [`PARSE_STACK`] bytes of stack.
fn on_parse_stack<T: Send>(
    f: impl FnOnce() -> Result<T, Diagnostic> + Send,
) -> Result<T, Diagnostic> {
    std::thread::scope(|s| {
        match std::thread::Builder::new()
            .name("nxconf-compile".into())
            .stack_size(PARSE_STACK)
            .spawn_scoped(s, f)
        {
            Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Err(e) => Err(Diagnostic::new(
                &Location::new("<exec>", 0),
                "",
                format!("cannot start a thread to compile Exec code: {e}"),
            )),
        }
    })
}

/// Compile a piece of Exec code into statements.
pub(crate) fn parse_program(src: &ExecSource, scope: &ExecScope) -> Result<Vec<Stmt>, Diagnostic> {
    on_parse_stack(|| {
        let toks = tokenize(&src.text).map_err(|e| src.diag(e.offset, e.message))?;
        let mut p = Parser {
            toks,
            pos: 0,
            src,
            scope,
            depth: 0,
        };
        let mut out = Vec::new();
        while !p.at_eof() {
            out.push(p.stmt().map_err(|e| src.diag(e.off, e.msg))?);
        }
        Ok(out)
    })
}

/// Compile a single expression (directive values such as om_file's File).
pub(crate) fn parse_expression(src: &ExecSource, scope: &ExecScope) -> Result<Expr, Diagnostic> {
    on_parse_stack(|| {
        let toks = tokenize(&src.text).map_err(|e| src.diag(e.offset, e.message))?;
        let mut p = Parser {
            toks,
            pos: 0,
            src,
            scope,
            depth: 0,
        };
        let e = p.expr().map_err(|e| src.diag(e.off, e.msg))?;
        if !p.at_eof() {
            let t = p.peek().clone();
            return Err(src.diag(
                t.start,
                format!("unexpected {} after the expression", describe(&t.tok)),
            ));
        }
        Ok(e)
    })
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Field(f) => format!("field '${f}'"),
        Tok::Capture(n) => format!("'${n}'"),
        Tok::Lit(Value::String(s)) => format!("string '{s}'"),
        Tok::Lit(v) => format!(
            "'{}'",
            v.to_display_string().unwrap_or_else(|| "undef".into())
        ),
        Tok::Regex { pattern, .. } => format!("regular expression /{pattern}/"),
        Tok::Subst { pattern, .. } => format!("substitution s/{pattern}/"),
        Tok::Ident(i) => format!("'{i}'"),
        Tok::Op(o) => format!("'{o}'"),
        Tok::Eof => "end of input".into(),
    }
}

fn is_kw(t: &Tok, kw: &str) -> bool {
    matches!(t, Tok::Ident(i) if i.eq_ignore_ascii_case(kw))
}

const KEYWORDS: [&str; 8] = ["if", "else", "and", "or", "xor", "not", "defined", "in"];

struct FnSig {
    name: &'static str,
    func: Func,
    params: &'static [Type],
    required: usize,
    ret: Type,
}

use Type as T;
const FUNCS: &[FnSig] = &[
    FnSig {
        name: "hostname",
        func: Func::Hostname,
        params: &[],
        required: 0,
        ret: T::String,
    },
    FnSig {
        name: "hostname_fqdn",
        func: Func::HostnameFqdn,
        params: &[],
        required: 0,
        ret: T::String,
    },
    FnSig {
        name: "now",
        func: Func::Now,
        params: &[],
        required: 0,
        ret: T::DateTime,
    },
    FnSig {
        name: "lc",
        func: Func::Lc,
        params: &[T::String],
        required: 1,
        ret: T::String,
    },
    FnSig {
        name: "uc",
        func: Func::Uc,
        params: &[T::String],
        required: 1,
        ret: T::String,
    },
    FnSig {
        name: "substr",
        func: Func::Substr,
        params: &[T::String, T::Integer, T::Integer],
        required: 2,
        ret: T::String,
    },
    FnSig {
        name: "size",
        func: Func::Size,
        params: &[T::Unknown],
        required: 1,
        ret: T::Integer,
    },
    FnSig {
        name: "string",
        func: Func::String,
        params: &[T::Unknown],
        required: 1,
        ret: T::String,
    },
    FnSig {
        name: "integer",
        func: Func::Integer,
        params: &[T::Unknown],
        required: 1,
        ret: T::Integer,
    },
    FnSig {
        name: "strftime",
        func: Func::Strftime,
        params: &[T::DateTime, T::String],
        required: 2,
        ret: T::String,
    },
    FnSig {
        name: "type",
        func: Func::Type,
        params: &[T::Unknown],
        required: 1,
        ret: T::String,
    },
    FnSig {
        name: "parsedate",
        func: Func::Parsedate,
        params: &[T::String],
        required: 1,
        ret: T::DateTime,
    },
    FnSig {
        name: "replace",
        func: Func::Replace,
        params: &[T::String, T::String, T::String, T::Integer],
        required: 3,
        ret: T::String,
    },
    FnSig {
        name: "datetime",
        func: Func::Datetime,
        params: &[T::Integer],
        required: 1,
        ret: T::DateTime,
    },
    FnSig {
        name: "year",
        func: Func::Year,
        params: &[T::DateTime],
        required: 1,
        ret: T::Integer,
    },
    FnSig {
        name: "month",
        func: Func::Month,
        params: &[T::DateTime],
        required: 1,
        ret: T::Integer,
    },
    FnSig {
        name: "day",
        func: Func::Day,
        params: &[T::DateTime],
        required: 1,
        ret: T::Integer,
    },
    FnSig {
        name: "hour",
        func: Func::Hour,
        params: &[T::DateTime],
        required: 1,
        ret: T::Integer,
    },
    FnSig {
        name: "minute",
        func: Func::Minute,
        params: &[T::DateTime],
        required: 1,
        ret: T::Integer,
    },
    FnSig {
        name: "second",
        func: Func::Second,
        params: &[T::DateTime],
        required: 1,
        ret: T::Integer,
    },
    FnSig {
        name: "dayofweek",
        func: Func::Dayofweek,
        params: &[T::DateTime],
        required: 1,
        ret: T::Integer,
    },
    FnSig {
        name: "dayofyear",
        func: Func::Dayofyear,
        params: &[T::DateTime],
        required: 1,
        ret: T::Integer,
    },
    FnSig {
        name: "microsecond",
        func: Func::Microsecond,
        params: &[T::DateTime],
        required: 1,
        ret: T::Integer,
    },
    FnSig {
        name: "strptime",
        func: Func::Strptime,
        params: &[T::String, T::String],
        required: 2,
        ret: T::DateTime,
    },
    FnSig {
        name: "file_exists",
        func: Func::FileExists,
        params: &[T::String],
        required: 1,
        ret: T::Boolean,
    },
    FnSig {
        name: "dir_exists",
        func: Func::DirExists,
        params: &[T::String],
        required: 1,
        ret: T::Boolean,
    },
    FnSig {
        name: "file_size",
        func: Func::FileSize,
        params: &[T::String],
        required: 1,
        ret: T::Integer,
    },
    FnSig {
        name: "file_basename",
        func: Func::FileBasename,
        params: &[T::String],
        required: 1,
        ret: T::String,
    },
    FnSig {
        name: "file_dirname",
        func: Func::FileDirname,
        params: &[T::String],
        required: 1,
        ret: T::String,
    },
    FnSig {
        name: "file_mtime",
        func: Func::FileMtime,
        params: &[T::String],
        required: 1,
        ret: T::DateTime,
    },
    FnSig {
        name: "file_ctime",
        func: Func::FileCtime,
        params: &[T::String],
        required: 1,
        ret: T::DateTime,
    },
    FnSig {
        name: "file_type",
        func: Func::FileType,
        params: &[T::String],
        required: 1,
        ret: T::String,
    },
    FnSig {
        name: "file_read",
        func: Func::FileRead,
        params: &[T::String],
        required: 1,
        ret: T::String,
    },
    FnSig {
        name: "file_inode",
        func: Func::FileInode,
        params: &[T::String],
        required: 1,
        ret: T::Integer,
    },
    FnSig {
        name: "dir_temp_get",
        func: Func::DirTempGet,
        params: &[],
        required: 0,
        ret: T::String,
    },
    FnSig {
        name: "get_var",
        func: Func::GetVar,
        params: &[T::String],
        required: 1,
        ret: T::Unknown,
    },
    FnSig {
        name: "to_json",
        func: Func::ToJson,
        params: &[],
        required: 0,
        ret: T::String,
    },
];

/// The names of the built-in functions, for messages and docs.
pub fn function_names() -> Vec<&'static str> {
    FUNCS.iter().map(|f| f.name).collect()
}

const BUILTIN_PROCS: &str =
    "delete, rename_field, drop, log_debug, log_info, log_warning, log_error, create_var, set_var, delete_var";

/// Functions and procedures of NXLog modules regmon does not run (or
/// whose regmon version lacks them), with the module, so messages can say
/// where a name comes from (from the NXLog reference manual's module
/// chapters). A name may belong to several modules (`call`).
pub(crate) const FOREIGN: &[(&str, &str)] = &[
    ("parse_syslog", "xm_syslog"),
    ("parse_syslog_bsd", "xm_syslog"),
    ("parse_syslog_ietf", "xm_syslog"),
    ("parse_kvp", "xm_kvp"),
    ("reset_kvp", "xm_kvp"),
    ("parse_csv", "xm_csv"),
    ("parse_xml", "xm_xml"),
    ("to_xml", "xm_xml"),
    ("extract_xml", "xm_xml"),
    ("convert", "xm_charconv"),
    ("convert_fields", "xm_charconv"),
    ("exec", "xm_exec"),
    ("exec_async", "xm_exec"),
    ("perl_call", "xm_perl"),
    ("call", "xm_perl"),
    ("python_call", "xm_python"),
    ("call", "xm_python"),
    ("call", "xm_ruby"),
    ("parse_leef", "xm_leef"),
    ("to_leef", "xm_leef"),
    ("parse_cef", "xm_cef"),
    ("to_cef", "xm_cef"),
    ("parse_w3c", "xm_w3c"),
    ("ipaddr_to_name", "xm_resolver"),
    ("name_to_ipaddr", "xm_resolver"),
    ("uid_to_name", "xm_resolver"),
    ("gid_to_name", "xm_resolver"),
    ("match_pattern", "xm_pattern"),
];

fn foreign_owner(name: &str) -> Option<&'static str> {
    FOREIGN.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
}

fn known(t: Type) -> bool {
    !matches!(t, Type::Unknown | Type::Undef)
}

/// Static result type of a binary operation, or the type error.
pub(crate) fn binary_type(op: BinOp, l: Type, r: Type) -> Result<Type, String> {
    use BinOp::*;
    let bad = || {
        Err(format!(
            "type error: cannot apply '{}' to {} and {}",
            op.symbol(),
            l.name(),
            r.name()
        ))
    };
    match op {
        Or | Xor | And => {
            if (known(l) && l != T::Boolean) || (known(r) && r != T::Boolean) {
                return bad();
            }
            Ok(T::Boolean)
        }
        Eq | Ne => {
            if known(l) && known(r) && l != r {
                return Err(format!(
                    "type error: cannot compare {} and {}",
                    l.name(),
                    r.name()
                ));
            }
            Ok(T::Boolean)
        }
        Lt | Le | Gt | Ge => {
            let ordered = |t: Type| matches!(t, T::Integer | T::String | T::DateTime);
            if (known(l) && !ordered(l))
                || (known(r) && !ordered(r))
                || (known(l) && known(r) && l != r)
            {
                return Err(format!(
                    "type error: cannot compare {} and {} with '{}'",
                    l.name(),
                    r.name(),
                    op.symbol()
                ));
            }
            Ok(T::Boolean)
        }
        Add => Ok(match (l, r) {
            (T::String, _) | (_, T::String) => T::String,
            (T::Integer, T::Integer) => T::Integer,
            (T::DateTime, T::Integer) | (T::Integer, T::DateTime) => T::DateTime,
            (a, b) if known(a) && known(b) => return bad(),
            (T::Boolean | T::Binary, _) | (_, T::Boolean | T::Binary) => return bad(),
            _ => T::Unknown,
        }),
        Sub => Ok(match (l, r) {
            (T::Integer, T::Integer) | (T::DateTime, T::DateTime) => T::Integer,
            (T::DateTime, T::Integer) => T::DateTime,
            (a, b) if known(a) && known(b) => return bad(),
            (T::Integer, T::DateTime) => return bad(),
            (T::String | T::Boolean | T::Binary, _) | (_, T::String | T::Boolean | T::Binary) => {
                return bad()
            }
            (T::DateTime, _) => T::Unknown,
            _ => T::Unknown,
        }),
        Mul | Div | Mod => {
            if (known(l) && l != T::Integer) || (known(r) && r != T::Integer) {
                return bad();
            }
            Ok(T::Integer)
        }
    }
}

fn compile_regex(src: &str, flags: &str, allow_g: bool) -> Result<(regex::Regex, bool), String> {
    let mut b = RegexBuilder::new(src);
    let mut global = false;
    for f in flags.chars() {
        match f {
            'i' => {
                b.case_insensitive(true);
            }
            'm' => {
                b.multi_line(true);
            }
            's' => {
                b.dot_matches_new_line(true);
            }
            'x' => {
                b.ignore_whitespace(true);
            }
            'g' if allow_g => global = true,
            _ => {
                return Err(format!(
                    "unknown regular expression flag '{f}' (supported: i, m, s, x{})",
                    if allow_g { ", g" } else { "" }
                ))
            }
        }
    }
    b.size_limit(1 << 22);
    match b.build() {
        Ok(r) => Ok((r, global)),
        Err(e) => {
            let text = e.to_string();
            let detail = text
                .lines()
                .rev()
                .find(|l| l.trim_start().starts_with("error:"))
                .map(|l| l.trim().trim_start_matches("error:").trim().to_string())
                .unwrap_or_else(|| text.lines().last().unwrap_or("").to_string());
            Err(format!("invalid regular expression /{src}/: {detail}"))
        }
    }
}

/// s/// replacement: `\1`, `$1` and `${name}` refer to groups; other `$` are literal.
fn convert_replacement(r: &str) -> String {
    let b = r.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if (c == b'\\' || c == b'$') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let s = i + 1;
            let mut e = s;
            while e < b.len() && b[e].is_ascii_digit() {
                e += 1;
            }
            out.push_str(&format!("${{{}}}", &r[s..e]));
            i = e;
        } else if c == b'$' && b.get(i + 1) == Some(&b'{') {
            out.push('$');
            i += 1;
        } else if c == b'$' {
            out.push_str("$$");
            i += 1;
        } else if c == b'\\' && i + 1 < b.len() {
            let ch = r[i + 1..].chars().next().unwrap_or('\\');
            match ch {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '$' => out.push_str("$$"),
                c => out.push(c),
            }
            i += 1 + ch.len_utf8();
        } else {
            let ch = r[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }
    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].tok
    }
    fn at_eof(&self) -> bool {
        matches!(self.peek().tok, Tok::Eof)
    }
    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }
    fn err<T>(&self, off: usize, msg: impl Into<String>) -> PResult<T> {
        Err(PErr {
            off,
            msg: msg.into(),
        })
    }
    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek().tok, Tok::Op(o) if o == op)
    }
    fn expect_op(&mut self, op: &str, what: &str) -> PResult<Token> {
        if self.is_op(op) {
            Ok(self.next())
        } else {
            let t = self.peek();
            self.err(
                t.start,
                format!("expected '{op}' {what}, found {}", describe(&t.tok)),
            )
        }
    }
    fn loc(&self, off: usize) -> Location {
        self.src.loc(off)
    }
    fn enter(&mut self, off: usize) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err(
                off,
                format!("nesting too deep: more than {MAX_DEPTH} levels of parentheses, blocks, 'if' bodies or unary operators"),
            );
        }
        Ok(())
    }

    /// A statement ends with `;`; the last one of a piece of code may omit it.
    fn end_stmt(&mut self) -> PResult<()> {
        if self.is_op(";") {
            self.next();
            return Ok(());
        }
        if self.at_eof() {
            return Ok(());
        }
        let t = self.peek();
        self.err(
            t.start,
            format!(
                "expected ';' after the statement, found {}",
                describe(&t.tok)
            ),
        )
    }

    fn stmt(&mut self) -> PResult<Stmt> {
        let t = self.peek().clone();
        self.enter(t.start)?;
        let r = self.stmt_inner(t);
        self.depth -= 1;
        r
    }

    fn stmt_inner(&mut self, t: Token) -> PResult<Stmt> {
        match &t.tok {
            Tok::Op(";") => {
                self.next();
                Ok(Stmt::Empty)
            }
            Tok::Op("{") => {
                self.next();
                let mut body = Vec::new();
                while !self.is_op("}") {
                    if self.at_eof() {
                        return self.err(t.start, "unclosed '{' (expected '}')");
                    }
                    body.push(self.stmt()?);
                }
                self.next();
                Ok(Stmt::Block(body))
            }
            Tok::Ident(k) if k.eq_ignore_ascii_case("if") => {
                // `else if` arms are collected in this loop rather than
                // parsed as a nested statement: NXLog accepts long chains.
                let mut arms = Vec::new();
                let mut if_tok = t.clone();
                let otherwise = loop {
                    self.next();
                    if self.at_eof() {
                        return self.err(if_tok.end, "expected a condition after 'if'");
                    }
                    let cond = self.expr()?;
                    if known(cond.ty) && cond.ty != T::Boolean {
                        return self.err(if_tok.start, format!("type error: the 'if' condition is {}, expected boolean", cond.ty.name()));
                    }
                    if self.at_eof() {
                        let e = self.peek().start;
                        return self.err(e, "expected a statement after the 'if' condition");
                    }
                    let then = self.stmt()?;
                    arms.push(IfArm {
                        cond,
                        then,
                        loc: self.loc(if_tok.start),
                    });
                    if !is_kw(&self.peek().tok, "else") {
                        break None;
                    }
                    self.next();
                    if self.at_eof() {
                        let e = self.peek().start;
                        return self.err(e, "expected a statement after 'else'");
                    }
                    if is_kw(&self.peek().tok, "if") {
                        if_tok = self.peek().clone();
                        continue;
                    }
                    break Some(Box::new(self.stmt()?));
                };
                Ok(Stmt::If {
                    arms,
                    otherwise,
                    loc: self.loc(t.start),
                })
            }
            Tok::Ident(k) if k.eq_ignore_ascii_case("else") => self.err(t.start, "'else' without a matching 'if'"),
            Tok::Field(name) => {
                let name = name.clone();
                self.next();
                if !self.is_op("=") {
                    let n = self.peek();
                    if matches!(n.tok, Tok::Op("=~")) {
                        // a bare `$x =~ s/a/b/;` statement
                        self.pos -= 1;
                        let e = self.expr()?;
                        self.end_stmt()?;
                        let loc = self.loc(t.start);
                        return Ok(Stmt::If {
                            arms: vec![IfArm {
                                cond: e,
                                then: Stmt::Empty,
                                loc: loc.clone(),
                            }],
                            otherwise: None,
                            loc,
                        });
                    }
                    return self.err(n.start, format!("expected '=' after ${name}, found {}", describe(&n.tok)));
                }
                self.next();
                if self.at_eof() || self.is_op(";") {
                    let e = self.peek().start;
                    return self.err(e, format!("expected a value to assign to ${name}"));
                }
                let value = self.expr()?;
                self.end_stmt()?;
                Ok(Stmt::Assign {
                    field: name,
                    value,
                    loc: self.loc(t.start),
                })
            }
            Tok::Capture(n) => self.err(t.start, format!("cannot assign to the capture group ${n}")),
            Tok::Ident(name) => {
                let name = name.clone();
                self.next();
                let (instance, pname, name_off) = if self.is_op("->") {
                    self.next();
                    let p = self.next();
                    match p.tok {
                        Tok::Ident(pn) => (Some(name), pn, p.start),
                        other => return self.err(p.start, format!("expected a procedure name after '->', found {}", describe(&other))),
                    }
                } else {
                    (None, name, t.start)
                };
                if KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(&pname)) && instance.is_none() {
                    return self.err(t.start, format!("unexpected '{pname}' at the start of a statement"));
                }
                if !self.is_op("(") {
                    let n = self.peek();
                    return self.err(n.start, format!(
                        "expected '(' after '{pname}' (a statement is '$field = value;', a procedure call such as drop();, 'if', or '{{ ... }}'; field names start with '$')"
                    ));
                }
                let args = self.args()?;
                let proc = self.resolve_proc(instance.as_deref(), &pname, &args, name_off)?;
                self.end_stmt()?;
                Ok(Stmt::Call {
                    proc,
                    args,
                    loc: self.loc(t.start),
                })
            }
            other => self.err(t.start, format!(
                "expected a statement ('$field = value;', a procedure call, 'if', or '{{ ... }}'), found {}",
                describe(other)
            )),
        }
    }

    fn args(&mut self) -> PResult<Vec<Expr>> {
        self.expect_op("(", "")?;
        let mut args = Vec::new();
        if self.is_op(")") {
            self.next();
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            if self.is_op(",") {
                self.next();
                continue;
            }
            self.expect_op(")", "to close the argument list")?;
            return Ok(args);
        }
    }

    fn arity(&self, name: &str, args: &[Expr], min: usize, max: usize, off: usize) -> PResult<()> {
        if args.len() < min || args.len() > max {
            let want = if min == max {
                format!("{min}")
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return self.err(
                off,
                format!(
                    "{name}() takes {want} argument{}, {} given",
                    if want == "1" { "" } else { "s" },
                    args.len()
                ),
            );
        }
        Ok(())
    }

    fn field_arg(&self, name: &str, e: &Expr, off: usize) -> PResult<()> {
        match &e.kind {
            ExprKind::Field(_) | ExprKind::Lit(Value::String(_)) => Ok(()),
            _ => self.err(
                off,
                format!("{name}() expects a field such as $Name (or its name as a string)"),
            ),
        }
    }

    fn need_json(&self, name: &str, off: usize) -> PResult<()> {
        if self.scope.json.is_none() {
            return self.err(off, format!(
                "{name}() needs an xm_json extension instance (add <Extension json> with Module xm_json)"
            ));
        }
        Ok(())
    }

    fn resolve_proc(
        &self,
        instance: Option<&str>,
        name: &str,
        args: &[Expr],
        off: usize,
    ) -> PResult<Proc> {
        let lname = name.to_ascii_lowercase();
        if let Some(inst) = instance {
            let (iname, module) = self.instance(inst, name, off)?;
            match self.scope.extension(iname) {
                Some(Extension::Format(f)) if f.name() == lname => {
                    self.arity(name, args, 0, 0, off)?;
                    return Ok(Proc::Format(f.clone()));
                }
                Some(Extension::Rewrite(r)) if lname == "process" => {
                    self.arity(name, args, 0, 0, off)?;
                    return Ok(Proc::Rewrite(r.clone()));
                }
                _ => {}
            }
            let api = self.scope.api(module);
            if api.json && (lname == "to_json" || lname == "parse_json") {
                return self.resolve_proc(None, name, args, off);
            }
            if let Some(format) = SyslogFormat::from_procedure(&lname) {
                if let Some((_, options)) = self.scope.syslog.iter().find(|(i, _)| i == iname) {
                    self.arity(name, args, 0, 0, off)?;
                    return Ok(Proc::Syslog {
                        format,
                        options: options.clone(),
                    });
                }
            }
            if let Some((min, max)) = api.arity(&lname) {
                self.arity(name, args, min, max, off)?;
                return Ok(Proc::Host {
                    instance: iname.clone(),
                    module: module.clone(),
                    name: lname,
                });
            }
            return self.err(
                off,
                format!("module {module} (instance '{iname}') has no procedure '{name}'"),
            );
        }
        if let Some(format) = SyslogFormat::from_procedure(&lname) {
            // NXLog: callable without naming the instance; the first
            // xm_syslog instance's settings apply.
            let Some((_, options)) = self.scope.syslog.first() else {
                return self.err(off, format!(
                    "{name}() needs an xm_syslog extension instance (add <Extension syslog> with Module xm_syslog)"
                ));
            };
            self.arity(name, args, 0, 0, off)?;
            return Ok(Proc::Syslog {
                format,
                options: options.clone(),
            });
        }
        if let Some(f) = self.scope.first_formatter(&lname) {
            // As to_syslog_*(): without an instance name the first
            // instance of the type applies.
            self.arity(name, args, 0, 0, off)?;
            return Ok(Proc::Format(f.clone()));
        }
        let p = match lname.as_str() {
            "to_json" => {
                self.need_json(name, off)?;
                self.arity(name, args, 0, 0, off)?;
                Proc::ToJson
            }
            "parse_json" => {
                self.need_json(name, off)?;
                self.arity(name, args, 0, 1, off)?;
                if let Some(a) = args.first() {
                    self.check_arg(name, 1, a, T::String, off)?;
                }
                Proc::ParseJson
            }
            "delete" => {
                self.arity(name, args, 1, 1, off)?;
                self.field_arg(name, &args[0], off)?;
                Proc::Delete
            }
            "rename_field" => {
                self.arity(name, args, 2, 2, off)?;
                self.field_arg(name, &args[0], off)?;
                self.field_arg(name, &args[1], off)?;
                Proc::RenameField
            }
            "drop" => {
                self.arity(name, args, 0, 0, off)?;
                Proc::Drop
            }
            "create_var" => {
                self.arity(name, args, 1, 2, off)?;
                self.check_arg(name, 1, &args[0], T::String, off)?;
                if let Some(a) = args.get(1) {
                    if known(a.ty) && !matches!(a.ty, T::Integer | T::DateTime) {
                        return self.err(off, format!("type error: argument 2 of {name}() is {}, expected integer (seconds) or datetime", a.ty.name()));
                    }
                }
                Proc::CreateVar
            }
            "set_var" => {
                self.arity(name, args, 2, 2, off)?;
                self.check_arg(name, 1, &args[0], T::String, off)?;
                Proc::SetVar
            }
            "delete_var" => {
                self.arity(name, args, 1, 1, off)?;
                self.check_arg(name, 1, &args[0], T::String, off)?;
                Proc::DeleteVar
            }
            "log_debug" | "log_info" | "log_warning" | "log_error" => {
                self.arity(name, args, 1, usize::MAX, off)?;
                Proc::Log(match lname.as_str() {
                    "log_debug" => LogLevel::Debug,
                    "log_info" => LogLevel::Info,
                    "log_warning" => LogLevel::Warning,
                    _ => LogLevel::Error,
                })
            }
            _ => {
                if let Some((min, max)) = self.scope.own_api().arity(&lname) {
                    self.arity(name, args, min, max, off)?;
                    return Ok(Proc::Host {
                        instance: self.scope.instance.clone(),
                        module: self.scope.module.clone(),
                        name: lname,
                    });
                }
                // Procedures of global types (xm_fileop) need no instance, as
                // in NXLog; the first instance of the type that has it runs them.
                let global = self.scope.instances.iter().find_map(|(inst, m)| {
                    let api = self.scope.api(m);
                    (api.global && api.has(&lname)).then_some((inst, m, api))
                });
                if let Some((inst, module, api)) = global {
                    if let Some((min, max)) = api.arity(&lname) {
                        self.arity(name, args, min, max, off)?;
                        return Ok(Proc::Host {
                            instance: inst.clone(),
                            module: module.clone(),
                            name: lname,
                        });
                    }
                }
                if FUNCS.iter().any(|f| f.name == lname) {
                    return self.err(off, format!("{name}() is a function and returns a value; use it in an expression, e.g. $Field = {name}(...);"));
                }
                let mut avail = String::new();
                if self.scope.json.is_some() {
                    avail.push_str("to_json, parse_json, ");
                }
                if !self.scope.syslog.is_empty() {
                    avail.push_str("to_syslog_bsd, to_syslog_ietf, to_syslog_snare, ");
                }
                avail.push_str(BUILTIN_PROCS);
                for (p, _) in self.scope.own_api().procedures {
                    avail.push_str(", ");
                    avail.push_str(p);
                }
                let mut msg = format!("unknown procedure '{name}' (available here: {avail})");
                if let Some(module) = foreign_owner(&lname) {
                    msg = format!("unknown procedure '{name}': {name}() comes from NXLog's {module} module; regmon does not implement it");
                } else if lname == "process" {
                    msg = format!("unknown procedure '{name}': call an xm_rewrite instance's process() by its name, e.g. rewrite->process();");
                } else if matches!(lname.as_str(), "to_kvp" | "to_csv") {
                    msg = format!(
                        "{name}() needs an {} extension instance",
                        if lname == "to_kvp" {
                            "xm_kvp"
                        } else {
                            "xm_csv"
                        }
                    );
                }
                if let Some((owner, _)) = self.scope.hinted_types().find(|(_, a)| a.has(&lname)) {
                    msg = format!("unknown procedure '{name}' here: {name}() belongs to {owner}; call it inside an {owner} block or as <instance>->{name}()");
                }
                return self.err(off, msg);
            }
        };
        Ok(p)
    }

    fn check_arg(&self, fname: &str, idx: usize, a: &Expr, want: Type, off: usize) -> PResult<()> {
        if want != T::Unknown && known(a.ty) && a.ty != want {
            return self.err(
                off,
                format!(
                    "type error: argument {idx} of {fname}() is {}, expected {}",
                    a.ty.name(),
                    want.name()
                ),
            );
        }
        Ok(())
    }

    // ---- expressions ----

    pub(crate) fn expr(&mut self) -> PResult<Expr> {
        let off = self.peek().start;
        self.enter(off)?;
        let r = self.or_expr();
        self.depth -= 1;
        r
    }

    /// An expression node, refused when its tree gets taller than
    /// [`MAX_HEIGHT`].
    fn mk(&self, kind: ExprKind, ty: Type, off: usize) -> PResult<Expr> {
        let e = Expr::new(kind, ty);
        if e.height > MAX_HEIGHT {
            return self.err(
                off,
                format!("expression nested too deeply (more than {MAX_HEIGHT} levels)"),
            );
        }
        Ok(e)
    }

    /// A left-associative run `first op1 r1 op2 r2 ...` (already type
    /// checked, result type `ty`) as one flat node.
    fn chain(
        &self,
        first: Expr,
        mut rest: Vec<(BinOp, Expr)>,
        ty: Type,
        off: usize,
    ) -> PResult<Expr> {
        match rest.len() {
            0 => Ok(first),
            1 => {
                let (op, r) = rest.remove(0);
                self.mk(ExprKind::Binary(op, Box::new(first), Box::new(r)), ty, off)
            }
            _ => self.mk(
                ExprKind::Chain {
                    first: Box::new(first),
                    rest,
                },
                ty,
                off,
            ),
        }
    }

    /// Parse `operand (OP operand)*` for one precedence level.
    fn left_assoc(
        &mut self,
        operand: fn(&mut Self) -> PResult<Expr>,
        op_of: fn(&Tok) -> Option<BinOp>,
    ) -> PResult<Expr> {
        let start = self.peek().start;
        let first = operand(self)?;
        let mut ty = first.ty;
        let mut rest = Vec::new();
        while let Some(op) = op_of(&self.peek().tok) {
            let off = self.next().start;
            let r = operand(self)?;
            ty = binary_type(op, ty, r.ty).map_err(|m| PErr { off, msg: m })?;
            rest.push((op, r));
        }
        self.chain(first, rest, ty, start)
    }

    fn or_expr(&mut self) -> PResult<Expr> {
        self.left_assoc(Self::xor_expr, |t| is_kw(t, "or").then_some(BinOp::Or))
    }

    fn xor_expr(&mut self) -> PResult<Expr> {
        self.left_assoc(Self::and_expr, |t| is_kw(t, "xor").then_some(BinOp::Xor))
    }

    fn and_expr(&mut self) -> PResult<Expr> {
        self.left_assoc(Self::not_expr, |t| is_kw(t, "and").then_some(BinOp::And))
    }

    fn not_expr(&mut self) -> PResult<Expr> {
        if is_kw(&self.peek().tok, "not") {
            let off = self.next().start;
            self.enter(off)?;
            let e = self.not_expr()?;
            self.depth -= 1;
            if known(e.ty) && e.ty != T::Boolean {
                return self.err(
                    off,
                    format!("type error: cannot apply 'not' to {}", e.ty.name()),
                );
            }
            return self.mk(ExprKind::Unary(UnOp::Not, Box::new(e)), T::Boolean, off);
        }
        self.cmp_expr()
    }

    fn cmp_expr(&mut self) -> PResult<Expr> {
        let start = self.peek().start;
        let mut l = self.add_expr()?;
        let mut ty = l.ty;
        let mut rest: Vec<(BinOp, Expr)> = Vec::new();
        loop {
            let t = self.peek().clone();
            let op = match &t.tok {
                Tok::Op("==") => BinOp::Eq,
                Tok::Op("!=") => BinOp::Ne,
                Tok::Op("<") => BinOp::Lt,
                Tok::Op("<=") => BinOp::Le,
                Tok::Op(">") => BinOp::Gt,
                Tok::Op(">=") => BinOp::Ge,
                Tok::Op(m @ ("=~" | "!~")) => {
                    let negate = *m == "!~";
                    self.next();
                    l = self.chain(l, std::mem::take(&mut rest), ty, start)?;
                    l = self.regex_op(l, negate, &t)?;
                    ty = l.ty;
                    continue;
                }
                Tok::Ident(k) if k.eq_ignore_ascii_case("in") => {
                    self.next();
                    l = self.chain(l, std::mem::take(&mut rest), ty, start)?;
                    l = self.in_list(l, false, t.start)?;
                    ty = l.ty;
                    continue;
                }
                Tok::Ident(k) if k.eq_ignore_ascii_case("not") && is_kw(self.peek_at(1), "in") => {
                    self.next();
                    self.next();
                    l = self.chain(l, std::mem::take(&mut rest), ty, start)?;
                    l = self.in_list(l, true, t.start)?;
                    ty = l.ty;
                    continue;
                }
                _ => return self.chain(l, rest, ty, start),
            };
            self.next();
            let r = self.add_expr()?;
            ty = binary_type(op, ty, r.ty).map_err(|m| PErr {
                off: t.start,
                msg: m,
            })?;
            rest.push((op, r));
        }
    }

    fn regex_op(&mut self, l: Expr, negate: bool, op: &Token) -> PResult<Expr> {
        if known(l.ty) && l.ty != T::String {
            return self.err(
                op.start,
                format!(
                    "type error: '{}' needs a string on the left, found {}",
                    describe(&op.tok).trim_matches('\''),
                    l.ty.name()
                ),
            );
        }
        let t = self.next();
        match t.tok {
            Tok::Regex { pattern, flags } => {
                let (regex, _) = compile_regex(&pattern, &flags, false).map_err(|m| PErr {
                    off: t.start,
                    msg: m,
                })?;
                self.mk(
                    ExprKind::Match {
                        negate,
                        lhs: Box::new(l),
                        re: Arc::new(RegexLit {
                            regex,
                            source: pattern,
                        }),
                    },
                    T::Boolean,
                    op.start,
                )
            }
            Tok::Subst {
                pattern,
                replacement,
                flags,
            } if !negate => {
                let ExprKind::Field(field) = &l.kind else {
                    return self.err(op.start, "a substitution s/.../.../ needs a field on the left, e.g. $Message =~ s/a/b/g");
                };
                let (regex, global) = compile_regex(&pattern, &flags, true).map_err(|m| PErr {
                    off: t.start,
                    msg: m,
                })?;
                self.mk(
                    ExprKind::Subst {
                        field: field.clone(),
                        re: Arc::new(RegexLit {
                            regex,
                            source: pattern,
                        }),
                        replacement: convert_replacement(&replacement),
                        global,
                    },
                    T::Boolean,
                    op.start,
                )
            }
            other => self.err(
                t.start,
                format!(
                    "expected a regular expression /.../ after '{}', found {}",
                    if negate { "!~" } else { "=~" },
                    describe(&other)
                ),
            ),
        }
    }

    fn in_list(&mut self, l: Expr, negate: bool, off: usize) -> PResult<Expr> {
        if !self.is_op("(") {
            let t = self.peek();
            return self.err(
                t.start,
                format!("expected '(' after 'in', found {}", describe(&t.tok)),
            );
        }
        let list = self.args()?;
        if list.is_empty() {
            return self.err(off, "'in' needs at least one value, e.g. $x in ('a', 'b')");
        }
        for e in &list {
            if known(l.ty) && known(e.ty) && l.ty != e.ty {
                return self.err(
                    off,
                    format!(
                        "type error: cannot compare {} and {}",
                        l.ty.name(),
                        e.ty.name()
                    ),
                );
            }
        }
        self.mk(
            ExprKind::In {
                negate,
                lhs: Box::new(l),
                list,
            },
            T::Boolean,
            off,
        )
    }

    fn add_expr(&mut self) -> PResult<Expr> {
        self.left_assoc(Self::mul_expr, |t| match t {
            Tok::Op("+") => Some(BinOp::Add),
            Tok::Op("-") => Some(BinOp::Sub),
            _ => None,
        })
    }

    fn mul_expr(&mut self) -> PResult<Expr> {
        self.left_assoc(Self::unary, |t| match t {
            Tok::Op("*") => Some(BinOp::Mul),
            Tok::Op("/") => Some(BinOp::Div),
            Tok::Op("%") => Some(BinOp::Mod),
            _ => None,
        })
    }

    fn unary(&mut self) -> PResult<Expr> {
        let t = self.peek().clone();
        if matches!(t.tok, Tok::Op("-")) {
            self.next();
            self.enter(t.start)?;
            let e = self.unary()?;
            self.depth -= 1;
            if let ExprKind::Lit(Value::Integer(i)) = e.kind {
                return self.mk(ExprKind::Lit(Value::Integer(-i)), T::Integer, t.start);
            }
            if known(e.ty) && e.ty != T::Integer {
                return self.err(
                    t.start,
                    format!("type error: cannot negate {}", e.ty.name()),
                );
            }
            return self.mk(ExprKind::Unary(UnOp::Neg, Box::new(e)), T::Integer, t.start);
        }
        if is_kw(&t.tok, "defined") {
            self.next();
            self.enter(t.start)?;
            let e = self.unary()?;
            self.depth -= 1;
            return self.mk(
                ExprKind::Unary(UnOp::Defined, Box::new(e)),
                T::Boolean,
                t.start,
            );
        }
        self.primary()
    }

    fn primary(&mut self) -> PResult<Expr> {
        let t = self.next();
        match t.tok {
            Tok::Lit(v) => {
                let ty = v.type_of();
                Ok(Expr::new(ExprKind::Lit(v), ty))
            }
            Tok::Field(f) => Ok(Expr::new(ExprKind::Field(f), T::Unknown)),
            Tok::Capture(n) => Ok(Expr::new(ExprKind::Capture(n), T::Unknown)),
            Tok::Op("(") => {
                let e = self.expr()?;
                self.expect_op(")", "to close '('")?;
                Ok(e)
            }
            Tok::Ident(name) => {
                if KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(&name)) {
                    return self.err(t.start, format!("expected a value, found '{name}'"));
                }
                if self.is_op("->") {
                    // `instance->function()`: to_kvp()/to_csv() of that instance.
                    self.next();
                    let f = self.next();
                    let Tok::Ident(fname) = f.tok else {
                        return self.err(
                            f.start,
                            format!(
                                "expected a function name after '->', found {}",
                                describe(&f.tok)
                            ),
                        );
                    };
                    if !self.is_op("(") {
                        let n = self.peek();
                        return self.err(n.start, format!("expected '(' after '{name}->{fname}'"));
                    }
                    let args = self.args()?;
                    return self.instance_func(&name, &fname, &args, f.start);
                }
                if !self.is_op("(") {
                    return self.err(t.start, format!("unknown identifier '{name}' (field names start with '$'; strings need quotes)"));
                }
                let args = self.args()?;
                self.resolve_func(&name, args, t.start)
            }
            Tok::Eof => self.err(t.start, "expected a value, found end of input"),
            other => self.err(
                t.start,
                format!("expected a value, found {}", describe(&other)),
            ),
        }
    }

    /// The (instance, module type) `inst` names in `inst->name()`.
    fn instance(&self, inst: &str, name: &str, off: usize) -> PResult<(&String, &String)> {
        match self
            .scope
            .instances
            .iter()
            .find(|(i, _)| i.eq_ignore_ascii_case(inst))
        {
            Some((i, m)) => Ok((i, m)),
            None => self.err(
                off,
                format!("unknown module instance '{inst}' in '{inst}->{name}()'"),
            ),
        }
    }

    /// `instance->name()` in an expression: the formatting functions of
    /// xm_kvp and xm_csv instances.
    fn instance_func(&self, inst: &str, name: &str, args: &[Expr], off: usize) -> PResult<Expr> {
        let lname = name.to_ascii_lowercase();
        let (iname, module) = self.instance(inst, name, off)?;
        if let Some(Extension::Format(f)) = self.scope.extension(iname) {
            if f.name() == lname {
                self.arity(name, args, 0, 0, off)?;
                return self.mk(ExprKind::Format(f.clone()), T::String, off);
            }
        }
        if self.scope.api(module).json && lname == "to_json" {
            return self.resolve_func(name, args.to_vec(), off);
        }
        self.err(
            off,
            format!("module {module} (instance '{iname}') has no function '{name}'"),
        )
    }

    fn resolve_func(&self, name: &str, args: Vec<Expr>, off: usize) -> PResult<Expr> {
        let lname = name.to_ascii_lowercase();
        if let Some(f) = self.scope.first_formatter(&lname) {
            self.arity(name, &args, 0, 0, off)?;
            return self.mk(ExprKind::Format(f.clone()), T::String, off);
        }
        let Some(sig) = FUNCS.iter().find(|f| f.name == lname) else {
            if let Some(module) = foreign_owner(&lname) {
                return self.err(off, format!("unknown function '{name}': {name}() comes from NXLog's {module} module; regmon does not implement it"));
            }
            if matches!(lname.as_str(), "to_kvp" | "to_csv") {
                return self.err(
                    off,
                    format!(
                        "{name}() needs an {} extension instance",
                        if lname == "to_kvp" {
                            "xm_kvp"
                        } else {
                            "xm_csv"
                        }
                    ),
                );
            }
            let is_proc = matches!(
                lname.as_str(),
                "parse_json"
                    | "delete"
                    | "create_var"
                    | "set_var"
                    | "delete_var"
                    | "rename_field"
                    | "drop"
                    | "log_debug"
                    | "log_info"
                    | "log_warning"
                    | "log_error"
            ) || self.scope.own_api().has(&lname)
                || self.scope.hinted_types().any(|(_, a)| a.has(&lname));
            if is_proc {
                return self.err(off, format!("{name}() is a procedure and returns no value; call it as a statement: {name}(...);"));
            }
            return self.err(
                off,
                format!(
                    "unknown function '{name}' (available: {})",
                    function_names().join(", ")
                ),
            );
        };
        if sig.func == Func::ToJson {
            self.need_json(name, off)?;
        }
        if (sig.name.starts_with("file_") || sig.name.starts_with("dir_"))
            && !self.scope.has_instance_of("xm_fileop")
        {
            return self.err(off, format!(
                "{name}() needs an xm_fileop extension instance (add <Extension fileop> with Module xm_fileop)"
            ));
        }
        self.arity(name, &args, sig.required, sig.params.len(), off)?;
        for (i, (a, want)) in args.iter().zip(sig.params).enumerate() {
            self.check_arg(name, i + 1, a, *want, off)?;
        }
        if let (
            Func::Strftime,
            Some(Expr {
                kind: ExprKind::Lit(Value::String(f)),
                ..
            }),
        ) = (sig.func, args.get(1))
        {
            if !f.starts_with("YYYY-") {
                crate::value::check_strftime(f).map_err(|m| PErr { off, msg: m.into() })?;
            } else {
                DateFormat::parse(f).map_err(|m| PErr { off, msg: m.into() })?;
            }
        }
        self.mk(ExprKind::Call(sig.func, args), sig.ret, off)
    }
}
