//! shadow-utils account management: useradd, userdel, usermod, groupadd,
//! groupdel, groupmod, passwd, chpasswd, gpasswd, chage.
//!
//! | message                                                               | action                  |
//! |-----------------------------------------------------------------------|-------------------------|
//! | `new user: name=U, UID=N, GID=N, home=…, shell=…[, from=…]`           | `user_created`          |
//! | `new group: name=G, GID=N`, `group added to /etc/group: name=G, GID=N`, `group added to /etc/gshadow: name=G` | `group_created` |
//! | `failed adding user 'U', exit code: N`                                | `user_created` (failure)|
//! | `delete user 'U'`                                                     | `user_deleted`          |
//! | `removed group 'G' owned by 'U'`, `group 'G' removed[ from FILE]`     | `group_deleted`         |
//! | `add 'U' to [shadow ]group 'G'`, `user U added by A to group G`       | `group_member_added`    |
//! | `delete 'U' from [shadow ]group 'G'`, `user U removed by A from group G` | `group_member_removed` |
//! | `members of group G set by A to U1,U2`                                | `group_members_set`     |
//! | `change user 'U' ATTR from 'OLD' to 'NEW'`, `change user name 'OLD' to 'NEW'`, `changed password expiry for U` | `user_modified` |
//! | `lock user 'U' password` / `unlock user 'U' password`                 | `user_locked` / `user_unlocked` |
//! | `group changed in FILE (…)`                                           | `group_modified`        |
//! | `password for 'U' changed by 'A'`                                     | `password_changed`      |
//! | `password of group G changed by A`                                    | `group_password_changed`|
//!
//! Category `account`; outcome `success` unless the message reports a
//! failure. `target.user`/`target.uid` and `target.group`/`target.gid` name
//! what changed, `actor.user` who changed it when the message says.
//! Attribute changes carry `fields.attribute`, `fields.old` and `fields.new`;
//! entries written to `/etc/gshadow` carry `fields.database = "gshadow"`.

use auditship_core::{AuditEvent, Category, Outcome};

use super::words::{kv_commas, quoted, some, unquote};

/// Programs whose messages this parser reads.
pub const PROGRAMS: &[&str] = &[
    "useradd", "userdel", "usermod", "groupadd", "groupdel", "groupmod", "passwd", "chpasswd",
    "gpasswd", "chage",
];

fn new(action: &'static str) -> AuditEvent {
    AuditEvent::new(Category::Account, action, Outcome::Success, String::new())
}

