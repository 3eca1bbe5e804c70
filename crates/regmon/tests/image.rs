//! `WindowsImage`: a folder laid out like a Windows volume (mixed-case
//! names, as a volume copied onto ext4 keeps them) built from real hives,
//! with a synthetic SOFTWARE hive for its ProfileList: every hive mounted
//! where Windows mounts it, dirty hives replayed with their logs, `User`,
//! the HKCU rule, `ExcludeClasses`, and what is missing.

mod common;

use common::{id_to_path, json_output, utf16z, Env};
use hive::write::KeyNode;
use hive::ValueType;

const ALICE: &str = "S-1-5-21-1111-2222-3333-1001";
const BOB: &str = "S-1-5-21-1111-2222-3333-1002";

/// A SOFTWARE hive with a ProfileList: LocalSystem, LocalService (whose
/// folder the image lacks), alice (`C:\Users\alice`), bob
/// (`%SystemDrive%\Users\bob`), a `.bak` copy; and a Run key.
fn software() -> KeyNode {
    let mut root = KeyNode::new("ROOT");
    let list = "Microsoft\\Windows NT\\CurrentVersion\\ProfileList";
    for (sid, path) in [
        ("S-1-5-18", "%systemroot%\\system32\\config\\systemprofile"),
        ("S-1-5-19", "%systemroot%\\ServiceProfiles\\LocalService"),
        (ALICE, "C:\\Users\\alice"),
        (BOB, "%SystemDrive%\\Users\\bob"),
        (&format!("{ALICE}.bak"), "C:\\Users\\TEMP"),
    ] {
        root.key_mut(&format!("{list}\\{sid}")).set_value(
            "ProfileImagePath",
            ValueType::EXPAND_SZ,
            utf16z(path),
        );
    }
    root.key_mut("Microsoft\\Windows\\CurrentVersion\\Run")
        .set_value(
            "Updater",
            ValueType::SZ,
            utf16z("C:\\Program Files\\Updater\\up.exe"),
        );
    root.key_mut("Classes\\.txt")
        .set_value("", ValueType::SZ, utf16z("txtfile"));
    root
}

/// Copies corpus files into the image, each `(corpus path, image path)`.
fn copy(env: &Env, files: &[(&str, &str)]) {
    let corpus = testdata::hives();
    for (from, to) in files {
        let dest = env.path(to);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(corpus.path(from), &dest)
            .unwrap_or_else(|e| panic!("{from} -> {}: {e}", dest.display()));
    }
}

const ALICE_DIR: &str = "img/users/Alice";
const CLASSES_DIR: &str = "img/users/Alice/AppData/local/Microsoft/WINDOWS";

/// The volume at `img/` (bob's profile only when `with_bob`).
fn volume(env: &Env, with_bob: bool) {
    let cfg = "img/WINDOWS/system32/Config";
    std::fs::create_dir_all(env.path(cfg)).unwrap();
    env.write_hive(&format!("{cfg}/software"), &software());
    copy(
        env,
        &[
            ("regipy/SYSTEM", &format!("{cfg}/SYSTEM")),
            ("regipy/SECURITY", &format!("{cfg}/Security")),
            ("dfir-artifact-museum/Win10/SAM", &format!("{cfg}/SAM")),
            (
                "dfir-artifact-museum/Win10/SAM.LOG1",
                &format!("{cfg}/SAM.LOG1"),
            ),
            (
                "dfir-artifact-museum/Win10/SAM.LOG2",
                &format!("{cfg}/sam.log2"),
            ),
            (
                "dfir-artifact-museum/Win10/DEFAULT",
                &format!("{cfg}/default"),
            ),
            (
                "dfir-artifact-museum/Win10/DEFAULT.LOG1",
                &format!("{cfg}/DEFAULT.LOG1"),
            ),
            (
                "dfir-artifact-museum/Win10/DEFAULT.LOG2",
                &format!("{cfg}/Default.LOG2"),
            ),
            (
                "dfir-artifact-museum/Win10/NTUSER.DAT",
                &format!("{ALICE_DIR}/NTUSER.DAT"),
            ),
            (
                "dfir-artifact-museum/Win10/ntuser.dat.LOG1",
                &format!("{ALICE_DIR}/ntuser.dat.LOG1"),
            ),
            (
                "dfir-artifact-museum/Win10/ntuser.dat.LOG2",
                &format!("{ALICE_DIR}/ntuser.dat.LOG2"),
            ),
            (
                "dfir-artifact-museum/Win10/UsrClass.dat",
                &format!("{CLASSES_DIR}/usrclass.dat"),
            ),
            (
                "dfir-artifact-museum/Win10/UsrClass.dat.LOG1",
                &format!("{CLASSES_DIR}/UsrClass.dat.LOG1"),
            ),
            (
                "dfir-artifact-museum/Win10/UsrClass.dat.LOG2",
                &format!("{CLASSES_DIR}/UsrClass.dat.LOG2"),
            ),
        ],
    );
    if with_bob {
        add_bob(env);
    }
}

