//! What xm_kvp's to_kvp() and xm_csv's to_csv() write, byte for byte as
//! NXLog CE does (src/modules/extension/kvp/kvp.c `nx_logdata_to_kvp`,
//! csv/csv.c `nx_logdata_to_csv`), and xm_rewrite's field operations. The
//! module table reads the directives into these settings
//! (`modules::xm_kvp`, `xm_csv`, `xm_rewrite`); the Exec language applies
//! them.

use crate::record::Record;
use crate::value::{DateFormat, Value, Zone};

/// xm_kvp's QuoteMethod: which string values to_kvp() puts in quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvpQuote {
    /// Every non-empty string value.
    All,
    /// Values holding a space or the KVPDelimiter (CE's only behaviour).
    Delimiter,
    /// None; the delimiter inside a value is then escaped instead.
    None,
}

/// The settings of an xm_kvp instance that to_kvp() uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvpOptions {
    /// `KVDelimiter`, between key and value. Default `=`.
    pub kv_delimiter: char,
    /// `KVPDelimiter`, after each pair (the last one too, as CE). Default `;`.
    pub kvp_delimiter: char,
    /// `EscapeChar`. Default `\`.
    pub escape: char,
    /// `ValueQuoteChar` (or `QuoteChar`). Default `'`.
    pub quote: char,
    /// `EscapeControl`: write newline, CR, tab and backspace as `\n`,
    /// `\r`, `\t`, `\b`. Default TRUE.
    pub escape_control: bool,
    pub quote_method: KvpQuote,
}

impl Default for KvpOptions {
    fn default() -> Self {
        KvpOptions {
            kv_delimiter: '=',
            kvp_delimiter: ';',
            escape: '\\',
            quote: '\'',
            escape_control: true,
            quote_method: KvpQuote::Delimiter,
        }
    }
}

/// xm_csv's QuoteMethod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsvQuote {
    /// Quote string values only (the default).
    String,
    /// Quote every value.
    All,
    /// Quote nothing.
    None,
}

/// The settings of an xm_csv instance that to_csv() uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// `Fields`, in order, without `$`.
    pub fields: Vec<String>,
    /// `Delimiter`. Default `,`.
    pub delimiter: char,
    /// `QuoteChar`. Default `"`.
    pub quote: char,
    /// `EscapeChar`. Default `\`.
    pub escape: char,
    /// `EscapeControl`. Default TRUE.
    pub escape_control: bool,
    pub quote_method: CsvQuote,
    /// `UndefValue`: what parse_csv() reads as undef. to_csv() writes an
    /// undef field as nothing, as CE does.
    pub undef_value: Option<String>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            fields: Vec::new(),
            delimiter: ',',
            quote: '"',
            escape: '\\',
            escape_control: true,
            quote_method: CsvQuote::String,
            undef_value: None,
        }
    }
}

/// A formatter of a whole record into one string: to_kvp() or to_csv()
/// with the settings of the instance it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Formatter {
    Kvp(KvpOptions),
    Csv(CsvOptions),
}

impl Formatter {
    /// The procedure/function name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Formatter::Kvp(_) => "to_kvp",
            Formatter::Csv(_) => "to_csv",
        }
    }

    /// The record as one line. Datetimes are written with `fmt` in `zone`
    /// (NXLog's `nx_value_to_string`: the global DateFormat).
    pub fn format(&self, rec: &Record, fmt: &DateFormat, zone: Zone) -> String {
        match self {
            Formatter::Kvp(o) => to_kvp(rec, o, fmt, zone),
            Formatter::Csv(o) => to_csv(rec, o, fmt, zone),
        }
    }
}

/// The control characters EscapeControl writes as escapes.
fn control_letter(c: char) -> Option<char> {
    match c {
        '\n' => Some('n'),
        '\r' => Some('r'),
        '\t' => Some('t'),
        '\x08' => Some('b'),
        _ => None,
    }
}

