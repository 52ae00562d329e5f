//! Each parser's output rendered as ECS carries the fields Elastic's own
//! Filebeat modules (system/auth, nginx, apache) emit for the same kind of
//! line, with the same values; and the OCSF rendering picks the right class.
//!
//! The expected field sets were checked by hand against Elastic's published
//! expected output for its test logs (nginx, apache, system auth) and its
//! system/auth ingest pipeline, which sets `event.action = ssh_login`,
//! `event.category = [authentication, session]` for accepted logins,
//! `user.effective.name` for sudo's run-as user, and `iam` with
//! `[user|group, creation]` for useradd/groupadd. Two deliberate
//! differences: IPv6 addresses are written in RFC 5952 form, and `-` in
//! Apache's user and referrer fields means absent rather than a user named
//! `-` (Elastic's nginx module already does this).

use auditship_core::{ecs::to_ecs, ocsf::to_ocsf, AuditEvent, Timestamp};
use auditship_plugins::{Format, Parser, ParserOptions};
use serde_json::Value;

fn parse(format: Format, line: &str) -> AuditEvent {
    let mut p = Parser::new(&ParserOptions {
        format,
        timezone: Some("UTC".into()),
        ..ParserOptions::default()
    })
    .unwrap();
    let reference = Timestamp::from_civil(2026, 11, 22, 8, 0, 0, 0, 0).unwrap();
    p.parse_at(line.as_bytes(), reference)
}

/// Looks up a dotted path in a nested document.
fn get<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(doc, |v, k| v.get(k))
}

#[track_caller]
fn has(doc: &Value, expected: &[(&str, Value)]) {
    for (path, want) in expected {
        assert_eq!(get(doc, path), Some(want), "{path} in {doc:#}");
    }
}

fn s(v: &str) -> Value {
    Value::from(v)
}

#[test]
fn ecs_ssh_accepted_login_matches_filebeat_system_auth() {
    let ev = parse(Format::Auth, "Nov 21 21:54:44 localhost sshd[3402]: Accepted publickey for vagrant from 192.0.2.2 port 63673 ssh2: RSA SHA256:abcd");
    let d = to_ecs(&ev);
    has(
        &d,
        &[
            ("@timestamp", s("2026-11-21T21:54:44Z")),
            ("event.action", s("ssh_login")),
            ("event.outcome", s("success")),
            (
                "event.category",
                serde_json::json!(["authentication", "session"]),
            ),
            ("event.type", serde_json::json!(["info"])),
            ("event.kind", s("event")),
            ("user.name", s("vagrant")),
            ("source.ip", s("192.0.2.2")),
            ("source.port", Value::from(63673)),
            ("process.name", s("sshd")),
            ("process.pid", Value::from(3402)),
            ("host.hostname", s("localhost")),
            ("related.user", serde_json::json!(["vagrant"])),
            ("related.ip", serde_json::json!(["192.0.2.2"])),
        ],
    );
}

#[test]
fn ecs_ssh_failed_login_matches_filebeat_system_auth() {
    let ev = parse(Format::Auth, "Nov 20 08:35:22 slave22 sshd[5774]: Failed password for root from 203.0.113.57 port 29160 ssh2");
    let d = to_ecs(&ev);
    has(
        &d,
        &[
            ("event.action", s("ssh_login")),
            ("event.outcome", s("failure")),
            ("event.category", serde_json::json!(["authentication"])),
            ("user.name", s("root")),
            ("source.ip", s("203.0.113.57")),
            ("source.port", Value::from(29160)),
        ],
    );
}

#[test]
fn ecs_sudo_has_effective_user() {
    let ev = parse(Format::Auth, "Nov 21 23:35:33 localhost sudo:  vagrant : TTY=pts/0 ; PWD=/home/vagrant ; USER=root ; COMMAND=/bin/ls");
    let d = to_ecs(&ev);
    has(
        &d,
        &[
            ("user.name", s("vagrant")),
            ("user.effective.name", s("root")),
            ("process.name", s("sudo")),
            ("process.command_line", s("/bin/ls")),
            ("process.working_directory", s("/home/vagrant")),
            ("event.outcome", s("success")),
        ],
    );
}

