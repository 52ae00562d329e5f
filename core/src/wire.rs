//! The wire batch format: how an agent sends events to a collector.
//!
//! A batch is one HTTP request body. It is self-contained, so a batch the
//! collector refused can be written to a dead-letter file and sent again
//! byte for byte.
//!
//! # Format, version 2
//!
//! ```text
//! POST /v1/ingest
//! Content-Type:     application/x-ndjson
//! Content-Encoding: zstd | gzip     (or absent, or identity, for an uncompressed body)
//! Authorization:    Bearer <ingest token>
//!
//! body (after decompression), NDJSON, UTF-8:
//!   line 1       header: {"auditship_batch":2,"agent_id":"web-1",
//!                         "queue":"<16 hex digits>","first":101,"last":250,"events":150,
//!                         "prev_hash":"<64 hex>","last_hash":"<64 hex>",
//!                         "key":"<64 hex>","sig":"<128 hex>"}
//!   lines 2..    one event per line, in canonical encoding (see `canonical`),
//!                each with "seq" and "agent_id"; `events` lines in all
//! ```
//!
//! * `pipelined` (optional, default false) marks a batch sent before the
//!   answer to the agent's previous one; see [`BatchHeader::pipelined`].
//! * `prev_hash` is the agent's chain hash before the first event of the
//!   batch, `last_hash` the chain hash of its last event, and `sig` the
//!   agent's Ed25519 signature of [`crate::seal::batch_message`] over the
//!   header's fields; `key` is the agent's public key, which the collector
//!   compares with the key enrolled (or pinned at first use) for the agent.
//!   The events travel without their chain fields: the
//!   collector recomputes every hash from `prev_hash` (see [`crate::seal`])
//!   and must arrive at `last_hash`, so the one signature covers every
//!   event. (Sending the hashes per event would add ~150 incompressible
//!   bytes to each.)
//!
//! * `agent_id` is the sending agent. It must be the agent the ingest token
//!   is bound to, and every event's `agent_id` must equal it.
//! * `queue` names the agent's queue identity (its `seq` epoch). Sequence
//!   numbers are unique and increasing within one queue identity; a new
//!   identity (a reinstalled agent with fresh state) starts a new epoch.
//! * `seq` values strictly increase through the batch and lie in
//!   `first..=last`; the last event's is `last`. The batch *covers* every
//!   number from `first` to `last`: a number in that range without an event
//!   belongs to no event (the agent's queue gave it to a position record, for
//!   a line a filter dropped). Consecutive batches cover consecutive ranges,
//!   so a batch whose `first` is past what the collector holds reveals a
//!   gap.
//! * A line ends with `\n`; the last line may omit it. No empty lines.
//!
//! The collector answers `200` with an [`IngestAck`] only after the events
//! are durable, and `durable_seq` is then at least `last`.
//!
//! # Compression
//!
//! Agents compress with zstd by default (or gzip, or not at all; see
//! [`Compression`]); every collector of this version accepts all three.
//! A body is one or more zstd frames, or one or more gzip members, of the
//! NDJSON above. Any other `Content-Encoding` is refused
//! ([`WireError::Encoding`]).
//!
//! # Limits
//!
//! [`inflate`] never inflates more than the caller's limit, so a small body
//! that inflates to gigabytes (a gzip or zstd bomb) costs at most the limit
//! in memory before it is refused; the zstd decoder's window is bounded too
//! (see [`zstd_window_log_max`]).

use serde::{Deserialize, Serialize};

use crate::identity::PublicKey;
use crate::{hex, seal, Hash};

mod jscan;
mod view;

pub use jscan::ViewError;
pub use view::{ActorView, EventView};

mod compression;

pub use compression::{inflate, zstd_window_log_max, Compression, ContentEncoding};

/// Version written in the header's `auditship_batch` key.
pub const WIRE_VERSION: u32 = 2;

/// Path batches are posted to.
pub const INGEST_PATH: &str = "/v1/ingest";

/// The first line of a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchHeader {
    /// Always [`WIRE_VERSION`].
    pub auditship_batch: u32,
    /// The sending agent.
    pub agent_id: String,
    /// The agent's queue identity, 16 hex digits.
    pub queue: String,
    /// First `seq` the batch covers (at most the first event's).
    pub first: u64,
    /// `seq` of the last event.
    pub last: u64,
    /// Number of events.
    pub events: u64,
    /// Chain hash before the first event (hex).
    pub prev_hash: String,
    /// Chain hash of the last event (hex).
    pub last_hash: String,
    /// The agent's Ed25519 public key (hex).
    pub key: String,
    /// Ed25519 signature of the batch message (hex).
    pub sig: String,
    /// Sent while the agent's previous request is still unanswered: if its
    /// predecessor has not arrived, the collector holds it briefly rather
    /// than record a gap, and answers 409 when the predecessor does not
    /// come (the agent then sends it again, not pipelined). Not signed: it
    /// only affects scheduling.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pipelined: bool,
}

