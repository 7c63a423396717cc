//! SQLite: the SQL that reads a database file's inventory (`sqlite_schema`, `pragma_table_xinfo`,
//! `pragma_index_list`, `pragma_foreign_key_list`, `sqlite_sequence`) and sums its content, run
//! by the `sqlite3` shell on the host that holds the file (the shell brings `sha3()`), and the
//! `--exercise` for SQLite.
//!
//! A row's text is `quote()` of each column (in name order) joined by `,`: `quote` writes a
//! value with its type (`'a'`, `1`, `1.0`, `X'00'`, `NULL`) and escapes quotes, so
//! `('a','bc')` and `('ab','c')` differ and so do `1` and `'1'`. Its digest is the SHA3-256 of
//! that text; a slice's checksum is the row count and two sums of 32-bit parts of the digests
//! (`a:b`), which do not depend on row order. An `INTEGER PRIMARY KEY` (the rowid) is sliced by
//! range, other keys by a hash of the key's text.

use crate::driver::{self, Dialect, Extra, TablePlan, opt, parse, s};
use crate::exercise::{
    ExerciseReport, Operation, Status, TableExercise, check_tables, rolled_back,
};
use crate::model::*;
use crate::{DbError, Sql};
use serde_json::Value;

pub struct Sqlite;

/// What an SQLite verification does not compare (the report's scope; docs/db.md lists the
/// same).
pub const NOT_COMPARED: &[&str] = &[
    "accounts and privileges: SQLite has none (the file's owner and mode decide, and verify-tree compares those)",
    "rows of virtual tables (FTS and others): their definitions are compared, and their shadow tables as tables",
    "the query planner's statistics (sqlite_stat1 and the like)",
    "file settings other than the encoding, user_version and application_id (page_size, auto_vacuum, journal_mode)",
];

/// `"name"` as an SQL identifier.
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `'text'` as an SQL string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The 32-bit number written by hex digits `from..from+8` of `h` (upper-case hex).
fn hex32(h: &str, from: usize) -> String {
    let parts: Vec<String> = (0..8)
        .map(|i| {
            format!(
                "((instr('0123456789ABCDEF', substr({h}, {}, 1)) - 1) << {})",
                from + i,
                4 * (7 - i)
            )
        })
        .collect();
    format!("({})", parts.join(" + "))
}

const INVENTORY: &[&str] = &[
    "SELECT json_array('db', sqlite_version(), (SELECT * FROM pragma_encoding), \
     (SELECT * FROM pragma_user_version), (SELECT * FROM pragma_application_id))",
    "SELECT json_array('table', m.name, m.sql, \
     (SELECT json_group_array(json_array(p.name, p.type, p.\"notnull\", p.dflt_value, p.pk, p.hidden)) \
      FROM pragma_table_xinfo(m.name) p), \
     EXISTS (SELECT 1 FROM pragma_index_list(m.name) il WHERE il.origin = 'pk')) \
     FROM sqlite_schema m WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
     AND m.sql NOT LIKE 'CREATE VIRTUAL %'",
    "SELECT json_array('index', m.name, m.tbl_name, m.sql, \
     (SELECT json_group_array(json_array(x.name, x.desc, x.coll)) FROM pragma_index_xinfo(m.name) x WHERE x.key), \
     il.\"unique\", il.origin, il.partial) \
     FROM sqlite_schema m JOIN pragma_index_list(m.tbl_name) il ON il.name = m.name WHERE m.type = 'index'",
    "SELECT json_array(CASE m.type WHEN 'table' THEN 'vtable' ELSE m.type END, m.name, m.sql) FROM sqlite_schema m \
     WHERE m.type IN ('view', 'trigger') OR (m.type = 'table' AND m.sql LIKE 'CREATE VIRTUAL %')",
    "SELECT json_array('fk', m.name, f.id, f.\"table\", f.\"from\", f.\"to\", f.on_update, f.on_delete, f.match) \
     FROM sqlite_schema m JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table' ORDER BY m.name, f.id, f.seq",
    "SELECT json_array('has_sequence', count(*)) FROM sqlite_schema WHERE name = 'sqlite_sequence'",
];

