//! The structural comparison of two answers to the same request.
//!
//! Compared: the status; the header fields but the ignored ones ([`ignored_header`]), by
//! lower-cased name, several fields of one name joined in order; `Set-Cookie` by the cookies'
//! names only (values are credentials and change per session); the body after removing a
//! gzip/deflate content coding: as JSON trees where both are JSON (fields named by a path like
//! `$.items[3].price`), else as text lines by position where both are UTF-8, else by length
//! and BLAKE3 digest.
//!
//! Not compared: the ignored headers, header order and letter case, Content-Length and
//! chunk boundaries (the framing; the bodies are compared instead), the compressed bytes (the
//! decoded body is compared), Set-Cookie values, timing.

use crate::http::{Header, Response, tokens};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;

/// The most differences kept for one pair of answers; more are counted in one field
/// `(more differences)`.
pub const MAX_PER_PAIR: usize = 64;
/// The longest shown value, in characters.
pub const SHOWN: usize = 120;

/// What every comparison leaves out, said with every verdict.
pub const NOT_COMPARED: &str = "hop-by-hop headers (Connection, Keep-Alive, Transfer-Encoding, TE, \
Trailer, Upgrade, Proxy-*), date-like headers (Date, Expires, Last-Modified, Age), Content-Length \
and chunk boundaries (bodies are compared instead), Set-Cookie values (cookie names are compared), \
the compressed bytes of a gzip/deflate body (the decoded body is compared), header order and \
letter case, timing";

/// Headers that are not compared: hop-by-hop, framing, and date-like ones.
pub fn ignored_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    crate::http::is_hop_by_hop(&n)
        || matches!(
            n.as_str(),
            "date" | "expires" | "last-modified" | "age" | "server-timing"
        )
}

/// Headers whose values are credentials: never shown.
pub fn credential_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
    )
}

/// The text shown in place of a credential.
pub const CREDENTIAL: &str = "(credential, not shown)";

/// One difference between two answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// `status`, `header NAME`, `$.path`, `body line N`, `body`.
    pub field: String,
    pub a: String,
    pub b: String,
}

fn clip_value(s: &str) -> String {
    crate::clip(s, SHOWN)
}

fn header_map(headers: &[Header]) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (n, v) in headers {
        if ignored_header(n) {
            continue;
        }
        let key = n.to_ascii_lowercase();
        let value = if key == "set-cookie" {
            // The cookie's name only.
            let s = String::from_utf8_lossy(v);
            s.split('=').next().unwrap_or("").trim().to_string()
        } else {
            String::from_utf8_lossy(v).trim().to_string()
        };
        m.entry(key).or_default().push(value);
    }
    m.into_iter().map(|(k, v)| (k, v.join(", "))).collect()
}

/// The body with its content coding removed (gzip, x-gzip, deflate), at most `cap` bytes;
/// `None` when it does not decode (it is then compared as sent).
fn decoded(r: &Response, cap: u64) -> Option<Vec<u8>> {
    let codings = tokens(&r.headers, "content-encoding");
    let mut body = r.body.clone();
    for c in codings.iter().rev() {
        let mut out = Vec::new();
        let ok = match c.as_str() {
            "identity" => {
                continue;
            }
            "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(&body[..])
                .take(cap + 1)
                .read_to_end(&mut out)
                .is_ok(),
            "deflate" => {
                let z = flate2::read::ZlibDecoder::new(&body[..])
                    .take(cap + 1)
                    .read_to_end(&mut out)
                    .is_ok();
                z || {
                    out.clear();
                    flate2::read::DeflateDecoder::new(&body[..])
                        .take(cap + 1)
                        .read_to_end(&mut out)
                        .is_ok()
                }
            }
            _ => return None,
        };
        if !ok || out.len() as u64 > cap {
            return None;
        }
        body = out;
    }
    Some(body)
}

/// Compares two answers; at most [`MAX_PER_PAIR`] differences.
pub fn diff(a: &Response, b: &Response, cap: u64) -> Vec<Difference> {
    let mut out = Vec::new();
    if a.status != b.status {
        out.push(Difference {
            field: "status".into(),
            a: a.status.to_string(),
            b: b.status.to_string(),
        });
    }
    let (ha, hb) = (header_map(&a.headers), header_map(&b.headers));
    let names: std::collections::BTreeSet<&String> = ha.keys().chain(hb.keys()).collect();
    for n in names {
        let (va, vb) = (ha.get(n), hb.get(n));
        if va != vb {
            let show = |v: Option<&String>| match v {
                None => "(absent)".to_string(),
                Some(_) if credential_header(n) => CREDENTIAL.to_string(),
                Some(v) => clip_value(v),
            };
            out.push(Difference {
                field: format!("header {n}"),
                a: show(va),
                b: show(vb),
            });
        }
    }
    let (ba, bb) = match (decoded(a, cap), decoded(b, cap)) {
        (Some(x), Some(y)) => (x, y),
        _ => (a.body.clone(), b.body.clone()),
    };
    if ba != bb {
        body_diff(&ba, &bb, &mut out);
    }
    if out.len() > MAX_PER_PAIR {
        let more = out.len() - MAX_PER_PAIR;
        out.truncate(MAX_PER_PAIR);
        out.push(Difference {
            field: "(more differences)".into(),
            a: format!("{more} more"),
            b: String::new(),
        });
    }
    out
}

