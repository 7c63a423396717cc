use super::lex::{Class, Dialect, classify, shown, split};
use super::log::{Database, Format, Logged, Reader};
use super::mariadb::use_target;

const M: Dialect = Dialect::Mariadb;

#[test]
fn mariadb_statements_split_by_its_own_quotes_and_comments() {
    let src = "SELECT ';' AS `a;b`, \"x\\\";y\" # c;\n; SELECT 1 -- c;\n; SELECT 2--1; \
               SELECT /* x; */ 3; SELECT `a``;`";
    assert_eq!(
        split(src, M).unwrap(),
        vec![
            "SELECT ';' AS `a;b`, \"x\\\";y\" # c;",
            "SELECT 1 -- c;",
            "SELECT 2--1",
            "SELECT /* x; */ 3",
            "SELECT `a``;`"
        ]
    );
    // PostgreSQL's rules read the same text otherwise: `#` is no comment there.
    assert_ne!(
        split(src, Dialect::Postgres).ok(),
        split(src, M).ok(),
        "the dialects differ"
    );
    assert!(split("SELECT `open", M).unwrap_err().contains("not closed"));
    assert!(split("SELECT 'a\\'", M).unwrap_err().contains("not closed"));
}

#[test]
fn executable_comments_are_read_as_code() {
    // The content of /*! … */ runs on MariaDB: a write hidden in one is a write.
    assert_eq!(
        classify("SELECT 1 /*!50000 , 2 */", M).unwrap(),
        Class::Read
    );
    assert!(matches!(
        classify("SELECT * FROM t /*!50000 FOR UPDATE */", M).unwrap(),
        Class::Write(_)
    ));
    assert!(matches!(
        classify("/*M!100000 DROP TABLE t */", M).unwrap(),
        Class::Never(_)
    ));
    assert_eq!(
        classify("/*!40101 SET NAMES utf8mb4 */", M).unwrap(),
        Class::Session
    );
    // A `;` inside one is not split: refused as not readable.
    assert!(
        split("SELECT 1 /*! ; DROP TABLE t */", M)
            .unwrap_err()
            .contains("executable comment")
    );
    assert!(
        split("SELECT 1 /*! 2", M)
            .unwrap_err()
            .contains("not closed")
    );
}

#[test]
fn mariadb_reads_are_told_from_writes_and_from_what_is_never_run() {
    for read in [
        "SELECT 1",
        "select * from t where note = 'delete me'",
        "SELECT `update` FROM t",
        "SELECT INSERT('abc', 1, 1, 'x'), REPLACE(s, 'a', 'b') FROM t",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "SHOW VARIABLES LIKE 'sql_mode'",
        "DESCRIBE t",
        "desc t",
        "EXPLAIN SELECT * FROM t",
        "VALUES (1), (2)",
        "TABLE t",
        "(SELECT 1) UNION (SELECT 2)",
        "SELECT * FROM t FOR SYSTEM_TIME ALL",
    ] {
        assert_eq!(classify(read, M).unwrap(), Class::Read, "{read}");
    }
    for write in [
        "INSERT INTO t VALUES (1)",
        "REPLACE INTO t VALUES (1)",
        "UPDATE t SET a = 1",
        "DELETE FROM t",
        "SELECT * FROM t FOR UPDATE",
        "SELECT * FROM t LOCK IN SHARE MODE",
        "SELECT a INTO @x FROM t",
        "SELECT GET_LOCK('x', 1)",
        "SELECT RELEASE_LOCK('x')",
        "SELECT SLEEP(5)",
        "SELECT BENCHMARK(1000000, MD5('x'))",
        "SELECT NEXTVAL(s)",
        "EXPLAIN UPDATE t SET a = 1",
    ] {
        assert!(
            matches!(classify(write, M).unwrap(), Class::Write(_)),
            "{write}"
        );
    }
    // What a rollback cannot undo is never run.
    for never in [
        "CREATE TABLE t (a int)",
        "DROP TABLE t",
        "ALTER TABLE t ADD b int",
        "TRUNCATE t",
        "LOCK TABLES t WRITE",
        "CALL p()",
        "LOAD DATA INFILE '/x' INTO TABLE t",
        "FLUSH PRIVILEGES",
        "GRANT ALL ON *.* TO x",
        "SELECT * FROM t INTO OUTFILE '/tmp/x'",
        "SELECT 1 INTO DUMPFILE '/tmp/x'",
        "\\! rm -rf /",
        "DO SLEEP(1)",
        "SELECT sys_exec('rm -rf /')",
        "UPDATE t SET a = sys_eval('id')",
        "SELECT LOAD_FILE('/etc/shadow')",
    ] {
        assert!(
            matches!(classify(never, M).unwrap(), Class::Never(_)),
            "{never}: {:?}",
            classify(never, M)
        );
    }
    for session in [
        "SET sql_mode = ''",
        "USE app",
        "START TRANSACTION",
        "COMMIT",
        "UNLOCK TABLES",
        "PREPARE s FROM 'SELECT 1'",
    ] {
        assert_eq!(classify(session, M).unwrap(), Class::Session, "{session}");
    }
}

