//! The admin endpoints for tokens.
//!
//! | route                        | permission | answer |
//! |------------------------------|------------|--------|
//! | `GET /v1/tokens`             | Admin      | every token (config and managed, revoked too): name, role, agents, source, who created or revoked it and when; never a secret or its hash |
//! | `POST /v1/tokens`            | Admin      | body `{"name":…,"role":…,"agents":[…]}`; creates a managed token and answers its secret, once: `{"name":…,"role":…,"agents":[…],"token":"ast_…"}` |
//! | `DELETE /v1/tokens/{name}`   | Admin      | revokes a managed token at once; config tokens are refused (409) |
//!
//! Each is recorded as an access event (`token_list`, `token_create`,
//! `token_revoke`) naming the admin and the token. A creation whose record
//! cannot be written is undone and refused (503); a revocation is kept
//! even then (failing safe), and the answer (200) says
//! `"recorded": false`.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::access::{self, Access, Permission};
use crate::config::Role;
use crate::server::{error, AppState};
use crate::token_store::TokenError;

/// Body of `POST /v1/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Agents (ingest only).
    #[serde(default)]
    pub agents: Vec<String>,
}

fn refused(e: TokenError) -> Response {
    let status = match e {
        TokenError::Invalid(_) => StatusCode::BAD_REQUEST,
        TokenError::Conflict(_) => StatusCode::CONFLICT,
        TokenError::NotFound(_) => StatusCode::NOT_FOUND,
        TokenError::Io { .. } => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, e.to_string())
}

/// `GET /v1/tokens`.
pub(crate) async fn list(State(st): State<AppState>, req: Request<Body>) -> Response {
    let caller = match access::require(&st, &req, Permission::Admin) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let list = st.tokens().list();
    let mut rec = Access::new("token_list");
    rec.results = Some(list.len() as u64);
    if let Err(r) = access::audit(&st, &caller, rec).await {
        return r;
    }
    axum::Json(list).into_response()
}

/// `POST /v1/tokens`.
pub(crate) async fn create(State(st): State<AppState>, req: Request<Body>) -> Response {
    let caller = match access::require(&st, &req, Permission::Admin) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body = match axum::body::to_bytes(req.into_body(), 64 << 10).await {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("cannot read body: {e}")),
    };
    let want: CreateToken = match serde_json::from_slice(&body) {
        Ok(w) => w,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("body: {e} (expected {{\"name\":…,\"role\":…,\"agents\":[…]}})"),
            )
        }
    };
    let secret = match st
        .tokens()
        .create(&want.name, want.role, want.agents.clone(), &caller.name)
    {
        Ok(s) => s,
        Err(e) => return refused(e),
    };
    let hash = auditship_core::hex::encode(&crate::auth::sha256(secret.as_bytes()));
    let mut rec = Access::new("token_create");
    rec.resource = Some(format!("token:{}", want.name));
    rec.details
        .insert("token_role".into(), want.role.as_str().into());
    if !want.agents.is_empty() {
        rec.details
            .insert("token_agents".into(), want.agents.join(","));
    }
    if let Err(r) = access::audit(&st, &caller, rec).await {
        if let Err(e) = st.tokens().undo_create(&hash) {
            tracing::error!(error = %e, token = %want.name, "cannot undo an unrecorded token creation");
        }
        return r;
    }
    tracing::info!(admin = %caller.name, token = %want.name, role = want.role.as_str(), "token created");
    axum::Json(serde_json::json!({
        "name": want.name,
        "role": want.role,
        "agents": want.agents,
        "token": secret,
    }))
    .into_response()
}

/// `DELETE /v1/tokens/{name}`.
pub(crate) async fn revoke(
    State(st): State<AppState>,
    Path(name): Path<String>,
    req: Request<Body>,
) -> Response {
    let caller = match access::require(&st, &req, Permission::Admin) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let info = match st.tokens().revoke(&name, &caller.name) {
        Ok(i) => i,
        Err(e) => return refused(e),
    };
    let mut rec = Access::new("token_revoke");
    rec.resource = Some(format!("token:{name}"));
    rec.details
        .insert("token_role".into(), info.role.as_str().into());
    let recorded = access::audit(&st, &caller, rec).await.is_ok();
    if recorded {
        tracing::info!(admin = %caller.name, token = %name, "token revoked");
    } else {
        tracing::error!(admin = %caller.name, token = %name, "token revoked, but the revocation could not be recorded");
    }
    let mut v = serde_json::to_value(&info).unwrap_or_default();
    v["recorded"] = serde_json::Value::Bool(recorded);
    axum::Json(v).into_response()
}
