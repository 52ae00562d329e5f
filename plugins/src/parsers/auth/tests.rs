//! One test per message kind. Lines are the project's own fixtures, written
//! in the exact shape each daemon logs.

use auditship_core::{AuditEvent, Category, Outcome};

use crate::parsers::{Format, Parser, ParserOptions};

fn parse(line: &str) -> AuditEvent {
    let mut p = Parser::new(&ParserOptions {
        format: Format::Auth,
        timezone: Some("UTC".into()),
        ..ParserOptions::default()
    })
    .unwrap();
    let reference = auditship_core::Timestamp::from_civil(2026, 11, 22, 8, 0, 0, 0, 0).unwrap();
    p.parse_at(line.as_bytes(), reference)
}

/// Compact expectation: (action, category, outcome, actor.user, src_ip, src_port).
#[track_caller]
fn check(
    ev: &AuditEvent,
    action: &str,
    cat: Category,
    out: Outcome,
    user: Option<&str>,
    ip: Option<&str>,
    port: Option<u16>,
) {
    assert_eq!(ev.action, action, "action of {}", ev.raw);
    assert_eq!(ev.category, cat, "category of {}", ev.raw);
    assert_eq!(ev.outcome, out, "outcome of {}", ev.raw);
    assert_eq!(ev.actor.user.as_deref(), user, "actor of {}", ev.raw);
    assert_eq!(
        ev.src_ip.map(|i| i.to_string()).as_deref(),
        ip,
        "src_ip of {}",
        ev.raw
    );
    assert_eq!(ev.src_port, port, "src_port of {}", ev.raw);
}

use Category::{Account, Authentication, Network, Privilege, Session};
use Outcome::{Failure, Success, Unknown};

#[test]
fn sshd_accepted_password() {
    let ev = parse("Nov 20 10:00:01 bastion sshd[2001]: Accepted password for deploy from 198.51.100.20 port 50122 ssh2");
    check(
        &ev,
        "ssh_login",
        Authentication,
        Success,
        Some("deploy"),
        Some("198.51.100.20"),
        Some(50122),
    );
    assert_eq!(ev.auth_method.as_deref(), Some("password"));
    assert_eq!(ev.host.as_deref(), Some("bastion"));
    assert_eq!(ev.program.as_deref(), Some("sshd"));
    assert_eq!(ev.pid, Some(2001));
    assert_eq!(ev.ts.unwrap().to_string(), "2026-11-20T10:00:01Z");
    assert_eq!(ev.raw_ts.as_deref(), Some("Nov 20 10:00:01"));
}

#[test]
fn sshd_accepted_publickey_sha256_and_md5_fingerprints() {
    let ev = parse("Nov 20 10:00:02 bastion sshd[2002]: Accepted publickey for alice from 2001:db8::5 port 40000 ssh2: ED25519 SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s");
    check(
        &ev,
        "ssh_login",
        Authentication,
        Success,
        Some("alice"),
        Some("2001:db8::5"),
        Some(40000),
    );
    assert_eq!(ev.auth_method.as_deref(), Some("publickey"));
    assert_eq!(ev.key_type.as_deref(), Some("ED25519"));
    assert_eq!(
        ev.key_fingerprint.as_deref(),
        Some("SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s")
    );
    let ev = parse("Feb 21 21:54:44 h sshd[3402]: Accepted publickey for vagrant from 10.0.2.2 port 63673 ssh2: RSA 39:33:99:e9:a0:dc:f2:33:a3:e5:72:3b:7c:3a:56:84");
    assert_eq!(ev.key_type.as_deref(), Some("RSA"));
    assert_eq!(
        ev.key_fingerprint.as_deref(),
        Some("39:33:99:e9:a0:dc:f2:33:a3:e5:72:3b:7c:3a:56:84")
    );
}

