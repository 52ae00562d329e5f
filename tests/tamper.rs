//! The tamper matrix: a real agent ships to a real collector, both stop,
//! and then each kind of tampering is applied to a copy of the collector's
//! data directory. `auditship verify --store` must fail on every copy and
//! name the record; on the untouched original it must pass. An export
//! bundle with an altered event must fail `auditship verify --bundle`.
//!
//! The store is edited with the segment layout documented in
//! `collector/src/store/segments/mod.rs` (version 4: event records of kind
//! 1, holding the sealed line, or kind 4, holding the canonical bytes and
//! the two chain hashes in binary), written out here independently of the
//! collector's code. Edited events are written back as kind 1.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use auditship_core::identity::Identity;
use auditship_core::{canonical, seal, AuditEvent};
use common::*;

const LINES: usize = 300;

/// One record of a segment file.
#[derive(Clone, Debug)]
struct Rec {
    /// Offset of the frame.
    offset: usize,
    /// Frame bytes (length, checksum, body).
    frame: Vec<u8>,
}

impl Rec {
    fn body(&self) -> &[u8] {
        &self.frame[8..]
    }
    fn is_event(&self) -> bool {
        matches!(self.body()[0], 1 | 4)
    }
    fn seq(&self) -> u64 {
        u64::from_le_bytes(self.body()[9..17].try_into().unwrap())
    }
    fn leaf(&self) -> u64 {
        u64::from_le_bytes(self.body()[25..33].try_into().unwrap())
    }
    fn agent_len(&self) -> usize {
        u16::from_le_bytes(self.body()[33..35].try_into().unwrap()) as usize
    }
    fn agent(&self) -> String {
        String::from_utf8(self.body()[35..35 + self.agent_len()].to_vec()).unwrap()
    }
    /// The sealed line: as stored (kind 1), or rebuilt from the canonical
    /// bytes and the binary hashes (kind 4).
    fn payload(&self) -> Vec<u8> {
        let rest = &self.body()[35 + self.agent_len()..];
        if self.body()[0] == 1 {
            return rest.to_vec();
        }
        let hex = |h: &[u8]| h.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let (hash, prev, canonical) = (&rest[..32], &rest[32..64], &rest[64..]);
        let mut line = canonical[..canonical.len() - 1].to_vec();
        line.extend_from_slice(
            format!(
                ",\"hash\":\"{}\",\"prev_hash\":\"{}\"}}",
                hex(hash),
                hex(prev)
            )
            .as_bytes(),
        );
        line
    }
    /// A record with this body, checksummed.
    fn with_body(offset: usize, body: &[u8]) -> Rec {
        let mut frame = Vec::with_capacity(body.len() + 8);
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
        frame.extend_from_slice(body);
        Rec { offset, frame }
    }
    /// The same event record with `payload` as its sealed line (kind 1).
    fn with_payload(&self, payload: &[u8]) -> Rec {
        let mut body = self.body()[..35 + self.agent_len()].to_vec();
        body[0] = 1;
        body.extend_from_slice(payload);
        Rec::with_body(self.offset, &body)
    }
    fn with_leaf(&self, leaf: u64) -> Rec {
        let mut body = self.body().to_vec();
        body[25..33].copy_from_slice(&leaf.to_le_bytes());
        Rec::with_body(self.offset, &body)
    }
}

struct Segment {
    path: PathBuf,
    header: Vec<u8>,
    recs: Vec<Rec>,
}

impl Segment {
    fn read(data_dir: &Path) -> Segment {
        let dir = data_dir.join("store/segments");
        let mut segs: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        segs.sort();
        assert_eq!(segs.len(), 1, "the test expects one segment: {segs:?}");
        let data = fs::read(&segs[0]).unwrap();
        let mut recs = Vec::new();
        let mut at = 24;
        while at < data.len() {
            let len = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
            recs.push(Rec {
                offset: at,
                frame: data[at..at + 8 + len].to_vec(),
            });
            at += 8 + len;
        }
        Segment {
            path: segs[0].clone(),
            header: data[..24].to_vec(),
            recs,
        }
    }

    /// Writes the records back, recomputing offsets.
    fn write(&mut self) {
        let mut out = self.header.clone();
        for r in &mut self.recs {
            r.offset = out.len();
            out.extend_from_slice(&r.frame);
        }
        fs::write(&self.path, out).unwrap();
    }

    /// Index (in `recs`) of the agent's `n`-th event.
    fn agent_event(&self, n: usize) -> usize {
        self.recs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_event() && r.agent() == "e2e-agent")
            .nth(n)
            .unwrap()
            .0
    }
}

