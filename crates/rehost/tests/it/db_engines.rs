//! `rehost verify db` for MariaDB and SQLite: two real MariaDB servers on loopback (the copy
//! made with `mariadb-dump | mariadb`) and SQLite files (copied with `.backup` and with
//! `.dump | sqlite3`). Equal first; then each injected difference is found and located by key.
//! `--exercise` reads, changes and adds in transactions that are rolled back, and nothing
//! remains. A `verify-db` step runs in a plan for each engine.

use crate::support::*;
use rehost_test::TestDir;
use rehost_test::mariadb::Mariadb;
use std::path::Path;

fn assert_findings(got: &[String], want: &[String]) {
    for w in want {
        assert!(got.contains(w), "{w} not found in {got:#?}");
    }
    assert_eq!(got.len(), want.len(), "{got:#?}");
}

/// Tables of many types (text with odd characters and emoji, DECIMAL, DOUBLE, JSON, BLOB,
/// DATETIME, TIMESTAMP, ENUM, SET), an AUTO_INCREMENT counter ahead of the rows, a table
/// without a primary key, one with a text key, a foreign key, a view, a trigger, a function.
pub const MARIADB_SCHEMA: &str = r#"
CREATE TABLE kinds (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  odd TEXT,
  amount DECIMAL(12,3),
  ratio DOUBLE,
  doc JSON,
  blob_ BLOB,
  at DATETIME(6),
  ts TIMESTAMP NULL,
  mood ENUM('happy','sad'),
  flags SET('a','b','c'),
  uid CHAR(32) UNIQUE,
  KEY kinds_name (name),
  CONSTRAINT amount_positive CHECK (amount >= 0)
) ENGINE=InnoDB;
INSERT INTO kinds (name, odd, amount, ratio, doc, blob_, at, ts, mood, flags, uid)
SELECT CONCAT('name ', seq), CONCAT('tab\there, newline\nthere, quote '' " back\\slash, ü, 🐘, ', seq),
  seq * 1.125, seq / 7.0, JSON_OBJECT('g', seq, 'list', JSON_ARRAY(seq, 'x')), UNHEX(MD5(seq)),
  '2024-03-01 12:00:00' + INTERVAL seq SECOND, FROM_UNIXTIME(1700000000 + seq),
  IF(seq % 2, 'happy', 'sad'), IF(seq % 3, 'a,c', 'b'), MD5(seq)
FROM seq_1_to_30000;
CREATE TABLE nokey (a INT, b TEXT);
INSERT INTO nokey SELECT seq % 100, CONCAT('row ', seq) FROM seq_1_to_1000;
CREATE TABLE tagged (code VARCHAR(40) PRIMARY KEY, n INT NOT NULL);
INSERT INTO tagged SELECT CONCAT('code-', seq), seq FROM seq_1_to_3000;
CREATE TABLE child (id INT PRIMARY KEY, kind_id BIGINT, note VARCHAR(20),
  CONSTRAINT child_kind FOREIGN KEY (kind_id) REFERENCES kinds(id));
INSERT INTO child SELECT seq, seq, CONCAT('note ', seq) FROM seq_1_to_500;
CREATE VIEW flagged AS SELECT id, name FROM kinds WHERE mood = 'happy';
CREATE TRIGGER tagged_check BEFORE INSERT ON tagged FOR EACH ROW SET NEW.n = ABS(NEW.n);
CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
ALTER TABLE kinds AUTO_INCREMENT = 100000;
CREATE USER verify@'%' IDENTIFIED BY 'not-a-real-secret-4711';
GRANT SELECT, SHOW VIEW, TRIGGER, EXECUTE ON app.* TO verify@'%';
GRANT SELECT ON mysql.proc TO verify@'%';
"#;

/// Old: [`MARIADB_SCHEMA`]; new: `mariadb-dump` of old restored.
fn mariadb_migrated() -> (Mariadb, Mariadb) {
    let (old, new) = std::thread::scope(|s| {
        let o = s.spawn(Mariadb::start);
        let n = Mariadb::start();
        (o.join().expect("start the old server"), n)
    });
    for db in [&old, &new] {
        db.sql("", "CREATE DATABASE app CHARACTER SET utf8mb4");
    }
    old.sql("app", MARIADB_SCHEMA);
    new.sql(
        "",
        "CREATE USER verify@'%' IDENTIFIED BY 'not-a-real-secret-4711'; GRANT SELECT, SHOW VIEW, TRIGGER, EXECUTE ON app.* TO verify@'%';
GRANT SELECT ON mysql.proc TO verify@'%';",
    );
    old.dump_to("app", &new);
    (old, new)
}

