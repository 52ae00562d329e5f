use std::io::Write;

use super::*;
use crate::{canonical, AuditEvent, Timestamp};

fn event(seq: u64, agent: &str, raw: &str) -> Vec<u8> {
    let mut ev = AuditEvent::unparsed(raw.to_string());
    ev.agent_id = Some(agent.into());
    ev.seq = Some(seq);
    ev.ts = Timestamp::parse_rfc3339("2026-11-22T10:00:00.250+01:00", 0).map(|t| t.0);
    canonical::encode(&ev)
}

fn key() -> crate::identity::Identity {
    crate::identity::Identity::from_seed([5; 32])
}

fn batch(agent: &str, seqs: &[u64]) -> (BatchHeader, Vec<u8>) {
    let mut body = Vec::new();
    for &s in seqs {
        body.extend(event(s, agent, &format!("line {s}")));
        body.push(b'\n');
    }
    let header = BatchHeader {
        auditship_batch: WIRE_VERSION,
        agent_id: agent.into(),
        queue: format_queue(0xfeed),
        first: seqs[0],
        last: *seqs.last().unwrap(),
        events: seqs.len() as u64,
        prev_hash: hex::encode(&seal::GENESIS),
        last_hash: String::new(),
        key: String::new(),
        sig: String::new(),
        pipelined: false,
    };
    let mut chain = seal::GENESIS;
    for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        chain = seal::chain_hash(&chain, line);
    }
    let mut header = header;
    header.last_hash = hex::encode(&chain);
    header.sign(&key());
    (header, body)
}

#[test]
fn a_batch_survives_encode_inflate_decode() {
    let (header, body) = batch("web-1", &[3, 4, 7]);
    let plain = encode(&header, &body, Compression::None);
    for c in [Compression::Gzip(1), Compression::Zstd(1)] {
        let wire = encode(&header, &body, c);
        let inflated = inflate(&wire, c.encoding().header_value(), 1 << 20).unwrap();
        assert_eq!(&*inflated, &plain[..], "{c:?}");
    }
    let wire = encode(&header, &body, Compression::Zstd(1));
    let inflated = inflate(&wire, Some("zstd"), 1 << 20).unwrap();
    let d = decode(&inflated).unwrap();
    assert_eq!(d.header, header);
    assert_eq!(d.queue, 0xfeed);
    let seqs: Vec<u64> = d.events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [3, 4, 7]);
    assert_eq!(d.events[2].view.raw, "line 7");
    // The event bytes are passed through exactly as the agent encoded them.
    assert_eq!(d.events[0].bytes, &event(3, "web-1", "line 3")[..]);
    assert_eq!(
        d.events[0].view.time_millis(),
        Timestamp::new(1_795_338_000, 250_000_000, 60)
            .unwrap()
            .unix_millis()
    );
}

#[test]
fn a_gzip_bomb_stops_at_the_limit() {
    // 64 MiB of zeros compresses to ~64 KiB.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    let err = inflate(&bomb, Some("gzip"), 4 << 20).unwrap_err();
    assert!(matches!(err, WireError::TooLarge { limit } if limit == 4 << 20));
}

#[test]
fn garbage_gzip_and_unknown_encodings_are_refused() {
    let err = inflate(b"not gzip at all", Some("gzip"), 1 << 20).unwrap_err();
    assert!(matches!(err, WireError::Gzip(_)), "{err}");
    let err = inflate(b"x", Some("br"), 1 << 20).unwrap_err();
    assert!(err.to_string().contains("br"), "{err}");
    assert!(matches!(
        inflate(&[0; 10], None, 5),
        Err(WireError::TooLarge { .. })
    ));
}

