//! What the network inputs share: listening sockets, TLS, counters and
//! rate-limited warnings.
//!
//! TLS is set up exactly as the collector sets it up: the certificate, key
//! and optional client CA are loaded by [`auditship_tls::server_config`]
//! (rustls with `ring`, mutual TLS when a client CA is given: a client
//! without a certificate signed by it is refused in the handshake), and a
//! handshake that does not finish within [`HANDSHAKE_TIMEOUT`] is dropped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::InputError;

/// How long a TLS handshake may take (the collector's limit too).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS settings of a listening input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTls {
    /// PEM certificate chain the input presents (leaf first).
    pub cert_file: PathBuf,
    /// PEM private key of that certificate.
    pub key_file: PathBuf,
    /// PEM CA certificates that sign client certificates: mutual TLS.
    pub client_ca_file: Option<PathBuf>,
}

impl ServerTls {
    /// Loads the files into an acceptor. `http` keeps the `http/1.1` ALPN
    /// protocol the collector announces; syslog over TLS (RFC 5425) has none.
    pub fn acceptor(&self, input: &str, http: bool) -> Result<TlsAcceptor, InputError> {
        let config = auditship_tls::server_config(
            &self.cert_file,
            &self.key_file,
            self.client_ca_file.as_deref(),
        )
        .map_err(|e| InputError::Setup {
            input: input.to_string(),
            message: format!("TLS: {e}"),
        })?;
        let config = if http {
            config
        } else {
            let mut c = (*config).clone();
            c.alpn_protocols.clear();
            Arc::new(c)
        };
        Ok(TlsAcceptor::from(config))
    }
}

/// Completes a TLS handshake within [`HANDSHAKE_TIMEOUT`]; `None` (logged
/// at info: it is the peer's failure) if it fails or times out.
pub async fn handshake<S>(
    acceptor: &TlsAcceptor,
    stream: S,
    peer: SocketAddr,
) -> Option<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "TLS handshake refused");
            None
        }
        Err(_) => {
            tracing::info!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// Binds a TCP listener (inside a tokio runtime).
pub fn bind_tcp(input: &str, address: SocketAddr) -> Result<tokio::net::TcpListener, InputError> {
    let err = |source| InputError::Listen {
        input: input.to_string(),
        address,
        source,
    };
    let l = std::net::TcpListener::bind(address).map_err(err)?;
    l.set_nonblocking(true).map_err(err)?;
    tokio::net::TcpListener::from_std(l).map_err(err)
}

/// Binds a UDP socket (inside a tokio runtime).
pub fn bind_udp(input: &str, address: SocketAddr) -> Result<tokio::net::UdpSocket, InputError> {
    let err = |source| InputError::Listen {
        input: input.to_string(),
        address,
        source,
    };
    let s = std::net::UdpSocket::bind(address).map_err(err)?;
    s.set_nonblocking(true).map_err(err)?;
    tokio::net::UdpSocket::from_std(s).map_err(err)
}

/// Counts occurrences of something worth a warning and says when to log
/// one: at the first, then at most once per `every`, with how many
/// happened since the last log line.
pub struct RateLimited {
    every: Duration,
    last: Mutex<Option<Instant>>,
    since: AtomicU64,
}

impl RateLimited {
    /// At most one log line per `every`.
    pub fn new(every: Duration) -> Self {
        RateLimited {
            every,
            last: Mutex::new(None),
            since: AtomicU64::new(0),
        }
    }

    /// Records one occurrence; `Some(n)` when a warning is due, `n` being
    /// the occurrences it reports (this one included).
    pub fn hit(&self) -> Option<u64> {
        self.since.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last.lock().expect("rate limit lock");
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < self.every) {
            return None;
        }
        *last = Some(now);
        Some(self.since.swap(0, Ordering::Relaxed))
    }
}

/// Counters the network inputs' socket tasks keep (lock-free; read into
/// [`InputStats`](super::InputStats) when the input is asked for its stats).
#[derive(Default)]
pub(crate) struct NetCounters {
    pub requests: AtomicU64,
    pub connections: AtomicU64,
    pub rejected: AtomicU64,
    pub invalid: AtomicU64,
    pub unauthorized: AtomicU64,
    pub dropped: AtomicU64,
}

impl NetCounters {
    /// `base` (the ingest thread's own counts) with these counters.
    pub fn stats(&self, base: super::InputStats) -> super::InputStats {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        super::InputStats {
            requests: n(&self.requests),
            connections: n(&self.connections),
            rejected: n(&self.rejected),
            invalid: n(&self.invalid),
            unauthorized: n(&self.unauthorized),
            dropped: n(&self.dropped),
            ..base
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_warnings_report_what_they_held_back() {
        let r = RateLimited::new(Duration::from_secs(3600));
        assert_eq!(r.hit(), Some(1));
        assert_eq!(r.hit(), None);
        assert_eq!(r.hit(), None);
        let r2 = RateLimited::new(Duration::ZERO);
        assert_eq!(r2.hit(), Some(1));
        assert_eq!(r2.hit(), Some(1));
        // The held-back ones are reported with the next line that is due.
        *r.last.lock().unwrap() = Some(Instant::now() - Duration::from_secs(7200));
        assert_eq!(r.hit(), Some(3));
    }

    #[tokio::test]
    async fn a_busy_address_is_an_error_naming_input_and_address() {
        let first = bind_tcp("a", "127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        let e = bind_tcp("b", addr).unwrap_err().to_string();
        assert!(
            e.contains("input \"b\": cannot listen on 127.0.0.1:"),
            "{e}"
        );
        let u = bind_udp("u", "127.0.0.1:0".parse().unwrap()).unwrap();
        let e = bind_udp("v", u.local_addr().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("input \"v\""), "{e}");
    }
}
