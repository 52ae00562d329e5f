//! The archive: sealed segments copied, exactly as they are on disk, to a
//! directory or to S3-compatible object storage before retention removes
//! payloads from them.
//!
//! # Objects
//!
//! ```text
//! <prefix>segments/<no, 20 digits>-<first 16 hex of SHA-256>.seg            the segment file, byte for byte
//! <prefix>segments/<no, 20 digits>-<first 16 hex of SHA-256>.manifest.json  its manifest (below)
//!
//! manifest: {"auditship_archive":1,"segment":<no>,"object":"<key of the .seg>",
//!            "bytes":<length>,"sha256":"<64 hex>","first_leaf":<n|null>,"last_leaf":<n|null>,
//!            "events":<event records>,"expired":<records already expired>,
//!            "checkpoint":<the latest signed checkpoint, as GET /v1/checkpoint shows it, or null>,
//!            "archived":"<RFC 3339>"}
//! ```
//!
//! The key holds the content hash, so archiving the same bytes again (a run
//! resumed after a crash) writes the same objects, and a segment archived
//! again after a later expiry gets objects of its own; nothing is
//! overwritten. With store encryption on, the object is the encrypted file.
//!
//! An upload counts only once it is confirmed: the object is read back
//! and its length and SHA-256 compared, and only then the manifest is
//! written (a directory archive writes a temporary file, fsyncs it, renames
//! it and fsyncs the directory). Retention removes payloads only after that.
//!
//! # S3 and Object Lock
//!
//! The client is `object_store`'s S3 client on reqwest with rustls (the
//! process's ring provider) and ring for request signing; no OpenSSL and no
//! aws-lc. Uploads carry `x-amz-checksum-sha256`, so the server checks the
//! bytes it stored. `object_store`'s `PutOptions` have no way to send
//! arbitrary request headers (its `attributes` are content headers and
//! user metadata, its `extensions` are ignored by its backends), so when
//! Object Lock is configured the archive builds, for each upload, a client
//! whose default headers are `x-amz-object-lock-mode` and
//! `x-amz-object-lock-retain-until-date` (the upload time plus the
//! configured days) and puts the object with it; reads and listings use a
//! client without them. S3 requires an integrity header with a locked
//! upload; the SHA-256 checksum above is that.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use auditship_core::checkpoint::SignedCheckpoint;
use auditship_core::{hex, Hash, Timestamp};
use axum::http::{HeaderMap, HeaderValue};
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, Checksum};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::retention::{ArchiveConfig, S3Config, SecretSource};

/// Archive failures.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive could not be set up.
    #[error("archive setup: {0}")]
    Setup(String),
    /// A read or write failed.
    #[error("archive {what}: {message}")]
    Io {
        /// Object or file.
        what: String,
        /// What failed.
        message: String,
    },
    /// What was read back is not what was written.
    #[error("archive {what}: read back {got}, wrote {want}")]
    Mismatch {
        /// Object or file.
        what: String,
        /// Read back.
        got: String,
        /// Written.
        want: String,
    },
}

/// The manifest of an archived segment (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version (1).
    pub auditship_archive: u32,
    /// Segment number.
    pub segment: u64,
    /// Key (or relative path) of the segment object.
    pub object: String,
    /// Its length.
    pub bytes: u64,
    /// Its SHA-256 (hex).
    pub sha256: String,
    /// First leaf index in it.
    pub first_leaf: Option<u64>,
    /// Last leaf index in it.
    pub last_leaf: Option<u64>,
    /// Event records (payloads present).
    pub events: u64,
    /// Records already expired by earlier runs.
    pub expired: u64,
    /// The latest signed checkpoint when archived.
    pub checkpoint: Option<SignedCheckpoint>,
    /// When archived.
    pub archived: String,
}

/// Object name stem of a segment with content hash `sha`.
pub fn stem(no: u64, sha: &Hash) -> String {
    format!("segments/{no:020}-{}", &hex::encode(sha)[..16])
}

