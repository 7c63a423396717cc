//! Unit tests with data: normalisation, comparison, row location, connection strings.

use crate::compare::{compare, compare_rows};
use crate::model::*;
use crate::normalize;
use crate::report::Class;
use crate::{ConnInfo, split_host};

fn col(name: &str, ty: &str) -> Column {
    Column {
        name: name.into(),
        data_type: ty.into(),
        not_null: false,
        default: None,
        collation: None,
    }
}

fn inventory() -> Inventory {
    let mut inv = Inventory {
        engine: "postgresql".into(),
        server_version: "15.14".into(),
        database: "app".into(),
        encoding: "UTF8".into(),
        collate: "C.UTF-8".into(),
        ctype: "C.UTF-8".into(),
        ..Default::default()
    };
    inv.tables.insert(
        "public.t".into(),
        Table {
            columns: vec![col("id", "integer"), col("name", "text")],
            primary_key: vec!["id".into()],
            content: Some(Content {
                rows: 2,
                checksum: "10".into(),
                slices: vec![
                    SliceSum {
                        slice: Slice::KeyRange { lo: 0, hi: 10 },
                        rows: 1,
                        checksum: "4".into(),
                    },
                    SliceSum {
                        slice: Slice::KeyRange { lo: 10, hi: 20 },
                        rows: 1,
                        checksum: "6".into(),
                    },
                ],
            }),
        },
    );
    inv.objects.push(SchemaObject {
        kind: ObjectKind::Index,
        name: "public.t_pkey".into(),
        definition: "CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id)".into(),
    });
    inv.sequences.insert(
        "public.t_id_seq".into(),
        Sequence {
            last_value: Some(2),
            data_type: "integer".into(),
            increment: 1,
        },
    );
    inv
}

#[test]
fn equal_inventories_have_no_findings() {
    let a = inventory();
    let c = compare(&a, &a.clone());
    assert!(c.findings.is_empty() && c.differing.is_empty() && c.notes.is_empty());
}

#[test]
fn spellings_of_an_upgrade_are_notes_not_findings() {
    let a = inventory();
    let mut b = a.clone();
    b.server_version = "17.2".into();
    b.encoding = "utf-8".into();
    b.collate = "C.utf8".into();
    b.objects[0].definition = "CREATE UNIQUE INDEX t_pkey\n  ON public.t USING btree (id);".into();
    let c = compare(&a, &b);
    assert!(c.findings.is_empty(), "{:?}", c.findings);
    assert_eq!(c.notes.len(), 3, "{:?}", c.notes);
}

#[test]
fn a_collation_that_sorts_differently_is_a_finding() {
    let a = inventory();
    let mut b = a.clone();
    b.collate = "en_US.UTF-8".into();
    let c = compare(&a, &b);
    assert_eq!(c.findings.len(), 1);
    assert_eq!(c.findings[0].class, Class::Changed);
    assert_eq!(c.findings[0].kind, ObjectKind::Database);
}

#[test]
fn column_type_index_and_sequence_differences() {
    let a = inventory();
    let mut b = a.clone();
    let t = b.tables.get_mut("public.t").unwrap();
    t.columns[1].data_type = "character varying(10)".into();
    t.columns[1].collation = Some("en_US".into());
    b.objects.clear();
    b.sequences.get_mut("public.t_id_seq").unwrap().last_value = None;
    let c = compare(&a, &b);
    let got: Vec<(Class, ObjectKind, &str)> = c
        .findings
        .iter()
        .map(|f| (f.class, f.kind, f.name.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (Class::Changed, ObjectKind::Column, "public.t.name"),
            (Class::Missing, ObjectKind::Index, "public.t_pkey"),
            (Class::Sequence, ObjectKind::Sequence, "public.t_id_seq"),
        ]
    );
    assert_eq!(c.findings[2].new.as_deref(), Some("never used"));
}

