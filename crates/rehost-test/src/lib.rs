//! Test support: a temporary directory to lay out plans and trees, running the `rehost` binary
//! and reading what it said (`cli`: a fluent builder; `snapshot`: whole outputs with what
//! varies filtered out), and checks that a needed tool is installed (a missing tool fails the
//! test with the install step, never skips it).

pub mod cli;
pub mod http;
pub mod knot;
pub mod mariadb;
pub mod postgres;
pub mod pty;
pub mod snapshot;
pub mod sshd;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use insta;
pub use tempfile;

pub mod keys;
pub mod tree;

/// A temporary directory, removed when dropped.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl Default for TestDir {
    fn default() -> Self {
        Self::new()
    }
}

impl TestDir {
    pub fn new() -> TestDir {
        TestDir {
            dir: tempfile::Builder::new()
                .prefix("rehost-test-")
                .tempdir()
                .expect("create a temporary directory"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file (creating its directories) and returns its path.
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent directories");
        }
        std::fs::write(&p, content).expect("write test file");
        p
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.join(rel)).unwrap_or_default()
    }
}

/// What a command did.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Everything the command printed, for assertions that do not care which stream.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `bin` with `args` in `cwd`, feeding `stdin` (or nothing), and waits for it.
pub fn run(bin: &Path, args: &[&str], cwd: &Path, stdin: Option<&str>) -> Output {
    run_env(bin, args, cwd, stdin, &[])
}

/// [`run`] with extra environment variables (`PATH` to hide a tool, say).
pub fn run_env(
    bin: &Path,
    args: &[&str],
    cwd: &Path,
    stdin: Option<&str>,
    env: &[(&str, &std::ffi::OsStr)],
) -> Output {
    use std::io::Write;
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("failed to start {}: {e}", bin.display()));
    if let Some(input) = stdin {
        let mut s = child.stdin.take().expect("piped stdin");
        let _ = s.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().expect("wait for command");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Fails the test, naming the install step, when `tool` is not on PATH.
pub fn require_tool(tool: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in
        std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
    {
        let p = dir.join(tool);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "`{tool}` is not installed; run `bash .ci/install-deps` (as root) to install what the tests need"
    );
}

/// The agent rehost ships for this machine's architecture, as `scripts/build-agent` lays it
/// beside `target/debug/rehost` (`REHOST_TEST_AGENT` overrides). The ssh tests upload this
/// agent, not the test build, so that what runs on the old servers is what is tested. Fails
/// the test, naming the command, when it is missing or older than the sources.
pub fn shipped_agent() -> PathBuf {
    if let Some(p) = std::env::var_os("REHOST_TEST_AGENT") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test> → target/debug
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let agent = dir.join(format!("rehost-agent-{}.gz", std::env::consts::ARCH));
    assert!(
        agent.is_file(),
        "{} is missing: run `scripts/build-agent` (the agent for old servers; `bash scripts/test` does it)",
        agent.display()
    );
    let built = mtime(&agent);
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for src in [
        "rehost-host/src",
        "rehost-tree/src",
        "rehost/src",
        "rehost-engine/src",
        "rehost-journal/src",
        "rehost-keys/src",
        "rehost-refs/src",
        // The survey's model, and what its collector reads with (nginx's configuration, the
        // masking of credentials in command lines).
        "rehost-survey/src",
        "rehost-config/src",
        "rehost-plan/src",
    ] {
        assert!(
            newest_mtime(&crates.join(src)) <= built,
            "{} is older than the sources in crates/{src}: run `scripts/build-agent`",
            agent.display()
        );
    }
    agent
}

fn mtime(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
}

fn newest_mtime(dir: &Path) -> std::time::SystemTime {
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            let t = if p.is_dir() {
                newest_mtime(&p)
            } else {
                mtime(&p)
            };
            newest = newest.max(t);
        }
    }
    newest
}

/// Stops a server this test started: `signal` to its PID, then waits up to `grace` for it to
/// exit before killing it. Reaps it either way.
pub fn stop_child(mut child: std::process::Child, signal: i32, grace: std::time::Duration) {
    // SAFETY: kill with a PID we started and have not reaped.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let deadline = std::time::Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => break,
            Ok(None) if std::time::Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
}
