//! Tests of the segment store: durability and recovery; queries in `query`.

mod encrypted;
mod linked;
mod query;
mod rewrite;

use std::collections::HashMap;
use std::fs;
use std::net::IpAddr;
use std::path::Path;

use super::*;
use crate::store::{
    Cursor, IndexKey, NewEvent, Query, StoreReader, StoreWriter, StoredEvent, Watermark,
};

/// One test event with the fields ingest would extract.
#[derive(Clone, Debug)]
pub(super) struct Ev {
    pub agent: String,
    pub queue: u64,
    pub seq: u64,
    pub ts: i64,
    pub host: Option<String>,
    pub actor: Option<String>,
    pub action: String,
    pub category: String,
    pub outcome: String,
    pub ip: Option<IpAddr>,
    pub raw: String,
    /// Sealed form (chained from genesis, one link: the store only reads
    /// the hash back).
    pub payload: Vec<u8>,
    pub hash: auditship_core::Hash,
}

impl Ev {
    pub fn new(agent: &str, queue: u64, seq: u64) -> Ev {
        let host = (seq % 9 != 0).then(|| format!("h{}", seq % 5));
        let actor = (seq % 11 != 0).then(|| format!("u{}", seq % 7));
        let action = ["login", "logout", "sudo"][(seq % 3) as usize].to_string();
        let category = ["authentication", "process"][(seq % 2) as usize].to_string();
        let outcome =
            ["success", "failure", "unknown"][(seq % 3 + seq / 3 % 2) as usize % 3].to_string();
        let ip: Option<IpAddr> = match seq % 4 {
            0 => None,
            1 => Some(format!("2001:db8::{:x}", seq % 300).parse().unwrap()),
            _ => Some(format!("10.0.{}.{}", seq % 3, seq % 250).parse().unwrap()),
        };
        let raw = if seq % 17 == 0 {
            format!("line {seq} said \"hi\"\\ tag{}", seq % 10)
        } else {
            format!("line {seq} tag{}", seq % 10)
        };
        let mut obj = serde_json::json!({
            "action": action,
            "actor": {},
            "agent_id": agent,
            "category": category,
            "outcome": outcome,
            "raw": raw,
            "seq": seq,
            "src_ip": ip.map(|i| i.to_string()),
            "target": {},
            "ts": null,
            "v": 1,
        });
        if let Some(h) = &host {
            obj["host"] = h.clone().into();
        }
        if let Some(a) = &actor {
            obj["actor"]["user"] = a.clone().into();
        }
        let mut payload = serde_json::to_vec(&obj).unwrap();
        let hash =
            auditship_core::seal::seal_in_place(&mut payload, &auditship_core::seal::GENESIS);
        Ev {
            agent: agent.into(),
            queue,
            seq,
            ts: 1_700_000_000_000 + seq as i64 * 1000,
            host,
            actor,
            action,
            category,
            outcome,
            ip,
            raw,
            hash,
            payload,
        }
    }

    pub fn new_event(&self) -> NewEvent<'_> {
        NewEvent {
            seq: self.seq,
            payload: &self.payload,
            hash: self.hash,
            prev: auditship_core::seal::GENESIS,
            key: IndexKey {
                ts_millis: self.ts,
                host: self.host.as_deref(),
                actor: self.actor.as_deref(),
                action: &self.action,
                category: &self.category,
                outcome: &self.outcome,
                src_ip: self.ip,
            },
        }
    }

    pub fn stored(&self) -> StoredEvent {
        StoredEvent {
            agent_id: self.agent.clone(),
            queue: self.queue,
            seq: self.seq,
            ts_millis: self.ts,
            leaf: 0,
            payload: self.payload.clone(),
        }
    }

    pub fn matches(&self, q: &Query) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        q.since_millis.is_none_or(|s| self.ts >= s)
            && q.until_millis.is_none_or(|u| self.ts < u)
            && eq(&q.host, self.host.as_deref())
            && eq(&q.actor, self.actor.as_deref())
            && eq(&q.action, Some(&self.action))
            && eq(&q.category, Some(&self.category))
            && eq(&q.outcome, Some(&self.outcome))
            && q.src
                .is_none_or(|n| self.ip.is_some_and(|ip| n.contains(ip)))
            && q.text.as_deref().is_none_or(|t| self.raw.contains(t))
    }
}

/// Appends `evs` (one agent and queue) and commits.
pub(super) fn put(w: &mut SegmentWriter, evs: &[Ev]) {
    append(w, evs);
    w.commit().unwrap();
}