#[test]
fn differing_slices_are_handed_on_for_locating() {
    let a = inventory();
    let mut b = a.clone();
    let content = b
        .tables
        .get_mut("public.t")
        .unwrap()
        .content
        .as_mut()
        .unwrap();
    content.checksum = "11".into();
    content.slices[1].checksum = "7".into();
    let c = compare(&a, &b);
    assert!(c.findings.is_empty());
    assert_eq!(
        c.differing,
        vec![("public.t".to_owned(), Slice::KeyRange { lo: 10, hi: 20 })]
    );
}

#[test]
fn a_table_without_a_key_reports_content() {
    let mut a = inventory();
    a.tables
        .get_mut("public.t")
        .unwrap()
        .content
        .as_mut()
        .unwrap()
        .slices
        .clear();
    let mut b = a.clone();
    let content = b
        .tables
        .get_mut("public.t")
        .unwrap()
        .content
        .as_mut()
        .unwrap();
    content.rows = 3;
    content.checksum = "15".into();
    let c = compare(&a, &b);
    let classes: Vec<Class> = c.findings.iter().map(|f| f.class).collect();
    assert_eq!(classes, vec![Class::RowCount, Class::Content]);
    assert!(c.differing.is_empty());
}

#[test]
fn rows_are_named_by_key() {
    let k = |v: &str| vec![Some(v.to_owned())];
    let a = vec![
        (k("1"), "d1".into()),
        (k("2"), "d2".into()),
        (k("3"), "d3".into()),
    ];
    let b = vec![
        (k("1"), "d1".into()),
        (k("3"), "x3".into()),
        (k("4"), "d4".into()),
    ];
    let f = compare_rows("public.t", &["id".into()], &a, &b);
    let got: Vec<(Class, String)> = f.iter().map(|f| (f.class, f.key_text().unwrap())).collect();
    assert_eq!(
        got,
        vec![
            (Class::RowMissing, "(id)=(2)".into()),
            (Class::RowChanged, "(id)=(3)".into()),
            (Class::RowExtra, "(id)=(4)".into()),
        ]
    );
}

#[test]
fn normalisation_rules() {
    assert_eq!(normalize::locale("POSIX"), "C");
    assert_eq!(normalize::locale("de_DE.UTF-8@euro"), "de_DE.utf8@euro");
    assert_ne!(
        normalize::locale("de_DE.utf8"),
        normalize::locale("en_US.utf8")
    );
    assert_eq!(normalize::encoding("utf_8"), "UTF8");
    assert_eq!(
        normalize::definition("SELECT  'a  b'\n FROM t ;"),
        "SELECT 'a  b' FROM t"
    );
}

#[test]
fn passwords_leave_the_url_at_once() {
    let c =
        ConnInfo::parse("postgres://app:s%40cret@db.example:5433/shop?sslmode=require").unwrap();
    assert_eq!(c.url, "postgres://app@db.example:5433/shop?sslmode=require");
    assert_eq!(c.password.as_ref().unwrap().expose(), "s@cret");
    let shown = format!("{c} {c:?}");
    assert!(!shown.contains("cret"), "{shown}");
    assert_eq!(c.dbname(), Some("shop"));

    let c = ConnInfo::parse("postgresql://app@h/db?password=pw&password_file=/etc/pw").unwrap();
    assert_eq!(c.url, "postgres://app@h/db");
    assert_eq!(c.password_file.as_deref(), Some("/etc/pw"));
    assert!(!format!("{c}").contains("pw&"));

    let e = ConnInfo::parse("mssql://u:hunter2@h/db")
        .unwrap_err()
        .to_string();
    assert!(!e.contains("hunter2") && e.contains("***"), "{e}");
}

#[test]
fn host_prefix() {
    assert_eq!(
        split_host("old:postgres://u@localhost/db"),
        (Some("old"), "postgres://u@localhost/db")
    );
    assert_eq!(
        split_host("root@10.0.0.1:postgresql://localhost/db"),
        (Some("root@10.0.0.1"), "postgresql://localhost/db")
    );
    assert_eq!(split_host("postgres://h/db"), (None, "postgres://h/db"));
}

