//! `HiveFile`: where in the registry a hive file is mounted.

use crate::path::ident;
use crate::path::pattern::Root;
use std::path::PathBuf;

/// A `HiveFile` mapping: the registry path where a hive file is mounted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub root: Root,
    /// Key components below the root, as the configuration spells them.
    pub keys: Vec<String>,
    pub file: PathBuf,
    /// Replay transaction logs found beside the file (when dirty).
    pub use_logs: bool,
}

impl Mount {
    pub fn parse(key_path: &str, file: PathBuf, use_logs: bool) -> Result<Mount, String> {
        let mut parts = key_path.split('\\').filter(|p| !p.is_empty());
        let root = parts.next().and_then(Root::parse).ok_or_else(|| {
            format!(
                "HiveFile '{key_path}': the key path must start with HKLM, HKCU, HKU, HKCR or HKCC"
            )
        })?;
        let keys: Vec<String> = parts.map(String::from).collect();
        Ok(Mount {
            root,
            keys,
            file,
            use_logs,
        })
    }

    /// The identity of the mount point (see [`crate::path::ident`]).
    pub fn id(&self) -> Vec<u8> {
        let mut id = ident::key_id(&[self.root.short()]);
        for k in &self.keys {
            ident::push_key(&mut id, k.as_bytes());
        }
        id
    }

    /// How `self` and `other` clash: mounted at the same key, or one inside
    /// the other (one would hide all or part of the other). Mount points
    /// compare case-insensitively, as keys do.
    pub fn clash(&self, other: &Mount) -> Option<&'static str> {
        let n = other.keys.len().min(self.keys.len());
        let shared = other.root == self.root
            && (0..n).all(|i| crate::path::pattern::same_name(&other.keys[i], &self.keys[i]));
        match (shared, other.keys.len() == self.keys.len()) {
            (false, _) => None,
            (true, true) => Some("the same key as"),
            (true, false) => Some("a key nested with"),
        }
    }

    pub fn display(&self) -> String {
        let mut s = self.root.short().to_string();
        for k in &self.keys {
            s.push('\\');
            s.push_str(k);
        }
        s
    }
}
