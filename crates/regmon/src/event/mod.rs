//! Turning a change into an event record: the im_regmon field set, in
//! NXLog's order, then regmon's additions (value types, data with
//! `ReportData`, ECS fields with `Schema ecs`), and `$raw_event` in its
//! default `Key=Value` form.

use crate::model::digest::{hex, DigestAlgorithm};
use crate::model::{Change, Entry, KeyEntry};
use crate::path::ident;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hive::ValueType;
use nxconf::{Record, Value};

pub use crate::config::Schema;

/// What every event of one input shares.
pub struct Origin<'a> {
    pub hostname: &'a str,
    pub module_name: &'a str,
    pub digest: DigestAlgorithm,
    /// `ReportData`: add `$Value` / `$PrevValue`.
    pub report_data: bool,
    pub schema: Schema,
}

/// A value type as an event field: its `REG_*` name, or the number.
pub fn type_value(t: u32) -> Value {
    match ValueType(t).name() {
        Some(n) => Value::String(n.to_string()),
        None => Value::Integer(i64::from(t)),
    }
}

fn utf16_units(data: &[u8]) -> impl Iterator<Item = u16> + '_ {
    data.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
}

fn utf16_string(units: &[u16]) -> String {
    char::decode_utf16(units.iter().copied())
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// The strings of string-typed data: one for REG_SZ / REG_EXPAND_SZ (never
/// expanded; up to the first NUL), the list for REG_MULTI_SZ; `None` for
/// other types.
pub fn strings_of(t: u32, data: &[u8]) -> Option<Vec<String>> {
    let units: Vec<u16> = utf16_units(data).collect();
    match ValueType(t) {
        ValueType::SZ | ValueType::EXPAND_SZ | ValueType::LINK => {
            let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
            Some(vec![utf16_string(&units[..end])])
        }
        ValueType::MULTI_SZ => {
            let mut items: Vec<&[u16]> = units.split(|&u| u == 0).collect();
            // The list ends with an empty string (and the split adds one more).
            while items.last().is_some_and(|s| s.is_empty()) {
                items.pop();
            }
            Some(items.iter().map(|s| utf16_string(s)).collect())
        }
        _ => None,
    }
}

/// The number in DWORD / DWORD_BIG_ENDIAN / QWORD data of the right size.
pub fn number_of(t: u32, data: &[u8]) -> Option<u64> {
    match (ValueType(t), data.len()) {
        (ValueType::DWORD, 4) => Some(u64::from(u32::from_le_bytes(data.try_into().ok()?))),
        (ValueType::DWORD_BIG_ENDIAN, 4) => {
            Some(u64::from(u32::from_be_bytes(data.try_into().ok()?)))
        }
        (ValueType::QWORD, 8) => Some(u64::from_le_bytes(data.try_into().ok()?)),
        _ => None,
    }
}

/// `$Value`: strings as strings, REG_MULTI_SZ as a list, numbers as
/// unsigned integers (a QWORD above 2^63 as its decimal text), anything else
/// (binary, unknown types, malformed numbers) as base64.
pub fn render_data(t: u32, data: &[u8]) -> Value {
    if let Some(mut strings) = strings_of(t, data) {
        return if ValueType(t) == ValueType::MULTI_SZ {
            Value::Array(strings.into_iter().map(Value::String).collect())
        } else {
            Value::String(strings.pop().unwrap_or_default())
        };
    }
    if let Some(n) = number_of(t, data) {
        return match i64::try_from(n) {
            Ok(i) => Value::Integer(i),
            Err(_) => Value::String(n.to_string()),
        };
    }
    Value::String(base64::engine::general_purpose::STANDARD.encode(data))
}

/// The event for one change, observed at `now`.
pub fn record(change: &Change, src: &Origin<'_>, now: DateTime<Utc>) -> Record {
    match change {
        Change::New(e) => value_record("NEW", None, Some(e), src, now),
        Change::Changed { old, new } => value_record("CHANGE", Some(old), Some(new), src, now),
        Change::Delete(e) => value_record("DELETE", Some(e), None, src, now),
        Change::NewKey(k) => key_record("NEW_KEY", k, src, now),
        Change::DeleteKey(k) => key_record("DELETE_KEY", k, src, now),
    }
}

/// An event about the monitoring itself rather than a registry change
/// (EventType `BASELINE_REBUILD`...): what happened, in `Message`, with the
/// same host and source fields as change events.
pub fn notice(kind: &str, message: &str, src: &Origin<'_>, now: DateTime<Utc>) -> Record {
    let mut r = Record::new();
    r.set("EventTime", now);
    r.set("Hostname", src.hostname);
    r.set("EventType", kind);
    r.set("Message", message);
    common_tail(&mut r, src, now);
    finish(r, src)
}

fn common_tail(r: &mut Record, src: &Origin<'_>, now: DateTime<Utc>) {
    r.set("Severity", "WARNING");
    r.set("SeverityValue", 3i64);
    r.set("EventReceivedTime", now);
    r.set("SourceModuleName", src.module_name);
    r.set("SourceModuleType", "im_regmon");
}

fn finish(mut r: Record, src: &Origin<'_>) -> Record {
    if src.schema == Schema::Ecs {
        r.set_nest_dotted(true);
    }
    let raw = r.to_raw_event_kv();
    r.set("raw_event", raw);
    r
}

fn value_record(
    kind: &str,
    old: Option<&Entry>,
    new: Option<&Entry>,
    src: &Origin<'_>,
    now: DateTime<Utc>,
) -> Record {
    let any = new
        .or(old)
        .expect("a value change has an old or a new entry");
    let mut r = Record::new();
    r.set("EventTime", now);
    r.set("Hostname", src.hostname);
    r.set("EventType", kind);
    let (keys, name) = any.parts();
    let path = any.display_path();
    r.set("RegistryValueName", path.as_str());
    if let Some(o) = old {
        r.set("PrevValueSize", o.size as i64);
    }
    if let Some(n) = new {
        r.set("ValueSize", n.size as i64);
    }
    r.set("DigestName", src.digest.canonical_name());
    if let Some(o) = old {
        r.set("PrevDigest", hex(&o.digest));
    }
    if let Some(n) = new {
        r.set("Digest", hex(&n.digest));
    }
    common_tail(&mut r, src, now);
    // regmon's additions come after NXLog's fields, so consumers of those see
    // exactly what they know.
    if let Some(n) = new {
        r.set("RegistryValueType", type_value(n.value_type));
    }
    if let Some(o) = old {
        r.set("PrevRegistryValueType", type_value(o.value_type));
    }
    // A name the text above cannot show exactly (a literal "(Default)", a
    // backslash, an unpaired surrogate): its UTF-16 code units, in hex.
    if !ident::shown_exactly(&name, true) {
        r.set("RegistryValueNameUTF16", ident::utf16le_hex(&name));
    }
    if src.report_data {
        for (e, field, flag) in [
            (new, "Value", "ValueTruncated"),
            (old, "PrevValue", "PrevValueTruncated"),
        ] {
            if let Some(data) = e.and_then(|e| e.data.as_ref().map(|d| (e, d))) {
                let (e, d) = data;
                r.set(field, render_data(e.value_type, d));
                if (d.len() as u64) < e.size {
                    r.set(flag, true);
                }
            }
        }
    }
    if src.schema == Schema::Ecs {
        ecs_value(&mut r, kind, old, new, (&keys, &name, &path), src);
    }
    finish(r, src)
}

fn key_record(kind: &str, k: &KeyEntry, src: &Origin<'_>, now: DateTime<Utc>) -> Record {
    let mut r = Record::new();
    r.set("EventTime", now);
    r.set("Hostname", src.hostname);
    r.set("EventType", kind);
    let path = k.display_path();
    r.set("RegistryKeyName", path.as_str());
    if let Some(t) = k.last_written.and_then(filetime_to_datetime) {
        r.set("RegistryKeyLastWriteTime", t);
    }
    common_tail(&mut r, src, now);
    if src.schema == Schema::Ecs {
        let (created, action) = if kind == "NEW_KEY" {
            ("creation", "registry-key-created")
        } else {
            ("deletion", "registry-key-deleted")
        };
        ecs_event(&mut r, created, action);
        let (hive, key) = split_root(&path);
        r.set("registry.hive", hive);
        r.set("registry.key", key);
        r.set("registry.path", path.as_str());
    }
    finish(r, src)
}

pub fn filetime_to_datetime(ft: u64) -> Option<DateTime<Utc>> {
    let (secs, nanos) = hive::filetime_to_unix(ft);
    DateTime::from_timestamp(secs, nanos)
}

fn split_root(path: &str) -> (&str, &str) {
    path.split_once('\\').unwrap_or((path, ""))
}

fn ecs_event(r: &mut Record, ty: &str, action: &str) {
    r.set("event.kind", "event");
    r.set(
        "event.category",
        Value::Array(vec![Value::String("registry".into())]),
    );
    r.set("event.type", Value::Array(vec![Value::String(ty.into())]));
    r.set("event.action", action);
}

/// `registry.data.*` (or `registry.previous.data.*`) for one state of a value.
fn ecs_data(r: &mut Record, prefix: &str, e: &Entry, src: &Origin<'_>) {
    r.set(&format!("{prefix}.type"), ecs_type(e.value_type));
    if let Some(d) = &e.data {
        let strings = strings_of(e.value_type, d)
            .or_else(|| number_of(e.value_type, d).map(|n| vec![n.to_string()]));
        if let Some(s) = strings {
            r.set(
                &format!("{prefix}.strings"),
                Value::Array(s.into_iter().map(Value::String).collect()),
            );
        }
        r.set(
            &format!("{prefix}.bytes"),
            base64::engine::general_purpose::STANDARD.encode(d),
        );
    }
    r.set(
        &format!(
            "{prefix}.hash.{}",
            src.digest.config_name().replace('-', "_")
        ),
        hex(&e.digest),
    );
}

/// ECS `registry.data.type` is a keyword: the `REG_*` name, or the number as text.
fn ecs_type(t: u32) -> String {
    ValueType(t).to_string()
}

fn ecs_value(
    r: &mut Record,
    kind: &str,
    old: Option<&Entry>,
    new: Option<&Entry>,
    (keys, name, path): (&[Vec<u8>], &[u8], &str),
    src: &Origin<'_>,
) {
    let (ty, action) = match kind {
        "NEW" => ("creation", "registry-value-created"),
        "CHANGE" => ("change", "registry-value-changed"),
        _ => ("deletion", "registry-value-deleted"),
    };
    ecs_event(r, ty, action);
    let hive = keys
        .first()
        .map(|h| ident::display_name(h))
        .unwrap_or_default();
    r.set("registry.hive", hive.as_ref());
    r.set(
        "registry.key",
        ident::display_key(keys.get(1..).unwrap_or(&[])).as_str(),
    );
    r.set("registry.value", ident::display_value_name(name).as_ref());
    r.set("registry.path", path);
    if let Some(n) = new {
        ecs_data(r, "registry.data", n, src);
    }
    if let Some(o) = old {
        ecs_data(r, "registry.previous.data", o, src);
    }
    if let (Some(o), Some(n)) = (old, new) {
        let mut changed = Vec::new();
        if o.value_type != n.value_type {
            changed.push(Value::String("registry.data.type".into()));
        }
        if o.digest[..] != n.digest[..] || o.size != n.size {
            let hash = format!(
                "registry.data.hash.{}",
                src.digest.config_name().replace('-', "_")
            );
            changed.push(Value::String(hash));
        }
        r.set("event.changed_fields", Value::Array(changed));
    }
}

/// The short host name (before the first dot), as NXLog's `$Hostname`.
pub fn short_hostname() -> String {
    let h = gethostname::gethostname().to_string_lossy().into_owned();
    h.split('.').next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
    }

    #[test]
    fn renderings_per_type() {
        let sz = utf16("%windir%\\x\0");
        assert_eq!(render_data(1, &sz), Value::String("%windir%\\x".into()));
        assert_eq!(render_data(2, &sz), Value::String("%windir%\\x".into()));
        let multi = utf16("ab\0c\0\0");
        assert_eq!(
            render_data(7, &multi),
            Value::Array(vec![Value::String("ab".into()), Value::String("c".into())])
        );
        let moved = utf16("a\0bc\0\0");
        assert_eq!(multi.len(), moved.len());
        assert_ne!(render_data(7, &multi), render_data(7, &moved));
        assert_eq!(render_data(4, &7u32.to_le_bytes()), Value::Integer(7));
        assert_eq!(
            render_data(4, &u32::MAX.to_le_bytes()),
            Value::Integer(4294967295)
        );
        assert_eq!(render_data(5, &[0, 0, 1, 0]), Value::Integer(256));
        assert_eq!(
            render_data(11, &u64::MAX.to_le_bytes()),
            Value::String(u64::MAX.to_string())
        );
        assert_eq!(render_data(3, &[0, 1, 2]), Value::String("AAEC".into()));
        assert_eq!(render_data(0x1234, &[0xff]), Value::String("/w==".into()));
        assert_eq!(render_data(4, &[1, 2]), Value::String("AQI=".into()));
        assert_eq!(type_value(1), Value::String("REG_SZ".into()));
        assert_eq!(type_value(99), Value::Integer(99));
    }
}
