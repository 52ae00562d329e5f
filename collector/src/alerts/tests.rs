//! Rules, evaluation, dedup, first-seen memory: unit tests with a clock of
//! their own.

use std::net::IpAddr;
use std::path::Path;

use auditship_core::{AuditEvent, Category, Outcome, Timestamp};

use super::engine::Engine;
use super::feed::Prefilter;
use super::first_seen::{FirstSeen, Seen};
use super::record::{Alert, Status};
use super::rules::{parse_days, parse_hours, AlertsConfig, Hours, RawAlerts};
use crate::integrity::{Finding, COLLECTOR_AGENT};

/// 2026-11-21T10:00:00Z, a Saturday.
const T0: i64 = 1_795_255_200_000;
const MIN: i64 = 60_000;

/// Validates `[alerts]` text (without the defaults unless it asks).
pub(super) fn config(text: &str) -> AlertsConfig {
    let raw: RawAlerts = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
    let mut errs = Vec::new();
    let cfg = raw.validate(Path::new("/etc/auditship"), &mut |k, m| {
        errs.push(format!("{k}: {m}"))
    });
    assert!(errs.is_empty(), "{errs:#?}");
    cfg
}

fn engine(text: &str) -> Engine {
    Engine::new(&config(text), FirstSeen::in_memory(1000))
}

fn ssh(outcome: Outcome, user: &str, ip: &str, ts: i64) -> AuditEvent {
    let mut ev = AuditEvent::new(Category::Authentication, "ssh_login", outcome, "x".into());
    ev.actor.user = Some(user.into());
    ev.src_ip = Some(ip.parse::<IpAddr>().unwrap());
    ev.host = Some("web-1".into());
    ev.ts = Timestamp::new(ts.div_euclid(1000), 0, 0);
    ev
}

const BRUTE: &str = r#"
defaults = false
notify_delay = "10s"
[[rules]]
name = "brute"
kind = "threshold"
severity = "high"
when = { action = "ssh_login", outcome = "failure" }
by = ["src_ip"]
threshold = 10
window = "5m"
dedup = "1h"
"#;

#[test]
fn threshold_fires_once_at_the_threshold_and_counts_the_burst_into_it() {
    let mut e = engine(BRUTE);
    for i in 0..9 {
        e.observe(
            &ssh(Outcome::Failure, "root", "203.0.113.50", T0 + i * 1000),
            i as u64,
            T0,
        );
    }
    assert_eq!(e.open_alerts(), 0, "9 of 10 does not fire");
    for i in 9..50 {
        e.observe(
            &ssh(Outcome::Failure, "root", "203.0.113.50", T0 + i * 1000),
            i as u64,
            T0,
        );
    }
    assert_eq!(e.open_alerts(), 1);
    assert!(e.due(T0 + 9_999).is_empty(), "waits for notify_delay");
    let fired = e.due(T0 + 10_000);
    assert_eq!(fired.len(), 1);
    let a = &fired[0];
    assert_eq!(
        (a.rule.as_str(), a.status, a.count),
        ("brute", Status::Firing, 50)
    );
    assert_eq!(a.src_ip, Some("203.0.113.50".parse().unwrap()));
    assert_eq!(a.key, "src_ip=203.0.113.50");
    assert_eq!((a.first_ts, a.last_ts), (T0, T0 + 49_000));
    assert_eq!(a.samples, vec![0, 1, 2, 3, 4]);
    // The whole burst was in the first notification: nothing at close.
    assert!(e.due(T0 + 3_600_000).is_empty());
    assert_eq!(e.open_alerts(), 0);
}

#[test]
fn threshold_does_not_fire_when_the_matches_span_more_than_the_window() {
    let mut e = engine(BRUTE);
    for i in 0..30 {
        // one a minute: never 10 within 5 minutes
        e.observe(
            &ssh(Outcome::Failure, "root", "203.0.113.50", T0 + i * MIN),
            i as u64,
            T0,
        );
    }
    assert_eq!(e.open_alerts(), 0);
    assert!(e.due(T0 + 3_600_000).is_empty());
}

