//! The recording proxy against a scripted upstream on loopback: what reaches each side, what is
//! recorded, and what is counted, for the framings and the failures HTTP/1.1 allows.

use super::*;
use crate::http::{self, Limits, read_response};
use crate::traffic::Reader;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::time::Instant;

/// An upstream answering each request by its path with the bytes `answer` gives (a thread
/// per connection). `/continue` sends `100 Continue` before reading the body; `/close` closes
/// after its answer.
struct Upstream {
    addr: SocketAddr,
    seen: Seen,
}

/// The requests an upstream saw: path and body.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

use std::sync::Mutex;

fn upstream(answer: fn(&str) -> Vec<u8>) -> Upstream {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&seen);
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { return };
            let kept = Arc::clone(&kept);
            std::thread::spawn(move || {
                let mut w = c.try_clone().unwrap();
                let mut r = BufReader::new(c);
                loop {
                    let Ok(Some(head)) = http::read_head(&mut r, 1 << 16) else {
                        return;
                    };
                    let mut hs = [httparse::EMPTY_HEADER; 64];
                    let mut req = httparse::Request::new(&mut hs);
                    let _ = req.parse(&head);
                    let path = req.path.unwrap_or("").to_string();
                    let headers = http::fields(req.headers);
                    if path == "/continue" {
                        w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
                    }
                    let body = match http::framing(&headers, true).unwrap() {
                        http::Framing::Length(n) => {
                            let mut b = vec![0; n as usize];
                            r.read_exact(&mut b).unwrap();
                            b
                        }
                        http::Framing::Chunked => {
                            let mut body = Vec::new();
                            loop {
                                let mut line = String::new();
                                r.read_line(&mut line).unwrap();
                                let n = usize::from_str_radix(line.trim(), 16).unwrap();
                                if n == 0 {
                                    break;
                                }
                                let mut b = vec![0; n + 2];
                                r.read_exact(&mut b).unwrap();
                                body.extend_from_slice(&b[..n]);
                            }
                            loop {
                                let mut line = String::new();
                                r.read_line(&mut line).unwrap();
                                if line == "\r\n" {
                                    break;
                                }
                            }
                            body
                        }
                        _ => Vec::new(),
                    };
                    kept.lock().unwrap().push((path.clone(), body));
                    if w.write_all(&answer(&path)).is_err() || path == "/close" || path == "/cut" {
                        return;
                    }
                }
            });
        }
    });
    Upstream { addr, seen }
}

/// A recording running in a thread; `stop` ends it and returns its counts.
struct Running {
    addr: SocketAddr,
    cancel: Arc<AtomicBool>,
    done: std::thread::JoinHandle<io::Result<RecordStats>>,
}

fn start(up: &Upstream, out: std::fs::File, opts: RecordOptions) -> Running {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let c = Arc::clone(&cancel);
    let upstream = vec![up.addr];
    let done = std::thread::spawn(move || record(l, upstream, out, opts, &c));
    Running { addr, cancel, done }
}

impl Running {
    fn stop(self) -> RecordStats {
        self.cancel.store(true, Ordering::SeqCst);
        self.done.join().unwrap().unwrap()
    }
}

fn traffic_file() -> (tempfile::TempDir, std::path::PathBuf, std::fs::File) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.jsonl");
    let f = create(&p).unwrap();
    (d, p, f)
}

fn recorded(p: &std::path::Path) -> Vec<crate::traffic::Exchange> {
    Reader::new(BufReader::new(std::fs::File::open(p).unwrap()))
        .unwrap()
        .map(|(_, x)| x.unwrap())
        .collect()
}

fn connect(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let r = BufReader::new(c.try_clone().unwrap());
    (c, r)
}

fn answers(path: &str) -> Vec<u8> {
    match path {
        "/head" => b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n".to_vec(),
        "/nothing" => b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
        "/same" => b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n".to_vec(),
        "/continue" => b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;e=1\r\nabcd\r\n0\r\nX-Sum: 9\r\n\r\n".to_vec(),
        "/bare" => b"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc".to_vec(),
        "/close" => b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end".to_vec(),
        "/garbage" => b"\x1b[31mNOT HTTP\r\n\r\n".to_vec(),
        "/cut" => b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this".to_vec(),
        _ => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
    }
}

