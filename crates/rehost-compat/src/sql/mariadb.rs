//! MariaDB's (and MySQL's) lexical rules and statement classes, where they differ from
//! PostgreSQL's: `` `names` ``, `#` and `-- ` comments (`--` then a space or control character;
//! `--1` is two minuses), `"` strings (unless `ANSI_QUOTES`), backslash escapes in strings
//! (unless `NO_BACKSLASH_ESCAPES`), no nested comments, and executable comments
//! `/*! … */`, `/*!50700 … */`, `/*M! … */`, whose content is read as code (MariaDB runs
//! it), so a `DROP` hidden in one is seen; a `;` inside one is refused.
//!
//! Which `sql_mode` the logged session had is not in the log. A statement is replayed only
//! when it is one statement under all eight readings ([`Reading`]: backslash escapes on and
//! off, `ANSI_QUOTES` on and off, executable comments as code or as comments): the server runs
//! a client's text as several statements where it reads a `;` outside a string, so a
//! statement that another reading splits is never sent.
//!
//! Classes: reads are `SELECT`, `WITH … SELECT`, `VALUES`, `TABLE`, `SHOW`, `DESCRIBE`/`DESC`,
//! `EXPLAIN` (of a read); minus `INTO` (`OUTFILE`/`DUMPFILE` write a file on the server: never;
//! `@var`, a table: writes), `FOR UPDATE`, `LOCK IN SHARE MODE`, and functions that act outside
//! the transaction. Writes that a rollback undoes are the DML statements (`INSERT`, `UPDATE`,
//! `DELETE`, `REPLACE`); every other statement (DDL, `LOCK TABLES`, `CALL`, `LOAD DATA`,
//! `FLUSH`, `GRANT` …) commits implicitly or acts outside the transaction in MariaDB and is
//! never replayed, not even with writes allowed.

use super::lex::{Class, Tok, Token, a_statement, string_end, word_char};

/// The tokens of `src` as MariaDB reads them by default.
pub fn tokens(src: &str) -> Result<Vec<Token>, String> {
    tokens_read(src, Reading::default())
}

/// How a server may read a statement: the log does not say which `sql_mode` the session had,
/// nor whether a versioned `/*!NNNNN … */` was new enough to run (`/*M! … */` is a plain
/// comment to MySQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// `\` escapes in strings (not `NO_BACKSLASH_ESCAPES`).
    pub backslash: bool,
    /// `"` quotes a name (`ANSI_QUOTES`).
    pub ansi_quotes: bool,
    /// `/*! … */` is code, not a comment.
    pub executable: bool,
}

impl Default for Reading {
    fn default() -> Self {
        Reading {
            backslash: true,
            ansi_quotes: false,
            executable: true,
        }
    }
}

