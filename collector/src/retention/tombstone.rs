//! Tombstones: the signed record of what one retention step removed.
//!
//! One tombstone is written per segment rewrite, before the rewrite (see
//! the parent module for the order and crash recovery). It is an event of
//! the collector's own chain (category `integrity`, action
//! [`ACTION`]), so it is sealed, Merkle-covered and checkpointed like every
//! event; in addition it carries its own Ed25519 signature by the
//! collector's key, so that the tombstone alone (as a query or an export
//! returns it) proves what the collector removed, with nothing but
//! `collector.pub`.
//!
//! # Statement (signed bytes)
//!
//! `fields.statement` holds these lines exactly, each ending in `\n`
//! (numbers decimal, hashes 64 lowercase hex, `queue` 16 hex digits);
//! `fields.signature` is the Ed25519 signature of those bytes in hex, and
//! `fields.key_id` names the key (not trusted: a verifier uses the key it
//! was given).
//!
//! ```text
//! auditship-tombstone-v1
//! origin <checkpoint origin of the log>
//! segment <segment number>
//! segment_sha256 <SHA-256 of the segment file before the removal (= the archived object)>
//! expired <count of expired events>
//! leaves <first leaf>..<last leaf>          (inclusive; "none" when count is 0)
//! digest <SHA-256 over the expired leaves, in leaf order, of leaf index u64 BE || Merkle leaf hash>
//! policy <name> <count>                     one line per policy, sorted by name
//! agent <queue> <count> <first seq>..<last seq> <agent id>    one line per (agent, queue), sorted
//! checkpoint <size> <root>                  the latest signed checkpoint when planned ("checkpoint none" before the first)
//! archive <where the segment was archived>  ("archive none" when no archive is configured)
//! time <RFC 3339 UTC, when planned>
//! ```
//!
//! Every expired record in the store names the leaf index of its
//! tombstone. `auditship verify` recomputes count, first and last leaf and
//! digest from the expired records that name a tombstone, checks them
//! against its statement and its signature, and fails an expired record
//! that no valid tombstone covers.

use std::collections::BTreeMap;

use auditship_core::identity::{Identity, PublicKey};
use auditship_core::wire::format_queue;
use auditship_core::{hex, seal, AuditEvent, Category, Hash, Outcome};
use sha2::{Digest as _, Sha256};

/// `action` of a tombstone event.
pub const ACTION: &str = "retention_expired";

const MAGIC: &str = "auditship-tombstone-v1";

/// Expired events of one agent queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentRange {
    /// Agent id.
    pub agent: String,
    /// Queue identity.
    pub queue: u64,
    /// Expired events.
    pub count: u64,
    /// Lowest expired seq.
    pub first_seq: u64,
    /// Highest expired seq.
    pub last_seq: u64,
}

/// What a tombstone states; see the module docs for the text form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// The log's origin (as in its checkpoints).
    pub origin: String,
    /// Segment number.
    pub segment: u64,
    /// SHA-256 of the segment file before the removal.
    pub segment_sha256: Hash,
    /// Expired events.
    pub expired: u64,
    /// First and last expired leaf.
    pub leaves: Option<(u64, u64)>,
    /// See [`LeafDigest`].
    pub digest: Hash,
    /// Events per policy name.
    pub policies: BTreeMap<String, u64>,
    /// Per agent queue.
    pub agents: Vec<AgentRange>,
    /// Latest checkpoint: size and root.
    pub checkpoint: Option<(u64, Hash)>,
    /// Where the segment was archived (`None`: no archive configured).
    pub archive: Option<String>,
    /// When the step was planned (RFC 3339, UTC).
    pub time: String,
}

/// The digest of a set of expired leaves, fed in leaf order.
#[derive(Clone, Default)]
pub struct LeafDigest {
    h: Sha256,
    /// Leaves fed.
    pub count: u64,
    /// First and last leaf fed.
    pub range: Option<(u64, u64)>,
}

