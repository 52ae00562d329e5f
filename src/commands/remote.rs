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
    /// Bearer token (its role must allow the command: reader or auditor
    /// for queries, auditor for export, admin for tokens).
    #[arg(long, env = "AUDITSHIP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// CA certificate(s) of the collector (PEM), for https.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mTLS; with no token, the collector
    /// identifies the caller by it (`[[tls.identities]]`).
    #[arg(long, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// Private key of --client-cert (PEM).
    #[arg(long, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

impl Remote {
    /// The token, from --token or --token-file; `None` when a client
    /// certificate identifies the caller instead.
    pub fn token(&self) -> anyhow::Result<Option<String>> {
        match (&self.token, &self.token_file) {
            (Some(t), None) => Ok(Some(t.clone())),
            (None, Some(f)) => Ok(Some(
                std::fs::read_to_string(f)
                    .with_context(|| format!("reading {}", f.display()))?
                    .trim_end()
                    .to_string(),
            )),
            (None, None) if self.client_cert.is_some() => Ok(None),
            _ => bail!("give exactly one of --token and --token-file (or --client-cert)"),
        }
    }

    /// `request` with the caller's credentials.
    pub fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        token: &Option<String>,
    ) -> reqwest::RequestBuilder {
        match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        }
    }

    /// An HTTP client that trusts the collector's CA.
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        auditship_tls::install_default_provider();
        let mut builder = reqwest::Client::builder();
        if let Some(ca) = &self.ca_file {
            let client = self.client_cert.as_deref().zip(self.client_key.as_deref());
            builder = builder.tls_backend_preconfigured(auditship_tls::client_config(ca, client)?);
        } else if self.url.starts_with("https://") {
            bail!("--ca-file is required for an https:// collector");
        }
        Ok(builder.build()?)
    }

    /// Sends one request (`body` as JSON when given) with the caller's
    /// credentials and returns the answer's JSON; a non-2xx answer is an
    /// error carrying the collector's message.
    pub fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let token = self.token()?;
        let client = self.client()?;
        let url = self.endpoint(path);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (status, bytes) = rt
            .block_on(async {
                let mut req = self.authorize(client.request(method, &url), &token);
                if let Some(b) = body {
                    req = req
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(serde_json::to_vec(b).unwrap_or_default());
                }
                let resp = req.send().await?;
                Ok::<_, reqwest::Error>((resp.status(), resp.bytes().await?))
            })
            .with_context(|| format!("calling {url}"))?;
        if !status.is_success() {
            let msg = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
            bail!("{url}: {status}: {msg}");
        }
        serde_json::from_slice(&bytes).with_context(|| format!("{url}: the answer is not JSON"))
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
