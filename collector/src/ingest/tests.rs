use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use auditship_core::identity::Identity;
use auditship_core::wire::{self, BatchHeader};
use auditship_core::{canonical, hex, seal, AuditEvent, Hash};

use super::*;
use crate::checkpoints::{self, Cadence};
use crate::enrol::Mode;
use crate::gaps::Gaps;
use crate::store::segments::{self, SegmentConfig};
use crate::store::{Query, StoreReader};

/// seq -> (canonical bytes, prev hash, hash).
type Chain = BTreeMap<u64, (Vec<u8>, Hash, Hash)>;

/// A model agent: one chain per queue, every event kept so that any
/// subset can be re-sent exactly as the real agent would.
struct TestAgent {
    id: String,
    key: Identity,
    /// queue -> seq -> (canonical bytes, prev hash, hash)
    chains: BTreeMap<u64, Chain>,
}

impl TestAgent {
    fn new(id: &str, seed: u8) -> TestAgent {
        TestAgent {
            id: id.into(),
            key: Identity::from_seed([seed; 32]),
            chains: BTreeMap::new(),
        }
    }

    /// Seals events `seqs` (new ones are appended to the chain).
    fn seal(&mut self, queue: u64, seqs: &[u64]) {
        for &s in seqs {
            let chain = self.chains.entry(queue).or_default();
            if chain.contains_key(&s) {
                continue;
            }
            let prev = chain.values().next_back().map_or(seal::GENESIS, |e| e.2);
            let mut ev = AuditEvent::unparsed(format!("{} line {s}", self.id));
            ev.agent_id = Some(self.id.clone());
            ev.seq = Some(s);
            let bytes = canonical::encode(&ev);
            let hash = seal::chain_hash(&prev, &bytes);
            chain.insert(s, (bytes, prev, hash));
        }
    }

    /// A signed batch of already sealed events `seqs`, covering from `first`.
    fn batch(&mut self, queue: u64, first: u64, seqs: &[u64]) -> Vec<u8> {
        self.batch_with(queue, first, seqs, false)
    }

    /// [`batch`](Self::batch), marked pipelined or not.
    fn batch_with(&mut self, queue: u64, first: u64, seqs: &[u64], pipelined: bool) -> Vec<u8> {
        self.seal(queue, seqs);
        let chain = &self.chains[&queue];
        let mut events = Vec::new();
        for s in seqs {
            events.extend(&chain[s].0);
            events.push(b'\n');
        }
        let mut header = BatchHeader {
            auditship_batch: wire::WIRE_VERSION,
            agent_id: self.id.clone(),
            queue: wire::format_queue(queue),
            first,
            last: *seqs.last().unwrap(),
            events: seqs.len() as u64,
            prev_hash: hex::encode(&chain[&seqs[0]].1),
            last_hash: hex::encode(&chain[seqs.last().unwrap()].2),
            key: String::new(),
            sig: String::new(),
            pipelined,
        };
        header.sign(&self.key);
        wire::encode(&header, &events, wire::Compression::None)
    }
}

struct Rig {
    dir: tempfile::TempDir,
    thread: Option<std::thread::JoinHandle<()>>,
    handle: IngestHandle,
    reader: Arc<dyn StoreReader>,
    views: Views,
    rt: tokio::runtime::Runtime,
}

fn rig_with(mode: Mode, configured: HashMap<String, auditship_core::identity::PublicKey>) -> Rig {
    rig_in(tempfile::tempdir().unwrap(), mode, configured)
}

