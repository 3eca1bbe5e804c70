//! The Exec evaluator: runs compiled statements over a [`Record`].
//!
//! NXLog semantics: a run-time error (wrong types, bad conversion) is logged
//! with the module name and config line, the statement is skipped and the
//! event goes on; `drop()` ends the run and discards the event.
//!
//! `undef` follows NXLog CE's evaluator (src/common/expr.c and
//! expr-core-funcproc-cb.c), which is also what its reference manual
//! documents, except where noted at the operator: `'text' + undef` is
//! `'text'`, `undef == undef` is TRUE, a comparison or arithmetic with one
//! undef operand is undef, `and` is undef when either side is, `or` takes
//! the right side's value when the left is not TRUE, functions of undef are
//! undef (also `type()`), and an `if` whose condition is undef takes the
//! `else` branch. README-undef.md has the table.
//!
//! Recursion here is bounded by the parser's nesting limits (flat runs of
//! operators and `else if` chains are loops), and no string Exec code builds
//! may exceed [`MAX_STRING_BYTES`].

use crate::diag::{Errors, Location, LogLevel};
use crate::fileop;
use crate::lang::ast::*;
use crate::lang::parser::{parse_program, ExecSource};
use crate::lang::scope::{ExecScope, Vars, MAX_VARS};
use crate::record::{JsonOptions, Record};
use crate::syslog::SyslogEnv;
use crate::value::{DateFormat, Value, Zone};
use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a program decided about the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Keep,
    Drop,
}

/// A call of a host-implemented procedure (e.g. `start_scan()`).
#[derive(Debug)]
pub struct ProcedureCall<'a> {
    /// The module instance the procedure belongs to (`regmon`).
    pub instance: &'a str,
    /// Its module type (`im_regmon`).
    pub module: &'a str,
    /// The procedure name, lower case (`start_scan`).
    pub name: &'a str,
    pub args: &'a [Value],
    pub location: &'a Location,
}

/// The host side of Exec: module procedures, logging and the environment.
/// Only `log` is required; the rest have working defaults.
pub trait ExecContext {
    /// Log a message from Exec code (log_info()...) or a run-time error.
    fn log(&mut self, level: LogLevel, module: &str, message: &str);

    /// Run a module procedure. `None` means "not available here" (a run-time
    /// error); `Some(Err(msg))` a failure that is logged.
    fn call_procedure(&mut self, call: &ProcedureCall<'_>) -> Option<Result<(), String>> {
        let _ = call;
        None
    }

    /// hostname(): the short host name.
    fn hostname(&self) -> String {
        let h = system_hostname();
        h.split('.').next().unwrap_or("").to_string()
    }

    /// hostname_fqdn(): the fully qualified name; the system's own name
    /// when no domain is known.
    fn hostname_fqdn(&self) -> String {
        system_hostname()
    }

    /// now()
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    /// The zone datetimes are rendered in.
    fn zone(&self) -> Zone {
        Zone::Local
    }
}

/// The machine's host name.
pub fn system_hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// An [`ExecContext`] that collects log lines; for tests and tools.
#[derive(Debug, Default)]
pub struct CollectingContext {
    pub logs: Vec<(LogLevel, String, String)>,
    pub calls: Vec<String>,
    pub hostname: Option<String>,
    pub now: Option<DateTime<Utc>>,
    pub zone: Option<Zone>,
}

impl ExecContext for CollectingContext {
    fn log(&mut self, level: LogLevel, module: &str, message: &str) {
        self.logs
            .push((level, module.to_string(), message.to_string()));
    }
    fn call_procedure(&mut self, call: &ProcedureCall<'_>) -> Option<Result<(), String>> {
        self.calls.push(format!("{}->{}", call.instance, call.name));
        Some(Ok(()))
    }
    fn hostname(&self) -> String {
        self.hostname.clone().unwrap_or_else(|| "host".into())
    }
    fn hostname_fqdn(&self) -> String {
        self.hostname
            .clone()
            .unwrap_or_else(|| "host.example.com".into())
    }
    fn now(&self) -> DateTime<Utc> {
        self.now.unwrap_or_else(Utc::now)
    }
    fn zone(&self) -> Zone {
        self.zone.unwrap_or(Zone::Local)
    }
}

/// Compiled Exec code of one module (all its Exec directives, in order) or of
/// one Schedule block.
#[derive(Clone, Debug)]
pub struct Program {
    pub(crate) stmts: Vec<Stmt>,
    // Arc<str> rather than String keeps configuration structs that embed
    // a Program (om_file's File) within clippy's enum-variant size bound.
    pub(crate) instance: Arc<str>,
    pub(crate) json: JsonOptions,
    pub(crate) date_format: DateFormat,
    /// Events this program has run over (NXLog's `evt_recvd` of its
    /// module: to_syslog_snare()'s counter); shared by clones.
    pub(crate) received: Arc<AtomicU64>,
    /// The instance's module variables, shared with its other programs.
    pub(crate) vars: Vars,
}

