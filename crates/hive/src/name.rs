//! Key and value names as stored: Latin-1 ("compressed") or UTF-16LE bytes.
//!
//! Names are kept as the raw bytes so they round-trip losslessly: real hives
//! hold UTF-16 names with unpaired surrogates, which no Rust `String` can.

use crate::bytes::utf16_units;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Name<'a> {
    /// One byte per character, code points 0..=255.
    Latin1(&'a [u8]),
    /// UTF-16LE code units (an odd trailing byte is ignored).
    Utf16(&'a [u8]),
}

impl<'a> Name<'a> {
    /// The UTF-16 code units of the name, surrogates untouched.
    pub fn units(&self) -> impl Iterator<Item = u16> + 'a {
        let (latin, wide): (&'a [u8], &'a [u8]) = match *self {
            Name::Latin1(b) => (b, &[]),
            Name::Utf16(b) => (&[], b),
        };
        latin.iter().map(|&b| b as u16).chain(utf16_units(wide))
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Name::Latin1(b) => b.is_empty(),
            Name::Utf16(b) => b.len() < 2,
        }
    }

    /// Length in UTF-16 code units.
    pub fn len_units(&self) -> usize {
        match self {
            Name::Latin1(b) => b.len(),
            Name::Utf16(b) => b.len() / 2,
        }
    }

    /// The name as text; unpaired surrogates become U+FFFD. Borrowed for
    /// ASCII names, the common case.
    pub fn to_string_lossy(&self) -> Cow<'a, str> {
        match *self {
            Name::Latin1(b) if b.is_ascii() => {
                // ASCII is valid UTF-8.
                Cow::Borrowed(std::str::from_utf8(b).unwrap_or_default())
            }
            Name::Latin1(b) => Cow::Owned(b.iter().map(|&c| c as char).collect()),
            Name::Utf16(_) => Cow::Owned(
                char::decode_utf16(self.units())
                    .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                    .collect(),
            ),
        }
    }

    /// Whether the name decodes to text without loss.
    pub fn is_valid_unicode(&self) -> bool {
        match self {
            Name::Latin1(_) => true,
            Name::Utf16(_) => char::decode_utf16(self.units()).all(|r| r.is_ok()),
        }
    }

    /// Case-insensitive comparison in the registry's order: code unit by
    /// code unit after upper-casing, as Windows sorts subkey lists.
    pub fn cmp_ignore_case(&self, other_upper: &[u16]) -> Ordering {
        self.units()
            .map(upcase_unit)
            .cmp(other_upper.iter().copied())
    }

    /// The `lh` hash of this name (Windows: 37 * h + upcased code unit).
    pub fn lh_hash(&self) -> u32 {
        lh_hash_units(self.units())
    }
}

/// The `lh` subkey-list hash over UTF-16 code units.
pub fn lh_hash_units(units: impl Iterator<Item = u16>) -> u32 {
    units.fold(0u32, |h, u| {
        h.wrapping_mul(37).wrapping_add(upcase_unit(u) as u32)
    })
}

/// Upper-cases one UTF-16 code unit the way the registry does: per code unit,
/// simple (one-to-one) mappings only; surrogates and units whose upper case is
/// not a single BMP character stay as they are.
pub fn upcase_unit(u: u16) -> u16 {
    if u < 0x80 {
        return (u as u8).to_ascii_uppercase() as u16;
    }
    match char::from_u32(u as u32) {
        Some(c) => {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(x), None) if (x as u32) <= 0xFFFF => x as u32 as u16,
                _ => u,
            }
        }
        None => u,
    }
}

/// Whether two names are the same registry name: equal code unit by code
/// unit after [`upcase_unit`], as Windows compares them. This module is the
/// one home of that rule; lookups, the writer and callers comparing names
/// all come here.
pub fn same_name_units(a: impl IntoIterator<Item = u16>, b: impl IntoIterator<Item = u16>) -> bool {
    a.into_iter()
        .map(upcase_unit)
        .eq(b.into_iter().map(upcase_unit))
}

