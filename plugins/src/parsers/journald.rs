//! Journal entries, as `journalctl -o json` prints them, one object per line.
//!
//! The journal has already split what a syslog line packs into a header:
//! the program is `SYSLOG_IDENTIFIER` (else `_COMM`), the pid `_PID` (else
//! `SYSLOG_PID`), the host `_HOSTNAME`, the time `__REALTIME_TIMESTAMP`
//! (microseconds since the epoch, UTC) and the text `MESSAGE`. The text
//! then goes through the same auth parsers as a syslog line ([`super::auth`]),
//! so `sshd`, `sudo`, `su`, PAM and shadow-utils messages become the same
//! events whether they were read from `/var/log/auth.log` or the journal.
//!
//! Values come in the three shapes `journalctl` uses: a string; an array of
//! byte values for a field that is not valid UTF-8 (escaped losslessly, see
//! [`auditship_core::lossless`], and the event flagged); and an array of
//! either for a field that occurs more than once in the entry (the first
//! value is used).
//!
//! Kept in `fields`: `journald_unit` (`_SYSTEMD_UNIT`), `journald_priority`
//! (`PRIORITY`), `syslog_facility` (`SYSLOG_FACILITY`), `journald_transport`
//! (`_TRANSPORT`), `journald_uid` (`_UID`), `journald_comm` (`_COMM`),
//! `journald_exe` (`_EXE`) and `journald_boot_id` (`_BOOT_ID`).
//! The raw text is the whole entry as `journalctl` printed it, so nothing
//! the journal held is lost. An entry without a `MESSAGE` is still an
//! event; a line that is not a JSON object is `unparsed`.

use auditship_core::{lossless, AuditEvent, Category, Flags, Timestamp};
use serde_json::{Map, Value};

use super::auth;

/// Fields copied into `fields` as they are.
const KEPT: [(&str, &str); 8] = [
    ("_SYSTEMD_UNIT", "journald_unit"),
    ("PRIORITY", "journald_priority"),
    ("SYSLOG_FACILITY", "syslog_facility"),
    ("_TRANSPORT", "journald_transport"),
    ("_UID", "journald_uid"),
    ("_COMM", "journald_comm"),
    ("_EXE", "journald_exe"),
    ("_BOOT_ID", "journald_boot_id"),
];

/// Parses one entry (the line without its newline). `None`: not a JSON object.
pub fn parse(line: &str) -> Option<AuditEvent> {
    let Ok(Value::Object(entry)) = serde_json::from_str::<Value>(line) else {
        return None;
    };
    let mut escaped = false;
    let mut text = |key: &str| field(&entry, key, &mut escaped);
    let message = text("MESSAGE").unwrap_or_default();
    let program = text("SYSLOG_IDENTIFIER").or_else(|| text("_COMM"));
    let pid = text("_PID")
        .or_else(|| text("SYSLOG_PID"))
        .and_then(|p| p.parse().ok());
    let host = text("_HOSTNAME");
    let ts = text("__REALTIME_TIMESTAMP").and_then(|t| micros(&t));
    let kept: Vec<(&str, String)> = KEPT
        .iter()
        .filter_map(|(from, to)| Some((*to, text(from)?)))
        .collect();
    let mut ev = auth::parse(program.as_deref(), &message)
        .unwrap_or_else(|| AuditEvent::unparsed(String::new()));
    if ev.is_unparsed() && program.is_some() {
        // The entry itself was understood; only its message is not an auth
        // message. Keep it as a journal event rather than a parse failure.
        ev.category = Category::System;
        ev.action = "journal_entry".into();
    }
    ev.ts = ts.or(ev.ts);
    ev.program = program;
    ev.pid = pid;
    ev.host = host;
    for (k, v) in kept {
        ev.fields.insert(k.into(), v);
    }
    if escaped {
        ev.flags.insert(Flags::RAW_ESCAPED);
    }
    Some(ev)
}

