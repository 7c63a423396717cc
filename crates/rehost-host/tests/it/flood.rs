//! Memory under a flood (issue 18): an agent session that receives and never reads grew without
//! bound (3.3 GB in 20 s through an unbounded channel). Both ends are measured as separate
//! processes, by the kernel's own count (`VmHWM`, the peak resident set, in
//! `/proc/PID/status`), while the other end floods:
//!
//! - `rehost agent` whose rehost sends a `cat /dev/zero` and then requests with 16 MiB of content
//!   each, as fast as the pipe takes them, and never reads an answer;
//! - rehost's side of a session ([`AgentConn`]) whose agent sends frames of the largest content
//!   allowed without end while rehost reads none.
//!
//! Each must stay under [`CAP`] for the whole observation window.

use rehost_host::agent::{
    AgentConn, AgentFrame, ClientFrame, MAX_DATA, PROTOCOL_VERSION, Request, Response, write_frame,
};
use rehost_host::{Blob, Bytes, CommandSpec, Program};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The most either end may hold, whatever the other sends.
const CAP: u64 = 256 << 20;
/// How long each end is watched while flooded.
const WINDOW: Duration = Duration::from_secs(4);

/// Peak resident memory (`VmHWM`) of `pid` in bytes, if it still runs.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib << 10)
}

