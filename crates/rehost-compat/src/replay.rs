//! Replay: each recorded request is sent to the old service, to the new one, and (safe
//! methods only) a second time to the old one. The two old answers show what varies by itself
//! (a timestamp, a random id): a field that differs between them in any request of an endpoint
//! is *noise* for that endpoint, counted as such and not reported as a difference (the way
//! Twitter's Diffy filters). Everything else that differs between old and new is reported per
//! endpoint (method and path without the query) and per field, with the first examples.
//!
//! Requests other than GET, HEAD and OPTIONS are refused (listed, not sent) unless writes are
//! allowed; an allowed write is sent once to each side (a second write to the old service would
//! change it again), so its noise is not measured.
//!
//! Bounded worker threads, one keep-alive connection per worker and side; the traffic file is
//! read as it is replayed (a bounded queue), so memory does not grow with the file.

use crate::diff::{self, Difference};
use crate::http::{self, HttpError, Limits, Request, Response};
use crate::traffic::{Exchange, Reader};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, BufWriter};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// An HTTP service to replay against: `http://HOST:PORT[/PREFIX]`.
#[derive(Clone, Debug)]
pub struct Target {
    /// The URL as given (shown in messages).
    pub url: String,
    pub host: String,
    pub port: u16,
    /// Prepended to every recorded target (`""` for none).
    pub prefix: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("https://") {
            return Err(format!(
                "{url}: https is not spoken by rehost compat yet; put the service's plain HTTP \
                 port (or a local TLS-terminating proxy) here"
            ));
        } else {
            return Err(format!("{url}: give a URL like http://HOST:PORT"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = if let Some(h) = authority.strip_prefix('[') {
            let (h, p) = h
                .split_once(']')
                .ok_or_else(|| format!("{url}: unclosed [ in the address"))?;
            (h.to_string(), p.strip_prefix(':').unwrap_or(""))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p),
                None => (authority.to_string(), ""),
            }
        };
        let port = if port.is_empty() {
            80
        } else {
            port.parse()
                .map_err(|_| format!("{url}: port {port:?} is not a number from 1 to 65535"))?
        };
        if host.is_empty() || port == 0 {
            return Err(format!("{url}: give a host and a port, http://HOST:PORT"));
        }
        if path.contains(['?', '#']) || path.bytes().any(|b| b <= b' ') {
            return Err(format!(
                "{url}: the URL may have a path prefix, not a query"
            ));
        }
        Ok(Target {
            url: url.to_string(),
            host,
            port,
            prefix: path.trim_end_matches('/').to_string(),
        })
    }

    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// How to replay.
#[derive(Clone, Debug)]
pub struct Options {
    pub concurrency: usize,
    pub allow_writes: bool,
    /// Send safe requests a second time to the old service to tell noise apart.
    pub again: bool,
    /// Examples kept per field.
    pub examples: usize,
    pub limits: Limits,
    /// Connect, read and write timeout per request.
    pub timeout: Duration,
    /// Expected differences: field globs (`*` any characters, `?` one). A field they match is
    /// still listed, marked allowed, and does not make a request differ.
    pub allow: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: 16,
            allow_writes: false,
            again: true,
            examples: 3,
            limits: Limits::default(),
            timeout: Duration::from_secs(30),
            allow: Vec::new(),
        }
    }
}

/// Whether a method is safe to replay without `--allow-writes`.
pub fn safe_method(m: &str) -> bool {
    matches!(m, "GET" | "HEAD" | "OPTIONS")
}

