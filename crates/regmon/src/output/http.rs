//! om_http: queued events POSTed to an HTTP(S) endpoint, one request per
//! event (NXLog CE) or per batch (`BatchMode multiline` / `multipart`,
//! NXLog EE).
//!
//! A request whose answer is 2xx has delivered its events. 408, 429, 5xx,
//! a redirect, a timeout or a connection/TLS failure leave them queued:
//! the runtime backs off (1 s doubling to 20 minutes, as NXLog's om_http)
//! and the next attempt goes to the next URL, wrapping. Any other 4xx is
//! the receiver refusing those events for good: they go to the dead-letter
//! file and delivery goes on (NXLog would resend them forever).

use super::{Output, OutputError, Sent, Sink, StreamSink};
use flate2::write::{GzEncoder, ZlibEncoder};
use nxconf::om_http::{BatchMode, Compression, OmHttp, PathAt, MAX_BODY};
use nxconf::{Module, ModuleSettings};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::tls::{parse_pem, Certificate, ClientCert, PemItem, RootCerts, TlsConfig};

/// NXLog's om_http caps its reconnect wait at 20 minutes.
const MAX_BACKOFF: Duration = Duration::from_secs(20 * 60);
/// Connect and response timeouts: NXLog's `OM_HTTP_TIMEOUT_SEC` is 10 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Sending one request's body (1 MB at most) to a slow receiver.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// One `send` call stops starting new requests after this long (each
/// request is bounded by the timeouts above): the runtime's loop waits.
const SEND_BUDGET: Duration = Duration::from_secs(30);
/// How much of a refusal's body a message quotes.
const QUOTE: usize = 300;

/// An om_http instance.
pub struct HttpOutput {
    name: String,
    cfg: OmHttp,
    /// The client, or why it could not be set up (a certificate file that
    /// cannot be read): every send then fails with that message.
    agent: Result<ureq::Agent, String>,
    /// The URL requests go to now (index into `cfg.urls`).
    current: usize,
    /// Makes multipart boundaries differ between requests.
    boundaries: u64,
}

/// Builds the output for an om_http module.
pub fn build(m: &Module) -> Option<Box<dyn Output>> {
    let ModuleSettings::OmHttp(cfg) = &m.settings else {
        return None;
    };
    let agent = agent(cfg);
    if let Err(e) = &agent {
        tracing::error!(output = %m.name, "{e}; events stay queued until this is fixed");
    }
    Some(Box::new(HttpOutput {
        name: m.name.clone(),
        cfg: (**cfg).clone(),
        agent,
        current: 0,
        boundaries: 0,
    }))
}

/// The HTTP client: keep-alive connections, NXLog's timeouts, no proxy
/// from the environment (NXLog uses none), redirects not followed (a POST
/// that moved is a configuration to fix), statuses read by us.
fn agent(cfg: &OmHttp) -> Result<ureq::Agent, String> {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .user_agent("regmon")
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_send_request(Some(SEND_TIMEOUT))
        .timeout_send_body(Some(SEND_TIMEOUT))
        .timeout_recv_response(Some(RESPONSE_TIMEOUT))
        .timeout_recv_body(Some(RESPONSE_TIMEOUT))
        .max_idle_age(Duration::from_secs(300))
        .tls_config(tls(cfg)?)
        .build();
    Ok(config.into())
}

