//! Validation: turns raw blocks into the typed [`Config`]. Knows the global
//! directives, the directives every module accepts, routes and schedules;
//! what is specific to a module type comes from the module table
//! (`modules`). Compiles every Exec with the procedures that exist
//! where it runs.
//!
//! Common module directives: NXLog's queueing and flow-control knobs
//! (FlowControl, FlowControlFIFO, LogqueueSize, LogqueueDir,
//! PersistLogqueue, SyncLogqueue, BufferSize, BatchSize,
//! BatchFlushInterval) are accepted with an Info note because regmon
//! delivers events in-process and they cannot change what is produced. `OutputType LineBased` (om_file's only behaviour) is accepted;
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

/// NXLog's global directives (its reference manual, CE 2.x/3.x and the
/// Enterprise agent), plus our OutboxMaxSize. Those regmon acts on are
/// read in `globals()`; every other one is checked and gets an Info note
/// saying it has no effect (`--verify` lists them).
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
    "FlowControlFIFO",
    "LogqueueSize",
    "LogqueueDir",
    "PersistLogqueue",
    "SyncLogqueue",
    "BatchSize",
    "BatchFlushInterval",
    "RootDir",
    "User",
    "Group",
    "IgnoreErrors",
    "StringLimit",
    "ReadTimeout",
    "CacheInvalidationTime",
    "EscapeGlobPatterns",
    "GenerateDateInUTC",
    "ParseDateInUTC",
    "AbortOnDoubleSigterm",
    "AgentUidDir",
    "OutboxMaxSize",
];

/// The directives NXLog accepts in every module block that regmon checks
/// and notes as without effect (its queues and flow control: regmon
/// delivers in-process from a durable outbox).
const INERT_COMMON: &[&str] = &[
    "FlowControl",
    "FlowControlFIFO",
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

/// The text of the warning (or, with `--strict`, the error) for an input
/// regmon does not run.
pub(crate) const INPUT_LEFT: &str =
    "regmon runs im_regmon inputs only; this input is left to NXLog";
/// Why an extension regmon lacks changes nothing.
const EXTENSION_UNUSED: &str = "not used by any im_regmon route";
/// Why an output or processor fed only by dropped routes is not built.
const ONLY_DROPPED: &str = "only routes regmon does not run reach it";
/// Why an output or processor in no route at all changes nothing.
const NO_ROUTE: &str = "not used in any route";

/// What a module block declares: a module type regmon has, or one it
/// lacks (of the block's kind, by NXLog's name prefixes).
#[derive(Clone, Copy)]
enum Decl {
    Known(&'static ModuleType),
    Other(ModuleKind),
}

impl Decl {
    fn kind(self) -> ModuleKind {
        match self {
            Decl::Known(t) => t.kind,
            Decl::Other(k) => k,
        }
    }
}

/// A module block's declaration: what it is, the module as written (lower
/// case) and its Module line (for messages).
struct Declared<'b> {
    decl: Decl,
    module: String,
    line: &'b Directive,
}

/// The kind NXLog's module name prefixes give (`im_`, `om_`, `xm_`, `pm_`).
fn kind_by_prefix(module: &str) -> Option<ModuleKind> {
    let l = module.to_ascii_lowercase();
    [
        ("im_", ModuleKind::Input),
        ("om_", ModuleKind::Output),
        ("xm_", ModuleKind::Extension),
        ("pm_", ModuleKind::Processor),
    ]
    .into_iter()
    .find(|(p, _)| l.starts_with(p) && l.len() > p.len())
    .map(|(_, k)| k)
}

fn kind_hint(k: ModuleKind) -> &'static str {
    match k {
        ModuleKind::Input => "an input module, use it in <Input>",
        ModuleKind::Output => "an output module, use it in <Output>",
        ModuleKind::Extension => "an extension module, use it in <Extension>",
        ModuleKind::Processor => "a processor module, use it in <Processor>",
    }
}

