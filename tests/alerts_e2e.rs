//! Alerts end to end: a real `auditship agent` tails an sshd auth.log into
//! a real `auditship collector` with the default rules and a webhook; a
//! recorded brute-force attack (50 failed passwords from one address within
//! a minute, interleaved with normal traffic from other addresses) must
//! reach a real HTTP receiver as exactly one alert with its count and
//! source address, be listed by `auditship alerts list`, and be counted on
//! the collector's /metrics.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auditship_core::Timestamp;
use common::*;

/// A minimal real HTTP/1.1 receiver: records each POST body, answers 200.
fn webhook_receiver() -> (u16, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut len = 0usize;
            let mut first = String::new();
            if r.read_line(&mut first).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; len];
            if r.read_exact(&mut body).is_ok() && first.starts_with("POST /hook ") {
                g.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, got)
}

/// An RFC 3164 auth.log line `secs` seconds after `t0` (UTC).
fn auth_line(t0: i64, secs: i64, host: &str, msg: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (_, mo, d, h, mi, s) = Timestamp::new(t0 + secs, 0, 0).unwrap().civil();
    format!(
        "{} {d:>2} {h:02}:{mi:02}:{s:02} {host} {msg}",
        MONTHS[mo as usize - 1]
    )
}

#[test]
fn a_replayed_brute_force_attack_is_one_alert_with_its_count_at_the_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{port}");
    let (hook_port, received) = webhook_receiver();
    let ccfg = collector_config(
        dir.path(),
        port,
        "insecure_plain_http = true",
        &format!(
            r#"[metrics]
address = "127.0.0.1:{metrics}"

[alerts]
notify_delay = "2s"

[[alerts.webhooks]]
name = "test"
url = "http://127.0.0.1:{hook_port}/hook"
backoff_initial = "100ms"
backoff_max = "1s"
"#
        ),
    );
    let log = dir.path().join("auth.log");
    std::fs::write(&log, "").unwrap();
    let acfg = agent_config_with(
        dir.path(),
        "heartbeat = \"0s\"\n\n[metrics]\nenabled = false\n",
        &log.display().to_string(),
        &url,
        &format!("token = \"{INGEST_TOKEN}\""),
    );
    let collector = Proc::start(
        &["collector", "--config", ccfg.to_str().unwrap()],
        &dir.path().join("collector.log"),
    );
    wait_for("collector up", Duration::from_secs(30), || {
        http_get(port, "/health").is_some_and(|(s, _)| s == 200)
    });
    let _agent = Proc::start(
        &["agent", "--config", acfg.to_str().unwrap()],
        &dir.path().join("agent.log"),
    );

    // The recorded attack: 50 failures from 203.0.113.50 within 50 s, with
    // normal traffic between them: other addresses failing once or twice,
    // a user logging in from her usual address, sessions, cron.
    let t0 = Timestamp::now_utc().unix_secs() - 60;
    let mut lines = Vec::new();
    let mut expected = 0;
    for i in 0..50 {
        lines.push(auth_line(
            t0,
            i,
            "web-1",
            &format!(
                "sshd[{}]: Failed password for root from 203.0.113.50 port {} ssh2",
                3000 + i,
                40000 + i
            ),
        ));
        expected += 1;
        match i % 5 {
            0 => lines.push(auth_line(
                t0,
                i,
                "web-1",
                &format!(
                    "sshd[{}]: Failed password for invalid user admin from 198.51.100.{} port 5{i:04} ssh2",
                    4000 + i,
                    i / 5
                ),
            )),
            1 => lines.push(auth_line(
                t0,
                i,
                "web-1",
                "sshd[5001]: Accepted publickey for alice from 192.0.2.10 port 51000 ssh2: ED25519 SHA256:abc",
            )),
            2 => lines.push(auth_line(
                t0,
                i,
                "web-1",
                "sshd[5001]: pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
            )),
            3 => lines.push(auth_line(
                t0,
                i,
                "web-1",
                "CRON[6001]: (root) CMD (run-parts /etc/cron.hourly)",
            )),
            _ => {}
        }
    }
    append_lines(&log, lines.clone());

    wait_for("the alert at the webhook", Duration::from_secs(60), || {
        !received.lock().unwrap().is_empty()
    });
    // Longer than notify_delay again: a second notification would be here.
    std::thread::sleep(Duration::from_secs(5));
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "exactly one notification: {got:#?}");
    let a = &got[0]["alert"];
    assert_eq!(a["rule"], "ssh_brute_force");
    assert_eq!(a["status"], "firing");
    assert_eq!(a["count"], expected, "{a:#}");
    assert_eq!(a["src_ip"], "203.0.113.50");
    assert_eq!(a["user"], "root");
    assert_eq!(a["group"]["src_ip"], "203.0.113.50");
    assert!(got[0]["stored"]["leaf"].is_u64(), "{:#}", got[0]);

    // `auditship alerts list` shows it, from the log.
    let list = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_auditship"))
            .args([
                "alerts",
                "list",
                "--url",
                &url,
                "--token",
                READER_TOKEN,
                "--since",
                "1h",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let listed: Vec<serde_json::Value> = serde_json::from_str(&list(&["--json"])).unwrap();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["id"], a["id"]);
    assert_eq!(listed[0]["count"], expected);
    assert_eq!(listed[0]["src_ip"], "203.0.113.50");
    let table = list(&["--rule", "ssh_brute_force"]);
    assert!(
        table.contains("ssh_brute_force") && table.contains("src_ip=203.0.113.50"),
        "{table}"
    );
    assert_eq!(
        list(&["--rule", "sudo_not_in_sudoers"]).lines().count(),
        1,
        "header only"
    );

    // The collector's metrics count it.
    let (_, m) = http_get(metrics, "/metrics").expect("metrics");
    for want in [
        "auditship_collector_alerts_fired_total{rule=\"ssh_brute_force\"} 1",
        "auditship_collector_alerts_fired_total{rule=\"ssh_new_source\"} 0",
        "auditship_collector_alert_webhook_sent_total{webhook=\"test\"} 1",
        "auditship_collector_alert_webhook_failures_total{webhook=\"test\"} 0",
        "auditship_collector_alerts_feed_overflow_events_total 0",
    ] {
        assert!(m.contains(want), "missing {want:?} in\n{m}");
    }
    // A clean stop with an open alert ends promptly (the alerts thread lets
    // the commit thread go) and sends nothing new: the count did not grow.
    assert_eq!(collector.term(), 0);
    assert_eq!(received.lock().unwrap().len(), 1);
}
