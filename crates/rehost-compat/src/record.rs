//! Record: an HTTP/1.1 reverse proxy in front of the old service that appends every exchange
//! to a traffic file. One thread per client connection, each with its own keep-alive
//! connection upstream. Bodies are relayed as they arrive, their bytes unchanged (chunk
//! framing, trailers and compressed content pass through as sent); what is recorded is the
//! body after the chunked framing, up to a cap: beyond it the exchange is still proxied whole
//! but recorded as `truncated` (replay skips it, saying so). Heads are capped
//! ([`Limits::head`]); their line endings are forwarded as CRLF.
//!
//! Each exchange is written with one `write` to the file (opened for appending), so an
//! exchange is in the file once its response has been relayed; nothing waits in a buffer when
//! the proxy is stopped.

use crate::http::{self, Framing, Header, HttpError, Limits, Request, Response};
use crate::traffic::{self, Exchange};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How to record.
#[derive(Clone, Debug)]
pub struct RecordOptions {
    /// `limits.head` caps heads and trailers; `limits.body` is the recording cap (bodies are
    /// relayed whole whatever their size).
    pub limits: Limits,
    /// Connect, read and write timeout upstream and for a request in progress.
    pub timeout: Duration,
}

impl Default for RecordOptions {
    fn default() -> Self {
        RecordOptions {
            limits: Limits::default(),
            timeout: Duration::from_secs(60),
        }
    }
}

/// What a recording did.
#[derive(Debug, Default, serde::Serialize)]
pub struct RecordStats {
    pub connections: u64,
    pub exchanges: u64,
    pub truncated: u64,
    /// Exchanges that could not be completed (a side closed or sent something malformed).
    pub failed: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    exchanges: AtomicU64,
    truncated: AtomicU64,
    failed: AtomicU64,
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

/// The body bytes kept for the record, up to the cap.
struct Capture {
    buf: Vec<u8>,
    cap: u64,
    truncated: bool,
}

impl Capture {
    fn new(cap: u64) -> Capture {
        Capture {
            buf: Vec::new(),
            cap,
            truncated: false,
        }
    }

    fn push(&mut self, d: &[u8]) {
        if self.truncated {
            return;
        }
        if self.buf.len() as u64 + d.len() as u64 > self.cap {
            self.truncated = true;
            self.buf = Vec::new();
        } else {
            self.buf.extend_from_slice(d);
        }
    }
}

/// Copies `n` bytes from `r` to `w`, keeping them in `cap`.
fn copy_n(
    r: &mut impl BufRead,
    w: &mut impl Write,
    mut n: u64,
    cap: &mut Capture,
) -> io::Result<()> {
    while n > 0 {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let take = (buf.len() as u64).min(n) as usize;
        w.write_all(&buf[..take])?;
        cap.push(&buf[..take]);
        r.consume(take);
        n -= take as u64;
    }
    Ok(())
}

/// Relays a body in its framing, bytes unchanged.
fn relay_body(
    r: &mut impl BufRead,
    w: &mut impl Write,
    framing: Framing,
    cap: &mut Capture,
    limits: &Limits,
) -> Result<(), HttpError> {
    match framing {
        Framing::None => {}
        Framing::Length(n) => copy_n(r, w, n, cap)?,
        Framing::UntilClose => loop {
            let buf = r.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let n = buf.len();
            w.write_all(buf)?;
            cap.push(buf);
            r.consume(n);
        },
        Framing::Chunked => {
            loop {
                let line = http::read_line(r, 1024)
                    .map_err(|_| HttpError::BadChunk("a chunk size line over 1024 bytes".into()))?
                    .ok_or(HttpError::Closed)?;
                w.write_all(&line)?;
                w.write_all(b"\r\n")?;
                let size_part = line.split(|b| *b == b';').next().unwrap_or(&[]);
                let t = String::from_utf8_lossy(size_part);
                let t = t.trim_matches(|c| c == ' ' || c == '\t');
                if t.is_empty() || t.len() > 16 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(HttpError::BadChunk(format!(
                        "chunk size {:?} is not a hexadecimal number",
                        crate::clip(t, 40)
                    )));
                }
                let size = u64::from_str_radix(t, 16)
                    .map_err(|_| HttpError::BadChunk("chunk size out of range".into()))?;
                if size == 0 {
                    break;
                }
                copy_n(r, w, size, cap)?;
                match http::read_line(r, 2) {
                    Ok(Some(l)) if l.is_empty() => w.write_all(b"\r\n")?,
                    Ok(None) => return Err(HttpError::Closed),
                    _ => {
                        return Err(HttpError::BadChunk(
                            "a chunk's data is not followed by CRLF".into(),
                        ));
                    }
                }
            }
            let mut seen = 0usize;
            loop {
                let line = http::read_line(r, limits.head.saturating_sub(seen).max(1))?
                    .ok_or(HttpError::Closed)?;
                seen += line.len() + 2;
                w.write_all(&line)?;
                w.write_all(b"\r\n")?;
                if line.is_empty() {
                    break;
                }
            }
        }
    }
    Ok(())
}

