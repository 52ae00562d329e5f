//! Parser throughput on realistic generated lines (see `auditship-bench`).
//!
//! Each iteration parses a batch of 1,000 distinct lines, so branch
//! predictors and caches see realistic variety; throughput is reported in
//! lines (elements) per second. Run with `cargo bench -p auditship-plugins`.

use auditship_bench::{Kind, LineGen};
use auditship_core::Timestamp;
use auditship_plugins::{Format, Parser, ParserOptions};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const BATCH: usize = 1000;

fn bench_format(c: &mut Criterion, name: &str, kind: Kind, format: Format) {
    let lines = LineGen::new(42).lines(kind, BATCH);
    let mut parser = Parser::new(&ParserOptions {
        format,
        timezone: Some("UTC".into()),
        ..ParserOptions::default()
    })
    .unwrap();
    let reference = Timestamp::from_civil(2026, 11, 22, 8, 0, 0, 0, 0).unwrap();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(name, |b| {
        b.iter(|| {
            for l in &lines {
                std::hint::black_box(parser.parse_at(l.as_bytes(), reference));
            }
        })
    });
    group.finish();
}

fn parsers(c: &mut Criterion) {
    bench_format(c, "nginx_combined", Kind::NginxCombined, Format::Nginx);
    bench_format(c, "apache_combined", Kind::ApacheCombined, Format::Apache);
    bench_format(c, "auth_mixed", Kind::Auth, Format::Auth);
    bench_format(c, "auto_nginx", Kind::NginxCombined, Format::Auto);
    bench_format(c, "auto_auth", Kind::Auth, Format::Auto);
}

criterion_group!(benches, parsers);
criterion_main!(benches);
