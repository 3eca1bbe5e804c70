//! om_http: events POSTed to an HTTP(S) endpoint (an ingest API: the
//! Elasticsearch `_bulk` endpoint, a Splunk HEC, Loki's push API...).
//!
//! NXLog CE sends one POST per event; EE adds `BatchMode` (one request for
//! several events), `AddHeader`, repeated `URL` for failover and basic
//! authentication. regmon reads both.

use super::spec::{Build, DirectiveSpec, ValueType as V};
use crate::diag::Location;
use crate::directive::Directive;
use crate::lang::scope::ExecApi;

/// Directives, in the order messages list them.
pub(crate) const DIRECTIVES: &[DirectiveSpec] = &[
    DirectiveSpec::many("URL", V::String),
    DirectiveSpec::once("ContentType", V::String, Some("text/plain")),
    DirectiveSpec::many("AddHeader", V::String),
    DirectiveSpec::once("BatchMode", V::Word, Some("none")),
    DirectiveSpec::once("BatchSize", V::Integer, Some("50")),
    DirectiveSpec::once("Compression", V::Word, Some("none")),
    DirectiveSpec::once("HTTPBasicAuthUser", V::String, None),
    DirectiveSpec::once("HTTPBasicAuthPassword", V::String, None),
    DirectiveSpec::once("HTTPSCAFile", V::String, None),
    DirectiveSpec::once("HTTPSCADir", V::String, None),
    DirectiveSpec::once("HTTPSCertFile", V::String, None),
    DirectiveSpec::once("HTTPSCertKeyFile", V::String, None),
    DirectiveSpec::once("HTTPSAllowUntrusted", V::Bool, Some("FALSE")),
    DirectiveSpec::once("HTTPSAllowExpired", V::Bool, Some("FALSE")),
    DirectiveSpec::once("HTTPSRequireCert", V::Bool, Some("TRUE")),
];

/// NXLog om_http directives regmon refuses by name: rather than ignore a
/// security setting it cannot apply (an encrypted key, revocation lists).
pub(crate) const UNSUPPORTED: &[&str] = &[
    "HTTPSKeyPass",
    "HTTPSCRLFile",
    "HTTPSCRLDir",
    "ProxyAddress",
    "ProxyPort",
];

/// om_http has no Exec procedures.
pub(crate) const EXEC: ExecApi = ExecApi::NONE;

/// The most events one request carries in a batch mode (a sanity bound on
/// `BatchSize`; the body is bounded by [`MAX_BODY`] anyway).
pub const MAX_BATCH_SIZE: i64 = 10_000;

/// The largest body regmon builds for one batched request, before
/// compression: Splunk HEC's default `max_content_length` (1 MB), below
/// Loki's (4 MB) and Elasticsearch's (100 MB). An event larger than this
/// still goes, alone.
pub const MAX_BODY: usize = 1_000_000;

/// How events are put in requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchMode {
    /// One POST per event, the body `$raw_event` (NXLog CE).
    None,
    /// Events of a batch one per line (each followed by LF) in one POST.
    Multiline,
    /// A `multipart/mixed` POST, one part per event, each part carrying
    /// ContentType and the AddHeader headers.
    Multipart,
}

/// `Content-Encoding` of request bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Deflate,
}

/// A file a TLS directive names, with where it was written.
#[derive(Clone, Debug)]
pub struct PathAt {
    pub path: String,
    pub location: Location,
}

/// om_http settings.
#[derive(Clone, Debug)]
pub struct OmHttp {
    /// At least one; tried in order, the next on failure, wrapping.
    pub urls: Vec<String>,
    pub content_type: String,
    /// (name, value) pairs, in order.
    pub headers: Vec<(String, String)>,
    pub batch_mode: BatchMode,
    /// Events per request in a batch mode (default 50, EE's BatchSize).
    pub batch_size: usize,
    pub compression: Compression,
    /// (user, password) for `Authorization: Basic`.
    pub basic_auth: Option<(String, String)>,
    pub ca_file: Option<PathAt>,
    pub ca_dir: Option<PathAt>,
    pub cert_file: Option<PathAt>,
    pub cert_key_file: Option<PathAt>,
    /// Default FALSE: no certificate check at all when TRUE.
    pub allow_untrusted: bool,
}

/// Headers regmon writes itself; AddHeader may not replace them.
const OWN_HEADERS: &[&str] = &[
    "Host",
    "Content-Length",
    "Transfer-Encoding",
    "Content-Encoding",
    "Connection",
];

