//! What the network outputs share (om_tcp, om_udp; om_ssl adds its TLS
//! settings to these): where to connect, from which local port, and how
//! each event is framed.
//!
//! `Host` takes both of NXLog's forms: the older `Host h` + `Port p`
//! (default 514) and the newer `Host h:p` / `Host [::1]:514`, where the
//! port in `Host` wins; a repeated `Host` lists failover targets, tried in
//! order and wrapped around.

use super::spec::{Build, DirectiveSpec, ValueType as V};
use super::ModuleSettings;
use crate::diag::LogLevel;
use crate::directive::Directive;
use crate::gelf::GelfOptions;

/// The port when neither `Host` nor `Port` gives one (NXLog's default).
pub const DEFAULT_PORT: u16 = 514;

pub(crate) const HOST: DirectiveSpec = DirectiveSpec::many("Host", V::Special);
pub(crate) const PORT: DirectiveSpec = DirectiveSpec::once("Port", V::Integer, Some("514"));
pub(crate) const LOCAL_PORT: DirectiveSpec = DirectiveSpec::once("LocalPort", V::Integer, None);
pub(crate) const RECONNECT: DirectiveSpec = DirectiveSpec::once("Reconnect", V::Integer, None);

/// The directives of a stream output (om_tcp; om_ssl adds its TLS ones).
pub(crate) const DIRECTIVES: &[DirectiveSpec] = &[
    HOST,
    PORT,
    LOCAL_PORT,
    RECONNECT,
    DirectiveSpec::once("OutputType", V::Word, Some("LineBased")),
    DirectiveSpec::once("TCPNoDelay", V::Bool, Some("FALSE")),
];

/// One destination: a host name or address, and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    /// A name (resolved at each connection) or an IP address (IPv6
    /// without brackets).
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How each event's bytes go on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputType {
    /// `$raw_event` + CRLF on Windows, LF elsewhere (NXLog's line end).
    LineBased,
    /// `$raw_event` alone (one datagram per event over UDP).
    Dgram,
    /// RFC 5425 octet counting: `"<len> <raw_event>"`.
    SyslogTls,
    /// GELF JSON + NUL (or newline with `UseNullDelimiter FALSE`).
    GelfTcp(GelfOptions),
    /// GELF JSON, zlib-compressed, one datagram (chunked when larger).
    GelfUdp(GelfOptions),
}

impl OutputType {
    /// The GELF settings, for the GELF types.
    pub fn gelf(&self) -> Option<&GelfOptions> {
        match self {
            OutputType::GelfTcp(g) | OutputType::GelfUdp(g) => Some(g),
            _ => None,
        }
    }
}

/// Whether the output is a byte stream or datagrams: which GELF type fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    Stream,
    Datagram,
}

/// The network settings of an output.
#[derive(Clone, Debug)]
pub struct Net {
    /// At least one; failover order.
    pub hosts: Vec<HostPort>,
    /// Bind to this local port before connecting/sending.
    pub local_port: Option<u16>,
    pub output_type: OutputType,
    /// Stream outputs: disable Nagle (default FALSE).
    pub tcp_no_delay: bool,
}

/// Reads a `Host` value: `h`, `h:p`, `[v6]`, `[v6]:p`, or a bare IPv6
/// address. The port is `None` when the value has none.
pub fn parse_host(text: &str) -> Result<(String, Option<u16>), String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty Host".into());
    }
    let port = |p: &str| -> Result<Option<u16>, String> {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(format!(
                "invalid port '{p}' in Host '{t}' (expected 1-65535)"
            )),
        }
    };
    if let Some(rest) = t.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return Err(format!("Host '{t}' has '[' without ']'"));
        };
        if addr.is_empty() || !addr.contains(':') {
            return Err(format!(
                "Host '{t}': brackets hold an IPv6 address, e.g. [::1]:514"
            ));
        }
        return match after {
            "" => Ok((addr.to_string(), None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((addr.to_string(), port(p)?)),
                None => Err(format!("Host '{t}': expected ':PORT' after ']'")),
            },
        };
    }
    match t.matches(':').count() {
        0 => Ok((t.to_string(), None)),
        // Two colons or more: a bare IPv6 address, no port.
        1 => {
            let (h, p) = t.split_once(':').unwrap_or((t, ""));
            if h.is_empty() {
                return Err(format!("Host '{t}' has no host name before ':'"));
            }
            Ok((h.to_string(), port(p)?))
        }
        _ => Ok((t.to_string(), None)),
    }
    .and_then(|(h, p)| {
        if h.chars().any(|c| c.is_whitespace() || c == '/') {
            Err(format!(
                "invalid Host '{t}' (expected HOST, HOST:PORT or [IPv6]:PORT)"
            ))
        } else {
            Ok((h, p))
        }
    })
}

