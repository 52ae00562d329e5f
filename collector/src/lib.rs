//! auditship-collector: the central endpoint.
//!
//! This crate will hold the ingest server, authentication and roles, the
//! append-only store, the Merkle log and the query API. It is empty until the
//! shipping work lands.
