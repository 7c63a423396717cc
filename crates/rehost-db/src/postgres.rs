//! PostgreSQL: the SQL that reads a database's inventory from its catalogs and computes its
//! content checksums inside the server, and the driver that runs it on both sides and locates
//! differing rows.
//!
//! Content: every row's digest is a 64-bit hash of its values (see [`column_hash`]: each
//! column hashed by its type's own hash function where that is exact, else by its text printed
//! with fixed session settings: UTC, ISO dates, all float digits, hex bytea); a table's
//! checksum is the row count and the exact sum of the digests, which does not depend on row
//! order. A large table with an integer key is summed in parts of its key range,
//! parts in parallel (small tables are batched into one session). A part that differs is split
//! (ranges of an integer key, else buckets of the key's md5) with one grouped query per side,
//! and again, until a slice holds few enough rows to list key and digest on both sides, which
//! names the rows that are missing, extra or changed.
//!
//! Row hash: where both servers give the same value for a probe of every hash function used
//! (same byte order, same algorithms), the sums use the types' hash functions, about three
//! times as fast as hashing the row's text and six times as fast as md5; else the first 64
//! bits of the md5 of the row's text. Listed rows are always compared by the md5 of their text.

use crate::compare::{RowDigest, compare, compare_rows};
use crate::model::*;
use crate::report::{Class, Finding, Report};
use crate::{DbError, Sql};
use serde_json::Value;
use std::collections::BTreeMap;

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

