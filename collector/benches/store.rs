//! The store's index: the purpose-built per-segment index against `redb`.
//!
//! Builds one store of `STORE_BENCH_EVENTS` events (default 1,000,000;
//! 50 hosts, 1,000 actors, realistic auth-log payloads from `LineGen`) and,
//! over the same events, a `redb` index (one table of
//! `(field, value, event no)` keys, one of `(ts, event no)`, one of event
//! locations). Prints the one-off ingest costs, then criterion measures:
//!
//! * `index_ingest/*`: indexing 10,000 more events (ours: building entries
//!   and writing a segment's `.idx`; redb: one write transaction into the
//!   1M-event database, not fsynced, like our index).
//! * `query/*`: one page of 100 events, newest first, payloads read from the
//!   segment files in both cases: one actor among 1,000, one host among 50,
//!   and a one-hour time range in the middle of the data.
//! * Encryption at rest: the same events are also stored with
//!   `[store.encryption]` on (one-off append+commit figures over every
//!   event, printed next to the plain ones; not a criterion loop, which
//!   would write gigabytes), and `query/segments_encrypted/*` runs the
//!   queries above on the encrypted store.
//!
//! Run: `CARGO_TARGET_DIR=target cargo bench -p auditship-collector --bench store`

use std::fs::File;
use std::hint::black_box;
use std::net::IpAddr;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Instant;

use auditship_crypt::{Key, Keyring};

use auditship_bench::{Kind, LineGen};
use auditship_collector::store::segments::{self, index, SegmentConfig, SegmentWriter};
use auditship_collector::store::{IndexKey, NewEvent, Query, StoreReader, StoreWriter};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use redb::{Database, Durability, ReadableDatabase, TableDefinition};

const FIELDS: TableDefinition<(u8, &str, u64), ()> = TableDefinition::new("fields");
const TIMES: TableDefinition<(i64, u64), ()> = TableDefinition::new("times");
const LOCS: TableDefinition<u64, (u64, u64, u32)> = TableDefinition::new("locs");

const T0: i64 = 1_790_000_000_000;

struct Gen {
    host: String,
    actor: String,
    action: &'static str,
    category: &'static str,
    outcome: &'static str,
    ip: IpAddr,
    ts: i64,
    payload: Vec<u8>,
}

fn generate(n: usize) -> Vec<Gen> {
    let mut lines = LineGen::new(7);
    let mut line = String::new();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            line.clear();
            lines.line(Kind::Auth, &mut line);
            let r = next();
            let host = format!("host-{:02}", r % 50);
            let actor = format!("user{:04}", (r >> 8) % 1000);
            let action = [
                "ssh_login",
                "sudo_command",
                "session_opened",
                "user_created",
            ][(r >> 20) as usize % 4];
            let category = ["authentication", "process", "session", "iam"][(r >> 20) as usize % 4];
            let outcome = ["success", "failure", "unknown"][(r >> 24) as usize % 3];
            let ip = IpAddr::from([10, (r >> 32) as u8, (r >> 40) as u8, (r >> 48) as u8]);
            let ts = T0 + i as i64 * 100; // ten events a second
            let payload = serde_json::to_vec(&serde_json::json!({
                "action": action, "actor": {"user": actor}, "agent_id": "web-1",
                "category": category, "host": host, "outcome": outcome, "raw": line,
                "seq": i + 1, "src_ip": ip.to_string(), "target": {}, "ts": null, "v": 1,
            }))
            .unwrap_or_default();
            Gen {
                host,
                actor,
                action,
                category,
                outcome,
                ip,
                ts,
                payload,
            }
        })
        .collect()
}

fn key(g: &Gen) -> IndexKey<'_> {
    IndexKey {
        ts_millis: g.ts,
        host: Some(&g.host),
        actor: Some(&g.actor),
        action: g.action,
        category: g.category,
        outcome: g.outcome,
        src_ip: Some(g.ip),
    }
}

/// (segment, offset, frame length) of every event, read back from the files.
fn locations(dir: &std::path::Path) -> Vec<(u64, u64, u32)> {
    let mut segs: Vec<_> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "seg").then_some(p)
        })
        .collect();
    segs.sort();
    let mut out = Vec::new();
    for (n, p) in segs.iter().enumerate() {
        let data = std::fs::read(p).unwrap();
        let mut at = 24;
        let mut first = true;
        while at + 8 <= data.len() {
            let len = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize + 8;
            if !first {
                out.push((n as u64 + 1, at as u64, len as u32));
            }
            first = false;
            at += len;
        }
    }
    out
}

