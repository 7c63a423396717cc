//! Unit and property tests of the pure plan core.

use super::*;
use proptest::prelude::*;

const HEAD: &str = r#"
[migration]
title = "t"
window = { start = "2020-01-01T00:00:00Z", end = "2099-01-01T00:00:00Z" }
max_downtime = "15m"
[hosts.old]
local = true
[environments.test]
old = { local = true, root = "/tmp/x" }
"#;

/// A plan of `deps.len()` wait steps where step i depends on the steps in `deps[i]`.
fn plan_with(deps: &[Vec<usize>]) -> String {
    let mut s = HEAD.to_owned();
    for (i, d) in deps.iter().enumerate() {
        let after: Vec<String> = d.iter().map(|j| format!("\"s{j}\"")).collect();
        s.push_str(&format!(
            "[[steps]]\nid = \"s{i}\"\ndo = \"wait\"\nduration = \"1s\"\nafter = [{}]\n",
            after.join(", ")
        ));
    }
    s
}

fn backward_deps() -> impl Strategy<Value = Vec<Vec<usize>>> {
    (1usize..30).prop_flat_map(|n| {
        (0..n)
            .map(|i| {
                if i == 0 {
                    Just(Vec::new()).boxed()
                } else {
                    proptest::collection::vec(0..i, 0..4).boxed()
                }
            })
            .collect::<Vec<_>>()
    })
}

proptest! {
    #[test]
    fn valid_orderings_are_always_accepted(deps in backward_deps()) {
        let c = check(&plan_with(&deps));
        prop_assert!(c.errors.is_empty(), "{:?}", c.errors);
    }

    #[test]
    fn forward_references_are_always_rejected(deps in backward_deps(), pick in any::<prop::sample::Index>(), target in any::<prop::sample::Index>()) {
        let n = deps.len();
        prop_assume!(n >= 2);
        let from = pick.index(n - 1);
        let to = from + 1 + target.index(n - from - 1);
        let mut deps = deps;
        deps[from].push(to);
        let c = check(&plan_with(&deps));
        let msg = format!("step `s{from}` (#{}) depends on step `s{to}` (#{})", from + 1, to + 1);
        prop_assert!(
            c.errors.iter().any(|e| e.code == "forward-dependency" && e.message.contains(&msg)),
            "{:?}", c.errors
        );
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = check(&text);
    }
}

#[test]
fn durations_round_trip() {
    for s in ["15m", "1h 30m", "45s", "2d", "250ms", "1h 1s"] {
        let d = parse_duration(s).unwrap();
        assert_eq!(parse_duration(&format_duration(d)), Some(d), "{s}");
    }
    assert_eq!(format_duration(parse_duration("90m").unwrap()), "1h 30m");
    assert!(parse_duration("soon").is_none());
    assert!(parse_duration("-5m").is_none());
}

#[test]
fn line_and_column_are_one_based_in_characters() {
    let m = SourceMap::new("ab\nçd = 1\n");
    assert_eq!(m.line_col(0), (1, 1));
    assert_eq!(m.line_col(3), (2, 1));
    assert_eq!(m.line_col(5), (2, 2));
    assert_eq!(m.line_text(2), "çd = 1");
}

#[test]
fn a_thousand_step_plan_checks() {
    let deps: Vec<Vec<usize>> = (0..1000)
        .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
        .collect();
    let c = check(&plan_with(&deps));
    assert!(c.errors.is_empty());
    assert_eq!(c.plan.unwrap().steps.len(), 1000);
}

#[test]
fn environments_map_hosts() {
    let c = check(&plan_with(&[vec![]]));
    let plan = c.plan.unwrap();
    let test = plan.hosts_for(Some("test")).unwrap();
    assert_eq!(
        test[0].1,
        HostTarget::Local {
            root: Some("/tmp/x".into())
        }
    );
    assert!(plan.hosts_for(Some("nope")).is_none());
}

