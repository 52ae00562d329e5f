//! `auditship key`: data-encryption keys for encryption at rest.
//!
//! `generate --out FILE` writes a new random key (64 hex digits, mode
//! 0600, never over an existing file) and prints its id; `id --key-file
//! FILE` prints the id of an existing key. Ids name keys in configs, logs
//! and error messages; the key itself is never printed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use auditship_crypt::Key;

/// Arguments of `auditship key`.
#[derive(clap::Args, Debug)]
pub struct KeyArgs {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(clap::Subcommand, Debug)]
enum KeyCommand {
    /// Write a new random key to a new file (mode 0600) and print its id.
    Generate {
        /// The key file to create; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the id of a key file.
    Id {
        /// The key file.
        #[arg(long)]
        key_file: PathBuf,
    },
}

/// Runs the command.
pub fn run(args: KeyArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        KeyCommand::Generate { out } => {
            let key = Key::generate()?;
            key.write_new(&out)
                .with_context(|| "generating a key".to_string())?;
            println!("{}", key.id());
            eprintln!(
                "wrote key {} to {} (mode 0600); keep a copy somewhere safe: data encrypted under it cannot be read without it",
                key.id(),
                out.display()
            );
        }
        KeyCommand::Id { key_file } => println!("{}", Key::load(&key_file)?.id()),
    }
    Ok(ExitCode::SUCCESS)
}
