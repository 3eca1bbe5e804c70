//! Where registry keys come from: the [`RegKey`] trait every backend
//! implements, the [`Source`] of an input (hive files, or the live registry
//! on Windows), and the virtual tree of roots and mount points above the
//! backends' keys.
//!
//! A new backend is one file here implementing [`RegKey`], one variant of
//! [`Source`], and the line in the runtime that scans it.

pub mod classes;
pub mod hive;
pub mod hivefile;
pub mod image;
pub mod links;
#[cfg(windows)]
pub mod live;
pub mod mount;
pub mod wow64;

pub use mount::Mount;

use crate::model::Snapshot;
use std::borrow::Cow;

/// Where an input's registry comes from: named once, from the
/// configuration (an input with `HiveFile` lines reads those files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Hive files mounted at registry paths (`HiveFile`), on any OS.
    Hives(Vec<Mount>),
    /// `WindowsImage`: the hives of a Windows volume, found again at each
    /// scan, beside any `HiveFile` lines.
    Image(Box<image::ImageSource>),
    /// The live registry through the Win32 API (Windows only).
    Live,
}

impl Source {
    /// The hive mounts (none for the live registry).
    pub fn mounts(&self) -> &[Mount] {
        match self {
            Source::Hives(m) => m,
            Source::Image(i) => &i.at_load,
            Source::Live => &[],
        }
    }

    /// The mounts a scan opens now: an image's hives are found again (its
    /// notes and warnings, and the mount points of hives gone missing, go
    /// to `snap`); other sources' mounts are fixed.
    pub fn mounts_now(&self, snap: &mut Snapshot) -> Cow<'_, [Mount]> {
        match self {
            Source::Image(i) => Cow::Owned(i.mounts_now(snap)),
            _ => Cow::Borrowed(self.mounts()),
        }
    }
}

/// The suffix of a user's classes hive under `HKU` (`<SID>_Classes`).
pub const CLASSES_SUFFIX: &str = "_Classes";

/// The SID of a user's classes hive from its name (`<SID>_Classes`, the
/// suffix in any case); none for another name.
pub fn classes_sid(name: &str) -> Option<&str> {
    let cut = name
        .len()
        .checked_sub(CLASSES_SUFFIX.len())
        .filter(|&c| c > 0)?;
    let (sid, suffix) = (name.get(..cut)?, name.get(cut..)?);
    suffix.eq_ignore_ascii_case(CLASSES_SUFFIX).then_some(sid)
}

/// Subkeys with their names (as text), or the error for one entry.
pub type Children<K> = Vec<Result<(String, K), String>>;

/// What [`RegKey::for_each_value`] hands over per value: the name as text
/// ("" = the default value), the exact name (WTF-8) when the text is not
/// exactly it (an unpaired surrogate), the type and the data.
pub type ValueFn<'f> = dyn FnMut(&str, Option<&[u8]>, u32, &[u8]) + 'f;

/// A registry key as a backend presents it to the scanner. Problems are
/// returned as text naming what failed; the scanner adds the key path.
pub trait RegKey: Sized {
    /// The subkeys with their names as stored. Entries that cannot be read
    /// come as errors; the others still come.
    fn subkeys(&self, path: &[String]) -> Result<Children<Self>, String>;
    /// The subkey named `name` (case-insensitive).
    fn subkey(&self, name: &str, path: &[String]) -> Result<Option<(String, Self)>, String>;
    /// Calls `f` for each value (see [`ValueFn`]).
    fn for_each_value(
        &self,
        f: &mut ValueFn<'_>,
        warn: &mut dyn FnMut(String),
    ) -> Result<(), String>;
    /// The key's exact name (WTF-8) when the text the backend gave for it
    /// is not exactly it (an unpaired surrogate shown as U+FFFD).
    fn exact_name(&self) -> Option<Vec<u8>> {
        None
    }
    /// A stable identity for cycle detection, when the backend has one.
    fn identity(&self) -> Option<(usize, u64)>;
    /// Last-written time (FILETIME), when the backend knows it.
    fn last_written(&self) -> Option<u64> {
        None
    }
    /// Last-written time, value count and subkey count, read without the
    /// values (`Incremental`); None where the backend cannot tell them for
    /// what this key shows (a merged view): its values are always read.
    fn stats(&self) -> Option<crate::model::KeyStats> {
        None
    }
    /// When this key was reached through a registry link (a symbolic link,
    /// or `CurrentControlSet` offline): the target as Windows writes it
    /// (`\REGISTRY\MACHINE\SYSTEM\ControlSet001`). The key's contents are
    /// the target's; the scanner reports the link itself as the value
    /// `SymbolicLinkValue` (REG_LINK), so a retargeted link is one CHANGE.
    fn link(&self) -> Option<String> {
        None
    }
    /// Whether this key, or one above it on the way here, was reached
    /// through a registry link (its contents are seen under another path
    /// too).
    fn through_link(&self) -> bool {
        self.link().is_some()
    }
}

/// A node of the virtual tree.
pub enum Node<'t, K> {
    /// A root or a mount-path component with mounts below it.
    Virtual(&'t VNode<K>),
    /// A key of a backend.
    Real(K),
}

/// The virtual tree above the backends' keys: roots and mount points.
pub struct VNode<K> {
    pub name: String,
    pub children: Vec<VNode<K>>,
    /// The backend key mounted exactly here, if any.
    pub key: Option<K>,
}

impl<K> VNode<K> {
    pub fn new(name: &str) -> VNode<K> {
        VNode {
            name: name.to_string(),
            children: Vec::new(),
            key: None,
        }
    }

    /// Mounts `key` at `path` below this node.
    pub fn mount(&mut self, path: &[String], key: K) {
        let mut v = self;
        for p in path {
            let i = match v
                .children
                .iter()
                .position(|c| crate::path::pattern::same_name(&c.name, p))
            {
                Some(i) => i,
                None => {
                    v.children.push(VNode::new(p));
                    v.children.len() - 1
                }
            };
            v = &mut v.children[i];
        }
        v.key = Some(key);
    }
}
