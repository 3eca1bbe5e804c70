//! om_file: appends each event's `$raw_event` and a line end to a file.
//!
//! Lines are written whole with one `write_all` of a buffer, so a reader
//! never sees a partial or interleaved line from regmon. Delivery is driven
//! by the baseline's outbox: the file offset where a batch starts is
//! recorded before it is written, a line is forgotten only after it is
//! written (and synced with `Sync TRUE`), and after a crash the part of the
//! batch already in the file is found at that offset and not written again.
//!
//! Files are opened in append mode, so a file truncated in place
//! (copytruncate) is written from its new end, without a gap of NULs. Before
//! each batch the path is checked to still name the open file (device and
//! inode on Unix; on Windows the file is opened again by path), so a file
//! renamed or removed by log rotation is replaced by a new one at the
//! configured path. At most [`MAX_OPEN`] files are kept open (least recently
//! used closed first) and a file not written for [`IDLE`] is closed: a
//! per-event `File` expression cannot exhaust the descriptors the scanner
//! needs.

use super::{FileSink, Output, OutputError, Prepared, Sink};
use crate::platform::perms;
use nxconf::{ExecContext, Module, Record, Value};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// The line end om_file writes: CRLF on Windows, as NXLog does there.
pub const LINE_END: &str = if cfg!(windows) { "\r\n" } else { "\n" };

/// Open files kept per output, at most.
pub const MAX_OPEN: usize = 64;

/// A file not written for this long is closed.
pub const IDLE: Duration = Duration::from_secs(60);

/// What identifies a file independently of its name.
#[cfg(unix)]
type FileId = (u64, u64);
/// std has no stable file identity on Windows (file IDs are unstable API).
#[cfg(not(unix))]
#[derive(Clone, Copy)]
struct FileId;

#[cfg(unix)]
fn file_id(m: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

#[cfg(not(unix))]
fn file_id(_: &std::fs::Metadata) -> FileId {
    FileId
}

/// Whether `path` still names the file opened as `id`.
#[cfg(unix)]
fn still_names(path: &str, id: &FileId) -> bool {
    std::fs::metadata(path).is_ok_and(|m| file_id(&m) == *id)
}

/// Without a file identity the answer is no: the caller opens the path
/// again, which is what a rotation needs, for one open per batch.
#[cfg(not(unix))]
fn still_names(_: &str, _: &FileId) -> bool {
    false
}

struct Open {
    file: File,
    id: FileId,
    /// For least-recently-used eviction.
    used: u64,
    written: Instant,
}

pub struct FileOutput {
    pub name: String,
    /// The `File` expression.
    file: Option<nxconf::StringExpr>,
    pub create_dir: bool,
    pub truncate: bool,
    pub sync: bool,
    open: HashMap<String, Open>,
    clock: u64,
    /// The file written last: what rotate_to() renames.
    current: Option<String>,
}

impl FileOutput {
    pub fn new(name: &str, create_dir: bool, truncate: bool, sync: bool) -> FileOutput {
        FileOutput {
            name: name.to_string(),
            file: None,
            create_dir,
            truncate,
            sync,
            open: HashMap::new(),
            clock: 0,
            current: None,
        }
    }

    fn file(&mut self, path: &str) -> Result<&mut File, OutputError> {
        self.clock += 1;
        let clock = self.clock;
        if !self.open.contains_key(path) {
            if self.open.len() >= MAX_OPEN {
                if let Some(oldest) = self
                    .open
                    .iter()
                    .min_by_key(|(_, o)| o.used)
                    .map(|(p, _)| p.clone())
                {
                    self.open.remove(&oldest);
                }
            }
            let p = Path::new(path);
            if self.create_dir {
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    perms::create_dir_private(dir).map_err(OutputError::io(
                        &self.name,
                        format!("cannot create {}", dir.display()),
                    ))?;
                }
            }
            // Append mode always: writes land at the end even after someone
            // truncated the file in place (no sparse gap). A new file is
            // private; a link another user placed is not followed.
            let file = perms::open_private(p, OpenOptions::new().read(true).append(true))
                .map_err(OutputError::io(&self.name, format!("cannot open {path}")))?;
            let id = file
                .metadata()
                .map(|m| file_id(&m))
                .map_err(OutputError::io(&self.name, path.to_string()))?;
            self.open.insert(
                path.to_string(),
                Open {
                    file,
                    id,
                    used: clock,
                    written: Instant::now(),
                },
            );
        }
        let o = self.open.get_mut(path).ok_or_else(|| OutputError {
            output: self.name.clone(),
            what: format!("{path} is not open"),
            source: None,
        })?;
        o.used = clock;
        Ok(&mut o.file)
    }

    /// Before a batch to `path`: if the path no longer names the open file
    /// (renamed, removed, replaced by log rotation), the old one is closed
    /// and the next access opens the path anew.
    pub fn begin(&mut self, path: &str) {
        if let Some(o) = self.open.get(path) {
            if !still_names(path, &o.id) {
                self.open.remove(path);
            }
        }
    }

    /// Where the next line of the file at `path` starts: its length, after
    /// ending a partial line that is not ours with a line end (so nothing is
    /// glued to it).
    pub fn line_start(&mut self, path: &str) -> Result<u64, OutputError> {
        let name = self.name.clone();
        let f = self.file(path)?;
        let len = f
            .seek(SeekFrom::End(0))
            .map_err(OutputError::io(&name, path.to_string()))?;
        if len == 0 {
            return Ok(0);
        }
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))
            .and_then(|_| f.read_exact(&mut last))
            .map_err(OutputError::io(&name, path.to_string()))?;
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
    pub fn append(&mut self, path: &str, bytes: &[u8]) -> Result<(), OutputError> {
        self.write(path, bytes, false)
    }

    /// `Truncate TRUE`: empties the file at `path`, then writes `bytes`.
    pub fn replace(&mut self, path: &str, bytes: &[u8]) -> Result<(), OutputError> {
        self.write(path, bytes, true)
    }

    fn write(&mut self, path: &str, bytes: &[u8], truncate: bool) -> Result<(), OutputError> {
        let sync = self.sync;
        let name = self.name.clone();
        let f = self.file(path)?;
        if truncate {
            f.set_len(0)
                .map_err(OutputError::io(&name, format!("truncating {path}")))?;
        }
        f.write_all(bytes)
            .map_err(OutputError::io(&name, format!("writing {path}")))?;
        if sync {
            f.sync_data()
                .map_err(OutputError::io(&name, format!("syncing {path}")))?;
        }
        if let Some(o) = self.open.get_mut(path) {
            o.written = Instant::now();
        }
        if self.current.as_deref() != Some(path) {
            self.current = Some(path.to_string());
        }
        Ok(())
    }

    /// Closes the file at `path` if open (it was renamed or removed).
    pub fn forget(&mut self, path: &str) {
        self.open.remove(path);
    }

    /// reopen(): closes every open file; the next write opens its path
    /// again (after the file was renamed or removed).
    pub fn reopen(&mut self) {
        self.open.clear();
    }

    /// rotate_to(): renames the current output file (the one written last,
    /// else `default`) to `to`; the next write creates a new file at the
    /// old name.
    pub fn rotate_to(&mut self, default: Option<&str>, to: &str) -> Result<(), String> {
        let Some(from) = self.current.clone().or_else(|| default.map(String::from)) else {
            return Err(format!(
                "output '{}': rotate_to(): no file written yet",
                self.name
            ));
        };
        self.open.remove(&from);
        std::fs::rename(&from, to)
            .map_err(|e| format!("output '{}': cannot rename {from} to {to}: {e}", self.name))
    }

    /// Closes files not written for `idle`.
    pub fn close_idle(&mut self, idle: Duration) {
        let now = Instant::now();
        self.open
            .retain(|_, o| now.duration_since(o.written) < idle);
    }

    /// How many files are open.
    #[cfg(test)]
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// Flushes everything to disk (shutdown).
    pub fn flush(&mut self) {
        for o in self.open.values_mut() {
            let _ = o.file.flush();
            let _ = o.file.sync_data();
        }
    }
}

