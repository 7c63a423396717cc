//! The verification passes, one copy for every engine (PostgreSQL, MariaDB/MySQL, SQLite):
//! inventory of both sides at once, content sums per table and key slice in parallel (a large
//! table with an integer key in parts of its key range, one session each; small tables
//! batched, or riding along with the large tables' sessions), differing slices split (key
//! ranges, else hash buckets of the key) down to slices small enough to list row by row on
//! both sides, then [`compare`] and [`compare_rows`]. A [`Dialect`] supplies each engine's SQL;
//! what only some engines can do is a hook with a default: the key's bounds read by the
//! inventory ([`Extra::key_bounds`], else a min/max query per side), a probe of the server's
//! hash functions that allows a dialect's fast row hash where both sides answer alike
//! ([`Extra::probe`], [`TablePlan::fast`]), the ungrouped one-sum query, the filter every row
//! matches, the statement text one client run may take.
//!
//! Hostile answers: a bucket outside the asked range, a missing answer or an unreadable line
//! is an error naming the target, never a panic; hash buckets stop refining at 2^20 (the slice
//! is listed), so bucket numbers cannot overflow.
//!
//! Every answer line is one JSON value; the dialects make the server build it
//! (`JSON_ARRAY`, `json_array`), so a newline in a name or value cannot split a row.

use crate::compare::{RowDigest, compare, compare_rows};
use crate::model::*;
use crate::report::{Class, Finding, Report};
use crate::{DbError, Sql, VerifyOptions};
use serde_json::Value;
use std::collections::BTreeMap;

/// A key constraint's columns, the referenced columns and the rest of its definition (the
/// referenced table, the rules), collected from catalog rows.
pub(crate) type KeyColumns = (Vec<String>, Vec<String>, String);

/// What the content pass needs beyond the inventory.
#[derive(Clone, Debug, Default)]
pub struct Extra {
    /// Per table: the primary key's columns are integers that fit `i64` (key ranges work).
    pub int_key: BTreeMap<String, bool>,
    /// Per table: rows, counted or estimated (for splitting large tables, batching small ones).
    pub estimates: BTreeMap<String, i64>,
    /// Per table and column: what the dialect needs to print the column (its type).
    pub column_types: BTreeMap<String, BTreeMap<String, String>>,
    /// Per table with an integer key whose bounds the inventory read: its min and max
    /// (`None`: no rows). A table both sides have here needs no min/max query.
    pub key_bounds: BTreeMap<String, Option<(i64, i64)>>,
    /// The server's answer to the dialect's probe of its hash functions: the sums use the fast
    /// row hash ([`TablePlan::fast`]) where both sides answer the same.
    pub probe: Option<i64>,
    /// Server-wide access objects (MariaDB's accounts, roles and grants), each with the
    /// account or role it belongs to. [`verify`] keeps those of the accounts either side's
    /// database names ([`Extra::named`]) and their members ([`Extra::members`]), recursively,
    /// so an account that lost its grants on one side is compared, not dropped from it.
    /// `None`: not read (PostgreSQL reads its roles into the inventory; a MariaDB user who may
    /// not read the grant tables). Compared only where both sides were read.
    pub access: Option<Vec<(String, SchemaObject)>>,
    /// Accounts and roles this database names: grantees of privileges on it, definers.
    pub named: std::collections::BTreeSet<String>,
    /// `(member, role)`: an account or role granted a role.
    pub members: Vec<(String, String)>,
}

/// A column as the content pass hashes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanColumn {
    pub name: String,
    /// The type the dialect prints it by (the old side's `column_types`).
    pub data_type: String,
    /// Both sides have the same type (the inventories' `data_type`).
    pub same_type: bool,
    /// NOT NULL on both sides.
    pub not_null: bool,
    /// The column's collation where both sides have the same (`None`: none, or they differ).
    pub collation: Option<String>,
}

/// How one table's content is summed.
#[derive(Clone, Debug)]
pub struct TablePlan {
    /// The table's name as reported (`kinds`).
    pub table: String,
    /// Columns both sides have, in name order.
    pub columns: Vec<PlanColumn>,
    /// Primary key columns (both sides agree), empty when none.
    pub key: Vec<String>,
    /// Integer key: the common `lo..hi` of both sides (`None`: hash slices, or no key).
    pub range: Option<(i64, i64)>,
    pub estimate: i64,
    /// Both sides gave the same [`Extra::probe`]: the dialect may use its fast row hash.
    pub fast: bool,
}

