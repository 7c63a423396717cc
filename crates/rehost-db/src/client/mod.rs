//! Database clients on a host, as [`Sql`] sessions: `psql` ([`psql`]), `mariadb`
//! ([`mariadb`]) and `sqlite3` ([`sqlite3`]), each run through [`Host::run`] on the host that
//! reaches the server (in-process for a local host, through the agent on an ssh host).
//! [`connect`] picks the client by the location's engine. The only IO of this crate, and only
//! through the [`Host`] trait: the host resolves the paths a client opens ([`Host::resolve`])
//! and runs it.

pub mod mariadb;
pub mod psql;
pub mod sqlite3;

/// The most a replayed statement's answer may hold (`rehost compat replay-sql`): three answers
/// of each statement are held at once, by several workers.
pub const MAX_REPLAY_ANSWER: usize = 16 << 20;

/// One statement's answer when replayed alone (`rehost compat replay-sql`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// Column names and rows (`None`: NULL), as the server prints each value.
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<Option<String>>>,
    },
    /// The server raised an error: its message (`ERROR:  …` and the lines after it; MariaDB:
    /// `ERROR 1146 (42S02): …`).
    ServerError(String),
}

use crate::{ConnInfo, DbError, Engine, Sql};
use rehost_host::{CommandSpec, Host, OutputStream};
use std::sync::atomic::AtomicBool;

/// What one client run may answer at most: the driver asks for digests and catalog rows, and
/// lists at most a few thousand rows at a time, so more is a misbehaving server or client.
const MAX_ANSWER: usize = 256 << 20;

/// A session for `conn` on `host`; `show_host` names the host in messages.
pub fn connect<'h>(
    host: &'h dyn Host,
    show_host: bool,
    conn: ConnInfo,
    cancel: &'h AtomicBool,
) -> Box<dyn Sql + 'h> {
    match conn.engine() {
        Engine::Postgres => Box::new(psql::Psql::new(host, show_host, conn, cancel)),
        Engine::Mysql => Box::new(mariadb::Mariadb::new(host, show_host, conn, cancel)),
        Engine::Sqlite => Box::new(sqlite3::Sqlite3::new(host, show_host, conn, cancel, true)),
    }
}

/// A session that may change the database (inside transactions it rolls back): `--exercise`.
/// Only SQLite opens read-only otherwise.
pub fn connect_for_exercise<'h>(
    host: &'h dyn Host,
    show_host: bool,
    conn: ConnInfo,
    cancel: &'h AtomicBool,
) -> Box<dyn Sql + 'h> {
    match conn.engine() {
        Engine::Sqlite => Box::new(sqlite3::Sqlite3::new(host, show_host, conn, cancel, false)),
        _ => connect(host, show_host, conn, cancel),
    }
}

/// What every client session is: the host it runs on, the database it reaches, and how
/// messages name it.
pub(crate) struct Session<'h> {
    pub host: &'h dyn Host,
    /// Whether to name the host in messages (`old:postgres://…`), or only the URL.
    pub show_host: bool,
    pub conn: ConnInfo,
    pub cancel: &'h AtomicBool,
}

impl Session<'_> {
    /// `HOST:URL` or `URL`, the password left out.
    pub fn describe(&self) -> String {
        if self.show_host {
            format!("{}:{}", self.host.name(), self.conn)
        } else {
            self.conn.to_string()
        }
    }

    /// A path of this host as the client there must open it: under the host's `root` where
    /// it has one, as every other path of the host is ([`Host::resolve`]). The password file
    /// and an SQLite file go through here; a plan path is never read outside the root.
    pub fn host_path(&self, path: &str) -> String {
        use std::os::unix::ffi::OsStrExt;
        String::from_utf8_lossy(self.host.resolve(path).as_os_str().as_bytes()).into_owned()
    }

    /// The password file (`password_file`), resolved on the host ([`Session::host_path`]).
    pub fn password_file(&self) -> Option<String> {
        self.conn
            .password_file
            .as_deref()
            .map(|f| self.host_path(f))
    }

    /// Runs the client and returns its standard output's lines; its standard error (first
    /// lines) is the message when it fails. `tool`/`package`: for the message when it is
    /// missing.
    pub fn run(&self, spec: &CommandSpec, tool: (&str, &str)) -> Result<Vec<String>, DbError> {
        run_capped(
            self.host,
            spec,
            self.cancel,
            &|| self.describe(),
            tool,
            MAX_ANSWER,
        )
    }

    /// As [`Session::run`], each standard output line handed to `on_line` as it arrives
    /// (nothing is collected; no cap on the whole answer).
    pub fn stream(
        &self,
        spec: &CommandSpec,
        tool: (&str, &str),
        on_line: &mut dyn FnMut(&str),
    ) -> Result<(), DbError> {
        let (err, code) = run_lines(
            self.host,
            spec,
            self.cancel,
            &|| self.describe(),
            tool,
            None,
            &mut |l| on_line(&String::from_utf8_lossy(l)),
        )?;
        if code != Some(0) {
            return Err(DbError::Query {
                target: self.describe(),
                message: failure_message(&err, code, tool),
            });
        }
        Ok(())
    }

    /// Runs the client and returns its standard output's lines, its standard error's first
    /// lines and its exit code, whatever the code; only a client that could not run, an answer
    /// over `max_answer` and an interruption are errors.
    pub fn run_raw(
        &self,
        spec: &CommandSpec,
        tool: (&str, &str),
        max_answer: usize,
    ) -> Result<ClientRun, DbError> {
        run_outcome(
            self.host,
            spec,
            self.cancel,
            &|| self.describe(),
            tool,
            max_answer,
        )
    }
}

