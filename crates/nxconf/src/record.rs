//! The one event model of the project: an ordered list of typed fields with
//! case-insensitive names (NXLog field names are case-insensitive), plus the
//! two renderings outputs need: JSON (xm_json's to_json()) and the default
//! `Key=Value` `$raw_event`.

// The JSON writing of one value lives with Value (string context needs it
// too); re-exported here, where it was first published.
use crate::diag::Invalid;
pub use crate::value::{json_string, json_value};
use crate::value::{DateFormat, Value, Zone};

/// An event record. Insertion order is kept: setting an existing field keeps
/// its position, a new field goes last, deleting removes it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    fields: Vec<(String, Value)>,
    /// to_json() nests dotted names (`event.kind`) as objects (ECS output).
    nest_dotted: bool,
}

/// How to_json() renders a record (from the xm_json instance's directives).
#[derive(Clone, Debug, PartialEq)]
pub struct JsonOptions {
    pub date_format: DateFormat,
    pub zone: Zone,
    /// Include fields whose names start with `.` or `_`. regmon's default is
    /// FALSE (the project contract leaves them out).
    pub include_hidden: bool,
    /// Multi-line indented output instead of one compact line.
    pub pretty: bool,
    /// parse_json(): turn strings that look like datetimes into datetimes.
    pub parse_date: bool,
}

impl Default for JsonOptions {
    fn default() -> Self {
        JsonOptions {
            date_format: DateFormat::json_default(),
            zone: Zone::Local,
            include_hidden: false,
            pretty: false,
            parse_date: true,
        }
    }
}

fn is_hidden(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_')
}

impl Record {
    pub fn new() -> Self {
        Record::default()
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The value of a field (case-insensitive name), `None` when absent.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.index(name).map(|i| &self.fields[i].1)
    }

