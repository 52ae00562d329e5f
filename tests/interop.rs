//! Interop: export bundles built with nothing but `auditship_core`'s public
//! API are checked by `tests/interop/verify.py`, a verifier written in
//! Python from the documented formats alone, and by
//! `auditship_core::bundle::verify`. The two must agree on good bundles and
//! on tampered ones, and name the same line and event.
//!
//! Needs `python3` on the PATH (CI installs it, see `.ci/run`).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use auditship_core::bundle::{self, BundleEntry, BundleError, BundleHeader, BundleSummary};
use auditship_core::checkpoint::SignedCheckpoint;
use auditship_core::event::Flags;
use auditship_core::identity::{Identity, PublicKey};
use auditship_core::merkle::{self, MemoryTree};
use auditship_core::{canonical, hex, seal, AuditEvent, Category, Outcome, Timestamp};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/verify.py");
const ORIGIN: &str = "interop.example/log";

/// The chains of the log: (agent, queue). One agent has two queues.
const CHAINS: [(&str, &str); 3] = [
    ("web-01", "00000000000000a1"),
    ("db-02-ø", "00000000000000b2"),
    ("web-01", "00000000000000a3"),
];

/// One record of the log, as the collector would store it.
#[derive(Clone)]
struct Record {
    chain: usize,
    /// Position in its chain (0 for the chain's first event).
    pos: usize,
    seq: u64,
    /// The sealed form.
    sealed: String,
}

/// Event `i` of the log: fields vary with `i`; `raw` starts "line NNN".
fn event(i: usize) -> AuditEvent {
    let controls: String = (0u8..0x20).map(char::from).collect();
    let raw = match i % 5 {
        0 => format!("line {i:03} sshd[42]: Accepted publickey for \"root\" from 10.0.0.{i}"),
        1 => format!("line {i:03} ctl:{controls}|del:\u{7f}|back\\slash|quote\"|sep\u{2028}"),
        2 => format!("line {i:03} ünïcødé ✓ 日本語 🚀\ttab"),
        3 => format!("line {i:03} GET /search?q=%22x%22&a=1 HTTP/1.1"),
        _ => format!("line {i:03}"),
    };
    let mut ev = match i % 4 {
        0 => AuditEvent::new(Category::Authentication, "login", Outcome::Success, raw),
        1 => AuditEvent::new(Category::Web, "request", Outcome::Failure, raw),
        2 => AuditEvent::unparsed(raw),
        _ => AuditEvent::new(Category::Privilege, "sudo", Outcome::Unknown, raw),
    };
    if i % 2 == 0 {
        ev.ts = Timestamp::from_civil(2024, 2, 29, 23, 59, 58, i as u32 * 1_000_001, 19_800);
        ev.host = Some(format!("host-{i}.example"));
        ev.pid = Some(1000 + i as u32);
    }
    if i % 3 == 0 {
        ev.observed_ts = Timestamp::from_civil(2024, 3, 1, 0, 0, 1, 0, 0);
        let ip = if i % 2 == 0 {
            "10.1.2.3"
        } else {
            "2001:db8::1"
        };
        ev.src_ip = Some(ip.parse().unwrap());
        ev.src_port = Some(22);
        ev.actor.user = Some("ro\"ot".into());
        ev.actor.uid = Some(0);
    }
    if i % 4 == 1 {
        let http = ev.http_mut();
        http.method = Some("GET".into());
        http.status = Some(404);
        http.bytes = Some(1 << 40);
        http.forwarded_for = vec!["10.0.0.1".into(), "10.0.0.2".into()];
        ev.user_agent = Some("Mozilla/5.0 (\"quoted\")".into());
    }
    if i % 5 == 2 {
        for (k, v) in [
            ("zeta", "z"),
            ("Alpha", "A"),
            ("ä", "ä"),
            ("日本", "cjk"),
            ("a\u{1}b", "ctl"),
        ] {
            ev.fields.insert(k.into(), v.into());
        }
        ev.target.resource = Some("/etc/shadow".into());
        ev.reason = Some("tab\there, cr\rthere".into());
    }
    if i % 7 == 3 {
        ev.flags.insert(Flags::TRUNCATED);
        ev.flags.insert(Flags::NO_NEWLINE);
    }
    if i % 6 == 5 {
        ev.command = Some("rm -rf '/tmp/x y'".into());
        ev.cwd = Some("/home/ü".into());
        ev.target.user = Some("bob".into());
        ev.target.gid = Some(u32::MAX);
    }
    ev
}