#[test]
fn redact_hides_credential_assignments_and_url_passwords() {
    let cases = [
        ("PGPASSWORD=hunter2 pg_dump db", "PGPASSWORD=*** pg_dump db"),
        (
            "env MYSQL_PWD='a b c' mysqldump x",
            "env MYSQL_PWD=*** mysqldump x",
        ),
        ("api_token=\"t 1\"; echo ok", "api_token=***; echo ok"),
        ("curl --password=pw -H x", "curl --password=*** -H x"),
        (
            "AWS_SECRET_ACCESS_KEY=abc aws s3 ls",
            "AWS_SECRET_ACCESS_KEY=*** aws s3 ls",
        ),
        ("x Authorization=Bearer", "x Authorization=***"),
        ("psql postgres://u:pw@db/x", "psql postgres://u:***@db/x"),
        (
            "psql 'postgres://u:p@ss@db:5432/x'",
            "psql 'postgres://u:***@db:5432/x'",
        ),
        (
            "DATABASE_URL=mysql://root:hunter2@h app",
            "DATABASE_URL=mysql://root:***@h app",
        ),
        // Not credentials: kept as they are.
        ("rsync -a /srv/ new:/srv/", "rsync -a /srv/ new:/srv/"),
        ("LANG=C sort x", "LANG=C sort x"),
        (
            "curl https://user@host/x https://h/y",
            "curl https://user@host/x https://h/y",
        ),
        ("echo a==b", "echo a==b"),
        // Issue 18: the shapes that leaked.
        ("pg_dump --password hunter2 db", "pg_dump --password *** db"),
        ("mysql -uroot -phunter2 db", "mysql -uroot -p*** db"),
        // A password that holds a credential's name is still the password, not an option.
        ("mysql -psecretpw -e x", "mysql -p*** -e x"),
        ("mariadb -pMyToken1 db", "mariadb -p*** db"),
        ("mysql -uroot -p db", "mysql -uroot -p db"),
        ("cp -pr a b", "cp -pr a b"),
        ("sshpass -p hunter2 ssh h", "sshpass -p *** ssh h"),
        ("vault --token hunter2 read x", "vault --token *** read x"),
        (
            "curl -H 'Authorization: Bearer hunter2' https://h/",
            "curl -H 'Authorization: Bearer ***' https://h/",
        ),
        (
            "curl -H \"Authorization:Bearer hunter2\" -H 'Cookie: s=hunter3' x",
            "curl -H \"Authorization:Bearer ***\" -H 'Cookie: ***' x",
        ),
        (
            "psql \"host=db user=u password=hunter2 dbname=x\"",
            "psql \"host=db user=u password=*** dbname=x\"",
        ),
        (
            "psql 'host=db password = hunter2 dbname=x'",
            "psql 'host=db password = *** dbname=x'",
        ),
        (
            "sh -c 'PGPASSWORD=hunter2 pg_dump db' && true",
            "sh -c 'PGPASSWORD=*** pg_dump db' && true",
        ),
        ("curl https://u:p/w@rd@h/x", "curl https://u:***@h/x"),
        (
            "rsync -a keyhost:/srv/ /srv/",
            "rsync -a keyhost:/srv/ /srv/",
        ),
        ("pg_dump --no-password -h db", "pg_dump --no-password -h db"),
        ("mysql --password-file=/etc/pw", "mysql --password-file=***"),
        ("x --key-file /etc/k", "x --key-file /etc/k"),
    ];
    for (input, want) in cases {
        assert_eq!(redact(input), want, "{input}");
    }
    assert!(is_secret_name("pgpassword") && is_secret_name("Db_Passwd") && !is_secret_name("PATH"));
}

proptest::proptest! {
    /// Issue 18: a random secret in each shape a command line passes one in never survives
    /// redaction, wherever the shape stands in the line and however the line is quoted.
    #[test]
    fn redact_hides_a_secret_in_every_shape(
        secret in "[A-Za-z0-9][A-Za-z0-9.,:@%+=_~^!*/-]{7,23}",
        shape in 0usize..12,
        quote in 0usize..3,
        before in "(true|ls -l|cd /srv)",
        after in "(| db| -h db x| ; echo done| \\| gzip)",
    ) {
        let url_secret = secret.replace(['/', '@', ':'], "x");
        let s = secret.as_str();
        let line = match shape {
            0 => format!("pg_dump --password {s}"),
            1 => format!("mysqldump -uroot -p{s}"),
            2 => format!("vault read --token {s}"),
            3 => format!("curl -H 'Authorization: Bearer {s}'"),
            4 => format!("mysql --password={s}"),
            5 => format!("PGPASSWORD={s} pg_dump"),
            6 => format!("psql postgres://app:{url_secret}@db:5432/shop"),
            7 => format!("psql \"host=db user=app password={s} dbname=shop\""),
            8 => format!("psql 'host=db password = {s}'"),
            9 => format!("curl -H \"Cookie: session={s}\""),
            10 => format!("sshpass -p {s} ssh db"),
            _ => format!("MYSQL_PWD={s} mariadb-dump shop"),
        };
        let line = match quote {
            0 => format!("{before} && {line}{after}"),
            1 => format!("sh -c \"{}\"{after}", line.replace('"', "\\\"")),
            _ => format!("{line}\n{before}{after}"),
        };
        let secret = if shape == 6 { url_secret } else { secret };
        let r = redact(&line);
        proptest::prop_assert!(!r.contains(&secret), "{line} → {r}");
    }
}

