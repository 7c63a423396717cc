//! PostgreSQL's lexical structure, enough to handle a logged statement safely: where a
//! statement ends (a `;` outside strings, quoted names and comments), what its words are (to
//! tell a read from a write), and where its `$N` parameters are (to put the logged values in).
//!
//! Strings follow `standard_conforming_strings = on` (the default since 9.1): a backslash is an
//! ordinary character in `'…'` and an escape only in `E'…'`. Dollar quotes (`$tag$…$tag$`),
//! quoted names (`"…"`) and nested block comments are understood. Nothing here panics on any
//! input; an unterminated string or comment is an error naming where it starts.

/// What a token is; its text is `&src[start..end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    /// A keyword or an unquoted name.
    Word,
    /// `"a name"`.
    QuotedName,
    /// `'…'`, `E'…'`, `B'…'`, `X'…'`, `U&'…'`, `$$…$$`.
    Str,
    Number,
    /// `$1`: a parameter of a prepared statement.
    Param,
    Semicolon,
    Open,
    Close,
    /// An operator or other punctuation, one character.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

/// Whose lexical rules and statement classes apply: the log's server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    #[default]
    Postgres,
    /// MariaDB and MySQL ([`super::mariadb`]).
    Mariadb,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "PostgreSQL",
            Dialect::Mariadb => "MariaDB",
        }
    }
}

/// The tokens of `src` in `dialect` (MariaDB: its default `sql_mode`, backslash escapes on,
/// `"` a string).
pub fn tokens_in(src: &str, dialect: Dialect) -> Result<Vec<Token>, String> {
    match dialect {
        Dialect::Postgres => tokens(src),
        Dialect::Mariadb => super::mariadb::tokens(src),
    }
}

/// The tokens of `src` (PostgreSQL), comments and white space left out.
pub fn tokens(src: &str) -> Result<Vec<Token>, String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                i += 1;
                continue;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0usize;
                loop {
                    if i + 1 >= b.len() {
                        return Err(format!("a comment starting at byte {start} is not closed"));
                    }
                    if b[i] == b'/' && b[i + 1] == b'*' {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b[i + 1] == b'/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            b'\'' => {
                i = string_end(b, i, b'\'', false)
                    .ok_or_else(|| format!("a string starting at byte {start} is not closed"))?;
                Tok::Str
            }
            b'"' => {
                i = string_end(b, i, b'"', false).ok_or_else(|| {
                    format!("a quoted name starting at byte {start} is not closed")
                })?;
                Tok::QuotedName
            }
            b'E' | b'e' if b.get(i + 1) == Some(&b'\'') => {
                i = string_end(b, i + 1, b'\'', true)
                    .ok_or_else(|| format!("a string starting at byte {start} is not closed"))?;
                Tok::Str
            }
            b'B' | b'b' | b'X' | b'x' | b'N' | b'n' if b.get(i + 1) == Some(&b'\'') => {
                i = string_end(b, i + 1, b'\'', false)
                    .ok_or_else(|| format!("a string starting at byte {start} is not closed"))?;
                Tok::Str
            }
            b'U' | b'u' if b.get(i + 1) == Some(&b'&') && b.get(i + 2) == Some(&b'\'') => {
                i = string_end(b, i + 2, b'\'', false)
                    .ok_or_else(|| format!("a string starting at byte {start} is not closed"))?;
                Tok::Str
            }
            b'U' | b'u' if b.get(i + 1) == Some(&b'&') && b.get(i + 2) == Some(&b'"') => {
                i = string_end(b, i + 2, b'"', false).ok_or_else(|| {
                    format!("a quoted name starting at byte {start} is not closed")
                })?;
                Tok::QuotedName
            }
            b'$' => {
                if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                    Tok::Param
                } else if let Some(tag_end) = dollar_tag(b, i) {
                    let tag = &b[i..tag_end];
                    let body = tag_end;
                    let close = find(&b[body..], tag).ok_or_else(|| {
                        format!("a dollar-quoted string starting at byte {start} is not closed")
                    })?;
                    i = body + close + tag.len();
                    Tok::Str
                } else {
                    i += 1;
                    Tok::Other
                }
            }
            b';' => {
                i += 1;
                Tok::Semicolon
            }
            b'(' | b'[' => {
                i += 1;
                Tok::Open
            }
            b')' | b']' => {
                i += 1;
                Tok::Close
            }
            b'0'..=b'9' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    i += 1;
                }
                Tok::Number
            }
            c if word_start(c) => {
                while i < b.len() && word_char(b[i]) {
                    i += 1;
                }
                Tok::Word
            }
            _ => {
                // One character (a whole UTF-8 sequence, so slices stay on boundaries).
                i += src[i..].chars().next().map_or(1, char::len_utf8);
                Tok::Other
            }
        };
        out.push(Token {
            kind,
            start,
            end: i,
        });
    }
    Ok(out)
}

