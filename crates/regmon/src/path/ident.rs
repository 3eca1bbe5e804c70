//! The identity of a registry key or value: its path exactly as stored, as
//! bytes that sort the way a scan visits the registry.
//!
//! Names are UTF-16 code units in the registry, and not always valid UTF-16
//! (an unpaired surrogate is legal in a name). Identities keep them exactly:
//! each name is written as WTF-8 (UTF-8 that can also hold an unpaired
//! surrogate), so no two different names ever share an identity, whatever
//! they contain (`\`, `(Default)`, U+FFFD or a lone surrogate).
//!
//! Layout: every key component of the path (the root first) is escaped and
//! followed by [`KEY_END`]; a value adds [`VALUE_MARK`] and its escaped name
//! (empty for the default value). The escape keeps the separator bytes out
//! of names and preserves their byte order, so identities sort as:
//! a key, then its values (by name), then its subkeys (by name), each
//! subkey's whole subtree before the next. A key's identity is a prefix of
//! everything inside it. The baseline stores identities as BLOBs; SQLite
//! orders them with memcmp, the same order as here.
//!
//! With `64BitView BOTH` a value of a key that WOW64 redirects exists twice
//! at one logical path (the 64-bit and the 32-bit view's copy): its name is
//! then preceded by a view marker ([`View`]), `ESC` and a byte no escape
//! produces, so the two copies differ while their key (and so every prefix
//! test) stays the logical one.

use std::borrow::Cow;

/// Ends a key component.
pub const KEY_END: u8 = 0x01;
/// Starts a value name (after its key's components).
pub const VALUE_MARK: u8 = 0x00;
/// Escapes the bytes 0x00..=0x02 inside names.
const ESC: u8 = 0x02;
/// After `ESC` at the start of a value name: the registry view markers
/// (an escape proper is followed by 0x01..=0x03 only).
const VIEW64: u8 = 0x04;
const VIEW32: u8 = 0x05;

/// The registry view a value was read in, when it matters (`64BitView
/// BOTH`, a key that WOW64 redirects).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    V64,
    V32,
}

impl View {
    /// As events show it (`RegistryView`): 64 or 32.
    pub fn bits(self) -> i64 {
        match self {
            View::V64 => 64,
            View::V32 => 32,
        }
    }

    fn byte(self) -> u8 {
        match self {
            View::V64 => VIEW64,
            View::V32 => VIEW32,
        }
    }
}

/// The value identity `id` marked as read in `view` (a key's identity, or
/// one already marked, is returned as it is).
pub fn with_view(id: &[u8], view: View) -> Vec<u8> {
    let k = key_len(id);
    if k == id.len() || self::view(id).is_some() {
        return id.to_vec();
    }
    let mut out = Vec::with_capacity(id.len() + 2);
    out.extend_from_slice(&id[..=k]);
    out.push(ESC);
    out.push(view.byte());
    out.extend_from_slice(&id[k + 1..]);
    out
}

/// The view marker of a value identity, if any.
pub fn view(id: &[u8]) -> Option<View> {
    let k = key_len(id);
    match id.get(k + 1..k + 3) {
        Some([ESC, VIEW64]) => Some(View::V64),
        Some([ESC, VIEW32]) => Some(View::V32),
        _ => None,
    }
}

/// Appends `name` (WTF-8) escaped.
fn push_escaped(id: &mut Vec<u8>, name: &[u8]) {
    for &b in name {
        if b <= ESC {
            id.push(ESC);
            id.push(b + 1);
        } else {
            id.push(b);
        }
    }
}

/// Appends a key component.
pub fn push_key(id: &mut Vec<u8>, name: &[u8]) {
    push_escaped(id, name);
    id.push(KEY_END);
}

/// The identity of value `name` (WTF-8; empty = the default value) of the
/// key whose identity is `key`.
pub fn value_id(key: &[u8], name: &[u8]) -> Vec<u8> {
    let mut id = Vec::with_capacity(key.len() + 1 + name.len());
    id.extend_from_slice(key);
    id.push(VALUE_MARK);
    push_escaped(&mut id, name);
    id
}

