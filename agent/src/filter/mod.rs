//! Filters: `enrich`, `redact` and `drop`, run on every event between the
//! parser and the disk queue.
//!
//! * `enrich` adds the host, tags and static fields ([`enrich`]).
//! * `redact` masks secrets by field, query parameter or regex, in the
//!   field and in `raw` alike, so a typed password never reaches the store
//!   ([`redact`]).
//! * `drop` discards noise by rule, such as health checks ([`mod@drop`]).
//!
//! Configuration comes in two stages. Stage one is the serde types of
//! [`config`], read from the agent's `[[filters]]` TOML tables; they reject
//! unknown keys. Stage two, [`build_chain`] (or each config's `validate`),
//! checks the values, compiles regexes and CIDR blocks, and reports
//! problems as [`FilterError`]s that name the filter and key
//! (`filters[2].rules[0].url_regex: …`).
//!
//! At runtime a [`FilterChain`] applies the filters in order and returns a
//! [`Verdict`]. Every dropped event is counted per filter
//! ([`FilterChain::dropped`]), and so is every redacted one
//! ([`FilterChain::redacted`]).

pub mod chain;
pub use auditship_core::cidr;
pub mod config;
pub mod drop;
pub mod enrich;
pub mod error;
pub mod login;
pub mod query;
pub mod redact;

#[cfg(test)]
mod tests;

pub use auditship_core::cidr::IpNet;
pub use chain::{build_chain, Filter, FilterChain, Verdict};
pub use config::{
    DropConfig, DropRuleConfig, EnrichConfig, FilterConfig, PatternConfig, RedactConfig,
};
pub use drop::DropFilter;
pub use enrich::{system_hostname, EnrichFilter};
pub use error::FilterError;
pub use login::looks_like_password;
pub use query::SECRET_QUERY_PARAMS;
pub use redact::RedactFilter;

/// What a redacted value or secret becomes.
pub const REDACTED: &str = "[REDACTED]";

/// The `fields` entry set to `"true"` on an event a `redact` filter changed.
pub const REDACTED_FIELD: &str = "redacted";

/// The `fields` entry holding an event's comma-separated tags.
pub const TAGS_FIELD: &str = "tags";