#[test]
fn every_framing_passes_through_on_one_connection_and_is_recorded() {
    let up = upstream(answers);
    let (_d, path, f) = traffic_file();
    let rec = start(&up, f, RecordOptions::default());
    let (mut w, mut r) = connect(rec.addr);
    let get = |p: &str, m: &str| format!("{m} {p} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes();
    let mut ask = |req: &[u8], method: &str| {
        w.write_all(req).unwrap();
        read_response(&mut r, method, &Limits::default()).unwrap()
    };
    assert_eq!(ask(&get("/head", "HEAD"), "HEAD").body, b"");
    assert_eq!(ask(&get("/nothing", "GET"), "GET").status, 204);
    assert_eq!(ask(&get("/same", "GET"), "GET").status, 304);
    let c = ask(&get("/chunked", "GET"), "GET");
    assert_eq!(c.body, b"abcd");
    assert_eq!(ask(&get("/bare", "GET"), "GET").body, b"abc");
    // A chunked request with a trailer; then 100 Continue before a body with a length.
    let chunked = b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\nT: 1\r\n\r\n";
    assert_eq!(ask(chunked, "POST").body, b"hello");
    w.write_all(
        b"PUT /continue HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    // The interim answer arrives before the body is sent (the proxy does not wait for it).
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "HTTP/1.1 100 Continue\r\n");
    r.read_line(&mut line).unwrap();
    w.write_all(b"data").unwrap();
    assert_eq!(
        read_response(&mut r, "PUT", &Limits::default())
            .unwrap()
            .status,
        201
    );
    // Two requests pipelined in one write.
    let mut two = get("/a", "GET");
    two.extend(get("/b", "GET"));
    w.write_all(&two).unwrap();
    for _ in 0..2 {
        assert_eq!(
            read_response(&mut r, "GET", &Limits::default())
                .unwrap()
                .body,
            b"hello"
        );
    }
    // A body until close: the client's connection ends after it.
    w.write_all(&get("/close", "GET")).unwrap();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.ends_with(b"\r\n\r\nuntil the end"), "{rest:?}");
    let stats = rec.stop();
    assert_eq!(
        (stats.exchanges, stats.failed, stats.dropped),
        (10, 0, 0),
        "{stats:?}"
    );

    let xs = recorded(&path);
    let targets: Vec<&str> = xs.iter().map(|x| x.request.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "/head",
            "/nothing",
            "/same",
            "/chunked",
            "/bare",
            "/up",
            "/continue",
            "/a",
            "/b",
            "/close"
        ]
    );
    let status: Vec<u16> = xs
        .iter()
        .map(|x| x.response.as_ref().unwrap().status)
        .collect();
    assert_eq!(status, [200, 204, 304, 200, 200, 200, 201, 200, 200, 200]);
    assert_eq!(xs[3].response_body().unwrap(), b"abcd");
    assert_eq!(xs[5].request().unwrap().body, b"xyz");
    assert_eq!(xs[6].request().unwrap().body, b"data");
    assert_eq!(xs[9].response_body().unwrap(), b"until the end");
    assert!(xs.iter().all(|x| !x.truncated));
    let seen = up.seen.lock().unwrap();
    assert_eq!(seen.len(), 10);
}

