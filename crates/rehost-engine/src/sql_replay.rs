//! The sessions `rehost compat replay-sql` and the `compat-sql` step replay a query log with:
//! rehost-db's psql or mariadb session on the host that reaches each server (the password
//! from the URL or the password file, never on a command line), one statement per client run,
//! inside a transaction that is rolled back (read-only unless writes are allowed), MariaDB's
//! in the database the log names. The comparison is rehost-compat's (`rehost_compat::sql`).

use rehost_compat::sql::{self, Answer, QueryError, SqlSide, lex::Dialect, log};
use rehost_db::client::Replayed;
use rehost_db::client::mariadb::{InDatabase, Mariadb};
use rehost_db::client::psql::Psql;
use rehost_db::{ConnInfo, DbError, Sql};
use rehost_host::Host;
use std::io::BufRead;
use std::sync::atomic::AtomicBool;

/// Seconds a replayed statement may run (`statement_timeout`, `max_statement_time`).
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

fn answer(r: Result<Replayed, DbError>) -> Result<Answer, QueryError> {
    match r {
        Ok(Replayed::Rows { columns, rows }) => Ok(Answer { columns, rows }),
        Ok(Replayed::ServerError(e)) => Err(QueryError::Server(e)),
        Err(DbError::Cancelled) => Err(QueryError::Trouble("interrupted".into())),
        Err(e) => Err(QueryError::Trouble(e.to_string())),
    }
}

impl SqlSide for PsqlSide<'_> {
    fn describe(&self) -> String {
        self.psql.describe()
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    /// PostgreSQL's logs name no database ([`log::Database::NotTracked`]): the URL's.
    fn query(
        &self,
        statement: &str,
        write: bool,
        _database: &log::Database,
    ) -> Result<Answer, QueryError> {
        answer(self.psql.replay(statement, write, STATEMENT_TIMEOUT_S))
    }
}

/// A MariaDB (or MySQL) server reached by the mariadb client on `host`.
pub struct MariadbSide<'h> {
    client: Mariadb<'h>,
}

impl SqlSide for MariadbSide<'_> {
    fn describe(&self) -> String {
        self.client.describe()
    }

    fn dialect(&self) -> Dialect {
        Dialect::Mariadb
    }

    fn query(
        &self,
        statement: &str,
        write: bool,
        database: &log::Database,
    ) -> Result<Answer, QueryError> {
        let database = match database {
            log::Database::NotTracked | log::Database::Unknown => InDatabase::Own,
            log::Database::NoneSelected => InDatabase::NoneSelected,
            log::Database::Named(d) => InDatabase::Named(d),
        };
        answer(
            self.client
                .replay(statement, write, database, STATEMENT_TIMEOUT_S),
        )
    }
}

/// The side for `conn` on `host`, by its engine: psql for PostgreSQL, the mariadb client for
/// MariaDB and MySQL.
pub fn side<'h>(
    host: &'h dyn Host,
    show_host: bool,
    conn: ConnInfo,
    cancel: &'h AtomicBool,
) -> Result<Box<dyn SqlSide + 'h>, String> {
    match conn.engine() {
        rehost_plan::Engine::Postgres => {
            Ok(Box::new(PsqlSide::new(host, show_host, conn, cancel)?))
        }
        rehost_plan::Engine::Mysql => Ok(Box::new(MariadbSide {
            client: Mariadb::new(host, show_host, conn, cancel),
        })),
        _ => Err(format!(
            "{conn}: replay-sql replays against PostgreSQL and MariaDB/MySQL servers only"
        )),
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
    let dialect = format.dialect();
    for (which, side) in [("old", old), ("new", new)] {
        if side.dialect() != dialect {
            return Err(format!(
                "the log is a {} log ({}), the {which} server {} is {}: replay a log against servers of its own kind",
                dialect.name(),
                format.name(),
                side.describe(),
                side.dialect().name()
            ));
        }
    }
    let opts = &sql::Options {
        dialect,
        ..opts.clone()
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
