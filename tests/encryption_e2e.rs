//! Encryption at rest, end to end, with the real `auditship` processes: a
//! collector whose store is encrypted and an agent whose queue is
//! encrypted ship lines carrying unique markers (raw text, user names,
//! host names, source addresses, the log file's name); then every byte of
//! every file under the collector's data directory and the agent's state
//! directory is searched for each marker. With encryption off the same
//! search must find them, so the check can fail. Also: a wrong key at
//! collector start, `verify` with and without the key, a key rotation and
//! `auditship store rekey`.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// Enough lines (with their padding) to fill more than one 1 MiB store
/// segment, so a sealed segment and its index file are on disk too.
const LINES: usize = 1200;

/// Unique markers of one run, and the lines carrying them.
struct Markers {
    tag: String,
}

impl Markers {
    fn new() -> Markers {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Markers {
            tag: format!("{:x}", t & 0xffff_ffff_ffff),
        }
    }

    fn user(&self) -> String {
        format!("mkuser{}", self.tag)
    }

    fn host(&self) -> String {
        format!("mkhost{}", self.tag)
    }

    fn file_name(&self) -> String {
        format!("auth-mkpath{}.log", self.tag)
    }

    /// The IPv6 source address, as text and as the 16 bytes an index holds.
    fn ip(&self) -> (String, [u8; 16]) {
        let text = "2001:db8:feed:beef::77".to_string();
        let ip: std::net::Ipv6Addr = text.parse().unwrap();
        (text, ip.octets())
    }

    /// Line `i` of batch `from`.
    fn line(&self, i: usize) -> String {
        let ip = if i % 2 == 0 {
            self.ip().0
        } else {
            "198.51.100.77".into()
        };
        format!(
            "Nov 22 10:{:02}:{:02} {} sshd[{i}]: Accepted password for {} from {ip} port 22 ssh2 mkraw{}x{i} {}",
            (i / 60) % 60,
            i % 60,
            self.host(),
            self.user(),
            self.tag,
            "padding ".repeat(60)
        )
    }

    /// Every marker, with a name for messages.
    fn all(&self) -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("raw text", format!("mkraw{}", self.tag).into_bytes()),
            ("user name", self.user().into_bytes()),
            ("host name", self.host().into_bytes()),
            ("source address", self.ip().0.into_bytes()),
            ("source address bytes", self.ip().1.to_vec()),
            ("IPv4 source address", b"198.51.100.77".to_vec()),
            ("log file name", self.file_name().into_bytes()),
        ]
    }
}

/// `(marker name, file)` for every marker found in any file under `dir`.
fn find_markers(dir: &Path, markers: &[(&'static str, Vec<u8>)]) -> Vec<(&'static str, PathBuf)> {
    let mut found = Vec::new();
    let mut files = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            files += 1;
            let data = fs::read(&p).unwrap();
            for (name, m) in markers {
                if data.windows(m.len()).any(|w| w == &m[..]) {
                    found.push((*name, p.clone()));
                }
            }
        }
    }
    assert!(files > 3, "{} holds only {files} files", dir.display());
    found
}