/// The most entries kept in a list of refused, skipped or failed requests (all are counted).
pub const LISTED: usize = 20;

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Listed {
    /// The traffic file's line.
    pub line: usize,
    pub method: String,
    /// The target, credential-like query values not shown.
    pub target: String,
    /// Why (empty for a refused write).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub why: String,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Example {
    pub line: usize,
    pub target: String,
    pub old: String,
    pub new: String,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FieldCount {
    pub field: String,
    /// Declared as an expected difference (`--allow`, the step's `allow`): listed, not counted
    /// against the verdict.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allowed: bool,
    /// Requests in which it differed (for noise: in which the old service differed from itself).
    pub count: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<Example>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Endpoint {
    /// Method and path without the query.
    pub endpoint: String,
    pub requests: u64,
    pub differing: u64,
    pub differences: Vec<FieldCount>,
    pub noise: Vec<FieldCount>,
}

/// What a replay found.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub old: String,
    pub new: String,
    /// Exchanges read from the traffic file.
    pub exchanges: u64,
    /// Requests answered by both sides and compared.
    pub compared: u64,
    pub same: u64,
    /// Requests with a difference that is neither noise nor allowed.
    pub differing: u64,
    /// Requests whose only differences were allowed ones.
    pub allowed: u64,
    pub refused_writes: u64,
    pub refused: Vec<Listed>,
    /// Exchanges recorded truncated (a body over the recording cap): not replayed.
    pub truncated: u64,
    /// Lines that are not a replayable exchange.
    pub bad: u64,
    pub bad_lines: Vec<Listed>,
    /// Requests a side did not answer (connection, timeout, malformed or oversized answer).
    pub failed: u64,
    pub failures: Vec<Listed>,
    pub endpoints: Vec<Endpoint>,
    /// Whether the old service was asked twice (noise measured).
    pub noise_measured: bool,
    pub interrupted: bool,
    pub not_compared: String,
}

impl Summary {
    /// Differences remain (after noise).
    pub fn differs(&self) -> bool {
        self.differing > 0
    }

    /// Something could not be replayed or compared.
    pub fn trouble(&self) -> bool {
        self.failed > 0 || self.bad > 0 || self.interrupted
    }
}

fn lock(acc: &Mutex<Acc>) -> std::sync::MutexGuard<'_, Acc> {
    acc.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Default)]
struct EndpointAcc {
    requests: u64,
    /// Per differing request: its line and the fields that differed old → new.
    diffs: Vec<(usize, Vec<String>)>,
    fields: BTreeMap<String, (u64, Vec<Example>)>,
    noise: BTreeMap<String, u64>,
}

#[derive(Default)]
struct Acc {
    s: Summary,
    endpoints: BTreeMap<String, EndpointAcc>,
}

fn push_listed(list: &mut Vec<Listed>, l: Listed) {
    list.push(l);
    list.sort_by_key(|l| l.line);
    list.truncate(LISTED);
}

/// One keep-alive connection to a side.
struct Conn {
    target: Target,
    stream: Option<(BufReader<TcpStream>, BufWriter<TcpStream>)>,
    timeout: Duration,
}

impl Conn {
    fn connect(&self) -> Result<(BufReader<TcpStream>, BufWriter<TcpStream>), HttpError> {
        let addrs = (self.target.host.as_str(), self.target.port).to_socket_addrs()?;
        let mut last = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, self.timeout) {
                Ok(s) => {
                    s.set_read_timeout(Some(self.timeout))?;
                    s.set_write_timeout(Some(self.timeout))?;
                    s.set_nodelay(true)?;
                    let w = s.try_clone()?;
                    return Ok((BufReader::with_capacity(64 * 1024, s), BufWriter::new(w)));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| std::io::Error::other("the host name resolves to no address"))
            .into())
    }

    fn send(&mut self, req: &Request, limits: &Limits) -> Result<Response, HttpError> {
        let reused = self.stream.is_some();
        match self.once(req, limits) {
            Err(e) if reused && stale(&e) => {
                self.stream = None;
                self.once(req, limits)
            }
            r => r,
        }
    }

    fn once(&mut self, req: &Request, limits: &Limits) -> Result<Response, HttpError> {
        if self.stream.is_none() {
            self.stream = Some(self.connect()?);
        }
        let (r, w) = self.stream.as_mut().expect("connected above");
        let target = format!("{}{}", self.target.prefix, req.target);
        let result = http::write_request(
            w,
            &req.method,
            &target,
            &self.target.authority(),
            &req.headers,
            &req.body,
        )
        .map_err(HttpError::from)
        .and_then(|()| http::read_response(r, &req.method, limits));
        match &result {
            Ok(resp) if resp.keep_alive => {}
            _ => self.stream = None,
        }
        result
    }
}