#[test]
fn threshold_counts_each_key_apart_and_ignores_other_outcomes() {
    let mut e = engine(BRUTE);
    for i in 0..9 {
        e.observe(
            &ssh(Outcome::Failure, "root", "203.0.113.1", T0 + i),
            i as u64,
            T0,
        );
        e.observe(
            &ssh(Outcome::Failure, "root", "203.0.113.2", T0 + i),
            i as u64,
            T0,
        );
        e.observe(
            &ssh(Outcome::Success, "root", "203.0.113.3", T0 + i),
            i as u64,
            T0,
        );
    }
    assert_eq!(e.open_alerts(), 0);
    let mut no_ip = ssh(Outcome::Failure, "root", "203.0.113.1", T0);
    no_ip.src_ip = None;
    for _ in 0..20 {
        e.observe(&no_ip, 0, T0);
    }
    assert_eq!(
        e.open_alerts(),
        0,
        "events without the key field are not counted"
    );
}

#[test]
fn window_expiry_old_matches_stop_counting_and_a_late_event_takes_its_place() {
    let mut e = engine(BRUTE);
    for i in 0..9 {
        e.observe(
            &ssh(Outcome::Failure, "root", "198.51.100.7", T0 + i * 1000),
            i as u64,
            T0,
        );
    }
    // Six minutes later: the nine are outside the window.
    e.observe(
        &ssh(Outcome::Failure, "root", "198.51.100.7", T0 + 6 * MIN),
        9,
        T0,
    );
    assert_eq!(e.open_alerts(), 0);
    e.sweep();
    assert_eq!(e.tracked_keys(), 1, "the key with a recent match stays");
    // Eight more within the window of the last one, then one that arrives
    // late but happened within it too: ten in five minutes.
    for i in 0..8 {
        e.observe(
            &ssh(
                Outcome::Failure,
                "root",
                "198.51.100.7",
                T0 + 6 * MIN + i * 1000,
            ),
            10 + i as u64,
            T0,
        );
    }
    assert_eq!(e.open_alerts(), 0);
    e.observe(
        &ssh(
            Outcome::Failure,
            "root",
            "198.51.100.7",
            T0 + 5 * MIN + 30_000,
        ),
        20,
        T0,
    );
    assert_eq!(e.open_alerts(), 1);
    // Sweeping forgets keys whose newest match left the window.
    let mut e = engine(BRUTE);
    e.observe(&ssh(Outcome::Failure, "root", "192.0.2.1", T0), 0, T0);
    e.observe(
        &ssh(Outcome::Failure, "root", "192.0.2.2", T0 + 10 * MIN),
        1,
        T0,
    );
    e.sweep();
    assert_eq!(e.tracked_keys(), 1);
}

#[test]
fn dedup_counts_into_the_open_alert_and_closes_once_with_the_final_count() {
    let mut e = engine(BRUTE);
    for i in 0..10 {
        e.observe(
            &ssh(Outcome::Failure, "root", "203.0.113.9", T0 + i),
            i as u64,
            T0,
        );
    }
    let fired = e.due(T0 + 10_000);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].count, 10);
    // The attack goes on: counted, not notified again.
    for i in 0..25 {
        e.observe(
            &ssh(Outcome::Failure, "root", "203.0.113.9", T0 + 20_000 + i),
            100 + i as u64,
            T0 + 20_000,
        );
    }
    assert!(e.due(T0 + 30 * MIN).is_empty());
    let closed = e.due(T0 + 3_600_000);
    assert_eq!(closed.len(), 1);
    assert_eq!((closed[0].status, closed[0].count), (Status::Closed, 35));
    assert_eq!(closed[0].id, fired[0].id, "the same alert");
    // After the window a new alert needs a fresh threshold crossing.
    let later = T0 + 3_600_000;
    for i in 0..9 {
        e.observe(
            &ssh(Outcome::Failure, "root", "203.0.113.9", later + i),
            200 + i as u64,
            later,
        );
    }
    assert_eq!(e.open_alerts(), 0);
    e.observe(
        &ssh(Outcome::Failure, "root", "203.0.113.9", later + 9),
        209,
        later,
    );
    assert_eq!(e.open_alerts(), 1);
    let again = e.due(later + 10_000);
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].id, fired[0].id);
}

#[test]
fn drain_at_shutdown_notifies_what_is_open_as_it_stands() {
    let mut e = engine(BRUTE);
    for i in 0..12 {
        e.observe(
            &ssh(Outcome::Failure, "root", "203.0.113.9", T0 + i),
            i as u64,
            T0,
        );
    }
    let out = e.drain();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].status, out[0].count), (Status::Firing, 12));
    assert_eq!(e.open_alerts(), 0);
}

