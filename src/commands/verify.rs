//! `auditship verify`: check a collector's store, or an export bundle,
//! with nothing but the collector's public key.
//!
//! Exit status: 0 when everything verifies, 1 when something does not
//! (the report names the first bad record: segment, offset, agent, seq and
//! what is wrong), 2 when the check could not run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use auditship_core::identity::PublicKey;

use super::progress::{Progress, Unit};

/// Arguments of `auditship verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// A collector's data directory (holding store/ and checkpoints.ndjson).
    #[arg(long, conflicts_with = "bundle")]
    store: Option<PathBuf>,
    /// An export bundle.
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// The collector's public key file (collector.pub in its data directory).
    #[arg(long)]
    pubkey: PathBuf,
    /// Print every problem, not only the first ten.
    #[arg(long)]
    all: bool,
    /// A key of an encrypted store (64 hex digits in a file); repeat it for
    /// every key the records were written under (current and previous).
    #[arg(long = "key-file", value_name = "FILE")]
    key_files: Vec<PathBuf>,
}

/// Runs the verification.
pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let key = PublicKey::load(&args.pubkey)?;
    let keys = match args.key_files.split_first() {
        Some((first, rest)) => Some(auditship_crypt::Keyring::load(first, rest)?),
        None => None,
    };
    match (&args.store, &args.bundle) {
        (Some(dir), None) => store(dir, &key, keys.as_ref(), args.all),
        (None, Some(file)) => bundle(file, &key),
        _ => bail!("give --store DIR or --bundle FILE"),
    }
}

fn bundle(file: &Path, key: &PublicKey) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    match auditship_core::bundle::verify(&text, key) {
        Ok(s) => {
            println!(
                "OK: {} event(s) from {} chain(s), each included in the log of {} records signed by key {} ({} chain link(s) checked)",
                s.events,
                s.chains,
                s.size,
                key.key_id(),
                s.links
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("FAILED: {}: {e}", file.display());
            Ok(ExitCode::from(1))
        }
    }
}

fn store(
    dir: &Path,
    key: &PublicKey,
    keys: Option<&auditship_crypt::Keyring>,
    all: bool,
) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let mut bar = Progress::new("verify", Unit::Bytes, None);
    let mut progress = |p: auditship_collector::verify::Progress| {
        bar.set_total(p.total);
        bar.update(p.bytes, &format!("{} records", p.records));
    };
    let report = auditship_collector::verify::verify_store(dir, key, keys, &mut progress)
        .map_err(|e| anyhow::anyhow!(e))?;
    bar.finish();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} records in {} segment(s), {} agent chain(s), {} checkpoint(s) matched, {} recorded integrity event(s) explain discontinuities; {:.1} s ({:.0} records/s, {:.0} MB/s)",
        report.records,
        report.segments,
        report.chains,
        report.checkpoints_ok,
        report.explained,
        secs,
        report.records as f64 / secs.max(1e-9),
        report.bytes as f64 / secs.max(1e-9) / 1e6
    );
    if report.expired > 0 || report.tombstones_pending > 0 {
        println!(
            "{} expired record(s) (payloads removed by retention, leaf hashes kept) covered by {} signed tombstone(s); {} tombstone(s) of unfinished steps",
            report.expired, report.tombstones, report.tombstones_pending
        );
    }
    if report.ok() {
        println!("OK: every record, chain and checkpoint verifies");
        return Ok(ExitCode::SUCCESS);
    }
    let n = report.problems.len();
    println!("FAILED: {n} problem(s); the first bad record:");
    for (i, p) in report.problems.iter().enumerate() {
        if i == 10 && !all {
            println!("  … and {} more (--all shows them)", n - 10);
            break;
        }
        println!("  {p}");
    }
    Ok(ExitCode::from(1))
}
