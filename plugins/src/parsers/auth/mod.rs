//! Auth-log parsers: sshd, sudo, su, PAM, shadow-utils and systemd-logind.
//!
//! The syslog framing ([`crate::parsers::syslog`]) has already split the
//! line; these parsers see only the program name and the message. PAM
//! messages (`pam_unix(…)`, `pam_faillock(…)`) are recognised for every
//! program, since sshd, sudo, su, login and cron all log them; everything
//! else is dispatched on the program. Each parser returns `None` for a
//! message it does not know, and the caller turns that into an `unparsed`
//! event that still carries the header.

mod logind;
mod pam;
mod shadow;
mod sshd;
mod su;
mod sudo;
pub mod words;

use auditship_core::AuditEvent;

/// Parses the message `msg` written by `program`.
pub fn parse(program: Option<&str>, msg: &str) -> Option<AuditEvent> {
    if msg.starts_with("pam_") {
        if let Some(ev) = pam::parse(msg) {
            return Some(ev);
        }
    }
    match program? {
        "sshd" | "sshd-session" | "sshd-auth" => sshd::parse(msg),
        "sudo" => sudo::parse(msg),
        "su" => su::parse(msg),
        "systemd-logind" => logind::parse(msg),
        "pam" | "login" => pam::parse_legacy(msg),
        p if shadow::PROGRAMS.contains(&p) => shadow::parse(msg),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
