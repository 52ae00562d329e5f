//! Ingest tests: lines through the real sink (parser, filters, sealer,
//! queue), and the truncation fallback.

use std::path::Path;
use std::time::Duration;

use auditship_core::seal::{unseal, GENESIS};
use auditship_core::{AuditEvent, Flags};
use auditship_plugins::ParserOptions;

use super::*;
use crate::filter::{build_chain, FilterConfig};
use crate::queue::{self, Fsync, QueueConfig};
use crate::seal::ChainHead;

#[test]
fn a_reduced_event_fits_whatever_its_raw_line_holds() {
    let line = 1 << 20;
    let mut ev = AuditEvent::unparsed("\u{1}".repeat(line));
    ev.source = Some("in:/var/log/x".into());
    ev.fields.insert("big".into(), "\u{1}".repeat(line));
    reduce(&mut ev, line / 8);
    let mut out = Vec::new();
    canonical::encode_into(&ev, &mut out);
    // The record limit for this line length is 6 x line + 64 KiB.
    assert!(out.len() < line, "{} bytes", out.len());
    assert!(ev.flags.contains(Flags::TRUNCATED));
    assert_eq!(ev.source.as_deref(), Some("in:/var/log/x"));
    assert!(ev.fields.is_empty());
}

#[derive(serde::Deserialize)]
struct Doc {
    filters: Vec<FilterConfig>,
}

/// Lines through the sink: an event, a line a filter drops, a line too
/// large for a record (stored truncated), another event. The queue holds
/// three sealed events in one unbroken chain; the dropped line spent a
/// `seq` on its position-only record but is not in the chain, and the
/// refused oversize record did not move the chain.
#[test]
fn sealed_events_chain_across_drops_and_the_truncation_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = QueueConfig {
        max_bytes: 1 << 22,
        segment_bytes: 1 << 21,
        max_record_bytes: 64 << 10,
        fsync: Fsync::Always,
        ..QueueConfig::new(dir.path())
    };
    let (mut writer, mut readers, _) = queue::open(cfg, &["out"]).unwrap();
    let mut sealer = Sealer::new(ChainHead::START);
    let doc: Doc =
        toml::from_str("[[filters]]\ntype = \"drop\"\nrules = [{ program = \"CRON\" }]\n").unwrap();
    let filters = build_chain(&doc.filters).unwrap();
    let mut parser = Parser::new(&ParserOptions::default()).unwrap();
    let stats = IngestStats::default();
    let stop = CancellationToken::new();
    let (mut dropped, mut payload, mut cache) = (HashMap::new(), Vec::new(), Default::default());
    let mut sink = IngestSink {
        out: Appender {
            writer: &mut writer,
            sealer: &mut sealer,
            stop: &stop,
            stats: &stats,
        },
        parser: &mut parser,
        filters: &filters,
        agent_id: "a",
        input: "in",
        dropped_positions: &mut dropped,
        payload: &mut payload,
        source_cache: &mut cache,
        sealed: 0,
    };
    let huge = "\u{1}".repeat(20 << 10);
    let lines: [&[u8]; 4] = [
        b"first line",
        b"Nov 22 10:00:00 web-1 CRON[77]: (root) CMD (true)",
        huge.as_bytes(),
        b"last line",
    ];
    for (i, l) in lines.iter().enumerate() {
        let pos = [i as u8];
        sink.line(Line {
            stream: b"s",
            position: &pos,
            bytes: l,
            flags: Flags::default(),
            path: Some(Path::new("/x.log")),
            peer: None,
        })
        .unwrap();
        sink.flush_dropped().unwrap();
    }
    assert_eq!(sink.sealed, 3);
    writer.commit().unwrap();
    let b = readers[0]
        .next_batch(10, 1 << 20, Duration::from_secs(1))
        .unwrap();
    let events: Vec<(u64, &[u8])> = b.iter().collect();
    assert_eq!(
        events.iter().map(|e| e.0).collect::<Vec<_>>(),
        [1, 3, 4],
        "seq 2 went to the dropped line's position record"
    );
    let mut prev = GENESIS;
    let lines = b.sealed_lines();
    for ((id, _), p) in events.iter().zip(&lines) {
        let u = unseal(p).expect("sealed");
        assert!(u.is_intact(), "event {id} recomputes");
        assert_eq!(u.prev, prev, "event {id} links to the one before");
        let v: serde_json::Value = serde_json::from_slice(p).unwrap();
        assert_eq!(v["seq"], *id);
        prev = u.hash;
    }
    let truncated: serde_json::Value = serde_json::from_slice(events[1].1).unwrap();
    assert_eq!(truncated["flags"], serde_json::json!(["truncated"]));
    assert_eq!(
        sealer.head(),
        ChainHead {
            as_of: 4,
            hash: prev
        }
    );
}

