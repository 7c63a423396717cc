//! The agent's side: `rehost agent` serves requests read from stdin and writes result frames to
//! stdout until stdin ends. A reader thread watches stdin while a request runs, so a `Cancel`
//! frame or a lost connection (end of stdin) ends the request's whole process group at once.
//!
//! Memory is bounded whatever rehost does: frames pass from the reader through a bounded
//! channel, at most [`MAX_WAITING`] requests wait behind the one that runs (more are refused),
//! and every answer is written straight to stdout. So a rehost that sends and never reads
//! stops the agent at a full pipe: the work blocks on its output, the reader on the channel,
//! and rehost's writes on stdin, instead of the agent buffering without end.

use super::frame::{decode, read_frame, read_parts, write_frame, write_parts};
use super::protocol::{AgentFrame, ClientFrame, PROTOCOL_VERSION, Request, Response};
use crate::{Host, LocalHost};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// Why the agent stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("read the first frame from rehost: {0}")]
    Hello(std::io::Error),
    #[error("start: rehost sent no hello")]
    NoHello,
    #[error("agree on a protocol: rehost speaks version {client}, this agent {agent}")]
    Version { client: u32, agent: u32 },
    #[error("write to rehost: {0}")]
    Write(std::io::Error),
}

/// Requests that may wait behind the one that runs. rehost sends one request at a time and
/// waits for its end, so one waits at most for a moment; more are refused.
pub const MAX_WAITING: usize = 1;
/// Frames decoded ahead of the dispatcher (each up to `MAX_FRAME` + `MAX_DATA`).
const FRAMES_AHEAD: usize = 1;

enum Msg {
    Frame(ClientFrame),
    /// Stdin ended or broke: rehost is gone.
    Closed,
    /// A frame that does not decode; `id` if it looks like a request.
    Unknown {
        id: Option<u64>,
        error: String,
    },
    WorkerDone,
}

/// Serves one session on `input`/`output` (stdin/stdout in `rehost agent`).
pub fn serve(
    input: impl Read + Send + 'static,
    output: impl Write + Send + 'static,
) -> Result<(), ServeError> {
    forget_boot_descriptor();
    let mut input = BufReader::new(input);
    // Large enough that a stream of small file pieces leaves in few writes (see `emit`).
    let mut output = BufWriter::with_capacity(256 << 10, output);
    let (protocol, name, root) =
        match read_frame::<ClientFrame>(&mut input).map_err(ServeError::Hello)? {
            Some(ClientFrame::Hello {
                protocol,
                host,
                root,
                ..
            }) => (protocol, host.unwrap_or_else(hostname), root),
            _ => return Err(ServeError::NoHello),
        };
    write_frame(
        &mut output,
        &AgentFrame::Hello {
            protocol: PROTOCOL_VERSION,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
        },
    )
    .map_err(ServeError::Write)?;
    if protocol != PROTOCOL_VERSION {
        return Err(ServeError::Version {
            client: protocol,
            agent: PROTOCOL_VERSION,
        });
    }
    let host = Arc::new(LocalHost::new(
        &name,
        root.map(|r| PathBuf::from(r.as_os_str())),
    ));
    let output = Arc::new(Mutex::new(output));

    let (tx, rx) = mpsc::sync_channel::<Msg>(FRAMES_AHEAD);
    let reader_tx = tx.clone();
    std::thread::spawn(move || {
        loop {
            let msg = match read_parts(&mut input) {
                Ok(Some((body, data))) => match decode::<ClientFrame>(&body, data) {
                    Ok(f) => Msg::Frame(f),
                    // A request this agent does not know (another version, through
                    // REHOST_AGENT_BINARY): refuse that request, keep the session.
                    Err(e) => Msg::Unknown {
                        id: request_id(&body),
                        error: e.to_string(),
                    },
                },
                Ok(None) | Err(_) => Msg::Closed,
            };
            let closed = matches!(msg, Msg::Closed);
            if reader_tx.send(msg).is_err() || closed {
                break;
            }
        }
    });

    // The request in flight: its id and cancel flag.
    let mut current: Option<(u64, Arc<AtomicBool>)> = None;
    let mut closed = false;
    let mut queued: std::collections::VecDeque<(u64, Request)> = Default::default();
    loop {
        if current.is_none() {
            if closed {
                return Ok(());
            }
            if let Some((id, request)) = queued.pop_front() {
                let cancel = Arc::new(AtomicBool::new(false));
                current = Some((id, cancel.clone()));
                spawn_worker(
                    id,
                    request,
                    host.clone(),
                    output.clone(),
                    cancel,
                    tx.clone(),
                );
                continue;
            }
        }
        let Ok(msg) = rx.recv() else { return Ok(()) };
        match msg {
            Msg::Frame(ClientFrame::Request { id, request }) if queued.len() < MAX_WAITING => {
                queued.push_back((id, request))
            }
            Msg::Frame(ClientFrame::Request { id, request }) => {
                // A client that does not wait for answers: refuse rather than queue. Writing
                // blocks while nobody reads, which stops the reader at the bounded channel.
                drop(request);
                let end = AgentFrame::End {
                    id,
                    error: Some(format!(
                        "refused: {} request(s) are already waiting on host {}; rehost sends one at a time",
                        queued.len(),
                        host.name()
                    )),
                };
                let mut out = output.lock().unwrap_or_else(|e| e.into_inner());
                if write_frame(&mut *out, &end).is_err() {
                    closed = true;
                }
            }
            Msg::Frame(ClientFrame::Cancel { id }) => {
                if let Some((cur, cancel)) = &current
                    && *cur == id
                {
                    cancel.store(true, Ordering::Relaxed);
                }
                queued.retain(|(q, _)| *q != id);
            }
            Msg::Frame(ClientFrame::Hello { .. }) => {}
            Msg::Closed => {
                // Nobody will read the results: end what runs (its process group) and stop.
                closed = true;
                queued.clear();
                if let Some((_, cancel)) = &current {
                    cancel.store(true, Ordering::Relaxed);
                }
            }
            Msg::WorkerDone => current = None,
            Msg::Unknown { id, error } => {
                let Some(id) = id else { continue };
                let mut out = output.lock().unwrap_or_else(|e| e.into_inner());
                let end = AgentFrame::End {
                    id,
                    error: Some(format!(
                        "failed to understand the request on host {} (its agent is rehost {}): {error}",
                        host.name(),
                        env!("CARGO_PKG_VERSION")
                    )),
                };
                if write_frame(&mut *out, &end).is_err() {
                    closed = true;
                }
            }
        }
    }
}

