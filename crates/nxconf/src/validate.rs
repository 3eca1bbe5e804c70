//! Validation: turns raw blocks into the typed [`Config`]. Knows the global
//! directives, the directives every module accepts, routes and schedules;
//! what is specific to a module type comes from the module table
//! (`modules`). Compiles every Exec with the procedures that exist
//! where it runs.
//!
//! Common module directives: NXLog's queueing and flow-control knobs
//! (FlowControl, LogqueueSize, LogqueueDir, PersistLogqueue, SyncLogqueue,
//! BufferSize, BatchSize, BatchFlushInterval) are accepted with a debug note
//! because regmon delivers events in-process and they cannot change what is
//! produced. `OutputType LineBased` (om_file's only behaviour) is accepted;
//! other OutputType/InputType values are refused, since they would change output.

use crate::block::{BlockKind, RawBlock, RawDirective, RawSchedule, Structure};
use crate::config::{Config, Globals, Instance, Module, Options, Route, Schedule, Status};
use crate::diag::{Diagnostic, Location, LogLevel, Note};
use crate::directive::{constant_string, Directive};
use crate::eval::Program;
use crate::lang::ast::Stmt;
use crate::lang::parser::{parse_program, ExecSource};
use crate::lang::scope::ExecScope;
use crate::modules::{self, Build, ModuleKind, ModuleType, SUPPORTED_MODULES};
use crate::schedule::{parse_every, parse_first, When};
use crate::value::DateFormat;

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
    "OutboxMaxSize",
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