#[test]
fn ecs_pam_session_uses_by_user_and_effective_user() {
    // Filebeat: "for user X by Y(uid=N)" -> user.name = Y, user.id = N, user.effective.name = X.
    let ev = parse(Format::Auth, "2019-06-14T10:40:20.912134 localhost sudo: pam_unix(sudo-i:session): session opened for user root by userauth3(uid=0)");
    let d = to_ecs(&ev);
    has(
        &d,
        &[
            ("@timestamp", s("2019-06-14T10:40:20.912134Z")),
            ("user.name", s("userauth3")),
            ("user.id", s("0")),
            ("user.effective.name", s("root")),
            ("process.name", s("sudo")),
            ("host.hostname", s("localhost")),
        ],
    );
}

#[test]
fn ecs_useradd_and_groupadd_are_iam_creations() {
    let ev = parse(Format::Auth, "Nov 22 11:47:05 localhost useradd[6995]: new user: name=apache, UID=48, GID=48, home=/usr/share/httpd, shell=/sbin/nologin");
    let d = to_ecs(&ev);
    has(
        &d,
        &[
            ("event.category", serde_json::json!(["iam"])),
            ("event.type", serde_json::json!(["user", "creation"])),
            ("event.outcome", s("success")),
            ("user.name", s("apache")),
            ("user.id", s("48")),
            ("user.target.name", s("apache")),
            ("process.name", s("useradd")),
        ],
    );
    let ev = parse(
        Format::Auth,
        "Nov 22 11:47:05 localhost groupadd[6991]: new group: name=apache, GID=48",
    );
    has(
        &to_ecs(&ev),
        &[
            ("event.type", serde_json::json!(["group", "creation"])),
            ("group.name", s("apache")),
            ("group.id", s("48")),
        ],
    );
}

#[test]
fn ecs_nginx_access_matches_filebeat_nginx() {
    let ev = parse(
        Format::Nginx,
        r#"10.0.0.2, 10.0.0.1, 198.51.100.143 - - [07/Dec/2016:11:05:07 +0100] "GET /ocelot?x=1 HTTP/1.1" 200 571 "-" "Mozilla/5.0 (Macintosh)""#,
    );
    let d = to_ecs(&ev);
    has(
        &d,
        &[
            ("@timestamp", s("2016-12-07T10:05:07Z")),
            ("event.category", serde_json::json!(["web"])),
            ("event.type", serde_json::json!(["access"])),
            ("event.outcome", s("success")),
            ("http.request.method", s("GET")),
            ("http.response.status_code", Value::from(200)),
            ("http.response.body.bytes", Value::from(571)),
            ("http.version", s("1.1")),
            ("url.original", s("/ocelot?x=1")),
            ("url.path", s("/ocelot")),
            ("url.query", s("x=1")),
            ("source.ip", s("198.51.100.143")),
            ("source.address", s("198.51.100.143")),
            ("user_agent.original", s("Mozilla/5.0 (Macintosh)")),
        ],
    );
    assert_eq!(get(&d, "related.ip").unwrap().as_array().unwrap().len(), 3);
}

#[test]
fn ecs_apache_access_matches_filebeat_apache() {
    let ev = parse(
        Format::Apache,
        r#"::1 - - [26/Dec/2016:16:16:29 +0200] "GET /favicon.ico HTTP/1.1" 404 209"#,
    );
    let d = to_ecs(&ev);
    has(
        &d,
        &[
            ("@timestamp", s("2016-12-26T14:16:29Z")),
            ("source.ip", s("::1")),
            ("source.address", s("::1")),
            ("http.request.method", s("GET")),
            ("http.response.status_code", Value::from(404)),
            ("http.response.body.bytes", Value::from(209)),
            ("url.original", s("/favicon.ico")),
            ("event.outcome", s("failure")),
        ],
    );
    // A host-name client becomes source.address and source.domain, with no IP.
    let ev = parse(
        Format::Apache,
        r#"monitoring-server - - [29/May/2017:19:02:48 +0000] "GET /status HTTP/1.1" 200 612 "-" "check""#,
    );
    let d = to_ecs(&ev);
    has(
        &d,
        &[
            ("source.address", s("monitoring-server")),
            ("source.domain", s("monitoring-server")),
        ],
    );
    assert_eq!(get(&d, "source.ip"), None);
}

#[test]
fn ecs_keeps_the_original_line() {
    let ev = parse(Format::Auto, "no parser knows this");
    let d = to_ecs(&ev);
    has(
        &d,
        &[
            ("event.original", s("no parser knows this")),
            ("event.action", s("unparsed")),
        ],
    );
    assert_eq!(get(&d, "event.category"), None);
}

