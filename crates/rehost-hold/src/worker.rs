//! The relay's workers: a few threads, each with an epoll set of non-blocking sockets
//! (edge-triggered), copying both directions of the connections handed to it.
//!
//! A direction reads from its source into the worker's buffer and writes it on at once; what
//! the destination does not take is kept (at most one buffer's worth) and the direction reads
//! no more until it is written: the bytes a relay holds stay bounded whatever the peers do.
//! Once a read fills the buffer (a bulk transfer) the direction moves on with `splice(2)`
//! through a pipe of its own (the bytes stay in the kernel), where the kernel allows it.
//! A source's end is passed on as a `shutdown(SHUT_WR)` of the destination once everything
//! read is written; the connection ends when both directions have, or at the first error.

use crate::relay::{Shared, lock};
use rustix::event::{EventfdFlags, Timespec, epoll, eventfd};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The buffer of a worker; a read that fills it marks a bulk transfer.
const BUF: usize = 64 * 1024;
/// The pipe's capacity asked for: one splice moves up to this much.
const PIPE_SIZE: usize = 256 * 1024;
/// Events taken per `epoll_wait`.
const EVENTS: usize = 256;
/// The wake-up eventfd's token (connection tokens are `id << 1 | side`, ids far below).
const WAKE: u64 = u64::MAX;

/// A connection accepted and its upstream connection begun, handed to a worker.
pub(crate) struct New {
    pub id: u64,
    pub client: Arc<TcpStream>,
    pub up: Arc<TcpStream>,
    pub upstream: SocketAddr,
    /// The upstream connection is still being made (`EINPROGRESS`); given up on at this
    /// instant.
    pub connecting: Option<Instant>,
}

/// A worker as the accept loop sees it: where to hand a connection, and how to wake it.
pub(crate) struct Worker {
    inbox: Mutex<Vec<New>>,
    wake: OwnedFd,
    epoll: OwnedFd,
}

impl Worker {
    /// Makes a worker and starts its thread.
    pub(crate) fn start(shared: Arc<Shared>, n: usize) -> io::Result<Arc<Worker>> {
        let w = Arc::new(Worker {
            inbox: Mutex::new(Vec::new()),
            wake: eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?,
            epoll: epoll::create(epoll::CreateFlags::CLOEXEC)?,
        });
        epoll::add(
            &w.epoll,
            &w.wake,
            epoll::EventData::new_u64(WAKE),
            epoll::EventFlags::IN | epoll::EventFlags::ET,
        )?;
        let w2 = Arc::clone(&w);
        std::thread::Builder::new()
            .name(format!("hold-relay-{n}"))
            .spawn(move || Run::new(&w2, &shared).run())?;
        Ok(w)
    }

    /// Hands a connection to this worker.
    pub(crate) fn hand(&self, c: New) {
        lock(&self.inbox).push(c);
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }
}

#[derive(Default)]
struct Dir {
    /// Read but not yet written (`pending[at..]`).
    pending: Vec<u8>,
    at: usize,
    /// The source ended: the destination is shut down for writing once `pending` is out.
    eof: bool,
    /// Done: the end passed on.
    done: bool,
    /// Splicing: the pipe, and how many bytes are in it.
    pipe: Option<(Pipe, usize)>,
    /// A splice moved bytes for this direction.
    spliced: bool,
    /// The kernel refused to splice these sockets: copy.
    no_splice: bool,
    /// The source reported its end (or an error) with an event: a short read does not mean
    /// it is drained, since the end raises no further edge; read until `EAGAIN` or the end.
    src_ended: bool,
}

struct Relay {
    client: Arc<TcpStream>,
    up: Arc<TcpStream>,
    upstream: SocketAddr,
    connecting: Option<Instant>,
    to_up: Dir,
    to_client: Dir,
}

enum Step {
    /// Waiting for the source to be readable or the destination writable.
    Wait,
    /// Failed: end the connection.
    Fail,
}

