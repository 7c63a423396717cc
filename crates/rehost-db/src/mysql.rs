//! MariaDB and MySQL: the SQL that reads a database's inventory from `information_schema`
//! (tables, columns and types, constraints, indexes, views, routines, triggers, each table's
//! `AUTO_INCREMENT` as its sequence) and sums its content inside the server, run by the
//! `mariadb` client on the host that reaches the server; and the `--exercise` for MariaDB.
//!
//! Accounts, roles and grants (MariaDB 10.4 and later) come from the grant tables `SHOW GRANTS`
//! is made of, column by column, so no password hash is ever read (`read_access`); every
//! account of the server is read, and the driver keeps those the database names on either side
//! ([`crate::driver::Extra::access`]). What is never compared is [`NOT_COMPARED`].
//!
//! A row's text is one `CONCAT_WS(0x1f, …)` of its values in column name order followed by
//! the byte lengths of those that are not numbers or dates (`N` for NULL), so `('a','bc')`
//! and `('ab','c')` differ and NULL differs from `''`, `'N'` and `'NULL'` (see
//! `Mysql::row_text`). The row's digest is 64 bits: `CRC32` and `CRC32C` of the text where
//! both servers have `CRC32C` (MariaDB 10.8 and later), else the first 64 bits of its MD5
//! ([`RowHash`], chosen by both servers' versions as the inventory reads them). A slice's checksum is the row
//! count and the exact (DECIMAL) sum of the digests, which does not depend on row order.
//! Listed rows are compared by the MD5 of their text. Integer keys are sliced by range, other
//! keys by the CRC32 of the key's bytes.

use crate::driver::{self, Dialect, Extra, TablePlan, opt, parse, s};
use crate::exercise::{
    ExerciseReport, Operation, Status, TableExercise, check_tables, rolled_back,
};
use crate::model::*;
use crate::{DbError, Sql};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// `` `name` `` as an SQL identifier.
pub fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// Fixed settings for every session, so both servers print values alike.
pub const SESSION: &[&str] = &[
    "SET NAMES utf8mb4",
    "SET SESSION time_zone = '+00:00'",
    "SET SESSION group_concat_max_len = 16777216",
];

const INVENTORY: &[&str] = &[
    "SELECT JSON_ARRAY('db', VERSION(), s.SCHEMA_NAME, s.DEFAULT_CHARACTER_SET_NAME, s.DEFAULT_COLLATION_NAME) \
     FROM information_schema.SCHEMATA s WHERE s.SCHEMA_NAME = DATABASE()",
    "SELECT JSON_ARRAY('table', t.TABLE_NAME, t.TABLE_ROWS, t.ENGINE, t.TABLE_COLLATION, t.AUTO_INCREMENT) \
     FROM information_schema.TABLES t WHERE t.TABLE_SCHEMA = DATABASE() \
     AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')",
    "SELECT JSON_ARRAY('column', c.TABLE_NAME, c.COLUMN_NAME, c.COLUMN_TYPE, c.IS_NULLABLE = 'NO', \
     c.COLUMN_DEFAULT, c.COLLATION_NAME, c.EXTRA, c.DATA_TYPE, c.CHARACTER_MAXIMUM_LENGTH) \
     FROM information_schema.COLUMNS c WHERE c.TABLE_SCHEMA = DATABASE() ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION",
    "SELECT JSON_ARRAY('index', x.TABLE_NAME, x.INDEX_NAME, x.NON_UNIQUE, x.COLUMN_NAME, x.SUB_PART, \
     x.COLLATION, x.INDEX_TYPE) FROM information_schema.STATISTICS x WHERE x.TABLE_SCHEMA = DATABASE() \
     ORDER BY x.TABLE_NAME, x.INDEX_NAME, x.SEQ_IN_INDEX",
    "SELECT JSON_ARRAY('constraint', c.TABLE_NAME, c.CONSTRAINT_NAME, c.CONSTRAINT_TYPE) \
     FROM information_schema.TABLE_CONSTRAINTS c WHERE c.CONSTRAINT_SCHEMA = DATABASE() \
     AND c.CONSTRAINT_TYPE <> 'CHECK'",
    "SELECT JSON_ARRAY('keycol', k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, \
     k.REFERENCED_COLUMN_NAME) FROM information_schema.KEY_COLUMN_USAGE k \
     WHERE k.CONSTRAINT_SCHEMA = DATABASE() ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
    "SELECT JSON_ARRAY('fkrule', r.TABLE_NAME, r.CONSTRAINT_NAME, r.UPDATE_RULE, r.DELETE_RULE) \
     FROM information_schema.REFERENTIAL_CONSTRAINTS r WHERE r.CONSTRAINT_SCHEMA = DATABASE()",
    "SELECT JSON_ARRAY('check', c.TABLE_NAME, c.CONSTRAINT_NAME, c.CHECK_CLAUSE) \
     FROM information_schema.CHECK_CONSTRAINTS c WHERE c.CONSTRAINT_SCHEMA = DATABASE()",
    "SELECT JSON_ARRAY('view', v.TABLE_NAME, REPLACE(v.VIEW_DEFINITION, CONCAT('`', DATABASE(), '`.'), ''), \
     v.CHECK_OPTION, v.SECURITY_TYPE) FROM information_schema.VIEWS v WHERE v.TABLE_SCHEMA = DATABASE()",
    "SELECT JSON_ARRAY('routine', r.ROUTINE_TYPE, r.ROUTINE_NAME, r.DTD_IDENTIFIER, \
     REPLACE(r.ROUTINE_DEFINITION, CONCAT('`', DATABASE(), '`.'), ''), r.IS_DETERMINISTIC, r.SQL_DATA_ACCESS, \
     r.SECURITY_TYPE, (SELECT GROUP_CONCAT(CONCAT_WS(' ', p.PARAMETER_MODE, p.PARAMETER_NAME, p.DTD_IDENTIFIER) \
       ORDER BY p.ORDINAL_POSITION SEPARATOR ', ') FROM information_schema.PARAMETERS p \
       WHERE p.SPECIFIC_SCHEMA = r.ROUTINE_SCHEMA AND p.SPECIFIC_NAME = r.SPECIFIC_NAME \
       AND p.ROUTINE_TYPE = r.ROUTINE_TYPE AND p.ORDINAL_POSITION > 0)) \
     FROM information_schema.ROUTINES r WHERE r.ROUTINE_SCHEMA = DATABASE()",
    "SELECT JSON_ARRAY('trigger', g.EVENT_OBJECT_TABLE, g.TRIGGER_NAME, g.ACTION_TIMING, g.EVENT_MANIPULATION, \
     g.ACTION_ORDER, g.ACTION_STATEMENT) FROM information_schema.TRIGGERS g WHERE g.TRIGGER_SCHEMA = DATABASE()",
];

/// A column as the exercise and the row text need it.
#[derive(Clone, Debug, Default)]
struct Col {
    name: String,
    column_type: String,
    data_type: String,
    not_null: bool,
    default: Option<String>,
    extra: String,
    max_len: Option<i64>,
}

/// An index: its columns (with prefix lengths), uniqueness, type.
#[derive(Clone, Debug, Default)]
struct Index {
    columns: Vec<(String, Option<i64>, bool)>,
    unique: bool,
    kind: String,
}

#[derive(Default)]
struct Catalog {
    inv: Inventory,
    extra: Extra,
    columns: BTreeMap<String, Vec<Col>>,
    indexes: BTreeMap<String, BTreeMap<String, Index>>,
    auto_increment: BTreeMap<String, i64>,
}

fn num(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|x| x.parse().ok()))
}

