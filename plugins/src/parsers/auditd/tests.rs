//! auditd parser tests: records, values, grouping and positions, and the
//! mapping of each kind of event. The fixtures are written for these tests
//! (hex computed from the plain strings they name in comments).

use std::time::Instant;

use auditship_core::{lossless, AuditEvent, Category, Outcome, Timestamp};

use super::record::{self, Raw};
use super::value::{self, Text};
use super::*;

/// `grep -r "secret key" /etc/ssl` run by alice (auid 1000): SYSCALL, EXECVE
/// with a hex argument (`secret key`), CWD, two PATHs, PROCTITLE in hex.
pub(super) const EXEC: &[&str] = &[
    r#"type=SYSCALL msg=audit(1700000000.123:4567): arch=c000003e syscall=59 success=yes exit=0 a0=55d0c2a3b4c0 a1=55d0c2a3b5e0 a2=55d0c2a3b700 a3=8 items=2 ppid=2101 pid=2150 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm="grep" exe="/usr/bin/grep" subj=unconfined key="exec""#,
    r#"type=EXECVE msg=audit(1700000000.123:4567): argc=4 a0="grep" a1="-r" a2=736563726574206B6579 a3="/etc/ssl""#,
    r#"type=CWD msg=audit(1700000000.123:4567): cwd="/home/alice""#,
    r#"type=PATH msg=audit(1700000000.123:4567): item=0 name="/usr/bin/grep" inode=1311 dev=08:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0"#,
    r#"type=PATH msg=audit(1700000000.123:4567): item=1 name="/lib64/ld-linux-x86-64.so.2" inode=2049 dev=08:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0"#,
    r#"type=PROCTITLE msg=audit(1700000000.123:4567): proctitle=67726570002D7200736563726574206B6579002F6574632F73736C"#,
];

/// `python3 -c 'print("hello world")'` through sudo (auid 1000, euid 0):
/// the third argument split into two pieces across two EXECVE records
/// (`print("hel` + `lo world")`), and an EOE.
pub(super) const SPLIT_ARG: &[&str] = &[
    r#"type=SYSCALL msg=audit(1700000005.500:4570): arch=c000003e syscall=59 success=yes exit=0 a0=5612 a1=5613 a2=5614 a3=0 items=1 ppid=4100 pid=4105 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm="python3" exe="/usr/bin/python3.11" subj=unconfined key="exec""#,
    r#"type=EXECVE msg=audit(1700000005.500:4570): argc=3 a0="python3" a1="-c" a2_len=20 a2[0]=7072696E74282268656C"#,
    r#"type=EXECVE msg=audit(1700000005.500:4570): a2[1]=6C6F20776F726C642229"#,
    r#"type=EOE msg=audit(1700000005.500:4570): "#,
];

/// sshd refusing an invalid user from 203.0.113.9 (acct is hex for
/// `(invalid user)`).
pub(super) const LOGIN_INVALID: &str = r#"type=USER_LOGIN msg=audit(1700000010.002:4580): pid=3301 uid=0 auid=4294967295 ses=4294967295 subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg='op=login acct=28696E76616C6964207573657229 exe="/usr/sbin/sshd" hostname=? addr=203.0.113.9 terminal=ssh res=failed'"#;

/// A failed root login from an IPv4-mapped address.
pub(super) const LOGIN_ROOT: &str = r#"type=USER_LOGIN msg=audit(1700000011.000:4581): pid=3302 uid=0 auid=4294967295 ses=4294967295 subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg='op=login acct="root" exe="/usr/sbin/sshd" hostname=scanner.example.net addr=::ffff:198.51.100.23 terminal=ssh res=failed'"#;

/// sudo running `systemctl restart nginx` (cmd in hex) for alice.
pub(super) const USER_CMD: &str = r#"type=USER_CMD msg=audit(1700000020.750:4590): pid=4100 uid=1000 auid=1000 ses=3 subj=unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023 msg='cwd="/home/alice" cmd=73797374656D63746C2072657374617274206E67696E78 exe="/usr/bin/sudo" terminal=pts/0 res=success'"#;

/// useradd creating uid 1050, run by alice.
pub(super) const ADD_USER: &str = r#"type=ADD_USER msg=audit(1700000030.000:4600): pid=5200 uid=0 auid=1000 ses=3 subj=unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023 msg='op=adding user id=1050 exe="/usr/sbin/useradd" hostname=bastion addr=? terminal=pts/0 res=success'"#;

