//! xm_csv: the settings of to_csv() (procedure: `$raw_event` becomes the
//! `Fields` as one CSV line; function: the same string), which the Exec
//! language implements (`crate::extension`). Read as NXLog CE's
//! xm_csv.c reads them.

use super::spec::{Build, DirectiveSpec, ValueType as V};
use super::xm_syslog::config_char;
use crate::block::RawBlock;
use crate::diag::{Diagnostic, LogLevel};
use crate::directive::Directive;
use crate::extension::{CsvOptions, CsvQuote};
use crate::lang::scope::ExecApi;

/// Directives, in the order messages list them; defaults as
/// [`CsvOptions::default`] sets them. Fields is required.
pub(crate) const DIRECTIVES: &[DirectiveSpec] = &[
    DirectiveSpec::once("Fields", V::Special, None),
    DirectiveSpec::once("Delimiter", V::Special, Some(",")),
    DirectiveSpec::once("QuoteChar", V::Special, Some("'\"'")),
    DirectiveSpec::once("EscapeChar", V::Special, Some("'\\'")),
    DirectiveSpec::once("EscapeControl", V::Bool, Some("TRUE")),
    DirectiveSpec::once("QuoteMethod", V::Word, Some("String")),
    DirectiveSpec::once("QuoteOptional", V::Bool, None),
    DirectiveSpec::once("UndefValue", V::String, None),
    DirectiveSpec::once("FieldTypes", V::Special, None),
];

/// to_csv() is resolved by the Exec parser from the scope's xm_csv
/// instances.
pub(crate) const EXEC: ExecApi = ExecApi::NONE;

/// xm_csv settings.
#[derive(Clone, Debug, Default)]
pub struct XmCsv {
    pub options: CsvOptions,
}

/// A character as CE's `nx_csv_get_config_char`: xm_syslog's forms plus
/// a hexadecimal code (`0x09`). A backslash is written `'\'` (a
/// `\` ending a line continues it).
pub(crate) fn csv_char(d: &Directive) -> Result<char, Diagnostic> {
    let v = d.value.trim();
    if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        return u8::from_str_radix(h, 16)
            .ok()
            .filter(|b| *b != 0 && b.is_ascii())
            .map(char::from)
            .ok_or_else(|| d.err(format!("invalid {} parameter: {v}", d.name)));
    }
    config_char(d)
}

/// A comma-separated list of names, `$` optional (`$a, $b` or `a,b`).
fn name_list(d: &Directive) -> Vec<String> {
    d.value
        .split(',')
        .map(|f| f.trim().trim_start_matches('$').to_string())
        .filter(|f| !f.is_empty())
        .collect()
}

/// The to_csv() settings of an xm_csv block; problems are appended.
pub(crate) fn csv_options(b: &RawBlock, errors: &mut Vec<Diagnostic>) -> CsvOptions {
    let mut o = CsvOptions::default();
    let mut method: Option<CsvQuote> = None;
    let mut optional: Option<&Directive> = None;
    for rd in &b.directives {
        let d = &rd.d;
        let r: Result<(), Diagnostic> = (|| {
            match d.name.to_ascii_lowercase().as_str() {
                "fields" => o.fields = name_list(d),
                "delimiter" => o.delimiter = csv_char(d)?,
                "quotechar" => o.quote = csv_char(d)?,
                "escapechar" => o.escape = csv_char(d)?,
                "escapecontrol" => o.escape_control = d.as_bool()?,
                "undefvalue" => o.undef_value = Some(crate::source::unquote(&d.value).to_string()),
                "quotemethod" => {
                    method = Some(
                        match crate::source::unquote(&d.value)
                            .to_ascii_lowercase()
                            .as_str()
                        {
                            "string" => CsvQuote::String,
                            "all" => CsvQuote::All,
                            "none" => CsvQuote::None,
                            _ => {
                                return Err(d.err(format!(
                                    "invalid QuoteMethod '{}' (expected String, All or None)",
                                    d.value
                                )))
                            }
                        },
                    )
                }
                "quoteoptional" => {
                    d.as_bool()?;
                    optional = Some(d);
                }
                _ => {}
            }
            Ok(())
        })();
        if let Err(e) = r {
            errors.push(e);
        }
    }
    // QuoteOptional is the deprecated form: TRUE quotes strings only,
    // FALSE quotes everything; it may not be combined with QuoteMethod.
    if let Some(d) = optional {
        if method.is_some() {
            errors.push(d.err("QuoteOptional (deprecated) cannot be used with QuoteMethod"));
        } else if let Ok(q) = d.as_bool() {
            method = Some(if q { CsvQuote::String } else { CsvQuote::All });
        }
    }
    o.quote_method = method.unwrap_or(CsvQuote::String);
    o
}

/// Check an `<Extension>` block's xm_csv directives into [`XmCsv`].
pub(crate) fn build(cx: &mut Build) -> Option<XmCsv> {
    let before = cx.errors.len();
    let options = csv_options(cx.block, cx.errors);
    if options.fields.is_empty() {
        cx.block_error("xm_csv needs a Fields directive (e.g. Fields $EventTime, $EventType)");
    }
    if let Some(d) = cx.one("FieldTypes") {
        let n = name_list(d).len();
        if n != options.fields.len() {
            cx.error(
                d,
                format!(
                    "FieldTypes lists {n} types but Fields lists {} fields; they must match",
                    options.fields.len()
                ),
            );
        } else {
            cx.note(
                d,
                LogLevel::Debug,
                "FieldTypes has no effect in regmon (it applies to parse_csv(), which regmon does not run)",
            );
        }
    }
    if let Some(d) = cx.one("QuoteOptional") {
        cx.note(
            d,
            LogLevel::Warning,
            "QuoteOptional is deprecated; use QuoteMethod String (TRUE) or All (FALSE)",
        );
    }
    (cx.errors.len() == before).then_some(XmCsv { options })
}
