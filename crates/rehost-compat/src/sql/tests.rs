use super::lex::{Class, Dialect, bind, classify, parameters, shown, split};
use super::log::{Format, Logged, Reader};
use super::*;
use proptest::prelude::*;

const PG: Dialect = Dialect::Postgres;
const MARIADB: Dialect = Dialect::Mariadb;

fn read(format: Format, text: &str) -> Vec<Logged> {
    Reader::new(text.as_bytes(), format).collect()
}

#[test]
fn statements_split_outside_strings_names_and_comments() {
    let src =
        "SELECT ';' AS \"a;b\" -- c;\n; /* x; /* nested; */ y; */ SELECT $f$ ; $f$, E'\\';'; ;";
    assert_eq!(
        split(src, PG).unwrap(),
        vec![
            "SELECT ';' AS \"a;b\" -- c;",
            "/* x; /* nested; */ y; */ SELECT $f$ ; $f$, E'\\';'"
        ]
    );
    assert!(
        split("SELECT 'open", PG)
            .unwrap_err()
            .contains("not closed")
    );
    assert!(
        split("SELECT 1 /* open", PG)
            .unwrap_err()
            .contains("not closed")
    );
}

#[test]
fn reads_are_told_from_writes() {
    for read in [
        "SELECT 1",
        "select * from t where note = 'delete me'",
        "(SELECT 1) UNION (SELECT 2)",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "VALUES (1), (2)",
        "SHOW DateStyle",
        "TABLE accounts",
        "SELECT \"update\" FROM t",
    ] {
        assert_eq!(classify(read, PG).unwrap(), Class::Read, "{read}");
    }
    for write in [
        "INSERT INTO t VALUES (1)",
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
        "SELECT * INTO newtable FROM t",
        "SELECT * FROM t FOR UPDATE",
        "SELECT * FROM t FOR KEY SHARE",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
        "select pg_catalog.pg_advisory_lock(1)",
        "CREATE TABLE t (a int)",
        "\\! rm -rf /",
        "COPY t TO PROGRAM 'x'",
    ] {
        assert!(
            matches!(classify(write, PG).unwrap(), Class::Write(_)),
            "{write}"
        );
    }
    assert_eq!(classify("BEGIN", PG).unwrap(), Class::Session);
    assert_eq!(
        classify("set DateStyle = 'ISO'", PG).unwrap(),
        Class::Session
    );
}

#[test]
fn parameters_are_bound_as_literals() {
    let p = parameters("parameters: $1 = '42', $2 = NULL, $3 = 'it''s, $4 = x'").unwrap();
    assert_eq!(
        p,
        vec![Some("42".into()), None, Some("it's, $4 = x".into())]
    );
    assert_eq!(
        bind("SELECT $1, '$2', $2, $3", &p).unwrap(),
        "SELECT '42', '$2', NULL, 'it''s, $4 = x'"
    );
    assert!(bind("SELECT $4", &p).unwrap_err().contains("$4"));
    assert!(parameters("parameters: $2 = '1'").is_err());
    assert!(parameters("parameters: $1 = 'open").is_err());
}

#[test]
fn credential_literals_are_not_shown() {
    assert_eq!(
        shown(
            "SELECT id FROM users\n WHERE login = 'ann' AND password = crypt('hunter2', salt)",
            PG
        ),
        "SELECT id FROM users WHERE login = 'ann' AND password = crypt('(not shown)', salt)"
    );
}

