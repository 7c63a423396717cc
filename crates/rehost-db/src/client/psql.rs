//! SQL on a host: a [`Sql`] session that runs `psql` on the host that can reach the
//! database server (in-process for a local host, through the agent on an ssh host), so servers
//! that listen only on their own loopback are reached where they are. Only the query results
//! (digests, catalog rows) travel.
//!
//! The password never appears on a command line, in the plan or in a message: a password that
//! came in a URL goes to psql's environment (`PGPASSWORD`); a password file is read on the host
//! itself by a one-line shell wrapper.

use super::Session;
use crate::{ConnInfo, DbError, Sql};
use rehost_host::{CommandSpec, Host, Program};
use std::sync::atomic::AtomicBool;

pub struct Psql<'h>(Session<'h>);

impl<'h> Psql<'h> {
    pub fn new(
        host: &'h dyn Host,
        show_host: bool,
        conn: ConnInfo,
        cancel: &'h AtomicBool,
    ) -> Self {
        Psql(Session {
            host,
            show_host,
            conn,
            cancel,
        })
    }

    fn spec(&self, statements: &[String]) -> CommandSpec {
        let mut psql: Vec<String> = [
            "psql",
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &self.0.conn.url,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for s in statements {
            psql.push("-c".into());
            psql.push(s.clone());
        }
        self.wrap(psql)
    }

    /// `psql` (its argument vector) run with the password from the URL or the password file,
    /// neither on a command line.
    fn wrap(&self, psql: Vec<String>) -> CommandSpec {
        let argv = match &self.0.password_file() {
            Some(file) => {
                let mut v = vec![
                    "/bin/sh".to_owned(),
                    "-c".to_owned(),
                    "PGPASSWORD=$(head -n 1 -- \"$0\") && export PGPASSWORD && exec \"$@\""
                        .to_owned(),
                    file.clone(),
                ];
                v.extend(psql);
                v
            }
            None => psql,
        };
        let mut spec = CommandSpec::new(Program::Argv(argv));
        spec.env.push(("PGCONNECT_TIMEOUT".into(), "10".into()));
        if let Some(pw) = &self.0.conn.password {
            spec.env.push(("PGPASSWORD".into(), pw.expose().to_owned()));
        }
        spec
    }
}

impl Sql for Psql<'_> {
    fn run(&self, statements: &[String]) -> Result<Vec<String>, DbError> {
        self.0
            .run(&self.spec(statements), ("psql", "postgresql-client"))
    }

    fn stream(&self, statements: &[String], on_line: &mut dyn FnMut(&str)) -> Result<(), DbError> {
        self.0.stream(
            &self.spec(statements),
            ("psql", "postgresql-client"),
            on_line,
        )
    }

    fn describe(&self) -> String {
        self.0.describe()
    }
}

/// The most a replayed statement's answer may hold (`rehost compat replay-sql`): three answers
/// of each statement are held at once, by several workers.
pub const MAX_REPLAY_ANSWER: usize = 16 << 20;

/// How psql prints NULL in a replayed answer: a control character no text column starts with
/// in practice, so NULL and the empty string stay apart.
const NULL_MARK: &str = "\u{1a}NULL";

/// One statement's answer when replayed alone (`rehost compat replay-sql`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// Column names and rows (`None`: NULL), as the server prints each value.
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<Option<String>>>,
    },
    /// The server raised an error: its message (`ERROR:  …` and the lines after it).
    ServerError(String),
}

impl Psql<'_> {
    /// Runs `statement` alone in a transaction that is rolled back — `BEGIN TRANSACTION READ
    /// ONLY` unless `write` — with a statement timeout of `timeout_s` seconds. The answer is
    /// unaligned with a unit separator between fields and a NUL after each record (PostgreSQL
    /// text holds no NUL), so values with newlines or `|` come back whole. An error the
    /// server raised is [`Replayed::ServerError`]; one reaching the server (connection,
    /// client missing, answer over [`MAX_REPLAY_ANSWER`]) is a [`DbError`].
    pub fn replay(
        &self,
        statement: &str,
        write: bool,
        timeout_s: u32,
    ) -> Result<Replayed, DbError> {
        let begin = if write {
            "BEGIN"
        } else {
            "BEGIN TRANSACTION READ ONLY"
        };
        let psql: Vec<String> = [
            "psql",
            "-X",
            "-q",
            "-A",
            "-F",
            "\u{1f}",
            "-0",
            "-P",
            "footer=off",
            "-P",
            &format!("null={NULL_MARK}"),
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &self.0.conn.url,
            "-c",
            begin,
            "-c",
            &format!("SET LOCAL statement_timeout = '{timeout_s}s'"),
            "-c",
            statement,
            "-c",
            "ROLLBACK",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let spec = self.wrap(psql);
        let super::ClientRun { out, err, code } =
            self.0
                .run_raw(&spec, ("psql", "postgresql-client"), MAX_REPLAY_ANSWER)?;
        if code == Some(1) && err.first().is_some_and(|l| l.starts_with("ERROR:")) {
            return Ok(Replayed::ServerError(err.join("\n")));
        }
        if code != Some(0) {
            return Err(DbError::Query {
                target: self.0.describe(),
                message: super::failure_message(&err, code, ("psql", "postgresql-client")),
            });
        }
        Ok(parse_unaligned(&out.join("\n")))
    }
}

/// psql's unaligned answer with a unit separator between fields and NUL after each record:
/// the first record names the columns.
fn parse_unaligned(text: &str) -> Replayed {
    let mut records = text.split('\0');
    let split = |r: &str| -> Vec<String> { r.split('\u{1f}').map(str::to_owned).collect() };
    let columns = match records.next() {
        Some(h) if !h.is_empty() => split(h),
        _ => Vec::new(),
    };
    let rows = records
        // After the last record's NUL comes the newline that ends the output.
        .filter(|r| !r.is_empty() && *r != "\n")
        .map(|r| {
            split(r)
                .into_iter()
                .map(|v| (v != NULL_MARK).then_some(v))
                .collect()
        })
        .collect();
    Replayed::Rows { columns, rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unaligned_answers_keep_nulls_newlines_and_bars() {
        let text = format!("a\u{1f}b\0x|y\u{1f}{NULL_MARK}\0line 1\nline 2\u{1f}\0");
        assert_eq!(
            parse_unaligned(&text),
            Replayed::Rows {
                columns: vec!["a".into(), "b".into()],
                rows: vec![
                    vec![Some("x|y".into()), None],
                    vec![Some("line 1\nline 2".into()), Some(String::new())],
                ],
            }
        );
        assert_eq!(
            parse_unaligned("?column?\0"),
            Replayed::Rows {
                columns: vec!["?column?".into()],
                rows: vec![]
            }
        );
    }
}
