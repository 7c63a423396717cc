//! Record: an HTTP/1.1 reverse proxy in front of the old service that appends every exchange
//! to a traffic file.
//!
//! The shape is the hold's (`rehost-hold`): an accept loop hands each client connection to one
//! of a few epoll workers (`worker.rs`, one per CPU), which relay it with non-blocking sockets
//! and a keep-alive connection upstream per client connection. Bodies are relayed as they
//! arrive, their bytes unchanged (chunk framing, trailers and compressed content pass through
//! as sent; `frame.rs` frames them without IO); heads are capped ([`Limits::head`]) and their
//! line endings forwarded as CRLF. What is recorded is the body after the chunked framing, up
//! to a cap: beyond it the exchange is still proxied whole but recorded as `truncated` (replay
//! skips it, saying so).
//!
//! Each completed exchange goes to a writer thread through a queue bounded by bytes
//! (`writer.rs`): the relay never waits for the disk, and an exchange the queue has no room
//! for is counted as dropped, not waited for. On a stop the queue is written out and the file
//! synced before [`record`] returns.

mod frame;
mod worker;
mod writer;

use crate::http::Limits;
use crate::traffic;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// How many workers relay at most (one per CPU up to this).
const MAX_WORKERS: usize = 4;

/// How many client connections are open at most; past it, accept waits (clients wait in the
/// backlog) until one ends.
pub const MAX_CONNECTIONS: usize = 10_000;

/// How to record.
#[derive(Clone, Debug)]
pub struct RecordOptions {
    /// `limits.head` caps heads and trailers; `limits.body` is the recording cap (bodies are
    /// relayed whole whatever their size).
    pub limits: Limits,
    /// Connect timeout upstream; how long a connection may stay without a byte moving (idle
    /// or in an exchange); how long a stop waits for the exchanges in progress.
    pub timeout: Duration,
    /// Relaying threads: 0 for one per CPU (at most 4).
    pub workers: usize,
    /// The most bytes of completed exchanges waiting to be written before further ones are
    /// dropped (counted, not recorded).
    pub queue_bytes: usize,
}

impl Default for RecordOptions {
    fn default() -> Self {
        RecordOptions {
            limits: Limits::default(),
            timeout: Duration::from_secs(60),
            workers: 0,
            queue_bytes: writer::QUEUE_BYTES,
        }
    }
}

/// What a recording did.
#[derive(Debug, Default, serde::Serialize)]
pub struct RecordStats {
    pub connections: u64,
    /// Exchanges written to the traffic file.
    pub exchanges: u64,
    pub truncated: u64,
    /// Exchanges that could not be completed (a side closed or sent something malformed).
    pub failed: u64,
    /// Exchanges relayed whole but not recorded: the traffic file's writer was more than
    /// [`RecordOptions::queue_bytes`] behind, or writing the file failed.
    pub dropped: u64,
    /// Why writing the traffic file failed, when it did (the exchanges after it are dropped).
    pub write_error: Option<String>,
}

/// Creates the traffic file (mode 0600, refusing one that exists) and writes its first line.
pub fn create(path: &std::path::Path) -> Result<std::fs::File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                format!(
                    "{}: exists; give a new file (a traffic file is never appended to or overwritten)",
                    path.display()
                )
            } else {
                format!("{}: {e}", path.display())
            }
        })?;
    traffic::write_header(&mut f).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(f)
}

/// Resolves the upstream address, `HOST:PORT`.
pub fn upstream_addrs(upstream: &str) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = upstream
        .to_socket_addrs()
        .map_err(|e| format!("--upstream {upstream}: {e} (give HOST:PORT)"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("--upstream {upstream}: resolves to no address"));
    }
    Ok(addrs)
}

/// What the accept loop, the workers and the writer share.
struct Shared {
    upstream: Vec<SocketAddr>,
    opts: RecordOptions,
    queue: writer::Queue,
    failed: AtomicU64,
    /// Client connections open.
    open: AtomicUsize,
    /// The accept loop stopped: workers close idle connections and end when none is left.
    stopping: AtomicBool,
}

/// Proxies and records until `cancel` is set; then stops accepting, lets each connection
/// finish the exchange in progress (up to the timeout), writes out what waits, and returns
/// what was recorded.
pub fn record(
    listener: TcpListener,
    upstream: Vec<SocketAddr>,
    out: std::fs::File,
    opts: RecordOptions,
    cancel: &AtomicBool,
) -> io::Result<RecordStats> {
    listener.set_nonblocking(true)?;
    let n = match opts.workers {
        0 => std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(MAX_WORKERS),
        n => n.min(64),
    };
    let sh = Shared {
        upstream,
        queue: writer::Queue::new(opts.queue_bytes),
        opts,
        failed: AtomicU64::new(0),
        open: AtomicUsize::new(0),
        stopping: AtomicBool::new(false),
    };
    let workers = (0..n)
        .map(|_| worker::Worker::new())
        .collect::<io::Result<Vec<_>>>()?;
    let mut connections = 0u64;
    let (accepted, written) = std::thread::scope(|s| {
        let writer = std::thread::Builder::new()
            .name("record-writer".into())
            .spawn_scoped(s, || writer::run(&sh.queue, out))?;
        let mut relays = Vec::new();
        for (i, w) in workers.iter().enumerate() {
            let sh = &sh;
            relays.push(
                std::thread::Builder::new()
                    .name(format!("record-relay-{i}"))
                    .spawn_scoped(s, move || worker::Run::new(w, sh).run())?,
            );
        }
        let accepted = accept(&listener, &sh, &workers, cancel, &mut connections);
        sh.stopping.store(true, Ordering::SeqCst);
        for w in &workers {
            w.wake();
        }
        for r in relays {
            let _ = r.join();
        }
        sh.queue.done.store(true, Ordering::SeqCst);
        writer.thread().unpark();
        let written = writer
            .join()
            .map_err(|_| io::Error::other("the traffic file's writer panicked"))?;
        Ok::<_, io::Error>((accepted, written))
    })?;
    accepted?;
    Ok(RecordStats {
        connections,
        exchanges: written.exchanges,
        truncated: written.truncated,
        failed: sh.failed.load(Ordering::Relaxed),
        dropped: sh.queue.dropped.load(Ordering::Relaxed) + written.unwritten,
        write_error: written.error,
    })
}

/// Accepts until cancelled, handing connections to the workers in turn.
fn accept(
    listener: &TcpListener,
    sh: &Shared,
    workers: &[worker::Worker],
    cancel: &AtomicBool,
    connections: &mut u64,
) -> io::Result<()> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let tick = Timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    let mut next = 0usize;
    while !cancel.load(Ordering::SeqCst) {
        if sh.open.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let mut fds = [PollFd::new(listener, PollFlags::IN)];
        match poll(&mut fds, Some(&tick)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        loop {
            match listener.accept() {
                Ok((conn, _)) => {
                    *connections += 1;
                    sh.open.fetch_add(1, Ordering::SeqCst);
                    workers[next % workers.len()].hand(*connections, conn);
                    next += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(_) => {
                    // Out of descriptors and the like: wait, do not end the recording.
                    std::thread::sleep(Duration::from_millis(50));
                    break;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