#[test]
fn escape_control_escapes_c0_c1_and_bidi_controls() {
    let s = "a\x1b[2Jb\u{9b}c\u{202e}d\u{2066}e\u{200f}f\u{061c}g\th\n\u{7f}";
    let e = escape_control(s);
    assert_eq!(
        e,
        "a\\u{1b}[2Jb\\u{9b}c\\u{202e}d\\u{2066}e\\u{200f}f\\u{61c}g\th\\n\\u{7f}"
    );
    assert!(!e.chars().any(|c| c.is_control() && c != '\t'));
    assert_eq!(escape_control("plain ümlaut"), "plain ümlaut");
}

const DB_PLAN: &str = r#"
[hosts.new]
local = true
[environments.test.new]
local = true
root = "/tmp/y"
[[databases]]
id = "shop"
engine = "postgresql"
from = "old"
to = "new"
database = "shop"
user = "verify"
from_port = 5433
port = 5432
password_file = "/etc/rehost/shop.pw"
"#;

#[test]
fn a_verify_db_step_reads_its_database_and_connection() {
    let src =
        format!("{HEAD}{DB_PLAN}[[steps]]\nid = \"v\"\ndo = \"verify-db\"\ndatabase = \"shop\"\n");
    let c = check(&src);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let plan = c.plan.unwrap();
    assert_eq!(
        plan.steps[0].kind,
        StepKind::VerifyDb {
            database: "shop".into(),
            exercise: None
        }
    );
    assert!(plan.steps[0].idempotent);
    let db = plan.database("shop").unwrap();
    // The engine is parsed once, here; the URL each side connects with is rehost-db's
    // (`ConnInfo::of`, tested there).
    assert_eq!(db.kind, Some(Engine::Postgres));
    assert_eq!(db.engine, "postgresql");
    assert_eq!(
        (db.effective_port(false), db.effective_port(true)),
        (Some(5433), Some(5432))
    );
    assert_eq!(
        (db.name_on(false), db.name_on(true)),
        (Some("shop"), Some("shop"))
    );
    assert_eq!(db.user.as_deref(), Some("verify"));
    assert_eq!(db.password_file.as_deref(), Some("/etc/rehost/shop.pw"));
}

/// The plan's `engine` key is parsed into the one [`Engine`] type, in any case and under its
/// other names; an engine `verify-db` cannot compare is `None`, not an error.
#[test]
fn a_database_engine_is_parsed_once_into_its_type() {
    for (written, kind, port) in [
        ("postgresql", Some(Engine::Postgres), Some(5432)),
        ("Postgres", Some(Engine::Postgres), Some(5432)),
        ("pg", Some(Engine::Postgres), Some(5432)),
        ("mariadb", Some(Engine::Mysql), Some(3306)),
        ("MySQL", Some(Engine::Mysql), Some(3306)),
        ("sqlite", Some(Engine::Sqlite), None),
        ("sqlite3", Some(Engine::Sqlite), None),
        ("redis", None, Some(5432)),
    ] {
        let src = format!(
            "{HEAD}[hosts.new]\nlocal = true\n[environments.test.new]\nlocal = true\nroot = \"/tmp/y\"\n[[databases]]\nid = \"d\"\nengine = \"{written}\"\nfrom = \"old\"\nto = \"new\"\n"
        );
        let c = check(&src);
        assert!(c.errors.is_empty(), "{written}: {:?}", c.errors);
        let plan = c.plan.unwrap();
        let db = plan.database("d").unwrap();
        assert_eq!(db.kind, kind, "{written}");
        assert_eq!(db.engine, written);
        assert_eq!(db.effective_port(true), port, "{written}");
    }
}

