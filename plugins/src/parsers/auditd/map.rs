//! Mapping the records of one audit event to the audit schema.
//!
//! # Which record speaks for the event
//!
//! The *primary* record is the first one that is not context
//! (`SYSCALL`, `EXECVE`, `CWD`, `PATH`, `PROCTITLE`, `SOCKADDR`, `EOE` and
//! the other per-syscall auxiliaries); an event of context records only is a
//! system call, spoken for by its `SYSCALL`. So `CONFIG_CHANGE` + `SYSCALL`
//! is a configuration change, `AVC` + `SYSCALL` + `PATH` an access decision,
//! and `SYSCALL` + `EXECVE` + `CWD` + `PATH` + `PROCTITLE` a process execution.
//!
//! | primary record | category | action | outcome from |
//! |---|---|---|---|
//! | `SYSCALL` with `EXECVE` (or of `execve`/`execveat`) | `system` | `process_executed` | `success=` |
//! | other `SYSCALL` | `system` | `syscall` | `success=` |
//! | `USER_AUTH` | `authentication` | `user_authentication` | `res=` |
//! | `USER_ACCT` | `authentication` | `user_authorization` | `res=` |
//! | `USER_LOGIN`, `USER_LOGOUT` | `authentication`, `session` | `user_login`, `user_logout` | `res=` |
//! | `USER_START`, `USER_END` | `session` | `session_opened`, `session_closed` | `res=` |
//! | `CRED_ACQ`, `CRED_REFR`, `CRED_DISP` | `authentication` | `credentials_acquired`, `credentials_refreshed`, `credentials_disposed` | `res=` |
//! | `USER_ERR`, `GRP_AUTH` | `authentication` | `user_error`, `group_authentication` | `res=` |
//! | `USER_CMD` | `privilege` | `sudo_command` (from sudo), else `user_command` | `res=` |
//! | `USER_ROLE_CHANGE`, `ROLE_ASSIGN`, `ROLE_REMOVE` | `privilege` | `role_changed`, `role_assigned`, `role_removed` | `res=` |
//! | `ADD_USER`, `DEL_USER`, `USER_MGMT`, `CHUSER_ID` | `account` | `user_created`, `user_deleted`, `user_modified` | `res=` |
//! | `USER_CHAUTHTOK`, `ACCT_LOCK`, `ACCT_UNLOCK` | `account` | `password_changed`, `user_locked`, `user_unlocked` | `res=` |
//! | `ADD_GROUP`, `DEL_GROUP`, `GRP_MGMT`, `CHGRP_ID`, `GRP_CHAUTHTOK` | `account` | `group_created`, `group_deleted`, `group_modified`, `group_password_changed` | `res=` |
//! | `USER_MGMT`/`GRP_MGMT` whose `op` adds to / removes from a group | `account` | `group_member_added`, `group_member_removed` | `res=` |
//! | `LOGIN` (the kernel sets a login uid) | `session` | `login_uid_set` | `res=` |
//! | `ANOM_LOGIN_*` | `authentication` | `anomaly_login_failures`, `anomaly_login_time`, … | `res=` |
//! | `ANOM_PROMISCUOUS`, other `ANOM_*` | `network`, `system` | `anomaly_promiscuous`, `anomaly_abend`, … | `res=` |
//! | `AVC`, `USER_AVC` | `system` | `avc_denied` / `avc_granted` (AppArmor: `apparmor_denied`, `apparmor_allowed`, …) | denied = failure |
//! | `CONFIG_CHANGE` | `system` | `audit_config_changed` | `res=` |
//! | `DAEMON_START`, `DAEMON_END`, `DAEMON_ABORT`, `DAEMON_CONFIG`/`DAEMON_RECONFIG`, `DAEMON_ROTATE`, `DAEMON_RESUME` | `system` | `audit_daemon_started`, `…_stopped`, `…_aborted`, `…_reconfigured`, `audit_log_rotated`, `audit_daemon_resumed` | `res=` |
//! | `SERVICE_START`, `SERVICE_STOP` | `system` | `service_started`, `service_stopped` (`target.resource` = unit) | `res=` |
//! | `SYSTEM_BOOT`, `SYSTEM_SHUTDOWN`, `SYSTEM_RUNLEVEL` | `system` | `system_boot`, `system_shutdown`, `runlevel_changed` | `res=` |
//! | anything else | `system` | `audit_` + the type in lowercase, other characters as `_` (`audit_netfilter_cfg`, `audit_unknown_1334`) | `res=`/`success=` |
//!
//! `res=` `success`/`yes`/`1` is a success, `failed`/`no`/`0` a failure.
//!
//! # Schema fields
//!
//! * `ts`: `msg=audit(SECS.MILLIS:…)`, UTC; `raw_ts`: `SECS.MILLIS`; `host`: `node=`.
//! * `actor`: the login uid `auid` (the person, across su and sudo) and its
//!   ENRICHED name `AUID`; when `auid` is unset (4294967295), `uid`/`UID`.
//!   For authentication and session records the actor is the account being
//!   authenticated: `acct`, or `id` (and its name `ID`).
//!   `acct="(invalid user)"` is not a name: the actor stays empty and the
//!   `reason` is `invalid user`.
//! * `target`: for account records, `acct`/`id` (the account acted upon; for
//!   group records `grp`, or `acct`, and `id` as the gid). For system calls,
//!   the effective user (`euid`, `EUID`) when it differs from the actor (a
//!   command run through sudo), and `target.resource`: the executed file
//!   (`exe`) for a successful execution, else the first `PATH` name that is
//!   not a parent directory.
//! * `program`, `pid`: `comm` (or the file name of `exe`) and `pid`;
//!   `session_id`: `ses` unless unset; `tty`: `tty`/`terminal` unless
//!   `(none)` or `?`.
//! * `src_ip`: `addr` (IPv4-mapped IPv6 as IPv4); `src_addr`: `hostname`
//!   when it names the client differently from `addr`.
//! * `command`: the full decoded argv of the `EXECVE` records joined by
//!   spaces (`sudo_command`: `cmd`); for other system calls, `PROCTITLE`
//!   (NUL separators as spaces). `cwd`: the `CWD` record (`USER_CMD`: `cwd`).
//! * `reason`: for a failed system call, the errno name of `exit` (`EACCES`)
//!   or `exit=N`.
//!
//! # Every field kept
//!
//! Every value of every record is in `fields`, decoded (hex strings as
//! text): `TYPE.key` with the type in lowercase (`syscall.auid`,
//! `user_login.acct`, `cwd.cwd`), ENRICHED values under their uppercase key
//! (`syscall.AUID`), words that are not pairs under `TYPE.text`. A type that
//! occurs more than once is numbered in order (`path.0.name`,
//! `path.1.name`). The `EXECVE` records are merged: `execve.argc`,
//! `execve.aN` (each argument whole, however it was split), `execve.aN_len`,
//! and `execve.missing` listing arguments or pieces that never arrived.
//! Besides those: `audit_id` (`SECS.MILLIS:SERIAL`), `audit_type` (the
//! primary record), `audit_records` (every type in order), `audit_key` (the
//! rule key; several keys joined by commas), `audit_syscall` and
//! `audit_arch` (names), `audit_continued` (`true` when this event continues
//! one already emitted; see the grouping rule), `audit_escaped` (the names of
//! values that hold the escaped form of invalid UTF-8).

