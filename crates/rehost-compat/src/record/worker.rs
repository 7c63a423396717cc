//! The recording proxy's workers: a few threads, each with an epoll set of non-blocking
//! sockets (edge-triggered), relaying the HTTP/1.1 exchanges of the client connections handed
//! to it, each with its own keep-alive connection upstream (made when the first request
//! arrives, again after the upstream closed it).
//!
//! A direction reads from its source into the worker's page-aligned buffer, frames what came
//! (`frame.rs`), and writes the forwarded bytes on at once; what the destination does not take
//! waits in the direction's own buffer and the direction reads no more until it is written, so
//! the bytes held per connection stay bounded whatever the peers do (a partial head or line
//! under its cap, one read's worth past a message's end). A request is read, relayed and
//! answered before the next one on the connection is looked at (pipelined requests wait in
//! the kernel); the response may begin before the request's body has all been relayed (a
//! `100 Continue`, an early error), and the exchange is complete when both are.
//!
//! A complete exchange is handed to the writer's queue (`writer.rs`); the relay never waits
//! for the file.

use super::Shared;
use super::frame::{Capture, Found, Framer, Phase};
use super::writer::Rec;
use crate::http::{self, Framing, HttpError, Limits};
use rustix::event::{EventfdFlags, Timespec, epoll, eventfd};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The worker's read buffer.
const BUF: usize = 64 * 1024;
/// Events taken per `epoll_wait`.
const EVENTS: usize = 256;
/// The wake-up eventfd's token (connection tokens are `id << 1 | side`, ids far below).
const WAKE: u64 = u64::MAX;
/// How often deadlines (idle and slow connections, the end of a stop) are looked at.
const TICK_MS: i64 = 200;

const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const BAD_GATEWAY: &[u8] =
    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// A worker as the accept loop sees it: where to hand a connection, and how to wake it.
pub(super) struct Worker {
    inbox: Mutex<Vec<(u64, TcpStream)>>,
    wake: OwnedFd,
    epoll: OwnedFd,
}

impl Worker {
    pub(super) fn new() -> io::Result<Worker> {
        let w = Worker {
            inbox: Mutex::new(Vec::new()),
            wake: eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?,
            epoll: epoll::create(epoll::CreateFlags::CLOEXEC)?,
        };
        epoll::add(
            &w.epoll,
            &w.wake,
            epoll::EventData::new_u64(WAKE),
            epoll::EventFlags::IN | epoll::EventFlags::ET,
        )?;
        Ok(w)
    }

    /// Hands a connection to this worker.
    pub(super) fn hand(&self, id: u64, c: TcpStream) {
        lock(&self.inbox).push((id, c));
        self.wake();
    }