/// A rig over an existing directory (a restart).
fn rig_in(
    dir: tempfile::TempDir,
    mode: Mode,
    configured: HashMap<String, auditship_core::identity::PublicKey>,
) -> Rig {
    let (writer, reader, _) = segments::open(SegmentConfig {
        dir: dir.path().join("store"),
        segment_bytes: 1 << 20,
        keys: None,
    })
    .unwrap();
    let views = Views::default();
    let key = checkpoints::collector_identity(dir.path()).unwrap();
    let parts = Parts {
        store: Box::new(writer),
        reader: reader.clone(),
        gaps: Gaps::load(dir.path()).unwrap(),
        enrol: Enrolment::load(dir.path(), configured, mode).unwrap(),
        merkle: MerkleLog::open(dir.path().join("merkle")).unwrap(),
        checkpoints: Checkpointer::open(
            dir.path(),
            key,
            Cadence {
                origin: "test".into(),
                interval: Duration::from_secs(3600),
                every: 1,
            },
        )
        .unwrap(),
        silent_after: Duration::from_secs(300),
        host: "collector-test".into(),
    };
    let (handle, thread) = start(parts, views.clone());
    Rig {
        dir,
        thread: Some(thread),
        handle,
        reader,
        views,
        rt: tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap(),
    }
}

use std::collections::HashMap;

fn rig() -> Rig {
    rig_with(Mode::Tofu, HashMap::new())
}

impl Rig {
    /// Stops the commit thread (a clean stop) and hands the directory back.
    fn stop(mut self) -> tempfile::TempDir {
        let thread = self.thread.take().unwrap();
        let Rig { dir, handle, .. } = self;
        drop(handle);
        thread.join().unwrap();
        dir
    }

    fn try_send(&self, body: Vec<u8>) -> Result<IngestAck, IngestError> {
        let b = PreparedBatch::prepare(body).unwrap();
        self.rt.block_on(self.handle.submit(b))
    }

    fn send(&self, body: Vec<u8>) -> IngestAck {
        self.try_send(body).unwrap()
    }

    fn events(&self) -> Vec<AuditEvent> {
        let page = self
            .reader
            .query(&Query {
                limit: 1000,
                ..Query::default()
            })
            .unwrap();
        let mut v: Vec<AuditEvent> = page
            .events
            .iter()
            .map(|e| serde_json::from_slice::<AuditEvent>(&e.payload).unwrap())
            .collect();
        v.reverse();
        v
    }

    fn raws(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .events()
            .into_iter()
            .filter(|e| e.agent_id.as_deref() != Some(crate::integrity::COLLECTOR_AGENT))
            .map(|e| e.raw)
            .collect();
        v.sort();
        v
    }

    /// Integrity events' actions, in store order.
    fn findings(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|e| e.agent_id.as_deref() == Some(crate::integrity::COLLECTOR_AGENT))
            .map(|e| e.action.to_string())
            .collect()
    }
}

#[test]
fn a_retried_or_overlapping_batch_stores_only_what_is_new() {
    let r = rig();
    let mut a = TestAgent::new("a", 1);
    let ack = r.send(a.batch(1, 1, &[1, 2, 3]));
    assert_eq!((ack.stored, ack.duplicates, ack.durable_seq), (3, 0, 3));
    // Re-cut after an agent restart: overlaps the first batch.
    let b = r.send(a.batch(1, 2, &[2, 3, 5]));
    assert_eq!((b.stored, b.duplicates, b.durable_seq), (1, 2, 5));
    let c = r.send(a.batch(1, 1, &[1, 2, 3]));
    assert_eq!((c.stored, c.duplicates), (0, 3));
    assert_eq!(r.raws(), ["a line 1", "a line 2", "a line 3", "a line 5"]);
    assert_eq!(
        r.handle.stats.gaps.load(Ordering::Relaxed),
        0,
        "4 was covered, not a gap"
    );
    assert_eq!(
        r.findings(),
        ["agent_key_pinned"],
        "first use pins the key, nothing else"
    );
}

