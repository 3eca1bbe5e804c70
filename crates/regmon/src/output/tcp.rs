//! om_tcp: events over one kept-open TCP connection, framed by OutputType.
//!
//! Many events go per write (a buffer of framed events), and the count of
//! bytes each write() accepted says exactly which events the kernel took:
//! those are done; a connection that breaks leaves the rest queued. Bytes
//! the kernel accepted but the peer never read are lost with the
//! connection (TCP gives no receipt): that is the transport's limit.
//!
//! The connection logic is generic over [`Wrap`], what turns a fresh TCP
//! connection into the stream written to: plain TCP here; om_ssl wraps it
//! in TLS.

use super::net::{self, Hosts};
use super::{Output, OutputError, Sent, Sink, StreamSink};
use nxconf::{HostPort, Module, Net, OutputType, Record};
use std::io::Write;
use std::net::TcpStream;

/// NXLog's line end: CRLF on Windows, LF elsewhere.
#[cfg(windows)]
pub const LINE_END: &[u8] = b"\r\n";
#[cfg(not(windows))]
pub const LINE_END: &[u8] = b"\n";

/// Framed bytes gathered per write: large enough that a write moves many
/// events, small enough to keep memory flat.
const WRITE_BUF: usize = 256 * 1024;

/// Appends one event's bytes, framed as `t` says, to `out`.
pub fn frame(t: &OutputType, event: &[u8], out: &mut Vec<u8>) {
    match t {
        OutputType::LineBased => {
            out.extend_from_slice(event);
            out.extend_from_slice(LINE_END);
        }
        OutputType::Dgram | OutputType::GelfUdp(_) => out.extend_from_slice(event),
        OutputType::SyslogTls => {
            out.extend_from_slice(event.len().to_string().as_bytes());
            out.push(b' ');
            out.extend_from_slice(event);
        }
        OutputType::GelfTcp(g) => {
            out.extend_from_slice(event);
            out.push(if g.use_null_delimiter { 0 } else { b'\n' });
        }
    }
}

/// Turns a fresh TCP connection into the stream events are written to.
pub trait Wrap {
    type Stream: Write;
    /// `host` is the configured host (the TLS server name).
    fn wrap(&mut self, host: &HostPort, tcp: TcpStream) -> Result<Self::Stream, OutputError>;

    /// Whether a kept connection is still open before a write (a write
    /// into one the peer closed would seem to succeed and be lost).
    /// `probe` is the same socket. Plain TCP: peek for the close.
    fn alive(&mut self, _stream: &mut Self::Stream, probe: &TcpStream) -> bool {
        let alive = probe.set_nonblocking(true).is_ok() && {
            let mut b = [0u8; 1];
            let r = probe.peek(&mut b);
            matches!(r, Ok(n) if n > 0)
                || matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        };
        alive && probe.set_nonblocking(false).is_ok()
    }

    /// Ends a connection at shutdown, the written bytes flushed.
    fn close(&mut self, stream: &mut Self::Stream) {
        let _ = stream.flush();
    }
}

/// Plain TCP.
pub struct Plain;

impl Wrap for Plain {
    type Stream = TcpStream;
    fn wrap(&mut self, _: &HostPort, tcp: TcpStream) -> Result<TcpStream, OutputError> {
        Ok(tcp)
    }
}

/// An open connection.
struct Conn<S> {
    stream: S,
    /// The same socket, to look for the peer's close before writing.
    probe: TcpStream,
    peer: HostPort,
}

/// A stream output (om_tcp; om_ssl with a TLS [`Wrap`]).
pub struct StreamOutput<W: Wrap> {
    name: String,
    net: Net,
    hosts: Hosts,
    wrap: W,
    conn: Option<Conn<W::Stream>>,
    /// Stands in for a missing `$Hostname` in GELF.
    hostname: String,
}

impl<W: Wrap> StreamOutput<W> {
    pub fn new(name: &str, net: Net, wrap: W) -> Self {
        StreamOutput {
            name: name.to_string(),
            hosts: Hosts::new(net.hosts.clone()),
            net,
            wrap,
            conn: None,
            hostname: crate::event::short_hostname(),
        }
    }

    fn connect(&mut self) -> Result<(), OutputError> {
        let (local, no_delay) = (self.net.local_port, self.net.tcp_no_delay);
        let (tcp, peer) = self
            .hosts
            .connect(&self.name, |a, _| net::tcp(a, local, no_delay))?;
        let probe = tcp.try_clone().map_err(OutputError::io(
            &self.name,
            format!("cannot use the connection to {peer}"),
        ))?;
        let stream = self.wrap.wrap(&peer, tcp)?;
        tracing::info!(output = %self.name, "connected to {peer}");
        self.conn = Some(Conn {
            stream,
            probe,
            peer,
        });
        Ok(())
    }

    /// Drops a kept connection the peer closed while it was idle (a write
    /// into it would seem to succeed and the events would be lost).
    fn check_idle(&mut self) {
        let Some(c) = &mut self.conn else { return };
        if self.wrap.alive(&mut c.stream, &c.probe) {
            return;
        }
        tracing::info!(output = %self.name, "{} closed the connection; reconnecting", c.peer);
        self.conn = None;
    }