#[test]
fn sshd_accepted_certificate_keeps_cert_details() {
    let ev = parse("Nov 20 10:00:03 h sshd[7]: Accepted publickey for ci from 10.9.0.4 port 5000 ssh2: ED25519-CERT SHA256:abc ID ci-runner (serial 17) CA ED25519 SHA256:def");
    assert_eq!(ev.key_type.as_deref(), Some("ED25519-CERT"));
    assert_eq!(ev.key_fingerprint.as_deref(), Some("SHA256:abc"));
    assert_eq!(
        ev.fields["key_cert"],
        "ID ci-runner (serial 17) CA ED25519 SHA256:def"
    );
}

#[test]
fn sshd_keyboard_interactive_on_sshd_session() {
    // OpenSSH 9.8+ logs authentication from the sshd-session binary.
    let ev = parse("Nov 20 10:00:04 h sshd-session[88]: Accepted keyboard-interactive/pam for carol from 192.0.2.44 port 61000 ssh2");
    check(
        &ev,
        "ssh_login",
        Authentication,
        Success,
        Some("carol"),
        Some("192.0.2.44"),
        Some(61000),
    );
    assert_eq!(ev.auth_method.as_deref(), Some("keyboard-interactive/pam"));
    assert_eq!(ev.program.as_deref(), Some("sshd-session"));
}

#[test]
fn sshd_failed_password_for_valid_and_invalid_users() {
    let ev = parse(
        "Nov 20 10:01:00 h sshd[3]: Failed password for root from 203.0.113.9 port 29160 ssh2",
    );
    check(
        &ev,
        "ssh_login",
        Authentication,
        Failure,
        Some("root"),
        Some("203.0.113.9"),
        Some(29160),
    );
    assert_eq!(ev.reason, None);
    let ev = parse("Nov 20 10:01:01 h sshd[3]: Failed password for invalid user admin from 203.0.113.9 port 29161 ssh2");
    check(
        &ev,
        "ssh_login",
        Authentication,
        Failure,
        Some("admin"),
        Some("203.0.113.9"),
        Some(29161),
    );
    assert_eq!(ev.reason.as_deref(), Some("invalid user"));
}

#[test]
fn sshd_failed_publickey_and_none() {
    let ev = parse("Nov 20 10:01:02 h sshd[3]: Failed publickey for git from 198.51.100.2 port 3333 ssh2: RSA SHA256:Zm9v");
    check(
        &ev,
        "ssh_login",
        Authentication,
        Failure,
        Some("git"),
        Some("198.51.100.2"),
        Some(3333),
    );
    assert_eq!(ev.key_type.as_deref(), Some("RSA"));
    let ev = parse("Nov 20 10:01:03 h sshd[3]: Failed none for invalid user test from 198.51.100.2 port 3334 ssh2");
    assert_eq!(ev.auth_method.as_deref(), Some("none"));
    assert_eq!(ev.actor.user.as_deref(), Some("test"));
}

#[test]
fn sshd_user_name_containing_from_is_kept_whole() {
    let ev = parse(
        "Nov 20 10:01:04 h sshd[3]: Invalid user admin from evil from 203.0.113.50 port 4242",
    );
    check(
        &ev,
        "ssh_invalid_user",
        Authentication,
        Failure,
        Some("admin from evil"),
        Some("203.0.113.50"),
        Some(4242),
    );
}

#[test]
fn sshd_invalid_user_old_form_without_port() {
    let ev = parse("Feb 21 21:56:12 localhost sshd[3430]: Invalid user test from 10.0.2.2");
    check(
        &ev,
        "ssh_invalid_user",
        Authentication,
        Failure,
        Some("test"),
        Some("10.0.2.2"),
        None,
    );
}