fn truthy(v: &Value) -> bool {
    v.as_bool().unwrap_or_else(|| num(v).unwrap_or(0) != 0)
}

fn is_integer(data_type: &str, column_type: &str) -> bool {
    matches!(
        data_type,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint"
    ) && !(data_type == "bigint" && column_type.contains("unsigned"))
}

fn is_binary(data_type: &str) -> bool {
    matches!(
        data_type,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" | "bit"
    )
}

fn read_catalog(sql: &dyn Sql) -> Result<Catalog, DbError> {
    let mut stmts: Vec<String> = SESSION.iter().map(|s| s.to_string()).collect();
    stmts.extend(INVENTORY.iter().map(|s| s.to_string()));
    let lines = sql.run(&stmts)?;
    let mut c = Catalog::default();
    c.inv.engine = "MariaDB".into();
    let mut have_db = false;
    let mut constraints: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut keycols: BTreeMap<(String, String), driver::KeyColumns> = BTreeMap::new();
    let mut fkrules: BTreeMap<(String, String), String> = BTreeMap::new();
    for line in &lines {
        let v = parse(sql, line)?;
        let get = |i: usize| v.get(i).cloned().unwrap_or(Value::Null);
        match s(&get(0)).as_str() {
            "db" => {
                have_db = true;
                let version = s(&get(1));
                if !version.to_ascii_lowercase().contains("mariadb") {
                    c.inv.engine = "MySQL".into();
                }
                // The fast row hash where both servers can compute it (the driver compares).
                c.extra.probe = (RowHash::for_version(&version) == RowHash::Crc).then_some(1);
                c.inv.server_version = version;
                c.inv.database = s(&get(2));
                c.inv.encoding = s(&get(3));
                c.inv.collate = s(&get(4));
                c.inv.ctype = s(&get(3));
            }
            "table" => {
                let name = s(&get(1));
                c.extra
                    .estimates
                    .insert(name.clone(), num(&get(2)).unwrap_or(-1));
                c.inv.objects.push(SchemaObject {
                    kind: ObjectKind::Table,
                    name: name.clone(),
                    definition: format!("ENGINE={} COLLATE={}", s(&get(3)), s(&get(4))),
                });
                if let Some(ai) = num(&get(5)) {
                    c.auto_increment.insert(name.clone(), ai);
                }
                c.inv.tables.insert(name, Table::default());
            }
            "column" => {
                let table = s(&get(1));
                let Some(t) = c.inv.tables.get_mut(&table) else {
                    continue;
                };
                let col = Col {
                    name: s(&get(2)),
                    column_type: s(&get(3)),
                    not_null: truthy(&get(4)),
                    default: opt(&get(5)),
                    extra: s(&get(7)),
                    data_type: s(&get(8)).to_ascii_lowercase(),
                    max_len: num(&get(9)),
                };
                let mut data_type = col.column_type.clone();
                if !col.extra.is_empty() {
                    data_type.push(' ');
                    data_type.push_str(&col.extra);
                }
                t.columns.push(Column {
                    name: col.name.clone(),
                    data_type,
                    not_null: col.not_null,
                    default: col.default.clone(),
                    collation: opt(&get(6)),
                });
                c.extra
                    .column_types
                    .entry(table.clone())
                    .or_default()
                    .insert(col.name.clone(), col.data_type.clone());
                c.columns.entry(table).or_default().push(col);
            }
            "index" => {
                let (table, name) = (s(&get(1)), s(&get(2)));
                let ix = c.indexes.entry(table).or_default().entry(name).or_default();
                ix.unique = num(&get(3)) == Some(0);
                ix.kind = s(&get(7));
                ix.columns
                    .push((s(&get(4)), num(&get(5)), s(&get(6)) == "D"));
            }
            "constraint" => {
                constraints.insert((s(&get(1)), s(&get(2))), s(&get(3)));
            }
            "keycol" => {
                let e = keycols.entry((s(&get(1)), s(&get(2)))).or_default();
                e.0.push(s(&get(3)));
                if let Some(r) = opt(&get(5)) {
                    e.1.push(r);
                }
                if let Some(t) = opt(&get(4)) {
                    e.2 = t;
                }
            }
            "fkrule" => {
                fkrules.insert(
                    (s(&get(1)), s(&get(2))),
                    format!("ON UPDATE {} ON DELETE {}", s(&get(3)), s(&get(4))),
                );
            }
            "check" => c.inv.objects.push(SchemaObject {
                kind: ObjectKind::Constraint,
                name: format!("{}.{}", s(&get(1)), s(&get(2))),
                definition: format!("CHECK ({})", s(&get(3))),
            }),
            "view" => c.inv.objects.push(SchemaObject {
                kind: ObjectKind::View,
                name: s(&get(1)),
                definition: format!(
                    "{} (check option {}, security {})",
                    s(&get(2)),
                    s(&get(3)),
                    s(&get(4))
                ),
            }),
            "routine" => c.inv.objects.push(SchemaObject {
                kind: ObjectKind::Function,
                name: format!("{} {}", s(&get(1)).to_ascii_lowercase(), s(&get(2))),
                definition: format!(
                    "({}) RETURNS {} {} {} SECURITY {}: {}",
                    s(&get(8)),
                    s(&get(3)),
                    if s(&get(5)) == "YES" {
                        "DETERMINISTIC"
                    } else {
                        "NOT DETERMINISTIC"
                    },
                    s(&get(6)),
                    s(&get(7)),
                    s(&get(4))
                ),
            }),
            "trigger" => c.inv.objects.push(SchemaObject {
                kind: ObjectKind::Trigger,
                name: format!("{}.{}", s(&get(1)), s(&get(2))),
                definition: format!(
                    "{} {} (order {}) {}",
                    s(&get(3)),
                    s(&get(4)),
                    s(&get(5)),
                    s(&get(6))
                ),
            }),
            other => {
                return Err(DbError::Answer {
                    target: sql.describe(),
                    message: format!("unknown catalog row `{other}`"),
                });
            }
        }
    }
    if !have_db {
        return Err(DbError::Query {
            target: sql.describe(),
            message: "the URL names no database, or the user cannot see it: write mysql://USER@HOST:PORT/DBNAME".into(),
        });
    }
    for ((table, name), kind) in constraints {
        let (cols, refs, rtable) = keycols
            .get(&(table.clone(), name.clone()))
            .cloned()
            .unwrap_or_default();
        let mut def = format!("{kind} ({})", cols.join(", "));
        if kind == "FOREIGN KEY" {
            def.push_str(&format!(" REFERENCES {rtable} ({})", refs.join(", ")));
            if let Some(r) = fkrules.get(&(table.clone(), name.clone())) {
                def.push(' ');
                def.push_str(r);
            }
        }
        c.inv.objects.push(SchemaObject {
            kind: ObjectKind::Constraint,
            name: format!("{table}.{name}"),
            definition: def,
        });
    }
    for (table, ixs) in &c.indexes {
        for (name, ix) in ixs {
            let cols: Vec<String> = ix
                .columns
                .iter()
                .map(|(n, sub, desc)| {
                    let mut s = n.clone();
                    if let Some(p) = sub {
                        s.push_str(&format!("({p})"));
                    }
                    if *desc {
                        s.push_str(" DESC");
                    }
                    s
                })
                .collect();
            c.inv.objects.push(SchemaObject {
                kind: ObjectKind::Index,
                name: format!("{table}.{name}"),
                definition: format!(
                    "{}{} ({})",
                    if ix.unique { "UNIQUE " } else { "" },
                    ix.kind,
                    cols.join(", ")
                ),
            });
        }
    }
    let names: Vec<String> = c.inv.tables.keys().cloned().collect();
    for table in names {
        let cols = c.columns.get(&table).cloned().unwrap_or_default();
        let pk: Vec<String> = c
            .indexes
            .get(&table)
            .and_then(|i| i.get("PRIMARY"))
            .map(|ix| ix.columns.iter().map(|x| x.0.clone()).collect())
            .unwrap_or_default();
        let int_key = pk.len() == 1
            && cols
                .iter()
                .find(|c| c.name == pk[0])
                .is_some_and(|c| is_integer(&c.data_type, &c.column_type));
        c.extra.int_key.insert(table.clone(), int_key);
        if let Some(t) = c.inv.tables.get_mut(&table) {
            t.primary_key = pk;
        }
        if let (Some(ai), Some(col)) = (
            c.auto_increment.get(&table),
            cols.iter().find(|c| c.extra.contains("auto_increment")),
        ) {
            c.inv.sequences.insert(
                format!("{table}.{}", col.name),
                Sequence {
                    last_value: Some(*ai),
                    data_type: format!("{} AUTO_INCREMENT", col.column_type),
                    increment: 1,
                },
            );
        }
    }
    c.inv.objects.sort();
    Ok(c)
}