pub(crate) fn parse(sql: &dyn Sql, line: &str) -> Result<Value, DbError> {
    serde_json::from_str(line).map_err(|e| DbError::Answer {
        target: sql.describe(),
        message: format!("{e} in {:?}", line.chars().take(200).collect::<String>()),
    })
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

/// What the content pass needs beyond the inventory: each table's key types and estimated
/// rows, and the server's [`PROBE`] (equal on servers whose hash functions agree).
#[derive(Clone, Debug, Default)]
pub struct Extra {
    pub key_types: BTreeMap<String, Vec<String>>,
    pub estimates: BTreeMap<String, i64>,
    /// Min and max of an integer key, `None` for an empty table.
    pub key_bounds: BTreeMap<String, Option<(i64, i64)>>,
    pub probe: Option<i64>,
}

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
                let columns = get(2)
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
                extra
                    .key_types
                    .insert(name.clone(), pk.iter().map(|k| s(&k[1])).collect());
                extra
                    .estimates
                    .insert(name.clone(), get(4).as_i64().unwrap_or(-1));
                if pk.len() == 1 && pk.iter().all(|k| is_integer(&s(&k[1]))) {
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

/// How one table's content is summed: which columns make the row, which the key, and how the
/// key space is sliced.
#[derive(Clone, Debug)]
pub struct TablePlan {
    pub table: String,
    /// Columns both sides have, in name order.
    pub columns: Vec<PlanColumn>,
    /// Primary key columns (both sides agree), empty when none.
    pub key: Vec<String>,
    /// Integer key: the common `lo..hi` of both sides (`None`: hash slices, or no key).
    pub range: Option<(i64, i64)>,
    /// Rows, as the planner estimates them (for splitting large tables, batching small ones).
    pub estimate: i64,
    /// Sum the types' hash functions over the values ([`column_hash`]), when both servers hash
    /// alike; else the first 64 bits of the md5 of the row's text.
    pub fast: bool,
}

/// A column as the content pass hashes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanColumn {
    pub name: String,
    /// The type, when both sides have the same (else the column is hashed by its text, so a
    /// value that prints the same in both types is equal, as before the type's own finding).
    pub data_type: Option<String>,
    /// NOT NULL on both sides.
    pub not_null: bool,
}

impl PlanColumn {
    pub fn new(name: &str, data_type: Option<&str>, not_null: bool) -> Self {
        PlanColumn {
            name: name.to_owned(),
            data_type: data_type.map(str::to_owned),
            not_null,
        }
    }
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

impl TablePlan {
    fn row_digest(&self) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("t.{}", ident(&c.name)))
            .collect();
        format!("md5(ROW({})::text)", cols.join(", "))
    }
    /// The row's 64-bit digest as an SQL expression.
    ///
    /// Fast (both servers hash alike): the columns that may be NULL are hashed each with a
    /// seed of its own (a NULL is a constant of its own) and combined by xor; that is the seed
    /// of the first NOT NULL column's hash (the key's, where the table has one), whose hash is
    /// the seed of the next one's, and so on. Chaining through the seed makes the digest a
    /// non-linear function of the whole row, so values swapped between rows change the sum
    /// (with an xor or a sum of per-column hashes alone they would cancel), at the cost of one
    /// hash call per column. No row text is built: that was two thirds of the time.
    pub(crate) fn row_hash(&self) -> String {
        if !self.fast {
            return format!("('x' || left({}, 16))::bit(64)::bigint", self.row_digest());
        }
        let mut free = Vec::new();
        for (i, c) in self.columns.iter().enumerate() {
            if !c.not_null {
                let col = format!("t.{}", ident(&c.name));
                free.push(format!(
                    "coalesce({}, {})",
                    column_hash(&col, c.data_type.as_deref(), &constant(i, 1)),
                    constant(i, 2)
                ));
            }
        }
        let mut acc = match free.len() {
            0 => "0".to_owned(),
            _ => format!("({})", free.join(" # ")),
        };
        for c in self.columns.iter().filter(|c| c.not_null) {
            let col = format!("t.{}", ident(&c.name));
            acc = column_hash(&col, c.data_type.as_deref(), &acc);
        }
        // NOT NULL is enforced, but a NULL must not make a row vanish from the sum.
        format!("coalesce({acc}, 0)")
    }
    fn key_expr(&self) -> String {
        format!("t.{}", ident(&self.key[0]))
    }
    /// The key's bucket number for hash slices: 31 bits of the md5 of the key's text.
    fn key_hash(&self) -> String {
        let cols: Vec<String> = self.key.iter().map(|c| format!("t.{}", ident(c))).collect();
        format!(
            "(('x' || left(md5(ROW({})::text), 8))::bit(32)::bigint & 2147483647)",
            cols.join(", ")
        )
    }
    fn from(&self) -> String {
        format!("FROM ONLY {} t", self.table)
    }
    fn filter(&self, slice: &Slice) -> String {
        match slice {
            Slice::All => "true".into(),
            Slice::KeyRange { lo, hi } => {
                format!("{k} >= {lo} AND {k} < {hi}", k = self.key_expr())
            }
            Slice::Hash { modulus, residue } => {
                format!("{} % {modulus} = {residue}", self.key_hash())
            }
        }
    }

    /// The grouped query summing `parent` split into `ways` sub-slices: rows of
    /// `[bucket, count, sum]`.
    pub(crate) fn sums_query(&self, parent: &Slice, ways: u32) -> (String, Vec<Slice>) {
        if ways <= 1 || self.key.is_empty() {
            // One sum, no grouping: the pass that finds tables equal does the least work.
            let sql = format!(
                "SELECT json_build_array(0, count(*), coalesce(sum({h}), 0)::text)::text {from} WHERE {filter}",
                h = self.row_hash(),
                from = self.from(),
                filter = self.filter(parent),
            );
            return (sql, vec![parent.clone()]);
        }
        let (bucket, subs) = match parent {
            Slice::All if self.key.is_empty() => ("0".to_owned(), vec![Slice::All]),
            Slice::All => {
                let m = ways;
                (
                    format!("{} % {m}", self.key_hash()),
                    (0..m)
                        .map(|r| Slice::Hash {
                            modulus: m,
                            residue: r,
                        })
                        .collect(),
                )
            }
            Slice::KeyRange { lo, hi } => {
                let width = ((*hi as i128 - *lo as i128) + ways as i128 - 1) / ways as i128;
                let width = width.max(1) as i64;
                let mut subs = Vec::new();
                let mut x = *lo;
                while x < *hi {
                    let y = x.saturating_add(width).min(*hi);
                    subs.push(Slice::KeyRange { lo: x, hi: y });
                    x = y;
                }
                // A key range wider than bigint holds is bucketed in numeric (slower, exact).
                let bucket = if (*hi as i128) - (*lo as i128) > i64::MAX as i128 {
                    format!(
                        "div({}::numeric - ({lo}), {width})::bigint",
                        self.key_expr()
                    )
                } else {
                    format!("({} - ({lo})) / {width}", self.key_expr())
                };
                (bucket, subs)
            }
            Slice::Hash { modulus, residue } => {
                let m = modulus * ways;
                (
                    format!("{} % {m}", self.key_hash()),
                    (0..ways)
                        .map(|j| Slice::Hash {
                            modulus: m,
                            residue: residue + j * modulus,
                        })
                        .collect(),
                )
            }
        };
        let sql = format!(
            "SELECT json_build_array(b, count(*), sum(h)::text)::text FROM \
             (SELECT {bucket} AS b, {h} AS h {from} WHERE {filter}) s GROUP BY b",
            h = self.row_hash(),
            from = self.from(),
            filter = self.filter(parent),
        );
        (sql, subs)
    }

    /// Every row of a slice: `[[key text…], digest]`.
    fn rows_query(&self, slice: &Slice) -> String {
        let keys: Vec<String> = self
            .key
            .iter()
            .map(|c| format!("t.{}::text", ident(c)))
            .collect();
        format!(
            "SELECT json_build_array(json_build_array({}), {})::text {} WHERE {}",
            keys.join(", "),
            self.row_digest(),
            self.from(),
            self.filter(slice)
        )
    }
}