impl Program {
    /// Compile Exec code outside a configuration file (tests, tools).
    /// `file` names the code in messages.
    pub fn compile(code: &str, scope: &ExecScope, file: &str) -> Result<Program, Errors> {
        let mut src = ExecSource::default();
        for (i, line) in code.split('\n').enumerate() {
            src.push(line, Location::new(file, i + 1), line, 1);
        }
        let stmts = parse_program(&src, scope)?;
        Ok(Program::from_parts(stmts, scope))
    }

    pub(crate) fn from_parts(stmts: Vec<Stmt>, scope: &ExecScope) -> Program {
        Program {
            stmts,
            instance: scope.instance.as_str().into(),
            json: scope.json.clone().unwrap_or_default(),
            date_format: scope.date_format.clone(),
            received: Arc::default(),
            vars: scope.vars.clone(),
        }
    }

    /// The module instance this code belongs to.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn is_empty(&self) -> bool {
        self.stmts.is_empty()
    }

    /// Whether the code calls procedure `name` anywhere (e.g. "to_json",
    /// "start_scan"), so a host can tell what an Exec does.
    pub fn calls(&self, name: &str) -> bool {
        fn walk(s: &Stmt, name: &str) -> bool {
            match s {
                Stmt::Call { proc, .. } => proc_name(proc).eq_ignore_ascii_case(name),
                Stmt::If {
                    arms, otherwise, ..
                } => {
                    arms.iter().any(|a| walk(&a.then, name))
                        || otherwise.as_deref().is_some_and(|o| walk(o, name))
                }
                Stmt::Block(b) => b.iter().any(|s| walk(s, name)),
                _ => false,
            }
        }
        self.stmts.iter().any(|s| walk(s, name))
    }

    /// Run the program over `record`. Errors are logged through `ctx` and
    /// skip only the failing statement.
    pub fn run(&self, record: &mut Record, ctx: &mut dyn ExecContext) -> Outcome {
        self.received.fetch_add(1, Ordering::Relaxed);
        let mut ev = Eval {
            prog: self,
            rec: record,
            ctx,
            captures: Vec::new(),
        };
        match ev.block(&self.stmts) {
            Flow::Drop => Outcome::Drop,
            Flow::Go => Outcome::Keep,
        }
    }
}

fn proc_name(p: &Proc) -> &str {
    match p {
        Proc::ToJson => "to_json",
        Proc::ParseJson => "parse_json",
        Proc::Delete => "delete",
        Proc::RenameField => "rename_field",
        Proc::Drop => "drop",
        Proc::Log(LogLevel::Debug) => "log_debug",
        Proc::Log(LogLevel::Info) => "log_info",
        Proc::Log(LogLevel::Warning) => "log_warning",
        Proc::Log(_) => "log_error",
        Proc::Host { name, .. } => name,
        Proc::Format(f) => f.name(),
        Proc::Rewrite(_) => "process",
        Proc::CreateVar => "create_var",
        Proc::SetVar => "set_var",
        Proc::DeleteVar => "delete_var",
        Proc::Syslog { format, .. } => format.procedure(),
    }
}

/// A directive value that is a string expression (om_file's File, or a
/// constant such as RegValue).
#[derive(Clone, Debug)]
pub struct StringExpr {
    pub(crate) expr: Expr,
    pub(crate) text: String,
    pub(crate) constant: Option<String>,
    pub(crate) program: Program,
}

impl StringExpr {
    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The value when the expression reads no event field (most configs).
    pub fn as_constant(&self) -> Option<&str> {
        self.constant.as_deref()
    }

    /// Evaluate over an event (the record is not changed).
    pub fn eval(&self, record: &Record, ctx: &mut dyn ExecContext) -> Result<String, String> {
        if let Some(c) = &self.constant {
            return Ok(c.clone());
        }
        // Evaluation may set fields (named regex captures); work on a copy so
        // a directive value never changes the event.
        let mut scratch = record.clone();
        let mut ev = Eval {
            prog: &self.program,
            rec: &mut scratch,
            ctx,
            captures: Vec::new(),
        };
        match ev.expr(&self.expr)? {
            Value::Undef => Err(format!("the expression {} evaluated to undef", self.text)),
            v => Ok(ev.to_string(&v).unwrap_or_default()),
        }
    }
}

enum Flow {
    Go,
    Drop,
}

struct Eval<'a> {
    prog: &'a Program,
    rec: &'a mut Record,
    ctx: &'a mut dyn ExecContext,
    captures: Vec<Option<String>>,
}

