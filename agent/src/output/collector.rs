//! The collector output: batches over HTTPS to an auditship collector.
//!
//! Each batch becomes one [wire batch](auditship_core::wire) (NDJSON,
//! compressed with zstd by default, or gzip, or not at all, with a header
//! naming this agent, its queue identity and the `seq` range the batch
//! covers), posted with the bearer token and the `Content-Encoding` of its
//! compression. The queue acknowledges the batch only after the collector
//! answered 200, which it does only once the events are durable; the
//! collector deduplicates retries by `seq`, so delivery is exactly-once end
//! to end.
//!
//! # Signed batches
//!
//! The queue holds each event's canonical bytes with its chain link beside
//! them (see [`crate::seal`]), and a batch's payloads are exactly the event
//! lines of a request, so the body is the header followed by the batch's
//! bytes as they are, compressed in place with no copy. The header carries the chain hash before the first event (`prev_hash`, the
//! first event's) and the last event's hash (`last_hash`), and is signed
//! with the agent's identity key; the collector recomputes every hash from
//! `prev_hash` and checks it reaches `last_hash`, then checks the signature.
//!
//! A request never spans a break in the chain (an event whose `prev_hash`
//! is not the hash of the event before it, which happens only after an
//! event was quarantined as corrupt in the queue): the event after the
//! break starts a new request, whose `first` is its own `seq`, so the
//! collector sees the lost `seq` as a gap. Splitting a batch (on 413, or by
//! the request limits) cuts it into requests that are each chained and
//! signed on their own. A dead letter holds the body as it was sent,
//! signature included, so a replay is the same signed batch.
//!
//! An event without a chain link (a queue written by an agent before
//! sealing) cannot be sent in a signed batch: delivery fails with an error
//! naming the record and is retried; drain such a queue with the older
//! agent before upgrading. (Records from agents that queued the sealed form
//! in the payload read as linked events.)
//!
//! What each answer does:
//!
//! | answer                                   | action                                   |
//! |------------------------------------------|------------------------------------------|
//! | 200                                      | delivered; acknowledged in the queue     |
//! | connection error, timeout, 408, 429, 5xx | retried forever (backoff, full jitter, Retry-After), next endpoint |
//! | 401, 403                                 | retried forever and logged as an error: the token or its agent binding is wrong, and every batch would fail alike, so nothing is dead-lettered; events stay queued until the credentials are fixed |
//! | 413 with more than one event             | the batch is split in half and each half sent (smaller requests from then on) |
//! | any other 4xx (and 413 for one event)    | the batch is written to the dead-letter directory with the answer, logged as an error and counted; then acknowledged |
//!
//! Endpoints are tried in order; a retryable failure moves to the next one,
//! and the output stays on whichever works. They must be one logical
//! collector (instances sharing a store), since deduplication is the
//! collector's.
//!
//! The HTTP client is async (reqwest on rustls); `deliver` runs on the
//! output's blocking thread and drives each request with the runtime's
//! handle.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auditship_core::hex;
use auditship_core::identity::Identity;
use auditship_core::wire::{self, BatchHeader, IngestAck};
use tokio::runtime::Handle;

use super::client::{build_client, error_chain};
use super::deadletter::{DeadLetter, Rejection};
use super::witness::{Fetch, Witness, WitnessConfig, WitnessRunner};
use super::{BatchLimits, Output, OutputError, RetryPolicy};
use crate::queue::{Batch, ChainLink};

/// Validated settings of a collector output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorOutputConfig {
    /// Output name.
    pub name: String,
    /// Collector base URLs, in order of preference.
    pub endpoints: Vec<String>,
    /// Bearer token (already read from its file).
    pub token: TokenSource,
    /// CA certificates to trust (PEM); required for https.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// How request bodies are compressed.
    pub compression: wire::Compression,
    /// Batching.
    pub limits: BatchLimits,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Backoff.
    pub retry: RetryPolicy,
    /// Where refused batches go.
    pub dead_letter_dir: PathBuf,
    /// Witnessing the collector's checkpoints.
    pub witness: WitnessConfig,
}

