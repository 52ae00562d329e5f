//! The agent as a witness of the collector's log (design: collector
//! invariant 4).
//!
//! The collector signs checkpoints of its Merkle log (size, root, time; see
//! [`auditship_core::checkpoint`]). The collector output keeps the last
//! checkpoint it accepted, and after successful deliveries, at most every
//! `witness_interval`, it fetches the current one and checks that the log
//! only grew:
//!
//! ```text
//! GET /v1/checkpoint                              -> SignedCheckpoint JSON (404: none yet)
//! GET /v1/proof/consistency?first=M&second=N      -> {"first":M,"second":N,"proof":["<64 hex>",…]}
//!     (both with the output's ingest token)
//!
//! new checkpoint vs the kept one:
//!   signature bad (with collector_public_key set)          -> CRITICAL
//!   another origin, or malformed                            -> CRITICAL
//!   none kept yet                                          -> keep it (trust on first use)
//!   same size, same root                                   -> nothing to do
//!   same size, other root                                  -> CRITICAL
//!   smaller size (the log shrank)                          -> CRITICAL
//!   larger size: consistency proof kept.size -> new.size   -> verifies: keep it; fails: CRITICAL
//! ```
//!
//! CRITICAL means: logged as an error with `critical = true`, counted in
//! [`CollectorStats::inconsistent_checkpoints`], the old checkpoint kept.
//! Shipping goes on either way: a witness cannot repair the collector, only
//! report it. Fetch failures (network, timeouts, a 404 from a collector
//! without checkpoints) are logged at most as warnings, counted in
//! [`CollectorStats::witness_errors`], and never block delivery: the check
//! runs as its own task on the runtime, one at a time, beside the requests.
//!
//! Without `collector_public_key`, signatures are not checked, but
//! consistency still is: a rewritten history cannot be proved consistent
//! with the root this agent saw before.
//!
//! # `witness.json`
//!
//! The kept checkpoint, as the collector served it (the `SignedCheckpoint`
//! JSON object), at `<state_dir>/witness.json` (`witness_file`). Written to
//! `<file>.tmp`, fsynced, renamed, directory fsynced: a crash leaves the old
//! one or the new one. An unreadable file is logged and ignored (the next
//! checkpoint is then taken on first use). After a deliberate reinstall of
//! the collector (a new log), delete it.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use auditship_core::checkpoint::SignedCheckpoint;
use auditship_core::identity::PublicKey;
use auditship_core::{hex, merkle, Hash};
use serde::Deserialize;

use super::CollectorStats;

/// What the witness needs from the output's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessConfig {
    /// Least time between checks; `None` disables the witness.
    pub interval: Option<Duration>,
    /// The collector's checkpoint key, if configured.
    pub collector_key: Option<CollectorKey>,
    /// Where the kept checkpoint lives.
    pub file: PathBuf,
}

/// Where the collector's public key comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CollectorKey {
    /// Given in the config.
    Inline(PublicKey),
    /// In a file, read when the output starts.
    File(PathBuf),
}

/// The answer of `GET /v1/proof/consistency`.
#[derive(Clone, Debug, Deserialize)]
pub struct ConsistencyAnswer {
    /// The older size.
    pub first: u64,
    /// The newer size.
    pub second: u64,
    /// The proof's hashes (hex).
    pub proof: Vec<String>,
}

/// How a fetched checkpoint compares with the kept one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing kept yet: keep this one.
    First,
    /// The same tree as the kept one.
    Same,
    /// A larger tree: keep it if a consistency proof from `first` to
    /// `second` verifies.
    Grown {
        /// Kept size.
        first: u64,
        /// New size.
        second: u64,
    },
    /// Inconsistent with what this agent saw before.
    Alarm(String),
}

/// Compares `new` with the kept checkpoint (see the module docs).
pub fn judge(
    kept: Option<&SignedCheckpoint>,
    new: &SignedCheckpoint,
    key: Option<&PublicKey>,
) -> Verdict {
    let checked = match key {
        Some(k) => new.verify(k).map(|_| ()),
        None => new.root_hash().and_then(|_| new.time_millis()).map(|_| ()),
    };
    if let Err(e) = checked {
        return Verdict::Alarm(e.to_string());
    }
    let Some(kept) = kept else {
        return Verdict::First;
    };
    if new.origin != kept.origin {
        return Verdict::Alarm(format!(
            "checkpoint of log {:?}, but this agent witnessed log {:?}",
            new.origin, kept.origin
        ));
    }
    match new.size.cmp(&kept.size) {
        std::cmp::Ordering::Equal if new.root == kept.root => Verdict::Same,
        std::cmp::Ordering::Equal => Verdict::Alarm(format!(
            "same size {} with a different root ({} instead of {})",
            new.size, new.root, kept.root
        )),
        std::cmp::Ordering::Less => Verdict::Alarm(format!(
            "the log shrank from {} to {} records (root {} instead of a tree extending {})",
            kept.size, new.size, new.root, kept.root
        )),
        std::cmp::Ordering::Greater => Verdict::Grown {
            first: kept.size,
            second: new.size,
        },
    }
}

