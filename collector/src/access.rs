//! Who may do what, and the record of what they did.
//!
//! Every route but `/health` asks [`require`] for a [`Permission`]. The
//! caller is identified by its bearer token, or by its TLS client
//! certificate when mTLS identities are mapped to roles; the answer is the
//! [`Caller`] or the response to send: 401 when no identity was presented
//! or it is unknown, 403 when the identity's role does not carry the
//! permission. Nothing is allowed by default: a role carries exactly the
//! permissions in [`Role::allows`].
//!
//! | permission | what                                           | roles            |
//! |------------|------------------------------------------------|------------------|
//! | `Ingest`   | `POST /v1/ingest` (as the token's own agents)   | ingest           |
//! | `Witness`  | latest checkpoint, consistency proofs (hashes only; agents check the log with them) | every role |
//! | `Query`    | events, gaps, stats, agents, alerts            | reader, auditor  |
//! | `Prove`    | inclusion proofs, export bundles               | auditor          |
//! | `Admin`    | tokens, retention runs, legal holds            | admin            |
//!
//! A known caller refused with 403 is recorded too (`access_denied`, in the
//! background, at most once a minute per caller and kind of refusal; see
//! [`Denials`]), including an ingest token sending as an agent it is not
//! bound to. Witness reads (checkpoints, consistency proofs) are not
//! recorded: they reveal hashes only, and every agent makes them. Neither
//! are the status reads (`/v1/stats`, `/v1/gaps`, `/v1/agents`): counts,
//! agent ids and chain heads, no event content, and polled by monitoring.
//!
//! [`audit`] appends an access record to the collector's own chain (so it
//! is sealed, stored, Merkle-covered and signed like every event) and
//! returns once it is durable. Handlers call it before they answer: a read
//! that cannot be recorded is not served (503).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use auditship_core::{AuditEvent, Category, Outcome};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use crate::config::Role;
use crate::server::{error, AppState};

/// What a request wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Send events (as the token's own agents).
    Ingest,
    /// Read the latest checkpoint and consistency proofs.
    Witness,
    /// Query events and status.
    Query,
    /// Inclusion proofs and export bundles.
    Prove,
    /// Tokens, retention, legal holds.
    Admin,
}

impl Permission {
    /// Its name, in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Ingest => "send events",
            Permission::Witness => "read checkpoints",
            Permission::Query => "query",
            Permission::Prove => "export or request proofs",
            Permission::Admin => "administer tokens, retention and holds",
        }
    }
}

impl Role {
    /// Whether the role carries `p`.
    pub fn allows(self, p: Permission) -> bool {
        use Permission as P;
        matches!(
            (self, p),
            (_, P::Witness)
                | (Role::Ingest, P::Ingest)
                | (Role::Reader | Role::Auditor, P::Query)
                | (Role::Auditor, P::Prove)
                | (Role::Admin, P::Admin)
        )
    }
}

/// The peer address of a connection, put into every request's extensions
/// by the server.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// The identity of a request's TLS client certificate (mTLS), put into
/// every request's extensions by the server when the client presented one.
#[derive(Clone, Debug)]
pub struct ClientCert {
    /// Subject common name, if any.
    pub common_name: Option<String>,
    /// DNS and URI subject alternative names.
    pub sans: Vec<String>,
    /// SHA-256 of the certificate (DER), hex.
    pub sha256: String,
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Token name, or the mTLS identity's configured name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// How it was identified: "token" or "mtls".
    pub via: &'static str,
    /// Where the request came from.
    pub peer: Option<SocketAddr>,
    /// For ingest tokens: the agents it may send as.
    pub agents: std::collections::BTreeSet<String>,
}

impl Caller {
    /// Whether this caller may send events as `agent_id`.
    pub fn may_send_as(&self, agent_id: &str) -> bool {
        self.role == Role::Ingest && self.agents.contains(agent_id)
    }
}

