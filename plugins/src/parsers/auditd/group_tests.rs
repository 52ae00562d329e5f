//! auditd grouping tests: when a group ends, which position its event
//! carries, streams, interleaving, split records, size limits, and the
//! [`Parser`] API the agent and `auditship parse` use. Fixtures are in
//! [`super::tests`].

use std::time::{Duration, Instant};

use auditship_core::{lossless, Flags};

use super::record;
use super::tests::*;
use super::*;
use crate::parsers::{Format, ParseStats, Parser, ParserOptions};

struct Feed {
    g: Grouper,
    out: Vec<Finished>,
    n: u8,
}

impl Feed {
    fn new() -> Feed {
        Feed {
            g: Grouper::new(Duration::from_secs(1)),
            out: Vec::new(),
            n: 0,
        }
    }

    /// Pushes `line` on stream `s` at `at`; its position is its number.
    fn push(&mut self, s: &str, line: &str, at: Instant) {
        self.push_flagged(s, line, Flags::default(), at);
    }

    fn push_flagged(&mut self, s: &str, line: &str, flags: Flags, at: Instant) {
        self.n += 1;
        let pos = [self.n];
        self.g.push(
            &StreamLine {
                stream: s.as_bytes(),
                bytes: line.as_bytes(),
                flags,
                position: &pos,
                source: "in:/var/log/audit/audit.log",
            },
            at,
            observed(),
            &mut self.out,
        );
    }

    /// What came out so far: (first line's type or "unparsed", position, lines).
    fn take(&mut self) -> Vec<(String, u8, usize)> {
        self.out
            .drain(..)
            .map(|f| {
                let kind = if f.record {
                    record::header(f.lines().next().unwrap())
                        .unwrap()
                        .id
                        .to_string()
                } else {
                    "unparsed".into()
                };
                (kind, f.position[0], f.starts.len())
            })
            .collect()
    }
}

#[test]
fn a_group_ends_at_the_next_serial_at_eoe_and_after_the_timeout() {
    let mut f = Feed::new();
    let t = t0();
    for l in EXEC {
        f.push("a", l, t);
    }
    assert!(f.take().is_empty(), "pending until something ends it");
    f.push("a", LOGIN_INVALID, t); // line 7
    assert_eq!(f.take(), [("1700000000.123:4567".into(), 6, 6)]);
    for l in SPLIT_ARG {
        f.push("a", l, t); // lines 8..=11, EOE last
    }
    assert_eq!(
        f.take(),
        [
            ("1700000010.002:4580".into(), 7, 1),
            ("1700000005.500:4570".into(), 11, 4)
        ],
        "the single USER_LOGIN at the next serial, the syscall at its EOE"
    );
    f.push("a", USER_CMD, t); // 12
    f.g.flush_idle(t + Duration::from_millis(999), &mut f.out);
    assert!(f.take().is_empty());
    f.g.flush_idle(t + Duration::from_secs(1), &mut f.out);
    assert_eq!(f.take(), [("1700000020.750:4590".into(), 12, 1)]);
    f.g.flush_all(&mut f.out);
    assert!(f.take().is_empty());
}

#[test]
fn a_line_that_is_not_a_record_flushes_first_and_stays_unparsed() {
    let mut f = Feed::new();
    let t = t0();
    f.push("a", EXEC[0], t);
    f.push("a", EXEC[1], t);
    f.push("a", "this is not an audit record", t);
    assert_eq!(
        f.take(),
        [
            ("1700000000.123:4567".into(), 2, 2),
            ("unparsed".into(), 3, 1)
        ]
    );
}

