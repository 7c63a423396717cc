//! HTTP/1.1 messages over std streams: heads parsed by `httparse`, the body framing written
//! here (RFC 9112 §6: Content-Length, chunked with trailers, close-delimited; HEAD, 1xx, 204
//! and 304 without a body).
//!
//! Everything a peer sends is hostile: the head is read line by line under a cap on each line
//! and on the whole head, at most [`MAX_HEADERS`] fields, a chunk size line under its own cap
//! and a chunk size parsed without overflow, and the body under a cap checked *before* any
//! allocation (a 10 GB Content-Length is refused, not allocated). No input panics.

use std::io::{self, BufRead, Read, Write};

/// The most header fields a head may carry.
pub const MAX_HEADERS: usize = 128;

/// Caps on what a peer may send.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The whole head (start line and fields), and separately the trailers, in bytes.
    pub head: usize,
    /// One message body after removing the chunked framing, in bytes.
    pub body: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            head: 64 * 1024,
            body: 64 * 1024 * 1024,
        }
    }
}

/// Why a message could not be read or written. The texts name what was wrong; the caller
/// names the peer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("the connection closed before a complete message")]
    Closed,
    #[error("the head is longer than {0} bytes")]
    HeadTooLong(usize),
    #[error("malformed head: {0}")]
    BadHead(String),
    #[error("the body is longer than the cap of {cap} bytes ({what})")]
    BodyTooLong { cap: u64, what: String },
    #[error("malformed chunked body: {0}")]
    BadChunk(String),
    #[error("bad framing: {0}")]
    BadFraming(String),
}

/// A header field: the name as sent (letter case kept) and the value's bytes.
pub type Header = (String, Vec<u8>);

/// A request as sent on the wire (the body after the chunked framing is removed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
}

/// A response (the body after the chunked framing is removed; content codings such as gzip
/// are kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
    /// Whether the connection may carry another request after this response.
    pub keep_alive: bool,
}

/// The values of every field named `name` (ASCII case-insensitive), in order.
pub fn values<'a>(headers: &'a [Header], name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// The comma-separated tokens of every field named `name`, lower-cased and trimmed.
pub fn tokens(headers: &[Header], name: &str) -> Vec<String> {
    values(headers, name)
        .flat_map(|v| v.split(|b| *b == b','))
        .map(|t| String::from_utf8_lossy(t).trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Reads one line ending in LF (the LF and a CR before it removed), at most `max` bytes.
/// `Ok(None)` at a clean end of stream before any byte.
pub(crate) fn read_line(r: &mut impl BufRead, max: usize) -> Result<Option<Vec<u8>>, HttpError> {
    let mut line = Vec::new();
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if buf.is_empty() {
            return if line.is_empty() {
                Ok(None)
            } else {
                Err(HttpError::Closed)
            };
        }
        let (take, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + take > max {
            return Err(HttpError::HeadTooLong(max));
        }
        line.extend_from_slice(&buf[..take]);
        r.consume(take);
        if done {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(line));
        }
    }
}

/// Reads a head up to and including its empty line, as bytes `httparse` can parse (CRLF
/// endings), under `max` bytes. `Ok(None)` at a clean end of stream before any byte (an idle
/// keep-alive connection closed). Leading empty lines are skipped (RFC 9112 §2.2).
pub(crate) fn read_head(r: &mut impl BufRead, max: usize) -> Result<Option<Vec<u8>>, HttpError> {
    let mut head = Vec::new();
    loop {
        let left = max.saturating_sub(head.len());
        if left == 0 {
            return Err(HttpError::HeadTooLong(max));
        }
        let line = match read_line(r, left) {
            Ok(Some(l)) => l,
            Ok(None) if head.is_empty() => return Ok(None),
            Ok(None) => return Err(HttpError::Closed),
            Err(HttpError::HeadTooLong(_)) => return Err(HttpError::HeadTooLong(max)),
            Err(e) => return Err(e),
        };
        if line.is_empty() {
            if head.is_empty() {
                continue;
            }
            head.extend_from_slice(b"\r\n");
            return Ok(Some(head));
        }
        head.extend_from_slice(&line);
        head.extend_from_slice(b"\r\n");
    }
}

pub(crate) fn fields(parsed: &[httparse::Header<'_>]) -> Vec<Header> {
    parsed
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect()
}

/// How a body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// A header field as parsed or as kept: what framing and connection handling need of it, so
/// the recording proxy decides both from `httparse`'s borrowed fields without copying them.
pub(crate) trait Field {
    fn name(&self) -> &str;
    fn value(&self) -> &[u8];
}

impl Field for Header {
    fn name(&self) -> &str {
        &self.0
    }
    fn value(&self) -> &[u8] {
        &self.1
    }
}

impl Field for httparse::Header<'_> {
    fn name(&self) -> &str {
        self.name
    }
    fn value(&self) -> &[u8] {
        self.value
    }
}

fn field_values<'a, F: Field>(
    headers: &'a [F],
    name: &'a str,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .iter()
        .filter(move |h| h.name().eq_ignore_ascii_case(name))
        .map(|h| h.value())
}

