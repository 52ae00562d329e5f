use super::*;

fn frames(input: &[u8], max: usize, mode: Overlong) -> Vec<(Vec<u8>, Vec<&'static str>)> {
    let mut r = FrameReader::new(input, Framer::new(max, mode));
    let mut out = Vec::new();
    let mut v = Vec::new();
    while let Some(flags) = r.next_into(&mut out).unwrap() {
        v.push((out.clone(), flags.names().collect()));
    }
    v
}

#[test]
fn lines_and_final_line_without_newline() {
    let v = frames(b"one\ntwo\r\n\nthree", 64, Overlong::Split);
    assert_eq!(v[0], (b"one".to_vec(), vec![]));
    assert_eq!(v[1], (b"two\r".to_vec(), vec![]));
    assert_eq!(v[2], (b"three".to_vec(), vec!["no_newline"]));
    assert_eq!(v.len(), 3, "the empty line carries nothing");
}

#[test]
fn overlong_lines_are_split_into_flagged_pieces() {
    let line = format!("{}\nnext\n", "x".repeat(40));
    let v = frames(line.as_bytes(), 16, Overlong::Split);
    let pieces: Vec<usize> = v.iter().map(|(b, _)| b.len()).collect();
    assert_eq!(pieces, [16, 16, 8, 4]);
    assert!(v[..3].iter().all(|(_, f)| f == &["split"]));
    assert_eq!(v[3], (b"next".to_vec(), vec![]));
}

#[test]
fn overlong_lines_are_truncated_and_the_rest_skipped() {
    let line = format!("{}\nnext\n", "y".repeat(100_000));
    let v = frames(line.as_bytes(), 16, Overlong::Truncate);
    assert_eq!(v.len(), 2);
    assert_eq!(v[0], (b"y".repeat(16), vec!["truncated"]));
    assert_eq!(v[1], (b"next".to_vec(), vec![]));
}

#[test]
fn split_does_not_cut_a_utf8_character() {
    // 15 ASCII bytes then a 3-byte character: the cut at 16 would land inside it.
    let line = format!("{}€€\n", "a".repeat(15));
    let v = frames(line.as_bytes(), 16, Overlong::Split);
    assert_eq!(v[0].0, b"a".repeat(15));
    assert_eq!(String::from_utf8(v[1].0.clone()).unwrap(), "€€");
}

#[test]
fn partial_line_waits_for_more_input_unless_eof() {
    let mut f = Framer::new(64, Overlong::Split);
    assert_eq!(f.next(b"partial", false), None);
    let fr = f.next(b"partial", true).unwrap();
    assert_eq!((fr.bytes, fr.consumed), (&b"partial"[..], 7));
    assert!(fr.flags.contains(Flags::NO_NEWLINE));
}

#[test]
fn truncation_across_reads_never_stalls() {
    // The skipped remainder arrives in several reads.
    let mut f = Framer::new(16, Overlong::Truncate);
    let first = f.next(&[b'z'; 20], false).unwrap();
    assert_eq!(first.flags, {
        let mut x = Flags::default();
        x.insert(Flags::TRUNCATED);
        x
    });
    assert_eq!(first.consumed, 20);
    let skip = f.next(&[b'z'; 30], false).unwrap();
    assert_eq!((skip.bytes.len(), skip.consumed), (0, 30));
    let end = f.next(b"zz\nok\n", false).unwrap();
    assert_eq!((end.bytes.len(), end.consumed), (0, 3));
    let ok = f.next(b"ok\n", false).unwrap();
    assert_eq!(ok.bytes, b"ok");
}

proptest::proptest! {
    /// In split mode no frame exceeds the maximum and no byte but the
    /// newlines is lost, whatever the input and the read boundaries.
    #[test]
    fn split_mode_loses_nothing(
        input in proptest::collection::vec(proptest::prop_oneof![Just(b'\n'), any::<u8>()], 0..2000),
        max in 16usize..100,
    ) {
        let v = frames(&input, max, Overlong::Split);
        let total: usize = v.iter().map(|(b, _)| b.len()).sum();
        let newlines = input.iter().filter(|&&b| b == b'\n').count();
        proptest::prop_assert_eq!(total, input.len() - newlines);
        proptest::prop_assert!(v.iter().all(|(b, _)| b.len() <= max && !b.is_empty()));
    }
}

use proptest::prelude::{any, Just};
