//! End-to-end tests of `auditship agent`: the real binary, run as a separate
//! process, killed with SIGKILL, restarted, and checked by the content of
//! its file output.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

mod common;

use common::{wait_for, Proc, Rng};

/// The agent, as a process of its own; SIGKILLed when dropped.
struct Agent;

impl Agent {
    fn start(config: &Path, log: &Path) -> Proc {
        Proc::start(&["agent", "--config", config.to_str().unwrap()], log)
    }
}

fn write_config(dir: &Path, include: &str, output: &Path, extra: &str) -> PathBuf {
    let cfg = dir.join("agent.toml");
    fs::write(
        &cfg,
        format!(
            r#"
state_dir = "{state}"
shutdown_grace = "20s"
{extra}

[[inputs]]
type = "file"
name = "logs"
include = ["{include}"]
format = "auto"
timezone = "UTC"
partial_line_timeout = "300ms"
rotate_wait = "1s"
rescan_interval = "200ms"

[[outputs]]
type = "file"
path = "{out}"
"#,
            state = dir.join("state").display(),
            out = output.display(),
        ),
    )
    .unwrap();
    cfg
}

/// Every complete line of the output file, parsed.
fn output_events(path: &Path) -> Vec<Value> {
    let Ok(mut text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    // The agent may be in the middle of writing the last line.
    text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad output line {l:?}: {e}")))
        .collect()
}

/// The `raw` field of every complete line of the output file, heartbeats
/// left out.
fn output_raws(path: &Path) -> Vec<String> {
    output_events(path)
        .iter()
        .filter(|v| v["action"] != "agent_heartbeat")
        .map(|v| v["raw"].as_str().expect("raw is a string").to_string())
        .collect()
}

/// Checks that the output file is one unbroken hash chain from the start:
/// every line's hash recomputes, and its `prev_hash` is the line before's
/// `hash` (the first's is all zeros). Returns the number of heartbeats.
fn assert_one_chain(path: &Path) -> usize {
    let text = fs::read(path).unwrap();
    let mut prev = auditship_core::seal::GENESIS;
    let mut seq = 0;
    let mut heartbeats = 0;
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let u = auditship_core::seal::unseal(line).unwrap_or_else(|| {
            panic!(
                "line {}: not sealed: {}",
                i + 1,
                String::from_utf8_lossy(line)
            )
        });
        assert!(u.is_intact(), "line {}: hash does not recompute", i + 1);
        assert_eq!(
            u.prev,
            prev,
            "line {}: prev_hash is not the previous line's hash",
            i + 1
        );
        let v: Value = serde_json::from_slice(line).unwrap();
        let s = v["seq"].as_u64().expect("seq");
        assert!(s > seq, "line {}: seq {s} after {seq}", i + 1);
        seq = s;
        heartbeats += usize::from(v["action"] == "agent_heartbeat");
        prev = u.hash;
    }
    heartbeats
}

fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
                .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

const FILES: usize = 4;
const PER_FILE: usize = 50_000;
const ROTATE_EVERY: usize = 6_000;

/// The line for file `f`, rotation generation `g`, sequence `n`.
fn line(f: usize, g: usize, n: usize) -> String {
    format!(
        "app{f} gen {g:03} seq {n:06} user=svc{} action=update resource=/orders/{}",
        n % 97,
        n * 7
    )
}

