//! Webhook delivery against a real HTTP server on 127.0.0.1, and the retry
//! loop on tokio's paused clock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use super::record::{Alert, Status};
use super::rules::{Kind, Severity, WebhookConfig, WebhookToken};
use super::webhook::{with_retries, Attempt, Dispatcher, HookStats, Notice, Policy};

#[test]
fn backoff_doubles_is_capped_jittered_from_zero_and_honours_retry_after() {
    let p = Policy {
        max_tries: 10,
        initial: Duration::from_secs(1),
        max: Duration::from_secs(30),
    };
    assert_eq!(p.delay(1, 0.999_999, None).as_millis(), 999);
    assert_eq!(p.delay(3, 0.5, None), Duration::from_secs(2));
    assert_eq!(
        p.delay(9, 0.5, None),
        Duration::from_secs(15),
        "capped at 30 s"
    );
    assert_eq!(
        p.delay(4, 0.0, None),
        Duration::ZERO,
        "full jitter starts at zero"
    );
    assert_eq!(
        p.delay(1, 0.1, Some(Duration::from_secs(7))),
        Duration::from_secs(7)
    );
    assert_eq!(
        p.delay(1, 0.1, Some(Duration::from_secs(900))),
        Duration::from_secs(30)
    );
}

#[tokio::test(start_paused = true)]
async fn retries_sleep_on_tokios_clock_and_give_up_after_max_tries() {
    let stats = HookStats::default();
    let policy = Policy {
        max_tries: 5,
        initial: Duration::from_secs(10),
        max: Duration::from_secs(60),
    };
    let start = tokio::time::Instant::now();
    let tries = AtomicU32::new(0);
    let r = with_retries(policy, &stats, |_| {
        tries.fetch_add(1, Ordering::Relaxed);
        async {
            Attempt::Retry {
                why: "connection refused".into(),
                after: Some(Duration::from_secs(5)),
            }
        }
    })
    .await;
    let e = r.unwrap_err();
    assert!(e.contains("gave up after 5 tries"), "{e}");
    assert_eq!(tries.load(Ordering::Relaxed), 5);
    assert_eq!(stats.retries.load(Ordering::Relaxed), 4);
    assert_eq!(stats.failures.load(Ordering::Relaxed), 1);
    assert_eq!(stats.sent.load(Ordering::Relaxed), 0);
    // Four sleeps of at least Retry-After (5 s), each at most the bound.
    let slept = start.elapsed();
    assert!(slept >= Duration::from_secs(20), "{slept:?}");
    assert!(slept <= Duration::from_secs(10 + 20 + 40 + 60), "{slept:?}");
}

#[tokio::test(start_paused = true)]
async fn a_fatal_answer_is_not_retried() {
    let stats = HookStats::default();
    let policy = Policy {
        max_tries: 5,
        initial: Duration::from_secs(1),
        max: Duration::from_secs(1),
    };
    let r = with_retries(policy, &stats, |_| async {
        Attempt::Fatal("answered 400".into())
    })
    .await;
    assert!(r.is_err());
    assert_eq!(stats.retries.load(Ordering::Relaxed), 0);
    assert_eq!(stats.failures.load(Ordering::Relaxed), 1);
}

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    bodies: Vec<serde_json::Value>,
    keys: Vec<String>,
    auth: Vec<String>,
}

#[derive(Clone)]
struct Receiver {
    /// Answer this status to the first `fail` requests, then 200.
    fail: u32,
    status: StatusCode,
    calls: Arc<AtomicU32>,
    seen: Arc<Mutex<Seen>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let n = r.calls.fetch_add(1, Ordering::SeqCst);
    let mut s = r.seen.lock().unwrap();
    s.bodies.push(serde_json::from_str(&body).unwrap());
    let h = |k: &str| {
        headers
            .get(k)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    s.keys.push(h("idempotency-key"));
    s.auth.push(h("authorization"));
    if n < r.fail {
        r.status
    } else {
        StatusCode::OK
    }
}

/// A real HTTP receiver on 127.0.0.1:0; returns its URL.
async fn receiver(r: Receiver) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(r);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook")
}

fn hook(url: String, tries: u32) -> WebhookConfig {
    WebhookConfig {
        name: "ops".into(),
        url,
        token: WebhookToken::Inline("s3cret".into()),
        timeout: Duration::from_secs(5),
        max_tries: tries,
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(50),
        ca_file: None,
        min_severity: Severity::Low,
    }
}

