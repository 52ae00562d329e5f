//! End-to-end tests of the collector's edges with real processes: TLS and
//! mutual TLS with certificates generated here (rcgen), tokens, request
//! limits, malformed bodies, gzip and zstd bombs, and the dead-letter round
//! trip (of a zstd and of a gzip batch).

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use auditship_core::wire::Compression;
use common::*;

fn start(dir: &Path, args: &[&str], log: &str) -> Proc {
    Proc::start(args, &dir.join(log))
}

/// A blocking HTTPS/HTTP client made the way the agent makes it.
fn client(ca: Option<&Path>, cert: Option<(&Path, &Path)>) -> reqwest::Client {
    auditship_tls::install_default_provider();
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(20));
    if let Some(ca) = ca {
        b = b.tls_backend_preconfigured(auditship_tls::client_config(ca, cert).unwrap());
    }
    b.build().unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// POSTs a body to /v1/ingest, gzip-compressed or not: (status, body), or
/// the transport error.
fn post(
    c: &reqwest::Client,
    url: &str,
    token: &str,
    gzip: bool,
    body: Vec<u8>,
) -> Result<(u16, String), String> {
    post_encoded(c, url, token, gzip.then_some("gzip"), body)
}

/// POSTs a body to /v1/ingest with a Content-Encoding.
fn post_encoded(
    c: &reqwest::Client,
    url: &str,
    token: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> Result<(u16, String), String> {
    rt().block_on(async {
        let mut r = c
            .post(format!("{url}/v1/ingest"))
            .bearer_auth(token)
            .body(body);
        if let Some(e) = encoding {
            r = r.header("content-encoding", e);
        }
        let resp = r.send().await.map_err(|e| format!("{e:?}"))?;
        let s = resp.status().as_u16();
        Ok((s, resp.text().await.unwrap_or_default()))
    })
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn wait_up(c: &reqwest::Client, url: &str) {
    wait_for("collector up", Duration::from_secs(30), || {
        rt().block_on(async { c.get(format!("{url}/health")).send().await.is_ok() })
    });
}

#[test]
fn tls_server_only_and_mutual_tls_and_hostname_checks() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let port = free_port();
    let tls = format!(
        "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        pki.server_cert.display(),
        pki.server_key.display()
    );
    let ccfg = collector_config(dir.path(), port, "", &tls);
    let collector = start(
        dir.path(),
        &["collector", "--config", ccfg.to_str().unwrap()],
        "c1.log",
    );
    let url = format!("https://localhost:{port}");
    let trusted = client(Some(&pki.ca), None);
    wait_up(&trusted, &url);

    // Server-only TLS: an agent trusting the CA delivers.
    let log = dir.path().join("auth.log");
    append_lines(&log, (0..50).map(|n| format!("Nov 22 10:00:{:02} h sshd[1]: Failed password for root from 192.0.2.{n} port 22 ssh2", n % 60)));
    let acfg = agent_config(
        dir.path(),
        &log.display().to_string(),
        &url,
        &format!(
            "token = \"{INGEST_TOKEN}\"\nca_file = \"{}\"",
            pki.ca.display()
        ),
    );
    let agent = start(
        dir.path(),
        &["agent", "--config", acfg.to_str().unwrap()],
        "a1.log",
    );
    let ca = pki.ca.to_str().unwrap();
    wait_for("50 events over TLS", Duration::from_secs(60), || {
        stored_raws(&url, &["--ca-file", ca]).len() == 50
    });
    agent.kill9();

    // A wrong host name: the certificate names localhost, not 127.0.0.1.
    let by_ip = format!("https://127.0.0.1:{port}");
    let e = post(&trusted, &by_ip, INGEST_TOKEN, false, b"x".to_vec()).unwrap_err();
    assert!(
        e.contains("NotValidForName") || e.to_lowercase().contains("certificate"),
        "{e}"
    );
    // An untrusted CA.
    let other = make_pki(&{
        let d = dir.path().join("other");
        std::fs::create_dir_all(&d).unwrap();
        d
    });
    let e = post(
        &client(Some(&other.ca), None),
        &url,
        INGEST_TOKEN,
        false,
        b"x".to_vec(),
    )
    .unwrap_err();
    assert!(
        e.contains("UnknownIssuer") || e.to_lowercase().contains("certificate"),
        "{e}"
    );
    collector.kill9();

    // Mutual TLS: no client certificate, no connection; with one, delivery.
    let mtls = format!("{tls}client_ca_file = \"{}\"\n", pki.ca.display());
    let ccfg = collector_config(dir.path(), port, "", &mtls);
    let _collector = start(
        dir.path(),
        &["collector", "--config", ccfg.to_str().unwrap()],
        "c2.log",
    );
    let with_cert = client(Some(&pki.ca), Some((&pki.client_cert, &pki.client_key)));
    wait_up(&with_cert, &url);
    let e = post(&trusted, &url, INGEST_TOKEN, false, b"x".to_vec());
    assert!(
        e.is_err(),
        "a client without a certificate got an answer: {e:?}"
    );
    let (status, _) = post(&with_cert, &url, INGEST_TOKEN, false, b"x".to_vec()).unwrap();
    assert_eq!(status, 400, "the handshake passed, the body is garbage");
    append_lines(&log, (0..10).map(|n| format!("Nov 22 10:01:{n:02} h sshd[1]: Accepted password for alice from 192.0.2.9 port 22 ssh2")));
    let acfg = agent_config(
        dir.path(),
        &log.display().to_string(),
        &url,
        &format!(
            "token = \"{INGEST_TOKEN}\"\nca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"",
            pki.ca.display(),
            pki.client_cert.display(),
            pki.client_key.display()
        ),
    );
    let _agent = start(
        dir.path(),
        &["agent", "--config", acfg.to_str().unwrap()],
        "a2.log",
    );
    // The reader CLI has no client certificate option: ask /v1/stats with one.
    let c = with_cert.clone();
    wait_for("60 events over mutual TLS", Duration::from_secs(60), || {
        rt().block_on(async {
            let r = c
                .get(format!("{url}/v1/stats"))
                .bearer_auth(READER_TOKEN)
                .send()
                .await;
            match r {
                Ok(r) => {
                    serde_json::from_str::<serde_json::Value>(&r.text().await.unwrap_or_default())
                        .ok()
                        .and_then(|v| v["store"]["agent_events"].as_u64())
                        == Some(60)
                }
                Err(_) => false,
            }
        })
    });
}

#[test]
fn bad_tokens_bodies_and_bombs_get_clear_answers_and_a_bounded_collector() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let limits = "[limits]\nmax_body_bytes = \"2MiB\"\nmax_decompressed_bytes = \"8MiB\"\n";
    let ccfg = collector_config(dir.path(), port, "insecure_plain_http = true", limits);
    let collector = start(
        dir.path(),
        &["collector", "--config", ccfg.to_str().unwrap()],
        "c.log",
    );
    let url = format!("http://127.0.0.1:{port}");
    let c = client(None, None);
    wait_up(&c, &url);

    let mut writer = BatchWriter::new("e2e-agent", 0xab, 7);
    let good = String::from_utf8(writer.batch(1..2, |s| format!("line {s}"))).unwrap();

    let (s, b) = post(
        &c,
        &url,
        "wrong-token-0123456789",
        false,
        good.clone().into_bytes(),
    )
    .unwrap();
    assert_eq!(s, 401, "{b}");
    let (s, b) = post(&c, &url, READER_TOKEN, false, good.clone().into_bytes()).unwrap();
    assert_eq!(s, 403, "a reader token cannot send: {b}");
    let other_agent = good.replace("e2e-agent", "someone-else");
    let (s, b) = post(&c, &url, INGEST_TOKEN, false, other_agent.into_bytes()).unwrap();
    assert_eq!(s, 403, "{b}");
    assert!(
        b.contains("may not send as agent \\\"someone-else\\\""),
        "{b}"
    );

    let (s, b) = post(
        &c,
        &url,
        INGEST_TOKEN,
        true,
        b"definitely not gzip".to_vec(),
    )
    .unwrap();
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("not valid gzip"), "{b}");
    let head = good.lines().next().unwrap();
    let bad_json = format!("{head}\n{{\"seq\": 1, oops\n");
    let (s, b) = post(&c, &url, INGEST_TOKEN, true, gzip(bad_json.as_bytes())).unwrap();
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("line 2: not an audit event"), "{b}");
    // The same for zstd: garbage, a truncated frame, bad JSON inside.
    let zstd = |data: &[u8]| Compression::Zstd(1).compress(&[data]);
    let zpost = |body: Vec<u8>| post_encoded(&c, &url, INGEST_TOKEN, Some("zstd"), body).unwrap();
    let (s, b) = zpost(b"definitely not zstd".to_vec());
    assert_eq!(s, 400, "{b}");
    assert!(
        b.contains("body is not valid zstd: Unknown frame descriptor"),
        "{b}"
    );
    let whole = zstd(good.as_bytes());
    let (s, b) = zpost(whole[..whole.len() - 4].to_vec());
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("body is not valid zstd"), "{b}");
    let (s, b) = zpost(zstd(bad_json.as_bytes()));
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("line 2: not an audit event"), "{b}");
    let (s, b) = post_encoded(
        &c,
        &url,
        INGEST_TOKEN,
        Some("br"),
        good.clone().into_bytes(),
    )
    .unwrap();
    assert_eq!(s, 400, "{b}");
    assert!(
        b.contains("unsupported Content-Encoding \\\"br\\\" (use zstd, gzip"),
        "{b}"
    );

    let big = vec![b'x'; 3 << 20];
    let (s, b) = post(&c, &url, INGEST_TOKEN, false, big).unwrap();
    assert_eq!(s, 413, "{b}");

    // 1 GiB of zeros in about 1 MiB of gzip (within the body limit):
    // refused once it inflates past 8 MiB.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        e.write_all(&zeros).unwrap();
    }
    let bomb = e.finish().unwrap();
    assert!(bomb.len() < 2 << 20, "bomb is {} bytes", bomb.len());
    let (s, b) = post(&c, &url, INGEST_TOKEN, true, bomb).unwrap();
    assert_eq!(s, 413, "{b}");
    assert!(b.contains("inflates past the limit"), "{b}");
    // 1 GiB of zeros in a few tens of KB of zstd, streamed without a
    // declared size (so the collector has to inflate up to its limit), and
    // the same with the size declared (refused before inflating).
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    for _ in 0..1024 {
        e.write_all(&zeros).unwrap();
    }
    let bomb = e.finish().unwrap();
    assert!(bomb.len() < 100 << 10, "zstd bomb is {} bytes", bomb.len());
    let (s, b) = post_encoded(&c, &url, INGEST_TOKEN, Some("zstd"), bomb).unwrap();
    assert_eq!(s, 413, "{b}");
    assert!(
        b.contains("inflates past the limit of 8388608 bytes"),
        "{b}"
    );
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    e.set_pledged_src_size(Some(1 << 30)).unwrap();
    for _ in 0..1024 {
        e.write_all(&zeros).unwrap();
    }
    let (s, b) = post_encoded(&c, &url, INGEST_TOKEN, Some("zstd"), e.finish().unwrap()).unwrap();
    assert_eq!(s, 413, "{b}");
    let hwm_kb: u64 = std::fs::read_to_string(format!("/proc/{}/status", collector.pid()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    assert!(
        hwm_kb < 100 << 10,
        "collector peak RSS {hwm_kb} kB after 1 GiB bombs"
    );

    // And a good batch is still taken, once (zstd, then gzip).
    let (s, b) = zpost(zstd(good.as_bytes()));
    assert_eq!((s, b.contains("\"stored\":1")), (200, true), "{b}");
    let (s, b) = post(&c, &url, INGEST_TOKEN, true, gzip(good.as_bytes())).unwrap();
    assert_eq!((s, b.contains("\"duplicates\":1")), (200, true), "{b}");
    // An event altered after the agent signed the batch: refused with 422
    // (the agent dead-letters it) and recorded, never stored.
    let altered = good.replace("line 1", "line X");
    let (s, b) = post(&c, &url, INGEST_TOKEN, true, gzip(altered.as_bytes())).unwrap();
    assert_eq!(s, 422, "{b}");
    assert!(b.contains("altered after signing"), "{b}");
    let integrity = stored_raws(&url, &["--category", "integrity"]);
    assert!(
        integrity.iter().any(|r| r.contains("refused")),
        "{integrity:?}"
    );
}

#[test]
fn a_bad_token_keeps_events_queued_until_it_is_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let ccfg = collector_config(dir.path(), port, "insecure_plain_http = true", "");
    let collector = start(
        dir.path(),
        &["collector", "--config", ccfg.to_str().unwrap()],
        "c.log",
    );
    let log = dir.path().join("auth.log");
    let lines: Vec<String> = (0..200)
        .map(|n| format!("Nov 22 10:02:{:02} h sudo[{n}]:  alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/true {n}", n % 60))
        .collect();
    append_lines(&log, lines.iter().cloned());
    let wrong = agent_config(
        dir.path(),
        &log.display().to_string(),
        &url,
        "token = \"not-the-right-token-000\"",
    );
    let agent = start(
        dir.path(),
        &["agent", "--config", wrong.to_str().unwrap()],
        "a.log",
    );
    wait_for("the 401 to be logged", Duration::from_secs(30), || {
        std::fs::read_to_string(dir.path().join("a.log")).is_ok_and(|l| l.contains("401"))
    });
    std::thread::sleep(Duration::from_secs(2));
    agent.kill9();
    assert_eq!(stored_count(port), 0);
    let dead = dir.path().join("agent-state/deadletter/collector");
    assert!(
        !dead.exists() || std::fs::read_dir(&dead).unwrap().next().is_none(),
        "a 401 must not dead-letter"
    );
    let right = agent_config(
        dir.path(),
        &log.display().to_string(),
        &url,
        &format!("token = \"{INGEST_TOKEN}\""),
    );
    let agent = start(
        dir.path(),
        &["agent", "--config", right.to_str().unwrap()],
        "a.log",
    );
    wait_for("all 200 stored", Duration::from_secs(60), || {
        stored_count(port) == 200
    });
    assert_exactly_once(&stored_raws(&url, &[]), &lines);
    // SIGTERM: both drain and exit cleanly (the agent's idle keep-alive
    // connection must not hold up the collector's shutdown).
    assert_eq!(agent.term(), 0);
    assert_eq!(collector.term(), 0);
}

