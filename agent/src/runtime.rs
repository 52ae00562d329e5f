//! Running the agent: wiring inputs, queue and outputs, and its lifecycle.
//!
//! ```text
//! ingest thread:   inputs --lines--> IngestSink (parse, filter, encode, seal) --> QueueWriter
//!                  one commit (fsync) per pass over all inputs: group commit;
//!                  a heartbeat is sealed first in a pass when one is due
//! heartbeat task:  tokio timer; marks a heartbeat due after `heartbeat` idle
//! output threads:  QueueReader --batch--> Output::deliver --> ack
//! ```
//!
//! Lifecycle:
//! * **Start** is always a recovery: the identity key is loaded (created at
//!   first start), the queue is scanned and repaired, the chain head is
//!   recovered from it (see [`crate::seal`]), the inputs resume from the
//!   positions it holds, and each output reports what it already has so the
//!   queue resumes after it.
//! * **SIGTERM** (the `shutdown` token): inputs stop at the next line
//!   boundary (network inputs stop listening, and one last pass queues what
//!   they had accepted) and what was read is committed; outputs deliver
//!   everything queued, then exit. After `shutdown_grace`, outputs stop even
//!   if events remain; those stay queued and are delivered after the next
//!   start.
//! * **SIGHUP** (a reload, see [`crate::lifecycle`]): inputs stop at the
//!   next line boundary (network inputs as at SIGTERM) and what was read is
//!   committed; outputs stop after the batch in hand, without draining; a
//!   new pipeline starts from the queue with the new config.
//! * **SIGKILL** at any moment loses nothing that was read from a file or
//!   the journal, or acknowledged to an HTTP client: the next start is the
//!   same recovery as any other. (Syslog senders get no acknowledgement;
//!   what the agent had read from them but not yet queued is lost, see
//!   [`crate::input::syslog`].)
//! * A failed fsync stops the agent with an error (see the queue docs).
//!
//! Timers: the periodic counters, the heartbeat timer, the collector
//! output's witness interval and the output retry backoff use
//! `tokio::time` (the backoff sleeps through the runtime's handle from the
//! output's blocking thread, so a paused clock pauses it). The ingest loop's
//! trickle coalescing (50 ms) is a `std::thread::sleep` on its blocking
//! thread, whose work is file I/O and fsync.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use auditship_plugins::Parser;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{AgentConfig, InputKind, OutputConfig};
use crate::filter::{build_chain, FilterChain, FilterError};
use crate::ingest::{Appender, IngestSink, IngestStats};
use crate::input::file::FileInput;
use crate::input::http::HttpInput;
use crate::input::journald::JournaldInput;
use crate::input::syslog::SyslogInput;
use crate::input::{Bell, Input, InputError};
use crate::metrics::{AgentMetrics, InputSnapshot, OutputCounters, PUBLISH_EVERY};
use crate::output::{CollectorOutput, FileOutput, Output, StdoutOutput};
use crate::queue::{self, QueueError, QueueWriter};
use crate::seal::heartbeat::{self, Heartbeat};
use crate::seal::{ChainHead, Sealer, CHAIN_STREAM};

mod delivery;
use delivery::output_loop;