/// Where the bearer token comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// In the config.
    Inline(String),
    /// In a file, read when the output starts.
    File(PathBuf),
}

/// Counters of a collector output.
#[derive(Debug, Default)]
pub struct CollectorStats {
    /// Batches delivered.
    pub batches: AtomicU64,
    /// Events newly stored by the collector.
    pub stored: AtomicU64,
    /// Events the collector already had (retries).
    pub duplicates: AtomicU64,
    /// Failed attempts (retried).
    pub retries: AtomicU64,
    /// Batches moved to the dead-letter directory.
    pub dead_letters: AtomicU64,
    /// Collector checkpoints proved consistent with the one kept before.
    pub witnessed: AtomicU64,
    /// Collector checkpoints found inconsistent or badly signed (critical).
    pub inconsistent_checkpoints: AtomicU64,
    /// Checkpoints or proofs that could not be fetched.
    pub witness_errors: AtomicU64,
}

/// The output.
pub struct CollectorOutput {
    cfg: CollectorOutputConfig,
    agent_id: String,
    identity: Arc<Identity>,
    queue: u64,
    token: String,
    client: reqwest::Client,
    handle: Handle,
    current: usize,
    /// Largest number of events per request; halved by a 413.
    max_request_events: usize,
    dead: DeadLetter,
    witness: Option<WitnessRunner>,
    /// Requests on their way, oldest first.
    in_flight: VecDeque<InFlight>,
    /// Counters.
    pub stats: Arc<CollectorStats>,
}

/// What one request came to.
enum Answer {
    Delivered(IngestAck),
    Retry {
        why: String,
        after: Option<Duration>,
    },
    Auth(String),
    /// 409 to a pipelined request: its predecessor never reached the
    /// collector (it was refused, or its request failed); send it again,
    /// not pipelined.
    OutOfOrder,
    TooLarge(Rejection),
    Rejected(Rejection),
}

/// Requests one output keeps in flight: while the collector stores one
/// batch, the next is already on its way (marked `pipelined`).
const IN_FLIGHT: usize = 3;

impl CollectorOutput {
    /// Builds the client (reads the token, CA and client certificate).
    /// Batches are signed with `identity`.
    pub fn new(
        cfg: CollectorOutputConfig,
        agent_id: &str,
        identity: Arc<Identity>,
    ) -> Result<Self, String> {
        let token = match &cfg.token {
            TokenSource::Inline(t) => t.clone(),
            TokenSource::File(p) => std::fs::read_to_string(p)
                .map_err(|e| format!("token_file {}: {e}", p.display()))?
                .trim_end()
                .to_string(),
        };
        let client = build_client(&cfg)?;
        let dead = DeadLetter::new(cfg.dead_letter_dir.clone());
        let stats = Arc::new(CollectorStats::default());
        let witness = match cfg.witness.interval {
            Some(every) => Some(WitnessRunner::new(
                Witness::new(&cfg.name, &cfg.witness, stats.clone())?,
                every,
            )),
            None => None,
        };
        Ok(CollectorOutput {
            max_request_events: cfg.limits.max_events.max(1),
            agent_id: agent_id.to_string(),
            identity,
            queue: 0,
            token,
            client,
            handle: Handle::current(),
            current: 0,
            dead,
            witness,
            in_flight: VecDeque::new(),
            stats,
            cfg,
        })
    }

    /// Starts posting an encoded body to the current endpoint; the
    /// request runs on the runtime while this thread goes on.
    fn send(&self, body: bytes::Bytes) -> Sent {
        let endpoint = self.cfg.endpoints[self.current]
            .trim_end_matches('/')
            .to_string();
        let url = format!("{endpoint}{}", wire::INGEST_PATH);
        let mut req = self
            .client
            .post(&url)
            .header("content-type", "application/x-ndjson")
            .bearer_auth(&self.token)
            .body(body.clone());
        if let Some(e) = self.cfg.compression.encoding().header_value() {
            req = req.header("content-encoding", e);
        }
        let task = self.handle.spawn(async move {
            let resp = req.send().await.map_err(|e| error_chain(&e))?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let text = resp.text().await.unwrap_or_default();
            Ok((status, retry_after, text))
        });
        Sent {
            task,
            url,
            endpoint,
            body,
        }
    }

