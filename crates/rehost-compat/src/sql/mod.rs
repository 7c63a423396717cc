//! The queries the old clients sent, against the old and the new database server: the
//! read-only statements of a PostgreSQL log or a MariaDB general log ([`log`],
//! [`general_log`]; each server's lexical rules and statement classes in [`lex`] and
//! [`mariadb`]), each replayed alone (in the database it ran in, where the log says) in a transaction
//! that is rolled back (read-only unless writes are allowed) on the old server, the new one,
//! and the old one again; the answers compared column by column and row by row. A column in
//! which the old server's two answers differ (a `now()`, a `random()`) is noise and not
//! reported as a difference; an error only the new server raises is a finding of its own.
//!
//! The sessions are a trait ([`SqlSide`]), so this module is pure over data: rehost-engine
//! implements it with rehost-db's psql and mariadb sessions.

pub mod general_log;
pub mod lex;
pub mod log;
pub mod mariadb;

#[cfg(test)]
mod mariadb_tests;
#[cfg(test)]
mod tests;

use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A statement's answer: its column names and rows (`None`: NULL).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// Why a statement has no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// The server refused or failed the statement (an SQL error): compared like an answer.
    Server(String),
    /// The statement could not be asked (no connection, the client missing, an answer over the
    /// cap): not compared.
    Trouble(String),
}

/// A database server to replay against.
pub trait SqlSide: Sync {
    /// What it is, for messages (never with a password).
    fn describe(&self) -> String;
    /// Whose statements it runs.
    fn dialect(&self) -> lex::Dialect;
    /// Runs `statement` alone in a transaction that is rolled back: read-only unless `write`;
    /// in `database` where the log names one (else the side's own).
    fn query(
        &self,
        statement: &str,
        write: bool,
        database: &log::Database,
    ) -> Result<Answer, QueryError>;
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Statements replayed at once.
    pub concurrency: usize,
    /// Ask the old server a second time (noise).
    pub again: bool,
    /// Replay statements that are not read-only too, each in a transaction that is rolled
    /// back, once per side.
    pub allow_writes: bool,
    /// Statements listed per class (findings, noise, refused, unreadable); the rest counted.
    pub examples: usize,
    /// The most distinct statements replayed; the rest are counted as not replayed.
    pub max_statements: usize,
    /// Whose rules split and classify the log's statements (the log's server).
    pub dialect: lex::Dialect,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: 4,
            again: true,
            allow_writes: false,
            examples: 20,
            max_statements: 10_000,
            dialect: lex::Dialect::Postgres,
        }
    }
}

/// The most bytes of distinct statement text kept for replay.
const MAX_TEXT_BYTES: usize = 64 << 20;
/// Shown values and statements are cut to this many characters.
const SHOWN: usize = 120;
const SHOWN_STATEMENT: usize = 200;

/// A statement named in the summary: where it is in the log and how it reads.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Listed {
    /// The log line of its first occurrence.
    pub line: u64,
    /// How often the log holds it.
    pub occurrences: u64,
    /// Its text, on one line, cut, credential literals masked.
    pub statement: String,
    /// Why it is listed: the reason it was refused or not read, the noise's column.
    pub why: String,
    /// The database it ran in, where the log names one (MariaDB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

/// A statement answered differently.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    pub line: u64,
    pub occurrences: u64,
    pub statement: String,
    /// `error on new only`, `error on old only`, `columns`, `rows`, `row order`, `value`,
    /// `error message`.
    pub class: String,
    /// The first differing row (1-based), where a row differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    /// The first differing column's name, where a value differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub old: String,
    pub new: String,
    /// Columns left out as noise in this statement.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub noise_columns: Vec<String>,
    /// The database it ran in, where the log names one (MariaDB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

