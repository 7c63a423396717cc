//! `rehost survey` (issue 25): a host reached over a real sshd, whose root holds an nginx with
//! TLS (a certificate made by openssl here), a real PostgreSQL, a cron job and a systemd timer,
//! with a client holding a connection to nginx while the survey samples: each service appears
//! with its chain socket → process → unit → package → configuration → data → key → name, and
//! the client is persistent. systemd does not run here, so the units are tied to the processes
//! by their unit files' `ExecStart=` (what the `found` of each unit says).

use crate::support::rehost;
use rehost_test::TestDir;
use rehost_test::postgres::Postgres;
use rehost_test::sshd::Sshd;
use serde_json::Value;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx started in the foreground with `conf`, stopped (SIGQUIT, then waited for) on drop.
pub(crate) struct Nginx(Option<Child>);

impl Nginx {
    pub(crate) fn start(conf: &Path, port: u16) -> Nginx {
        let nginx = rehost_test::require_tool("nginx");
        let child = Command::new(nginx)
            .arg("-c")
            .arg(conf)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nginx");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen in 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx(Some(child))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            rehost_test::stop_child(c, libc::SIGQUIT, Duration::from_secs(10));
        }
    }
}

/// A host's root with nginx's configuration and a certificate, a cron job, a timer and the
/// unit files of nginx and PostgreSQL (written as systemd would find them).
pub(crate) struct Root {
    pub(crate) dir: PathBuf,
    pub(crate) nginx_conf: PathBuf,
}