/// Issue 18: `exercise = true` in a `verify-db` step, with the application's login; its keys
/// without `exercise = true` are errors, and a step without them keeps its digest's shape.
#[test]
fn a_verify_db_step_reads_its_exercise_and_login() {
    let step = "[[steps]]\nid = \"v\"\ndo = \"verify-db\"\ndatabase = \"shop\"\n";
    let src = format!(
        "{HEAD}{DB_PLAN}{step}exercise = true\nexercise_user = \"shop_app\"\nexercise_password_file = \"/etc/shop/db.pw\"\n"
    );
    let c = check(&src);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(
        c.plan.unwrap().steps[0].kind,
        StepKind::VerifyDb {
            database: "shop".into(),
            exercise: Some(DbExercise {
                user: Some("shop_app".into()),
                password_file: Some("/etc/shop/db.pw".into()),
            })
        }
    );
    let c = check(&format!("{HEAD}{DB_PLAN}{step}exercise = true\n"));
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(
        c.plan.unwrap().steps[0].kind,
        StepKind::VerifyDb {
            database: "shop".into(),
            exercise: Some(DbExercise::default())
        }
    );
    let c = check(&format!(
        "{HEAD}{DB_PLAN}{step}exercise_user = \"shop_app\"\n"
    ));
    let text: Vec<String> = c.errors.iter().map(|e| e.message.clone()).collect();
    assert!(
        text.iter()
            .any(|m| m.contains("key `exercise_user` applies only with `exercise = true`")),
        "{text:?}"
    );
    // Without an exercise the kind serialises as before (the journal's step digests).
    let kind = StepKind::VerifyDb {
        database: "shop".into(),
        exercise: None,
    };
    assert_eq!(
        serde_json::to_string(&kind).unwrap(),
        r#"{"do":"verify-db","database":"shop"}"#
    );
}

#[test]
fn a_password_in_the_plan_and_an_unknown_database_are_errors() {
    let src = format!(
        "{HEAD}{DB_PLAN}password = \"hunter2\"\n[[steps]]\nid = \"v\"\ndo = \"verify-db\"\ndatabase = \"shoop\"\n"
    );
    let c = check(&src);
    let text: Vec<String> = c.errors.iter().map(|e| e.message.clone()).collect();
    assert!(
        text.iter()
            .any(|m| m.contains("a password is never written in the plan")),
        "{text:?}"
    );
    assert!(!text.iter().any(|m| m.contains("hunter2")), "{text:?}");
    let c = check(&src.replace("password = \"hunter2\"\n", ""));
    let text: Vec<String> = c.errors.iter().map(|e| e.message.clone()).collect();
    assert!(text.iter().any(|m| m.contains("shoop")), "{text:?}");
}

/// Issue 18: database locations differ per environment. A rehearsal names its own port and
/// database whole: `port` there replaces production's `from_port` too.
#[test]
fn an_environment_places_its_databases_itself() {
    let src = format!(
        "{HEAD}{DB_PLAN}[environments.test.databases.shop]\nport = 6543\ndatabase = \"shop_rehearsal\"\nuser = \"rehearse\"\n[[steps]]\nid = \"v\"\ndo = \"verify-db\"\ndatabase = \"shop\"\n"
    );
    let c = check(&src);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let plan = c.plan.unwrap();
    let prod = plan.database_in("shop", None).unwrap();
    assert_eq!(prod.effective_port(false), Some(5433));
    assert_eq!(prod.name_on(false), Some("shop"));
    assert_eq!(prod.user.as_deref(), Some("verify"));
    let test = plan.database_in("shop", Some("test")).unwrap();
    for to in [false, true] {
        assert_eq!(test.effective_port(to), Some(6543));
        assert_eq!(test.name_on(to), Some("shop_rehearsal"));
    }
    assert_eq!(test.user.as_deref(), Some("rehearse"));
    assert_eq!(test.password_file.as_deref(), Some("/etc/rehost/shop.pw"));
    assert_eq!(test.kind, Some(Engine::Postgres));
    assert_eq!(test.effective_port(false), Some(6543));

    // An unknown database id, a misspelt key and a password are errors, the password unprinted.
    let bad = src
        .replace("databases.shop]", "databases.shoop]")
        .replace("user = \"rehearse\"", "usr = \"x\"\npassword = \"hunter2\"");
    let c = check(&bad);
    let text: Vec<String> = c
        .errors
        .iter()
        .map(|e| format!("{} {}", e.message, e.help.clone().unwrap_or_default()))
        .collect();
    assert!(
        text.iter()
            .any(|m| m.contains("shoop") && m.contains("did you mean `shop`?")),
        "{text:?}"
    );
    assert!(text.iter().any(|m| m.contains("`usr`")), "{text:?}");
    assert!(
        text.iter()
            .any(|m| m.contains("a password is never written in the plan")),
        "{text:?}"
    );
    assert!(!text.iter().any(|m| m.contains("hunter2")), "{text:?}");
}

const PROBE_HOSTS: &str =
    "[hosts.new]\nlocal = true\n[environments.test.new]\nlocal = true\nroot = \"/tmp/y\"\n";

fn probe_plan(probe: &str) -> String {
    format!(
        "{HEAD}{PROBE_HOSTS}[[services]]\nid = \"web\"\nhost = \"old\"\nnew_host = \"new\"\nprobe = {probe}\n"
    )
}

