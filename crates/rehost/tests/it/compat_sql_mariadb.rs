//! `rehost compat replay-sql` with MariaDB: two real servers on loopback, the old one's general
//! query log turned on while test clients run; the new one with a changed
//! `div_precision_increment` and `sql_mode` and without a function the old one had. The
//! replay finds and names exactly the changed answers (statement, log line, database, row,
//! column, both values), reports the `NOW()`/`RAND()` query as noise, refuses the write (and
//! never runs the DDL), follows `USE` into a second database, and leaves the old server as it
//! was. The `compat-sql` step does the same against a plan database of engine `mariadb`.

use crate::support::*;
use rehost_test::TestDir;
use rehost_test::mariadb::{Mariadb, tool};
use std::time::{Duration, Instant};

const SCHEMA: &str = "\
CREATE DATABASE app;
CREATE DATABASE reports;
CREATE TABLE app.events (id int PRIMARY KEY, amount decimal(10,2) NOT NULL, note text);
INSERT INTO app.events VALUES (1, 10.00, 'NULL'), (2, 20.00, NULL);
CREATE TABLE reports.totals (region varchar(10) PRIMARY KEY, total int NOT NULL);
INSERT INTO reports.totals VALUES ('north', 10), ('south', 20);
";

/// What the first old client sent (the mariadb client in batch mode, database `app`): its
/// `USE reports` goes to the server as `Init DB`.
const CLIENT: &str = "\
SELECT id, amount / 3 AS third FROM events ORDER BY id;
SELECT 'a' || 'b' AS joined;
SELECT legacy_total() AS n;
SELECT NOW(6) AS at, RAND() AS r, 1 AS one;
SELECT id, note FROM events
 ORDER BY id;
UPDATE events SET note = 'changed' WHERE id = 1;
CREATE TABLE scratch (a int);
DROP TABLE scratch;
USE reports;
SELECT region, total / 7 AS share FROM totals ORDER BY region;
";

/// The second client (binary mode, no database at first): its `USE` is a `Query`.
const CLIENT2: &str = "\
USE reports;
SELECT count(*) AS n FROM totals;
SELECT 'client done' AS marker;
";

fn wait_for(path: &std::path::Path, marker: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.contains(marker)
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not log `{marker}` within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Two servers with the schema; old logging every statement while the two clients run, new
/// with the changed settings and without `legacy_total()`. Returns them and the general log.
fn recorded(d: &TestDir) -> (Mariadb, Mariadb, String) {
    let old = Mariadb::start();
    let new = Mariadb::start();
    for db in [&old, &new] {
        db.sql("", SCHEMA);
    }
    old.sql(
        "app",
        "CREATE FUNCTION legacy_total() RETURNS int READS SQL DATA RETURN (SELECT count(*) FROM events);",
    );
    new.sql(
        "",
        "SET GLOBAL div_precision_increment = 2; SET GLOBAL sql_mode = CONCAT(@@sql_mode, ',PIPES_AS_CONCAT');",
    );
    let log = d.path().join("general.log");
    old.sql(
        "",
        &format!(
            "SET GLOBAL general_log_file = '{}'; SET GLOBAL general_log = ON;",
            log.display()
        ),
    );
    old.sql("app", CLIENT);
    let out = std::process::Command::new(tool("mariadb"))
        .args(old.client_args())
        .args(["--batch", "--binary-mode", "--execute", CLIENT2])
        .output()
        .expect("run mariadb");
    assert!(
        out.status.success(),
        "the second client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = wait_for(&log, "'client done'");
    old.sql("", "SET GLOBAL general_log = OFF;");
    // The client's own changes undone: the old server as it was before the clients.
    old.sql("app", "UPDATE events SET note = 'NULL' WHERE id = 1;");
    (old, new, text)
}

fn finding<'a>(v: &'a serde_json::Value, statement_starts: &str) -> &'a serde_json::Value {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["statement"]
                .as_str()
                .unwrap()
                .starts_with(statement_starts)
        })
        .unwrap_or_else(|| panic!("no finding for `{statement_starts}`: {v:#}"))
}

