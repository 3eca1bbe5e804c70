//! The live Windows registry backend: the Win32 registry API behind the
//! scanner's [`RegKey`], and `Realtime` change notifications.
//!
//! Keys are opened with the least access a scan needs (`KEY_QUERY_VALUE |
//! KEY_ENUMERATE_SUB_KEYS`) plus `KEY_WOW64_64KEY` or `KEY_WOW64_32KEY` for
//! `64BitView` TRUE / FALSE, on every open, as the API requires. A subkey
//! found by enumeration is opened only when the scanner reaches it, so a
//! recursive scan holds about one handle per level, not one per pending key.
//!
//! Enumeration by index races with writers: a value deleted before the
//! current index shifts the later ones down (one would be skipped), one added
//! shifts them up (one would be seen twice). So a key's values (and its
//! subkeys) are read, then its last-write time is compared with the one read
//! before: if the key changed meanwhile the enumeration is repeated, and
//! after [`ATTEMPTS`] unstable passes the union of all passes is used. A
//! value that was deleted mid-scan may thus be reported present once (and as
//! deleted by the next scan); a value that exists is never missed and never
//! looks deleted. `ERROR_MORE_DATA` grows the buffer and retries the same
//! index. A key that is access-denied, or a value that cannot be read, is a
//! warning naming the key, and the scanner keeps what the baseline holds
//! below that key (no DELETE for what could not be read); a key that
//! vanished mid-scan is simply gone (its values are reported deleted).
//!
//! Names are read as UTF-16 and shown as UTF-8, losslessly for valid UTF-16;
//! keys are reopened by their UTF-16 names, so even a key whose name has an
//! unpaired surrogate (shown as U+FFFD; only the native API writes those)
//! is read. Data is passed on as the raw bytes stored: REG_EXPAND_SZ
//! is not expanded, strings are not NUL-trimmed.
//!
//! Registry symbolic links (e.g. `HKLM\SYSTEM\CurrentControlSet`) are
//! followed, as `RegOpenKeyExW` does by default; the scanner's depth limit
//! bounds a link that points back to its own ancestor.

use crate::model::KeyStats;
use crate::path::pattern::Root;
use crate::source::{Children, RegKey, ValueFn};
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use windows_sys::Wdk::System::Registry::{KeyBasicInformation, NtQueryKey};
use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, ERROR_FILE_NOT_FOUND, ERROR_MORE_DATA, ERROR_NO_MORE_ITEMS,
    ERROR_PATH_NOT_FOUND, ERROR_SUCCESS, FILETIME, HANDLE, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::System::Registry::{
    RegCloseKey, RegEnumKeyExW, RegEnumValueW, RegNotifyChangeKeyValue, RegOpenKeyExW,
    RegQueryInfoKeyW, HKEY, HKEY_CLASSES_ROOT, HKEY_CURRENT_CONFIG, HKEY_CURRENT_USER,
    HKEY_LOCAL_MACHINE, HKEY_USERS, KEY_ENUMERATE_SUB_KEYS, KEY_NOTIFY, KEY_QUERY_VALUE,
    KEY_WOW64_32KEY, KEY_WOW64_64KEY, REG_NOTIFY_CHANGE_LAST_SET, REG_NOTIFY_CHANGE_NAME,
};
use windows_sys::Win32::System::Threading::{CreateEventW, SetEvent, WaitForMultipleObjects};

/// Enumeration passes of one key before the union of the passes is taken.
const ATTEMPTS: usize = 4;
/// Retries of one index after `ERROR_MORE_DATA` (each grows the buffers).
const GROW_RETRIES: usize = 8;
/// Value names are at most 16,383 characters; key names at most 255.
const MAX_NAME: usize = 16_384;
/// Data larger than this is skipped with a warning (the registry's own
/// practical limit is far below).
const MAX_DATA: usize = 1 << 30;
/// A bound on indexes per key: a writer adding entries forever cannot keep
/// an enumeration going forever.
const MAX_ENTRIES: u32 = 1 << 24;

