//! Every default rule fires on what it is meant to catch and stays quiet
//! on its near misses. The events are real log lines parsed by the real
//! parsers (the agent's), so a rule that names a field or action the
//! parsers do not emit fails here; the integrity rules get the collector's
//! real integrity events.

use std::path::Path;
use std::time::Duration;

use auditship_core::{AuditEvent, Timestamp};
use auditship_plugins::{Format, Parser, ParserOptions};

use super::engine::Engine;
use super::first_seen::FirstSeen;
use super::record::Alert;
use super::rules::{validate_rule, AlertsConfig};
use crate::integrity::Finding;

/// Every default rule, each with a `_fires` and a `_stays_quiet` test below.
const TESTED: [&str; 12] = [
    "ssh_brute_force",
    "sudo_auth_failures",
    "sudo_not_in_sudoers",
    "uid0_account_created",
    "uid0_account_modified",
    "privileged_group_change",
    "ssh_new_source",
    "ssh_login_off_hours",
    "integrity_chain_gap",
    "integrity_chain_fork",
    "integrity_bad_signature",
    "integrity_agent_silent",
];

const NOW: i64 = 1_795_392_000_000;

#[test]
fn the_default_rules_parse_validate_and_are_all_tested() {
    let names: Vec<String> = super::defaults::raw_rules()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(
        names, TESTED,
        "add a firing and a quiet test for each new default rule"
    );
    for name in TESTED {
        one(name);
    }
}

/// An engine with just the default rule `name` (enabled), notifying at once.
fn one(name: &str) -> Engine {
    let mut raw = super::defaults::raw_rules()
        .into_iter()
        .find(|r| r.name == name)
        .unwrap();
    raw.enabled = Some(true);
    let mut errs = Vec::new();
    let rule = validate_rule(
        raw,
        Duration::from_secs(900),
        Duration::ZERO,
        "t",
        &mut |k, m| errs.push(format!("{k}: {m}")),
    )
    .unwrap_or_else(|| panic!("{name}: {errs:?}"));
    let cfg = AlertsConfig {
        enabled: true,
        notify_delay: Duration::ZERO,
        rules: vec![rule],
        ..AlertsConfig::default()
    };
    Engine::new(&cfg, FirstSeen::in_memory(1000))
}

fn parse(lines: &[String]) -> Vec<AuditEvent> {
    let mut p = Parser::new(&ParserOptions {
        format: Format::Auth,
        timezone: Some("UTC".into()),
        ..ParserOptions::default()
    })
    .unwrap();
    lines
        .iter()
        .map(|l| {
            let ev = p.parse(l.as_bytes());
            assert!(!ev.is_unparsed(), "the parser does not read {l:?}");
            ev
        })
        .collect()
}

/// Runs log lines through the rule `name`; returns what it notifies.
fn run(name: &str, lines: &[String]) -> Vec<Alert> {
    let mut e = one(name);
    for (i, ev) in parse(lines).iter().enumerate() {
        e.observe(ev, i as u64, NOW);
    }
    e.due(NOW)
}

fn run_events(name: &str, events: &[AuditEvent]) -> Vec<Alert> {
    let mut e = one(name);
    for (i, ev) in events.iter().enumerate() {
        e.observe(ev, i as u64, NOW);
    }
    e.due(NOW)
}

/// A syslog line at `hh:mm:ss` on Monday 2026-11-23 UTC.
fn line(time: &str, host: &str, prog: &str, msg: &str) -> String {
    format!("2026-11-23T{time}+00:00 {host} {prog}: {msg}")
}

fn failed(ip: &str, n: usize, from_sec: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let s = from_sec + i;
            line(
                &format!("10:{:02}:{:02}", s / 60, s % 60),
                "web-1",
                "sshd[2001]",
                &format!("Failed password for root from {ip} port {} ssh2", 40000 + i),
            )
        })
        .collect()
}

#[test]
fn default_ssh_brute_force_fires() {
    let mut lines = failed("203.0.113.50", 12, 0);
    lines.extend(failed("198.51.100.1", 3, 0));
    let out = run("ssh_brute_force", &lines);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].count, 12);
    assert_eq!(out[0].src_ip, Some("203.0.113.50".parse().unwrap()));
}

#[test]
fn default_ssh_brute_force_stays_quiet() {
    // Nine failures, and ten spread over more than five minutes.
    let mut lines = failed("203.0.113.50", 9, 0);
    for i in 0..10 {
        lines.extend(failed("198.51.100.2", 1, i * 40));
    }
    lines.push(line(
        "10:00:30",
        "web-1",
        "sshd[2001]",
        "Accepted password for alice from 203.0.113.50 port 40100 ssh2",
    ));
    assert!(run("ssh_brute_force", &lines).is_empty());
}

fn sudo_fail(user: &str, sec: usize) -> String {
    line(
        &format!("11:00:{sec:02}"),
        "db-1",
        "sudo",
        &format!("{user} : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND=/bin/bash"),
    )
}

