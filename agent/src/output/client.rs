//! The HTTP client of the collector output (and of `auditship deadletter
//! replay`): reqwest on rustls, trusting the output's CA and presenting its
//! client certificate.

use std::time::Duration;

use super::CollectorOutputConfig;

/// An error and its sources, `: `-separated.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// The HTTP client for an output's settings.
pub fn build_client(cfg: &CollectorOutputConfig) -> Result<reqwest::Client, String> {
    auditship_tls::install_default_provider();
    let mut b = reqwest::Client::builder()
        .timeout(cfg.timeout)
        .connect_timeout(cfg.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("auditship/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = &cfg.ca_file {
        let client = cfg
            .client_cert
            .as_ref()
            .map(|(c, k)| (c.as_path(), k.as_path()));
        let tls = auditship_tls::client_config(ca, client).map_err(|e| e.to_string())?;
        b = b.tls_backend_preconfigured(tls);
    }
    b.build().map_err(|e| error_chain(&e))
}
