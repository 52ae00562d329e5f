use super::*;

fn event(id: u64, input: &str) -> Vec<u8> {
    format!("{{\"seq\":{id},\"source\":\"{input}:/var/log/x.log\",\"v\":1}}").into_bytes()
}

/// A batch of events `ids`, all read by input `input`.
fn batch(ids: std::ops::RangeInclusive<u64>, input: &str) -> Batch {
    let mut b = Batch::default();
    for id in ids {
        b.push_for_test(id, &event(id, input), None);
    }
    b
}

fn ids(b: &Batch) -> Vec<u64> {
    b.iter().map(|(id, _)| id).collect()
}

fn by_input(c: &OutputCounters) -> Vec<(String, u64)> {
    c.by_input
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

/// An acknowledgement that lands inside a batch counts exactly the events
/// up to it, and the batch keeps only the rest, covering from the id after
/// the acknowledged one: a resend after a failure then starts there.
#[test]
fn settling_part_of_a_batch_counts_that_part_and_keeps_the_rest() {
    let inputs = vec!["a".to_string(), "b".to_string()];
    let counters = OutputCounters::default();
    let mut pending = Pending::default();
    pending.batches.push_back(batch(1..=5, "a"));
    pending.batches.push_back(batch(6..=10, "b"));

    pending.settle_through(3, &counters, &inputs);
    assert_eq!(counters.events.load(Ordering::Relaxed), 3);
    assert_eq!(pending.batches.len(), 2);
    assert_eq!(ids(&pending.batches[0]), [4, 5]);
    assert_eq!(pending.batches[0].covers_from(), 4);

    // Through the first batch and into the second.
    pending.settle_through(7, &counters, &inputs);
    assert_eq!(counters.events.load(Ordering::Relaxed), 7);
    assert_eq!(pending.batches.len(), 1);
    assert_eq!(ids(&pending.batches[0]), [8, 9, 10]);
    assert_eq!(pending.batches[0].covers_from(), 8);

    // An id already settled changes nothing.
    pending.settle_through(5, &counters, &inputs);
    assert_eq!(counters.events.load(Ordering::Relaxed), 7);

    pending.settle_through(10, &counters, &inputs);
    assert!(pending.is_empty());
    assert_eq!(counters.events.load(Ordering::Relaxed), 10);
    assert_eq!(
        by_input(&counters),
        [("a".to_string(), 5), ("b".to_string(), 5)]
    );
}

/// An output that keeps the last batch it was handed in flight: `submit`
/// settles everything before it, `flush` settles it too, and it can be
/// told to fail its next call. What it was handed is recorded.
#[derive(Default)]
struct Pipelining {
    handed: Vec<Vec<u64>>,
    in_flight: Option<u64>,
    fail_next: bool,
}

impl Output for Pipelining {
    fn name(&self) -> &str {
        "pipelining"
    }
    fn recover(&mut self, _: u64) -> Result<Option<u64>, OutputError> {
        Ok(None)
    }
    fn deliver(&mut self, _: &Batch) -> Result<(), OutputError> {
        unreachable!("the loop submits")
    }
    fn submit(&mut self, batch: &Batch) -> Result<Option<u64>, OutputError> {
        self.handed.push(ids(batch));
        if std::mem::take(&mut self.fail_next) {
            self.in_flight = None;
            return Err(OutputError::Unavailable {
                output: "pipelining".into(),
                message: "refused".into(),
                retry_after: None,
            });
        }
        Ok(self.in_flight.replace(batch.last_id().unwrap()))
    }
    fn flush(&mut self) -> Result<Option<u64>, OutputError> {
        Ok(self.in_flight.take())
    }
}

/// After a failure the output holds nothing in flight: everything not yet
/// acknowledged is handed over again, in order, starting after the last
/// acknowledged id.
#[test]
fn a_resend_hands_over_exactly_what_is_unacknowledged_in_order() {
    let inputs = vec!["a".to_string()];
    let counters = OutputCounters::default();
    let mut out = Pipelining::default();
    let mut pending = Pending::default();
    for b in [batch(1..=3, "a"), batch(4..=6, "a")] {
        let r = out.submit(&b).unwrap();
        pending.batches.push_back(b);
        if let Some(id) = r {
            pending.settle_through(id, &counters, &inputs);
        }
    }
    // 1..=3 settled when 4..=6 was handed over; 4..=6 is in flight.
    assert_eq!(counters.events.load(Ordering::Relaxed), 3);
    assert_eq!(
        pending.batches.iter().map(ids).collect::<Vec<_>>(),
        [vec![4, 5, 6]]
    );

    // 7..=9 fails: nothing in flight counts.
    out.fail_next = true;
    let b = batch(7..=9, "a");
    assert!(out.submit(&b).is_err());
    pending.batches.push_back(b);

    out.handed.clear();
    let settled = pending.resubmit(&mut out).unwrap();
    assert_eq!(out.handed, [vec![4, 5, 6], vec![7, 8, 9]]);
    assert_eq!(settled, Some(6));
    pending.settle_through(6, &counters, &inputs);
    let last = out.flush().unwrap().unwrap();
    pending.settle_through(last, &counters, &inputs);
    assert!(pending.is_empty());
    assert_eq!(counters.events.load(Ordering::Relaxed), 9);
}
