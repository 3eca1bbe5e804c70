//! Builds a hive file from an in-memory tree. The tests, the README's sample
//! hive and `regmon hive edit` use it; hivex and libregf read what it writes
//! (checked by the conformance tests).
//!
//! The output follows what Windows itself writes for format 1.5: `lh` subkey
//! lists sorted by upper-cased name (split under an `ri` root past
//! [`WriteOptions::max_leaf`] entries), Latin-1 names stored compressed, data
//! of 4 bytes or fewer inline, data over 16344 bytes as big data (`db`), one
//! shared security cell.

use crate::base::{compute_checksum, BASE_BLOCK_SIZE};
use crate::bytes::i32_at;
use crate::error::Result;
use crate::key::Key;
use crate::name::{lh_hash_units, same_name_units, upcase_unit, Name};
use crate::value::{ValueType, BIG_DATA_SEGMENT};

/// A key to write.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct KeyNode {
    /// UTF-16 code units (unpaired surrogates allowed).
    pub name: Vec<u16>,
    /// FILETIME.
    pub last_written: u64,
    pub class: Option<Vec<u16>>,
    pub values: Vec<ValueNode>,
    pub subkeys: Vec<KeyNode>,
    /// A symbolic link key (`KEY_SYM_LINK`; its target is the REG_LINK value
    /// `SymbolicLinkValue`).
    pub symlink: bool,
}

/// A value to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueNode {
    pub name: Vec<u16>,
    pub value_type: ValueType,
    pub data: Vec<u8>,
}

impl KeyNode {
    pub fn new(name: &str) -> KeyNode {
        KeyNode {
            name: name.encode_utf16().collect(),
            ..Default::default()
        }
    }

    pub fn name_lossy(&self) -> String {
        String::from_utf16_lossy(&self.name)
    }

    /// Adds a value (builder style).
    pub fn with_value(mut self, name: &str, ty: ValueType, data: impl Into<Vec<u8>>) -> Self {
        self.set_value(name, ty, data.into());
        self
    }

    /// Adds a subkey (builder style).
    pub fn with_subkey(mut self, key: KeyNode) -> Self {
        self.subkeys.push(key);
        self
    }

    /// Sets a value, replacing one of the same name (case-insensitive).
    pub fn set_value(&mut self, name: &str, ty: ValueType, data: Vec<u8>) {
        let units: Vec<u16> = name.encode_utf16().collect();
        match self
            .values
            .iter_mut()
            .find(|v| eq_ignore_case(&v.name, &units))
        {
            Some(v) => {
                v.value_type = ty;
                v.data = data;
            }
            None => self.values.push(ValueNode {
                name: units,
                value_type: ty,
                data,
            }),
        }
    }

    /// Removes a value by name; true if it was there.
    pub fn remove_value(&mut self, name: &str) -> bool {
        let units: Vec<u16> = name.encode_utf16().collect();
        let before = self.values.len();
        self.values.retain(|v| !eq_ignore_case(&v.name, &units));
        before != self.values.len()
    }

    /// The subkey at a backslash-separated path below this key, created if missing.
    pub fn key_mut(&mut self, path: &str) -> &mut KeyNode {
        let mut k = self;
        for part in path.split('\\').filter(|p| !p.is_empty()) {
            let units: Vec<u16> = part.encode_utf16().collect();
            let i = match k
                .subkeys
                .iter()
                .position(|s| eq_ignore_case(&s.name, &units))
            {
                Some(i) => i,
                None => {
                    k.subkeys.push(KeyNode::new(part));
                    k.subkeys.len() - 1
                }
            };
            k = &mut k.subkeys[i];
        }
        k
    }

    /// Removes the subkey at a path (and its subtree); true if it was there.
    pub fn remove_key(&mut self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('\\').filter(|p| !p.is_empty()).collect();
        let Some((last, parents)) = parts.split_last() else {
            return false;
        };
        let mut k = self;
        for p in parents {
            let units: Vec<u16> = p.encode_utf16().collect();
            match k
                .subkeys
                .iter_mut()
                .find(|s| eq_ignore_case(&s.name, &units))
            {
                Some(s) => k = s,
                None => return false,
            }
        }
        let units: Vec<u16> = last.encode_utf16().collect();
        let before = k.subkeys.len();
        k.subkeys.retain(|s| !eq_ignore_case(&s.name, &units));
        before != k.subkeys.len()
    }

    /// Copies a key and its whole subtree out of a hive. Entries that cannot
    /// be read are left out; the first such error is returned alongside.
    pub fn from_key(key: &Key<'_>) -> Result<KeyNode> {
        let mut seen = std::collections::HashSet::new();
        Self::copy(key, &mut seen, 0)
    }

