//! The HTTP input: applications POST their own audit events, and each
//! request is answered only once its events are durable in the queue.
//!
//! ```text
//! POST /v1/events   Authorization: Bearer <token>   (when a token is configured)
//!                   Content-Encoding: zstd | gzip   (optional)
//! body: one JSON object, a JSON array of objects, or NDJSON (one object per line)
//! ```
//!
//! Every event goes through the input's `json` parser (with its
//! `json_mapping`), its `raw` is the event's JSON text exactly as sent,
//! `source` is `<input>:<client IP>` and `fields.http_peer` the client's
//! address and port. The body is checked completely before anything is
//! queued: one bad event refuses the whole request (400, naming the line or
//! element), so nothing from a refused request is ever stored.
//!
//! # Answers
//!
//! | answer | meaning | retry? |
//! |---|---|---|
//! | 200 `{"events","queued","filtered","first_seq","last_seq"}` | every event is durable in the queue (or was dropped by a filter, which counts as handled); `seq` of the stored ones | no |
//! | 400 | the body is malformed; the message says where; nothing queued | no, fix it |
//! | 401 | missing or wrong bearer token | no, fix it |
//! | 413 | body over `max_body_bytes`, or it inflates past `max_decompressed_bytes` | split it |
//! | 408 | the headers took over 30 s or the body over 60 s | yes |
//! | 415 | a `Content-Encoding` other than zstd, gzip or identity | no |
//! | 503 + `Retry-After`, `"maybe_queued": false` | the queue is full, the agent is stopping, or earlier requests are still waiting; nothing from this request was or will be queued | yes, safely |
//! | 503 + `Retry-After`, `"maybe_queued": true` | `ack_timeout` passed after the ingest thread had started queueing the events (or the agent stopped meanwhile) | yes, but see below |
//!
//! When the agent stops (SIGTERM) the listener closes, a request on an open
//! connection gets 503 (`"maybe_queued": false`), and the requests already
//! handed over are queued by the ingest thread's last pass and answered
//! once its final commit is durable.
//!
//! # Durable acknowledgement
//!
//! The handler checks the body, then hands the request to the ingest
//! thread through a bounded channel that [`HttpInput::poll`] drains
//! (ringing the [`Bell`]); the ingest thread parses, filters, seals and
//! appends the events and tells the handler the range of queue record ids
//! they got ([`Sink::last_id`] before and after). The handler answers 200
//! only once the queue's durable id reaches the last of them
//! ([`Durability`]): the same fsync that lets outputs see a record (group
//! commit, so one fsync covers many requests). A SIGKILL at any moment
//! therefore never loses an event whose request got 200. Events whose
//! request got no answer (the connection broke) may or may not be stored;
//! a client that retries them may store them twice.
//!
//! # A full queue, and the one case of duplicates
//!
//! When the queue is at `max_bytes`, inputs pause. The input learns it from
//! the queue ([`Durability::is_full`]) and answers new requests 503 with
//! `Retry-After` at once, without looking at their body (it is read and
//! discarded, so the connection closes cleanly). A request already
//! handed over waits up to `ack_timeout`. If by then the ingest thread has
//! not taken it from the channel, the handler withdraws it (an atomic
//! ticket decides between the two), so nothing from it is ever queued:
//! `"maybe_queued": false`, and a retry is safe. If the ingest thread had
//! already taken it, its events are being appended (the queue filled up in
//! the middle of the request) or appended but not yet fsynced, and they
//! *will* be stored once there is room, even though the client was told
//! 503: `"maybe_queued": true`. A client that retries then stores those
//! events twice. This cannot be avoided without a request id the agent
//! would remember; clients that cannot tolerate duplicates should give each
//! event an id (e.g. `request_id`) and deduplicate downstream. Events are
//! never dropped silently: every request gets an answer saying which case
//! it is in.
//!
//! # Positions
//!
//! There is nothing to resume: lines use the stream [`NO_POSITION`], so the
//! input adds nothing to the queue's positions or snapshots.
//!
//! # Memory
//!
//! Requests waiting for the ingest thread hold at most four times
//! `max_decompressed_bytes` of bodies, and at most [`CHANNEL_REQUESTS`]
//! requests; beyond that a request gets 503 (`"maybe_queued": false`).
//!
//! [`Durability`]: crate::queue::Durability
//! [`Durability::is_full`]: crate::queue::Durability::is_full

mod body;
mod server;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auditship_core::Flags;
use hyper::header::HeaderValue;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::net::{self, NetCounters, ServerTls};
use super::{Bell, Input, InputError, InputStats, Line, Sink, NO_POSITION};
use crate::output::TokenSource;
use crate::queue::Durability;

pub use body::BodyError;

/// The path events are posted to.
pub const PATH: &str = "/v1/events";

/// Requests waiting for the ingest thread, at most.
pub const CHANNEL_REQUESTS: usize = 256;

/// The `fields` key of the client's address.
pub const PEER_FIELD: &str = "http_peer";

