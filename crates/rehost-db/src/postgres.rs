//! PostgreSQL as a [`Dialect`] of the engine-neutral driver ([`crate::driver`], which runs the
//! passes): the SQL that reads a database's inventory from its catalogs (with each integer
//! key's min and max, read through its index, and a probe of the hash functions) and computes
//! its content checksums inside the server.
//!
//! Content: every row's digest is a 64-bit hash of its values (see [`column_hash`]: each
//! column hashed by its type's own hash function where that is exact, else by its text printed
//! with fixed session settings: UTC, ISO dates, all float digits, hex bytea); a table's
//! checksum is the row count and the exact sum of the digests, which does not depend on row
//! order. Slices that differ are split by ranges of an integer key, else by buckets of the md5
//! of the key's text.
//!
//! Row hash: where both servers give the same value for a probe of every hash function used
//! (same byte order, same algorithms), the sums use the types' hash functions (`row_hash`),
//! about three times as fast as hashing the row's text and six times as fast as md5; else the
//! first 64 bits of the md5 of the row's text. Listed rows are always compared by the md5 of
//! their text.

use crate::driver::{self, Dialect, Extra, PlanColumn, TablePlan};
use crate::model::*;
use crate::report::Report;
use crate::{DbError, Sql};
use serde_json::Value;

pub(crate) use crate::driver::parse;

/// Fixed output settings for every session, so both sides print values alike.
pub const SESSION: &[&str] = &[
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 3",
    "SET bytea_output = 'hex'",
    "SET search_path = ''",
    "SET statement_timeout = 0",
    "SET application_name = 'rehost verify db'",
];

#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Compare only these tables (qualified `schema.table` or bare `table`); all when empty.
    pub tables: Vec<String>,
    /// Queries in flight per side.
    pub parallel: usize,
    /// How many ways a differing slice is split at least on the way down to its rows (more
    /// when it holds many rows: about `list_rows` per sub-slice, at most 1024 ways).
    pub split: u32,
    /// A slice with at most this many rows on each side is listed row by row.
    pub list_rows: u64,
    /// Row findings reported per table at most.
    pub max_rows: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            tables: Vec::new(),
            parallel: 4,
            split: 16,
            list_rows: 2000,
            max_rows: 1000,
        }
    }
}

/// Runs statements after the session settings.
pub(crate) fn session(sql: &dyn Sql, statements: &[String]) -> Result<Vec<String>, DbError> {
    let mut all: Vec<String> = SESSION.iter().map(|s| s.to_string()).collect();
    all.extend_from_slice(statements);
    sql.run(&all)
}

/// `'text'` as an SQL string literal (standard_conforming_strings is on since 9.1).
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `"name"` as an SQL identifier.
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Schemas that belong to the server, and objects that belong to extensions, are not the
/// database's own.
const USER_REL: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
    AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' \
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
    AND d.objid = c.oid AND d.deptype = 'e')";

/// The database's own schemas: not the server's, not an extension's, and not `public`, whose
/// owner and privileges PostgreSQL 15 changed by design (`pg_database_owner`, no CREATE for
/// PUBLIC).
const USER_SCHEMA: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'public') \
    AND n.nspname NOT LIKE 'pg\\_%' \
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass \
    AND d.objid = n.oid AND d.deptype = 'e')";

/// The database's own functions (as the `function` objects).
const USER_FUNC: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass \
    AND d.objid = p.oid AND d.deptype = 'e')";

/// Relations that have an owner and privileges of their own: tables, partitioned tables, views,
/// materialized views, sequences, foreign tables.
const OWNED_RELKINDS: &str = "c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')";