/// The tokens of `src` in `reading`.
pub fn tokens_read(src: &str, reading: Reading) -> Result<Vec<Token>, String> {
    let Reading {
        backslash,
        ansi_quotes: ansi,
        executable: exec_code,
    } = reading;
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    // Inside `/*! … */`: its content is code, its `*/` ends it.
    let mut executable: Option<usize> = None;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let not_closed = |what: &str| format!("{what} starting at byte {start} is not closed");
        let kind = match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                i += 1;
                continue;
            }
            b'*' if executable.is_some() && b.get(i + 1) == Some(&b'/') => {
                executable = None;
                i += 2;
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'-' if b.get(i + 1) == Some(&b'-')
                && b.get(i + 2).is_none_or(|&n| n <= b' ' || n == 0x7f) =>
            {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let rest = &b[i + 2..];
                let exec = if !exec_code {
                    None
                } else if rest.first() == Some(&b'!') {
                    Some(1)
                } else if rest.starts_with(b"M!") {
                    Some(2)
                } else {
                    None
                };
                if let Some(n) = exec {
                    if executable.is_some() {
                        return Err(format!(
                            "an executable comment opens inside another at byte {start}"
                        ));
                    }
                    executable = Some(start);
                    i += 2 + n;
                    // The version it needs: digits, read as part of the opening.
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                    continue;
                }
                // Not nested: the first `*/` ends it.
                match rest.windows(2).position(|w| w == b"*/") {
                    Some(p) => i += 2 + p + 2,
                    None => return Err(not_closed("a comment")),
                }
                continue;
            }
            b'\'' => {
                i = string_end(b, i, b'\'', backslash).ok_or_else(|| not_closed("a string"))?;
                Tok::Str
            }
            b'"' if ansi => {
                i = string_end(b, i, b'"', false).ok_or_else(|| not_closed("a quoted name"))?;
                Tok::QuotedName
            }
            b'"' => {
                i = string_end(b, i, b'"', backslash).ok_or_else(|| not_closed("a string"))?;
                Tok::Str
            }
            b'`' => {
                i = string_end(b, i, b'`', false).ok_or_else(|| not_closed("a quoted name"))?;
                Tok::QuotedName
            }
            b'X' | b'x' | b'B' | b'b' | b'N' | b'n' if b.get(i + 1) == Some(&b'\'') => {
                i = string_end(b, i + 1, b'\'', backslash && matches!(c, b'N' | b'n'))
                    .ok_or_else(|| not_closed("a string"))?;
                Tok::Str
            }
            b';' if executable.is_some() => {
                return Err(format!(
                    "a `;` inside an executable comment /*! … */ at byte {start}: not replayed"
                ));
            }
            b';' => {
                i += 1;
                Tok::Semicolon
            }
            b'(' => {
                i += 1;
                Tok::Open
            }
            b')' => {
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
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80 => {
                while i < b.len() && word_char(b[i]) {
                    i += 1;
                }
                Tok::Word
            }
            _ => {
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
    if let Some(at) = executable {
        return Err(format!(
            "an executable comment starting at byte {at} is not closed"
        ));
    }
    Ok(out)
}

/// Reads only.
const READ_FIRST: &[&str] = &[
    "select", "with", "values", "table", "show", "describe", "desc", "explain",
];

/// Transaction control and session state (not replayed): `USE` is followed by the log
/// reader and replayed as the statement's database.
const SESSION_FIRST: &[&str] = &[
    "begin",
    "start",
    "commit",
    "rollback",
    "savepoint",
    "release",
    "set",
    "use",
    "unlock",
    "prepare",
    "execute",
    "deallocate",
];

/// Writes a rolled-back transaction undoes (in transactional engines: InnoDB).
const DML_FIRST: &[&str] = &["insert", "update", "delete", "replace"];

/// Words that make a read write.
const WRITE_WORDS: &[&str] = &["insert", "update", "delete", "replace", "into"];

/// Functions that act outside the transaction (named locks, time, files, replication
/// waits, sequences, user-defined functions that run programs), matched as a name called.
const OUTSIDE_FUNCTIONS: &[&str] = &[
    "get_lock",
    "release_lock",
    "release_all_locks",
    "sleep",
    "benchmark",
    "master_pos_wait",
    "master_gtid_wait",
    "source_pos_wait",
    "nextval",
    "setval",
    "lastval",
];

/// Functions that run a program or read a file on the server (lib_mysqludf_sys's, LOAD_FILE):
/// never replayed, not even with writes allowed.
const SERVER_SIDE_FUNCTIONS: &[&str] = &["sys_exec", "sys_eval", "sys_bineval", "load_file"];

/// The class of one statement.
pub fn classify(stmt: &str) -> Result<Class, String> {
    let toks = tokens(stmt)?;
    // One statement however the session's sql_mode reads quotes and backslashes, and whether
    // or not an executable comment runs.
    if stmt.contains(';') {
        for n in 0..8u8 {
            let reading = Reading {
                backslash: n & 1 == 0,
                ansi_quotes: n & 2 != 0,
                executable: n & 4 == 0,
            };
            match tokens_read(stmt, reading) {
                Ok(t) if t.iter().all(|t| t.kind != Tok::Semicolon) => {}
                _ => {
                    return Ok(Class::Never(
                        "it reads as more than one statement under another sql_mode \
                         (NO_BACKSLASH_ESCAPES, ANSI_QUOTES) or server version"
                            .into(),
                    ));
                }
            }
        }
    }
    let word = |t: &Token| stmt[t.start..t.end].to_ascii_lowercase();
    let Some(first_tok) = toks.iter().find(|t| t.kind != Tok::Open) else {
        return Ok(Class::Write("an empty statement".into()));
    };
    if first_tok.kind != Tok::Word {
        return Ok(Class::Never(format!(
            "it starts with `{}`",
            &stmt[first_tok.start..first_tok.end]
        )));
    }
    let first = word(first_tok);
    if SESSION_FIRST.contains(&first.as_str()) {
        return Ok(Class::Session);
    }
    let dml = DML_FIRST.contains(&first.as_str());
    if !dml && !READ_FIRST.contains(&first.as_str()) {
        return Ok(Class::Never(format!(
            "{}: only reads and DML are replayed on MariaDB (other statements commit implicitly or act outside the transaction)",
            a_statement(&first)
        )));
    }
    let mut write: Option<String> = dml.then(|| a_statement(&first));
    for (n, t) in toks.iter().enumerate() {
        if t.kind != Tok::Word {
            continue;
        }
        let w = word(t);
        let next = toks.get(n + 1);
        let next_word = next.filter(|t| t.kind == Tok::Word).map(word);
        let called = next.is_some_and(|t| t.kind == Tok::Open);
        if called && SERVER_SIDE_FUNCTIONS.contains(&w.as_str()) {
            return Ok(Class::Never(format!(
                "it calls {w}(), which runs a program or reads a file on the server"
            )));
        }
        if w == "into" && matches!(next_word.as_deref(), Some("outfile" | "dumpfile")) {
            return Ok(Class::Never(
                "INTO OUTFILE/DUMPFILE writes a file on the server".into(),
            ));
        }
        if write.is_some() {
            continue;
        }
        // `INSERT(…)` and `REPLACE(…)` are string functions.
        if WRITE_WORDS.contains(&w.as_str()) && !called {
            write = Some(format!(
                "{} in a {}",
                w.to_uppercase(),
                first.to_uppercase()
            ));
        } else if w == "for" && matches!(next_word.as_deref(), Some("update" | "share")) {
            write = Some("a locking clause (FOR UPDATE)".into());
        } else if w == "lock"
            && next_word.as_deref() == Some("in")
            && toks
                .get(n + 2)
                .is_some_and(|t| word(t) == "share" || word(t) == "exclusive")
        {
            write = Some("a locking clause (LOCK IN SHARE MODE)".into());
        } else if called && OUTSIDE_FUNCTIONS.contains(&w.as_str()) {
            write = Some(format!(
                "it calls {w}(), which acts outside the transaction"
            ));
        }
    }
    Ok(match write {
        Some(why) => Class::Write(why),
        None => Class::Read,
    })
}

/// The database a `USE db` statement selects (`None`: not a `USE`).
pub fn use_target(stmt: &str) -> Option<String> {
    let toks = tokens(stmt).ok()?;
    let (first, name) = match toks.as_slice() {
        [a, b]
        | [
            a,
            b,
            Token {
                kind: Tok::Semicolon,
                ..
            },
        ] => (a, b),
        _ => return None,
    };
    if first.kind != Tok::Word || !stmt[first.start..first.end].eq_ignore_ascii_case("use") {
        return None;
    }
    let text = &stmt[name.start..name.end];
    match name.kind {
        Tok::Word => Some(text.to_owned()),
        Tok::QuotedName if text.len() >= 2 => {
            let q = &text[..1];
            Some(text[1..text.len() - 1].replace(&format!("{q}{q}"), q))
        }
        _ => None,
    }
}
