//! End-to-end test of retention with the real `auditship` binary: a
//! collector with small segments receives old and recent events, signs a
//! checkpoint, and then retention runs (dry, then real, to a directory
//! archive, then again with a shorter policy to a real S3-compatible server,
//! `s3s-fs`, started by the test). Payloads are gone from the segment files,
//! tombstones are in the log, `auditship verify` passes over the whole
//! store, inclusion proofs taken before still verify against the old
//! checkpoint, held events are kept, and `auditship archive verify` reads
//! every archived object back and checks it against the log.
//!
//! `s3s-fs` must be installed (`cargo install s3s-fs --version 0.14.1
//! --features binary --locked`, which `.ci/run` does when it is missing);
//! the test fails, saying so, when it is not.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use auditship_core::{
    canonical, hex, merkle, seal, wire, AuditEvent, Category, Outcome, Timestamp,
};
use common::*;

const AGENT: &str = "e2e-agent";
const DAY: i64 = 86_400;
const S3_KEY: &str = "retention-e2e-key";
const S3_SECRET: &str = "retention-e2e-secret-0123456789";

/// Events with a marker in their raw line, so the segment files can be
/// searched for them.
struct Batcher {
    w: BatchWriter,
    seq: u64,
}

impl Batcher {
    /// A signed batch of `n` events made by `make(seq)`.
    fn batch(&mut self, n: u64, make: impl Fn(u64) -> AuditEvent) -> Vec<u8> {
        let first = self.seq + 1;
        let mut events = Vec::new();
        let prev = self.w.head;
        for seq in first..first + n {
            let mut ev = make(seq);
            ev.agent_id = Some(AGENT.into());
            ev.seq = Some(seq);
            let bytes = canonical::encode(&ev);
            self.w.head = seal::chain_hash(&self.w.head, &bytes);
            events.extend(bytes);
            events.push(b'\n');
        }
        self.seq += n;
        let mut header = wire::BatchHeader {
            auditship_batch: wire::WIRE_VERSION,
            agent_id: AGENT.into(),
            queue: wire::format_queue(self.w.queue),
            first,
            last: first + n - 1,
            events: n,
            prev_hash: hex::encode(&prev),
            last_hash: hex::encode(&self.w.head),
            key: String::new(),
            sig: String::new(),
            pipelined: false,
        };
        header.sign(&self.w.key);
        wire::encode(&header, &events, wire::Compression::None)
    }
}

fn event(category: Category, marker: &str, seq: u64, days_old: i64, host: &str) -> AuditEvent {
    let now = Timestamp::now_utc().unix_secs();
    let pad = "x".repeat(500);
    let mut ev = AuditEvent::new(
        category,
        if category == Category::Web {
            "http_request"
        } else {
            "ssh_login"
        },
        Outcome::Success,
        format!("{marker}-{seq:06} {pad}"),
    );
    ev.ts = Timestamp::new(now - days_old * DAY + seq as i64, 0, 0);
    ev.host = Some(host.into());
    ev.source = Some(format!("/var/log/{marker}.log"));
    ev
}

fn post(port: u16, path: &str, token: &str, body: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    (status, text.split_once("\r\n\r\n").unwrap().1.to_string())
}

fn auditship(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_auditship"))
        .args(args)
        .output()
        .expect("auditship runs")
}

fn ok(out: Output, what: &str) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn config(dir: &Path, port: u16, auth_days: u32, archive: &str) -> PathBuf {
    let tables = format!(
        r#"[store]
segment_bytes = "1MiB"

[integrity]
checkpoint_interval = "200ms"

[retention]
interval = "0s"

[[retention.policies]]
name = "web"
categories = ["web"]
max_age = "90d"

[[retention.policies]]
name = "auth"
categories = ["authentication"]
max_age = "{auth_days}d"

{archive}
"#
    );
    collector_config(dir, port, "insecure_plain_http = true", &tables)
}