/// Bob's profile: an NTUSER.DAT with its log, no UsrClass.dat.
fn add_bob(env: &Env) {
    copy(
        env,
        &[
            ("dfwinreg/NTUSER.DAT", "img/users/bob/ntuser.dat"),
            ("dfwinreg/NTUSER.DAT.LOG", "img/users/bob/NTUSER.DAT.LOG"),
        ],
    );
}

/// One recursive pattern per hive, as Windows mounts them.
fn every_hive() -> String {
    [
        "HKLM\\SYSTEM\\Select\\*".to_string(),
        "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\*".into(),
        "HKLM\\SAM\\SAM\\Domains\\Account\\*".into(),
        "HKLM\\SECURITY\\Policy\\*".into(),
        "HKU\\.DEFAULT\\*".into(),
        format!("HKU\\{ALICE}\\*"),
        format!("HKU\\{ALICE}_Classes\\*"),
        format!("HKU\\{BOB}\\*"),
    ]
    .iter()
    .map(|p| format!(" RegValue '{p}'\n"))
    .collect::<String>()
        + " Recursive TRUE\n"
}

/// `regmon.conf` with one input over the image and `directives`.
fn conf(env: &Env, directives: &str) -> String {
    env.write(
        "regmon.conf",
        &format!(
            "CacheDir cache\n<Input regmon>\n Module im_regmon\n WindowsImage 'img'\n{directives}</Input>\n{}",
            json_output(&env.abs("out.log"))
        ),
    );
    "regmon.conf".into()
}

/// The value paths of the baseline.
fn baseline(env: &Env) -> Vec<String> {
    regmon::baseline::stored_values(&env.path("cache/regmon-regmon.sqlite"))
        .unwrap()
        .iter()
        .map(|e| id_to_path(&e.id))
        .collect()
}

fn count_under(paths: &[String], prefix: &str) -> usize {
    let p = format!("{}\\", prefix.to_ascii_uppercase());
    paths
        .iter()
        .filter(|x| x.to_ascii_uppercase().starts_with(&p))
        .count()
}

/// `--verify`'s exit status and log.
fn verify(env: &Env, conf: &str) -> (bool, String) {
    let out = env.run(&["-c", conf, "--verify"]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn every_hive_is_mounted_where_windows_mounts_it() {
    let env = Env::new();
    volume(&env, true);
    let c = conf(&env, &every_hive());
    let log = env.once(&c);
    let paths = baseline(&env);
    for (prefix, at_least) in [
        ("HKLM\\SYSTEM\\Select", 4),
        ("HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run", 1),
        ("HKLM\\SAM\\SAM\\Domains\\Account", 2),
        ("HKLM\\SECURITY\\Policy", 2),
        ("HKU\\.DEFAULT", 100),
        (&format!("HKU\\{ALICE}"), 1000),
        (&format!("HKU\\{ALICE}_Classes"), 1000),
        (&format!("HKU\\{BOB}"), 1000),
    ] {
        let n = count_under(&paths, prefix);
        assert!(n >= at_least, "{n} values under {prefix}\n{log}");
    }
    assert!(paths
        .iter()
        .any(|p| p == "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\Updater"));
    // Alice's hive is not counted under her classes, nor the reverse.
    assert_eq!(
        count_under(&paths, &format!("HKU\\{ALICE}")),
        paths
            .iter()
            .filter(|p| p.starts_with(&format!("HKU\\{ALICE}\\")))
            .count()
    );
    // Dirty hives are read with their logs, found in any case.
    for f in [
        "users/Alice/NTUSER.DAT",
        "Microsoft/WINDOWS/usrclass.dat",
        "system32/Config/default",
    ] {
        assert!(
            log.lines().any(|l| l.contains(f) && l.contains("replayed")),
            "{f} not replayed:\n{log}"
        );
    }
    // The load line lists the mounts.
    assert!(log.contains("8 hives mounted"), "{log}");
    // What is missing is a warning naming the path, not an error.
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("ServiceProfiles/LocalService")
            && l.contains("HKU\\S-1-5-19 and HKU\\S-1-5-19_Classes not mounted")),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("users/bob/AppData/Local/Microsoft/Windows/UsrClass.dat: not found")
            && l.contains(&format!("HKU\\{BOB}_Classes is not mounted"))),
        "{log}"
    );
    // LocalSystem is HKU\.DEFAULT; a `.bak` copy is no profile.
    assert!(
        !log.contains("systemprofile") && !log.contains(".bak"),
        "{log}"
    );
}

