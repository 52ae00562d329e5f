//! Chain recovery in every case the queue can be left in, the sealer's
//! refusal handling, and the heartbeat timer on a paused clock.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use auditship_core::seal::{chain_hash, unseal, GENESIS};
use auditship_core::{canonical, AuditEvent};

use super::heartbeat::Heartbeat;
use super::*;
use crate::queue::{self, Fsync, QueueConfig, QueueReader};

fn cfg(dir: &Path) -> QueueConfig {
    QueueConfig {
        dir: dir.to_path_buf(),
        max_bytes: 1 << 20,
        segment_bytes: 64 << 10,
        max_record_bytes: 8 << 10,
        fsync: Fsync::Always,
        encryption: None,
    }
}

/// Seals and appends event `n`; returns its hash.
fn put(w: &mut QueueWriter, s: &mut Sealer, n: u64) -> Hash {
    let mut ev = AuditEvent::unparsed(format!("line {n}"));
    ev.seq = Some(w.next_id());
    ev.agent_id = Some("a".into());
    let mut buf = Vec::new();
    canonical::encode_into(&ev, &mut buf);
    let link = s.link(&buf);
    s.append(w, b"file", &n.to_le_bytes(), &buf, link).unwrap();
    link.hash
}

/// Opens the queue and a sealer continuing its chain.
fn open(dir: &Path) -> (QueueWriter, Vec<QueueReader>, Sealer, queue::Recovery) {
    let (w, r, rec) = queue::open(cfg(dir), &["out"]).unwrap();
    let s = Sealer::new(rec.chain.unwrap_or(ChainHead::START));
    (w, r, s, rec)
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

/// Every event a reader gets, checked to form one unbroken chain; their hashes.
fn delivered_chain(r: &mut QueueReader) -> Vec<Hash> {
    let mut hashes = Vec::new();
    let mut prev = GENESIS;
    loop {
        let b = r
            .next_batch(1000, 1 << 20, Duration::from_millis(10))
            .unwrap();
        if b.is_empty() {
            return hashes;
        }
        for ((id, _), p) in b.iter().zip(b.sealed_lines()) {
            let u = unseal(&p).expect("sealed");
            assert!(u.is_intact(), "event {id} recomputes");
            assert_eq!(u.prev, prev, "event {id} links to the one before");
            let v: serde_json::Value = serde_json::from_slice(&p).unwrap();
            assert_eq!(v["seq"], id, "seq is the record id");
            prev = u.hash;
            hashes.push(u.hash);
        }
        r.ack(b.last_id().unwrap()).unwrap();
    }
}

#[test]
fn a_new_queue_starts_at_genesis_and_events_chain_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, mut r, mut s, rec) = open(dir.path());
    assert_eq!(rec.chain, None);
    let hashes: Vec<Hash> = (1..=5).map(|n| put(&mut w, &mut s, n)).collect();
    w.commit().unwrap();
    assert_eq!(delivered_chain(&mut r[0]), hashes);
    assert_eq!(s.head().hash, hashes[4]);
    assert_eq!(s.head().as_of, 5);
}

#[test]
fn recovery_takes_the_head_from_events_in_the_newest_segment() {
    let dir = tempfile::tempdir().unwrap();
    let last = {
        let (mut w, _r, mut s, _) = open(dir.path());
        let mut last = GENESIS;
        for n in 1..=20 {
            last = put(&mut w, &mut s, n);
        }
        w.commit().unwrap();
        last
    };
    let (mut w, mut r, mut s, rec) = open(dir.path());
    assert_eq!(
        rec.chain,
        Some(ChainHead {
            as_of: 20,
            hash: last
        })
    );
    let next = put(&mut w, &mut s, 21);
    w.commit().unwrap();
    let chain = delivered_chain(&mut r[0]);
    assert_eq!(chain.len(), 21);
    assert_eq!((chain[19], chain[20]), (last, next));
}

