//! `[[alerts.webhooks]]`: a webhook's configuration, as written and as
//! validated (delivery itself is [`super::webhook`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tomlconf::HumanDuration;

use super::rules::{Err, Severity};

/// `[[alerts.webhooks]]`: a receiver of JSON POSTs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    /// Name in logs and metrics.
    pub name: String,
    /// `https://` URL (`http://` only to 127.0.0.1, ::1 or localhost, or
    /// with insecure_plain_http = true).
    pub url: String,
    /// Bearer token sent as `Authorization: Bearer …`. Prefer token_file.
    #[serde(default)]
    pub token: Option<String>,
    /// A file holding the bearer token (trailing whitespace ignored).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Time limit of one attempt (default "10s").
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// Attempts before giving up on one notification (default 8).
    #[serde(default)]
    pub max_tries: Option<u32>,
    /// First retry delay (default "1s"); doubles per try, full jitter.
    #[serde(default)]
    pub backoff_initial: Option<HumanDuration>,
    /// Longest retry delay (default "60s").
    #[serde(default)]
    pub backoff_max: Option<HumanDuration>,
    /// PEM CA certificates to trust for an https URL (default: the
    /// system's roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Allow plain http:// to hosts other than this machine (the token
    /// and alert cross the network in clear).
    #[serde(default)]
    pub insecure_plain_http: bool,
    /// Send only alerts of at least this severity (default "info": all).
    #[serde(default)]
    pub min_severity: Option<Severity>,
}

/// Where a webhook's token comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookToken {
    /// No token.
    None,
    /// Given in the config.
    Inline(String),
    /// Read from this file when the alerts start.
    File(PathBuf),
}

/// A validated webhook.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Name.
    pub name: String,
    /// URL.
    pub url: String,
    /// Bearer token.
    pub token: WebhookToken,
    /// Per-attempt time limit.
    pub timeout: Duration,
    /// Attempts per notification.
    pub max_tries: u32,
    /// First retry delay.
    pub backoff_initial: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// CA certificates to trust.
    pub ca_file: Option<PathBuf>,
    /// Lowest severity sent.
    pub min_severity: Severity,
}

/// Validates one webhook; `None` when it is wrong.
pub fn validate(w: RawWebhook, base: &Path, key: &str, err: Err<'_>) -> Option<WebhookConfig> {
    let mut bad = false;
    let mut fail = |f: &str, m: String| {
        bad = true;
        err(&format!("{key}.{f}"), m);
    };
    if w.name.is_empty() {
        fail("name", "must not be empty".into());
    }
    match reqwest::Url::parse(&w.url) {
        Err(e) => fail("url", format!("{:?} is not a URL: {e}", w.url)),
        Ok(u) => {
            let local = matches!(
                u.host_str(),
                Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
            );
            match u.scheme() {
                "https" => {}
                "http" if local || w.insecure_plain_http => {}
                "http" => fail(
                    "url",
                    "http:// only to this machine; use https://, or set insecure_plain_http = true"
                        .into(),
                ),
                s => fail("url", format!("scheme {s:?}: use https:// (or http://)")),
            }
            if u.host_str().is_none() {
                fail("url", "has no host".into());
            }
        }
    }
    let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
    let token = match (w.token, w.token_file) {
        (None, None) => WebhookToken::None,
        (Some(t), None) if !t.is_empty() => WebhookToken::Inline(t),
        (Some(_), None) => {
            fail("token", "must not be empty".into());
            WebhookToken::None
        }
        (None, Some(f)) => WebhookToken::File(rel(f)),
        (Some(_), Some(_)) => {
            fail("token", "set at most one of token and token_file".into());
            WebhookToken::None
        }
    };
    let timeout = w.timeout.map_or(Duration::from_secs(10), |d| d.0);
    if timeout < Duration::from_millis(100) || timeout > Duration::from_secs(300) {
        fail("timeout", "must be between 100ms and 5m".into());
    }
    let max_tries = w.max_tries.unwrap_or(8);
    if !(1..=100).contains(&max_tries) {
        fail("max_tries", "must be between 1 and 100".into());
    }
    let backoff_initial = w.backoff_initial.map_or(Duration::from_secs(1), |d| d.0);
    let backoff_max = w.backoff_max.map_or(Duration::from_secs(60), |d| d.0);
    if backoff_initial.is_zero() || backoff_initial > backoff_max {
        fail(
            "backoff_initial",
            "must be more than 0 and at most backoff_max".into(),
        );
    }
    if backoff_max > Duration::from_secs(3600) {
        fail("backoff_max", "must be at most 1h".into());
    }
    if bad {
        return None;
    }
    Some(WebhookConfig {
        name: w.name,
        url: w.url,
        token,
        timeout,
        max_tries,
        backoff_initial,
        backoff_max,
        ca_file: w.ca_file.map(rel),
        min_severity: w.min_severity.unwrap_or(Severity::Info),
    })
}