/// What `replay` found.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    pub log: String,
    pub format: String,
    pub old: String,
    pub new: String,
    /// Statements the log holds (each occurrence).
    pub statements: u64,
    /// Distinct statement texts among them that were replayable.
    pub distinct: u64,
    /// Distinct statements answered by both sides and compared.
    pub compared: u64,
    /// Compared and answered the same (noise columns aside).
    pub same: u64,
    pub differing: u64,
    /// Of the differing: errors only the new server raised.
    pub new_errors: u64,
    /// Statements whose whole answer differs between the two runs on the old server (row count,
    /// an error once), so nothing was compared; and statements with noise columns.
    pub noise: u64,
    /// Of the noise: statements not compared at all (their whole answer varies).
    pub noise_whole: u64,
    /// Statements that failed with the same error on both sides.
    pub failed_both: u64,
    /// Transaction control and session settings (BEGIN, SET …): not replayed.
    pub session: u64,
    /// Statements that are not read-only: not replayed (without `allow_writes`), and those
    /// never replayed.
    pub refused: u64,
    /// Of the refused: never replayed, not even with `allow_writes` ([`lex::Class::Never`]).
    pub never: u64,
    /// Statements replayed in the side's own database because the log does not show the
    /// database of their connection (it began before the log did).
    pub database_unknown: u64,
    /// Statements that are not read-only, replayed rolled back (with `allow_writes`).
    pub writes: u64,
    /// Log entries that could not be read as a statement (over the cap, not UTF-8, not
    /// lexable, parameters missing).
    pub unreadable: u64,
    /// Distinct statements past `max_statements` or the text cap: not replayed.
    pub over_cap: u64,
    /// Statements a side could not be asked (trouble).
    pub failed: u64,
    pub noise_measured: bool,
    pub findings: Vec<Finding>,
    pub noisy: Vec<Listed>,
    pub both_failed: Vec<Listed>,
    pub refused_list: Vec<Listed>,
    pub unreadable_list: Vec<Listed>,
    pub failures: Vec<Listed>,
    pub not_compared: String,
    pub interrupted: bool,
}

impl Summary {
    pub fn differs(&self) -> bool {
        self.differing > 0
    }
    /// Some statement could not be replayed or read, or nothing was compared at all (the log
    /// held no statement — the wrong file, a server that did not log them — or only ones that
    /// were refused, not replayed or noise): nothing to call "same".
    pub fn trouble(&self) -> bool {
        self.failed > 0 || self.unreadable > 0 || self.compared == 0
    }
}

/// What was not compared, for every replay.
pub const NOT_COMPARED: &str = "statements that are not read-only (refused unless writes are allowed), \
transaction control and session settings (BEGIN, SET …: not replayed, so a client's own SET DateStyle or \
search_path is not applied), each statement runs alone in a new session (not in the client's transaction, \
with the server's defaults for the login of the URL), extended-protocol parameters bound as untyped literals, \
the types of columns (values are compared as the server prints them), timing, columns in which the old server \
differs from itself (noise)";

/// What was not compared, for a MariaDB general log.
pub const NOT_COMPARED_MARIADB: &str = "statements that are not read-only (refused unless writes are allowed; statements that commit implicitly, write files or read differently under another sql_mode are never run), transaction control and session settings (SET …: not replayed, so a client's own SET sql_mode or SET NAMES is not applied; USE and the connection's database are followed), each statement runs alone in a new session (not in the client's transaction, with the server's defaults for the login of the URL), prepared statements as the log prints them with their values substituted, the column names of an answer without rows, the types of columns (values are compared as the client prints them), timing, columns in which the old server differs from itself (noise); with writes allowed, tables of engines without transactions (MyISAM, Aria) keep what a replayed write did";

/// One distinct statement to replay.
struct Work {
    line: u64,
    occurrences: u64,
    text: String,
    write: bool,
    database: log::Database,
}

/// The database to name beside a statement.
fn named(d: &log::Database) -> Option<String> {
    match d {
        log::Database::Named(n) => Some(n.clone()),
        _ => None,
    }
}

