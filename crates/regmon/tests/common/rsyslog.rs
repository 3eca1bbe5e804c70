//! A real rsyslog receiver for the shipping tests: rsyslogd in the
//! foreground in a temp folder, listening on free 127.0.0.1 ports (imtcp
//! takes LF-framed and octet-counted messages, imudp datagrams; a TLS
//! listener when [`Rsyslog::with_tls`] gave certificates), writing what it
//! PARSED of each message as one JSON line: pri, facility, severity,
//! timestamp, hostname, app_name, procid, msgid, sd, msg, and the message as
//! received (raw). Killed on drop.

use serde_json::Value;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// Certificates for a TLS listener (gnutls stream driver).
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct Rsyslog {
    dir: tempfile::TempDir,
    pub tcp_port: u16,
    pub udp_port: u16,
    pub tls_port: Option<u16>,
    child: Option<Child>,
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free TCP port")
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

impl Rsyslog {
    /// A receiver configured on free ports, not started yet.
    pub fn new() -> Rsyslog {
        Rsyslog::with(None)
    }

    /// A receiver with a TLS listener too (`tls_port`).
    pub fn with_tls(tls: Tls) -> Rsyslog {
        Rsyslog::with(Some(tls))
    }

    fn with(tls: Option<Tls>) -> Rsyslog {
        assert!(
            Path::new(RSYSLOGD).exists(),
            "{RSYSLOGD} is missing: these tests need rsyslog (apt-get install rsyslog rsyslog-gnutls)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let (tcp_port, udp_port) = (free_tcp_port(), free_udp_port());
        let tls_port = tls.as_ref().map(|_| free_tcp_port());
        let d = dir.path().display().to_string();
        let mut conf = format!(
            r#"global(workDirectory="{d}")
module(load="imtcp" MaxSessions="200")
module(load="imudp")
input(type="imtcp" address="127.0.0.1" port="{tcp_port}" ruleset="out")
input(type="imudp" address="127.0.0.1" port="{udp_port}" ruleset="out")
"#
        );
        if let (Some(t), Some(p)) = (&tls, tls_port) {
            conf.push_str(&format!(
                r#"global(DefaultNetstreamDriverCAFile="{}" DefaultNetstreamDriverCertFile="{}" DefaultNetstreamDriverKeyFile="{}")
input(type="imtcp" address="127.0.0.1" port="{p}" ruleset="out" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
"#,
                t.ca.display(),
                t.cert.display(),
                t.key.display()
            ));
        }
        conf.push_str(&format!(
            r#"template(name="parsed" type="list" option.jsonf="on") {{
  property(outname="pri" name="pri" format="jsonf")
  property(outname="facility" name="syslogfacility" format="jsonf")
  property(outname="severity" name="syslogseverity" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app_name" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="raw" name="rawmsg" format="jsonf")
}}
ruleset(name="out") {{
  action(type="omfile" file="{d}/parsed.jsonl" template="parsed" asyncWriting="off" flushOnTXEnd="on")
}}
"#
        ));
        std::fs::write(dir.path().join("rsyslog.conf"), conf).expect("write rsyslog.conf");
        Rsyslog {
            dir,
            tcp_port,
            udp_port,
            tls_port,
            child: None,
        }
    }

    /// A started receiver.
    pub fn start_new() -> Rsyslog {
        let mut r = Rsyslog::new();
        r.start();
        r
    }

    /// Starts rsyslogd (again: same ports, the same output file appended)
    /// and waits until its TCP listener accepts.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "rsyslogd already running");
        let d = self.dir.path();
        let log = std::fs::File::create(d.join("rsyslogd.log")).expect("log file");
        let child = Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(d.join("rsyslog.conf"))
            .arg("-i")
            .arg(d.join("rsyslogd.pid"))
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {RSYSLOGD}: {e}"));
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.tcp_port)).is_err() {
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("rsyslogd exited ({st}): {}", self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "rsyslogd did not listen on {} within 20 s: {}",
                self.tcp_port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops rsyslogd with SIGTERM (it writes what it received), waiting
    /// for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let start = Instant::now();
            while c.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(20) {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// rsyslogd's own messages (errors about its configuration).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("rsyslogd.log")).unwrap_or_default()
    }

    /// Every message parsed so far, in arrival order.
    pub fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("parsed.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// Waits (at most `limit`) until at least `n` messages were parsed;
    /// panics saying how many came.
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let m = self.messages();
            if m.len() >= n {
                // a moment for anything beyond n (duplicates) to show
                std::thread::sleep(Duration::from_millis(300));
                return self.messages();
            }
            if start.elapsed() > limit {
                panic!(
                    "rsyslog parsed {} of {n} messages within {limit:?}; its log: {}",
                    m.len(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
