//! The NXLog configuration syntax as NXLog accepts it: files saved on
//! Windows (byte-order mark, CRLF, tabs), instance names with spaces,
//! `define` lists continued with `\`, `%NAME%` in strings and regular
//! expressions, XML blocks kept as text (`<QueryXML>`), every global
//! directive, `include` with wildcards and `include_stdout`. The fixtures
//! are in `tests/fixtures/syntax/` (kept byte for byte: .gitattributes).

use nxconf::*;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join("syntax")
        .join(name)
}

fn load_ok(name: &str) -> Config {
    load(fixture(name)).unwrap_or_else(|e| panic!("{name}:\n{e}"))
}

#[test]
fn a_file_saved_by_notepad_loads() {
    let bytes = std::fs::read(fixture("crlf-bom-tabs.conf")).unwrap();
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "the fixture keeps its byte-order mark"
    );
    assert!(
        bytes.windows(2).filter(|w| w == b"\r\n").count() > 20,
        "the fixture keeps its CRLF line ends (see .gitattributes)"
    );
    assert!(bytes.contains(&b'\t'));

    let cfg = load_ok("crlf-bom-tabs.conf");
    assert!(cfg
        .defines
        .contains(&("EXCLUDED".to_string(), "4624, 4625, 4634".to_string())));
    let names: Vec<&str> = cfg.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["my json", "registry watch", "local file"]);
    let input = cfg.module("registry watch").unwrap();
    assert_eq!(input.location.line, 16);
    let rm = input.im_regmon().unwrap();
    assert!(rm.recursive, "an unindented directive belongs to its block");
    assert_eq!(rm.reg_values[0].pattern, "HKLM\\Software\\Policies\\*");
    assert_eq!(
        cfg.routes[0].inputs,
        ["registry watch"],
        "a route names instances with spaces"
    );
    assert_eq!(cfg.routes[0].outputs, ["local file"]);
    assert_eq!(cfg.routes[0].name, "watch to file");

    // the define list in IN (...), the define in a regular expression and
    // in a string
    let exec = input.exec.as_ref().unwrap();
    let mut ctx = CollectingContext::default();
    let mut dropped = Record::new();
    dropped.set("EventID", 4625i64);
    assert_eq!(exec.run(&mut dropped, &mut ctx), Outcome::Drop);
    let mut kept = Record::new();
    kept.set("EventID", 1i64);
    kept.set("RegistryValueName", "HKLM\\Software\\Corp\\Proxy");
    assert_eq!(exec.run(&mut kept, &mut ctx), Outcome::Keep);
    assert_eq!(
        kept.get("Tag"),
        Some(&Value::String("regmon: policy".into()))
    );
}

/// The errors of a load that are not about the modules named: whether
/// regmon runs those is the module policy, not syntax.
fn syntax_errors(res: &Result<Config, Errors>, modules: &[&str]) -> Vec<String> {
    match res {
        Ok(_) => Vec::new(),
        Err(e) => e
            .iter()
            .filter(|d| !modules.iter().any(|m| d.message.contains(m)))
            .map(|d| d.to_string())
            .collect(),
    }
}

#[test]
fn a_query_xml_block_is_read_as_nxlog_reads_it() {
    let res = load(fixture("eventlog.conf"));
    assert_eq!(
        syntax_errors(&res, &["im_msvistalog"]),
        Vec::<String>::new()
    );
    if let Ok(cfg) = &res {
        // im_msvistalog is left to NXLog: its query is not regmon's business,
        // but it must not have disturbed the rest
        assert!(cfg.module("regmon").is_some());
        assert_eq!(cfg.routes.len() + cfg.dropped_routes.len(), 1);
    }
    // a tag inside a module regmon runs is an unknown directive, named as
    // written, at the tag's line
    let text = "<Input regmon>\n  Module im_regmon\n  RegValue 'HKLM\\x\\*'\n  <QueryXML>\n    <QueryList/>\n  </QueryXML>\n</Input>\n";
    let e = parse_str(text, "q.conf").unwrap_err();
    assert_eq!(e.len(), 1, "{e}");
    assert!(
        e.0[0]
            .headline()
            .starts_with("q.conf:4: unknown directive 'QueryXML' in <Input regmon>"),
        "{e}"
    );
}

