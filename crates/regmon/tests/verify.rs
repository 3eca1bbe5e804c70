//! `regmon -c FILE --verify [--strict]` end to end: the report on stdout
//! for a configuration mixing im_regmon with modules left to NXLog, the
//! exit codes with and without `--strict`, and errors naming the line.

mod common;

use common::*;
use hive::write::KeyNode;
use hive::ValueType;

/// An im_file input with a vendor's om_tcp (placeholders and all) beside an
/// im_regmon input writing to a file.
const MIXED: &str = "\
<Extension json>
    Module xm_json
</Extension>
<Extension perl>
    Module xm_perl
    PerlCode 'modify.pl'
</Extension>
<Input app>
    Module im_file
    File 'C:\\app\\*.log'
    Exec perl_call('process');
</Input>
<Input regmon>
    Module im_regmon
    HiveFile 'HKLM\\SOFTWARE' 'SOFTWARE'
    RegValue 'HKLM\\SOFTWARE\\Policies\\*'
    Recursive TRUE
    ScanInterval 0
</Input>
<Output siem>
    Module om_tcp
    Host <SIEM_IP>
    Port CUSTOM_PORT
</Output>
<Output file>
    Module om_file
    File 'out.log'
    Exec to_json();
</Output>
<Route applog>
    Path app => siem
</Route>
<Route registry>
    Path regmon => file
</Route>
";

const REPORT: &str = "\
Configuration: r.conf

Module instances (file order):
  KIND       NAME    MODULE     WHERE      STATUS
  Extension  json    xm_json    r.conf:1   RUNS
  Extension  perl    xm_perl    r.conf:4   NO EFFECT (not used by any im_regmon route)
  Input      app     im_file    r.conf:8   LEFT TO NXLOG (regmon runs im_regmon inputs only; this input is left to NXLog)
  Input      regmon  im_regmon  r.conf:13  RUNS
  Output     siem    om_tcp     r.conf:20  LEFT TO NXLOG (only routes regmon does not run reach it)
  Output     file    om_file    r.conf:25  RUNS

Routes regmon runs:
  NAME      PATH            WHERE
  registry  regmon => file  r.conf:33

Routes dropped:
  NAME    PATH         WHERE      REASON
  applog  app => siem  r.conf:30  its inputs are left to NXLog (app)

im_regmon inputs:
  regmon (r.conf:13)
    RegValue      HKLM\\SOFTWARE\\Policies\\*
    HiveFile      HKLM\\SOFTWARE = SOFTWARE
    Recursive     TRUE
    ScanInterval  0 (start_scan() only)

Notes:
  WHERE      LEVEL    MESSAGE
  r.conf:9   WARNING  regmon runs im_regmon inputs only; this input is left to NXLog
  r.conf:31  WARNING  route 'applog' is dropped: its inputs are left to NXLog (app)

r.conf: configuration is valid: regmon runs 1 im_regmon input(s) faithfully
";

fn env() -> Env {
    let env = Env::new();
    let mut root = KeyNode::new("ROOT");
    root.key_mut("Policies")
        .set_value("NoAutoUpdate", ValueType::DWORD, dword(1));
    env.write_hive("SOFTWARE", &root);
    env.write("r.conf", MIXED);
    env
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn verify_reports_what_runs_and_what_is_left_to_nxlog() {
    let env = env();
    let out = env.run(&["-c", "r.conf", "--verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), REPORT);
    assert!(
        !env.path("regmon-cache").exists() && !env.path("out.log").exists(),
        "--verify touches nothing"
    );

    // The same file runs: the input left to NXLog is a warning in the log.
    let log = env.once("r.conf");
    assert!(
        log.contains("r.conf:9: regmon runs im_regmon inputs only; this input is left to NXLog"),
        "{log}"
    );
}

#[test]
fn strict_refuses_the_modules_left_to_nxlog() {
    let env = env();
    for mode in [
        &["--verify", "--strict"][..],
        &["--once", "--strict"],
        &["--strict"],
    ] {
        let mut args = vec!["-c", "r.conf"];
        args.extend_from_slice(mode);
        let out = env.run(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{mode:?}: {err}");
        assert!(out.stdout.is_empty(), "{mode:?}");
        assert!(
            err.contains("r.conf:9: regmon runs im_regmon inputs only; this input is left to NXLog (--strict)")
                && err.contains("r.conf:21: Output 'siem' (om_tcp) is left to NXLog: only routes regmon does not run reach it (--strict)")
                && err.contains("r.conf: 2 error(s); not started"),
            "{mode:?}: {err}"
        );
    }
    assert!(!env.path("regmon-cache").exists() && !env.path("out.log").exists());
}

#[test]
fn what_a_regmon_route_reaches_must_run_faithfully() {
    let env = env();
    // The vendor's output now also carries registry events: its
    // placeholders are regmon's business.
    env.write(
        "r.conf",
        &MIXED.replace("Path app => siem", "Path app, regmon => siem"),
    );
    let out = env.run(&["-c", "r.conf", "--verify"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty());
    assert!(
        err.contains("r.conf:22: '<SIEM_IP>' looks like a placeholder left from a template: expected a host name or address")
            && err.contains("r.conf:23: 'CUSTOM_PORT' looks like a placeholder left from a template: expected a port number"),
        "{err}"
    );

    // An output regmon lacks, reached from im_regmon.
    env.write(
        "r.conf",
        &MIXED.replace("Module om_file", "Module om_elasticsearch"),
    );
    let out = env.run(&["-c", "r.conf", "--verify"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("r.conf:26: om_elasticsearch is not supported by regmon; it receives events from im_regmon input 'regmon' through route 'registry'"),
        "{err}"
    );

    // A function of an extension regmon lacks, in code regmon runs.
    env.write(
        "r.conf",
        &MIXED.replace("Exec to_json();", "Exec to_json(); perl_call('x');"),
    );
    let out = env.run(&["-c", "r.conf", "--verify"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("r.conf:28:")
            && err.contains("perl_call() belongs to xm_perl, which regmon does not run"),
        "{err}"
    );
}