/// The TLS settings of the HTTPS* directives. Without HTTPSCAFile or
/// HTTPSCADir the server is checked against Mozilla's roots (built in).
fn tls(cfg: &OmHttp) -> Result<TlsConfig, String> {
    let mut roots = Vec::new();
    if let Some(f) = &cfg.ca_file {
        let certs = certs_in(f, &read(f, &f.path)?)?;
        if certs.is_empty() {
            return Err(format!(
                "HTTPSCAFile '{}' ({}) holds no PEM certificate",
                f.path, f.location
            ));
        }
        roots.extend(certs);
    }
    if let Some(d) = &cfg.ca_dir {
        let entries = std::fs::read_dir(&d.path)
            .map_err(|e| format!("cannot read HTTPSCADir '{}' ({}): {e}", d.path, d.location))?;
        let before = roots.len();
        for e in entries.flatten() {
            let p = e.path();
            if p.is_file() {
                // Files that are not PEM certificates (an index, a CRL) are
                // skipped, as OpenSSL's hashed directories hold them too.
                if let Ok(bytes) = std::fs::read(&p) {
                    roots.extend(certs_in(d, &bytes).unwrap_or_default());
                }
            }
        }
        if roots.len() == before {
            return Err(format!(
                "HTTPSCADir '{}' ({}) holds no PEM certificate",
                d.path, d.location
            ));
        }
    }
    let client = match (&cfg.cert_file, &cfg.cert_key_file) {
        (Some(c), Some(k)) => {
            let chain = certs_in(c, &read(c, &c.path)?)?;
            if chain.is_empty() {
                return Err(format!(
                    "HTTPSCertFile '{}' ({}) holds no PEM certificate",
                    c.path, c.location
                ));
            }
            let key = parse_pem(&read(k, &k.path)?)
                .find_map(|i| match i {
                    Ok(PemItem::PrivateKey(k)) => Some(k),
                    _ => None,
                })
                .ok_or_else(|| {
                    format!(
                        "HTTPSCertKeyFile '{}' ({}) holds no unencrypted PEM private key \
                         (regmon does not read encrypted keys: `openssl pkey -in KEY -out PLAIN`)",
                        k.path, k.location
                    )
                })?;
            Some(ClientCert::new_with_certs(&chain, key))
        }
        _ => None,
    };
    let root_certs = if roots.is_empty() {
        RootCerts::WebPki
    } else {
        RootCerts::Specific(Arc::new(roots))
    };
    Ok(TlsConfig::builder()
        .root_certs(root_certs)
        .client_cert(client)
        .disable_verification(cfg.allow_untrusted)
        .build())
}

fn read(at: &PathAt, path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read '{path}' ({}): {e}", at.location))
}

fn certs_in(at: &PathAt, pem: &[u8]) -> Result<Vec<Certificate<'static>>, String> {
    let mut out = Vec::new();
    for item in parse_pem(pem) {
        match item {
            Ok(PemItem::Certificate(c)) => out.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("'{}' ({}): bad PEM: {e}", at.path, at.location)),
        }
    }
    Ok(out)
}

/// Why a request did not deliver.
enum Fail {
    /// Refused for good (4xx other than 408/429): dead letter.
    Reject(String),
    /// Retry later, at the next URL.
    Retry(String),
}

impl HttpOutput {
    /// How many of `events` (at least one) the next request carries.
    fn batch_len(&self, events: &[&[u8]]) -> usize {
        if self.cfg.batch_mode == BatchMode::None {
            return 1;
        }
        let mut size = 0;
        let mut n = 0;
        for e in events.iter().take(self.cfg.batch_size) {
            // Part headers and separators: a small allowance.
            size += e.len() + 64;
            if n > 0 && size > MAX_BODY {
                break;
            }
            n += 1;
        }
        n.max(1)
    }

    /// The body of a request carrying `events`, and its Content-Type.
    fn body(&mut self, events: &[&[u8]]) -> (Vec<u8>, String) {
        match self.cfg.batch_mode {
            BatchMode::None => (events.concat(), self.cfg.content_type.clone()),
            BatchMode::Multiline => {
                let mut b = Vec::with_capacity(events.iter().map(|e| e.len() + 1).sum());
                for e in events {
                    b.extend_from_slice(e);
                    b.push(b'\n');
                }
                (b, self.cfg.content_type.clone())
            }
            BatchMode::Multipart => {
                let boundary = self.boundary(events);
                let mut b = Vec::new();
                for e in events {
                    b.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
                    b.extend_from_slice(
                        format!("Content-Type: {}\r\n", self.cfg.content_type).as_bytes(),
                    );
                    for (k, v) in &self.cfg.headers {
                        b.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
                    }
                    b.extend_from_slice(b"\r\n");
                    b.extend_from_slice(e);
                    b.extend_from_slice(b"\r\n");
                }
                b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
                (b, format!("multipart/mixed; boundary={boundary}"))
            }
        }
    }

    /// A multipart boundary found in none of `events`.
    fn boundary(&mut self, events: &[&[u8]]) -> String {
        loop {
            self.boundaries += 1;
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let b = format!("regmon-{:08x}-{:x}", nanos, self.boundaries);
            if !events
                .iter()
                .any(|e| e.windows(b.len()).any(|w| w == b.as_bytes()))
            {
                return b;
            }
        }
    }

