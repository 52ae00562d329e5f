//! auditship-core: the audit event and everything that must be byte-exact.
//!
//! Every other crate depends on this one. It holds:
//!
//! * [`event`]: the [`AuditEvent`] schema, one shape for every log source;
//! * [`time`]: timestamps that keep their UTC offset, with fixed parsing and
//!   formatting;
//! * [`lossless`]: turning raw bytes into text without silently replacing
//!   invalid UTF-8;
//! * [`canonical`]: the versioned, documented byte form that hashes and
//!   signatures cover;
//! * [`ecs`] and [`ocsf`]: renderings for SIEMs that speak the Elastic Common
//!   Schema or OCSF;
//! * [`merkle`]: the RFC 9162 Merkle tree over stored events: roots,
//!   inclusion and consistency proofs and their verification;
//! * [`seal`]: the per-agent hash chain and the sealed event form;
//! * [`identity`]: Ed25519 keys of agents and collectors;
//! * [`checkpoint`]: the collector's signed statements of its Merkle root;
//! * [`wire`]: the signed batch format agents send collectors;
//! * [`bundle`]: export bundles of events with inclusion proofs.

pub mod bundle;
pub mod canonical;
pub mod checkpoint;
pub mod cidr;
pub mod ecs;
pub mod event;
pub mod hex;
pub mod identity;
pub mod lossless;
pub mod merkle;
pub mod ocsf;
pub mod seal;
pub mod time;
pub mod wire;

pub use event::{Actor, AuditEvent, Category, Flags, Http, Outcome, Target};
pub use time::Timestamp;

/// A SHA-256 digest: chain hashes, Merkle leaf and node hashes, roots.
pub type Hash = [u8; 32];
