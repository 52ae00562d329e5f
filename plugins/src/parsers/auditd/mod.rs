//! The Linux audit log (`/var/log/audit/audit.log`): records grouped into
//! events.
//!
//! # The format
//!
//! auditd writes one *record* per line ([`record`]):
//!
//! ```text
//! type=SYSCALL msg=audit(1700000000.123:4567): arch=c000003e syscall=59 success=yes exit=0 … auid=1000 uid=0 … comm="ls" exe="/usr/bin/ls" key="exec"
//! type=EXECVE msg=audit(1700000000.123:4567): argc=3 a0="ls" a1="-l" a2=2F746D702F6D7920646972
//! type=CWD msg=audit(1700000000.123:4567): cwd="/root"
//! type=PATH msg=audit(1700000000.123:4567): item=0 name="/usr/bin/ls" inode=… nametype=NORMAL …
//! type=PROCTITLE msg=audit(1700000000.123:4567): proctitle=6C73002D6C002F746D702F6D7920646972
//! type=USER_LOGIN msg=audit(1700000001.000:4568): pid=812 uid=0 auid=4294967295 ses=4294967295 msg='op=login acct="root" exe="/usr/sbin/sshd" hostname=? addr=203.0.113.9 terminal=sshd res=failed'
//! ```
//!
//! One *event* is every record with the same `msg=audit(SECS.MILLIS:SERIAL)`
//! (and the same `node=`, in aggregated logs): a system call is a SYSCALL
//! record plus its context (EXECVE arguments, CWD, one PATH per file name,
//! PROCTITLE, SOCKADDR…); a userspace message (`USER_*`, `ADD_USER`…) is one
//! record. Untrusted strings are hex-encoded when they hold spaces, quotes
//! or non-ASCII bytes, and long `execve` arguments are split into
//! `aN[0]`, `aN[1]`… pieces, possibly across several EXECVE records
//! ([`value`]). With `log_format = ENRICHED`, each record ends with a GS
//! byte and uppercase interpretations (`AUID="alice" UID="root"`).
//!
//! # Grouping
//!
//! [`group`] holds one pending group per stream and emits it at an `EOE`,
//! at a record of another event, at a line that is not a record, after the
//! idle timeout, or when the input ends; the module docs there state the
//! rule exactly and why positions stay safe: an event carries the position
//! after its last line, and nothing later is recorded for a stream while a
//! group of it is pending, so a crash re-reads the pending lines instead of
//! losing them.
//!
//! # Events
//!
//! [`map`] turns a group into one [`AuditEvent`]: process executions with
//! their full decoded argv, system calls, logins, sessions, sudo commands,
//! account and group changes, configuration changes, anomalies, and a
//! generic event for any other type; every value of every record is kept
//! in `fields`. `raw` is the group's lines joined by `\n` exactly as read
//! (escaped losslessly as a whole if any byte is not valid UTF-8). A line
//! that is not an audit record becomes an `unparsed` event of its own.

pub mod group;
pub mod map;
pub mod record;
pub mod tables;
pub mod userspace;
pub mod value;

use auditship_core::{lossless, AuditEvent, Flags, Timestamp};

pub use group::{Finished, Grouper, StreamLine, DEFAULT_GROUP_TIMEOUT, MAX_GROUP_BYTES};

/// An event made from a finished group, with what the agent needs to queue
/// it: the stream and the position after its last line.
#[derive(Clone, Debug)]
pub struct Grouped {
    /// The stream its lines came from.
    pub stream: Vec<u8>,
    /// The position after its last line.
    pub position: Vec<u8>,
    /// When its last line was read.
    pub observed: Timestamp,
    /// The event (`source` set from the last line).
    pub event: AuditEvent,
}

/// The event for a finished group (or for a line that is not a record).
pub fn finish(f: Finished) -> Grouped {
    let mut ev = if f.record {
        let lines: Vec<&[u8]> = f.lines().collect();
        map::event(&lines, f.continued)
    } else {
        None
    }
    .unwrap_or_else(|| AuditEvent::unparsed(String::new()));
    let (raw, escaped) = lossless::to_text(&f.buf);
    ev.raw = raw.into_owned();
    ev.flags.insert(f.flags);
    if escaped {
        ev.flags.insert(Flags::RAW_ESCAPED);
    }
    if !f.source.is_empty() {
        ev.source = Some(f.source);
    }
    Grouped {
        stream: f.stream,
        position: f.position,
        observed: f.observed,
        event: ev,
    }
}

/// One line on its own as an event: a record is mapped as a one-record
/// event, anything else is `unparsed`.
pub fn single(line: &[u8]) -> AuditEvent {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    map::event(&[line], false).unwrap_or_else(|| AuditEvent::unparsed(String::new()))
}

#[cfg(test)]
mod group_tests;
#[cfg(test)]
mod tests;