/// The sealed form of `payload`'s event with `raw` (or its own raw),
/// chained to `prev`; returns it and its hash.
fn reseal(
    payload: &[u8],
    raw: Option<&str>,
    prev: &auditship_core::Hash,
) -> (Vec<u8>, auditship_core::Hash) {
    let mut ev: AuditEvent = serde_json::from_slice(payload).unwrap();
    if let Some(r) = raw {
        ev.raw = r.into();
    }
    let mut bytes = canonical::encode(&ev);
    let hash = seal::seal_in_place(&mut bytes, prev);
    (bytes, hash)
}

fn verify(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_auditship"))
        .arg("verify")
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn every_kind_of_tampering_is_detected_and_the_record_named() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let ccfg = collector_config(
        dir.path(),
        port,
        "insecure_plain_http = true",
        "[integrity]\ncheckpoint_interval = \"200ms\"\ncheckpoint_every = 50\n",
    );
    let log = dir.path().join("auth.log");
    append_lines(
        &log,
        (0..LINES).map(|i| format!("Nov 22 10:00:{:02} host sshd[{i}]: Accepted password for user{i} from 10.0.0.{} port 22 ssh2", i % 60, i % 250)),
    );
    let collector = Proc::start(
        &["collector", "--config", ccfg.to_str().unwrap()],
        &dir.path().join("c.log"),
    );
    let acfg = agent_config(
        dir.path(),
        log.to_str().unwrap(),
        &url,
        &format!("token = \"{INGEST_TOKEN}\""),
    );
    let agent = Proc::start(
        &["agent", "--config", acfg.to_str().unwrap()],
        &dir.path().join("a.log"),
    );
    wait_for("all lines stored", Duration::from_secs(60), || {
        stored_count(port) >= LINES as u64
    });
    // A checkpoint that covers every record, then a bundle against it.
    wait_for_checkpoint_of_everything(port);
    let bundle = dir.path().join("bundle.ndjson");
    let out = Command::new(env!("CARGO_BIN_EXE_auditship"))
        .args([
            "export",
            "--url",
            &url,
            "--token",
            READER_TOKEN,
            "--with-proofs",
            "--action",
            "ssh_login",
            "-o",
        ])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(agent.term(), 0);
    assert_eq!(collector.term(), 0);

    let data = dir.path().join("collector-data");
    let pubkey = data.join("collector.pub");
    let pk = pubkey.to_str().unwrap();

    // The untouched store and bundle verify.
    let (code, text) = verify(&["--store", data.to_str().unwrap(), "--pubkey", pk]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("OK"), "{text}");
    let (code, text) = verify(&["--bundle", bundle.to_str().unwrap(), "--pubkey", pk]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&format!("OK: {LINES} event(s)")), "{text}");

    let case = |name: &str, tamper: &dyn Fn(&Path), expect: &[String]| {
        let copy = dir.path().join(format!("case-{name}"));
        copy_dir(&data, &copy);
        tamper(&copy);
        let (code, text) = verify(&["--store", copy.to_str().unwrap(), "--pubkey", pk]);
        assert_eq!(code, 1, "{name}: verify passed a tampered store:\n{text}");
        for e in expect {
            assert!(
                text.contains(e.as_str()),
                "{name}: expected {e:?} in:\n{text}"
            );
        }
    };
    let seg = Segment::read(&data);
    let k = seg.agent_event(100);
    let (off_k, seq_k) = (seg.recs[k].offset, seg.recs[k].seq());
    let off_k1 = seg.recs[k + 1].offset;
    let seq_k1 = seg.recs[k + 1].seq();

    case(
        "byte-changed",
        &|d| {
            let mut s = Segment::read(d);
            let r = &mut s.recs[k];
            let at = r.frame.len() - 200;
            r.frame[at] ^= 0x20;
            s.write();
        },
        &[format!("segment 1 offset {off_k}"), "checksum".into()],
    );
    case(
        "record-deleted",
        &|d| {
            let mut s = Segment::read(d);
            s.recs.remove(k);
            s.write();
        },
        &[
            format!("offset {off_k}"),
            "missing (deleted)".into(),
            format!("seq {seq_k1}"),
        ],
    );
    case(
        "records-swapped",
        &|d| {
            let mut s = Segment::read(d);
            s.recs.swap(k, k + 1);
            s.write();
        },
        &[
            format!("offset {off_k}"),
            format!("seq {seq_k1}"),
            "moved or inserted".into(),
        ],
    );
    let total_events = seg.recs.iter().filter(|r| r.is_event()).count();
    case(
        "tail-truncated",
        &|d| {
            let mut s = Segment::read(d);
            let cut = s.recs.len() - 10;
            s.recs.truncate(cut);
            s.write();
        },
        &["tail truncated".into(), format!("covers {total_events}")],
    );
    case(
        "re-chained-forgery",
        &|d| {
            // Change one event and re-chain every later event of the agent,
            // with valid checksums and leaf numbers: only the signed
            // checkpoints can tell.
            let mut s = Segment::read(d);
            let mut prev = seal::unseal(&s.recs[k].payload()).unwrap().prev;
            for i in k..s.recs.len() {
                if !s.recs[i].is_event() || s.recs[i].agent() != "e2e-agent" {
                    continue;
                }
                let raw = (i == k).then_some("Accepted password for root from 203.0.113.9");
                let (payload, hash) = reseal(&s.recs[i].payload(), raw, &prev);
                prev = hash;
                s.recs[i] = s.recs[i].with_payload(&payload);
            }
            s.write();
        },
        &[
            "Merkle root".into(),
            format!("segment 1 offset {off_k}"),
            format!("seq {seq_k}"),
        ],
    );
    case(
        "forged-checkpoint",
        &|d| {
            let path = d.join("checkpoints.ndjson");
            let text = fs::read_to_string(&path).unwrap();
            let last: auditship_core::checkpoint::SignedCheckpoint =
                serde_json::from_str(text.lines().last().unwrap()).unwrap();
            let forger = Identity::from_seed([66; 32]);
            let mut forged = auditship_core::checkpoint::SignedCheckpoint::sign(
                &last.origin,
                last.size + 5,
                &[7; 32],
                &forger,
            );
            forged.key_id = last.key_id.clone();
            let mut text = text;
            text.push_str(&serde_json::to_string(&forged).unwrap());
            text.push('\n');
            fs::write(&path, text).unwrap();
        },
        &[
            "signature does not verify".into(),
            "forged or altered".into(),
        ],
    );
    case(
        "fork",
        &|d| {
            // A second, validly sealed event with seq_k, inserted after it;
            // leaf numbers shifted so that they stay consistent.
            let mut s = Segment::read(d);
            let prev = seal::unseal(&s.recs[k].payload()).unwrap().prev;
            let (payload, _) = reseal(
                &s.recs[k].payload(),
                Some("Accepted password for mallory"),
                &prev,
            );
            let twin = s.recs[k]
                .with_payload(&payload)
                .with_leaf(s.recs[k].leaf() + 1);
            s.recs.insert(k + 1, twin);
            for i in k + 2..s.recs.len() {
                if s.recs[i].is_event() {
                    s.recs[i] = s.recs[i].with_leaf(s.recs[i].leaf() + 1);
                }
            }
            s.write();
        },
        &[
            format!("offset {off_k1}"),
            format!("seq {seq_k} of agent e2e-agent appears after seq {seq_k}"),
        ],
    );
    case(
        "gap",
        &|d| {
            // One event removed and the leaf numbers closed up: only the
            // agent's chain can tell.
            let mut s = Segment::read(d);
            s.recs.remove(k);
            for i in k..s.recs.len() {
                if s.recs[i].is_event() {
                    s.recs[i] = s.recs[i].with_leaf(s.recs[i].leaf() - 1);
                }
            }
            s.write();
        },
        &[
            format!("offset {off_k}"),
            format!("seq {seq_k1}"),
            "does not link to the previous event".into(),
        ],
    );

    // A bundle with one event altered.
    let text = fs::read_to_string(&bundle).unwrap();
    let altered = text.replacen("user42 from", "user43 from", 1);
    assert_ne!(altered, text);
    let bad = dir.path().join("bundle-altered.ndjson");
    fs::write(&bad, altered).unwrap();
    let (code, out) = verify(&["--bundle", bad.to_str().unwrap(), "--pubkey", pk]);
    assert_eq!(code, 1, "{out}");
    // The independent verifier agrees on the real export, both ways.
    let python = |b: &Path| {
        Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/verify.py"))
            .arg(b)
            .arg("--pubkey")
            .arg(&pubkey)
            .output()
            .expect("python3 runs (CI installs it)")
    };
    let good_py = python(&bundle);
    assert!(
        good_py.status.success(),
        "{}",
        String::from_utf8_lossy(&good_py.stdout)
    );
    let bad_py = python(&bad);
    assert_eq!(
        bad_py.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&bad_py.stdout)
    );
    let line = text
        .lines()
        .position(|l| l.contains("user42 from"))
        .unwrap()
        + 1;
    assert!(out.contains(&format!("line {line}")), "{out}");
    assert!(out.contains("altered"), "{out}");
}
