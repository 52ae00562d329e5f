//! HTTP input tests: a real listener, real requests (reqwest), and a real
//! ingest side (parser, filters, sealer, disk queue) on its own thread,
//! polling the input and committing the way the agent's ingest loop does.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use auditship_plugins::{Format, Parser, ParserOptions};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::filter::{build_chain, FilterChain, FilterConfig};
use crate::ingest::{Appender, IngestSink, IngestStats};
use crate::queue::{self, Fsync, QueueConfig, QueueReader, QueueWriter};
use crate::seal::{ChainHead, Sealer};

/// The ingest side of one test: a queue, and a thread that polls the input.
struct Ingest {
    run: Arc<AtomicBool>,
    /// The agent's shutdown: ends a wait for queue space.
    stop: CancellationToken,
    queue: Durability,
    /// Pauses polling (the ingest thread is busy elsewhere).
    paused: Arc<AtomicBool>,
    /// The agent stops: `Input::stop`, a last pass, a final commit.
    stopping: Arc<AtomicBool>,
    /// Bytes of requests waiting in the channel.
    held: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<QueueWriter>>,
    reader: QueueReader,
    _dir: tempfile::TempDir,
}

#[derive(serde::Deserialize)]
struct Filters {
    #[serde(default)]
    filters: Vec<FilterConfig>,
}

fn queue_config(dir: &std::path::Path, max_bytes: u64) -> QueueConfig {
    QueueConfig {
        max_bytes,
        segment_bytes: max_bytes / 4,
        max_record_bytes: 64 << 10,
        fsync: Fsync::Always,
        ..QueueConfig::new(dir)
    }
}

/// Starts an input with `cfg` (its address replaced by port 0) and an
/// ingest thread with `filters` (TOML) over a queue of `max_bytes`.
fn start(mut cfg: HttpConfig, filters: &str, max_bytes: u64) -> (Ingest, String) {
    let dir = tempfile::tempdir().unwrap();
    let (writer, mut readers, _) =
        queue::open(queue_config(dir.path(), max_bytes), &["out"]).unwrap();
    cfg.address = "127.0.0.1:0".parse().unwrap();
    let bell = Bell::new();
    let mut input = HttpInput::new(cfg, writer.durability(), bell.clone()).unwrap();
    let url = format!("http://{}{PATH}", input.local_addr());
    let filters: Filters = toml::from_str(filters).unwrap();
    let filters = build_chain(&filters.filters).unwrap();
    let run = Arc::new(AtomicBool::new(true));
    let paused = Arc::new(AtomicBool::new(false));
    let stop = CancellationToken::new();
    let queue = writer.durability();
    let stopping = Arc::new(AtomicBool::new(false));
    let held = input.shared.held.clone();
    let thread = {
        let (run, paused, stop) = (run.clone(), paused.clone(), stop.clone());
        let stopping = stopping.clone();
        std::thread::spawn(move || {
            let mut writer = writer;
            let mut sealer = Sealer::new(ChainHead::START);
            let mut parser = Parser::new(&ParserOptions {
                format: Format::Json,
                ..ParserOptions::default()
            })
            .unwrap();
            while run.load(Ordering::Relaxed) {
                if stopping.load(Ordering::Relaxed) {
                    input.stop();
                    pass(
                        &mut input,
                        &mut writer,
                        &mut sealer,
                        &mut parser,
                        &filters,
                        &stop,
                    );
                    writer.commit().unwrap();
                    break;
                }
                if !paused.load(Ordering::Relaxed)
                    && !pass(
                        &mut input,
                        &mut writer,
                        &mut sealer,
                        &mut parser,
                        &filters,
                        &stop,
                    )
                {
                    break;
                }
                bell.wait(Duration::from_millis(10));
            }
            writer
        })
    };
    let ingest = Ingest {
        run,
        stop,
        queue,
        paused,
        stopping,
        held,
        thread: Some(thread),
        reader: readers.remove(0),
        _dir: dir,
    };
    (ingest, url)
}

