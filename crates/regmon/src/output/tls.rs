//! TLS for om_ssl: a [`Connector`] built from the block's TLS settings
//! ([`nxconf::Tls`]) turns a connected TCP stream into a [`TlsStream`],
//! the handshake done (and the server's certificate checked) before a byte
//! of an event is written. rustls with the ring provider: no C toolchain
//! beyond what ring needs, so it builds for x86_64-pc-windows-gnu too.
//!
//! - CAFile/CADir: the only trust roots (no system store, as in NXLog).
//! - AllowUntrusted: any certificate is accepted, the handshake (and its
//!   signatures) still done: encrypted, not authenticated.
//! - AllowExpired: a chain that fails only because a certificate expired
//!   is checked again at the moment its first certificate expired.
//! - CRLFile/CRLDir: revoked certificates are refused; a CA with no CRL
//!   given is not (NXLog logs "no CRLs found" and goes on).

use super::OutputError;
use nxconf::{Tls, TlsVersion};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, Error, RootCertStore,
    SignatureScheme, StreamOwned,
};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A TLS connection over TCP, ready for events.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// How long a handshake may take (as om_tcp's connect timeout).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS 1.3: how long to wait, after the
/// handshake, for the server to refuse the certificate (see `connect`).
const VERDICT_WAIT: Duration = Duration::from_secs(1);

/// Makes TLS connections with one output's settings.
pub struct Connector {
    output: String,
    config: Arc<ClientConfig>,
    timeout: Duration,
}

impl Connector {
    /// Reads the certificates and key `tls` names (again: they were read
    /// when the configuration was loaded, and may have changed since) and
    /// builds the client configuration.
    pub fn new(output: &str, tls: &Tls) -> Result<Connector, OutputError> {
        let fail = |what: String| OutputError {
            output: output.to_string(),
            what,
            source: None,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = tls
            .protocols
            .iter()
            .map(|v| match v {
                TlsVersion::Tls12 => &rustls::version::TLS12,
                TlsVersion::Tls13 => &rustls::version::TLS13,
            })
            .collect();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| fail(format!("TLS setup: {e}")))?;
        let verifier: Arc<dyn ServerCertVerifier> = if tls.allow_untrusted {
            Arc::new(AnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            })
        } else {
            let mut roots = RootCertStore::empty();
            for cert in tls.ca_certs().map_err(fail)? {
                roots
                    .add(cert)
                    .map_err(|e| fail(format!("a CA certificate is not usable: {e}")))?;
            }
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .with_crls(tls.crls().map_err(fail)?)
                .allow_unknown_revocation_status()
                .build()
                .map_err(|e| fail(format!("TLS setup: {e}")))?;
            if tls.allow_expired {
                Arc::new(AllowExpired { inner: webpki })
            } else {
                webpki
            }
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match tls.private_key().map_err(fail)? {
            Some(key) => {
                let chain = tls.cert_chain().map_err(fail)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    fail(format!(
                        "CertFile and CertKeyFile do not make a usable client certificate: {e}"
                    ))
                })?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Connector {
            output: output.to_string(),
            config: Arc::new(config),
            timeout: HANDSHAKE_TIMEOUT,
        })
    }

    /// The same connector with another handshake timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Connector {
        self.timeout = timeout;
        self
    }

    /// Does the handshake with `server_name` (the configured Host: a DNS
    /// name or an IP address, checked against the certificate) over `tcp`,
    /// within the handshake timeout. The stream's read and write timeouts
    /// are what they were before when it returns.
    pub fn connect(&self, server_name: &str, mut tcp: TcpStream) -> Result<TlsStream, OutputError> {
        let host = server_name.trim_start_matches('[').trim_end_matches(']');
        let fail = |what: String, source: Option<std::io::Error>| OutputError {
            output: self.output.clone(),
            what,
            source,
        };
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| fail(format!("'{host}' is not a valid TLS server name"), None))?;
        let mut conn = ClientConnection::new(self.config.clone(), name)
            .map_err(|e| fail(format!("TLS setup for {host}: {e}"), None))?;
        let before = (tcp.read_timeout(), tcp.write_timeout());
        let deadline = Instant::now() + self.timeout;
        while conn.is_handshaking() {
            let left = deadline.saturating_duration_since(Instant::now());
            let timed_out = || {
                fail(
                    format!(
                        "TLS handshake with {host} timed out after {} s",
                        self.timeout.as_secs_f32()
                    ),
                    None,
                )
            };
            if left.is_zero() {
                return Err(timed_out());
            }
            tcp.set_read_timeout(Some(left))
                .and_then(|()| tcp.set_write_timeout(Some(left)))
                .map_err(|e| fail(format!("TLS handshake with {host}"), Some(e)))?;
            if let Err(e) = conn.complete_io(&mut tcp) {
                if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
                    return Err(fail(handshake_error(host, tls), None));
                }
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) {
                    return Err(timed_out());
                }
                let what = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    format!("TLS handshake with {host}: the server closed the connection (is it a TLS port?)")
                } else {
                    format!("TLS handshake with {host} failed")
                };
                return Err(fail(what, Some(e)));
            }
        }
        if conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3) {
            // In TLS 1.3 the handshake ends for the client before the
            // server has judged its certificate (or its lack of one): a
            // refusal would come after the first events were written (and
            // taken as sent). Wait briefly for the server's verdict: an
            // alert, or its first record (session tickets), whichever
            // comes first; a server that sends neither costs the wait.
            tcp.set_read_timeout(Some(self.timeout.min(VERDICT_WAIT)))
                .map_err(|e| fail(format!("TLS handshake with {host}"), Some(e)))?;
            match conn.read_tls(&mut tcp) {
                Ok(0) => {
                    return Err(fail(
                        format!(
                            "TLS handshake with {host}: the server closed the connection after \
                             the handshake (did it refuse the client certificate?); nothing was sent"
                        ),
                        None,
                    ))
                }
                Ok(_) => {
                    if let Err(e) = conn.process_new_packets() {
                        return Err(fail(handshake_error(host, &e), None));
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => {
                    return Err(fail(format!("TLS handshake with {host} failed"), Some(e)))
                }
            }
        }
        if let (Ok(r), Ok(w)) = before {
            tcp.set_read_timeout(r)
                .and_then(|()| tcp.set_write_timeout(w))
                .map_err(|e| fail(format!("TLS connection to {host}"), Some(e)))?;
        }
        Ok(StreamOwned::new(conn, tcp))
    }
}

