//! `GET /v1/alerts`: the alerts stored in the log, newest first.
//!
//! | name    | meaning                                                          |
//! |---------|------------------------------------------------------------------|
//! | `since` | opened at or after: RFC 3339 or an age (`15m`, `1h`, `7d`)       |
//! | `rule`  | this rule only                                                   |
//! | `limit` | at most this many alerts (default 100, at most 1000)             |
//!
//! Answered from the stored alert events (category `alert`), not from
//! memory, so it shows what the log proves and survives restarts. An alert
//! that fired and later closed is stored twice; it is listed once, in its
//! latest state (status `closed` and its final count). Each element is the
//! alert's JSON (as the webhook sends it) plus `stored`: the leaf and
//! `seq` of the event it was read from. Needs the `Query` permission; the
//! read is itself recorded (`access::audit`, action `alerts_list`).

use std::collections::{HashMap, HashSet};

use auditship_core::{AuditEvent, Timestamp};
use axum::body::Body;
use axum::extract::{Query as Params, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::record::Alert;
use crate::access::{self, Access, Permission};
use crate::query_api::parse_time;
use crate::server::{error, AppState};
use crate::store::{Query, StoreReader};

/// Largest `limit`.
pub const MAX_LIMIT: usize = 1000;
/// Most stored events one request reads.
const MAX_SCAN: usize = 200_000;

/// The handler.
pub(crate) async fn alerts(
    State(st): State<AppState>,
    Params(params): Params<HashMap<String, String>>,
    req: Request<Body>,
) -> Response {
    let caller = match access::require(&st, &req, Permission::Query) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let q = match parse(&params, Timestamp::now_utc().unix_millis()) {
        Ok(q) => q,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let reader = st.reader.clone();
    let q2 = q.clone();
    let list = match tokio::task::spawn_blocking(move || list(reader.as_ref(), &q2)).await {
        Ok(Ok(l)) => l,
        Ok(Err(m)) => return error(StatusCode::INTERNAL_SERVER_ERROR, m),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let mut a = Access::new("alerts_list");
    for (k, v) in &params {
        a.filters.insert(k.clone(), v.clone());
    }
    a.results = Some(list.len() as u64);
    if let Err(r) = access::audit(&st, &caller, a).await {
        return r;
    }
    axum::Json(serde_json::Value::Array(list)).into_response()
}

/// A parsed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertQuery {
    /// Opened at or after (Unix ms).
    pub since: Option<i64>,
    /// Rule.
    pub rule: Option<String>,
    /// Most alerts.
    pub limit: usize,
}

/// Parses the parameters; `now` anchors ages.
pub fn parse(p: &HashMap<String, String>, now: i64) -> Result<AlertQuery, String> {
    const KNOWN: [&str; 3] = ["since", "rule", "limit"];
    if let Some(k) = p.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(format!(
            "unknown parameter {k:?}; known: {}",
            KNOWN.join(", ")
        ));
    }
    let since = p
        .get("since")
        .map(|v| parse_time(v, now).map_err(|m| format!("since: {m}")))
        .transpose()?;
    let limit = match p.get("limit") {
        None => 100,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| format!("limit: {v:?} is not a number from 1 to {MAX_LIMIT}"))?,
    };
    Ok(AlertQuery {
        since,
        rule: p.get("rule").filter(|r| !r.is_empty()).cloned(),
        limit,
    })
}

/// The alerts matching `q`, newest stored first, each in its latest state.
pub fn list(reader: &dyn StoreReader, q: &AlertQuery) -> Result<Vec<serde_json::Value>, String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut cursor = None;
    let mut scanned = 0;
    loop {
        let page = reader
            .query(&Query {
                // An alert's event is stored after it opened: `since` on
                // the store is a safe pre-filter; `opened` decides.
                since_millis: q.since,
                category: Some("alert".into()),
                limit: 10_000,
                cursor,
                ..Query::default()
            })
            .map_err(|e| e.to_string())?;
        for e in &page.events {
            scanned += 1;
            let Ok(ev) = serde_json::from_slice::<AuditEvent>(&e.payload) else {
                continue;
            };
            let Some(alert) = Alert::from_event(&ev) else {
                continue;
            };
            if q.rule.as_ref().is_some_and(|r| *r != alert.rule)
                || q.since.is_some_and(|s| alert.opened < s)
                || !seen.insert(alert.id.clone())
            {
                continue;
            }
            let mut v = alert.to_json();
            v["stored"] = serde_json::json!({"leaf": e.leaf, "seq": e.seq});
            out.push(v);
            if out.len() >= q.limit {
                return Ok(out);
            }
        }
        match page.next {
            Some(c) if scanned < MAX_SCAN => cursor = Some(c),
            _ => return Ok(out),
        }
    }
}