#[test]
fn recovery_takes_the_head_from_the_snapshot_once_every_event_is_acknowledged_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let expected = {
        let (mut w, mut r, mut s, _) = open(dir.path());
        for n in 1..=300 {
            put(&mut w, &mut s, n);
            if n % 50 == 0 {
                w.commit().unwrap();
            }
        }
        w.commit().unwrap();
        assert!(segments(dir.path()).len() > 1, "events span segments");
        assert_eq!(delivered_chain(&mut r[0]).len(), 300);
        // Everything is acknowledged: the next wait for space starts a fresh
        // segment, and the ones holding events are deleted.
        w.wait_for_space(1 << 30, Duration::from_millis(1)).unwrap();
        s.head()
    };
    let (_w, _r, _s, rec) = open(dir.path());
    assert_eq!(rec.records, 0, "no event record is left in the queue");
    assert_eq!(rec.chain, Some(expected));
    drop((_w, _r, _s));
    // And again: the snapshot written at the last open carries it on.
    let (mut w, mut r, mut s, rec) = open(dir.path());
    assert_eq!(rec.chain, Some(expected));
    let first = put(&mut w, &mut s, 301);
    w.commit().unwrap();
    let b = r[0]
        .next_batch(10, 1 << 20, Duration::from_secs(1))
        .unwrap();
    let u = unseal(&b.sealed_lines()[0]).unwrap().hash;
    let link = b.links()[0].unwrap();
    assert_eq!((link.prev, link.hash, u), (expected.hash, first, first));
}

/// The head recovered from event records at one start must survive the
/// deletion of those records before anything new is sealed: the snapshot
/// that opens the new segment carries it.
#[test]
fn a_head_recovered_from_events_survives_their_deletion_before_the_next_event() {
    let dir = tempfile::tempdir().unwrap();
    let expected = {
        let (mut w, _r, mut s, _) = open(dir.path());
        for n in 1..=10 {
            put(&mut w, &mut s, n);
        }
        w.commit().unwrap();
        s.head()
    };
    {
        // Restart: the head comes from the event records. The output then
        // delivers them, and their segment, no longer the active one, goes.
        let (_w, mut r, _s, rec) = open(dir.path());
        assert_eq!(rec.chain, Some(expected));
        let before = segments(dir.path()).len();
        assert_eq!(delivered_chain(&mut r[0]).len(), 10);
        assert!(
            segments(dir.path()).len() < before,
            "delivered segment deleted"
        );
    }
    let (_w, _r, _s, rec) = open(dir.path());
    assert_eq!(rec.records, 0, "no event record is left in the queue");
    assert_eq!(rec.chain, Some(expected));
}

#[test]
fn a_torn_tail_leaves_the_head_at_the_last_whole_event() {
    let dir = tempfile::tempdir().unwrap();
    let hashes = {
        let (mut w, _r, mut s, _) = open(dir.path());
        let h: Vec<Hash> = (1..=10).map(|n| put(&mut w, &mut s, n)).collect();
        w.commit().unwrap();
        h
    };
    // Cut the last record short: a write the crash interrupted.
    let newest = segments(dir.path()).pop().unwrap();
    let len = fs::metadata(&newest).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap()
        .set_len(len - 30)
        .unwrap();
    let (mut w, mut r, mut s, rec) = open(dir.path());
    assert!(rec.truncated_bytes > 0);
    assert_eq!(
        rec.chain,
        Some(ChainHead {
            as_of: 9,
            hash: hashes[8]
        })
    );
    // The lost event is read again from the input and sealed anew, after
    // event 9: the chain goes on unbroken.
    put(&mut w, &mut s, 10);
    w.commit().unwrap();
    let chain = delivered_chain(&mut r[0]);
    assert_eq!(chain.len(), 10);
    assert_eq!(chain[..9], hashes[..9]);
}

/// Corruption at rest of the newest event: the head is the hash still
/// readable in its bytes; if that is unreadable, it is made up from them,
/// so the next event can break the chain but never fork it from event 4.
#[test]
fn a_corrupt_newest_event_never_lets_the_next_one_fork_from_the_one_before() {
    for (case, flip_from_end) in [("body", 300usize), ("hash", 100)] {
        let dir = tempfile::tempdir().unwrap();
        let hashes = {
            let (mut w, _r, mut s, _) = open(dir.path());
            let h: Vec<Hash> = (1..=5).map(|n| put(&mut w, &mut s, n)).collect();
            w.commit().unwrap();
            h
        };
        let newest = segments(dir.path()).pop().unwrap();
        let mut b = fs::read(&newest).unwrap();
        let at = b.len() - flip_from_end;
        b[at] ^= 0x01;
        fs::write(&newest, &b).unwrap();
        let (_w, _r, _s, rec) = open(dir.path());
        assert_eq!(rec.quarantined.len(), 1, "{case}");
        let head = rec.chain.unwrap();
        assert_ne!(head.hash, hashes[3], "{case}: no fork from event 4");
        if case == "body" {
            assert_eq!(head.hash, hashes[4], "the intact hash is recovered");
        }
        drop((_w, _r, _s));
        // The next start agrees, though the bad bytes are not read as a record.
        let (_w, _r, _s, again) = open(dir.path());
        assert_eq!(again.chain, Some(head), "{case}");
    }
}