fn read_inventory(sql: &dyn Sql) -> Result<(Inventory, Extra), DbError> {
    let stmts: Vec<String> = INVENTORY.iter().map(|s| s.to_string()).collect();
    let lines = sql.run(&stmts)?;
    let mut inv = Inventory {
        engine: "SQLite".into(),
        ..Default::default()
    };
    let mut extra = Extra::default();
    let mut has_sequence = false;
    // Foreign keys by (table, id): their columns in order.
    let mut fks: std::collections::BTreeMap<(String, i64), driver::KeyColumns> = Default::default();
    for line in &lines {
        let v = parse(sql, line)?;
        let get = |i: usize| v.get(i).cloned().unwrap_or(Value::Null);
        match s(&get(0)).as_str() {
            "db" => {
                inv.server_version = s(&get(1));
                inv.encoding = s(&get(2));
                inv.database = sql.describe();
                for (i, what) in [(3, "user_version"), (4, "application_id")] {
                    inv.objects.push(SchemaObject {
                        kind: ObjectKind::Database,
                        name: what.into(),
                        definition: s(&get(i)),
                    });
                }
            }
            "table" => {
                let name = s(&get(1));
                let cols = get(3).as_array().cloned().unwrap_or_default();
                let mut columns = Vec::new();
                let mut pk: Vec<(i64, String, String)> = Vec::new();
                let mut types = std::collections::BTreeMap::new();
                for c in &cols {
                    let cname = s(&c[0]);
                    let ty = s(&c[1]);
                    let hidden = c[5].as_i64().unwrap_or(0);
                    if hidden == 1 {
                        // A virtual table's hidden column.
                        continue;
                    }
                    if let Some(n) = c[4].as_i64().filter(|n| *n > 0) {
                        pk.push((n, cname.clone(), ty.clone()));
                    }
                    let mut data_type = ty.clone();
                    if hidden >= 2 {
                        data_type.push_str(" GENERATED");
                    }
                    types.insert(cname.clone(), ty);
                    columns.push(Column {
                        name: cname,
                        data_type,
                        not_null: c[2].as_i64().unwrap_or(0) != 0,
                        default: opt(&c[3]),
                        collation: None,
                    });
                }
                pk.sort();
                let separate_pk_index = get(4).as_i64().unwrap_or(0) != 0;
                // The rowid itself: an INTEGER PRIMARY KEY of a rowid table.
                let rowid =
                    pk.len() == 1 && pk[0].2.eq_ignore_ascii_case("integer") && !separate_pk_index;
                extra.int_key.insert(name.clone(), rowid);
                extra.column_types.insert(name.clone(), types);
                inv.objects.push(SchemaObject {
                    kind: ObjectKind::Table,
                    name: name.clone(),
                    definition: s(&get(2)),
                });
                inv.tables.insert(
                    name,
                    Table {
                        columns,
                        primary_key: pk.into_iter().map(|p| p.1).collect(),
                        content: None,
                    },
                );
            }
            "index" => {
                let name = s(&get(1));
                let definition = match opt(&get(3)) {
                    Some(sql) => sql,
                    None => {
                        let cols: Vec<String> = get(4)
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                            .iter()
                            .map(|c| s(&c[0]))
                            .collect();
                        let what = if s(&get(6)) == "pk" {
                            "PRIMARY KEY"
                        } else {
                            "UNIQUE"
                        };
                        format!("{what} ON {} ({})", s(&get(2)), cols.join(", "))
                    }
                };
                inv.objects.push(SchemaObject {
                    kind: ObjectKind::Index,
                    name,
                    definition,
                });
            }
            kind @ ("view" | "trigger" | "vtable") => {
                inv.objects.push(SchemaObject {
                    kind: match kind {
                        "view" => ObjectKind::View,
                        "trigger" => ObjectKind::Trigger,
                        _ => ObjectKind::Table,
                    },
                    name: s(&get(1)),
                    definition: s(&get(2)),
                });
            }
            "fk" => {
                let key = (s(&get(1)), get(2).as_i64().unwrap_or(0));
                let e = fks.entry(key).or_insert_with(|| {
                    (
                        Vec::new(),
                        Vec::new(),
                        format!(
                            "REFERENCES {} ON UPDATE {} ON DELETE {} MATCH {}",
                            s(&get(3)),
                            s(&get(6)),
                            s(&get(7)),
                            s(&get(8))
                        ),
                    )
                });
                e.0.push(s(&get(4)));
                e.1.push(opt(&get(5)).unwrap_or_else(|| "(its primary key)".into()));
            }
            "has_sequence" => has_sequence = get(1).as_i64().unwrap_or(0) > 0,
            other => {
                return Err(DbError::Answer {
                    target: sql.describe(),
                    message: format!("unknown catalog row `{other}`"),
                });
            }
        }
    }
    for ((table, _), (from, to, rest)) in fks {
        inv.objects.push(SchemaObject {
            kind: ObjectKind::Constraint,
            name: format!("{table}.foreign key ({})", from.join(", ")),
            definition: format!("({}) {rest}", to.join(", ")),
        });
    }
    // Row counts (SQLite has no estimate worth the name; counting walks the smallest index)
    // and AUTOINCREMENT counters.
    let mut stmts: Vec<String> = inv
        .tables
        .keys()
        .map(|t| {
            format!(
                "SELECT json_array('count', {}, count(*)) FROM {}",
                literal(t),
                ident(t)
            )
        })
        .collect();
    if has_sequence {
        stmts.push("SELECT json_array('sequence', name, seq) FROM sqlite_sequence".into());
    }
    if !stmts.is_empty() {
        for line in sql.run(&stmts)? {
            let v = parse(sql, &line)?;
            match v[0].as_str() {
                Some("count") => {
                    extra
                        .estimates
                        .insert(s(&v[1]), v[2].as_i64().unwrap_or(-1));
                }
                Some("sequence") => {
                    inv.sequences.insert(
                        s(&v[1]),
                        Sequence {
                            last_value: v[2].as_i64(),
                            data_type: "AUTOINCREMENT".into(),
                            increment: 1,
                        },
                    );
                }
                _ => {}
            }
        }
    }
    inv.objects.sort();
    Ok((inv, extra))
}

