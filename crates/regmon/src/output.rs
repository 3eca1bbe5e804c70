//! om_file: appends each event's `$raw_event` and a line end to a file.
//!
//! Lines are written whole with one `write_all` of a buffer, so a reader
//! never sees a partial or interleaved line from regmon. Delivery is driven
//! by the baseline's outbox: the file offset where a batch starts is
//! recorded before it is written, a line is forgotten only after it is
//! written (and synced with `Sync TRUE`), and after a crash the part of the
//! batch already in the file is found at that offset and not written again.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The line end om_file writes: CRLF on Windows, as NXLog does there.
pub const LINE_END: &str = if cfg!(windows) { "\r\n" } else { "\n" };

pub struct FileOutput {
    pub name: String,
    pub create_dir: bool,
    pub truncate: bool,
    pub sync: bool,
    /// Files opened so far, by path (File may vary per event).
    open: HashMap<String, File>,
}

impl FileOutput {
    pub fn new(name: &str, create_dir: bool, truncate: bool, sync: bool) -> FileOutput {
        FileOutput {
            name: name.to_string(),
            create_dir,
            truncate,
            sync,
            open: HashMap::new(),
        }
    }

    fn file(&mut self, path: &str) -> Result<&mut File, String> {
        if !self.open.contains_key(path) {
            let p = Path::new(path);
            if self.create_dir {
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        format!(
                            "output '{}': cannot create {}: {e}",
                            self.name,
                            dir.display()
                        )
                    })?;
                }
            }
            let mut o = OpenOptions::new();
            o.create(true).read(true);
            if self.truncate {
                o.write(true).truncate(true);
            } else {
                o.append(true);
            }
            let f = o
                .open(p)
                .map_err(|e| format!("output '{}': cannot open {path}: {e}", self.name))?;
            self.open.insert(path.to_string(), f);
        }
        Ok(self.open.get_mut(path).expect("inserted above"))
    }

    /// Where the next line of the file at `path` starts: its length, after
    /// ending a partial line that is not ours with a line end (so nothing is
    /// glued to it).
    pub fn line_start(&mut self, path: &str) -> Result<u64, String> {
        let name = self.name.clone();
        let f = self.file(path)?;
        let len = f
            .seek(SeekFrom::End(0))
            .map_err(|e| format!("output '{name}': {path}: {e}"))?;
        if len == 0 {
            return Ok(0);
        }
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))
            .and_then(|_| f.read_exact(&mut last))
            .map_err(|e| format!("output '{name}': {path}: {e}"))?;
        if last[0] == b'\n' {
            return Ok(len);
        }
        self.append(path, LINE_END.as_bytes())?;
        Ok(len + LINE_END.len() as u64)
    }

    /// How much of `batch` the file at `path` already holds from `offset` on:
    /// a delivery cut short by a crash (even inside a line) is resumed where
    /// it stopped, so no line is written twice or left broken. 0 when the
    /// file does not hold a prefix of the batch there (rotated, truncated).
    pub fn already_written(&mut self, path: &str, offset: u64, batch: &[u8]) -> usize {
        let Ok(f) = self.file(path) else { return 0 };
        let Ok(len) = f.seek(SeekFrom::End(0)) else {
            return 0;
        };
        if len < offset {
            return 0;
        }
        let n = ((len - offset) as usize).min(batch.len());
        let mut have = vec![0u8; n];
        if f.seek(SeekFrom::Start(offset)).is_err() || f.read_exact(&mut have).is_err() {
            return 0;
        }
        if have == batch[..n] && len - offset == n as u64 {
            n
        } else {
            0
        }
    }

    /// Appends bytes (whole lines, or the rest of a batch) to the file at
    /// `path` in one write, then syncs if asked.
    pub fn append(&mut self, path: &str, bytes: &[u8]) -> Result<(), String> {
        let sync = self.sync;
        let name = self.name.clone();
        let f = self.file(path)?;
        f.write_all(bytes)
            .map_err(|e| format!("output '{name}': writing {path}: {e}"))?;
        if sync {
            f.sync_data()
                .map_err(|e| format!("output '{name}': syncing {path}: {e}"))?;
        }
        Ok(())
    }

    /// Flushes everything to disk (shutdown).
    pub fn flush(&mut self) {
        for f in self.open.values_mut() {
            let _ = f.flush();
            let _ = f.sync_data();
        }
    }
}