fn parse_request_head(head: &[u8]) -> Result<(String, String, Vec<Header>), HttpError> {
    let mut hs = [httparse::EMPTY_HEADER; http::MAX_HEADERS];
    let mut req = httparse::Request::new(&mut hs);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => Ok((
            req.method.unwrap_or("").to_string(),
            req.path.unwrap_or("").to_string(),
            http::fields(req.headers),
        )),
        Ok(httparse::Status::Partial) => Err(HttpError::BadHead("incomplete request head".into())),
        Err(e) => Err(HttpError::BadHead(format!("{e} in a request"))),
    }
}

fn parse_response_head(head: &[u8]) -> Result<(u16, u8, String, Vec<Header>), HttpError> {
    let mut hs = [httparse::EMPTY_HEADER; http::MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut hs);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(_)) => Ok((
            resp.code.unwrap_or(0),
            resp.version.unwrap_or(1),
            resp.reason.unwrap_or("").to_string(),
            http::fields(resp.headers),
        )),
        Ok(httparse::Status::Partial) => Err(HttpError::BadHead("incomplete response head".into())),
        Err(e) => Err(HttpError::BadHead(format!(
            "{e} in the upstream's response"
        ))),
    }
}

type Upstream = (BufReader<TcpStream>, BufWriter<TcpStream>, Instant);

fn connect(addrs: &[SocketAddr], timeout: Duration) -> io::Result<Upstream> {
    let mut last = None;
    for a in addrs {
        match TcpStream::connect_timeout(a, timeout) {
            Ok(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                s.set_nodelay(true)?;
                let w = s.try_clone()?;
                return Ok((
                    BufReader::with_capacity(64 * 1024, s),
                    BufWriter::new(w),
                    Instant::now(),
                ));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no address")))
}

/// Whether a kept-alive upstream connection was closed by the server meanwhile. Asked only of
/// a connection idle for more than a second (servers close idle ones after seconds; one that
/// closes after a number of requests says `Connection: close`, which is honoured).
fn closed_meanwhile(up: &Upstream) -> bool {
    if !up.0.buffer().is_empty() {
        return true; // unexpected bytes: do not reuse
    }
    if up.2.elapsed() < Duration::from_secs(1) {
        return false;
    }
    let s = up.0.get_ref();
    if s.set_nonblocking(true).is_err() {
        return true;
    }
    let mut b = [0u8; 1];
    let r = s.peek(&mut b);
    let _ = s.set_nonblocking(false);
    !matches!(r, Err(ref e) if e.kind() == io::ErrorKind::WouldBlock)
}

struct Shared<'a> {
    upstream: Vec<SocketAddr>,
    out: Mutex<std::fs::File>,
    opts: RecordOptions,
    counters: Counters,
    cancel: &'a AtomicBool,
}

/// The client's stream, read under a short socket timeout so that an idle connection notices a
/// stop: a read that times out is retried until the recording is stopped or the request's
/// timeout has passed without a byte.
struct Patient<'a> {
    s: TcpStream,
    cancel: &'a AtomicBool,
    timeout: Duration,
}

impl Read for Patient<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut since: Option<Instant> = None;
        loop {
            match self.s.read(buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    let start = *since.get_or_insert_with(Instant::now);
                    if self.cancel.load(Ordering::SeqCst) || start.elapsed() >= self.timeout {
                        return Err(e);
                    }
                }
                r => return r,
            }
        }
    }
}

