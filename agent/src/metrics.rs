//! The agent's Prometheus metrics and health, served by
//! [`auditship_telemetry::serve`] on `[metrics] address`.
//!
//! Nothing is counted twice: a scrape reads the counters the pipeline
//! already keeps (ingest counters, filter counters, the queue's
//! [`QueueMonitor`], each output's counters). Input counters live on the
//! ingest thread, which owns the inputs; it publishes a snapshot of them
//! at most every [`PUBLISH_EVERY`], so they lag by at most that much.
//!
//! Families (all prefixed `auditship_agent_`):
//!
//! ```text
//! input_lines_total{input,type}         lines read
//! input_bytes_total{input,type}         bytes read
//! input_restarts_total{input,type}      journalctl restarts
//! input_requests_total{input,type}      http requests / syslog TCP connections accepted
//! input_connections{input,type}         network connections open
//! input_rejected_total{input,type}      http 503s / syslog connections over max_connections
//! input_invalid_total{input,type}       http 400/413/415 / syslog frames with bad framing
//! input_unauthorized_total{input,type}  http 401s and failed TLS handshakes
//! input_dropped_total{input,type}       syslog UDP messages dropped (ingest full)
//! files_tracked{input}                  files open (file inputs)
//! parse_failures_total{format}          lines that became `unparsed`
//! events_queued_total                   events sealed into the queue
//! events_dropped_total{filter}          events a drop filter discarded
//! events_redacted_total                 events a redact filter changed
//! heartbeats_total                      heartbeat events sealed
//! queue_full_waits_total                times inputs paused on a full queue
//! queue_records                         records not acknowledged by every output
//! queue_bytes / queue_max_bytes         segment bytes on disk / the limit
//! queue_oldest_unacked_age_seconds      age of the oldest such record (0 when none)
//! queue_quarantined_records             corrupt ranges set aside at start
//! output_events_total{output}           events delivered
//! output_events_by_input_total{output,input}  the same, by the input that read them
//! output_batches_total{output}          batches delivered
//! output_retries_total{output}          failed attempts (retried)
//! output_dead_letters_total{output}     batches refused and moved to dead letters
//! output_last_delivery_timestamp_seconds{output}   unix time of the last delivery
//! collector_duplicates_total{output}    events the collector already had
//! witness_inconsistent_total{output}    collector checkpoints that failed the witness
//! witness_errors_total{output}          checkpoints or proofs not fetched
//! up, ready                             1 while live / ready
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use auditship_plugins::ParseStats;
use auditship_telemetry::{Exposition, Health, Source};

use crate::filter::FilterChain;
use crate::ingest::IngestStats;
use crate::input::InputStats;
use crate::output::CollectorStats;
use crate::queue::Batch;
use crate::queue::QueueMonitor;

/// How often the ingest thread publishes input counters.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(500);

/// An ingest pass longer ago than this, while the queue has room, means
/// the ingest thread is stuck: the agent is no longer live.
const STUCK_AFTER: Duration = Duration::from_secs(60);

/// One input's counters as last published.
#[derive(Clone, Debug)]
pub struct InputSnapshot {
    /// Input name.
    pub name: String,
    /// Input type ("file", "journald"…).
    pub kind: &'static str,
    /// Parser format.
    pub format: &'static str,
    /// Reading counters.
    pub stats: InputStats,
    /// Parsing counters.
    pub parse: ParseStats,
}

/// Counters one output loop keeps, whatever the output.
#[derive(Debug, Default)]
pub struct OutputCounters {
    /// Events delivered.
    pub events: AtomicU64,
    /// Batches delivered.
    pub batches: AtomicU64,
    /// Failed attempts.
    pub retries: AtomicU64,
    /// Unix milliseconds of the last delivery (0: none yet).
    pub last_delivery_ms: AtomicU64,
    /// Events delivered, by input name.
    pub by_input: Mutex<BTreeMap<String, u64>>,
}

