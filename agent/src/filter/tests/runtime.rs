//! The `enrich` and `drop` filters, and the chain: order, verdicts and
//! counters.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;

// ---- enrich ----

#[test]
fn enrich_adds_host_fields_and_tags() {
    let c = chain(
        ISSUE_EXAMPLE
            .split("[[filters]]\ntype = \"redact\"")
            .next()
            .unwrap(),
    );
    let mut ev = web("203.0.113.7", "/a", 200, "curl/8");
    assert_eq!(c.apply(&mut ev), Verdict::Keep);
    assert_eq!(ev.host.as_deref(), Some("web-01"));
    assert_eq!(ev.fields["env"], "prod");
    assert_eq!(ev.fields["team"], "payments");
    assert_eq!(ev.fields["tags"], "pci");
    // Applying again changes nothing: tags are not repeated.
    let before = ev.clone();
    assert_eq!(c.apply(&mut ev), Verdict::Keep);
    assert_eq!(ev, before);
}

#[test]
fn enrich_keeps_existing_values_unless_overwrite() {
    let doc = |overwrite: bool| {
        format!(
            "[[filters]]\ntype = \"enrich\"\nhost = \"web-01\"\noverwrite = {overwrite}\n\
             fields = {{ env = \"prod\", team = \"payments\" }}\n"
        )
    };
    let mut ev = cron();
    ev.fields.insert("env".into(), "staging".into());
    let mut kept = ev.clone();
    let _ = chain(&doc(false)).apply(&mut kept);
    assert_eq!(kept.host.as_deref(), Some("bastion"));
    assert_eq!(kept.fields["env"], "staging");
    assert_eq!(kept.fields["team"], "payments");
    let _ = chain(&doc(true)).apply(&mut ev);
    assert_eq!(ev.host.as_deref(), Some("web-01"));
    assert_eq!(ev.fields["env"], "prod");
    assert_eq!(ev.fields["team"], "payments");
}

#[test]
fn enrich_merges_tags_without_duplicates() {
    let c = chain("[[filters]]\ntype = \"enrich\"\ntags = [\"pci\", \"web\", \"pci\"]\n");
    let mut ev = cron();
    ev.fields.insert("tags".into(), "edge, pci".into());
    let _ = c.apply(&mut ev);
    assert_eq!(ev.fields["tags"], "edge, pci,web");
    let mut ev = cron();
    ev.fields.insert("tags".into(), " ".into());
    let _ = c.apply(&mut ev);
    assert_eq!(ev.fields["tags"], "pci,web");
}

// ---- drop ----

#[test]
fn health_checks_are_dropped_by_url_prefix() {
    let c = chain(ISSUE_EXAMPLE);
    let mut hc = web("10.0.0.5", "/healthz?full=1", 200, "curl/8");
    assert_eq!(c.apply(&mut hc), Verdict::Drop { filter: 2 });
    let mut page = web("10.0.0.5", "/health", 200, "curl/8");
    assert_eq!(c.apply(&mut page), Verdict::Keep);
    // Both conditions must match: a non-HTTP event with that URL is kept.
    let mut other = web("10.0.0.5", "/healthz", 200, "curl/8");
    other.action = "websocket_open".into();
    assert_eq!(c.apply(&mut other), Verdict::Keep);
    let mut probe = web("10.0.0.5", "/ready", 200, "kube-probe/1.30");
    assert_eq!(c.apply(&mut probe), Verdict::Drop { filter: 2 });
    let mut cron_ev = cron();
    assert_eq!(c.apply(&mut cron_ev), Verdict::Drop { filter: 2 });
    assert_eq!(c.dropped(), [("drop[2]".to_owned(), 3)]);
}

