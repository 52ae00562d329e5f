//! sudo messages.
//!
//! ```text
//! USER : [ERROR ; ]TTY=… ; PWD=… ; USER=… ; [GROUP=… ; ][TSID=… ; ][ENV=… ; ]COMMAND=…
//! ```
//!
//! | ERROR                                 | action                 | outcome |
//! |---------------------------------------|------------------------|---------|
//! | (none)                                | `sudo_command`         | success |
//! | `N incorrect password attempt(s)`     | `sudo_auth_failure`    | failure |
//! | `a password is required`              | `sudo_auth_failure`    | failure |
//! | `user NOT in sudoers`                 | `sudo_not_in_sudoers`  | failure |
//! | `user NOT authorized on host`         | `sudo_not_in_sudoers`  | failure |
//! | `command not allowed`                 | `sudo_command_denied`  | failure |
//! | anything else                         | `sudo_error`           | failure |
//!
//! All are category `privilege`: `actor.user` is the invoking user,
//! `target.user` the run-as user (`USER=`), and `tty`, `cwd` and `command`
//! are filled. `COMMAND=` always runs to the end of the line, because the
//! command itself may contain ` ; `. PAM lines from sudo (`pam_unix(sudo:auth):
//! authentication failure; …`) go to the PAM parser.

use auditship_core::{AuditEvent, Category, Outcome};

use super::words::some;

/// Parses a sudo message.
pub fn parse(msg: &str) -> Option<AuditEvent> {
    let (user, rest) = msg.split_once(" : ")?;
    let user = user.trim();
    if user.is_empty() || user.contains(' ') {
        return None;
    }
    let mut ev = AuditEvent::new(
        Category::Privilege,
        "sudo_command",
        Outcome::Success,
        String::new(),
    );
    ev.actor.user = Some(user.to_string());
    let mut rest = rest;
    let mut saw_key = false;
    while !rest.is_empty() {
        if let Some(cmd) = rest.strip_prefix("COMMAND=") {
            ev.command = some(cmd);
            saw_key = true;
            break;
        }
        let (part, next) = rest.split_once(" ; ").unwrap_or((rest, ""));
        rest = next;
        match part.split_once('=') {
            Some(("TTY", v)) => ev.tty = some(v).filter(|v| v != "unknown"),
            Some(("PWD", v)) => ev.cwd = some(v),
            Some(("USER", v)) => ev.target.user = some(v),
            Some(("GROUP", v)) => ev.target.group = some(v),
            Some(("TSID", v)) => ev.session_id = some(v),
            Some(("ENV", v)) => {
                ev.fields.insert("env".into(), v.to_string());
            }
            _ if !saw_key && ev.reason.is_none() => {
                let (action, reason) = classify_error(part);
                ev.action = action.into();
                ev.outcome = Outcome::Failure;
                ev.reason = Some(reason.to_string());
                continue;
            }
            _ => return None,
        }
        saw_key = true;
    }
    saw_key.then_some(ev)
}

fn classify_error(e: &str) -> (&'static str, &str) {
    if e.ends_with("incorrect password attempts")
        || e.ends_with("incorrect password attempt")
        || e == "a password is required"
    {
        ("sudo_auth_failure", e)
    } else if e.starts_with("user NOT in sudoers") || e.starts_with("user NOT authorized") {
        ("sudo_not_in_sudoers", e)
    } else if e == "command not allowed" {
        ("sudo_command_denied", e)
    } else {
        ("sudo_error", e)
    }
}
