//! The implementations of `auditship`'s subcommands.

pub mod agent;
pub mod alerts;
pub mod collector;
pub mod deadletter;
pub mod demo;
pub mod export;
pub mod key;
pub mod parse;
pub mod progress;
pub mod query;
pub mod quickstart;
pub mod remote;
pub mod retention;
pub mod store;
pub mod token;
pub mod validate;
pub mod verify;
