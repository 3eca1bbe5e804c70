//! om_http end to end, against the test receiver
//! (`tests/receivers/http_receiver.py`, on 127.0.0.1): the Elasticsearch
//! `_bulk`, Splunk HEC and Loki push shapes built in Exec, the batch modes,
//! compression, basic authentication, HTTPS, and faults (5xx, 429, a
//! refused event, a stall past the timeout, a receiver down at start, a
//! dead first URL), every event counted at the receiver.

mod common;

use common::http::{make_certs, HttpReceiver};
use common::*;
use hive::write::KeyNode;
use std::collections::BTreeMap;
use std::time::Duration;

/// Values changed per test: one event each.
const N: usize = 20;

fn tree(generation: u32) -> KeyNode {
    dword_tree(
        "Test",
        N as u32,
        |i| format!("v{i:02}"),
        |i| generation * 100 + i,
    )
}

/// A configuration watching `HKLM\SOFTWARE\Test` (baseline recorded by a
/// first `--once`), shipping through the given `<Output>` blocks (named
/// in `outputs`); then every value is changed, so the next scan has N
/// events. Returns the configuration's name.
fn setup(env: &Env, output_blocks: &str, outputs: &str, interval: u32) -> String {
    env.write_hive("SOFTWARE", &tree(1));
    let text = format!(
        "CacheDir '{}'\n<Extension json>\n Module xm_json\n</Extension>\n\
         <Input regmon>\n Module im_regmon\n HiveFile 'HKLM\\SOFTWARE' 'SOFTWARE'\n \
         RegValue 'HKLM\\SOFTWARE\\Test\\*'\n ScanInterval {interval}\n</Input>\n\
         {output_blocks}\n<Route r>\n Path regmon => {outputs}\n</Route>\n",
        env.abs("cache")
    );
    env.write("regmon.conf", &text);
    env.once("regmon.conf");
    env.write_hive("SOFTWARE", &tree(2));
    "regmon.conf".into()
}

