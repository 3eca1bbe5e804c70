//! om_ssl: om_tcp's [`StreamOutput`] with TLS wrapped around each fresh
//! connection. The handshake (and the server's certificate check) ends
//! before a byte of an event is written: a certificate or host-name
//! mismatch is a send error naming the host and the reason, the events
//! stay queued, and nothing goes out in clear text.

use super::tcp::{StreamOutput, Wrap};
use super::tls::{Connector, TlsStream};
use super::{Output, OutputError};
use nxconf::{HostPort, Module, Tls};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How long a close waits for the server's last records (see [`Wrap::close`]).
const CLOSE_DRAIN: Duration = Duration::from_secs(1);

/// TLS around each connection.
pub struct TlsWrap {
    output: String,
    tls: Tls,
    /// Built at the first connection (and again after it failed): the
    /// certificate files are read then, so a file that went missing after
    /// the configuration was loaded is a send error that is retried with
    /// the backoff, not a failure to start.
    connector: Option<Connector>,
}

impl TlsWrap {
    pub fn new(output: &str, tls: Tls) -> TlsWrap {
        TlsWrap {
            output: output.to_string(),
            tls,
            connector: None,
        }
    }
}

impl Wrap for TlsWrap {
    type Stream = TlsStream;

    fn wrap(&mut self, host: &HostPort, tcp: TcpStream) -> Result<TlsStream, OutputError> {
        let connector = match self.connector.take() {
            Some(c) => c,
            None => Connector::new(&self.output, &self.tls)?,
        };
        let r = connector.connect(&host.host, tcp);
        self.connector = Some(connector);
        r
    }

    /// Reads what the server sent while the connection was idle (session
    /// tickets, a close_notify): unread TLS records would hide the peer's
    /// close from a plain peek.
    fn alive(&mut self, s: &mut TlsStream, probe: &TcpStream) -> bool {
        if probe.set_nonblocking(true).is_err() {
            return false;
        }
        let alive = loop {
            match s.conn.read_tls(&mut s.sock) {
                Ok(0) => break false,
                Ok(_) => match s.conn.process_new_packets() {
                    Ok(st) if st.peer_has_closed() => break false,
                    Ok(_) => {
                        // The receiver sends no data; drop any it did.
                        let mut b = [0u8; 4096];
                        while matches!(s.conn.reader().read(&mut b), Ok(n) if n > 0) {}
                    }
                    Err(_) => break false,
                },
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break false,
            }
        };
        alive && probe.set_nonblocking(false).is_ok()
    }

    /// close_notify, then the write side shut and what the server still
    /// sends read briefly: closing with unread data (TLS 1.3 session
    /// tickets) sends a reset that can make the receiver drop bytes it
    /// had not read yet.
    fn close(&mut self, s: &mut TlsStream) {
        s.conn.send_close_notify();
        let _ = s.flush();
        let _ = s.sock.shutdown(std::net::Shutdown::Write);
        let end = Instant::now() + CLOSE_DRAIN;
        let mut b = [0u8; 4096];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() || s.sock.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match s.sock.read(&mut b) {
                Ok(n) if n > 0 => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                _ => break,
            }
        }
    }
}

/// om_ssl from its module.
pub fn build(m: &Module) -> Option<Box<dyn Output>> {
    let nxconf::ModuleSettings::OmSsl(o) = &m.settings else {
        return None;
    };
    let wrap = TlsWrap::new(&m.name, o.tls.clone());
    Some(Box::new(StreamOutput::new(&m.name, o.net.clone(), wrap)))
}

#[cfg(test)]
mod tests {
    use super::super::tls::tests::{settings, Ca};
    use super::super::StreamSink;
    use super::*;
    use nxconf::{Net, OutputType};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::{ServerConfig, ServerConnection, StreamOwned};
    use std::net::TcpListener;
    use std::sync::Arc;