#[test]
fn sshd_connection_closed_and_reset_by_authenticating_or_invalid_user() {
    let ev = parse("Nov 20 10:02:00 h sshd[4]: Connection closed by authenticating user root 203.0.113.9 port 51234 [preauth]");
    check(
        &ev,
        "ssh_connection_closed",
        Authentication,
        Failure,
        Some("root"),
        Some("203.0.113.9"),
        Some(51234),
    );
    assert_eq!(ev.fields["preauth"], "true");
    let ev = parse("Nov 20 10:02:01 h sshd[4]: Connection closed by invalid user oracle 203.0.113.9 port 51235 [preauth]");
    check(
        &ev,
        "ssh_connection_closed",
        Authentication,
        Failure,
        Some("oracle"),
        Some("203.0.113.9"),
        Some(51235),
    );
    assert_eq!(ev.reason.as_deref(), Some("invalid user"));
    let ev = parse("Nov 20 10:02:02 h sshd[4]: Connection reset by authenticating user pi 2001:db8::99 port 2 [preauth]");
    check(
        &ev,
        "ssh_connection_reset",
        Authentication,
        Failure,
        Some("pi"),
        Some("2001:db8::99"),
        Some(2),
    );
    let ev = parse("Nov 20 10:02:03 h sshd[4]: Connection reset by invalid user x 203.0.113.1 port 3 [preauth]");
    check(
        &ev,
        "ssh_connection_reset",
        Authentication,
        Failure,
        Some("x"),
        Some("203.0.113.1"),
        Some(3),
    );
    let ev = parse("Nov 20 10:02:04 h sshd[4]: Connection closed by 203.0.113.1 port 4 [preauth]");
    check(
        &ev,
        "ssh_connection_closed",
        Network,
        Unknown,
        None,
        Some("203.0.113.1"),
        Some(4),
    );
}

#[test]
fn sshd_disconnected_from_user() {
    let ev =
        parse("Nov 20 10:03:00 h sshd[5]: Disconnected from user deploy 198.51.100.20 port 50122");
    check(
        &ev,
        "ssh_disconnect",
        Session,
        Success,
        Some("deploy"),
        Some("198.51.100.20"),
        Some(50122),
    );
    let ev = parse("Nov 20 10:03:01 h sshd[5]: Disconnected from invalid user guest 203.0.113.7 port 1 [preauth]");
    check(
        &ev,
        "ssh_disconnect",
        Authentication,
        Failure,
        Some("guest"),
        Some("203.0.113.7"),
        Some(1),
    );
    let ev = parse("Nov 20 10:03:02 h sshd[5]: Received disconnect from 198.51.100.20 port 50122:11: disconnected by user");
    check(
        &ev,
        "ssh_disconnect",
        Session,
        Unknown,
        None,
        Some("198.51.100.20"),
        Some(50122),
    );
    assert_eq!(ev.reason.as_deref(), Some("disconnected by user"));
    assert_eq!(ev.fields["disconnect_code"], "11");
}

#[test]
fn sshd_maximum_authentication_attempts_exceeded() {
    let ev = parse("Nov 20 10:04:00 h sshd[6]: error: maximum authentication attempts exceeded for root from 203.0.113.9 port 51000 ssh2 [preauth]");
    check(
        &ev,
        "ssh_max_auth_exceeded",
        Authentication,
        Failure,
        Some("root"),
        Some("203.0.113.9"),
        Some(51000),
    );
    let ev = parse("Nov 20 10:04:01 h sshd[6]: error: maximum authentication attempts exceeded for invalid user ubnt from 203.0.113.9 port 51001 ssh2 [preauth]");
    check(
        &ev,
        "ssh_max_auth_exceeded",
        Authentication,
        Failure,
        Some("ubnt"),
        Some("203.0.113.9"),
        Some(51001),
    );
    let ev = parse("Nov 20 10:04:02 h sshd[6]: Disconnecting authenticating user root 203.0.113.9 port 51002: Too many authentication failures [preauth]");
    check(
        &ev,
        "ssh_max_auth_exceeded",
        Authentication,
        Failure,
        Some("root"),
        Some("203.0.113.9"),
        Some(51002),
    );
    assert_eq!(
        ev.reason.as_deref(),
        Some("Too many authentication failures")
    );
}