pub(crate) fn host_root(d: &TestDir, nginx_port: u16, pg: &Postgres) -> Root {
    let root = d.join("old-root");
    let r = |p: &str| root.join(p.trim_start_matches('/'));
    for dir in [
        "/etc/nginx/sites-enabled",
        "/etc/ssl/private",
        "/srv/www",
        "/var/lib/nginx",
        "/var/log/nginx",
        "/run",
        "/etc/cron.d",
        "/etc/systemd/system/multi-user.target.wants",
        "/etc/systemd/system/timers.target.wants",
    ] {
        std::fs::create_dir_all(r(dir)).unwrap();
    }
    std::fs::copy("/etc/passwd", r("/etc/passwd")).unwrap();
    std::fs::copy("/etc/group", r("/etc/group")).unwrap();
    // The host's own record of its fully qualified name (the kernel's host name is this
    // machine's: the roots share it).
    std::fs::write(
        r("/etc/hosts"),
        format!(
            "127.0.0.1 localhost\n127.0.1.1 {h}.example.test {h}\n",
            h = this_hostname()
        ),
    )
    .unwrap();
    std::fs::write(r("/srv/www/index.html"), "hello\n").unwrap();
    let openssl = rehost_test::require_tool("openssl");
    let st = Command::new(openssl)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        ])
        .args(["-subj", "/CN=app.example.test"])
        .args([
            "-addext",
            "subjectAltName=DNS:app.example.test,DNS:www.example.test",
        ])
        .arg("-keyout")
        .arg(r("/etc/ssl/private/app.key"))
        .arg("-out")
        .arg(r("/etc/ssl/app.crt"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(st.success(), "openssl req failed");
    let p = |x: &str| r(x).display().to_string();
    let conf = r("/etc/nginx/nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "pid {pid};\nerror_log {log};\nevents {{ worker_connections 64; }}\nhttp {{\n    access_log off;\n    client_body_temp_path {tmp}/body;\n    proxy_temp_path {tmp}/proxy;\n    fastcgi_temp_path {tmp}/fastcgi;\n    uwsgi_temp_path {tmp}/uwsgi;\n    scgi_temp_path {tmp}/scgi;\n    include {sites}/*;\n}}\n",
            pid = p("/run/nginx.pid"),
            log = p("/var/log/nginx/error.log"),
            tmp = p("/var/lib/nginx"),
            sites = p("/etc/nginx/sites-enabled"),
        ),
    )
    .unwrap();
    std::fs::write(
        r("/etc/nginx/sites-enabled/app"),
        format!(
            "server {{\n    listen 127.0.0.1:{nginx_port} ssl;\n    server_name app.example.test;\n    ssl_certificate {crt};\n    ssl_certificate_key {key};\n    root {www};\n}}\n",
            crt = p("/etc/ssl/app.crt"),
            key = p("/etc/ssl/private/app.key"),
            www = p("/srv/www"),
        ),
    )
    .unwrap();
    let units = r("/etc/systemd/system");
    std::fs::write(
        units.join("nginx.service"),
        format!(
            "[Unit]\nDescription=web\n[Service]\nType=forking\nExecStart=/usr/sbin/nginx -c {} -g \"daemon off;\"\n[Install]\nWantedBy=multi-user.target\n",
            conf.display()
        ),
    )
    .unwrap();
    std::fs::write(
        units.join("postgresql-test.service"),
        format!(
            "[Service]\nUser=postgres\nExecStart={} -D {} -p {}\n",
            rehost_test::postgres::tool("postgres").display(),
            pg.data_dir().display(),
            pg.port()
        ),
    )
    .unwrap();
    std::fs::write(
        units.join("backup.service"),
        "[Service]\nType=oneshot\nExecStart=/usr/bin/tar -czf /var/backups/www.tgz /srv/www\n",
    )
    .unwrap();
    std::fs::write(
        units.join("backup.timer"),
        "[Timer]\nOnCalendar=*-*-* 02:30:00\nPersistent=true\n[Install]\nWantedBy=timers.target\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "../nginx.service",
        units.join("multi-user.target.wants/nginx.service"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "../backup.timer",
        units.join("timers.target.wants/backup.timer"),
    )
    .unwrap();
    std::fs::write(
        r("/etc/cron.d/rotate"),
        "MAILTO=root\n# rotate the exports\n15 3 * * 1 root /usr/local/bin/rotate --keep 4\n",
    )
    .unwrap();
    Root {
        dir: root,
        nginx_conf: conf,
    }
}

pub(crate) fn this_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

fn service<'a>(inv: &'a Value, id: &str) -> &'a Value {
    inv["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| {
            let ids: Vec<&Value> = inv["services"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| &s["id"])
                .collect();
            panic!("no service {id} among {ids:?}")
        })
}

fn strings<'a>(v: &'a Value, field: &str) -> Vec<&'a str> {
    v.as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x[field].as_str())
        .collect()
}

#[test]
fn a_survey_over_ssh_follows_each_service_from_socket_to_client() {
    let sshd = Sshd::start();
    let d = TestDir::new();
    let mut pg = Postgres::start();
    pg.sql("postgres", "CREATE DATABASE shop;");
    let port = free_port();
    let root = host_root(&d, port, &pg);
    let _nginx = Nginx::start(&root.nginx_conf, port);
    // A client that holds its connection through the whole sampling.
    let held = TcpStream::connect(("127.0.0.1", port)).unwrap();
    d.write(
        "plan.toml",
        format!(
            r#"
[migration]
title = "Survey"
initiated_by = ["IT security officer"]
implemented_by = "Administrator"
window = {{ start = "2020-01-01T00:00:00Z", end = "2099-01-01T00:00:00Z" }}
max_downtime = "15m"

[hosts.old]
ssh = "{dest}"
ssh_config = "{config}"
root = "{root}"

[hosts.new]
local = true
root = "new"

[environments.test]
old = {{ local = true, root = "test-old" }}
new = {{ local = true, root = "test-new" }}
"#,
            dest = sshd.destination(),
            config = sshd.ssh_config().display(),
            root = root.dir.display(),
        ),
    );
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
    let inv: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.all()));
    let gaps = inv["gaps"].as_array().unwrap();
    assert_eq!(
        out.code,
        if gaps.is_empty() { 0 } else { 1 },
        "{}",
        out.all()
    );
    assert_eq!(inv["host"], "old");
    assert_eq!(
        inv["system"]["fqdn"],
        format!("{}.example.test", this_hostname()),
        "from the root's /etc/hosts"
    );
    assert!(
        out.stderr.contains("sampling the clients"),
        "{}",
        out.stderr
    );

    // nginx: socket → process → unit → package → configuration → data → keys → names.
    let web = service(&inv, "nginx.service");
    assert_eq!(web["kind"], "nginx");
    assert!(
        web["listens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["proto"] == "tcp" && l["port"] == port),
        "{web:#}"
    );
    let socket = inv["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["listen"]["port"] == port && s["listen"]["proto"] == "tcp")
        .unwrap();
    assert_eq!(socket["service"], "nginx.service");
    assert_eq!(socket["found"]["by"], "kernel");
    assert_eq!(web["processes"][0]["exe"], "/usr/sbin/nginx");
    assert_eq!(web["processes"][0]["pid"], socket["pid"]);
    let unit = &web["unit"];
    assert_eq!(unit["files"][0], "/etc/systemd/system/nginx.service");
    assert_eq!(unit["enabled"], true);
    assert_eq!(unit["found"]["by"], "init");
    assert!(
        unit["found"]["source"]
            .as_str()
            .unwrap()
            .contains("ExecStart= runs /proc/"),
        "{unit}"
    );
    let expected_pkg = String::from_utf8(
        Command::new("dpkg-query")
            .args(["-S", "/usr/sbin/nginx"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let expected_pkg = expected_pkg.split(':').next().unwrap().trim();
    assert_eq!(web["package"]["name"], expected_pkg, "{web:#}");
    assert!(!web["package"]["version"].as_str().unwrap().is_empty());
    assert_eq!(web["package"]["found"]["by"], "package");
    let config = strings(&web["config"], "path");
    for c in ["/etc/nginx/nginx.conf", "/etc/nginx/sites-enabled/app"] {
        assert!(config.contains(&c), "{c} not in {config:?}");
    }
    let data = &web["data"].as_array().unwrap();
    let www = data
        .iter()
        .find(|x| x["path"] == "/srv/www")
        .expect("nginx root");
    assert_eq!(www["role"], "nginx-root");
    assert_eq!(
        www["found"]["source"],
        "root at /etc/nginx/sites-enabled/app:6"
    );
    assert_eq!(www["owner"], "root");
    let keys = web["keys"].as_array().unwrap();
    let crt = keys
        .iter()
        .find(|k| k["path"] == "/etc/ssl/app.crt")
        .expect("certificate");
    let key = keys
        .iter()
        .find(|k| k["path"] == "/etc/ssl/private/app.key")
        .expect("key");
    assert_eq!(crt["kind"], "certificate");
    assert_eq!(
        key["found"]["source"],
        "ssl_certificate_key at /etc/nginx/sites-enabled/app:5"
    );
    // The private key is named by its public half, the same as the certificate's.
    assert_eq!(crt["fingerprint"], key["fingerprint"], "{keys:#?}");
    assert!(!out.stdout.contains("PRIVATE KEY"));
    let names = strings(&web["names"], "name");
    for n in ["app.example.test", "www.example.test"] {
        assert!(names.contains(&n), "{n} not in {names:?}");
    }
    // The client that held its connection through every sample.
    let client = inv["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["port"] == port)
        .unwrap_or_else(|| panic!("no client of port {port}: {:#}", inv["clients"]));
    assert_eq!(client["service"], "nginx.service");
    assert_eq!(client["peer"], "127.0.0.1");
    assert_eq!(client["persistent"], true);
    assert_eq!(client["seen_in"], inv["sampled"]["samples"]);
    assert!(
        inv["sampled"]["samples"].as_u64().unwrap() >= 3,
        "{}",
        inv["sampled"]
    );

    // PostgreSQL: its data directory and databases as the running server answered.
    let db = service(&inv, "postgresql-test.service");
    assert_eq!(db["kind"], "postgresql");
    assert_eq!(db["processes"][0]["user"], "postgres");
    let pgdata = db["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["role"] == "postgresql-data-directory" && x["found"]["by"] == "server")
        .unwrap_or_else(|| panic!("no data directory from the server: {db:#}"));
    assert_eq!(pgdata["path"], pg.data_dir().display().to_string());
    assert_eq!(
        pgdata["found"]["source"],
        format!("SHOW data_directory on port {}", pg.port())
    );
    let dbs = &db["databases"][0];
    assert_eq!(dbs["engine"], "postgresql");
    assert_eq!(dbs["port"], pg.port());
    assert!(
        dbs["names"].as_array().unwrap().iter().any(|n| n == "shop"),
        "{dbs}"
    );
    assert!(
        db["listens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["proto"] == "unix" && l["address"] == pg.socket().display().to_string()),
        "{db:#}"
    );

    // Around the services: the cron job and the timer with the unit it starts.
    let cron = inv["cron"].as_array().unwrap();
    let job = cron
        .iter()
        .find(|c| c["file"] == "/etc/cron.d/rotate")
        .expect("cron job");
    assert_eq!(job["line"], 3);
    assert_eq!(job["user"], "root");
    assert_eq!(job["schedule"], "15 3 * * 1");
    assert_eq!(job["command"], "/usr/local/bin/rotate --keep 4");
    let timer = inv["timers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "backup.timer")
        .unwrap();
    assert_eq!(timer["unit"], "backup.service");
    assert_eq!(timer["enabled"], true);
    assert_eq!(timer["schedule"][0], "OnCalendar=*-*-* 02:30:00");
    let backup = service(&inv, "backup.service");
    assert_eq!(
        backup["unit"]["exec_start"],
        "/usr/bin/tar -czf /var/backups/www.tgz /srv/www"
    );
    assert_eq!(backup["package"]["name"], "tar");
    assert!(
        inv["units"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "nginx.service")
    );

    // The summary says the same, with where each fact was read.
    let text = rehost(&d, &["survey", "old", "--plan", "plan.toml", "--for", "0"]);
    assert!(text.code == 0 || text.code == 1, "{}", text.all());
    for line in [
        "  nginx.service [nginx]".to_owned(),
        format!("    listens   tcp 127.0.0.1:{port}"),
        "    data      nginx-root /srv/www (owner root)  ← root at /etc/nginx/sites-enabled/app:6"
            .to_owned(),
        "    name      www.example.test  ← subjectAltName of /etc/ssl/app.crt".to_owned(),
        "  15 3 * * 1 root /usr/local/bin/rotate --keep 4  (/etc/cron.d/rotate:3)".to_owned(),
    ] {
        assert!(
            text.stdout.lines().any(|l| l == line),
            "{line:?} not in\n{}",
            text.stdout
        );
    }
    pg.stop();
}

/// Peak resident memory of this process's waited-for children (`ru_maxrss`, KiB → bytes).
/// Runs `args` (the rehost binary's) in `dir` to its end: its stdout, stderr and exit code, and
/// its peak resident memory, measured by a small Python parent that spawns it and reads
/// `RUSAGE_CHILDREN`. Measured from this process, the figure would not be rehost's: under
/// `cargo test` every test shares one large process, a child's pre-exec copy of it counts in
/// its `ru_maxrss` (CI saw 357 MiB), and `RUSAGE_CHILDREN` here covers every test's children.
fn run_measured(dir: &std::path::Path, args: &[&str]) -> (Vec<u8>, Vec<u8>, Option<i32>, u64) {
    const PARENT: &str = "import resource, subprocess, sys\n\
        r = subprocess.run(sys.argv[2:], stdout=sys.stdout, stderr=sys.stderr)\n\
        open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n\
        sys.exit(r.returncode)\n";
    let python = rehost_test::require_tool("python3");
    let figure = dir.join("maxrss");
    let out = Command::new(python)
        .args(["-c", PARENT])
        .arg(&figure)
        .arg(crate::support::bin())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let kib: u64 = std::fs::read_to_string(&figure)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
        .trim()
        .parse()
        .unwrap();
    (out.stdout, out.stderr, out.status.code(), kib << 10)
}

/// Memory stays bounded on a host with 100,000 files under /etc and /var/lib, most of them in
/// the directories the survey reads (cron.d, unit files, sysctl.d, dpkg's database): every
/// directory is read as a stream and cut at its bound with a gap, never held whole.
#[test]
fn a_survey_of_a_host_with_100000_files_stays_within_its_memory() {
    const CAP: u64 = 256 << 20;
    let d = TestDir::new();
    let root = d.join("big-root");
    let mk =
        |dir: &str, n: usize, name: &dyn Fn(usize) -> String, text: &dyn Fn(usize) -> String| {
            let at = root.join(dir);
            std::fs::create_dir_all(&at).unwrap();
            for i in 0..n {
                std::fs::write(at.join(name(i)), text(i)).unwrap();
            }
        };
    mk("etc/cron.d", 25_000, &|i| format!("job{i}"), &|i| {
        format!("{} 1 * * * root /usr/local/bin/job {i}\n", i % 60)
    });
    mk(
        "etc/systemd/system",
        25_000,
        &|i| format!("u{i}.service"),
        &|i| format!("[Service]\nExecStart=/usr/local/bin/u{i} --serve\n"),
    );
    mk("etc/sysctl.d", 10_000, &|i| format!("{i}.conf"), &|i| {
        format!("net.test.k{i} = {i}\n")
    });
    mk(
        "var/lib/dpkg/info",
        20_000,
        &|i| format!("p{i}.list"),
        &|i| format!("/usr/share/p{i}\n"),
    );
    // Files no survey reads: hard links of one (one system call each, on a loaded machine).
    let big = root.join("var/lib/big");
    std::fs::create_dir_all(&big).unwrap();
    std::fs::write(big.join("0"), "").unwrap();
    for i in 1..20_000 {
        std::fs::hard_link(big.join("0"), big.join(i.to_string())).unwrap();
    }
    let mut status = String::new();
    for i in 0..20_000 {
        status.push_str(&format!(
            "Package: p{i}\nStatus: install ok installed\nVersion: 1.{i}\nArchitecture: amd64\n\n"
        ));
    }
    std::fs::write(root.join("var/lib/dpkg/status"), status).unwrap();
    d.write(
        "plan.toml",
        crate::support::plan("").replace("root = \"prod-old\"", "root = \"big-root\""),
    );
    let (stdout, stderr, code, peak) = run_measured(
        d.path(),
        &[
            "survey",
            "old",
            "--plan",
            "plan.toml",
            "--for",
            "0",
            "--json",
        ],
    );
    let stdout = String::from_utf8_lossy(&stdout);
    let inv: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&stderr)));
    assert_eq!(code, Some(1), "gaps: the directories were cut");
    assert!(peak > 0);
    assert!(
        peak < CAP,
        "rehost survey of 100,000 files peaked at {} MiB, over the cap of {} MiB",
        peak >> 20,
        CAP >> 20
    );
    assert_eq!(inv["packages"].as_array().unwrap().len(), 20_000);
    assert_eq!(inv["cron"].as_array().unwrap().len(), 20_000);
    assert_eq!(inv["sysctl"].as_array().unwrap().len(), 10_000);
    let gaps: Vec<&str> = inv["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["what"].as_str())
        .collect();
    for cut in ["/etc/cron.d", "/etc/systemd/system"] {
        assert!(gaps.contains(&cut), "no gap for {cut}: {gaps:?}");
    }
    eprintln!(
        "peak RSS of rehost survey with 100,000 files: {} MiB",
        peak >> 20
    );
}

/// A survey of this machine (no root): a PostgreSQL serving TLS has its certificate and key
/// as the server names them (`SHOW ssl_cert_file`, `ssl_key_file`), identified by their public
/// fingerprint, and the certificate's SANs as names; the server's data directory as it says.
#[test]
fn a_survey_of_this_machine_finds_the_keys_postgresql_serves_tls_with() {
    let d = TestDir::new();
    let pg = Postgres::start();
    let data = pg.data_dir();
    let openssl = rehost_test::require_tool("openssl");
    let st = Command::new(openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "30", "-subj", "/CN=db.example.test"])
        .args(["-addext", "subjectAltName=DNS:db.example.test"])
        .arg("-keyout")
        .arg(data.join("server.key"))
        .arg("-out")
        .arg(data.join("server.crt"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(st.success(), "openssl req failed");
    for f in ["server.key", "server.crt"] {
        let st = Command::new("chown")
            .arg("postgres:postgres")
            .arg(data.join(f))
            .status()
            .unwrap();
        assert!(st.success());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    pg.sql("postgres", "ALTER SYSTEM SET ssl = on;");
    pg.sql("postgres", "SELECT pg_reload_conf();");
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg.sql("postgres", "SHOW ssl;") != "on" {
        assert!(Instant::now() < deadline, "ssl did not come on");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = rehost(&d, &["survey", "--for", "0", "--json"]);
    let inv: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.all()));
    assert_eq!(inv["host"], "this machine");
    let db = inv["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["databases"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| d["port"] == pg.port()))
        })
        .unwrap_or_else(|| {
            panic!(
                "no service serves port {}: {:#}",
                pg.port(),
                inv["services"]
            )
        });
    assert_eq!(db["kind"], "postgresql");
    let keys = db["keys"].as_array().unwrap();
    let crt = keys
        .iter()
        .find(|k| k["kind"] == "certificate")
        .unwrap_or_else(|| panic!("no certificate: {db:#}"));
    let key = keys.iter().find(|k| k["kind"] != "certificate").unwrap();
    assert_eq!(crt["path"], data.join("server.crt").display().to_string());
    assert_eq!(
        crt["found"]["source"],
        format!("SHOW ssl_cert_file on port {}", pg.port())
    );
    assert_eq!(key["path"], data.join("server.key").display().to_string());
    assert_eq!(crt["fingerprint"], key["fingerprint"]);
    assert!(
        strings(&db["names"], "name").contains(&"db.example.test"),
        "{db:#}"
    );
    let pgdata = db["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["found"]["by"] == "server")
        .unwrap();
    assert_eq!(pgdata["path"], data.display().to_string());
    assert_eq!(pgdata["owner"], "postgres");
}

/// MariaDB's data directory is the one the running server answers (`SELECT @@datadir`), not
/// only the one its command line names: the server here is asked over its socket, and its
/// databases are listed with it.
#[test]
fn a_survey_of_this_machine_asks_mariadb_for_its_datadir() {
    let d = TestDir::new();
    let db = rehost_test::mariadb::Mariadb::start();
    db.sql("", "CREATE DATABASE shop;");
    let data = db.socket().parent().unwrap().join("data");
    let out = rehost(&d, &["survey", "--for", "0", "--json"]);
    let inv: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.all()));
    let svc = inv["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["listens"].as_array().is_some_and(|l| {
                l.iter()
                    .any(|l| l["proto"] == "tcp" && l["port"] == db.port())
            })
        })
        .unwrap_or_else(|| panic!("no service listens on {}: {:#}", db.port(), inv["services"]));
    assert_eq!(svc["kind"], "mariadb", "{svc:#}");
    let datadir = svc["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["role"] == "mariadb-datadir")
        .unwrap_or_else(|| panic!("no datadir: {svc:#}"));
    assert_eq!(datadir["path"], data.display().to_string(), "{svc:#}");
    assert_eq!(datadir["found"]["by"], "server", "{svc:#}");
    assert_eq!(
        datadir["found"]["source"],
        format!("SELECT @@datadir on port {}", db.port())
    );
    let dbs = &svc["databases"][0];
    assert_eq!(dbs["engine"], "mariadb");
    assert_eq!(dbs["port"], db.port());
    assert!(
        dbs["names"].as_array().unwrap().iter().any(|n| n == "shop"),
        "{dbs}"
    );
    assert!(
        dbs["version"].as_str().unwrap().contains("MariaDB"),
        "{dbs}"
    );
}
