//! Compiling access-log format strings into a token list.
//!
//! Both nginx `log_format` (`$remote_addr - $remote_user [$time_local] …`)
//! and Apache `LogFormat` (`%h %l %u %t "%r" %>s %b`) strings compile into the
//! same [`CompiledFormat`]: literals and typed fields, in order. The matcher
//! in [`super::matcher`] walks that list over a line. The built-in formats
//! (`combined`, `common`, `vhost_combined`) are themselves just format
//! strings compiled at startup, so a user-supplied format gets exactly the
//! same treatment as the defaults.

/// What a field in the format means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// Client address, possibly a list (`$remote_addr`, `%h`, `%a`).
    RemoteAddr,
    /// Client port (`$remote_port`).
    RemotePort,
    /// Authenticated user (`$remote_user`, `%u`).
    RemoteUser,
    /// identd user (`%l`); almost always `-` and ignored.
    Ident,
    /// `07/Dec/2016:11:05:07 +0100` (`$time_local`, inside `%t`'s brackets).
    TimeLocal,
    /// RFC 3339 time (`$time_iso8601`).
    TimeIso8601,
    /// Seconds since the epoch with milliseconds (`$msec`).
    Msec,
    /// Full request line (`$request`, `%r`).
    Request,
    /// Request method alone (`$request_method`, `%m`).
    Method,
    /// Request URI with query (`$request_uri`).
    RequestUri,
    /// Request path without query (`$uri`, `%U`).
    Path,
    /// Query string (`$args`, `$query_string`, `%q`).
    Query,
    /// Protocol (`$server_protocol`, `%H`).
    Protocol,
    /// Response status (`$status`, `%>s`, `%s`).
    Status,
    /// Response body bytes (`$body_bytes_sent`, `%b`, `%B`).
    BodyBytes,
    /// Bytes sent including headers (`$bytes_sent`, `%O`); used as body bytes
    /// when no body-bytes field is present.
    BytesSent,
    /// Referer header.
    Referrer,
    /// User-Agent header.
    UserAgent,
    /// X-Forwarded-For header.
    ForwardedFor,
    /// Virtual host or Host header (`$host`, `$server_name`, `%v`).
    Host,
    /// Request id (`$request_id`, `%L`).
    RequestId,
    /// Duration in seconds with fraction (`$request_time`, `%T`).
    DurationSecs,
    /// Duration in microseconds (`%D`).
    DurationMicros,
    /// Anything else, kept under this name in the event's `fields`.
    Other(String),
}

/// One element of a compiled format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    /// Bytes that must appear exactly.
    Lit(String),
    /// A field whose extent runs to the next literal.
    Field(FieldKind),
}

/// A format string compiled into tokens.
#[derive(Clone, Debug)]
pub struct CompiledFormat {
    /// Name for errors and metrics (`nginx:combined`, `nginx:custom`…).
    pub name: String,
    /// Literals and fields, in order; two fields are never adjacent.
    pub tokens: Vec<Token>,
}

/// A format string that cannot be compiled.
#[derive(Debug, thiserror::Error)]
#[error("invalid {dialect} log format at byte {at}: {what} (format: {format:?})")]
pub struct FormatError {
    /// `nginx` or `apache`.
    pub dialect: &'static str,
    /// Byte offset of the problem in the format string.
    pub at: usize,
    /// What is wrong.
    pub what: String,
    /// The format string.
    pub format: String,
}

/// nginx's predefined `combined` format.
pub const NGINX_COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;
/// The Common Log Format, as nginx variables.
pub const NGINX_COMMON: &str =
    r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent"#;
/// A vhost-prefixed combined format for nginx (nginx has no built-in one;
/// this mirrors Apache's `vhost_combined`).
pub const NGINX_VHOST_COMBINED: &str = r#"$host:$server_port $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;
/// Apache's `combined`.
pub const APACHE_COMBINED: &str = r#"%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i""#;
/// Apache's `common`.
pub const APACHE_COMMON: &str = r#"%h %l %u %t "%r" %>s %b"#;
/// Apache's `vhost_combined`.
pub const APACHE_VHOST_COMBINED: &str =
    r#"%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i""#;