/// A log as PostgreSQL 15 writes it with `log_statement = 'all'` (stderr, Debian's prefix):
/// later lines of a statement start with a tab, extended-protocol executions carry their
/// parameters in the DETAIL line after them.
#[test]
fn the_stderr_log_yields_statements_with_their_lines() {
    let log = "\
2026-12-07 07:00:00.001 UTC [100] postgres@app LOG:  statement: SELECT 1;
2026-12-07 07:00:00.002 UTC [100] postgres@app LOG:  connection authorized: user=postgres
2026-12-07 07:00:00.003 UTC [100] postgres@app LOG:  statement: SELECT a,
\t       b
\tFROM t
2026-12-07 07:00:00.004 UTC [100] postgres@app LOG:  execute <unnamed>: SELECT * FROM t WHERE id = $1 AND n = $2
2026-12-07 07:00:00.004 UTC [100] postgres@app DETAIL:  parameters: $1 = '7', $2 = 'a
\tb'
2026-12-07 07:00:00.005 UTC [100] postgres@app LOG:  duration: 0.123 ms  statement: SHOW DateStyle
2026-12-07 07:00:00.006 UTC [100] postgres@app ERROR:  syntax error at or near \"x\"
garbage \u{1}\u{2}
2026-12-07 07:00:00.007 UTC [100] postgres@app LOG:  execute S_1: SELECT $1
";
    let got: Vec<(u64, Result<String, String>)> = read(Format::Stderr, log)
        .into_iter()
        .map(|l| (l.line, l.text))
        .collect();
    assert_eq!(got[0], (1, Ok("SELECT 1;".into())));
    assert_eq!(got[1], (3, Ok("SELECT a,\n       b\nFROM t".into())));
    assert_eq!(
        got[2],
        (
            6,
            Ok("SELECT * FROM t WHERE id = '7' AND n = 'a\nb'".into())
        )
    );
    assert_eq!(got[3], (9, Ok("SHOW DateStyle".into())));
    assert_eq!(got[4].0, 12);
    assert!(
        got[4]
            .1
            .as_ref()
            .unwrap_err()
            .contains("parameters are not in the log")
    );
    assert_eq!(got.len(), 5);
}

#[test]
fn the_csvlog_and_jsonlog_yield_statements() {
    let csv = "\
2026-12-07 07:00:00.001 UTC,\"postgres\",\"app\",100,\"127.0.0.1:5000\",abc.1,1,\"idle\",2026-12-07 07:00:00 UTC,3/1,0,LOG,00000,\"statement: SELECT 'a,\"\"b'\",,,,,,,,,\"psql\",\"client backend\",,0
2026-12-07 07:00:00.002 UTC,\"postgres\",\"app\",100,\"127.0.0.1:5000\",abc.1,2,\"SELECT\",2026-12-07 07:00:00 UTC,3/2,0,LOG,00000,\"execute <unnamed>: SELECT $1::int
  + 1\",\"parameters: $1 = '5'\",,,,,,,,\"\",\"client backend\",,0
2026-12-07 07:00:00.003 UTC,\"postgres\",\"app\",100,,abc.1,3,,,,0,ERROR,42601,\"syntax error\",,,,,,,,,\"\",\"client backend\",,0
";
    assert_eq!(Format::detect(csv.as_bytes()), Format::Csv);
    let got: Vec<_> = read(Format::Csv, csv)
        .into_iter()
        .map(|l| (l.line, l.text))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, Ok("SELECT 'a,\"b'".into())),
            (2, Ok("SELECT '5'::int\n  + 1".into()))
        ]
    );
    let json = "{\"error_severity\":\"LOG\",\"message\":\"statement: SELECT 1\"}\nnot json\n";
    assert_eq!(Format::detect(json.as_bytes()), Format::Json);
    let got = read(Format::Json, json);
    assert_eq!(got[0].text, Ok("SELECT 1".into()));
    assert!(
        got[1]
            .text
            .as_ref()
            .unwrap_err()
            .contains("not a jsonlog line")
    );
    assert_eq!(
        Format::detect(b"2026-12-07 07:00:00.001 UTC [1] LOG:  statement: SELECT 1, 2"),
        Format::Stderr
    );
}

/// A line over the cap is named and skipped, read to its end without keeping it; the
/// statement after it is read.
#[test]
fn an_overlong_line_is_skipped_by_name() {
    let mut log = String::from("x LOG:  statement: SELECT '");
    log.push_str(&"a".repeat(log::MAX_ENTRY + 10));
    log.push_str("'\nx LOG:  statement: SELECT 2\n");
    let got = read(Format::Stderr, &log);
    assert_eq!(got.len(), 2);
    assert!(got[0].text.as_ref().unwrap_err().contains("longer than"));
    assert_eq!(got[1].text, Ok("SELECT 2".into()));
    let mut csv = String::from("2026-12-07 07:00:00.001 UTC,\"");
    csv.push_str(&"b\n".repeat(log::MAX_ENTRY));
    let got = read(Format::Csv, &csv);
    assert_eq!(got.len(), 1);
    assert!(got[0].text.is_err());
}