#[test]
fn a_service_probe_reads_each_kind_with_its_defaults() {
    let cases = [
        ("{ tcp = 5432 }", ProbeCheck::Tcp { port: 5432 }),
        (
            "{ http = \"/health\", port = 8080, body = \"ok\" }",
            ProbeCheck::Http {
                port: 8080,
                path: "/health".into(),
                status: 200,
                body: Some("ok".into()),
            },
        ),
        (
            "{ http = \"http://{host}:81/a?b=c\", status = 204 }",
            ProbeCheck::Http {
                port: 81,
                path: "/a?b=c".into(),
                status: 204,
                body: None,
            },
        ),
        (
            "{ http = \"http://{host}\" }",
            ProbeCheck::Http {
                port: 80,
                path: "/".into(),
                status: 200,
                body: None,
            },
        ),
        (
            "{ command = \"pg_isready -h {host}\" }",
            ProbeCheck::Command {
                command: "pg_isready -h {host}".into(),
            },
        ),
    ];
    for (text, want) in cases {
        let c = check(&probe_plan(text));
        assert!(c.errors.is_empty(), "{text}: {:?}", c.errors);
        let plan = c.plan.unwrap();
        let svc = plan.service("web").unwrap();
        assert_eq!(svc.new_host.as_deref(), Some("new"));
        let p = svc.probe.as_ref().unwrap();
        assert_eq!(format!("{:?}", p.check), format!("{want:?}"), "{text}");
        assert_eq!(p.interval, std::time::Duration::from_millis(200));
        assert_eq!(p.timeout, std::time::Duration::from_secs(1));
    }
    let c = check(&probe_plan(
        "{ tcp = 1, interval = \"50ms\", timeout = \"300ms\" }",
    ));
    let plan = c.plan.unwrap();
    let p = plan.service("web").unwrap().probe.clone().unwrap();
    assert_eq!(p.interval, std::time::Duration::from_millis(50));
    assert_eq!(p.timeout, std::time::Duration::from_millis(300));
    let c = check(&probe_plan("{ tcp = 1 }").replace(
        "[environments.test.new]\n",
        "[environments.test.new]\naddress = \"127.0.0.2\"\n",
    ));
    let plan = c.plan.unwrap();
    let addr = |env, h| plan.host_decl(env, h).and_then(|d| d.address.clone());
    assert_eq!(addr(Some("test"), "new").as_deref(), Some("127.0.0.2"));
    assert_eq!(addr(None, "new"), None);
}

/// Every wrong probe is refused with its line and what to write instead.
#[test]
fn a_wrong_probe_is_refused_naming_the_key() {
    for (text, code, message) in [
        ("{ tpc = 1 }", "unknown-key", "unknown key `tpc`"),
        ("{ tcp = 1, http = \"/\" }", "conflict", "not tcp and http"),
        ("{ tcp = 70000 }", "value", "port 70000 is out of range"),
        ("{ http = \"/h\" }", "value", "is a path and needs `port`"),
        (
            "{ http = \"http://example.org/h\" }",
            "value",
            "names a host of its own",
        ),
        (
            "{ http = \"https://{host}/\" }",
            "value",
            "https is not probed",
        ),
        (
            "{ http = \"/a\", port = 1, status = 42 }",
            "value",
            "status 42",
        ),
        (
            "{ tcp = 1, body = \"x\" }",
            "unknown-key",
            "belongs to an `http` probe",
        ),
        ("{ tcp = 1, interval = \"1ms\" }", "value", "at least 10ms"),
        ("{ command = \"\" }", "empty", "command"),
    ] {
        let c = check(&probe_plan(text));
        let e = c
            .errors
            .iter()
            .find(|e| e.code == code && e.message.contains(message));
        assert!(e.is_some(), "{text}: {:?}", c.errors);
        assert!(e.unwrap().span.is_some(), "{text}: no position");
    }
    let c = check(&format!(
        "{HEAD}[[services]]\nid = \"web\"\nhost = \"old\"\nprobe = {{ tcp = 1 }}\n"
    ));
    assert!(
        c.errors.iter().any(|e| e.message.contains("no `new_host`")),
        "{:?}",
        c.errors
    );
    let c = check(&probe_plan("{ tcp = 1 }").replace("new_host = \"new\"", "new_host = \"neu\""));
    assert!(
        c.errors.iter().any(|e| e.message.contains("neu")),
        "{:?}",
        c.errors
    );
}

