//! The prober: during a run, every probed service (`[[services]]` with a `probe`) is sampled at
//! its old and its new address, each side by a thread of its own, every `interval`, as a client
//! would: a TCP connect, an HTTP/1.1 `GET`, or a command run on this machine. The threads never
//! wait for a step and no step waits for them: a sample that does not answer is abandoned at its
//! `timeout` (a command's process group killed) and counts as unreachable.
//!
//! Only changes leave the threads (a side became reachable or unreachable, with the instant its
//! sample began); the recorder journals them as `probe_changed` records with the next record it
//! writes, at the latest when the step under way ends, each with its own time. The journal
//! grows with the changes, never with the samples; `probe_summary` counts those at the end.
//!
//! Where a side is sampled: its host's address in the run's environment (so a rehearsal
//! probes its own hosts) — the host entry's `address`, else `127.0.0.1` for a local host and
//! the host name `ssh -G` gives for an ssh host.

use rehost_journal::journal::{ProbeSide, ProbeTarget};
use rehost_plan::{Plan, Probe, ProbeCheck};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The most of an HTTP answer a sample reads (status line, headers and body).
pub const HTTP_ANSWER_CAP: usize = 64 * 1024;

/// A side that became reachable or unreachable.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub service: String,
    pub side: ProbeSide,
    pub up: bool,
    pub detail: Option<String>,
    /// When the sample that saw it began.
    pub at: Instant,
}

