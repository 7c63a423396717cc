//! `rehost compat replay-sql` against two real PostgreSQL servers on loopback: a query log
//! recorded on the old one (stderr and csvlog, `log_statement = 'all'`) replayed against the
//! old one and a new one whose `DateStyle` and `standard_conforming_strings` changed and which
//! lacks a function the old one had. The changed answers are found and named (statement line,
//! row, column, both values), the error only the new server raises is its own class, a
//! `now()`/`random()` query is noise and not a difference, writes are refused; a hostile log
//! is an error naming its line, never a panic; a password in a URL is never printed.

use crate::support::*;
use rehost_test::TestDir;
use rehost_test::postgres::Postgres;
use std::time::{Duration, Instant};

/// What the old clients sent: simple-protocol statements through psql, one of them over
/// several lines, a write, transaction control, a function only the old server has, and a
/// query answered differently on every call.
const CLIENT: &str = "\
SELECT id, at FROM events ORDER BY id;
SELECT count(*) AS n,
       max(id) AS top
  FROM events;
BEGIN;
UPDATE events SET note = note WHERE id = 1;
COMMIT;
SELECT legacy_total();
SELECT now() AS at, random() AS r, 1 AS one;
SHOW DateStyle;
SELECT 'x\\\\y' AS s;
SELECT 'client done' AS marker;
";

const SCHEMA: &str = "\
CREATE TABLE events (id int PRIMARY KEY, at date NOT NULL, note text);
INSERT INTO events VALUES (1, '2026-12-07', 'first'), (2, '2026-12-08', NULL);
";

fn restart(pg: &mut Postgres) {
    pg.stop();
    pg.run();
}