fn redb_insert(
    db: &Database,
    evs: &[Gen],
    locs: &[(u64, u64, u32)],
    first_no: u64,
    durability: Durability,
) {
    let mut tx = db.begin_write().unwrap();
    tx.set_durability(durability).unwrap();
    {
        let mut fields = tx.open_table(FIELDS).unwrap();
        let mut times = tx.open_table(TIMES).unwrap();
        let mut loc = tx.open_table(LOCS).unwrap();
        let mut ip = String::new();
        for (i, g) in evs.iter().enumerate() {
            let no = first_no + i as u64;
            ip.clear();
            use std::fmt::Write;
            let _ = write!(ip, "{}", g.ip);
            for (f, v) in [&*g.host, &g.actor, g.action, g.category, g.outcome, &ip]
                .into_iter()
                .enumerate()
            {
                fields.insert((f as u8, v, no), ()).unwrap();
            }
            times.insert((g.ts, no), ()).unwrap();
            loc.insert(no, locs[i % locs.len()]).unwrap();
        }
    }
    tx.commit().unwrap();
}

/// One page through redb: event numbers newest first, then the records.
fn redb_page(
    db: &Database,
    dir: &std::path::Path,
    field: Option<(u8, &str)>,
    time: Option<(i64, i64)>,
) -> usize {
    let tx = db.begin_read().unwrap();
    let loc = tx.open_table(LOCS).unwrap();
    let nos: Vec<u64> = match (field, time) {
        (Some((f, v)), _) => {
            let t = tx.open_table(FIELDS).unwrap();
            t.range((f, v, 0)..=(f, v, u64::MAX))
                .unwrap()
                .rev()
                .take(100)
                .map(|r| r.unwrap().0.value().2)
                .collect()
        }
        (None, Some((a, b))) => {
            let t = tx.open_table(TIMES).unwrap();
            t.range((a, 0)..(b, 0))
                .unwrap()
                .rev()
                .take(100)
                .map(|r| r.unwrap().0.value().1)
                .collect()
        }
        _ => Vec::new(),
    };
    let mut files: Vec<Option<File>> = Vec::new();
    let mut bytes = 0;
    for no in nos {
        let (seg, off, len) = loc.get(no).unwrap().unwrap().value();
        let s = seg as usize;
        if files.len() <= s {
            files.resize_with(s + 1, || None);
        }
        let f = files[s].get_or_insert_with(|| {
            File::open(dir.join(format!("segments/{seg:020}.seg"))).unwrap()
        });
        let mut buf = vec![0u8; len as usize];
        f.read_exact_at(&mut buf, off).unwrap();
        assert_eq!(
            crc32c::crc32c(&buf[8..]),
            u32::from_le_bytes(buf[4..8].try_into().unwrap())
        );
        bytes += buf.len();
    }
    bytes
}