/// What a client run answered, whatever its exit code.
pub struct ClientRun {
    /// Standard output's lines.
    pub out: Vec<String>,
    /// Standard error's first lines.
    pub err: Vec<String>,
    pub code: Option<i32>,
}

/// The message for a client that ended with `code`: its error output, or the code, and the
/// package to install when it is missing.
pub(crate) fn failure_message(
    err: &[String],
    code: Option<i32>,
    (tool, package): (&str, &str),
) -> String {
    let mut message = err.join("; ");
    if message.is_empty() {
        message = match code {
            Some(c) => format!("{tool} ended with exit status {c}"),
            None => format!("{tool} was ended by a signal"),
        };
    }
    if code == Some(127) {
        message.push_str(&format!(
            " ({tool} comes with the {package} package: apt-get install {package})"
        ));
    }
    message
}

fn run_capped(
    host: &dyn Host,
    spec: &CommandSpec,
    cancel: &AtomicBool,
    target: &dyn Fn() -> String,
    tool: (&str, &str),
    max_answer: usize,
) -> Result<Vec<String>, DbError> {
    let ClientRun { out, err, code } = run_outcome(host, spec, cancel, target, tool, max_answer)?;
    if code != Some(0) {
        return Err(DbError::Query {
            target: target(),
            message: failure_message(&err, code, tool),
        });
    }
    Ok(out)
}

fn run_outcome(
    host: &dyn Host,
    spec: &CommandSpec,
    cancel: &AtomicBool,
    target: &dyn Fn() -> String,
    tool: (&str, &str),
    max_answer: usize,
) -> Result<ClientRun, DbError> {
    let mut out = Vec::new();
    let (err, code) = run_lines(
        host,
        spec,
        cancel,
        target,
        tool,
        Some(max_answer),
        &mut |l| out.push(String::from_utf8_lossy(l).into_owned()),
    )?;
    Ok(ClientRun { out, err, code })
}

/// Standard error lines kept from a client's start, and from its end: the mariadb client
/// echoes a failing statement (all its lines) before its error.
const ERR_HEAD: usize = 20;
const ERR_TAIL: usize = 10;

/// Runs the client, each standard output line to `on_line` (until `max_answer` bytes, past
/// which the client is stopped and it is an error); returns its standard error's first and
/// last lines (`…` between them where lines were left out) and its exit code, whatever the
/// code.
fn run_lines(
    host: &dyn Host,
    spec: &CommandSpec,
    cancel: &AtomicBool,
    target: &dyn Fn() -> String,
    (tool, package): (&str, &str),
    max_answer: Option<usize>,
    on_line: &mut dyn FnMut(&[u8]),
) -> Result<(Vec<String>, Option<i32>), DbError> {
    let mut size = 0usize;
    let mut too_much = false;
    let mut err = Vec::new();
    let mut tail = std::collections::VecDeque::new();
    let mut dropped = false;
    // Past the cap the client is stopped (a flag of its own), not left to answer without end.
    let outcome = rehost_host::with_own_stop(cancel, |stop| {
        host.run(spec, stop, &mut |stream, line| match stream {
            OutputStream::Stdout => {
                size += line.len() + 1;
                if max_answer.is_some_and(|max| size > max) {
                    too_much = true;
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                } else {
                    on_line(line);
                }
            }
            OutputStream::Stderr => {
                let line = String::from_utf8_lossy(line).into_owned();
                if err.len() < ERR_HEAD {
                    err.push(line)
                } else {
                    tail.push_back(line);
                    if tail.len() > ERR_TAIL {
                        tail.pop_front();
                        dropped = true;
                    }
                }
            }
        })
    })
    .map_err(|e| DbError::Query {
        target: target(),
        message: format!(
            "failed to run {tool} on host {}: {e} ({tool} comes with the {package} package)",
            host.name()
        ),
    })?;
    if too_much {
        return Err(DbError::Answer {
            target: target(),
            message: format!(
                "{tool} answered more than {} MiB",
                max_answer.unwrap_or_default() >> 20
            ),
        });
    }
    if outcome.cancelled {
        return Err(DbError::Cancelled);
    }
    if dropped {
        err.push("…".into());
    }
    err.extend(tail);
    Ok((err, outcome.exit.code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rehost_host::{LocalHost, Program};

    /// A client (or the server behind it) that answers without end is cut off at the cap with
    /// an error naming the database, not collected into memory.
    #[test]
    fn an_endless_answer_is_refused_at_the_cap() {
        let host = LocalHost::new("old", None);
        let spec = CommandSpec::new(Program::Shell("yes row".into()));
        let cancel = AtomicBool::new(false);
        let err = run_capped(
            &host,
            &spec,
            &cancel,
            &|| "old:postgres://x/db".into(),
            ("psql", "postgresql-client"),
            2 << 20,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("old:postgres://x/db"), "{err}");
        assert!(err.contains("psql answered more than 2 MiB"), "{err}");
    }
}