/// Reads `[bucket, count, sum]` rows into sums per sub-slice (buckets with no rows are absent).
fn read_sums(sql: &dyn Sql, lines: &[String], subs: &[Slice]) -> Result<Vec<SliceSum>, DbError> {
    let mut out = Vec::new();
    for line in lines {
        let v = parse(sql, line)?;
        let b = v[0].as_i64().unwrap_or(-1);
        let slice = usize::try_from(b)
            .ok()
            .and_then(|i| subs.get(i))
            .ok_or_else(|| DbError::Answer {
                target: sql.describe(),
                message: format!("bucket {b} out of range"),
            })?;
        out.push(SliceSum {
            slice: slice.clone(),
            rows: v[1].as_u64().unwrap_or(0),
            checksum: s(&v[2]),
        });
    }
    Ok(out)
}

fn add(a: &str, b: &str) -> String {
    let x: i128 = a.parse().unwrap_or(0);
    let y: i128 = b.parse().unwrap_or(0);
    (x + y).to_string()
}

/// Runs `jobs` on up to `n` threads, keeping their order.
fn parallel<J: Sync, T: Send>(
    jobs: &[J],
    n: usize,
    f: impl Fn(&J) -> Result<T, DbError> + Sync,
) -> Result<Vec<T>, DbError> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<T, DbError>>>> =
        jobs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..n.clamp(1, jobs.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let r = f(job);
                    let failed = r.is_err();
                    *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                    if failed {
                        // Stop taking work: the first error is reported.
                        next.store(jobs.len(), std::sync::atomic::Ordering::Relaxed);
                        break;
                    }
                }
            });
        }
    });
    let mut out = Vec::new();
    for r in results {
        match r.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    Ok(out)
}

/// Both sides at once.
fn both<T: Send>(
    a: &dyn Sql,
    b: &dyn Sql,
    f: impl Fn(&dyn Sql) -> Result<T, DbError> + Sync,
) -> Result<(T, T), DbError> {
    let (ra, rb) = std::thread::scope(|scope| {
        let ha = scope.spawn(|| f(a));
        let rb = f(b);
        (ha.join().unwrap_or(Err(DbError::Cancelled)), rb)
    });
    Ok((ra?, rb?))
}

fn is_integer(t: &str) -> bool {
    matches!(t, "smallint" | "integer" | "bigint")
}

/// Whether the qualified table `name` is the one `--table` names (qualified or bare).
pub(crate) fn wanted_pub(name: &str, table: &str) -> bool {
    wanted(name, &[table.to_owned()])
}

fn wanted(name: &str, tables: &[String]) -> bool {
    tables.is_empty()
        || tables.iter().any(|t| {
            t == name
                || name
                    .rsplit_once('.')
                    .is_some_and(|(_, bare)| bare == t || bare.trim_matches('"') == t)
        })
}