fn bad_gateway(w: &mut impl Write) {
    let _ =
        w.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = w.flush();
}

fn client(conn: TcpStream, sh: &Shared<'_>) {
    let Ok(wc) = conn.try_clone() else { return };
    let _ = conn.set_nodelay(true);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = wc.set_write_timeout(Some(sh.opts.timeout));
    let mut cr = BufReader::with_capacity(
        64 * 1024,
        Patient {
            s: conn,
            cancel: sh.cancel,
            timeout: sh.opts.timeout,
        },
    );
    let mut cw = BufWriter::with_capacity(64 * 1024, wc);
    let mut up: Option<Upstream> = None;
    let limits = sh.opts.limits;
    loop {
        if sh.cancel.load(Ordering::SeqCst) && cr.buffer().is_empty() {
            return;
        }
        let head = match http::read_head(&mut cr, limits.head) {
            Ok(Some(h)) => h,
            Ok(None) => return,
            Err(HttpError::HeadTooLong(_)) | Err(HttpError::BadHead(_)) => {
                sh.counters.failed.fetch_add(1, Ordering::Relaxed);
                let _ = cw.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                let _ = cw.flush();
                return;
            }
            // Closed, timed out while idle, or stopped: nothing to record.
            Err(_) => return,
        };
        match exchange(&head, &mut cr, &mut cw, &mut up, sh) {
            Ok(keep) if keep => {}
            Ok(_) => return,
            Err(sent) => {
                sh.counters.failed.fetch_add(1, Ordering::Relaxed);
                if !sent {
                    bad_gateway(&mut cw);
                }
                return;
            }
        }
    }
}