pub(super) fn word_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

pub(super) fn word_char(c: u8) -> bool {
    word_start(c) || c.is_ascii_digit() || c == b'$'
}

/// The end (exclusive) of the quoted text opened at `open` by `q`; a doubled `q` is one
/// character; `backslash`: `\` escapes the next byte (`E'…'`).
pub(super) fn string_end(b: &[u8], open: usize, q: u8, backslash: bool) -> Option<usize> {
    let mut i = open + 1;
    while i < b.len() {
        if backslash && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// `$tag$` starting at `i`: the end of the opening tag.
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if b.get(j).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    while j < b.len() && b[j] != b'$' {
        if !(word_start(b[j]) || b[j].is_ascii_digit()) {
            return None;
        }
        j += 1;
    }
    (j < b.len()).then_some(j + 1)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The statements of `src` (split at `;` outside strings, names and comments), each trimmed,
/// empty ones left out.
pub fn split(src: &str, dialect: Dialect) -> Result<Vec<&str>, String> {
    let toks = tokens_in(src, dialect)?;
    let mut out = Vec::new();
    let mut from = 0;
    for t in toks.iter().filter(|t| t.kind == Tok::Semicolon) {
        push_trimmed(&mut out, &src[from..t.start], &toks, from, t.start);
        from = t.end;
    }
    push_trimmed(&mut out, &src[from..], &toks, from, src.len());
    Ok(out)
}

fn push_trimmed<'a>(out: &mut Vec<&'a str>, s: &'a str, toks: &[Token], from: usize, to: usize) {
    // A piece with only comments in it is no statement.
    if toks.iter().any(|t| t.start >= from && t.end <= to) {
        out.push(s.trim());
    }
}

/// What a statement is, for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// Reads only: SELECT, WITH … SELECT, VALUES, SHOW, TABLE, with none of the words that
    /// make one of them write or lock, and no function that acts outside the transaction.
    Read,
    /// Transaction control and session settings (BEGIN, COMMIT, SET …): not replayed.
    Session,
    /// Anything else; the reason names the word.
    Write(String),
    /// Never replayed, not even with writes allowed: what a rolled-back transaction cannot
    /// undo or confine (MariaDB: statements that commit implicitly, files written on the
    /// server, a statement that reads differently under another `sql_mode`).
    Never(String),
}

/// The first words that start a statement that only reads.
const READ_FIRST: &[&str] = &["select", "with", "values", "show", "table"];

/// Transaction control and session state: they change no data and answer nothing to compare.
const SESSION_FIRST: &[&str] = &[
    "begin",
    "start",
    "commit",
    "end",
    "rollback",
    "abort",
    "savepoint",
    "release",
    "set",
    "reset",
    "discard",
    "deallocate",
];

/// Words that make a SELECT or WITH write (`INSERT`, `UPDATE`, `DELETE`, `MERGE` in a
/// data-modifying WITH, `SELECT … INTO` a new table).
const WRITE_WORDS: &[&str] = &["insert", "update", "delete", "merge", "into"];

/// Functions that act outside the transaction, so a read-only transaction rolled back does
/// not undo them (ending sessions, locks held past it, files, other servers): matched as a
/// prefix of a name called (`NAME(`).
const OUTSIDE_FUNCTIONS: &[&str] = &[
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_promote",
    "pg_advisory",
    "pg_try_advisory",
    "pg_notify",
    "pg_stat_reset",
    "pg_replication_origin",
    "pg_create_physical_replication_slot",
    "pg_create_logical_replication_slot",
    "pg_drop_replication_slot",
    "pg_logical_emit_message",
    "pg_log_backend_memory_contexts",
    "pg_wal_replay",
    "pg_backup_",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_file_",
    "pg_import_system_collations",
    "lo_",
    "dblink",
];

