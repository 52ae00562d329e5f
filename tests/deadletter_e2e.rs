//! End-to-end dead-letter round trip with real processes: an agent's batch
//! refused with 413 is dead-lettered with its encoding (zstd, the default,
//! or gzip) while the rest arrives, and `auditship deadletter replay` sends
//! it with the same `Content-Encoding` once the collector takes it.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

fn start(dir: &Path, args: &[&str], log: &str) -> Proc {
    Proc::start(args, &dir.join(log))
}

#[test]
fn a_refused_zstd_batch_is_dead_lettered_and_replay_delivers_it_after_the_fix() {
    dead_letter_round_trip("zstd", "zstd");
}

#[test]
fn a_refused_gzip_batch_is_dead_lettered_and_replay_delivers_it_after_the_fix() {
    dead_letter_round_trip("gzip", "gzip");
}

/// An agent compressing with `compression` has a batch refused (413),
/// dead-letters it with its encoding (`encoding` in the letter), and
/// `deadletter replay` delivers it once the collector takes larger bodies.
fn dead_letter_round_trip(compression: &str, encoding: &str) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    // A collector that refuses bodies over 16 KiB.
    let small = "[limits]\nmax_body_bytes = \"16KiB\"\nmax_decompressed_bytes = \"64KiB\"\n";
    let ccfg = collector_config(dir.path(), port, "insecure_plain_http = true", small);
    let collector = start(
        dir.path(),
        &["collector", "--config", ccfg.to_str().unwrap()],
        "c.log",
    );
    let log = dir.path().join("app.log");
    let acfg = agent_config(
        dir.path(),
        &log.display().to_string(),
        &url,
        &format!("token = \"{INGEST_TOKEN}\"\ncompression = \"{compression}\""),
    );
    let agent = start(
        dir.path(),
        &["agent", "--config", acfg.to_str().unwrap()],
        "a.log",
    );
    let mut rng = Rng(7);
    let huge: String = (0..100_000)
        .map(|_| (b'a' + (rng.next() % 26) as u8) as char)
        .collect();
    let mut expected = vec!["before the big one".to_string(), huge.clone()];
    expected.extend((0..20).map(|n| format!("after the big one {n}")));
    append_lines(&log, expected.iter().cloned());
    let dl = dir.path().join("agent-state/deadletter/collector");
    wait_for(
        "a dead letter and the rest stored",
        Duration::from_secs(60),
        || std::fs::read_dir(&dl).is_ok_and(|d| d.count() == 2) && stored_count(port) == 21,
    );
    let list = Command::new(env!("CARGO_BIN_EXE_auditship"))
        .args(["deadletter", "list", "--config", acfg.to_str().unwrap()])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains("413")
            && listed.contains(&format!("events  {encoding}  "))
            && listed.contains("1 dead-lettered batch"),
        "{listed}"
    );
    let batch = std::fs::read_dir(&dl)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "batch"))
        .unwrap();
    let letter: serde_json::Value =
        serde_json::from_slice(&std::fs::read(batch.with_extension("json")).unwrap()).unwrap();
    assert_eq!(letter["encoding"], encoding, "{letter}");
    let body = std::fs::read(&batch).unwrap();
    let magic: &[u8] = if encoding == "zstd" {
        &[0x28, 0xb5, 0x2f, 0xfd]
    } else {
        &[0x1f, 0x8b]
    };
    assert!(body.starts_with(magic), "the body as sent, {encoding}");
    agent.kill9();

    // Fix the cause (a larger limit) and replay.
    collector.kill9();
    let ccfg = collector_config(dir.path(), port, "insecure_plain_http = true", "");
    let _collector = start(
        dir.path(),
        &["collector", "--config", ccfg.to_str().unwrap()],
        "c.log",
    );
    wait_for("collector up", Duration::from_secs(30), || {
        http_get(port, "/health").is_some()
    });
    let replay = Command::new(env!("CARGO_BIN_EXE_auditship"))
        .args(["deadletter", "replay", "--config", acfg.to_str().unwrap()])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&replay.stdout);
    assert!(
        replay.status.success() && out.contains("1 stored"),
        "{out}{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    assert_eq!(std::fs::read_dir(&dl).unwrap().count(), 0);
    assert_exactly_once(&stored_raws(&url, &[]), &expected);
}
