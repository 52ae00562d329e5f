//! auditship-agent: the per-host pipeline runtime.
//!
//! This crate will hold the agent's configuration, the pipeline that moves
//! events from inputs through parsers and filters to the sealer, the
//! crash-safe disk queue, and lifecycle handling (reload, drain). It is empty
//! until the agent-core work lands; the parsers it will drive live in
//! `auditship-plugins`.
