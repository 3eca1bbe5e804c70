//! im_internal: regmon's own log (warnings, errors, scan summaries) as
//! events, with NXLog's im_internal fields, routed like any other input.

use super::spec::{Build, DirectiveSpec};
use crate::lang::scope::ExecApi;

pub(crate) const DIRECTIVES: &[DirectiveSpec] = &[];

pub(crate) const EXEC: ExecApi = ExecApi::NONE;

/// im_internal has no settings of its own; the global LogLevel decides
/// which records exist.
#[derive(Clone, Debug, Default)]
pub struct ImInternal {}

pub(crate) fn build(_cx: &mut Build) -> Option<ImInternal> {
    Some(ImInternal {})
}
