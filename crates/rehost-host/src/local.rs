//! The local host: commands run as child processes of rehost, in their own process group so
//! that a timeout or cancellation ends everything the command started.

use crate::agent::{Request, Response};
use crate::{CommandSpec, ExitInfo, Host, HostError, OutputStream, RunOutcome};
use rustix::process::Signal;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The longest piece of output passed on as one line.
pub const MAX_LINE: usize = 64 << 10;

/// Output pieces (each at most [`MAX_LINE`]) read ahead of the one being passed on.
const LINES_AHEAD: usize = 16;

/// How long the output of a command that has ended may stay open and quiet (held by what it
/// started in the background) before rehost stops waiting for it.
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// How long a command gets between SIGTERM and SIGKILL when it must be ended.
const KILL_GRACE: Duration = Duration::from_secs(2);

pub struct LocalHost {
    name: String,
    root: Option<PathBuf>,
    /// Run locks taken through this host, held until it is dropped.
    locks: std::sync::Mutex<Vec<crate::host_lock::HostLock>>,
}

impl LocalHost {
    pub fn new(name: &str, root: Option<PathBuf>) -> Self {
        LocalHost {
            name: name.to_owned(),
            root,
            locks: Default::default(),
        }
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// Takes this host's run lock (keyed by its root, `/` without one) and holds it while the
    /// host lives: for the agent, its session.
    pub fn lock_for_run(&self, holder: &str) -> Result<(), HostError> {
        let root = self.root.as_deref().unwrap_or(Path::new("/"));
        match crate::host_lock::acquire(root, holder) {
            Ok(lock) => {
                self.locks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(lock);
                Ok(())
            }
            Err(crate::host_lock::LockError::Busy { holder }) => Err(HostError::Busy {
                host: self.name.clone(),
                root: root.to_owned(),
                holder,
            }),
            Err(e) => Err(HostError::Lock {
                host: self.name.clone(),
                message: e.to_string(),
            }),
        }
    }
}

impl LocalHost {
    /// [`Host::resolve`] for a path given as bytes (file names need not be UTF-8).
    pub fn resolve_bytes(&self, path: &[u8]) -> PathBuf {
        resolve_under(self.root.as_deref(), Path::new(OsStr::from_bytes(path)))
    }
}

/// Maps a plan path under `root`: taken under it whether written absolute or relative; `..`
/// cannot climb out of it. Without a root the path is used as written.
pub fn resolve_under(root: Option<&Path>, path: &Path) -> PathBuf {
    let Some(root) = root else {
        return path.to_owned();
    };
    let mut out = root.to_owned();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir if out != root => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

impl Host for LocalHost {
    fn name(&self) -> &str {
        &self.name
    }

    fn resolve(&self, path: &str) -> PathBuf {
        resolve_under(self.root.as_deref(), Path::new(path))
    }

    /// This machine: a program here names the path itself.
    fn remote_end(&self, _path: &str, _here: bool) -> Option<crate::RemoteEnd> {
        None
    }

    fn rsync_version(&self, _cancel: &AtomicBool) -> Result<Option<String>, HostError> {
        Ok(rehost_tree::transfer::rsync_available())
    }

    /// In-process; the root is created with the path, as a step on the host would.
    fn make_dir(&self, path: &str, _cancel: &AtomicBool) -> Result<(), HostError> {
        let dir = self.resolve(path);
        std::fs::create_dir_all(&dir).map_err(|source| HostError::CreateDir {
            host: self.name.clone(),
            path: dir,
            source,
        })
    }

    fn machine_id(&self, _cancel: &AtomicBool) -> Result<Option<String>, HostError> {
        Ok(crate::this_machine_id())
    }

    fn as_local(&self) -> Option<&LocalHost> {
        Some(self)
    }

    fn request(
        &self,
        req: &Request,
        cancel: &AtomicBool,
        on_response: &mut dyn FnMut(Response),
    ) -> Result<(), HostError> {
        crate::capability::execute(self, req, cancel, on_response)
    }

    /// In-process: no text round trip for a local host.
    fn manifest(
        &self,
        path: &[u8],
        options: &crate::ManifestOptions,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(rehost_tree::Counts),
    ) -> Result<rehost_tree::Manifest, HostError> {
        crate::capability::take_manifest(self, path, options, cancel, progress)
    }

    fn run(
        &self,
        spec: &CommandSpec,
        cancel: &AtomicBool,
        on_output: &mut dyn FnMut(OutputStream, &[u8]),
    ) -> Result<RunOutcome, HostError> {
        let argv = spec.program.argv();
        let Some((program, args)) = argv.split_first() else {
            return Err(HostError::EmptyCommand {
                host: self.name.clone(),
            });
        };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        die_with_this_thread(&mut cmd);
        if let Some(root) = &self.root {
            std::fs::create_dir_all(root).map_err(|source| HostError::Root {
                host: self.name.clone(),
                root: root.clone(),
                source,
            })?;
            cmd.current_dir(root).env("REHOST_ROOT", root);
        }
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|source| HostError::Spawn {
            host: self.name.clone(),
            program: spec.program.display(),
            source,
        })?;
        let pgid = child.id() as i32;

        // Bounded: when the output cannot go on (an agent whose rehost does not read), the
        // readers stop and the command blocks on its full pipe, instead of the lines piling up
        // here (3.3 GB in 20 s of `cat /dev/zero` before, issue 18).
        let (tx, rx) = mpsc::sync_channel::<(OutputStream, Vec<u8>)>(LINES_AHEAD);
        let readers = [
            spawn_reader(
                child
                    .stdout
                    .take()
                    .map(|r| Box::new(r) as Box<dyn Read + Send>),
                OutputStream::Stdout,
                tx.clone(),
                spec.cr_ends_line,
            ),
            spawn_reader(
                child
                    .stderr
                    .take()
                    .map(|r| Box::new(r) as Box<dyn Read + Send>),
                OutputStream::Stderr,
                tx,
                spec.cr_ends_line,
            ),
        ];

        let started = Instant::now();
        let mut timed_out = false;
        let mut cancelled = false;
        let mut term_sent: Option<Instant> = None;
        let status = loop {
            while let Ok((stream, line)) = rx.try_recv() {
                on_output(stream, &line);
            }
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(source) => {
                    return Err(HostError::Wait {
                        host: self.name.clone(),
                        program: spec.program.display(),
                        source,
                    });
                }
            }
            if term_sent.is_none() {
                if spec.timeout.is_some_and(|t| started.elapsed() >= t) {
                    timed_out = true;
                } else if cancel.load(Ordering::Relaxed) {
                    cancelled = true;
                }
                if timed_out || cancelled {
                    kill_group(pgid, Signal::TERM);
                    term_sent = Some(Instant::now());
                }
            } else if term_sent.is_some_and(|t| t.elapsed() >= KILL_GRACE) {
                kill_group(pgid, Signal::KILL);
            }
            if let Ok((stream, line)) = rx.recv_timeout(Duration::from_millis(20)) {
                on_output(stream, &line);
            }
        };
        if timed_out || cancelled {
            // Ended by rehost: nothing it started may live on.
            kill_group(pgid, Signal::KILL);
        }
        // The command itself has ended; what it started in the background (`pg_ctl start`,
        // `nohup svc &`) keeps running and may hold the output pipes. Read until they close or
        // stay quiet for OUTPUT_GRACE; the readers then go on draining what such daemons write,
        // unseen, so that they never block on a full pipe.
        let mut quiet_since = Instant::now();
        for r in readers.into_iter().flatten() {
            while !r.is_finished() && quiet_since.elapsed() < OUTPUT_GRACE {
                if let Ok((stream, line)) = rx.recv_timeout(Duration::from_millis(20)) {
                    on_output(stream, &line);
                    quiet_since = Instant::now();
                }
            }
            if r.is_finished() {
                let _ = r.join();
            }
        }
        while let Ok((stream, line)) = rx.try_recv() {
            on_output(stream, &line);
        }
        Ok(RunOutcome {
            exit: ExitInfo {
                code: status.code(),
                signal: status.signal(),
            },
            timed_out,
            cancelled,
        })
    }
}

