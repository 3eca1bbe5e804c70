//! om_tcp: sends events over a TCP connection, framed by OutputType.

use super::net::{self, Net, OutputType, Transport};
use super::spec::{Build, DirectiveSpec};
use crate::lang::scope::ExecApi;

/// Directives, in the order messages list them (the network outputs' set).
pub(crate) const DIRECTIVES: &[DirectiveSpec] = net::DIRECTIVES;

pub(crate) const EXEC: ExecApi = ExecApi::NONE;

/// om_tcp settings.
#[derive(Clone, Debug)]
pub struct OmTcp {
    pub net: Net,
}

/// Check an `<Output>` block's om_tcp directives into [`OmTcp`].
pub(crate) fn build(cx: &mut Build) -> Option<OmTcp> {
    net::build(cx, OutputType::LineBased, Transport::Stream).map(|net| OmTcp { net })
}