/// The caller of `req`, if it may do `p`; otherwise the 401 or 403 to send.
#[allow(clippy::result_large_err)]
pub fn require<B>(st: &AppState, req: &Request<B>, p: Permission) -> Result<Caller, Response> {
    let peer = req.extensions().get::<Peer>().map(|p| p.0);
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = match auth {
        Some(a) => st.tokens().check(Some(a)).map(|g| Caller {
            agents: g.agents().clone(),
            name: g.name,
            role: g.role,
            via: "token",
            peer,
        }),
        None => req
            .extensions()
            .get::<ClientCert>()
            .and_then(|c| st.cert_identities().resolve(c))
            .map(|(name, role)| Caller {
                name,
                role,
                via: "mtls",
                peer,
                agents: Default::default(),
            }),
    };
    let Some(caller) = caller else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "missing or unknown bearer token (or client certificate)",
        ));
    };
    if !caller.role.allows(p) {
        tracing::warn!(caller = %caller.name, role = caller.role.as_str(), peer = ?peer, "refused: may not {}", p.as_str());
        record_refusal(
            st,
            &caller,
            p.as_str(),
            req.uri().path().to_string(),
            format!("role {} may not {}", caller.role.as_str(), p.as_str()),
        );
        return Err(denied(&caller, p));
    }
    Ok(caller)
}

/// Records that a known caller was refused (`access_denied`): in the
/// background (the answer is 403 either way), at most once a minute per
/// caller and kind of refusal (`what`), the next record carrying how many
/// were refused in between.
pub fn record_refusal(st: &AppState, caller: &Caller, what: &str, resource: String, why: String) {
    let Some(repeated) = st
        .denials
        .admit(&caller.name, what, std::time::Instant::now())
    else {
        return;
    };
    let mut rec = Access::new("access_denied");
    rec.resource = Some(resource);
    rec.failure = Some(why);
    if repeated > 0 {
        rec.details
            .insert("refused_since_last_record".into(), repeated.to_string());
    }
    let ev = rec.to_event(caller);
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let ingest = st.ingest.clone();
        rt.spawn(async move {
            if let Err(e) = ingest.record(ev).await {
                tracing::error!(error = %e, "cannot record a denied access");
            }
        });
    }
}

fn denied(caller: &Caller, p: Permission) -> Response {
    error(
        StatusCode::FORBIDDEN,
        format!(
            "{} {:?} (role {}) may not {}",
            caller.via,
            caller.name,
            caller.role.as_str(),
            p.as_str()
        ),
    )
}

/// How often refusals are recorded: once per caller and kind of refusal
/// (the permission asked for, not the path, which a client can vary) per
/// [`Denials::WINDOW`], the next record carrying how many were refused in
/// between. Bounds what a misconfigured client retrying a forbidden call
/// in a loop can write into the log; the table itself is bounded by the
/// number of callers (known identities) times the kinds.
#[derive(Debug, Default)]
pub struct Denials(
    std::sync::Mutex<std::collections::HashMap<(String, String), (std::time::Instant, u64)>>,
);

impl Denials {
    /// Time between two records of the same caller and kind.
    pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

    /// `Some(refusals not recorded since the last record)` when this
    /// refusal is to be recorded, `None` when it is only counted.
    pub fn admit(&self, caller: &str, what: &str, now: std::time::Instant) -> Option<u64> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() > 10_000 {
            m.retain(|_, (at, _)| now.duration_since(*at) < Self::WINDOW);
        }
        match m.get_mut(&(caller.to_string(), what.to_string())) {
            Some((at, n)) if now.duration_since(*at) < Self::WINDOW => {
                *n += 1;
                None
            }
            Some((at, n)) => {
                let repeated = *n;
                *at = now;
                *n = 0;
                Some(repeated)
            }
            None => {
                m.insert((caller.to_string(), what.to_string()), (now, 0));
                Some(0)
            }
        }
    }
}

/// One access to record.
#[derive(Debug, Default)]
pub struct Access {
    /// `action` of the record: `query`, `export`, `proof_inclusion`,
    /// `token_create`, `retention_run`, `hold_add`, ...
    pub action: &'static str,
    /// The request's parameters (filters), recorded as `fields.filter.<name>`.
    pub filters: BTreeMap<String, String>,
    /// How many results were returned, when that applies.
    pub results: Option<u64>,
    /// Other details, recorded as `fields.<name>`.
    pub details: BTreeMap<String, String>,
    /// What was acted on (`target.resource`), e.g. `token:<name>`.
    pub resource: Option<String>,
    /// Failure with a reason (the action was refused or failed).
    pub failure: Option<String>,
}

impl Access {
    /// A record of `action`.
    pub fn new(action: &'static str) -> Access {
        Access {
            action,
            ..Access::default()
        }
    }

