//! End to end with the real binary: `auditship agent` tails an `audit.log`
//! of multi-record events (executions with hex arguments, an argument split
//! across EXECVE records, single-record logins and sudo commands), written
//! in bursts whose writes cut lines in the middle, rotated by rename half
//! way, while the agent is SIGKILLed and restarted again and again. Every
//! event must arrive exactly once, reassembled (its `raw` is exactly its
//! lines), in order within each file.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

mod common;

use common::{wait_for, Proc, Rng};

const EVENTS: u64 = 2000;
const ROTATE_AT: u64 = 1000;

/// Hex of `s`, as auditd encodes untrusted strings.
fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02X}")).collect()
}

/// The `msg=audit(…)` id of event `n`.
fn id(n: u64) -> String {
    format!(
        "{}.{:03}:{}",
        1_700_000_000 + n / 10,
        (n % 10) * 100,
        10_000 + n
    )
}

/// The lines of event `n`, and its expected action and command.
fn event(n: u64) -> (Vec<String>, &'static str, Option<String>) {
    let id = id(n);
    let pid = 20_000 + n;
    let syscall = |comm: &str, exe: &str| {
        format!(
            "type=SYSCALL msg=audit({id}): arch=c000003e syscall=59 success=yes exit=0 a0=55a0 a1=55a1 a2=55a2 a3=0 items=1 ppid=1999 pid={pid} auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=9 comm=\"{comm}\" exe=\"{exe}\" subj=unconfined key=\"exec\""
        )
    };
    match n % 10 {
        0 | 5 => (
            vec![format!(
                "type=USER_LOGIN msg=audit({id}): pid={pid} uid=0 auid=4294967295 ses=4294967295 subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg='op=login acct=\"root\" exe=\"/usr/sbin/sshd\" hostname=? addr=203.0.113.{} terminal=ssh res=failed'",
                n % 250
            )],
            "user_login",
            None,
        ),
        1 => {
            let cmd = format!("systemctl restart app{n}");
            (
                vec![format!(
                    "type=USER_CMD msg=audit({id}): pid={pid} uid=1000 auid=1000 ses=9 subj=unconfined msg='cwd=\"/home/alice\" cmd={} exe=\"/usr/bin/sudo\" terminal=pts/0 res=success'",
                    hex(&cmd)
                )],
                "sudo_command",
                Some(cmd),
            )
        }
        3 | 7 => {
            // python3 -c 'print("event N")', the third argument in two pieces.
            let arg = format!("print(\"event {n}\")");
            let (a, b) = arg.split_at(6);
            (
                vec![
                    syscall("python3", "/usr/bin/python3.11"),
                    format!(
                        "type=EXECVE msg=audit({id}): argc=3 a0=\"python3\" a1=\"-c\" a2_len={} a2[0]={}",
                        arg.len(),
                        hex(a)
                    ),
                    format!("type=EXECVE msg=audit({id}): a2[1]={}", hex(b)),
                    format!("type=CWD msg=audit({id}): cwd=\"/srv\""),
                    format!(
                        "type=PROCTITLE msg=audit({id}): proctitle={}",
                        hex(&format!("python3\0-c\0{arg}"))
                    ),
                ],
                "process_executed",
                Some(format!("python3 -c {arg}")),
            )
        }
        _ => {
            // cat 'file N.txt' (a space: hex-encoded).
            let file = format!("file {n}.txt");
            (
                vec![
                    syscall("cat", "/usr/bin/cat"),
                    format!(
                        "type=EXECVE msg=audit({id}): argc=2 a0=\"cat\" a1={}",
                        hex(&file)
                    ),
                    format!("type=CWD msg=audit({id}): cwd=\"/home/alice\""),
                    format!(
                        "type=PATH msg=audit({id}): item=0 name=\"/usr/bin/cat\" inode=77 dev=08:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0"
                    ),
                    format!(
                        "type=PROCTITLE msg=audit({id}): proctitle={}",
                        hex(&format!("cat\0{file}"))
                    ),
                ],
                "process_executed",
                Some(format!("cat {file}")),
            )
        }
    }
}

