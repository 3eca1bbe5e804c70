//! The two configurations of the im_regmon reference load verbatim, and so
//! does a file with what NXLog users commonly write around them.

use nxconf::*;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

#[test]
fn reference_one_verbatim() {
    let cfg = load(fixture("reference1.conf")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.modules.len(), 3);
    let json = cfg.module("json").unwrap();
    assert_eq!(
        (json.kind, json.module.as_str()),
        (ModuleKind::Extension, "xm_json")
    );
    let input = cfg.module("regmon").unwrap();
    let rm = input.im_regmon().unwrap();
    assert_eq!(rm.reg_values.len(), 1);
    assert_eq!(rm.reg_values[0].pattern, "HKLM\\Software\\Policies\\*");
    assert_eq!(rm.reg_values[0].location.line, 6);
    assert_eq!(rm.scan_interval, 10);
    assert!(!rm.recursive, "no Recursive line: follow the directive");
    assert!(rm.view_64bit);
    assert_eq!(rm.digest, DigestAlgorithm::Sha1);
    assert_eq!(rm.digest.canonical_name(), "SHA1");
    let out = cfg.module("file").unwrap();
    let f = out.om_file().unwrap();
    assert_eq!(f.file.as_constant(), Some("C:\\test\\regmon.log"));
    assert!(!f.create_dir && !f.truncate && !f.sync);
    let exec = out.exec.as_ref().unwrap();
    assert!(exec.calls("to_json"));
    assert_eq!(
        cfg.routes,
        vec![Route {
            name: "regmon_to_file".into(),
            inputs: vec!["regmon".into()],
            processors: Vec::new(),
            outputs: vec!["file".into()],
            priority: None,
            location: Location::new(fixture("reference1.conf").display().to_string(), 14),
        }]
    );
    assert_eq!(input.directive("scaninterval").unwrap().value, "10");

    // the output Exec produces the JSON line
    let mut rec = Record::new()
        .with("Hostname", "WIN1")
        .with("EventType", "CHANGE")
        .with("RegistryValueName", "HKLM\\Software\\Policies\\x")
        .with("SeverityValue", 3i64);
    let mut ctx = CollectingContext::default();
    assert_eq!(exec.run(&mut rec, &mut ctx), Outcome::Keep);
    assert_eq!(
        rec.get_str("raw_event"),
        Some(
            r#"{"Hostname":"WIN1","EventType":"CHANGE","RegistryValueName":"HKLM\\Software\\Policies\\x","SeverityValue":3}"#
        )
    );
    assert!(ctx.logs.is_empty());
}

#[test]
fn reference_two_verbatim() {
    let cfg = load(fixture("reference2.conf")).unwrap_or_else(|e| panic!("{e}"));
    let input = cfg.module("regmon").unwrap();
    let rm = input.im_regmon().unwrap();
    assert_eq!(rm.reg_values[0].pattern, "HKLM\\Software\\*");
    assert_eq!(rm.excludes[0].pattern, "HKLM\\Software\\Program Groups\\*");
    assert_eq!(rm.scan_interval, 0);
    assert_eq!(input.schedules.len(), 1);
    let s = &input.schedules[0];
    assert_eq!(s.when_text.as_deref(), Some("@daily"));
    let next = s.when.as_ref().unwrap().next_after(
        chrono::NaiveDate::from_ymd_opt(2024, 2, 28)
            .unwrap()
            .and_hms_opt(13, 0, 0)
            .unwrap(),
    );
    assert_eq!(
        next,
        chrono::NaiveDate::from_ymd_opt(2024, 2, 29)
            .unwrap()
            .and_hms_opt(0, 0, 0)
    );
    let mut ctx = CollectingContext::default();
    assert_eq!(s.exec.run(&mut Record::new(), &mut ctx), Outcome::Keep);
    assert_eq!(ctx.calls, vec!["regmon->start_scan"]);
    assert_eq!(cfg.routes[0].name, "dailycheck");
}

