//! `rehost verify db` against two real PostgreSQL clusters on loopback: one filled with
//! `pgbench -i` data and a schema of many types, the other restored from its `pg_dump`. Equal
//! first; then each injected difference is found and located by key. `--exercise` reads,
//! changes and adds in a transaction that is rolled back, and nothing remains.

use crate::support::*;
use rehost_test::TestDir;
use rehost_test::postgres::Postgres;
use rehost_test::sshd::Sshd;

/// Tables of many types, a view, a function and a trigger, extra indexes, a table without a
/// primary key and one with a text key.
pub const SCHEMA: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE kinds (
  id bigserial PRIMARY KEY,
  name text NOT NULL,
  odd text,
  amount numeric(12,3) CONSTRAINT amount_positive CHECK (amount >= 0),
  ratio double precision,
  doc json,
  docb jsonb,
  blob bytea,
  tags text[],
  at timestamptz DEFAULT now(),
  day date,
  flag boolean,
  uid uuid UNIQUE,
  num numeric,
  span interval,
  feel mood,
  spot point,
  stamp timestamp,
  clock timetz,
  code char(6),
  small smallint,
  real4 real,
  docs json[]
);
CREATE INDEX kinds_name ON kinds (name);
CREATE INDEX kinds_lower ON kinds (lower(name)) WHERE flag;
CREATE INDEX kinds_docb ON kinds USING gin (docb);
INSERT INTO kinds (name, odd, amount, ratio, doc, docb, blob, tags, at, day, flag, uid,
  num, span, feel, spot, stamp, clock, code, small, real4, docs)
SELECT 'name ' || g,
       E'tab\there, newline\nthere, quote '' " back\\slash, ü, 🐘, ' || g,
       g * 1.125, g / 7.0, json_build_object('g', g, 'list', json_build_array(g, 'x')),
       jsonb_build_object('g', g), decode(md5(g::text), 'hex'), ARRAY['a' || g, NULL, 'c'],
       timestamptz '2024-03-01 12:00:00+01' + g * interval '1 hour 1 second',
       date '2020-01-01' + g, g % 2 = 0, md5(g::text)::uuid,
       g * 1.1, interval '1 day', (enum_range(NULL::mood))[g % 3 + 1], point(g, -g),
       timestamp '2024-03-01 12:00:00' + g * interval '1 second', timetz '12:00:00+01',
       'c' || g % 1000, g % 30000, g / 3.0, ARRAY[json_build_object('g', g)]
FROM generate_series(1, 5000) g;
CREATE TABLE nokey (a int, b text);
INSERT INTO nokey SELECT g % 100, 'row ' || g FROM generate_series(1, 1000) g;
CREATE TABLE tagged (code text PRIMARY KEY, n int NOT NULL);
INSERT INTO tagged SELECT 'code-' || g, g FROM generate_series(1, 3000) g;
CREATE TABLE child (id int PRIMARY KEY, kind_id bigint REFERENCES kinds(id), note varchar(20));
INSERT INTO child SELECT g, g, 'note ' || g FROM generate_series(1, 500) g;
CREATE VIEW flagged AS SELECT id, name FROM kinds WHERE flag;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.at := now(); RETURN NEW; END $$;
CREATE TRIGGER kinds_touch BEFORE UPDATE ON kinds FOR EACH ROW EXECUTE FUNCTION touch();
"#;

/// Old: pgbench data and [`SCHEMA`]; new: restored from old's `pg_dump`.
pub fn migrated(scale: u32) -> (Postgres, Postgres) {
    let (old, new) = (Postgres::start(), Postgres::start());
    old.sql("postgres", "CREATE DATABASE app");
    old.shell(&format!(
        "\"$PGBIN/pgbench\" -i -q -s {scale} -p {} app 2>&1",
        old.port()
    ));
    old.sql("app", SCHEMA);
    new.sql("postgres", "CREATE DATABASE app");
    old.shell(&format!(
        "\"$PGBIN/pg_dump\" -Fc -p {} app | \"$PGBIN/pg_restore\" --exit-on-error -p {} -d app",
        old.port(),
        new.port()
    ));
    (old, new)
}

