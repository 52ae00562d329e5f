//! What one primary record says, beyond the system call context: its
//! category, action and outcome, who acted and on what, from where. The
//! table of record types is in [`super::map`]'s docs.
//!
//! Userspace records (`USER_*`, `CRED_*`, account and group management,
//! `USER_CMD`…) name accounts in `acct` and `id`; [`Role`] says whether that
//! account is the actor (the one authenticating) or the target (the account
//! created, changed, deleted). Kernel records other than system call context
//! (`CONFIG_CHANGE`, `LOGIN`, `AVC`, `ANOM_*`…) are read the same way, from
//! their `auid`/`uid`, `pid`, `comm`/`exe`, `ses` and `res`.

use std::borrow::Cow;
use std::net::IpAddr;

use auditship_core::{Category, Outcome};

use super::map::{actor, id, outcome_of, present, Out, Rec};
use super::value::Text;

/// How an account name in a userspace record is to be read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// `acct`/`id` is who authenticates (the actor).
    Subject,
    /// `acct`/`id` is the user acted upon.
    User,
    /// `grp`/`acct` and `id` are the group acted upon.
    Group,
    /// The account fields are only kept in `fields`.
    Other,
}

/// Category, action and role of a primary record type.
pub(super) fn classify(rtype: &str) -> (Category, Cow<'static, str>, Role) {
    use Category::*;
    let (c, a, r): (Category, &'static str, Role) = match rtype {
        "USER_AUTH" => (Authentication, "user_authentication", Role::Subject),
        "USER_ACCT" => (Authentication, "user_authorization", Role::Subject),
        "USER_LOGIN" => (Authentication, "user_login", Role::Subject),
        "USER_LOGOUT" => (Session, "user_logout", Role::Subject),
        "USER_START" => (Session, "session_opened", Role::Subject),
        "USER_END" => (Session, "session_closed", Role::Subject),
        "CRED_ACQ" => (Authentication, "credentials_acquired", Role::Subject),
        "CRED_REFR" => (Authentication, "credentials_refreshed", Role::Subject),
        "CRED_DISP" => (Authentication, "credentials_disposed", Role::Subject),
        "USER_ERR" => (Authentication, "user_error", Role::Subject),
        "GRP_AUTH" => (Authentication, "group_authentication", Role::Subject),
        "USER_CMD" => (Privilege, "user_command", Role::Other),
        "USER_ROLE_CHANGE" => (Privilege, "role_changed", Role::Subject),
        "ROLE_ASSIGN" => (Privilege, "role_assigned", Role::User),
        "ROLE_REMOVE" => (Privilege, "role_removed", Role::User),
        "ADD_USER" => (Account, "user_created", Role::User),
        "DEL_USER" => (Account, "user_deleted", Role::User),
        "USER_MGMT" | "CHUSER_ID" => (Account, "user_modified", Role::User),
        "USER_CHAUTHTOK" => (Account, "password_changed", Role::User),
        "ACCT_LOCK" => (Account, "user_locked", Role::User),
        "ACCT_UNLOCK" => (Account, "user_unlocked", Role::User),
        "ADD_GROUP" => (Account, "group_created", Role::Group),
        "DEL_GROUP" => (Account, "group_deleted", Role::Group),
        "GRP_MGMT" | "CHGRP_ID" => (Account, "group_modified", Role::Group),
        "GRP_CHAUTHTOK" => (Account, "group_password_changed", Role::Group),
        "LOGIN" => (Session, "login_uid_set", Role::Other),
        "CONFIG_CHANGE" => (System, "audit_config_changed", Role::Other),
        "DAEMON_START" => (System, "audit_daemon_started", Role::Other),
        "DAEMON_END" => (System, "audit_daemon_stopped", Role::Other),
        "DAEMON_ABORT" => (System, "audit_daemon_aborted", Role::Other),
        "DAEMON_CONFIG" | "DAEMON_RECONFIG" => (System, "audit_daemon_reconfigured", Role::Other),
        "DAEMON_ROTATE" => (System, "audit_log_rotated", Role::Other),
        "DAEMON_RESUME" => (System, "audit_daemon_resumed", Role::Other),
        "SERVICE_START" => (System, "service_started", Role::Other),
        "SERVICE_STOP" => (System, "service_stopped", Role::Other),
        "SYSTEM_BOOT" => (System, "system_boot", Role::Other),
        "SYSTEM_SHUTDOWN" => (System, "system_shutdown", Role::Other),
        "SYSTEM_RUNLEVEL" => (System, "runlevel_changed", Role::Other),
        t if t.starts_with("ANOM_") => {
            let action = format!("anomaly_{}", t[5..].to_ascii_lowercase());
            let (cat, role) = if t.starts_with("ANOM_LOGIN_") {
                (Authentication, Role::Subject)
            } else if t == "ANOM_PROMISCUOUS" {
                (Network, Role::Other)
            } else {
                (System, Role::Other)
            };
            return (cat, Cow::Owned(action), role);
        }
        t => {
            let action = format!("audit_{}", snake(t));
            return (System, Cow::Owned(action), Role::Other);
        }
    };
    (c, Cow::Borrowed(a), r)
}

