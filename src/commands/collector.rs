//! `auditship collector --config FILE`: run the collector until SIGTERM or
//! SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use auditship_collector::config;
use tokio_util::sync::CancellationToken;

use super::agent::{init_logging, shutdown_on_signals};

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
        auditship_collector::server::run(cfg, shutdown, None).await?;
        Ok(ExitCode::SUCCESS)
    })
}