/// Why the agent stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The state directory cannot be created.
    #[error("cannot create state directory {path}: {source}")]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The queue failed in a way that needs a restart.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A filter could not be built.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// An input could not be built or failed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A parser could not be built.
    #[error(transparent)]
    Parser(#[from] auditship_plugins::ParserError),
    /// The identity key cannot be loaded or created.
    #[error("agent identity: {0}")]
    Identity(#[from] auditship_core::identity::KeyError),
    /// An output could not be set up (token file, certificates).
    #[error("output {name:?}: {message}")]
    Output {
        /// Output name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// What a run did, for logs and tests.
#[derive(Debug, Default, Clone)]
pub struct RunSummary {
    /// Events queued.
    pub queued: u64,
    /// Events dropped by filters.
    pub dropped: u64,
    /// Lines queued as `unparsed`.
    pub unparsed: u64,
    /// Corrupt queue ranges quarantined at start.
    pub quarantined: usize,
    /// Whether every output delivered everything before exiting.
    pub drained: bool,
}

impl RunSummary {
    /// Two pipelines' summaries as one; `drained` is the later one's.
    pub fn then(self, later: RunSummary) -> RunSummary {
        RunSummary {
            queued: self.queued + later.queued,
            dropped: self.dropped + later.dropped,
            unparsed: self.unparsed + later.unparsed,
            quarantined: self.quarantined + later.quarantined,
            drained: later.drained,
        }
    }
}

/// Bytes read from one file per pass before moving to the next.
const READ_BUDGET: usize = 4 << 20;
/// A pass that read less than this is a trickle: wait before the next one.
const COALESCE_BELOW: u64 = 256 << 10;
/// How long to let a trickle accumulate (adds at most this much latency).
const COALESCE_WAIT: Duration = Duration::from_millis(50);

/// Runs the agent until `shutdown` is cancelled, then drains. (Serves
/// `/metrics` when configured; config reloads go through
/// [`crate::lifecycle::run`].)
pub async fn run(cfg: AgentConfig, shutdown: CancellationToken) -> Result<RunSummary, AgentError> {
    crate::lifecycle::run(cfg, shutdown, None, |_| {}).await
}

/// One life of the pipeline, from recovery to a stop: at `shutdown` inputs
/// stop and outputs drain within the grace period; at `restart` inputs stop
/// and outputs stop after the batch in hand, without draining (a reload:
/// the next pipeline starts by recovering the same queue). Its metrics go
/// into `telemetry`.
pub(crate) async fn pipeline(
    cfg: &AgentConfig,
    shutdown: CancellationToken,
    restart: CancellationToken,
    telemetry: &auditship_telemetry::Swap,
    ready: &(dyn Fn(Arc<IngestStats>, crate::queue::QueueMonitor) + Sync),
) -> Result<RunSummary, AgentError> {
    std::fs::create_dir_all(&cfg.state_dir).map_err(|source| AgentError::StateDir {
        path: cfg.state_dir.clone(),
        source,
    })?;
    let identity = Arc::new(crate::seal::load_identity(&cfg.state_dir)?);
    let names: Vec<&str> = cfg.outputs.iter().map(OutputConfig::name).collect();
    let (writer, readers, recovery) = queue::open(cfg.queue.clone(), &names)?;
    let head = recovery.chain.unwrap_or(ChainHead::START);
    tracing::info!(
        pending = recovery.pending,
        streams = recovery.positions.keys().filter(|k| *k != CHAIN_STREAM).count(),
        chain_seq = head.as_of,
        chain_head = %auditship_core::hex::encode(&head.hash),
        quarantined = recovery.quarantined.len(),
        truncated_bytes = recovery.truncated_bytes,
        "queue recovered"
    );
    if !recovery.quarantined.is_empty() {
        tracing::error!(
            count = recovery.quarantined.len(),
            dir = %cfg.queue.dir.join("quarantine").display(),
            "queue records failed their checksum and were quarantined; everything else will be delivered"
        );
    }
    let filters = Arc::new(build_chain(&cfg.filters)?);
    let bell = Bell::new();
    let mut inputs: Vec<(Box<dyn Input>, Parser)> = Vec::new();
    for i in &cfg.inputs {
        let input: Box<dyn Input> = match &i.kind {
            InputKind::File(f) => Box::new(FileInput::new(
                f.clone(),
                &recovery.positions,
                bell.clone(),
            )?),
            InputKind::Journald(j) => Box::new(JournaldInput::new(
                j.clone(),
                &recovery.positions,
                bell.clone(),
            )?),
            InputKind::Http(h) => Box::new(HttpInput::new(
                h.clone(),
                writer.durability(),
                bell.clone(),
            )?),
            InputKind::Syslog(s) => Box::new(SyslogInput::new(s.clone(), bell.clone())?),
        };
        inputs.push((input, Parser::new(&i.parser)?));
    }
    let stats = Arc::new(IngestStats::default());
    let tracker = TaskTracker::new();
    let hard_stop = CancellationToken::new();
    let mut outputs = Vec::new();
    let mut collectors = Vec::new();
    for out in &cfg.outputs {
        let output: Box<dyn Output> = match out {
            OutputConfig::File { name, path } => Box::new(FileOutput::new(name, path)),
            OutputConfig::Stdout { name } => Box::new(StdoutOutput::new(name)),
            OutputConfig::Collector(c) => {
                let o = CollectorOutput::new((**c).clone(), &cfg.agent_id, identity.clone())
                    .map_err(|message| AgentError::Output {
                        name: c.name.clone(),
                        message,
                    })?;
                collectors.push((c.name.clone(), o.stats.clone()));
                Box::new(o)
            }
        };
        outputs.push(output);
    }
    let metrics = Arc::new(AgentMetrics {
        ingest: stats.clone(),
        filters: filters.clone(),
        queue: writer.monitor(),
        quarantined: recovery.quarantined.len() as u64,
        input_names: cfg.inputs.iter().map(|i| i.name().to_string()).collect(),
        inputs: Default::default(),
        outputs: cfg
            .outputs
            .iter()
            .map(|o| (o.name().to_string(), Arc::new(OutputCounters::default())))
            .collect(),
        collectors,
        started: Default::default(),
        stopping: Default::default(),
        failed: Default::default(),
        last_pass: std::sync::Mutex::new(std::time::Instant::now()),
    });
    telemetry.set(metrics.clone());
    // Inputs (and timers) stop on `stop`: at shutdown, or at a restart,
    // which also stops the outputs without draining.
    let stop = CancellationToken::new();
    let restarting = {
        let (stop, hard) = (stop.clone(), hard_stop.clone());
        let (shutdown, restart) = (shutdown.clone(), restart.clone());
        tokio::spawn(async move {
            let restarting = tokio::select! {
                _ = shutdown.cancelled() => false,
                _ = restart.cancelled() => { hard.cancel(); true },
                _ = stop.cancelled() => false,
            };
            stop.cancel();
            restarting
        })
    };
    let input_names: Arc<[String]> = metrics.input_names.clone().into();
    for (reader, output) in readers.into_iter().zip(outputs) {
        let (hard, queue_id) = (hard_stop.clone(), recovery.queue_id);
        let handle = tokio::runtime::Handle::current();
        let counters = (metrics.output(output.name()), input_names.clone());
        tracker
            .spawn_blocking(move || output_loop(output, reader, queue_id, hard, handle, counters));
    }
    let heartbeat = cfg.heartbeat.map(Heartbeat::new);
    if let Some(hb) = &heartbeat {
        tokio::spawn(hb.clone().run(stop.clone()));
    }
    let queue_monitor = writer.monitor();
    let ingest = {
        let (stop, stats, metrics) = (stop.clone(), stats.clone(), metrics.clone());
        let parts = IngestParts {
            writer,
            sealer: Sealer::new(head),
            inputs,
            bell,
            filters: filters.clone(),
            agent_id: cfg.agent_id.clone(),
            heartbeat,
            metrics: metrics.clone(),
        };
        tracker.spawn_blocking(move || {
            let r = ingest_loop(parts, &stop, &stats);
            if r.is_err() {
                // A fatal ingest error stops the whole agent.
                metrics.failed.store(true, Ordering::Relaxed);
                stop.cancel();
            }
            r
        })
    };
    tracker.close();
    metrics.started.store(true, Ordering::Relaxed);
    ready(stats.clone(), queue_monitor);
    // Counters in the log every minute (and on /metrics).
    let reporter = {
        let (stats, filters, stop) = (stats.clone(), filters.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(STATS_EVERY);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => log_stats(&stats, &filters),
                    _ = stop.cancelled() => break,
                }
            }
        })
    };
    stop.cancelled().await;
    metrics.stopping.store(true, Ordering::Relaxed);
    let _ = reporter.await;
    let restarting = restarting.await.unwrap_or(false);
    let drained = if restarting {
        tracing::info!(
            "reloading: inputs stop at a line boundary, outputs after the batch in hand"
        );
        tracker.wait().await;
        false
    } else {
        tracing::info!(grace = ?cfg.shutdown_grace, "stopping: inputs stop, outputs deliver what is queued");
        tokio::time::timeout(cfg.shutdown_grace, tracker.wait())
            .await
            .is_ok()
    };
    if !drained && !restarting {
        tracing::warn!(
            "shutdown grace period over; undelivered events stay queued for the next start"
        );
        hard_stop.cancel();
        tracker.wait().await;
    }
    let ingest_result = ingest.await.unwrap_or(Ok(()));
    let summary = RunSummary {
        queued: stats.queued.load(Ordering::Relaxed),
        dropped: stats.dropped.load(Ordering::Relaxed),
        unparsed: stats.unparsed.load(Ordering::Relaxed),
        quarantined: recovery.quarantined.len(),
        drained,
    };
    log_stats(&stats, &filters);
    tracing::info!(
        queued = summary.queued,
        dropped = summary.dropped,
        unparsed = summary.unparsed,
        "{}",
        if restarting {
            "pipeline stopped for the reload"
        } else {
            "agent stopped"
        }
    );
    ingest_result.map(|_| summary)
}

