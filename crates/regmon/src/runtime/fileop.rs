//! xm_fileop's procedures, as NXLog CE's xm_fileop-api.xml defines them:
//! file_cycle, file_rename, file_copy, file_remove (with wildcards in the
//! file name and an optional "older than" datetime), file_link,
//! file_append, file_write, file_truncate, file_chown, file_chmod,
//! file_touch, dir_make, dir_remove. A failure is an error the evaluator
//! logs, skipping the statement (as NXLog logs it); nothing panics.

use chrono::{DateTime, Utc};
use nxconf::Value;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What a procedure did to files the outputs may hold open: their handles
/// must be dropped so the next write opens the configured path again.
pub(crate) type Touched = Vec<String>;

/// Run xm_fileop procedure `name`; `None` when it is not one of them.
pub(crate) fn run(name: &str, args: &[Value]) -> Option<Result<Touched, String>> {
    Some(match name {
        "file_cycle" => cycle(args),
        "file_rename" => two(name, args).and_then(|(a, b)| {
            fs::rename(&a, &b).map_err(|e| format!("cannot rename {a} to {b}: {e}"))?;
            Ok(vec![a, b])
        }),
        "file_copy" => two(name, args).and_then(|(a, b)| {
            fs::copy(&a, &b).map_err(|e| format!("cannot copy {a} to {b}: {e}"))?;
            Ok(vec![b])
        }),
        "file_link" => two(name, args).and_then(|(a, b)| {
            fs::hard_link(&a, &b).map_err(|e| format!("cannot link {a} to {b}: {e}"))?;
            Ok(vec![])
        }),
        "file_append" => two(name, args).and_then(|(a, b)| {
            let data = fs::read(&a).map_err(|e| format!("cannot read {a}: {e}"))?;
            append(&b, &data)?;
            Ok(vec![])
        }),
        "file_write" => two(name, args).and_then(|(path, text)| {
            // NXLog: "write value into file; file is created if missing",
            // appending as its file_write() does.
            append(&path, text.as_bytes())?;
            Ok(vec![])
        }),
        "file_remove" => remove(args),
        "file_truncate" => truncate(args),
        "file_touch" => string(name, args, 0).and_then(|p| {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(|e| format!("cannot open {p}: {e}"))?;
            f.set_modified(std::time::SystemTime::now())
                .map_err(|e| format!("cannot set the time of {p}: {e}"))?;
            Ok(vec![])
        }),
        "dir_make" => string(name, args, 0).and_then(|p| {
            fs::create_dir_all(&p).map_err(|e| format!("cannot create {p}: {e}"))?;
            Ok(vec![])
        }),
        "dir_remove" => string(name, args, 0).and_then(|p| {
            fs::remove_dir(&p).map_err(|e| format!("cannot remove {p}: {e}"))?;
            Ok(vec![])
        }),
        "file_chmod" => chmod(args),
        "file_chown" => chown(args),
        _ => return None,
    })
}

fn string(name: &str, args: &[Value], i: usize) -> Result<String, String> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Undef) | None => Err(format!("argument {} is undef", i + 1)),
        Some(v) => Err(format!(
            "{name}() expects a string as argument {}, found {}",
            i + 1,
            v.type_name()
        )),
    }
}

fn two(name: &str, args: &[Value]) -> Result<(String, String), String> {
    Ok((string(name, args, 0)?, string(name, args, 1)?))
}

fn append(path: &str, data: &[u8]) -> Result<(), String> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {path}: {e}"))?;
    f.write_all(data)
        .map_err(|e| format!("cannot write {path}: {e}"))
}

fn cycle(args: &[Value]) -> Result<Touched, String> {
    let path = string("file_cycle", args, 0)?;
    let max = match args.get(1) {
        None => None,
        Some(Value::Integer(n)) if *n >= 0 => Some(*n as u64),
        Some(v) => {
            return Err(format!(
                "the second argument must be a count of files, found {}",
                v.type_name()
            ))
        }
    };
    crate::output::file::file_cycle(&path, max)?;
    Ok(vec![path])
}

