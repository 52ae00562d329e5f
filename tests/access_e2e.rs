//! Roles, tokens and audited access, end to end with the real binary: the
//! permission matrix (every role against every route and the commands
//! that use them), tokens created and revoked with `auditship token`,
//! mTLS identities mapped to roles, and reads recorded in the log itself.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::*;

/// A collector with mTLS: client certificate `e2e-agent` is mapped to the
/// auditor role as "cert-auditor"; `e2e-other` is mapped to nothing.
struct Rig {
    dir: tempfile::TempDir,
    pki: Pki,
    url: String,
    collector: Option<Proc>,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let port = free_port();
    let tls = format!(
        "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"\n\n[[tls.identities]]\nname = \"cert-auditor\"\nrole = \"auditor\"\nsan = \"e2e-agent\"\n",
        pki.server_cert.display(),
        pki.server_key.display(),
        pki.ca.display()
    );
    let cfg = collector_config(
        dir.path(),
        port,
        "",
        &format!("{tls}\n[integrity]\ncheckpoint_interval = \"1s\"\n"),
    );
    let collector = Proc::start(
        &["collector", "--config", cfg.to_str().unwrap()],
        &dir.path().join("collector.log"),
    );
    let r = Rig {
        url: format!("https://localhost:{port}"),
        dir,
        pki,
        collector: Some(collector),
    };
    wait_for("collector up", Duration::from_secs(30), || {
        r.cli(&["token", "list"], Some(ADMIN_TOKEN), false)
            .status
            .success()
    });
    r
}

impl Rig {
    /// Runs `auditship <args> --url … --ca-file …` with `token`, and the
    /// mapped client certificate (`mapped`) or the unmapped one.
    fn cli(&self, args: &[&str], token: Option<&str>, mapped: bool) -> Output {
        let (cert, key) = if mapped {
            (&self.pki.client_cert, &self.pki.client_key)
        } else {
            (&self.pki.other_cert, &self.pki.other_key)
        };
        let mut c = Command::new(env!("CARGO_BIN_EXE_auditship"));
        c.args(args)
            .args(["--url", &self.url, "--ca-file"])
            .arg(&self.pki.ca)
            .arg("--client-cert")
            .arg(cert)
            .arg("--client-key")
            .arg(key)
            .env_remove("AUDITSHIP_TOKEN");
        if let Some(t) = token {
            c.args(["--token", t]);
        }
        c.output().unwrap()
    }

    fn client(&self, mapped: bool) -> reqwest::Client {
        auditship_tls::install_default_provider();
        let (cert, key) = if mapped {
            (&self.pki.client_cert, &self.pki.client_key)
        } else {
            (&self.pki.other_cert, &self.pki.other_key)
        };
        reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .tls_backend_preconfigured(
                auditship_tls::client_config(&self.pki.ca, Some((cert, key))).unwrap(),
            )
            .build()
            .unwrap()
    }

    /// `method path` with `token` (and body): the status.
    fn status(&self, who: &Who, method: &str, path: &str, body: Option<String>) -> u16 {
        let c = self.client(who.mapped_cert);
        rt().block_on(async {
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let mut r = c.request(m, format!("{}{path}", self.url));
            if let Some(t) = who.token {
                r = r.bearer_auth(t);
            }
            if let Some(b) = body {
                r = r.header("content-type", "application/json").body(b);
            }
            r.send().await.unwrap().status().as_u16()
        })
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("collector-data")
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A caller: a token, or the mapped certificate alone, or nothing.
struct Who<'a> {
    name: &'a str,
    token: Option<&'a str>,
    mapped_cert: bool,
    role: Option<&'a str>,
}

/// A route: method, path, body, the roles allowed, the status an allowed
/// caller gets.
type Route<'a> = (&'a str, String, Option<String>, &'a [&'a str], u16);

