//! `/metrics` and `/health` on both roles: real processes are scraped over
//! HTTP and the counters are compared with what the test sent.

use std::collections::BTreeMap;
use std::time::Duration;

mod common;

use common::{
    agent_config_with, append_lines, collector_config, free_port, http_get, stored_count, wait_for,
    Proc, INGEST_TOKEN,
};

/// A scrape, as `name{labels}` -> value. Also checks every sample belongs
/// to a family announced by `# TYPE` before it.
fn scrape(port: u16) -> BTreeMap<String, f64> {
    let (status, body) = http_get(port, "/metrics").expect("metrics endpoint answers");
    assert_eq!(status, 200, "{body}");
    let mut typed = std::collections::BTreeSet::new();
    let mut samples = BTreeMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            typed.insert(name.to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let (key, value) = line.rsplit_once(' ').unwrap();
            let family = key.split('{').next().unwrap();
            assert!(typed.contains(family), "sample before its TYPE: {line}");
            samples.insert(key.to_string(), value.parse().unwrap());
        }
    }
    samples
}

fn get(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("{key} missing from the scrape: {:#?}", m.keys()))
}

/// 300 sshd lines, 40 lines no parser knows and 60 health checks a drop
/// filter discards go through a real agent into a real collector; both
/// scrapes must count exactly those.
#[test]
fn scraped_counters_match_what_was_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (port, cmetrics, ametrics) = (free_port(), free_port(), free_port());
    let ccfg = collector_config(
        dir,
        port,
        "insecure_plain_http = true",
        &format!("[metrics]\naddress = \"127.0.0.1:{cmetrics}\"\n"),
    );
    let log = dir.join("auth.log");
    let top = format!(
        "heartbeat = \"0s\"\n\n[metrics]\naddress = \"127.0.0.1:{ametrics}\"\n\n\
         [[filters]]\ntype = \"drop\"\nrules = [{{ url_prefix = \"/healthz\" }}]\n"
    );
    let acfg = agent_config_with(
        dir,
        &top,
        log.to_str().unwrap(),
        &format!("http://127.0.0.1:{port}"),
        &format!("token = \"{INGEST_TOKEN}\""),
    );
    let collector = Proc::start(
        &["collector", "--config", ccfg.to_str().unwrap()],
        &dir.join("collector.log"),
    );
    wait_for("collector health", Duration::from_secs(20), || {
        http_get(cmetrics, "/health/ready").is_some_and(|(s, _)| s == 200)
    });
    let mut lines = Vec::new();
    for n in 0..400u32 {
        lines.push(match n % 10 {
            0..=5 | 9 => format!(
                "2026-11-22T10:00:00+00:00 web sshd[42]: Failed password for bob{n} from 192.0.2.{} port {} ssh2",
                n % 200,
                1000 + n
            ),
            6 => format!("#### this is no log line {n} ####"),
            _ => format!(
                "192.0.2.{} - - [22/Nov/2026:10:00:00 +0000] \"GET /healthz?n={n} HTTP/1.1\" 200 2 \"-\" \"probe\"",
                n % 200
            ),
        });
    }
    // 7 of every 10 lines are sshd lines, 1 garbage, 2 health checks.
    append_lines(&log, lines);
    let agent = Proc::start(
        &["agent", "--config", acfg.to_str().unwrap()],
        &dir.join("agent.log"),
    );
    wait_for(
        "the events at the collector",
        Duration::from_secs(30),
        || stored_count(port) >= 320,
    );
    // Input counters are published every 0.5 s, acknowledgements a little
    // after delivery: wait for the scrape to settle.
    wait_for("the agent's counters", Duration::from_secs(20), || {
        let m = scrape(ametrics);
        m.get("auditship_agent_input_lines_total{input=\"logs\",type=\"file\"}") == Some(&400.0)
            && m.get("auditship_agent_queue_records") == Some(&0.0)
    });
    let a = scrape(ametrics);
    assert_eq!(
        get(
            &a,
            "auditship_agent_input_lines_total{input=\"logs\",type=\"file\"}"
        ),
        400.0
    );
    assert_eq!(
        get(&a, "auditship_agent_files_tracked{input=\"logs\"}"),
        1.0
    );
    assert_eq!(
        get(&a, "auditship_agent_parse_failures_total{format=\"auto\"}"),
        40.0
    );
    assert_eq!(
        get(
            &a,
            "auditship_agent_events_dropped_total{filter=\"drop[0]\"}"
        ),
        80.0
    );
    assert_eq!(get(&a, "auditship_agent_events_queued_total"), 320.0);
    assert_eq!(
        get(
            &a,
            "auditship_agent_output_events_total{output=\"collector\"}"
        ),
        320.0
    );
    assert_eq!(
        get(
            &a,
            "auditship_agent_output_events_by_input_total{output=\"collector\",input=\"logs\"}"
        ),
        320.0
    );
    assert_eq!(
        get(
            &a,
            "auditship_agent_output_dead_letters_total{output=\"collector\"}"
        ),
        0.0
    );
    assert_eq!(
        get(&a, "auditship_agent_queue_oldest_unacked_age_seconds"),
        0.0
    );
    assert!(
        get(
            &a,
            "auditship_agent_output_last_delivery_timestamp_seconds{output=\"collector\"}"
        ) > 1.7e9
    );
    assert_eq!(get(&a, "auditship_agent_ready"), 1.0);
    let c = scrape(cmetrics);
    assert_eq!(
        get(&c, "auditship_collector_store_events{chain=\"agents\"}"),
        320.0
    );
    assert_eq!(get(&c, "auditship_collector_events_stored_total"), 320.0);
    // TOFU pinned the agent's key: one integrity event in the collector's chain.
    assert_eq!(get(&c, "auditship_collector_integrity_events_total"), 1.0);
    assert_eq!(
        get(&c, "auditship_collector_store_events{chain=\"collector\"}"),
        1.0
    );
    assert_eq!(get(&c, "auditship_collector_duplicates_total"), 0.0);
    assert_eq!(
        get(&c, "auditship_collector_verification_failures_total"),
        0.0
    );
    assert_eq!(get(&c, "auditship_collector_agents"), 1.0);
    assert_eq!(get(&c, "auditship_collector_ready"), 1.0);
    // The shipped Grafana dashboard only uses families the processes expose.
    let families: std::collections::BTreeSet<String> = a
        .keys()
        .chain(c.keys())
        .map(|k| k.split('{').next().unwrap().to_string())
        .collect();
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/grafana/auditship.json"
    ))
    .unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let mut used = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("auditship_") {
                    used += 1;
                    assert!(
                        families.contains(word),
                        "dashboard uses {word}, which nothing exposes"
                    );
                }
            }
        }
    }
    assert!(used > 20, "the dashboard queries our metrics");
    let (status, body) = http_get(ametrics, "/health").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("\"ready\":true"), "{body}");
    assert_eq!(agent.term(), 0);
    assert_eq!(collector.term(), 0);
}