#[test]
fn streams_group_independently_and_each_keeps_its_positions() {
    let mut f = Feed::new();
    let t = t0();
    f.push("a", EXEC[0], t); // 1
    f.push("b", ENRICHED[0], t); // 2
    f.push("a", EXEC[1], t); // 3
    f.push("b", ENRICHED[1], t); // 4
    assert!(f.take().is_empty());
    f.push("b", USER_CMD, t + Duration::from_millis(500)); // 5
    assert_eq!(f.take(), [("1700000040.321:4610".into(), 4, 2)]);
    // "a" has been silent for 1 s; "b" (USER_CMD) only for 0.5 s.
    f.g.flush_idle(t + Duration::from_secs(1), &mut f.out);
    assert_eq!(f.take(), [("1700000000.123:4567".into(), 3, 2)]);
    f.g.forget(b"b");
    f.g.flush_all(&mut f.out);
    assert!(f.take().is_empty(), "forgotten");
}

#[test]
fn interleaved_serials_split_the_interrupted_event_and_flag_its_rest() {
    let mut f = Feed::new();
    let t = t0();
    let acct = r#"type=USER_ACCT msg=audit(1700000000.124:4568): pid=3300 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:accounting grantors=pam_unix acct="bob" exe="/usr/sbin/sshd" hostname=192.0.2.7 addr=192.0.2.7 terminal=ssh res=success'"#;
    f.push("a", EXEC[0], t);
    f.push("a", acct, t);
    f.push("a", EXEC[1], t);
    f.push("a", EXEC[5], t);
    f.g.flush_all(&mut f.out);
    let out: Vec<Finished> = f.out.drain(..).collect();
    let ids: Vec<(bool, u8)> = out.iter().map(|g| (g.continued, g.position[0])).collect();
    assert_eq!(ids, [(false, 1), (false, 2), (true, 4)]);
    let rest = finish(out[2].clone()).event;
    assert_eq!(field(&rest, "audit_continued"), Some("true"));
    assert_eq!(field(&rest, "audit_id"), Some("1700000000.123:4567"));
    assert_eq!(rest.command.as_deref(), Some("grep -r secret key /etc/ssl"));
}

#[test]
fn a_position_without_a_line_joins_the_pending_group() {
    let mut f = Feed::new();
    let t = t0();
    assert!(
        !f.g.defer_position(b"a", &[9]),
        "nothing pending: record it"
    );
    f.push("a", EXEC[0], t);
    assert!(f.g.defer_position(b"a", &[42]));
    f.g.flush_all(&mut f.out);
    assert_eq!(f.take(), [("1700000000.123:4567".into(), 42, 1)]);
}

#[test]
fn a_split_record_is_joined_and_raw_is_exactly_what_was_read() {
    let mut f = Feed::new();
    let t = t0();
    let (head, tail) = EXEC[1].split_at(60);
    f.push("a", EXEC[0], t);
    f.push_flagged("a", head, Flags::SPLIT, t);
    f.push_flagged("a", tail, Flags::SPLIT, t);
    f.g.flush_all(&mut f.out);
    let g = finish(f.out.pop().unwrap());
    assert_eq!(g.event.raw, format!("{}\n{}", EXEC[0], EXEC[1]));
    assert!(g.event.flags.contains(Flags::SPLIT));
    assert_eq!(field(&g.event, "execve.a3"), Some("/etc/ssl"));
    assert_eq!(g.position, [3]);
    assert_eq!(
        g.event.source.as_deref(),
        Some("in:/var/log/audit/audit.log")
    );
}

#[test]
fn an_oversized_group_is_cut_and_continued() {
    let mut f = Feed::new();
    let t = t0();
    let big = format!(
        "type=EXECVE msg=audit(1700000000.123:4567): a1[0]={}",
        "41".repeat(15 << 10)
    );
    f.push("a", EXEC[0], t);
    for _ in 0..5 {
        f.push("a", &big, t);
    }
    f.g.flush_all(&mut f.out);
    let parts: Vec<(bool, usize)> = f
        .out
        .iter()
        .map(|g| (g.continued, g.starts.len()))
        .collect();
    assert_eq!(parts, [(false, 5), (true, 1)]);
    assert!(f.out.iter().all(|g| g.buf.len() <= MAX_GROUP_BYTES));
}