const MATCH: &str = r#"
defaults = false
notify_delay = "0s"
[[rules]]
name = "nosudo"
kind = "match"
when = { action = "sudo_not_in_sudoers" }
unless = { actor = { user = "ansible" } }
by = ["host", "actor.user"]
dedup = "10m"
"#;

fn sudo(user: &str, host: &str) -> AuditEvent {
    let mut ev = AuditEvent::new(
        Category::Privilege,
        "sudo_not_in_sudoers",
        Outcome::Failure,
        "x".into(),
    );
    ev.actor.user = Some(user.into());
    ev.host = Some(host.into());
    ev.ts = Timestamp::new(T0 / 1000, 0, 0);
    ev
}

#[test]
fn match_fires_per_key_dedups_repeats_and_unless_excludes() {
    let mut e = engine(MATCH);
    e.observe(&sudo("mallory", "web-1"), 1, T0);
    e.observe(&sudo("mallory", "web-1"), 2, T0);
    e.observe(&sudo("mallory", "web-2"), 3, T0);
    e.observe(&sudo("ansible", "web-1"), 4, T0);
    let mut out = e.due(T0);
    out.sort_by(|a, b| a.key.cmp(&b.key));
    let got: Vec<(&str, u64)> = out.iter().map(|a| (a.key.as_str(), a.count)).collect();
    assert_eq!(
        got,
        vec![
            ("host=web-1 actor.user=mallory", 2),
            ("host=web-2 actor.user=mallory", 1)
        ]
    );
    assert_eq!(out[0].user.as_deref(), Some("mallory"));
}

#[test]
fn time_of_day_boundaries_start_included_end_excluded_in_the_rules_offset() {
    let (start, end) = parse_hours("08:00-18:00").unwrap();
    let h = Hours {
        start,
        end,
        days: parse_days(&["mon-fri".to_string()]).unwrap(),
        offset: 3600,
    };
    // Monday 2026-11-23 in UTC; the rule's clock is UTC+1.
    let monday = 1_795_392_000;
    assert!(!h.allows(monday + 7 * 3600 - 1), "07:59:59 local");
    assert!(h.allows(monday + 7 * 3600), "08:00 local");
    assert!(h.allows(monday + 17 * 3600 - 1), "17:59:59 local");
    assert!(!h.allows(monday + 17 * 3600), "18:00 local");
    // Saturday 10:00 local is outside the days.
    assert!(!h.allows(monday - 2 * 86_400 + 9 * 3600));
    // Sunday 23:30 UTC is Monday 00:30 local: a day allowed, an hour not.
    assert!(!h.allows(monday - 1800));

    // A span across midnight belongs to the day it starts on.
    let (start, end) = parse_hours("22:00-06:00").unwrap();
    let night = Hours {
        start,
        end,
        days: parse_days(&["fri".to_string()]).unwrap(),
        offset: 0,
    };
    let friday = monday + 4 * 86_400;
    assert!(night.allows(friday + 23 * 3600), "Friday 23:00");
    assert!(
        night.allows(friday + 86_400 + 5 * 3600),
        "Saturday 05:00 is Friday's night"
    );
    assert!(!night.allows(friday + 86_400 + 6 * 3600), "Saturday 06:00");
    assert!(
        !night.allows(friday + 5 * 3600),
        "Friday 05:00 is Thursday's night"
    );
    assert!(parse_hours("08:00-08:00").is_err());
    assert!(parse_hours("25:00-08:00").is_err());
    assert!(parse_days(&["someday".to_string()]).is_err());
}

#[test]
fn time_of_day_rule_fires_outside_hours_and_not_inside() {
    let mut e = engine(
        r#"
defaults = false
notify_delay = "0s"
[[rules]]
name = "late"
kind = "time_of_day"
when = { action = "ssh_login", outcome = "success" }
by = ["actor.user"]
hours = "08:00-18:00"
utc_offset = "-05:00"
"#,
    );
    // T0 is 10:00Z = 05:00 at -05:00: outside.
    e.observe(&ssh(Outcome::Success, "alice", "192.0.2.1", T0), 1, T0);
    // 15:00Z = 10:00 at -05:00: inside.
    e.observe(
        &ssh(Outcome::Success, "bob", "192.0.2.1", T0 + 5 * 3_600_000),
        2,
        T0,
    );
    let out = e.due(T0);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].user.as_deref(), Some("alice"));
}