/// Plans the content comparison of every table both sides have.
fn plan_tables(
    a: &Inventory,
    b: &Inventory,
    (xa, xb): (&Extra, &Extra),
    opts: &VerifyOptions,
) -> Vec<TablePlan> {
    let fast = xa.probe.is_some() && xa.probe == xb.probe;
    let keys = &xa.key_types;
    let mut plans = Vec::new();
    for (name, ta) in &a.tables {
        let Some(tb) = b.tables.get(name) else {
            continue;
        };
        if !wanted(name, &opts.tables) {
            continue;
        }
        let mut columns: Vec<PlanColumn> = ta
            .columns
            .iter()
            .filter_map(|c| {
                let d = tb.columns.iter().find(|d| d.name == c.name)?;
                Some(PlanColumn {
                    name: c.name.clone(),
                    data_type: (c.data_type == d.data_type).then(|| c.data_type.clone()),
                    not_null: c.not_null && d.not_null,
                })
            })
            .collect();
        columns.sort_by(|x, y| x.name.cmp(&y.name));
        let key = if ta.primary_key == tb.primary_key
            && ta
                .primary_key
                .iter()
                .all(|k| columns.iter().any(|c| &c.name == k))
        {
            ta.primary_key.clone()
        } else {
            Vec::new()
        };
        let int_key = key.len() == 1
            && keys
                .get(name)
                .and_then(|t| t.first())
                .is_some_and(|t| is_integer(t));
        let estimate = xa
            .estimates
            .get(name)
            .copied()
            .max(xb.estimates.get(name).copied())
            .unwrap_or(-1);
        plans.push(TablePlan {
            table: name.clone(),
            columns,
            key,
            range: int_key.then_some((0, 0)),
            estimate,
            fast,
        });
    }
    plans
}

/// Sets each integer-keyed plan's range to the smallest covering both sides' keys: from the
/// inventories, or, for a table whose key only one side has as an integer, by asking both.
fn key_ranges(
    a: &dyn Sql,
    b: &dyn Sql,
    (xa, xb): (&Extra, &Extra),
    plans: &mut [TablePlan],
) -> Result<(), DbError> {
    let mut bounds: BTreeMap<usize, [Option<(i64, i64)>; 2]> = BTreeMap::new();
    let mut ask = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        if p.range.is_none() {
            continue;
        }
        match (xa.key_bounds.get(&p.table), xb.key_bounds.get(&p.table)) {
            (Some(x), Some(y)) => {
                bounds.insert(i, [*x, *y]);
            }
            _ => ask.push(i),
        }
    }
    if !ask.is_empty() {
        let queries: Vec<String> = ask
            .iter()
            .map(|i| {
                let p = &plans[*i];
                format!(
                    "SELECT json_build_array(min({k}), max({k}))::text {}",
                    p.from(),
                    k = p.key_expr()
                )
            })
            .collect();
        let (la, lb) = both(a, b, |s| session(s, &queries))?;
        for (n, i) in ask.iter().enumerate() {
            let mut pair = [None, None];
            for (side, (sql, lines)) in [(a, &la), (b, &lb)].into_iter().enumerate() {
                let v = parse(
                    sql,
                    lines.get(n).map(String::as_str).unwrap_or("[null,null]"),
                )?;
                pair[side] = v[0].as_i64().zip(v[1].as_i64());
            }
            bounds.insert(*i, pair);
        }
    }
    for (i, pair) in bounds {
        let (lo, hi) = pair
            .iter()
            .flatten()
            .fold((i64::MAX, i64::MIN), |(lo, hi), (x, y)| {
                (lo.min(*x), hi.max(*y))
            });
        plans[i].range = if lo > hi {
            Some((0, 1))
        } else {
            Some((lo, hi.saturating_add(1)))
        };
    }
    Ok(())
}

/// One query of the content pass: a table's slice, to be split `ways` ways.
struct Part {
    plan: usize,
    slice: Slice,
    ways: u32,
}

/// Rows above which a table's key range is summed in parts at once.
const LARGE: i64 = 250_000;

