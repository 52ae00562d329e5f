use std::os::unix::fs::PermissionsExt;

use super::*;

fn key(b: u8) -> Key {
    Key::from_bytes([b; KEY_LEN])
}

const EVENT: &[u8] = br#"{"raw":"Accepted password for alice from 203.0.113.7 port 52113 ssh2"}"#;

#[test]
fn seal_then_open_round_trips_and_hides_the_plaintext() {
    let ring = Keyring::new(key(1), []);
    let mut sealed = b"prefix".to_vec();
    ring.seal(Domain::STORE_RECORD, b"ctx", EVENT, &mut sealed)
        .unwrap();
    assert_eq!(sealed.len(), 6 + EVENT.len() + OVERHEAD);
    assert_eq!(&sealed[..6], b"prefix");
    let body = &sealed[6..];
    assert!(!body.windows(5).any(|w| w == b"alice"));
    assert_eq!(key_id_of(body), Some(key(1).id()));
    let mut out = vec![9; 3];
    let id = ring
        .open(Domain::STORE_RECORD, b"ctx", body, &mut out)
        .unwrap();
    assert_eq!(id, key(1).id());
    assert_eq!(out, EVENT);
}

#[test]
fn nonces_differ_so_equal_plaintexts_seal_differently() {
    let ring = Keyring::new(key(1), []);
    let mut a = Vec::new();
    let mut b = Vec::new();
    ring.seal(Domain::STORE_RECORD, b"", EVENT, &mut a).unwrap();
    ring.seal(Domain::STORE_RECORD, b"", EVENT, &mut b).unwrap();
    assert_ne!(a[8..32], b[8..32], "nonces");
    assert_ne!(a, b);
    // Many nonces, across pool refills: no repeats.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..2000 {
        let mut s = Vec::new();
        ring.seal(Domain::STORE_RECORD, b"", b"x", &mut s).unwrap();
        assert!(seen.insert(s[8..32].to_vec()));
    }
}

#[test]
fn every_flipped_bit_is_detected() {
    let ring = Keyring::new(key(1), []);
    let mut sealed = Vec::new();
    ring.seal(Domain::STORE_RECORD, b"7", b"short body", &mut sealed)
        .unwrap();
    let mut out = Vec::new();
    for i in 8..sealed.len() {
        for bit in 0..8 {
            let mut t = sealed.clone();
            t[i] ^= 1 << bit;
            assert_eq!(
                ring.open(Domain::STORE_RECORD, b"7", &t, &mut out),
                Err(OpenError::Forged(key(1).id())),
                "byte {i} bit {bit}"
            );
            assert!(out.is_empty(), "no unauthenticated plaintext is handed out");
        }
    }
    // A changed key id names another key.
    let mut t = sealed.clone();
    t[0] ^= 1;
    assert!(matches!(
        ring.open(Domain::STORE_RECORD, b"7", &t, &mut out),
        Err(OpenError::UnknownKey(_))
    ));
    assert_eq!(
        ring.open(
            Domain::STORE_RECORD,
            b"7",
            &sealed[..OVERHEAD - 1],
            &mut out
        ),
        Err(OpenError::Short)
    );
}

#[test]
fn a_wrong_key_is_named_and_a_key_with_the_same_id_cannot_open() {
    let mut sealed = Vec::new();
    Keyring::new(key(1), [])
        .seal(Domain::QUEUE_RECORD, b"", EVENT, &mut sealed)
        .unwrap();
    let other = Keyring::new(key(2), []);
    let mut out = Vec::new();
    assert_eq!(
        other.open(Domain::QUEUE_RECORD, b"", &sealed, &mut out),
        Err(OpenError::UnknownKey(key(1).id()))
    );
    // Forge the id of key 2 into the header: still no plaintext.
    sealed[..8].copy_from_slice(&key(2).id().0);
    assert_eq!(
        other.open(Domain::QUEUE_RECORD, b"", &sealed, &mut out),
        Err(OpenError::Forged(key(2).id()))
    );
}

