//! `[[inputs]]` with `type = "http"`: the raw settings and their
//! validation into [`HttpConfig`] and the input's parser options.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use auditship_plugins::{Format, Parser, ParserOptions};
use serde::Deserialize;
use tomlconf::{ByteSize, HumanDuration};

use super::listen::{parse_address, RawServerTls};
use crate::input::http::HttpConfig;
use crate::output::TokenSource;

/// The address an HTTP input listens on without `address`.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8780";

/// `[[inputs]]` with `type = "http"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpInput {
    /// Unique name; events get `source = "<name>:<client IP>"`.
    pub name: String,
    /// Address to listen on (default "127.0.0.1:8780"): "host:port", or a
    /// port alone for 127.0.0.1; "0.0.0.0:PORT" listens on every interface.
    #[serde(default)]
    pub address: Option<String>,
    /// HTTPS: certificate, key and optionally a client CA (mutual TLS).
    #[serde(default)]
    pub tls: Option<RawServerTls>,
    /// Bearer token clients must send (at least 16 characters). Prefer
    /// token_file. Without either, any client that can connect may post.
    #[serde(default)]
    pub token: Option<String>,
    /// File holding the bearer token, read at start.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// JSON field path -> schema field, as for format = "json" files.
    #[serde(default)]
    pub json_mapping: BTreeMap<String, String>,
    /// Zone of timestamps written without one: "local" (default), "UTC", "+HH:MM" or an IANA name.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Largest request body as sent, compressed or not (default "4MiB"); larger gets 413.
    #[serde(default)]
    pub max_body_bytes: Option<ByteSize>,
    /// Largest body after decompression, zstd or gzip (default "16MiB"); larger gets 413.
    #[serde(default)]
    pub max_decompressed_bytes: Option<ByteSize>,
    /// Largest single event as JSON text (default "64KiB"); a larger one refuses the request with 400.
    #[serde(default)]
    pub max_event_bytes: Option<ByteSize>,
    /// How long a request waits for its events to be durable before it is
    /// answered 503 (default "10s").
    #[serde(default)]
    pub ack_timeout: Option<HumanDuration>,
    /// The Retry-After of a 503 (default "5s").
    #[serde(default)]
    pub retry_after: Option<HumanDuration>,
}

impl RawHttpInput {
    /// Checks the settings; problems go to `err` as (key, message).
    pub fn validate(self, err: &mut dyn FnMut(&str, String)) -> (HttpConfig, ParserOptions) {
        let address = parse_address(self.address.as_deref().unwrap_or(DEFAULT_ADDRESS))
            .unwrap_or_else(|e| {
                err("address", e);
                DEFAULT_ADDRESS.parse().expect("default address")
            });
        let mut c = HttpConfig::new(&self.name, address);
        c.tls = self.tls.map(|t| t.validate(err));
        c.token = match (self.token, self.token_file) {
            (None, None) => None,
            (Some(t), None) => {
                if t.trim().len() < 16 {
                    err("token", "must be at least 16 characters".into());
                }
                Some(TokenSource::Inline(t.trim().to_string()))
            }
            (None, Some(f)) => Some(TokenSource::File(f)),
            (Some(_), Some(_)) => {
                err("token", "set at most one of token and token_file".into());
                None
            }
        };
        let size = |v: Option<ByteSize>, default: usize| v.map_or(default, |b| b.0 as usize);
        c.max_body_bytes = size(self.max_body_bytes, c.max_body_bytes);
        c.max_decompressed_bytes = size(self.max_decompressed_bytes, c.max_decompressed_bytes);
        c.max_event_bytes = size(self.max_event_bytes, c.max_event_bytes);
        if !(1024..=1 << 30).contains(&c.max_body_bytes) {
            err(
                "max_body_bytes",
                format!("{} must be between 1KiB and 1GiB", c.max_body_bytes),
            );
        }
        if c.max_decompressed_bytes < c.max_body_bytes || c.max_decompressed_bytes > 1 << 30 {
            err(
                "max_decompressed_bytes",
                format!(
                    "{} must be at least max_body_bytes ({}) and at most 1GiB",
                    c.max_decompressed_bytes, c.max_body_bytes
                ),
            );
        }
        if !(256..=16 << 20).contains(&c.max_event_bytes) {
            err(
                "max_event_bytes",
                format!("{} must be between 256 bytes and 16MiB", c.max_event_bytes),
            );
        }
        let d = |v: Option<HumanDuration>, default: Duration| v.map_or(default, |d| d.0);
        c.ack_timeout = d(self.ack_timeout, c.ack_timeout);
        c.retry_after = d(self.retry_after, c.retry_after);
        if c.ack_timeout < Duration::from_millis(100) {
            err("ack_timeout", "must be at least \"100ms\"".into());
        }
        if c.retry_after < Duration::from_secs(1) {
            err(
                "retry_after",
                "must be at least \"1s\" (Retry-After counts seconds)".into(),
            );
        }
        let parser = ParserOptions {
            format: Format::Json,
            timezone: self.timezone,
            json_mapping: self.json_mapping,
            ..ParserOptions::default()
        };
        if let Err(e) = Parser::new(&parser) {
            let key = match e {
                auditship_plugins::ParserError::TimeZone(_) => "timezone",
                _ => "json_mapping",
            };
            err(key, e.to_string());
        }
        (c, parser)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{parse, InputKind};

    #[test]
    fn http_inputs_get_defaults_and_their_errors_are_located() {
        let ok = parse(
            "state_dir = \"/tmp/x\"\n[[inputs]]\ntype = \"http\"\nname = \"app\"\n\
             token_file = \"/etc/t\"\njson_mapping = { \"who\" = \"actor.user\" }\n\
             [[outputs]]\ntype = \"stdout\"\n",
            Path::new("agent.toml"),
        )
        .unwrap();
        let InputKind::Http(h) = &ok.inputs[0].kind else {
            panic!("not an http input");
        };
        assert_eq!(h.address, DEFAULT_ADDRESS.parse().unwrap());
        assert_eq!(h.token, Some(TokenSource::File("/etc/t".into())));
        assert_eq!((h.max_body_bytes, h.max_event_bytes), (4 << 20, 64 << 10));
        assert_eq!(ok.inputs[0].parser.format, Format::Json);
        assert_eq!(ok.inputs[0].parser.json_mapping["who"], "actor.user");

        let src = r#"state_dir = "/tmp/x"

[[inputs]]
type = "http"
name = "app"
address = "everywhere:80"
token = "short"
json_mapping = { "x" = "no.such.field" }
max_event_bytes = "100"
retry_after = "10ms"
tls = { cert_file = "", key_file = "k.pem" }

[[outputs]]
type = "stdout"
"#;
        let e = parse(src, Path::new("agent.toml")).unwrap_err();
        crate::config::tests::assert_located(
            &e,
            &[
                ("inputs[0].address", Some(6)),
                ("inputs[0].token", Some(7)),
                ("inputs[0].json_mapping", Some(8)),
                ("inputs[0].max_event_bytes", Some(9)),
                ("inputs[0].retry_after", Some(10)),
                ("inputs[0].tls.cert_file", Some(11)),
            ],
        );
        let unknown = parse(
            "state_dir = \"/tmp/x\"\n[[inputs]]\ntype = \"http\"\nname = \"a\"\nport = 80\n[[outputs]]\ntype = \"stdout\"\n",
            Path::new("agent.toml"),
        )
        .unwrap_err();
        assert!(
            unknown.to_string().contains("unknown field `port`"),
            "{unknown}"
        );
    }
}
