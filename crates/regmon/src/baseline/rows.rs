//! The values of one key as stored in its baseline row: one compact blob
//! per key (see the `keyvals` table in [`super`]), so a rescan reads one row
//! per key instead of one per value and a change rewrites only its key's row.
//!
//! Layout, per value in identity order: the value's part of its identity
//! after the key and the value mark (its escaped name, with the view marker
//! if any; see [`crate::path::ident`]) as a varint length and bytes; the
//! type and size as varints; the digest as one length byte and bytes; the
//! kept data as a varint (0 = none, n + 1 = n bytes) and bytes.

use crate::model::digest::Digest;
use crate::model::Entry;
use crate::path::ident::VALUE_MARK;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends one value (`rest`: its identity after the key and the value mark).
pub fn push(
    out: &mut Vec<u8>,
    rest: &[u8],
    ty: u32,
    size: u64,
    digest: &[u8],
    data: Option<&[u8]>,
) {
    put_varint(out, rest.len() as u64);
    out.extend_from_slice(rest);
    put_varint(out, u64::from(ty));
    put_varint(out, size);
    // Digests are at most 64 bytes (SHA-512); a longer one is cut rather
    // than written unreadable.
    let d = &digest[..digest.len().min(255)];
    out.push(d.len() as u8);
    out.extend_from_slice(d);
    match data {
        None => out.push(0),
        Some(d) => {
            put_varint(out, d.len() as u64 + 1);
            out.extend_from_slice(d);
        }
    }
}

/// Appends `e`, a value of the key whose identity is `key` (a prefix of
/// `e.id`, followed there by the value mark).
pub fn push_entry(out: &mut Vec<u8>, key: &[u8], e: &Entry) {
    push(
        out,
        &e.id[key.len() + 1..],
        e.value_type,
        e.size,
        &e.digest,
        e.data.as_deref(),
    );
}

/// One value as read from a row, borrowing the blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored<'b> {
    /// The identity after the key and the value mark.
    pub rest: &'b [u8],
    pub ty: u32,
    pub size: u64,
    pub digest: &'b [u8],
    pub data: Option<&'b [u8]>,
}

impl Stored<'_> {
    /// As an entry of the key `key`.
    pub fn entry(&self, key: &[u8]) -> Entry {
        Entry {
            id: full_id(key, self.rest),
            value_type: self.ty,
            size: self.size,
            digest: Digest::from_slice(self.digest),
            data: self.data.map(<[u8]>::to_vec),
        }
    }

    /// Whether it holds what `e` holds (type, size, digest).
    pub fn same(&self, e: &Entry) -> bool {
        self.ty == e.value_type && self.size == e.size && self.digest == &e.digest[..]
    }
}

/// The identity of the value `rest` of key `key`.
pub fn full_id(key: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut id = Vec::with_capacity(key.len() + 1 + rest.len());
    id.extend_from_slice(key);
    id.push(VALUE_MARK);
    id.extend_from_slice(rest);
    id
}

/// Reads the values of a row blob in order. A malformed blob (damaged
/// file without a key to check it) ends with an error, never a panic.
pub struct Reader<'b> {
    blob: &'b [u8],
    at: usize,
}

/// Why a blob could not be read.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl<'b> Reader<'b> {
    pub fn new(blob: &'b [u8]) -> Reader<'b> {
        Reader { blob, at: 0 }
    }

    fn varint(&mut self) -> Result<u64, Malformed> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .blob
                .get(self.at)
                .ok_or(Malformed("truncated number"))?;
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Malformed("number too long"))
    }

    fn bytes(&mut self, n: u64) -> Result<&'b [u8], Malformed> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.at.checked_add(n))
            .filter(|&e| e <= self.blob.len())
            .ok_or(Malformed("truncated bytes"))?;
        let b = &self.blob[self.at..end];
        self.at = end;
        Ok(b)
    }

    /// The next value, None at the end.
    pub fn next_value(&mut self) -> Result<Option<Stored<'b>>, Malformed> {
        if self.at >= self.blob.len() {
            return Ok(None);
        }
        let n = self.varint()?;
        let rest = self.bytes(n)?;
        let ty = u32::try_from(self.varint()?).map_err(|_| Malformed("type out of range"))?;
        let size = self.varint()?;
        let dn = self.bytes(1)?[0];
        let digest = self.bytes(u64::from(dn))?;
        let data = match self.varint()? {
            0 => None,
            n => Some(self.bytes(n - 1)?),
        };
        Ok(Some(Stored {
            rest,
            ty,
            size,
            digest,
            data,
        }))
    }
}

/// Every value of a blob, checked to be in strictly increasing order.
pub fn decode(blob: &[u8]) -> Result<Vec<Stored<'_>>, Malformed> {
    let mut r = Reader::new(blob);
    let mut out: Vec<Stored<'_>> = Vec::new();
    while let Some(v) = r.next_value()? {
        if out.last().is_some_and(|p| p.rest >= v.rest) {
            return Err(Malformed("values out of order"));
        }
        out.push(v);
    }
    Ok(out)
}

/// Encodes values (in order) into a blob.
pub fn encode<'a>(values: impl IntoIterator<Item = Stored<'a>>) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        push(&mut out, v.rest, v.ty, v.size, v.digest, v.data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::ident;

    #[test]
    fn values_round_trip_in_order() {
        let key = ident::key_id(&["HKLM", "K"]);
        let a = Entry {
            id: ident::value_id(&key, b""),
            value_type: 4,
            size: 4,
            digest: Digest::from_slice(&[1; 20]),
            data: Some(vec![1, 0, 0, 0]),
        };
        let b = Entry {
            id: ident::with_view(&ident::value_id(&key, b"n\x01me"), ident::View::V32),
            value_type: 0xffff_ffff,
            size: 1 << 40,
            digest: Digest::from_slice(&[]),
            data: None,
        };
        let mut blob = Vec::new();
        push_entry(&mut blob, &key, &a);
        push_entry(&mut blob, &key, &b);
        let got: Vec<Entry> = decode(&blob)
            .unwrap()
            .iter()
            .map(|v| v.entry(&key))
            .collect();
        assert_eq!(got, vec![a.clone(), b.clone()]);
        assert_eq!(encode(decode(&blob).unwrap()), blob);
        assert!(decode(&blob).unwrap()[0].same(&a));
        // Cut anywhere: an error, never a panic.
        for n in 1..blob.len() {
            let r = decode(&blob[..n]);
            assert!(r.is_err() || r.unwrap().len() == 1, "cut at {n}");
        }
        let mut swapped = Vec::new();
        push_entry(&mut swapped, &key, &b);
        push_entry(&mut swapped, &key, &a);
        assert_eq!(decode(&swapped), Err(Malformed("values out of order")));
        assert_eq!(decode(&[0xff; 12]), Err(Malformed("number too long")));
    }
}
