//! Why a filter configuration cannot be used.
//!
//! Every error names the position of the offending filter in the `[[filters]]`
//! list and the key inside it, so a message reads like
//! `filters[2].rules[0].url_regex: regex parse error: ...`. Errors come only
//! from stage two ([`crate::filter::build_chain`] and the `validate` methods);
//! unknown keys and wrongly typed values are already rejected by serde while
//! the TOML is read.

/// A filter configuration that does not validate.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// A regular expression does not compile.
    #[error("filters[{index}].{key}: {source}")]
    Regex {
        /// Position of the filter in the list.
        index: usize,
        /// Key inside the filter, e.g. `rules[0].url_regex`.
        key: String,
        /// The compiler's message.
        #[source]
        source: regex::Error,
    },
    /// A drop rule has no condition, so it would drop every event.
    #[error("filters[{index}].{key}: a drop rule needs at least one condition")]
    EmptyRule {
        /// Position of the filter in the list.
        index: usize,
        /// Key inside the filter, e.g. `rules[1]`.
        key: String,
    },
    /// `host_from_system = true`, no `host`, and the host name is unreadable.
    #[error(
        "filters[{index}].{key}: cannot read the system host name \
         (/proc/sys/kernel/hostname, /etc/hostname); set `host` instead"
    )]
    Hostname {
        /// Position of the filter in the list.
        index: usize,
        /// Always `host_from_system`.
        key: String,
    },
    /// Any other value that is not acceptable; `what` says why.
    #[error("filters[{index}].{key}: {what}")]
    Invalid {
        /// Position of the filter in the list.
        index: usize,
        /// Key inside the filter, e.g. `rules[0].src_ip` or `fields[1]`.
        key: String,
        /// What is wrong with the value.
        what: String,
    },
}

impl FilterError {
    /// Position of the offending filter in the `[[filters]]` list.
    pub fn index(&self) -> usize {
        match self {
            FilterError::Regex { index, .. }
            | FilterError::EmptyRule { index, .. }
            | FilterError::Hostname { index, .. }
            | FilterError::Invalid { index, .. } => *index,
        }
    }

    /// The key inside the filter, e.g. `rules[0].url_regex`.
    pub fn key(&self) -> &str {
        match self {
            FilterError::Regex { key, .. }
            | FilterError::EmptyRule { key, .. }
            | FilterError::Hostname { key, .. }
            | FilterError::Invalid { key, .. } => key,
        }
    }

    /// An [`FilterError::Invalid`] for `filters[index].key`.
    pub(crate) fn invalid(index: usize, key: impl Into<String>, what: impl Into<String>) -> Self {
        FilterError::Invalid {
            index,
            key: key.into(),
            what: what.into(),
        }
    }
}

/// Compiles `pattern`, naming `filters[index].key` on failure.
pub(crate) fn compile_regex(
    index: usize,
    key: impl Into<String>,
    pattern: &str,
) -> Result<regex::Regex, FilterError> {
    regex::Regex::new(pattern).map_err(|source| FilterError::Regex {
        index,
        key: key.into(),
        source,
    })
}