/// Build the typed configuration; errors are appended to `errors`.
///
/// Every module instance is classified (see [`Status`]): inputs other than
/// regmon's own are left to NXLog, routes carrying only them are dropped,
/// outputs and processors only those routes reach are left to NXLog too
/// (not built: their directives and Exec are NXLog's business), extensions
/// regmon lacks have no effect unless code that runs in regmon calls them.
/// What a route regmon runs reaches must be a module regmon supports.
pub(crate) fn build(
    path: &str,
    st: Structure,
    defines: Vec<(String, String)>,
    mut notes: Vec<Note>,
    options: &Options,
    errors: &mut Vec<Diagnostic>,
) -> Config {
    let globals = globals(&st.globals, &modules::constant_scope(), errors, &mut notes);

    // Instances first: Exec code may name any of them, and to_json() needs
    // to know whether an xm_json instance exists anywhere in the file.
    let mut instances: Vec<(String, String)> = Vec::new();
    let mut declared: Vec<Option<Declared>> = Vec::new();
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
            declared.push(None);
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
                declare(b, &first.d, errors)
            }
        };
        if let Some(Declared {
            decl: Decl::Known(t),
            ..
        }) = &m
        {
            instances.push((b.name.clone(), t.name.to_string()));
        }
        declared.push(m);
    }
    let known = |i: usize| match declared[i].as_ref().map(|d| d.decl) {
        Some(Decl::Known(t)) => Some(t),
        _ => None,
    };
    // Constant directive values compile without an instance or xm_json.
    let constants = modules::constant_scope();
    // Errors are reported when the block itself is built.
    let json = st
        .blocks
        .iter()
        .enumerate()
        .find_map(|(i, b)| Some((b, known(i)?.json_options?)))
        .map(|(b, read)| read(b, &constants, &mut Vec::new()));
    // to_syslog_*(), to_kvp(), to_csv() and process() compile with the
    // settings of their extension instances.
    let syslog =
        modules::extension_settings(st.blocks.iter().enumerate().map(|(i, b)| (b, known(i))));

    let mut routes = Vec::new();
    for b in &st.blocks {
        if b.kind == BlockKind::Route {
            if let Some(r) = route(b, errors) {
                routes.push(r);
            }
        }
    }
    check_route_names(&st, &routes, errors);

    // The declaration of a module instance by name.
    let find = |name: &str| -> Option<(usize, &Declared)> {
        st.blocks
            .iter()
            .zip(&declared)
            .enumerate()
            .find(|(_, (b, _))| b.kind != BlockKind::Route && b.name.eq_ignore_ascii_case(name))
            .and_then(|(i, (_, d))| Some((i, d.as_ref()?)))
    };
    let kept_input = |n: &str| {
        find(n)
            .is_some_and(|(_, d)| matches!(d.decl, Decl::Known(t) if t.kind == ModuleKind::Input))
    };
    let left_input =
        |n: &str| find(n).is_some_and(|(_, d)| matches!(d.decl, Decl::Other(ModuleKind::Input)));

    // Routes regmon runs, and those it drops.
    let has_route_blocks = st.blocks.iter().any(|b| b.kind == BlockKind::Route);
    let mut ran: Vec<Route> = Vec::new();
    let mut dropped: Vec<(Route, String)> = Vec::new();
    for mut r in routes {
        let left: Vec<String> = r.inputs.iter().filter(|n| left_input(n)).cloned().collect();
        if left.is_empty() {
            ran.push(r);
            continue;
        }
        let kept: Vec<String> = r.inputs.iter().filter(|n| kept_input(n)).cloned().collect();
        let loc = path_location(&st, &r);
        if kept.is_empty() {
            let reason = format!("its inputs are left to NXLog ({})", left.join(", "));
            note(
                &mut notes,
                &loc,
                LogLevel::Warning,
                format!("route '{}' is dropped: {reason}", r.name),
            );
            dropped.push((r, reason));
        } else {
            note(
                &mut notes,
                &loc,
                LogLevel::Info,
                format!(
                    "route '{}': {} left to NXLog; regmon runs the route for {}",
                    r.name,
                    left.join(", "),
                    kept.join(", ")
                ),
            );
            r.inputs = kept;
            ran.push(r);
        }
    }
    if !has_route_blocks {
        // NXLog connects every input to every output when no Route exists.
        let of_kind = |k: ModuleKind, pick: &dyn Fn(Decl) -> bool| -> Vec<String> {
            st.blocks
                .iter()
                .zip(&declared)
                .filter_map(|(b, d)| {
                    let d = d.as_ref()?;
                    (d.decl.kind() == k && pick(d.decl)).then(|| b.name.clone())
                })
                .collect()
        };
        let inputs = of_kind(ModuleKind::Input, &|d| matches!(d, Decl::Known(_)));
        let outputs = of_kind(ModuleKind::Output, &|_| true);
        if !inputs.is_empty() && !outputs.is_empty() {
            let loc = Location::new(path, 0);
            ran.push(Route {
                name: "default".into(),
                inputs,
                outputs,
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
    }

    // Classify every instance; build those regmon keeps.
    let others = other_extensions(&st, &declared);
    let mut modules = Vec::new();
    let mut all = Vec::new();
    for (i, b) in st.blocks.iter().enumerate() {
        let Some(d) = declared[i].as_ref() else {
            continue;
        };
        let kind = d.decl.kind();
        let named = |n: &String| n.eq_ignore_ascii_case(&b.name);
        let reached = ran
            .iter()
            .find(|r| r.processors.iter().chain(&r.outputs).any(named));
        let on_dropped = dropped
            .iter()
            .any(|(r, _)| r.processors.iter().chain(&r.outputs).any(named));
        let in_ran = ran.iter().any(|r| r.inputs.iter().any(named));
        let status = match (kind, d.decl) {
            (ModuleKind::Input, Decl::Known(_)) => {
                if !in_ran {
                    note(
                        &mut notes,
                        &b.loc,
                        LogLevel::Warning,
                        format!("Input '{}' is not used in any route", b.name),
                    );
                }
                Status::Runs
            }
            (ModuleKind::Input, Decl::Other(_)) => Status::LeftToNxlog(INPUT_LEFT.into()),
            (ModuleKind::Extension, Decl::Known(_)) => Status::Runs,
            (ModuleKind::Extension, Decl::Other(_)) => Status::NoEffect(EXTENSION_UNUSED.into()),
            (_, decl) => match reached {
                Some(r) => {
                    let runs = match decl {
                        Decl::Known(t) => kind == ModuleKind::Output || t.name == "pm_buffer",
                        Decl::Other(_) => false,
                    };
                    if !runs {
                        errors.push(d_err(d.line, refusal(kind, &d.module, r, &find)));
                    }
                    Status::Runs
                }
                None if on_dropped => Status::LeftToNxlog(ONLY_DROPPED.into()),
                None => {
                    note(
                        &mut notes,
                        &b.loc,
                        LogLevel::Warning,
                        format!(
                            "{} '{}' is not used in any route",
                            kind.block_name(),
                            b.name
                        ),
                    );
                    match decl {
                        Decl::Known(_) => Status::NoEffect(NO_ROUTE.into()),
                        Decl::Other(_) => Status::LeftToNxlog(NO_ROUTE.into()),
                    }
                }
            },
        };
        if let Status::LeftToNxlog(why) = &status {
            let msg = if kind == ModuleKind::Input {
                why.clone()
            } else {
                format!(
                    "{} '{}' ({}) is left to NXLog: {why}",
                    kind.block_name(),
                    b.name,
                    d.module
                )
            };
            if options.strict {
                errors.push(d_err(d.line, format!("{msg} (--strict)")));
            } else if kind == ModuleKind::Input {
                note(&mut notes, &d.line.location, LogLevel::Warning, msg);
            }
        }
        if let (Decl::Known(t), Status::Runs | Status::NoEffect(_)) = (d.decl, &status) {
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
            let n_err = errors.len();
            let built = module(b, t, &cx, errors, &mut notes);
            for e in &mut errors[n_err..] {
                explain_extension_call(e, b, &others);
            }
            if let Some(m) = built {
                modules.push(m);
            }
        }
        all.push(Instance {
            kind,
            name: b.name.clone(),
            module: d.module.clone(),
            location: b.loc.clone(),
            status,
        });
    }

    modules::net::link_gelf(
        &mut modules
            .iter_mut()
            .map(|m| &mut m.settings)
            .collect::<Vec<_>>(),
    );
    Config {
        path: path.to_string(),
        globals,
        modules,
        routes: ran,
        defines,
        notes,
        instances: all,
        dropped_routes: dropped,
    }
}

/// What a `Module` line declares, or `None` after reporting why it cannot
/// be used in its block.
fn declare<'b>(
    b: &RawBlock,
    line: &'b Directive,
    errors: &mut Vec<Diagnostic>,
) -> Option<Declared<'b>> {
    let want = module_kind(b.kind)?;
    let written = crate::source::unquote(line.value.trim()).to_ascii_lowercase();
    let decl = match modules::find(&written) {
        Some(t) => Decl::Known(t),
        None => match kind_by_prefix(&written) {
            Some(k) => Decl::Other(k),
            None => {
                errors.push(d_err(
                    line,
                    format!(
                        "unknown module '{}' (supported: {})",
                        line.value,
                        SUPPORTED_MODULES.join(", ")
                    ),
                ));
                return None;
            }
        },
    };
    if decl.kind() != want {
        errors.push(d_err(
            line,
            format!(
                "module {written} cannot be used in <{}> ({})",
                b.kind.name(),
                kind_hint(decl.kind())
            ),
        ));
        return None;
    }
    Some(Declared {
        decl,
        module: written,
        line,
    })
}

