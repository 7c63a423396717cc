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