    /// POSTs `events` in one request to the current URL.
    fn post(&mut self, events: &[&[u8]]) -> Result<(), Fail> {
        let (body, content_type) = self.body(events);
        let body = match compress(self.cfg.compression, body) {
            Ok(b) => b,
            Err(e) => return Err(Fail::Retry(format!("cannot compress a request body: {e}"))),
        };
        let agent = self.agent.as_ref().map_err(|e| Fail::Retry(e.clone()))?;
        let url = &self.cfg.urls[self.current];
        let mut req = agent.post(url).header("Content-Type", &content_type);
        if self.cfg.batch_mode != BatchMode::Multipart {
            for (k, v) in &self.cfg.headers {
                req = req.header(k, v);
            }
        }
        if let Some((u, p)) = &self.cfg.basic_auth {
            use base64::Engine as _;
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            req = req.header("Authorization", format!("Basic {token}"));
        }
        match self.cfg.compression {
            Compression::None => {}
            Compression::Gzip => req = req.header("Content-Encoding", "gzip"),
            Compression::Deflate => req = req.header("Content-Encoding", "deflate"),
        }
        let mut resp = match req.send(&body[..]) {
            Ok(r) => r,
            Err(e) => return Err(Fail::Retry(describe(url, &e))),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(|v| format!(" (it asks to retry after {v})"));
        // Read the answer (reused connections need it read; refusals quote it).
        let mut text = Vec::new();
        let read = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .reader()
            .read_to_end(&mut text);
        let quote = quote(&text);
        match status {
            200..=299 => {
                // The status said delivered; a body cut short changes nothing.
                let _ = read;
                Ok(())
            }
            408 | 429 => Err(Fail::Retry(format!(
                "POST {url}: HTTP {status}{}{quote}",
                retry_after.unwrap_or_default()
            ))),
            400..=499 => Err(Fail::Reject(format!("POST {url}: HTTP {status}{quote}"))),
            300..=399 => {
                let to = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("?");
                Err(Fail::Retry(format!(
                    "POST {url}: HTTP {status}, redirect to {to} not followed (set URL to it)"
                )))
            }
            _ => Err(Fail::Retry(format!(
                "POST {url}: HTTP {status}{}{quote}",
                retry_after.unwrap_or_default()
            ))),
        }
    }
}

/// A client error, with what the user needs to act on it.
fn describe(url: &str, e: &ureq::Error) -> String {
    let https = url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    match e {
        ureq::Error::Rustls(_) | ureq::Error::Tls(_) => {
            format!("POST {url}: TLS handshake failed, nothing sent: {e}")
        }
        // rustls reports a refused certificate through the I/O error it
        // returns from the handshake.
        ureq::Error::Io(io) if https && io.kind() == std::io::ErrorKind::InvalidData => {
            format!("POST {url}: TLS handshake failed, nothing sent: {io}")
        }
        ureq::Error::Timeout(t) => format!("POST {url}: timed out ({t})"),
        _ => format!("POST {url}: {e}"),
    }
}

/// `: "first bytes of the body"` when there is one.
fn quote(body: &[u8]) -> String {
    let t = String::from_utf8_lossy(&body[..body.len().min(QUOTE)]);
    let t = t.trim();
    if t.is_empty() {
        String::new()
    } else {
        format!(": {t:?}")
    }
}

fn compress(c: Compression, body: Vec<u8>) -> std::io::Result<Vec<u8>> {
    match c {
        Compression::None => Ok(body),
        Compression::Gzip => {
            let mut z = GzEncoder::new(Vec::new(), flate2::Compression::default());
            z.write_all(&body)?;
            z.finish()
        }
        Compression::Deflate => {
            // HTTP's "deflate" is the zlib format (RFC 9110 8.4.1.2).
            let mut z = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            z.write_all(&body)?;
            z.finish()
        }
    }
}

impl Output for HttpOutput {
    fn name(&self) -> &str {
        &self.name
    }

    fn sink(&mut self) -> Sink<'_> {
        Sink::Stream(self)
    }
}

impl StreamSink for HttpOutput {
    fn send(&mut self, events: &[&[u8]]) -> Sent {
        let start = Instant::now();
        let mut sent = Sent::default();
        while sent.done < events.len() && start.elapsed() < SEND_BUDGET {
            let n = self.batch_len(&events[sent.done..]);
            let batch = &events[sent.done..sent.done + n];
            match self.post(batch) {
                Ok(()) => sent.done += n,
                Err(Fail::Reject(why)) => {
                    sent.rejected
                        .extend((sent.done..sent.done + n).map(|i| (i, why.clone())));
                    sent.done += n;
                }
                Err(Fail::Retry(why)) => {
                    let urls = self.cfg.urls.len();
                    let next = (self.current + 1) % urls;
                    let what = if urls > 1 {
                        format!("{why}; next attempt to {}", self.cfg.urls[next])
                    } else {
                        why
                    };
                    self.current = next;
                    sent.error = Some(OutputError {
                        output: self.name.clone(),
                        what,
                        source: None,
                    });
                    break;
                }
            }
        }
        sent
    }

