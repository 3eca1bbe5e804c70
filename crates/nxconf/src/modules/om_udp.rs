//! om_udp: sends each event as one UDP datagram.

use super::net::{self, Net, OutputType, Transport};
use super::spec::{Build, DirectiveSpec, ValueType as V};
use crate::lang::scope::ExecApi;

/// Directives, in the order messages list them.
pub(crate) const DIRECTIVES: &[DirectiveSpec] = &[
    net::HOST,
    net::PORT,
    net::LOCAL_PORT,
    net::RECONNECT,
    DirectiveSpec::once("OutputType", V::Word, Some("Dgram")),
    DirectiveSpec::once("SockBufSize", V::Integer, None),
];

pub(crate) const EXEC: ExecApi = ExecApi::NONE;

/// om_udp settings.
#[derive(Clone, Debug)]
pub struct OmUdp {
    pub net: Net,
    /// The socket's send buffer (SO_SNDBUF) in bytes; the system's when absent.
    pub sock_buf_size: Option<usize>,
}

/// Check an `<Output>` block's om_udp directives into [`OmUdp`].
pub(crate) fn build(cx: &mut Build) -> Option<OmUdp> {
    let mut sock_buf_size = None;
    let mut ok = true;
    if let Some(d) = cx.one("SockBufSize") {
        match cx.keep(d.as_integer()) {
            Some(n) if (1..=1 << 30).contains(&n) => sock_buf_size = usize::try_from(n).ok(),
            Some(n) => {
                cx.error(
                    d,
                    format!("invalid SockBufSize {n} (expected 1 to 1G bytes)"),
                );
                ok = false;
            }
            None => ok = false,
        }
    }
    let net = net::build(cx, OutputType::Dgram, Transport::Datagram)?;
    ok.then_some(OmUdp { net, sock_buf_size })
}
