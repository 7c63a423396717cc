//! The traffic file: recorded HTTP exchanges, JSON lines, versioned.
//!
//! The first line is `{"rehost_traffic":1}`; every further line is one [`Exchange`]. Bodies
//! are base64 (standard alphabet, padded) of the message body after the chunked framing is
//! removed; content codings (gzip, br) are kept as sent. Header values are text when they are
//! UTF-8, else base64 under `value_b64`. The file holds credentials (Authorization, Cookie):
//! it must, to replay them; it is written mode 0600.

use crate::http::{Header, Request, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};

/// The format's version, on the first line.
pub const VERSION: u32 = 1;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_b64: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub target: String,
    pub headers: Vec<Field>,
    /// Base64 of the body.
    pub body: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RecordedResponse {
    pub status: u16,
    pub headers: Vec<Field>,
    pub body: String,
}

/// One exchange. `truncated`: a body was over the recording cap, so the exchange was passed
/// through but not kept whole; replay skips it and says so.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub request: RecordedRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<RecordedResponse>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

fn field(h: &Header) -> Field {
    match std::str::from_utf8(&h.1) {
        Ok(s) => Field {
            name: h.0.clone(),
            value: Some(s.to_string()),
            value_b64: None,
        },
        Err(_) => Field {
            name: h.0.clone(),
            value: None,
            value_b64: Some(B64.encode(&h.1)),
        },
    }
}

fn header(f: &Field) -> Result<Header, String> {
    let v = match (&f.value, &f.value_b64) {
        (Some(v), None) => v.as_bytes().to_vec(),
        (None, Some(b)) => B64
            .decode(b)
            .map_err(|e| format!("header {:?}: bad base64: {e}", f.name))?,
        _ => {
            return Err(format!(
                "header {:?} needs exactly one of value and value_b64",
                f.name
            ));
        }
    };
    Ok((f.name.clone(), v))
}

impl Exchange {
    pub fn new(req: &Request, resp: Option<&Response>, truncated: bool) -> Exchange {
        Exchange {
            request: RecordedRequest {
                method: req.method.clone(),
                target: req.target.clone(),
                headers: req.headers.iter().map(field).collect(),
                body: B64.encode(&req.body),
            },
            response: resp.map(|r| RecordedResponse {
                status: r.status,
                headers: r.headers.iter().map(field).collect(),
                body: B64.encode(&r.body),
            }),
            truncated,
        }
    }

    /// The request with decoded headers and body.
    pub fn request(&self) -> Result<Request, String> {
        let r = &self.request;
        check_token(&r.method, "method")?;
        if r.target.is_empty()
            || r.target.bytes().any(|b| b <= b' ' || b == 0x7f)
            || !(r.target.starts_with('/') || r.target == "*")
        {
            return Err(format!(
                "request target {:?} is not an origin-form path",
                crate::clip(&r.target, 80)
            ));
        }
        let mut headers = Vec::with_capacity(r.headers.len());
        for f in &r.headers {
            let h = header(f)?;
            check_token(&h.0, "header name")?;
            if h.1.iter().any(|b| *b == b'\r' || *b == b'\n' || *b == 0) {
                return Err(format!("header {:?} has a line break in its value", h.0));
            }
            headers.push(h);
        }
        let body = B64
            .decode(&r.body)
            .map_err(|e| format!("request body: bad base64: {e}"))?;
        Ok(Request {
            method: r.method.clone(),
            target: r.target.clone(),
            headers,
            body,
        })
    }

    /// The recorded response's body, decoded.
    pub fn response_body(&self) -> Option<Vec<u8>> {
        self.response
            .as_ref()
            .and_then(|r| B64.decode(&r.body).ok())
    }

    /// The recorded response's headers, decoded (fields that do not decode are left out).
    pub fn response_headers(&self) -> Vec<Header> {
        self.response
            .as_ref()
            .map(|r| r.headers.iter().filter_map(|f| header(f).ok()).collect())
            .unwrap_or_default()
    }
}

fn check_token(s: &str, what: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {:?} is not an HTTP token",
            crate::clip(s, 60)
        ))
    }
}