fn wait_for(path: &dyn Fn() -> Option<std::path::PathBuf>, marker: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(p) = path()
            && let Ok(text) = std::fs::read_to_string(&p)
            && text.contains(marker)
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not log `{marker}` within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The old server's log directory's file ending in `ext` (logging_collector names it by time).
fn logged(pg: &Postgres, ext: &str) -> Option<std::path::PathBuf> {
    std::fs::read_dir(pg.data_dir().join("log"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == ext))
}

/// Two servers: the old one logging every statement (stderr and csvlog), the new one with
/// the changed settings and without `legacy_total()`. Returns them with the two logs.
fn recorded() -> (Postgres, Postgres, String, String) {
    let mut old = Postgres::start();
    let mut new = Postgres::start();
    for pg in [&old, &new] {
        pg.sql("postgres", SCHEMA);
    }
    old.sql(
        "postgres",
        "CREATE FUNCTION legacy_total() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM events';",
    );
    new.sql(
        "postgres",
        "ALTER SYSTEM SET DateStyle = 'SQL, DMY'; ALTER SYSTEM SET standard_conforming_strings = off;",
    );
    restart(&mut new);
    old.sql(
        "postgres",
        "ALTER SYSTEM SET log_statement = 'all'; ALTER SYSTEM SET logging_collector = on; \
         ALTER SYSTEM SET log_destination = 'stderr,csvlog';",
    );
    restart(&mut old);
    // A client on the extended protocol (pgbench -M extended): the log holds `execute
    // <unnamed>: … $1` and the parameters in the DETAIL line after it.
    let script = old.data_dir().join("../client.sql");
    std::fs::write(
        &script,
        "\\set id 2\nSELECT id, at FROM events WHERE id = :id;\n",
    )
    .unwrap();
    let out = std::process::Command::new(rehost_test::postgres::tool("pgbench"))
        .args(["-n", "-M", "extended", "-t", "1", "-f"])
        .arg(&script)
        .arg(old.url("postgres"))
        .output()
        .expect("run pgbench");
    assert!(
        out.status.success(),
        "pgbench: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    old.sql("postgres", CLIENT);
    let stderr = wait_for(&|| logged(&old, "log"), "'client done'");
    let csv = wait_for(&|| logged(&old, "csv"), "'client done'");
    (old, new, stderr, csv)
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

/// The log line on which `text` is logged.
fn line_of(log: &str, text: &str) -> u64 {
    log.lines()
        .position(|l| l.contains(&format!("statement: {text}")))
        .unwrap_or_else(|| panic!("`{text}` is not in the log:\n{log}")) as u64
        + 1
}

#[test]
fn a_recorded_query_log_names_what_the_changed_server_answers_differently() {
    let d = TestDir::new();
    let (old, new, stderr_log, csv_log) = recorded();
    std::fs::write(d.path().join("old.log"), &stderr_log).unwrap();
    std::fs::write(d.path().join("old.csv"), &csv_log).unwrap();
    // A password in the URL (the cluster trusts loopback, so any is accepted): never shown.
    let old_url = old
        .url("postgres")
        .replace("postgres@", "postgres:Sekrit-pw-1@");
    let ran = test_in(&d)
        .args([
            "compat",
            "replay-sql",
            "--log",
            "old.log",
            "--old",
            &old_url,
            "--new",
            &new.url("postgres"),
            "--json",
        ])
        .never_prints("Sekrit-pw-1")
        .code(1);
    let v: serde_json::Value = serde_json::from_str(ran.stdout().trim()).unwrap();
    assert_eq!(v["format"], "stderr", "{v:#}");
    assert_eq!(v["result"], "differ");

    // DateStyle: the first differing row and column, with both values.
    let dates = finding(&v, "SELECT id, at FROM events ORDER BY id");
    assert_eq!(
        dates["line"].as_u64().unwrap(),
        line_of(&stderr_log, "SELECT id, at FROM events ORDER BY id")
    );
    assert_eq!(dates["class"], "value");
    assert_eq!(dates["row"], 1);
    assert_eq!(dates["column"], "at");
    assert_eq!(dates["old"], "2026-12-07");
    assert_eq!(dates["new"], "07/12/2026");
    // The extended-protocol query, its logged parameter bound.
    let bound = finding(&v, "SELECT id, at FROM events WHERE id = '2'");
    assert_eq!(
        (&bound["column"], &bound["new"]),
        (&"at".into(), &"08/12/2026".into())
    );
    let show = finding(&v, "SHOW DateStyle");
    assert_eq!(
        (&show["old"], &show["new"]),
        (&"ISO, MDY".into(), &"SQL, DMY".into())
    );
    // standard_conforming_strings = off: the backslashes of a plain literal are escapes.
    let s = finding(&v, "SELECT 'x");
    assert_eq!(
        (&s["column"], &s["old"], &s["new"]),
        (&"s".into(), &"x\\\\y".into(), &"x\\y".into())
    );
    // The function the new server lacks: an error only the new server raises.
    let legacy = finding(&v, "SELECT legacy_total()");
    assert_eq!(legacy["class"], "error on new only");
    assert!(
        legacy["new"]
            .as_str()
            .unwrap()
            .contains("function legacy_total() does not exist"),
        "{legacy:#}"
    );
    assert_eq!(v["new_errors"], 1);
    assert_eq!(v["differing"], 5, "{v:#}");

    // now() and random() differ between the two runs on the old server: noise, not a finding.
    let noisy = v["noisy"].as_array().unwrap();
    assert_eq!(noisy.len(), 1, "{v:#}");
    assert!(
        noisy[0]["statement"]
            .as_str()
            .unwrap()
            .starts_with("SELECT now()")
    );
    assert_eq!(
        noisy[0]["why"],
        "column at, r differs between the two runs on the old server"
    );
    assert!(
        !v["findings"].to_string().contains("now()"),
        "the nondeterministic query is not a finding: {v:#}"
    );
    // The statement over three lines was read whole and answered the same.
    assert!(!v["findings"].to_string().contains("count(*)"), "{v:#}");
    // The write is refused (named with its line), transaction control not replayed.
    assert_eq!(v["refused"], 1);
    let refused = &v["refused_list"][0];
    assert_eq!(
        refused["line"].as_u64().unwrap(),
        line_of(&stderr_log, "UPDATE events")
    );
    assert_eq!(refused["why"], "an UPDATE statement");
    assert_eq!(v["session"], 2);
    // id/at, id = '2', count, legacy, now, SHOW, 'x\\y', marker.
    assert_eq!(v["compared"], 8, "{v:#}");
    assert_eq!(v["noise"], 1);
    // The old server is unchanged: the replay ran read-only and rolled back.
    assert_eq!(old.sql("postgres", "SELECT count(*) FROM events"), "2");

    // The csvlog of the same session gives the same findings.
    let csv = test_in(&d)
        .args([
            "compat",
            "replay-sql",
            "--log",
            "old.csv",
            "--old",
            &old.url("postgres"),
            "--new",
            &new.url("postgres"),
            "--json",
        ])
        .code(1);
    let c: serde_json::Value = serde_json::from_str(csv.stdout().trim()).unwrap();
    assert_eq!(c["format"], "csvlog");
    let classes = |v: &serde_json::Value| -> Vec<(String, String, String)> {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["statement"].as_str().unwrap().to_owned(),
                    f["class"].as_str().unwrap().to_owned(),
                    f["new"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(classes(&c), classes(&v));
    assert_eq!(c["noise"], 1);

    // For a person: the finding with its line, row, column and values; the noise apart.
    let text = test_in(&d)
        .args([
            "compat",
            "replay-sql",
            "--log",
            "old.log",
            "--old",
            &old_url,
            "--new",
            &new.url("postgres"),
        ])
        .never_prints("Sekrit-pw-1")
        .code(1);
    let out = text.stdout();
    assert!(
        out.contains("    value at row 1, column at: old 2026-12-07 | new 07/12/2026"),
        "{out}"
    );
    assert!(
        out.contains("    error on new only: old (answered) | new ERROR:  function legacy_total() does not exist"),
        "{out}"
    );
    assert!(
        out.contains("1 statements with noise (the old server differs from itself"),
        "{out}"
    );
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("differ: 5 of 8 compared statements"),
        "{out}"
    );
}

/// The same server on both sides: every statement answered the same, the noise still noise;
/// a write refused, or with --allow-writes compared and rolled back; a hostile log is trouble
/// naming its lines, a missing server trouble naming it.
#[test]
fn the_same_server_twice_is_the_same_a_write_runs_only_when_allowed_and_rolled_back_and_a_hostile_log_is_trouble()
 {
    let d = TestDir::new();
    let pg = Postgres::start();
    pg.sql("postgres", SCHEMA);
    let log = "\
2026-12-07 07:00:00.000 UTC [1] LOG:  statement: SELECT id, note FROM events ORDER BY id
2026-12-07 07:00:00.000 UTC [1] LOG:  statement: SELECT now()
";
    std::fs::write(d.path().join("ok.log"), log).unwrap();
    let same = test_in(&d)
        .args([
            "compat",
            "replay-sql",
            "--log",
            "ok.log",
            "--old",
            &pg.url("postgres"),
            "--new",
            &pg.url("postgres"),
        ])
        .code(0);
    assert!(
        same.stdout()
            .contains("same: the 2 statements compared were answered the same"),
        "{}",
        same.stdout()
    );

    // A write runs only with --allow-writes, in a transaction rolled back on each side: its
    // answer is compared, and nothing it did remains.
    let writes = "\
2026-12-07 07:00:00.000 UTC [1] LOG:  statement: UPDATE events SET note = 'changed' WHERE id = 1 RETURNING id, note
";
    std::fs::write(d.path().join("writes.log"), writes).unwrap();
    let args = |extra: &'static [&'static str]| {
        let mut a: Vec<String> = [
            "compat",
            "replay-sql",
            "--log",
            "writes.log",
            "--old",
            &pg.url("postgres"),
            "--new",
            &pg.url("postgres"),
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    // Refused: nothing compared, so not "same".
    let refused = test_in(&d).args(args(&[])).code(2);
    let v: serde_json::Value = serde_json::from_str(refused.stdout().trim()).unwrap();
    assert_eq!(
        (v["refused"].as_u64(), v["compared"].as_u64()),
        (Some(1), Some(0))
    );
    let allowed = test_in(&d).args(args(&["--allow-writes"])).code(0);
    let v: serde_json::Value = serde_json::from_str(allowed.stdout().trim()).unwrap();
    assert_eq!(
        (
            v["writes"].as_u64(),
            v["compared"].as_u64(),
            v["same"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{v:#}"
    );
    assert_eq!(
        pg.sql("postgres", "SELECT note FROM events WHERE id = 1"),
        "first",
        "the write was rolled back"
    );

    // What a rollback cannot undo is never replayed, not even with --allow-writes: a psql
    // meta-command (`\!` would be a shell here), COPY … TO PROGRAM, a DO block.
    let planted = d.path().join("planted");
    let p = planted.display();
    let never = format!(
        "2026-12-07 07:00:00.000 UTC [1] LOG:  statement: \\! touch {p}\n\
2026-12-07 07:00:00.000 UTC [1] LOG:  statement: COPY events TO PROGRAM 'touch {p}'\n\
2026-12-07 07:00:00.000 UTC [1] LOG:  statement: DO $$ BEGIN EXECUTE 'COPY events TO PROGRAM ''touch {p}'''; END $$\n"
    );
    std::fs::write(d.path().join("never.log"), never).unwrap();
    let o = test_in(&d)
        .args([
            "compat",
            "replay-sql",
            "--log",
            "never.log",
            "--old",
            &pg.url("postgres"),
            "--new",
            &pg.url("postgres"),
            "--allow-writes",
            "--json",
        ])
        .code(2);
    let v: serde_json::Value = serde_json::from_str(o.stdout().trim()).unwrap();
    assert_eq!(
        (
            v["refused"].as_u64(),
            v["never"].as_u64(),
            v["compared"].as_u64()
        ),
        (Some(3), Some(3), Some(0)),
        "{v:#}"
    );
    assert!(!planted.exists(), "nothing ran: {v:#}");

    // Garbage, an unterminated string, a line of 2 MiB: errors with their lines, no panic.
    let mut hostile = Vec::new();
    hostile.extend_from_slice(b"\x00\xff\xfe garbage\n");
    hostile.extend_from_slice(b"x LOG:  statement: SELECT 'open\n");
    hostile.extend_from_slice(b"x LOG:  statement: SELECT '");
    hostile.extend(std::iter::repeat_n(b'a', 2 << 20));
    hostile.extend_from_slice(b"'\nx LOG:  statement: SELECT 1 AS fine\n");
    std::fs::write(d.path().join("bad.log"), &hostile).unwrap();
    let bad = test_in(&d)
        .args([
            "compat",
            "replay-sql",
            "--log",
            "bad.log",
            "--old",
            &pg.url("postgres"),
            "--new",
            &pg.url("postgres"),
        ])
        .code(2);
    let out = bad.stdout();
    assert!(
        out.contains("2 log entries not readable as a statement:"),
        "{out}"
    );
    assert!(
        out.contains("  line 2: SELECT …: a string starting at byte 7 is not closed"),
        "{out}"
    );
    assert!(
        out.contains("  line 3: the line is longer than 1024 KiB: not read"),
        "{out}"
    );
    assert!(
        out.contains("trouble: 0 statements could not be replayed, 2 log entries"),
        "{out}"
    );

    // A file that holds no statement is trouble, not "same".
    std::fs::write(d.path().join("empty.log"), "nothing here\n").unwrap();
    let empty = test_in(&d)
        .args([
            "compat",
            "replay-sql",
            "--log",
            "empty.log",
            "--old",
            &pg.url("postgres"),
            "--new",
            &pg.url("postgres"),
        ])
        .code(2);
    assert!(
        empty.stdout().contains("the log holds no statement"),
        "{}",
        empty.stdout()
    );
    // A server that cannot be reached is trouble naming it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone = test_in(&d)
        .args([
            "compat",
            "replay-sql",
            "--log",
            "ok.log",
            "--old",
            &pg.url("postgres"),
            "--new",
            &format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        ])
        .code(2);
    assert!(
        gone.stdout().contains(&format!(
            "new: failed to query postgres://postgres@127.0.0.1:{port}/postgres"
        )),
        "{}",
        gone.stdout()
    );
}

/// The `compat-sql` step: the same log replayed against the plan database's two sides; the
/// step fails naming the differing statements, the journal keeps a typed `compat` result
/// (source `sql-log`), and the report shows it.
#[test]
fn a_compat_sql_step_records_its_typed_result_and_the_report_names_the_difference() {
    let d = TestDir::new();
    let (old, new, stderr_log, _) = recorded();
    d.write("logs/old.log", &stderr_log);
    write_plan(
        &d,
        &format!(
            r#"
[[databases]]
id = "app"
engine = "postgresql"
from = "old"
to = "new"
database = "postgres"
user = "postgres"
# Production's servers are elsewhere; the rehearsal reaches the two test servers.
from_port = 1
to_port = 2

[environments.test.databases.app]
from_port = {}
to_port = {}

[[steps]]
id = "old-queries"
do = "compat-sql"
database = "app"
log = "logs/old.log"
"#,
            old.port(),
            new.port()
        ),
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.all().contains(
            "5 of 8 statements answered differently by the two sides of database `app` (1 errors only the new server raises)"
        ),
        "{}",
        o.all()
    );
    let r = crate::compat::journal_compat(&d);
    assert_eq!(r["source"], "sql-log");
    assert!(r["file"].as_str().unwrap().ends_with("logs/old.log"));
    assert_eq!(r["exit_code"], 1);
    assert_eq!(
        (r["compared"].as_u64(), r["differing"].as_u64()),
        (Some(8), Some(5))
    );
    assert_eq!(r["refused_writes"], 1);
    let line = line_of(&stderr_log, "SELECT id, at FROM events");
    let dates = r["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["endpoint"] == format!("log line {line}: SELECT id, at FROM events ORDER BY id")
        })
        .unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(
        dates["differences"][0]["field"],
        "value at row 1, column at"
    );
    assert_eq!(dates["differences"][0]["examples"][0]["old"], "2026-12-07");
    assert_eq!(dates["differences"][0]["examples"][0]["new"], "07/12/2026");
    let o = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 1, "{}", o.all());
    let md = d.read(".rehost/plan/test/report.md");
    for part in [
        "ANSWERS DIFFER",
        "8 distinct compared: 3 the same, 5 differ",
        "value at row 1, column at (1×)",
        "error on new only (1×)",
        "column at, r differs between the two runs on the old server",
        "each statement ran twice on the old server",
        "an UPDATE statement",
    ] {
        assert!(md.contains(part), "missing {part:?} in the report:\n{md}");
    }
}
