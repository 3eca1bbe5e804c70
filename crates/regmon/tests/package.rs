//! What the packages rely on: `--version` naming the commit, the target and
//! the date; the man pages and completions of the hidden `generate`
//! command; the Debian package's configuration passing `--verify`.
//! The packages themselves are built and checked by scripts/package.sh
//! (lintian, install, purge) and scripts/msi-wine-test.sh (the MSI).

mod common;

use common::BIN;
use std::path::Path;
use std::process::Command;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn version_names_commit_target_and_date() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    let line = text(&out.stdout);
    let line = line.trim_end();
    // regmon 0.1.0 (commit 0123456789ab, x86_64-unknown-linux-gnu, built 2026-12-02)
    let rest = line
        .strip_prefix(&format!("regmon {} (", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{line}"));
    let rest = rest.strip_suffix(')').unwrap_or_else(|| panic!("{line}"));
    let parts: Vec<&str> = rest.split(", ").collect();
    assert_eq!(parts.len(), 3, "{line}");
    let commit = parts[0];
    // A checkout says its commit; a source tarball "unknown commit".
    let in_git = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_string());
    match in_git {
        Some(head) => assert_eq!(commit, format!("commit {head}"), "{line}"),
        None => assert_eq!(commit, "unknown commit", "{line}"),
    }
    let target = parts[1];
    assert!(
        target.starts_with(std::env::consts::ARCH) && target.contains(std::env::consts::OS),
        "{line}"
    );
    let date = parts[2]
        .strip_prefix("built ")
        .unwrap_or_else(|| panic!("{line}"));
    let ymd: Vec<u32> = date.split('-').map(|s| s.parse().unwrap()).collect();
    assert_eq!(date.len(), 10, "{line}");
    assert!(ymd[0] >= 2024 && (1..=12).contains(&ymd[1]) && (1..=31).contains(&ymd[2]));
    // The same line for -V.
    assert_eq!(text(&run(&["-V"]).stdout).trim_end(), line);
}

#[test]
fn generate_is_hidden_from_help() {
    let help = text(&run(&["--help"]).stdout);
    assert!(help.contains("diff"), "{help}");
    assert!(!help.contains("generate"), "{help}");
}

#[test]
fn man_pages_come_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["generate", "man", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = std::fs::read_to_string(dir.path().join("regmon.1")).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH regmon 1"),
        "{page}"
    );
    // The options and their help text, as --help has them.
    for s in ["\\-\\-verify", "\\-\\-explain", "Check the configuration"] {
        assert!(page.contains(s), "regmon.1 lacks {s}");
    }
    // One page per subcommand, not for the hidden one.
    assert!(dir.path().join("regmon-diff.1").is_file());
    assert!(dir.path().join("regmon-hive-dump.1").is_file());
    assert!(!dir.path().join("regmon-generate.1").exists());
}

#[test]
fn completions_for_three_shells() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["generate", "completions", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for f in ["regmon.bash", "_regmon", "regmon.fish"] {
        let s = std::fs::read_to_string(dir.path().join(f)).unwrap();
        // fish spells options `-l verify`, the others `--verify`.
        assert!(s.contains("verify") && s.contains("explain"), "{f}: {s}");
        assert!(s.contains("diff") && s.contains("hive"), "{f}: {s}");
    }
}

#[test]
fn generate_into_a_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let out = run(&["generate", "man", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains(file.to_str().unwrap()), "{err}");
}

/// The configuration the .deb installs as /etc/regmon/regmon.conf checks
/// clean, with the sample hive it names (made by `hive sample`, as
/// scripts/package.sh makes it) at a temporary path.
#[test]
fn debian_configuration_verifies() {
    let packaged = "/usr/share/regmon/sample/SOFTWARE";
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/debian/regmon.conf");
    let text_conf = std::fs::read_to_string(conf).unwrap();
    assert!(text_conf.contains(packaged));
    let dir = tempfile::tempdir().unwrap();
    let hive = dir.path().join("SOFTWARE");
    let out = run(&["hive", "sample", hive.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let conf = dir.path().join("regmon.conf");
    std::fs::write(&conf, text_conf.replace(packaged, hive.to_str().unwrap())).unwrap();
    let out = run(&["-c", conf.to_str().unwrap(), "--verify"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}