/// Writes 200,000 lines into 4 files at a steady rate, rotating files 0 and 1
/// by rename and files 2 and 3 by copytruncate every few thousand lines.
fn writer(dir: PathBuf) {
    let mut gens = [0usize; FILES];
    let mut files: Vec<File> = (0..FILES)
        .map(|f| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(format!("app{f}.log")))
                .unwrap()
        })
        .collect();
    let mut buf = String::new();
    for chunk in 0..PER_FILE / 500 {
        for f in 0..FILES {
            buf.clear();
            for n in chunk * 500..(chunk + 1) * 500 {
                if n > 0 && n % ROTATE_EVERY == 0 {
                    files[f].write_all(buf.as_bytes()).unwrap();
                    buf.clear();
                    let path = dir.join(format!("app{f}.log"));
                    let rotated = dir.join(format!("app{f}.log.{:03}", gens[f]));
                    if f < 2 {
                        fs::rename(&path, &rotated).unwrap();
                        files[f] = OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&path)
                            .unwrap();
                    } else {
                        fs::copy(&path, &rotated).unwrap();
                        OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .unwrap()
                            .set_len(0)
                            .unwrap();
                    }
                    gens[f] += 1;
                }
                buf.push_str(&line(f, gens[f], n));
                buf.push('\n');
            }
            files[f].write_all(buf.as_bytes()).unwrap();
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The acceptance crash test: 200,000 lines in 4 files, rotated by rename and
/// by copytruncate during the run, the agent SIGKILLed at random moments at
/// least 10 times and restarted each time. The file output must hold every
/// line exactly once, in order within each file.
#[test]
fn crash_test_every_line_exactly_once_across_kills_and_rotations() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let out = tmp.path().join("out.ndjson");
    let cfg = write_config(
        tmp.path(),
        &format!("{}/app*.log*", logs.display()),
        &out,
        "",
    );
    let agent_log = tmp.path().join("agent.log");
    let mut rng = Rng::from_clock("crash test");
    let seed = rng.0;
    let writer = {
        let logs = logs.clone();
        std::thread::spawn(move || writer(logs))
    };
    let mut kills = 0;
    let mut agent = Agent::start(&cfg, &agent_log);
    while !writer.is_finished() || kills < 10 {
        std::thread::sleep(Duration::from_millis(150 + rng.range(0, 500)));
        agent.kill9();
        kills += 1;
        agent = Agent::start(&cfg, &agent_log);
    }
    writer.join().unwrap();
    let total = FILES * PER_FILE;
    wait_for("all lines in the output", Duration::from_secs(120), || {
        fs::metadata(&out).map(|m| m.len()).unwrap_or(0) > 0 && output_raws(&out).len() >= total
    });
    // Give a duplicate, if there were one, a moment to show up, then drain.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(agent.term(), 0, "clean exit after SIGTERM");

    let raws = output_raws(&out);
    let mut seen: HashMap<(usize, usize), usize> = HashMap::new();
    let mut last_in_file: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for raw in &raws {
        let parts: Vec<&str> = raw.split(' ').collect();
        let field = |i: usize| -> usize {
            parts
                .get(i)
                .and_then(|p| p.trim_start_matches("app").parse().ok())
                .unwrap_or_else(|| panic!("garbled line {raw:?} (seed {seed})"))
        };
        let (f, g, n) = (field(0), field(2), field(4));
        assert_eq!(raw, &line(f, g, n), "line content intact");
        *seen.entry((f, n)).or_default() += 1;
        if let Some(prev) = last_in_file.insert((f, g), n) {
            assert!(
                n > prev,
                "app{f} gen {g}: seq {n} after {prev} (seed {seed})"
            );
        }
    }
    let dups: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).take(5).collect();
    assert!(dups.is_empty(), "duplicates (seed {seed}): {dups:?}");
    let missing: Vec<_> = (0..FILES)
        .flat_map(|f| (0..PER_FILE).map(move |n| (f, n)))
        .filter(|k| !seen.contains_key(k))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "missing (seed {seed}): {missing:?}");
    assert_eq!(raws.len(), total);
    assert!(kills >= 10);
    assert_one_chain(&out);
}

