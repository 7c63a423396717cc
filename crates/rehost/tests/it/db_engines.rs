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

/// What a MariaDB verification of [`MARIADB_SCHEMA`] does not compare, as root on both sides:
/// the engine's list, then the table without a key.
const MARIADB_NOT_COMPARED: &[&str] = &[
    "events (CREATE EVENT) and SEQUENCE objects (CREATE SEQUENCE)",
    "history rows of system-versioned tables (their current rows are compared)",
    "table options other than the engine and collation (ROW_FORMAT, partitioning), and comments",
    "the definer of each view, routine and trigger (the definer's account is compared)",
    "accounts that no grant on this database, definer or role names (root and others with global privileges only)",
    "passwords and their hashes (never read), proxy privileges (GRANT PROXY), and global privileges mysql.user has no column for (those of MariaDB 10.5 and later: BINLOG ADMIN, SLAVE MONITOR …)",
    "the server's configuration (my.cnf)",
    "row by row, tables without a usable primary key (counted and summed: a difference is found, not located to rows): nokey",
];

/// Accounts, roles and grants of the database, made on `old`: a role holding the grants, a
/// login granted it as its default role, a reporting login with table, column and routine
/// grants from a subnet, a login through the unix socket, and an account this database does
/// not name.
const MARIADB_ACCOUNTS: &str = r#"
CREATE ROLE app_rw;
GRANT SELECT, INSERT, UPDATE, DELETE ON app.* TO app_rw;
CREATE USER web@'%' IDENTIFIED BY 'web-secret-0815';
GRANT app_rw TO web@'%';
SET DEFAULT ROLE app_rw FOR web@'%';
CREATE USER report@'10.0.0.%' IDENTIFIED BY 'report-secret-0815' WITH MAX_QUERIES_PER_HOUR 100;
GRANT SELECT ON app.kinds TO report@'10.0.0.%';
GRANT SELECT (code) ON app.tagged TO report@'10.0.0.%';
GRANT EXECUTE ON FUNCTION app.twice TO report@'10.0.0.%';
CREATE USER sock@localhost IDENTIFIED VIA unix_socket;
GRANT SELECT ON app.* TO sock@localhost WITH GRANT OPTION;
CREATE USER elsewhere@'%' IDENTIFIED BY 'elsewhere-secret-0815';
"#;

/// Carries accounts from `old` to `new` as an administrator would: the role created, each
/// account's `SHOW CREATE USER` and `SHOW GRANTS` replayed.
fn carry_accounts(old: &Mariadb, new: &Mariadb, roles: &[&str], accounts: &[&str]) {
    let mut script = String::new();
    for r in roles {
        script.push_str(&format!("CREATE ROLE {r};\n"));
    }
    for a in accounts {
        script.push_str(&old.sql("", &format!("SHOW CREATE USER {a}")));
        script.push_str(";\n");
    }
    for a in roles.iter().chain(accounts) {
        for line in old.sql("", &format!("SHOW GRANTS FOR {a}")).lines() {
            script.push_str(line);
            script.push_str(";\n");
        }
    }
    new.sql("", &script);
}