#[test]
fn default_sudo_auth_failures_fires() {
    let lines: Vec<String> = (0..5).map(|i| sudo_fail("bob", i)).collect();
    let out = run("sudo_auth_failures", &lines);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].user.as_deref(), Some("bob"));
    assert_eq!(out[0].key, "host=db-1 actor.user=bob");
}

#[test]
fn default_sudo_auth_failures_stays_quiet() {
    let mut lines: Vec<String> = (0..4).map(|i| sudo_fail("bob", i)).collect();
    lines.extend((0..4).map(|i| sudo_fail("carol", i)));
    lines.push(line(
        "11:00:10",
        "db-1",
        "sudo",
        "bob : TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/ls",
    ));
    assert!(run("sudo_auth_failures", &lines).is_empty());
}

#[test]
fn default_sudo_not_in_sudoers_fires() {
    let out = run(
        "sudo_not_in_sudoers",
        &[line(
            "12:00:00",
            "web-2",
            "sudo",
            "mallory : user NOT in sudoers ; TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/sh",
        )],
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].key, "host=web-2 actor.user=mallory");
}

#[test]
fn default_sudo_not_in_sudoers_stays_quiet() {
    let out = run(
        "sudo_not_in_sudoers",
        &[
            line(
                "12:00:00",
                "web-2",
                "sudo",
                "alice : TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/sh",
            ),
            line(
                "12:00:01",
                "web-2",
                "sudo",
                "alice : command not allowed ; TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/sh",
            ),
        ],
    );
    assert!(out.is_empty());
}

#[test]
fn default_uid0_account_created_fires() {
    let out = run(
        "uid0_account_created",
        &[line(
            "13:00:00",
            "web-1",
            "useradd[3001]",
            "new user: name=toor, UID=0, GID=0, home=/root, shell=/bin/bash, from=/dev/pts/0",
        )],
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].user.as_deref(), Some("toor"));
}

#[test]
fn default_uid0_account_created_stays_quiet() {
    let out = run(
        "uid0_account_created",
        &[
            line("13:00:00", "web-1", "useradd[3001]", "new user: name=deploy, UID=1001, GID=1001, home=/home/deploy, shell=/bin/bash, from=/dev/pts/0"),
            line("13:00:01", "web-1", "useradd[3002]", "new user: name=svc, UID=10, GID=0, home=/var/svc, shell=/usr/sbin/nologin, from=none"),
        ],
    );
    assert!(out.is_empty());
}

#[test]
fn default_uid0_account_modified_fires() {
    let out = run(
        "uid0_account_modified",
        &[line(
            "13:10:00",
            "web-1",
            "usermod[3100]",
            "change user 'deploy' UID from '1001' to '0'",
        )],
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].key, "host=web-1 target.user=deploy");
}

#[test]
fn default_uid0_account_modified_stays_quiet() {
    let out = run(
        "uid0_account_modified",
        &[
            line(
                "13:10:00",
                "web-1",
                "usermod[3100]",
                "change user 'deploy' UID from '0' to '1001'",
            ),
            line(
                "13:10:01",
                "web-1",
                "usermod[3101]",
                "change user 'deploy' shell from '/bin/sh' to '/bin/bash'",
            ),
        ],
    );
    assert!(out.is_empty());
}

#[test]
fn default_privileged_group_change_fires() {
    let out = run(
        "privileged_group_change",
        &[
            line(
                "14:00:00",
                "web-1",
                "usermod[3200]",
                "add 'eve' to group 'sudo'",
            ),
            line(
                "14:00:01",
                "web-1",
                "gpasswd[3201]",
                "user eve added by root to group wheel",
            ),
        ],
    );
    let mut keys: Vec<&str> = out.iter().map(|a| a.key.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "host=web-1 target.group=sudo target.user=eve",
            "host=web-1 target.group=wheel target.user=eve"
        ]
    );
}

#[test]
fn default_privileged_group_change_stays_quiet() {
    let out = run(
        "privileged_group_change",
        &[
            line(
                "14:00:00",
                "web-1",
                "usermod[3200]",
                "add 'eve' to group 'docker'",
            ),
            line(
                "14:00:01",
                "web-1",
                "groupadd[3201]",
                "new group: name=sudoers-audit, GID=1500",
            ),
        ],
    );
    assert!(out.is_empty());
}

fn accepted(user: &str, ip: &str, time: &str) -> String {
    line(
        time,
        "bastion",
        "sshd[4000]",
        &format!("Accepted publickey for {user} from {ip} port 51000 ssh2: ED25519 SHA256:abc"),
    )
}

#[test]
fn default_ssh_new_source_fires() {
    let out = run(
        "ssh_new_source",
        &[
            accepted("alice", "192.0.2.10", "09:00:00"),
            accepted("alice", "203.0.113.200", "09:30:00"),
        ],
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].src_ip, Some("203.0.113.200".parse().unwrap()));
    assert_eq!(out[0].user.as_deref(), Some("alice"));
}