/// One engine's SQL.
pub trait Dialect: Sync {
    /// `MariaDB`, `SQLite`: for messages.
    fn engine(&self) -> &'static str;
    /// Statements every session starts with (fixed time zone, character set…).
    fn session(&self) -> Vec<String>;
    /// The schema part of the inventory and what the content pass needs.
    fn read_inventory(&self, sql: &dyn Sql) -> Result<(Inventory, Extra), DbError>;
    /// `FROM …` with the table aliased `t`.
    fn from(&self, plan: &TablePlan) -> String;
    /// The integer key column as an expression on `t`.
    fn key_expr(&self, plan: &TablePlan) -> String;
    /// A non-negative 31-bit number from the key's values, for hash slices.
    fn key_hash(&self, plan: &TablePlan) -> String;
    /// `(lo - k) / width` as an integer bucket number, exact for any `i64` key.
    fn range_bucket(&self, plan: &TablePlan, lo: i64, width: i64, wide: bool) -> String;
    /// A query answering `[bucket, count, checksum]` rows for the rows matching `filter`,
    /// grouped by `bucket` (a constant `0` for one sum). The checksum is text: one decimal
    /// integer or several joined by `:` (added part by part).
    fn sums_query(&self, plan: &TablePlan, bucket: &str, filter: &str) -> String;
    /// One sum of the rows matching `filter`, answered as `[0, count, checksum]`: the pass
    /// that finds tables equal. A dialect may leave out the grouping.
    fn sum_query(&self, plan: &TablePlan, filter: &str) -> String {
        self.sums_query(plan, "0", filter)
    }
    /// The filter that every row matches.
    fn all_rows(&self) -> &'static str {
        "1 = 1"
    }
    /// The most statement text one client run is given (batched queries are split to fit):
    /// a client that takes the statements as one argument has the command line's limit.
    fn session_text(&self) -> usize {
        64 * 1024
    }
    /// What this engine's verification never compares, each a short phrase for the report's
    /// scope ([`Report::not_compared`]): what the inventory does not read, what the server
    /// does not show. Said whatever the database holds, so that an equal verdict names it.
    fn not_compared(&self) -> Vec<String> {
        Vec::new()
    }
    /// A query answering `[[key text…], digest]` for every row matching `filter`.
    fn rows_query(&self, plan: &TablePlan, filter: &str) -> String;
    /// `[min, max]` of the integer key, for a table whose bounds an inventory did not read
    /// (`json_array` is MariaDB's, MySQL's and SQLite's).
    fn min_max_query(&self, plan: &TablePlan) -> String {
        format!(
            "SELECT json_array(min({k}), max({k})) {}",
            self.from(plan),
            k = self.key_expr(plan)
        )
    }
}

pub(crate) fn session(
    d: &dyn Dialect,
    sql: &dyn Sql,
    stmts: &[String],
) -> Result<Vec<String>, DbError> {
    let mut all = d.session();
    all.extend_from_slice(stmts);
    sql.run(&all)
}

pub(crate) fn parse(sql: &dyn Sql, line: &str) -> Result<Value, DbError> {
    serde_json::from_str(line).map_err(|e| DbError::Answer {
        target: sql.describe(),
        message: format!("{e} in {:?}", line.chars().take(200).collect::<String>()),
    })
}

pub(crate) fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(crate) fn opt(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        other => Some(s(other)),
    }
}

fn filter(d: &dyn Dialect, plan: &TablePlan, slice: &Slice) -> String {
    match slice {
        Slice::All => d.all_rows().into(),
        Slice::KeyRange { lo, hi } => format!("{k} >= {lo} AND {k} < {hi}", k = d.key_expr(plan)),
        Slice::Hash { modulus, residue } => {
            format!("{} % {modulus} = {residue}", d.key_hash(plan))
        }
    }
}

