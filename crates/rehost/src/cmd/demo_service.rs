//! `rehost demo-service`: the small stateful service the demo migrates (hidden from help).
//!
//! It stores what clients `PUT` as files under its data directory (`writes/ID`), answers them
//! back with `GET`, needs its TLS key file to start (the key lives apart from the data, as
//! M 2.319 warns), and keeps each client's connection open (HTTP/1.1 keep-alive): the data,
//! the key and the persistent connections a migration has to carry over. It speaks the
//! contract of rehost's HTTP write load (`writes = "http"`): `PUT /rehost-writes/ID` answers
//! 201 once the file is written and synced, `GET /rehost-writes/ID` 200 or 404.
//!
//! `start` runs it detached (its own session, no terminal, output to nowhere), waits until it
//! answers, and writes its pid file; `stop` ends the process that pid file names — only when
//! that process is this service started with this pid file — and waits until it is gone. A
//! service ends by itself after `--exit-after` (10 minutes), so a demo that was interrupted
//! leaves nothing running for long. It listens on loopback addresses only.

use crate::cli::{DemoServiceAction, DemoServiceArgs};
use crate::exit;
use rehost_compat::http::{Limits, read_request, tokens};
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The most connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 64;
/// Caps on a request (the demo stores small writes).
const LIMITS: Limits = Limits {
    head: 16 * 1024,
    body: 64 * 1024,
};
/// The answer to `GET /`.
const UP: &str = "billing demo service: up\n";

pub fn run(args: &DemoServiceArgs) -> i32 {
    let r = match &args.action {
        DemoServiceAction::Start(s) => start(s),
        DemoServiceAction::Serve(s) => serve(s),
        DemoServiceAction::Stop { pid_file } => stop(pid_file),
    };
    match r {
        Ok(()) => exit::OK,
        Err(e) => {
            crate::term::error(&format!("demo service: {e}"));
            exit::TROUBLE
        }
    }
}

/// Whether the service answers `GET /` at `addr`.
fn answers(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = Vec::new();
    let _ = s.take(4096).read_to_end(&mut answer);
    answer.starts_with(b"HTTP/1.1 200") && answer.ends_with(UP.as_bytes())
}

pub(super) fn start(s: &crate::cli::DemoServe) -> Result<(), String> {
    if !s.listen.ip().is_loopback() {
        return Err(format!(
            "listens on loopback addresses only, not {}",
            s.listen
        ));
    }
    // The service holds its key: without it, it does not start.
    std::fs::metadata(&s.key).map_err(|e| {
        format!(
            "its TLS key {} cannot be read ({e}): it does not start without it",
            s.key.display()
        )
    })?;
    if let Some(pid) = running(&s.pid_file)
        && answers(s.listen)
    {
        println!(
            "billing demo service already runs on {} (pid {pid})",
            s.listen
        );
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(|e| format!("its own executable: {e}"))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["demo-service", "serve", "--listen"])
        .arg(s.listen.to_string())
        .arg("--data")
        .arg(&s.data)
        .arg("--key")
        .arg(&s.key)
        .arg("--pid-file")
        .arg(&s.pid_file)
        .arg("--exit-after")
        .arg(&s.exit_after)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid(2) is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| format!("start: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answers(s.listen) {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "it ended at once ({status}): is {} in use?",
                s.listen
            ));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("it did not answer on {} within 10 s", s.listen));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(&s.pid_file, format!("{}\n", child.id()))
        .map_err(|e| format!("write {}: {e}", s.pid_file.display()))?;
    println!(
        "billing demo service started on {} (pid {})",
        s.listen,
        child.id()
    );
    Ok(())
}

/// The pid in `pid_file` when that process is a demo service serving with this pid file.
fn running(pid_file: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(pid_file).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let ours = std::fs::canonicalize(pid_file).ok()?;
    // Its pid file as it was given, relative to its working directory.
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
    let serving = args
        .windows(2)
        .any(|w| w == [&b"demo-service"[..], b"serve"]);
    let same_file = args.windows(2).any(|w| {
        let given = Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(w[1]));
        w[0] == b"--pid-file" && std::fs::canonicalize(cwd.join(given)).is_ok_and(|p| p == ours)
    });
    (serving && same_file).then_some(pid)
}

