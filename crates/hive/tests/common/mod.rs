//! Helpers shared by the hive crate's integration tests.
#![allow(dead_code)]

/// A REG_SZ's bytes: UTF-16LE with the terminating NUL.
pub fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain(std::iter::once(0))
        .flat_map(|u| u.to_le_bytes())
        .collect()
}