/// Watches `child` for [`WINDOW`], failing as soon as its peak passes [`CAP`]; returns the
/// peak seen.
fn watch(child: &mut Child, what: &str) -> u64 {
    let pid = child.id();
    let start = Instant::now();
    let mut peak = 0;
    while start.elapsed() < WINDOW {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} ended during the flood ({status}) after {:?}",
                start.elapsed()
            );
        }
        if let Some(p) = peak_rss(pid) {
            peak = peak.max(p);
            assert!(
                peak < CAP,
                "{what} holds {} MiB after {:?} of the flood, over the cap of {} MiB",
                peak >> 20,
                start.elapsed(),
                CAP >> 20
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    peak
}

/// Ends `pid` and everything it started (the agent's commands are process groups of their
/// own), children first.
fn kill_tree(pid: u32) {
    let children = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|t| {
            std::fs::read_to_string(t.path().join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>();
    for c in children {
        kill_tree(c);
    }
    // SAFETY: kill(2) only sends a signal, to a process this test started.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
}

/// Dies with the test thread that started it, so nothing outlives a failed test.
fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: prctl(2) is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

/// The shipped agent, unpacked into `dir`.
pub fn unpacked_agent(dir: &Path) -> PathBuf {
    let gz = std::fs::read(super::rehost_bin()).unwrap();
    let mut bin = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut bin).unwrap();
    let path = dir.join("rehost");
    std::fs::write(&path, bin).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    // Another test thread that forked while the file was open for writing holds that fd until
    // its child execs, and exec of the file fails with ETXTBSY meanwhile (CI saw it). One exec
    // that succeeds shows no writer is left, and none can appear: the only writable fd is gone.
    let mut tries = 0;
    loop {
        match Command::new(&path)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
        {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 250 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            r => {
                assert!(
                    r.expect("run the unpacked agent").success(),
                    "agent --version"
                );
                break;
            }
        }
    }
    path
}

/// `rehost agent` with a rehost that floods it and never reads: the command's endless output
/// and the requests behind it used to pile up in the agent (3.3 GB in 20 s).
#[test]
fn an_agent_whose_rehost_never_reads_stays_under_a_fixed_memory_cap() {
    let dir = tempfile::tempdir().unwrap();
    let agent = unpacked_agent(dir.path());
    let mut child = die_with_parent(
        Command::new(&agent)
            .arg("agent")
            .env("REHOST_LOCK_DIR", dir.path().join("locks"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .spawn()
    .unwrap();
    // Held open and never read.
    let _stdout = child.stdout.take().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let root = dir.path().join("tree");
    let writer = std::thread::spawn(move || {
        let hello = ClientFrame::Hello {
            protocol: PROTOCOL_VERSION,
            version: "flood".into(),
            host: Some("flooded".into()),
            root: None,
        };
        let run = ClientFrame::Request {
            id: 1,
            request: Request::Run {
                command: CommandSpec::new(Program::Argv(vec!["cat".into(), "/dev/zero".into()])),
            },
        };
        if write_frame(&mut stdin, &hello).is_err() || write_frame(&mut stdin, &run).is_err() {
            return;
        }
        let piece = vec![7u8; 16 << 20];
        for id in 2.. {
            let stage = ClientFrame::Request {
                id,
                request: Request::Stage {
                    root: Bytes::from(root.as_path()),
                    path: Bytes::from(Path::new("f")),
                    tmp: Bytes::from(Path::new(".rehost-tmp-f")),
                    offset: 0,
                    data: Blob::from(piece.clone()),
                },
            };
            // Blocks once the agent stops reading; fails when it is killed.
            if write_frame(&mut stdin, &stage).is_err() {
                return;
            }
            counter.fetch_add(piece.len() as u64, Ordering::Relaxed);
        }
    });
    let peak = watch(&mut child, "the flooded agent");
    let requests = sent.load(Ordering::Relaxed) >> 24;
    eprintln!(
        "flooded agent: peak resident {} MiB, {requests} request(s) of 16 MiB taken",
        peak >> 20
    );
    kill_tree(child.id());
    let _ = child.wait();
    writer.join().unwrap();
    // The flood reached the agent (it read requests until it stopped reading), and the window
    // was not spent idle: the peak includes what a 16 MiB request costs.
    assert!(requests >= 1, "the agent read no request at all");
    assert!(peak > 16 << 20, "peak {peak} B: the flood did not arrive");
}

/// Environment variable that makes the test below play rehost's side in a child process.
const ROLE: &str = "REHOST_TEST_FLOOD_ROLE";

/// rehost's side of a session whose agent sends frames (each with the largest content a frame
/// may carry) without end, into a session that reads none, as an idle pooled session would.
/// The child process (this test binary again, with [`ROLE`] set) starts the session and then
/// waits on its stdin; the parent measures it.
#[test]
fn a_session_whose_agent_floods_frames_nobody_reads_stays_under_a_fixed_memory_cap() {
    if let Some(dir) = std::env::var_os(ROLE) {
        let dir = PathBuf::from(dir);
        let flooder = die_with_parent(
            Command::new("sh")
                .args(["-c", "set -e; cat \"$0\"; while :; do cat \"$1\"; done"])
                .arg(dir.join("hello"))
                .arg(dir.join("frame"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )
        .spawn()
        .unwrap();
        let (_conn, _) = AgentConn::start(flooder, "old", None, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e:?}"));
        println!("session started");
        // Never reads from the session: waits until the parent ends this process.
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut hello = Vec::new();
    write_frame(
        &mut hello,
        &AgentFrame::Hello {
            protocol: PROTOCOL_VERSION,
            version: "flood".into(),
            arch: std::env::consts::ARCH.into(),
        },
    )
    .unwrap();
    std::fs::write(dir.path().join("hello"), hello).unwrap();
    let mut frame =
        std::io::BufWriter::new(std::fs::File::create(dir.path().join("frame")).unwrap());
    write_frame(
        &mut frame,
        &AgentFrame::Response {
            id: 1,
            response: Response::FileData {
                data: Blob::from(vec![1u8; MAX_DATA]),
            },
        },
    )
    .unwrap();
    frame.flush().unwrap();
    drop(frame);
    let mut child = die_with_parent(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "flood::a_session_whose_agent_floods_frames_nobody_reads_stays_under_a_fixed_memory_cap",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    )
    .spawn()
    .unwrap();
    // Watched from the start: the hello arrives first, then the flood.
    let out = child.stdout.take().unwrap();
    let started = std::thread::spawn(move || {
        std::io::BufRead::lines(std::io::BufReader::new(out))
            .map_while(Result::ok)
            .any(|l| l.contains("session started"))
    });
    let peak = watch(&mut child, "rehost's side of the flooded session");
    eprintln!(
        "rehost's side of a session flooded with {} MiB frames: peak resident {} MiB",
        MAX_DATA >> 20,
        peak >> 20
    );
    kill_tree(child.id());
    let _ = child.wait();
    assert!(started.join().unwrap(), "the session never started");
    // At least one frame arrived: the peak includes what a frame costs.
    assert!(
        peak > MAX_DATA as u64,
        "peak {peak} B: the flood did not arrive"
    );
}

/// Every queue between threads is bounded (issue 18: an unbounded channel grew to 3.3 GB): no
/// `mpsc::channel` in the workspace's sources outside tests, `sync_channel` instead.
#[test]
fn no_unbounded_channel_in_the_sources() {
    fn walk(dir: &Path, found: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                if name != "tests" {
                    walk(&p, found);
                }
            } else if name.ends_with(".rs") && name != "tests.rs" {
                let text = std::fs::read_to_string(&p).unwrap();
                for (i, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or("");
                    if code.contains("mpsc::channel") || code.contains("mpsc::{channel") {
                        found.push(format!("{}:{}", p.display(), i + 1));
                    }
                }
            }
        }
    }
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut found = Vec::new();
    for c in std::fs::read_dir(crates).unwrap().flatten() {
        let src = c.path().join("src");
        if src.is_dir() {
            walk(&src, &mut found);
        }
    }
    assert!(found.is_empty(), "unbounded channels: {found:?}");
}