const FIRST: &str = r#"
defaults = false
notify_delay = "0s"
[[rules]]
name = "newsrc"
kind = "first_seen"
when = { action = "ssh_login", outcome = "success" }
key = "actor.user"
value = "src_ip"
"#;

#[test]
fn first_seen_fires_on_a_new_value_of_a_known_key_only() {
    let mut e = engine(FIRST);
    e.observe(&ssh(Outcome::Success, "alice", "192.0.2.10", T0), 1, T0);
    assert!(e.due(T0).is_empty(), "a user's first address is learned");
    e.observe(&ssh(Outcome::Success, "alice", "192.0.2.10", T0 + 1), 2, T0);
    e.observe(&ssh(Outcome::Failure, "alice", "192.0.2.66", T0 + 2), 3, T0);
    assert!(
        e.due(T0).is_empty(),
        "known address; failures are not logins"
    );
    e.observe(
        &ssh(Outcome::Success, "alice", "198.51.100.4", T0 + 3),
        4,
        T0,
    );
    let out = e.due(T0);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].key, "actor.user=alice src_ip=198.51.100.4");
    assert_eq!(out[0].src_ip, Some("198.51.100.4".parse().unwrap()));
}

#[test]
fn first_seen_memory_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(FIRST);
    {
        let mut e = Engine::new(&cfg, FirstSeen::load(dir.path(), 1000, None).unwrap());
        e.observe(&ssh(Outcome::Success, "alice", "192.0.2.10", T0), 1, T0);
        e.observe(&ssh(Outcome::Success, "alice", "198.51.100.4", T0), 2, T0);
        assert_eq!(e.due(T0).len(), 1);
        assert!(e.first_seen().dirty());
        e.first_seen().save().unwrap();
        assert!(!e.first_seen().dirty());
    }
    let mut e = Engine::new(&cfg, FirstSeen::load(dir.path(), 1000, None).unwrap());
    assert_eq!(e.first_seen().len(), 2);
    e.observe(
        &ssh(Outcome::Success, "alice", "198.51.100.4", T0 + MIN),
        3,
        T0 + MIN,
    );
    e.observe(
        &ssh(Outcome::Success, "alice", "192.0.2.10", T0 + MIN),
        4,
        T0 + MIN,
    );
    assert!(e.due(T0 + MIN).is_empty(), "both addresses were remembered");
    e.observe(
        &ssh(Outcome::Success, "alice", "203.0.113.77", T0 + MIN),
        5,
        T0 + MIN,
    );
    assert_eq!(e.due(T0 + MIN).len(), 1);

    // A damaged file is set aside and learning starts over.
    std::fs::write(dir.path().join("first_seen.json"), b"{not json").unwrap();
    let fs = FirstSeen::load(dir.path(), 1000, None).unwrap();
    assert!(fs.is_empty());
    assert!(dir.path().join("first_seen.json.corrupt").exists());
}

#[test]
fn first_seen_memory_is_bounded_and_forgets_the_least_recent() {
    let mut fs = FirstSeen::in_memory(10);
    for i in 0..30i64 {
        fs.observe(
            "r",
            &format!("user{}", i % 3),
            &format!("10.0.0.{i}"),
            T0 + i,
        );
    }
    assert!(fs.len() <= 10, "{}", fs.len());
    assert_eq!(fs.observe("r", "user2", "10.0.0.29", T0 + 99), Seen::Known);
    assert_eq!(
        fs.observe("r", "user0", "10.0.0.0", T0 + 99),
        Seen::NewValue
    );
}

#[test]
fn integrity_rule_fires_on_the_collectors_findings_not_on_an_agents_lookalike() {
    let mut e = engine(
        r#"
defaults = false
notify_delay = "0s"
[[rules]]
name = "gaps"
kind = "integrity"
severity = "critical"
actions = ["chain_gap"]
"#,
    );
    let f = Finding::Gap {
        agent: "web-1".into(),
        queue: 7,
        from: 10,
        to: 12,
    };
    let mut forged = f.to_event(Timestamp::new(T0 / 1000, 0, 0).unwrap(), "web-1");
    forged.agent_id = Some("web-1".into());
    e.observe(&forged, 1, T0);
    assert!(
        e.due(T0).is_empty(),
        "an agent cannot raise integrity alerts"
    );
    let real = f.to_event(Timestamp::new(T0 / 1000, 0, 0).unwrap(), "collector");
    assert_eq!(real.agent_id.as_deref(), Some(COLLECTOR_AGENT));
    e.observe(&real, 2, T0);
    let out = e.due(T0);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].key, "fields.agent_id=web-1");
}

