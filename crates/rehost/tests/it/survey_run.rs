//! The Done-when of issue 25 end to end: a root reached through a real sshd, running nginx
//! with TLS and a real PostgreSQL, a cron job, a timer and a client holding a connection, is
//! surveyed; its draft plan (`-o`) has its TODOs decided by the test as an administrator
//! would (the commands that stop and start the services where systemd does not run, the
//! commands that carry the keys and files, the database copy); `rehost run` then migrates the
//! old root to a second, bare root — data, configuration, keys, cron, timer and unit files,
//! the database — with every verification step of the draft passing; `survey --compare` of the
//! two roots finds nothing missing, and without the cron job on the new side exactly that.
//!
//! A production run (`rehost run DRAFT.toml`), not a rehearsal: a rehearsal (`--env test`)
//! acts on an environment's hosts, which `rehost check` and `rehost run --env` refuse to be
//! production's, and the surveyed root is production's old host. Both roots share this
//! machine, so the test also does what one machine needs and two would not: the new
//! PostgreSQL listens on a port of its own (`to_port`), the copied nginx configuration is
//! pointed at the new root (declared to `verify-config` as a `rewrite`), and the inventory is
//! reduced to this root's services before drafting (other tests' servers listen on this
//! machine too; an administrator removes what is not to be migrated the same way).

use crate::support::rehost;
use crate::survey::{Nginx, free_port, host_root};
use rehost_test::TestDir;
use rehost_test::postgres::{Postgres, bin_dir};
use rehost_test::sshd::Sshd;
use serde_json::Value;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The nginx the run's `start` step started on the new root, stopped (SIGQUIT, by the PID its
/// pid file names) and waited for on drop.
struct NewNginx(PathBuf);

