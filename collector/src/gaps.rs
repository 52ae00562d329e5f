//! Gaps: ranges of an agent's `seq` numbers the collector has not received
//! although later ones arrived.
//!
//! Batches of one agent cover consecutive `seq` ranges, so a batch that
//! starts past the agent's watermark leaves a gap. It means events are
//! missing: lost at the source (a quarantined queue record), or a batch the
//! agent moved to its dead-letter directory, which an operator may replay
//! later. Deduplication must therefore accept a `seq` below the watermark
//! when it lies in a gap, and only then.
//!
//! # File
//!
//! ```text
//! <data_dir>/gaps.json   {"<agent_id>": {"queue": "<16 hex>", "ranges": [[from, to], …]}}
//!                        replaced atomically: write gaps.json.tmp, fsync, rename, fsync dir
//! ```
//!
//! # Crash rules
//!
//! * A new gap is written *before* the commit that stores the batch past it,
//!   so no stored event can sit beyond an unrecorded gap. A crash between
//!   the two leaves a recorded gap whose batch was not stored; that batch is
//!   retried and covers the same range, so the gap is real anyway.
//! * A filled gap is written after the commit that filled it. A crash
//!   between the two leaves the range recorded although it is stored; a
//!   second replay of the same batch in that window would store it twice.
//!   This is the one duplicate window left, and it needs a crash and a
//!   repeated manual replay together.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One agent's open gaps, in its current queue epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentGaps {
    /// The queue identity (16 hex digits) the ranges belong to.
    pub queue: String,
    /// Missing ranges, inclusive, sorted, not overlapping.
    pub ranges: Vec<(u64, u64)>,
}

/// Every agent's gaps, and the file that keeps them.
#[derive(Clone, Debug)]
pub struct Gaps {
    path: PathBuf,
    by_agent: BTreeMap<String, AgentGaps>,
}

impl Gaps {
    /// Loads `<dir>/gaps.json` (none yet: no gaps).
    pub fn load(dir: &Path) -> std::io::Result<Gaps> {
        let path = dir.join("gaps.json");
        let by_agent = match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(Gaps { path, by_agent })
    }

    /// Whether `seq` of `agent`'s `queue` is in a gap.
    pub fn contains(&self, agent: &str, queue: &str, seq: u64) -> bool {
        self.by_agent.get(agent).is_some_and(|g| {
            g.queue == queue && g.ranges.iter().any(|&(a, b)| a <= seq && seq <= b)
        })
    }

    /// Records the missing range `from..=to`. Returns whether anything changed.
    pub fn open(&mut self, agent: &str, queue: &str, from: u64, to: u64) -> bool {
        if from > to {
            return false;
        }
        let g = self.by_agent.entry(agent.to_string()).or_default();
        if g.queue != queue {
            *g = AgentGaps {
                queue: queue.to_string(),
                ranges: Vec::new(),
            };
        }
        g.ranges.push((from, to));
        g.ranges.sort_unstable();
        true
    }

    /// Removes `from..=to` (a batch's coverage) from the agent's gaps.
    /// Returns whether anything changed.
    pub fn fill(&mut self, agent: &str, queue: &str, from: u64, to: u64) -> bool {
        let Some(g) = self.by_agent.get_mut(agent) else {
            return false;
        };
        if g.queue != queue {
            return false;
        }
        let before = g.ranges.clone();
        let mut out = Vec::with_capacity(g.ranges.len() + 1);
        for &(a, b) in &g.ranges {
            if b < from || a > to {
                out.push((a, b));
                continue;
            }
            if a < from {
                out.push((a, from - 1));
            }
            if b > to {
                out.push((to + 1, b));
            }
        }
        g.ranges = out;
        if g.ranges.is_empty() {
            self.by_agent.remove(agent);
        }
        self.by_agent.get(agent).map(|g| &g.ranges) != Some(&before)
    }

    /// Forgets an agent's gaps of any queue but `queue` (a new epoch).
    pub fn new_epoch(&mut self, agent: &str, queue: &str) -> bool {
        if self.by_agent.get(agent).is_some_and(|g| g.queue != queue) {
            self.by_agent.remove(agent);
            return true;
        }
        false
    }

    /// The lowest missing `seq` of the agent's queue, if any.
    pub fn lowest(&self, agent: &str, queue: &str) -> Option<u64> {
        let g = self.by_agent.get(agent)?;
        (g.queue == queue).then(|| g.ranges.first().map(|r| r.0))?
    }

    /// Every agent's gaps.
    pub fn all(&self) -> &BTreeMap<String, AgentGaps> {
        &self.by_agent
    }

    /// Writes the file atomically and durably.
    pub fn save(&self) -> std::io::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(&self.by_agent).expect("gaps serialize"))?;
        f.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_open_fill_split_and_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut g = Gaps::load(dir.path()).unwrap();
        assert!(g.open("a", "q1", 10, 20));
        assert!(g.contains("a", "q1", 10) && g.contains("a", "q1", 20));
        assert!(!g.contains("a", "q1", 21) && !g.contains("a", "q2", 15));
        assert_eq!(g.lowest("a", "q1"), Some(10));
        // A replay of 12..=14 splits the gap.
        assert!(g.fill("a", "q1", 12, 14));
        assert!(g.contains("a", "q1", 11) && !g.contains("a", "q1", 13));
        assert!(!g.fill("a", "q1", 12, 14), "nothing left to fill there");
        g.save().unwrap();
        let mut g = Gaps::load(dir.path()).unwrap();
        assert_eq!(g.all()["a"].ranges, vec![(10, 11), (15, 20)]);
        assert!(g.fill("a", "q1", 0, 100));
        assert!(g.all().is_empty());
        assert_eq!(g.lowest("a", "q1"), None);
        assert!(g.open("a", "q1", 5, 5));
        assert!(g.new_epoch("a", "q2"));
        assert!(!g.contains("a", "q1", 5));
    }
}