#[test]
fn a_broken_upstream_gets_the_client_a_502_and_is_counted_not_recorded() {
    let up = upstream(answers);
    let (_d, path, f) = traffic_file();
    let rec = start(&up, f, RecordOptions::default());
    // Garbage instead of a response: 502, the connection closed.
    let (mut w, mut r) = connect(rec.addr);
    w.write_all(b"GET /garbage HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let resp = read_response(&mut r, "GET", &Limits::default()).unwrap();
    assert_eq!(resp.status, 502);
    assert!(!resp.keep_alive);
    // A response cut short after its head: what came is relayed, then the connection closed.
    let (mut w, mut r) = connect(rec.addr);
    w.write_all(b"GET /cut HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    r.read_to_end(&mut got).unwrap();
    assert!(got.ends_with(b"only this"), "{got:?}");
    // A head over the cap: 400, and the upstream never sees it.
    let (mut w, mut r) = connect(rec.addr);
    let mut huge = b"GET /huge HTTP/1.1\r\nX: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 100_000));
    let _ = w.write_all(&huge);
    let resp = read_response(&mut r, "GET", &Limits::default()).unwrap();
    assert_eq!(resp.status, 400);
    // A request whose framing is refused: 400.
    let (mut w, mut r) = connect(rec.addr);
    w.write_all(b"POST /te HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_response(&mut r, "POST", &Limits::default())
            .unwrap()
            .status,
        400
    );
    // The proxy still serves.
    let (mut w, mut r) = connect(rec.addr);
    w.write_all(b"GET /fine HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_response(&mut r, "GET", &Limits::default())
            .unwrap()
            .body,
        b"hello"
    );
    let stats = rec.stop();
    assert_eq!((stats.exchanges, stats.failed), (1, 4), "{stats:?}");
    let xs = recorded(&path);
    assert_eq!(xs.len(), 1);
    assert_eq!(xs[0].request.target, "/fine");
    let seen = up.seen.lock().unwrap();
    assert!(
        seen.iter().all(|(p, _)| p != "/huge" && p != "/te"),
        "{seen:?}"
    );
}

#[test]
fn an_upstream_that_refuses_gets_the_client_a_502() {
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = down.local_addr().unwrap();
    drop(down);
    let up = Upstream {
        addr,
        seen: Arc::new(Mutex::new(Vec::new())),
    };
    let (_d, _path, f) = traffic_file();
    let rec = start(&up, f, RecordOptions::default());
    let (mut w, mut r) = connect(rec.addr);
    w.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(
        read_response(&mut r, "GET", &Limits::default())
            .unwrap()
            .status,
        502
    );
    let stats = rec.stop();
    assert_eq!((stats.exchanges, stats.failed), (0, 1), "{stats:?}");
}

/// An upstream name that resolves to an address that refuses and one that answers (`localhost`
/// to `::1` and `127.0.0.1` with the service on one of them): the request goes to the next
/// address whole, whether the refusal comes at once or once the connection was being made.
#[test]
fn the_next_upstream_address_gets_the_request_when_one_refuses() {
    let up = upstream(answers);
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = down.local_addr().unwrap();
    drop(down);
    let (_d, path, f) = traffic_file();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let c = Arc::clone(&cancel);
    let upstream = vec![refused, up.addr];
    let done = std::thread::spawn(move || record(l, upstream, f, RecordOptions::default(), &c));
    let rec = Running { addr, cancel, done };
    let (mut w, mut r) = connect(rec.addr);
    w.write_all(b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
        .unwrap();
    let resp = read_response(&mut r, "POST", &Limits::default()).unwrap();
    assert_eq!(resp.body, b"hello");
    let stats = rec.stop();
    assert_eq!((stats.exchanges, stats.failed), (1, 0), "{stats:?}");
    assert_eq!(recorded(&path)[0].request().unwrap().body, b"abc");
    assert_eq!(
        up.seen.lock().unwrap()[0],
        ("/p".to_string(), b"abc".to_vec())
    );
}

/// Regression guard for the thread-per-connection proxy's one write per exchange: a traffic
/// file that cannot be written (here a pipe nobody reads) must not stall the clients; what the
/// queue has no room for is counted as dropped, and everything is accounted for.
#[test]
fn a_stalled_traffic_file_does_not_stall_the_relay_and_drops_are_counted() {
    let up = upstream(|_| {
        let mut r = b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n".to_vec();
        r.extend(std::iter::repeat_n(b'x', 4096));
        r
    });
    let mut fds = [0; 2];
    // SAFETY: a valid array for pipe2.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 made both descriptors; each is owned once.
    let (rd, wr) = unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    let opts = RecordOptions {
        queue_bytes: 64 * 1024,
        ..Default::default()
    };
    let rec = start(&up, wr, opts);
    let (mut w, mut r) = connect(rec.addr);
    let n = 400;
    let until = Instant::now() + Duration::from_secs(120);
    for _ in 0..n {
        w.write_all(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        let resp = read_response(&mut r, "GET", &Limits::default()).unwrap();
        assert_eq!(resp.body.len(), 4096);
        assert!(Instant::now() < until, "the relay stalled");
    }
    drop((w, r));
    // Now read the pipe so the writer can finish.
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut rd = rd;
        rd.read_to_end(&mut all).unwrap();
        all
    });
    let stats = rec.stop();
    let all = reader.join().unwrap();
    let lines = all.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() as u64;
    assert!(stats.dropped > 0, "{stats:?}");
    assert_eq!(stats.exchanges + stats.dropped, n, "{stats:?}");
    assert_eq!(
        lines, stats.exchanges,
        "every exchange counted written is in the file"
    );
    assert_eq!(stats.failed, 0);
}

#[test]
fn a_stop_closes_idle_connections_and_lets_an_exchange_in_progress_finish() {
    fn slow(path: &str) -> Vec<u8> {
        if path == "/slow" {
            std::thread::sleep(Duration::from_millis(700));
        }
        answers(path)
    }
    let up = upstream(slow);
    let (_d, path, f) = traffic_file();
    let rec = start(&up, f, RecordOptions::default());
    let (mut idle, mut idle_r) = connect(rec.addr);
    idle.write_all(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    read_response(&mut idle_r, "GET", &Limits::default()).unwrap();
    let (mut w, mut r) = connect(rec.addr);
    w.write_all(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    // The stop comes once the request is with the upstream (the exchange is in progress).
    let until = Instant::now() + Duration::from_secs(60);
    while !up.seen.lock().unwrap().iter().any(|(p, _)| p == "/slow") {
        assert!(
            Instant::now() < until,
            "the request never reached the upstream"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    let stopper = {
        let cancel = Arc::clone(&rec.cancel);
        std::thread::spawn(move || cancel.store(true, Ordering::SeqCst))
    };
    let resp = read_response(&mut r, "GET", &Limits::default()).unwrap();
    assert_eq!(resp.body, b"hello");
    assert!(
        !resp.keep_alive || {
            let mut b = [0u8; 1];
            matches!(r.read(&mut b), Ok(0))
        }
    );
    let mut b = [0u8; 1];
    assert!(
        matches!(idle_r.read(&mut b), Ok(0) | Err(_)),
        "the idle one is closed"
    );
    stopper.join().unwrap();
    let stats = rec.stop();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!((stats.exchanges, stats.failed), (2, 0), "{stats:?}");
    let xs = recorded(&path);
    assert_eq!(xs[1].request.target, "/slow");
}