/// Flipped bytes in a queue segment: the agent starts, reports the
/// quarantined record, and delivers everything else.
#[test]
fn corrupt_queue_record_is_quarantined_and_the_rest_delivered() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let text: String = (0..1000)
        .map(|n| format!("event number {n:05} happened\n"))
        .collect();
    fs::write(logs.join("a.log"), text).unwrap();
    // The output's directory does not exist yet: the output stalls, the queue fills.
    let out = tmp.path().join("later/out.ndjson");
    let cfg = write_config(tmp.path(), &format!("{}/*.log", logs.display()), &out, "");
    let log = tmp.path().join("agent.log");
    let agent = Agent::start(&cfg, &log);
    let queue = tmp.path().join("state/queue");
    wait_for("1000 events queued", Duration::from_secs(30), || {
        fs::read_dir(&queue)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                e.path().extension().is_some_and(|x| x == "seg")
                    && fs::read(e.path())
                        .is_ok_and(|b| b.windows(20).any(|w| w == b"event number 00999 h"))
            })
    });
    std::thread::sleep(Duration::from_millis(300));
    agent.kill9();
    // Flip a byte inside the record of event 500.
    let mut hit = false;
    for e in fs::read_dir(&queue).unwrap().flatten() {
        if e.path().extension().is_none_or(|x| x != "seg") {
            continue;
        }
        let mut b = fs::read(e.path()).unwrap();
        if let Some(at) = b.windows(18).position(|w| w == b"event number 00500") {
            b[at + 5] ^= 0x20;
            fs::write(e.path(), b).unwrap();
            hit = true;
        }
    }
    assert!(hit, "record of event 500 found in a segment");
    fs::create_dir(tmp.path().join("later")).unwrap();
    let agent = Agent::start(&cfg, &log);
    wait_for("999 events delivered", Duration::from_secs(30), || {
        output_raws(&out).len() >= 999
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(agent.term(), 0);
    let raws = output_raws(&out);
    let want: Vec<String> = (0..1000)
        .filter(|n| *n != 500)
        .map(|n| format!("event number {n:05} happened"))
        .collect();
    assert_eq!(raws, want);
    let quarantined: Vec<_> = fs::read_dir(queue.join("quarantine"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(quarantined.len(), 1, "one quarantined range");
    let agent_log = fs::read_to_string(&log).unwrap();
    assert!(
        agent_log.contains("quarantined"),
        "reported in the agent's log"
    );
}

/// A full queue pauses the input; nothing is dropped, and everything arrives
/// once the output resumes.
#[test]
fn full_queue_pauses_input_and_everything_arrives_after() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let n = 40_000;
    let text: String = (0..n)
        .map(|i| format!("192.0.2.{} - - [22/Nov/2026:08:00:00 +0000] \"GET /item/{i:06} HTTP/1.1\" 200 512 \"-\" \"probe\"\n", i % 250))
        .collect();
    fs::write(logs.join("access.log"), text).unwrap();
    let out = tmp.path().join("later/out.ndjson");
    let max = 4u64 << 20;
    let cfg = write_config(
        tmp.path(),
        &format!("{}/*.log", logs.display()),
        &out,
        "[queue]\nmax_bytes = \"4MiB\"\nsegment_bytes = \"2MiB\"",
    );
    let log = tmp.path().join("agent.log");
    let agent = Agent::start(&cfg, &log);
    let queue = tmp.path().join("state/queue");
    // The queue fills to its limit and stays there: the input is paused.
    wait_for("queue to fill", Duration::from_secs(30), || {
        dir_bytes(&queue) > max / 2
    });
    std::thread::sleep(Duration::from_secs(1));
    let full = dir_bytes(&queue);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        dir_bytes(&queue),
        full,
        "queue stopped growing: the input is paused"
    );
    assert!(full <= max, "queue within its limit: {full} > {max}");
    assert!(output_raws(&out).is_empty());
    // The output resumes.
    fs::create_dir(tmp.path().join("later")).unwrap();
    wait_for("all events delivered", Duration::from_secs(60), || {
        output_raws(&out).len() >= n
    });
    assert_eq!(agent.term(), 0);
    let raws = output_raws(&out);
    assert_eq!(raws.len(), n);
    for (i, raw) in raws.iter().enumerate() {
        assert!(
            raw.contains(&format!("/item/{i:06} ")),
            "event {i} in order: {raw}"
        );
    }
}

/// A file shorter than the fingerprint and a last line without newline are
/// both delivered.
#[test]
fn small_files_and_a_line_without_newline_are_delivered() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    fs::create_dir(&logs).unwrap();
    fs::write(logs.join("tiny.log"), "tiny\n").unwrap();
    fs::write(logs.join("open.log"), "first\nno newline at the end").unwrap();
    let out = tmp.path().join("out.ndjson");
    let cfg = write_config(tmp.path(), &format!("{}/*.log", logs.display()), &out, "");
    let log = tmp.path().join("agent.log");
    let agent = Agent::start(&cfg, &log);
    wait_for("three events", Duration::from_secs(20), || {
        output_raws(&out).len() >= 3
    });
    assert_eq!(agent.term(), 0);
    let text = fs::read_to_string(&out).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut raws: Vec<&str> = events.iter().map(|e| e["raw"].as_str().unwrap()).collect();
    raws.sort();
    assert_eq!(raws, ["first", "no newline at the end", "tiny"]);
    let partial = events
        .iter()
        .find(|e| e["raw"] == "no newline at the end")
        .unwrap();
    assert_eq!(partial["flags"], serde_json::json!(["no_newline"]));
    assert!(partial["source"].as_str().unwrap().ends_with("open.log"));
    assert!(partial["observed_ts"].is_string());
}

