//! `[[inputs]]` with `type = "syslog"`: the raw settings and their
//! validation into [`SyslogConfig`] and the input's parser options.

use std::time::Duration;

use auditship_plugins::{Format, Parser, ParserOptions};
use serde::Deserialize;
use tomlconf::{ByteSize, HumanDuration};

use super::listen::{parse_address, RawServerTls};
use crate::input::syslog::SyslogConfig;

/// `[[inputs]]` with `type = "syslog"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSyslogInput {
    /// Unique name; events get `source = "<name>:<sender IP>"`.
    pub name: String,
    /// Receive syslog over UDP here: "host:port", or a port alone for
    /// 127.0.0.1; "0.0.0.0:514" receives on every interface. At least one of
    /// udp_address and tcp_address is required.
    #[serde(default)]
    pub udp_address: Option<String>,
    /// Accept syslog over TCP here (octet counting or LF framing, detected
    /// per message); with `tls`, over TLS (RFC 5425).
    #[serde(default)]
    pub tcp_address: Option<String>,
    /// TLS on tcp_address: certificate, key and optionally a client CA
    /// (mutual TLS).
    #[serde(default)]
    pub tls: Option<RawServerTls>,
    /// Longest message kept (default "64KiB"); longer ones are truncated and flagged.
    #[serde(default)]
    pub max_message_bytes: Option<ByteSize>,
    /// Most TCP connections open at once (default 256); more are refused.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Close a TCP connection that sends nothing for this long (default "10m").
    #[serde(default)]
    pub idle_timeout: Option<HumanDuration>,
    /// Zone of RFC 3164 timestamps, which carry none: "local" (default),
    /// "UTC", "+HH:MM" or an IANA name; the sender's zone, not the agent's.
    #[serde(default)]
    pub timezone: Option<String>,
}

impl RawSyslogInput {
    /// Checks the settings; problems go to `err` as (key, message).
    pub fn validate(self, err: &mut dyn FnMut(&str, String)) -> (SyslogConfig, ParserOptions) {
        let mut c = SyslogConfig::new(&self.name);
        let mut address = |key: &str, v: Option<String>| {
            v.and_then(|a| parse_address(&a).map_err(|e| err(key, e)).ok())
        };
        c.udp_address = address("udp_address", self.udp_address.clone());
        c.tcp_address = address("tcp_address", self.tcp_address.clone());
        if self.udp_address.is_none() && self.tcp_address.is_none() {
            err("udp_address", "set udp_address, tcp_address or both".into());
        }
        if self.tls.is_some() && self.tcp_address.is_none() {
            err("tls", "needs tcp_address (TLS runs over TCP)".into());
        }
        c.tls = self.tls.map(|t| t.validate(err));
        c.max_message_bytes = self
            .max_message_bytes
            .map_or(c.max_message_bytes, |b| b.0 as usize);
        if !(480..=16 << 20).contains(&c.max_message_bytes) {
            err(
                "max_message_bytes",
                format!(
                    "{} must be between 480 bytes (RFC 5424's minimum) and 16MiB",
                    c.max_message_bytes
                ),
            );
        }
        c.max_connections = self.max_connections.unwrap_or(c.max_connections);
        if !(1..=65536).contains(&c.max_connections) {
            err(
                "max_connections",
                format!("{} must be between 1 and 65536", c.max_connections),
            );
        }
        c.idle_timeout = self.idle_timeout.map_or(c.idle_timeout, |d| d.0);
        if c.idle_timeout < Duration::from_secs(1) {
            err("idle_timeout", "must be at least \"1s\"".into());
        }
        let parser = ParserOptions {
            format: Format::Auth,
            timezone: self.timezone,
            ..ParserOptions::default()
        };
        if let Err(e) = Parser::new(&parser) {
            err("timezone", e.to_string());
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
    fn syslog_inputs_need_an_address_and_their_errors_are_located() {
        let ok = parse(
            "state_dir = \"/tmp/x\"\n[[inputs]]\ntype = \"syslog\"\nname = \"sys\"\n\
             udp_address = \"514\"\ntcp_address = \"0.0.0.0:6514\"\n\
             tls = { cert_file = \"c.pem\", key_file = \"k.pem\" }\n\
             [[outputs]]\ntype = \"stdout\"\n",
            Path::new("agent.toml"),
        )
        .unwrap();
        let InputKind::Syslog(s) = &ok.inputs[0].kind else {
            panic!("not a syslog input");
        };
        assert_eq!(s.udp_address, Some("127.0.0.1:514".parse().unwrap()));
        assert_eq!(s.tcp_address, Some("0.0.0.0:6514".parse().unwrap()));
        assert!(s.tls.is_some());
        assert_eq!(s.max_connections, 256);
        assert_eq!(ok.inputs[0].parser.format, Format::Auth);

        let src = r#"state_dir = "/tmp/x"

[[inputs]]
type = "syslog"
name = "a"
tls = { cert_file = "c.pem", key_file = "k.pem" }
max_message_bytes = "100"
max_connections = 0
timezone = "Mars/Olympus"

[[inputs]]
type = "syslog"
name = "b"
tcp_address = "nowhere"

[[outputs]]
type = "stdout"
"#;
        let e = parse(src, Path::new("agent.toml")).unwrap_err();
        crate::config::tests::assert_located(
            &e,
            &[
                ("inputs[0].udp_address", Some(3)),
                ("inputs[0].tls", Some(6)),
                ("inputs[0].max_message_bytes", Some(7)),
                ("inputs[0].max_connections", Some(8)),
                ("inputs[0].timezone", Some(9)),
                ("inputs[1].tcp_address", Some(14)),
            ],
        );
    }
}