/// The value names of received events (parsed from their JSON), counted.
fn names(events: &[serde_json::Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in events {
        let text = e["event"].as_str().expect("event text");
        let j: serde_json::Value =
            serde_json::from_str(text).unwrap_or_else(|err| panic!("{err}: {text}"));
        let name = j["RegistryValueName"].as_str().expect("name").to_string();
        *out.entry(name).or_default() += 1;
    }
    out
}

fn every_once() -> BTreeMap<String, usize> {
    (0..N)
        .map(|i| (format!("HKLM\\SOFTWARE\\Test\\v{i:02}"), 1))
        .collect()
}

fn on_path(events: &[serde_json::Value], path: &str) -> Vec<serde_json::Value> {
    events
        .iter()
        .filter(|e| e["path"] == path)
        .cloned()
        .collect::<Vec<_>>()
}

#[test]
fn elasticsearch_bulk_splunk_hec_and_loki_push_receive_every_event() {
    let env = Env::new();
    let rx = HttpReceiver::start(env.dir.path());
    let blocks = format!(
        "<Output es>\n Module om_http\n URL {}\n ContentType application/x-ndjson\n \
         BatchMode multiline\n \
         Exec $raw_event = '{{\"index\":{{\"_index\":\"regmon\"}}}}' + \"\\n\" + to_json();\n</Output>\n\
         <Output hec>\n Module om_http\n URL {}\n ContentType application/json\n \
         AddHeader Authorization: Splunk 11111111-2222-3333-4444-555555555555\n \
         Exec $raw_event = '{{\"sourcetype\":\"regmon\",\"event\":' + to_json() + '}}';\n</Output>\n\
         <Output loki>\n Module om_http\n URL {}\n ContentType application/json\n \
         Exec $raw_event = '{{\"streams\":[{{\"stream\":{{\"job\":\"regmon\"}},\"values\":[[\"' + \
         string(integer($EventTime)) + '000\",\"' + \
         replace(replace(to_json(), '\\', '\\\\'), '\"', '\\\"') + '\"]]}}]}}';\n</Output>\n",
        rx.url("/_bulk"),
        rx.url("/services/collector/event"),
        rx.url("/loki/api/v1/push"),
    );
    let conf = setup(&env, &blocks, "es, hec, loki", 0);
    let log = env.once(&conf);
    let got = rx.wait_events(3 * N, Duration::from_secs(10));
    for path in ["/_bulk", "/services/collector/event", "/loki/api/v1/push"] {
        let evs = on_path(&got, path);
        assert_eq!(names(&evs), every_once(), "{path}\n{log}");
        for e in &evs {
            assert_eq!(e["headers"]["user-agent"], "regmon", "{e}");
        }
    }
    let es = on_path(&got, "/_bulk");
    assert_eq!(es[0]["meta"]["action"]["index"]["_index"], "regmon");
    assert_eq!(es[0]["headers"]["content-type"], "application/x-ndjson");
    let hec = on_path(&got, "/services/collector/event");
    assert_eq!(
        hec[0]["headers"]["authorization"],
        "Splunk 11111111-2222-3333-4444-555555555555"
    );
    let loki = on_path(&got, "/loki/api/v1/push");
    assert_eq!(loki[0]["meta"]["labels"]["job"], "regmon");
    assert_eq!(loki[0]["meta"]["ts"].as_str().map(str::len), Some(19));
    // multiline: N events in ceil(N / 50) request; HEC and Loki: one each.
    let reqs = rx.requests();
    let count = |p: &str| reqs.iter().filter(|r| r["path"] == p).count();
    assert_eq!(count("/_bulk"), 1);
    assert_eq!(count("/services/collector/event"), N);
    assert_eq!(count("/loki/api/v1/push"), N);
}

#[test]
fn multipart_multiline_gzip_deflate_and_basic_auth() {
    let env = Env::new();
    let rx = HttpReceiver::start(env.dir.path());
    let blocks = format!(
        "<Output mp>\n Module om_http\n URL {}\n ContentType application/json\n \
         BatchMode multipart\n BatchSize 7\n AddHeader X-Part: yes\n Exec to_json();\n</Output>\n\
         <Output ml>\n Module om_http\n URL {}\n BatchMode multiline\n Compression gzip\n \
         HTTPBasicAuthUser elastic\n HTTPBasicAuthPassword 'pa:ss'\n Exec to_json();\n</Output>\n\
         <Output z>\n Module om_http\n URL {}\n Compression deflate\n Exec to_json();\n</Output>\n",
        rx.url("/mp"),
        rx.url("/ml"),
        rx.url("/z"),
    );
    let conf = setup(&env, &blocks, "mp, ml, z", 0);
    let log = env.once(&conf);
    let got = rx.wait_events(3 * N, Duration::from_secs(10));
    for p in ["/mp", "/ml", "/z"] {
        assert_eq!(names(&on_path(&got, p)), every_once(), "{p}\n{log}");
    }
    let mp = on_path(&got, "/mp");
    assert!(mp.iter().all(|e| e["shape"] == "multipart"
        && e["meta"]["x-part"] == "yes"
        && e["meta"]["content-type"] == "application/json"));
    let ml = on_path(&got, "/ml");
    assert_eq!(ml[0]["headers"]["content-encoding"], "gzip");
    // base64("elastic:pa:ss")
    assert_eq!(
        ml[0]["headers"]["authorization"],
        "Basic ZWxhc3RpYzpwYTpzcw=="
    );
    assert_eq!(
        on_path(&got, "/z")[0]["headers"]["content-encoding"],
        "deflate"
    );
    let reqs = rx.requests();
    let count = |p: &str| reqs.iter().filter(|r| r["path"] == p).count();
    assert_eq!(count("/mp"), N.div_ceil(7), "BatchSize 7");
    assert_eq!(count("/ml"), 1);
    assert_eq!(count("/z"), N);
}

/// Spawns the monitor, waits for `n` events at the receiver (bounded),
/// stops it; returns the events and the log.
fn run_until(
    env: &Env,
    conf: &str,
    rx: &HttpReceiver,
    n: usize,
    limit: Duration,
) -> (Vec<serde_json::Value>, String) {
    let mut child = env.spawn(conf, "run.log");
    rx.wait_events(n, limit);
    // Anything more (a duplicate) would come now.
    std::thread::sleep(Duration::from_millis(500));
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(20));
    (rx.received(), env.read("run.log"))
}

