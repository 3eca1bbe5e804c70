//! om_file: appends each event's `$raw_event` and a line end to a file.
//!
//! Lines are written whole with one `write_all` of a buffer, so a reader
//! never sees a partial or interleaved line from regmon. Delivery is driven
//! by the baseline's outbox: a line is forgotten only after it is written
//! (and synced with `Sync TRUE`), and after a crash the lines already in the
//! file are recognised at its end and not written twice.

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

    /// How many of `lines` (in order) the file at `path` already ends with:
    /// they were written before a crash that kept them in the outbox.
    pub fn already_written(&mut self, path: &str, lines: &[&[u8]]) -> usize {
        let Ok(f) = self.file(path) else { return 0 };
        let Ok(len) = f.seek(SeekFrom::End(0)) else {
            return 0;
        };
        for k in (1..=lines.len()).rev() {
            let want: usize = lines[..k].iter().map(|l| l.len() + LINE_END.len()).sum();
            if want as u64 > len {
                continue;
            }
            let mut tail = vec![0u8; want];
            if f.seek(SeekFrom::Start(len - want as u64)).is_err()
                || f.read_exact(&mut tail).is_err()
            {
                return 0;
            }
            let mut expect = Vec::with_capacity(want);
            for l in &lines[..k] {
                expect.extend_from_slice(l);
                expect.extend_from_slice(LINE_END.as_bytes());
            }
            if tail == expect {
                return k;
            }
        }
        0
    }

    /// Appends lines to the file at `path`, whole, then syncs if asked.
    pub fn write(&mut self, path: &str, lines: &[&[u8]]) -> Result<(), String> {
        let sync = self.sync;
        let name = self.name.clone();
        let f = self.file(path)?;
        let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 2).sum());
        for l in lines {
            buf.extend_from_slice(l);
            buf.extend_from_slice(LINE_END.as_bytes());
        }
        f.write_all(&buf)
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