    pub(super) fn wake(&self) {
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A socket and what its events said of it. Whether a read or write would block is learnt
/// from the calls; events only say when to try again.
struct Side {
    sock: TcpStream,
    readable: bool,
    writable: bool,
    /// The peer ended or failed (an event said so): a short read does not mean the socket is
    /// drained, since the end raises no further edge; read until `EAGAIN` or the end.
    ended: bool,
    /// A read returned the end.
    eof: bool,
}

impl Side {
    fn new(sock: TcpStream) -> Side {
        Side {
            sock,
            readable: true,
            writable: true,
            ended: false,
            eof: false,
        }
    }
}

/// The connection upstream.
struct Up {
    side: Side,
    /// Still being made (`EINPROGRESS`).
    connecting: bool,
    /// Which of the upstream's addresses.
    addr: usize,
    /// The exchange's response left bytes after its end, or said it closes: not reused.
    spent: bool,
}

/// One direction: what came and is not framed yet, and what is framed and not yet written.
#[derive(Default)]
struct Dir {
    framer: Option<Framer>,
    /// Bytes read and not consumed by the framer (a partial head or line; what follows the
    /// end of a message).
    carry: Vec<u8>,
    /// The framer wants more than `carry` before it can go on.
    starved: bool,
    /// Forwarded bytes waiting for the destination (`out[at..]`).
    out: rehost_tree::aligned::AlignedBuf,
    at: usize,
}

impl Dir {
    fn framer(&mut self) -> &mut Framer {
        self.framer.get_or_insert_with(Framer::new)
    }

    fn holds(&self) -> bool {
        self.at < self.out.len()
    }

    fn phase(&self) -> Phase {
        self.framer.as_ref().map_or(Phase::Head, |f| f.phase)
    }
}

/// The exchange in progress.
struct Ex {
    req_head: Vec<u8>,
    req_body: Capture,
    req_close: bool,
    head_method: bool,
    resp_head: Option<Vec<u8>>,
    resp_body: Capture,
    resp_keeps: bool,
    req_done: bool,
    resp_done: bool,
    /// Response bytes went towards the client: a 502 can no longer be sent.
    relayed: bool,
}

struct Conn {
    client: Side,
    up: Option<Up>,
    /// Client to upstream.
    req: Dir,
    /// Upstream to client.
    resp: Dir,
    ex: Option<Ex>,
    /// Close once `resp.out` is written.
    closing: bool,
    /// Ended at this instant unless something moves before.
    deadline: Instant,
}

/// What became of a connection after it was driven.
enum Fate {
    Open,
    Close,
}

pub(super) struct Run<'a> {
    w: &'a Worker,
    sh: &'a Shared,
    conns: HashMap<u64, Conn>,
    /// Page-aligned: a socket read into a buffer off a page costs the kernel's copy several
    /// times more on CPUs with fast `rep movsb` (issue 27).
    buf: rehost_tree::aligned::AlignedBuf,
    limits: Limits,
    /// When stopping began (the accept loop stopped): idle connections are closed, the
    /// exchanges in progress given until the timeout.
    stop_at: Option<Instant>,
}

impl<'a> Run<'a> {
    pub(super) fn new(w: &'a Worker, sh: &'a Shared) -> Run<'a> {
        Run {
            w,
            sh,
            conns: HashMap::new(),
            buf: rehost_tree::aligned::AlignedBuf::new(BUF),
            limits: sh.opts.limits,
            stop_at: None,
        }
    }