/// Global privileges: `mysql.user`'s columns and the names `SHOW GRANTS` gives them.
const GLOBAL_PRIVS: &[(&str, &str)] = &[
    ("Select_priv", "SELECT"),
    ("Insert_priv", "INSERT"),
    ("Update_priv", "UPDATE"),
    ("Delete_priv", "DELETE"),
    ("Create_priv", "CREATE"),
    ("Drop_priv", "DROP"),
    ("Reload_priv", "RELOAD"),
    ("Shutdown_priv", "SHUTDOWN"),
    ("Process_priv", "PROCESS"),
    ("File_priv", "FILE"),
    ("References_priv", "REFERENCES"),
    ("Index_priv", "INDEX"),
    ("Alter_priv", "ALTER"),
    ("Show_db_priv", "SHOW DATABASES"),
    ("Super_priv", "SUPER"),
    ("Create_tmp_table_priv", "CREATE TEMPORARY TABLES"),
    ("Lock_tables_priv", "LOCK TABLES"),
    ("Execute_priv", "EXECUTE"),
    ("Repl_slave_priv", "REPLICATION SLAVE"),
    ("Repl_client_priv", "REPLICATION CLIENT"),
    ("Create_view_priv", "CREATE VIEW"),
    ("Show_view_priv", "SHOW VIEW"),
    ("Create_routine_priv", "CREATE ROUTINE"),
    ("Alter_routine_priv", "ALTER ROUTINE"),
    ("Create_user_priv", "CREATE USER"),
    ("Event_priv", "EVENT"),
    ("Trigger_priv", "TRIGGER"),
    ("Create_tablespace_priv", "CREATE TABLESPACE"),
    ("Delete_history_priv", "DELETE HISTORY"),
];

/// Database privileges: `mysql.db`'s columns.
const DB_PRIVS: &[(&str, &str)] = &[
    ("Select_priv", "SELECT"),
    ("Insert_priv", "INSERT"),
    ("Update_priv", "UPDATE"),
    ("Delete_priv", "DELETE"),
    ("Create_priv", "CREATE"),
    ("Drop_priv", "DROP"),
    ("References_priv", "REFERENCES"),
    ("Index_priv", "INDEX"),
    ("Alter_priv", "ALTER"),
    ("Create_tmp_table_priv", "CREATE TEMPORARY TABLES"),
    ("Lock_tables_priv", "LOCK TABLES"),
    ("Create_view_priv", "CREATE VIEW"),
    ("Show_view_priv", "SHOW VIEW"),
    ("Create_routine_priv", "CREATE ROUTINE"),
    ("Alter_routine_priv", "ALTER ROUTINE"),
    ("Execute_priv", "EXECUTE"),
    ("Event_priv", "EVENT"),
    ("Trigger_priv", "TRIGGER"),
    ("Delete_history_priv", "DELETE HISTORY"),
];

/// `CONCAT_WS(',', IF(t.col = 'Y', 'NAME', NULL), …)`: the privileges a row of `mysql.user` or
/// `mysql.db` holds, by name.
fn privs_expr(alias: &str, cols: &[(&str, &str)]) -> String {
    let parts: Vec<String> = cols
        .iter()
        .map(|(c, n)| format!("IF({alias}.{c} = 'Y', '{n}', NULL)"))
        .collect();
    format!("CONCAT_WS(',', {})", parts.join(", "))
}

/// The grant tables (`mysql.*`, MariaDB 10.4 and later) as `SHOW GRANTS` reads them, and the
/// definers of the database's views, routines, triggers and events. Never `Password` or
/// `authentication_string`: no password hash is read.
fn access_queries() -> Vec<String> {
    let text = |col: &str| format!("CONVERT({col} USING utf8mb4)");
    vec![
        "SELECT JSON_ARRAY('dbname', DATABASE())".into(),
        format!(
            "SELECT JSON_ARRAY('account', u.User, u.Host, u.is_role, u.plugin, u.default_role,              u.password_expired, u.ssl_type, {}, {}, {}, u.max_questions, u.max_updates,              u.max_connections, u.max_user_connections, u.max_statement_time, {}, u.Grant_priv,              JSON_VALUE(g.Priv, '$.account_locked'), JSON_EXTRACT(g.Priv, '$.auth_or[*].plugin'))              FROM mysql.user u LEFT JOIN mysql.global_priv g ON g.User = u.User AND g.Host = u.Host",
            text("u.ssl_cipher"),
            text("u.x509_issuer"),
            text("u.x509_subject"),
            privs_expr("u", GLOBAL_PRIVS)
        ),
        format!(
            "SELECT JSON_ARRAY('db', d.User, d.Host, d.Db, {}, d.Grant_priv) FROM mysql.db d",
            privs_expr("d", DB_PRIVS)
        ),
        "SELECT JSON_ARRAY('tablepriv', t.User, t.Host, t.Db, t.Table_name, t.Table_priv) FROM mysql.tables_priv t"
            .into(),
        "SELECT JSON_ARRAY('colpriv', c.User, c.Host, c.Db, c.Table_name, c.Column_name, c.Column_priv)          FROM mysql.columns_priv c"
            .into(),
        "SELECT JSON_ARRAY('procpriv', p.User, p.Host, p.Db, p.Routine_name, p.Routine_type, p.Proc_priv)          FROM mysql.procs_priv p"
            .into(),
        "SELECT JSON_ARRAY('member', m.User, m.Host, m.Role, m.Admin_option) FROM mysql.roles_mapping m".into(),
        "SELECT JSON_ARRAY('definer', x.DEFINER) FROM (\
         SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() \
         UNION SELECT DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() \
         UNION SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() \
         UNION SELECT DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()) x"
            .into(),
    ]
}

/// `` `user`@`host` `` for an account, `` `role` `` for a role (whose host is empty), as
/// `SHOW GRANTS` writes them.
fn account_name(user: &str, host: &str) -> String {
    if host.is_empty() {
        ident(user)
    } else {
        format!("{}@{}", ident(user), ident(host))
    }
}

