//! A batch: what a reader hands an output.
//!
//! The events are in id order, their payloads stored contiguously, each
//! followed by a newline, so that the payloads of a batch of sealed events
//! are exactly the event lines of a wire batch (canonical encoding, see
//! [`auditship_core::wire`]) and an output can compress them in place. A
//! sealed event's chain link travels beside its payload; outputs that
//! write the sealed form put the two together
//! ([`Batch::write_sealed_ndjson`]).

use std::sync::Arc;

use auditship_core::seal as core_seal;

use super::record::ChainLink;

/// A run of consecutive events, payloads stored contiguously. The bytes
/// are shared: a [`Batch::slice`] (a collector output cuts each batch into
/// several requests) points into its parent's buffer instead of copying it.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    from: u64,
    ids: Vec<u64>,
    /// The payload bytes; this batch's are `data[start..]` up to its last end.
    data: Arc<Vec<u8>>,
    start: usize,
    /// Where each payload ends in `data` (its newline follows).
    ends: Vec<usize>,
    /// Each event's chain link, if it is sealed.
    links: Vec<Option<ChainLink>>,
    /// Runs of consecutive events whose stream keys begin with the same
    /// name (up to the first NUL: an input's name, see
    /// [`crate::input`]), as (events, name); the name is empty for the
    /// chain stream, which network inputs and heartbeats share.
    runs: Vec<(usize, Vec<u8>)>,
}

impl Batch {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Id of the last event (acknowledge this to acknowledge the batch).
    pub fn last_id(&self) -> Option<u64> {
        self.ids.last().copied()
    }

    /// The first id this batch *covers*: every id from here to
    /// [`last_id`](Self::last_id) is either in the batch or a position-only
    /// record (a line a filter dropped). Ids lost to quarantine are never
    /// covered, so a receiver that tracks coverage sees them as a gap.
    pub fn covers_from(&self) -> u64 {
        self.from
    }

    /// Narrows the coverage to start at the first event: for a part that
    /// follows a break in the chain, where the ids before it may have
    /// belonged to lost events.
    pub fn cover_from_first(&mut self) {
        if let Some(&id) = self.ids.first() {
            self.from = id;
        }
    }

    /// Total payload bytes (with one newline each).
    pub fn bytes(&self) -> usize {
        self.end() - self.start
    }

    /// The end of this batch's bytes in `data` (after its last newline).
    fn end(&self) -> usize {
        self.ends.last().map_or(self.start, |e| e + 1)
    }

