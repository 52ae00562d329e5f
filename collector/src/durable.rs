//! Replacing a small state file so that a crash leaves the old content or
//! the new, never a mix or nothing: write a temporary file beside it,
//! fsync it, rename it over the file, fsync the directory.
//!
//! Used for every state file the collector rewrites whole: managed tokens,
//! legal holds, retention's pending steps, archived objects in a
//! directory, the alerts' first-seen memory.

use std::fs::File;
use std::io::Write;
use std::path::Path;

/// Writes `data` to `path` durably. The temporary file is `path` with
/// `.tmp` appended to its name.
pub fn replace(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut f = File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_replaced_file_holds_the_new_content_and_no_temporary_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        super::replace(&p, b"old").unwrap();
        super::replace(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