/// The longest string Exec code may build (concatenation, replace(),
/// s///); longer is a run-time error that skips the statement. Without it
/// `$a = $a + $a;` repeated grows exponentially. NXLog caps every string at
/// 1 MiB; we allow more because events may carry whole registry values.
pub const MAX_STRING_BYTES: usize = 16 << 20;

type R<T> = Result<T, String>;

fn type_err(op: &str, a: &Value, b: &Value) -> String {
    format!(
        "cannot apply '{op}' to {} and {}",
        a.type_name(),
        b.type_name()
    )
}

fn secs(n: i64) -> R<Duration> {
    Duration::try_seconds(n).ok_or_else(|| "datetime offset out of range".to_string())
}

impl Eval<'_> {
    fn block(&mut self, stmts: &[Stmt]) -> Flow {
        for s in stmts {
            if let Flow::Drop = self.exec(s) {
                return Flow::Drop;
            }
        }
        Flow::Go
    }

    /// Run one statement; an error is logged and skips only it.
    fn exec(&mut self, s: &Stmt) -> Flow {
        match self.stmt(s) {
            Ok(f) => f,
            Err(msg) => {
                self.log_error(stmt_loc(s), &msg);
                Flow::Go
            }
        }
    }

    fn log_error(&mut self, loc: Option<&Location>, msg: &str) {
        let loc = loc.map(|l| format!("{l}: ")).unwrap_or_default();
        let text = format!("{loc}{msg}; statement skipped");
        self.ctx.log(LogLevel::Error, &self.prog.instance, &text);
    }

    fn stmt(&mut self, s: &Stmt) -> R<Flow> {
        match s {
            Stmt::Empty => Ok(Flow::Go),
            Stmt::Block(b) => Ok(self.block(b)),
            Stmt::Assign { field, value, .. } => {
                let v = self.expr(value)?;
                self.rec.set(field, v);
                Ok(Flow::Go)
            }
            Stmt::If {
                arms, otherwise, ..
            } => {
                for arm in arms {
                    // An error in an `else if` condition names that line.
                    let taken = match self.expr(&arm.cond) {
                        Ok(Value::Boolean(b)) => Ok(b),
                        // NXLog: an undef condition is false.
                        Ok(Value::Undef) => Ok(false),
                        Ok(v) => Err(format!(
                            "the 'if' condition is {}, expected boolean",
                            v.type_name()
                        )),
                        Err(e) => Err(e),
                    };
                    match taken {
                        Ok(true) => return Ok(self.exec(&arm.then)),
                        Ok(false) => {}
                        Err(e) => {
                            self.log_error(Some(&arm.loc), &e);
                            return Ok(Flow::Go);
                        }
                    }
                }
                Ok(match otherwise {
                    Some(o) => self.exec(o),
                    None => Flow::Go,
                })
            }
            Stmt::Call { proc, args, loc } => self.call(proc, args, loc),
        }
    }
}

/// Refuse to build a string of `n` bytes (checked before allocating).
fn check_len(n: usize) -> R<()> {
    if n > MAX_STRING_BYTES {
        return Err(format!(
            "the result would be a string longer than {} MiB",
            MAX_STRING_BYTES >> 20
        ));
    }
    Ok(())
}

