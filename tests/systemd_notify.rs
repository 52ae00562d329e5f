//! The real `auditship agent` and `auditship collector` talk to systemd as
//! `Type=notify` services with a watchdog: the test plays systemd's side,
//! a Unix datagram socket named in `NOTIFY_SOCKET` (a path for the agent,
//! an abstract `@name` for the collector), and checks `READY=1` (sent only
//! once the role is really running), repeated `WATCHDOG=1`, `STATUS=` lines
//! that follow the real counters, and `STOPPING=1` after SIGTERM.

mod common;

use std::fs;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// systemd's end of the notification socket: every datagram received.
struct Systemd {
    sock: UnixDatagram,
    seen: Vec<String>,
}

impl Systemd {
    fn bind(addr: &SocketAddr) -> Systemd {
        let sock = UnixDatagram::bind_addr(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Systemd {
            sock,
            seen: Vec::new(),
        }
    }

    /// Receives until a message satisfies `f`, which it returns.
    fn wait(&mut self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut buf = vec![0u8; 4096];
        loop {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; received {:?}",
                self.seen
            );
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8(buf[..n].to_vec()).unwrap();
                self.seen.push(msg.clone());
                if f(&msg) {
                    return msg;
                }
            }
        }
    }

    /// Receives until `n` keep-alives have arrived in all.
    fn keepalives(&mut self, n: usize) {
        let count = |seen: &[String]| seen.iter().filter(|m| has(m, "WATCHDOG=1")).count();
        while count(&self.seen) < n {
            self.wait("keep-alives", |m| has(m, "WATCHDOG=1"));
        }
    }
}

/// Whether a notification holds the assignment `line`.
fn has(msg: &str, line: &str) -> bool {
    msg.lines().any(|l| l == line)
}

/// The `STATUS=` text of a notification.
fn status(msg: &str) -> Option<&str> {
    msg.lines().find_map(|l| l.strip_prefix("STATUS="))
}

/// Starts `auditship <args>` with the notification environment.
fn start(args: &[&str], log: &Path, env: &[(&str, String)]) -> Proc {
    let err = fs::File::create(log).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_auditship"));
    cmd.args(args)
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc {
        child: cmd.spawn().unwrap(),
    }
}

fn auth_line(i: usize) -> String {
    format!("Nov 20 10:01:0{i} bastion sshd[2003]: Failed password for invalid user admin{i} from 203.0.113.9 port 29161 ssh2")
}

/// A collector and an agent shipping to it, both supervised through
/// notifications: ready only when really running, keep-alives while
/// healthy, status from the real counters, stopping on SIGTERM.
#[test]
fn agent_and_collector_notify_systemd() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let ccfg = collector_config(dir.path(), port, "insecure_plain_http = true", "");
    let name = format!(
        "auditship-notify-test-{}-{}",
        std::process::id(),
        Rng::from_clock("socket name").next()
    );
    use std::os::linux::net::SocketAddrExt;
    let mut csd = Systemd::bind(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap());
    let collector = start(
        &["collector", "--config", ccfg.to_str().unwrap()],
        &dir.path().join("collector.log"),
        &[
            ("NOTIFY_SOCKET", format!("@{name}")),
            ("WATCHDOG_USEC", "2000000".into()),
        ],
    );
    let ready = csd.wait("collector READY=1", |m| has(m, "READY=1"));
    assert_eq!(csd.seen.len(), 1, "READY=1 comes first: {:?}", csd.seen);
    // Ready means listening: a connection is accepted right away.
    std::net::TcpStream::connect(("127.0.0.1", port)).expect("listening when ready");
    assert_eq!(status(&ready), Some("stored 0 events, 0 agents"));

    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let acfg = agent_config(
        dir.path(),
        &format!("{}/*.log", logs.display()),
        &format!("http://127.0.0.1:{port}"),
        &format!("token = \"{INGEST_TOKEN}\""),
    );
    let sock_path = dir.path().join("agent-notify.sock");
    let mut asd = Systemd::bind(&SocketAddr::from_pathname(&sock_path).unwrap());
    let agent = start(
        &["agent", "--config", acfg.to_str().unwrap()],
        &dir.path().join("agent.log"),
        &[
            ("NOTIFY_SOCKET", sock_path.display().to_string()),
            ("WATCHDOG_USEC", "1000000".into()),
        ],
    );
    let ready = asd.wait("agent READY=1", |m| has(m, "READY=1"));
    assert_eq!(asd.seen.len(), 1, "READY=1 comes first: {:?}", asd.seen);
    // Ready means the identity is loaded and the queue recovered.
    let state = dir.path().join("agent-state");
    assert!(state.join("identity.key").exists());
    assert!(state.join("queue").join("id").exists());
    assert_eq!(status(&ready), Some("queued 0 events, 0 pending delivery"));

    append_lines(&logs.join("auth.log"), (1..=3).map(auth_line));
    asd.wait("the agent's status after three lines", |m| {
        status(m) == Some("queued 3 events, 0 pending delivery")
    });
    let shown = csd.wait("the collector's status after the agent's events", |m| {
        status(m).is_some_and(|s| s.ends_with(", 1 agents"))
    });
    let stored: u64 = status(&shown)
        .and_then(|s| s.strip_prefix("stored "))
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(stored >= 3, "{shown}");

    asd.keepalives(4);
    csd.keepalives(3);

    assert_eq!(agent.term(), 0);
    asd.wait("agent STOPPING=1", |m| has(m, "STOPPING=1"));
    assert_eq!(collector.term(), 0);
    csd.wait("collector STOPPING=1", |m| has(m, "STOPPING=1"));
}

/// `WATCHDOG_PID` naming another process means the watchdog is not ours:
/// ready and status, but no keep-alive.
#[test]
fn a_watchdog_meant_for_another_process_is_not_fed() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let out = dir.path().join("out.ndjson");
    let cfg = dir.path().join("agent.toml");
    fs::write(
        &cfg,
        format!(
            "state_dir = \"{}\"\n\n[[inputs]]\ntype = \"file\"\nname = \"logs\"\ninclude = [\"{}/*.log\"]\n\n[[outputs]]\ntype = \"file\"\npath = \"{}\"\n",
            dir.path().join("state").display(),
            logs.display(),
            out.display()
        ),
    )
    .unwrap();
    let sock_path = dir.path().join("notify.sock");
    let mut sd = Systemd::bind(&SocketAddr::from_pathname(&sock_path).unwrap());
    let agent = start(
        &["agent", "--config", cfg.to_str().unwrap()],
        &dir.path().join("agent.log"),
        &[
            ("NOTIFY_SOCKET", sock_path.display().to_string()),
            ("WATCHDOG_USEC", "200000".into()),
            ("WATCHDOG_PID", "1".into()),
        ],
    );
    sd.wait("READY=1", |m| has(m, "READY=1"));
    // Without a watchdog of its own the agent refreshes its status every
    // 10 s; wait for one refresh, in which a keep-alive would ride too.
    sd.wait("a status refresh", |m| status(m).is_some());
    assert_eq!(agent.term(), 0);
    sd.wait("STOPPING=1", |m| has(m, "STOPPING=1"));
    assert!(
        sd.seen.iter().all(|m| !has(m, "WATCHDOG=1")),
        "{:?}",
        sd.seen
    );
}
