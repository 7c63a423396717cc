//! rehost's side of an agent session: a child process (usually `ssh … rehost agent`) whose
//! stdin takes [`ClientFrame`]s and whose stdout yields [`AgentFrame`]s. A reader thread decodes
//! frames so that waiting for results can also watch the cancel flag.

use super::frame::{read_frame, write_frame, write_parts};
/// How long an agent has to end a cancelled request.
const CANCEL_GRACE: Duration = Duration::from_secs(30);
/// Frames decoded ahead of the one being handled (each up to `MAX_FRAME` + `MAX_DATA`).
const FRAMES_AHEAD: usize = 1;

use super::protocol::{
    AgentFrame, ClientFrame, ClientFrameRef, PROTOCOL_VERSION, Request, Response,
};
use crate::HostError;
use crate::bytes::Bytes;
use std::io::{BufWriter, Read, Write};
use std::process::{Child, ChildStdin, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What went wrong in a session, before the caller adds the host's name.
#[derive(Debug)]
pub enum SessionError {
    /// The agent's stdout ended or broke: the process (or the connection) is gone.
    Closed {
        status: Option<ExitStatus>,
        stderr: String,
    },
    /// The agent answered something that does not fit the protocol.
    Protocol(String),
    /// The agent speaks another protocol version.
    Version { agent: u32, version: String },
    /// The request ran and failed on the host.
    Failed(String),
    /// No hello within the time allowed.
    Timeout,
}

impl SessionError {
    /// The error as a host's, naming it; `in_flight` says what the request was doing. (An ssh
    /// host adds what its connection says to a closed session.)
    pub fn for_host(self, host: &str, in_flight: &str) -> HostError {
        let host = host.to_owned();
        match self {
            SessionError::Closed { status, stderr } => HostError::ConnectionLost {
                host,
                in_flight: in_flight.to_owned(),
                detail: match (stderr.is_empty(), status) {
                    (false, _) => stderr,
                    (true, Some(s)) => format!("the agent session ended with {s}"),
                    (true, None) => "the agent session ended".into(),
                },
            },
            SessionError::Version { agent, version } => HostError::AgentVersion {
                host,
                agent,
                version,
                ours: PROTOCOL_VERSION,
            },
            SessionError::Protocol(message) => HostError::Protocol { host, message },
            SessionError::Timeout => HostError::Protocol {
                host,
                message: "the agent did not answer in time".into(),
            },
            SessionError::Failed(message) => HostError::Remote {
                host,
                what: in_flight.to_owned(),
                message,
            },
        }
    }
}

enum Event {
    Frame(AgentFrame),
    /// The agent's output ended: cleanly between frames (`None`), or with what broke it.
    Closed(Option<std::io::Error>),
}

/// One agent session. Requests run one at a time; a pool of sessions gives concurrency.
pub struct AgentConn {
    child: Child,
    stdin: BufWriter<ChildStdin>,
    events: mpsc::Receiver<Event>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Set when the process's stderr has ended: everything it said is in `stderr`.
    stderr_done: Arc<AtomicBool>,
    next_id: u64,
    /// Set once the session is unusable (closed, or out of step with the agent).
    broken: bool,
}

/// The most of an agent's stderr kept for error messages.
const STDERR_KEEP: usize = 16 << 10;

impl AgentConn {
    /// Takes over a spawned child (stdin, stdout and stderr piped) and performs the handshake.
    pub fn start(
        mut child: Child,
        host: &str,
        root: Option<Bytes>,
        hello_timeout: Duration,
    ) -> Result<(AgentConn, String), SessionError> {
        let stdin = child.stdin.take().expect("agent stdin piped");
        let stdout = child.stdout.take().expect("agent stdout piped");
        let stderr_pipe = child.stderr.take();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_done = Arc::new(AtomicBool::new(stderr_pipe.is_none()));
        if let Some(mut pipe) = stderr_pipe {
            let keep = stderr.clone();
            let done = stderr_done.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut k = keep.lock().unwrap_or_else(|e| e.into_inner());
                    if k.len() < STDERR_KEEP {
                        k.extend_from_slice(&buf[..n]);
                    }
                }
                done.store(true, Ordering::SeqCst);
            });
        }
        // Bounded: an agent that streams frames nobody asked for (into a session waiting in
        // the pool, or faster than they are handled) stops at a full pipe; rehost holds at
        // most the frame being read and FRAMES_AHEAD decoded ones.
        let (tx, events) = mpsc::sync_channel(FRAMES_AHEAD);
        std::thread::spawn(move || {
            // Page-aligned (issue 27): frame content is read from ssh's pipe through this
            // buffer, or straight into the frame's own aligned buffer when that is on a page.
            let mut r = rehost_tree::aligned::BufReader::with_capacity(256 << 10, stdout);
            loop {
                match read_frame::<AgentFrame>(&mut r) {
                    Ok(Some(f)) => {
                        if tx.send(Event::Frame(f)).is_err() {
                            break;
                        }
                    }
                    Ok(None) => {
                        let _ = tx.send(Event::Closed(None));
                        break;
                    }
                    Err(e) => {
                        let _ = tx.send(Event::Closed(Some(e)));
                        break;
                    }
                }
            }
        });
        let mut conn = AgentConn {
            child,
            stdin: BufWriter::new(stdin),
            events,
            stderr,
            stderr_done,
            next_id: 1,
            broken: false,
        };
        conn.send(&ClientFrame::Hello {
            protocol: PROTOCOL_VERSION,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            host: Some(host.to_owned()),
            root,
        })?;
        match conn.events.recv_timeout(hello_timeout) {
            Ok(Event::Frame(AgentFrame::Hello {
                protocol,
                version,
                arch,
            })) => {
                if protocol != PROTOCOL_VERSION {
                    conn.broken = true;
                    return Err(SessionError::Version {
                        agent: protocol,
                        version,
                    });
                }
                Ok((conn, arch))
            }
            Ok(Event::Frame(other)) => Err(SessionError::Protocol(format!(
                "expected hello, got {other:?}"
            ))),
            Ok(Event::Closed(_)) | Err(RecvTimeoutError::Disconnected) => Err(conn.closed()),
            Err(RecvTimeoutError::Timeout) => Err(SessionError::Timeout),
        }
    }

    /// Whether the session can take another request.
    pub fn is_usable(&self) -> bool {
        !self.broken
    }

    /// Runs one request, passing each response to `on_response`. Setting `cancel` sends a
    /// cancel frame; the agent ends the work and the request still ends normally.
    pub fn request(
        &mut self,
        request: &Request,
        cancel: &AtomicBool,
        on_response: &mut dyn FnMut(Response),
    ) -> Result<(), SessionError> {
        if self.broken {
            return Err(SessionError::Protocol("session is no longer usable".into()));
        }
        let id = self.next_id;
        self.next_id += 1;
        // Borrowed: the content a request carries is written as it is, not copied first.
        let frame = ClientFrameRef::Request { id, request };
        let sent = write_parts(&mut self.stdin, &frame, request.content())
            .and_then(|()| self.stdin.flush());
        if sent.is_err() {
            return Err(self.closed());
        }
        let mut cancel_sent = None;
        loop {
            if cancel_sent.is_none() && cancel.load(Ordering::Relaxed) {
                self.send(&ClientFrame::Cancel { id })?;
                cancel_sent = Some(Instant::now());
            }
            // An agent that goes on answering (or stays silent) after a cancel is broken or
            // hostile: give up on it rather than wait for ever.
            if cancel_sent.is_some_and(|t| t.elapsed() > CANCEL_GRACE) {
                self.broken = true;
                return Err(SessionError::Protocol(format!(
                    "the agent did not stop within {} s of being cancelled",
                    CANCEL_GRACE.as_secs()
                )));
            }
            match self.events.recv_timeout(Duration::from_millis(50)) {
                Ok(Event::Frame(AgentFrame::Response { id: rid, response })) if rid == id => {
                    on_response(response)
                }
                Ok(Event::Frame(AgentFrame::End { id: rid, error })) if rid == id => {
                    return match error {
                        None => Ok(()),
                        Some(e) => Err(SessionError::Failed(e)),
                    };
                }
                Ok(Event::Frame(other)) => {
                    self.broken = true;
                    return Err(SessionError::Protocol(format!(
                        "unexpected frame {other:?}"
                    )));
                }
                // A frame that claims too much or does not decode: the agent is broken or
                // hostile.
                Ok(Event::Closed(Some(e))) if e.kind() == std::io::ErrorKind::InvalidData => {
                    self.broken = true;
                    return Err(SessionError::Protocol(format!(
                        "the agent sent a frame that is refused: {e}"
                    )));
                }
                // Output that ends inside a frame: a connection cut (what ssh says comes
                // first) or an agent that died or lied about a length.
                Ok(Event::Closed(Some(e))) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(match self.closed() {
                        SessionError::Closed { status, stderr } => SessionError::Closed {
                            status,
                            stderr: format!("{stderr}\nthe agent's output was cut off: {e}")
                                .trim()
                                .to_owned(),
                        },
                        other => other,
                    });
                }
                Ok(Event::Closed(_)) | Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.closed());
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    fn send(&mut self, frame: &ClientFrame) -> Result<(), SessionError> {
        if write_frame(&mut self.stdin, frame).is_err() {
            return Err(self.closed());
        }
        Ok(())
    }

    /// The session ended: collect how the process exited and what it said.
    fn closed(&mut self) -> SessionError {
        self.broken = true;
        // The process may take a moment to exit after its stdout closed.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut status = None;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(s)) => {
                    status = Some(s);
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => break,
            }
        }
        // Let the stderr reader catch up with what the process wrote last (ssh closes it as
        // the remote process exits; a grandchild holding it open is not waited for long).
        let deadline =
            Instant::now() + Duration::from_millis(if status.is_some() { 1000 } else { 20 });
        while !self.stderr_done.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        let stderr =
            String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|e| e.into_inner()))
                .trim()
                .to_owned();
        SessionError::Closed { status, stderr }
    }
}

impl Drop for AgentConn {
    fn drop(&mut self) {
        // Closing stdin ends the agent (it cancels whatever still runs); then reap the child.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