impl Eval<'_> {
    fn field_name(&mut self, e: &Expr) -> R<String> {
        match &e.kind {
            ExprKind::Field(f) => Ok(f.clone()),
            _ => match self.expr(e)? {
                Value::String(s) => Ok(s),
                v => Err(format!("expected a field name, found {}", v.type_name())),
            },
        }
    }

    fn call(&mut self, proc: &Proc, args: &[Expr], loc: &Location) -> R<Flow> {
        match proc {
            Proc::Drop => return Ok(Flow::Drop),
            Proc::ToJson => {
                let opts = JsonOptions {
                    zone: self.ctx.zone(),
                    ..self.prog.json.clone()
                };
                let j = self.rec.to_json_with(&opts);
                self.rec.set("raw_event", j);
            }
            Proc::ParseJson => {
                let text = match args.first() {
                    Some(a) => self.expr(a)?,
                    None => self.rec.value("raw_event"),
                };
                match text {
                    Value::String(s) => {
                        let opts = JsonOptions {
                            zone: self.ctx.zone(),
                            ..self.prog.json.clone()
                        };
                        self.rec.merge_json(&s, &opts)?;
                    }
                    Value::Undef => {}
                    v => {
                        return Err(format!(
                            "parse_json() needs a string, found {}",
                            v.type_name()
                        ))
                    }
                }
            }
            Proc::Syslog { format, options } => {
                let hostname = self.ctx.hostname();
                let env = SyslogEnv {
                    zone: self.ctx.zone(),
                    hostname: &hostname,
                    now: self.ctx.now(),
                    event_count: self.prog.received.load(Ordering::Relaxed),
                };
                format.apply(self.rec, &env, options);
            }
            Proc::Format(f) => {
                let line = f.format(self.rec, &self.prog.date_format, self.ctx.zone());
                check_len(line.len())?;
                self.rec.set("raw_event", line);
            }
            Proc::Rewrite(rw) => {
                rw.fields.apply(self.rec);
                // Its Exec runs on the same event; drop() in it drops the event.
                if let Flow::Drop = self.block(&rw.exec) {
                    return Ok(Flow::Drop);
                }
            }
            Proc::CreateVar | Proc::SetVar | Proc::DeleteVar => self.var_proc(proc, args)?,
            Proc::Delete => {
                let f = self.field_name(&args[0])?;
                self.rec.remove(&f);
            }
            Proc::RenameField => {
                let a = self.field_name(&args[0])?;
                let b = self.field_name(&args[1])?;
                self.rec.rename(&a, &b);
            }
            Proc::Log(level) => {
                let mut msg = String::new();
                for a in args {
                    let v = self.expr(a)?;
                    msg.push_str(&self.to_string(&v).unwrap_or_default());
                }
                self.ctx.log(*level, &self.prog.instance, &msg);
            }
            Proc::Host {
                instance,
                module,
                name,
            } => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.expr(a)?);
                }
                let call = ProcedureCall {
                    instance,
                    module,
                    name,
                    args: &vals,
                    location: loc,
                };
                match self.ctx.call_procedure(&call) {
                    Some(Ok(())) => {}
                    Some(Err(e)) => return Err(format!("{name}(): {e}")),
                    None => return Err(format!("procedure {name}() is not available")),
                }
            }
        }
        Ok(Flow::Go)
    }

    /// create_var(name[, lifetime]) (an existing variable is left as it
    /// is; lifetime: seconds from now, or a datetime), set_var(name,
    /// value) (created when missing; undef deletes), delete_var(name).
    fn var_proc(&mut self, proc: &Proc, args: &[Expr]) -> R<()> {
        let name = match self.expr(&args[0])? {
            Value::String(s) => s.to_ascii_lowercase(),
            Value::Undef => return Err("the variable name is undef".into()),
            v => {
                return Err(format!(
                    "a variable name must be a string, found {}",
                    v.type_name()
                ))
            }
        };
        let now = self.ctx.now();
        let second = match args.get(1) {
            Some(a) => self.expr(a)?,
            None => Value::Undef,
        };
        self.prog.vars.with(|m| {
            m.retain(|_, (_, exp)| exp.is_none_or(|e| e > now));
            let room = |m: &std::collections::HashMap<_, _>| {
                if m.len() >= MAX_VARS && !m.contains_key(&name) {
                    return Err(format!("more than {MAX_VARS} module variables"));
                }
                Ok(())
            };
            match proc {
                Proc::CreateVar => {
                    let expiry = match second {
                        Value::Undef => None,
                        Value::Integer(n) => Some(
                            now.checked_add_signed(secs(n)?)
                                .ok_or("lifetime out of range")?,
                        ),
                        Value::DateTime(d) => Some(d),
                        v => {
                            return Err(format!(
                            "create_var(): the lifetime must be seconds or a datetime, found {}",
                            v.type_name()
                        ))
                        }
                    };
                    room(m)?;
                    m.entry(name).or_insert((Value::Undef, expiry));
                }
                Proc::SetVar => {
                    if second.is_undef() {
                        m.remove(&name);
                    } else {
                        room(m)?;
                        match m.get_mut(&name) {
                            Some(slot) => slot.0 = second,
                            None => {
                                m.insert(name, (second, None));
                            }
                        }
                    }
                }
                _ => {
                    m.remove(&name);
                }
            }
            Ok(())
        })
    }

    fn to_string(&self, v: &Value) -> Option<String> {
        v.to_string_with(&self.prog.date_format, self.ctx.zone())
    }

    fn expr(&mut self, e: &Expr) -> R<Value> {
        match &e.kind {
            ExprKind::Lit(v) => Ok(v.clone()),
            ExprKind::Field(f) => Ok(self.rec.value(f)),
            ExprKind::Capture(n) => Ok(self
                .captures
                .get(*n)
                .cloned()
                .flatten()
                .map_or(Value::Undef, Value::String)),
            ExprKind::Unary(op, x) => {
                let v = self.expr(x)?;
                unary(*op, v)
            }
            ExprKind::Binary(op, a, b) => {
                let l = self.expr(a)?;
                self.binary(*op, l, b)
            }
            ExprKind::Chain { first, rest } => {
                // ((a op1 b) op2 c) ...: fold left; `binary` decides whether
                // the right operand is evaluated at all, as in the tree.
                let mut acc = self.expr(first)?;
                for (op, e) in rest {
                    acc = self.binary(*op, acc, e)?;
                }
                Ok(acc)
            }
            ExprKind::Match { negate, lhs, re } => {
                let v = self.expr(lhs)?;
                self.regex_match(*negate, v, re)
            }
            ExprKind::Subst {
                field,
                re,
                replacement,
                global,
            } => self.subst(field, re, replacement, *global),
            ExprKind::In { negate, lhs, list } => {
                // `x in (a, b)` is `x == a or x == b` (NXLog Enterprise has
                // `in`, CE has not): so `undef in (1, undef)` is TRUE, and
                // like `or` the result is the last comparison's unless one
                // is TRUE. `not in` negates that; undef stays undef.
                let v = self.expr(lhs)?;
                let mut found = Value::Undef;
                for item in list {
                    let w = self.expr(item)?;
                    found = compare_eq(&v, &w)?;
                    if let Value::Boolean(true) = found {
                        break;
                    }
                }
                Ok(match found {
                    Value::Boolean(b) => Value::Boolean(b != *negate),
                    o => o,
                })
            }
            ExprKind::Format(f) => {
                let line = f.format(self.rec, &self.prog.date_format, self.ctx.zone());
                check_len(line.len())?;
                Ok(Value::String(line))
            }
            ExprKind::Call(f, args) => {
                let mut v = Vec::with_capacity(args.len());
                for a in args {
                    v.push(self.expr(a)?);
                }
                self.func(*f, v)
            }
        }
    }

    #[inline(never)]
    fn regex_match(&mut self, negate: bool, v: Value, re: &RegexLit) -> R<Value> {
        let s = match v {
            // undef =~ /x/ and undef !~ /x/ are both undef (expr.c).
            Value::Undef => return Ok(Value::Undef),
            Value::String(s) => s,
            v => {
                return Err(format!(
                    "'{}' needs a string, found {}",
                    if negate { "!~" } else { "=~" },
                    v.type_name()
                ))
            }
        };
        let Some(caps) = re.regex.captures(&s) else {
            return Ok(Value::Boolean(negate));
        };
        if !negate {
            self.captures = caps
                .iter()
                .map(|m| m.map(|m| m.as_str().to_string()))
                .collect();
            for name in re.regex.capture_names().flatten() {
                if let Some(m) = caps.name(name) {
                    self.rec.set(name, m.as_str());
                }
            }
        }
        Ok(Value::Boolean(!negate))
    }

    #[inline(never)]
    fn subst(&mut self, field: &str, re: &RegexLit, replacement: &str, global: bool) -> R<Value> {
        let s = match self.rec.value(field) {
            Value::Undef => return Ok(Value::Undef),
            Value::String(s) => s,
            v => {
                return Err(format!(
                    "s/// needs a string field, ${field} is {}",
                    v.type_name()
                ))
            }
        };
        if !re.regex.is_match(&s) {
            return Ok(Value::Boolean(false));
        }
        // Regex::replace_all's loop, with the length checked as it
        // grows: `s/(.*)/$1$1$1/g`-style growth stops at the cap.
        let mut out = String::new();
        let mut last = 0;
        for caps in re
            .regex
            .captures_iter(&s)
            .take(if global { usize::MAX } else { 1 })
        {
            let Some(m) = caps.get(0) else { continue };
            out.push_str(&s[last..m.start()]);
            caps.expand(replacement, &mut out);
            last = m.end();
            check_len(out.len())?;
        }
        out.push_str(&s[last..]);
        check_len(out.len())?;
        self.rec.set(field, out);
        Ok(Value::Boolean(true))
    }

    /// `l op b`, with `l` already evaluated. Whether `b` is evaluated at all
    /// follows NXLog CE's expr.c, since evaluating it may set captures or
    /// fields: `and`, `xor`, `- * / %` and the ordering comparisons skip it
    /// when `l` is undef, `or` skips it when `l` is TRUE; `==`, `!=` and `+`
    /// always evaluate both sides.
    fn binary(&mut self, op: BinOp, l: Value, b: &Expr) -> R<Value> {
        use BinOp::*;
        let boolean = |v: &Value| match v {
            Value::Boolean(x) => Ok(Some(*x)),
            Value::Undef => Ok(None),
            v => Err(format!(
                "cannot apply '{}' to {}",
                op.symbol(),
                v.type_name()
            )),
        };
        match op {
            // expr.c _and: undef if either side is undef, even FALSE and
            // undef (no short-circuit on FALSE: the right side still runs).
            And | Xor => {
                let Some(x) = boolean(&l)? else {
                    return Ok(Value::Undef);
                };
                let r = self.expr(b)?;
                return Ok(match boolean(&r)? {
                    None => Value::Undef,
                    Some(y) if op == And => Value::Boolean(x && y),
                    Some(y) => Value::Boolean(x ^ y),
                });
            }
            // expr.c _or: TRUE if the left is TRUE, else the right side's
            // value, undef included. The manual says "undef if both are
            // undefined", i.e. FALSE or undef = FALSE; the source gives undef
            // and we follow the source. (CE also refuses an untyped undef on
            // the left; we treat every undef alike.)
            Or => {
                if boolean(&l)? == Some(true) {
                    return Ok(Value::Boolean(true));
                }
                let r = self.expr(b)?;
                boolean(&r)?;
                return Ok(r);
            }
            // expr.c: these return undef for an undef left operand before
            // evaluating the right one.
            Lt | Le | Gt | Ge | Sub | Mul | Div | Mod if l.is_undef() => return Ok(Value::Undef),
            _ => {}
        }
        let r = self.expr(b)?;
        self.combine(op, l, r)
    }

    /// The value of `l op r` for the operators that need both sides
    /// (kept out of the recursive path so its frame stays small).
    #[inline(never)]
    fn combine(&self, op: BinOp, l: Value, r: Value) -> R<Value> {
        use BinOp::*;
        match op {
            Eq => return compare_eq(&l, &r),
            Ne => {
                return compare_eq(&l, &r).map(|v| match v {
                    Value::Boolean(x) => Value::Boolean(!x),
                    o => o,
                })
            }
            // string + undef = string, undef + string = string; any other
            // sum with undef is undef (manual and expr.c _plus).
            Add => match (&l, &r) {
                (Value::String(_), Value::Undef) => return Ok(l),
                (Value::Undef, Value::String(_)) => return Ok(r),
                _ => {}
            },
            _ => {}
        }
        if l.is_undef() || r.is_undef() {
            return Ok(Value::Undef);
        }
        match op {
            Lt | Le | Gt | Ge => {
                let ord = match (&l, &r) {
                    (Value::Integer(x), Value::Integer(y)) => x.cmp(y),
                    (Value::String(x), Value::String(y)) => x.cmp(y),
                    (Value::DateTime(x), Value::DateTime(y)) => x.cmp(y),
                    _ => {
                        return Err(format!(
                            "cannot compare {} and {} with '{}'",
                            l.type_name(),
                            r.type_name(),
                            op.symbol()
                        ))
                    }
                };
                Ok(Value::Boolean(match op {
                    Lt => ord.is_lt(),
                    Le => ord.is_le(),
                    Gt => ord.is_gt(),
                    _ => ord.is_ge(),
                }))
            }
            Add => match (&l, &r) {
                (Value::Integer(x), Value::Integer(y)) => x
                    .checked_add(*y)
                    .map(Value::Integer)
                    .ok_or_else(|| "integer overflow".into()),
                (Value::DateTime(d), Value::Integer(n))
                | (Value::Integer(n), Value::DateTime(d)) => d
                    .checked_add_signed(secs(*n)?)
                    .map(Value::DateTime)
                    .ok_or_else(|| "datetime out of range".into()),
                (Value::String(_), _) | (_, Value::String(_)) => {
                    let a = self.to_string(&l).unwrap_or_default();
                    let z = self.to_string(&r).unwrap_or_default();
                    check_len(a.len() + z.len())?;
                    let mut s = a;
                    s.push_str(&z);
                    Ok(Value::String(s))
                }
                _ => Err(type_err("+", &l, &r)),
            },
            Sub => match (&l, &r) {
                (Value::Integer(x), Value::Integer(y)) => x
                    .checked_sub(*y)
                    .map(Value::Integer)
                    .ok_or_else(|| "integer overflow".into()),
                (Value::DateTime(d), Value::Integer(n)) => d
                    .checked_sub_signed(secs(*n)?)
                    .map(Value::DateTime)
                    .ok_or_else(|| "datetime out of range".into()),
                (Value::DateTime(x), Value::DateTime(y)) => (*x - *y)
                    .num_microseconds()
                    .map(Value::Integer)
                    .ok_or_else(|| "datetime difference out of range".into()),
                _ => Err(type_err("-", &l, &r)),
            },
            Mul | Div | Mod => {
                let (Value::Integer(x), Value::Integer(y)) = (&l, &r) else {
                    return Err(type_err(op.symbol(), &l, &r));
                };
                if matches!(op, Div | Mod) && *y == 0 {
                    return Err("division by zero".into());
                }
                let v = match op {
                    Mul => x.checked_mul(*y),
                    Div => x.checked_div(*y),
                    _ => x.checked_rem(*y),
                };
                v.map(Value::Integer)
                    .ok_or_else(|| "integer overflow".into())
            }
            And | Or | Xor | Eq | Ne => Err(format!("'{}' fell through", op.symbol())),
        }
    }

    /// A built-in function of evaluated arguments (no recursion here).
    #[inline(never)]
    fn func(&mut self, f: Func, v: Vec<Value>) -> R<Value> {
        // A function of undef is undef, type() included (NXLog CE's
        // expr-core-funcproc-cb.c), except for these optional arguments,
        // where undef means "not given": strftime()'s format, substr()'s
        // end and replace()'s count.
        let optional = match f {
            Func::Strftime => Some(1),
            Func::Substr => Some(2),
            Func::Replace => Some(3),
            _ => None,
        };
        if v.iter()
            .enumerate()
            .any(|(i, x)| x.is_undef() && Some(i) != optional)
        {
            return Ok(Value::Undef);
        }
        let given = |i: usize| v.get(i).is_some_and(|x| !x.is_undef());
        let zone = self.ctx.zone();
        let dt = |i: usize| -> R<chrono::DateTime<chrono::FixedOffset>> {
            match &v[i] {
                Value::DateTime(d) => Ok(zone.to_zone(d)),
                o => Err(format!(
                    "expected a datetime argument, found {}",
                    o.type_name()
                )),
            }
        };
        let s = |i: usize| -> R<&str> {
            match &v[i] {
                Value::String(s) => Ok(s.as_str()),
                o => Err(format!(
                    "expected a string argument, found {}",
                    o.type_name()
                )),
            }
        };
        let int = |i: usize| -> R<i64> {
            match &v[i] {
                Value::Integer(n) => Ok(*n),
                o => Err(format!(
                    "expected an integer argument, found {}",
                    o.type_name()
                )),
            }
        };
        Ok(match f {
            Func::Hostname => Value::String(self.ctx.hostname()),
            Func::HostnameFqdn => Value::String(self.ctx.hostname_fqdn()),
            Func::Now => Value::DateTime(self.ctx.now()),
            Func::Lc => Value::String(s(0)?.to_lowercase()),
            Func::Uc => Value::String(s(0)?.to_uppercase()),
            Func::Substr => {
                let text = s(0)?;
                let from = int(1)?;
                let to = if given(2) { Some(int(2)?) } else { None };
                if from < 0 || to.is_some_and(|t| t < 0) {
                    return Err("substr() positions must not be negative".into());
                }
                let from = from as usize;
                let chars = text.chars().skip(from);
                let out: String = match to {
                    Some(t) => chars.take((t as usize).saturating_sub(from)).collect(),
                    None => chars.collect(),
                };
                Value::String(out)
            }
            Func::Size => match &v[0] {
                Value::String(x) => Value::Integer(x.len() as i64),
                Value::Binary(b) => Value::Integer(b.len() as i64),
                o => return Err(format!("size() needs a string, found {}", o.type_name())),
            },
            Func::String => Value::String(self.to_string(&v[0]).unwrap_or_default()),
            Func::Integer => match &v[0] {
                Value::Integer(i) => Value::Integer(*i),
                Value::Boolean(b) => Value::Integer(i64::from(*b)),
                Value::String(x) => {
                    let t = x.trim();
                    let parsed = if let Some(h) = t.strip_prefix("0x") {
                        i64::from_str_radix(h, 16).ok()
                    } else {
                        t.parse().ok()
                    };
                    parsed.map_or(Value::Undef, Value::Integer)
                }
                Value::DateTime(d) => Value::Integer(d.timestamp_micros()),
                o => return Err(format!("integer() cannot convert {}", o.type_name())),
            },
            // undef was handled above: type(undef) is undef, as in NXLog.
            Func::Type => Value::String(v[0].type_name().to_string()),
            Func::Strftime => {
                let Value::DateTime(d) = &v[0] else {
                    return Err(format!(
                        "strftime() needs a datetime, found {}",
                        v[0].type_name()
                    ));
                };
                // CE: an undef format gives the default `YYYY-MM-DD hh:mm:ss`.
                let fmt = if given(1) { s(1)? } else { "%Y-%m-%d %H:%M:%S" };
                Value::String(crate::value::strftime(d, fmt, zone)?)
            }
            Func::Parsedate => {
                crate::value::parse_datetime(s(0)?, zone).map_or(Value::Undef, Value::DateTime)
            }
            Func::Replace => {
                let (text, from, to) = (s(0)?, s(1)?, s(2)?);
                let limit = if given(3) {
                    int(3)?.max(0) as usize
                } else {
                    usize::MAX
                };
                if from.is_empty() {
                    Value::String(text.to_string())
                } else {
                    let n = text.matches(from).take(limit).count();
                    check_len(
                        (text.len() - n * from.len()).saturating_add(n.saturating_mul(to.len())),
                    )?;
                    Value::String(text.replacen(from, to, limit))
                }
            }
            Func::Datetime => {
                let us = int(0)?;
                Utc.timestamp_micros(us)
                    .single()
                    .map(Value::DateTime)
                    .ok_or("datetime() argument out of range")?
            }
            Func::Year => Value::Integer(i64::from(dt(0)?.year())),
            Func::Month => Value::Integer(i64::from(dt(0)?.month())),
            Func::Day => Value::Integer(i64::from(dt(0)?.day())),
            Func::Hour => Value::Integer(i64::from(dt(0)?.hour())),
            Func::Minute => Value::Integer(i64::from(dt(0)?.minute())),
            Func::Second => Value::Integer(i64::from(dt(0)?.second())),
            Func::Dayofweek => Value::Integer(i64::from(dt(0)?.weekday().num_days_from_sunday())),
            Func::Dayofyear => Value::Integer(i64::from(dt(0)?.ordinal())),
            Func::Microsecond => Value::Integer(i64::from(dt(0)?.timestamp_subsec_micros())),
            Func::GetVar => {
                let name = s(0)?.to_ascii_lowercase();
                let now = self.ctx.now();
                self.prog.vars.with(|m| match m.get(&name) {
                    Some((_, Some(exp))) if *exp <= now => {
                        m.remove(&name);
                        Value::Undef
                    }
                    Some((v, _)) => v.clone(),
                    None => Value::Undef,
                })
            }
            Func::Strptime => strptime(s(0)?, s(1)?, zone).map_or(Value::Undef, Value::DateTime),
            Func::FileExists
            | Func::DirExists
            | Func::FileSize
            | Func::FileBasename
            | Func::FileDirname
            | Func::FileMtime
            | Func::FileCtime
            | Func::FileType
            | Func::FileRead
            | Func::FileInode
            | Func::DirTempGet => {
                let path = if f == Func::DirTempGet { "" } else { s(0)? };
                match fileop::function(f, path, MAX_STRING_BYTES) {
                    Ok(v) => v,
                    // NXLog: "on error undef is returned and an error is
                    // logged"; the statement goes on.
                    Err(e) => {
                        let msg = format!("{}: {e}", fileop::name(f));
                        self.ctx.log(LogLevel::Error, &self.prog.instance, &msg);
                        Value::Undef
                    }
                }
            }
            Func::ToJson => {
                let opts = JsonOptions {
                    zone,
                    ..self.prog.json.clone()
                };
                Value::String(self.rec.to_json_with(&opts))
            }
        })
    }
}