impl CompiledFormat {
    /// Compiles an nginx `log_format` string.
    pub fn nginx(name: &str, format: &str) -> Result<Self, FormatError> {
        compile("nginx", name, format, b'$', |b, i| {
            let (start, s) = (*i, b.format.as_bytes());
            *i += 1;
            let braced = s.get(*i) == Some(&b'{');
            if braced {
                *i += 1;
            }
            let name_start = *i;
            while *i < s.len() && (s[*i].is_ascii_alphanumeric() || s[*i] == b'_') {
                *i += 1;
            }
            let var = &b.format[name_start..*i];
            if var.is_empty() {
                return Err(b.err(start, "'$' not followed by a variable name"));
            }
            if braced {
                if s.get(*i) != Some(&b'}') {
                    return Err(b.err(start, "unclosed '${'"));
                }
                *i += 1;
            }
            b.field(start, nginx_field(var))
        })
    }

    /// Compiles an Apache `LogFormat` string.
    pub fn apache(name: &str, format: &str) -> Result<Self, FormatError> {
        compile("apache", name, format, b'%', |b, i| {
            let (start, s) = (*i, b.format.as_bytes());
            *i += 1;
            if s.get(*i) == Some(&b'%') {
                b.lit.push('%');
                *i += 1;
                return Ok(());
            }
            // Modifiers: status conditions ("400,501" or "!200"), "<" and ">".
            while *i < s.len() && matches!(s[*i], b'<' | b'>' | b'!' | b',' | b'0'..=b'9') {
                *i += 1;
            }
            let mut arg = None;
            if s.get(*i) == Some(&b'{') {
                let close = b.format[*i..]
                    .find('}')
                    .ok_or_else(|| b.err(start, "unclosed '%{'"))?;
                arg = Some(&b.format[*i + 1..*i + close]);
                *i += close + 1;
            }
            let Some(&d) = s.get(*i) else {
                return Err(b.err(start, "'%' at end of format"));
            };
            *i += 1;
            let kind = apache_field(d, arg)
                .ok_or_else(|| b.err(start, &format!("unknown directive '%{}'", d as char)))?;
            if d == b't' && arg.is_none() {
                // %t is "[07/Dec/2016:11:05:07 +0100]", brackets included.
                b.lit.push('[');
                b.field(start, FieldKind::TimeLocal)?;
                b.lit.push(']');
                Ok(())
            } else {
                b.field(start, kind)
            }
        })
    }
}

/// Literals and fields collected while a format string is read.
struct Builder<'f> {
    dialect: &'static str,
    format: &'f str,
    tokens: Vec<Token>,
    lit: String,
}

impl Builder<'_> {
    fn err(&self, at: usize, what: &str) -> FormatError {
        FormatError {
            dialect: self.dialect,
            at,
            what: what.to_string(),
            format: self.format.to_string(),
        }
    }

    /// Ends the pending literal and adds a field; two adjacent fields are an
    /// error because the boundary between them cannot be found.
    fn field(&mut self, at: usize, kind: FieldKind) -> Result<(), FormatError> {
        if self.lit.is_empty() {
            if let Some(Token::Field(prev)) = self.tokens.last() {
                let what = format!(
                    "two fields with nothing between them ({prev:?} then {kind:?}); \
                     the boundary between them cannot be found"
                );
                return Err(self.err(at, &what));
            }
        } else {
            self.tokens.push(Token::Lit(std::mem::take(&mut self.lit)));
        }
        self.tokens.push(Token::Field(kind));
        Ok(())
    }
}