/// Why a module on a route regmon runs cannot be: an output or processor
/// regmon lacks, or a processor other than pm_buffer.
fn refusal<'a>(
    kind: ModuleKind,
    module: &str,
    r: &Route,
    find: &dyn Fn(&str) -> Option<(usize, &'a Declared<'a>)>,
) -> String {
    let input = r.inputs.first().map_or(String::new(), |n| {
        let m = find(n).map_or("im_regmon", |(_, d)| d.module.as_str());
        format!(" from {m} input '{n}'")
    });
    match kind {
        ModuleKind::Processor => format!(
            "{module} is not supported by regmon: of the processor modules only pm_buffer is, \
             since regmon cannot change events as {module} would (route '{}' passes events{input} through it)",
            r.name
        ),
        _ => format!(
            "{module} is not supported by regmon; it receives events{input} through route '{}'",
            r.name
        ),
    }
}

/// The extension instances regmon lacks: (instance, module).
fn other_extensions(st: &Structure, declared: &[Option<Declared>]) -> Vec<(String, String)> {
    st.blocks
        .iter()
        .zip(declared)
        .filter_map(|(b, d)| {
            let d = d.as_ref()?;
            matches!(d.decl, Decl::Other(ModuleKind::Extension))
                .then(|| (b.name.clone(), d.module.clone()))
        })
        .collect()
}

