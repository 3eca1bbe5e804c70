//! xm_gelf: its presence makes the GELF output types (GELF_TCP, GELF_UDP,
//! GELF) available to the network outputs, formatted with its settings.

use super::spec::{Build, DirectiveSpec, ValueType as V};
use crate::gelf::GelfOptions;
use crate::lang::scope::ExecApi;

/// Directives, in the order messages list them; defaults as
/// [`GelfOptions::default`] sets them.
pub(crate) const DIRECTIVES: &[DirectiveSpec] = &[
    DirectiveSpec::once("ShortMessageLength", V::Integer, Some("64")),
    DirectiveSpec::once("UseNullDelimiter", V::Bool, Some("TRUE")),
];

pub(crate) const EXEC: ExecApi = ExecApi::NONE;

/// xm_gelf settings.
#[derive(Clone, Debug, Default)]
pub struct XmGelf {
    pub options: GelfOptions,
}

/// Check an `<Extension>` block's xm_gelf directives into [`XmGelf`].
pub(crate) fn build(cx: &mut Build) -> Option<XmGelf> {
    let mut options = GelfOptions::default();
    if let Some(d) = cx.one("ShortMessageLength") {
        match cx.keep(d.as_integer()) {
            Some(n) if n > 0 => {
                options.short_message_length = usize::try_from(n).unwrap_or(usize::MAX)
            }
            Some(n) => {
                cx.error(
                    d,
                    format!(
                        "invalid ShortMessageLength {n} (expected a positive number of characters)"
                    ),
                );
                return None;
            }
            None => return None,
        }
    }
    cx.bool_into("UseNullDelimiter", &mut options.use_null_delimiter);
    Some(XmGelf { options })
}
