//! The witness's decisions, on hand-built checkpoints of real Merkle trees.

use auditship_core::checkpoint::SignedCheckpoint;
use auditship_core::identity::Identity;
use auditship_core::merkle::{self, MemoryTree};

use super::*;

fn tree(leaves: std::ops::Range<u32>) -> MemoryTree {
    leaves
        .map(|i| merkle::leaf_hash(format!("record {i}").as_bytes()))
        .collect()
}

fn cp(key: &Identity, t: &MemoryTree) -> SignedCheckpoint {
    SignedCheckpoint::sign("test log", t.size(), &t.root(), key)
}

fn proof(t: &MemoryTree, first: u64, second: u64) -> ConsistencyAnswer {
    ConsistencyAnswer {
        first,
        second,
        proof: merkle::consistency_proof(t, first, second)
            .unwrap()
            .iter()
            .map(|h| hex::encode(h))
            .collect(),
    }
}

#[test]
fn a_grown_log_is_accepted_with_a_valid_consistency_proof() {
    let key = Identity::from_seed([5; 32]);
    let (small, big) = (tree(0..7), tree(0..20));
    let (old, new) = (cp(&key, &small), cp(&key, &big));
    assert_eq!(judge(None, &old, Some(&key.public())), Verdict::First);
    assert_eq!(
        judge(Some(&old), &new, Some(&key.public())),
        Verdict::Grown {
            first: 7,
            second: 20
        }
    );
    assert_eq!(check_proof(&old, &new, &proof(&big, 7, 20)), Ok(()));
    // Without a configured key the same holds: consistency needs no key.
    assert_eq!(
        judge(Some(&old), &new, None),
        Verdict::Grown {
            first: 7,
            second: 20
        }
    );
    assert_eq!(judge(Some(&new), &new.clone(), None), Verdict::Same);
}

#[test]
fn a_rewritten_history_fails_the_consistency_proof() {
    let key = Identity::from_seed([5; 32]);
    let old_tree = tree(0..7);
    let old = cp(&key, &old_tree);
    // Record 3 replaced, then the log grown: signed by the real key, so
    // only consistency can tell.
    let mut forged = MemoryTree::new();
    for i in 0..20u32 {
        let data = if i == 3 {
            "rewritten".to_string()
        } else {
            format!("record {i}")
        };
        forged.push(merkle::leaf_hash(data.as_bytes()));
    }
    let new = cp(&key, &forged);
    assert!(matches!(
        judge(Some(&old), &new, Some(&key.public())),
        Verdict::Grown { .. }
    ));
    let err = check_proof(&old, &new, &proof(&forged, 7, 20)).unwrap_err();
    assert!(err.contains("consistency proof from 7 to 20"), "{err}");
    // A proof for other sizes than asked is refused as such.
    let err = check_proof(&old, &new, &proof(&forged, 6, 20)).unwrap_err();
    assert!(err.contains("asked for a proof from 7 to 20"), "{err}");
}

#[test]
fn a_shrunk_log_a_changed_root_a_bad_signature_and_another_origin_are_alarms() {
    let key = Identity::from_seed([5; 32]);
    let kept = cp(&key, &tree(0..10));
    let alarm = |v: Verdict| match v {
        Verdict::Alarm(why) => why,
        other => panic!("expected an alarm, got {other:?}"),
    };
    let shrunk = cp(&key, &tree(0..4));
    let why = alarm(judge(Some(&kept), &shrunk, Some(&key.public())));
    assert!(why.contains("shrank from 10 to 4"), "{why}");

    let other_root = cp(&key, &tree(100..110));
    let why = alarm(judge(Some(&kept), &other_root, None));
    assert!(why.contains("same size 10 with a different root"), "{why}");

    let forger = Identity::from_seed([6; 32]);
    let forged = cp(&forger, &tree(0..12));
    let why = alarm(judge(Some(&kept), &forged, Some(&key.public())));
    assert!(why.contains("signature"), "{why}");
    // The first checkpoint is checked too, when a key is configured.
    assert!(matches!(
        judge(None, &forged, Some(&key.public())),
        Verdict::Alarm(_)
    ));

    let elsewhere = SignedCheckpoint::sign("another log", 12, &tree(0..12).root(), &key);
    let why = alarm(judge(Some(&kept), &elsewhere, Some(&key.public())));
    assert!(why.contains("another log"), "{why}");
}

#[tokio::test]
async fn the_kept_checkpoint_is_saved_and_loaded_back() {
    let dir = tempfile::tempdir().unwrap();
    let key = Identity::from_seed([5; 32]);
    let cfg = WitnessConfig {
        interval: Some(Duration::from_secs(60)),
        collector_key: Some(CollectorKey::Inline(key.public())),
        file: dir.path().join("state/witness.json"),
    };
    let stats = Arc::new(CollectorStats::default());
    let mut w = Witness::new("c", &cfg, stats.clone()).unwrap();
    assert!(w.kept().is_none());
    let c = cp(&key, &tree(0..3));
    w.keep(c.clone()).await;
    let again = Witness::new("c", &cfg, stats.clone()).unwrap();
    assert_eq!(again.kept(), Some(&c));
    assert!(!dir.path().join("state/witness.json.tmp").exists());
    // A garbled file is ignored, not fatal.
    std::fs::write(&cfg.file, b"{not json").unwrap();
    assert!(Witness::new("c", &cfg, stats).unwrap().kept().is_none());
}
