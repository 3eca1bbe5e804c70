//! Value data as event fields (`ReportData`): strings, string lists,
//! numbers, or base64, by registry type.

use base64::Engine as _;
use hive::ValueType;
use nxconf::Value;

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