#[test]
fn server_errors_and_429_are_retried_with_backoff_and_every_event_arrives_once() {
    let env = Env::new();
    let rx = HttpReceiver::start(env.dir.path());
    rx.script(r#"[{"status": 500, "times": 2}, {"status": 429, "retry_after": 1, "times": 1}, {"status": 503, "times": 1}]"#);
    let blocks = format!(
        "<Output h>\n Module om_http\n URL {}\n BatchMode multiline\n Exec to_json();\n</Output>\n",
        rx.url("/ingest")
    );
    let conf = setup(&env, &blocks, "h", 3600);
    let (got, log) = run_until(&env, &conf, &rx, N, Duration::from_secs(40));
    assert_eq!(names(&got), every_once(), "{log}");
    assert!(log.contains("HTTP 500"), "{log}");
    assert!(log.contains("HTTP 429 (it asks to retry after 1)"), "{log}");
    assert!(
        log.contains("reconnecting in 4 seconds"),
        "backoff doubles: {log}"
    );
    let statuses: Vec<String> = rx
        .requests()
        .iter()
        .map(|r| r["status"].to_string())
        .collect();
    assert_eq!(statuses, ["500", "500", "429", "503", "200"]);
}

#[test]
fn a_refused_event_goes_to_the_dead_letter_file_and_the_rest_is_delivered() {
    let env = Env::new();
    let rx = HttpReceiver::start(env.dir.path());
    rx.script(r#"[{"reject": "Test\\\\v07", "status": 400}]"#);
    let blocks = format!(
        "<Output h>\n Module om_http\n URL {}\n Exec to_json();\n</Output>\n",
        rx.url("/ingest")
    );
    let conf = setup(&env, &blocks, "h", 0);
    // Refused events count as handled: --once succeeds.
    let log = env.once(&conf);
    let got = rx.wait_events(N - 1, Duration::from_secs(10));
    let mut want = every_once();
    want.remove("HKLM\\SOFTWARE\\Test\\v07");
    assert_eq!(names(&got), want, "{log}");
    let dead = env.read("cache/h.deadletter");
    assert_eq!(dead.lines().count(), 1, "{dead}");
    assert!(dead.contains("Test\\\\v07"), "{dead}");
    assert!(log.contains("HTTP 400"), "{log}");
    assert!(log.contains("h.deadletter"), "{log}");
}

#[test]
fn a_stall_past_the_response_timeout_is_retried_without_loss() {
    let env = Env::new();
    let rx = HttpReceiver::start(env.dir.path());
    // 12 s > the 10 s response timeout; the receiver then keeps the
    // events anyway: the retry duplicates them (at least once).
    rx.script(r#"[{"stall": 12, "times": 1}]"#);
    let blocks = format!(
        "<Output h>\n Module om_http\n URL {}\n BatchMode multiline\n Exec to_json();\n</Output>\n",
        rx.url("/ingest")
    );
    let conf = setup(&env, &blocks, "h", 3600);
    let (got, log) = run_until(&env, &conf, &rx, 2 * N, Duration::from_secs(40));
    let counts = names(&got);
    assert_eq!(counts.keys().len(), N, "{log}");
    assert!(
        counts.values().all(|&c| c == 2),
        "each event twice: {counts:?}"
    );
    assert!(log.contains("timed out"), "{log}");
}

#[test]
fn a_receiver_down_at_start_gets_everything_once_it_is_up() {
    let env = Env::new();
    // Learn a free port, then close it.
    let mut rx = HttpReceiver::start(env.dir.path());
    let port = rx.port;
    rx.stop();
    let blocks = format!(
        "<Output h>\n Module om_http\n URL http://127.0.0.1:{port}/ingest\n Exec to_json();\n</Output>\n"
    );
    let conf = setup(&env, &blocks, "h", 3600);
    let mut child = env.spawn(&conf, "run.log");
    assert!(wait_for(Duration::from_secs(10), || env
        .read("run.log")
        .contains("stay queued")));
    let rx = HttpReceiver::start_with(env.dir.path(), port, None);
    let got = rx.wait_events(N, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(20));
    let log = env.read("run.log");
    assert_eq!(names(&got), every_once(), "{log}");
    assert!(
        log.contains(&format!("POST http://127.0.0.1:{port}/ingest")),
        "{log}"
    );
}

#[test]
fn the_next_url_takes_over_when_the_first_is_down() {
    let env = Env::new();
    let mut dead = HttpReceiver::start(&env.path(""));
    let dead_port = dead.port;
    dead.stop();
    std::fs::create_dir_all(env.path("rx")).unwrap();
    let rx = HttpReceiver::start(&env.path("rx"));
    let blocks = format!(
        "<Output h>\n Module om_http\n URL http://127.0.0.1:{dead_port}/x\n URL {}\n \
         BatchMode multiline\n Exec to_json();\n</Output>\n",
        rx.url("/second")
    );
    let conf = setup(&env, &blocks, "h", 3600);
    let (got, log) = run_until(&env, &conf, &rx, N, Duration::from_secs(20));
    assert_eq!(names(&got), every_once(), "{log}");
    assert!(
        log.contains(&format!("next attempt to {}", rx.url("/second"))),
        "{log}"
    );
}

#[test]
fn https_with_a_trusted_ca_an_untrusted_one_and_allow_untrusted() {
    let env = Env::new();
    let (ca, cert, key) = make_certs(env.dir.path(), "testca");
    let (other_ca, _, _) = make_certs(env.dir.path(), "otherca");
    let rx = HttpReceiver::start_with(env.dir.path(), 0, Some((&cert, &key)));
    let block = |name: &str, tls: &str| {
        format!(
            "<Output {name}>\n Module om_http\n URL {}\n {tls}\n Exec to_json();\n</Output>\n",
            rx.url(&format!("/{name}"))
        )
    };
    // The wrong CA: refused, nothing sent (not even in clear text).
    let conf = setup(
        &env,
        &block("bad", &format!("HTTPSCAFile '{}'", other_ca.display())),
        "bad",
        0,
    );
    let out = env.run(&["-c", &conf, "--once"]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "POST {}: TLS handshake failed, nothing sent",
            rx.url("/bad")
        )),
        "{log}"
    );
    assert!(log.contains("UnknownIssuer"), "{log}");
    assert!(rx.requests().is_empty() && rx.received().is_empty());

    // The right CA, then AllowUntrusted without one: delivered.
    for (name, tls) in [
        ("good", format!("HTTPSCAFile '{}'", ca.display())),
        ("any", "HTTPSAllowUntrusted TRUE".to_string()),
    ] {
        let env = Env::new();
        let conf = setup(&env, &block(name, &tls), name, 0);
        let log = env.once(&conf);
        let got = on_path(
            &rx.wait_events(N, Duration::from_secs(10)),
            &format!("/{name}"),
        );
        assert_eq!(names(&got), every_once(), "{name}: {log}");
        rx.script("[]");
        std::fs::remove_file(&rx.events).ok();
    }
}
