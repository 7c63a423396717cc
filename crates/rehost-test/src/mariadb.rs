//! A real MariaDB server on a free loopback port, for tests: `mariadb-install-db` into a
//! temporary directory (its own datadir, socket and PID file; `--user=root` when the tests run
//! as root, which mariadbd otherwise refuses), `mariadbd --no-defaults` in the foreground,
//! ready when a client's `SELECT 1` succeeds, stopped by PID (SIGTERM) when dropped. A missing
//! package fails the test with the install step.

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn find(names: &[&str], dirs: &[&str]) -> PathBuf {
    for d in dirs {
        for n in names {
            let p = PathBuf::from(d).join(n);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "`{}` is not installed; run `bash .ci/install-deps` (as root; it installs mariadb-server and mariadb-client) to install what the tests need",
        names[0]
    )
}

/// A MariaDB client or tool (`mariadb`, `mariadb-dump`…).
pub fn tool(name: &str) -> PathBuf {
    find(&[name], &["/usr/bin", "/usr/local/bin", "/usr/sbin"])
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub struct Mariadb {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Mariadb {
    /// Starts a new server: utf8mb4, root without a password (from loopback), no binary log.
    pub fn start() -> Mariadb {
        let server = find(
            &["mariadbd", "mysqld"],
            &["/usr/sbin", "/usr/bin", "/usr/libexec"],
        );
        let dir = tempfile::Builder::new()
            .prefix("rehost-mariadb-")
            .tempdir()
            .expect("create a temporary directory");
        let data = dir.path().join("data");
        // Its own temporary directory: servers bootstrapping at once in /tmp collide.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).expect("create the temporary directory");
        let mut install = Command::new(tool("mariadb-install-db"));
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ]);
        if is_root() {
            install.arg("--user=root");
        }
        let out = install
            .stdout(Stdio::null())
            .output()
            .expect("run mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut cmd = Command::new(&server);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!(
                "--log-error={}",
                dir.path().join("server.log").display()
            ))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_general_ci",
                "--innodb-buffer-pool-size=64M",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
                "--skip-log-bin",
            ]);
        if is_root() {
            cmd.arg("--user=root");
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        let mut db = Mariadb {
            dir,
            port,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if db.try_sql("", "SELECT 1").is_ok() {
                break;
            }
            let exited = db
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
                .is_some();
            assert!(
                !exited && Instant::now() < deadline,
                "mariadbd did not become ready in 60 s: {}",
                std::fs::read_to_string(db.dir.path().join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        db
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// `mysql://root@127.0.0.1:PORT/DB`.
    pub fn url(&self, db: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{db}", self.port)
    }

    /// The client's connection options for this server (`--protocol=TCP`, host, port, root).
    pub fn client_args(&self) -> Vec<String> {
        vec![
            "--no-defaults".into(),
            "--protocol=TCP".into(),
            "--host=127.0.0.1".into(),
            format!("--port={}", self.port),
            "--user=root".into(),
            "--default-character-set=utf8mb4".into(),
        ]
    }

    /// Runs SQL (a script, on standard input) against `db` (none when empty), failing the test
    /// on any error; returns what the client printed (batch mode, no column names).
    pub fn sql(&self, db: &str, script: &str) -> String {
        self.try_sql(db, script)
            .unwrap_or_else(|e| panic!("SQL failed on port {}: {e}\n{script}", self.port))
    }

    pub fn try_sql(&self, db: &str, script: &str) -> Result<String, String> {
        use std::io::Write;
        let mut cmd = Command::new(tool("mariadb"));
        cmd.args(self.client_args()).args([
            "--batch",
            "--skip-column-names",
            "--connect-timeout=5",
        ]);
        if !db.is_empty() {
            cmd.arg(format!("--database={db}"));
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run mariadb");
        // A client that cannot connect ends without reading: its error says why.
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes());
        let out = child.wait_with_output().expect("wait for mariadb");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Copies database `db` to `to` (where it must exist, empty) with `mariadb-dump | mariadb`.
    pub fn dump_to(&self, db: &str, to: &Mariadb) {
        let script = format!(
            "\"$1\" {} --single-transaction --routines --triggers --events {db} | \"$2\" {} {db}",
            self.client_args().join(" "),
            to.client_args().join(" ")
        );
        let out = Command::new("/bin/sh")
            .args(["-c", &script, "sh"])
            .arg(tool("mariadb-dump"))
            .arg(tool("mariadb"))
            .output()
            .expect("run sh");
        assert!(
            out.status.success(),
            "mariadb-dump | mariadb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            crate::stop_child(child, libc::SIGTERM, Duration::from_secs(30));
        }
    }
}
