//! The collector's per-event decoding cost on a realistic batch: 5,000
//! events (three nginx access lines to one auth line, as the load generator
//! `bench/load` sends), parsed by the real parsers, canonically encoded with
//! `seq`, `agent_id` and `observed_ts`, chained and framed as a wire batch.
//!
//! * `view/serde`: the indexed fields through serde_json's derived
//!   `Deserialize` (the collector's path before the hand-written scanner);
//! * `view/scan`: the same fields through [`EventView::parse`];
//! * `batch/decode`: all of [`wire::decode`] (header, views, chain hashes);
//! * `batch/seal`: writing every event in its sealed form, as the
//!   collector's ingest does after decoding;
//! * `compress/zstd1`, `compress/gzip1`: the agent's compression of the
//!   batch's events at the default levels (throughput in input bytes; the
//!   compressed size is printed once).
//!
//! Run with `cargo bench -p auditship-core --bench wire`.

use auditship_bench::{Kind, LineGen};
use auditship_core::identity::Identity;
use auditship_core::seal::{self, GENESIS};
use auditship_core::wire::{self, BatchHeader, EventView};
use auditship_core::{canonical, hex, Timestamp};
use auditship_plugins::{Parser, ParserOptions};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const EVENTS: usize = 5_000;

/// A batch of `EVENTS` events: its signed header and its canonical
/// events, one per line.
fn batch() -> (BatchHeader, Vec<u8>) {
    let mut parser = Parser::new(&ParserOptions::default()).expect("parser");
    let mut gen = LineGen::new(11);
    let reference = Timestamp::from_civil(2026, 11, 22, 8, 0, 0, 0, 0).expect("time");
    let observed = Timestamp::from_civil(2026, 11, 22, 8, 0, 1, 250_000_000, 0).expect("time");
    let mut ndjson = Vec::new();
    let mut chain = GENESIS;
    let mut line = String::new();
    for i in 0..EVENTS {
        line.clear();
        let kind = if i % 4 == 3 {
            Kind::Auth
        } else {
            Kind::NginxCombined
        };
        gen.line(kind, &mut line);
        let mut ev = parser.parse_at(line.as_bytes(), reference);
        ev.seq = Some(i as u64 + 1);
        ev.agent_id = Some("web-1".into());
        ev.observed_ts = Some(observed);
        let start = ndjson.len();
        canonical::encode_into(&ev, &mut ndjson);
        chain = seal::chain_hash(&chain, &ndjson[start..]);
        ndjson.push(b'\n');
    }
    let mut header = BatchHeader {
        auditship_batch: wire::WIRE_VERSION,
        agent_id: "web-1".into(),
        queue: wire::format_queue(0x10ad),
        first: 1,
        last: EVENTS as u64,
        events: EVENTS as u64,
        prev_hash: hex::encode(&GENESIS),
        last_hash: hex::encode(&chain),
        key: String::new(),
        sig: String::new(),
        pipelined: false,
    };
    header.sign(&Identity::from_seed([0x1a; 32]));
    (header, ndjson)
}

fn bench(c: &mut Criterion) {
    let (header, ndjson) = batch();
    let body = wire::encode(&header, &ndjson, wire::Compression::None);
    let lines: Vec<&[u8]> = body
        .split(|&b| b == b'\n')
        .skip(1)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), EVENTS);
    eprintln!(
        "batch: {EVENTS} events, {} bytes, {:.0} bytes per event",
        body.len(),
        body.len() as f64 / EVENTS as f64
    );

    let mut group = c.benchmark_group("view");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("serde", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for l in &lines {
                let v: EventView<'_> = serde_json::from_slice(l).expect("event");
                n += v.raw.len();
            }
            std::hint::black_box(n)
        })
    });
    group.bench_function("scan", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for l in &lines {
                let v = EventView::parse(l).expect("event");
                n += v.raw.len();
            }
            std::hint::black_box(n)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("batch");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            let d = wire::decode(&body).expect("batch");
            std::hint::black_box(d.events.len())
        })
    });
    let decoded = wire::decode(&body).expect("batch");
    let mut sealed = Vec::with_capacity(body.len() + EVENTS * seal::SUFFIX_LEN);
    group.bench_function("seal", |b| {
        b.iter(|| {
            sealed.clear();
            let mut prev = decoded.prev_hash;
            for e in &decoded.events {
                seal::write_sealed(&mut sealed, e.bytes, &e.hash, &prev);
                prev = e.hash;
            }
            std::hint::black_box(sealed.len())
        })
    });
    group.finish();

    let mut group = c.benchmark_group("compress");
    group.throughput(Throughput::Bytes(ndjson.len() as u64));
    for (name, comp) in [
        ("zstd1", wire::Compression::Zstd(1)),
        ("gzip1", wire::Compression::Gzip(1)),
    ] {
        eprintln!(
            "{name}: {} -> {} bytes",
            ndjson.len(),
            comp.compress(&[&ndjson]).len()
        );
        group.bench_function(name, |b| {
            b.iter(|| std::hint::black_box(comp.compress(&[&ndjson]).len()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