/// The class of one statement (as [`split`] gives it) in `dialect`.
pub fn classify(stmt: &str, dialect: Dialect) -> Result<Class, String> {
    match dialect {
        Dialect::Postgres => classify_pg(stmt),
        Dialect::Mariadb => super::mariadb::classify(stmt),
    }
}

/// "a SELECT statement", "an UPDATE statement".
pub(super) fn a_statement(first: &str) -> String {
    let article = if first.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {} statement", first.to_uppercase())
}

fn classify_pg(stmt: &str) -> Result<Class, String> {
    // psql runs a command string that starts with a backslash as its own meta-command (`\!`
    // is a shell on the host running psql), never as SQL.
    if stmt.trim_start().starts_with('\\') {
        return Ok(Class::Never(
            "a psql meta-command (`\\…`): psql would run it itself (`\\!` is a shell), not the server".into(),
        ));
    }
    let toks = tokens(stmt)?;
    let word = |t: &Token| stmt[t.start..t.end].to_ascii_lowercase();
    let Some(first) = toks.iter().find(|t| t.kind != Tok::Open) else {
        return Ok(Class::Write("an empty statement".into()));
    };
    if first.kind != Tok::Word {
        return Ok(Class::Write(format!(
            "it starts with `{}`",
            &stmt[first.start..first.end]
        )));
    }
    let first = word(first);
    if SESSION_FIRST.contains(&first.as_str()) {
        return Ok(Class::Session);
    }
    // What a rolled-back transaction cannot undo, refused even with writes allowed: a program
    // or a file on the server (COPY … PROGRAM, COPY … TO 'file'), a block of any code (DO,
    // whose EXECUTE can do all of it), a function acting outside the transaction, anywhere.
    if first == "do" {
        return Ok(Class::Never(
            "a DO block runs any code (EXECUTE of COPY … PROGRAM, dblink …), beyond what a rollback undoes".into(),
        ));
    }
    if first == "copy" {
        let words: Vec<String> = toks
            .iter()
            .filter(|t| t.kind == Tok::Word)
            .map(word)
            .collect();
        if words.iter().any(|w| w == "program") {
            return Ok(Class::Never(
                "COPY … PROGRAM runs a command on the server".into(),
            ));
        }
        if let Some(n) = toks
            .iter()
            .position(|t| t.kind == Tok::Word && word(t) == "to")
            && toks.get(n + 1).is_some_and(|t| t.kind == Tok::Str)
        {
            return Ok(Class::Never(
                "COPY … TO a file writes it on the server, beyond what a rollback undoes".into(),
            ));
        }
    }
    for (n, t) in toks.iter().enumerate() {
        if t.kind == Tok::Word && toks.get(n + 1).is_some_and(|t| t.kind == Tok::Open) {
            let w = word(t);
            let name = w.rsplit('.').next().unwrap_or(&w);
            if let Some(f) = OUTSIDE_FUNCTIONS.iter().find(|f| name.starts_with(*f)) {
                return Ok(Class::Never(format!(
                    "it calls {name}(), which acts outside the transaction ({f}…)"
                )));
            }
        }
    }
    if !READ_FIRST.contains(&first.as_str()) {
        return Ok(Class::Write(a_statement(&first)));
    }
    for (n, t) in toks.iter().enumerate() {
        if t.kind != Tok::Word {
            continue;
        }
        let w = word(t);
        if WRITE_WORDS.contains(&w.as_str()) {
            return Ok(Class::Write(format!(
                "{} in a {}",
                w.to_uppercase(),
                first.to_uppercase()
            )));
        }
        let next = toks.get(n + 1);
        if w == "for"
            && let Some(nt) = next.filter(|t| t.kind == Tok::Word)
            && ["update", "share", "no", "key"].contains(&word(nt).as_str())
        {
            return Ok(Class::Write("a locking clause (FOR UPDATE/SHARE)".into()));
        }
    }
    Ok(Class::Read)
}