/// Settings of one HTTP input.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Input name.
    pub name: String,
    /// Address to listen on.
    pub address: SocketAddr,
    /// HTTPS, or `None` for plain HTTP.
    pub tls: Option<ServerTls>,
    /// Bearer token clients must send, if any.
    pub token: Option<TokenSource>,
    /// Largest body as sent.
    pub max_body_bytes: usize,
    /// Largest body after decompression (zstd or gzip).
    pub max_decompressed_bytes: usize,
    /// Largest single event, as JSON text.
    pub max_event_bytes: usize,
    /// How long a request waits for its events to become durable.
    pub ack_timeout: Duration,
    /// `Retry-After` of a 503.
    pub retry_after: Duration,
}

impl HttpConfig {
    /// Defaults for an input named `name` on `address`.
    pub fn new(name: &str, address: SocketAddr) -> Self {
        HttpConfig {
            name: name.to_string(),
            address,
            tls: None,
            token: None,
            max_body_bytes: 4 << 20,
            max_decompressed_bytes: 16 << 20,
            max_event_bytes: 64 << 10,
            ack_timeout: Duration::from_secs(10),
            retry_after: Duration::from_secs(5),
        }
    }
}

/// Where a request stands: waiting in the channel, taken by the ingest
/// thread, or withdrawn by its handler. Whoever moves it out of `PENDING`
/// first decides whether its events are queued.
#[derive(Default)]
struct Ticket(AtomicU8);

const PENDING: u8 = 0;
const TAKEN: u8 = 1;
const CANCELLED: u8 = 2;

