//! What `regmon --version` says beyond the crate's version: the git commit,
//! the build target and the build date, as environment variables for
//! `env!` (REGMON_BUILD_COMMIT, REGMON_BUILD_TARGET, REGMON_BUILD_DATE).
//!
//! Without git or outside a checkout (a source tarball) the commit is
//! "unknown commit". The date is the day of the build in UTC, or the one
//! SOURCE_DATE_EPOCH gives (reproducible builds).

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(std::env::var_os("CARGO_MANIFEST_DIR")?)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's civil_from_days): no date crate in a build script.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn main() {
    // The commit: rebuilt when HEAD moves (a new commit, a checkout). In a
    // worktree HEAD lives in its own git dir, the branches in the common one.
    let commit = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(c) => {
            for dir in ["--git-dir", "--git-common-dir"] {
                if let Some(d) = git(&["rev-parse", "--path-format=absolute", dir]) {
                    let d = PathBuf::from(d);
                    for f in ["HEAD", "packed-refs"] {
                        if d.join(f).exists() {
                            println!("cargo:rerun-if-changed={}", d.join(f).display());
                        }
                    }
                    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
                        if d.join(&r).exists() {
                            println!("cargo:rerun-if-changed={}", d.join(&r).display());
                        }
                    }
                }
            }
            // Uncommitted changes are not flagged: telling would mean
            // rerunning this script (and relinking) on every edit.
            format!("commit {c}")
        }
        None => "unknown commit".to_string(),
    };
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown target".into());
    println!("cargo:rustc-env=REGMON_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=REGMON_BUILD_TARGET={target}");
    println!("cargo:rustc-env=REGMON_BUILD_DATE={y:04}-{m:02}-{d:02}");
}