/// A bad config fails at startup with the file, line and key.
#[test]
fn bad_config_fails_at_startup_with_location() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("agent.toml");
    fs::write(&cfg, "state_dir = \"/tmp/x\"\n\n[[inputs]]\ntype = \"file\"\nname = \"a\"\ninclude = [\"/x\"]\nformat = \"xml\"\n\n[[outputs]]\ntype = \"stdout\"\n").unwrap();
    for cmd in ["agent", "validate"] {
        let out = Command::new(env!("CARGO_BIN_EXE_auditship"))
            .args([cmd, "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("agent.toml:"), "{cmd}: {err}");
        assert!(err.contains("xml"), "{cmd}: {err}");
    }
    let ok = Command::new(env!("CARGO_BIN_EXE_auditship"))
        .args([
            "validate",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/agent.toml"),
        ])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

/// Regression: a 256 KiB line of NUL bytes (common in logs after a host
/// crash) encoded to more than a queue record could hold; the error stopped
/// ingest, and after a restart the same line stopped it again.
#[test]
fn a_line_of_control_bytes_does_not_stall_the_agent() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let mut data = vec![0u8; 256 << 10];
    data.push(b'\n');
    data.extend_from_slice(b"the line after\n");
    fs::write(logs.join("crash.log"), &data).unwrap();
    let out = tmp.path().join("out.ndjson");
    let cfg = write_config(tmp.path(), &format!("{}/*.log", logs.display()), &out, "");
    let text = fs::read_to_string(&cfg).unwrap().replace(
        "rescan_interval = \"200ms\"",
        "rescan_interval = \"200ms\"\nmax_line_bytes = \"256KiB\"",
    );
    fs::write(&cfg, text).unwrap();
    let log = tmp.path().join("agent.log");
    let agent = Agent::start(&cfg, &log);
    wait_for("both lines delivered", Duration::from_secs(30), || {
        output_raws(&out).len() >= 2
    });
    assert_eq!(agent.term(), 0);
    let raws = output_raws(&out);
    assert_eq!(raws.len(), 2);
    assert!(raws[0].chars().all(|c| c == '\0') && !raws[0].is_empty());
    assert_eq!(raws[1], "the line after");
    // The truncated event is sealed once, and the chain runs through it.
    assert_one_chain(&out);
}

/// A full disk: the queue's filesystem fills up while the output is stalled.
/// The agent keeps running with its inputs paused, and once the output
/// resumes and frees space, every line arrives exactly once. Needs root to
/// mount a small tmpfs (CI runs as root).
#[test]
fn full_disk_pauses_inputs_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let small = tmp.path().join("small");
    let Some(_unmount) = common::Tmpfs::mount(&small, "6m") else {
        eprintln!("SKIPPED full_disk test: mounting a tmpfs needs root");
        return;
    };
    let logs = tmp.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let n = 30_000;
    let text: String = (0..n)
        .map(|i| format!("192.0.2.{} - - [22/Nov/2026:08:00:00 +0000] \"GET /disk/{i:06} HTTP/1.1\" 200 512 \"-\" \"probe\"\n", i % 250))
        .collect();
    fs::write(logs.join("access.log"), text).unwrap();
    let out = tmp.path().join("later/out.ndjson");
    let cfg = tmp.path().join("agent.toml");
    fs::write(
        &cfg,
        format!(
            "state_dir = \"{}\"\n[queue]\nmax_bytes = \"64MiB\"\nsegment_bytes = \"2MiB\"\n\
             [[inputs]]\ntype = \"file\"\nname = \"logs\"\ninclude = [\"{}/*.log\"]\nformat = \"nginx\"\nmax_line_bytes = \"64KiB\"\n\
             [[outputs]]\ntype = \"file\"\npath = \"{}\"\n",
            small.join("state").display(),
            logs.display(),
            out.display()
        ),
    )
    .unwrap();
    let log = tmp.path().join("agent.log");
    let mut agent = Agent::start(&cfg, &log);
    // The 6 MiB filesystem fills up long before the 64 MiB queue limit.
    wait_for("the disk to fill", Duration::from_secs(30), || {
        fs::read_to_string(&log).is_ok_and(|l| l.contains("queue write failed"))
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        agent.child.try_wait().unwrap().is_none(),
        "the agent keeps running on a full disk"
    );
    assert!(output_raws(&out).is_empty());
    fs::create_dir(tmp.path().join("later")).unwrap();
    // This wait timed out twice under CI load (it takes ~7 s alone); say
    // how far delivery got and what the agent logged, to find the stall.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while output_raws(&out).len() < n {
        if std::time::Instant::now() > deadline {
            let text = fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            panic!(
                "timed out waiting for all lines delivered: {} of {n}; agent log (newest first):\n{}",
                output_raws(&out).len(),
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(agent.term(), 0);
    let raws = output_raws(&out);
    assert_eq!(raws.len(), n);
    for (i, raw) in raws.iter().enumerate() {
        assert!(
            raw.contains(&format!("/disk/{i:06} ")),
            "line {i} once and in order: {raw}"
        );
    }
    agent = Agent::start(&cfg, &log);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(agent.term(), 0);
    assert_eq!(
        output_raws(&out).len(),
        n,
        "nothing delivered twice after a restart"
    );
}

/// The chain survives SIGKILL: lines flow to a file output in bursts, with
/// pauses long enough for heartbeats, segments small enough to be delivered
/// and deleted between kills (so the head must come from a positions
/// snapshot), and the agent is killed at random moments several times. The
/// output is every line exactly once, and one unbroken chain: each line's
/// hash recomputes and its `prev_hash` is the previous line's `hash`. A
/// fork (two events after the same one) or a break would fail this.
#[test]
fn the_hash_chain_is_unbroken_across_sigkills_rotations_and_heartbeats() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let out = tmp.path().join("out.ndjson");
    let cfg = write_config(
        tmp.path(),
        &format!("{}/*.log", logs.display()),
        &out,
        "heartbeat = \"1s\"\n[queue]\nmax_bytes = \"8MiB\"\nsegment_bytes = \"2MiB\"",
    );
    let log = tmp.path().join("agent.log");
    let mut rng = Rng::from_clock("chain crash test");
    let seed = rng.0;
    let file = logs.join("app.log");
    let mut agent = Agent::start(&cfg, &log);
    let mut n = 0;
    for round in 0..8 {
        // A burst of lines (about 2.5 MB, more than a segment), sometimes a pause.
        for _ in 0..5 {
            common::append_lines(
                &file,
                (n..n + 1200).map(|i| format!("chain line {i:06} {}", "x".repeat(380))),
            );
            n += 1200;
            std::thread::sleep(Duration::from_millis(rng.range(10, 120)));
        }
        if round % 3 == 1 {
            std::thread::sleep(Duration::from_millis(1500)); // a heartbeat or two
        }
        std::thread::sleep(Duration::from_millis(rng.range(0, 400)));
        agent.kill9();
        agent = Agent::start(&cfg, &log);
    }
    wait_for("every line in the output", Duration::from_secs(120), || {
        output_raws(&out).len() >= n
    });
    // Idle for a while: heartbeats follow the last line, still in the chain.
    let before = output_events(&out).len();
    wait_for(
        "a heartbeat after the last line",
        Duration::from_secs(20),
        || {
            output_events(&out)[before..]
                .iter()
                .any(|v| v["action"] == "agent_heartbeat")
        },
    );
    agent.kill9();
    let agent = Agent::start(&cfg, &log);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(agent.term(), 0);
    let raws = output_raws(&out);
    let want: Vec<String> = (0..n)
        .map(|i| format!("chain line {i:06} {}", "x".repeat(380)))
        .collect();
    assert_eq!(raws.len(), want.len(), "every line once (seed {seed})");
    assert!(raws == want, "every line once and in order (seed {seed})");
    let heartbeats = assert_one_chain(&out);
    assert!(heartbeats >= 1, "heartbeats are in the chain");
    let hb = output_events(&out)
        .into_iter()
        .find(|v| v["action"] == "agent_heartbeat")
        .unwrap();
    assert_eq!(hb["category"], "integrity");
    assert_eq!(hb["outcome"], "success");
    assert!(hb["host"].is_string());
}

/// `--print-identity` prints the agent id and a public key, creating the
/// key (mode 0600) once; the agent then signs with that same key.
#[test]
fn print_identity_creates_the_key_once_and_prints_it() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.ndjson");
    let cfg = write_config(
        tmp.path(),
        "/nonexistent/*.log",
        &out,
        "agent_id = \"web-7\"",
    );
    let print = || {
        let o = Command::new(env!("CARGO_BIN_EXE_auditship"))
            .args(["agent", "--print-identity", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let first = print();
    let field = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in {text:?}"))
    };
    assert_eq!(field(&first, "agent_id"), "web-7");
    let key = field(&first, "public_key");
    assert!(
        auditship_core::identity::PublicKey::parse(&key).is_ok(),
        "{key}"
    );
    let key_file = tmp.path().join("state/identity.key");
    let mode = fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(print(), first, "the same key the second time");
    let log = tmp.path().join("agent.log");
    let agent = Agent::start(&cfg, &log);
    wait_for("the agent to load its key", Duration::from_secs(20), || {
        fs::read_to_string(&log).is_ok_and(|l| l.contains("agent identity loaded"))
    });
    assert_eq!(agent.term(), 0);
    assert_eq!(field(&print(), "public_key"), key);
}