/// Check an `<Output>` block's om_http directives into [`OmHttp`].
pub(crate) fn build(cx: &mut Build) -> Option<OmHttp> {
    let mut ok = true;
    let mut urls = Vec::new();
    let url_dirs: Vec<&Directive> = cx.each("URL").collect();
    for d in &url_dirs {
        if let Some(p) = url_placeholder(&d.value) {
            cx.error(
                d,
                super::net::placeholder_error(
                    &p,
                    "a URL such as https://collector.example.com:8088/services/collector/event",
                ),
            );
            ok = false;
            continue;
        }
        let Some(u) = cx.constant_string(d) else {
            ok = false;
            continue;
        };
        match check_url(&u) {
            Ok(()) => urls.push(u),
            Err(e) => {
                cx.error(d, format!("invalid URL '{u}': {e}"));
                ok = false;
            }
        }
    }
    if url_dirs.is_empty() {
        cx.block_error(format!(
            "<Output {}> (om_http) needs a URL directive, e.g. URL https://collector.example.com:8088/services/collector/event",
            cx.block.name
        ));
        ok = false;
    }
    let content_type = match cx.one("ContentType") {
        Some(d) => cx.constant_string(d).and_then(|c| {
            if c.is_empty() || c.contains(['\r', '\n']) {
                cx.error(d, format!("invalid ContentType '{c}'"));
                None
            } else {
                Some(c)
            }
        }),
        None => Some("text/plain".to_string()),
    };
    let mut headers = Vec::new();
    let header_dirs: Vec<&Directive> = cx.each("AddHeader").collect();
    for d in header_dirs {
        let Some(h) = cx.constant_string(d) else {
            ok = false;
            continue;
        };
        match parse_header(&h) {
            Ok(pair) => headers.push(pair),
            Err(e) => {
                cx.error(d, format!("invalid AddHeader '{h}': {e}"));
                ok = false;
            }
        }
    }
    let batch_mode = match cx.one("BatchMode") {
        None => Some(BatchMode::None),
        Some(d) => match d.value.to_ascii_lowercase().as_str() {
            "none" => Some(BatchMode::None),
            "multiline" => Some(BatchMode::Multiline),
            "multipart" => Some(BatchMode::Multipart),
            _ => {
                cx.error(
                    d,
                    format!(
                        "invalid BatchMode '{}': expected none, multiline or multipart",
                        d.value
                    ),
                );
                None
            }
        },
    };
    let batch_size = match cx.one("BatchSize") {
        None => Some(50),
        Some(d) => match cx.keep(d.as_integer()) {
            Some(n) if (1..=MAX_BATCH_SIZE).contains(&n) => usize::try_from(n).ok(),
            Some(n) => {
                cx.error(
                    d,
                    format!("invalid BatchSize {n}: expected 1 to {MAX_BATCH_SIZE}"),
                );
                None
            }
            None => None,
        },
    };
    let compression = match cx.one("Compression") {
        None => Some(Compression::None),
        Some(d) => match d.value.to_ascii_lowercase().as_str() {
            "none" => Some(Compression::None),
            "gzip" => Some(Compression::Gzip),
            "deflate" => Some(Compression::Deflate),
            _ => {
                cx.error(
                    d,
                    format!(
                        "invalid Compression '{}': expected none, gzip or deflate",
                        d.value
                    ),
                );
                None
            }
        },
    };
    let user = cx.one("HTTPBasicAuthUser");
    let pass = cx.one("HTTPBasicAuthPassword");
    let basic_auth = match (user, pass) {
        (None, None) => None,
        (Some(u), p) => {
            let user = cx.constant_string(u);
            let pass = match p {
                Some(p) => cx.constant_string(p),
                None => Some(String::new()),
            };
            if user.as_deref().is_some_and(|u| u.contains(':')) {
                cx.error(u, "HTTPBasicAuthUser may not contain ':'");
                ok = false;
            }
            ok &= user.is_some() && pass.is_some();
            user.zip(pass)
        }
        (None, Some(p)) => {
            cx.error(p, "HTTPBasicAuthPassword without HTTPBasicAuthUser");
            ok = false;
            None
        }
    };
    let mut path = |cx: &mut Build, name: &str| -> Option<PathAt> {
        let d = cx.one(name)?;
        let p = cx.constant_string(d);
        if p.is_none() {
            ok = false;
        }
        Some(PathAt {
            path: p?,
            location: d.location.clone(),
        })
    };
    let ca_file = path(cx, "HTTPSCAFile");
    let ca_dir = path(cx, "HTTPSCADir");
    let cert_file = path(cx, "HTTPSCertFile");
    let cert_key_file = path(cx, "HTTPSCertKeyFile");
    if cert_file.is_some() != cert_key_file.is_some() {
        cx.block_error(format!(
            "<Output {}> (om_http): HTTPSCertFile and HTTPSCertKeyFile go together (a client certificate and its key)",
            cx.block.name
        ));
        ok = false;
    }
    let mut allow_untrusted = false;
    cx.bool_into("HTTPSAllowUntrusted", &mut allow_untrusted);
    let mut allow_expired = false;
    cx.bool_into("HTTPSAllowExpired", &mut allow_expired);
    if allow_expired {
        if let Some(d) = cx.one("HTTPSAllowExpired") {
            cx.error(
                d,
                "HTTPSAllowExpired TRUE is not supported by regmon (its TLS library checks \
                 expiry with the rest of the chain): renew the certificate, or use \
                 HTTPSAllowUntrusted TRUE to skip every check",
            );
            ok = false;
        }
    }
    // A TLS client always requires the server's certificate (rustls has no
    // anonymous cipher suites): TRUE and FALSE behave alike.
    let mut require_cert = true;
    cx.bool_into("HTTPSRequireCert", &mut require_cert);
    if !ok {
        return None;
    }
    Some(OmHttp {
        urls,
        content_type: content_type?,
        headers,
        batch_mode: batch_mode?,
        batch_size: batch_size?,
        compression: compression?,
        basic_auth,
        ca_file,
        ca_dir,
        cert_file,
        cert_key_file,
        allow_untrusted,
    })
}