proptest! {
    /// Whatever bytes a log holds, reading, splitting and classifying it ends without a panic.
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for f in [Format::Stderr, Format::Csv, Format::Json, Format::MariadbGeneral] {
            for l in Reader::new(&bytes[..], f) {
                if let Ok(t) = l.text
                    && let Ok(parts) = split(&t, f.dialect())
                {
                    for p in parts {
                        let _ = classify(p, f.dialect());
                        let _ = shown(p, f.dialect());
                    }
                }
            }
        }
        let s = String::from_utf8_lossy(&bytes);
        let _ = parameters(&s);
        let _ = bind(&s, &[Some("x".into())]);
        for d in [PG, MARIADB] {
            let _ = split(&s, d);
            let _ = shown(&s, d);
        }
        let _ = super::mariadb::use_target(&s);
    }

    /// A general log made of entry-shaped lines with garbage arguments: no panic, and every
    /// statement it yields starts on a line of the log.
    #[test]
    fn general_log_shaped_garbage_never_panics(
        lines in proptest::collection::vec(
            ("[0-9 ]{0,3}", "(Query|Execute|Connect|Init DB|Quit|Prepare|x)", "[ a-zA-Z0-9`'\";#/*!@\\-\\\\]{0,60}"),
            0..20,
        )
    ) {
        let mut log = String::from("mariadbd, Version: 10.11 (x). started with:\n");
        for (id, cmd, arg) in &lines {
            log.push_str(&format!("\t\t{id} {cmd}\t{arg}\n{arg}\n"));
        }
        let n = log.lines().count() as u64;
        for l in Reader::new(log.as_bytes(), Format::MariadbGeneral) {
            prop_assert!(l.line >= 1 && l.line <= n);
            if let Ok(t) = l.text {
                let _ = classify(&t, MARIADB);
                let _ = shown(&t, MARIADB);
            }
        }
    }

    #[test]
    fn sql_shaped_garbage_never_panics(s in "[ a-zA-Z0-9$'\";()/*\\-\\\\E`#!]{0,200}") {
        for d in [PG, MARIADB] {
            let _ = split(&s, d);
            let _ = classify(&s, d);
            let _ = shown(&s, d);
        }
        for n in 0..8u8 {
            let reading = super::mariadb::Reading {
                backslash: n & 1 == 0,
                ansi_quotes: n & 2 != 0,
                executable: n & 4 == 0,
            };
            let _ = super::mariadb::tokens_read(&s, reading);
        }
        let _ = bind(&s, &[None]);
        let line = format!("t LOG:  execute x: {s}\nt DETAIL:  parameters: $1 = '{s}'\n");
        for _ in Reader::new(line.as_bytes(), Format::Stderr) {}
    }
}

/// A side answering from a table of statements; `flip` statements answer differently on
/// every call (a `random()`).
struct Fake {
    name: &'static str,
    answers: HashMap<&'static str, Result<Answer, QueryError>>,
    calls: AtomicUsize,
}

impl SqlSide for Fake {
    fn describe(&self) -> String {
        self.name.into()
    }
    fn dialect(&self) -> Dialect {
        PG
    }
    fn query(
        &self,
        statement: &str,
        _write: bool,
        _database: &super::log::Database,
    ) -> Result<Answer, QueryError> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        if statement == "SELECT random(), 1" {
            return Ok(answer(&["random", "one"], &[&[&format!("0.{n}"), "1"]]));
        }
        self.answers
            .get(statement)
            .cloned()
            .unwrap_or_else(|| Err(QueryError::Trouble(format!("no answer for {statement}"))))
    }
}

fn answer(cols: &[&str], rows: &[&[&str]]) -> Answer {
    Answer {
        columns: cols.iter().map(|c| c.to_string()).collect(),
        rows: rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| (*v != "NULL").then(|| v.to_string()))
                    .collect()
            })
            .collect(),
    }
}

