//! Keeping a baseline honest: a secret key kept apart from CacheDir, a
//! keyed checksum (MAC) per row and over `meta`, and a small side record
//! (the ledger) per baseline beside the key.
//!
//! What it protects against: someone who can write CacheDir but cannot read
//! the key file cannot edit, insert, delete or restore rows (or a whole older
//! copy) without regmon noticing. What not: whoever can read the key (root,
//! Administrators, the account regmon runs as) can forge anything.

use crate::platform::perms;
use hive::file::FileStamp;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Bytes of a row MAC kept in the database (128 bits).
pub const MAC_LEN: usize = 16;

/// The secret of this machine's baselines.
#[derive(Clone)]
pub struct Key([u8; 32]);

/// What a baseline is checked against when opened: the key (None when it
/// could not be read or made: tamper checks are then off), this host's name
/// and the folder of the side records.
#[derive(Clone)]
pub struct Guard {
    pub key: Option<Key>,
    pub host: String,
    pub ledger_dir: Option<PathBuf>,
}

impl Guard {
    /// The key and ledger folder from `REGMON_KEY_DIR` or the platform's
    /// default ([`key_dir`]); a failure is logged and turns the checks off.
    pub fn load() -> Guard {
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        let Some(dir) = key_dir() else {
            tracing::warn!("no folder for the baseline key (set REGMON_KEY_DIR): baselines are not checked for tampering");
            return Guard {
                key: None,
                host,
                ledger_dir: None,
            };
        };
        match load_key(&dir) {
            Ok(key) => Guard {
                key: Some(key),
                host,
                ledger_dir: Some(dir.join("baselines")),
            },
            Err(e) => {
                tracing::warn!("{e}: baselines are not checked for tampering");
                Guard {
                    key: None,
                    host,
                    ledger_dir: None,
                }
            }
        }
    }

    /// Checks off (unit tests of the store).
    pub fn none() -> Guard {
        Guard {
            key: None,
            host: "test".into(),
            ledger_dir: None,
        }
    }

    /// The side record of the baseline at `file`.
    pub fn ledger(&self, file: &Path) -> Option<Ledger> {
        let dir = self.ledger_dir.as_ref()?;
        // The same file spelled differently is one record.
        let canon = match (file.parent(), file.file_name()) {
            (Some(d), Some(n)) => std::fs::canonicalize(d)
                .map(|d| d.join(n))
                .unwrap_or_else(|_| file.to_path_buf()),
            _ => file.to_path_buf(),
        };
        let h = blake3::hash(canon.to_string_lossy().as_bytes()).to_hex();
        Some(Ledger {
            path: dir.join(format!("{}.state", &h[..32])),
            file: canon,
        })
    }
}

/// Where the key and the side records live: `REGMON_KEY_DIR` if set, else
/// `%ProgramData%\regmon` on Windows, `$XDG_STATE_HOME/regmon` or
/// `~/.local/state/regmon` elsewhere (`/var/lib/regmon` for root without
/// either).
pub fn key_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("REGMON_KEY_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    if cfg!(test) {
        // Unit tests never touch the real home.
        return Some(std::env::temp_dir().join("regmon-unit-test-keys"));
    }
    if cfg!(windows) {
        return std::env::var_os("ProgramData").map(|d| PathBuf::from(d).join("regmon"));
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("regmon"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(h) => Some(PathBuf::from(h).join(".local/state/regmon")),
        None => Some(PathBuf::from("/var/lib/regmon")),
    }
}

