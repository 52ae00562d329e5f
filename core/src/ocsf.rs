//! Rendering an event in the Open Cybersecurity Schema Framework (OCSF 1.3).
//!
//! Each event maps to one OCSF class by its category and action:
//!
//! | native category / action            | OCSF class (class_uid)          | activity_id                          |
//! |-------------------------------------|---------------------------------|--------------------------------------|
//! | `authentication`                    | Authentication (3002)           | 1 Logon (99 Other for non-login notices) |
//! | `session`, opened / new             | Authentication (3002)           | 1 Logon                              |
//! | `session`, closed / removed / logout| Authentication (3002)           | 2 Logoff                             |
//! | `privilege`, `sudo_command`         | Process Activity (1007)         | 1 Launch                             |
//! | `system`, `process_executed`        | Process Activity (1007)         | 1 Launch                             |
//! | `privilege`, other                  | Authorize Session (3003)        | 1 Assign Privileges                  |
//! | `account`, `user_*`, `password_*`   | Account Change (3001)           | 1 Create, 6 Delete, 3 Password Change, 9 Lock, 2 Enable, 99 Other |
//! | `account`, `group_*`                | Group Management (3006)         | 6 Create, 5 Delete, 3 Add User, 4 Remove User, 99 Other |
//! | `web`                               | HTTP Activity (4002)            | by method: 1 CONNECT, 2 DELETE, 3 GET, 4 HEAD, 5 OPTIONS, 6 POST, 7 PUT, 8 TRACE, 99 other |
//! | `network`                           | Network Activity (4001)         | 4 Fail (refused / errored connections), 99 Other |
//! | `system`, `integrity`, `unknown`    | Base Event (0)                  | 99 Other (0 Unknown for `unparsed`)  |
//!
//! `type_uid` is `class_uid * 100 + activity_id`. Common attributes:
//!
//! | native field         | OCSF attribute                                   |
//! |----------------------|--------------------------------------------------|
//! | `ts`                 | `time` (epoch ms), `timezone_offset` (minutes)   |
//! | `raw_ts`             | `metadata.original_time`                         |
//! | `observed_ts`        | `metadata.logged_time` (epoch ms)                |
//! | `host`               | `device.hostname`                                |
//! | `source`             | `metadata.log_name`                              |
//! | `program`, `pid`     | `actor.process.name`, `actor.process.pid`        |
//! | `action`             | `activity_name` is the class activity; the native action is `metadata.event_code` |
//! | `outcome`            | `status_id` (1 Success, 2 Failure, 0 Unknown), `status` |
//! | `reason`             | `status_detail`                                  |
//! | `actor.user/uid`     | `actor.user.name`, `actor.user.uid`              |
//! | `target.user/uid`    | `user.name`, `user.uid` (the user acted upon)    |
//! | `target.group/gid`   | `group.name`, `group.uid`                        |
//! | `target.url`         | `http_request.url.url_string`, `.path`, `.query_string` |
//! | `target.resource`    | `service.name`                                   |
//! | `src_ip`, `src_port`, `src_addr` | `src_endpoint.ip`, `.port`, `.hostname` |
//! | `auth_method`        | `auth_protocol`                                  |
//! | `key_type`, `key_fingerprint` | `unmapped.key_type`, `unmapped.key_fingerprint` |
//! | `session_id`, `tty`  | `session.uid`, `session.terminal`                |
//! | `command`, `cwd`     | `process.cmd_line`, `unmapped.cwd`               |
//! | `user_agent`         | `http_request.user_agent`                        |
//! | `request_id`         | `http_request.uid`                               |
//! | `http.*`             | `http_request.http_method`, `.version`, `.referrer`, `.x_forwarded_for`; `http_response.code`, `.length`; `duration` (ms) |
//! | `fields`, `flags`    | `unmapped.fields`, `unmapped.flags`              |
//! | `raw`                | `raw_data`                                       |
//! | `agent_id`, `seq`, `hash`, `prev_hash` | `metadata.product.uid` is not used; `unmapped.agent_id`, `.seq`, `.hash`, `.prev_hash` |
//!
//! `severity_id` is 1 (Informational) except for failures in the
//! authentication and privilege categories, which are 3 (Medium), and
//! integrity events, which are 4 (High).