/// The log line on which `text` is logged as a `Query`.
fn line_of(log: &str, text: &str) -> u64 {
    log.lines()
        .position(|l| l.contains(&format!("Query\t{text}")))
        .unwrap_or_else(|| panic!("`{text}` is not in the log:\n{log}")) as u64
        + 1
}

fn replay(d: &TestDir, old: &Mariadb, new: &Mariadb, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "compat",
        "replay-sql",
        "--log",
        "general.log",
        "--old",
        &old.url("app"),
        "--new",
        &new.url("app"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    let _ = d;
    a
}

#[test]
fn a_mariadb_general_log_names_what_the_changed_server_answers_differently() {
    let d = TestDir::new();
    let (old, new, log) = recorded(&d);
    let ran = test_in(&d)
        .args(replay(&d, &old, &new, &["--json"]))
        .code(1);
    let v: serde_json::Value = serde_json::from_str(ran.stdout().trim()).unwrap();
    assert_eq!(v["format"], "mariadb-general", "{v:#}");
    assert_eq!(v["result"], "differ");

    // div_precision_increment: the first differing row and column, with both values.
    let third = finding(&v, "SELECT id, amount / 3 AS third");
    assert_eq!(
        third["line"].as_u64().unwrap(),
        line_of(&log, "SELECT id, amount / 3 AS third")
    );
    assert_eq!(
        (&third["class"], &third["row"], &third["column"]),
        (&"value".into(), &1.into(), &"third".into())
    );
    assert_eq!(
        (&third["old"], &third["new"]),
        (&"3.333333".into(), &"3.3333".into())
    );
    assert_eq!(third["database"], "app");
    // PIPES_AS_CONCAT: `||` joins strings on the new server, is OR on the old.
    let joined = finding(&v, "SELECT 'a' || 'b'");
    assert_eq!(
        (&joined["old"], &joined["new"]),
        (&"0".into(), &"ab".into())
    );
    // The function the new server lacks: an error only the new server raises, in its words.
    let legacy = finding(&v, "SELECT legacy_total()");
    assert_eq!(legacy["class"], "error on new only");
    assert_eq!(
        legacy["new"],
        "ERROR 1305 (42000): FUNCTION app.legacy_total does not exist"
    );
    // After `USE reports` (Init DB): replayed in reports, named so.
    let share = finding(&v, "SELECT region, total / 7 AS share");
    assert_eq!(share["database"], "reports");
    assert_eq!(
        (&share["old"], &share["new"]),
        (&"1.4286".into(), &"1.43".into())
    );
    assert_eq!(v["new_errors"], 1);
    assert_eq!(v["differing"], 4, "{v:#}");

    // NOW() and RAND(): noise, not a finding.
    let noisy = v["noisy"].as_array().unwrap();
    assert_eq!(noisy.len(), 1, "{v:#}");
    assert!(
        noisy[0]["statement"]
            .as_str()
            .unwrap()
            .starts_with("SELECT NOW(6)")
    );
    assert_eq!(
        noisy[0]["why"],
        "column at, r differs between the two runs on the old server"
    );
    // NULL and the string 'NULL' told apart, and answered the same: no finding, no failure.
    assert!(!v["findings"].to_string().contains("note"), "{v:#}");
    // The second client's `USE reports` (a Query) followed: its count is answered, not
    // "No database selected".
    assert_eq!(v["failed_both"], 0, "{v:#}");
    // The write refused, the DDL never run; USE and session statements not replayed.
    assert_eq!(
        (v["refused"].as_u64(), v["never"].as_u64()),
        (Some(3), Some(2))
    );
    let why = |starts: &str| -> String {
        v["refused_list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["statement"].as_str().unwrap().starts_with(starts))
            .unwrap_or_else(|| panic!("{starts} not refused: {v:#}"))["why"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(why("UPDATE events"), "an UPDATE statement");
    assert!(why("CREATE TABLE scratch").starts_with("a CREATE statement: only reads and DML"));
    // third, joined, legacy, now, note, share, count, marker, and the `SELECT DATABASE()` the
    // mariadb client sends before its `USE`.
    assert_eq!(v["compared"], 9, "{v:#}\n{log}");
    assert_eq!(v["database_unknown"], 0);
    // The old server is unchanged: the replay ran read-only and rolled back.
    assert_eq!(
        old.sql("app", "SELECT note FROM events WHERE id = 1"),
        "NULL"
    );
    assert_eq!(
        old.sql("app", "SHOW TABLES LIKE 'scratch'"),
        "",
        "the DDL was not run"
    );

    // For a person: the finding with its database, row, column and values.
    let text = test_in(&d).args(replay(&d, &old, &new, &[])).code(1);
    let out = text.stdout();
    assert!(
        out.contains(&format!(
            "  line {} (database reports): SELECT region, total / 7 AS share FROM totals ORDER BY region",
            line_of(&log, "SELECT region, total / 7")
        )),
        "{out}"
    );
    assert!(
        out.contains("    value at row 1, column share: old 1.4286 | new 1.43"),
        "{out}"
    );
    assert!(
        out.contains("2 of them never run, not even with --allow-writes"),
        "{out}"
    );
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("differ: 4 of 9 compared statements"),
        "{out}"
    );

    // With --allow-writes the UPDATE runs, rolled back on each side; the DDL still does not.
    let allowed = test_in(&d)
        .args(replay(
            &d,
            &old,
            &new,
            &["--json", "--allow-writes", "--no-noise"],
        ))
        .code(1);
    let w: serde_json::Value = serde_json::from_str(allowed.stdout().trim()).unwrap();
    assert_eq!(
        (w["writes"].as_u64(), w["never"].as_u64()),
        (Some(1), Some(2)),
        "{w:#}"
    );
    assert_eq!(w["compared"], 10, "{w:#}");
    assert_eq!(
        old.sql("app", "SELECT note FROM events WHERE id = 1"),
        "NULL"
    );
    assert_eq!(old.sql("app", "SHOW TABLES LIKE 'scratch'"), "");

    // A MariaDB log is not replayed against PostgreSQL, nor a PostgreSQL log against MariaDB.
    d.write(
        "pg.log",
        "2026-12-07 07:00:00.000 UTC [1] LOG:  statement: SELECT 1\n",
    );
    let mismatch = test_in(&d)
        .args([
            "compat",
            "replay-sql",
            "--log",
            "pg.log",
            "--old",
            &old.url("app"),
            "--new",
            &new.url("app"),
        ])
        .code(2);
    assert!(
        mismatch
            .stderr()
            .contains("replay a log against servers of its own kind"),
        "{}",
        mismatch.stderr()
    );
}

/// The `compat-sql` step against a plan database of engine `mariadb`: the step fails naming
/// the differing statements, the journal keeps the typed `compat` result.
#[test]
fn a_compat_sql_step_replays_a_mariadb_general_log() {
    let d = TestDir::new();
    let (old, new, log) = recorded(&d);
    d.write("logs/general.log", &log);
    write_plan(
        &d,
        &format!(
            r#"
[[databases]]
id = "app"
engine = "mariadb"
from = "old"
to = "new"
database = "app"
user = "root"
from_port = 1
to_port = 2

[environments.test.databases.app]
from_port = {}
to_port = {}

[[steps]]
id = "old-queries"
do = "compat-sql"
database = "app"
log = "logs/general.log"
format = "mariadb-general"
"#,
            old.port(),
            new.port()
        ),
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.all().contains(
            "4 of 9 statements answered differently by the two sides of database `app` (1 errors only the new server raises)"
        ),
        "{}",
        o.all()
    );
    let r = crate::compat::journal_compat(&d);
    assert_eq!(r["source"], "sql-log");
    assert_eq!(
        (r["compared"].as_u64(), r["differing"].as_u64()),
        (Some(9), Some(4))
    );
    assert_eq!(r["refused_writes"], 3);
    let line = line_of(&log, "SELECT region, total / 7");
    let share = r["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["endpoint"]
                == format!(
                    "log line {line} (database reports): SELECT region, total / 7 AS share FROM totals ORDER BY region"
                )
        })
        .unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(
        share["differences"][0]["field"],
        "value at row 1, column share"
    );
    let o = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 1, "{}", o.all());
    let md = d.read(".rehost/plan/test/report.md");
    for part in [
        "ANSWERS DIFFER",
        "error on new only (1×)",
        "(database reports)",
        "a CREATE statement: only reads and DML are replayed on MariaDB",
    ] {
        assert!(md.contains(part), "missing {part:?} in the report:\n{md}");
    }
}

/// A hostile general log against one server on both sides, writes allowed: statements that
/// another `sql_mode` or server version reads as two, client commands, files written on the
/// server and a `;` in an executable comment are never run; the table they aim at is still
/// there. A statement of a connection the log does not show beginning runs in the URL's
/// database, counted; one in a database the server lacks fails on both sides alike.
#[test]
fn a_hostile_general_log_runs_nothing_it_should_not() {
    let d = TestDir::new();
    let db = Mariadb::start();
    db.sql("", SCHEMA);
    let outfile = d.path().join("leaked.txt");
    let log = format!(
        "/usr/sbin/mariadbd, Version: 10.11.19-MariaDB (test). started with:
Tcp port: 3306  Unix socket: /run/mysqld/mysqld.sock
Time\t\t    Id Command\tArgument
261207 15:34:24\t     9 Query\tSELECT count(*) AS n FROM events
\t\t    10 Connect\troot@127.0.0.1 on app using TCP/IP
\t\t    10 Query\tSELECT 'a\\'; DROP TABLE events; -- '
\t\t    10 Query\tSELECT 1 /*!99999 # */ ; DROP TABLE events
 */
\t\t    10 Query\tSELECT 1 /*! ; DROP TABLE events */
\t\t    10 Query\t\\! touch {0}
\t\t    10 Query\tSELECT 'x' INTO OUTFILE '{0}'
\t\t    10 Init DB\tno_such_db
\t\t    10 Query\tSELECT 1 AS one
",
        outfile.display()
    );
    d.write("general.log", &log);
    let ran = test_in(&d)
        .args([
            "compat",
            "replay-sql",
            "--log",
            "general.log",
            "--old",
            &db.url("app"),
            "--new",
            &db.url("app"),
            "--allow-writes",
        ])
        .code(2);
    let out = ran.stdout();
    assert_eq!(
        db.sql("app", "SELECT count(*) FROM events"),
        "2",
        "the table is still there: {out}"
    );
    assert!(!outfile.exists(), "no file was written: {out}");
    for part in [
        "refused 4 statements that are never run, not even with --allow-writes:",
        "  line 6 (database app): SELECT 'a\\'; DROP TABLE events; -- ': it reads as more than one statement under another sql_mode",
        "  line 7 (database app): SELECT 1 /*!99999 # */ ; DROP TABLE events */: it reads as more than one statement",
        "  line 10 (database app): \\! touch",
        "  line 11 (database app): SELECT 'x' INTO OUTFILE '",
        ": INTO OUTFILE/DUMPFILE writes a file on the server",
        "1 distinct statements ran on connections that began before the log did",
        "1 log entries not readable as a statement:",
        "  line 9 (database app): SELECT 1 /*! ; DROP TABLE events */ …: a `;` inside an executable comment",
        "1 statements failed with the same error on both servers:",
        "  line 13 (database no_such_db): SELECT 1 AS one: ERROR 1049 (42000): Unknown database 'no_such_db'",
        "trouble: 0 statements could not be replayed, 1 log entries not readable; 2 compared, 0 differ",
    ] {
        assert!(out.contains(part), "missing {part:?}:\n{out}");
    }
}