use std::borrow::Cow;
use std::collections::BTreeMap;

use auditship_core::{AuditEvent, Category, Outcome, Timestamp};

use super::record::{self, Record};
use super::tables;
use super::userspace::{classify, record_context, snake, specifics};
use super::value::{self, Text};

/// One record, its values decoded.
pub(super) struct Rec<'a> {
    pub(super) rtype: &'a str,
    pub(super) values: Vec<(&'a str, Text)>,
    pub(super) enriched: Vec<(&'a str, Text)>,
    pub(super) text: Vec<&'a [u8]>,
}

impl<'a> Rec<'a> {
    fn new(r: &Record<'a>) -> Rec<'a> {
        let rtype = r.header.rtype;
        let mut values = Vec::with_capacity(r.fields.len());
        let mut enriched = Vec::new();
        // EXECVE records are decoded together by `execve_argv`.
        let fields = if rtype == "EXECVE" {
            &[][..]
        } else {
            &r.fields[..]
        };
        for f in fields {
            if f.enriched {
                enriched.push((f.key, value::decode_enriched(f.key, f.value)));
            } else {
                values.push((f.key, value::decode(rtype, f.key, f.value)));
            }
        }
        Rec {
            rtype,
            values,
            enriched,
            text: r.text.clone(),
        }
    }

    pub(super) fn text_of(&self, key: &str) -> Option<&Text> {
        self.values.iter().find(|(k, _)| *k == key).map(|(_, t)| t)
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.text_of(key).map(|t| t.text.as_str())
    }

    pub(super) fn enr(&self, key: &str) -> Option<&str> {
        self.enriched
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, t)| t.text.as_str())
    }
}

