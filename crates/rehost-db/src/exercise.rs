//! `--exercise`: shows that a server handles the existing data, not only holds it. Per table,
//! in one transaction that is always rolled back: read rows through every index (sequential
//! scans and sorts disabled, and the plan checked to name the index), update an existing row
//! to a changed value, insert a new row built from an existing one (new values for unique
//! columns, defaults where the table has them). Each operation runs in a PL/pgSQL exception
//! block, so a failure is reported with the server's exact message and the rest still runs.
//!
//! A rollback does not undo everything: sequences are not transactional (PostgreSQL), nor are
//! MariaDB's MyISAM, Aria, MEMORY, CSV and ARCHIVE tables. The insert therefore gives columns
//! fed by a sequence a value of its own (PostgreSQL: `max + 1`, `OVERRIDING SYSTEM VALUE` for
//! identity columns) so that no sequence is advanced; a sequence a trigger advanced anyway is
//! set back where the login may. And [`checked`] proves the result: it checksums the whole
//! database (every table's rows and content checksum, every sequence's value, the schema)
//! before and after the exercise, and the report says "unchanged" only when the two are equal;
//! otherwise each difference is a finding naming the table or sequence ([`Unchanged`]).

use crate::driver::Dialect;
use crate::model::Inventory;
use crate::postgres::{SESSION, literal, parse};
use crate::report::{Class, Finding};
use crate::{DbError, Engine, Sql};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::{self, Write};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    Failed,
    /// Not tried: nothing to try it on (an empty table), or an index the planner will not use
    /// for a plain ordered read (GIN, GiST, BRIN…).
    Skipped,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// `read through index public.t_pkey`, `update column c`, `insert`.
    pub what: String,
    pub status: Status,
    /// What was read or changed, or the server's error (`SQLSTATE message`).
    pub detail: String,
}

impl Operation {
    pub(crate) fn new(what: impl Into<String>, status: Status, detail: impl Into<String>) -> Self {
        Operation {
            what: what.into(),
            status,
            detail: detail.into(),
        }
    }

    /// A statement that ran or failed on the server: `ok` says what it did; a query error is
    /// the operation's failure, any other error (the client, the connection) ends the exercise.
    pub(crate) fn ran<T>(
        what: String,
        result: Result<T, DbError>,
        ok: impl FnOnce(T) -> Operation,
    ) -> Result<Operation, DbError> {
        match result {
            Ok(v) => Ok(ok(v)),
            Err(DbError::Query { message, .. }) => {
                Ok(Operation::new(what, Status::Failed, message))
            }
            Err(e) => Err(e),
        }
    }

    /// A change tried in a rolled-back transaction (the MariaDB and SQLite exercises): the
    /// rows it changed, or the server's error.
    pub(crate) fn changed(what: String, result: Result<i64, String>, verb: &str) -> Self {
        match result {
            Ok(n) => Operation::new(what, Status::Ok, format!("{n} row {verb}")),
            Err(e) => Operation::new(what, Status::Failed, e),
        }
    }

    /// The insert of the MariaDB and SQLite exercises: from defaults into an empty table, else
    /// from an existing row.
    pub(crate) fn inserted(result: Result<i64, String>, empty: bool) -> Self {
        let from = if empty {
            "from defaults"
        } else {
            "from an existing row, unique columns fresh"
        };
        Operation::changed(
            "insert a new row".into(),
            result,
            &format!("inserted ({from})"),
        )
    }
}

/// Runs `statements` (a transaction that ends in a rollback and, before it, answers
/// `["changes", n]`): the rows changed, or the server's error as `clean` words it.
pub(crate) fn rolled_back(
    sql: &dyn Sql,
    statements: &[String],
    clean: impl FnOnce(&str) -> String,
) -> Result<Result<i64, String>, DbError> {
    match sql.run(statements) {
        Ok(lines) => Ok(Ok(lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v[0] == "changes")
            .and_then(|v| {
                v[1].as_i64()
                    .or_else(|| v[1].as_str().and_then(|x| x.parse().ok()))
            })
            .unwrap_or(0))),
        Err(DbError::Query { message, .. }) => Ok(Err(clean(&message))),
        Err(e) => Err(e),
    }
}