#[test]
fn exclude_classes_leaves_out_the_classes_hives() {
    let env = Env::new();
    volume(&env, true);
    let c = conf(&env, &(every_hive() + " ExcludeClasses TRUE\n"));
    let log = env.once(&c);
    let paths = baseline(&env);
    assert_eq!(count_under(&paths, &format!("HKU\\{ALICE}_Classes")), 0);
    assert!(count_under(&paths, &format!("HKU\\{ALICE}")) > 1000);
    let mounted = log
        .lines()
        .find(|l| l.contains("hives mounted"))
        .unwrap_or_default();
    assert!(mounted.contains("7 hives mounted"), "{log}");
    assert!(!mounted.contains("_Classes"), "{log}");
    // The pattern naming the classes hive now matches nothing, and says so.
    assert!(
        log.contains("_Classes\\*' (regmon.conf:11) matches nothing"),
        "{log}"
    );
}

#[test]
fn a_profile_added_between_scans_is_found_without_a_rebuild() {
    let env = Env::new();
    volume(&env, false);
    let c = conf(&env, &every_hive());
    let log = env.once(&c);
    assert!(
        log.contains("Users/bob: profile folder of S-1-5-21-1111-2222-3333-1002"),
        "{log}"
    );
    assert_eq!(count_under(&baseline(&env), &format!("HKU\\{BOB}")), 0);
    add_bob(&env);
    let log = env.once(&c);
    assert!(!log.contains("rebuilt"), "{log}");
    let events = env.take("out.log");
    let bob = format!("\"RegistryValueName\":\"HKU\\\\{BOB}\\\\");
    let new = events
        .iter()
        .filter(|e| e.contains("\"EventType\":\"NEW\"") && e.contains(&bob))
        .count();
    assert!(new > 1000, "{new} NEW events for bob\n{log}");
    assert!(
        events.iter().all(|e| e.contains(&bob)),
        "only bob's values are new"
    );
}

#[test]
fn a_hive_gone_missing_keeps_its_baseline() {
    let env = Env::new();
    volume(&env, true);
    let c = conf(&env, &every_hive());
    env.once(&c);
    let before = count_under(&baseline(&env), "HKLM\\SECURITY");
    assert!(before > 0);
    std::fs::remove_file(env.path("img/WINDOWS/system32/Config/Security")).unwrap();
    let log = env.once(&c);
    assert!(
        log.contains("Config/SECURITY: not found; HKLM\\SECURITY is not mounted"),
        "{log}"
    );
    assert_eq!(env.take("out.log"), Vec::<String>::new(), "{log}");
    assert_eq!(count_under(&baseline(&env), "HKLM\\SECURITY"), before);
}

#[test]
fn user_is_a_profile_name_or_a_sid() {
    let env = Env::new();
    volume(&env, true);
    for user in ["ALICE", ALICE, &ALICE.to_lowercase()] {
        let c = conf(
            &env,
            &format!(" RegValue 'HKCU\\Software\\*'\n User '{user}'\n"),
        );
        let (ok, log) = verify(&env, &c);
        assert!(ok, "{user}: {log}");
        assert!(
            log.contains(&format!("User '{user}' is {ALICE}")),
            "{user}: {log}"
        );
    }
}