/// Record types that give context to a system call rather than speak for
/// the event.
const CONTEXT: &[&str] = &[
    "SYSCALL",
    "EXECVE",
    "CWD",
    "PATH",
    "PROCTITLE",
    "SOCKADDR",
    "EOE",
    "OBJ_PID",
    "FD_PAIR",
    "BPRM_FCAPS",
    "CAPSET",
    "MMAP",
    "IPC",
    "IPC_SET_PERM",
    "SOCKETCALL",
    "MQ_OPEN",
    "MQ_SENDRECV",
    "MQ_NOTIFY",
    "MQ_GETSETATTR",
    "KERNEL_OTHER",
    "OPENAT2",
    "URINGOP",
];

/// The event being built, and the names of escaped values.
pub(super) struct Out {
    pub(super) ev: AuditEvent,
    pub(super) escaped: Vec<String>,
    /// Record values for `fields`: (key, value, escaped), merged at the end
    /// (one sort and a bulk build instead of a tree insertion each).
    values: Vec<(String, String, bool)>,
}

impl Out {
    pub(super) fn put(&mut self, key: String, t: &Text) {
        if t.escaped {
            self.escaped.push(key.clone());
        }
        self.ev.fields.insert(key, t.text.clone());
    }

    /// Sets a schema text field from a value, noting it when escaped.
    pub(super) fn schema(&mut self, name: &str, t: &Text) -> Option<String> {
        if t.escaped {
            self.escaped.push(name.to_string());
        }
        Some(t.text.clone())
    }
}

/// Builds the event for one group of lines (each without its newline).
/// Returns `None` if no line is an audit record. `raw` and `flags` are the
/// caller's.
pub fn event(lines: &[&[u8]], continued: bool) -> Option<AuditEvent> {
    let records: Vec<Record<'_>> = lines.iter().filter_map(|l| record::parse(l)).collect();
    let first = records.first()?.header;
    let recs: Vec<Rec<'_>> = records.iter().map(Rec::new).collect();
    let mut out = Out {
        ev: AuditEvent::new(Category::System, "syscall", Outcome::Unknown, String::new()),
        escaped: Vec::new(),
        values: Vec::with_capacity(96),
    };
    let ev = &mut out.ev;
    ev.ts = Timestamp::new(first.secs, first.millis * 1_000_000, 0);
    ev.raw_ts = Some(first.ts.to_string());
    ev.host = first.node.map(|n| Text::from_bytes(n).text);
    ev.fields.insert("audit_id".into(), first.id.to_string());
    if continued {
        ev.fields.insert("audit_continued".into(), "true".into());
    }
    let types: Vec<&str> = recs.iter().map(|r| r.rtype).collect();
    ev.fields.insert("audit_records".into(), types.join(","));
    let argv = execve_argv(&mut out, &records);

    let primary = recs
        .iter()
        .position(|r| !CONTEXT.contains(&r.rtype))
        .or_else(|| recs.iter().position(|r| r.rtype == "SYSCALL"))
        .unwrap_or(0);
    let p = &recs[primary];
    out.ev
        .fields
        .insert("audit_type".into(), p.rtype.to_string());
    let sys = recs.iter().find(|r| r.rtype == "SYSCALL");
    if sys.is_some() || CONTEXT.contains(&p.rtype) {
        // A continued event may hold context records without their SYSCALL.
        syscall_context(&mut out, sys, &recs, argv);
    }
    if !CONTEXT.contains(&p.rtype) {
        record_context(&mut out, p);
        let (category, action, role) = classify(p.rtype);
        out.ev.category = category;
        out.ev.action = action;
        specifics(&mut out, p, role);
    }
    if let Some(k) = recs
        .iter()
        .filter_map(|r| r.get("key"))
        .find(|k| present(k))
    {
        let k = k.replace('\u{1}', ",");
        out.ev.fields.insert("audit_key".into(), k);
    }
    keep_fields(&mut out, &records, recs);
    merge_values(&mut out);
    if !out.escaped.is_empty() {
        out.escaped.sort();
        out.escaped.dedup();
        let list = out.escaped.join(",");
        out.ev.fields.insert("audit_escaped".into(), list);
    }
    Some(out.ev)
}

