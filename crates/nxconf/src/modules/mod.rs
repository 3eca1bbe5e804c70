//! The module table: every supported module type, one entry each, with its
//! kind, directives, what it offers Exec code, and the builder that turns a
//! checked block into the typed settings regmon uses. Validation and the
//! Exec parser know module types only through this table.
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | [`MODULES`], [`ModuleSettings`], scopes built from the table |
//! | `spec` | the vocabulary: [`ModuleKind`], [`DirectiveSpec`], the builder's `Build` |
//! | `im_regmon` | the registry monitor input: [`ImRegmon`](im_regmon::ImRegmon), Digest, HiveFile |
//! | `om_file` | the file output: [`OmFile`](om_file::OmFile) |
//! | `om_http` | the HTTP(S) output: [`OmHttp`](om_http::OmHttp) |
//! | `om_kafka` | the Kafka output: [`OmKafka`](om_kafka::OmKafka) |
//! | `xm_json` | to_json()/parse_json() settings: [`XmJson`](xm_json::XmJson) |
//! | `xm_fileop` | file_cycle() |
//! | `net` | what network outputs share: [`Net`](net::Net) (Host, Port, LocalPort, OutputType) |
//! | `om_tcp`, `om_udp`, `om_ssl` | the TCP, UDP and TLS outputs (`tls`: the TLS directives) |
//! | `xm_gelf` | GELF output types' settings |
//! | `xm_syslog` | to_syslog_*() settings: [`XmSyslog`](xm_syslog::XmSyslog) |
//! | `im_internal` | regmon's own log as events |
//! | `pm_buffer` | a route's buffer: bounds the outbox ([`PmBuffer`](pm_buffer::PmBuffer)) |
//! | `xm_kvp`, `xm_csv` | to_kvp() and to_csv() settings (`crate::extension` formats) |
//! | `xm_rewrite` | Keep, Delete, Rename and Exec, applied by `instance->process()` |
//!
//! ## Adding a module type (say om_udp)
//!
//! 1. Write `om_udp.rs`: its settings struct, `DIRECTIVES` (name, value
//!    type, default, repeatable), `EXEC` (procedures with argument counts,
//!    or [`ExecApi::NONE`]) and `build(&mut Build) -> Option<OmUdp>`, which
//!    reads the directives (already checked for unknown names and
//!    repetitions) and reports bad values through `Build`.
//! 2. Add `pub mod om_udp;`, a [`ModuleSettings`] variant, and one
//!    [`ModuleType`] entry to [`MODULES`]. Nothing else: the validator takes
//!    the directive list, kind and builder from the entry, the parser the
//!    procedures. (A typed accessor on `config::Module`, like `om_file()`,
//!    is optional.)
//!
//! Exec code of a module's own block runs in regmon; host procedures reach
//! it as a `ProcedureCall` naming the module type.

pub mod im_internal;
pub mod im_regmon;
pub mod net;
pub mod om_file;
pub mod om_http;
pub mod om_kafka;
pub mod om_ssl;
pub mod om_tcp;
pub mod om_udp;
pub mod pm_buffer;
mod spec;
pub mod tls;
pub mod xm_csv;
pub mod xm_fileop;
pub mod xm_gelf;
pub mod xm_json;
pub mod xm_kvp;
pub mod xm_rewrite;
pub mod xm_syslog;

pub(crate) use spec::Build;
pub use spec::{DirectiveSpec, ModuleKind, ValueType};

use crate::block::RawBlock;
use crate::diag::Diagnostic;
use crate::directive::{constant_string, Directive};
use crate::extension::Formatter;
use crate::lang::ast::Rewrite;
use crate::lang::scope::{ExecApi, ExecScope, Extension};
use crate::record::JsonOptions;
use crate::syslog::SyslogOptions;
use crate::value::DateFormat;
use std::sync::Arc;