/// The grouped query summing `parent` split into `ways` sub-slices.
fn sums_query(
    d: &dyn Dialect,
    plan: &TablePlan,
    parent: &Slice,
    ways: u32,
) -> (String, Vec<Slice>) {
    let f = filter(d, plan, parent);
    if ways <= 1 || plan.key.is_empty() {
        return (d.sum_query(plan, &f), vec![parent.clone()]);
    }
    let (bucket, subs) = match parent {
        Slice::All => (
            format!("{} % {ways}", d.key_hash(plan)),
            (0..ways)
                .map(|r| Slice::Hash {
                    modulus: ways,
                    residue: r,
                })
                .collect(),
        ),
        Slice::KeyRange { lo, hi } => {
            let width = ((*hi as i128 - *lo as i128) + ways as i128 - 1) / ways as i128;
            let width = width.clamp(1, i64::MAX as i128) as i64;
            let mut subs = Vec::new();
            let mut x = *lo;
            while x < *hi {
                let y = x.saturating_add(width).min(*hi);
                subs.push(Slice::KeyRange { lo: x, hi: y });
                x = y;
            }
            let wide = (*hi as i128) - (*lo as i128) > i64::MAX as i128;
            (d.range_bucket(plan, *lo, width, wide), subs)
        }
        Slice::Hash { modulus, residue } => {
            // `locate` lists a slice before its modulus reaches 2^20; ways are at most 1024.
            let ways = ways.min(1024);
            let m = modulus.saturating_mul(ways);
            (
                format!("{} % {m}", d.key_hash(plan)),
                (0..ways)
                    .map(|j| Slice::Hash {
                        modulus: m,
                        residue: residue.saturating_add(j.saturating_mul(*modulus)),
                    })
                    .collect(),
            )
        }
    };
    (d.sums_query(plan, &bucket, &f), subs)
}

#[cfg(test)]
pub(crate) fn sums_query_for_tests(
    d: &dyn Dialect,
    plan: &TablePlan,
    parent: &Slice,
    ways: u32,
) -> (String, Vec<Slice>) {
    sums_query(d, plan, parent, ways)
}

#[cfg(test)]
pub(crate) fn rows_query_for_tests(d: &dyn Dialect, plan: &TablePlan, filter: &str) -> String {
    d.rows_query(plan, filter)
}

/// Reads `[bucket, count, sum]` rows into sums per sub-slice (buckets with no rows are absent).
fn read_sums(sql: &dyn Sql, lines: &[String], subs: &[Slice]) -> Result<Vec<SliceSum>, DbError> {
    let mut out = Vec::new();
    for line in lines {
        let v = parse(sql, line)?;
        let b = v[0]
            .as_i64()
            .or_else(|| v[0].as_str().and_then(|x| x.parse().ok()))
            .unwrap_or(-1);
        let slice = usize::try_from(b)
            .ok()
            .and_then(|i| subs.get(i))
            .ok_or_else(|| DbError::Answer {
                target: sql.describe(),
                message: format!("bucket {b} out of range"),
            })?;
        let rows = v[1]
            .as_u64()
            .or_else(|| v[1].as_str().and_then(|x| x.parse().ok()))
            .unwrap_or(0);
        out.push(SliceSum {
            slice: slice.clone(),
            rows,
            checksum: s(&v[2]),
        });
    }
    Ok(out)
}

/// Adds two checksums part by part (`a:b` + `c:d` = `a+c:b+d`); a part that is not a number
/// makes the sum that text, so a hostile answer cannot make two sides look equal by accident
/// of parsing.
pub(crate) fn add(a: &str, b: &str) -> String {
    let pa: Vec<&str> = a.split(':').collect();
    let pb: Vec<&str> = b.split(':').collect();
    if pa.len() != pb.len() {
        return if a == "0" {
            b.to_owned()
        } else {
            format!("{a}+{b}")
        };
    }
    let parts: Vec<String> = pa
        .iter()
        .zip(&pb)
        .map(|(x, y)| match (x.parse::<i128>(), y.parse::<i128>()) {
            (Ok(x), Ok(y)) => x.saturating_add(y).to_string(),
            _ => format!("{x}+{y}"),
        })
        .collect();
    parts.join(":")
}

