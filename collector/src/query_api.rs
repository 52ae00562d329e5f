//! `GET /v1/events`: query the store over HTTP.
//!
//! Parameters (all optional, all must match):
//!
//! | name       | meaning                                                        |
//! |------------|----------------------------------------------------------------|
//! | `since`    | at or after: RFC 3339 (`2026-11-22T08:00:00Z`), or an age (`90s`, `15m`, `1h`, `7d`, `2w`) |
//! | `until`    | before: same forms                                             |
//! | `host`     | `host` equals                                                  |
//! | `actor`    | `actor.user` equals                                            |
//! | `action`   | `action` equals (`ssh_login`, `sudo_command`, …)               |
//! | `category` | `category` equals (`authentication`, `privilege`, `web`, …)    |
//! | `outcome`  | `success`, `failure` or `unknown`                              |
//! | `src`      | `src_ip` is this address or lies in this CIDR block            |
//! | `q`        | the raw line contains this text (case-sensitive)               |
//! | `limit`    | at most this many events (default 100, at most 10000)          |
//! | `cursor`   | continue after the page that returned it                       |
//!
//! The answer is NDJSON, one stored event per line exactly as the agent sent
//! it, newest (most recently stored) first. When more may match, the
//! `X-Next-Cursor` header holds the cursor for the next page. A bad
//! parameter gets 400 naming it. Requires the `Query` permission (reader or
//! auditor); every query is recorded as an access event (who, the
//! parameters, how many events were returned) before it is answered.

use std::collections::HashMap;

use auditship_core::cidr::IpNet;
use auditship_core::Timestamp;
use axum::body::Body;
use axum::extract::{Query as Params, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::access::{self, Access, Permission};
use crate::server::{error, AppState};
use crate::store::{Cursor, Query};

/// Header carrying the next page's cursor.
pub const NEXT_CURSOR: &str = "x-next-cursor";

/// Largest page.
pub const MAX_LIMIT: usize = 10_000;

/// The handler.
pub(crate) async fn events(
    State(st): State<AppState>,
    Params(params): Params<HashMap<String, String>>,
    req: Request<Body>,
) -> Response {
    let caller = match access::require(&st, &req, Permission::Query) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let query = match parse_query(&params, Timestamp::now_utc().unix_millis()) {
        Ok(q) => q,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let reader = st.reader.clone();
    let page = match tokio::task::spawn_blocking(move || reader.query(&query)).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let mut rec = Access::new("query");
    rec.filters = params.into_iter().collect();
    rec.results = Some(page.events.len() as u64);
    if let Err(r) = access::audit(&st, &caller, rec).await {
        return r;
    }
    let mut body = Vec::with_capacity(page.events.iter().map(|e| e.payload.len() + 1).sum());
    for e in &page.events {
        body.extend_from_slice(&e.payload);
        body.push(b'\n');
    }
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    if let Some(c) = page.next {
        if let Ok(v) = HeaderValue::from_str(&c.encode()) {
            h.insert(NEXT_CURSOR, v);
        }
    }
    r
}

/// Builds a store query from URL parameters; `now` (Unix ms) anchors ages.
pub fn parse_query(p: &HashMap<String, String>, now: i64) -> Result<Query, String> {
    const KNOWN: [&str; 11] = [
        "since", "until", "host", "actor", "action", "category", "outcome", "src", "q", "limit",
        "cursor",
    ];
    if let Some(k) = p.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(format!(
            "unknown parameter {k:?}; known: {}",
            KNOWN.join(", ")
        ));
    }
    let time = |k: &str| -> Result<Option<i64>, String> {
        p.get(k)
            .map(|v| parse_time(v, now).map_err(|m| format!("{k}: {m}")))
            .transpose()
    };
    let text = |k: &str| p.get(k).filter(|v| !v.is_empty()).cloned();
    let limit = match p.get("limit") {
        None => 100,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| format!("limit: {v:?} is not a number from 1 to {MAX_LIMIT}"))?,
    };
    let outcome = text("outcome");
    if let Some(o) = &outcome {
        if !["success", "failure", "unknown"].contains(&o.as_str()) {
            return Err(format!("outcome: {o:?} is not success, failure or unknown"));
        }
    }
    Ok(Query {
        since_millis: time("since")?,
        until_millis: time("until")?,
        host: text("host"),
        actor: text("actor"),
        action: text("action"),
        category: text("category"),
        outcome,
        src: p
            .get("src")
            .map(|s| IpNet::parse(s).map_err(|m| format!("src: {m}")))
            .transpose()?,
        text: text("q"),
        limit,
        cursor: p
            .get("cursor")
            .map(|c| Cursor::decode(c).ok_or_else(|| format!("cursor: {c:?} is not a cursor")))
            .transpose()?,
    })
}

/// RFC 3339, or an age before `now` such as `90s`, `15m`, `1h`, `7d`, `2w`.
pub fn parse_time(v: &str, now: i64) -> Result<i64, String> {
    let v = v.trim();
    if let Some((t, _)) = Timestamp::parse_rfc3339(v, 0) {
        if v.len() >= 20 {
            return Ok(t.unix_millis());
        }
    }
    let (num, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("{v:?} is neither RFC 3339 nor an age like 15m, 1h, 7d"))?;
    let ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(format!("{v:?}: the unit must be s, m, h, d or w")),
    };
    Ok(now - n.saturating_mul(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parameters_become_a_query() {
        let now = 1_800_000_000_000;
        let q = parse_query(
            &params(&[
                ("since", "1h"),
                ("until", "2026-11-22T10:00:00+01:00"),
                ("actor", "alice"),
                ("outcome", "failure"),
                ("src", "10.0.0.0/8"),
                ("q", "Invalid user"),
                ("limit", "5"),
                ("cursor", "3.17"),
            ]),
            now,
        )
        .unwrap();
        assert_eq!(q.since_millis, Some(now - 3_600_000));
        assert_eq!(q.until_millis, Some(1_795_338_000_000));
        assert_eq!(q.actor.as_deref(), Some("alice"));
        assert!(q.src.unwrap().contains("10.1.2.3".parse().unwrap()));
        assert_eq!(q.limit, 5);
        assert_eq!(
            q.cursor,
            Some(Cursor {
                segment: 3,
                index: 17
            })
        );
        assert_eq!(parse_query(&params(&[]), now).unwrap().limit, 100);
    }

    #[test]
    fn bad_parameters_are_named() {
        for (kv, want) in [
            (("since", "yesterday"), "since:"),
            (("limit", "0"), "limit:"),
            (("src", "10.0.0.1/8"), "src:"),
            (("outcome", "ok"), "outcome:"),
            (("cursor", "x"), "cursor:"),
            (("hots", "a"), "unknown parameter \"hots\""),
        ] {
            let e = parse_query(&params(&[kv]), 0).unwrap_err();
            assert!(e.starts_with(want), "{kv:?}: {e}");
        }
    }
}