pub(super) fn append(w: &mut SegmentWriter, evs: &[Ev]) {
    let news: Vec<_> = evs.iter().map(Ev::new_event).collect();
    w.append(&evs[0].agent, evs[0].queue, &news).unwrap();
}

pub(super) fn batch(agent: &str, queue: u64, seqs: std::ops::Range<u64>) -> Vec<Ev> {
    seqs.map(|s| Ev::new(agent, queue, s)).collect()
}

pub(super) fn config(dir: &Path, segment_bytes: u64) -> SegmentConfig {
    SegmentConfig {
        dir: dir.to_path_buf(),
        segment_bytes,
        keys: None,
    }
}

/// Every matching event, newest first, following cursors.
pub(super) fn query_all(r: &SegmentReader, q: &Query) -> Vec<StoredEvent> {
    let mut q = q.clone();
    let mut out = Vec::new();
    loop {
        let page = r.query(&q).unwrap();
        assert!(page.events.len() <= q.limit);
        // Leaf numbering is checked on its own; Ev::stored() leaves it 0.
        out.extend(
            page.events
                .into_iter()
                .map(|e| StoredEvent { leaf: 0, ..e }),
        );
        match page.next {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
}

pub(super) fn all(limit: usize) -> Query {
    Query {
        limit,
        ..Query::default()
    }
}

/// Watermarks after storing `evs` in order.
pub(super) fn marks_of(evs: &[Ev]) -> HashMap<String, Watermark> {
    let mut m = HashMap::new();
    for e in evs {
        recover::advance(&mut m, &e.agent, e.queue, e.seq, e.hash);
    }
    m
}

pub(super) fn newest_first(evs: &[Ev]) -> Vec<StoredEvent> {
    evs.iter().rev().map(Ev::stored).collect()
}

/// A store with several segments: agents a and b, b switching queue.
pub(super) fn populated(
    dir: &Path,
    segment_bytes: u64,
) -> (SegmentWriter, Arc<SegmentReader>, Vec<Ev>) {
    populated_with(config(dir, segment_bytes))
}

/// [`populated`] with any config (e.g. encryption on).
pub(super) fn populated_with(cfg: SegmentConfig) -> (SegmentWriter, Arc<SegmentReader>, Vec<Ev>) {
    let (mut w, r, _) = open(cfg).unwrap();
    let mut stored = Vec::new();
    for round in 0..12u64 {
        let a = batch("agent-a", 1, round * 10 + 1..round * 10 + 11);
        let queue = if round < 6 { 7 } else { 8 };
        let b = batch("agent-b", queue, round * 5 + 1..round * 5 + 6);
        append(&mut w, &a);
        append(&mut w, &b);
        w.commit().unwrap();
        stored.extend(a);
        stored.extend(b);
    }
    (w, r, stored)
}

#[test]
fn committed_events_watermarks_and_queries_survive_reopen_and_uncommitted_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, r, stored) = populated(dir.path(), 4096);
    assert_eq!(w.watermarks(), &marks_of(&stored));
    let b60 = stored.iter().rfind(|e| e.agent == "agent-b").unwrap().hash;
    assert_eq!(
        w.watermarks()["agent-b"],
        Watermark {
            queue: 8,
            seq: 60,
            head: b60
        }
    );
    // Leaves number the events 0.. in commit order, across reopen.
    let mut leaves = Vec::new();
    r.for_each_from(0, &mut |leaf, payload| {
        leaves.push((leaf, payload.payload().unwrap_or_default().to_vec()));
        Ok(())
    })
    .unwrap();
    assert_eq!(leaves.len(), stored.len());
    for (i, (leaf, payload)) in leaves.iter().enumerate() {
        assert_eq!(*leaf, i as u64);
        assert_eq!(payload, &stored[i].payload);
    }
    let mut tail = Vec::new();
    r.for_each_from(100, &mut |leaf, _| {
        tail.push(leaf);
        Ok(())
    })
    .unwrap();
    assert_eq!(tail, (100..stored.len() as u64).collect::<Vec<_>>());
    assert_eq!(query_all(&r, &all(13)), newest_first(&stored));
    let stats = r.stats();
    assert_eq!(stats.events, stored.len() as u64);
    assert!(stats.segments > 3, "{stats:?}");
    // Appended, never committed.
    append(&mut w, &batch("agent-a", 1, 121..131));
    append(&mut w, &batch("agent-c", 3, 1..4));
    assert_eq!(
        query_all(&r, &all(50)).len(),
        stored.len(),
        "uncommitted visible"
    );
    drop((w, r));

    let (w, r, rec) = open(config(dir.path(), 4096)).unwrap();
    assert_eq!(rec.events, stored.len() as u64);
    assert_eq!(rec.truncated_bytes, 0);
    assert!(rec.quarantined.is_empty());
    assert_eq!(rec.indexes_rebuilt, 0);
    assert_eq!(w.watermarks(), &marks_of(&stored));
    assert!(!w.watermarks().contains_key("agent-c"));
    assert_eq!(query_all(&r, &all(7)), newest_first(&stored));
    assert_eq!(r.stats().events, stats.events);
}