fn plan(key: &[&str], range: Option<(i64, i64)>) -> crate::driver::TablePlan {
    let col = |name: &str, ty: &str, not_null| crate::driver::PlanColumn {
        name: name.into(),
        data_type: ty.into(),
        same_type: true,
        not_null,
        collation: None,
    };
    crate::driver::TablePlan {
        table: "public.t".into(),
        columns: vec![col("id", "integer", true), col("v", "text", false)],
        key: key.iter().map(|k| k.to_string()).collect(),
        range,
        estimate: 0,
        fast: true,
    }
}

fn sums_query(p: &crate::driver::TablePlan, parent: &Slice, ways: u32) -> (String, Vec<Slice>) {
    crate::driver::sums_query_for_tests(&crate::postgres::Postgres, p, parent, ways)
}

/// A split covers its parent exactly, in order, without overlap; the bucket expression numbers
/// the sub-slices from 0, as `read_sums` takes them.
#[test]
fn key_ranges_split_exactly() {
    let p = plan(&["id"], Some((-5, 1_000_003)));
    for (lo, hi, ways) in [
        (-5i64, 1_000_003i64, 16u32),
        (7, 9, 16),
        (0, 1, 1024),
        (i64::MIN, i64::MAX, 16),
    ] {
        let (sql, subs) = sums_query(&p, &Slice::KeyRange { lo, hi }, ways);
        assert!(subs.len() <= ways as usize && !subs.is_empty());
        let mut at = lo;
        for s in &subs {
            let Slice::KeyRange { lo: a, hi: b } = s else {
                panic!("{s:?}")
            };
            assert_eq!(*a, at);
            assert!(b > a);
            at = *b;
        }
        assert_eq!(at, hi);
        assert!(sql.contains("GROUP BY b"), "{sql}");
        assert!(
            sql.contains(&format!("t.\"id\" >= {lo} AND t.\"id\" < {hi}")),
            "{sql}"
        );
    }
}

#[test]
fn hash_buckets_refine_their_parent() {
    let p = plan(&["code", "n"], None);
    let (_, top) = sums_query(&p, &Slice::All, 16);
    assert_eq!(top.len(), 16);
    let (sql, subs) = sums_query(&p, &top[5], 16);
    assert!(sql.contains("% 16 = 5"), "{sql}");
    assert!(sql.contains("% 256"), "{sql}");
    for s in &subs {
        let Slice::Hash { modulus, residue } = s else {
            panic!("{s:?}")
        };
        assert_eq!(*modulus, 256);
        assert_eq!(residue % 16, 5);
    }
    // One way: a plain sum, no grouping.
    let (sql, subs) = sums_query(&p, &Slice::All, 1);
    assert_eq!(subs, vec![Slice::All]);
    assert!(!sql.contains("GROUP BY"), "{sql}");
}

/// Types whose hash function tells values apart as their text does use it; the others (no hash
/// function, or one that hashes an OID or treats differently printed values as equal) are
/// hashed by their text, as is a column whose type differs between the sides.
#[test]
fn column_hashes_by_type() {
    use crate::postgres::column_hash;
    let h = |t: Option<&str>| column_hash("t.c", t, "7");
    assert_eq!(h(Some("integer")), "hashint4extended(t.c, 7)");
    assert_eq!(
        h(Some("character varying(20)")),
        "hashtextextended(t.c COLLATE \"C\", 7)"
    );
    assert_eq!(
        h(Some("character(84)")),
        "hashbpcharextended(t.c COLLATE \"C\", 7)"
    );
    // numeric: the value's hash has 1.0 = 1.00; the display scale tells them apart.
    assert!(h(Some("numeric(12,3)")).contains("scale(t.c)"));
    assert_eq!(
        h(Some("timestamp(3) with time zone")),
        "timestamp_hash_extended(t.c::timestamp, 7)"
    );
    for by_text in [
        Some("json"),
        Some("point"),
        Some("xml"),
        Some("interval"),
        Some("text[]"),
        Some("integer[]"),
        Some("public.mood"),
        Some("regclass"),
        Some("public.\"integer\""),
        Some("bytea"),
        Some("date"),
        None,
    ] {
        assert_eq!(
            h(by_text),
            "hashtextextended((t.c)::text COLLATE \"C\", 7)",
            "{by_text:?}"
        );
    }
}

