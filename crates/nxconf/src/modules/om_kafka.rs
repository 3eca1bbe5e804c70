//! om_kafka: events produced to one partition of a Kafka topic (NXLog EE's
//! om_kafka; the Community Edition has none). Each event's bytes are one
//! record's value.
//!
//! NXLog hands `Option key value` to librdkafka; regmon's client is not
//! librdkafka, so only the properties it can honour are accepted and the
//! others are refused by name rather than silently ignored.

use super::spec::{Build, DirectiveSpec, ValueType as V};
use crate::directive::Directive;
use crate::lang::scope::ExecApi;
use std::time::Duration;

/// Directives, in the order messages list them.
pub(crate) const DIRECTIVES: &[DirectiveSpec] = &[
    DirectiveSpec::once("BrokerList", V::String, None),
    DirectiveSpec::once("Topic", V::String, None),
    DirectiveSpec::once("Partition", V::Integer, Some("0")),
    DirectiveSpec::once("Compression", V::Word, Some("none")),
    DirectiveSpec::many("Option", V::String),
];

/// NXLog om_kafka directives regmon refuses by name: TLS and SASL to the
/// brokers are not implemented (rather than send in clear text or without
/// the credentials the configuration asks for).
pub(crate) const UNSUPPORTED: &[&str] = &[
    "CAFile",
    "CADir",
    "CertFile",
    "CertKeyFile",
    "KeyPass",
    "Protocol",
    "SASLKerberosServiceName",
    "SASLKerberosPrincipal",
    "SASLKerberosKeytab",
    "SASLMechanism",
    "SASLUsername",
    "SASLPassword",
];

/// om_kafka has no Exec procedures.
pub(crate) const EXEC: ExecApi = ExecApi::NONE;

/// The broker port when BrokerList gives none (Kafka's).
pub const DEFAULT_PORT: u16 = 9092;

/// librdkafka's `message.max.bytes` default: the largest produce request
/// regmon builds (a larger single event still goes, alone).
pub const DEFAULT_MAX_BYTES: usize = 1_000_000;

/// How record batches are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
}

/// om_kafka settings.
#[derive(Clone, Debug)]
pub struct OmKafka {
    /// Bootstrap brokers, `host:port` (IPv6 in brackets), in order.
    pub brokers: Vec<String>,
    pub topic: String,
    pub partition: i32,
    pub compression: Compression,
    /// The longest wait for one produce request's acknowledgement
    /// (`request.timeout.ms`, librdkafka's default 30 s).
    pub request_timeout: Duration,
    /// The longest one delivery attempt may take, connecting included
    /// (`message.timeout.ms`; 30 s here, librdkafka's 5 min: the attempt
    /// is retried after a backoff anyway).
    pub message_timeout: Duration,
    /// `client.id` (default `regmon`).
    pub client_id: String,
    /// `message.max.bytes`: the largest produce request regmon builds.
    pub max_bytes: usize,
}

/// The `Option` keys regmon honours, for messages.
const OPTIONS: &str = "message.timeout.ms, request.timeout.ms, client.id, message.max.bytes, acks";