/// An Exec error about an unknown function, procedure or instance, made
/// to say which extension module it belongs to when that is known.
fn explain_extension_call(e: &mut Diagnostic, b: &RawBlock, others: &[(String, String)]) {
    let quoted = |rest: &str| rest.split('\'').next().map(str::to_string);
    let here = format!(
        "this code runs in regmon (<{} {}>), so it cannot call it",
        b.kind.name(),
        b.name
    );
    if let Some(rest) = e.message.strip_prefix("unknown module instance '") {
        let Some(inst) = quoted(rest) else { return };
        if let Some((_, m)) = others.iter().find(|(i, _)| i.eq_ignore_ascii_case(&inst)) {
            e.message = format!("'{inst}' is an {m} instance, and regmon does not run {m}; {here}");
        }
        return;
    }
    let rest = e
        .message
        .strip_prefix("unknown function '")
        .or_else(|| e.message.strip_prefix("unknown procedure '"));
    let Some(name) = rest.and_then(quoted) else {
        return;
    };
    if e.message.contains(" belongs to ") {
        return;
    }
    let lname = name.to_ascii_lowercase();
    let owners: Vec<&str> = crate::lang::parser::FOREIGN
        .iter()
        .filter(|(f, _)| *f == lname)
        .map(|(_, m)| *m)
        .collect();
    // A module the file declares is the likely owner of a shared name (call()).
    let declared: Vec<&str> = owners
        .iter()
        .copied()
        .filter(|m| others.iter().any(|(_, o)| o == m))
        .collect();
    let owners = if declared.is_empty() {
        owners
    } else {
        declared
    };
    let Some(first) = owners.first() else { return };
    e.message = if owners.len() == 1 && modules::find(first).is_some() {
        format!("{name}() belongs to {first}, but regmon's {first} does not provide it")
    } else {
        format!(
            "{name}() belongs to {}, which regmon does not run; {here}",
            owners.join(" or ")
        )
    };
}

/// Where a route's Path line is (the block when it has none).
fn path_location(st: &Structure, r: &Route) -> Location {
    st.blocks
        .iter()
        .filter(|b| b.kind == BlockKind::Route)
        .find(|b| b.name == r.name)
        .and_then(|b| {
            b.directives
                .iter()
                .find(|d| d.d.name.eq_ignore_ascii_case("path"))
        })
        .map_or(r.location.clone(), |d| d.d.location.clone())
}