/// The `samDesired` view bits of a scope.
pub(crate) fn view_bits(view64: bool) -> u32 {
    if view64 {
        KEY_WOW64_64KEY
    } else {
        KEY_WOW64_32KEY
    }
}

pub(crate) fn predefined(root: Root) -> HKEY {
    match root {
        Root::Hklm => HKEY_LOCAL_MACHINE,
        Root::Hkcu => HKEY_CURRENT_USER,
        Root::Hku => HKEY_USERS,
        Root::Hkcr => HKEY_CLASSES_ROOT,
        Root::Hkcc => HKEY_CURRENT_CONFIG,
    }
}

/// A Win32 error code as text, e.g. "access denied (error 5)".
fn describe(rc: u32) -> String {
    let what = match rc {
        ERROR_ACCESS_DENIED => "access denied",
        ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND => "not found",
        ERROR_MORE_DATA => "more data than the buffer holds",
        _ => return std::io::Error::from_raw_os_error(rc as i32).to_string(),
    };
    format!("{what} (error {rc})")
}

/// `s` as UTF-16 with a trailing NUL, as the W functions take it.
pub fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn with_nul(name: &[u16]) -> Vec<u16> {
    let mut v = Vec::with_capacity(name.len() + 1);
    v.extend_from_slice(name);
    v.push(0);
    v
}

fn filetime(ft: &FILETIME) -> u64 {
    (u64::from(ft.dwHighDateTime) << 32) | u64::from(ft.dwLowDateTime)
}

/// An open registry handle, closed on drop.
pub(crate) struct Handle(pub(crate) HKEY);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: self.0 was returned by a successful RegOpenKeyExW and is
        // closed exactly once, here.
        unsafe { RegCloseKey(self.0) };
    }
}

/// Opens `name` (UTF-16 with a trailing NUL) below `parent`.
pub(crate) fn open(parent: HKEY, name: &[u16], sam: u32) -> Result<Handle, u32> {
    debug_assert_eq!(name.last(), Some(&0));
    let mut h: HKEY = std::ptr::null_mut();
    // SAFETY: `name` is NUL-terminated and outlives the call; `h` is a valid
    // out pointer.
    let rc = unsafe { RegOpenKeyExW(parent, name.as_ptr(), 0, sam, &mut h) };
    if rc == ERROR_SUCCESS {
        Ok(Handle(h))
    } else {
        Err(rc)
    }
}

/// The key's counts, longest name and data lengths, and last-write time.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Info {
    subkeys: u32,
    max_subkey: u32,
    values: u32,
    max_value_name: u32,
    max_data: u32,
    last_write: u64,
}

fn query_info(h: HKEY) -> Result<Info, u32> {
    let mut i = Info::default();
    let mut ft = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    // SAFETY: every non-null pointer is a valid out pointer for the call;
    // the class, reserved and security descriptor outputs are not wanted.
    let rc = unsafe {
        RegQueryInfoKeyW(
            h,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null(),
            &mut i.subkeys,
            &mut i.max_subkey,
            std::ptr::null_mut(),
            &mut i.values,
            &mut i.max_value_name,
            &mut i.max_data,
            std::ptr::null_mut(),
            &mut ft,
        )
    };
    if rc != ERROR_SUCCESS {
        return Err(rc);
    }
    i.last_write = filetime(&ft);
    Ok(i)
}

