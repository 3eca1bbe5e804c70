//! om_ssl: om_tcp (Host, Port, OutputType, failover) with a TLS handshake
//! at each connection; the TLS directives are [`super::tls`]'s.

use super::net::{self, Net, OutputType, Transport};
use super::spec::{Build, DirectiveSpec};
use super::tls::{self, Tls};
use crate::lang::scope::ExecApi;

const N: usize = net::DIRECTIVES.len() + tls::DIRECTIVES.len();

/// Directives, in the order messages list them: om_tcp's, then the TLS ones.
pub(crate) const DIRECTIVES: &[DirectiveSpec] = &{
    let mut all = [net::HOST; N];
    let mut i = 0;
    while i < N {
        all[i] = if i < net::DIRECTIVES.len() {
            net::DIRECTIVES[i]
        } else {
            tls::DIRECTIVES[i - net::DIRECTIVES.len()]
        };
        i += 1;
    }
    all
};

pub(crate) const UNSUPPORTED: &[&str] = tls::UNSUPPORTED;

pub(crate) const EXEC: ExecApi = ExecApi::NONE;

/// om_ssl settings.
#[derive(Clone, Debug)]
pub struct OmSsl {
    pub net: Net,
    pub tls: Tls,
}

/// Check an `<Output>` block's om_ssl directives into [`OmSsl`]; both
/// halves are checked so that every problem is reported at once.
pub(crate) fn build(cx: &mut Build) -> Option<OmSsl> {
    let net = net::build(cx, OutputType::LineBased, Transport::Stream);
    let tls = tls::build(cx);
    Some(OmSsl {
        net: net?,
        tls: tls?,
    })
}