/// Every segment file's bytes, concatenated, with the files' count.
fn segment_bytes(data: &Path) -> (Vec<u8>, usize) {
    let mut files: Vec<_> = std::fs::read_dir(data.join("store/segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for f in &files {
        all.extend(std::fs::read(f).unwrap());
    }
    (all, files.len())
}

/// The sealed segment files' bytes (every one but the newest).
fn sealed_files(data: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(data.join("store/segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    files.sort();
    files.pop();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

fn count(hay: &[u8], needle: &str) -> usize {
    hay.windows(needle.len())
        .filter(|w| *w == needle.as_bytes())
        .count()
}

/// The s3s-fs binary: $S3S_FS, or on PATH, or in ~/.cargo/bin.
fn s3s_fs() -> PathBuf {
    let candidates = std::env::var_os("S3S_FS")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::env::var_os("PATH").into_iter().flat_map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("s3s-fs"))
                .collect::<Vec<_>>()
        }))
        .chain(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/s3s-fs")));
    for c in candidates {
        if c.is_file() {
            return c;
        }
    }
    panic!(
        "s3s-fs (the S3-compatible server this test archives to) is not installed: \
         run `cargo install s3s-fs --version 0.14.1 --features binary --locked` \
         (.ci/run does), or set S3S_FS to its path"
    );
}

/// Checks an inclusion proof fetched now for `leaf` (whose chain hash is
/// `hash`) against the checkpoint `cp` signed before retention.
fn check_old_proof(port: u16, leaf: u64, hash: &auditship_core::Hash, cp: &serde_json::Value) {
    let size = cp["size"].as_u64().unwrap();
    let (st, body) = http_get(
        port,
        &format!("/v1/proof/inclusion?index={leaf}&size={size}"),
    )
    .unwrap();
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let leaf_hash = seal::leaf_of_hash(hash);
    assert_eq!(
        v["leaf_hash"],
        hex::encode(&leaf_hash),
        "leaf {leaf} changed"
    );
    let proof: Vec<_> = v["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| hex::decode_hash(h.as_str().unwrap()).unwrap())
        .collect();
    let root = hex::decode_hash(cp["root"].as_str().unwrap()).unwrap();
    merkle::verify_inclusion(&leaf_hash, leaf, size, &proof, &root)
        .unwrap_or_else(|e| panic!("leaf {leaf} no longer proves against the old checkpoint: {e}"));
}

/// Leaf index and chain hash of every event of an export bundle.
fn bundle_leaves(path: &Path) -> Vec<(u64, auditship_core::Hash, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let e: serde_json::Value = serde_json::from_str(l).unwrap();
            let ev: serde_json::Value = serde_json::from_str(e["event"].as_str().unwrap()).unwrap();
            (
                e["leaf_index"].as_u64().unwrap(),
                hex::decode_hash(ev["hash"].as_str().unwrap()).unwrap(),
                ev["raw"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Waits until the latest checkpoint covers every leaf of the log (the
/// store's event count drops with expiry, its Merkle size does not).
fn checkpoint_of_everything(port: u16) {
    wait_for(
        "a checkpoint of everything",
        Duration::from_secs(20),
        || match (
            http_get(port, "/v1/checkpoint"),
            http_get(port, "/v1/stats"),
        ) {
            (Some((200, cp)), Some((200, st))) => {
                let cp: serde_json::Value = serde_json::from_str(&cp).unwrap();
                let st: serde_json::Value = serde_json::from_str(&st).unwrap();
                cp["size"] == st["merkle"]["size"]
            }
            _ => false,
        },
    );
}

#[test]
fn retention_expires_payloads_keeps_proofs_holds_and_archives_to_a_dir_and_to_s3() {
    let s3s = s3s_fs();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("collector-data");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let archive_dir = dir.path().join("archive");
    let cfg = config(
        dir.path(),
        port,
        400,
        &format!("[retention.archive]\ndir = \"{}\"", archive_dir.display()),
    );
    let collector = Proc::start(
        &["collector", "--config", cfg.to_str().unwrap()],
        &dir.path().join("collector.log"),
    );
    wait_for("the collector", Duration::from_secs(20), || {
        http_get(port, "/health").is_some()
    });

    // Old web events (expire), old auth events (kept: 400 days), old web
    // events of the held host db-1, old web events in the held time range,
    // interleaved; then recent events that fill the active segment.
    let mut b = Batcher {
        w: BatchWriter::new(AGENT, 0x5eed, 7),
        seq: 0,
    };
    let groups: [(Category, &str, i64, &str); 4] = [
        (Category::Web, "EXPIRE", 200, "web-1"),
        (Category::Authentication, "KEEPAUTH", 200, "web-1"),
        (Category::Web, "HELDHOST", 200, "db-1"),
        (Category::Web, "HELDRANGE", 150, "web-2"),
    ];
    for round in 0..4 {
        for (cat, marker, days, host) in groups {
            let n = if marker.starts_with("HELD") { 100 } else { 400 };
            let body = b.batch(n, |s| event(cat, marker, s + round, days, host));
            let (st, text) = post(port, "/v1/ingest", INGEST_TOKEN, &body);
            assert_eq!(st, 200, "{text}");
        }
    }
    for _ in 0..4 {
        let body = b.batch(500, |s| event(Category::Web, "RECENT", s, 5, "web-1"));
        assert_eq!(post(port, "/v1/ingest", INGEST_TOKEN, &body).0, 200);
    }
    checkpoint_of_everything(port);
    let (st, cp) = http_get(port, "/v1/checkpoint").unwrap();
    assert_eq!(st, 200);
    let old_cp: serde_json::Value = serde_json::from_str(&cp).unwrap();
    let (before, files) = segment_bytes(&data);
    assert!(
        files >= 4,
        "expected several sealed segments, got {files} files"
    );
    assert_eq!(count(&before, "EXPIRE-"), 1600);

    // Proofs before retention: exports (events, leaves, proofs against the
    // checkpoint) of a surviving and of an expiring category.
    let exp = |q: &[&str], out: &Path| {
        let mut args = vec![
            "export",
            "--url",
            &url,
            "--token",
            READER_TOKEN,
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(q);
        ok(auditship(&args), "export");
    };
    let auth_bundle = dir.path().join("auth.bundle");
    exp(&["--category", "authentication"], &auth_bundle);
    let web_bundle = dir.path().join("web.bundle");
    exp(&["--category", "web", "--host", "web-1"], &web_bundle);
    let auth_leaves = bundle_leaves(&auth_bundle);
    let web_leaves = bundle_leaves(&web_bundle);
    assert_eq!(auth_leaves.len(), 1600);

    // Holds, then a dry run: it reports, and changes nothing.
    let admin = ["--url", url.as_str(), "--token", ADMIN_TOKEN];
    let hold = |extra: &[&str]| {
        let mut a = vec!["hold", "add"];
        a.extend_from_slice(&admin);
        a.extend_from_slice(extra);
        ok(auditship(&a), "hold add")
    };
    hold(&["--host", "db-1", "--reason", "case 4711"]);
    let now = Timestamp::now_utc().unix_secs();
    let from = Timestamp::new(now - 160 * DAY, 0, 0).unwrap().to_string();
    let until = Timestamp::new(now - 140 * DAY, 0, 0).unwrap().to_string();
    hold(&["--from", &from, "--until", &until, "--reason", "case 4712"]);
    let mut list = vec!["hold", "list"];
    list.extend_from_slice(&admin);
    let listed = ok(auditship(&list), "hold list");
    assert!(
        listed.contains("hold-1") && listed.contains("hold-2") && listed.contains("case 4712"),
        "{listed}"
    );

    let mut dry = vec!["retention", "run", "--dry-run"];
    dry.extend_from_slice(&admin);
    let sealed_pre = sealed_files(&data);
    let report = ok(auditship(&dry), "retention run --dry-run");
    assert!(report.contains("would expire 1600 event(s)"), "{report}");
    assert!(report.contains("800 held back by legal holds"), "{report}");
    // The active segment takes the access records; sealed ones stay as they were.
    let (_, files_after) = segment_bytes(&data);
    let after_dry: Vec<Vec<u8>> = sealed_files(&data);
    assert!(
        after_dry.len() >= sealed_pre.len() && after_dry[..sealed_pre.len()] == sealed_pre[..],
        "a dry run changed a sealed segment ({files_after} files)"
    );
    assert!(
        std::fs::read_dir(archive_dir.join("segments")).map_or(true, |mut d| d.next().is_none())
    );

    // The real run.
    let mut real = vec!["retention", "run"];
    real.extend_from_slice(&admin);
    let report = ok(auditship(&real), "retention run");
    assert!(report.contains("expired 1600 event(s)"), "{report}");
    let (after, _) = segment_bytes(&data);
    assert_eq!(
        count(&after, "EXPIRE-"),
        0,
        "expired payloads are still in the segment files"
    );
    assert_eq!(count(&after, "KEEPAUTH-"), 1600);
    assert_eq!(count(&after, "HELDHOST-"), 400, "held by host");
    assert_eq!(count(&after, "HELDRANGE-"), 400, "held by time range");
    assert_eq!(count(&after, "RECENT-"), 2000);
    assert!(after.len() < before.len());

    // Tombstones are in the log, and queries no longer return expired events.
    let tombstones = stored_events(
        &url,
        &["--category", "integrity", "--action", "retention_expired"],
    );
    assert!(!tombstones.is_empty());
    let stated: u64 = tombstones
        .iter()
        .map(|t| {
            t["fields"]["expired"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(stated, 1600);
    assert!(tombstones[0]["fields"]["statement"]
        .as_str()
        .unwrap()
        .starts_with("auditship-tombstone-v1\n"));
    let web = stored_events(&url, &["--category", "web"]);
    assert!(web
        .iter()
        .all(|e| !e["raw"].as_str().unwrap().starts_with("EXPIRE-")));
    assert_eq!(web.len(), 800 + 2000);
    let runs = stored_events(&url, &["--category", "access", "--action", "retention_run"]);
    assert_eq!(
        runs.len(),
        4,
        "start and end of the dry and the real run are recorded"
    );

    // Offline verification passes over the whole store.
    let pubkey = data.join("collector.pub");
    checkpoint_of_everything(port);
    let v = ok(
        auditship(&[
            "verify",
            "--store",
            data.to_str().unwrap(),
            "--pubkey",
            pubkey.to_str().unwrap(),
        ]),
        "verify",
    );
    assert!(v.contains("OK: every record"), "{v}");
    assert!(v.contains("1600 expired"), "{v}");

    // Proofs for surviving events and for an expired one still verify
    // against the checkpoint signed before retention.
    for (leaf, hash, _) in auth_leaves.iter().step_by(97) {
        check_old_proof(port, *leaf, hash, &old_cp);
    }
    let (leaf, hash, raw) = web_leaves
        .iter()
        .find(|l| l.2.starts_with("EXPIRE-"))
        .unwrap();
    assert!(raw.starts_with("EXPIRE-"));
    check_old_proof(port, *leaf, hash, &old_cp);
    ok(
        auditship(&[
            "verify",
            "--bundle",
            auth_bundle.to_str().unwrap(),
            "--pubkey",
            pubkey.to_str().unwrap(),
        ]),
        "verify --bundle",
    );

    // The directory archive: every object read back and checked.
    let av = ok(
        auditship(&["archive", "verify", "--config", cfg.to_str().unwrap()]),
        "archive verify (dir)",
    );
    assert!(av.contains(", 0 failed"), "{av}");
    let archived = std::fs::read_dir(archive_dir.join("segments"))
        .unwrap()
        .count();
    assert!(archived >= 2, "{archived} archive files");
    // An archived copy altered afterwards is caught.
    let victim = std::fs::read_dir(archive_dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .unwrap();
    let original = std::fs::read(&victim).unwrap();
    let mut altered = original.clone();
    let at = altered.len() / 2;
    altered[at] ^= 1;
    std::fs::write(&victim, &altered).unwrap();
    let bad = auditship(&["archive", "verify", "--config", cfg.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("FAILED"));
    std::fs::write(&victim, &original).unwrap();

    // Holds: only an admin may manage them, a removal is recorded, and
    // every change is in the log.
    let reader_list = auditship(&["hold", "list", "--url", &url, "--token", READER_TOKEN]);
    assert!(!reader_list.status.success());
    assert!(String::from_utf8_lossy(&reader_list.stderr).contains("403"));
    let mut rm = vec!["hold", "remove"];
    rm.extend_from_slice(&admin);
    rm.push("hold-2");
    ok(auditship(&rm), "hold remove");
    let listed = ok(auditship(&list), "hold list");
    assert!(
        listed.contains("hold-1") && !listed.contains("hold-2"),
        "{listed}"
    );
    let changes: Vec<String> = stored_events(&url, &["--category", "access"])
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .filter(|a| a.starts_with("hold_"))
        .collect();
    assert_eq!(
        changes,
        [
            "hold_list",
            "hold_remove",
            "hold_list",
            "hold_add",
            "hold_add"
        ]
    );

    // Now S3: a real s3s-fs server, Object Lock headers configured, and a
    // shorter auth policy so that the auth events expire too.
    assert_eq!(collector.term(), 0);
    let s3_root = dir.path().join("s3");
    std::fs::create_dir_all(s3_root.join("audit-archive")).unwrap();
    let s3_port = free_port();
    let s3 = std::process::Command::new(&s3s)
        .args(["--host", "127.0.0.1", "--port", &s3_port.to_string()])
        .args(["--access-key", S3_KEY, "--secret-key", S3_SECRET])
        .arg(&s3_root)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("s3s.log")).unwrap())
        .spawn()
        .expect("s3s-fs starts");
    // Killed however the test ends.
    let _s3 = Proc { child: s3 };
    wait_for("s3s-fs", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", s3_port)).is_ok()
    });
    let secret_file = dir.path().join("s3-secret");
    std::fs::write(&secret_file, format!("{S3_SECRET}\n")).unwrap();
    let cfg = config(
        dir.path(),
        port,
        100,
        &format!(
            "[retention.archive.s3]\nbucket = \"audit-archive\"\nendpoint = \"http://127.0.0.1:{s3_port}\"\n\
             allow_http = true\nprefix = \"collector-1\"\naccess_key_id = \"{S3_KEY}\"\n\
             secret_access_key_file = \"{}\"\nobject_lock_mode = \"governance\"\nobject_lock_retain_days = 1",
            secret_file.display()
        ),
    );
    let collector = Proc::start(
        &["collector", "--config", cfg.to_str().unwrap()],
        &dir.path().join("collector.log"),
    );
    wait_for("the collector", Duration::from_secs(20), || {
        http_get(port, "/health").is_some()
    });
    let report = ok(auditship(&real), "retention run (s3)");
    // The auth events, and the time range whose hold was removed.
    assert!(report.contains("expired 2000 event(s)"), "{report}");
    assert!(report.contains("400 held back by legal holds"), "{report}");
    assert!(
        report.contains("archived s3://audit-archive/collector-1/segments/"),
        "{report}"
    );
    let (after, _) = segment_bytes(&data);
    assert_eq!(count(&after, "KEEPAUTH-"), 0);
    assert_eq!(count(&after, "HELDRANGE-"), 0, "its hold was removed");
    assert_eq!(count(&after, "HELDHOST-"), 400, "still held");
    assert_eq!(count(&after, "RECENT-"), 2000);
    // The objects are on the server's disk, byte for byte what was archived.
    let on_server: Vec<PathBuf> =
        std::fs::read_dir(s3_root.join("audit-archive/collector-1/segments"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .collect();
    assert!(!on_server.is_empty());
    assert!(on_server
        .iter()
        .any(|p| count(&std::fs::read(p).unwrap(), "KEEPAUTH-") > 0));
    let av = ok(
        auditship(&["archive", "verify", "--config", cfg.to_str().unwrap()]),
        "archive verify (s3)",
    );
    assert!(av.contains(", 0 failed"), "{av}");
    checkpoint_of_everything(port);
    let v = ok(
        auditship(&[
            "verify",
            "--store",
            data.to_str().unwrap(),
            "--pubkey",
            pubkey.to_str().unwrap(),
        ]),
        "verify after the second run",
    );
    assert!(v.contains("3600 expired"), "{v}");
    for (leaf, hash, _) in auth_leaves.iter().step_by(131) {
        check_old_proof(port, *leaf, hash, &old_cp);
    }
    assert_eq!(collector.term(), 0);
}