/// Routes must name existing inputs, processors and outputs, each in its place.
fn check_route_names(st: &Structure, routes: &[Route], errors: &mut Vec<Diagnostic>) {
    for r in routes {
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
        // Info, so that --verify lists what is accepted without effect
        let mut inert = |why: &str| {
            note(
                notes,
                &d.location,
                LogLevel::Info,
                format!("{canon} has no effect in regmon{why}"),
            )
        };
        let number = |d: &Directive| {
            d.value.trim().parse::<f64>().map(|_| ()).map_err(|_| {
                d_err(
                    d,
                    format!(
                        "invalid value '{}' for {}: expected a number of seconds",
                        d.value, d.name
                    ),
                )
            })
        };
        let res: Result<(), Diagnostic> = (|| {
            match lname.as_str() {
                "cachedir" => g.cache_dir = Some(constant_string(d, constants)?),
                "logfile" => g.log_file = Some(constant_string(d, constants)?),
                "spooldir" => {
                    g.spool_dir = Some(constant_string(d, constants)?);
                    inert(" (NXLog changes its working directory to it; regmon does not)");
                }
                "pidfile" => {
                    g.pid_file = Some(constant_string(d, constants)?);
                    inert(" (no PID file is written)");
                }
                "moduledir" => {
                    g.module_dir = Some(constant_string(d, constants)?);
                    inert(" (modules are built in)");
                }
                "loglevel" => {
                    g.log_level = Some(LogLevel::parse(crate::source::unquote(&d.value)).ok_or_else(|| {
                        d_err(d, format!("invalid LogLevel '{}' (expected DEBUG, INFO, WARNING, ERROR or CRITICAL)", d.value))
                    })?)
                }
                "dateformat" => {
                    g.date_format = DateFormat::parse(&constant_string(d, constants)?).map_err(|m| d_err(d, m))?;
                }
                "nocache" => {
                    g.no_cache = d.as_bool()?;
                    inert(" (baselines are always kept on disk, in CacheDir)");
                }
                "outboxmaxsize" => g.outbox_max_size = Some(parse_size(d)?),
                "panic" => {
                    let v = d.value.to_ascii_uppercase();
                    if !["SOFT", "HARD", "OFF"].contains(&v.as_str()) {
                        return Err(d_err(d, format!("invalid Panic '{}' (expected SOFT, HARD or OFF)", d.value)));
                    }
                    inert("");
                }
                "rootdir" => {
                    constant_string(d, constants)?;
                    inert(": NXLog changes its root directory to it (chroot, not on Windows); regmon does not, and paths in this file are not re-rooted");
                }
                "user" | "group" => {
                    constant_string(d, constants)?;
                    inert(": NXLog switches to it after start (not on Windows); regmon runs as the account that starts it");
                }
                "ignoreerrors" => {
                    d.as_bool()?;
                    inert(": regmon never starts with configuration errors");
                }
                "flowcontrol" | "flowcontrolfifo" | "persistlogqueue" | "synclogqueue" => {
                    d.as_bool()?;
                    inert(" (events wait in each input's durable outbox, bounded by OutboxMaxSize)");
                }
                "logqueuesize" | "batchsize" => {
                    d.as_integer()?;
                    inert(" (events wait in each input's durable outbox, bounded by OutboxMaxSize)");
                }
                "logqueuedir" => {
                    constant_string(d, constants)?;
                    inert(" (events wait in each input's durable outbox, in CacheDir)");
                }
                "batchflushinterval" | "readtimeout" => {
                    number(d)?;
                    inert("");
                }
                "nofreeonexit" | "suppressrepeatinglogs" | "cachesync" | "escapeglobpatterns"
                | "generatedateinutc" | "parsedateinutc" | "abortondoublesigterm" => {
                    d.as_bool()?;
                    inert("");
                }
                "cacheflushinterval" | "threads" | "stringlimit" | "cacheinvalidationtime" => {
                    if !(lname == "cacheflushinterval" && d.value.eq_ignore_ascii_case("always")) {
                        d.as_integer()?;
                    }
                    inert("");
                }
                _ => {
                    constant_string(d, constants)?;
                    inert("");
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
                "flowcontrol" | "flowcontrolfifo" | "persistlogqueue" | "synclogqueue" => {
                    d.as_bool().map(|_| ())
                }
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
                    LogLevel::Info,
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

#[cfg(test)]
mod tests {
    use crate::config::{ModuleKind, Options, Status};
    use crate::diag::LogLevel;

    const VENDOR: &str = "\
<Extension json>
    Module xm_json
</Extension>
<Extension perl>
    Module xm_perl
    PerlCode 'x.pl'
</Extension>
<Input eventlog>
    Module im_msvistalog
    AnyDirective at all
    Exec if $EventID == 4624 perl_call('x'); else convert_fields('a', 'b');
</Input>
<Input regmon>
    Module im_regmon
    RegValue 'HKLM\\Software\\*'
</Input>
<Processor buffer>
    Module pm_buffer
    MaxSize 1024
    Type Mem
</Processor>
<Output siem>
    Module om_tcp
    Host <SIEM_IP>
    Port CUSTOM_PORT
</Output>
<Output file>
    Module om_file
    File 'out.log'
    Exec to_json();
</Output>
<Output spare>
    Module om_file
    File 'spare.log'
</Output>
<Output lake>
    Module om_datalake
</Output>
<Route events>
    Path eventlog => siem
</Route>
<Route registry>
    Path regmon => buffer => file
</Route>
";

    fn status(cfg: &crate::Config, name: &str) -> Status {
        cfg.instances
            .iter()
            .find(|i| i.name == name)
            .map(|i| i.status.clone())
            .unwrap_or_else(|| panic!("no instance {name}"))
    }

    #[test]
    fn every_instance_is_classified_in_file_order() {
        let cfg = crate::parse_str(VENDOR, "v.conf").unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<(&str, &str, ModuleKind)> = cfg
            .instances
            .iter()
            .map(|i| (i.name.as_str(), i.module.as_str(), i.kind))
            .collect();
        assert_eq!(
            names,
            [
                ("json", "xm_json", ModuleKind::Extension),
                ("perl", "xm_perl", ModuleKind::Extension),
                ("eventlog", "im_msvistalog", ModuleKind::Input),
                ("regmon", "im_regmon", ModuleKind::Input),
                ("buffer", "pm_buffer", ModuleKind::Processor),
                ("siem", "om_tcp", ModuleKind::Output),
                ("file", "om_file", ModuleKind::Output),
                ("spare", "om_file", ModuleKind::Output),
                ("lake", "om_datalake", ModuleKind::Output),
            ]
        );
        let left = |s: &str| Status::LeftToNxlog(s.into());
        assert_eq!(status(&cfg, "json"), Status::Runs);
        assert_eq!(
            status(&cfg, "perl"),
            Status::NoEffect("not used by any im_regmon route".into())
        );
        assert_eq!(status(&cfg, "eventlog"), left(super::INPUT_LEFT));
        assert_eq!(status(&cfg, "regmon"), Status::Runs);
        assert_eq!(status(&cfg, "buffer"), Status::Runs);
        // The placeholders in siem are NXLog's business: only eventlog reaches it.
        assert_eq!(status(&cfg, "siem"), left(super::ONLY_DROPPED));
        assert_eq!(status(&cfg, "file"), Status::Runs);
        assert_eq!(
            status(&cfg, "spare"),
            Status::NoEffect(super::NO_ROUTE.into())
        );
        assert_eq!(status(&cfg, "lake"), left(super::NO_ROUTE));

        // Built: what runs, and the supported output in no route (checked).
        let built: Vec<&str> = cfg.modules.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(built, ["json", "regmon", "buffer", "file", "spare"]);
        assert_eq!(cfg.routes.len(), 1);
        assert_eq!(cfg.routes[0].name, "registry");
        assert_eq!(cfg.routes[0].processors, ["buffer"]);
        assert_eq!(cfg.dropped_routes.len(), 1);
        assert_eq!(cfg.dropped_routes[0].0.name, "events");
        assert_eq!(
            cfg.dropped_routes[0].1,
            "its inputs are left to NXLog (eventlog)"
        );
        let warnings: Vec<String> = cfg
            .notes
            .iter()
            .filter(|n| n.level == LogLevel::Warning)
            .map(|n| format!("{}: {}", n.location, n.message))
            .collect();
        assert_eq!(
            warnings,
            [
                "v.conf:40: route 'events' is dropped: its inputs are left to NXLog (eventlog)",
                format!("v.conf:9: {}", super::INPUT_LEFT).as_str(),
                "v.conf:32: Output 'spare' is not used in any route",
                "v.conf:36: Output 'lake' is not used in any route",
            ]
        );
    }

    #[test]
    fn strict_refuses_what_would_be_left_to_nxlog() {
        let e = crate::parse_str_with(VENDOR, "v.conf", &Options { strict: true })
            .expect_err("strict")
            .to_string();
        assert!(
            e.contains(&format!("v.conf:9: {} (--strict)", super::INPUT_LEFT)),
            "{e}"
        );
        assert!(
            e.contains("v.conf:23: Output 'siem' (om_tcp) is left to NXLog: only routes regmon does not run reach it (--strict)"),
            "{e}"
        );
        assert!(
            e.contains("v.conf:37: Output 'lake' (om_datalake) is left to NXLog"),
            "{e}"
        );
    }

    #[test]
    fn a_mixed_route_keeps_the_inputs_regmon_runs() {
        let text = VENDOR.replace("Path eventlog => siem", "Path eventlog, regmon => siem");
        // siem is now reached from regmon: its placeholders are regmon's business.
        let e = crate::parse_str(&text, "v.conf")
            .expect_err("placeholders")
            .to_string();
        assert!(
            e.contains("v.conf:24: '<SIEM_IP>' looks like a placeholder"),
            "{e}"
        );
        assert!(
            e.contains("v.conf:25: 'CUSTOM_PORT' looks like a placeholder"),
            "{e}"
        );
        let text = text
            .replace("<SIEM_IP>", "127.0.0.1")
            .replace("CUSTOM_PORT", "514");
        let cfg = crate::parse_str(&text, "v.conf").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.routes[0].inputs, ["regmon"]);
        assert!(cfg.dropped_routes.is_empty());
        assert_eq!(status(&cfg, "siem"), Status::Runs);
        assert!(cfg.notes.iter().any(|n| n.level == LogLevel::Info
            && n.message
                == "route 'events': eventlog left to NXLog; regmon runs the route for regmon"));
    }

    #[test]
    fn without_routes_every_kept_input_reaches_every_output() {
        let text = "<Input eventlog>\nModule im_msvistalog\n</Input>\n\
                    <Input regmon>\nModule im_regmon\nRegValue 'HKLM\\x\\*'\n</Input>\n\
                    <Output es>\nModule om_elasticsearch\n</Output>\n";
        let e = crate::parse_str(text, "d.conf")
            .expect_err("es")
            .to_string();
        assert!(
            e.contains("d.conf:9: om_elasticsearch is not supported by regmon; it receives events from im_regmon input 'regmon' through route 'default'"),
            "{e}"
        );
        let cfg = crate::parse_str(
            &text.replace("om_elasticsearch", "om_udp\nHost 127.0.0.1"),
            "d.conf",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.routes[0].inputs, ["regmon"]);
        assert_eq!(cfg.routes[0].outputs, ["es"]);
    }

    #[test]
    fn module_names_must_fit_their_block() {
        let e = crate::parse_str("<Input x>\nModule om_whatever\n</Input>\n", "k.conf")
            .expect_err("kind")
            .to_string();
        assert!(
            e.contains("k.conf:2: module om_whatever cannot be used in <Input> (an output module"),
            "{e}"
        );
        let e = crate::parse_str("<Input x>\nModule whatever\n</Input>\n", "k.conf")
            .expect_err("kind")
            .to_string();
        assert!(e.contains("k.conf:2: unknown module 'whatever'"), "{e}");
    }

    #[test]
    fn unknown_extension_functions_name_their_module() {
        let text = "<Extension py>\nModule xm_python\n</Extension>\n\
                    <Input regmon>\nModule im_regmon\nRegValue 'HKLM\\x\\*'\nExec call('f');\nExec exec('/bin/true');\n</Input>\n";
        let e = crate::parse_str(text, "f.conf")
            .expect_err("calls")
            .to_string();
        assert!(
            e.contains("f.conf:7:6: call() belongs to xm_python, which regmon does not run"),
            "{e}"
        );
        assert!(
            e.contains("f.conf:8:6: exec() belongs to xm_exec, which regmon does not run"),
            "{e}"
        );
        // The same calls in an input left to NXLog are not compiled.
        let cfg = crate::parse_str(&text.replace("im_regmon", "im_file"), "f.conf");
        assert!(cfg.is_ok(), "{cfg:?}");
    }
}