/// The part of a directive value that looks like a placeholder left from
/// a vendor template: `<SIEM_IP>`, `{{ host }}`, `${HOST}`, an unresolved
/// `%HOST%`, `$IP`, an upper-case word with an underscore (`CUSTOM_PORT`),
/// `CHANGEME`, `[Server.IP.Address]` or `x.x.x.x`. Host names never hold these, so refusing them early says
/// what is wrong instead of failing to resolve at run time.
pub(crate) fn placeholder(value: &str) -> Option<String> {
    let v = crate::source::unquote(value.trim());
    for (open, close) in [("{{", "}}"), ("${", "}"), ("<", ">")] {
        if let Some(a) = v.find(open) {
            if let Some(b) = v[a + open.len()..].find(close) {
                return Some(v[a..a + open.len() + b + close.len()].to_string());
            }
        }
    }
    // `[Graylog.Server.IP.Address]`: brackets hold IPv6 addresses only.
    if let (Some(a), Some(b)) = (v.find('['), v.find(']')) {
        if a < b && !v[a..b].contains(':') {
            return Some(v[a..=b].to_string());
        }
    }
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    // Words templates use for "fill this in".
    if let Some(t) = v.split(|c: char| !word(c)).find(|t| {
        ["changeme", "replaceme", "fixme", "todo"].contains(&t.to_ascii_lowercase().as_str())
    }) {
        return Some(t.to_string());
    }
    let bytes: Vec<char> = v.chars().collect();
    for (i, c) in bytes.iter().enumerate() {
        let rest: String = bytes[i + 1..].iter().take_while(|c| word(**c)).collect();
        let starts_word = rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
        if *c == '$' && starts_word {
            return Some(format!("${rest}"));
        }
        if *c == '%' && starts_word && bytes.get(i + 1 + rest.chars().count()) == Some(&'%') {
            return Some(format!("%{rest}%"));
        }
    }
    let upper_word = v.split(|c: char| !word(c)).find(|t| {
        t.contains('_')
            && t.chars().any(|c| c.is_ascii_alphabetic())
            && !t.chars().any(|c| c.is_ascii_lowercase())
    });
    if let Some(t) = upper_word {
        return Some(t.to_string());
    }
    let host = v.rsplit_once(':').map_or(v, |(h, _)| h);
    if host.contains('.')
        && host
            .chars()
            .all(|c| c == '.' || c.eq_ignore_ascii_case(&'x'))
    {
        return Some(host.to_string());
    }
    None
}

/// The error for a placeholder: what the directive expects instead.
pub(crate) fn placeholder_error(found: &str, expected: &str) -> String {
    format!("'{found}' looks like a placeholder left from a template: expected {expected}")
}

fn port_of(cx: &mut Build, d: &Directive, allow_zero: bool) -> Option<u16> {
    let v = crate::source::unquote(d.value.trim());
    // A word where a number belongs (`Port CUSTOM_PORT`, `Port port`).
    let word = !v.is_empty() && v.chars().all(|c| c.is_ascii_alphabetic() || c == '_');
    if let Some(p) = placeholder(v).or_else(|| word.then(|| v.to_string())) {
        cx.error(d, placeholder_error(&p, "a port number"));
        return None;
    }
    let n = cx.keep(d.as_integer())?;
    match u16::try_from(n) {
        Ok(p) if p > 0 || allow_zero => Some(p),
        _ => {
            cx.error(d, format!("invalid {} {n} (expected 1-65535)", d.name));
            None
        }
    }
}

