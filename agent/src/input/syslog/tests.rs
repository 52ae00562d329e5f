//! Syslog input tests over real sockets: TCP backpressure (nothing dropped
//! while the ingest side is not taking messages), UDP drops counted, and
//! what a stop hands over.

use std::io::Write;
use std::time::{Duration, Instant};

use super::*;

/// A sink that keeps every line with its peer.
#[derive(Default)]
struct Rec {
    lines: Vec<(String, SocketAddr, Vec<&'static str>)>,
}

impl Sink for Rec {
    fn line(&mut self, l: Line<'_>) -> Result<(), InputError> {
        assert_eq!(l.stream, NO_POSITION);
        assert!(l.position.is_empty());
        let (key, peer) = l.peer.expect("a peer");
        assert_eq!(key, PEER_FIELD);
        self.lines.push((
            String::from_utf8(l.bytes.to_vec()).unwrap(),
            peer,
            l.flags.names().collect(),
        ));
        Ok(())
    }
    fn position(&mut self, _: &[u8], _: &[u8]) -> Result<(), InputError> {
        unreachable!("network inputs have no positions")
    }
    fn forget(&mut self, _: &[u8]) {}
    fn last_id(&self) -> u64 {
        self.lines.len() as u64
    }
}

fn input(tcp: bool, udp: bool) -> SyslogInput {
    let mut c = SyslogConfig::new("sys");
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    c.tcp_address = tcp.then_some(any);
    c.udp_address = udp.then_some(any);
    c.max_message_bytes = 1024;
    SyslogInput::new(c, Bell::new()).unwrap()
}

fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A sender writes far more than the channel and the socket buffers hold
/// while nobody polls: the channel fills, the connection stops being read,
/// and once polling resumes every message arrives, in order, none dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_waits_when_the_channel_is_full_and_drops_nothing() {
    let mut input = input(true, false);
    let addr = input.tcp_addr().unwrap();
    let total = 40_000;
    let sender = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let pad = "x".repeat(200);
        let mut buf = Vec::new();
        for n in 0..total {
            // Both framings, mixed.
            let m = format!("<13>Mar  7 10:01:02 h app: message {n} {pad}");
            if n % 2 == 0 {
                buf.extend_from_slice(format!("{} {m}", m.len()).as_bytes());
            } else {
                buf.extend_from_slice(format!("{m}\n").as_bytes());
            }
        }
        s.write_all(&buf).unwrap();
    });
    wait("a full channel", || input.rx.len() == CHANNEL_MESSAGES);
    let mut rec = Rec::default();
    while rec.lines.len() < total {
        input.poll(&mut rec, 64 << 10).unwrap();
        tokio::task::yield_now().await;
    }
    sender.join().unwrap();
    for (n, (line, peer, flags)) in rec.lines.iter().enumerate() {
        assert!(
            line.starts_with(&format!("<13>Mar  7 10:01:02 h app: message {n} ")),
            "{n}: {line}"
        );
        assert!(flags.is_empty());
        assert!(peer.ip().is_loopback());
    }
    let s = input.stats();
    assert_eq!((s.dropped, s.invalid, s.lines), (0, 0, total as u64));
    assert_eq!(s.requests, 1);
}

/// UDP cannot wait: datagrams arriving while the channel is full are
/// dropped and counted; the rest arrive. Every datagram that reached the
/// input is either delivered or counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_drops_only_when_full_and_counts_every_drop() {
    let mut input = input(false, true);
    let addr = input.udp_addr().unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let total = CHANNEL_MESSAGES + 500;
    for n in 0..total {
        sock.send_to(format!("<13>h app: datagram {n}\n").as_bytes(), addr)
            .unwrap();
        if n % 100 == 99 {
            // Let the input keep up, so the kernel's buffer never overflows.
            let seen = n as u64 + 1;
            wait("the datagrams so far", || {
                input.rx.len() as u64 + input.stats().dropped == seen
            });
        }
    }
    wait("every datagram", || {
        input.rx.len() as u64 + input.stats().dropped == total as u64
    });
    let mut rec = Rec::default();
    input.poll(&mut rec, usize::MAX).unwrap();
    assert_eq!(rec.lines.len(), CHANNEL_MESSAGES);
    assert_eq!(input.stats().dropped, 500);
    // The first ones made it, trailing newline removed.
    assert_eq!(rec.lines[0].0, "<13>h app: datagram 0");
    // Room again: the next datagram is delivered.
    sock.send_to(b"<13>h app: after", addr).unwrap();
    wait("the next datagram", || input.rx.len() == 1);
}

/// Stopping closes the listeners; what was received is still handed to the
/// last poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_closes_the_listener_and_the_last_poll_gets_what_was_read() {
    let mut input = input(true, false);
    let addr = input.tcp_addr().unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"<13>one\n5 <13>2").unwrap();
    wait("both messages", || input.rx.len() == 2);
    input.stop();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still listening"
    );
    let mut rec = Rec::default();
    input.poll(&mut rec, usize::MAX).unwrap();
    let texts: Vec<&str> = rec.lines.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(texts, ["<13>one", "<13>2"]);
}

/// A reload drops the input and starts a new one on the same addresses at
/// once: the sockets must be closed by then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_addresses_are_free_again_once_the_input_is_dropped() {
    let first = input(true, true);
    let mut c = SyslogConfig::new("sys");
    c.tcp_address = first.tcp_addr();
    c.udp_address = first.udp_addr();
    drop(first);
    let again = SyslogInput::new(c, Bell::new()).unwrap();
    let mut s = std::net::TcpStream::connect(again.tcp_addr().unwrap()).unwrap();
    s.write_all(b"<13>again\n").unwrap();
}