#[test]
fn sshd_did_not_receive_identification_string() {
    let ev = parse("Feb 19 15:30:04 slave22 sshd[18406]: Did not receive identification string from 2.125.160.217");
    check(
        &ev,
        "ssh_no_identification",
        Network,
        Failure,
        None,
        Some("2.125.160.217"),
        None,
    );
    let ev = parse("Nov 20 10:05:00 h sshd[7]: Did not receive identification string from 203.0.113.8 port 40404");
    check(
        &ev,
        "ssh_no_identification",
        Network,
        Failure,
        None,
        Some("203.0.113.8"),
        Some(40404),
    );
}

#[test]
fn sshd_banner_exchange_errors() {
    let ev = parse("Nov 20 10:05:01 h sshd[7]: banner exchange: Connection from 203.0.113.8 port 40405: invalid format");
    check(
        &ev,
        "ssh_banner_error",
        Network,
        Failure,
        None,
        Some("203.0.113.8"),
        Some(40405),
    );
    assert_eq!(ev.reason.as_deref(), Some("invalid format"));
    let ev = parse(
        "Nov 20 10:05:02 h sshd[7]: kex_exchange_identification: Connection closed by remote host",
    );
    check(&ev, "ssh_banner_error", Network, Failure, None, None, None);
    assert_eq!(
        ev.reason.as_deref(),
        Some("Connection closed by remote host")
    );
    let ev = parse("Nov 20 10:05:03 h sshd[7]: Unable to negotiate with 203.0.113.8 port 40406: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]");
    check(
        &ev,
        "ssh_negotiation_failed",
        Network,
        Failure,
        None,
        Some("203.0.113.8"),
        Some(40406),
    );
    assert!(ev
        .reason
        .unwrap()
        .starts_with("no matching key exchange method found."));
}

#[test]
fn sshd_possible_break_in_attempt() {
    let ev = parse("Nov 20 10:06:00 h sshd[8]: reverse mapping checking getaddrinfo for host-203-0-113-77.example.net [203.0.113.77] failed - POSSIBLE BREAK-IN ATTEMPT!");
    check(
        &ev,
        "ssh_break_in_attempt",
        Network,
        Unknown,
        None,
        Some("203.0.113.77"),
        None,
    );
    assert_eq!(ev.fields["claimed_host"], "host-203-0-113-77.example.net");
    let ev = parse("Nov 20 10:06:01 h sshd[8]: Address 203.0.113.78 maps to mail.example.org, but this does not map back to the address - POSSIBLE BREAK-IN ATTEMPT!");
    check(
        &ev,
        "ssh_break_in_attempt",
        Network,
        Unknown,
        None,
        Some("203.0.113.78"),
        None,
    );
}

#[test]
fn sshd_pam_session_opened_and_closed() {
    let ev = parse("Nov 20 10:07:00 h sshd[9]: pam_unix(sshd:session): session opened for user deploy(uid=1001) by (uid=0)");
    check(&ev, "session_opened", Session, Success, None, None, None);
    assert_eq!(ev.target.user.as_deref(), Some("deploy"));
    assert_eq!(ev.target.uid, Some(1001));
    assert_eq!(ev.actor.uid, Some(0));
    assert_eq!(ev.target.resource.as_deref(), Some("sshd"));
    let ev =
        parse("Nov 20 10:07:01 h sshd[9]: pam_unix(sshd:session): session closed for user deploy");
    check(&ev, "session_closed", Session, Success, None, None, None);
    assert_eq!(ev.target.user.as_deref(), Some("deploy"));
}