/// `n` records, chains interleaved, each chain sealed from GENESIS.
/// Sequence numbers skip now and then (allowed), and one chain starts
/// above 2^53, where floating-point JSON readers would lose precision.
fn records(n: usize) -> Vec<Record> {
    let mut prev = [seal::GENESIS; 3];
    let mut seq = [0, 9_007_199_254_740_993, 500];
    let mut pos = [0; 3];
    (0..n)
        .map(|i| {
            let chain = [0, 1, 0, 2, 1, 0][i % 6];
            seq[chain] += 1 + u64::from(i % 4 == 3);
            let mut ev = event(i);
            ev.agent_id = Some(CHAINS[chain].0.into());
            ev.seq = Some(seq[chain]);
            let mut buf = canonical::encode(&ev);
            prev[chain] = seal::seal_in_place(&mut buf, &prev[chain]);
            pos[chain] += 1;
            Record {
                chain,
                pos: pos[chain] - 1,
                seq: seq[chain],
                sealed: String::from_utf8(buf).unwrap(),
            }
        })
        .collect()
}

/// A log: its records in store order and their Merkle tree.
struct Log {
    records: Vec<Record>,
    tree: MemoryTree,
    identity: Identity,
}

impl Log {
    fn new(records: Vec<Record>) -> Log {
        let mut tree = MemoryTree::new();
        for r in &records {
            tree.push(seal::leaf_of_sealed(r.sealed.as_bytes()));
        }
        Log {
            records,
            tree,
            identity: Identity::from_seed([7; 32]),
        }
    }

    fn checkpoint(&self, size: u64) -> SignedCheckpoint {
        let root = merkle::root(&self.tree, size).unwrap();
        SignedCheckpoint::sign(ORIGIN, size, &root, &self.identity)
    }

    /// Bundle lines (header first) holding the records at `leaves`.
    fn bundle(&self, cp: &SignedCheckpoint, leaves: &[u64]) -> Vec<String> {
        let header = BundleHeader {
            auditship_bundle: bundle::BUNDLE_VERSION,
            checkpoint: cp.clone(),
            query: serde_json::json!({"agent": "any", "since": "2024-01-01T00:00:00Z"}),
            events: leaves.len() as u64,
        };
        let mut lines = vec![serde_json::to_string(&header).unwrap()];
        for &leaf in leaves {
            let r = &self.records[leaf as usize];
            let proof = merkle::inclusion_proof(&self.tree, leaf, cp.size).unwrap();
            let entry = BundleEntry {
                leaf_index: leaf,
                queue: CHAINS[r.chain].1.into(),
                event: r.sealed.clone(),
                proof: proof.iter().map(|h| hex::encode(h)).collect(),
            };
            lines.push(serde_json::to_string(&entry).unwrap());
        }
        lines
    }

    /// How the verifiers name the event on line `line` of `lines`.
    fn names(&self, lines: &[String], line: usize) -> (u64, String, u64) {
        let entry: BundleEntry = serde_json::from_str(&lines[line - 1]).unwrap();
        let r = &self.records[entry.leaf_index as usize];
        (entry.leaf_index, CHAINS[r.chain].0.to_string(), r.seq)
    }
}

/// Links between neighbours of one chain among the exported `leaves`.
fn expected_links(log: &Log, leaves: &[u64]) -> u64 {
    let mut last: HashMap<usize, usize> = HashMap::new();
    let mut links = 0;
    for &leaf in leaves {
        let r = &log.records[leaf as usize];
        if last.insert(r.chain, r.pos).is_some_and(|p| p + 1 == r.pos) {
            links += 1;
        }
    }
    links
}

