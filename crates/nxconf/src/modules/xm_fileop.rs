//! xm_fileop: no directives; its procedures (run by regmon) and functions
//! (run by the evaluator) may be called from any module without naming an
//! instance, as in NXLog.

use super::spec::{Build, DirectiveSpec};
use super::xm_json::force_utf8;
use crate::lang::scope::ExecApi;

pub(crate) const DIRECTIVES: &[DirectiveSpec] = &[];

/// Its procedures with their argument counts (NXLog CE's
/// xm_fileop-api.xml), run by regmon.
pub(crate) const EXEC: ExecApi = ExecApi {
    procedures: &[
        ("file_cycle", 1),
        ("file_cycle", 2),
        ("file_rename", 2),
        ("file_copy", 2),
        ("file_remove", 1),
        ("file_remove", 2),
        ("file_link", 2),
        ("file_append", 2),
        ("file_write", 2),
        ("file_truncate", 1),
        ("file_truncate", 2),
        ("file_chown", 3),
        ("file_chmod", 2),
        ("file_touch", 1),
        ("dir_make", 1),
        ("dir_remove", 1),
    ],
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
