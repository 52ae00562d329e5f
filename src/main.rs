//! `auditship`: the single binary for every role and tool.
//!
//! This file only declares the command line and dispatches; each command
//! lives in its own module under `commands/`.

mod commands;
mod notify;

use clap::{Parser, Subcommand};

/// Tamper-evident audit-log pipeline.
#[derive(Parser)]
#[command(name = "auditship", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent: tail logs, parse, queue durably, deliver to outputs.
    Agent(commands::agent::AgentArgs),
    /// Run the collector: receive batches over HTTPS, store them, answer queries.
    Collector(commands::collector::CollectorArgs),
    /// Start a collector and an agent on this machine, writing into a local directory.
    Quickstart(commands::quickstart::QuickstartArgs),
    /// Query a collector's stored events.
    Query(Box<commands::query::QueryArgs>),
    /// List or resend batches a collector refused.
    Deadletter(commands::deadletter::DeadletterArgs),
    /// Check an agent (or, with --collector, a collector) configuration without starting.
    Validate(commands::validate::ValidateArgs),
    /// Parse log lines from files or stdin into audit events, one JSON object per line.
    Parse(commands::parse::ParseArgs),
    /// Check a collector's store, or an export bundle, against the collector's public key.
    Verify(commands::verify::VerifyArgs),
    /// Export matching events with inclusion proofs and the signed checkpoint.
    Export(Box<commands::export::ExportArgs>),
    /// Generate an encryption key for the store or the queue, or print a key file's id.
    Key(commands::key::KeyArgs),
    /// Offline store operations on a stopped collector: rekey.
    Store(commands::store::StoreArgs),
    /// Create, list or revoke a collector's tokens (needs an admin token).
    Token(Box<commands::token::TokenArgs>),
    /// Run retention on a collector now (--dry-run: only show what would expire).
    Retention(commands::retention::RetentionArgs),
    /// Add, list or remove legal holds on a collector.
    Hold(commands::retention::HoldArgs),
    /// Check the archived segments against the collector's log.
    Archive(commands::retention::ArchiveArgs),
    /// List the alerts a collector stored.
    Alerts(Box<commands::alerts::AlertsArgs>),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Agent(args) => commands::agent::run(args),
        Command::Collector(args) => commands::collector::run(args),
        Command::Quickstart(args) => commands::quickstart::run(args),
        Command::Query(args) => commands::query::run(*args),
        Command::Deadletter(args) => commands::deadletter::run(args),
        Command::Validate(args) => commands::validate::run(args),
        Command::Parse(args) => commands::parse::run(args),
        Command::Verify(args) => commands::verify::run(args),
        Command::Export(args) => commands::export::run(*args),
        Command::Key(args) => commands::key::run(args),
        Command::Store(args) => commands::store::run(args),
        Command::Token(args) => commands::token::run(*args),
        Command::Retention(args) => commands::retention::run_retention(args),
        Command::Hold(args) => commands::retention::run_hold(args),
        Command::Archive(args) => commands::retention::run_archive(args),
        Command::Alerts(args) => commands::alerts::run(*args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("auditship: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
