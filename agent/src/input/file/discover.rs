//! Finding the files an input's globs match: the directories to walk, the
//! walk itself, and the inotify watcher that wakes the input early.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The directory to walk for a glob, and whether to walk it recursively.
pub(super) fn glob_base(pattern: &str) -> (PathBuf, bool) {
    let mut base = PathBuf::new();
    let mut recursive = false;
    let comps: Vec<&str> = pattern.split('/').collect();
    for (i, c) in comps.iter().enumerate() {
        let is_last = i + 1 == comps.len();
        if c.contains(['*', '?', '[', '{']) || is_last {
            recursive = comps[i..].contains(&"**") || comps.len() - i > 1;
            break;
        }
        if c.is_empty() && i == 0 {
            base.push("/");
        } else {
            base.push(c);
        }
    }
    if base.as_os_str().is_empty() {
        base.push(".");
    }
    (base, recursive)
}

/// Calls `f` for every entry under `dir`; returns false if some directory
/// could not be read (the listing is then incomplete).
pub(super) fn walk(dir: &Path, recursive: bool, f: &mut dyn FnMut(&Path)) -> bool {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        // A base directory that does not exist (yet) is an empty listing.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot list directory; files in it are kept as they are");
            return false;
        }
    };
    let mut complete = true;
    for e in entries {
        let Ok(e) = e else {
            complete = false;
            continue;
        };
        let path = e.path();
        match e.file_type() {
            Ok(ft) if ft.is_dir() && recursive => complete &= walk(&path, true, f),
            Ok(ft) if ft.is_dir() => {}
            _ => f(&path),
        }
    }
    complete
}

/// Starts inotify on the base directories. Every event wakes the input;
/// events that can change which files exist (create, remove, rename, or an
/// overflowed queue) also set `rescan`, so plain appends do not cost a walk.
pub(super) fn start_watcher(
    bases: &[(PathBuf, bool)],
    bell: super::Bell,
    rescan: Arc<AtomicBool>,
) -> Option<notify::RecommendedWatcher> {
    use notify::event::{EventKind, ModifyKind};
    use notify::Watcher;
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let structural = match &res {
            Ok(ev) => !matches!(
                ev.kind,
                EventKind::Access(_)
                    | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Metadata(_))
            ),
            Err(_) => true,
        };
        if structural {
            rescan.store(true, Ordering::Relaxed);
        }
        bell.ring();
    })
    .map_err(|e| tracing::warn!(error = %e, "inotify unavailable; relying on periodic rescans"))
    .ok()?;
    for (base, recursive) in bases {
        let mode = if *recursive {
            notify::RecursiveMode::Recursive
        } else {
            notify::RecursiveMode::NonRecursive
        };
        if let Err(e) = w.watch(base, mode) {
            tracing::warn!(dir = %base.display(), error = %e, "cannot watch directory; relying on periodic rescans");
        }
    }
    Some(w)
}
