use std::io::Write;

use super::*;

/// NDJSON-like lines that compress the way audit lines do (repetitive,
/// but not trivially).
fn lines(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend_from_slice(
            format!(
                "{{\"seq\":{i},\"action\":\"GET /api/{}\",\"src_ip\":\"10.0.{}.{}\",\"raw\":\"line {i}\"}}\n",
                i % 37,
                i % 7,
                i % 251
            )
            .as_bytes(),
        );
    }
    out
}

/// A zstd stream of `n` MiB of zeros, of unknown size (no content size in
/// the frame header), as a streaming sender would make it.
fn zstd_zeros(mib: usize, level: i32) -> Vec<u8> {
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), level).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..mib {
        enc.write_all(&zeros).unwrap();
    }
    enc.finish().unwrap()
}

#[test]
fn every_compression_round_trips_with_its_content_encoding() {
    let head = b"{\"auditship_batch\":2}\n".as_slice();
    let events = lines(2000);
    let plain = [head, &events].concat();
    for c in [
        Compression::None,
        Compression::Gzip(1),
        Compression::Gzip(9),
        Compression::Zstd(-7),
        Compression::Zstd(-1),
        Compression::Zstd(1),
        Compression::Zstd(3),
        Compression::Zstd(19),
    ] {
        let body = c.compress(&[head, &events]);
        let header = c.encoding().header_value();
        match c {
            Compression::None => assert_eq!(body, plain),
            Compression::Gzip(_) => {
                assert_eq!(header, Some("gzip"));
                assert_eq!(&body[..2], &[0x1f, 0x8b], "gzip magic");
            }
            Compression::Zstd(_) => {
                assert_eq!(header, Some("zstd"));
                assert_eq!(&body[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
            }
        }
        if c != Compression::None {
            // zstd's fast (negative) levels trade ratio for speed.
            let ratio = if matches!(c, Compression::Zstd(l) if l < 0) {
                1
            } else {
                3
            };
            assert!(
                body.len() * ratio < plain.len(),
                "{c:?}: {} bytes",
                body.len()
            );
        }
        let back = inflate(&body, header, plain.len()).unwrap();
        assert_eq!(&*back, &plain[..], "{c:?}");
        if let (Compression::Zstd(_), Cow::Owned(v)) = (c, &back) {
            // The declared size sized the buffer: no growing, no slack.
            assert!(v.capacity() <= plain.len() + 1, "{}", v.capacity());
        }
        // One byte short of the limit is too small.
        let err = inflate(&body, header, plain.len() - 1).unwrap_err();
        assert!(matches!(err, WireError::TooLarge { .. }), "{c:?}: {err}");
        // One contiguous part (zstd's one-shot path) makes the same body
        // and, for zstd, a frame with the same content size and checksum.
        let one = c.compress(&[&plain]);
        assert_eq!(&*inflate(&one, header, plain.len()).unwrap(), &plain[..]);
        if let Compression::Zstd(_) = c {
            for b in [&body, &one] {
                assert_eq!(
                    zstd::zstd_safe::get_frame_content_size(b).ok().flatten(),
                    Some(plain.len() as u64),
                    "{c:?}: content size declared"
                );
                assert_ne!(b[4] & 0b100, 0, "{c:?}: checksum flag set");
            }
        }
    }
}

#[test]
fn content_encodings_parse_case_insensitively_and_others_are_refused() {
    use ContentEncoding::*;
    for (h, want) in [
        (None, Identity),
        (Some(""), Identity),
        (Some("identity"), Identity),
        (Some("gzip"), Gzip),
        (Some("X-Gzip"), Gzip),
        (Some(" zstd "), Zstd),
        (Some("ZSTD"), Zstd),
    ] {
        assert_eq!(ContentEncoding::parse(h).unwrap(), want, "{h:?}");
    }
    let err = ContentEncoding::parse(Some("br")).unwrap_err();
    assert!(matches!(err, WireError::Encoding(ref e) if e == "br"));
    assert_eq!(
        err.to_string(),
        "unsupported Content-Encoding \"br\" (use zstd, gzip, identity or none)"
    );
    // Names round trip through serde as the dead-letter files store them.
    for e in [Identity, Gzip, Zstd] {
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, format!("\"{}\"", e.name()));
        assert_eq!(serde_json::from_str::<ContentEncoding>(&json).unwrap(), e);
    }
}

#[test]
fn a_zstd_bomb_stops_at_the_limit_with_bounded_memory() {
    // 1 GiB of zeros in a few tens of KB, without a declared size: the
    // decoder has to run into the limit.
    let bomb = zstd_zeros(1024, 1);
    assert!(bomb.len() < 100 << 10, "bomb is {} bytes", bomb.len());
    assert_eq!(
        zstd::zstd_safe::get_frame_content_size(&bomb).ok(),
        Some(None)
    );
    let limit = 4 << 20;
    let err = inflate(&bomb, Some("zstd"), limit).unwrap_err();
    assert!(
        matches!(err, WireError::TooLarge { limit: l } if l == limit),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "body inflates past the limit of 4194304 bytes"
    );
    // The output buffer stopped one byte past the limit, and never had
    // room for more.
    let mut dec = zstd::stream::read::Decoder::with_buffer(&bomb[..]).unwrap();
    dec.window_log_max(zstd_window_log_max(limit)).unwrap();
    let out = read_bounded(dec, bomb.len() * 4, limit).unwrap();
    assert_eq!(out.len(), limit + 1);
    assert!(out.capacity() <= limit + 1, "capacity {}", out.capacity());
    // The same for gzip.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 16 << 20]).unwrap();
    let gz = gz.finish().unwrap();
    let out = read_bounded(flate2::read::MultiGzDecoder::new(&gz[..]), 64, limit).unwrap();
    assert_eq!(out.len(), limit + 1);
    assert!(out.capacity() <= limit + 1, "capacity {}", out.capacity());
}

#[test]
fn a_zstd_frame_declaring_more_than_the_limit_is_refused_before_decoding() {
    let body = Compression::Zstd(1).compress(&[&vec![b'a'; 3 << 20]]);
    assert_eq!(
        zstd::zstd_safe::get_frame_content_size(&body).ok(),
        Some(Some(3 << 20))
    );
    let err = inflate(&body, Some("zstd"), 1 << 20).unwrap_err();
    assert!(matches!(err, WireError::TooLarge { .. }), "{err}");
    assert_eq!(
        inflate(&body, Some("zstd"), 3 << 20).unwrap().len(),
        3 << 20
    );
}

#[test]
fn broken_zstd_is_refused_with_a_clear_error() {
    let good = Compression::Zstd(3).compress(&[&lines(500)]);
    let limit = 1 << 20;
    let zstd_err = |body: &[u8]| match inflate(body, Some("zstd"), limit) {
        Err(e @ WireError::Zstd(_)) => e.to_string(),
        other => panic!("expected a zstd error, got {other:?}"),
    };
    let msg = zstd_err(b"definitely not zstd");
    assert!(msg.starts_with("body is not valid zstd: "), "{msg}");
    assert!(msg.contains("Unknown frame descriptor"), "{msg}");
    // Truncated.
    let msg = zstd_err(&good[..good.len() - 7]);
    assert!(msg.starts_with("body is not valid zstd: "), "{msg}");
    // A flipped byte in the middle: the block or the checksum fails.
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    zstd_err(&flipped);
    // Garbage after a good frame.
    zstd_err(&[&good[..], b"trailing junk"].concat());
}

#[test]
fn concatenated_zstd_frames_inflate_to_their_concatenation() {
    let (a, b) = (lines(100), lines(50));
    let body = [
        Compression::Zstd(1).compress(&[&a]),
        Compression::Zstd(5).compress(&[&b]),
    ]
    .concat();
    let back = inflate(&body, Some("zstd"), 1 << 20).unwrap();
    assert_eq!(&*back, &[a, b].concat()[..]);
}

#[test]
fn the_zstd_window_is_bounded_by_the_limit_and_8_mib() {
    assert_eq!(zstd_window_log_max(0), 20);
    assert_eq!(zstd_window_log_max(4096), 20);
    assert_eq!(zstd_window_log_max(3 << 20), 22);
    assert_eq!(zstd_window_log_max(4 << 20), 22);
    assert_eq!(zstd_window_log_max(128 << 20), 23);
    // A stream of unknown size at level 19 uses an 8 MiB window: fine
    // under a large limit, refused under a small one even though its
    // content is tiny, before the window is allocated.
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 19).unwrap();
    enc.write_all(b"tiny\n").unwrap();
    let body = enc.finish().unwrap();
    assert_eq!(
        &*inflate(&body, Some("zstd"), 128 << 20).unwrap(),
        b"tiny\n"
    );
    let err = inflate(&body, Some("zstd"), 64 << 10).unwrap_err();
    assert!(
        matches!(err, WireError::ZstdWindow { max } if max == 1 << 20),
        "{err}"
    );
    assert!(
        err.to_string().contains("window larger than 1048576 bytes"),
        "{err}"
    );
    // A frame with its size declared needs no more window than its size.
    let sized = Compression::Zstd(19).compress(&[b"tiny\n"]);
    assert_eq!(
        &*inflate(&sized, Some("zstd"), 64 << 10).unwrap(),
        b"tiny\n"
    );
}

/// A header and the events compressed apart: one frame (gzip member) per
/// non-empty part, inflating to the parts in order, for every compression.
#[test]
fn parts_compressed_each_on_their_own_inflate_to_their_concatenation() {
    let (head, events) = (b"{\"auditship_batch\":2}\n".to_vec(), lines(300));
    for c in [
        Compression::None,
        Compression::Gzip(1),
        Compression::Zstd(1),
        Compression::Zstd(-3),
    ] {
        let body = c.compress_each(&[&head, b"", &events]);
        let back = inflate(&body, c.encoding().header_value(), 1 << 20).unwrap();
        assert_eq!(&*back, &[&head[..], &events[..]].concat()[..], "{c:?}");
        if let Compression::Zstd(_) = c {
            // Two frames: the first ends where the header's own frame would.
            let first = c.compress(&[&head]);
            assert_eq!(&body[..first.len()], &first[..], "{c:?}");
            assert_eq!(&body[first.len()..], &c.compress(&[&events])[..], "{c:?}");
        }
    }
}