/// Creates `path` empty and readable by its owner only, unless it exists
/// (a baseline before SQLite opens it). On Windows the folder's ACL applies.
pub fn create_private(path: &Path) -> std::io::Result<()> {
    match private_new(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// A new file (O_EXCL) private to regmon's account: 0600 on Unix, the
/// private DACL on Windows (see [`crate::platform::perms`]).
fn private_new(path: &Path) -> std::io::Result<std::fs::File> {
    perms::open_private(
        path,
        std::fs::OpenOptions::new().write(true).create_new(true),
    )
}

/// Reads `dir/baseline.key`, or makes it: 32 random bytes, written to a
/// temporary file created with O_EXCL and mode 0600, then linked in place
/// (so two processes starting together end with one key).
fn load_key(dir: &Path) -> Result<Key, String> {
    let path = dir.join("baseline.key");
    let read = |p: &Path| -> Result<Option<Key>, String> {
        match std::fs::read(p) {
            Ok(b) => <[u8; 32]>::try_from(b.as_slice())
                .map(|k| Some(Key(k)))
                .map_err(|_| format!("baseline key {}: not 32 bytes", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read baseline key {}: {e}", p.display())),
        }
    };
    if let Some(k) = read(&path)? {
        return Ok(k);
    }
    perms::create_dir_private(dir)
        .map_err(|e| format!("cannot create key folder {}: {e}", dir.display()))?;
    let mut k = [0u8; 32];
    getrandom::fill(&mut k).map_err(|e| format!("no random bytes for the baseline key: {e}"))?;
    let tmp = dir.join(format!("baseline.key.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let made = private_new(&tmp)
        .and_then(|mut f| {
            f.write_all(&k)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::hard_link(&tmp, &path));
    let _ = std::fs::remove_file(&tmp);
    match made {
        Ok(()) => {
            tracing::info!("created the baseline key {}", path.display());
            Ok(Key(k))
        }
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read(&path)?.ok_or_else(|| format!("baseline key {} vanished", path.display()))
        }
        Err(e) => Err(format!(
            "cannot create baseline key {}: {e}",
            path.display()
        )),
    }
}

fn put(h: &mut blake3::Hasher, b: &[u8]) {
    h.update(&(b.len() as u64).to_le_bytes());
    h.update(b);
}

fn short(h: blake3::Hasher) -> [u8; MAC_LEN] {
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&h.finalize().as_bytes()[..MAC_LEN]);
    out
}

impl Key {
    /// The key whose 32 bytes are `b` (what `baseline.key` holds).
    pub fn from_bytes(b: [u8; 32]) -> Key {
        Key(b)
    }

    /// The MAC of a value row (all its columns).
    pub fn value_mac(
        &self,
        id: &[u8],
        ty: i64,
        size: i64,
        digest: &[u8],
        data: Option<&[u8]>,
    ) -> [u8; MAC_LEN] {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(b"v");
        put(&mut h, id);
        h.update(&ty.to_le_bytes());
        h.update(&size.to_le_bytes());
        put(&mut h, digest);
        match data {
            Some(d) => {
                h.update(b"1");
                put(&mut h, d);
            }
            None => {
                h.update(b"0");
            }
        }
        short(h)
    }

    /// The MAC of a key's row of values: its identity, stats (`None` for
    /// unknown) and the blob of its values (see [`super::rows`]).
    pub fn row_mac(
        &self,
        id: &[u8],
        stats: Option<crate::model::KeyStats>,
        values: &[u8],
    ) -> [u8; MAC_LEN] {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(b"r");
        put(&mut h, id);
        match stats {
            Some(s) => {
                h.update(b"1");
                h.update(&s.last_written.to_le_bytes());
                h.update(&s.values.to_le_bytes());
                h.update(&s.subkeys.to_le_bytes());
            }
            None => {
                h.update(b"0");
            }
        }
        put(&mut h, values);
        short(h)
    }

    /// The MAC of a key row.
    pub fn key_mac(&self, id: &[u8], last_written: Option<i64>) -> [u8; MAC_LEN] {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(b"k");
        put(&mut h, id);
        match last_written {
            Some(t) => {
                h.update(b"1");
                h.update(&t.to_le_bytes());
            }
            None => {
                h.update(b"0");
            }
        }
        short(h)
    }

    /// The seal over the `meta` rows (sorted by name) of the baseline
    /// named `file_name`: a file copied over another input's is refused.
    pub fn seal(&self, file_name: &str, meta: &[(String, String)]) -> String {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(b"s");
        put(&mut h, file_name.as_bytes());
        for (k, v) in meta {
            put(&mut h, k.as_bytes());
            put(&mut h, v.as_bytes());
        }
        hex(&short(h))
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// An order-free summary of a set of row MACs: their XOR and count. Adding
/// and removing a row are the same XOR, so a commit updates it with the
/// rows it touches only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sum {
    pub xor: [u8; MAC_LEN],
    pub count: u64,
}

impl Sum {
    pub fn add(&mut self, mac: &[u8]) {
        self.flip(mac);
        self.count += 1;
    }

    pub fn remove(&mut self, mac: &[u8]) {
        self.flip(mac);
        self.count = self.count.saturating_sub(1);
    }

    fn flip(&mut self, mac: &[u8]) {
        for (a, b) in self.xor.iter_mut().zip(mac) {
            *a ^= b;
        }
    }

    pub fn to_text(self) -> String {
        format!("{}:{}", hex(&self.xor), self.count)
    }

    pub fn parse(text: &str) -> Option<Sum> {
        let (x, n) = text.split_once(':')?;
        let mut xor = [0u8; MAC_LEN];
        if x.len() != MAC_LEN * 2 {
            return None;
        }
        for (i, b) in xor.iter_mut().enumerate() {
            *b = u8::from_str_radix(x.get(i * 2..i * 2 + 2)?, 16).ok()?;
        }
        Some(Sum {
            xor,
            count: n.parse().ok()?,
        })
    }
}

/// The side record of one baseline, kept beside the key (outside
/// CacheDir): how many sealed commits it had and when the last was made.
/// A baseline with fewer commits than its record is an older copy; a
/// missing baseline with a record was deleted.
#[derive(Clone)]
pub struct Ledger {
    pub path: PathBuf,
    /// The baseline it is about (canonical).
    pub file: PathBuf,
}

/// What a ledger holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub commits: u64,
    /// Unix seconds of the last commit.
    pub good: i64,
    /// The file as regmon closed it last, if nothing was written since.
    pub settled: Option<Settled>,
}

/// A baseline file left whole by a clean close: its stamp then, and when
/// SQLite's structural check (`PRAGMA quick_check`, which reads the whole
/// file) last passed. Opening the file with the same stamp within a day of
/// that check skips it: rows are still MAC-checked as they are read, and a
/// file written since (by anyone) has another stamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settled {
    pub stamp: FileStamp,
    /// Unix seconds of the last structural check that passed.
    pub checked: i64,
}

impl Ledger {
    pub fn read(&self) -> Option<Entry> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let mut commits = None;
        let mut good = None;
        let mut settled = None;
        for l in text.lines() {
            match l.split_once(' ') {
                Some(("commits", v)) => commits = v.parse().ok(),
                Some(("good", v)) => good = v.parse().ok(),
                Some(("settled", v)) => settled = parse_settled(v),
                _ => {}
            }
        }
        Some(Entry {
            commits: commits?,
            good: good?,
            settled,
        })
    }

    /// Records a commit (beside and renamed: never half written). A
    /// failure only weakens the checks: logged, not fatal.
    pub fn write(&self, e: Entry) {
        let r = (|| -> std::io::Result<()> {
            if let Some(d) = self.path.parent() {
                perms::create_dir_private(d)?;
            }
            let tmp = self.path.with_extension("tmp");
            let _ = std::fs::remove_file(&tmp);
            let mut f = private_new(&tmp)?;
            let mut text = format!(
                "file {}\ncommits {}\ngood {}\n",
                self.file.display(),
                e.commits,
                e.good
            );
            if let Some(s) = e.settled {
                let t = s.stamp;
                text += &format!(
                    "settled {} {} {} {} {} {}\n",
                    t.len, t.modified, t.changed, t.dev, t.ino, s.checked
                );
            }
            // One write: a file is never seen half written under its name.
            f.write_all(text.as_bytes())?;
            drop(f);
            std::fs::rename(&tmp, &self.path)
        })();
        if let Err(err) = r {
            tracing::warn!(
                "cannot write the side record {} of baseline {}: {err}",
                self.path.display(),
                self.file.display()
            );
        }
    }

    /// Records that the baseline was closed whole, as `stamp` (its commits
    /// and time as recorded before). A failure only costs the next open a
    /// structural check.
    pub fn settle(&self, stamp: FileStamp, checked: i64) {
        if let Some(e) = self.read() {
            self.write(Entry {
                settled: Some(Settled { stamp, checked }),
                ..e
            });
        }
    }

    /// Forgets the record (the baseline was moved aside: a new one starts).
    pub fn clear(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `LEN MODIFIED CHANGED DEV INODE CHECKED` of a `settled` line.
fn parse_settled(v: &str) -> Option<Settled> {
    let mut w = v.split(' ');
    let stamp = FileStamp {
        len: w.next()?.parse().ok()?,
        modified: w.next()?.parse().ok()?,
        changed: w.next()?.parse().ok()?,
        dev: w.next()?.parse().ok()?,
        ino: w.next()?.parse().ok()?,
    };
    let checked = w.next()?.parse().ok()?;
    w.next().is_none().then_some(Settled { stamp, checked })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = load_key(dir.path()).unwrap();
        let k2 = load_key(dir.path()).unwrap();
        assert_eq!(k1.0, k2.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let m = std::fs::metadata(dir.path().join("baseline.key")).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(dir.path().join("baseline.key"), b"short").unwrap();
        match load_key(dir.path()) {
            Err(e) => assert!(e.contains("not 32 bytes"), "{e}"),
            Ok(_) => panic!("a short key was accepted"),
        }
    }

    #[test]
    fn sums_are_order_free_and_round_trip() {
        let k = Key([7; 32]);
        let a = k.value_mac(b"a", 1, 1, b"d", None);
        let b = k.key_mac(b"a", Some(3));
        assert_ne!(a, k.value_mac(b"a", 1, 1, b"d", Some(b"")));
        let (mut s, mut t) = (Sum::default(), Sum::default());
        s.add(&a);
        s.add(&b);
        t.add(&b);
        t.add(&a);
        assert_eq!(s, t);
        assert_eq!(Sum::parse(&s.to_text()), Some(s));
        s.remove(&a);
        s.remove(&b);
        assert_eq!(s, Sum::default());
    }
}
