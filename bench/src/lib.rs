//! auditship-bench: deterministic, realistic log lines for benchmarks.
//!
//! [`LineGen`] writes nginx/Apache combined access lines and a weighted mix
//! of auth-log lines (sshd, sudo, PAM sessions, logind, shadow-utils, and
//! lines no parser knows, as a real `/var/log/auth.log` has). It is seeded,
//! so every benchmark run sees the same bytes. The criterion benches and the
//! end-to-end harness both use it.

/// Which kind of lines to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// nginx `combined`, the most common access-log format.
    NginxCombined,
    /// Apache `combined` (same shape, Apache-style values).
    ApacheCombined,
    /// A weighted mix of auth-log messages with RFC 3164 headers.
    Auth,
}

/// A seeded generator of realistic log lines.
pub struct LineGen {
    state: u64,
    second: u64,
}

const PATHS: &[&str] = &[
    "/",
    "/index.html",
    "/api/v1/orders",
    "/api/v1/users/",
    "/static/js/app.3f9c1b.js",
    "/static/css/main.css",
    "/images/products/",
    "/login",
    "/logout",
    "/search",
    "/admin/settings",
    "/healthz",
    "/favicon.ico",
    "/wp-login.php",
    "/cart/checkout",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
    "kube-probe/1.31",
];
const REFERRERS: &[&str] = &[
    "-",
    "-",
    "-",
    "https://www.example.com/",
    "https://www.google.com/",
    "https://shop.example.com/cart",
];
const USERS: &[&str] = &[
    "alice", "bob", "carol", "deploy", "root", "admin", "git", "ubuntu", "oracle", "test",
];
const MONTHS: &[&str] = &[
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl LineGen {
    /// A generator with a fixed seed.
    pub fn new(seed: u64) -> Self {
        LineGen {
            state: seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1),
            second: 0,
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn ip(&mut self) -> String {
        match self.below(10) {
            0..=5 => format!(
                "{}.{}.{}.{}",
                1 + self.below(223),
                self.below(256),
                self.below(256),
                1 + self.below(254)
            ),
            6 | 7 => format!(
                "10.{}.{}.{}",
                self.below(256),
                self.below(256),
                1 + self.below(254)
            ),
            8 => format!("192.168.{}.{}", self.below(256), 1 + self.below(254)),
            _ => format!("2001:db8:{:x}::{:x}", self.below(65536), self.below(65536)),
        }
    }

    /// Appends one line of `kind` (without newline) to `out`.
    pub fn line(&mut self, kind: Kind, out: &mut String) {
        use std::fmt::Write;
        self.second += self.below(3);
        let s = self.second;
        let (day, h, m, sec) = (
            1 + (s / 86_400) % 28,
            (s / 3600) % 24,
            (s / 60) % 60,
            s % 60,
        );
        match kind {
            Kind::NginxCombined | Kind::ApacheCombined => {
                let ip = self.ip();
                let user = if self.below(20) == 0 {
                    self.pick(USERS)
                } else {
                    "-"
                };
                let method = match self.below(20) {
                    0..=14 => "GET",
                    15..=17 => "POST",
                    18 => "HEAD",
                    _ => "PUT",
                };
                let mut path = self.pick(PATHS).to_string();
                if path.ends_with('/') && path.len() > 1 {
                    let _ = write!(path, "{}", self.below(100_000));
                }
                if self.below(4) == 0 {
                    let _ = write!(
                        path,
                        "?page={}&sort=price&q=item{}",
                        self.below(50),
                        self.below(1000)
                    );
                }
                let status = match self.below(100) {
                    0..=79 => 200,
                    80..=86 => 304,
                    87..=90 => 301,
                    91..=97 => 404,
                    _ => 500,
                };
                let bytes = if status == 304 {
                    0
                } else {
                    self.below(200_000)
                };
                let proto = if kind == Kind::NginxCombined && self.below(3) == 0 {
                    "HTTP/2.0"
                } else {
                    "HTTP/1.1"
                };
                let referrer = self.pick(REFERRERS);
                let agent = self.pick(AGENTS);
                let _ = write!(
                    out,
                    r#"{ip} - {user} [{day:02}/Nov/2026:{h:02}:{m:02}:{sec:02} +0000] "{method} {path} {proto}" {status} {bytes} "{referrer}" "{agent}""#
                );
            }
            Kind::Auth => {
                let host = "web-01";
                let pid = 1000 + self.below(60_000);
                let _ = write!(
                    out,
                    "{} {day:>2} {h:02}:{m:02}:{sec:02} {host} ",
                    MONTHS[10]
                );
                let user = self.pick(USERS);
                let ip = self.ip();
                let port = 1024 + self.below(64_000);
                match self.below(100) {
                    0..=24 => {
                        let _ = write!(
                            out,
                            "sshd[{pid}]: Failed password for {user} from {ip} port {port} ssh2"
                        );
                    }
                    25..=34 => {
                        let _ = write!(out, "sshd[{pid}]: Failed password for invalid user {user}{} from {ip} port {port} ssh2", self.below(100));
                    }
                    35..=42 => {
                        let _ = write!(
                            out,
                            "sshd[{pid}]: Invalid user {user}{} from {ip} port {port}",
                            self.below(100)
                        );
                    }
                    43..=50 => {
                        let _ = write!(out, "sshd[{pid}]: Connection closed by authenticating user {user} {ip} port {port} [preauth]");
                    }
                    51..=56 => {
                        let _ = write!(out, "sshd[{pid}]: Accepted publickey for {user} from {ip} port {port} ssh2: ED25519 SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s");
                    }
                    57..=60 => {
                        let _ = write!(
                            out,
                            "sshd[{pid}]: Accepted password for {user} from {ip} port {port} ssh2"
                        );
                    }
                    61..=66 => {
                        let _ = write!(out, "sshd[{pid}]: pam_unix(sshd:session): session opened for user {user}(uid={}) by (uid=0)", 1000 + self.below(50));
                    }
                    67..=72 => {
                        let _ = write!(
                            out,
                            "sshd[{pid}]: pam_unix(sshd:session): session closed for user {user}"
                        );
                    }
                    73..=76 => {
                        let _ = write!(out, "sshd[{pid}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user={user}");
                    }
                    77..=82 => {
                        let _ = write!(out, "sudo:    {user} : TTY=pts/{} ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx.service", self.below(8));
                    }
                    83..=84 => {
                        let _ = write!(out, "sudo:    {user} : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/home/{user} ; USER=root ; COMMAND=/bin/bash");
                    }
                    85..=88 => {
                        let _ = write!(
                            out,
                            "systemd-logind[612]: New session {} of user {user}.",
                            self.below(10_000)
                        );
                    }
                    89..=91 => {
                        let _ = write!(
                            out,
                            "systemd-logind[612]: Removed session {}.",
                            self.below(10_000)
                        );
                    }
                    92 => {
                        let _ = write!(out, "useradd[{pid}]: new user: name={user}{}, UID={}, GID={}, home=/home/{user}, shell=/bin/bash, from=/dev/pts/0", self.below(100), 1000 + self.below(1000), 1000 + self.below(1000));
                    }
                    93 => {
                        let _ = write!(out, "sshd[{pid}]: Did not receive identification string from {ip} port {port}");
                    }
                    _ => {
                        let _ = write!(out, "CRON[{pid}]: pam_unix(cron:session): session opened for user root(uid=0) by root(uid=0)");
                    }
                }
            }
        }
    }

    /// `n` lines of `kind`, newline-terminated, as one buffer.
    pub fn lines(&mut self, kind: Kind, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let mut s = String::with_capacity(256);
                self.line(kind, &mut s);
                s
            })
            .collect()
    }
}

/// The value after `--name` on a benchmark binary's command line.
pub fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_for_a_seed() {
        let a = LineGen::new(7).lines(Kind::Auth, 50);
        let b = LineGen::new(7).lines(Kind::Auth, 50);
        assert_eq!(a, b);
        assert_ne!(a, LineGen::new(8).lines(Kind::Auth, 50));
    }
}
