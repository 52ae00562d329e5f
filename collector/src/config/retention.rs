//! `[retention]`: policies, the schedule, and the archive (see
//! [`crate::retention`] for what a run does).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tomlconf::HumanDuration;

/// `[retention]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    /// How often the collector runs retention on its own (default "1h";
    /// "0s": only when asked, by `auditship retention run`). Nothing
    /// expires unless a policy says so.
    #[serde(default)]
    pub interval: Option<HumanDuration>,
    /// Policies. An event no policy matches is kept forever; an event
    /// several match is kept as long as the longest of them says.
    #[serde(default)]
    pub policies: Vec<RawPolicy>,
    /// Where sealed segments are archived before payloads are removed
    /// (default: nowhere).
    #[serde(default)]
    pub archive: Option<RawArchive>,
}

/// `[[retention.policies]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// Name, in tombstones and reports: letters, digits, `_` and `-`.
    pub name: String,
    /// Event categories it covers (`authentication`, `web`, ...; "*" for
    /// every category). Events of the collector's own chain are covered
    /// only where a category is named literally, and `integrity` never.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Event `source` values it covers (glob patterns, e.g.
    /// "/var/log/nginx/*"). With categories too, both must match.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Age (of the event's time) after which its payload is removed, e.g.
    /// "400d".
    pub max_age: HumanDuration,
}

/// `[retention.archive]`: set exactly one of `dir` and `[retention.archive.s3]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArchive {
    /// A local directory (e.g. a mounted backup volume).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// S3-compatible object storage.
    #[serde(default)]
    pub s3: Option<RawS3>,
}

/// `[retention.archive.s3]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawS3 {
    /// Bucket name.
    pub bucket: String,
    /// Region (default "us-east-1").
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint URL of an S3-compatible server, e.g. "https://minio:9000"
    /// (default: AWS for the region).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Prefix of every object key, e.g. "collector-eu-1/" (default none).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), as most local servers
    /// need (default true when `endpoint` is set, else false).
    #[serde(default)]
    pub path_style: Option<bool>,
    /// Allow a plain `http://` endpoint (default false).
    #[serde(default)]
    pub allow_http: bool,
    /// Access key id (default: the AWS_ACCESS_KEY_ID environment variable,
    /// or the instance's credentials).
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Secret access key; prefer secret_access_key_file.
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// A file holding the secret access key (trailing whitespace ignored).
    #[serde(default)]
    pub secret_access_key_file: Option<PathBuf>,
    /// S3 Object Lock mode sent with every upload: "governance" or
    /// "compliance" (default: none). The bucket must have Object Lock on.
    #[serde(default)]
    pub object_lock_mode: Option<String>,
    /// Days from the upload the lock retains an object (needed with
    /// object_lock_mode).
    #[serde(default)]
    pub object_lock_retain_days: Option<u32>,
}

/// A validated policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Name.
    pub name: String,
    /// Categories ("*": all).
    pub categories: Vec<String>,
    /// Source globs.
    pub sources: Vec<String>,
    /// Age after which payloads go.
    pub max_age: Duration,
}

/// Where a secret comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// Given in the config.
    Inline(String),
    /// Read from this file when the archive is opened.
    File(PathBuf),
}

/// S3 Object Lock settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectLock {
    /// "GOVERNANCE" or "COMPLIANCE".
    pub mode: String,
    /// Retention in days from the upload.
    pub retain_days: u32,
}

/// Validated S3 settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Config {
    /// Bucket.
    pub bucket: String,
    /// Region.
    pub region: String,
    /// Endpoint.
    pub endpoint: Option<String>,
    /// Key prefix ("" or ending in "/").
    pub prefix: String,
    /// Path-style requests.
    pub path_style: bool,
    /// Plain HTTP allowed.
    pub allow_http: bool,
    /// Access key id (None: from the environment).
    pub access_key_id: Option<String>,
    /// Secret key (None: from the environment).
    pub secret_access_key: Option<SecretSource>,
    /// Object Lock.
    pub object_lock: Option<ObjectLock>,
}

/// Where archives go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArchiveConfig {
    /// A local directory.
    Dir(PathBuf),
    /// S3-compatible storage.
    S3(S3Config),
}

/// Validated retention settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionConfig {
    /// Schedule (zero: on demand only).
    pub interval: Duration,
    /// Policies.
    pub policies: Vec<PolicyConfig>,
    /// Archive.
    pub archive: Option<ArchiveConfig>,
}

