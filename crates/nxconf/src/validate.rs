//! Validation: turns raw blocks into the typed [`Config`]. Knows the global
//! directives, the supported modules (im_regmon, xm_json, xm_fileop, om_file), common
//! module directives, routes and schedules, and compiles every Exec with the
//! procedures that exist where it runs.
//!
//! Common module directives: NXLog's queueing and flow-control knobs
//! (FlowControl, LogqueueSize, LogqueueDir, PersistLogqueue, SyncLogqueue,
//! BufferSize, BatchSize, BatchFlushInterval) are accepted with a debug note
//! because regmon delivers events in-process and they cannot change what is
//! produced. `OutputType LineBased` (om_file's only behaviour) is accepted;
//! other OutputType/InputType values are refused, since they would change output.

use crate::config::*;
use crate::diag::{Diagnostic, Location, LogLevel, Note};
use crate::eval::{Program, StringExpr};
use crate::lang::ast::Stmt;
use crate::lang::lexer::{tokenize, Tok};
use crate::lang::parser::{parse_expression, parse_program, ExecScope, ExecSource};
use crate::record::JsonOptions;
use crate::schedule::{parse_every, parse_first, When};
use crate::value::{DateFormat, Value};

/// Supported module types, for messages.
pub const SUPPORTED_MODULES: [&str; 4] = ["im_regmon", "xm_json", "xm_fileop", "om_file"];

const GLOBALS: &[&str] = &[
    "CacheDir",
    "DateFormat",
    "LogFile",
    "LogLevel",
    "ModuleDir",
    "PidFile",
    "SpoolDir",
    "NoCache",
    "Panic",
    "NoFreeOnExit",
    "SuppressRepeatingLogs",
    "CacheFlushInterval",
    "CacheSync",
    "Threads",
    "FlowControl",
    "LogqueueSize",
    "LogqueueDir",
];

const INERT_COMMON: &[&str] = &[
    "FlowControl",
    "LogqueueSize",
    "LogqueueDir",
    "PersistLogqueue",
    "SyncLogqueue",
    "BufferSize",
    "BatchSize",
    "BatchFlushInterval",
];

fn module_directives(module: &str) -> &'static [&'static str] {
    match module {
        "im_regmon" => &[
            "RegValue",
            "Exclude",
            "Recursive",
            "64BitView",
            "Digest",
            "ScanInterval",
            "HiveFile",
            "Realtime",
            "ReportData",
            "MaxDataSize",
            "NoDataFor",
            "KeyEvents",
            "Schema",
        ],
        "xm_json" => &[
            "DateFormat",
            "IncludeHiddenFields",
            "PrettyPrint",
            "ParseDate",
            "ForceUTF8",
        ],
        "om_file" => &["File", "CreateDir", "Truncate", "Sync", "OutputType"],
        _ => &[],
    }
}

fn repeatable(module: &str, name: &str) -> bool {
    module == "im_regmon"
        && ["regvalue", "exclude", "hivefile", "nodatafor"]
            .contains(&name.to_ascii_lowercase().as_str())
}

fn d_err(d: &Directive, msg: impl Into<String>) -> Diagnostic {
    Diagnostic::new(&d.location, &d.line_text, msg)
}

fn note(notes: &mut Vec<Note>, loc: &Location, level: LogLevel, msg: String) {
    notes.push(Note {
        level,
        location: loc.clone(),
        message: msg,
    });
}

fn value_source(d: &Directive) -> ExecSource {
    let mut s = ExecSource::default();
    let col = d.line_text.find(&d.value).map_or(1, |i| i + 1);
    s.push(&d.value, d.location.clone(), &d.line_text, col);
    s
}

/// Directive values that begin like an expression (a quote, `$`, or a
/// function call) are compiled as one; anything else is a literal string,
/// as older NXLog configurations write paths unquoted.
fn looks_like_expression(v: &str) -> bool {
    let v = v.trim_start();
    if v.starts_with(['\'', '"', '$', '(']) {
        return true;
    }
    let ident_len = v
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(v.len());
    ident_len > 0 && v[ident_len..].trim_start().starts_with('(')
}

fn const_scope() -> ExecScope {
    ExecScope::new("config", "config", false)
}