/// A reused connection the server had closed while idle.
fn stale(e: &HttpError) -> bool {
    match e {
        HttpError::Closed => true,
        HttpError::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}

fn endpoint_of(req: &Request) -> String {
    let path = req.target.split('?').next().unwrap_or("");
    format!("{} {path}", req.method)
}

struct Worker<'a> {
    old: Conn,
    new: Conn,
    opts: &'a Options,
    acc: &'a Mutex<Acc>,
}

impl Worker<'_> {
    fn handle(&mut self, line: usize, x: Result<Exchange, String>) {
        let x = match x {
            Ok(x) => x,
            Err(e) => return self.bad(line, "", "", e),
        };
        if x.truncated {
            lock(self.acc).s.truncated += 1;
            return;
        }
        let req = match x.request() {
            Ok(r) => r,
            Err(e) => return self.bad(line, &x.request.method, &x.request.target, e),
        };
        let shown = crate::shown_target(&req.target);
        if !safe_method(&req.method) && !self.opts.allow_writes {
            let mut acc = lock(self.acc);
            acc.s.refused_writes += 1;
            push_listed(
                &mut acc.s.refused,
                Listed {
                    line,
                    method: req.method.clone(),
                    target: shown,
                    why: String::new(),
                },
            );
            return;
        }
        let lim = &self.opts.limits;
        let a = self.old.send(&req, lim);
        let b = self.new.send(&req, lim);
        let again = (self.opts.again && safe_method(&req.method)).then(|| self.old.send(&req, lim));
        let fail =
            |side: &Target, e: HttpError| format!("{} answered no usable response: {e}", side.url);
        let (a, b, c) = match (a, b, again.transpose()) {
            (Ok(a), Ok(b), Ok(c)) => (a, b, c),
            (Err(e), _, _) | (_, _, Err(e)) => {
                return self.failed(line, &req, shown, fail(&self.old.target, e));
            }
            (_, Err(e), _) => return self.failed(line, &req, shown, fail(&self.new.target, e)),
        };
        let d = diff::diff(&a, &b, lim.body);
        let noise: BTreeSet<String> = c
            .map(|c| diff::diff(&a, &c, lim.body))
            .unwrap_or_default()
            .into_iter()
            .map(|d| d.field)
            .collect();
        let mut acc = lock(self.acc);
        acc.s.compared += 1;
        let examples = self.opts.examples;
        let ep = acc.endpoints.entry(endpoint_of(&req)).or_default();
        ep.requests += 1;
        for f in noise {
            *ep.noise.entry(f).or_default() += 1;
        }
        if !d.is_empty() {
            ep.diffs
                .push((line, d.iter().map(|d| d.field.clone()).collect()));
            for Difference { field, a, b } in d {
                let e = ep.fields.entry(field).or_default();
                e.0 += 1;
                e.1.push(Example {
                    line,
                    target: shown.clone(),
                    old: a,
                    new: b,
                });
                e.1.sort_by_key(|x| x.line);
                e.1.truncate(examples);
            }
        }
    }

    fn bad(&self, line: usize, method: &str, target: &str, why: String) {
        let mut acc = self.acc.lock().unwrap_or_else(|p| p.into_inner());
        acc.s.bad += 1;
        push_listed(
            &mut acc.s.bad_lines,
            Listed {
                line,
                method: crate::clip(method, 20),
                target: crate::clip(&crate::shown_target(target), 200),
                why,
            },
        );
    }

    fn failed(&self, line: usize, req: &Request, target: String, why: String) {
        let mut acc = self.acc.lock().unwrap_or_else(|p| p.into_inner());
        acc.s.failed += 1;
        acc.endpoints.entry(endpoint_of(req)).or_default().requests += 1;
        push_listed(
            &mut acc.s.failures,
            Listed {
                line,
                method: req.method.clone(),
                target,
                why,
            },
        );
    }
}

/// Replays every exchange of a traffic file. `Err` only when the file cannot be read as a
/// traffic file at all; everything else is in the summary. `cancel` stops reading more.
pub fn replay(
    traffic: impl BufRead + Send,
    old: &Target,
    new: &Target,
    opts: &Options,
    cancel: &AtomicBool,
) -> Result<Summary, String> {
    let reader = Reader::new(traffic)?;
    Ok(replay_items(reader, old, new, opts, cancel))
}

