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
//! | `source` | reads files into logical lines: comments, `\` continuation, `define`/`%NAME%`, `envvar`, `include` (wildcards, cycle check) |
//! | `config` | the block parser (`<Input>`, `<Schedule>`, `<Exec>`...) and the public model: [`Config`], [`Module`], [`Route`], [`Schedule`] |
//! | `validate` | globals, the supported modules (im_regmon, xm_json, xm_fileop, om_file), common directives, routes; compiles every Exec |
//! | `lang` | the Exec language: lexer, AST, parser with load-time name and type checks |
//! | `eval` | runs a [`Program`] over a [`Record`] through a host [`ExecContext`] |
//! | `record`, `value` | the event model ([`Record`], [`Value`]), to_json(), the `Key=Value` raw event, datetime formats |
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

pub mod config;
pub mod diag;
pub mod eval;
pub mod lang;
pub mod record;
pub mod schedule;
mod source;
mod validate;
pub mod value;

pub use config::{
    parse_bool, parse_int, Config, DigestAlgorithm, Directive, Globals, HiveFile, ImRegmon, Module,
    ModuleKind, ModuleSettings, OmFile, PathPattern, Route, Schedule, XmJson,
};
pub use diag::{Diagnostic, Errors, Location, LogLevel, Note};
pub use eval::{
    system_hostname, CollectingContext, ExecContext, Outcome, ProcedureCall, Program, StringExpr,
};
pub use lang::parser::{function_names, module_procedures, ExecScope};
pub use record::{JsonOptions, Record};
pub use schedule::{parse_every, parse_first, CronSpec, When};
pub use validate::SUPPORTED_MODULES;
pub use value::{parse_datetime, DateFormat, Type, Value, Zone};

use std::path::Path;

/// Load and validate a configuration file (includes are read relative to it).
pub fn load(path: impl AsRef<Path>) -> Result<Config, Errors> {
    let path = path.as_ref();
    let display = path.display().to_string();
    let mut r = source::Reader::new();
    r.read_file(path, &display, None);
    finish(&display, r)
}

/// Parse and validate configuration text. `virtual_path` names it in
/// messages; `include`s resolve relative to its folder.
pub fn parse_str(text: &str, virtual_path: impl AsRef<Path>) -> Result<Config, Errors> {
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
        return finish(&display, r);
    }
    r.read_text(text, &display, p.parent().unwrap_or(Path::new("")));
    finish(&display, r)
}

fn finish(display: &str, r: source::Reader) -> Result<Config, Errors> {
    let mut errors = r.errors;
    let st = config::parse_structure(&r.lines, &mut errors);
    let cfg = validate::build(display, st, r.defines, r.notes, &mut errors);
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(Errors(errors))
    }
}