/// A directive value that must be a constant string.
pub(crate) fn constant_string(d: &Directive) -> Result<String, Diagnostic> {
    if d.value.is_empty() {
        return Err(d_err(d, format!("{} needs a value", d.name)));
    }
    if !looks_like_expression(&d.value) {
        return Ok(d.value.clone());
    }
    let e = parse_expression(&value_source(d), &const_scope())?;
    if !e.is_constant() {
        return Err(d_err(
            d,
            format!(
                "{} must be a constant string expression (it cannot use event fields)",
                d.name
            ),
        ));
    }
    let prog = Program::from_parts(Vec::new(), &const_scope());
    let s = StringExpr {
        expr: e,
        text: d.value.clone(),
        constant: None,
        program: prog,
    };
    let mut ctx = crate::eval::CollectingContext::default();
    s.eval(&crate::Record::new(), &mut ctx)
        .map_err(|m| d_err(d, format!("invalid value for {}: {m}", d.name)))
}

fn string_expr(d: &Directive, scope: &ExecScope) -> Result<StringExpr, Diagnostic> {
    if d.value.is_empty() {
        return Err(d_err(d, format!("{} needs a value", d.name)));
    }
    let prog = Program::from_parts(Vec::new(), scope);
    if !looks_like_expression(&d.value) {
        return Ok(StringExpr {
            expr: crate::lang::ast::Expr::new(
                crate::lang::ast::ExprKind::Lit(Value::String(d.value.clone())),
                crate::value::Type::String,
            ),
            text: d.value.clone(),
            constant: Some(d.value.clone()),
            program: prog,
        });
    }
    let e = parse_expression(&value_source(d), scope)?;
    if !matches!(
        e.ty,
        crate::value::Type::String | crate::value::Type::Unknown
    ) {
        return Err(d_err(
            d,
            format!(
                "{} must be a string expression, found {}",
                d.name,
                e.ty.name()
            ),
        ));
    }
    let mut s = StringExpr {
        expr: e,
        text: d.value.clone(),
        constant: None,
        program: prog,
    };
    if s.expr.is_constant() {
        let mut ctx = crate::eval::CollectingContext::default();
        let v = s
            .eval(&crate::Record::new(), &mut ctx)
            .map_err(|m| d_err(d, format!("invalid value for {}: {m}", d.name)))?;
        s.constant = Some(v);
    }
    Ok(s)
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
    let bad = || d_err(d, format!("expected {usage}"));
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

/// Build the typed configuration; errors are appended to `errors`.
pub(crate) fn build(
    path: &str,
    st: Structure,
    defines: Vec<(String, String)>,
    mut notes: Vec<Note>,
    errors: &mut Vec<Diagnostic>,
) -> Config {
    let globals = globals(&st.globals, errors, &mut notes);

    // Instances first: Exec code may name any of them, and to_json() needs
    // to know whether an xm_json instance exists anywhere in the file.
    let mut instances: Vec<(String, String)> = Vec::new();
    let mut module_of: Vec<Option<String>> = Vec::new();
    let mut seen: Vec<(String, Location)> = Vec::new();
    for b in &st.blocks {
        if !b.name.is_empty() {
            if let Some((_, first)) = seen.iter().find(|(n, _)| n.eq_ignore_ascii_case(&b.name)) {
                errors.push(Diagnostic::new(
                    &b.loc,
                    &b.raw,
                    format!("duplicate name '{}' (first used at {first})", b.name),
                ));
            } else {
                seen.push((b.name.clone(), b.loc.clone()));
            }
        }
        if b.kind == BlockKind::Processor {
            errors.push(Diagnostic::new(
                &b.loc,
                &b.raw,
                "<Processor> blocks are not supported by regmon (supported blocks: Extension, Input, Output, Route)",
            ));
            module_of.push(None);
            continue;
        }
        if b.kind == BlockKind::Route || b.name.is_empty() {
            // nameless blocks were already reported; checking them further only adds noise
            module_of.push(None);
            continue;
        }
        let mods: Vec<&RawDirective> = b
            .directives
            .iter()
            .filter(|d| d.d.name.eq_ignore_ascii_case("module"))
            .collect();
        let m = match mods.as_slice() {
            [] => {
                errors.push(Diagnostic::new(
                    &b.loc,
                    &b.raw,
                    format!(
                        "<{} {}> has no Module directive (supported modules: {})",
                        b.kind.name(),
                        b.name,
                        SUPPORTED_MODULES.join(", ")
                    ),
                ));
                None
            }
            [first, rest @ ..] => {
                for r in rest {
                    errors.push(d_err(
                        &r.d,
                        format!("duplicate Module directive (first at {})", first.d.location),
                    ));
                }
                let m = first.d.value.to_ascii_lowercase();
                if !SUPPORTED_MODULES.contains(&m.as_str()) {
                    errors.push(d_err(
                        &first.d,
                        format!(
                            "unknown module '{}' (supported: {})",
                            first.d.value,
                            SUPPORTED_MODULES.join(", ")
                        ),
                    ));
                    None
                } else {
                    let want = match b.kind {
                        BlockKind::Input => "im_",
                        BlockKind::Output => "om_",
                        _ => "xm_",
                    };
                    if !m.starts_with(want) {
                        let what = match &m[..3] {
                            "im_" => "an input module, use it in <Input>",
                            "om_" => "an output module, use it in <Output>",
                            _ => "an extension module, use it in <Extension>",
                        };
                        errors.push(d_err(
                            &first.d,
                            format!("module {m} cannot be used in <{}> ({what})", b.kind.name()),
                        ));
                        None
                    } else {
                        Some(m)
                    }
                }
            }
        };
        if let Some(m) = &m {
            instances.push((b.name.clone(), m.clone()));
        }
        module_of.push(m);
    }
    let json = st
        .blocks
        .iter()
        .zip(&module_of)
        .find(|(_, m)| m.as_deref() == Some("xm_json"))
        .map(|(b, _)| xm_json_options(b, &mut Vec::new()));

    let mut modules = Vec::new();
    let mut routes = Vec::new();
    for (b, m) in st.blocks.iter().zip(module_of) {
        if b.kind == BlockKind::Route {
            if let Some(r) = route(b, errors) {
                routes.push(r);
            }
            continue;
        }
        let Some(m) = m else { continue };
        let scope = ExecScope {
            instance: b.name.clone(),
            module: m.clone(),
            json: json.clone(),
            date_format: globals.date_format.clone(),
            instances: instances.clone(),
        };
        if let Some(module) = module(b, &m, &scope, errors, &mut notes) {
            modules.push(module);
        }
    }

    // Routes must name existing inputs and outputs.
    for r in &routes {
        for (names, kind) in [
            (&r.inputs, ModuleKind::Input),
            (&r.outputs, ModuleKind::Output),
        ] {
            for n in names {
                let found = st
                    .blocks
                    .iter()
                    .find(|b| b.kind != BlockKind::Route && b.name.eq_ignore_ascii_case(n));
                let line = st.blocks.iter().find(|b| b.name == r.name).and_then(|b| {
                    b.directives
                        .iter()
                        .find(|d| d.d.name.eq_ignore_ascii_case("path"))
                });
                let (loc, text) = line.map_or((r.location.clone(), String::new()), |d| {
                    (d.d.location.clone(), d.d.line_text.clone())
                });
                match found {
                    None => errors.push(Diagnostic::new(
                        &loc,
                        &text,
                        format!(
                            "route '{}' refers to unknown {} '{n}'",
                            r.name,
                            kind.block_name().to_ascii_lowercase()
                        ),
                    )),
                    Some(b) if b.kind == BlockKind::Processor => {}
                    Some(b) if b.kind.name() != kind.block_name() => errors.push(Diagnostic::new(
                        &loc,
                        &text,
                        format!(
                            "route '{}': '{n}' is an <{}>, expected an <{}> {} '=>'",
                            r.name,
                            b.kind.name(),
                            kind.block_name(),
                            if kind == ModuleKind::Input {
                                "before"
                            } else {
                                "after"
                            }
                        ),
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    let has_in = modules.iter().any(|m| m.kind == ModuleKind::Input);
    let has_out = modules.iter().any(|m| m.kind == ModuleKind::Output);
    if routes.is_empty() && has_in && has_out && errors.is_empty() {
        // NXLog connects every input to every output when no Route exists.
        let loc = Location::new(path, 0);
        routes.push(Route {
            name: "default".into(),
            inputs: modules
                .iter()
                .filter(|m| m.kind == ModuleKind::Input)
                .map(|m| m.name.clone())
                .collect(),
            outputs: modules
                .iter()
                .filter(|m| m.kind == ModuleKind::Output)
                .map(|m| m.name.clone())
                .collect(),
            priority: None,
            location: loc.clone(),
        });
        note(
            &mut notes,
            &loc,
            LogLevel::Info,
            "no <Route>: connecting every input to every output".into(),
        );
    }
    for m in &modules {
        if m.kind == ModuleKind::Extension {
            continue;
        }
        let used = routes.iter().any(|r| {
            r.inputs
                .iter()
                .chain(&r.outputs)
                .any(|n| n.eq_ignore_ascii_case(&m.name))
        });
        if !used {
            note(
                &mut notes,
                &m.location,
                LogLevel::Warning,
                format!(
                    "{} '{}' is not used in any route",
                    m.kind.block_name(),
                    m.name
                ),
            );
        }
    }
    Config {
        path: path.to_string(),
        globals,
        modules,
        routes,
        defines,
        notes,
    }
}

fn globals(ds: &[RawDirective], errors: &mut Vec<Diagnostic>, notes: &mut Vec<Note>) -> Globals {
    let mut g = Globals::default();
    let mut seen: Vec<(String, Location)> = Vec::new();
    for rd in ds {
        let d = &rd.d;
        let lname = d.name.to_ascii_lowercase();
        let Some(canon) = GLOBALS.iter().find(|n| n.eq_ignore_ascii_case(&lname)) else {
            errors.push(d_err(
                d,
                format!(
                    "unknown global directive '{}' (supported: {})",
                    d.name,
                    GLOBALS.join(", ")
                ),
            ));
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == lname) {
            errors.push(d_err(
                d,
                format!("duplicate directive '{}' (first at {first})", d.name),
            ));
            continue;
        }
        seen.push((lname.clone(), d.location.clone()));
        g.directives.push(d.clone());
        let res: Result<(), Diagnostic> = (|| {
            match lname.as_str() {
                "cachedir" => g.cache_dir = Some(constant_string(d)?),
                "logfile" => g.log_file = Some(constant_string(d)?),
                "spooldir" => g.spool_dir = Some(constant_string(d)?),
                "pidfile" => g.pid_file = Some(constant_string(d)?),
                "moduledir" => {
                    g.module_dir = Some(constant_string(d)?);
                    note(notes, &d.location, LogLevel::Debug, "ModuleDir has no effect in regmon (modules are built in)".into());
                }
                "loglevel" => {
                    g.log_level = Some(LogLevel::parse(crate::source::unquote(&d.value)).ok_or_else(|| {
                        d_err(d, format!("invalid LogLevel '{}' (expected DEBUG, INFO, WARNING, ERROR or CRITICAL)", d.value))
                    })?)
                }
                "dateformat" => {
                    g.date_format = DateFormat::parse(&constant_string(d)?).map_err(|m| d_err(d, m))?;
                }
                "nocache" => g.no_cache = d.as_bool()?,
                "panic" => {
                    let v = d.value.to_ascii_uppercase();
                    if !["SOFT", "HARD", "OFF"].contains(&v.as_str()) {
                        return Err(d_err(d, format!("invalid Panic '{}' (expected SOFT, HARD or OFF)", d.value)));
                    }
                    note(notes, &d.location, LogLevel::Debug, "Panic has no effect in regmon".into());
                }
                "nofreeonexit" | "suppressrepeatinglogs" | "cachesync" | "flowcontrol" => {
                    d.as_bool()?;
                    note(notes, &d.location, LogLevel::Debug, format!("{canon} has no effect in regmon"));
                }
                "cacheflushinterval" | "threads" | "logqueuesize" => {
                    if !d.value.eq_ignore_ascii_case("always") {
                        d.as_integer()?;
                    }
                    note(notes, &d.location, LogLevel::Debug, format!("{canon} has no effect in regmon"));
                }
                _ => {
                    constant_string(d)?;
                    note(notes, &d.location, LogLevel::Debug, format!("{canon} has no effect in regmon"));
                }
            }
            Ok(())
        })();
        if let Err(e) = res {
            errors.push(e);
        }
    }
    g
}

fn xm_json_options(b: &RawBlock, errors: &mut Vec<Diagnostic>) -> JsonOptions {
    let mut o = JsonOptions::default();
    for rd in &b.directives {
        let d = &rd.d;
        let r: Result<(), Diagnostic> = (|| {
            match d.name.to_ascii_lowercase().as_str() {
                "dateformat" => {
                    o.date_format =
                        DateFormat::parse(&constant_string(d)?).map_err(|m| d_err(d, m))?
                }
                "includehiddenfields" => o.include_hidden = d.as_bool()?,
                "prettyprint" => o.pretty = d.as_bool()?,
                "parsedate" => o.parse_date = d.as_bool()?,
                _ => {}
            }
            Ok(())
        })();
        if let Err(e) = r {
            errors.push(e);
        }
    }
    o
}

fn module(
    b: &RawBlock,
    m: &str,
    scope: &ExecScope,
    errors: &mut Vec<Diagnostic>,
    notes: &mut Vec<Note>,
) -> Option<Module> {
    let n_err = errors.len();
    let specific = module_directives(m);
    let block_desc = format!("<{} {}>", b.kind.name(), b.name);
    let mut seen: Vec<(String, Location)> = Vec::new();
    let mut directives = Vec::new();
    for rd in &b.directives {
        let d = &rd.d;
        let lname = d.name.to_ascii_lowercase();
        if lname == "module" {
            continue;
        }
        directives.push(d.clone());
        let is_specific = specific.iter().any(|s| s.eq_ignore_ascii_case(&lname));
        let inert = INERT_COMMON.iter().find(|s| s.eq_ignore_ascii_case(&lname));
        if !is_specific && inert.is_none() {
            if m == "xm_json"
                && ["flatten", "unflatten", "detectnestedjson", "splitarray"]
                    .contains(&lname.as_str())
            {
                errors.push(d_err(
                    d,
                    format!(
                        "xm_json directive '{}' is not supported by regmon (supported: {})",
                        d.name,
                        specific.join(", ")
                    ),
                ));
                continue;
            }
            let mut list: Vec<&str> = vec!["Module", "Exec"];
            list.extend(specific);
            list.extend(INERT_COMMON);
            let hint = if lname == "inputtype" {
                " (InputType is not supported)".to_string()
            } else {
                String::new()
            };
            errors.push(d_err(
                d,
                format!(
                    "unknown directive '{}' in {block_desc}{hint} (supported: {})",
                    d.name,
                    list.join(", ")
                ),
            ));
            continue;
        }
        if !repeatable(m, &lname) {
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == lname) {
                errors.push(d_err(
                    d,
                    format!(
                        "duplicate directive '{}' in {block_desc} (first at {first})",
                        d.name
                    ),
                ));
                continue;
            }
        }
        seen.push((lname.clone(), d.location.clone()));
        if let Some(canon) = inert {
            let check = match lname.as_str() {
                "flowcontrol" | "persistlogqueue" | "synclogqueue" => d.as_bool().map(|_| ()),
                "logqueuedir" => constant_string(d).map(|_| ()),
                "batchflushinterval" => d.value.trim().parse::<f64>().map(|_| ()).map_err(|_| {
                    d_err(
                        d,
                        format!(
                            "invalid value '{}' for {}: expected a number of seconds",
                            d.value, d.name
                        ),
                    )
                }),
                _ => d.as_integer().map(|_| ()),
            };
            match check {
                Ok(()) => note(
                    notes,
                    &d.location,
                    LogLevel::Debug,
                    format!("{canon} has no effect in regmon (events are delivered in-process)"),
                ),
                Err(e) => errors.push(e),
            }
        }
    }

    let settings = match m {
        "im_regmon" => im_regmon(b, errors).map(|x| ModuleSettings::ImRegmon(Box::new(x))),
        "xm_json" | "xm_fileop" => {
            if let Some(e) = b.execs.first() {
                let s = &e.segs[0];
                errors.push(Diagnostic::new(
                    &s.loc,
                    &s.line_text,
                    format!(
                    "Exec is not allowed directly in {block_desc}; put it in a <Schedule> block"
                ),
                ));
            }
            if let Some(d) = b
                .directives
                .iter()
                .find(|d| d.d.name.eq_ignore_ascii_case("forceutf8"))
            {
                match d.d.as_bool() {
                    Ok(_) => note(
                        notes,
                        &d.d.location,
                        LogLevel::Debug,
                        "ForceUTF8 has no effect in regmon (strings are always UTF-8)".into(),
                    ),
                    Err(e) => errors.push(e),
                }
            }
            if m == "xm_fileop" {
                Some(ModuleSettings::XmFileop)
            } else {
                Some(ModuleSettings::XmJson(XmJson {
                    options: xm_json_options(b, errors),
                }))
            }
        }
        _ => om_file(b, scope, errors).map(ModuleSettings::OmFile),
    };

    let exec = compile_execs(&b.execs, scope, errors);
    let mut schedules = Vec::new();
    for s in &b.schedules {
        if let Some(s) = schedule(s, scope, errors) {
            schedules.push(s);
        }
    }
    if errors.len() != n_err {
        return None;
    }
    let kind = match b.kind {
        BlockKind::Input => ModuleKind::Input,
        BlockKind::Output => ModuleKind::Output,
        _ => ModuleKind::Extension,
    };
    Some(Module {
        kind,
        name: b.name.clone(),
        module: m.to_string(),
        location: b.loc.clone(),
        settings: settings?,
        directives,
        exec,
        schedules,
    })
}

fn compile_execs(
    execs: &[ExecSource],
    scope: &ExecScope,
    errors: &mut Vec<Diagnostic>,
) -> Option<Program> {
    if execs.is_empty() {
        return None;
    }
    let mut stmts: Vec<Stmt> = Vec::new();
    for src in execs {
        match parse_program(src, scope) {
            Ok(s) => stmts.extend(s),
            Err(e) => errors.push(e),
        }
    }
    Some(Program::from_parts(stmts, scope))
}

fn each<'a>(b: &'a RawBlock, name: &'a str) -> impl Iterator<Item = &'a Directive> + 'a {
    b.directives
        .iter()
        .map(|d| &d.d)
        .filter(move |d| d.name.eq_ignore_ascii_case(name))
}

fn one<'a>(b: &'a RawBlock, name: &str) -> Option<&'a Directive> {
    b.directives
        .iter()
        .map(|d| &d.d)
        .find(|d| d.name.eq_ignore_ascii_case(name))
}

fn keep<T>(r: Result<T, Diagnostic>, errors: &mut Vec<Diagnostic>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

fn im_regmon(b: &RawBlock, errors: &mut Vec<Diagnostic>) -> Option<ImRegmon> {
    let mut x = ImRegmon::default();
    let pattern = |d: &Directive, errors: &mut Vec<Diagnostic>| -> Option<PathPattern> {
        let s = keep(constant_string(d), errors)?;
        if s.trim().is_empty() {
            errors.push(d_err(d, format!("{} needs a registry path", d.name)));
            return None;
        }
        Some(PathPattern {
            pattern: s,
            location: d.location.clone(),
        })
    };
    for d in each(b, "RegValue") {
        if let Some(p) = pattern(d, errors) {
            x.reg_values.push(p);
        }
    }
    if one(b, "RegValue").is_none() {
        errors.push(Diagnostic::new(&b.loc, &b.raw, format!(
            "<Input {}> (im_regmon) needs at least one RegValue directive, e.g. RegValue 'HKLM\\Software\\Policies\\*'",
            b.name
        )));
    }
    for d in each(b, "Exclude") {
        if let Some(p) = pattern(d, errors) {
            x.excludes.push(p);
        }
    }
    for d in each(b, "NoDataFor") {
        if let Some(p) = pattern(d, errors) {
            x.no_data_for.push(p);
        }
    }
    for d in each(b, "HiveFile") {
        if let Some((v, no_logs)) = keep(hive_file_args(d), errors) {
            x.hive_files.push(HiveFile {
                key: v[0].clone(),
                path: v[1].clone(),
                no_logs,
                location: d.location.clone(),
            });
        }
    }
    let bools: [(&str, &mut bool); 5] = [
        ("Recursive", &mut x.recursive),
        ("64BitView", &mut x.view_64bit),
        ("Realtime", &mut x.realtime),
        ("ReportData", &mut x.report_data),
        ("KeyEvents", &mut x.key_events),
    ];
    for (name, slot) in bools {
        if let Some(d) = one(b, name) {
            if let Some(v) = keep(d.as_bool(), errors) {
                *slot = v;
            }
        }
    }
    if let Some(d) = one(b, "Digest") {
        if let Some(s) = keep(constant_string(d), errors) {
            match DigestAlgorithm::parse(&s) {
                Ok(a) => x.digest = a,
                Err(m) => errors.push(d_err(d, m)),
            }
        }
    }
    if let Some(d) = one(b, "ScanInterval") {
        match d.as_integer() {
            Ok(v) if v >= 0 => x.scan_interval = v as u64,
            Ok(_) => errors.push(d_err(
                d,
                "ScanInterval must be 0 or a positive number of seconds",
            )),
            Err(e) => errors.push(e),
        }
    }
    if let Some(d) = one(b, "MaxDataSize") {
        match d.as_integer() {
            Ok(v) if v >= 0 => x.max_data_size = Some(v as u64),
            Ok(_) => errors.push(d_err(d, "MaxDataSize must not be negative")),
            Err(e) => errors.push(e),
        }
    }
    if let Some(d) = one(b, "Schema") {
        x.schema = keep(constant_string(d), errors);
    }
    Some(x)
}

fn om_file(b: &RawBlock, scope: &ExecScope, errors: &mut Vec<Diagnostic>) -> Option<OmFile> {
    let file = match one(b, "File") {
        Some(d) => keep(string_expr(d, scope), errors),
        None => {
            errors.push(Diagnostic::new(
                &b.loc,
                &b.raw,
                format!(
                "<Output {}> (om_file) needs a File directive, e.g. File 'C:\\logs\\regmon.log'",
                b.name
            ),
            ));
            None
        }
    };
    let mut o = (false, false, false);
    for (name, slot) in [
        ("CreateDir", &mut o.0),
        ("Truncate", &mut o.1),
        ("Sync", &mut o.2),
    ] {
        if let Some(d) = one(b, name) {
            if let Some(v) = keep(d.as_bool(), errors) {
                *slot = v;
            }
        }
    }
    if let Some(d) = one(b, "OutputType") {
        if !d.value.eq_ignore_ascii_case("linebased") {
            errors.push(d_err(
                d,
                format!(
                    "unsupported OutputType '{}' (om_file writes LineBased output only)",
                    d.value
                ),
            ));
        }
    }
    Some(OmFile {
        file: file?,
        create_dir: o.0,
        truncate: o.1,
        sync: o.2,
    })
}

fn schedule(s: &RawSchedule, scope: &ExecScope, errors: &mut Vec<Diagnostic>) -> Option<Schedule> {
    let n_err = errors.len();
    let (mut when, mut every, mut first) = (None, None, None);
    let mut texts: (Option<String>, Option<String>, Option<String>) = (None, None, None);
    let mut seen: Vec<(String, Location)> = Vec::new();
    for rd in &s.directives {
        let d = &rd.d;
        let lname = d.name.to_ascii_lowercase();
        if !["when", "every", "first"].contains(&lname.as_str()) {
            errors.push(d_err(
                d,
                format!(
                    "unknown directive '{}' in <Schedule> (supported: When, Every, First, Exec)",
                    d.name
                ),
            ));
            continue;
        }
        if let Some((_, f)) = seen.iter().find(|(n, _)| *n == lname) {
            errors.push(d_err(
                d,
                format!(
                    "duplicate directive '{}' in <Schedule> (first at {f})",
                    d.name
                ),
            ));
            continue;
        }
        seen.push((lname.clone(), d.location.clone()));
        let v = crate::source::unquote(d.value.trim());
        match lname.as_str() {
            "when" => match When::parse(v) {
                Ok(w) => {
                    when = Some(w);
                    texts.0 = Some(v.to_string());
                }
                Err(m) => errors.push(d_err(d, m)),
            },
            "every" => match parse_every(v) {
                Ok(e) => {
                    every = Some(e);
                    texts.1 = Some(v.to_string());
                }
                Err(m) => errors.push(d_err(d, m)),
            },
            _ => match parse_first(v) {
                Ok(f) => {
                    first = Some(f);
                    texts.2 = Some(v.to_string());
                }
                Err(m) => errors.push(d_err(d, m)),
            },
        }
    }
    let has = |n: &str| seen.iter().any(|(x, _)| x == n);
    if !has("when") && !has("every") {
        errors.push(Diagnostic::new(
            &s.loc,
            &s.raw,
            "<Schedule> needs a When or an Every directive",
        ));
    } else if has("when") && has("every") {
        errors.push(Diagnostic::new(
            &s.loc,
            &s.raw,
            "<Schedule> takes either When or Every, not both",
        ));
    }
    if has("first") && !has("every") {
        errors.push(Diagnostic::new(
            &s.loc,
            &s.raw,
            "First is only valid together with Every in <Schedule>",
        ));
    }
    if s.execs.is_empty() {
        errors.push(Diagnostic::new(
            &s.loc,
            &s.raw,
            "<Schedule> has no Exec directive",
        ));
    }
    let exec = compile_execs(&s.execs, scope, errors);
    if errors.len() != n_err {
        return None;
    }
    Some(Schedule {
        when,
        every,
        first,
        when_text: texts.0,
        every_text: texts.1,
        first_text: texts.2,
        exec: exec?,
        location: s.loc.clone(),
    })
}

fn route(b: &RawBlock, errors: &mut Vec<Diagnostic>) -> Option<Route> {
    let n_err = errors.len();
    let mut r = Route {
        name: b.name.clone(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        priority: None,
        location: b.loc.clone(),
    };
    let mut path_seen: Option<Location> = None;
    let mut prio_seen: Option<Location> = None;
    for rd in &b.directives {
        let d = &rd.d;
        match d.name.to_ascii_lowercase().as_str() {
            "path" => {
                if let Some(f) = &path_seen {
                    errors.push(d_err(
                        d,
                        format!(
                            "duplicate directive 'Path' in <Route {}> (first at {f})",
                            b.name
                        ),
                    ));
                    continue;
                }
                path_seen = Some(d.location.clone());
                let parts: Vec<&str> = d.value.split("=>").map(str::trim).collect();
                if parts.len() > 2 {
                    errors.push(d_err(d, "processors in a Path are not supported by regmon (expected 'Path input1, input2 => output1, output2')"));
                    continue;
                }
                if parts.len() != 2 {
                    errors.push(d_err(
                        d,
                        "expected 'Path input1, input2 => output1, output2'",
                    ));
                    continue;
                }
                let list = |s: &str| -> Option<Vec<String>> {
                    let v: Vec<String> = s.split(',').map(|x| x.trim().to_string()).collect();
                    (!v.iter().any(String::is_empty)).then_some(v)
                };
                match (list(parts[0]), list(parts[1])) {
                    (Some(i), Some(o)) => {
                        r.inputs = i;
                        r.outputs = o;
                    }
                    _ => errors.push(d_err(
                        d,
                        "expected 'Path input1, input2 => output1, output2' (a name is missing)",
                    )),
                }
            }
            "priority" => {
                if let Some(f) = &prio_seen {
                    errors.push(d_err(
                        d,
                        format!(
                            "duplicate directive 'Priority' in <Route {}> (first at {f})",
                            b.name
                        ),
                    ));
                    continue;
                }
                prio_seen = Some(d.location.clone());
                match d.as_integer() {
                    Ok(p) if (1..=100).contains(&p) => r.priority = Some(p),
                    Ok(_) => errors.push(d_err(d, "Priority must be between 1 and 100")),
                    Err(e) => errors.push(e),
                }
            }
            "exec" => errors.push(d_err(
                d,
                format!(
                    "Exec is not allowed in <Route {}> (supported: Path, Priority)",
                    b.name
                ),
            )),
            _ => errors.push(d_err(
                d,
                format!(
                    "unknown directive '{}' in <Route {}> (supported: Path, Priority)",
                    d.name, b.name
                ),
            )),
        }
    }
    if path_seen.is_none() {
        errors.push(Diagnostic::new(
            &b.loc,
            &b.raw,
            format!(
                "<Route {}> needs a Path directive, e.g. Path regmon => file",
                b.name
            ),
        ));
    }
    (errors.len() == n_err).then_some(r)
}
