//! rehost's HTTP write load (`writes = "http"`): `PUT {path}/{id}` to a service's old host,
//! one request at a time over a kept-alive connection, and after the run `GET {path}/{id}` of
//! every acknowledged id on its new host.
//!
//! The contract with the application (what nginx's WebDAV module does with `dav_methods PUT`,
//! and what an application's own endpoint can do in a few lines): a `2xx` answer to the `PUT`
//! means the write is stored; a `GET` answers `200` for a stored id and `404` for one it does
//! not have. An id is acknowledged once the answer was `2xx` and the id is synced to the acks
//! file (as the PostgreSQL load's). Ids start at the time the load starts, in microseconds, so
//! that a resumed run or a second load never writes an id an earlier one wrote.

use super::{End, LoadCtx, RETRY, SYNC_EVERY, pause};
use crate::recorder::OutputFile;
use rehost_compat::http::{Limits, read_response, write_request};
use std::collections::BTreeSet;
use std::io::{BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the check of the HTTP write load does not compare.
pub const NOT_COMPARED: &str = "the content of each write (only that the new side answers 200 for its id), and writes that were not acknowledged (a request under way when the server went down or the load was stopped)";

/// The least time between the starts of two writes: a small, steady load (at most 500 writes a
/// second), not a benchmark.
const PACE: Duration = Duration::from_millis(2);
/// How long connecting, and each request's answer, may take.
const TIMEOUT: Duration = Duration::from_secs(2);
/// The caps on an answer (a hostile or broken server cannot grow this process).
const LIMITS: Limits = Limits {
    head: 16 * 1024,
    body: 64 * 1024,
};

/// Where the load writes or looks: a service's old or new host, its port and path.
pub(super) struct At {
    pub address: String,
    pub port: u16,
    pub path: String,
}

impl At {
    /// `ADDRESS:PORT`, an IPv6 address in brackets: the `Host` field and the URL's authority.
    fn authority(&self) -> String {
        if self.address.contains(':') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }

    /// `http://ADDRESS:PORT{path}{suffix}`.
    pub fn url(&self, suffix: &str) -> String {
        format!("http://{}{}{suffix}", self.authority(), self.path)
    }
}

/// `service`'s old host (or its new one with `new`) in the run's environment.
pub(super) fn side(
    c: &LoadCtx,
    service: &str,
    port: Option<u16>,
    path: &str,
    new: bool,
) -> Result<At, String> {
    let s = c
        .plan
        .service(service)
        .ok_or_else(|| format!("service `{service}` is not in the plan"))?;
    let host = if new {
        s.new_host
            .as_deref()
            .ok_or_else(|| format!("service `{service}` has no new_host"))?
    } else {
        s.host.as_str()
    };
    let port = s
        .write_port(port)
        .ok_or_else(|| format!("service `{service}`: the port to write to is not known"))?;
    Ok(At {
        address: crate::probe::address(c.plan, c.env, c.ssh_config, host),
        port,
        path: path.to_owned(),
    })
}

/// A kept-alive connection to `at`.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

fn connect(at: &At) -> Result<Conn, String> {
    let addrs = (at.address.as_str(), at.port)
        .to_socket_addrs()
        .map_err(|e| format!("{}: {e}", at.authority()))?;
    let mut last = format!("{}: no address", at.authority());
    for a in addrs {
        match TcpStream::connect_timeout(&a, TIMEOUT) {
            Ok(s) => {
                let set = s
                    .set_read_timeout(Some(TIMEOUT))
                    .and_then(|()| s.set_write_timeout(Some(TIMEOUT)))
                    .and_then(|()| s.set_nodelay(true))
                    .and_then(|()| s.try_clone());
                return match set {
                    Ok(writer) => Ok(Conn {
                        reader: BufReader::new(s),
                        writer,
                    }),
                    Err(e) => Err(format!("{}: {e}", at.authority())),
                };
            }
            Err(e) => last = format!("connect to {a}: {e}"),
        }
    }
    Err(last)
}

/// One request on `conn`: the answer's status and whether the connection may be used again.
fn exchange(conn: &mut Conn, at: &At, method: &str, id: u64) -> Result<(u16, bool), String> {
    let target = format!("{}/{id}", at.path);
    let body = if method == "PUT" {
        format!("rehost write {id}\n")
    } else {
        String::new()
    };
    let headers = [
        ("User-Agent".to_owned(), b"rehost-write-load".to_vec()),
        ("Content-Type".to_owned(), b"text/plain".to_vec()),
    ];
    write_request(
        &mut conn.writer,
        method,
        &target,
        &at.authority(),
        &headers[..if method == "PUT" { 2 } else { 1 }],
        body.as_bytes(),
    )
    .and_then(|()| conn.writer.flush())
    .map_err(|e| format!("{method} {}: {e}", at.url(&format!("/{id}"))))?;
    let r = read_response(&mut conn.reader, method, &LIMITS)
        .map_err(|e| format!("{method} {}: {e}", at.url(&format!("/{id}"))))?;
    Ok((r.status, r.keep_alive))
}

/// The write load: `PUT` after `PUT` to `at` until `stop`, each acknowledged id in `acks`.
pub(super) fn write(at: &At, mut acks: OutputFile, stop: &AtomicBool) -> End {
    let mut next = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64);
    let (mut acked, mut pending) = (Vec::new(), Vec::new());
    let mut errors = 0u64;
    let mut first_error: Option<String> = None;
    let mut conn: Option<Conn> = None;
    let mut synced_at = Instant::now();
    let mut sync_failed = false;
    let mut sync = |acks: &mut OutputFile, pending: &mut Vec<u64>, acked: &mut Vec<u64>| {
        if pending.is_empty() {
            return;
        }
        if acks.sync().is_ok() {
            acked.append(pending);
        } else {
            // Not on disk: not counted as acknowledged either.
            pending.clear();
            sync_failed = true;
        }
    };
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let result = match conn.as_mut() {
            Some(c) => Ok(c),
            None => connect(at).map(|c| conn.insert(c)),
        }
        .and_then(|c| exchange(c, at, "PUT", next));
        // An id is used once, whatever its answer: a write that failed may have been stored.
        let id = next;
        next += 1;
        let failed = match result {
            Ok((status, keep_alive)) => {
                if !keep_alive {
                    conn = None;
                }
                if (200..300).contains(&status) {
                    if writeln!(acks, "{id}").is_ok() {
                        pending.push(id);
                    }
                    None
                } else {
                    Some(format!(
                        "PUT {} answered {status}, not 2xx",
                        at.url(&format!("/{id}"))
                    ))
                }
            }
            Err(e) => {
                conn = None;
                Some(e)
            }
        };
        if synced_at.elapsed() >= SYNC_EVERY {
            synced_at = Instant::now();
            sync(&mut acks, &mut pending, &mut acked);
        }
        if let Some(e) = failed {
            errors += 1;
            first_error.get_or_insert(e);
            if !pause(RETRY, stop) {
                break;
            }
        } else if let Some(rest) = PACE.checked_sub(started.elapsed()) {
            pause(rest, stop);
        }
    }
    sync(&mut acks, &mut pending, &mut acked);
    if sync_failed {
        errors += 1;
    }
    End {
        exit_code: None,
        signal: None,
        output: None,
        errors,
        first_error,
        acks: acks.finish(&[]),
        acked: Some(acked),
    }
}