/// Check an `<Output>` block's om_kafka directives into [`OmKafka`].
pub(crate) fn build(cx: &mut Build) -> Option<OmKafka> {
    let mut ok = true;
    let name = cx.block.name.clone();
    let brokers = match cx.one("BrokerList") {
        None => {
            cx.block_error(format!(
                "<Output {name}> (om_kafka) needs a BrokerList directive, e.g. BrokerList kafka1.example.com:9092,kafka2.example.com:9092"
            ));
            None
        }
        Some(d) => match super::net::placeholder(&d.value) {
            Some(p) => {
                let expected = "broker addresses HOST:PORT separated by commas";
                cx.error(d, super::net::placeholder_error(&p, expected));
                None
            }
            None => cx.constant_string(d).and_then(|s| match broker_list(&s) {
                Ok(b) => Some(b),
                Err(e) => {
                    cx.error(d, format!("invalid BrokerList '{s}': {e}"));
                    None
                }
            }),
        },
    };
    let topic = match cx.one("Topic") {
        None => {
            cx.block_error(format!(
                "<Output {name}> (om_kafka) needs a Topic directive"
            ));
            None
        }
        Some(d) => cx.constant_string(d).and_then(|t| {
            if valid_topic(&t) {
                Some(t)
            } else {
                cx.error(
                    d,
                    format!("invalid Topic '{t}': 1 to 249 characters among a-z A-Z 0-9 . _ -"),
                );
                None
            }
        }),
    };
    let partition = match cx.one("Partition") {
        None => Some(0),
        Some(d) => match cx.keep(d.as_integer()) {
            Some(n) => match i32::try_from(n) {
                Ok(p) if p >= 0 => Some(p),
                _ => {
                    cx.error(d, format!("invalid Partition {n}: expected 0 or more"));
                    None
                }
            },
            None => None,
        },
    };
    let compression = match cx.one("Compression") {
        None => Some(Compression::None),
        Some(d) => match d.value.to_ascii_lowercase().as_str() {
            "none" => Some(Compression::None),
            "gzip" => Some(Compression::Gzip),
            _ => {
                cx.error(
                    d,
                    format!(
                        "invalid Compression '{}': regmon's om_kafka supports none and gzip (not snappy, lz4 or zstd)",
                        d.value
                    ),
                );
                None
            }
        },
    };
    let mut k = OmKafka {
        brokers: Vec::new(),
        topic: String::new(),
        partition: 0,
        compression: Compression::None,
        request_timeout: Duration::from_secs(30),
        message_timeout: Duration::from_secs(30),
        client_id: "regmon".to_string(),
        max_bytes: DEFAULT_MAX_BYTES,
    };
    let options: Vec<&Directive> = cx.each("Option").collect();
    for d in options {
        let Some(text) = cx.constant_string(d) else {
            ok = false;
            continue;
        };
        if let Err(e) = option(&mut k, &text) {
            cx.error(d, e);
            ok = false;
        }
    }
    k.brokers = brokers?;
    k.topic = topic?;
    k.partition = partition?;
    k.compression = compression?;
    ok.then_some(k)
}

/// Applies one `Option key value`.
fn option(k: &mut OmKafka, text: &str) -> Result<(), String> {
    let (key, value) = text
        .trim()
        .split_once(char::is_whitespace)
        .map(|(a, b)| (a, b.trim()))
        .ok_or_else(|| format!("invalid Option '{text}': expected 'Option key value'"))?;
    let millis = |lo: u64, hi: u64| -> Result<Duration, String> {
        match value.parse::<u64>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(Duration::from_millis(n)),
            _ => Err(format!(
                "invalid Option {key} '{value}': expected {lo} to {hi} (milliseconds)"
            )),
        }
    };
    match key {
        "message.timeout.ms" => k.message_timeout = millis(100, 900_000)?,
        "request.timeout.ms" => k.request_timeout = millis(100, 900_000)?,
        "client.id" => {
            if value.is_empty() || value.chars().any(char::is_control) {
                return Err(format!("invalid Option client.id '{value}'"));
            }
            k.client_id = value.to_string();
        }
        "message.max.bytes" => match value.parse::<usize>() {
            Ok(n) if (1000..=1_000_000_000).contains(&n) => k.max_bytes = n,
            _ => {
                return Err(format!(
                    "invalid Option message.max.bytes '{value}': expected 1000 to 1000000000"
                ))
            }
        },
        // regmon's client always waits for every in-sync replica: the
        // only setting that keeps the "acknowledged = stored" guarantee.
        "acks" | "request.required.acks" => {
            if !matches!(value, "all" | "-1") {
                return Err(format!(
                    "Option {key} {value} is not supported: regmon always waits for all in-sync replicas (acks all)"
                ));
            }
        }
        _ => {
            return Err(format!(
                "Option '{key}' is not supported by regmon's Kafka client (supported: {OPTIONS})"
            ))
        }
    }
    Ok(())
}

