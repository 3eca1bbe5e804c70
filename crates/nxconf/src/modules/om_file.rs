//! om_file: writes events to a file, one line each.

use super::spec::{Build, DirectiveSpec, ValueType as V};
use crate::eval::StringExpr;
use crate::lang::scope::ExecApi;

/// Directives, in the order messages list them.
pub(crate) const DIRECTIVES: &[DirectiveSpec] = &[
    DirectiveSpec::once("File", V::StringExpr, None),
    DirectiveSpec::once("CreateDir", V::Bool, Some("FALSE")),
    DirectiveSpec::once("Truncate", V::Bool, Some("FALSE")),
    DirectiveSpec::once("Sync", V::Bool, Some("FALSE")),
    DirectiveSpec::once("OutputType", V::Word, Some("LineBased")),
];

/// reopen() and rotate_to(path), run by regmon's writer.
pub(crate) const EXEC: ExecApi = ExecApi {
    procedures: &[("reopen", 0), ("rotate_to", 1)],
    global: false,
    json: false,
    owner_hint: false,
};

/// om_file settings.
#[derive(Clone, Debug)]
pub struct OmFile {
    /// The output file name; may depend on the event (`'/var/log/' + $Hostname + '.log'`).
    pub file: StringExpr,
    /// Default FALSE.
    pub create_dir: bool,
    /// Default FALSE.
    pub truncate: bool,
    /// Default FALSE.
    pub sync: bool,
}

/// Check an `<Output>` block's om_file directives into [`OmFile`].
pub(crate) fn build(cx: &mut Build) -> Option<OmFile> {
    let file = match cx.one("File") {
        Some(d) => cx.string_expr(d),
        None => {
            cx.block_error(format!(
                "<Output {}> (om_file) needs a File directive, e.g. File 'C:\\logs\\regmon.log'",
                cx.block.name
            ));
            None
        }
    };
    let (mut create_dir, mut truncate, mut sync) = (false, false, false);
    cx.bool_into("CreateDir", &mut create_dir);
    cx.bool_into("Truncate", &mut truncate);
    cx.bool_into("Sync", &mut sync);
    if let Some(d) = cx.one("OutputType") {
        if !d.value.eq_ignore_ascii_case("linebased") {
            cx.error(
                d,
                format!(
                    "unsupported OutputType '{}' (om_file writes LineBased output only)",
                    d.value
                ),
            );
        }
    }
    Some(OmFile {
        file: file?,
        create_dir,
        truncate,
        sync,
    })
}
