//! Data-driven corpus of malformed configurations: every `tests/malformed/*.conf`
//! must fail to load with exactly the messages in the matching `.expected` file
//! (all errors, each `file:line[:col]: message` plus the quoted line).
//! Cases named `strict_*.conf` load with `--strict`.
//! `NXCONF_BLESS=1 cargo test -p nxconf --test malformed` rewrites the
//! expectations; review the diff before keeping it.

use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("malformed")
}

fn normalize(text: &str, dir: &Path) -> String {
    let canon = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut t = text.to_string();
    for d in [canon.as_path(), dir] {
        let prefix = format!("{}{}", d.display(), std::path::MAIN_SEPARATOR);
        t = t.replace(&prefix, "");
    }
    t
}

#[test]
fn malformed_corpus() {
    std::env::remove_var("REGMON_TEST_SURELY_UNSET_VAR");
    let dir = corpus_dir();
    let bless = std::env::var_os("NXCONF_BLESS").is_some();
    let mut confs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    confs.sort();
    assert!(
        confs.len() >= 40,
        "the corpus must hold at least 40 cases, found {}",
        confs.len()
    );
    let mut failures = Vec::new();
    for conf in &confs {
        let expected_path = conf.with_extension("expected");
        // `strict_*.conf` load as `regmon --strict` does.
        let strict = conf
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("strict_"));
        let got = match nxconf::load_with(conf, &nxconf::Options { strict }) {
            Ok(_) => "<loaded without error>".to_string(),
            Err(e) => normalize(&e.to_string(), &dir),
        };
        if bless {
            std::fs::write(&expected_path, format!("{got}\n")).expect("write expected");
            continue;
        }
        let want = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("missing {}", expected_path.display()));
        if want.trim_end() != got.trim_end() {
            failures.push(format!(
                "{}:\n--- expected\n{}\n--- got\n{}",
                conf.file_name().unwrap().to_string_lossy(),
                want.trim_end(),
                got
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n\n{}",
        failures.len(),
        confs.len(),
        failures.join("\n\n")
    );
}
