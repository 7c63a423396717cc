//! What the pre-flight reads out of a plan's commands (issue 18): the first program, the
//! systemd units, the names of health URLs. The checks themselves run against real hosts in
//! the binary's tests (`tests/it/preflight.rs`).

use super::*;

fn shell(s: &str) -> Result<String, &'static str> {
    first_program(&Command::Shell(s.into()))
}

#[test]
fn the_first_program_skips_assignments_and_exec_and_leaves_builtins_and_variables() {
    assert_eq!(shell("pg_dump -Fc app > /srv/app.dump").unwrap(), "pg_dump");
    assert_eq!(
        shell("PGHOST=db LANG=C exec /usr/bin/rsync -a x y").unwrap(),
        "/usr/bin/rsync"
    );
    assert_eq!(shell("'pg_dump' app").unwrap(), "pg_dump");
    assert!(shell("'my tool' --x").is_err());
    assert_eq!(
        first_program(&Command::Argv(vec!["mariadb-dump".into(), "app".into()])).unwrap(),
        "mariadb-dump"
    );
    for builtin in [
        "cd /srv && make",
        "true",
        "test -f x",
        "[ -f x ]",
        "if true; then :; fi",
        "(cd x; y)",
        "echo hi",
        ": noop",
    ] {
        assert_eq!(
            shell(builtin),
            Err("a shell builtin or keyword"),
            "{builtin}"
        );
    }
    for unknown in ["$TOOL --x", "\"$PGBIN/pg_dump\" app", "`which x`", ""] {
        assert!(shell(unknown).is_err(), "{unknown}");
    }
}

#[test]
fn units_are_read_from_systemctl_verbs_in_each_simple_command() {
    assert_eq!(systemd_units("systemctl stop nginx"), ["nginx"]);
    assert_eq!(
        systemd_units(
            "sudo /bin/systemctl --no-block restart php8.2-fpm.service nginx && systemctl is-active --quiet nginx"
        ),
        ["nginx", "php8.2-fpm.service"]
    );
    assert!(systemd_units("systemctl daemon-reload").is_empty());
    assert!(systemd_units("service nginx stop; pg_ctl stop").is_empty());
    assert!(systemd_units("systemctl stop $UNIT").is_empty());
}

#[test]
fn health_url_names_leave_out_addresses_and_localhost() {
    assert_eq!(
        url_names(
            "curl -fsS https://www.Example.org/health && curl http://u:p@api.example.org:8443/x"
        ),
        ["api.example.org", "www.example.org"]
    );
    assert!(url_names("curl -f http://127.0.0.1:8080/ http://[::1]/ http://localhost/").is_empty());
    assert_eq!(
        url_names("wget -q -O- 'http://nonexistent.invalid/'"),
        ["nonexistent.invalid"]
    );
    assert!(url_names("test -f started").is_empty());
}
