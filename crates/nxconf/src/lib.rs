//! # nxconf: NXLog configuration files and the Exec language
//!
//! regmon reads the `nxlog.conf` its users already have. This crate turns such
//! a file into a typed, validated [`Config`] and runs its Exec code over event
//! [`Record`]s. It also owns the event model the whole project shares.
//!
//! Layout, in the order data flows:
//!
//! | module | what it does |
//! |---|---|
//! | `source` | reads files into logical lines: comments, `\` continuation, `define`/`%NAME%`, `envvar`, `include` (wildcards, cycle check), `include_stdout`; blocks kept as text (`<QueryXML>`) |
//! | `block` | the block parser: lines to raw `<Input>`, `<Route>`... blocks with their `<Schedule>` and `<Exec>` parts; blocks kept as text become directives |
//! | `directive` | a [`Directive`] as written and the readings of its value (boolean, integer, string, string expression) |
//! | `modules` | the module table: each supported module type's kind, directives, Exec procedures and settings builder ([`ImRegmon`], [`OmFile`]...) |
//! | `validate` | globals, the directives every module takes, routes, schedules; the rest from the module table; compiles every Exec |
//! | `config` | the public model: [`Config`], [`Module`], [`Route`], [`Schedule`] |
//! | `lang` | the Exec language: lexer, AST, scope, parser with load-time name and type checks |
//! | `eval` | runs a [`Program`] over a [`Record`] through a host [`ExecContext`] |
//! | `gelf` | a record as GELF 1.1 JSON (xm_gelf's output types) |
//! | `record`, `value` | the event model ([`Record`], [`Value`]), JSON, the `Key=Value` raw event, datetime formats |
//! | `extension` | xm_kvp's to_kvp(), xm_csv's to_csv() (NXLog's exact bytes), xm_rewrite's field operations |
//! | `syslog` | xm_syslog's to_syslog_bsd(), to_syslog_ietf(), to_syslog_snare(): NXLog's exact bytes |
//! | `schedule` | `When` (cron and `@daily`...), `Every`, `First` |
//! | `diag` | [`Diagnostic`]s: `file:line[:col]: message` plus the quoted line |
//!
//! Every problem found while loading is reported (not only the first), each
//! naming file and line. A host program typically does:
//!
//! ```no_run
//! let config = nxconf::load("regmon.conf").unwrap_or_else(|e| panic!("{e}"));
//! for input in config.inputs() {
//!     if let Some(rm) = input.im_regmon() {
//!         println!("{} scans {:?} every {}s", input.name, rm.reg_values, rm.scan_interval);
//!     }
//! }
//! ```
//!
//! and then, per event, `module.exec.as_ref().map(|p| p.run(&mut record, &mut ctx))`.

mod block;
pub mod config;
pub mod diag;
mod directive;
pub mod eval;
pub mod extension;
mod fileop;
pub mod gelf;
pub mod lang;
mod modules;
pub mod record;
pub mod schedule;
mod source;
pub mod syslog;
mod validate;
pub mod value;

pub use config::{
    parse_bool, parse_int, BufferType, Config, DigestAlgorithm, Directive, Globals, HiveFile,
    HostPort, ImInternal, ImRegmon, Instance, Module, ModuleKind, ModuleSettings, Net, OmFile,
    OmSsl, OmTcp, OmUdp, Options, OutputType, PathPattern, PmBuffer, Route, Schedule, Secret,
    Status, Tls, TlsPath, TlsVersion, XmGelf, XmJson, XmSyslog,
};
pub use diag::{Diagnostic, Errors, Location, LogLevel, Note};
pub use eval::{
    system_hostname, CollectingContext, ExecContext, Outcome, ProcedureCall, Program, StringExpr,
};
pub use lang::parser::function_names;
pub use lang::scope::{ExecApi, ExecScope};
/// om_http's settings (BatchMode, Compression...).
pub use modules::om_http;
/// om_kafka's settings.
pub use modules::om_kafka;
pub use modules::{
    module_procedures, DirectiveSpec, ModuleType, ValueType, MODULES, SUPPORTED_MODULES,
};
pub use record::{JsonOptions, Record};
pub use schedule::{parse_every, parse_first, CronSpec, When};
pub use value::{parse_datetime, DateFormat, Type, Value, Zone};

use std::path::Path;

/// Load and validate a configuration file (includes are read relative to it).
pub fn load(path: impl AsRef<Path>) -> Result<Config, Errors> {
    load_with(path, &Options::default())
}

/// [`load`] with options (`--strict`).
pub fn load_with(path: impl AsRef<Path>, options: &Options) -> Result<Config, Errors> {
    let path = path.as_ref();
    let display = path.display().to_string();
    let mut r = source::Reader::new();
    r.read_file(path, &display, None);
    finish(&display, r, options)
}

/// Parse and validate configuration text. `virtual_path` names it in
/// messages; `include`s resolve relative to its folder.
pub fn parse_str(text: &str, virtual_path: impl AsRef<Path>) -> Result<Config, Errors> {
    parse_str_with(text, virtual_path, &Options::default())
}

/// [`parse_str`] with options (`--strict`).
pub fn parse_str_with(
    text: &str,
    virtual_path: impl AsRef<Path>,
    options: &Options,
) -> Result<Config, Errors> {
    let p = virtual_path.as_ref();
    let display = p.display().to_string();
    let mut r = source::Reader::new();
    if let Some(kind) = source::utf16_kind(text.as_bytes()) {
        // text decoded from UTF-16 as if it were UTF-8: say so once
        r.errors.push(Diagnostic::new(
            &Location::new(&display, 0),
            "",
            format!("'{display}' is {kind} text; configuration files must be UTF-8"),
        ));
        return finish(&display, r, options);
    }
    r.read_text(text, &display, p.parent().unwrap_or(Path::new("")));
    finish(&display, r, options)
}

fn finish(display: &str, r: source::Reader, options: &Options) -> Result<Config, Errors> {
    let mut errors = r.errors;
    let st = block::parse_structure(&r.lines, &mut errors);
    let cfg = validate::build(display, st, r.defines, r.notes, options, &mut errors);
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(Errors(errors))
    }
}