/// [`same_name_units`] for two names given as text.
pub fn same_name_str(a: &str, b: &str) -> bool {
    // ASCII upcases to the same result without encoding to UTF-16.
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    same_name_units(a.encode_utf16(), b.encode_utf16())
}

/// Upper-cased UTF-16 units of a `str`, for lookups.
pub fn upcase_str(s: &str) -> Vec<u16> {
    s.encode_utf16().map(upcase_unit).collect()
}

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

impl fmt::Debug for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string_lossy())
    }
}

/// Appends `units` to `out` as the inside of a JSON string. Unpaired
/// surrogates are written as `\uXXXX` escapes, so nothing is lost.
pub fn json_escape_units(units: impl Iterator<Item = u16>, out: &mut String) {
    use std::fmt::Write;
    for r in char::decode_utf16(units) {
        match r {
            Ok(c) => json_escape_char(c, out),
            Err(e) => {
                let _ = write!(out, "\\u{:04x}", e.unpaired_surrogate());
            }
        }
    }
}

/// Appends one character, JSON-escaped.
pub fn json_escape_char(c: char, out: &mut String) {
    use std::fmt::Write;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_and_utf16_decode() {
        assert_eq!(Name::Latin1(b"Run").to_string_lossy(), "Run");
        assert_eq!(Name::Latin1(&[0x52, 0xe9]).to_string_lossy(), "Ré");
        let w: Vec<u8> = "Ключ"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        assert_eq!(Name::Utf16(&w).to_string_lossy(), "Ключ");
    }

    #[test]
    fn unpaired_surrogate_is_kept_in_json() {
        let bytes = [0x41, 0x00, 0x00, 0xd8, 0x42, 0x00];
        let n = Name::Utf16(&bytes);
        assert!(!n.is_valid_unicode());
        let mut s = String::new();
        json_escape_units(n.units(), &mut s);
        assert_eq!(s, "A\\ud800B");
    }

    #[test]
    fn case_insensitive_order() {
        let n = Name::Latin1(b"software");
        assert_eq!(n.cmp_ignore_case(&upcase_str("SOFTWARE")), Ordering::Equal);
        assert_eq!(n.cmp_ignore_case(&upcase_str("System")), Ordering::Less);
        assert_eq!(upcase_unit('é' as u16), 'É' as u16);
    }

    #[test]
    fn same_name_follows_the_registry_rule() {
        for (a, b) in [
            ("Software", "SOFTWARE"),
            ("Ä", "ä"),
            ("Größe", "GRÖßE"),
            ("Σίσυφος", "ΣΊΣΥΦΟΣ"),
            ("σ", "Σ"),
            ("Ж", "ж"),
            ("Ключ", "КЛЮЧ"),
            ("", ""),
        ] {
            assert!(same_name_str(a, b), "{a} = {b}");
            assert!(same_name_str(b, a), "{b} = {a}");
            assert!(same_name_units(a.encode_utf16(), b.encode_utf16()));
        }
        for (a, b) in [
            ("Run", "RunOnce"),
            ("Ä", "A"),
            ("Ж", "З"),
            // Per code unit: no one-to-many mappings (ß is not SS) ...
            ("straße", "STRASSE"),
            // ... and surrogates stay as they are (Deseret 𐐀 / 𐐨).
            ("\u{10400}", "\u{10428}"),
        ] {
            assert!(!same_name_str(a, b), "{a} != {b}");
            assert!(!same_name_str(b, a), "{b} != {a}");
        }
        // Unpaired surrogates compare as themselves.
        assert!(same_name_units([0xD800, 0x61], [0xD800, 0x41]));
        assert!(!same_name_units([0xD800], [0xDC00]));
    }

    #[test]
    fn lh_hash_is_case_insensitive() {
        assert_eq!(
            Name::Latin1(b"abc").lh_hash(),
            Name::Latin1(b"ABC").lh_hash()
        );
        assert_eq!(Name::Latin1(b"A").lh_hash(), 65);
    }
}