#[test]
fn appends_continue_in_the_newest_segment_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    // Segments large enough that nothing rotates.
    let (w, r, mut stored) = populated(dir.path(), 1 << 20);
    let segments = r.stats().segments;
    assert_eq!(segments, 1);
    drop((w, r));
    let (mut w, r, _) = open(config(dir.path(), 1 << 20)).unwrap();
    let more = batch("agent-a", 1, 121..123);
    put(&mut w, &more);
    stored.extend(more);
    assert_eq!(r.stats().segments, segments);
    assert_eq!(query_all(&r, &all(9)), newest_first(&stored));
    drop((w, r));
    let (w, r, _) = open(config(dir.path(), 1 << 20)).unwrap();
    assert_eq!(query_all(&r, &all(100)), newest_first(&stored));
    assert_eq!(w.watermarks(), &marks_of(&stored));
    assert_eq!(
        w.size(),
        stored.len() as u64,
        "leaves continue across reopen"
    );
}

#[test]
fn a_new_queue_replaces_the_agents_watermark_even_with_lower_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _r, _) = open(config(dir.path(), 4096)).unwrap();
    put(&mut w, &batch("a", 1, 100..105));
    let b = batch("a", 2, 1..3);
    put(&mut w, &b);
    let want = Watermark {
        queue: 2,
        seq: 2,
        head: b[1].hash,
    };
    assert_eq!(w.watermarks()["a"], want);
    drop(w);
    let (w, _r, _) = open(config(dir.path(), 4096)).unwrap();
    assert_eq!(w.watermarks()["a"], want);
}

pub(super) fn copy_dir(from: &Path, to: &Path) {
    for sub in ["segments", "quarantine"] {
        let (f, t) = (from.join(sub), to.join(sub));
        fs::create_dir_all(&t).unwrap();
        if let Ok(rd) = fs::read_dir(&f) {
            for e in rd {
                let e = e.unwrap();
                fs::copy(e.path(), t.join(e.file_name())).unwrap();
            }
        }
    }
}

pub(super) fn newest_segment(dir: &Path) -> std::path::PathBuf {
    let nos = recover::list_segments(&dir.join("segments")).unwrap();
    recover::segment_path(&dir.join("segments"), *nos.last().unwrap())
}

#[test]
fn cutting_the_newest_segment_anywhere_leaves_a_committed_prefix_and_its_watermarks() {
    let dir = tempfile::tempdir().unwrap();
    let (w, r, stored) = populated(dir.path(), 4096);
    drop((w, r));
    let newest = newest_segment(dir.path());
    let len = fs::metadata(&newest).unwrap().len();
    let sealed_events = {
        let nos = recover::list_segments(&dir.path().join("segments")).unwrap();
        nos.len() as u64 - 1
    };
    assert!(sealed_events > 0);
    let mut seen_lengths = std::collections::BTreeSet::new();
    for cut in 0..=len {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let f = fs::OpenOptions::new()
            .write(true)
            .open(newest_segment(copy.path()))
            .unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        let (w, r, rec) = open(config(copy.path(), 4096)).unwrap();
        assert!(rec.quarantined.is_empty(), "cut {cut}: {rec:?}");
        let got = query_all(&r, &all(1000));
        let n = got.len();
        assert_eq!(got, newest_first(&stored[..n]), "cut {cut}: not a prefix");
        assert_eq!(w.watermarks(), &marks_of(&stored[..n]), "cut {cut}");
        assert_eq!(r.stats().events, n as u64);
        seen_lengths.insert(n);
        // The store keeps working after the cut.
        drop(r);
        let mut w = w;
        put(&mut w, &batch("agent-z", 1, 1..3));
    }
    // Cuts inside the newest segment lose at most its events.
    assert!(seen_lengths.len() > 5, "{seen_lengths:?}");
    assert_eq!(*seen_lengths.last().unwrap(), stored.len());
}