fn auditship(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_auditship"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `auditship key generate --out FILE`; the key id it prints.
fn generate_key(path: &Path) -> String {
    let (code, out, err) = auditship(&["key", "generate", "--out", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let id = out.trim().to_string();
    assert_eq!(id.len(), 16, "{out}");
    assert_eq!(
        fs::metadata(path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    id
}

struct Run {
    dir: tempfile::TempDir,
    port: u16,
    url: String,
    log: PathBuf,
    data: PathBuf,
    state: PathBuf,
}

impl Run {
    fn new(markers: &Markers) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        Run {
            url: format!("http://127.0.0.1:{port}"),
            log: dir.path().join(markers.file_name()),
            data: dir.path().join("collector-data"),
            state: dir.path().join("agent-state"),
            port,
            dir,
        }
    }

    fn collector_config(&self, store_keys: Option<(&Path, &[&Path])>) -> PathBuf {
        let enc = store_keys.map_or(String::new(), |(k, prev)| {
            let prev: Vec<String> = prev
                .iter()
                .map(|p| format!("{:?}", p.display().to_string()))
                .collect();
            format!(
                "[store.encryption]\nkey_file = {:?}\nprevious_key_files = [{}]\n",
                k.display().to_string(),
                prev.join(", ")
            )
        });
        collector_config(
            self.dir.path(),
            self.port,
            "insecure_plain_http = true",
            &format!("[store]\nsegment_bytes = \"1MiB\"\n{enc}\n[integrity]\ncheckpoint_interval = \"200ms\"\n"),
        )
    }

    fn agent_config(&self, queue_key: Option<&Path>) -> PathBuf {
        let top = queue_key.map_or(String::new(), |k| {
            format!(
                "[queue.encryption]\nkey_file = {:?}\n",
                k.display().to_string()
            )
        });
        agent_config_with(
            self.dir.path(),
            &top,
            self.log.to_str().unwrap(),
            &self.url,
            &format!("token = \"{INGEST_TOKEN}\""),
        )
    }

    fn start(&self, what: &str, cfg: &Path) -> Proc {
        Proc::start(
            &[what, "--config", cfg.to_str().unwrap()],
            &self.dir.path().join(format!("{what}.log")),
        )
    }

    /// Ships lines `from..to` through a fresh collector and agent, checks
    /// the collector answers with all of them, and stops both cleanly.
    fn ship(&self, markers: &Markers, ccfg: &Path, acfg: &Path, from: usize, to: usize) {
        append_lines(&self.log, (from..to).map(|i| markers.line(i)));
        let collector = self.start("collector", ccfg);
        wait_for("collector up", Duration::from_secs(30), || {
            http_get(self.port, "/health").is_some_and(|(s, _)| s == 200)
        });
        let agent = self.start("agent", acfg);
        wait_for("every line stored", Duration::from_secs(90), || {
            stored_count(self.port) >= to as u64
        });
        wait_for_checkpoint_of_everything(self.port);
        let raws = stored_raws(&self.url, &[]);
        let want: Vec<String> = (0..to).map(|i| markers.line(i)).collect();
        assert_exactly_once(&raws, &want);
        let by_user = stored_raws(&self.url, &["--actor", &markers.user()]);
        assert_eq!(by_user.len(), to, "the index answers actor queries");
        assert_eq!(agent.term(), 0);
        assert_eq!(collector.term(), 0);
    }

    fn verify(&self, keys: &[&Path]) -> (i32, String) {
        let mut args = vec![
            "verify".to_string(),
            "--store".into(),
            self.data.display().to_string(),
            "--pubkey".into(),
            self.data.join("collector.pub").display().to_string(),
        ];
        for k in keys {
            args.push("--key-file".into());
            args.push(k.display().to_string());
        }
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let (code, out, err) = auditship(&args);
        (code, format!("{out}{err}"))
    }
}

#[test]
fn with_encryption_on_no_marker_is_anywhere_on_disk_and_rotation_and_rekey_work() {
    let markers = Markers::new();
    let run = Run::new(&markers);
    let keys = run.dir.path().join("keys");
    fs::create_dir(&keys).unwrap();
    let store_key = keys.join("store.key");
    let queue_key = keys.join("queue.key");
    let store_id = generate_key(&store_key);
    generate_key(&queue_key);
    let (code, _, err) = auditship(&["key", "generate", "--out", store_key.to_str().unwrap()]);
    assert_eq!(code, 2, "a key is never overwritten");
    assert!(err.contains("already exists"), "{err}");
    let (_, out, _) = auditship(&["key", "id", "--key-file", store_key.to_str().unwrap()]);
    assert_eq!(out.trim(), store_id);

    let ccfg = run.collector_config(Some((&store_key, &[])));
    let acfg = run.agent_config(Some(&queue_key));
    run.ship(&markers, &ccfg, &acfg, 0, LINES);
    let all = markers.all();
    for dir in [&run.data, &run.state] {
        let found = find_markers(dir, &all);
        assert!(found.is_empty(), "plaintext at rest: {found:?}");
    }

    // verify: with the key it passes; without it, it says what it needs.
    let (code, text) = run.verify(&[&store_key]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("OK"), "{text}");
    let (code, text) = run.verify(&[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("encrypted") && text.contains(&store_id) && text.contains("--key-file"),
        "{text}"
    );

    // A wrong key: the collector does not start, and says which key is which.
    let other = keys.join("other.key");
    let other_id = generate_key(&other);
    let wrong = run.collector_config(Some((&other, &[])));
    let mut c = run.start("collector", &wrong);
    wait_for(
        "collector refuses the wrong key",
        Duration::from_secs(30),
        || c.exited(),
    );
    let status = c.child.wait().unwrap();
    assert!(!status.success());
    let log = fs::read_to_string(run.dir.path().join("collector.log")).unwrap();
    assert!(
        log.contains(&store_id) && log.contains(&other_id) && log.contains("other.key"),
        "{log}"
    );

    // Rotation: a new key encrypts from now on, the old one still reads.
    let new_key = keys.join("store-2.key");
    let new_id = generate_key(&new_key);
    let rotated = run.collector_config(Some((&new_key, &[&store_key])));
    run.ship(&markers, &rotated, &acfg, LINES, 2 * LINES);
    let (code, text) = run.verify(&[&new_key, &store_key]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = run.verify(&[&new_key]);
    assert_eq!(code, 2, "the old records still need the old key: {text}");
    assert!(text.contains(&store_id), "{text}");

    // Rekey offline: afterwards the old key is no longer needed.
    let (code, out, err) = auditship(&[
        "store",
        "rekey",
        "--data-dir",
        run.data.to_str().unwrap(),
        "--key-file",
        new_key.to_str().unwrap(),
        "--previous-key-file",
        store_key.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&new_id), "{out}");
    let (code, text) = run.verify(&[&new_key]);
    assert_eq!(code, 0, "{text}");
    let only_new = run.collector_config(Some((&new_key, &[])));
    run.ship(&markers, &only_new, &acfg, 2 * LINES, 2 * LINES + 10);
    let segments = fs::read_dir(run.data.join("store/segments"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "idx")
        })
        .count();
    assert!(
        segments >= 2,
        "sealed segments with their indexes were searched too"
    );
    for dir in [&run.data, &run.state] {
        let found = find_markers(dir, &all);
        assert!(found.is_empty(), "plaintext at rest: {found:?}");
    }
}

#[test]
fn with_encryption_off_the_same_search_finds_every_marker() {
    let markers = Markers::new();
    let run = Run::new(&markers);
    run.ship(
        &markers,
        &run.collector_config(None),
        &run.agent_config(None),
        0,
        LINES,
    );
    let all = markers.all();
    assert!(
        run.data
            .join("store/segments/00000000000000000001.idx")
            .exists(),
        "a sealed segment's index is among the files searched"
    );
    let found = find_markers(&run.data, &all);
    for (name, _) in &all {
        assert!(
            found.iter().any(|(n, _)| n == name),
            "{name} not found in the collector's data directory: the search cannot work ({found:?})"
        );
    }
    let found = find_markers(&run.state, &all);
    for name in ["raw text", "user name", "host name", "source address"] {
        assert!(
            found.iter().any(|(n, _)| *n == name),
            "{name} not found in the agent's queue ({found:?})"
        );
    }
}