#[test]
fn drop_by_cidr_program_status_and_regex() {
    let c = chain(
        r#"
[[filters]]
type = "drop"
rules = [
  { src_ip = "10.0.0.0/8", status = [200, 204] },
  { src_ip = "2001:db8::/32" },
  { src_ip = "192.0.2.1" },
  { program = "CRON", host = "bastion" },
  { category = "authentication", outcome = "success", actor_user = "nagios" },
  { url_regex = "^/static/.*\\.(css|js)$" },
  { raw_regex = "ELB-HealthChecker" },
]
"#,
    );
    let verdict = |mut ev: AuditEvent| c.apply(&mut ev);
    let dropped = Verdict::Drop { filter: 0 };
    assert_eq!(verdict(web("10.20.30.40", "/a", 200, "x")), dropped);
    assert_eq!(verdict(web("10.20.30.40", "/a", 500, "x")), Verdict::Keep);
    assert_eq!(verdict(web("11.0.0.1", "/a", 200, "x")), Verdict::Keep);
    assert_eq!(verdict(web("::ffff:10.1.2.3", "/a", 204, "x")), dropped);
    assert_eq!(verdict(web("2001:db8:1::9", "/a", 500, "x")), dropped);
    assert_eq!(verdict(web("2001:db9::9", "/a", 500, "x")), Verdict::Keep);
    assert_eq!(verdict(web("192.0.2.1", "/a", 500, "x")), dropped);
    assert_eq!(verdict(web("192.0.2.2", "/a", 500, "x")), Verdict::Keep);
    assert_eq!(verdict(cron()), dropped);
    let mut elsewhere = cron();
    elsewhere.host = Some("db-1".into());
    assert_eq!(verdict(elsewhere), Verdict::Keep);
    let mut nagios = ssh_failed("nagios");
    assert_eq!(verdict(nagios.clone()), Verdict::Keep);
    nagios.outcome = Outcome::Success;
    assert_eq!(verdict(nagios), dropped);
    assert_eq!(
        verdict(web("203.0.113.1", "/static/app.js", 200, "x")),
        dropped
    );
    assert_eq!(
        verdict(web("203.0.113.1", "/static/app.js?v=2", 200, "x")),
        Verdict::Keep
    );
    assert_eq!(
        verdict(web("203.0.113.1", "/", 200, "ELB-HealthChecker/2.0")),
        dropped
    );
    // Conditions on absent fields never match.
    let mut bare = AuditEvent::unparsed("x".into());
    assert_eq!(c.apply(&mut bare), Verdict::Keep);
    assert_eq!(c.dropped(), [("drop[0]".to_owned(), 8)]);
}

// ---- the chain ----

#[test]
fn filters_run_in_order_and_a_drop_stops_the_chain() {
    let c = chain(
        r#"
[[filters]]
type = "redact"
[[filters]]
type = "drop"
rules = [{ program = "CRON" }]
[[filters]]
type = "enrich"
tags = ["seen"]
[[filters]]
type = "drop"
rules = [{ url_prefix = "/healthz" }]
"#,
    );
    assert_eq!(c.len(), 4);
    assert!(!c.is_empty());
    let mut ev = cron();
    assert_eq!(c.apply(&mut ev), Verdict::Drop { filter: 1 });
    assert!(
        !ev.fields.contains_key("tags"),
        "enrich after the drop did not run"
    );
    let mut hc = web("10.0.0.1", "/healthz?token=t0k", 200, "x");
    assert_eq!(c.apply(&mut hc), Verdict::Drop { filter: 3 });
    assert_eq!(hc.fields["tags"], "seen");
    assert!(!hc.raw.contains("t0k"), "redacted before it was dropped");
    let mut kept = ssh_failed("root");
    assert_eq!(c.apply(&mut kept), Verdict::Keep);

    assert_eq!(
        c.dropped(),
        [("drop[1]".to_owned(), 1), ("drop[3]".to_owned(), 1)]
    );
    assert_eq!(c.dropped_total(), 2);
    assert_eq!(c.redacted(), [("redact[0]".to_owned(), 1)]);
    assert_eq!(c.redacted_total(), 1);

    let empty = build_chain(&[]).unwrap();
    assert!(empty.is_empty());
    let mut ev = cron();
    assert_eq!(empty.apply(&mut ev), Verdict::Keep);
    assert!(empty.dropped().is_empty());
    assert_eq!(empty.dropped_total(), 0);
}

#[test]
fn one_chain_is_shared_by_threads_and_counts_them_all() {
    fn shareable<T: Send + Sync>() {}
    shareable::<FilterChain>();
    let c = Arc::new(chain(ISSUE_EXAMPLE));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                for i in 0..250 {
                    let url = if i % 2 == 0 { "/healthz" } else { "/a?token=x" };
                    let _ = c.apply(&mut web("10.0.0.1", url, 200, "curl/8"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(c.dropped_total(), 500);
    assert_eq!(c.redacted_total(), 500);
}

proptest! {
    #[test]
    fn v4_blocks_match_by_prefix_bits(net in any::<u32>(), ip in any::<u32>(), prefix in 0u8..=32) {
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        let block = IpNet::parse(&format!("{}/{prefix}", std::net::Ipv4Addr::from(net & mask))).unwrap();
        let inside = block.contains(std::net::Ipv4Addr::from(ip).into());
        prop_assert_eq!(inside, ip & mask == net & mask);
    }
}
