//! xm_fileop's functions (`file_exists()`, `file_size()`, ...): they only
//! read the file system, so the evaluator runs them itself. Its
//! procedures change files and run in the host (regmon's
//! `runtime::fileop`). Names and results follow NXLog CE's
//! xm_fileop-api.xml.

use crate::lang::ast::Func;
use crate::value::Value;
use chrono::{DateTime, Utc};
use std::io::Read;
use std::path::Path;

/// The function's name, for messages.
pub(crate) fn name(f: Func) -> &'static str {
    match f {
        Func::FileExists => "file_exists()",
        Func::DirExists => "dir_exists()",
        Func::FileSize => "file_size()",
        Func::FileBasename => "file_basename()",
        Func::FileDirname => "file_dirname()",
        Func::FileMtime => "file_mtime()",
        Func::FileCtime => "file_ctime()",
        Func::FileType => "file_type()",
        Func::FileRead => "file_read()",
        Func::FileInode => "file_inode()",
        Func::DirTempGet => "dir_temp_get()",
        _ => "xm_fileop",
    }
}

/// Where the directory part of a path ends: `/`, and on Windows `\` too.
fn last_separator(p: &str) -> Option<usize> {
    p.rfind(|c| c == '/' || (cfg!(windows) && c == '\\'))
}

/// Run xm_fileop function `f` on `path`. An error is what NXLog logs
/// before returning undef.
/// `file_read()` refuses files over `max_bytes` (the evaluator's string
/// limit).
pub(crate) fn function(f: Func, path: &str, max_bytes: usize) -> Result<Value, String> {
    let err = |e: std::io::Error| format!("{path}: {e}");
    Ok(match f {
        // Both are FALSE (not errors) for a missing path.
        Func::FileExists => Value::Boolean(Path::new(path).is_file()),
        Func::DirExists => Value::Boolean(Path::new(path).is_dir()),
        Func::FileBasename => Value::String(match last_separator(path) {
            Some(i) => path[i + 1..].to_string(),
            None => path.to_string(),
        }),
        Func::FileDirname => Value::String(match last_separator(path) {
            Some(0) => path[..1].to_string(),
            Some(i) => path[..i].to_string(),
            None => String::new(),
        }),
        Func::FileSize => {
            let m = std::fs::metadata(path).map_err(err)?;
            Value::Integer(i64::try_from(m.len()).unwrap_or(i64::MAX))
        }
        Func::FileMtime => {
            let m = std::fs::metadata(path).map_err(err)?;
            Value::DateTime(DateTime::<Utc>::from(m.modified().map_err(err)?))
        }
        Func::FileCtime => Value::DateTime(ctime(path).map_err(err)?),
        Func::FileType => Value::String(file_type(path).map_err(err)?.to_string()),
        Func::FileRead => {
            let file = std::fs::File::open(path).map_err(err)?;
            let mut buf = Vec::new();
            // One byte over the cap tells a too-long file from one at it.
            file.take(max_bytes as u64 + 1)
                .read_to_end(&mut buf)
                .map_err(err)?;
            if buf.len() > max_bytes {
                return Err(format!("{path}: longer than {} MiB", max_bytes >> 20));
            }
            Value::String(String::from_utf8_lossy(&buf).into_owned())
        }
        Func::FileInode => Value::Integer(inode(path).map_err(err)?),
        Func::DirTempGet => Value::String(std::env::temp_dir().to_string_lossy().into_owned()),
        _ => return Err("not an xm_fileop function".into()),
    })
}

/// The inode-change time on Unix; the creation time on Windows.
#[cfg(unix)]
fn ctime(path: &str) -> std::io::Result<DateTime<Utc>> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    DateTime::from_timestamp(m.ctime(), u32::try_from(m.ctime_nsec()).unwrap_or(0))
        .ok_or_else(|| std::io::Error::other("time out of range"))
}

#[cfg(not(unix))]
fn ctime(path: &str) -> std::io::Result<DateTime<Utc>> {
    Ok(DateTime::<Utc>::from(std::fs::metadata(path)?.created()?))
}

#[cfg(unix)]
fn inode(path: &str) -> std::io::Result<i64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path)?.ino() as i64)
}

#[cfg(not(unix))]
fn inode(_path: &str) -> std::io::Result<i64> {
    Err(std::io::Error::other(
        "inode numbers are not available on Windows",
    ))
}

/// FILE, DIR, CHAR, BLOCK, PIPE, LINK, SOCKET or UNKNOWN (the path itself,
/// not what a link points to).
fn file_type(path: &str) -> std::io::Result<&'static str> {
    let t = std::fs::symlink_metadata(path)?.file_type();
    if t.is_symlink() {
        return Ok("LINK");
    }
    if t.is_file() {
        return Ok("FILE");
    }
    if t.is_dir() {
        return Ok("DIR");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return Ok("CHAR");
        }
        if t.is_block_device() {
            return Ok("BLOCK");
        }
        if t.is_fifo() {
            return Ok("PIPE");
        }
        if t.is_socket() {
            return Ok("SOCKET");
        }
    }
    Ok("UNKNOWN")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function_t(f: Func, path: &str) -> Result<Value, String> {
        function(f, path, 1 << 20)
    }

    #[test]
    fn names_and_metadata() {
        let dir = std::env::temp_dir().join(format!("nxconf-fileop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.log");
        std::fs::write(&f, "hello").unwrap();
        let p = f.to_str().unwrap();
        assert_eq!(function_t(Func::FileExists, p), Ok(Value::Boolean(true)));
        assert_eq!(
            function_t(Func::FileExists, dir.to_str().unwrap()),
            Ok(Value::Boolean(false))
        );
        assert_eq!(
            function_t(Func::DirExists, dir.to_str().unwrap()),
            Ok(Value::Boolean(true))
        );
        assert_eq!(function_t(Func::FileSize, p), Ok(Value::Integer(5)));
        assert_eq!(
            function_t(Func::FileRead, p),
            Ok(Value::String("hello".into()))
        );
        assert_eq!(
            function_t(Func::FileType, p),
            Ok(Value::String("FILE".into()))
        );
        assert!(matches!(
            function_t(Func::FileMtime, p),
            Ok(Value::DateTime(_))
        ));
        assert!(matches!(
            function_t(Func::FileCtime, p),
            Ok(Value::DateTime(_))
        ));
        assert!(function_t(Func::FileSize, "/nonexistent/x").is_err());
        assert_eq!(
            function_t(Func::FileBasename, "/var/log/app.log"),
            Ok(Value::String("app.log".into()))
        );
        assert_eq!(
            function_t(Func::FileDirname, "/var/log/app.log"),
            Ok(Value::String("/var/log".into()))
        );
        assert_eq!(
            function_t(Func::FileDirname, "app.log"),
            Ok(Value::String(String::new()))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
