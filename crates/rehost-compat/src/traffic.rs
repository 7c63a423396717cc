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
