//! Old clients served the same (M 2.319: the replacement stays compatible with the old
//! version's clients): HTTP/1.1 framing over std sockets (`http`), the traffic file
//! (`traffic`), the structural comparison of two answers (`diff`), and replay against the old
//! and the new service with the old service's own variation filtered out as noise (`replay`);
//! for databases, the statements of a server log against the old and the new server (`sql`).
//!
//! No async runtime: std threads and sockets. Everything a server sends is bounded
//! (`http::Limits`) and nothing it sends can panic the parser. Strings here are not escaped:
//! the caller escapes what reaches a terminal (`rehost_plan::escape_control`).

pub mod diff;
pub mod http;
pub mod probe;
pub mod record;
pub mod replay;
pub mod sql;
pub mod traffic;

/// At most `n` characters of `s`, with `…` when cut.
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(n).collect();
        c.push('…');
        c
    }
}

/// A request target as it may be shown: the values of query parameters whose names suggest a
/// credential (token, key, pass, secret, auth, sig, session) replaced by `(not shown)`.
pub fn shown_target(target: &str) -> String {
    let Some((path, query)) = target.split_once('?') else {
        return target.to_string();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if secret_name(k) => format!("{k}=(not shown)"),
            _ => p.to_string(),
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}

pub(crate) fn secret_name(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    [
        "token", "key", "pass", "secret", "auth", "sig", "session", "pwd",
    ]
    .iter()
    .any(|s| k.contains(s))
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_in_queries_are_not_shown() {
        assert_eq!(
            super::shown_target("/a?page=2&api_key=hunter2&x"),
            "/a?page=2&api_key=(not shown)&x"
        );
        assert_eq!(super::shown_target("/a"), "/a");
    }
}
