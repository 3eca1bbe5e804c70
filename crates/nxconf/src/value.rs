//! Values of the event model and the Exec language, and datetime rendering.
//!
//! Datetimes are stored as UTC instants (microsecond precision, as NXLog) and
//! rendered in local time (or a fixed offset, which keeps tests deterministic).

use crate::diag::Invalid;
use chrono::format::{Item, StrftimeItems};
use chrono::{
    DateTime, FixedOffset, Local, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc,
};
use std::fmt::Write as _;

/// A field value. `Undef` never lives in a [`crate::Record`] (setting a field
/// to undef deletes it); it exists for expression results.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Undef,
    String(String),
    Integer(i64),
    Boolean(bool),
    DateTime(DateTime<Utc>),
    /// Raw bytes (registry data); rendered as upper-case hex like NXLog.
    Binary(Vec<u8>),
    /// A list (e.g. REG_MULTI_SZ strings); a JSON array in to_json().
    Array(Vec<Value>),
}

/// Static types, used by the load-time type checker; `Unknown` is a field
/// whose type only the event knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    Unknown,
    Undef,
    String,
    Integer,
    Boolean,
    DateTime,
    Binary,
    Array,
}

impl Type {
    pub fn name(self) -> &'static str {
        match self {
            Type::Unknown => "unknown",
            Type::Undef => "undef",
            Type::String => "string",
            Type::Integer => "integer",
            Type::Boolean => "boolean",
            Type::DateTime => "datetime",
            Type::Binary => "binary",
            Type::Array => "array",
        }
    }
}

impl Value {
    pub fn type_of(&self) -> Type {
        match self {
            Value::Undef => Type::Undef,
            Value::String(_) => Type::String,
            Value::Integer(_) => Type::Integer,
            Value::Boolean(_) => Type::Boolean,
            Value::DateTime(_) => Type::DateTime,
            Value::Binary(_) => Type::Binary,
            Value::Array(_) => Type::Array,
        }
    }
    pub fn type_name(&self) -> &'static str {
        self.type_of().name()
    }
    pub fn is_undef(&self) -> bool {
        matches!(self, Value::Undef)
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_datetime(&self) -> Option<DateTime<Utc>> {
        match self {
            Value::DateTime(d) => Some(*d),
            _ => None,
        }
    }

    /// String context (string(), concatenation, raw_event): datetimes use
    /// `fmt` in `zone`; undef is `None`.
    pub fn to_string_with(&self, fmt: &DateFormat, zone: Zone) -> Option<String> {
        Some(match self {
            Value::Undef => return None,
            Value::String(s) => s.clone(),
            Value::Integer(i) => i.to_string(),
            Value::Boolean(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
            Value::DateTime(d) => fmt.format(d, zone),
            Value::Binary(b) => hex_upper(b),
            // In string context a list reads as its JSON text.
            Value::Array(_) => {
                let mut out = String::new();
                json_value(&mut out, self, fmt, zone);
                out
            }
        })
    }

    /// String context with the default `YYYY-MM-DD hh:mm:ss` local format.
    pub fn to_display_string(&self) -> Option<String> {
        self.to_string_with(&DateFormat::default(), Zone::Local)
    }
}

pub(crate) fn hex_upper(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02X}");
    }
    s
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Integer(i)
    }
}
impl From<u32> for Value {
    fn from(i: u32) -> Self {
        Value::Integer(i64::from(i))
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}
impl From<DateTime<Utc>> for Value {
    fn from(d: DateTime<Utc>) -> Self {
        Value::DateTime(d)
    }
}
impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Binary(b)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Self {
        o.map_or(Value::Undef, Into::into)
    }
}

/// The time zone datetimes are rendered in (and naive datetimes read in).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Zone {
    #[default]
    Local,
    Fixed(FixedOffset),
}

impl Zone {
    pub fn utc() -> Zone {
        Zone::Fixed(FixedOffset::east_opt(0).expect("zero offset"))
    }
    pub fn to_zone(self, d: &DateTime<Utc>) -> DateTime<FixedOffset> {
        match self {
            Zone::Local => d.with_timezone(&Local).fixed_offset(),
            Zone::Fixed(o) => d.with_timezone(&o),
        }
    }
    /// Interpret a wall-clock time in this zone. Ambiguous times (DST fold)
    /// take the earlier instant; times in a DST gap are moved forward an hour.
    pub fn from_naive(self, n: &NaiveDateTime) -> Option<DateTime<Utc>> {
        fn pick<T: TimeZone>(r: LocalResult<DateTime<T>>) -> Option<DateTime<Utc>> {
            match r {
                LocalResult::Single(d) => Some(d.with_timezone(&Utc)),
                LocalResult::Ambiguous(a, _) => Some(a.with_timezone(&Utc)),
                LocalResult::None => None,
            }
        }
        let r = match self {
            Zone::Local => pick(Local.from_local_datetime(n)),
            Zone::Fixed(o) => pick(o.from_local_datetime(n)),
        };
        r.or_else(|| {
            let later = *n + chrono::Duration::hours(1);
            match self {
                Zone::Local => pick(Local.from_local_datetime(&later)),
                Zone::Fixed(o) => pick(o.from_local_datetime(&later)),
            }
        })
    }
}

