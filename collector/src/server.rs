//! The collector process: listener, TLS, routes, and shutdown.
//!
//! ```text
//! TcpListener -> (TLS handshake, 10 s limit) -> HTTP/1.1 (hyper) -> axum routes
//!   POST /v1/ingest   Ingest   -> ingest::PreparedBatch -> commit thread
//!   GET  /v1/events   Query    -> StoreReader::query (NDJSON, newest first)
//!   GET  /v1/gaps     Query    -> ranges of seq not received, per agent
//!   GET  /v1/stats    Query    -> store size and ingest counters (JSON)
//!   GET  /v1/checkpoint, /v1/proof/*, /v1/agents, /v1/export -> see proof_api
//!   GET|POST /v1/tokens, DELETE /v1/tokens/{name}  Admin -> see admin_api
//!   POST /v1/retention/run, GET/POST/DELETE /v1/holds  Admin -> see retention::api
//!   GET  /v1/alerts   Query    -> stored alert events (see alerts::api)
//!   GET  /health               -> "ok"
//! ```
//!
//! Every route but `/health` asks [`crate::access`] for its permission,
//! and every read or administrative action is recorded as an access event
//! before it is answered.
//!
//! Status codes an agent acts on: 200 stored (durable); 400 the batch is
//! malformed (the message says where); 401 no or unknown token; 403 the
//! token may not do this (send as that agent, or read), or the agent is not
//! enrolled; 413 body or its decompressed form too large; 422 the batch's
//! signature or chain does not verify (stored as an integrity event; the
//! agent dead-letters the batch); 503 with `Retry-After` when the store
//! cannot take data (a full disk): the collector keeps running.
//!
//! Shutdown: a [`CancellationToken`] stops accepting; open connections
//! finish their request within the grace period; the commit thread ends
//! when the last handler is gone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auditship_core::wire::{self, ErrorBody};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Tokens;
use crate::checkpoints::{self, Cadence, Checkpointer, Latest};
use crate::config::CollectorConfig;
use crate::enrol::Enrolment;
use crate::gaps::Gaps;
use crate::ingest::{self, IngestError, IngestHandle, Parts, PreparedBatch, Views};
use crate::merkle_log::{MerkleLog, MerkleReader};
use crate::running::Running;
use crate::store::segments::{self, SegmentConfig};
use crate::store::StoreReader;
use crate::{proof_api, query_api};

