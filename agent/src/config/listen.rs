//! What the network inputs' settings share: listen addresses and `tls`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;

use crate::input::net::ServerTls;

/// `tls = { … }` of a listening input (the same keys as the collector's
/// `[tls]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServerTls {
    /// PEM certificate chain the input presents (leaf first).
    pub cert_file: PathBuf,
    /// PEM private key of that certificate (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA certificates that sign client certificates. Setting it turns on
    /// mutual TLS: a client without a certificate signed by one of them is
    /// refused during the handshake.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

impl RawServerTls {
    /// The runtime form. The files are read when the input starts.
    pub fn validate(self, err: &mut dyn FnMut(&str, String)) -> ServerTls {
        for (key, p) in [
            ("tls.cert_file", &self.cert_file),
            ("tls.key_file", &self.key_file),
        ] {
            if p.as_os_str().is_empty() {
                err(key, "must not be empty".into());
            }
        }
        ServerTls {
            cert_file: self.cert_file,
            key_file: self.key_file,
            client_ca_file: self.client_ca_file,
        }
    }
}

/// Parses a listen address: `"host:port"` (`"0.0.0.0:514"` for every
/// interface, `"[::1]:514"`), or a bare port (`"514"`), which listens on
/// 127.0.0.1 only.
pub fn parse_address(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    s.parse().map_err(|_| {
        format!("{s:?} is not an address: use \"127.0.0.1:PORT\", \"0.0.0.0:PORT\" or a port")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_listens_on_loopback_only() {
        assert_eq!(
            parse_address("514").unwrap(),
            "127.0.0.1:514".parse().unwrap()
        );
        assert_eq!(
            parse_address("0.0.0.0:6514").unwrap(),
            "0.0.0.0:6514".parse().unwrap()
        );
        assert_eq!(
            parse_address("[::1]:80").unwrap(),
            "[::1]:80".parse().unwrap()
        );
        let e = parse_address("localhost:514").unwrap_err();
        assert!(e.contains("is not an address"), "{e}");
    }
}
