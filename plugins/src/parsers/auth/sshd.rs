//! OpenSSH server messages (`sshd`, and `sshd-session` since OpenSSH 9.8).
//!
//! | message (after the syslog header)                                         | action                  | category       | outcome |
//! |---------------------------------------------------------------------------|-------------------------|----------------|---------|
//! | `Accepted METHOD for USER from IP port N ssh2[: KEYTYPE FP]`              | `ssh_login`             | authentication | success |
//! | `Failed METHOD for [invalid user ]USER from IP port N ssh2[: KEYTYPE FP]` | `ssh_login`             | authentication | failure |
//! | `Invalid user USER from IP[ port N]`                                      | `ssh_invalid_user`      | authentication | failure |
//! | `User USER from IP not allowed because …`                                 | `ssh_login`             | authentication | failure |
//! | `error: PAM: Authentication failure for [illegal user ]USER from HOST`    | `ssh_login`             | authentication | failure |
//! | `PAM N more authentication failures; … rhost=IP  user=USER`               | `ssh_login`             | authentication | failure |
//! | `Connection closed\|reset by authenticating\|invalid user USER IP port N` | `ssh_connection_closed` / `ssh_connection_reset` | authentication | failure |
//! | `Connection closed\|reset by IP port N`                                   | same                    | network        | unknown |
//! | `Disconnected from user USER IP port N`                                   | `ssh_disconnect`        | session        | success |
//! | `Disconnected from authenticating\|invalid user USER IP port N`           | `ssh_disconnect`        | authentication | failure |
//! | `Received disconnect from IP port N:CODE: REASON`                         | `ssh_disconnect`        | session        | unknown |
//! | `error: maximum authentication attempts exceeded for [invalid user ]USER from IP port N ssh2` | `ssh_max_auth_exceeded` | authentication | failure |
//! | `Disconnecting authenticating\|invalid user USER IP port N: Too many authentication failures` | `ssh_max_auth_exceeded` | authentication | failure |
//! | `Did not receive identification string from IP[ port N]`                 | `ssh_no_identification` | network        | failure |
//! | `banner exchange: Connection from IP port N: REASON`, `kex_exchange_identification: REASON`, `Bad protocol version identification …` | `ssh_banner_error` | network | failure |
//! | `Unable to negotiate with IP port N: REASON`                              | `ssh_negotiation_failed`| network        | failure |
//! | `reverse mapping checking getaddrinfo for HOST [IP] failed - POSSIBLE BREAK-IN ATTEMPT!`, `Address IP maps to HOST, but this does not map back to the address - POSSIBLE BREAK-IN ATTEMPT!` | `ssh_break_in_attempt` | network | unknown |
//!
//! A trailing ` [preauth]` is removed and recorded as `fields.preauth`.
//! PAM session lines (`pam_unix(sshd:session): session opened …`) are
//! handled by the PAM parser, which runs first for every program.

use auditship_core::{AuditEvent, Category, Outcome};

use super::words::{addr_port, kv_spaces, split_addr_port, split_from, Peer};

/// Parses an sshd message.
pub fn parse(msg: &str) -> Option<AuditEvent> {
    let (msg, preauth) = match msg.strip_suffix(" [preauth]") {
        Some(m) => (m, true),
        None => (msg, false),
    };
    let mut ev = parse_inner(msg)?;
    if preauth {
        ev.fields.insert("preauth".into(), "true".into());
    }
    Some(ev)
}

fn event(category: Category, action: &'static str, outcome: Outcome) -> AuditEvent {
    AuditEvent::new(category, action, outcome, String::new())
}

