//! Unit tests of the MariaDB and SQLite parts: URLs, the checksum sums, the split of a slice
//! by the engine-neutral driver.

use crate::driver::{Dialect, TablePlan, add};
use crate::model::Slice;
use crate::{ConnInfo, Engine, split_host};

#[test]
fn mysql_and_sqlite_urls() {
    let c =
        ConnInfo::parse("mysql://app:s%40cret@db.example:3307/shop?socket=/run/mysqld/mysqld.sock")
            .unwrap();
    assert_eq!(c.engine(), Engine::Mysql);
    assert_eq!(
        c.url,
        "mysql://app@db.example:3307/shop?socket=/run/mysqld/mysqld.sock"
    );
    assert_eq!(c.password.as_ref().unwrap().expose(), "s@cret");
    assert!(!format!("{c} {c:?}").contains("cret"));
    let t = c.mysql().unwrap();
    assert_eq!(t.user.as_deref(), Some("app"));
    assert_eq!(t.host.as_deref(), Some("db.example"));
    assert_eq!(t.port, Some(3307));
    assert_eq!(t.database.as_deref(), Some("shop"));
    assert_eq!(t.socket.as_deref(), Some("/run/mysqld/mysqld.sock"));

    // The plan's form: everything as parameters, the password in a file.
    let c = ConnInfo::parse(
        "mysql:///shop?host=127.0.0.1&port=3306&user=verify&password_file=/etc/rehost/pw",
    )
    .unwrap();
    assert_eq!(c.password_file.as_deref(), Some("/etc/rehost/pw"));
    let t = c.mysql().unwrap();
    assert_eq!(
        (t.host.as_deref(), t.port, t.user.as_deref()),
        (Some("127.0.0.1"), Some(3306), Some("verify"))
    );
    assert!(ConnInfo::parse("mariadb://u@h:notaport/db").is_err());
    let e = ConnInfo::parse("mysql://u:hunter2@h/db?sslmode=x")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown parameter") && !e.contains("hunter2"),
        "{e}"
    );

    let c = ConnInfo::parse("sqlite:/var/lib/app/app.db").unwrap();
    assert_eq!(c.engine(), Engine::Sqlite);
    assert_eq!(c.sqlite_path(), Some("/var/lib/app/app.db"));
    assert_eq!(
        ConnInfo::parse("sqlite:///var/lib/x.db")
            .unwrap()
            .sqlite_path(),
        Some("/var/lib/x.db")
    );
    assert!(ConnInfo::parse("sqlite:").is_err());
    let e = ConnInfo::parse("oracle://u:pw@h/db")
        .unwrap_err()
        .to_string();
    assert!(e.contains("***") && !e.contains(":pw@"), "{e}");
}

#[test]
fn host_prefix_for_every_engine() {
    assert_eq!(
        split_host("old:mysql://u@127.0.0.1/db"),
        (Some("old"), "mysql://u@127.0.0.1/db")
    );
    assert_eq!(
        split_host("root@10.0.0.1:sqlite:/srv/app.db"),
        (Some("root@10.0.0.1"), "sqlite:/srv/app.db")
    );
    assert_eq!(
        split_host("sqlite:/srv/app.db"),
        (None, "sqlite:/srv/app.db")
    );
}

#[test]
fn checksums_add_part_by_part() {
    assert_eq!(add("1:2", "10:20"), "11:22");
    assert_eq!(add("18446744073709551615", "1"), "18446744073709551616");
    // What is not a number stays visible instead of being read as 0.
    assert_eq!(add("x", "1"), "x+1");
    assert_ne!(add("1:2", "3"), add("1:2", "4"));
}

fn plan(key: &[&str], range: Option<(i64, i64)>) -> TablePlan {
    TablePlan {
        table: "t".into(),
        columns: [("id", "int"), ("v", "text")]
            .into_iter()
            .map(|(name, ty)| crate::driver::PlanColumn {
                name: name.into(),
                data_type: ty.into(),
                same_type: true,
                not_null: false,
                collation: None,
            })
            .collect(),
        key: key.iter().map(|k| k.to_string()).collect(),
        range,
        estimate: 0,
        fast: false,
    }
}