/// The key's own name as stored (its last component) and last-write time,
/// through `NtQueryKey(KeyBasicInformation)`.
fn basic_info(h: HKEY) -> Option<(Vec<u16>, u64)> {
    // KEY_BASIC_INFORMATION: LastWriteTime (i64), TitleIndex (u32),
    // NameLength (u32, bytes), Name (UTF-16). u64 units keep it aligned.
    let mut buf = vec![0u64; (16 + 2 * 256) / 8 + 1];
    for _ in 0..3 {
        let bytes = (buf.len() * 8) as u32;
        let mut need = 0u32;
        // SAFETY: `buf` is writable for `bytes` bytes; `need` is a valid out
        // pointer; a registry HKEY is a kernel key handle NtQueryKey accepts.
        let st = unsafe {
            NtQueryKey(
                h as HANDLE,
                KeyBasicInformation,
                buf.as_mut_ptr().cast(),
                bytes,
                &mut need,
            )
        };
        if st >= 0 {
            let raw: &[u8] = {
                let len = buf.len() * 8;
                // SAFETY: reinterpreting initialised u64s as bytes; the
                // slice covers exactly the buffer.
                unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), len) }
            };
            let lw = u64::from_le_bytes(raw[0..8].try_into().ok()?);
            let n = u32::from_le_bytes(raw[12..16].try_into().ok()?) as usize;
            if 16 + n > raw.len() {
                return None;
            }
            let name: Vec<u16> = raw[16..16 + n]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            return Some((name, lw));
        }
        if need as usize <= bytes as usize {
            return None;
        }
        buf = vec![0u64; need as usize / 8 + 2];
    }
    None
}

/// One value read by enumeration.
struct Value {
    name: Vec<u16>,
    ty: u32,
    data: Vec<u8>,
}

/// Reads one pass of the values of `h`: the `info.values` indexes that
/// reading counted (no extra call to find the end). Entries that cannot be
/// read are warnings; the others still come. The flag is false when the
/// list ended early (the key changed meanwhile).
fn value_pass(h: HKEY, info: &Info, warn: &mut dyn FnMut(String)) -> (Vec<Value>, bool) {
    let mut out = Vec::with_capacity(info.values as usize);
    let mut name = vec![0u16; (info.max_value_name as usize + 1).clamp(64, MAX_NAME + 1)];
    let mut data = vec![0u8; (info.max_data as usize).clamp(64, 1 << 20)];
    let mut index = 0u32;
    while index < info.values.min(MAX_ENTRIES) {
        let mut tries = 0;
        loop {
            let mut name_len = name.len() as u32;
            let mut data_len = data.len() as u32;
            let mut ty = 0u32;
            // SAFETY: the buffers are writable for the lengths passed; the
            // out pointers are valid; lpReserved must be null.
            let rc = unsafe {
                RegEnumValueW(
                    h,
                    index,
                    name.as_mut_ptr(),
                    &mut name_len,
                    std::ptr::null(),
                    &mut ty,
                    data.as_mut_ptr(),
                    &mut data_len,
                )
            };
            match rc {
                ERROR_SUCCESS => {
                    let n = (name_len as usize).min(name.len());
                    let d = (data_len as usize).min(data.len());
                    out.push(Value {
                        name: name[..n].to_vec(),
                        ty,
                        data: data[..d].to_vec(),
                    });
                    break;
                }
                ERROR_NO_MORE_ITEMS => return (out, false),
                ERROR_MORE_DATA if tries < GROW_RETRIES => {
                    tries += 1;
                    // Data too small: data_len is the size needed. Otherwise
                    // the name was too long for its buffer.
                    if data_len as usize > data.len() {
                        if data_len as usize > MAX_DATA {
                            warn(format!(
                                "value #{index}: {data_len} bytes of data, over the {MAX_DATA}-byte limit; skipped"
                            ));
                            break;
                        }
                        data.resize(data_len as usize, 0);
                    } else if name.len() <= MAX_NAME {
                        name.resize(MAX_NAME + 1, 0);
                    } else {
                        let grown = (data.len() * 2).min(MAX_DATA);
                        data.resize(grown, 0);
                    }
                }
                _ => {
                    warn(format!("value #{index}: {}; skipped", describe(rc)));
                    break;
                }
            }
        }
        index += 1;
    }
    (out, true)
}

/// One subkey read by enumeration: its UTF-16 name and last-write time.
pub(crate) struct Sub {
    pub(crate) name: Vec<u16>,
    last_write: u64,
}

