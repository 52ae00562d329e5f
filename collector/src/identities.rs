//! mTLS identities mapped to roles.
//!
//! With `[tls] client_ca_file` set, every client presents a certificate.
//! `[[tls.identities]]` may map a certificate, by its subject common name,
//! one of its DNS or URI subject alternative names, or its SHA-256
//! fingerprint, to a name and a role (reader, auditor or admin). A request
//! without an `Authorization` header is then identified by its
//! certificate; a request with one is identified by the token, so a
//! certificate never widens what a token may do. Ingest always needs a
//! token, because a token binds an agent to its agent ids.

use auditship_core::hex;
use sha2::{Digest, Sha256};

use crate::access::ClientCert;
use crate::config::Role;

/// One mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertIdentity {
    /// The name recorded in access records.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// What the certificate must show.
    pub matcher: CertMatch,
}

/// How a certificate is recognised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertMatch {
    /// Subject common name equals.
    CommonName(String),
    /// A DNS or URI subject alternative name equals.
    San(String),
    /// SHA-256 of the DER certificate, lowercase hex.
    Sha256(String),
}

/// Every mapping, in config order (the first that matches wins).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertIdentities(pub Vec<CertIdentity>);

impl CertIdentities {
    /// The name and role of a client certificate, if one is mapped.
    pub fn resolve(&self, cert: &ClientCert) -> Option<(String, Role)> {
        self.0
            .iter()
            .find(|i| match &i.matcher {
                CertMatch::CommonName(cn) => cert.common_name.as_deref() == Some(cn.as_str()),
                CertMatch::San(san) => cert.sans.iter().any(|s| s == san),
                CertMatch::Sha256(h) => &cert.sha256 == h,
            })
            .map(|i| (i.name.clone(), i.role))
    }
}

/// Reads the identity of a DER certificate (the TLS client's leaf). A
/// certificate the handshake accepted but that does not parse here has
/// only its fingerprint.
pub fn client_cert(der: &[u8]) -> ClientCert {
    let sha256 = hex::encode(&Sha256::digest(der));
    let mut out = ClientCert {
        common_name: None,
        sans: Vec::new(),
        sha256,
    };
    if let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) {
        out.common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string);
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for n in &san.value.general_names {
                match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => {
                        out.sans.push(d.to_string())
                    }
                    x509_parser::extensions::GeneralName::URI(u) => out.sans.push(u.to_string()),
                    _ => {}
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_is_recognised_by_common_name_san_or_fingerprint() {
        let mut params = rcgen::CertificateParams::new(vec!["ops.example".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let c = client_cert(cert.der());
        assert_eq!(c.common_name.as_deref(), Some("alice"));
        assert_eq!(c.sans, vec!["ops.example".to_string()]);
        let ids = |m: CertMatch| {
            CertIdentities(vec![CertIdentity {
                name: "n".into(),
                role: Role::Auditor,
                matcher: m,
            }])
        };
        assert_eq!(
            ids(CertMatch::CommonName("alice".into())).resolve(&c),
            Some(("n".into(), Role::Auditor))
        );
        assert!(ids(CertMatch::San("ops.example".into()))
            .resolve(&c)
            .is_some());
        assert!(ids(CertMatch::Sha256(c.sha256.clone()))
            .resolve(&c)
            .is_some());
        assert!(ids(CertMatch::CommonName("bob".into()))
            .resolve(&c)
            .is_none());
        assert!(ids(CertMatch::San("alice".into())).resolve(&c).is_none());
    }
}