#[test]
fn stored_events_are_sealed_and_every_stored_record_is_a_merkle_leaf_under_a_signed_checkpoint() {
    let r = rig();
    let mut a = TestAgent::new("a", 1);
    r.send(a.batch(1, 1, &[1, 2, 3]));
    let evs = r.events();
    let page = r
        .reader
        .query(&Query {
            limit: 100,
            ..Query::default()
        })
        .unwrap();
    for e in &page.events {
        let u = seal::unseal(&e.payload).expect("sealed");
        assert!(u.is_intact());
    }
    let ours: Vec<_> = evs
        .iter()
        .filter(|e| e.agent_id.as_deref() == Some("a"))
        .collect();
    assert_eq!(
        ours[0].prev_hash.as_deref(),
        Some(hex::encode(&seal::GENESIS).as_str())
    );
    assert_eq!(ours[1].prev_hash, ours[0].hash, "linked");
    // Every record is a leaf; the checkpoint (every = 1) covers them all.
    let cp = checkpoints::read_all(&r.dir.path().join("checkpoints.ndjson")).unwrap();
    let last = &cp.last().unwrap().0;
    assert_eq!(last.size, 4, "3 events and the pin");
    let mut tree = auditship_core::merkle::MemoryTree::new();
    r.reader
        .for_each_from(0, &mut |_, p| {
            tree.push(p.leaf_hash());
            Ok(())
        })
        .unwrap();
    assert_eq!(hex::encode(&tree.root()), last.root);
    let public = checkpoints::collector_identity(r.dir.path())
        .unwrap()
        .public();
    last.verify(&public).unwrap();
}

#[test]
fn a_gap_is_recorded_as_an_integrity_event_and_a_replay_into_it_is_stored_once() {
    let r = rig();
    let mut a = TestAgent::new("a", 1);
    a.seal(1, &[1, 2, 3, 4, 5, 6]);
    r.send(a.batch(1, 1, &[1, 2]));
    // 3..=4 went to the agent's dead-letter directory; 5.. arrives.
    let later = r.send(a.batch(1, 5, &[5, 6]));
    assert_eq!(later.stored, 2);
    assert_eq!(later.durable_seq, 2, "contiguous only up to the gap");
    assert_eq!(r.handle.stats.gaps.load(Ordering::Relaxed), 1);
    assert_eq!(
        r.views.gaps.lock().unwrap()["a"]["ranges"],
        serde_json::json!([[3, 4]])
    );
    let replay = r.send(a.batch(1, 3, &[3, 4]));
    assert_eq!(
        (replay.stored, replay.duplicates, replay.durable_seq),
        (2, 0, 6)
    );
    let again = r.send(a.batch(1, 3, &[3, 4]));
    assert_eq!((again.stored, again.duplicates), (0, 2));
    assert_eq!(r.raws().len(), 6);
    assert_eq!(*r.views.gaps.lock().unwrap(), serde_json::json!({}));
    assert_eq!(r.findings(), ["agent_key_pinned", "chain_gap"]);
    let gap = r
        .events()
        .into_iter()
        .find(|e| e.action == "chain_gap")
        .unwrap();
    assert_eq!(
        (gap.fields["from"].as_str(), gap.fields["to"].as_str()),
        ("3", "4")
    );
}