/// Reads `format`, copying literal text and handing each `sigil` to
/// `directive`, which advances the index past the directive it reads.
fn compile(
    dialect: &'static str,
    name: &str,
    format: &str,
    sigil: u8,
    directive: impl Fn(&mut Builder<'_>, &mut usize) -> Result<(), FormatError>,
) -> Result<CompiledFormat, FormatError> {
    let mut b = Builder {
        dialect,
        format,
        tokens: Vec::new(),
        lit: String::new(),
    };
    let mut i = 0;
    while i < format.len() {
        if format.as_bytes()[i] == sigil {
            directive(&mut b, &mut i)?;
        } else {
            let ch = format[i..].chars().next().unwrap_or_default();
            b.lit.push(ch);
            i += ch.len_utf8();
        }
    }
    if !b.lit.is_empty() {
        b.tokens.push(Token::Lit(b.lit));
    }
    Ok(CompiledFormat {
        name: format!("{dialect}:{name}"),
        tokens: b.tokens,
    })
}

fn nginx_field(var: &str) -> FieldKind {
    use FieldKind::*;
    match var {
        "remote_addr" | "binary_remote_addr" => RemoteAddr,
        "remote_port" => RemotePort,
        "remote_user" => RemoteUser,
        "time_local" => TimeLocal,
        "time_iso8601" => TimeIso8601,
        "msec" => Msec,
        "request" => Request,
        "request_method" => Method,
        "request_uri" => RequestUri,
        "uri" | "document_uri" => Path,
        "args" | "query_string" => Query,
        "server_protocol" => Protocol,
        "status" => Status,
        "body_bytes_sent" => BodyBytes,
        "bytes_sent" => BytesSent,
        "http_referer" => Referrer,
        "http_user_agent" => UserAgent,
        "http_x_forwarded_for" | "proxy_add_x_forwarded_for" => ForwardedFor,
        "host" | "server_name" | "http_host" => Host,
        "request_id" => RequestId,
        "request_time" => DurationSecs,
        other => Other(other.to_string()),
    }
}

fn apache_field(d: u8, arg: Option<&str>) -> Option<FieldKind> {
    use FieldKind::*;
    let header = |h: &str| match h.to_ascii_lowercase().as_str() {
        "referer" | "referrer" => Referrer,
        "user-agent" => UserAgent,
        "x-forwarded-for" => ForwardedFor,
        "host" => Host,
        "x-request-id" => RequestId,
        other => Other(format!("http_{}", other.replace('-', "_"))),
    };
    Some(match (d, arg) {
        (b'h' | b'a', _) => RemoteAddr,
        (b'l', _) => Ident,
        (b'u', _) => RemoteUser,
        (b't', None) => TimeLocal,
        (b't', Some(f)) => Other(format!("time:{f}")),
        (b'r', _) => Request,
        (b'm', _) => Method,
        (b'U', _) => Path,
        (b'q', _) => Query,
        (b'H', _) => Protocol,
        (b's', _) => Status,
        (b'b' | b'B', _) => BodyBytes,
        (b'O', _) => BytesSent,
        (b'i', Some(h)) => header(h),
        (b'v' | b'V', _) => Host,
        (b'L', _) => RequestId,
        (b'D', _) => DurationMicros,
        (b'T', None) => DurationSecs,
        (b'T', Some("us")) => DurationMicros,
        (b'T', Some(u)) => Other(format!("duration_{u}")),
        (b'p', _) => Other("server_port".into()),
        (b'A', _) => Other("server_addr".into()),
        (b'P', _) => Other("server_pid".into()),
        (b'I', _) => Other("bytes_received".into()),
        (b'S', _) => Other("bytes_transferred".into()),
        (b'k', _) => Other("keepalive".into()),
        (b'X', _) => Other("connection_status".into()),
        (b'f', _) => Other("filename".into()),
        (b'R', _) => Other("handler".into()),
        (b'o', Some(h)) => Other(format!("resp_{}", h.to_ascii_lowercase().replace('-', "_"))),
        (b'n', Some(n)) => Other(format!("note_{n}")),
        (b'e', Some(n)) => Other(format!("env_{n}")),
        (b'C', Some(n)) => Other(format!("cookie_{n}")),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_combined_compiles_to_alternating_tokens() {
        let f = CompiledFormat::nginx("combined", NGINX_COMBINED).unwrap();
        assert_eq!(f.tokens[0], Token::Field(FieldKind::RemoteAddr));
        assert_eq!(f.tokens[1], Token::Lit(" - ".into()));
        assert_eq!(f.tokens[3], Token::Lit(" [".into()));
        assert_eq!(f.tokens.last(), Some(&Token::Lit("\"".into())));
        // 8 fields and 8 literals; the format starts with a field.
        assert_eq!(f.tokens.len(), 16);
    }

    #[test]
    fn apache_time_directive_carries_its_brackets() {
        let f = CompiledFormat::apache("common", APACHE_COMMON).unwrap();
        assert!(f.tokens.contains(&Token::Lit(" [".into())));
        assert!(f.tokens.contains(&Token::Lit("] \"".into())));
        let v = CompiledFormat::apache("vhost", APACHE_VHOST_COMBINED).unwrap();
        assert_eq!(v.tokens[0], Token::Field(FieldKind::Host));
        assert_eq!(v.tokens[1], Token::Lit(":".into()));
    }

    #[test]
    fn bad_formats_say_where() {
        let e = CompiledFormat::nginx("x", "$remote_addr$remote_user").unwrap_err();
        assert_eq!(e.at, 12);
        assert!(e.to_string().contains("nothing between them"), "{e}");
        let e = CompiledFormat::nginx("x", "a ${host").unwrap_err();
        assert!(e.to_string().contains("unclosed"), "{e}");
        let e = CompiledFormat::apache("x", "%h %Z").unwrap_err();
        assert_eq!(e.at, 3);
        assert!(CompiledFormat::nginx("x", "$ x").is_err());
    }
}