#[test]
fn default_ssh_new_source_stays_quiet() {
    let out = run(
        "ssh_new_source",
        &[
            accepted("alice", "192.0.2.10", "09:00:00"),
            accepted("alice", "192.0.2.10", "09:30:00"),
            accepted("bob", "203.0.113.200", "09:31:00"),
            line(
                "09:32:00",
                "bastion",
                "sshd[4000]",
                "Failed password for alice from 198.51.100.9 port 1 ssh2",
            ),
        ],
    );
    assert!(out.is_empty());
}

#[test]
fn default_ssh_login_off_hours_fires() {
    // 23:15 on a Monday, and 10:00 on a Saturday.
    let sat = "2026-11-21T10:00:00+00:00 bastion sshd[4000]: Accepted password for carol from 192.0.2.3 port 2 ssh2".to_string();
    let out = run(
        "ssh_login_off_hours",
        &[accepted("alice", "192.0.2.10", "23:15:00"), sat],
    );
    let mut users: Vec<_> = out.iter().filter_map(|a| a.user.clone()).collect();
    users.sort();
    assert_eq!(users, ["alice", "carol"]);
}

#[test]
fn default_ssh_login_off_hours_stays_quiet() {
    let out = run(
        "ssh_login_off_hours",
        &[
            accepted("alice", "192.0.2.10", "07:00:00"),
            accepted("bob", "192.0.2.11", "18:59:59"),
            line(
                "23:00:00",
                "bastion",
                "sshd[4000]",
                "Failed password for carol from 192.0.2.3 port 2 ssh2",
            ),
        ],
    );
    assert!(out.is_empty(), "{out:?}");
}

fn finding(f: Finding) -> AuditEvent {
    f.to_event(Timestamp::now_utc(), "collector-1")
}

fn gap() -> Finding {
    Finding::Gap {
        agent: "web-1".into(),
        queue: 1,
        from: 5,
        to: 9,
    }
}

#[test]
fn default_integrity_chain_gap_fires() {
    let out = run_events("integrity_chain_gap", &[finding(gap())]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].group["fields.agent_id"], "web-1");
}

#[test]
fn default_integrity_chain_gap_stays_quiet() {
    let pinned = Finding::KeyPinned {
        agent: "web-1".into(),
        key: "k".into(),
        key_id: "i".into(),
    };
    let mut forged = finding(gap());
    forged.agent_id = Some("web-1".into());
    assert!(run_events("integrity_chain_gap", &[finding(pinned), forged]).is_empty());
}

#[test]
fn default_integrity_chain_fork_fires() {
    let fork = Finding::Fork {
        agent: "db-1".into(),
        queue: 1,
        seq: 3,
        stored: [1; 32],
        received: [2; 32],
    };
    let brk = Finding::Break {
        agent: "db-2".into(),
        queue: 1,
        seq: 3,
        expected: [1; 32],
        got: [2; 32],
    };
    assert_eq!(
        run_events("integrity_chain_fork", &[finding(fork), finding(brk)]).len(),
        2
    );
}

#[test]
fn default_integrity_chain_fork_stays_quiet() {
    let epoch = Finding::NewEpoch {
        agent: "db-1".into(),
        old: 1,
        old_seq: 10,
        new: 2,
    };
    assert!(run_events("integrity_chain_fork", &[finding(epoch), finding(gap())]).is_empty());
}

#[test]
fn default_integrity_bad_signature_fires() {
    let bad = Finding::BadSignature {
        agent: "web-3".into(),
        queue: 1,
        first: 1,
        last: 10,
        why: "signature does not verify".into(),
    };
    assert_eq!(
        run_events("integrity_bad_signature", &[finding(bad)]).len(),
        1
    );
}

#[test]
fn default_integrity_bad_signature_stays_quiet() {
    let resumed = Finding::Resumed {
        agent: "web-3".into(),
        silent_secs: 400,
    };
    assert!(run_events("integrity_bad_signature", &[finding(resumed)]).is_empty());
}

#[test]
fn default_integrity_agent_silent_fires() {
    let silent = Finding::Silent {
        agent: "web-4".into(),
        silent_secs: 301,
    };
    let out = run_events("integrity_agent_silent", &[finding(silent)]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].key, "fields.agent_id=web-4");
}

#[test]
fn default_integrity_agent_silent_stays_quiet() {
    let resumed = Finding::Resumed {
        agent: "web-4".into(),
        silent_secs: 301,
    };
    let mut heartbeat = AuditEvent::new(
        auditship_core::Category::Integrity,
        "agent_silent",
        auditship_core::Outcome::Failure,
        "an agent's own event named like a finding".into(),
    );
    heartbeat.agent_id = Some("web-4".into());
    assert!(run_events("integrity_agent_silent", &[finding(resumed), heartbeat]).is_empty());
}

#[test]
fn the_shipped_rule_file_is_the_one_in_config() {
    let on_disk = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/alerts.default.toml"),
    )
    .unwrap();
    assert_eq!(on_disk, super::defaults::TEXT);
}
