//! Telemetry for both roles: the Prometheus text exposition format and a
//! small HTTP server for `/metrics` and `/health`.
//!
//! Each role implements [`Source`]: it renders its counters into an
//! [`Exposition`] when scraped (nothing is kept twice: the counters are the
//! atomics the role already maintains) and says whether it is live and
//! ready. [`serve`] runs the endpoints until the shutdown token fires:
//!
//! ```text
//! GET /metrics        text/plain; version=0.0.4   every family, HELP and TYPE first
//! GET /health         200 or 503, JSON {"live":…,"ready":…,"status":"…"}
//! GET /health/live    200 while the process answers and is not wedged; else 503
//! GET /health/ready   200 when it does its job (started, not stopping,
//!                     not refusing work); else 503
//! ```
//!
//! The listener is meant for localhost or a scrape network: it has no
//! authentication, and it exposes counts, never event contents.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

/// A metrics page being written, in the Prometheus text format 0.0.4.
#[derive(Default)]
pub struct Exposition {
    out: String,
    /// The family the next samples belong to.
    family: String,
}

impl Exposition {
    /// An empty page.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a counter family. By convention `name` ends in `_total`.
    pub fn counter(&mut self, name: &str, help: &str) -> &mut Self {
        self.header(name, "counter", help)
    }

    /// Starts a gauge family.
    pub fn gauge(&mut self, name: &str, help: &str) -> &mut Self {
        self.header(name, "gauge", help)
    }

    fn header(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        debug_assert!(valid_name(name), "metric name {name:?}");
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self.family.clear();
        self.family.push_str(name);
        self
    }

    /// A sample of the current family.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(&self.family);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                debug_assert!(valid_name(k), "label name {k:?}");
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.out.push_str("\\\\"),
                        '"' => self.out.push_str("\\\""),
                        '\n' => self.out.push_str("\\n"),
                        c => self.out.push(c),
                    }
                }
                self.out.push('"');
            }
            self.out.push('}');
        }
        if value.is_nan() {
            self.out.push_str(" NaN\n");
        } else if value.is_infinite() {
            self.out
                .push_str(if value > 0.0 { " +Inf\n" } else { " -Inf\n" });
        } else {
            let _ = writeln!(self.out, " {value}");
        }
        self
    }

    /// A sample without labels.
    pub fn value(&mut self, value: f64) -> &mut Self {
        self.sample(&[], value)
    }

    /// The page.
    pub fn finish(self) -> String {
        self.out
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Whether a role is live and ready, and why not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// The process works (its threads make progress).
    pub live: bool,
    /// It does its job now.
    pub ready: bool,
    /// A short human explanation ("ok", "starting", "store full"…).
    pub status: String,
}

/// What a role exposes.
pub trait Source: Send + Sync + 'static {
    /// Writes every metric family.
    fn render(&self, out: &mut Exposition);
    /// Current health.
    fn health(&self) -> Health;
}

/// A [`Source`] that can be replaced while the endpoints run: a role that
/// rebuilds its pipeline (a config reload) keeps its listener and swaps
/// what a scrape reads. Before the first source it is live but not ready.
#[derive(Default)]
pub struct Swap(std::sync::RwLock<Option<Arc<dyn Source>>>);

impl Swap {
    /// Makes `source` the one scrapes read.
    pub fn set(&self, source: Arc<dyn Source>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(source);
    }

    fn get(&self) -> Option<Arc<dyn Source>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Source for Swap {
    fn render(&self, out: &mut Exposition) {
        if let Some(s) = self.get() {
            s.render(out);
        }
    }

    fn health(&self) -> Health {
        self.get().map_or_else(
            || Health {
                live: true,
                ready: false,
                status: "starting".into(),
            },
            |s| s.health(),
        )
    }
}

/// Binds `addr` and serves the endpoints until `shutdown`. Returns the
/// bound address (useful with port 0) once listening.
pub async fn serve(
    addr: SocketAddr,
    source: Arc<dyn Source>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .with_state(source);
    tokio::spawn(async move {
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "metrics endpoint failed");
        }
    });
    Ok(bound)
}

async fn metrics(State(source): State<Arc<dyn Source>>) -> Response {
    let mut page = Exposition::new();
    source.render(&mut page);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        page.finish(),
    )
        .into_response()
}

fn code(ok: bool) -> StatusCode {
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn health(State(source): State<Arc<dyn Source>>) -> Response {
    let h = source.health();
    let status = h.status.replace('\\', "\\\\").replace('"', "\\\"");
    (
        code(h.live && h.ready),
        [(header::CONTENT_TYPE, "application/json")],
        format!(
            "{{\"live\":{},\"ready\":{},\"status\":\"{status}\"}}\n",
            h.live, h.ready
        ),
    )
        .into_response()
}

async fn live(State(source): State<Arc<dyn Source>>) -> Response {
    let h = source.health();
    (code(h.live), format!("{}\n", h.status)).into_response()
}

async fn ready(State(source): State<Arc<dyn Source>>) -> Response {
    let h = source.health();
    (code(h.live && h.ready), format!("{}\n", h.status)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escaping_follow_the_text_format() {
        let mut e = Exposition::new();
        e.counter("x_events_total", "Events.\nSecond line with \\.")
            .sample(&[("input", "a\"b\\c\nd"), ("k", "v")], 3.0)
            .sample(&[("input", "plain"), ("k", "w")], 0.5);
        e.gauge("x_age_seconds", "Age.").value(f64::NAN);
        let page = e.finish();
        let expected = "# HELP x_events_total Events.\\nSecond line with \\\\.\n\
                        # TYPE x_events_total counter\n\
                        x_events_total{input=\"a\\\"b\\\\c\\nd\",k=\"v\"} 3\n\
                        x_events_total{input=\"plain\",k=\"w\"} 0.5\n\
                        # HELP x_age_seconds Age.\n\
                        # TYPE x_age_seconds gauge\n\
                        x_age_seconds NaN\n";
        assert_eq!(page, expected);
    }

    struct Fixed(bool);
    impl Source for Fixed {
        fn render(&self, out: &mut Exposition) {
            out.counter("t_total", "T.").value(7.0);
        }
        fn health(&self) -> Health {
            Health {
                live: true,
                ready: self.0,
                status: if self.0 {
                    "ok".into()
                } else {
                    "store \"full\"".into()
                },
            }
        }
    }

    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).await.unwrap();
        let status = text[9..12].parse().unwrap();
        let body = text.split_once("\r\n\r\n").unwrap().1.to_string();
        (status, body)
    }

    #[tokio::test]
    async fn the_endpoints_answer_with_the_sources_state() {
        let stop = CancellationToken::new();
        let ok = serve(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(Fixed(true)),
            stop.clone(),
        )
        .await
        .unwrap();
        let busy = serve(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(Fixed(false)),
            stop.clone(),
        )
        .await
        .unwrap();
        let (code, body) = get(ok, "/metrics").await;
        assert_eq!(code, 200);
        assert!(body.contains("t_total 7\n"), "{body}");
        assert_eq!(get(ok, "/health/ready").await.0, 200);
        assert_eq!(get(busy, "/health/ready").await.0, 503);
        assert_eq!(get(busy, "/health/live").await.0, 200);
        let (code, body) = get(busy, "/health").await;
        assert_eq!(code, 503);
        let v: String = body.lines().next().unwrap().into();
        assert_eq!(
            v,
            r#"{"live":true,"ready":false,"status":"store \"full\""}"#
        );
        stop.cancel();
    }
}
