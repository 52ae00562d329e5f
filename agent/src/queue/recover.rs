//! Recovery at open: reading every segment back, repairing what a crash
//! or corruption left, and rebuilding positions and the chain head.
//!
//! The rules are in the parent module's docs ("Crash recovery"); the chain
//! head's are in [`crate::seal`].

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use auditship_crypt::Keyring;

use super::record::{self, Body, Scan};
use super::segment::{self, SegmentMeta};
use super::{io_err, set_position, sync_dir, Quarantined, QueueConfig, QueueError, Recovery};
use crate::seal::ChainFold;

/// Reads the queue's identity, creating it on first use.
pub(super) fn queue_id(dir: &Path) -> Result<u64, QueueError> {
    let path = dir.join("id");
    if let Ok(text) = fs::read_to_string(&path) {
        if let Ok(id) = u64::from_str_radix(text.trim(), 16) {
            return Ok(id);
        }
        tracing::error!(path = %path.display(), "queue id unreadable; starting a new identity");
    }
    let mut seed = [0u8; 8];
    let random = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut seed));
    let id = match random {
        Ok(()) => u64::from_le_bytes(seed),
        Err(_) => {
            // No urandom: time and pid are unique enough to tell queues apart.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            t ^ (u64::from(std::process::id()) << 32)
        }
    };
    let tmp = dir.join("id.tmp");
    File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(format!("{id:016x}\n").as_bytes())
                .and_then(|_| f.sync_all())
        })
        .map_err(io_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    sync_dir(dir)?;
    Ok(id)
}

pub(super) fn list_segments(dir: &Path) -> Result<Vec<u64>, QueueError> {
    let mut numbers: Vec<u64> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| segment::parse_name(&e.file_name().to_string_lossy()))
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}

/// The error for records sealed under a key that was not given.
pub(super) fn key_error(
    path: &Path,
    needed: Option<auditship_crypt::KeyId>,
    keys: Option<&Keyring>,
) -> QueueError {
    let needed = needed.map_or_else(|| "(unreadable)".to_string(), |k| k.to_string());
    QueueError::Key(format!(
        "{} is encrypted under key id {needed}, but {}",
        path.display(),
        match keys {
            None => "no key was given: set [queue.encryption] key_file".to_string(),
            Some(k) => format!(
                "the keys given are {}: add the key with id {needed} ([queue.encryption] key_file or previous_key_files)",
                k.describe()
            ),
        }
    ))
}