/// Why the collector could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// The data directory or a state file.
    #[error("{path}: {source}")]
    State {
        /// The path.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A token file.
    #[error("{0}")]
    Tokens(String),
    /// Certificates or keys.
    #[error(transparent)]
    Tls(#[from] auditship_tls::TlsError),
    /// Keys, enrolment, the Merkle log or checkpoints.
    #[error("{0}")]
    Integrity(String),
    /// An encryption key file.
    #[error("{0}")]
    Key(String),
    /// Alert rules: state or webhooks.
    #[error(transparent)]
    Alerts(#[from] crate::alerts::AlertsError),
    /// Binding the listen address.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    tokens: Arc<crate::token_store::TokenRegistry>,
    cert_ids: Arc<crate::identities::CertIdentities>,
    pub(crate) denials: Arc<crate::access::Denials>,
    pub(crate) ingest: IngestHandle,
    pub(crate) reader: Arc<dyn StoreReader>,
    pub(crate) gaps: Arc<std::sync::Mutex<serde_json::Value>>,
    pub(crate) agents: Arc<std::sync::Mutex<serde_json::Value>>,
    pub(crate) own_events: Arc<std::sync::atomic::AtomicU64>,
    pub(crate) merkle: MerkleReader,
    pub(crate) latest: Latest,
    pub(crate) retention: Option<Arc<crate::retention::Retention>>,
    pub(crate) alerts: Option<Arc<crate::alerts::stats::AlertStats>>,
    max_body: usize,
    max_inflated: usize,
    retry_after: Duration,
}

impl AppState {
    pub(crate) fn tokens(&self) -> &crate::token_store::TokenRegistry {
        &self.tokens
    }

    pub(crate) fn cert_identities(&self) -> &crate::identities::CertIdentities {
        &self.cert_ids
    }

    pub(crate) fn latest_checkpoint(&self) -> Option<auditship_core::checkpoint::SignedCheckpoint> {
        self.latest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn agents_view(&self) -> serde_json::Value {
        self.agents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The host name, for the checkpoint origin and integrity events.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Runs the collector until `shutdown`. `on_listen` receives the bound
/// address (useful with port 0). The address is also written to
/// `<data_dir>/collector.addr`.
pub async fn run(
    cfg: CollectorConfig,
    shutdown: CancellationToken,
    on_listen: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> Result<(), CollectorError> {
    run_with(cfg, shutdown, move |running: Running| {
        if let Some(tx) = on_listen {
            let _ = tx.send(running.addr());
        }
    })
    .await
}

/// [`run`], calling `on_ready` once the store is open and the collector
/// listens. What it is given lets a supervisor (the systemd notifier) watch
/// the collector.
pub async fn run_with(
    cfg: CollectorConfig,
    shutdown: CancellationToken,
    on_ready: impl FnOnce(Running) + Send,
) -> Result<(), CollectorError> {
    let state_err = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| CollectorError::State { path, source }
    };
    std::fs::create_dir_all(&cfg.data_dir).map_err(state_err(&cfg.data_dir))?;
    let tokens = Tokens::load(&cfg.tokens).map_err(CollectorError::Tokens)?;
    let tls = match &cfg.tls {
        Some(t) => Some(tokio_rustls::TlsAcceptor::from(
            auditship_tls::server_config(&t.cert_file, &t.key_file, t.client_ca_file.as_deref())?,
        )),
        None => None,
    };
    let keys = match &cfg.encryption {
        Some(e) => {
            let k = auditship_crypt::Keyring::load(&e.key_file, &e.previous_key_files)
                .map_err(|e| CollectorError::Key(e.to_string()))?;
            tracing::info!(keys = %k.describe(), "store: encryption at rest on");
            Some(Arc::new(k))
        }
        None => None,
    };
    let (writer, reader, recovery) = segments::open(SegmentConfig {
        dir: cfg.data_dir.join("store"),
        segment_bytes: cfg.segment_bytes,
        keys: keys.clone(),
    })?;
    tracing::info!(?recovery, "store opened");
    let gaps = Gaps::load(&cfg.data_dir).map_err(state_err(&cfg.data_dir.join("gaps.json")))?;
    let views = Views::default();
    *views.gaps.lock().unwrap_or_else(|p| p.into_inner()) =
        serde_json::to_value(gaps.all()).unwrap_or_default();
    let integ = &cfg.integrity;
    let key = checkpoints::collector_identity(&cfg.data_dir)
        .map_err(|e| CollectorError::Integrity(e.to_string()))?;
    tracing::info!(public_key = %key.public().to_hex(), key_id = %key.public().key_id(),
        file = %cfg.data_dir.join("collector.pub").display(), "collector signing key");
    let host = host_name();
    let cadence = Cadence {
        origin: integ
            .origin
            .clone()
            .unwrap_or_else(|| format!("auditship/{host}")),
        interval: integ.checkpoint_interval,
        every: integ.checkpoint_every,
    };
    let checkpointer = Checkpointer::open(&cfg.data_dir, key, cadence.clone())
        .map_err(state_err(&cfg.data_dir.join("checkpoints.ndjson")))?;
    let latest = checkpointer.latest();
    let enrol = Enrolment::load(
        &cfg.data_dir,
        integ.keys().map_err(CollectorError::Integrity)?,
        integ.enrolment,
    )
    .map_err(CollectorError::Integrity)?;
    let merkle = MerkleLog::open(cfg.data_dir.join("merkle"))
        .map_err(|e| CollectorError::Integrity(format!("merkle log: {e}")))?;
    let merkle_reader = merkle.reader();
    let maintenance = reader.maintenance();
    let origin = cadence.origin.clone();
    let parts = Parts {
        store: Box::new(writer),
        reader: reader.clone(),
        gaps,
        enrol,
        merkle,
        checkpoints: checkpointer,
        silent_after: integ.silent_after,
        host: host.clone(),
    };
    let (tap, feed) = crate::alerts::feed(&cfg.alerts).unzip();
    let (ingest, commit_thread) = ingest::start_with(parts, views.clone(), tap);
    let alerts = match feed {
        Some(feed) => Some(crate::alerts::start(
            &cfg.alerts,
            feed,
            &cfg.data_dir,
            crate::alerts::Context {
                ingest: ingest.clone(),
                reader: reader.clone(),
                host,
                runtime: tokio::runtime::Handle::current(),
                keys,
            },
        )?),
        None => None,
    };
    let ticker = ingest.clone();
    let tick_stop = shutdown.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick_stop.cancelled() => break,
                t = every.tick() => ticker.tick(t.into_std()),
            }
        }
    });
    let retention = crate::retention::start(
        &cfg,
        maintenance,
        reader.clone(),
        ingest.clone(),
        origin,
        latest.clone(),
    )
    .map_err(CollectorError::Integrity)?;
    let state = AppState {
        tokens: Arc::new(
            crate::token_store::TokenRegistry::open(&cfg.data_dir, tokens)
                .map_err(CollectorError::Tokens)?,
        ),
        denials: Arc::default(),
        cert_ids: Arc::new(
            cfg.tls
                .as_ref()
                .map(|t| t.identities.clone())
                .unwrap_or_default(),
        ),
        ingest,
        reader,
        gaps: views.gaps.clone(),
        agents: views.agents.clone(),
        own_events: views.own_events.clone(),
        merkle: merkle_reader,
        latest,
        retention: Some(retention),
        alerts: alerts.as_ref().map(|a| a.stats.clone()),
        max_body: cfg.max_body_bytes,
        max_inflated: cfg.max_decompressed_bytes,
        retry_after: cfg.retry_after,
    };
    let listening = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The endpoints outlive the shutdown signal: /health answers "stopping"
    // while open requests finish.
    let telemetry_stop = CancellationToken::new();
    let _telemetry_guard = telemetry_stop.clone().drop_guard();
    if let Some(addr) = cfg.metrics {
        let source = Arc::new(crate::metrics::CollectorMetrics::new(
            &state,
            listening.clone(),
            stopping.clone(),
        ));
        match auditship_telemetry::serve(addr, source, telemetry_stop.clone()).await {
            Ok(bound) => tracing::info!(address = %bound, "serving /metrics and /health"),
            Err(e) => {
                tracing::error!(address = %addr, error = %e, "cannot serve /metrics and /health; running without them")
            }
        }
    }
    let (ingest_stats, store_reader, agents_view) = (
        state.ingest.stats.clone(),
        state.reader.clone(),
        state.agents.clone(),
    );
    let app = Router::new()
        .route(wire::INGEST_PATH, post(ingest_handler))
        .route("/v1/events", get(query_api::events))
        .route("/v1/gaps", get(gaps_handler))
        .route("/v1/stats", get(stats_handler))
        .route("/v1/checkpoint", get(proof_api::checkpoint))
        .route("/v1/proof/inclusion", get(proof_api::inclusion))
        .route("/v1/proof/consistency", get(proof_api::consistency))
        .route("/v1/agents", get(proof_api::agents))
        .route("/v1/export", get(proof_api::export))
        .route(
            "/v1/tokens",
            get(crate::admin_api::list).post(crate::admin_api::create),
        )
        .route(
            "/v1/tokens/{name}",
            axum::routing::delete(crate::admin_api::revoke),
        )
        .route("/v1/retention/run", post(crate::retention::api::run))
        .route(
            "/v1/holds",
            get(crate::retention::api::list).post(crate::retention::api::add),
        )
        .route(
            "/v1/holds/{id}",
            axum::routing::delete(crate::retention::api::remove),
        )
        .route("/v1/alerts", get(crate::alerts::api::alerts))
        .route("/health", get(|| async { "ok\n" }))
        .with_state(state.clone());
    tokio::spawn(crate::retention::api::resume_at_start(state.clone()));
    // With no policy a run has nothing to do: no schedule, no records.
    if !cfg.retention.interval.is_zero() && !cfg.retention.policies.is_empty() {
        tokio::spawn(crate::retention::api::schedule(
            state,
            cfg.retention.interval,
            shutdown.clone(),
        ));
    } else {
        drop(state);
    }

    let listener =
        TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| CollectorError::Listen {
                addr: cfg.listen,
                source,
            })?;
    let addr = listener
        .local_addr()
        .map_err(|source| CollectorError::Listen {
            addr: cfg.listen,
            source,
        })?;
    let addr_file = cfg.data_dir.join("collector.addr");
    std::fs::write(&addr_file, format!("{addr}\n")).map_err(state_err(&addr_file))?;
    tracing::info!(%addr, tls = tls.is_some(), mtls = cfg.tls.as_ref().is_some_and(|t| t.client_ca_file.is_some()), "collector listening");
    listening.store(true, std::sync::atomic::Ordering::Relaxed);
    on_ready(Running::new(addr, ingest_stats, store_reader, agents_view));

    let tracker = TaskTracker::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (app, tls, stop) = (app.clone(), tls.clone(), shutdown.clone());
        tracker.spawn(async move {
            match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    {
                        Ok(Ok(stream)) => {
                            let cert = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .map(|c| crate::identities::client_cert(c));
                            serve(stream, app, stop, peer, cert).await
                        }
                        Ok(Err(e)) => tracing::info!(%peer, error = %e, "TLS handshake refused"),
                        Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                    }
                }
                None => serve(tcp, app, stop, peer, None).await,
            }
        });
    }
    stopping.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(listener);
    drop(app);
    tracker.close();
    tracing::info!(grace = ?cfg.shutdown_grace, "stopping: finishing open requests");
    let finished = tokio::time::timeout(cfg.shutdown_grace, tracker.wait())
        .await
        .is_ok();
    if let Some(a) = alerts {
        // Open alerts are notified now, while the commit thread runs.
        a.stop(cfg.shutdown_grace).await;
    }
    if !finished {
        // Requests still running hold ingest handles, so the commit thread
        // would not end; leave it. Nothing unanswered was acknowledged, and
        // whatever it committed is durable.
        tracing::warn!("grace period over; closing the remaining connections");
    } else {
        // The commit thread ends once every handle (held by handlers) is gone.
        let _ = tokio::task::spawn_blocking(move || commit_thread.join()).await;
    }
    tracing::info!("collector stopped");
    Ok(())
}

