//! Integrity end to end, with the real processes: heartbeats keep an idle
//! agent alive at the collector, a killed agent is reported silent and
//! then resumed, and the store still verifies afterwards.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn integrity_actions(url: &str) -> Vec<String> {
    let mut v: Vec<String> = stored_events(url, &["--category", "integrity"])
        .iter()
        .map(|v| {
            format!(
                "{}:{}",
                v["agent_id"].as_str().unwrap(),
                v["action"].as_str().unwrap()
            )
        })
        .collect();
    v.reverse(); // oldest first
    v
}

#[test]
fn heartbeats_keep_an_idle_agent_alive_and_a_dead_one_is_reported_silent_then_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let ccfg = collector_config(
        dir.path(),
        port,
        "insecure_plain_http = true",
        "[integrity]\nsilent_after = \"3s\"\ncheckpoint_interval = \"200ms\"\n",
    );
    let collector = Proc::start(
        &["collector", "--config", ccfg.to_str().unwrap()],
        &dir.path().join("c.log"),
    );
    let log = dir.path().join("auth.log");
    append_lines(
        &log,
        (0..20).map(|i| format!("Nov 22 10:00:{i:02} h sshd[1]: Accepted password for bob from 192.0.2.1 port 22 ssh2")),
    );
    // Heartbeat every second when idle.
    let acfg = agent_config_with(
        dir.path(),
        "heartbeat = \"1s\"",
        &log.display().to_string(),
        &url,
        &format!("token = \"{INGEST_TOKEN}\""),
    );
    let agent = Proc::start(
        &["agent", "--config", acfg.to_str().unwrap()],
        &dir.path().join("a.log"),
    );
    wait_for("20 lines stored", Duration::from_secs(30), || {
        stored_count(port) >= 20
    });
    // Idle for twice the silence threshold: heartbeats keep it alive.
    std::thread::sleep(Duration::from_secs(6));
    let actions = integrity_actions(&url);
    assert!(
        actions
            .iter()
            .filter(|a| *a == "e2e-agent:agent_heartbeat")
            .count()
            >= 3,
        "{actions:?}"
    );
    assert!(
        !actions.contains(&"@collector:agent_silent".to_string()),
        "{actions:?}"
    );

    agent.kill9();
    wait_for("the agent reported silent", Duration::from_secs(20), || {
        integrity_actions(&url).contains(&"@collector:agent_silent".to_string())
    });
    let agent = Proc::start(
        &["agent", "--config", acfg.to_str().unwrap()],
        &dir.path().join("a2.log"),
    );
    wait_for("the agent resumed", Duration::from_secs(20), || {
        integrity_actions(&url).contains(&"@collector:agent_resumed".to_string())
    });
    let silent = integrity_actions(&url)
        .iter()
        .filter(|a| *a == "@collector:agent_silent")
        .count();
    assert_eq!(silent, 1, "reported once");
    // Wait for a checkpoint that covers every record, then stop and verify.
    wait_for_checkpoint_of_everything(port);
    check_proof_api(port, &dir.path().join("collector-data"));
    assert_eq!(agent.term(), 0);
    assert_eq!(collector.term(), 0);
    let data = dir.path().join("collector-data");
    let out = Command::new(env!("CARGO_BIN_EXE_auditship"))
        .args(["verify", "--store"])
        .arg(&data)
        .arg("--pubkey")
        .arg(data.join("collector.pub"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("OK"), "{text}");
}

/// The proof endpoints against the running collector: every proof they
/// serve verifies against the signed checkpoint, and bad requests get 400
/// naming the parameter.
fn check_proof_api(port: u16, data: &std::path::Path) {
    use auditship_core::{hex, merkle};
    let json = |path: &str| -> (u16, serde_json::Value) {
        let (status, body) = http_get(port, path).expect("collector answers");
        (status, serde_json::from_str(&body).unwrap_or_default())
    };
    let (_, cp) = json("/v1/checkpoint");
    let size = cp["size"].as_u64().unwrap();
    let root = hex::decode_hash(cp["root"].as_str().unwrap()).unwrap();
    let hashes = |v: &serde_json::Value| -> Vec<auditship_core::Hash> {
        v["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| hex::decode_hash(h.as_str().unwrap()).unwrap())
            .collect()
    };
    for index in [0, size / 2, size - 1] {
        let (status, p) = json(&format!("/v1/proof/inclusion?index={index}&size={size}"));
        assert_eq!(status, 200, "{p}");
        let leaf = hex::decode_hash(p["leaf_hash"].as_str().unwrap()).unwrap();
        merkle::verify_inclusion(&leaf, index, size, &hashes(&p), &root).unwrap();
    }
    // Consistency from an earlier signed checkpoint to the latest.
    let earlier = std::fs::read_to_string(data.join("checkpoints.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|c| c["size"].as_u64().is_some_and(|s| s > 0 && s < size))
        .expect("an earlier checkpoint");
    let old = earlier["size"].as_u64().unwrap();
    let old_root = hex::decode_hash(earlier["root"].as_str().unwrap()).unwrap();
    let (status, p) = json(&format!("/v1/proof/consistency?first={old}&second={size}"));
    assert_eq!(status, 200, "{p}");
    merkle::verify_consistency(old, size, &old_root, &root, &hashes(&p)).unwrap();
    let (status, p) = json("/v1/proof/inclusion?size=3");
    assert_eq!(status, 400);
    assert!(
        p["error"].as_str().unwrap().contains("index is required"),
        "{p}"
    );
    let (status, p) = json(&format!(
        "/v1/proof/consistency?first=1&second={}",
        size + 1_000
    ));
    assert_eq!(status, 400);
    assert!(
        p["error"].as_str().unwrap().contains("the log's size"),
        "{p}"
    );
    let (status, p) = json("/v1/proof/consistency?first=x&second=2");
    assert_eq!(status, 400);
    assert!(
        p["error"]
            .as_str()
            .unwrap()
            .contains("first must be a whole number"),
        "{p}"
    );
}
