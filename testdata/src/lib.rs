//! Where the tests find real hives.
//!
//! [`hives()`] is the folder named by `REGMON_HIVES` when that is set (the
//! full corpus, `../shared/hives` in scripts/test.sh), else the subset
//! committed in `testdata/hives/` (MIT and Apache-2.0 sources only, see its
//! README), decompressed from `.xz` on first use into the build's target
//! folder. Both have the same layout (`regipy/SYSTEM_B`, ...) and a
//! `manifest.json`.
//!
//! Decompression is race-safe across test binaries running at once: each
//! file is written under a temporary name and renamed into place, so a file
//! that exists is complete. A file is decompressed again when its `.xz` is
//! newer than the copy.

use std::fs;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The committed subset, compressed.
pub const SUBSET_XZ: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/hives");

/// A folder of real hives.
#[derive(Clone, Debug)]
pub struct Corpus {
    pub dir: PathBuf,
    /// `REGMON_HIVES` (the full corpus) rather than the committed subset.
    pub full: bool,
}

impl Corpus {
    /// `dir/rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Whether a test should use the file `rel`: always with the full corpus
    /// (a missing file then fails the test that opens it), and with the
    /// subset when it holds the file (the subset leaves out the hives whose
    /// licenses do not allow committing them).
    pub fn covers(&self, rel: &str) -> bool {
        self.full || self.dir.join(rel).is_file()
    }
}

/// `REGMON_HIVES` when set (panics when it is not a folder), else [`subset()`].
pub fn hives() -> Corpus {
    match std::env::var_os("REGMON_HIVES") {
        Some(v) if !v.is_empty() => {
            let dir = PathBuf::from(v);
            assert!(
                dir.is_dir(),
                "REGMON_HIVES={} is not a folder (point it at shared/hives, or unset it to use \
                 the committed subset in {SUBSET_XZ})",
                dir.display()
            );
            Corpus { dir, full: true }
        }
        _ => Corpus {
            dir: subset().to_path_buf(),
            full: false,
        },
    }
}

/// The committed subset as plain files (decompressed once per process).
/// Panics, naming the file, when it cannot be decompressed.
pub fn subset() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = out_dir();
        unpack(Path::new(SUBSET_XZ), &out).unwrap_or_else(|e| panic!("{e}"));
        out
    })
}

/// `<target>/<profile>/testdata-hives`: test binaries run from
/// `<target>/<profile>/deps/`. The system temp folder if that is unknown.
fn out_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("testdata-hives")))
        .unwrap_or_else(|| std::env::temp_dir().join("regmon-testdata-hives"))
}

/// Mirrors `src` into `dst`: `X.xz` decompressed to `X`, `manifest.json`
/// copied; other files (README, licenses) left out.
fn unpack(src: &Path, dst: &Path) -> Result<(), String> {
    let entries = fs::read_dir(src).map_err(|e| format!("{}: {e}", src.display()))?;
    fs::create_dir_all(dst).map_err(|e| format!("{}: {e}", dst.display()))?;
    for ent in entries {
        let ent = ent.map_err(|e| format!("{}: {e}", src.display()))?;
        let from = ent.path();
        let name = ent.file_name().to_string_lossy().into_owned();
        if from.is_dir() {
            unpack(&from, &dst.join(&name))?;
        } else if let Some(plain) = name.strip_suffix(".xz") {
            refresh(&from, &dst.join(plain), true)?;
        } else if name == "manifest.json" {
            refresh(&from, &dst.join(&name), false)?;
        }
    }
    Ok(())
}

/// Writes `to` from `from` unless `to` is at least as new.
fn refresh(from: &Path, to: &Path, xz: bool) -> Result<(), String> {
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(a), Some(b)) = (modified(from), modified(to)) {
        if b >= a {
            return Ok(());
        }
    }
    let err = |p: &Path, e: &dyn std::fmt::Display| format!("{}: {e}", p.display());
    let tmp = to.with_file_name(format!(
        ".{}.tmp-{}-{:?}",
        to.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        std::thread::current().id()
    ));
    let result = (|| {
        let mut out = BufWriter::new(fs::File::create(&tmp).map_err(|e| err(&tmp, &e))?);
        let mut input = BufReader::new(fs::File::open(from).map_err(|e| err(from, &e))?);
        if xz {
            lzma_rs::xz_decompress(&mut input, &mut out).map_err(|e| err(from, &e))?;
        } else {
            std::io::copy(&mut input, &mut out).map_err(|e| err(from, &e))?;
        }
        out.flush().map_err(|e| err(&tmp, &e))?;
        drop(out);
        fs::rename(&tmp, to).map_err(|e| err(to, &e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// Every file of the subset's manifest decompresses to the bytes the
    /// manifest's SHA-256 names, and every `.xz` is in the manifest.
    #[test]
    fn the_subset_decompresses_to_the_manifest() {
        let dir = subset();
        let text = fs::read_to_string(dir.join("manifest.json")).expect("manifest.json");
        let rows: Vec<serde_json::Value> = serde_json::from_str(&text).expect("manifest.json");
        let mut checked = 0;
        for row in &rows {
            let file = row["file"].as_str().expect("file");
            let license = row["license"].as_str().expect("license");
            assert!(
                license == "MIT" || license == "Apache-2.0",
                "{file}: license {license}"
            );
            let data = fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(Some(data.len() as u64), row["size"].as_u64(), "{file}");
            let sha = format!("{:x}", Sha256::digest(&data));
            assert_eq!(Some(sha.as_str()), row["sha256"].as_str(), "{file}");
            checked += 1;
        }
        let mut xz = 0;
        let mut stack = vec![PathBuf::from(SUBSET_XZ)];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "xz") {
                    xz += 1;
                }
            }
        }
        assert_eq!(xz, checked, "every .xz is in manifest.json and back");
        assert!(checked >= 50, "only {checked} files");
    }

    #[test]
    fn covers_what_the_subset_holds() {
        let c = Corpus {
            dir: subset().to_path_buf(),
            full: false,
        };
        assert!(c.covers("regipy/SYSTEM_B"));
        assert!(!c.covers("yarp/NewDirtyHive1/NewDirtyHive"));
        let full = Corpus { full: true, ..c };
        assert!(full.covers("yarp/NewDirtyHive1/NewDirtyHive"));
    }
}