    /// Waits for a request and classifies its answer.
    fn answer(&self, sent: Sent, events: usize, pipelined: bool) -> Answer {
        let result = self
            .handle
            .block_on(sent.task)
            .unwrap_or_else(|e| Err(format!("request task failed: {e}")));
        let (code, retry_after, text) = match result {
            Ok(r) => r,
            Err(e) => {
                return Answer::Retry {
                    why: format!("{}: {e}", sent.url),
                    after: None,
                }
            }
        };
        let url = &sent.url;
        let rejection = Rejection {
            status: code,
            response: text.clone(),
            endpoint: sent.endpoint,
            body: sent.body,
            encoding: self.cfg.compression.encoding(),
            events,
        };
        match code {
            200..=299 => match wire::parse_ack(&text) {
                Ok(ack) => Answer::Delivered(ack),
                Err(e) => Answer::Retry {
                    why: format!("{url}: answer {code} is not an ingest acknowledgement: {e}"),
                    after: None,
                },
            },
            408 | 429 | 500..=599 => Answer::Retry {
                why: format!("{url}: {code}: {}", text.trim()),
                after: retry_after,
            },
            401 | 403 => Answer::Auth(format!("{url}: {code}: {}", text.trim())),
            409 if pipelined => Answer::OutOfOrder,
            413 => Answer::TooLarge(rejection),
            _ => Answer::Rejected(rejection),
        }
    }

    /// The signed header of `part`, whose chain links are `links`.
    fn header(&self, part: &Batch, links: &[ChainLink], pipelined: bool) -> BatchHeader {
        let ends = (
            links.first().expect("non-empty batch").prev,
            links.last().expect("non-empty batch").hash,
        );
        let mut h = BatchHeader {
            auditship_batch: wire::WIRE_VERSION,
            agent_id: self.agent_id.clone(),
            queue: wire::format_queue(self.queue),
            first: part.covers_from(),
            last: part.last_id().expect("non-empty batch"),
            events: part.len() as u64,
            prev_hash: hex::encode(&ends.0),
            last_hash: hex::encode(&ends.1),
            key: String::new(),
            sig: String::new(),
            pipelined,
        };
        h.sign(&self.identity);
        h
    }

    /// The request body: the header, then each event's canonical bytes,
    /// which are the part's payloads as they are (checked by `links`: every
    /// event is sealed), compressed where they lie.
    fn encode(&self, header: &BatchHeader, part: &Batch) -> bytes::Bytes {
        bytes::Bytes::from(wire::encode(header, part.ndjson(), self.cfg.compression))
    }

    /// Checks the collector's checkpoint when the witness is due.
    fn witness_tick(&mut self) {
        if let Some(w) = &mut self.witness {
            w.tick(&self.handle, || Fetch {
                client: self.client.clone(),
                endpoint: self.cfg.endpoints[self.current].clone(),
                token: self.token.clone(),
            });
        }
    }

    fn unavailable(&self, message: String, retry_after: Option<Duration>) -> OutputError {
        OutputError::Unavailable {
            output: self.cfg.name.clone(),
            message,
            retry_after,
        }
    }