fn parse_inner(msg: &str) -> Option<AuditEvent> {
    use Category::*;
    use Outcome::{Failure, Success};
    if let Some(r) = msg.strip_prefix("Accepted ") {
        return login(r, Success);
    }
    if let Some(r) = msg.strip_prefix("Failed ") {
        return login(r, Failure);
    }
    if let Some(r) = msg.strip_prefix("Invalid user ") {
        let (user, peer, port, _) = split_from(r)?;
        let mut ev = event(Authentication, "ssh_invalid_user", Failure);
        ev.actor.user = Some(user.to_string());
        ev.reason = Some("invalid user".into());
        peer.apply(&mut ev);
        ev.src_port = port;
        return Some(ev);
    }
    if let Some(r) = msg.strip_prefix("User ") {
        let (user, peer, _, tail) = split_from(r)?;
        let reason = tail.strip_prefix(" not allowed because ")?;
        let mut ev = event(Authentication, "ssh_login", Failure);
        ev.actor.user = Some(user.to_string());
        ev.reason = Some(format!("not allowed because {reason}"));
        peer.apply(&mut ev);
        return Some(ev);
    }
    if let Some(r) = msg.strip_prefix("error: PAM: ") {
        let (reason, r) = r.split_once(" for ")?;
        let r = r.strip_prefix("illegal user ").unwrap_or(r);
        let (user, peer, port, _) = split_from(r)?;
        let mut ev = event(Authentication, "ssh_login", Failure);
        ev.actor.user = Some(user.to_string());
        ev.auth_method = Some("keyboard-interactive/pam".into());
        ev.reason = Some(reason.to_string());
        peer.apply(&mut ev);
        ev.src_port = port;
        return Some(ev);
    }
    if let Some(r) = msg.strip_prefix("PAM ") {
        let (count, r) = r.split_once(" more authentication failure")?;
        let count: u32 = count.parse().ok()?;
        let kv = r.split_once("; ").map_or("", |(_, kv)| kv);
        let mut ev = event(Authentication, "ssh_login", Failure);
        ev.auth_method = Some("keyboard-interactive/pam".into());
        ev.reason = Some(format!("{} more authentication failures", count));
        ev.fields.insert("count".into(), count.to_string());
        for (k, v) in kv_spaces(kv) {
            match k {
                "user" => ev.actor.user = super::words::some(v),
                "rhost" => {
                    if let Some(p) = Peer::parse(v) {
                        p.apply(&mut ev)
                    }
                }
                "tty" => ev.tty = super::words::some(v),
                _ => {}
            }
        }
        return Some(ev);
    }
    for (prefix, action) in [
        ("Connection closed by ", "ssh_connection_closed"),
        ("Connection reset by ", "ssh_connection_reset"),
        ("Disconnected from ", "ssh_disconnect"),
    ] {
        if let Some(r) = msg.strip_prefix(prefix) {
            return closed(r, action);
        }
    }
    if let Some(r) = msg.strip_prefix("Received disconnect from ") {
        let (peer, port, tail) = addr_port(r)?;
        let mut ev = event(Session, "ssh_disconnect", Outcome::Unknown);
        peer.apply(&mut ev);
        ev.src_port = port;
        let reason = tail.trim_start_matches(':').trim();
        // ":11: disconnected by user" -> code 11, reason text.
        if let Some((code, text)) = reason.split_once(':') {
            if code.trim().parse::<u32>().is_ok() {
                ev.fields
                    .insert("disconnect_code".into(), code.trim().to_string());
                ev.reason = super::words::some(text.trim());
                return Some(ev);
            }
        }
        ev.reason = super::words::some(reason);
        return Some(ev);
    }
    if let Some(r) = msg.strip_prefix("error: maximum authentication attempts exceeded for ") {
        let r = r.strip_prefix("invalid user ").unwrap_or(r);
        let (user, peer, port, _) = split_from(r)?;
        let mut ev = event(Authentication, "ssh_max_auth_exceeded", Failure);
        ev.actor.user = Some(user.to_string());
        ev.reason = Some("maximum authentication attempts exceeded".into());
        peer.apply(&mut ev);
        ev.src_port = port;
        return Some(ev);
    }
    if let Some(r) = msg.strip_prefix("Disconnecting ") {
        let (who, reason) = r.rsplit_once(": ")?;
        let (head, peer, port, _) = split_addr_port(who)?;
        let user = head
            .strip_prefix("authenticating user ")
            .or_else(|| head.strip_prefix("invalid user "))
            .or_else(|| head.strip_prefix("user "))?;
        let too_many = reason.starts_with("Too many authentication failures");
        let (cat, action, outcome) = if too_many {
            (Authentication, "ssh_max_auth_exceeded", Failure)
        } else {
            (Session, "ssh_disconnect", Outcome::Unknown)
        };
        let mut ev = event(cat, action, outcome);
        ev.actor.user = Some(user.to_string());
        ev.reason = Some(reason.to_string());
        peer.apply(&mut ev);
        ev.src_port = port;
        return Some(ev);
    }
    if let Some(r) = msg.strip_prefix("Did not receive identification string from ") {
        let (peer, port, _) = addr_port(r)?;
        let mut ev = event(Network, "ssh_no_identification", Failure);
        ev.reason = Some("did not receive identification string".into());
        peer.apply(&mut ev);
        ev.src_port = port;
        return Some(ev);
    }
    if let Some(r) = msg.strip_prefix("banner exchange: Connection from ") {
        let (peer, port, tail) = addr_port(r)?;
        let mut ev = event(Network, "ssh_banner_error", Failure);
        ev.reason = super::words::some(tail.trim_start_matches(':').trim());
        peer.apply(&mut ev);
        ev.src_port = port;
        return Some(ev);
    }
    if let Some(r) = msg.strip_prefix("kex_exchange_identification: ") {
        let mut ev = event(Network, "ssh_banner_error", Failure);
        ev.reason = Some(r.to_string());
        return Some(ev);
    }
    if let Some(r) = msg.strip_prefix("Bad protocol version identification ") {
        let mut ev = event(Network, "ssh_banner_error", Failure);
        ev.reason = Some("bad protocol version identification".into());
        if let Some((_, peer, port, _)) = split_from(r) {
            peer.apply(&mut ev);
            ev.src_port = port;
        }
        return Some(ev);
    }
    if let Some(r) = msg.strip_prefix("Unable to negotiate with ") {
        let (peer, port, tail) = addr_port(r)?;
        let mut ev = event(Network, "ssh_negotiation_failed", Failure);
        ev.reason = super::words::some(tail.trim_start_matches(':').trim());
        peer.apply(&mut ev);
        ev.src_port = port;
        return Some(ev);
    }
    if msg.ends_with("POSSIBLE BREAK-IN ATTEMPT!") {
        return break_in(msg);
    }
    None
}

