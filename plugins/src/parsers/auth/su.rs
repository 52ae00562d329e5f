//! su messages (util-linux and shadow-utils variants).
//!
//! | message                                  | action | outcome |
//! |------------------------------------------|--------|---------|
//! | `(to TARGET) USER on TTY`                | `su`   | success |
//! | `FAILED SU (to TARGET) USER on TTY`      | `su`   | failure |
//! | `Successful su for TARGET by USER`       | `su`   | success |
//! | `FAILED su for TARGET by USER`           | `su`   | failure |
//! | `+ TTY USER:TARGET` / `- TTY USER:TARGET`| `su`   | success / failure |
//! | `pam_authenticate: REASON`               | `su`   | failure |
//!
//! Category `privilege`; `actor.user` is the user who ran su and
//! `target.user` the user they became. Session open and close lines come
//! through the PAM parser (`pam_unix(su:session): session opened …`).

use auditship_core::{AuditEvent, Category, Outcome};

use super::words::some;

/// Parses an su message.
pub fn parse(msg: &str) -> Option<AuditEvent> {
    let ev = |outcome, actor: &str, target: &str, tty: Option<&str>| {
        let mut ev = AuditEvent::new(Category::Privilege, "su", outcome, String::new());
        ev.actor.user = some(actor);
        ev.target.user = some(target);
        ev.tty = tty.and_then(some);
        ev
    };
    let (outcome, rest) = match msg.strip_prefix("FAILED SU ") {
        Some(r) => (Outcome::Failure, r),
        None => (Outcome::Success, msg),
    };
    if let Some(r) = rest.strip_prefix("(to ") {
        let (target, r) = r.split_once(") ")?;
        let (user, tty) = r.rsplit_once(" on ")?;
        return Some(ev(outcome, user, target, Some(tty)));
    }
    for (prefix, outcome) in [
        ("Successful su for ", Outcome::Success),
        ("FAILED su for ", Outcome::Failure),
    ] {
        if let Some(r) = msg.strip_prefix(prefix) {
            let (target, user) = r.rsplit_once(" by ")?;
            return Some(ev(outcome, user, target, None));
        }
    }
    if let Some((sign, r)) = msg.split_at_checked(2) {
        let outcome = match sign {
            "+ " => Outcome::Success,
            "- " => Outcome::Failure,
            _ => Outcome::Unknown,
        };
        if outcome != Outcome::Unknown {
            let (tty, users) = r.split_once(' ')?;
            let (user, target) = users.split_once(':')?;
            return Some(ev(outcome, user, target, Some(tty)));
        }
    }
    if let Some(reason) = msg.strip_prefix("pam_authenticate: ") {
        let mut e = ev(Outcome::Failure, "", "", None);
        e.reason = some(reason);
        return Some(e);
    }
    None
}
