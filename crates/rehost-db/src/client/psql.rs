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

/// How psql is started, as `sh -c WRAPPER FILE ARGS…`: the password from FILE's first line
/// unless FILE is `-`, then psql itself. Where the `psql` on the PATH is Debian's `pg_wrapper`
/// (a Perl script that picks a version: 0.1–0.25 s per start on the 2-core test machine, paid
/// by every session, more than the catalog queries take), the newest installed
/// `/usr/lib/postgresql/N/bin/psql` is run directly: what `pg_wrapper` picks for a connection
/// it does not map to a local cluster (rehost always gives a URL; a newer psql reads older
/// servers). The PATH is searched by the shell itself: no subshell or `readlink`, no process
/// started but psql.
const WRAPPER: &str = "if [ \"$0\" != - ]; then PGPASSWORD=$(head -n 1 -- \"$0\") || exit 2; export PGPASSWORD; fi; \
c=psql; f=; w=/usr/share/postgresql-common/pg_wrapper; \
if [ -f $w ]; then set -f; IFS=:; for d in $PATH; do [ -n \"$d\" ] && [ -x \"$d/psql\" ] && { f=$d/psql; break; }; done; unset IFS; set +f; \
if [ -n \"$f\" ] && [ \"$f\" -ef $w ]; then n=0; for p in /usr/lib/postgresql/*/bin/psql; do \
v=${p#/usr/lib/postgresql/}; v=${v%%/*}; v=${v%%.*}; case $v in ''|*[!0-9]*) continue ;; esac; \
if [ -x \"$p\" ] && [ \"$v\" -gt $n ]; then n=$v; c=$p; fi; done; fi; fi; \
exec \"$c\" \"$@\"";

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
        let mut argv: Vec<String> = ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        argv.push(self.0.conn.url.clone());
        for s in statements {
            argv.push("-c".into());
            argv.push(s.clone());
        }
        self.wrap(argv)
    }

    /// psql run with `args` through [`WRAPPER`]: the password from the password file (read
    /// on the host) or the URL's (in the environment), neither on a command line.
    fn wrap(&self, args: Vec<String>) -> CommandSpec {
        let mut argv: Vec<String> = vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            WRAPPER.to_owned(),
            self.0.password_file().unwrap_or_else(|| "-".into()),
        ];
        argv.extend(args);
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

pub use super::{MAX_REPLAY_ANSWER, Replayed};

/// How psql prints NULL in a replayed answer: a control character no text column starts with
/// in practice, so NULL and the empty string stay apart.
const NULL_MARK: &str = "\u{1a}NULL";

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
    use std::process::Command;

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

    fn wrapped(path: &str) -> std::process::Output {
        Command::new("/bin/sh")
            .args(["-c", WRAPPER, "-", "--version"])
            .env("PATH", path)
            // pg_wrapper refuses a cluster that does not exist; psql itself ignores it.
            .env("PGCLUSTER", "99/nothing")
            .output()
            .unwrap()
    }

    /// Debian's `psql` is a Perl script (pg_wrapper) that costs 0.1–0.25 s per session on a
    /// loaded machine: the wrapper runs the newest `/usr/lib/postgresql/N/bin/psql` instead,
    /// and leaves any other `psql` on the PATH alone.
    #[test]
    fn debian_pg_wrapper_is_bypassed_and_other_clients_are_run_as_found() {
        let w = std::path::Path::new("/usr/share/postgresql-common/pg_wrapper");
        assert!(
            w.exists(),
            "{} is missing: install postgresql-client (.ci/install-deps)",
            w.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let links = dir.path().join("links");
        std::fs::create_dir(&links).unwrap();
        std::os::unix::fs::symlink(w, links.join("psql")).unwrap();
        // The control: through pg_wrapper the bogus cluster is an error.
        let through = Command::new(links.join("psql"))
            .arg("--version")
            .env("PGCLUSTER", "99/nothing")
            .output()
            .unwrap();
        assert!(!through.status.success(), "{through:?}");
        let out = wrapped(&format!("/nonexistent::{}:/usr/bin:/bin", links.display()));
        assert!(out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("psql (PostgreSQL) "),
            "{out:?}"
        );

        // Another psql first on the PATH (a source build, RHEL's): that one runs.
        let own = dir.path().join("own");
        std::fs::create_dir(&own).unwrap();
        std::fs::write(own.join("psql"), "#!/bin/sh\necho own psql \"$@\"\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(own.join("psql"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = wrapped(&format!(
            "{}:{}:/usr/bin:/bin",
            own.display(),
            links.display()
        ));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "own psql --version\n");

        // None at all: the shell's 127, which the session turns into "install postgresql-client".
        let out = wrapped("/nonexistent");
        assert_eq!(out.status.code(), Some(127), "{out:?}");
    }
}