#[test]
fn a_bad_signature_or_an_altered_event_is_refused_and_recorded_never_stored() {
    let r = rig();
    let mut a = TestAgent::new("a", 1);
    r.send(a.batch(1, 1, &[1]));
    // Another key claiming to be agent a.
    let mut impostor = TestAgent::new("a", 2);
    impostor.seal(1, &[1]);
    let err = r.try_send(impostor.batch(1, 2, &[2])).unwrap_err();
    assert!(
        matches!(err, IngestError::Refused { status: 422, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("enrolled key"), "{err}");
    // The real agent, one event altered after signing.
    let body = a.batch(1, 2, &[2]);
    let text = String::from_utf8(body)
        .unwrap()
        .replace("a line 2", "a line X");
    let err = r.try_send(text.into_bytes()).unwrap_err();
    assert!(err.to_string().contains("altered"), "{err}");
    assert_eq!(
        r.raws(),
        ["a line 1"],
        "nothing of the refused batches stored"
    );
    assert_eq!(
        r.findings(),
        ["agent_key_pinned", "bad_signature", "bad_signature"]
    );
    assert_eq!(r.handle.stats.bad_signatures.load(Ordering::Relaxed), 2);
    // The genuine batch still goes through.
    assert_eq!(r.send(a.batch(1, 2, &[2])).stored, 1);
}

#[test]
fn a_fork_is_recorded_and_the_agents_new_branch_is_stored_after_it() {
    let r = rig();
    let mut a = TestAgent::new("a", 1);
    r.send(a.batch(1, 1, &[1, 2, 3]));
    // The agent lost 3 and sealed a different 3 (e.g. power loss with
    // fsync = "interval"), then 4 on top of it.
    drop(a);
    let mut b = TestAgent::new("a", 1);
    b.seal(1, &[1, 2]);
    // Same 1 and 2 (same content, same key), then a different 3.
    let mut ev = AuditEvent::unparsed("a line 3, sealed again".into());
    ev.agent_id = Some("a".into());
    ev.seq = Some(3);
    let bytes = canonical::encode(&ev);
    let prev = b.chains[&1][&2].2;
    let h = seal::chain_hash(&prev, &bytes);
    b.chains.get_mut(&1).unwrap().insert(3, (bytes, prev, h));
    let ack = r.send(b.batch(1, 3, &[3, 4]));
    assert_eq!((ack.stored, ack.duplicates), (1, 1));
    assert_eq!(r.findings(), ["agent_key_pinned", "chain_fork"]);
    assert_eq!(r.handle.stats.forks.load(Ordering::Relaxed), 1);
    assert!(r.raws().contains(&"a line 4".to_string()));
}

#[test]
fn a_batch_that_does_not_link_to_the_stored_head_is_a_chain_break() {
    let r = rig();
    let mut a = TestAgent::new("a", 1);
    r.send(a.batch(1, 1, &[1, 2]));
    // Seq 3 sealed on top of something other than the stored 2.
    let mut b = TestAgent::new("a", 1);
    b.chains
        .entry(1)
        .or_default()
        .insert(2, (Vec::new(), [8; 32], [9; 32]));
    let ack = r.send(b.batch(1, 3, &[3, 4]));
    assert_eq!(ack.stored, 2, "stored after the recorded break");
    assert_eq!(r.findings(), ["agent_key_pinned", "chain_break"]);
}

#[test]
fn strict_enrolment_refuses_unknown_agents_once_recorded_and_accepts_configured_keys() {
    let a_key = Identity::from_seed([1; 32]).public();
    let r = rig_with(Mode::Strict, HashMap::from([("a".to_string(), a_key)]));
    let mut a = TestAgent::new("a", 1);
    let mut b = TestAgent::new("b", 2);
    assert_eq!(r.send(a.batch(1, 1, &[1])).stored, 1);
    for _ in 0..3 {
        let err = r.try_send(b.batch(1, 1, &[1])).unwrap_err();
        assert!(
            matches!(err, IngestError::Refused { status: 403, .. }),
            "{err}"
        );
    }
    assert_eq!(
        r.findings(),
        ["agent_not_enrolled"],
        "recorded once, not per retry"
    );
}

#[test]
fn agents_are_independent_and_a_new_queue_starts_a_recorded_new_epoch() {
    let r = rig();
    let mut a = TestAgent::new("a", 1);
    let mut b = TestAgent::new("b", 2);
    r.send(a.batch(1, 1, &[1, 2]));
    let ack = r.send(b.batch(9, 1, &[1, 2]));
    assert_eq!(ack.stored, 2, "another agent's seq 1..2 are not duplicates");
    // Agent a reinstalled with fresh state: a new queue, seq from 1 again.
    let fresh = r.send(a.batch(2, 1, &[1]));
    assert_eq!(
        (fresh.stored, fresh.queue.as_str()),
        (1, "0000000000000002")
    );
    assert_eq!(r.raws().len(), 5);
    assert_eq!(
        r.findings(),
        ["agent_key_pinned", "agent_key_pinned", "agent_new_epoch"]
    );
}

#[test]
fn an_agent_that_stops_sending_is_reported_silent_once() {
    let r = rig();
    let mut a = TestAgent::new("a", 1);
    r.send(a.batch(1, 1, &[1]));
    let later = Instant::now() + Duration::from_secs(301);
    r.handle.tick(later);
    r.handle.tick(later + Duration::from_secs(5));
    // A batch is a barrier: ticks sent before it are handled first.
    r.send(a.batch(1, 2, &[2]));
    let found = r.findings();
    assert_eq!(found[..2], ["agent_key_pinned", "agent_silent"]);
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(found[2], "agent_resumed", "a later batch resumes the agent");
}

#[test]
fn a_merkle_log_that_lost_its_tail_is_rebuilt_from_the_store_at_start() {
    // The Merkle log is written without fsync: a power loss can cut its
    // files. The store is the truth; the next start must rebuild the lost
    // leaves, or proofs and checkpoints would disagree with the store.
    let r = rig();
    let mut a = TestAgent::new("a", 1);
    for b in 0..5u64 {
        let seqs: Vec<u64> = (b * 10 + 1..=b * 10 + 10).collect();
        r.send(a.batch(1, seqs[0], &seqs));
    }
    let dir = r.stop();
    let level0 = dir.path().join("merkle").join("level-00.bin");
    let full = std::fs::metadata(&level0).unwrap().len();
    assert_eq!(full, 51 * 32, "50 events and the pin");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&level0)
        .unwrap()
        .set_len(7 * 32 + 5)
        .unwrap();
    let r = rig_in(dir, Mode::Tofu, HashMap::new());
    // A batch is a barrier: the start-up catch-up has run.
    r.send(a.batch(1, 51, &[51]));
    let dir = r.stop();
    let mut tree = auditship_core::merkle::MemoryTree::new();
    let (_, reader, _) = segments::open(SegmentConfig {
        dir: dir.path().join("store"),
        segment_bytes: 1 << 20,
        keys: None,
    })
    .unwrap();
    reader
        .for_each_from(0, &mut |_, p| {
            tree.push(p.leaf_hash());
            Ok(())
        })
        .unwrap();
    assert_eq!(tree.size(), 52);
    let log = MerkleLog::open(dir.path().join("merkle")).unwrap();
    assert_eq!(log.size(), 52);
    assert_eq!(log.root(), tree.root());
    let cps = checkpoints::read_all(&dir.path().join("checkpoints.ndjson")).unwrap();
    let last = &cps.last().unwrap().0;
    assert_eq!(
        (last.size, last.root.clone()),
        (52, hex::encode(&tree.root()))
    );
}

#[test]
fn pipelined_batches_arriving_out_of_order_are_stored_in_order_without_a_gap() {
    // Regression guard for pipelining: the agent's second request may reach
    // the commit thread before its first. Without the hold, that is a
    // chain_gap alarm and a gap fill instead of two ordinary batches.
    let r = rig();
    let mut a = TestAgent::new("a", 1);
    r.send(a.batch(1, 1, &[1, 2]));
    a.seal(1, &[3, 4, 5, 6]);
    let second = PreparedBatch::prepare(a.batch_with(1, 5, &[5, 6], true)).unwrap();
    let first = PreparedBatch::prepare(a.batch_with(1, 3, &[3, 4], false)).unwrap();
    let (b, f) = r.rt.block_on(async {
        let later = r.handle.submit(second);
        let earlier = async {
            // Give the second a head start into the commit thread.
            tokio::task::yield_now().await;
            r.handle.submit(first).await
        };
        tokio::join!(later, earlier)
    });
    let (b, f) = (b.unwrap(), f.unwrap());
    assert_eq!((f.stored, b.stored), (2, 2));
    assert_eq!(b.durable_seq, 6);
    assert_eq!(r.findings(), ["agent_key_pinned"], "no gap recorded");
    assert_eq!(r.handle.stats.gaps.load(Ordering::Relaxed), 0);
    // Store order is seq order.
    let ours: Vec<u64> = r
        .events()
        .iter()
        .filter(|e| e.agent_id.as_deref() == Some("a"))
        .map(|e| e.seq.unwrap())
        .collect();
    assert_eq!(ours, [1, 2, 3, 4, 5, 6]);
}

#[test]
fn a_pipelined_batch_whose_predecessor_never_comes_gets_409_and_alone_opens_the_gap() {
    let r = rig();
    let mut a = TestAgent::new("a", 1);
    r.send(a.batch(1, 1, &[1]));
    a.seal(1, &[2, 3]);
    let orphan = PreparedBatch::prepare(a.batch_with(1, 3, &[3], true)).unwrap();
    let handle = r.handle.clone();
    let waiter = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(handle.submit(orphan))
    });
    std::thread::sleep(HOLD + Duration::from_millis(300));
    r.handle.tick(Instant::now());
    let err = waiter.join().unwrap().unwrap_err();
    assert!(
        matches!(err, IngestError::Refused { status: 409, .. }),
        "{err}"
    );
    assert_eq!(
        r.findings(),
        ["agent_key_pinned"],
        "a held batch records nothing"
    );
    // Sent again, not pipelined (what the agent does): a real gap.
    let ack = r.send(a.batch_with(1, 3, &[3], false));
    assert_eq!((ack.stored, ack.durable_seq), (1, 1));
    assert_eq!(r.findings(), ["agent_key_pinned", "chain_gap"]);
}