    /// Hands a batch over as requests of at most `max_request_events`
    /// events, in order, and returns the last id whose request was settled
    /// meanwhile. Up to [`IN_FLIGHT`] requests stay on their way, across
    /// calls: the next part is compressed while they are, so the agent's
    /// compression, the network and the collector's work overlap, and the
    /// collector never waits for the agent at a batch boundary. Every
    /// request sent while another is in flight is marked `pipelined`: the
    /// collector stores an agent's batches in `seq` order, holding one
    /// whose predecessor is still on its way. Answers are settled in order.
    fn submit_parts(&mut self, batch: &Batch) -> Result<Option<u64>, OutputError> {
        let links = links(batch).map_err(|m| self.unavailable(m, None))?;
        let mut settled = None;
        let mut at = 0;
        while at < batch.len() {
            let n = self.part_len(batch, &links, at);
            let part = cut(batch, &links, at, n);
            let pipelined = !self.in_flight.is_empty();
            let header = self.header(&part, &links[at..at + n], pipelined);
            let body = self.encode(&header, &part);
            at += n;
            if self.in_flight.len() >= IN_FLIGHT {
                settled = Some(self.settle_oldest()?);
            }
            let sent = self.send(body);
            self.in_flight.push_back(InFlight { sent, part, header });
        }
        Ok(settled)
    }

    /// Settles the oldest request in flight; returns its last id.
    fn settle_oldest(&mut self) -> Result<u64, OutputError> {
        let f = self.in_flight.pop_front().expect("a request in flight");
        self.settle_sent(f.sent, &f.part, &f.header)?;
        Ok(f.part.last_id().expect("non-empty part"))
    }

    /// Gives up every request in flight (after a failure: the caller hands
    /// their events over again).
    fn abandon(&mut self) {
        for f in self.in_flight.drain(..) {
            f.sent.task.abort();
        }
    }

    /// Delivers `part` with one request at a time, not pipelined (after a
    /// 413 cut the requests smaller).
    fn deliver_split(&mut self, part: &Batch) -> Result<(), OutputError> {
        let links = links(part).map_err(|m| self.unavailable(m, None))?;
        let mut at = 0;
        while at < part.len() {
            let n = self.part_len(part, &links, at);
            let sub = cut(part, &links, at, n);
            let header = self.header(&sub, &links[at..at + n], false);
            let body = self.encode(&header, &sub);
            let answer = self.answer(self.send(body), sub.len(), false);
            self.settle(answer, &sub, &header)?;
            at += n;
        }
        Ok(())
    }

    /// Waits for a request's answer and acts on it; a pipelined request
    /// whose predecessor never arrived is sent again, alone.
    fn settle_sent(
        &mut self,
        sent: Sent,
        part: &Batch,
        header: &BatchHeader,
    ) -> Result<(), OutputError> {
        match self.answer(sent, part.len(), header.pipelined) {
            Answer::OutOfOrder => {
                let mut alone = header.clone();
                alone.pipelined = false;
                let body = self.encode(&alone, part);
                let answer = self.answer(self.send(body), part.len(), false);
                self.settle(answer, part, &alone)
            }
            answer => self.settle(answer, part, header),
        }
    }

    /// How many leading events of `batch` go into the next request: at most
    /// `max_request_events`, at most `max_bytes` of payload (at least one),
    /// and none past a break in the chain.
    fn part_len(&self, batch: &Batch, links: &[ChainLink], from: usize) -> usize {
        let mut bytes = 0;
        let mut n = 0;
        for (_, p) in batch.iter().skip(from).take(self.max_request_events) {
            bytes += p.len() + 1;
            let i = from + n;
            if n > 0 && (bytes > self.cfg.limits.max_bytes || links[i].prev != links[i - 1].hash) {
                break;
            }
            n += 1;
        }
        n.max(1)
    }

