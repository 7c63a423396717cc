//! `credential-in-plan`: a password or token written into the plan text. The plan is read by
//! reviewers, rendered into the concept, kept in the state directory with every run and
//! printed line by line in findings, so a credential in it has leaked already; each shape gets
//! the way to pass it instead.
//!
//! The scan is over the text, line by line (comments too: a password in a comment is in the
//! plan all the same), and knows these shapes:
//! - a URL with a password in its userinfo (`postgres://app:PW@db/app`);
//! - `NAME=VALUE` where NAME names a credential (`PGPASSWORD=`, `MYSQL_PWD=`, `--password=`,
//!   `password=` in a connection string, `API_TOKEN=`, `…SECRET=`), its value not taken from
//!   a variable (`$PW`, `$(cat FILE)`);
//! - `-pVALUE` after a MariaDB/MySQL client on the line (`mysql -uroot -pPW`; `-p` alone asks);
//! - `--password VALUE` outside those clients (for them it asks, and VALUE is a database);
//! - SQL: `IDENTIFIED BY '…'` and `PASSWORD '…'` (`CREATE ROLE … PASSWORD '…'`,
//!   `PASSWORD('…')`).
//!
//! A finding never holds the secret: it names the shape, and points at what comes before the
//! secret; [`mask_credentials`] hides it wherever a plan line is shown.

use super::finding;
use crate::diag::Diagnostic;
use std::ops::Range;

/// One credential found in a line (byte offsets into the line).
#[derive(Debug, PartialEq, Eq)]
struct Found {
    /// What the finding points at: the name or option before the secret.
    marker: Range<usize>,
    /// The secret; masked wherever the line is shown (to the `@` of a URL; else see
    /// [`value_end`]: erring towards masking more).
    secret: Range<usize>,
    shape: Shape,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Url,
    PgVariable,
    MysqlVariable,
    Conninfo,
    Option,
    Variable,
    MysqlShort,
    Sql,
}

impl Shape {
    fn what(self) -> &'static str {
        match self {
            Shape::Url => "a password in a URL's userinfo",
            Shape::PgVariable => "a password in PGPASSWORD=",
            Shape::MysqlVariable => "a password in MYSQL_PWD=",
            Shape::Conninfo => "a password in a connection string's password=",
            Shape::Option => "a password given to a --password option",
            Shape::Variable => "a credential assigned to a variable or option",
            Shape::MysqlShort => "a password given to a MariaDB/MySQL client with -p",
            Shape::Sql => "a password in SQL (IDENTIFIED BY or PASSWORD '…')",
        }
    }

    fn fix(self) -> &'static str {
        match self {
            Shape::Url | Shape::Conninfo => {
                "take the password out: PostgreSQL clients read it from ~/.pgpass (mode 0600) on the host that connects, or the file PGPASSFILE names; MariaDB/MySQL clients from an option file ([client] password=…, mode 0600) passed with --defaults-extra-file=FILE; verify-db from the file `password_file` names in [[databases]]"
            }
            Shape::PgVariable => {
                "drop PGPASSWORD=: put the password in ~/.pgpass (mode 0600) of the user that runs the command on that host, or in a file PGPASSFILE names; for verify-db, `password_file` in [[databases]]"
            }
            Shape::MysqlVariable | Shape::MysqlShort | Shape::Option => {
                "put the password in an option file on the host ([client] password=…, mode 0600) and pass --defaults-extra-file=FILE (MariaDB/MySQL), or let the client read it from a file or the environment it runs in; `-p` without a value asks for it"
            }
            Shape::Variable => {
                "read the value on the host instead, from a file only its user can read (NAME=\"$(cat /etc/…/secret)\", mode 0600) or from the environment the command runs in"
            }
            Shape::Sql => {
                "run the SQL from a file on the host that only its user can read (mode 0600): `mariadb --defaults-extra-file=FILE < create-user.sql`, `psql -f create-role.sql`; or set the password by hand in a manual step"
            }
        }
    }
}

/// Names whose value is a credential (compared in upper case).
fn is_credential_name(name: &str) -> Option<Shape> {
    let upper = name.trim_start_matches('-').to_ascii_uppercase();
    // A file or a path holding the secret is the right way, not a leak.
    if ["FILE", "PATH", "_FD", "-FD", "DIR"]
        .iter()
        .any(|s| upper.contains(s))
    {
        return None;
    }
    match upper.as_str() {
        "PGPASSWORD" => return Some(Shape::PgVariable),
        "MYSQL_PWD" => return Some(Shape::MysqlVariable),
        "PASSWORD" if !name.starts_with('-') => return Some(Shape::Conninfo),
        _ => {}
    }
    if name.starts_with("--") && (upper == "PASSWORD" || upper == "PASSWD") {
        return Some(Shape::Option);
    }
    [
        "PASSWORD",
        "PASSWD",
        "PASSPHRASE",
        "SECRET",
        "TOKEN",
        "_PWD",
    ]
    .iter()
    .any(|s| upper.contains(s))
    .then_some(Shape::Variable)
}