/// A command: arguments, token, mapped certificate, what a refusal says
/// (`None`: it succeeds).
type CommandCase<'a> = (&'a [&'a str], Option<&'a str>, bool, Option<&'a str>);

/// Ships a few events and waits until a checkpoint covers them, so that
/// proofs and exports have something to answer with.
fn ship_some(r: &Rig) {
    let log = r.dir.path().join("auth.log");
    append_lines(
        &log,
        (0..5).map(|n| format!("Nov 22 10:00:0{n} h sshd[1]: Failed password for root from 192.0.2.{n} port 22 ssh2")),
    );
    let acfg = agent_config(
        r.dir.path(),
        &log.display().to_string(),
        &r.url,
        &format!(
            "token = \"{INGEST_TOKEN}\"\nca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"",
            r.pki.ca.display(),
            r.pki.client_cert.display(),
            r.pki.client_key.display()
        ),
    );
    let agent = Proc::start(
        &["agent", "--config", acfg.to_str().unwrap()],
        &r.dir.path().join("agent.log"),
    );
    wait_for("5 events and a checkpoint", Duration::from_secs(60), || {
        let c = r.client(true);
        rt().block_on(async {
            let Ok(resp) = c.get(format!("{}/v1/checkpoint", r.url)).send().await else {
                return false;
            };
            let Ok(body) = resp.bytes().await else {
                return false;
            };
            let Ok(cp) = serde_json::from_slice::<serde_json::Value>(&body) else {
                return false;
            };
            cp["size"].as_u64().unwrap_or(0) >= 6
        })
    });
    agent.kill9();
}

#[test]
fn permission_matrix_every_role_against_every_route_and_command() {
    let r = rig();
    ship_some(&r);
    // A reader token made with the real CLI by the admin.
    let out = r.cli(
        &["token", "create", "--name", "reader-1", "--role", "reader"],
        Some(ADMIN_TOKEN),
        false,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let reader = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(reader.starts_with("ast_"), "{reader}");

    let who = [
        Who {
            name: "ingest",
            token: Some(INGEST_TOKEN),
            mapped_cert: false,
            role: Some("ingest"),
        },
        Who {
            name: "reader",
            token: Some(&reader),
            mapped_cert: false,
            role: Some("reader"),
        },
        Who {
            name: "auditor",
            token: Some(READER_TOKEN),
            mapped_cert: false,
            role: Some("auditor"),
        },
        Who {
            name: "admin",
            token: Some(ADMIN_TOKEN),
            mapped_cert: false,
            role: Some("admin"),
        },
        Who {
            name: "mtls auditor",
            token: None,
            mapped_cert: true,
            role: Some("auditor"),
        },
        Who {
            name: "no token",
            token: None,
            mapped_cert: false,
            role: None,
        },
        Who {
            name: "unknown token",
            token: Some("not-a-token-0123456789"),
            mapped_cert: true,
            role: None,
        },
    ];
    // route, the roles allowed, the status an allowed caller gets.
    let routes: Vec<Route> = vec![
        (
            "POST",
            "/v1/ingest".into(),
            Some("not a batch".into()),
            &["ingest"],
            400,
        ),
        (
            "GET",
            "/v1/events?limit=1".into(),
            None,
            &["reader", "auditor"],
            200,
        ),
        ("GET", "/v1/gaps".into(), None, &["reader", "auditor"], 200),
        ("GET", "/v1/stats".into(), None, &["reader", "auditor"], 200),
        (
            "GET",
            "/v1/agents".into(),
            None,
            &["reader", "auditor"],
            200,
        ),
        (
            "GET",
            "/v1/checkpoint".into(),
            None,
            &["ingest", "reader", "auditor", "admin"],
            200,
        ),
        (
            "GET",
            "/v1/proof/consistency?first=1&second=2".into(),
            None,
            &["ingest", "reader", "auditor", "admin"],
            200,
        ),
        (
            "GET",
            "/v1/proof/inclusion?index=0&size=2".into(),
            None,
            &["auditor"],
            200,
        ),
        ("GET", "/v1/export?limit=2".into(), None, &["auditor"], 200),
        ("GET", "/v1/tokens".into(), None, &["admin"], 200),
        ("DELETE", "/v1/tokens/nobody".into(), None, &["admin"], 404),
        (
            "POST",
            "/v1/retention/run?dry_run=true".into(),
            None,
            &["admin"],
            200,
        ),
        ("GET", "/v1/holds".into(), None, &["admin"], 200),
        (
            "POST",
            "/v1/holds".into(),
            Some("{}".into()),
            &["admin"],
            400,
        ),
        ("DELETE", "/v1/holds/nohold".into(), None, &["admin"], 404),
        (
            "GET",
            "/v1/alerts".into(),
            None,
            &["reader", "auditor"],
            200,
        ),
    ];
    let mut failures = Vec::new();
    for w in &who {
        for (method, path, body, allowed, ok) in &routes {
            let got = r.status(w, method, path, body.clone());
            let want = match w.role {
                None => 401,
                Some(role) if allowed.contains(&role) => *ok,
                Some(_) => 403,
            };
            if got != want {
                failures.push(format!(
                    "{} {method} {path}: got {got}, want {want}",
                    w.name
                ));
            }
        }
        // Creating a token: admin only.
        let body = format!(
            r#"{{"name":"made-by-{}","role":"reader"}}"#,
            w.name.replace(' ', "-")
        );
        let got = r.status(w, "POST", "/v1/tokens", Some(body));
        let want = match w.role {
            None => 401,
            Some("admin") => 200,
            Some(_) => 403,
        };
        if got != want {
            failures.push(format!(
                "{} POST /v1/tokens: got {got}, want {want}",
                w.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The commands, with the real CLI: allowed, or refused naming 403/401.
    let cmd = |args: &[&str], token: Option<&str>, mapped: bool| r.cli(args, token, mapped);
    let query = ["query", "--limit", "1", "--format", "ndjson"];
    let export_to = r.dir.path().join("bundle.ndjson");
    let export = ["export", "--output", export_to.to_str().unwrap()];
    let list = ["token", "list"];
    let holds = ["hold", "list"];
    let alerts = ["alerts", "list", "--json"];
    let dry_run = ["retention", "run", "--dry-run"];
    let cases: Vec<CommandCase> = vec![
        (&query, Some(&reader), false, None),
        (&query, None, true, None),
        (&query, Some(INGEST_TOKEN), false, Some("403")),
        (&query, Some(ADMIN_TOKEN), false, Some("403")),
        (&query, None, false, Some("401")),
        (&query, Some("not-a-token-0123456789"), false, Some("401")),
        (&export, Some(READER_TOKEN), false, None),
        (&export, Some(&reader), false, Some("403")),
        (&list, Some(ADMIN_TOKEN), false, None),
        (&list, Some(READER_TOKEN), false, Some("403")),
        (&list, None, true, Some("403")),
        (&alerts, Some(&reader), false, None),
        (&alerts, Some(INGEST_TOKEN), false, Some("403")),
        (&holds, Some(ADMIN_TOKEN), false, None),
        (&holds, Some(READER_TOKEN), false, Some("403")),
        (&dry_run, Some(ADMIN_TOKEN), false, None),
        (&dry_run, Some(&reader), false, Some("403")),
    ];
    for (args, token, mapped, refusal) in cases {
        let out = cmd(args, token, mapped);
        match refusal {
            None => assert!(out.status.success(), "{args:?} {token:?}: {}", stderr(&out)),
            Some(m) => {
                assert!(
                    !out.status.success(),
                    "{args:?} {token:?} should be refused"
                );
                assert!(
                    stderr(&out).contains(m),
                    "{args:?} {token:?}: {}",
                    stderr(&out)
                );
            }
        }
    }
    // Revoking the reader token stops it at once.
    let out = r.cli(&["token", "revoke", "reader-1"], Some(ADMIN_TOKEN), false);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = r.cli(&query, Some(&reader), false);
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    // A config token cannot be revoked through the API.
    let out = r.cli(&["token", "revoke", "auditor"], Some(ADMIN_TOKEN), false);
    assert!(stderr(&out).contains("409"), "{}", stderr(&out));
    // Only hashes are stored.
    let file = std::fs::read_to_string(r.data().join("tokens.json")).unwrap();
    assert!(!file.contains(&reader), "a token secret is stored in clear");
}

#[test]
fn a_readers_query_is_recorded_in_the_log_with_its_identity_filters_and_count() {
    let mut r = rig();
    ship_some(&r);
    let out = r.cli(
        &["token", "create", "--name", "alice", "--role", "reader"],
        Some(ADMIN_TOKEN),
        false,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let alice = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let out = r.cli(
        &[
            "query", "--actor", "root", "--format", "ndjson", "--limit", "50",
        ],
        Some(&alice),
        false,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let returned = String::from_utf8(out.stdout).unwrap().lines().count();
    assert_eq!(returned, 5, "the five failed root logins");
    // alice trying an export is refused, and that is recorded too.
    let export_to = r.dir.path().join("b.ndjson");
    let out = r.cli(
        &["export", "--output", export_to.to_str().unwrap()],
        Some(&alice),
        false,
    );
    assert!(!out.status.success());

    // The ingest token sending as an agent it is not bound to: 403, recorded.
    let body = BatchWriter::new("someone-else", 1, 7).batch(1..3, |n| format!("forged {n}"));
    let c = r.client(false);
    let status = rt().block_on(async {
        c.post(format!("{}/v1/ingest", r.url))
            .bearer_auth(INGEST_TOKEN)
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 403);

    // An auditor reads the access records.
    let records = |action: &str| -> Vec<serde_json::Value> {
        let out = r.cli(
            &[
                "query",
                "--category",
                "access",
                "--action",
                action,
                "--format",
                "ndjson",
                "--limit",
                "100",
            ],
            Some(READER_TOKEN),
            false,
        );
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let mut mine: Vec<serde_json::Value> = Vec::new();
    wait_for("alice's query recorded", Duration::from_secs(10), || {
        mine = records("query")
            .into_iter()
            .filter(|e| e["actor"]["user"] == "alice")
            .collect();
        !mine.is_empty()
    });
    assert_eq!(mine.len(), 1, "{mine:?}");
    let q = &mine[0];
    assert_eq!(q["agent_id"], "@collector");
    assert_eq!(q["category"], "access");
    assert_eq!(q["outcome"], "success");
    assert_eq!(q["fields"]["role"], "reader");
    assert_eq!(q["fields"]["filter.actor"], "root");
    assert_eq!(q["fields"]["results"], "5");
    assert_eq!(q["src_ip"], "127.0.0.1");
    let created = records("token_create");
    assert!(
        created.iter().any(|e| e["actor"]["user"] == "admin"
            && e["target"]["resource"] == "token:alice"
            && e["fields"]["token_role"] == "reader"),
        "{created:?}"
    );
    let denied = records("access_denied");
    assert!(
        denied.iter().any(|e| e["actor"]["user"] == "alice"
            && e["outcome"] == "failure"
            && e["target"]["resource"] == "/v1/export"),
        "{denied:?}"
    );
    assert!(
        denied
            .iter()
            .any(|e| e["actor"]["user"] == "agents"
                && e["target"]["resource"] == "agent:someone-else"),
        "{denied:?}"
    );
    // The records are chained and Merkle-covered: the store verifies.
    let code = r.collector.take().unwrap().term();
    assert_eq!(code, 0);
    let out = Command::new(env!("CARGO_BIN_EXE_auditship"))
        .args(["verify", "--store"])
        .arg(r.data())
        .arg("--pubkey")
        .arg(r.data().join("collector.pub"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}