fn spawn_worker(
    id: u64,
    request: Request,
    host: Arc<LocalHost>,
    output: Arc<Mutex<BufWriter<impl Write + Send + 'static>>>,
    cancel: Arc<AtomicBool>,
    done: mpsc::SyncSender<Msg>,
) {
    std::thread::spawn(move || {
        let mut emit = |response: Response| {
            let mut out = output.lock().unwrap_or_else(|e| e.into_inner());
            // File pieces follow one another until the request's `End`, which flushes: they
            // leave in full buffers rather than a write each. Anything else is seen at once.
            let more = matches!(response, Response::FileData { .. });
            let frame = AgentFrame::Response { id, response };
            let written = if more {
                write_parts(&mut *out, &frame, super::frame::Framed::data(&frame))
            } else {
                write_frame(&mut *out, &frame)
            };
            if written.is_err() {
                // rehost is gone: stop the work rather than run on unobserved.
                cancel.store(true, Ordering::Relaxed);
            }
        };
        let result = crate::capability::execute(&host, &request, &cancel, &mut emit);
        let error = result.err().map(|e| e.to_string());
        {
            let mut out = output.lock().unwrap_or_else(|e| e.into_inner());
            let _ = write_frame(&mut *out, &AgentFrame::End { id, error });
        }
        let _ = done.send(Msg::WorkerDone);
    });
}

/// Closes the descriptor the boot script started this agent through (the agent's own binary,
/// `ssh::install::BOOT_FD`), so that the commands the agent runs do not inherit it. Anything
/// else open there is left alone.
fn forget_boot_descriptor() {
    let fd = crate::ssh::BOOT_FD;
    // SAFETY: the descriptor is only looked at while borrowed (fstat fails with EBADF if
    // nothing is open there), and closed only if it is this process's own executable, which
    // nothing in this process uses.
    unsafe {
        let borrowed = std::os::fd::BorrowedFd::borrow_raw(fd);
        if let (Ok(a), Ok(b)) = (
            rustix::fs::fstat(borrowed),
            rustix::fs::stat("/proc/self/exe"),
        ) && a.st_dev == b.st_dev
            && a.st_ino == b.st_ino
        {
            drop(<std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd));
        }
    }
}

/// The `id` of a request frame that did not decode, so it can still be answered.
fn request_id(body: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    if v.get("type")?.as_str()? != "request" {
        return None;
    }
    v.get("id")?.as_u64()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "agent".to_owned())
}
