//! om_ssl's TLS against a real receiver: rsyslog's imtcp with the GnuTLS
//! stream driver (packages rsyslog and rsyslog-gnutls), started by the
//! test on a free 127.0.0.1 port with a CA and certificates made here.
//! What rsyslog parsed (PRI, host, app-name, message) is checked, not
//! only that bytes arrived.
#![cfg(unix)]

use nxconf::{Location, Tls, TlsPath, TlsVersion};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use regmon::output::tls::Connector;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// A CA, and a server certificate for localhost signed by it: PEM files
/// written to `dir` (ca.pem, server.pem, server.key).
fn make_pki(dir: &Path, ca_name: &str) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, ca_name);
    let ca_key = KeyPair::generate().unwrap();
    std::fs::write(
        dir.join("ca.pem"),
        params.self_signed(&ca_key).unwrap().pem(),
    )
    .unwrap();
    let issuer = Issuer::new(params, ca_key);
    let leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
}

/// rsyslogd, stopped when dropped.
struct Rsyslog {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Rsyslog {
    /// imtcp over TLS (gtls, anonymous clients) on a free port, writing
    /// what it parsed to `dir/out.log`.
    fn start_tls(dir: &Path) -> Rsyslog {
        assert!(
            Path::new(RSYSLOGD).exists(),
            "{RSYSLOGD} is missing: install the packages rsyslog and rsyslog-gnutls"
        );
        assert!(
            Path::new("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so").exists()
                || Path::new("/usr/lib/rsyslog/lmnsd_gtls.so").exists(),
            "rsyslog's GnuTLS driver (lmnsd_gtls.so) is missing: install rsyslog-gnutls"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.display();
        let out = dir.join("out.log");
        let conf = format!(
            r#"global(workDirectory="{d}"
       DefaultNetstreamDriverCAFile="{d}/ca.pem"
       DefaultNetstreamDriverCertFile="{d}/server.pem"
       DefaultNetstreamDriverKeyFile="{d}/server.key")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.Authmode="anon")
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="parsed" type="string" string="%PRI%|%HOSTNAME%|%APP-NAME%|%STRUCTURED-DATA%|%msg%\n")
action(type="omfile" file="{out}" template="parsed")
"#,
            out = out.display()
        );
        std::fs::write(dir.join("rsyslog.conf"), conf).unwrap();
        let child = Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("rsyslog.err")).unwrap())
            .spawn()
            .expect("rsyslogd starts");
        let r = Rsyslog { child, port, out };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "rsyslogd did not listen on {port} within 10 s: {}",
                std::fs::read_to_string(dir.join("rsyslog.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    /// The lines rsyslog wrote once there are `n` (10 s at most).
    fn lines(&self, n: usize) -> Vec<String> {
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            if lines.len() >= n || started.elapsed() > Duration::from_secs(10) {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn tls_settings(dir: &Path, ca: &str) -> Tls {
    Tls {
        ca_file: Some(TlsPath {
            directive: "CAFile",
            path: dir.join(ca),
            at: Location::new("test.conf", 1),
        }),
        ca_dir: None,
        cert_file: None,
        cert_key_file: None,
        key_pass: None,
        crl_file: None,
        crl_dir: None,
        require_cert: true,
        allow_untrusted: false,
        allow_expired: false,
        protocols: vec![TlsVersion::Tls12, TlsVersion::Tls13],
    }
}

#[test]
fn rsyslog_gnutls_receives_and_parses_over_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_pki(dir, "regmon test CA");
    let rsyslog = Rsyslog::start_tls(dir);
    let connector = Connector::new("ssl", &tls_settings(dir, "ca.pem")).unwrap();

    let tcp = TcpStream::connect(("127.0.0.1", rsyslog.port)).unwrap();
    let mut s = connector.connect("localhost", tcp).unwrap();
    let lines = [
        "<12>1 2024-05-01T10:00:00.000000+00:00 winhost regmon - - [NXLOG@14506 EventType=\"CHANGE\"] HKLM\\Software\\Run\\x changed\n",
        "<12>May  1 10:00:01 winhost regmon[42]: second event\n",
    ];
    for l in lines {
        s.write_all(l.as_bytes()).unwrap();
    }
    s.conn.send_close_notify();
    s.flush().unwrap();
    s.sock.shutdown(std::net::Shutdown::Write).unwrap();
    let _ = s.sock.read_to_end(&mut Vec::new());

    let got = rsyslog.lines(2);
    assert_eq!(
        got,
        [
            "12|winhost|regmon|[NXLOG@14506 EventType=\"CHANGE\"]|HKLM\\Software\\Run\\x changed",
            // RFC 3164: rsyslog keeps the space after the tag.
            "12|winhost|regmon|-| second event"
        ],
        "rsyslog's output"
    );
}

#[test]
fn rsyslog_with_a_certificate_from_another_ca_is_refused_and_gets_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_pki(dir, "regmon test CA");
    let rsyslog = Rsyslog::start_tls(dir);
    // The client trusts another CA only.
    let other = tempfile::tempdir().unwrap();
    make_pki(other.path(), "another CA");
    let connector = Connector::new("ssl", &tls_settings(other.path(), "ca.pem")).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", rsyslog.port)).unwrap();
    let e = connector
        .connect("localhost", tcp)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("output 'ssl': TLS handshake with localhost failed")
            && e.contains("not signed by a CA of CAFile"),
        "{e}"
    );
    // ... and the name is checked against what the certificate names.
    let connector = Connector::new("ssl", &tls_settings(dir, "ca.pem")).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", rsyslog.port)).unwrap();
    let e = connector
        .connect("127.0.0.1", tcp)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("not valid for the name '127.0.0.1'"), "{e}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(rsyslog.lines(0).is_empty());
}