/// Validates `[retention]`; relative paths are joined to `base`.
pub fn validate(
    raw: RawRetention,
    base: &Path,
    err: &mut dyn FnMut(&str, String),
) -> RetentionConfig {
    let interval = raw.interval.map_or(Duration::from_secs(3600), |d| d.0);
    if !interval.is_zero() && interval < Duration::from_secs(1) {
        err(
            "retention.interval",
            "must be at least 1s, or 0s to run only on demand".into(),
        );
    }
    let mut policies = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (i, p) in raw.policies.into_iter().enumerate() {
        let k = |f: &str| format!("retention.policies[{i}].{f}");
        let ok_name = !p.name.is_empty()
            && p.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok_name {
            err(
                &k("name"),
                "must be letters, digits, '_' and '-' (and not empty)".into(),
            );
        } else if !names.insert(p.name.clone()) {
            err(&k("name"), format!("{:?} names another policy", p.name));
        }
        if p.categories.is_empty() && p.sources.is_empty() {
            err(
                &format!("retention.policies[{i}]"),
                "set categories, sources or both: a policy covers nothing otherwise".into(),
            );
        }
        if p.categories.iter().any(|c| c.is_empty()) {
            err(&k("categories"), "must not hold an empty name".into());
        }
        for s in &p.sources {
            if let Err(e) = globset::Glob::new(s) {
                err(&k("sources"), format!("{s:?}: {e}"));
            }
        }
        if p.max_age.0 < Duration::from_secs(60) {
            err(&k("max_age"), "must be at least 1m".into());
        }
        policies.push(PolicyConfig {
            name: p.name,
            categories: p.categories,
            sources: p.sources,
            max_age: p.max_age.0,
        });
    }
    let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
    let archive = match raw.archive {
        None => None,
        Some(RawArchive {
            dir: Some(d),
            s3: None,
        }) => Some(ArchiveConfig::Dir(rel(d))),
        Some(RawArchive {
            dir: None,
            s3: Some(s),
        }) => s3(s, &rel, err).map(ArchiveConfig::S3),
        Some(_) => {
            err(
                "retention.archive",
                "set exactly one of dir and [retention.archive.s3]".into(),
            );
            None
        }
    };
    RetentionConfig {
        interval,
        policies,
        archive,
    }
}

fn s3(
    s: RawS3,
    rel: &dyn Fn(PathBuf) -> PathBuf,
    err: &mut dyn FnMut(&str, String),
) -> Option<S3Config> {
    let k = |f: &str| format!("retention.archive.s3.{f}");
    let mut ok = true;
    if s.bucket.is_empty() {
        err(&k("bucket"), "must not be empty".into());
        ok = false;
    }
    if let Some(e) = &s.endpoint {
        let plain = e.starts_with("http://");
        if !plain && !e.starts_with("https://") {
            err(&k("endpoint"), format!("{e:?} is not an http(s):// URL"));
            ok = false;
        } else if plain && !s.allow_http {
            err(
                &k("endpoint"),
                "is plain http://; set allow_http = true to allow it".into(),
            );
            ok = false;
        }
    }
    let secret = match (s.secret_access_key, s.secret_access_key_file) {
        (Some(v), None) => Some(SecretSource::Inline(v)),
        (None, Some(f)) => Some(SecretSource::File(rel(f))),
        (None, None) => None,
        (Some(_), Some(_)) => {
            err(
                &k("secret_access_key"),
                "set at most one of secret_access_key and secret_access_key_file".into(),
            );
            ok = false;
            None
        }
    };
    if s.access_key_id.is_some() != secret.is_some() {
        err(
            &k("access_key_id"),
            "set both the access key id and its secret, or neither (then the environment's are used)"
                .into(),
        );
        ok = false;
    }
    let object_lock = match (s.object_lock_mode, s.object_lock_retain_days) {
        (None, None) => None,
        (Some(m), Some(d)) if d > 0 => match m.to_ascii_lowercase().as_str() {
            "governance" | "compliance" => Some(ObjectLock {
                mode: m.to_ascii_uppercase(),
                retain_days: d,
            }),
            _ => {
                err(
                    &k("object_lock_mode"),
                    format!("{m:?} is not governance or compliance"),
                );
                ok = false;
                None
            }
        },
        _ => {
            err(
                &k("object_lock_mode"),
                "set object_lock_mode together with object_lock_retain_days (at least 1)".into(),
            );
            ok = false;
            None
        }
    };
    let mut prefix = s.prefix.unwrap_or_default();
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    ok.then(|| S3Config {
        path_style: s.path_style.unwrap_or(s.endpoint.is_some()),
        bucket: s.bucket,
        region: s.region.unwrap_or_else(|| "us-east-1".into()),
        endpoint: s.endpoint,
        prefix,
        allow_http: s.allow_http,
        access_key_id: s.access_key_id,
        secret_access_key: secret,
        object_lock,
    })
}
