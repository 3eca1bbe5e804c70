//! om_ssl end to end: the real binary sending to rsyslog's imtcp with the
//! GnuTLS driver (packages rsyslog, rsyslog-gnutls), started by the test
//! on a free 127.0.0.1 port with a CA and certificates made here. What
//! rsyslog parsed is checked; a server certificate from another CA or for
//! another name gets nothing (and --once fails naming host and reason);
//! AllowUntrusted TRUE delivers; a receiver restarted mid-run gets the
//! events queued meanwhile.
#![cfg(unix)]

mod common;

use common::rsyslog::{Rsyslog, Tls};
use common::*;
use hive::write::KeyNode;
use hive::ValueType;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::path::Path;
use std::time::Duration;

/// A CA (ca.pem) and a certificate for localhost signed by it
/// (server.pem, server.key) in `dir`; and another CA (other-ca.pem).
fn pki(dir: &Path) -> Tls {
    let ca = |name: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let pem = p.self_signed(&key).unwrap().pem();
        (pem, Issuer::new(p, key))
    };
    let (pem, issuer) = ca("regmon test CA");
    std::fs::write(dir.join("ca.pem"), pem).unwrap();
    std::fs::write(dir.join("other-ca.pem"), ca("another CA").0).unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    Tls {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

/// A SOFTWARE hive whose key Watched holds `n` DWORD values set to `gen`.
fn hive(env: &Env, n: usize, gen: u32) {
    let mut root = KeyNode::new("ROOT");
    let k = root.key_mut("Watched");
    for i in 0..n {
        k.set_value(&format!("V{i:05}"), ValueType::DWORD, dword(gen));
    }
    env.write_hive("SOFTWARE", &root);
}

/// im_regmon over Watched, to one om_ssl output `t` with `directives`;
/// `$raw_event` made RFC 5424 with APP-NAME `app`.
fn conf(env: &Env, scan_interval: u32, directives: &str, app: &str) -> String {
    let text = format!(
        "<Input regmon>\n Module im_regmon\n HiveFile 'HKLM\\SOFTWARE' 'SOFTWARE'\n \
         RegValue 'HKLM\\SOFTWARE\\Watched\\*'\n ScanInterval {scan_interval}\n</Input>\n\
         <Output t>\n Module om_ssl\n{directives} Exec $raw_event = '<12>1 2024-05-01T10:00:00.000000Z WS01 {app} - ' + $EventType + \
         ' [NXLOG@14506 EventType=\"' + $EventType + '\"] ' + $RegistryValueName;\n</Output>\n\
         <Route r>\n Path regmon => t\n</Route>\n"
    );
    env.write("regmon.conf", &text);
    "regmon.conf".into()
}

fn value_names(msgs: &[serde_json::Value], app: &str) -> Vec<String> {
    let mut v: Vec<String> = msgs
        .iter()
        .filter(|m| m["app_name"] == app)
        .map(|m| m["msg"].as_str().unwrap_or_default().trim().to_string())
        .collect();
    v.sort();
    v
}

fn expected(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("HKLM\\SOFTWARE\\Watched\\V{i:05}"))
        .collect()
}

/// --once over TLS, LF lines and octet counting: every event arrives
/// once, with what rsyslog parsed.
#[test]
fn once_to_rsyslog_over_tls() {
    let certs = tempfile::tempdir().unwrap();
    let tls = pki(certs.path());
    let ca = tls.ca.display().to_string();
    let mut rs = Rsyslog::with_tls(tls);
    rs.start();
    let port = rs.tls_port.unwrap();
    let n = 300;
    for (app, extra) in [("lines", ""), ("counted", " OutputType Syslog_TLS\n")] {
        let env = Env::new();
        hive(&env, n, 1);
        let c = conf(
            &env,
            0,
            &format!(" Host localhost:{port}\n CAFile '{ca}'\n{extra}"),
            app,
        );
        env.once(&c);
        hive(&env, n, 2);
        env.once(&c);
    }
    let msgs = rs.wait_for(2 * n, Duration::from_secs(30));
    assert_eq!(msgs.len(), 2 * n);
    for app in ["lines", "counted"] {
        assert_eq!(value_names(&msgs, app), expected(n), "{app}");
    }
    let m = &msgs[0];
    assert_eq!(m["pri"], "12", "{m}");
    assert_eq!(m["hostname"], "WS01", "{m}");
    assert_eq!(m["msgid"], "CHANGE", "{m}");
    assert_eq!(m["sd"], "[NXLOG@14506 EventType=\"CHANGE\"]", "{m}");
    assert!(
        m["timestamp"]
            .as_str()
            .unwrap_or_default()
            .starts_with("2024-05-01T10:00:00"),
        "{m}"
    );
}

