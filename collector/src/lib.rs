//! auditship-collector: the central endpoint.
//!
//! Agents post batches ([`auditship_core::wire`]) to the ingest server; the
//! collector checks the token-to-agent binding, deduplicates by
//! `(agent_id, queue, seq)`, stores the events durably, and only then
//! answers. Readers query what is stored.
//!
//! * [`store`]: the storage traits and version 1 (segment files + index).
//! * [`merkle_log`]: the RFC 9162 Merkle tree over the stored events, on
//!   disk, for roots and proofs at any size.
//! * [`metrics`]: Prometheus `/metrics` and `/health` on a listener of their own.
//! * [`retention`]: policies, expiry with tombstones, archive, legal holds.
//! * [`alerts`]: alert rules evaluated as events arrive, stored alert events, webhooks.
//! * [`access`]: roles and permissions, access records; [`token_store`] and
//!   [`admin_api`]: tokens managed at runtime.

pub mod access;
pub mod admin_api;
pub mod alerts;
pub mod auth;
pub mod checkpoints;
pub mod config;
pub mod durable;
pub mod enrol;
pub mod gaps;
pub mod identities;
pub mod ingest;
pub mod integrity;
pub mod liveness;
pub mod merkle_log;
pub mod metrics;
pub mod proof_api;
pub mod query_api;
pub mod retention;
pub mod running;
pub mod server;
pub mod store;
pub mod token_store;
pub mod verify;
