//! The file output: NDJSON appended to a file, exactly once.
//!
//! Next to the file sits `<path>.ack`, a small JSON document
//! `{"id": N, "len": L}`: the id of the last event written and the file's
//! length just after it. Delivering a batch is: append the lines, fsync the
//! file, write `<path>.ack.tmp`, fsync it, rename it over `<path>.ack`,
//! fsync the directory. On start the file is cut back to `L` (removing lines
//! written but never recorded as delivered) and the queue is asked to resume
//! after `N`. Whatever the moment of a crash, every event is in the file
//! exactly once after the next start.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Output, OutputError};
use crate::queue::Batch;

/// See the module docs.
pub struct FileOutput {
    name: String,
    path: PathBuf,
    ack_path: PathBuf,
    file: Option<File>,
    len: u64,
    buf: Vec<u8>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Ack {
    id: u64,
    len: u64,
}

impl FileOutput {
    /// An output named `name` writing to `path`.
    pub fn new(name: &str, path: &Path) -> Self {
        let mut ack = path.as_os_str().to_owned();
        ack.push(".ack");
        FileOutput {
            name: name.to_string(),
            path: path.to_path_buf(),
            ack_path: PathBuf::from(ack),
            file: None,
            len: 0,
            buf: Vec::with_capacity(1 << 20),
        }
    }

    fn io(&self, path: &Path) -> impl FnOnce(std::io::Error) -> OutputError {
        let (output, path) = (self.name.clone(), path.to_path_buf());
        move |source| OutputError::Io {
            output,
            path,
            source,
        }
    }

    fn write_ack(&self, id: u64) -> Result<(), OutputError> {
        let mut tmp = self.ack_path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let body = serde_json::to_vec(&Ack { id, len: self.len }).expect("ack serializes");
        File::create(&tmp)
            .and_then(|mut f| f.write_all(&body).and_then(|_| f.sync_data()))
            .map_err(self.io(&tmp))?;
        fs::rename(&tmp, &self.ack_path).map_err(self.io(&self.ack_path))?;
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(self.io(dir))
    }
}

impl Output for FileOutput {
    fn name(&self) -> &str {
        &self.name
    }

    fn recover(&mut self) -> Result<Option<u64>, OutputError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(self.io(&self.path))?;
        let actual = file.metadata().map_err(self.io(&self.path))?.len();
        let ack: Option<Ack> = fs::read(&self.ack_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let (id, len) = match ack {
            Some(a) => (a.id, a.len),
            // Never delivered anything here: keep what the file already holds.
            None => (0, actual),
        };
        if actual > len {
            tracing::warn!(path = %self.path.display(), bytes = actual - len,
                "file output: removing lines written but not acknowledged before a crash; they will be written again");
            file.set_len(len).map_err(self.io(&self.path))?;
            file.sync_all().map_err(self.io(&self.path))?;
        } else if actual < len {
            tracing::error!(path = %self.path.display(), expected = len, actual,
                "file output: file is shorter than what was delivered to it; was it truncated by someone else?");
        }
        self.len = actual.min(len);
        self.file = Some(file);
        self.write_ack(id)?;
        Ok(Some(id))
    }

    fn deliver(&mut self, batch: &Batch) -> Result<(), OutputError> {
        let Some(last) = batch.last_id() else {
            return Ok(());
        };
        self.buf.clear();
        for (_, payload) in batch.iter() {
            self.buf.extend_from_slice(payload);
            self.buf.push(b'\n');
        }
        let file = self.file.as_mut().expect("recover() runs before deliver()");
        let written = file.write_all(&self.buf).and_then(|_| file.sync_data());
        if let Err(e) = written {
            // Cut back a partial write so a retry cannot leave half a line.
            let _ = file.set_len(self.len);
            return Err(self.io(&self.path)(e));
        }
        self.len += self.buf.len() as u64;
        self.write_ack(last)
    }
}
