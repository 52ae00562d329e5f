//! End-to-end tests of the journald input: a real journal file, written by
//! the real `systemd-journal-remote` from the journal export format, read by
//! the real `journalctl` that the real `auditship agent` runs, with the
//! agent SIGKILLed and restarted while entries are appended.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

mod common;

use common::{output_events, wait_for, Proc, Rng};

/// `systemd-journal-remote`, which turns export-format text into a journal
/// file (`.ci/run` installs the `systemd-journal-remote` package).
fn journal_remote() -> PathBuf {
    [
        "/lib/systemd/systemd-journal-remote",
        "/usr/lib/systemd/systemd-journal-remote",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("systemd-journal-remote is needed: apt-get install systemd-journal-remote")
}

/// The MESSAGE of entry `n`: a failed sshd login, so parsing is checked too.
fn message(n: u64) -> String {
    format!(
        "Failed password for invalid user u{n} from 10.1.{}.{} port {} ssh2",
        n / 250,
        n % 250,
        20000 + n % 40000
    )
}

/// Appends entries `range` to the journal file `journal` (created if needed).
fn append_entries(journal: &Path, range: std::ops::Range<u64>) {
    let mut text = String::new();
    for n in range {
        text.push_str(&format!(
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
             _HOSTNAME=jhost\nSYSLOG_IDENTIFIER=sshd\n_PID={}\n_SYSTEMD_UNIT=ssh.service\nPRIORITY=5\nMESSAGE={}\n\n",
            1_700_000_000_000_000 + n * 1000,
            1_000_000 + n * 1000,
            1000 + n % 100,
            message(n),
        ));
    }
    let mut child = Command::new(journal_remote())
        .arg(format!("--output={}", journal.display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("systemd-journal-remote starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "systemd-journal-remote failed"
    );
}

fn write_config(dir: &Path, journal_glob: &str, output: &Path, extra: &str) -> PathBuf {
    let cfg = dir.join("agent.toml");
    fs::write(
        &cfg,
        format!(
            r#"
state_dir = "{state}"
shutdown_grace = "20s"
heartbeat = "0s"

[[inputs]]
type = "journald"
name = "journal"
files = ["{journal_glob}"]
restart_delay = "200ms"
{extra}

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

/// The entry number in an event's raw journal entry.
fn entry_number(ev: &Value) -> u64 {
    let raw: Value = serde_json::from_str(ev["raw"].as_str().unwrap()).expect("raw is the entry");
    let msg = raw["MESSAGE"].as_str().unwrap();
    let user = msg.split_whitespace().nth(5).unwrap();
    user.trim_start_matches('u').parse().unwrap()
}

/// The agent is SIGKILLed at random moments while entries are appended to
/// the journal; each restart resumes from the cursor in the queue. Every
/// entry must arrive exactly once, in order, parsed as the sshd event it is.
#[test]
fn journal_entries_arrive_exactly_once_across_sigkills() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::create_dir_all(dir.join("journal")).unwrap();
    let journal = dir.join("journal/test.journal");
    let out = dir.join("out.ndjson");
    let cfg = write_config(
        dir,
        &format!("{}/*.journal", dir.join("journal").display()),
        &out,
        "",
    );
    let log = dir.join("agent.log");
    let mut rng = Rng::from_clock("journald_e2e");
    let total = 3000u64;
    let mut written = 0u64;
    append_entries(&journal, 0..400);
    written += 400;
    let mut agent = Proc::start(&["agent", "--config", cfg.to_str().unwrap()], &log);
    for _ in 0..6 {
        let step = rng.range(200, 500).min(total - written);
        append_entries(&journal, written..written + step);
        written += step;
        std::thread::sleep(Duration::from_millis(rng.range(50, 700)));
        agent.kill9();
        agent = Proc::start(&["agent", "--config", cfg.to_str().unwrap()], &log);
    }
    append_entries(&journal, written..total);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while (output_events(&out).len() as u64) < total {
        if std::time::Instant::now() > deadline {
            let files: Vec<_> = fs::read_dir(dir.join("journal"))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            panic!(
                "only {} of {total} entries arrived; journal files {files:?}; agent log:\n{}",
                output_events(&out).len(),
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Give a duplicate, if there were one, time to show.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(agent.term(), 0);
    let events = output_events(&out);
    let numbers: Vec<u64> = events.iter().map(entry_number).collect();
    assert_eq!(
        numbers,
        (0..total).collect::<Vec<_>>(),
        "every entry exactly once, in journal order"
    );
    let ev = &events[1234];
    assert_eq!(ev["action"], "ssh_login");
    assert_eq!(ev["outcome"], "failure");
    assert_eq!(ev["actor"]["user"], "u1234");
    assert_eq!(ev["src_ip"], "10.1.4.234");
    assert_eq!(ev["program"], "sshd");
    assert_eq!(ev["host"], "jhost");
    assert_eq!(ev["source"], "journal");
    assert_eq!(ev["fields"]["journald_unit"], "ssh.service");
    assert!(ev["ts"]
        .as_str()
        .unwrap()
        .starts_with("2023-11-14T22:13:21.234"));
}

/// `read_from = "end"` skips what the journal held when the agent first
/// started, and a journalctl that cannot be started stops the agent at once
/// with the input and the program named.
#[test]
fn read_from_end_skips_old_entries_and_a_missing_journalctl_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::create_dir_all(dir.join("journal")).unwrap();
    let journal = dir.join("journal/test.journal");
    append_entries(&journal, 0..50);
    let out = dir.join("out.ndjson");
    let glob = format!("{}/*.journal", dir.join("journal").display());
    let cfg = write_config(dir, &glob, &out, "read_from = \"end\"");
    let log = dir.join("agent.log");
    let agent = Proc::start(&["agent", "--config", cfg.to_str().unwrap()], &log);
    wait_for(
        "the agent following the journal",
        Duration::from_secs(20),
        || fs::read_to_string(&log).is_ok_and(|l| l.contains("following the journal")),
    );
    // journalctl needs a moment to reach the end before new entries count.
    std::thread::sleep(Duration::from_millis(500));
    append_entries(&journal, 50..60);
    wait_for("the new entries", Duration::from_secs(20), || {
        output_events(&out).len() >= 10
    });
    assert_eq!(agent.term(), 0);
    let numbers: Vec<u64> = output_events(&out).iter().map(entry_number).collect();
    assert_eq!(numbers, (50..60).collect::<Vec<_>>());

    let missing = dir.join("no-such-journalctl");
    let cfg = write_config(
        &dir.join("journal"),
        &glob,
        &out,
        &format!("journalctl = \"{}\"", missing.display()),
    );
    let status = Command::new(env!("CARGO_BIN_EXE_auditship"))
        .args(["agent", "--config", cfg.to_str().unwrap()])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!status.status.success());
    let err = String::from_utf8_lossy(&status.stderr);
    assert!(
        err.contains("input \"journal\"") && err.contains("no-such-journalctl"),
        "{err}"
    );
}

/// journalctl dying under the agent (killed, or the journal rotated away)
/// is restarted after the last entry read: nothing is lost or read twice,
/// and the restart is counted on /metrics.
#[test]
fn a_killed_journalctl_is_restarted_where_it_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::create_dir_all(dir.join("journal")).unwrap();
    let journal = dir.join("journal/test.journal");
    append_entries(&journal, 0..100);
    let out = dir.join("out.ndjson");
    let glob = format!("{}/*.journal", dir.join("journal").display());
    let metrics = common::free_port();
    let cfg = write_config(dir, &glob, &out, "");
    let text = fs::read_to_string(&cfg).unwrap()
        + &format!("\n[metrics]\naddress = \"127.0.0.1:{metrics}\"\n");
    fs::write(&cfg, text).unwrap();
    let log = dir.join("agent.log");
    let agent = Proc::start(&["agent", "--config", cfg.to_str().unwrap()], &log);
    wait_for("the first entries", Duration::from_secs(20), || {
        output_events(&out).len() >= 100
    });
    for round in 0..2u64 {
        let children = Command::new("pgrep")
            .args(["-P", &agent.pid().to_string(), "journalctl"])
            .output()
            .unwrap();
        let pid = String::from_utf8_lossy(&children.stdout).trim().to_string();
        assert!(!pid.is_empty(), "the agent runs journalctl");
        assert!(Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap()
            .success());
        let from = 100 + round * 50;
        append_entries(&journal, from..from + 50);
        wait_for("entries after the restart", Duration::from_secs(20), || {
            output_events(&out).len() as u64 >= from + 50
        });
    }
    // Input counters are published every 0.5 s.
    wait_for("two restarts on /metrics", Duration::from_secs(10), || {
        common::http_get(metrics, "/metrics").is_some_and(|(_, page)| {
            page.contains(
                "auditship_agent_input_restarts_total{input=\"journal\",type=\"journald\"} 2\n",
            )
        })
    });
    assert_eq!(agent.term(), 0);
    let numbers: Vec<u64> = output_events(&out).iter().map(entry_number).collect();
    assert_eq!(numbers, (0..200).collect::<Vec<_>>());
}