/// A server certificate from a CA not in CAFile, or not naming the Host:
/// nothing arrives, --once fails naming the host and the reason, the
/// events stay queued; AllowUntrusted TRUE then delivers them.
#[test]
fn untrusted_or_misnamed_server_gets_nothing() {
    let certs = tempfile::tempdir().unwrap();
    let tls = pki(certs.path());
    let other = certs.path().join("other-ca.pem").display().to_string();
    let ca = tls.ca.display().to_string();
    let mut rs = Rsyslog::with_tls(tls);
    rs.start();
    let port = rs.tls_port.unwrap();
    let n = 20;
    let mut env = Env::new();
    for (directives, says) in [
        (
            format!(" Host localhost:{port}\n CAFile '{other}'\n"),
            "TLS handshake with localhost failed: its certificate is not signed by a CA of CAFile/CADir",
        ),
        (
            format!(" Host 127.0.0.1:{port}\n CAFile '{ca}'\n"),
            "TLS handshake with 127.0.0.1 failed: its certificate is not valid for the name '127.0.0.1'",
        ),
    ] {
        // Each round starts from a fresh baseline.
        env = Env::new();
        hive(&env, n, 1);
        let c = conf(&env, 0, &directives, "t");
        env.once(&c);
        hive(&env, n, 2);
        let out = env.run(&["-c", &c, "--once"]);
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{log}");
        assert!(log.contains(says), "{log}");
        assert!(log.contains("nothing was sent"), "{log}");
        assert!(log.contains(&format!("{n} events stay queued")), "{log}");
        std::thread::sleep(Duration::from_millis(500));
        assert!(rs.messages().is_empty(), "{:?}", rs.messages());
    }
    // AllowUntrusted TRUE: the events the last round queued go
    // (encrypted, not authenticated).
    let c = conf(
        &env,
        0,
        &format!(" Host 127.0.0.1:{port}\n AllowUntrusted TRUE\n"),
        "t",
    );
    let log = env.once(&c);
    let msgs = rs.wait_for(n, Duration::from_secs(20));
    assert_eq!(value_names(&msgs, "t"), expected(n), "{log}");
}

/// rsyslog stopped while regmon runs, events changed meanwhile, rsyslog
/// started again: they arrive, each once.
#[test]
fn receiver_restarted_gets_the_queued_events() {
    let env = Env::new();
    let tls = pki(env.dir.path());
    let ca = tls.ca.display().to_string();
    let mut rs = Rsyslog::with_tls(tls);
    rs.start();
    let port = rs.tls_port.unwrap();
    let n = 200;
    hive(&env, n, 1);
    let c = conf(
        &env,
        1,
        &format!(" Host localhost:{port}\n CAFile '{ca}'\n"),
        "t",
    );
    let mut child = env.spawn(&c, "regmon.log");
    assert!(wait_for(Duration::from_secs(20), || env
        .read("regmon.log")
        .contains("baseline built")));
    hive(&env, n, 2);
    let msgs = rs.wait_for(n, Duration::from_secs(30));
    assert_eq!(value_names(&msgs, "t"), expected(n));

    rs.stop();
    hive(&env, n, 3);
    assert!(
        wait_for(Duration::from_secs(20), || env
            .read("regmon.log")
            .contains("reconnecting in")),
        "{}",
        env.read("regmon.log")
    );
    rs.start();
    let msgs = rs.wait_for(2 * n, Duration::from_secs(40));
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(20));
    let got = value_names(&msgs, "t");
    let mut want = expected(n);
    want.extend(expected(n));
    want.sort();
    assert_eq!(got, want, "{}", env.read("regmon.log"));
}