#[test]
fn a_full_store_disk_gets_503_with_retry_after_and_the_collector_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    let Some(disk) = Tmpfs::mount(&small, "3m") else {
        eprintln!("SKIPPED collector full-disk test: mounting a tmpfs needs root");
        return;
    };
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let cfg_path = collector_config(
        &small,
        port,
        "insecure_plain_http = true",
        "[store]\nsegment_bytes = \"1MiB\"\n",
    );
    let _collector = start(
        dir.path(),
        &["collector", "--config", cfg_path.to_str().unwrap()],
        "c.log",
    );
    let c = client(None, None);
    wait_up(&c, &url);
    let mut writer = BatchWriter::new("e2e-agent", 0xab, 7);
    let mut batch =
        |first: u64, n: u64| gzip(&writer.batch(first..first + n, |seq| format!("{seq:0>400}")));
    // Fill the disk: 1,000 events of ~500 bytes per batch.
    let (mut next, mut acked) = (1u64, 0u64);
    let mut refused = None;
    for _ in 0..40 {
        let resp = rt().block_on(async {
            let r = c
                .post(format!("{url}/v1/ingest"))
                .bearer_auth(INGEST_TOKEN)
                .header("content-encoding", "gzip")
                .body(batch(next, 1000))
                .send()
                .await
                .unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), retry, r.text().await.unwrap())
        });
        match resp {
            (200, _, _) => {
                acked += 1000;
                next += 1000;
            }
            (status, retry, body) => {
                refused = Some((status, retry, body));
                break;
            }
        }
    }
    let (status, retry, body) = refused.expect("the disk never filled up");
    assert_eq!(status, 503, "{body}");
    assert!(
        retry.is_some_and(|r| r.parse::<u64>().unwrap() >= 1),
        "Retry-After missing"
    );
    assert!(body.contains("full"), "{body}");
    assert!(acked > 0, "some batches fit before the disk filled");
    // Still running, and holding exactly what it acknowledged.
    assert_eq!(stored_count(port), acked);
    // Space comes back: the same batch is now stored, once.
    disk.resize("64m");
    let (s, b) = post(&c, &url, INGEST_TOKEN, true, batch(next, 1000)).unwrap();
    assert_eq!((s, b.contains("\"stored\":1000")), (200, true), "{b}");
    assert_eq!(stored_count(port), acked + 1000);
}

