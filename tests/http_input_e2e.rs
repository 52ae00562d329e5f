//! End-to-end tests of the HTTP input with the real `auditship agent`:
//! events POSTed over real sockets, the agent SIGKILLed right after 200s
//! and restarted, a queue that fills up because its collector output
//! cannot deliver, malformed bodies and wrong tokens.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{free_port, http_get, output_events, wait_for, Proc, Rng};
use serde_json::Value;

const TOKEN: &str = "http-input-token-0123456789";

/// An answer: status, headers (lower-case names), body.
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Value,
}

/// POSTs `body` to the input's /v1/events with the token (unless `token`
/// says otherwise) and `extra` headers; `Err` if the connection fails.
fn post(
    port: u16,
    body: &[u8],
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut req = format!(
        "POST /v1/events HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let text = String::from_utf8_lossy(&resp);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no response: {text:?}")))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    })
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The config: the HTTP input on `port`, a file output, and `extra`
/// (top-level keys, then tables) appended.
fn config(dir: &Path, port: u16, input_extra: &str, tail: &str) -> PathBuf {
    let cfg = dir.join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
state_dir = "{state}"
shutdown_grace = "2s"
heartbeat = "0s"

[[inputs]]
type = "http"
name = "app"
address = "127.0.0.1:{port}"
token = "{TOKEN}"
json_mapping = {{ "who" = "actor.user" }}
{input_extra}

[[outputs]]
type = "file"
path = "{out}"
{tail}
"#,
            state = dir.join("state").display(),
            out = dir.join("out.ndjson").display(),
        ),
    )
    .unwrap();
    cfg
}

fn start(cfg: &Path, dir: &Path, port: u16) -> Proc {
    let agent = Proc::start(
        &["agent", "--config", cfg.to_str().unwrap()],
        &dir.join("agent.log"),
    );
    wait_for("the HTTP input", Duration::from_secs(30), || {
        http_get(port, "/health").is_some_and(|(s, _)| s == 200)
    });
    agent
}

/// Events to send: (id, JSON text).
fn events(next: &mut u64, n: u64) -> Vec<(String, String)> {
    (0..n)
        .map(|_| {
            *next += 1;
            let id = format!("e{next}");
            let text = format!(
                r#"{{"request_id":"{id}","action":"e2e_post","who":"u{next}","n":{next}}}"#
            );
            (id, text)
        })
        .collect()
}

/// A body in one of the accepted forms, chosen by `form`: NDJSON, an array,
/// one object, gzip-compressed NDJSON.
fn body(evs: &[(String, String)], form: u64) -> (Vec<u8>, bool) {
    let texts: Vec<&str> = evs.iter().map(|(_, t)| t.as_str()).collect();
    match form % 4 {
        1 => (
            format!("[\n  {}\n]", texts.join(",\n  ")).into_bytes(),
            false,
        ),
        2 if texts.len() == 1 => (texts[0].as_bytes().to_vec(), false),
        3 => (gzip(format!("{}\n", texts.join("\n")).as_bytes()), true),
        _ => (format!("{}\n", texts.join("\n")).into_bytes(), false),
    }
}

/// Posts a batch; the ids if it was acknowledged (200), `None` if the
/// connection failed (the agent was killed). Any other answer fails.
fn send(port: u16, evs: &[(String, String)], form: u64) -> Option<Vec<String>> {
    let (b, gz) = body(evs, form);
    let h: &[(&str, &str)] = if gz {
        &[("Content-Encoding", "gzip")]
    } else {
        &[]
    };
    let a = post(port, &b, Some(TOKEN), h).ok()?;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["events"], evs.len() as u64);
    assert_eq!(a.body["queued"], evs.len() as u64);
    Some(evs.iter().map(|(id, _)| id.clone()).collect())
}

