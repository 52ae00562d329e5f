//! Rendering an event in the Elastic Common Schema (ECS 8.x).
//!
//! The rendering is nested JSON, as Elasticsearch stores it. Absent values
//! are omitted. Where Elastic's own Filebeat modules (system/auth, nginx,
//! apache) emit a field for a kind of line, this rendering emits the same
//! field with the same meaning, so dashboards and detection rules built on
//! those modules work on auditship's output.
//!
//! | native field        | ECS field                                                    |
//! |---------------------|--------------------------------------------------------------|
//! | `ts`                | `@timestamp` (same instant, UTC), `event.timezone` (offset)  |
//! | `observed_ts`       | `event.created`                                              |
//! | `raw_ts`            | `auditship.raw_ts`                                           |
//! | `host`              | `host.name`, `host.hostname`, `related.hosts`                |
//! | `source`            | `log.file.path`                                              |
//! | `program`, `pid`    | `process.name`, `process.pid`                                |
//! | `category`          | `event.category` (see below), `event.type`                   |
//! | `action`            | `event.action`                                               |
//! | `outcome`           | `event.outcome` (`unknown` is omitted)                       |
//! | `reason`            | `event.reason`                                               |
//! | `actor.user/uid`    | `user.name`, `user.id`, `related.user`                       |
//! | `target.user/uid`   | privilege, session and auditd system calls: `user.effective.name/id`; account: `user.target.name/id` (and `user.name/id` when no actor is known, as Filebeat does) |
//! | `target.group/gid`  | `group.name`, `group.id`                                     |
//! | `target.resource`   | `auditship.target.resource`                                  |
//! | `target.url`        | `url.original`, `url.path`, `url.query`                      |
//! | `src_ip`            | `source.ip`, `source.address`, `related.ip`                  |
//! | `src_addr`          | `source.address`, `source.domain` (host names)               |
//! | `src_port`          | `source.port`                                                |
//! | `auth_method`       | `auditship.auth.method` (Filebeat: `system.auth.ssh.method`) |
//! | `key_type`, `key_fingerprint` | `auditship.auth.key_type`, `auditship.auth.key_fingerprint` |
//! | `session_id`        | `auditship.session_id`                                       |
//! | `tty`               | `auditship.tty` (Filebeat: `system.auth.sudo.tty`)           |
//! | `cwd`               | `process.working_directory`                                  |
//! | `command`           | `process.command_line`                                       |
//! | `user_agent`        | `user_agent.original`                                        |
//! | `request_id`        | `http.request.id`                                            |
//! | `http.method`       | `http.request.method`                                        |
//! | `http.version`      | `http.version`                                               |
//! | `http.status`       | `http.response.status_code`                                  |
//! | `http.bytes`        | `http.response.body.bytes`                                   |
//! | `http.referrer`     | `http.request.referrer`                                      |
//! | `http.host`         | `url.domain`                                                 |
//! | `http.forwarded_for`| `auditship.http.forwarded_for`, and each IP in `related.ip`  |
//! | `http.duration_us`  | `event.duration` (nanoseconds)                               |
//! | `http.request`      | `auditship.http.request`                                     |
//! | `fields`            | `labels`                                                     |
//! | `flags`             | `tags`                                                       |
//! | `raw`               | `event.original`, `message`                                  |
//! | `agent_id`, `seq`, `hash`, `prev_hash` | `auditship.agent_id`, `auditship.seq`, `event.hash`, `auditship.prev_hash` |
//!
//! Categories: `authentication` → `["authentication"]`, plus `"session"` for a
//! successful login as Filebeat does; `session` → `["session"]`; `privilege`
//! → `["process"]`; `account` → `["iam"]`; `web` → `["web"]`; `network` →
//! `["network"]`; `system` → `["host"]`, except `process_executed` (auditd)
//! → `["process"]` with type `["start"]`; `integrity` → `["configuration"]`;
//! `unknown` → no category. `event.kind` is `event`, or `alert` for
//! integrity events.

use serde_json::{Map, Value};

use crate::event::{AuditEvent, Category, Outcome};