    fn copy(
        key: &Key<'_>,
        seen: &mut std::collections::HashSet<u32>,
        depth: usize,
    ) -> Result<KeyNode> {
        if depth > 512 || !seen.insert(key.offset()) {
            return Err(crate::error::Error::at(
                crate::error::ErrorKind::Cycle,
                key.file_offset(),
            ));
        }
        let mut node = KeyNode {
            name: key.name().units().collect(),
            last_written: key.last_written(),
            class: key.class_name()?.map(|n: Name| n.units().collect()),
            values: Vec::new(),
            subkeys: Vec::new(),
            symlink: key.is_symlink(),
        };
        for v in key.values()? {
            let v = v?;
            node.values.push(ValueNode {
                name: v.name().units().collect(),
                value_type: v.value_type(),
                data: v.data()?.into_owned(),
            });
        }
        for k in key.subkeys()? {
            node.subkeys.push(Self::copy(&k?, seen, depth + 1)?);
        }
        Ok(node)
    }
}

fn eq_ignore_case(a: &[u16], b: &[u16]) -> bool {
    same_name_units(a.iter().copied(), b.iter().copied())
}

/// Which leaf list format to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    Li,
    Lf,
    Lh,
}

#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Format minor version (3, 4, 5 or 6). Big data needs 4 or more.
    pub minor: u32,
    pub list_format: ListFormat,
    /// Leaf lists longer than this are split under an `ri` index root.
    pub max_leaf: usize,
    /// The base block's last-written time (FILETIME).
    pub timestamp: u64,
    /// The base block's embedded file name.
    pub file_name: String,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            minor: 5,
            list_format: ListFormat::Lh,
            max_leaf: 1012,
            timestamp: 0,
            file_name: String::new(),
        }
    }
}

/// Writes `root` (the root key, its name included) as a hive file.
pub fn to_bytes(root: &KeyNode, opts: &WriteOptions) -> Vec<u8> {
    let mut w = Writer {
        bins: Vec::new(),
        cursor: 0,
        opts,
        sk: 0,
        sk_refs: 0,
    };
    w.new_bin(0);
    let root_off = w.write_key(root, u32::MAX, true);
    // The shared security cell: a list of one, referenced by every key.
    let sk = w.sk as usize;
    let c = &mut w.bins[sk + 4..];
    c[0..2].copy_from_slice(b"sk");
    put32(c, 4, w.sk);
    put32(c, 8, w.sk);
    put32(c, 12, w.sk_refs);
    put32(c, 16, SECURITY_DESCRIPTOR.len() as u32);
    c[20..20 + SECURITY_DESCRIPTOR.len()].copy_from_slice(SECURITY_DESCRIPTOR);
    w.close_bin();

    let mut out = vec![0u8; BASE_BLOCK_SIZE];
    out[0..4].copy_from_slice(b"regf");
    put32(&mut out, 4, 1);
    put32(&mut out, 8, 1);
    put64(&mut out, 12, opts.timestamp);
    put32(&mut out, 20, 1);
    put32(&mut out, 24, opts.minor);
    put32(&mut out, 28, 0);
    put32(&mut out, 32, 1);
    put32(&mut out, 36, root_off);
    put32(&mut out, 40, w.bins.len() as u32);
    put32(&mut out, 44, 1);
    for (i, u) in opts.file_name.encode_utf16().take(31).enumerate() {
        out[48 + 2 * i..50 + 2 * i].copy_from_slice(&u.to_le_bytes());
    }
    let sum = compute_checksum(&out);
    put32(&mut out, 508, sum);
    out.extend_from_slice(&w.bins);
    out
}

/// Owner BA, group SY, a DACL granting Everyone full control, inherited by subkeys.
const SECURITY_DESCRIPTOR: &[u8] = &[
    1, 0, 0x04, 0x80, 48, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, // header
    2, 0, 28, 0, 1, 0, 0, 0, // ACL
    0, 0x02, 20, 0, 0x3f, 0, 0x0f, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, // ACE
    1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 32, 2, 0, 0, // S-1-5-32-544
    1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0, // S-1-5-18
];

const HBIN_HEADER: usize = 32;
const HBIN_SIZE: usize = 4096;

struct Writer<'o> {
    bins: Vec<u8>,
    /// First free byte of the current bin.
    cursor: usize,
    opts: &'o WriteOptions,
    sk: u32,
    sk_refs: u32,
}

