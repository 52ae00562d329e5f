//! The HTTP input's listener and its one route.
//!
//! ```text
//! TcpListener -> (TLS handshake, 10 s limit) -> HTTP/1.1 (hyper)
//!   POST /v1/events   bearer token if configured -> body -> ingest thread -> durable -> 200
//!   GET  /health      no token                   -> "ok"
//! ```
//!
//! The order of checks in `POST`: token (401), agent stopping or queue full
//! (503, before the body is read), body size (413), decoding and splitting
//! (415, 413, 400), room among pending requests (503), then the hand-over
//! to the ingest thread and the wait for durability (200, or 503 after
//! `ack_timeout`). See the parent module for what each answer promises.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{body, Handled, Pending, Shared, Ticket, PATH};
use crate::input::net;

type Answer = Response<Full<Bytes>>;

/// How long a request's body may take to arrive (headers: 30 s).
const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// Accepts connections until `stop`, then lets open requests finish.
pub(super) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let tracker = TaskTracker::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(input = %shared.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (tls, shared, stop) = (tls.clone(), shared.clone(), stop.clone());
        tracker.spawn(async move {
            shared.counters.connections.fetch_add(1, Ordering::Relaxed);
            match tls {
                Some(acceptor) => match net::handshake(&acceptor, tcp, peer).await {
                    Some(stream) => connection(stream, peer, shared.clone(), stop).await,
                    None => {
                        shared.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
                    }
                },
                None => connection(tcp, peer, shared.clone(), stop).await,
            }
            shared.counters.connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
    drop(listener);
    shared.listener_closed.store(true, Ordering::Release);
    tracker.close();
    tracker.wait().await;
}

/// Serves one connection (HTTP/1.1, keep-alive) until it closes or `stop`,
/// when the request in progress is finished first.
async fn connection<S>(stream: S, peer: SocketAddr, shared: Arc<Shared>, stop: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(&shared, peer, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

async fn handle(shared: &Shared, peer: SocketAddr, req: Request<Incoming>) -> Answer {
    match (req.method(), req.uri().path()) {
        (&Method::POST, PATH) => {}
        (&Method::GET, "/health") => return text(StatusCode::OK, "ok\n"),
        (_, PATH) => {
            let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "use POST");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return r;
        }
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                format!("no such path; POST events to {PATH}"),
            )
        }
    }
    let c = &shared.counters;
    if !shared.authorized(req.headers().get(header::AUTHORIZATION)) {
        c.unauthorized.fetch_add(1, Ordering::Relaxed);
        let mut r = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        drain(req.into_body()).await;
        return r;
    }
    if let Some(refused) = refuse_now(shared) {
        drain(req.into_body()).await;
        return refused;
    }
    c.requests.fetch_add(1, Ordering::Relaxed);
    let encoding = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let max_body = shared.cfg.max_body_bytes;
    let reading = http_body_util::Limited::new(req.into_body(), max_body).collect();
    let Ok(read) = tokio::time::timeout(BODY_TIMEOUT, reading).await else {
        c.invalid.fetch_add(1, Ordering::Relaxed);
        return error(
            StatusCode::REQUEST_TIMEOUT,
            format!("the body did not arrive within {BODY_TIMEOUT:?}"),
        );
    };
    let sent = match read {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            c.invalid.fetch_add(1, Ordering::Relaxed);
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than max_body_bytes ({max_body})"),
            );
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {e}"),
            )
        }
    };
    let (max_inflated, max_event) = (
        shared.cfg.max_decompressed_bytes,
        shared.cfg.max_event_bytes,
    );
    let split = tokio::task::spawn_blocking(move || {
        use auditship_core::wire::{self, WireError};
        let body = match wire::inflate(&sent, encoding.as_deref(), max_inflated) {
            Ok(b) => b.into_owned(),
            Err(e @ WireError::TooLarge { .. }) => {
                return Err((StatusCode::PAYLOAD_TOO_LARGE, e.to_string()))
            }
            Err(e @ WireError::Encoding(_)) => {
                return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, e.to_string()))
            }
            Err(e) => return Err((StatusCode::BAD_REQUEST, e.to_string())),
        };
        match body::split(&body, max_event) {
            Ok(events) => Ok((body, events)),
            Err(e) => Err((StatusCode::BAD_REQUEST, e.to_string())),
        }
    })
    .await;
    let (body, events) = match split {
        Ok(Ok(parts)) => parts,
        Ok(Err((status, message))) => {
            c.invalid.fetch_add(1, Ordering::Relaxed);
            return error(status, message);
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if events.is_empty() {
        return done(
            0,
            Handled {
                before: 0,
                after: 0,
            },
        );
    }
    let count = events.len() as u64;
    let ticket = Arc::new(Ticket::default());
    let (reply, answer) = tokio::sync::oneshot::channel();
    let Some(pending) = Pending::reserve(shared, body, events, peer, ticket.clone(), reply) else {
        return unavailable(
            shared,
            "the agent is still queueing earlier requests; nothing from this request was queued",
            false,
        );
    };
    if shared.tx.try_send(pending).is_err() {
        return unavailable(
            shared,
            "the agent is still queueing earlier requests; nothing from this request was queued",
            false,
        );
    }
    shared.bell.ring();
    let deadline = tokio::time::Instant::now() + shared.cfg.ack_timeout;
    let handled = tokio::select! {
        r = answer => r.ok(),
        _ = tokio::time::sleep_until(deadline) => None,
    };
    let Some(handled) = handled else {
        // Not handed to the queue in time (or the agent stopped): withdraw
        // the request if the ingest thread has not taken it yet.
        return if ticket.cancel() {
            unavailable(
                shared,
                "the queue did not take the events in time (it is full or the agent is stopping); \
                 nothing from this request was queued",
                false,
            )
        } else {
            unavailable(
                shared,
                "the events were being queued when the time ran out (the queue filled up or the \
                 agent stopped meanwhile); some or all of them may be stored, so a retry may \
                 duplicate them",
                true,
            )
        };
    };
    if handled.after > handled.before {
        let mut durable = shared.durable.clone();
        let reached =
            tokio::time::timeout_at(deadline, durable.wait_for(|&id| id >= handled.after));
        if !matches!(reached.await, Ok(Ok(_))) {
            return unavailable(
                shared,
                "the events were queued but not confirmed durable in time; they will most likely \
                 be stored, so a retry may duplicate them",
                true,
            );
        }
    }
    done(count, handled)
}

/// Reads and drops (up to 1 MiB, 2 s of) a body refused unread: a socket
/// closed with unread data resets the connection, and the client could
/// lose the answer with it.
async fn drain(body: Incoming) {
    let all = http_body_util::Limited::new(body, 1 << 20).collect();
    let _ = tokio::time::timeout(Duration::from_secs(2), all).await;
}

/// 503 before reading the body: the agent is stopping or the queue is full.
fn refuse_now(shared: &Shared) -> Option<Answer> {
    if shared.stopping.load(Ordering::Relaxed) {
        return Some(unavailable(
            shared,
            "the agent is stopping; nothing from this request was queued",
            false,
        ));
    }
    if shared.queue.is_full() {
        return Some(unavailable(
            shared,
            "the agent's queue is full (its outputs are behind); nothing from this request was queued",
            false,
        ));
    }
    None
}

/// 200: how many events, how many a filter dropped, and the `seq` range
/// the others were stored under.
fn done(count: u64, h: Handled) -> Answer {
    let queued = h.after - h.before;
    let mut body = json!({
        "events": count,
        "queued": queued,
        "filtered": count - queued,
    });
    if queued > 0 {
        body["first_seq"] = json!(h.before + 1);
        body["last_seq"] = json!(h.after);
    }
    respond(StatusCode::OK, &body)
}

/// 503 with `Retry-After`; `maybe_queued` tells the client whether a retry
/// may duplicate events.
fn unavailable(shared: &Shared, message: &str, maybe_queued: bool) -> Answer {
    shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
    let mut r = respond(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({ "error": message, "maybe_queued": maybe_queued }),
    );
    let secs = shared.cfg.retry_after.as_secs().max(1);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

fn error(status: StatusCode, message: impl Into<String>) -> Answer {
    respond(status, &json!({ "error": message.into() }))
}

fn respond(status: StatusCode, body: &serde_json::Value) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(format!("{body}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn text(status: StatusCode, body: &'static str) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}