/// What `acl` grants beyond `default` (the owner's privileges when nobody granted or revoked
/// anything, `acldefault`), and what it lacks of them, per grantee, grantors left out: `granted
/// to app: SELECT UPDATE; revoked from PUBLIC: EXECUTE`; NULL when it is the default. Relative
/// to each side's own default, so a new major version whose owners get more by default
/// (MAINTAIN, PostgreSQL 17) is not a difference.
fn acl_delta(acl: &str, default: &str) -> String {
    let who =
        "CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(e.grantee)) END";
    let what = "e.privilege_type || CASE WHEN e.is_grantable THEN ' (grantable)' ELSE '' END";
    let part = |label: &str, from: &str, minus: &str| {
        format!(
            "SELECT '{label} ' || g || ': ' || string_agg(p, ' ' ORDER BY p) AS x FROM (\
             SELECT {who} AS g, {what} AS p FROM aclexplode({from}) e \
             EXCEPT SELECT {who}, {what} FROM aclexplode({minus}) e) q GROUP BY g"
        )
    };
    format!(
        "(SELECT string_agg(x, '; ' ORDER BY x) FROM ({} UNION ALL {}) parts)",
        part(
            "granted to",
            &format!("coalesce({acl}, {default})"),
            default
        ),
        part(
            "revoked from",
            default,
            &format!("coalesce({acl}, {default})")
        ),
    )
}

/// Owners, privileges and the roles they name: what a dump restored without its roles
/// (`pg_dump` carries no roles; `--no-owner`, `--no-privileges`) loses, and the application's
/// logins with it. A role's password is never read (`pg_roles` shows none).
fn access_queries() -> Vec<String> {
    let rel_default =
        "acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", c.relowner)";
    let used = format!(
        "WITH RECURSIVE used(r) AS (\
         SELECT c.relowner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE {OWNED_RELKINDS} AND {USER_REL} \
         UNION SELECT e.grantee FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         CROSS JOIN LATERAL aclexplode(c.relacl) e WHERE c.relacl IS NOT NULL AND {USER_REL} \
         UNION SELECT n.nspowner FROM pg_namespace n WHERE {USER_SCHEMA} \
         UNION SELECT e.grantee FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) e \
         WHERE n.nspacl IS NOT NULL AND {USER_SCHEMA} \
         UNION SELECT p.proowner FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE {USER_FUNC} \
         UNION SELECT e.grantee FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         CROSS JOIN LATERAL aclexplode(p.proacl) e WHERE p.proacl IS NOT NULL AND {USER_FUNC} \
         UNION SELECT datdba FROM pg_database WHERE datname = current_database() \
         UNION SELECT defaclrole FROM pg_default_acl \
         UNION SELECT e.grantee FROM pg_default_acl CROSS JOIN LATERAL aclexplode(defaclacl) e \
         UNION SELECT m.member FROM pg_auth_members m JOIN used u ON m.roleid = u.r) "
    );
    vec![
        format!(
            "SELECT json_build_array('owner', c.oid::regclass::text, \
             quote_ident(pg_get_userbyid(c.relowner)))::text \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE {OWNED_RELKINDS} AND {USER_REL}"
        ),
        format!(
            "SELECT json_build_array('owner', 'schema ' || quote_ident(n.nspname), \
             quote_ident(pg_get_userbyid(n.nspowner)))::text FROM pg_namespace n WHERE {USER_SCHEMA}"
        ),
        format!(
            "SELECT json_build_array('owner', p.oid::regprocedure::text, \
             quote_ident(pg_get_userbyid(p.proowner)))::text \
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {USER_FUNC}"
        ),
        format!(
            "SELECT json_build_array('privileges', name, def)::text FROM (\
             SELECT c.oid::regclass::text AS name, {} AS def \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relacl IS NOT NULL AND {OWNED_RELKINDS} AND {USER_REL}) x WHERE def IS NOT NULL",
            acl_delta("c.relacl", rel_default)
        ),
        format!(
            "SELECT json_build_array('privileges', name, def)::text FROM (\
             SELECT 'schema ' || quote_ident(n.nspname) AS name, {} AS def \
             FROM pg_namespace n WHERE n.nspacl IS NOT NULL AND {USER_SCHEMA}) x WHERE def IS NOT NULL",
            acl_delta("n.nspacl", "acldefault('n', n.nspowner)")
        ),
        format!(
            "SELECT json_build_array('privileges', name, def)::text FROM (\
             SELECT p.oid::regprocedure::text AS name, {} AS def \
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE p.proacl IS NOT NULL AND {USER_FUNC}) x WHERE def IS NOT NULL",
            acl_delta("p.proacl", "acldefault('f', p.proowner)")
        ),
        // ALTER DEFAULT PRIVILEGES: what new objects will grant. A global entry replaces the
        // owner's defaults (so it is read relative to them); one for a schema adds to them.
        format!(
            "SELECT json_build_array('privileges', name, def)::text FROM (\
             SELECT 'default privileges of ' || quote_ident(pg_get_userbyid(d.defaclrole)) || \
             CASE WHEN d.defaclnamespace = 0 THEN '' \
             ELSE ' in schema ' || quote_ident(n.nspname) END || ' on ' || \
             CASE d.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences' \
             WHEN 'f' THEN 'functions' WHEN 'T' THEN 'types' WHEN 'n' THEN 'schemas' \
             ELSE d.defaclobjtype::text END AS name, {} AS def \
             FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace) x \
             WHERE def IS NOT NULL",
            acl_delta(
                "d.defaclacl",
                "CASE WHEN d.defaclnamespace = 0 THEN acldefault(\
                 CASE WHEN d.defaclobjtype = 'S' THEN 's' ELSE d.defaclobjtype END, d.defaclrole) \
                 ELSE NULL::aclitem[] END"
            )
        ),
        format!(
            "{used}SELECT json_build_array('role', quote_ident(r.rolname), concat_ws(', ', \
             CASE WHEN r.rolcanlogin THEN 'login' ELSE 'nologin' END, \
             CASE WHEN r.rolsuper THEN 'superuser' END, \
             CASE WHEN NOT r.rolinherit THEN 'noinherit' END, \
             CASE WHEN r.rolcreatedb THEN 'createdb' END, \
             CASE WHEN r.rolcreaterole THEN 'createrole' END, \
             CASE WHEN r.rolreplication THEN 'replication' END, \
             CASE WHEN r.rolbypassrls THEN 'bypassrls' END, \
             CASE WHEN r.rolconnlimit <> -1 THEN 'connection limit ' || r.rolconnlimit END, \
             CASE WHEN r.rolvaliduntil IS NOT NULL THEN 'valid until ' || r.rolvaliduntil END, \
             (SELECT 'member of ' || string_agg(DISTINCT quote_ident(g.rolname), ' ' \
              ORDER BY quote_ident(g.rolname)) \
              FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid)))::text \
             FROM pg_roles r WHERE r.oid IN (SELECT r FROM used)"
        ),
    ]
}