/// Every event acknowledged with 200 is in the file output exactly once,
/// although the agent is SIGKILLed right after 200s, while another client
/// is posting. Requests cut off by a kill got no answer and may or may not
/// be stored, but never twice: nothing is stored twice.
#[test]
fn acknowledged_events_survive_sigkills_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let port = free_port();
    let cfg = config(dir, port, "", "");
    let mut rng = Rng::from_clock("http_input_e2e");
    let mut next = 0u64;
    let mut sent: HashMap<String, String> = HashMap::new();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    for _round in 0..8 {
        let agent = start(&cfg, dir, port);
        // A second client posting until the kill cuts it off.
        let background: Vec<(String, String)> = {
            let mut b = Vec::new();
            for _ in 0..40 {
                b.push(events(&mut next, rng.range(1, 30)));
            }
            b.concat()
        };
        sent.extend(background.iter().cloned());
        let other = {
            let acked = acked.clone();
            let seed = rng.next();
            std::thread::spawn(move || {
                for (i, chunk) in background.chunks(10).enumerate() {
                    match send(port, chunk, seed.wrapping_add(i as u64)) {
                        Some(ids) => acked.lock().unwrap().extend(ids),
                        None => return,
                    }
                }
            })
        };
        for _ in 0..rng.range(2, 8) {
            let evs = events(&mut next, rng.range(1, 60));
            sent.extend(evs.iter().cloned());
            let ids = send(port, &evs, rng.next()).expect("the agent answers");
            acked.lock().unwrap().extend(ids);
        }
        // SIGKILL right after the last 200.
        agent.kill9();
        other.join().unwrap();
    }
    let agent = start(&cfg, dir, port);
    let acked = acked.lock().unwrap().clone();
    let want: HashSet<&String> = acked.iter().collect();
    let out = dir.join("out.ndjson");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got: HashSet<String> = output_events(&out)
            .iter()
            .map(|e| e["request_id"].as_str().unwrap().to_string())
            .collect();
        if want.iter().all(|id| got.contains(*id)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "acknowledged events missing: {:?}",
            want.iter()
                .filter(|id| !got.contains(**id))
                .take(5)
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(agent.term(), 0);
    let events = output_events(&out);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for e in &events {
        let id = e["request_id"].as_str().unwrap();
        *counts.entry(id).or_default() += 1;
        assert!(sent.contains_key(id), "{id} was never sent");
        // The raw text is the event exactly as sent, and it was parsed with
        // the input's mapping.
        assert_eq!(e["raw"].as_str().unwrap(), sent[id]);
        assert_eq!(e["actor"]["user"], format!("u{}", &id[1..]));
        assert_eq!(e["action"], "e2e_post");
        assert_eq!(e["source"], "app:127.0.0.1");
        assert!(e["fields"]["http_peer"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"));
    }
    let twice: Vec<_> = counts.iter().filter(|(_, &n)| n > 1).take(5).collect();
    assert!(twice.is_empty(), "stored twice: {twice:?}");
    assert!(
        acked.len() > 100,
        "only {} events acknowledged",
        acked.len()
    );
    eprintln!(
        "{} acknowledged, {} stored, {} sent",
        acked.len(),
        events.len(),
        sent.len()
    );
}

/// A queue that cannot drain (its collector output points at a closed
/// port) fills up: from then on a POST gets 503 with Retry-After at once,
/// and says nothing of it was queued. A wrong token gets 401 and bad JSON
/// gets 400 naming the line; neither stores anything.
#[test]
fn a_full_queue_answers_503_and_bad_requests_store_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (port, closed, metrics) = (free_port(), free_port(), free_port());
    let cfg = config(
        dir,
        port,
        "ack_timeout = \"2s\"\nretry_after = \"3s\"",
        &format!(
            r#"
[[outputs]]
type = "collector"
endpoints = ["http://127.0.0.1:{closed}"]
token = "unused-token-0123456789"
backoff_max = "1s"

[queue]
max_bytes = "4MiB"
segment_bytes = "2MiB"

[metrics]
address = "127.0.0.1:{metrics}"
"#
        ),
    );
    let agent = start(&cfg, dir, port);
    let one = br#"{"request_id":"refused","action":"x"}"#;
    for token in [None, Some("wrong-token-0123456789")] {
        let a = post(port, one, token, &[]).unwrap();
        assert_eq!(a.status, 401, "{token:?}: {}", a.body);
        assert_eq!(
            a.headers.get("www-authenticate").map(String::as_str),
            Some("Bearer")
        );
    }
    let bad = b"{\"request_id\":\"refused\"}\n{\"request_id\":\"refused\", oops}\n";
    let a = post(port, bad, Some(TOKEN), &[]).unwrap();
    assert_eq!(a.status, 400);
    assert!(
        a.body["error"].as_str().unwrap().starts_with("line 2: "),
        "{}",
        a.body
    );
    // The input's counters reach /metrics.
    let sample = |name: &str| {
        let (_, body) = http_get(metrics, "/metrics")?;
        let key = format!("auditship_agent_input_{name}{{input=\"app\",type=\"http\"}} ");
        body.lines()
            .find_map(|l| l.strip_prefix(key.as_str()))
            .and_then(|v| v.parse::<f64>().ok())
    };
    wait_for(
        "the HTTP input's counters on /metrics",
        Duration::from_secs(30),
        || sample("unauthorized_total") == Some(2.0) && sample("invalid_total") == Some(1.0),
    );

    // Fill the queue: ~1 KiB events, 100 per request.
    let pad = "p".repeat(1000);
    let mut acked = Vec::new();
    let mut n = 0;
    let refused = loop {
        let evs: Vec<String> = (0..100)
            .map(|_| {
                n += 1;
                format!(r#"{{"request_id":"f{n}","action":"fill","pad":"{pad}"}}"#)
            })
            .collect();
        let a = post(port, evs.join("\n").as_bytes(), Some(TOKEN), &[]).unwrap();
        match a.status {
            200 => acked.extend((n - 99..=n).map(|i| format!("f{i}"))),
            503 if a.body["maybe_queued"] == false => break a,
            // The request the queue filled up in: it waited ack_timeout.
            503 => assert_eq!(a.body["maybe_queued"], true, "{}", a.body),
            s => panic!("{s}: {}", a.body),
        }
        assert!(n < 100_000, "the queue never filled");
    };
    assert_eq!(
        refused.headers.get("retry-after").map(String::as_str),
        Some("3")
    );
    assert!(
        refused.body["error"]
            .as_str()
            .unwrap()
            .contains("queue is full"),
        "{}",
        refused.body
    );
    // It stays full, and every further POST is refused the same way.
    for _ in 0..3 {
        let a = post(port, one, Some(TOKEN), &[]).unwrap();
        assert_eq!(
            (a.status, &a.body["maybe_queued"]),
            (503, &Value::Bool(false))
        );
        assert!(a.headers.contains_key("retry-after"));
    }
    assert!(
        acked.len() >= 1000,
        "{} acknowledged before the queue filled",
        acked.len()
    );
    // Everything acknowledged reached the file output; nothing refused did.
    let out = dir.join("out.ndjson");
    wait_for(
        "the acknowledged events in the file output",
        Duration::from_secs(60),
        || output_events(&out).len() >= acked.len(),
    );
    // Shutdown cannot deliver to the collector: exit 3, the rest stays queued.
    assert_eq!(agent.term(), 3);
    let stored: Vec<String> = output_events(&out)
        .iter()
        .map(|e| e["request_id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !stored.iter().any(|id| id == "refused"),
        "a refused request was stored"
    );
    let stored: HashSet<&String> = stored.iter().collect();
    assert!(acked.iter().all(|id| stored.contains(id)));
}