#[test]
fn associated_data_binds_domain_and_context() {
    let ring = Keyring::new(key(1), []);
    let mut sealed = Vec::new();
    ring.seal(
        Domain::STORE_RECORD,
        &5u64.to_le_bytes(),
        EVENT,
        &mut sealed,
    )
    .unwrap();
    let mut out = Vec::new();
    let forged = Err(OpenError::Forged(key(1).id()));
    assert_eq!(
        ring.open(Domain::STORE_RECORD, &6u64.to_le_bytes(), &sealed, &mut out),
        forged
    );
    assert_eq!(
        ring.open(Domain::STORE_INDEX, &5u64.to_le_bytes(), &sealed, &mut out),
        forged
    );
    assert_eq!(
        ring.open(Domain::QUEUE_RECORD, &5u64.to_le_bytes(), &sealed, &mut out),
        forged
    );
    // A context longer than the stack buffer works the same.
    let long = vec![7u8; 500];
    ring.seal(Domain::STORE_RECORD, &long, EVENT, &mut out)
        .unwrap();
    let mut back = Vec::new();
    ring.open(Domain::STORE_RECORD, &long, &out, &mut back)
        .unwrap();
    assert_eq!(back, EVENT);
}

#[test]
fn previous_keys_open_but_only_the_current_key_seals() {
    let mut old = Vec::new();
    Keyring::new(key(1), [])
        .seal(Domain::STORE_RECORD, b"", b"old", &mut old)
        .unwrap();
    let ring = Keyring::new(key(2), [key(1), key(2)]);
    assert_eq!(ring.current(), key(2).id());
    assert_eq!(ring.ids().count(), 2, "a repeated key counts once");
    let mut out = Vec::new();
    assert_eq!(
        ring.open(Domain::STORE_RECORD, b"", &old, &mut out),
        Ok(key(1).id())
    );
    let mut new = Vec::new();
    ring.seal(Domain::STORE_RECORD, b"", b"new", &mut new)
        .unwrap();
    assert_eq!(key_id_of(&new), Some(key(2).id()));
    assert!(ring.describe().contains(&key(1).id().to_string()));
}

#[test]
fn key_files_round_trip_refuse_overwrite_and_exposure() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.key");
    let k = Key::generate().unwrap();
    k.write_new(&path).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.len(), 65);
    assert!(text.ends_with('\n'));
    let back = Key::load(&path).unwrap();
    assert_eq!(back.id(), k.id());
    assert_eq!(back.origin(), Some(path.as_path()));
    assert!(
        !format!("{back:?}").contains(text.trim()),
        "Debug hides the key"
    );
    // Never overwritten.
    let again = Key::generate().unwrap();
    assert!(matches!(
        again.write_new(&path),
        Err(KeyError::Exists { .. })
    ));
    assert_eq!(Key::load(&path).unwrap().id(), k.id());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
    // Group-readable is fine (packaged 0640), world-readable is not.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    Key::load(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Key::load(&path).unwrap_err().to_string();
    assert!(e.contains("other users") && e.contains("store.key"), "{e}");
}

#[test]
fn key_text_is_64_hex_digits_with_trailing_whitespace_allowed() {
    let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
    let k = Key::parse(&format!("{hex}\n\n  ")).unwrap();
    assert_eq!(
        k.id(),
        Key::parse(&hex.to_lowercase()).unwrap().id(),
        "case does not matter"
    );
    assert!(Key::parse(&hex[..62])
        .unwrap_err()
        .contains("64 hex digits"));
    assert!(Key::parse(&format!("{}zz", &hex[..62])).is_err());
    assert!(Key::parse(&format!("{hex}00")).is_err());
    // The id is stable: the documented function of the key (computed
    // independently: python3 hashlib.sha256(b"auditship key id v1\0" + bytes(32))).
    assert_eq!(key(0).id().to_string(), "156ea0ac35cac3c1");
    assert_ne!(key(0).id(), key(1).id());
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, "not a key").unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = Key::load(&bad).unwrap_err().to_string();
    assert!(e.contains("bad.key") && e.contains("64 hex digits"), "{e}");
    let e = Key::load(&dir.path().join("missing.key"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.key"), "{e}");
}