/// Exit code and output (stdout then stderr) of verify.py on `lines`.
fn python(dir: &Path, lines: &[String], key: Option<&PublicKey>) -> (i32, String) {
    let bundle = dir.join("bundle.ndjson");
    std::fs::write(&bundle, lines.join("\n") + "\n").unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg(SCRIPT)
        .arg(&bundle)
        .env("PYTHONIOENCODING", "utf-8");
    if let Some(key) = key {
        let file = dir.join("collector.pub");
        std::fs::write(&file, key.to_hex() + "\n").unwrap();
        cmd.arg("--pubkey").arg(file);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("the interop test needs python3 on the PATH (CI installs it in .ci/run): {e}")
    });
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().expect("verify.py exited normally"), text)
}

fn rust(lines: &[String], key: &PublicKey) -> Result<BundleSummary, BundleError> {
    bundle::verify(&(lines.join("\n") + "\n"), key)
}

/// The number after `label` in verify.py's summary.
fn number_after(text: &str, label: &str) -> u64 {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {text}"))
        + label.len();
    text[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Both verifiers accept `lines`, and agree with what the test built.
fn assert_good(dir: &Path, log: &Log, lines: &[String], leaves: &[u64]) {
    let key = log.identity.public();
    let (code, out) = python(dir, lines, Some(&key));
    assert_eq!(code, 0, "verify.py rejects a good bundle:\n{out}");
    assert!(out.contains("signature: verified"), "{out}");
    let chains = leaves
        .iter()
        .map(|&l| log.records[l as usize].chain)
        .collect::<std::collections::HashSet<_>>();
    let links = expected_links(log, leaves);
    assert_eq!(number_after(&out, "events: "), leaves.len() as u64, "{out}");
    assert_eq!(number_after(&out, "chains: "), chains.len() as u64, "{out}");
    assert_eq!(number_after(&out, "chains, "), links, "{out}");
    let summary = rust(lines, &key).expect("bundle::verify accepts the bundle");
    assert_eq!(
        (summary.events, summary.chains, summary.links),
        (leaves.len() as u64, chains.len() as u64, links)
    );
    // Without the key everything else is still checked, and it says so.
    let (code, out) = python(dir, lines, None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("signature: not checked"), "{out}");
}

/// Both verifiers reject `lines` at `line`, naming `event` there.
fn assert_rejected(
    dir: &Path,
    case: &str,
    lines: &[String],
    key: &PublicKey,
    line: usize,
    event: Option<(u64, String, u64)>,
) {
    let (code, out) = python(dir, lines, Some(key));
    assert_eq!(code, 1, "{case}: verify.py must fail:\n{out}");
    let place = match &event {
        Some((leaf, agent, seq)) => {
            format!("line {line} (leaf {leaf}, agent {agent}, seq {seq}): ")
        }
        None => format!("line {line}: "),
    };
    assert!(
        out.contains(&place),
        "{case}: verify.py must name {place:?}:\n{out}"
    );
    let err = rust(lines, key).expect_err(case);
    assert_eq!(
        (err.line, err.event.clone()),
        (line, event),
        "{case}: bundle::verify says {err}"
    );
}

#[test]
fn python_verifier_agrees_with_bundle_verify() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let log = Log::new(records(40));
    // The log grew past its last checkpoint: proofs are against size 37.
    let cp = log.checkpoint(37);
    let all: Vec<u64> = (0..37).collect();
    let good = log.bundle(&cp, &all);
    // The stored forms really hold escaped controls, quotes and non-ASCII.
    for needle in ["\\u001f", "\\b", "\\\"", "\u{7f}", "🚀", "ø"] {
        assert!(
            log.records[..37].iter().any(|r| r.sealed.contains(needle)),
            "{needle}"
        );
    }
    assert_good(dir, &log, &good, &all);

    // A filtered export holds pieces of chains: still valid, fewer links.
    let some: Vec<u64> = (0..37).filter(|i| i % 4 != 1 && *i != 20).collect();
    let subset = log.bundle(&cp, &some);
    assert!(expected_links(&log, &some) < expected_links(&log, &all));
    let chains: std::collections::HashSet<_> = some
        .iter()
        .map(|&l| log.records[l as usize].chain)
        .collect();
    assert_eq!(
        chains.len(),
        CHAINS.len(),
        "the subset holds pieces of every chain"
    );
    assert_good(dir, &log, &subset, &some);

    let key = log.identity.public();

    // One character of one event's raw line changed.
    let mut altered = good.clone();
    let mut entry: BundleEntry = serde_json::from_str(&altered[9]).unwrap();
    assert!(entry.event.contains("line 008"));
    entry.event = entry.event.replacen("line 008", "line 00B", 1);
    altered[9] = serde_json::to_string(&entry).unwrap();
    assert_rejected(
        dir,
        "altered event",
        &altered,
        &key,
        10,
        Some(log.names(&good, 10)),
    );

    // One hash of one inclusion proof changed.
    let mut wrong_proof = good.clone();
    let mut entry: BundleEntry = serde_json::from_str(&wrong_proof[15]).unwrap();
    let flipped = if entry.proof[1].starts_with('0') {
        "1"
    } else {
        "0"
    };
    entry.proof[1].replace_range(0..1, flipped);
    wrong_proof[15] = serde_json::to_string(&entry).unwrap();
    assert_rejected(
        dir,
        "wrong proof hash",
        &wrong_proof,
        &key,
        16,
        Some(log.names(&good, 16)),
    );

    // The checkpoint's root replaced by another (the root at size 36): the
    // signature no longer verifies; without the key, the first proof fails.
    let mut wrong_root = good.clone();
    let mut header: BundleHeader = serde_json::from_str(&wrong_root[0]).unwrap();
    header.checkpoint.root = log.checkpoint(36).root;
    assert_ne!(header.checkpoint.root, cp.root);
    wrong_root[0] = serde_json::to_string(&header).unwrap();
    assert_rejected(dir, "wrong checkpoint root", &wrong_root, &key, 1, None);
    let (code, out) = python(dir, &wrong_root, None);
    assert_eq!(code, 1, "{out}");
    let (leaf, agent, seq) = log.names(&good, 2);
    assert!(
        out.contains(&format!(
            "line 2 (leaf {leaf}, agent {agent}, seq {seq}): inclusion proof"
        )),
        "{out}"
    );

    // Two event lines swapped: the second of them is out of order.
    let mut swapped = good.clone();
    swapped.swap(5, 6);
    assert_rejected(
        dir,
        "events out of order",
        &swapped,
        &key,
        7,
        Some(log.names(&swapped, 7)),
    );

    // The right bundle checked with another collector's key.
    let other = Identity::from_seed([8; 32]).public();
    assert_rejected(dir, "wrong key", &good, &other, 1, None);

    // The last event line dropped, the header's count left as it was.
    assert_rejected(dir, "event missing", &good[..good.len() - 1], &key, 1, None);
}

/// An event whose stored bytes are not the canonical form: the chain hash
/// still checks (it is over the re-encoded form) and the proof covers the
/// bytes as stored, so only the sealed-form check catches it.
#[test]
fn non_canonical_stored_bytes_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut recs = records(12);
    // "\u0041" for the "A" of "Alpha" is the same JSON string, escaped differently.
    let odd = recs
        .iter()
        .position(|r| r.sealed.contains("\"Alpha\""))
        .unwrap();
    recs[odd].sealed = recs[odd].sealed.replacen("\"Alpha\"", "\"\\u0041lpha\"", 1);
    let log = Log::new(recs);
    let all: Vec<u64> = (0..12).collect();
    let lines = log.bundle(&log.checkpoint(12), &all);
    let line = odd + 2;
    let (code, out) = python(dir.path(), &lines, Some(&log.identity.public()));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("sealed canonical form"), "{out}");
    let (leaf, agent, seq) = log.names(&lines, line);
    assert!(
        out.contains(&format!(
            "line {line} (leaf {leaf}, agent {agent}, seq {seq})"
        )),
        "{out}"
    );
    let err = rust(&lines, &log.identity.public()).expect_err("bundle::verify must fail too");
    assert_eq!(
        (err.line, err.event.clone()),
        (line, Some((leaf, agent, seq))),
        "{err}"
    );
}
