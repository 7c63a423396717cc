//! Hosts reached with the system's OpenSSH client.
//!
//! Opening an [`SshHost`] starts one ControlMaster connection (its socket in a private 0700
//! directory) and starts a first agent session, which checks the agent's digest on the host
//! and starts it in one round trip; only a missing or different agent costs a probe and an
//! upload (see `install`). Every request then runs in an agent session multiplexed over the master; a
//! pool of sessions lets several requests run on one host at the same time. Closing (or
//! dropping) the host ends the sessions and the master.
//!
//! rehost never accepts host keys: `StrictHostKeyChecking=yes` is passed unless the user's own
//! ssh config chose otherwise, and a key failure is a [`HostError::HostKey`] naming the
//! fingerprint offered and the command to accept it.

mod config;
mod elf;
mod hostkey;
mod install;
mod quote;

pub use elf::Needs;
pub use install::{AgentBinary, AgentSource, BOOT_FD, Probe};
pub use quote::{command_line, quote, rsync_e_word, sh_quoted, sh_word};

use crate::agent::{AgentConn, Request, Response, SessionError};
use crate::bytes::Bytes;
use crate::error::AgentCannotRun;
use crate::{Host, HostError, SshSpec};
use config::EffectiveConfig;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// How long connecting (authentication included) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// What is in flight while an agent session starts (where a binary that cannot run shows).
const STARTING: &str = "starting the agent";
/// How long a started agent has to answer the hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(60);

/// What `open` found out about the agent on the host.
#[derive(Clone, Debug, Default)]
pub struct AgentInstall {
    /// Where the agent lives on the host: absolute when the host was probed (an upload),
    /// else as the host's shell expands it (`${XDG_CACHE_HOME:-$HOME/.cache}/rehost/…`).
    pub remote_path: String,
    /// Whether this open uploaded it (false: a verified copy was already there).
    pub uploaded: bool,
    /// The host's `uname -m`.
    pub arch: String,
    /// The host's C library, as `getconf GNU_LIBC_VERSION` or `ldd --version` reports it
    /// (empty when the agent started without a probe).
    pub libc: String,
    /// The file uploaded (or that would have been), here.
    pub source: PathBuf,
}

/// The ssh options a plan's host entry implies (`-F`, `-p`, `-i`, `-J`), before rehost's own.
fn user_args(spec: &SshSpec) -> Vec<OsString> {
    let mut user_args: Vec<OsString> = Vec::new();
    if let Some(f) = &spec.ssh_config {
        user_args.extend(["-F".into(), f.clone().into_os_string()]);
    }
    if let Some(p) = spec.port {
        user_args.extend(["-p".into(), p.to_string().into()]);
    }
    if let Some(i) = &spec.identity_file {
        user_args.extend(["-i".into(), i.clone().into_os_string()]);
    }
    if let Some(j) = &spec.proxy_jump {
        user_args.extend(["-J".into(), j.into()]);
    }
    user_args
}

/// What an ssh host is, as far as this machine can tell without connecting to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The host name and port ssh connects to (`ssh -G`: the user's config and the plan's
    /// options applied).
    pub hostname: String,
    pub port: u16,
    /// The host keys known_hosts holds for it (`TYPE BASE64`): with strict checking, the key
    /// a connection to it saw is one of these.
    pub known_keys: Vec<String>,
}

/// Resolves an ssh host with `ssh -G` and looks its keys up in the known_hosts files that
/// config names (`ssh-keygen -F`, which also reads hashed entries). Never connects.
pub fn resolve(spec: &SshSpec) -> Result<Resolved, String> {
    let cfg = EffectiveConfig::query(&user_args(spec), &spec.destination)?;
    let name = match &cfg.host_key_alias {
        Some(alias) => alias.clone(),
        None if cfg.port == 22 => cfg.hostname.clone(),
        None => format!("[{}]:{}", cfg.hostname, cfg.port),
    };
    let mut known_keys = Vec::new();
    for file in cfg.known_hosts.iter().chain(&cfg.global_known_hosts) {
        let file = match file.strip_prefix("~/") {
            Some(rest) => std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(rest))
                .unwrap_or_else(|| PathBuf::from(file)),
            None => PathBuf::from(file),
        };
        if !file.is_file() {
            continue;
        }
        let Ok(out) = Command::new("ssh-keygen")
            .arg("-F")
            .arg(&name)
            .arg("-f")
            .arg(&file)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
        else {
            return Err("cannot run ssh-keygen (install openssh-client)".into());
        };
        known_keys.extend(parse_known_hosts_lines(&String::from_utf8_lossy(
            &out.stdout,
        )));
    }
    known_keys.sort();
    known_keys.dedup();
    Ok(Resolved {
        hostname: cfg.hostname,
        port: cfg.port,
        known_keys,
    })
}