fn alert(severity: Severity) -> Alert {
    Alert {
        id: "ssh_brute_force-1-abcd".into(),
        rule: "ssh_brute_force".into(),
        kind: Kind::Threshold,
        severity,
        description: "many failed SSH logins".into(),
        key: "src_ip=203.0.113.50".into(),
        group: BTreeMap::from([("src_ip".to_string(), "203.0.113.50".to_string())]),
        count: 50,
        first_ts: 1_795_392_000_000,
        last_ts: 1_795_392_049_000,
        opened: 1_795_392_050_000,
        status: Status::Firing,
        samples: vec![3, 4, 5],
        src_ip: Some("203.0.113.50".parse().unwrap()),
        user: Some("root".into()),
        host: Some("web-1".into()),
    }
}

async fn wait_until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_retries_a_failing_receiver_until_it_accepts() {
    let r = Receiver {
        fail: 2,
        status: StatusCode::SERVICE_UNAVAILABLE,
        calls: Arc::default(),
        seen: Arc::default(),
    };
    let url = receiver(r.clone()).await;
    let d = Dispatcher::start(
        &[hook(url, 5)],
        "collector-1".into(),
        &tokio::runtime::Handle::current(),
    )
    .unwrap();
    d.send(&Notice {
        alert: alert(Severity::High),
        stored: Some((1234, 56)),
    });
    // Below min_severity: not sent at all.
    d.send(&Notice {
        alert: alert(Severity::Info),
        stored: None,
    });
    let stats = d.stats()[0].clone();
    wait_until("delivery", || stats.sent.load(Ordering::Relaxed) == 1).await;
    assert_eq!(stats.retries.load(Ordering::Relaxed), 2);
    assert_eq!(stats.failures.load(Ordering::Relaxed), 0);
    d.close(Duration::from_secs(5)).await;
    assert_eq!(r.calls.load(Ordering::SeqCst), 3, "two 503s, then 200");
    let s = r.seen.lock().unwrap();
    assert!(
        s.keys.iter().all(|k| k == "ssh_brute_force-1-abcd:firing"),
        "{:?}",
        s.keys
    );
    assert!(s.auth.iter().all(|a| a == "Bearer s3cret"));
    let b = &s.bodies[2];
    assert_eq!(b["version"], 1);
    assert_eq!(b["collector"], "collector-1");
    assert_eq!(b["alert"]["rule"], "ssh_brute_force");
    assert_eq!(b["alert"]["count"], 50);
    assert_eq!(b["alert"]["src_ip"], "203.0.113.50");
    assert_eq!(b["alert"]["status"], "firing");
    assert_eq!(b["stored"]["leaf"], 1234);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_gives_up_on_a_4xx_and_after_max_tries_and_counts_it() {
    let bad = Receiver {
        fail: u32::MAX,
        status: StatusCode::BAD_REQUEST,
        calls: Arc::default(),
        seen: Arc::default(),
    };
    let down = Receiver {
        fail: u32::MAX,
        status: StatusCode::BAD_GATEWAY,
        calls: Arc::default(),
        seen: Arc::default(),
    };
    let (u1, u2) = (receiver(bad.clone()).await, receiver(down.clone()).await);
    let mut h2 = hook(u2, 3);
    h2.name = "down".into();
    let d = Dispatcher::start(
        &[hook(u1, 3), h2],
        "c".into(),
        &tokio::runtime::Handle::current(),
    )
    .unwrap();
    d.send(&Notice {
        alert: alert(Severity::Critical),
        stored: None,
    });
    let st = d.stats();
    wait_until("both given up", || {
        st.iter().all(|s| s.failures.load(Ordering::Relaxed) == 1)
    })
    .await;
    d.close(Duration::from_secs(5)).await;
    assert_eq!(bad.calls.load(Ordering::SeqCst), 1, "400 is not retried");
    assert_eq!(
        down.calls.load(Ordering::SeqCst),
        3,
        "502 is tried max_tries times"
    );
    assert_eq!(st[1].retries.load(Ordering::Relaxed), 2);
    assert_eq!(
        st[0].sent.load(Ordering::Relaxed) + st[1].sent.load(Ordering::Relaxed),
        0
    );
}