/// An open archive.
pub enum Archive {
    /// A directory.
    Dir(PathBuf),
    /// S3-compatible storage.
    S3 {
        /// Settings.
        config: S3Config,
        /// Client for reads and listings.
        store: Arc<AmazonS3>,
        /// Runs the async client from blocking code.
        rt: tokio::runtime::Handle,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(String) -> ArchiveError {
    let what = what.into();
    move |message| ArchiveError::Io { what, message }
}

fn s3_builder(c: &S3Config) -> Result<AmazonS3Builder, ArchiveError> {
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(&c.bucket)
        .with_region(&c.region)
        .with_virtual_hosted_style_request(!c.path_style)
        .with_allow_http(c.allow_http)
        .with_checksum_algorithm(Checksum::SHA256);
    if let Some(e) = &c.endpoint {
        b = b.with_endpoint(e);
    }
    if let (Some(id), Some(secret)) = (&c.access_key_id, &c.secret_access_key) {
        let secret = match secret {
            SecretSource::Inline(s) => s.clone(),
            SecretSource::File(f) => fs::read_to_string(f)
                .map_err(|e| ArchiveError::Setup(format!("{}: {e}", f.display())))?
                .trim_end()
                .to_string(),
        };
        b = b.with_access_key_id(id).with_secret_access_key(secret);
    }
    Ok(b)
}

impl Archive {
    /// Opens the archive of `config`; `rt` runs S3 requests.
    pub fn open(
        config: &ArchiveConfig,
        rt: tokio::runtime::Handle,
    ) -> Result<Archive, ArchiveError> {
        match config {
            ArchiveConfig::Dir(d) => {
                fs::create_dir_all(d.join("segments"))
                    .map_err(|e| ArchiveError::Setup(format!("{}: {e}", d.display())))?;
                Ok(Archive::Dir(d.clone()))
            }
            ArchiveConfig::S3(c) => {
                auditship_tls::install_default_provider();
                let store = s3_builder(c)?
                    .build()
                    .map_err(|e| ArchiveError::Setup(e.to_string()))?;
                Ok(Archive::S3 {
                    config: c.clone(),
                    store: Arc::new(store),
                    rt,
                })
            }
        }
    }

    /// Where an object is, for people (and tombstones).
    pub fn location(&self, key: &str) -> String {
        match self {
            Archive::Dir(d) => format!("dir:{}", d.join(key).display()),
            Archive::S3 { config, .. } => format!("s3://{}/{}{key}", config.bucket, config.prefix),
        }
    }

    /// Archives a segment (its bytes `data`) with `manifest`, and
    /// confirms it by reading it back; returns the segment object's location.
    pub fn put_segment(&self, data: &[u8], manifest: &Manifest) -> Result<String, ArchiveError> {
        let key = &manifest.object;
        let mkey = key.replace(".seg", ".manifest.json");
        let mbytes =
            serde_json::to_vec_pretty(manifest).map_err(|e| ArchiveError::Setup(e.to_string()))?;
        self.put(key, data)?;
        let back = self.get(key)?;
        let (got, want) = (Sha256::digest(&back), Sha256::digest(data));
        if back.len() != data.len() || got != want {
            return Err(ArchiveError::Mismatch {
                what: self.location(key),
                got: format!("{} bytes, sha256 {}", back.len(), hex::encode(&got)),
                want: format!("{} bytes, sha256 {}", data.len(), hex::encode(&want)),
            });
        }
        self.put(&mkey, &mbytes)?;
        Ok(self.location(key))
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), ArchiveError> {
        match self {
            Archive::Dir(d) => {
                let path = d.join(key);
                let tmp = path.with_extension("partial");
                let r = File::create(&tmp)
                    .and_then(|mut f| {
                        f.write_all(data)?;
                        f.sync_all()
                    })
                    .and_then(|_| fs::rename(&tmp, &path))
                    .and_then(|_| match path.parent() {
                        Some(p) => File::open(p)?.sync_all(),
                        None => Ok(()),
                    });
                r.map_err(|e| io(path.display().to_string())(e.to_string()))
            }
            Archive::S3 { config, store, rt } => {
                let locked;
                let client: &AmazonS3 = match &config.object_lock {
                    None => store,
                    Some(lock) => {
                        let until =
                            Timestamp::now_utc().unix_secs() + i64::from(lock.retain_days) * 86_400;
                        let until =
                            Timestamp::new(until, 0, 0).map_or_else(String::new, |t| t.to_string());
                        let mut h = HeaderMap::new();
                        let value = |v: &str| {
                            HeaderValue::from_str(v).map_err(|e| ArchiveError::Setup(e.to_string()))
                        };
                        h.insert("x-amz-object-lock-mode", value(&lock.mode)?);
                        h.insert("x-amz-object-lock-retain-until-date", value(&until)?);
                        locked = s3_builder(config)?
                            .with_client_options(
                                ClientOptions::new()
                                    .with_default_headers(h)
                                    .with_allow_http(config.allow_http),
                            )
                            .build()
                            .map_err(|e| ArchiveError::Setup(e.to_string()))?;
                        &locked
                    }
                };
                let path = ObjectPath::from(format!("{}{key}", config.prefix));
                let payload = PutPayload::from(data.to_vec());
                rt.block_on(client.put(&path, payload))
                    .map(|_| ())
                    .map_err(|e| io(self.location(key))(e.to_string()))
            }
        }
    }

    /// The object `key`.
    pub fn get(&self, key: &str) -> Result<Vec<u8>, ArchiveError> {
        match self {
            Archive::Dir(d) => {
                let path = d.join(key);
                fs::read(&path).map_err(|e| io(path.display().to_string())(e.to_string()))
            }
            Archive::S3 { config, store, rt } => {
                let path = ObjectPath::from(format!("{}{key}", config.prefix));
                rt.block_on(async { store.get(&path).await?.bytes().await })
                    .map(|b| b.to_vec())
                    .map_err(|e| io(self.location(key))(e.to_string()))
            }
        }
    }

    /// Keys of every manifest, sorted.
    pub fn manifests(&self) -> Result<Vec<String>, ArchiveError> {
        let mut out: Vec<String> = match self {
            Archive::Dir(d) => {
                let dir = d.join("segments");
                fs::read_dir(&dir)
                    .map_err(|e| io(dir.display().to_string())(e.to_string()))?
                    .filter_map(|e| e.ok())
                    .map(|e| format!("segments/{}", e.file_name().to_string_lossy()))
                    .filter(|k| k.ends_with(".manifest.json"))
                    .collect()
            }
            Archive::S3 { config, store, rt } => {
                let prefix = ObjectPath::from(format!("{}segments", config.prefix));
                let metas: Vec<_> = rt
                    .block_on(store.list(Some(&prefix)).try_collect())
                    .map_err(|e: object_store::Error| {
                        io(self.location("segments/"))(e.to_string())
                    })?;
                metas
                    .into_iter()
                    .map(|m| m.location.to_string())
                    .filter(|k| k.ends_with(".manifest.json"))
                    .map(|k| k.strip_prefix(&config.prefix).unwrap_or(&k).to_string())
                    .collect()
            }
        };
        out.sort();
        Ok(out)
    }
}

/// Writes `data` to `path` durably (see [`crate::durable`]).
pub fn write_durably(path: &Path, data: &[u8]) -> std::io::Result<()> {
    crate::durable::replace(path, data)
}
