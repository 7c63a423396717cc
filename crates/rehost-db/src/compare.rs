//! Comparison: two inventories → typed findings (pure). The slices whose checksums differ are
//! returned for locating to rows; [`compare_rows`] turns the rows of one slice on both sides
//! into row findings by key.

use crate::model::*;
use crate::normalize;
use crate::report::{Class, Finding};
use std::collections::BTreeMap;

/// What [`compare`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    pub findings: Vec<Finding>,
    /// Spellings that differ by design, said once each.
    pub notes: Vec<String>,
    /// Per table: the slices whose row count or checksum differ, to be located to rows.
    pub differing: Vec<(String, Slice)>,
}

pub fn compare(a: &Inventory, b: &Inventory) -> Comparison {
    let mut c = Comparison::default();
    database(a, b, &mut c);
    for (name, ta) in &a.tables {
        match b.tables.get(name) {
            None => c
                .findings
                .push(Finding::new(Class::Missing, ObjectKind::Table, name)),
            Some(tb) => table(name, ta, tb, &mut c),
        }
    }
    for name in b.tables.keys().filter(|n| !a.tables.contains_key(*n)) {
        c.findings
            .push(Finding::new(Class::Extra, ObjectKind::Table, name));
    }
    objects(a, b, &mut c);
    sequences(a, b, &mut c);
    c
}

fn database(a: &Inventory, b: &Inventory, c: &mut Comparison) {
    let settings = [
        (
            "encoding",
            &a.encoding,
            &b.encoding,
            normalize::encoding as fn(&str) -> String,
        ),
        ("collation", &a.collate, &b.collate, normalize::locale),
        (
            "character classification",
            &a.ctype,
            &b.ctype,
            normalize::locale,
        ),
    ];
    for (what, x, y, norm) in settings {
        if x == y {
            continue;
        }
        if norm(x) == norm(y) {
            c.notes.push(format!(
                "the database's {what} is spelled {x} on the old side and {y} on the new: the same"
            ));
        } else {
            c.findings.push(
                Finding::new(
                    Class::Changed,
                    ObjectKind::Database,
                    format!("{} ({what})", a.database),
                )
                .values(Some(x.clone()), Some(y.clone())),
            );
        }
    }
}

fn column_text(col: &Column) -> String {
    let mut s = col.data_type.clone();
    if let Some(coll) = &col.collation {
        s.push_str(&format!(" COLLATE {}", normalize::locale(coll)));
    }
    if col.not_null {
        s.push_str(" NOT NULL");
    }
    if let Some(d) = &col.default {
        s.push_str(&format!(" DEFAULT {}", normalize::definition(d)));
    }
    s
}

fn table(name: &str, ta: &Table, tb: &Table, c: &mut Comparison) {
    let cols_b: BTreeMap<&str, &Column> = tb.columns.iter().map(|x| (x.name.as_str(), x)).collect();
    let cols_a: BTreeMap<&str, &Column> = ta.columns.iter().map(|x| (x.name.as_str(), x)).collect();
    for col in &ta.columns {
        let full = format!("{name}.{}", col.name);
        match cols_b.get(col.name.as_str()) {
            None => c
                .findings
                .push(Finding::new(Class::Missing, ObjectKind::Column, full)),
            Some(cb) => {
                let (x, y) = (column_text(col), column_text(cb));
                if x != y {
                    c.findings.push(
                        Finding::new(Class::Changed, ObjectKind::Column, full)
                            .values(Some(x), Some(y)),
                    );
                }
            }
        }
    }
    for col in tb
        .columns
        .iter()
        .filter(|x| !cols_a.contains_key(x.name.as_str()))
    {
        c.findings.push(Finding::new(
            Class::Extra,
            ObjectKind::Column,
            format!("{name}.{}", col.name),
        ));
    }
    let (Some(ca), Some(cb)) = (&ta.content, &tb.content) else {
        return;
    };
    if ca.rows != cb.rows {
        c.findings.push(
            Finding::new(Class::RowCount, ObjectKind::Table, name)
                .values(Some(ca.rows.to_string()), Some(cb.rows.to_string())),
        );
    }
    if ca.rows == cb.rows && ca.checksum == cb.checksum {
        return;
    }
    if ca.slices.is_empty() || cb.slices.is_empty() {
        if ca.checksum != cb.checksum {
            c.findings.push(
                Finding::new(Class::Content, ObjectKind::Table, name).values(
                    Some(format!("checksum {}", ca.checksum)),
                    Some(format!(
                        "checksum {} (no primary key: rows not located)",
                        cb.checksum
                    )),
                ),
            );
        }
        return;
    }
    let sb: BTreeMap<&Slice, &SliceSum> = cb.slices.iter().map(|s| (&s.slice, s)).collect();
    let sa: BTreeMap<&Slice, &SliceSum> = ca.slices.iter().map(|s| (&s.slice, s)).collect();
    let mut slices: Vec<&Slice> = sa.keys().chain(sb.keys()).copied().collect();
    slices.sort();
    slices.dedup();
    for s in slices {
        let same = match (sa.get(s), sb.get(s)) {
            (Some(x), Some(y)) => x.rows == y.rows && x.checksum == y.checksum,
            _ => false,
        };
        if !same {
            c.differing.push((name.to_owned(), s.clone()));
        }
    }
}