impl OutputCounters {
    /// Counts the first `n` events of `batch` as delivered; `inputs` are
    /// the configured input names. An event's input is the name its queue
    /// stream begins with when that names an input (files and journald:
    /// one comparison per run of events), else the one its `source` says
    /// (network inputs, heartbeats: a scan of each payload).
    pub fn delivered(&self, batch: &Batch, n: usize, inputs: &[String]) {
        let n = n.min(batch.len());
        let mut by: BTreeMap<&str, u64> = BTreeMap::new();
        for (start, end, name) in batch.stream_runs() {
            let end = end.min(n);
            if start >= end {
                break;
            }
            match inputs.iter().find(|i| i.as_bytes() == name) {
                Some(input) => *by.entry(input).or_default() += (end - start) as u64,
                None => {
                    for i in start..end {
                        if let Some(input) = input_of(batch.payload(i), inputs) {
                            *by.entry(input).or_default() += 1;
                        }
                    }
                }
            }
        }
        self.events.fetch_add(n as u64, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.last_delivery_ms
            .store(unix_ms(SystemTime::now()), Ordering::Relaxed);
        let mut map = self.by_input.lock().expect("metrics lock");
        for (k, v) in by {
            *map.entry(k.to_string()).or_default() += v;
        }
    }
}

/// The input whose `source` (`"input"` or `"input:path"`) an event carries.
/// Canonical keys are sorted, so the top-level `source` comes after
/// `fields` (which may hold a `source` of its own) and `raw`, and no later
/// key holds one: the last occurrence is the event's.
///
/// It is found with a forward SIMD substring search over every match (a
/// reverse search, `memmem::rfind`, has no SIMD path, and walking the
/// colons backwards with `memrchr` was no faster: each cost ~4 % of a
/// shipping agent's CPU).
fn input_of<'a>(payload: &[u8], inputs: &'a [String]) -> Option<&'a str> {
    static KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"source\":\""));
    let at = KEY.find_iter(payload).last()? + KEY.needle().len();
    let rest = &payload[at..];
    inputs
        .iter()
        .filter(|name| {
            rest.starts_with(name.as_bytes()) && matches!(rest.get(name.len()), Some(b':' | b'"'))
        })
        .max_by_key(|name| name.len())
        .map(String::as_str)
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Everything a scrape reads. Shared by the runtime's parts.
pub struct AgentMetrics {
    pub(crate) ingest: Arc<IngestStats>,
    pub(crate) filters: Arc<FilterChain>,
    pub(crate) queue: QueueMonitor,
    pub(crate) quarantined: u64,
    pub(crate) input_names: Vec<String>,
    pub(crate) inputs: Mutex<Vec<InputSnapshot>>,
    pub(crate) outputs: Vec<(String, Arc<OutputCounters>)>,
    pub(crate) collectors: Vec<(String, Arc<CollectorStats>)>,
    /// Set once inputs and outputs run.
    pub(crate) started: AtomicBool,
    /// Set when shutdown begins.
    pub(crate) stopping: AtomicBool,
    /// Set when the ingest thread stopped with an error.
    pub(crate) failed: AtomicBool,
    /// When the ingest thread last finished a pass.
    pub(crate) last_pass: Mutex<Instant>,
}

impl AgentMetrics {
    /// Called by the ingest thread after every pass.
    pub(crate) fn pass_done(&self) {
        *self.last_pass.lock().expect("metrics lock") = Instant::now();
    }

    /// The counters of the output named `name`.
    pub(crate) fn output(&self, name: &str) -> Arc<OutputCounters> {
        self.outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.clone())
            .expect("every output has counters")
    }
}

