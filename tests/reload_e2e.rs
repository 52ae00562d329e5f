//! Reload and drain, end to end: the real agent is sent SIGHUP while lines
//! flow (inputs added, removed, added back, a broken config in between),
//! then SIGTERM and a restart; its file output must hold every line exactly
//! once, in order per file.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

mod common;

use common::{append_lines, wait_for, Proc};

fn write_config(dir: &Path, inputs: &[&str], extra: &str) -> PathBuf {
    let cfg = dir.join("agent.toml");
    let mut text = format!(
        "state_dir = \"{}\"\nagent_id = \"reload-agent\"\nshutdown_grace = \"20s\"\nheartbeat = \"0s\"\n{extra}\n",
        dir.join("state").display()
    );
    for name in inputs {
        text.push_str(&format!(
            "[[inputs]]\ntype = \"file\"\nname = \"{name}\"\ninclude = [\"{}\"]\nformat = \"auto\"\ntimezone = \"UTC\"\nrescan_interval = \"200ms\"\n\n",
            dir.join(format!("{name}.log")).display()
        ));
    }
    text.push_str(&format!(
        "[[outputs]]\ntype = \"file\"\npath = \"{}\"\n",
        dir.join("out.ndjson").display()
    ));
    // Written whole, then renamed: a SIGHUP never reads half a file.
    fs::write(dir.join("agent.toml.tmp"), text).unwrap();
    fs::rename(dir.join("agent.toml.tmp"), &cfg).unwrap();
    cfg
}

fn sighup(agent: &Proc) {
    let ok = Command::new("kill")
        .args(["-HUP", &agent.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// `raw` of every complete line of the output.
fn output_raws(dir: &Path) -> Vec<String> {
    let Ok(mut text) = fs::read_to_string(dir.join("out.ndjson")) else {
        return Vec::new();
    };
    text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["raw"].as_str().unwrap().to_string()
        })
        .collect()
}

fn line(file: &str, n: u64) -> String {
    format!("2026-11-22T10:00:00+00:00 h sshd[1]: Accepted password for {file}{n} from 192.0.2.1 port 22 ssh2")
}

/// Appends numbered lines to `<name>.log` until `stop`; returns how many.
fn writer(dir: PathBuf, name: &'static str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let path = dir.join(format!("{name}.log"));
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            append_lines(&path, (n..n + 20).map(|i| line(name, i)));
            n += 20;
            std::thread::sleep(Duration::from_millis(10));
        }
        n
    })
}

fn log_count(dir: &Path, what: &str) -> usize {
    fs::read_to_string(dir.join("agent.log"))
        .unwrap_or_default()
        .matches(what)
        .count()
}

#[test]
fn reloads_and_a_drain_under_load_lose_and_duplicate_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let log = dir.join("agent.log");
    let cfg = write_config(&dir, &["a"], "");
    let stop = Arc::new(AtomicBool::new(false));
    let wa = writer(dir.clone(), "a", stop.clone());
    let wb = writer(dir.clone(), "b", stop.clone());
    let mut agent = Proc::start(&["agent", "--config", cfg.to_str().unwrap()], &log);
    wait_for("lines of a", Duration::from_secs(20), || {
        output_raws(&dir).len() > 500
    });

    // An input is added: b.log is read from its beginning.
    write_config(&dir, &["a", "b"], "");
    sighup(&agent);
    wait_for("the reload", Duration::from_secs(20), || {
        log_count(&dir, "config reloaded") == 1
    });
    wait_for("lines of b", Duration::from_secs(20), || {
        output_raws(&dir).iter().any(|r| r.contains("for b"))
    });

    // A broken config is refused; the running pipeline goes on.
    fs::write(
        &cfg,
        "state_dir = \"/tmp/x\"\n[[inputs]]\ntype = \"nope\"\n",
    )
    .unwrap();
    sighup(&agent);
    wait_for("the refusal", Duration::from_secs(20), || {
        log_count(&dir, "new config refused") >= 1
    });
    let before = output_raws(&dir).len();
    wait_for("lines still flowing", Duration::from_secs(20), || {
        output_raws(&dir).len() > before + 200
    });
    assert_eq!(log_count(&dir, "config reloaded"), 1);
    // So is one that would move the queue.
    write_config(&dir, &["a", "b"], "");
    let moved = fs::read_to_string(&cfg)
        .unwrap()
        .replace("reload-agent", "another-agent");
    fs::write(&cfg, moved).unwrap();
    sighup(&agent);
    wait_for("the second refusal", Duration::from_secs(20), || {
        log_count(&dir, "new config refused") >= 2
    });

    // An input is removed, then added back: it resumes where it stopped.
    write_config(&dir, &["b"], "");
    sighup(&agent);
    wait_for("the second reload", Duration::from_secs(20), || {
        log_count(&dir, "config reloaded") == 2
    });
    std::thread::sleep(Duration::from_millis(700));
    write_config(&dir, &["a", "b"], "");
    for i in 3..=6 {
        sighup(&agent);
        wait_for("another reload", Duration::from_secs(20), || {
            log_count(&dir, "config reloaded") == i
        });
        std::thread::sleep(Duration::from_millis(150));
    }

    // Drain: SIGTERM while lines flow, then a restart.
    assert_eq!(agent.term(), 0, "SIGTERM drains and exits 0");
    agent = Proc::start(&["agent", "--config", cfg.to_str().unwrap()], &log);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (na, nb) = (wa.join().unwrap(), wb.join().unwrap());
    wait_for("every line", Duration::from_secs(60), || {
        output_raws(&dir).len() as u64 >= na + nb
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(agent.term(), 0);

    let raws = output_raws(&dir);
    let mut next: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &raws {
        let who = r.split("for ").nth(1).unwrap().split(' ').next().unwrap();
        let (file, n) = who.split_at(1);
        let n: u64 = n.parse().unwrap();
        let want = next.entry(if file == "a" { "a" } else { "b" }).or_insert(0);
        assert_eq!(
            n, *want,
            "line {file}{n} out of order or twice (expected {file}{want})"
        );
        *want += 1;
    }
    assert_eq!(next.get("a"), Some(&na), "every line of a.log");
    assert_eq!(next.get("b"), Some(&nb), "every line of b.log");
    assert_eq!(raws.len() as u64, na + nb);
}
