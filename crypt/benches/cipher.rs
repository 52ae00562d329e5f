//! Record cipher throughput: sealing and opening a typical 400-byte event.
//!
//! `CARGO_TARGET_DIR=target cargo bench -p auditship-crypt --bench cipher`

use auditship_crypt::{Domain, Key, Keyring};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn event(n: usize) -> Vec<u8> {
    let mut e = br#"{"ts":"2026-11-22T10:00:00Z","host":"web-1","program":"sshd","category":"authentication","action":"ssh_login","outcome":"success","actor":{"user":"alice"},"src_ip":"203.0.113.7","raw":"Nov 22 10:00:00 web-1 sshd[4242]: Accepted publickey for alice from 203.0.113.7 port 52113 ssh2: ED25519 SHA256:abcdefghijklmnop"}"#.to_vec();
    e.resize(n, b' ');
    e
}

fn bench(c: &mut Criterion) {
    let ring = Keyring::new(Key::from_bytes([7; 32]), []);
    let ev = event(400);
    let mut g = c.benchmark_group("cipher");
    g.throughput(Throughput::Bytes(ev.len() as u64));
    let mut out = Vec::with_capacity(1024);
    g.bench_function("seal_400B", |b| {
        b.iter(|| {
            out.clear();
            ring.seal(Domain::STORE_RECORD, &1u64.to_le_bytes(), &ev, &mut out)
                .unwrap();
        })
    });
    let mut sealed = Vec::new();
    ring.seal(Domain::STORE_RECORD, &1u64.to_le_bytes(), &ev, &mut sealed)
        .unwrap();
    let mut plain = Vec::with_capacity(1024);
    g.bench_function("open_400B", |b| {
        b.iter(|| {
            ring.open(
                Domain::STORE_RECORD,
                &1u64.to_le_bytes(),
                &sealed,
                &mut plain,
            )
            .unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