    /// The access record as an (unsealed) event of the collector.
    pub fn to_event(&self, caller: &Caller) -> AuditEvent {
        let outcome = if self.failure.is_some() {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        let mut text = format!(
            "{} {} ({}) {}",
            caller.role.as_str(),
            caller.name,
            caller.via,
            self.action
        );
        if !self.filters.is_empty() {
            let f: Vec<String> = self
                .filters
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            text.push_str(&format!(" [{}]", f.join(" ")));
        }
        if let Some(r) = &self.resource {
            text.push_str(&format!(" {r}"));
        }
        if let Some(n) = self.results {
            text.push_str(&format!(": {n} result(s)"));
        }
        if let Some(f) = &self.failure {
            text.push_str(&format!(": failed: {f}"));
        }
        let mut ev = AuditEvent::new(Category::Access, self.action, outcome, text);
        ev.program = Some("auditship-collector".into());
        ev.actor.user = Some(caller.name.clone());
        ev.src_ip = caller.peer.map(|p| p.ip());
        ev.src_port = caller.peer.map(|p| p.port());
        ev.reason = self.failure.clone();
        ev.target.resource = self.resource.clone();
        let mut fields = BTreeMap::new();
        fields.insert("role".to_string(), caller.role.as_str().to_string());
        fields.insert("via".to_string(), caller.via.to_string());
        for (k, v) in &self.filters {
            fields.insert(format!("filter.{k}"), v.clone());
        }
        if let Some(n) = self.results {
            fields.insert("results".to_string(), n.to_string());
        }
        for (k, v) in &self.details {
            fields.insert(k.clone(), v.clone());
        }
        ev.fields = fields;
        ev
    }
}

/// Appends the access record and waits until it is durable. On failure the
/// response (503 with Retry-After) is returned: the caller must not answer
/// with the data.
#[allow(clippy::result_large_err)]
pub async fn audit(st: &AppState, caller: &Caller, access: Access) -> Result<(), Response> {
    let ev = access.to_event(caller);
    match st.ingest.record(ev).await {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::error!(error = %e, caller = %caller.name, action = access.action, "cannot record an access; refusing it");
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the access could not be recorded, so it is refused: {e}"),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(5u32));
            Err(r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_carry_exactly_their_permissions() {
        use Permission as P;
        let all = [P::Ingest, P::Witness, P::Query, P::Prove, P::Admin];
        let table = [
            (Role::Ingest, vec![P::Ingest, P::Witness]),
            (Role::Reader, vec![P::Witness, P::Query]),
            (Role::Auditor, vec![P::Witness, P::Query, P::Prove]),
            (Role::Admin, vec![P::Witness, P::Admin]),
        ];
        for (role, allowed) in table {
            for p in all {
                assert_eq!(role.allows(p), allowed.contains(&p), "{role:?} {p:?}");
            }
        }
    }

    #[test]
    fn refusals_are_recorded_once_a_minute_per_caller_and_kind_with_a_count() {
        let d = Denials::default();
        let t0 = std::time::Instant::now();
        let prove = Permission::Prove.as_str();
        assert_eq!(d.admit("bob", prove, t0), Some(0));
        for i in 1..=5 {
            assert_eq!(
                d.admit("bob", prove, t0 + std::time::Duration::from_secs(i)),
                None
            );
        }
        let admin = Permission::Admin.as_str();
        assert_eq!(d.admit("bob", admin, t0), Some(0), "another kind");
        assert_eq!(d.admit("eve", prove, t0), Some(0), "another caller");
        assert_eq!(
            d.admit("bob", prove, t0 + Denials::WINDOW),
            Some(5),
            "the next record counts the refusals in between"
        );
    }

    #[test]
    fn an_access_record_names_the_caller_the_filters_and_the_count() {
        let caller = Caller {
            name: "alice".into(),
            role: Role::Reader,
            via: "token",
            peer: Some("10.1.2.3:5555".parse().unwrap()),
            agents: Default::default(),
        };
        let mut a = Access::new("query");
        a.filters.insert("actor".into(), "root".into());
        a.results = Some(7);
        let ev = a.to_event(&caller);
        assert_eq!(ev.category, Category::Access);
        assert_eq!(ev.action, "query");
        assert_eq!(ev.outcome, Outcome::Success);
        assert_eq!(ev.actor.user.as_deref(), Some("alice"));
        assert_eq!(ev.src_ip, Some("10.1.2.3".parse().unwrap()));
        assert_eq!(ev.fields["filter.actor"], "root");
        assert_eq!(ev.fields["results"], "7");
        assert_eq!(ev.fields["role"], "reader");
        assert!(ev.raw.contains("actor=root"), "{}", ev.raw);
    }
}
