//! Inputs: where lines come from.
//!
//! Each input hands lines, with the stream key and position they came from,
//! to a [`file::Sink`]; the sink parses, filters and queues them. Positions
//! are opaque to everything but the input that made them.

pub mod file;
