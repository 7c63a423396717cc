//! SQL on a host: a [`rehost_db::Sql`] session that runs `psql` on the host that can reach the
//! database server (in-process for a local host, through the agent on an ssh host), so servers
//! that listen only on their own loopback are reached where they are. Only the query results
//! (digests, catalog rows) travel.
//!
//! The password never appears on a command line, in the plan or in a message: a password that
//! came in a URL goes to psql's environment (`PGPASSWORD`); a password file is read on the host
//! itself by a one-line shell wrapper.

use crate::dbclient::run_client;
use crate::{CommandSpec, Host, Program};
use rehost_db::{ConnInfo, DbError, Sql};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

pub struct Psql<'h> {
    host: &'h dyn Host,
    /// Whether to name the host in messages (`old:postgres://…`), or only the URL.
    show_host: bool,
    conn: ConnInfo,
    cancel: &'h AtomicBool,
    /// Per psql run; none by default (a large table's checksum takes as long as it takes).
    pub timeout: Option<Duration>,
}

impl<'h> Psql<'h> {
    pub fn new(
        host: &'h dyn Host,
        show_host: bool,
        conn: ConnInfo,
        cancel: &'h AtomicBool,
    ) -> Self {
        Psql {
            host,
            show_host,
            conn,
            cancel,
            timeout: None,
        }
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
            &self.conn.url,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for s in statements {
            psql.push("-c".into());
            psql.push(s.clone());
        }
        let argv = match &self.conn.password_file {
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
        spec.timeout = self.timeout;
        spec.env.push(("PGCONNECT_TIMEOUT".into(), "10".into()));
        if let Some(pw) = &self.conn.password {
            spec.env.push(("PGPASSWORD".into(), pw.expose().to_owned()));
        }
        spec
    }
}

impl Sql for Psql<'_> {
    fn run(&self, statements: &[String]) -> Result<Vec<String>, DbError> {
        let spec = self.spec(statements);
        run_client(
            self.host,
            &spec,
            self.cancel,
            &|| self.describe(),
            ("psql", "postgresql-client"),
        )
    }

    fn describe(&self) -> String {
        if self.show_host {
            format!("{}:{}", self.host.name(), self.conn)
        } else {
            self.conn.to_string()
        }
    }
}