/// Checks a network output's directives into [`Net`]: the hosts, the local
/// port, the output type (`default` when absent; the GELF types need an
/// xm_gelf instance, as in NXLog), Reconnect's deprecation note.
pub(crate) fn build(cx: &mut Build, default: OutputType, transport: Transport) -> Option<Net> {
    let mut ok = true;
    let default_port = match cx.one("Port") {
        Some(d) => match port_of(cx, d, false) {
            Some(p) => p,
            None => {
                ok = false;
                DEFAULT_PORT
            }
        },
        None => DEFAULT_PORT,
    };
    let mut hosts = Vec::new();
    let host_directives: Vec<&Directive> = cx.each("Host").collect();
    for d in host_directives {
        if let Some(p) = placeholder(&d.value) {
            cx.error(
                d,
                placeholder_error(&p, "a host name or address (HOST or HOST:PORT)"),
            );
            ok = false;
            continue;
        }
        let Some(text) = cx.constant_string(d) else {
            ok = false;
            continue;
        };
        match parse_host(&text) {
            Ok((host, port)) => hosts.push(HostPort {
                host,
                port: port.unwrap_or(default_port),
            }),
            Err(m) => {
                cx.error(d, m);
                ok = false;
            }
        }
    }
    if hosts.is_empty() && ok {
        let (tag, module) = (cx.block.kind.name(), cx.scope.module.clone());
        cx.block_error(format!(
            "<{tag} {}> ({module}) needs a Host directive, e.g. Host syslog.example.com:514",
            cx.block.name
        ));
        ok = false;
    }
    let local_port = match cx.one("LocalPort") {
        Some(d) => {
            let p = port_of(cx, d, false);
            ok &= p.is_some();
            p
        }
        None => None,
    };
    if let Some(d) = cx.one("Reconnect") {
        // NXLog's own words; the backoff is automatic (1 s doubling).
        let msg = format!(
            "The 'Reconnect' directive at {} has been deprecated",
            d.location
        );
        cx.note(d, LogLevel::Warning, msg);
    }
    let mut tcp_no_delay = false;
    cx.bool_into("TCPNoDelay", &mut tcp_no_delay);
    let output_type = match cx.one("OutputType") {
        None => default,
        Some(d) => match output_type(cx, d, transport) {
            Some(t) => t,
            None => {
                ok = false;
                default
            }
        },
    };
    ok.then_some(Net {
        hosts,
        local_port,
        output_type,
        tcp_no_delay,
    })
}

fn output_type(cx: &mut Build, d: &Directive, transport: Transport) -> Option<OutputType> {
    let v = d.value.trim().to_ascii_lowercase();
    let gelf = matches!(v.as_str(), "gelf" | "gelf_udp" | "gelf_tcp");
    if gelf
        && !cx
            .scope
            .instances
            .iter()
            .any(|(_, t)| t.eq_ignore_ascii_case("xm_gelf"))
    {
        // NXLog: xm_gelf registers the GELF output types; without an
        // instance the name is unknown ("Invalid OutputType").
        cx.error(
            d,
            format!(
                "Invalid OutputType '{}': the GELF output types need an xm_gelf instance \
                 (<Extension gelf> Module xm_gelf </Extension>), as in NXLog",
                d.value
            ),
        );
        return None;
    }
    let t = match v.as_str() {
        "linebased" => OutputType::LineBased,
        "dgram" => OutputType::Dgram,
        "syslog_tls" => OutputType::SyslogTls,
        "gelf_tcp" if transport == Transport::Stream => OutputType::GelfTcp(GelfOptions::default()),
        "gelf" | "gelf_udp" if transport == Transport::Datagram => {
            OutputType::GelfUdp(GelfOptions::default())
        }
        "gelf_tcp" => {
            cx.error(
                d,
                "OutputType GELF_TCP is for stream outputs (om_tcp, om_ssl); om_udp takes GELF_UDP",
            );
            return None;
        }
        "gelf" | "gelf_udp" => {
            cx.error(
                d,
                format!(
                    "OutputType {} is for om_udp; stream outputs take GELF_TCP",
                    d.value
                ),
            );
            return None;
        }
        "binary" => {
            cx.error(
                d,
                "OutputType Binary (NXLog's own serialisation, for another NXLog agent) is not \
                 supported by regmon; use LineBased, Syslog_TLS or GELF_TCP",
            );
            return None;
        }
        _ => {
            let list = match transport {
                Transport::Stream => "LineBased, Dgram, Syslog_TLS, GELF_TCP",
                Transport::Datagram => "Dgram, LineBased, Syslog_TLS, GELF_UDP (or GELF)",
            };
            cx.error(
                d,
                format!("Invalid OutputType '{}' (supported: {list})", d.value),
            );
            return None;
        }
    };
    Some(t)
}