/// Renders `ev` as a nested ECS document.
pub fn to_ecs(ev: &AuditEvent) -> Value {
    let mut d = Doc::default();
    if let Some(ts) = ev.ts {
        d.set("@timestamp", ts.to_utc().to_string());
        d.set("event.timezone", offset_string(ts.offset_secs()));
    }
    if let Some(ts) = ev.observed_ts {
        d.set("event.created", ts.to_utc().to_string());
    }
    d.opt("auditship.raw_ts", &ev.raw_ts);
    if let Some(h) = &ev.host {
        d.set("host.name", h.as_str());
        d.set("host.hostname", h.as_str());
        d.related("related.hosts", h);
    }
    d.opt("log.file.path", &ev.source);
    d.opt("process.name", &ev.program);
    if let Some(pid) = ev.pid {
        d.set("process.pid", pid);
    }
    let (kind, categories, types) = classify(ev);
    d.set("event.kind", kind);
    if !categories.is_empty() {
        d.set("event.category", categories);
        d.set("event.type", types);
    }
    d.set("event.action", ev.action.as_ref());
    if ev.outcome != Outcome::Unknown {
        d.set("event.outcome", ev.outcome.as_str());
    }
    d.opt("event.reason", &ev.reason);

    if let Some(u) = &ev.actor.user {
        d.set("user.name", u.as_str());
        d.related("related.user", u);
    }
    if let Some(uid) = ev.actor.uid {
        d.set("user.id", uid.to_string());
    }
    let target_prefix = match ev.category {
        Category::Privilege | Category::Session => "user.effective",
        // auditd system calls: the target user is the effective one (sudo).
        Category::System if matches!(ev.action.as_ref(), "process_executed" | "syscall") => {
            "user.effective"
        }
        _ => "user.target",
    };
    if let Some(u) = &ev.target.user {
        d.set(&format!("{target_prefix}.name"), u.as_str());
        d.related("related.user", u);
        if ev.category == Category::Account && ev.actor.user.is_none() {
            d.set("user.name", u.as_str());
        }
    }
    if let Some(uid) = ev.target.uid {
        d.set(&format!("{target_prefix}.id"), uid.to_string());
        if ev.category == Category::Account && ev.actor.uid.is_none() {
            d.set("user.id", uid.to_string());
        }
    }
    d.opt("group.name", &ev.target.group);
    if let Some(gid) = ev.target.gid {
        d.set("group.id", gid.to_string());
    }
    d.opt("auditship.target.resource", &ev.target.resource);
    if let Some((path, query)) = ev.target.url_path_query() {
        d.opt("url.original", &ev.target.url);
        d.set("url.path", path);
        if let Some(q) = query {
            d.set("url.query", q);
        }
    }

    if let Some(ip) = ev.src_ip {
        d.set("source.ip", ip.to_string());
        d.set("source.address", ip.to_string());
        d.related("related.ip", &ip.to_string());
    } else if let Some(addr) = &ev.src_addr {
        d.set("source.address", addr.as_str());
        if addr != "unix:" {
            d.set("source.domain", addr.as_str());
        }
    }
    if let Some(p) = ev.src_port {
        d.set("source.port", p);
    }
    d.opt("auditship.auth.method", &ev.auth_method);
    d.opt("auditship.auth.key_type", &ev.key_type);
    d.opt("auditship.auth.key_fingerprint", &ev.key_fingerprint);
    d.opt("auditship.session_id", &ev.session_id);
    d.opt("auditship.tty", &ev.tty);
    d.opt("process.working_directory", &ev.cwd);
    d.opt("process.command_line", &ev.command);
    d.opt("user_agent.original", &ev.user_agent);
    d.opt("http.request.id", &ev.request_id);

    if let Some(h) = &ev.http {
        d.opt("http.request.method", &h.method);
        d.opt("http.version", &h.version);
        if let Some(s) = h.status {
            d.set("http.response.status_code", s);
        }
        if let Some(b) = h.bytes {
            d.set("http.response.body.bytes", b);
        }
        d.opt("http.request.referrer", &h.referrer);
        d.opt("url.domain", &h.host);
        if !h.forwarded_for.is_empty() {
            d.set("auditship.http.forwarded_for", h.forwarded_for.clone());
            for a in &h.forwarded_for {
                if let Ok(ip) = a.parse::<std::net::IpAddr>() {
                    d.related("related.ip", &ip.to_string());
                }
            }
        }
        if let Some(us) = h.duration_us {
            d.set("event.duration", us.saturating_mul(1000));
        }
        d.opt("auditship.http.request", &h.request);
    }
    if !ev.fields.is_empty() {
        let labels: Map<String, Value> = ev
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        d.set("labels", Value::Object(labels));
    }
    if !ev.flags.is_empty() {
        d.set("tags", ev.flags.names().collect::<Vec<_>>());
    }
    d.set("event.original", ev.raw.as_str());
    d.set("message", ev.raw.as_str());
    d.opt("auditship.agent_id", &ev.agent_id);
    if let Some(seq) = ev.seq {
        d.set("auditship.seq", seq);
    }
    d.opt("event.hash", &ev.hash);
    d.opt("auditship.prev_hash", &ev.prev_hash);
    d.set("ecs.version", "8.11.0");
    Value::Object(d.0)
}