/// `[[environments.NAME.load]]`: read with its steps, host and database; unknown steps named
/// with the nearest spelling at their line, a stop before the start refused, a write load only
/// on a PostgreSQL `[[databases]]` entry.
#[test]
fn environment_loads_are_read_and_checked() {
    let src = format!(
        r#"{HEAD}
[[environments.test.load]]
id = "bench"
start_before = "pre"
stop_after = "stop"
command = "PGPASSWORD=hunter2 pgbench -T 600 app"
host = "old"

[[environments.test.load]]
id = "acks"
start_before = "pre"
stop_after = "final"
writes = "postgresql"
database = "app"

[[databases]]
id = "app"
engine = "postgresql"
from = "old"
to = "old"
database = "app"

[[databases]]
id = "cache"
engine = "redis"
from = "old"
to = "old"

[[steps]]
id = "pre"
do = "wait"
duration = "1s"

[[steps]]
id = "stop"
do = "wait"
duration = "1s"

[[steps]]
id = "final"
do = "wait"
duration = "1s"
"#
    );
    let c = check(&src);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let plan = c.plan.unwrap();
    let loads = &plan.environment("test").unwrap().loads;
    assert_eq!(loads.len(), 2);
    assert_eq!(loads[0].id, "bench");
    assert_eq!(loads[0].start_before, "pre");
    assert_eq!(loads[0].stop_after, "stop");
    assert!(matches!(&loads[0].what, LoadKind::Command { host: Some(h), .. } if h == "old"));
    // Shown redacted, never with the password.
    let shown = loads[0].describe();
    assert!(
        shown.contains("pgbench") && !shown.contains("hunter2"),
        "{shown}"
    );
    assert!(matches!(&loads[1].what, LoadKind::Writes { database, .. } if database == "app"));

    let messages = |src: &str| -> Vec<(usize, String)> {
        let c = check(src);
        let map = SourceMap::new(src);
        c.errors
            .iter()
            .map(|e| {
                let line = e.span.as_ref().map_or(0, |s| map.line_col(s.start).0);
                (
                    line,
                    format!("{} {}", e.message, e.help.clone().unwrap_or_default()),
                )
            })
            .collect()
    };
    let line_of =
        |src: &str, needle: &str| src.lines().position(|l| l.contains(needle)).unwrap() + 1;

    let bad = src.replace(
        "start_before = \"pre\"\nstop_after = \"stop\"",
        "start_before = \"pree\"\nstop_after = \"stop\"",
    );
    let m = messages(&bad);
    assert!(
        m.iter().any(|(line, t)| *line == line_of(&bad, "\"pree\"")
            && t.contains("load `bench` of environment `test` (start_before) names step `pree`")
            && t.contains("did you mean `pre`?")),
        "{m:?}"
    );

    let bad = src.replace(
        "start_before = \"pre\"\nstop_after = \"final\"",
        "start_before = \"final\"\nstop_after = \"pre\"",
    );
    let m = messages(&bad);
    assert!(
        m.iter()
            .any(|(line, t)| *line == line_of(&bad, "stop_after = \"pre\"")
                && t.contains("stops after step `pre`, which comes before `final`")),
        "{m:?}"
    );

    let bad = src.replace(
        "database = \"app\"\n\n[[databases]]",
        "database = \"cache\"\n\n[[databases]]",
    );
    let m = messages(&bad);
    assert!(
        m.iter()
            .any(|(_, t)| t.contains("writes to database `cache`, a redis database")),
        "{m:?}"
    );
    let bad = src.replace("writes = \"postgresql\"", "writes = \"mysql\"");
    let m = messages(&bad);
    assert!(
        m.iter()
            .any(|(_, t)| t.contains("write loads for PostgreSQL and HTTP only, not `mysql`")),
        "{m:?}"
    );
    let bad = src.replace("writes = \"postgresql\"\n", "");
    let m = messages(&bad);
    assert!(
        m.iter()
            .any(|(_, t)| t.contains("needs `command = \"...\"`, `writes = \"postgresql\"` with `database`, or `writes = \"http\"` with `service`")),
        "{m:?}"
    );
    // The HTTP write load: its keys only with it, a service, a port it can tell, a clean path.
    let http = src.replace(
        "writes = \"postgresql\"\ndatabase = \"app\"",
        "writes = \"http\"\nservice = \"web\"\npath = \"/w\"",
    ) + "\n[[services]]\nid = \"web\"\nhost = \"old\"\nnew_host = \"old\"\nports = [80]\n";
    let c = check(&http);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let plan = c.plan.unwrap();
    let load = &plan.environment("test").unwrap().loads[1];
    assert!(
        matches!(&load.what, LoadKind::HttpWrites { service, path, port: None } if service == "web" && path == "/w")
    );
    assert!(load.describe().contains("HTTP write load on service `web`"));
    let m = messages(&http.replace("ports = [80]", "ports = [80, 443]"));
    assert!(
        m.iter().any(|(_, t)| t.contains("the port to write to is not known") && t.contains("port = N")),
        "{m:?}"
    );
    let m = messages(&http.replace("path = \"/w\"", "path = \"/w x\""));
    assert!(
        m.iter()
            .any(|(_, t)| t.contains("`path` must be an absolute URL path")),
        "{m:?}"
    );
    let m = messages(&http.replace("service = \"web\"\n", "service = \"wbe\"\n"));
    assert!(
        m.iter()
            .any(|(_, t)| t.contains("`wbe`") && t.contains("did you mean `web`?")),
        "{m:?}"
    );
    let m = messages(&http.replace("service = \"web\"\n", "database = \"app\"\n"));
    assert!(
        m.iter()
            .any(|(_, t)| t.contains("`database` does not go with `writes = \"http\"`"))
            && m.iter().any(|(_, t)| t.contains("it needs `service`")),
        "{m:?}"
    );
    let m = messages(&src.replace(
        "database = \"app\"\n",
        "database = \"app\"\npath = \"/w\"\n",
    ));
    assert!(
        m.iter()
            .any(|(_, t)| t.contains("`path` goes with `writes = \"http\"`")),
        "{m:?}"
    );
    let bad = src.replace("host = \"old\"\n", "host = \"olld\"\n");
    let m = messages(&bad);
    assert!(
        m.iter()
            .any(|(_, t)| t.contains("names host `olld`") && t.contains("did you mean `old`?")),
        "{m:?}"
    );
}