#[test]
fn replay_names_differences_noise_and_new_errors() {
    let same = answer(&["a"], &[&["1"], &["2"]]);
    let mut o: HashMap<&'static str, Result<Answer, QueryError>> = HashMap::new();
    let mut n = HashMap::new();
    o.insert("SELECT a FROM t", Ok(same.clone()));
    n.insert("SELECT a FROM t", Ok(same.clone()));
    o.insert(
        "SELECT d FROM t",
        Ok(answer(
            &["id", "d"],
            &[&["1", "2026-12-07"], &["2", "2026-12-08"]],
        )),
    );
    n.insert(
        "SELECT d FROM t",
        Ok(answer(
            &["id", "d"],
            &[&["1", "2026-12-07"], &["2", "08/12/2026"]],
        )),
    );
    o.insert("SELECT old_fn()", Ok(answer(&["old_fn"], &[&["x"]])));
    n.insert(
        "SELECT old_fn()",
        Err(QueryError::Server(
            "ERROR:  function old_fn() does not exist\nLINE 1: …".into(),
        )),
    );
    o.insert("SELECT b FROM t", Ok(answer(&["b"], &[&["1"], &["2"]])));
    n.insert("SELECT b FROM t", Ok(answer(&["b"], &[&["2"], &["1"]])));
    o.insert(
        "SELECT nope",
        Err(QueryError::Server(
            "ERROR:  column \"nope\" does not exist".into(),
        )),
    );
    n.insert(
        "SELECT nope",
        Err(QueryError::Server(
            "ERROR:  column \"nope\" does not exist".into(),
        )),
    );
    let old = Fake {
        name: "old",
        answers: o,
        calls: AtomicUsize::new(0),
    };
    let new = Fake {
        name: "new",
        answers: n,
        calls: AtomicUsize::new(0),
    };
    let log = "\
x LOG:  statement: SELECT a FROM t
x LOG:  statement: BEGIN
x LOG:  statement: SELECT d FROM t
x LOG:  statement: SELECT old_fn()
x LOG:  statement: SELECT random(), 1
x LOG:  statement: UPDATE t SET a = 1
x LOG:  statement: SELECT b FROM t
x LOG:  statement: SELECT nope
x LOG:  statement: SELECT a FROM t; COMMIT
";
    let s = replay(
        Reader::new(log.as_bytes(), Format::Stderr),
        &old,
        &new,
        &Options {
            concurrency: 3,
            ..Options::default()
        },
        &AtomicBool::new(false),
    );
    assert_eq!(
        (s.statements, s.distinct, s.session, s.refused),
        (10, 6, 2, 1)
    );
    assert_eq!(
        (
            s.compared,
            s.same,
            s.differing,
            s.new_errors,
            s.failed_both,
            s.noise
        ),
        (6, 2, 3, 1, 1, 1)
    );
    let f = &s.findings;
    assert_eq!(
        (
            f[0].line,
            f[0].class.as_str(),
            f[0].row,
            f[0].column.as_deref()
        ),
        (3, "value", Some(2), Some("d"))
    );
    assert_eq!(
        (f[0].old.as_str(), f[0].new.as_str()),
        ("2026-12-08", "08/12/2026")
    );
    assert_eq!((f[1].line, f[1].class.as_str()), (4, "error on new only"));
    assert_eq!(f[1].new, "ERROR:  function old_fn() does not exist");
    assert_eq!((f[2].line, f[2].class.as_str()), (7, "row order"));
    assert_eq!(s.noisy[0].line, 5);
    assert!(s.noisy[0].why.contains("column random"), "{:?}", s.noisy);
    assert_eq!(s.refused_list[0].line, 6);
    assert_eq!(
        s.findings.iter().filter(|f| f.class == "value").count(),
        1,
        "random() is not a finding"
    );
    assert!(!s.trouble());
}

/// Nothing compared is not "same": a log of writes and session statements only is trouble,
/// saying why.
#[test]
fn a_log_with_nothing_to_compare_is_trouble() {
    let side = Fake {
        name: "x",
        answers: HashMap::new(),
        calls: AtomicUsize::new(0),
    };
    let log = "x LOG:  statement: BEGIN\nx LOG:  statement: DELETE FROM t\n";
    let s = replay(
        Reader::new(log.as_bytes(), Format::Stderr),
        &side,
        &side,
        &Options::default(),
        &AtomicBool::new(false),
    );
    assert!(s.trouble());
    let text = render(&s, None, &|s| s.to_string());
    assert_eq!(
        text.last().unwrap(),
        "trouble: no statement was compared (1 refused as not read-only, 1 transaction and session statements, 0 noise as a whole, 0 past the cap)"
    );
}
