//! `rehost hold` and the `switch` step: a relay in front of real servers (HTTP servers and
//! PostgreSQL clusters on loopback) moved from the old to the new one while clients keep
//! connecting; every refused or failed request is counted, and the longest wait measured.

use crate::support::{Hold, bin, hold_state_dir as state_dir, plan, rehost};
use rehost_test::TestDir;
use rehost_test::http::{Reply, Server};
use rehost_test::postgres::Postgres;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn free_addr() -> SocketAddr {
    crate::support::free_loopback_addr()
}

/// A loopback port nothing listens on and nothing else can take while this lives: a TCP socket
/// bound without SO_REUSEADDR and never listening (a connection to it is refused).
struct DownPort(#[allow(dead_code)] std::os::fd::OwnedFd, SocketAddr);

fn down_port() -> DownPort {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor this function owns; `sa`/`len` valid.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket");
        let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, (&sa as *const libc::sockaddr_in).cast(), len),
            0
        );
        let mut got: libc::sockaddr_in = std::mem::zeroed();
        let mut glen = len;
        assert_eq!(
            libc::getsockname(fd, (&mut got as *mut libc::sockaddr_in).cast(), &mut glen),
            0
        );
        DownPort(
            owned,
            SocketAddr::from(([127, 0, 0, 1], u16::from_be(got.sin_port))),
        )
    }
}

/// One HTTP request on a new connection through `addr`: the body, or why it failed.
fn get(addr: SocketAddr) -> Result<String, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if len.is_some_and(|len| body.len() >= len) {
                return Ok(body.to_owned());
            }
        }
    }
    Err(format!(
        "connection closed before a whole response: {:?}",
        String::from_utf8_lossy(&buf)
    ))
}

/// What a client loop saw: each answer in order, the failures, the longest request.
#[derive(Default, Debug)]
struct Tally {
    answers: Vec<String>,
    failures: Vec<String>,
    longest: Duration,
}

fn client_loop(stop: &AtomicBool, mut one: impl FnMut() -> Result<String, String>) -> Tally {
    let mut t = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        let at = Instant::now();
        match one() {
            Ok(a) => t.answers.push(a),
            Err(e) => t.failures.push(e),
        }
        t.longest = t.longest.max(at.elapsed());
    }
    t
}