/// Whether database `name` matches `pattern` as a grant's database name does (`%`, `_`,
/// `\` escaping the next character).
pub(crate) fn db_pattern_matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('%', rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
            Some(('_', rest)) => !s.is_empty() && go(rest, &s[1..]),
            Some(('\\', rest)) if !rest.is_empty() => {
                s.first() == Some(&rest[0]) && go(&rest[1..], &s[1..])
            }
            Some((c, rest)) => s.first() == Some(c) && go(rest, &s[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    go(&p, &s)
}

/// A set column of the grant tables (`Select,Insert,Grant`) as privilege names, and whether it
/// holds `Grant` (the grant option).
fn set_privs(set: &str) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut grant = false;
    for p in set.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match p {
            "Grant" => grant = true,
            "Delete versioning rows" => out.push("DELETE HISTORY".to_owned()),
            p => out.push(p.to_ascii_uppercase()),
        }
    }
    (out, grant)
}

/// One `GRANT` as `SHOW GRANTS` would print it, normalised: privileges sorted, names quoted
/// one way, one space.
fn grant_text(privs: &[String], on: &str, to: &str, grant_option: bool) -> String {
    let mut privs = privs.to_vec();
    privs.sort();
    privs.dedup();
    format!(
        "GRANT {} ON {on} TO {to}{}",
        privs.join(", "),
        if grant_option {
            " WITH GRANT OPTION"
        } else {
            ""
        }
    )
}

/// What [`read_access`] found on one side.
#[derive(Default)]
struct Access {
    objects: Vec<(String, SchemaObject)>,
    named: BTreeSet<String>,
    members: Vec<(String, String)>,
}

/// The smallest and largest key of every table with one integer key column, into
/// [`Extra::key_bounds`] (`None`: an empty table), in sessions of at most the client's
/// statement text.
fn read_key_bounds(d: &dyn Dialect, sql: &dyn Sql, c: &mut Catalog) -> Result<(), DbError> {
    let tables: Vec<(String, String)> = c
        .inv
        .tables
        .iter()
        .filter(|(name, t)| c.extra.int_key.get(*name) == Some(&true) && t.primary_key.len() == 1)
        .map(|(name, t)| {
            let k = format!("t.{}", ident(&t.primary_key[0]));
            (
                name.clone(),
                format!(
                    "SELECT json_array(min({k}), max({k})) FROM {} t",
                    ident(name)
                ),
            )
        })
        .collect();
    let limit = d.session_text();
    let mut start = 0;
    while start < tables.len() {
        let mut stmts: Vec<String> = SESSION.iter().map(|s| s.to_string()).collect();
        let mut size: usize = stmts.iter().map(|s| s.len() + 2).sum();
        let mut end = start;
        while end < tables.len() && (end == start || size + tables[end].1.len() + 2 <= limit) {
            size += tables[end].1.len() + 2;
            stmts.push(tables[end].1.clone());
            end += 1;
        }
        let lines = sql.run(&stmts)?;
        if lines.len() != end - start {
            return Err(DbError::Answer {
                target: sql.describe(),
                message: format!(
                    "{} answers to {} questions for the bounds of the keys",
                    lines.len(),
                    end - start
                ),
            });
        }
        for ((name, _), line) in tables[start..end].iter().zip(&lines) {
            let v = parse(sql, line)?;
            c.extra
                .key_bounds
                .insert(name.clone(), num(&v[0]).zip(num(&v[1])));
        }
        start = end;
    }
    Ok(())
}

/// The accounts, roles and grants of the server (every one: the driver keeps those this
/// database names on either side), or why they could not be read: the reason goes into the
/// report's scope instead of an equal that was never checked.
fn read_access(sql: &dyn Sql) -> Result<Result<Access, String>, DbError> {
    let mut stmts: Vec<String> = SESSION.iter().map(|s| s.to_string()).collect();
    stmts.extend(access_queries());
    let lines = match sql.run(&stmts) {
        Ok(l) => l,
        Err(DbError::Query { target, message })
            if message.contains("denied") || message.contains("doesn't exist") =>
        {
            // `ERROR 1142 (42000) at line 5: …`: the line is the session's, not the user's.
            let message = match (message.find(" at line "), message.find(": ")) {
                (Some(i), Some(j)) if i < j => format!("{}{}", &message[..i], &message[j..]),
                _ => message,
            };
            return Ok(Err(format!(
                "accounts, roles and grants: {target} could not read the grant tables ({message}): grant the verifying user SELECT ON mysql.* (MariaDB 10.4 or later)"
            )));
        }
        Err(e) => return Err(e),
    };
    let mut a = Access::default();
    let mut database = String::new();
    // (grantee, object) → privileges, grant option.
    let mut privs: BTreeMap<(String, String), (Vec<String>, bool)> = BTreeMap::new();
    // Column privileges per (grantee, table, privilege): the columns.
    let mut columns: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    let mut rows = Vec::new();
    for line in &lines {
        rows.push(parse(sql, line)?);
    }
    for v in &rows {
        if s(&v[0]) == "dbname" {
            database = s(&v[1]);
        }
    }
    for v in &rows {
        let get = |i: usize| v.get(i).cloned().unwrap_or(Value::Null);
        let who = || account_name(&s(&get(1)), &s(&get(2)));
        match s(&get(0)).as_str() {
            "dbname" => {}
            "account" => {
                let name = who();
                if s(&get(3)) == "Y" {
                    a.objects.push((
                        name.clone(),
                        SchemaObject {
                            kind: ObjectKind::Role,
                            name: name.clone(),
                            definition: "role".into(),
                        },
                    ));
                } else {
                    let mut def = Vec::new();
                    let plugins: Vec<String> = get(20)
                        .as_str()
                        .and_then(|t| serde_json::from_str::<Vec<String>>(t).ok())
                        .or_else(|| {
                            get(20)
                                .as_array()
                                .map(|x| x.iter().map(s).collect::<Vec<String>>())
                        })
                        .unwrap_or_default();
                    if plugins.len() > 1 {
                        def.push(format!("plugin {}", plugins.join(" or ")));
                    } else {
                        def.push(format!("plugin {}", s(&get(4))));
                    }
                    if let Some(r) = opt(&get(5)).filter(|r| !r.is_empty()) {
                        def.push(format!("default role {}", ident(&r)));
                    }
                    if s(&get(6)) == "Y" {
                        def.push("password expired".into());
                    }
                    let ssl = s(&get(7));
                    if !ssl.is_empty() {
                        let mut r = format!("require {ssl}");
                        for (what, i) in [("cipher", 8), ("issuer", 9), ("subject", 10)] {
                            if let Some(x) = opt(&get(i)).filter(|x| !x.is_empty()) {
                                r.push_str(&format!(" {what} '{x}'"));
                            }
                        }
                        def.push(r);
                    }
                    for (what, i) in [
                        ("max_queries_per_hour", 11),
                        ("max_updates_per_hour", 12),
                        ("max_connections_per_hour", 13),
                        ("max_user_connections", 14),
                        ("max_statement_time", 15),
                    ] {
                        let x = s(&get(i));
                        if !x.is_empty() && x.parse::<f64>() != Ok(0.0) {
                            def.push(format!("{what} {x}"));
                        }
                    }
                    if truthy(&get(18)) {
                        def.push("account locked".into());
                    }
                    a.objects.push((
                        name.clone(),
                        SchemaObject {
                            kind: ObjectKind::Account,
                            name: name.clone(),
                            definition: def.join(", "),
                        },
                    ));
                }
                let global: Vec<String> = s(&get(16))
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect();
                if !global.is_empty() || s(&get(17)) == "Y" {
                    privs.insert((name, "*.*".into()), (global, s(&get(17)) == "Y"));
                }
            }
            "db" => {
                let (name, db) = (who(), s(&get(3)));
                if db_pattern_matches(&db, &database) {
                    a.named.insert(name.clone());
                }
                let list: Vec<String> = s(&get(4))
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect();
                privs.insert(
                    (name, format!("{}.*", ident(&db))),
                    (list, s(&get(5)) == "Y"),
                );
            }
            "tablepriv" => {
                let (name, db) = (who(), s(&get(3)));
                if db == database {
                    a.named.insert(name.clone());
                }
                let (list, grant) = set_privs(&s(&get(5)));
                let e = privs
                    .entry((name, format!("{}.{}", ident(&db), ident(&s(&get(4))))))
                    .or_default();
                e.0.extend(list);
                e.1 |= grant;
            }
            "colpriv" => {
                let (name, db) = (who(), s(&get(3)));
                if db == database {
                    a.named.insert(name.clone());
                }
                let table = format!("{}.{}", ident(&db), ident(&s(&get(4))));
                for p in set_privs(&s(&get(6))).0 {
                    columns
                        .entry((name.clone(), table.clone(), p))
                        .or_default()
                        .push(ident(&s(&get(5))));
                }
            }
            "procpriv" => {
                let (name, db) = (who(), s(&get(3)));
                if db == database {
                    a.named.insert(name.clone());
                }
                let (list, grant) = set_privs(&s(&get(6)));
                let on = format!("{} {}.{}", s(&get(5)), ident(&db), ident(&s(&get(4))));
                let e = privs.entry((name, on)).or_default();
                e.0.extend(list);
                e.1 |= grant;
            }
            "member" => {
                let (member, role) = (who(), ident(&s(&get(3))));
                a.members.push((member.clone(), role.clone()));
                a.objects.push((
                    member.clone(),
                    SchemaObject {
                        kind: ObjectKind::Privileges,
                        name: format!("{member} on role {role}"),
                        definition: format!(
                            "GRANT {role} TO {member}{}",
                            if s(&get(4)) == "Y" {
                                " WITH ADMIN OPTION"
                            } else {
                                ""
                            }
                        ),
                    },
                ));
            }
            "definer" => {
                // `user@host`; the host never holds `@`, a user name may.
                let d = s(&get(1));
                if let Some((user, host)) = d.rsplit_once('@') {
                    a.named.insert(account_name(user, host));
                }
            }
            other => {
                return Err(DbError::Answer {
                    target: sql.describe(),
                    message: format!("unknown grant row `{other}`"),
                });
            }
        }
    }
    for ((who, table, p), mut cols) in columns {
        cols.sort();
        let e = privs.entry((who, table)).or_default();
        e.0.push(format!("{p} ({})", cols.join(", ")));
    }
    for ((who, on), (list, grant)) in privs {
        let shown = if list.is_empty() {
            vec!["USAGE".to_owned()]
        } else {
            list
        };
        a.objects.push((
            who.clone(),
            SchemaObject {
                kind: ObjectKind::Privileges,
                name: format!("{who} on {on}"),
                definition: grant_text(&shown, &on, &who, grant),
            },
        ));
    }
    Ok(Ok(a))
}

