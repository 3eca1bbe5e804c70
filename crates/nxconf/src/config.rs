//! The configuration model: what a host program gets from [`crate::load`].
//! Module types' settings are defined with their module in `modules`
//! and re-exported here.

use crate::diag::{Location, LogLevel, Note};
use crate::eval::Program;
use crate::record::JsonOptions;
use crate::schedule::When;
use crate::value::DateFormat;
use chrono::NaiveDateTime;
use std::time::Duration;

pub use crate::directive::{parse_bool, parse_int, Directive};
pub use crate::modules::im_internal::ImInternal;
pub use crate::modules::im_regmon::{DigestAlgorithm, HiveFile, ImRegmon, PathPattern};
pub use crate::modules::net::{HostPort, Net, OutputType};
pub use crate::modules::om_file::OmFile;
pub use crate::modules::om_ssl::OmSsl;
pub use crate::modules::om_tcp::OmTcp;
pub use crate::modules::om_udp::OmUdp;
pub use crate::modules::pm_buffer::{BufferType, PmBuffer};
pub use crate::modules::tls::{Secret, Tls, TlsPath, TlsVersion};
pub use crate::modules::xm_gelf::XmGelf;
pub use crate::modules::xm_json::XmJson;
pub use crate::modules::xm_syslog::XmSyslog;
pub use crate::modules::{ModuleKind, ModuleSettings};

/// A loaded and validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The top-level file as given.
    pub path: String,
    pub globals: Globals,
    /// Module instances in file order.
    pub modules: Vec<Module>,
    pub routes: Vec<Route>,
    /// `define`s and `envvar`s in effect at the end of the file.
    pub defines: Vec<(String, String)>,
    /// Non-fatal messages for the host to log (inert directives, unused modules).
    pub notes: Vec<Note>,
    /// Every module instance of the file, in file order, with what regmon
    /// does with it (`--verify` lists them); those that run are also in
    /// `modules`.
    pub instances: Vec<Instance>,
    /// Routes of the file regmon does not run (they carry only inputs
    /// left to NXLog), each with the reason.
    pub dropped_routes: Vec<(Route, String)>,
}

/// What regmon does with a module instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// regmon runs it.
    Runs,
    /// Accepted and kept, but it changes nothing in regmon (the reason).
    NoEffect(String),
    /// Not run: left to NXLog (the reason). Routes carrying only such
    /// inputs are dropped; with `--strict` this is an error instead.
    LeftToNxlog(String),
}

/// A module instance as the file declares it, whatever its module.
#[derive(Clone, Debug)]
pub struct Instance {
    pub kind: ModuleKind,
    pub name: String,
    /// Module type as written, lower case.
    pub module: String,
    pub location: Location,
    pub status: Status,
}

/// How a configuration is loaded.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--strict`: modules regmon would leave to NXLog are errors.
    pub strict: bool,
}

impl Config {
    /// A module instance by name (case-insensitive).
    pub fn module(&self, name: &str) -> Option<&Module> {
        self.modules
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case(name))
    }
    pub fn inputs(&self) -> impl Iterator<Item = &Module> {
        self.modules.iter().filter(|m| m.kind == ModuleKind::Input)
    }
    pub fn outputs(&self) -> impl Iterator<Item = &Module> {
        self.modules.iter().filter(|m| m.kind == ModuleKind::Output)
    }
    pub fn extensions(&self) -> impl Iterator<Item = &Module> {
        self.modules
            .iter()
            .filter(|m| m.kind == ModuleKind::Extension)
    }
    /// The xm_json settings to_json() uses (first xm_json instance).
    pub fn json_options(&self) -> Option<&JsonOptions> {
        self.modules.iter().find_map(|m| match &m.settings {
            ModuleSettings::XmJson(x) => Some(&x.options),
            _ => None,
        })
    }
}

/// Global directives.
#[derive(Clone, Debug, Default)]
pub struct Globals {
    pub cache_dir: Option<String>,
    pub log_file: Option<String>,
    pub log_level: Option<LogLevel>,
    pub spool_dir: Option<String>,
    pub pid_file: Option<String>,
    /// Accepted for compatibility; regmon has no loadable modules.
    pub module_dir: Option<String>,
    /// Datetimes in string context (default `YYYY-MM-DD hh:mm:ss`).
    pub date_format: DateFormat,
    /// `NoCache TRUE`: do not keep the baseline on disk.
    pub no_cache: bool,
    /// `OutboxMaxSize` (our extension): the bound of each input's queue of
    /// undelivered events, in bytes.
    pub outbox_max_size: Option<u64>,
    /// Every global directive as written.
    pub directives: Vec<Directive>,
}

/// A module instance (`<Input regmon> Module im_regmon ... </Input>`).
#[derive(Clone, Debug)]
pub struct Module {
    pub kind: ModuleKind,
    /// Instance name (`regmon`).
    pub name: String,
    /// Module type, lower case (`im_regmon`).
    pub module: String,
    pub location: Location,
    /// Typed, validated settings of the module type.
    pub settings: ModuleSettings,
    /// Every directive as written (except Exec), in order.
    pub directives: Vec<Directive>,
    /// All Exec directives and `<Exec>` blocks, compiled in order.
    pub exec: Option<Program>,
    pub schedules: Vec<Schedule>,
}

impl Module {
    /// The first directive named `name` (case-insensitive).
    pub fn directive(&self, name: &str) -> Option<&Directive> {
        self.directives
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }
    /// Every directive named `name`, in order (repeatable directives).
    pub fn directives_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Directive> + 'a {
        self.directives
            .iter()
            .filter(move |d| d.name.eq_ignore_ascii_case(name))
    }
    pub fn im_regmon(&self) -> Option<&ImRegmon> {
        match &self.settings {
            ModuleSettings::ImRegmon(x) => Some(x),
            _ => None,
        }
    }
    pub fn om_file(&self) -> Option<&OmFile> {
        match &self.settings {
            ModuleSettings::OmFile(x) => Some(x),
            _ => None,
        }
    }
    pub fn pm_buffer(&self) -> Option<&PmBuffer> {
        match &self.settings {
            ModuleSettings::PmBuffer(x) => Some(x),
            _ => None,
        }
    }
    pub fn xm_json(&self) -> Option<&XmJson> {
        match &self.settings {
            ModuleSettings::XmJson(x) => Some(x),
            _ => None,
        }
    }
}

/// A `<Schedule>` block.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub when: Option<When>,
    pub every: Option<Duration>,
    /// When an `Every` schedule first runs (local time).
    pub first: Option<NaiveDateTime>,
    /// The raw texts as written.
    pub when_text: Option<String>,
    pub every_text: Option<String>,
    pub first_text: Option<String>,
    pub exec: Program,
    pub location: Location,
}

/// A `<Route>` block: `Path in1, in2 => out1, out2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub inputs: Vec<String>,
    /// Processor instances between inputs and outputs, in order
    /// (`Path in => buffer => out`); only pm_buffer is supported.
    pub processors: Vec<String>,
    pub outputs: Vec<String>,
    pub priority: Option<i64>,
    pub location: Location,
}
