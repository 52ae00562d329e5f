//! End-to-end: the real `auditship parse` binary on the project's fixtures.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_auditship"))
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> (Vec<Value>, String, i32) {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("auditship starts");
    let input = stdin.unwrap_or_default().to_vec();
    let mut pipe = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    let events = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each output line is JSON"))
        .collect();
    (
        events,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn every_auth_line_becomes_one_event_with_the_core_fields() {
    let lines = std::fs::read_to_string(fixture("auth.log")).unwrap();
    let (events, _, code) = run(
        &[
            "parse",
            "--format",
            "auth",
            "--timezone",
            "UTC",
            "--year",
            "2026",
            &fixture("auth.log"),
        ],
        None,
    );
    assert_eq!(code, 0);
    assert_eq!(events.len(), lines.lines().count());
    for (ev, line) in events.iter().zip(lines.lines()) {
        for key in [
            "category", "action", "outcome", "actor", "target", "src_ip", "ts", "raw",
        ] {
            assert!(ev.get(key).is_some(), "{key} missing for {line}");
        }
        assert_eq!(ev["raw"], line);
        assert_eq!(ev["source"], fixture("auth.log"));
    }
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        &actions[..4],
        ["ssh_login", "ssh_login", "ssh_login", "ssh_invalid_user"]
    );
    assert_eq!(actions.last(), Some(&"unparsed"));
    assert_eq!(events.last().unwrap()["program"], "CRON");
    assert_eq!(events[0]["ts"], "2026-11-20T10:00:01Z");
    assert_eq!(events[10]["target"]["user"], "root");
}

#[test]
fn auto_reads_several_files_and_stdin() {
    let (events, stats, code) = run(
        &[
            "parse",
            "--timezone",
            "UTC",
            "--stats",
            &fixture("nginx.log"),
            &fixture("apache.log"),
            "-",
        ],
        Some(b"Nov 20 10:00:01 h sshd[1]: Accepted password for a from 192.0.2.1 port 2 ssh2\n"),
    );
    assert_eq!(code, 0);
    assert_eq!(events.len(), 9);
    assert!(events[..8].iter().all(|e| e["category"] == "web"));
    assert_eq!(events[8]["action"], "ssh_login");
    assert_eq!(events[8]["source"], "stdin");
    assert!(stats.contains("parsed 9 lines, unparsed 0"), "{stats}");
}

#[test]
fn json_lines_with_mapping() {
    let (events, _, code) = run(
        &[
            "parse",
            "--format",
            "json",
            "--map",
            "time=ts",
            "--map",
            "user.login=actor.user",
            "--map",
            "ip=src_ip",
            "--map",
            "event=action",
            "--map",
            "result=outcome",
            &fixture("app.jsonl"),
        ],
        None,
    );
    assert_eq!(code, 0);
    assert_eq!(events[0]["actor"]["user"], "alice");
    assert_eq!(events[0]["outcome"], "success");
    assert_eq!(events[0]["fields"]["invoice"], "INV-7");
    assert_eq!(events[1]["outcome"], "failure");
    assert_eq!(events[1]["ts"], "2026-11-22T09:00:00Z");
    assert_eq!(events[2]["action"], "unparsed");
    assert_eq!(events[2]["raw"], "not json at all");
}

#[test]
fn ecs_and_ocsf_schemas() {
    let (ecs, _, _) = run(
        &[
            "parse",
            "--format",
            "nginx",
            "--schema",
            "ecs",
            &fixture("nginx.log"),
        ],
        None,
    );
    assert_eq!(ecs[0]["source"]["ip"], "192.0.2.10");
    assert_eq!(ecs[0]["http"]["response"]["status_code"], 200);
    assert_eq!(ecs[0]["user"]["name"], "alice");
    let (ocsf, _, _) = run(
        &[
            "parse",
            "--format",
            "nginx",
            "--schema",
            "ocsf",
            &fixture("nginx.log"),
        ],
        None,
    );
    assert_eq!(ocsf[1]["class_uid"], 4002);
    assert_eq!(ocsf[1]["http_response"]["code"], 401);
}

#[test]
fn custom_nginx_log_format_from_the_command_line() {
    let (events, _, code) = run(
        &[
            "parse",
            "--format",
            "nginx",
            "--nginx-log-format",
            "$remote_addr [$time_local] \"$request\" $status rt=$request_time",
        ],
        Some(b"192.0.2.44 [22/Nov/2026:08:00:00 +0000] \"GET /x HTTP/1.1\" 200 rt=0.250\n"),
    );
    assert_eq!(code, 0);
    assert_eq!(events[0]["src_ip"], "192.0.2.44");
    assert_eq!(events[0]["http"]["duration_us"], 250_000);
}

#[test]
fn invalid_utf8_and_overlong_lines_are_kept() {
    let mut input =
        b"Nov 20 10:00:01 h sshd[1]: Invalid user \xff from 192.0.2.1 port 2\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 100));
    input.push(b'\n');
    let (events, _, _) = run(&["parse", "--max-line-bytes", "40"], Some(&input));
    // "Nov 20 10:00:01 h sshd[1]: Invalid user " is exactly 40 bytes, so the
    // invalid byte starts the second piece.
    assert_eq!(
        events[1]["raw"].as_str().unwrap(),
        "\\xff from 192.0.2.1 port 2"
    );
    assert!(events[1]["flags"]
        .as_array()
        .unwrap()
        .contains(&"raw_escaped".into()));
    // The first line (63 bytes) and the 100-byte line are split into 40-byte pieces.
    let split: Vec<_> = events
        .iter()
        .filter(|e| e["flags"].to_string().contains("split"))
        .collect();
    assert_eq!(split.len(), events.len());
    // The second line's pieces: 40 + 40 + 20 bytes.
    let pieces: Vec<&str> = events[2..]
        .iter()
        .map(|e| e["raw"].as_str().unwrap())
        .collect();
    assert_eq!(pieces, ["x".repeat(40), "x".repeat(40), "x".repeat(20)]);
}

#[test]
fn bad_arguments_fail_with_a_clear_message() {
    let (_, err, code) = run(&["parse", "--format", "xml"], None);
    assert_eq!(code, 2);
    assert!(err.contains("unknown format \"xml\""), "{err}");
    let (_, err, code) = run(
        &["parse", "--format", "nginx", "--nginx-log-format", "$a$b"],
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("invalid nginx log format at byte 2"), "{err}");
    let (_, err, code) = run(&["parse", "/nonexistent/file.log"], None);
    assert_eq!(code, 2);
    assert!(err.contains("cannot open /nonexistent/file.log"), "{err}");
    let (_, err, code) = run(&["parse", "--map", "nonsense"], None);
    assert_eq!(code, 2);
    assert!(err.contains("expected PATH=FIELD"), "{err}");
}

/// `--format auditd` groups the records of each event, flushes at the end
/// of the file (the torn last line included), and keeps a line that is not
/// a record as `unparsed`.
#[test]
fn auditd_records_are_grouped_into_events() {
    let (events, stats, code) = run(
        &[
            "parse",
            "--format",
            "auditd",
            "--stats",
            &fixture("audit.log"),
        ],
        None,
    );
    assert_eq!(code, 0);
    let summary: Vec<(&str, &str, usize)> = events
        .iter()
        .map(|e| {
            (
                e["fields"]["audit_id"].as_str().unwrap_or("-"),
                e["action"].as_str().unwrap(),
                e["raw"].as_str().unwrap().lines().count(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("1700000000.123:4567", "process_executed", 6),
            ("1700000005.500:4570", "process_executed", 4),
            ("1700000010.002:4580", "user_login", 1),
            ("1700000020.750:4590", "sudo_command", 1),
            ("1700000030.000:4600", "user_created", 1),
            ("1700000040.321:4610", "syscall", 4),
            ("1700000050.010:88", "session_opened", 1),
            ("1700000055.500:4620", "process_executed", 1),
            ("1700000055.501:4621", "user_authorization", 1),
            ("1700000055.500:4620", "process_executed", 2),
            ("-", "unparsed", 1),
            ("1700000060.000:4630", "syscall", 1),
        ]
    );
    assert_eq!(events[0]["command"], "grep -r secret key /etc/ssl");
    assert_eq!(events[1]["command"], r#"python3 -c print("hello world")"#);
    assert_eq!(events[5]["actor"]["user"], "alice");
    assert_eq!(events[6]["host"], "web-01");
    assert_eq!(events[9]["fields"]["audit_continued"], "true");
    assert_eq!(events[9]["command"], "ls -l");
    assert_eq!(events[10]["raw"], "audit: backlog limit exceeded");
    assert_eq!(events[11]["flags"], serde_json::json!(["no_newline"]));
    assert!(stats.contains("parsed 23 lines, unparsed 1"), "{stats}");
    // The same through stdin, rendered as OCSF.
    let text = std::fs::read(fixture("audit.log")).unwrap();
    let (ocsf, _, code) = run(
        &["parse", "--format", "auditd", "--schema", "ocsf"],
        Some(&text),
    );
    assert_eq!(code, 0);
    assert_eq!(ocsf.len(), 12);
    assert_eq!(ocsf[0]["class_uid"], 1007);
    assert_eq!(ocsf[2]["class_uid"], 3002);
}
