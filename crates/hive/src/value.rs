//! Value cells (`vk`), their types, and their data (inline, plain, big data).

use crate::bytes::{u32_at, Fixed, Reader};
use crate::cells::Cells;
use crate::error::{Error, ErrorKind, Result};
use crate::name::Name;
use std::borrow::Cow;
use std::fmt;

/// Data bytes per big-data segment (every segment but the last is full).
pub const BIG_DATA_SEGMENT: usize = 16344;
const VALUE_COMP_NAME: u16 = 0x1;

/// A registry value type. Unknown numbers are kept as they are.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueType(pub u32);

impl ValueType {
    pub const NONE: ValueType = ValueType(0);
    pub const SZ: ValueType = ValueType(1);
    pub const EXPAND_SZ: ValueType = ValueType(2);
    pub const BINARY: ValueType = ValueType(3);
    pub const DWORD: ValueType = ValueType(4);
    pub const DWORD_BIG_ENDIAN: ValueType = ValueType(5);
    pub const LINK: ValueType = ValueType(6);
    pub const MULTI_SZ: ValueType = ValueType(7);
    pub const RESOURCE_LIST: ValueType = ValueType(8);
    pub const FULL_RESOURCE_DESCRIPTOR: ValueType = ValueType(9);
    pub const RESOURCE_REQUIREMENTS_LIST: ValueType = ValueType(10);
    pub const QWORD: ValueType = ValueType(11);

    /// The `REG_*` name, or `None` for a type Windows does not define.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "REG_NONE",
            1 => "REG_SZ",
            2 => "REG_EXPAND_SZ",
            3 => "REG_BINARY",
            4 => "REG_DWORD",
            5 => "REG_DWORD_BIG_ENDIAN",
            6 => "REG_LINK",
            7 => "REG_MULTI_SZ",
            8 => "REG_RESOURCE_LIST",
            9 => "REG_FULL_RESOURCE_DESCRIPTOR",
            10 => "REG_RESOURCE_REQUIREMENTS_LIST",
            11 => "REG_QWORD",
            _ => return None,
        })
    }

    /// Parses a `REG_*` name (case-insensitive) or a decimal number.
    pub fn from_name(s: &str) -> Option<ValueType> {
        if let Ok(n) = s.parse::<u32>() {
            return Some(ValueType(n));
        }
        (0..=11)
            .map(ValueType)
            .find(|t| t.name().is_some_and(|n| n.eq_ignore_ascii_case(s)))
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

impl fmt::Debug for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The fixed part of a value (`vk`) cell, read in place: one accessor per
/// on-disk field, named as in the format specification, in on-disk order.
/// The value name follows it.
#[derive(Clone, Copy)]
struct ValueKeyHeader<'a>(Fixed<'a, VK_HEADER>);

/// Bytes of a `vk` cell before the name.
const VK_HEADER: usize = 20;

impl<'a> ValueKeyHeader<'a> {
    // 0: signature `vk`
    fn name_len(self) -> u16 {
        self.0.u16::<2>()
    }
    /// Bit 31 set: the data sit in the `data_offset` field itself.
    fn data_size(self) -> u32 {
        self.0.u32::<4>()
    }
    fn data_offset(self) -> u32 {
        self.0.u32::<8>()
    }
    /// The `data_offset` field's own bytes, which hold inline data.
    fn inline_data(self) -> &'a [u8] {
        self.0.bytes::<8, 4>()
    }
    fn data_type(self) -> u32 {
        self.0.u32::<12>()
    }
    fn flags(self) -> u16 {
        self.0.u16::<16>()
    }
    // 18: spare
}

/// A value cell.
#[derive(Clone, Copy)]
pub struct Value<'a> {
    cells: Cells<'a>,
    off: u32,
    hdr: ValueKeyHeader<'a>,
    name: &'a [u8],
}

impl<'a> Value<'a> {
    pub fn parse(cells: Cells<'a>, off: u32) -> Result<Value<'a>> {
        let vk = cells.cell_sig(off, "vk")?;
        let at = Cells::file_offset(off);
        let Some(hdr) = Fixed::new(vk).map(ValueKeyHeader) else {
            return Err(Error::at(ErrorKind::Truncated("value cell".into()), at));
        };
        let name_len = hdr.name_len() as usize;
        let Some(name) = vk.get(VK_HEADER..VK_HEADER + name_len) else {
            return Err(Error::at(
                ErrorKind::Truncated(format!("value name ({name_len} bytes)")),
                at,
            ));
        };
        Ok(Value {
            cells,
            off,
            hdr,
            name,
        })
    }

    pub fn offset(&self) -> u32 {
        self.off
    }

    pub fn file_offset(&self) -> u64 {
        Cells::file_offset(self.off)
    }

    /// The value's name; empty for the default value.
    pub fn name(&self) -> Name<'a> {
        if self.flags() & VALUE_COMP_NAME != 0 {
            Name::Latin1(self.name)
        } else {
            Name::Utf16(self.name)
        }
    }

    pub fn flags(&self) -> u16 {
        self.hdr.flags()
    }

    pub fn value_type(&self) -> ValueType {
        ValueType(self.hdr.data_type())
    }