/// What one statement's replay came to.
enum Outcome {
    Same { noise: Vec<String> },
    Noise(String),
    Differs(Finding),
    BothFailed(String),
    Trouble(String),
    Interrupted,
}

/// Replays the statements `log` yields against `old` and `new`.
pub fn replay(
    log: impl Iterator<Item = log::Logged>,
    old: &dyn SqlSide,
    new: &dyn SqlSide,
    opts: &Options,
    cancel: &AtomicBool,
) -> Summary {
    let mut s = Summary {
        old: old.describe(),
        new: new.describe(),
        noise_measured: opts.again,
        not_compared: match opts.dialect {
            lex::Dialect::Postgres => NOT_COMPARED,
            lex::Dialect::Mariadb => NOT_COMPARED_MARIADB,
        }
        .to_owned(),
        ..Default::default()
    };
    let mut work: Vec<Work> = Vec::new();
    let mut index: HashMap<blake3::Hash, usize> = HashMap::new();
    let mut refused: HashMap<blake3::Hash, usize> = HashMap::new();
    let mut kept = 0usize;
    let list = |v: &mut Vec<Listed>, l: Listed| {
        if v.len() < opts.examples {
            v.push(l)
        }
    };
    let dialect = opts.dialect;
    for entry in log {
        let database = named(&entry.database);
        if cancel.load(Ordering::Relaxed) {
            s.interrupted = true;
            break;
        }
        let text = match entry.text {
            Ok(t) => t,
            Err(why) => {
                s.unreadable += 1;
                list(
                    &mut s.unreadable_list,
                    Listed {
                        line: entry.line,
                        occurrences: 1,
                        statement: String::new(),
                        why,
                        database: database.clone(),
                    },
                );
                continue;
            }
        };
        let pieces = match lex::split(&text, dialect) {
            Ok(p) => p,
            Err(why) => {
                s.unreadable += 1;
                list(
                    &mut s.unreadable_list,
                    Listed {
                        line: entry.line,
                        occurrences: 1,
                        statement: crate::clip(&lex::shown(&text, dialect), SHOWN_STATEMENT),
                        why,
                        database: database.clone(),
                    },
                );
                continue;
            }
        };
        for piece in pieces {
            s.statements += 1;
            let class = match lex::classify(piece, dialect) {
                Ok(c) => c,
                Err(why) => {
                    s.unreadable += 1;
                    list(
                        &mut s.unreadable_list,
                        Listed {
                            line: entry.line,
                            occurrences: 1,
                            statement: crate::clip(&lex::shown(piece, dialect), SHOWN_STATEMENT),
                            why,
                            database: database.clone(),
                        },
                    );
                    continue;
                }
            };
            let class_never = matches!(class, lex::Class::Never(_));
            let write = match class {
                lex::Class::Session => {
                    s.session += 1;
                    continue;
                }
                lex::Class::Read => false,
                lex::Class::Never(why) | lex::Class::Write(why)
                    if !opts.allow_writes || class_never =>
                {
                    s.refused += 1;
                    if class_never {
                        s.never += 1;
                    }
                    let h = blake3::hash(piece.as_bytes());
                    if let Some(&i) = refused.get(&h) {
                        s.refused_list[i].occurrences += 1;
                    } else if s.refused_list.len() < opts.examples {
                        refused.insert(h, s.refused_list.len());
                        s.refused_list.push(Listed {
                            line: entry.line,
                            occurrences: 1,
                            statement: crate::clip(&lex::shown(piece, dialect), SHOWN_STATEMENT),
                            why,
                            database: database.clone(),
                        });
                    }
                    continue;
                }
                lex::Class::Write(_) | lex::Class::Never(_) => true,
            };
            if write {
                s.writes += 1;
            }
            let mut key = blake3::Hasher::new();
            key.update(format!("{:?}\0", entry.database).as_bytes());
            key.update(piece.as_bytes());
            let h = key.finalize();
            if let Some(&i) = index.get(&h) {
                work[i].occurrences += 1;
                continue;
            }
            if work.len() >= opts.max_statements || kept + piece.len() > MAX_TEXT_BYTES {
                s.over_cap += 1;
                continue;
            }
            kept += piece.len();
            if entry.database == log::Database::Unknown {
                s.database_unknown += 1;
            }
            index.insert(h, work.len());
            work.push(Work {
                line: entry.line,
                occurrences: 1,
                text: piece.to_owned(),
                write,
                database: entry.database.clone(),
            });
        }
    }
    s.distinct = work.len() as u64;
    drop(index);

    let outcomes: Mutex<Vec<Option<Outcome>>> = Mutex::new((0..work.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..opts.concurrency.clamp(1, 64).min(work.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(w) = work.get(i) else { break };
                    let o = if cancel.load(Ordering::Relaxed) {
                        Outcome::Interrupted
                    } else {
                        one(w, old, new, opts.again && !w.write)
                    };
                    if let Ok(mut v) = outcomes.lock() {
                        v[i] = Some(o);
                    }
                }
            });
        }
    });
    let outcomes = outcomes.into_inner().unwrap_or_default();
    for (w, o) in work.iter().zip(outcomes) {
        let listed = |why: String| Listed {
            line: w.line,
            occurrences: w.occurrences,
            statement: crate::clip(&lex::shown(&w.text, dialect), SHOWN_STATEMENT),
            why,
            database: named(&w.database),
        };
        match o {
            None | Some(Outcome::Interrupted) => s.interrupted = true,
            Some(Outcome::Same { noise }) => {
                s.compared += 1;
                s.same += 1;
                if !noise.is_empty() {
                    s.noise += 1;
                    let why = format!(
                        "column {} differs between the two runs on the old server",
                        noise.join(", ")
                    );
                    list(&mut s.noisy, listed(why));
                }
            }
            Some(Outcome::Noise(why)) => {
                s.noise += 1;
                s.noise_whole += 1;
                list(&mut s.noisy, listed(why));
            }
            Some(Outcome::Differs(mut f)) => {
                s.compared += 1;
                s.differing += 1;
                if f.class == "error on new only" {
                    s.new_errors += 1;
                }
                f.line = w.line;
                f.occurrences = w.occurrences;
                f.statement = crate::clip(&lex::shown(&w.text, dialect), SHOWN_STATEMENT);
                f.database = named(&w.database);
                if s.findings.len() < opts.examples {
                    s.findings.push(f);
                }
            }
            Some(Outcome::BothFailed(why)) => {
                s.compared += 1;
                s.failed_both += 1;
                list(&mut s.both_failed, listed(why));
            }
            Some(Outcome::Trouble(why)) => {
                s.failed += 1;
                list(&mut s.failures, listed(why));
            }
        }
    }
    s
}