/// Checks that every table `--table` names is among `names`.
pub(crate) fn check_tables<'a>(
    sql: &dyn Sql,
    names: impl Iterator<Item = &'a String> + Clone,
    tables: &[String],
) -> Result<(), DbError> {
    for t in tables {
        if !names
            .clone()
            .any(|n| crate::driver::wanted(n, std::slice::from_ref(t)))
        {
            return Err(DbError::Query {
                target: sql.describe(),
                message: format!("no table `{t}`"),
            });
        }
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableExercise {
    pub table: String,
    pub operations: Vec<Operation>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExerciseReport {
    /// `MariaDB`, `SQLite`; empty for PostgreSQL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub engine: String,
    pub target: String,
    pub server_version: String,
    pub tables: Vec<TableExercise>,
    /// The check that the exercise left nothing behind (`None` only in reports written before
    /// there was one: nothing was proved).
    #[serde(default)]
    pub unchanged: Option<Unchanged>,
}

/// What "unchanged" rests on: the database's checksum before and after the exercise.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unchanged {
    /// The check, in words: what was checksummed and compared.
    pub check: String,
    /// What was checksummed: tables (with their rows, before) and sequences.
    pub tables: usize,
    pub rows: u64,
    pub sequences: usize,
    /// BLAKE3 of the checksummed inventory (schema, per-table row counts and content
    /// checksums, sequence values), before and after.
    pub before: String,
    pub after: String,
    /// The two are equal.
    pub equal: bool,
    /// Each difference: the table, sequence or object the exercise left changed.
    pub findings: Vec<Finding>,
    /// What the check does not cover.
    pub not_covered: Vec<String>,
}

/// The words of [`Unchanged::check`].
const CHECK: &str = "every table's row count and content checksum, every sequence's value and the schema of the whole database, taken before and after the exercise and compared";

fn digest(inv: &Inventory) -> String {
    let mut inv = inv.clone();
    inv.objects.sort();
    let text = serde_json::to_string(&inv).unwrap_or_default();
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

impl Unchanged {
    /// Compares the checksum taken `before` the exercise with the one `after`.
    pub(crate) fn compare(before: &Inventory, after: &Inventory, not_covered: Vec<String>) -> Self {
        let c = crate::compare(before, after);
        let findings: Vec<Finding> = c
            .findings
            .into_iter()
            .map(|mut f| {
                if f.class == Class::Content {
                    // Both sides are whole-table sums here: the rows are gone, not unlocatable.
                    let sum = |t: Option<&crate::Table>| {
                        t.and_then(|t| t.content.as_ref())
                            .map(|c| format!("checksum {}", c.checksum))
                    };
                    f.old = sum(before.tables.get(&f.name));
                    f.new = sum(after.tables.get(&f.name));
                }
                f
            })
            .collect();
        let (b, a) = (digest(before), digest(after));
        let mut findings = findings;
        if findings.is_empty() && a != b {
            // Nothing the comparison names, yet not the same bytes: still not unchanged.
            findings.push(
                Finding::new(
                    Class::Changed,
                    crate::ObjectKind::Database,
                    before.database.clone(),
                )
                .values(
                    Some(format!("inventory blake3 {b}")),
                    Some(format!(
                        "inventory blake3 {a} (a difference the comparison treats as a spelling)"
                    )),
                ),
            );
        }
        Unchanged {
            check: CHECK.into(),
            tables: before.tables.len(),
            rows: before
                .tables
                .values()
                .filter_map(|t| t.content.as_ref().map(|c| c.rows))
                .sum(),
            sequences: before.sequences.len(),
            equal: findings.is_empty() && a == b,
            before: b,
            after: a,
            findings,
            not_covered,
        }
    }
}

/// The exercise of `engine`'s database through `sql`, between two checksums of the whole
/// database ([`Unchanged`]). The first checksum failing ends it before anything is changed.
pub fn checked(
    engine: Engine,
    sql: &dyn Sql,
    tables: &[String],
) -> Result<ExerciseReport, DbError> {
    let (d, not_covered): (&dyn Dialect, Vec<String>) = match engine {
        Engine::Postgres => (
            &crate::postgres::Postgres,
            vec!["other databases of the cluster (a PostgreSQL transaction cannot write to them, except through extensions such as dblink)".into()],
        ),
        Engine::Mysql => (
            &crate::mysql::Mysql,
            vec![
                "tables of other databases on the server that a trigger or routine writes to".into(),
                "tables this login has no privilege on (MariaDB does not show them to it)".into(),
            ],
        ),
        Engine::Sqlite => (
            &crate::sqlite::Sqlite,
            vec!["other database files (ATTACH)".into()],
        ),
    };
    let failed = |when: &str, e: DbError| match e {
        DbError::Query { target, message } | DbError::Answer { target, message } => {
            DbError::Query {
                target,
                message: format!(
                    "{message} (while taking the checksum {when} the exercise; the exercise's login must be able to read every table and sequence of the database, or nothing can be said about what the exercise left behind)"
                ),
            }
        }
        e => e,
    };
    let before = crate::driver::checksum(d, sql).map_err(|e| failed("before", e))?;
    let mut report = match engine {
        Engine::Postgres => exercise(sql, tables),
        Engine::Mysql => crate::mysql::exercise(sql, tables),
        Engine::Sqlite => crate::sqlite::exercise(sql, tables),
    }?;
    let after = crate::driver::checksum(d, sql).map_err(|e| failed("after", e))?;
    report.unchanged = Some(Unchanged::compare(&before, &after, not_covered));
    Ok(report)
}

impl ExerciseReport {
    pub fn failed(&self) -> usize {
        self.tables
            .iter()
            .flat_map(|t| &t.operations)
            .filter(|o| o.status == Status::Failed)
            .count()
    }
    /// The checksum after the exercise equals the one before.
    pub fn unchanged(&self) -> bool {
        self.unchanged.as_ref().is_some_and(|u| u.equal)
    }
    pub fn exit_code(&self) -> i32 {
        if self.failed() == 0 && self.unchanged() {
            crate::EXIT_EQUAL
        } else {
            crate::EXIT_DIFFERENT
        }
    }
    /// One line: what was exercised, what failed, and whether the database is unchanged.
    pub fn summary(&self) -> String {
        let ops: usize = self.tables.iter().map(|t| t.operations.len()).sum();
        let skipped = self
            .tables
            .iter()
            .flat_map(|t| &t.operations)
            .filter(|o| o.status == Status::Skipped)
            .count();
        let left = match &self.unchanged {
            Some(u) if u.equal => format!(
                "the database is unchanged (checksum of {} tables, {} rows, {} sequences equal before and after)",
                u.tables, u.rows, u.sequences
            ),
            Some(u) => format!(
                "the exercise LEFT CHANGES BEHIND: {} finding(s) between the checksums before and after",
                u.findings.len().max(1)
            ),
            None => "whether the database is unchanged was not checked".into(),
        };
        format!(
            "{} tables, {ops} operations, {} failed, {skipped} skipped; {left}",
            self.tables.len(),
            self.failed()
        )
    }
    pub fn render_human(&self, w: &mut dyn Write) -> io::Result<()> {
        use rehost_tree::escape::text as escape;
        writeln!(
            w,
            "exercised {} ({} {}); each change in a transaction that was rolled back",
            escape(&self.target),
            crate::report::engine_name(&self.engine),
            escape(&self.server_version)
        )?;
        for t in &self.tables {
            writeln!(w, "table {}", escape(&t.table))?;
            for o in &t.operations {
                let st = match o.status {
                    Status::Ok => "ok",
                    Status::Failed => "FAILED",
                    Status::Skipped => "skipped",
                };
                writeln!(w, "  {st:<7} {}: {}", escape(&o.what), escape(&o.detail))?;
            }
        }
        match &self.unchanged {
            Some(u) => {
                writeln!(
                    w,
                    "{}: {} ({} tables, {} rows, {} sequences); blake3 before {}, after {}",
                    if u.equal { "unchanged" } else { "CHANGED" },
                    u.check,
                    u.tables,
                    u.rows,
                    u.sequences,
                    &u.before[..u.before.len().min(16)],
                    &u.after[..u.after.len().min(16)]
                )?;
                for f in &u.findings {
                    let mut line = format!(
                        "  left behind: {} {} ({})",
                        f.kind.name(),
                        escape(&f.name),
                        f.class.name()
                    );
                    if let (Some(o), Some(n)) = (&f.old, &f.new) {
                        line.push_str(&format!(": before {} | after {}", escape(o), escape(n)));
                    }
                    writeln!(w, "{line}")?;
                }
                for n in &u.not_covered {
                    writeln!(w, "  not covered: {}", escape(n))?;
                }
            }
            None => writeln!(w, "not checked: whether the exercise left anything behind")?,
        }
        writeln!(w, "{}", self.summary())
    }
    pub fn render_json(&self, w: &mut dyn Write) -> io::Result<()> {
        let mut doc = serde_json::to_value(self).map_err(io::Error::other)?;
        doc["summary"] = self.summary().into();
        serde_json::to_writer_pretty(&mut *w, &doc).map_err(io::Error::other)?;
        writeln!(w)
    }
}

const TABLES: &str = "SELECT json_build_array(c.oid::regclass::text, \
  (SELECT json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod), t.typcategory, \
     a.attnotnull, a.atthasdef, a.attidentity, a.attgenerated, \
     EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND a.attnum = ANY(i.indkey)), \
     t.typname, \
     coalesce((SELECT pg_get_expr(ad.adbin, ad.adrelid) LIKE '%nextval(%' FROM pg_attrdef ad \
       WHERE ad.adrelid = c.oid AND ad.adnum = a.attnum), false)) ORDER BY a.attnum) \
   FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), \
  (SELECT coalesce(json_agg(json_build_array(ic.relname, am.amname, \
     (SELECT json_agg(pg_get_indexdef(i.indexrelid, k, true) ORDER BY k) FROM generate_series(1, i.indnkeyatts) k), \
     pg_get_expr(i.indpred, i.indrelid)) ORDER BY ic.relname), '[]') \
   FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam \
   WHERE i.indrelid = c.oid), \
  (SELECT coalesce(json_agg(json_build_array(d.objid::regclass::text, pg_sequence_last_value(d.objid), sq.seqstart)), '[]') \
   FROM pg_depend d JOIN pg_sequence sq ON sq.seqrelid = d.objid \
   WHERE d.refobjid = c.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')), \
  current_setting('server_version'))::text \
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
  WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
  AND n.nspname NOT LIKE 'pg\\_%' \
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e') \
  ORDER BY 1";

const TRY: &str = "CREATE FUNCTION pg_temp.rehost_try(q text) RETURNS text LANGUAGE plpgsql AS $f$ \
  DECLARE r text; BEGIN EXECUTE q INTO r; RETURN json_build_array('ok', r)::text; \
  EXCEPTION WHEN OTHERS THEN RETURN json_build_array('error', SQLSTATE || ' ' || SQLERRM)::text; END $f$";

struct Col {
    name: String,
    ty: String,
    category: String,
    not_null: bool,
    has_default: bool,
    identity: String,
    generated: String,
    unique: bool,
    typname: String,
    /// Its default takes the next value of a sequence (`serial`, `DEFAULT nextval(…)`).
    from_sequence: bool,
}

fn ident(s: &str) -> String {
    crate::postgres::ident(s)
}

/// A changed value for an update, by type; `None` when the type has no obvious change.
fn changed(c: &Col) -> Option<String> {
    let x = ident(&c.name);
    Some(match c.category.as_str() {
        "N" => format!("{x} + 1"),
        "S" => format!(
            "CASE WHEN {x} IS NULL OR {x} = '' THEN 'x' ELSE overlay({x} placing CASE WHEN left({x}, 1) = 'x' THEN 'y' ELSE 'x' END from 1 for 1) END"
        ),
        "B" => format!("NOT coalesce({x}, false)"),
        "D" => format!("{x} + interval '1 day'"),
        _ if c.typname == "bytea" => format!("coalesce({x}, ''::bytea) || '\\x00'::bytea"),
        _ if c.typname == "jsonb" => {
            format!("coalesce({x}, '{{}}'::jsonb) || '{{\"rehost\": 1}}'::jsonb")
        }
        _ => return None,
    })
}

/// A value for a unique column in a new row (that the table does not hold yet).
fn fresh(c: &Col, table: &str) -> String {
    let x = ident(&c.name);
    match (c.category.as_str(), c.typname.as_str()) {
        ("N", _) => format!("(SELECT coalesce(max({x}), 0) + 1 FROM {table})"),
        // Random hex of the template row's length (so a `varchar(n)` takes it), drawn until
        // one the table does not hold: a short key ('c5') would otherwise collide with an
        // existing one often (2 hex digits: 256 values).
        ("S", _) => format!(
            "(SELECT c.v FROM (SELECT left(md5(random()::text || g::text), \
             greatest(1, coalesce(length(t.{x}), 32)))::{ty} AS v FROM generate_series(1, 4096) g) c \
             WHERE NOT EXISTS (SELECT 1 FROM ONLY {table} e WHERE e.{x} = c.v) LIMIT 1)",
            ty = c.ty
        ),
        (_, "uuid") => "gen_random_uuid()".into(),
        ("D", _) => format!(
            "(SELECT max({x}) + interval '1 day' FROM {table})::{}",
            c.ty
        ),
        _ => format!("t.{x}"),
    }
}

/// A value for a NOT NULL column without default when the table is empty.
fn zero(c: &Col) -> String {
    match (c.category.as_str(), c.typname.as_str()) {
        ("N", _) => format!("0::{}", c.ty),
        ("S", _) => format!("'x'::{}", c.ty),
        ("B", _) => "false".into(),
        ("D", _) => format!("now()::{}", c.ty),
        ("A", _) => format!("'{{}}'::{}", c.ty),
        (_, "json") | (_, "jsonb") => format!("'{{}}'::{}", c.ty),
        (_, "bytea") => "''::bytea".into(),
        (_, "uuid") => "gen_random_uuid()".into(),
        _ => "NULL".into(),
    }
}

enum Expect {
    Plan(String),
    Read(String),
    Update(String),
    Insert,
    Restore(String),
    Empty,
}

fn result(line: &Value) -> Result<Option<String>, String> {
    match line[0].as_str() {
        Some("ok") => Ok(line[1].as_str().map(str::to_owned)),
        _ => Err(line[1].as_str().unwrap_or("unknown error").to_owned()),
    }
}

/// Exercises the tables of the database (or those named).
pub fn exercise(sql: &dyn Sql, tables: &[String]) -> Result<ExerciseReport, DbError> {
    let mut stmts: Vec<String> = SESSION.iter().map(|s| s.to_string()).collect();
    stmts.push(TABLES.into());
    let lines = sql.run(&stmts)?;
    let mut report = ExerciseReport {
        target: sql.describe(),
        ..Default::default()
    };
    for t in tables {
        let known = lines.iter().any(|l| {
            parse(sql, l)
                .ok()
                .and_then(|v| v[0].as_str().map(|n| crate::postgres::wanted_pub(n, t)))
                .unwrap_or(false)
        });
        if !known {
            return Err(DbError::Query {
                target: sql.describe(),
                message: format!("no table `{t}`"),
            });
        }
    }
    for line in &lines {
        let v = parse(sql, line)?;
        let table = v[0].as_str().unwrap_or_default().to_owned();
        report.server_version = v[4].as_str().unwrap_or_default().to_owned();
        if !tables.is_empty()
            && !tables
                .iter()
                .any(|t| crate::postgres::wanted_pub(&table, t))
        {
            continue;
        }
        let cols: Vec<Col> = v[1]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|c| Col {
                name: c[0].as_str().unwrap_or_default().into(),
                ty: c[1].as_str().unwrap_or_default().into(),
                category: c[2].as_str().unwrap_or_default().into(),
                not_null: c[3].as_bool().unwrap_or(false),
                has_default: c[4].as_bool().unwrap_or(false),
                identity: c[5].as_str().unwrap_or_default().into(),
                generated: c[6].as_str().unwrap_or_default().into(),
                unique: c[7].as_bool().unwrap_or(false),
                typname: c[8].as_str().unwrap_or_default().into(),
                from_sequence: c[9].as_bool().unwrap_or(false),
            })
            .collect();
        let indexes = v[2].as_array().cloned().unwrap_or_default();
        let seqs = v[3].as_array().cloned().unwrap_or_default();
        report
            .tables
            .push(exercise_table(sql, &table, &cols, &indexes, &seqs)?);
    }
    Ok(report)
}

fn try_(q: &str) -> String {
    format!("SELECT pg_temp.rehost_try({})", literal(q))
}

fn exercise_table(
    sql: &dyn Sql,
    table: &str,
    cols: &[Col],
    indexes: &[Value],
    seqs: &[Value],
) -> Result<TableExercise, DbError> {
    let mut stmts: Vec<String> = SESSION.iter().map(|s| s.to_string()).collect();
    stmts.push("BEGIN".into());
    stmts.push(TRY.into());
    stmts.push(
        "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off".into(),
    );
    let mut expect = Vec::new();
    let mut ops = Vec::new();
    stmts.push(format!(
        "SELECT json_build_array('ok', (SELECT count(*) FROM (SELECT 1 FROM ONLY {table} LIMIT 1) s)::text)::text"
    ));
    expect.push(Expect::Empty);
    for ix in indexes {
        let name = ix[0].as_str().unwrap_or_default();
        let am = ix[1].as_str().unwrap_or_default();
        let keys: Vec<String> = ix[2]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|k| k.as_str().unwrap_or_default().to_owned())
            .collect();
        let pred = ix[3]
            .as_str()
            .map(|p| format!(" WHERE {p}"))
            .unwrap_or_default();
        let q = match am {
            "btree" => format!(
                "SELECT * FROM ONLY {table}{pred} ORDER BY {} LIMIT 1000",
                keys.join(", ")
            ),
            "hash" => format!(
                "SELECT * FROM ONLY {table} WHERE {k} = (SELECT {k} FROM ONLY {table} WHERE {k} IS NOT NULL LIMIT 1){}",
                ix[3]
                    .as_str()
                    .map(|p| format!(" AND {p}"))
                    .unwrap_or_default(),
                k = keys.first().cloned().unwrap_or_default()
            ),
            other => {
                ops.push(Operation {
                    what: format!("read through index {name}"),
                    status: Status::Skipped,
                    detail: format!(
                        "a {other} index serves operators, not plain reads; not exercised"
                    ),
                });
                continue;
            }
        };
        stmts.push(try_(&format!("EXPLAIN (FORMAT JSON) {q}")));
        expect.push(Expect::Plan(name.to_owned()));
        stmts.push(try_(&format!("SELECT count(*) FROM ({q}) s")));
        expect.push(Expect::Read(name.to_owned()));
    }
    // Update: a column that no key constraint holds, whose type has an obvious change.
    let target = cols
        .iter()
        .filter(|c| c.generated.is_empty() && !c.unique)
        .find(|c| changed(c).is_some());
    match target {
        Some(c) => {
            let q = format!(
                "WITH u AS (UPDATE ONLY {table} SET {x} = {v} WHERE ctid = (SELECT ctid FROM ONLY {table} LIMIT 1) RETURNING 1) SELECT count(*) FROM u",
                x = ident(&c.name),
                v = changed(c).unwrap_or_default()
            );
            stmts.push(try_(&q));
            expect.push(Expect::Update(c.name.clone()));
        }
        None => ops.push(Operation {
            what: "update".into(),
            status: Status::Skipped,
            detail: "no column outside the keys whose type rehost knows how to change".into(),
        }),
    }
    // Insert: built from an existing row, or from defaults and zero values when there is none.
    // Columns fed by a sequence (serial, identity, `DEFAULT nextval(…)`) get a value of their
    // own, so that the insert advances no sequence: a rollback would not set it back.
    let by_sequence = |c: &Col| !c.identity.is_empty() || c.from_sequence;
    let insertable: Vec<&Col> = cols
        .iter()
        .filter(|c| c.generated.is_empty())
        .filter(|c| !c.has_default || by_sequence(c))
        .collect();
    let overriding = if insertable.iter().any(|c| c.identity == "a") {
        " OVERRIDING SYSTEM VALUE"
    } else {
        ""
    };
    let names: Vec<String> = insertable.iter().map(|c| ident(&c.name)).collect();
    let from_row: Vec<String> = insertable
        .iter()
        .map(|c| {
            if c.unique {
                fresh(c, table)
            } else {
                format!("t.{}", ident(&c.name))
            }
        })
        .collect();
    let from_zero: Vec<String> = insertable
        .iter()
        .map(|c| {
            if c.not_null || c.unique || by_sequence(c) {
                zero(c)
            } else {
                "NULL".into()
            }
        })
        .collect();
    let q = if names.is_empty() {
        format!("WITH i AS (INSERT INTO {table} DEFAULT VALUES RETURNING 1) SELECT count(*) FROM i")
    } else {
        format!(
            "WITH i AS (INSERT INTO {table} ({n}){overriding} SELECT {r} FROM ONLY {table} t LIMIT 1 RETURNING 1), \
             j AS (INSERT INTO {table} ({n}){overriding} SELECT {z} WHERE NOT EXISTS (SELECT 1 FROM ONLY {table}) RETURNING 1) \
             SELECT (SELECT count(*) FROM i) + (SELECT count(*) FROM j)",
            n = names.join(", "),
            r = from_row.join(", "),
            z = from_zero.join(", ")
        )
    };
    stmts.push(try_(&q));
    expect.push(Expect::Insert);
    // Sequences are not transactional (so a `setval` here outlasts the rollback): set back one
    // of the table's own that a trigger or a default advanced anyway (only then: setting a sequence takes a privilege the
    // application's login need not have). The checksum after the exercise covers the others.
    for s in seqs {
        let name = s[0].as_str().unwrap_or_default();
        let before = s[1]
            .as_i64()
            .map_or_else(|| "NULL".to_owned(), |v| v.to_string());
        let set = match s[1].as_i64() {
            Some(v) => format!("setval({}, {v}, true)", literal(name)),
            None => format!(
                "setval({}, {}, false)",
                literal(name),
                s[2].as_i64().unwrap_or(1)
            ),
        };
        stmts.push(format!(
            "SELECT pg_temp.rehost_try({})",
            literal(&format!(
                "SELECT CASE WHEN pg_sequence_last_value({l}::regclass) IS DISTINCT FROM {before} \
                 THEN 'set back to ' || {set}::text END",
                l = literal(name)
            ))
        ));
        expect.push(Expect::Restore(name.to_owned()));
    }
    stmts.push("ROLLBACK".into());
    let lines = sql.run(&stmts)?;
    if lines.len() != expect.len() {
        return Err(DbError::Answer {
            target: sql.describe(),
            message: format!(
                "exercising {table}: {} answers for {} questions",
                lines.len(),
                expect.len()
            ),
        });
    }
    let mut empty = false;
    let mut plan_ok = std::collections::BTreeMap::new();
    for (e, line) in expect.iter().zip(&lines) {
        let v = parse(sql, line)?;
        let r = result(&v);
        match e {
            Expect::Empty => empty = r.ok().flatten().as_deref() == Some("0"),
            Expect::Plan(name) => {
                let used = match &r {
                    Ok(Some(plan)) => plan.contains(&format!("\"Index Name\": \"{name}\"")),
                    _ => false,
                };
                plan_ok.insert(name.clone(), (used, r.err()));
            }
            Expect::Read(name) => {
                let what = format!("read through index {name}");
                let (used, plan_err) = plan_ok.remove(name).unwrap_or((false, None));
                ops.push(match (r, plan_err) {
                    (Err(e), _) | (_, Some(e)) => Operation {
                        what,
                        status: Status::Failed,
                        detail: e,
                    },
                    (Ok(n), None) if used => Operation {
                        what,
                        status: Status::Ok,
                        detail: format!("{} rows read, by an index scan", n.unwrap_or_default()),
                    },
                    (Ok(n), None) => Operation {
                        what,
                        status: Status::Failed,
                        detail: format!(
                            "{} rows read, but the planner did not use the index",
                            n.unwrap_or_default()
                        ),
                    },
                });
            }
            Expect::Update(col) => {
                let what = format!("update column {col}");
                ops.push(match r {
                    Err(e) => Operation {
                        what,
                        status: Status::Failed,
                        detail: e,
                    },
                    Ok(_) if empty => Operation {
                        what,
                        status: Status::Skipped,
                        detail: "the table is empty".into(),
                    },
                    Ok(n) => Operation {
                        what,
                        status: Status::Ok,
                        detail: format!("{} row changed", n.unwrap_or_default()),
                    },
                });
            }
            Expect::Insert => {
                let what = "insert a new row".to_owned();
                ops.push(match r {
                    Err(e) => Operation {
                        what,
                        status: Status::Failed,
                        detail: e,
                    },
                    Ok(n) => Operation {
                        what,
                        status: Status::Ok,
                        detail: format!(
                            "{} row inserted ({})",
                            n.unwrap_or_default(),
                            if empty {
                                "from defaults: the table is empty"
                            } else {
                                "from an existing row, new values for unique columns"
                            }
                        ),
                    },
                });
            }
            Expect::Restore(name) => {
                let what = format!("set back sequence {name}");
                match r {
                    Err(e) => ops.push(Operation::new(what, Status::Failed, e)),
                    Ok(Some(set)) => ops.push(Operation::new(
                        what,
                        Status::Ok,
                        format!("the exercise advanced it despite the rollback; {set}"),
                    )),
                    Ok(None) => {}
                }
            }
        }
    }
    Ok(TableExercise {
        table: table.to_owned(),
        operations: ops,
    })
}