/// `NAMES TYPE BASE64 [COMMENT]` lines (comments and markers skipped) → `TYPE BASE64`.
pub fn parse_known_hosts_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_whitespace().peekable();
            if w.peek()?.starts_with('@') {
                return None; // @revoked, @cert-authority: not a key the host presents
            }
            let _names = w.next()?;
            Some(format!("{} {}", w.next()?, w.next()?))
        })
        .collect()
}

/// A public key `TYPE BASE64` as `ssh-keygen -l` names it: `SHA256:…` (for messages).
pub fn fingerprint(key: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let b64 = key.split_whitespace().nth(1).unwrap_or_default();
    match base64::engine::general_purpose::STANDARD.decode(b64) {
        Ok(blob) => format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(sha2::Sha256::digest(&blob))
        ),
        Err(_) => key.to_owned(),
    }
}

/// This machine's own ssh host keys (`TYPE BASE64`, from `/etc/ssh/ssh_host_*_key.pub`):
/// a host known by one of them is this machine.
pub fn local_host_keys() -> Vec<String> {
    let mut keys = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/etc/ssh") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("ssh_host_")
                && name.ends_with("_key.pub")
                && let Ok(text) = std::fs::read_to_string(e.path())
            {
                let mut w = text.split_whitespace();
                if let (Some(t), Some(k)) = (w.next(), w.next()) {
                    keys.push(format!("{t} {k}"));
                }
            }
        }
    }
    keys.sort();
    keys
}

/// A host reached over OpenSSH, doing its work through the rehost agent.
pub struct SshHost {
    name: String,
    destination: String,
    root: Option<PathBuf>,
    /// As the plan gave it: how rsync on another machine reaches this host.
    spec: SshSpec,
    /// Options for every ssh invocation, before the destination.
    args: Vec<OsString>,
    control_dir: tempfile::TempDir,
    master: Mutex<Option<Child>>,
    sessions: Mutex<Vec<AgentConn>>,
    install: AgentInstall,
    /// The agent every session starts, checked by its SHA-256 each time.
    agent: Option<AgentBinary>,
}

impl SshHost {
    /// Connects, installs or verifies the agent and starts a first session, with
    /// `agent_binary` (raw or gzip'd) as the agent whatever the host's architecture.
    pub fn open(name: &str, spec: &SshSpec, agent_binary: &Path) -> Result<SshHost, HostError> {
        Self::open_with(name, spec, &AgentSource::File(agent_binary.to_owned()))
    }

    /// [`SshHost::open`] with the agent chosen by the host's architecture from `source`.
    pub fn open_with(
        name: &str,
        spec: &SshSpec,
        source: &AgentSource,
    ) -> Result<SshHost, HostError> {
        let destination = spec.destination.clone();
        if destination.is_empty() || destination.starts_with('-') {
            return Err(HostError::BadDestination {
                host: name.to_owned(),
                destination,
            });
        }
        let user_args = user_args(spec);
        let cfg = EffectiveConfig::query(&user_args, &destination).map_err(|message| {
            HostError::SshConfig {
                host: name.to_owned(),
                destination: destination.clone(),
                message,
            }
        })?;
        // Shown in the "accept the key" hint: the user's own options, not ours.
        let hint_args: String = user_args
            .iter()
            .map(|a| format!("{} ", a.to_string_lossy()))
            .collect();

        // 0700: the ControlMaster socket in it grants the session to whoever can connect.
        let control_dir = tempfile::Builder::new()
            .prefix("rehost-ssh-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .map_err(|source| HostError::ControlDir {
                host: name.to_owned(),
                source,
            })?;
        let mut args = user_args;
        args.extend(["-o".into(), "BatchMode=yes".into()]);
        if cfg.strict_is_default() {
            args.extend(["-o".into(), "StrictHostKeyChecking=yes".into()]);
        }
        let mut control = OsString::from("ControlPath=");
        control.push(control_dir.path().join("cm"));
        args.extend(["-o".into(), control]);