/// A rehearsal's network endpoints: production's value as a step writes it, mapped to the
/// rehearsal's own; anything but a string is an error naming the key.
#[test]
fn an_environment_maps_production_endpoints_to_its_own() {
    let src = format!(
        "{HEAD}[environments.test.endpoints]\n\"192.0.2.53:53\" = \"127.0.0.1:5300\"\n\"10.0.4.2:5432\" = \"10.0.4.2:5432\"\n"
    );
    let c = check(&src);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let plan = c.plan.unwrap();
    let env = plan.environments.iter().find(|e| e.name == "test").unwrap();
    assert_eq!(
        env.endpoints,
        vec![
            ("192.0.2.53:53".to_string(), "127.0.0.1:5300".to_string()),
            ("10.0.4.2:5432".to_string(), "10.0.4.2:5432".to_string())
        ]
    );
    // Not a host of the environment either.
    assert!(env.hosts.iter().all(|h| h.name != "endpoints"));
    let bad = src.replace("= \"127.0.0.1:5300\"", "= 5300");
    let c = check(&bad);
    assert!(
        c.errors.iter().any(|e| e
            .message
            .contains("`192.0.2.53:53` must map to the rehearsal's own endpoint")),
        "{:?}",
        c.errors
    );
}

/// A placeholder (`"TODO: …"`, as the survey's draft writes them) is one `todo` error on its
/// own line; what reading would say about the placeholder itself (not a window table, not a
/// duration, not a time) is left out; everything else is still reported.
#[test]
fn a_todo_value_is_one_error_on_its_line_and_hides_only_what_it_causes() {
    let src = r#"
[migration]
title = "t"
window = "TODO: decide the maintenance window"
max_downtime = "TODO: decide the downtime budget"
[hosts.old]
local = true
[hosts.new]
ssh = "TODO: the new server, user@host"
[environments.test]
old = { local = true, root = "/tmp/x" }
new = { ssh = "TODO" }
[[steps]]
id = "open"
do = "wait"
until = "TODO: the window's start"
"#;
    let c = check(src);
    let map = SourceMap::new(src);
    let got: Vec<(&str, usize, String)> = c
        .errors
        .iter()
        .map(|d| {
            let (line, _) = map.line_col(d.span.as_ref().unwrap().start);
            (d.code, line, d.message.clone())
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "todo",
                4,
                "`migration.window` is still to be decided: decide the maintenance window".into()
            ),
            (
                "todo",
                5,
                "`migration.max_downtime` is still to be decided: decide the downtime budget"
                    .into()
            ),
            (
                "todo",
                9,
                "`hosts.new.ssh` is still to be decided: the new server, user@host".into()
            ),
            (
                "todo",
                12,
                "`environments.test.new.ssh` is still to be decided".into()
            ),
            (
                "todo",
                16,
                "`steps[0].until` is still to be decided: the window's start".into()
            ),
        ],
        "{:#?}",
        c.errors
    );
    assert!(c.errors.iter().all(|d| d.help.as_deref()
        == Some("decide it and edit this line: replace the TODO string with the value")));
    assert!(c.findings.is_empty(), "the lint waits for a complete plan");

    // An error elsewhere is still reported beside the placeholders.
    let c = check(&src.replace(
        "local = true\n[hosts.new]",
        "local = true\nlokal = 1\n[hosts.new]",
    ));
    assert!(
        c.errors.iter().any(|d| d.code == "unknown-key"),
        "{:?}",
        c.errors
    );
    // And so is one in the very step that holds a placeholder.
    let c = check(&src.replace("do = \"wait\"", "do = \"wait\"\nbogus = 1"));
    assert_eq!(
        c.errors.iter().filter(|d| d.code != "todo").count(),
        1,
        "{:?}",
        c.errors
    );

    // Decided, the plan checks as any other (and `TODO` inside a text is no placeholder).
    let done = src
        .replace(
            "\"TODO: decide the maintenance window\"",
            "{ start = \"2020-01-01T00:00:00Z\", end = \"2099-01-01T00:00:00Z\" }",
        )
        .replace("\"TODO: decide the downtime budget\"", "\"15m\"")
        .replace("\"TODO: the new server, user@host\"", "\"root@db02\"")
        .replace("{ ssh = \"TODO\" }", "{ local = true, root = \"/tmp/y\" }")
        .replace("\"TODO: the window's start\"", "\"2020-01-01T00:00:00Z\"");
    let c = check(&format!(
        "{done}[[steps]]\nid = \"m\"\ndo = \"manual\"\ntext = \"the TODO list\"\n"
    ));
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert!(
        !is_todo("the TODO list") && !is_todo("TODOS") && is_todo(" TODO: x") && is_todo("TODO")
    );
}

