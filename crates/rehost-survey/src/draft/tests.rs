use super::*;
use crate::example;
use rehost_plan::SourceMap;

fn errors(text: &str) -> Vec<(&'static str, usize, String)> {
    let c = rehost_plan::check(text);
    let map = SourceMap::new(text);
    c.errors
        .iter()
        .chain(&c.findings)
        .map(|d| {
            let line = d.span.as_ref().map_or(0, |s| map.line_col(s.start).0);
            (d.code, line, d.message.clone())
        })
        .collect()
}

/// The line a diagnostic points at.
fn line(text: &str, n: usize) -> &str {
    text.lines().nth(n - 1).unwrap()
}

/// The draft of a typical server fails `check` with exactly its TODOs, each on the line that
/// holds it; decided, it checks with no error and no M 2.319 finding.
#[test]
fn the_draft_fails_check_only_on_its_todos_and_passes_once_they_are_decided() {
    let inv = example::inventory("ssh://root@web01:2222");
    let text = draft(&inv, &OldHost::from_arg("ssh://root@web01:2222"));
    let got = errors(&text);
    let keys: Vec<String> = got
        .iter()
        .map(|(code, n, msg)| {
            assert_eq!(*code, "todo", "{msg} at line {n}: {}", line(&text, *n));
            assert!(
                line(&text, *n).contains("\"TODO"),
                "{msg}: {}",
                line(&text, *n)
            );
            msg.split('`').nth(1).unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        keys,
        [
            "migration.initiated_by",
            "migration.implemented_by",
            "migration.window",
            "migration.max_downtime",
            "hosts.new.ssh",
            "environments.test.old.ssh",
            "environments.test.new.ssh",
            "names[0].ttl",
            "steps[2].until",
            "steps[7].command",
            "steps[8].command",
            "steps[9].command",
        ],
        "{text}"
    );
    // Every TODO of the text is reported (none hides in a comment's place).
    assert_eq!(text.matches("\"TODO").count(), keys.len());

    let done = example::decide_todos(&text);
    assert_eq!(errors(&done), [], "{done}");
    let plan = rehost_plan::check(&done).plan.unwrap();
    // Everything the survey found is declared, with its origin above it.
    let ids = |v: Vec<&str>| v.join(" ");
    assert_eq!(
        ids(plan.services.iter().map(|s| s.id.as_str()).collect()),
        "nginx postgresql-15-main ssh"
    );
    assert_eq!(
        ids(plan.data.iter().map(|d| d.id.as_str()).collect()),
        "nginx-app"
    );
    assert_eq!(
        ids(plan.databases.iter().map(|d| d.id.as_str()).collect()),
        "postgresql-app"
    );
    assert_eq!(
        ids(plan.keys.iter().map(|d| d.id.as_str()).collect()),
        "key-app-key key-app-pem key-ssh-host-ed25519-key"
    );
    assert_eq!(
        ids(plan.names.iter().map(|d| d.name.as_str()).collect()),
        "app.example.org"
    );
    assert_eq!(
        ids(plan.clients.iter().map(|d| d.id.as_str()).collect()),
        "nginx-clients"
    );
    assert!(text.contains(
        "# found: nginx -T /etc/nginx/sites-enabled/app:4 (server)\n[[data]]\nid = \"nginx-app\"\n"
    ));
    assert!(text.contains("ssh = \"root@web01\"\nport = 2222\n"));
    // The checklist in M 2.319's order.
    let steps: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        steps,
        [
            "pre-sync-nginx-app",
            "lower-ttl",
            "window-open",
            "drain-nginx",
            "drain-postgresql-15-main",
            "stop-nginx",
            "final-sync-nginx-app",
            "carry-keys",
            "carry-files",
            "copy-postgresql-15-main",
            "verify-nginx-app",
            "verify-postgresql-app",
            "verify-keys",
            "config-nginx",
            "config-postgresql-15-main",
            "verify-cron-timers",
            "watch-old-nginx-app",
            "switch",
            "start-nginx",
            "health-nginx",
            "health-postgresql-15-main",
            "clients",
        ]
    );
    // The survey's gaps are named, not planned.
    assert!(text.ends_with(
        "# Not surveyed (nothing above is planned for these):\n#   /proc/1234/exe: permission denied: survey as root\n"
    ));
}

