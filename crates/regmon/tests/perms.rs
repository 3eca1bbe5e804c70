//! Least privilege (issue 13, part 3), end to end on Unix: what a real
//! `regmon --once` creates is its account's alone, a configuration file or
//! CacheDir that others can change is named in a warning at start, and a
//! symbolic link another user placed is not followed.
//!
//! Giving a link to another user (`lchown`) needs root, which the tests
//! have here and in CI; run as another user, the link tests check what they
//! can (our own links are followed) and say on stderr what they skipped.
#![cfg(unix)]

mod common;

use common::*;
use hive::write::KeyNode;
use hive::ValueType;
use std::os::unix::fs::{lchown, symlink, PermissionsExt};
use std::path::Path;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn tree() -> KeyNode {
    let mut root = KeyNode::new("ROOT");
    root.key_mut("Policies")
        .set_value("A", ValueType::DWORD, dword(1));
    root
}

/// A configuration over `SOFTWARE` with CacheDir `cache`, writing to `out`
/// (CreateDir TRUE) and logging to `log`.
fn conf(env: &Env, cache: &str, out: &str, log: &str) -> &'static str {
    env.write_hive("SOFTWARE", &tree());
    env.write(
        "regmon.conf",
        &format!(
            "CacheDir {cache}\nLogFile {log}\n\
             <Input regmon>\n Module im_regmon\n HiveFile 'HKLM\\SOFTWARE' 'SOFTWARE'\n \
             RegValue 'HKLM\\SOFTWARE\\Policies\\*'\n</Input>\n\
             <Output file>\n Module om_file\n File '{out}'\n CreateDir TRUE\n</Output>\n\
             <Route r>\n Path regmon => file\n</Route>\n"
        ),
    );
    "regmon.conf"
}

/// Runs `--once`; its exit status and its log (LogFile and stderr).
fn once(env: &Env, conf: &str, log: &str) -> (bool, String) {
    let out = env.run(&["-c", conf, "--once"]);
    let text = format!("{}{}", env.read(log), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn what_regmon_creates_is_private() {
    let env = Env::new();
    let out = env.abs("out/sub/out.log");
    let c = conf(&env, "state/cache", &out, "logs/regmon.log");
    let (ok, log) = once(&env, c, "logs/regmon.log");
    assert!(ok, "{log}");
    // A second run with a change, so the output file is written.
    let mut t = tree();
    t.key_mut("Policies")
        .set_value("B", ValueType::DWORD, dword(2));
    env.write_hive("SOFTWARE", &t);
    let (ok, log) = once(&env, c, "logs/regmon.log");
    assert!(ok, "{log}");
    assert!(!log.contains("not private"), "{log}");
    for dir in ["state", "state/cache", "out", "out/sub", "logs"] {
        assert_eq!(mode(&env.path(dir)), 0o700, "{dir}");
    }
    for file in [
        "state/cache/regmon-regmon.sqlite.lock",
        "out/sub/out.log",
        "logs/regmon.log",
    ] {
        assert_eq!(mode(&env.path(file)), 0o600, "{file}");
    }
    assert_eq!(env.lines("out/sub/out.log").len(), 1);
    // The baseline (created by baseline/) sits in the private folder; its
    // journals, when present, have its own mode (see the next test).
    let base = env.path("state/cache/regmon-regmon.sqlite");
    for j in ["-wal", "-shm"] {
        let p = env.path(&format!("state/cache/regmon-regmon.sqlite{j}"));
        if p.exists() {
            assert_eq!(mode(&p), mode(&base), "{}", p.display());
        }
    }
}

/// SQLite creates a database's -wal and -shm files with the database
/// file's own permissions (unixOpen: findCreateFileMode), so a baseline
/// created 0600 keeps its journals 0600.
#[test]
fn sqlite_journals_take_the_database_mode() {
    let t = tempfile::tempdir().unwrap();
    let db = t.path().join("b.sqlite");
    std::fs::File::create(&db).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    let c = rusqlite::Connection::open(&db).unwrap();
    let journal: String = c
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    for j in ["-wal", "-shm"] {
        let p = t.path().join(format!("b.sqlite{j}"));
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
}

#[test]
fn warns_when_others_can_write_the_cache_or_the_configuration() {
    let env = Env::new();
    let out = env.abs("out.log");
    let c = conf(&env, "cache", &out, "regmon.log");
    std::fs::create_dir(env.path("cache")).unwrap();
    std::fs::set_permissions(env.path("cache"), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(env.path(c), std::fs::Permissions::from_mode(0o666)).unwrap();
    let (ok, log) = once(&env, c, "regmon.log");
    assert!(ok, "{log}");
    assert!(
        log.contains(&format!(
            "CacheDir {} is not private to regmon's account: every user can write to it (mode 0777)",
            env.path("cache").display()
        )),
        "{log}"
    );
    assert!(log.contains("alter or replace the baselines"), "{log}");
    assert!(
        log.contains(
            "the configuration file regmon.conf is not private to regmon's account: \
             every user can write to it (mode 0666)"
        ),
        "{log}"
    );
    // Made private, no warning.
    std::fs::set_permissions(env.path("cache"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(env.path(c), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_file(env.path("regmon.log")).unwrap();
    let (ok, log) = once(&env, c, "regmon.log");
    assert!(ok, "{log}");
    assert!(!log.contains("not private"), "{log}");
}

#[test]
fn links_placed_by_another_user_are_not_followed() {
    let env = Env::new();
    std::fs::create_dir_all(env.path("elsewhere/cache")).unwrap();
    symlink(env.path("elsewhere"), env.path("state")).unwrap();
    symlink(env.path("elsewhere/target.log"), env.path("out.log")).unwrap();
    let out = env.abs("out.log");
    let c = conf(&env, "state/cache", &out, "regmon.log");
    if lchown(env.path("state"), Some(65534), None).is_err() {
        // Not root: links of our own are followed; another user's cannot be made.
        eprintln!(
            "not root: links owned by another user cannot be made; checking our own links only"
        );
        let (ok, log) = once(&env, c, "regmon.log");
        assert!(ok, "{log}");
        assert!(env.path("elsewhere/cache/regmon-regmon.sqlite").exists());
        return;
    }
    lchown(env.path("out.log"), Some(65534), None).unwrap();
    // The CacheDir: refused, naming the link.
    let (ok, log) = once(&env, c, "regmon.log");
    assert!(!ok, "{log}");
    assert!(
        log.contains(&format!(
            "{} is a symbolic link owned by uid 65534, not by regmon's account or an administrator: not followed",
            env.path("state").display()
        )),
        "{log}"
    );
    assert!(!env.path("elsewhere/cache/regmon-regmon.sqlite").exists());
    // Our own link to the cache is followed; the output link of uid 65534 is not.
    lchown(env.path("state"), Some(0), None).unwrap();
    let mut t = tree();
    let (ok, log) = once(&env, c, "regmon.log");
    assert!(ok, "{log}");
    t.key_mut("Policies")
        .set_value("B", ValueType::DWORD, dword(2));
    env.write_hive("SOFTWARE", &t);
    let (ok, log) = once(&env, c, "regmon.log");
    assert!(!ok, "the event could not be delivered: {log}");
    assert!(
        log.contains(&format!(
            "{} is a symbolic link owned by uid 65534",
            env.path("out.log").display()
        )),
        "{log}"
    );
    assert!(!env.path("elsewhere/target.log").exists());
    assert!(env.path("elsewhere/cache/regmon-regmon.sqlite").exists());
}