use serde_json::Value;

use crate::ecs::Doc;
use crate::event::{AuditEvent, Category, Outcome};

/// OCSF schema version this rendering follows.
pub const OCSF_VERSION: &str = "1.3.0";

/// Renders `ev` as an OCSF event.
pub fn to_ocsf(ev: &AuditEvent) -> Value {
    let (class_uid, class_name, category_uid, category_name, activity_id, activity_name) =
        class_of(ev);
    let mut d = Doc::default();
    d.set("class_uid", class_uid);
    d.set("class_name", class_name);
    d.set("category_uid", category_uid);
    d.set("category_name", category_name);
    d.set("activity_id", activity_id);
    d.set("activity_name", activity_name);
    d.set(
        "type_uid",
        u64::from(class_uid) * 100 + u64::from(activity_id),
    );
    let severity = match (ev.category, ev.outcome) {
        (Category::Integrity | Category::Alert, _) => 4,
        (Category::Authentication | Category::Privilege, Outcome::Failure) => 3,
        _ => 1,
    };
    d.set("severity_id", severity);
    let (status_id, status) = match ev.outcome {
        Outcome::Success => (1, "Success"),
        Outcome::Failure => (2, "Failure"),
        Outcome::Unknown => (0, "Unknown"),
    };
    d.set("status_id", status_id);
    d.set("status", status);
    d.opt("status_detail", &ev.reason);
    if let Some(ts) = ev.ts {
        d.set("time", ts.unix_millis());
        d.set("timezone_offset", ts.offset_secs() / 60);
    } else if let Some(ts) = ev.observed_ts {
        d.set("time", ts.unix_millis());
    }
    d.set("metadata.version", OCSF_VERSION);
    d.set("metadata.product.name", "auditship");
    d.set("metadata.product.vendor_name", "auditship");
    d.set("metadata.event_code", ev.action.as_ref());
    d.opt("metadata.original_time", &ev.raw_ts);
    d.opt("metadata.log_name", &ev.source);
    if let Some(ts) = ev.observed_ts {
        d.set("metadata.logged_time", ts.unix_millis());
    }
    d.opt("device.hostname", &ev.host);
    d.opt("actor.process.name", &ev.program);
    if let Some(pid) = ev.pid {
        d.set("actor.process.pid", pid);
    }
    d.opt("actor.user.name", &ev.actor.user);
    if let Some(uid) = ev.actor.uid {
        d.set("actor.user.uid", uid.to_string());
    }
    d.opt("user.name", &ev.target.user);
    if let Some(uid) = ev.target.uid {
        d.set("user.uid", uid.to_string());
    }
    d.opt("group.name", &ev.target.group);
    if let Some(gid) = ev.target.gid {
        d.set("group.uid", gid.to_string());
    }
    d.opt("service.name", &ev.target.resource);
    if let Some(ip) = ev.src_ip {
        d.set("src_endpoint.ip", ip.to_string());
    }
    d.opt("src_endpoint.hostname", &ev.src_addr);
    if let Some(p) = ev.src_port {
        d.set("src_endpoint.port", p);
    }
    d.opt("auth_protocol", &ev.auth_method);
    d.opt("session.uid", &ev.session_id);
    d.opt("session.terminal", &ev.tty);
    d.opt("process.cmd_line", &ev.command);
    d.opt("unmapped.cwd", &ev.cwd);
    d.opt("unmapped.key_type", &ev.key_type);
    d.opt("unmapped.key_fingerprint", &ev.key_fingerprint);
    if let Some((path, query)) = ev.target.url_path_query() {
        d.opt("http_request.url.url_string", &ev.target.url);
        d.set("http_request.url.path", path);
        if let Some(q) = query {
            d.set("http_request.url.query_string", q);
        }
    }
    d.opt("http_request.user_agent", &ev.user_agent);
    d.opt("http_request.uid", &ev.request_id);
    if let Some(h) = &ev.http {
        d.opt("http_request.http_method", &h.method);
        d.opt("http_request.version", &h.version);
        d.opt("http_request.referrer", &h.referrer);
        d.opt("http_request.url.hostname", &h.host);
        if !h.forwarded_for.is_empty() {
            d.set("http_request.x_forwarded_for", h.forwarded_for.clone());
        }
        if let Some(c) = h.status {
            d.set("http_response.code", c);
        }
        if let Some(b) = h.bytes {
            d.set("http_response.length", b);
        }
        if let Some(us) = h.duration_us {
            d.set("duration", us / 1000);
        }
        d.opt("unmapped.http_request_line", &h.request);
    }
    if !ev.fields.is_empty() {
        d.set(
            "unmapped.fields",
            serde_json::to_value(&ev.fields).unwrap_or_default(),
        );
    }
    if !ev.flags.is_empty() {
        d.set("unmapped.flags", ev.flags.names().collect::<Vec<_>>());
    }
    d.opt("unmapped.agent_id", &ev.agent_id);
    if let Some(seq) = ev.seq {
        d.set("unmapped.seq", seq);
    }
    d.opt("unmapped.hash", &ev.hash);
    d.opt("unmapped.prev_hash", &ev.prev_hash);
    d.set("raw_data", ev.raw.as_str());
    Value::Object(d.0)
}

