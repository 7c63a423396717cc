//! Redacting credentials from command lines that must be shown (the concept, the report's
//! checklist and plan text, a host error that names the program). Commands are otherwise never
//! repeated: a failed step is named by its id.
//!
//! The text is cut into shell words (quotes and backslashes respected; a quoted part that holds
//! several words, such as `sh -c '…'`, a libpq conninfo or a `-H '…'` header, is read the same
//! way inside). A value becomes `***` where a word, or the word before it, says it is a
//! credential:
//! - `NAME=value` whose NAME looks like a credential (`PGPASSWORD=…`, `MYSQL_PWD=…`,
//!   `--password=…`, conninfo `password=…`, `api_token=…`), and `password = value` with spaces;
//! - an option naming one, followed by its value: `--password X`, `--token X`;
//! - a header or field naming one: `Authorization: Bearer X` (the scheme kept), `Cookie: X`;
//! - MySQL's and MariaDB's `-pX` where the line runs one of their clients, and `sshpass -p X`;
//! - the password of a URL's userinfo (`postgres://user:pw@host`).

/// Substrings of a variable or option name (compared case-insensitively) that mark its value
/// as a credential.
const SECRET_NAMES: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "_PWD",
    "SECRET",
    "TOKEN",
    "KEY",
    "CREDENTIAL",
    "AUTH",
    "COOKIE",
];

/// Whether a `NAME` of `NAME=value` names a credential.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAMES.iter().any(|s| upper.contains(s))
}

/// Names whose value is a credential beyond doubt: used where a name stands apart from its
/// value (`password = x`, `--password x`), where a looser match would hide plan text such as
/// `keys = […]`. Names of a file, path or directory holding one are not credentials.
fn is_strong_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let holder = ["FILE", "PATH", "DIR"].iter().any(|s| upper.ends_with(s));
    !holder
        && !upper.starts_with("NO-")
        && [
            "PASSWORD",
            "PASSWD",
            "PASSPHRASE",
            "PASS",
            "SECRET",
            "TOKEN",
            "CREDENTIAL",
            "API-KEY",
            "API_KEY",
            "APIKEY",
            "AUTH",
            "COOKIE",
        ]
        .iter()
        .any(|s| upper.contains(s))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_name_char)
}

/// HTTP authentication schemes: kept before the credential they introduce.
fn is_auth_scheme(word: &str) -> bool {
    const SCHEMES: &[&str] = &[
        "bearer",
        "basic",
        "digest",
        "token",
        "negotiate",
        "ntlm",
        "hoba",
        "mutual",
        "apikey",
        "aws4-hmac-sha256",
    ];
    SCHEMES.iter().any(|s| word.eq_ignore_ascii_case(s))
}

/// The command line with credential values replaced by `***`: `PGPASSWORD=hunter2 pg_dump`
/// becomes `PGPASSWORD=*** pg_dump`, `postgres://u:pw@h/db` becomes `postgres://u:***@h/db`.
pub fn redact(command: &str) -> String {
    let ctx = Context {
        mysql: mentions_program(command, &["mysql", "mariadb"]),
        sshpass: mentions_program(command, &["sshpass"]),
    };
    redact_in(command, &ctx, 0)
}

/// What the whole line runs, for options whose meaning depends on the program (`-p`).
struct Context {
    mysql: bool,
    sshpass: bool,
}

/// Whether a word of `s` (or a path's last component) starts with one of `programs`.
fn mentions_program(s: &str, programs: &[&str]) -> bool {
    s.split(|c: char| c.is_whitespace() || "/;&|()'\"`=".contains(c))
        .any(|w| programs.iter().any(|p| w.starts_with(p)))
}

/// A shell word's span in the text, or a separator's (`;`, `&`, `|`, parentheses, redirections).
struct Word {
    start: usize,
    end: usize,
    sep: bool,
}

fn lex(s: &str) -> Vec<Word> {
    let b: Vec<(usize, char)> = s.char_indices().collect();
    let mut words = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let (pos, c) = b[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if ";&|()<>".contains(c) {
            let end = b.get(i + 1).map_or(s.len(), |x| x.0);
            words.push(Word {
                start: pos,
                end,
                sep: true,
            });
            i += 1;
            continue;
        }
        let start = pos;
        let mut quote: Option<char> = None;
        while i < b.len() {
            let c = b[i].1;
            match quote {
                Some(q) if c == q => quote = None,
                Some('"') if c == '\\' => i += 1,
                Some(_) => {}
                None if c == '\'' || c == '"' => quote = Some(c),
                None if c == '\\' => i += 1,
                None if c.is_whitespace() || ";&|()<>".contains(c) => break,
                None => {}
            }
            i += 1;
        }
        let end = b.get(i).map_or(s.len(), |x| x.0);
        words.push(Word {
            start,
            end,
            sep: false,
        });
    }
    words
}

/// A word without its quotes and backslashes, for matching names.
fn unquote(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut quote: Option<char> = None;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some('"') if c == '\\' => out.extend(chars.next()),
            Some(_) => out.push(c),
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '\\' => out.extend(chars.next()),
            None => out.push(c),
        }
    }
    out
}

/// What the word before asked of this one.
#[derive(Clone, Copy, PartialEq)]
enum Pending {
    None,
    /// This word is a credential.
    Value,
    /// This word is an HTTP scheme (kept) and the next one the credential, or else this one is.
    SchemeThenValue,
    /// The word before was a credential's name standing alone: `=` or `=value` may follow.
    Equals,
}