        let mut host = SshHost {
            name: name.to_owned(),
            destination,
            root: spec.root.clone(),
            spec: spec.clone(),
            args,
            control_dir,
            master: Mutex::new(None),
            sessions: Mutex::new(Vec::new()),
            install: AgentInstall::default(),
            agent: None,
        };
        // A missing agent file is found before anything is started on the host; the agent
        // for this machine's architecture is the first guess (one round trip when it is
        // already there).
        let guess = match source {
            AgentSource::File(p) => Some(AgentBinary::load(p)?),
            AgentSource::Beside { .. } => source.for_host(name, std::env::consts::ARCH, None).ok(),
        };
        // Only the master carries data (sessions are multiplexed over it): the cipher is its.
        let ciphers = if config::cpu_has_aes() {
            EffectiveConfig::compiled_default(&host.destination)
                .ok()
                .and_then(|default| cfg.preferred_ciphers(&default, true))
        } else {
            None
        };
        host.start_master(&cfg, ciphers.as_deref(), &hint_args)?;
        let conn = host.install_and_start(source, guess)?;
        host.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
        Ok(host)
    }

    /// The directory of the ControlMaster socket (0700, removed when the host is dropped).
    pub fn control_dir(&self) -> &Path {
        self.control_dir.path()
    }

    /// Starts the first session: the guessed agent if the host has it, else the agent for the
    /// host's architecture, uploaded first.
    fn install_and_start(
        &mut self,
        source: &AgentSource,
        guess: Option<AgentBinary>,
    ) -> Result<AgentConn, HostError> {
        let probe = match guess {
            Some(agent) => {
                self.install = AgentInstall {
                    remote_path: agent.remote_path(),
                    source: agent.path.clone(),
                    ..Default::default()
                };
                match self.boot(&agent)? {
                    Ok((conn, arch)) => {
                        self.install.arch = arch;
                        self.agent = Some(agent);
                        return Ok(conn);
                    }
                    Err(probe) => probe,
                }
            }
            // Nothing to try: a session naming no agent reports the host.
            None => match self.boot_raw("none", "none")? {
                Ok(_) => unreachable!("no agent has the digest `none`"),
                Err(probe) => probe,
            },
        };
        let agent = source.for_host(&self.name, &probe.arch, Some(&probe.libc))?;
        if let Err(why) = agent.runs_on(&probe.arch, &probe.libc) {
            let built_for = agent
                .needs
                .as_ref()
                .map_or_else(|| "an unknown machine".to_owned(), |n| n.arch.clone());
            return Err(HostError::AgentCannotRun(Box::new(AgentCannotRun {
                host: self.name.clone(),
                arch: probe.arch,
                libc: probe.libc,
                local_arch: built_for,
                detail: format!("{} cannot run there: {why}", agent.path.display()),
            })));
        }
        self.upload(&agent, &probe)?;
        self.install = AgentInstall {
            remote_path: format!("{}/agent-{}/rehost", probe.cache, agent.blake3),
            uploaded: true,
            arch: probe.arch.clone(),
            libc: probe.libc.clone(),
            source: agent.path.clone(),
        };
        match self.boot(&agent)? {
            Ok((conn, _)) => {
                self.agent = Some(agent);
                Ok(conn)
            }
            Err(_) => Err(HostError::AgentInstall {
                host: self.name.clone(),
                message: format!(
                    "the agent uploaded to {} did not pass its check when started",
                    self.install.remote_path
                ),
            }),
        }
    }

    /// Starts `agent` on the host if it is there with the right digest; the host's report
    /// otherwise.
    fn boot(&self, agent: &AgentBinary) -> Result<Result<(AgentConn, String), Probe>, HostError> {
        self.boot_raw(&agent.blake3, &agent.sha256)
    }

    fn boot_raw(
        &self,
        blake3: &str,
        sha256: &str,
    ) -> Result<Result<(AgentConn, String), Probe>, HostError> {
        if !self.master_alive() {
            return Err(HostError::ConnectionLost {
                host: self.name.clone(),
                in_flight: "starting an agent session".into(),
                detail: "the ssh master connection has ended".into(),
            });
        }
        let line = command_line(&["sh", "-c", install::BOOT_SCRIPT, "sh", blake3, sha256]);
        let child = self.spawn_remote(line, Stdio::piped())?;
        let root = self.root.as_deref().map(Bytes::from);
        match AgentConn::start(child, &self.name, root, HELLO_TIMEOUT) {
            Ok(started) => Ok(Ok(started)),
            Err(SessionError::Closed { status, stderr })
                if status.and_then(|s| s.code()) == Some(install::REFUSED) =>
            {
                Err(self.refused(&stderr))
            }
            Err(SessionError::Closed { status, stderr })
                if status.and_then(|s| s.code()) == Some(install::PROBED) =>
            {
                match install::parse_probe(&stderr) {
                    Some(p) if !p.cache.is_empty() => Ok(Err(p)),
                    _ => Err(HostError::AgentInstall {
                        host: self.name.clone(),
                        message: format!(
                            "the host's shell did not report a cache directory: {}",
                            last_lines(&stderr)
                        ),
                    }),
                }
            }
            Err(e) => Err(self.session_error(e, STARTING)),
        }
    }

    /// Streams the agent file (as it is: gzip'd ones are unpacked on the host) into place.
    fn upload(&self, agent: &AgentBinary, probe: &Probe) -> Result<(), HostError> {
        let remote = format!("{}/agent-{}/rehost", probe.cache, agent.blake3);
        let fail = |message: String| HostError::AgentInstall {
            host: self.name.clone(),
            message,
        };
        let file = std::fs::File::open(&agent.path).map_err(|source| HostError::AgentBinary {
            path: agent.path.clone(),
            source,
        })?;
        let unpack = if agent.compressed { "gzip" } else { "cat" };
        let out = self.exec_with(
            &[
                "sh",
                "-c",
                install::UPLOAD_SCRIPT,
                "sh",
                &agent.blake3,
                unpack,
                &agent.sha256,
            ],
            Stdio::from(file),
            |_| {},
        )?;
        if out.status.code() == Some(install::REFUSED) {
            return Err(self.refused(&String::from_utf8_lossy(&out.stderr)));
        }
        let got = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.code() == Some(98) {
            return Err(fail(format!(
                "the agent unpacked at {remote} has SHA-256 {got}, expected {}; it was removed",
                agent.sha256
            )));
        }
        if !out.status.success() {
            return Err(fail(format!(
                "uploading to {remote} failed ({}): {}",
                out.status,
                last_lines(&String::from_utf8_lossy(&out.stderr))
            )));
        }
        Ok(())
    }

    /// The host's cache was refused (a symlink, another owner, writable by others): the
    /// error naming the path and how to clear it.
    fn refused(&self, stderr: &str) -> HostError {
        match install::parse_refusal(stderr) {
            Some((path, reason)) => HostError::AgentCacheRefused {
                host: self.name.clone(),
                path,
                reason,
            },
            None => HostError::AgentInstall {
                host: self.name.clone(),
                message: format!(
                    "the agent's cache directory was refused: {}",
                    last_lines(stderr)
                ),
            },
        }
    }

    /// What `open` found out about the agent.
    pub fn agent_install(&self) -> &AgentInstall {
        &self.install
    }

    /// Runs an argument vector on the host directly over ssh (not through the agent), each
    /// argument quoted so the remote shell passes it on unchanged; `stdin` feeds the command.
    /// Used to bootstrap the agent; the agent is the way to run work.
    pub fn exec<S: AsRef<OsStr>>(&self, argv: &[S], stdin: &[u8]) -> Result<Output, HostError> {
        let data = stdin.to_vec();
        self.exec_with(argv, Stdio::piped(), move |mut input| {
            let _ = input.write_all(&data);
        })
    }

    /// [`SshHost::exec`] with any stdin: a file streams straight into ssh without being read
    /// into memory; a pipe is fed by `feed` on its own thread.
    fn exec_with<S: AsRef<OsStr>>(
        &self,
        argv: &[S],
        stdin: Stdio,
        feed: impl FnOnce(std::process::ChildStdin) + Send + 'static,
    ) -> Result<Output, HostError> {
        let mut child = self.spawn_remote(command_line(argv), stdin)?;
        let feeder = child
            .stdin
            .take()
            .map(|input| std::thread::spawn(move || feed(input)));
        let out = wait_capped(child, EXEC_OUTPUT_KEEP).map_err(|source| HostError::Wait {
            host: self.name.clone(),
            program: "ssh".into(),
            source,
        })?;
        if let Some(f) = feeder {
            let _ = f.join();
        }
        Ok(out)
    }

    /// Ends every agent session and the master connection. Idempotent; also done on drop.
    pub fn shutdown(&self) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let mut master = self.master.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut child) = master.take() {
            let _ = self
                .ssh()
                .arg("-O")
                .arg("exit")
                .arg("--")
                .arg(&self.destination)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// An ssh client for one session over the master. The `-o` options given here win over
    /// the user's config (ssh takes the first value it sees, and the command line comes first):
    /// a `ControlMaster yes`, `RemoteCommand` or forwarding in the user's config must not turn
    /// rehost's sessions into masters, replace their command or bind ports.
    /// Starts `command_line` on the host through the master connection, stdout and stderr
    /// piped.
    fn spawn_remote(
        &self,
        command_line: impl AsRef<OsStr>,
        stdin: Stdio,
    ) -> Result<std::process::Child, HostError> {
        self.ssh()
            .arg("--")
            .arg(&self.destination)
            .arg(command_line)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| HostError::Spawn {
                host: self.name.clone(),
                program: "ssh".into(),
                source,
            })
    }

    fn ssh(&self) -> Command {
        let mut c = ssh_command();
        c.args(&self.args).args([
            "-T",
            "-o",
            "ControlMaster=no",
            "-o",
            "RemoteCommand=none",
            "-o",
            "ClearAllForwardings=yes",
        ]);
        c
    }

    fn start_master(
        &mut self,
        cfg: &EffectiveConfig,
        ciphers: Option<&str>,
        hint_args: &str,
    ) -> Result<(), HostError> {
        let log_path = self.control_dir.path().join("master.log");
        let log = std::fs::File::create(&log_path).map_err(|source| HostError::ControlDir {
            host: self.name.clone(),
            source,
        })?;
        let mut cmd = ssh_command();
        cmd.args(&self.args).args([
            "-N",
            "-T",
            "-o",
            "ControlMaster=yes",
            "-o",
            "ControlPersist=no",
            "-o",
            "ClearAllForwardings=yes",
        ]);
        if let Some(ciphers) = ciphers {
            cmd.arg("-o").arg(format!("Ciphers={ciphers}"));
        }
        if cfg.server_alive_interval == 0 {
            // Notice a dead peer within a minute rather than waiting on TCP for hours.
            cmd.args([
                "-o",
                "ServerAliveInterval=15",
                "-o",
                "ServerAliveCountMax=4",
            ]);
        }
        // The master ends when rehost does, even when rehost is killed with SIGKILL (it lived
        // on before). The signal follows the thread that spawns the master: hosts are opened on
        // the thread that runs the plan, which lives as long as the run.
        // SAFETY: prctl (a bare system call in rustix) is async-signal-safe and touches no
        // memory of the parent.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::TERM,
                ))?;
                Ok(())
            });
        }
        let mut child = cmd
            .arg("--")
            .arg(&self.destination)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|source| HostError::Spawn {
                host: self.name.clone(),
                program: "ssh (install openssh-client)".into(),
                source,
            })?;
        let socket = self.control_dir.path().join("cm");
        let started = Instant::now();
        loop {
            // ssh links the socket into place only once the connection is authenticated.
            if socket.exists() {
                *self.master.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
                return Ok(());
            }
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            if exited || started.elapsed() > CONNECT_TIMEOUT {
                if !exited {
                    let _ = child.kill();
                }
                let _ = child.wait();
                let stderr = std::fs::read_to_string(&log_path).unwrap_or_default();
                if let Some(e) = hostkey::error(
                    &self.name,
                    &self.destination,
                    &self.args,
                    hint_args,
                    cfg,
                    &stderr,
                ) {
                    return Err(e);
                }
                let message = if exited {
                    last_lines(&stderr)
                } else {
                    format!("no connection within {} s", CONNECT_TIMEOUT.as_secs())
                };
                return Err(HostError::Connect {
                    host: self.name.clone(),
                    destination: self.destination.clone(),
                    message,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn master_alive(&self) -> bool {
        let mut master = self.master.lock().unwrap_or_else(|e| e.into_inner());
        match master.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Another session for the pool: the agent's digest is checked again as it starts.
    fn start_session(&self) -> Result<AgentConn, HostError> {
        let agent = self.agent.as_ref().expect("open installed an agent");
        match self.boot(agent)? {
            Ok((conn, _)) => Ok(conn),
            Err(_) => Err(HostError::AgentInstall {
                host: self.name.clone(),
                message: format!(
                    "the agent at {} is gone or no longer has SHA-256 {}; it was not started",
                    self.install.remote_path, agent.sha256
                ),
            }),
        }
    }

    fn session_error(&self, e: SessionError, in_flight: &str) -> HostError {
        match e {
            SessionError::Closed { status, stderr } => {
                let code = status.and_then(|s| s.code());
                let cannot_exec = matches!(code, Some(126 | 127))
                    || ["GLIBC_", "Exec format error", "cannot execute", "not found"]
                        .iter()
                        .any(|m| stderr.contains(m));
                if in_flight == STARTING && cannot_exec && self.master_alive() {
                    return HostError::AgentCannotRun(Box::new(AgentCannotRun {
                        host: self.name.clone(),
                        arch: self.install.arch.clone(),
                        libc: self.install.libc.clone(),
                        local_arch: std::env::consts::ARCH.to_owned(),
                        detail: last_lines(&stderr),
                    }));
                }
                let mut detail = last_lines(&stderr);
                if detail.is_empty() && !self.master_alive() {
                    // What the master said when it ended ("closed by remote host", "timeout").
                    detail = last_lines(
                        &std::fs::read_to_string(self.control_dir.path().join("master.log"))
                            .unwrap_or_default(),
                    );
                }
                if !self.master_alive() {
                    detail = if detail.is_empty() {
                        "the ssh connection ended".into()
                    } else {
                        format!("the ssh connection ended: {detail}")
                    };
                } else if detail.is_empty() {
                    detail = match status {
                        Some(s) => format!("the agent session ended with {s}"),
                        None => "the agent session ended".into(),
                    };
                }
                HostError::ConnectionLost {
                    host: self.name.clone(),
                    in_flight: in_flight.to_owned(),
                    detail,
                }
            }
            SessionError::Version { agent, version } => HostError::AgentVersion {
                host: self.name.clone(),
                agent,
                version,
                ours: crate::agent::PROTOCOL_VERSION,
            },
            SessionError::Protocol(message) => HostError::Protocol {
                host: self.name.clone(),
                message,
            },
            SessionError::Timeout => HostError::Protocol {
                host: self.name.clone(),
                message: format!(
                    "the agent did not answer within {} s",
                    HELLO_TIMEOUT.as_secs()
                ),
            },
            SessionError::Failed(message) => HostError::Remote {
                host: self.name.clone(),
                what: in_flight.to_owned(),
                message,
            },
        }
    }
}

impl Host for SshHost {
    fn name(&self) -> &str {
        &self.name
    }

    fn resolve(&self, path: &str) -> PathBuf {
        crate::local::resolve_under(self.root.as_deref(), Path::new(path))
    }

    fn remote_end(&self, path: &str, here: bool) -> Option<crate::RemoteEnd> {
        Some(crate::RemoteEnd::over_ssh(
            &self.spec,
            &self.resolve(path),
            here,
        ))
    }

    fn request(
        &self,
        req: &Request,
        cancel: &AtomicBool,
        on_response: &mut dyn FnMut(Response),
    ) -> Result<(), HostError> {
        let pooled = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.start_session()?,
        };
        let result = conn.request(req, cancel, on_response);
        if conn.is_usable() {
            self.sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
        result.map_err(|e| self.session_error(e, &req.describe()))
    }

    fn close(&self) {
        self.shutdown();
    }
}

impl Drop for SshHost {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// `ssh` in a process group of its own: a Ctrl-C at the terminal reaches rehost, which cancels
/// requests in order (the agent ends the remote commands), instead of killing the connection
/// under them.
fn ssh_command() -> Command {
    let mut c = Command::new("ssh");
    c.process_group(0);
    c
}

/// The most of a bootstrap command's stdout and stderr kept (each): what it prints is a digest
/// or an error, and a host that prints without end must not grow rehost.
const EXEC_OUTPUT_KEEP: usize = 64 << 10;

/// `wait_with_output`, keeping at most `keep` bytes of stdout and of stderr (the rest is read
/// and dropped, so the process never blocks on a full pipe).
fn wait_capped(mut child: Child, keep: usize) -> std::io::Result<Output> {
    use std::io::Read;
    fn drain(mut r: impl Read, keep: usize) -> Vec<u8> {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = keep.saturating_sub(kept.len()).min(n);
            kept.extend_from_slice(&buf[..room]);
        }
        kept
    }
    let out = child
        .stdout
        .take()
        .map(|r| std::thread::spawn(move || drain(r, keep)));
    let err = child
        .stderr
        .take()
        .map(|r| std::thread::spawn(move || drain(r, keep)));
    let status = child.wait()?;
    let join = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
        h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
    };
    Ok(Output {
        status,
        stdout: join(out),
        stderr: join(err),
    })
}

/// The last few lines of a process's stderr, for an error message.
fn last_lines(s: &str) -> String {
    let lines: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let start = lines.len().saturating_sub(3);
    lines[start..].join(" / ")
}

#[cfg(test)]
mod tests;
