//! Helpers shared by the end-to-end tests: real `auditship` processes,
//! configs, and reading back what the collector stored.
#![allow(dead_code)]

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `auditship` process; SIGKILLed when dropped.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    /// Starts `auditship <args>`, stderr appended to `log`.
    pub fn start(args: &[&str], log: &Path) -> Proc {
        let err = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_auditship"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("auditship starts");
        Proc { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for the exit code.
    pub fn term(mut self) -> i32 {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "process did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A small deterministic random source.
pub struct Rng(pub u64);

impl Rng {
    /// Seeded from the clock; the seed is printed (named `what`) so that a
    /// failing run can be repeated.
    pub fn from_clock(what: &str) -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("{what} seed {seed}");
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub const INGEST_TOKEN: &str = "ingest-token-0123456789";
pub const READER_TOKEN: &str = "reader-token-0123456789";
/// The admin token of [`collector_config`].
pub const ADMIN_TOKEN: &str = "admin-token-0123456789";

/// Writes a collector config into `dir`; `extra` is appended at top level
/// before the tables (e.g. a `[tls]` or `[limits]` section goes in `tables`).
pub fn collector_config(dir: &Path, port: u16, top: &str, tables: &str) -> PathBuf {
    let path = dir.join("collector.toml");
    fs::write(
        &path,
        format!(
            r#"data_dir = "{data}"
listen = "127.0.0.1:{port}"
shutdown_grace = "2s"
{top}

{tables}

[[tokens]]
name = "agents"
role = "ingest"
agents = ["e2e-agent"]
token = "{INGEST_TOKEN}"

[[tokens]]
name = "auditor"
role = "auditor"
token = "{READER_TOKEN}"

[[tokens]]
name = "admin"
role = "admin"
token = "{ADMIN_TOKEN}"
"#,
            data = dir.join("collector-data").display()
        ),
    )
    .unwrap();
    path
}

/// Writes an agent config tailing `include` into the collector at
/// `endpoint`; `output_extra` adds keys to the output table.
pub fn agent_config(dir: &Path, include: &str, endpoint: &str, output_extra: &str) -> PathBuf {
    agent_config_with(dir, "", include, endpoint, output_extra)
}

/// [`agent_config`] with `top` (e.g. `heartbeat = "1s"`) added to the
/// top-level keys.
pub fn agent_config_with(
    dir: &Path,
    top: &str,
    include: &str,
    endpoint: &str,
    output_extra: &str,
) -> PathBuf {
    let path = dir.join("agent.toml");
    fs::write(
        &path,
        format!(
            r#"state_dir = "{state}"
agent_id = "e2e-agent"
shutdown_grace = "20s"
{top}

[[inputs]]
type = "file"
name = "logs"
include = ["{include}"]
format = "auto"
timezone = "UTC"
partial_line_timeout = "300ms"
rotate_wait = "1s"
rescan_interval = "200ms"
max_line_bytes = "512KiB"

[[outputs]]
type = "collector"
endpoints = ["{endpoint}"]
max_wait = "100ms"
backoff_initial = "50ms"
backoff_max = "1s"
{output_extra}
"#,
            state = dir.join("agent-state").display(),
        ),
    )
    .unwrap();
    path
}

/// Every stored event's `raw`, by querying the collector with the real CLI
/// (`auditship query --all`), plus extra CLI args such as `--ca-file`.
pub fn stored_raws(url: &str, extra: &[&str]) -> Vec<String> {
    stored_events(url, extra)
        .into_iter()
        // The collector's own integrity events, unless asked for.
        .filter(|v| v["agent_id"] != "@collector" || extra.contains(&"integrity"))
        .map(|v| v["raw"].as_str().unwrap().to_string())
        .collect()
}

/// Every stored event matching the query arguments `extra`, newest first,
/// through `auditship query --all`.
pub fn stored_events(url: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_auditship"))
        .args([
            "query",
            "--url",
            url,
            "--token",
            READER_TOKEN,
            "--all",
            "--format",
            "ndjson",
            "--limit",
            "10000",
        ])
        .args(extra)
        .output()
        .expect("query runs");
    assert!(
        out.status.success(),
        "query failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `GET path` over plain HTTP with the reader token: (status, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {READER_TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// How many events the collector holds (cheap check while waiting), over
/// plain HTTP; 0 while it is down.
/// Waits until the collector's latest signed checkpoint covers every
/// record its store holds.
pub fn wait_for_checkpoint_of_everything(port: u16) {
    wait_for(
        "a checkpoint covering everything",
        Duration::from_secs(20),
        || {
            let cp = http_get(port, "/v1/checkpoint");
            let st = http_get(port, "/v1/stats");
            match (cp, st) {
                (Some((200, cp)), Some((200, st))) => {
                    let cp: serde_json::Value = serde_json::from_str(&cp).unwrap();
                    let st: serde_json::Value = serde_json::from_str(&st).unwrap();
                    cp["size"] == st["store"]["events"]
                }
                _ => false,
            }
        },
    );
}

/// Events agents sent that the collector stored (its own integrity
/// events not counted).
pub fn stored_count(port: u16) -> u64 {
    http_get(port, "/v1/stats")
        .filter(|(s, _)| *s == 200)
        .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
        .and_then(|v| v["store"]["agent_events"].as_u64())
        .unwrap_or(0)
}

/// Appends lines to a file (creating it).
pub fn append_lines(path: &Path, lines: impl IntoIterator<Item = String>) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut buf = String::new();
    for l in lines {
        buf.push_str(&l);
        buf.push('\n');
    }
    f.write_all(buf.as_bytes()).unwrap();
}

/// Checks that `raws` holds each of `expected` exactly once; panics with
/// the first missing and duplicated lines otherwise.
pub fn assert_exactly_once(raws: &[String], expected: &[String]) {
    let mut counts = std::collections::HashMap::new();
    for r in raws {
        *counts.entry(r.as_str()).or_insert(0usize) += 1;
    }
    let missing: Vec<&String> = expected
        .iter()
        .filter(|e| !counts.contains_key(e.as_str()))
        .take(5)
        .collect();
    let dups: Vec<(&&str, &usize)> = counts.iter().filter(|(_, &n)| n > 1).take(5).collect();
    assert!(
        missing.is_empty() && dups.is_empty() && raws.len() == expected.len(),
        "stored {} of {} expected; missing (first 5) {missing:?}; duplicated (first 5) {dups:?}",
        raws.len(),
        expected.len()
    );
}

/// A tmpfs mounted on a directory for a test, unmounted when dropped.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. "6m") on `dir`. `None` when not root
    /// (the caller skips, saying so); panics if root and the mount fails.
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        let uid = Command::new("id").arg("-u").output().unwrap();
        if !mounted && String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return None;
        }
        assert!(mounted, "mount a {size} tmpfs on {}", dir.display());
        Some(Tmpfs(dir.to_path_buf()))
    }

    /// Changes the size (to let a full disk fill up no more, or free up).
    pub fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount {} with size={size}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A test stand-in for an agent that writes its own batches: one chain,
/// a fixed key. Batches are uncompressed wire v2 bodies.
pub struct BatchWriter {
    /// Agent id.
    pub agent: String,
    /// Queue identity.
    pub queue: u64,
    /// Chain head.
    pub head: auditship_core::Hash,
    /// Signing key.
    pub key: auditship_core::identity::Identity,
}

impl BatchWriter {
    /// An agent `agent` with queue `queue`, key from `seed`.
    pub fn new(agent: &str, queue: u64, seed: u8) -> BatchWriter {
        BatchWriter {
            agent: agent.into(),
            queue,
            head: auditship_core::seal::GENESIS,
            key: auditship_core::identity::Identity::from_seed([seed; 32]),
        }
    }

    /// A signed batch of events `seqs` (consecutive numbers expected),
    /// each an unparsed line `raw(seq)`, continuing the chain.
    pub fn batch(&mut self, seqs: std::ops::Range<u64>, raw: impl Fn(u64) -> String) -> Vec<u8> {
        use auditship_core::{canonical, hex, seal, wire, AuditEvent};
        let prev = self.head;
        let mut events = Vec::new();
        for seq in seqs.clone() {
            let mut ev = AuditEvent::unparsed(raw(seq));
            ev.agent_id = Some(self.agent.clone());
            ev.seq = Some(seq);
            let bytes = canonical::encode(&ev);
            self.head = seal::chain_hash(&self.head, &bytes);
            events.extend(bytes);
            events.push(b'\n');
        }
        let mut header = wire::BatchHeader {
            auditship_batch: wire::WIRE_VERSION,
            agent_id: self.agent.clone(),
            queue: wire::format_queue(self.queue),
            first: seqs.start,
            last: seqs.end - 1,
            events: seqs.end - seqs.start,
            prev_hash: hex::encode(&prev),
            last_hash: hex::encode(&self.head),
            key: String::new(),
            sig: String::new(),
            pipelined: false,
        };
        header.sign(&self.key);
        wire::encode(&header, &events, wire::Compression::None)
    }
}

/// A CA, a server certificate for `localhost` and a client certificate,
/// written as PEM files into `dir`.
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A second client certificate (SAN `e2e-other`) of the same CA.
    pub other_cert: PathBuf,
    /// Its key.
    pub other_key: PathBuf,
}

pub fn make_pki(dir: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["e2e-agent".to_string()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    let other_key = KeyPair::generate().unwrap();
    let other = CertificateParams::new(vec!["e2e-other".to_string()])
        .unwrap()
        .signed_by(&other_key, &issuer)
        .unwrap();
    let w = |name: &str, pem: String| {
        let p = dir.join(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    Pki {
        ca: w("ca.pem", ca_cert.pem()),
        server_cert: w("server.pem", server.pem()),
        server_key: w("server.key", server_key.serialize_pem()),
        client_cert: w("client.pem", client.pem()),
        client_key: w("client.key", client_key.serialize_pem()),
        other_cert: w("other.pem", other.pem()),
        other_key: w("other.key", other_key.serialize_pem()),
    }
}

/// Every complete line of the output file, parsed.
pub fn output_events(path: &Path) -> Vec<serde_json::Value> {
    let Ok(mut text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
    text.lines()
        .map(|l| serde_json::from_str(l).expect("output lines are JSON"))
        .collect()
}