/// Reads one segment, quarantining what is bad. Returns `None` if the whole
/// segment was unusable. Records under a key not in `keys` are an error.
pub(super) fn recover_segment(
    config: &QueueConfig,
    keys: Option<&Keyring>,
    no: u64,
    newest: bool,
    (last_id, recovery, chain): (&mut u64, &mut Recovery, &mut ChainFold),
) -> Result<Option<SegmentMeta>, QueueError> {
    let dir = &config.dir;
    let path = segment::path(dir, no);
    let mut data = Vec::new();
    let file = File::open(&path).map_err(io_err(&path))?;
    (&file).read_to_end(&mut data).map_err(io_err(&path))?;
    // Records written before a crash may never have been fsynced; the new
    // snapshot will vouch for their positions, so make them durable first.
    file.sync_all().map_err(io_err(&path))?;
    let encrypted = match segment::check_header(&data, no) {
        Ok(e) => e,
        Err(reason) => {
            let target = dir.join("quarantine").join(segment::file_name(no));
            let reason = match fs::rename(&path, &target) {
                Ok(()) => format!("segment header: {reason}"),
                // Left in place (and skipped again at the next start).
                Err(e) => format!("segment header: {reason}; could not move it aside: {e}"),
            };
            recovery.quarantined.push(Quarantined {
                segment: no,
                offset: 0,
                bytes: data.len() as u64,
                file: target,
                reason,
            });
            // The header is unreadable: whether bodies are sealed is unknown.
            chain.damage(*last_id, &data, false);
            return Ok(None);
        }
    };
    if encrypted && keys.is_none() && data.len() > segment::HEADER_LEN {
        let first = data
            .get(segment::HEADER_LEN + record::FRAME_HEADER..)
            .and_then(auditship_crypt::key_id_of);
        return Err(key_error(&path, first, None));
    }
    let cipher = super::cipher(keys, encrypted);
    let mut scratch = Vec::new();
    let mut at = segment::HEADER_LEN;
    let quarantine = |start: usize,
                      end: usize,
                      reason: &str,
                      recovery: &mut Recovery,
                      chain: &mut ChainFold,
                      last_id: u64| {
        chain.damage(last_id, &data[start..end], encrypted);
        let file = dir.join("quarantine").join(format!("{no:020}-{start}.bad"));
        let written = File::create(&file)
            .and_then(|mut f| f.write_all(&data[start..end]).and_then(|_| f.sync_all()));
        // The copy is best effort: the agent starts even if it fails (a full
        // disk), and the range is still counted and reported.
        let reason = match written {
            Ok(()) => reason.to_string(),
            Err(e) => format!("{reason}; could not copy the bytes aside: {e}"),
        };
        recovery.quarantined.push(Quarantined {
            segment: no,
            offset: start as u64,
            bytes: (end - start) as u64,
            file,
            reason,
        });
        Ok::<(), QueueError>(())
    };
    loop {
        match record::scan(&data, at, config.max_record_bytes, &cipher, &mut scratch) {
            Scan::Locked(key, _) => return Err(key_error(&path, Some(key), keys)),
            Scan::Record(body, next) => {
                match body {
                    Body::Event {
                        id,
                        stream,
                        position,
                        link,
                        payload,
                    } => {
                        if id <= *last_id {
                            quarantine(
                                at,
                                next,
                                "record id out of order",
                                recovery,
                                chain,
                                *last_id,
                            )?;
                            at = next;
                            continue;
                        }
                        *last_id = id;
                        recovery.records += 1;
                        set_position(&mut recovery.positions, stream, position);
                        chain.event(id, stream, position, link.as_ref(), payload);
                    }
                    Body::Snapshot {
                        last_id: l,
                        positions,
                    } => {
                        *last_id = (*last_id).max(l);
                        chain.snapshot(&positions);
                        recovery.positions = positions;
                    }
                    Body::Forget { last_id: l, stream } => {
                        *last_id = (*last_id).max(l);
                        recovery.positions.remove(stream);
                    }
                }
                at = next;
            }
            Scan::Corrupt { start, resume } => {
                quarantine(
                    start,
                    resume,
                    "checksum or record structure",
                    recovery,
                    chain,
                    *last_id,
                )?;
                at = resume;
            }
            Scan::Torn if newest => {
                recovery.truncated_bytes += (data.len() - at) as u64;
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                f.set_len(at as u64).map_err(io_err(&path))?;
                f.sync_all().map_err(io_err(&path))?;
                data.truncate(at);
                break;
            }
            Scan::Torn => {
                quarantine(
                    at,
                    data.len(),
                    "short record in a closed segment",
                    recovery,
                    chain,
                    *last_id,
                )?;
                break;
            }
            Scan::End => break,
        }
    }
    Ok(Some(SegmentMeta {
        no,
        bytes: data.len() as u64,
        last_id: *last_id,
        encrypted,
    }))
}

/// Checks, without opening the queue, that `config`'s keys can be loaded
/// and open every segment in its directory (each segment is written under
/// one key: the current one when it was started). For a reload, so that a
/// wrong key is refused while the running pipeline goes on.
pub fn check_keys(config: &QueueConfig) -> Result<(), QueueError> {
    let keys = match &config.encryption {
        Some(e) => Some(
            Keyring::load(&e.key_file, &e.previous_key_files)
                .map_err(|e| QueueError::Key(e.to_string()))?,
        ),
        None => None,
    };
    let dir = &config.dir;
    let Ok(numbers) = list_segments(dir) else {
        return Ok(());
    };
    for no in numbers {
        let path = segment::path(dir, no);
        let mut head =
            vec![0u8; segment::HEADER_LEN + record::FRAME_HEADER + auditship_crypt::OVERHEAD];
        let n = File::open(&path)
            .and_then(|f| {
                use std::os::unix::fs::FileExt;
                f.read_at(&mut head, 0)
            })
            .unwrap_or(0);
        if !matches!(segment::check_header(&head[..n], no), Ok(true)) || n < head.len() {
            continue;
        }
        let id = auditship_crypt::key_id_of(&head[segment::HEADER_LEN + record::FRAME_HEADER..]);
        if let Some(id) = id.filter(|&id| !keys.as_ref().is_some_and(|k| k.knows(id))) {
            return Err(key_error(&path, Some(id), keys.as_ref()));
        }
    }
    Ok(())
}
