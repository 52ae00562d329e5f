//! The agent's lifecycle across config reloads.
//!
//! [`run`] keeps one pipeline ([`crate::runtime`]) running at a time, and
//! the `/metrics` listener across all of them. A reload (SIGHUP, see
//! `src/commands/agent.rs`) hands it a new config that has already been
//! read and validated: a config that fails to load never reaches this
//! module, and the running pipeline goes on untouched.
//!
//! A reload is a restart without leaving the process: inputs stop at a line
//! boundary and what they read is committed; outputs stop after the batch
//! in hand (it is acknowledged if it was delivered, sent again if not: the
//! collector and the file output deduplicate); then the new pipeline starts
//! the way every start does, by recovering the queue. The queue holds every
//! input's position, so an input that stays resumes exactly where it
//! stopped, an input that was added starts as a new input does
//! (`read_from`), and an input that was removed has stopped after its last
//! committed line. Nothing is lost and nothing is duplicated, for the same
//! reasons as across a SIGKILL and a restart (see `crate::queue`).
//!
//! What a reload cannot change, because it is the identity of the queue or
//! the chain: `state_dir` and `agent_id`. A new config that changes them is
//! refused (logged; the running pipeline stays), and so is one whose queue
//! encryption keys cannot be loaded or do not open every queue segment. `[log]` and `[metrics]`
//! settings apply at the next restart; a reload that changes them says so.
//! Counters in `/metrics` start again from zero after a reload, which
//! Prometheus treats as a counter reset.

use std::sync::Arc;

use auditship_telemetry::Swap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::AgentConfig;
use crate::ingest::IngestStats;
use crate::queue::QueueMonitor;
use crate::running::Running;
use crate::runtime::{pipeline, AgentError, RunSummary};

/// Runs pipelines until `shutdown`, replacing the running one with each
/// config received on `reloads`. `on_ready` is called once, when the first
/// pipeline is running (identity loaded, queue recovered, inputs and
/// outputs started); the [`Running`] it gets follows every later pipeline.
pub async fn run(
    mut cfg: AgentConfig,
    shutdown: CancellationToken,
    mut reloads: Option<mpsc::Receiver<AgentConfig>>,
    on_ready: impl FnOnce(Running) + Send,
) -> Result<RunSummary, AgentError> {
    let on_ready = std::sync::Mutex::new(Some(on_ready));
    let running: std::sync::Mutex<Option<Running>> = std::sync::Mutex::new(None);
    let ready = |stats: Arc<IngestStats>, queue: QueueMonitor| {
        let mut r = running.lock().unwrap_or_else(|p| p.into_inner());
        match r.as_ref() {
            Some(r) => r.attach(stats, queue),
            None => {
                let handle = Running::new(stats, queue);
                *r = Some(handle.clone());
                if let Some(f) = on_ready.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    f(handle);
                }
            }
        }
    };
    let telemetry = Arc::new(Swap::default());
    // The endpoints outlive the shutdown signal: /health answers "stopping"
    // while outputs drain.
    let telemetry_stop = CancellationToken::new();
    let _telemetry_guard = telemetry_stop.clone().drop_guard();
    if let Some(addr) = cfg.metrics {
        match auditship_telemetry::serve(addr, telemetry.clone(), telemetry_stop.clone()).await {
            Ok(bound) => tracing::info!(address = %bound, "serving /metrics and /health"),
            Err(e) => {
                tracing::error!(address = %addr, error = %e, "cannot serve /metrics and /health; running without them")
            }
        }
    }
    let mut total = RunSummary::default();
    let mut reloads_done = 0u64;
    loop {
        let next = {
            let restart = CancellationToken::new();
            let running = pipeline(&cfg, shutdown.clone(), restart.clone(), &telemetry, &ready);
            tokio::pin!(running);
            let next = loop {
                let offered = async {
                    match reloads.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    r = &mut running => return r.map(|s| total.then(s)),
                    new = offered => match new {
                        None => reloads = None,
                        Some(new) => match check(&cfg, &new) {
                            Ok(()) => {
                                restart.cancel();
                                break new;
                            }
                            Err(why) => tracing::error!(reason = %why, "new config refused; the running config stays"),
                        },
                    },
                }
            };
            total = total.then(running.await?);
            next
        };
        cfg = next;
        reloads_done += 1;
        tracing::info!(
            reloads = reloads_done,
            inputs = cfg.inputs.len(),
            outputs = cfg.outputs.len(),
            "config reloaded; starting the new pipeline"
        );
        if shutdown.is_cancelled() {
            // SIGTERM arrived during the switch: the new pipeline starts,
            // sees it at once and drains.
            tracing::info!("stopping right after the reload");
        }
    }
}

/// Whether `new` can replace `old` without a restart.
fn check(old: &AgentConfig, new: &AgentConfig) -> Result<(), String> {
    if old.state_dir != new.state_dir {
        return Err(format!(
            "state_dir changed ({} -> {}); the queue lives there: restart the agent to move it",
            old.state_dir.display(),
            new.state_dir.display()
        ));
    }
    if old.agent_id != new.agent_id {
        return Err(format!(
            "agent_id changed ({} -> {}); it names the agent's chain: restart the agent to change it",
            old.agent_id, new.agent_id
        ));
    }
    // Also when the settings are unchanged: a key file may have been
    // replaced in place.
    crate::queue::check_keys(&new.queue).map_err(|e| e.to_string())?;
    if old.metrics != new.metrics
        || old.log_level != new.log_level
        || old.log_format != new.log_format
    {
        tracing::warn!("[log] and [metrics] changes apply at the next restart");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> AgentConfig {
        crate::config::parse(
            &format!(
                "state_dir = \"/tmp/a\"\nagent_id = \"web-1\"\n{extra}\n[[inputs]]\ntype = \"file\"\nname = \"a\"\ninclude = [\"/x\"]\n[[outputs]]\ntype = \"stdout\"\n"
            ),
            std::path::Path::new("agent.toml"),
        )
        .unwrap()
    }

    #[test]
    fn the_queue_and_chain_identity_cannot_change_in_a_reload() {
        let old = cfg("");
        assert!(check(&old, &cfg("heartbeat = \"5s\"")).is_ok());
        let mut moved = cfg("");
        moved.state_dir = "/tmp/b".into();
        assert!(check(&old, &moved).unwrap_err().contains("state_dir"));
        let mut renamed = cfg("");
        renamed.agent_id = "web-2".into();
        assert!(check(&old, &renamed).unwrap_err().contains("agent_id"));
    }
}