/// to_kvp(): `key=value;` for every field in order except `raw_event` and
/// fields starting with `.` or `_`. An undef or empty string value writes
/// the key and delimiters only; non-string values are written unescaped.
pub fn to_kvp(rec: &Record, o: &KvpOptions, fmt: &DateFormat, zone: Zone) -> String {
    let mut out = String::with_capacity(rec.len() * 24);
    for (name, value) in rec.iter() {
        if name == "raw_event" || name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        out.push_str(name);
        out.push(o.kv_delimiter);
        match value {
            Value::String(s) => kvp_value(&mut out, s, o),
            v => out.push_str(&v.to_string_with(fmt, zone).unwrap_or_default()),
        }
        out.push(o.kvp_delimiter);
    }
    out
}

/// One string value as CE's `escape_value`: the escape and quote
/// characters escaped, control characters escaped (EscapeControl), and the
/// value quoted when it holds a space or the pair delimiter.
fn kvp_value(out: &mut String, s: &str, o: &KvpOptions) {
    let mut body = String::with_capacity(s.len() + 2);
    let mut needs_quote = o.quote_method == KvpQuote::All && !s.is_empty();
    for c in s.chars() {
        if c == o.escape || c == o.quote {
            body.push(o.escape);
            body.push(c);
        } else if c == ' ' || c == o.kvp_delimiter {
            if o.quote_method == KvpQuote::None {
                // Unquoted, a delimiter must be escaped to read back.
                if c == o.kvp_delimiter {
                    body.push(o.escape);
                }
            } else {
                needs_quote = true;
            }
            body.push(c);
        } else if let Some(l) = control_letter(c).filter(|_| o.escape_control) {
            body.push(o.escape);
            body.push(l);
        } else {
            body.push(c);
        }
    }
    if needs_quote {
        out.push(o.quote);
        out.push_str(&body);
        out.push(o.quote);
    } else {
        out.push_str(&body);
    }
}

/// to_csv(): the `Fields` in order, separated by the delimiter (none after
/// the last). A missing, undef or empty string field writes nothing;
/// strings are quoted unless QuoteMethod is None, other values only with
/// QuoteMethod All; every value is escaped.
pub fn to_csv(rec: &Record, o: &CsvOptions, fmt: &DateFormat, zone: Zone) -> String {
    let mut out = String::with_capacity(o.fields.len() * 16);
    for (i, f) in o.fields.iter().enumerate() {
        if i > 0 {
            out.push(o.delimiter);
        }
        let Some(v) = rec.get(f) else { continue };
        let (text, quoted) = match v {
            Value::String(s) if s.is_empty() => continue,
            Value::String(s) => (s.clone(), o.quote_method != CsvQuote::None),
            v => match v.to_string_with(fmt, zone) {
                Some(t) => (t, o.quote_method == CsvQuote::All),
                None => continue,
            },
        };
        if quoted {
            out.push(o.quote);
        }
        csv_escape(&mut out, &text, o);
        if quoted {
            out.push(o.quote);
        }
    }
    out
}

/// CE's csv.c `escape_string`: the escape character goes before itself,
/// the quote character and the delimiter; control characters become
/// escapes when EscapeControl is on.
fn csv_escape(out: &mut String, s: &str, o: &CsvOptions) {
    for c in s.chars() {
        if c == o.escape || c == o.quote || c == o.delimiter {
            out.push(o.escape);
            out.push(c);
        } else if let Some(l) = control_letter(c).filter(|_| o.escape_control) {
            out.push(o.escape);
            out.push(l);
        } else {
            out.push(c);
        }
    }
}

/// xm_rewrite's field operations, applied by `instance->process()` in this
/// order: Keep, Delete, Rename (then the instance's Exec, run by the
/// evaluator).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RewriteFields {
    /// `Keep`: when non-empty, every other field is deleted.
    pub keep: Vec<String>,
    /// `Delete`: fields deleted.
    pub delete: Vec<String>,
    /// `Rename old, new`, in file order.
    pub rename: Vec<(String, String)>,
}

