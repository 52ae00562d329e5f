//! The shipped rule set: `config/alerts.default.toml`, compiled in.
//!
//! Kept as a TOML file rather than Rust so that operators read the rules in
//! the form they write their own, and copy one to tune it. It is parsed
//! with the same structs as `[[alerts.rules]]` and validated by the same
//! code; a unit test checks that it parses, validates, and that every rule
//! in it has a firing and a non-firing test.

use serde::Deserialize;

use super::rules::RawRule;

/// The file's text.
pub const TEXT: &str = include_str!("../../../config/alerts.default.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    rules: Vec<RawRule>,
}

/// The default rules as written (disabled ones included).
pub fn raw_rules() -> Vec<RawRule> {
    // The text is fixed at build time and a test parses it.
    toml::from_str::<File>(TEXT)
        .map(|f| f.rules)
        .unwrap_or_else(|e| panic!("config/alerts.default.toml does not parse: {e}"))
}
