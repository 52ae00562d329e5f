//! Tests of segment rewrites (retention's expiry): crashes, recovery,
//! queries and leaf walks over expired records.

use std::collections::BTreeSet;

use super::*;
use crate::store::segments::rewrite::{CrashPoint, Maintenance};
use crate::store::Leaf;

/// Leaf hashes of the whole store, in leaf order.
fn leaf_hashes(r: &SegmentReader) -> Vec<(u64, auditship_core::Hash, bool)> {
    let mut out = Vec::new();
    r.for_each_from(0, &mut |leaf, stored| {
        out.push((leaf, stored.leaf_hash(), matches!(stored, Leaf::Expired(_))));
        Ok(())
    })
    .unwrap();
    out
}

fn seg_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().to_string(), p))
        .collect();
    v.sort();
    v.into_iter()
        .filter(|(n, _)| n.ends_with(".seg"))
        .map(|(n, p)| (n, fs::read(p).unwrap()))
        .collect()
}

/// Expires every event of agent-a in the first sealed segment; returns
/// the leaves expired.
fn expire_agent_a(m: &Maintenance, r: &SegmentReader, crash: CrashPoint) -> BTreeSet<u64> {
    let first = m.sealed()[0];
    let data = m.read(first.no).unwrap();
    let mut leaves = BTreeSet::new();
    crate::store::segments::walk::records(&data, first.no, None, &mut |rec| {
        if let crate::store::segments::walk::Record::Event { agent, leaf, .. } = rec {
            if agent == "agent-a" {
                leaves.insert(leaf);
            }
        }
    })
    .unwrap();
    assert!(!leaves.is_empty());
    let tomb = r.stats().events + 1000;
    let done = m
        .rewrite_until(
            first.no,
            &data,
            &|l| leaves.contains(&l).then_some(tomb),
            crash,
        )
        .unwrap();
    assert_eq!(done.expired, leaves.len() as u64);
    assert!(done.new_len < done.old_len);
    leaves
}

#[test]
fn a_rewrite_crashed_before_its_rename_leaves_the_original_and_the_temp_file_is_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (w, r, stored) = populated(dir.path(), 4096);
    let before = seg_files(dir.path());
    let m = r.maintenance();
    assert!(m.sealed().len() >= 3);
    expire_agent_a(&m, &r, CrashPoint::AfterTemp);
    let temps: Vec<_> = fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(crate::store::segments::rewrite::TEMP_SUFFIX))
        .collect();
    assert_eq!(temps.len(), 1, "the crash left its temporary file");
    assert_eq!(seg_files(dir.path()), before, "the original is intact");
    drop((w, r));
    let (_w, r, _) = open(config(dir.path(), 4096)).unwrap();
    assert!(fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(crate::store::segments::rewrite::TEMP_SUFFIX)));
    assert_eq!(query_all(&r, &all(7)), newest_first(&stored));
}

#[test]
fn expired_records_keep_their_leaves_through_queries_walks_recovery_and_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (w, r, stored) = populated(dir.path(), 4096);
    let hashes = leaf_hashes(&r);
    let m = r.maintenance();
    let first = m.sealed()[0];
    let expired = expire_agent_a(&m, &r, CrashPoint::None);

    // Queries see the rest; the segment's index was rebuilt at once.
    let leaf_of = |e: &Ev| {
        stored
            .iter()
            .position(|s| s.agent == e.agent && s.seq == e.seq && s.queue == e.queue)
            .unwrap() as u64
    };
    let kept: Vec<Ev> = stored
        .iter()
        .filter(|e| !expired.contains(&leaf_of(e)))
        .cloned()
        .collect();
    assert_eq!(query_all(&r, &all(5)), newest_first(&kept));
    let q = Query {
        actor: Some("u1".into()),
        limit: 3,
        ..Query::default()
    };
    let want: Vec<_> = newest_first(&kept)
        .into_iter()
        .filter(|e| String::from_utf8_lossy(&e.payload).contains("\"user\":\"u1\""))
        .collect();
    assert_eq!(query_all(&r, &q).len(), want.len());
    let idx = fs::metadata(dir.path().join(format!("segments/{:020}.idx", first.no))).unwrap();
    assert!(idx.len() > 0);
    assert_eq!(m.sealed()[0].entries, first.entries - expired.len() as u64);

    // Leaf walks give the same leaf hashes, the expired ones as such.
    let after = leaf_hashes(&r);
    assert_eq!(after.len(), hashes.len());
    for (a, b) in after.iter().zip(&hashes) {
        assert_eq!((a.0, a.1), (b.0, b.1), "leaf {} changed", a.0);
        assert_eq!(a.2, expired.contains(&a.0));
    }

    // Recovery: reopen (index deleted too), appends continue at the next leaf.
    drop((w, r));
    fs::remove_file(dir.path().join(format!("segments/{:020}.idx", first.no))).unwrap();
    let (mut w, r, rec) = open(config(dir.path(), 4096)).unwrap();
    assert_eq!(rec.indexes_rebuilt, 1);
    assert!(rec.quarantined.is_empty());
    assert_eq!(w.size(), stored.len() as u64);
    assert_eq!(w.watermarks(), &marks_of(&stored));
    assert_eq!(query_all(&r, &all(50)), newest_first(&kept));
    let more = batch("agent-a", 1, 121..124);
    put(&mut w, &more);
    let walked = leaf_hashes(&r);
    assert_eq!(walked.len(), stored.len() + 3);
    assert_eq!(walked.last().unwrap().0, stored.len() as u64 + 2);

    // A second rewrite of the same segment expires nothing new.
    let m = r.maintenance();
    let data = m.read(first.no).unwrap();
    let again = m
        .rewrite(first.no, &data, &|l| expired.contains(&l).then_some(9999))
        .unwrap();
    assert_eq!(again.expired, 0);
    // The active segment is never rewritten.
    let active = m.sealed().last().unwrap().no + 1;
    assert!(m.rewrite(active, &[], &|_| Some(1)).is_err());
}

#[test]
fn queries_running_during_rewrites_never_read_a_stale_offset() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let (_w, r, stored) = populated(dir.path(), 4096);
    let payloads: std::collections::HashSet<Vec<u8>> =
        stored.iter().map(|e| e.payload.clone()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let (reader, halt) = (r.clone(), stop.clone());
    let querying = std::thread::spawn(move || {
        let mut rounds = 0u64;
        while !halt.load(Ordering::Relaxed) || rounds == 0 {
            for e in query_all(&reader, &all(4)) {
                assert!(
                    payloads.contains(&e.payload),
                    "a query returned bytes that are no event"
                );
            }
            rounds += 1;
        }
        rounds
    });
    let m = r.maintenance();
    let mut expired = 0;
    for seg in m.sealed() {
        let data = m.read(seg.no).unwrap();
        let odd = |l: u64| (l % 2 == 1).then_some(1_000_000);
        expired += m.rewrite(seg.no, &data, &odd).unwrap().expired;
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = querying.join().unwrap();
    assert!(rounds > 0 && expired > 0);
    assert_eq!(
        r.stats().quarantined,
        0,
        "a query read a record at a stale offset"
    );
    let left = query_all(&r, &all(100));
    assert_eq!(left.len() as u64, stored.len() as u64 - expired);
}
