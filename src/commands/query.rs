//! `auditship query`: ask a collector for stored events.
//!
//! Sends `GET /v1/events` with the filters given (see the collector's query
//! API for their meaning) and prints the events newest first: a table when
//! standard output is a terminal, NDJSON otherwise (`--format` overrides).
//! `--all` follows the cursors until every matching event is printed;
//! otherwise the next page's cursor is printed on stderr.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{bail, Context};
use auditship_core::AuditEvent;

use super::remote::{Filters, Remote};

/// Arguments of `auditship query`.
#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(flatten)]
    filters: Filters,
    /// Events per page (1 to 10000).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Continue from a cursor a previous page printed.
    #[arg(long)]
    cursor: Option<String>,
    /// Follow cursors and print every matching event.
    #[arg(long)]
    all: bool,
    /// auto (table on a terminal, else NDJSON), table or ndjson.
    #[arg(long, default_value = "auto")]
    format: String,
}

/// Runs the query.
pub fn run(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let table = match args.format.as_str() {
        "auto" => std::io::stdout().is_terminal(),
        "table" => true,
        "ndjson" => false,
        o => bail!("--format {o:?}: use auto, table or ndjson"),
    };
    let token = args.remote.token()?;
    let client = args.remote.client()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut params = args.filters.params();
    params.push(("limit", args.limit.to_string()));
    let url = args.remote.endpoint("/v1/events");
    let mut cursor = args.cursor.clone();
    let mut out = std::io::stdout().lock();
    let mut printed = 0usize;
    if table {
        writeln!(
            out,
            "{:<25} {:<14} {:<12} {:<20} {:<8} {:<16} RAW",
            "TIME", "HOST", "ACTOR", "ACTION", "OUTCOME", "SOURCE IP"
        )?;
    }
    loop {
        let mut q = params.clone();
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let (status, next, body) = rt
            .block_on(async {
                let resp = args
                    .remote
                    .authorize(client.get(&url), &token)
                    .query(&q)
                    .send()
                    .await?;
                let status = resp.status();
                let next = resp
                    .headers()
                    .get("x-next-cursor")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let body = resp.bytes().await?;
                Ok::<_, reqwest::Error>((status, next, body))
            })
            .with_context(|| format!("querying {url}"))?;
        if !status.is_success() {
            bail!("{url}: {status}: {}", String::from_utf8_lossy(&body).trim());
        }
        for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            printed += 1;
            if table {
                writeln!(out, "{}", table_row(line))?;
            } else {
                out.write_all(line)?;
                out.write_all(b"\n")?;
            }
        }
        cursor = next;
        match (&cursor, args.all) {
            (Some(_), true) => continue,
            (Some(c), false) => {
                eprintln!("more events match: add --cursor {c} (or --all)");
                break;
            }
            (None, _) => break,
        }
    }
    if table {
        eprintln!("{printed} event(s)");
    }
    Ok(ExitCode::SUCCESS)
}

/// One event as a table row.
fn table_row(line: &[u8]) -> String {
    let Ok(ev) = serde_json::from_slice::<AuditEvent>(line) else {
        return String::from_utf8_lossy(line).into_owned();
    };
    let dash = |s: Option<String>| s.unwrap_or_else(|| "-".into());
    let mut raw: String = ev
        .raw
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect();
    if ev.raw.chars().count() > 80 {
        raw.push('…');
    }
    format!(
        "{:<25} {:<14} {:<12} {:<20} {:<8} {:<16} {}",
        dash(ev.ts.map(|t| t.to_string())),
        dash(ev.host),
        dash(ev.actor.user),
        ev.action,
        format!("{:?}", ev.outcome).to_lowercase(),
        dash(ev.src_ip.map(|i| i.to_string())),
        raw
    )
}