#[test]
fn ocsf_classes_by_kind() {
    let cases = [
        (Format::Auth, "Nov 20 10:00:01 h sshd[1]: Accepted password for a from 192.0.2.1 port 2 ssh2", 3002, 1, 1),
        (Format::Auth, "Nov 20 10:00:01 h sshd[1]: pam_unix(sshd:session): session closed for user a", 3002, 2, 1),
        (Format::Auth, "Nov 20 10:00:01 h sudo: a : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/id", 1007, 1, 1),
        (Format::Auth, "Nov 20 10:00:01 h sudo: a : user NOT in sudoers ; TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/id", 3003, 1, 2),
        (Format::Auth, "Nov 20 10:00:01 h useradd[1]: new user: name=x, UID=1, GID=1, home=/, shell=/bin/sh", 3001, 1, 1),
        (Format::Auth, "Nov 20 10:00:01 h usermod[1]: add 'x' to group 'sudo'", 3006, 3, 1),
        (Format::Nginx, r#"192.0.2.1 - - [22/Nov/2026:08:00:00 +0000] "POST /x HTTP/1.1" 500 1 "-" "-""#, 4002, 6, 2),
        (Format::Auth, "Nov 20 10:00:01 h sshd[1]: Did not receive identification string from 192.0.2.1", 4001, 4, 2),
        (Format::Auto, "???", 0, 0, 0),
        (Format::Auditd, r#"type=SYSCALL msg=audit(1700000000.123:1): arch=c000003e syscall=59 success=yes exit=0 pid=5 auid=1000 uid=1000 euid=1000 comm="id" exe="/usr/bin/id""#, 1007, 1, 1),
        (Format::Auditd, r#"type=USER_LOGIN msg=audit(1700000000.123:2): pid=5 uid=0 auid=4294967295 ses=4294967295 msg='op=login acct="root" exe="/usr/sbin/sshd" hostname=? addr=192.0.2.1 terminal=ssh res=failed'"#, 3002, 1, 2),
        (Format::Auditd, r#"type=USER_END msg=audit(1700000000.123:3): pid=5 uid=0 auid=1000 ses=3 msg='op=PAM:session_close acct="a" exe="/usr/sbin/sshd" hostname=? addr=? terminal=ssh res=success'"#, 3002, 2, 1),
        (Format::Auditd, r#"type=USER_CMD msg=audit(1700000000.123:4): pid=5 uid=1000 auid=1000 ses=3 msg='cwd="/" cmd="id" exe="/usr/bin/sudo" terminal=pts/0 res=success'"#, 1007, 1, 1),
        (Format::Auditd, r#"type=ADD_USER msg=audit(1700000000.123:5): pid=5 uid=0 auid=1000 ses=3 msg='op=add-user acct="x" exe="/usr/sbin/useradd" hostname=h addr=? terminal=pts/0 res=success'"#, 3001, 1, 1),
    ];
    for (format, line, class, activity, status) in cases {
        let d = to_ocsf(&parse(format, line));
        assert_eq!(d["class_uid"], class, "{line}");
        assert_eq!(d["activity_id"], activity, "{line}");
        assert_eq!(d["type_uid"], class * 100 + activity, "{line}");
        assert_eq!(d["status_id"], status, "{line}");
        assert_eq!(d["raw_data"], line);
        assert_eq!(d["metadata"]["version"], "1.3.0");
    }
    let d = to_ocsf(&parse(
        Format::Auth,
        "Nov 20 10:00:01 h sshd[1]: Failed password for root from 192.0.2.1 port 2 ssh2",
    ));
    assert_eq!(d["actor"]["user"]["name"], "root");
    assert_eq!(d["src_endpoint"]["ip"], "192.0.2.1");
    assert_eq!(d["src_endpoint"]["port"], 2);
    assert_eq!(d["severity_id"], 3);
}

#[test]
fn ecs_auditd_execution_is_a_process_start() {
    let ev = parse(
        Format::Auditd,
        r#"type=SYSCALL msg=audit(1700000000.123:1): arch=c000003e syscall=59 success=yes exit=0 pid=5 auid=1000 uid=0 euid=0 ses=2 comm="id" exe="/usr/bin/id" key="exec""#,
    );
    let d = to_ecs(&ev);
    has(
        &d,
        &[
            ("event.action", s("process_executed")),
            ("event.category", serde_json::json!(["process"])),
            ("event.type", serde_json::json!(["start"])),
            ("event.outcome", s("success")),
            ("process.name", s("id")),
            ("process.pid", Value::from(5)),
            ("user.id", s("1000")),
            ("user.effective.id", s("0")),
            ("labels.audit_key", s("exec")),
        ],
    );
}