    pub(super) fn run(mut self) {
        let mut events: Vec<epoll::Event> = Vec::with_capacity(EVENTS);
        let tick = Timespec {
            tv_sec: 0,
            tv_nsec: TICK_MS * 1_000_000,
        };
        let mut looked = Instant::now();
        loop {
            events.clear();
            match epoll::wait(
                &self.w.epoll,
                rustix::buffer::spare_capacity(&mut events),
                Some(&tick),
            ) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => {
                    // Cannot happen with a valid epoll descriptor; end what this worker holds.
                    let ids: Vec<u64> = self.conns.keys().copied().collect();
                    for id in ids {
                        self.abort(id);
                    }
                    return;
                }
            }
            for ev in &events {
                let token = ev.data.u64();
                if token == WAKE {
                    let mut b = [0u8; 8];
                    let _ = rustix::io::read(&self.w.wake, &mut b);
                    let new = std::mem::take(&mut *lock(&self.w.inbox));
                    for (id, c) in new {
                        self.add(id, c);
                    }
                    continue;
                }
                self.event(token >> 1, token & 1 == 1, ev.flags);
            }
            if self.stop_at.is_none() && self.sh.stopping.load(Ordering::SeqCst) {
                self.stop_at = Some(Instant::now());
                let ids: Vec<u64> = self.conns.keys().copied().collect();
                for id in ids {
                    self.drive(id);
                }
            }
            let now = Instant::now();
            if now.duration_since(looked).as_millis() >= TICK_MS as u128 {
                looked = now;
                self.expire(now);
            }
            if self.stop_at.is_some() && self.conns.is_empty() && lock(&self.w.inbox).is_empty() {
                return;
            }
        }
    }

    fn add(&mut self, id: u64, sock: TcpStream) {
        if self.stop_at.is_some()
            || sock.set_nonblocking(true).is_err()
            || epoll::add(
                &self.w.epoll,
                sock.as_fd(),
                epoll::EventData::new_u64(id << 1),
                watch(),
            )
            .is_err()
        {
            self.sh.open.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let _ = sock.set_nodelay(true);
        self.conns.insert(
            id,
            Conn {
                client: Side::new(sock),
                up: None,
                req: Dir::default(),
                resp: Dir::default(),
                ex: None,
                closing: false,
                deadline: Instant::now() + self.sh.opts.timeout,
            },
        );
        self.drive(id);
    }

    fn event(&mut self, id: u64, from_up: bool, flags: epoll::EventFlags) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let side = if from_up {
            match c.up.as_mut() {
                Some(u) => &mut u.side,
                None => return,
            }
        } else {
            &mut c.client
        };
        use epoll::EventFlags as F;
        if flags.intersects(F::IN | F::RDHUP | F::HUP | F::ERR) {
            side.readable = true;
        }
        if flags.intersects(F::OUT | F::HUP | F::ERR) {
            side.writable = true;
        }
        if flags.intersects(F::RDHUP | F::HUP | F::ERR) {
            side.ended = true;
        }
        self.drive(id);
    }

    /// Moves a connection on as far as its sockets allow; closes it when it is done.
    fn drive(&mut self, id: u64) {
        let Some(mut c) = self.conns.remove(&id) else {
            return;
        };
        let fate = self.step(id, &mut c);
        match fate {
            Fate::Open => {
                self.conns.insert(id, c);
            }
            Fate::Close => self.finish(c),
        }
    }

    /// [`Run::moves`], and the connection's deadline moved on when bytes moved (one clock
    /// reading per wake-up, not per byte moved).
    fn step(&mut self, id: u64, c: &mut Conn) -> Fate {
        let mut moved = false;
        let fate = self.moves(id, c, &mut moved);
        if moved {
            c.deadline = Instant::now() + self.sh.opts.timeout;
        }
        fate
    }

    fn moves(&mut self, id: u64, c: &mut Conn, progressed: &mut bool) -> Fate {
        let stopping = self.stop_at.is_some();
        loop {
            let mut moved = false;
            // An upstream connection being made: made, or failed (then the next address).
            if let Some(u) = c.up.as_mut()
                && u.connecting
            {
                if !u.side.writable {
                    // Nothing to do until it says.
                } else {
                    match u.side.sock.take_error() {
                        Ok(None) if peer_connected(&u.side.sock) => {
                            u.connecting = false;
                            moved = true;
                        }
                        Ok(None) => u.side.writable = false,
                        Ok(Some(_)) | Err(_) => {
                            // The next address gets what waited for this one (nothing of it
                            // was written: a connection being made is not written to).
                            let next = u.addr + 1;
                            let waiting = std::mem::take(&mut c.req.out);
                            self.drop_up(c);
                            if next < self.sh.upstream.len() && self.connect(id, c, next) {
                                c.req.out = waiting;
                                c.req.at = 0;
                                continue;
                            }
                            self.fail(c);
                            continue;
                        }
                    }
                }
            }
            // Write what waits, each way.
            if let Some(u) = c.up.as_mut()
                && !u.connecting
                && c.req.holds()
                && u.side.writable
            {
                match flush(&mut c.req, &mut u.side) {
                    Ok(true) => moved = true,
                    Ok(false) => {}
                    Err(()) => {
                        self.drop_up(c);
                        self.fail(c);
                        continue;
                    }
                }
            }
            if c.resp.holds() && c.client.writable {
                match flush(&mut c.resp, &mut c.client) {
                    Ok(true) => moved = true,
                    Ok(false) => {}
                    Err(()) => {
                        if c.ex.is_some() {
                            self.sh.failed.fetch_add(1, Ordering::Relaxed);
                        }
                        return Fate::Close;
                    }
                }
            }
            if c.closing {
                if !c.resp.holds() {
                    return Fate::Close;
                }
                if !moved {
                    return Fate::Open;
                }
                *progressed = true;
                continue;
            }
            // The request direction: frame what waits and what the client sent.
            if c.req.phase() != Phase::Done && !c.req.holds() {
                if !c.req.carry.is_empty() && !c.req.starved {
                    let carry = std::mem::take(&mut c.req.carry);
                    self.request_bytes(id, c, &carry);
                    continue;
                }
                if c.client.readable && !c.client.eof {
                    match read(&mut c.client, &mut self.buf) {
                        Ok(0) => {
                            moved = true;
                            if c.ex.as_ref().is_some_and(|x| !x.req_done) {
                                // The client left in the middle of its request.
                                self.fail(c);
                            } else if c.ex.is_none() {
                                c.closing = true;
                            }
                        }
                        Ok(n) => {
                            moved = true;
                            let got = std::mem::take(&mut self.buf);
                            if c.req.carry.is_empty() {
                                self.request_bytes(id, c, &got[..n]);
                            } else {
                                let mut carry = std::mem::take(&mut c.req.carry);
                                carry.extend_from_slice(&got[..n]);
                                self.request_bytes(id, c, &carry);
                            }
                            self.buf = got;
                        }
                        Err(None) => {}
                        Err(Some(_)) => {
                            if c.ex.is_some() {
                                self.sh.failed.fetch_add(1, Ordering::Relaxed);
                            }
                            return Fate::Close;
                        }
                    }
                }
            }
            // The response direction.
            if let Some(u) = c.up.as_mut()
                && !u.connecting
                && u.side.readable
                && !u.side.eof
                && !c.resp.holds()
                && c.resp.phase() != Phase::Done
            {
                match read(&mut u.side, &mut self.buf) {
                    Ok(0) => {
                        moved = true;
                        u.side.eof = true;
                        let ended_body = c.resp.framer().closed();
                        match c.ex.as_mut() {
                            Some(x) if ended_body => {
                                x.resp_done = true;
                                x.resp_keeps = false;
                            }
                            Some(_) => {
                                self.drop_up(c);
                                self.fail(c);
                                continue;
                            }
                            // Closed while idle: a new one for the next request.
                            None => self.drop_up(c),
                        }
                    }
                    Ok(n) => {
                        moved = true;
                        if c.ex.is_none() {
                            // Bytes nobody asked for: this connection is not reused.
                            self.drop_up(c);
                            continue;
                        }
                        let got = std::mem::take(&mut self.buf);
                        if c.resp.carry.is_empty() {
                            self.response_bytes(c, &got[..n]);
                        } else {
                            let mut carry = std::mem::take(&mut c.resp.carry);
                            carry.extend_from_slice(&got[..n]);
                            self.response_bytes(c, &carry);
                        }
                        self.buf = got;
                    }
                    Err(None) => {}
                    Err(Some(_)) => {
                        moved = true;
                        self.drop_up(c);
                        if c.ex.is_some() {
                            self.fail(c);
                        }
                    }
                }
            }
            // The exchange complete both ways: recorded, and the connection goes on or ends.
            if c.ex.as_ref().is_some_and(|x| x.req_done && x.resp_done) {
                moved = true;
                self.complete(c, stopping);
            } else if stopping && c.ex.is_none() && !c.resp.holds() {
                return Fate::Close;
            }
            if !moved {
                return Fate::Open;
            }
            *progressed = true;
        }
    }

    /// Frames bytes from the client: a request head starts the exchange (and the upstream
    /// connection when there is none); its body is forwarded as it comes.
    fn request_bytes(&mut self, id: u64, c: &mut Conn, mut input: &[u8]) {
        let limits = self.limits;
        c.req.starved = false;
        while c.req.phase() != Phase::Done && !c.closing {
            let empty = Capture::new(0);
            let mut scratch = empty;
            let (framer, cap) = match c.ex.as_mut() {
                Some(x) => (
                    c.req.framer.get_or_insert_with(Framer::new),
                    &mut x.req_body,
                ),
                None => (c.req.framer.get_or_insert_with(Framer::new), &mut scratch),
            };
            let r = framer.feed(input, &mut c.req.out, cap, &limits);
            match r {
                Err(_) => return self.refuse(c),
                Ok((n, found)) => {
                    input = &input[n..];
                    match found {
                        Found::More if n == 0 || input.is_empty() => {
                            c.req.starved = !input.is_empty();
                            break;
                        }
                        Found::More => {}
                        Found::Head(head) => {
                            if !self.start(id, c, head) {
                                return;
                            }
                        }
                        Found::End => {
                            if let Some(x) = c.ex.as_mut() {
                                x.req_done = true;
                            }
                        }
                    }
                }
            }
        }
        c.req.carry.extend_from_slice(input);
    }

    /// A request head: parsed, forwarded, the exchange begun. `false` when it was refused.
    fn start(&mut self, id: u64, c: &mut Conn, head: Vec<u8>) -> bool {
        let mut hs = [httparse::EMPTY_HEADER; http::MAX_HEADERS];
        let mut req = httparse::Request::new(&mut hs);
        let framing = match req.parse(&head) {
            Ok(httparse::Status::Complete(_)) => http::framing(req.headers, true),
            _ => Err(HttpError::BadHead("a request".into())),
        };
        let Ok(framing) = framing else {
            self.refuse(c);
            return false;
        };
        let head_method = req.method.is_some_and(|m| m.eq_ignore_ascii_case("HEAD"));
        let req_close = http::connection_close(req.headers, 1);
        // A connection the server ended, or one past its use, is not written to again (before
        // the head is queued: dropping a connection drops what waited for it).
        if c.up.as_ref().is_some_and(|u| u.side.eof || u.spent) {
            self.drop_up(c);
        }
        c.req.out.extend_from_slice(&head);
        c.ex = Some(Ex {
            req_head: head,
            req_body: Capture::new(self.limits.body),
            req_close,
            head_method,
            resp_head: None,
            resp_body: Capture::new(self.limits.body),
            resp_keeps: true,
            req_done: framing == Framing::None || framing == Framing::Length(0),
            resp_done: false,
            relayed: false,
        });
        c.req.framer().body(framing);
        c.resp.framer().next_message();
        if c.up.is_none() && !self.connect(id, c, 0) {
            self.fail(c);
            return false;
        }
        true
    }

    /// Frames bytes from the upstream: interim heads are forwarded and not recorded, the final
    /// head and its body are forwarded and kept.
    fn response_bytes(&mut self, c: &mut Conn, mut input: &[u8]) {
        let limits = self.limits;
        c.resp.starved = false;
        while c.resp.phase() != Phase::Done {
            let Some(x) = c.ex.as_mut() else { break };
            let framer = c.resp.framer.get_or_insert_with(Framer::new);
            let r = framer.feed(input, &mut c.resp.out, &mut x.resp_body, &limits);
            match r {
                Err(_) => {
                    self.drop_up(c);
                    return self.fail(c);
                }
                Ok((n, found)) => {
                    input = &input[n..];
                    match found {
                        Found::More if n == 0 || input.is_empty() => break,
                        Found::More => {}
                        Found::Head(head) => {
                            if !self.answer(c, head) {
                                return;
                            }
                        }
                        Found::End => {
                            if let Some(x) = c.ex.as_mut() {
                                x.resp_done = true;
                            }
                        }
                    }
                }
            }
        }
        if !input.is_empty() {
            if c.resp.phase() == Phase::Done {
                // Bytes after the response: the upstream connection is not reused.
                if let Some(u) = c.up.as_mut() {
                    u.spent = true;
                }
            } else {
                c.resp.carry.extend_from_slice(input);
            }
        }
    }

    /// A response head: an interim one forwarded, the final one forwarded and its body
    /// framed. `false` when the exchange failed.
    fn answer(&mut self, c: &mut Conn, head: Vec<u8>) -> bool {
        let Some(head_method) = c.ex.as_ref().map(|x| x.head_method) else {
            return false;
        };
        let mut hs = [httparse::EMPTY_HEADER; http::MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut hs);
        let Ok(httparse::Status::Complete(_)) = resp.parse(&head) else {
            self.drop_up(c);
            self.fail(c);
            return false;
        };
        let status = resp.code.unwrap_or(0);
        let interim = (100..200).contains(&status);
        let framing = if interim || head_method || status == 204 || status == 304 {
            Ok(Framing::None)
        } else {
            http::framing(resp.headers, false)
        };
        let keeps = !http::connection_close(resp.headers, resp.version.unwrap_or(1));
        let Ok(framing) = framing else {
            self.drop_up(c);
            self.fail(c);
            return false;
        };
        c.resp.out.extend_from_slice(&head);
        let Some(x) = c.ex.as_mut() else { return false };
        x.relayed = true;
        if status == 101 {
            // Another protocol follows (WebSocket): not proxied; the connection is closed.
            self.drop_up(c);
            self.fail(c);
            return false;
        }
        if interim {
            c.resp.framer().next_message();
            return true;
        }
        x.resp_keeps = keeps && framing != Framing::UntilClose;
        x.resp_head = Some(head);
        c.resp.framer().body(framing);
        if c.resp.phase() == Phase::Done {
            x.resp_done = true;
        }
        true
    }

    /// The exchange is complete both ways: recorded; the connections go on or end.
    fn complete(&mut self, c: &mut Conn, stopping: bool) {
        let Some(x) = c.ex.take() else { return };
        let truncated = x.req_body.truncated || x.resp_body.truncated;
        self.sh.queue.push(Rec {
            req_head: x.req_head,
            req_body: x.req_body.buf,
            resp_head: x.resp_head.unwrap_or_default(),
            resp_body: x.resp_body.buf,
            truncated,
        });
        if !x.resp_keeps || !c.resp.carry.is_empty() || c.up.as_ref().is_some_and(|u| u.spent) {
            self.drop_up(c);
        }
        c.resp.carry.clear();
        c.req.framer().next_message();
        c.resp.framer().next_message();
        if x.req_close || !x.resp_keeps || stopping || c.client.eof {
            c.closing = true;
        }
    }

    /// A request that cannot be relayed: answered 400, the connection closed.
    fn refuse(&mut self, c: &mut Conn) {
        self.sh.failed.fetch_add(1, Ordering::Relaxed);
        if !c.ex.take().is_some_and(|x| x.relayed) {
            c.resp.out.clear();
            c.resp.at = 0;
            c.resp.out.extend_from_slice(BAD_REQUEST);
        }
        c.closing = true;
        self.drop_up(c);
    }

    /// The exchange in progress broke off: a 502 to the client when nothing of the response
    /// reached it yet; the connection closed.
    fn fail(&mut self, c: &mut Conn) {
        if let Some(x) = c.ex.take() {
            self.sh.failed.fetch_add(1, Ordering::Relaxed);
            if !x.relayed {
                c.resp.out.clear();
                c.resp.at = 0;
                c.resp.out.extend_from_slice(BAD_GATEWAY);
            }
        }
        c.closing = true;
        self.drop_up(c);
    }

    /// Begins a connection to the upstream's address `i`. `false` when it failed at once.
    fn connect(&mut self, id: u64, c: &mut Conn, i: usize) -> bool {
        for (n, a) in self.sh.upstream.iter().enumerate().skip(i) {
            let Ok((sock, connecting)) = connect(*a) else {
                continue;
            };
            if epoll::add(
                &self.w.epoll,
                sock.as_fd(),
                epoll::EventData::new_u64(id << 1 | 1),
                watch(),
            )
            .is_err()
            {
                continue;
            }
            let mut side = Side::new(sock);
            side.readable = !connecting;
            side.writable = !connecting;
            c.up = Some(Up {
                side,
                connecting,
                addr: n,
                spent: false,
            });
            c.req.at = c.req.at.min(c.req.out.len());
            return true;
        }
        false
    }

    fn drop_up(&mut self, c: &mut Conn) {
        if let Some(u) = c.up.take() {
            let _ = epoll::delete(&self.w.epoll, u.side.sock.as_fd());
            let _ = u.side.sock.shutdown(Shutdown::Both);
        }
        // What waited for the old connection is not for a new one.
        c.req.out.clear();
        c.req.at = 0;
    }

    fn finish(&mut self, mut c: Conn) {
        self.drop_up(&mut c);
        let _ = epoll::delete(&self.w.epoll, c.client.sock.as_fd());
        let _ = c.client.sock.shutdown(Shutdown::Both);
        self.sh.open.fetch_sub(1, Ordering::SeqCst);
    }

    /// Ends a connection at once (an exchange in progress counts as not completed).
    fn abort(&mut self, id: u64) {
        if let Some(c) = self.conns.remove(&id) {
            if c.ex.is_some() {
                self.sh.failed.fetch_add(1, Ordering::Relaxed);
            }
            self.finish(c);
        }
    }

    /// Ends the connections past their deadline, and at the end of a stop's grace all.
    fn expire(&mut self, now: Instant) {
        let all = self
            .stop_at
            .is_some_and(|s| now.duration_since(s) >= self.sh.opts.timeout);
        let late: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| all || c.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            let Some(mut c) = self.conns.remove(&id) else {
                continue;
            };
            if c.ex.as_ref().is_some_and(|x| !x.relayed) && !all {
                // Answer 502, and give the client a moment's worth of writing.
                self.fail(&mut c);
                if let Fate::Open = self.step(id, &mut c) {
                    // The 502 could not be written at once: it is not waited for.
                }
                self.finish(c);
                continue;
            }
            if c.ex.is_some() {
                self.sh.failed.fetch_add(1, Ordering::Relaxed);
            }
            self.finish(c);
        }
    }
}