/// Reads one pass of the subkeys of `h`: the `limit` indexes a reading
/// counted, or (None) up to the end. As [`value_pass`].
fn subkey_pass(
    h: HKEY,
    info: &Info,
    limit: Option<u32>,
    warn: &mut dyn FnMut(String),
) -> (Vec<Sub>, bool) {
    let mut out = Vec::with_capacity(info.subkeys as usize);
    let mut name = vec![0u16; (info.max_subkey as usize + 1).clamp(256, MAX_NAME + 1)];
    let mut index = 0u32;
    let end = limit.unwrap_or(MAX_ENTRIES).min(MAX_ENTRIES);
    while index < end {
        let mut tries = 0;
        loop {
            let mut name_len = name.len() as u32;
            let mut ft = FILETIME {
                dwLowDateTime: 0,
                dwHighDateTime: 0,
            };
            // SAFETY: `name` is writable for name_len characters; the class
            // outputs are null (not wanted), lpReserved is null; `ft` is a
            // valid out pointer.
            let rc = unsafe {
                RegEnumKeyExW(
                    h,
                    index,
                    name.as_mut_ptr(),
                    &mut name_len,
                    std::ptr::null(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    &mut ft,
                )
            };
            match rc {
                ERROR_SUCCESS => {
                    let n = (name_len as usize).min(name.len());
                    out.push(Sub {
                        name: name[..n].to_vec(),
                        last_write: filetime(&ft),
                    });
                    break;
                }
                ERROR_NO_MORE_ITEMS => return (out, limit.is_none()),
                ERROR_MORE_DATA if tries < GROW_RETRIES && name.len() <= MAX_NAME => {
                    tries += 1;
                    name.resize(MAX_NAME + 1, 0);
                }
                _ => {
                    warn(format!("subkey #{index}: {}; skipped", describe(rc)));
                    break;
                }
            }
        }
        index += 1;
    }
    (out, true)
}

/// Whether a stored UTF-16 name is `name`, case-insensitively (Windows'
/// rule, see `crate::path::pattern::same_name`).
fn same_name(stored: &[u16], name: &str) -> bool {
    hive::same_name_units(stored.iter().copied(), name.encode_utf16())
}

/// Case-insensitive identity of a registry name, for merging passes.
fn fold(name: &[u16]) -> Vec<u16> {
    name.iter().copied().map(hive::upcase_unit).collect()
}

/// What one consistent reading of a key holds.
#[derive(Default)]
pub(crate) struct Contents {
    pub(crate) subs: Option<Vec<Sub>>,
    values: Option<Vec<Value>>,
}

/// Reads the subkeys and/or values of `h` between two `RegQueryInfoKeyW`
/// readings: when both give the same last-write time, nothing changed
/// during the enumeration and it is a consistent view. (The first reading
/// also gives the counts, so each list costs one call per entry and none to
/// find its end; a key with nothing to list costs one reading.) Otherwise
/// it reads again; after [`ATTEMPTS`] unstable passes it takes the union of
/// all passes (later passes win), so nothing that exists is ever missed.
/// Returns the contents and the last reading.
pub(crate) fn read_key(
    h: HKEY,
    before: Option<Info>,
    want_subs: bool,
    want_values: bool,
    warn: &mut dyn FnMut(String),
) -> Result<(Contents, Info), String> {
    let mut subs_union: BTreeMap<Vec<u16>, Sub> = BTreeMap::new();
    let mut values_union: BTreeMap<Vec<u16>, Value> = BTreeMap::new();
    let mut before = match before {
        Some(i) => i,
        None => query_info(h).map_err(|rc| format!("cannot read the key: {}", describe(rc)))?,
    };
    for _ in 0..ATTEMPTS {
        // Warnings of a pass are kept only if it is the one used.
        let mut notes = Vec::new();
        let mut complete = true;
        let mut enumerated = false;
        let mut out = Contents::default();
        if want_subs {
            out.subs = Some(if before.subkeys == 0 {
                Vec::new()
            } else {
                enumerated = true;
                let (l, c) = subkey_pass(h, &before, Some(before.subkeys), &mut |w| notes.push(w));
                complete &= c;
                l
            });
        }
        if want_values {
            out.values = Some(if before.values == 0 {
                Vec::new()
            } else {
                enumerated = true;
                let (l, c) = value_pass(h, &before, &mut |w| notes.push(w));
                complete &= c;
                l
            });
        }
        if !enumerated {
            // Nothing to list as of that reading: a consistent view.
            return Ok((out, before));
        }
        let after = query_info(h).map_err(|rc| format!("cannot read the key: {}", describe(rc)))?;
        if complete && after.last_write == before.last_write {
            for n in notes {
                warn(n);
            }
            return Ok((out, after));
        }
        tracing::debug!("a key changed while it was listed; listing it again");
        for s in out.subs.into_iter().flatten() {
            subs_union.insert(fold(&s.name), s);
        }
        for v in out.values.into_iter().flatten() {
            values_union.insert(fold(&v.name), v);
        }
        before = after;
    }
    warn(format!(
        "changed during each of {ATTEMPTS} enumerations; using the union of them"
    ));
    Ok((
        Contents {
            subs: want_subs.then(|| subs_union.into_values().collect()),
            values: want_values.then(|| values_union.into_values().collect()),
        },
        before,
    ))
}

/// How a lazily opened key turned out.
enum State {
    Open(Rc<Handle>),
    /// Deleted before we got to it: no values, no subkeys.
    Gone,
    /// Could not be opened (access denied, ...): reported once.
    Failed(String),
}

struct Inner {
    /// The parent's handle (None for a predefined root).
    parent: Option<Rc<Handle>>,
    /// The name below the parent, UTF-16 with a trailing NUL (or the
    /// predefined root handle when `parent` is None).
    name: Vec<u16>,
    root: HKEY,
    sam: u32,
    state: OnceCell<State>,
    last_write: Cell<Option<u64>>,
    /// The last `RegQueryInfoKeyW` reading of the key.
    info: Cell<Option<Info>>,
    /// Read both lists in one go when either is asked for (a recursive
    /// scan needs both of every key it visits).
    both: bool,
    /// The scanner asked for the key's stats (`Incremental`): it asks for
    /// the values next if it wants them, so a listing of the subkeys alone
    /// does not read them too (they belong to a carried key).
    stats_taken: Cell<bool>,
    /// What a reading got and no one took yet.
    pending: RefCell<Contents>,
    /// Whether a failure to open or read the key was already reported.
    reported: Cell<bool>,
    /// `ExcludeClasses TRUE` on the `HKU` root: its `*_Classes` hives are
    /// neither listed nor looked up.
    skip_classes: bool,
}

/// A key of the live registry, opened when first used.
#[derive(Clone)]
pub struct LiveKey(Rc<Inner>);

impl LiveKey {
    /// A predefined root key in the given view.
    pub(crate) fn root(root: Root, view64: bool, both: bool) -> LiveKey {
        LiveKey(Rc::new(Inner {
            parent: None,
            name: vec![0],
            root: predefined(root),
            sam: KEY_QUERY_VALUE | KEY_ENUMERATE_SUB_KEYS | view_bits(view64),
            state: OnceCell::new(),
            last_write: Cell::new(None),
            info: Cell::new(None),
            both,
            stats_taken: Cell::new(false),
            pending: RefCell::new(Contents::default()),
            reported: Cell::new(false),
            skip_classes: false,
        }))
    }

    /// `ExcludeClasses TRUE`: when this is the `HKU` root, its
    /// `HKU\*_Classes` hives (the users' classes) are left out of the scan.
    pub(crate) fn skipping_classes(mut self, skip: bool) -> LiveKey {
        if let Some(i) = Rc::get_mut(&mut self.0) {
            i.skip_classes = skip && i.parent.is_none() && i.root == HKEY_USERS;
        }
        self
    }

    fn child(&self, parent: Rc<Handle>, name: &[u16], last_write: Option<u64>) -> LiveKey {
        LiveKey(Rc::new(Inner {
            parent: Some(parent),
            name: with_nul(name),
            root: self.0.root,
            sam: self.0.sam,
            state: OnceCell::new(),
            last_write: Cell::new(last_write),
            info: Cell::new(None),
            both: self.0.both,
            stats_taken: Cell::new(false),
            pending: RefCell::new(Contents::default()),
            reported: Cell::new(false),
            skip_classes: false,
        }))
    }

    fn state(&self) -> &State {
        self.0.state.get_or_init(|| {
            let parent = match &self.0.parent {
                Some(p) => p.0,
                None => self.0.root,
            };
            match open(parent, &self.0.name, self.0.sam) {
                Ok(h) => State::Open(Rc::new(h)),
                Err(ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND) => State::Gone,
                Err(rc) => State::Failed(describe(rc)),
            }
        })
    }

    /// The subkeys (`subs`) or the values of the key, read now (with the
    /// other list too when `both`) or taken from an earlier reading.
    fn take(&self, h: HKEY, subs: bool, warn: &mut dyn FnMut(String)) -> Result<Contents, String> {
        {
            let mut p = self.0.pending.borrow_mut();
            let ready = if subs {
                p.subs.take().map(|l| Contents {
                    subs: Some(l),
                    values: None,
                })
            } else {
                p.values.take().map(|l| Contents {
                    subs: None,
                    values: Some(l),
                })
            };
            if let Some(c) = ready {
                return Ok(c);
            }
        }
        let both = self.0.both && !self.0.stats_taken.get();
        let read = read_key(h, self.0.info.take(), subs || both, !subs || both, warn);
        let (mut c, info) = match read {
            Ok(r) => r,
            // Reported once; the scanner keeps the key's baseline.
            Err(_) if self.0.reported.replace(true) => return Ok(Contents::default()),
            Err(e) => return Err(format!("{e}; skipped")),
        };
        self.0.info.set(Some(info));
        if self.0.last_write.get().is_none() {
            self.0.last_write.set(Some(info.last_write));
        }
        let mut p = self.0.pending.borrow_mut();
        if subs {
            p.values = c.values.take();
        } else {
            p.subs = c.subs.take();
        }
        Ok(c)
    }

    /// The open handle; `Ok(None)` for a key that is gone; an error when it
    /// cannot be opened, once: the scanner then marks the key unreadable
    /// (its baseline is kept), so later calls see an empty key without
    /// repeating the warning.
    fn handle(&self) -> Result<Option<Rc<Handle>>, String> {
        match self.state() {
            State::Open(h) => Ok(Some(h.clone())),
            State::Gone => Ok(None),
            State::Failed(e) => {
                if self.0.reported.replace(true) {
                    Ok(None)
                } else {
                    Err(format!("{e}; skipped"))
                }
            }
        }
    }
}

impl RegKey for LiveKey {
    fn subkeys(&self, _path: &[String]) -> Result<Children<Self>, String> {
        let Some(h) = self.handle()? else {
            return Ok(Vec::new());
        };
        let mut warnings = Vec::new();
        let subs = self
            .take(h.0, true, &mut |w| warnings.push(w))?
            .subs
            .unwrap_or_default();
        let mut out: Children<Self> = warnings.into_iter().map(Err).collect();
        let skip = self.0.skip_classes;
        out.extend(
            subs.into_iter()
                .filter(|s| !(skip && hives::is_classes_units(&s.name)))
                .map(|s| {
                    Ok((
                        String::from_utf16_lossy(&s.name),
                        self.child(h.clone(), &s.name, Some(s.last_write)),
                    ))
                }),
        );
        Ok(out)
    }

    fn subkey(&self, name: &str, _path: &[String]) -> Result<Option<(String, Self)>, String> {
        if self.0.skip_classes && hives::is_classes(name) {
            return Ok(None);
        }
        let Some(h) = self.handle()? else {
            return Ok(None);
        };
        let w = wide(name);
        let key = self.child(h.clone(), &w[..w.len() - 1], None);
        let shown = match key.state() {
            State::Gone => return Ok(None),
            // Reported with the key's own path when the scanner reads it.
            State::Failed(_) => name.to_string(),
            State::Open(k) => {
                let basic = basic_info(k.0);
                if let Some((_, lw)) = &basic {
                    key.0.last_write.set(Some(*lw));
                }
                match basic {
                    Some((stored, _)) if same_name(&stored, name) => {
                        String::from_utf16_lossy(&stored)
                    }
                    // Under KEY_WOW64_32KEY the handle may be the redirected
                    // key (Wow6432Node): find the stored case among the
                    // parent's subkeys, or show the name asked for.
                    _ => subkey_pass(h.0, &Info::default(), None, &mut |_| {})
                        .0
                        .into_iter()
                        .find(|s| same_name(&s.name, name))
                        .map(|s| String::from_utf16_lossy(&s.name))
                        .unwrap_or_else(|| name.to_string()),
                }
            }
        };
        Ok(Some((shown, key)))
    }

    fn for_each_value(
        &self,
        f: &mut ValueFn<'_>,
        warn: &mut dyn FnMut(String),
    ) -> Result<(), String> {
        let Some(h) = self.handle()? else {
            return Ok(());
        };
        let values = self.take(h.0, false, warn)?.values.unwrap_or_default();
        let mut exact = Vec::new();
        for v in values {
            // Lossless for valid UTF-16; an unpaired surrogate (which only
            // the native API can write) shows as U+FFFD, and its exact name
            // goes along for the value's identity.
            match String::from_utf16(&v.name) {
                Ok(name) => f(&name, None, v.ty, &v.data),
                Err(_) => {
                    exact.clear();
                    crate::path::ident::wtf8_from_utf16(v.name.iter().copied(), &mut exact);
                    f(
                        &String::from_utf16_lossy(&v.name),
                        Some(&exact),
                        v.ty,
                        &v.data,
                    );
                }
            }
        }
        Ok(())
    }

    fn exact_name(&self) -> Option<Vec<u8>> {
        let name = self.0.name.strip_suffix(&[0]).unwrap_or(&self.0.name);
        if String::from_utf16(name).is_ok() {
            return None;
        }
        let mut out = Vec::new();
        crate::path::ident::wtf8_from_utf16(name.iter().copied(), &mut out);
        Some(out)
    }

    fn identity(&self) -> Option<(usize, u64)> {
        None
    }

    fn stats(&self) -> Option<KeyStats> {
        // HKCR merges two keys (the machine's and the user's classes): its
        // time and counts need not move when one of them changes.
        if self.0.root == HKEY_CLASSES_ROOT {
            return None;
        }
        let State::Open(h) = self.state() else {
            return None;
        };
        // One RegQueryInfoKeyW: kept as the first reading of the listing
        // that may follow (see `read_key`), so reading the values of a key
        // that is not carried costs no extra call.
        let info = match self.0.info.get() {
            Some(i) => i,
            None => {
                let i = query_info(h.0).ok()?;
                self.0.info.set(Some(i));
                i
            }
        };
        if self.0.last_write.get().is_none() {
            self.0.last_write.set(Some(info.last_write));
        }
        self.0.stats_taken.set(true);
        Some(KeyStats {
            last_written: info.last_write,
            values: info.values,
            subkeys: info.subkeys,
        })
    }

    fn last_written(&self) -> Option<u64> {
        if let Some(t) = self.0.last_write.get() {
            return Some(t);
        }
        let t = match self.state() {
            State::Open(h) => query_info(h.0).ok().map(|i| i.last_write),
            _ => None,
        };
        self.0.last_write.set(t);
        t
    }
}

pub mod hives;
pub mod watch;
