//! GELF 1.1: a record as the JSON object Graylog takes (xm_gelf's output
//! types). The JSON strings are written by [`json_string`], the one escaper
//! of the project.

use crate::record::Record;
use crate::value::{json_string, DateFormat, Value, Zone};
use std::fmt::Write as _;

/// xm_gelf's settings that shape the JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GelfOptions {
    /// `short_message` taken from `$Message` or `$raw_event` is cut to this
    /// many characters (NXLog CE: 64).
    pub short_message_length: usize,
    /// GELF_TCP ends each message with a NUL byte (TRUE) or a newline.
    pub use_null_delimiter: bool,
}

impl Default for GelfOptions {
    fn default() -> Self {
        GelfOptions {
            short_message_length: 64,
            use_null_delimiter: true,
        }
    }
}

/// Fields GELF carries in its own keys, not as `_Name` additional fields.
const OWN: &[&str] = &[
    "raw_event",
    "Hostname",
    "ShortMessage",
    "Short_Message",
    "FullMessage",
    "Message",
    "SyslogSeverityValue",
];

/// The GELF JSON of `rec`. `raw_event` is the current `$raw_event` (the
/// short message when there is no `$Message`); `hostname` stands in for a
/// missing `$Hostname`.
pub fn to_gelf(rec: &Record, raw_event: &str, hostname: &str, opts: &GelfOptions) -> String {
    let fmt = DateFormat::default();
    let text = |name: &str| {
        rec.get(name)
            .and_then(|v| v.to_string_with(&fmt, Zone::Local))
    };
    let mut out = String::with_capacity(256 + rec.len() * 40);
    out.push_str("{\"version\":\"1.1\",\"host\":");
    json_string(
        &mut out,
        &text("Hostname").unwrap_or_else(|| hostname.to_string()),
    );
    out.push_str(",\"short_message\":");
    let short = match text("ShortMessage").or_else(|| text("Short_Message")) {
        Some(s) => s,
        None => {
            let long = text("Message").unwrap_or_else(|| raw_event.to_string());
            long.chars().take(opts.short_message_length).collect()
        }
    };
    json_string(&mut out, &short);
    if let Some(full) = text("FullMessage").or_else(|| text("Message")) {
        out.push_str(",\"full_message\":");
        json_string(&mut out, &full);
    }
    // Seconds since the epoch with milliseconds (GELF allows decimals;
    // NXLog CE writes whole seconds).
    let when = [rec.get("EventTime"), rec.get("EventReceivedTime")]
        .into_iter()
        .flatten()
        .find_map(|v| match v {
            Value::DateTime(d) => Some(*d),
            _ => None,
        })
        .unwrap_or_else(chrono::Utc::now);
    let ms = when.timestamp_millis();
    let _ = write!(
        out,
        ",\"timestamp\":{}{}.{:03}",
        if ms < 0 && ms > -1000 { "-" } else { "" },
        ms / 1000,
        (ms % 1000).abs()
    );
    let _ = write!(out, ",\"level\":{}", level(rec));
    for (name, value) in rec.iter() {
        if name.starts_with('.') || OWN.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            continue;
        }
        // GELF field names: [\w.-]+ after one leading underscore; `_id` is
        // reserved by Graylog.
        let mut key = String::with_capacity(name.len() + 1);
        if !name.starts_with('_') {
            key.push('_');
        }
        key.extend(name.chars().map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        }));
        if key.eq_ignore_ascii_case("_id") {
            key.insert(0, '_');
        }
        out.push(',');
        json_string(&mut out, &key);
        out.push(':');
        match value {
            // GELF additional fields are strings or numbers.
            Value::Integer(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Array(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .filter_map(|v| v.to_string_with(&fmt, Zone::Local))
                    .collect();
                json_string(&mut out, &parts.join(", "));
            }
            v => json_string(
                &mut out,
                &v.to_string_with(&fmt, Zone::Local).unwrap_or_default(),
            ),
        }
    }
    out.push('}');
    out
}

