//! The stdout output: NDJSON on standard output, at least once (a pipe
//! cannot be cut back, so events after the last acknowledgement are written
//! again after a crash).

use std::io::Write;

use super::{Output, OutputError};
use crate::queue::Batch;

/// See the module docs.
pub struct StdoutOutput {
    name: String,
}

impl StdoutOutput {
    /// An output named `name`.
    pub fn new(name: &str) -> Self {
        StdoutOutput {
            name: name.to_string(),
        }
    }
}

impl Output for StdoutOutput {
    fn name(&self) -> &str {
        &self.name
    }

    fn recover(&mut self, _queue_id: u64) -> Result<Option<u64>, OutputError> {
        Ok(None)
    }

    fn deliver(&mut self, batch: &Batch) -> Result<(), OutputError> {
        let mut lines = Vec::new();
        batch.write_sealed_ndjson(&mut lines);
        let mut out = std::io::stdout().lock();
        out.write_all(&lines)
            .and_then(|_| out.flush())
            .map_err(|source| OutputError::Io {
                output: self.name.clone(),
                path: "<stdout>".into(),
                source,
            })
    }
}