    fn raw_size(&self) -> u32 {
        self.hdr.data_size()
    }

    /// Whether the data sit in the value cell itself (4 bytes or fewer).
    pub fn is_inline(&self) -> bool {
        self.raw_size() & 0x8000_0000 != 0
    }

    /// The data size the value declares, in bytes.
    pub fn data_size(&self) -> u32 {
        self.raw_size() & 0x7FFF_FFFF
    }

    /// The raw data bytes exactly as stored: borrowed from the hive when they
    /// are contiguous, assembled from the segments for big data.
    pub fn data(&self) -> Result<Cow<'a, [u8]>> {
        let len = self.data_size() as usize;
        let at = self.file_offset();
        if self.is_inline() {
            return match self.hdr.inline_data().get(..len) {
                Some(d) => Ok(Cow::Borrowed(d)),
                None => Err(Error::at(
                    ErrorKind::BadData(format!("inline data of {len} bytes (at most 4)")),
                    at,
                )),
            };
        }
        if len == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        let off = self.hdr.data_offset();
        let cell = self.cells.cell(off)?;
        if let Some(d) = cell.get(..len) {
            return Ok(Cow::Borrowed(d));
        }
        if cell.len() >= 8 && cell.starts_with(b"db") {
            return self.big_data(cell, off, len).map(Cow::Owned);
        }
        Err(Error::at(
            ErrorKind::BadData(format!(
                "declared size {len} is larger than its {}-byte data cell",
                cell.len()
            )),
            Cells::file_offset(off),
        ))
    }

    fn big_data(&self, db: &'a [u8], db_off: u32, len: usize) -> Result<Vec<u8>> {
        let at = Cells::file_offset(db_off);
        // `db`: signature, segment count, offset of the segment list.
        let mut r = Reader::new(db, "big data", at);
        let _signature: [u8; 2] = r.array()?;
        let count = r.u16()? as usize;
        let list_off = r.u32()?;
        if len > count * BIG_DATA_SEGMENT {
            return Err(Error::at(
                ErrorKind::BadData(format!(
                    "declared size {len} exceeds {count} big-data segments"
                )),
                at,
            ));
        }
        let list = self.cells.cell(list_off)?;
        if list.len() < count * 4 {
            return Err(Error::at(
                ErrorKind::BadCount(format!("big-data segment list holds fewer than {count}")),
                Cells::file_offset(list_off),
            ));
        }
        // `len` is bounded by count * 16344 (at most about 1 GiB) and, below,
        // by the segments actually present in the file.
        let mut out = Vec::with_capacity(len.min(self.cells.bins_len()));
        for i in 0..count {
            if out.len() >= len {
                break;
            }
            let seg_off = u32_at(list, i * 4).unwrap_or(u32::MAX);
            let seg = self.cells.cell(seg_off)?;
            let take = (len - out.len()).min(BIG_DATA_SEGMENT).min(seg.len());
            out.extend_from_slice(seg.get(..take).unwrap_or_default());
            if take < BIG_DATA_SEGMENT && out.len() < len {
                return Err(Error::at(
                    ErrorKind::BadData(format!("big-data segment {i} is short")),
                    Cells::file_offset(seg_off),
                ));
            }
        }
        if out.len() < len {
            return Err(Error::at(
                ErrorKind::BadData(format!("big data holds {} of {len} bytes", out.len())),
                at,
            ));
        }
        Ok(out)
    }
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value")
            .field("name", &self.name())
            .field("type", &self.value_type())
            .field("size", &self.data_size())
            .finish()
    }
}

/// Iterator over a key's values. Each item is a value or the error for that
/// one list entry; the others still come.
pub struct Values<'a> {
    cells: Cells<'a>,
    list: &'a [u8],
    i: usize,
    count: usize,
    /// An error about the list itself, yielded once before the entries.
    pending: Option<Error>,
}

impl<'a> Values<'a> {
    pub(crate) fn empty(cells: Cells<'a>) -> Self {
        Values {
            cells,
            list: &[],
            i: 0,
            count: 0,
            pending: None,
        }
    }

    pub(crate) fn new(cells: Cells<'a>, off: u32, declared: u32) -> Result<Self> {
        let list = cells.cell(off)?;
        let fits = list.len() / 4;
        let declared = declared as usize;
        // A count larger than the cell: read what is there and say so.
        let pending = (declared > fits).then(|| {
            Error::at(
                ErrorKind::BadCount(format!(
                    "value list declares {declared} entries, its cell holds {fits}"
                )),
                Cells::file_offset(off),
            )
        });
        Ok(Values {
            cells,
            list,
            i: 0,
            count: declared.min(fits),
            pending,
        })
    }
}

impl<'a> Iterator for Values<'a> {
    type Item = Result<Value<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.pending.take() {
            return Some(Err(e));
        }
        if self.i >= self.count {
            return None;
        }
        // `i < count`, which the cell holds; an impossible miss reads as no cell.
        let off = u32_at(self.list, self.i * 4).unwrap_or(u32::MAX);
        self.i += 1;
        Some(Value::parse(self.cells, off))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.count - self.i + usize::from(self.pending.is_some());
        (n, Some(n))
    }
}
