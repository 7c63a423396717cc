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
        let mut argv: Vec<String> = vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            WRAPPER.to_owned(),
            self.0.password_file().unwrap_or_else(|| "-".into()),
        ];
        argv.extend(
            ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"]
                .iter()
                .map(|s| s.to_string()),
        );
        argv.push(self.0.conn.url.clone());
        for s in statements {
            argv.push("-c".into());
            argv.push(s.clone());
        }
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

    fn describe(&self) -> String {
        self.0.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::WRAPPER;
    use std::process::Command;

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
