//! Outputs: where queued events go.
//!
//! An output delivers a [`Batch`] durably and only then returns; the
//! pipeline then acknowledges the batch in the queue. An output that can
//! remember what it has durably delivered reports it from
//! [`Output::recover`] at start, and the pipeline skips what it already has,
//! which makes delivery exactly-once for that output.
//!
//! Adding an output is a module here, a variant of
//! [`crate::config::RawOutput`], and an example in `config/agent.toml`.

mod file;
mod stdout;

pub use file::FileOutput;
pub use stdout::StdoutOutput;

use std::path::PathBuf;

use crate::queue::Batch;

/// Output failures. All of them are retried: the batch stays queued.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Reading or writing a file failed.
    #[error("output {output:?}: {path}: {source}")]
    Io {
        /// Output name.
        output: String,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// A destination for events.
pub trait Output: Send {
    /// The output's name (its consumer name in the queue).
    fn name(&self) -> &str;
    /// Prepares the output after a start or crash. Returns the id of the last
    /// event of queue `queue_id` it durably holds, if it keeps track;
    /// everything after it will be delivered again.
    fn recover(&mut self, queue_id: u64) -> Result<Option<u64>, OutputError>;
    /// Delivers the batch durably.
    fn deliver(&mut self, batch: &Batch) -> Result<(), OutputError>;
}
