//! JSON lines from applications that write their own audit events.
//!
//! Each line is one JSON object. A [`JsonMapping`] says which of the
//! application's fields (by path, `a.b.c` for nesting) fills which schema
//! field:
//!
//! ```toml
//! [inputs.app.parser.mapping]
//! "timestamp"   = "ts"
//! "user.login"  = "actor.user"
//! "client_ip"   = "src_ip"
//! "event_type"  = "action"
//! "result"      = "outcome"
//! ```
//!
//! Schema fields that can be mapped: `ts`, `host`, `program`, `pid`,
//! `category`, `action`, `outcome`, `reason`, `actor.user`, `actor.uid`,
//! `target.user`, `target.uid`, `target.group`, `target.gid`,
//! `target.resource`, `target.url`, `src_ip`, `src_port`, `user_agent`,
//! `request_id`, `session_id`, `tty`, `cwd`, `command`, `auth_method`,
//! `http.method`, `http.status`, `http.bytes`, and `fields.NAME`.
//!
//! After the explicit mapping, any remaining top-level key that is itself a
//! schema field name (`action`, `actor` with `user` inside, `src_ip`, …) is
//! applied as is, so events already in the native shape need no mapping.
//! Every other value is kept in `fields` under its dotted path (non-string
//! values as compact JSON), so nothing the application wrote is lost. A value
//! that does not fit its schema field (a port that is not a number) is kept
//! in `fields` too. A line that is not a JSON object is `unparsed`.
//!
//! Value conversions: `ts` accepts RFC 3339 strings and epoch seconds or
//! milliseconds (numbers above 10^11 are milliseconds); `outcome` accepts
//! `success`/`failure`/`unknown` and common synonyms (`ok`, `true`,
//! `allowed`, `fail`, `failed`, `denied`, `error`, `false`…); `category`
//! accepts the schema's names; `src_ip` that is not an IP goes to `src_addr`.

use std::collections::BTreeMap;

use auditship_core::{AuditEvent, Category, Outcome, Timestamp};
use serde_json::{Map, Value};

/// A compiled mapping from application field paths to schema fields.
#[derive(Clone, Debug, Default)]
pub struct JsonMapping {
    rules: Vec<(Vec<String>, SchemaField)>,
}

