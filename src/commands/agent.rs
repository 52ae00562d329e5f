//! `auditship agent --config FILE`: run the agent until SIGTERM or SIGINT;
//! SIGHUP reloads the config (see `auditship_agent::lifecycle`).
//!
//! `auditship agent --config FILE --print-identity` prints the agent's id
//! and public key, creating the key in the state directory if needed, and
//! exits: the operator enrols the key at the collector. Run it as the user
//! the agent runs as, so that the key file it may create is theirs.
//!
//! ```text
//! agent_id    web-01
//! public_key  <64 hex digits: the Ed25519 public key>
//! key_id      <16 hex digits>
//! key_file    /var/lib/auditship/identity.key
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use auditship_agent::config::{self, LogFormat};
use auditship_agent::running::Running;
use tokio_util::sync::CancellationToken;

use crate::notify;

/// Arguments of `auditship agent`.
#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// The agent's TOML configuration.
    #[arg(long, short)]
    config: PathBuf,
    /// Print this agent's id and public key (creating the key if needed), then exit.
    #[arg(long)]
    print_identity: bool,
}

/// Runs the agent.
pub fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let cfg = match config::load(&args.config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::from(2));
        }
    };
    if args.print_identity {
        let path = auditship_agent::seal::identity_path(&cfg.state_dir);
        let (identity, _) = auditship_core::identity::Identity::load_or_create(&path)?;
        let public = identity.public();
        println!("agent_id    {}", cfg.agent_id);
        println!("public_key  {}", public.to_hex());
        println!("key_id      {}", public.key_id());
        println!("key_file    {}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    init_logging(&cfg.log_level, cfg.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        shutdown_on_signals(shutdown.clone());
        let reloads = reload_on_sighup(args.config.clone());
        tracing::info!(config = %args.config.display(), "agent starting");
        let (ready, running) = tokio::sync::oneshot::channel();
        tokio::spawn(notify::supervise(
            notify::Notifier::from_env(),
            running,
            shutdown.clone(),
        ));
        let summary = auditship_agent::lifecycle::run(cfg, shutdown, Some(reloads), move |r| {
            let _ = ready.send(r);
        })
        .await?;
        Ok::<_, anyhow::Error>(if summary.drained {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(3)
        })
    })
}

/// On every SIGHUP, reads and validates `path` again: a good config is
/// handed to the lifecycle, which swaps pipelines; a bad one is logged with
/// every error and the running config stays (call inside a runtime).
fn reload_on_sighup(path: PathBuf) -> tokio::sync::mpsc::Receiver<config::AgentConfig> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
        while hup.recv().await.is_some() {
            tracing::info!(config = %path.display(), "SIGHUP received: reloading the config");
            match config::load(&path) {
                Ok(cfg) => {
                    if tx.send(cfg).await.is_err() {
                        break;
                    }
                }
                Err(errors) => {
                    for e in &errors.0 {
                        tracing::error!(error = %e, "config error");
                    }
                    tracing::error!(
                        errors = errors.0.len(),
                        "new config refused; the running config stays"
                    );
                }
            }
        }
    });
    rx
}

/// The agent's status for systemd: its ingest thread's turns are the
/// watchdog's evidence (see [`notify`]).
impl notify::Probe for Running {
    fn progress(&self) -> u64 {
        Running::progress(self)
    }

    fn beat(&self) -> std::time::Duration {
        // An idle ingest loop waits 50 ms for input between passes.
        std::time::Duration::from_millis(100)
    }

    fn status(&self) -> String {
        format!(
            "queued {} events, {} pending delivery",
            self.queued(),
            self.pending()
        )
    }
}

/// Cancels `token` on SIGTERM or SIGINT (call inside a runtime).
pub fn shutdown_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
            _ = token.cancelled() => {}
        }
        token.cancel();
    });
}

/// Structured logs on stderr, through tracing. `RUST_LOG` overrides the level.
pub fn init_logging(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
