//! Elastic Common Schema fields (`Schema ecs`): `event.*` and `registry.*`.

use super::data::{number_of, strings_of};
use super::Origin;
use crate::model::digest::hex;
use crate::model::Entry;
use crate::path::ident;
use base64::Engine as _;
use hive::ValueType;
use nxconf::{Record, Value};

pub(super) fn split_root(path: &str) -> (&str, &str) {
    path.split_once('\\').unwrap_or((path, ""))
}

pub(super) fn ecs_event(r: &mut Record, ty: &str, action: &str) {
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

pub(super) fn ecs_value(
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