/// Whether `pid` still runs: it exists and has not ended (a zombie, its parent not having
/// reaped it yet — `rehost demo` starts the old service itself — has ended).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses, which may hold anything.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_none_or(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

pub(super) fn stop(pid_file: &Path) -> Result<(), String> {
    let Some(pid) = running(pid_file) else {
        println!("billing demo service is not running");
        let _ = std::fs::remove_file(pid_file);
        return Ok(());
    };
    // SAFETY: kill(2) on a pid checked above to be this service's.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        if Instant::now() > deadline {
            // SAFETY: as above.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        if Instant::now() > deadline + Duration::from_secs(5) {
            return Err(format!("pid {pid} did not end"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = std::fs::remove_file(pid_file);
    println!("billing demo service stopped (pid {pid})");
    Ok(())
}

fn serve(s: &crate::cli::DemoServe) -> Result<(), String> {
    if !s.listen.ip().is_loopback() {
        return Err(format!(
            "listens on loopback addresses only, not {}",
            s.listen
        ));
    }
    std::fs::read(&s.key).map_err(|e| format!("its TLS key {}: {e}", s.key.display()))?;
    let writes = s.data.join("writes");
    std::fs::create_dir_all(&writes).map_err(|e| format!("{}: {e}", writes.display()))?;
    let exit_after = rehost_plan::parse_duration(&s.exit_after)
        .ok_or_else(|| format!("--exit-after {:?} is not a duration", s.exit_after))?;
    std::thread::spawn(move || {
        std::thread::sleep(exit_after);
        std::process::exit(0);
    });
    let listener = TcpListener::bind(s.listen).map_err(|e| format!("{}: {e}", s.listen))?;
    let open = Arc::new(AtomicUsize::new(0));
    let writes = Arc::new(writes);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let (open, writes) = (open.clone(), writes.clone());
        std::thread::spawn(move || {
            let _ = connection(stream, &writes);
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(())
}

/// One client's connection, kept open between requests until it closes or idles 60 s.
fn connection(stream: TcpStream, writes: &Path) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut out = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    while let Ok(Some(req)) = read_request(&mut r, &LIMITS) {
        let (status, body) = answer(&req.method, &req.target, &req.body, writes);
        let reason = match status {
            200 => "OK",
            201 => "Created",
            404 => "Not Found",
            405 => "Method Not Allowed",
            _ => "Internal Server Error",
        };
        out.write_all(
            format!(
                "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )?;
        out.write_all(&body)?;
        if tokens(&req.headers, "connection")
            .iter()
            .any(|t| t == "close")
        {
            break;
        }
    }
    Ok(())
}

/// What a request gets: `GET /`, and `PUT`/`GET /rehost-writes/ID` (ID digits only).
fn answer(method: &str, target: &str, body: &[u8], writes: &Path) -> (u16, Vec<u8>) {
    if target == "/" {
        return match method {
            "GET" | "HEAD" => (200, UP.into()),
            _ => (405, Vec::new()),
        };
    }
    let Some(id) = target
        .strip_prefix("/rehost-writes/")
        .filter(|id| !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()))
    else {
        return (404, Vec::new());
    };
    let file: PathBuf = writes.join(id);
    match method {
        "PUT" => match store(&file, body) {
            Ok(()) => (201, Vec::new()),
            Err(e) => (500, format!("{e}\n").into_bytes()),
        },
        "GET" => match std::fs::read(&file) {
            Ok(content) => (200, content),
            Err(_) => (404, Vec::new()),
        },
        _ => (405, Vec::new()),
    }
}

/// The write in its own file, synced before it is acknowledged.
fn store(file: &Path, body: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(file)?;
    f.write_all(body)?;
    f.sync_all()
}
