//! Arbitrary text as an nxlog.conf: parse and validate it as `regmon --verify`
//! does (`nxconf::parse_str`), and when it validates, run every compiled Exec
//! program (each module's Exec and each Schedule's) on a sample change event,
//! as the runtime does per event. Neither may panic, hang or run out of memory.

#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use nxconf::{CollectingContext, Record, Value, Zone};

/// A CHANGE event with the fields regmon's events carry (event/mod.rs).
fn sample() -> Record {
    let t = Utc
        .with_ymd_and_hms(2024, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or_default();
    let mut r = Record::new();
    r.set("EventTime", Value::DateTime(t));
    r.set("EventReceivedTime", Value::DateTime(t));
    r.set("Hostname", "host");
    r.set("EventType", "CHANGE");
    r.set("Message", "registry value changed");
    r.set("Severity", "WARNING");
    r.set("SeverityValue", 3i64);
    r.set("SourceModuleName", "regmon");
    r.set("SourceModuleType", "im_regmon");
    r.set("RegistryValueName", r"HKLM\SOFTWARE\Policies\Corp\Proxy");
    r.set("PrevValueSize", 22i64);
    r.set("ValueSize", 8i64);
    r.set("DigestName", "SHA1");
    r.set("PrevDigest", "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709");
    r.set("Digest", "2FD4E1C67A2D28FCED849EE1BB76E7391B93EB12");
    r.set("RegistryValueType", "REG_SZ");
    r.set("PrevRegistryValueType", "REG_DWORD");
    r.set("ValueData", Value::Binary(vec![0x68, 0, 0x69, 0, 0, 0]));
    r.set(
        "Tags",
        Value::Array(vec![Value::String("a".into()), Value::Integer(1)]),
    );
    r
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `include` reads files (it could name /dev/zero); the file system is not
    // what this target exercises, so such inputs are skipped.
    if text.to_ascii_lowercase().contains("include") {
        return;
    }
    let Ok(config) = nxconf::parse_str(text, "/nonexistent/fuzz.conf") else {
        return;
    };
    let mut ctx = CollectingContext {
        hostname: Some("host".into()),
        now: Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 1).single(),
        zone: chrono::FixedOffset::east_opt(0).map(Zone::Fixed),
        ..CollectingContext::default()
    };
    for m in &config.modules {
        let programs = m.exec.iter().chain(m.schedules.iter().map(|s| &s.exec));
        for p in programs {
            let mut r = sample();
            let _ = p.run(&mut r, &mut ctx);
            let _ = r.to_json();
            let _ = r.to_raw_event_kv();
        }
    }
});