/// The first value of `key` as text, escaping bytes that are not UTF-8.
fn field(entry: &Map<String, Value>, key: &str, escaped: &mut bool) -> Option<String> {
    let v = entry.get(key)?;
    let v = match v {
        // Several values: an array whose items are strings or byte arrays.
        Value::Array(items) if items.first().is_some_and(|i| !i.is_number()) => items.first()?,
        v => v,
    };
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(bytes) => {
            let bytes: Option<Vec<u8>> = bytes
                .iter()
                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            let bytes = bytes?;
            let (text, esc) = lossless::to_text(&bytes);
            *escaped |= esc;
            Some(text.into_owned())
        }
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A journal timestamp: microseconds since the epoch, as decimal text.
fn micros(t: &str) -> Option<Timestamp> {
    let us: i64 = t.parse().ok()?;
    Timestamp::new(
        us.div_euclid(1_000_000),
        (us.rem_euclid(1_000_000) * 1000) as u32,
        0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(extra: &str) -> String {
        format!(
            r#"{{"__CURSOR":"s=1;i=1","__REALTIME_TIMESTAMP":"1700000000123456","_HOSTNAME":"web-01","_PID":"812","SYSLOG_IDENTIFIER":"sshd","_SYSTEMD_UNIT":"ssh.service","PRIORITY":"6"{extra}}}"#
        )
    }

    #[test]
    fn an_sshd_entry_becomes_the_same_event_as_its_syslog_line() {
        let line = entry(
            r#","MESSAGE":"Failed password for invalid user admin from 203.0.113.9 port 50122 ssh2""#,
        );
        let ev = parse(&line).unwrap();
        assert_eq!(ev.action, "ssh_login");
        assert_eq!(ev.outcome, auditship_core::Outcome::Failure);
        assert_eq!(
            ev.src_ip.map(|ip| ip.to_string()).as_deref(),
            Some("203.0.113.9")
        );
        assert_eq!(ev.actor.user.as_deref(), Some("admin"));
        assert_eq!(ev.program.as_deref(), Some("sshd"));
        assert_eq!(ev.pid, Some(812));
        assert_eq!(ev.host.as_deref(), Some("web-01"));
        let ts = ev.ts.unwrap();
        assert_eq!(
            (ts.unix_secs(), ts.subsec_nanos()),
            (1_700_000_000, 123_456_000)
        );
        assert_eq!(
            ev.fields.get("journald_unit").map(String::as_str),
            Some("ssh.service")
        );
        assert_eq!(
            ev.fields.get("journald_priority").map(String::as_str),
            Some("6")
        );
    }

    #[test]
    fn a_message_that_is_not_utf8_is_escaped_and_flagged() {
        // "bad \xff" as the byte array journalctl prints for binary fields.
        let line = entry(r#","MESSAGE":[98,97,100,32,255]"#);
        let ev = parse(&line).unwrap();
        assert!(ev.flags.contains(Flags::RAW_ESCAPED));
        assert_eq!(ev.action, "journal_entry");
        assert_eq!(ev.category, Category::System);
    }

    #[test]
    fn a_field_given_twice_uses_the_first_value() {
        let line = entry(
            r#","MESSAGE":["pam_unix(sudo:session): session closed for user root","second"]"#,
        )
        .replace(
            r#""SYSLOG_IDENTIFIER":"sshd""#,
            r#""SYSLOG_IDENTIFIER":"sudo""#,
        );
        let ev = parse(&line).unwrap();
        assert_eq!(ev.action, "session_closed");
        assert_eq!(ev.target.user.as_deref(), Some("root"));
    }

    #[test]
    fn an_entry_without_program_or_message_is_still_an_event_and_garbage_is_not() {
        let ev = parse(r#"{"__REALTIME_TIMESTAMP":"5"}"#).unwrap();
        assert!(ev.is_unparsed());
        assert_eq!(ev.ts.unwrap().unix_secs(), 0);
        assert!(parse("not json").is_none());
        assert!(parse("[1,2]").is_none());
    }
}
