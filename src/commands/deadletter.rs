//! `auditship deadletter list|replay --config agent.toml`: batches a
//! collector refused.
//!
//! `list` shows each letter: when, which `seq` range, how many events, the
//! status and the collector's answer. `replay` sends each one again, as it
//! was sent and with the `Content-Encoding` it was sent with (zstd, gzip or
//! none, whatever the output's compression is now), to the output's
//! endpoints with the output's credentials, and deletes those the
//! collector accepts; letters refused again stay, with the new answer
//! printed. Exit status 0 when nothing is left, 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::progress::{Progress, Unit};
use auditship_agent::config::{self, OutputConfig};
use auditship_agent::output::deadletter::DeadLetter;
use auditship_agent::output::{build_client, CollectorOutputConfig, TokenSource};
use auditship_core::wire::{IngestAck, INGEST_PATH};

/// Arguments of `auditship deadletter`.
#[derive(clap::Args, Debug)]
pub struct DeadletterArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// List dead-lettered batches.
    List(Common),
    /// Send dead-lettered batches again; delete those accepted.
    Replay(Common),
}

#[derive(clap::Args, Debug)]
struct Common {
    /// The agent's configuration.
    #[arg(long, short)]
    config: PathBuf,
    /// The collector output (default: the only one).
    #[arg(long)]
    output: Option<String>,
}

/// Runs the command.
pub fn run(args: DeadletterArgs) -> anyhow::Result<ExitCode> {
    let (common, replay) = match &args.action {
        Action::List(c) => (c, false),
        Action::Replay(c) => (c, true),
    };
    let cfg = config::load(&common.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let outputs: Vec<&CollectorOutputConfig> = cfg
        .outputs
        .iter()
        .filter_map(|o| match o {
            OutputConfig::Collector(c) => Some(&**c),
            _ => None,
        })
        .filter(|c| common.output.as_ref().is_none_or(|n| *n == c.name))
        .collect();
    let out = match outputs.as_slice() {
        [one] => *one,
        [] => bail!(
            "no collector output{} in {}",
            common
                .output
                .as_ref()
                .map(|n| format!(" named {n:?}"))
                .unwrap_or_default(),
            common.config.display()
        ),
        _ => bail!("several collector outputs: choose one with --output"),
    };
    let dl = DeadLetter::new(out.dead_letter_dir.clone());
    let letters = dl
        .list()
        .with_context(|| format!("reading {}", out.dead_letter_dir.display()))?;
    if !replay {
        for (path, letter) in &letters {
            match letter {
                Ok(l) => println!(
                    "{}  {}  seq {}..={}  {} events  {}  {} {}  {}",
                    path.display(),
                    l.time,
                    l.first,
                    l.last,
                    l.events,
                    l.encoding().name(),
                    l.status,
                    l.response.trim(),
                    l.endpoint
                ),
                Err(e) => println!("{}  incomplete: {e}", path.display()),
            }
        }
        println!(
            "{} dead-lettered batch(es) in {}",
            letters.len(),
            out.dead_letter_dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let token = match &out.token {
        TokenSource::Inline(t) => t.clone(),
        TokenSource::File(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading {}", p.display()))?
            .trim_end()
            .to_string(),
    };
    let client = build_client(out).map_err(|e| anyhow::anyhow!(e))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut left = 0;
    let mut bar = Progress::new("replay", Unit::Items("batches"), Some(letters.len() as u64));
    for (i, (path, letter)) in letters.into_iter().enumerate() {
        bar.update(i as u64, "");
        let Ok(letter) = letter else {
            println!(
                "{}: skipped, incomplete (its batch is still queued; delete it)",
                path.display()
            );
            left += 1;
            continue;
        };
        let body = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut last_error = String::new();
        let mut done = false;
        for endpoint in &out.endpoints {
            let url = format!("{}{INGEST_PATH}", endpoint.trim_end_matches('/'));
            let mut req = client
                .post(&url)
                .bearer_auth(&token)
                .header("content-type", "application/x-ndjson")
                .body(body.clone());
            if let Some(e) = letter.encoding().header_value() {
                req = req.header("content-encoding", e);
            }
            let result = rt.block_on(async {
                let r = req.send().await?;
                let status = r.status();
                Ok::<_, reqwest::Error>((status, r.text().await.unwrap_or_default()))
            });
            match result {
                Ok((s, text)) if s.is_success() => {
                    let ack: Option<IngestAck> = serde_json::from_str(&text).ok();
                    println!(
                        "{}: delivered to {endpoint} (seq {}..={}, {} stored, {} already there)",
                        path.display(),
                        letter.first,
                        letter.last,
                        ack.as_ref().map_or(0, |a| a.stored),
                        ack.as_ref().map_or(0, |a| a.duplicates)
                    );
                    DeadLetter::remove(&path)
                        .with_context(|| format!("removing {}", path.display()))?;
                    done = true;
                    break;
                }
                Ok((s, text)) => last_error = format!("{s}: {}", text.trim()),
                Err(e) => last_error = e.to_string(),
            }
        }
        if !done {
            println!("{}: still refused: {last_error}", path.display());
            left += 1;
        }
    }
    bar.finish();
    Ok(if left == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