/// Typed settings per module type.
#[derive(Clone, Debug)]
pub enum ModuleSettings {
    ImRegmon(Box<im_regmon::ImRegmon>),
    XmJson(xm_json::XmJson),
    OmFile(om_file::OmFile),
    OmHttp(Box<om_http::OmHttp>),
    /// xm_fileop: no directives; its procedures (file_cycle()) run in Exec.
    XmFileop,
    OmTcp(om_tcp::OmTcp),
    OmUdp(om_udp::OmUdp),
    OmSsl(Box<om_ssl::OmSsl>),
    XmGelf(xm_gelf::XmGelf),
    XmSyslog(xm_syslog::XmSyslog),
    OmKafka(om_kafka::OmKafka),
    ImInternal(im_internal::ImInternal),
    PmBuffer(pm_buffer::PmBuffer),
    XmKvp(xm_kvp::XmKvp),
    XmCsv(xm_csv::XmCsv),
    XmRewrite(xm_rewrite::XmRewrite),
}

/// Reads to_json()/parse_json() settings from a block (constant values
/// compile in the given scope; problems are appended).
pub(crate) type ReadJsonOptions = fn(&RawBlock, &ExecScope, &mut Vec<Diagnostic>) -> JsonOptions;

/// One supported module type.
#[derive(Debug)]
pub struct ModuleType {
    /// The `Module` value, lower case (`im_regmon`).
    pub name: &'static str,
    pub kind: ModuleKind,
    /// Its own directives (Module, Exec and the common queueing directives
    /// are accepted everywhere), in the order messages list them.
    pub directives: &'static [DirectiveSpec],
    /// NXLog directives of this type that regmon refuses by name.
    pub unsupported: &'static [&'static str],
    /// Procedures Exec code may call.
    pub exec: ExecApi,
    /// For the type whose instance configures to_json()/parse_json()
    /// (xm_json): its settings, read before any Exec is compiled.
    pub(crate) json_options: Option<ReadJsonOptions>,
    /// The typed settings of a checked block; `None` after reporting errors.
    pub(crate) build: fn(&mut Build) -> Option<ModuleSettings>,
}

