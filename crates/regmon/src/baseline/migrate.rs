//! Baselines written by the previous release (schema 1): values keyed by
//! their path text. What the store needs to convert them in place.

use crate::path::ident;

/// The identity of a value stored by schema 1 as `path` (key path, `\`,
/// name; the default value as `(Default)`), whose first `key_len` bytes
/// named the key.
pub(super) fn v1_value_id(path: &str, key_len: usize) -> Vec<u8> {
    let key = path.get(..key_len).unwrap_or(path);
    let name = path.get(key_len + 1..).unwrap_or("");
    // Schema 1 could not tell a value literally named "(Default)" from the
    // default value; the default value is by far the likelier.
    let name = if name == "(Default)" { "" } else { name };
    ident::value_id(&v1_key_id(key), name.as_bytes())
}

pub(super) fn v1_key_id(path: &str) -> Vec<u8> {
    ident::key_id(&path.split('\\').collect::<Vec<_>>())
}

/// Schema 1's scope text, one line per setting, split into what decides
/// the set of watched values (the scope of schema 2), the data settings
/// and whether keys were kept.
pub(super) fn v1_scope(text: &str) -> (String, String, bool) {
    let (mut scope, mut data, mut keys) = (Vec::new(), Vec::new(), false);
    for line in text.lines() {
        if line.starts_with("data:") || line.starts_with("nodata:") {
            data.push(line);
        } else if let Some(k) = line.strip_prefix("keys:") {
            keys = k == "true";
        } else if scope.last() != Some(&line) {
            // Sorted lists: a duplicated RegValue line is adjacent.
            scope.push(line);
        }
    }
    (scope.join("\n"), data.join("\n"), keys)
}