/// One statement against old, new and (for noise) old again.
fn one(w: &Work, old: &dyn SqlSide, new: &dyn SqlSide, again: bool) -> Outcome {
    let a = old.query(&w.text, w.write, &w.database);
    if let Err(QueryError::Trouble(e)) = &a {
        return Outcome::Trouble(format!("old: {e}"));
    }
    let b = new.query(&w.text, w.write, &w.database);
    if let Err(QueryError::Trouble(e)) = &b {
        return Outcome::Trouble(format!("new: {e}"));
    }
    let a2 = if again {
        match old.query(&w.text, w.write, &w.database) {
            Err(QueryError::Trouble(e)) => {
                return Outcome::Trouble(format!("old, asked again: {e}"));
            }
            r => Some(r),
        }
    } else {
        None
    };
    compare(&a, &b, a2.as_ref())
}

fn cut(s: &str) -> String {
    crate::clip(&s.replace(['\n', '\r'], " "), SHOWN)
}

fn shown_value(col: Option<&String>, v: Option<&Option<String>>) -> String {
    if col.is_some_and(|c| crate::secret_name(c)) {
        return "(not shown)".into();
    }
    match v {
        None => "(no such column)".into(),
        Some(None) => "NULL".into(),
        Some(Some(v)) => cut(v),
    }
}

