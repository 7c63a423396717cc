//! MariaDB's (and MySQL's) general query log, file output: after the header lines
//! (`…mariadbd, Version: … started with:`, `Tcp port: … Unix socket: …`,
//! `Time Id Command Argument`, repeated where the server restarted or the log was flushed),
//! one entry per command a client sent: `YYMMDD HH:MM:SS\t    ID Command\tArgument`, the time
//! left out (`\t\t`) while it is the same second; MySQL 5.7+ writes an ISO time instead. A
//! statement's later lines are the lines that do not start an entry (a statement's own lines
//! that look like an entry cannot be told apart: the format does not escape them).
//!
//! `Query` and `Execute` (a prepared statement with its values substituted) are replayed;
//! `Connect`, `Change user`, `Init DB` and `USE` set the connection's database, so each
//! statement is replayed in the database it ran in; the rest (`Prepare`, `Quit`, `Ping` …) is
//! not a statement. This module holds the pure parts; [`super::log::Reader`] reads the lines.

use super::log::Database;
use std::collections::HashMap;

/// Connections whose database is followed; past this, new ones are [`Database::Unknown`].
const MAX_CONNECTIONS: usize = 1 << 16;
/// Longer database names are not MariaDB's (64 characters): not followed.
const MAX_NAME: usize = 256;

/// What a line of the log is.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// One of the header lines the server writes when it opens the log.
    Header,
    Entry {
        id: u64,
        command: &'a [u8],
        argument: &'a [u8],
    },
    /// A later line of the entry before it (or text before any entry).
    More,
}

/// Whether `head` (the log's first line) is a general log's.
pub fn detect(first: &[u8]) -> bool {
    matches!(line(first), Line::Header | Line::Entry { .. })
}

/// What `b` (a line without its `\n`) is.
pub fn line(b: &[u8]) -> Line<'_> {
    if is_header(b) {
        return Line::Header;
    }
    entry(b).unwrap_or(Line::More)
}

fn is_header(b: &[u8]) -> bool {
    let has = |s: &[u8]| b.windows(s.len()).any(|w| w == s);
    (has(b", Version: ") && has(b"started with:"))
        || b.starts_with(b"Tcp port: ")
        || (b.starts_with(b"Time") && has(b"Id Command") && has(b"Argument"))
}

fn entry(b: &[u8]) -> Option<Line<'_>> {
    let rest = match b.strip_prefix(b"\t\t") {
        Some(r) => r,
        None => {
            // A time: `261207 15:34:24` (MariaDB, the hour space-padded) or
            // `2026-12-07T15:34:24.123456Z` (MySQL 5.7+).
            let tab = b.iter().position(|&c| c == b'\t')?;
            let time = &b[..tab];
            if !(13..=40).contains(&time.len())
                || !time[0].is_ascii_digit()
                || !time
                    .iter()
                    .all(|c| c.is_ascii_digit() || b" :.-TZ+".contains(c))
            {
                return None;
            }
            &b[tab + 1..]
        }
    };
    let digits_at = rest.iter().position(|&c| c != b' ')?;
    let after = &rest[digits_at..];
    let n = after.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 20 || after.get(n) != Some(&b' ') {
        return None;
    }
    let id: u64 = std::str::from_utf8(&after[..n]).ok()?.parse().ok()?;
    let cmd_and_arg = &after[n + 1..];
    let tab = cmd_and_arg.iter().position(|&c| c == b'\t')?;
    let command = &cmd_and_arg[..tab];
    if command.is_empty()
        || command.len() > 24
        || !command
            .iter()
            .all(|c| c.is_ascii_alphabetic() || *c == b' ' || *c == b'_')
    {
        return None;
    }
    Some(Line::Entry {
        id,
        command,
        argument: &cmd_and_arg[tab + 1..],
    })
}

/// The database a `Connect` or `Change user` argument names: `user@host on DB using TCP/IP`
/// (`on  using`: none selected); `None` when it is not in that form (a refused login).
pub fn connect_database(argument: &str) -> Option<Database> {
    let before = &argument[..argument.rfind(" using ")?];
    let at = before.rfind(" on ")?;
    let db = &before[at + 4..];
    Some(if db.is_empty() {
        Database::NoneSelected
    } else if db.len() > MAX_NAME {
        Database::Unknown
    } else {
        Database::Named(db.to_owned())
    })
}

/// Each connection's current database, as the log shows it.
#[derive(Default)]
pub struct Connections(HashMap<u64, Database>);

impl Connections {
    /// The database of connection `id` now: [`Database::Unknown`] for a connection whose
    /// start the log does not hold.
    pub fn of(&self, id: u64) -> Database {
        self.0.get(&id).cloned().unwrap_or(Database::Unknown)
    }

    pub fn set(&mut self, id: u64, db: Database) {
        if self.0.len() >= MAX_CONNECTIONS && !self.0.contains_key(&id) {
            return;
        }
        let db = match db {
            Database::Named(n) if n.len() > MAX_NAME => Database::Unknown,
            d => d,
        };
        self.0.insert(id, db);
    }

    /// Forgets every connection (the server restarted).
    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn quit(&mut self, id: u64) {
        self.0.remove(&id);
    }
}