/// Every supported module type; messages list them in this order.
pub const MODULES: &[ModuleType] = &[
    ModuleType {
        name: "im_regmon",
        kind: ModuleKind::Input,
        directives: im_regmon::DIRECTIVES,
        unsupported: &[],
        exec: im_regmon::EXEC,
        json_options: None,
        build: |cx| im_regmon::build(cx).map(|x| ModuleSettings::ImRegmon(Box::new(x))),
    },
    ModuleType {
        name: "xm_json",
        kind: ModuleKind::Extension,
        directives: xm_json::DIRECTIVES,
        unsupported: xm_json::UNSUPPORTED,
        exec: xm_json::EXEC,
        json_options: Some(xm_json::json_options),
        build: |cx| xm_json::build(cx).map(ModuleSettings::XmJson),
    },
    ModuleType {
        name: "xm_fileop",
        kind: ModuleKind::Extension,
        directives: xm_fileop::DIRECTIVES,
        unsupported: &[],
        exec: xm_fileop::EXEC,
        json_options: None,
        build: |cx| {
            xm_fileop::build(cx);
            Some(ModuleSettings::XmFileop)
        },
    },
    ModuleType {
        name: "xm_syslog",
        kind: ModuleKind::Extension,
        directives: xm_syslog::DIRECTIVES,
        unsupported: &[],
        exec: xm_syslog::EXEC,
        json_options: None,
        build: |cx| xm_syslog::build(cx).map(ModuleSettings::XmSyslog),
    },
    ModuleType {
        name: "om_file",
        kind: ModuleKind::Output,
        directives: om_file::DIRECTIVES,
        unsupported: &[],
        exec: om_file::EXEC,
        json_options: None,
        build: |cx| om_file::build(cx).map(ModuleSettings::OmFile),
    },
    ModuleType {
        name: "om_tcp",
        kind: ModuleKind::Output,
        directives: om_tcp::DIRECTIVES,
        unsupported: &[],
        exec: om_tcp::EXEC,
        json_options: None,
        build: |cx| om_tcp::build(cx).map(ModuleSettings::OmTcp),
    },
    ModuleType {
        name: "om_udp",
        kind: ModuleKind::Output,
        directives: om_udp::DIRECTIVES,
        unsupported: &[],
        exec: om_udp::EXEC,
        json_options: None,
        build: |cx| om_udp::build(cx).map(ModuleSettings::OmUdp),
    },
    ModuleType {
        name: "xm_gelf",
        kind: ModuleKind::Extension,
        directives: xm_gelf::DIRECTIVES,
        unsupported: &[],
        exec: xm_gelf::EXEC,
        json_options: None,
        build: |cx| xm_gelf::build(cx).map(ModuleSettings::XmGelf),
    },
    ModuleType {
        name: "om_http",
        kind: ModuleKind::Output,
        directives: om_http::DIRECTIVES,
        unsupported: om_http::UNSUPPORTED,
        exec: om_http::EXEC,
        json_options: None,
        build: |cx| om_http::build(cx).map(|x| ModuleSettings::OmHttp(Box::new(x))),
    },
    ModuleType {
        name: "om_ssl",
        kind: ModuleKind::Output,
        directives: om_ssl::DIRECTIVES,
        unsupported: om_ssl::UNSUPPORTED,
        exec: om_ssl::EXEC,
        json_options: None,
        build: |cx| om_ssl::build(cx).map(|x| ModuleSettings::OmSsl(Box::new(x))),
    },
    ModuleType {
        name: "om_kafka",
        kind: ModuleKind::Output,
        directives: om_kafka::DIRECTIVES,
        unsupported: om_kafka::UNSUPPORTED,
        exec: om_kafka::EXEC,
        json_options: None,
        build: |cx| om_kafka::build(cx).map(ModuleSettings::OmKafka),
    },
    ModuleType {
        name: "im_internal",
        kind: ModuleKind::Input,
        directives: im_internal::DIRECTIVES,
        unsupported: &[],
        exec: im_internal::EXEC,
        json_options: None,
        build: |cx| im_internal::build(cx).map(ModuleSettings::ImInternal),
    },
    ModuleType {
        name: "pm_buffer",
        kind: ModuleKind::Processor,
        directives: pm_buffer::DIRECTIVES,
        unsupported: &[],
        exec: pm_buffer::EXEC,
        json_options: None,
        build: |cx| pm_buffer::build(cx).map(ModuleSettings::PmBuffer),
    },
    ModuleType {
        name: "xm_kvp",
        kind: ModuleKind::Extension,
        directives: xm_kvp::DIRECTIVES,
        unsupported: &[],
        exec: xm_kvp::EXEC,
        json_options: None,
        build: |cx| xm_kvp::build(cx).map(ModuleSettings::XmKvp),
    },
    ModuleType {
        name: "xm_csv",
        kind: ModuleKind::Extension,
        directives: xm_csv::DIRECTIVES,
        unsupported: &[],
        exec: xm_csv::EXEC,
        json_options: None,
        build: |cx| xm_csv::build(cx).map(ModuleSettings::XmCsv),
    },
    ModuleType {
        name: "xm_rewrite",
        kind: ModuleKind::Extension,
        directives: xm_rewrite::DIRECTIVES,
        unsupported: &[],
        exec: xm_rewrite::EXEC,
        json_options: None,
        build: |cx| xm_rewrite::build(cx).map(ModuleSettings::XmRewrite),
    },
];

/// Supported module types, for messages.
pub const SUPPORTED_MODULES: [&str; MODULES.len()] = {
    let mut names = [""; MODULES.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = MODULES[i].name;
        i += 1;
    }
    names
};

/// The module type named `name` (any case).
pub fn find(name: &str) -> Option<&'static ModuleType> {
    MODULES.iter().find(|t| t.name.eq_ignore_ascii_case(name))
}

/// Procedures a module type exports to Exec code: (name, argument count);
/// a name listed twice takes either count.
pub fn module_procedures(module: &str) -> &'static [(&'static str, usize)] {
    find(module).map_or(&[], |t| t.exec.procedures)
}

impl ExecScope {
    /// A scope for tests and tools: one module, with or without xm_json.
    /// (Defined here because a scope carries every module type's Exec
    /// interface, from the table.)
    pub fn new(instance: &str, module: &str, with_json: bool) -> Self {
        scope(
            instance,
            module,
            with_json.then(JsonOptions::default),
            DateFormat::default(),
            vec![(instance.to_string(), module.to_string())],
            ExtensionSettings::default(),
        )
    }
}