/// The first line of a server's error (`ERROR:  …`), without the position lines.
fn first_error_line(e: &str) -> String {
    cut(e.lines().next().unwrap_or(e).trim())
}

/// Compares the old answer `a` with the new `b`, columns in which `a` and `a2` (the old
/// server asked again) differ left out.
fn compare(
    a: &Result<Answer, QueryError>,
    b: &Result<Answer, QueryError>,
    a2: Option<&Result<Answer, QueryError>>,
) -> Outcome {
    let finding = |class: &str, old: String, new: String| Finding {
        line: 0,
        occurrences: 0,
        statement: String::new(),
        class: class.into(),
        row: None,
        column: None,
        old,
        new,
        noise_columns: Vec::new(),
        database: None,
    };
    // The old server against itself first: what differs there is noise.
    let mut noise_cols: Vec<usize> = Vec::new();
    if let Some(a2) = a2 {
        match (a, a2) {
            (Ok(x), Ok(y)) => {
                if x.columns != y.columns || x.rows.len() != y.rows.len() {
                    return Outcome::Noise(format!(
                        "the old server answered {} rows, then {}",
                        x.rows.len(),
                        y.rows.len()
                    ));
                }
                for c in 0..x.columns.len() {
                    if x.rows
                        .iter()
                        .zip(&y.rows)
                        .any(|(r, s)| r.get(c) != s.get(c))
                    {
                        noise_cols.push(c);
                    }
                }
            }
            (Err(QueryError::Server(x)), Err(QueryError::Server(y))) if x == y => {}
            (Err(_), _) | (_, Err(_)) => {
                return Outcome::Noise("the old server answered once and failed once".into());
            }
        }
    }
    match (a, b) {
        (Err(QueryError::Server(x)), Err(QueryError::Server(y))) => {
            if x == y {
                Outcome::BothFailed(first_error_line(x))
            } else {
                Outcome::Differs(finding(
                    "error message",
                    first_error_line(x),
                    first_error_line(y),
                ))
            }
        }
        (Ok(_), Err(QueryError::Server(y))) => Outcome::Differs(finding(
            "error on new only",
            "(answered)".into(),
            first_error_line(y),
        )),
        (Err(QueryError::Server(x)), Ok(_)) => Outcome::Differs(finding(
            "error on old only",
            first_error_line(x),
            "(answered)".into(),
        )),
        (Ok(x), Ok(y)) => {
            let names = |a: &Answer| a.columns.join(", ");
            let noise: Vec<String> = noise_cols
                .iter()
                .filter_map(|&c| x.columns.get(c).cloned())
                .collect();
            if x.columns != y.columns {
                let mut f = finding("columns", cut(&names(x)), cut(&names(y)));
                f.noise_columns = noise;
                return Outcome::Differs(f);
            }
            let keep = |c: usize| !noise_cols.contains(&c);
            let project = |r: &Vec<Option<String>>| -> Vec<Option<String>> {
                r.iter()
                    .enumerate()
                    .filter(|(c, _)| keep(*c))
                    .map(|(_, v)| v.clone())
                    .collect()
            };
            let first_diff = x
                .rows
                .iter()
                .zip(&y.rows)
                .enumerate()
                .find_map(|(i, (r, s))| {
                    (0..x.columns.len().max(r.len()).max(s.len()))
                        .find(|&c| keep(c) && r.get(c) != s.get(c))
                        .map(|c| (i, c))
                });
            if x.rows.len() == y.rows.len() && first_diff.is_none() {
                return Outcome::Same { noise };
            }
            // The same rows in another order: a weaker finding (no ORDER BY, no order promised).
            if x.rows.len() == y.rows.len() {
                let mut p: Vec<_> = x.rows.iter().map(project).collect();
                let mut q: Vec<_> = y.rows.iter().map(project).collect();
                p.sort();
                q.sort();
                if p == q {
                    let (i, _) = first_diff.unwrap_or((0, 0));
                    let mut f = finding(
                        "row order",
                        format!("row {} of {}", i + 1, x.rows.len()),
                        "the same rows in another order".into(),
                    );
                    f.row = Some(i as u64 + 1);
                    f.noise_columns = noise;
                    return Outcome::Differs(f);
                }
            }
            let mut f = match first_diff {
                Some((i, c)) => {
                    let col = x.columns.get(c);
                    let mut f = finding(
                        "value",
                        shown_value(col, x.rows[i].get(c)),
                        shown_value(col, y.rows[i].get(c)),
                    );
                    f.row = Some(i as u64 + 1);
                    f.column = Some(col.cloned().unwrap_or_else(|| format!("#{}", c + 1)));
                    f
                }
                None => {
                    let i = x.rows.len().min(y.rows.len());
                    let mut f = finding(
                        "rows",
                        format!("{} rows", x.rows.len()),
                        format!("{} rows", y.rows.len()),
                    );
                    f.row = Some(i as u64 + 1);
                    f
                }
            };
            f.noise_columns = noise;
            Outcome::Differs(f)
        }
        (Err(QueryError::Trouble(e)), _) | (_, Err(QueryError::Trouble(e))) => {
            Outcome::Trouble(e.clone())
        }
    }
}

