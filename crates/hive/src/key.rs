//! Key nodes (`nk`) and their subkey lists (`li`, `lf`, `lh`, `ri`).

use crate::bytes::{u32_at, Fixed, ReadError, Reader};
use crate::cells::Cells;
use crate::error::{Error, ErrorKind, Result};
use crate::name::{upcase_str, upcase_unit, Name};
use crate::value::{Value, Values};
use std::cmp::Ordering;

pub const KEY_COMP_NAME: u16 = 0x20;
pub const KEY_HIVE_ENTRY: u16 = 0x04;
pub const KEY_SYM_LINK: u16 = 0x10;

/// The fixed part of a key node (`nk`) cell, read in place: one accessor per
/// on-disk field, named as in the format specification, in on-disk order.
/// The key name follows it.
#[derive(Clone, Copy)]
struct KeyNodeHeader<'a>(Fixed<'a, NK_HEADER>);

/// Bytes of an `nk` cell before the name.
const NK_HEADER: usize = 76;

impl KeyNodeHeader<'_> {
    // 0: signature `nk`
    fn flags(self) -> u16 {
        self.0.u16::<2>()
    }
    fn last_written(self) -> u64 {
        self.0.u64::<4>()
    }
    /// Windows 8+ access bits (layered-key bits on Windows 10 containers).
    fn access_bits(self) -> u32 {
        self.0.u32::<12>()
    }
    fn parent(self) -> u32 {
        self.0.u32::<16>()
    }
    fn subkey_count(self) -> u32 {
        self.0.u32::<20>()
    }
    // 24: volatile subkey count
    fn subkeys_list(self) -> u32 {
        self.0.u32::<28>()
    }
    // 32: volatile subkeys list
    fn value_count(self) -> u32 {
        self.0.u32::<36>()
    }
    fn values_list(self) -> u32 {
        self.0.u32::<40>()
    }
    fn security(self) -> u32 {
        self.0.u32::<44>()
    }
    fn class_name(self) -> u32 {
        self.0.u32::<48>()
    }
    // 52..72: largest subkey name, class name, value name and value data; work var
    fn name_len(self) -> u16 {
        self.0.u16::<72>()
    }
    fn class_name_len(self) -> u16 {
        self.0.u16::<74>()
    }
}

/// A key node. Cheap to copy: it borrows the hive's bytes.
#[derive(Clone, Copy)]
pub struct Key<'a> {
    cells: Cells<'a>,
    off: u32,
    hdr: KeyNodeHeader<'a>,
    name: &'a [u8],
}

impl<'a> Key<'a> {
    /// Decodes the `nk` cell at cell offset `off`, checking that its fixed
    /// fields and name fit in the cell.
    pub fn parse(cells: Cells<'a>, off: u32) -> Result<Key<'a>> {
        let nk = cells.cell_sig(off, "nk")?;
        let at = Cells::file_offset(off);
        let Some(hdr) = Fixed::new(nk).map(KeyNodeHeader) else {
            return Err(Error::at(ErrorKind::Truncated("key node".into()), at));
        };
        let name_len = hdr.name_len() as usize;
        let Some(name) = nk.get(NK_HEADER..NK_HEADER + name_len) else {
            return Err(Error::at(
                ErrorKind::Truncated(format!("key name ({name_len} bytes)")),
                at,
            ));
        };
        Ok(Key {
            cells,
            off,
            hdr,
            name,
        })
    }

    /// The cell offset of this key: a stable identity within one hive.
    pub fn offset(&self) -> u32 {
        self.off
    }

    pub fn file_offset(&self) -> u64 {
        Cells::file_offset(self.off)
    }

    pub fn flags(&self) -> u16 {
        self.hdr.flags()
    }

    pub fn name(&self) -> Name<'a> {
        if self.flags() & KEY_COMP_NAME != 0 {
            Name::Latin1(self.name)
        } else {
            Name::Utf16(self.name)
        }
    }

    /// Last-written time as a FILETIME (100 ns ticks since 1601-01-01 UTC).
    pub fn last_written(&self) -> u64 {
        self.hdr.last_written()
    }

    /// Access bits (Windows 8+; layered-key bits on Windows 10 containers).
    pub fn access_bits(&self) -> u32 {
        self.hdr.access_bits()
    }

    pub fn parent_offset(&self) -> u32 {
        self.hdr.parent()
    }

