//! Integrity findings: what verification on arrival and liveness tracking
//! discover, recorded as events in the log itself.
//!
//! A finding is never only a log line. It becomes an audit event of
//! category `integrity`, appended to the store in the same commit as the
//! batch that caused it (before the batch's events), so it is covered by the
//! Merkle tree and the next signed checkpoint like everything else, and
//! `GET /v1/events?category=integrity` lists them.
//!
//! These events belong to the collector's own chain: `agent_id` is
//! [`COLLECTOR_AGENT`] (a name no real agent may take: tokens cannot be
//! bound to names starting with `@`), its `seq` counts up in a queue
//! identity chosen when the store was created, and each is sealed like an
//! agent's event ([`auditship_core::seal`]). The structured details are in
//! `fields` (`agent_id`, `queue`, `from`, `to`, `seq`, `stored_hash`,
//! `received_hash`, `key_id`, ...), the affected agent also in
//! `target.resource` as `agent:<id>`, and a sentence for people in `reason`
//! and `raw`.
//!
//! | action                | outcome | when                                                        |
//! |-----------------------|---------|-------------------------------------------------------------|
//! | `chain_gap`           | failure | a batch starts past the agent's next seq: events missing     |
//! | `chain_fork`          | failure | an event with an already stored seq has a different hash     |
//! | `chain_break`         | failure | the next event does not link to the stored chain head        |
//! | `bad_signature`       | failure | the batch signature or its chain does not verify; refused    |
//! | `agent_not_enrolled`  | failure | strict enrolment and no key for the agent; refused (once)    |
//! | `agent_key_pinned`    | success | first batch of an agent under trust-on-first-use             |
//! | `agent_new_epoch`     | unknown | the agent's queue identity changed: its chain restarted      |
//! | `agent_silent`        | failure | no batch or heartbeat for longer than `silent_after`         |
//! | `agent_resumed`       | success | a silent agent sent again                                    |

use std::collections::BTreeMap;

use auditship_core::wire::format_queue;
use auditship_core::{hex, AuditEvent, Category, Hash, Outcome, Timestamp};

/// `agent_id` of the collector's own events.
pub const COLLECTOR_AGENT: &str = "@collector";

/// Something verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// Sequence numbers `from..=to` of the agent's queue did not arrive.
    Gap {
        /// Agent.
        agent: String,
        /// Queue identity.
        queue: u64,
        /// First missing seq.
        from: u64,
        /// Last missing seq.
        to: u64,
    },
    /// A second, different event for an already stored seq.
    Fork {
        /// Agent.
        agent: String,
        /// Queue identity.
        queue: u64,
        /// The seq.
        seq: u64,
        /// Hash of the stored event.
        stored: Hash,
        /// Hash of the newly received one.
        received: Hash,
    },
    /// The next event's `prev_hash` is not the stored head.
    Break {
        /// Agent.
        agent: String,
        /// Queue identity.
        queue: u64,
        /// Seq of the event that does not link.
        seq: u64,
        /// The stored head it should link to.
        expected: Hash,
        /// The `prev_hash` it carries.
        got: Hash,
    },
    /// A batch whose signature or chain did not verify (refused).
    BadSignature {
        /// Agent.
        agent: String,
        /// Queue identity.
        queue: u64,
        /// First seq of the batch.
        first: u64,
        /// Last seq of the batch.
        last: u64,
        /// What failed.
        why: String,
    },
    /// No enrolled key for the agent (strict enrolment; refused).
    NotEnrolled {
        /// Agent.
        agent: String,
        /// Key id the batch was signed with.
        key_id: String,
    },
    /// The agent's key was pinned at its first batch.
    KeyPinned {
        /// Agent.
        agent: String,
        /// The key (hex).
        key: String,
        /// Its id.
        key_id: String,
    },
    /// The agent's queue identity changed.
    NewEpoch {
        /// Agent.
        agent: String,
        /// The previous queue identity.
        old: u64,
        /// Seq reached in it.
        old_seq: u64,
        /// The new queue identity.
        new: u64,
    },
    /// No batch or heartbeat for too long.
    Silent {
        /// Agent.
        agent: String,
        /// Seconds since the last batch.
        silent_secs: u64,
    },
    /// A silent agent sent again.
    Resumed {
        /// Agent.
        agent: String,
        /// Seconds it was silent.
        silent_secs: u64,
    },
}