#[test]
fn sshd_pam_more_failures_and_user_not_allowed() {
    let ev = parse("Nov 20 10:07:02 h sshd[9]: PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root");
    check(
        &ev,
        "ssh_login",
        Authentication,
        Failure,
        Some("root"),
        Some("203.0.113.9"),
        None,
    );
    assert_eq!(ev.fields["count"], "2");
    let ev = parse("Nov 20 10:07:03 h sshd[9]: User bob from 192.0.2.3 not allowed because not listed in AllowUsers");
    check(
        &ev,
        "ssh_login",
        Authentication,
        Failure,
        Some("bob"),
        Some("192.0.2.3"),
        None,
    );
}

#[test]
fn sudo_command_with_all_fields() {
    let ev = parse("Nov 20 11:00:00 h sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx");
    check(
        &ev,
        "sudo_command",
        Privilege,
        Success,
        Some("alice"),
        None,
        None,
    );
    assert_eq!(ev.target.user.as_deref(), Some("root"));
    assert_eq!(ev.tty.as_deref(), Some("pts/0"));
    assert_eq!(ev.cwd.as_deref(), Some("/home/alice"));
    assert_eq!(
        ev.command.as_deref(),
        Some("/usr/bin/systemctl restart nginx")
    );
}

#[test]
fn sudo_command_containing_separator_is_kept_whole() {
    let ev = parse("Nov 20 11:00:01 h sudo: bob : TTY=pts/1 ; PWD=/ ; USER=root ; ENV=A=1 ; COMMAND=/bin/sh -c echo a ; echo b");
    assert_eq!(ev.command.as_deref(), Some("/bin/sh -c echo a ; echo b"));
    assert_eq!(ev.fields["env"], "A=1");
}

#[test]
fn sudo_incorrect_password_attempts() {
    let ev = parse("Nov 20 11:00:02 h sudo: mallory : 3 incorrect password attempts ; TTY=pts/2 ; PWD=/tmp ; USER=root ; COMMAND=/bin/bash");
    check(
        &ev,
        "sudo_auth_failure",
        Privilege,
        Failure,
        Some("mallory"),
        None,
        None,
    );
    assert_eq!(ev.reason.as_deref(), Some("3 incorrect password attempts"));
    assert_eq!(ev.command.as_deref(), Some("/bin/bash"));
    let ev = parse("Nov 20 11:00:03 h sudo: mallory : 1 incorrect password attempt ; TTY=pts/2 ; PWD=/tmp ; USER=root ; COMMAND=/bin/id");
    assert_eq!(ev.action, "sudo_auth_failure");
}

#[test]
fn sudo_user_not_in_sudoers() {
    let ev = parse("Feb 24 00:13:02 precise32 sudo:      tsg : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/vagrant ; USER=root ; COMMAND=/bin/ls");
    check(
        &ev,
        "sudo_not_in_sudoers",
        Privilege,
        Failure,
        Some("tsg"),
        None,
        None,
    );
    assert_eq!(ev.target.user.as_deref(), Some("root"));
}

#[test]
fn sudo_pam_authentication_failure() {
    let ev = parse("Nov 20 11:00:04 h sudo: pam_unix(sudo:auth): authentication failure; logname=mallory uid=1002 euid=0 tty=/dev/pts/2 ruser=mallory rhost=  user=mallory");
    check(
        &ev,
        "authentication_failure",
        Authentication,
        Failure,
        Some("mallory"),
        None,
        None,
    );
    // uid= is the calling process's uid (here sudo's real uid), kept as a field.
    assert_eq!(ev.fields["uid"], "1002");
    assert_eq!(ev.actor.uid, None);
    assert_eq!(ev.tty.as_deref(), Some("/dev/pts/2"));
    assert_eq!(ev.target.resource.as_deref(), Some("sudo"));
    assert_eq!(ev.fields["pam_module"], "pam_unix");
}