/// A hostile inventory cannot add keys, tables or steps to the draft: every string stays in
/// its value or its comment, and no credential reaches the text.
#[test]
fn a_hostile_inventory_cannot_inject_into_the_draft() {
    let mut inv = example::inventory("old");
    let evil = "x\"\nid = \"injected\"\n]]\n[[steps]]\nid = \"evil\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"rm -rf /\"\n#";
    let s = &mut inv.services[0];
    s.id = format!("nginx{evil}.service");
    s.unit.as_mut().unwrap().name = format!("nginx{evil}.service");
    s.unit.as_mut().unwrap().found.source = format!("/proc/1/cgroup{evil}\u{1b}[2J\u{202e}");
    s.data[0].path = format!("/srv/www{evil}");
    s.data[0].role = evil.into();
    s.keys[0].path = format!("/etc/ssl/private/{evil}'''\"\"\"");
    s.names[0].name = format!("app.example.org{evil}");
    s.names[0].found.source = "psql postgresql://app:hunter2@db/app".into();
    s.package.as_mut().unwrap().found.source = "mysql -u root -pXk93mq -e 'select 1'".into();
    inv.clients[0].peer = format!("198.51.100.7{evil}");
    inv.clients[0].service = Some(format!("nginx{evil}.service"));
    inv.cron[0].file = format!("/etc/cron.d/{evil}");
    inv.gaps[0].why = format!("denied{evil} PGPASSWORD=topsecret");
    inv.system.hostname = evil.into();
    inv.taken_at = evil.into();
    let text = draft(&inv, &OldHost::from_arg("ssh://root@web01"));

    let c = rehost_plan::check(&text);
    let plan = c.plan.expect("the draft is TOML");
    assert!(
        c.errors.iter().all(|d| d.code == "todo"),
        "{:?}\n{text}",
        c.errors
    );
    assert!(
        !plan
            .steps
            .iter()
            .any(|s| s.id == "evil" || s.id == "injected")
    );
    assert!(!plan.services.iter().any(|s| s.id == "injected"));
    let clean = rehost_plan::check(&draft(
        &example::inventory("old"),
        &OldHost::from_arg("ssh://root@web01"),
    ))
    .plan
    .unwrap();
    let kinds = |p: &rehost_plan::Plan| -> Vec<String> {
        p.steps.iter().map(|s| format!("{:?}", s.effects)).collect()
    };
    assert_eq!(plan.steps.len(), clean.steps.len(), "{:#?}", kinds(&plan));
    assert_eq!(plan.services.len(), clean.services.len());
    assert_eq!(plan.data.len(), clean.data.len());
    assert_eq!(plan.keys.len(), clean.keys.len());
    assert!(!plan.steps.iter().any(|s| matches!(&s.kind,
        rehost_plan::StepKind::Run { command, .. } if format!("{command:?}").contains("rm -rf"))));
    // The hostile path is kept as the value it is, byte for byte.
    assert!(
        plan.data
            .iter()
            .any(|d| d.from.path == format!("/srv/www{evil}"))
    );
    // No line of the text was made by the inventory: each comment is one line, and
    // terminal controls are escaped.
    for l in text.lines() {
        assert!(!l.starts_with("id = \"injected\"") && l != "[[steps]]\nid = \"evil\"");
    }
    assert!(!text.contains('\u{1b}') && !text.contains('\u{202e}'));
    for secret in ["hunter2", "Xk93mq", "topsecret"] {
        assert!(!text.contains(secret), "{secret} in\n{text}");
    }
}