#[test]
fn an_unreachable_first_endpoint_fails_over_to_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let (dead, port) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{port}");
    let ccfg = collector_config(dir.path(), port, "insecure_plain_http = true", "");
    let _collector = start(
        dir.path(),
        &["collector", "--config", ccfg.to_str().unwrap()],
        "c.log",
    );
    let log = dir.path().join("auth.log");
    let lines: Vec<String> = (0..100)
        .map(|n| format!("Nov 22 10:03:{:02} h sshd[{n}]: Failed password for root from 192.0.2.1 port {n} ssh2", n % 60))
        .collect();
    append_lines(&log, lines.iter().cloned());
    // endpoints = ["http://127.0.0.1:<nothing listening>", "<the collector>"]
    let endpoints = format!("http://127.0.0.1:{dead}\", \"{url}");
    let acfg = agent_config(
        dir.path(),
        &log.display().to_string(),
        &endpoints,
        &format!("token = \"{INGEST_TOKEN}\""),
    );
    let _agent = start(
        dir.path(),
        &["agent", "--config", acfg.to_str().unwrap()],
        "a.log",
    );
    wait_for(
        "all 100 stored through the second endpoint",
        Duration::from_secs(60),
        || stored_count(port) == 100,
    );
    assert_exactly_once(&stored_raws(&url, &[]), &lines);
    let agent_log = std::fs::read_to_string(dir.path().join("a.log")).unwrap();
    assert!(
        agent_log.contains(&format!("127.0.0.1:{dead}")),
        "the first endpoint was tried: {agent_log}"
    );
}