/// The scope of Exec code in a module instance of a configuration.
pub(crate) fn scope(
    instance: &str,
    module: &str,
    json: Option<JsonOptions>,
    date_format: DateFormat,
    instances: Vec<(String, String)>,
    ext: ExtensionSettings,
) -> ExecScope {
    ExecScope {
        instance: instance.to_string(),
        module: module.to_string(),
        json,
        date_format,
        instances,
        syslog: ext.syslog,
        extensions: ext.others,
        vars: crate::lang::scope::Vars::default(),
        types: MODULES.iter().map(|t| (t.name, &t.exec)).collect(),
    }
}

/// The settings of the extension instances whose procedures the Exec
/// language implements itself, read before any Exec is compiled.
#[derive(Clone, Debug, Default)]
pub(crate) struct ExtensionSettings {
    /// xm_syslog instances (to_syslog_*()).
    pub syslog: Vec<(String, SyslogOptions)>,
    /// xm_kvp, xm_csv and xm_rewrite instances.
    pub others: Vec<(String, Extension)>,
}

/// The settings of every xm_syslog, xm_kvp, xm_csv and xm_rewrite
/// instance, in file order, read before any Exec is compiled:
/// to_syslog_*(), to_kvp(), to_csv() and process() compile with them.
/// Errors are discarded here and reported when the block is built.
///
/// An xm_rewrite's Exec is compiled here, in a scope with every other
/// extension but no xm_rewrite instance (its Exec runs inside process()).
pub(crate) fn extension_settings<'b>(
    blocks: impl Iterator<Item = (&'b RawBlock, Option<&'static ModuleType>)> + Clone,
) -> ExtensionSettings {
    let of = |name: &'static str| {
        blocks
            .clone()
            .filter(move |(_, t)| t.is_some_and(|t| t.name == name))
            .map(|(b, _)| b)
    };
    let mut ext = ExtensionSettings {
        syslog: of("xm_syslog")
            .map(|b| {
                (
                    b.name.clone(),
                    xm_syslog::syslog_options(b, &mut Vec::new()),
                )
            })
            .collect(),
        others: Vec::new(),
    };
    for (b, t) in blocks.clone() {
        let f = match t.map(|t| t.name) {
            Some("xm_kvp") => Formatter::Kvp(xm_kvp::kvp_options(b, &mut Vec::new())),
            Some("xm_csv") => Formatter::Csv(xm_csv::csv_options(b, &mut Vec::new())),
            _ => continue,
        };
        ext.others
            .push((b.name.clone(), Extension::Format(Arc::new(f))));
    }
    let instances: Vec<(String, String)> = blocks
        .clone()
        .filter_map(|(b, t)| Some((b.name.clone(), t?.name.to_string())))
        .collect();
    let constants = constant_scope();
    let json = blocks
        .clone()
        .find_map(|(b, t)| Some((b, t?.json_options?)))
        .map(|(b, read)| read(b, &constants, &mut Vec::new()));
    let mut rewrites = Vec::new();
    for b in of("xm_rewrite") {
        let sc = scope(
            &b.name,
            "xm_rewrite",
            json.clone(),
            DateFormat::default(),
            instances.clone(),
            ext.clone(),
        );
        let exec = b
            .execs
            .iter()
            .filter_map(|src| crate::lang::parser::parse_program(src, &sc).ok())
            .flatten()
            .collect();
        let rw = Rewrite {
            instance: b.name.clone(),
            fields: xm_rewrite::rewrite_fields(b, &mut Vec::new()),
            exec,
        };
        rewrites.push((b.name.clone(), Extension::Rewrite(Arc::new(rw))));
    }
    ext.others.extend(rewrites);
    ext
}

/// The scope constant directive values compile in (no instance, no xm_json).
pub(crate) fn constant_scope() -> ExecScope {
    ExecScope::new("config", "config", false)
}