#[test]
fn common_surroundings() {
    let cfg = load(fixture("common.conf")).unwrap_or_else(|e| panic!("{e}"));
    let g = &cfg.globals;
    assert_eq!(
        g.log_file.as_deref(),
        Some("C:\\Program Files\\nxlog\\data\\nxlog.log")
    );
    assert_eq!(
        g.cache_dir.as_deref(),
        Some("C:\\Program Files\\nxlog\\data")
    );
    assert_eq!(
        g.pid_file.as_deref(),
        Some("C:\\Program Files\\nxlog\\data\\nxlog.pid")
    );
    assert_eq!(
        g.module_dir.as_deref(),
        Some("C:\\Program Files\\nxlog\\modules")
    );
    assert_eq!(g.log_level, Some(LogLevel::Info));
    assert!(
        cfg.defines
            .iter()
            .any(|(n, v)| n == "EXTRA" && v == "extra"),
        "wildcard include read"
    );
    assert!(cfg
        .notes
        .iter()
        .any(|n| n.level == LogLevel::Info && n.message.contains("ModuleDir")));

    let input = cfg.module("registry").unwrap();
    let rm = input.im_regmon().unwrap();
    let pats: Vec<_> = rm.reg_values.iter().map(|p| p.pattern.as_str()).collect();
    assert_eq!(
        pats,
        [
            "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\*",
            "HKLM\\SYSTEM\\CurrentControlSet\\Services\\*"
        ]
    );
    assert!(rm.recursive && rm.view_64bit && rm.report_data);
    assert_eq!(rm.digest, DigestAlgorithm::Sha256);
    assert_eq!(rm.scan_interval, 1024);
    assert_eq!(rm.max_data_size, Some(65536));
    assert_eq!(rm.hive_files[0].key, "HKLM\\SOFTWARE");
    assert_eq!(
        rm.hive_files[0].path,
        "/mnt/win/Windows/System32/config/SOFTWARE"
    );
    assert_eq!(rm.no_data_for.len(), 1);
    assert_eq!(input.schedules.len(), 2);
    assert_eq!(
        input.schedules[0].every,
        Some(std::time::Duration::from_secs(7200))
    );
    assert!(input.schedules[0].first.is_some());

    // input Exec: capture into a later statement, else-branch drop
    let exec = input.exec.as_ref().unwrap();
    let mut ctx = CollectingContext::default();
    let mut rec = Record::new().with("EventType", "DELETE").with(
        "RegistryValueName",
        "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\Evil",
    );
    assert_eq!(exec.run(&mut rec, &mut ctx), Outcome::Keep);
    assert_eq!(rec.get_str("Severity"), Some("ERROR"));
    assert_eq!(rec.get_str("RunName"), Some("Evil"));
    assert_eq!(
        ctx.logs,
        vec![(
            LogLevel::Debug,
            "registry".to_string(),
            "run key Evil".to_string()
        )]
    );
    let mut other = Record::new()
        .with("RegistryValueName", "HKLM\\Other\\x")
        .with("Digest", "ab");
    assert_eq!(exec.run(&mut other, &mut ctx), Outcome::Drop);

    // output: File is a non-constant expression; DateFormat from xm_json
    let out = cfg.module("out").unwrap();
    let f = out.om_file().unwrap();
    assert!(f.file.as_constant().is_none());
    let name = f.file.eval(&Record::new(), &mut ctx).unwrap();
    assert!(
        name.starts_with("C:\\Program Files\\nxlog\\data\\regmon-20"),
        "{name}"
    );
    assert!(
        name.ends_with(".json")
            && name.len() == "C:\\Program Files\\nxlog\\data\\regmon-20240101.json".len()
    );
    let mut rec = Record::new().with(
        "EventTime",
        chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2024, 1, 2, 3, 4, 5).unwrap(),
    );
    ctx.hostname = Some("WIN7".into());
    out.exec.as_ref().unwrap().run(&mut rec, &mut ctx);
    assert_eq!(
        rec.get_str("raw_event"),
        Some(r#"{"EventTime":"2024-01-02T03:04:05.000000Z","Host":"WIN7"}"#)
    );
    assert_eq!(cfg.routes[0].priority, Some(10));
}

#[test]
fn default_route_and_unused_warning() {
    let text = "<Input a>\nModule im_regmon\nRegValue 'HKLM\\x'\n</Input>\n<Output b>\nModule om_file\nFile 'x'\n</Output>\n";
    let cfg = parse_str(text, "t.conf").unwrap();
    assert_eq!(cfg.routes[0].inputs, ["a"]);
    assert_eq!(cfg.routes[0].outputs, ["b"]);
    let text2 = format!(
        "{text}<Output c>\nModule om_file\nFile 'y'\n</Output>\n<Route r>\nPath a => b\n</Route>\n"
    );
    let cfg = parse_str(&text2, "t.conf").unwrap();
    assert!(cfg.notes.iter().any(
        |n| n.level == LogLevel::Warning && n.message == "Output 'c' is not used in any route"
    ));
}

#[test]
fn directive_names_and_booleans_any_case() {
    let text = "<extension J>\nMODULE XM_JSON\n</EXTENSION>\n<input a>\nmodule im_regmon\nregvalue 'HKLM\\x'\nRECURSIVE yes\n64bitview 0\n</input>\n<output b>\nmodule om_file\nfile \"x\"\ntruncate True\n</output>\n<route r>\npath a=>b\n</route>\n";
    let cfg = parse_str(text, "t.conf").unwrap_or_else(|e| panic!("{e}"));
    let rm = cfg.module("a").unwrap().im_regmon().unwrap();
    assert!(rm.recursive && !rm.view_64bit);
    assert!(cfg.module("b").unwrap().om_file().unwrap().truncate);
}

#[test]
fn include_relative_to_including_file() {
    let dir = std::env::temp_dir().join(format!("nxconf-inc-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("main.conf"),
        "include sub/a.conf\n<Route r>\nPath in => out\n</Route>\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("sub").join("a.conf"),
        "include b.conf\n<Output out>\nModule om_file\nFile 'x'\n</Output>\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("sub").join("b.conf"),
        "<Input in>\nModule im_regmon\nRegValue 'HKLM\\x'\n</Input>\n",
    )
    .unwrap();
    let cfg = load(dir.join("main.conf")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.modules.len(), 2);
    // an error in an included file names that file and its line
    std::fs::write(
        dir.join("sub").join("b.conf"),
        "<Input in>\nModule im_regmon\nBogus 1\nRegValue 'HKLM\\x'\n</Input>\n",
    )
    .unwrap();
    let e = load(dir.join("main.conf")).unwrap_err();
    assert!(e.0[0].file.ends_with("b.conf") && e.0[0].line == 3, "{e}");
    // a cycle through two files
    std::fs::write(dir.join("sub").join("b.conf"), "include a.conf\n").unwrap();
    let e = load(dir.join("main.conf")).unwrap_err();
    assert!(e.to_string().contains("include cycle:"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