/// How a row's digest is computed for the sums; both sides use the same: `Crc` where both
/// servers can compute it (the inventory's probe, [`TablePlan::fast`]), else `Md5`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowHash {
    /// The first 64 bits of the MD5 of the row's text: every MariaDB and MySQL version.
    Md5,
    /// `CRC32` of the row's text in the high 32 bits, `CRC32C` (MariaDB 10.8 and later) in the
    /// low 32 bits: two different polynomials over the same text, about 2.5 times as fast.
    Crc,
}

impl RowHash {
    /// What a server of `version` (as `VERSION()` prints it) can compute.
    pub fn for_version(version: &str) -> RowHash {
        if !version.to_ascii_lowercase().contains("mariadb") {
            return RowHash::Md5;
        }
        let mut n = version
            .split(|c: char| !c.is_ascii_digit())
            .map(|x| x.parse::<u32>());
        match (n.next(), n.next()) {
            (Some(Ok(major)), Some(Ok(minor))) if (major, minor) >= (10, 8) => RowHash::Crc,
            _ => RowHash::Md5,
        }
    }
}

/// The dialect of MariaDB and MySQL.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mysql;

/// What a MariaDB/MySQL verification does not compare (the report's scope; docs/db.md lists
/// the same). Accounts and grants the verifying user cannot read are added by the inventory.
pub const NOT_COMPARED: &[&str] = &[
    "events (CREATE EVENT) and SEQUENCE objects (CREATE SEQUENCE)",
    "history rows of system-versioned tables (their current rows are compared)",
    "table options other than the engine and collation (ROW_FORMAT, partitioning), and comments",
    "the definer of each view, routine and trigger (the definer's account is compared)",
    "accounts that no grant on this database, definer or role names (root and others with global privileges only)",
    "passwords and their hashes (never read), proxy privileges (GRANT PROXY), and global privileges mysql.user has no column for (those of MariaDB 10.5 and later: BINLOG ADMIN, SLAVE MONITOR …)",
    "the server's configuration (my.cnf)",
];

/// Types whose printed text is digits, signs, `.`, `e`, `:`, `-` and spaces only: never
/// `0x1f`, never `N`, never longer than 64 KiB.
fn prints_plain(data_type: &str) -> bool {
    matches!(
        data_type,
        "tinyint"
            | "smallint"
            | "mediumint"
            | "int"
            | "integer"
            | "bigint"
            | "decimal"
            | "float"
            | "double"
            | "real"
            | "date"
            | "datetime"
            | "timestamp"
            | "time"
            | "year"
    )
}

/// Text types of at most 65,535 bytes, with a character set.
fn is_short_text(data_type: &str) -> bool {
    matches!(data_type, "char" | "varchar" | "tinytext" | "text")
}

/// Whether the table's text columns ([`is_short_text`]) all have the same collation's
/// character set on both sides, one in which digits, `N` and `0x1f` are the single bytes they
/// are in every other of these: UTF-8 (`utf8mb4`, `utf8mb3`), `latin1`, `ascii`. False also
/// when the table has no text column.
fn text_as_is(plan: &TablePlan) -> bool {
    let mut found: Option<&str> = None;
    for c in plan.columns.iter().filter(|c| is_short_text(&c.data_type)) {
        let Some(collation) = c.collation.as_deref() else {
            return false;
        };
        let charset = ["utf8mb4", "utf8mb3", "utf8", "latin1", "ascii"]
            .into_iter()
            .find(|cs| {
                collation
                    .strip_prefix(cs)
                    .is_some_and(|rest| rest.starts_with('_'))
            });
        match (found, charset) {
            (_, None) => return false,
            (Some(f), Some(cs)) if f != cs => return false,
            _ => found = charset,
        }
    }
    found.is_some()
}

/// Types whose values are at most 65,535 bytes: written whole into the row text.
fn short(data_type: &str) -> bool {
    matches!(
        data_type,
        "char"
            | "varchar"
            | "binary"
            | "varbinary"
            | "tinytext"
            | "text"
            | "tinyblob"
            | "blob"
            | "enum"
            | "set"
            | "bit"
    )
}

