//! `auditship store`: offline operations on a stopped collector's store.
//!
//! `rekey --data-dir D --key-file NEW [--previous-key-file OLD ...]`
//! re-encrypts every segment under NEW (segments under OLD keys, and
//! segments written in the clear before encryption was turned on), crash
//! safely; afterwards the old keys are no longer needed. It refuses to run
//! while a collector has the store open. See
//! `collector/src/store/segments/rekey.rs`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use auditship_crypt::Keyring;

use super::progress::{Progress, Unit};

/// Arguments of `auditship store`.
#[derive(clap::Args, Debug)]
pub struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(clap::Subcommand, Debug)]
enum StoreCommand {
    /// Re-encrypt every segment under the current key (the collector must be stopped).
    Rekey {
        /// The collector's data directory (holding store/).
        #[arg(long)]
        data_dir: PathBuf,
        /// The current key: the config's [store.encryption] key_file.
        #[arg(long)]
        key_file: PathBuf,
        /// A previous key the store still has records under; repeat for each.
        #[arg(long = "previous-key-file", value_name = "FILE")]
        previous_key_files: Vec<PathBuf>,
    },
}

/// Runs the command.
pub fn run(args: StoreArgs) -> anyhow::Result<ExitCode> {
    let StoreCommand::Rekey {
        data_dir,
        key_file,
        previous_key_files,
    } = args.command;
    let keys = Arc::new(Keyring::load(&key_file, &previous_key_files)?);
    let store = data_dir.join("store");
    let mut bar = Progress::new("rekey", Unit::Items("segments"), None);
    let report =
        auditship_collector::store::segments::rekey::rekey(&store, &keys, &mut |done, total| {
            bar.set_total(total);
            bar.update(done, "");
        })
        .with_context(|| format!("rekeying {}", store.display()))?;
    bar.finish();
    println!(
        "{} segment(s): {} rewritten under key {} ({} of them were in the clear), {} record(s) re-encrypted, {} index(es) rebuilt",
        report.segments,
        report.rewritten,
        keys.current(),
        report.were_plain,
        report.records,
        report.indexes_rebuilt
    );
    for (segment, offset, bytes, plain) in &report.damaged {
        println!(
            "  segment {segment} offset {offset}: {bytes} damaged byte(s) kept as they were{}",
            if *plain {
                " (from a segment in the clear: they may hold plaintext)"
            } else {
                ""
            }
        );
    }
    println!("OK: the store needs only key {} now", keys.current());
    Ok(ExitCode::SUCCESS)
}
