//! What the commands that talk to a collector share: where it is, how to
//! authenticate, and the event filters of its query API.

use std::path::PathBuf;

use anyhow::{bail, Context};

/// A collector to talk to.
#[derive(clap::Args, Debug)]
pub struct Remote {
    /// Collector base URL, e.g. https://collector:8443.
    #[arg(long, env = "AUDITSHIP_URL")]
    pub url: String,
    /// Reader token.
    #[arg(long, env = "AUDITSHIP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the reader token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// CA certificate(s) of the collector (PEM), for https.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
}

impl Remote {
    /// The token, from --token or --token-file.
    pub fn token(&self) -> anyhow::Result<String> {
        match (&self.token, &self.token_file) {
            (Some(t), None) => Ok(t.clone()),
            (None, Some(f)) => Ok(std::fs::read_to_string(f)
                .with_context(|| format!("reading {}", f.display()))?
                .trim_end()
                .to_string()),
            _ => bail!("give exactly one of --token and --token-file"),
        }
    }

    /// An HTTP client that trusts the collector's CA.
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        auditship_tls::install_default_provider();
        let mut builder = reqwest::Client::builder();
        if let Some(ca) = &self.ca_file {
            builder = builder.tls_backend_preconfigured(auditship_tls::client_config(ca, None)?);
        } else if self.url.starts_with("https://") {
            bail!("--ca-file is required for an https:// collector");
        }
        Ok(builder.build()?)
    }

    /// The URL of `path` on the collector.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.url.trim_end_matches('/'))
    }
}

/// Event filters (see the collector's query API for their meaning).
#[derive(clap::Args, Debug)]
pub struct Filters {
    /// At or after: RFC 3339, or an age such as 15m, 1h, 7d.
    #[arg(long)]
    pub since: Option<String>,
    /// Before: RFC 3339, or an age.
    #[arg(long)]
    pub until: Option<String>,
    /// Host equals.
    #[arg(long)]
    pub host: Option<String>,
    /// Actor (user) equals.
    #[arg(long)]
    pub actor: Option<String>,
    /// Action equals (ssh_login, sudo_command, http_request, ...).
    #[arg(long)]
    pub action: Option<String>,
    /// Category equals (authentication, session, privilege, account, web, ...).
    #[arg(long)]
    pub category: Option<String>,
    /// success, failure or unknown.
    #[arg(long)]
    pub outcome: Option<String>,
    /// Source IP address or CIDR block.
    #[arg(long)]
    pub src: Option<String>,
    /// Text the raw line contains (case-sensitive).
    #[arg(long, short = 'q')]
    pub text: Option<String>,
}

impl Filters {
    /// The query parameters for the filters that are set.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        [
            ("since", &self.since),
            ("until", &self.until),
            ("host", &self.host),
            ("actor", &self.actor),
            ("action", &self.action),
            ("category", &self.category),
            ("outcome", &self.outcome),
            ("src", &self.src),
            ("q", &self.text),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v.clone())))
        .collect()
    }
}