/// The content pass as sessions: a large table with an integer key in up to `parallel` parts,
/// each its own session; small tables batched into sessions of about [`LARGE`] rows, so that
/// a database of many small tables does not start a client per table, or added to the large
/// tables' sessions when there are `parallel` of those.
fn content_jobs(plans: &[TablePlan], opts: &VerifyOptions) -> Vec<Vec<Part>> {
    let mut jobs = Vec::new();
    let mut batches = Vec::new();
    let mut batch: Vec<Part> = Vec::new();
    let mut batch_rows = 0i64;
    for (i, p) in plans.iter().enumerate() {
        match p.range {
            Some((lo, hi)) if p.estimate > LARGE => {
                let parts = (opts.parallel.max(1) as i64).min(p.estimate / LARGE + 1);
                let width = ((hi as i128 - lo as i128) + parts as i128 - 1) / parts as i128;
                let width = width.max(1) as i64;
                let mut x = lo;
                while x < hi {
                    let y = x.saturating_add(width).min(hi);
                    jobs.push(vec![Part {
                        plan: i,
                        slice: Slice::KeyRange { lo: x, hi: y },
                        ways: 1,
                    }]);
                    x = y;
                }
            }
            range => {
                let part = Part {
                    plan: i,
                    slice: match range {
                        Some((lo, hi)) => Slice::KeyRange { lo, hi },
                        None => Slice::All,
                    },
                    ways: 1,
                };
                if p.estimate > LARGE {
                    jobs.push(vec![part]);
                    continue;
                }
                batch_rows += p.estimate.max(1);
                batch.push(part);
                if batch_rows > LARGE {
                    batches.push(std::mem::take(&mut batch));
                    batch_rows = 0;
                }
            }
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    // With a session per thread already busy with a large table, small tables ride along
    // with those sessions instead of waiting for one to end and starting another client.
    let n = opts.parallel.max(1);
    if jobs.len() >= n {
        for (i, b) in batches.into_iter().enumerate() {
            jobs[i % n].extend(b);
        }
    } else {
        jobs.extend(batches);
    }
    jobs
}

fn sum_content(
    sql: &dyn Sql,
    plans: &[TablePlan],
    jobs: &[Vec<Part>],
    parallel_n: usize,
) -> Result<Vec<Content>, DbError> {
    let done = parallel(jobs, parallel_n, |job| {
        let queries: Vec<(String, Vec<Slice>)> = job
            .iter()
            .map(|part| plans[part.plan].sums_query(&part.slice, part.ways))
            .collect();
        // Each query's rows end with a marker row, so one session's answers split by query.
        let mut statements = Vec::new();
        for (q, _) in &queries {
            statements.push(q.clone());
            statements.push("SELECT '\"end\"'".to_owned());
        }
        let lines = session(sql, &statements)?;
        let mut out = Vec::new();
        let mut rest = lines.as_slice();
        for (_, subs) in &queries {
            let n = rest
                .iter()
                .position(|l| l == "\"end\"")
                .ok_or_else(|| DbError::Answer {
                    target: sql.describe(),
                    message: "fewer answers than questions".into(),
                })?;
            out.push(read_sums(sql, &rest[..n], subs)?);
            rest = &rest[n + 1..];
        }
        Ok(out)
    })?;
    let mut content: Vec<Content> = plans
        .iter()
        .map(|_| Content {
            rows: 0,
            checksum: "0".into(),
            slices: Vec::new(),
        })
        .collect();
    for (job, sums) in jobs.iter().zip(done) {
        for (part, sums) in job.iter().zip(sums) {
            let c = &mut content[part.plan];
            for s in sums {
                c.rows += s.rows;
                c.checksum = add(&c.checksum, &s.checksum);
                if !plans[part.plan].key.is_empty() {
                    c.slices.push(s);
                }
            }
        }
    }
    Ok(content)
}

/// Locates the rows of one differing slice, splitting it until it is small enough to list.
/// `counts`: the slice's rows on each side, known from the sums that found it different.
fn locate(
    a: &dyn Sql,
    b: &dyn Sql,
    plan: &TablePlan,
    slice: &Slice,
    (na, nb): (u64, u64),
    opts: &VerifyOptions,
    out: &mut Vec<Finding>,
) -> Result<(), DbError> {
    if out.len() >= opts.max_rows {
        return Ok(());
    }
    let small = matches!(slice, Slice::KeyRange { lo, hi } if (*hi as i128) - (*lo as i128) <= 16);
    if na.max(nb) <= opts.list_rows || small {
        let q = plan.rows_query(slice);
        let (la, lb) = both(a, b, |s| session(s, std::slice::from_ref(&q)))?;
        let rows = |sql: &dyn Sql, lines: &Vec<String>| -> Result<Vec<RowDigest>, DbError> {
            lines
                .iter()
                .map(|l| {
                    let v = parse(sql, l)?;
                    let key = v[0]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .map(opt)
                        .collect();
                    Ok((key, s(&v[1])))
                })
                .collect()
        };
        let mut found = compare_rows(&plan.table, &plan.key, &rows(a, &la)?, &rows(b, &lb)?);
        found.truncate(opts.max_rows - out.len());
        out.extend(found);
        return Ok(());
    }
    // Split so that a sub-slice is likely small enough to list: one more level, not several.
    let ways = na
        .max(nb)
        .div_ceil(opts.list_rows.max(1))
        .clamp(opts.split.max(2) as u64, 1024) as u32;
    let (q, subs) = plan.sums_query(slice, ways);
    let (la, lb) = both(a, b, |s| session(s, std::slice::from_ref(&q)))?;
    let (sa, sb) = (read_sums(a, &la, &subs)?, read_sums(b, &lb, &subs)?);
    for sub in &subs {
        let x = sa.iter().find(|s| &s.slice == sub);
        let y = sb.iter().find(|s| &s.slice == sub);
        let same = match (x, y) {
            (Some(x), Some(y)) => x.rows == y.rows && x.checksum == y.checksum,
            (None, None) => true,
            _ => false,
        };
        if !same {
            let counts = (x.map_or(0, |s| s.rows), y.map_or(0, |s| s.rows));
            locate(a, b, plan, sub, counts, opts, out)?;
        }
    }
    Ok(())
}

/// Verifies database `b` against `a`: schema, per-table counts and checksums (in parallel, both
/// sides at once), sequences; differing slices located to rows.
pub fn verify(a: &dyn Sql, b: &dyn Sql, opts: &VerifyOptions) -> Result<Report, DbError> {
    let ((mut ia, xa), (mut ib, xb)) = both(a, b, read_inventory)?;
    if !opts.tables.is_empty() {
        for t in &opts.tables {
            if !ia
                .tables
                .keys()
                .chain(ib.tables.keys())
                .any(|n| wanted(n, std::slice::from_ref(t)))
            {
                return Err(DbError::Query {
                    target: a.describe(),
                    message: format!("no table `{t}` on either side"),
                });
            }
        }
        ia.tables.retain(|n, _| wanted(n, &opts.tables));
        ib.tables.retain(|n, _| wanted(n, &opts.tables));
    }
    let mut plans = plan_tables(&ia, &ib, (&xa, &xb), opts);
    key_ranges(a, b, (&xa, &xb), &mut plans)?;
    let jobs = content_jobs(&plans, opts);
    let (ca, cb) = both(a, b, |s| sum_content(s, &plans, &jobs, opts.parallel))?;
    for (p, (x, y)) in plans.iter().zip(ca.into_iter().zip(cb)) {
        if let Some(t) = ia.tables.get_mut(&p.table) {
            t.content = Some(x);
        }
        if let Some(t) = ib.tables.get_mut(&p.table) {
            t.content = Some(y);
        }
    }
    let cmp = compare(&ia, &ib);
    let mut findings = cmp.findings;
    let mut notes = cmp.notes;
    let mut by_table: BTreeMap<&str, Vec<Finding>> = BTreeMap::new();
    for (table, slice) in &cmp.differing {
        let Some(plan) = plans.iter().find(|p| &p.table == table) else {
            continue;
        };
        let rows = |inv: &Inventory| {
            inv.tables
                .get(table)
                .and_then(|t| t.content.as_ref())
                .and_then(|c| c.slices.iter().find(|s| &s.slice == slice))
                .map_or(0, |s| s.rows)
        };
        let out = by_table.entry(table.as_str()).or_default();
        locate(a, b, plan, slice, (rows(&ia), rows(&ib)), opts, out)?;
    }
    for (table, rows) in by_table {
        if rows.len() >= opts.max_rows {
            notes.push(format!(
                "table {table}: the first {} differing rows are listed; more may differ",
                opts.max_rows
            ));
        }
        if rows.is_empty() {
            findings.push(
                Finding::new(Class::Content, ObjectKind::Table, table).values(
                    Some("checksum differs".into()),
                    Some("rows not located".into()),
                ),
            );
        }
        findings.extend(rows);
    }
    Ok(Report {
        engine: ia.engine.clone(),
        old: a.describe(),
        new: b.describe(),
        old_version: ia.server_version.clone(),
        new_version: ib.server_version.clone(),
        tables: plans.len(),
        rows: ia
            .tables
            .values()
            .filter_map(|t| t.content.as_ref().map(|c| c.rows))
            .sum(),
        sequences: ia.sequences.len(),
        objects: ia.objects.len(),
        findings,
        notes,
    })
}
