//! Outputs: where queued events go.
//!
//! An output delivers a [`Batch`] durably and only then returns; the
//! pipeline then acknowledges the batch in the queue. An output may instead
//! pipeline ([`Output::submit`]): it takes batch after batch, keeps requests
//! in flight across them, and reports how far delivery has durably got;
//! the pipeline acknowledges exactly that far. An output that can
//! remember what it has durably delivered reports it from
//! [`Output::recover`] at start, and the pipeline skips what it already has,
//! which makes delivery exactly-once for that output. The collector output
//! needs no such memory: the collector deduplicates by `(agent_id, queue,
//! seq)`.
//!
//! A failed delivery is retried by the pipeline, forever, with exponential
//! backoff and full jitter ([`RetryPolicy`]); the batch stays queued.
//!
//! Adding an output is a module here, a variant of
//! [`crate::config::RawOutput`], and an example in `config/agent.toml`.

mod client;
mod collector;
pub mod deadletter;
mod file;
mod stdout;
pub mod witness;

pub use client::build_client;
pub use collector::{CollectorOutput, CollectorOutputConfig, CollectorStats, TokenSource};
pub use file::FileOutput;
pub use stdout::StdoutOutput;
pub use witness::{CollectorKey, WitnessConfig};

use std::path::PathBuf;
use std::time::Duration;

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
    /// The destination cannot take the batch now (unreachable, busy,
    /// refusing our credentials).
    #[error("output {output:?}: {message}")]
    Unavailable {
        /// Output name.
        output: String,
        /// What happened.
        message: String,
        /// How long the destination asked us to wait (Retry-After).
        retry_after: Option<Duration>,
    },
}

impl OutputError {
    /// The wait the destination asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            OutputError::Unavailable { retry_after, .. } => *retry_after,
            OutputError::Io { .. } => None,
        }
    }
}

/// How an output wants its batches cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most events per batch.
    pub max_events: usize,
    /// Roughly the most payload bytes per batch.
    pub max_bytes: usize,
    /// Once a batch holds an event, how long to keep filling it.
    pub max_wait: Duration,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_events: 20_000,
            max_bytes: 2 << 20,
            max_wait: Duration::from_millis(100),
        }
    }
}

/// Exponential backoff with full jitter: after the n-th consecutive failure
/// wait a uniformly random time in `[0, min(max, initial * 2^n))`, or the
/// destination's Retry-After if that is longer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Base delay.
    pub initial: Duration,
    /// Cap.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

/// Longest Retry-After honoured; a larger value is taken as this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

impl RetryPolicy {
    /// The wait after `failures` consecutive failures; `unit` is a uniform
    /// random number in `[0, 1)`.
    pub fn delay(&self, failures: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        let exp = self
            .initial
            .saturating_mul(1u32 << failures.saturating_sub(1).min(20))
            .min(self.max);
        let jittered = exp.mul_f64(unit.clamp(0.0, 1.0));
        match retry_after {
            Some(r) => jittered.max(r.min(MAX_RETRY_AFTER)),
            None => jittered,
        }
    }
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
    /// Hands a batch over for delivery, after every batch handed over
    /// before it. Returns the id through which everything handed over is
    /// now delivered durably, if that moved. An output that pipelines may
    /// return with requests still in flight; one that does not delivers
    /// the whole batch first, which is the default.
    ///
    /// On an error nothing still in flight counts as delivered: the caller
    /// hands over again, in order, everything after the last id returned.
    fn submit(&mut self, batch: &Batch) -> Result<Option<u64>, OutputError> {
        self.deliver(batch)?;
        Ok(batch.last_id())
    }
    /// Waits until everything handed over is delivered; returns the last
    /// id, if anything was still in flight.
    fn flush(&mut self) -> Result<Option<u64>, OutputError> {
        Ok(None)
    }
    /// How batches should be cut for this output.
    fn batch_limits(&self) -> BatchLimits {
        BatchLimits::default()
    }
    /// How failed deliveries are retried.
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_jittered_and_honours_retry_after() {
        let p = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
        };
        // The upper bound doubles per failure...
        assert_eq!(
            p.delay(1, None, 0.999_999),
            Duration::from_millis(100) - Duration::from_nanos(100)
        );
        assert!(p.delay(4, None, 0.999_999) > Duration::from_millis(799));
        // ...up to the cap.
        assert!(p.delay(40, None, 0.999_999) <= Duration::from_secs(30));
        assert!(p.delay(40, None, 0.999_999) > Duration::from_secs(29));
        // Full jitter: anywhere from zero.
        assert_eq!(p.delay(10, None, 0.0), Duration::ZERO);
        // Retry-After is a floor, bounded.
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(7)), 0.5),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(86_400)), 0.5),
            MAX_RETRY_AFTER
        );
    }
}
