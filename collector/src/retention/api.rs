//! The admin API of retention and legal holds, and the schedule.
//!
//! | route                                      | answer |
//! |--------------------------------------------|--------|
//! | `POST /v1/retention/run?dry_run=true\|false` | NDJSON, streamed: `{"progress":{…}}` lines while it runs, then `{"report":{…}}` (see [`RunReport`](super::RunReport)) or `{"error":"…"}`; 409 while another run is in progress |
//! | `GET /v1/holds`                            | every legal hold (JSON array) |
//! | `POST /v1/holds`                           | body `{"from":…,"until":…,"host":…,"reason":…}`; 201 with the new hold; 400 when malformed |
//! | `DELETE /v1/holds/{id}`                    | the removed hold; 404 when there is none |
//!
//! All need the `Admin` permission. Every run (dry or not, asked for or
//! scheduled) and every hold change or listing is recorded in the log with
//! `access::audit` before the answer completes; a run is recorded when it
//! starts and again with its figures when it ends.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query as Params, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use super::holds::{HoldError, NewHold};
use super::{Progress, Retention, RetentionError, RunReport};
use crate::access::{self, Access, Caller, Permission};
use crate::config::Role;
use crate::server::{error, AppState};

#[allow(clippy::result_large_err)]
fn engine(st: &AppState) -> Result<Arc<Retention>, Response> {
    st.retention.clone().ok_or_else(|| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "retention is not running on this collector",
        )
    })
}

