//! `auditship validate [--collector] --config FILE`: check a config without
//! starting.
//!
//! Prints every problem with its file, line and key, and exits 2 if there
//! is any; otherwise prints a one-line summary and exits 0.

use std::path::PathBuf;
use std::process::ExitCode;

use auditship_agent::config;

/// Arguments of `auditship validate`.
#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// The TOML configuration to check.
    #[arg(long, short)]
    config: PathBuf,
    /// It is a collector configuration (default: an agent's).
    #[arg(long)]
    collector: bool,
}

/// Runs the check.
pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    if args.collector {
        return Ok(match auditship_collector::config::load(&args.config) {
            Ok(c) => {
                println!(
                    "{}: ok (listen {}, {}, {} tokens; data in {})",
                    args.config.display(),
                    c.listen,
                    match &c.tls {
                        Some(t) if t.client_ca_file.is_some() => "mutual TLS",
                        Some(_) => "TLS",
                        None => "plain HTTP",
                    },
                    c.tokens.len(),
                    c.data_dir.display()
                );
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                eprintln!("{} error(s)", errors.0.len());
                ExitCode::from(2)
            }
        });
    }
    match config::load(&args.config) {
        Ok(c) => {
            println!(
                "{}: ok ({} inputs, {} filters, {} outputs; queue in {})",
                args.config.display(),
                c.inputs.len(),
                c.filters.len(),
                c.outputs.len(),
                c.queue.dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{} error(s)", errors.0.len());
            Ok(ExitCode::from(2))
        }
    }
}
