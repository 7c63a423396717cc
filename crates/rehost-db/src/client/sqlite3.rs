//! SQL on a host through the `sqlite3` shell: a [`Sql`] session for an SQLite file
//! on the host that holds it. The file is opened read-only (`file:PATH?mode=ro`) for
//! verification, read-write but never created (`mode=rw`) for `--exercise`, whose changes are
//! rolled back; the shell runs in its safe mode (no ATTACH, no extensions, no file writes)
//! and stops at the first error (`-bail`). The shell brings `sha3()`.

use super::Session;
use crate::{ConnInfo, DbError, Sql};
use rehost_host::{CommandSpec, Host, Program};
use std::sync::atomic::AtomicBool;

pub struct Sqlite3<'h> {
    session: Session<'h>,
    read_only: bool,
}

impl<'h> Sqlite3<'h> {
    pub fn new(
        host: &'h dyn Host,
        show_host: bool,
        conn: ConnInfo,
        cancel: &'h AtomicBool,
        read_only: bool,
    ) -> Self {
        Sqlite3 {
            session: Session {
                host,
                show_host,
                conn,
                cancel,
            },
            read_only,
        }
    }

    /// `file:PATH?mode=ro` with the characters a URI gives meaning to escaped. PATH is the
    /// plan's path resolved by the host like every other path of it (under its `root`): a
    /// rehearsal host with a root never opens production's file at the path as written.
    fn uri(&self) -> String {
        let path = self
            .session
            .host_path(self.session.conn.sqlite_path().unwrap_or_default());
        let mut out = String::from("file:");
        for c in path.chars() {
            match c {
                '%' | '?' | '#' => out.push_str(&format!("%{:02X}", c as u32)),
                c => out.push(c),
            }
        }
        out.push_str(if self.read_only {
            "?mode=ro"
        } else {
            "?mode=rw"
        });
        out
    }

    fn spec(&self, statements: &[String]) -> CommandSpec {
        let mut argv: Vec<String> = [
            "sqlite3",
            "-bail",
            "-batch",
            "-safe",
            "-noheader",
            "-list",
            "-cmd",
            ".timeout 10000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if self.read_only {
            argv.push("-readonly".into());
        }
        argv.push(self.uri());
        for s in statements {
            // An argument starting with `.` would be a shell command: statements never do.
            argv.push(s.trim_start_matches('.').to_owned());
        }
        CommandSpec::new(Program::Argv(argv))
    }
}

impl Sql for Sqlite3<'_> {
    fn run(&self, statements: &[String]) -> Result<Vec<String>, DbError> {
        self.session
            .run(&self.spec(statements), ("sqlite3", "sqlite3"))
    }

    fn describe(&self) -> String {
        self.session.describe()
    }
}
