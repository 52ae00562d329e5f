//! End-to-end tests of the syslog input with the real `auditship agent`:
//! the real `logger` (util-linux) sending over UDP and TCP, RFC 3164 and
//! RFC 5424, with and without octet counting; and a rustls client sending
//! over mutual TLS (RFC 5425) with certificates generated here.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{free_port, make_pki, output_events, wait_for, Proc};
use serde_json::Value;

/// A free UDP port on 127.0.0.1.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(dir: &Path, keys: &str) -> PathBuf {
    let cfg = dir.join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
state_dir = "{state}"
shutdown_grace = "5s"
heartbeat = "0s"

[[inputs]]
type = "syslog"
name = "sys"
{keys}

[[outputs]]
type = "file"
path = "{out}"
"#,
            state = dir.join("state").display(),
            out = dir.join("out.ndjson").display(),
        ),
    )
    .unwrap();
    cfg
}

/// Waits until the agent accepts TCP connections on `port`.
fn wait_listening(port: u16) {
    wait_for("the syslog listener", Duration::from_secs(30), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// The sshd message of combination `c`, message `n`.
fn message(c: usize, n: usize) -> String {
    format!(
        "Failed password for invalid user c{c}u{n} from 10.9.{c}.{n} port {} ssh2",
        2000 + n
    )
}

/// Every way `logger` can send to a remote server.
const COMBOS: [&[&str]; 6] = [
    &["--tcp", "--rfc3164"],
    &["--tcp", "--rfc3164", "--octet-count"],
    &["--tcp", "--rfc5424"],
    &["--tcp", "--rfc5424", "--octet-count"],
    &["--udp", "--rfc3164"],
    &["--udp", "--rfc5424"],
];

const PER_COMBO: usize = 25;

/// `logger` sends 25 failed sshd logins in each combination of transport,
/// format and framing (one TCP connection or 25 datagrams each); each
/// arrives once, parsed by the auth parser, with the sender in `source` and
/// `fields.syslog_peer`.
#[test]
fn logger_over_udp_and_tcp_in_every_format_and_framing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (tcp, udp) = (free_port(), free_udp_port());
    let cfg = config(
        dir,
        &format!("tcp_address = \"127.0.0.1:{tcp}\"\nudp_address = \"{udp}\""),
    );
    let agent = Proc::start(
        &["agent", "--config", cfg.to_str().unwrap()],
        &dir.join("agent.log"),
    );
    wait_listening(tcp);
    for (c, args) in COMBOS.iter().enumerate() {
        let port = if args[0] == "--udp" { udp } else { tcp };
        let mut logger = Command::new("logger")
            .args(["--server", "127.0.0.1", "--port", &port.to_string()])
            .args(*args)
            .args(["-t", "sshd", "-i"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("logger (util-linux) is installed");
        let lines: String = (0..PER_COMBO).map(|n| message(c, n) + "\n").collect();
        logger
            .stdin
            .take()
            .unwrap()
            .write_all(lines.as_bytes())
            .unwrap();
        assert!(logger.wait().unwrap().success(), "logger {args:?} failed");
    }
    let out = dir.join("out.ndjson");
    let total = COMBOS.len() * PER_COMBO;
    wait_for(
        "every message in the file output",
        Duration::from_secs(60),
        || output_events(&out).len() >= total,
    );
    assert_eq!(agent.term(), 0);
    let events = output_events(&out);
    assert_eq!(events.len(), total, "nothing twice");
    let by_user: HashMap<&str, &Value> = events
        .iter()
        .map(|e| {
            (
                e["actor"]["user"]
                    .as_str()
                    .expect("parsed as an sshd login"),
                e,
            )
        })
        .collect();
    for (c, args) in COMBOS.iter().enumerate() {
        for n in 0..PER_COMBO {
            let user = format!("c{c}u{n}");
            let e = by_user
                .get(user.as_str())
                .unwrap_or_else(|| panic!("{args:?}: message {n} missing"));
            let raw = e["raw"].as_str().unwrap();
            assert!(raw.starts_with("<13>"), "{args:?}: framing left in {raw:?}");
            assert!(raw.ends_with(&message(c, n)), "{args:?}: {raw:?}");
            assert_eq!(
                raw.starts_with("<13>1 "),
                args.contains(&"--rfc5424"),
                "{raw:?}"
            );
            assert_eq!(e["action"], "ssh_login");
            assert_eq!(e["outcome"], "failure");
            assert_eq!(e["src_ip"], format!("10.9.{c}.{n}"));
            assert_eq!(e["program"], "sshd");
            assert!(e["pid"].as_u64().is_some(), "{e}");
            assert!(e["ts"].as_str().is_some(), "{e}");
            assert!(e["host"].as_str().is_some_and(|h| !h.is_empty()), "{e}");
            assert_eq!(e["source"], "sys:127.0.0.1");
            let peer = e["fields"]["syslog_peer"].as_str().unwrap();
            assert!(peer.starts_with("127.0.0.1:"), "{peer}");
            assert_eq!(e["fields"]["syslog_facility"], "1");
            if args.contains(&"--rfc5424") {
                let sd = e["fields"]["syslog_structured_data"].as_str().unwrap();
                assert!(sd.contains("timeQuality"), "{sd}");
            }
        }
    }
}

/// A client with a certificate signed by the configured CA sends
/// octet-counted messages (RFC 5425), each written in two TLS records, then
/// one LF-framed; all arrive. A client without a certificate is refused in
/// the handshake, and what it wrote never arrives.
#[test]
fn mutual_tls_delivers_for_a_client_with_a_certificate_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pki = make_pki(dir);
    let port = free_port();
    let cfg = config(
        dir,
        &format!(
            "tcp_address = \"127.0.0.1:{port}\"\ntls = {{ cert_file = \"{}\", key_file = \"{}\", client_ca_file = \"{}\" }}",
            pki.server_cert.display(),
            pki.server_key.display(),
            pki.ca.display()
        ),
    );
    let agent = Proc::start(
        &["agent", "--config", cfg.to_str().unwrap()],
        &dir.join("agent.log"),
    );
    wait_listening(port);
    let connect = |cert: bool| {
        let client = auditship_tls::client_config(
            &pki.ca,
            cert.then_some((pki.client_cert.as_path(), pki.client_key.as_path())),
        )
        .unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(client), "localhost".try_into().unwrap())
            .unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        rustls::StreamOwned::new(conn, tcp)
    };
    let msg = |who: &str, n: usize| {
        format!("<86>1 2026-03-07T10:01:02.123Z tlshost sshd 4242 - - Accepted publickey for {who}{n} from 192.0.2.{n} port 22 ssh2")
    };

    // No certificate: refused. Whatever the client managed to write is not read.
    let mut anonymous = connect(false);
    let m = msg("anon", 0);
    let attempt = anonymous
        .write_all(format!("{} {m}", m.len()).as_bytes())
        .and_then(|_| anonymous.flush())
        .and_then(|_| anonymous.read(&mut [0u8; 16]));
    assert!(matches!(attempt, Err(_) | Ok(0)), "{attempt:?}");

    let mut tls = connect(true);
    for n in 0..20 {
        let m = msg("tls", n);
        let frame = format!("{} {m}", m.len());
        let (a, b) = frame.split_at(frame.len() / 3);
        tls.write_all(a.as_bytes()).unwrap();
        tls.flush().unwrap();
        tls.write_all(b.as_bytes()).unwrap();
        tls.flush().unwrap();
    }
    tls.write_all(format!("{}\n", msg("lf", 20)).as_bytes())
        .unwrap();
    tls.flush().unwrap();
    tls.conn.send_close_notify();
    tls.flush().unwrap();

    let out = dir.join("out.ndjson");
    wait_for("21 messages over TLS", Duration::from_secs(60), || {
        output_events(&out).len() >= 21
    });
    assert_eq!(agent.term(), 0);
    let events = output_events(&out);
    let users: Vec<&str> = events
        .iter()
        .map(|e| e["actor"]["user"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..20)
        .map(|n| format!("tls{n}"))
        .chain(["lf20".to_string()])
        .collect();
    assert_eq!(
        users, want,
        "in order, once each, nothing from the anonymous client"
    );
    let e = &events[3];
    assert_eq!(e["action"], "ssh_login");
    assert_eq!(e["outcome"], "success");
    assert_eq!(e["host"], "tlshost");
    assert_eq!(e["ts"], "2026-03-07T10:01:02.123Z");
    assert_eq!(e["raw"], msg("tls", 3));
    assert_eq!(e["source"], "sys:127.0.0.1");
}