impl Ticket {
    fn take(&self) -> bool {
        self.0
            .compare_exchange(PENDING, TAKEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn cancel(&self) -> bool {
        self.0
            .compare_exchange(PENDING, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// What the ingest thread did with a request: the last queue record id
/// before its events and after them. The events that were stored (not
/// dropped by a filter) have the ids in between.
#[derive(Clone, Copy, Debug)]
struct Handled {
    before: u64,
    after: u64,
}

/// A checked request on its way to the ingest thread.
struct Pending {
    body: Vec<u8>,
    events: Vec<Range<usize>>,
    peer: SocketAddr,
    ticket: Arc<Ticket>,
    reply: Option<oneshot::Sender<Handled>>,
    /// Released when the request is dropped, wherever that happens.
    held: Arc<AtomicU64>,
}

impl Pending {
    /// Counts the body against the memory limit; `None` if it is reached.
    fn reserve(
        shared: &Shared,
        body: Vec<u8>,
        events: Vec<Range<usize>>,
        peer: SocketAddr,
        ticket: Arc<Ticket>,
        reply: oneshot::Sender<Handled>,
    ) -> Option<Pending> {
        let size = body.len() as u64;
        let limit = 4 * shared.cfg.max_decompressed_bytes as u64;
        if shared.held.fetch_add(size, Ordering::AcqRel) + size > limit {
            shared.held.fetch_sub(size, Ordering::AcqRel);
            return None;
        }
        Some(Pending {
            body,
            events,
            peer,
            ticket,
            reply: Some(reply),
            held: shared.held.clone(),
        })
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.held
            .fetch_sub(self.body.len() as u64, Ordering::AcqRel);
    }
}

/// What the listener's tasks share with the input.
struct Shared {
    name: String,
    cfg: HttpConfig,
    /// SHA-256 of the token, compared in constant time.
    token: Option<[u8; 32]>,
    tx: mpsc::Sender<Pending>,
    queue: Durability,
    /// The queue's durable id, as last seen by the watcher thread.
    durable: watch::Receiver<u64>,
    bell: Bell,
    stopping: AtomicBool,
    /// Set by the accept loop once the listening socket is closed.
    listener_closed: AtomicBool,
    held: Arc<AtomicU64>,
    counters: NetCounters,
}

impl Shared {
    /// Whether the `Authorization` header carries the token (or none is
    /// needed). Both sides are hashed first, so the comparison takes the
    /// same time whatever the token's length and content.
    fn authorized(&self, header: Option<&HeaderValue>) -> bool {
        let Some(want) = &self.token else {
            return true;
        };
        let got = header
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| sha256(t.trim().as_bytes()))
            .unwrap_or([0; 32]);
        let diff = want.iter().zip(got).fold(0u8, |d, (a, b)| d | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Receives events over HTTP. See the module docs.
pub struct HttpInput {
    name: String,
    rx: mpsc::Receiver<Pending>,
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    stop: CancellationToken,
    watcher: Option<std::thread::JoinHandle<()>>,
    watcher_stop: Arc<AtomicBool>,
    published: Arc<watch::Sender<u64>>,
    stats: InputStats,
}

impl HttpInput {
    /// Reads the token, loads the TLS files, binds the address and starts
    /// serving on the current tokio runtime (call it inside one). `queue`
    /// says when events are durable.
    pub fn new(cfg: HttpConfig, queue: Durability, bell: Bell) -> Result<Self, InputError> {
        let name = cfg.name.clone();
        let setup = |message: String| InputError::Setup {
            input: name.clone(),
            message,
        };
        let token = match &cfg.token {
            None => None,
            Some(TokenSource::Inline(t)) => Some(sha256(t.as_bytes())),
            Some(TokenSource::File(p)) => {
                let t = std::fs::read_to_string(p)
                    .map_err(|e| setup(format!("token_file {}: {e}", p.display())))?;
                let t = t.trim();
                if t.len() < 16 {
                    return Err(setup(format!(
                        "token_file {} holds fewer than 16 characters",
                        p.display()
                    )));
                }
                Some(sha256(t.as_bytes()))
            }
        };
        let tls = cfg
            .tls
            .as_ref()
            .map(|t| t.acceptor(&name, true))
            .transpose()?;
        let listener = net::bind_tcp(&name, cfg.address)?;
        let local_addr = listener.local_addr().map_err(|source| InputError::Listen {
            input: name.clone(),
            address: cfg.address,
            source,
        })?;
        if tls.is_none() && !local_addr.ip().is_loopback() {
            tracing::warn!(input = %name, address = %local_addr,
                "HTTP input listens beyond this machine without TLS: events and the token cross the network in clear");
        }
        let (published, durable) = watch::channel(queue.committed_id());
        let published = Arc::new(published);
        let watcher_stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (queue, published, stop) = (queue.clone(), published.clone(), watcher_stop.clone());
            std::thread::Builder::new()
                .name(format!("http-{name}-durable"))
                .spawn(move || watch_durable(&queue, &published, &stop))
                .expect("spawning the HTTP input's durability watcher")
        };
        let (tx, rx) = mpsc::channel(CHANNEL_REQUESTS);
        let shared = Arc::new(Shared {
            name: name.clone(),
            token,
            tx,
            queue,
            durable,
            bell,
            stopping: AtomicBool::new(false),
            listener_closed: AtomicBool::new(false),
            held: Arc::default(),
            counters: NetCounters::default(),
            cfg,
        });
        let stop = CancellationToken::new();
        tokio::spawn(server::serve(listener, tls, shared.clone(), stop.clone()));
        tracing::info!(input = %name, address = %local_addr, tls = shared.cfg.tls.is_some(),
            token = shared.token.is_some(), path = PATH, "HTTP input listening");
        Ok(HttpInput {
            name,
            rx,
            shared,
            local_addr,
            stop,
            watcher: Some(watcher),
            watcher_stop,
            published,
            stats: InputStats::default(),
        })
    }

    /// The address it listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and waits (at most 2 s) until the listening socket
    /// is closed, so that the pipeline a reload starts next can bind the
    /// same address. Open connections finish their request.
    fn close_listener(&self) {
        self.shared.stopping.store(true, Ordering::Relaxed);
        self.stop.cancel();
        let until = std::time::Instant::now() + Duration::from_secs(2);
        while !self.shared.listener_closed.load(Ordering::Acquire)
            && std::time::Instant::now() < until
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Publishes the queue's durable id to the handlers as it moves.
fn watch_durable(queue: &Durability, published: &watch::Sender<u64>, stop: &AtomicBool) {
    let mut seen = queue.committed_id();
    while !stop.load(Ordering::Relaxed) {
        let now = queue.wait_for(seen + 1, Duration::from_millis(200));
        if now != seen {
            seen = now;
            published.send_replace(now);
        } else if queue.writer_closed() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Input for HttpInput {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "http"
    }

    fn poll(&mut self, sink: &mut dyn Sink, budget: usize) -> Result<u64, InputError> {
        let mut read = 0u64;
        while read < budget as u64 {
            let Ok(mut p) = self.rx.try_recv() else {
                break;
            };
            if !p.ticket.take() {
                // Withdrawn: its client was told nothing was queued.
                continue;
            }
            let before = sink.last_id();
            for r in &p.events {
                sink.line(Line {
                    stream: NO_POSITION,
                    position: b"",
                    bytes: &p.body[r.clone()],
                    flags: Flags::default(),
                    path: None,
                    peer: Some((PEER_FIELD, p.peer)),
                })?;
            }
            let after = sink.last_id();
            self.stats.lines += p.events.len() as u64;
            read += p.body.len() as u64;
            if let Some(reply) = p.reply.take() {
                let _ = reply.send(Handled { before, after });
            }
        }
        self.stats.bytes += read;
        Ok(read)
    }

    fn stats(&self) -> InputStats {
        self.shared.counters.stats(self.stats)
    }

    fn stop(&mut self) {
        // New requests get 503; open connections finish the request they
        // are in and close. What is in the channel is queued by the last
        // poll, and answered once the final commit makes it durable.
        self.close_listener();
    }
}

impl Drop for HttpInput {
    fn drop(&mut self) {
        self.close_listener();
        self.watcher_stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.watcher.take() {
            let _ = t.join();
        }
        // The ingest thread committed before dropping its inputs: answer
        // the requests that final commit covers.
        self.published
            .send_replace(self.shared.queue.committed_id());
        // Requests still in the channel are dropped with it; their handlers
        // answer 503, nothing queued.
        self.rx.close();
    }
}