    /// `(id, payload)` of every event, in order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let mut start = self.start;
        self.ids.iter().zip(&self.ends).map(move |(&id, &end)| {
            let p = &self.data[start..end];
            start = end + 1;
            (id, p)
        })
    }

    /// The payloads as NDJSON: each followed by a newline, contiguous.
    pub fn ndjson(&self) -> &[u8] {
        &self.data[self.start..self.end()]
    }

    /// Each event's chain link (`None` for an event that is not sealed).
    pub fn links(&self) -> &[Option<ChainLink>] {
        &self.links
    }

    /// The payload of event `i`.
    pub fn payload(&self, i: usize) -> &[u8] {
        let start = if i == 0 {
            self.start
        } else {
            self.ends[i - 1] + 1
        };
        &self.data[start..self.ends[i]]
    }

    /// Runs of consecutive events by the name their stream keys begin with
    /// (the input's name for files and journald; empty for the chain
    /// stream of network inputs and heartbeats, whose events say their
    /// input only in their `source`), as (first event, end, name).
    pub fn stream_runs(&self) -> impl Iterator<Item = (usize, usize, &[u8])> {
        let mut at = 0;
        self.runs.iter().map(move |(n, name)| {
            at += n;
            (at - n, at, name.as_slice())
        })
    }

    /// Appends every event to `out` in its sealed form (see
    /// [`auditship_core::seal`]: the canonical bytes with `hash` and
    /// `prev_hash`), one per line; an event that is not sealed as it is.
    pub fn write_sealed_ndjson(&self, out: &mut Vec<u8>) {
        out.reserve(self.bytes() + self.len() * core_seal::SUFFIX_LEN);
        for ((_, p), link) in self.iter().zip(&self.links) {
            match link {
                Some(l) => core_seal::write_sealed(out, p, &l.hash, &l.prev),
                None => out.extend_from_slice(p),
            }
            out.push(b'\n');
        }
    }

    /// Every event in its sealed form, as [`write_sealed_ndjson`](Self::write_sealed_ndjson)
    /// writes it, one `Vec` each (for tests).
    #[cfg(test)]
    pub(crate) fn sealed_lines(&self) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        self.write_sealed_ndjson(&mut all);
        all.split(|&b| b == b'\n')
            .take(self.len())
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// Adds an event (for tests building batches by hand).
    #[cfg(test)]
    pub(crate) fn push_for_test(&mut self, id: u64, payload: &[u8], link: Option<ChainLink>) {
        if self.ids.is_empty() {
            self.from = id;
        }
        self.push(id, b"", payload, link);
    }

    /// Adds an event read from `stream` (for tests building batches by hand).
    #[cfg(test)]
    pub(crate) fn push_streamed_for_test(&mut self, id: u64, stream: &[u8], payload: &[u8]) {
        if self.ids.is_empty() {
            self.from = id;
        }
        self.push(id, stream, payload, None);
    }

    /// Events `a..b`, covering from the id after event `a - 1` (or from
    /// where this batch covers, for `a == 0`). The payload bytes are shared,
    /// not copied.
    pub fn slice(&self, a: usize, b: usize) -> Batch {
        let b = b.min(self.len());
        let a = a.min(b);
        Batch {
            from: if a == 0 {
                self.from
            } else {
                self.ids[a - 1] + 1
            },
            ids: self.ids[a..b].to_vec(),
            data: Arc::clone(&self.data),
            start: if a == 0 {
                self.start
            } else {
                self.ends[a - 1] + 1
            },
            ends: self.ends[a..b].to_vec(),
            links: self.links[a..b].to_vec(),
            runs: self
                .stream_runs()
                .filter(|&(s, e, _)| s < b && e > a)
                .map(|(s, e, name)| (e.min(b) - s.max(a), name.to_vec()))
                .collect(),
        }
    }

    /// Sets where an empty batch covers from, before its first event.
    pub(super) fn start_covering(&mut self, from: u64) {
        debug_assert!(self.is_empty());
        self.from = from;
    }

    /// Makes room for `additional` more payload bytes.
    pub(super) fn reserve(&mut self, additional: usize) {
        Arc::make_mut(&mut self.data).reserve(additional);
    }

    /// Appends an event while the batch is being read (its bytes are not
    /// shared yet; a shared buffer would be copied first).
    pub(super) fn push(&mut self, id: u64, stream: &[u8], payload: &[u8], link: Option<ChainLink>) {
        debug_assert_eq!(self.end(), self.data.len(), "push onto a slice");
        let data = Arc::make_mut(&mut self.data);
        self.ids.push(id);
        data.extend_from_slice(payload);
        self.ends.push(data.len());
        data.push(b'\n');
        self.links.push(link);
        let name = &stream[..memchr::memchr(0, stream).unwrap_or(stream.len())];
        match self.runs.last_mut() {
            Some((n, last)) if last.as_slice() == name => *n += 1,
            _ => self.runs.push((1, name.to_vec())),
        }
    }

    /// Appends an event read from a record written before chain links moved
    /// out of the payload (a kind 1 record holding the sealed form): its
    /// canonical bytes and its link, as a linked record reads. Any other
    /// payload is appended as it is, without a link.
    pub(super) fn push_payload(&mut self, id: u64, stream: &[u8], payload: &[u8]) {
        match core_seal::unseal(payload) {
            Some(u) => {
                let link = ChainLink {
                    hash: u.hash,
                    prev: u.prev,
                };
                self.push(id, stream, &[u.head, b"}"].concat(), Some(link));
            }
            None => self.push(id, stream, payload, None),
        }
    }
}