    fn write_all(&mut self, events: &[&[u8]]) -> Sent {
        let mut sent = Sent::default();
        let mut buf = Vec::with_capacity(WRITE_BUF);
        // ends[k]: where event `first + k` ends in buf.
        let mut ends = Vec::new();
        let mut next = 0;
        while next < events.len() {
            buf.clear();
            ends.clear();
            let first = next;
            while next < events.len() && (buf.is_empty() || buf.len() < WRITE_BUF) {
                frame(&self.net.output_type, events[next], &mut buf);
                ends.push(buf.len());
                next += 1;
            }
            let Some(c) = self.conn.as_mut() else {
                return sent;
            };
            let mut at = 0;
            while at < buf.len() {
                let r = c.stream.write(&buf[at..]).and_then(|n| {
                    // TLS buffers: the bytes count once flushed to the socket.
                    c.stream.flush()?;
                    Ok(n)
                });
                match r {
                    Ok(0) => {
                        let e = std::io::Error::from(std::io::ErrorKind::WriteZero);
                        return self.broken(sent, first, &ends, at, e);
                    }
                    Ok(n) => at += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return self.broken(sent, first, &ends, at, e),
                }
            }
            sent.done = next;
        }
        sent
    }

    /// A write failed after `at` bytes of the buffer holding events from
    /// `first` on: those wholly written are done, the connection dropped.
    fn broken(
        &mut self,
        mut sent: Sent,
        first: usize,
        ends: &[usize],
        at: usize,
        e: std::io::Error,
    ) -> Sent {
        sent.done = first + ends.iter().take_while(|&&end| end <= at).count();
        let peer = self
            .conn
            .take()
            .map(|c| c.peer.to_string())
            .unwrap_or_default();
        sent.error = Some(OutputError {
            output: self.name.clone(),
            what: format!("cannot send to {peer}"),
            source: Some(e),
        });
        sent
    }
}

impl<W: Wrap> StreamSink for StreamOutput<W> {
    fn send(&mut self, events: &[&[u8]]) -> Sent {
        self.check_idle();
        if self.conn.is_none() {
            if let Err(e) = self.connect() {
                return Sent {
                    error: Some(e),
                    ..Sent::default()
                };
            }
        }
        self.write_all(events)
    }
}

impl<W: Wrap> Output for StreamOutput<W> {
    fn name(&self) -> &str {
        &self.name
    }

    fn payload(&self, rec: &Record, raw_event: String) -> Vec<u8> {
        super::gelf::payload(&self.net, &self.hostname, rec, raw_event)
    }

    fn sink(&mut self) -> Sink<'_> {
        Sink::Stream(self)
    }

    fn flush(&mut self) {
        if let Some(mut c) = self.conn.take() {
            self.wrap.close(&mut c.stream);
            let _ = c.probe.shutdown(std::net::Shutdown::Write);
        }
    }
}

/// om_tcp from its module.
pub fn build(m: &Module) -> Option<Box<dyn Output>> {
    let nxconf::ModuleSettings::OmTcp(o) = &m.settings else {
        return None;
    };
    Some(Box::new(StreamOutput::new(&m.name, o.net.clone(), Plain)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nxconf::gelf::GelfOptions;
    use std::io::Read;
    use std::net::TcpListener;

    fn framed(t: OutputType, e: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        frame(&t, e, &mut v);
        v
    }

    #[test]
    fn framing_bytes() {
        #[cfg(windows)]
        assert_eq!(framed(OutputType::LineBased, b"a b"), b"a b\r\n");
        #[cfg(not(windows))]
        assert_eq!(framed(OutputType::LineBased, b"a b"), b"a b\n");
        assert_eq!(framed(OutputType::Dgram, b"x"), b"x");
        assert_eq!(
            framed(OutputType::SyslogTls, "<12>1 é".as_bytes()),
            "8 <12>1 é".as_bytes()
        );
        assert_eq!(
            framed(OutputType::GelfTcp(GelfOptions::default()), b"{}"),
            b"{}\0"
        );
        let nl = GelfOptions {
            use_null_delimiter: false,
            ..Default::default()
        };
        assert_eq!(framed(OutputType::GelfTcp(nl), b"{}"), b"{}\n");
    }

    fn out(port: u16) -> StreamOutput<Plain> {
        let net = Net {
            hosts: vec![HostPort {
                host: "127.0.0.1".into(),
                port,
            }],
            local_port: None,
            output_type: OutputType::LineBased,
            tcp_no_delay: false,
        };
        StreamOutput::new("t", net, Plain)
    }

    #[test]
    fn sends_counts_and_notices_an_idle_close() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut o = out(port);
        let events: Vec<Vec<u8>> = (0..50_000)
            .map(|i| format!("event {i}").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = events.iter().map(|e| &e[..]).collect();
        let reader = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut first = String::new();
            // Read the first batch, then close while the sender is idle.
            let mut buf = [0u8; 65536];
            while first.lines().count() < 50_000 {
                let n = s.read(&mut buf).unwrap();
                first.push_str(std::str::from_utf8(&buf[..n]).unwrap());
            }
            drop(s);
            let (mut s, _) = l.accept().unwrap();
            let mut second = String::new();
            s.read_to_string(&mut second).unwrap();
            (first, second)
        });
        let r = o.send(&refs);
        assert_eq!((r.done, r.error.is_none()), (50_000, true));
        std::thread::sleep(std::time::Duration::from_millis(200));
        // The peer closed: the next send reconnects instead of writing
        // into the dead connection.
        let r = o.send(&[b"after"]);
        assert_eq!((r.done, r.error.is_none()), (1, true), "{:?}", r.error);
        o.flush();
        let (first, second) = reader.join().unwrap();
        assert_eq!(first.lines().last(), Some("event 49999"));
        assert_eq!(second.as_bytes(), [&b"after"[..], LINE_END].concat());
    }

    #[test]
    fn refused_port_is_an_error_with_nothing_done() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let r = out(port).send(&[b"x"]);
        assert_eq!(r.done, 0);
        let e = r.error.expect("error").to_string();
        assert!(
            e.contains(&format!("cannot connect to 127.0.0.1:{port}")),
            "{e}"
        );
    }
}