/// Positions after each line of [`AUDIT`].
const POSITIONS: [[u8; 1]; 5] = [[10], [20], [30], [40], [50]];

/// An auditd event of three records, then a USER_ACCT that a filter drops,
/// then a USER_LOGIN, on stream `s`.
const AUDIT: [&str; 5] = [
    r#"type=SYSCALL msg=audit(1700000000.123:10): arch=c000003e syscall=59 success=yes exit=0 pid=7 auid=1000 uid=1000 euid=1000 ses=2 comm="id" exe="/usr/bin/id" key="exec""#,
    r#"type=EXECVE msg=audit(1700000000.123:10): argc=2 a0="id" a1=2D75"#,
    r#"type=PROCTITLE msg=audit(1700000000.123:10): proctitle=6964002D75"#,
    r#"type=USER_ACCT msg=audit(1700000001.000:11): pid=8 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:accounting grantors=pam_unix acct="bob" exe="/usr/sbin/sshd" hostname=? addr=192.0.2.7 terminal=ssh res=success'"#,
    r#"type=USER_LOGIN msg=audit(1700000002.000:12): pid=8 uid=0 auid=1001 ses=5 msg='op=login id=1001 exe="/usr/sbin/sshd" hostname=? addr=192.0.2.7 terminal=/dev/pts/1 res=success'"#,
];