impl Mysql {
    /// A row's text, one `CONCAT_WS(0x1f, …)`: per column in name order, a number, date or
    /// time as printed (`N` for NULL: no such value prints as `N`); any other value as its
    /// bytes (NULL leaves it out), a value that may be longer than 64 KiB as `MD5` when it is;
    /// then, per such column, its length in bytes or `N` for NULL. The lengths at the end
    /// split the text back into the values, so `('a','bc')` ≠ `('ab','c')`, and NULL ≠ `''` ≠
    /// `'N'` ≠ `'NULL'`.
    ///
    /// A text column (`char`, `varchar`, `tinytext`, `text`) is written without the `CAST` when
    /// every text column of the table has the same character set on both sides, one whose
    /// digits and `0x1f` are single bytes ([`text_as_is`]): then `CONCAT_WS` converts
    /// nothing and its bytes are those the `CAST` gives (tested on a real server), and the
    /// `CAST` was a quarter of the scan's time (issue 27: 1.09 → 0.80 s for 1 million
    /// `sbtest` rows).
    pub(crate) fn row_text(&self, plan: &TablePlan) -> String {
        if plan.columns.is_empty() {
            return "''".into();
        }
        let as_is = text_as_is(plan);
        let mut values = Vec::new();
        let mut lengths = Vec::new();
        for col in &plan.columns {
            let (x, ty) = (format!("t.{}", ident(&col.name)), &col.data_type);
            if prints_plain(ty) {
                values.push(format!("IFNULL({x}, 'N')"));
            } else {
                values.push(if as_is && is_short_text(ty) {
                    x.clone()
                } else if short(ty) {
                    format!("CAST({x} AS BINARY)")
                } else {
                    format!("IF(LENGTH({x}) > 65536, MD5({x}), CAST({x} AS BINARY))")
                });
                lengths.push(format!("IFNULL(LENGTH({x}), 'N')"));
            }
        }
        values.extend(lengths);
        format!("CONCAT_WS(0x1f, {})", values.join(", "))
    }

    /// The row's 64-bit digest, an unsigned integer.
    pub(crate) fn digest(&self, plan: &TablePlan) -> String {
        let row = self.row_text(plan);
        match if plan.fast {
            RowHash::Crc
        } else {
            RowHash::Md5
        } {
            RowHash::Md5 => format!("CAST(CONV(LEFT(MD5({row}), 16), 16, 10) AS UNSIGNED)"),
            // The text is built once: `@rehost_row` holds it for the second function.
            RowHash::Crc => format!("(CRC32(@rehost_row := {row}) << 32 | CRC32C(@rehost_row))"),
        }
    }
}

impl Dialect for Mysql {
    fn engine(&self) -> &'static str {
        "MariaDB"
    }
    fn not_compared(&self) -> Vec<String> {
        NOT_COMPARED.iter().map(|s| s.to_string()).collect()
    }
    fn session(&self) -> Vec<String> {
        SESSION.iter().map(|s| s.to_string()).collect()
    }
    /// Three sessions, two at a time: the grant tables beside the catalog, then the bounds of
    /// the integer keys (what the driver would otherwise ask for in a round of its own).
    fn read_inventory(&self, sql: &dyn Sql) -> Result<(Inventory, Extra), DbError> {
        let (c, access) = std::thread::scope(|scope| {
            let access = scope.spawn(|| read_access(sql));
            let c = read_catalog(sql).and_then(|mut c| {
                read_key_bounds(self, sql, &mut c)?;
                Ok(c)
            });
            (c, access.join().unwrap_or(Err(DbError::Cancelled)))
        });
        let mut c = c?;
        if c.inv.engine == "MySQL" {
            // MySQL keeps roles in other tables (role_edges, default_roles): not read yet.
            c.inv.not_compared.push(
                "accounts, roles and grants (read on MariaDB 10.4 and later only, not on MySQL)"
                    .into(),
            );
        } else {
            match access? {
                Ok(a) => {
                    c.extra.access = Some(a.objects);
                    c.extra.named = a.named;
                    c.extra.members = a.members;
                }
                Err(reason) => c.inv.not_compared.push(reason),
            }
        }
        Ok((c.inv, c.extra))
    }
    fn from(&self, plan: &TablePlan) -> String {
        format!("FROM {} t", ident(&plan.table))
    }
    fn key_expr(&self, plan: &TablePlan) -> String {
        format!("t.{}", ident(&plan.key[0]))
    }
    fn key_hash(&self, plan: &TablePlan) -> String {
        let cols: Vec<String> = plan
            .key
            .iter()
            .map(|c| format!("CAST(t.{} AS BINARY)", ident(c)))
            .collect();
        format!("CRC32(CONCAT_WS(0x1f, {}))", cols.join(", "))
    }
    fn range_bucket(&self, plan: &TablePlan, lo: i64, width: i64, wide: bool) -> String {
        if wide {
            format!(
                "(CAST({} AS DECIMAL(21,0)) - ({lo})) DIV {width}",
                self.key_expr(plan)
            )
        } else {
            format!(
                "(CAST({} AS SIGNED) - ({lo})) DIV {width}",
                self.key_expr(plan)
            )
        }
    }
    fn sums_query(&self, plan: &TablePlan, bucket: &str, filter: &str) -> String {
        let h = self.digest(plan);
        let from = self.from(plan);
        // One sum: no grouping (a GROUP BY, even of a constant, costs a temporary table).
        if bucket == "0" {
            return format!(
                "SELECT JSON_ARRAY(0, COUNT(*), CAST(COALESCE(SUM({h}), 0) AS CHAR)) \
                 {from} WHERE {filter}"
            );
        }
        format!(
            "SELECT JSON_ARRAY(b, COUNT(*), CAST(COALESCE(SUM(h), 0) AS CHAR)) FROM \
             (SELECT {bucket} AS b, {h} AS h {from} WHERE {filter}) s GROUP BY b"
        )
    }
    fn rows_query(&self, plan: &TablePlan, filter: &str) -> String {
        let types: BTreeMap<&String, &String> = plan
            .columns
            .iter()
            .map(|c| (&c.name, &c.data_type))
            .collect();
        let keys: Vec<String> = plan
            .key
            .iter()
            .map(|c| {
                let x = format!("t.{}", ident(c));
                if types.get(c).is_some_and(|t| is_binary(t)) {
                    format!("CONCAT('0x', HEX({x}))")
                } else {
                    format!("CAST({x} AS CHAR)")
                }
            })
            .collect();
        format!(
            "SELECT JSON_ARRAY(JSON_ARRAY({}), MD5({})) {} WHERE {filter}",
            keys.join(", "),
            self.row_text(plan),
            self.from(plan)
        )
    }
}

/// The client's error without its `at line N` (the line of a statement rehost wrote).
fn server_error(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message);
    match (first.find(" at line "), first.find(": ")) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &first[..a], &first[b..]),
        _ => first.to_owned(),
    }
}

/// One operation in its own client run and transaction, always rolled back: the client ends
/// at the first error, and the server rolls back what the ended connection left open.
fn attempt(
    sql: &dyn Sql,
    setup: &[String],
    statement: &str,
) -> Result<Result<i64, String>, DbError> {
    let mut stmts: Vec<String> = SESSION.iter().map(|s| s.to_string()).collect();
    stmts.extend_from_slice(setup);
    stmts.push("START TRANSACTION".into());
    stmts.push(statement.to_owned());
    stmts.push("SELECT JSON_ARRAY('changes', ROW_COUNT())".into());
    stmts.push("ROLLBACK".into());
    rolled_back(sql, &stmts, server_error)
}

fn is_numeric(dt: &str) -> bool {
    matches!(
        dt,
        "tinyint"
            | "smallint"
            | "mediumint"
            | "int"
            | "integer"
            | "bigint"
            | "decimal"
            | "float"
            | "double"
    )
}

fn is_text(dt: &str) -> bool {
    matches!(
        dt,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext"
    )
}

fn is_date(dt: &str) -> bool {
    matches!(dt, "date" | "datetime" | "timestamp")
}