/// Build the typed configuration; errors are appended to `errors`.
pub(crate) fn build(
    path: &str,
    st: Structure,
    defines: Vec<(String, String)>,
    mut notes: Vec<Note>,
    options: &Options,
    errors: &mut Vec<Diagnostic>,
) -> Config {
    let _ = options.strict;
    let globals = globals(&st.globals, &modules::constant_scope(), errors, &mut notes);

    // Instances first: Exec code may name any of them, and to_json() needs
    // to know whether an xm_json instance exists anywhere in the file.
    let mut instances: Vec<(String, String)> = Vec::new();
    let mut module_of: Vec<Option<&'static ModuleType>> = Vec::new();
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
                if let Some(t) = modules::find(&first.d.value) {
                    if module_kind(b.kind) != Some(t.kind) {
                        let what = match t.kind {
                            ModuleKind::Input => "an input module, use it in <Input>",
                            ModuleKind::Output => "an output module, use it in <Output>",
                            ModuleKind::Extension => "an extension module, use it in <Extension>",
                            ModuleKind::Processor => "a processor module, use it in <Processor>",
                        };
                        errors.push(d_err(
                            &first.d,
                            format!(
                                "module {} cannot be used in <{}> ({what})",
                                t.name,
                                b.kind.name()
                            ),
                        ));
                        None
                    } else {
                        Some(t)
                    }
                } else {
                    errors.push(d_err(
                        &first.d,
                        format!(
                            "unknown module '{}' (supported: {})",
                            first.d.value,
                            SUPPORTED_MODULES.join(", ")
                        ),
                    ));
                    None
                }
            }
        };
        if let Some(t) = m {
            instances.push((b.name.clone(), t.name.to_string()));
        }
        module_of.push(m);
    }
    // Constant directive values compile without an instance or xm_json.
    let constants = modules::constant_scope();
    // Errors are reported when the block itself is built.
    let json = st
        .blocks
        .iter()
        .zip(&module_of)
        .find_map(|(b, t)| Some((b, t.as_ref()?.json_options?)))
        .map(|(b, read)| read(b, &constants, &mut Vec::new()));
    // to_syslog_*(), to_kvp(), to_csv() and process() compile with the
    // settings of their extension instances.
    let syslog = modules::extension_settings(st.blocks.iter().zip(module_of.iter().copied()));

    let mut modules = Vec::new();
    let mut routes = Vec::new();
    for (b, m) in st.blocks.iter().zip(module_of) {
        if b.kind == BlockKind::Route {
            if let Some(r) = route(b, errors) {
                routes.push(r);
            }
            continue;
        }
        let Some(t) = m else { continue };
        let scope = modules::scope(
            &b.name,
            t.name,
            json.clone(),
            globals.date_format.clone(),
            instances.clone(),
            syslog.clone(),
        );
        let cx = Context {
            scope: &scope,
            constants: &constants,
        };
        if let Some(module) = module(b, t, &cx, errors, &mut notes) {
            modules.push(module);
        }
    }

    modules::net::link_gelf(
        &mut modules
            .iter_mut()
            .map(|m| &mut m.settings)
            .collect::<Vec<_>>(),
    );

    // Routes must name existing inputs and outputs.
    for r in &routes {
        for (names, kind) in [
            (&r.inputs, ModuleKind::Input),
            (&r.processors, ModuleKind::Processor),
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
                    Some(b) if b.kind.name() != kind.block_name() => errors.push(Diagnostic::new(
                        &loc,
                        &text,
                        format!(
                            "route '{}': '{n}' is an <{}>, expected an <{}> {}",
                            r.name,
                            b.kind.name(),
                            kind.block_name(),
                            match kind {
                                ModuleKind::Input => "before the first '=>'",
                                ModuleKind::Processor => "between '=>'s",
                                _ => "after the last '=>'",
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
            processors: Vec::new(),
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
    let instances = modules
        .iter()
        .map(|m| Instance {
            kind: m.kind,
            name: m.name.clone(),
            module: m.module.clone(),
            location: m.location.clone(),
            status: Status::Runs,
        })
        .collect();
    Config {
        path: path.to_string(),
        globals,
        modules,
        routes,
        defines,
        notes,
        instances,
        dropped_routes: Vec::new(),
    }
}

fn globals(
    ds: &[RawDirective],
    constants: &ExecScope,
    errors: &mut Vec<Diagnostic>,
    notes: &mut Vec<Note>,
) -> Globals {
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
                "cachedir" => g.cache_dir = Some(constant_string(d, constants)?),
                "logfile" => g.log_file = Some(constant_string(d, constants)?),
                "spooldir" => g.spool_dir = Some(constant_string(d, constants)?),
                "pidfile" => g.pid_file = Some(constant_string(d, constants)?),
                "moduledir" => {
                    g.module_dir = Some(constant_string(d, constants)?);
                    note(notes, &d.location, LogLevel::Debug, "ModuleDir has no effect in regmon (modules are built in)".into());
                }
                "loglevel" => {
                    g.log_level = Some(LogLevel::parse(crate::source::unquote(&d.value)).ok_or_else(|| {
                        d_err(d, format!("invalid LogLevel '{}' (expected DEBUG, INFO, WARNING, ERROR or CRITICAL)", d.value))
                    })?)
                }
                "dateformat" => {
                    g.date_format = DateFormat::parse(&constant_string(d, constants)?).map_err(|m| d_err(d, m))?;
                }
                "nocache" => g.no_cache = d.as_bool()?,
                "outboxmaxsize" => g.outbox_max_size = Some(parse_size(d)?),
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
                    constant_string(d, constants)?;
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

/// A size in bytes: an integer with an optional K, M or G (powers of 1024).
fn parse_size(d: &Directive) -> Result<u64, Diagnostic> {
    let v = d.value.trim();
    let (num, mult) = match v.char_indices().last() {
        Some((i, c)) if c.eq_ignore_ascii_case(&'k') => (&v[..i], 1u64 << 10),
        Some((i, c)) if c.eq_ignore_ascii_case(&'m') => (&v[..i], 1 << 20),
        Some((i, c)) if c.eq_ignore_ascii_case(&'g') => (&v[..i], 1 << 30),
        _ => (v, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n >= 4096)
        .ok_or_else(|| {
            d_err(
                d,
                format!(
                    "invalid {} '{}': expected a size in bytes of at least 4096, optionally with K, M or G (e.g. 512M)",
                    d.name, d.value
                ),
            )
        })
}

/// The scopes a module instance's code and directive values compile in.
struct Context<'a> {
    scope: &'a ExecScope,
    constants: &'a ExecScope,
}

/// `<Input>` and `<Output>` hold input and output modules, and so on.
fn module_kind(b: BlockKind) -> Option<ModuleKind> {
    match b {
        BlockKind::Extension => Some(ModuleKind::Extension),
        BlockKind::Input => Some(ModuleKind::Input),
        BlockKind::Output => Some(ModuleKind::Output),
        BlockKind::Processor => Some(ModuleKind::Processor),
        BlockKind::Route => None,
    }
}

/// Check a module block against its type's entry in the table (unknown,
/// refused and repeated directives, the common ones), then let the type's
/// builder read its settings, and compile its Exec code and schedules.
fn module(
    b: &RawBlock,
    t: &ModuleType,
    cx: &Context,
    errors: &mut Vec<Diagnostic>,
    notes: &mut Vec<Note>,
) -> Option<Module> {
    let n_err = errors.len();
    let specific: Vec<&str> = t.directives.iter().map(|d| d.name).collect();
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
            if t.unsupported.iter().any(|u| u.eq_ignore_ascii_case(&lname)) {
                errors.push(d_err(
                    d,
                    format!(
                        "{} directive '{}' is not supported by regmon (supported: {})",
                        t.name,
                        d.name,
                        specific.join(", ")
                    ),
                ));
                continue;
            }
            let mut list: Vec<&str> = vec!["Module", "Exec"];
            list.extend(&specific);
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
        let repeatable = t
            .directives
            .iter()
            .any(|s| s.repeatable && s.name.eq_ignore_ascii_case(&lname));
        if !repeatable {
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
                "logqueuedir" => constant_string(d, cx.constants).map(|_| ()),
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

    // xm_rewrite's Exec runs inside its process().
    if t.kind == ModuleKind::Extension && t.name != "xm_rewrite" {
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
    }
    let settings = (t.build)(&mut Build {
        block: b,
        scope: cx.scope,
        constants: cx.constants,
        errors,
        notes,
    });

    let exec = compile_execs(&b.execs, cx.scope, errors);
    let mut schedules = Vec::new();
    for s in &b.schedules {
        if let Some(s) = schedule(s, cx.scope, errors) {
            schedules.push(s);
        }
    }
    if errors.len() != n_err {
        return None;
    }
    Some(Module {
        kind: t.kind,
        name: b.name.clone(),
        module: t.name.to_string(),
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
        processors: Vec::new(),
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
                const FORM: &str = "expected 'Path input1, input2 => output1, output2' (or with processors: 'Path in => buffer => out')";
                if parts.len() < 2 {
                    errors.push(d_err(d, FORM));
                    continue;
                }
                let list = |s: &str| -> Option<Vec<String>> {
                    let v: Vec<String> = s.split(',').map(|x| x.trim().to_string()).collect();
                    (!v.iter().any(String::is_empty)).then_some(v)
                };
                let middle = &parts[1..parts.len() - 1];
                let procs: Option<Vec<String>> = middle
                    .iter()
                    .map(|p| list(p))
                    .collect::<Option<Vec<_>>>()
                    .map(|v| v.concat());
                match (list(parts[0]), procs, list(parts[parts.len() - 1])) {
                    (Some(i), Some(p), Some(o)) => {
                        r.inputs = i;
                        r.processors = p;
                        r.outputs = o;
                    }
                    _ => errors.push(d_err(d, format!("{FORM}: a name is missing"))),
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