#[test]
fn mariadb_dump_and_restore_verifies_equal_and_each_injected_difference_is_located() {
    let (old, new) = mariadb_migrated();
    let d = TestDir::new();
    // A password in the URL goes to the client's environment: never printed.
    let new_url = format!(
        "mysql://verify:not-a-real-secret-4711@127.0.0.1:{}/app",
        new.port()
    );
    let o = rehost(&d, &["verify", "db", &old.url("app"), &new_url]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout
            .contains("equal: 4 tables (34500 rows), 1 sequences"),
        "{}",
        o.all()
    );
    assert!(o.stdout.contains("(MariaDB 10."), "{}", o.stdout);
    assert!(!o.all().contains("not-a-real-secret"), "{}", o.all());

    new.sql(
        "app",
        r#"
        DELETE FROM kinds WHERE id = 4242;
        UPDATE kinds SET name = 'renamed' WHERE id = 10;
        UPDATE kinds SET odd = CONCAT(odd, ' ') WHERE id = 11;
        UPDATE kinds SET amount = amount + 0.001 WHERE id = 12;
        UPDATE kinds SET ratio = ratio * (1 + 1e-15) WHERE id = 13;
        UPDATE kinds SET doc = JSON_OBJECT('list', JSON_ARRAY(14, 'x'), 'g', 14) WHERE id = 14;
        UPDATE kinds SET blob_ = CONCAT(blob_, 0x00) WHERE id = 16;
        UPDATE kinds SET at = at + INTERVAL 1 MICROSECOND WHERE id = 17;
        UPDATE kinds SET ts = ts + INTERVAL 1 SECOND WHERE id = 18;
        UPDATE kinds SET mood = IF(mood = 'happy', 'sad', 'happy') WHERE id = 19;
        UPDATE kinds SET flags = 'a' WHERE id = 20;
        UPDATE kinds SET uid = MD5('other') WHERE id = 21;
        UPDATE kinds SET odd = NULL WHERE id = 22;
        INSERT INTO tagged VALUES ('zz-extra', 1);
        DELETE FROM tagged WHERE code = 'code-77';
        DELETE FROM nokey LIMIT 1;
        ALTER TABLE child MODIFY note TEXT;
        DROP INDEX kinds_name ON kinds;
        ALTER TABLE kinds DROP CONSTRAINT amount_positive;
        ALTER TABLE kinds AUTO_INCREMENT = 1;
        "#,
    );
    let o = rehost(
        &d,
        &["verify", "db", &old.url("app"), &new.url("app"), "--json"],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    let got = db_findings(&db_json(&o));
    let mut want: Vec<String> = vec![
        "changed column child.note".into(),
        "missing constraint kinds.amount_positive".into(),
        "missing index kinds.kinds_name".into(),
        // Left at the rows' maximum + 1 (InnoDB does not go lower), not at the original's 100000.
        "sequence sequence kinds.id".into(),
        "row-count table kinds".into(),
        "row-missing row kinds 4242".into(),
        "row-count table nokey".into(),
        "content table nokey".into(),
        "row-missing row tagged code-77".into(),
        "row-extra row tagged zz-extra".into(),
    ];
    for id in [10, 11, 12, 13, 14, 16, 17, 18, 19, 20, 21, 22] {
        want.push(format!("row-changed row kinds {id}"));
    }
    assert_findings(&got, &want);

    // The human report names the rows; the sequence shows both values.
    let o = rehost(&d, &["verify", "db", &old.url("app"), &new.url("app")]);
    assert_eq!(o.code, 1);
    for line in [
        "row-missing  row kinds key (id)=(4242)",
        "row-extra    row tagged key (code)=(zz-extra)",
        "sequence     sequence kinds.id: old 100000 | new 30001",
    ] {
        assert!(o.stdout.contains(line), "{line}\n{}", o.stdout);
    }

    // Trouble: an unreachable server is exit 2, the password redacted.
    let o = rehost(
        &d,
        &[
            "verify",
            "db",
            &old.url("app"),
            "mysql://u:hunter2@127.0.0.1:1/app",
        ],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(!o.all().contains("hunter2"), "{}", o.all());
    assert!(
        o.stderr
            .contains("failed to verify mysql://u:***@127.0.0.1:1/app"),
        "{}",
        o.stderr
    );
    // Two engines are not compared.
    let o = rehost(
        &d,
        &["verify", "db", &old.url("app"), "sqlite:/nonexistent"],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("one engine"), "{}", o.stderr);

    // The row text tells values apart that a plain concatenation would not: ('a','bc') and
    // ('ab','c'); NULL, '', 'N' and 'NULL'; a NULL moved to the other column.
    let edge = "CREATE TABLE edge (id INT PRIMARY KEY, x VARCHAR(10), y TEXT, n INT);";
    old.sql(
        "app",
        &format!(
            "{edge} INSERT INTO edge VALUES (1, 'a', 'bc', 1), (2, NULL, '', 2), (3, NULL, 'q', 3), \
             (4, NULL, 'q', 4), (5, '', 'q', 5), (6, 'q', 'q', NULL), (7, NULL, NULL, NULL), \
             (8, CONCAT('a', CHAR(31), 'b'), 'c', 8);"
        ),
    );
    new.sql(
        "app",
        &format!(
            "{edge} INSERT INTO edge VALUES (1, 'ab', 'c', 1), (2, '', NULL, 2), (3, 'N', 'q', 3), \
             (4, 'NULL', 'q', 4), (5, NULL, 'q', 5), (6, 'q', 'q', 0), (7, NULL, NULL, NULL), \
             (8, 'a', CONCAT('b', CHAR(31), 'c'), 8);"
        ),
    );
    let o = rehost(
        &d,
        &[
            "verify",
            "db",
            &old.url("app"),
            &new.url("app"),
            "--json",
            "--table",
            "edge",
        ],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    let want: Vec<String> = [1, 2, 3, 4, 5, 6, 8]
        .iter()
        .map(|id| format!("row-changed row edge {id}"))
        .collect();
    // (The schema findings of the injections above are still there: only edge's rows count.)
    let got: Vec<String> = db_findings(&db_json(&o))
        .into_iter()
        .filter(|f| f.contains(" edge"))
        .collect();
    assert_findings(&got, &want);
}

#[test]
fn mariadb_exercise_reads_changes_and_adds_and_leaves_nothing_behind() {
    let (old, new) = mariadb_migrated();
    let d = TestDir::new();
    let o = rehost(&d, &["verify", "db", &new.url("app"), "--exercise"]);
    assert_eq!(o.code, 0, "{}", o.all());
    for line in [
        "ok      read through index kinds.PRIMARY: 1000 rows read, through the index",
        "ok      read through index kinds.kinds_name: 1000 rows read, through the index",
        "ok      read through index child.child_kind: 500 rows read",
        "ok      update column name: 1 row changed",
        "ok      insert a new row: 1 row inserted (from an existing row",
        "table nokey",
    ] {
        assert!(o.stdout.contains(line), "{line}\n{}", o.stdout);
    }
    assert!(!o.stdout.contains("FAILED"), "{}", o.stdout);
    // Nothing remains: contents, schema and the AUTO_INCREMENT counters as before.
    let o = rehost(&d, &["verify", "db", &old.url("app"), &new.url("app")]);
    assert_eq!(o.code, 0, "{}", o.all());

    // A failure is reported with the server's exact error, and the run goes on.
    new.sql(
        "app",
        "CREATE TABLE strict (id INT PRIMARY KEY, n INT, CONSTRAINT small CHECK (n < 10)); INSERT INTO strict VALUES (1, 9);",
    );
    let o = rehost(
        &d,
        &[
            "verify",
            "db",
            &new.url("app"),
            "--exercise",
            "--table",
            "strict",
            "--json",
        ],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    let doc = db_json(&o);
    let ops = doc["tables"][0]["operations"].as_array().unwrap().clone();
    let update = ops.iter().find(|o| o["what"] == "update column n").unwrap();
    assert_eq!(update["status"], "failed", "{ops:#?}");
    assert_eq!(
        update["detail"],
        "ERROR 4025 (23000): CONSTRAINT `small` failed for `app`.`strict`"
    );
    let insert = ops
        .iter()
        .find(|o| o["what"] == "insert a new row")
        .unwrap();
    assert_eq!(insert["status"], "ok", "{ops:#?}");
    assert_eq!(new.sql("app", "SELECT id, n FROM strict"), "1\t9");
}

/// Issue 18: on MariaDB a rollback does not undo a change to a MyISAM, Aria, MEMORY, CSV or
/// ARCHIVE table, nor a row a trigger writes into one; the exercise used to change them all
/// and still say "every change rolled back". Now it only reads them (and the InnoDB table
/// whose trigger writes into a MyISAM log), names each and why, and proves with a checksum
/// of the whole database before and after that nothing was left behind.
#[test]
fn mariadb_exercise_changes_no_table_a_rollback_cannot_undo_and_proves_it() {
    let db = Mariadb::start();
    db.sql("", "INSTALL SONAME 'ha_archive'; CREATE DATABASE app");
    db.sql(
        "app",
        r#"
        CREATE TABLE my (id INT PRIMARY KEY, n INT) ENGINE=MyISAM;
        INSERT INTO my SELECT seq, seq FROM seq_1_to_100;
        CREATE TABLE ar (id INT PRIMARY KEY, n INT) ENGINE=Aria;
        INSERT INTO ar SELECT seq, seq FROM seq_1_to_100;
        CREATE TABLE mem (id INT PRIMARY KEY, n INT) ENGINE=MEMORY;
        INSERT INTO mem SELECT seq, seq FROM seq_1_to_100;
        CREATE TABLE cs (id INT NOT NULL, n INT NOT NULL) ENGINE=CSV;
        INSERT INTO cs SELECT seq, seq FROM seq_1_to_100;
        CREATE TABLE arc (id INT, n INT) ENGINE=ARCHIVE;
        INSERT INTO arc SELECT seq, seq FROM seq_1_to_100;
        CREATE TABLE audit_log (at INT, what VARCHAR(20)) ENGINE=MyISAM;
        CREATE TABLE orders (id INT PRIMARY KEY, n INT) ENGINE=InnoDB;
        INSERT INTO orders SELECT seq, seq FROM seq_1_to_100;
        CREATE TRIGGER orders_log AFTER UPDATE ON orders FOR EACH ROW
          INSERT INTO audit_log VALUES (NEW.id, 'update');
        CREATE TABLE plain (id INT AUTO_INCREMENT PRIMARY KEY, n INT) ENGINE=InnoDB;
        INSERT INTO plain (n) SELECT seq FROM seq_1_to_100;
        "#,
    );
    let snapshot = "SELECT CONCAT_WS(' ', (SELECT COUNT(*) FROM my), (SELECT SUM(n) FROM my), \
        (SELECT COUNT(*) FROM ar), (SELECT SUM(n) FROM ar), (SELECT COUNT(*) FROM mem), \
        (SELECT SUM(n) FROM mem), (SELECT COUNT(*) FROM cs), (SELECT SUM(n) FROM cs), \
        (SELECT COUNT(*) FROM arc), (SELECT COUNT(*) FROM audit_log), (SELECT COUNT(*) FROM orders), \
        (SELECT SUM(n) FROM orders), (SELECT COUNT(*) FROM plain));
        CHECKSUM TABLE my, ar, mem, cs, arc, audit_log, orders, plain";
    let before = db.sql("app", snapshot);
    let d = TestDir::new();
    let o = rehost(&d, &["verify", "db", &db.url("app"), "--exercise"]);
    // Each of these tables kept what the exercise changed before the fix.
    assert_eq!(db.sql("app", snapshot), before, "{}", o.stdout);
    for (table, engine) in [
        ("my", "MyISAM"),
        ("ar", "Aria"),
        ("mem", "MEMORY"),
        ("cs", "CSV"),
        ("arc", "ARCHIVE"),
        ("audit_log", "MyISAM"),
    ] {
        let section = o
            .stdout
            .split_once(&format!("table {table}\n"))
            .map(|(_, rest)| rest.split("\ntable ").next().unwrap_or_default())
            .unwrap_or_else(|| panic!("no table {table}: {}", o.stdout));
        for op in ["update", "insert a new row"] {
            let line = format!(
                "  skipped {op}: the table's engine, {engine}, has no transactions: a change would outlast the rollback; only read"
            );
            assert!(section.contains(&line), "{line}\n{}", o.stdout);
        }
    }
    assert!(
        o.stdout.contains(
            "skipped insert a new row: its trigger orders_log reaches the MyISAM table audit_log, which has no transactions"
        ),
        "{}",
        o.stdout
    );
    // The InnoDB table without such a trigger is changed and added to, and rolled back.
    assert!(
        o.stdout
            .contains("table plain\n  ok      read through index plain.PRIMARY: 100 rows read"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("ok      update column n: 1 row changed"),
        "{}",
        o.stdout
    );
    // What "unchanged" rests on is said, and it holds.
    assert!(
        o.stdout.contains("unchanged: every table's row count and content checksum, every sequence's value and the schema of the whole database, taken before and after the exercise and compared (8 tables, 700 rows, 1 sequences)"),
        "{}",
        o.stdout
    );
    assert_eq!(o.code, 0, "{}", o.all());

    let o = rehost(
        &d,
        &["verify", "db", &db.url("app"), "--exercise", "--json"],
    );
    let doc = db_json(&o);
    let u = &doc["unchanged"];
    assert_eq!(u["equal"], true, "{doc:#}");
    assert_eq!(u["before"], u["after"], "{doc:#}");
    assert_eq!(u["before"].as_str().map(str::len), Some(64), "{doc:#}");
    assert!(
        u["check"].as_str().unwrap().contains("content checksum"),
        "{doc:#}"
    );
    assert_eq!(db.sql("app", snapshot), before);
}

/// A `verify-db` step with engine mariadb: the client runs on the plan's hosts (local here),
/// the password read there from its file and never shown; a deleted row fails the gate.
#[test]
fn verify_db_step_with_mariadb() {
    let (old, new) = mariadb_migrated();
    let d = TestDir::new();
    let pwfile = d.write("pw", "not-a-real-secret-4711\n");
    let body = verify_db_body("mariadb", "verify", (old.port(), new.port()), &pwfile);
    write_plan(&d, &body);
    run_verified_equal_without_secret(&d);

    new.sql("app", "DELETE FROM child WHERE id = 77");
    let d2 = TestDir::new();
    d2.write("pw", "not-a-real-secret-4711\n");
    write_plan(
        &d2,
        &body.replace(
            &pwfile.display().to_string(),
            &d2.join("pw").display().to_string(),
        ),
    );
    let o = rehost(&d2, &["run", "plan.toml"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.all().contains("row-missing  row child key (id)=(77)"),
        "{}",
        o.all()
    );
    assert!(
        o.stderr.contains("database `app` on new differs from old"),
        "{}",
        o.stderr
    );
}

/// Issue 18: `exercise = true` with MariaDB, as the application's login with its own password
/// file (not the verifying login): it may read, change and add but not read triggers, so the
/// table with one is only read; the outcome is in the journal, and neither password appears
/// anywhere.
#[test]
fn verify_db_step_with_mariadb_exercises_as_the_application_login() {
    let (old, new) = mariadb_migrated();
    new.sql(
        "",
        "CREATE USER app@'%' IDENTIFIED BY 'app-secret-0815'; GRANT SELECT, INSERT, UPDATE ON app.* TO app@'%';",
    );
    let d = TestDir::new();
    let pwfile = d.write("pw", "not-a-real-secret-4711\n");
    let app_pw = d.write("app.pw", "app-secret-0815\n");
    let body = format!(
        "{}exercise = true\nexercise_user = \"app\"\nexercise_password_file = \"{}\"\n",
        verify_db_body("mariadb", "verify", (old.port(), new.port()), &pwfile),
        app_pw.display()
    );
    write_plan(&d, &body);
    let before = new.sql("app", "CHECKSUM TABLE kinds, nokey, tagged, child");
    let o = rehost(&d, &["run", "plan.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("exercised as app: 4 tables, ")
            && o.stdout.contains(
                "0 failed, 2 skipped; the database unchanged by checksum before and after"
            ),
        "{}",
        o.stdout
    );
    let journal = journal_text(&d);
    assert!(journal.contains("\"login\":\"app\""), "{journal}");
    // Without the TRIGGER privilege the login sees that `tagged` has a trigger, not what it
    // does: the table is read, not changed.
    assert!(
        journal.contains("\"table\":\"tagged\",\"operation\":\"insert a new row\",\"status\":\"skipped\",\"detail\":\"its trigger tagged_check cannot be read by this login"),
        "{journal}"
    );
    assert!(journal.contains("\"unchanged\":true"), "{journal}");
    assert!(journal.contains("mysql:///app?"), "{journal}");
    for secret in ["not-a-real-secret", "app-secret-0815"] {
        assert!(!o.all().contains(secret), "{}", o.all());
        assert!(!journal.contains(secret), "{journal}");
    }
    assert_eq!(
        new.sql("app", "CHECKSUM TABLE kinds, nokey, tagged, child"),
        before
    );
}

fn journal_text(d: &TestDir) -> String {
    std::fs::read_dir(d.join(".rehost/plan/production"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect()
}

// ---- SQLite ----

fn sqlite3() -> &'static str {
    for p in ["/usr/bin/sqlite3", "/usr/local/bin/sqlite3"] {
        if Path::new(p).is_file() {
            return p;
        }
    }
    panic!(
        "`sqlite3` is not installed; run `bash .ci/install-deps` (as root; it installs sqlite3) to install what the tests need"
    )
}

/// Runs `sqlite3 FILE` with `script` on standard input (or `args` after the file), failing the
/// test on error; returns its output.
fn sqlite(file: &Path, args: &[&str], script: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(sqlite3())
        .arg("-bail")
        .arg(file)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sqlite3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write the script");
    let out = child.wait_with_output().expect("wait for sqlite3");
    assert!(
        out.status.success(),
        "sqlite3 {} failed: {}\n{script}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

/// Tables of many types (text with odd characters, integers, reals, numerics, blobs, dates as
/// text), an AUTOINCREMENT table, a WITHOUT ROWID table with a text key, a table without a
/// primary key, a foreign key, a partial index, a view, a trigger; tens of thousands of rows.
const SQLITE_SCHEMA: &str = r#"
PRAGMA user_version = 7;
CREATE TABLE kinds (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  odd TEXT,
  amount NUMERIC CONSTRAINT amount_positive CHECK (amount >= 0),
  ratio REAL,
  blob BLOB,
  at TEXT DEFAULT CURRENT_TIMESTAMP,
  flag INTEGER,
  uid TEXT UNIQUE
);
CREATE INDEX kinds_name ON kinds (name);
CREATE INDEX kinds_flagged ON kinds (name) WHERE flag = 1;
WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 30000)
INSERT INTO kinds (name, odd, amount, ratio, blob, at, flag, uid)
SELECT 'name ' || x, 'tab' || char(9) || 'here, newline' || char(10) || 'there, quote '' " back\slash, ü, 🐘, ' || x,
       x * 1.125, x / 7.0, randomblob(16), datetime(1700000000 + x * 3601, 'unixepoch'), x % 2,
       lower(hex(randomblob(16)))
FROM g;
CREATE TABLE nokey (a INTEGER, b TEXT);
WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 1000)
INSERT INTO nokey SELECT x % 100, 'row ' || x FROM g;
CREATE TABLE tagged (code TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 3000)
INSERT INTO tagged SELECT 'code-' || x, x FROM g;
CREATE TABLE child (id INTEGER PRIMARY KEY, kind_id INTEGER REFERENCES kinds(id) ON DELETE CASCADE, note TEXT);
INSERT INTO child SELECT id, id, 'note ' || id FROM kinds WHERE id <= 500;
CREATE VIEW flagged AS SELECT id, name FROM kinds WHERE flag = 1;
CREATE TRIGGER tagged_abs BEFORE INSERT ON tagged BEGIN SELECT RAISE(ABORT, 'negative') WHERE NEW.n < 0; END;
"#;

#[test]
fn sqlite_copies_verify_equal_and_each_injected_difference_is_located() {
    let d = TestDir::new();
    let old = d.join("old.db");
    sqlite(&old, &[], SQLITE_SCHEMA);
    let backup = d.join("backup.db");
    sqlite(&old, &[&format!(".backup '{}'", backup.display())], "");
    let dumped = d.join("dumped.db");
    let dump = sqlite(&old, &[".dump"], "");
    sqlite(&dumped, &[], &dump);
    let old_url = format!("sqlite:{}", old.display());
    // `.dump` does not carry `PRAGMA user_version` (where applications keep their schema
    // version): found, and nothing else.
    let o = rehost(
        &d,
        &[
            "verify",
            "db",
            &old_url,
            &format!("sqlite:{}", dumped.display()),
            "--json",
        ],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    assert_findings(
        &db_findings(&db_json(&o)),
        &["changed database user_version".to_owned()],
    );
    sqlite(&dumped, &[], "PRAGMA user_version = 7;");
    for copy in [&backup, &dumped] {
        let o = rehost(
            &d,
            &[
                "verify",
                "db",
                &old_url,
                &format!("sqlite:{}", copy.display()),
            ],
        );
        assert_eq!(o.code, 0, "{}", o.all());
        assert!(
            o.stdout
                .contains("equal: 4 tables (34500 rows), 1 sequences"),
            "{}",
            o.all()
        );
        assert!(o.stdout.contains("(SQLite 3."), "{}", o.stdout);
    }
    // Read-only: verifying changes nothing, not even the file's bytes.
    let before = std::fs::read(&old).unwrap();

    sqlite(
        &dumped,
        &[],
        r#"
        DELETE FROM kinds WHERE id = 4242;
        UPDATE kinds SET name = 'renamed' WHERE id = 10;
        UPDATE kinds SET odd = odd || char(160) WHERE id = 11;
        UPDATE kinds SET amount = amount + 0.001 WHERE id = 12;
        UPDATE kinds SET ratio = ratio * (1 + 1e-15) WHERE id = 13;
        UPDATE kinds SET blob = blob || x'00' WHERE id = 14;
        UPDATE kinds SET at = datetime(at, '+1 second') WHERE id = 15;
        UPDATE kinds SET flag = flag + 2 WHERE id = 16;
        UPDATE kinds SET uid = 'other' WHERE id = 17;
        UPDATE kinds SET odd = NULL WHERE id = 18;
        UPDATE kinds SET amount = CAST(amount AS REAL) + 0.5 WHERE id = 19;
        INSERT INTO tagged VALUES ('zz-extra', 1);
        DELETE FROM tagged WHERE code = 'code-77';
        DELETE FROM nokey WHERE rowid = 5;
        DROP INDEX kinds_name;
        UPDATE sqlite_sequence SET seq = 100 WHERE name = 'kinds';
        PRAGMA user_version = 6;
        "#,
    );
    let dumped_url = format!("sqlite:{}", dumped.display());
    let o = rehost(&d, &["verify", "db", &old_url, &dumped_url, "--json"]);
    assert_eq!(o.code, 1, "{}", o.all());
    let got = db_findings(&db_json(&o));
    let mut want: Vec<String> = vec![
        "changed database user_version".into(),
        "missing index kinds_name".into(),
        "sequence sequence kinds".into(),
        "row-count table kinds".into(),
        "row-missing row kinds 4242".into(),
        "row-count table nokey".into(),
        "content table nokey".into(),
        "row-missing row tagged code-77".into(),
        "row-extra row tagged zz-extra".into(),
    ];
    for id in [10, 11, 12, 13, 14, 15, 16, 17, 18, 19] {
        want.push(format!("row-changed row kinds {id}"));
    }
    assert_findings(&got, &want);
    let o = rehost(&d, &["verify", "db", &old_url, &dumped_url]);
    assert!(
        o.stdout.contains("row-missing  row kinds key (id)=(4242)"),
        "{}",
        o.stdout
    );

    // A dropped constraint (SQLite rebuilds the table for it): the table's definition differs.
    sqlite(
        &backup,
        &[],
        r#"
        PRAGMA foreign_keys = off;
        DROP VIEW flagged;
        CREATE TABLE kinds2 (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, odd TEXT,
          amount NUMERIC, ratio REAL, blob BLOB, at TEXT DEFAULT CURRENT_TIMESTAMP, flag INTEGER, uid TEXT UNIQUE);
        INSERT INTO kinds2 SELECT * FROM kinds;
        DROP TABLE kinds;
        ALTER TABLE kinds2 RENAME TO kinds;
        CREATE INDEX kinds_name ON kinds (name);
        CREATE INDEX kinds_flagged ON kinds (name) WHERE flag = 1;
        CREATE VIEW flagged AS SELECT id, name FROM kinds WHERE flag = 1;
        "#,
    );
    let o = rehost(
        &d,
        &[
            "verify",
            "db",
            &old_url,
            &format!("sqlite:{}", backup.display()),
            "--json",
        ],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    let doc = db_json(&o);
    let got = db_findings(&doc);
    assert!(got.contains(&"changed table kinds".to_owned()), "{got:#?}");
    let changed = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["class"] == "changed" && f["kind"] == "table")
        .unwrap();
    assert!(
        changed["old"].as_str().unwrap().contains("amount_positive")
            && !changed["new"].as_str().unwrap().contains("amount_positive"),
        "{changed:#}"
    );
    assert_eq!(
        std::fs::read(&old).unwrap(),
        before,
        "the original was written to"
    );

    // Trouble: a file that is not there is exit 2 and not created.
    let o = rehost(
        &d,
        &[
            "verify",
            "db",
            &old_url,
            &format!("sqlite:{}", d.join("nope.db").display()),
        ],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(!d.join("nope.db").exists());
}

#[test]
fn sqlite_exercise_reads_changes_and_adds_and_leaves_nothing_behind() {
    let d = TestDir::new();
    let old = d.join("old.db");
    sqlite(&old, &[], SQLITE_SCHEMA);
    let new = d.join("new.db");
    sqlite(&old, &[&format!(".backup '{}'", new.display())], "");
    let (old_url, new_url) = (
        format!("sqlite:{}", old.display()),
        format!("sqlite:{}", new.display()),
    );
    let o = rehost(&d, &["verify", "db", &new_url, "--exercise"]);
    assert_eq!(o.code, 0, "{}", o.all());
    for line in [
        "ok      read through index kinds_name: 1000 rows read, through the index",
        "ok      read through index kinds_flagged: 1000 rows read, through the index",
        "ok      read through index sqlite_autoindex_kinds_1: 1000 rows read",
        "ok      read through the primary key: 1000 rows read, in key order",
        "ok      update column name: 1 row changed",
        "ok      insert a new row: 1 row inserted (from an existing row",
        "table tagged",
        "table nokey",
    ] {
        assert!(o.stdout.contains(line), "{line}\n{}", o.stdout);
    }
    assert!(!o.stdout.contains("FAILED"), "{}", o.stdout);
    let o = rehost(&d, &["verify", "db", &old_url, &new_url]);
    assert_eq!(o.code, 0, "{}", o.all());

    // A failure is reported with SQLite's exact error, and the data stays as it was.
    sqlite(
        &new,
        &[],
        "CREATE TABLE strict (id INTEGER PRIMARY KEY, n INTEGER CHECK (n < 10)); INSERT INTO strict VALUES (1, 9);",
    );
    let o = rehost(
        &d,
        &[
            "verify",
            "db",
            &new_url,
            "--exercise",
            "--table",
            "strict",
            "--json",
        ],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    let doc = db_json(&o);
    let ops = doc["tables"][0]["operations"].as_array().unwrap().clone();
    let update = ops.iter().find(|o| o["what"] == "update column n").unwrap();
    assert_eq!(update["status"], "failed", "{ops:#?}");
    assert!(
        update["detail"]
            .as_str()
            .unwrap()
            .contains("CHECK constraint failed: n < 10"),
        "{update:#}"
    );
    assert_eq!(sqlite(&new, &[], "SELECT id, n FROM strict;"), "1|9");
}

/// A `verify-db` step with engine sqlite, each file on its host (local hosts here): equal
/// after `.dump | sqlite3`; a deleted row fails the gate, named by its key.
#[test]
fn verify_db_step_with_sqlite() {
    let d = TestDir::new();
    let old = d.join("old.db");
    sqlite(&old, &[], SQLITE_SCHEMA);
    let new = d.join("new.db");
    let dump = sqlite(&old, &[".dump"], "");
    sqlite(&new, &[], &dump);
    // `.dump` leaves out the user_version (see above).
    sqlite(&new, &[], "PRAGMA user_version = 7;");
    let body = format!(
        r#"
[[databases]]
id = "app"
engine = "sqlite"
from = "old"
to = "new"
from_database = "{}"
to_database = "{}"

[[steps]]
id = "verify-app"
do = "verify-db"
database = "app"
"#,
        old.display(),
        new.display()
    );
    write_plan(&d, &body);
    let o = rehost(&d, &["run", "plan.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout
            .contains("database `app` verified on new: equal: 4 tables (34500 rows)"),
        "{}",
        o.stdout
    );
    let journal = journal_text(&d);
    assert!(journal.contains("\"equal\":true"), "{journal}");
    assert!(journal.contains("\"database\":\"app\""), "{journal}");

    sqlite(&new, &[], "DELETE FROM tagged WHERE code = 'code-5';");
    let d2 = TestDir::new();
    write_plan(&d2, &body);
    let o = rehost(&d2, &["run", "plan.toml"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.all()
            .contains("row-missing  row tagged key (code)=(code-5)"),
        "{}",
        o.all()
    );
    assert!(
        o.stderr.contains("database `app` on new differs from old"),
        "{}",
        o.stderr
    );
}

/// A `verify-db` step with engine mariadb between two ssh hosts, each server listening on
/// loopback only: the `mariadb` client runs through each host's agent, the password read from
/// a file there; `HOST:mysql://…` on the command line goes the same way.
#[test]
fn verify_db_mariadb_between_two_ssh_hosts() {
    let (old, new) = mariadb_migrated();
    let (so, sn) = (
        rehost_test::sshd::Sshd::start(),
        rehost_test::sshd::Sshd::start(),
    );
    let d = TestDir::new();
    let pwfile = d.write("pw", "not-a-real-secret-4711\n");
    d.write(
        "plan.toml",
        ssh_plan(
            &so,
            &sn,
            &verify_db_body("mariadb", "verify", (old.port(), new.port()), &pwfile),
        ),
    );
    run_verified_equal_without_secret(&d);

    new.sql("app", "UPDATE tagged SET n = n + 1 WHERE code = 'code-9'");
    let config = sn.ssh_config().display().to_string();
    let remote = format!("{}:{}", sn.destination(), new.url("app"));
    let o = rehost(
        &d,
        &[
            "verify",
            "db",
            &old.url("app"),
            &remote,
            "--ssh-config",
            &config,
        ],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    assert!(
        o.stdout
            .contains(&format!("new: {}:mysql://", sn.destination())),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("row-changed  row tagged key (code)=(code-9)"),
        "{}",
        o.stdout
    );
}

/// Runs the plan in `d`: its `verify-db` step finds the MariaDB copy equal, and the password
/// (`not-a-real-secret…`) appears neither in the output nor in the journal.
fn run_verified_equal_without_secret(d: &TestDir) {
    let o = rehost(d, &["run", "plan.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout
            .contains("database `app` verified on new: equal: 4 tables (34500 rows)"),
        "{}",
        o.stdout
    );
    assert!(!o.all().contains("not-a-real-secret"), "{}", o.all());
    let journal = journal_text(d);
    assert!(journal.contains("\"equal\":true"), "{journal}");
    assert!(!journal.contains("not-a-real-secret"), "{journal}");
}
