//! `auditship alerts list`: the alerts a collector stored.
//!
//! Sends `GET /v1/alerts` (the `since`, `rule` and `limit` filters) and
//! prints the alerts newest first, each in its latest state: a table, or
//! the JSON array as the collector answered it with `--json`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::remote::Remote;

/// Arguments of `auditship alerts`.
#[derive(clap::Args, Debug)]
pub struct AlertsArgs {
    #[command(subcommand)]
    command: AlertsCommand,
}

#[derive(clap::Subcommand, Debug)]
enum AlertsCommand {
    /// List stored alerts, newest first.
    List(ListArgs),
}

#[derive(clap::Args, Debug)]
struct ListArgs {
    #[command(flatten)]
    remote: Remote,
    /// Opened at or after: RFC 3339, or an age such as 15m, 1h, 7d.
    #[arg(long)]
    since: Option<String>,
    /// Only this rule.
    #[arg(long)]
    rule: Option<String>,
    /// At most this many alerts (1 to 1000).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Print the JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(args: AlertsArgs) -> anyhow::Result<ExitCode> {
    let AlertsCommand::List(a) = args.command;
    let token = a.remote.token()?;
    let client = a.remote.client()?;
    let url = a.remote.endpoint("/v1/alerts");
    let mut q = vec![("limit", a.limit.to_string())];
    if let Some(s) = &a.since {
        q.push(("since", s.clone()));
    }
    if let Some(r) = &a.rule {
        q.push(("rule", r.clone()));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, body) = rt
        .block_on(async {
            let resp = a
                .remote
                .authorize(client.get(&url), &token)
                .query(&q)
                .send()
                .await?;
            let status = resp.status();
            Ok::<_, reqwest::Error>((status, resp.bytes().await?))
        })
        .with_context(|| format!("querying {url}"))?;
    if !status.is_success() {
        bail!("{url}: {status}: {}", String::from_utf8_lossy(&body).trim());
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        out.write_all(&body)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let list: Vec<serde_json::Value> =
        serde_json::from_slice(&body).context("the collector's answer is not a JSON array")?;
    writeln!(
        out,
        "{:<25} {:<9} {:<8} {:<26} {:>7}  KEY",
        "OPENED", "SEVERITY", "STATUS", "RULE", "COUNT"
    )?;
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    for a in &list {
        writeln!(
            out,
            "{:<25} {:<9} {:<8} {:<26} {:>7}  {}",
            s(&a["opened"]),
            s(&a["severity"]),
            s(&a["status"]),
            s(&a["rule"]),
            a["count"].as_u64().unwrap_or(0),
            s(&a["key"]),
        )?;
    }
    eprintln!("{} alert(s)", list.len());
    Ok(ExitCode::SUCCESS)
}
