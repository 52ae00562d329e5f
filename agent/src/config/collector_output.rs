//! `[[outputs]]` with `type = "collector"`: the raw settings and their
//! validation into [`CollectorOutputConfig`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tomlconf::{ByteSize, HumanDuration};

use auditship_core::identity::PublicKey;
use auditship_core::wire::Compression;

use crate::output::{
    BatchLimits, CollectorKey, CollectorOutputConfig, RetryPolicy, TokenSource, WitnessConfig,
};

/// `[[outputs]]` with `type = "collector"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCollectorOutput {
    /// Unique name (default "collector").
    #[serde(default)]
    pub name: Option<String>,
    /// Collector base URLs ("https://collector.example:8443"), tried in
    /// order; a failing one hands over to the next. They must be one logical
    /// collector.
    pub endpoints: Vec<String>,
    /// The ingest token. Prefer token_file.
    #[serde(default)]
    pub token: Option<String>,
    /// File holding the ingest token (trailing whitespace ignored).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// CA certificates (PEM) that sign the collector's certificate; required for https.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// This agent's certificate (PEM), for collectors that require mutual TLS.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// The key of client_cert_file (PEM).
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// "zstd" (default), "gzip" or "none".
    #[serde(default)]
    pub compression: Option<String>,
    /// Level of `compression`: zstd -7 (fastest, largest) to 19, default
    /// 1 (negative levels are zstd's fast levels, not 0); gzip 1 (fastest,
    /// default) to 9.
    #[serde(default)]
    pub compression_level: Option<i64>,
    /// The gzip level, from before zstd (when gzip was the default): alone
    /// it still means gzip at that level; with `compression = "gzip"` it is
    /// `compression_level`. Refused with any other compression.
    #[serde(default)]
    pub gzip_level: Option<i64>,
    /// Most events per batch (default 5000).
    #[serde(default)]
    pub max_events: Option<usize>,
    /// Most bytes per batch before compression (default "4MiB").
    #[serde(default)]
    pub max_bytes: Option<ByteSize>,
    /// How long a batch may wait to fill once it holds an event (default "1s").
    #[serde(default)]
    pub max_wait: Option<HumanDuration>,
    /// Time limit of one request, answer included (default "30s").
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// Time limit of connecting (default "10s").
    #[serde(default)]
    pub connect_timeout: Option<HumanDuration>,
    /// First retry delay (default "100ms"); doubles per failure, with full jitter.
    #[serde(default)]
    pub backoff_initial: Option<HumanDuration>,
    /// Longest retry delay (default "30s"). A longer Retry-After is still honoured (up to 10 minutes).
    #[serde(default)]
    pub backoff_max: Option<HumanDuration>,
    /// Where batches the collector refuses go (default "<state_dir>/deadletter/<name>").
    #[serde(default)]
    pub dead_letter_dir: Option<PathBuf>,
    /// How often, at most, to check the collector's signed checkpoint for
    /// consistency with the last one seen, after deliveries (default "60s";
    /// "0s" disables the witness).
    #[serde(default)]
    pub witness_interval: Option<HumanDuration>,
    /// The collector's checkpoint public key (64 hex digits); when set, every
    /// checkpoint's signature is checked. Optional.
    #[serde(default)]
    pub collector_public_key: Option<String>,
    /// File holding the collector's checkpoint public key (instead of
    /// collector_public_key).
    #[serde(default)]
    pub collector_public_key_file: Option<PathBuf>,
    /// Where the last witnessed checkpoint is kept (default
    /// "<state_dir>/witness.json"; give each collector output its own).
    #[serde(default)]
    pub witness_file: Option<PathBuf>,
}