#[test]
fn a_recorded_collector_event_is_chained_after_the_findings_durable_and_merkle_covered() {
    let r = rig();
    let mut a = TestAgent::new("a", 1);
    r.send(a.batch(1, 1, &[1, 2]));
    // leaves: the pin, events 1 and 2; the record is leaf 3.
    let mut ev = AuditEvent::new(
        auditship_core::Category::Access,
        "query",
        auditship_core::Outcome::Success,
        "reader alice queried".into(),
    );
    ev.actor.user = Some("alice".into());
    let rec = r.rt.block_on(r.handle.record(ev)).unwrap();
    assert_eq!(rec, Recorded { leaf: 3, seq: 2 });
    let dir = r.stop();
    // A restart sees it, sealed into the collector's chain after the pin.
    let r = rig_in(dir, Mode::Tofu, HashMap::new());
    let own: Vec<AuditEvent> = r
        .events()
        .into_iter()
        .filter(|e| e.agent_id.as_deref() == Some(crate::integrity::COLLECTOR_AGENT))
        .collect();
    assert_eq!(own.len(), 2, "{own:?}");
    assert_eq!(own[0].action, "agent_key_pinned");
    assert_eq!(own[1].action, "query");
    assert_eq!(own[1].seq, Some(2));
    assert_eq!(own[1].host.as_deref(), Some("collector-test"));
    assert_eq!(own[1].prev_hash, own[0].hash, "one chain");
    // The index knows its actor and category.
    let page = r
        .reader
        .query(&Query {
            limit: 10,
            actor: Some("alice".into()),
            category: Some("access".into()),
            ..Query::default()
        })
        .unwrap();
    assert_eq!(page.events.len(), 1);
    let cp = checkpoints::read_all(&r.dir.path().join("checkpoints.ndjson")).unwrap();
    assert_eq!(
        cp.last().unwrap().0.size,
        4,
        "the record is under a checkpoint"
    );
}
