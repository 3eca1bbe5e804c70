//! pm_buffer: a buffer between a route's inputs and outputs. regmon's
//! buffer is the durable outbox, so a pm_buffer on a route bounds the
//! outbox of the inputs it carries (`MaxSize`) and warns at `WarnLimit`.
//! `Type Mem` and `Type Disk` are both kept on disk (stronger than NXLog's
//! memory buffer, which a crash empties).

use super::spec::{Build, DirectiveSpec, ValueType};
use crate::lang::scope::ExecApi;

pub(crate) const DIRECTIVES: &[DirectiveSpec] = &[
    DirectiveSpec::once("MaxSize", ValueType::Integer, None),
    DirectiveSpec::once("Type", ValueType::Word, None),
    DirectiveSpec::once("WarnLimit", ValueType::Integer, None),
    DirectiveSpec::once("Directory", ValueType::String, None),
];

/// pm_buffer's procedures (NXLog has none regmon would need).
pub(crate) const EXEC: ExecApi = ExecApi::NONE;

/// `Type`: where NXLog keeps the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferType {
    Mem,
    Disk,
}

/// pm_buffer settings. Sizes are in bytes (NXLog writes them in KiB).
#[derive(Clone, Debug)]
pub struct PmBuffer {
    pub max_size: u64,
    pub warn_limit: Option<u64>,
    pub kind: BufferType,
}

/// Check a `<Processor>` block's pm_buffer directives into [`PmBuffer`].
pub(crate) fn build(cx: &mut Build) -> Option<PmBuffer> {
    let kib = |cx: &mut Build, name: &str| -> Option<Option<u64>> {
        let Some(d) = cx.one(name) else {
            return Some(None);
        };
        match cx.keep(d.as_integer())? {
            n if n > 0 => Some(Some((n as u64).saturating_mul(1024))),
            _ => {
                cx.error(d, format!("{name} must be a positive size in KiB"));
                None
            }
        }
    };
    let max = kib(cx, "MaxSize")?;
    let warn = kib(cx, "WarnLimit")?;
    let kind = match cx.one("Type") {
        None => None,
        Some(d) => match crate::source::unquote(&d.value)
            .to_ascii_lowercase()
            .as_str()
        {
            "mem" => Some(BufferType::Mem),
            "disk" => Some(BufferType::Disk),
            _ => {
                cx.error(
                    d,
                    format!("invalid Type '{}' (expected Mem or Disk)", d.value),
                );
                return None;
            }
        },
    };
    let (Some(max_size), Some(kind)) = (max, kind) else {
        cx.block_error("pm_buffer needs MaxSize (in KiB) and Type (Mem or Disk)");
        return None;
    };
    if let (Some(w), Some(d)) = (warn, cx.one("WarnLimit")) {
        if w >= max_size {
            cx.error(d, "WarnLimit must be less than MaxSize");
            return None;
        }
    }
    Some(PmBuffer {
        max_size,
        warn_limit: warn,
        kind,
    })
}