impl RawCollectorOutput {
    /// Validates; errors are `(key under outputs[i], message)`.
    pub fn validate(
        self,
        state_dir: &Path,
        err: &mut dyn FnMut(&str, String),
    ) -> CollectorOutputConfig {
        let name = self.name.unwrap_or_else(|| "collector".into());
        if self.endpoints.is_empty() {
            err("endpoints", "needs at least one collector URL".into());
        }
        for (j, e) in self.endpoints.iter().enumerate() {
            let key = format!("endpoints[{j}]");
            match e.split_once("://") {
                Some(("https", rest)) if !rest.is_empty() => {
                    if self.ca_file.is_none() {
                        err("ca_file", format!("is required for {e}: the CA that signs the collector's certificate"));
                    }
                }
                Some(("http", rest)) if !rest.is_empty() => {
                    let host = rest.split(['/', ':']).next().unwrap_or("");
                    if !["127.0.0.1", "localhost", "[::1]"].contains(&host) {
                        err(&key, format!("{e:?}: plain http is only allowed to this machine (127.0.0.1, localhost); use https"));
                    }
                }
                _ => err(&key, format!("{e:?} is not an http(s):// URL")),
            }
        }
        let token = match (self.token, self.token_file) {
            (Some(t), None) if !t.is_empty() => TokenSource::Inline(t),
            (None, Some(f)) => TokenSource::File(f),
            _ => {
                err("token", "set exactly one of token and token_file".into());
                TokenSource::Inline(String::new())
            }
        };
        let client_cert = match (self.client_cert_file, self.client_key_file) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                err(
                    "client_cert_file",
                    "client_cert_file and client_key_file go together".into(),
                );
                None
            }
        };
        let compression = compression(
            self.compression.as_deref(),
            self.compression_level,
            self.gzip_level,
            err,
        );
        let max_events = self.max_events.unwrap_or(5000);
        if !(1..=100_000).contains(&max_events) {
            err("max_events", format!("{max_events} must be 1 to 100000"));
        }
        let max_bytes = self.max_bytes.map_or(4 << 20, |b| b.0);
        if !(1024..=256 << 20).contains(&max_bytes) {
            err(
                "max_bytes",
                format!("{max_bytes} must be between 1KiB and 256MiB"),
            );
        }
        let d = |v: Option<HumanDuration>, ms: u64| v.map_or(Duration::from_millis(ms), |d| d.0);
        let retry = RetryPolicy {
            initial: d(self.backoff_initial, 100),
            max: d(self.backoff_max, 30_000),
        };
        if retry.initial.is_zero() || retry.initial > retry.max {
            err(
                "backoff_initial",
                "must be above zero and at most backoff_max".into(),
            );
        }
        let dead_letter_dir = self
            .dead_letter_dir
            .unwrap_or_else(|| state_dir.join("deadletter").join(&name));
        let collector_key = match (self.collector_public_key, self.collector_public_key_file) {
            (None, None) => None,
            (Some(k), None) => match PublicKey::parse(&k) {
                Ok(k) => Some(CollectorKey::Inline(k)),
                Err(e) => {
                    err("collector_public_key", e);
                    None
                }
            },
            (None, Some(f)) => Some(CollectorKey::File(f)),
            (Some(_), Some(_)) => {
                err(
                    "collector_public_key",
                    "set at most one of collector_public_key and collector_public_key_file".into(),
                );
                None
            }
        };
        let witness_interval = d(self.witness_interval, 60_000);
        let witness = WitnessConfig {
            interval: (!witness_interval.is_zero()).then_some(witness_interval),
            collector_key,
            file: self
                .witness_file
                .unwrap_or_else(|| state_dir.join("witness.json")),
        };
        CollectorOutputConfig {
            name,
            endpoints: self.endpoints,
            token,
            ca_file: self.ca_file,
            client_cert,
            compression,
            limits: BatchLimits {
                max_events,
                max_bytes: max_bytes as usize,
                max_wait: d(self.max_wait, 1000),
            },
            timeout: d(self.timeout, 30_000),
            connect_timeout: d(self.connect_timeout, 10_000),
            retry,
            dead_letter_dir,
            witness,
        }
    }
}

/// The compression from `compression`, `compression_level` and the older
/// `gzip_level`. zstd is the default: every collector of this version
/// accepts it (an older collector, which knows only gzip, needs
/// `compression = "gzip"`).
fn compression(
    name: Option<&str>,
    level: Option<i64>,
    gzip_level: Option<i64>,
    err: &mut dyn FnMut(&str, String),
) -> Compression {
    let (name, level, level_key) = match (name, level, gzip_level) {
        (_, Some(_), Some(_)) => {
            err(
                "gzip_level",
                "set compression_level, not both it and gzip_level (gzip_level is its older name for gzip)".into(),
            );
            return Compression::Zstd(1);
        }
        // A config from before zstd: gzip_level alone meant gzip.
        (None | Some("gzip"), None, Some(l)) => ("gzip", Some(l), "gzip_level"),
        (Some(other), None, Some(_)) => {
            err(
                "gzip_level",
                format!("is for compression = \"gzip\", not {other:?}; use compression_level"),
            );
            return Compression::Zstd(1);
        }
        (name, level, None) => (name.unwrap_or("zstd"), level, "compression_level"),
    };
    let mut checked = |range: std::ops::RangeInclusive<i64>| {
        let l = level.unwrap_or(1);
        if !range.contains(&l) {
            err(
                level_key,
                format!(
                    "{l} must be {} to {} for {name}",
                    range.start(),
                    range.end()
                ),
            );
        }
        l.clamp(*range.start(), *range.end())
    };
    match name {
        "zstd" if level == Some(0) => {
            // The library would read 0 as its default level, 3: surprising.
            err(
                level_key,
                "0 is not a zstd level: use 1 (the default) or a negative level (faster)".into(),
            );
            Compression::Zstd(1)
        }
        "zstd" => {
            let r = Compression::ZSTD_LEVELS;
            Compression::Zstd(checked(i64::from(*r.start())..=i64::from(*r.end())) as i32)
        }
        "gzip" => {
            let r = Compression::GZIP_LEVELS;
            Compression::Gzip(checked(i64::from(*r.start())..=i64::from(*r.end())) as u32)
        }
        "none" => {
            if level.is_some() {
                err(
                    "compression_level",
                    "there is no level for compression = \"none\"".into(),
                );
            }
            Compression::None
        }
        other => {
            err(
                "compression",
                format!("{other:?} is not zstd, gzip or none"),
            );
            Compression::Zstd(1)
        }
    }
}