/// How often counters are logged.
const STATS_EVERY: Duration = Duration::from_secs(60);

fn log_stats(stats: &IngestStats, filters: &FilterChain) {
    let per_filter: Vec<String> = filters
        .dropped()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name}={n}"))
        .collect();
    tracing::info!(
        queued = stats.queued.load(Ordering::Relaxed),
        unparsed = stats.unparsed.load(Ordering::Relaxed),
        dropped = stats.dropped.load(Ordering::Relaxed),
        dropped_by = %per_filter.join(" "),
        redacted = filters.redacted_total(),
        full_queue_waits = stats.full_waits.load(Ordering::Relaxed),
        heartbeats = stats.heartbeats.load(Ordering::Relaxed),
        "agent counters"
    );
}

/// What the ingest thread owns.
struct IngestParts {
    writer: QueueWriter,
    sealer: Sealer,
    inputs: Vec<(Box<dyn Input>, Parser)>,
    bell: Bell,
    filters: Arc<FilterChain>,
    agent_id: String,
    heartbeat: Option<Heartbeat>,
    metrics: Arc<AgentMetrics>,
}

fn ingest_loop(
    parts: IngestParts,
    stop: &CancellationToken,
    stats: &IngestStats,
) -> Result<(), AgentError> {
    let IngestParts {
        mut writer,
        mut sealer,
        mut inputs,
        bell,
        filters,
        agent_id,
        heartbeat,
        metrics,
    } = parts;
    let mut published = std::time::Instant::now() - PUBLISH_EVERY;
    let started = std::time::Instant::now();
    let host = crate::filter::system_hostname().unwrap_or_else(|| agent_id.clone());
    let mut dropped_positions = HashMap::new();
    let mut payload = Vec::with_capacity(64 << 10);
    let mut source_cache = (PathBuf::new(), String::new());
    let mut last_pass = false;
    'run: while !last_pass {
        if stop.is_cancelled() {
            // Network inputs stop listening; one last pass queues what they
            // had already accepted.
            inputs.iter_mut().for_each(|(input, _)| input.stop());
            last_pass = true;
        }
        stats.passes.fetch_add(1, Ordering::Relaxed);
        let mut read = 0;
        let mut sealed = 0;
        if let Some(hb) = heartbeat.as_ref().filter(|hb| hb.take_due()) {
            let ev = heartbeat::event(
                &agent_id,
                &host,
                sealer.head(),
                hb.interval(),
                started.elapsed(),
            );
            let mut out = Appender {
                writer: &mut writer,
                sealer: &mut sealer,
                stop,
                stats,
            };
            match out.heartbeat(ev, &mut payload) {
                Ok(()) => sealed += 1,
                Err(InputError::Stopped) => break 'run,
                Err(e) => return Err(e.into()),
            }
        }
        for (input, parser) in inputs.iter_mut() {
            let name = input.name().to_string();
            let mut sink = IngestSink {
                out: Appender {
                    writer: &mut writer,
                    sealer: &mut sealer,
                    stop,
                    stats,
                },
                parser,
                filters: &filters,
                agent_id: &agent_id,
                input: &name,
                dropped_positions: &mut dropped_positions,
                payload: &mut payload,
                source_cache: &mut source_cache,
                sealed: 0,
            };
            let polled = input.poll(&mut sink, READ_BUDGET).and_then(|n| {
                sink.flush_idle()?;
                sink.flush_dropped()?;
                Ok(n)
            });
            sealed += sink.sealed;
            match polled {
                Ok(n) => read += n,
                Err(InputError::Stopped) => break 'run,
                Err(e) => return Err(e.into()),
            }
        }
        if sealed > 0 {
            if let Some(hb) = &heartbeat {
                hb.sealed();
            }
        }
        commit(&mut writer, stop, stats, true)?;
        metrics.pass_done();
        if published.elapsed() >= PUBLISH_EVERY {
            published = std::time::Instant::now();
            *metrics.inputs.lock().expect("metrics lock") = inputs
                .iter()
                .map(|(input, parser)| InputSnapshot {
                    name: input.name().to_string(),
                    kind: input.kind(),
                    format: parser.format().as_str(),
                    stats: input.stats(),
                    parse: parser.stats(),
                })
                .collect();
        }
        if read == 0 {
            bell.wait(Duration::from_millis(50));
        } else if read < COALESCE_BELOW {
            // A trickle: let a few writes accumulate so one commit (one
            // fsync) covers them, instead of one per write.
            std::thread::sleep(COALESCE_WAIT);
        }
    }
    commit(&mut writer, stop, stats, false)
}

/// Commits, retrying write failures (a full disk) until they clear or the
/// agent stops. Uncommitted lines are read again after a restart, so giving
/// up at shutdown loses nothing.
fn commit(
    writer: &mut QueueWriter,
    stop: &CancellationToken,
    stats: &IngestStats,
    pipelined: bool,
) -> Result<(), AgentError> {
    let mut logged = false;
    loop {
        let r = if pipelined {
            writer.commit_async()
        } else {
            writer.commit().map(|_| ())
        };
        match r {
            Ok(()) => return Ok(()),
            Err(e @ QueueError::Fsync { .. }) => return Err(e.into()),
            Err(e) => {
                if !logged {
                    tracing::error!(error = %e, "queue write failed; inputs paused until it succeeds");
                    logged = true;
                }
                if stop.is_cancelled() {
                    return Ok(());
                }
                stats.passes.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}
