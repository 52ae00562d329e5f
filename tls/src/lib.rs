//! TLS configuration for both ends of the agent-to-collector connection,
//! on rustls with the `ring` provider (no OpenSSL).
//!
//! * [`server_config`]: the collector's certificate, and optionally a CA
//!   for client certificates (mutual TLS: a client without a valid
//!   certificate is refused in the handshake).
//! * [`client_config`]: the CAs an agent trusts (a CA file, or the
//!   bundled Mozilla roots are *not* used: an audit pipeline should pin its
//!   own CA), and optionally the agent's certificate for mutual TLS.
//!   Hostname verification is always on: the name in the URL must be in the
//!   collector's certificate.
//!
//! Errors name the file and say what is wrong with it.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A TLS setup problem, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TlsError {
    /// The file involved (empty when none).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn err(path: &Path, message: impl std::fmt::Display) -> TlsError {
    TlsError {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Makes `ring` the process's default rustls provider, for clients built
/// without a preconfigured TLS setup (plain-http endpoints still need one).
/// Harmless when a default is already installed.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate in a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(err(path, "holds no CERTIFICATE block"));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| err(path, format!("holds no usable private key: {e}")))
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for c in load_certs(path)? {
        store
            .add(c)
            .map_err(|e| err(path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(store)
}

/// The collector's TLS configuration. With `client_ca`, clients must
/// present a certificate signed by it.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = load_certs(cert)?;
    let key_der = load_key(key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| err(cert, e))?;
    let builder = match client_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                    .build()
                    .map_err(|e| err(ca, format!("cannot verify clients with it: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key_der).map_err(|e| {
        err(
            key,
            format!("does not match the certificate in {}: {e}", cert.display()),
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// An agent's TLS configuration: trust the CAs in `ca` and, for mutual
/// TLS, present `client` = (certificate chain, key).
pub fn client_config(ca: &Path, client: Option<(&Path, &Path)>) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| err(ca, e))?
        .with_root_certificates(roots(ca)?);
    let config = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(|e| err(key, format!("does not match {}: {e}", cert.display())))?,
        None => builder.with_no_client_auth(),
    };
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_checked_and_named_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        std::fs::write(&cert, ca.cert.pem()).unwrap();
        std::fs::write(&key, ca.signing_key.serialize_pem()).unwrap();
        server_config(&cert, &key, None).unwrap();
        server_config(&cert, &key, Some(&cert)).unwrap();
        client_config(&cert, Some((&cert, &key))).unwrap();

        let e = server_config(&key, &key, None).unwrap_err().to_string();
        assert!(e.contains("k.pem: holds no CERTIFICATE block"), "{e}");
        let e = client_config(&dir.path().join("missing.pem"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.pem: cannot read"), "{e}");
        let other = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap();
        std::fs::write(&key, other.signing_key.serialize_pem()).unwrap();
        let e = server_config(&cert, &key, None).unwrap_err().to_string();
        assert!(e.contains("does not match the certificate"), "{e}");
    }
}
