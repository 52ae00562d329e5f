//! The agent runtime over an `audit.log` written in steps: the records of
//! one event split across writes (one line torn between two writes) and
//! across pauses longer than a poll but shorter than the group timeout,
//! then silences longer than the timeout, a clean stop with an event still
//! pending, and a restart. The file output must hold every event once,
//! reassembled, in order.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use auditship_agent::{config, runtime};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// `vim /etc/hosts` by alice through sudo (auid 1000, euid 0): five records.
const EXEC: [&str; 5] = [
    r#"type=SYSCALL msg=audit(1700000100.250:5001): arch=c000003e syscall=59 success=yes exit=0 a0=55f1 a1=55f2 a2=55f3 a3=0 items=2 ppid=6001 pid=6002 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts1 ses=4 comm="vim" exe="/usr/bin/vim.basic" subj=unconfined key="exec""#,
    r#"type=EXECVE msg=audit(1700000100.250:5001): argc=2 a0="vim" a1="/etc/hosts""#,
    r#"type=CWD msg=audit(1700000100.250:5001): cwd="/root""#,
    r#"type=PATH msg=audit(1700000100.250:5001): item=0 name="/usr/bin/vim" inode=4242 dev=08:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0"#,
    r#"type=PROCTITLE msg=audit(1700000100.250:5001): proctitle=76696D002F6574632F686F737473"#,
];

/// A failed ssh login of root from 198.51.100.20: one record.
const LOGIN: &str = r#"type=USER_LOGIN msg=audit(1700000101.000:5002): pid=6100 uid=0 auid=4294967295 ses=4294967295 subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg='op=login acct="root" exe="/usr/sbin/sshd" hostname=? addr=198.51.100.20 terminal=ssh res=failed'"#;

/// `sudo systemctl reload sshd` by alice: USER_CMD (cmd in hex).
const SUDO: &str = r#"type=USER_CMD msg=audit(1700000102.500:5003): pid=6200 uid=1000 auid=1000 ses=4 subj=unconfined msg='cwd="/home/alice" cmd=73797374656D63746C2072656C6F61642073736864 exe="/usr/bin/sudo" terminal=pts/1 res=success'"#;

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Every complete line of the output file, heartbeats left out.
fn output(path: &Path) -> Vec<Value> {
    let Ok(mut text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["action"] != "agent_heartbeat")
        .collect()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Agent {
    rt: tokio::runtime::Runtime,
    stop: CancellationToken,
    run: tokio::task::JoinHandle<Result<runtime::RunSummary, runtime::AgentError>>,
}

impl Agent {
    fn start(cfg: &Path) -> Agent {
        let text = fs::read_to_string(cfg).unwrap();
        let cfg = config::parse(&text, cfg).unwrap_or_else(|e| panic!("{e}"));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let stop = CancellationToken::new();
        let run = rt.spawn(runtime::run(cfg, stop.clone()));
        Agent { rt, stop, run }
    }

    /// A clean stop (what SIGTERM does).
    fn stop(self) -> runtime::RunSummary {
        self.stop.cancel();
        self.rt.block_on(self.run).unwrap().unwrap()
    }
}

fn write_config(dir: &Path, log: &Path, out: &Path) -> PathBuf {
    let path = dir.join("agent.toml");
    fs::write(
        &path,
        format!(
            r#"state_dir = "{state}"
agent_id = "t"
heartbeat = "0s"
shutdown_grace = "10s"

[[inputs]]
type = "file"
name = "audit"
include = ["{log}"]
format = "auditd"
group_timeout = "2s"
partial_line_timeout = "5s"
rescan_interval = "100ms"

[[outputs]]
type = "file"
path = "{out}"
"#,
            state = dir.join("state").display(),
            log = log.display(),
            out = out.display(),
        ),
    )
    .unwrap();
    path
}

#[test]
fn events_written_in_steps_are_reassembled_once_each_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("audit.log");
    let out = tmp.path().join("out.ndjson");
    let cfg = write_config(tmp.path(), &log, &out);
    // A pause longer than a poll (the ingest loop reads every ~50 ms when
    // idle) and far shorter than the 2 s group timeout.
    let pause = Duration::from_millis(300);

    append(&log, "");
    let agent = Agent::start(&cfg);
    // The exec event in three writes; its CWD line torn between two.
    let (cwd_head, cwd_tail) = EXEC[2].split_at(30);
    append(&log, &format!("{}\n{}\n{cwd_head}", EXEC[0], EXEC[1]));
    std::thread::sleep(pause);
    append(&log, &format!("{cwd_tail}\n{}\n", EXEC[3]));
    std::thread::sleep(pause);
    append(&log, &format!("{}\n", EXEC[4]));
    std::thread::sleep(pause);
    assert!(output(&out).is_empty(), "the exec event is still pending");
    // The login ends the exec event; nothing follows the login, so it ends
    // by the timeout.
    append(&log, &format!("{LOGIN}\n"));
    wait_for("the exec event", || !output(&out).is_empty());
    wait_for("the login, after the timeout", || output(&out).len() >= 2);
    // The sudo record, then a clean stop before its timeout: it is not
    // emitted now, and not lost.
    append(&log, &format!("{SUDO}\n"));
    std::thread::sleep(pause);
    let summary = agent.stop();
    assert!(summary.drained);
    assert_eq!(
        output(&out).len(),
        2,
        "a pending event is not emitted at a stop"
    );

    let agent = Agent::start(&cfg);
    wait_for("the sudo event after the restart", || {
        output(&out).len() >= 3
    });
    // Long enough for a duplicate, were there one, to be written.
    std::thread::sleep(Duration::from_millis(2000));
    agent.stop();

    let events = output(&out);
    let raws: Vec<&str> = events.iter().map(|e| e["raw"].as_str().unwrap()).collect();
    assert_eq!(raws, [EXEC.join("\n").as_str(), LOGIN, SUDO]);
    let exec = &events[0];
    assert_eq!(exec["action"], "process_executed");
    assert_eq!(exec["command"], "vim /etc/hosts");
    assert_eq!(exec["cwd"], "/root");
    assert_eq!(exec["actor"]["uid"], 1000);
    assert_eq!(exec["target"]["uid"], 0);
    assert_eq!(exec["target"]["resource"], "/usr/bin/vim.basic");
    assert_eq!(exec["source"], format!("audit:{}", log.display()));
    assert!(
        exec.get("flags").is_none(),
        "the torn line was joined whole"
    );
    let login = &events[1];
    assert_eq!(login["action"], "user_login");
    assert_eq!(login["outcome"], "failure");
    assert_eq!(login["actor"]["user"], "root");
    assert_eq!(login["src_ip"], "198.51.100.20");
    let sudo = &events[2];
    assert_eq!(sudo["action"], "sudo_command");
    assert_eq!(sudo["command"], "systemctl reload sshd");
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
}
