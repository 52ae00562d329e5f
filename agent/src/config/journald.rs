//! `[[inputs]]` with `type = "journald"`: the raw settings and their
//! validation into [`JournaldConfig`].

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tomlconf::{ByteSize, HumanDuration};

use crate::input::file::ReadFrom;
use crate::input::journald::JournaldConfig;

/// `[[inputs]]` with `type = "journald"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJournaldInput {
    /// Unique name; part of the position (the journal cursor) the queue keeps for it.
    pub name: String,
    /// Only entries of these systemd units, e.g. ["ssh.service", "sudo"] (journalctl --unit).
    #[serde(default)]
    pub units: Vec<String>,
    /// Only entries matching these "FIELD=value" terms, e.g. ["SYSLOG_FACILITY=10"]:
    /// terms on the same field are ORed, on different fields ANDed (journalctl matches).
    #[serde(default)]
    pub matches: Vec<String>,
    /// Read this journal directory instead of the system journal (journalctl --directory).
    #[serde(default)]
    pub directory: Option<PathBuf>,
    /// Read these journal files instead of the system journal; globs allowed (journalctl --file).
    #[serde(default)]
    pub files: Vec<String>,
    /// Read this journal namespace (journalctl --namespace).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Without a saved cursor: "beginning" (default, the whole journal) or "end" (new entries only).
    #[serde(default)]
    pub read_from: ReadFrom,
    /// Longest entry as JSON (default "1MiB"); longer entries are truncated and flagged.
    #[serde(default)]
    pub max_line_bytes: Option<ByteSize>,
    /// The journalctl program (default "journalctl", found on the PATH).
    #[serde(default)]
    pub journalctl: Option<PathBuf>,
    /// Wait before starting journalctl again after it exits (default "1s").
    #[serde(default)]
    pub restart_delay: Option<HumanDuration>,
}

impl RawJournaldInput {
    /// Checks the settings; problems go to `err` as (key, message).
    pub fn validate(self, err: &mut dyn FnMut(&str, String)) -> JournaldConfig {
        for (j, m) in self.matches.iter().enumerate() {
            let ok = m
                .split_once('=')
                .is_some_and(|(f, _)| is_field_name(f) || m == "+");
            if !ok {
                err(
                    &format!("matches[{j}]"),
                    format!("{m:?} is not a FIELD=value match (field names are upper case, e.g. \"_SYSTEMD_UNIT=ssh.service\")"),
                );
            }
        }
        if self.directory.is_some() && !self.files.is_empty() {
            err("files", "give either directory or files, not both".into());
        }
        let max_line = self.max_line_bytes.map_or(1 << 20, |b| b.0 as usize);
        if !(1024..=16 << 20).contains(&max_line) {
            err(
                "max_line_bytes",
                format!("{max_line} must be between 1KiB and 16MiB"),
            );
        }
        let mut c = JournaldConfig::new(&self.name);
        c.units = self.units;
        c.matches = self.matches;
        c.directory = self.directory;
        c.files = self.files;
        c.namespace = self.namespace;
        c.read_from = self.read_from;
        c.max_line_bytes = max_line;
        if let Some(p) = self.journalctl {
            c.journalctl = p;
        }
        c.restart_delay = self.restart_delay.map_or(Duration::from_secs(1), |d| d.0);
        c
    }
}

/// A journal field name: upper-case letters, digits and `_`, not starting
/// with a digit.
fn is_field_name(f: &str) -> bool {
    !f.is_empty()
        && !f.starts_with(|c: char| c.is_ascii_digit())
        && f.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}