fn put16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], o: usize, v: u64) {
    b[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

/// Name bytes as stored and whether they are compressed (Latin-1).
fn stored_name(units: &[u16]) -> (Vec<u8>, bool) {
    if units.iter().all(|&u| u <= 0xFF) {
        (units.iter().map(|&u| u as u8).collect(), true)
    } else {
        (units.iter().flat_map(|u| u.to_le_bytes()).collect(), false)
    }
}

impl Writer<'_> {
    /// The free space left in the current bin.
    fn room(&self) -> usize {
        self.bins.len() - self.cursor
    }

    fn new_bin(&mut self, need: usize) {
        let size = (need + HBIN_HEADER).div_ceil(HBIN_SIZE).max(1) * HBIN_SIZE;
        let start = self.bins.len();
        self.bins.resize(start + size, 0);
        self.bins[start..start + 4].copy_from_slice(b"hbin");
        put32(&mut self.bins, start + 4, start as u32);
        put32(&mut self.bins, start + 8, size as u32);
        if start == 0 {
            put64(&mut self.bins, start + 20, self.opts.timestamp);
        }
        self.cursor = start + HBIN_HEADER;
    }

    /// Marks the rest of the current bin as one free cell.
    fn close_bin(&mut self) {
        let rest = self.bins.len() - self.cursor;
        if rest > 0 {
            put32(&mut self.bins, self.cursor, rest as u32);
        }
    }

    /// Allocates a cell with `payload` bytes; returns its cell offset.
    fn alloc(&mut self, payload: usize) -> u32 {
        let size = (payload + 4).div_ceil(8) * 8;
        if size > self.room() {
            self.close_bin();
            self.new_bin(size);
        }
        let at = self.cursor;
        put32(&mut self.bins, at, (size as i32).wrapping_neg() as u32);
        self.cursor = at + size;
        at as u32
    }

    fn cell_mut(&mut self, off: u32) -> &mut [u8] {
        // `off` came from `alloc`, so the size is there.
        let size = i32_at(&self.bins, off as usize).unwrap_or(0).unsigned_abs() as usize;
        &mut self.bins[off as usize + 4..off as usize + size]
    }

    fn write_data(&mut self, data: &[u8]) -> u32 {
        if data.len() > BIG_DATA_SEGMENT && self.opts.minor >= 4 {
            let segs: Vec<u32> = data
                .chunks(BIG_DATA_SEGMENT)
                .map(|chunk| {
                    // Full-size cells even for the last segment, as Windows writes
                    // them: hivex and libregf read a fixed share of every segment cell.
                    let off = self.alloc(BIG_DATA_SEGMENT);
                    self.cell_mut(off)[..chunk.len()].copy_from_slice(chunk);
                    off
                })
                .collect();
            let list = self.alloc(segs.len() * 4);
            for (i, s) in segs.iter().enumerate() {
                put32(self.cell_mut(list), i * 4, *s);
            }
            let db = self.alloc(12);
            let c = self.cell_mut(db);
            c[0..2].copy_from_slice(b"db");
            put16(c, 2, segs.len() as u16);
            put32(c, 4, list);
            db
        } else {
            let off = self.alloc(data.len());
            self.cell_mut(off)[..data.len()].copy_from_slice(data);
            off
        }
    }

    fn write_value(&mut self, v: &ValueNode) -> u32 {
        let (name, comp) = stored_name(&v.name);
        let inline = v.data.len() <= 4;
        let data_off = if inline || v.data.is_empty() {
            0
        } else {
            self.write_data(&v.data)
        };
        let off = self.alloc(20 + name.len());
        let c = self.cell_mut(off);
        c[0..2].copy_from_slice(b"vk");
        put16(c, 2, name.len() as u16);
        let size = v.data.len() as u32 | if inline { 0x8000_0000 } else { 0 };
        put32(c, 4, size);
        if inline {
            c[8..8 + v.data.len()].copy_from_slice(&v.data);
        } else {
            put32(c, 8, data_off);
        }
        put32(c, 12, v.value_type.0);
        put16(c, 16, u16::from(comp));
        c[20..20 + name.len()].copy_from_slice(&name);
        off
    }

    fn write_key(&mut self, k: &KeyNode, parent: u32, is_root: bool) -> u32 {
        let (name, comp) = stored_name(&k.name);
        let off = self.alloc(76 + name.len());
        if is_root {
            // The root key is the first cell, as Windows writes it (some
            // readers, notatin among them, expect it there); the shared
            // security cell comes right after it.
            self.sk = self.alloc(20 + SECURITY_DESCRIPTOR.len());
        }
        self.sk_refs += 1;

        let value_offs: Vec<u32> = k.values.iter().map(|v| self.write_value(v)).collect();
        let value_list = if value_offs.is_empty() {
            u32::MAX
        } else {
            let l = self.alloc(value_offs.len() * 4);
            for (i, v) in value_offs.iter().enumerate() {
                put32(self.cell_mut(l), i * 4, *v);
            }
            l
        };
        let class_off = match &k.class {
            Some(c) if !c.is_empty() => {
                let bytes: Vec<u8> = c.iter().flat_map(|u| u.to_le_bytes()).collect();
                let o = self.alloc(bytes.len());
                self.cell_mut(o)[..bytes.len()].copy_from_slice(&bytes);
                o
            }
            _ => u32::MAX,
        };

        let mut children: Vec<&KeyNode> = k.subkeys.iter().collect();
        children.sort_by(|a, b| {
            a.name
                .iter()
                .map(|&u| upcase_unit(u))
                .cmp(b.name.iter().map(|&u| upcase_unit(u)))
        });
        let child_offs: Vec<(u32, &KeyNode)> = children
            .iter()
            .map(|c| (self.write_key(c, off, false), *c))
            .collect();
        let subkey_list = self.write_subkey_list(&child_offs);

        let max = |it: &mut dyn Iterator<Item = usize>| it.max().unwrap_or(0) as u32;
        let max_sub = max(&mut k.subkeys.iter().map(|s| s.name.len() * 2));
        let max_class = max(&mut k
            .subkeys
            .iter()
            .map(|s| s.class.as_ref().map_or(0, |c| c.len() * 2)));
        let max_vname = max(&mut k.values.iter().map(|v| v.name.len() * 2));
        let max_vdata = max(&mut k.values.iter().map(|v| v.data.len()));
        let sk = self.sk;
        let c = self.cell_mut(off);
        c[0..2].copy_from_slice(b"nk");
        let mut flags = if comp { 0x20 } else { 0 };
        if is_root {
            flags |= 0x04 | 0x08; // hive entry, no delete
        }
        if k.symlink {
            flags |= crate::key::KEY_SYM_LINK;
        }
        put16(c, 2, flags);
        put64(c, 4, k.last_written);
        put32(c, 16, parent);
        put32(c, 20, k.subkeys.len() as u32);
        put32(c, 28, subkey_list);
        put32(c, 32, u32::MAX);
        put32(c, 36, k.values.len() as u32);
        put32(c, 40, value_list);
        put32(c, 44, sk);
        put32(c, 48, class_off);
        put32(c, 52, max_sub);
        put32(c, 56, max_class);
        put32(c, 60, max_vname);
        put32(c, 64, max_vdata);
        put16(c, 72, name.len() as u16);
        put16(c, 74, k.class.as_ref().map_or(0, |c| c.len() * 2) as u16);
        c[76..76 + name.len()].copy_from_slice(&name);
        off
    }

    fn write_leaf(&mut self, entries: &[(u32, &KeyNode)]) -> u32 {
        let fmt = self.opts.list_format;
        let stride = if fmt == ListFormat::Li { 4 } else { 8 };
        let off = self.alloc(4 + entries.len() * stride);
        let c = self.cell_mut(off);
        c[0..2].copy_from_slice(match fmt {
            ListFormat::Li => b"li",
            ListFormat::Lf => b"lf",
            ListFormat::Lh => b"lh",
        });
        put16(c, 2, entries.len() as u16);
        for (i, (o, k)) in entries.iter().enumerate() {
            put32(c, 4 + i * stride, *o);
            match fmt {
                ListFormat::Li => {}
                ListFormat::Lh => put32(c, 8 + i * stride, lh_hash_units(k.name.iter().copied())),
                ListFormat::Lf => {
                    let mut hint = [0u8; 4];
                    for (h, &u) in hint.iter_mut().zip(&k.name) {
                        *h = u as u8;
                    }
                    c[8 + i * stride..12 + i * stride].copy_from_slice(&hint);
                }
            }
        }
        off
    }

    fn write_subkey_list(&mut self, entries: &[(u32, &KeyNode)]) -> u32 {
        if entries.is_empty() {
            return u32::MAX;
        }
        let max_leaf = self.opts.max_leaf.clamp(1, 0xFFFF);
        if entries.len() <= max_leaf {
            return self.write_leaf(entries);
        }
        let leaves: Vec<u32> = entries
            .chunks(max_leaf)
            .map(|chunk| self.write_leaf(chunk))
            .collect();
        let off = self.alloc(4 + leaves.len() * 4);
        let c = self.cell_mut(off);
        c[0..2].copy_from_slice(b"ri");
        put16(c, 2, leaves.len() as u16);
        for (i, l) in leaves.iter().enumerate() {
            put32(c, 4 + i * 4, *l);
        }
        off
    }
}