/// The bucket expression numbers the sub-slices from 0, and the sub-slices cover the parent
/// exactly: checked by evaluating the SQL's arithmetic in Rust for every key of a range.
#[test]
fn a_key_range_splits_into_buckets_that_cover_it() {
    for d in [
        &crate::mysql::Mysql as &dyn Dialect,
        &crate::sqlite::Sqlite as &dyn Dialect,
    ] {
        let p = plan(&["id"], Some((-7, 1000)));
        let parent = Slice::KeyRange { lo: -7, hi: 1000 };
        let (sql, subs) = crate::driver::sums_query_for_tests(d, &p, &parent, 16);
        assert!(sql.contains("GROUP BY b"), "{sql}");
        let mut next = -7i64;
        for s in &subs {
            let Slice::KeyRange { lo, hi } = s else {
                panic!("{s:?}")
            };
            assert_eq!(*lo, next);
            next = *hi;
        }
        assert_eq!(next, 1000);
        let width = match subs[0] {
            Slice::KeyRange { lo, hi } => hi - lo,
            _ => unreachable!(),
        };
        for k in -7..1000i64 {
            let bucket = ((k - (-7)) / width) as usize;
            assert!(
                matches!(subs[bucket], Slice::KeyRange { lo, hi } if lo <= k && k < hi),
                "key {k}"
            );
        }
    }
}

#[test]
fn row_text_tells_columns_apart() {
    // ('a','bc') and ('ab','c'): every value carries its length (MariaDB) or its quotes
    // (SQLite), so the texts differ.
    let p = plan(&["id"], None);
    let m = crate::driver::rows_query_for_tests(&crate::mysql::Mysql, &p, "1 = 1");
    assert!(
        m.contains("CONCAT_WS(0x1f, IFNULL(t.`id`, 'N'), CAST(t.`v` AS BINARY), IFNULL(LENGTH(t.`v`), 'N'))"),
        "{m}"
    );
    let s = crate::driver::rows_query_for_tests(&crate::sqlite::Sqlite, &p, "1 = 1");
    assert!(
        s.contains("quote(t.\"id\") || ',' || quote(t.\"v\")"),
        "{s}"
    );
}

/// A session that answers the same lines to everything: a hostile or broken server.
struct Fixed(Vec<String>);

impl crate::Sql for Fixed {
    fn run(&self, _: &[String]) -> Result<Vec<String>, crate::DbError> {
        Ok(self.0.clone())
    }
    fn describe(&self) -> String {
        "fixed".into()
    }
}

#[test]
fn odd_answers_are_errors_not_panics() {
    let opts = crate::VerifyOptions::default();
    for lines in [
        vec!["not json".to_owned()],
        vec!["[\"surprise\", 1]".to_owned()],
        vec![
            "[\"table\"]".to_owned(),
            "[\"column\", null, [], {}]".to_owned(),
        ],
        vec!["{}".to_owned(), "[]".to_owned(), "null".to_owned()],
    ] {
        let a = Fixed(lines.clone());
        let b = Fixed(lines);
        for engine in [Engine::Postgres, Engine::Mysql, Engine::Sqlite] {
            // Either an error naming the session, or a report: never a panic.
            if let Err(e) = crate::verify_engine(engine, &a, &b, &opts) {
                assert!(e.to_string().contains("fixed"), "{e}");
            }
            let _ = crate::exercise_engine(engine, &a, &[]);
        }
    }
}

#[test]
fn a_missing_table_is_said_once() {
    use crate::model::{Inventory, ObjectKind, SchemaObject, Table};
    let mut a = Inventory::default();
    a.tables.insert("t".into(), Table::default());
    a.objects.push(SchemaObject {
        kind: ObjectKind::Table,
        name: "t".into(),
        definition: "ENGINE=InnoDB".into(),
    });
    let b = Inventory::default();
    let c = crate::compare(&a, &b);
    assert_eq!(c.findings.len(), 1, "{:#?}", c.findings);
    let c = crate::compare(&b, &a);
    assert_eq!(c.findings.len(), 1, "{:#?}", c.findings);
    // A changed definition of a table both sides have is still a finding.
    let mut b2 = a.clone();
    b2.objects[0].definition = "ENGINE=MyISAM".into();
    assert_eq!(crate::compare(&a, &b2).findings.len(), 1);
}