fn watch() -> epoll::EventFlags {
    epoll::EventFlags::IN
        | epoll::EventFlags::OUT
        | epoll::EventFlags::RDHUP
        | epoll::EventFlags::ET
}

/// Whether a socket whose connect was in progress is connected (a refused connection can
/// show as writable before its error is set).
fn peer_connected(s: &TcpStream) -> bool {
    s.peer_addr().is_ok()
}

/// One read. `Err(None)`: it would block (the side is no longer readable); `Err(Some)`: failed.
fn read(side: &mut Side, buf: &mut [u8]) -> Result<usize, Option<io::Error>> {
    loop {
        match (&side.sock).read(buf) {
            Ok(0) => {
                side.eof = true;
                return Ok(0);
            }
            Ok(n) => {
                // A short read took what the socket held; more raises a new edge (its end
                // too, with RDHUP, which sets `ended`).
                if n < buf.len() && !side.ended {
                    side.readable = false;
                }
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                side.readable = false;
                return Err(None);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Some(e)),
        }
    }
}

/// Writes what `d` holds. `Ok(true)` when bytes went, `Err` when the socket failed.
fn flush(d: &mut Dir, side: &mut Side) -> Result<bool, ()> {
    let mut moved = false;
    while d.at < d.out.len() {
        match (&side.sock).write(&d.out[d.at..]) {
            Ok(0) => return Err(()),
            Ok(n) => {
                d.at += n;
                moved = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                side.writable = false;
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
    if d.at >= d.out.len() {
        d.out.clear();
        d.at = 0;
    }
    Ok(moved)
}

/// A non-blocking connection to `to`: `(socket, still connecting)`.
fn connect(to: SocketAddr) -> io::Result<(TcpStream, bool)> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let family = if to.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = rustix::net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    let connecting = match rustix::net::connect(&fd, &to) {
        Ok(()) => false,
        Err(rustix::io::Errno::INPROGRESS) => true,
        Err(e) => return Err(e.into()),
    };
    let s = TcpStream::from(fd);
    let _ = s.set_nodelay(true);
    Ok((s, connecting))
}
