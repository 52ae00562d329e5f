//! Which policy governs an event, and whether its payload is due to go.
//!
//! A policy covers an event when its categories (if any) hold the event's
//! category, or "*", and its source globs (if any) match the event's
//! `source`; with both lists, both must match. An event several policies
//! cover is kept as long as the longest of them says (removal is the one
//! thing retention cannot undo, so the most conservative policy wins). An
//! event no policy covers is kept forever.
//!
//! Events of the collector's own chain (`@collector`: integrity findings,
//! access records, alerts, tombstones) are kept forever by default: a
//! policy covers one only by naming its category literally (not "*", not
//! by source), and category `integrity` never, whatever a policy says:
//! integrity findings explain chain discontinuities to `auditship verify`,
//! and tombstones are what makes expired records acceptable to it.
//!
//! Age is measured from the event's time (`ts`, or `observed_ts` when the
//! event had none). An event with no time at all is never expired.

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::config::retention::PolicyConfig;
use crate::integrity::COLLECTOR_AGENT;

/// One compiled policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Its config.
    pub config: PolicyConfig,
    any_category: bool,
    sources: Option<GlobSet>,
}

/// The policies of a config, compiled.
#[derive(Clone, Debug, Default)]
pub struct Policies(pub Vec<Policy>);

/// What retention needs to know of an event.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// Sending agent.
    pub agent: &'a str,
    /// `category`.
    pub category: &'a str,
    /// `source`.
    pub source: Option<&'a str>,
    /// Event time, Unix ms (0: unknown).
    pub ts_millis: i64,
}

impl Policies {
    /// Compiles the policies (globs were checked when the config was).
    pub fn new(configs: &[PolicyConfig]) -> Policies {
        Policies(
            configs
                .iter()
                .map(|c| {
                    let sources = (!c.sources.is_empty()).then(|| {
                        let mut b = GlobSetBuilder::new();
                        for s in &c.sources {
                            if let Ok(g) = Glob::new(s) {
                                b.add(g);
                            }
                        }
                        b.build().unwrap_or_else(|_| GlobSet::empty())
                    });
                    Policy {
                        any_category: c.categories.iter().any(|x| x == "*"),
                        config: c.clone(),
                        sources,
                    }
                })
                .collect(),
        )
    }

    /// The shortest max age of any policy, in ms (`None`: no policies).
    pub fn min_age_millis(&self) -> Option<i64> {
        self.0
            .iter()
            .map(|p| p.config.max_age.as_millis() as i64)
            .min()
    }

    /// The policy that governs `s` (the covering one with the longest max
    /// age), if any.
    pub fn governing(&self, s: &Subject<'_>) -> Option<usize> {
        let own = s.agent == COLLECTOR_AGENT;
        if own && s.category == "integrity" {
            return None;
        }
        self.0
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                let named = p.config.categories.iter().any(|c| c == s.category);
                if own {
                    return named && p.sources.is_none();
                }
                let cat = p.config.categories.is_empty() || named || p.any_category;
                let src = p
                    .sources
                    .as_ref()
                    .is_none_or(|g| s.source.is_some_and(|x| g.is_match(x)));
                cat && src
            })
            .max_by_key(|(_, p)| p.config.max_age)
            .map(|(i, _)| i)
    }

    /// The governing policy of `s` if its payload is due to go at `now_millis`.
    pub fn due(&self, s: &Subject<'_>, now_millis: i64) -> Option<usize> {
        if s.ts_millis == 0 {
            return None;
        }
        let i = self.governing(s)?;
        let age = now_millis.saturating_sub(s.ts_millis);
        (age >= self.0[i].config.max_age.as_millis() as i64).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn policy(name: &str, cats: &[&str], sources: &[&str], days: u64) -> PolicyConfig {
        PolicyConfig {
            name: name.into(),
            categories: cats.iter().map(|s| s.to_string()).collect(),
            sources: sources.iter().map(|s| s.to_string()).collect(),
            max_age: Duration::from_secs(days * 86_400),
        }
    }

    const DAY: i64 = 86_400_000;

    fn subject<'a>(
        agent: &'a str,
        category: &'a str,
        source: Option<&'a str>,
        days_old: i64,
    ) -> Subject<'a> {
        Subject {
            agent,
            category,
            source,
            ts_millis: 2_000 * DAY - days_old * DAY,
        }
    }

    #[test]
    fn policies_match_by_category_and_source_and_the_longest_wins() {
        let p = Policies::new(&[
            policy("auth", &["authentication"], &[], 400),
            policy("web", &["web"], &[], 90),
            policy("nginx", &[], &["/var/log/nginx/*"], 30),
            policy("everything", &["*"], &[], 1000),
            policy("access", &["access"], &[], 10),
        ]);
        let now = 2_000 * DAY;
        let name = |s: &Subject<'_>| p.due(s, now).map(|i| p.0[i].config.name.clone());
        // "everything" (1000 days) covers every agent event, so nothing of
        // an agent is due before 1000 days.
        assert_eq!(name(&subject("web-1", "web", None, 100)), None);
        assert_eq!(
            name(&subject("web-1", "web", None, 1000)).as_deref(),
            Some("everything")
        );
        let p = Policies(
            p.0.into_iter()
                .filter(|x| x.config.name != "everything")
                .collect(),
        );
        let name = |s: &Subject<'_>| p.due(s, now).map(|i| p.0[i].config.name.clone());
        assert_eq!(
            name(&subject("web-1", "web", None, 91)).as_deref(),
            Some("web")
        );
        assert_eq!(name(&subject("web-1", "web", None, 89)), None);
        assert_eq!(name(&subject("h", "authentication", None, 399)), None);
        assert_eq!(
            name(&subject("h", "authentication", None, 400)).as_deref(),
            Some("auth")
        );
        // The nginx source policy (30 days) and the web policy (90 days)
        // both cover a web event from nginx: the longer one governs.
        let s = subject("web-1", "web", Some("/var/log/nginx/access.log"), 60);
        assert_eq!(name(&s), None);
        let s = subject("web-1", "session", Some("/var/log/nginx/access.log"), 31);
        assert_eq!(name(&s).as_deref(), Some("nginx"));
        // No policy: kept forever. No time: never expired.
        assert_eq!(name(&subject("h", "privilege", None, 5000)), None);
        let mut s = subject("web-1", "web", None, 0);
        s.ts_millis = 0;
        assert_eq!(name(&s), None);
    }

    #[test]
    fn the_collectors_own_events_need_their_category_named_and_integrity_never_expires() {
        let p = Policies::new(&[policy("all", &["*"], &[], 1), policy("src", &[], &["*"], 1)]);
        let now = 2_000 * DAY;
        assert!(p.due(&subject("web-1", "access", None, 5), now).is_some());
        assert_eq!(
            p.due(&subject(COLLECTOR_AGENT, "access", None, 5), now),
            None
        );
        let p = Policies::new(&[policy("acc", &["access", "integrity"], &[], 1)]);
        assert!(p
            .due(&subject(COLLECTOR_AGENT, "access", None, 5), now)
            .is_some());
        assert_eq!(
            p.due(&subject(COLLECTOR_AGENT, "integrity", None, 5), now),
            None
        );
        assert!(p
            .due(&subject("agent-1", "integrity", None, 5), now)
            .is_some());
    }
}
