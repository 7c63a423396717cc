//! The service step kinds (issue 10, item 5): `stop`, `start` and `health` act on what
//! `[[services]]` declares, so a plan no longer repeats each service's commands as `run` steps.
//! Before, the declarations were inert.

use crate::support::*;
use rehost_test::TestDir;

fn services(port: u16, health: &str) -> String {
    format!(
        r#"
[[services]]
id = "app"
host = "old"
ports = [{port}]
stop = "touch app-stopped"
start = "touch app-started"
{health}

[[steps]]
id = "stop-app"
do = "stop"
service = "app"

[[steps]]
id = "start-app"
do = "start"
service = "app"
host = "new"

[[steps]]
id = "app-healthy"
do = "health"
service = "app"
host = "new"
timeout = "3s"
"#
    )
}

#[test]
fn stop_start_and_health_use_the_declared_commands() {
    let d = TestDir::new();
    write_plan(&d, &services(1, "health = \"test -f app-started\""));
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        d.join("test-old/app-stopped").exists(),
        "stop ran on the service's host"
    );
    assert!(
        d.join("test-new/app-started").exists(),
        "start ran on the step's host"
    );
    assert!(
        o.stdout.contains("service `app` healthy on host new"),
        "{}",
        o.all()
    );
    // Each records what it did, typed (docs/journal.md).
    let journal = d.read(".rehost/plan/test/journal");
    for (action, host) in [("stop", "old"), ("start", "new"), ("health", "new")] {
        assert!(
            journal.contains(&format!(
                r#""result_data":{{"kind":"service","v":1,"service":"app","action":"{action}","host":"{host}","exit_code":0"#
            )),
            "{journal}"
        );
    }
    // The concept names what each step does.
    let c = rehost(&d, &["concept", "plan.toml"]);
    assert!(c.stdout.contains("stop service `app`"), "{}", c.stdout);
    assert!(
        c.stdout.contains("wait until service `app` is healthy"),
        "{}",
        c.stdout
    );
}

#[test]
fn health_by_ports_waits_for_the_port_and_fails_at_the_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    let d = TestDir::new();
    write_plan(&d, &services(open, ""));
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("healthy on host new after 1 check"),
        "{}",
        o.all()
    );

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let d = TestDir::new();
    write_plan(&d, &services(closed, ""));
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_ne!(o.code, 0, "{}", o.all());
    assert!(
        o.all().contains(&format!(
            "was not healthy on host new within 3s: port {closed}"
        )),
        "{}",
        o.all()
    );
    assert!(
        o.all().contains("waiting for `app`"),
        "progress is shown: {}",
        o.all()
    );
    drop(listener);
}

#[test]
fn a_service_step_needs_the_service_and_its_command() {
    let d = TestDir::new();
    write_plan(
        &d,
        r#"
[[services]]
id = "app"
host = "old"

[[steps]]
id = "stop-app"
do = "stop"
service = "app"

[[steps]]
id = "start-db"
do = "start"
service = "db"
host = "new"
"#,
    );
    let o = rehost(&d, &["check", "plan.toml"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.all()
            .contains("needs service `app` to declare its `stop` command"),
        "{}",
        o.all()
    );
    assert!(
        o.all()
            .contains("names service `db`, which the plan does not declare"),
        "{}",
        o.all()
    );
}