/// ENRICHED: alice's `cat /etc/shadow` refused (EACCES), names after GS.
pub(super) const ENRICHED: &[&str] = &[
    "type=SYSCALL msg=audit(1700000040.321:4610): arch=c000003e syscall=257 success=no exit=-13 a0=ffffff9c a1=7ffd1c2e4f10 a2=0 a3=0 items=1 ppid=2101 pid=2200 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm=\"cat\" exe=\"/usr/bin/cat\" subj=unconfined key=\"shadow\"\x1dARCH=x86_64 SYSCALL=openat AUID=\"alice\" UID=\"alice\" GID=\"alice\" EUID=\"alice\" SUID=\"alice\" FSUID=\"alice\" EGID=\"alice\" SGID=\"alice\" FSGID=\"alice\"",
    "type=CWD msg=audit(1700000040.321:4610): cwd=\"/home/alice\"",
    "type=PATH msg=audit(1700000040.321:4610): item=0 name=\"/etc/shadow\" inode=1573 dev=08:01 mode=0100640 ouid=0 ogid=42 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID=\"root\" OGID=\"shadow\"",
    "type=PROCTITLE msg=audit(1700000040.321:4610): proctitle=636174002F6574632F736861646F77",
];

/// ENRICHED userspace record on a named node: alice's ssh session opens.
pub(super) const NODE_START: &str = "node=web-01 type=USER_START msg=audit(1700000050.010:88): pid=3400 uid=0 auid=1000 ses=7 subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg='op=PAM:session_open grantors=pam_selinux,pam_loginuid,pam_unix acct=\"alice\" exe=\"/usr/sbin/sshd\" hostname=192.0.2.44 addr=192.0.2.44 terminal=ssh res=success'\x1dUID=\"root\" AUID=\"alice\"";

pub(super) fn t0() -> Instant {
    Instant::now()
}

pub(super) fn observed() -> Timestamp {
    Timestamp::from_civil(2026, 11, 22, 8, 0, 0, 0, 0).unwrap()
}

pub(super) fn one(lines: &[&str]) -> AuditEvent {
    let bytes: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
    map::event(&bytes, false).expect("records")
}

pub(super) fn field<'a>(ev: &'a AuditEvent, k: &str) -> Option<&'a str> {
    ev.fields.get(k).map(String::as_str)
}

// ---- records and values ----