/// The catalog queries: each row is one JSON array whose first element says what it is.
///
/// A table's row also carries the min and max of its key when that is one integer column
/// (read through the key's index by `query_to_xml`, SQL's way to run a query built from a
/// name), so that splitting the key range costs no second session.
pub fn inventory_queries() -> Vec<String> {
    vec![
        format!(
        "SELECT json_build_array('db', current_setting('server_version'), current_database(), \
         pg_encoding_to_char(encoding), datcollate, datctype, \
         {PROBE})::text \
         FROM pg_database WHERE datname = current_database()"
        ),
        format!(
            "SELECT json_build_array('table', c.oid::regclass::text, \
             (SELECT coalesce(json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod), \
               a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid), \
               CASE WHEN a.attcollation <> t.typcollation THEN co.collname END) ORDER BY a.attnum), '[]') \
              FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
              LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum \
              LEFT JOIN pg_collation co ON co.oid = a.attcollation \
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), \
             (SELECT coalesce(json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod)) ORDER BY k.ord), '[]') \
              FROM pg_index i CROSS JOIN unnest(i.indkey) WITH ORDINALITY k(attnum, ord) \
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
              WHERE i.indrelid = c.oid AND i.indisprimary), c.reltuples::bigint, \
             (xpath('/row/lo/text()', r.x))[1]::text::bigint, \
             (xpath('/row/hi/text()', r.x))[1]::text::bigint)::text \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN LATERAL (SELECT query_to_xml(format('SELECT min(%1$I) AS lo, max(%1$I) AS hi FROM ONLY %2$s', \
               a.attname, c.oid::regclass), false, true, '') AS x \
              FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
              WHERE i.indrelid = c.oid AND i.indisprimary AND i.indnkeyatts = 1 \
              AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)) r ON true \
             WHERE c.relkind IN ('r', 'p') AND {USER_REL}"
        ),
        format!(
            "SELECT json_build_array('constraint', con.conrelid::regclass::text || '.' || quote_ident(con.conname), \
             pg_get_constraintdef(con.oid))::text \
             FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {USER_REL}"
        ),
        format!(
            "SELECT json_build_array('index', i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid))::text \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {USER_REL}"
        ),
        format!(
            "SELECT json_build_array(CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized_view' END, \
             c.oid::regclass::text, pg_get_viewdef(c.oid))::text \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('v', 'm') AND {USER_REL}"
        ),
        "SELECT json_build_array('function', p.oid::regprocedure::text, \
         CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) ELSE p.prokind::text END)::text \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass \
         AND d.objid = p.oid AND d.deptype = 'e')"
            .into(),
        format!(
            "SELECT json_build_array('trigger', t.tgrelid::regclass::text || '.' || quote_ident(t.tgname), \
             pg_get_triggerdef(t.oid))::text \
             FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal AND {USER_REL}"
        ),
        "SELECT json_build_array('extension', extname, 'version ' || extversion)::text FROM pg_extension"
            .into(),
        format!(
            "SELECT json_build_array('sequence', s.seqrelid::regclass::text, format_type(s.seqtypid, NULL), \
             s.seqincrement, pg_sequence_last_value(s.seqrelid))::text \
             FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {USER_REL}"
        ),
    ]
    .into_iter()
    .chain(access_queries())
    .collect()
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn opt(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// Every hash function [`column_hash`] uses, applied to a fixed value and combined: equal on
/// two servers when their hash functions agree (one byte order; the same algorithms, which
/// PostgreSQL keeps across major versions because hash partitions depend on them).
const PROBE: &str = "hashtextextended('rehost byte order probe', 0) \
    # hashint2extended(7::smallint, 1) # hashint4extended(-77, 2) \
    # hashint8extended(-1234567890123, 3) # hashbpcharextended('x y '::character(5), 4) \
    # hash_numeric_extended(12.3450, 5) # hashfloat8extended(0.1, 6) \
    # hashfloat4extended(0.5, 7) # uuid_hash_extended('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 8) \
    # timestamp_hash_extended('2024-02-29 12:34:56.789', 9) \
    # time_hash_extended('12:34:56', 10) # timetz_hash_extended('12:34:56+02', 11) \
    # jsonb_hash_extended('{\"a\": [1, \"x\", 2.50, null, true]}', 12)";

/// The schema part of the inventory, and what the content pass needs.
pub fn read_inventory(sql: &dyn Sql) -> Result<(Inventory, Extra), DbError> {
    let lines = session(sql, &inventory_queries())?;
    let mut inv = Inventory {
        engine: "postgresql".into(),
        ..Default::default()
    };
    let mut extra = Extra::default();
    for line in &lines {
        let v = parse(sql, line)?;
        let a = v.as_array().cloned().unwrap_or_default();
        let get = |i: usize| a.get(i).cloned().unwrap_or(Value::Null);
        let tag = s(&get(0));
        match tag.as_str() {
            "db" => {
                inv.server_version = s(&get(1));
                inv.database = s(&get(2));
                inv.encoding = s(&get(3));
                inv.collate = s(&get(4));
                inv.ctype = s(&get(5));
                extra.probe = get(6).as_i64();
            }
            "table" => {
                let name = s(&get(1));
                let columns: Vec<Column> = get(2)
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|c| Column {
                        name: s(&c[0]),
                        data_type: s(&c[1]),
                        not_null: c[2].as_bool().unwrap_or(false),
                        default: opt(&c[3]),
                        collation: opt(&c[4]),
                    })
                    .collect();
                let pk: Vec<Value> = get(3).as_array().cloned().unwrap_or_default();
                extra.column_types.insert(
                    name.clone(),
                    columns
                        .iter()
                        .map(|c: &Column| (c.name.clone(), c.data_type.clone()))
                        .collect(),
                );
                extra
                    .estimates
                    .insert(name.clone(), get(4).as_i64().unwrap_or(-1));
                let int_key = pk.len() == 1 && pk.iter().all(|k| is_integer(&s(&k[1])));
                extra.int_key.insert(name.clone(), int_key);
                if int_key {
                    let bounds = get(5).as_i64().zip(get(6).as_i64());
                    extra.key_bounds.insert(name.clone(), bounds);
                }
                inv.tables.insert(
                    name,
                    Table {
                        columns,
                        primary_key: pk.iter().map(|k| s(&k[0])).collect(),
                        content: None,
                    },
                );
            }
            "sequence" => {
                inv.sequences.insert(
                    s(&get(1)),
                    Sequence {
                        data_type: s(&get(2)),
                        increment: get(3).as_i64().unwrap_or(0),
                        last_value: get(4).as_i64(),
                    },
                );
            }
            kind => {
                let kind = match kind {
                    "constraint" => ObjectKind::Constraint,
                    "index" => ObjectKind::Index,
                    "view" => ObjectKind::View,
                    "materialized_view" => ObjectKind::MaterializedView,
                    "function" => ObjectKind::Function,
                    "trigger" => ObjectKind::Trigger,
                    "extension" => ObjectKind::Extension,
                    "owner" => ObjectKind::Owner,
                    "privileges" => ObjectKind::Privileges,
                    "role" => ObjectKind::Role,
                    other => {
                        return Err(DbError::Answer {
                            target: sql.describe(),
                            message: format!("unknown catalog row `{other}`"),
                        });
                    }
                };
                inv.objects.push(SchemaObject {
                    kind,
                    name: s(&get(1)),
                    definition: s(&get(2)),
                });
            }
        }
    }
    inv.objects.sort();
    Ok((inv, extra))
}