/// Accounts, roles and grants are compared on MariaDB (issue 18: they were not, and the
/// verdict read "complete and correct"): carried whole they are equal, and no password or hash
/// appears; then a missing account, a missing grant, another authentication plugin, a lost
/// default role and a grant moved to a database of another name are each found by name, and
/// nothing else.
#[test]
fn mariadb_accounts_roles_and_grants_are_compared() {
    let (old, new) = mariadb_migrated();
    old.sql("", MARIADB_ACCOUNTS);
    carry_accounts(
        &old,
        &new,
        &["app_rw"],
        &["web@'%'", "report@'10.0.0.%'", "sock@localhost"],
    );
    let d = TestDir::new();
    let o = rehost(
        &d,
        &["verify", "db", &old.url("app"), &new.url("app"), "--json"],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    let hash = old.sql(
        "",
        "SELECT authentication_string FROM mysql.user WHERE user = 'web'",
    );
    assert!(hash.starts_with('*'), "{hash}");
    for secret in [hash.as_str(), &hash[1..], "web-secret", "report-secret"] {
        assert!(!o.all().contains(secret), "{}", o.all());
    }
    // The accounts the database names are compared (with root, the definer of its view,
    // trigger and function); `elsewhere`, on the old server only, is not.
    let doc = db_json(&o);
    assert_eq!(doc["equal"], true);
    let human = rehost(&d, &["verify", "db", &old.url("app"), &new.url("app")]);
    assert_eq!(human.code, 0, "{}", human.all());

    new.sql(
        "",
        "DROP USER report@'10.0.0.%';
         REVOKE INSERT ON app.* FROM app_rw;
         ALTER USER sock@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('sock-secret-0815');
         SET DEFAULT ROLE NONE FOR web@'%';
         REVOKE SELECT, GRANT OPTION ON app.* FROM sock@localhost;
         GRANT SELECT ON app_old.* TO sock@localhost WITH GRANT OPTION;",
    );
    let o = rehost(
        &d,
        &["verify", "db", &old.url("app"), &new.url("app"), "--json"],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    let doc = db_json(&o);
    let got = db_findings(&doc);
    assert_findings(
        &got,
        &[
            "missing account `report`@`10.0.0.%`".into(),
            "missing privileges `report`@`10.0.0.%` on `app`.`kinds`".into(),
            "missing privileges `report`@`10.0.0.%` on `app`.`tagged`".into(),
            "missing privileges `report`@`10.0.0.%` on FUNCTION `app`.`twice`".into(),
            "changed privileges `app_rw` on `app`.*".into(),
            "changed account `sock`@`localhost`".into(),
            "changed account `web`@`%`".into(),
            // A grant on a database under another name is not the grant on this one.
            "missing privileges `sock`@`localhost` on `app`.*".into(),
            "extra privileges `sock`@`localhost` on `app_old`.*".into(),
        ],
    );
    let o = rehost(&d, &["verify", "db", &old.url("app"), &new.url("app")]);
    assert_eq!(o.code, 1, "{}", o.all());
    for line in [
        "missing      account `report`@`10.0.0.%`: plugin mysql_native_password, max_queries_per_hour 100",
        "missing      privileges `report`@`10.0.0.%` on `app`.`tagged`: GRANT SELECT (`code`) ON `app`.`tagged` TO `report`@`10.0.0.%`",
        "missing      privileges `report`@`10.0.0.%` on FUNCTION `app`.`twice`: GRANT EXECUTE ON FUNCTION `app`.`twice` TO `report`@`10.0.0.%`",
        "changed      privileges `app_rw` on `app`.*: old GRANT DELETE, INSERT, SELECT, UPDATE ON `app`.* TO `app_rw` | new GRANT DELETE, SELECT, UPDATE ON `app`.* TO `app_rw`",
        "changed      account `sock`@`localhost`: old plugin unix_socket | new plugin mysql_native_password",
        "changed      account `web`@`%`: old plugin mysql_native_password, default role `app_rw` | new plugin mysql_native_password",
    ] {
        assert!(o.stdout.contains(line), "{line}\n{}", o.stdout);
    }
    assert!(!o.all().contains("secret"), "{}", o.all());
}

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
    assert!(o.stdout.contains("(MariaDB 10."), "{}", o.stdout);
    assert!(!o.all().contains("not-a-real-secret"), "{}", o.all());
    // The verdict names what was not compared: `verify` may not read the grant tables on the
    // new side, so no account is compared on either (issue 18: the verdict read "complete and
    // correct" with users and grants never compared).
    let objects = db_json(&rehost(
        &d,
        &["verify", "db", &old.url("app"), &new_url, "--json"],
    ))["objects"]
        .clone();
    let denied = format!(
        "accounts, roles and grants: mysql://verify@127.0.0.1:{}/app (password given) could not read the grant tables (ERROR 1142 (42000): SELECT command denied to user 'verify'@'127.0.0.1' for table `mysql`.`user`): grant the verifying user SELECT ON mysql.* (MariaDB 10.4 or later)",
        new.port()
    );
    let scope: Vec<String> = std::iter::once(denied.clone())
        .chain(MARIADB_NOT_COMPARED.iter().map(|s| s.to_string()))
        .collect();
    assert_eq!(
        o.stdout.lines().last().unwrap(),
        format!(
            "equal: 4 tables (34500 rows), 1 sequences, {objects} schema objects; not compared: {}",
            scope.join("; ")
        ),
        "{}",
        o.stdout
    );
    assert_eq!(o.stdout.lines().count(), 3, "{}", o.stdout);
    // As root on both sides the accounts are compared, and the scope says the rest.
    let o = rehost(
        &d,
        &["verify", "db", &old.url("app"), &new.url("app"), "--json"],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(
        db_json(&o)["not_compared"],
        serde_json::json!(MARIADB_NOT_COMPARED),
        "{}",
        o.stdout
    );

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

    // The new row's unique text key is one the table does not hold, however short the keys:
    // 15 of the 16 one-digit hex keys taken (a random pick collided 15 times in 16).
    new.sql(
        "app",
        "CREATE TABLE letters (k CHAR(1) PRIMARY KEY, n INT); INSERT INTO letters VALUES ('0',1),('1',2),('2',3),('3',4),('4',5),('5',6),('6',7),('7',8),('8',9),('9',10),('a',11),('b',12),('c',13),('d',14),('e',15);",
    );
    for _ in 0..3 {
        let o = rehost(
            &d,
            &[
                "verify",
                "db",
                &new.url("app"),
                "--exercise",
                "--table",
                "letters",
                "--json",
            ],
        );
        assert_eq!(o.code, 0, "{}", o.all());
        let doc = db_json(&o);
        let ops = doc["tables"][0]["operations"].as_array().unwrap().clone();
        assert!(ops.iter().all(|op| op["status"] == "ok"), "{doc}");
        assert!(
            ops.iter().any(|op| op["what"] == "insert a new row"),
            "{doc}"
        );
    }

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

/// A `verify-db` step with engine mariadb: the client runs on the plan's hosts (local here,
/// each with a `root`), the password read there from its file and never shown; a deleted row
/// fails the gate.
///
/// The password file is a path of its host like any other: taken under the host's `root`
/// (issue 18: it was read at the real path, outside the root). Placed only under each root it
/// is read; placed only at the real path it is not.
#[test]
fn verify_db_step_with_mariadb() {
    let (old, new) = mariadb_migrated();
    let d = TestDir::new();
    for root in ["prod-old", "prod-new"] {
        d.write(
            &format!("{root}/etc/rehost/app.pw"),
            "not-a-real-secret-4711\n",
        );
    }
    let body = verify_db_body(
        "mariadb",
        "verify",
        (old.port(), new.port()),
        Path::new("/etc/rehost/app.pw"),
    );
    write_plan(&d, &body);
    run_verified_equal_without_secret(&d);

    // Only at the real path (this directory's absolute path, outside both roots): not read.
    let d3 = TestDir::new();
    let real = d3.write("real.pw", "not-a-real-secret-4711\n");
    write_plan(
        &d3,
        &verify_db_body("mariadb", "verify", (old.port(), new.port()), &real),
    );
    let o = rehost(&d3, &["run", "plan.toml"]);
    assert_eq!(o.code, 2, "{}", o.all());
    let under_root = d3.join("prod-old").join(real.strip_prefix("/").unwrap());
    assert!(
        o.stderr.contains(&format!(
            "host `old`: database `app` (from side) does not answer: failed to query old:mysql:///app?host=127.0.0.1&port={}&user=verify (password in {}): head: cannot open '{}' for reading: No such file or directory",
            old.port(),
            real.display(),
            under_root.display()
        )),
        "{}",
        o.stderr
    );
    assert!(!o.all().contains("not-a-real-secret"), "{}", o.all());

    new.sql("app", "DELETE FROM child WHERE id = 77");
    let d2 = TestDir::new();
    for root in ["prod-old", "prod-new"] {
        d2.write(
            &format!("{root}/etc/rehost/app.pw"),
            "not-a-real-secret-4711\n",
        );
    }
    write_plan(&d2, &body);
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
    // Paths of the hosts, under their roots like every path of a host with a root.
    for root in ["prod-old", "prod-new"] {
        d.write(
            &format!("{root}/etc/rehost/app.pw"),
            "not-a-real-secret-4711\n",
        );
    }
    d.write("prod-new/etc/rehost/app-login.pw", "app-secret-0815\n");
    let body = format!(
        "{}exercise = true\nexercise_user = \"app\"\nexercise_password_file = \"/etc/rehost/app-login.pw\"\n",
        verify_db_body(
            "mariadb",
            "verify",
            (old.port(), new.port()),
            Path::new("/etc/rehost/app.pw")
        ),
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
        // The verdict names what was not compared (issue 18: SQLite has no accounts; the rows
        // of a table without a key are counted, not located).
        let verdict = o.stdout.lines().last().unwrap();
        let (compared, scope) = verdict.split_once("; not compared: ").unwrap();
        assert!(
            compared.starts_with("equal: 4 tables (34500 rows), 1 sequences, "),
            "{verdict}"
        );
        assert_eq!(
            scope.split("; ").collect::<Vec<_>>(),
            [
                "accounts and privileges: SQLite has none (the file's owner and mode decide, and verify-tree compares those)",
                "rows of virtual tables (FTS and others): their definitions are compared, and their shadow tables as tables",
                "the query planner's statistics (sqlite_stat1 and the like)",
                "file settings other than the encoding, user_version and application_id (page_size, auto_vacuum, journal_mode)",
                "row by row, tables without a usable primary key (counted and summed: a difference is found, not located to rows): nokey",
            ],
            "{verdict}"
        );
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

/// A `verify-db` step with engine sqlite, each file on its host (local hosts here, each with
/// a `root`, under which the file's path is taken as every path of the host is): equal after
/// `.dump | sqlite3`; a deleted row fails the gate, named by its key.
#[test]
fn verify_db_step_with_sqlite() {
    let d = TestDir::new();
    std::fs::create_dir_all(d.join("prod-old/srv")).unwrap();
    std::fs::create_dir_all(d.join("prod-new/srv")).unwrap();
    let old = d.join("prod-old/srv/app.db");
    sqlite(&old, &[], SQLITE_SCHEMA);
    let new = d.join("prod-new/srv/app.db");
    let dump = sqlite(&old, &[".dump"], "");
    sqlite(&new, &[], &dump);
    // `.dump` leaves out the user_version (see above).
    sqlite(&new, &[], "PRAGMA user_version = 7;");
    let body = r#"
[[databases]]
id = "app"
engine = "sqlite"
from = "old"
to = "new"
database = "/srv/app.db"

[[steps]]
id = "verify-app"
do = "verify-db"
database = "app"
"#;
    write_plan(&d, body);
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
    // The run report's verdict for the step names its scope (issue 18).
    let o = rehost(&d, &["report", "plan.toml", "--format", "md"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let md = d.read(".rehost/plan/production/report.md");
    assert!(
        md.lines().any(|l| l == r"### `verify-app` attempt 1: `app` — complete and correct; not compared: accounts and privileges: SQLite has none (the file's owner and mode decide, and verify-tree compares those); rows of virtual tables (FTS and others): their definitions are compared, and their shadow tables as tables; the query planner's statistics (sqlite\_stat1 and the like); file settings other than the encoding, user\_version and application\_id (page\_size, auto\_vacuum, journal\_mode); row by row, tables without a usable primary key (counted and summed: a difference is found, not located to rows): nokey"),
        "{md}"
    );

    sqlite(&new, &[], "DELETE FROM tagged WHERE code = 'code-5';");
    let d2 = TestDir::new();
    for root in ["prod-old", "prod-new"] {
        std::fs::create_dir_all(d2.join(root).join("srv")).unwrap();
    }
    std::fs::copy(&old, d2.join("prod-old/srv/app.db")).unwrap();
    std::fs::copy(&new, d2.join("prod-new/srv/app.db")).unwrap();
    write_plan(&d2, body);
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

/// A `verify-db` step with engine mariadb between two ssh hosts (each with a `root`), each
/// server listening on loopback only: the `mariadb` client runs through each host's agent, the
/// password read from a file there, under the host's root; `HOST:mysql://…` on the command line goes the same way.
#[test]
fn verify_db_mariadb_between_two_ssh_hosts() {
    let (old, new) = mariadb_migrated();
    let (so, sn) = (
        rehost_test::sshd::Sshd::start(),
        rehost_test::sshd::Sshd::start(),
    );
    let d = TestDir::new();
    // Each ssh host has a `root`: the password file is a path of the host, taken under it
    // (issue 18: it was read at the real path), and is only there.
    for root in ["old-root", "new-root"] {
        d.write(
            &format!("{root}/etc/rehost/app.pw"),
            "not-a-real-secret-4711\n",
        );
    }
    let plan = ssh_plan(
        &so,
        &sn,
        &verify_db_body(
            "mariadb",
            "verify",
            (old.port(), new.port()),
            Path::new("/etc/rehost/app.pw"),
        ),
    )
    .replace(
        "[hosts.old]\n",
        &format!("[hosts.old]\nroot = \"{}\"\n", d.join("old-root").display()),
    )
    .replace(
        "[hosts.new]\n",
        &format!("[hosts.new]\nroot = \"{}\"\n", d.join("new-root").display()),
    );
    d.write("plan.toml", plan);
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

/// Issue 19 (bug) and issue 18 (database locations per environment): a rehearsal whose hosts
/// have roots opens the SQLite files under those roots, at the environment's own location,
/// never production's file at the path as written. Production's copy here differs (a row
/// deleted) and the rehearsal's is equal: the rehearsal passes, production fails, and the
/// production files are not changed by either.
#[test]
fn a_rehearsal_opens_its_own_sqlite_files_never_productions() {
    let d = TestDir::new();
    for dir in [
        "prod-old/srv",
        "prod-new/srv",
        "test-old/srv",
        "test-new/srv",
    ] {
        std::fs::create_dir_all(d.join(dir)).unwrap();
    }
    let prod_old = d.join("prod-old/srv/app.db");
    sqlite(&prod_old, &[], SQLITE_SCHEMA);
    let dump = sqlite(&prod_old, &[".dump"], "");
    let prod_new = d.join("prod-new/srv/app.db");
    sqlite(&prod_new, &[], &dump);
    sqlite(&prod_new, &[], "PRAGMA user_version = 7;");
    sqlite(&prod_new, &[], "DELETE FROM tagged WHERE code = 'code-5';");
    // The rehearsal's old side lives under another name, given by the environment.
    for f in ["test-old/srv/rehearsal.db", "test-new/srv/app.db"] {
        sqlite(&d.join(f), &[], &dump);
        sqlite(&d.join(f), &[], "PRAGMA user_version = 7;");
    }
    let before = (
        std::fs::read(&prod_old).unwrap(),
        std::fs::read(&prod_new).unwrap(),
    );
    let body = r#"
[environments.test.databases.app]
from_database = "/srv/rehearsal.db"

[[databases]]
id = "app"
engine = "sqlite"
from = "old"
to = "new"
database = "/srv/app.db"

[[steps]]
id = "verify-app"
do = "verify-db"
database = "app"
"#;
    write_plan(&d, body);
    let check = rehost(&d, &["check", "plan.toml"]);
    assert!(
        !check.stdout.contains("rehearsal-touches-production"),
        "{}",
        check.all()
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout
            .contains("database `app` verified on new: equal: 4 tables (34500 rows)"),
        "{}",
        o.stdout
    );
    let o = rehost(&d, &["run", "plan.toml"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.all()
            .contains("row-missing  row tagged key (code)=(code-5)"),
        "{}",
        o.all()
    );
    let after = (
        std::fs::read(&prod_old).unwrap(),
        std::fs::read(&prod_new).unwrap(),
    );
    assert!(before == after, "production's files changed");
}
