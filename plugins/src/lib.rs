//! auditship-plugins: the parts of the pipeline that touch the outside world.
//!
//! For now this is the parsers ([`parsers`]): access logs, syslog framing,
//! auth logs and JSON lines, each mapping one line to one
//! [`auditship_core::AuditEvent`]. Inputs, filters and outputs join them as
//! the agent grows; each is a module plus one variant in the config enum
//! that names it, with no hidden registration.

pub mod framing;
pub mod parsers;

pub use parsers::{Format, Grouped, ParseStats, Parser, ParserError, ParserOptions, StreamLine};