impl Directive {
    /// A string: a quoted constant string expression, or the raw text.
    /// (Defined here because compiling needs a scope, which the table builds.)
    pub fn as_string(&self) -> Result<String, Diagnostic> {
        constant_string(self, &constant_scope())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_lower_case_and_prefixed_by_kind() {
        for (i, t) in MODULES.iter().enumerate() {
            assert_eq!(t.name, t.name.to_ascii_lowercase(), "{}", t.name);
            let prefix = match t.kind {
                ModuleKind::Input => "im_",
                ModuleKind::Output => "om_",
                ModuleKind::Extension => "xm_",
                ModuleKind::Processor => "pm_",
            };
            assert!(t.name.starts_with(prefix), "{}", t.name);
            assert!(
                MODULES[..i].iter().all(|o| o.name != t.name),
                "{} listed twice",
                t.name
            );
        }
        assert_eq!(
            SUPPORTED_MODULES,
            [
                "im_regmon",
                "xm_json",
                "xm_fileop",
                "xm_syslog",
                "om_file",
                "om_tcp",
                "om_udp",
                "xm_gelf",
                "om_http",
                "om_ssl",
                "om_kafka",
                "im_internal",
                "pm_buffer",
                "xm_kvp",
                "xm_csv",
                "xm_rewrite"
            ]
        );
    }

    #[test]
    fn directive_names_are_unique_per_type() {
        for t in MODULES {
            for (i, d) in t.directives.iter().enumerate() {
                assert!(
                    t.directives[..i]
                        .iter()
                        .all(|o| !o.name.eq_ignore_ascii_case(d.name)),
                    "{}: {} listed twice",
                    t.name,
                    d.name
                );
                assert!(
                    !d.repeatable || d.default.is_none(),
                    "{}: repeatable {} has a default",
                    t.name,
                    d.name
                );
            }
        }
    }

    #[test]
    fn procedures_come_from_the_table() {
        assert_eq!(module_procedures("IM_REGMON"), &[("start_scan", 0)]);
        assert_eq!(
            module_procedures("om_file"),
            &[("reopen", 0), ("rotate_to", 1)]
        );
        assert!(module_procedures("xm_json").is_empty());
        assert!(module_procedures("im_file").is_empty());
        let s = ExecScope::new("f", "xm_fileop", false);
        assert_eq!(s.own_api().arity("file_cycle"), Some((1, 2)));
        assert_eq!(s.api("om_file").arity("rotate_to"), Some((1, 1)));
        assert_eq!(s.api("nope").arity("reopen"), None);
    }

    /// The defaults the table documents are what the builders use: writing
    /// every default out changes no setting.
    #[test]
    fn documented_defaults_are_the_builders_defaults() {
        let block = |t: &ModuleType, extra: &str| {
            let required = match t.name {
                "im_regmon" => "RegValue 'HKLM\\Software\\*'\n",
                "om_file" => "File 'out.log'\n",
                "om_tcp" | "om_udp" => "Host 127.0.0.1\n",
                "om_ssl" => "Host 127.0.0.1\nAllowUntrusted TRUE\n",
                "om_http" => "URL http://127.0.0.1/\n",
                "om_kafka" => "BrokerList 127.0.0.1:9092\nTopic t\n",
                "pm_buffer" => "MaxSize 1024\nType Disk\n",
                "xm_csv" => "Fields $EventType\n",
                _ => "",
            };
            let tag = t.kind.block_name();
            format!(
                "<{tag} {}>\nModule {}\n{required}{extra}</{tag}>\n",
                t.name, t.name
            )
        };
        for t in MODULES {
            let defaults: String = t
                .directives
                .iter()
                // om_ssl's required lines set AllowUntrusted TRUE (its
                // default FALSE would need a CA file).
                .filter(|d| !(t.name == "om_ssl" && d.name == "AllowUntrusted"))
                .filter_map(|d| Some(format!("{} {}\n", d.name, d.default?)))
                .collect();
            let settings = |extra: &str| {
                let text: String = MODULES
                    .iter()
                    .map(|o| block(o, if o.name == t.name { extra } else { "" }))
                    .collect();
                let cfg = crate::parse_str(&text, "defaults.conf")
                    .unwrap_or_else(|e| panic!("{}: {e}\n{text}", t.name));
                format!("{:?}", cfg.module(t.name).expect("instance").settings)
            };
            assert_eq!(settings(&defaults), settings(""), "{}", t.name);
        }
    }
}
