//! `regmon -c FILE --explain` end to end on a real SYSTEM hive: what each
//! pattern covers, the Exclude rules that pruned something and those that
//! pruned nothing, the scan's cost, a pattern that matches nothing with
//! its nearest key; exit codes; and nothing written (no CacheDir, no
//! output file, no log file).

mod common;

use common::*;

fn conf(env: &Env, patterns: &str) -> String {
    let system = testdata::hives().path("regipy/SYSTEM");
    let text = format!(
        "CacheDir 'cache'\nLogFile 'logs/regmon.log'\n\
         <Input regmon>\n Module im_regmon\n HiveFile 'HKLM\\SYSTEM' '{}'\n{patterns}\n\
         Exclude 'HKLM\\SYSTEM\\ControlSet001\\Services\\Tcpip'\n\
         Exclude 'HKLM\\SYSTEM\\ControlSet001\\Servicez'\n</Input>\n{}",
        system.display(),
        json_output(&env.abs("out.log"))
    );
    env.write("r.conf", &text);
    "r.conf".into()
}

fn explain(env: &Env, conf: &str) -> (String, Option<i32>) {
    let out = env.run(&["-c", conf, "--explain"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (text, out.status.code())
}

/// Nothing was written beside the configuration.
fn nothing_written(env: &Env) {
    for f in ["cache", "logs", "out.log"] {
        assert!(!env.path(f).exists(), "{f} was created");
    }
}

#[test]
fn explain_shows_what_each_pattern_covers_and_writes_nothing() {
    let env = Env::new();
    let conf = conf(
        &env,
        " RegValue 'HKLM\\SYSTEM\\ControlSet001\\Services\\*\\ImagePath'\n \
         RegValue 'HKLM\\SYSTEM\\ControlSet001\\Servces\\*'",
    );
    let (text, code) = explain(&env, &conf);
    assert_eq!(code, Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("Input 'regmon' (r.conf:3): hive files HKLM\\SYSTEM = ")
            && lines[0].ends_with("; Recursive FALSE"),
        "{text}"
    );
    let at = |s: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(s))
            .unwrap_or_else(|| panic!("no line '{s}' in:\n{text}"))
    };
    let p = at("  RegValue 'HKLM\\SYSTEM\\ControlSet001\\Services\\*\\ImagePath' (r.conf:6)");
    assert!(
        lines[p + 1].starts_with("    covers ") && lines[p + 1].contains(" values ("),
        "{text}"
    );
    assert!(lines[p + 2].starts_with("    keys (first 5 of "), "{text}");
    assert!(
        // As stored in the hive: `services`.
        lines[p + 3]
            .to_ascii_lowercase()
            .starts_with("      hklm\\system\\controlset001\\services\\"),
        "{text}"
    );
    let q = at("  RegValue 'HKLM\\SYSTEM\\ControlSet001\\Servces\\*' (r.conf:7)");
    assert_eq!(
        lines[q + 1],
        "    WARNING: matches nothing: nearest existing key HKLM\\SYSTEM\\ControlSet001; \
         no subkey of HKLM\\SYSTEM\\ControlSet001 matches 'Servces' (a typo?)"
    );
    assert_eq!(
        lines[at("  Exclude 'HKLM\\SYSTEM\\ControlSet001\\Services\\Tcpip'")],
        "  Exclude 'HKLM\\SYSTEM\\ControlSet001\\Services\\Tcpip' (r.conf:8): pruned 1 keys (with their subtrees), 0 values"
    );
    assert_eq!(
        lines[at("  Exclude 'HKLM\\SYSTEM\\ControlSet001\\Servicez'")],
        "  Exclude 'HKLM\\SYSTEM\\ControlSet001\\Servicez' (r.conf:9): pruned nothing (a typo, or nothing there to exclude)"
    );
    assert!(lines[at("  Scan: ")].ends_with(" s"), "{text}");
    assert_eq!(
        lines.last().copied(),
        Some("r.conf: 1 of 2 RegValue patterns match nothing; 0 hive(s) could not be read")
    );
    nothing_written(&env);

    // Every pattern matches: exit 0.
    let conf = crate::conf(
        &env,
        " RegValue 'HKLM\\SYSTEM\\ControlSet001\\Services\\*\\ImagePath'",
    );
    let (text, code) = explain(&env, &conf);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.ends_with("r.conf: every RegValue pattern (1) matches something\n"),
        "{text}"
    );
    nothing_written(&env);
}

#[test]
fn explain_reports_config_errors_like_verify() {
    let env = Env::new();
    env.write(
        "bad.conf",
        "<Input regmon>\n Module im_regmon\n RegValue 'HKXX\\Foo\\*'\n HiveFile 'HKLM\\SYSTEM' 'SYSTEM'\n</Input>\n",
    );
    let out = env.run(&["-c", "bad.conf", "--explain"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.conf:3"), "{err}");
    assert!(out.stdout.is_empty());
    // --explain with --once or --verify is refused by the option parser.
    let out = env.run(&["-c", "bad.conf", "--explain", "--once"]);
    assert_eq!(out.status.code(), Some(2));
}