/// Fills what any primary record says about who, where and how it went,
/// over what a SYSCALL record of the same event said.
pub(super) fn record_context(out: &mut Out, r: &Rec<'_>) {
    actor(out, r);
    if let Some(pid) = r.get("pid").and_then(|p| p.parse().ok()) {
        out.ev.pid = Some(pid);
    }
    if let Some(s) = r.get("ses").filter(|s| present(s)) {
        out.ev.session_id = Some(s.to_string());
    }
    if let Some(t) = r
        .get("terminal")
        .or_else(|| r.get("tty"))
        .filter(|t| present(t))
    {
        out.ev.tty = Some(t.to_string());
    }
    if let Some(res) = r.get("res").or_else(|| r.get("success")) {
        out.ev.outcome = outcome_of(res);
    }
    let program = r
        .text_of("comm")
        .filter(|t| present(&t.text))
        .cloned()
        .or_else(|| {
            let exe = r.text_of("exe").filter(|t| present(&t.text))?;
            let base = exe.text.rsplit('/').next().unwrap_or(&exe.text);
            Some(Text {
                text: base.to_string(),
                escaped: exe.escaped,
            })
        });
    if let Some(p) = program {
        out.ev.program = out.schema("program", &p);
    }
    let addr = r
        .get("addr")
        .filter(|a| present(a))
        .and_then(|a| a.trim_matches(['[', ']']).parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical());
    if let Some(ip) = addr {
        out.ev.src_ip = Some(ip);
        if let Some(h) = r.get("hostname").filter(|h| present(h)) {
            if h != r.get("addr").unwrap_or("") && h.parse::<IpAddr>().is_err() {
                out.ev.src_addr = Some(h.to_string());
            }
        }
    }
}