    /// The subkey count the key declares (the list is the authority).
    pub fn subkey_count(&self) -> u32 {
        self.hdr.subkey_count()
    }

    /// The value count the key declares.
    pub fn value_count(&self) -> u32 {
        self.hdr.value_count()
    }

    pub fn is_symlink(&self) -> bool {
        self.flags() & KEY_SYM_LINK != 0
    }

    /// The class name, if any (UTF-16LE).
    pub fn class_name(&self) -> Result<Option<Name<'a>>> {
        let off = self.hdr.class_name();
        let len = self.hdr.class_name_len() as usize;
        if off == u32::MAX || len == 0 {
            return Ok(None);
        }
        let c = self.cells.cell(off)?;
        match c.get(..len) {
            Some(name) => Ok(Some(Name::Utf16(name))),
            None => Err(Error::at(
                ErrorKind::Truncated(format!("class name ({len} bytes)")),
                Cells::file_offset(off),
            )),
        }
    }

    /// The self-relative security descriptor from the key's `sk` cell.
    pub fn security_descriptor(&self) -> Result<Option<&'a [u8]>> {
        let off = self.hdr.security();
        if off == u32::MAX {
            return Ok(None);
        }
        let sk = self.cells.cell_sig(off, "sk")?;
        let at = Cells::file_offset(off);
        // `sk`: signature, reserved, flink, blink, reference count, then the
        // descriptor's size and the descriptor.
        let len = u32_at(sk, 16).read_error("security cell", at)?;
        sk.get(20..20usize.saturating_add(len as usize))
            .map(Some)
            .ok_or_else(|| Error::at(ErrorKind::Truncated("security descriptor".into()), at))
    }

    /// The subkeys, in the order of the subkey list (sorted by upper-cased
    /// name in a healthy hive). Each item is a key or the error that stopped
    /// that one entry; the rest of the list still comes.
    pub fn subkeys(&self) -> Result<Subkeys<'a>> {
        let list = self.hdr.subkeys_list();
        if self.subkey_count() == 0 || list == u32::MAX {
            return Ok(Subkeys::empty(self.cells));
        }
        Subkeys::new(self.cells, list)
    }

    /// Looks a subkey up by name, case-insensitively, by binary search in the
    /// sorted subkey list. Falls back to a scan if the list turns out to be
    /// unsorted, so a damaged order never hides a key.
    pub fn subkey(&self, name: &str) -> Result<Option<Key<'a>>> {
        let want = upcase_str(name);
        let list = self.hdr.subkeys_list();
        if self.subkey_count() == 0 || list == u32::MAX {
            return Ok(None);
        }
        let root = ListRef::parse(self.cells, list)?;
        let leaves: Vec<ListRef<'a>> = if root.kind == ListKind::Ri {
            (0..root.count)
                .filter_map(|i| ListRef::parse(self.cells, root.entry(i)).ok())
                .filter(|l| l.kind != ListKind::Ri)
                .collect()
        } else {
            vec![root]
        };
        for leaf in &leaves {
            if let Some(k) = leaf.binary_search(&want)? {
                return Ok(Some(k));
            }
        }
        // A miss in a well-sorted list is final; only scan if the order is broken.
        for leaf in &leaves {
            if !leaf.is_sorted() {
                for i in 0..leaf.count {
                    if let Ok(k) = Key::parse(self.cells, leaf.entry(i)) {
                        if k.name().cmp_ignore_case(&want) == Ordering::Equal {
                            return Ok(Some(k));
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    /// The values, in value-list order (unsorted on disk).
    pub fn values(&self) -> Result<Values<'a>> {
        let count = self.value_count();
        let list = self.hdr.values_list();
        if count == 0 || list == u32::MAX {
            return Ok(Values::empty(self.cells));
        }
        Values::new(self.cells, list, count)
    }

    /// Looks a value up by name, case-insensitively ("" = the default value).
    pub fn value(&self, name: &str) -> Result<Option<Value<'a>>> {
        let want = upcase_str(name);
        for v in self.values()?.flatten() {
            if v.name().cmp_ignore_case(&want) == Ordering::Equal {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }
}

impl std::fmt::Debug for Key<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name())
            .field("offset", &self.off)
            .finish()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ListKind {
    Li,
    Lf,
    Lh,
    Ri,
}

/// One subkey list cell, its entries bounds-checked against the cell.
#[derive(Clone, Copy)]
struct ListRef<'a> {
    cells: Cells<'a>,
    kind: ListKind,
    body: &'a [u8],
    count: usize,
    stride: usize,
}

impl<'a> ListRef<'a> {
    fn parse(cells: Cells<'a>, off: u32) -> Result<ListRef<'a>> {
        let c = cells.cell(off)?;
        let at = Cells::file_offset(off);
        // Signature, entry count, then the entries.
        let mut r = Reader::new(c, "subkey list", at);
        let signature: [u8; 2] = r.array()?;
        let declared = r.u16()? as usize;
        let body = r.bytes(c.len() - 4)?;
        let (kind, stride) = match &signature {
            b"li" => (ListKind::Li, 4),
            b"lf" => (ListKind::Lf, 8),
            b"lh" => (ListKind::Lh, 8),
            b"ri" => (ListKind::Ri, 4),
            _ => {
                return Err(Error::at(
                    ErrorKind::BadSignature {
                        expected: "li/lf/lh/ri",
                        found: signature,
                    },
                    at,
                ))
            }
        };
        let fits = body.len() / stride;
        if declared > fits {
            return Err(Error::at(
                ErrorKind::BadCount(format!(
                    "subkey list declares {declared} entries, its cell holds {fits}"
                )),
                at,
            ));
        }
        Ok(ListRef {
            cells,
            kind,
            body,
            count: declared,
            stride,
        })
    }

    /// The cell offset in entry `i` (`i < count`, so it is always there; an
    /// impossible miss reads as no cell).
    fn entry(&self, i: usize) -> u32 {
        u32_at(self.body, i * self.stride).unwrap_or(u32::MAX)
    }

    fn binary_search(&self, want: &[u16]) -> Result<Option<Key<'a>>> {
        let (mut lo, mut hi) = (0usize, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let k = match Key::parse(self.cells, self.entry(mid)) {
                Ok(k) => k,
                // A broken entry in the middle: give up on bisection; the
                // caller's scan will still find healthy keys.
                Err(_) => return Ok(None),
            };
            match k.name().cmp_ignore_case(want) {
                Ordering::Equal => return Ok(Some(k)),
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
            }
        }
        Ok(None)
    }

    fn is_sorted(&self) -> bool {
        let mut prev: Option<Vec<u16>> = None;
        for i in 0..self.count {
            let Ok(k) = Key::parse(self.cells, self.entry(i)) else {
                return false;
            };
            let up: Vec<u16> = k.name().units().map(upcase_unit).collect();
            if let Some(p) = &prev {
                if p > &up {
                    return false;
                }
            }
            prev = Some(up);
        }
        true
    }
}

/// Iterator over a key's subkeys, flattening an `ri` index root.
pub struct Subkeys<'a> {
    cells: Cells<'a>,
    /// The `ri` root, if any, and the next leaf index in it.
    root: Option<(ListRef<'a>, usize)>,
    leaf: Option<(ListRef<'a>, usize)>,
}

impl<'a> Subkeys<'a> {
    fn empty(cells: Cells<'a>) -> Self {
        Subkeys {
            cells,
            root: None,
            leaf: None,
        }
    }

    fn new(cells: Cells<'a>, off: u32) -> Result<Self> {
        let l = ListRef::parse(cells, off)?;
        Ok(if l.kind == ListKind::Ri {
            Subkeys {
                cells,
                root: Some((l, 0)),
                leaf: None,
            }
        } else {
            Subkeys {
                cells,
                root: None,
                leaf: Some((l, 0)),
            }
        })
    }
}

impl<'a> Iterator for Subkeys<'a> {
    type Item = Result<Key<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((leaf, i)) = &mut self.leaf {
                if *i < leaf.count {
                    let off = leaf.entry(*i);
                    *i += 1;
                    return Some(Key::parse(self.cells, off));
                }
                self.leaf = None;
            }
            let (root, j) = self.root.as_mut()?;
            if *j >= root.count {
                self.root = None;
                return None;
            }
            let off = root.entry(*j);
            *j += 1;
            match ListRef::parse(self.cells, off) {
                // Index roots are never nested; refusing nesting also rules out
                // an `ri` that lists itself.
                Ok(l) if l.kind == ListKind::Ri => {
                    return Some(Err(Error::at(ErrorKind::Cycle, Cells::file_offset(off))))
                }
                Ok(l) => self.leaf = Some((l, 0)),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