/// A schema field a JSON value can be mapped to.
#[derive(Clone, Debug, PartialEq, Eq)]
enum SchemaField {
    Named(&'static str),
    Field(String),
}

const NAMES: &[&str] = &[
    "ts",
    "host",
    "program",
    "pid",
    "category",
    "action",
    "outcome",
    "reason",
    "actor.user",
    "actor.uid",
    "target.user",
    "target.uid",
    "target.group",
    "target.gid",
    "target.resource",
    "target.url",
    "src_ip",
    "src_port",
    "user_agent",
    "request_id",
    "session_id",
    "tty",
    "cwd",
    "command",
    "auth_method",
    "http.method",
    "http.status",
    "http.bytes",
];

impl JsonMapping {
    /// Compiles `path -> schema field` pairs; an unknown schema field is an error
    /// naming it.
    pub fn new(pairs: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut rules = Vec::new();
        for (path, field) in pairs {
            let target = if let Some(name) = field.strip_prefix("fields.") {
                SchemaField::Field(name.to_string())
            } else {
                let name = NAMES.iter().find(|n| **n == field).ok_or_else(|| {
                    format!(
                        "JSON mapping for {path:?}: unknown schema field {field:?} (known: {}, fields.NAME)",
                        NAMES.join(", ")
                    )
                })?;
                SchemaField::Named(name)
            };
            rules.push((path.split('.').map(str::to_string).collect(), target));
        }
        Ok(JsonMapping { rules })
    }
}

/// Parses one JSON line into an event, or `None` if it is not a JSON object.
pub fn parse(line: &str, mapping: &JsonMapping) -> Option<AuditEvent> {
    let Value::Object(mut obj) = serde_json::from_str::<Value>(line).ok()? else {
        return None;
    };
    let mut ev = AuditEvent::new(Category::Unknown, "event", Outcome::Unknown, String::new());
    for (path, field) in &mapping.rules {
        if let Some(v) = take_path(&mut obj, path) {
            apply(&mut ev, field, &path.join("."), v);
        }
    }
    // Native-shaped keys.
    let keys: Vec<String> = obj.keys().cloned().collect();
    for key in keys {
        if let Some(name) = NAMES.iter().find(|n| **n == key) {
            let v = obj.remove(&key).unwrap_or(Value::Null);
            apply(&mut ev, &SchemaField::Named(name), &key, v);
        } else if matches!(key.as_str(), "actor" | "target" | "http") {
            if let Some(Value::Object(inner)) = obj.get_mut(&key) {
                let sub: Vec<String> = inner.keys().cloned().collect();
                for s in sub {
                    let full = format!("{key}.{s}");
                    if let Some(name) = NAMES.iter().find(|n| **n == full) {
                        let v = inner.remove(&s).unwrap_or(Value::Null);
                        apply(&mut ev, &SchemaField::Named(name), &full, v);
                    }
                }
                if inner.is_empty() {
                    obj.remove(&key);
                }
            }
        }
    }
    flatten_into(&mut ev.fields, String::new(), Value::Object(obj));
    Some(ev)
}

fn take_path(obj: &mut Map<String, Value>, path: &[String]) -> Option<Value> {
    // A literal dotted key wins over nesting.
    let joined = path.join(".");
    if let Some(v) = obj.remove(&joined) {
        return Some(v);
    }
    let (first, rest) = path.split_first()?;
    if rest.is_empty() {
        return obj.remove(first);
    }
    let inner = obj.get_mut(first)?.as_object_mut()?;
    let v = take_path(inner, rest);
    if inner.is_empty() {
        obj.remove(first);
    }
    v
}

fn flatten_into(out: &mut BTreeMap<String, String>, prefix: String, v: Value) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_into(out, key, v);
            }
        }
        Value::Null => {}
        Value::String(s) => {
            out.insert(prefix, s);
        }
        other => {
            out.insert(prefix, other.to_string());
        }
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn number<T: TryFrom<u64>>(v: &Value) -> Option<T> {
    let n = match v {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    T::try_from(n).ok()
}

fn timestamp(v: &Value) -> Option<Timestamp> {
    match v {
        Value::String(s) => Timestamp::parse_rfc3339(s, 0).map(|(t, _)| t),
        Value::Number(n) => {
            let f = n.as_f64()?;
            let (secs, nanos) = if f.abs() > 1e11 {
                let ms = n.as_i64().unwrap_or(f as i64);
                (
                    ms.div_euclid(1000),
                    (ms.rem_euclid(1000) * 1_000_000) as u32,
                )
            } else {
                let secs = f.floor();
                (
                    secs as i64,
                    ((f - secs) * 1e9).round().min(999_999_999.0) as u32,
                )
            };
            Timestamp::new(secs, nanos, 0)
        }
        _ => None,
    }
}

fn outcome(s: &str) -> Option<Outcome> {
    Some(match s.to_ascii_lowercase().as_str() {
        "success" | "succeeded" | "successful" | "ok" | "true" | "allowed" | "allow" | "pass"
        | "passed" | "granted" => Outcome::Success,
        "failure" | "failed" | "fail" | "false" | "denied" | "deny" | "error" | "rejected"
        | "blocked" => Outcome::Failure,
        "unknown" => Outcome::Unknown,
        _ => return None,
    })
}

fn category(s: &str) -> Option<Category> {
    serde_json::from_value(Value::String(s.to_ascii_lowercase())).ok()
}

/// Applies `v` to `field`; a value that does not fit goes to `fields[path]`.
fn apply(ev: &mut AuditEvent, field: &SchemaField, path: &str, v: Value) {
    let ok = match field {
        SchemaField::Field(name) => {
            if let Some(t) = text(&v).or_else(|| Some(v.to_string()).filter(|_| !v.is_null())) {
                ev.fields.insert(name.clone(), t);
            }
            true
        }
        SchemaField::Named(name) => apply_named(ev, name, &v),
    };
    if !ok && !v.is_null() {
        flatten_into(&mut ev.fields, path.to_string(), v);
    }
}

fn apply_named(ev: &mut AuditEvent, name: &str, v: &Value) -> bool {
    fn set(slot: &mut Option<String>, v: &Value) -> bool {
        *slot = text(v);
        slot.is_some()
    }
    fn set_num<T: TryFrom<u64>>(slot: &mut Option<T>, v: &Value) -> bool {
        *slot = number(v);
        slot.is_some()
    }
    match name {
        "ts" => {
            ev.ts = timestamp(v);
            if ev.ts.is_some() {
                ev.raw_ts = text(v);
            }
            ev.ts.is_some()
        }
        "host" => set(&mut ev.host, v),
        "program" => set(&mut ev.program, v),
        "pid" => set_num(&mut ev.pid, v),
        "category" => match text(v).as_deref().and_then(category) {
            Some(c) => {
                ev.category = c;
                true
            }
            None => false,
        },
        "action" => match text(v) {
            Some(a) if !a.is_empty() => {
                ev.action = a.into();
                true
            }
            _ => false,
        },
        "outcome" => match text(v).as_deref().and_then(outcome) {
            Some(o) => {
                ev.outcome = o;
                true
            }
            None => false,
        },
        "reason" => set(&mut ev.reason, v),
        "actor.user" => set(&mut ev.actor.user, v),
        "actor.uid" => set_num(&mut ev.actor.uid, v),
        "target.user" => set(&mut ev.target.user, v),
        "target.uid" => set_num(&mut ev.target.uid, v),
        "target.group" => set(&mut ev.target.group, v),
        "target.gid" => set_num(&mut ev.target.gid, v),
        "target.resource" => set(&mut ev.target.resource, v),
        "target.url" => set(&mut ev.target.url, v),
        "src_ip" => match text(v) {
            Some(s) => {
                match s.parse() {
                    Ok(ip) => ev.src_ip = Some(ip),
                    Err(_) => ev.src_addr = Some(s),
                }
                true
            }
            None => false,
        },
        "src_port" => set_num(&mut ev.src_port, v),
        "user_agent" => set(&mut ev.user_agent, v),
        "request_id" => set(&mut ev.request_id, v),
        "session_id" => set(&mut ev.session_id, v),
        "tty" => set(&mut ev.tty, v),
        "cwd" => set(&mut ev.cwd, v),
        "command" => set(&mut ev.command, v),
        "auth_method" => set(&mut ev.auth_method, v),
        "http.method" => set(&mut ev.http_mut().method, v),
        "http.status" => set_num(&mut ev.http_mut().status, v),
        "http.bytes" => set_num(&mut ev.http_mut().bytes, v),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(pairs: &[(&str, &str)]) -> JsonMapping {
        let m = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        JsonMapping::new(&m).unwrap()
    }

    #[test]
    fn maps_application_fields_and_keeps_the_rest() {
        let m = mapping(&[
            ("timestamp", "ts"),
            ("user.login", "actor.user"),
            ("client_ip", "src_ip"),
            ("event_type", "action"),
            ("result", "outcome"),
            ("kind", "category"),
            ("order", "fields.order_id"),
        ]);
        let ev = parse(
            r#"{"timestamp":"2026-03-07T10:01:02+01:00","user":{"login":"alice","team":"ops"},
                "client_ip":"2001:db8::7","event_type":"invoice_approved","result":"DENIED",
                "kind":"privilege","order":42,"amount":{"value":1.5,"cur":"EUR"},"tags":["a"]}"#,
            &m,
        )
        .unwrap();
        assert_eq!(ev.ts.unwrap().to_string(), "2026-03-07T10:01:02+01:00");
        assert_eq!(ev.actor.user.as_deref(), Some("alice"));
        assert_eq!(ev.src_ip, Some("2001:db8::7".parse().unwrap()));
        assert_eq!(ev.action, "invoice_approved");
        assert_eq!(ev.outcome, Outcome::Failure);
        assert_eq!(ev.category, Category::Privilege);
        assert_eq!(ev.fields["order_id"], "42");
        assert_eq!(ev.fields["user.team"], "ops");
        assert_eq!(ev.fields["amount.value"], "1.5");
        assert_eq!(ev.fields["amount.cur"], "EUR");
        assert_eq!(ev.fields["tags"], r#"["a"]"#);
        assert!(!ev.fields.contains_key("user.login"));
    }

    #[test]
    fn native_shaped_events_need_no_mapping() {
        let ev = parse(
            r#"{"action":"login","outcome":"success","category":"authentication",
                "actor":{"user":"bob","uid":1000},"src_ip":"192.0.2.1","src_port":"2222","ts":1772874062.5}"#,
            &JsonMapping::default(),
        )
        .unwrap();
        assert_eq!(ev.action, "login");
        assert_eq!(ev.actor.uid, Some(1000));
        assert_eq!(ev.src_port, Some(2222));
        assert_eq!(ev.ts.unwrap().to_string(), "2026-03-07T09:01:02.5Z");
        assert!(ev.fields.is_empty(), "{:?}", ev.fields);
    }

    #[test]
    fn misfit_values_are_kept_not_dropped() {
        let ev = parse(
            r#"{"src_port":"eighty","outcome":"maybe","ts":"yesterday","pid":-1}"#,
            &JsonMapping::default(),
        )
        .unwrap();
        assert_eq!(ev.src_port, None);
        assert_eq!(ev.fields["src_port"], "eighty");
        assert_eq!(ev.fields["outcome"], "maybe");
        assert_eq!(ev.fields["ts"], "yesterday");
        assert_eq!(ev.fields["pid"], "-1");
        assert_eq!(ev.outcome, Outcome::Unknown);
    }

    #[test]
    fn epoch_milliseconds_and_non_objects() {
        let ev = parse(r#"{"ts":1772874062123}"#, &JsonMapping::default()).unwrap();
        assert_eq!(ev.ts.unwrap().to_string(), "2026-03-07T09:01:02.123Z");
        assert!(parse("[1,2]", &JsonMapping::default()).is_none());
        assert!(parse("{not json", &JsonMapping::default()).is_none());
    }

    #[test]
    fn unknown_schema_field_in_mapping_is_an_error() {
        let mut m = BTreeMap::new();
        m.insert("x".to_string(), "actor.name".to_string());
        let e = JsonMapping::new(&m).unwrap_err();
        assert!(e.contains("\"actor.name\""), "{e}");
    }
}