#[test]
fn the_crc_row_hash_needs_mariadb_10_8_on_both_sides() {
    use crate::mysql::RowHash;
    assert_eq!(
        RowHash::for_version("10.11.19-MariaDB-0+deb12u1"),
        RowHash::Crc
    );
    assert_eq!(RowHash::for_version("10.8.0-MariaDB"), RowHash::Crc);
    assert_eq!(RowHash::for_version("11.4.2-MariaDB-log"), RowHash::Crc);
    assert_eq!(
        RowHash::for_version("10.6.18-MariaDB-0+deb11u1"),
        RowHash::Md5
    );
    assert_eq!(RowHash::for_version("5.5.5-10.11.6-MariaDB"), RowHash::Md5);
    assert_eq!(RowHash::for_version("8.0.36"), RowHash::Md5);
    assert_eq!(RowHash::for_version(""), RowHash::Md5);
    let p = plan(&["id"], Some((0, 10)));
    let fast = TablePlan {
        fast: true,
        ..p.clone()
    };
    let (q, _) = crate::driver::sums_query_for_tests(&crate::mysql::Mysql, &fast, &Slice::All, 1);
    assert!(
        q.contains("CRC32C(@rehost_row)") && !q.contains("GROUP BY"),
        "{q}"
    );
    let (q, _) = crate::driver::sums_query_for_tests(&crate::mysql::Mysql, &p, &Slice::All, 1);
    assert!(q.contains("LEFT(MD5(CONCAT_WS(0x1f"), "{q}");
}

/// A grant's database name is a pattern (`%`, `_`, `\` escaping): a grant on `app\_%` names
/// `app_1` and not `appx1`.
#[test]
fn grant_database_patterns() {
    use crate::mysql::db_pattern_matches as m;
    assert!(m("app", "app"));
    assert!(!m("app", "App"));
    assert!(m("app%", "app_archive"));
    assert!(m("a_p", "app"));
    assert!(m("app\\_%", "app_1"));
    assert!(!m("app\\_%", "appx1"));
    assert!(!m("app", "app2"));
    assert!(m("%", ""));
}

fn access(owner: &str, kind: crate::ObjectKind, name: &str) -> (String, crate::SchemaObject) {
    (
        owner.into(),
        crate::SchemaObject {
            kind,
            name: name.into(),
            definition: format!("{name} as defined"),
        },
    )
}

/// The accounts compared are those either side's database names and their members,
/// recursively (a login granted a role that holds the grants), on both sides, so an account
/// that lost its grants on one side is still compared there; nothing when a side was not read.
#[test]
fn accounts_kept_are_those_the_database_names_and_their_members() {
    use crate::ObjectKind::{Account, Privileges, Role};
    use crate::driver::{Extra, keep_access};
    let server = vec![
        access("`app`@`%`", Account, "`app`@`%`"),
        access("`app`@`%`", Privileges, "`app`@`%` on `shop`.*"),
        access("`rw`", Role, "`rw`"),
        access("`web`@`%`", Account, "`web`@`%`"),
        access("`web`@`%`", Privileges, "`web`@`%` on role `rw`"),
        access("`batch`@`%`", Account, "`batch`@`%`"),
        access("`batch`@`%`", Privileges, "`batch`@`%` on role `web`@`%`"),
        access("`root`@`localhost`", Account, "`root`@`localhost`"),
    ];
    let members: Vec<(String, String)> = vec![
        ("`web`@`%`".into(), "`rw`".into()),
        ("`batch`@`%`".into(), "`web`@`%`".into()),
    ];
    let old = Extra {
        access: Some(server.clone()),
        named: ["`rw`".to_owned(), "`app`@`%`".to_owned()].into(),
        members: members.clone(),
        ..Default::default()
    };
    // The new side lost app's grant on the database, so its database names only the role:
    // app is still compared there.
    let new = Extra {
        access: Some(server[..1].iter().chain(&server[2..]).cloned().collect()),
        named: ["`rw`".to_owned()].into(),
        members,
        ..Default::default()
    };
    let (mut a, mut b) = (crate::Inventory::default(), crate::Inventory::default());
    keep_access((&mut a, &mut b), (&old, &new));
    let names = |i: &crate::Inventory| -> Vec<String> {
        i.objects
            .iter()
            .map(|o| format!("{} {}", o.kind.name(), o.name))
            .collect()
    };
    assert_eq!(
        names(&a),
        [
            "privileges `app`@`%` on `shop`.*",
            "privileges `batch`@`%` on role `web`@`%`",
            "privileges `web`@`%` on role `rw`",
            "role `rw`",
            "account `app`@`%`",
            "account `batch`@`%`",
            "account `web`@`%`",
        ]
    );
    assert_eq!(
        names(&b),
        [
            "privileges `batch`@`%` on role `web`@`%`",
            "privileges `web`@`%` on role `rw`",
            "role `rw`",
            "account `app`@`%`",
            "account `batch`@`%`",
            "account `web`@`%`",
        ]
    );

    let unread = Extra {
        access: None,
        ..new.clone()
    };
    let (mut a, mut b) = (crate::Inventory::default(), crate::Inventory::default());
    keep_access((&mut a, &mut b), (&old, &unread));
    assert!(a.objects.is_empty() && b.objects.is_empty());
}