/// A statement that another sql_mode reads as two statements is never sent: the server
/// would run the second (with NO_BACKSLASH_ESCAPES, `\'` ends the string).
#[test]
fn a_statement_that_another_sql_mode_splits_is_never_run() {
    let s = "SELECT 'a\\'; DROP TABLE t; -- '";
    assert_eq!(split(s, M).unwrap(), vec![s]);
    assert!(
        matches!(classify(s, M).unwrap(), Class::Never(ref why) if why.contains("sql_mode")),
        "{:?}",
        classify(s, M)
    );
    // ANSI_QUOTES: `"` quotes a name, `\` is no escape in it.
    let s = "SELECT \"a\\\"; DROP TABLE t; -- \"";
    assert!(matches!(classify(s, M).unwrap(), Class::Never(_)));
    // A `#` comment inside an executable comment hides its `*/` from a server that runs it;
    // one that does not (a version too old, MySQL for `/*M!`) ends the comment there.
    let s = "SELECT 1 /*!99999 # */ ; DROP TABLE t\n */";
    assert_eq!(split(s, M).unwrap(), vec![s]);
    assert!(matches!(classify(s, M).unwrap(), Class::Never(_)));
    // A `;` that is inside a string under every reading is fine.
    assert_eq!(classify("SELECT ';' AS x", M).unwrap(), Class::Read);
}

#[test]
fn use_names_its_database() {
    assert_eq!(use_target("USE app").as_deref(), Some("app"));
    assert_eq!(use_target("use `my``db`").as_deref(), Some("my`db"));
    assert_eq!(use_target("USE app;").as_deref(), Some("app"));
    assert_eq!(use_target("USE"), None);
    assert_eq!(use_target("USE a b"), None);
    assert_eq!(use_target("SELECT 1"), None);
}

#[test]
fn credential_literals_are_not_shown_in_mariadb_statements() {
    assert_eq!(
        shown("SELECT id FROM users WHERE password = \"hunter2\" # x", M),
        "SELECT id FROM users WHERE password = '(not shown)' # x"
    );
    // Not lexable: shown up to the first quote only.
    assert_eq!(
        shown("SELECT `pw` FROM t WHERE password = 'hunter2", M),
        "SELECT …"
    );
}

fn read(text: &str) -> Vec<Logged> {
    Reader::new(text.as_bytes(), Format::MariadbGeneral).collect()
}

fn named(d: &str) -> Database {
    Database::Named(d.into())
}