#[test]
fn a_dump_and_restore_verifies_equal_and_each_injected_difference_is_located() {
    let (old, new) = migrated(1);
    let d = TestDir::new();
    // A password in the URL is taken out at once: never printed.
    let new_url = new.url("app").replace("postgres@", "postgres:hunter2@");
    let ran = test_in(&d)
        .args(["verify", "db", &old.url("app"), &new_url])
        .stdout_has("equal: 8 tables (109511 rows)")
        .never_prints("hunter2")
        .success();
    snap!(ran, "equal");
    let o = ran.out;
    // The verdict names what was not compared (issue 18): PostgreSQL's list, then the tables
    // whose rows can be counted and summed but not located.
    let ran = test_in(&d)
        .args(["verify", "db", &old.url("app"), &new_url, "--json"])
        .never_prints("hunter2")
        .success();
    snap!(ran, "equal_json");
    let doc = db_json(&ran.out);
    assert_eq!(
        doc["not_compared"],
        serde_json::json!([
            "large objects (pg_largeobject)",
            "rows of materialized views and foreign tables (their definitions and owners are compared)",
            "objects that belong to an extension, and their content (the extension's version is compared)",
            "types, domains and enum labels the database defines (columns are compared by type name)",
            "column privileges, row-level security and its policies, rules other than views",
            "comments, statistics objects, operators, casts, collations and text search configurations the database defines",
            "table options: tablespaces, storage parameters, UNLOGGED, partition keys and bounds",
            "publications, subscriptions, foreign servers and user mappings, event triggers",
            "the database's own privileges and settings (CONNECT, ALTER DATABASE … SET) and roles' settings (ALTER ROLE … SET)",
            "roles that no owner, grant or membership of this database names, and every role's password (never read)",
            "the owner and privileges of the public schema (PostgreSQL 15 changed both by design)",
            "the server's configuration (postgresql.conf, pg_hba.conf)",
            "row by row, tables without a usable primary key (counted and summed: a difference is found, not located to rows): public.nokey, public.pgbench_history",
        ]),
        "{doc:#}"
    );
    assert_eq!(
        o.stdout.lines().last().unwrap(),
        doc["summary"].as_str().unwrap(),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.lines().last().unwrap().contains(
            " schema objects; not compared: large objects (pg_largeobject); rows of materialized views"
        ),
        "{}",
        o.stdout
    );

    // Each change on its own: the trigger that sets `at` is held back (replica role), so every
    // changed column is found by itself. Equal by the type's own `=` but not in text (`24.2` and
    // `24.20`, `1 day` and `24 hours`, one instant in another zone) is a change too; so is a
    // pair of values swapped between two rows (a sum of per-column hashes would not see it).
    new.sql(
        "app",
        r#"
        SET session_replication_role = replica;
        DELETE FROM pgbench_accounts WHERE aid = 4242;
        UPDATE pgbench_accounts SET abalance = 7 WHERE aid = 99001;
        UPDATE kinds SET name = 'renamed' WHERE id = 10;
        UPDATE kinds SET odd = odd || E'\u00a0' WHERE id = 11;
        UPDATE kinds SET amount = amount + 0.001 WHERE id = 12;
        UPDATE kinds SET ratio = ratio * (1 + 1e-15) WHERE id = 13;
        UPDATE kinds SET doc = '{"g": 14}' WHERE id = 14;
        UPDATE kinds SET docb = docb || '{"x": 1}' WHERE id = 15;
        UPDATE kinds SET blob = blob || '\x00'::bytea WHERE id = 16;
        UPDATE kinds SET tags = ARRAY['a17', 'c'] WHERE id = 17;
        UPDATE kinds SET day = day + 1 WHERE id = 19;
        UPDATE kinds SET flag = NOT flag WHERE id = 20;
        UPDATE kinds SET uid = md5('other')::uuid WHERE id = 21;
        UPDATE kinds SET at = at + interval '1 microsecond' WHERE id = 18;
        UPDATE kinds SET num = round(num, 2) WHERE id = 22;
        UPDATE kinds SET span = interval '24 hours' WHERE id = 23;
        UPDATE kinds SET feel = CASE feel WHEN 'happy' THEN 'sad' ELSE 'happy' END::mood WHERE id = 24;
        UPDATE kinds SET spot = point(25, 25) WHERE id = 25;
        UPDATE kinds SET stamp = stamp + interval '1 microsecond' WHERE id = 26;
        UPDATE kinds SET clock = timetz '11:00:00+00' WHERE id = 27;
        UPDATE kinds SET code = 'c28x' WHERE id = 28;
        UPDATE kinds SET small = small + 1 WHERE id = 29;
        UPDATE kinds SET real4 = real4 * 1.000001 WHERE id = 30;
        UPDATE kinds SET docs = docs || '{}'::json WHERE id = 31;
        UPDATE tagged SET n = 41 - n WHERE code IN ('code-20', 'code-21');
        INSERT INTO tagged VALUES ('zz-extra', 1);
        DELETE FROM tagged WHERE code = 'code-77';
        DELETE FROM nokey WHERE ctid = (SELECT ctid FROM nokey LIMIT 1);
        ALTER TABLE child ALTER note TYPE text;
        DROP INDEX kinds_name;
        ALTER TABLE kinds DROP CONSTRAINT amount_positive;
        SELECT setval('kinds_id_seq', 1);
        "#,
    );
    let ran = test_in(&d)
        .args(["verify", "db", &old.url("app"), &new.url("app"), "--json"])
        .code(1);
    snap!(ran, "different_json");
    let got = db_findings(&db_json(&ran.out));
    let mut want: Vec<String> = vec![
        "changed column public.child.note".into(),
        "missing constraint public.kinds.amount_positive".into(),
        "missing index public.kinds_name".into(),
        "sequence sequence public.kinds_id_seq".into(),
        "row-count table public.pgbench_accounts".into(),
        "row-missing row public.pgbench_accounts 4242".into(),
        "row-changed row public.pgbench_accounts 99001".into(),
        "row-count table public.nokey".into(),
        "content table public.nokey".into(),
        "row-missing row public.tagged code-77".into(),
        "row-extra row public.tagged zz-extra".into(),
        "row-changed row public.tagged code-20".into(),
        "row-changed row public.tagged code-21".into(),
    ];
    for id in 10..=31 {
        want.push(format!("row-changed row public.kinds {id}"));
    }
    for w in &want {
        assert!(got.contains(w), "{w} not found in {got:#?}");
    }
    assert_eq!(got.len(), want.len(), "{got:#?}");

    // The human report names the same rows.
    let ran = test_in(&d)
        .args(["verify", "db", &old.url("app"), &new.url("app")])
        .stdout_has("row-missing  row public.pgbench_accounts key (aid)=(4242)")
        .code(1);
    snap!(ran, "different");

    // --table limits the comparison.
    let o = rehost(
        &d,
        &[
            "verify",
            "db",
            &old.url("app"),
            &new.url("app"),
            "--table",
            "pgbench_branches",
        ],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    let o = rehost(
        &d,
        &[
            "verify",
            "db",
            &old.url("app"),
            &new.url("app"),
            "--table",
            "nosuch",
        ],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("no table `nosuch`"), "{}", o.stderr);
}

#[test]
fn exercise_reads_changes_and_adds_and_leaves_nothing_behind() {
    let (old, new) = migrated(1);
    let d = TestDir::new();
    let o = rehost(&d, &["verify", "db", &new.url("app"), "--exercise"]);
    assert_eq!(o.code, 0, "{}", o.all());
    for line in [
        "ok      read through index pgbench_accounts_pkey: 1000 rows read, by an index scan",
        "ok      read through index kinds_lower: ",
        "skipped read through index kinds_docb: a gin index",
        "ok      update column bid: 1 row changed",
        "ok      insert a new row: 1 row inserted (from an existing row",
        "table public.nokey",
    ] {
        assert!(o.stdout.contains(line), "{line}\n{}", o.stdout);
    }
    // Nothing remains: contents, schema and sequences as before.
    let o = rehost(&d, &["verify", "db", &old.url("app"), &new.url("app")]);
    assert_eq!(o.code, 0, "{}", o.all());

    // A failure is reported with the server's exact error, and the run goes on.
    new.sql(
        "app",
        "CREATE TABLE strict (id int PRIMARY KEY, n int CHECK (n < 10)); INSERT INTO strict VALUES (1, 9);",
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
    let ops = &doc["tables"][0]["operations"];
    let update = ops
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["what"] == "update column n")
        .unwrap();
    assert_eq!(update["status"], "failed");
    assert_eq!(
        update["detail"],
        "23514 new row for relation \"strict\" violates check constraint \"strict_n_check\""
    );
    assert_eq!(new.sql("app", "SELECT n FROM strict"), "9");
}

/// The application's login and its tables: a `serial` key, an identity key (ALWAYS), and a
/// table the login may read and change but not add to; it may use the sequences (nextval),
/// not set them (setval).
const APP_SCHEMA: &str = r#"
CREATE ROLE app LOGIN;
CREATE TABLE orders (id serial PRIMARY KEY, note text NOT NULL, at timestamptz DEFAULT now());
INSERT INTO orders (note) SELECT 'order ' || g FROM generate_series(1, 200) g;
CREATE TABLE ledger (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, amount numeric(10,2));
INSERT INTO ledger (amount) SELECT g * 1.5 FROM generate_series(1, 200) g;
CREATE TABLE codes (code text PRIMARY KEY, n int);
INSERT INTO codes SELECT 'c' || g, g FROM generate_series(1, 50) g;
GRANT SELECT, INSERT, UPDATE ON orders, ledger, codes TO app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO app;
"#;

fn sequences(pg: &Postgres) -> String {
    pg.sql(
        "app",
        "SELECT last_value, is_called FROM orders_id_seq; SELECT last_value, is_called FROM ledger_id_seq",
    )
}

/// Issue 18: a rolled-back insert still advances a sequence (PostgreSQL's are not
/// transactional). The exercise gives serial and identity columns values of its own, so it
/// advances none, even as a login that may not set them back; a sequence a trigger advances
/// anyway is found by the checksum before and after, and named.
#[test]
fn exercise_advances_no_sequence_and_one_a_trigger_advances_is_named() {
    let pg = Postgres::start();
    pg.sql("postgres", "CREATE DATABASE app");
    pg.sql("app", APP_SCHEMA);
    let before = sequences(&pg);
    let d = TestDir::new();
    let url = format!("postgres://app@127.0.0.1:{}/app", pg.port());
    let o = rehost(&d, &["verify", "db", &url, "--exercise"]);
    assert_eq!(sequences(&pg), before, "{}", o.all());
    assert_eq!(o.code, 0, "{}", o.all());
    for line in [
        "table public.orders\n",
        "table public.ledger\n",
        "ok      insert a new row: 1 row inserted (from an existing row",
        "unchanged: every table's row count and content checksum, every sequence's value and the schema of the whole database, taken before and after the exercise and compared (3 tables, 450 rows, 2 sequences)",
    ] {
        assert!(o.stdout.contains(line), "{line}\n{}", o.stdout);
    }
    assert_eq!(pg.sql("app", "SELECT count(*) FROM orders"), "200");

    // A trigger that takes a number from a sequence of its own: the rollback does not give it
    // back, and rehost says so, naming the sequence.
    pg.sql(
        "app",
        "CREATE SEQUENCE tickets; GRANT USAGE ON SEQUENCE tickets TO app;
         CREATE FUNCTION take_ticket() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM nextval('public.tickets'); RETURN NEW; END $$;
         CREATE TRIGGER orders_ticket BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION take_ticket();",
    );
    let o = rehost(&d, &["verify", "db", &url, "--exercise", "--json"]);
    assert_eq!(o.code, 1, "{}", o.all());
    let doc = db_json(&o);
    let u = &doc["unchanged"];
    assert_eq!(u["equal"], false, "{doc:#}");
    assert_ne!(u["before"], u["after"], "{doc:#}");
    let left: Vec<String> = u["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {} {}", f["class"], f["kind"], f["name"]))
        .collect();
    assert_eq!(
        left,
        ["\"sequence\" \"sequence\" \"public.tickets\""],
        "{doc:#}"
    );
    assert!(
        doc["summary"]
            .as_str()
            .unwrap()
            .contains("the exercise LEFT CHANGES BEHIND"),
        "{doc:#}"
    );
    assert_eq!(sequences(&pg), before);

    // A login that may not read a table cannot have its exercise checked: refused before
    // anything is changed, naming what it could not read.
    pg.sql("app", "REVOKE SELECT ON codes FROM app");
    let o = rehost(&d, &["verify", "db", &url, "--exercise"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("permission denied for table codes")
            && o.stderr
                .contains("while taking the checksum before the exercise"),
        "{}",
        o.stderr
    );
    assert_eq!(sequences(&pg), before);
    assert_eq!(pg.sql("app", "SELECT count(*) FROM orders"), "200");
}

/// The exercise's new row takes a unique text key the table does not hold, however short the
/// keys are: here 15 of the 16 one-digit hex keys are taken, and a random pick collided 15
/// times in 16 (an exercise failed now and then on `codes`' two-character keys).
#[test]
fn exercise_finds_a_free_key_among_short_text_keys() {
    let pg = Postgres::start();
    pg.sql("postgres", "CREATE DATABASE app");
    pg.sql(
        "app",
        "CREATE TABLE letters (k char(1) PRIMARY KEY, n int);\n\
         INSERT INTO letters SELECT substr('0123456789abcde', g, 1), g FROM generate_series(1, 15) g;",
    );
    let d = TestDir::new();
    let url = format!("postgres://postgres@127.0.0.1:{}/app", pg.port());
    for _ in 0..3 {
        let o = rehost(&d, &["verify", "db", &url, "--exercise", "--json"]);
        assert_eq!(o.code, 0, "{}", o.all());
        let doc = db_json(&o);
        let ops = doc["tables"][0]["operations"].as_array().unwrap();
        assert_eq!(ops.len(), 3, "{doc}");
        assert!(ops.iter().all(|op| op["status"] == "ok"), "{doc}");
    }
}

/// Issue 18: `exercise = true` in a `verify-db` step, as the application's login (not the
/// verifying superuser): the outcome is in the journal and the report; a login that may not
/// add to a table fails the step, naming the table and the operation.
#[test]
fn verify_db_step_exercises_the_copy_as_the_application_login() {
    let (old, new) = (Postgres::start(), Postgres::start());
    for pg in [&old, &new] {
        pg.sql("postgres", "CREATE ROLE app LOGIN; CREATE DATABASE app");
    }
    old.sql("app", &APP_SCHEMA.replace("CREATE ROLE app LOGIN;", ""));
    old.shell(&format!(
        "\"$PGBIN/pg_dump\" -Fc -p {} app | \"$PGBIN/pg_restore\" --exit-on-error -p {} -d app",
        old.port(),
        new.port()
    ));
    let body = format!(
        r#"
[[databases]]
id = "app"
engine = "postgresql"
from = "old"
to = "new"
database = "app"
user = "postgres"
from_port = {}
to_port = {}

[[steps]]
id = "verify-app"
do = "verify-db"
database = "app"
exercise = true
exercise_user = "app"
"#,
        old.port(),
        new.port()
    );
    let d = TestDir::new();
    write_plan(&d, &body);
    let o = rehost(&d, &["run", "plan.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("exercised as app: 3 tables, ")
            && o.stdout.contains(
                "0 failed, 0 skipped; the database unchanged by checksum before and after"
            ),
        "{}",
        o.stdout
    );
    let journal = journal_text(&d);
    assert!(journal.contains("\"exercise\":{"), "{journal}");
    assert!(journal.contains("\"login\":\"app\""), "{journal}");
    assert!(journal.contains("\"unchanged\":true"), "{journal}");
    let o = rehost(&d, &["report", "plan.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let md = std::fs::read_to_string(d.join(".rehost/plan/production/report.md")).unwrap();
    assert!(
        md.contains("exercise: read, modify, add passed; database unchanged"),
        "{md}"
    );
    assert!(md.contains("as the application's login app"), "{md}");
    assert!(
        md.contains("yes: the checksum after equals the one before (BLAKE3 "),
        "{md}"
    );

    // The application may not add to `codes` on the new server.
    new.sql("app", "REVOKE INSERT ON codes FROM app");
    let d = TestDir::new();
    write_plan(&d, &body);
    let o = rehost(&d, &["run", "plan.toml"]);
    assert_ne!(o.code, 0, "{}", o.all());
    assert!(
        o.all().contains(
            "1 failed (first: public.codes insert a new row: 42501 permission denied for table codes)"
        ),
        "{}",
        o.all()
    );
    let journal = journal_text(&d);
    assert!(journal.contains("\"failed\":1"), "{journal}");
    assert!(
        journal.contains(
            "\"table\":\"public.codes\",\"operation\":\"insert a new row\",\"status\":\"failed\""
        ),
        "{journal}"
    );
    rehost(&d, &["report", "plan.toml"]);
    let md = std::fs::read_to_string(d.join(".rehost/plan/production/report.md")).unwrap();
    assert!(md.contains("exercise: 1 OPERATION(S) FAILED"), "{md}");
    assert!(
        md.contains(
            "| public.codes | insert a new row | failed | 42501 permission denied for table codes |"
        ),
        "{md}"
    );
}

fn journal_text(d: &TestDir) -> String {
    std::fs::read_dir(d.join(".rehost/plan/production"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect()
}

#[test]
fn verify_db_through_an_ssh_host_and_trouble_is_exit_2() {
    let (old, new) = migrated(1);
    let sshd = Sshd::start();
    let d = TestDir::new();
    let config = sshd.ssh_config().display().to_string();
    let remote = format!("{}:{}", sshd.destination(), new.url("app"));
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
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains(&format!("new: {}:", sshd.destination())),
        "{}",
        o.stdout
    );

    // Unreachable server, password never shown.
    let o = rehost(
        &d,
        &[
            "verify",
            "db",
            &old.url("app"),
            "postgres://u:hunter2@127.0.0.1:1/app",
        ],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(!o.all().contains("hunter2"), "{}", o.all());
    assert!(
        o.stderr
            .contains("failed to verify postgres://u:***@127.0.0.1:1/app"),
        "{}",
        o.stderr
    );
}

/// A `verify-db` step between two ssh hosts, each database listening on its host's loopback
/// only: each side is queried by psql through that host's agent. The result is the step's
/// journal record; the password file's content is nowhere.
#[test]
fn verify_db_step_between_two_ssh_hosts() {
    let (old, new) = migrated(1);
    let (so, sn) = (Sshd::start(), Sshd::start());
    let d = TestDir::new();
    let pwfile = d.write("pw", "not-a-real-secret-4711\n");
    let plan = |dir: &TestDir| {
        dir.write(
            "plan.toml",
            ssh_plan(
                &so,
                &sn,
                &verify_db_body("postgresql", "postgres", (old.port(), new.port()), &pwfile),
            ),
        )
    };
    plan(&d);
    let o = rehost(&d, &["run", "plan.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout
            .contains("database `app` verified on new: equal: 8 tables"),
        "{}",
        o.stdout
    );
    let journal = std::fs::read_dir(d.join(".rehost/plan/production"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(journal.contains("\"equal\":true"), "{journal}");
    assert!(journal.contains("\"database\":\"app\""), "{journal}");
    // The whole secret: its last digits alone turn up in the journal's hex digests by chance.
    assert!(!journal.contains("not-a-real-secret"), "{journal}");
    assert!(!o.all().contains("not-a-real-secret"), "{}", o.all());

    // A row left behind fails the gate, named by its key.
    new.sql("app", "DELETE FROM pgbench_accounts WHERE aid = 31337");
    let d2 = TestDir::new();
    d2.write("pw", "not-a-real-secret-4711\n");
    plan(&d2);
    let o = rehost(&d2, &["run", "plan.toml"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.all()
            .contains("row-missing  row public.pgbench_accounts key (aid)=(31337)"),
        "{}",
        o.all()
    );
    assert!(
        o.stderr.contains("database `app` on new differs from old"),
        "{}",
        o.stderr
    );
}

/// `pg_upgrade` keeps the data files, not their text: verify the upgraded cluster equal to the
/// original, then find a difference made after the upgrade. Debian 12 packages one major
/// version (15) only, so this upgrades 15 to 15, which pg_upgrade allows (it refuses only a
/// downgrade, and an upgrade within one catalog version when tablespaces are used); across two
/// major versions the row hashes stay comparable because they are the hash functions that hash
/// partitions depend on, which PostgreSQL keeps stable for pg_upgrade (see docs/db.md).
#[test]
fn pg_upgrade_verifies_equal_and_a_later_difference_is_located() {
    let mut old = Postgres::start();
    old.sql("postgres", "CREATE DATABASE app");
    old.shell(&format!(
        "\"$PGBIN/pgbench\" -i -q -s 1 -p {} app 2>&1",
        old.port()
    ));
    old.sql("app", SCHEMA);
    let new = old.upgrade("--copy");
    let d = TestDir::new();
    let o = rehost(&d, &["verify", "db", &old.url("app"), &new.url("app")]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("equal: 8 tables (109511 rows)"),
        "{}",
        o.all()
    );

    new.sql(
        "app",
        r#"
        SET session_replication_role = replica;
        UPDATE pgbench_accounts SET filler = 'x' WHERE aid = 777;
        UPDATE kinds SET odd = replace(odd, '🐘', '🐘 ') WHERE id = 5;
        DELETE FROM tagged WHERE code = 'code-9';
        "#,
    );
    let o = rehost(
        &d,
        &["verify", "db", &old.url("app"), &new.url("app"), "--json"],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    let mut got = db_findings(&db_json(&o));
    got.sort();
    assert_eq!(
        got,
        vec![
            "row-changed row public.kinds 5",
            "row-changed row public.pgbench_accounts 777",
            "row-count table public.tagged",
            "row-missing row public.tagged code-9",
        ],
        "{}",
        o.all()
    );
}

/// Roles, owners and privileges an application depends on: a group that owns the schema and
/// its table, a login in the group with a password, grants to it, and a function nobody else
/// may execute.
const ACCESS: &str = r#"
CREATE ROLE app_group NOLOGIN;
CREATE ROLE web LOGIN PASSWORD 'swordfish' CONNECTION LIMIT 20 IN ROLE app_group;
CREATE SCHEMA shop AUTHORIZATION app_group;
CREATE TABLE shop.orders (id int PRIMARY KEY, total numeric);
ALTER TABLE shop.orders OWNER TO app_group;
INSERT INTO shop.orders SELECT g, g * 1.5 FROM generate_series(1, 100) g;
GRANT SELECT, INSERT ON shop.orders TO web;
GRANT USAGE ON SCHEMA shop TO web;
CREATE FUNCTION shop.secret() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';
REVOKE EXECUTE ON FUNCTION shop.secret() FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE app_group IN SCHEMA shop GRANT SELECT ON TABLES TO web;
ALTER DEFAULT PRIVILEGES FOR ROLE app_group REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
"#;

#[test]
fn roles_owners_and_privileges_lost_by_a_restore_without_roles_are_found() {
    let (old, new, bare) = (Postgres::start(), Postgres::start(), Postgres::start());
    old.sql("postgres", "CREATE DATABASE app");
    old.sql("app", ACCESS);
    // Migrated whole: the roles first (pg_dumpall --globals-only; `postgres` exists already,
    // which psql reports and goes on), then the database with its owners and privileges.
    new.shell(&format!(
        "\"$PGBIN/pg_dumpall\" -g -p {} | \"$PGBIN/psql\" -q -p {} -d postgres >/dev/null 2>&1; \
         \"$PGBIN/psql\" -q -p {} -d postgres -c 'CREATE DATABASE app' && \
         \"$PGBIN/pg_dump\" -Fc -p {} app | \"$PGBIN/pg_restore\" --exit-on-error -p {} -d app",
        old.port(),
        new.port(),
        new.port(),
        old.port(),
        new.port()
    ));
    // The usual mistake: the database alone, restored by the superuser without the roles.
    bare.sql("postgres", "CREATE DATABASE app");
    bare.shell(&format!(
        "\"$PGBIN/pg_dump\" -Fc -p {} app | \"$PGBIN/pg_restore\" --no-owner --no-privileges --exit-on-error -p {} -d app",
        old.port(),
        bare.port()
    ));
    let d = TestDir::new();
    let o = rehost(&d, &["verify", "db", &old.url("app"), &new.url("app")]);
    assert_eq!(o.code, 0, "{}", o.all());

    let o = rehost(
        &d,
        &["verify", "db", &old.url("app"), &bare.url("app"), "--json"],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    assert!(!o.all().contains("swordfish"), "{}", o.all());
    assert!(!o.all().contains("SCRAM"), "{}", o.all());
    let doc = db_json(&o);
    assert_eq!(
        db_findings(&doc),
        [
            "changed owner schema shop",
            "changed owner shop.orders",
            "missing privileges default privileges of app_group in schema shop on tables",
            "missing privileges default privileges of app_group on functions",
            "missing privileges schema shop",
            "missing privileges shop.orders",
            "missing privileges shop.secret()",
            "missing role app_group",
            "missing role web",
        ],
        "{doc:#}"
    );
    let text = |kind: &str, name: &str, side: &str| -> String {
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == kind && f["name"] == name)
            .map(|f| f[side].as_str().unwrap_or("").to_owned())
            .unwrap_or_default()
    };
    for (kind, name, side, want) in [
        ("owner", "shop.orders", "old", "app_group"),
        ("owner", "shop.orders", "new", "postgres"),
        ("privileges", "schema shop", "old", "granted to web: USAGE"),
        (
            "privileges",
            "shop.orders",
            "old",
            "granted to web: INSERT SELECT",
        ),
        (
            "privileges",
            "shop.secret()",
            "old",
            "revoked from PUBLIC: EXECUTE",
        ),
        (
            "role",
            "web",
            "old",
            "login, connection limit 20, member of app_group",
        ),
        ("role", "app_group", "old", "nologin"),
        (
            "privileges",
            "default privileges of app_group in schema shop on tables",
            "old",
            "granted to web: SELECT",
        ),
        (
            "privileges",
            "default privileges of app_group on functions",
            "old",
            "revoked from PUBLIC: EXECUTE",
        ),
    ] {
        assert_eq!(text(kind, name, side), want, "{kind} {name} on {side}");
    }
}
