//! auditship-agent: the per-host pipeline runtime.
//!
//! The agent moves events from inputs through parsers and filters into a
//! crash-safe disk queue, and from the queue to outputs:
//!
//! ```text
//! file input -> framing -> parser -> filters -> disk queue (fsync) -> output -> ack
//! ```
//!
//! * [`filter`]: enrich, redact and drop, each counting what it drops.
//! * [`queue`]: append-only, checksummed segments; the source of truth for
//!   input positions.
//!
//! The agent's invariants are written down in `../shared/design.md` and, for
//! each part, in its module docs.

pub mod config;
pub mod filter;
pub mod input;
pub mod queue;
