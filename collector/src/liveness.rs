//! Liveness: which agents have gone silent.
//!
//! Every accepted batch (heartbeats included: an idle agent seals one every
//! minute by default) marks its agent as seen. An agent not seen for longer
//! than `silent_after` is reported once as [`Finding::Silent`], and once as
//! [`Finding::Resumed`] when it sends again. Agents the store knows are
//! tracked from the collector's start, so an agent that never comes back
//! after a collector restart is reported too.
//!
//! The functions take the current instant as an argument; the commit thread
//! passes the instant of the tick that drives them (tokio time), so tests
//! control the clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::integrity::Finding;

#[derive(Clone, Copy, Debug)]
struct Seen {
    at: Instant,
    silent: bool,
}

/// Last contact of every agent.
#[derive(Debug)]
pub struct Liveness {
    silent_after: Duration,
    agents: HashMap<String, Seen>,
}

impl Liveness {
    /// Tracks `known` agents from `now` on.
    pub fn new(silent_after: Duration, known: impl IntoIterator<Item = String>, now: Instant) -> Self {
        Liveness {
            silent_after,
            agents: known
                .into_iter()
                .map(|a| (a, Seen { at: now, silent: false }))
                .collect(),
        }
    }

    /// Notes a batch from `agent`; a resumption if it was silent.
    pub fn seen(&mut self, agent: &str, now: Instant) -> Option<Finding> {
        let prev = self
            .agents
            .insert(agent.to_string(), Seen { at: now, silent: false });
        match prev {
            Some(p) if p.silent => Some(Finding::Resumed {
                agent: agent.to_string(),
                silent_secs: now.saturating_duration_since(p.at).as_secs(),
            }),
            _ => None,
        }
    }

    /// Agents that just went silent.
    pub fn check(&mut self, now: Instant) -> Vec<Finding> {
        if self.silent_after.is_zero() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (agent, s) in &mut self.agents {
            let quiet = now.saturating_duration_since(s.at);
            if !s.silent && quiet > self.silent_after {
                s.silent = true;
                out.push(Finding::Silent {
                    agent: agent.clone(),
                    silent_secs: quiet.as_secs(),
                });
            }
        }
        out.sort_by(|a, b| a.agent().cmp(b.agent()));
        out
    }

    /// `(agent, seconds since last batch, silent)` of every agent.
    pub fn status(&self, now: Instant) -> Vec<(String, u64, bool)> {
        let mut v: Vec<_> = self
            .agents
            .iter()
            .map(|(a, s)| (a.clone(), now.saturating_duration_since(s.at).as_secs(), s.silent))
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_reported_once_and_resumption_once() {
        let t0 = Instant::now();
        let mut l = Liveness::new(Duration::from_secs(300), ["old".to_string()], t0);
        assert_eq!(l.seen("web", t0), None);
        assert!(l.check(t0 + Duration::from_secs(299)).is_empty());
        l.seen("web", t0 + Duration::from_secs(200));
        let found = l.check(t0 + Duration::from_secs(301));
        assert_eq!(
            found,
            [Finding::Silent {
                agent: "old".into(),
                silent_secs: 301
            }],
            "known agents count from the start; web was seen at 200 s"
        );
        assert!(l.check(t0 + Duration::from_secs(400)).is_empty(), "once");
        let back = l.seen("old", t0 + Duration::from_secs(900));
        assert_eq!(
            back,
            Some(Finding::Resumed {
                agent: "old".into(),
                silent_secs: 900
            })
        );
        let later = l.check(t0 + Duration::from_secs(901));
        assert_eq!(later.len(), 1, "{later:?}");
        assert_eq!(later[0].agent(), "web");
        let status = l.status(t0 + Duration::from_secs(901));
        assert_eq!(status[0], ("old".to_string(), 1, false));
        assert_eq!(status[1], ("web".to_string(), 701, true));
    }
}