/// The acknowledged ids that `at` (the new side) answers `200` for; `404` is a missing one.
/// Any other answer, or a connection that fails twice in a row, ends the check with an error
/// naming the id: nothing is counted as found that was not.
pub(super) fn check(at: &At, acked: &[u64]) -> Result<BTreeSet<u64>, String> {
    let mut found = BTreeSet::new();
    let mut conn: Option<Conn> = None;
    for &id in acked {
        let mut tries = 0;
        let status = loop {
            let r = match conn.as_mut() {
                Some(c) => Ok(c),
                None => connect(at).map(|c| conn.insert(c)),
            }
            .and_then(|c| exchange(c, at, "GET", id));
            match r {
                Ok((status, keep_alive)) => {
                    if !keep_alive {
                        conn = None;
                    }
                    break status;
                }
                // A kept-alive connection the server closed meanwhile: once more on a new one.
                Err(_) if tries == 0 => {
                    tries += 1;
                    conn = None;
                }
                Err(e) => return Err(e),
            }
        };
        match status {
            200 => {
                found.insert(id);
            }
            404 => {}
            other => {
                return Err(format!(
                    "GET {} answered {other}: neither 200 (stored) nor 404 (missing)",
                    at.url(&format!("/{id}"))
                ));
            }
        }
    }
    Ok(found)
}
