//! Demo logs for `auditship quickstart` on a machine without readable
//! system logs: an auth log and an nginx access log, written with the
//! current time, a burst at start and then a line every two seconds.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use auditship_core::Timestamp;
use tokio_util::sync::CancellationToken;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Auth log messages after the `host program[pid]: ` header.
const AUTH: [&str; 8] = [
    "sshd[{pid}]: Accepted publickey for alice from 203.0.113.7 port 52144 ssh2: ED25519 SHA256:uL3xq4k3e4m0Zt2Xc8n3l3b0YpZ1w9v6s5r4q3p2o1n",
    "sshd[{pid}]: Failed password for invalid user admin from 198.51.100.23 port 40022 ssh2",
    "sshd[{pid}]: Failed password for root from 198.51.100.23 port 40031 ssh2",
    "sudo[{pid}]:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx",
    "sshd[{pid}]: pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
    "sudo[{pid}]:      bob : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/cat /etc/shadow",
    "useradd[{pid}]: new user: name=deploy, UID=1002, GID=1002, home=/home/deploy, shell=/bin/bash, from=/dev/pts/0",
    "su[{pid}]: (to postgres) alice on pts/0",
];

const PATHS: [(&str, u16); 6] = [
    ("GET / HTTP/1.1", 200),
    ("GET /login HTTP/1.1", 200),
    ("POST /login HTTP/1.1", 401),
    ("GET /admin HTTP/1.1", 403),
    ("GET /api/v1/items?page=2 HTTP/2.0", 200),
    ("GET /wp-login.php HTTP/1.1", 404),
];

fn auth_line(now: Timestamp, n: usize) -> String {
    let (_, mo, d, h, mi, s) = now.civil();
    let msg = AUTH[n % AUTH.len()].replace("{pid}", &(4000 + n % 900).to_string());
    format!(
        "{} {d:>2} {h:02}:{mi:02}:{s:02} demo-host {msg}\n",
        MONTHS[mo as usize - 1]
    )
}

fn nginx_line(now: Timestamp, n: usize) -> String {
    let (y, mo, d, h, mi, s) = now.civil();
    let (req, status) = PATHS[n % PATHS.len()];
    format!(
        "192.0.2.{} - - [{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02} +0000] \"{req}\" {status} {} \"-\" \"Mozilla/5.0 (demo)\"\n",
        10 + n % 40,
        MONTHS[mo as usize - 1],
        200 + (n * 37) % 5000
    )
}

fn append(path: &PathBuf, text: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(text.as_bytes());
    }
}

/// Writes the demo logs into `dir` until `stop`.
pub async fn write_demo_logs(dir: PathBuf, stop: CancellationToken) {
    let (auth, nginx) = (dir.join("auth.log"), dir.join("access.log"));
    let now = Timestamp::now_utc();
    let mut a = String::new();
    let mut w = String::new();
    for n in 0..24 {
        a.push_str(&auth_line(now, n));
        w.push_str(&nginx_line(now, n));
    }
    append(&auth, &a);
    append(&nginx, &w);
    let mut n = 24;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.cancelled() => return,
        }
        let now = Timestamp::now_utc();
        append(&auth, &auth_line(now, n));
        append(&nginx, &nginx_line(now, n));
        n += 1;
    }
}