/// A type's name without its modifiers: `numeric(12,3)` is `numeric`, `timestamp(3) with time
/// zone` is `timestamp with time zone`.
fn base_type(t: &str) -> String {
    let mut out = String::new();
    let mut depth = 0u32;
    let mut quoted = false;
    for ch in t.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                out.push(ch);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(ch),
            _ => {}
        }
    }
    out.trim().to_owned()
}

/// A 64-bit hash of `col` (an SQL expression of type `data_type`) with `seed`, NULL for NULL.
///
/// Each type's own extended hash function (the one hash indexes and hash partitions use) where
/// it tells values apart exactly as their text does, else `hashtextextended` of the text:
/// - exact: `smallint`, `integer`, `bigint` (these three hash alike, so `integer` → `bigint`
///   keeps the sums), `oid`, `text` and `varchar` and `char(n)` (their bytes: `COLLATE "C"`
///   also where the column's collation is nondeterministic), `uuid`, `boolean`, `timestamp`,
///   `timestamptz` (as UTC), `time`, `timetz`; `numeric` by its value and its display scale
///   (the value's hash alone has `1.0` = `1.00`);
/// - equal by the type's own equality, not its text: `real`, `double precision` (`-0` = `0`;
///   every NaN is one), `jsonb` (a number by its value: `1.0` = `1.00` inside a document);
/// - by text: everything else. Arrays (their hash ignores the dimensions and needs the
///   element's hash), `json`, `xml`, geometric types (no hash), `interval` (`1 day` = `24
///   hours`), enums and `reg*` types (they hash the OID, which a restore changes), `date`,
///   `bytea`, domains, ranges, composite and extension types.
pub fn column_hash(col: &str, data_type: Option<&str>, seed: &str) -> String {
    let f = |func: &str| format!("{func}({col}, {seed})");
    let base = data_type.map(base_type).unwrap_or_default();
    match base.as_str() {
        "smallint" => f("hashint2extended"),
        "integer" => f("hashint4extended"),
        "bigint" => f("hashint8extended"),
        "oid" => f("hashoidextended"),
        "text" | "character varying" => {
            format!("hashtextextended({col} COLLATE \"C\", {seed})")
        }
        "character" => format!("hashbpcharextended({col} COLLATE \"C\", {seed})"),
        "uuid" => f("uuid_hash_extended"),
        "boolean" => format!("hashint4extended({col}::integer, {seed})"),
        "timestamp without time zone" => f("timestamp_hash_extended"),
        // The session's TimeZone is UTC: the same instant is the same timestamp.
        "timestamp with time zone" => {
            format!("timestamp_hash_extended({col}::timestamp, {seed})")
        }
        "time without time zone" => f("time_hash_extended"),
        "time with time zone" => f("timetz_hash_extended"),
        "numeric" => format!("(hash_numeric_extended({col}, {seed}) # coalesce(scale({col}), -1))"),
        "double precision" => f("hashfloat8extended"),
        "real" => f("hashfloat4extended"),
        "jsonb" => f("jsonb_hash_extended"),
        _ => format!("hashtextextended(({col})::text COLLATE \"C\", {seed})"),
    }
}