/// Checks a consistency proof from `kept` to `new`.
pub fn check_proof(
    kept: &SignedCheckpoint,
    new: &SignedCheckpoint,
    answer: &ConsistencyAnswer,
) -> Result<(), String> {
    if (answer.first, answer.second) != (kept.size, new.size) {
        return Err(format!(
            "asked for a proof from {} to {}, got one from {} to {}",
            kept.size, new.size, answer.first, answer.second
        ));
    }
    let proof: Vec<Hash> = answer
        .proof
        .iter()
        .map(|h| hex::decode_hash(h).ok_or_else(|| format!("proof hash {h:?} is not 64 hex")))
        .collect::<Result<_, _>>()?;
    let root = |c: &SignedCheckpoint| c.root_hash().map_err(|e| e.to_string());
    merkle::verify_consistency(kept.size, new.size, &root(kept)?, &root(new)?, &proof)
        .map_err(|e| format!("consistency proof from {} to {}: {e}", kept.size, new.size))
}

/// The witness of one collector output.
#[derive(Debug)]
pub struct Witness {
    /// Output name, for logs.
    output: String,
    file: PathBuf,
    key: Option<PublicKey>,
    kept: Option<SignedCheckpoint>,
    stats: Arc<CollectorStats>,
}

/// Where and how to ask the collector.
#[derive(Clone, Debug)]
pub struct Fetch {
    /// The HTTP client.
    pub client: reqwest::Client,
    /// The collector's base URL.
    pub endpoint: String,
    /// The ingest token.
    pub token: String,
}

impl Witness {
    /// Loads the kept checkpoint and the collector key (a key file that
    /// cannot be read is an error: the operator asked for checked
    /// signatures).
    pub fn new(
        output: &str,
        cfg: &WitnessConfig,
        stats: Arc<CollectorStats>,
    ) -> Result<Self, String> {
        let key = match &cfg.collector_key {
            None => None,
            Some(CollectorKey::Inline(k)) => Some(*k),
            Some(CollectorKey::File(p)) => Some(PublicKey::load(p).map_err(|e| e.to_string())?),
        };
        let kept = match std::fs::read(&cfg.file) {
            Ok(b) => match serde_json::from_slice(&b) {
                Ok(cp) => Some(cp),
                Err(e) => {
                    tracing::error!(output, file = %cfg.file.display(), error = %e,
                        "witness file unreadable; the next checkpoint is taken on first use");
                    None
                }
            },
            Err(_) => None,
        };
        Ok(Witness {
            output: output.to_string(),
            file: cfg.file.clone(),
            key,
            kept,
            stats,
        })
    }

    /// The kept checkpoint.
    pub fn kept(&self) -> Option<&SignedCheckpoint> {
        self.kept.as_ref()
    }

    /// Fetches the current checkpoint and acts on it.
    pub async fn check(&mut self, fetch: &Fetch) {
        let cp: SignedCheckpoint = match get_json(fetch, "/v1/checkpoint").await {
            Ok(Some(cp)) => cp,
            Ok(None) => {
                tracing::debug!(output = %self.output, "collector has no checkpoint to witness (yet)");
                return;
            }
            Err(e) => return self.fetch_failed(e),
        };
        match judge(self.kept.as_ref(), &cp, self.key.as_ref()) {
            Verdict::Same => {}
            Verdict::First => {
                tracing::info!(output = %self.output, size = cp.size, root = %cp.root,
                    "witness: first collector checkpoint kept");
                self.keep(cp).await;
            }
            Verdict::Grown { first, second } => {
                let kept = self.kept.clone().expect("grown from a kept checkpoint");
                let proof = if first == 0 {
                    Ok(Some(ConsistencyAnswer {
                        first,
                        second,
                        proof: Vec::new(),
                    }))
                } else {
                    let path = format!("/v1/proof/consistency?first={first}&second={second}");
                    get_json(fetch, &path).await
                };
                match proof {
                    Ok(Some(answer)) => match check_proof(&kept, &cp, &answer) {
                        Ok(()) => {
                            self.stats.witnessed.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(output = %self.output, from = first, to = second,
                                "witness: checkpoint consistent with the kept one");
                            self.keep(cp).await;
                        }
                        Err(why) => self.alarm(&kept, &cp, &why),
                    },
                    Ok(None) => self.fetch_failed("no consistency proof (404)".into()),
                    Err(e) => self.fetch_failed(e),
                }
            }
            Verdict::Alarm(why) => match &self.kept {
                Some(kept) => self.alarm(&kept.clone(), &cp, &why),
                None => {
                    self.stats
                        .inconsistent_checkpoints
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(critical = true, output = %self.output, size = cp.size,
                        error = %why, "collector checkpoint does not verify; not kept");
                }
            },
        }
    }

