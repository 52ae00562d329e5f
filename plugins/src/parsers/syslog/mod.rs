//! Syslog framing: splitting a line into timestamp, host, program, pid and
//! message.
//!
//! Three header forms are recognised:
//!
//! ```text
//! RFC 3164:          [<PRI>]Mar  7 10:01:02 host prog[pid]: msg
//! rsyslog precise:   [<PRI>]2026-03-07T10:01:02.123456+01:00 host prog[pid]: msg
//! RFC 5424:          <PRI>1 2026-03-07T10:01:02.123Z host app procid msgid [sd] msg
//! ```
//!
//! In the first two forms the host may be missing (local `/dev/log` lines
//! forwarded without one), the `[pid]` is optional, and a line without a
//! `tag:` keeps the whole remainder as the message with no program. In RFC
//! 5424, `-` is the nil value, the MSGID and structured data are kept in the
//! event's `fields`, and a UTF-8 BOM before the message is dropped.
//!
//! The header parser never fails on the message: if the header is readable,
//! the auth parsers get the message, and if they do not know it, the event
//! is `unparsed` but still carries the host, program, pid and time.

pub mod clock;

use auditship_core::time::{digits, month_from_abbr};
use auditship_core::Timestamp;

pub use clock::{Clock, YearMode, Zone};

/// A parsed syslog header, borrowing from the line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Header<'a> {
    /// The resolved time, if the timestamp was valid.
    pub ts: Option<Timestamp>,
    /// The timestamp as written.
    pub raw_ts: &'a str,
    /// Host name.
    pub host: Option<&'a str>,
    /// Program (tag or APP-NAME).
    pub program: Option<&'a str>,
    /// Process id.
    pub pid: Option<u32>,
    /// RFC 5424 MSGID.
    pub msgid: Option<&'a str>,
    /// RFC 5424 structured data, as written.
    pub structured_data: Option<&'a str>,
    /// Facility and severity from `<PRI>`.
    pub pri: Option<(u8, u8)>,
    /// The message after the header.
    pub msg: &'a str,
}

/// Whether `line` starts like a syslog header (cheap; used by auto-detection).
pub fn looks_like_syslog(line: &str) -> bool {
    let b = line.as_bytes();
    let b = match b.first() {
        Some(b'<') => match b.iter().position(|&c| c == b'>') {
            Some(i) if i <= 4 => &b[i + 1..],
            _ => return false,
        },
        _ => b,
    };
    (b.len() >= 16 && month_from_abbr(&b[..3]).is_some() && b[3] == b' ' && b[6] == b' ')
        || (b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && matches!(b[10], b'T' | b' '))
        || (b.len() >= 2 && b[0] == b'1' && b[1] == b' ')
}

/// Parses the header of `line`, resolving times with `clock` relative to
/// `reference` (the time the line was read).
pub fn parse<'a>(line: &'a str, clock: &mut Clock, reference: Timestamp) -> Option<Header<'a>> {
    let (pri, rest) = split_pri(line)?;
    if let Some(r5424) = rest.strip_prefix("1 ") {
        if pri.is_some() {
            return parse_5424(r5424, pri, clock);
        }
    }
    let (ts, raw_ts, rest) = if rest.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        let end = rest.find(' ')?;
        let raw = &rest[..end];
        let ts = parse_3339_local(raw, clock)?;
        (Some(ts), raw, &rest[end + 1..])
    } else {
        let (ts, len) = parse_3164_ts(rest, clock, reference)?;
        (ts, &rest[..len], rest.get(len + 1..)?)
    };
    let mut h = Header {
        ts,
        raw_ts,
        pri,
        ..Header::default()
    };
    // Host, unless the next word is already the tag.
    let (first, after) = rest.split_once(' ').unwrap_or((rest, ""));
    let rest = if first.ends_with(':') || first.ends_with("]:") && first.contains('[') {
        rest
    } else {
        h.host = Some(first).filter(|s| !s.is_empty());
        after
    };
    split_tag(rest, &mut h);
    Some(h)
}

fn split_pri(line: &str) -> Option<(Option<(u8, u8)>, &str)> {
    let Some(rest) = line.strip_prefix('<') else {
        return Some((None, line));
    };
    let end = rest.find('>')?;
    let n = digits(&rest.as_bytes()[..end]).filter(|n| end > 0 && end <= 3 && *n <= 191)?;
    Some((Some(((n / 8) as u8, (n % 8) as u8)), &rest[end + 1..]))
}

