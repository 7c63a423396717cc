//! Issue 18: credentials in the plan text were not found by the lint. Each shape fires, its
//! finding points before the secret and never holds it, and the plan line shown with it has
//! the secret masked; the ways of not writing it (a file, a variable, a prompt) do not fire.

use super::*;
use crate::check;

const SECRET: &str = "Hunter2xyz";

const HEAD: &str = r#"
[migration]
title = "t"
window = { start = "2020-01-01T00:00:00Z", end = "2099-01-01T00:00:00Z" }
max_downtime = "15m"
[hosts.old]
local = true
[hosts.new]
local = true
[environments.test]
old = { local = true, root = "/t/o" }
new = { local = true, root = "/t/n" }
"#;

/// The findings of `credential-in-plan` for a plan whose one step runs `command` (a TOML
/// value, quotes included), each as the text it points at, with the rendered finding.
fn fired(command: &str) -> Vec<(String, String)> {
    fired_in("command", command)
}

/// As [`fired`], for a step whose `key` (`command` or `argv`) is `value`.
fn fired_in(key: &str, value: &str) -> Vec<(String, String)> {
    let text =
        format!("{HEAD}[[steps]]\nid = \"s\"\ndo = \"run\"\nhost = \"new\"\n{key} = {value}\n");
    let c = check(&text);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let map = crate::SourceMap::new(&text);
    c.findings
        .iter()
        .filter(|f| f.code == "credential-in-plan")
        .map(|f| {
            let shown = map.render("plan.toml", f);
            assert!(
                !shown.contains(SECRET) && !f.message.contains(SECRET),
                "the finding shows the secret:\n{shown}"
            );
            (text[f.span.clone().unwrap()].to_owned(), shown)
        })
        .collect()
}

fn markers(command: &str) -> Vec<String> {
    fired(command).into_iter().map(|(m, _)| m).collect()
}

#[test]
fn each_shape_of_a_credential_fires_without_showing_it() {
    let s = SECRET;
    for (command, marker) in [
        (
            format!("\"psql postgres://app:{s}@db.example/app -c 'select 1'\""),
            "postgres://app:",
        ),
        (format!("\"PGPASSWORD={s} pg_dump app\""), "PGPASSWORD="),
        (format!("\"MYSQL_PWD={s} mariadb-dump app\""), "MYSQL_PWD="),
        (format!("\"mysql -uroot -p{s} app\""), "-p"),
        (format!("\"/usr/bin/mariadb-dump -u root -p{s} app\""), "-p"),
        (format!("\"tool --password={s}\""), "--password="),
        (format!("\"tool --password {s}\""), "--password"),
        (
            format!("\"psql 'host=db password={s} dbname=app'\""),
            "password=",
        ),
        (
            format!("\"API_TOKEN={s} curl https://example.org\""),
            "API_TOKEN=",
        ),
        (
            format!("\"mariadb -e \\\"CREATE USER app IDENTIFIED BY '{s}'\\\"\""),
            "IDENTIFIED BY",
        ),
        (
            format!(
                "\"mariadb -e \\\"CREATE USER app IDENTIFIED WITH mysql_native_password BY '{s}'\\\"\""
            ),
            "IDENTIFIED WITH mysql_native_password BY",
        ),
        (
            format!("\"psql -c \\\"ALTER ROLE app WITH PASSWORD '{s}'\\\"\""),
            "PASSWORD",
        ),
    ] {
        assert_eq!(markers(&command), [marker], "{command}");
    }
    // In an argument vector too (it used to replace `command` in the value, where it is not,
    // and so tested `command = [...]`, never `argv`).
    let argv: Vec<String> = fired_in("argv", &format!("[\"mysql\", \"-p{s}\", \"app\"]"))
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    assert_eq!(argv, ["-p"]);
    // The rendered finding: the line with the secret masked and the caret on the marker.
    let (_, shown) = &fired(&format!("\"PGPASSWORD={s} pg_dump app\""))[0];
    assert!(shown.contains("command = \"PGPASSWORD=***"), "{shown}");
    assert!(shown.contains("^^^^^^^^^^^"), "{shown}");
    assert!(shown.contains(".pgpass"), "{shown}");
}