#[test]
fn an_alert_round_trips_through_its_stored_event() {
    let mut e = engine(BRUTE);
    for i in 0..10 {
        e.observe(
            &ssh(Outcome::Failure, "root", "203.0.113.50", T0 + i * 1000),
            40 + i as u64,
            T0,
        );
    }
    let a = e.due(T0 + 10_000).remove(0);
    let ev = a.to_event();
    assert_eq!(ev.category, Category::Alert);
    assert_eq!(ev.action, "alert_fired");
    assert_eq!(ev.fields["rule"], "brute");
    assert_eq!(ev.fields["count"], "10");
    assert_eq!(ev.fields["group.src_ip"], "203.0.113.50");
    assert_eq!(ev.fields["samples"], "40,41,42,43,44");
    // Through JSON, as the store keeps it.
    let back: AuditEvent = serde_json::from_str(&serde_json::to_string(&ev).unwrap()).unwrap();
    let b = Alert::from_event(&back).unwrap();
    assert_eq!(
        b,
        Alert {
            opened: b.opened,
            ..a.clone()
        }
    );
    assert_eq!(b.opened, a.opened);
    let j = b.to_json();
    assert_eq!(j["src_ip"], "203.0.113.50");
    assert_eq!(j["count"], 10);
    assert_eq!(j["status"], "firing");
}

#[test]
fn prefilter_passes_only_what_some_rule_names() {
    let cfg = config("defaults = true");
    let p = Prefilter::of(&cfg.rules);
    assert!(p.wants("authentication", "ssh_login"));
    assert!(p.wants("integrity", "chain_gap"));
    assert!(p.wants("account", "user_created"));
    assert!(!p.wants("web", "http_request"));
    assert!(!p.wants("integrity", "agent_heartbeat"));
    assert!(!p.wants("session", "session_opened"));
}

// Found by tests/encryption_e2e.rs after merging alerts with encryption:
// first_seen.json kept user names and source addresses in the clear next
// to an encrypted store.
#[test]
fn with_store_keys_the_first_seen_memory_is_sealed_on_disk_and_survives_a_restart() {
    use auditship_crypt::{Key, Keyring};
    let dir = tempfile::tempdir().unwrap();
    // Plain state from before encryption was turned on.
    {
        let mut fs = FirstSeen::load(dir.path(), 1000, None).unwrap();
        fs.observe("r", "alice", "192.0.2.10", T0);
        fs.save().unwrap();
    }
    assert!(dir.path().join("first_seen.json").exists());
    let keys = std::sync::Arc::new(Keyring::new(Key::from_bytes([9; 32]), []));
    {
        let mut fs = FirstSeen::load(dir.path(), 1000, Some(keys.clone())).unwrap();
        assert_eq!(fs.len(), 1, "the plain state is taken over");
        fs.observe("r", "alice", "198.51.100.4", T0);
        fs.save().unwrap();
    }
    assert!(
        !dir.path().join("first_seen.json").exists(),
        "the plaintext file is removed"
    );
    let sealed = std::fs::read(dir.path().join("first_seen.sealed")).unwrap();
    for m in [&b"alice"[..], b"192.0.2.10", b"198.51.100.4"] {
        assert!(memchr::memmem::find(&sealed, m).is_none());
    }
    let mut fs = FirstSeen::load(dir.path(), 1000, Some(keys)).unwrap();
    assert_eq!(fs.len(), 2);
    assert_eq!(fs.observe("r", "alice", "192.0.2.10", T0), Seen::Known);
    // Another key cannot open it: set aside, learning starts over.
    let other = std::sync::Arc::new(Keyring::new(Key::from_bytes([1; 32]), []));
    let fs = FirstSeen::load(dir.path(), 1000, Some(other)).unwrap();
    assert_eq!(fs.len(), 0);
    assert!(dir.path().join("first_seen.sealed.corrupt").exists());
}