/// `Mar  7 10:01:02`, optionally with `.ffffff` or a year before the time.
/// Returns the time and the length of the timestamp.
fn parse_3164_ts(
    s: &str,
    clock: &mut Clock,
    reference: Timestamp,
) -> Option<(Option<Timestamp>, usize)> {
    let b = s.as_bytes();
    if b.len() < 15 || b[3] != b' ' {
        return None;
    }
    let month = month_from_abbr(&b[0..3])?;
    let day = if b[4] == b' ' {
        digits(&b[5..6])?
    } else {
        digits(&b[4..6])?
    } as u8;
    let mut i = 6;
    if b.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    // "Mar  7 2026 10:01:02" (some appliances write the year)
    let mut year = None;
    if b.len() >= i + 5 && b[i + 4] == b' ' {
        year = Some(digits(&b[i..i + 4])? as i32);
        i += 5;
    }
    let t = b.get(i..i + 8)?;
    if t[2] != b':' || t[5] != b':' {
        return None;
    }
    let (h, mi, sec) = (
        digits(&t[0..2])? as u8,
        digits(&t[3..5])? as u8,
        digits(&t[6..8])? as u8,
    );
    i += 8;
    let mut nanos = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut j = start;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let frac = &b[start..j.min(start + 9)];
        nanos = digits(frac)? * 10u32.pow(9 - frac.len() as u32);
        i = j;
    }
    let ts = match year {
        Some(y) => clock.local(y, month, day, h, mi, sec, nanos),
        None => clock.yearless(month, day, h, mi, sec, nanos, reference),
    };
    Some((ts, i))
}

fn parse_3339_local(raw: &str, clock: &mut Clock) -> Option<Timestamp> {
    let (ts, explicit) = Timestamp::parse_rfc3339(raw, 0)?;
    if explicit {
        return Some(ts);
    }
    // No offset written: the wall-clock fields are local time in the clock's zone.
    let (y, mo, d, h, mi, s) = ts.civil();
    clock.local(y, mo, d, h, mi, s, ts.subsec_nanos())
}

/// Splits `prog[pid]: msg` (or `prog: msg`) into the header.
fn split_tag<'a>(rest: &'a str, h: &mut Header<'a>) {
    let b = rest.as_bytes();
    let end = b
        .iter()
        .position(|&c| matches!(c, b':' | b'[' | b' '))
        .unwrap_or(b.len());
    let tag = &rest[..end];
    match b.get(end) {
        Some(b'[') => {
            if let Some(close) = rest[end..].find(']') {
                let pid = &rest[end + 1..end + close];
                let after = &rest[end + close + 1..];
                if let Some(msg) = after.strip_prefix(':') {
                    h.program = Some(tag);
                    h.pid = pid.parse().ok();
                    h.msg = msg.strip_prefix(' ').unwrap_or(msg);
                    return;
                }
            }
        }
        Some(b':') if !tag.is_empty() => {
            h.program = Some(tag);
            let msg = &rest[end + 1..];
            h.msg = msg.strip_prefix(' ').unwrap_or(msg);
            return;
        }
        _ => {}
    }
    h.msg = rest;
}

fn parse_5424<'a>(rest: &'a str, pri: Option<(u8, u8)>, clock: &mut Clock) -> Option<Header<'a>> {
    let mut parts = rest.splitn(5, ' ');
    let raw_ts = parts.next()?;
    let host = parts.next()?;
    let app = parts.next()?;
    let procid = parts.next()?;
    let rest = parts.next()?;
    let (msgid, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let nil = |s: &'a str| (s != "-" && !s.is_empty()).then_some(s);
    let (sd, msg) = split_structured_data(rest)?;
    let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
    Some(Header {
        ts: nil(raw_ts).and_then(|r| parse_3339_local(r, clock)),
        raw_ts,
        host: nil(host),
        program: nil(app),
        pid: nil(procid).and_then(|p| p.parse().ok()),
        msgid: nil(msgid),
        structured_data: nil(sd),
        pri,
        msg,
    })
}

/// Splits `-` or `[id k="v"][id2 …]` from the message that follows it.
fn split_structured_data(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('-') {
        return Some(("-", rest.strip_prefix(' ').unwrap_or(rest)));
    }
    let b = s.as_bytes();
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        let mut in_quotes = false;
        i += 1;
        loop {
            match b.get(i)? {
                b'\\' => i += 1,
                b'"' => in_quotes = !in_quotes,
                b']' if !in_quotes => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let msg = &s[i..];
    Some((&s[..i], msg.strip_prefix(' ').unwrap_or(msg)))
}

#[cfg(test)]
mod tests;