/// The verdict line names what was not compared; the human report is escaped whole.
#[test]
fn the_verdict_names_what_was_not_compared() {
    let mut r = crate::Report {
        engine: "SQLite".into(),
        old: "sqlite:/srv/a.db".into(),
        new: "sqlite:/srv/b.db".into(),
        old_version: "3.40.1".into(),
        new_version: "3.40.1".into(),
        tables: 2,
        rows: 10,
        sequences: 0,
        objects: 3,
        not_compared: vec![
            "accounts and privileges: SQLite has none".into(),
            "row by row, tables without a usable primary key: log\x1b[31m".into(),
        ],
        ..Default::default()
    };
    let mut out = Vec::new();
    r.render_human(&mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "old: sqlite:/srv/a.db (SQLite 3.40.1)\n\
         new: sqlite:/srv/b.db (SQLite 3.40.1)\n\
         equal: 2 tables (10 rows), 0 sequences, 3 schema objects; not compared: accounts and privileges: SQLite has none; row by row, tables without a usable primary key: log\\u{1b}[31m\n"
    );
    r.findings.push(crate::Finding::new(
        crate::Class::RowCount,
        crate::ObjectKind::Table,
        "log",
    ));
    assert_eq!(
        r.summary(),
        "different: 1 row-count (compared 2 tables, 10 rows, 0 sequences, 3 schema objects); not compared: accounts and privileges: SQLite has none; row by row, tables without a usable primary key: log\x1b[31m"
    );
    let mut json = Vec::new();
    r.render_json(&mut json).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(
        doc["not_compared"][0],
        "accounts and privileges: SQLite has none"
    );
    // A report of before the scope was listed reads as an empty list.
    let old: crate::Report = serde_json::from_str(
        r#"{"old":"a","new":"b","old_version":"1","new_version":"1","tables":0,"rows":0,"sequences":0,"objects":0,"findings":[],"notes":[]}"#,
    )
    .unwrap();
    assert!(old.not_compared.is_empty());
}

/// docs/db.md lists each engine's scope word for word, so what an administrator reads is what
/// the reports say.
#[test]
fn docs_list_what_each_engine_does_not_compare() {
    let doc = include_str!("../../../docs/db.md");
    for (engine, list) in [
        ("PostgreSQL", crate::postgres::NOT_COMPARED),
        ("MariaDB and MySQL", crate::mysql::NOT_COMPARED),
        ("SQLite", crate::sqlite::NOT_COMPARED),
    ] {
        let section = doc
            .split_once("## What is compared, and what is not")
            .and_then(|(_, rest)| rest.split_once(&format!("\n{engine}:\n")))
            .map(|(_, rest)| rest.split("\n\n").next().unwrap_or_default())
            .unwrap_or_else(|| panic!("docs/db.md has no list for {engine}"));
        let documented: Vec<&str> = section
            .lines()
            .map(|l| l.trim_start_matches("- "))
            .collect();
        assert_eq!(documented, list, "docs/db.md's list for {engine}");
    }
}

/// A plan whose one database has `keys` (besides `id`, `from`, `to`).
fn plan_database(keys: &str) -> rehost_plan::Database {
    let src = format!(
        r#"
[migration]
title = "t"
window = {{ start = "2020-01-01T00:00:00Z", end = "2099-01-01T00:00:00Z" }}
max_downtime = "15m"
[hosts.old]
local = true
[hosts.new]
local = true
[[databases]]
id = "shop"
from = "old"
to = "new"
{keys}
"#
    );
    let checked = rehost_plan::check(&src);
    let plan = checked
        .plan
        .unwrap_or_else(|| panic!("{:?}", checked.errors));
    plan.database("shop").unwrap().clone()
}