impl BatchHeader {
    /// The bytes `sig` signs (see [`crate::seal::batch_message`]); `None`
    /// when a hash field is not 64 hex digits.
    pub fn signed_message(&self) -> Option<Vec<u8>> {
        Some(crate::seal::batch_message(
            &self.agent_id,
            &self.queue,
            self.first,
            self.last,
            self.events,
            &crate::hex::decode_hash(&self.prev_hash)?,
            &crate::hex::decode_hash(&self.last_hash)?,
        ))
    }

    /// Signs the header in place with the agent's key (and sets `key`).
    pub fn sign(&mut self, key: &crate::identity::Identity) {
        self.key = key.public().to_hex();
        let msg = self
            .signed_message()
            .expect("hashes are set before signing");
        self.sig = crate::hex::encode(&key.sign(&msg));
    }
}

/// The collector's answer to an accepted batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestAck {
    /// The agent.
    pub agent_id: String,
    /// The queue identity the watermark belongs to.
    pub queue: String,
    /// Highest `seq` of this agent and queue that is durably stored, with
    /// every earlier event of the queue that reached the collector.
    pub durable_seq: u64,
    /// Events of this batch newly stored.
    pub stored: u64,
    /// Events of this batch the collector already held.
    pub duplicates: u64,
}

/// An error answer from the collector (any non-2xx status).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What is wrong, for a person.
    pub error: String,
}

/// Why a body is not a valid batch. Every variant is the sender's fault.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Content-Encoding other than zstd, gzip or identity.
    #[error("unsupported Content-Encoding {0:?} (use zstd, gzip, identity or none)")]
    Encoding(String),
    /// The gzip stream is broken.
    #[error("body is not valid gzip: {0}")]
    Gzip(std::io::Error),
    /// The zstd stream is broken (bad magic, damaged or truncated frame,
    /// wrong checksum).
    #[error("body is not valid zstd: {0}")]
    Zstd(std::io::Error),
    /// A zstd frame asks for a larger window than the receiver allows.
    #[error(
        "body's zstd frame needs a window larger than {max} bytes, the most \
         this receiver allows (compress at level 19 or lower, without --long)"
    )]
    ZstdWindow {
        /// The largest window allowed, in bytes.
        max: u64,
    },
    /// Inflated past the limit.
    #[error("body inflates past the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The header line is missing or wrong.
    #[error("line 1: bad batch header: {0}")]
    Header(String),
    /// An event line is wrong.
    #[error("line {line}: {message}")]
    Event {
        /// 1-based line number in the decompressed body.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Encodes a batch: the header, then `events` (NDJSON, each line ending in
/// `\n`, as the agent's queue hands them out), compressed as `compression`
/// says, the header and the events in a frame (or gzip member) each, which
/// is faster than one for both ([`Compression::compress_each`]). Send it
/// with `compression.encoding()` as its `Content-Encoding`.
pub fn encode(header: &BatchHeader, events: &[u8], compression: Compression) -> Vec<u8> {
    let mut head = Vec::with_capacity(512);
    write_header(header, &mut head);
    if compression == Compression::None {
        head.extend_from_slice(events);
        return head;
    }
    compression.compress_each(&[&head, events])
}

/// Appends a batch's first line (the header and its `\n`) to `out`. A
/// sender that builds the whole uncompressed body in one buffer (header
/// line, then the events) and compresses it with one
/// [`Compression::compress`] call saves the copy [`encode`] makes and lets
/// zstd compress one contiguous input, which is faster than a stream.
pub fn write_header(header: &BatchHeader, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, header).expect("header serializes");
    out.push(b'\n');
}

/// One event of a decoded batch.
#[derive(Debug)]
pub struct DecodedEvent<'a> {
    /// Its `seq`.
    pub seq: u64,
    /// Its canonical bytes as received, without the newline.
    pub bytes: &'a [u8],
    /// The indexed fields.
    pub view: EventView<'a>,
    /// Its chain hash, recomputed from the batch's `prev_hash`.
    pub hash: Hash,
}

/// A decoded, syntactically checked batch. Whether the chain and the
/// signature hold is for the receiver to judge ([`DecodedBatch::chain_intact`],
/// and the signature against the agent's enrolled key): a batch that fails
/// them is evidence, not garbage.
#[derive(Debug)]
pub struct DecodedBatch<'a> {
    /// The header.
    pub header: BatchHeader,
    /// Queue identity as a number.
    pub queue: u64,
    /// `prev_hash` as bytes.
    pub prev_hash: Hash,
    /// `last_hash` as bytes.
    pub last_hash: Hash,
    /// `key`, parsed.
    pub key: PublicKey,
    /// `sig` as bytes.
    pub sig: [u8; 64],
    /// Every event, in order.
    pub events: Vec<DecodedEvent<'a>>,
}

impl DecodedBatch<'_> {
    /// Whether the events, chained from `prev_hash`, end at `last_hash`.
    pub fn chain_intact(&self) -> bool {
        self.events.last().map(|e| e.hash) == Some(self.last_hash)
    }

    /// Whether `sig` is the signature of the header by the key it names.
    pub fn self_signed(&self) -> bool {
        self.signed_by(&self.key)
    }

    /// Whether `sig` is `key`'s signature of the header.
    pub fn signed_by(&self, key: &PublicKey) -> bool {
        self.header
            .signed_message()
            .is_some_and(|m| key.verify(&m, &self.sig))
    }
}