/// What stops the threads: a flag and a condition variable their waits between samples
/// sleep on, so that a stop ends a wait at once.
#[derive(Default)]
pub(crate) struct Stop {
    flag: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Stop {
    fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Sleeps until `until`, or until the prober stops; `false` when it stopped.
    fn wait_until(&self, until: Instant) -> bool {
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.is_set() {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            guard = self
                .cv
                .wait_timeout(guard, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn set(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.cv.notify_all();
    }
}

/// The prober under way: its threads and the changes they report.
pub(crate) struct Prober {
    stop: Arc<Stop>,
    threads: Vec<JoinHandle<()>>,
    changes: Receiver<Change>,
    samples: Arc<AtomicU64>,
    /// The services sampled, for the journal.
    pub targets: Vec<ProbeTarget>,
}

/// The address of `host` in `env`: its `address`, else 127.0.0.1 for a local host and the
/// host name `ssh -G` gives for an ssh host (its destination's when ssh cannot say).
pub(crate) fn address(
    plan: &Plan,
    env: Option<&str>,
    ssh_config: Option<&std::path::Path>,
    host: &str,
) -> String {
    let Some(decl) = plan.host_decl(env, host) else {
        return "127.0.0.1".into();
    };
    if let Some(a) = &decl.address {
        return a.clone();
    }
    match &decl.target {
        rehost_plan::HostTarget::Local { .. } => "127.0.0.1".into(),
        t @ rehost_plan::HostTarget::Ssh { destination, .. } => {
            let fallback = || {
                destination
                    .rsplit_once('@')
                    .map_or(destination.clone(), |(_, h)| h.to_owned())
            };
            match crate::exec::host_spec(t.clone(), ssh_config) {
                rehost_host::HostSpec::Ssh(spec) => rehost_host::ssh::resolve(&spec)
                    .map(|r| r.hostname)
                    .unwrap_or_else(|_| fallback()),
                rehost_host::HostSpec::Local { .. } => fallback(),
            }
        }
    }
}

/// Every probed service of the plan, with the address of each side in `env`.
pub(crate) fn targets(
    plan: &Plan,
    env: Option<&str>,
    ssh_config: Option<&std::path::Path>,
) -> Vec<(ProbeTarget, Probe)> {
    plan.services
        .iter()
        .filter_map(|s| {
            let probe = s.probe.clone()?;
            let new_host = s.new_host.as_deref()?;
            let old = address(plan, env, ssh_config, &s.host);
            let new = address(plan, env, ssh_config, new_host);
            Some((
                ProbeTarget {
                    service: s.id.clone(),
                    check: probe.check.describe(),
                    old,
                    new,
                    interval_ms: probe.interval.as_millis() as u64,
                    timeout_ms: probe.timeout.as_millis() as u64,
                },
                probe,
            ))
        })
        .collect()
}

impl Prober {
    /// Starts a thread per side of every probed service; `None` when no service has a probe.
    pub fn start(
        plan: &Plan,
        env: Option<&str>,
        ssh_config: Option<&std::path::Path>,
    ) -> Option<Prober> {
        let all = targets(plan, env, ssh_config);
        if all.is_empty() {
            return None;
        }
        let stop = Arc::new(Stop::default());
        let samples = Arc::new(AtomicU64::new(0));
        let (tx, changes) = channel();
        let mut threads = Vec::new();
        for (t, probe) in &all {
            for (side, addr) in [(ProbeSide::Old, &t.old), (ProbeSide::New, &t.new)] {
                let sampler = Sampler {
                    service: t.service.clone(),
                    side,
                    address: addr.clone(),
                    probe: probe.clone(),
                    stop: stop.clone(),
                    samples: samples.clone(),
                    tx: tx.clone(),
                };
                let spawned = std::thread::Builder::new()
                    .name(format!("probe-{}-{}", t.service, side.name()))
                    .spawn(move || sampler.run());
                if let Ok(h) = spawned {
                    threads.push(h);
                }
            }
        }
        Some(Prober {
            stop,
            threads,
            changes,
            samples,
            targets: all.into_iter().map(|(t, _)| t).collect(),
        })
    }

    /// The changes reported since the last call.
    pub fn changes(&self) -> Vec<Change> {
        self.changes.try_iter().collect()
    }

    /// Stops the threads and returns the changes not yet taken and the samples taken. Waits
    /// a moment for the threads; one still in a TCP connect is left to end at its timeout on
    /// its own (what it would report is not taken).
    pub fn stop(mut self) -> (Vec<Change>, u64) {
        self.stop.set();
        let deadline = Instant::now() + Duration::from_millis(20);
        for h in std::mem::take(&mut self.threads) {
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
        (self.changes(), self.samples.load(Ordering::SeqCst))
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.set();
    }
}

/// One side of one service, sampled by its own thread.
struct Sampler {
    service: String,
    side: ProbeSide,
    address: String,
    probe: Probe,
    stop: Arc<Stop>,
    samples: Arc<AtomicU64>,
    tx: Sender<Change>,
}

impl Sampler {
    fn run(self) {
        let mut last: Option<bool> = None;
        while !self.stop.is_set() {
            let t0 = Instant::now();
            let result = sample(
                &self.probe.check,
                &self.address,
                t0 + self.probe.timeout,
                &self.stop,
            );
            if self.stop.is_set() {
                // A sample cut short by the stop says nothing about the service.
                break;
            }
            self.samples.fetch_add(1, Ordering::SeqCst);
            let up = result.is_ok();
            if last != Some(up) {
                last = Some(up);
                let change = Change {
                    service: self.service.clone(),
                    side: self.side,
                    up,
                    detail: result.err(),
                    at: t0,
                };
                if self.tx.send(change).is_err() {
                    break;
                }
            }
            if !self.stop.wait_until(t0 + self.probe.interval) {
                break;
            }
        }
    }
}

/// One sample: `Ok` when the side answered as the probe asks, else why not (rehost's own
/// words: nothing the peer sent is quoted).
pub(crate) fn sample(
    check: &ProbeCheck,
    address: &str,
    deadline: Instant,
    stop: &Stop,
) -> Result<(), String> {
    match check {
        ProbeCheck::Tcp { port } => connect(address, *port, deadline).map(drop),
        ProbeCheck::Http {
            port,
            path,
            status,
            body,
        } => http(address, *port, path, *status, body.as_deref(), deadline),
        ProbeCheck::Command { command } => run_command(command, address, deadline, stop),
    }
}

fn remaining(deadline: Instant) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err("no answer before the timeout".into())
    } else {
        Ok(left)
    }
}

fn connect(address: &str, port: u16, deadline: Instant) -> Result<TcpStream, String> {
    let addrs: Vec<_> = (address, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {address}: {e}"))?
        .collect();
    let mut last = format!("{address} has no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, remaining(deadline)?) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = format!("connect to {a}: no answer before the timeout");
            }
            Err(e) => last = format!("connect to {a}: {e}"),
        }
    }
    Err(last)
}

/// A hand-written HTTP/1.1 client: one `GET`, `Connection: close`, the answer read up to
/// [`HTTP_ANSWER_CAP`] or the deadline; the status line parsed, the body searched for `body`.
fn http(
    address: &str,
    port: u16,
    path: &str,
    want: u16,
    body: Option<&str>,
    deadline: Instant,
) -> Result<(), String> {
    let mut s = connect(address, port, deadline)?;
    let host = if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: rehost-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    s.set_write_timeout(Some(remaining(deadline)?))
        .map_err(|e| e.to_string())?;
    s.write_all(request.as_bytes())
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut answer: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = remaining(deadline)?;
        s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let take = n.min(HTTP_ANSWER_CAP - answer.len());
                answer.extend_from_slice(&buf[..take]);
                if answer.len() >= HTTP_ANSWER_CAP {
                    break;
                }
                // Enough read: the status is known and no body is looked for, or it is found.
                if let Some(i) = find(&answer, b"\r\n\r\n") {
                    match body {
                        None => break,
                        Some(b) if find(&answer[i + 4..], b.as_bytes()).is_some() => break,
                        Some(_) => {}
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err("no complete answer before the timeout".into());
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading the answer: {e}")),
        }
    }
    let status = status_of(&answer).ok_or("the answer is not HTTP/1.x")?;
    if status != want {
        return Err(format!("answered status {status}, not {want}"));
    }
    if let Some(b) = body {
        let head_end = find(&answer, b"\r\n\r\n")
            .map(|i| i + 4)
            .unwrap_or(answer.len());
        if find(&answer[head_end..], b.as_bytes()).is_none() {
            return Err(format!(
                "the body (first {} bytes read) does not hold the expected text",
                answer.len() - head_end
            ));
        }
    }
    Ok(())
}

/// The status code of an HTTP/1.x status line, or `None`.
pub(crate) fn status_of(answer: &[u8]) -> Option<u16> {
    let line_end = find(answer, b"\r\n")?;
    let line = std::str::from_utf8(&answer[..line_end]).ok()?;
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    code.parse().ok()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The command through `sh -c` on this machine, `{host}` replaced by the side's address (also
/// in `REHOST_PROBE_HOST`), in a process group of its own that is killed at the deadline or
/// when the prober stops; output discarded.
fn run_command(command: &str, address: &str, deadline: Instant, stop: &Stop) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let text = command.replace("{host}", address);
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(&text)
        .env("REHOST_PROBE_HOST", address)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    let pid = child.id() as libc::pid_t;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return if status.success() {
                    Ok(())
                } else {
                    Err(match status.code() {
                        Some(c) => format!("the command exited {c}"),
                        None => "the command was killed by a signal".into(),
                    })
                };
            }
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for the command: {e}")),
        }
        if Instant::now() >= deadline || stop.is_set() {
            // SAFETY: kill(2) on the process group this sample made, whose leader is not yet
            // reaped (so its id is not reused); no memory is involved.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = child.wait();
            return Err("the command did not finish before the timeout".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The measured downtime in one phrase: "1.5s (probes: 2 services, 84 samples every 200 ms)".
pub fn measured_text(m: &rehost_journal::Measured) -> String {
    format!(
        "{} (probes: {} service{}, {} samples every {} ms{})",
        rehost_plan::format_duration(Duration::from_millis(m.total_ms)),
        m.services.len(),
        if m.services.len() == 1 { "" } else { "s" },
        m.samples,
        m.interval_ms,
        if m.unfinished {
            "; a prober left no summary"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests;