/// The MariaDB/MySQL clients, for which `-pVALUE` is a password and `--password VALUE` asks.
const MYSQL_CLIENTS: &[&str] = &[
    "mysql",
    "mariadb",
    "mysqldump",
    "mariadb-dump",
    "mysqladmin",
    "mariadb-admin",
    "mariabackup",
    "mariadb-backup",
    "xtrabackup",
    "mysqlcheck",
    "mariadb-check",
    "mysqlimport",
    "mariadb-import",
    "mysqlshow",
    "mariadb-show",
    "mysqlpump",
    "mysqlbinlog",
    "mariadb-binlog",
];

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// A value that is not written in the plan: taken from a variable or a command, or empty.
fn is_literal(value: &[u8]) -> bool {
    let v = match value {
        [b'\\', b'"', rest @ ..] | [b'"' | b'\'', rest @ ..] => rest,
        v => v,
    };
    !matches!(
        v.first(),
        None | Some(b'$' | b'`' | b' ' | b'\t' | b'"' | b'\'' | b',' | b']' | b'\\')
    )
}

/// The words of a line as byte ranges: runs between blanks, quotes, commas, brackets and
/// the shell's separators.
fn word_ranges(line: &[u8]) -> Vec<Range<usize>> {
    let sep = |b: u8| b.is_ascii_whitespace() || b"\"',[];|&()`<>\\".contains(&b);
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        if sep(line[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < line.len() && !sep(line[i]) {
            i += 1;
        }
        out.push(start..i);
    }
    out
}

fn scan_line(line: &str) -> Vec<Found> {
    let b = line.as_bytes();
    let mut found = Vec::new();
    let to_end = |start: usize| start..value_end(b, start);

    // URLs: scheme://user:password@host
    let mut from = 0;
    while let Some(k) = line[from..].find("://").map(|k| k + from) {
        from = k + 3;
        let scheme_start = (0..k)
            .rev()
            .take_while(|&i| b[i].is_ascii_alphanumeric() || b"+.-".contains(&b[i]))
            .last();
        let Some(scheme_start) = scheme_start else {
            continue;
        };
        let end = (k + 3..b.len())
            .find(|&i| b"/?#\"' \t,]>\\".contains(&b[i]))
            .unwrap_or(b.len());
        let authority = &b[k + 3..end];
        let Some(at) = authority.iter().rposition(|&c| c == b'@') else {
            continue;
        };
        let Some(colon) = authority[..at].iter().position(|&c| c == b':') else {
            continue;
        };
        let secret = k + 3 + colon + 1..k + 3 + at;
        if !secret.is_empty() && is_literal(&b[secret.clone()]) {
            found.push(Found {
                marker: scheme_start..secret.start,
                secret,
                shape: Shape::Url,
            });
        }
    }

    // NAME=VALUE
    let mut i = 0;
    while i < b.len() {
        if !is_name_byte(b[i]) || (i > 0 && is_name_byte(b[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_name_byte(b[i]) {
            i += 1;
        }
        if i < b.len()
            && b[i] == b'='
            && b.get(i + 1) != Some(&b'=')
            && let Some(shape) = is_credential_name(&line[start..i])
            && is_literal(&b[i + 1..])
        {
            found.push(Found {
                marker: start..i + 1,
                secret: to_end(i + 1),
                shape,
            });
        }
    }

    // Options: -pVALUE after a MariaDB/MySQL client, --password VALUE otherwise.
    let words = word_ranges(b);
    let mut mysql = false;
    for (n, w) in words.iter().enumerate() {
        let word = &line[w.clone()];
        let name = word.rsplit('/').next().unwrap_or(word);
        if MYSQL_CLIENTS.contains(&name) {
            mysql = true;
            continue;
        }
        if mysql && word.len() > 2 && word.starts_with("-p") && is_literal(&b[w.start + 2..]) {
            found.push(Found {
                marker: w.start..w.start + 2,
                secret: to_end(w.start + 2),
                shape: Shape::MysqlShort,
            });
        }
        if !mysql
            && (word == "--password" || word == "--passwd")
            && let Some(next) = words.get(n + 1)
            && !b[next.start..].starts_with(b"-")
            && b[w.end..next.start].iter().all(|c| b" \t\"',".contains(c))
            && is_literal(&b[next.start..])
        {
            found.push(Found {
                marker: w.clone(),
                secret: to_end(next.start),
                shape: Shape::Option,
            });
        }
    }

    // SQL: IDENTIFIED [WITH plugin] BY '…', PASSWORD '…', PASSWORD('…').
    let upper = line.to_ascii_uppercase();
    let u = upper.as_bytes();
    let word_at = |k: usize, w: &str| {
        u[k..].starts_with(w.as_bytes())
            && (k == 0 || !is_name_byte(u[k - 1]))
            && u.get(k + w.len()).is_none_or(|&c| !is_name_byte(c))
    };
    // After position `k`: blanks, an optional `(`, then a quote (a literal string follows).
    let quoted_after = |k: usize| {
        let mut j = k;
        while j < u.len() && (u[j] == b' ' || u[j] == b'\t' || u[j] == b'(') {
            j += 1;
        }
        (j < u.len() && (u[j] == b'\'' || u[j] == b'"' || u[j] == b'\\')).then_some(j)
    };
    for k in 0..u.len() {
        if word_at(k, "IDENTIFIED") {
            // The next `BY` within the clause.
            let by = (k + 10..u.len()).find(|&j| word_at(j, "BY"));
            if let Some(by) = by
                && !word_at_after_blanks(u, by + 2, "PASSWORD")
                && let Some(q) = quoted_after(by + 2)
            {
                found.push(Found {
                    marker: k..by + 2,
                    secret: to_end(q),
                    shape: Shape::Sql,
                });
            }
        } else if word_at(k, "PASSWORD")
            && (k == 0 || b[k - 1] != b'-')
            && !u[..k].trim_ascii_end().ends_with(b" BY")
            && let Some(q) = quoted_after(k + 8)
        {
            found.push(Found {
                marker: k..k + 8,
                secret: to_end(q),
                shape: Shape::Sql,
            });
        }
    }
    found.sort_by_key(|f| f.marker.start);
    found
}

/// Where a value starting at `start` ends: past its closing quote if it starts with one
/// (`'…'`, `"…"`, `\"…\"`), then at the next blank; unquoted, at the next blank or the end
/// of the TOML string it is in, whichever comes later.
fn value_end(b: &[u8], start: usize) -> usize {
    let mut i = start;
    let close: Option<&[u8]> = match &b[start..] {
        [b'\\', b'"', ..] => Some(b"\\\""),
        [b'\'', ..] => Some(b"'"),
        [b'"', ..] => Some(b"\""),
        _ => None,
    };
    if let Some(close) = close {
        i += close.len();
        match b[i..].windows(close.len()).position(|w| w == close) {
            Some(k) => i += k + close.len(),
            None => return b.len(),
        }
    }
    let blank = (i..b.len())
        .find(|&k| b[k].is_ascii_whitespace())
        .unwrap_or(b.len());
    if close.is_some() {
        return blank;
    }
    // Unquoted, inside a TOML string: a blank may be part of it (an argv item, `"-pa b"`),
    // so on to that string's end (an unescaped `"`) if it comes later.
    let string_end = (i..b.len()).find(|&k| b[k] == b'"' && (k == 0 || b[k - 1] != b'\\'));
    blank.max(string_end.unwrap_or(0))
}

/// Whether `w` is the next word after blanks from `k` (`IDENTIFIED BY PASSWORD '*hash'`
/// gives a hash, not a password).
fn word_at_after_blanks(u: &[u8], mut k: usize, w: &str) -> bool {
    while k < u.len() && (u[k] == b' ' || u[k] == b'\t') {
        k += 1;
    }
    u[k..].starts_with(w.as_bytes())
}

/// The line with every credential the scan knows replaced by `***`, and a map from an offset
/// in the line to one in the masked line.
pub(crate) fn mask_credentials(line: &str) -> (String, impl Fn(usize) -> usize) {
    let mut cuts: Vec<Range<usize>> = scan_line(line).into_iter().map(|f| f.secret).collect();
    cuts.sort_by_key(|c| c.start);
    // Merge overlapping cuts.
    let mut merged: Vec<Range<usize>> = Vec::new();
    for c in cuts {
        match merged.last_mut() {
            Some(last) if c.start <= last.end => last.end = last.end.max(c.end),
            _ => merged.push(c),
        }
    }
    let mut out = String::with_capacity(line.len());
    let mut at = 0;
    for c in &merged {
        out.push_str(&line[at..c.start]);
        out.push_str("***");
        at = c.end;
    }
    out.push_str(&line[at..]);
    let map = move |offset: usize| {
        let mut shift: isize = 0;
        for c in &merged {
            if offset >= c.end {
                shift += 3 - c.len() as isize;
            } else if offset > c.start {
                // Inside a masked secret: at the mask.
                return (c.start as isize + shift) as usize;
            }
        }
        (offset as isize + shift) as usize
    };
    (out, map)
}

pub(crate) fn credential_in_plan(text: &str, out: &mut Vec<Diagnostic>) {
    let mut offset = 0;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        for f in scan_line(line.trim_end_matches(['\n', '\r'])) {
            out.push(finding(
                "credential-in-plan",
                Some(offset + f.marker.start..offset + f.marker.end),
                format!(
                    "line {} holds {} (not repeated here): whoever reads the plan, the concept or the state directory has it",
                    n + 1,
                    f.shape.what()
                ),
                f.shape.fix(),
            ));
        }
        offset += line.len();
    }
}

#[cfg(test)]
mod tests;
