//! `auditship parse`: files or stdin in, one JSON event per line out.
//!
//! Lines are framed with the same rules as the agent's inputs (maximum
//! length, split or truncate), parsed with the chosen format, and written
//! in the chosen schema. Every line produces exactly one event; lines no
//! parser understands come out as `unparsed` with the raw text kept. Empty
//! lines carry nothing and are skipped.
//!
//! `--format auditd` is the exception: the records of one audit event are
//! grouped into one event (see `auditship_plugins::parsers::auditd`). A
//! group ends at a record of another event, at an `EOE`, at a line that is
//! not a record, or at the end of each file; there is no idle timeout here,
//! so when following a live log through stdin the last event comes out when
//! the next one begins.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use auditship_core::{ecs, ocsf, AuditEvent, Timestamp};
use auditship_plugins::framing::{FrameReader, Framer, Overlong};
use auditship_plugins::{Format, Parser, ParserOptions, StreamLine};

/// Output schema for `parse`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Schema {
    /// auditship's own event schema.
    Native,
    /// Elastic Common Schema.
    Ecs,
    /// Open Cybersecurity Schema Framework.
    Ocsf,
}

/// Arguments of `auditship parse`.
#[derive(clap::Args, Debug)]
pub struct ParseArgs {
    /// Input format: auto, nginx, apache, auth, json or auditd. `auto` detects per line.
    #[arg(long, default_value = "auto", value_parser = parse_format)]
    format: Format,
    /// A custom nginx `log_format` string, e.g. '$remote_addr [$time_local] "$request" $status'.
    #[arg(long, value_name = "STR")]
    nginx_log_format: Option<String>,
    /// A custom Apache `LogFormat` string, e.g. '%h %l %u %t "%r" %>s %b'.
    #[arg(long, value_name = "STR")]
    apache_log_format: Option<String>,
    /// Output schema.
    #[arg(long, value_enum, default_value = "native")]
    schema: Schema,
    /// Year of the first RFC 3164 (year-less) timestamp; later lines roll over
    /// at December to January. Without it, the year is inferred from today.
    #[arg(long, value_name = "N")]
    year: Option<i32>,
    /// Time zone for timestamps without one: local, UTC, +HH:MM, or an IANA name.
    #[arg(long, value_name = "TZ", default_value = "local")]
    timezone: String,
    /// Map a JSON field path to a schema field (json format), e.g. --map user.login=actor.user.
    #[arg(long = "map", value_name = "PATH=FIELD")]
    map: Vec<String>,
    /// Longest line in bytes; longer lines are split (or truncated).
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024)]
    max_line_bytes: usize,
    /// Truncate over-long lines instead of splitting them.
    #[arg(long)]
    truncate: bool,
    /// Print counts of parsed and unparsed lines to stderr at the end.
    #[arg(long)]
    stats: bool,
    /// Files to read; none, or `-`, reads stdin.
    files: Vec<PathBuf>,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

/// Writes one event line; `false` when the reader went away (broken pipe).
fn write_event(out: &mut impl Write, ev: &AuditEvent, schema: Schema) -> anyhow::Result<bool> {
    let written = match schema {
        Schema::Native => serde_json::to_writer(&mut *out, ev),
        Schema::Ecs => serde_json::to_writer(&mut *out, &ecs::to_ecs(ev)),
        Schema::Ocsf => serde_json::to_writer(&mut *out, &ocsf::to_ocsf(ev)),
    };
    written.context("writing output")?;
    match out.write_all(b"\n") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("writing output"),
    }
}

/// Runs `auditship parse`.
pub fn run(args: ParseArgs) -> anyhow::Result<ExitCode> {
    let mut json_mapping = BTreeMap::new();
    for m in &args.map {
        let Some((path, field)) = m.split_once('=') else {
            bail!("--map {m:?}: expected PATH=FIELD, e.g. user.login=actor.user");
        };
        json_mapping.insert(path.to_string(), field.to_string());
    }
    let mut parser = Parser::new(&ParserOptions {
        format: args.format,
        nginx_log_format: args.nginx_log_format.clone(),
        apache_log_format: args.apache_log_format.clone(),
        year: args.year,
        timezone: Some(args.timezone.clone()),
        json_mapping,
        group_timeout: None,
    })?;
    let overlong = if args.truncate {
        Overlong::Truncate
    } else {
        Overlong::Split
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(256 * 1024, stdout.lock());
    let inputs: Vec<Option<&PathBuf>> = if args.files.is_empty() {
        vec![None]
    } else {
        args.files
            .iter()
            .map(|p| (p.as_os_str() != "-").then_some(p))
            .collect()
    };
    for input in inputs {
        let (reader, source): (Box<dyn Read>, String) = match input {
            Some(path) => (
                Box::new(
                    File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
                ),
                path.display().to_string(),
            ),
            None => (Box::new(io::stdin().lock()), "stdin".to_string()),
        };
        let mut frames = FrameReader::new(reader, Framer::new(args.max_line_bytes, overlong));
        let mut line = Vec::new();
        let mut grouped = Vec::new();
        while let Some(flags) = frames
            .next_into(&mut line)
            .with_context(|| format!("reading {source}"))?
        {
            if parser.groups_lines() {
                parser.push_line(
                    StreamLine {
                        stream: source.as_bytes(),
                        bytes: &line,
                        flags,
                        position: b"",
                        source: &source,
                    },
                    Instant::now(),
                    Timestamp::now_utc(),
                    &mut grouped,
                );
                for g in grouped.drain(..) {
                    if !write_event(&mut out, &g.event, args.schema)? {
                        return Ok(ExitCode::SUCCESS);
                    }
                }
                continue;
            }
            let mut ev = parser.parse(&line);
            ev.flags.insert(flags);
            ev.source = Some(source.clone());
            if !write_event(&mut out, &ev, args.schema)? {
                return Ok(ExitCode::SUCCESS);
            }
        }
        parser.flush_stream(source.as_bytes(), &mut grouped);
        for g in grouped.drain(..) {
            if !write_event(&mut out, &g.event, args.schema)? {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    match out.flush() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        r => r.context("writing output")?,
    }
    if args.stats {
        let s = parser.stats();
        eprintln!(
            "parsed {} lines, unparsed {}, escaped (invalid UTF-8) {}",
            s.parsed, s.unparsed, s.escaped
        );
    }
    Ok(ExitCode::SUCCESS)
}
