//! Reading committed events in leaf order, from a given leaf index on.
//!
//! The Merkle log is derived from the store and written without fsync; when
//! a crash cost it its tail, the collector reads the missing events back
//! from here. Each segment's snapshot records the leaf index of its first
//! event, so the walk starts at the right segment without reading older
//! ones.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::cipher::{key_error, SegmentCipher};
use super::format::{self, Body, Scan};
use super::query::SegmentReader;
use super::recover;
use crate::store::{Leaf, StoreError};

impl SegmentReader {
    /// Segments with their committed lengths, oldest first.
    fn committed_segments(&self) -> Vec<(u64, u64)> {
        let st = self.shared.lock();
        let mut out: Vec<(u64, u64)> = st.sealed.iter().map(|s| (s.no, s.len)).collect();
        if let Some(a) = &st.active {
            out.push((a.no, a.len));
        }
        out
    }

    fn read_segment(&self, no: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        let path = recover::segment_path(&self.shared.dir, no);
        let file = File::open(&path).map_err(|e| StoreError::io(&path, e))?;
        let mut data = vec![0u8; len as usize];
        file.read_exact_at(&mut data, 0)
            .map_err(|e| StoreError::io(&path, e))?;
        Ok(data)
    }

    /// First leaf index of segment `no`, from its snapshot (`None` when the
    /// snapshot is unreadable).
    fn first_leaf(&self, no: u64, len: u64) -> Option<u64> {
        let path = recover::segment_path(&self.shared.dir, no);
        let file = File::open(&path).ok()?;
        let mut head = vec![0u8; (len as usize).min(64 << 10)];
        file.read_exact_at(&mut head, 0).ok()?;
        let cipher =
            SegmentCipher::for_header(&head, no, self.shared.keys.as_deref(), &path).ok()?;
        let mut scratch = Vec::new();
        match format::frame_at(&head, format::HEADER_LEN, &cipher, &mut scratch) {
            Ok((Body::Snapshot(_, leaf), _)) => Some(leaf),
            _ => None,
        }
    }

    /// See [`crate::store::StoreReader::for_each_from`].
    pub(super) fn leaves_from(
        &self,
        from: u64,
        f: &mut crate::store::LeafFn<'_>,
    ) -> Result<(), StoreError> {
        // Retention rewrites sealed segments; hold it off while reading.
        let _files = self.shared.files_read();
        let segments = self.committed_segments();
        let start = segments
            .iter()
            .rposition(|&(no, len)| self.first_leaf(no, len).is_some_and(|l| l <= from))
            .unwrap_or(0);
        for &(no, len) in &segments[start..] {
            let data = self.read_segment(no, len)?;
            let path = recover::segment_path(&self.shared.dir, no);
            let keys = self.shared.keys.as_deref();
            let cipher = SegmentCipher::for_header(&data, no, keys, &path)?;
            let mut at = format::HEADER_LEN;
            let mut scratch = Vec::new();
            loop {
                match format::scan(&data, at, &cipher, &mut scratch) {
                    Scan::End => break,
                    Scan::Locked { key, .. } => return Err(key_error(&path, Some(key), keys)),
                    Scan::Record { body, next } => {
                        match body {
                            Body::Event(ev) if ev.leaf >= from => {
                                f(ev.leaf, Leaf::Event(ev.payload))?
                            }
                            Body::Expired(ev) if ev.leaf >= from => {
                                f(ev.leaf, Leaf::Expired(ev.hash))?
                            }
                            _ => {}
                        }
                        at = next;
                    }
                    Scan::Corrupt { resume, reason } => {
                        tracing::error!(
                            segment = no,
                            offset = at,
                            reason,
                            "store: corrupt record skipped while reading leaves"
                        );
                        at = resume;
                    }
                }
            }
        }
        Ok(())
    }
}