/// Writes the file's first line.
pub fn write_header(w: &mut impl Write) -> std::io::Result<()> {
    writeln!(w, "{{\"rehost_traffic\":{VERSION}}}")
}

/// Writes one exchange as one line.
pub fn write_exchange(w: &mut impl Write, x: &Exchange) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(x).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)
}

/// Appends one exchange as [`write_exchange`] writes it — the same bytes — straight from the
/// heads as they were on the wire (CRLF line endings, parsed here by `httparse`) and the bodies:
/// the recording proxy's writer encodes every exchange this way, without building an
/// [`Exchange`] of owned strings first. A head that does not parse is written with what there
/// is (it cannot happen: the proxy relayed it after parsing it).
pub fn append_raw(
    line: &mut Vec<u8>,
    req_head: &[u8],
    req_body: &[u8],
    resp_head: &[u8],
    resp_body: &[u8],
    truncated: bool,
) {
    let mut hs = [httparse::EMPTY_HEADER; crate::http::MAX_HEADERS];
    let mut req = httparse::Request::new(&mut hs);
    let _ = req.parse(req_head);
    line.extend_from_slice(b"{\"request\":{\"method\":");
    json_str(line, req.method.unwrap_or(""));
    line.extend_from_slice(b",\"target\":");
    json_str(line, req.path.unwrap_or(""));
    fields_body(line, req.headers, req_body);
    let mut hs = [httparse::EMPTY_HEADER; crate::http::MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut hs);
    let _ = resp.parse(resp_head);
    line.extend_from_slice(b",\"response\":{\"status\":");
    line.extend_from_slice(resp.code.unwrap_or(0).to_string().as_bytes());
    fields_body(line, resp.headers, resp_body);
    if truncated {
        line.extend_from_slice(b",\"truncated\":true");
    }
    line.extend_from_slice(b"}\n");
}

/// `,"headers":[...],"body":"BASE64"}`
fn fields_body(line: &mut Vec<u8>, headers: &[httparse::Header<'_>], body: &[u8]) {
    line.extend_from_slice(b",\"headers\":[");
    for (i, h) in headers.iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        line.extend_from_slice(b"{\"name\":");
        json_str(line, h.name);
        match std::str::from_utf8(h.value) {
            Ok(v) => {
                line.extend_from_slice(b",\"value\":");
                json_str(line, v);
            }
            Err(_) => {
                line.extend_from_slice(b",\"value_b64\":\"");
                b64(line, h.value);
                line.push(b'"');
            }
        }
        line.push(b'}');
    }
    line.extend_from_slice(b"],\"body\":\"");
    b64(line, body);
    line.extend_from_slice(b"\"}");
}

fn b64(line: &mut Vec<u8>, bytes: &[u8]) {
    let at = line.len();
    let n = base64::encoded_len(bytes.len(), true).expect("a body below isize::MAX");
    line.resize(at + n, 0);
    let _ = B64.encode_slice(bytes, &mut line[at..]);
}

/// A JSON string as `serde_json` writes it: `"` and `\` escaped, control characters as `\b`,
/// `\t`, `\n`, `\f`, `\r` or `\u00XX`, everything else as it is.
fn json_str(line: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    line.push(b'"');
    let b = s.as_bytes();
    let mut from = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0c => b"\\f",
            b'\r' => b"\\r",
            0..=0x1f => &[],
            _ => continue,
        };
        line.extend_from_slice(&b[from..i]);
        if esc.is_empty() {
            line.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(c >> 4) as usize],
                HEX[(c & 0xf) as usize],
            ]);
        } else {
            line.extend_from_slice(esc);
        }
        from = i + 1;
    }
    line.extend_from_slice(&b[from..]);
    line.push(b'"');
}

/// Reads the exchanges of a traffic file one by one: `(line number, exchange or why not)`.
/// The first line must name a version this rehost reads.
pub struct Reader<R: BufRead> {
    lines: std::io::Lines<R>,
    line: usize,
}

