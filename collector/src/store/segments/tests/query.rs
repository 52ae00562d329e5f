//! Queries: every filter against a full scan, paging, index rebuilds.

use std::fs;

use auditship_core::cidr::IpNet;

use super::*;

fn sample_queries() -> Vec<Query> {
    let base = || Query {
        limit: 4,
        ..Query::default()
    };
    let t0 = 1_700_000_000_000;
    vec![
        Query {
            host: Some("h3".into()),
            ..base()
        },
        Query {
            actor: Some("u2".into()),
            ..base()
        },
        Query {
            action: Some("sudo".into()),
            ..base()
        },
        Query {
            category: Some("process".into()),
            ..base()
        },
        Query {
            outcome: Some("failure".into()),
            ..base()
        },
        Query {
            outcome: Some("no-such".into()),
            ..base()
        },
        Query {
            since_millis: Some(t0 + 20_000),
            until_millis: Some(t0 + 45_000),
            ..base()
        },
        Query {
            until_millis: Some(t0 + 3_000),
            ..base()
        },
        Query {
            src: Some(IpNet::parse("10.0.1.0/24").unwrap()),
            ..base()
        },
        Query {
            src: Some(IpNet::parse("2001:db8::/32").unwrap()),
            ..base()
        },
        Query {
            text: Some("tag3".into()),
            ..base()
        },
        Query {
            text: Some("said \"hi\"\\".into()),
            ..base()
        },
        Query {
            text: Some("line".into()),
            actor: Some("u1".into()),
            action: Some("login".into()),
            ..base()
        },
        Query {
            host: Some("h1".into()),
            category: Some("authentication".into()),
            src: Some(IpNet::parse("10.0.0.0/8").unwrap()),
            since_millis: Some(t0 + 10_000),
            ..base()
        },
        Query {
            host: Some("h1".into()),
            actor: Some("u6".into()),
            outcome: Some("success".into()),
            ..base()
        },
    ]
}

pub(super) fn check_queries(r: &SegmentReader, stored: &[Ev]) {
    for q in sample_queries() {
        let want: Vec<_> = stored
            .iter()
            .rev()
            .filter(|e| e.matches(&q))
            .map(Ev::stored)
            .collect();
        assert_eq!(query_all(r, &q), want, "{q:?}");
    }
}

#[test]
fn every_filter_matches_what_a_full_scan_finds() {
    let dir = tempfile::tempdir().unwrap();
    let (_w, r, stored) = populated(dir.path(), 4096);
    // The filters are selective but not empty.
    for q in sample_queries() {
        let n = stored.iter().filter(|e| e.matches(&q)).count();
        if q.outcome.as_deref() != Some("no-such") {
            assert!(n > 0 && n < stored.len(), "{q:?} matches {n}");
        }
    }
    check_queries(&r, &stored);
}

#[test]
fn paging_across_segments_while_ingest_appends_has_no_duplicates_or_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, r, mut stored) = populated(dir.path(), 4096);
    for q in [
        all(7),
        Query {
            actor: Some("u3".into()),
            limit: 3,
            ..Query::default()
        },
    ] {
        let snapshot: Vec<_> = stored
            .iter()
            .rev()
            .filter(|e| e.matches(&q))
            .map(Ev::stored)
            .collect();
        let mut got = Vec::new();
        let mut q = q.clone();
        let mut next_seq = 1000 + stored.len() as u64;
        loop {
            let page = r.query(&q).unwrap();
            got.extend(
                page.events
                    .into_iter()
                    .map(|e| StoredEvent { leaf: 0, ..e }),
            );
            // Ingest appends (and rotates segments) between pages.
            let more = batch("agent-a", 1, next_seq..next_seq + 15);
            next_seq += 15;
            put(&mut w, &more);
            stored.extend(more);
            match page.next {
                Some(c) => q.cursor = Some(Cursor::decode(&c.encode()).unwrap()),
                None => break,
            }
        }
        assert_eq!(got, snapshot);
    }
}

#[test]
fn bad_cursor_and_zero_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_w, r, _) = populated(dir.path(), 4096);
    let mut q = all(0);
    assert!(matches!(r.query(&q), Err(StoreError::BadQuery(_))));
    q.limit = 1;
    q.cursor = Some(Cursor {
        segment: 999,
        index: 0,
    });
    assert!(matches!(r.query(&q), Err(StoreError::BadQuery(_))));
}

#[test]
fn a_deleted_or_damaged_index_is_rebuilt_at_open_and_at_query_time() {
    let dir = tempfile::tempdir().unwrap();
    let (w, r, stored) = populated(dir.path(), 4096);
    drop((w, r));
    let segs = dir.path().join("segments");
    let idx1 = recover::index_path(&segs, 1);
    let idx2 = recover::index_path(&segs, 2);
    fs::remove_file(&idx1).unwrap();
    let (w, r, rec) = open(config(dir.path(), 4096)).unwrap();
    assert_eq!(rec.indexes_rebuilt, 1);
    assert_eq!(rec.events, stored.len() as u64);
    assert!(idx1.exists());
    check_queries(&r, &stored);
    // While open: deleted, then a section damaged (the header stays valid).
    fs::remove_file(&idx1).unwrap();
    let mut data = fs::read(&idx2).unwrap();
    let n = data.len();
    data[n - 3] ^= 0xff;
    fs::write(&idx2, &data).unwrap();
    check_queries(&r, &stored);
    assert!(idx1.exists(), "rebuilt at query time");
    let meta = r.shared.lock().sealed[1];
    assert!(index::IndexFile::open(&idx2, 2, meta.len, false, None)
        .unwrap()
        .src()
        .is_ok());
    assert_eq!(r.stats().quarantined, 0);
    drop((w, r));
    // A short index is rebuilt at open.
    let data = fs::read(&idx2).unwrap();
    fs::write(&idx2, &data[..data.len() / 2]).unwrap();
    let (_w, r, rec) = open(config(dir.path(), 4096)).unwrap();
    assert_eq!(rec.indexes_rebuilt, 1);
    check_queries(&r, &stored);
}