/// om_file from its configuration block.
pub fn build(m: &Module) -> Option<Box<dyn Output>> {
    let om = m.om_file()?;
    let mut out = FileOutput::new(&m.name, om.create_dir, om.truncate, om.sync);
    out.file = Some(om.file.clone());
    Some(Box::new(out))
}

impl Output for FileOutput {
    fn name(&self) -> &str {
        &self.name
    }

    fn target(&self, rec: &Record, ctx: &mut dyn ExecContext) -> Result<String, String> {
        match &self.file {
            Some(f) => f.eval(rec, ctx),
            None => Err(format!("output '{}' has no File", self.name)),
        }
    }

    fn constant_target(&self) -> Option<&str> {
        self.file.as_ref().and_then(|f| f.as_constant())
    }

    fn sink(&mut self) -> Sink<'_> {
        Sink::File(self)
    }

    fn procedure(&mut self, name: &str, args: &[Value]) -> Option<Result<(), String>> {
        match name {
            "reopen" => {
                self.reopen();
                Some(Ok(()))
            }
            "rotate_to" => {
                let to = match args.first() {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => {
                        return Some(Err(format!(
                            "rotate_to() expects a file name (a string), not {}",
                            v.type_name()
                        )))
                    }
                    None => return Some(Err("rotate_to() needs a file name".into())),
                };
                let default = self.constant_target().map(String::from);
                Some(self.rotate_to(default.as_deref(), &to))
            }
            _ => None,
        }
    }

    fn forget(&mut self, path: &str) {
        FileOutput::forget(self, path);
    }

    fn close_idle(&mut self) {
        FileOutput::close_idle(self, IDLE);
    }

    fn flush(&mut self) {
        FileOutput::flush(self);
    }
}

impl FileSink for FileOutput {
    fn frame(&self, lines: &[&[u8]]) -> Vec<u8> {
        let mut batch = Vec::with_capacity(lines.iter().map(|l| l.len() + 2).sum());
        for l in lines {
            batch.extend_from_slice(l);
            batch.extend_from_slice(LINE_END.as_bytes());
        }
        batch
    }