impl Sqlite {
    fn row_text(&self, plan: &TablePlan) -> String {
        if plan.columns.is_empty() {
            return "''".into();
        }
        let cols: Vec<String> = plan
            .columns
            .iter()
            .map(|c| format!("quote(t.{})", ident(&c.name)))
            .collect();
        cols.join(" || ',' || ")
    }
    fn key_text(&self, plan: &TablePlan) -> String {
        let cols: Vec<String> = plan
            .key
            .iter()
            .map(|c| format!("quote(t.{})", ident(c)))
            .collect();
        cols.join(" || ',' || ")
    }
}

impl Dialect for Sqlite {
    fn engine(&self) -> &'static str {
        "SQLite"
    }
    fn not_compared(&self) -> Vec<String> {
        NOT_COMPARED.iter().map(|s| s.to_string()).collect()
    }
    fn session(&self) -> Vec<String> {
        Vec::new()
    }
    fn read_inventory(&self, sql: &dyn Sql) -> Result<(Inventory, Extra), DbError> {
        read_inventory(sql)
    }
    fn from(&self, plan: &TablePlan) -> String {
        format!("FROM {} t", ident(&plan.table))
    }
    fn key_expr(&self, plan: &TablePlan) -> String {
        format!("t.{}", ident(&plan.key[0]))
    }
    fn key_hash(&self, plan: &TablePlan) -> String {
        // 28 bits of the SHA3 of the key's text.
        let h = format!("hex(sha3({}))", self.key_text(plan));
        let parts: Vec<String> = (0..7)
            .map(|i| {
                format!(
                    "((instr('0123456789ABCDEF', substr({h}, {}, 1)) - 1) << {})",
                    i + 1,
                    4 * (6 - i)
                )
            })
            .collect();
        format!("({})", parts.join(" + "))
    }
    fn range_bucket(&self, plan: &TablePlan, lo: i64, width: i64, wide: bool) -> String {
        if wide {
            format!(
                "CAST((CAST({} AS REAL) - ({lo})) / {width} AS INTEGER)",
                self.key_expr(plan)
            )
        } else {
            format!("({} - ({lo})) / {width}", self.key_expr(plan))
        }
    }
    fn sums_query(&self, plan: &TablePlan, bucket: &str, filter: &str) -> String {
        // LIMIT -1 keeps the inner query from being flattened into the aggregate, so the digest
        // is computed once per row, not once per hex digit.
        format!(
            "SELECT json_array(b, count(*), coalesce(sum({h1}), 0) || ':' || coalesce(sum({h2}), 0)) \
             FROM (SELECT {bucket} AS b, hex(sha3({row})) AS h {from} WHERE {filter} LIMIT -1) GROUP BY b",
            h1 = hex32("h", 1),
            h2 = hex32("h", 9),
            row = self.row_text(plan),
            from = self.from(plan),
        )
    }
    fn rows_query(&self, plan: &TablePlan, filter: &str) -> String {
        let keys: Vec<String> = plan
            .key
            .iter()
            .map(|c| {
                let k = format!("t.{}", ident(c));
                format!(
                    "CASE typeof({k}) WHEN 'blob' THEN 'X''' || hex({k}) || '''' ELSE CAST({k} AS TEXT) END"
                )
            })
            .collect();
        format!(
            "SELECT json_array(json_array({}), hex(sha3({}))) {} WHERE {filter}",
            keys.join(", "),
            self.row_text(plan),
            self.from(plan)
        )
    }
}