impl<R: BufRead> Reader<R> {
    pub fn new(r: R) -> Result<Self, String> {
        let mut lines = r.lines();
        let first = match lines.next() {
            Some(Ok(l)) => l,
            Some(Err(e)) => return Err(format!("line 1: {e}")),
            None => return Err("the file is empty: no {\"rehost_traffic\":1} line".into()),
        };
        let v: serde_json::Value = serde_json::from_str(&first).map_err(|_| {
            "line 1 is not {\"rehost_traffic\":1}: this is not a rehost traffic file".to_string()
        })?;
        match v.get("rehost_traffic").and_then(|v| v.as_u64()) {
            Some(n) if n == u64::from(VERSION) => Ok(Reader { lines, line: 1 }),
            Some(n) => Err(format!(
                "traffic format version {n}; this rehost reads version {VERSION}"
            )),
            None => Err(
                "line 1 is not {\"rehost_traffic\":1}: this is not a rehost traffic file".into(),
            ),
        }
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = (usize, Result<Exchange, String>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let l = self.lines.next()?;
            self.line += 1;
            match l {
                Ok(l) if l.trim().is_empty() => continue,
                Ok(l) => {
                    return Some((
                        self.line,
                        serde_json::from_str(&l).map_err(|e| format!("{e}")),
                    ));
                }
                Err(e) => return Some((self.line, Err(e.to_string()))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Request, Response, fields};

    /// What `write_exchange` makes of the same heads and bodies (the format's reference).
    fn by_serde(rh: &[u8], rb: &[u8], sh: &[u8], sb: &[u8], truncated: bool) -> Vec<u8> {
        let mut hs = [httparse::EMPTY_HEADER; crate::http::MAX_HEADERS];
        let mut req = httparse::Request::new(&mut hs);
        let _ = req.parse(rh);
        let request = Request {
            method: req.method.unwrap_or("").into(),
            target: req.path.unwrap_or("").into(),
            headers: fields(req.headers),
            body: rb.to_vec(),
        };
        let mut hs = [httparse::EMPTY_HEADER; crate::http::MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut hs);
        let _ = resp.parse(sh);
        let response = Response {
            status: resp.code.unwrap_or(0),
            reason: String::new(),
            headers: fields(resp.headers),
            body: sb.to_vec(),
            keep_alive: false,
        };
        let mut out = Vec::new();
        write_exchange(
            &mut out,
            &Exchange::new(&request, Some(&response), truncated),
        )
        .unwrap();
        out
    }

    #[test]
    fn the_direct_encoding_is_the_format_byte_for_byte() {
        let rh =
            b"POST /a?q=\"x\"&b=\\ HTTP/1.1\r\nHost: h\r\nX-Bin: \xff\xfe\r\nX-Tab: a\tb\r\n\r\n";
        let sh = b"HTTP/1.1 201 Created\r\nContent-Type: text/plain; charset=\"utf-8\"\r\nX-\xc3\xa9: \xc3\xa9\x7f\r\n\r\n";
        for t in [false, true] {
            let mut line = Vec::new();
            append_raw(&mut line, rh, b"\x00\x01body", sh, b"", t);
            assert_eq!(
                String::from_utf8_lossy(&line),
                String::from_utf8_lossy(&by_serde(rh, b"\x00\x01body", sh, b"", t))
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_heads_encode_as_serde_does(
            value in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            path in "/[ -~]{0,30}",
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100),
            status in 100u16..600,
        ) {
            let value: Vec<u8> = value.into_iter().filter(|b| *b != b'\r' && *b != b'\n').collect();
            let path: String = path.chars().filter(|c| *c != ' ').collect();
            let mut rh = format!("GET {path} HTTP/1.1\r\nX-V: ").into_bytes();
            rh.extend_from_slice(&value);
            rh.extend_from_slice(b"\r\n\r\n");
            let mut sh = format!("HTTP/1.1 {status} S\r\nX-W: ").into_bytes();
            sh.extend_from_slice(&value);
            sh.extend_from_slice(b"\r\n\r\n");
            let mut line = Vec::new();
            append_raw(&mut line, &rh, &body, &sh, &body, false);
            proptest::prop_assert_eq!(line, by_serde(&rh, &body, &sh, &body, false));
        }
    }
}
