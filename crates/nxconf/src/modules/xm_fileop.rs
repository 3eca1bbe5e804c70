//! xm_fileop: no directives; its procedure file_cycle(path[, max]) may be
//! called from any module without naming an instance, as in NXLog.

use super::spec::{Build, DirectiveSpec};
use super::xm_json::force_utf8;
use crate::lang::scope::ExecApi;

pub(crate) const DIRECTIVES: &[DirectiveSpec] = &[];

/// file_cycle(path[, max]), run by regmon.
pub(crate) const EXEC: ExecApi = ExecApi {
    procedures: &[("file_cycle", 1), ("file_cycle", 2)],
    global: true,
    json: false,
    owner_hint: false,
};

/// Nothing to build. ForceUTF8 is looked at as for xm_json, as it was
/// before the module table (it is also reported as an unknown directive
/// here); kept so that messages stay the same.
pub(crate) fn build(cx: &mut Build) {
    force_utf8(cx);
}