struct Run<'a> {
    w: &'a Worker,
    sh: &'a Shared,
    conns: HashMap<u64, Relay>,
    buf: Vec<u8>,
    connecting: usize,
}

impl<'a> Run<'a> {
    fn new(w: &'a Worker, sh: &'a Shared) -> Run<'a> {
        Run {
            w,
            sh,
            conns: HashMap::new(),
            buf: vec![0; BUF],
            connecting: 0,
        }
    }

    fn run(mut self) {
        let mut events: Vec<epoll::Event> = Vec::with_capacity(EVENTS);
        loop {
            events.clear();
            // With upstream connections being made, look at their deadlines now and then.
            let tick = Timespec {
                tv_sec: 0,
                tv_nsec: 200_000_000,
            };
            let timeout = (self.connecting > 0).then_some(&tick);
            match epoll::wait(
                &self.w.epoll,
                rustix::buffer::spare_capacity(&mut events),
                timeout,
            ) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    (self.sh.log)(&format!(
                        "a relay worker's epoll_wait failed ({e}); it stops"
                    ));
                    return;
                }
            }
            for ev in &events {
                let token = ev.data.u64();
                if token == WAKE {
                    let mut b = [0u8; 8];
                    let _ = rustix::io::read(&self.w.wake, &mut b);
                    let new = std::mem::take(&mut *lock(&self.w.inbox));
                    for c in new {
                        self.add(c);
                    }
                    continue;
                }
                let id = token >> 1;
                let from_up = token & 1 == 1;
                self.event(id, from_up, ev.flags);
            }
            if self.connecting > 0 {
                self.expire();
            }
        }
    }

    fn add(&mut self, c: New) {
        let data = |side: u64| epoll::EventData::new_u64(c.id << 1 | side);
        let flags = epoll::EventFlags::IN
            | epoll::EventFlags::OUT
            | epoll::EventFlags::RDHUP
            | epoll::EventFlags::ET;
        if epoll::add(&self.w.epoll, c.client.as_fd(), data(0), flags).is_err()
            || epoll::add(&self.w.epoll, c.up.as_fd(), data(1), flags).is_err()
        {
            (self.sh.log)(&format!(
                "could not watch the connection of a client to {}: closed it",
                c.upstream
            ));
            let _ = epoll::delete(&self.w.epoll, c.client.as_fd());
            self.sh.forget(c.id);
            return;
        }
        if c.connecting.is_some() {
            self.connecting += 1;
        }
        let id = c.id;
        self.conns.insert(
            id,
            Relay {
                client: c.client,
                up: c.up,
                upstream: c.upstream,
                connecting: c.connecting,
                to_up: Dir::default(),
                to_client: Dir::default(),
            },
        );
        // Whatever arrived before the sockets were watched: look now (an upstream connection
        // still being made is looked at when its socket says it is writable or failed).
        if c.connecting.is_none() {
            self.event(id, true, epoll::EventFlags::empty());
        }
    }

    fn event(&mut self, id: u64, from_up: bool, flags: epoll::EventFlags) {
        let Some(r) = self.conns.get_mut(&id) else {
            return;
        };
        if flags
            .intersects(epoll::EventFlags::RDHUP | epoll::EventFlags::HUP | epoll::EventFlags::ERR)
        {
            if from_up {
                r.to_client.src_ended = true;
            } else {
                r.to_up.src_ended = true;
            }
        }
        if r.connecting.is_some() {
            if !from_up {
                // The client spoke before the upstream answered: its bytes wait in its
                // socket until the upstream connection is made (looked at then).
                return;
            }
            if !flags.intersects(
                epoll::EventFlags::OUT | epoll::EventFlags::ERR | epoll::EventFlags::HUP,
            ) {
                return;
            }
            match r.up.take_error() {
                Ok(None) if !flags.contains(epoll::EventFlags::HUP) => {
                    r.connecting = None;
                    self.connecting -= 1;
                }
                Ok(None) => {
                    let up = r.upstream;
                    return self.fail_connect(id, up, "connection closed".into());
                }
                Ok(Some(e)) | Err(e) => {
                    let up = r.upstream;
                    return self.fail_connect(id, up, e.to_string());
                }
            }
        }
        let buf = &mut self.buf;
        let a = pump(&mut r.to_up, &r.client, &r.up, buf);
        let b = pump(&mut r.to_client, &r.up, &r.client, buf);
        if matches!(a, Step::Fail) || matches!(b, Step::Fail) || (r.to_up.done && r.to_client.done)
        {
            self.close(id);
        }
    }

    fn fail_connect(&mut self, id: u64, upstream: SocketAddr, why: String) {
        (self.sh.log)(&format!(
            "the upstream {upstream} did not accept a connection ({why}): closed the client"
        ));
        self.close(id);
    }

    /// Ends the connections whose upstream connection was not made in time.
    fn expire(&mut self) {
        let now = Instant::now();
        let late: Vec<(u64, SocketAddr)> = self
            .conns
            .iter()
            .filter(|(_, r)| r.connecting.is_some_and(|d| d <= now))
            .map(|(id, r)| (*id, r.upstream))
            .collect();
        for (id, up) in late {
            self.fail_connect(
                id,
                up,
                format!(
                    "no answer within {} s",
                    crate::relay::CONNECT_TIMEOUT.as_secs()
                ),
            );
        }
    }

    fn close(&mut self, id: u64) {
        if let Some(r) = self.conns.remove(&id) {
            if r.connecting.is_some() {
                self.connecting -= 1;
            }
            let _ = epoll::delete(&self.w.epoll, r.client.as_fd());
            let _ = epoll::delete(&self.w.epoll, r.up.as_fd());
            // Closed for good even while a switch still holds the sockets.
            let _ = r.client.shutdown(Shutdown::Both);
            let _ = r.up.shutdown(Shutdown::Both);
        }
        self.sh.forget(id);
    }
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// Moves one direction on as far as the sockets allow.
fn pump(d: &mut Dir, src: &TcpStream, dst: &TcpStream, buf: &mut [u8]) -> Step {
    if d.done {
        return Step::Wait;
    }
    loop {
        // What is held goes first.
        if let Some((pipe, held)) = &mut d.pipe {
            while *held > 0 {
                match splice(pipe.r.as_raw_fd(), dst.as_raw_fd(), *held) {
                    Ok(0) => return Step::Fail,
                    Ok(m) => *held -= m,
                    Err(e) if would_block(&e) => return Step::Wait,
                    Err(_) => return Step::Fail,
                }
            }
        }
        while d.at < d.pending.len() {
            match (&*dst).write(&d.pending[d.at..]) {
                Ok(0) => return Step::Fail,
                Ok(m) => d.at += m,
                Err(e) if would_block(&e) => return Step::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Step::Fail,
            }
        }
        d.pending.clear();
        d.at = 0;
        if d.eof {
            let _ = dst.shutdown(Shutdown::Write);
            d.done = true;
            d.pipe = None;
            return Step::Wait;
        }
        if let Some((pipe, held)) = &mut d.pipe {
            match splice(src.as_raw_fd(), pipe.w.as_raw_fd(), PIPE_SIZE) {
                Ok(0) => d.eof = true,
                Ok(n) => {
                    *held = n;
                    d.spliced = true;
                }
                Err(e) if would_block(&e) => return Step::Wait,
                Err(e) if !d.spliced && e.raw_os_error() == Some(libc::EINVAL) => {
                    // The kernel does not splice these sockets: copy.
                    d.pipe = None;
                    d.no_splice = true;
                }
                Err(_) => return Step::Fail,
            }
            continue;
        }
        let n = match (&*src).read(buf) {
            Ok(0) => {
                d.eof = true;
                continue;
            }
            Ok(n) => n,
            Err(e) if would_block(&e) => return Step::Wait,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Step::Fail,
        };
        let mut at = 0;
        while at < n {
            match (&*dst).write(&buf[at..n]) {
                Ok(0) => return Step::Fail,
                Ok(m) => at += m,
                Err(e) if would_block(&e) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Step::Fail,
            }
        }
        if at < n {
            d.pending.extend_from_slice(&buf[at..n]);
            return Step::Wait;
        }
        if n == buf.len() && !d.no_splice {
            // A bulk transfer: on through a pipe, where the kernel allows it.
            match Pipe::new() {
                Some(p) => d.pipe = Some((p, 0)),
                None => d.no_splice = true,
            }
            continue;
        }
        if n < buf.len() && !d.src_ended {
            // A short read took what the socket held; more data raises a new edge (its end
            // does too, with RDHUP, which makes `src_ended`).
            return Step::Wait;
        }
    }
}

struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
}

impl Pipe {
    fn new() -> Option<Pipe> {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return None;
        }
        // SAFETY: pipe2 succeeded: both descriptors are open and ours.
        let p = unsafe {
            Pipe {
                r: OwnedFd::from_raw_fd(fds[0]),
                w: OwnedFd::from_raw_fd(fds[1]),
            }
        };
        // A larger pipe moves more per call; the default (64 KiB) where refused.
        // SAFETY: a valid descriptor.
        unsafe {
            libc::fcntl(
                p.w.as_raw_fd(),
                libc::F_SETPIPE_SZ,
                PIPE_SIZE as libc::c_int,
            )
        };
        Some(p)
    }
}

/// One `splice(2)`, non-blocking on both ends.
fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    loop {
        // SAFETY: plain descriptors, null offsets (sockets and pipes have none).
        let n = unsafe {
            libc::splice(
                from,
                std::ptr::null_mut(),
                to,
                std::ptr::null_mut(),
                len,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::relay::{Hold, bind};
    use std::io::{Read, Write};
    use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    fn hold(upstream: SocketAddr) -> (Hold, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&lines);
        let h = Hold::new(
            bind("127.0.0.1:0".parse().unwrap()).unwrap(),
            upstream,
            100,
            Arc::new(move |l: &str| kept.lock().unwrap().push(l.to_owned())),
        )
        .unwrap();
        let runner = h.clone();
        std::thread::spawn(move || runner.run());
        (h, lines)
    }

    #[test]
    fn a_half_close_is_passed_on_each_way_after_the_bytes_before_it() {
        let up = TcpListener::bind("127.0.0.1:0").unwrap();
        let (h, _) = hold(up.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut s, _) = up.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap(); // until the client's half-close
            s.write_all(b"pong:").unwrap();
            s.write_all(&got).unwrap();
        });
        let mut c = TcpStream::connect(h.local_addr().unwrap()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(b"ping").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut answer = Vec::new();
        c.read_to_end(&mut answer).unwrap();
        assert_eq!(answer, b"pong:ping");
        server.join().unwrap();
        // Both ends closed: the hold no longer counts it.
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while h.open() > 0 {
            assert!(std::time::Instant::now() < until, "still open");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_client_whose_upstream_refuses_is_closed_and_the_log_says_why() {
        let down = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = down.local_addr().unwrap();
        drop(down);
        let (h, lines) = hold(addr);
        let mut c = TcpStream::connect(h.local_addr().unwrap()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let r = c.read(&mut [0u8; 16]);
        assert!(
            matches!(r, Ok(0))
                || matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "{r:?}"
        );
        let until = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let l = lines.lock().unwrap().clone();
            if l.iter().any(|l| {
                l.contains(&format!("the upstream {addr} did not accept a connection"))
                    && l.ends_with("closed the client")
            }) {
                break;
            }
            assert!(std::time::Instant::now() < until, "{l:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
        while h.open() > 0 {
            assert!(std::time::Instant::now() < until, "still counted");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