fn redact_in(s: &str, ctx: &Context, depth: usize) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    let mut pending = Pending::None;
    for w in lex(s) {
        out.push_str(&s[last..w.start]);
        last = w.end;
        let raw = &s[w.start..w.end];
        if w.sep {
            out.push_str(raw);
            pending = Pending::None;
            continue;
        }
        let value = unquote(raw);
        match std::mem::replace(&mut pending, Pending::None) {
            Pending::Value => {
                out.push_str("***");
                continue;
            }
            Pending::SchemeThenValue if is_auth_scheme(&value) => {
                out.push_str(raw);
                pending = Pending::Value;
                continue;
            }
            Pending::SchemeThenValue => {
                out.push_str("***");
                continue;
            }
            Pending::Equals if value == "=" => {
                out.push_str(raw);
                pending = Pending::Value;
                continue;
            }
            Pending::Equals if raw.starts_with('=') => {
                out.push_str("=***");
                continue;
            }
            Pending::Equals | Pending::None => {}
        }
        // `NAME=value`, the name written plainly at the word's start.
        if let Some(eq) = raw.find('=')
            && is_name(&raw[..eq])
            && is_secret_name(raw[..eq].trim_start_matches('-'))
        {
            out.push_str(&raw[..=eq]);
            if eq + 1 < raw.len() {
                out.push_str("***");
            } else {
                pending = Pending::Value;
            }
            continue;
        }
        // MySQL's and MariaDB's `-pPASSWORD` (`-p` alone asks at a prompt); sshpass's `-p X`. Before the
        // names: `-psecretpw` is a password, not an option naming one.
        if (ctx.mysql || ctx.sshpass) && value.len() > 2 && raw.starts_with("-p") {
            out.push_str("-p***");
            continue;
        }
        let name = value.trim_start_matches('-');
        // `--password X`, `--token X`.
        if value.starts_with('-') && is_name(name) && is_strong_secret_name(name) {
            out.push_str(raw);
            pending = Pending::Value;
            continue;
        }
        // `password = X` (libpq's conninfo allows spaces around `=`).
        if is_name(&value) && is_strong_secret_name(&value) {
            out.push_str(raw);
            pending = Pending::Equals;
            continue;
        }
        // `Authorization: Bearer X`, `Cookie: X`, `"password": "X"`, `X-Auth-Token:X`.
        if let Some(colon) = value.find(':')
            && is_name(&value[..colon])
            && is_secret_name(&value[..colon])
        {
            let rest = &value[colon + 1..];
            if rest.is_empty() {
                out.push_str(raw);
                pending = Pending::SchemeThenValue;
                continue;
            }
            if is_auth_scheme(rest) {
                out.push_str(raw);
                pending = Pending::Value;
                continue;
            }
            // Not a location (`keyhost:/srv`, `authsrv:~/x`) nor a URL.
            if !rest.starts_with(['/', '~']) && raw.starts_with(&value[..=colon]) {
                out.push_str(&value[..=colon]);
                out.push_str("***");
                continue;
            }
        }
        if ctx.sshpass && value == "-p" {
            out.push_str(raw);
            pending = Pending::Value;
            continue;
        }
        out.push_str(&redact_word(raw, ctx, depth));
    }
    out.push_str(&s[last..]);
    out
}

/// A word no rule hid whole: URLs' passwords hidden, quoted parts read as lines of their own
/// (`sh -c '…'`, `"host=db password=…"`, `-H 'Authorization: …'`).
fn redact_word(raw: &str, ctx: &Context, depth: usize) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while !rest.is_empty() {
        let q = rest.find(['\'', '"']).unwrap_or(rest.len());
        out.push_str(&redact_urls(&rest[..q]));
        rest = &rest[q..];
        let Some(quote) = rest.chars().next() else {
            break;
        };
        // The quoted part, to its closing quote (or the end: a quote left open still hides
        // what follows it).
        let body = &rest[1..];
        let mut end = None;
        let mut it = body.char_indices();
        while let Some((k, c)) = it.next() {
            if quote == '"' && c == '\\' {
                it.next();
            } else if c == quote {
                end = Some(k);
                break;
            }
        }
        let inner = &body[..end.unwrap_or(body.len())];
        out.push(quote);
        if depth < 8 && quote == '"' {
            // `\"` inside is a quote of the line inside (`sh -c "curl -H \"Cookie: …\""`,
            // TOML's `"…\"…\"…"`): read as one, written back escaped.
            let unescaped = inner.replace("\\\"", "\"");
            out.push_str(&redact_in(&unescaped, ctx, depth + 1).replace('"', "\\\""));
        } else if depth < 8 {
            out.push_str(&redact_in(inner, ctx, depth + 1));
        } else {
            out.push_str(&redact_urls(inner));
        }
        match end {
            Some(k) => {
                out.push(quote);
                rest = &body[k + 1..];
            }
            None => rest = "",
        }
    }
    out
}

/// `scheme://user:password@host…` with the password as `***`, wherever in `s`.
fn redact_urls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(k) = rest.find("://") {
        let (head, tail) = rest.split_at(k + 3);
        out.push_str(head);
        // The userinfo's password runs from the authority's first `:` to the last `@` of the
        // word, so an unencoded `/` or `@` in it is hidden too (`host:port/…@…` loses a little
        // more than it must).
        let word_end = tail
            .find(|c: char| c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        let word = &tail[..word_end];
        let colon = word
            .find(':')
            .filter(|&c| !word[..c].contains(['/', '?', '#', '@']));
        match (colon, word.rfind('@')) {
            (Some(c), Some(a)) if c < a => {
                out.push_str(&word[..=c]);
                out.push_str("***");
                rest = &tail[a..];
            }
            _ => rest = tail,
        }
    }
    out.push_str(rest);
    out
}
