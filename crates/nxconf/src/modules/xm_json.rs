//! xm_json: the settings of to_json() and parse_json(), which the Exec
//! language implements itself.

use super::spec::{Build, DirectiveSpec, ValueType as V};
use crate::block::RawBlock;
use crate::diag::{Diagnostic, LogLevel};
use crate::directive::constant_string;
use crate::lang::scope::{ExecApi, ExecScope};
use crate::record::JsonOptions;
use crate::value::DateFormat;

/// Directives, in the order messages list them; defaults as
/// [`JsonOptions::default`] sets them.
pub(crate) const DIRECTIVES: &[DirectiveSpec] = &[
    DirectiveSpec::once("DateFormat", V::DateFormat, Some("YYYY-MM-DDThh:mm:ss.sTZ")),
    DirectiveSpec::once("IncludeHiddenFields", V::Bool, Some("FALSE")),
    DirectiveSpec::once("PrettyPrint", V::Bool, Some("FALSE")),
    DirectiveSpec::once("ParseDate", V::Bool, Some("TRUE")),
    DirectiveSpec::once("ForceUTF8", V::Bool, Some("FALSE")),
];

/// NXLog's xm_json directives regmon refuses by name.
pub(crate) const UNSUPPORTED: &[&str] = &["Flatten", "Unflatten", "DetectNestedJSON", "SplitArray"];

/// `json->to_json()` is the built-in to_json().
pub(crate) const EXEC: ExecApi = ExecApi {
    procedures: &[],
    global: false,
    json: true,
    owner_hint: false,
};

/// xm_json settings.
#[derive(Clone, Debug, Default)]
pub struct XmJson {
    pub options: JsonOptions,
}

/// The to_json()/parse_json() settings of an xm_json block. Also read
/// before any module is built (every Exec needs them), with errors
/// discarded: they are reported when the block itself is built.
pub(crate) fn json_options(
    b: &RawBlock,
    constants: &ExecScope,
    errors: &mut Vec<Diagnostic>,
) -> JsonOptions {
    let mut o = JsonOptions::default();
    for rd in &b.directives {
        let d = &rd.d;
        let r: Result<(), Diagnostic> = (|| {
            match d.name.to_ascii_lowercase().as_str() {
                "dateformat" => {
                    o.date_format =
                        DateFormat::parse(&constant_string(d, constants)?).map_err(|m| d.err(m))?
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

/// ForceUTF8 is accepted and checked, but strings are always UTF-8.
pub(crate) fn force_utf8(cx: &mut Build) {
    if let Some(d) = cx.one("ForceUTF8") {
        match d.as_bool() {
            Ok(_) => cx.note(
                d,
                LogLevel::Debug,
                "ForceUTF8 has no effect in regmon (strings are always UTF-8)",
            ),
            Err(e) => cx.errors.push(e),
        }
    }
}

/// Check an `<Extension>` block's xm_json directives into [`XmJson`].
pub(crate) fn build(cx: &mut Build) -> Option<XmJson> {
    force_utf8(cx);
    let options = json_options(cx.block, cx.constants, cx.errors);
    Some(XmJson { options })
}