/// Runs `jobs` on up to `n` threads, keeping their order.
pub(crate) fn parallel<J: Sync, T: Send>(
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
pub(crate) fn both<T: Send>(
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

/// Whether table `name` is the one `--table` names (qualified or bare).
pub(crate) fn wanted(name: &str, tables: &[String]) -> bool {
    tables.is_empty()
        || tables.iter().any(|t| {
            t == name
                || name
                    .rsplit_once('.')
                    .is_some_and(|(_, bare)| bare == t || bare.trim_matches('"') == t)
        })
}

fn plan_tables(
    a: &Inventory,
    b: &Inventory,
    (xa, xb): (&Extra, &Extra),
    opts: &VerifyOptions,
) -> Vec<TablePlan> {
    let fast = xa.probe.is_some() && xa.probe == xb.probe;
    let mut plans = Vec::new();
    for (name, ta) in &a.tables {
        let Some(tb) = b.tables.get(name) else {
            continue;
        };
        if !wanted(name, &opts.tables) {
            continue;
        }
        let types = xa.column_types.get(name);
        let mut columns: Vec<PlanColumn> = ta
            .columns
            .iter()
            .filter_map(|c| {
                let d = tb.columns.iter().find(|d| d.name == c.name)?;
                let ty = types
                    .and_then(|t| t.get(&c.name))
                    .cloned()
                    .unwrap_or_default();
                Some(PlanColumn {
                    name: c.name.clone(),
                    data_type: ty,
                    same_type: c.data_type == d.data_type,
                    not_null: c.not_null && d.not_null,
                    collation: c.collation.clone().filter(|_| c.collation == d.collation),
                })
            })
            .collect();
        columns.sort_by(|x, y| x.name.cmp(&y.name));
        let names: Vec<&String> = columns.iter().map(|c| &c.name).collect();
        let key = if ta.primary_key == tb.primary_key
            && ta.primary_key.iter().all(|k| names.contains(&k))
        {
            ta.primary_key.clone()
        } else {
            Vec::new()
        };
        let int_key = !key.is_empty()
            && xa.int_key.get(name).copied().unwrap_or(false)
            && xb.int_key.get(name).copied().unwrap_or(false);
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
/// inventories where both read the bounds, else by asking both sides in one session each.
fn key_ranges(
    d: &dyn Dialect,
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
        let queries: Vec<String> = ask.iter().map(|i| d.min_max_query(&plans[*i])).collect();
        let (la, lb) = both(a, b, |s| session(d, s, &queries))?;
        let num = |v: &Value| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|x| x.parse().ok()))
        };
        for (n, i) in ask.iter().enumerate() {
            let mut pair = [None, None];
            for (side, (sql, lines)) in [(a, &la), (b, &lb)].into_iter().enumerate() {
                let v = parse(
                    sql,
                    lines.get(n).map(String::as_str).unwrap_or("[null,null]"),
                )?;
                pair[side] = num(&v[0]).zip(num(&v[1]));
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

struct Part {
    plan: usize,
    slice: Slice,
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
                let width = width.clamp(1, i64::MAX as i128) as i64;
                let mut x = lo;
                while x < hi {
                    let y = x.saturating_add(width).min(hi);
                    jobs.push(vec![Part {
                        plan: i,
                        slice: Slice::KeyRange { lo: x, hi: y },
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

/// The marker row that ends each query's answers in a batched session.
const END: &str = "\"end\"";

fn sum_content(
    d: &dyn Dialect,
    sql: &dyn Sql,
    plans: &[TablePlan],
    jobs: &[Vec<Part>],
    n: usize,
) -> Result<Vec<Content>, DbError> {
    let done = parallel(jobs, n, |job| {
        let queries: Vec<(String, Vec<Slice>)> = job
            .iter()
            .map(|part| sums_query(d, &plans[part.plan], &part.slice, 1))
            .collect();
        // One client run per group of queries of at most `session_text` bytes: a client's
        // command line has limits (the `mariadb` client takes the statements as one argument,
        // at most 128 KiB on Linux).
        let limit = d.session_text();
        let mut lines = Vec::new();
        let mut statements: Vec<String> = Vec::new();
        let mut size = 0;
        for (i, (q, _)) in queries.iter().enumerate() {
            statements.push(q.clone());
            statements.push(format!("SELECT '{END}'"));
            size += q.len() + 20;
            let next = queries.get(i + 1).map_or(0, |(q, _)| q.len() + 20);
            if i + 1 == queries.len() || size.saturating_add(next) > limit {
                lines.extend(session(d, sql, &statements)?);
                statements.clear();
                size = 0;
            }
        }
        let mut out = Vec::new();
        let mut rest = lines.as_slice();
        for (_, subs) in &queries {
            let n = rest
                .iter()
                .position(|l| l == END)
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
                c.checksum = if c.checksum == "0" {
                    s.checksum.clone()
                } else {
                    add(&c.checksum, &s.checksum)
                };
                if !plans[part.plan].key.is_empty() {
                    c.slices.push(s);
                }
            }
        }
    }
    Ok(content)
}

#[allow(clippy::too_many_arguments)]
fn locate(
    d: &dyn Dialect,
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
    // Hash buckets stop refining before their numbers could overflow (and before a server
    // that answers nonsense could make the descent long): list what is left.
    let deep = matches!(slice, Slice::Hash { modulus, .. } if *modulus >= 1 << 20);
    if na.max(nb) <= opts.list_rows || small || deep {
        let q = d.rows_query(plan, &filter(d, plan, slice));
        let (la, lb) = both(a, b, |s| session(d, s, std::slice::from_ref(&q)))?;
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
    let ways = na
        .max(nb)
        .div_ceil(opts.list_rows.max(1))
        .clamp(opts.split.max(2) as u64, 1024) as u32;
    let (q, subs) = sums_query(d, plan, slice, ways);
    let (la, lb) = both(a, b, |s| session(d, s, std::slice::from_ref(&q)))?;
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
            locate(d, a, b, plan, sub, counts, opts, out)?;
        }
    }
    Ok(())
}

/// Verifies database `b` against `a` with dialect `d`: schema, per-table counts and checksums
/// (in parallel, both sides at once), sequences; differing slices located to rows.
pub fn verify(
    d: &dyn Dialect,
    a: &dyn Sql,
    b: &dyn Sql,
    opts: &VerifyOptions,
) -> Result<Report, DbError> {
    let ((mut ia, xa), (mut ib, xb)) = both(a, b, |s| d.read_inventory(s))?;
    keep_access((&mut ia, &mut ib), (&xa, &xb));
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
    key_ranges(d, a, b, (&xa, &xb), &mut plans)?;
    let jobs = content_jobs(&plans, opts);
    let (ca, cb) = both(a, b, |s| sum_content(d, s, &plans, &jobs, opts.parallel))?;
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
        locate(d, a, b, plan, slice, (rows(&ia), rows(&ib)), opts, out)?;
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
    let not_compared = scope(d, (&ia, &ib), &plans, opts);
    Ok(Report {
        engine: d.engine().to_owned(),
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
        not_compared,
    })
}

/// Adds to each inventory the access objects ([`Extra::access`]) of the accounts and roles
/// either side's database names, and of their members, recursively (a login granted a role
/// that holds the grants), as PostgreSQL's roles are chosen.
pub(crate) fn keep_access((ia, ib): (&mut Inventory, &mut Inventory), (xa, xb): (&Extra, &Extra)) {
    let (Some(aa), Some(ab)) = (&xa.access, &xb.access) else {
        // One side unread: comparing the other's accounts with nothing would report them all
        // missing. The unread side's reason is in the scope.
        return;
    };
    let mut keep: std::collections::BTreeSet<&String> = xa.named.iter().chain(&xb.named).collect();
    loop {
        let before = keep.len();
        for (member, role) in xa.members.iter().chain(&xb.members) {
            if keep.contains(role) {
                keep.insert(member);
            }
        }
        if keep.len() == before {
            break;
        }
    }
    for (inv, access) in [(ia, aa), (ib, ab)] {
        inv.objects.extend(
            access
                .iter()
                .filter(|(owner, _)| keep.contains(owner))
                .map(|(_, o)| o.clone()),
        );
        inv.objects.sort();
    }
}

/// What this verification did not compare: what each side could not be asked, the engine's
/// own list, the tables whose rows could not be located, the tables `--table` left out.
fn scope(
    d: &dyn Dialect,
    (ia, ib): (&Inventory, &Inventory),
    plans: &[TablePlan],
    opts: &VerifyOptions,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in ia.not_compared.iter().chain(&ib.not_compared) {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out.extend(d.not_compared());
    let unkeyed: Vec<&str> = plans
        .iter()
        .filter(|p| p.key.is_empty())
        .map(|p| p.table.as_str())
        .collect();
    if !unkeyed.is_empty() {
        out.push(format!(
            "row by row, tables without a usable primary key (counted and summed: a difference is found, not located to rows): {}",
            unkeyed.join(", ")
        ));
    }
    if !opts.tables.is_empty() {
        out.push(format!(
            "tables other than those named with --table ({})",
            opts.tables.join(", ")
        ));
    }
    out
}

/// One database's inventory with every table's row count and whole-content checksum (no
/// slices: how a table is cut depends on estimates that change by themselves): the checksum
/// `--exercise` takes before and after, compared with [`compare`].
pub(crate) fn checksum(d: &dyn Dialect, sql: &dyn Sql) -> Result<Inventory, DbError> {
    let opts = VerifyOptions::default();
    let (mut inv, x) = d.read_inventory(sql)?;
    let mut plans = plan_tables(&inv, &inv, (&x, &x), &opts);
    key_ranges(d, sql, sql, (&x, &x), &mut plans)?;
    let jobs = content_jobs(&plans, &opts);
    let content = sum_content(d, sql, &plans, &jobs, opts.parallel)?;
    for (p, mut c) in plans.iter().zip(content) {
        c.slices.clear();
        if let Some(t) = inv.tables.get_mut(&p.table) {
            t.content = Some(c);
        }
    }
    Ok(inv)
}