fn bench(c: &mut Criterion) {
    let n: usize = std::env::var("STORE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let evs = generate(n);
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dir = tmp.path().join("store");

    // Our store, end to end: append + commit in groups of 1,000.
    let (mut w, reader, _) = segments::open(SegmentConfig::new(&dir)).unwrap();
    let (store_ns, append_ns) = fill(&mut w, &evs);
    // The same, encrypted at rest.
    let keys = Arc::new(Keyring::new(Key::from_bytes([7; 32]), []));
    let enc_cfg = SegmentConfig {
        keys: Some(keys),
        ..SegmentConfig::new(tmp.path().join("store-enc"))
    };
    let (mut ew, enc_reader, _) = segments::open(enc_cfg).unwrap();
    let (enc_store_ns, enc_append_ns) = fill(&mut ew, &evs);
    // Our index alone: entries for every event, one .idx per 64 MiB worth.
    let t = Instant::now();
    let per_segment = n.div_ceil(reader.stats().segments as usize);
    for (s, chunk) in evs.chunks(per_segment).enumerate() {
        let mut b = index::Builder::default();
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, g)| b.entry(&key(g), i as u32, 0, |_, _| {}))
            .collect();
        index::write(
            &tmp.path().join(format!("x{s}.idx")),
            0,
            0,
            &b.dicts,
            &[&entries],
            None,
        )
        .unwrap();
    }
    let ours_ns = t.elapsed().as_nanos() as f64 / n as f64;
    let locs = locations(&dir);
    assert_eq!(locs.len(), n);
    let db = Database::create(tmp.path().join("index.redb")).unwrap();
    let t = Instant::now();
    for (b, chunk) in evs.chunks(10_000).enumerate() {
        let d = if (b + 1) * 10_000 >= n {
            Durability::Immediate
        } else {
            Durability::None
        };
        redb_insert(&db, chunk, &locs[b * 10_000..], (b * 10_000) as u64, d);
    }
    let redb_ns = t.elapsed().as_nanos() as f64 / n as f64;
    let size = |p: &str| {
        std::fs::read_dir(tmp.path().join(p)).map_or(0, |d| {
            d.map(|e| e.unwrap().metadata().unwrap().len()).sum::<u64>()
        })
    };
    eprintln!(
        "{n} events, {} segments: store append+commit {store_ns:.0} ns/event (append alone {append_ns:.0}); index build ours {ours_ns:.0} ns/event, redb {redb_ns:.0} ns/event; \
         store dir {} MB, redb file {} MB",
        reader.stats().segments,
        size("store/segments") >> 20,
        std::fs::metadata(tmp.path().join("index.redb")).unwrap().len() >> 20
    );
    eprintln!(
        "encrypted store: append+commit {enc_store_ns:.0} ns/event (append alone {enc_append_ns:.0}; in the clear {store_ns:.0} and {append_ns:.0}); \
         store dir {} MB",
        size("store-enc/segments") >> 20
    );

    let mut g = c.benchmark_group("index_ingest");
    g.throughput(criterion::Throughput::Elements(10_000));
    let extra = &evs[..10_000.min(n)];
    g.bench_function("segments_10k", |bch| {
        bch.iter(|| {
            let mut b = index::Builder::default();
            let entries: Vec<_> = extra
                .iter()
                .enumerate()
                .map(|(i, g)| b.entry(&key(g), i as u32, 0, |_, _| {}))
                .collect();
            index::write(&tmp.path().join("y.idx"), 0, 0, &b.dicts, &[&entries], None).unwrap()
        })
    });
    let mut next_no = n as u64;
    g.bench_function("redb_10k", |bch| {
        bch.iter_batched(
            || {
                next_no += 10_000;
                next_no
            },
            |no| redb_insert(&db, extra, &locs, no, Durability::None),
            BatchSize::PerIteration,
        )
    });
    g.finish();

    let actor = evs[n / 2].actor.clone();
    let host = evs[n / 3].host.clone();
    let (from, to) = (
        T0 + (n as i64 / 2) * 100,
        T0 + (n as i64 / 2) * 100 + 3_600_000,
    );
    let q = |f: &dyn Fn(&mut Query)| {
        let mut q = Query {
            limit: 100,
            ..Query::default()
        };
        f(&mut q);
        q
    };
    let by_actor = q(&|q| q.actor = Some(actor.clone()));
    let by_host = q(&|q| q.host = Some(host.clone()));
    let by_time = q(&|q| {
        q.since_millis = Some(from);
        q.until_millis = Some(to);
    });
    // Sanity: both return full pages.
    let want = evs.iter().filter(|g| g.actor == actor).count().min(100);
    assert_eq!(reader.query(&by_actor).unwrap().events.len(), want);
    assert_eq!(reader.query(&by_time).unwrap().events.len(), 100.min(n / 2));
    assert!(redb_page(&db, &dir, Some((1, &actor)), None) > 0);
    let mut g = c.benchmark_group("query");
    g.bench_function("segments/actor_1_of_1000", |b| {
        b.iter(|| black_box(reader.query(&by_actor).unwrap()))
    });
    g.bench_function("redb/actor_1_of_1000", |b| {
        b.iter(|| black_box(redb_page(&db, &dir, Some((1, &actor)), None)))
    });
    g.bench_function("segments/host_1_of_50", |b| {
        b.iter(|| black_box(reader.query(&by_host).unwrap()))
    });
    g.bench_function("redb/host_1_of_50", |b| {
        b.iter(|| black_box(redb_page(&db, &dir, Some((0, &host)), None)))
    });
    g.bench_function("segments/time_1h", |b| {
        b.iter(|| black_box(reader.query(&by_time).unwrap()))
    });
    g.bench_function("redb/time_1h", |b| {
        b.iter(|| black_box(redb_page(&db, &dir, None, Some((from, to)))))
    });
    assert_eq!(enc_reader.query(&by_actor).unwrap().events.len(), want);
    g.bench_function("segments_encrypted/actor_1_of_1000", |b| {
        b.iter(|| black_box(enc_reader.query(&by_actor).unwrap()))
    });
    g.bench_function("segments_encrypted/host_1_of_50", |b| {
        b.iter(|| black_box(enc_reader.query(&by_host).unwrap()))
    });
    g.bench_function("segments_encrypted/time_1h", |b| {
        b.iter(|| black_box(enc_reader.query(&by_time).unwrap()))
    });
    g.finish();
}

/// Appends `evs` as agent `agent` from `seq + 1` on; returns the last seq.
fn append(w: &mut SegmentWriter, agent: &str, seq: u64, evs: &[Gen]) -> u64 {
    let news: Vec<_> = evs
        .iter()
        .enumerate()
        .map(|(i, g)| NewEvent {
            seq: seq + 1 + i as u64,
            payload: &g.payload,
            hash: [0; 32],
            // Not a sealed payload for these hashes: stored as it is (kind 1).
            prev: [0; 32],
            key: key(g),
        })
        .collect();
    w.append(agent, 1, &news).unwrap();
    seq + evs.len() as u64
}

/// Stores every event, committing every 1,000: (ns per event for append
/// and commit, ns per event for append alone).
fn fill(w: &mut SegmentWriter, evs: &[Gen]) -> (f64, f64) {
    let t = Instant::now();
    let mut appending = std::time::Duration::ZERO;
    for (b, chunk) in evs.chunks(1000).enumerate() {
        let a = Instant::now();
        append(w, "web-1", (b * 1000) as u64, chunk);
        appending += a.elapsed();
        w.commit().unwrap();
    }
    let n = evs.len() as f64;
    (
        t.elapsed().as_nanos() as f64 / n,
        appending.as_nanos() as f64 / n,
    )
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