/// `METHOD for [invalid user ]USER from IP port N ssh2[: KEYTYPE FP …]`
fn login(r: &str, outcome: Outcome) -> Option<AuditEvent> {
    let (method, r) = r.split_once(" for ")?;
    let (r, invalid) = match r.strip_prefix("invalid user ") {
        Some(r) => (r, true),
        None => (r, false),
    };
    let (user, peer, port, tail) = split_from(r)?;
    let mut ev = event(Category::Authentication, "ssh_login", outcome);
    ev.actor.user = Some(user.to_string());
    ev.auth_method = Some(method.to_string());
    if invalid {
        ev.reason = Some("invalid user".into());
    }
    peer.apply(&mut ev);
    ev.src_port = port;
    if let Some(sig) = tail.strip_prefix(" ssh2: ") {
        let mut words = sig.splitn(3, ' ');
        ev.key_type = words.next().map(str::to_string);
        ev.key_fingerprint = words.next().map(str::to_string);
        if let Some(cert) = words.next() {
            ev.fields.insert("key_cert".into(), cert.to_string());
        }
    }
    Some(ev)
}

/// `Connection closed by …`, `Connection reset by …`, `Disconnected from …`.
fn closed(r: &str, action: &'static str) -> Option<AuditEvent> {
    let (head, peer, port, _) = split_addr_port(r)?;
    let (category, outcome, user) = if let Some(u) = head.strip_prefix("authenticating user ") {
        (Category::Authentication, Outcome::Failure, Some(u))
    } else if let Some(u) = head.strip_prefix("invalid user ") {
        (Category::Authentication, Outcome::Failure, Some(u))
    } else if let Some(u) = head.strip_prefix("user ") {
        (Category::Session, Outcome::Success, Some(u))
    } else if head.is_empty() {
        let cat = if action == "ssh_disconnect" {
            Category::Session
        } else {
            Category::Network
        };
        (cat, Outcome::Unknown, None)
    } else {
        return None;
    };
    let mut ev = event(category, action, outcome);
    ev.actor.user = user.map(str::to_string);
    if head.starts_with("invalid user ") {
        ev.reason = Some("invalid user".into());
    } else if head.starts_with("authenticating user ") {
        ev.reason = Some("closed before authentication completed".into());
    }
    peer.apply(&mut ev);
    ev.src_port = port;
    Some(ev)
}

fn break_in(msg: &str) -> Option<AuditEvent> {
    let mut ev = event(Category::Network, "ssh_break_in_attempt", Outcome::Unknown);
    if let Some(r) = msg.strip_prefix("reverse mapping checking getaddrinfo for ") {
        // HOST [IP] failed - POSSIBLE BREAK-IN ATTEMPT!
        let (host, r) = r.split_once(" [")?;
        let (ip, _) = r.split_once(']')?;
        Peer::parse(ip)?.apply(&mut ev);
        ev.fields.insert("claimed_host".into(), host.to_string());
        ev.reason = Some("reverse mapping check failed".into());
    } else if let Some(r) = msg.strip_prefix("Address ") {
        // IP maps to HOST, but this does not map back to the address - …
        let (ip, r) = r.split_once(" maps to ")?;
        let (host, _) = r.split_once(',')?;
        Peer::parse(ip)?.apply(&mut ev);
        ev.fields.insert("claimed_host".into(), host.to_string());
        ev.reason = Some("address does not map back".into());
    } else {
        ev.reason = Some(msg.to_string());
    }
    Some(ev)
}
