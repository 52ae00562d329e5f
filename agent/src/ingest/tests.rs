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
    for (id, p) in &events {
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