/// Splits and checks an inflated body: header, then events whose `seq`
/// strictly increase within `first..=last` (ending at `last`), whose
/// `agent_id` is the header's, and whose count is the header's `events`.
/// Computes every event's chain hash on the way. Event lines are read with
/// [`EventView::parse`], which accepts what serde_json would (see
/// `wire/view.rs`) without its per-field allocations.
pub fn decode(body: &[u8]) -> Result<DecodedBatch<'_>, WireError> {
    let mut lines = split_lines(body);
    let first = lines.next().unwrap_or_default();
    let header: BatchHeader =
        serde_json::from_slice(first).map_err(|e| WireError::Header(e.to_string()))?;
    if header.auditship_batch != WIRE_VERSION {
        return Err(WireError::Header(format!(
            "version {} is not supported (this collector speaks {WIRE_VERSION})",
            header.auditship_batch
        )));
    }
    let queue = parse_queue(&header.queue).map_err(WireError::Header)?;
    if header.agent_id.is_empty() {
        return Err(WireError::Header("agent_id is empty".into()));
    }
    if header.first > header.last || header.events == 0 {
        return Err(WireError::Header(
            "a batch holds at least one event and first <= last".into(),
        ));
    }
    let hash_field = |name: &str, text: &str| {
        hex::decode_hash(text)
            .ok_or_else(|| WireError::Header(format!("{name} is not 64 hex digits")))
    };
    let prev_hash = hash_field("prev_hash", &header.prev_hash)?;
    let last_hash = hash_field("last_hash", &header.last_hash)?;
    let sig = hex::decode_array::<64>(&header.sig)
        .ok_or_else(|| WireError::Header("sig is not 128 hex digits".into()))?;
    let key = PublicKey::parse(&header.key).map_err(|e| WireError::Header(format!("key: {e}")))?;
    // An event line takes more than 64 bytes, so the body bounds the count
    // too (a header may claim any number).
    let capacity = header.events.min(1 << 20).min(body.len() as u64 / 64 + 1);
    let mut events = Vec::with_capacity(capacity as usize);
    let mut prev: Option<u64> = None;
    let mut chain = prev_hash;
    let mut body_lines = lines.enumerate().peekable();
    while let Some((i, line)) = body_lines.next() {
        let line_no = i + 2;
        if line.is_empty() {
            if body_lines.peek().is_none() {
                break; // the final newline
            }
            return Err(WireError::Event {
                line: line_no,
                message: "empty line".into(),
            });
        }
        let bad = |message: String| WireError::Event {
            line: line_no,
            message,
        };
        let view = EventView::parse(line).map_err(|e| bad(format!("not an audit event: {e}")))?;
        let seq = view.seq.ok_or_else(|| bad("event has no seq".into()))?;
        if seq < header.first || seq > header.last || prev.is_some_and(|p| seq <= p) {
            return Err(bad(format!(
                "seq {seq} out of order (after {prev:?}, header range {}..={})",
                header.first, header.last
            )));
        }
        if view.agent_id.as_deref() != Some(header.agent_id.as_str()) {
            return Err(bad(format!(
                "event agent_id {:?} is not the batch's {:?}",
                view.agent_id, header.agent_id
            )));
        }
        if line.last() != Some(&b'}') {
            return Err(bad("event does not end in '}'".into()));
        }
        prev = Some(seq);
        chain = seal::chain_hash(&chain, line);
        events.push(DecodedEvent {
            seq,
            bytes: line,
            view,
            hash: chain,
        });
    }
    if events.len() as u64 != header.events {
        return Err(WireError::Header(format!(
            "header says {} events, body holds {}",
            header.events,
            events.len()
        )));
    }
    if prev != Some(header.last) {
        return Err(WireError::Header(
            "last must be the seq of the last event".into(),
        ));
    }
    Ok(DecodedBatch {
        header,
        queue,
        prev_hash,
        last_hash,
        key,
        sig,
        events,
    })
}

/// The lines of `body`, split at every `\n` like `body.split(|&b| b ==
/// b'\n')` (so a final newline yields a last, empty line), with memchr.
fn split_lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(body);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memchr(b'\n', r) {
            Some(p) => {
                rest = Some(&r[p + 1..]);
                Some(&r[..p])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// Parses a collector's 200 answer.
pub fn parse_ack(text: &str) -> Result<IngestAck, serde_json::Error> {
    serde_json::from_str(text)
}

/// Formats a queue identity as the header writes it.
pub fn format_queue(queue: u64) -> String {
    format!("{queue:016x}")
}

/// Parses a header's queue identity.
pub fn parse_queue(s: &str) -> Result<u64, String> {
    if s.len() != 16 {
        return Err(format!("queue {s:?} is not 16 hex digits"));
    }
    u64::from_str_radix(s, 16).map_err(|_| format!("queue {s:?} is not 16 hex digits"))
}

#[cfg(test)]
mod tests;