/// strptime(): `text` read with a strftime-style `format`; a format with
/// a zone (`%z`) gives that instant, one without is local time in `zone`.
/// Text that does not match is undef.
fn strptime(text: &str, format: &str, zone: Zone) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_str(text, format) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(n) = chrono::NaiveDateTime::parse_from_str(text, format) {
        return zone.from_naive(&n);
    }
    // A date alone is midnight.
    chrono::NaiveDate::parse_from_str(text, format)
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|n| zone.from_naive(&n))
}

#[inline(never)]
fn unary(op: UnOp, v: Value) -> R<Value> {
    match (op, v) {
        (UnOp::Defined, v) => Ok(Value::Boolean(!v.is_undef())),
        // `not undef` and `-undef` are undef (NXLog's manual and expr.c;
        // CE's `-` also forgets to negate, we don't).
        (_, Value::Undef) => Ok(Value::Undef),
        (UnOp::Not, Value::Boolean(b)) => Ok(Value::Boolean(!b)),
        (UnOp::Neg, Value::Integer(i)) => i
            .checked_neg()
            .map(Value::Integer)
            .ok_or_else(|| "integer overflow".into()),
        (UnOp::Not, v) => Err(format!("cannot apply 'not' to {}", v.type_name())),
        (UnOp::Neg, v) => Err(format!("cannot negate {}", v.type_name())),
    }
}

/// `==`: undef == undef is TRUE, undef == anything else is undef (manual
/// and expr.c _equal); values of different types cannot be compared.
fn compare_eq(l: &Value, r: &Value) -> R<Value> {
    match (l.is_undef(), r.is_undef()) {
        (true, true) => return Ok(Value::Boolean(true)),
        (false, false) => {}
        _ => return Ok(Value::Undef),
    }
    if l.type_of() != r.type_of() {
        return Err(format!(
            "cannot compare {} and {}",
            l.type_name(),
            r.type_name()
        ));
    }
    Ok(Value::Boolean(l == r))
}

fn stmt_loc(s: &Stmt) -> Option<&Location> {
    match s {
        Stmt::Assign { loc, .. } | Stmt::Call { loc, .. } | Stmt::If { loc, .. } => Some(loc),
        _ => None,
    }
}
