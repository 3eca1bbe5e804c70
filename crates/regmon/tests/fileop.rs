//! xm_fileop's procedures and functions in a running monitor (a Schedule
//! that rotates the om_file output), and the extension formats (xm_csv,
//! xm_kvp, xm_rewrite) on real events.

mod common;

use common::*;
use hive::write::KeyNode;
use std::time::Duration;

/// `HKLM\SOFTWARE\P` with `n` DWORD values whose data depend on `generation`.
fn tree(n: u32, generation: u32) -> KeyNode {
    dword_tree("P", n, |i| format!("v{i:05}"), |i| generation * 1000 + i)
}

fn conf(env: &Env, output: &str, extra: &str) -> String {
    let text = format!(
        "<Extension json>\n Module xm_json\n</Extension>\n{extra}\
         <Input regmon>\n Module im_regmon\n HiveFile 'HKLM\\SOFTWARE' 'SOFTWARE'\n RegValue 'HKLM\\SOFTWARE\\P\\*'\n ScanInterval 1\n</Input>\n\
         <Output file>\n Module om_file\n{output}\n</Output>\n\
         <Route r>\n Path regmon => file\n</Route>\n"
    );
    env.write("regmon.conf", &text);
    "regmon.conf".into()
}

/// A Schedule of the xm_fileop instance renames the output file when it
/// is not empty (file_exists(), file_size(), file_rename()), removes old
/// `*.tmp` files, creates a folder, and asks the output to reopen; a
/// failing procedure is logged with its line and skipped. The scan's
/// events then go to a new file at the configured path.
#[test]
fn a_schedule_rotates_the_output_with_fileop() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &tree(3, 0));
    let out = env.abs("out.log");
    let old = env.abs("out.old");
    let tmp = env.abs("*.tmp");
    let made = env.abs("archive/2026");
    let c = conf(
        &env,
        &format!(" File '{out}'\n Exec to_json();"),
        &format!(
            "<Extension fileop>\n Module xm_fileop\n <Schedule>\n  When @startup\n\
             \x20 Exec if file_exists('{out}') and file_size('{out}') > 0 {{ file_rename('{out}', '{old}'); file->reopen(); }}\n\
             \x20 Exec file_rename('{missing}', '{old}.x'); file_remove('{tmp}'); dir_make('{made}');\n\
             \x20 Exec log_info('rotated: ', file_basename('{old}'), ' ', file_size('{old}'));\n\
             </Schedule>\n</Extension>\n",
            missing = env.abs("no-such-file")
        ),
    );
    env.once(&c);
    env.write("out.log", "gen0\n");
    env.write("a.tmp", "x");
    env.write("keep.txt", "x");
    env.write_hive("SOFTWARE", &tree(3, 1));
    let mut child = env.spawn(&c, "run.log");
    let appeared = wait_for(Duration::from_secs(20), || env.lines("out.log").len() >= 3);
    sigterm(&child);
    let st = wait_exit(&mut child, Duration::from_secs(20));
    let log = env.read("run.log");
    assert!(appeared && st.success(), "{st}: {log}");
    assert_eq!(env.read("out.old"), "gen0\n");
    assert_eq!(env.lines("out.log").len(), 3);
    assert!(env.lines("out.log")[0].contains("\"EventType\":\"CHANGE\""));
    assert!(!env.path("a.tmp").exists() && env.path("keep.txt").exists());
    assert!(env.path("archive/2026").is_dir());
    assert!(log.contains("rotated: out.old 5"), "{log}");
    // The failing rename names the configuration line and is skipped.
    assert!(
        log.contains("regmon.conf:9: file_rename(): cannot rename"),
        "{log}"
    );
}

/// to_csv(), to_kvp() and xm_rewrite's process() over the monitor's events.
#[test]
fn csv_kvp_and_rewrite_on_events() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &tree(2, 0));
    let c = conf(
        &env,
        &format!(
            " File '{}'\n Exec rw->process(); $Kvp = kvp->to_kvp(); csv->to_csv();",
            env.abs("out.csv")
        ),
        "<Extension csv>\n Module xm_csv\n Fields $EventType, $Value, $ValueSize, $Kvp\n Delimiter ;\n</Extension>\n\
         <Extension kvp>\n Module xm_kvp\n</Extension>\n\
         <Extension rw>\n Module xm_rewrite\n Keep EventType, RegistryValueName, ValueSize\n Rename RegistryValueName, Value\n Exec $ValueSize = $ValueSize * 2;\n</Extension>\n",
    );
    env.once(&c);
    env.write_hive("SOFTWARE", &tree(2, 1));
    env.once(&c);
    let lines = env.lines("out.csv");
    assert_eq!(
        lines,
        [
            "\"CHANGE\";\"HKLM\\\\SOFTWARE\\\\P\\\\v00000\";8;\"EventType=CHANGE\\;Value=HKLM\\\\\\\\SOFTWARE\\\\\\\\P\\\\\\\\v00000\\;ValueSize=8\\;\"",
            "\"CHANGE\";\"HKLM\\\\SOFTWARE\\\\P\\\\v00001\";8;\"EventType=CHANGE\\;Value=HKLM\\\\\\\\SOFTWARE\\\\\\\\P\\\\\\\\v00001\\;ValueSize=8\\;\"",
        ]
    );
}
