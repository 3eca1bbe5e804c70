//! Connecting the network outputs: the configured hosts in failover
//! order (a name is resolved again at each connection, every address it
//! resolves to is tried), a bounded connect, and the local port to send
//! from when `LocalPort` asks for one.

use super::OutputError;
use nxconf::HostPort;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

/// How long one connection attempt to one address may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a write may make no progress before the connection counts
/// as dead.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The configured hosts and which one is in use.
#[derive(Debug)]
pub struct Hosts {
    list: Vec<HostPort>,
    /// The host tried first: the one that worked last.
    current: usize,
}

impl Hosts {
    pub fn new(list: Vec<HostPort>) -> Hosts {
        Hosts { list, current: 0 }
    }

    /// Tries every host once, from the current one on (wrapping around to
    /// the first), until `open` succeeds on one of its addresses. Each
    /// failure is logged; the error names the last one.
    pub fn connect<T>(
        &mut self,
        output: &str,
        mut open: impl FnMut(SocketAddr, &HostPort) -> std::io::Result<T>,
    ) -> Result<(T, HostPort), OutputError> {
        let n = self.list.len();
        let mut last = None;
        for k in 0..n {
            let i = (self.current + k) % n;
            let hp = &self.list[i];
            let r = resolve(hp).and_then(|addrs| {
                let mut err = None;
                for a in addrs {
                    match open(a, hp) {
                        Ok(t) => return Ok(t),
                        Err(e) => err = Some(std::io::Error::new(e.kind(), format!("{a}: {e}"))),
                    }
                }
                Err(err.unwrap_or_else(|| std::io::Error::other("no address")))
            });
            match r {
                Ok(t) => {
                    if i != self.current {
                        tracing::warn!(output, "failed over to {hp}");
                    }
                    self.current = i;
                    return Ok((t, hp.clone()));
                }
                Err(e) => {
                    if n > 1 {
                        tracing::warn!(output, "cannot connect to {hp}: {e}");
                    }
                    last = Some((hp.clone(), e));
                }
            }
        }
        let (hp, e) = last.unwrap_or_else(|| {
            (
                HostPort {
                    host: String::new(),
                    port: 0,
                },
                std::io::Error::other("no Host configured"),
            )
        });
        let what = if n > 1 {
            format!("cannot connect to any of {n} hosts (last {hp})")
        } else {
            format!("cannot connect to {hp}")
        };
        Err(OutputError {
            output: output.to_string(),
            what,
            source: Some(e),
        })
    }
}

/// The addresses of a host, resolved now (names may move).
fn resolve(hp: &HostPort) -> std::io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = (hp.host.as_str(), hp.port)
        .to_socket_addrs()
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot resolve '{}': {e}", hp.host)))?
        .collect();
    if addrs.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("'{}' resolves to no address", hp.host),
        ));
    }
    Ok(addrs)
}

/// The wildcard address of `to`'s family, on `port`.
fn local(to: SocketAddr, port: u16) -> SocketAddr {
    match to {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], port)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], port)),
    }
}

/// A TCP connection to `to` within [`CONNECT_TIMEOUT`], from `local_port`
/// when given; keepalive on, writes bounded by [`WRITE_TIMEOUT`].
pub fn tcp(to: SocketAddr, local_port: Option<u16>, no_delay: bool) -> std::io::Result<TcpStream> {
    let s = Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(p) = local_port {
        // A restart must not wait for the old connection's TIME_WAIT.
        s.set_reuse_address(true)?;
        s.bind(&SockAddr::from(local(to, p)))?;
    }
    s.connect_timeout(&SockAddr::from(to), CONNECT_TIMEOUT)?;
    s.set_keepalive(true)?;
    s.set_tcp_nodelay(no_delay)?;
    let t: TcpStream = s.into();
    t.set_write_timeout(Some(WRITE_TIMEOUT))?;
    Ok(t)
}

/// A UDP socket connected to `to` (so ICMP "port unreachable" comes back
/// as an error on a later send), from `local_port` when given.
pub fn udp(
    to: SocketAddr,
    local_port: Option<u16>,
    buf: Option<usize>,
) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(to), Type::DGRAM, Some(Protocol::UDP))?;
    if let Some(b) = buf {
        s.set_send_buffer_size(b)?;
    }
    if local_port.is_some() {
        s.set_reuse_address(true)?;
    }
    s.bind(&SockAddr::from(local(to, local_port.unwrap_or(0))))?;
    s.connect(&SockAddr::from(to))?;
    let u: UdpSocket = s.into();
    u.set_write_timeout(Some(WRITE_TIMEOUT))?;
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(host: &str, port: u16) -> HostPort {
        HostPort {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn fails_over_and_wraps() {
        let mut h = Hosts::new(vec![
            hp("127.0.0.1", 1),
            hp("127.0.0.1", 2),
            hp("127.0.0.1", 3),
        ]);
        let ok = |want: u16| {
            move |a: SocketAddr, _: &HostPort| {
                if a.port() == want {
                    Ok(a.port())
                } else {
                    Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
                }
            }
        };
        assert_eq!(h.connect("o", ok(2)).unwrap().0, 2);
        // The working host is tried first next time; then the list wraps.
        let mut tried = Vec::new();
        let r = h.connect("o", |a, _| {
            tried.push(a.port());
            if a.port() == 1 {
                Ok(1)
            } else {
                Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
            }
        });
        assert_eq!(r.unwrap().0, 1);
        assert_eq!(tried, [2, 3, 1]);
        let e = h.connect("o", ok(9)).unwrap_err().to_string();
        assert!(e.contains("cannot connect to any of 3 hosts"), "{e}");
    }

    #[test]
    fn unresolvable_names_say_so() {
        let mut h = Hosts::new(vec![hp("no-such-host.invalid", 514)]);
        let e = h.connect("o", |_, _| Ok(())).unwrap_err().to_string();
        assert!(e.contains("cannot resolve 'no-such-host.invalid'"), "{e}");
    }
}