/// A changed value for an update; `None` when the type has no obvious change.
fn changed(c: &Col) -> Option<String> {
    let x = format!("t0.{}", ident(&c.name));
    let dt = c.data_type.as_str();
    Some(if is_numeric(dt) {
        format!("{x} + 1")
    } else if is_text(dt) {
        format!(
            "IF({x} IS NULL OR {x} = '', 'x', CONCAT(IF(LEFT({x}, 1) = 'x', 'y', 'x'), SUBSTRING({x}, 2)))"
        )
    } else if is_date(dt) {
        format!("{x} + INTERVAL 1 DAY")
    } else if matches!(
        dt,
        "tinyblob" | "blob" | "mediumblob" | "longblob" | "varbinary"
    ) {
        format!("CONCAT(COALESCE({x}, ''), 0x00)")
    } else {
        return None;
    })
}

/// What the exercise reads besides the catalog: each table's storage engine and whether the
/// engine has transactions, the triggers, and the routines and views a trigger may reach.
const REACH: &[&str] = &[
    "SELECT JSON_ARRAY('engine', t.TABLE_NAME, t.ENGINE, COALESCE(e.TRANSACTIONS, 'NO')) \
     FROM information_schema.TABLES t LEFT JOIN information_schema.ENGINES e ON e.ENGINE = t.ENGINE \
     WHERE t.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')",
    "SELECT JSON_ARRAY('trigger', g.EVENT_OBJECT_TABLE, g.TRIGGER_NAME, g.ACTION_STATEMENT) \
     FROM information_schema.TRIGGERS g WHERE g.TRIGGER_SCHEMA = DATABASE()",
    "SELECT JSON_ARRAY('body', r.ROUTINE_NAME, r.ROUTINE_DEFINITION) \
     FROM information_schema.ROUTINES r WHERE r.ROUTINE_SCHEMA = DATABASE()",
    "SELECT JSON_ARRAY('body', v.TABLE_NAME, v.VIEW_DEFINITION) \
     FROM information_schema.VIEWS v WHERE v.TABLE_SCHEMA = DATABASE()",
];

