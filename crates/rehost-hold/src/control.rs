//! The control socket: a Unix socket in a private directory through which `rehost hold
//! --switch` and the `switch` step ask a running hold to switch.
//!
//! The directory must be private (`rehost_tree::private`: owned by the effective uid, not
//! writable by group or others; refused otherwise, never repaired). The socket is bound and
//! reached through the directory's descriptor (`/proc/self/fd/N/NAME`), so a path component
//! swapped later redirects nothing; the client refuses a socket file not owned by it, and both
//! sides refuse a peer of another uid (`SO_PEERCRED`). One request, one answer, each a JSON
//! line, bounded.

use crate::relay::Hold;
use crate::{HoldError, SwitchReport};
use rehost_tree::private::{PrivateDir, euid};
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A request is one line of at most this many bytes.
const MAX_REQUEST: u64 = 4096;
/// An answer is one line of at most this many bytes (a report names at most 1000 ended
/// connections).
const MAX_ANSWER: u64 = 1 << 20;
/// A client has this long to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Serialize, Deserialize)]
struct Request {
    switch: SocketAddr,
    timeout_ms: u64,
}

/// The state directory a hold uses when given none: `$XDG_RUNTIME_DIR/rehost-hold`, else
/// `/tmp/rehost-hold-UID` (refused if someone else made it first: then give --state-dir).
pub fn default_state_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("rehost-hold"),
        _ => PathBuf::from(format!("/tmp/rehost-hold-{}", euid())),
    }
}

/// The control socket's name for a hold listening on `listen`: one hold per address.
pub fn socket_name(listen: &SocketAddr) -> String {
    format!(
        "hold-{}-{}.sock",
        listen.ip().to_string().replace(':', "_"),
        listen.port()
    )
}

/// `/proc/self/fd/N/NAME`: the name in the directory held open, whatever its path is now.
fn through(dir: &PrivateDir, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}/{name}", dir.fd().as_raw_fd()))
}