    fn max_backoff(&self) -> Duration {
        MAX_BACKOFF
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(extra: &str) -> HttpOutput {
        let text =
            format!("<Output h>\nModule om_http\nURL http://127.0.0.1:1/\n{extra}</Output>\n");
        let cfg = nxconf::parse_str(&text, "h.conf").expect("config");
        let m = cfg.module("h").expect("module");
        let ModuleSettings::OmHttp(c) = &m.settings else {
            panic!("not om_http")
        };
        HttpOutput {
            name: "h".into(),
            cfg: (**c).clone(),
            agent: Err("no agent in unit tests".into()),
            current: 0,
            boundaries: 0,
        }
    }

    #[test]
    fn batches_respect_size_and_body_bounds() {
        let one = output("");
        let ev: Vec<&[u8]> = vec![b"a"; 120];
        assert_eq!(one.batch_len(&ev), 1);
        let ml = output("BatchMode multiline\n");
        assert_eq!(ml.batch_len(&ev), 50);
        assert_eq!(ml.batch_len(&ev[..7]), 7);
        let big = vec![b'x'; MAX_BODY / 3];
        let bigs: Vec<&[u8]> = vec![&big; 5];
        assert_eq!(ml.batch_len(&bigs), 2);
        let huge = vec![b'x'; MAX_BODY * 2];
        assert_eq!(ml.batch_len(&[&huge[..], b"a"]), 1);
    }

    #[test]
    fn bodies_of_each_mode() {
        let mut o = output("ContentType application/json\n");
        assert_eq!(
            o.body(&[b"{}"]),
            (b"{}".to_vec(), "application/json".into())
        );
        let mut o = output("BatchMode multiline\n");
        assert_eq!(o.body(&[b"a", b"b"]).0, b"a\nb\n");
        let mut o = output("BatchMode multipart\nAddHeader X-T: 1\n");
        let (b, ct) = o.body(&[b"a", b"b"]);
        let boundary = ct
            .strip_prefix("multipart/mixed; boundary=")
            .expect("boundary");
        let text = String::from_utf8(b).expect("utf8");
        assert_eq!(
            text,
            format!(
                "--{boundary}\r\nContent-Type: text/plain\r\nX-T: 1\r\n\r\na\r\n\
                 --{boundary}\r\nContent-Type: text/plain\r\nX-T: 1\r\n\r\nb\r\n--{boundary}--\r\n"
            )
        );
    }

    #[test]
    fn compression_round_trips() {
        let body = b"hello hello hello".to_vec();
        let gz = compress(Compression::Gzip, body.clone()).expect("gzip");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        assert_eq!(out, body);
        let z = compress(Compression::Deflate, body.clone()).expect("zlib");
        out.clear();
        flate2::read::ZlibDecoder::new(&z[..])
            .read_to_end(&mut out)
            .expect("inflate");
        assert_eq!(out, body);
    }

    #[test]
    fn a_client_that_cannot_be_set_up_keeps_events_queued() {
        let mut o = output("URL http://127.0.0.1:2/\n");
        let s = o.send(&[b"a", b"b"]);
        assert_eq!(s.done, 0);
        let e = s.error.expect("error").to_string();
        assert!(e.contains("no agent in unit tests"), "{e}");
        assert!(e.contains("next attempt to http://127.0.0.1:2/"), "{e}");
        assert_eq!(o.current, 1);
    }

    #[test]
    fn unreadable_ca_file_names_the_directive_line() {
        let text = "<Output h>\nModule om_http\nURL https://127.0.0.1:1/\nHTTPSCAFile /nonexistent/ca.pem\n</Output>\n";
        let cfg = nxconf::parse_str(text, "h.conf").expect("config");
        let ModuleSettings::OmHttp(c) = &cfg.module("h").expect("module").settings else {
            panic!("not om_http")
        };
        let e = agent(c).expect_err("error");
        assert!(e.contains("'/nonexistent/ca.pem' (h.conf:4)"), "{e}");
    }
}