#[test]
fn hkcu_without_user_and_unknown_users_are_refused_at_their_line() {
    let env = Env::new();
    volume(&env, true);
    let c = conf(
        &env,
        " RegValue 'HKLM\\SOFTWARE\\*'\n RegValue 'HKCU\\Software\\*'\n",
    );
    let (ok, log) = verify(&env, &c);
    assert!(!ok, "{log}");
    assert!(
        log.contains("regmon.conf:6: RegValue 'HKCU\\Software\\*': HKCU in an image is whose?"),
        "{log}"
    );
    assert!(
        log.contains(&format!("alice ({ALICE}), bob ({BOB})")),
        "{log}"
    );
    let c = conf(&env, " RegValue 'HKLM\\SOFTWARE\\*'\n User 'carol'\n");
    let (ok, log) = verify(&env, &c);
    assert!(!ok, "{log}");
    assert!(
        log.contains("regmon.conf:6: User 'carol' is no profile of the image (profiles: "),
        "{log}"
    );
    // LocalSystem's hive is HKU\.DEFAULT.
    let c = conf(&env, " RegValue 'HKCU\\*'\n User 'S-1-5-18'\n");
    let (ok, log) = verify(&env, &c);
    assert!(!ok && log.contains("HKU\\.DEFAULT"), "{log}");
}

#[test]
fn an_image_without_windows_config_folder_is_an_error() {
    let env = Env::new();
    std::fs::create_dir_all(env.path("img/Windows/System32")).unwrap();
    let c = conf(&env, " RegValue 'HKLM\\SOFTWARE\\*'\n");
    let (ok, log) = verify(&env, &c);
    assert!(!ok, "{log}");
    assert!(
        log.contains("regmon.conf:4: WindowsImage 'img': ")
            && log.contains("img: no Windows/System32/config folder"),
        "{log}"
    );
}

#[test]
fn hive_files_beside_an_image_must_not_clash_with_it() {
    let env = Env::new();
    volume(&env, true);
    copy(&env, &[("regipy/SYSTEM", "other/SYSTEM")]);
    let c = conf(
        &env,
        " RegValue 'HKLM\\SYSTEM\\*'\n HiveFile 'HKLM\\SYSTEM' 'other/SYSTEM'\n",
    );
    let (ok, log) = verify(&env, &c);
    assert!(!ok, "{log}");
    assert!(
        log.contains(
            "regmon.conf:6: HiveFile 'HKLM\\SYSTEM' is mounted at the same key as HKLM\\SYSTEM of WindowsImage 'img'"
        ),
        "{log}"
    );
    // Elsewhere, a HiveFile line adds a hive to the image's.
    let c = conf(
        &env,
        " RegValue 'HKLM\\OTHER\\Select\\*'\n HiveFile 'HKLM\\OTHER' 'other/SYSTEM'\n",
    );
    let log = env.once(&c);
    assert!(
        count_under(&baseline(&env), "HKLM\\OTHER\\Select") >= 4,
        "{log}"
    );
}

#[test]
fn user_with_hive_files_is_a_sid() {
    let env = Env::new();
    copy(&env, &[("dfwinreg/NTUSER.DAT", "NTUSER.DAT")]);
    let write = |user: &str| {
        env.write(
            "h.conf",
            &format!(
                "CacheDir cache\n<Input regmon>\n Module im_regmon\n RegValue 'HKCU\\*'\n\
                 HiveFile 'HKU\\{BOB}' 'NTUSER.DAT'\n User '{user}'\n</Input>\n"
            ),
        );
        verify(&env, "h.conf")
    };
    let (ok, log) = write(BOB);
    assert!(ok, "{log}");
    let (ok, log) = write("bob");
    assert!(!ok, "{log}");
    assert!(
        log.contains("h.conf:6: User 'bob' is not a SID; without a WindowsImage"),
        "{log}"
    );
}

/// `HKCU` with a `User` reads that user's hive: the same values as the
/// user's `HKU\<SID>`, named as the pattern writes them.
#[test]
fn hkcu_with_a_user_reads_that_users_hive() {
    let count = |pattern: &str, user: &str| {
        let env = Env::new();
        volume(&env, true);
        let c = conf(
            &env,
            &format!(" RegValue '{pattern}'\n Recursive TRUE\n{user}"),
        );
        let log = env.once(&c);
        let root = pattern.trim_end_matches("\\*");
        (count_under(&baseline(&env), root), log)
    };
    let (hkcu, log) = count("HKCU\\Software\\*", " User 'alice'\n");
    let (hku, _) = count(&format!("HKU\\{ALICE}\\Software\\*"), "");
    assert!(hkcu > 100, "{hkcu} values under HKCU\\Software\n{log}");
    assert_eq!(hkcu, hku, "HKCU is alice's hive");
}
