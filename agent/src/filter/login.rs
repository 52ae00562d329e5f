//! Telling a typed password from a login name, for `failed_login_user`.
//!
//! People type their password into the user prompt: sshd then logs
//! `Failed password for invalid user Hunter2!pass from …`, and the password
//! would be stored forever in an append-only log. The `redact` filter masks
//! the attempted user name of a failed authentication when
//! [`looks_like_password`] says it is not a plausible login name.
//!
//! The heuristic is deliberately conservative, so that brute-force
//! attempts against real-looking names (`root`, `admin`, `ubuntu71`,
//! `svc-backup`) stay visible. A name is treated as a secret when:
//!
//! 1. it contains whitespace; or
//! 2. it is at least 8 characters long and contains a symbol; or
//! 3. it contains at least three of the four classes: lowercase `a-z`,
//!    uppercase `A-Z`, digits `0-9`, and symbols.
//!
//! `.`, `_`, `-` (POSIX portable user names) and `@` (e-mail-style logins
//! from directories and SSO) are login-name characters and do not count as
//! symbols; any other non-alphanumeric character does.
//!
//! Consequences worth knowing: `Hunter2!pass`, `P@ssw0rd123` and `aB1!` are
//! masked. Names attackers commonly try, such as `Administrator`, `Oracle`
//! or `alice@example.com`, are kept, so brute force stays visible. A
//! password of only letters and digits in two classes (`hunter2pass`)
//! cannot be told from a user name and is kept.

/// Whether an attempted user name is probably a password typed into the
/// user prompt. See the module docs for the exact rules.
pub fn looks_like_password(user: &str) -> bool {
    let (mut lower, mut upper, mut digit, mut symbol) = (false, false, false, false);
    let mut len = 0usize;
    for c in user.chars() {
        len += 1;
        match c {
            'a'..='z' => lower = true,
            'A'..='Z' => upper = true,
            '0'..='9' => digit = true,
            '.' | '_' | '-' | '@' => {}
            c if c.is_whitespace() => return true,
            _ => symbol = true,
        }
    }
    let classes = [lower, upper, digit, symbol].iter().filter(|b| **b).count();
    (len >= 8 && symbol) || classes >= 3
}

#[cfg(test)]
mod tests {
    use super::looks_like_password;

    #[test]
    fn plausible_login_names_are_kept() {
        for name in [
            "root",
            "admin",
            "deploy",
            "ubuntu71",
            "svc-backup",
            "svc-backup1",
            "git",
            "john.smith",
            "www-data",
            "test_user2",
            "oracle",
            "Oracle",
            "pi",
            "user01",
            "a_very_long_service_account_name",
            // Regression: rule 2 once masked long capitalised names, hiding
            // brute force against the most common Windows-style account.
            "Administrator",
            "ADMIN",
            "alice@example.com",
            "",
        ] {
            assert!(!looks_like_password(name), "{name:?} redacted");
        }
    }

    #[test]
    fn passwords_are_recognised() {
        for secret in [
            "Hunter2!pass",
            "P@ssw0rd123",
            "correct horse",
            "Summer2024",
            "aB1",
            "x!9y",
            "hunter2!",
            "tab\tuser",
            "Passw0rd",
        ] {
            assert!(looks_like_password(secret), "{secret:?} kept");
        }
    }
}