impl Source for AgentMetrics {
    fn render(&self, out: &mut Exposition) {
        let r = Ordering::Relaxed;
        let inputs = self.inputs.lock().expect("metrics lock").clone();
        let each = |out: &mut Exposition, f: &dyn Fn(&InputStats) -> u64| {
            for i in &inputs {
                out.sample(&[("input", &i.name), ("type", i.kind)], f(&i.stats) as f64);
            }
        };
        out.counter("auditship_agent_input_lines_total", "Lines read, by input.");
        each(out, &|s| s.lines);
        out.counter("auditship_agent_input_bytes_total", "Bytes read, by input.");
        each(out, &|s| s.bytes);
        out.counter(
            "auditship_agent_input_restarts_total",
            "Times an input's source process was started again (journalctl).",
        );
        each(out, &|s| s.restarts);
        let network = |out: &mut Exposition, f: &dyn Fn(&InputStats) -> u64| {
            for i in inputs
                .iter()
                .filter(|i| matches!(i.kind, "http" | "syslog"))
            {
                out.sample(&[("input", &i.name), ("type", i.kind)], f(&i.stats) as f64);
            }
        };
        out.counter(
            "auditship_agent_input_requests_total",
            "Requests accepted (http) or TCP connections accepted (syslog), by network input.",
        );
        network(out, &|s| s.requests);
        out.gauge(
            "auditship_agent_input_connections",
            "Network connections open, by network input.",
        );
        network(out, &|s| s.connections);
        out.counter(
            "auditship_agent_input_rejected_total",
            "Requests answered 503 (http: queue full, timed out, stopping) or connections refused over max_connections (syslog).",
        );
        network(out, &|s| s.rejected);
        out.counter(
            "auditship_agent_input_invalid_total",
            "Requests refused as malformed or too large (http), frames with broken framing (syslog, still delivered).",
        );
        network(out, &|s| s.invalid);
        out.counter(
            "auditship_agent_input_unauthorized_total",
            "Requests without the right token (http) and failed TLS handshakes.",
        );
        network(out, &|s| s.unauthorized);
        out.counter(
            "auditship_agent_input_dropped_total",
            "Messages dropped because ingest could not take them (syslog over UDP only).",
        );
        network(out, &|s| s.dropped);
        out.gauge(
            "auditship_agent_files_tracked",
            "Files open, by file input.",
        );
        for i in inputs.iter().filter(|i| i.kind == "file") {
            out.sample(&[("input", &i.name)], i.stats.files as f64);
        }
        out.counter(
            "auditship_agent_parse_failures_total",
            "Lines no parser understood (queued as unparsed events), by format.",
        );
        let mut by_format: BTreeMap<&str, u64> = BTreeMap::new();
        for i in &inputs {
            *by_format.entry(i.format).or_default() += i.parse.unparsed;
        }
        for (format, n) in by_format {
            out.sample(&[("format", format)], n as f64);
        }
        let i = &self.ingest;
        out.counter(
            "auditship_agent_events_queued_total",
            "Events sealed into the queue.",
        )
        .value(i.queued.load(r) as f64);
        out.counter(
            "auditship_agent_events_dropped_total",
            "Events discarded by drop filters, by filter.",
        );
        for (name, n) in self.filters.dropped() {
            out.sample(&[("filter", &name)], n as f64);
        }
        out.counter(
            "auditship_agent_events_redacted_total",
            "Events changed by redact filters.",
        )
        .value(self.filters.redacted_total() as f64);
        out.counter(
            "auditship_agent_heartbeats_total",
            "Heartbeat events sealed.",
        )
        .value(i.heartbeats.load(r) as f64);
        out.counter(
            "auditship_agent_queue_full_waits_total",
            "Times inputs paused because the queue was full.",
        )
        .value(i.full_waits.load(r) as f64);
        let q = self.queue.status();
        out.gauge(
            "auditship_agent_queue_records",
            "Queue records not yet acknowledged by every output.",
        )
        .value(q.pending_records as f64);
        out.gauge(
            "auditship_agent_queue_bytes",
            "Bytes of queue segment files on disk.",
        )
        .value(q.bytes as f64);
        out.gauge("auditship_agent_queue_max_bytes", "The queue's size limit.")
            .value(q.max_bytes as f64);
        out.gauge(
            "auditship_agent_queue_oldest_unacked_age_seconds",
            "Age of the oldest queue record not acknowledged by every output (0 when none).",
        )
        .value(q.oldest_unacked_age.map_or(0.0, |d| d.as_secs_f64()));
        out.gauge(
            "auditship_agent_queue_quarantined_records",
            "Corrupt queue ranges set aside at start.",
        )
        .value(self.quarantined as f64);
        let outputs = &self.outputs;
        let per = |out: &mut Exposition, f: &dyn Fn(&OutputCounters) -> f64| {
            for (name, c) in outputs {
                out.sample(&[("output", name)], f(c));
            }
        };
        out.counter(
            "auditship_agent_output_events_total",
            "Events delivered, by output.",
        );
        per(out, &|c| c.events.load(r) as f64);
        out.counter(
            "auditship_agent_output_events_by_input_total",
            "Events delivered, by output and by the input that read them.",
        );
        for (name, c) in outputs {
            for (input, n) in c.by_input.lock().expect("metrics lock").iter() {
                out.sample(&[("output", name), ("input", input)], *n as f64);
            }
        }
        out.counter(
            "auditship_agent_output_batches_total",
            "Batches delivered, by output.",
        );
        per(out, &|c| c.batches.load(r) as f64);
        out.counter(
            "auditship_agent_output_retries_total",
            "Failed delivery attempts (retried), by output.",
        );
        per(out, &|c| c.retries.load(r) as f64);
        out.gauge(
            "auditship_agent_output_last_delivery_timestamp_seconds",
            "Unix time of the last successful delivery, by output (0: none since start).",
        );
        per(out, &|c| c.last_delivery_ms.load(r) as f64 / 1000.0);
        out.counter(
            "auditship_agent_output_dead_letters_total",
            "Batches the destination refused, moved to the dead-letter directory.",
        );
        for (name, _) in outputs {
            let n = self
                .collectors
                .iter()
                .find(|(c, _)| c == name)
                .map_or(0, |(_, s)| s.dead_letters.load(r));
            out.sample(&[("output", name)], n as f64);
        }
        let coll = |out: &mut Exposition, f: &dyn Fn(&CollectorStats) -> u64| {
            for (name, s) in &self.collectors {
                out.sample(&[("output", name)], f(s) as f64);
            }
        };
        out.counter(
            "auditship_agent_collector_duplicates_total",
            "Events the collector already had (absorbed retries), by output.",
        );
        coll(out, &|s| s.duplicates.load(r));
        out.counter(
            "auditship_agent_witness_inconsistent_total",
            "Collector checkpoints that were badly signed or not consistent with the one kept (critical).",
        );
        coll(out, &|s| s.inconsistent_checkpoints.load(r));
        out.counter(
            "auditship_agent_witness_errors_total",
            "Collector checkpoints or proofs that could not be fetched.",
        );
        coll(out, &|s| s.witness_errors.load(r));
        let h = self.health();
        out.gauge("auditship_agent_up", "1 while the agent is live.")
            .value(f64::from(u8::from(h.live)));
        out.gauge("auditship_agent_ready", "1 while the agent is ready.")
            .value(f64::from(u8::from(h.ready)));
    }