/// Whether a comma-separated token of the fields named `name` is `token` (ASCII
/// case-insensitive), without allocating.
fn has_token<F: Field>(headers: &[F], name: &str, token: &str) -> bool {
    field_values(headers, name)
        .flat_map(|v| v.split(|b| *b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// The framing the headers declare (RFC 9112 §6.3), for a message that may have a body.
/// `request`: a request without either field has no body (a response reads until close).
pub(crate) fn framing<F: Field>(headers: &[F], request: bool) -> Result<Framing, HttpError> {
    if field_values(headers, "transfer-encoding").next().is_some() {
        let te: Vec<String> = field_values(headers, "transfer-encoding")
            .flat_map(|v| v.split(|b| *b == b','))
            .map(|t| String::from_utf8_lossy(t).trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        if te.last().map(String::as_str) == Some("chunked") {
            return Ok(Framing::Chunked);
        }
        if !te.is_empty() {
            if request {
                return Err(HttpError::BadFraming(format!(
                    "a request's Transfer-Encoding must end in chunked (it is {})",
                    te.join(", ")
                )));
            }
            return Ok(Framing::UntilClose);
        }
    }
    let mut length: Option<u64> = None;
    for v in field_values(headers, "content-length") {
        for part in v.split(|b| *b == b',') {
            let t = String::from_utf8_lossy(part);
            let t = t.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) || t.len() > 19 {
                return Err(HttpError::BadFraming(format!(
                    "Content-Length {:?} is not a number",
                    crate::clip(t, 40)
                )));
            }
            let n: u64 = t
                .parse()
                .map_err(|_| HttpError::BadFraming("Content-Length out of range".into()))?;
            if length.is_some_and(|l| l != n) {
                return Err(HttpError::BadFraming(
                    "several different Content-Length values".into(),
                ));
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(n) => Framing::Length(n),
        None if request => Framing::None,
        None => Framing::UntilClose,
    })
}

/// Reads `n` bytes of body, refusing before allocation when `n` is over the cap.
fn read_exact_body(r: &mut impl BufRead, n: u64, limits: &Limits) -> Result<Vec<u8>, HttpError> {
    if n > limits.body {
        return Err(HttpError::BodyTooLong {
            cap: limits.body,
            what: format!("Content-Length {n}"),
        });
    }
    let mut body = Vec::with_capacity(n.min(1 << 20) as usize);
    let got = r.take(n).read_to_end(&mut body)?;
    if (got as u64) < n {
        return Err(HttpError::Closed);
    }
    Ok(body)
}

fn read_until_close(r: &mut impl BufRead, limits: &Limits) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    let got = r.take(limits.body + 1).read_to_end(&mut body)?;
    if got as u64 > limits.body {
        return Err(HttpError::BodyTooLong {
            cap: limits.body,
            what: "a body delimited by the connection's close".into(),
        });
    }
    Ok(body)
}

/// Reads a chunked body and its trailers (which are returned apart).
fn read_chunked(
    r: &mut impl BufRead,
    limits: &Limits,
) -> Result<(Vec<u8>, Vec<Header>), HttpError> {
    let mut body = Vec::new();
    loop {
        let line = match read_line(r, 1024) {
            Ok(Some(l)) => l,
            Ok(None) => return Err(HttpError::Closed),
            Err(HttpError::HeadTooLong(_)) => {
                return Err(HttpError::BadChunk(
                    "a chunk size line is longer than 1024 bytes".into(),
                ));
            }
            Err(e) => return Err(e),
        };
        let size_part = line.split(|b| *b == b';').next().unwrap_or(&[]);
        let size_text = String::from_utf8_lossy(size_part);
        let size_text = size_text.trim_matches(|c| c == ' ' || c == '\t');
        if size_text.is_empty()
            || size_text.len() > 16
            || !size_text.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(HttpError::BadChunk(format!(
                "chunk size {:?} is not a hexadecimal number",
                crate::clip(size_text, 40)
            )));
        }
        let size = u64::from_str_radix(size_text, 16)
            .map_err(|_| HttpError::BadChunk("chunk size out of range".into()))?;
        if size == 0 {
            break;
        }
        if size > limits.body.saturating_sub(body.len() as u64) {
            return Err(HttpError::BodyTooLong {
                cap: limits.body,
                what: format!("a chunk of {size} bytes after {} bytes", body.len()),
            });
        }
        let before = body.len();
        let got = r.take(size).read_to_end(&mut body)?;
        if (got as u64) < size {
            return Err(HttpError::Closed);
        }
        debug_assert_eq!(body.len() - before, size as usize);
        match read_line(r, 2) {
            Ok(Some(l)) if l.is_empty() => {}
            Ok(None) => return Err(HttpError::Closed),
            _ => {
                return Err(HttpError::BadChunk(
                    "a chunk's data is not followed by CRLF".into(),
                ));
            }
        }
    }
    // Trailers: header fields up to an empty line, under the head cap.
    let mut trailer = Vec::new();
    loop {
        let left = limits.head.saturating_sub(trailer.len());
        let line = match read_line(r, left.max(1)) {
            Ok(Some(l)) => l,
            Ok(None) => return Err(HttpError::Closed),
            Err(HttpError::HeadTooLong(_)) => return Err(HttpError::HeadTooLong(limits.head)),
            Err(e) => return Err(e),
        };
        if line.is_empty() {
            break;
        }
        trailer.extend_from_slice(&line);
        trailer.extend_from_slice(b"\r\n");
    }
    let mut trailers = Vec::new();
    if !trailer.is_empty() {
        trailer.extend_from_slice(b"\r\n");
        let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match httparse::parse_headers(&trailer, &mut hs) {
            Ok(httparse::Status::Complete((_, parsed))) => trailers = fields(parsed),
            Ok(httparse::Status::Partial) => {
                return Err(HttpError::BadChunk("incomplete trailers".into()));
            }
            Err(e) => return Err(HttpError::BadChunk(format!("trailers: {e}"))),
        }
    }
    Ok((body, trailers))
}

fn read_body(
    r: &mut impl BufRead,
    framing: Framing,
    limits: &Limits,
) -> Result<Vec<u8>, HttpError> {
    Ok(match framing {
        Framing::None => Vec::new(),
        Framing::Length(n) => read_exact_body(r, n, limits)?,
        Framing::Chunked => read_chunked(r, limits)?.0,
        Framing::UntilClose => read_until_close(r, limits)?,
    })
}

pub(crate) fn connection_close<F: Field>(headers: &[F], minor: u8) -> bool {
    has_token(headers, "connection", "close")
        || (minor == 0 && !has_token(headers, "connection", "keep-alive"))
}

/// Reads one response to a request with `method`. Interim 1xx responses (but 101) are read and
/// dropped. Errors name what was wrong, never with more than a clipped, escaped-by-the-caller
/// piece of what the peer sent.
pub fn read_response(
    r: &mut impl BufRead,
    method: &str,
    limits: &Limits,
) -> Result<Response, HttpError> {
    loop {
        let head = read_head(r, limits.head)?.ok_or(HttpError::Closed)?;
        let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut hs);
        match resp.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(HttpError::BadHead("incomplete response head".into()));
            }
            Err(e) => {
                return Err(HttpError::BadHead(format!(
                    "{e} in a response beginning {:?}",
                    crate::clip(&String::from_utf8_lossy(&head), 60)
                )));
            }
        }
        let status = resp.code.unwrap_or(0);
        let minor = resp.version.unwrap_or(1);
        let reason = resp.reason.unwrap_or("").to_string();
        let headers = fields(resp.headers);
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        let no_body = method.eq_ignore_ascii_case("HEAD")
            || (100..200).contains(&status)
            || status == 204
            || status == 304;
        let framing = if no_body {
            Framing::None
        } else {
            framing(&headers, false)?
        };
        let body = read_body(r, framing, limits)?;
        let keep_alive =
            framing != Framing::UntilClose && status != 101 && !connection_close(&headers, minor);
        return Ok(Response {
            status,
            reason,
            headers,
            body,
            keep_alive,
        });
    }
}