/// One operation of the exercise, in its own `sqlite3` run: `BEGIN`, the statement, its
/// answer, `ROLLBACK`. A failing statement ends the run (the shell's `-bail`) and the
/// transaction with it, so nothing is ever committed.
fn attempt(sql: &dyn Sql, statement: &str) -> Result<Result<i64, String>, DbError> {
    let stmts = vec![
        "BEGIN".to_owned(),
        statement.to_owned(),
        "SELECT json_array('changes', changes())".to_owned(),
        "ROLLBACK".to_owned(),
    ];
    rolled_back(sql, &stmts, str::to_owned)
}

/// A declared type (upper case) that SQLite gives a numeric affinity, or that names a number.
fn numeric(t: &str) -> bool {
    ["INT", "REAL", "FLOA", "DOUB", "NUM", "DEC"]
        .iter()
        .any(|x| t.contains(x))
}

/// A changed value for an update by the column's declared type (SQLite's affinity rules);
/// `None` when rehost knows no obvious change.
fn changed(col: &str, ty: &str) -> String {
    let x = format!("t0.{}", ident(col));
    let t = ty.to_ascii_uppercase();
    if numeric(&t) {
        format!("CASE WHEN typeof({x}) IN ('integer', 'real') THEN {x} + 1 ELSE 1 END")
    } else if t.contains("BLOB") || t.is_empty() {
        format!(
            "CASE WHEN typeof({x}) = 'blob' THEN randomblob(length({x}) + 1) ELSE 'x' || coalesce({x}, '') END"
        )
    } else {
        format!(
            "CASE WHEN {x} IS NULL OR {x} = '' THEN 'x' WHEN substr({x}, 1, 1) = 'x' THEN 'y' || substr({x}, 2) ELSE 'x' || substr({x}, 2) END"
        )
    }
}

/// A value a unique column does not hold yet.
fn fresh(col: &str, ty: &str, table: &str) -> String {
    let x = ident(col);
    let t = ty.to_ascii_uppercase();
    if numeric(&t) {
        format!("(SELECT coalesce(max({x}), 0) + 1 FROM {})", ident(table))
    } else if t.contains("BLOB") {
        "randomblob(16)".into()
    } else {
        "'rehost-' || lower(hex(randomblob(8)))".into()
    }
}

