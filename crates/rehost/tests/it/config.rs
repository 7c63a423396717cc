//! `rehost verify config` against real configurations: two nginx servers started here (their
//! `nginx -T` dumps), two PostgreSQL clusters (their `pg_settings`), files and trees of the
//! unordered formats; secrets compared and never shown; bounds and unreadable sides.

use crate::support::*;
use rehost_test::TestDir;
use rehost_test::postgres::Postgres;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// An nginx configuration under `dir/PREFIX`, serving `body` on `port`.
pub struct Nginx {
    pub prefix: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl Nginx {
    pub fn conf(&self) -> String {
        self.prefix.join("nginx.conf").display().to_string()
    }

    /// `nginx -T` of this configuration, as `verify config --command` runs it.
    pub fn dump_command(&self) -> String {
        format!(
            "nginx -T -q -p {} -c {} -e stderr",
            self.prefix.display(),
            self.conf()
        )
    }

    /// Starts nginx in the foreground (its own child) and waits until `port` answers `body`.
    pub fn start(&mut self, port: u16, body: &str) {
        self.start_at("127.0.0.1", port, body)
    }

    /// [`Nginx::start`] for a server listening on `address`.
    pub fn start_at(&mut self, address: &str, port: u16, body: &str) {
        let nginx = rehost_test::require_tool("nginx");
        let child = std::process::Command::new(nginx)
            .args(["-p"])
            .arg(&self.prefix)
            .arg("-c")
            .arg(self.conf())
            .args(["-e", "stderr", "-g", "daemon off;"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nginx");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = TcpStream::connect((address, port)) {
                let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.1 200") && answer.ends_with(body) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "nginx did not serve on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            rehost_test::stop_child(c, libc::SIGQUIT, Duration::from_secs(5));
        }
    }
}

/// Writes an nginx configuration: `main` is nginx.conf, `site` conf.d/site.conf, with
/// `PREFIX` replaced by the prefix.
pub fn nginx(dir: &TestDir, name: &str, main: &str, site: &str) -> Nginx {
    let prefix = dir.join(name);
    let p = prefix.display().to_string();
    dir.write(&format!("{name}/nginx.conf"), main.replace("PREFIX", &p));
    dir.write(
        &format!("{name}/conf.d/site.conf"),
        site.replace("PREFIX", &p),
    );
    std::fs::create_dir_all(prefix.join("logs")).expect("logs dir");
    Nginx {
        prefix,
        child: None,
    }
}

const OLD_MAIN: &str = "\
# The old server's nginx.conf.
worker_processes 1;
pid PREFIX/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path PREFIX/tmp;
    include conf.d/*.conf;
}
";

const OLD_SITE: &str = "\
server {
    listen 127.0.0.1:PORT;
    server_name old.example;
    client_max_body_size 1m;
    root PREFIX/html;
    location / { return 200 \"served\"; }
}
";

/// The same configuration written differently: directives reordered, comments and
/// whitespace changed; server_name, the port and the prefix differ as a migration makes them
/// differ; and one real change, client_max_body_size.
const NEW_MAIN: &str = "\
events {
    worker_connections   64;   # unchanged
}
pid PREFIX/nginx.pid;
worker_processes 1;

http {
    include conf.d/*.conf;
    # reordered
    client_body_temp_path PREFIX/tmp;
    access_log off;
}
";

const NEW_SITE: &str = "\
server {
    server_name new.example;
    root PREFIX/html;

    location / {
        return 200 \"served\";
    }
    client_max_body_size 8m;
    listen 127.0.0.1:PORT;
}
";

#[test]
fn nginx_old_and_new_differ_by_the_one_changed_setting_after_normalisation() {
    let d = TestDir::new();
    let (p_old, p_new) = (free_port(), free_port());
    let mut old = nginx(
        &d,
        "old",
        OLD_MAIN,
        &OLD_SITE.replace("PORT", &p_old.to_string()),
    );
    let mut new = nginx(
        &d,
        "new",
        NEW_MAIN,
        &NEW_SITE.replace("PORT", &p_new.to_string()),
    );
    old.start(p_old, "served");
    new.start(p_new, "served");
    let (po, pn) = (
        old.prefix.display().to_string(),
        new.prefix.display().to_string(),
    );
    let listen_old = format!("127.0.0.1:{p_old}");
    let listen_new = format!("127.0.0.1:{p_new}");
    let rw_port = format!("{listen_old}={listen_new}");
    let rw_prefix = format!("{po}={pn}");
    let args = |extra: &[&str]| {
        let mut v = vec![
            "verify".to_owned(),
            "config".into(),
            ":".into(),
            ":".into(),
            "--old-command".into(),
            old.dump_command(),
            "--new-command".into(),
            new.dump_command(),
            "--rewrite".into(),
            rw_port.clone(),
            "--rewrite".into(),
            rw_prefix.clone(),
            "--allow".into(),
            "*.server_name".into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let ran = test_in(&d).args(args(&["--json"])).code(1);
    let v = json(ran.stdout());
    let diffs = v["comparison"]["differences"].as_array().unwrap();
    assert_eq!(diffs.len(), 1, "only the changed setting differs: {v:#}");
    let key = format!("http.server[listen {listen_new}].client_max_body_size");
    assert_eq!(diffs[0]["key"], key);
    assert_eq!(diffs[0]["old"]["value"], "1m");
    assert_eq!(diffs[0]["new"]["value"], "8m");
    assert_eq!(
        diffs[0]["old"]["source"],
        format!("{po}/conf.d/site.conf:4")
    );
    assert_eq!(
        diffs[0]["new"]["source"],
        format!("{pn}/conf.d/site.conf:8")
    );
    let allowed = v["comparison"]["allowed"].as_array().unwrap();
    assert_eq!(allowed.len(), 1, "{v:#}");
    assert_eq!(allowed[0]["old"]["value"], "old.example");
    assert_eq!(allowed[0]["new"]["value"], "new.example");
    assert_eq!(allowed[0]["allowed_by"], "*.server_name");
    assert_eq!(v["formats"]["old"][0], "nginx");

    // The readable diff: the key, `-` and `+` with file:line, the allowed one listed.
    let ran = test_in(&d).args(args(&[])).code(1);
    let out = ran.stdout();
    assert!(
        out.contains(&format!(
            "{key}\n  - 1m  ({po}/conf.d/site.conf:4)\n  + 8m  ({pn}/conf.d/site.conf:8)\n"
        )),
        "{out}"
    );
    assert!(
        out.contains("allowed differences") && out.contains("- old.example"),
        "{out}"
    );
    assert!(out.contains("DIFFERENT: "), "{out}");

    // Declared expected, the change is allowed too: equal, exit 0, both still listed.
    let ran = test_in(&d)
        .args(args(&["--allow", "*.client_max_body_size", "--json"]))
        .code(0);
    let v = json(ran.stdout());
    assert_eq!(v["comparison"]["differences"].as_array().unwrap().len(), 0);
    assert_eq!(v["comparison"]["allowed"].as_array().unwrap().len(), 2);

    // Without the rewrites the port and the prefix are differences too.
    let ran = test_in(&d)
        .args([
            "verify",
            "config",
            ":",
            ":",
            "--old-command",
            &old.dump_command(),
            "--new-command",
            &new.dump_command(),
            "--json",
        ])
        .code(1);
    let v = json(ran.stdout());
    assert!(
        v["comparison"]["differences"].as_array().unwrap().len() > 3,
        "{v:#}"
    );
}

#[test]
fn postgres_settings_name_postgresql_conf_and_the_line_on_each_side() {
    let d = TestDir::new();
    let old = Postgres::start();
    let new = Postgres::start();
    let conf = new.data_dir().join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).expect("read postgresql.conf");
    text.push_str("datestyle = 'SQL, DMY'\n");
    let line = text.lines().count();
    std::fs::write(&conf, text).expect("write postgresql.conf");
    new.sql("postgres", "SELECT pg_reload_conf();");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !new.sql("postgres", "SHOW DateStyle;").contains("SQL") {
        assert!(
            Instant::now() < deadline,
            "the new DateStyle was not loaded"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let ran = test_in(&d)
        .args([
            "verify",
            "config",
            &old.url("postgres"),
            &new.url("postgres"),
            "--allow",
            "port",
            "--json",
        ])
        .code(1);
    let v = json(ran.stdout());
    let diffs = v["comparison"]["differences"].as_array().unwrap();
    assert_eq!(diffs.len(), 1, "{v:#}");
    assert_eq!(diffs[0]["key"], "DateStyle");
    assert_eq!(diffs[0]["new"]["value"], "SQL, DMY");
    assert_eq!(
        diffs[0]["new"]["source"],
        format!("{}:{line}", conf.display())
    );
    let old_src = diffs[0]["old"]["source"].as_str().unwrap();
    assert!(
        old_src.starts_with(&format!("{}/postgresql.conf:", old.data_dir().display())),
        "{old_src}"
    );
    // What necessarily differs is listed as allowed, with both values: nothing hidden.
    let allowed: Vec<&str> = v["comparison"]["allowed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    assert!(
        allowed.contains(&"port") && allowed.contains(&"data_directory"),
        "{allowed:?}"
    );
    let text = test_in(&d)
        .args([
            "verify",
            "config",
            &old.url("postgres"),
            &new.url("postgres"),
            "--allow",
            "port",
        ])
        .code(1);
    assert!(
        text.stdout()
            .contains("default: data_directory is per session or necessarily differs"),
        "{}",
        text.stdout()
    );
}

#[test]
fn unordered_files_and_trees_are_equal_and_a_changed_json_leaf_is_named() {
    let d = TestDir::new();
    d.write("old/app.env", "# settings\nA=1\nB = two\n\nC=3\n");
    d.write("new/app.env", "C=3\nA=1\n; other comment\nB=two\n");
    d.write("old/svc.ini", "[main]\nx = 1\ny = 2\n[log]\nlevel = info\n");
    d.write("new/svc.ini", "[log]\nlevel=info\n\n[main]\ny=2\nx=1\n");
    d.write(
        "old/app.json",
        r#"{"db":{"hosts":["a","b"],"pool":{"size":10}},"debug":false}"#,
    );
    d.write(
        "new/app.json",
        r#"{"debug":false,"db":{"pool":{"size":20},"hosts":["a","b"]}}"#,
    );
    // Each file alone.
    test_in(&d)
        .args(["verify", "config", "old/app.env", "new/app.env"])
        .stdout_has("equal: 3 keys compared, 3 equal")
        .code(0);
    test_in(&d)
        .args(["verify", "config", "old/svc.ini", "new/svc.ini"])
        .code(0);
    let ran = test_in(&d)
        .args(["verify", "config", "old/app.json", "new/app.json", "--json"])
        .code(1);
    let v = json(ran.stdout());
    let diffs = v["comparison"]["differences"].as_array().unwrap();
    assert_eq!(diffs.len(), 1, "{v:#}");
    assert_eq!(diffs[0]["key"], "db.pool.size");
    // The trees, file by file: the one leaf, named with its file.
    let ran = test_in(&d)
        .args(["verify", "config", "old", "new", "--json"])
        .code(1);
    let v = json(ran.stdout());
    let diffs = v["comparison"]["differences"].as_array().unwrap();
    assert_eq!(diffs.len(), 1, "{v:#}");
    assert_eq!(diffs[0]["key"], "app.json: db.pool.size");
    assert_eq!(diffs[0]["old"]["value"], "10");
    assert_eq!(diffs[0]["new"]["value"], "20");
    // A file only one side has is a difference.
    d.write("new/extra.env", "X=1\n");
    let ran = test_in(&d)
        .args([
            "verify",
            "config",
            "old",
            "new",
            "--allow",
            "app.json: *",
            "--json",
        ])
        .code(1);
    let v = json(ran.stdout());
    let keys: Vec<&str> = v["comparison"]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["extra.env", "extra.env: X"], "{v:#}");
}

#[test]
fn a_secret_that_differs_is_reported_without_its_value() {
    let d = TestDir::new();
    d.write("old/redis.conf", "port 6379\nrequirepass Old-Secret-4711\n");
    d.write("new/redis.conf", "requirepass New-Secret-0815\nport 6379\n");
    d.write("old/db.ini", "[client]\nuser = app\npassword = Old-Pw-99\n");
    d.write("new/db.ini", "[client]\npassword = New-Pw-77\nuser = app\n");
    for extra in [None, Some("--json")] {
        let mut t = test_in(&d).args(["verify", "config", "old", "new"]);
        if let Some(e) = extra {
            t = t.arg(e);
        }
        let ran = t
            .never_prints("Secret-4711")
            .never_prints("Secret-0815")
            .never_prints("Pw-99")
            .never_prints("Pw-77")
            .code(1);
        if extra.is_none() {
            assert!(
                ran.stdout()
                    .contains("redis.conf: requirepass\n  differs (secret, not shown)"),
                "{}",
                ran.stdout()
            );
            assert!(
                ran.stdout().contains("2 secret (compared, not shown)"),
                "{}",
                ran.stdout()
            );
        } else {
            let v = json(ran.stdout());
            let diffs = v["comparison"]["differences"].as_array().unwrap();
            assert_eq!(diffs.len(), 2, "{v:#}");
            assert!(diffs.iter().all(|d| d["secret"] == true), "{v:#}");
        }
    }
    // Equal secrets are equal.
    d.write("new/redis.conf", "requirepass Old-Secret-4711\nport 6379\n");
    d.write("new/db.ini", "[client]\npassword = Old-Pw-99\nuser = app\n");
    test_in(&d)
        .args(["verify", "config", "old", "new"])
        .never_prints("Secret-4711")
        .code(0);
}

#[test]
fn a_side_that_cannot_be_read_is_trouble_naming_it() {
    let d = TestDir::new();
    d.write("a.conf", "x=1\n");
    test_in(&d)
        .args(["verify", "config", "a.conf", "missing.conf"])
        .stderr_has("missing.conf")
        .code(2);
    test_in(&d)
        .args([
            "verify",
            "config",
            ":",
            ":",
            "--command",
            "echo out; echo oops >&2; exit 3",
        ])
        .stderr_has("failed (exit 3): oops")
        .code(2);
    // A side larger than the bound is refused, naming the bound.
    d.write("big.conf", "x=1\n".repeat(100));
    test_in(&d)
        .env("REHOST_MAX_CONFIG_BYTES", "100")
        .args(["verify", "config", "a.conf", "big.conf"])
        .stderr_has("larger than 100 bytes")
        .code(2);
    // Control characters from a side are escaped.
    d.write("esc.conf", "x=\u{1b}[2J\n");
    test_in(&d)
        .args(["verify", "config", "a.conf", "esc.conf"])
        .never_prints("\u{1b}")
        .code(1);
    // A bad --format names the formats.
    test_in(&d)
        .args(["verify", "config", "a.conf", "a.conf", "--format", "yaml"])
        .stderr_has("one of nginx, spaced")
        .code(2);
}

fn every_file(dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            every_file(&p, out);
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p.display().to_string(), b));
        }
    }
}

const STEP_PLAN: &str = r#"
[[steps]]
id = "app-config"
do = "verify-config"
old = "old:/etc/app"
new = "new:/etc/app"
allow = ["app.ini: main.hostname"]
rewrite = [{ from = "/srv/old", to = "/srv/new" }]

[[steps]]
id = "nginx-config"
do = "verify-config"
after = ["app-config"]
old = "old:"
new = "new:"
old_command = "OLD_COMMAND"
new_command = "NEW_COMMAND"
allow = ["*.server_name"]
rewrite = [{ from = "OLD_PREFIX", to = "NEW_PREFIX" }, { from = "OLD_LISTEN", to = "NEW_LISTEN" }]
"#;

#[test]
fn the_verify_config_step_records_the_comparison_and_fails_on_a_difference() {
    let d = TestDir::new();
    d.write(
        "test-old/etc/app/app.ini",
        "[main]\nhostname = old.example\ndata = /srv/old/data\nworkers = 4\n[auth]\npassword = Step-Secret-Old\n",
    );
    d.write(
        "test-new/etc/app/app.ini",
        "[auth]\npassword = Step-Secret-New\n[main]\nworkers = 8\ndata = /srv/new/data\nhostname = new.example\n",
    );
    d.write("test-old/etc/app/limits.env", "MAX=10\nMIN=1\n");
    d.write("test-new/etc/app/limits.env", "MIN=1\nMAX=10\n");
    let (p_old, p_new) = (free_port(), free_port());
    let old = nginx(
        &d,
        "ngx-old",
        OLD_MAIN,
        &OLD_SITE.replace("PORT", &p_old.to_string()),
    );
    let new = nginx(
        &d,
        "ngx-new",
        NEW_MAIN,
        &NEW_SITE.replace("PORT", &p_new.to_string()),
    );
    // The new nginx has the old body size: the nginx step is equal.
    let site = new.prefix.join("conf.d/site.conf");
    let text = std::fs::read_to_string(&site).unwrap().replace("8m", "1m");
    std::fs::write(&site, text).unwrap();
    let plan = STEP_PLAN
        .replace("OLD_COMMAND", &old.dump_command())
        .replace("NEW_COMMAND", &new.dump_command())
        .replace("OLD_PREFIX", &old.prefix.display().to_string())
        .replace("NEW_PREFIX", &new.prefix.display().to_string())
        .replace("OLD_LISTEN", &format!("127.0.0.1:{p_old}"))
        .replace("NEW_LISTEN", &format!("127.0.0.1:{p_new}"));
    write_plan(&d, &plan);
    let o = rehost(&d, &["check", "plan.toml"]);
    assert!(!o.all().contains("error"), "{}", o.all());

    let secrets = ["Step-Secret-Old", "Step-Secret-New"];
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_ne!(o.code, 0, "a difference fails the step: {}", o.all());
    assert!(
        o.all()
            .contains("the configuration differs: 8 keys compared")
            && o.all().contains("app.ini: main.workers"),
        "{}",
        o.all()
    );
    for s in secrets {
        assert!(!o.all().contains(s), "{s}: {}", o.all());
    }
    let journal = d.read(".rehost/plan/test/journal");
    let rec = journal
        .lines()
        .find(|l| l.contains("\"kind\":\"verify-config\""))
        .unwrap_or_else(|| panic!("the typed result is in the journal: {journal}"));
    // A record is its JSON, a TAB, its checksum and its chain digest.
    let rec: serde_json::Value = serde_json::from_str(rec.split('\t').next().unwrap()).unwrap();
    let data = &rec["result_data"];
    assert_eq!(data["kind"], "verify-config", "{rec:#}");
    let c = &data["comparison"];
    let keys: Vec<&str> = c["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["app.ini: auth.password", "app.ini: main.workers"],
        "{data:#}"
    );
    assert_eq!(c["differences"][0]["secret"], true);
    assert_eq!(c["differences"][1]["old"]["source"], "app.ini:4");
    assert_eq!(c["allowed"][0]["key"], "app.ini: main.hostname");
    assert_eq!(data["old"], "old:/etc/app");

    let o = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 1, "the verdict is FAILED: {}", o.all());
    assert!(o.stdout.contains("Verification `app-config` (attempt 1) found differences: 2 finding(s) (1 changed, 1 secret differs)"), "{}", o.all());
    let md = d.read(".rehost/plan/test/report.md");
    assert!(
        md.contains("`app-config` attempt 1: `configuration` — DIFFERENCES FOUND"),
        "{md}"
    );
    assert!(
        md.contains("`app.ini: main.workers`") && md.contains("4 (app.ini:4)"),
        "{md}"
    );
    assert!(
        md.contains("Allowed differences") && md.contains("`old.example`"),
        "{md}"
    );
    assert!(md.contains("secret differs"), "{md}");

    // The difference carried over: both steps pass, the nginx one through its commands.
    d.write(
        "test-new/etc/app/app.ini",
        "[auth]\npassword = Step-Secret-New\n[main]\nworkers = 4\ndata = /srv/new/data\nhostname = new.example\n",
    );
    let o = rehost(
        &d,
        &["run", "plan.toml", "--env", "test", "--state", "again"],
    );
    assert_ne!(o.code, 0, "the secret still differs: {}", o.all());
    d.write(
        "test-new/etc/app/app.ini",
        "[auth]\npassword = Step-Secret-Old\n[main]\nworkers = 4\ndata = /srv/new/data\nhostname = new.example\n",
    );
    let o = rehost(
        &d,
        &["run", "plan.toml", "--env", "test", "--state", "third"],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.all()
            .contains("configuration equal after the declared differences"),
        "{}",
        o.all()
    );
    let o = rehost(
        &d,
        &["report", "plan.toml", "--env", "test", "--state", "third"],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    let md = d.read("third/test/report.md");
    assert!(
        md.contains(
            "`nginx-config` attempt 1: `configuration` — equal after the declared differences"
        ),
        "{md}"
    );
    assert!(md.contains("`new.example`"), "{md}");

    let mut files = Vec::new();
    for dir in [".rehost", "again", "third"] {
        every_file(&d.join(dir), &mut files);
    }
    assert!(files.iter().any(|(p, _)| p.ends_with("/test/journal")));
    for (p, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        for s in secrets {
            assert!(!text.contains(s), "{s} in {p}");
        }
    }
}