#[test]
fn bad_bodies_name_the_line_and_the_problem() {
    let (header, body) = batch("web-1", &[1, 2]);
    let head = serde_json::to_string(&header).unwrap();

    let not_json = format!("{head}\n{{\"seq\": 1, oops\n");
    let e = decode(not_json.as_bytes()).unwrap_err().to_string();
    assert!(e.starts_with("line 2: not an audit event"), "{e}");

    let e = decode(b"hello\n").unwrap_err().to_string();
    assert!(e.starts_with("line 1: bad batch header"), "{e}");

    // Out of order.
    let (_, mut swapped) = batch("web-1", &[2]);
    swapped.extend(event(1, "web-1", "x"));
    let e = decode(format!("{head}\n{}", String::from_utf8(swapped).unwrap()).as_bytes())
        .unwrap_err()
        .to_string();
    assert!(e.contains("out of order"), "{e}");

    // An event claiming another agent.
    let mut other = event(1, "db-1", "x");
    other.push(b'\n');
    other.extend(event(2, "web-1", "y"));
    let e = decode(format!("{head}\n{}", String::from_utf8(other).unwrap()).as_bytes())
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"db-1\""), "{e}");

    // Count mismatch.
    let mut short = head.clone().into_bytes();
    short.push(b'\n');
    short.extend(&body[..body.len() / 2 + 1]);
    let cut = short.iter().rposition(|&b| b == b'\n').unwrap();
    short.truncate(cut + 1);
    assert!(decode(&short).is_err());

    // A correct body passes.
    let mut good = head.into_bytes();
    good.push(b'\n');
    good.extend(&body);
    assert_eq!(decode(&good).unwrap().events.len(), 2);
}

#[test]
fn queue_identities_round_trip_and_reject_junk() {
    assert_eq!(parse_queue(&format_queue(u64::MAX)), Ok(u64::MAX));
    assert!(parse_queue("12").is_err());
    assert!(parse_queue("zzzzzzzzzzzzzzzz").is_err());
}

#[test]
fn the_chain_and_signature_of_a_batch_are_checked_not_assumed() {
    let (header, body) = batch("web-1", &[1, 2, 3]);
    let good = encode(&header, &body, Compression::None);
    let d = decode(&good).unwrap();
    assert!(d.chain_intact());
    assert!(d.signed_by(&key().public()));
    assert!(d.self_signed());
    assert_eq!(d.key, key().public());
    assert!(!d.signed_by(&crate::identity::Identity::from_seed([6; 32]).public()));
    // Each event's hash links to the one before it.
    assert_eq!(
        d.events[0].hash,
        seal::chain_hash(&seal::GENESIS, d.events[0].bytes)
    );
    assert_eq!(
        d.events[2].hash,
        seal::chain_hash(&d.events[1].hash, d.events[2].bytes)
    );

    // An altered event still decodes (it is evidence), but its chain no
    // longer reaches the signed last_hash.
    let text = String::from_utf8(good.clone())
        .unwrap()
        .replace("line 2", "line X");
    let d = decode(text.as_bytes()).unwrap();
    assert!(!d.chain_intact());

    // A header changed after signing fails the signature.
    let mut moved = header.clone();
    moved.first = 0;
    let d2 = encode(&moved, &body, Compression::None);
    assert!(!decode(&d2).unwrap().signed_by(&key().public()));

    // Malformed hash fields are a bad header.
    let mut bad = header.clone();
    bad.sig = "00".into();
    let e = decode(&encode(&bad, &body, Compression::None))
        .unwrap_err()
        .to_string();
    assert!(e.contains("sig is not 128 hex digits"), "{e}");
}

#[test]
fn lines_split_exactly_like_slice_split() {
    for body in [
        &b""[..],
        b"\n",
        b"\n\n",
        b"a",
        b"a\n",
        b"a\nb",
        b"a\n\nb\n",
        b"{\"x\":1}\n{\"y\":2}\n",
    ] {
        let ours: Vec<&[u8]> = split_lines(body).collect();
        let std: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
        assert_eq!(ours, std, "{:?}", String::from_utf8_lossy(body));
    }
}
