//! The filter chain: the validated filters in config order, with their
//! counters.
//!
//! [`FilterChain::apply`] runs on the per-line hot path. Filters run in
//! order; the first `drop` filter that matches stops the chain and the event
//! is discarded. Counters are atomics, so one chain can be shared read-only
//! (`Arc<FilterChain>`) by every pipeline thread and read by metrics at any
//! time.

use std::sync::atomic::{AtomicU64, Ordering};

use auditship_core::AuditEvent;

use super::config::FilterConfig;
use super::drop::DropFilter;
use super::enrich::{system_hostname, EnrichFilter};
use super::error::FilterError;
use super::redact::RedactFilter;

/// One validated filter.
#[derive(Clone, Debug)]
pub enum Filter {
    /// Adds host, fields and tags.
    Enrich(EnrichFilter),
    /// Masks secrets.
    Redact(RedactFilter),
    /// Discards matching events.
    Drop(DropFilter),
}

impl Filter {
    /// `enrich`, `redact` or `drop`.
    pub fn kind(&self) -> &'static str {
        match self {
            Filter::Enrich(_) => "enrich",
            Filter::Redact(_) => "redact",
            Filter::Drop(_) => "drop",
        }
    }
}

/// What the chain decided about an event.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Pass the (possibly modified) event on.
    Keep,
    /// Discard the event; `filter` is the position of the drop filter that
    /// matched.
    Drop {
        /// Position in the chain (and in `[[filters]]`).
        filter: usize,
    },
}

/// The filters of an agent, in order, with per-filter counters.
#[derive(Debug, Default)]
pub struct FilterChain {
    stages: Vec<Stage>,
}

#[derive(Debug)]
struct Stage {
    /// `kind[index]`, e.g. `drop[2]`; the name in metrics.
    name: String,
    filter: Filter,
    /// Events dropped (drop filters) or changed (redact filters).
    count: AtomicU64,
}

/// Validates `configs` and builds the chain, reading the system host name
/// once if an `enrich` filter asks for it.
pub fn build_chain(configs: &[FilterConfig]) -> Result<FilterChain, FilterError> {
    let host = configs
        .iter()
        .any(FilterConfig::needs_system_host)
        .then(system_hostname)
        .flatten();
    let filters = configs
        .iter()
        .enumerate()
        .map(|(i, c)| c.validate(i, host.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(FilterChain::new(filters))
}

impl FilterChain {
    /// A chain of already validated filters; position `i` is named
    /// `kind[i]`.
    pub fn new(filters: Vec<Filter>) -> Self {
        let stages = filters
            .into_iter()
            .enumerate()
            .map(|(i, filter)| Stage {
                name: format!("{}[{i}]", filter.kind()),
                filter,
                count: AtomicU64::new(0),
            })
            .collect();
        FilterChain { stages }
    }

    /// Runs the filters over `ev` in order, stopping at the first drop.
    pub fn apply(&self, ev: &mut AuditEvent) -> Verdict {
        for (i, stage) in self.stages.iter().enumerate() {
            match &stage.filter {
                Filter::Enrich(f) => f.apply(ev),
                Filter::Redact(f) => {
                    if f.apply(ev) {
                        stage.count.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Filter::Drop(f) => {
                    if f.matches(ev) {
                        stage.count.fetch_add(1, Ordering::Relaxed);
                        return Verdict::Drop { filter: i };
                    }
                }
            }
        }
        Verdict::Keep
    }

    /// Events dropped so far, per `drop` filter (`("drop[2]", n)`), in
    /// chain order.
    pub fn dropped(&self) -> Vec<(String, u64)> {
        self.counts(|f| matches!(f, Filter::Drop(_)))
    }

    /// Events dropped so far by all filters.
    pub fn dropped_total(&self) -> u64 {
        self.dropped().iter().map(|(_, n)| n).sum()
    }

    /// Events changed so far, per `redact` filter (`("redact[1]", n)`), in
    /// chain order.
    pub fn redacted(&self) -> Vec<(String, u64)> {
        self.counts(|f| matches!(f, Filter::Redact(_)))
    }

    /// Events changed so far by all `redact` filters (an event redacted by
    /// two filters counts twice).
    pub fn redacted_total(&self) -> u64 {
        self.redacted().iter().map(|(_, n)| n).sum()
    }

    /// Number of filters.
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// Whether the chain has no filter (every event is kept unchanged).
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    fn counts(&self, which: impl Fn(&Filter) -> bool) -> Vec<(String, u64)> {
        self.stages
            .iter()
            .filter(|s| which(&s.filter))
            .map(|s| (s.name.clone(), s.count.load(Ordering::Relaxed)))
            .collect()
    }
}