/// One pass of the agent's ingest loop over this input; false once stopped.
fn pass(
    input: &mut HttpInput,
    writer: &mut QueueWriter,
    sealer: &mut Sealer,
    parser: &mut Parser,
    filters: &FilterChain,
    stop: &CancellationToken,
) -> bool {
    let stats = IngestStats::default();
    let (mut dropped, mut payload, mut cache) =
        (HashMap::new(), Vec::new(), (PathBuf::new(), String::new()));
    let mut sink = IngestSink {
        out: Appender {
            writer,
            sealer,
            stop,
            stats: &stats,
        },
        parser,
        filters,
        agent_id: "a",
        input: "app",
        dropped_positions: &mut dropped,
        payload: &mut payload,
        source_cache: &mut cache,
        sealed: 0,
    };
    match input.poll(&mut sink, 1 << 20) {
        Ok(_) => {}
        Err(InputError::Stopped) => return false,
        Err(e) => panic!("{e}"),
    }
    assert!(dropped.is_empty(), "network lines leave no positions");
    writer.commit_async().unwrap();
    true
}

impl Ingest {
    /// Every event the queue holds, durable, as JSON.
    fn events(&mut self) -> Vec<serde_json::Value> {
        let b = self
            .reader
            .next_batch(10_000, 64 << 20, Duration::from_millis(50))
            .unwrap();
        b.iter()
            .map(|(_, p)| serde_json::from_slice(p).unwrap())
            .collect()
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.run.store(false, Ordering::Relaxed);
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn client() -> reqwest::Client {
    auditship_tls::install_default_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// POSTs `body`: status, Retry-After, JSON answer.
async fn post(
    url: &str,
    body: impl Into<reqwest::Body>,
    headers: &[(&str, &str)],
) -> (u16, Option<String>, serde_json::Value) {
    let mut r = client().post(url).body(body);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().await.unwrap();
    (
        status,
        retry,
        serde_json::from_str(&text).unwrap_or_default(),
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    auditship_core::wire::Compression::Zstd(1).compress(&[data])
}

fn cfg() -> HttpConfig {
    HttpConfig::new("app", "127.0.0.1:0".parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_answered_with_their_seqs_once_durable() {
    let drop_probes = "[[filters]]\ntype = \"drop\"\nrules = [{ action = \"probe\" }]\n";
    let (mut ingest, url) = start(cfg(), drop_probes, 64 << 20);
    let ndjson = "{\"action\":\"login\",\"actor\":{\"user\":\"alice\"}}\n\
                  {\"action\": \"probe\"}\n\
                  {\"action\":\"logout\",\"outcome\":\"ok\"}\n";
    let (status, _, answer) = post(&url, ndjson, &[]).await;
    assert_eq!(status, 200, "{answer}");
    // Three events; the filter dropped one, which counts as handled.
    assert_eq!(answer["events"], 3);
    assert_eq!(answer["queued"], 2);
    assert_eq!(answer["filtered"], 1);
    let (first, last) = (
        answer["first_seq"].as_u64().unwrap(),
        answer["last_seq"].as_u64().unwrap(),
    );
    assert_eq!(last, first + 1);
    // Answered only once durable: the fsync covering the last of them had
    // returned when the answer was sent.
    assert!(ingest.queue.committed_id() >= last);
    let events = ingest.events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["seq"], first);
    assert_eq!(
        events[0]["raw"],
        "{\"action\":\"login\",\"actor\":{\"user\":\"alice\"}}"
    );
    assert_eq!(events[0]["actor"]["user"], "alice");
    assert_eq!(events[0]["source"], "app:127.0.0.1");
    assert!(events[0]["fields"]["http_peer"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(events[1]["outcome"], "success");

    // An array, gzip-compressed; raw is each element's own text.
    let array = br#"[{"action":"a1"}, {"action" : "a2"}]"#;
    let (status, _, answer) = post(&url, gzip(array), &[("content-encoding", "gzip")]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["first_seq"], last + 1);
    let events = ingest.events();
    assert_eq!(events[1]["raw"], r#"{"action" : "a2"}"#);
    assert_eq!(events[1]["action"], "a2");
    // The same, zstd-compressed.
    let (status, _, answer) = post(&url, zstd(array), &[("content-encoding", "zstd")]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["first_seq"], last + 3);
    assert_eq!(ingest.events()[1]["raw"], r#"{"action" : "a2"}"#);

    // Only filtered events: handled, nothing stored, no seqs.
    let (status, _, answer) = post(&url, r#"{"action":"probe"}"#, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(answer["queued"], 0);
    assert!(answer.get("first_seq").is_none(), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_refused_whole_and_nothing_is_queued() {
    let mut c = cfg();
    c.max_body_bytes = 2048;
    c.max_decompressed_bytes = 4096;
    c.max_event_bytes = 512;
    let (mut ingest, url) = start(c, "", 64 << 20);
    let (status, _, answer) = post(&url, "{\"a\":1}\n{\"b\":\n{\"c\":3}", &[]).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().starts_with("line 3: "),
        "{answer}"
    );
    let (status, _, answer) = post(&url, "[{\"a\":1}, 7]", &[]).await;
    assert_eq!(status, 400);
    assert_eq!(
        answer["error"],
        "element 2: an event must be a JSON object, not a number"
    );
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(600));
    let (status, _, answer) = post(&url, format!("{{\"ok\":1}}\n{big}"), &[]).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("line 2: the event is 608 bytes"),
        "{answer}"
    );
    let (status, _, _) = post(&url, "x".repeat(4000), &[]).await;
    assert_eq!(status, 413, "body over max_body_bytes");
    let zeros = gzip(&vec![b' '; 100_000]);
    assert!(zeros.len() < 2048);
    let (status, _, answer) = post(&url, zeros, &[("content-encoding", "gzip")]).await;
    assert_eq!(
        status, 413,
        "inflates past max_decompressed_bytes: {answer}"
    );
    let (status, _, _) = post(&url, "{}", &[("content-encoding", "br")]).await;
    assert_eq!(status, 415);
    let (status, _, _) = post(&url, "garbage", &[("content-encoding", "gzip")]).await;
    assert_eq!(status, 400);
    let zeros = zstd(&vec![b' '; 100_000]);
    let (status, _, answer) = post(&url, zeros, &[("content-encoding", "zstd")]).await;
    assert_eq!(status, 413, "zstd past max_decompressed_bytes: {answer}");
    let (status, _, answer) = post(&url, "garbage", &[("content-encoding", "zstd")]).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("body is not valid zstd"),
        "{answer}"
    );
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    // A good request after all that: it alone is in the queue.
    let (status, _, answer) = post(&url, "{\"action\":\"good\"}", &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["first_seq"], 1, "nothing was queued before it");
    let events = ingest.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["action"], "good");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_required_when_configured() {
    let mut c = cfg();
    c.token = Some(TokenSource::Inline("0123456789abcdef-secret".into()));
    let (mut ingest, url) = start(c, "", 64 << 20);
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer 0123456789abcdef-secre"),
        Some("0123456789abcdef-secret"),
    ] {
        let h: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let (status, _, _) = post(&url, "{\"a\":1}", &h).await;
        assert_eq!(status, 401, "{auth:?}");
    }
    let h = [("authorization", "Bearer 0123456789abcdef-secret")];
    let (status, _, _) = post(&url, "{\"a\":1}", &h).await;
    assert_eq!(status, 200);
    assert_eq!(ingest.events().len(), 1);
}

/// The ingest thread does not take a request within `ack_timeout` (it is
/// busy: a full queue elsewhere). The handler withdraws it and says so, and
/// when the ingest thread gets to it later, it is not queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_not_taken_in_time_is_withdrawn_and_never_queued() {
    let mut c = cfg();
    c.ack_timeout = Duration::from_millis(300);
    let (mut ingest, url) = start(c, "", 64 << 20);
    ingest.paused.store(true, Ordering::Relaxed);
    let (status, retry, answer) = post(&url, "{\"action\":\"late\"}", &[]).await;
    assert_eq!(status, 503);
    assert_eq!(retry.as_deref(), Some("5"));
    assert_eq!(answer["maybe_queued"], false, "{answer}");
    ingest.paused.store(false, Ordering::Relaxed);
    let (status, _, answer) = post(&url, "{\"action\":\"next\"}", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(answer["first_seq"], 1);
    let events = ingest.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["action"], "next");
}

/// Once the queue refuses an append for space, new requests get 503 with
/// Retry-After at once, without waiting for `ack_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_at_once() {
    let mut c = cfg();
    c.ack_timeout = Duration::from_secs(3600);
    c.retry_after = Duration::from_secs(7);
    // Nothing ever reads this queue: it fills up.
    let (ingest, url) = start(c, "", 1 << 20);
    let event = format!("{{\"action\":\"fill\",\"pad\":\"{}\"}}\n", "p".repeat(1000));
    let mut accepted = 0;
    let held = loop {
        // The request that fills the queue is held, so send each on its own.
        let url = url.clone();
        let body = event.repeat(50);
        let mut h = tokio::spawn(async move { post(&url, body, &[]).await });
        let full = async {
            while !ingest.queue.is_full() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::select! {
            r = &mut h => {
                let (status, _, answer) = r.unwrap();
                assert_eq!(status, 200, "{answer}");
                accepted += 1;
                assert!(accepted < 1000, "the queue never filled");
            }
            _ = full => break h,
        }
    };
    let (status, retry, answer) = post(&url, event.clone(), &[]).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(retry.as_deref(), Some("7"));
    assert_eq!(answer["maybe_queued"], false);
    assert!(
        answer["error"].as_str().unwrap().contains("queue is full"),
        "{answer}"
    );
    drop(ingest);
    // The request the queue filled up in is answered when the agent stops:
    // 503, and it may have been partly queued.
    let (status, _, answer) = held.await.unwrap();
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["maybe_queued"], true, "{answer}");
}

/// When the agent stops, a request already handed over is queued by the
/// last pass and answered 200 once the final commit is durable; the
/// listener is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_stop_a_request_handed_over_is_queued_and_answered() {
    let (mut ingest, url) = start(cfg(), "", 64 << 20);
    ingest.paused.store(true, Ordering::Relaxed);
    let u = url.clone();
    let in_flight = tokio::spawn(async move { post(&u, "{\"action\":\"in-flight\"}", &[]).await });
    while ingest.held.load(Ordering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ingest.stopping.store(true, Ordering::Relaxed);
    let (status, _, answer) = in_flight.await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["first_seq"], 1);
    assert!(
        client().post(&url).body("{}").send().await.is_err(),
        "still listening"
    );
    let events = ingest.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["action"], "in-flight");
}

/// With `tls`, the input speaks HTTPS with the certificate given (loaded
/// as the collector loads its own), and plain HTTP gets no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_file, key_file) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let mut c = cfg();
    c.tls = Some(ServerTls {
        cert_file: cert_file.clone(),
        key_file,
        client_ca_file: None,
    });
    let (mut ingest, url) = start(c, "", 64 << 20);
    let https = url.replace("http://127.0.0.1", "https://localhost");
    auditship_tls::install_default_provider();
    let trusting = reqwest::Client::builder()
        .tls_backend_preconfigured(auditship_tls::client_config(&cert_file, None).unwrap())
        .build()
        .unwrap();
    let r = trusting
        .post(&https)
        .body("{\"action\":\"tls\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        client().post(&url).body("{}").send().await.is_err(),
        "plain HTTP answered"
    );
    assert_eq!(ingest.events().len(), 1);
}

/// A reload drops the input and starts a new one on the same address at
/// once: the listening socket must be closed by then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_is_free_again_once_the_input_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, _readers, _) = queue::open(queue_config(dir.path(), 64 << 20), &["out"]).unwrap();
    let first = HttpInput::new(cfg(), writer.durability(), Bell::new()).unwrap();
    let addr = first.local_addr();
    drop(first);
    let again = HttpInput::new(
        HttpConfig::new("app", addr),
        writer.durability(),
        Bell::new(),
    );
    assert!(again.is_ok(), "{:?}", again.err());
}
