//! The alert rules' cost, with the default rule set, over a realistic mix.
//!
//! The mix is what `ingestload` sends: three generated nginx lines to one
//! auth.log line (sshd failures, invalid users, accepted logins, PAM,
//! sudo, logind, useradd, cron), parsed by the real parsers and sealed as
//! the store keeps them. Criterion measures, per 10,000 events of the mix:
//!
//! * `alerts/prefilter`: the commit thread's share, the category/action
//!   lookup every stored event gets (the copy of the wanted ones is in
//!   `alerts/feed`);
//! * `alerts/feed`: pre-filter plus copying the wanted events' sealed bytes
//!   into a round, as the commit thread does;
//! * `alerts/evaluate`: the alerts thread's share, parsing each wanted
//!   event's sealed JSON and evaluating every rule against it
//!   (`Engine::observe`), plus the notifications that fall due.
//!
//! Throughput is in events of the whole mix (the rate of ingest these
//! costs would sustain on one core). The share of the mix that passes the
//! pre-filter is printed first.
//!
//! Run: `CARGO_TARGET_DIR=target cargo bench -p auditship-collector --bench alerts`

use std::hint::black_box;
use std::path::Path;

use auditship_bench::{Kind, LineGen};
use auditship_collector::alerts::engine::Engine;
use auditship_collector::alerts::feed::{self, Payload, Prefilter};
use auditship_collector::alerts::first_seen::FirstSeen;
use auditship_collector::alerts::rules::RawAlerts;
use auditship_core::{canonical, seal, AuditEvent, Timestamp};
use auditship_plugins::{Format, Parser, ParserOptions};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const N: usize = 10_000;

struct Mixed {
    category: &'static str,
    action: String,
    sealed: Vec<u8>,
}

fn mix() -> Vec<Mixed> {
    let mut gen = LineGen::new(11);
    let mut p = Parser::new(&ParserOptions {
        format: Format::Auto,
        timezone: Some("UTC".into()),
        ..ParserOptions::default()
    })
    .unwrap();
    let mut line = String::new();
    let mut head = seal::GENESIS;
    (0..N)
        .map(|i| {
            line.clear();
            gen.line(
                if i % 4 == 3 {
                    Kind::Auth
                } else {
                    Kind::NginxCombined
                },
                &mut line,
            );
            let mut ev: AuditEvent = p.parse_at(line.as_bytes(), Timestamp::now_utc());
            ev.agent_id = Some("bench".into());
            ev.seq = Some(i as u64 + 1);
            let mut sealed = canonical::encode(&ev);
            head = seal::seal_in_place(&mut sealed, &head);
            Mixed {
                category: ev.category.as_str(),
                action: ev.action.to_string(),
                sealed,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let raw: RawAlerts = toml::from_str("defaults = true\nnotify_delay = \"0s\"").unwrap();
    let cfg = raw.validate(Path::new("/"), &mut |k, m| panic!("{k}: {m}"));
    let events = mix();
    let pre = Prefilter::of(&cfg.rules);
    let wanted: Vec<&Mixed> = events
        .iter()
        .filter(|e| pre.wants(e.category, &e.action))
        .collect();
    eprintln!(
        "{} default rules; {} of {} events ({:.1} %) pass the pre-filter",
        cfg.rules.len(),
        wanted.len(),
        events.len(),
        100.0 * wanted.len() as f64 / events.len() as f64
    );
    let mut g = c.benchmark_group("alerts");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("prefilter", |b| {
        b.iter(|| {
            events
                .iter()
                .filter(|e| pre.wants(black_box(e.category), black_box(&e.action)))
                .count()
        })
    });
    g.bench_function("feed", |b| {
        let (mut tap, rx) = feed::channel(pre.clone(), usize::MAX);
        b.iter(|| {
            for (i, e) in events.iter().enumerate() {
                if tap.wants(e.category, &e.action) {
                    tap.push(i as u64, Payload::Sealed(e.sealed.to_vec()));
                }
            }
            tap.committed(0);
            let round = rx.rx.try_recv().unwrap();
            rx.stats
                .pending
                .fetch_sub(round.events.len(), std::sync::atomic::Ordering::Relaxed);
            black_box(round);
        })
    });
    let mut engine = Engine::new(&cfg, FirstSeen::in_memory(cfg.first_seen_max));
    let mut now = Timestamp::now_utc().unix_millis();
    g.bench_function("evaluate", |b| {
        b.iter(|| {
            for (i, e) in wanted.iter().enumerate() {
                let ev: AuditEvent = serde_json::from_slice(&e.sealed).unwrap();
                engine.observe(&ev, i as u64, now);
            }
            now += 1;
            black_box(engine.due(now));
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