/// The network settings of an output module's settings, if it has them.
fn net_mut(s: &mut ModuleSettings) -> Option<&mut Net> {
    match s {
        ModuleSettings::OmTcp(o) => Some(&mut o.net),
        ModuleSettings::OmUdp(o) => Some(&mut o.net),
        ModuleSettings::OmSsl(o) => Some(&mut o.net),
        _ => None,
    }
}

/// Gives GELF outputs the settings of the configuration's first xm_gelf
/// instance (NXLog registers the GELF writers once, from that instance).
pub(crate) fn link_gelf(settings: &mut [&mut ModuleSettings]) {
    let Some(opts) = settings.iter().find_map(|s| match s {
        ModuleSettings::XmGelf(x) => Some(x.options.clone()),
        _ => None,
    }) else {
        return;
    };
    for s in settings {
        if let Some(net) = net_mut(s) {
            match &mut net.output_type {
                OutputType::GelfTcp(g) | OutputType::GelfUdp(g) => *g = opts.clone(),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_from_templates() {
        for (value, found) in [
            ("$IP", "$IP"),
            ("'$SIEM'", "$SIEM"),
            ("<SIEM_IP>", "<SIEM_IP>"),
            ("<SIEM IP>:514", "<SIEM IP>"),
            ("CUSTOM_PORT", "CUSTOM_PORT"),
            ("SIEM_HOST:514", "SIEM_HOST"),
            ("%SIEM%", "%SIEM%"),
            ("{{ siem_host }}", "{{ siem_host }}"),
            ("${HOST}", "${HOST}"),
            ("x.x.x.x", "x.x.x.x"),
            ("X.X.X.X:514", "X.X.X.X"),
            ("CHANGEME", "CHANGEME"),
            ("changeme.example.com", "changeme"),
            ("[Graylog.Server.IP.Address]", "[Graylog.Server.IP.Address]"),
            (
                "[Graylog.Server.IP.Address]:12201",
                "[Graylog.Server.IP.Address]",
            ),
        ] {
            assert_eq!(placeholder(value).as_deref(), Some(found), "{value}");
        }
        for value in [
            "127.0.0.1",
            "[::1]:514",
            "siem.example.com:6514",
            "LOGSERVER",
            "log_server",
            "100%",
        ] {
            assert_eq!(placeholder(value), None, "{value}");
        }
    }

    #[test]
    fn host_forms() {
        let ok = |s: &str| parse_host(s).unwrap();
        assert_eq!(ok("collector"), ("collector".into(), None));
        assert_eq!(ok(" 127.0.0.1:1514 "), ("127.0.0.1".into(), Some(1514)));
        assert_eq!(ok("[::1]:514"), ("::1".into(), Some(514)));
        assert_eq!(ok("[::1]"), ("::1".into(), None));
        assert_eq!(ok("::1"), ("::1".into(), None));
        assert_eq!(
            ok("logs.example.com:6514"),
            ("logs.example.com".into(), Some(6514))
        );
        for bad in [
            "", "h:", "h:0", "h:70000", "h:x", "[::1", "[::1]x", "[]:5", "[host]:5", ":514", "a b",
        ] {
            assert!(parse_host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn display_brackets_v6() {
        let h = HostPort {
            host: "::1".into(),
            port: 5,
        };
        assert_eq!(h.to_string(), "[::1]:5");
        let h = HostPort {
            host: "a".into(),
            port: 5,
        };
        assert_eq!(h.to_string(), "a:5");
    }

    fn load(text: &str) -> Result<crate::Config, String> {
        crate::parse_str(text, "net.conf").map_err(|e| e.to_string())
    }

    fn net(cfg: &crate::Config) -> Net {
        match &cfg.module("out").expect("out").settings {
            ModuleSettings::OmTcp(o) => o.net.clone(),
            ModuleSettings::OmUdp(o) => o.net.clone(),
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn hosts_ports_and_failover() {
        let c = load(
            "<Output out>\nModule om_tcp\nHost a\nHost b:1\nHost [::1]:2\nHost ::2\nPort 99\n</Output>\n",
        )
        .unwrap();
        let n = net(&c);
        let got: Vec<String> = n.hosts.iter().map(|h| h.to_string()).collect();
        assert_eq!(got, ["a:99", "b:1", "[::1]:2", "[::2]:99"]);
        assert_eq!(n.output_type, OutputType::LineBased);
        let c = load("<Output out>\nModule om_udp\nHost a\n</Output>\n").unwrap();
        assert_eq!(net(&c).hosts[0].port, 514);
        assert_eq!(net(&c).output_type, OutputType::Dgram);
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = load("<Output out>\nModule om_tcp\nHost a:99999\n</Output>\n").unwrap_err();
        assert!(
            e.contains("net.conf:3") && e.contains("invalid port '99999'"),
            "{e}"
        );
        let e = load("<Output out>\nModule om_tcp\nHost a\nPort 0\n</Output>\n").unwrap_err();
        assert!(
            e.contains("net.conf:4") && e.contains("invalid Port 0"),
            "{e}"
        );
        let e = load("<Output out>\nModule om_tcp\n</Output>\n").unwrap_err();
        assert!(
            e.contains("net.conf:1") && e.contains("needs a Host"),
            "{e}"
        );
        let e = load("<Output out>\nModule om_tcp\nHost a\nOutputType Binary\n</Output>\n")
            .unwrap_err();
        assert!(e.contains("net.conf:4") && e.contains("Binary"), "{e}");
        let e = load("<Output out>\nModule om_udp\nHost a\nOutputType GELF_UDP\n</Output>\n")
            .unwrap_err();
        assert!(e.contains("net.conf:4") && e.contains("xm_gelf"), "{e}");
        let e =
            load("<Output out>\nModule om_tcp\nHost a\nOutputType Foo\n</Output>\n").unwrap_err();
        assert!(e.contains("Invalid OutputType 'Foo'"), "{e}");
        let e =
            load("<Output out>\nModule om_tcp\nHost a\nLocalPort 70000\n</Output>\n").unwrap_err();
        assert!(e.contains("net.conf:4"), "{e}");
    }

    #[test]
    fn reconnect_is_a_warning() {
        let c = load("<Output out>\nModule om_tcp\nHost a\nReconnect 5\n</Output>\n").unwrap();
        let n = c
            .notes
            .iter()
            .find(|n| n.message.contains("Reconnect"))
            .expect("note");
        assert_eq!(n.level, LogLevel::Warning);
        assert!(
            n.message.contains("net.conf:4") && n.message.contains("deprecated"),
            "{}",
            n.message
        );
    }

    #[test]
    fn gelf_takes_the_xm_gelf_settings() {
        let c = load(
            "<Extension g>\nModule xm_gelf\nShortMessageLength 10\nUseNullDelimiter FALSE\n</Extension>\n\
             <Output out>\nModule om_tcp\nHost a\nOutputType GELF_TCP\n</Output>\n",
        )
        .unwrap();
        assert_eq!(
            net(&c).output_type,
            OutputType::GelfTcp(GelfOptions {
                short_message_length: 10,
                use_null_delimiter: false
            })
        );
        let e = load(
            "<Extension g>\nModule xm_gelf\n</Extension>\n<Output out>\nModule om_tcp\nHost a\nOutputType GELF_UDP\n</Output>\n",
        )
        .unwrap_err();
        assert!(e.contains("GELF_TCP"), "{e}");
        let c = load(
            "<Extension g>\nModule xm_gelf\n</Extension>\n<Output out>\nModule om_udp\nHost a\nOutputType GELF\n</Output>\n",
        )
        .unwrap();
        assert_eq!(
            net(&c).output_type,
            OutputType::GelfUdp(GelfOptions::default())
        );
    }
}