/// `--exercise` for SQLite: per table, each operation in its own transaction that is rolled
/// back: read through every index (`INDEXED BY`, which fails when the index cannot serve the
/// read), update one row's first column outside every key, insert a row built from an existing
/// one (fresh values for unique columns, the rowid and `AUTOINCREMENT` from the table).
pub fn exercise(sql: &dyn Sql, tables: &[String]) -> Result<ExerciseReport, DbError> {
    let (inv, extra) = read_inventory(sql)?;
    check_tables(sql, inv.tables.keys(), tables)?;
    let mut report = ExerciseReport {
        engine: "SQLite".into(),
        target: sql.describe(),
        server_version: inv.server_version.clone(),
        ..Default::default()
    };
    // Unique columns: single-column unique indexes (and the primary key).
    let mut unique: std::collections::BTreeSet<(String, String)> = Default::default();
    let idx_lines = sql.run(&[INVENTORY[2].to_owned()])?;
    let mut indexes: Vec<Value> = Vec::new();
    for line in &idx_lines {
        let v = parse(sql, line)?;
        let cols = v[4].as_array().cloned().unwrap_or_default();
        if v[5].as_i64() == Some(1) && cols.len() == 1 {
            unique.insert((s(&v[2]), s(&cols[0][0])));
        }
        indexes.push(v);
    }
    for (table, t) in &inv.tables {
        if !driver::wanted(table, tables) {
            continue;
        }
        let types = extra.column_types.get(table).cloned().unwrap_or_default();
        let rowid = extra.int_key.get(table).copied().unwrap_or(false);
        let tq = ident(table);
        let mut ops = Vec::new();
        let empty = sql
            .run(&[format!(
                "SELECT json_array(NOT EXISTS (SELECT 1 FROM {tq}))"
            )])?
            .first()
            .is_some_and(|l| l.contains("1"));
        for ix in indexes.iter().filter(|ix| s(&ix[2]) == *table) {
            let name = s(&ix[1]);
            let cols = ix[4].as_array().cloned().unwrap_or_default();
            let what = format!("read through index {name}");
            if cols.iter().any(|c| c[0].is_null()) {
                ops.push(Operation {
                    what,
                    status: Status::Skipped,
                    detail: "an index on an expression; not exercised".into(),
                });
                continue;
            }
            let order: Vec<String> = cols
                .iter()
                .map(|c| {
                    format!(
                        "{} COLLATE {}{}",
                        ident(&s(&c[0])),
                        ident(&s(&c[2])),
                        if c[1].as_i64() == Some(1) {
                            " DESC"
                        } else {
                            ""
                        }
                    )
                })
                .collect();
            let pred = if ix[7].as_i64() == Some(1) {
                let def = s(&ix[3]);
                match def.to_ascii_uppercase().rfind(" WHERE ") {
                    Some(i) => format!(" WHERE {}", &def[i + 7..]),
                    None => String::new(),
                }
            } else {
                String::new()
            };
            let q = format!(
                "SELECT json_array('read', count(*)) FROM (SELECT * FROM {tq} INDEXED BY {}{pred} ORDER BY {} LIMIT 1000)",
                ident(&name),
                order.join(", ")
            );
            ops.push(Operation::ran(what.clone(), sql.run(&[q]), |lines| {
                let n = lines
                    .first()
                    .and_then(|l| serde_json::from_str::<Value>(l).ok())
                    .and_then(|v| v[1].as_i64())
                    .unwrap_or(0);
                Operation::new(
                    what,
                    Status::Ok,
                    format!("{n} rows read, through the index"),
                )
            })?);
        }
        // The primary key of a rowid table (the rowid) or of a WITHOUT ROWID table is the
        // table's own b-tree, not an index of its own: read in key order, and the plan must not
        // sort (`USE TEMP B-TREE`).
        let pk_indexed = indexes
            .iter()
            .any(|ix| s(&ix[2]) == *table && s(&ix[6]) == "pk");
        if !t.primary_key.is_empty() && !pk_indexed {
            let order: Vec<String> = t.primary_key.iter().map(|k| ident(k)).collect();
            let q = format!(
                "SELECT * FROM {tq} ORDER BY {} LIMIT 1000",
                order.join(", ")
            );
            let what = "read through the primary key".to_owned();
            let result = sql.run(&[
                format!("EXPLAIN QUERY PLAN {q}"),
                format!("SELECT json_array('read', count(*)) FROM ({q})"),
            ]);
            ops.push(Operation::ran(what.clone(), result, |lines| {
                let n = lines
                    .iter()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .find(|v| v[0] == "read")
                    .and_then(|v| v[1].as_i64())
                    .unwrap_or(0);
                if lines.iter().any(|l| l.contains("TEMP B-TREE")) {
                    Operation::new(
                        what,
                        Status::Failed,
                        "SQLite sorted the rows instead of reading them in key order",
                    )
                } else {
                    Operation::new(what, Status::Ok, format!("{n} rows read, in key order"))
                }
            })?);
        }
        let keyed = |c: &str| {
            t.primary_key.iter().any(|k| k == c) || unique.contains(&(table.clone(), c.to_owned()))
        };
        let row_id = if rowid || t.primary_key.is_empty() {
            "rowid".to_owned()
        } else {
            format!(
                "({})",
                t.primary_key
                    .iter()
                    .map(|k| ident(k))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        // Update.
        let target = t
            .columns
            .iter()
            .find(|c| !keyed(&c.name) && !c.data_type.ends_with("GENERATED"));
        if empty {
            ops.push(Operation {
                what: "update".into(),
                status: Status::Skipped,
                detail: "the table is empty".into(),
            });
        } else if let Some(c) = target {
            let ty = types.get(&c.name).cloned().unwrap_or_default();
            let q = format!(
                "UPDATE {tq} AS t0 SET {} = {} WHERE {row_id} IN (SELECT {row_id} FROM {tq} LIMIT 1)",
                ident(&c.name),
                changed(&c.name, &ty)
            );
            let what = format!("update column {}", c.name);
            ops.push(Operation::changed(what, attempt(sql, &q)?, "changed"));
        } else {
            ops.push(Operation {
                what: "update".into(),
                status: Status::Skipped,
                detail: "no column outside the keys".into(),
            });
        }
        // Insert.
        let insertable: Vec<&Column> = t
            .columns
            .iter()
            .filter(|c| !c.data_type.ends_with("GENERATED"))
            .filter(|c| !(rowid && t.primary_key.first() == Some(&c.name)))
            .collect();
        let names: Vec<String> = insertable.iter().map(|c| ident(&c.name)).collect();
        let q = if insertable.is_empty() {
            format!("INSERT INTO {tq} DEFAULT VALUES")
        } else if empty {
            let vals: Vec<String> = insertable
                .iter()
                .map(|c| {
                    let ty = types.get(&c.name).cloned().unwrap_or_default();
                    if keyed(&c.name) {
                        fresh(&c.name, &ty, table)
                    } else if c.default.is_some() {
                        "NULL".into()
                    } else if c.not_null {
                        let u = ty.to_ascii_uppercase();
                        if u.contains("INT") || u.contains("REAL") || u.contains("NUM") {
                            "0".into()
                        } else {
                            "'x'".into()
                        }
                    } else {
                        "NULL".into()
                    }
                })
                .collect();
            // Columns with a default are left to it.
            let (n, v): (Vec<String>, Vec<String>) = insertable
                .iter()
                .zip(names.iter().zip(vals))
                .filter(|(c, _)| c.default.is_none() || keyed(&c.name))
                .map(|(_, (n, v))| (n.clone(), v))
                .unzip();
            if n.is_empty() {
                format!("INSERT INTO {tq} DEFAULT VALUES")
            } else {
                format!(
                    "INSERT INTO {tq} ({}) VALUES ({})",
                    n.join(", "),
                    v.join(", ")
                )
            }
        } else {
            let vals: Vec<String> = insertable
                .iter()
                .map(|c| {
                    if keyed(&c.name) {
                        let ty = types.get(&c.name).cloned().unwrap_or_default();
                        fresh(&c.name, &ty, table)
                    } else {
                        format!("t0.{}", ident(&c.name))
                    }
                })
                .collect();
            format!(
                "INSERT INTO {tq} ({}) SELECT {} FROM {tq} AS t0 LIMIT 1",
                names.join(", "),
                vals.join(", ")
            )
        };
        ops.push(Operation::inserted(attempt(sql, &q)?, empty));
        report.tables.push(TableExercise {
            table: table.clone(),
            operations: ops,
        });
    }
    Ok(report)
}
