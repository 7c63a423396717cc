//! A real PostgreSQL cluster on a free loopback port, for tests: `initdb` into a temporary
//! directory (owned by the `postgres` user when the tests run as root, which PostgreSQL
//! refuses), started in the foreground, ready when `pg_isready` says so, stopped by PID (fast
//! shutdown) when dropped. A missing package fails the test with the install step. A cluster
//! can be stopped, started again, and upgraded into a new one with `pg_upgrade`.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The newest installed server's `bin` directory (Debian: /usr/lib/postgresql/N/bin).
pub fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, b)) => b,
        None => panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/N/bin/initdb); run `bash .ci/install-deps` (as root) to install what the tests need"
        ),
    }
}

pub fn tool(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    if !p.is_file() {
        panic!(
            "`{name}` is not installed; run `bash .ci/install-deps` (as root) to install what the tests need"
        );
    }
    p
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `cmd` as the user that owns the cluster (postgres when we are root).
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ]);
        c.arg(program);
        c
    } else {
        Command::new(program)
    }
}

pub struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Postgres {
    /// Starts a new cluster (UTF8, locale C.UTF-8, trust authentication on loopback).
    pub fn start() -> Postgres {
        let mut pg = Postgres::init();
        pg.run();
        pg
    }

    /// A new cluster, initialised but not started (for `pg_upgrade`, which wants its new
    /// cluster stopped and empty).
    pub fn init() -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("rehost-pg-")
            .tempdir()
            .expect("create a temporary directory");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("create the data directory");
        if is_root() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("run chown");
            assert!(st.success(), "chown the cluster directory to postgres");
        }
        let out = as_owner(&tool("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ])
            .stdout(Stdio::null())
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Postgres {
            dir,
            port: free_port(),
            child: None,
        }
    }

    /// The file the server's standard error goes to (its log, while `logging_collector` is
    /// off).
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server on its port and waits until it accepts connections.
    pub fn run(&mut self) {
        assert!(self.child.is_none(), "the cluster is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("log file");
        let child = as_owner(&tool("postgres"))
            .arg("-D")
            .arg(self.data_dir())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "synchronous_commit=off"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let ready = tool("pg_isready");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = Command::new(&ready)
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not become ready in 30 s: {}",
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (fast shutdown) and waits for it; a stopped cluster stays as it is.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            // SIGINT: fast shutdown. The child is setpriv, which exec'd postgres (same PID).
            crate::stop_child(child, libc::SIGINT, Duration::from_secs(20));
        }
    }

    /// Upgrades this cluster with `pg_upgrade` into a new one (`mode`: `--copy`, `--link` or
    /// `--clone`) with the newest installed server: this cluster is stopped for the upgrade and
    /// started again afterwards unless `--link` made it unusable; the new cluster is returned
    /// running. Fails the test with pg_upgrade's own report when it refuses.
    pub fn upgrade(&mut self, mode: &str) -> Postgres {
        let mut new = Postgres::init();
        self.stop();
        let bin = bin_dir();
        // pg_upgrade writes its logs and scripts into the working directory and puts its
        // servers' sockets there: the new cluster's directory, which postgres owns.
        let out = as_owner(&tool("pg_upgrade"))
            .current_dir(new.dir.path())
            .arg("-b")
            .arg(&bin)
            .arg("-B")
            .arg(&bin)
            .arg("-d")
            .arg(self.data_dir())
            .arg("-D")
            .arg(new.data_dir())
            .args([
                "-p",
                &free_port().to_string(),
                "-P",
                &free_port().to_string(),
            ])
            .args(["-U", "postgres"])
            // Copying is the default; PostgreSQL 15's pg_upgrade has no `--copy` option yet.
            .args((mode != "--copy").then_some(mode))
            .arg("-s")
            .arg(new.dir.path())
            .output()
            .expect("run pg_upgrade");
        assert!(
            out.status.success(),
            "pg_upgrade {mode} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if mode != "--link" {
            self.run();
        }
        new.run();
        new
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's Unix socket (`.s.PGSQL.PORT` in the cluster's directory).
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join(format!(".s.PGSQL.{}", self.port))
    }

    /// The directory of the server's Unix socket (psql's `-h` for it).
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// `postgres://postgres@127.0.0.1:PORT/DB`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL (a script, on standard input) against `db`, failing the test on any error;
    /// returns what psql printed (unaligned, tuples only).
    pub fn sql(&self, db: &str, script: &str) -> String {
        self.try_sql(db, script)
            .unwrap_or_else(|e| panic!("SQL failed on port {}: {e}\n{script}", self.port))
    }

    pub fn try_sql(&self, db: &str, script: &str) -> Result<String, String> {
        use std::io::Write;
        let mut child = Command::new(tool("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.url(db),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run psql");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("write the script");
        let out = child.wait_with_output().expect("wait for psql");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs a client tool of the server's version (pgbench, pg_dump, pg_restore…) with `args`
    /// in a shell, `$PGBIN` set to the tools' directory; fails the test on error.
    pub fn shell(&self, script: &str) -> String {
        let out = Command::new("/bin/sh")
            .args(["-c", script])
            .env("PGBIN", bin_dir())
            .env("PGHOST", "127.0.0.1")
            .env("PGUSER", "postgres")
            .output()
            .expect("run sh");
        assert!(
            out.status.success(),
            "`{script}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