/// Reads up to and including the next `\n` (or `\r` when `cr` is set), at most `MAX_LINE`
/// bytes.
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>, cr: bool) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            return Ok(total);
        }
        let room = MAX_LINE.saturating_sub(buf.len()).max(1);
        let window = &avail[..avail.len().min(room)];
        let end = window
            .iter()
            .position(|&b| b == b'\n' || (cr && b == b'\r'));
        let n = end.map_or(window.len(), |i| i + 1);
        buf.extend_from_slice(&window[..n]);
        r.consume(n);
        total += n;
        if end.is_some() || buf.len() >= MAX_LINE {
            return Ok(total);
        }
    }
}

fn spawn_reader(
    r: Option<Box<dyn Read + Send>>,
    stream: OutputStream,
    tx: mpsc::SyncSender<(OutputStream, Vec<u8>)>,
    cr_ends_line: bool,
) -> Option<std::thread::JoinHandle<()>> {
    let r = r?;
    Some(std::thread::spawn(move || {
        let mut r = BufReader::new(r);
        let mut buf = Vec::new();
        let mut cut = false;
        loop {
            buf.clear();
            // A line longer than MAX_LINE arrives in pieces: output without newlines (a binary
            // dump) must not grow one unbounded buffer or one oversized agent frame.
            match read_line(&mut r, &mut buf, cr_ends_line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let ended = matches!(buf.last(), Some(b'\n'))
                        || (cr_ends_line && buf.last() == Some(&b'\r'));
                    if ended {
                        buf.pop();
                    }
                    // The newline right after a cut piece ends that line, not an empty one.
                    let skip = cut && buf.is_empty();
                    cut = !ended;
                    if skip {
                        continue;
                    }
                    // Once nobody listens (the command ended, a daemon it started holds the
                    // pipe), go on reading and dropping: closing the pipe would kill the daemon
                    // with SIGPIPE at its next line of output.
                    let _ = tx.send((stream, buf.clone()));
                }
            }
        }
    }))
}

fn kill_group(pgid: i32, signal: Signal) {
    if let Some(pgid) = rustix::process::Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(pgid, signal);
    }
}

#[cfg(test)]
mod tests;

/// The command is sent SIGTERM when the thread that started it ends (PR_SET_PDEATHSIG), so a
/// rehost that is killed (SIGKILL, a crash) does not leave a command running without anyone to
/// stop it: a load, or a step's command. That thread waits for the command in [`Host::run`]
/// and so outlives it otherwise. Only the command itself: what it started in the background
/// (a daemon a step starts) is not its to end.
fn die_with_this_thread(cmd: &mut Command) {
    let parent = rustix::process::getpid();
    // SAFETY: between fork and exec only async-signal-safe system calls (prctl, getppid) and
    // no allocation: the error is a raw OS error.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(Signal::TERM))?;
            // The parent died before the signal was armed: do not start, as it would have
            // been ended.
            if rustix::process::getppid() != Some(parent) {
                return Err(std::io::Error::from_raw_os_error(
                    rustix::io::Errno::SRCH.raw_os_error(),
                ));
            }
            Ok(())
        });
    }
}