/// The words of SQL text, lower case: identifiers with their quotes and qualifiers taken off.
fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Per table: why a change to it would outlast the rollback, if it would. A table of an
/// engine without transactions (MyISAM, Aria, MEMORY, CSV, ARCHIVE…); or a table with a
/// trigger whose text, or that of a routine or view it names (followed on), names such a
/// table or a routine or view whose definition this login cannot read; or a table with a
/// trigger whose body this login cannot read. Names are matched as words, so the test errs
/// towards skipping.
fn not_transactional(sql: &dyn Sql) -> Result<BTreeMap<String, String>, DbError> {
    let mut stmts: Vec<String> = SESSION.iter().map(|s| s.to_string()).collect();
    stmts.extend(REACH.iter().map(|s| s.to_string()));
    let mut engines: BTreeMap<String, String> = BTreeMap::new();
    let mut triggers: Vec<(String, String, Option<String>)> = Vec::new();
    let mut bodies: BTreeMap<String, Option<String>> = BTreeMap::new();
    for line in sql.run(&stmts)? {
        let v = parse(sql, &line)?;
        match v[0].as_str() {
            Some("engine") if !s(&v[3]).eq_ignore_ascii_case("YES") => {
                engines.insert(s(&v[1]), s(&v[2]));
            }
            Some("trigger") => triggers.push((s(&v[1]), s(&v[2]), opt(&v[3]))),
            Some("body") => {
                bodies.insert(s(&v[1]).to_lowercase(), opt(&v[2]));
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    for (table, engine) in &engines {
        out.insert(
            table.clone(),
            format!(
                "the table's engine, {engine}, has no transactions: a change would outlast the rollback; only read"
            ),
        );
    }
    let lower: BTreeMap<String, &String> = engines.keys().map(|t| (t.to_lowercase(), t)).collect();
    for (table, trigger, statement) in &triggers {
        if out.contains_key(table) {
            continue;
        }
        let Some(statement) = statement else {
            // MariaDB shows a trigger's body only to a login with the TRIGGER privilege.
            out.insert(
                table.clone(),
                format!(
                    "its trigger {trigger} cannot be read by this login (MariaDB shows a trigger's body only with the TRIGGER privilege), so what it reaches is not known; only read"
                ),
            );
            continue;
        };
        let mut seen = BTreeSet::new();
        let mut todo = vec![statement.clone()];
        let mut why = None;
        while let Some(text) = todo.pop() {
            for w in words(&text) {
                if let Some(t) = lower.get(&w) {
                    why = Some(format!(
                        "its trigger {trigger} reaches the {} table {t}, which has no transactions: a change would outlast the rollback; only read",
                        engines[*t]
                    ));
                    break;
                }
                match bodies.get(&w) {
                    Some(Some(body)) if seen.insert(w.clone()) => todo.push(body.clone()),
                    Some(None) if w != table.to_lowercase() => {
                        why = Some(format!(
                            "its trigger {trigger} names {w}, whose definition this login cannot read, so what the trigger reaches is not known; only read"
                        ));
                        break;
                    }
                    _ => {}
                }
            }
            if why.is_some() {
                break;
            }
        }
        if let Some(why) = why {
            out.insert(table.clone(), why);
        }
    }
    Ok(out)
}

/// Exercises the tables of a MariaDB database (or those named): per table, each operation in
/// its own transaction, always rolled back: read through every index (`FORCE INDEX` and
/// `EXPLAIN` naming the index), update one row's first column outside every unique index,
/// insert a row built from an existing one. The insert gives the `AUTO_INCREMENT` column an
/// unused value below the counter (with `NO_AUTO_VALUE_ON_ZERO`), so the counter, which a
/// rollback does not set back, is not advanced; no DDL is run. Tables whose changes a rollback
/// would not undo (`not_transactional`) are read, not changed.
pub fn exercise(sql: &dyn Sql, tables: &[String]) -> Result<ExerciseReport, DbError> {
    let c = read_catalog(sql)?;
    check_tables(sql, c.inv.tables.keys(), tables)?;
    let lasting = not_transactional(sql)?;
    let mut report = ExerciseReport {
        engine: c.inv.engine.clone(),
        target: sql.describe(),
        server_version: c.inv.server_version.clone(),
        ..Default::default()
    };
    for table in c.inv.tables.keys() {
        if !driver::wanted(table, tables) {
            continue;
        }
        let tq = ident(table);
        let cols = c.columns.get(table).cloned().unwrap_or_default();
        let ixs = c.indexes.get(table).cloned().unwrap_or_default();
        let keyed: BTreeSet<String> = ixs
            .values()
            .filter(|ix| ix.unique)
            .flat_map(|ix| ix.columns.iter().map(|c| c.0.clone()))
            .collect();
        let mut ops = Vec::new();
        // Bounds of the unique numeric columns, for fresh values.
        let numeric_keys: Vec<&Col> = cols
            .iter()
            .filter(|c| keyed.contains(&c.name) && is_numeric(&c.data_type))
            .collect();
        let mut probe = vec![format!(
            "SELECT JSON_ARRAY('empty', NOT EXISTS (SELECT 1 FROM {tq}))"
        )];
        for (i, k) in numeric_keys.iter().enumerate() {
            probe.push(format!(
                "SELECT JSON_ARRAY('bounds', {i}, CAST(MIN({x}) AS CHAR), CAST(MAX({x}) AS CHAR)) FROM {tq}",
                x = ident(&k.name)
            ));
        }
        let mut st = SESSION.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        st.extend(probe);
        let mut empty = false;
        let mut bounds: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
        for line in sql.run(&st)? {
            let v = parse(sql, &line)?;
            match v[0].as_str() {
                Some("empty") => empty = truthy(&v[1]),
                Some("bounds") => {
                    if let Some(k) = num(&v[1]).and_then(|i| numeric_keys.get(i as usize)) {
                        bounds.insert(k.name.clone(), (opt(&v[2]), opt(&v[3])));
                    }
                }
                _ => {}
            }
        }
        // Reads through every index.
        for (name, ix) in &ixs {
            let what = format!("read through index {table}.{name}");
            if matches!(ix.kind.as_str(), "FULLTEXT" | "SPATIAL") {
                ops.push(Operation {
                    what,
                    status: Status::Skipped,
                    detail: format!(
                        "a {} index serves searches, not plain reads; not exercised",
                        ix.kind.to_lowercase()
                    ),
                });
                continue;
            }
            let first = ident(&ix.columns.first().map(|c| c.0.clone()).unwrap_or_default());
            let q = if ix.columns.iter().any(|c| c.1.is_some()) || ix.kind == "HASH" {
                format!(
                    "SELECT * FROM {tq} FORCE INDEX ({}) WHERE {first} = (SELECT {first} FROM {tq} WHERE {first} IS NOT NULL LIMIT 1)",
                    ident(name)
                )
            } else {
                let order: Vec<String> = ix
                    .columns
                    .iter()
                    .map(|(c, _, desc)| format!("{}{}", ident(c), if *desc { " DESC" } else { "" }))
                    .collect();
                format!(
                    "SELECT * FROM {tq} FORCE INDEX ({}) ORDER BY {} LIMIT 1000",
                    ident(name),
                    order.join(", ")
                )
            };
            let mut st = SESSION.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            st.push(format!("EXPLAIN {q}"));
            st.push(format!("SELECT JSON_ARRAY('read', COUNT(*)) FROM ({q}) s"));
            let result = sql.run(&st).map_err(|e| match e {
                DbError::Query { target, message } => DbError::Query {
                    target,
                    message: server_error(&message),
                },
                e => e,
            });
            ops.push(Operation::ran(what.clone(), result, |lines| {
                let used = lines
                    .iter()
                    .filter(|l| !l.starts_with('['))
                    .any(|l| l.split('\t').nth(5) == Some(name.as_str()));
                let n = lines
                    .iter()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .find(|v| v[0] == "read")
                    .and_then(|v| num(&v[1]))
                    .unwrap_or(0);
                if used || empty {
                    Operation::new(
                        what,
                        Status::Ok,
                        format!("{n} rows read, through the index"),
                    )
                } else {
                    Operation::new(what, Status::Failed, "the optimizer did not use the index")
                }
            })?);
        }
        let generated = |c: &Col| c.extra.to_ascii_uppercase().contains("GENERATED");
        let auto = |c: &Col| c.extra.contains("auto_increment");
        // Update.
        let target = cols
            .iter()
            .filter(|c| !keyed.contains(&c.name) && !generated(c) && !auto(c))
            .find(|c| changed(c).is_some());
        let lasting = lasting.get(table);
        match (empty, target) {
            _ if lasting.is_some() => ops.push(Operation::new(
                "update",
                Status::Skipped,
                lasting.cloned().unwrap_or_default(),
            )),
            (true, _) => ops.push(Operation {
                what: "update".into(),
                status: Status::Skipped,
                detail: "the table is empty".into(),
            }),
            (false, Some(col)) => {
                let q = format!(
                    "UPDATE {tq} t0 SET t0.{} = {} LIMIT 1",
                    ident(&col.name),
                    changed(col).unwrap_or_default()
                );
                let what = format!("update column {}", col.name);
                ops.push(Operation::changed(what, attempt(sql, &[], &q)?, "changed"));
            }
            (false, None) => ops.push(Operation {
                what: "update".into(),
                status: Status::Skipped,
                detail:
                    "no column outside the unique indexes whose type rehost knows how to change"
                        .into(),
            }),
        }
        // Insert.
        let mut names = Vec::new();
        let mut values = Vec::new();
        let mut skip: Option<String> = None;
        for col in cols.iter().filter(|c| !generated(c)) {
            let x = ident(&col.name);
            let value = if auto(col) {
                // Below the counter, so that the rolled-back insert does not advance it.
                let min = bounds
                    .get(&col.name)
                    .and_then(|b| b.0.as_deref())
                    .and_then(|m| m.parse::<i128>().ok());
                let v = match min {
                    None => 0,
                    Some(m) => m - 1,
                };
                if v < 0 && col.column_type.contains("unsigned") {
                    skip = Some(format!(
                        "no free value of {} below the AUTO_INCREMENT counter",
                        col.name
                    ));
                    break;
                }
                v.to_string()
            } else if keyed.contains(&col.name) {
                if is_numeric(&col.data_type) {
                    let max = bounds
                        .get(&col.name)
                        .and_then(|b| b.1.as_deref())
                        .and_then(|m| {
                            m.parse::<i128>()
                                .ok()
                                .or_else(|| m.parse::<f64>().ok().map(|f| f.floor() as i128))
                        });
                    match max {
                        Some(m) => (m + 1).to_string(),
                        None => "1".into(),
                    }
                } else if is_text(&col.data_type) {
                    // Random hex drawn until one the table does not hold: a short key (a
                    // CHAR(2) code) would otherwise collide with an existing one often. A
                    // thousand candidates from a cross join of digits, not a recursive CTE,
                    // which MySQL 5.7 lacks.
                    let n = col.max_len.unwrap_or(32).clamp(1, 32);
                    let digits = "(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 \
                                  UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 \
                                  UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)";
                    format!(
                        "(SELECT c.v FROM (SELECT LEFT(MD5(CONCAT(RAND(), '-', a.d, b.d, g.d)), {n}) AS v \
                         FROM {digits} a CROSS JOIN {digits} b CROSS JOIN {digits} g) c \
                         WHERE NOT EXISTS (SELECT 1 FROM (SELECT {x} AS k FROM {tq}) e WHERE e.k = c.v) \
                         LIMIT 1)"
                    )
                } else if is_date(&col.data_type) && !empty {
                    format!("(SELECT MAX({x}) FROM (SELECT {x} FROM {tq}) m) + INTERVAL 1 DAY")
                } else if empty {
                    "DEFAULT".into()
                } else {
                    format!("t0.{x}")
                }
            } else if empty {
                if col.not_null && col.default.is_none() {
                    if is_numeric(&col.data_type) {
                        "0".into()
                    } else if is_date(&col.data_type) {
                        "NOW()".into()
                    } else {
                        "''".into()
                    }
                } else {
                    "DEFAULT".into()
                }
            } else {
                format!("t0.{x}")
            };
            names.push(x);
            values.push(value);
        }
        let what = "insert a new row".to_owned();
        if let Some(why) = lasting {
            skip = Some(why.clone());
        }
        match skip {
            Some(why) => ops.push(Operation {
                what,
                status: Status::Skipped,
                detail: why,
            }),
            None => {
                let q = if empty {
                    format!(
                        "INSERT INTO {tq} ({}) VALUES ({})",
                        names.join(", "),
                        values.join(", ")
                    )
                } else {
                    format!(
                        "INSERT INTO {tq} ({}) SELECT {} FROM {tq} t0 LIMIT 1",
                        names.join(", "),
                        values.join(", ")
                    )
                };
                let setup = [
                    "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_AUTO_VALUE_ON_ZERO')"
                        .to_owned(),
                ];
                ops.push(Operation::inserted(attempt(sql, &setup, &q)?, empty));
            }
        }
        report.tables.push(TableExercise {
            table: table.clone(),
            operations: ops,
        });
    }
    Ok(report)
}
