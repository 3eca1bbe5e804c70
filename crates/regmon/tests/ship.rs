//! Shipping events (issue 14): the real binary sending over om_tcp and
//! om_udp to a real rsyslog started by the test (what rsyslog PARSED is
//! checked, not only that bytes came), GELF to small receivers here, and
//! the faults: a first host refused, a receiver down at start and
//! restarted, a refused port, an unresolvable host, a slow reader. Every
//! event is counted at the receiver. Network: 127.0.0.1 only.

mod common;

use common::rsyslog::Rsyslog;
use common::*;
use hive::write::KeyNode;
use hive::ValueType;
use std::collections::BTreeSet;
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

/// A SOFTWARE hive whose key Watched holds `n` DWORD values set to `gen`.
fn hive(env: &Env, n: usize, gen: u32) {
    let mut root = KeyNode::new("ROOT");
    let k = root.key_mut("Watched");
    for i in 0..n {
        k.set_value(&format!("V{i:05}"), ValueType::DWORD, dword(gen));
    }
    env.write_hive("SOFTWARE", &root);
}

/// im_regmon over Watched plus `outputs` (blocks) routed from it.
fn conf(env: &Env, scan_interval: u32, outputs: &str, names: &str) -> String {
    let text = format!(
        "<Input regmon>\n Module im_regmon\n HiveFile 'HKLM\\SOFTWARE' 'SOFTWARE'\n \
         RegValue 'HKLM\\SOFTWARE\\Watched\\*'\n ScanInterval {scan_interval}\n</Input>\n\
         {outputs}<Route r>\n Path regmon => {names}\n</Route>\n"
    );
    env.write("regmon.conf", &text);
    "regmon.conf".into()
}

/// Output Exec that makes `$raw_event` RFC 5424 text with `app` as
/// APP-NAME (xm_syslog's to_syslog_ietf() is another part of the issue).
fn syslog_exec(app: &str) -> String {
    format!(
        " Exec $raw_event = '<12>1 2024-05-01T10:00:00.000000Z WS01 {app} - ' + $EventType + \
         ' [NXLOG@14506 EventType=\"' + $EventType + '\"] ' + $RegistryValueName;\n"
    )
}

fn value_names(msgs: &[serde_json::Value], app: &str) -> Vec<String> {
    msgs.iter()
        .filter(|m| m["app_name"] == app)
        .map(|m| m["msg"].as_str().unwrap_or_default().trim().to_string())
        .collect()
}

fn expected(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("HKLM\\SOFTWARE\\Watched\\V{i:05}"))
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// --once to rsyslog over TCP (LF lines and octet counting) and UDP:
/// every event arrives once, with the PRI, timestamp, host, app-name,
/// msgid and structured data rsyslog parsed.
#[test]
fn once_to_rsyslog_over_tcp_and_udp() {
    let rs = Rsyslog::start_new();
    let env = Env::new();
    // UDP has no flow control: a burst larger than rsyslog's socket
    // buffer (rmem_max, ~200 KiB here, about 160 small datagrams) is
    // dropped by the receiving kernel, and no sender can know.
    let n = 100;
    hive(&env, n, 1);
    let outputs = format!(
        "<Output lines>\n Module om_tcp\n Host 127.0.0.1\n Port {tcp}\n{a}</Output>\n\
         <Output counted>\n Module om_tcp\n Host 127.0.0.1:{tcp}\n OutputType Syslog_TLS\n{b}</Output>\n\
         <Output dgram>\n Module om_udp\n Host 127.0.0.1:{udp}\n{c}</Output>\n",
        tcp = rs.tcp_port,
        udp = rs.udp_port,
        a = syslog_exec("lines"),
        b = syslog_exec("counted"),
        c = syslog_exec("dgram"),
    );
    let c = conf(&env, 0, &outputs, "lines, counted, dgram");
    env.once(&c);
    hive(&env, n, 2);
    env.once(&c);
    let msgs = rs.wait_for(3 * n, Duration::from_secs(30));
    assert_eq!(
        msgs.len(),
        3 * n,
        "{:?}",
        ["lines", "counted", "dgram"].map(|a| value_names(&msgs, a).len())
    );
    for app in ["lines", "counted", "dgram"] {
        assert_eq!(sorted(value_names(&msgs, app)), expected(n), "{app}");
    }
    let m = &msgs[0];
    assert_eq!(m["pri"], "12", "{m}");
    assert_eq!(m["facility"], "1", "{m}");
    assert_eq!(m["severity"], "4", "{m}");
    assert_eq!(m["hostname"], "WS01", "{m}");
    assert_eq!(m["procid"], "-", "{m}");
    assert_eq!(m["msgid"], "CHANGE", "{m}");
    assert_eq!(m["sd"], "[NXLOG@14506 EventType=\"CHANGE\"]", "{m}");
    assert!(
        m["timestamp"]
            .as_str()
            .unwrap_or_default()
            .starts_with("2024-05-01T10:00:00"),
        "{m}"
    );
}