    fn health(&self) -> Health {
        let r = Ordering::Relaxed;
        let idle = self.last_pass.lock().expect("metrics lock").elapsed();
        let q = self.queue.status();
        let full = q.bytes + (1 << 20) >= q.max_bytes;
        let (live, ready, status) = if self.failed.load(r) {
            (false, false, "ingest stopped with an error".to_string())
        } else if self.started.load(r) && idle > STUCK_AFTER && !full {
            (
                false,
                false,
                format!("ingest made no pass for {}s", idle.as_secs()),
            )
        } else if self.stopping.load(r) {
            (true, false, "stopping".into())
        } else if !self.started.load(r) {
            (true, false, "starting".into())
        } else if full {
            (
                true,
                true,
                "queue full: inputs paused until outputs catch up".into(),
            )
        } else {
            (true, true, "ok".into())
        };
        Health {
            live,
            ready,
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_attributed_to_the_input_named_in_their_source() {
        let names = vec![
            "app".to_string(),
            "app:v2".to_string(),
            "journal".to_string(),
        ];
        let ev = |src: &str| format!(r#"{{"action":"x","source":"{src}","v":1}}"#).into_bytes();
        assert_eq!(input_of(&ev("app:/var/log/a.log"), &names), Some("app"));
        // The longest name that fits wins: an input name may hold a colon.
        assert_eq!(
            input_of(&ev("app:v2:/var/log/a.log"), &names),
            Some("app:v2")
        );
        assert_eq!(input_of(&ev("journal"), &names), Some("journal"));
        assert_eq!(input_of(&ev("journalx"), &names), None);
        assert_eq!(input_of(br#"{"action":"agent_heartbeat"}"#, &names), None);
        // Regression: the first match was taken, and an application's own
        // `fields.source` (sorted before the top-level key) won.
        let own =
            br#"{"action":"x","fields":{"source":"journal"},"raw":"r","source":"app:/a","v":1}"#;
        assert_eq!(input_of(own, &names), Some("app"));
        let c = OutputCounters::default();
        let mut batch = Batch::default();
        for (id, p) in [
            ev("app:/a"),
            ev("journal"),
            ev("journal"),
            br#"{"x":1}"#.to_vec(),
        ]
        .iter()
        .enumerate()
        {
            // The chain stream: network inputs' events, read by `source`.
            batch.push_streamed_for_test(id as u64 + 1, b"\0chain", p);
        }
        c.delivered(&batch, batch.len(), &names);
        assert_eq!(c.events.load(Ordering::Relaxed), 4);
        let by = c.by_input.lock().unwrap().clone();
        assert_eq!(
            by,
            BTreeMap::from([("app".into(), 1), ("journal".into(), 2)])
        );
        assert!(c.last_delivery_ms.load(Ordering::Relaxed) > 0);
    }

    /// Events whose queue stream begins with an input's name count for that
    /// input without their payload being read (it used to be scanned for
    /// `source` for every event: ~2 % of a shipping agent's CPU); a stream
    /// that names no input falls back to the payload. Counting the first
    /// `n` events of a batch, or a slice of one, counts exactly those.
    #[test]
    fn delivered_events_count_by_the_input_their_stream_names() {
        let names = vec![
            "app".to_string(),
            "app:v2".to_string(),
            "journal".to_string(),
        ];
        let mut batch = Batch::default();
        let events: [(&[u8], &[u8]); 6] = [
            (b"app\0dev-ino-1", br#"{"no":"source"}"#),
            (b"app\0dev-ino-2", br#"{"no":"source"}"#),
            (b"app:v2\0dev-ino", br#"{"no":"source"}"#),
            (b"journal\0J", br#"{"source":"app"}"#),
            (b"other\0x", br#"{"source":"app:v2:/f"}"#),
            (b"app\0dev-ino-1", br#"{"no":"source"}"#),
        ];
        for (i, (stream, payload)) in events.iter().enumerate() {
            batch.push_streamed_for_test(i as u64 + 1, stream, payload);
        }
        let count = |b: &Batch, n: usize| {
            let c = OutputCounters::default();
            c.delivered(b, n, &names);
            let by = c.by_input.lock().unwrap().clone();
            (c.events.load(Ordering::Relaxed), by)
        };
        let map = |v: &[(&str, u64)]| -> BTreeMap<String, u64> {
            v.iter().map(|(k, n)| (k.to_string(), *n)).collect()
        };
        assert_eq!(
            count(&batch, 6),
            (6, map(&[("app", 3), ("app:v2", 2), ("journal", 1)]))
        );
        assert_eq!(count(&batch, 3), (3, map(&[("app", 2), ("app:v2", 1)])));
        let tail = batch.slice(3, 6);
        assert_eq!(
            count(&tail, 3),
            (3, map(&[("app", 1), ("app:v2", 1), ("journal", 1)]))
        );
        assert_eq!(count(&batch.slice(1, 2), 1), (1, map(&[("app", 1)])));
    }
}