/// `host:port,host:port` (spaces allowed around commas; `[v6]:port`; the
/// port defaults to 9092) into `host:port` strings.
fn broker_list(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim) {
        if item.is_empty() {
            return Err("empty broker address".into());
        }
        let (host, port) = if let Some(rest) = item.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("'{item}': missing ']'"))?;
            match after.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None if after.is_empty() => (h, None),
                None => return Err(format!("'{item}': expected [address]:port")),
            }
        } else {
            match item.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h, Some(p)),
                Some(_) => return Err(format!("'{item}': an IPv6 address goes in brackets")),
                None => (item, None),
            }
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!("'{item}': no host"));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(format!("'{item}': bad port '{p}'")),
            },
        };
        out.push(if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        });
    }
    Ok(out)
}

/// Kafka's topic name rule.
fn valid_topic(t: &str) -> bool {
    (1..=249).contains(&t.len())
        && t != "."
        && t != ".."
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<OmKafka, String> {
        let text = format!("<Output k>\nModule om_kafka\n{body}</Output>\n");
        let cfg = crate::parse_str(&text, "k.conf").map_err(|e| e.to_string())?;
        match &cfg.module("k").ok_or("no module")?.settings {
            crate::ModuleSettings::OmKafka(x) => Ok(x.clone()),
            _ => Err("not om_kafka".into()),
        }
    }

    #[test]
    fn defaults_and_full_settings() {
        let k = parse("BrokerList 127.0.0.1:9092\nTopic regmon\n").unwrap();
        assert_eq!(k.brokers, ["127.0.0.1:9092"]);
        assert_eq!((k.topic.as_str(), k.partition), ("regmon", 0));
        assert_eq!(k.compression, Compression::None);
        assert_eq!(k.request_timeout, Duration::from_secs(30));
        assert_eq!(k.max_bytes, DEFAULT_MAX_BYTES);

        let k = parse(
            "BrokerList 'k1.example:9093, k2.example,[::1]:19092'\nTopic win.registry_events\n\
             Partition 3\nCompression GZIP\nOption message.timeout.ms 5000\n\
             Option request.timeout.ms 2000\nOption client.id host-42\nOption acks all\n\
             Option message.max.bytes 200000\n",
        )
        .unwrap();
        assert_eq!(
            k.brokers,
            ["k1.example:9093", "k2.example:9092", "[::1]:19092"]
        );
        assert_eq!(k.partition, 3);
        assert_eq!(k.compression, Compression::Gzip);
        assert_eq!(k.message_timeout, Duration::from_millis(5000));
        assert_eq!(k.request_timeout, Duration::from_millis(2000));
        assert_eq!(k.client_id, "host-42");
        assert_eq!(k.max_bytes, 200_000);
    }

    #[test]
    fn bad_values_name_the_line() {
        for (body, want) in [
            ("Topic t\n", "needs a BrokerList"),
            ("BrokerList h:1\n", "needs a Topic"),
            ("BrokerList h:0\nTopic t\n", "k.conf:3: invalid BrokerList"),
            ("BrokerList h:1,\nTopic t\n", "empty broker"),
            ("BrokerList ::1:9092\nTopic t\n", "in brackets"),
            ("BrokerList h:1\nTopic 'a b'\n", "k.conf:4: invalid Topic"),
            (
                "BrokerList h:1\nTopic t\nPartition -1\n",
                "invalid Partition",
            ),
            (
                "BrokerList h:1\nTopic t\nCompression snappy\n",
                "k.conf:5: invalid Compression 'snappy'",
            ),
            (
                "BrokerList h:1\nTopic t\nOption queue.buffering.max.ms 5\n",
                "k.conf:5: Option 'queue.buffering.max.ms' is not supported",
            ),
            ("BrokerList h:1\nTopic t\nOption acks 1\n", "acks all"),
            (
                "BrokerList h:1\nTopic t\nOption request.timeout.ms x\n",
                "invalid Option request.timeout.ms",
            ),
            (
                "BrokerList h:1\nTopic t\nOption lonely\n",
                "Option key value",
            ),
            (
                "BrokerList h:1\nTopic t\nCAFile /ca.pem\n",
                "k.conf:5: om_kafka directive 'CAFile' is not supported",
            ),
        ] {
            let e = parse(body).unwrap_err();
            assert!(e.contains(want), "{body:?}: {e}");
        }
    }
}