/// A general log as MariaDB 10.11 writes it (file output): the header, entries with and
/// without the time, a statement over several lines, each connection's database followed
/// through `Connect`, `Init DB` and `USE`; `Prepare`, `Quit` and the header are no statements.
#[test]
fn the_general_log_yields_statements_in_their_databases() {
    let log = "\
/usr/sbin/mariadbd, Version: 10.11.19-MariaDB-0+deb12u1-log (Debian 12). started with:
Tcp port: 3306  Unix socket: /run/mysqld/mysqld.sock
Time\t\t    Id Command\tArgument
261207 15:34:24\t     3 Connect\troot@127.0.0.1 on app using TCP/IP
\t\t     3 Query\tSELECT a,
       b
FROM t
\t\t     4 Query\tSELECT 'before the log'
\t\t     3 Init DB\tother
\t\t     3 Query\tSELECT 2; USE `third`; SELECT 3
261207  9:05:01\t     3 Prepare\tSELECT ? + 1
\t\t     3 Execute\tSELECT 41 + 1
\t\t     3 Quit\t
\t\t     5 Connect\troot@localhost on  using Socket
\t\t     5 Query\tSELECT 5
\t\t     5 Query\tuse app
\t\t     5 Query\tSELECT 6
/usr/sbin/mariadbd, Version: 10.11.19-MariaDB-0+deb12u1-log (Debian 12). started with:
\t\t     5 Query\tSELECT 7
";
    assert_eq!(Format::detect(log.as_bytes()), Format::MariadbGeneral);
    let got: Vec<(u64, String, Database)> = read(log)
        .into_iter()
        .map(|l| (l.line, l.text.unwrap(), l.database))
        .collect();
    assert_eq!(
        got,
        vec![
            (5, "SELECT a,\n       b\nFROM t".into(), named("app")),
            (8, "SELECT 'before the log'".into(), Database::Unknown),
            (10, "SELECT 2".into(), named("other")),
            (10, "USE `third`".into(), named("other")),
            (10, "SELECT 3".into(), named("third")),
            (12, "SELECT 41 + 1".into(), named("third")),
            (15, "SELECT 5".into(), Database::NoneSelected),
            (16, "use app".into(), Database::NoneSelected),
            (17, "SELECT 6".into(), named("app")),
            // After a restart, connection 5 is another one.
            (19, "SELECT 7".into(), Database::Unknown),
        ]
    );
    // A log that starts with an entry (the header rotated away) is told too.
    assert_eq!(
        Format::detect(b"\t\t    12 Query\tSELECT 1\n"),
        Format::MariadbGeneral
    );
    assert_eq!(
        Format::detect(b"2026-12-07T15:34:24.123456Z\t   12 Query\tSELECT 1\n"),
        Format::MariadbGeneral
    );
    assert_eq!(
        Format::parse("mariadb-general"),
        Some(Format::MariadbGeneral)
    );
}

#[test]
fn a_hostile_general_log_is_errors_by_line_never_a_panic() {
    let mut log = Vec::new();
    log.extend_from_slice(b"\x00\xff garbage before any entry\n");
    log.extend_from_slice(b"\t\t     1 Query\tSELECT '\xff'\n");
    log.extend_from_slice(b"\t\t     1 Query\tSELECT '");
    log.extend(std::iter::repeat_n(b'a', (super::log::MAX_ENTRY) + 10));
    log.extend_from_slice(b"'\n\t\t     1 Query\tSELECT 1 AS fine\n");
    // A continuation that makes the statement over the cap.
    log.extend_from_slice(b"\t\t     2 Query\tSELECT 2,\n");
    for _ in 0..((super::log::MAX_ENTRY >> 16) + 1) {
        log.extend(std::iter::repeat_n(b'b', 1 << 16));
        log.push(b'\n');
    }
    log.extend_from_slice(b"\t\t    99999999999999999999999 Query\tSELECT 'not an id'\n");
    let got = Reader::new(&log[..], Format::MariadbGeneral).collect::<Vec<_>>();
    let texts: Vec<(u64, Result<String, String>)> =
        got.into_iter().map(|l| (l.line, l.text)).collect();
    assert_eq!(texts[0], (2, Err("the line is not UTF-8".into())));
    assert_eq!(
        texts[1],
        (3, Err("the line is longer than 1024 KiB: not read".into()))
    );
    assert_eq!(texts[2], (4, Ok("SELECT 1 AS fine".into())));
    assert_eq!(texts[3].0, 5);
    assert!(texts[3].1.as_ref().unwrap_err().contains("longer than"));
    assert_eq!(texts.len(), 4, "{texts:?}");
}
