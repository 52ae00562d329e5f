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
    let acfg = agent_config(
        dir.path(),
        &log.display().to_string(),
        &url,
        &format!("token = \"{INGEST_TOKEN}\""),
    );
    // Heartbeat every second when idle (the top-level key, before the tables).
    let text = std::fs::read_to_string(&acfg).unwrap();
    std::fs::write(&acfg, format!("heartbeat = \"1s\"\n{text}")).unwrap();
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