fn psql(addr: SocketAddr) -> Result<String, String> {
    let out = Command::new(rehost_test::postgres::tool("psql"))
        .args([
            "-X",
            "-A",
            "-t",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .args(["-p", &addr.port().to_string()])
        .args(["-c", "select current_setting('port')"])
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The answers changed from all `old` to all `new` exactly once: nothing went back.
fn moved_once(answers: &[String], old: &str, new: &str) {
    let first_new = answers
        .iter()
        .position(|a| a == new)
        .unwrap_or_else(|| panic!("no answer from the new side: {answers:?}"));
    assert!(
        first_new > 0,
        "no answer from the old side first: {answers:?}"
    );
    assert!(
        answers[..first_new].iter().all(|a| a == old)
            && answers[first_new..].iter().all(|a| a == new),
        "answers went back and forth: {answers:?}"
    );
}

#[test]
fn a_switch_under_load_refuses_and_fails_no_request_and_new_requests_reach_the_new_server() {
    let d = TestDir::new();
    let state = state_dir(&d);
    let old = Server::start(|_| Reply::json("old"));
    let new = Server::start(|_| Reply::json("new"));
    let mut pg_old = Postgres::start();
    let mut pg_new = Postgres::start();
    let web = Hold::start(&d, &state, &format!("127.0.0.1:{}", old.port()));
    let db = Hold::start(&d, &state, &format!("127.0.0.1:{}", pg_old.port()));
    assert_eq!(get(web.listen).unwrap(), "old");
    assert_eq!(psql(db.listen).unwrap(), pg_old.port().to_string());

    let stop = Arc::new(AtomicBool::new(false));
    let (http, pgl, sw_web, sw_db) = std::thread::scope(|s| {
        let http = s.spawn(|| client_loop(&stop, || get(web.listen)));
        let pgl = s.spawn(|| client_loop(&stop, || psql(db.listen)));
        std::thread::sleep(Duration::from_millis(500));
        let sw_web = rehost(
            &d,
            &[
                "hold",
                "--switch",
                &format!("127.0.0.1:{}", new.port()),
                "--listen",
                &web.listen.to_string(),
                "--state-dir",
                state.to_str().unwrap(),
            ],
        );
        let sw_db = rehost(
            &d,
            &[
                "hold",
                "--switch",
                &format!("127.0.0.1:{}", pg_new.port()),
                "--listen",
                &db.listen.to_string(),
                "--state-dir",
                state.to_str().unwrap(),
                "--json",
            ],
        );
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        (http.join().unwrap(), pgl.join().unwrap(), sw_web, sw_db)
    });
    assert_eq!(sw_web.code, 0, "{}\n{}", sw_web.all(), web.log());
    assert!(
        sw_web.stdout.contains(&format!(
            "switched the hold on {} from 127.0.0.1:{} to 127.0.0.1:{}: new connections go to 127.0.0.1:{}",
            web.listen,
            old.port(),
            new.port(),
            new.port()
        )),
        "{}",
        sw_web.all()
    );
    assert!(
        sw_web.stdout.contains("accept was paused "),
        "{}",
        sw_web.all()
    );
    assert_eq!(sw_db.code, 0, "{}\n{}", sw_db.all(), db.log());
    let report: serde_json::Value = serde_json::from_str(&sw_db.stdout).unwrap();
    assert_eq!(report["switched"], true, "{report}");
    assert_eq!(report["paused"], true, "{report}");
    assert_eq!(report["ended_count"], 0, "{report}");
    assert!(report["failure"].is_null(), "{report}");

    eprintln!(
        "HTTP: {} requests, longest {:?}; psql: {} sessions, longest {:?}; switches: {} / {}",
        http.answers.len(),
        http.longest,
        pgl.answers.len(),
        pgl.longest,
        sw_web.stdout.lines().nth(1).unwrap_or_default(),
        sw_db
            .stdout
            .lines()
            .filter(|l| l.contains("paused_ms"))
            .collect::<String>()
    );
    // Nothing refused, nothing failed, nobody waited as long as the time box.
    let refused = |t: &Tally| {
        t.failures
            .iter()
            .filter(|f| f.contains("Connection refused") || f.contains("connection refused"))
            .count()
    };
    assert_eq!(
        refused(&http),
        0,
        "HTTP connections refused: {:?}",
        http.failures
    );
    assert_eq!(
        refused(&pgl),
        0,
        "psql connections refused: {:?}",
        pgl.failures
    );
    assert!(
        http.failures.is_empty(),
        "HTTP requests failed: {:?}",
        http.failures
    );
    assert!(
        pgl.failures.is_empty(),
        "psql sessions failed: {:?}",
        pgl.failures
    );
    assert!(http.answers.len() >= 10, "too few HTTP requests: {http:?}");
    assert!(pgl.answers.len() >= 4, "too few psql sessions: {pgl:?}");
    assert!(http.longest < Duration::from_secs(2), "{:?}", http.longest);
    assert!(pgl.longest < Duration::from_secs(2), "{:?}", pgl.longest);
    moved_once(&http.answers, "old", "new");
    moved_once(
        &pgl.answers,
        &pg_old.port().to_string(),
        &pg_new.port().to_string(),
    );
    // After the switch, a new client reaches the new servers.
    assert_eq!(get(web.listen).unwrap(), "new");
    assert_eq!(psql(db.listen).unwrap(), pg_new.port().to_string());
    pg_old.stop();
    pg_new.stop();
}

#[test]
fn a_connection_still_open_at_the_drain_deadline_is_ended_and_named_and_new_clients_wait_not_refused()
 {
    let d = TestDir::new();
    let state = state_dir(&d);
    let old = Server::start(|_| Reply::json("old"));
    let new = Server::start(|_| Reply::json("new"));
    let web = Hold::start(&d, &state, &format!("127.0.0.1:{}", old.port()));
    // A client that keeps its connection to the old server open (keep-alive, idle).
    let mut kept = TcpStream::connect(web.listen).unwrap();
    kept.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 512];
    let n = kept.read(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).ends_with("old"));
    let kept_addr = kept.local_addr().unwrap();

    let (sw, waited) = std::thread::scope(|s| {
        let sw = s.spawn(|| {
            rehost(
                &d,
                &[
                    "hold",
                    "--switch",
                    &format!("127.0.0.1:{}", new.port()),
                    "--listen",
                    &web.listen.to_string(),
                    "--state-dir",
                    state.to_str().unwrap(),
                    "--timeout",
                    "2s",
                ],
            )
        });
        // A client arriving while accept is paused waits; it is not refused.
        std::thread::sleep(Duration::from_millis(500));
        let at = Instant::now();
        let answer = get(web.listen);
        let waited = at.elapsed();
        assert_eq!(answer.as_deref(), Ok("new"), "the waiting client");
        (sw.join().unwrap(), waited)
    });
    assert_eq!(sw.code, 0, "{}\n{}", sw.all(), web.log());
    assert!(
        sw.stdout.contains(
            "1 connection(s) to the old upstream were open at the pause: 0 ended by themselves, 1 were still open at the 1500 ms drain deadline and were ended by the hold (shut down both ways)"
        ),
        "{}",
        sw.all()
    );
    assert!(
        sw.stdout.contains(&format!(
            "  ended {kept_addr} (to 127.0.0.1:{}, open ",
            old.port()
        )),
        "{}",
        sw.all()
    );
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(2),
        "the client that came during the pause waited {waited:?}"
    );
    // The kept client's connection was ended: it reads the end of the stream.
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(kept.read(&mut first).unwrap_or(0), 0);
}