#[test]
fn su_session_opened_closed_and_failed() {
    let ev = parse("Nov 20 12:00:00 h su: pam_unix(su-l:session): session opened for user root(uid=0) by alice(uid=1000)");
    check(
        &ev,
        "session_opened",
        Session,
        Success,
        Some("alice"),
        None,
        None,
    );
    assert_eq!(ev.actor.uid, Some(1000));
    assert_eq!(ev.target.user.as_deref(), Some("root"));
    assert_eq!(ev.target.resource.as_deref(), Some("su-l"));
    let ev = parse("Nov 20 12:00:05 h su: pam_unix(su-l:session): session closed for user root");
    check(&ev, "session_closed", Session, Success, None, None, None);
    let ev = parse("Nov 20 12:01:00 h su[99]: FAILED SU (to root) bob on pts/3");
    check(&ev, "su", Privilege, Failure, Some("bob"), None, None);
    assert_eq!(ev.target.user.as_deref(), Some("root"));
    assert_eq!(ev.tty.as_deref(), Some("pts/3"));
    let ev = parse("Nov 20 12:01:01 h su[99]: (to postgres) alice on pts/0");
    check(&ev, "su", Privilege, Success, Some("alice"), None, None);
    let ev = parse("Nov 20 12:01:02 h su[99]: FAILED su for root by eve");
    check(&ev, "su", Privilege, Failure, Some("eve"), None, None);
}

#[test]
fn pam_unix_authentication_failure_with_rhost_user_and_uid() {
    let ev = parse("Nov 20 13:00:00 h sshd[10]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root");
    check(
        &ev,
        "authentication_failure",
        Authentication,
        Failure,
        Some("root"),
        Some("203.0.113.9"),
        None,
    );
    // Regression: uid=0 is sshd's own uid; mapping it to actor.uid claimed the
    // user trying to log in was uid 0.
    assert_eq!(ev.actor.uid, None);
    assert_eq!(ev.fields["uid"], "0");
    assert_eq!(ev.tty.as_deref(), Some("ssh"));
    let ev = parse("Nov 20 13:00:01 h sshd[10]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=scanner.example.net");
    assert_eq!(ev.src_addr.as_deref(), Some("scanner.example.net"));
    assert_eq!(ev.actor.user, None);
    let ev = parse("Nov 20 13:00:02 h sshd[10]: pam_unix(sshd:auth): check pass; user unknown");
    check(
        &ev,
        "authentication_failure",
        Authentication,
        Failure,
        None,
        None,
        None,
    );
    assert_eq!(ev.reason.as_deref(), Some("user unknown"));
}

#[test]
fn pam_faillock_lockout_and_failure() {
    let ev = parse("Nov 20 13:01:00 h sshd[11]: pam_faillock(sshd:auth): Consecutive login failures for user root account temporarily locked");
    check(
        &ev,
        "account_locked",
        Authentication,
        Failure,
        Some("root"),
        None,
        None,
    );
    assert_eq!(ev.fields["pam_module"], "pam_faillock");
    let ev = parse("Nov 20 13:01:01 h sudo: pam_faillock(sudo:auth): authentication failure; logname=bob uid=1003 euid=0 tty=/dev/pts/4 ruser=bob rhost=  user=bob");
    check(
        &ev,
        "authentication_failure",
        Authentication,
        Failure,
        Some("bob"),
        None,
        None,
    );
    assert_eq!(ev.fields["uid"], "1003");
}

#[test]
fn shadow_useradd_and_groupadd() {
    let ev = parse("Nov 20 14:00:00 h useradd[6995]: new user: name=apache, UID=48, GID=48, home=/usr/share/httpd, shell=/sbin/nologin, from=/dev/pts/0");
    check(&ev, "user_created", Account, Success, None, None, None);
    assert_eq!(ev.target.user.as_deref(), Some("apache"));
    assert_eq!((ev.target.uid, ev.target.gid), (Some(48), Some(48)));
    assert_eq!(ev.fields["home"], "/usr/share/httpd");
    assert_eq!(ev.fields["shell"], "/sbin/nologin");
    let ev = parse("Nov 20 14:00:00 h useradd[6995]: new group: name=apache, GID=48");
    check(&ev, "group_created", Account, Success, None, None, None);
    assert_eq!(
        (ev.target.group.as_deref(), ev.target.gid),
        (Some("apache"), Some(48))
    );
    let ev =
        parse("Nov 20 14:00:01 h groupadd[7001]: group added to /etc/group: name=docker, GID=999");
    assert_eq!(
        (ev.action.as_ref(), ev.target.group.as_deref()),
        ("group_created", Some("docker"))
    );
    let ev = parse("Nov 20 14:00:01 h groupadd[7001]: group added to /etc/gshadow: name=docker");
    assert_eq!(ev.fields["database"], "gshadow");
    let ev = parse("Nov 20 14:00:02 h useradd[7002]: failed adding user 'bad', exit code: 9");
    check(&ev, "user_created", Account, Failure, None, None, None);
    assert_eq!(ev.reason.as_deref(), Some("exit code: 9"));
}