/// The identity of a key given by its components (root first).
pub fn key_id<S: AsRef<[u8]>>(parts: &[S]) -> Vec<u8> {
    let mut id = Vec::new();
    for p in parts {
        push_key(&mut id, p.as_ref());
    }
    id
}

/// Whether `id` is `prefix` or lies inside the key `prefix` names.
pub fn under(prefix: &[u8], id: &[u8]) -> bool {
    id.starts_with(prefix)
}

/// Whether `id` lies under any of `prefixes`.
pub fn under_any(prefixes: &[Vec<u8>], id: &[u8]) -> bool {
    prefixes.iter().any(|p| under(p, id))
}

/// An identity taken apart: its key components and, for a value, its name
/// (all WTF-8).
#[derive(Debug, PartialEq, Eq)]
pub struct Parts {
    pub keys: Vec<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// Takes an identity apart; None when it is not one (damaged baseline row).
pub fn parse(id: &[u8]) -> Option<Parts> {
    let (mut keys, mut cur, mut in_value) = (Vec::new(), Vec::new(), false);
    // Just after the value mark, where a view marker may stand.
    let mut name_start = false;
    let mut bytes = id.iter();
    while let Some(&b) = bytes.next() {
        let at_start = std::mem::take(&mut name_start);
        match b {
            ESC => match bytes.next() {
                Some(&e) if (1..=ESC + 1).contains(&e) => cur.push(e - 1),
                Some(&(VIEW64 | VIEW32)) if at_start => {}
                _ => return None,
            },
            // Separators never occur inside a value name.
            KEY_END | VALUE_MARK if in_value => return None,
            KEY_END => keys.push(std::mem::take(&mut cur)),
            VALUE_MARK if !cur.is_empty() => return None,
            VALUE_MARK => {
                in_value = true;
                name_start = true;
            }
            b => cur.push(b),
        }
    }
    match (in_value, cur.is_empty()) {
        (true, _) => Some(Parts {
            keys,
            value: Some(cur),
        }),
        (false, true) => Some(Parts { keys, value: None }),
        // A key component without its end.
        (false, false) => None,
    }
}

/// The length of the key part of a value's identity (up to its value mark).
pub fn key_len(id: &[u8]) -> usize {
    // The mark never occurs escaped, so the first one is the value's.
    id.iter().position(|&b| b == VALUE_MARK).unwrap_or(id.len())
}

/// The length of the first key component of `rest` (a part of an
/// identity), its end byte included; None when `rest` starts a value name
/// or holds no whole component.
pub fn component_end(rest: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            VALUE_MARK => return None,
            KEY_END => return Some(i + 1),
            ESC => i += 2,
            _ => i += 1,
        }
    }
    None
}

/// How a name is shown in events: WTF-8 decoded, an unpaired surrogate as
/// U+FFFD. Valid names (nearly all) are borrowed as they are.
pub fn display_name(wtf8: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(wtf8) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => {
            let mut out = String::with_capacity(wtf8.len());
            let mut i = 0;
            while i < wtf8.len() {
                match std::str::from_utf8(&wtf8[i..]) {
                    Ok(s) => {
                        out.push_str(s);
                        break;
                    }
                    Err(e) => {
                        let good = e.valid_up_to();
                        out.push_str(std::str::from_utf8(&wtf8[i..i + good]).unwrap_or(""));
                        out.push('\u{FFFD}');
                        // A WTF-8 surrogate is 3 bytes; anything else bad, 1.
                        let rest = &wtf8[i + good..];
                        let skip = if rest.len() >= 3 && rest[0] == 0xED && rest[1] >= 0xA0 {
                            3
                        } else {
                            e.error_len().unwrap_or(rest.len()).max(1)
                        };
                        i += good + skip;
                    }
                }
            }
            Cow::Owned(out)
        }
    }
}

/// The key path as events show it: `HKLM\A\B`.
pub fn display_key(parts: &[Vec<u8>]) -> String {
    let mut s = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            s.push('\\');
        }
        s.push_str(&display_name(p));
    }
    s
}

/// The text events show for a value name: the default (unnamed) value as
/// `(Default)`.
pub fn display_value_name(wtf8: &[u8]) -> Cow<'_, str> {
    if wtf8.is_empty() {
        Cow::Borrowed("(Default)")
    } else {
        display_name(wtf8)
    }
}