impl RewriteFields {
    pub fn apply(&self, rec: &mut Record) {
        if !self.keep.is_empty() {
            let gone: Vec<String> = rec
                .names()
                .filter(|n| !self.keep.iter().any(|k| k.eq_ignore_ascii_case(n)))
                .map(str::to_string)
                .collect();
            for n in gone {
                rec.remove(&n);
            }
        }
        for d in &self.delete {
            rec.remove(d);
        }
        for (from, to) in &self.rename {
            rec.rename(from, to);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn rec() -> Record {
        Record::new()
            .with("raw_event", "old")
            .with("EventType", "CHANGE")
            .with("Message", "a b")
            .with("Path", "HKLM\\Soft;ware")
            .with("Empty", "")
            .with("Size", 4i64)
            .with("_hidden", "x")
            .with(
                "EventTime",
                chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            )
    }

    #[test]
    fn kvp_is_ce_bytes() {
        let s = to_kvp(
            &rec(),
            &KvpOptions::default(),
            &DateFormat::default(),
            Zone::utc(),
        );
        assert_eq!(
            s,
            "EventType=CHANGE;Message='a b';Path='HKLM\\\\Soft;ware';Empty=;Size=4;EventTime=2026-01-02 03:04:05;"
        );
    }

    #[test]
    fn kvp_quote_methods_and_control() {
        let r = Record::new()
            .with("A", "x y")
            .with("B", "z")
            .with("C", "l1\nl2\t'q'");
        let all = KvpOptions {
            quote_method: KvpQuote::All,
            kvp_delimiter: ' ',
            kv_delimiter: ':',
            quote: '"',
            ..Default::default()
        };
        let z = Zone::utc();
        let f = DateFormat::default();
        assert_eq!(
            to_kvp(&r, &all, &f, z),
            "A:\"x y\" B:\"z\" C:\"l1\\nl2\\t'q'\" "
        );
        let none = KvpOptions {
            quote_method: KvpQuote::None,
            escape_control: false,
            ..Default::default()
        };
        let r2 = Record::new().with("A", "x;y z").with("C", "l\n");
        assert_eq!(to_kvp(&r2, &none, &f, z), "A=x\\;y z;C=l\n;");
    }

    #[test]
    fn csv_is_ce_bytes() {
        let o = CsvOptions {
            fields: ["EventType", "Missing", "Path", "Empty", "Size", "EventTime"]
                .map(String::from)
                .to_vec(),
            ..Default::default()
        };
        let z = Zone::utc();
        let f = DateFormat::default();
        assert_eq!(
            to_csv(&rec(), &o, &f, z),
            "\"CHANGE\",,\"HKLM\\\\Soft;ware\",,4,2026-01-02 03:04:05"
        );
        let all = CsvOptions {
            quote_method: CsvQuote::All,
            delimiter: ';',
            ..o.clone()
        };
        assert_eq!(
            to_csv(&rec(), &all, &f, z),
            "\"CHANGE\";;\"HKLM\\\\Soft\\;ware\";;\"4\";\"2026-01-02 03:04:05\""
        );
        let none = CsvOptions {
            quote_method: CsvQuote::None,
            fields: vec!["M".into()],
            ..Default::default()
        };
        let r = Record::new().with("M", "say \"hi\",\r\n");
        assert_eq!(to_csv(&r, &none, &f, z), "say \\\"hi\\\"\\,\\r\\n");
    }

    #[test]
    fn rewrite_keeps_deletes_then_renames() {
        let mut r = rec();
        RewriteFields {
            keep: vec!["eventtype".into(), "Message".into(), "Size".into()],
            delete: vec!["Size".into()],
            rename: vec![("Message".into(), "Msg".into())],
        }
        .apply(&mut r);
        let names: Vec<&str> = r.names().collect();
        assert_eq!(names, ["EventType", "Msg"]);
    }
}