#[test]
fn shadow_userdel_usermod_groupdel() {
    let ev = parse("Nov 20 14:01:00 h userdel[7100]: delete user 'olduser'");
    check(&ev, "user_deleted", Account, Success, None, None, None);
    assert_eq!(ev.target.user.as_deref(), Some("olduser"));
    let ev = parse("Nov 20 14:01:00 h userdel[7100]: removed group 'olduser' owned by 'olduser'");
    assert_eq!(
        (ev.action.as_ref(), ev.target.group.as_deref()),
        ("group_deleted", Some("olduser"))
    );
    let ev = parse("Nov 20 14:01:01 h usermod[7101]: add 'alice' to group 'sudo'");
    check(
        &ev,
        "group_member_added",
        Account,
        Success,
        None,
        None,
        None,
    );
    assert_eq!(
        (ev.target.user.as_deref(), ev.target.group.as_deref()),
        (Some("alice"), Some("sudo"))
    );
    let ev = parse("Nov 20 14:01:01 h usermod[7101]: add 'alice' to shadow group 'sudo'");
    assert_eq!(ev.fields["database"], "gshadow");
    let ev = parse(
        "Nov 20 14:01:02 h usermod[7102]: change user 'alice' shell from '/bin/sh' to '/bin/bash'",
    );
    check(&ev, "user_modified", Account, Success, None, None, None);
    assert_eq!(
        (
            ev.fields["attribute"].as_str(),
            ev.fields["old"].as_str(),
            ev.fields["new"].as_str()
        ),
        ("shell", "/bin/sh", "/bin/bash")
    );
    let ev = parse("Nov 20 14:01:03 h usermod[7103]: lock user 'alice' password");
    assert_eq!(ev.action, "user_locked");
    let ev = parse("Nov 20 14:01:04 h usermod[7104]: change user name 'al' to 'alice'");
    assert_eq!(
        (ev.target.user.as_deref(), ev.fields["old"].as_str()),
        (Some("alice"), "al")
    );
    let ev = parse("Nov 20 14:01:05 h groupdel[7105]: group 'docker' removed");
    assert_eq!(
        (ev.action.as_ref(), ev.target.group.as_deref()),
        ("group_deleted", Some("docker"))
    );
    let ev = parse("Nov 20 14:01:05 h groupdel[7105]: group 'docker' removed from /etc/gshadow");
    assert_eq!(ev.fields["database"], "gshadow");
    let ev = parse("Nov 20 14:01:06 h groupmod[7106]: group changed in /etc/group (group docker/999, new name: containers)");
    assert_eq!(
        (ev.action.as_ref(), ev.target.gid),
        ("group_modified", Some(999))
    );
    assert_eq!(ev.fields["new"], "containers");
}