    /// Acts on the answer to `part`'s request.
    fn settle(
        &mut self,
        answer: Answer,
        part: &Batch,
        header: &BatchHeader,
    ) -> Result<(), OutputError> {
        match answer {
            Answer::Delivered(ack) => {
                if ack.agent_id != self.agent_id || ack.queue != header.queue {
                    return Err(self.unavailable(
                        format!(
                            "collector acknowledged {}/{} instead of {}/{}",
                            ack.agent_id, ack.queue, self.agent_id, header.queue
                        ),
                        None,
                    ));
                }
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
                self.stats.stored.fetch_add(ack.stored, Ordering::Relaxed);
                self.stats
                    .duplicates
                    .fetch_add(ack.duplicates, Ordering::Relaxed);
                Ok(())
            }
            Answer::Retry { why, after } => {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                if self.cfg.endpoints.len() > 1 {
                    self.current = (self.current + 1) % self.cfg.endpoints.len();
                }
                Err(self.unavailable(why, after))
            }
            Answer::Auth(why) => {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                Err(self.unavailable(
                    format!("{why} (check this agent's token and agent_id; events stay queued)"),
                    None,
                ))
            }
            Answer::OutOfOrder => Err(self.unavailable(
                "collector answered 409 to a request that was not pipelined".into(),
                None,
            )),
            Answer::TooLarge(_) if part.len() > 1 => {
                self.max_request_events = (part.len() / 2).max(1);
                tracing::warn!(output = %self.cfg.name, events = part.len(), now = self.max_request_events,
                    "collector says the batch is too large (413); splitting it");
                self.deliver_split(part)
            }
            Answer::TooLarge(r) | Answer::Rejected(r) => {
                let path = self.dead.write(header, &r).map_err(|e| {
                    self.unavailable(format!("cannot write a dead letter: {e}"), None)
                })?;
                self.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
                tracing::error!(output = %self.cfg.name, status = r.status, response = %r.response.trim(),
                    first = header.first, last = header.last, events = header.events, file = %path.display(),
                    "collector refused a batch; moved it to the dead-letter directory (auditship deadletter list|replay)");
                Ok(())
            }
        }
    }
}

/// The chain links of every event of `batch`, or which record is not sealed.
fn links(batch: &Batch) -> Result<Vec<ChainLink>, String> {
    batch
        .links()
        .iter()
        .zip(batch.iter())
        .map(|(link, (id, _))| {
            link.ok_or_else(|| {
                format!(
                    "queue record {id} is not in the sealed form (written by an agent \
                     without sealing?); it cannot be sent in a signed batch"
                )
            })
        })
        .collect()
}

/// Events `at..at + n` of `batch` as one request's part. A batch that fits
/// one request is sent whole; a slice shares its bytes. After a break in
/// the chain the part covers only from its first event: the ids before it
/// may have been lost events.
fn cut(batch: &Batch, links: &[ChainLink], at: usize, n: usize) -> Batch {
    let mut part = if at == 0 && n == batch.len() {
        batch.clone()
    } else {
        batch.slice(at, at + n)
    };
    if at > 0 && links[at].prev != links[at - 1].hash {
        part.cover_from_first();
    }
    part
}

/// Status, Retry-After and body of an answer, or the transport error.
type RawAnswer = Result<(u16, Option<Duration>, String), String>;

/// A request in flight, with the part it carries.
struct InFlight {
    sent: Sent,
    part: Batch,
    header: BatchHeader,
}

/// A request on its way.
struct Sent {
    task: tokio::task::JoinHandle<RawAnswer>,
    url: String,
    endpoint: String,
    body: bytes::Bytes,
}

impl Output for CollectorOutput {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn recover(&mut self, queue_id: u64) -> Result<Option<u64>, OutputError> {
        self.queue = queue_id;
        // The collector deduplicates; nothing to skip here.
        Ok(None)
    }

    fn deliver(&mut self, batch: &Batch) -> Result<(), OutputError> {
        self.submit(batch)?;
        self.flush()?;
        Ok(())
    }

    fn submit(&mut self, batch: &Batch) -> Result<Option<u64>, OutputError> {
        let r = self.submit_parts(batch);
        if r.is_err() {
            self.abandon();
        }
        self.witness_tick();
        r
    }

    fn flush(&mut self) -> Result<Option<u64>, OutputError> {
        let mut settled = None;
        while !self.in_flight.is_empty() {
            match self.settle_oldest() {
                Ok(id) => settled = Some(id),
                Err(e) => {
                    self.abandon();
                    return Err(e);
                }
            }
        }
        self.witness_tick();
        Ok(settled)
    }

    fn batch_limits(&self) -> BatchLimits {
        // One request's worth: requests stay in flight across batches.
        self.cfg.limits
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.cfg.retry
    }
}
