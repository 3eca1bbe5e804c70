//! What Exec code may use where it is compiled: the [`ExecScope`], and the
//! [`ExecApi`] each module type offers. The parser learns about module types
//! only through the scope, so it does not depend on the module table
//! (`modules`, which builds scopes and itself needs the parser).

use super::ast::Rewrite;
use crate::extension::Formatter;
use crate::record::JsonOptions;
use crate::syslog::SyslogOptions;
use crate::value::DateFormat;
use crate::value::Value;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What one module type offers Exec code; one per entry of the module table.
#[derive(Clone, Copy, Debug)]
pub struct ExecApi {
    /// Procedures the host runs (see `ProcedureCall`): (name, argument
    /// count); a name listed twice takes either count.
    pub procedures: &'static [(&'static str, usize)],
    /// Its procedures may be called from any module without naming an
    /// instance (NXLog's xm_fileop); the first instance of the type runs them.
    pub global: bool,
    /// `instance->to_json()` and `instance->parse_json()` are the built-in
    /// to_json()/parse_json() (xm_json).
    pub json: bool,
    /// Messages about its procedures used where they do not exist name the
    /// module they belong to (im_regmon's start_scan()).
    pub owner_hint: bool,
}

impl ExecApi {
    /// No procedures (most modules).
    pub const NONE: ExecApi = ExecApi {
        procedures: &[],
        global: false,
        json: false,
        owner_hint: false,
    };

    /// The argument counts (fewest, most) of procedure `name` (lower case).
    pub(crate) fn arity(&self, name: &str) -> Option<(usize, usize)> {
        let counts = self
            .procedures
            .iter()
            .filter(|(p, _)| *p == name)
            .map(|(_, n)| *n);
        let min = counts.clone().min()?;
        Some((min, counts.max().unwrap_or(min)))
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.procedures.iter().any(|(p, _)| *p == name)
    }
}

/// What Exec code may use where it is compiled. Built by the module table
/// (`ExecScope::new`, and validation), which knows every module type.
#[derive(Clone, Debug)]
pub struct ExecScope {
    /// The module instance the code belongs to (`regmon` in `<Input regmon>`).
    pub instance: String,
    /// Its module type (`im_regmon`); decides which module procedures exist.
    pub module: String,
    /// Settings of the xm_json instance, `None` when the configuration has
    /// none (then to_json()/parse_json() are unknown, as in NXLog).
    pub json: Option<JsonOptions>,
    /// The global DateFormat (datetimes in string context).
    pub date_format: DateFormat,
    /// Every module instance of the configuration: (instance, module type),
    /// for `instance->procedure()` calls.
    pub instances: Vec<(String, String)>,
    /// Every xm_syslog instance with its settings, in file order: to_syslog_*()
    /// use the first one's, `instance->to_syslog_*()` that instance's.
    pub syslog: Vec<(String, SyslogOptions)>,
    /// The settings of every xm_kvp, xm_csv and xm_rewrite instance, in
    /// file order: to_kvp(), to_csv() and process() compile with them.
    pub extensions: Vec<(String, Extension)>,
    /// The module variables (create_var()...) of the instance: shared by
    /// every program compiled in this scope (its Exec and Schedules).
    pub(crate) vars: Vars,
    /// Every supported module type's name and Exec interface, in table order.
    pub(crate) types: Vec<(&'static str, &'static ExecApi)>,
}

/// What an extension instance gives the Exec code that calls it.
#[derive(Clone, Debug)]
pub enum Extension {
    /// to_kvp() (xm_kvp) or to_csv() (xm_csv).
    Format(Arc<Formatter>),
    /// process() (xm_rewrite).
    Rewrite(Arc<Rewrite>),
}

impl ExecScope {
    /// The settings of extension instance `instance` (any case).
    pub(crate) fn extension(&self, instance: &str) -> Option<&Extension> {
        self.extensions
            .iter()
            .find(|(i, _)| i.eq_ignore_ascii_case(instance))
            .map(|(_, e)| e)
    }

    /// The first instance's formatter whose procedure is `name`
    /// (to_kvp/to_csv), for calls that name no instance.
    pub(crate) fn first_formatter(&self, name: &str) -> Option<&Arc<Formatter>> {
        self.extensions.iter().find_map(|(_, e)| match e {
            Extension::Format(f) if f.name() == name => Some(f),
            _ => None,
        })
    }

    /// Whether an instance of module type `module` exists (xm_fileop's
    /// functions need one, as in NXLog).
    pub(crate) fn has_instance_of(&self, module: &str) -> bool {
        self.instances
            .iter()
            .any(|(_, m)| m.eq_ignore_ascii_case(module))
    }

    /// The Exec interface of module type `module` (any case); unknown types
    /// offer nothing.
    pub(crate) fn api(&self, module: &str) -> &'static ExecApi {
        self.types
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(module))
            .map_or(&ExecApi::NONE, |(_, a)| a)
    }

    /// The Exec interface of the code's own module type.
    pub(crate) fn own_api(&self) -> &'static ExecApi {
        self.api(&self.module)
    }

    /// The module types whose procedures messages attribute to them.
    pub(crate) fn hinted_types(
        &self,
    ) -> impl Iterator<Item = (&'static str, &'static ExecApi)> + '_ {
        self.types.iter().copied().filter(|(_, a)| a.owner_hint)
    }
}

/// A module instance's variables (create_var(), set_var(), get_var()):
/// name (lower case) to value and the time it expires, if any. Shared by
/// the programs of one instance.
#[derive(Clone, Debug, Default)]
pub struct Vars(Arc<Mutex<VarMap>>);

/// Variable name (lower case) to its value and expiry.
pub(crate) type VarMap = HashMap<String, (Value, Option<DateTime<Utc>>)>;

/// The most variables one module instance may hold; more is a run-time
/// error (a per-event name would otherwise grow without bound).
pub const MAX_VARS: usize = 100_000;

impl Vars {
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut VarMap) -> T) -> T {
        // A panic elsewhere while holding the lock leaves a usable map.
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }
}
