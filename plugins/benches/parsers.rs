//! Parser throughput on realistic generated lines (see `auditship-bench`).
//!
//! Each iteration parses a batch of 1,000 distinct lines, so branch
//! predictors and caches see realistic variety; throughput is reported in
//! lines (elements) per second. Run with `cargo bench -p auditship-plugins`.
//!
//! `auditd` is measured as the agent runs it: lines of an audit.log pushed
//! through [`Parser::push_line`], grouped into events (4.55 lines per event
//! in the generated mix below) and mapped; throughput is in lines.

use std::time::Instant;

use auditship_bench::{Kind, LineGen};
use auditship_core::{Flags, Timestamp};
use auditship_plugins::{Format, Parser, ParserOptions, StreamLine};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const BATCH: usize = 1000;

fn bench_format(c: &mut Criterion, name: &str, kind: Kind, format: Format) {
    let lines = LineGen::new(42).lines(kind, BATCH);
    let mut parser = Parser::new(&ParserOptions {
        format,
        timezone: Some("UTC".into()),
        ..ParserOptions::default()
    })
    .unwrap();
    let reference = Timestamp::from_civil(2026, 11, 22, 8, 0, 0, 0, 0).unwrap();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(name, |b| {
        b.iter(|| {
            for l in &lines {
                std::hint::black_box(parser.parse_at(l.as_bytes(), reference));
            }
        })
    });
    group.finish();
}

/// Hex of `s`, as auditd encodes untrusted strings.
fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02X}")).collect()
}