impl LeafDigest {
    /// Feeds the leaf `index` whose event has chain hash `hash`.
    pub fn push(&mut self, index: u64, hash: &Hash) {
        self.h.update(index.to_be_bytes());
        self.h.update(seal::leaf_of_hash(hash));
        self.count += 1;
        self.range = Some(self.range.map_or((index, index), |(a, _)| (a, index)));
    }

    /// The digest.
    pub fn finish(self) -> Hash {
        self.h.finalize().into()
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

impl Statement {
    /// The signed text.
    pub fn text(&self) -> String {
        let mut s = format!(
            "{MAGIC}\norigin {}\nsegment {}\nsegment_sha256 {}\nexpired {}\n",
            one_line(&self.origin),
            self.segment,
            hex::encode(&self.segment_sha256),
            self.expired
        );
        match self.leaves {
            Some((a, b)) => s.push_str(&format!("leaves {a}..{b}\n")),
            None => s.push_str("leaves none\n"),
        }
        s.push_str(&format!("digest {}\n", hex::encode(&self.digest)));
        for (name, n) in &self.policies {
            s.push_str(&format!("policy {} {n}\n", one_line(name)));
        }
        for a in &self.agents {
            s.push_str(&format!(
                "agent {} {} {}..{} {}\n",
                format_queue(a.queue),
                a.count,
                a.first_seq,
                a.last_seq,
                one_line(&a.agent)
            ));
        }
        match self.checkpoint {
            Some((size, root)) => {
                s.push_str(&format!("checkpoint {size} {}\n", hex::encode(&root)))
            }
            None => s.push_str("checkpoint none\n"),
        }
        s.push_str(&format!(
            "archive {}\n",
            self.archive.as_deref().map_or("none".into(), one_line)
        ));
        s.push_str(&format!("time {}\n", one_line(&self.time)));
        s
    }

    /// Parses [`Statement::text`]'s output.
    pub fn parse(text: &str) -> Result<Statement, String> {
        let mut lines = text.split_terminator('\n');
        if lines.next() != Some(MAGIC) {
            return Err(format!("does not start with {MAGIC}"));
        }
        let mut st = Statement {
            origin: String::new(),
            segment: 0,
            segment_sha256: [0; 32],
            expired: 0,
            leaves: None,
            digest: [0; 32],
            policies: BTreeMap::new(),
            agents: Vec::new(),
            checkpoint: None,
            archive: None,
            time: String::new(),
        };
        let num = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| format!("{s:?} is not a number"))
        };
        let hash = |s: &str| hex::decode_hash(s).ok_or_else(|| format!("{s:?} is not a hash"));
        let range = |s: &str| -> Result<(u64, u64), String> {
            let (a, b) = s
                .split_once("..")
                .ok_or_else(|| format!("{s:?} is no range"))?;
            Ok((num(a)?, num(b)?))
        };
        for line in lines {
            let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "origin" => st.origin = rest.to_string(),
                "segment" => st.segment = num(rest)?,
                "segment_sha256" => st.segment_sha256 = hash(rest)?,
                "expired" => st.expired = num(rest)?,
                "leaves" if rest == "none" => st.leaves = None,
                "leaves" => st.leaves = Some(range(rest)?),
                "digest" => st.digest = hash(rest)?,
                "policy" => {
                    let (name, n) = rest.rsplit_once(' ').ok_or("policy line malformed")?;
                    st.policies.insert(name.to_string(), num(n)?);
                }
                "agent" => {
                    let mut p = rest.splitn(4, ' ');
                    let (q, n, r, agent) = match (p.next(), p.next(), p.next(), p.next()) {
                        (Some(q), Some(n), Some(r), Some(a)) => (q, n, r, a),
                        _ => return Err("agent line malformed".into()),
                    };
                    let queue = u64::from_str_radix(q, 16)
                        .map_err(|_| format!("queue {q:?} is not hex"))?;
                    let (first_seq, last_seq) = range(r)?;
                    st.agents.push(AgentRange {
                        agent: agent.to_string(),
                        queue,
                        count: num(n)?,
                        first_seq,
                        last_seq,
                    });
                }
                "checkpoint" if rest == "none" => st.checkpoint = None,
                "checkpoint" => {
                    let (size, root) = rest.split_once(' ').ok_or("checkpoint line malformed")?;
                    st.checkpoint = Some((num(size)?, hash(root)?));
                }
                "archive" if rest == "none" => st.archive = None,
                "archive" => st.archive = Some(rest.to_string()),
                "time" => st.time = rest.to_string(),
                other => return Err(format!("unknown line {other:?}")),
            }
        }
        if st.text() != text {
            return Err("not in canonical form".into());
        }
        Ok(st)
    }

    /// The tombstone event: statement, signature and key id in `fields`,
    /// with the main figures repeated as fields of their own for queries.
    pub fn to_event(&self, key: &Identity) -> AuditEvent {
        let text = self.text();
        let signature = hex::encode(&key.sign(text.as_bytes()));
        let raw = format!(
            "retention expired {} event(s) of segment {} (leaves {}) under {}; payloads removed, leaf hashes kept; digest {}",
            self.expired,
            self.segment,
            self.leaves
                .map_or("none".into(), |(a, b)| format!("{a}..{b}")),
            self.policies
                .iter()
                .map(|(p, n)| format!("{p}: {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            hex::encode(&self.digest)
        );
        let mut ev = AuditEvent::new(Category::Integrity, ACTION, Outcome::Success, raw);
        ev.program = Some("auditship-collector".into());
        ev.target.resource = Some(format!("segment:{}", self.segment));
        let f = &mut ev.fields;
        f.insert("statement".into(), text);
        f.insert("signature".into(), signature);
        f.insert("key_id".into(), key.public().key_id());
        f.insert("segment".into(), self.segment.to_string());
        f.insert("expired".into(), self.expired.to_string());
        f.insert("digest".into(), hex::encode(&self.digest));
        for (p, n) in &self.policies {
            f.insert(format!("policy.{p}"), n.to_string());
        }
        ev
    }
}

/// Checks a tombstone event's statement and signature with `key`.
pub fn verify_event(ev: &AuditEvent, key: &PublicKey) -> Result<Statement, String> {
    let text = ev
        .fields
        .get("statement")
        .ok_or("the tombstone has no statement")?;
    let sig = ev
        .fields
        .get("signature")
        .ok_or("the tombstone has no signature")?;
    if !key.verify_hex(text.as_bytes(), sig) {
        return Err(format!(
            "the tombstone's signature does not verify with key {}",
            key.key_id()
        ));
    }
    Statement::parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Statement {
        let mut d = LeafDigest::default();
        d.push(3, &[1; 32]);
        d.push(5, &[2; 32]);
        Statement {
            origin: "auditship/test".into(),
            segment: 2,
            segment_sha256: [9; 32],
            expired: 2,
            leaves: d.range,
            digest: d.finish(),
            policies: [("web".to_string(), 2)].into(),
            agents: vec![AgentRange {
                agent: "web 1".into(),
                queue: 0xabc,
                count: 2,
                first_seq: 4,
                last_seq: 6,
            }],
            checkpoint: Some((10, [7; 32])),
            archive: Some("dir:/srv/archive/x.seg".into()),
            time: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn a_statement_round_trips_and_its_signature_verifies_alone() {
        let st = sample();
        assert_eq!(Statement::parse(&st.text()).unwrap(), st);
        let key = Identity::from_seed([5; 32]);
        let ev = st.to_event(&key);
        assert_eq!(ev.category, Category::Integrity);
        assert_eq!(ev.action, ACTION);
        assert_eq!(verify_event(&ev, &key.public()).unwrap(), st);
        let other = Identity::from_seed([6; 32]);
        assert!(verify_event(&ev, &other.public()).is_err());
        let mut forged = ev.clone();
        let text = forged.fields["statement"].replace("expired 2", "expired 3");
        forged.fields.insert("statement".into(), text);
        let e = verify_event(&forged, &key.public()).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        assert!(Statement::parse(&st.text().replace("leaves 3..5", "leaves 03..5")).is_err());
    }
}
