//! `auditship token create|list|revoke`: manage a collector's tokens
//! through its admin API (an admin token or mTLS identity is needed).
//!
//! The secret of a created token is printed once, on stdout (or written
//! to `--out` with mode 0600); the collector keeps only its SHA-256.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::remote::Remote;

/// Arguments of `auditship token`.
#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(clap::Subcommand, Debug)]
enum TokenCommand {
    /// Create a token and print its secret (shown only this once).
    Create {
        #[command(flatten)]
        remote: Remote,
        /// Its name (recorded in every access it makes).
        #[arg(long)]
        name: String,
        /// ingest, reader, auditor or admin.
        #[arg(long)]
        role: String,
        /// For ingest tokens: an agent id it may send as (repeat for more).
        #[arg(long = "agent")]
        agents: Vec<String>,
        /// Write the secret to this file (mode 0600) instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List every token: config and managed, revoked ones too.
    List {
        #[command(flatten)]
        remote: Remote,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a managed token; it stops working at once.
    Revoke {
        #[command(flatten)]
        remote: Remote,
        /// The token's name.
        name: String,
    },
}

/// Runs the command.
pub fn run(args: TokenArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TokenCommand::Create {
            remote,
            name,
            role,
            agents,
            out,
        } => {
            if auditship_collector::config::Role::parse(&role).is_none() {
                bail!("--role {role:?}: use ingest, reader, auditor or admin");
            }
            let body = serde_json::json!({"name": name, "role": role, "agents": agents});
            let v = remote.call(reqwest::Method::POST, "/v1/tokens", Some(&body))?;
            let secret = v
                .get("token")
                .and_then(|t| t.as_str())
                .context("the collector's answer holds no token")?;
            match out {
                Some(path) => {
                    write_secret(&path, secret)?;
                    eprintln!(
                        "created {role} token {name:?}; its secret is in {} (shown nowhere else)",
                        path.display()
                    );
                }
                None => {
                    println!("{secret}");
                    eprintln!("created {role} token {name:?}; keep the secret above: it is not shown again");
                }
            }
        }
        TokenCommand::List { remote, json } => {
            let v = remote.call(reqwest::Method::GET, "/v1/tokens", None)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(ExitCode::SUCCESS);
            }
            let s = |t: &serde_json::Value, k: &str| {
                t.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_string()
            };
            println!(
                "{:<24} {:<8} {:<8} {:<25} {:<16} {:<25} AGENTS",
                "NAME", "ROLE", "SOURCE", "CREATED", "BY", "REVOKED"
            );
            for t in v.as_array().into_iter().flatten() {
                let agents: Vec<&str> = t
                    .get("agents")
                    .and_then(|a| a.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str())
                    .collect();
                println!(
                    "{:<24} {:<8} {:<8} {:<25} {:<16} {:<25} {}",
                    s(t, "name"),
                    s(t, "role"),
                    s(t, "source"),
                    s(t, "created_at"),
                    s(t, "created_by"),
                    s(t, "revoked_at"),
                    agents.join(",")
                );
            }
        }
        TokenCommand::Revoke { remote, name } => {
            remote.call(reqwest::Method::DELETE, &format!("/v1/tokens/{name}"), None)?;
            eprintln!("revoked token {name:?}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_secret(path: &std::path::Path, secret: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(f, "{secret}").with_context(|| format!("writing {}", path.display()))?;
    f.sync_all()?;
    Ok(())
}