/// The row hash chains the NOT NULL columns through the seed, starting from the xor of the
/// nullable columns' hashes (each NULL a constant of its own), and never yields NULL.
#[test]
fn row_hash_chains_not_null_columns_through_the_seed() {
    let p = plan(&["id"], None);
    let h = crate::postgres::row_hash(&p);
    assert!(
        h.starts_with(
            "coalesce(hashint4extended(t.\"id\", (coalesce(hashtextextended(t.\"v\" COLLATE \"C\", "
        ),
        "{h}"
    );
    assert!(h.ends_with(", 0)"), "{h}");
    let mut slow = plan(&["id"], None);
    slow.fast = false;
    assert!(crate::postgres::row_hash(&slow).contains("md5(ROW(t.\"id\", t.\"v\")::text)"));
}

/// A PostgreSQL session answering from a script: the inventory of a large table (split by
/// key range), small tables, a table keyed by text and one without a key, with one small table
/// and the text-keyed one differing on side 1. Every run's statements are recorded.
struct Scripted {
    side: u8,
    log: std::sync::Mutex<Vec<Vec<String>>>,
}

impl crate::Sql for Scripted {
    fn run(&self, statements: &[String]) -> Result<Vec<String>, crate::DbError> {
        self.log.lock().unwrap().push(statements.to_vec());
        let col = |n: &str, t: &str, nn: bool| format!("[\"{n}\", \"{t}\", {nn}, null, null]");
        let mut out = Vec::new();
        for s in statements {
            if s.contains("json_build_array('db'") {
                out.push("[\"db\", \"16.1\", \"d\", \"UTF8\", \"C\", \"C\", 42]".into());
            } else if s.contains("json_build_array('table'") {
                out.push(format!(
                    "[\"table\", \"public.big\", [{}, {}], [[\"id\", \"bigint\"]], 3000000, 1, 3000000]",
                    col("id", "bigint", true),
                    col("v", "text", false)
                ));
                for i in 0..5 {
                    out.push(format!(
                        "[\"table\", \"public.s{i}\", [{}], [[\"id\", \"integer\"]], 100, 1, 100]",
                        col("id", "integer", true)
                    ));
                }
                out.push(format!(
                    "[\"table\", \"public.tk\", [{}], [[\"code\", \"text\"]], 5000, null, null]",
                    col("code", "text", true)
                ));
                out.push(format!(
                    "[\"table\", \"public.nokey\", [{}], [], 10, null, null]",
                    col("x", "integer", false)
                ));
            } else if s == "SELECT '\"end\"'" {
                out.push("\"end\"".into());
            } else if s.starts_with("SELECT json_build_array(0, count(*)") {
                let differs = s.contains("public.tk") || s.contains("public.s3");
                out.push(format!(
                    "[0, 3000, \"{}\"]",
                    5 + if differs { self.side } else { 0 }
                ));
            } else if s.contains("GROUP BY b") {
                out.push(format!("[1, 30, \"{}\"]", 7 + self.side));
            } else if s.starts_with("SELECT json_build_array(json_build_array(") {
                out.push(format!("[[\"k{}\"], \"abc\"]", self.side));
            }
        }
        Ok(out)
    }
    fn describe(&self) -> String {
        format!("side {}", self.side)
    }
}

