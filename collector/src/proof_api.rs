//! The proof endpoints: checkpoints, inclusion and consistency proofs,
//! agent status, and export bundles.
//!
//! | route                                      | permission | answer |
//! |--------------------------------------------|------------|--------|
//! | `GET /v1/checkpoint`                       | Witness    | the latest signed checkpoint (see `auditship_core::checkpoint`); 404 before the first |
//! | `GET /v1/proof/consistency?first=M&second=N` | Witness  | `{"first":M,"second":N,"proof":["<hex>",…]}`: RFC 9162 consistency proof; `N` at most the log's size |
//! | `GET /v1/proof/inclusion?index=I&size=N`   | Prove      | `{"index":I,"size":N,"leaf_hash":"<hex>","proof":[…]}`; `size` defaults to the latest checkpoint's |
//! | `GET /v1/agents`                           | Query      | every agent: queue, last seq, chain head, seconds since its last batch, silent, key id |
//! | `GET /v1/export?<filters>`                 | Prove      | an export bundle (see `auditship_core::bundle`) of the matching events, with inclusion proofs against the latest checkpoint |
//!
//! Inclusion proofs and exports are recorded as access events
//! (`proof_inclusion`, `export`, with the parameters and the number of
//! results) before they are answered. The agent list, like `/v1/stats` and
//! `/v1/gaps`, is pipeline status (no event content) and is not recorded;
//! pollers would otherwise fill the log with records of themselves.
//!
//! Agents use the first two as witnesses (design: collector invariant 4),
//! so an ingest token may read them; they reveal hashes only.

use std::collections::HashMap;

use auditship_core::bundle::{self, BundleEntry, BundleHeader};
use auditship_core::{hex, merkle, Timestamp};
use axum::body::Body;
use axum::extract::{Query as Params, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::access::{self, Access, Permission};
use crate::query_api::parse_query;
use crate::server::{error, AppState};

#[allow(clippy::result_large_err)]
fn number(p: &HashMap<String, String>, name: &str) -> Result<Option<u64>, Response> {
    match p.get(name) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                format!("{name} must be a whole number, not {v:?}"),
            )
        }),
    }
}

#[allow(clippy::result_large_err)]
fn required(p: &HashMap<String, String>, name: &str) -> Result<u64, Response> {
    number(p, name)?.ok_or_else(|| error(StatusCode::BAD_REQUEST, format!("{name} is required")))
}

/// `GET /v1/checkpoint`.
pub(crate) async fn checkpoint(State(st): State<AppState>, req: Request<Body>) -> Response {
    if let Err(r) = access::require(&st, &req, Permission::Witness) {
        return r;
    }
    match st.latest_checkpoint() {
        Some(cp) => axum::Json(cp).into_response(),
        None => error(StatusCode::NOT_FOUND, "no checkpoint has been signed yet"),
    }
}