    /// A rustls server on 127.0.0.1 taking one connection per entry of
    /// `stop_after` in turn (each read to its end, or closed by the server
    /// once it has that many bytes): its port, and what each delivered.
    fn serve(
        cert: &(String, String),
        stop_after: Vec<Option<usize>>,
    ) -> (u16, std::thread::JoinHandle<Vec<Vec<u8>>>) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = CertificateDer::pem_slice_iter(cert.0.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(cert.1.as_bytes()).unwrap();
        let config = Arc::new(
            ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let mut got = Vec::new();
            for stop in stop_after {
                let (tcp, _) = listener.accept().unwrap();
                tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let conn = ServerConnection::new(config.clone()).unwrap();
                let mut s = StreamOwned::new(conn, tcp);
                let mut b = Vec::new();
                match stop {
                    // An aborted handshake is an error: what came is kept.
                    None => drop(s.read_to_end(&mut b)),
                    Some(n) => {
                        let mut chunk = [0u8; 1024];
                        while b.len() < n {
                            match s.read(&mut chunk) {
                                Ok(k) if k > 0 => b.extend_from_slice(&chunk[..k]),
                                _ => break,
                            }
                        }
                        let _ = s.sock.shutdown(std::net::Shutdown::Both);
                    }
                }
                got.push(b);
            }
            got
        });
        (port, t)
    }

    fn out(dir: &std::path::Path, ca: &str, host: &str, port: u16) -> StreamOutput<TlsWrap> {
        let net = Net {
            hosts: vec![HostPort {
                host: host.into(),
                port,
            }],
            local_port: None,
            output_type: OutputType::LineBased,
            tcp_no_delay: false,
        };
        StreamOutput::new(
            "ssl",
            net,
            TlsWrap::new("ssl", settings(dir, Some(ca), None)),
        )
    }

    #[test]
    fn sends_over_tls_and_closes_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("test CA");
        let (port, t) = serve(&ca.leaf(&["localhost"], false, 2), vec![None]);
        let mut o = out(dir.path(), &ca.pem, "localhost", port);
        let events: Vec<Vec<u8>> = (0..20_000)
            .map(|i| format!("event {i}").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = events.iter().map(|e| &e[..]).collect();
        let r = o.send(&refs);
        assert_eq!((r.done, r.error.is_none()), (20_000, true), "{:?}", r.error);
        o.flush();
        let got = t.join().unwrap();
        let text = String::from_utf8(got[0].clone()).unwrap();
        assert_eq!(text.lines().count(), 20_000);
        assert_eq!(text.lines().last(), Some("event 19999"));
    }

    #[test]
    fn wrong_name_is_an_error_and_nothing_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("test CA");
        let (port, t) = serve(&ca.leaf(&["other.example"], false, 2), vec![None]);
        let mut o = out(dir.path(), &ca.pem, "localhost", port);
        let r = o.send(&[b"secret event"]);
        assert_eq!(r.done, 0);
        let e = r.error.expect("error").to_string();
        assert!(
            e.contains("localhost") && e.contains("not valid for the name"),
            "{e}"
        );
        assert!(t.join().unwrap()[0].is_empty());
    }

    #[test]
    fn a_server_that_closed_while_idle_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("test CA");
        let (port, t) = serve(&ca.leaf(&["localhost"], false, 2), vec![Some(4), None]);
        let mut o = out(dir.path(), &ca.pem, "localhost", port);
        // The server closes the first connection once it has the first
        // event, as a restarting receiver would.
        assert_eq!(o.send(&[b"one"]).done, 1);
        std::thread::sleep(Duration::from_millis(200));
        let r = o.send(&[b"two"]);
        assert_eq!((r.done, r.error.is_none()), (1, true), "{:?}", r.error);
        o.flush();
        let got = t.join().unwrap();
        let line = |e: &[u8]| [e, crate::output::tcp::LINE_END].concat();
        assert_eq!(got, [line(b"one"), line(b"two")]);
    }
}