/// `*` and `?` in a file name (not in the directory part), as NXLog.
fn wildcard(pat: &[char], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut back: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pat.len() && (pat[p] == '?' || pat[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pat.len() && pat[p] == '*' {
            back = Some((p, n));
            p += 1;
        } else if let Some((bp, bn)) = back {
            p = bp + 1;
            n = bn + 1;
            back = Some((bp, bn + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|c| *c == '*')
}

/// The files `path` names: itself, or with wildcards in its file name the
/// matching regular files of its directory.
fn expand(path: &str) -> Result<Vec<PathBuf>, String> {
    let p = Path::new(path);
    let Some(file) = p.file_name().and_then(|f| f.to_str()) else {
        return Ok(vec![p.to_path_buf()]);
    };
    if !file.contains(['*', '?']) {
        return Ok(vec![p.to_path_buf()]);
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if dir.to_string_lossy().contains(['*', '?']) {
        return Err(format!(
            "{path}: wildcards are allowed in the file name only"
        ));
    }
    let pat: Vec<char> = file.chars().collect();
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))? {
        let Ok(e) = e else { continue };
        let name: Vec<char> = e.file_name().to_string_lossy().chars().collect();
        if wildcard(&pat, &name) && e.file_type().is_ok_and(|t| t.is_file()) {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

/// file_remove(path) / file_remove(path, older): with `older`, only files
/// created (on Unix: last changed) before it. A pattern that matches
/// nothing is not an error; a plain path that does not exist is.
fn remove(args: &[Value]) -> Result<Touched, String> {
    let path = string("file_remove", args, 0)?;
    let older: Option<DateTime<Utc>> = match args.get(1) {
        None => None,
        Some(Value::DateTime(d)) => Some(*d),
        Some(v) => {
            return Err(format!(
                "the second argument must be a datetime, found {}",
                v.type_name()
            ))
        }
    };
    let mut gone = Vec::new();
    for f in expand(&path)? {
        if let Some(limit) = older {
            let m = fs::metadata(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            let born = m.created().or_else(|_| m.modified());
            match born {
                Ok(t) if DateTime::<Utc>::from(t) < limit => {}
                _ => continue,
            }
        }
        fs::remove_file(&f).map_err(|e| format!("cannot remove {}: {e}", f.display()))?;
        gone.push(f.display().to_string());
    }
    Ok(gone)
}

/// file_truncate(path[, size]): created when missing.
fn truncate(args: &[Value]) -> Result<Touched, String> {
    let path = string("file_truncate", args, 0)?;
    let len = match args.get(1) {
        None => 0,
        Some(Value::Integer(n)) if *n >= 0 => *n as u64,
        Some(v) => {
            return Err(format!(
                "the offset must be a non-negative integer, found {v:?}"
            ))
        }
    };
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open {path}: {e}"))?;
    f.set_len(len)
        .map_err(|e| format!("cannot truncate {path}: {e}"))?;
    Ok(vec![])
}

#[cfg(unix)]
fn chmod(args: &[Value]) -> Result<Touched, String> {
    use std::os::unix::fs::PermissionsExt;
    let path = string("file_chmod", args, 0)?;
    let Some(Value::Integer(mode)) = args.get(1) else {
        return Err("the mode must be an integer, e.g. 0600".into());
    };
    let mode = u32::try_from(*mode)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("invalid mode {mode}"))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot change the mode of {path}: {e}"))?;
    Ok(vec![])
}

#[cfg(not(unix))]
fn chmod(_args: &[Value]) -> Result<Touched, String> {
    Err("file_chmod() is only available on Unix (as in NXLog)".into())
}

/// file_chown(path, uid, gid) with numbers; the user/group-name form needs
/// the system's user database, which regmon does not read.
#[cfg(unix)]
fn chown(args: &[Value]) -> Result<Touched, String> {
    let path = string("file_chown", args, 0)?;
    let id = |i: usize| match args.get(i) {
        Some(Value::Integer(n)) => u32::try_from(*n).map_err(|_| format!("invalid id {n}")),
        Some(Value::String(_)) => Err(
            "file_chown() with user and group names is not supported by regmon; give numeric ids"
                .to_string(),
        ),
        _ => Err("file_chown() needs a uid and a gid".to_string()),
    };
    std::os::unix::fs::chown(&path, Some(id(1)?), Some(id(2)?))
        .map_err(|e| format!("cannot change the owner of {path}: {e}"))?;
    Ok(vec![])
}

#[cfg(not(unix))]
fn chown(_args: &[Value]) -> Result<Touched, String> {
    Err("file_chown() is only available on Unix (as in NXLog)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn procedures_change_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n).display().to_string();
        let ok = |name: &str, args: &[Value]| run(name, args).unwrap().unwrap();
        ok("file_write", &[s(&p("a.log")), s("one\n")]);
        ok("file_write", &[s(&p("a.log")), s("two\n")]);
        assert_eq!(fs::read_to_string(p("a.log")).unwrap(), "one\ntwo\n");
        ok("file_copy", &[s(&p("a.log")), s(&p("b.log"))]);
        ok("file_append", &[s(&p("a.log")), s(&p("b.log"))]);
        assert_eq!(
            fs::read_to_string(p("b.log")).unwrap(),
            "one\ntwo\none\ntwo\n"
        );
        ok("file_truncate", &[s(&p("b.log")), Value::Integer(4)]);
        assert_eq!(fs::read_to_string(p("b.log")).unwrap(), "one\n");
        assert_eq!(
            ok("file_rename", &[s(&p("b.log")), s(&p("c.log"))]),
            [p("b.log"), p("c.log")]
        );
        ok("file_touch", &[s(&p("d.txt"))]);
        ok("dir_make", &[s(&p("x/y/z"))]);
        ok("dir_remove", &[s(&p("x/y/z"))]);
        assert!(!Path::new(&p("x/y/z")).exists());
        // Wildcards in the file name; an old limit keeps newer files.
        let past = Value::DateTime(Utc::now() - chrono::Duration::days(1));
        assert!(ok("file_remove", &[s(&p("*.log")), past]).is_empty());
        let gone = ok("file_remove", &[s(&p("*.log"))]);
        assert_eq!(gone, [p("a.log"), p("c.log")]);
        assert!(Path::new(&p("d.txt")).exists());
        // Failures are errors for the log, never panics.
        assert!(run("file_rename", &[s(&p("nope")), s(&p("x"))])
            .unwrap()
            .is_err());
        assert!(run("file_remove", &[Value::Integer(1)]).unwrap().is_err());
        assert!(run("file_cycle", &[s(&p("d.txt")), s("x")])
            .unwrap()
            .is_err());
        assert!(run("nope", &[]).is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            ok("file_chmod", &[s(&p("d.txt")), Value::Integer(0o600)]);
            let mode = fs::metadata(p("d.txt")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn wildcards() {
        let w = |p: &str, n: &str| {
            wildcard(
                &p.chars().collect::<Vec<_>>(),
                &n.chars().collect::<Vec<_>>(),
            )
        };
        assert!(w("*.log", "a.log"));
        assert!(w("a?c*", "abcdef"));
        assert!(!w("*.log", "a.log.1"));
        assert!(w("*.log*", "a.log.1"));
        assert!(!w("b*", "abc"));
    }
}