#[test]
fn header_reads_node_type_time_and_serial() {
    let h = record::header(NODE_START.as_bytes()).unwrap();
    assert_eq!(h.node, Some(&b"web-01"[..]));
    assert_eq!(h.rtype, "USER_START");
    assert_eq!((h.secs, h.millis), (1_700_000_050, 10));
    assert_eq!(h.id, "1700000050.010:88");
    assert_eq!(h.ts, "1700000050.010");
    let k = record::header(b"type=1300 audit(1700000000.5:9): arch=c000003e").unwrap();
    assert_eq!(
        (k.rtype, k.millis, k.id),
        ("SYSCALL", 500, "1700000000.5:9")
    );
    for bad in [
        &b"Nov 22 08:00:00 host sshd[1]: Accepted password"[..],
        b"type=SYSCALL msg=audit(17000",
        b"type= msg=audit(1.0:1): x=1",
        b"type=SYSCALL msg=audit(1700000000.123:): x=1",
        b"",
    ] {
        assert!(
            record::header(bad).is_none(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn record_fields_open_the_user_message_and_split_off_enriched_values() {
    let r = record::parse(NODE_START.as_bytes()).unwrap();
    let get = |k: &str, enriched: bool| {
        r.fields
            .iter()
            .find(|f| f.key == k && f.enriched == enriched)
            .map(|f| f.value)
    };
    assert_eq!(get("pid", false), Some(Raw::Bare(b"3400")));
    assert_eq!(get("op", false), Some(Raw::Bare(b"PAM:session_open")));
    assert_eq!(get("acct", false), Some(Raw::Quoted(b"alice")));
    assert_eq!(get("res", false), Some(Raw::Bare(b"success")));
    assert_eq!(get("AUID", true), Some(Raw::Quoted(b"alice")));
    assert_eq!(get("msg", false), None, "msg is opened, not kept whole");
    let avc = record::parse(b"type=AVC msg=audit(1.000:2): avc:  denied  { read } for  pid=7 comm=\"cat\" name=\"shadow\" tclass=file permissive=0\x1dSADDR={ saddr_fam=inet laddr=10.0.0.1 lport=22 }").unwrap();
    let words: Vec<&[u8]> = avc.text.clone();
    assert_eq!(
        words,
        [&b"avc:"[..], b"denied", b"{", b"read", b"}", b"for"]
    );
    assert_eq!(avc.fields.last().unwrap().key, "SADDR");
    assert_eq!(
        avc.fields.last().unwrap().value,
        Raw::Braced(b" saddr_fam=inet laddr=10.0.0.1 lport=22 ")
    );
}

#[test]
fn hex_values_decode_only_for_untrusted_string_keys() {
    assert_eq!(value::hex_decode(b"6C73"), Some(b"ls".to_vec()));
    assert_eq!(value::hex_decode(b"6c7"), None);
    assert_eq!(value::hex_decode(b"zz"), None);
    let d = |t, k, v: &'static [u8]| value::decode(t, k, Raw::Bare(v)).text;
    assert_eq!(d("PROCTITLE", "proctitle", b"6C73002D6C"), "ls\0-l");
    assert_eq!(d("EXECVE", "a2", b"6C73"), "ls");
    assert_eq!(d("EXECVE", "a2[1]", b"6C73"), "ls");
    assert_eq!(
        d("SYSCALL", "a2", b"6C73"),
        "6C73",
        "syscall arguments are numbers"
    );
    assert_eq!(d("SYSCALL", "key", b"(null)"), "(null)");
    assert_eq!(d("PATH", "name", b"(null)"), "(null)");
    assert_eq!(d("USER_CMD", "cmd", b"6C73"), "ls");
    assert_eq!(d("SYSCALL", "uid", b"1000"), "1000");
    assert_eq!(
        value::decode("PATH", "name", Raw::Quoted(b"/etc/passwd")).text,
        "/etc/passwd"
    );
    assert_eq!(value::is_execve_arg("a12[3]"), Some((12, Some(3))));
    assert_eq!(value::is_execve_arg("a2_len"), None);
    assert_eq!(value::is_execve_arg("argc"), None);
}

#[test]
fn invalid_utf8_in_hex_is_kept_losslessly_and_named() {
    // name = "/tmp/" 0xff "ab"
    let t = value::decode("PATH", "name", Raw::Bare(b"2F746D702FFF6162"));
    assert_eq!(
        t,
        Text {
            text: "/tmp/\\xffab".into(),
            escaped: true
        }
    );
    assert_eq!(lossless::unescape(&t.text).unwrap(), b"/tmp/\xffab");
    let ev = one(&[
        "type=SYSCALL msg=audit(1700000070.000:4700): arch=c000003e syscall=87 success=yes exit=0 items=2 pid=9 auid=0 uid=0 euid=0 comm=\"rm\" exe=\"/usr/bin/rm\"",
        "type=PATH msg=audit(1700000070.000:4700): item=0 name=\"/tmp/\" nametype=PARENT",
        "type=PATH msg=audit(1700000070.000:4700): item=1 name=2F746D702FFF6162 nametype=DELETE",
    ]);
    assert_eq!(field(&ev, "path.1.name"), Some("/tmp/\\xffab"));
    assert_eq!(ev.target.resource.as_deref(), Some("/tmp/\\xffab"));
    assert_eq!(
        field(&ev, "audit_escaped"),
        Some("path.1.name,target.resource")
    );
    assert_eq!(field(&ev, "audit_syscall"), Some("unlink"));
}

#[test]
fn sockaddr_is_decoded() {
    // AF_INET, port 22, 203.0.113.9
    assert_eq!(
        value::sockaddr(b"02000016CB0071090000000000000000"),
        Some(("inet", "203.0.113.9".to_string(), Some(22)))
    );
    // AF_UNIX "/run/x"
    assert_eq!(
        value::sockaddr(b"01002F72756E2F7800"),
        Some(("unix", "/run/x".to_string(), None))
    );
    assert_eq!(value::sockaddr(b"zz"), None);
}

// ---- mapping ----

#[test]
fn execve_event_has_actor_full_argv_exe_cwd_and_key() {
    let ev = one(EXEC);
    assert_eq!(ev.category, Category::System);
    assert_eq!(ev.action, "process_executed");
    assert_eq!(ev.outcome, Outcome::Success);
    assert_eq!(ev.actor.uid, Some(1000));
    assert_eq!(ev.actor.user, None, "no enriched name");
    assert!(ev.target.user.is_none() && ev.target.uid.is_none());
    assert_eq!(ev.command.as_deref(), Some("grep -r secret key /etc/ssl"));
    assert_eq!(field(&ev, "execve.a2"), Some("secret key"));
    assert_eq!(field(&ev, "execve.argc"), Some("4"));
    assert_eq!(ev.target.resource.as_deref(), Some("/usr/bin/grep"));
    assert_eq!(ev.cwd.as_deref(), Some("/home/alice"));
    assert_eq!(ev.program.as_deref(), Some("grep"));
    assert_eq!(ev.pid, Some(2150));
    assert_eq!(ev.session_id.as_deref(), Some("3"));
    assert_eq!(ev.tty.as_deref(), Some("pts0"));
    assert_eq!(field(&ev, "audit_key"), Some("exec"));
    assert_eq!(field(&ev, "audit_syscall"), Some("execve"));
    assert_eq!(field(&ev, "audit_arch"), Some("x86_64"));
    assert_eq!(field(&ev, "audit_id"), Some("1700000000.123:4567"));
    assert_eq!(field(&ev, "audit_type"), Some("SYSCALL"));
    assert_eq!(
        field(&ev, "audit_records"),
        Some("SYSCALL,EXECVE,CWD,PATH,PATH,PROCTITLE")
    );
    assert_eq!(field(&ev, "path.0.name"), Some("/usr/bin/grep"));
    assert_eq!(
        field(&ev, "path.1.name"),
        Some("/lib64/ld-linux-x86-64.so.2")
    );
    assert_eq!(
        field(&ev, "proctitle.proctitle"),
        Some("grep -r secret key /etc/ssl")
    );
    assert_eq!(field(&ev, "syscall.a0"), Some("55d0c2a3b4c0"));
    assert_eq!(field(&ev, "syscall.subj"), Some("unconfined"));
    assert_eq!(field(&ev, "cwd.cwd"), Some("/home/alice"));
    assert_eq!(
        ev.ts,
        Timestamp::new(1_700_000_000, 123_000_000, 0),
        "UTC, milliseconds"
    );
    assert_eq!(ev.raw_ts.as_deref(), Some("1700000000.123"));
    assert!(field(&ev, "audit_escaped").is_none());
}

#[test]
fn every_value_of_every_record_is_kept() {
    let ev = one(EXEC);
    // SYSCALL 26 pairs, EXECVE argc + 4, CWD 1, PATH 2 x 14, PROCTITLE 1.
    let record_fields = ev
        .fields
        .keys()
        .filter(|k| !k.starts_with("audit_"))
        .count();
    assert_eq!(record_fields, 26 + 5 + 1 + 2 * 14 + 1);
}

#[test]
fn split_argument_is_reassembled_across_execve_records() {
    let ev = one(SPLIT_ARG);
    assert_eq!(field(&ev, "execve.a2"), Some(r#"print("hello world")"#));
    assert_eq!(field(&ev, "execve.a2_len"), Some("20"));
    assert_eq!(
        ev.command.as_deref(),
        Some(r#"python3 -c print("hello world")"#)
    );
    assert!(field(&ev, "execve.missing").is_none());
    assert!(field(&ev, "execve.a2[0]").is_none(), "pieces are merged");
    // Run through sudo: actor alice's login uid, target the effective root.
    assert_eq!(ev.actor.uid, Some(1000));
    assert_eq!(ev.target.uid, Some(0));
    assert_eq!(
        field(&ev, "audit_records"),
        Some("SYSCALL,EXECVE,EXECVE,EOE")
    );
    // A piece that never arrived is named.
    let ev = one(&SPLIT_ARG[..2]);
    assert_eq!(field(&ev, "execve.a2"), Some(r#"print("hel"#));
    assert!(
        field(&ev, "execve.missing").is_none(),
        "a2[1] unknown, not missing"
    );
    let ev = one(&[SPLIT_ARG[0], SPLIT_ARG[2]]);
    assert_eq!(field(&ev, "execve.missing"), Some("a0,a1,a2[0]"));
}

#[test]
fn failed_login_of_an_invalid_user_from_an_ip() {
    let ev = one(&[LOGIN_INVALID]);
    assert_eq!(ev.category, Category::Authentication);
    assert_eq!(ev.action, "user_login");
    assert_eq!(ev.outcome, Outcome::Failure);
    assert_eq!(ev.reason.as_deref(), Some("invalid user"));
    assert!(ev.actor.is_empty());
    assert_eq!(ev.src_ip, Some("203.0.113.9".parse().unwrap()));
    assert_eq!(ev.src_addr, None);
    assert_eq!(ev.tty.as_deref(), Some("ssh"));
    assert_eq!(ev.program.as_deref(), Some("sshd"));
    assert_eq!(ev.pid, Some(3301));
    assert_eq!(ev.session_id, None, "unset session");
    assert_eq!(field(&ev, "user_login.acct"), Some("(invalid user)"));
    assert_eq!(field(&ev, "user_login.exe"), Some("/usr/sbin/sshd"));
    assert_eq!(field(&ev, "audit_type"), Some("USER_LOGIN"));

    let ev = one(&[LOGIN_ROOT]);
    assert_eq!(ev.actor.user.as_deref(), Some("root"));
    assert_eq!(ev.outcome, Outcome::Failure);
    assert_eq!(
        ev.src_ip,
        Some("198.51.100.23".parse().unwrap()),
        "mapped IPv4"
    );
    assert_eq!(ev.src_addr.as_deref(), Some("scanner.example.net"));
}

#[test]
fn sudo_user_cmd_is_a_sudo_command() {
    let ev = one(&[USER_CMD]);
    assert_eq!(ev.category, Category::Privilege);
    assert_eq!(ev.action, "sudo_command");
    assert_eq!(ev.outcome, Outcome::Success);
    assert_eq!(ev.command.as_deref(), Some("systemctl restart nginx"));
    assert_eq!(ev.cwd.as_deref(), Some("/home/alice"));
    assert_eq!(ev.tty.as_deref(), Some("pts/0"));
    assert_eq!(ev.actor.uid, Some(1000));
    assert_eq!(ev.program.as_deref(), Some("sudo"));
    let other = USER_CMD.replace("/usr/bin/sudo", "/usr/bin/doas");
    assert_eq!(one(&[&other]).action, "user_command");
}

#[test]
fn add_user_names_the_created_account_and_who_created_it() {
    let ev = one(&[ADD_USER]);
    assert_eq!(ev.category, Category::Account);
    assert_eq!(ev.action, "user_created");
    assert_eq!(ev.outcome, Outcome::Success);
    assert_eq!(ev.target.uid, Some(1050));
    assert_eq!(ev.actor.uid, Some(1000), "auid, not the process uid 0");
    assert_eq!(ev.src_ip, None);
    assert_eq!(ev.src_addr, None, "hostname is the local host");
    assert_eq!(field(&ev, "add_user.op"), Some("adding user"));
    let named = ADD_USER.replace("id=1050", "acct=\"backup\"");
    assert_eq!(one(&[&named]).target.user.as_deref(), Some("backup"));
    let grp = r#"type=GRP_MGMT msg=audit(1700000031.000:4601): pid=5201 uid=0 auid=1000 ses=3 msg='op=add-user-to-group grp="docker" acct="bob" exe="/usr/sbin/usermod" hostname=bastion addr=? terminal=pts/0 res=success'"#;
    let ev = one(&[grp]);
    assert_eq!(ev.action, "group_member_added");
    assert_eq!(ev.target.group.as_deref(), Some("docker"));
    assert_eq!(ev.target.user.as_deref(), Some("bob"));
}

#[test]
fn enriched_names_fill_actor_and_syscall_and_failure_has_a_reason() {
    let ev = one(ENRICHED);
    assert_eq!(ev.action, "syscall");
    assert_eq!(ev.outcome, Outcome::Failure);
    assert_eq!(ev.reason.as_deref(), Some("EACCES"));
    assert_eq!(ev.actor.user.as_deref(), Some("alice"));
    assert_eq!(ev.actor.uid, Some(1000));
    assert_eq!(ev.target.resource.as_deref(), Some("/etc/shadow"));
    assert_eq!(ev.command.as_deref(), Some("cat /etc/shadow"));
    assert_eq!(field(&ev, "audit_syscall"), Some("openat"));
    assert_eq!(field(&ev, "audit_key"), Some("shadow"));
    assert_eq!(field(&ev, "syscall.AUID"), Some("alice"));
    assert_eq!(field(&ev, "syscall.SYSCALL"), Some("openat"));
    assert_eq!(field(&ev, "path.OGID"), Some("shadow"));
    assert_eq!(field(&ev, "syscall.key"), Some("shadow"));

    let ev = one(&[NODE_START]);
    assert_eq!(ev.host.as_deref(), Some("web-01"));
    assert_eq!(ev.category, Category::Session);
    assert_eq!(ev.action, "session_opened");
    assert_eq!(ev.actor.user.as_deref(), Some("alice"), "acct");
    assert_eq!(ev.src_ip, Some("192.0.2.44".parse().unwrap()));
    assert_eq!(ev.session_id.as_deref(), Some("7"));
    assert_eq!(
        field(&ev, "user_start.grantors"),
        Some("pam_selinux,pam_loginuid,pam_unix")
    );
    assert_eq!(field(&ev, "user_start.UID"), Some("root"));
}

#[test]
fn config_change_with_its_syscall_is_a_config_change() {
    let ev = one(&[
        r#"type=CONFIG_CHANGE msg=audit(1700000080.100:4800): auid=1000 ses=3 subj=unconfined op=remove_rule key="exec" list=4 res=1"#,
        r#"type=SYSCALL msg=audit(1700000080.100:4800): arch=c000003e syscall=44 success=yes exit=1080 a0=3 a1=7ffc a2=438 a3=0 items=0 ppid=4100 pid=4300 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm="auditctl" exe="/usr/sbin/auditctl" subj=unconfined key=(null)"#,
        r#"type=PROCTITLE msg=audit(1700000080.100:4800): proctitle=617564697463746C002D44"#,
    ]);
    assert_eq!(ev.action, "audit_config_changed");
    assert_eq!(ev.outcome, Outcome::Success);
    assert_eq!(field(&ev, "audit_type"), Some("CONFIG_CHANGE"));
    assert_eq!(field(&ev, "audit_key"), Some("exec"), "(null) is no key");
    assert_eq!(ev.actor.uid, Some(1000));
    assert_eq!(ev.program.as_deref(), Some("auditctl"));
    assert_eq!(ev.command.as_deref(), Some("auditctl -D"));
}

#[test]
fn unknown_types_become_generic_events_that_keep_everything() {
    let ev = one(&[
        r#"type=NETFILTER_CFG msg=audit(1700000090.000:4900): table=filter:2 family=2 entries=12 op=xt_replace pid=600 subj=unconfined comm="iptables-restor""#,
    ]);
    assert_eq!(ev.category, Category::System);
    assert_eq!(ev.action, "audit_netfilter_cfg");
    assert_eq!(field(&ev, "netfilter_cfg.table"), Some("filter:2"));
    assert_eq!(field(&ev, "netfilter_cfg.entries"), Some("12"));
    assert_eq!(ev.program.as_deref(), Some("iptables-restor"));
    let unknown = one(&["type=UNKNOWN[1334] msg=audit(1700000090.500:4902): prog-id=12 op=LOAD"]);
    assert_eq!(unknown.action, "audit_unknown_1334");
    assert_eq!(field(&unknown, "unknown_1334.prog-id"), Some("12"));
    assert_eq!(ev.pid, Some(600));
    let avc = one(&[
        "type=AVC msg=audit(1700000091.000:4901): avc:  denied  { read } for  pid=7 comm=\"cat\" name=\"shadow\" dev=\"sda1\" ino=1573 scontext=u:r:t:s0 tcontext=u:r:s:s0 tclass=file permissive=0",
    ]);
    assert_eq!(avc.action, "avc_denied");
    assert_eq!(avc.outcome, Outcome::Failure);
    assert_eq!(avc.target.resource.as_deref(), Some("shadow"));
    assert_eq!(field(&avc, "avc.text"), Some("avc: denied { read } for"));
}

#[test]
fn a_key_repeated_in_a_record_is_kept_under_a_numbered_name() {
    let ev = one(&[
        r#"type=USER_ACCT msg=audit(1700000000.000:1): pid=5 uid=0 auid=1000 ses=2 msg='op=PAM:accounting acct="bob" exe="/usr/sbin/cron" uid=33 hostname=? addr=? terminal=cron res=success'"#,
    ]);
    assert_eq!(field(&ev, "user_acct.uid"), Some("0"));
    assert_eq!(field(&ev, "user_acct.uid#2"), Some("33"));
}
