//! Database verification for rehost: what a database holds, as typed data, and the proof that
//! a copy holds the same.
//!
//! - [`Inventory`]: the schema objects, per-table row counts and content checksums (whole and
//!   per key slice), sequences with their values, the database's encoding and collation.
//! - [`compare()`]: two inventories → typed [`Finding`]s (pure), with the rules for what a
//!   major-version upgrade changes by design ([`normalize`]).
//! - [`compare_rows`]: the rows of one slice on both sides → missing, extra and changed rows by
//!   key (pure).
//! - [`driver`]: the verification passes for every engine, over a [`driver::Dialect`] that
//!   supplies the engine's SQL, run through any [`Sql`] session. Only digests cross the
//!   network: the sums are computed inside the server.
//! - [`client`]: the one module that does IO, and only through the `rehost_host::Host` trait:
//!   `psql`, `mariadb` and `sqlite3` run on the host that can reach the server, as [`Sql`]
//!   sessions ([`connect`]). Everything else here is pure and tested without a server.
//! - [`postgres`], [`mysql`] and [`sqlite`]: the dialects and `--exercise` of PostgreSQL
//!   ([`exercise()`]), MariaDB/MySQL and SQLite; [`verify_engine`] and [`exercise_engine`] pick
//!   by the URL's [`Engine`].
//! - [`ConnInfo`]: a database's location, typed and parsed once — from a URL on the command
//!   line or from a plan's database ([`ConnInfo::of`]) — whose password is never displayed;
//!   [`Engine`] is the plan's own type (`rehost_plan::Engine`).

pub mod activity;
pub mod client;
mod compare;
mod conn;
pub mod driver;
#[cfg(test)]
mod engine_tests;
mod error;
pub mod exercise;
mod model;
pub mod mysql;
pub mod normalize;
pub mod postgres;
mod report;
pub mod sqlite;
#[cfg(test)]
mod tests;

pub use client::{connect, connect_for_exercise};
pub use compare::{compare, compare_rows};
pub use conn::{ConnInfo, Engine, MysqlTarget, Secret, Target, redact, split_host};
pub use error::DbError;
pub use exercise::{ExerciseReport, Operation, TableExercise, Unchanged, exercise};
pub use model::{
    Column, Content, Inventory, ObjectKind, SchemaObject, Sequence, Slice, SliceSum, Table,
};
pub use postgres::{VerifyOptions, verify};
pub use report::{Class, EXIT_DIFFERENT, EXIT_EQUAL, EXIT_TROUBLE, Finding, Report};

/// Verifies `b` against `a`, both of `engine`.
pub fn verify_engine(
    engine: Engine,
    a: &dyn Sql,
    b: &dyn Sql,
    opts: &VerifyOptions,
) -> Result<Report, DbError> {
    match engine {
        Engine::Postgres => driver::verify(&postgres::Postgres, a, b, opts),
        Engine::Mysql => driver::verify(&mysql::Mysql, a, b, opts),
        Engine::Sqlite => driver::verify(&sqlite::Sqlite, a, b, opts),
    }
}

/// Exercises a database of `engine` (`--exercise`), between two checksums of the whole
/// database that prove whether it was left unchanged ([`exercise::checked`]).
pub fn exercise_engine(
    engine: Engine,
    sql: &dyn Sql,
    tables: &[String],
) -> Result<ExerciseReport, DbError> {
    exercise::checked(engine, sql, tables)
}

/// A session with a database server: statements run in order on one connection, and every
/// row of every result comes back as one line of text (the SQL here makes each row one JSON
/// value, so a line never holds a raw newline). Implemented over the clients on a host by
/// [`client`]; tests may implement it over anything.
pub trait Sql: Sync {
    fn run(&self, statements: &[String]) -> Result<Vec<String>, DbError>;
    /// As [`Sql::run`], each line of the answer handed to `on_line` as the client prints it
    /// (psql prints each statement's result once it completed), so a caller sees the results
    /// of the statements that ran before a stop or a failure. The default hands them over
    /// when the client ended.
    fn stream(&self, statements: &[String], on_line: &mut dyn FnMut(&str)) -> Result<(), DbError> {
        for l in self.run(statements)? {
            on_line(&l);
        }
        Ok(())
    }
    /// What this session connects to, for messages (never with a password).
    fn describe(&self) -> String;
}