/// The URL a plan's database side used to be written as and parsed back from (before the
/// location was built from the plan's typed fields): `of` must locate it the same.
fn url_as_before(db: &rehost_plan::Database, to: bool) -> String {
    let port = db.port_on(to);
    let database = db.name_on(to);
    let mut params = Vec::new();
    let scheme = match db.kind.unwrap() {
        Engine::Sqlite => return format!("sqlite:{}", database.unwrap_or_default()),
        Engine::Mysql => {
            params.push(match &db.socket {
                Some(s) => format!("socket={s}"),
                None => "host=127.0.0.1".to_owned(),
            });
            format!("mysql:///{}", database.unwrap_or_default())
        }
        Engine::Postgres => {
            params.push(format!(
                "host={}",
                db.socket.as_deref().unwrap_or("127.0.0.1")
            ));
            format!("postgres:///{}", database.unwrap_or("postgres"))
        }
    };
    if let Some(p) = port {
        params.push(format!("port={p}"));
    }
    if let Some(u) = &db.user {
        params.push(format!("user={u}"));
    }
    if let Some(f) = &db.password_file {
        params.push(format!("password_file={f}"));
    }
    format!("{scheme}?{}", params.join("&"))
}

/// A plan's database is located once, from its typed fields: each side's URL (what messages
/// show and psql takes), the client's options and the password file, as the URL the plan used
/// to write and parse back gave them.
#[test]
fn a_plan_database_is_located_from_its_fields() {
    let pg = plan_database(
        "engine = \"postgresql\"\ndatabase = \"shop\"\nuser = \"verify\"\nfrom_port = 5433\nport = 5432\npassword_file = \"/etc/rehost/shop.pw\"",
    );
    let old = ConnInfo::of(&pg, false).unwrap();
    assert_eq!(
        old.to_string(),
        "postgres:///shop?host=127.0.0.1&port=5433&user=verify (password in /etc/rehost/shop.pw)"
    );
    assert_eq!(old.engine(), Engine::Postgres);
    assert_eq!(old.dbname(), Some("shop"));
    assert_eq!(
        ConnInfo::of(&pg, true).unwrap().url,
        "postgres:///shop?host=127.0.0.1&port=5432&user=verify"
    );

    let my = plan_database(
        "engine = \"MariaDB\"\nfrom_database = \"shop\"\nto_database = \"shop2\"\nsocket = \"/run/mysqld/mysqld.sock\"\nuser = \"verify\"\npassword_file = \"/etc/rehost/pw\"",
    );
    let new = ConnInfo::of(&my, true).unwrap();
    assert_eq!(
        new.url,
        "mysql:///shop2?socket=/run/mysqld/mysqld.sock&user=verify"
    );
    let t = new.mysql().unwrap();
    assert_eq!(
        (
            t.host.as_deref(),
            t.socket.as_deref(),
            t.database.as_deref()
        ),
        (None, Some("/run/mysqld/mysqld.sock"), Some("shop2"))
    );
    let tcp = plan_database("engine = \"mysql\"\ndatabase = \"shop\"\nto_port = 3307");
    let t = ConnInfo::of(&tcp, true).unwrap();
    assert_eq!(
        (t.mysql().unwrap().host.as_deref(), t.mysql().unwrap().port),
        (Some("127.0.0.1"), Some(3307))
    );

    let lite = plan_database("engine = \"sqlite3\"\ndatabase = \"/srv/app.db\"");
    let c = ConnInfo::of(&lite, false).unwrap();
    assert_eq!(
        (c.url.as_str(), c.sqlite_path()),
        ("sqlite:/srv/app.db", Some("/srv/app.db"))
    );

    for db in [&pg, &my, &tcp, &lite] {
        for to in [false, true] {
            assert_eq!(
                ConnInfo::of(db, to).unwrap(),
                ConnInfo::parse(&url_as_before(db, to)).unwrap(),
                "{} ({to})",
                db.engine
            );
        }
    }

    // What cannot be located is an error naming why, as before.
    let e = ConnInfo::of(&plan_database("engine = \"redis\""), true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`shop` is a redis database"), "{e}");
    let e = ConnInfo::of(&plan_database("engine = \"sqlite\""), true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`sqlite:` names no file"), "{e}");
    let e = ConnInfo::of(
        &plan_database("engine = \"mariadb\"\nuser = \"--init-command=x\""),
        true,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("cannot be handed to the client"), "{e}");
}

/// Issue 27: a table whose text columns share one character set on both sides is summed
/// without `CAST(… AS BINARY)` on them. On a real server, every row's text (and digest) must be
/// byte for byte the one the `CAST`s give: with a separator, multi-byte characters, trailing
/// spaces, empty strings and NULLs in the values, beside binary, enum, long text and number
/// columns; in UTF-8 and in latin1. A table mixing character sets keeps every `CAST`.
#[test]
fn the_row_text_without_casts_is_the_bytes_the_casts_give() {
    use crate::driver::PlanColumn;
    let db = rehost_test::mariadb::Mariadb::start();
    db.sql("", "CREATE DATABASE x CHARACTER SET utf8mb4");
    // `WIDE` is replaced by characters latin1 has no place for, in the UTF-8 tables.
    let values = "(1, 'a', 'b', 't', 'tt', 0x00ff1f, 0x1f, 'x', 'long', 7),
        (2, 'a\x1fb', 'üWIDE', 'c ', '', '', '', 'ü', REPEAT('é', 40000), -1),
        (3, '', 'ab\x1f', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        (4, 'ab', 'N', 'NULL', 'n', 0x4e, 0x4e554c4c, 'x', '', 0),
        (5, 'é', '1', '2', '3', 0x31, 0x32, 'ü', 'z', 3)";
    let make = |table: &str, cs: &str, other_cs: &str| {
        db.sql(
            "x",
            &format!(
                "CREATE TABLE {table} (id INT PRIMARY KEY, c CHAR(10) CHARACTER SET {cs}, \
                 v VARCHAR(50) CHARACTER SET {cs}, tt TINYTEXT CHARACTER SET {cs}, \
                 tx TEXT CHARACTER SET {other_cs}, vb VARBINARY(20), b BLOB, \
                 e ENUM('x','ü') CHARACTER SET {cs}, lt LONGTEXT CHARACTER SET {cs}, n INT); \
                 INSERT INTO {table} VALUES {};",
                values.replace("WIDE", if cs == "latin1" { "ÿ" } else { "€😀" })
            ),
        );
    };
    make("u", "utf8mb4", "utf8mb4");
    make("l", "latin1", "latin1");
    make("m", "utf8mb4", "latin1");
    let plan = |table: &str, cs: &str, other_cs: &str| TablePlan {
        table: table.into(),
        columns: [
            ("b", "blob", None),
            ("c", "char", Some(cs)),
            ("e", "enum", Some(cs)),
            ("id", "int", None),
            ("lt", "longtext", Some(cs)),
            ("n", "int", None),
            ("tt", "tinytext", Some(cs)),
            ("tx", "text", Some(other_cs)),
            ("v", "varchar", Some(cs)),
            ("vb", "varbinary", None),
        ]
        .into_iter()
        .map(|(name, ty, cs)| PlanColumn {
            name: name.into(),
            data_type: ty.into(),
            same_type: true,
            not_null: name == "id",
            collation: cs.map(|cs| format!("{cs}_general_ci")),
        })
        .collect(),
        key: vec!["id".into()],
        range: None,
        estimate: 0,
        fast: true,
    };
    let m = crate::mysql::Mysql;
    for (table, cs, other, as_is) in [
        ("u", "utf8mb4", "utf8mb4", true),
        ("l", "latin1", "latin1", true),
        ("m", "utf8mb4", "latin1", false),
    ] {
        let p = plan(table, cs, other);
        // The same plan with no collation known: every text column cast, as before.
        let mut cast = p.clone();
        for c in &mut cast.columns {
            c.collation = None;
        }
        let (text, text_cast) = (m.row_text(&p), m.row_text(&cast));
        assert_eq!(
            !text.contains("CAST(t.`v` AS BINARY)"),
            as_is,
            "{table}: {text}"
        );
        assert!(text_cast.contains("CAST(t.`v` AS BINARY)"), "{text_cast}");
        let (digest, digest_cast) = (m.digest(&p), m.digest(&cast));
        let out = db.sql(
            "x",
            &format!(
                "SET NAMES utf8mb4; SELECT COUNT(*), SUM(HEX({text}) = HEX({text_cast})), \
                 SUM({digest} = {digest_cast}) FROM {table} t;"
            ),
        );
        assert_eq!(out, "5\t5\t5", "{table}: rows, equal texts, equal digests");
    }
}