#[test]
fn the_old_host_is_written_as_the_survey_reached_it() {
    assert_eq!(
        OldHost::from_arg("ssh://admin@db1:2222/x"),
        OldHost::Ssh {
            destination: "admin@db1".into(),
            port: Some(2222),
            more: SshMore::default()
        }
    );
    assert_eq!(
        OldHost::from_arg("root@db1"),
        OldHost::Ssh {
            destination: "root@db1".into(),
            port: None,
            more: SshMore::default()
        }
    );
    assert_eq!(
        OldHost::from_arg("/srv/roots/old"),
        OldHost::Local {
            root: Some("/srv/roots/old".into())
        }
    );
    assert_eq!(OldHost::from_arg("local"), OldHost::Local { root: None });
    let text = draft(
        &example::inventory("x"),
        &OldHost::Local {
            root: Some("/r/o\"ld".into()),
        },
    );
    assert!(text.contains("[hosts.old]\n# found: the surveyed host x (rehost survey)\nlocal = true\nroot = \"/r/o\\\"ld\"\n"), "{text}");
}

/// Where systemd does not run, `systemctl` would not stop or start anything: each command
/// the checklist uses is a TODO on its line (and nothing else becomes one); nginx's
/// configuration is dumped with the `-c FILE` its command line named, quoted for the shell;
/// the files carried are listed above the step that carries them, and the cron, timer and
/// unit files under /etc are verified after it.
#[test]
fn without_systemd_the_commands_are_todos_and_the_carried_files_are_listed() {
    let mut inv = example::inventory("old");
    inv.system.init = "tini".into();
    inv.services[0].config.push(ConfigFile {
        path: "/etc/nginx/it's.conf".into(),
        conffile: false,
        found: Found::new(FoundBy::Kernel, "/proc/812/cmdline"),
    });
    inv.services[0].unit.as_mut().unwrap().files = vec![
        "/etc/systemd/system/nginx.service".into(),
        "/lib/systemd/system/nginx.service.d/x.conf".into(),
    ];
    let text = draft(&inv, &OldHost::from_arg("root@web01"));
    let keys: Vec<String> = errors(&text)
        .iter()
        .map(|(_, _, msg)| msg.split('`').nth(1).unwrap().to_owned())
        .filter(|k| k.starts_with("services"))
        .collect();
    // nginx is stopped and started; the database server and sshd neither.
    assert_eq!(keys, ["services[0].stop", "services[0].start"], "{text}");
    assert!(text.contains(
        "# systemd does not run on the surveyed host (init: tini): systemctl cannot stop or start nginx.service\n\
         stop = \"TODO: the command by which nginx.service is stopped on the old server\"\n"
    ), "{text}");
    assert!(!text.contains("= \"systemctl"), "{text}");
    // A path a shell reads is not written into a command: a person writes it.
    assert!(
        text.contains("command = \"TODO: nginx -T -c with the configuration file nginx runs with"),
        "{text}"
    );
    assert!(text.contains(
        "# the files it carries:\n#   /etc/cron.d/backup\n#   /etc/nginx/it's.conf\n#   /etc/nginx/nginx.conf\n#   /etc/postgresql/15/main/postgresql.conf\n#   /etc/systemd/system/nginx.service\n#   /lib/systemd/system/certbot.timer\n[[steps]]\nid = \"carry-files\"\n"
    ), "{text}");
    let plan = rehost_plan::check(&example::decide_todos(&text))
        .plan
        .unwrap();
    let verify = plan
        .steps
        .iter()
        .find(|s| s.id == "verify-cron-timers")
        .unwrap();
    assert!(
        format!("{:?}", verify.kind).contains(
            "[\"/etc/cron.d/backup\", \"/etc/systemd/system/nginx.service\", \"/lib/systemd/system/certbot.timer\"]"
        ),
        "{:?}",
        verify.kind
    );
}