    fn alarm(&self, kept: &SignedCheckpoint, new: &SignedCheckpoint, why: &str) {
        self.stats
            .inconsistent_checkpoints
            .fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            critical = true,
            output = %self.output,
            kept_size = kept.size,
            kept_root = %kept.root,
            new_size = new.size,
            new_root = %new.root,
            error = %why,
            "collector checkpoint is inconsistent with the one this agent witnessed: \
             the collector's log may have been rewritten; keeping the old checkpoint"
        );
    }

    fn fetch_failed(&self, e: String) {
        let n = self.stats.witness_errors.fetch_add(1, Ordering::Relaxed);
        if n % 20 == 0 {
            tracing::warn!(output = %self.output, error = %e, "witness: cannot fetch the collector's checkpoint; shipping goes on");
        }
    }

    async fn keep(&mut self, cp: SignedCheckpoint) {
        let body = serde_json::to_vec(&cp).expect("checkpoint serializes");
        let file = self.file.clone();
        let written = tokio::task::spawn_blocking(move || write_atomic(&file, &body)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(output = %self.output, file = %self.file.display(), error = %e,
                    "witness: cannot save the checkpoint; it is kept in memory only")
            }
            Err(e) => {
                tracing::error!(output = %self.output, error = %e, "witness: save task failed")
            }
        }
        self.kept = Some(cp);
    }
}

/// Runs a [`Witness`] beside an output's deliveries: at most one check at
/// a time, at most every `interval`, on the runtime, never waited for.
#[derive(Debug)]
pub struct WitnessRunner {
    slot: Slot,
    interval: Duration,
    next: tokio::time::Instant,
}

#[derive(Debug)]
enum Slot {
    Idle(Box<Witness>),
    Running(tokio::task::JoinHandle<Box<Witness>>),
    /// The check task failed (a panic): witnessing stops.
    Gone,
}

impl WitnessRunner {
    /// A runner whose first check is due at once.
    pub fn new(witness: Witness, interval: Duration) -> Self {
        WitnessRunner {
            slot: Slot::Idle(Box::new(witness)),
            interval,
            next: tokio::time::Instant::now(),
        }
    }

    /// After a successful delivery (on the output's blocking thread): takes
    /// back a finished check, and starts the next one if it is due.
    pub fn tick(&mut self, handle: &tokio::runtime::Handle, fetch: impl FnOnce() -> Fetch) {
        if let Slot::Running(task) = &self.slot {
            if !task.is_finished() {
                return;
            }
            let Slot::Running(task) = std::mem::replace(&mut self.slot, Slot::Gone) else {
                unreachable!("matched above")
            };
            match handle.block_on(task) {
                Ok(w) => self.slot = Slot::Idle(w),
                Err(e) => {
                    tracing::error!(error = %e, "witness check failed; witnessing stops until restart");
                    return;
                }
            }
        }
        let now = tokio::time::Instant::now();
        if now < self.next {
            return;
        }
        self.next = now + self.interval;
        if let Slot::Idle(mut w) = std::mem::replace(&mut self.slot, Slot::Gone) {
            let fetch = fetch();
            self.slot = Slot::Running(handle.spawn(async move {
                w.check(&fetch).await;
                w
            }));
        }
    }
}

/// `GET path` with the token; `Ok(None)` on 404.
async fn get_json<T: serde::de::DeserializeOwned>(
    fetch: &Fetch,
    path: &str,
) -> Result<Option<T>, String> {
    let url = format!("{}{path}", fetch.endpoint.trim_end_matches('/'));
    let resp = fetch
        .client
        .get(&url)
        .bearer_auth(&fetch.token)
        .send()
        .await
        .map_err(|e| format!("{url}: {}", super::client::error_chain(&e)))?;
    let status = resp.status();
    if status.as_u16() == 404 {
        return Ok(None);
    }
    let text = resp.text().await.map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{url}: {status}: {}", text.trim()));
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("{url}: unexpected answer: {e}"))
}

/// Writes `data` to `path` atomically (temporary file, fsync, rename, fsync
/// of the directory).
fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests;
