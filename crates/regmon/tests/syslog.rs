//! xm_syslog end to end: registry changes written through om_file with
//! `to_syslog_ietf()`, the Logentries rewrite of its `NXLOG@14506` SD-ID,
//! and `to_syslog_snare()`'s event counter, compared byte for byte with
//! what the same events' to_json() and default `$raw_event` say (time and
//! host differ per run, so they are read from there).

mod common;

use common::*;
use hive::write::{KeyNode, ValueNode};
use hive::ValueType;

/// `HKLM\SOFTWARE\P` with DWORD `a` and string `b`.
fn tree(generation: u32) -> KeyNode {
    let mut root = KeyNode::new("ROOT");
    let p = root.key_mut("P");
    p.values.push(ValueNode {
        name: "a".encode_utf16().collect(),
        value_type: ValueType::DWORD,
        data: dword(generation),
    });
    p.values.push(ValueNode {
        name: "b".encode_utf16().collect(),
        value_type: ValueType::SZ,
        data: utf16z(&format!("text {generation}")),
    });
    root
}

fn conf(env: &Env) -> String {
    let out = |name: &str, exec: &str| {
        format!(
            "<Output {name}>\n Module om_file\n File '{}'\n{exec}\n</Output>\n",
            env.abs(&format!("{name}.log"))
        )
    };
    let text = format!(
        "<Extension json>\n Module xm_json\n</Extension>\n\
         <Extension syslog>\n Module xm_syslog\n SnareDelimiter |\n</Extension>\n\
         <Input regmon>\n Module im_regmon\n HiveFile 'HKLM\\SOFTWARE' 'SOFTWARE'\n RegValue 'HKLM\\SOFTWARE\\P\\*'\n</Input>\n\
         {}{}{}{}{}\
         <Route r>\n Path regmon => js, raw, ietf, le, snare\n</Route>\n",
        out("js", " Exec to_json();"),
        out("raw", ""),
        out("ietf", " Exec to_syslog_ietf();"),
        out(
            "le",
            " Exec to_syslog_ietf(); $raw_event = replace($raw_event, 'NXLOG@14506', 'TOKEN@41506 tag=\"x\"] [', 1);"
        ),
        out("snare", " Exec to_syslog_snare();"),
    );
    env.write("regmon.conf", &text);
    "regmon.conf".into()
}

/// `regmon --once` in a zone with a half-hour offset, so the timestamps'
/// offsets are exercised (`Asia/Kolkata`, +05:30, no DST; needs tzdata).
fn once(env: &Env, conf: &str) {
    let out = env
        .cmd(&["-c", conf, "--once"])
        .env("TZ", "Asia/Kolkata")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "--once failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn raw_lines(env: &Env, rel: &str) -> Vec<String> {
    env.read(rel).lines().map(str::to_string).collect()
}

/// The SD parameter of a JSON field: strings escaped, numbers as they are.
fn sd_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s
            .chars()
            .flat_map(|c| {
                let esc = matches!(c, '\\' | '"' | ']').then_some('\\');
                esc.into_iter().chain([c])
            })
            .collect(),
        other => other.to_string(),
    }
}

#[test]
fn ietf_snare_and_the_logentries_rewrite() {
    let env = Env::new();
    env.write_hive("SOFTWARE", &tree(1));
    let conf = conf(&env);
    once(&env, &conf);
    env.write_hive("SOFTWARE", &tree(2));
    once(&env, &conf);

    let json = raw_lines(&env, "js.log");
    let raw = raw_lines(&env, "raw.log");
    let ietf = raw_lines(&env, "ietf.log");
    let le = raw_lines(&env, "le.log");
    let snare = raw_lines(&env, "snare.log");
    assert_eq!(json.len(), 2, "{json:?}");
    for lines in [&raw, &ietf, &le, &snare] {
        assert_eq!(lines.len(), 2, "{lines:?}");
    }
    for (i, (j, name)) in json.iter().zip(["a", "b"]).enumerate() {
        let e: serde_json::Value = serde_json::from_str(j).unwrap();
        let f = |k: &str| e[k].as_str().unwrap_or_else(|| panic!("{k} in {j}"));
        // to_json()'s local time is RFC 5424's timestamp (six digits, offset).
        let time = f("EventTime");
        assert_eq!(time.len(), 32, "{time}");
        // (Windows ignores TZ.)
        assert!(cfg!(windows) || time.ends_with("+05:30"), "{time}");
        let received = f("EventReceivedTime")[..19].replace('T', " ");
        let host = f("Hostname");
        // The fields in regmon's order, less CE's ignore list.
        let sd: Vec<String> = [
            "EventType",
            "RegistryValueName",
            "PrevValueSize",
            "ValueSize",
            "DigestName",
            "PrevDigest",
            "Digest",
        ]
        .iter()
        .map(|k| format!("{k}=\"{}\"", sd_value(&e[*k])))
        .chain([format!("EventReceivedTime=\"{received}\"")])
        .chain(
            [
                "SourceModuleName",
                "SourceModuleType",
                "RegistryValueType",
                "PrevRegistryValueType",
            ]
            .iter()
            .map(|k| format!("{k}=\"{}\"", sd_value(&e[*k]))),
        )
        .collect();
        assert_eq!(f("RegistryValueName"), format!("HKLM\\SOFTWARE\\P\\{name}"));
        let sd = sd.join(" ");
        assert!(
            sd.contains(&format!(
                "RegistryValueName=\"HKLM\\\\SOFTWARE\\\\P\\\\{name}\""
            )),
            "{sd}"
        );
        let message = &raw[i];
        assert_eq!(
            ietf[i],
            format!("<12>1 {time} {host} - - - [NXLOG@14506 {sd}] {message}")
        );
        assert_eq!(
            le[i],
            format!("<12>1 {time} {host} - - - [TOKEN@41506 tag=\"x\"] [ {sd}] {message}")
        );
        // Snare: the counter is the output's event count in this run.
        let fields: Vec<&str> = snare[i].split('|').collect();
        assert_eq!(fields.len(), 15, "{}", snare[i]);
        assert!(
            fields[0].starts_with("<12>") && fields[0].ends_with(&format!(" {host} MSWinEventLog"))
        );
        assert_eq!(&fields[1..4], ["2", "N/A", &(i + 1).to_string()]);
        assert_eq!(
            &fields[5..],
            ["N/A", "N/A", "N/A", "N/A", "CHANGE", host, "N/A", "", "N/A", "N/A"]
        );
        // Both dates are the event's local time: `Mmm dd hh:mm:ss` and
        // `Www Mmm DD hh:mm:ss YYYY`.
        let hms = &time[11..19];
        assert!(
            fields[0].contains(hms) && fields[4].contains(hms),
            "{}",
            snare[i]
        );
        assert!(
            fields[4].ends_with(&format!(" {}", &time[..4])),
            "{}",
            snare[i]
        );
    }
}