#[test]
fn an_unclosed_query_xml_names_its_line() {
    let text = "<Input eventlog>\n  Module im_msvistalog\n  <QueryXML>\n    <QueryList>\n    </QueryList>\n</Input>\n";
    let e = parse_str(text, "q.conf").unwrap_err();
    let heads: Vec<String> = e.iter().map(|d| d.headline()).collect();
    assert!(
        heads.contains(
            &"q.conf:3: <QueryXML> is not closed (expected </QueryXML> before </Input> at line 6)"
                .to_string()
        ),
        "{e}"
    );
    assert!(
        heads.iter().all(|h| !h.contains("does not match")),
        "no cascade of block errors: {e}"
    );
}

#[test]
fn every_global_directive_is_accepted_and_says_what_it_does() {
    let cfg = load_ok("globals.conf");
    let info: Vec<&str> = cfg
        .notes
        .iter()
        .filter(|n| n.level == LogLevel::Info && n.message.contains("has no effect in regmon"))
        .map(|n| n.message.as_str())
        .collect();
    // 35 globals but CacheDir, DateFormat, LogFile, LogLevel and
    // OutboxMaxSize, plus four module directives
    assert_eq!(info.len(), 30 + 4, "{info:#?}");
    for acted_on in [
        "CacheDir",
        "DateFormat",
        "LogFile",
        "LogLevel",
        "OutboxMaxSize",
    ] {
        assert!(
            !info.iter().any(|m| m.starts_with(&format!("{acted_on} "))),
            "{acted_on}"
        );
    }
    let root = info.iter().find(|m| m.starts_with("RootDir")).unwrap();
    assert!(
        root.contains("paths in this file are not re-rooted"),
        "{root}"
    );
    let user = info.iter().find(|m| m.starts_with("User")).unwrap();
    assert!(
        user.contains("runs as the account that starts it"),
        "{user}"
    );
    assert_eq!(cfg.globals.outbox_max_size, Some(64 << 20));
    assert_eq!(
        cfg.globals.log_file.as_deref(),
        Some("/opt/nxlog/data/nxlog.log")
    );

    // values are checked as NXLog checks them
    for (line, want) in [
        ("Threads many", "expected an integer"),
        ("FlowControlFIFO maybe", "expected a boolean"),
        ("BatchFlushInterval soon", "expected a number of seconds"),
        ("Panic LOUD", "expected SOFT, HARD or OFF"),
        ("LogLevel CHATTY", "expected DEBUG, INFO"),
        ("RootDir", "needs a value"),
    ] {
        let e = parse_str(&format!("{line}\n"), "g.conf").unwrap_err();
        assert!(e.0[0].message.contains(want), "{line}: {e}");
    }
    let e = parse_str("Chroot /x\n", "g.conf").unwrap_err();
    assert!(
        e.0[0]
            .message
            .starts_with("unknown global directive 'Chroot' (supported: CacheDir,"),
        "{e}"
    );
}

#[test]
fn include_with_a_wildcard_reads_matching_files_in_order() {
    let cfg = load_ok("wildcard.conf");
    let names: Vec<&str> = cfg.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["regmon", "out"]);
    assert!(cfg.modules[0].location.file.ends_with("10-input.conf"));
    assert_eq!(cfg.modules[1].location.line, 1);
}

#[cfg(unix)]
#[test]
fn include_stdout_reads_a_command_output_as_configuration() {
    let cfg = load_ok("stdout.conf");
    let out = cfg.module("generated").unwrap();
    assert!(out.om_file().is_some());
    // the output's lines are named as the command's output
    assert!(
        out.location.file.ends_with("print-conf.sh (output)"),
        "{}",
        out.location
    );
    assert_eq!(out.location.line, 1);
    assert_eq!(cfg.routes[0].outputs, ["generated"]);

    let e = load(fixture("stdout-fails.conf")).unwrap_err();
    assert_eq!(e.len(), 1, "{e}");
    let d = &e.0[0];
    assert!(d.file.ends_with("stdout-fails.conf") && d.line == 2, "{d}");
    assert_eq!(
        d.message,
        "include_stdout fail.sh: the command failed (exited with status 3): cannot reach the configuration server"
    );
    assert_eq!(d.line_text, "include_stdout fail.sh");
}
