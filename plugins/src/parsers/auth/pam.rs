//! PAM module messages, whichever program logged them.
//!
//! ```text
//! pam_MODULE(SERVICE:TYPE): MESSAGE
//! ```
//!
//! | MESSAGE                                                           | action                  | category       | outcome |
//! |-------------------------------------------------------------------|-------------------------|----------------|---------|
//! | `authentication failure; logname= uid= euid= tty= ruser= rhost= user=` | `authentication_failure` | authentication | failure |
//! | `N more authentication failures; …same keys…`                     | `authentication_failure`| authentication | failure |
//! | `check pass; user unknown`                                        | `authentication_failure`| authentication | failure |
//! | `Consecutive login failures for user USER account temporarily locked` (pam_faillock) | `account_locked` | authentication | failure |
//! | `session opened for user USER[(uid=N)] by [BY](uid=M)`            | `session_opened`        | session        | success |
//! | `session closed for user USER`                                    | `session_closed`        | session        | success |
//! | `password changed for USER`                                       | `password_changed`      | account        | success |
//!
//! `target.resource` is the PAM service (`sshd`, `sudo`, `su-l`) and
//! `fields.pam_module` the module. For failures, `actor.user` is `user=` (or
//! `ruser=` when `user=` is empty) and `rhost=` becomes `src_ip` or
//! `src_addr`. `uid=`, `euid=` and `logname=` describe the *calling
//! process* (sshd runs as uid 0 whoever tries to log in), so they are kept
//! in `fields.uid`, `fields.euid` and `fields.logname`, never as `actor.uid`. For sessions, `target.user` is the user
//! the session is for and `actor` the user who opened it (`by alice(uid=1000)`).
//!
//! The legacy line `user USER logged out.` (program `pam`) is read as
//! `session_closed` too.

use auditship_core::{AuditEvent, Category, Outcome};

use super::words::{kv_spaces, some, Peer};

/// Parses `pam_MODULE(SERVICE:TYPE): MESSAGE`.
pub fn parse(msg: &str) -> Option<AuditEvent> {
    let (module, rest) = msg.split_once('(')?;
    let (service, rest) = rest.split_once("): ")?;
    let service = service.split_once(':').map_or(service, |(s, _)| s);
    let mut ev = parse_message(rest)?;
    ev.target.resource = some(service);
    ev.fields.insert("pam_module".into(), module.to_string());
    Some(ev)
}

/// `user USER logged out.`
pub fn parse_legacy(msg: &str) -> Option<AuditEvent> {
    let user = msg.strip_prefix("user ")?.strip_suffix(" logged out.")?;
    let mut ev = AuditEvent::new(
        Category::Session,
        "session_closed",
        Outcome::Success,
        String::new(),
    );
    ev.target.user = some(user);
    Some(ev)
}

fn new(category: Category, action: &'static str, outcome: Outcome) -> AuditEvent {
    AuditEvent::new(category, action, outcome, String::new())
}

fn parse_message(m: &str) -> Option<AuditEvent> {
    if let Some(kv) = m.strip_prefix("authentication failure; ") {
        return Some(failure(kv, None));
    }
    if let Some((n, kv)) = m.split_once(" more authentication failures; ") {
        let n: u32 = n.parse().ok()?;
        return Some(failure(kv, Some(n)));
    }
    if m == "authentication failure" {
        return Some(failure("", None));
    }
    if let Some(reason) = m.strip_prefix("check pass; ") {
        let mut ev = new(
            Category::Authentication,
            "authentication_failure",
            Outcome::Failure,
        );
        ev.reason = some(reason);
        return Some(ev);
    }
    if let Some(r) = m.strip_prefix("Consecutive login failures for user ") {
        let user = r.strip_suffix(" account temporarily locked")?;
        let mut ev = new(Category::Authentication, "account_locked", Outcome::Failure);
        ev.actor.user = some(user);
        ev.target.user = some(user);
        ev.reason = Some("consecutive login failures".into());
        return Some(ev);
    }
    if let Some(r) = m.strip_prefix("session opened for user ") {
        let mut ev = new(Category::Session, "session_opened", Outcome::Success);
        let (target, by) = match r.rsplit_once(" by ") {
            Some((t, b)) => (t, Some(b)),
            None => (r, None),
        };
        let (user, uid) = name_uid(target);
        ev.target.user = some(user);
        ev.target.uid = uid;
        if let Some(by) = by {
            let (user, uid) = name_uid(by);
            ev.actor.user = some(user);
            ev.actor.uid = uid;
        }
        return Some(ev);
    }
    if let Some(user) = m.strip_prefix("session closed for user ") {
        let mut ev = new(Category::Session, "session_closed", Outcome::Success);
        ev.target.user = some(user.trim());
        return Some(ev);
    }
    if let Some(user) = m.strip_prefix("password changed for ") {
        let mut ev = new(Category::Account, "password_changed", Outcome::Success);
        ev.target.user = some(user.trim());
        return Some(ev);
    }
    None
}

/// `alice(uid=1000)`, `alice`, or `(uid=0)`.
fn name_uid(s: &str) -> (&str, Option<u32>) {
    match s.split_once("(uid=") {
        Some((name, rest)) => (name, rest.strip_suffix(')').and_then(|u| u.parse().ok())),
        None => (s, None),
    }
}

fn failure(kv: &str, count: Option<u32>) -> AuditEvent {
    let mut ev = new(
        Category::Authentication,
        "authentication_failure",
        Outcome::Failure,
    );
    ev.reason = Some(match count {
        Some(n) => format!("{n} more authentication failures"),
        None => "authentication failure".into(),
    });
    if let Some(n) = count {
        ev.fields.insert("count".into(), n.to_string());
    }
    let mut ruser = None;
    for (k, v) in kv_spaces(kv) {
        match k {
            "user" => ev.actor.user = some(v),
            "ruser" => ruser = some(v),
            "uid" | "euid" | "logname" if !v.is_empty() => {
                ev.fields.insert(k.to_string(), v.to_string());
            }
            "tty" => ev.tty = some(v),
            "rhost" => {
                if let Some(p) = Peer::parse(v) {
                    p.apply(&mut ev);
                }
            }
            _ => {}
        }
    }
    if ev.actor.user.is_none() {
        ev.actor.user = ruser;
    } else if let Some(r) = ruser {
        ev.fields.insert("ruser".into(), r);
    }
    ev
}
