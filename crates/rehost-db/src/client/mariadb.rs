//! SQL on a host through the `mariadb` client (or `mysql` where only that is installed): a
//! [`Sql`] session for MariaDB and MySQL servers, run where the server can be
//! reached, so a server that listens only on its own loopback or socket is reached there.
//!
//! The password never appears on a command line, in the plan or in a message: a password
//! that came in a URL goes to the client's environment (`MYSQL_PWD`); a password file is read
//! on the host itself by a small shell wrapper into the same variable; otherwise the client's
//! own option files (`~/.my.cnf`) apply there.

use super::Session;
use crate::{ConnInfo, DbError, Sql};
use rehost_host::{CommandSpec, Host, Program};
use std::sync::atomic::AtomicBool;

/// Reads the password file named by `$0` (when it is not `-`) into `MYSQL_PWD`, then runs the
/// first client found with the arguments (no subshell: a fork per session less).
const WRAPPER: &str = "if [ \"$0\" != - ]; then MYSQL_PWD=$(head -n 1 -- \"$0\") || exit 2; export MYSQL_PWD; fi; \
command -v mariadb >/dev/null && exec mariadb \"$@\"; command -v mysql >/dev/null && exec mysql \"$@\"; \
echo 'mariadb: command not found' >&2; exit 127";

pub struct Mariadb<'h>(Session<'h>);

impl<'h> Mariadb<'h> {
    pub fn new(
        host: &'h dyn Host,
        show_host: bool,
        conn: ConnInfo,
        cancel: &'h AtomicBool,
    ) -> Self {
        Mariadb(Session {
            host,
            show_host,
            conn,
            cancel,
        })
    }

    fn spec(&self, statements: &[String]) -> Result<CommandSpec, DbError> {
        let Some(t) = self.0.conn.mysql() else {
            return Err(DbError::Url(format!(
                "`{}`: not a MariaDB/MySQL location",
                self.0.conn.url
            )));
        };
        let mut argv: Vec<String> = vec![
            "/bin/sh".into(),
            "-c".into(),
            WRAPPER.into(),
            self.0.password_file().unwrap_or_else(|| "-".into()),
            "--batch".into(),
            "--skip-column-names".into(),
            "--raw".into(),
            "--default-character-set=utf8mb4".into(),
            "--connect-timeout=10".into(),
        ];
        if let Some(u) = &t.user {
            argv.push(format!("--user={u}"));
        }
        if let Some(h) = &t.host {
            argv.push(format!("--host={h}"));
        }
        if let Some(p) = t.port {
            argv.push(format!("--port={p}"));
        }
        match &t.socket {
            Some(s) => argv.push(format!("--socket={s}")),
            None if t.port.is_some() => argv.push("--protocol=TCP".into()),
            None => {}
        }
        if let Some(d) = &t.database {
            argv.push(format!("--database={d}"));
        }
        let mut script = String::new();
        for s in statements {
            script.push_str(s);
            script.push_str(";\n");
        }
        argv.push("--execute".into());
        argv.push(script);
        let mut spec = CommandSpec::new(Program::Argv(argv));
        if let Some(pw) = &self.0.conn.password {
            spec.env.push(("MYSQL_PWD".into(), pw.expose().to_owned()));
        }
        Ok(spec)
    }
}

impl Sql for Mariadb<'_> {
    fn run(&self, statements: &[String]) -> Result<Vec<String>, DbError> {
        let spec = self.spec(statements)?;
        self.0
            .run(&spec, ("mariadb", "mariadb-client"))
            .map_err(|e| match e {
                // The client echoes the failing statement between dashes before its error: the
                // error is what matters.
                DbError::Query { target, message } => DbError::Query {
                    target,
                    message: match message.rfind("ERROR ") {
                        Some(i) => message[i..].to_owned(),
                        None => message,
                    },
                },
                e => e,
            })
    }

    fn describe(&self) -> String {
        self.0.describe()
    }
}
