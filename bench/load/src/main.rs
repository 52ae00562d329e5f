//! The collector's ingest rate alone, from several concurrent senders.
//!
//! ```text
//! ingestload --url http://127.0.0.1:PORT --token T --agents A1,A2,... [--senders N]
//!            [--events E] [--batch B] [--compression zstd|gzip|none] [--level L]
//!            [--gzip LEVEL|none] [--key FILE]
//! ```
//!
//! Builds realistic events first (generated nginx and auth lines, parsed by
//! the real parsers, canonically encoded, hash-chained per agent as the
//! agent's sealer does), encodes them into wire batches of B events with
//! signed headers, then N senders, one per agent id, post their batches
//! concurrently and wait for each answer.
//!
//! Batches are compressed as `--compression` says at `--level` (default
//! zstd level 1, what agents send by default). `--gzip LEVEL` (or
//! `--gzip none`), the option from before zstd, still works: gzip at that
//! level (or uncompressed). Before zstd the default was gzip level 1; ask
//! for it with `--compression gzip`.
//!
//! Every sender signs with one key: the agent secret key file given with
//! `--key`, or else a fixed built-in test key. Its public key is printed to
//! stderr; enrol it for the agent ids at the collector, or let the
//! collector pin it on first use. The clock runs
//! only while posting. Prints events per second, batches per second and
//! the stored count the collector acknowledged. Point it at a collector
//! whose ingest token is bound to the agent ids given.

use std::time::Instant;

use auditship_bench::{arg, Kind, LineGen};
use auditship_core::identity::Identity;
use auditship_core::seal::{self, GENESIS};
use auditship_core::wire::{self, BatchHeader, Compression, IngestAck};
use auditship_core::{canonical, hex, Timestamp};
use auditship_plugins::{Parser, ParserOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = arg(&args, "--url").expect("--url");
    let token = arg(&args, "--token").expect("--token");
    let agents: Vec<String> = arg(&args, "--agents")
        .expect("--agents")
        .split(',')
        .map(str::to_string)
        .collect();
    let senders: usize =
        arg(&args, "--senders").map_or(agents.len(), |s| s.parse().expect("--senders"));
    let events: usize = arg(&args, "--events").map_or(1_000_000, |s| s.parse().expect("--events"));
    let batch: usize = arg(&args, "--batch").map_or(5_000, |s| s.parse().expect("--batch"));
    let compression = compression(&args);
    assert!(senders <= agents.len(), "one agent id per sender");
    let key = match arg(&args, "--key") {
        Some(path) => Identity::load(std::path::Path::new(&path)).expect("--key"),
        None => Identity::from_seed([0x1a; 32]),
    };
    eprintln!("signing with public key {}", key.public().to_hex());

    // Build every sender's batches up front.
    let t = Instant::now();
    let mut parser = Parser::new(&ParserOptions::default()).expect("parser");
    let mut gen = LineGen::new(11);
    let per_sender = events / senders;
    let mut plans: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut total_bytes = 0usize;
    for agent in agents.iter().take(senders) {
        let mut bodies = Vec::new();
        let mut seq = 0u64;
        let mut chain = GENESIS;
        let mut batch_prev = GENESIS;
        let mut ndjson = Vec::new();
        let mut line = String::new();
        let mut in_batch = 0;
        for i in 0..per_sender {
            line.clear();
            gen.line(
                if i % 4 == 3 {
                    Kind::Auth
                } else {
                    Kind::NginxCombined
                },
                &mut line,
            );
            let mut ev = parser.parse_at(line.as_bytes(), Timestamp::now_utc());
            seq += 1;
            ev.seq = Some(seq);
            ev.agent_id = Some(agent.clone());
            ev.observed_ts = Some(Timestamp::now_utc());
            let start = ndjson.len();
            canonical::encode_into(&ev, &mut ndjson);
            chain = seal::chain_hash(&chain, &ndjson[start..]);
            ndjson.push(b'\n');
            in_batch += 1;
            if in_batch == batch || i + 1 == per_sender {
                let mut header = BatchHeader {
                    auditship_batch: wire::WIRE_VERSION,
                    agent_id: agent.clone(),
                    queue: wire::format_queue(0x10ad),
                    first: seq + 1 - in_batch as u64,
                    last: seq,
                    events: in_batch as u64,
                    prev_hash: hex::encode(&batch_prev),
                    last_hash: hex::encode(&chain),
                    key: String::new(),
                    sig: String::new(),
                    pipelined: false,
                };
                header.sign(&key);
                batch_prev = chain;
                let body = wire::encode(&header, &ndjson, compression);
                total_bytes += body.len();
                bodies.push(body);
                ndjson.clear();
                in_batch = 0;
            }
        }
        plans.push(bodies);
    }
    eprintln!(
        "prepared {} events in {} batches ({:.1} MB on the wire) in {:.1}s",
        per_sender * senders,
        plans.iter().map(Vec::len).sum::<usize>(),
        total_bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    auditship_tls::install_default_provider();
    let client = reqwest::Client::builder().build().expect("client");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let start = Instant::now();
    let stored: u64 = rt.block_on(async {
        let mut tasks = Vec::new();
        for bodies in plans {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let mut stored = 0;
                for body in bodies {
                    let mut req = client
                        .post(format!("{url}{}", wire::INGEST_PATH))
                        .bearer_auth(&token)
                        .body(body);
                    if let Some(e) = compression.encoding().header_value() {
                        req = req.header("content-encoding", e);
                    }
                    let resp = req.send().await.expect("post");
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    assert!(status.is_success(), "{status}: {text}");
                    let ack: IngestAck = serde_json_ack(&text);
                    stored += ack.stored;
                }
                stored
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.expect("sender");
        }
        total
    });
    let wall = start.elapsed().as_secs_f64();
    println!(
        "senders={senders} batch={batch} compression={compression:?} events={} stored={stored} wall={wall:.2}s events_per_s={:.0}",
        per_sender * senders,
        (per_sender * senders) as f64 / wall
    );
}

/// `--compression` and `--level`, or the older `--gzip LEVEL|none`.
fn compression(args: &[String]) -> Compression {
    let level = arg(args, "--level").map(|l| l.parse::<i64>().expect("--level"));
    let compression = match (
        arg(args, "--gzip").as_deref(),
        arg(args, "--compression").as_deref(),
    ) {
        (Some(_), Some(_)) => panic!("give --compression (with --level), not --gzip as well"),
        (Some("none"), None) => Compression::None,
        (Some(l), None) => Compression::Gzip(l.parse().expect("--gzip LEVEL")),
        (None, Some("zstd") | None) => Compression::Zstd(level.unwrap_or(1) as i32),
        (None, Some("gzip")) => Compression::Gzip(level.unwrap_or(1) as u32),
        (None, Some("none")) => Compression::None,
        (None, Some(other)) => panic!("--compression {other:?}: use zstd, gzip or none"),
    };
    let ok = match compression {
        Compression::None => true,
        Compression::Gzip(l) => Compression::GZIP_LEVELS.contains(&l),
        Compression::Zstd(l) => Compression::ZSTD_LEVELS.contains(&l),
    };
    assert!(ok, "{compression:?}: level out of range");
    compression
}

fn serde_json_ack(text: &str) -> IngestAck {
    // The ack is small; parse it with the same types the agent uses.
    auditship_core::wire::parse_ack(text).unwrap_or_else(|e| panic!("bad ack {text:?}: {e}"))
}