impl Finding {
    /// The event's `action`.
    pub fn action(&self) -> &'static str {
        match self {
            Finding::Gap { .. } => "chain_gap",
            Finding::Fork { .. } => "chain_fork",
            Finding::Break { .. } => "chain_break",
            Finding::BadSignature { .. } => "bad_signature",
            Finding::NotEnrolled { .. } => "agent_not_enrolled",
            Finding::KeyPinned { .. } => "agent_key_pinned",
            Finding::NewEpoch { .. } => "agent_new_epoch",
            Finding::Silent { .. } => "agent_silent",
            Finding::Resumed { .. } => "agent_resumed",
        }
    }

    /// The agent it concerns.
    pub fn agent(&self) -> &str {
        match self {
            Finding::Gap { agent, .. }
            | Finding::Fork { agent, .. }
            | Finding::Break { agent, .. }
            | Finding::BadSignature { agent, .. }
            | Finding::NotEnrolled { agent, .. }
            | Finding::KeyPinned { agent, .. }
            | Finding::NewEpoch { agent, .. }
            | Finding::Silent { agent, .. }
            | Finding::Resumed { agent, .. } => agent,
        }
    }

    /// Whether it means evidence may be missing or altered (logged as an
    /// error; the others are warnings or information).
    pub fn is_alarm(&self) -> bool {
        matches!(
            self,
            Finding::Gap { .. }
                | Finding::Fork { .. }
                | Finding::Break { .. }
                | Finding::BadSignature { .. }
                | Finding::Silent { .. }
        )
    }

    fn outcome(&self) -> Outcome {
        match self {
            Finding::KeyPinned { .. } | Finding::Resumed { .. } => Outcome::Success,
            Finding::NewEpoch { .. } => Outcome::Unknown,
            _ => Outcome::Failure,
        }
    }

    /// A sentence for people.
    pub fn describe(&self) -> String {
        match self {
            Finding::Gap { agent, queue, from, to } => format!(
                "agent {agent} queue {}: events {from}..={to} did not arrive (gap)",
                format_queue(*queue)
            ),
            Finding::Fork { agent, queue, seq, stored, received } => format!(
                "agent {agent} queue {}: seq {seq} arrived again with a different hash ({} stored, {} received): the chain forked",
                format_queue(*queue), short(stored), short(received)
            ),
            Finding::Break { agent, queue, seq, expected, got } => format!(
                "agent {agent} queue {}: seq {seq} links to {} but the stored chain ends at {}: the chain is broken",
                format_queue(*queue), short(got), short(expected)
            ),
            Finding::BadSignature { agent, queue, first, last, why } => format!(
                "agent {agent} queue {}: batch {first}..={last} refused: {why}",
                format_queue(*queue)
            ),
            Finding::NotEnrolled { agent, key_id } => format!(
                "agent {agent} is not enrolled (its batches are signed with key {key_id}); batches refused until it is"
            ),
            Finding::KeyPinned { agent, key_id, .. } => format!(
                "agent {agent}: key {key_id} pinned at its first batch (trust on first use)"
            ),
            Finding::NewEpoch { agent, old, old_seq, new } => format!(
                "agent {agent}: queue identity changed from {} (at seq {old_seq}) to {}: its chain restarted",
                format_queue(*old), format_queue(*new)
            ),
            Finding::Silent { agent, silent_secs } => format!(
                "agent {agent} has sent no batch or heartbeat for {silent_secs} s"
            ),
            Finding::Resumed { agent, silent_secs } => format!(
                "agent {agent} is sending again after {silent_secs} s of silence"
            ),
        }
    }

    fn fields(&self) -> BTreeMap<String, String> {
        let mut f = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            f.insert(k.to_string(), v);
        };
        put("agent_id", self.agent().to_string());
        match self {
            Finding::Gap { queue, from, to, .. } => {
                put("queue", format_queue(*queue));
                put("from", from.to_string());
                put("to", to.to_string());
            }
            Finding::Fork { queue, seq, stored, received, .. } => {
                put("queue", format_queue(*queue));
                put("seq", seq.to_string());
                put("stored_hash", hex::encode(stored));
                put("received_hash", hex::encode(received));
            }
            Finding::Break { queue, seq, expected, got, .. } => {
                put("queue", format_queue(*queue));
                put("seq", seq.to_string());
                put("stored_hash", hex::encode(expected));
                put("received_prev_hash", hex::encode(got));
            }
            Finding::BadSignature { queue, first, last, .. } => {
                put("queue", format_queue(*queue));
                put("from", first.to_string());
                put("to", last.to_string());
            }
            Finding::NotEnrolled { key_id, .. } => put("key_id", key_id.clone()),
            Finding::KeyPinned { key, key_id, .. } => {
                put("key", key.clone());
                put("key_id", key_id.clone());
            }
            Finding::NewEpoch { old, old_seq, new, .. } => {
                put("old_queue", format_queue(*old));
                put("old_seq", old_seq.to_string());
                put("queue", format_queue(*new));
            }
            Finding::Silent { silent_secs, .. } | Finding::Resumed { silent_secs, .. } => {
                put("silent_secs", silent_secs.to_string());
            }
        }
        f
    }

    /// The finding as an (unsealed) audit event of the collector.
    pub fn to_event(&self, now: Timestamp, host: &str) -> AuditEvent {
        let text = self.describe();
        let mut ev = AuditEvent::new(
            Category::Integrity,
            self.action(),
            self.outcome(),
            text.clone(),
        );
        ev.ts = Some(now);
        ev.observed_ts = Some(now);
        ev.host = Some(host.to_string());
        ev.program = Some("auditship-collector".into());
        ev.reason = Some(text);
        ev.target.resource = Some(format!("agent:{}", self.agent()));
        ev.fields = self.fields();
        ev.agent_id = Some(COLLECTOR_AGENT.into());
        ev
    }

    /// Logs the finding at its level.
    pub fn log(&self) {
        let text = self.describe();
        if self.is_alarm() {
            tracing::error!(integrity = self.action(), agent = self.agent(), "{text}");
        } else {
            tracing::warn!(integrity = self.action(), agent = self.agent(), "{text}");
        }
    }
}

fn short(h: &Hash) -> String {
    hex::encode(&h[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_becomes_an_integrity_event_naming_the_agent_and_the_evidence() {
        let f = Finding::Fork {
            agent: "web-1".into(),
            queue: 0xab,
            seq: 42,
            stored: [1; 32],
            received: [2; 32],
        };
        let ev = f.to_event(Timestamp::now_utc(), "collector-host");
        assert_eq!(ev.category, Category::Integrity);
        assert_eq!(ev.action, "chain_fork");
        assert_eq!(ev.outcome, Outcome::Failure);
        assert_eq!(ev.agent_id.as_deref(), Some(COLLECTOR_AGENT));
        assert_eq!(ev.target.resource.as_deref(), Some("agent:web-1"));
        assert_eq!(ev.fields["seq"], "42");
        assert_eq!(ev.fields["stored_hash"], "01".repeat(32));
        assert_eq!(ev.fields["received_hash"], "02".repeat(32));
        assert!(ev.raw.contains("seq 42"), "{}", ev.raw);
        assert!(f.is_alarm());
        assert!(!Finding::KeyPinned {
            agent: "a".into(),
            key: "k".into(),
            key_id: "i".into()
        }
        .is_alarm());
    }
}
