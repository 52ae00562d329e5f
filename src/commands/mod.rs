//! The implementations of `auditship`'s subcommands.

pub mod agent;
pub mod parse;
pub mod validate;
