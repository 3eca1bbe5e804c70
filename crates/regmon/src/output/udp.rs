//! om_udp: one datagram per event (GELF_UDP: zlib, chunked when larger
//! than a datagram). UDP has no receipt: an event is done once the kernel
//! took its datagram; a receiver that is down is noticed only through the
//! ICMP "port unreachable" a connected socket reports on a later send.

use super::net::{self, Hosts};
use super::tcp::frame;
use super::{gelf, Output, OutputError, Sent, Sink, StreamSink};
use nxconf::{HostPort, Module, Net, OutputType, Record};
use std::net::UdpSocket;

/// The largest UDP payload (IPv4).
const MAX_UDP: usize = 65_507;

pub struct UdpOutput {
    name: String,
    net: Net,
    sock_buf_size: Option<usize>,
    hosts: Hosts,
    sock: Option<(UdpSocket, HostPort)>,
    hostname: String,
    /// GELF chunked message ids: a random start, then counting.
    next_id: u64,
}

impl UdpOutput {
    pub fn new(name: &str, net: Net, sock_buf_size: Option<usize>) -> Self {
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        UdpOutput {
            name: name.to_string(),
            hosts: Hosts::new(net.hosts.clone()),
            net,
            sock_buf_size,
            sock: None,
            hostname: crate::event::short_hostname(),
            next_id: u64::from_le_bytes(seed),
        }
    }

    /// The datagrams of one event, or why it cannot be sent at all.
    fn datagrams(&mut self, event: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        if let OutputType::GelfUdp(_) = self.net.output_type {
            self.next_id = self.next_id.wrapping_add(1);
            return gelf::datagrams(&gelf::compress(event), self.next_id);
        }
        let mut d = Vec::with_capacity(event.len() + 8);
        frame(&self.net.output_type, event, &mut d);
        if d.len() > MAX_UDP {
            return Err(format!(
                "event of {} bytes is larger than a UDP datagram ({MAX_UDP} bytes)",
                d.len()
            ));
        }
        Ok(vec![d])
    }
}

impl StreamSink for UdpOutput {
    fn send(&mut self, events: &[&[u8]]) -> Sent {
        let mut sent = Sent::default();
        if self.sock.is_none() {
            let (local, buf) = (self.net.local_port, self.sock_buf_size);
            match self
                .hosts
                .connect(&self.name, |a, _| net::udp(a, local, buf))
            {
                Ok(s) => self.sock = Some(s),
                Err(e) => {
                    sent.error = Some(e);
                    return sent;
                }
            }
        }
        for (i, ev) in events.iter().enumerate() {
            let grams = match self.datagrams(ev) {
                Ok(g) => g,
                Err(why) => {
                    sent.rejected.push((i, why));
                    sent.done = i + 1;
                    continue;
                }
            };
            let Some((sock, peer)) = &self.sock else {
                return sent;
            };
            for g in &grams {
                let r = loop {
                    match sock.send(g) {
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        r => break r,
                    }
                };
                if let Err(e) = r {
                    // Refused (ICMP from an earlier datagram), unreachable,
                    // no buffer: this event and the rest wait. A chunked
                    // message cut here is sent whole again later.
                    sent.error = Some(OutputError {
                        output: self.name.clone(),
                        what: format!("cannot send to {peer}"),
                        source: Some(e),
                    });
                    self.sock = None;
                    return sent;
                }
            }
            sent.done = i + 1;
        }
        sent
    }
}

impl Output for UdpOutput {
    fn name(&self) -> &str {
        &self.name
    }

    fn payload(&self, rec: &Record, raw_event: String) -> Vec<u8> {
        super::gelf::payload(&self.net, &self.hostname, rec, raw_event)
    }

    fn sink(&mut self) -> Sink<'_> {
        Sink::Stream(self)
    }

    fn flush(&mut self) {
        self.sock = None;
    }
}

/// om_udp from its module.
pub fn build(m: &Module) -> Option<Box<dyn Output>> {
    let nxconf::ModuleSettings::OmUdp(o) = &m.settings else {
        return None;
    };
    Some(Box::new(UdpOutput::new(
        &m.name,
        o.net.clone(),
        o.sock_buf_size,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(port: u16, t: OutputType) -> UdpOutput {
        let net = Net {
            hosts: vec![HostPort {
                host: "127.0.0.1".into(),
                port,
            }],
            local_port: None,
            output_type: t,
            tcp_no_delay: false,
        };
        UdpOutput::new("u", net, None)
    }

    #[test]
    fn one_datagram_per_event_and_oversize_rejected() {
        let r = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = r.local_addr().unwrap().port();
        let mut o = out(port, OutputType::Dgram);
        let big = vec![b'x'; MAX_UDP + 1];
        let s = o.send(&[b"one", &big, b"two"]);
        assert!(s.error.is_none(), "{:?}", s.error);
        assert_eq!(s.done, 3);
        assert_eq!(s.rejected.len(), 1);
        assert_eq!(s.rejected[0].0, 1);
        let mut buf = [0u8; 100];
        let n = r.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"one");
        let n = r.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"two");
    }

    #[test]
    fn a_closed_port_keeps_events_queued() {
        let port = {
            let r = UdpSocket::bind("127.0.0.1:0").unwrap();
            r.local_addr().unwrap().port()
        };
        let mut o = out(port, OutputType::Dgram);
        // The first datagram goes (UDP cannot know); the ICMP reply makes a
        // later send fail, and what is left stays queued.
        let mut done = 0;
        for _ in 0..20 {
            let s = o.send(&[b"a", b"b", b"c"]);
            done += s.done;
            if s.error.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(done < 60, "no error noticed");
    }
}