/// Writes every event in bursts, each burst in up to three writes cut at
/// random bytes (so lines are torn between writes, never for long), and
/// rotates the log by rename between two events half way.
fn writer(dir: PathBuf, seed: u64) {
    let mut rng = Rng(seed);
    let path = dir.join("audit.log");
    let open = |p: &Path| -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap()
    };
    let mut f = open(&path);
    let mut n = 0;
    while n < EVENTS {
        if n == ROTATE_AT {
            fs::rename(&path, dir.join("audit.log.1")).unwrap();
            f = open(&path);
        }
        let mut end = (n + rng.range(1, 40)).min(EVENTS);
        if n < ROTATE_AT {
            end = end.min(ROTATE_AT);
        }
        let mut text = String::new();
        for i in n..end {
            for l in event(i).0 {
                text.push_str(&l);
                text.push('\n');
            }
        }
        n = end;
        let bytes = text.as_bytes();
        let cut1 = rng.range(0, bytes.len() as u64) as usize;
        let cut2 = rng.range(cut1 as u64, bytes.len() as u64 + 1) as usize;
        for piece in [&bytes[..cut1], &bytes[cut1..cut2], &bytes[cut2..]] {
            f.write_all(piece).unwrap();
            std::thread::sleep(Duration::from_millis(rng.range(0, 15)));
        }
        std::thread::sleep(Duration::from_millis(rng.range(10, 60)));
    }
}

fn write_config(dir: &Path, logs: &Path, out: &Path) -> PathBuf {
    let cfg = dir.join("agent.toml");
    fs::write(
        &cfg,
        format!(
            r#"state_dir = "{state}"
shutdown_grace = "20s"

[[inputs]]
type = "file"
name = "audit"
include = ["{logs}/audit.log*"]
format = "auditd"
group_timeout = "2s"
rotate_wait = "1s"
rescan_interval = "200ms"

[[outputs]]
type = "file"
path = "{out}"
"#,
            state = dir.join("state").display(),
            logs = logs.display(),
            out = out.display(),
        ),
    )
    .unwrap();
    cfg
}

/// Every complete line of the output file, heartbeats left out.
fn output(path: &Path) -> Vec<Value> {
    let Ok(mut text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .filter(|v| v["action"] != "agent_heartbeat")
        .collect()
}

fn start(cfg: &Path, log: &Path) -> Proc {
    Proc::start(&["agent", "--config", cfg.to_str().unwrap()], log)
}

#[test]
fn every_audit_event_arrives_once_reassembled_across_sigkills() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let out = tmp.path().join("out.ndjson");
    let cfg = write_config(tmp.path(), &logs, &out);
    let agent_log = tmp.path().join("agent.log");
    let mut rng = Rng::from_clock("auditd crash test");
    let seed = rng.0;
    let writer = {
        let logs = logs.clone();
        std::thread::spawn(move || writer(logs, seed))
    };
    let mut agent = start(&cfg, &agent_log);
    let mut kills = 0;
    while !writer.is_finished() || kills < 8 {
        std::thread::sleep(Duration::from_millis(rng.range(150, 700)));
        agent.kill9();
        kills += 1;
        agent = start(&cfg, &agent_log);
    }
    writer.join().unwrap();
    wait_for(
        "every event in the output",
        Duration::from_secs(120),
        || output(&out).len() as u64 >= EVENTS,
    );
    // Longer than the group timeout: a duplicate, were there one, shows.
    std::thread::sleep(Duration::from_millis(3000));
    assert_eq!(agent.term(), 0, "clean exit after SIGTERM");

    let events = output(&out);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut last_serial = [0u64; 2];
    for ev in &events {
        let audit_id = ev["fields"]["audit_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no audit_id (seed {seed}): {ev}"));
        let serial: u64 = audit_id.rsplit(':').next().unwrap().parse().unwrap();
        let n = serial - 10_000;
        let (lines, action, command) = event(n);
        assert_eq!(
            ev["raw"].as_str().unwrap(),
            lines.join("\n"),
            "event {n} reassembled exactly (seed {seed})"
        );
        assert_eq!(ev["action"], action, "event {n}");
        if let Some(c) = command {
            assert_eq!(ev["command"], c.as_str(), "event {n}");
        }
        assert!(
            ev["fields"].get("audit_continued").is_none(),
            "event {n} whole"
        );
        assert!(
            ev.get("flags").is_none(),
            "event {n}: no torn or split lines"
        );
        let gen = usize::from(n >= ROTATE_AT);
        assert!(
            serial > last_serial[gen],
            "in order within a file: {serial} after {} (seed {seed})",
            last_serial[gen]
        );
        last_serial[gen] = serial;
        *seen.entry(audit_id.to_string()).or_default() += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).take(5).collect();
    assert!(dups.is_empty(), "duplicates (seed {seed}): {dups:?}");
    let missing: Vec<String> = (0..EVENTS)
        .map(id)
        .filter(|i| !seen.contains_key(i))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "missing (seed {seed}): {missing:?}");
    assert_eq!(events.len() as u64, EVENTS);
    assert!(kills >= 8);
}