    /// The value of a field, `Value::Undef` when absent.
    pub fn value(&self, name: &str) -> Value {
        self.get(name).cloned().unwrap_or(Value::Undef)
    }

    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index(name).is_some()
    }

    /// Set a field. An existing field keeps its position (and its name's
    /// original spelling); `Value::Undef` deletes the field, as in NXLog.
    pub fn set(&mut self, name: &str, value: impl Into<Value>) {
        let value = value.into();
        if value.is_undef() {
            self.remove(name);
            return;
        }
        match self.index(name) {
            Some(i) => self.fields[i].1 = value,
            None => self.fields.push((name.to_string(), value)),
        }
    }

    /// Builder form of [`Record::set`].
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.set(name, value);
        self
    }

    pub fn remove(&mut self, name: &str) -> Option<Value> {
        self.index(name).map(|i| self.fields.remove(i).1)
    }

    /// Rename a field in place (position kept). A field already named `to`
    /// is replaced. Returns false when `from` does not exist.
    pub fn rename(&mut self, from: &str, to: &str) -> bool {
        let Some(i) = self.index(from) else {
            return false;
        };
        if !from.eq_ignore_ascii_case(to) {
            if let Some(j) = self.index(to) {
                self.fields.remove(j);
            }
        }
        let i = self.index(from).unwrap_or(i);
        self.fields[i].0 = to.to_string();
        true
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(n, _)| n.as_str())
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn clear(&mut self) {
        self.fields.clear();
    }

    /// to_json() with the defaults: compact, local datetimes
    /// `YYYY-MM-DDThh:mm:ss.ffffff+hh:mm`, `raw_event` and hidden fields left out.
    pub fn to_json(&self) -> String {
        self.to_json_with(&JsonOptions::default())
    }

    pub fn to_json_with(&self, opts: &JsonOptions) -> String {
        if self.nest_dotted {
            return self.to_nested_json(opts);
        }
        let mut out = String::with_capacity(64 + self.fields.len() * 32);
        out.push('{');
        let mut first = true;
        for (name, value) in &self.fields {
            if name.eq_ignore_ascii_case("raw_event") || (!opts.include_hidden && is_hidden(name)) {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            if opts.pretty {
                out.push_str("\n  ");
            }
            json_string(&mut out, name);
            out.push(':');
            if opts.pretty {
                out.push(' ');
            }
            json_value(&mut out, value, &opts.date_format, opts.zone);
        }
        if opts.pretty && !first {
            out.push('\n');
        }
        out.push('}');
        out
    }

    /// Makes to_json() nest dotted field names as objects: `event.kind` and
    /// `event.type` become `"event":{"kind":..,"type":..}` (ECS documents).
    pub fn set_nest_dotted(&mut self, on: bool) {
        self.nest_dotted = on;
    }

    fn to_nested_json(&self, opts: &JsonOptions) -> String {
        // A tree of names in first-appearance order; leaves hold values.
        enum Node<'a> {
            Leaf(&'a Value),
            Obj(Vec<(&'a str, Node<'a>)>),
        }
        fn insert<'a>(obj: &mut Vec<(&'a str, Node<'a>)>, parts: &[&'a str], v: &'a Value) {
            let (head, rest) = (parts[0], &parts[1..]);
            if rest.is_empty() {
                obj.push((head, Node::Leaf(v)));
                return;
            }
            match obj
                .iter_mut()
                .find(|(n, node)| *n == head && matches!(node, Node::Obj(_)))
            {
                Some((_, Node::Obj(children))) => insert(children, rest, v),
                _ => {
                    let mut children = Vec::new();
                    insert(&mut children, rest, v);
                    obj.push((head, Node::Obj(children)));
                }
            }
        }
        fn render(out: &mut String, obj: &[(&str, Node<'_>)], opts: &JsonOptions) {
            out.push('{');
            for (i, (name, node)) in obj.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, name);
                out.push(':');
                match node {
                    Node::Leaf(v) => json_value(out, v, &opts.date_format, opts.zone),
                    Node::Obj(children) => render(out, children, opts),
                }
            }
            out.push('}');
        }
        let mut root: Vec<(&str, Node<'_>)> = Vec::new();
        for (name, value) in &self.fields {
            if name.eq_ignore_ascii_case("raw_event") || (!opts.include_hidden && is_hidden(name)) {
                continue;
            }
            let parts: Vec<&str> = name.split('.').collect();
            if parts.iter().any(|p| p.is_empty()) {
                root.push((name, Node::Leaf(value)));
            } else {
                insert(&mut root, &parts, value);
            }
        }
        let mut out = String::with_capacity(64 + self.fields.len() * 32);
        render(&mut out, &root, opts);
        out
    }

    /// The default `$raw_event`: `Key=Value` pairs in field order separated by
    /// one space; a value holding whitespace, `"`, `=` or nothing is
    /// double-quoted with `\"` and `\\` escaped. Datetimes are local
    /// `YYYY-MM-DD hh:mm:ss`. `raw_event` itself and hidden fields are skipped.
    pub fn to_raw_event_kv(&self) -> String {
        self.to_raw_event_kv_with(&DateFormat::default(), Zone::Local)
    }

    pub fn to_raw_event_kv_with(&self, fmt: &DateFormat, zone: Zone) -> String {
        let mut out = String::with_capacity(self.fields.len() * 24);
        for (name, value) in &self.fields {
            if name.eq_ignore_ascii_case("raw_event") || is_hidden(name) {
                continue;
            }
            let Some(text) = value.to_string_with(fmt, zone) else {
                continue;
            };
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(name);
            out.push('=');
            if text.is_empty()
                || text
                    .chars()
                    .any(|c| c.is_whitespace() || c == '"' || c == '=')
            {
                out.push('"');
                for c in text.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            } else {
                out.push_str(&text);
            }
        }
        out
    }

    /// parse_json(): read a JSON object into fields (appended or replaced in
    /// document order). Strings become strings (or datetimes when
    /// `opts.parse_date` and they look like one), integers integers, booleans
    /// booleans, null deletes the field; floats, arrays and nested objects are
    /// kept as their JSON text.
    pub fn merge_json(&mut self, text: &str, opts: &JsonOptions) -> Result<(), Invalid> {
        self.merge_json_text(text, opts).map_err(Invalid)
    }

    fn merge_json_text(&mut self, text: &str, opts: &JsonOptions) -> Result<(), String> {
        let mut p = JsonParser {
            s: text.as_bytes(),
            text,
            pos: 0,
        };
        p.ws();
        if p.peek() != Some(b'{') {
            return Err("JSON input is not an object".into());
        }
        let members = p.object_members()?;
        p.ws();
        if p.pos != p.s.len() {
            return Err(format!(
                "trailing characters after JSON object at offset {}",
                p.pos
            ));
        }
        for (k, v) in members {
            let value = match v {
                Json::Null => Value::Undef,
                Json::Bool(b) => Value::Boolean(b),
                Json::Int(i) => Value::Integer(i),
                Json::Raw(r) => Value::String(r),
                Json::Str(s) => {
                    if opts.parse_date && looks_like_datetime(&s) {
                        match crate::value::parse_datetime(&s, opts.zone) {
                            Some(d) => Value::DateTime(d),
                            None => Value::String(s),
                        }
                    } else {
                        Value::String(s)
                    }
                }
            };
            self.set(&k, value);
        }
        Ok(())
    }

    /// A record from a JSON object (see [`Record::merge_json`]).
    pub fn from_json(text: &str, opts: &JsonOptions) -> Result<Record, Invalid> {
        Self::from_json_text(text, opts).map_err(Invalid)
    }

    fn from_json_text(text: &str, opts: &JsonOptions) -> Result<Record, String> {
        let mut r = Record::new();
        r.merge_json(text, opts)?;
        Ok(r)
    }
}