#[test]
fn a_switch_to_an_upstream_that_is_down_pauses_nothing_and_fails_loudly() {
    let d = TestDir::new();
    let state = state_dir(&d);
    let old = Server::start(|_| Reply::json("old"));
    let web = Hold::start(&d, &state, &format!("127.0.0.1:{}", old.port()));
    let reserved = down_port();
    let down = reserved.1;
    let o = rehost(
        &d,
        &[
            "hold",
            "--switch",
            &down.to_string(),
            "--listen",
            &web.listen.to_string(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stdout.contains(&format!(
            "NOT switched: the hold on {} still forwards new connections to 127.0.0.1:{}",
            web.listen,
            old.port()
        )),
        "{}",
        o.all()
    );
    assert!(
        o.stderr.contains(&format!(
            "the new upstream {down} did not accept a connection"
        )) && o.stderr.contains("nothing was paused"),
        "{}",
        o.all()
    );
    assert_eq!(get(web.listen).unwrap(), "old");
    // No hold on an address: said so, with what to do.
    let o = rehost(
        &d,
        &[
            "hold",
            "--switch",
            &down.to_string(),
            "--listen",
            &free_addr().to_string(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("no hold is listening on"), "{}", o.all());
}

#[test]
fn a_control_directory_another_user_owns_or_may_write_is_refused() {
    let d = TestDir::new();
    let old = Server::start(|_| Reply::json("old"));
    let upstream = format!("127.0.0.1:{}", old.port());
    use std::os::unix::fs::PermissionsExt;

    let open = d.join("world-writable");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let listen = free_addr().to_string();
    for args in [
        vec!["hold", "--listen", &listen, "--upstream", &upstream],
        vec!["hold", "--listen", &listen, "--switch", &upstream],
    ] {
        let mut args = args;
        args.extend(["--state-dir", open.to_str().unwrap()]);
        let o = rehost(&d, &args);
        assert_eq!(o.code, 2, "{}", o.all());
        assert!(
            o.stderr.contains("the control directory was refused")
                && o.stderr
                    .contains("has mode 0777: group or others may write to it"),
            "{}",
            o.all()
        );
    }
    // Nothing was made in it.
    assert_eq!(std::fs::read_dir(&open).unwrap().count(), 0);

    let theirs = d.join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
    let me = unsafe { libc::geteuid() };
    let other = if me == 0 { 65534 } else { me };
    if me == 0 {
        std::os::unix::fs::chown(&theirs, Some(other), Some(other)).unwrap();
        let o = rehost(
            &d,
            &[
                "hold",
                "--listen",
                &listen,
                "--upstream",
                &upstream,
                "--state-dir",
                theirs.to_str().unwrap(),
            ],
        );
        assert_eq!(o.code, 2, "{}", o.all());
        assert!(
            o.stderr.contains(&format!(
                "is owned by uid {other}, not by uid {me} who runs rehost"
            )),
            "{}",
            o.all()
        );
    }

    // A socket in our private directory that is not ours is not talked to.
    let state = state_dir(&d);
    let web = Hold::start(&d, &state, &upstream);
    let planted = free_addr();
    let name = format!("hold-127.0.0.1-{}.sock", planted.port());
    let _l = std::os::unix::net::UnixListener::bind(state.join(&name)).unwrap();
    if me == 0 {
        std::os::unix::fs::chown(state.join(&name), Some(other), Some(other)).unwrap();
        let o = rehost(
            &d,
            &[
                "hold",
                "--switch",
                &upstream,
                "--listen",
                &planted.to_string(),
                "--state-dir",
                state.to_str().unwrap(),
            ],
        );
        assert_eq!(o.code, 2, "{}", o.all());
        assert!(
            o.stderr.contains("is not a control socket owned by you"),
            "{}",
            o.all()
        );
        // Another local user cannot steer the running hold: it cannot reach its socket.
        let o = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(bin())
            .args([
                "hold",
                "--switch",
                "127.0.0.1:9",
                "--listen",
                &web.listen.to_string(),
            ])
            .arg("--state-dir")
            .arg(&state)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{o:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
            "{o:?}"
        );
    }
    assert_eq!(get(web.listen).unwrap(), "old");
}

#[test]
fn a_hold_started_by_systemd_socket_activation_relays_on_the_socket_it_was_given() {
    let tool = rehost_test::require_tool("systemd-socket-activate");
    let d = TestDir::new();
    let state = state_dir(&d);
    let old = Server::start(|_| Reply::json("old"));
    let listen = free_addr();
    let child = Command::new(tool)
        .args(["-l", &listen.to_string()])
        .arg(bin())
        .args(["hold", "--upstream", &format!("127.0.0.1:{}", old.port())])
        .arg("--state-dir")
        .arg(&state)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // systemd-socket-activate listens at once and starts rehost at the first connection.
    let until = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        match get(listen) {
            Ok(a) => break a,
            Err(e) => {
                assert!(Instant::now() < until, "no answer through {listen}: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    assert_eq!(answer, "old");
    // Its control socket is named after the address systemd gave it.
    assert!(
        state
            .join(format!("hold-127.0.0.1-{}.sock", listen.port()))
            .exists()
    );
    rehost_test::stop_child(child, libc::SIGTERM, Duration::from_secs(2));
}

/// A client connection through `addr` kept open after one answered request (keep-alive): the
/// hold relays it to its upstream.
fn kept(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before an answer: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap();
            if body.len() >= len {
                return s;
            }
        }
    }
}

#[test]
fn a_switch_step_records_the_pause_and_the_report_shows_it_under_connections() {
    let d = TestDir::new();
    let state = state_dir(&d);
    let old = Server::start(|_| Reply::json("old"));
    let new = Server::start(|_| Reply::json("new"));
    let web = Hold::start(&d, &state, &format!("127.0.0.1:{}", old.port()));
    // Connected before the switch: one client leaves while the hold drains, one stays and is
    // ended at the drain deadline (6 s into the 8 s time box: room for a loaded machine).
    let stays = kept(web.listen);
    let leaves = kept(web.listen);
    let (stays_at, leaves_at) = (
        stays.local_addr().unwrap().to_string(),
        leaves.local_addr().unwrap().to_string(),
    );
    d.write(
        "plan.toml",
        plan(&format!(
            r#"
[[steps]]
id = "move-web"
do = "switch"
hold = "{}"
to = "127.0.0.1:{}"
state_dir = "{}"
timeout = "8s"

# The hold and the new upstream are the rehearsal's own.
[environments.test.endpoints]
"{hold}" = "{hold}"
"127.0.0.1:{port}" = "127.0.0.1:{port}"
"#,
            web.listen,
            new.port(),
            state.display(),
            hold = web.listen,
            port = new.port(),
        )),
    );
    let o = std::thread::scope(|s| {
        let run = s.spawn(|| rehost(&d, &["run", "plan.toml", "--env", "test"]));
        // The hold logs the pause before it drains: the leaving client closes after it.
        let until = Instant::now() + Duration::from_secs(60);
        while !web
            .log()
            .contains("accept paused; 2 connection(s) to the old upstream open")
        {
            assert!(Instant::now() < until, "no pause: {}", web.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(leaves);
        run.join().unwrap()
    });
    assert_eq!(o.code, 0, "{}\n{}", o.all(), web.log());
    assert!(
        o.stdout.contains(&format!(
            "the hold on {} forwards new connections to 127.0.0.1:{} (was 127.0.0.1:{}); accept paused ",
            web.listen,
            new.port(),
            old.port()
        )),
        "{}",
        o.all()
    );
    assert_eq!(get(web.listen).unwrap(), "new");

    let r = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let json: serde_json::Value =
        serde_json::from_str(&d.read(".rehost/plan/test/report.json")).unwrap();
    let sw = &json["run"]["attempts"][0]["switch"];
    assert_eq!(sw["switched"], true, "{sw}");
    assert_eq!(sw["from"], format!("127.0.0.1:{}", old.port()), "{sw}");
    assert_eq!(sw["to"], format!("127.0.0.1:{}", new.port()), "{sw}");
    assert_eq!(sw["timeout_ms"], 8000, "{sw}");
    assert_eq!(sw["paused"], true, "{sw}");
    assert!(sw["paused_ms"].as_u64().unwrap() < 8000, "{sw}");
    // Who was connected at the pause, who left when, who was ended.
    assert_eq!(sw["open_at_pause"], 2, "{sw}");
    assert_eq!(sw["drained"], 1, "{sw}");
    assert_eq!(sw["left"][0]["client"], leaves_at.as_str(), "{sw}");
    assert!(sw["left"][0]["after_ms"].as_u64().unwrap() < 6000, "{sw}");
    assert_eq!(sw["ended_count"], 1, "{sw}");
    assert_eq!(sw["ended"][0]["client"], stays_at.as_str(), "{sw}");
    let md = d.read(".rehost/plan/test/report.md");
    assert!(md.contains("## Connections"), "{md}");
    assert!(
        md.contains(&format!(
            "relay `{}` switched from `127.0.0.1:{}` to `127.0.0.1:{}`",
            web.listen,
            old.port(),
            new.port()
        )),
        "{md}"
    );
    assert!(md.contains("Accept was paused"), "{md}");
    let row = |client: &str| {
        md.lines()
            .find(|l| l.contains(&format!("`{client}`")))
            .unwrap_or_else(|| panic!("{client} not in {md}"))
            .to_owned()
    };
    assert!(
        row(&leaves_at).contains("left by itself") && row(&leaves_at).contains("after the pause"),
        "{md}"
    );
    assert!(
        row(&stays_at).contains("ended by the relay at the drain deadline, open for"),
        "{md}"
    );
    // The client that stayed was ended: it reads the end of its stream (or a reset).
    let mut stays = stays;
    let r = stays.read(&mut [0u8; 16]);
    assert!(
        matches!(r, Ok(0)) || r.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the client that stayed is still served"
    );
}

#[test]
fn bulk_transfers_both_ways_arrive_whole_through_the_hold() {
    // 8 MiB each way: past the relay's 64 KiB buffer, so the splice path carries most of it.
    const SIZE: usize = 8 << 20;
    let pattern = |i: usize| (i.wrapping_mul(2_654_435_761) >> 13) as u8;
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = upstream.local_addr().unwrap();
    // Reads what the client sends, then answers; a connection that sends nothing (the
    // readiness probe of `Hold::start`, relayed too) is skipped.
    let server = std::thread::spawn(move || {
        loop {
            let (mut s, _) = upstream.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            if got.is_empty() {
                continue;
            }
            let data: Vec<u8> = (0..SIZE).map(pattern).collect();
            s.write_all(&data).unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            return got;
        }
    });
    let d = TestDir::new();
    let state = state_dir(&d);
    let web = Hold::start(&d, &state, &up_addr.to_string());
    let mut c = TcpStream::connect(web.listen).unwrap();
    let mut w = c.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let data: Vec<u8> = (0..SIZE).map(|i| pattern(i ^ 0x5a)).collect();
        w.write_all(&data).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    sender.join().unwrap();
    let at_server = server.join().unwrap();
    assert_eq!(got.len(), SIZE, "bytes from the upstream");
    assert!(
        got.iter().enumerate().all(|(i, b)| *b == pattern(i)),
        "upstream's bytes changed"
    );
    assert_eq!(at_server.len(), SIZE, "bytes to the upstream");
    assert!(
        at_server
            .iter()
            .enumerate()
            .all(|(i, b)| *b == pattern(i ^ 0x5a)),
        "client's bytes changed"
    );
}

#[test]
fn a_failure_after_a_switch_rolls_the_hold_back_and_counts_it_once_a_connection_reaches_the_old_upstream()
 {
    let d = TestDir::new();
    let state = state_dir(&d);
    let old = Server::start(|_| Reply::json("old"));
    let new = Server::start(|_| Reply::json("new"));
    let web = Hold::start(&d, &state, &format!("127.0.0.1:{}", old.port()));
    d.write(
        "plan.toml",
        plan(&format!(
            r#"
[[steps]]
id = "move-web"
do = "switch"
hold = "{}"
to = "127.0.0.1:{}"
state_dir = "{}"
timeout = "2s"

[[steps]]
id = "start-new"
do = "run"
host = "new"
argv = ["false"]

[environments.test.endpoints]
"{hold}" = "{hold}"
"127.0.0.1:{port}" = "127.0.0.1:{port}"
"#,
            web.listen,
            new.port(),
            state.display(),
            hold = web.listen,
            port = new.port(),
        ))
        .replace(
            "max_downtime = \"15m\"",
            "max_downtime = \"15m\"\non_failure = \"rollback\"",
        ),
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_ne!(o.code, 0, "{}", o.all());
    assert_eq!(
        get(web.listen).unwrap(),
        "old",
        "{}\n{}",
        o.all(),
        web.log()
    );
    let journal = d.read(".rehost/plan/test/journal");
    let rolled: Vec<&str> = journal
        .lines()
        .filter(|l| l.contains(r#""rolled_back""#) && l.contains(r#""move-web""#))
        .collect();
    assert_eq!(rolled.len(), 1, "{journal}");
    assert!(rolled[0].contains(r#""ok":true"#), "{}", rolled[0]);
    assert!(
        rolled[0].contains(&format!(
            "switched back from 127.0.0.1:{} to 127.0.0.1:{}",
            new.port(),
            old.port()
        )) && rolled[0].contains("a connection made through it afterwards reached"),
        "{}",
        rolled[0]
    );
    assert!(
        web.log().matches("switched from").count() == 2,
        "{}",
        web.log()
    );
    let o = rehost(&d, &["concept", "plan.toml", "--format", "md"]);
    assert!(
        o.stdout.contains("the hold switched back to the upstream"),
        "{}",
        o.all()
    );
}
