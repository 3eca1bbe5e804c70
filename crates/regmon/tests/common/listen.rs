//! Small receivers for the tests, on free 127.0.0.1 ports: TCP lines (any
//! number of connections) and UDP datagrams (inflated when compressed),
//! kept in memory in arrival order, each by its own thread until the
//! receiver is dropped.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Whatever a receiver got: lines (TCP) or datagrams (UDP), as text.
#[derive(Clone, Default)]
pub struct Received(Arc<Mutex<Vec<String>>>);

impl Received {
    fn push(&self, s: String) {
        if let Ok(mut v) = self.0.lock() {
            v.push(s);
        }
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Waits (at most `limit`) until `n` items satisfy `pred`; returns all
    /// items received, a moment after (for duplicates to show).
    pub fn wait_for(&self, n: usize, limit: Duration, pred: impl Fn(&str) -> bool) -> Vec<String> {
        let start = Instant::now();
        while self.all().iter().filter(|s| pred(s)).count() < n && start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        self.all()
    }
}

/// A TCP listener collecting LF-terminated lines (CR stripped).
pub struct TcpLines {
    pub port: u16,
    pub got: Received,
    stop: Arc<AtomicBool>,
}

impl TcpLines {
    pub fn start() -> TcpLines {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind a TCP port");
        let port = l.local_addr().expect("local address").port();
        l.set_nonblocking(true).expect("nonblocking");
        let got = Received::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s) = (got.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((conn, _)) => {
                        let g = g.clone();
                        std::thread::spawn(move || {
                            conn.set_nonblocking(false).ok();
                            for line in BufReader::new(conn).lines() {
                                match line {
                                    Ok(l) => g.push(l.trim_end_matches('\r').to_string()),
                                    Err(_) => break,
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        TcpLines { port, got, stop }
    }
}

impl Drop for TcpLines {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A datagram as text; one starting with a zlib or gzip header (GELF over
/// UDP) inflated first.
fn inflated(d: &[u8]) -> String {
    use std::io::Read;
    let mut out = Vec::new();
    let ok = match d {
        [0x78, ..] => flate2::read::ZlibDecoder::new(d)
            .read_to_end(&mut out)
            .is_ok(),
        [0x1f, 0x8b, ..] => flate2::read::GzDecoder::new(d)
            .read_to_end(&mut out)
            .is_ok(),
        _ => false,
    };
    String::from_utf8_lossy(if ok { &out } else { d }).into_owned()
}

/// A UDP socket collecting datagrams (GELF's compressed ones inflated; a
/// chunked GELF message is not reassembled).
pub struct Datagrams {
    pub port: u16,
    pub got: Received,
    stop: Arc<AtomicBool>,
}

impl Datagrams {
    pub fn start() -> Datagrams {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
        let port = sock.local_addr().expect("local address").port();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let got = Received::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s) = (got.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !s.load(Ordering::Relaxed) {
                if let Ok(n) = sock.recv(&mut buf) {
                    g.push(inflated(&buf[..n]));
                }
            }
        });
        Datagrams { port, got, stop }
    }
}

impl Drop for Datagrams {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
