//! Finding the transaction logs that sit beside a hive file.

use std::path::{Path, PathBuf};

/// Transaction logs beside `hive_path`: files in the same directory named `NAME.LOG1`,
/// `NAME.LOG2` or `NAME.LOG` where `NAME` is the hive's file name, compared ignoring ASCII case.
/// Returned in that order (LOG1, LOG2, LOG; ties by name). Unreadable directories give an empty
/// list.
pub fn find_logs(hive_path: &Path) -> Vec<PathBuf> {
    let Some(file_name) = hive_path.file_name() else {
        return Vec::new();
    };
    let dir = match hive_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = file_name.as_encoded_bytes();
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found: Vec<(usize, Vec<u8>, PathBuf)> = Vec::new();
    for ent in rd.flatten() {
        let name = ent.file_name();
        let n = name.as_encoded_bytes();
        if n.len() <= base.len() || !n[..base.len()].eq_ignore_ascii_case(base) {
            continue;
        }
        let rank = match &n[base.len()..] {
            s if s.eq_ignore_ascii_case(b".LOG1") => 0,
            s if s.eq_ignore_ascii_case(b".LOG2") => 1,
            s if s.eq_ignore_ascii_case(b".LOG") => 2,
            _ => continue,
        };
        let path = dir.join(&name);
        if path.is_file() {
            found.push((rank, n.to_vec(), path));
        }
    }
    found.sort();
    found.into_iter().map(|(_, _, p)| p).collect()
}