/// The first Host refuses: the events go to the second.
#[test]
fn failover_to_the_second_host() {
    let rs = Rsyslog::start_new();
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = Env::new();
    hive(&env, 50, 1);
    let outputs = format!(
        "<Output t>\n Module om_tcp\n Host 127.0.0.1:{closed}\n Host 127.0.0.1:{}\n{}</Output>\n",
        rs.tcp_port,
        syslog_exec("t")
    );
    let c = conf(&env, 0, &outputs, "t");
    env.once(&c);
    hive(&env, 50, 2);
    let log = env.once(&c);
    assert!(log.contains("failed over to 127.0.0.1:"), "{log}");
    let msgs = rs.wait_for(50, Duration::from_secs(20));
    assert_eq!(sorted(value_names(&msgs, "t")), expected(50));
}

/// A receiver down at start gets every event once it starts (after the
/// backoff); stopped and started again while regmon runs, it gets the
/// next events too; nothing twice.
#[test]
fn receiver_down_at_start_then_restarted() {
    let mut rs = Rsyslog::new();
    let env = Env::new();
    let n = 200;
    hive(&env, n, 1);
    let outputs = format!(
        "<Output t>\n Module om_tcp\n Host 127.0.0.1:{}\n{}</Output>\n",
        rs.tcp_port,
        syslog_exec("t")
    );
    let c = conf(&env, 1, &outputs, "t");
    let mut child = env.spawn(&c, "regmon.log");
    assert!(wait_for(Duration::from_secs(20), || env
        .read("regmon.log")
        .contains("baseline built")));
    hive(&env, n, 2);
    assert!(
        wait_for(Duration::from_secs(20), || env
            .read("regmon.log")
            .contains("reconnecting in")),
        "{}",
        env.read("regmon.log")
    );
    rs.start();
    let msgs = rs.wait_for(n, Duration::from_secs(40));
    assert_eq!(sorted(value_names(&msgs, "t")), expected(n));

    // Stopped while the connection is idle, then events while it is down.
    rs.stop();
    hive(&env, n, 3);
    std::thread::sleep(Duration::from_secs(3));
    rs.start();
    let msgs = rs.wait_for(2 * n, Duration::from_secs(40));
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(20));
    let got = value_names(&msgs, "t");
    assert_eq!(got.len(), 2 * n, "{}", env.read("regmon.log"));
    let mut want = expected(n);
    want.extend(expected(n));
    assert_eq!(sorted(got), sorted(want));
}

/// A refused port and an unresolvable host: --once fails saying why, and
/// the events stay queued for the next run.
#[test]
fn refused_port_and_unresolvable_host_keep_events() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (host, says) in [
        (format!("127.0.0.1:{closed}"), "refused".to_string()),
        (
            "nowhere.invalid:514".to_string(),
            "cannot resolve 'nowhere.invalid'".to_string(),
        ),
    ] {
        let env = Env::new();
        hive(&env, 10, 1);
        let outputs = format!("<Output t>\n Module om_tcp\n Host {host}\n</Output>\n");
        let c = conf(&env, 0, &outputs, "t");
        env.once(&c);
        hive(&env, 10, 2);
        let out = env.run(&["-c", &c, "--once"]);
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{log}");
        assert!(log.contains(&says), "{log}");
        assert!(log.contains("10 events stay queued"), "{log}");
        // The receiver appears: the next run delivers them.
        if host.starts_with("127.") {
            let l = TcpListener::bind(("127.0.0.1", closed)).unwrap();
            let reader = std::thread::spawn(move || {
                let (mut s, _) = l.accept().unwrap();
                let mut text = String::new();
                s.read_to_string(&mut text).unwrap();
                text
            });
            env.once(&c);
            let text = reader.join().unwrap();
            assert_eq!(text.lines().count(), 10, "{text}");
        }
    }
}

/// A reader that takes its time (small buffer, pauses): writes wait for
/// it, and every event arrives in order.
#[test]
fn slow_receiver_loses_nothing() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut all = Vec::new();
        let mut buf = [0u8; 2048];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
            std::thread::sleep(Duration::from_micros(300));
        }
        String::from_utf8(all).unwrap()
    });
    let env = Env::new();
    let n = 3000;
    hive(&env, n, 1);
    let outputs = format!(
        "<Output t>\n Module om_tcp\n Host 127.0.0.1:{port}\n Exec $raw_event = $RegistryValueName;\n</Output>\n"
    );
    let c = conf(&env, 0, &outputs, "t");
    env.once(&c);
    hive(&env, n, 2);
    env.once(&c);
    let text = reader.join().unwrap();
    let got: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(sorted(got), expected(n));
}

