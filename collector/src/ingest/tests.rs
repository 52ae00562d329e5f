use std::sync::{Arc, Mutex};

use auditship_core::wire::{self, BatchHeader};
use auditship_core::{canonical, AuditEvent};

use super::*;
use crate::gaps::Gaps;
use crate::store::segments::{self, SegmentConfig};
use crate::store::{Query, StoreReader};

fn body(agent: &str, queue: u64, first: u64, seqs: &[u64]) -> Vec<u8> {
    let mut events = Vec::new();
    for &s in seqs {
        let mut ev = AuditEvent::unparsed(format!("{agent} line {s}"));
        ev.agent_id = Some(agent.into());
        ev.seq = Some(s);
        events.extend(canonical::encode(&ev));
        events.push(b'\n');
    }
    let header = BatchHeader {
        auditship_batch: wire::WIRE_VERSION,
        agent_id: agent.into(),
        queue: wire::format_queue(queue),
        first,
        last: *seqs.last().unwrap(),
        events: seqs.len() as u64,
    };
    wire::encode(&header, &events, None)
}

struct Rig {
    _dir: tempfile::TempDir,
    handle: IngestHandle,
    reader: Arc<dyn StoreReader>,
    view: Arc<Mutex<serde_json::Value>>,
    rt: tokio::runtime::Runtime,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (writer, reader, _) = segments::open(SegmentConfig {
        dir: dir.path().join("store"),
        segment_bytes: 1 << 20,
    })
    .unwrap();
    let view = Arc::new(Mutex::new(serde_json::Value::Null));
    let (handle, _thread) = start(
        Box::new(writer),
        Gaps::load(dir.path()).unwrap(),
        view.clone(),
    );
    Rig {
        _dir: dir,
        handle,
        reader,
        view,
        rt: tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap(),
    }
}

impl Rig {
    fn send(&self, body: Vec<u8>) -> IngestAck {
        let b = PreparedBatch::prepare(body).unwrap();
        self.rt.block_on(self.handle.submit(b)).unwrap()
    }

    fn raws(&self) -> Vec<String> {
        let page = self
            .reader
            .query(&Query {
                limit: 1000,
                ..Query::default()
            })
            .unwrap();
        let mut v: Vec<String> = page
            .events
            .iter()
            .map(|e| {
                serde_json::from_slice::<AuditEvent>(&e.payload)
                    .unwrap()
                    .raw
            })
            .collect();
        v.sort();
        v
    }
}

#[test]
fn a_retried_or_overlapping_batch_stores_only_what_is_new() {
    let r = rig();
    let a = r.send(body("a", 1, 1, &[1, 2, 3]));
    assert_eq!((a.stored, a.duplicates, a.durable_seq), (3, 0, 3));
    // Re-cut after an agent restart: overlaps the first batch.
    let b = r.send(body("a", 1, 2, &[2, 3, 5]));
    assert_eq!((b.stored, b.duplicates, b.durable_seq), (1, 2, 5));
    let c = r.send(body("a", 1, 1, &[1, 2, 3]));
    assert_eq!((c.stored, c.duplicates), (0, 3));
    assert_eq!(r.raws(), ["a line 1", "a line 2", "a line 3", "a line 5"]);
    assert_eq!(
        r.handle.stats.gaps.load(Ordering::Relaxed),
        0,
        "4 was covered, not a gap"
    );
}

#[test]
fn a_gap_is_recorded_and_a_replay_into_it_is_stored_once() {
    let r = rig();
    r.send(body("a", 1, 1, &[1, 2]));
    // 3..=4 went to the agent's dead-letter directory; 5.. arrives.
    let later = r.send(body("a", 1, 5, &[5, 6]));
    assert_eq!(later.stored, 2);
    assert_eq!(later.durable_seq, 2, "contiguous only up to the gap");
    assert_eq!(r.handle.stats.gaps.load(Ordering::Relaxed), 1);
    assert_eq!(
        r.view.lock().unwrap()["a"]["ranges"],
        serde_json::json!([[3, 4]])
    );
    let replay = r.send(body("a", 1, 3, &[3, 4]));
    assert_eq!(
        (replay.stored, replay.duplicates, replay.durable_seq),
        (2, 0, 6)
    );
    let again = r.send(body("a", 1, 3, &[3, 4]));
    assert_eq!((again.stored, again.duplicates), (0, 2));
    assert_eq!(r.raws().len(), 6);
    assert_eq!(*r.view.lock().unwrap(), serde_json::json!({}));
}

#[test]
fn agents_are_independent_and_a_new_queue_starts_a_new_epoch() {
    let r = rig();
    r.send(body("a", 1, 1, &[1, 2]));
    let b = r.send(body("b", 9, 1, &[1, 2]));
    assert_eq!(b.stored, 2, "another agent's seq 1..2 are not duplicates");
    // Agent a reinstalled with fresh state: a new queue, seq from 1 again.
    let fresh = r.send(body("a", 2, 1, &[1]));
    assert_eq!(
        (fresh.stored, fresh.queue.as_str()),
        (1, "0000000000000002")
    );
    assert_eq!(r.raws().len(), 5);
}