#[test]
fn the_fold_follows_record_order() {
    let mut f = ChainFold::default();
    assert_eq!(f.head(), None);
    let h1 = chain_hash(&GENESIS, b"{}");
    let mut sealed = b"{\"seq\":3}".to_vec();
    let h3 = auditship_core::seal::seal_in_place(&mut sealed, &h1);
    // A record from before links moved out of the payload: the sealed form.
    f.event(3, b"file", b"pos", None, &sealed);
    assert_eq!(f.head(), Some(ChainHead { as_of: 3, hash: h3 }));
    // Position-only records of other streams, and unsealed payloads, say nothing.
    f.event(4, b"file", b"pos", None, b"");
    f.event(5, b"file", b"pos", None, b"{\"legacy\":1}");
    assert_eq!(f.head().unwrap().hash, h3);
    // A linked record: its link's hash, whatever the payload.
    let linked = ChainLink {
        hash: chain_hash(&h3, b"{}"),
        prev: h3,
    };
    f.event(6, b"file", b"pos", Some(&linked), b"{}");
    assert_eq!(
        f.head(),
        Some(ChainHead {
            as_of: 6,
            hash: linked.hash
        })
    );
    // A snapshot or a "\0chain" record sets it.
    let mut snap = BTreeMap::new();
    snap.insert(
        CHAIN_STREAM.to_vec(),
        ChainHead { as_of: 9, hash: h1 }.encode().to_vec(),
    );
    f.snapshot(&snap);
    assert_eq!(f.head(), Some(ChainHead { as_of: 9, hash: h1 }));
    f.snapshot(&BTreeMap::new());
    assert_eq!(f.head().unwrap().as_of, 9, "a snapshot without it keeps it");
    f.event(
        10,
        CHAIN_STREAM,
        &ChainHead {
            as_of: 10,
            hash: h3,
        }
        .encode(),
        None,
        b"",
    );
    assert_eq!(
        f.head(),
        Some(ChainHead {
            as_of: 10,
            hash: h3
        })
    );
    // Damage with a readable suffix takes its hash; without, a derived one.
    f.damage(11, &sealed[1..], false);
    assert_eq!(
        f.head(),
        Some(ChainHead {
            as_of: 11,
            hash: h3
        })
    );
    f.damage(12, b"garbage", false);
    assert_eq!(f.head().unwrap().hash, chain_hash(&h3, b"garbage"));
    // A linked record's frame in the clear gives its link; the same bytes
    // as sealed bodies (ciphertext) are not read for one.
    let mut frame = Vec::new();
    let link = ChainLink {
        hash: [7; 32],
        prev: [8; 32],
    };
    crate::queue::encode_linked_for_test(&mut frame, 13, &link, b"{\"x\":1}");
    let bad = &frame[..frame.len() - 3];
    f.damage(13, bad, false);
    assert_eq!(f.head().unwrap().hash, link.hash);
    let before = f.head().unwrap().hash;
    f.damage(14, bad, true);
    assert_eq!(f.head().unwrap().hash, chain_hash(&before, bad));
}

#[test]
fn a_refused_append_does_not_move_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, mut r, mut s, _) = open(dir.path());
    let first = put(&mut w, &mut s, 1);
    let mut big = AuditEvent::unparsed("x".repeat(9 << 10));
    big.seq = Some(w.next_id());
    let mut buf = Vec::new();
    canonical::encode_into(&big, &mut buf);
    let link = s.link(&buf);
    let err = s.append(&mut w, b"file", b"p", &buf, link).unwrap_err();
    assert!(matches!(err, QueueError::TooLarge { .. }), "{err}");
    assert_eq!(s.head().hash, first, "head unmoved");
    let second = put(&mut w, &mut s, 2);
    w.commit().unwrap();
    assert_eq!(delivered_chain(&mut r[0]), vec![first, second]);
}