/// The sessions PostgreSQL's verify runs on the driver: the key bounds come from the inventory
/// (no min/max query), the fast row hash is used where both probes agree, the small tables
/// ride along with the large table's two sessions, and each differing slice costs one grouped
/// query and one listing per side.
#[test]
fn postgres_sessions_on_the_driver() {
    let a = Scripted {
        side: 0,
        log: Default::default(),
    };
    let b = Scripted {
        side: 1,
        log: Default::default(),
    };
    let opts = crate::VerifyOptions {
        parallel: 2,
        ..Default::default()
    };
    let report = crate::verify_engine(crate::Engine::Postgres, &a, &b, &opts).unwrap();
    assert_eq!(report.engine, "postgresql");
    for side in [&a, &b] {
        let log = side.log.lock().unwrap();
        // Inventory, two content sessions, and for s3 and tk a grouped query and a listing.
        assert_eq!(log.len(), 7, "{log:#?}");
        let all: Vec<&String> = log.iter().flatten().collect();
        assert!(!all.iter().any(|s| s.contains("min(t.")), "{all:#?}");
        let content: Vec<&Vec<String>> = log
            .iter()
            .filter(|run| run.iter().any(|s| s.contains("public.big")))
            .collect();
        assert_eq!(content.len(), 2);
        // Every table is summed in one of the large table's sessions.
        for t in ["s0", "s4", "tk", "nokey"] {
            assert!(
                content
                    .iter()
                    .any(|run| run.iter().any(|s| s.contains(&format!("public.{t} t")))),
                "{t}"
            );
        }
        assert!(all.iter().any(|s| s.contains("hashint8extended(t.\"id\"")));
    }
    assert!(
        report.findings.iter().any(|f| f.name.contains("public.s3")),
        "{:#?}",
        report.findings
    );
}

/// Issue 18: the database crate had its own escaper, which let the bidirectional controls
/// through (a table named `\u{202e}txt.exe` read backwards on the terminal). Its reports use
/// the one escaper now.
#[test]
fn reports_escape_bidi_controls_from_the_database() {
    let r = crate::Report {
        old: "db\u{202e}cba\u{2066}".into(),
        old_version: "16\u{1b}[2J".into(),
        notes: vec!["n\u{2069}\u{202a}".into()],
        ..Default::default()
    };
    let mut out = Vec::new();
    r.render_human(&mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("db\\u{202e}cba\\u{2066}"), "{out}");
    assert!(out.contains("16\\u{1b}[2J"), "{out}");
    assert!(out.contains("n\\u{2069}\\u{202a}"), "{out}");
    for c in ['\u{202e}', '\u{2066}', '\u{2069}', '\u{202a}', '\u{1b}'] {
        assert!(!out.contains(c), "{out:?}");
    }
}

/// Issue 18: the exercise says "unchanged" only when the checksum after equals the one before;
/// a changed content sum or sequence is a finding naming the table or sequence, with the
/// values before and after (not "rows not located": the rows are gone).
#[test]
fn the_exercise_is_unchanged_only_when_both_checksums_are_equal() {
    use crate::exercise::Unchanged;
    let mut before = inventory();
    for t in before.tables.values_mut() {
        if let Some(c) = &mut t.content {
            c.slices.clear();
        }
    }
    let u = Unchanged::compare(&before, &before.clone(), Vec::new());
    assert!(u.equal, "{u:?}");
    assert_eq!(u.before, u.after);
    assert_eq!(u.before.len(), 64);
    assert_eq!((u.tables, u.rows, u.sequences), (1, 2, 1));
    // Objects in another order are the same database.
    let mut reordered = before.clone();
    reordered.objects.reverse();
    reordered.objects.push(reordered.objects[0].clone());
    reordered.objects.pop();
    assert!(Unchanged::compare(&before, &reordered, Vec::new()).equal);

    let mut after = before.clone();
    after
        .tables
        .get_mut("public.t")
        .unwrap()
        .content
        .as_mut()
        .unwrap()
        .checksum = "11".into();
    after
        .sequences
        .get_mut("public.t_id_seq")
        .unwrap()
        .last_value = Some(3);
    let u = Unchanged::compare(&before, &after, vec!["other databases".into()]);
    assert!(!u.equal);
    assert_ne!(u.before, u.after);
    let found: Vec<(Class, &str, Option<&str>, Option<&str>)> = u
        .findings
        .iter()
        .map(|f| (f.class, f.name.as_str(), f.old.as_deref(), f.new.as_deref()))
        .collect();
    assert_eq!(
        found,
        [
            (
                Class::Content,
                "public.t",
                Some("checksum 10"),
                Some("checksum 11")
            ),
            (Class::Sequence, "public.t_id_seq", Some("2"), Some("3")),
        ]
    );
    assert_eq!(u.not_covered, ["other databases"]);
}