/// The syslog level: `$SyslogSeverityValue`, else NXLog's severity mapped
/// (DEBUG 7, INFO 6, WARNING 4, ERROR 3, CRITICAL 2), else 6.
fn level(rec: &Record) -> i64 {
    if let Some(v) = rec.get("SyslogSeverityValue").and_then(Value::as_i64) {
        return v.clamp(0, 7);
    }
    let nx = match rec.get("SeverityValue").and_then(Value::as_i64) {
        Some(v) => Some(v),
        None => rec
            .get_str("Severity")
            .and_then(|s| match s.to_ascii_uppercase().as_str() {
                "DEBUG" => Some(1),
                "INFO" => Some(2),
                "WARNING" => Some(3),
                "ERROR" => Some(4),
                "CRITICAL" => Some(5),
                _ => None,
            }),
    };
    match nx {
        Some(1) => 7,
        Some(2) => 6,
        Some(3) => 4,
        Some(4) => 3,
        Some(5) => 2,
        _ => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event() -> Record {
        let t = chrono::Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap()
            + chrono::Duration::milliseconds(250);
        Record::new()
            .with("EventTime", Value::DateTime(t))
            .with("Hostname", "WS01")
            .with("EventType", "CHANGE")
            .with("RegistryValueName", "HKLM\\Software\\Run\\x \"q\"")
            .with("ValueSize", 12i64)
            .with("Severity", "WARNING")
            .with("SeverityValue", 3i64)
            .with("id", "reserved")
            .with("odd name", "v")
            .with("_hidden", "h")
            .with(".dot", "skipped")
    }

    #[test]
    fn gelf_json_shape() {
        let j = to_gelf(
            &event(),
            "EventType=CHANGE a long raw event",
            "fallback",
            &GelfOptions {
                short_message_length: 9,
                use_null_delimiter: true,
            },
        );
        assert!(j.starts_with(
            "{\"version\":\"1.1\",\"host\":\"WS01\",\"short_message\":\"EventType\",\"timestamp\":1714557600.250,\"level\":4,"
        ), "{j}");
        assert!(j.contains("\"_EventType\":\"CHANGE\""), "{j}");
        assert!(
            j.contains("\"_RegistryValueName\":\"HKLM\\\\Software\\\\Run\\\\x \\\"q\\\"\""),
            "{j}"
        );
        assert!(j.contains("\"_ValueSize\":12"), "{j}");
        assert!(j.contains("\"__id\":\"reserved\""), "{j}");
        assert!(j.contains("\"_odd_name\":\"v\""), "{j}");
        assert!(j.contains("\"_hidden\":\"h\""), "{j}");
        assert!(!j.contains("dot"), "{j}");
        assert!(!j.contains("full_message"), "{j}");
        assert!(j.ends_with('}'));
    }

    #[test]
    fn message_fields_and_levels() {
        let r = Record::new()
            .with("Message", "héllo wörld")
            .with("SyslogSeverityValue", 2i64);
        let j = to_gelf(
            &r,
            "raw",
            "box",
            &GelfOptions {
                short_message_length: 3,
                ..Default::default()
            },
        );
        assert!(j.contains("\"host\":\"box\""), "{j}");
        assert!(j.contains("\"short_message\":\"hél\""), "{j}");
        assert!(j.contains("\"full_message\":\"héllo wörld\""), "{j}");
        assert!(j.contains("\"level\":2"), "{j}");
        let r = Record::new()
            .with("ShortMessage", "s")
            .with("Severity", "debug");
        let j = to_gelf(&r, "raw", "box", &GelfOptions::default());
        assert!(j.contains("\"short_message\":\"s\""), "{j}");
        assert!(j.contains("\"level\":7"), "{j}");
        assert!(!j.contains("ShortMessage"), "{j}");
    }
}