/// `stmt` with each `$N` replaced by the logged value `params[N-1]` as a literal (`None`:
/// NULL). An `$N` without a value is an error.
pub fn bind(stmt: &str, params: &[Option<String>]) -> Result<String, String> {
    let toks = tokens(stmt)?;
    let mut out = String::with_capacity(stmt.len());
    let mut from = 0;
    for t in toks.iter().filter(|t| t.kind == Tok::Param) {
        let n: usize = stmt[t.start + 1..t.end].parse().unwrap_or(0);
        let value = n
            .checked_sub(1)
            .and_then(|i| params.get(i))
            .ok_or_else(|| format!("${n} has no value in the log"))?;
        out.push_str(&stmt[from..t.start]);
        match value {
            Some(v) => {
                out.push('\'');
                out.push_str(&v.replace('\'', "''"));
                out.push('\'');
            }
            None => out.push_str("NULL"),
        }
        from = t.end;
    }
    out.push_str(&stmt[from..]);
    Ok(out)
}

/// The values of a `parameters: $1 = '…', $2 = NULL` detail, by number.
pub fn parameters(detail: &str) -> Result<Vec<Option<String>>, String> {
    let bad = || {
        format!(
            "the parameters `{}` are not in PostgreSQL's form",
            crate::clip(detail, 60)
        )
    };
    let mut rest = detail
        .trim()
        .strip_prefix("parameters:")
        .ok_or_else(bad)?
        .trim_start();
    let mut out: Vec<Option<String>> = Vec::new();
    while !rest.is_empty() {
        let r = rest.strip_prefix('$').ok_or_else(bad)?;
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        let n: usize = r[..digits].parse().map_err(|_| bad())?;
        let r = r[digits..].strip_prefix(" = ").ok_or_else(bad)?;
        let (value, r) = if let Some(r) = r.strip_prefix("NULL") {
            (None, r)
        } else {
            let body = r.strip_prefix('\'').ok_or_else(bad)?;
            let end = string_end(r.as_bytes(), 0, b'\'', false).ok_or_else(bad)?;
            let v = body[..end - 2].replace("''", "'");
            (Some(v), &r[end..])
        };
        if n != out.len() + 1 {
            return Err(bad());
        }
        out.push(value);
        rest = match r.strip_prefix(", ") {
            Some(r) => r,
            None if r.trim().is_empty() => "",
            None => return Err(bad()),
        };
    }
    Ok(out)
}

/// `stmt` as it may be shown: on one line, comments kept, string literals that follow a word
/// naming a credential (`password`, `token`, `secret`, `crypt(`…) replaced by
/// `'(not shown)'` (in comments they are not told apart).
pub fn shown(stmt: &str, dialect: Dialect) -> String {
    let Ok(toks) = tokens_in(stmt, dialect) else {
        // Up to the first quote: what follows it is not known to be a string's end.
        let head = stmt.split(['\'', '"', '$', '`']).next().unwrap_or_default();
        return format!(
            "{} …",
            head.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    };
    let mut out = String::new();
    let mut last_secret_word: Option<usize> = None;
    // What is between tokens: white space, one space; comments kept (a refused statement is
    // shown with what it hides in them), their white space made one space.
    let gap = |out: &mut String, g: &str| {
        let words: Vec<&str> = g.split_whitespace().collect();
        if !g.is_empty() && !out.is_empty() {
            out.push(' ');
        }
        if !words.is_empty() {
            out.push_str(&words.join(" "));
            out.push(' ');
        }
    };
    let mut from = 0;
    for (n, t) in toks.iter().enumerate() {
        let text = &stmt[t.start..t.end];
        if t.kind == Tok::Word && crate::secret_name(text) || text.eq_ignore_ascii_case("crypt") {
            last_secret_word = Some(n);
        }
        gap(&mut out, &stmt[from..t.start]);
        if out.ends_with("  ") {
            out.pop();
        }
        from = t.end;
        if t.kind == Tok::Str && last_secret_word.is_some_and(|w| n - w <= 4) {
            out.push_str("'(not shown)'");
        } else {
            out.push_str(&text.replace(['\n', '\r', '\t'], " "));
        }
    }
    gap(&mut out, &stmt[from..]);
    out.trim_end().to_owned()
}