#[test]
fn a_flipped_byte_in_the_newest_segment_quarantines_one_record_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (w, r, stored) = populated(dir.path(), 1 << 20);
    drop((w, r));
    let newest = newest_segment(dir.path());
    let mut data = fs::read(&newest).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0x10;
    fs::write(&newest, &data).unwrap();
    let (w, r, rec) = open(config(dir.path(), 1 << 20)).unwrap();
    assert_eq!(rec.quarantined.len(), 1, "{rec:?}");
    assert_eq!(rec.truncated_bytes, 0);
    let q = &rec.quarantined[0];
    assert!(q.file.as_ref().is_some_and(|f| f.exists()));
    assert_eq!(r.stats().quarantined, 1);
    let got = query_all(&r, &all(10));
    assert_eq!(got.len(), stored.len() - 1);
    let lost: Vec<_> = newest_first(&stored)
        .into_iter()
        .filter(|e| !got.contains(e))
        .collect();
    assert_eq!(lost.len(), 1);
    // The lost event was not the last of its agent, so the watermarks hold.
    assert_eq!(w.watermarks(), &marks_of(&stored));
}

#[test]
fn a_flipped_byte_in_a_sealed_segment_is_skipped_and_counted_once_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let (w, r, stored) = populated(dir.path(), 4096);
    drop((w, r));
    let seg = recover::segment_path(&dir.path().join("segments"), 1);
    let mut data = fs::read(&seg).unwrap();
    let at = data.len() - 100;
    data[at] ^= 0x01;
    fs::write(&seg, &data).unwrap();
    let (_w, r, rec) = open(config(dir.path(), 4096)).unwrap();
    assert!(
        rec.quarantined.is_empty(),
        "sealed segments are not read at open"
    );
    let got = query_all(&r, &all(10));
    assert_eq!(got.len(), stored.len() - 1);
    assert_eq!(r.stats().quarantined, 1);
    assert_eq!(query_all(&r, &all(10)).len(), stored.len() - 1);
    assert_eq!(r.stats().quarantined, 1, "counted once");
    assert_eq!(
        fs::read_dir(dir.path().join("quarantine")).unwrap().count(),
        1
    );
}

/// Bytes of segment and index files.
fn disk_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// A small tmpfs, when the tests run as root; `None` elsewhere.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[test]
fn a_full_disk_rolls_the_commit_back_and_a_later_commit_succeeds() {
    let Some(fs_) = Tmpfs::mount("1m") else {
        eprintln!("skipped: cannot mount a tmpfs (not root?)");
        return;
    };
    let root = fs_.0.path();
    let dir = root.join("store");
    let (mut w, r, _) = open(config(&dir, 64 << 10)).unwrap();
    // Ballast to free later.
    fs::write(root.join("ballast"), vec![0u8; 256 << 10]).unwrap();
    let mut stored = Vec::new();
    let mut seq = 1;
    let full = loop {
        let evs = batch("a", 1, seq..seq + 50);
        seq += 50;
        append(&mut w, &evs);
        match w.commit() {
            Ok(()) => stored.extend(evs),
            Err(e) => break e,
        }
        assert!(seq < 100_000, "never filled up");
    };
    assert!(matches!(full, StoreError::Full { .. }), "{full:?}");
    // Nothing of the failed commit is left on disk.
    assert_eq!(disk_bytes(&dir), r.stats().bytes);
    assert_eq!(w.watermarks(), &marks_of(&stored));
    assert_eq!(r.stats().events, stored.len() as u64);
    assert_eq!(query_all(&r, &all(500)), newest_first(&stored));
    // Still full: fails again, still consistent.
    let evs = batch("a", 1, seq..seq + 50);
    append(&mut w, &evs);
    assert!(matches!(w.commit(), Err(StoreError::Full { .. })));
    assert_eq!(disk_bytes(&dir), r.stats().bytes);
    // Space returns: the same events commit.
    fs::remove_file(root.join("ballast")).unwrap();
    append(&mut w, &evs);
    w.commit().unwrap();
    stored.extend(evs);
    assert_eq!(query_all(&r, &all(500)), newest_first(&stored));
    drop((w, r));
    let (w, r, rec) = open(config(&dir, 64 << 10)).unwrap();
    assert!(
        rec.quarantined.is_empty() && rec.truncated_bytes == 0,
        "{rec:?}"
    );
    assert_eq!(query_all(&r, &all(500)), newest_first(&stored));
    assert_eq!(w.watermarks(), &marks_of(&stored));
}

#[test]
fn segment_bytes_out_of_range_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(open(config(dir.path(), 100)).is_err());
    assert!(open(config(dir.path(), 2 << 30)).is_err());
}