    /// Truncate TRUE empties the file before each event: what remains is
    /// the last line, so that is all that is written.
    fn keep<'l>(&self, lines: &'l [&'l [u8]]) -> &'l [&'l [u8]] {
        if self.truncate && !lines.is_empty() {
            &lines[lines.len() - 1..]
        } else {
            lines
        }
    }

    /// The resume token is the file offset where the batch starts.
    fn prepare(
        &mut self,
        target: &str,
        batch: &[u8],
        resume: Option<u64>,
    ) -> Result<Prepared, OutputError> {
        self.begin(target);
        if let Some(start) = resume {
            let n = self.already_written(target, start, batch);
            if n > 0 {
                return Ok(Prepared::Resume(n));
            }
        }
        if self.truncate {
            Ok(Prepared::Fresh(0))
        } else {
            self.line_start(target).map(Prepared::Fresh)
        }
    }

    fn write(&mut self, target: &str, bytes: &[u8], fresh: bool) -> Result<(), OutputError> {
        if fresh && self.truncate {
            self.replace(target, bytes)
        } else {
            self.append(target, bytes)
        }
    }
}

/// xm_fileop's file_cycle(): `path` becomes `path.1`, an existing `path.1`
/// becomes `path.2`, and so on. With `max`, at most `max` rotated files are
/// kept (`path.max` is removed first); without it none is removed. A
/// missing `path` is nothing to cycle.
pub fn file_cycle(path: &str, max: Option<u64>) -> Result<(), String> {
    if path.contains(['*', '?']) {
        return Err(format!(
            "file_cycle('{path}'): wildcards are not supported by regmon"
        ));
    }
    if !Path::new(path).exists() {
        return Ok(());
    }
    let nth = |k: u64| format!("{path}.{k}");
    let top = match max {
        Some(0) => return Err(format!("file_cycle('{path}', 0): max must be at least 1")),
        Some(m) => {
            let last = nth(m);
            if Path::new(&last).exists() {
                std::fs::remove_file(&last)
                    .map_err(|e| format!("file_cycle: cannot remove {last}: {e}"))?;
            }
            m
        }
        // The first free number: the files below it move up by one.
        None => (1..).find(|k| !Path::new(&nth(*k)).exists()).unwrap_or(1),
    };
    for k in (1..top).rev() {
        let from = nth(k);
        if Path::new(&from).exists() {
            let to = nth(k + 1);
            std::fs::rename(&from, &to)
                .map_err(|e| format!("file_cycle: cannot rename {from} to {to}: {e}"))?;
        }
    }
    std::fs::rename(path, nth(1))
        .map_err(|e| format!("file_cycle: cannot rename {path} to {}: {e}", nth(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(p: &Path) -> String {
        p.display().to_string()
    }

    #[test]
    fn a_renamed_file_is_replaced_at_the_next_batch() {
        let dir = tempfile::tempdir().unwrap();
        let p = s(&dir.path().join("out.log"));
        let mut o = FileOutput::new("o", false, false, false);
        o.begin(&p);
        o.append(&p, b"one\n").unwrap();
        std::fs::rename(&p, format!("{p}.1")).unwrap();
        o.begin(&p);
        o.append(&p, b"two\n").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two\n");
        assert_eq!(std::fs::read(format!("{p}.1")).unwrap(), b"one\n");
    }

    #[test]
    fn open_files_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = FileOutput::new("o", false, false, false);
        for i in 0..(MAX_OPEN + 10) {
            let p = s(&dir.path().join(format!("{i}.log")));
            o.append(&p, b"x\n").unwrap();
            assert!(o.open_count() <= MAX_OPEN);
        }
        o.close_idle(Duration::ZERO);
        assert_eq!(o.open_count(), 0);
    }

    #[test]
    fn truncate_replaces_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = s(&dir.path().join("out.log"));
        let mut o = FileOutput::new("o", false, true, false);
        o.replace(&p, b"a long first line\n").unwrap();
        o.replace(&p, b"second\n").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second\n");
    }

    #[test]
    fn file_cycle_shifts_and_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let p = s(&dir.path().join("f.log"));
        let read = |k: &str| std::fs::read_to_string(format!("{p}{k}")).ok();
        for gen in ["a", "b", "c"] {
            std::fs::write(&p, gen).unwrap();
            file_cycle(&p, None).unwrap();
        }
        assert_eq!(
            (read(""), read(".1"), read(".2"), read(".3")),
            (None, Some("c".into()), Some("b".into()), Some("a".into()))
        );
        std::fs::write(&p, "d").unwrap();
        file_cycle(&p, Some(2)).unwrap();
        assert_eq!(
            (read(""), read(".1"), read(".2"), read(".3")),
            (None, Some("d".into()), Some("c".into()), Some("a".into()))
        );
        // Nothing to cycle.
        file_cycle(&p, Some(2)).unwrap();
        assert!(file_cycle(&p, Some(0)).is_ok());
        std::fs::write(&p, "e").unwrap();
        assert!(file_cycle(&p, Some(0)).is_err());
    }
}