/// Grouped lines through the real sink and queue: an event is queued only
/// when its group ends, with the position after its last line; a blank
/// line's position waits with the pending group; a dropped group's position
/// is recorded at the end of the pass, before the pending group's; a
/// pending group's lines are never covered by a durable position (so a
/// crash re-reads them); the idle flush and a forgotten stream queue what
/// is pending. (The idle flush is only called once the timeout has surely
/// passed; its timing is tested with explicit instants in the parser.)
#[test]
fn grouped_events_carry_the_position_after_their_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = QueueConfig {
        max_bytes: 1 << 22,
        segment_bytes: 1 << 21,
        max_record_bytes: 64 << 10,
        fsync: Fsync::Always,
        ..QueueConfig::new(dir.path())
    };
    let doc: Doc = toml::from_str(
        "[[filters]]\ntype = \"drop\"\nrules = [{ action = \"user_authorization\" }]\n",
    )
    .unwrap();
    let filters = build_chain(&doc.filters).unwrap();
    let mut parser = Parser::new(&ParserOptions {
        format: auditship_plugins::Format::Auditd,
        group_timeout: Some(Duration::from_millis(20)),
        ..ParserOptions::default()
    })
    .unwrap();
    let stats = IngestStats::default();
    let stop = CancellationToken::new();
    let (mut dropped, mut payload, mut cache) = (HashMap::new(), Vec::new(), Default::default());
    let mut sealer = Sealer::new(ChainHead::START);
    let line = |i: usize| Line {
        stream: b"s",
        position: &POSITIONS[i],
        bytes: AUDIT[i].as_bytes(),
        flags: Flags::default(),
        path: Some(Path::new("/var/log/audit/audit.log")),
        peer: None,
    };

    macro_rules! sink {
        ($writer:expr) => {
            IngestSink {
                out: Appender {
                    writer: &mut $writer,
                    sealer: &mut sealer,
                    stop: &stop,
                    stats: &stats,
                },
                parser: &mut parser,
                filters: &filters,
                agent_id: "a",
                input: "in",
                dropped_positions: &mut dropped,
                payload: &mut payload,
                source_cache: &mut cache,
                sealed: 0,
            }
        };
    }

    // Pass 1a, then a "crash": nothing of the pending group is durable,
    // not even the position of the blank line after it.
    let (mut writer, _, _) = queue::open(cfg.clone(), &["out"]).unwrap();
    let mut sink = sink!(writer);
    for i in 0..3 {
        sink.line(line(i)).unwrap();
    }
    assert_eq!(sink.sealed, 0, "the group is pending");
    sink.position(b"s", &[35]).unwrap(); // a blank line after it
    sink.flush_dropped().unwrap();
    assert_eq!(sink.sealed, 0);
    writer.commit().unwrap();
    drop(writer);
    let (mut writer, _, recovered) = queue::open(cfg.clone(), &["out"]).unwrap();
    assert_eq!(recovered.positions.get(&b"s"[..]), None);

    // Pass 1b, then a "crash".
    let mut sink = sink!(writer);
    sink.line(line(3)).unwrap(); // ends the exec group; USER_ACCT pending
    assert_eq!(sink.sealed, 1);
    sink.line(line(4)).unwrap(); // ends USER_ACCT (dropped); USER_LOGIN pending
    assert_eq!(sink.sealed, 1);
    sink.flush_dropped().unwrap();
    assert_eq!(sink.sealed, 1);
    writer.commit().unwrap();
    drop(writer);
    let (mut writer, mut readers, recovered) = queue::open(cfg.clone(), &["out"]).unwrap();
    assert_eq!(
        recovered.positions.get(&b"s"[..]).map(Vec::as_slice),
        Some(&[40u8][..]),
        "after the dropped USER_ACCT (line 4), not the pending USER_LOGIN (line 5)"
    );
    let b = readers[0]
        .next_batch(10, 1 << 20, Duration::from_secs(1))
        .unwrap();
    let events: Vec<serde_json::Value> = b
        .iter()
        .map(|(_, p)| serde_json::from_slice(p).unwrap())
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["action"], "process_executed");
    assert_eq!(events[0]["command"], "id -u");
    assert_eq!(events[0]["raw"], AUDIT[..3].join("\n"));
    assert_eq!(events[0]["source"], "in:/var/log/audit/audit.log");

    // Pass 2, after the idle timeout: the pending USER_LOGIN is queued.
    std::thread::sleep(Duration::from_millis(30));
    let mut sink = sink!(writer);
    sink.flush_idle().unwrap();
    assert_eq!(sink.sealed, 1);
    // A stream forgotten with a group pending: the group is queued first.
    let mut other = line(0);
    other.stream = b"t";
    sink.line(other).unwrap();
    assert_eq!(sink.sealed, 1);
    sink.forget(b"t");
    assert_eq!(sink.sealed, 2);
    writer.commit().unwrap();
    drop(writer);
    let (_, mut readers, recovered) = queue::open(cfg, &["out"]).unwrap();
    assert_eq!(
        recovered.positions.get(&b"s"[..]).map(Vec::as_slice),
        Some(&[50u8][..])
    );
    assert!(!recovered.positions.contains_key(&b"t"[..]), "forgotten");
    let b = readers[0]
        .next_batch(10, 1 << 20, Duration::from_secs(1))
        .unwrap();
    let actions: Vec<String> = b
        .iter()
        .map(|(_, p)| {
            let v: serde_json::Value = serde_json::from_slice(p).unwrap();
            v["action"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        actions,
        ["process_executed", "user_login", "process_executed"]
    );
}
