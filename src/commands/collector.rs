//! `auditship collector --config FILE`: run the collector until SIGTERM or
//! SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use auditship_collector::config;
use auditship_collector::running::Running;
use tokio_util::sync::CancellationToken;

use super::agent::{init_logging, shutdown_on_signals};
use crate::notify;

/// The collector's status for systemd: its commit thread's rounds are the
/// watchdog's evidence (see [`notify`]).
impl notify::Probe for Running {
    fn progress(&self) -> u64 {
        Running::progress(self)
    }

    fn beat(&self) -> std::time::Duration {
        // The server's clock task ticks the commit thread every second.
        std::time::Duration::from_secs(1)
    }

    fn status(&self) -> String {
        format!(
            "stored {} events, {} agents",
            self.stored_events(),
            self.agents()
        )
    }
}

/// Arguments of `auditship collector`.
#[derive(clap::Args, Debug)]
pub struct CollectorArgs {
    /// The collector's TOML configuration.
    #[arg(long, short)]
    config: PathBuf,
}

/// Runs the collector.
pub fn run(args: CollectorArgs) -> anyhow::Result<ExitCode> {
    let cfg = match config::load(&args.config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::from(2));
        }
    };
    init_logging(&cfg.log_level, cfg.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        shutdown_on_signals(shutdown.clone());
        tracing::info!(config = %args.config.display(), "collector starting");
        let (ready, running) = tokio::sync::oneshot::channel();
        tokio::spawn(notify::supervise(
            notify::Notifier::from_env(),
            running,
            shutdown.clone(),
        ));
        auditship_collector::server::run_with(cfg, shutdown, move |r| {
            let _ = ready.send(r);
        })
        .await?;
        Ok(ExitCode::SUCCESS)
    })
}
