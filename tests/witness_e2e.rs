//! End-to-end test of the agent as a witness of the collector's log: a real
//! agent and a real collector, the collector's history then rewritten (its
//! store wiped and started over under the same key), which the agent must
//! report as critical while it goes on shipping.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use auditship_core::checkpoint::SignedCheckpoint;
use auditship_core::identity::PublicKey;
use common::*;

fn witness_agent_config(
    dir: &Path,
    log: &Path,
    url: &str,
    collector_pub: &Path,
) -> std::path::PathBuf {
    agent_config_with(
        dir,
        "heartbeat = \"1s\"",
        &log.display().to_string(),
        url,
        &format!(
            "token = \"{INGEST_TOKEN}\"\nwitness_interval = \"300ms\"\ncollector_public_key_file = \"{}\"",
            collector_pub.display()
        ),
    )
}

fn kept(path: &Path) -> Option<SignedCheckpoint> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// The witness keeps checkpoints that the real collector proves consistent
/// as its log grows; once the collector's history is rewritten, the agent
/// logs a critical error, keeps the old checkpoint, and ships on.
#[test]
fn an_agent_detects_a_collector_that_rewrites_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let ccfg = collector_config(
        dir.path(),
        port,
        "insecure_plain_http = true",
        "[integrity]\ncheckpoint_interval = \"200ms\"\n",
    );
    let data = dir.path().join("collector-data");
    let start_collector = || {
        Proc::start(
            &["collector", "--config", ccfg.to_str().unwrap()],
            &dir.path().join("collector.log"),
        )
    };
    let collector = start_collector();
    let public = data.join("collector.pub");
    wait_for(
        "the collector's public key",
        Duration::from_secs(30),
        || fs::read_to_string(&public).is_ok_and(|t| PublicKey::parse(&t).is_ok()),
    );
    let key = PublicKey::load(&public).unwrap();
    let log = dir.path().join("app.log");
    let acfg = witness_agent_config(dir.path(), &log, &url, &public);
    let agent_log = dir.path().join("agent.log");
    let mut agent = Proc::start(&["agent", "--config", acfg.to_str().unwrap()], &agent_log);
    let witness = dir.path().join("agent-state/witness.json");

    // The log grows: the witness keeps checkpoints it proved consistent.
    append_lines(&log, (0..50).map(|n| format!("before the rewrite {n}")));
    wait_for(
        "a kept checkpoint of 50 events",
        Duration::from_secs(60),
        || kept(&witness).is_some_and(|c| c.size >= 50),
    );
    let first = kept(&witness).unwrap();
    first
        .verify(&key)
        .expect("kept checkpoint is the collector's");
    append_lines(&log, (0..50).map(|n| format!("still before {n}")));
    wait_for("a larger kept checkpoint", Duration::from_secs(60), || {
        kept(&witness).is_some_and(|c| c.size >= first.size + 50)
    });
    let text = fs::read_to_string(&agent_log).unwrap();
    assert!(
        !text.contains("critical"),
        "no alarm while the log only grows"
    );

    // The history is rewritten: the store is wiped and started over, under
    // the same key and the same log name.
    collector.kill9();
    std::thread::sleep(Duration::from_millis(500));
    let before = kept(&witness).unwrap();
    for e in fs::read_dir(&data).unwrap().flatten() {
        let name = e.file_name();
        if name != "collector.key" && name != "collector.pub" {
            let p = e.path();
            if p.is_dir() {
                fs::remove_dir_all(&p).unwrap();
            } else {
                fs::remove_file(&p).unwrap();
            }
        }
    }
    let _collector = start_collector();
    append_lines(&log, (0..20).map(|n| format!("after the rewrite {n}")));
    wait_for("the agent's alarm", Duration::from_secs(60), || {
        fs::read_to_string(&agent_log).is_ok_and(|t| {
            t.contains("critical") && t.contains("inconsistent with the one this agent witnessed")
        })
    });
    // Shipping goes on: the new lines reach the rewritten collector.
    wait_for("the new lines stored", Duration::from_secs(60), || {
        stored_raws(&url, &[])
            .iter()
            .filter(|r| r.starts_with("after the rewrite"))
            .count()
            == 20
    });
    assert_eq!(kept(&witness), Some(before), "the old checkpoint is kept");
    assert!(!agent.exited(), "the agent keeps running");
    assert_eq!(agent.term(), 0);
}