/// What depends on the kind of primary record.
pub(super) fn specifics(out: &mut Out, r: &Rec<'_>, role: Role) {
    let acct = r.text_of("acct").filter(|t| present(&t.text)).cloned();
    let invalid = acct.as_ref().is_some_and(|a| a.text == "(invalid user)");
    let acct = acct.filter(|_| !invalid);
    let acct_id = id(r.get("id"));
    let id_name = r.enr("ID").filter(|n| present(n)).map(str::to_string);
    match role {
        Role::Subject => {
            if invalid {
                out.ev.actor = Default::default();
                out.ev.reason = Some("invalid user".into());
            } else if acct.is_some() || acct_id.is_some() {
                out.ev.actor = Default::default();
                out.ev.actor.uid = acct_id;
                out.ev.actor.user = match &acct {
                    Some(a) => out.schema("actor.user", a),
                    None => id_name,
                };
            }
            match r.get("op") {
                Some("pubkey" | "publickey") => out.ev.auth_method = Some("publickey".into()),
                Some("password") => out.ev.auth_method = Some("password".into()),
                _ => {}
            }
        }
        Role::User => {
            out.ev.target.uid = acct_id;
            out.ev.target.user = match &acct {
                Some(a) => out.schema("target.user", a),
                None => id_name,
            };
            group_membership(out, r);
        }
        Role::Group => {
            out.ev.target.gid = acct_id;
            let grp = r.text_of("grp").filter(|t| present(&t.text)).cloned();
            match (grp, acct) {
                (Some(g), acct) => {
                    out.ev.target.group = out.schema("target.group", &g);
                    if let Some(a) = acct {
                        out.ev.target.user = out.schema("target.user", &a);
                    }
                }
                (None, Some(a)) => out.ev.target.group = out.schema("target.group", &a),
                (None, None) => out.ev.target.group = id_name,
            }
            group_membership(out, r);
        }
        Role::Other => {}
    }
    match r.rtype {
        "USER_CMD" => {
            let exe = r.get("exe").unwrap_or("");
            if exe.rsplit('/').next() == Some("sudo") {
                out.ev.action = Cow::Borrowed("sudo_command");
            }
            if let Some(cmd) = r.text_of("cmd").filter(|t| present(&t.text)) {
                out.ev.command = out.schema("command", cmd);
            }
            if let Some(cwd) = r.text_of("cwd").filter(|t| present(&t.text)) {
                out.ev.cwd = out.schema("cwd", cwd);
            }
        }
        "USER_ERR" => out.ev.reason = r.get("op").map(str::to_string),
        "SERVICE_START" | "SERVICE_STOP" => {
            if let Some(unit) = r.text_of("unit") {
                out.ev.target.resource = out.schema("target.resource", unit);
            }
        }
        "AVC" | "USER_AVC" => {
            let words: Vec<&[u8]> = r.text.clone();
            if let Some(aa) = r.get("apparmor") {
                let verdict = aa.to_ascii_lowercase();
                out.ev.outcome = if verdict == "denied" {
                    Outcome::Failure
                } else {
                    Outcome::Success
                };
                out.ev.action = Cow::Owned(format!("apparmor_{verdict}"));
            } else if words.iter().any(|w| *w == b"denied") {
                out.ev.action = Cow::Borrowed("avc_denied");
                out.ev.outcome = Outcome::Failure;
            } else if words.iter().any(|w| *w == b"granted") {
                out.ev.action = Cow::Borrowed("avc_granted");
                out.ev.outcome = Outcome::Success;
            }
            if let Some(name) = r.text_of("name").filter(|t| present(&t.text)) {
                out.ev.target.resource = out.schema("target.resource", name);
            }
        }
        "ANOM_ABEND" => {
            if let Some(sig) = r.get("sig") {
                out.ev.reason = Some(format!("signal {sig}"));
            }
            out.ev.outcome = Outcome::Failure;
        }
        _ => {}
    }
}

/// `op` of a user or group management record that adds a member to a group
/// or removes one.
fn group_membership(out: &mut Out, r: &Rec<'_>) {
    let op = r.get("op").unwrap_or("").replace(' ', "-");
    let action = if op.contains("to-group") || op.contains("to-shadow-group") {
        "group_member_added"
    } else if op.contains("from-group") || op.contains("from-shadow-group") {
        "group_member_removed"
    } else {
        return;
    };
    out.ev.action = Cow::Borrowed(action);
    if let Some(g) = r.text_of("grp").filter(|t| present(&t.text)) {
        out.ev.target.group = out.schema("target.group", g);
    }
}

/// A record type as a snake_case word: `NETFILTER_CFG` → `netfilter_cfg`,
/// `UNKNOWN[1334]` → `unknown_1334`.
pub(super) fn snake(rtype: &str) -> String {
    let mut s: String = rtype
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    while s.ends_with('_') {
        s.pop();
    }
    s
}