async fn serve<S>(
    stream: S,
    app: Router,
    stop: CancellationToken,
    peer: SocketAddr,
    cert: Option<crate::access::ClientCert>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // Every request of the connection knows its peer and client certificate.
    let app =
        tower::ServiceExt::map_request(app, move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(crate::access::Peer(peer));
            if let Some(c) = &cert {
                req.extensions_mut().insert(c.clone());
            }
            req
        });
    let service = hyper_util::service::TowerToHyperService::new(app);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// A JSON error answer.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        error: message.into(),
    };
    let mut r = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

async fn ingest_handler(State(st): State<AppState>, req: Request) -> Response {
    let grant = match crate::access::require(&st, &req, crate::access::Permission::Ingest) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let encoding = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match http_body_util::Limited::new(req.into_body(), st.max_body)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body is larger than {} bytes", st.max_body),
            )
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("cannot read body: {e}")),
    };
    let limit = st.max_inflated;
    let prepared = tokio::task::spawn_blocking(move || {
        let inflated = wire::inflate(&body, encoding.as_deref(), limit)?.into_owned();
        PreparedBatch::prepare(inflated)
    })
    .await;
    let batch = match prepared {
        Ok(Ok(b)) => b,
        Ok(Err(e @ wire::WireError::TooLarge { .. })) => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
        }
        Ok(Err(e)) => return error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if !grant.may_send_as(&batch.agent_id) {
        tracing::warn!(token = %grant.name, agent = %batch.agent_id, "token used to send as an agent it is not bound to");
        crate::access::record_refusal(
            &st,
            &grant,
            "send as another agent",
            format!("agent:{}", batch.agent_id),
            format!(
                "ingest token {:?} is not bound to agent {:?}",
                grant.name, batch.agent_id
            ),
        );
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "token {:?} may not send as agent {:?}",
                grant.name, batch.agent_id
            ),
        );
    }
    match st.ingest.submit(batch).await {
        Ok(ack) => axum::Json(ack).into_response(),
        Err(IngestError::Refused { status, message }) => error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
            message,
        ),
        Err(e) => {
            let mut r = error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
            let secs = if matches!(e, IngestError::Stopped) {
                1
            } else {
                st.retry_after.as_secs().max(1)
            };
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            r
        }
    }
}

