//! Delivery: the loop that moves queued events to one output.
//!
//! One loop per output, on its own blocking thread. It reads a batch from
//! the output's queue reader, hands it to the output
//! ([`Output::submit`]), and acknowledges in the queue exactly as far as
//! the output reports delivery durable. An output that pipelines (the
//! collector output) keeps requests in flight across batches, so the loop
//! keeps the batches it handed over and not yet acknowledged
//! ([`Pending`]); after a failure it waits out the backoff and hands them
//! over again, in order, trimmed to what is not yet acknowledged.
//! Failures are retried forever ([`RetryPolicy`]); events stay queued
//! meanwhile.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::metrics::OutputCounters;
use crate::output::{Output, OutputError, RetryPolicy};
use crate::queue::{Batch, QueueReader};

/// Delivers queued events to one output until the queue is drained after
/// shutdown, or `hard_stop`. Failures are retried forever with the output's
/// [`RetryPolicy`](crate::output::RetryPolicy); the batch stays queued
/// meanwhile.
pub(super) fn output_loop(
    mut output: Box<dyn Output>,
    mut reader: QueueReader,
    queue_id: u64,
    hard_stop: CancellationToken,
    handle: tokio::runtime::Handle,
    (counters, inputs): (Arc<OutputCounters>, Arc<[String]>),
) {
    let mut backoff = Backoff::new(output.retry_policy(), handle);
    let recovered = loop {
        match output.recover(queue_id) {
            Ok(r) => break r,
            Err(e) => {
                backoff.failed(output.name(), &e);
                if !backoff.sleep(&hard_stop, e.retry_after()) {
                    return;
                }
            }
        }
    };
    backoff.reset();
    if let Some(id) = recovered {
        if let Err(e) = reader.skip_through(id) {
            tracing::error!(output = output.name(), error = %e, "cannot record the output's position");
        }
    }
    let limits = output.batch_limits();
    let mut pending = Pending::default();
    // After a failure, everything pending is handed over again first.
    let mut resend = false;
    loop {
        if hard_stop.is_cancelled() {
            return;
        }
        let step = if resend {
            resend = false;
            pending.resubmit(output.as_mut())
        } else {
            // With requests in flight, do not wait for new events: settle
            // what is in flight instead.
            let wait = if pending.is_empty() {
                Duration::from_millis(200)
            } else {
                Duration::ZERO
            };
            let batch = match reader.next_batch_linger(
                limits.max_events,
                limits.max_bytes,
                wait,
                limits.max_wait,
            ) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(output = output.name(), error = %e, "cannot read the queue");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            if !batch.is_empty() {
                let r = output.submit(&batch);
                pending.batches.push_back(batch);
                r
            } else if !pending.is_empty() {
                output.flush()
            } else {
                if reader.finished() {
                    return;
                }
                continue;
            }
        };
        match step {
            Ok(Some(id)) => {
                pending.settle_through(id, &counters, &inputs);
                if backoff.failures > 0 {
                    tracing::info!(
                        output = output.name(),
                        after = backoff.failures,
                        "output recovered; delivering again"
                    );
                    backoff.reset();
                }
                if let Err(e) = reader.ack(id) {
                    tracing::error!(output = output.name(), error = %e, "cannot persist acknowledgement; the batch may be delivered again");
                }
            }
            Ok(None) => {}
            Err(e) => {
                counters.retries.fetch_add(1, Ordering::Relaxed);
                backoff.failed(output.name(), &e);
                if !backoff.sleep(&hard_stop, e.retry_after()) {
                    return;
                }
                resend = true;
            }
        }
    }
}

/// Batches handed to an output and not yet acknowledged, oldest first.
/// An output that pipelines keeps a few requests in flight, so this holds
/// a few batches; their bytes are what the requests carry.
#[derive(Default)]
struct Pending {
    batches: VecDeque<Batch>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Hands every pending batch over again, in order (after a failure,
    /// the output holds nothing in flight). Returns the furthest id settled.
    fn resubmit(&self, output: &mut dyn Output) -> Result<Option<u64>, OutputError> {
        let mut settled = None;
        for b in &self.batches {
            if let Some(id) = output.submit(b)? {
                settled = Some(id);
            }
        }
        Ok(settled)
    }

    /// Counts and drops what is delivered through `id`; a batch delivered
    /// in part keeps only its undelivered events.
    fn settle_through(&mut self, id: u64, counters: &OutputCounters, inputs: &[String]) {
        while let Some(b) = self.batches.front_mut() {
            if b.last_id().is_some_and(|last| last <= id) {
                counters.delivered(b, b.len(), inputs);
                self.batches.pop_front();
                continue;
            }
            let n = b.iter().take_while(|&(i, _)| i <= id).count();
            if n > 0 {
                counters.delivered(b, n, inputs);
                *b = b.slice(n, b.len());
            }
            break;
        }
    }
}

/// Consecutive failures of one output, and the wait before the next try.
struct Backoff {
    policy: RetryPolicy,
    handle: tokio::runtime::Handle,
    failures: u32,
    rng: u64,
}

impl Backoff {
    fn new(policy: RetryPolicy, handle: tokio::runtime::Handle) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            ^ (std::process::id() as u64) << 32;
        Backoff {
            policy,
            handle,
            failures: 0,
            rng: seed | 1,
        }
    }

    fn failed(&mut self, output: &str, e: &OutputError) {
        self.failures += 1;
        // Log the first failure and then every 20th, not every retry.
        if self.failures == 1 || self.failures % 20 == 0 {
            tracing::error!(
                output,
                failures = self.failures,
                error = %e,
                "output failing; retrying, events stay queued"
            );
        }
    }

    fn reset(&mut self) {
        self.failures = 0;
    }

    /// A uniform number in [0, 1) (xorshift; jitter needs no better).
    fn unit(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Sleeps the current backoff on the runtime's clock; false if `stop`
    /// fired meanwhile.
    fn sleep(&mut self, stop: &CancellationToken, retry_after: Option<Duration>) -> bool {
        let unit = self.unit();
        let delay = self.policy.delay(self.failures, retry_after, unit);
        self.handle.block_on(async {
            tokio::select! {
                _ = tokio::time::sleep(delay) => true,
                _ = stop.cancelled() => false,
            }
        })
    }
}

#[cfg(test)]
mod tests;
