//! Hostile or mis-saved configuration files get one clear error, never a
//! crash or an unbounded allocation: define expansion and UTF-16 files.

use nxconf::*;

const BODY: &str = "<Input r>\n  Module im_regmon\n  RegValue 'HKLM\\Software\\*'\n</Input>\n\
<Output o>\n  Module om_file\n  File '/dev/null'\n</Output>\n";

#[test]
fn doubling_defines_are_refused_quickly() {
    let mut conf = String::from("define A xxxxxxxxxxxxxxxx\n");
    let mut prev = "A".to_string();
    for i in 0..60 {
        let name = format!("D{i}");
        conf.push_str(&format!("define {name} %{prev}%%{prev}%\n"));
        prev = name;
    }
    conf.push_str(BODY);
    let t = std::time::Instant::now();
    let e = parse_str(&conf, "defines.conf").unwrap_err();
    assert!(t.elapsed().as_secs() < 5, "took {:?}", t.elapsed());
    let first = e.iter().next().unwrap();
    assert_eq!(first.file, "defines.conf");
    // D15 (line 17) would be 16 * 2^16 = 1 MiB of x plus "define D15 ":
    // the first line over the limit
    assert_eq!(first.line, 17, "{e}");
    assert!(first.message.contains("define expansion too large"), "{e}");
}

#[test]
fn many_large_define_uses_are_refused() {
    let big = "y".repeat(512 << 10);
    let mut conf = format!("define BIG {big}\n");
    for i in 0..100 {
        conf.push_str(&format!("# {i}\nLogLevel %BIG%\n"));
    }
    conf.push_str(BODY);
    let e = parse_str(&conf, "big.conf").unwrap_err();
    assert!(
        e.iter().any(|d| d.message.contains("more than 16 MiB")),
        "{e}"
    );
}

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let units = bom
        .then_some(0xFEFFu16)
        .into_iter()
        .chain(text.encode_utf16());
    for u in units {
        out.extend(if big_endian {
            u.to_be_bytes()
        } else {
            u.to_le_bytes()
        });
    }
    out
}

#[test]
fn utf16_files_get_one_clear_error() {
    let dir = std::env::temp_dir().join(format!("nxconf-utf16-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (be, bom, kind) in [
        (false, true, "UTF-16 (little-endian, with byte-order mark)"),
        (true, true, "UTF-16 (big-endian, with byte-order mark)"),
        (false, false, "UTF-16 (little-endian)"),
        (true, false, "UTF-16 (big-endian)"),
    ] {
        let path = dir.join(format!("n-{be}-{bom}.conf"));
        std::fs::write(&path, utf16(BODY, be, bom)).unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!(e.iter().count(), 1, "{e}");
        let msg = e.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains(kind), "{msg}");
        assert!(msg.contains("UTF-8"), "{msg}");
    }
    // the same file as UTF-8 loads
    let path = dir.join("ok.conf");
    std::fs::write(&path, BODY).unwrap();
    load(&path).unwrap_or_else(|e| panic!("{e}"));
    // an included UTF-16 file names the include line
    let inc = dir.join("inc.conf");
    std::fs::write(&inc, utf16("LogLevel INFO\n", false, true)).unwrap();
    let main = dir.join("main.conf");
    std::fs::write(&main, format!("include {}\n{BODY}", inc.display())).unwrap();
    let e = load(&main).unwrap_err();
    assert_eq!(e.iter().count(), 1, "{e}");
    assert_eq!(e.iter().next().unwrap().line, 1);
    assert!(e.to_string().contains("inc.conf"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);

    // text that was UTF-16 decoded as if it were UTF-8
    let text = String::from_utf8(utf16(BODY, false, false)).unwrap();
    let e = parse_str(&text, "s.conf").unwrap_err();
    assert_eq!(e.iter().count(), 1, "{e}");
}
