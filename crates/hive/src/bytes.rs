//! The crate's one little-endian byte reader. Every read is checked: a
//! random-access read gives `None` past the end, and [`Reader`] (a cursor over
//! one on-disk structure, after gimli-rs/object's `Bytes`) gives an [`Error`]
//! naming the file offset of the structure that is too short. Nothing here
//! panics on any input.

use crate::error::{Error, ErrorKind, Result};

/// The `N` bytes at `off`, if they are all there.
#[inline]
pub(crate) fn array_at<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
    b.get(off..off.checked_add(N)?)?.try_into().ok()
}

#[inline]
pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    array_at(b, off).map(u32::from_le_bytes)
}

#[inline]
pub(crate) fn i32_at(b: &[u8], off: usize) -> Option<i32> {
    array_at(b, off).map(i32::from_le_bytes)
}

#[inline]
pub(crate) fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    array_at(b, off).map(u64::from_le_bytes)
}

/// The whole little-endian dwords of `b`, in order (a tail of 1 to 3 bytes is left out).
#[inline]
pub(crate) fn u32_words(b: &[u8]) -> impl Iterator<Item = u32> + '_ {
    b.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

/// UTF-16LE code units of `b` (an odd trailing byte is ignored).
#[inline]
pub(crate) fn utf16_units(b: &[u8]) -> impl Iterator<Item = u16> + '_ {
    b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]))
}

/// Turns a failed read into an [`Error`] (gimli-rs/object's `read_error`,
/// with the file offset added).
pub(crate) trait ReadError<T> {
    fn read_error(self, what: &str, at: u64) -> Result<T>;
}

impl<T> ReadError<T> for Option<T> {
    #[inline]
    fn read_error(self, what: &str, at: u64) -> Result<T> {
        self.ok_or_else(|| Error::at(ErrorKind::Truncated(what.to_string()), at))
    }
}

/// A fixed-size on-disk structure read in place (zero-copy, like nt-hive's
/// header structs): each field is read at a constant offset that is checked
/// against the size when compiling, so no read can fail at run time.
#[derive(Clone, Copy)]
pub(crate) struct Fixed<'a, const N: usize>(&'a [u8; N]);

impl<'a, const N: usize> Fixed<'a, N> {
    /// The structure at the start of `b`, if `b` holds all of it.
    #[inline]
    pub(crate) fn new(b: &'a [u8]) -> Option<Self> {
        b.first_chunk::<N>().map(Fixed)
    }

    #[inline(always)]
    pub(crate) fn u16<const O: usize>(self) -> u16 {
        const { assert!(O + 2 <= N) };
        u16::from_le_bytes([self.0[O], self.0[O + 1]])
    }

    #[inline(always)]
    pub(crate) fn u32<const O: usize>(self) -> u32 {
        const { assert!(O + 4 <= N) };
        u32::from_le_bytes([self.0[O], self.0[O + 1], self.0[O + 2], self.0[O + 3]])
    }

    #[inline(always)]
    pub(crate) fn u64<const O: usize>(self) -> u64 {
        const { assert!(O + 8 <= N) };
        let b = self.0;
        u64::from_le_bytes([
            b[O],
            b[O + 1],
            b[O + 2],
            b[O + 3],
            b[O + 4],
            b[O + 5],
            b[O + 6],
            b[O + 7],
        ])
    }

    /// `L` bytes at offset `O`, borrowed from the file.
    #[inline(always)]
    pub(crate) fn bytes<const O: usize, const L: usize>(self) -> &'a [u8] {
        const { assert!(O + L <= N) };
        &self.0[O..O + L]
    }
}

/// A cursor over the bytes of one on-disk structure, for decoding its fields
/// in order. `at` is the structure's file offset: errors name it, as a user
/// with a hex editor looks for the structure, not for the field.
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
    at: u64,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8], what: &'static str, at: u64) -> Self {
        Reader {
            rest: data,
            what,
            at,
        }
    }

    #[inline]
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        match self.rest.split_at_checked(n) {
            Some((head, tail)) => {
                self.rest = tail;
                Ok(head)
            }
            None => Err(Error::at(ErrorKind::Truncated(self.what.into()), self.at)),
        }
    }

    #[inline]
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        match self.rest.split_first_chunk::<N>() {
            Some((head, tail)) => {
                self.rest = tail;
                Ok(*head)
            }
            None => Err(Error::at(ErrorKind::Truncated(self.what.into()), self.at)),
        }
    }

    #[inline]
    pub(crate) fn u16(&mut self) -> Result<u16> {
        self.array().map(u16::from_le_bytes)
    }

    #[inline]
    pub(crate) fn u32(&mut self) -> Result<u32> {
        self.array().map(u32::from_le_bytes)
    }

    #[inline]
    pub(crate) fn u64(&mut self) -> Result<u64> {
        self.array().map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_access_reads_are_checked() {
        let b = [1, 2, 3, 4, 5];
        assert_eq!(u32_words(&b).collect::<Vec<_>>(), [0x0403_0201]);
        assert_eq!(u32_at(&b, 1), Some(0x0504_0302));
        assert_eq!(u32_at(&b, 2), None);
        assert_eq!(u64_at(&b, 0), None);
        assert_eq!(u32_at(&b, usize::MAX), None);
        assert_eq!(i32_at(&[0xf8, 0xff, 0xff, 0xff], 0), Some(-8));
    }

    #[test]
    fn reader_names_the_structure_offset() {
        let mut r = Reader::new(&[1, 0, 2, 0, 0, 0, 9], "thing", 0x1234);
        assert_eq!(r.u16().unwrap(), 1);
        assert_eq!(r.u32().unwrap(), 2);
        let e = r.u16().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Truncated("thing".into()));
        assert_eq!(e.offset, Some(0x1234));
        assert_eq!(r.bytes(1).unwrap(), [9]);
        assert!(r.bytes(1).is_err());
        assert_eq!(None::<u8>.read_error("x", 7).unwrap_err().offset, Some(7));
    }
}
