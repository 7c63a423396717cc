//! The sessions `rehost compat replay-sql` and the `compat-sql` step replay a query log with:
//! rehost-db's psql session on the host that reaches each server (the password from the URL
//! or the password file, never on a command line), one statement per client run, inside a
//! transaction that is rolled back (read-only unless writes are allowed). The comparison is
//! rehost-compat's (`rehost_compat::sql`).

use rehost_compat::sql::{self, Answer, QueryError, SqlSide, log};
use rehost_db::client::psql::{Psql, Replayed};
use rehost_db::{ConnInfo, DbError, Sql};
use rehost_host::Host;
use std::io::BufRead;
use std::sync::atomic::AtomicBool;

/// Seconds a replayed statement may run (`statement_timeout`).
pub const STATEMENT_TIMEOUT_S: u32 = 60;

/// A PostgreSQL server reached by psql on `host`.
pub struct PsqlSide<'h> {
    psql: Psql<'h>,
}

impl<'h> PsqlSide<'h> {
    /// A side for `conn` on `host`; only PostgreSQL.
    pub fn new(
        host: &'h dyn Host,
        show_host: bool,
        conn: ConnInfo,
        cancel: &'h AtomicBool,
    ) -> Result<Self, String> {
        if conn.engine() != rehost_plan::Engine::Postgres {
            return Err(format!(
                "{conn}: replay-sql replays PostgreSQL logs against PostgreSQL servers only"
            ));
        }
        Ok(PsqlSide {
            psql: Psql::new(host, show_host, conn, cancel),
        })
    }
}

impl SqlSide for PsqlSide<'_> {
    fn describe(&self) -> String {
        self.psql.describe()
    }

    fn query(&self, statement: &str, write: bool) -> Result<Answer, QueryError> {
        match self.psql.replay(statement, write, STATEMENT_TIMEOUT_S) {
            Ok(Replayed::Rows { columns, rows }) => Ok(Answer { columns, rows }),
            Ok(Replayed::ServerError(e)) => Err(QueryError::Server(e)),
            Err(DbError::Cancelled) => Err(QueryError::Trouble("interrupted".into())),
            Err(e) => Err(QueryError::Trouble(e.to_string())),
        }
    }
}

/// Opens the log at `path` (`format`: `None` detects it from the first line) and replays it.
pub fn replay_file(
    path: &std::path::Path,
    format: Option<log::Format>,
    old: &dyn SqlSide,
    new: &dyn SqlSide,
    opts: &sql::Options,
    cancel: &AtomicBool,
) -> Result<sql::Summary, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("failed to open the log: {e}"))?;
    let mut r = std::io::BufReader::with_capacity(1 << 20, file);
    let format = match format {
        Some(f) => f,
        None => log::Format::detect(
            r.fill_buf()
                .map_err(|e| format!("failed to read the log: {e}"))?,
        ),
    };
    let mut reader = log::Reader::new(r, format);
    let mut summary = sql::replay(&mut reader, old, new, opts, cancel);
    if let Some(e) = reader.io_error {
        return Err(format!("failed to read the log {e}"));
    }
    summary.log = path.display().to_string();
    summary.format = format.name().to_owned();
    Ok(summary)
}
