//! End-to-end tests of shipping: a real `auditship agent` and a real
//! `auditship collector`, separate processes, killed with SIGKILL, and
//! checked by querying everything the collector stored.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

fn line(n: usize) -> String {
    format!(
        "10.{}.{}.{} - - [22/Nov/2026:10:{:02}:{:02} +0000] \"GET /item/{n} HTTP/1.1\" 200 {} \"-\" \"e2e\"",
        n % 200,
        (n / 200) % 250,
        1 + n % 250,
        (n / 60) % 60,
        n % 60,
        100 + n % 900
    )
}

fn start_collector(dir: &Path, cfg: &Path) -> Proc {
    Proc::start(
        &["collector", "--config", cfg.to_str().unwrap()],
        &dir.join("collector.log"),
    )
}

fn start_agent(dir: &Path, cfg: &Path) -> Proc {
    Proc::start(
        &["agent", "--config", cfg.to_str().unwrap()],
        &dir.join("agent.log"),
    )
}

/// A collector on a free port (plain HTTP) and an agent tailing one log into it.
struct Setup {
    dir: tempfile::TempDir,
    port: u16,
    url: String,
    ccfg: PathBuf,
    log: PathBuf,
    acfg: PathBuf,
}

/// A collector and an agent config; `output_extra` goes into the agent's
/// collector output.
fn setup(output_extra: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let ccfg = collector_config(dir.path(), port, "insecure_plain_http = true", "");
    let log = dir.path().join("access.log");
    let acfg = agent_config(
        dir.path(),
        &log.display().to_string(),
        &url,
        &format!("token = \"{INGEST_TOKEN}\"\n{output_extra}"),
    );
    Setup {
        dir,
        port,
        url,
        ccfg,
        log,
        acfg,
    }
}

fn up(port: u16) -> bool {
    http_get(port, "/health").is_some_and(|(s, _)| s == 200)
}

#[test]
fn collector_outage_of_30s_loses_and_duplicates_nothing() {
    // gzip, as agents compressed before zstd (the other test uses the
    // default, zstd).
    let Setup {
        dir,
        port,
        url,
        ccfg,
        log,
        acfg,
    } = setup("compression = \"gzip\"");
    let collector = start_collector(dir.path(), &ccfg);
    wait_for("collector up", Duration::from_secs(30), || up(port));
    let _agent = start_agent(dir.path(), &acfg);

    const TOTAL: usize = 100_000;
    let expected: Vec<String> = (0..TOTAL).map(line).collect();
    // First half, then the collector dies while the second half is written.
    for chunk in expected[..TOTAL / 2].chunks(5_000) {
        append_lines(&log, chunk.iter().cloned());
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for("some events stored", Duration::from_secs(60), || {
        stored_count(port) > 10_000
    });
    collector.kill9();
    let down_since = Instant::now();
    for chunk in expected[TOTAL / 2..].chunks(5_000) {
        append_lines(&log, chunk.iter().cloned());
        std::thread::sleep(Duration::from_millis(500));
    }
    while down_since.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _collector = start_collector(dir.path(), &ccfg);
    wait_for("every event stored", Duration::from_secs(120), || {
        stored_count(port) >= TOTAL as u64
    });
    // Give a duplicate the chance to show up, then check exactly once.
    std::thread::sleep(Duration::from_secs(1));
    let raws = stored_raws(&url, &[]);
    assert_exactly_once(&raws, &expected);
}

#[test]
fn agent_and_collector_killed_at_random_moments_store_every_line_once() {
    let Setup {
        dir,
        port,
        url,
        ccfg,
        log,
        acfg,
    } = setup("");
    let mut collector = Some(start_collector(dir.path(), &ccfg));
    wait_for("collector up", Duration::from_secs(30), || up(port));
    let mut agent = Some(start_agent(dir.path(), &acfg));

    const TOTAL: usize = 200_000;
    let expected: Vec<String> = (0..TOTAL).map(line).collect();
    let writer = {
        let (log, lines) = (log.clone(), expected.clone());
        std::thread::spawn(move || {
            for chunk in lines.chunks(2_000) {
                append_lines(&log, chunk.iter().cloned());
                std::thread::sleep(Duration::from_millis(40));
            }
        })
    };
    let mut rng = Rng(0x5eed_cafe);
    let (mut agent_kills, mut collector_kills) = (0, 0);
    while agent_kills < 6 || collector_kills < 6 || !writer.is_finished() {
        std::thread::sleep(Duration::from_millis(rng.range(200, 1_500)));
        if rng.next() % 2 == 0 {
            agent.take().unwrap().kill9();
            agent_kills += 1;
            std::thread::sleep(Duration::from_millis(rng.range(0, 300)));
            agent = Some(start_agent(dir.path(), &acfg));
        } else {
            collector.take().unwrap().kill9();
            collector_kills += 1;
            std::thread::sleep(Duration::from_millis(rng.range(0, 1_000)));
            collector = Some(start_collector(dir.path(), &ccfg));
        }
        if agent_kills + collector_kills > 60 {
            break;
        }
    }
    writer.join().unwrap();
    assert!(
        agent_kills >= 5 && collector_kills >= 5,
        "{agent_kills} agent and {collector_kills} collector kills"
    );
    wait_for("every event stored", Duration::from_secs(180), || {
        stored_count(port) >= TOTAL as u64
    });
    std::thread::sleep(Duration::from_secs(1));
    let raws = stored_raws(&url, &[]);
    assert_exactly_once(&raws, &expected);
    drop(agent);
    drop(collector);
}
