//! The implementations of `auditship`'s subcommands.

pub mod parse;
