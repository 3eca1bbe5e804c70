//! xm_kvp: the settings of to_kvp() (procedure: `$raw_event` becomes the
//! record as key-value pairs; function: the same string), which the Exec
//! language implements (`crate::extension`).

use super::spec::{Build, DirectiveSpec, ValueType as V};
use super::xm_csv::csv_char as config_char;
use crate::block::RawBlock;
use crate::diag::{Diagnostic, LogLevel};
use crate::extension::{KvpOptions, KvpQuote};
use crate::lang::scope::ExecApi;

/// Directives, in the order messages list them; defaults as
/// [`KvpOptions::default`] sets them.
pub(crate) const DIRECTIVES: &[DirectiveSpec] = &[
    DirectiveSpec::once("KVDelimiter", V::Special, Some("=")),
    DirectiveSpec::once("KVPDelimiter", V::Special, Some(";")),
    DirectiveSpec::once("EscapeChar", V::Special, Some("'\\'")),
    DirectiveSpec::once("ValueQuoteChar", V::Special, Some("\"'\"")),
    DirectiveSpec::once("QuoteChar", V::Special, None),
    DirectiveSpec::once("KeyQuoteChar", V::Special, None),
    DirectiveSpec::once("EscapeControl", V::Bool, Some("TRUE")),
    DirectiveSpec::once("QuoteMethod", V::Word, Some("Delimiter")),
    DirectiveSpec::once("DetectNumericValues", V::Bool, None),
];

/// to_kvp() is resolved by the Exec parser from the scope's xm_kvp
/// instances (it rewrites the event, which host procedures cannot).
pub(crate) const EXEC: ExecApi = ExecApi::NONE;

/// xm_kvp settings.
#[derive(Clone, Debug, Default)]
pub struct XmKvp {
    pub options: KvpOptions,
}

/// The to_kvp() settings of an xm_kvp block; problems are appended. Read
/// before any Exec is compiled (errors discarded then) and again when the
/// block is built.
pub(crate) fn kvp_options(b: &RawBlock, errors: &mut Vec<Diagnostic>) -> KvpOptions {
    let mut o = KvpOptions::default();
    for rd in &b.directives {
        let d = &rd.d;
        let r: Result<(), Diagnostic> = (|| {
            match d.name.to_ascii_lowercase().as_str() {
                "kvdelimiter" => o.kv_delimiter = config_char(d)?,
                "kvpdelimiter" => o.kvp_delimiter = config_char(d)?,
                "escapechar" => o.escape = config_char(d)?,
                "valuequotechar" | "quotechar" => o.quote = config_char(d)?,
                "keyquotechar" => {
                    config_char(d)?;
                }
                "escapecontrol" => o.escape_control = d.as_bool()?,
                "detectnumericvalues" => {
                    d.as_bool()?;
                }
                "quotemethod" => {
                    o.quote_method = match crate::source::unquote(&d.value)
                        .to_ascii_lowercase()
                        .as_str()
                    {
                        "all" => KvpQuote::All,
                        "delimiter" => KvpQuote::Delimiter,
                        "none" => KvpQuote::None,
                        _ => {
                            return Err(d.err(format!(
                                "invalid QuoteMethod '{}' (expected All, Delimiter or None)",
                                d.value
                            )))
                        }
                    }
                }
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

/// Check an `<Extension>` block's xm_kvp directives into [`XmKvp`].
pub(crate) fn build(cx: &mut Build) -> Option<XmKvp> {
    let before = cx.errors.len();
    let options = kvp_options(cx.block, cx.errors);
    for name in ["KeyQuoteChar", "DetectNumericValues"] {
        if let Some(d) = cx.one(name) {
            cx.note(
                d,
                LogLevel::Debug,
                format!("{name} has no effect in regmon (it applies to parse_kvp(), which regmon does not run)"),
            );
        }
    }
    (cx.errors.len() == before).then_some(XmKvp { options })
}