/// Why a handshake failed, for the log: names the host and what to change.
fn handshake_error(host: &str, e: &Error) -> String {
    use CertificateError as C;
    let why = match e {
        Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            format!("its certificate is not valid for the name '{host}' ({e})")
        }
        Error::InvalidCertificate(C::UnknownIssuer) => {
            "its certificate is not signed by a CA of CAFile/CADir (or the server does not send \
             its intermediate certificates); AllowUntrusted TRUE accepts any certificate"
                .to_string()
        }
        Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            format!("its certificate has expired ({e}); AllowExpired TRUE accepts it")
        }
        Error::InvalidCertificate(C::Revoked) => {
            "its certificate is revoked by a CRL of CRLFile/CRLDir".to_string()
        }
        Error::InvalidCertificate(_) => format!("its certificate is refused: {e}"),
        Error::AlertReceived(alert) => {
            use rustls::AlertDescription as A;
            let hint = match alert {
                A::CertificateRequired
                | A::BadCertificate
                | A::UnknownCA
                | A::CertificateUnknown
                | A::AccessDenied => {
                    " (did it want a client certificate it trusts? CertFile, CertKeyFile)"
                }
                A::ProtocolVersion => " (no TLS version in common: SSLProtocol)",
                A::HandshakeFailure => " (no TLS version or cipher in common?)",
                _ => "",
            };
            format!("the server refused the handshake: {alert:?}{hint}")
        }
        Error::PeerIncompatible(_) => {
            format!("no TLS version or cipher in common ({e}); SSLProtocol sets the versions")
        }
        _ => e.to_string(),
    };
    format!("TLS handshake with {host} failed: {why}; nothing was sent")
}