#[test]
fn a_torn_last_line_keeps_what_it_has() {
    let ev = finish(Finished {
        stream: b"a".to_vec(),
        position: vec![1],
        source: String::new(),
        observed: observed(),
        flags: Flags::NO_NEWLINE,
        buf: b"type=SYSCALL msg=audit(1700000060.000:4630): arch=c000003e sysc".to_vec(),
        starts: vec![0],
        record: true,
        continued: false,
    })
    .event;
    assert_eq!(ev.action, "syscall");
    assert!(ev.flags.contains(Flags::NO_NEWLINE));
    assert_eq!(field(&ev, "syscall.arch"), Some("c000003e"));
    assert_eq!(field(&ev, "syscall.text"), Some("sysc"));
}

// ---- through the Parser ----

fn parser() -> Parser {
    Parser::new(&ParserOptions {
        format: Format::Auditd,
        ..ParserOptions::default()
    })
    .unwrap()
}

#[test]
fn the_parser_groups_counts_and_keeps_raw() {
    let mut p = parser();
    assert!(p.groups_lines());
    let mut out = Vec::new();
    let t = t0();
    let lines: Vec<&[u8]> = EXEC
        .iter()
        .map(|l| l.as_bytes())
        .chain([&b"garbage \xff line"[..]])
        .collect();
    for (i, l) in lines.iter().enumerate() {
        let pos = [i as u8 + 1];
        p.push_line(
            StreamLine {
                stream: b"s",
                bytes: l,
                flags: Flags::default(),
                position: &pos,
                source: "in:/x",
            },
            t,
            observed(),
            &mut out,
        );
    }
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].event.raw, EXEC.join("\n"));
    assert_eq!(out[0].position, [6]);
    assert_eq!(out[0].event.action, "process_executed");
    assert!(out[1].event.is_unparsed());
    assert_eq!(out[1].event.raw, "garbage \\xff line");
    assert!(out[1].event.flags.contains(Flags::RAW_ESCAPED));
    assert_eq!(out[1].position, [7]);
    assert_eq!(
        p.stats(),
        ParseStats {
            parsed: 6,
            unparsed: 1,
            escaped: 1
        }
    );
    // parse_at maps one line on its own.
    let ev = p.parse_at(LOGIN_INVALID.as_bytes(), observed());
    assert_eq!(ev.action, "user_login");
    assert_eq!(ev.raw, LOGIN_INVALID);
    assert!(p.parse_at(b"not audit", observed()).is_unparsed());
}

#[test]
fn a_group_with_invalid_utf8_is_escaped_as_a_whole() {
    let mut p = parser();
    let mut out = Vec::new();
    let t = t0();
    let bad: &[u8] =
        b"type=PATH msg=audit(1700000000.123:4567): item=0 name=\"/tmp/a\\b\xff\" nametype=NORMAL";
    for (i, l) in [EXEC[0].as_bytes(), bad].iter().enumerate() {
        let pos = [i as u8];
        p.push_line(
            StreamLine {
                stream: b"s",
                bytes: l,
                flags: Flags::default(),
                position: &pos,
                source: "in:/x",
            },
            t,
            observed(),
            &mut out,
        );
    }
    p.flush_all(&mut out);
    let ev = &out[0].event;
    assert!(ev.flags.contains(Flags::RAW_ESCAPED));
    let mut want = EXEC[0].as_bytes().to_vec();
    want.push(b'\n');
    want.extend_from_slice(bad);
    assert_eq!(lossless::unescape(&ev.raw).unwrap(), want);
    assert_eq!(field(ev, "path.name"), Some("/tmp/a\\\\b\\xff"));
    assert_eq!(field(ev, "audit_escaped"), Some("path.name"));
}

#[test]
fn other_formats_emit_each_line_at_once() {
    let mut p = Parser::new(&ParserOptions::default()).unwrap();
    assert!(!p.groups_lines());
    let mut out = Vec::new();
    p.push_line(
        StreamLine {
            stream: b"s",
            bytes: b"not a log line",
            flags: Flags::default(),
            position: &[5],
            source: "in:/x",
        },
        t0(),
        observed(),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].position, [5]);
    assert_eq!(out[0].event.source.as_deref(), Some("in:/x"));
}