#[test]
fn heartbeats_are_sealed_events_in_the_chain_under_the_chain_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, mut r, mut s, _) = open(dir.path());
    put(&mut w, &mut s, 1);
    let prev = s.head();
    let stats = crate::ingest::IngestStats::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let mut out = crate::ingest::Appender {
        writer: &mut w,
        sealer: &mut s,
        stop: &stop,
        stats: &stats,
    };
    let ev = heartbeat::event(
        "a",
        "host-1",
        prev,
        Duration::from_secs(60),
        Duration::from_secs(7),
    );
    out.heartbeat(ev, &mut Vec::new()).unwrap();
    w.commit().unwrap();
    let b = r[0]
        .next_batch(10, 1 << 20, Duration::from_secs(1))
        .unwrap();
    let (id, p) = b.iter().nth(1).expect("the heartbeat is queued");
    let v: serde_json::Value = serde_json::from_slice(p).unwrap();
    assert_eq!(v["action"], "agent_heartbeat");
    assert_eq!(v["seq"], id);
    let lines = b.sealed_lines();
    let u = unseal(&lines[1]).unwrap();
    assert!(u.is_intact());
    assert_eq!(u.prev, prev.hash, "linked to the event before");
    assert_eq!(
        stats.heartbeats.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    drop((w, r));
    let (_w, _r, _s, rec) = open(dir.path());
    assert_eq!(rec.chain.unwrap().hash, u.hash);
    assert_eq!(
        ChainHead::decode(&rec.positions[CHAIN_STREAM]),
        rec.chain,
        "the heartbeat's record set the chain stream"
    );
}

#[test]
fn the_heartbeat_event_says_what_it_is() {
    let ev = heartbeat::event(
        "web-1",
        "web-1.example",
        ChainHead {
            as_of: 41,
            hash: GENESIS,
        },
        Duration::from_secs(60),
        Duration::from_secs(3600),
    );
    assert_eq!(ev.category, auditship_core::Category::Integrity);
    assert_eq!(ev.action, "agent_heartbeat");
    assert_eq!(ev.outcome, auditship_core::Outcome::Success);
    assert_eq!(ev.host.as_deref(), Some("web-1.example"));
    assert_eq!(ev.fields["prev_seq"], "41");
    assert_eq!(ev.fields["uptime_s"], "3600");
    assert!(ev.raw.contains("heartbeat"), "{}", ev.raw);
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_is_due_after_the_idle_interval_and_never_while_events_flow() {
    let hb = Heartbeat::new(Duration::from_secs(60));
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(hb.clone().run(stop.clone()));
    // Events every 50 s for 10 minutes: never 60 s idle.
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_secs(50)).await;
        assert!(!hb.take_due(), "no heartbeat while events flow");
        hb.sealed();
    }
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert!(!hb.take_due(), "not before 60 s idle");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(hb.take_due(), "due after 60 s idle");
    assert!(!hb.take_due(), "taken once");
    // The ingest thread seals it, which restarts the timer: one a minute.
    hb.sealed();
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert!(!hb.take_due());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(hb.take_due());
    stop.cancel();
    task.await.unwrap();
}

/// A queue written before chain links moved out of the payload holds kind 1
/// records whose payload is the sealed form. After the upgrade they read
/// like linked records (the canonical bytes, and the link beside them), the
/// head is recovered from them, and new events continue their chain.
#[test]
fn records_in_the_sealed_form_from_an_older_agent_read_as_linked_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut old = Vec::new();
    {
        let (mut w, _r, _s, _) = open(dir.path());
        let mut prev = GENESIS;
        for n in 1..=3u64 {
            let mut ev = AuditEvent::unparsed(format!("old line {n}"));
            ev.seq = Some(w.next_id());
            let mut buf = Vec::new();
            canonical::encode_into(&ev, &mut buf);
            let canonical = buf.clone();
            // What the previous version queued: the sealed form, in a kind 1 record.
            let hash = auditship_core::seal::seal_in_place(&mut buf, &prev);
            let head = ChainHead { as_of: n, hash }.encode();
            w.append_implying(b"file", &n.to_le_bytes(), &buf, (CHAIN_STREAM, &head))
                .unwrap();
            old.push((canonical, buf, ChainLink { hash, prev }));
            prev = hash;
        }
        w.commit().unwrap();
    }
    let (mut w, mut r, mut s, rec) = open(dir.path());
    let last = old[2].2.hash;
    assert_eq!(
        rec.chain,
        Some(ChainHead {
            as_of: 3,
            hash: last
        })
    );
    let next = put(&mut w, &mut s, 4);
    w.commit().unwrap();
    let b = r[0]
        .next_batch(10, 1 << 20, Duration::from_secs(1))
        .unwrap();
    assert_eq!(b.len(), 4);
    let sealed = b.sealed_lines();
    for (i, (canonical, sealed_form, link)) in old.iter().enumerate() {
        assert_eq!(b.iter().nth(i).unwrap().1, &canonical[..], "payload {i}");
        assert_eq!(b.links()[i], Some(*link), "link {i}");
        assert_eq!(&sealed[i], sealed_form, "sealed form {i}");
    }
    assert_eq!(b.links()[3].map(|l| (l.prev, l.hash)), Some((last, next)));
    assert_eq!(delivered_chain(&mut r[0]).len(), 0, "all read");
}