/// One exchange: the request relayed upstream, the response relayed back, the record
/// written. `Ok(keep_alive)`, or `Err(whether response bytes already reached the client)`.
fn exchange(
    head: &[u8],
    cr: &mut BufReader<Patient<'_>>,
    cw: &mut BufWriter<TcpStream>,
    up: &mut Option<Upstream>,
    sh: &Shared<'_>,
) -> Result<bool, bool> {
    let limits = sh.opts.limits;
    let (method, target, req_headers) = parse_request_head(head).map_err(|_| false)?;
    let req_framing = http::framing(&req_headers, true).map_err(|_| false)?;
    if up.as_ref().is_some_and(closed_meanwhile) {
        *up = None;
    }
    if up.is_none() {
        *up = Some(connect(&sh.upstream, sh.opts.timeout).map_err(|_| false)?);
    }
    let (ur, uw, used) = up.as_mut().expect("connected above");
    *used = Instant::now();
    let mut req_cap = Capture::new(limits.body);
    let sent = uw
        .write_all(head)
        .map_err(HttpError::from)
        .and_then(|()| relay_body(cr, uw, req_framing, &mut req_cap, &limits))
        .and_then(|()| uw.flush().map_err(HttpError::from));
    if sent.is_err() {
        *up = None;
        return Err(false);
    }
    // The response: interim 1xx ones are relayed and not recorded.
    let mut relayed = false;
    let (status, minor, reason, headers, framing, resp_cap) = loop {
        let rhead = match http::read_head(ur, limits.head) {
            Ok(Some(h)) => h,
            _ => {
                *up = None;
                return Err(relayed);
            }
        };
        let Ok((status, minor, reason, headers)) = parse_response_head(&rhead) else {
            *up = None;
            return Err(relayed);
        };
        if cw.write_all(&rhead).is_err() {
            *up = None;
            return Err(true);
        }
        relayed = true;
        if status == 101 {
            // Another protocol follows (WebSocket): not proxied; the connection is closed.
            let _ = cw.flush();
            *up = None;
            return Err(true);
        }
        if (100..200).contains(&status) {
            if cw.flush().is_err() {
                return Err(true);
            }
            continue;
        }
        let no_body = method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304;
        let framing = if no_body {
            Framing::None
        } else {
            match http::framing(&headers, false) {
                Ok(f) => f,
                Err(_) => {
                    *up = None;
                    return Err(true);
                }
            }
        };
        let mut cap = Capture::new(limits.body);
        if relay_body(ur, cw, framing, &mut cap, &limits).is_err() || cw.flush().is_err() {
            *up = None;
            return Err(true);
        }
        break (status, minor, reason, headers, framing, cap);
    };
    let truncated = req_cap.truncated || resp_cap.truncated;
    let req = Request {
        method,
        target,
        headers: req_headers.clone(),
        body: req_cap.buf,
    };
    let resp = Response {
        status,
        reason,
        headers: headers.clone(),
        body: resp_cap.buf,
        keep_alive: false,
    };
    let mut line = Vec::new();
    let _ = traffic::write_exchange(&mut line, &Exchange::new(&req, Some(&resp), truncated));
    {
        let mut f = sh.out.lock().unwrap_or_else(|p| p.into_inner());
        if f.write_all(&line).is_err() {
            sh.counters.failed.fetch_add(1, Ordering::Relaxed);
        } else {
            sh.counters.exchanges.fetch_add(1, Ordering::Relaxed);
            if truncated {
                sh.counters.truncated.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let upstream_keeps =
        framing != Framing::UntilClose && status != 101 && !http::connection_close(&headers, minor);
    if !upstream_keeps {
        *up = None;
    }
    let client_keeps = !http::connection_close(&req_headers, 1) && upstream_keeps;
    Ok(client_keeps && !sh.cancel.load(Ordering::SeqCst))
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

/// Proxies and records until `cancel` is set; then stops accepting, lets each connection
/// finish the exchange in progress (up to the timeout), and returns what was recorded.
pub fn record(
    listener: TcpListener,
    upstream: Vec<SocketAddr>,
    out: std::fs::File,
    opts: RecordOptions,
    cancel: &AtomicBool,
) -> io::Result<RecordStats> {
    let here = listener.local_addr()?;
    let sh = Shared {
        upstream,
        out: Mutex::new(out),
        opts,
        counters: Counters::default(),
        cancel,
    };
    let done = AtomicBool::new(false);
    let result = std::thread::scope(|s| {
        // Wakes the blocking accept once cancelled.
        s.spawn(|| {
            while !cancel.load(Ordering::SeqCst) && !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = TcpStream::connect_timeout(&here, Duration::from_secs(1));
        });
        let r = loop {
            match listener.accept() {
                Ok(_) if cancel.load(Ordering::SeqCst) => break Ok(()),
                Ok((conn, _)) => {
                    sh.counters.connections.fetch_add(1, Ordering::Relaxed);
                    let sh = &sh;
                    s.spawn(move || client(conn, sh));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if cancel.load(Ordering::SeqCst) => break Err(e),
                Err(_) => {
                    // Out of descriptors and the like: wait, do not end the recording.
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        };
        done.store(true, Ordering::SeqCst);
        drop(listener);
        r
    });
    let f = sh.out.lock().unwrap_or_else(|p| p.into_inner());
    f.sync_all()?;
    let c = &sh.counters;
    let _ = result;
    Ok(RecordStats {
        connections: c.connections.load(Ordering::Relaxed),
        exchanges: c.exchanges.load(Ordering::Relaxed),
        truncated: c.truncated.load(Ordering::Relaxed),
        failed: c.failed.load(Ordering::Relaxed),
    })
}