async fn gaps_handler(State(st): State<AppState>, req: Request<Body>) -> Response {
    if let Err(r) = crate::access::require(&st, &req, crate::access::Permission::Query) {
        return r;
    }
    let v = st.gaps.lock().expect("gaps view").clone();
    axum::Json(v).into_response()
}

async fn stats_handler(State(st): State<AppState>, req: Request<Body>) -> Response {
    if let Err(r) = crate::access::require(&st, &req, crate::access::Permission::Query) {
        return r;
    }
    use std::sync::atomic::Ordering::Relaxed;
    let s = st.reader.stats();
    let i = &st.ingest.stats;
    axum::Json(serde_json::json!({
        "store": {
            "events": s.events,
            "agent_events": s.events.saturating_sub(st.own_events.load(Relaxed)),
            "integrity_events": st.own_events.load(Relaxed),
            "bytes": s.bytes,
            "segments": s.segments,
            "quarantined": s.quarantined,
        },
        "ingest": {
            "batches": i.batches.load(Relaxed),
            "stored": i.stored.load(Relaxed),
            "duplicates": i.duplicates.load(Relaxed),
            "commits": i.commits.load(Relaxed),
            "gaps": i.gaps.load(Relaxed),
            "forks": i.forks.load(Relaxed),
            "bad_signatures": i.bad_signatures.load(Relaxed),
            "integrity_events": i.integrity_events.load(Relaxed),
            "failures": i.failures.load(Relaxed),
            "checkpoints": i.checkpoints.load(Relaxed),
        },
        "merkle": {
            "size": st.merkle.size(),
            "checkpoint": st.latest_checkpoint(),
        },
    }))
    .into_response()
}