/// A realistic audit.log: per 20 events, 13 executions (SYSCALL, EXECVE
/// with a hex argument, CWD, two PATHs, PROCTITLE; 2 of them ENRICHED),
/// 2 failed opens (SYSCALL, CWD, PATH, PROCTITLE), 3 single-record logins
/// and PAM records, 2 sudo USER_CMDs.
fn audit_lines(events: u64) -> Vec<String> {
    let mut lines = Vec::new();
    for n in 0..events {
        let id = format!(
            "{}.{:03}:{}",
            1_700_000_000 + n / 7,
            (n * 37) % 1000,
            50_000 + n
        );
        let pid = 30_000 + n % 5000;
        let user = ["alice", "bob", "deploy", "root"][(n % 4) as usize];
        let gs = if n % 20 >= 18 {
            "\x1dARCH=x86_64 SYSCALL=execve AUID=\"alice\" UID=\"alice\" GID=\"alice\" EUID=\"alice\" SUID=\"alice\" FSUID=\"alice\" EGID=\"alice\" SGID=\"alice\" FSGID=\"alice\""
        } else {
            ""
        };
        match n % 20 {
            0..=10 | 18 | 19 => {
                let file = format!("/var/log/app/report {n}.txt");
                lines.push(format!("type=SYSCALL msg=audit({id}): arch=c000003e syscall=59 success=yes exit=0 a0=55d0c2a3b4c0 a1=55d0c2a3b5e0 a2=55d0c2a3b700 a3=8 items=2 ppid=2101 pid={pid} auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm=\"grep\" exe=\"/usr/bin/grep\" subj=unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023 key=\"exec\"{gs}"));
                lines.push(format!("type=EXECVE msg=audit({id}): argc=4 a0=\"grep\" a1=\"-c\" a2=\"ERROR\" a3={}", hex(&file)));
                lines.push(format!("type=CWD msg=audit({id}): cwd=\"/home/{user}\""));
                lines.push(format!("type=PATH msg=audit({id}): item=0 name=\"/usr/bin/grep\" inode=1311 dev=08:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 obj=system_u:object_r:bin_t:s0 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0"));
                lines.push(format!("type=PATH msg=audit({id}): item=1 name=\"/lib64/ld-linux-x86-64.so.2\" inode=2049 dev=08:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 obj=system_u:object_r:ld_so_t:s0 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0"));
                lines.push(format!("type=PROCTITLE msg=audit({id}): proctitle={}", hex(&format!("grep\0-c\0ERROR\0{file}"))));
            }
            11 | 12 => {
                lines.push(format!("type=SYSCALL msg=audit({id}): arch=c000003e syscall=257 success=no exit=-13 a0=ffffff9c a1=7ffd1c2e4f10 a2=0 a3=0 items=1 ppid=2101 pid={pid} auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm=\"cat\" exe=\"/usr/bin/cat\" subj=unconfined key=\"shadow\""));
                lines.push(format!("type=CWD msg=audit({id}): cwd=\"/home/{user}\""));
                lines.push(format!("type=PATH msg=audit({id}): item=0 name=\"/etc/shadow\" inode=1573 dev=08:01 mode=0100640 ouid=0 ogid=42 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0"));
                lines.push(format!("type=PROCTITLE msg=audit({id}): proctitle=636174002F6574632F736861646F77"));
            }
            13 => lines.push(format!("type=USER_LOGIN msg=audit({id}): pid={pid} uid=0 auid=4294967295 ses=4294967295 subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg='op=login acct={} exe=\"/usr/sbin/sshd\" hostname=? addr=203.0.113.{} terminal=ssh res=failed'", hex("(invalid user)"), n % 250)),
            14 => lines.push(format!("type=USER_AUTH msg=audit({id}): pid={pid} uid=0 auid=4294967295 ses=4294967295 subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg='op=PAM:authentication grantors=pam_unix acct=\"{user}\" exe=\"/usr/sbin/sshd\" hostname=198.51.100.7 addr=198.51.100.7 terminal=ssh res=success'")),
            15 => lines.push(format!("type=USER_START msg=audit({id}): pid={pid} uid=0 auid=1000 ses=3 subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg='op=PAM:session_open grantors=pam_selinux,pam_loginuid,pam_unix acct=\"{user}\" exe=\"/usr/sbin/sshd\" hostname=198.51.100.7 addr=198.51.100.7 terminal=ssh res=success'")),
            _ => lines.push(format!("type=USER_CMD msg=audit({id}): pid={pid} uid=1000 auid=1000 ses=3 subj=unconfined msg='cwd=\"/home/{user}\" cmd={} exe=\"/usr/bin/sudo\" terminal=pts/0 res=success'", hex("systemctl restart nginx"))),
        }
    }
    lines
}

fn bench_auditd(c: &mut Criterion) {
    let lines = audit_lines(300);
    let mut parser = Parser::new(&ParserOptions {
        format: Format::Auditd,
        ..ParserOptions::default()
    })
    .unwrap();
    let reference = Timestamp::from_civil(2026, 11, 22, 8, 0, 0, 0, 0).unwrap();
    let now = Instant::now();
    let mut out = Vec::with_capacity(lines.len());
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("auditd_mixed", |b| {
        b.iter(|| {
            for l in &lines {
                let line = StreamLine {
                    stream: b"audit",
                    bytes: l.as_bytes(),
                    flags: Flags::default(),
                    position: b"",
                    source: "audit:/var/log/audit/audit.log",
                };
                parser.push_line(line, now, reference, &mut out);
            }
            parser.flush_all(&mut out);
            std::hint::black_box(&out);
            out.clear();
        })
    });
    group.finish();
}

fn parsers(c: &mut Criterion) {
    bench_format(c, "nginx_combined", Kind::NginxCombined, Format::Nginx);
    bench_format(c, "apache_combined", Kind::ApacheCombined, Format::Apache);
    bench_format(c, "auth_mixed", Kind::Auth, Format::Auth);
    bench_format(c, "auto_nginx", Kind::NginxCombined, Format::Auto);
    bench_format(c, "auto_auth", Kind::Auth, Format::Auto);
    bench_auditd(c);
}

criterion_group!(benches, parsers);
criterion_main!(benches);