/// `[survey]` declares the differences `rehost survey --compare` expects, in the shape of a
/// `verify-config` step's `allow` and `rewrite`; unknown keys and bad rewrites are errors.
#[test]
fn the_survey_table_reads_allow_and_rewrite() {
    let src = format!(
        "{HEAD}[survey]\nallow = [\"package linux-image-*\", \"sysctl kernel.hostname\"]\nrewrite = [{{ from = \"db01\", to = \"db02\" }}]\n"
    );
    let c = check(&src);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let s = c.plan.unwrap().survey.unwrap();
    assert_eq!(s.allow, ["package linux-image-*", "sysctl kernel.hostname"]);
    assert_eq!(
        s.rewrite,
        [ConfigRewrite {
            from: "db01".into(),
            to: "db02".into()
        }]
    );
    let c = check(&format!(
        "{HEAD}[survey]\nalow = []\nrewrite = [\"db01=db02\"]\n"
    ));
    let codes: Vec<&str> = c.errors.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["unknown-key", "type"], "{:?}", c.errors);
    assert!(check(HEAD).plan.unwrap().survey.is_none());
    // The inventory the plan was drafted from: kept with its place; empty is an error there.
    let c = check(&format!("{HEAD}[survey]\ninventory = \"old.json\"\n"));
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let i = c.plan.unwrap().survey.unwrap().inventory.unwrap();
    assert_eq!(i.value, "old.json");
    let c = check(&format!("{HEAD}[survey]\ninventory = \" \"\n"));
    let codes: Vec<&str> = c.errors.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["empty"], "{:?}", c.errors);
}

/// A service's `sockets`: absolute paths of Unix sockets are kept; a relative path or one
/// longer than a socket address holds (107 bytes) is refused on its own line.
#[test]
fn a_services_sockets_are_absolute_socket_paths() {
    let plan = |sockets: &str| {
        format!("{HEAD}[[services]]\nid = \"db\"\nhost = \"old\"\nsockets = [{sockets}]\n")
    };
    let c = check(&plan("\"/run/postgresql/.s.PGSQL.5432\""));
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(
        c.plan.unwrap().services[0].sockets,
        ["/run/postgresql/.s.PGSQL.5432"]
    );
    let long = format!("\"/{}\"", "s".repeat(107));
    for (bad, shown) in [
        ("\"run/app.sock\"", "run/app.sock".to_owned()),
        (long.as_str(), format!("/{}", "s".repeat(107))),
    ] {
        let src = plan(bad);
        let c = check(&src);
        let map = SourceMap::new(&src);
        assert_eq!(c.errors.len(), 1, "{bad}: {:?}", c.errors);
        let e = &c.errors[0];
        assert!(
            e.message.contains(&format!(
                "socket `{shown}` is not an absolute path of a Unix socket"
            )),
            "{bad}: {}",
            e.message
        );
        let line = map.line_col(e.span.clone().unwrap().start).0;
        assert_eq!(
            src.lines().nth(line - 1).unwrap().trim_start(),
            format!("sockets = [{bad}]")
        );
    }
}
