//! A real OpenSSH server on a free loopback port, for tests that reach hosts over ssh.
//!
//! Each [`Sshd`] has its own directory with a host key, a client key, `authorized_keys`,
//! `known_hosts` holding the host key, and an ssh config file (`ssh -F`) that names the server as
//! [`Sshd::destination`]. The server is started with `sshd -D`, polled until it accepts
//! connections, and stopped by PID (with every session process it forked) on drop.
//!
//! Starting one checks that the shipped agent is built ([`crate::shipped_agent`]): rehost
//! uploads it to the server, as it would to an old host.
//!
//! sshd needs root (it refuses to run otherwise as a multi-user server); CI runs as root. When a
//! tool is missing the fixture panics with a message naming `bash .ci/install-deps`: tests never
//! skip silently.

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd on 127.0.0.1 with its own keys and client config.
pub struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    /// Lines added to sshd_config (`Sshd::start_with`).
    extra_config: String,
}

impl Sshd {
    /// Starts a server. Panics with a clear message when sshd or ssh-keygen is missing.
    pub fn start() -> Sshd {
        Sshd::start_with("")
    }

    /// Starts a server with `extra_config` (whole lines) added to its sshd_config, e.g.
    /// `LogLevel DEBUG1` to read what a connection negotiated in `sshd.log`.
    pub fn start_with(extra_config: &str) -> Sshd {
        for tool in ["sshd", "ssh-keygen", "ssh", "ssh-keyscan"] {
            crate::require_tool(tool);
        }
        // Whatever the test reaches over ssh runs the shipped agent: fail early if it is not
        // built (or stale) rather than upload something else.
        crate::shipped_agent();
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd (sshd's privsep dir)");
        set_mode(Path::new("/run/sshd"), 0o755);
        let dir = tempfile::Builder::new()
            .prefix("rehost-sshd-")
            .tempdir()
            .expect("create sshd fixture dir");
        keygen(&dir.path().join("host_ed25519"));
        keygen(&dir.path().join("client_ed25519"));
        std::fs::copy(
            dir.path().join("client_ed25519.pub"),
            dir.path().join("authorized_keys"),
        )
        .expect("write authorized_keys");
        std::fs::create_dir_all(dir.path().join("cache")).expect("create agent cache dir");
        let mut sshd = Sshd {
            dir,
            port: 0,
            child: None,
            extra_config: extra_config.to_owned(),
        };
        // A free port can be taken between our probe and sshd's bind: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            sshd.port = free_port();
            match sshd.spawn() {
                Ok(()) => {
                    sshd.write_client_files();
                    return sshd;
                }
                Err(e) => last = e,
            }
        }
        panic!("failed to start sshd on a free loopback port: {last}");
    }

    /// The fixture's directory (keys, configs, `cache/` used as the server's XDG_CACHE_HOME,
    /// `locks/` as its REHOST_LOCK_DIR: each fake server is its own machine for run locks).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host name the ssh config file gives this server.
    pub fn destination(&self) -> &'static str {
        "rehost-test-sshd"
    }

    /// The ssh config file to pass as `ssh -F`.
    pub fn ssh_config(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }

    /// The client's `known_hosts`.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// Where sessions of this server keep caches (`XDG_CACHE_HOME` is set to it by sshd).
    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// Process ids of the listener and every process it forked (sessions and their children).
    pub fn pids(&self) -> Vec<i32> {
        match &self.child {
            Some(c) => descendants(c.id() as i32),
            None => Vec::new(),
        }
    }

    /// Kills the server and every session it runs, as a crash or a pulled cable would.
    pub fn kill(&mut self) {
        let pids = self.pids();
        for pid in pids {
            // SAFETY: kill(2) only sends a signal.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    /// Replaces the server's host key and restarts it on the same port; `known_hosts` keeps
    /// the old key, so clients see a changed host key.
    pub fn change_host_key(&mut self) {
        self.kill();
        let key = self.dir.path().join("host_ed25519");
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_file(key.with_extension("pub"));
        keygen(&key);
        self.restart();
    }

    /// Starts the server again (after [`Sshd::kill`]) on the same port with the same keys.
    pub fn restart(&mut self) {
        self.kill();
        let mut last = String::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            match self.spawn() {
                Ok(()) => return,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("failed to restart sshd on port {}: {last}", self.port);
    }

    /// The host key's public line (`ssh-ed25519 AAAA… comment`).
    pub fn host_public_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("host_ed25519.pub"))
            .expect("read host public key")
            .trim()
            .to_owned()
    }

    fn spawn(&mut self) -> Result<(), String> {
        let d = self.dir.path();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nPubkeyAuthentication yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n\
             Subsystem sftp internal-sftp\nMaxSessions 100\nMaxStartups 100\n\
             SetEnv XDG_CACHE_HOME={d}/cache REHOST_LOCK_DIR={d}/locks\n{extra}",
            port = self.port,
            d = d.display(),
            extra = self.extra_config
        );
        std::fs::write(d.join("sshd_config"), config).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(d.join("sshd.log")).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(SSHD);
        // SAFETY: prctl(2) is async-signal-safe and touches no memory of ours. If the test
        // process dies without dropping us (killed, timed out), the kernel ends sshd too, so
        // no server outlives its test. (The signal follows the thread that started sshd: keep
        // an `Sshd` on the thread that made it.)
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("failed to run {SSHD}: {e}"))?;
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let mut log = String::new();
                let _ = std::fs::File::open(d.join("sshd.log"))
                    .and_then(|mut f| f.read_to_string(&mut log));
                return Err(format!("sshd exited with {status}: {log}"));
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                return Err("sshd did not accept connections within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn write_client_files(&self) {
        let d = self.dir.path();
        std::fs::write(
            self.known_hosts(),
            format!("[127.0.0.1]:{} {}\n", self.port, self.host_public_key()),
        )
        .expect("write known_hosts");
        let config = format!(
            "Host {dest}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  \
             IdentityFile {d}/client_ed25519\n  IdentitiesOnly yes\n  \
             UserKnownHostsFile {d}/known_hosts\n  GlobalKnownHostsFile /dev/null\n  \
             BatchMode yes\n  LogLevel ERROR\n",
            dest = self.destination(),
            port = self.port,
            d = d.display()
        );
        std::fs::write(self.ssh_config(), config).expect("write ssh config");
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "rehost-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen: run `bash .ci/install-deps`");
    assert!(
        out.status.success(),
        "ssh-keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind a free loopback port")
        .port()
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

/// `pid` and all its descendants, from /proc (sshd's session processes start their own
/// sessions, so a process group kill would miss them).
fn descendants(pid: i32) -> Vec<i32> {
    let mut parents: Vec<(i32, i32)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
                // The command name may hold spaces and parentheses: parse after the last ')'.
                if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                    let fields: Vec<&str> = rest.split_whitespace().collect();
                    if let Some(ppid) = fields.get(1).and_then(|s| s.parse().ok()) {
                        parents.push((p, ppid));
                    }
                }
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let cur = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == cur).map(|(p, _)| *p));
        i += 1;
    }
    out
}