/// Compares two outputs of a command (`name`: `stdout`, `stderr`) the way bodies are compared:
/// JSON paths (`stdout $.a`), text lines (`stdout line 3`), or a digest (`stdout`).
pub fn output_diff(name: &str, a: &[u8], b: &[u8]) -> Vec<Difference> {
    let mut out = Vec::new();
    if a != b {
        body_diff(a, b, &mut out);
    }
    for d in &mut out {
        d.field = match d.field.strip_prefix("body") {
            Some(rest) => format!("{name}{rest}"),
            None => format!("{name} {}", d.field),
        };
    }
    out.truncate(MAX_PER_PAIR);
    out
}

fn body_diff(a: &[u8], b: &[u8], out: &mut Vec<Difference>) {
    let json = |x: &[u8]| {
        let t = x.trim_ascii_start();
        if t.starts_with(b"{") || t.starts_with(b"[") {
            serde_json::from_slice::<serde_json::Value>(x).ok()
        } else {
            None
        }
    };
    if let (Some(ja), Some(jb)) = (json(a), json(b)) {
        json_diff("$", &ja, &jb, out);
        return;
    }
    if let (Ok(ta), Ok(tb)) = (std::str::from_utf8(a), std::str::from_utf8(b)) {
        let (la, lb): (Vec<&str>, Vec<&str>) = (ta.lines().collect(), tb.lines().collect());
        for i in 0..la.len().max(lb.len()) {
            let (x, y) = (la.get(i), lb.get(i));
            if x != y {
                out.push(Difference {
                    field: format!("body line {}", i + 1),
                    a: x.map_or("(absent)".into(), |s| clip_value(s)),
                    b: y.map_or("(absent)".into(), |s| clip_value(s)),
                });
                if out.len() > MAX_PER_PAIR {
                    return;
                }
            }
        }
        if out.is_empty() || la == lb {
            // Same lines, different line endings or a final newline.
            out.push(Difference {
                field: "body line endings".into(),
                a: format!("{} bytes", a.len()),
                b: format!("{} bytes", b.len()),
            });
        }
        return;
    }
    let d = |x: &[u8]| {
        format!(
            "{} bytes, blake3 {}",
            x.len(),
            &blake3::hash(x).to_hex()[..16]
        )
    };
    out.push(Difference {
        field: "body".into(),
        a: d(a),
        b: d(b),
    });
}

fn key_path(base: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        format!("{base}.{key}")
    } else {
        format!("{base}[{}]", serde_json::Value::String(key.to_string()))
    }
}

fn show_json(v: Option<&serde_json::Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => clip_value(&v.to_string()),
    }
}

fn json_diff(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<Difference>) {
    use serde_json::Value;
    if out.len() > MAX_PER_PAIR {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = key_path(path, k);
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => json_diff(&p, va, vb, out),
                    (va, vb) => out.push(Difference {
                        field: p,
                        a: show_json(va),
                        b: show_json(vb),
                    }),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                out.push(Difference {
                    field: format!("{path} (length)"),
                    a: x.len().to_string(),
                    b: y.len().to_string(),
                });
            }
            for (i, (va, vb)) in x.iter().zip(y.iter()).enumerate() {
                json_diff(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        _ if a == b => {}
        _ => out.push(Difference {
            field: path.to_string(),
            a: show_json(Some(a)),
            b: show_json(Some(b)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            reason: String::new(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            body: body.as_bytes().to_vec(),
            keep_alive: true,
        }
    }

    #[test]
    fn json_paths_headers_and_ignored_fields() {
        let a = r(
            200,
            &[("Date", "x"), ("X-V", "1"), ("Set-Cookie", "sid=secret1")],
            r#"{"items":[{"price":1},{"price":2}],"a b":1}"#,
        );
        let b = r(
            200,
            &[("Date", "y"), ("X-V", "2"), ("Set-Cookie", "sid=secret2")],
            r#"{"items":[{"price":1},{"price":3}],"a b":1}"#,
        );
        let d = diff(&a, &b, 1 << 20);
        let fields: Vec<&str> = d.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["header x-v", "$.items[1].price"]);
        assert_eq!((d[1].a.as_str(), d[1].b.as_str()), ("2", "3"));
        let c = r(200, &[("Set-Cookie", "other=secret3")], "");
        let d = diff(&a, &c, 1 << 20);
        let sc = d.iter().find(|d| d.field == "header set-cookie").unwrap();
        assert_eq!(sc.a, CREDENTIAL);
        assert!(!format!("{d:?}").contains("secret"));
    }

    #[test]
    fn text_lines_and_binary_digest() {
        let d = diff(&r(200, &[], "a\nb\nc"), &r(200, &[], "a\nB\nc"), 1 << 20);
        assert_eq!(d[0].field, "body line 2");
        let mut x = r(200, &[], "");
        x.body = vec![0xff, 0, 1];
        let mut y = x.clone();
        y.body = vec![0xff, 0, 2];
        assert_eq!(diff(&x, &y, 1 << 20)[0].field, "body");
    }

    #[test]
    fn gzip_bodies_are_compared_decoded() {
        use std::io::Write;
        let gz = |level, s: &str| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
            e.write_all(s.as_bytes()).unwrap();
            e.finish().unwrap()
        };
        let text = "same text ".repeat(50);
        let mut a = r(200, &[("Content-Encoding", "gzip")], "");
        a.body = gz(1, &text);
        let mut b = a.clone();
        b.body = gz(9, &text);
        assert_ne!(a.body, b.body);
        assert!(diff(&a, &b, 1 << 20).is_empty());
    }
}