fn classify(ev: &AuditEvent) -> (&'static str, Vec<&'static str>, Vec<&'static str>) {
    let a = ev.action.as_ref();
    match ev.category {
        Category::Authentication => {
            let mut c = vec!["authentication"];
            if ev.outcome == Outcome::Success && a.ends_with("_login") {
                c.push("session");
            }
            ("event", c, vec!["info"])
        }
        Category::Session => {
            let t = if a.contains("closed") || a.contains("removed") || a.contains("logout") {
                "end"
            } else {
                "start"
            };
            ("event", vec!["session"], vec![t])
        }
        Category::Privilege => ("event", vec!["process"], vec!["start"]),
        Category::Account => {
            let kind = if a.starts_with("group") {
                "group"
            } else {
                "user"
            };
            let change = if a.ends_with("_created") {
                "creation"
            } else if a.ends_with("_deleted") {
                "deletion"
            } else {
                "change"
            };
            ("event", vec!["iam"], vec![kind, change])
        }
        Category::Web => ("event", vec!["web"], vec!["access"]),
        Category::Network => ("event", vec!["network"], vec!["connection"]),
        Category::System if a == "process_executed" => ("event", vec!["process"], vec!["start"]),
        Category::System => ("event", vec!["host"], vec!["info"]),
        Category::Integrity => ("alert", vec!["configuration"], vec!["info"]),
        Category::Access => ("event", vec!["database"], vec!["access"]),
        Category::Alert => ("alert", vec!["intrusion_detection"], vec!["info"]),
        Category::Unknown => ("event", vec![], vec![]),
    }
}

/// `+HH:MM` or `-HH:MM` for an offset in seconds.
pub(crate) fn offset_string(offset: i32) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let a = offset.unsigned_abs();
    format!("{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
}

/// A JSON object built by dotted paths.
#[derive(Default)]
pub(crate) struct Doc(pub(crate) Map<String, Value>);

impl Doc {
    pub(crate) fn set(&mut self, path: &str, v: impl Into<Value>) {
        let mut cur = &mut self.0;
        let mut parts = path.split('.').peekable();
        while let Some(p) = parts.next() {
            if parts.peek().is_none() {
                cur.insert(p.to_string(), v.into());
                return;
            }
            let next = cur
                .entry(p.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !next.is_object() {
                *next = Value::Object(Map::new());
            }
            cur = next.as_object_mut().expect("just made an object");
        }
    }

    pub(crate) fn opt(&mut self, path: &str, v: &Option<String>) {
        if let Some(v) = v {
            self.set(path, v.as_str());
        }
    }

    fn related(&mut self, path: &str, v: &str) {
        let (head, leaf) = path.split_once('.').expect("related paths are dotted");
        let arr = self
            .0
            .entry(head.to_string())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("related is an object")
            .entry(leaf.to_string())
            .or_insert_with(|| Value::Array(vec![]));
        if let Value::Array(a) = arr {
            if !a.iter().any(|x| x == v) {
                a.push(Value::from(v));
            }
        }
    }
}