/// A datetime rendering: one of NXLog's named formats or a strftime string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DateFormat {
    /// `YYYY-MM-DD hh:mm:ss` and its variants: `T` separator, `.s`
    /// microseconds, and a `TZ` (`+hh:mm`) or `UTC` (`Z`, rendered in UTC) suffix.
    Named {
        t_separator: bool,
        fraction: bool,
        suffix: TzSuffix,
    },
    /// A strftime format, validated when parsed.
    Strftime(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TzSuffix {
    None,
    Offset,
    Utc,
}

impl Default for DateFormat {
    /// NXLog's default string form, `YYYY-MM-DD hh:mm:ss`.
    fn default() -> Self {
        DateFormat::Named {
            t_separator: false,
            fraction: false,
            suffix: TzSuffix::None,
        }
    }
}

impl DateFormat {
    /// xm_json's default: `YYYY-MM-DDThh:mm:ss.sTZ`, e.g. `2024-05-06T07:08:09.123456+02:00`.
    pub fn json_default() -> Self {
        DateFormat::Named {
            t_separator: true,
            fraction: true,
            suffix: TzSuffix::Offset,
        }
    }

    /// Parse a DateFormat value (quotes already removed).
    pub fn parse(s: &str) -> Result<DateFormat, Invalid> {
        Self::parse_text(s).map_err(Invalid)
    }

    fn parse_text(s: &str) -> Result<DateFormat, String> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("YYYY-MM-DD") {
            let (t, rest) = if let Some(r) = rest.strip_prefix('T') {
                (true, r)
            } else if let Some(r) = rest.strip_prefix(' ') {
                (false, r)
            } else {
                return Err(format!("invalid DateFormat '{s}'"));
            };
            if let Some(rest) = rest.strip_prefix("hh:mm:ss") {
                let (frac, rest) = match rest.strip_prefix(".s") {
                    Some(r) => (true, r),
                    None => (false, rest),
                };
                let suffix = match rest {
                    "" => TzSuffix::None,
                    "TZ" => TzSuffix::Offset,
                    "UTC" => TzSuffix::Utc,
                    _ => return Err(format!("invalid DateFormat '{s}'")),
                };
                return Ok(DateFormat::Named {
                    t_separator: t,
                    fraction: frac,
                    suffix,
                });
            }
            return Err(format!("invalid DateFormat '{s}'"));
        }
        if !s.contains('%') {
            return Err(format!(
                "invalid DateFormat '{s}' (expected 'YYYY-MM-DD hh:mm:ss', 'YYYY-MM-DDThh:mm:ss.sTZ' or a similar NXLog format, or a strftime format such as '%Y-%m-%d %H:%M:%S')"
            ));
        }
        check_strftime(s)?;
        Ok(DateFormat::Strftime(s.to_string()))
    }

    pub fn format(&self, d: &DateTime<Utc>, zone: Zone) -> String {
        match self {
            DateFormat::Named {
                t_separator,
                fraction,
                suffix,
            } => {
                let local = match suffix {
                    TzSuffix::Utc => Zone::utc().to_zone(d),
                    _ => zone.to_zone(d),
                };
                let mut s = String::with_capacity(32);
                let _ = write!(
                    s,
                    "{}{}{}",
                    local.format("%Y-%m-%d"),
                    if *t_separator { 'T' } else { ' ' },
                    local.format("%H:%M:%S")
                );
                if *fraction {
                    let _ = write!(s, ".{:06}", local.nanosecond() % 1_000_000_000 / 1000);
                }
                match suffix {
                    TzSuffix::None => {}
                    TzSuffix::Utc => s.push('Z'),
                    TzSuffix::Offset => {
                        let _ = write!(s, "{}", local.format("%:z"));
                    }
                }
                s
            }
            DateFormat::Strftime(f) => strftime(d, f, zone).unwrap_or_default(),
        }
    }
}

/// Reject strftime formats chrono cannot render (formatting them would panic).
pub(crate) fn check_strftime(f: &str) -> Result<(), Invalid> {
    check_strftime_text(f).map_err(Invalid)
}