/// Parses a shadow-utils message.
pub fn parse(msg: &str) -> Option<AuditEvent> {
    if let Some(kv) = msg.strip_prefix("new user: ") {
        let mut ev = new("user_created");
        for (k, v) in kv_commas(kv) {
            match k {
                "name" => ev.target.user = some(v),
                "UID" => ev.target.uid = v.parse().ok(),
                "GID" => ev.target.gid = v.parse().ok(),
                "home" | "shell" | "from" => {
                    ev.fields.insert(k.to_string(), v.to_string());
                }
                _ => {}
            }
        }
        return ev.target.user.is_some().then_some(ev);
    }
    for prefix in [
        "new group: ",
        "group added to /etc/group: ",
        "group added to /etc/gshadow: ",
    ] {
        if let Some(kv) = msg.strip_prefix(prefix) {
            let mut ev = new("group_created");
            for (k, v) in kv_commas(kv) {
                match k {
                    "name" => ev.target.group = some(v),
                    "GID" => ev.target.gid = v.parse().ok(),
                    _ => {}
                }
            }
            if prefix.contains("gshadow") {
                ev.fields.insert("database".into(), "gshadow".into());
            }
            return ev.target.group.is_some().then_some(ev);
        }
    }
    if let Some(r) = msg.strip_prefix("failed adding user ") {
        let (user, rest) = quoted(r)?;
        let mut ev = new("user_created");
        ev.outcome = Outcome::Failure;
        ev.target.user = some(user);
        ev.reason = some(rest.trim_start_matches(',').trim());
        return Some(ev);
    }
    if let Some(r) = msg.strip_prefix("delete user ") {
        let mut ev = new("user_deleted");
        ev.target.user = some(unquote(r));
        return Some(ev);
    }
    for prefix in ["removed group ", "removed shadow group "] {
        if let Some(r) = msg.strip_prefix(prefix) {
            let (group, rest) = quoted(r)?;
            let mut ev = new("group_deleted");
            ev.target.group = some(group);
            if let Some(owner) = rest.strip_prefix(" owned by ") {
                ev.target.user = some(unquote(owner));
            }
            shadow_db(&mut ev, prefix);
            return Some(ev);
        }
    }
    if let Some(r) = msg.strip_prefix("group ") {
        if let Some((group, rest)) = quoted(r) {
            if let Some(from) = rest.strip_prefix(" removed") {
                let mut ev = new("group_deleted");
                ev.target.group = some(group);
                shadow_db(&mut ev, from);
                return Some(ev);
            }
        }
    }
    for (prefix, sep, action) in [
        ("add ", " to ", "group_member_added"),
        ("delete ", " from ", "group_member_removed"),
    ] {
        if let Some(r) = msg.strip_prefix(prefix) {
            if let Some((user, rest)) = quoted(r) {
                let rest = rest.strip_prefix(sep)?;
                let (rest, shadow) = match rest.strip_prefix("shadow ") {
                    Some(r) => (r, true),
                    None => (rest, false),
                };
                let group = rest.strip_prefix("group ")?;
                let mut ev = new(action);
                ev.target.user = some(user);
                ev.target.group = some(unquote(group));
                if shadow {
                    ev.fields.insert("database".into(), "gshadow".into());
                }
                return Some(ev);
            }
        }
    }
    if let Some(r) = msg.strip_prefix("user ") {
        // gpasswd: "user U added by A to group G" / "user U removed by A from group G"
        let (user, r) = r.split_once(' ')?;
        let (action, r) = if let Some(r) = r.strip_prefix("added by ") {
            ("group_member_added", r.split_once(" to group ")?)
        } else if let Some(r) = r.strip_prefix("removed by ") {
            ("group_member_removed", r.split_once(" from group ")?)
        } else {
            return None;
        };
        let mut ev = new(action);
        ev.target.user = some(user);
        ev.actor.user = some(r.0);
        ev.target.group = some(r.1);
        return Some(ev);
    }
    for (prefix, action) in [
        ("members of group ", "group_members_set"),
        ("administrators of group ", "group_administrators_set"),
    ] {
        if let Some(r) = msg.strip_prefix(prefix) {
            let (group, r) = r.split_once(" set by ")?;
            let (by, members) = r.split_once(" to ").unwrap_or((r, ""));
            let mut ev = new(action);
            ev.target.group = some(group);
            ev.actor.user = some(by);
            ev.fields.insert("members".into(), members.to_string());
            return Some(ev);
        }
    }
    if let Some(r) = msg.strip_prefix("password of group ") {
        let (group, by) = r.split_once(" changed by ")?;
        let mut ev = new("group_password_changed");
        ev.target.group = some(group);
        ev.actor.user = some(by);
        return Some(ev);
    }
    if let Some(r) = msg.strip_prefix("change user name ") {
        let (old, r) = quoted(r)?;
        let new_name = unquote(r.strip_prefix(" to ")?);
        let mut ev = new("user_modified");
        ev.target.user = some(new_name);
        attribute(&mut ev, "name", old, new_name);
        return Some(ev);
    }
    if let Some(r) = msg.strip_prefix("change user ") {
        let (user, r) = quoted(r)?;
        let (attr, r) = r.trim_start().split_once(" from ")?;
        let (old, r) = quoted(r)?;
        let new_v = unquote(r.strip_prefix(" to ")?);
        let mut ev = new("user_modified");
        ev.target.user = some(user);
        attribute(&mut ev, attr, old, new_v);
        return Some(ev);
    }
    for (prefix, action) in [
        ("lock user ", "user_locked"),
        ("unlock user ", "user_unlocked"),
    ] {
        if let Some(r) = msg.strip_prefix(prefix) {
            let (user, _) = quoted(r)?;
            let mut ev = new(action);
            ev.target.user = some(user);
            return Some(ev);
        }
    }
    if let Some(user) = msg.strip_prefix("changed password expiry for ") {
        let mut ev = new("user_modified");
        ev.target.user = some(user.trim());
        ev.fields
            .insert("attribute".into(), "password_expiry".into());
        return Some(ev);
    }
    if let Some(r) = msg.strip_prefix("group changed in ") {
        let (file, detail) = r.split_once(" (")?;
        let detail = detail.strip_suffix(')').unwrap_or(detail);
        let mut ev = new("group_modified");
        // "group docker/999, new name: dock" or "group docker/999, new gid: 1000"
        if let Some(g) = detail.strip_prefix("group ") {
            let (g, change) = g.split_once(", ").unwrap_or((g, ""));
            let (name, gid) = g.split_once('/').unwrap_or((g, ""));
            ev.target.group = some(name);
            ev.target.gid = gid.parse().ok();
            if let Some((attr, value)) = change.split_once(": ") {
                ev.fields.insert(
                    "attribute".into(),
                    attr.trim_start_matches("new ").to_string(),
                );
                ev.fields.insert("new".into(), value.to_string());
            }
        }
        ev.fields.insert("file".into(), file.to_string());
        return Some(ev);
    }
    if let Some(r) = msg.strip_prefix("password for ") {
        let (user, r) = quoted(r)?;
        let by = r.strip_prefix(" changed by ")?;
        let mut ev = new("password_changed");
        ev.target.user = some(user);
        ev.actor.user = some(unquote(by));
        return Some(ev);
    }
    None
}

fn attribute(ev: &mut AuditEvent, attr: &str, old: &str, new_v: &str) {
    ev.fields.insert("attribute".into(), attr.to_string());
    ev.fields.insert("old".into(), old.to_string());
    ev.fields.insert("new".into(), new_v.to_string());
}

fn shadow_db(ev: &mut AuditEvent, text: &str) {
    if text.contains("shadow") {
        ev.fields.insert("database".into(), "gshadow".into());
    }
}
