//! `auditship export`: fetch matching events with their inclusion proofs
//! and the signed checkpoint, as a self-contained bundle
//! (`auditship_core::bundle` documents the format), to check later with
//! `auditship verify --bundle` or `tests/interop/verify.py`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::progress::{Progress, Unit};
use super::remote::{Filters, Remote};

/// Arguments of `auditship export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(flatten)]
    filters: Filters,
    /// Include an inclusion proof for every event (always on: a bundle
    /// without proofs proves nothing; accepted for clarity).
    #[arg(long)]
    with_proofs: bool,
    /// At most this many events (default: all, up to 1,000,000).
    #[arg(long)]
    limit: Option<u64>,
    /// Bundle file to write.
    #[arg(long, short = 'o')]
    output: PathBuf,
}

/// Runs the export.
pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let token = args.remote.token()?;
    let client = args.remote.client()?;
    let mut params = args.filters.params();
    if let Some(l) = args.limit {
        params.push(("limit", l.to_string()));
    }
    let url = args.remote.endpoint("/v1/export");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut bar = Progress::new("export", Unit::Bytes, None);
    let (status, body) = rt
        .block_on(async {
            let mut resp = args
                .remote
                .authorize(client.get(&url), &token)
                .query(&params)
                .send()
                .await?;
            let status = resp.status();
            if let Some(n) = resp.content_length() {
                bar.set_total(n);
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await? {
                body.extend_from_slice(&chunk);
                bar.update(body.len() as u64, "");
            }
            Ok::<_, reqwest::Error>((status, body))
        })
        .with_context(|| format!("exporting from {url}"))?;
    bar.finish();
    if !status.is_success() {
        bail!("{url}: {status}: {}", String::from_utf8_lossy(&body).trim());
    }
    let tmp = args.output.with_extension("partial");
    std::fs::write(&tmp, &body).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    let events = body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count()
        .saturating_sub(1);
    eprintln!(
        "wrote {} ({events} event(s) with inclusion proofs); check it with: auditship verify --bundle {} --pubkey collector.pub",
        args.output.display(),
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
