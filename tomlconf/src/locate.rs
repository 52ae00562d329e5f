//! Finding the line of a key path (`inputs[1].include[0]`) in a TOML file,
//! so semantic errors point at the file, line and key like syntax errors do.
//!
//! It understands what the agent's configs use: top-level keys, `[table]`
//! and `[table.sub]` headers, `[[array]]` headers counted by occurrence,
//! and `key = value` lines inside them. When the exact key is not found (an inline table, a
//! dotted key), it returns the line of the enclosing table header.

/// 1-based line of `path` in `source`, if it can be found.
pub fn line_of(source: &str, path: &str) -> Option<usize> {
    let segments: Vec<(&str, Option<usize>)> = path
        .split('.')
        .map(|seg| match seg.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse().ok()),
            None => (seg, None),
        })
        .collect();
    let lines: Vec<&str> = source.lines().collect();
    if segments.len() == 1 {
        return key_in(&lines, 0, segments[0].0, false);
    }
    // The longest prefix that names a table header: `[[alerts.rules]]` for
    // `alerts.rules[1].threshold`, `[tls]` for `tls.cert_file`. Only the
    // header's last segment may carry an index.
    for k in (1..segments.len()).rev() {
        let head = &segments[..k];
        if head[..k - 1].iter().any(|s| s.1.is_some()) {
            continue;
        }
        let name: Vec<&str> = head.iter().map(|s| s.0).collect();
        let name = name.join(".");
        let index = head[k - 1].1;
        let header = match index {
            Some(_) => format!("[[{name}]]"),
            None => format!("[{name}]"),
        };
        let Some(at) = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.trim() == header)
            .nth(index.unwrap_or(0))
            .map(|(i, _)| i)
        else {
            continue;
        };
        return key_in(&lines, at, segments[k].0, true);
    }
    None
}

/// The line assigning `key` in the section starting at `start` (a header
/// line when `in_section`), or the header's line.
fn key_in(lines: &[&str], start: usize, key: &str, in_section: bool) -> Option<usize> {
    for (i, l) in lines
        .iter()
        .enumerate()
        .skip(start + usize::from(in_section))
    {
        let t = l.trim_start();
        if t.starts_with('[') {
            break;
        }
        if let Some(rest) = t.strip_prefix(key) {
            if rest.trim_start().starts_with('=') {
                return Some(i + 1);
            }
        }
    }
    in_section.then_some(start + 1)
}

/// The first line at or after `from` (1-based) that assigns `key`, before the
/// next table header.
pub fn key_line_from(source: &str, from: usize, key: &str) -> Option<usize> {
    for (i, l) in source.lines().enumerate().skip(from.saturating_sub(1)) {
        let t = l.trim_start();
        if i + 1 > from && t.starts_with('[') {
            return None;
        }
        if let Some(rest) = t.strip_prefix(key) {
            if rest.trim_start().starts_with('=') {
                return Some(i + 1);
            }
        }
    }
    None
}

/// 1-based (line, column) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

/// Whether 1-based `line` is a whole `key = value` on one line (so
/// commenting it out leaves valid TOML).
pub fn is_one_line_key(source: &str, line: usize) -> bool {
    let Some(text) = source.lines().nth(line.wrapping_sub(1)) else {
        return false;
    };
    let t = text.trim();
    let Some((key, value)) = t.split_once('=') else {
        return false;
    };
    let key = key.trim();
    let value = value.trim();
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | '\''));
    let closed = |open: char, close: char| {
        !value.starts_with(open) || value.matches(open).count() <= value.matches(close).count()
    };
    bare && !value.starts_with("\"\"\"")
        && !value.starts_with("\'\'\'")
        && closed('[', ']')
        && closed('{', '}')
}

/// The key written on 1-based `line`.
pub fn key_on_line(source: &str, line: usize) -> String {
    source
        .lines()
        .nth(line.wrapping_sub(1))
        .and_then(|t| t.split_once('='))
        .map_or(String::new(), |(k, _)| {
            k.trim().trim_matches(['"', '\'']).to_string()
        })
}

/// `source` with 1-based `line` turned into a comment.
pub fn comment_out(source: &str, line: usize) -> String {
    let mut out = String::with_capacity(source.len() + 2);
    for (i, l) in source.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            out.push_str("# ");
        }
        out.push_str(l);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "state_dir = \"/x\"\n\n[queue]\nmax_bytes = \"1GiB\"\n\n[[inputs]]\nname = \"a\"\n\n[[inputs]]\nname = \"b\"\ninclude = [\"[\"]\n";

    #[test]
    fn finds_keys_in_tables_and_arrays_of_tables() {
        assert_eq!(line_of(SRC, "state_dir"), Some(1));
        assert_eq!(line_of(SRC, "queue.max_bytes"), Some(4));
        assert_eq!(line_of(SRC, "inputs[1].include[0]"), Some(11));
        assert_eq!(line_of(SRC, "inputs[0].name"), Some(7));
        // Missing key: the table header.
        assert_eq!(line_of(SRC, "inputs[0].include"), Some(6));
        assert_eq!(line_of(SRC, "outputs[0].path"), None);
        assert_eq!(line_col(SRC, SRC.find("max_bytes").unwrap()), (4, 1));
    }

    #[test]
    fn finds_keys_in_nested_tables() {
        let src = "[store]
segment_bytes = 1

[store.encryption]
key_file = \"k\"
previous_key_files = [\"k\"]
";
        assert_eq!(
            line_of(src, "store.encryption.previous_key_files[0]"),
            Some(6)
        );
        assert_eq!(line_of(src, "store.encryption.key_file"), Some(5));
        assert_eq!(line_of(src, "store.encryption.missing"), Some(4));
        assert_eq!(line_of(src, "store.segment_bytes"), Some(2));
    }

    #[test]
    fn finds_keys_in_arrays_of_tables_nested_in_a_table() {
        let src = "[alerts]\ndefaults = false\n\n[[alerts.rules]]\nname = \"a\"\n\n[[alerts.rules]]\nname = \"b\"\nthreshold = 0\n\n[[alerts.webhooks]]\nurl = \"x\"\n";
        assert_eq!(line_of(src, "alerts.defaults"), Some(2));
        assert_eq!(line_of(src, "alerts.rules[1].threshold"), Some(9));
        assert_eq!(line_of(src, "alerts.rules[0].name"), Some(5));
        assert_eq!(
            line_of(src, "alerts.rules[0].when"),
            Some(4),
            "missing: the header"
        );
        assert_eq!(line_of(src, "alerts.webhooks[0].url"), Some(12));
    }
}
