//! The test HTTP receiver (`tests/receivers/http_receiver.py`): started on
//! 127.0.0.1 on a free port, its received events read back as JSON, killed
//! on Drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/receivers/http_receiver.py"
);

/// A running receiver.
pub struct HttpReceiver {
    child: Child,
    pub port: u16,
    /// JSON lines, one per event received.
    pub events: PathBuf,
    /// Fault rules (JSON list), read on every request.
    pub control: PathBuf,
    pub https: bool,
}

impl HttpReceiver {
    /// Starts a receiver keeping its files in `dir` (plain HTTP).
    pub fn start(dir: &Path) -> HttpReceiver {
        Self::start_with(dir, 0, None)
    }

    /// On `port` (0: a free one), with TLS when given (certificate, key).
    pub fn start_with(dir: &Path, port: u16, tls: Option<(&Path, &Path)>) -> HttpReceiver {
        let events = dir.join("received.jsonl");
        let control = dir.join("faults.json");
        let mut cmd = Command::new("python3");
        cmd.arg(SCRIPT)
            .arg(&events)
            .arg("--control")
            .arg(&control)
            .arg("--port")
            .arg(port.to_string());
        if let Some((cert, key)) = tls {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run python3 for the test HTTP receiver ({e}): install python3")
            });
        let out = child.stdout.take().expect("stdout");
        let mut line = String::new();
        // The script prints its port once bound (or dies: EOF).
        BufReader::new(out).read_line(&mut line).ok();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                child.kill().ok();
                panic!("the test HTTP receiver did not start (said {line:?})")
            });
        HttpReceiver {
            child,
            port,
            events,
            control,
            https: tls.is_some(),
        }
    }

    /// `http(s)://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    /// Fault rules for the next requests (see the script's doc).
    pub fn script(&self, rules: &str) {
        std::fs::write(&self.control, rules).expect("write faults");
    }

    /// Every event received so far.
    pub fn received(&self) -> Vec<serde_json::Value> {
        read_jsonl(&self.events)
    }

    /// Every request answered so far (path, headers, size, status).
    pub fn requests(&self) -> Vec<serde_json::Value> {
        read_jsonl(&self.events.with_extension("jsonl.requests"))
    }

    /// Waits up to `limit` for at least `n` events; returns them all.
    pub fn wait_events(&self, n: usize, limit: Duration) -> Vec<serde_json::Value> {
        let start = Instant::now();
        loop {
            let got = self.received();
            if got.len() >= n || start.elapsed() > limit {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it (a receiver that went down).
    pub fn stop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_jsonl(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A test CA and a server certificate for 127.0.0.1 and localhost, made
/// with the `openssl` CLI in `dir`: (ca.pem, server.pem, server.key).
pub fn make_certs(dir: &Path, ca_name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let ca = dir.join(format!("{ca_name}.pem"));
    let ca_key = dir.join(format!("{ca_name}.key"));
    let cert = dir.join(format!("{ca_name}-server.pem"));
    let key = dir.join(format!("{ca_name}-server.key"));
    let csr = dir.join(format!("{ca_name}-server.csr"));
    let ext = dir.join(format!("{ca_name}-ext.cnf"));
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext");
    let run = |args: &[&str]| {
        let st = Command::new("openssl")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("cannot run openssl ({e}): install openssl"));
        assert!(st.success(), "openssl {args:?} failed");
    };
    let p = |p: &PathBuf| p.display().to_string();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &p(&ca_key),
        "-out",
        &p(&ca),
        "-days",
        "2",
        "-subj",
        &format!("/CN={ca_name}"),
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &p(&key),
        "-out",
        &p(&csr),
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        &p(&csr),
        "-CA",
        &p(&ca),
        "-CAkey",
        &p(&ca_key),
        "-CAcreateserial",
        "-out",
        &p(&cert),
        "-days",
        "2",
        "-extfile",
        &p(&ext),
    ]);
    (ca, cert, key)
}