/// Reassembles GELF UDP datagrams (chunked or whole) and inflates them.
fn gelf_udp_messages(sock: &UdpSocket, n: usize) -> Vec<serde_json::Value> {
    use std::collections::HashMap;
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut parts: HashMap<Vec<u8>, Vec<Option<Vec<u8>>>> = HashMap::new();
    let mut out = Vec::new();
    let mut chunked = 0;
    let mut buf = vec![0u8; 65536];
    while out.len() < n {
        let len = sock.recv(&mut buf).expect("a GELF datagram within 20 s");
        let d = &buf[..len];
        let whole = if d[..2] == [0x1e, 0x0f] {
            let (id, seq, count) = (d[2..10].to_vec(), d[10] as usize, d[11] as usize);
            let slots = parts.entry(id.clone()).or_insert_with(|| vec![None; count]);
            slots[seq] = Some(d[12..].to_vec());
            if slots.iter().any(Option::is_none) {
                continue;
            }
            chunked += 1;
            parts
                .remove(&id)
                .unwrap()
                .into_iter()
                .flatten()
                .flatten()
                .collect()
        } else {
            d.to_vec()
        };
        let mut json = String::new();
        flate2::read::ZlibDecoder::new(&whole[..])
            .read_to_string(&mut json)
            .unwrap();
        out.push(serde_json::from_str(&json).unwrap());
    }
    assert!(chunked > 0, "no message needed chunks");
    out
}

/// GELF over UDP (zlib; a large event chunked) and TCP (NUL-terminated):
/// the JSON a GELF receiver gets.
#[test]
fn gelf_over_udp_and_tcp() {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let (up, tp) = (
        udp.local_addr().unwrap().port(),
        l.local_addr().unwrap().port(),
    );
    let tcp_reader = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        all
    });
    let env = Env::new();
    let n = 20;
    // One value with a long, incompressible name: its GELF message needs chunks.
    let mut x = 88172645463325252u64;
    let long: String = (0..16000)
        .map(|_| {
            // xorshift: letters zlib cannot squeeze below 8 KiB
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect();
    let write = |gen: u32| {
        let mut root = KeyNode::new("ROOT");
        let k = root.key_mut("Watched");
        for i in 0..n {
            k.set_value(&format!("V{i:05}"), ValueType::DWORD, dword(gen));
        }
        k.set_value(&long, ValueType::DWORD, dword(gen));
        env.write_hive("SOFTWARE", &root);
    };
    write(1);
    let outputs = format!(
        "<Extension gelf>\n Module xm_gelf\n</Extension>\n\
         <Output gu>\n Module om_udp\n Host 127.0.0.1:{up}\n OutputType GELF_UDP\n</Output>\n\
         <Output gt>\n Module om_tcp\n Host 127.0.0.1:{tp}\n OutputType GELF_TCP\n</Output>\n"
    );
    let c = conf(&env, 0, &outputs, "gu, gt");
    env.once(&c);
    write(2);
    env.once(&c);
    let udp_msgs = gelf_udp_messages(&udp, n + 1);
    let tcp_bytes = tcp_reader.join().unwrap();
    assert_eq!(tcp_bytes.last(), Some(&0u8));
    let tcp_msgs: Vec<serde_json::Value> = tcp_bytes
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| serde_json::from_slice(p).unwrap())
        .collect();
    assert_eq!(tcp_msgs.len(), n + 1);
    for msgs in [&udp_msgs, &tcp_msgs] {
        let names: BTreeSet<String> = msgs
            .iter()
            .map(|m| m["_RegistryValueName"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names.len(), n + 1);
        assert!(names.contains(&format!("HKLM\\SOFTWARE\\Watched\\{long}")));
        let m = &msgs[0];
        assert_eq!(m["version"], "1.1", "{m}");
        assert_eq!(m["level"], 4, "{m}");
        assert_eq!(m["_EventType"], "CHANGE", "{m}");
        assert!(m["host"].as_str().is_some_and(|h| !h.is_empty()), "{m}");
        assert!(m["timestamp"].as_f64().is_some(), "{m}");
        // The default ShortMessageLength: 64 characters of $raw_event.
        assert_eq!(
            m["short_message"].as_str().unwrap().chars().count(),
            64,
            "{m}"
        );
    }
}