/// A fixed 64-bit constant per column position (splitmix64), as an SQL literal.
fn constant(i: usize, salt: u64) -> String {
    let mut z = (i as u64 ^ salt).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    format!("({})", z as i64)
}

/// The columns of `plan` as `t."name"`, in the plan's order.
fn columns(plan: &TablePlan) -> Vec<String> {
    plan.columns
        .iter()
        .map(|c| format!("t.{}", ident(&c.name)))
        .collect()
}

/// The md5 of the row's text: what listed rows are compared by, and (its first 64 bits) the
/// row hash where the servers' hash functions differ.
fn row_digest(plan: &TablePlan) -> String {
    format!("md5(ROW({})::text)", columns(plan).join(", "))
}

/// The row's 64-bit digest as an SQL expression.
///
/// Fast (both servers hash alike): the columns that may be NULL are hashed each with a seed of
/// its own (a NULL is a constant of its own) and combined by xor; that is the seed of the first
/// NOT NULL column's hash (the key's, where the table has one), whose hash is the seed of the
/// next one's, and so on. Chaining through the seed makes the digest a non-linear function of
/// the whole row, so values swapped between rows change the sum (with an xor or a sum of
/// per-column hashes alone they would cancel), at the cost of one hash call per column. No row
/// text is built: that was two thirds of the time. A column whose type differs between the
/// sides is hashed by its text.
pub(crate) fn row_hash(plan: &TablePlan) -> String {
    fn ty(c: &PlanColumn) -> Option<&str> {
        c.same_type.then_some(c.data_type.as_str())
    }
    if !plan.fast {
        return format!("('x' || left({}, 16))::bit(64)::bigint", row_digest(plan));
    }
    let mut free = Vec::new();
    for (i, c) in plan.columns.iter().enumerate() {
        if !c.not_null {
            let col = format!("t.{}", ident(&c.name));
            free.push(format!(
                "coalesce({}, {})",
                column_hash(&col, ty(c), &constant(i, 1)),
                constant(i, 2)
            ));
        }
    }
    let mut acc = match free.len() {
        0 => "0".to_owned(),
        _ => format!("({})", free.join(" # ")),
    };
    for c in plan.columns.iter().filter(|c| c.not_null) {
        let col = format!("t.{}", ident(&c.name));
        acc = column_hash(&col, ty(c), &acc);
    }
    // NOT NULL is enforced, but a NULL must not make a row vanish from the sum.
    format!("coalesce({acc}, 0)")
}