/// A template placeholder in a URL: in its host part (`https://SIEM_HOST/`),
/// or `<...>` / `{{...}}` anywhere (`https://<host>/`). Paths and queries
/// may hold upper-case words, so only the host is read for those.
fn url_placeholder(value: &str) -> Option<String> {
    let v = crate::source::unquote(value.trim());
    let rest = v.split_once("://").map_or(v, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    super::net::placeholder(host).or_else(|| {
        ["<", "{{"]
            .iter()
            .any(|o| v.contains(o))
            .then(|| super::net::placeholder(v))
            .flatten()
    })
}

/// An absolute http:// or https:// URL with a host.
fn check_url(u: &str) -> Result<(), String> {
    let lower = u.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
        .ok_or("expected http://HOST[:PORT]/PATH or https://...")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        return Err("no host".into());
    }
    if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it holds a space or control character".into());
    }
    if let Some((h, port)) = host.rsplit_once(':') {
        // "[::1]" alone has colons but no port.
        if !h.is_empty() && !port.ends_with(']') && port.parse::<u16>().is_err() {
            return Err(format!("bad port '{port}'"));
        }
    }
    Ok(())
}

/// "Name: value" into (Name, value).
fn parse_header(h: &str) -> Result<(String, String), String> {
    let (name, value) = h.split_once(':').ok_or("expected 'Name: value'")?;
    let name = name.trim();
    let value = value.trim();
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("'{name}' is not a header name"));
    }
    if value.contains(['\r', '\n']) {
        return Err("the value holds a line break".into());
    }
    if OWN_HEADERS.iter().any(|o| o.eq_ignore_ascii_case(name)) {
        return Err(format!("regmon writes {name} itself"));
    }
    Ok((name.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<OmHttp, String> {
        let text = format!("<Output h>\nModule om_http\n{body}</Output>\n");
        let cfg = crate::parse_str(&text, "h.conf").map_err(|e| e.to_string())?;
        match &cfg.module("h").ok_or("no module")?.settings {
            crate::ModuleSettings::OmHttp(x) => Ok((**x).clone()),
            _ => Err("not om_http".into()),
        }
    }

    #[test]
    fn defaults_and_full_settings() {
        let h = parse("URL http://127.0.0.1:9200/_bulk\n").unwrap();
        assert_eq!(h.urls, ["http://127.0.0.1:9200/_bulk"]);
        assert_eq!(h.content_type, "text/plain");
        assert_eq!(h.batch_mode, BatchMode::None);
        assert_eq!(h.batch_size, 50);
        assert_eq!(h.compression, Compression::None);
        assert!(h.basic_auth.is_none() && !h.allow_untrusted);

        let h = parse(
            "URL https://a.example:8088/services/collector/event\n\
             URL https://b.example/services/collector/event\n\
             ContentType application/json\n\
             AddHeader Authorization: Splunk 0000-1111\n\
             AddHeader 'X-Tag: regmon'\n\
             BatchMode Multipart\nBatchSize 200\nCompression GZIP\n\
             HTTPBasicAuthUser elastic\nHTTPBasicAuthPassword 's3cr:t'\n\
             HTTPSCAFile /etc/ca.pem\nHTTPSCertFile c.pem\nHTTPSCertKeyFile k.pem\n\
             HTTPSAllowUntrusted TRUE\nHTTPSAllowExpired FALSE\nHTTPSRequireCert TRUE\n",
        )
        .unwrap();
        assert_eq!(h.urls.len(), 2);
        assert_eq!(h.content_type, "application/json");
        assert_eq!(
            h.headers,
            [
                ("Authorization".into(), "Splunk 0000-1111".into()),
                ("X-Tag".into(), "regmon".into())
            ]
        );
        assert_eq!(h.batch_mode, BatchMode::Multipart);
        assert_eq!(h.batch_size, 200);
        assert_eq!(h.compression, Compression::Gzip);
        assert_eq!(h.basic_auth, Some(("elastic".into(), "s3cr:t".into())));
        let ca = h.ca_file.unwrap();
        assert_eq!(ca.path, "/etc/ca.pem");
        assert_eq!(ca.location.to_string(), "h.conf:13");
        assert!(h.allow_untrusted);
    }

    #[test]
    fn bad_values_name_the_line() {
        for (body, want) in [
            ("", "needs a URL directive"),
            ("URL ftp://x/\n", "h.conf:3: invalid URL 'ftp://x/'"),
            ("URL http:///x\n", "no host"),
            ("URL http://h:99999/\n", "bad port"),
            (
                "URL http://h/\nBatchMode lines\n",
                "h.conf:4: invalid BatchMode",
            ),
            ("URL http://h/\nBatchSize 0\n", "invalid BatchSize 0"),
            ("URL http://h/\nCompression zstd\n", "invalid Compression"),
            ("URL http://h/\nAddHeader NoColon\n", "invalid AddHeader"),
            (
                "URL http://h/\nAddHeader Content-Length: 3\n",
                "writes Content-Length itself",
            ),
            (
                "URL http://h/\nHTTPBasicAuthPassword x\n",
                "without HTTPBasicAuthUser",
            ),
            ("URL http://h/\nHTTPSCertFile c.pem\n", "go together"),
            (
                "URL http://h/\nHTTPSAllowExpired TRUE\n",
                "h.conf:4: HTTPSAllowExpired TRUE is not supported",
            ),
            (
                "URL http://h/\nHTTPSKeyPass x\n",
                "'HTTPSKeyPass' is not supported",
            ),
            ("URL http://h/\nHTTPSCRLFile x\n", "not supported"),
        ] {
            let e = parse(body).unwrap_err();
            assert!(e.contains(want), "{body:?}: {e}");
        }
    }

    #[test]
    fn url_placeholders_are_read_in_the_host() {
        for (u, found) in [
            ("https://<host>:8088/services/collector/event", "<host>"),
            ("'https://SPLUNK_HOST:8088/'", "SPLUNK_HOST"),
            ("https://%HEC_HOST%/", "%HEC_HOST%"),
            ("https://{{ hec }}/x", "{{ hec }}"),
            ("https://logs.example.com/<TOKEN>", "<TOKEN>"),
        ] {
            assert_eq!(url_placeholder(u).as_deref(), Some(found), "{u}");
        }
        // Paths and queries may hold upper-case words and '$'.
        for u in [
            "https://127.0.0.1:8088/services/collector/RAW_EVENTS?channel=A_B",
            "http://[::1]:9200/_bulk",
            "https://logs.example.com/v1/input/$token",
        ] {
            assert_eq!(url_placeholder(u), None, "{u}");
        }
    }

    #[test]
    fn urls_and_headers() {
        for ok in [
            "http://127.0.0.1/",
            "https://[::1]:8443/x?y=1",
            "HTTP://Host",
            "https://u:p@h:1/",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        assert_eq!(parse_header("X-A:b: c"), Ok(("X-A".into(), "b: c".into())));
        assert!(parse_header("Bad Name: x").is_err());
    }
}