impl<'a> IntoIterator for &'a Record {
    type Item = (&'a str, &'a Value);
    type IntoIter = Box<dyn Iterator<Item = (&'a str, &'a Value)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

fn looks_like_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b' ')
        && b[13] == b':'
        && b[..4].iter().all(u8::is_ascii_digit)
}

enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    /// A float, array or object kept as its source text.
    Raw(String),
}

/// A small bounded JSON reader: depth is limited so hostile input cannot
/// overflow the stack.
struct JsonParser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
}

const MAX_JSON_DEPTH: usize = 128;

impl JsonParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }
    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("invalid JSON at offset {}: {what}", self.pos))
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(&format!("expected '{}'", c as char))
        }
    }
    fn object_members(&mut self) -> Result<Vec<(String, Json)>, String> {
        self.expect(b'{')?;
        let mut out = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(out);
        }
        loop {
            self.ws();
            let k = self.string()?;
            self.expect(b':')?;
            let v = self.value(1)?;
            out.push((k, v));
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(out);
                }
                _ => return self.err("expected ',' or '}'"),
            }
        }
    }
    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_JSON_DEPTH {
            return self.err("nesting too deep");
        }
        self.ws();
        let start = self.pos;
        match self.peek() {
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b'{' | b'[') => {
                self.skip_container(depth)?;
                Ok(Json::Raw(self.text[start..self.pos].to_string()))
            }
            Some(b't') if self.s[self.pos..].starts_with(b"true") => {
                self.pos += 4;
                Ok(Json::Bool(true))
            }
            Some(b'f') if self.s[self.pos..].starts_with(b"false") => {
                self.pos += 5;
                Ok(Json::Bool(false))
            }
            Some(b'n') if self.s[self.pos..].starts_with(b"null") => {
                self.pos += 4;
                Ok(Json::Null)
            }
            Some(b'-' | b'0'..=b'9') => {
                while matches!(
                    self.peek(),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.pos += 1;
                }
                let t = &self.text[start..self.pos];
                match t.parse::<i64>() {
                    Ok(i) => Ok(Json::Int(i)),
                    Err(_) if t.parse::<f64>().is_ok() => Ok(Json::Raw(t.to_string())),
                    Err(_) => self.err("bad number"),
                }
            }
            _ => self.err("expected a value"),
        }
    }
    fn skip_container(&mut self, depth: usize) -> Result<(), String> {
        let close = if self.peek() == Some(b'{') {
            b'}'
        } else {
            b']'
        };
        self.pos += 1;
        self.ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if close == b'}' {
                self.string()?;
                self.expect(b':')?;
            }
            self.value(depth + 1)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return self.err("expected ',' or a closing bracket"),
            }
        }
    }
    fn string(&mut self) -> Result<String, String> {
        if self.peek() != Some(b'"') {
            return self.err("expected a string");
        }
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let Some(i) = rest.find(['"', '\\']) else {
                return self.err("unterminated string");
            };
            out.push_str(&rest[..i]);
            self.pos += i;
            if self.s[self.pos] == b'"' {
                self.pos += 1;
                return Ok(out);
            }
            self.pos += 1;
            let Some(e) = self.peek() else {
                return self.err("unterminated escape");
            };
            self.pos += 1;
            match e {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'u' => {
                    let mut cp = self.hex4()?;
                    if (0xD800..0xDC00).contains(&cp) && self.s[self.pos..].starts_with(b"\\u") {
                        self.pos += 2;
                        let lo = self.hex4()?;
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3ff);
                    }
                    out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                }
                _ => return self.err("bad escape"),
            }
        }
    }
    fn hex4(&mut self) -> Result<u32, String> {
        let h = self
            .text
            .get(self.pos..self.pos + 4)
            .ok_or("invalid JSON: short \\u escape")?;
        let v =
            u32::from_str_radix(h, 16).map_err(|_| "invalid JSON: bad \\u escape".to_string())?;
        self.pos += 4;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, TimeZone, Utc};

    #[test]
    fn order_and_case() {
        let mut r = Record::new().with("A", 1i64).with("b", "x").with("C", true);
        r.set("B", "y");
        assert_eq!(r.names().collect::<Vec<_>>(), ["A", "b", "C"]);
        assert_eq!(r.get_str("B"), Some("y"));
        r.set("a", Value::Undef);
        assert_eq!(r.names().collect::<Vec<_>>(), ["b", "C"]);
        assert!(r.rename("c", "D"));
        r.set("e", 5i64);
        assert!(r.rename("e", "b"));
        assert_eq!(r.names().collect::<Vec<_>>(), ["D", "b"]);
        assert_eq!(r.get("b"), Some(&Value::Integer(5)));
        assert!(!r.rename("zz", "y"));
    }

    #[test]
    fn json_bytes() {
        let d = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        let r = Record::new()
            .with("EventTime", d)
            .with("Hostname", "h\"1\\")
            .with("Size", -3i64)
            .with("Ok", false)
            .with("raw_event", "x")
            .with("_hidden", "x")
            .with(".dot", "x")
            .with("Ctl", "a\nb\t\u{1}\u{8}\u{c}\r")
            .with("Uni", "é€");
        let opts = JsonOptions {
            zone: crate::Zone::Fixed(FixedOffset::east_opt(3600).unwrap()),
            ..JsonOptions::default()
        };
        assert_eq!(
            r.to_json_with(&opts),
            r#"{"EventTime":"2024-01-02T04:04:05.000000+01:00","Hostname":"h\"1\\","Size":-3,"Ok":false,"Ctl":"a\nb\t\u0001\b\f\r","Uni":"é€"}"#
        );
        let pretty = JsonOptions {
            pretty: true,
            ..opts.clone()
        };
        assert_eq!(
            Record::new().with("a", 1i64).to_json_with(&pretty),
            "{\n  \"a\": 1\n}"
        );
        assert_eq!(Record::new().to_json(), "{}");
    }

    #[test]
    fn raw_event_kv() {
        let r = Record::new()
            .with("EventType", "CHANGE")
            .with("Name", "HKLM\\Software\\Run Key")
            .with("Empty", "")
            .with("Q", "a\"b\\c")
            .with("Eq", "a=b")
            .with("N", 3i64)
            .with("raw_event", "zzz");
        assert_eq!(
            r.to_raw_event_kv(),
            r#"EventType=CHANGE Name="HKLM\\Software\\Run Key" Empty="" Q="a\"b\\c" Eq="a=b" N=3"#
        );
        let d = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        let r = Record::new().with("T", d);
        assert_eq!(
            r.to_raw_event_kv_with(&DateFormat::default(), crate::Zone::utc()),
            "T=\"2024-01-02 03:04:05\""
        );
    }

    #[test]
    fn parse_json_roundtrip() {
        let opts = JsonOptions {
            zone: crate::Zone::utc(),
            ..JsonOptions::default()
        };
        let r = Record::from_json(
            r#" {"a":"x\u00e9\n","b":12,"c":true,"d":null,"e":[1,{"x":2}],"f":1.5,"t":"2024-01-02T03:04:05.000000+00:00"} "#,
            &opts,
        )
        .unwrap();
        assert_eq!(r.get_str("a"), Some("xé\n"));
        assert_eq!(r.get("b"), Some(&Value::Integer(12)));
        assert_eq!(r.get("c"), Some(&Value::Boolean(true)));
        assert!(!r.contains("d"));
        assert_eq!(r.get_str("e"), Some("[1,{\"x\":2}]"));
        assert_eq!(r.get_str("f"), Some("1.5"));
        assert_eq!(
            r.get("t"),
            Some(&Value::DateTime(
                Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap()
            ))
        );
        assert_eq!(
            r.to_json_with(&opts),
            r#"{"a":"xé\n","b":12,"c":true,"e":"[1,{\"x\":2}]","f":"1.5","t":"2024-01-02T03:04:05.000000+00:00"}"#
        );
        for bad in ["", "[1]", "{", "{\"a\":}", "{\"a\":1} x", &"[".repeat(1000)] {
            assert!(Record::from_json(bad, &opts).is_err(), "{bad}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(500), "]".repeat(500));
        assert!(Record::from_json(&deep, &opts).is_err());
    }
}