fn is_integer(t: &str) -> bool {
    matches!(t, "smallint" | "integer" | "bigint")
}

/// Whether the qualified table `name` is the one `--table` names (qualified or bare).
pub(crate) fn wanted_pub(name: &str, table: &str) -> bool {
    driver::wanted(name, &[table.to_owned()])
}

/// PostgreSQL as a [`Dialect`] of the engine-neutral driver.
pub struct Postgres;

/// What a PostgreSQL verification does not compare (the report's scope; docs/db.md lists the
/// same): what the inventory queries above do not read.
pub const NOT_COMPARED: &[&str] = &[
    "large objects (pg_largeobject)",
    "rows of materialized views and foreign tables (their definitions and owners are compared)",
    "objects that belong to an extension, and their content (the extension's version is compared)",
    "types, domains and enum labels the database defines (columns are compared by type name)",
    "column privileges, row-level security and its policies, rules other than views",
    "comments, statistics objects, operators, casts, collations and text search configurations the database defines",
    "table options: tablespaces, storage parameters, UNLOGGED, partition keys and bounds",
    "publications, subscriptions, foreign servers and user mappings, event triggers",
    "the database's own privileges and settings (CONNECT, ALTER DATABASE … SET) and roles' settings (ALTER ROLE … SET)",
    "roles that no owner, grant or membership of this database names, and every role's password (never read)",
    "the owner and privileges of the public schema (PostgreSQL 15 changed both by design)",
    "the server's configuration (postgresql.conf, pg_hba.conf)",
];