/// AllowUntrusted: every certificate is accepted, but the handshake's
/// signatures are still checked (the server holds the key it presents).
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// AllowExpired: the usual checks; a chain refused only because a
/// certificate expired is checked again as of the moment the first of
/// its certificates expired, so everything else (CA, name, signatures,
/// CRLs) must still hold.
#[derive(Debug)]
struct AllowExpired {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AllowExpired {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let r = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match r {
            Err(Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. },
            )) => {
                let expiry = std::iter::once(end_entity)
                    .chain(intermediates)
                    .filter_map(|c| not_after(c))
                    .min();
                match expiry {
                    Some(t) if t < now.as_secs() => self.inner.verify_server_cert(
                        end_entity,
                        intermediates,
                        server_name,
                        ocsp_response,
                        UnixTime::since_unix_epoch(Duration::from_secs(t)),
                    ),
                    _ => r,
                }
            }
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A certificate's notAfter, in seconds since the epoch (None when it
/// cannot be read: the verifier then reports the original error).
fn not_after(cert: &CertificateDer<'_>) -> Option<u64> {
    use der::asn1::{AnyRef, GeneralizedTime, UtcTime};
    use der::{Decode, Reader, SliceReader, Tag, Tagged};
    fn seq(any: AnyRef<'_>) -> Option<Vec<AnyRef<'_>>> {
        let mut r = SliceReader::new(any.value()).ok()?;
        let mut items = Vec::new();
        while !r.is_finished() {
            items.push(AnyRef::decode(&mut r).ok()?);
        }
        Some(items)
    }
    // Certificate { tbsCertificate { [0] version?, serial, signature,
    // issuer, validity { notBefore, notAfter }, ... }, ... }
    let cert = AnyRef::from_der(cert.as_ref()).ok()?;
    let tbs = seq(*seq(cert)?.first()?)?;
    let skip = usize::from(tbs.first()?.tag().is_context_specific());
    let validity = seq(*tbs.get(skip + 3)?)?;
    let end = *validity.get(1)?;
    let t = match end.tag() {
        Tag::UtcTime => UtcTime::try_from(end).ok()?.to_unix_duration(),
        Tag::GeneralizedTime => GeneralizedTime::try_from(end).ok()?.to_unix_duration(),
        _ => return None,
    };
    Some(t.as_secs())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use nxconf::{Location, TlsPath};
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SerialNumber};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    use rustls::server::WebPkiClientVerifier;
    use rustls::{ServerConfig, ServerConnection};
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::path::Path;

    /// A CA made for a test: its certificate (PEM) and what signs with it.
    pub struct Ca {
        pub pem: String,
        issuer: Issuer<'static, KeyPair>,
    }

    impl Ca {
        pub fn new(name: &str) -> Ca {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            let key = KeyPair::generate().unwrap();
            let pem = params.self_signed(&key).unwrap().pem();
            Ca {
                pem,
                issuer: Issuer::new(params, key),
            }
        }

        /// A leaf certificate for `names` (DNS names or IP addresses):
        /// (certificate PEM, key PEM).
        pub fn leaf(&self, names: &[&str], expired: bool, serial: u64) -> (String, String) {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            let mut params = CertificateParams::new(names).unwrap();
            params.serial_number = Some(SerialNumber::from(serial));
            if expired {
                params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                params.not_after = rcgen::date_time_ymd(2021, 1, 1);
            }
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &self.issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        }

        /// A CRL revoking the certificate with `serial`.
        pub fn crl(&self, serial: u64) -> String {
            let params = rcgen::CertificateRevocationListParams {
                this_update: rcgen::date_time_ymd(2024, 1, 1),
                next_update: rcgen::date_time_ymd(2100, 1, 1),
                crl_number: SerialNumber::from(1u64),
                issuing_distribution_point: None,
                revoked_certs: vec![rcgen::RevokedCertParams {
                    serial_number: SerialNumber::from(serial),
                    revocation_time: rcgen::date_time_ymd(2024, 1, 1),
                    reason_code: None,
                    invalidity_date: None,
                }],
                key_identifier_method: rcgen::KeyIdMethod::Sha256,
            };
            params.signed_by(&self.issuer).unwrap().pem().unwrap()
        }
    }

    fn path(dir: &Path, directive: &'static str, file: &str, text: &str) -> TlsPath {
        let p = dir.join(file);
        std::fs::write(&p, text).unwrap();
        TlsPath {
            directive,
            path: p,
            at: Location::new("test.conf", 1),
        }
    }

    /// Client settings: trust `ca` (PEM), present `client` (cert, key).
    pub fn settings(dir: &Path, ca: Option<&str>, client: Option<&(String, String)>) -> Tls {
        Tls {
            ca_file: ca.map(|pem| path(dir, "CAFile", "ca.pem", pem)),
            ca_dir: None,
            cert_file: client.map(|c| path(dir, "CertFile", "client.pem", &c.0)),
            cert_key_file: client.map(|c| path(dir, "CertKeyFile", "client.key", &c.1)),
            key_pass: None,
            crl_file: None,
            crl_dir: None,
            require_cert: true,
            allow_untrusted: false,
            allow_expired: false,
            protocols: vec![TlsVersion::Tls12, TlsVersion::Tls13],
        }
    }

    /// A one-connection rustls server on 127.0.0.1: its port, and what it
    /// received (or why the handshake failed).
    fn serve(
        cert: &(String, String),
        client_ca: Option<&str>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> (u16, std::thread::JoinHandle<Result<Vec<u8>, String>>) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = CertificateDer::pem_slice_iter(cert.0.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(cert.1.as_bytes()).unwrap();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .unwrap();
        let builder = match client_ca {
            Some(pem) => {
                let mut roots = RootCertStore::empty();
                roots
                    .add(CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
                    .unwrap();
                let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .unwrap();
                builder.with_client_cert_verifier(v)
            }
            None => builder.with_no_client_auth(),
        };
        let config = Arc::new(builder.with_single_cert(chain, key).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().map_err(|e| e.to_string())?;
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let conn = ServerConnection::new(config).map_err(|e| e.to_string())?;
            let mut s = StreamOwned::new(conn, tcp);
            let mut got = Vec::new();
            s.read_to_end(&mut got).map_err(|e| e.to_string())?;
            Ok(got)
        });
        (port, t)
    }

    /// Connects to the server with `tls` as `name`, sends `hello` and
    /// closes; the error text when the handshake fails.
    fn send(tls: &Tls, name: &str, port: u16) -> Result<(), String> {
        let c = Connector::new("out", tls).map_err(|e| e.to_string())?;
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut s = c.connect(name, tcp).map_err(|e| e.to_string())?;
        s.write_all(b"hello\n").unwrap();
        s.conn.send_close_notify();
        s.flush().unwrap();
        // Read what the server still sends (TLS 1.3 session tickets)
        // before closing: unread data would turn the close into a reset
        // that can make the server drop what it had not read yet.
        s.sock.shutdown(std::net::Shutdown::Write).unwrap();
        let _ = s.sock.read_to_end(&mut Vec::new());
        Ok(())
    }

    const BOTH: &[&rustls::SupportedProtocolVersion] =
        &[&rustls::version::TLS12, &rustls::version::TLS13];

    #[test]
    fn trusted_server_gets_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("test CA");
        let server = ca.leaf(&["localhost", "127.0.0.1"], false, 2);
        for name in ["localhost", "127.0.0.1"] {
            let (port, t) = serve(&server, None, BOTH);
            send(&settings(dir.path(), Some(&ca.pem), None), name, port).unwrap();
            assert_eq!(t.join().unwrap().unwrap(), b"hello\n");
        }
    }

    #[test]
    fn untrusted_ca_and_wrong_name_are_refused_before_any_byte() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("test CA");
        let other = Ca::new("other CA");
        let server = ca.leaf(&["localhost"], false, 2);

        let (port, t) = serve(&server, None, BOTH);
        let e = send(
            &settings(dir.path(), Some(&other.pem), None),
            "localhost",
            port,
        )
        .unwrap_err();
        assert!(
            e.contains("output 'out': TLS handshake with localhost failed")
                && e.contains("not signed by a CA of CAFile")
                && e.contains("nothing was sent"),
            "{e}"
        );
        assert!(t.join().unwrap().is_err(), "the server got no data");

        let (port, t) = serve(&server, None, BOTH);
        let e = send(
            &settings(dir.path(), Some(&ca.pem), None),
            "db.example",
            port,
        )
        .unwrap_err();
        assert!(e.contains("not valid for the name 'db.example'"), "{e}");
        assert!(t.join().unwrap().is_err());

        // AllowUntrusted: either of them goes through, encrypted.
        let mut tls = settings(dir.path(), None, None);
        tls.allow_untrusted = true;
        let (port, t) = serve(&server, None, BOTH);
        send(&tls, "db.example", port).unwrap();
        assert_eq!(t.join().unwrap().unwrap(), b"hello\n");
    }