fn stat_at(dir: &PrivateDir, name: &str) -> io::Result<libc::stat> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `st` is a valid out-pointer; the name a NUL-terminated string.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::fstatat(
            dir.fd().as_raw_fd(),
            c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// The uid of the process at the other end of a Unix socket.
fn peer_uid(s: &UnixStream) -> io::Result<u32> {
    // SAFETY: `cred` is a valid out-buffer of `len` bytes.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// Opens (creating it 0700 if missing) the private state directory and binds the hold's
/// control socket in it; then answers requests on a thread of its own until the process ends.
/// Returns the socket's path (for messages).
pub fn serve(hold: &Hold, state_dir: &Path) -> Result<PathBuf, HoldError> {
    let listen = hold
        .local_addr()
        .map_err(HoldError::io("the listening socket's address"))?;
    let dir = PrivateDir::open(state_dir, true)
        .map_err(HoldError::private)?
        .ok_or_else(|| HoldError::NotRunning {
            listen,
            path: state_dir.to_owned(),
        })?;
    let name = socket_name(&listen);
    let shown = state_dir.join(&name);
    match stat_at(&dir, &name) {
        // A socket left by a hold that ended (the TCP address was free, so none runs now).
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFSOCK => {
            let c = CString::new(name.as_str()).expect("no NUL in a socket name");
            // SAFETY: a valid directory descriptor and NUL-terminated name.
            if unsafe { libc::unlinkat(dir.fd().as_raw_fd(), c.as_ptr(), 0) } != 0 {
                return Err(HoldError::io(format!(
                    "removing the old {}",
                    shown.display()
                ))(io::Error::last_os_error()));
            }
        }
        Ok(_) => {
            return Err(HoldError::NotOurs {
                path: shown,
                me: euid(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(HoldError::io(shown.display().to_string())(e)),
    }
    let listener = UnixListener::bind(through(&dir, &name))
        .map_err(HoldError::io(format!("binding {}", shown.display())))?;
    let c = CString::new(name.as_str()).expect("no NUL in a socket name");
    // SAFETY: a valid directory descriptor and NUL-terminated name.
    unsafe { libc::fchmodat(dir.fd().as_raw_fd(), c.as_ptr(), 0o600, 0) };
    let hold = hold.clone();
    std::thread::Builder::new()
        .name("hold-control".into())
        .spawn(move || {
            let _dir = dir;
            for s in listener.incoming() {
                let Ok(s) = s else { continue };
                if let Err(e) = answer(&hold, s) {
                    hold.log(&format!("a control request failed: {e}"));
                }
            }
        })
        .map_err(HoldError::io("the control thread"))?;
    Ok(shown)
}

/// Answers one request on the control socket (one at a time: switches never overlap).
fn answer(hold: &Hold, s: UnixStream) -> Result<(), String> {
    let me = euid();
    let peer = peer_uid(&s).map_err(|e| format!("SO_PEERCRED: {e}"))?;
    if peer != me {
        return Err(format!(
            "refused a request from uid {peer}: only uid {me} steers this hold"
        ));
    }
    let _ = s.set_read_timeout(Some(REQUEST_TIMEOUT));
    let mut line = String::new();
    BufReader::new((&s).take(MAX_REQUEST))
        .read_line(&mut line)
        .map_err(|e| format!("reading the request: {e}"))?;
    if !line.ends_with('\n') && line.len() as u64 >= MAX_REQUEST {
        return Err(format!(
            "refused a request longer than {MAX_REQUEST} bytes (not read further)"
        ));
    }
    let req: Request = serde_json::from_str(line.trim_end())
        .map_err(|e| format!("the request does not read: {e}"))?;
    let timeout = Duration::from_millis(req.timeout_ms.clamp(1, 3_600_000));
    let report = hold.switch(req.switch, timeout);
    hold.log(&summary(&report));
    let mut out = serde_json::to_vec(&report).map_err(|e| e.to_string())?;
    out.push(b'\n');
    (&s).write_all(&out)
        .map_err(|e| format!("answering the switch: {e}"))
}

/// One line on what a switch did, for the hold's log.
pub fn summary(r: &SwitchReport) -> String {
    match &r.failure {
        Some(f) => format!("switch to {} FAILED: {f}", r.to),
        None if !r.paused && r.switched => format!("already forwarding to {}", r.to),
        None => format!(
            "switched from {} to {}: accept paused {} ms ({} waiting when it resumed); {} connection(s) drained, {} ended",
            r.from, r.to, r.paused_ms, r.queued, r.drained, r.ended_count
        ),
    }
}

/// Asks the hold listening on `listen` (its control socket in `state_dir`) to switch to `to`
/// within `timeout`; returns its report once new connections go where it says.
pub fn switch(
    state_dir: &Path,
    listen: SocketAddr,
    to: SocketAddr,
    timeout: Duration,
) -> Result<SwitchReport, HoldError> {
    let name = socket_name(&listen);
    let shown = state_dir.join(&name);
    let not_running = || HoldError::NotRunning {
        listen,
        path: shown.clone(),
    };
    let Some(dir) = PrivateDir::open(state_dir, false).map_err(HoldError::private)? else {
        return Err(not_running());
    };
    let me = euid();
    match stat_at(&dir, &name) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFSOCK && st.st_uid == me => {}
        Ok(_) => return Err(HoldError::NotOurs { path: shown, me }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_running()),
        Err(e) => return Err(HoldError::io(shown.display().to_string())(e)),
    }
    let s = match UnixStream::connect(through(&dir, &name)) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return Err(not_running()),
        Err(e) => {
            return Err(HoldError::io(format!("connecting to {}", shown.display()))(
                e,
            ));
        }
    };
    let peer = peer_uid(&s).map_err(HoldError::io("SO_PEERCRED"))?;
    if peer != me {
        return Err(HoldError::PeerUid {
            path: shown,
            peer,
            me,
        });
    }
    let mut req = serde_json::to_vec(&Request {
        switch: to,
        timeout_ms: timeout.as_millis() as u64,
    })
    .expect("a request serialises");
    req.push(b'\n');
    (&s).write_all(&req)
        .map_err(HoldError::io(format!("writing to {}", shown.display())))?;
    // The hold answers within the time box and its probes; a hold that hangs is not waited
    // for forever.
    let _ = s.set_read_timeout(Some(timeout + Duration::from_secs(10)));
    let mut line = String::new();
    BufReader::new((&s).take(MAX_ANSWER))
        .read_line(&mut line)
        .map_err(HoldError::io(format!(
            "reading the answer from {}",
            shown.display()
        )))?;
    serde_json::from_str(line.trim_end()).map_err(|e| HoldError::Answer {
        listen,
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::bind;
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};

    #[test]
    fn garbage_and_an_over_long_line_from_a_same_uid_peer_switch_nothing_and_the_hold_still_switches()
     {
        let old = TcpListener::bind("127.0.0.1:0").unwrap();
        let new = TcpListener::bind("127.0.0.1:0").unwrap();
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let kept = Arc::clone(&lines);
        let hold = Hold::new(
            bind("127.0.0.1:0".parse().unwrap()).unwrap(),
            old.local_addr().unwrap(),
            100,
            Arc::new(move |l: &str| kept.lock().unwrap().push(l.to_owned())),
        )
        .unwrap();
        let runner = hold.clone();
        std::thread::spawn(move || runner.run());
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let path = serve(&hold, &state).unwrap();
        let to = new.local_addr().unwrap();
        let sent: Vec<Vec<u8>> = vec![
            b"not json at all\n".to_vec(),
            vec![0xff, 0xfe, 0, b'\n'],
            format!("{{\"switch\":\"{to}\",\"timeout_ms\":\"soon\"}}\n").into_bytes(),
            // A request far over the 4 KiB bound, its switch at the end: never read.
            {
                let mut v = vec![b' '; 64 * 1024];
                v.extend(format!("{{\"switch\":\"{to}\",\"timeout_ms\":100}}\n").into_bytes());
                v
            },
        ];
        for bytes in &sent {
            let mut s = UnixStream::connect(&path).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let _ = s.write_all(bytes);
            let _ = s.shutdown(std::net::Shutdown::Write);
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
            assert!(answer.is_empty(), "an answer to garbage: {answer:?}");
            assert_eq!(
                hold.upstream(),
                old.local_addr().unwrap(),
                "garbage moved the hold"
            );
        }
        // Each logged (after its connection was closed: waited for).
        let refused = || {
            lines
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.starts_with("a control request failed: "))
                .count()
        };
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while refused() < sent.len() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(refused(), sent.len(), "{:?}", lines.lock().unwrap());
        assert!(
            lines.lock().unwrap()[3].contains("longer than 4096 bytes"),
            "{:?}",
            lines.lock().unwrap()
        );
        // And a real request still switches.
        let report = switch(
            &state,
            hold.local_addr().unwrap(),
            to,
            Duration::from_secs(2),
        )
        .unwrap();
        assert!(report.switched && report.failure.is_none(), "{report:?}");
        assert_eq!(hold.upstream(), to);
        let _client = TcpStream::connect(hold.local_addr().unwrap()).unwrap();
        let (_served, _) = new.accept().unwrap();
    }
}