#[test]
fn shadow_passwd_chpasswd_gpasswd() {
    let ev = parse(
        "Nov 20 14:02:00 h passwd[7200]: pam_unix(passwd:chauthtok): password changed for alice",
    );
    check(&ev, "password_changed", Account, Success, None, None, None);
    assert_eq!(ev.target.user.as_deref(), Some("alice"));
    let ev = parse(
        "Nov 20 14:02:01 h chpasswd[7201]: pam_unix(chpasswd:chauthtok): password changed for bob",
    );
    assert_eq!(
        (ev.action.as_ref(), ev.target.resource.as_deref()),
        ("password_changed", Some("chpasswd"))
    );
    let ev = parse("Nov 20 14:02:02 h passwd[7202]: password for 'carol' changed by 'root'");
    check(
        &ev,
        "password_changed",
        Account,
        Success,
        Some("root"),
        None,
        None,
    );
    let ev = parse("Nov 20 14:02:03 h gpasswd[7203]: user dave added by root to group docker");
    check(
        &ev,
        "group_member_added",
        Account,
        Success,
        Some("root"),
        None,
        None,
    );
    assert_eq!(
        (ev.target.user.as_deref(), ev.target.group.as_deref()),
        (Some("dave"), Some("docker"))
    );
    let ev = parse("Nov 20 14:02:04 h gpasswd[7204]: user dave removed by root from group docker");
    assert_eq!(ev.action, "group_member_removed");
    let ev =
        parse("Nov 20 14:02:05 h gpasswd[7205]: members of group wheel set by root to alice,bob");
    assert_eq!(
        (ev.action.as_ref(), ev.fields["members"].as_str()),
        ("group_members_set", "alice,bob")
    );
    let ev = parse("Nov 20 14:02:06 h gpasswd[7206]: password of group staff changed by root");
    assert_eq!(ev.action, "group_password_changed");
}

#[test]
fn logind_new_and_removed_session() {
    let ev = parse("Nov 20 15:00:00 h systemd-logind[500]: New session 42 of user alice.");
    check(
        &ev,
        "session_created",
        Session,
        Success,
        Some("alice"),
        None,
        None,
    );
    assert_eq!(ev.session_id.as_deref(), Some("42"));
    let ev =
        parse("Nov 20 15:00:01 h systemd-logind[500]: New session c3 of user gdm (class greeter).");
    assert_eq!(
        (ev.session_id.as_deref(), ev.actor.user.as_deref()),
        (Some("c3"), Some("gdm"))
    );
    let ev = parse("Nov 20 15:10:00 h systemd-logind[500]: Removed session 42.");
    check(&ev, "session_removed", Session, Success, None, None, None);
    assert_eq!(ev.session_id.as_deref(), Some("42"));
    let ev = parse("Nov 20 15:09:59 h systemd-logind[500]: Session 42 logged out. Waiting for processes to exit.");
    assert_eq!(ev.action, "session_logged_out");
}

#[test]
fn legacy_pam_logout_line() {
    let ev = parse("2019-06-14T13:01:15.412+01:30 localhost pam: user nobody logged out.");
    check(&ev, "session_closed", Session, Success, None, None, None);
    assert_eq!(ev.target.user.as_deref(), Some("nobody"));
    assert_eq!(
        ev.ts.unwrap().to_utc().to_string(),
        "2019-06-14T11:31:15.412Z"
    );
}

#[test]
fn unknown_messages_are_unparsed_but_keep_the_header() {
    let ev = parse("Nov 20 16:00:00 h sshd[12]: Server listening on 0.0.0.0 port 22.");
    assert!(ev.is_unparsed());
    assert_eq!(ev.program.as_deref(), Some("sshd"));
    assert_eq!(ev.pid, Some(12));
    assert_eq!(ev.host.as_deref(), Some("h"));
    assert!(ev.ts.is_some());
    let ev = parse("Nov 20 16:00:01 h CRON[13]: (root) CMD (run-parts /etc/cron.hourly)");
    assert!(ev.is_unparsed());
    assert_eq!(ev.program.as_deref(), Some("CRON"));
    let ev = parse("this is not syslog at all");
    assert!(ev.is_unparsed());
    assert_eq!(ev.program, None);
    assert_eq!(ev.raw, "this is not syslog at all");
}