impl Dialect for Postgres {
    fn engine(&self) -> &'static str {
        "postgresql"
    }
    fn not_compared(&self) -> Vec<String> {
        NOT_COMPARED.iter().map(|s| s.to_string()).collect()
    }
    fn session(&self) -> Vec<String> {
        SESSION.iter().map(|s| s.to_string()).collect()
    }
    fn read_inventory(&self, sql: &dyn Sql) -> Result<(Inventory, Extra), DbError> {
        read_inventory(sql)
    }
    fn from(&self, plan: &TablePlan) -> String {
        format!("FROM ONLY {} t", plan.table)
    }
    fn key_expr(&self, plan: &TablePlan) -> String {
        format!("t.{}", ident(&plan.key[0]))
    }
    /// 31 bits of the md5 of the key's text.
    fn key_hash(&self, plan: &TablePlan) -> String {
        let cols: Vec<String> = plan.key.iter().map(|c| format!("t.{}", ident(c))).collect();
        format!(
            "(('x' || left(md5(ROW({})::text), 8))::bit(32)::bigint & 2147483647)",
            cols.join(", ")
        )
    }
    fn range_bucket(&self, plan: &TablePlan, lo: i64, width: i64, wide: bool) -> String {
        // A key range wider than bigint holds is bucketed in numeric (slower, exact).
        if wide {
            format!(
                "div({}::numeric - ({lo}), {width})::bigint",
                self.key_expr(plan)
            )
        } else {
            format!("({} - ({lo})) / {width}", self.key_expr(plan))
        }
    }
    fn sums_query(&self, plan: &TablePlan, bucket: &str, filter: &str) -> String {
        format!(
            "SELECT json_build_array(b, count(*), sum(h)::text)::text FROM \
             (SELECT {bucket} AS b, {h} AS h {from} WHERE {filter}) s GROUP BY b",
            h = row_hash(plan),
            from = self.from(plan),
        )
    }
    /// No grouping: the pass that finds tables equal does the least work.
    fn sum_query(&self, plan: &TablePlan, filter: &str) -> String {
        format!(
            "SELECT json_build_array(0, count(*), coalesce(sum({h}), 0)::text)::text {from} WHERE {filter}",
            h = row_hash(plan),
            from = self.from(plan),
        )
    }
    /// Listed rows are compared by the md5 of their text, on any server.
    fn rows_query(&self, plan: &TablePlan, filter: &str) -> String {
        let keys: Vec<String> = plan
            .key
            .iter()
            .map(|c| format!("t.{}::text", ident(c)))
            .collect();
        format!(
            "SELECT json_build_array(json_build_array({}), {})::text {} WHERE {filter}",
            keys.join(", "),
            row_digest(plan),
            self.from(plan),
        )
    }
    /// Only asked for a table whose bounds an inventory lacks (the inventory reads them).
    fn min_max_query(&self, plan: &TablePlan) -> String {
        format!(
            "SELECT json_build_array(min({k}), max({k}))::text {}",
            self.from(plan),
            k = self.key_expr(plan)
        )
    }
    fn all_rows(&self) -> &'static str {
        "true"
    }
    /// `psql` takes each statement as an argument of its own: one session per job, as many
    /// statements as it has.
    fn session_text(&self) -> usize {
        usize::MAX
    }
}

/// Verifies database `b` against `a`: schema, per-table counts and checksums (in parallel, both
/// sides at once), sequences; differing slices located to rows.
pub fn verify(a: &dyn Sql, b: &dyn Sql, opts: &VerifyOptions) -> Result<Report, DbError> {
    driver::verify(&Postgres, a, b, opts)
}
