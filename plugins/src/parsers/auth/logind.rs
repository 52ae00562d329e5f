//! systemd-logind session messages.
//!
//! | message                                        | action               | outcome |
//! |------------------------------------------------|----------------------|---------|
//! | `New session ID of user USER.`                 | `session_created`    | success |
//! | `Removed session ID.`                          | `session_removed`    | success |
//! | `Session ID logged out. Waiting for processes to exit.` | `session_logged_out` | success |
//!
//! Category `session`; `session_id` carries the logind id (`42`, `c1`), and
//! `actor.user` the session's user.

use auditship_core::{AuditEvent, Category, Outcome};

/// Parses a systemd-logind message.
pub fn parse(msg: &str) -> Option<AuditEvent> {
    let ev = |action: &'static str, id: &str| {
        let mut ev = AuditEvent::new(Category::Session, action, Outcome::Success, String::new());
        ev.session_id = Some(id.to_string());
        ev
    };
    if let Some(r) = msg.strip_prefix("New session ") {
        let (id, r) = r.split_once(" of user ")?;
        // "alice." or, in newer systemd, "alice (class user)."
        let user = r.strip_suffix('.').unwrap_or(r);
        let user = user.split_once(" (").map_or(user, |(u, _)| u);
        let mut e = ev("session_created", id);
        e.actor.user = Some(user.to_string());
        return Some(e);
    }
    if let Some(r) = msg.strip_prefix("Removed session ") {
        return Some(ev("session_removed", r.strip_suffix('.').unwrap_or(r)));
    }
    if let Some(r) = msg.strip_prefix("Session ") {
        let (id, _) = r.split_once(" logged out.")?;
        return Some(ev("session_logged_out", id));
    }
    None
}