#[test]
fn a_credential_in_a_comment_or_another_key_fires_too() {
    let text = format!(
        "{HEAD}# the old one: mysql://root:{SECRET}@old/app\n[[steps]]\nid = \"s\"\ndo = \"manual\"\ntext = \"log in with PGPASSWORD={SECRET}\"\n"
    );
    let c = check(&text);
    let f: Vec<_> = c
        .findings
        .iter()
        .filter(|f| f.code == "credential-in-plan")
        .collect();
    assert_eq!(f.len(), 2, "{f:?}");
    for f in f {
        assert!(!crate::SourceMap::new(&text).render("p", f).contains(SECRET));
    }
}

#[test]
fn what_keeps_the_secret_out_of_the_plan_does_not_fire() {
    for command in [
        // Prompts, files, variables, ports.
        "\"mysql -u root -p app\"",
        "\"mysql --defaults-extra-file=/root/.my.cnf app\"",
        "\"mysql --password app\"",
        "\"pg_dump -p 5432 -h 127.0.0.1 app\"",
        "\"mysql -P 3306 app\"",
        "\"PGPASSWORD=$PW pg_dump app\"",
        "\"PGPASSWORD=\\\"$(cat /root/pw)\\\" pg_dump app\"",
        "\"mysql -p\\\"$PW\\\" app\"",
        "\"PGPASSFILE=/root/.pgpass pg_dump app\"",
        "\"tool --password-file=/etc/tool/pw\"",
        "\"psql postgres://app@db.example/app\"",
        "\"curl https://example.org/health\"",
        "\"mariadb -e \\\"CREATE USER app IDENTIFIED VIA unix_socket\\\"\"",
        "\"mariadb -e \\\"CREATE USER app IDENTIFIED BY PASSWORD '*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29'\\\"\"",
        "\"test $a == $b\"",
    ] {
        assert!(
            markers(command).is_empty(),
            "{command}: {:?}",
            fired(command)
        );
    }
    // A plan's own keys.
    let text = format!(
        "{HEAD}[[databases]]\nid = \"pg\"\nengine = \"postgresql\"\nfrom = \"old\"\nto = \"new\"\npassword_file = \"/root/pw\"\n"
    );
    assert!(
        check(&text)
            .findings
            .iter()
            .all(|f| f.code != "credential-in-plan")
    );
}

#[test]
fn masking_keeps_the_line_readable_and_the_offsets_in_step() {
    let line = "a postgres://u:secret@h/x b PGPASSWORD=zz c";
    let (masked, at) = mask_credentials(line);
    assert_eq!(masked, "a postgres://u:***@h/x b PGPASSWORD=*** c");
    // Inside a TOML string, an unquoted value to the string's end.
    assert_eq!(
        mask_credentials("command = \"PGPASSWORD=x psql\" # y").0,
        "command = \"PGPASSWORD=***\" # y"
    );
    // A quoted value to its closing quote, blanks and all; an argv item to the next blank.
    for (line, masked) in [
        ("PGPASSWORD='my secret' psql", "PGPASSWORD=*** psql"),
        (
            "x = \"PGPASSWORD=\\\"my secret\\\" psql\"",
            "x = \"PGPASSWORD=*** psql\"",
        ),
        ("x = \"a PGPASSWORD=my\\\"q b\"", "x = \"a PGPASSWORD=***\""),
        (
            "argv = [\"mysql\", \"-pS3 cret\", \"app\"]",
            "argv = [\"mysql\", \"-p***\", \"app\"]",
        ),
        ("IDENTIFIED BY 'a b' ;", "IDENTIFIED BY *** ;"),
    ] {
        assert_eq!(mask_credentials(line).0, masked, "{line}");
    }
    // An offset after the first secret moves by its change in length; one inside it lands on
    // the mask.
    let b = line.find(" b").unwrap();
    assert_eq!(&masked[at(b)..at(b) + 2], " b");
    assert_eq!(at(line.find("ecret").unwrap()), masked.find("***").unwrap());
}
