//! auditship-agent: the per-host pipeline runtime.
//!
//! The agent moves events from inputs through parsers and filters into a
//! crash-safe disk queue, and from the queue to outputs:
//!
//! ```text
//! file input -> framing -> parser -> filters -> sealer -> disk queue (fsync) -> output -> ack
//! ```
//!
//! * [`config`]: the TOML configuration, parsed then validated.
//! * [`input`]: the file input, which tails files across rotation, and the
//!   journald input.
//! * [`ingest`]: a line becomes a queued event (parse, stamp, filter, encode,
//!   seal).
//! * [`seal`]: the agent's identity key, the hash chain and its recovery from
//!   the queue, and heartbeats.
//! * [`filter`]: enrich, redact and drop, each counting what it drops.
//! * [`queue`]: append-only, checksummed segments; the source of truth for
//!   input positions.
//! * [`output`]: file (exactly once) and stdout (at least once).
//! * [`metrics`]: Prometheus `/metrics` and `/health`.
//! * [`lifecycle`]: pipelines across config reloads (SIGHUP).
//! * [`runtime`]: the wiring and the lifecycle (start = recovery, drain on
//!   SIGTERM).
//! * [`running`]: what a running agent shows its supervisor (counters and
//!   the liveness the systemd watchdog checks).
//!
//! The agent's invariants are written down in `../shared/design.md` and, for
//! each part, in its module docs.

pub mod config;
pub mod filter;
pub mod ingest;
pub mod input;
pub mod lifecycle;
pub mod metrics;
pub mod output;
pub mod queue;
pub mod running;
pub mod runtime;
pub mod seal;