/// Replays exchanges given as `(line or entry number, exchange or why it is not one)`.
pub fn replay_items(
    reader: impl Iterator<Item = (usize, Result<Exchange, String>)>,
    old: &Target,
    new: &Target,
    opts: &Options,
    cancel: &AtomicBool,
) -> Summary {
    let acc = Mutex::new(Acc::default());
    let workers = opts.concurrency.clamp(1, 256);
    let (tx, rx) = mpsc::sync_channel::<(usize, Result<Exchange, String>)>(workers * 4);
    let rx = Arc::new(Mutex::new(rx));
    let mut read = 0u64;
    let mut interrupted = false;
    std::thread::scope(|s| {
        for _ in 0..workers {
            let rx = Arc::clone(&rx);
            let acc = &acc;
            let mut w = Worker {
                old: Conn {
                    target: old.clone(),
                    stream: None,
                    timeout: opts.timeout,
                },
                new: Conn {
                    target: new.clone(),
                    stream: None,
                    timeout: opts.timeout,
                },
                opts,
                acc,
            };
            s.spawn(move || {
                loop {
                    let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    match next {
                        Ok((line, x)) => w.handle(line, x),
                        Err(_) => break,
                    }
                }
            });
        }
        for item in reader {
            if cancel.load(Ordering::SeqCst) {
                interrupted = true;
                break;
            }
            read += 1;
            if tx.send(item).is_err() {
                break;
            }
        }
        drop(tx);
    });
    let acc = acc.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut s = acc.s;
    s.old = old.url.clone();
    s.new = new.url.clone();
    s.exchanges = read;
    s.interrupted = interrupted;
    s.noise_measured = opts.again;
    s.not_compared = diff::NOT_COMPARED.to_string();
    for (name, ep) in acc.endpoints {
        let noise: BTreeSet<&String> = ep.noise.keys().collect();
        let allowed = |f: &str| opts.allow.iter().any(|g| glob_match(g, f));
        let real = |fields: &Vec<String>| {
            fields
                .iter()
                .filter(|f| !noise.contains(f))
                .any(|f| !allowed(f))
        };
        let differing = ep.diffs.iter().filter(|(_, f)| real(f)).count() as u64;
        let only_allowed = ep
            .diffs
            .iter()
            .filter(|(_, f)| !real(f) && f.iter().any(|f| !noise.contains(f)))
            .count() as u64;
        s.differing += differing;
        s.allowed += only_allowed;
        let differences = ep
            .fields
            .into_iter()
            .filter(|(f, _)| !noise.contains(f))
            .map(|(field, (count, examples))| FieldCount {
                allowed: allowed(&field),
                field,
                count,
                examples,
            })
            .collect();
        s.endpoints.push(Endpoint {
            endpoint: name,
            requests: ep.requests,
            differing,
            differences,
            noise: ep
                .noise
                .into_iter()
                .map(|(field, count)| FieldCount {
                    field,
                    allowed: false,
                    count,
                    examples: Vec::new(),
                })
                .collect(),
        });
    }
    s.same = s.compared - s.differing - s.allowed;
    s
}

/// Whether `glob` matches all of `text`: `*` any characters (none too), `?` one character,
/// everything else itself.
pub fn glob_match(glob: &str, text: &str) -> bool {
    let (g, t): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    let (mut gi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi] == t[ti]) {
            gi += 1;
            ti += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some((gi, ti));
            gi += 1;
        } else if let Some((sg, st)) = star {
            gi = sg + 1;
            ti = st + 1;
            star = Some((sg, st + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn globs() {
        use super::glob_match as m;
        assert!(m("$.meta.*", "$.meta.version"));
        assert!(m("header x-*", "header x-powered-by"));
        assert!(m("$.items[?].price", "$.items[3].price"));
        assert!(!m("$.items[?].price", "$.items[13].price"));
        assert!(m("*", ""));
        assert!(!m("$.a", "$.ab"));
    }

    #[test]
    fn urls() {
        let t = Target::parse("http://127.0.0.1:8080/base/").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.prefix.as_str()),
            ("127.0.0.1", 8080, "/base")
        );
        let t = Target::parse("http://[::1]:81").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.authority()),
            ("::1", 81, "[::1]:81".into())
        );
        assert!(Target::parse("https://x").unwrap_err().contains("https"));
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("http://x:99999").is_err());
    }
}