/// Whether a name is shown exactly by [`display_value_name`] (or
/// [`display_name`] for keys): valid Unicode, no `\` (which would read as a
/// separator) and, for values, not the literal text `(Default)`.
pub fn shown_exactly(wtf8: &[u8], is_value: bool) -> bool {
    std::str::from_utf8(wtf8).is_ok()
        && !wtf8.contains(&b'\\')
        && !(is_value && wtf8 == b"(Default)")
}

/// The name's UTF-16 code units, as lower-case hex of their little-endian
/// bytes (how a name that text cannot show is given exactly).
pub fn utf16le_hex(wtf8: &[u8]) -> String {
    let mut out = String::with_capacity(wtf8.len() * 4);
    for u in to_utf16(wtf8) {
        for b in u.to_le_bytes() {
            out.push_str(&format!("{b:02x}"));
        }
    }
    out
}

/// WTF-8 from UTF-16 code units: lossless, unpaired surrogates included.
pub fn wtf8_from_utf16(units: impl IntoIterator<Item = u16>, out: &mut Vec<u8>) {
    for r in char::decode_utf16(units) {
        match r {
            Ok(c) => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            Err(e) => {
                // The generalized UTF-8 form of a surrogate code point.
                let u = e.unpaired_surrogate();
                out.push(0xE0 | (u >> 12) as u8);
                out.push(0x80 | ((u >> 6) & 0x3F) as u8);
                out.push(0x80 | (u & 0x3F) as u8);
            }
        }
    }
}