    #[test]
    fn expired_needs_allow_expired_and_a_trusted_chain() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("test CA");
        let server = ca.leaf(&["localhost"], true, 2);
        let mut tls = settings(dir.path(), Some(&ca.pem), None);
        let (port, t) = serve(&server, None, BOTH);
        let e = send(&tls, "localhost", port).unwrap_err();
        assert!(
            e.contains("has expired") && e.contains("AllowExpired TRUE"),
            "{e}"
        );
        assert!(t.join().unwrap().is_err());

        tls.allow_expired = true;
        let (port, t) = serve(&server, None, BOTH);
        send(&tls, "localhost", port).unwrap();
        assert_eq!(t.join().unwrap().unwrap(), b"hello\n");

        // Still the name and the CA are checked.
        let (port, t) = serve(&server, None, BOTH);
        let e = send(&tls, "other.example", port).unwrap_err();
        assert!(e.contains("not valid for the name"), "{e}");
        drop(t.join());
        let other = Ca::new("other CA");
        let mut tls = settings(dir.path(), Some(&other.pem), None);
        tls.allow_expired = true;
        let (port, t) = serve(&server, None, BOTH);
        let e = send(&tls, "localhost", port).unwrap_err();
        assert!(e.contains("not signed by a CA"), "{e}");
        drop(t.join());
    }

    #[test]
    fn client_certificate_when_the_server_requires_one() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("test CA");
        let server = ca.leaf(&["localhost"], false, 2);
        let client = ca.leaf(&["regmon-client"], false, 3);

        let (port, t) = serve(&server, Some(&ca.pem), BOTH);
        send(
            &settings(dir.path(), Some(&ca.pem), Some(&client)),
            "localhost",
            port,
        )
        .unwrap();
        assert_eq!(t.join().unwrap().unwrap(), b"hello\n");

        // Without one: TLS 1.3 ends the handshake before the server
        // checks the client, so the refusal shows at the first read or
        // write; TLS 1.2 shows it at connect.
        let (port, t) = serve(&server, Some(&ca.pem), &[&rustls::version::TLS12]);
        let e = send(
            &settings(dir.path(), Some(&ca.pem), None),
            "localhost",
            port,
        )
        .unwrap_err();
        assert!(
            e.contains("refused the handshake") && e.contains("CertFile"),
            "{e}"
        );
        assert!(t.join().unwrap().is_err());
    }

    #[test]
    fn revoked_by_crl_and_protocol_versions() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("test CA");
        let server = ca.leaf(&["localhost"], false, 7);
        let mut tls = settings(dir.path(), Some(&ca.pem), None);
        tls.crl_file = Some(path(dir.path(), "CRLFile", "crl.pem", &ca.crl(7)));
        let (port, t) = serve(&server, None, BOTH);
        let e = send(&tls, "localhost", port).unwrap_err();
        assert!(e.contains("revoked"), "{e}");
        drop(t.join());
        // A CRL that revokes another certificate changes nothing.
        tls.crl_file = Some(path(dir.path(), "CRLFile", "crl.pem", &ca.crl(8)));
        let (port, t) = serve(&server, None, BOTH);
        send(&tls, "localhost", port).unwrap();
        assert_eq!(t.join().unwrap().unwrap(), b"hello\n");

        let mut tls = settings(dir.path(), Some(&ca.pem), None);
        tls.protocols = vec![TlsVersion::Tls13];
        let (port, t) = serve(&server, None, &[&rustls::version::TLS12]);
        let e = send(&tls, "localhost", port).unwrap_err();
        assert!(e.contains("SSLProtocol"), "{e}");
        drop(t.join());
    }

    #[test]
    fn a_silent_server_times_out_and_a_plain_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("test CA");
        let tls = settings(dir.path(), Some(&ca.pem), None);
        let c = Connector::new("out", &tls)
            .unwrap()
            .with_timeout(Duration::from_millis(300));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let started = Instant::now();
        let e = c.connect("localhost", tcp).err().unwrap().to_string();
        assert!(e.contains("timed out"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(3));

        // A plain-text server that closes: said so.
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (peer, _) = listener.accept().unwrap();
        let _ = listener.accept(); // the first connection's
        drop(peer);
        let e = c.connect("localhost", tcp).err().unwrap().to_string();
        assert!(e.contains("closed the connection"), "{e}");
    }

    #[test]
    fn not_after_is_read() {
        let ca = Ca::new("test CA");
        let (pem, _) = ca.leaf(&["x"], true, 1);
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        // 2021-01-01T00:00:00Z
        assert_eq!(not_after(&der), Some(1_609_459_200));
        assert_eq!(not_after(&CertificateDer::from(vec![0x30, 0x00])), None);
    }
}