/// Runs retention in a blocking thread and records the run; progress goes
/// to `progress` (lines of NDJSON) when given.
pub(crate) async fn run_recorded(
    st: &AppState,
    caller: &Caller,
    dry_run: bool,
    progress: Option<tokio::sync::mpsc::Sender<Bytes>>,
) -> Result<RunReport, String> {
    let engine = engine(st).map_err(|_| "retention is not running".to_string())?;
    let r = tokio::task::spawn_blocking(move || {
        engine.run(dry_run, &mut |p: Progress| {
            if let Some(tx) = &progress {
                let mut line =
                    serde_json::to_vec(&serde_json::json!({ "progress": p })).unwrap_or_default();
                line.push(b'\n');
                let _ = tx.try_send(Bytes::from(line));
            }
        })
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r.map_err(|e| e.to_string()));
    let mut a = Access::new("retention_run");
    a.filters.insert("dry_run".into(), dry_run.to_string());
    a.details.insert("phase".into(), "end".into());
    match &r {
        Ok(rep) => {
            a.results = Some(rep.expired);
            let d = &mut a.details;
            d.insert("expired".into(), rep.expired.to_string());
            d.insert("segments".into(), rep.segments.to_string());
            d.insert("held".into(), rep.held.to_string());
            d.insert("resumed".into(), rep.resumed.to_string());
            let t: Vec<String> = rep.tombstones.iter().map(|t| t.to_string()).collect();
            d.insert("tombstones".into(), t.join(","));
            for p in &rep.policies {
                d.insert(
                    format!("policy.{}", p.policy),
                    format!(
                        "{} events, {} bytes, {} segments, {} held",
                        p.events, p.bytes, p.segments, p.held
                    ),
                );
            }
            if !rep.errors.is_empty() {
                d.insert("errors".into(), rep.errors.join("; "));
            }
        }
        Err(e) => a.failure = Some(e.clone()),
    }
    if access::audit(st, caller, a).await.is_err() {
        return Err("the run could not be recorded in the log".into());
    }
    r
}

/// `POST /v1/retention/run`.
pub(crate) async fn run(
    State(st): State<AppState>,
    Params(p): Params<BTreeMap<String, String>>,
    req: Request,
) -> Response {
    let caller = match access::require(&st, &req, Permission::Admin) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let dry_run = match p.get("dry_run").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(o) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("dry_run must be true or false, not {o:?}"),
            )
        }
    };
    if let Err(r) = engine(&st) {
        return r;
    }
    let mut a = Access::new("retention_run");
    a.filters.insert("dry_run".into(), dry_run.to_string());
    a.details.insert("phase".into(), "start".into());
    if let Err(r) = access::audit(&st, &caller, a).await {
        return r;
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<bool>();
    tokio::spawn(async move {
        let progress = tx.clone();
        // A run refused as busy answers 409 rather than a stream.
        let r = run_recorded(&st, &caller, dry_run, Some(progress)).await;
        let busy = matches!(&r, Err(e) if e == &RetentionError::Busy.to_string());
        let _ = first_tx.send(busy);
        let line = match r {
            Ok(rep) => serde_json::json!({ "report": rep }),
            Err(e) => serde_json::json!({ "error": e }),
        };
        let mut b = serde_json::to_vec(&line).unwrap_or_default();
        b.push(b'\n');
        let _ = tx.send(Bytes::from(b)).await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    // Peek: wait briefly for a quick refusal so that it gets its status.
    if let Ok(Ok(true)) = tokio::time::timeout(Duration::from_millis(200), first_rx).await {
        return error(StatusCode::CONFLICT, RetentionError::Busy.to_string());
    }
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// `GET /v1/holds`.
pub(crate) async fn list(State(st): State<AppState>, req: Request) -> Response {
    let caller = match access::require(&st, &req, Permission::Admin) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let engine = match engine(&st) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let holds = engine.holds.list();
    let mut a = Access::new("hold_list");
    a.results = Some(holds.len() as u64);
    if let Err(r) = access::audit(&st, &caller, a).await {
        return r;
    }
    axum::Json(holds).into_response()
}

/// `POST /v1/holds`.
pub(crate) async fn add(State(st): State<AppState>, req: Request) -> Response {
    let caller = match access::require(&st, &req, Permission::Admin) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let engine = match engine(&st) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let body = match http_body_util::Limited::new(req.into_body(), 64 << 10)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("cannot read body: {e}")),
    };
    let new: NewHold = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("malformed hold: {e}")),
    };
    let mut a = Access::new("hold_add");
    for (k, v) in [
        ("from", &new.from),
        ("until", &new.until),
        ("host", &new.host),
    ] {
        if let Some(v) = v {
            a.details.insert(k.into(), v.clone());
        }
    }
    a.details.insert("reason".into(), new.reason.clone());
    // It may wait for a running retention step (see `Holds::add`).
    let (e2, by) = (engine.clone(), caller.name.clone());
    let added = tokio::task::spawn_blocking(move || e2.holds.add(new, &by))
        .await
        .unwrap_or_else(|e| {
            Err(HoldError::Io {
                path: "holds.json".into(),
                message: e.to_string(),
            })
        });
    match added {
        Ok(hold) => {
            a.resource = Some(format!("hold:{}", hold.id));
            if let Err(r) = access::audit(&st, &caller, a).await {
                // Unrecorded, so undone.
                let _ = engine.holds.remove(&hold.id);
                return r;
            }
            (StatusCode::CREATED, axum::Json(hold)).into_response()
        }
        Err(e) => {
            a.failure = Some(e.to_string());
            if let Err(r) = access::audit(&st, &caller, a).await {
                return r;
            }
            let status = match e {
                HoldError::Invalid(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            error(status, e.to_string())
        }
    }
}

/// `DELETE /v1/holds/{id}`.
pub(crate) async fn remove(
    State(st): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let caller = match access::require(&st, &req, Permission::Admin) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let engine = match engine(&st) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let mut a = Access::new("hold_remove");
    a.resource = Some(format!("hold:{id}"));
    if !engine.holds.list().iter().any(|h| h.id == id) {
        a.failure = Some("no such hold".into());
        if let Err(r) = access::audit(&st, &caller, a).await {
            return r;
        }
        return error(StatusCode::NOT_FOUND, format!("no hold {id:?}"));
    }
    // Recorded first: a removal must never go unrecorded.
    if let Err(r) = access::audit(&st, &caller, a).await {
        return r;
    }
    let (e2, id2) = (engine.clone(), id.clone());
    let removed = tokio::task::spawn_blocking(move || e2.holds.remove(&id2))
        .await
        .unwrap_or_else(|e| {
            Err(HoldError::Io {
                path: "holds.json".into(),
                message: e.to_string(),
            })
        });
    match removed {
        Ok(h) => axum::Json(h).into_response(),
        Err(e) => {
            // The removal was recorded before it failed: say so in the log.
            let mut failed = Access::new("hold_remove");
            failed.resource = Some(format!("hold:{id}"));
            failed.failure = Some(format!("the removal failed; the hold stays: {e}"));
            let _ = access::audit(&st, &caller, failed).await;
            match e {
                HoldError::NotFound(_) => error(StatusCode::NOT_FOUND, format!("no hold {id:?}")),
                e => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
    }
}

fn scheduler() -> Caller {
    Caller {
        name: "retention-schedule".into(),
        role: Role::Admin,
        via: "schedule",
        peer: None,
        agents: Default::default(),
    }
}

/// At collector start: finishes retention steps a crash interrupted, and
/// records that it did.
pub(crate) async fn resume_at_start(st: AppState) {
    let Ok(engine) = engine(&st) else { return };
    if !engine.has_pending() {
        return;
    }
    let r = tokio::task::spawn_blocking(move || engine.resume_pending()).await;
    let mut a = Access::new("retention_resume");
    match r {
        Ok(Ok(rep)) => {
            tracing::info!(
                steps = rep.resumed,
                "retention: finished steps a crash interrupted"
            );
            a.results = Some(rep.resumed);
            let t: Vec<String> = rep.tombstones.iter().map(|t| t.to_string()).collect();
            a.details.insert("tombstones".into(), t.join(","));
        }
        Ok(Err(e)) => a.failure = Some(e.to_string()),
        Err(e) => a.failure = Some(e.to_string()),
    }
    if let Some(f) = &a.failure {
        tracing::error!(error = %f, "retention: cannot finish interrupted steps; the next run tries again");
    }
    let _ = access::audit(&st, &scheduler(), a).await;
}

/// Runs retention every `interval` until `stop`, recorded as the caller
/// `retention-schedule`.
pub(crate) async fn schedule(
    st: AppState,
    interval: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let caller = scheduler();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match run_recorded(&st, &caller, false, None).await {
            Ok(r) => tracing::info!(
                expired = r.expired,
                segments = r.segments,
                held = r.held,
                seconds = r.seconds,
                "retention run"
            ),
            Err(e) => tracing::error!(error = %e, "scheduled retention run failed"),
        }
    }
}