fn objects(a: &Inventory, b: &Inventory, c: &mut Comparison) {
    let key = |o: &SchemaObject| (o.kind, o.name.clone());
    let ma: BTreeMap<_, &SchemaObject> = a.objects.iter().map(|o| (key(o), o)).collect();
    let mb: BTreeMap<_, &SchemaObject> = b.objects.iter().map(|o| (key(o), o)).collect();
    // A table's own definition object (MariaDB, SQLite) of a table that is missing or extra
    // as a whole is said once, by the table.
    let whole = |o: &SchemaObject, other: &Inventory| {
        o.kind == ObjectKind::Table && !other.tables.contains_key(&o.name)
    };
    for (k, oa) in &ma {
        match mb.get(k) {
            None if whole(oa, b) && a.tables.contains_key(&oa.name) => {}
            None => c.findings.push(
                Finding::new(Class::Missing, oa.kind, &oa.name)
                    .values(Some(oa.definition.clone()), None),
            ),
            Some(ob) => {
                let (x, y) = (
                    normalize::definition(&oa.definition),
                    normalize::definition(&ob.definition),
                );
                if x != y {
                    c.findings.push(
                        Finding::new(Class::Changed, oa.kind, &oa.name)
                            .values(Some(oa.definition.clone()), Some(ob.definition.clone())),
                    );
                } else if oa.definition != ob.definition {
                    c.notes.push(format!(
                        "{} {} is laid out differently, with the same definition",
                        oa.kind.name(),
                        oa.name
                    ));
                }
            }
        }
    }
    for (k, ob) in &mb {
        let said_by_table = whole(ob, a) && b.tables.contains_key(&ob.name);
        if !ma.contains_key(k) && !said_by_table {
            c.findings.push(
                Finding::new(Class::Extra, ob.kind, &ob.name)
                    .values(None, Some(ob.definition.clone())),
            );
        }
    }
}

fn sequences(a: &Inventory, b: &Inventory, c: &mut Comparison) {
    let show = |v: Option<i64>| v.map_or("never used".to_owned(), |v| v.to_string());
    for (name, sa) in &a.sequences {
        let Some(sb) = b.sequences.get(name) else {
            c.findings
                .push(Finding::new(Class::Missing, ObjectKind::Sequence, name));
            continue;
        };
        if (&sa.data_type, sa.increment) != (&sb.data_type, sb.increment) {
            c.findings.push(
                Finding::new(Class::Changed, ObjectKind::Sequence, name).values(
                    Some(format!("{} increment {}", sa.data_type, sa.increment)),
                    Some(format!("{} increment {}", sb.data_type, sb.increment)),
                ),
            );
        }
        if sa.last_value != sb.last_value {
            c.findings.push(
                Finding::new(Class::Sequence, ObjectKind::Sequence, name)
                    .values(Some(show(sa.last_value)), Some(show(sb.last_value))),
            );
        }
    }
    for name in b.sequences.keys().filter(|n| !a.sequences.contains_key(*n)) {
        c.findings
            .push(Finding::new(Class::Extra, ObjectKind::Sequence, name));
    }
}

/// One row of a slice: its key values (text; `None` is NULL) and its digest.
pub type RowDigest = (Vec<Option<String>>, String);

/// The rows of one slice of `table` on both sides → row findings by key.
pub fn compare_rows(table: &str, key: &[String], a: &[RowDigest], b: &[RowDigest]) -> Vec<Finding> {
    let ma: BTreeMap<&Vec<Option<String>>, &String> = a.iter().map(|(k, d)| (k, d)).collect();
    let mb: BTreeMap<&Vec<Option<String>>, &String> = b.iter().map(|(k, d)| (k, d)).collect();
    let with_key = |class, k: &Vec<Option<String>>| {
        let mut f = Finding::new(class, ObjectKind::Row, table);
        f.key = Some(key.iter().cloned().zip(k.iter().cloned()).collect());
        f
    };
    let mut out = Vec::new();
    for (k, da) in &ma {
        match mb.get(k) {
            None => out.push(with_key(Class::RowMissing, k)),
            Some(db) if db != da => out.push(with_key(Class::RowChanged, k)),
            Some(_) => {}
        }
    }
    for k in mb.keys().filter(|k| !ma.contains_key(*k)) {
        out.push(with_key(Class::RowExtra, k));
    }
    out
}
