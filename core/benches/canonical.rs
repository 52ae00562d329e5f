//! Canonical encoding throughput, against serde_json's native rendering
//! for scale. Events come from parsing realistic generated lines.
//! Run with `cargo bench -p auditship-core`.

use auditship_bench::{Kind, LineGen};
use auditship_core::{canonical, AuditEvent, Timestamp};
use auditship_plugins::{Format, Parser, ParserOptions};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn events(kind: Kind, format: Format) -> Vec<AuditEvent> {
    let mut parser = Parser::new(&ParserOptions {
        format,
        timezone: Some("UTC".into()),
        ..ParserOptions::default()
    })
    .unwrap();
    let reference = Timestamp::from_civil(2026, 11, 22, 8, 0, 0, 0, 0).unwrap();
    LineGen::new(42)
        .lines(kind, 1000)
        .iter()
        .map(|l| parser.parse_at(l.as_bytes(), reference))
        .collect()
}

fn encode(c: &mut Criterion) {
    for (name, kind, format) in [
        ("web", Kind::NginxCombined, Format::Nginx),
        ("auth", Kind::Auth, Format::Auth),
    ] {
        let evs = events(kind, format);
        let bytes: usize = evs.iter().map(|e| canonical::encode(e).len()).sum();
        let mut group = c.benchmark_group(format!("encode_{name}"));
        group.throughput(Throughput::Elements(evs.len() as u64));
        let mut buf = Vec::with_capacity(bytes);
        group.bench_function("canonical", |b| {
            b.iter(|| {
                buf.clear();
                for e in &evs {
                    canonical::encode_into(e, &mut buf);
                }
                std::hint::black_box(buf.len())
            })
        });
        group.bench_function("serde_json_native", |b| {
            b.iter(|| {
                buf.clear();
                for e in &evs {
                    serde_json::to_writer(&mut buf, e).unwrap();
                }
                std::hint::black_box(buf.len())
            })
        });
        group.finish();
    }
}

criterion_group!(benches, encode);
criterion_main!(benches);