type Class = (u32, &'static str, u32, &'static str, u32, &'static str);

fn class_of(ev: &AuditEvent) -> Class {
    const IAM: (u32, &str) = (3, "Identity & Access Management");
    let a = ev.action.as_ref();
    let has = |s: &str| a.contains(s);
    match ev.category {
        Category::Authentication | Category::Session => {
            let (id, name) = if has("closed") || has("removed") || has("logout") {
                (2, "Logoff")
            } else if ev.category == Category::Session || a.ends_with("_login") || a == "su" {
                (1, "Logon")
            } else {
                (99, "Other")
            };
            (3002, "Authentication", IAM.0, IAM.1, id, name)
        }
        Category::Privilege if a == "sudo_command" => {
            (1007, "Process Activity", 1, "System Activity", 1, "Launch")
        }
        Category::Privilege => (
            3003,
            "Authorize Session",
            IAM.0,
            IAM.1,
            1,
            "Assign Privileges",
        ),
        Category::Account if a.starts_with("group") => {
            let (id, name) = if a.ends_with("_created") {
                (6, "Create")
            } else if a.ends_with("_deleted") {
                (5, "Delete")
            } else if has("member_added") {
                (3, "Add User")
            } else if has("member_removed") {
                (4, "Remove User")
            } else {
                (99, "Other")
            };
            (3006, "Group Management", IAM.0, IAM.1, id, name)
        }
        Category::Account => {
            let (id, name) = if a.ends_with("_created") {
                (1, "Create")
            } else if a.ends_with("_deleted") {
                (6, "Delete")
            } else if a.starts_with("password") {
                (3, "Password Change")
            } else if a.ends_with("_locked") {
                (9, "Lock")
            } else if a.ends_with("_unlocked") {
                (2, "Enable")
            } else {
                (99, "Other")
            };
            (3001, "Account Change", IAM.0, IAM.1, id, name)
        }
        Category::Web => {
            let method = ev.http.as_ref().and_then(|h| h.method.as_deref());
            let (id, name) = match method {
                Some("CONNECT") => (1, "Connect"),
                Some("DELETE") => (2, "Delete"),
                Some("GET") => (3, "Get"),
                Some("HEAD") => (4, "Head"),
                Some("OPTIONS") => (5, "Options"),
                Some("POST") => (6, "Post"),
                Some("PUT") => (7, "Put"),
                Some("TRACE") => (8, "Trace"),
                _ => (99, "Other"),
            };
            (4002, "HTTP Activity", 4, "Network Activity", id, name)
        }
        Category::Network => {
            let (id, name) = if ev.outcome == Outcome::Failure {
                (4, "Fail")
            } else {
                (99, "Other")
            };
            (4001, "Network Activity", 4, "Network Activity", id, name)
        }
        Category::System if a == "process_executed" => {
            (1007, "Process Activity", 1, "System Activity", 1, "Launch")
        }
        Category::System
        | Category::Integrity
        | Category::Access
        | Category::Alert
        | Category::Unknown => {
            let (id, name) = if ev.is_unparsed() {
                (0, "Unknown")
            } else {
                (99, "Other")
            };
            (0, "Base Event", 0, "Uncategorized", id, name)
        }
    }
}