impl Drop for NewNginx {
    fn drop(&mut self) {
        let Some(pid) = std::fs::read_to_string(&self.0)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        else {
            return;
        };
        // SAFETY: kill has no memory preconditions; the PID is the one nginx wrote.
        unsafe { libc::kill(pid, libc::SIGQUIT) };
        let deadline = Instant::now() + Duration::from_secs(20);
        // SAFETY: signal 0 only asks whether the process exists.
        while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A shell word.
fn q(p: &Path) -> String {
    rehost_host::ssh::sh_quoted(&p.display().to_string())
}

/// The inventory reduced to this root's services (its unit files name them), their sockets
/// and their clients.
fn own_services(inv: &mut Value) {
    let ours = ["nginx.service", "postgresql-test.service", "backup.service"];
    let keep = |v: &Value| v.as_str().is_some_and(|s| ours.contains(&s));
    inv["services"]
        .as_array_mut()
        .unwrap()
        .retain(|s| keep(&s["id"]));
    inv["sockets"]
        .as_array_mut()
        .unwrap()
        .retain(|s| keep(&s["service"]));
    inv["clients"]
        .as_array_mut()
        .unwrap()
        .retain(|c| keep(&c["service"]));
    assert_eq!(inv["services"].as_array().unwrap().len(), 3, "{inv:#}");
}

/// The lines of the comment `# the files it carries:` (or `# the key files …`) above a step.
fn listed_above(text: &str, heading: &str) -> Vec<String> {
    text.split(&format!("# {heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("no `# {heading}` in\n{text}"))
        .lines()
        .map_while(|l| l.strip_prefix("#   "))
        .map(str::to_owned)
        .collect()
}

struct Decisions {
    old_root: PathBuf,
    new_root: PathBuf,
    pg_old: u16,
    pg_new: u16,
    dump: PathBuf,
}

/// The draft with every TODO decided as the administrator of these two roots would, and the
/// few edits two roots on one machine need (each said where it is made). Every other line,
/// every `# found:` comment among them, is kept as the survey wrote it.
fn decide(text: &str, x: &Decisions) -> String {
    let pgbin = bin_dir();
    let (old, new) = (&x.old_root, &x.new_root);
    let keys: Vec<String> = listed_above(text, "the key files it carries:");
    let files: Vec<String> = listed_above(text, "the files it carries:");
    let rel = |f: &String| q(Path::new(f.trim_start_matches('/')));
    let carry_keys = keys
        .iter()
        .map(|k| {
            format!(
                "mkdir -p {dir} && cp -p {old}{k} {dst}",
                dir = q(Path::new(k.trim_start_matches('/')).parent().unwrap()),
                old = q(old),
                dst = rel(k),
            )
        })
        .collect::<Vec<_>>()
        .join(" && ");
    // The files listed, the links that enable the units the old root enables (what
    // `systemctl enable` makes), and the nginx configuration pointed at this root.
    let carry_files = format!(
        "cd {old} && cp -a --parents {list} etc/systemd/system/multi-user.target.wants/nginx.service etc/systemd/system/timers.target.wants/backup.timer \"$REHOST_ROOT\" && cd \"$REHOST_ROOT\" && sed -i \"s|{o}|{n}|g\" etc/nginx/nginx.conf etc/nginx/sites-enabled/app",
        old = q(old),
        list = files.iter().map(rel).collect::<Vec<_>>().join(" "),
        o = old.display(),
        n = new.display(),
    );
    // nginx removes its pid file as it exits (its parent here, the test, reaps it later).
    let nginx_stop =
        "kill -QUIT \"$(cat run/nginx.pid)\" && while [ -e run/nginx.pid ]; do sleep 0.1; done";
    let nginx_start = "/usr/sbin/nginx -c \"$REHOST_ROOT/etc/nginx/nginx.conf\"";
    let pg_copy = format!(
        "{pgbin}/pg_dump -h 127.0.0.1 -p {o} -U postgres -C shop > {dump} && {pgbin}/psql -q -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p {n} -U postgres -d postgres -f {dump}",
        pgbin = pgbin.display(),
        o = x.pg_old,
        n = x.pg_new,
        dump = q(&x.dump),
    );

    let mut out = String::new();
    let mut block = String::new(); // the id of the table being read
    for line in text.lines() {
        if line.starts_with("[[") || line.starts_with('[') {
            block.clear();
        }
        if let Some(id) = line.strip_prefix("id = ") {
            block = id.trim_matches('"').to_owned();
        }
        let key = line.split(" = ").next().unwrap_or("");
        let value: Option<String> = if !line.contains("\"TODO") {
            None
        } else {
            Some(match (key, block.as_str()) {
                ("initiated_by", _) => "\"IT security officer\"".into(),
                ("implemented_by", _) => "\"Administrator\"".into(),
                ("window", _) => {
                    "{ start = \"2020-01-01T00:00:00Z\", end = \"2099-01-01T00:00:00Z\" }".into()
                }
                ("max_downtime", _) => "\"15m\"".into(),
                ("ssh", "") if out.ends_with("[hosts.new]\n") => {
                    out.push_str(&format!(
                        "local = true\nroot = {}\n",
                        rehost_survey::draft::toml_str(&new.display().to_string())
                    ));
                    continue;
                }
                ("old", _) => "{ ssh = \"root@192.0.2.30\" }".into(),
                ("new", _) => "{ ssh = \"root@192.0.2.31\" }".into(),
                ("ttl", _) => "\"1h\"".into(),
                ("until", _) => "\"2020-01-01T00:00:00Z\"".into(),
                ("stop", "nginx") => toml(nginx_stop),
                ("start", "nginx") => toml(nginx_start),
                ("command", "carry-keys") => toml(&carry_keys),
                ("command", "carry-files") => toml(&carry_files),
                ("command", "copy-postgresql-test") => toml(&pg_copy),
                other => panic!("a TODO this test does not decide: {other:?} in {line}"),
            })
        };
        match value {
            Some(v) => {
                out.push_str(&format!("{key} = {v}\n"));
            }
            // Two servers on one machine: the new PostgreSQL has a port of its own.
            None if block == "postgresql-shop" && line == format!("port = {}", x.pg_old) => {
                out.push_str(&format!(
                    "from_port = {}\nto_port = {}\nuser = \"postgres\"\n",
                    x.pg_old, x.pg_new
                ));
            }
            // The configuration dumped from each root's own file; the new one's paths are
            // the new root's, declared as the expected rewrite.
            None if block == "config-nginx" && key == "command" => {
                out.push_str(
                    "command = \"nginx -T -q -c \\\"$REHOST_ROOT/etc/nginx/nginx.conf\\\"\"\n",
                );
                out.push_str(&format!(
                    "rewrite = [{{ from = {}, to = {} }}]\n",
                    toml(&old.display().to_string()),
                    toml(&new.display().to_string())
                ));
            }
            None if block == "config-postgresql-test" && key == "verifies" => {
                out.push_str(line);
                out.push('\n');
                out.push_str("allow = [\"port\", \"data_directory\", \"unix_socket_directories\", \"config_file\", \"hba_file\", \"ident_file\"]\n");
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
        // The new PostgreSQL answers on its own port (its `ports` are the old one's, which
        // the old server still serves on this machine).
        if block == "postgresql-test" && key == "sockets" {
            out.push_str(&format!(
                "health = {}\n",
                toml(&format!(
                    "{}/pg_isready -q -h 127.0.0.1 -p {}",
                    bin_dir().display(),
                    x.pg_new
                ))
            ));
        }
    }
    out
}

fn toml(s: &str) -> String {
    rehost_survey::draft::toml_str(s)
}

#[test]
fn a_decided_draft_runs_from_the_surveyed_root_to_a_second_root_and_nothing_is_missing() {
    let sshd = Sshd::start();
    let d = TestDir::new();
    let mut pg = Postgres::start();
    pg.sql("postgres", "CREATE DATABASE shop;");
    pg.sql(
        "shop",
        "CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL);\n\
         INSERT INTO orders SELECT g, 'item ' || g FROM generate_series(1, 500) g;\n\
         CREATE INDEX orders_item ON orders (item);",
    );
    // The new server's PostgreSQL runs before the migration (the pre-flight asks it).
    let mut pg_new = Postgres::start();
    let port = free_port();
    let old = host_root(&d, port, &pg);
    // The new server: a bare system with nginx installed (its directories), its accounts,
    // nothing of the old one's.
    let new_root = d.join("new-root");
    for dir in ["etc", "run", "var/log/nginx", "var/lib/nginx"] {
        std::fs::create_dir_all(new_root.join(dir)).unwrap();
    }
    for f in ["etc/passwd", "etc/group"] {
        std::fs::copy(old.dir.join(f), new_root.join(f)).unwrap();
    }
    let _nginx = Nginx::start(&old.nginx_conf, port);
    let held = TcpStream::connect(("127.0.0.1", port)).unwrap();
    d.write(
        "plan.toml",
        format!(
            "[migration]\ntitle = \"Survey\"\ninitiated_by = [\"IT security officer\"]\nimplemented_by = \"Administrator\"\nwindow = {{ start = \"2020-01-01T00:00:00Z\", end = \"2099-01-01T00:00:00Z\" }}\nmax_downtime = \"15m\"\n\n[hosts.old]\nssh = \"{dest}\"\nssh_config = \"{config}\"\nroot = \"{old}\"\n\n[hosts.new]\nlocal = true\nroot = \"new-root\"\n\n[environments.test]\nold = {{ ssh = \"root@192.0.2.30\" }}\nnew = {{ ssh = \"root@192.0.2.31\" }}\n",
            dest = sshd.destination(),
            config = sshd.ssh_config().display(),
            old = old.dir.display(),
        ),
    );

    // The survey, reduced to this root's services, and its draft.
    let out = rehost(
        &d,
        &[
            "survey",
            "old",
            "--plan",
            "plan.toml",
            "--for",
            "3s",
            "--json",
        ],
    );
    drop(held);
    let mut inv: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.all()));
    assert!(
        inv["clients"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["port"] == port && c["persistent"] == true),
        "the held client: {:#}",
        inv["clients"]
    );
    own_services(&mut inv);
    d.write("old.json", serde_json::to_string_pretty(&inv).unwrap());
    let out = rehost(
        &d,
        &[
            "survey",
            "old",
            "--plan",
            "plan.toml",
            "--inventory",
            "old.json",
            "-o",
            "draft.toml",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let text = d.read("draft.toml");
    for part in [
        "persistent_connections = true\n",
        "do = \"drain\"\nservice = \"nginx\"\n",
        "# systemd does not run on the surveyed host",
        "stop = \"TODO: the command by which nginx.service is stopped on the old server\"\n",
        "command = \"nginx -T -c /etc/nginx/nginx.conf\"\n",
        "# the key files it carries:\n#   /etc/ssl/app.crt\n#   /etc/ssl/private/app.key\n",
        "# the files it carries:\n#   /etc/cron.d/rotate\n#   /etc/nginx/nginx.conf\n#   /etc/nginx/sites-enabled/app\n#   /etc/systemd/system/backup.service\n#   /etc/systemd/system/backup.timer\n#   /etc/systemd/system/nginx.service\n#   /etc/systemd/system/postgresql-test.service\n",
    ] {
        assert!(text.contains(part), "{part} not in\n{text}");
    }

    let decided = decide(
        &text,
        &Decisions {
            old_root: old.dir.clone(),
            new_root: new_root.clone(),
            pg_old: pg.port(),
            pg_new: pg_new.port(),
            dump: d.join("shop.sql"),
        },
    );
    // Nothing of the survey's provenance is lost in deciding.
    assert_eq!(
        decided.matches("# found: ").count(),
        text.matches("# found: ").count()
    );
    d.write("draft.toml", &decided);
    let ran = rehost(&d, &["check", "draft.toml"]);
    assert_eq!(ran.code, 0, "{}\n{decided}", ran.all());

    // The run: every step, the manual ones confirmed by --yes (recorded as a decision).
    let _new_nginx = NewNginx(new_root.join("run/nginx.pid"));
    let ran = rehost(&d, &["run", "draft.toml", "--yes"]);
    assert_eq!(ran.code, 0, "{}\n{decided}", ran.all());
    let status = rehost(&d, &["status", "draft.toml", "--json"]);
    let st: Value =
        serde_json::from_str(&status.stdout).unwrap_or_else(|e| panic!("{e}: {}", status.all()));
    let steps = st["steps"].as_array().unwrap_or_else(|| panic!("{st:#}"));
    for id in [
        "verify-nginx-www",
        "verify-postgresql-shop",
        "verify-keys",
        "config-nginx",
        "config-postgresql-test",
        "verify-cron-timers",
        "health-nginx",
        "health-postgresql-test",
    ] {
        let s = steps
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("no step {id}: {st:#}"));
        assert_eq!(s["status"], "done", "{s:#}");
    }
    assert!(steps.iter().all(|s| s["status"] == "done"), "{st:#}");
    // What was carried is on the new root.
    assert_eq!(
        std::fs::read(new_root.join("srv/www/index.html")).unwrap(),
        b"hello\n"
    );
    for f in [
        "etc/ssl/private/app.key",
        "etc/cron.d/rotate",
        "etc/systemd/system/backup.timer",
    ] {
        assert_eq!(
            std::fs::read(new_root.join(f)).unwrap(),
            std::fs::read(old.dir.join(f)).unwrap(),
            "{f}"
        );
    }
    assert!(
        pg_new
            .sql("shop", "SELECT count(*) FROM orders;")
            .contains("500"),
        "the new server's copy"
    );

    // The report of the run draws the map of the inventory the draft names.
    let ran = rehost(&d, &["report", "draft.toml", "-o", "report"]);
    // To review: the `--yes` decision, and the pre-flight's warning that the new server had no
    // `shop` before the copy made it. Every point the run proves is verified; a `watch-old`
    // that found no lost write is no finding (regression: it was "finished without a result
    // this rehost reads").
    assert_eq!(ran.code, 1, "{}", ran.all());
    let md = d.read("report/report.md");
    assert!(
        md.contains("**Verdict: REVIEW NEEDED — finished, with 2 point(s) to review**"),
        "{md}"
    );
    for point in [
        "Data complete and correct",
        "Configuration",
        "Keys",
        "Connections",
    ] {
        assert!(
            md.lines()
                .any(|l| l.starts_with(&format!("| {point} | verified |"))),
            "{point} not verified in\n{md}"
        );
    }
    let html = d.read("report/report.html");
    assert_eq!(html.matches("<svg xmlns=").count(), 1, "{html}");
    assert!(
        html.contains(&format!(
            "drawn from the inventory <code>old.json</code>, BLAKE3 <code>{}</code>.",
            rehost_plan::digest(&d.read("old.json"))
        )),
        "{html}"
    );
    assert!(html.contains(">nginx.service :"), "the map draws nginx");

    // The two roots compared: nothing missing; without the cron job, exactly that.
    assert!(
        decided.contains("[survey]\n# found: the inventory this draft was written from (rehost survey)\ninventory = \"old.json\"\n"),
        "{decided}"
    );
    let plan = decided.replacen(
        "[survey]\n",
        "[survey]\n# Both roots share this machine's sockets, which other tests open and close.\nallow = [\"port *\"]\n",
        1,
    );
    d.write("draft.toml", &plan);
    let compare = |d: &TestDir| {
        let ran = rehost(
            d,
            &[
                "survey",
                "--compare",
                "old",
                "new",
                "--plan",
                "draft.toml",
                "--json",
            ],
        );
        let v: Value =
            serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {}", ran.all()));
        for a in v["comparison"]["allowed"].as_array().unwrap() {
            let key = a["key"].as_str().unwrap();
            assert!(key.starts_with("port "), "{a}");
            assert!(
                !key.ends_with(&format!(":{port}")) && !key.ends_with(&format!(":{}", pg.port())),
                "this root's own port is missing on the new one: {a}"
            );
        }
        (ran.code, v["comparison"]["missing"].clone(), v)
    };
    let (code, missing, v) = compare(&d);
    assert_eq!(missing, serde_json::json!([]), "{v:#}");
    assert_eq!(code, 0);
    let compared = &v["comparison"]["compared"];
    assert_eq!(compared["cron jobs"], 1, "{v:#}");
    assert_eq!(compared["timers"], 1, "{v:#}");
    std::fs::remove_file(new_root.join("etc/cron.d/rotate")).unwrap();
    let (code, missing, v) = compare(&d);
    assert_eq!(
        missing,
        serde_json::json!([{
            "key": "cron root 15 3 * * 1 /usr/local/bin/rotate --keep 4",
            "shortfall": "missing",
            "old": "/etc/cron.d/rotate:3",
        }]),
        "{v:#}"
    );
    assert_eq!(code, 1);
    pg_new.stop();
    pg.stop();
}