/// The summary for a person, as lines; `esc` makes a string from the log or a server safe
/// for the terminal (every such string goes through it).
pub fn render(s: &Summary, secs: Option<f64>, esc: &dyn Fn(&str) -> String) -> Vec<String> {
    let mut o = Vec::new();
    o.push(format!(
        "replayed {} distinct statements ({} in the log, {} format) from {} against old {} and new {}{}{}",
        s.distinct,
        s.statements,
        s.format,
        esc(&s.log),
        esc(&s.old),
        esc(&s.new),
        if s.noise_measured {
            ", old asked twice for noise"
        } else {
            ""
        },
        secs.map(|t| format!(" in {t:.1} s")).unwrap_or_default()
    ));
    let more = |o: &mut Vec<String>, total: u64, shown: usize| {
        if total > shown as u64 {
            o.push(format!("  … and {} more", total - shown as u64));
        }
    };
    let line = |l: &Listed| {
        let times = if l.occurrences > 1 {
            format!(" (×{})", l.occurrences)
        } else {
            String::new()
        };
        let db = match &l.database {
            Some(d) => format!(" (database {})", esc(d)),
            None => String::new(),
        };
        format!("  line {}{times}{db}: {}", l.line, esc(&l.statement))
    };
    if s.session > 0 {
        o.push(format!(
            "not replayed: {} transaction and session statements (BEGIN, COMMIT, SET …)",
            s.session
        ));
    }
    if s.refused > s.never {
        o.push(format!(
            "refused {} statements that are not read-only (not run; --allow-writes runs them rolled back, for a rehearsal copy){}:",
            s.refused,
            if s.never > 0 {
                format!(
                    ", {} of them never run, not even with --allow-writes",
                    s.never
                )
            } else {
                String::new()
            }
        ));
    } else if s.refused > 0 {
        o.push(format!(
            "refused {} statements that are never run, not even with --allow-writes:",
            s.refused
        ));
    }
    if s.refused > 0 {
        for l in &s.refused_list {
            o.push(format!("{}: {}", line(l), esc(&l.why)));
        }
    }
    if s.writes > 0 {
        o.push(format!(
            "{} statements that are not read-only were run in transactions rolled back, once per side",
            s.writes
        ));
    }
    if s.database_unknown > 0 {
        o.push(format!(
            "{} distinct statements ran on connections that began before the log did: their database is not in the log, they were replayed in each side's own database",
            s.database_unknown
        ));
    }
    if s.over_cap > 0 {
        o.push(format!(
            "{} distinct statements past the cap (--max-statements or 64 MiB of text): not replayed",
            s.over_cap
        ));
    }
    for (what, n, list) in [
        (
            "log entries not readable as a statement",
            s.unreadable,
            &s.unreadable_list,
        ),
        ("statements could not be replayed", s.failed, &s.failures),
    ] {
        if n > 0 {
            o.push(format!("{n} {what}:"));
            for l in list {
                if l.statement.is_empty() {
                    o.push(format!("  line {}: {}", l.line, esc(&l.why)));
                } else {
                    o.push(format!("{}: {}", line(l), esc(&l.why)));
                }
            }
            more(&mut o, n, list.len());
        }
    }
    if s.differing > 0 {
        o.push(format!(
            "{} statements answered differently ({} raise an error only on the new server):",
            s.differing, s.new_errors
        ));
        for f in &s.findings {
            let l = Listed {
                line: f.line,
                occurrences: f.occurrences,
                statement: f.statement.clone(),
                why: String::new(),
                database: f.database.clone(),
            };
            o.push(line(&l));
            let at = match (&f.row, &f.column) {
                (Some(r), Some(c)) => format!(" at row {r}, column {}", esc(c)),
                (Some(r), None) => format!(" from row {r}"),
                _ => String::new(),
            };
            o.push(format!(
                "    {}{at}: old {} | new {}",
                f.class,
                esc(&f.old),
                esc(&f.new)
            ));
            if !f.noise_columns.is_empty() {
                let cols: Vec<String> = f.noise_columns.iter().map(|c| esc(c)).collect();
                o.push(format!(
                    "    noise, not compared: column {}",
                    cols.join(", ")
                ));
            }
        }
        more(&mut o, s.differing, s.findings.len());
    }
    if s.noise > 0 {
        o.push(format!(
            "{} statements with noise (the old server differs from itself: nondeterministic, not reported as differences):",
            s.noise
        ));
        for l in &s.noisy {
            o.push(format!("{}: {}", line(l), esc(&l.why)));
        }
        more(&mut o, s.noise, s.noisy.len());
    }
    if s.failed_both > 0 {
        o.push(format!(
            "{} statements failed with the same error on both servers:",
            s.failed_both
        ));
        for l in &s.both_failed {
            o.push(format!("{}: {}", line(l), esc(&l.why)));
        }
        more(&mut o, s.failed_both, s.both_failed.len());
    }
    o.push(format!("not compared: {}", s.not_compared));
    let verdict = if s.interrupted {
        "interrupted: not every statement was replayed".to_string()
    } else if s.statements == 0 {
        "trouble: the log holds no statement (is it the server's log, written with \
         log_statement = 'all' or log_min_duration_statement = 0, or MariaDB's general log, \
         in the format given?)"
            .to_string()
    } else if s.compared == 0 && s.failed == 0 && s.unreadable == 0 {
        format!(
            "trouble: no statement was compared ({} refused as not read-only, {} transaction and session statements, {} noise as a whole, {} past the cap)",
            s.refused, s.session, s.noise_whole, s.over_cap
        )
    } else if s.trouble() {
        format!(
            "trouble: {} statements could not be replayed, {} log entries not readable; {} compared, {} differ",
            s.failed, s.unreadable, s.compared, s.differing
        )
    } else if s.differs() {
        format!(
            "differ: {} of {} compared statements answered differently",
            s.differing, s.compared
        )
    } else {
        format!(
            "same: the {} statements compared were answered the same",
            s.compared
        )
    };
    o.push(verdict);
    o
}