/// UTF-16 code units from WTF-8 (the inverse of [`wtf8_from_utf16`]).
pub fn to_utf16(wtf8: &[u8]) -> Vec<u16> {
    let mut out = Vec::with_capacity(wtf8.len());
    let mut i = 0;
    while i < wtf8.len() {
        let b = wtf8[i];
        let (cp, n) = if b < 0x80 {
            (u32::from(b), 1)
        } else if b >= 0xF0 && i + 3 < wtf8.len() {
            (
                (u32::from(b & 0x07) << 18)
                    | (u32::from(wtf8[i + 1] & 0x3F) << 12)
                    | (u32::from(wtf8[i + 2] & 0x3F) << 6)
                    | u32::from(wtf8[i + 3] & 0x3F),
                4,
            )
        } else if b >= 0xE0 && i + 2 < wtf8.len() {
            (
                (u32::from(b & 0x0F) << 12)
                    | (u32::from(wtf8[i + 1] & 0x3F) << 6)
                    | u32::from(wtf8[i + 2] & 0x3F),
                3,
            )
        } else if b >= 0xC0 && i + 1 < wtf8.len() {
            (
                (u32::from(b & 0x1F) << 6) | u32::from(wtf8[i + 1] & 0x3F),
                2,
            )
        } else {
            (0xFFFD, 1)
        };
        if cp >= 0x10000 {
            let c = cp - 0x10000;
            out.push(0xD800 | (c >> 10) as u16);
            out.push(0xDC00 | (c & 0x3FF) as u16);
        } else {
            out.push(cp as u16);
        }
        i += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(units: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        wtf8_from_utf16(units.iter().copied(), &mut v);
        v
    }

    #[test]
    fn distinct_names_have_distinct_identities() {
        let k = key_id(&["HKLM", "SOFTWARE", "Policies"]);
        let default = value_id(&k, b"");
        let literal = value_id(&k, b"(Default)");
        assert_ne!(default, literal);
        // `Policies` value `a\b` against `Policies\a` value `b`.
        let slash = value_id(&k, b"a\\b");
        let mut sub = k.clone();
        push_key(&mut sub, b"a");
        assert_ne!(slash, value_id(&sub, b"b"));
        // Two different unpaired surrogates, and U+FFFD itself.
        let a = value_id(&k, &w(&[0x61, 0xD800]));
        let b = value_id(&k, &w(&[0x61, 0xDC00]));
        let c = value_id(&k, "a\u{FFFD}".as_bytes());
        assert!(a != b && b != c && a != c);
        // Control bytes in names cannot fake a separator.
        let nul = value_id(&k, b"x\0y\x01z\x02");
        assert_eq!(
            parse(&nul).unwrap().value.as_deref(),
            Some(&b"x\0y\x01z\x02"[..])
        );
    }

    #[test]
    fn identities_round_trip_and_sort_as_a_scan_visits() {
        let k = key_id(&["HKLM", "A"]);
        let p = parse(&value_id(&k, b"v")).unwrap();
        assert_eq!(p.keys, vec![b"HKLM".to_vec(), b"A".to_vec()]);
        assert_eq!(p.value, Some(b"v".to_vec()));
        assert_eq!(parse(&k).unwrap().value, None);
        assert_eq!(key_len(&value_id(&k, b"v")), k.len());
        // A key, its values, then its subkeys' subtrees.
        let mut sub = k.clone();
        push_key(&mut sub, b"B");
        let mut order = vec![
            value_id(&sub, b"z"),
            sub.clone(),
            value_id(&k, b"zz"),
            k.clone(),
            value_id(&k, b""),
        ];
        order.sort();
        assert_eq!(
            order,
            vec![
                k.clone(),
                value_id(&k, b""),
                value_id(&k, b"zz"),
                sub.clone(),
                value_id(&sub, b"z")
            ]
        );
        assert!(under(&k, &value_id(&sub, b"z")));
        assert!(!under(&sub, &value_id(&k, b"zz")));
        // "A" and "AB" are siblings, not one inside the other.
        let ab = key_id(&["HKLM", "AB"]);
        assert!(!under(&k, &ab));
        assert!(parse(b"HKLM").is_none());
    }

    #[test]
    fn view_markers_keep_the_logical_path_and_order() {
        let k = key_id(&["HKLM", "SOFTWARE", "Vendor"]);
        let plain = value_id(&k, b"Bits");
        let v64 = with_view(&plain, View::V64);
        let v32 = with_view(&plain, View::V32);
        assert!(plain != v64 && v64 != v32 && plain != v32);
        assert_eq!(view(&plain), None);
        assert_eq!(view(&v64), Some(View::V64));
        assert_eq!(view(&v32), Some(View::V32));
        // The same logical path, inside the same key.
        for id in [&v64, &v32] {
            let p = parse(id).unwrap();
            assert_eq!(p.value.as_deref(), Some(&b"Bits"[..]));
            assert_eq!(p.keys.len(), 3);
            assert!(under(&k, id));
            assert_eq!(key_len(id), k.len());
        }
        // Marking twice, or a key, changes nothing.
        assert_eq!(with_view(&v64, View::V32), v64);
        assert_eq!(with_view(&k, View::V32), k);
        // The marker is valid only at the start of a value name, and no
        // escaped name produces it.
        let mut bad = plain.clone();
        bad.extend_from_slice(&[ESC, VIEW32]);
        assert!(parse(&bad).is_none());
        let odd = value_id(&k, &[ESC, VIEW32]);
        assert_eq!(view(&odd), None);
        assert_eq!(parse(&odd).unwrap().value, Some(vec![ESC, VIEW32]));
        // Identity order: key, values (64-bit, 32-bit, shared), subkeys.
        let mut sub = k.clone();
        push_key(&mut sub, b"A");
        let default64 = with_view(&value_id(&k, b""), View::V64);
        let mut order = vec![
            sub.clone(),
            v32.clone(),
            plain.clone(),
            v64.clone(),
            default64.clone(),
        ];
        order.sort();
        assert_eq!(order, vec![default64, v64, v32, plain, sub]);
    }

    #[test]
    fn wtf8_is_lossless_and_displays_lossy() {
        let units = [0x41, 0xD800, 0x42, 0xD83D, 0xDE00, 0xDC01];
        let b = w(&units);
        assert_eq!(to_utf16(&b), units);
        assert_eq!(display_name(&b), "A\u{FFFD}B\u{1F600}\u{FFFD}");
        assert!(!shown_exactly(&b, true));
        assert!(shown_exactly("Ä".as_bytes(), true));
        assert!(!shown_exactly(b"(Default)", true));
        assert!(shown_exactly(b"(Default)", false));
        assert_eq!(utf16le_hex(b"A"), "4100");
        assert_eq!(display_value_name(b""), "(Default)");
    }
}