/// Every value into `fields` (see the module docs for the names), moved.
fn keep_fields(out: &mut Out, records: &[Record<'_>], recs: Vec<Rec<'_>>) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &recs {
        *counts.entry(r.rtype).or_default() += 1;
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (rec, r) in records.iter().zip(recs) {
        if r.rtype == "EXECVE" {
            continue; // merged by execve_argv
        }
        let n = seen.entry(r.rtype).or_default();
        let mut prefix = snake(r.rtype);
        if counts[r.rtype] > 1 {
            prefix.push('.');
            prefix.push_str(&n.to_string());
        }
        *n += 1;
        let proctitle_record = r.rtype == "PROCTITLE";
        for (k, t) in r.values.into_iter().chain(r.enriched) {
            let t = if proctitle_record && k == "proctitle" {
                proctitle(&t)
            } else {
                t
            };
            let mut key = String::with_capacity(prefix.len() + 1 + k.len());
            key.push_str(&prefix);
            key.push('.');
            key.push_str(k);
            out.values.push((key, t.text, t.escaped));
        }
        if !rec.text.is_empty() {
            let words = rec.text.join(&b' ');
            out.put(format!("{prefix}.text"), &Text::from_bytes(&words));
        }
        if r.rtype == "SOCKADDR" {
            let saddr = rec.fields.iter().find(|f| f.key == "saddr" && !f.enriched);
            if let Some(record::Raw::Bare(hex)) = saddr.map(|f| f.value) {
                if let Some((family, addr, port)) = value::sockaddr(hex) {
                    out.ev
                        .fields
                        .insert(format!("{prefix}.family"), family.into());
                    if !addr.is_empty() {
                        out.ev.fields.insert(format!("{prefix}.addr"), addr);
                    }
                    if let Some(port) = port {
                        out.ev
                            .fields
                            .insert(format!("{prefix}.port"), port.to_string());
                    }
                }
            }
        }
    }
}

/// Moves the record values into `fields`: a key a record repeats (or that
/// another field already has) becomes `key#2`, `key#3`… in order.
fn merge_values(out: &mut Out) {
    let mut all: Vec<(String, String, bool)> = std::mem::take(&mut out.ev.fields)
        .into_iter()
        .map(|(k, v)| (k, v, false))
        .chain(out.values.drain(..))
        .collect();
    // Stable: equal keys keep their order, the first keeps its name.
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut renamed = false;
    let mut i = 1;
    while i < all.len() {
        if all[i].0 == all[i - 1].0 {
            let base = all[i].0.clone();
            let mut n = 2;
            while i < all.len() && all[i].0 == base {
                all[i].0 = format!("{base}#{n}");
                n += 1;
                i += 1;
            }
            renamed = true;
        } else {
            i += 1;
        }
    }
    if renamed {
        all.sort_by(|a, b| a.0.cmp(&b.0));
    }
    for (k, _, escaped) in &all {
        if *escaped {
            out.escaped.push(k.clone());
        }
    }
    out.ev.fields = all.into_iter().map(|(k, v, _)| (k, v)).collect();
}

/// One EXECVE argument: whole, or in pieces.
#[derive(Default)]
struct Arg {
    whole: Option<Vec<u8>>,
    pieces: BTreeMap<usize, Vec<u8>>,
}

/// Merges the EXECVE records into `execve.*` fields; returns the argv.
fn execve_argv(out: &mut Out, records: &[Record<'_>]) -> Option<Vec<Vec<u8>>> {
    let mut argc: Option<usize> = None;
    let mut args: BTreeMap<usize, Arg> = BTreeMap::new();
    let mut any = false;
    for r in records.iter().filter(|r| r.header.rtype == "EXECVE") {
        any = true;
        for f in r.fields.iter().filter(|f| !f.enriched) {
            if f.key == "argc" {
                let t = value::decode("EXECVE", f.key, f.value);
                argc = t.text.parse().ok();
                out.put("execve.argc".into(), &t);
            } else if let Some((n, piece)) = value::is_execve_arg(f.key) {
                let bytes = value::bytes(f.value, true).into_owned();
                let arg = args.entry(n).or_default();
                match piece {
                    Some(i) => {
                        arg.pieces.insert(i, bytes);
                    }
                    None => arg.whole = Some(bytes),
                }
            } else {
                let t = value::decode("EXECVE", f.key, f.value);
                out.put(format!("execve.{}", f.key), &t);
            }
        }
    }
    if !any {
        return None;
    }
    let count = argc
        .unwrap_or(0)
        .max(args.keys().next_back().map_or(0, |n| n + 1));
    let mut argv = Vec::with_capacity(count);
    let mut missing = Vec::new();
    for n in 0..count {
        let bytes = match args.remove(&n) {
            Some(Arg { whole: Some(b), .. }) => b,
            Some(Arg { pieces, .. }) => {
                let last = pieces.keys().next_back().copied().unwrap_or(0);
                for i in 0..=last {
                    if !pieces.contains_key(&i) {
                        missing.push(format!("a{n}[{i}]"));
                    }
                }
                pieces.into_values().flatten().collect()
            }
            None => {
                missing.push(format!("a{n}"));
                Vec::new()
            }
        };
        out.put(format!("execve.a{n}"), &Text::from_bytes(&bytes));
        argv.push(bytes);
    }
    if !missing.is_empty() {
        out.ev
            .fields
            .insert("execve.missing".into(), missing.join(","));
    }
    Some(argv)
}

/// A value that names something (not `?`, `(null)`, `(none)`, empty or unset).
pub(super) fn present(v: &str) -> bool {
    !matches!(
        v,
        "" | "?" | "(null)" | "(none)" | "(unknown)" | "unset" | "4294967295" | "-1"
    )
}

pub(super) fn id(v: Option<&str>) -> Option<u32> {
    v.filter(|v| present(v)).and_then(|v| v.parse().ok())
}

pub(super) fn outcome_of(v: &str) -> Outcome {
    match v {
        "success" | "yes" | "1" => Outcome::Success,
        "failed" | "fail" | "failure" | "no" | "0" => Outcome::Failure,
        _ => Outcome::Unknown,
    }
}

/// Who acted according to record `r`: its login uid, else its uid.
pub(super) fn actor(out: &mut Out, r: &Rec<'_>) {
    if let Some(auid) = id(r.get("auid")) {
        out.ev.actor.uid = Some(auid);
        out.ev.actor.user = r.enr("AUID").filter(|u| present(u)).map(str::to_string);
    } else if let Some(uid) = id(r.get("uid")) {
        out.ev.actor.uid = Some(uid);
        out.ev.actor.user = r.enr("UID").filter(|u| present(u)).map(str::to_string);
    }
}

/// Fills what a SYSCALL record and its context records say.
fn syscall_context(
    out: &mut Out,
    sys: Option<&Rec<'_>>,
    recs: &[Rec<'_>],
    argv: Option<Vec<Vec<u8>>>,
) {
    let empty = Rec {
        rtype: "SYSCALL",
        values: Vec::new(),
        enriched: Vec::new(),
        text: Vec::new(),
    };
    let sys = sys.unwrap_or(&empty);
    actor(out, sys);
    let arch = sys.enr("ARCH").map(str::to_string).or_else(|| {
        sys.get("arch")
            .and_then(tables::arch_name)
            .map(str::to_string)
    });
    let name = sys.enr("SYSCALL").map(str::to_string).or_else(|| {
        let nr = sys.get("syscall")?;
        tables::syscall_name(arch.as_deref()?, nr).map(str::to_string)
    });
    let ev = &mut out.ev;
    if let Some(a) = &arch {
        ev.fields.insert("audit_arch".into(), a.clone());
    }
    if let Some(n) = &name {
        ev.fields.insert("audit_syscall".into(), n.clone());
    }
    ev.pid = sys.get("pid").and_then(|p| p.parse().ok());
    ev.session_id = sys.get("ses").filter(|s| present(s)).map(str::to_string);
    ev.tty = sys.get("tty").filter(|t| present(t)).map(str::to_string);
    ev.outcome = sys.get("success").map_or(Outcome::Unknown, outcome_of);
    if ev.outcome == Outcome::Failure {
        if let Some(exit) = sys.get("exit") {
            ev.reason = Some(
                tables::errno_name(exit).map_or_else(|| format!("exit={exit}"), str::to_string),
            );
        }
    }
    if let Some(t) = sys.text_of("comm").filter(|t| present(&t.text)) {
        out.ev.program = out.schema("program", t);
    }
    // The effective user, when it is not the actor (sudo, setuid programs).
    if let Some(euid) = id(sys.get("euid")) {
        if out.ev.actor.uid != Some(euid) {
            out.ev.target.uid = Some(euid);
            out.ev.target.user = sys.enr("EUID").filter(|u| present(u)).map(str::to_string);
        }
    }
    if let Some(cwd) = recs
        .iter()
        .find(|r| r.rtype == "CWD")
        .and_then(|r| r.text_of("cwd"))
    {
        out.ev.cwd = out.schema("cwd", cwd);
    }
    let exec = argv.is_some() || matches!(name.as_deref(), Some("execve" | "execveat"));
    let first_path = recs
        .iter()
        .filter(|r| r.rtype == "PATH")
        .filter(|r| r.get("name").is_some_and(present))
        .min_by_key(|r| r.get("nametype") == Some("PARENT"))
        .and_then(|r| r.text_of("name"));
    if exec {
        out.ev.action = Cow::Borrowed("process_executed");
        if let Some(argv) = &argv {
            let joined = argv.join(&b' ');
            out.ev.command = out.schema("command", &Text::from_bytes(&joined));
        }
        let exe = sys.text_of("exe").filter(|t| present(&t.text));
        let resource = match (out.ev.outcome, exe) {
            (Outcome::Failure, _) | (_, None) => first_path,
            (_, exe) => exe,
        };
        if let Some(r) = resource {
            out.ev.target.resource = out.schema("target.resource", r);
        }
    } else {
        if let Some(r) = first_path {
            out.ev.target.resource = out.schema("target.resource", r);
        }
        if let Some(t) = recs
            .iter()
            .find(|r| r.rtype == "PROCTITLE")
            .and_then(|r| r.text_of("proctitle"))
        {
            out.ev.command = out.schema("command", &proctitle(t));
        }
    }
}

/// A proctitle with its NUL separators as spaces.
fn proctitle(t: &Text) -> Text {
    Text {
        text: t.text.trim_end_matches('\0').replace('\0', " "),
        escaped: t.escaped,
    }
}
