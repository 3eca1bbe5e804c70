//! Turning a change into an event record: the im_regmon field set, in
//! NXLog's order, then regmon's additions (value types, data with
//! `ReportData`, ECS fields with `Schema ecs`), and `$raw_event` in its
//! default `Key=Value` form.

use crate::model::digest::{hex, DigestAlgorithm};
use crate::model::{Change, Entry, KeyEntry};
use crate::path::ident;
use chrono::{DateTime, Utc};
use nxconf::Record;

mod data;
mod ecs;

pub use crate::config::Schema;
pub use data::{number_of, render_data, strings_of, type_value};
use ecs::{ecs_event, ecs_value, split_root};

/// What every event of one input shares.
pub struct Origin<'a> {
    pub hostname: &'a str,
    pub module_name: &'a str,
    pub digest: DigestAlgorithm,
    /// `ReportData`: add `$Value` / `$PrevValue`.
    pub report_data: bool,
    pub schema: Schema,
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
    notice_with(kind, message, &[], src, now)
}

/// A notice with fields of its own after the common ones (see the
/// README's BASELINE_RESTART: `BaselineFile`, `BaselineRestartReason`...).
pub fn notice_with(
    kind: &str,
    message: &str,
    fields: &[(&str, nxconf::Value)],
    src: &Origin<'_>,
    now: DateTime<Utc>,
) -> Record {
    let mut r = Record::new();
    r.set("EventTime", now);
    r.set("Hostname", src.hostname);
    r.set("EventType", kind);
    r.set("Message", message);
    common_tail(&mut r, src, now);
    for (name, v) in fields {
        r.set(name, v.clone());
    }
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
    registry_view(&mut r, any);
    link_fields(&mut r, old, new);
    if src.schema == Schema::Ecs {
        ecs_value(&mut r, kind, old, new, (&keys, &name, &path), src);
    }
    finish(r, src)
}

/// `64BitView BOTH`: the view a value of a key WOW64 redirects was read in
/// (`RegistryView` 64 or 32); shared values have none.
fn registry_view(r: &mut Record, e: &Entry) {
    if let Some(v) = ident::view(&e.id) {
        r.set("RegistryView", v.bits());
    }
}

/// `LinkTarget` / `PrevLinkTarget`: where a registry link points (a
/// REG_LINK value whose data is known, such as a followed link's
/// `SymbolicLinkValue`), as text.
fn link_fields(r: &mut Record, old: Option<&Entry>, new: Option<&Entry>) {
    for (e, field) in [(new, "LinkTarget"), (old, "PrevLinkTarget")] {
        if let Some(t) = e.and_then(link_target) {
            r.set(field, t);
        }
    }
}

/// The target a REG_LINK entry with data names.
fn link_target(e: &Entry) -> Option<String> {
    if e.value_type != hive::ValueType::LINK.0 {
        return None;
    }
    strings_of(e.value_type, e.data.as_deref()?).and_then(|mut v| v.pop())
}

/// For a link that now points elsewhere (`CurrentControlSet` after
/// `Select\Current` changed), the log line saying so:
/// `HKLM\SYSTEM\CurrentControlSet now links to ControlSet002 (was ControlSet001)`.
pub fn link_retarget(change: &Change) -> Option<String> {
    let Change::Changed { old, new } = change else {
        return None;
    };
    let (n, o) = (link_target(new)?, link_target(old)?);
    if n == o {
        return None;
    }
    let (keys, _) = new.parts();
    let (n, o) = crate::source::links::retarget_texts(&n, &o);
    Some(format!(
        "{} now links to {n} (was {o})",
        ident::display_key(&keys)
    ))
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

/// The short host name (before the first dot), as NXLog's `$Hostname`.
pub fn short_hostname() -> String {
    let h = gethostname::gethostname().to_string_lossy().into_owned();
    h.split('.').next().unwrap_or_default().to_string()
}