/// Reads one request; `Ok(None)` when the peer closed an idle connection.
pub fn read_request(r: &mut impl BufRead, limits: &Limits) -> Result<Option<Request>, HttpError> {
    let Some(head) = read_head(r, limits.head)? else {
        return Ok(None);
    };
    let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut hs);
    match req.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(HttpError::BadHead("incomplete request head".into()));
        }
        Err(e) => return Err(HttpError::BadHead(format!("{e} in a request"))),
    }
    let method = req.method.unwrap_or("").to_string();
    let target = req.path.unwrap_or("").to_string();
    let headers = fields(req.headers);
    let body = read_body(r, framing(&headers, true)?, limits)?;
    Ok(Some(Request {
        method,
        target,
        headers,
        body,
    }))
}

/// Hop-by-hop fields (RFC 9110 §7.6.1) and the framing fields, which a replayed request gets
/// anew: they describe one connection, not the exchange.
pub fn is_hop_by_hop(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "content-length"
    ) || n.starts_with("proxy-")
}

/// Writes a request for replay: the recorded fields but the hop-by-hop ones, `Host` set to
/// `host`, the body with a Content-Length, the connection kept alive.
pub fn write_request(
    w: &mut impl Write,
    method: &str,
    target: &str,
    host: &str,
    headers: &[Header],
    body: &[u8],
) -> io::Result<()> {
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (n, v) in headers {
        if is_hop_by_hop(n) || n.eq_ignore_ascii_case("host") {
            continue;
        }
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() || !matches!(method, "GET" | "HEAD" | "OPTIONS" | "DELETE" | "TRACE") {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    w.write_all(&out)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn resp(bytes: &[u8], method: &str) -> Result<Response, HttpError> {
        read_response(&mut Cursor::new(bytes.to_vec()), method, &Limits::default())
    }

    #[test]
    fn length_chunked_close_and_head() {
        let r = resp(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcX", "GET").unwrap();
        assert_eq!(r.body, b"abc");
        assert!(r.keep_alive);
        let r = resp(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n",
            "GET",
        )
        .unwrap();
        assert_eq!(r.body, b"abcde");
        let r = resp(b"HTTP/1.1 200 OK\r\n\r\nuntil close", "GET").unwrap();
        assert_eq!(r.body, b"until close");
        assert!(!r.keep_alive);
        let r = resp(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", "HEAD").unwrap();
        assert!(r.body.is_empty());
        let r = resp(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            "GET",
        )
        .unwrap();
        assert_eq!(r.status, 204);
    }

    #[test]
    fn hostile_responses_are_errors() {
        let huge = b"HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\n\r\n";
        assert!(matches!(
            resp(huge, "GET"),
            Err(HttpError::BodyTooLong { .. })
        ));
        let chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n";
        assert!(matches!(resp(chunk, "GET"), Err(HttpError::BadChunk(_))));
        let chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(matches!(resp(chunk, "GET"), Err(HttpError::BadChunk(_))));
        let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
        endless.extend(std::iter::repeat_n(b'a', 200_000));
        assert!(matches!(
            resp(&endless, "GET"),
            Err(HttpError::HeadTooLong(_))
        ));
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab";
        assert!(matches!(resp(two, "GET"), Err(HttpError::BadFraming(_))));
        assert!(matches!(
            resp(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", "GET"),
            Err(HttpError::Closed)
        ));
    }

    #[test]
    fn requests_round_trip() {
        let mut out = Vec::new();
        let hs = vec![
            ("Connection".to_string(), b"close".to_vec()),
            ("X-A".to_string(), b"1".to_vec()),
        ];
        write_request(&mut out, "POST", "/p?q=1", "h:1", &hs, b"\x00\xff").unwrap();
        let req = read_request(&mut Cursor::new(out), &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.target, "/p?q=1");
        assert_eq!(req.body, b"\x00\xff");
        assert!(values(&req.headers, "connection").next().is_none());
        assert_eq!(values(&req.headers, "host").next(), Some(&b"h:1"[..]));
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let limits = Limits { head: 512, body: 1024 };
            let _ = read_response(&mut Cursor::new(bytes.clone()), "GET", &limits);
            let _ = read_request(&mut Cursor::new(bytes), &limits);
        }

        #[test]
        fn mangled_responses_never_panic(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            cut in 0usize..600,
        ) {
            let mut m = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            m.extend(format!("{:x}\r\n", body.len()).bytes());
            m.extend(&body);
            m.extend(b"\r\n0\r\n\r\n");
            let full = read_response(&mut Cursor::new(m.clone()), "GET", &Limits::default()).unwrap();
            proptest::prop_assert_eq!(&full.body, &body);
            m.truncate(cut.min(m.len()));
            let _ = read_response(&mut Cursor::new(m), "GET", &Limits::default());
        }
    }
}