fn check_strftime_text(f: &str) -> Result<(), String> {
    if StrftimeItems::new(f).any(|i| matches!(i, Item::Error)) {
        return Err(format!("invalid strftime format '{f}'"));
    }
    Ok(())
}

/// strftime() of the language: NXLog's named formats or a strftime string.
pub(crate) fn strftime(d: &DateTime<Utc>, f: &str, zone: Zone) -> Result<String, Invalid> {
    strftime_text(d, f, zone).map_err(Invalid)
}

fn strftime_text(d: &DateTime<Utc>, f: &str, zone: Zone) -> Result<String, String> {
    if f.starts_with("YYYY-") {
        return Ok(DateFormat::parse(f)?.format(d, zone));
    }
    check_strftime(f)?;
    let local = zone.to_zone(d);
    let mut out = String::new();
    write!(out, "{}", local.format(f)).map_err(|_| format!("invalid strftime format '{f}'"))?;
    Ok(out)
}

/// Parse a datetime as NXLog writes them: `YYYY-MM-DD hh:mm:ss` or with `T`,
/// optional fraction, optional `Z` / `+hh:mm` / `+hhmm`. Without a zone the
/// time is read in `zone`.
pub fn parse_datetime(s: &str, zone: Zone) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(s, f) {
            return Some(d.with_timezone(&Utc));
        }
    }
    if let Some(stripped) = s.strip_suffix('Z') {
        return parse_naive(stripped).map(|n| Utc.from_utc_datetime(&n));
    }
    parse_naive(s).and_then(|n| zone.from_naive(&n))
}

pub(crate) fn parse_naive(s: &str) -> Option<NaiveDateTime> {
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
            return Some(n);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

/// Appends one value as JSON: datetimes in `fmt`, binary as upper-case hex,
/// arrays as JSON arrays.
pub fn json_value(out: &mut String, value: &Value, fmt: &DateFormat, zone: Zone) {
    match value {
        Value::Undef => out.push_str("null"),
        Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::String(s) => json_string(out, s),
        Value::DateTime(d) => json_string(out, &fmt.format(d, zone)),
        Value::Binary(b) => json_string(out, &hex_upper(b)),
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(out, v, fmt, zone);
            }
            out.push(']');
        }
    }
}

/// Append `s` as a JSON string: `"` and `\` escaped, control characters as
/// `\n \r \t \b \f` or `\u00XX`; other characters kept as UTF-8.
pub fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap() + chrono::Duration::microseconds(123456)
    }
    fn plus2() -> Zone {
        Zone::Fixed(FixedOffset::east_opt(7200).unwrap())
    }

    #[test]
    fn named_formats() {
        let cases = [
            ("YYYY-MM-DD hh:mm:ss", "2024-05-06 09:08:09"),
            (
                "YYYY-MM-DDThh:mm:ss.sTZ",
                "2024-05-06T09:08:09.123456+02:00",
            ),
            ("YYYY-MM-DDThh:mm:ssTZ", "2024-05-06T09:08:09+02:00"),
            ("YYYY-MM-DD hh:mm:ss.s", "2024-05-06 09:08:09.123456"),
            ("YYYY-MM-DDThh:mm:ss.sUTC", "2024-05-06T07:08:09.123456Z"),
            ("%d/%m/%Y %H:%M", "06/05/2024 09:08"),
        ];
        for (f, want) in cases {
            assert_eq!(
                DateFormat::parse(f).unwrap().format(&dt(), plus2()),
                want,
                "{f}"
            );
        }
        assert!(DateFormat::parse("YYYY/MM/DD").is_err());
        assert!(DateFormat::parse("%Q").is_err());
        assert_eq!(
            DateFormat::json_default(),
            DateFormat::parse("YYYY-MM-DDThh:mm:ss.sTZ").unwrap()
        );
    }

    #[test]
    fn parses_datetimes() {
        assert_eq!(
            parse_datetime("2024-05-06T07:08:09.123456Z", Zone::Local),
            Some(dt())
        );
        assert_eq!(
            parse_datetime("2024-05-06 09:08:09.123456+02:00", Zone::Local),
            Some(dt())
        );
        assert_eq!(
            parse_datetime("2024-05-06 09:08:09.123456", plus2()),
            Some(dt())
        );
        assert_eq!(parse_datetime("nope", plus2()), None);
    }

    #[test]
    fn string_context() {
        assert_eq!(
            Value::Boolean(true)
                .to_string_with(&DateFormat::default(), plus2())
                .unwrap(),
            "TRUE"
        );
        assert_eq!(
            Value::Binary(vec![0xab, 1]).to_display_string().unwrap(),
            "AB01"
        );
        assert_eq!(Value::Undef.to_display_string(), None);
    }
}