/// `GET /v1/proof/consistency`.
pub(crate) async fn consistency(
    State(st): State<AppState>,
    Params(p): Params<HashMap<String, String>>,
    req: Request<Body>,
) -> Response {
    if let Err(r) = access::require(&st, &req, Permission::Witness) {
        return r;
    }
    let (first, second) = match (required(&p, "first"), required(&p, "second")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let tree = st.merkle.clone();
    if first > second || second > tree.size() {
        return error(
            StatusCode::BAD_REQUEST,
            format!("need first <= second <= {} (the log's size)", tree.size()),
        );
    }
    match tokio::task::spawn_blocking(move || tree.consistency_proof(first, second)).await {
        Ok(Ok(proof)) => axum::Json(serde_json::json!({
            "first": first,
            "second": second,
            "proof": proof.iter().map(|h| hex::encode(h)).collect::<Vec<_>>(),
        }))
        .into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `GET /v1/proof/inclusion`.
pub(crate) async fn inclusion(
    State(st): State<AppState>,
    Params(p): Params<HashMap<String, String>>,
    req: Request<Body>,
) -> Response {
    let caller = match access::require(&st, &req, Permission::Prove) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let index = match required(&p, "index") {
        Ok(i) => i,
        Err(r) => return r,
    };
    let size = match number(&p, "size") {
        Ok(Some(s)) => s,
        Ok(None) => match st.latest_checkpoint() {
            Some(c) => c.size,
            None => return error(StatusCode::NOT_FOUND, "no checkpoint has been signed yet"),
        },
        Err(r) => return r,
    };
    let tree = st.merkle.clone();
    if index >= size || size > tree.size() {
        return error(
            StatusCode::BAD_REQUEST,
            format!("need index < size <= {} (the log's size)", tree.size()),
        );
    }
    let r = tokio::task::spawn_blocking(move || {
        Ok::<_, merkle::MerkleError>((tree.leaf(index)?, tree.inclusion_proof(index, size)?))
    })
    .await;
    if matches!(r, Ok(Ok(_))) {
        let mut rec = Access::new("proof_inclusion");
        rec.filters.insert("index".into(), index.to_string());
        rec.filters.insert("size".into(), size.to_string());
        rec.results = Some(1);
        if let Err(resp) = access::audit(&st, &caller, rec).await {
            return resp;
        }
    }
    match r {
        Ok(Ok((leaf, proof))) => axum::Json(serde_json::json!({
            "index": index,
            "size": size,
            "leaf_hash": hex::encode(&leaf),
            "proof": proof.iter().map(|h| hex::encode(h)).collect::<Vec<_>>(),
        }))
        .into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `GET /v1/agents`.
pub(crate) async fn agents(State(st): State<AppState>, req: Request<Body>) -> Response {
    if let Err(r) = access::require(&st, &req, Permission::Query) {
        return r;
    }
    axum::Json(st.agents_view()).into_response()
}

/// Most events one export holds.
pub const MAX_EXPORT: usize = 1_000_000;

/// `GET /v1/export`.
pub(crate) async fn export(
    State(st): State<AppState>,
    Params(p): Params<HashMap<String, String>>,
    req: Request<Body>,
) -> Response {
    let caller = match access::require(&st, &req, Permission::Prove) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(cp) = st.latest_checkpoint() else {
        return error(
            StatusCode::NOT_FOUND,
            "no checkpoint has been signed yet; try again in a few seconds",
        );
    };
    let cp_size = cp.size;
    let mut params = p.clone();
    params.remove("cursor");
    let limit = match number(&p, "limit") {
        Ok(l) => l.map_or(MAX_EXPORT, |l| (l as usize).min(MAX_EXPORT)),
        Err(r) => return r,
    };
    params.insert("limit".into(), crate::query_api::MAX_LIMIT.to_string());
    let mut query = match parse_query(&params, Timestamp::now_utc().unix_millis()) {
        Ok(q) => q,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let reader = st.reader.clone();
    let tree = st.merkle.clone();
    let filters: serde_json::Map<String, serde_json::Value> = p
        .iter()
        .filter(|(k, _)| k.as_str() != "cursor")
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let recorded_filters: std::collections::BTreeMap<String, String> = p
        .iter()
        .filter(|(k, _)| k.as_str() != "cursor")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let built = tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, u64), String> {
        let mut events = Vec::new();
        loop {
            let page = reader.query(&query).map_err(|e| e.to_string())?;
            events.extend(page.events.into_iter().filter(|e| e.leaf < cp.size));
            match page.next {
                Some(c) if events.len() < limit => query.cursor = Some(c),
                _ => break,
            }
        }
        events.truncate(limit);
        events.sort_by_key(|e| e.leaf);
        let header = BundleHeader {
            auditship_bundle: bundle::BUNDLE_VERSION,
            checkpoint: cp.clone(),
            query: serde_json::Value::Object(filters),
            events: events.len() as u64,
        };
        let count = events.len() as u64;
        let mut out = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
        out.push(b'\n');
        for e in events {
            let proof = tree
                .inclusion_proof(e.leaf, cp.size)
                .map_err(|e| e.to_string())?;
            let entry = BundleEntry {
                leaf_index: e.leaf,
                queue: auditship_core::wire::format_queue(e.queue),
                event: String::from_utf8(e.payload).map_err(|e| e.to_string())?,
                proof: proof.iter().map(|h| hex::encode(h)).collect(),
            };
            serde_json::to_writer(&mut out, &entry).map_err(|e| e.to_string())?;
            out.push(b'\n');
        }
        Ok((out, count))
    })
    .await;
    match built {
        Ok(Ok((body, count))) => {
            let mut rec = Access::new("export");
            rec.filters = recorded_filters;
            rec.results = Some(count);
            rec.details
                .insert("checkpoint_size".into(), cp_size.to_string());
            if let Err(r) = access::audit(&st, &caller, rec).await {
                return r;
            }
            ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
