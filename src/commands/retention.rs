//! `auditship retention run`, `auditship hold ...` and `auditship archive
//! verify`: retention, legal holds and the archive (see the collector's
//! `retention` module for what they do).
//!
//! The first two talk to a collector's admin API with an admin token, like
//! `query` does; `archive verify` reads the archive and the data directory
//! named in a collector config, as `verify` reads a store.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use auditship_collector::retention::{Progress as RunProgress, RunReport};
use auditship_core::identity::PublicKey;

use super::progress::{Progress, Unit};
use super::remote::Remote;

/// Arguments of `auditship retention`.
#[derive(clap::Args, Debug)]
pub struct RetentionArgs {
    #[command(subcommand)]
    command: RetentionCommand,
}

#[derive(clap::Subcommand, Debug)]
enum RetentionCommand {
    /// Run retention now; print per policy what expired (or would).
    Run {
        #[command(flatten)]
        remote: Remote,
        /// Only show what would happen; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Arguments of `auditship hold`.
#[derive(clap::Args, Debug)]
pub struct HoldArgs {
    #[command(subcommand)]
    command: HoldCommand,
}

#[derive(clap::Subcommand, Debug)]
enum HoldCommand {
    /// Add a legal hold: events in the range and/or of the host are not expired.
    Add {
        #[command(flatten)]
        remote: Remote,
        /// Events at or after (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Events before (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Events of this host.
        #[arg(long)]
        host: Option<String>,
        /// Why (a case number, say).
        #[arg(long)]
        reason: String,
    },
    /// List the legal holds.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove a legal hold.
    Remove {
        #[command(flatten)]
        remote: Remote,
        /// The hold's id (hold-N).
        id: String,
    },
}

/// Arguments of `auditship archive`.
#[derive(clap::Args, Debug)]
pub struct ArchiveArgs {
    #[command(subcommand)]
    command: ArchiveCommand,
}

#[derive(clap::Subcommand, Debug)]
enum ArchiveCommand {
    /// Read every archived segment back and check it against its manifest,
    /// the collector's Merkle log and its signed checkpoint.
    Verify {
        /// The collector's config (its [retention.archive] and data_dir).
        #[arg(long)]
        config: PathBuf,
        /// The collector's public key (default: collector.pub in its data_dir).
        #[arg(long)]
        pubkey: Option<PathBuf>,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Runs `auditship retention`.
pub fn run_retention(args: RetentionArgs) -> anyhow::Result<ExitCode> {
    let RetentionCommand::Run { remote, dry_run } = args.command;
    let token = remote.token()?;
    let client = remote.client()?;
    let url = remote.endpoint("/v1/retention/run");
    let mut bar = Progress::new("retention", Unit::Bytes, None);
    let mut report: Option<RunReport> = None;
    let mut failure: Option<String> = None;
    runtime()?
        .block_on(async {
            let mut resp = remote
                .authorize(client.post(&url), &token)
                .query(&[("dry_run", dry_run.to_string())])
                .send()
                .await?;
            let status = resp.status();
            let mut buf = Vec::new();
            while let Some(chunk) = resp.chunk().await? {
                buf.extend_from_slice(&chunk);
                while let Some(i) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=i).collect();
                    if !status.is_success() {
                        failure = Some(format!(
                            "{status}: {}",
                            String::from_utf8_lossy(&line).trim()
                        ));
                        continue;
                    }
                    let v: serde_json::Value = serde_json::from_slice(&line).unwrap_or_default();
                    if let Some(p) = v.get("progress") {
                        if let Ok(p) = serde_json::from_value::<RunProgress>(p.clone()) {
                            bar.set_total(p.bytes);
                            bar.update(
                                p.bytes_done,
                                &format!("{}/{} segments", p.segments_done, p.segments),
                            );
                        }
                    } else if let Some(r) = v.get("report") {
                        report = serde_json::from_value(r.clone()).ok();
                    } else if let Some(e) = v.get("error") {
                        failure = Some(e.as_str().unwrap_or_default().to_string());
                    }
                }
            }
            if !status.is_success() && failure.is_none() {
                failure = Some(format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&buf).trim()
                ));
            }
            Ok::<_, reqwest::Error>(())
        })
        .with_context(|| format!("asking {url}"))?;
    bar.finish();
    if let Some(f) = failure {
        bail!("{url}: {f}");
    }
    let Some(r) = report else {
        bail!("{url}: the collector ended the answer without a report");
    };
    print_report(&r)?;
    Ok(if r.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_report(r: &RunReport) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let verb = if r.dry_run { "would expire" } else { "expired" };
    writeln!(
        out,
        "{}retention: {} sealed segment(s) read ({:.1} MB) in {:.2} s",
        if r.dry_run {
            "DRY RUN (nothing changed): "
        } else {
            ""
        },
        r.segments_scanned,
        r.bytes_scanned as f64 / 1e6,
        r.seconds
    )?;
    writeln!(
        out,
        "{:<20} {:>8} {:>10} {:>12} {:>9} {:>8}",
        "POLICY", "MAX AGE", "EVENTS", "BYTES", "SEGMENTS", "HELD"
    )?;
    for p in &r.policies {
        writeln!(
            out,
            "{:<20} {:>7}d {:>10} {:>12} {:>9} {:>8}",
            p.policy, p.max_age_days, p.events, p.bytes, p.segments, p.held
        )?;
    }
    writeln!(
        out,
        "{verb} {} event(s) in {} segment(s); {} held back by legal holds",
        r.expired, r.segments, r.held
    )?;
    if !r.tombstones.is_empty() {
        let t: Vec<String> = r.tombstones.iter().map(|t| t.to_string()).collect();
        writeln!(out, "tombstones at record(s) {}", t.join(", "))?;
    }
    for a in &r.archived {
        writeln!(out, "archived {a}")?;
    }
    if r.resumed > 0 {
        writeln!(
            out,
            "finished {} step(s) an earlier run left interrupted",
            r.resumed
        )?;
    }
    for e in &r.errors {
        writeln!(out, "ERROR: {e}")?;
    }
    Ok(())
}

async fn send(req: reqwest::RequestBuilder, url: &str) -> anyhow::Result<serde_json::Value> {
    let resp = req.send().await.with_context(|| format!("asking {url}"))?;
    let status = resp.status();
    let body = resp.bytes().await?;
    if !status.is_success() {
        bail!("{url}: {status}: {}", String::from_utf8_lossy(&body).trim());
    }
    Ok(serde_json::from_slice(&body)?)
}

fn hold_line(h: &serde_json::Value) -> String {
    let s = |k: &str| h.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_string();
    format!(
        "{:<10} {:<25} {:<25} {:<16} {:<12} {}",
        s("id"),
        s("from"),
        s("until"),
        s("host"),
        s("created_by"),
        s("reason")
    )
}

/// Runs `auditship hold`.
pub fn run_hold(args: HoldArgs) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    match args.command {
        HoldCommand::Add {
            remote,
            from,
            until,
            host,
            reason,
        } => {
            let url = remote.endpoint("/v1/holds");
            let body =
                serde_json::json!({"from": from, "until": until, "host": host, "reason": reason});
            let req = remote
                .authorize(remote.client()?.post(&url), &remote.token()?)
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body)?);
            let h = rt.block_on(send(req, &url))?;
            println!("added {}", hold_line(&h));
        }
        HoldCommand::List { remote } => {
            let url = remote.endpoint("/v1/holds");
            let req = remote.authorize(remote.client()?.get(&url), &remote.token()?);
            let list = rt.block_on(send(req, &url))?;
            println!(
                "{:<10} {:<25} {:<25} {:<16} {:<12} REASON",
                "ID", "FROM", "UNTIL", "HOST", "BY"
            );
            for h in list.as_array().into_iter().flatten() {
                println!("{}", hold_line(h));
            }
        }
        HoldCommand::Remove { remote, id } => {
            let url = remote.endpoint(&format!("/v1/holds/{id}"));
            let req = remote.authorize(remote.client()?.delete(&url), &remote.token()?);
            let h = rt.block_on(send(req, &url))?;
            println!("removed {}", hold_line(&h));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `auditship archive`.
pub fn run_archive(args: ArchiveArgs) -> anyhow::Result<ExitCode> {
    let ArchiveCommand::Verify { config, pubkey } = args.command;
    let cfg = auditship_collector::config::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(a) = &cfg.retention.archive else {
        bail!("{}: no [retention.archive] configured", config.display());
    };
    let key = PublicKey::load(&pubkey.unwrap_or_else(|| cfg.data_dir.join("collector.pub")))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let archive = auditship_collector::retention::archive::Archive::open(a, rt.handle().clone())?;
    // Segments of an encrypted store are archived encrypted: the keys of
    // [store.encryption] open them.
    let keys = match &cfg.encryption {
        Some(e) => Some(auditship_crypt::Keyring::load(
            &e.key_file,
            &e.previous_key_files,
        )?),
        None => None,
    };
    let checked = auditship_collector::retention::check::verify_archive(
        &archive,
        &cfg.data_dir,
        &key,
        keys.as_ref(),
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let bad = checked.iter().filter(|c| c.problem.is_some()).count();
    for c in &checked {
        match &c.problem {
            None => println!(
                "OK      segment {:>6}: {} record(s) ({} with payload) match the Merkle log and the signed checkpoint ({})",
                c.segment, c.leaves, c.events, c.manifest
            ),
            Some(p) => println!("FAILED  {}: {p}", c.manifest),
        }
    }
    println!("{} archived segment(s), {bad} failed", checked.len());
    Ok(if bad == 0 && !checked.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
