//! Persistent connections seen other ways (issue 21): the clients of a PostgreSQL Unix socket
//! (`conns list --socket`, here and through an ssh host's agent), the database servers' own
//! view of their sessions joined to the TCP listing (`conns list --db`, PostgreSQL and
//! MariaDB, a session in an open transaction), and `conns watch` over clients that come and go.

use crate::support::*;
use rehost_test::TestDir;
use rehost_test::sshd::Sshd;
use std::io::{BufRead, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn json(o: &rehost_test::Output) -> serde_json::Value {
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.all()))
}

/// A database client held open (its standard input stays open): the session it has.
struct Held {
    child: Child,
    /// The first line the client printed for `query`.
    answer: String,
}

impl Held {
    fn open(program: &std::path::Path, args: &[&str], env: &[(&str, &str)], query: &str) -> Held {
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.as_mut().unwrap();
        stdin.write_all(query.as_bytes()).unwrap();
        stdin.flush().unwrap();
        let mut answer = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut answer)
            .unwrap();
        assert!(!answer.is_empty(), "the client answered nothing to {query}");
        Held {
            child,
            answer: answer.trim().to_owned(),
        }
    }

    /// `psql` on `pg`, over TCP or (`socket`) its Unix socket, answering
    /// `pid|client port` (the port -1 for a socket) after `before`.
    fn psql(pg: &rehost_test::postgres::Postgres, socket: bool, before: &str, app: &str) -> Held {
        let dir = pg.socket_dir();
        let port = pg.port().to_string();
        let host = if socket {
            dir.to_str().unwrap().to_owned()
        } else {
            "127.0.0.1".into()
        };
        Held::open(
            &rehost_test::postgres::tool("psql"),
            &[
                "-X", "-q", "-A", "-t", "-h", &host, "-p", &port, "-U", "postgres", "-d",
                "postgres",
            ],
            &[("PGAPPNAME", app)],
            &format!(
                "{before}select pg_backend_pid() || '|' || coalesce(inet_client_port(), -1);\n"
            ),
        )
    }

    fn pid_port(&self) -> (u64, i64) {
        let (a, b) = self.answer.split_once('|').unwrap();
        (a.parse().unwrap(), b.parse().unwrap())
    }

    fn client_pid(&self) -> u64 {
        u64::from(self.child.id())
    }

    fn close(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

#[test]
fn conns_list_socket_names_each_session_on_the_postgresql_socket_with_both_processes() {
    let pg = rehost_test::postgres::Postgres::start();
    let (a, b) = (
        Held::psql(&pg, true, "", "a"),
        Held::psql(&pg, true, "", "b"),
    );
    // A TCP session is not a connection to the socket.
    let _tcp = Held::psql(&pg, false, "", "tcp");
    let d = TestDir::new();
    let sock = pg.socket();
    let sock = sock.to_str().unwrap();
    let missing = d.join("no-such.sock");
    let missing = missing.to_str().unwrap();
    let o = rehost(
        &d,
        &[
            "conns", "list", "--socket", sock, "--socket", missing, "--json",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    let doc = json(&o);
    let unix = &doc["unix"];
    assert_eq!(unix["source"], "netlink", "{doc}");
    assert_eq!(unix["listening"], serde_json::json!([sock]), "{doc}");
    assert!(
        doc.get("connections").is_none(),
        "no TCP table asked for: {doc}"
    );
    let mut seen: Vec<(u64, String, u64, String)> = unix["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["path"], sock, "{c}");
            (
                c["pid"].as_u64().unwrap(),
                c["command"].as_str().unwrap().to_owned(),
                c["peer_pid"].as_u64().unwrap(),
                c["peer_command"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    let mut want: Vec<(u64, String, u64, String)> = [&a, &b]
        .iter()
        .map(|s| {
            (
                s.pid_port().0,
                "postgres".to_owned(),
                s.client_pid(),
                "psql".to_owned(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(seen, want, "each session: its backend and its psql");

    let o = rehost(
        &d,
        &["conns", "list", "--socket", sock, "--socket", missing],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains(&format!(
            "2 connections to the Unix socket {sock} on this machine (read with netlink sock_diag)"
        )) && o.stdout.contains(&format!(
            "nothing listens on the Unix socket {missing} on this machine"
        )),
        "{}",
        o.stdout
    );
    let (pid, _) = a.pid_port();
    let line = o
        .stdout
        .lines()
        .find(|l| l.contains(&format!("{pid} (postgres)")))
        .unwrap_or_else(|| panic!("backend {pid} not listed: {}", o.stdout));
    assert!(
        line.contains(&format!("{} (psql)", a.client_pid())),
        "{line}"
    );

    // One session ends: once its backend has exited, it is no longer listed.
    a.close();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = rehost(&d, &["conns", "list", "--socket", sock, "--json"]);
        let doc = json(&o);
        // A socket whose backend is exiting may be listed a moment longer without its process.
        let left: Vec<Option<u64>> = doc["unix"]["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["pid"].as_u64())
            .collect();
        if left == vec![Some(b.pid_port().0)] {
            break;
        }
        assert!(Instant::now() < deadline, "still listed after 10 s: {doc}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = rehost(&d, &["conns", "list", "--socket", "relative.sock"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("`relative.sock` is not absolute"),
        "{}",
        o.all()
    );
}

#[test]
fn conns_list_socket_and_db_through_an_ssh_host_equal_the_local_ones() {
    let sshd = Sshd::start();
    let pg = rehost_test::postgres::Postgres::start();
    let on_socket = Held::psql(&pg, true, "", "a");
    let d = TestDir::new();
    let sock = pg.socket();
    let sock = sock.to_str().unwrap();
    let local = rehost(&d, &["conns", "list", "--socket", sock, "--json"]);
    assert_eq!(local.code, 0, "{}", local.all());
    let config = sshd.ssh_config();
    let remote = rehost(
        &d,
        &[
            "conns",
            "list",
            sshd.destination(),
            "--ssh-config",
            config.to_str().unwrap(),
            "--socket",
            sock,
            "--json",
        ],
    );
    assert_eq!(remote.code, 0, "{}", remote.all());
    let (local, remote) = (json(&local), json(&remote));
    assert_eq!(
        local["unix"]["connections"].as_array().unwrap().len(),
        1,
        "{local}"
    );
    assert_eq!(local["unix"], remote["unix"]);
    assert_eq!(remote["host"], sshd.destination());

    // The database's view through the host: psql run there by its agent, joined to its
    // kernel's listing.
    let tcp = Held::psql(&pg, false, "begin;\n", "over-ssh");
    let url = pg.url("postgres");
    let ssh = [
        "conns",
        "list",
        sshd.destination(),
        "--ssh-config",
        config.to_str().unwrap(),
        "--db",
        &url,
        "--json",
    ];
    let remote = rehost(&d, &ssh);
    assert_eq!(remote.code, 0, "{}", remote.all());
    let doc = json(&remote);
    let sessions = doc["database"]["sessions"].as_array().unwrap();
    let mut ids: Vec<u64> = sessions.iter().map(|s| s["id"].as_u64().unwrap()).collect();
    ids.sort();
    let mut want = vec![on_socket.pid_port().0, tcp.pid_port().0];
    want.sort();
    assert_eq!(ids, want, "{doc}");
    let (pid, port) = tcp.pid_port();
    let s = sessions.iter().find(|s| s["id"] == pid).unwrap();
    assert_eq!(s["application"], "over-ssh", "{s}");
    assert_eq!(s["tcp"]["peer_port"].as_i64(), Some(port), "{s}");
    assert_eq!(s["tcp"]["pid"].as_u64(), Some(pid), "{s}");
    assert!(s["transaction_age_s"].as_f64().is_some(), "{s}");
    tcp.close();
}

#[test]
fn conns_list_db_shows_postgresql_s_sessions_with_the_open_transaction_s_age() {
    let pg = rehost_test::postgres::Postgres::start();
    let in_xact = Held::psql(&pg, false, "begin;\n", "billing");
    let idle = Held::psql(&pg, false, "", "reports");
    let on_socket = Held::psql(&pg, true, "", "local");
    std::thread::sleep(Duration::from_millis(1500));
    let d = TestDir::new();
    let port = pg.port().to_string();
    let url = pg.url("postgres");
    let o = rehost(
        &d,
        &["conns", "list", "--port", &port, "--db", &url, "--json"],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    let doc = json(&o);
    let sessions = doc["database"]["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3, "its own session left out: {doc}");
    let find = |h: &Held| {
        let (pid, _) = h.pid_port();
        sessions
            .iter()
            .find(|s| s["id"].as_u64() == Some(pid))
            .unwrap_or_else(|| panic!("backend {pid} not listed: {doc}"))
    };
    let s = find(&in_xact);
    assert_eq!(s["application"], "billing");
    assert_eq!(s["user"], "postgres");
    assert_eq!(s["state"], "idle in transaction");
    let age = s["transaction_age_s"].as_f64().unwrap();
    assert!((1.4..60.0).contains(&age), "transaction age {age}: {s}");
    // Joined to the kernel's listing: the server's end of its TCP connection is its backend.
    let (pid, client_port) = in_xact.pid_port();
    assert_eq!(s["client_port"].as_i64(), Some(client_port), "{s}");
    assert_eq!(s["tcp"]["peer_port"].as_i64(), Some(client_port), "{s}");
    assert_eq!(s["tcp"]["pid"].as_u64(), Some(pid), "{s}");
    let s = find(&idle);
    assert_eq!(s["state"], "idle");
    assert!(s.get("transaction_age_s").is_none(), "{s}");
    assert!(s["tcp"].is_object(), "{s}");
    let s = find(&on_socket);
    assert!(s.get("client_port").is_none() && s["tcp"].is_null(), "{s}");

    let o = rehost(&d, &["conns", "list", "--db", &url]);
    assert_eq!(o.code, 0, "{}", o.all());
    let line = o
        .stdout
        .lines()
        .find(|l| l.starts_with(&pid.to_string()))
        .unwrap_or_else(|| panic!("{}", o.stdout));
    assert!(
        line.contains("billing")
            && line.contains("idle in transaction")
            && line.contains(&format!("127.0.0.1:{client_port}"))
            && line.contains(&format!("port {port} {pid} (postgres)")),
        "{line}"
    );
    assert!(
        o.stdout.contains("3 sessions on ")
            && o.stdout.contains("(1 in an open transaction;")
            && o.stdout
                .contains("2 joined to the TCP connections on this machine"),
        "{}",
        o.stdout
    );

    // The plan's database, from its host.
    std::fs::create_dir_all(d.join("prod-old")).unwrap();
    write_plan(
        &d,
        &format!(
            "[[databases]]\nid = \"billing\"\nengine = \"postgresql\"\nfrom = \"old\"\nto = \"new\"\nport = {port}\nuser = \"postgres\"\ndatabase = \"postgres\"\n"
        ),
    );
    let o = rehost(
        &d,
        &[
            "conns",
            "list",
            "--plan",
            "plan.toml",
            "--db",
            "billing",
            "--json",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    let doc = json(&o);
    assert_eq!(doc["host"], "old", "{doc}");
    assert_eq!(
        doc["database"]["sessions"].as_array().unwrap().len(),
        3,
        "{doc}"
    );
    let o = rehost(
        &d,
        &[
            "conns",
            "list",
            "new",
            "--plan",
            "plan.toml",
            "--db",
            "billing",
        ],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("reached from host `old`, not `new`"),
        "{}",
        o.all()
    );
    in_xact.close();
    idle.close();
    on_socket.close();
}

#[test]
fn conns_list_db_shows_mariadb_s_processlist_with_the_open_transaction_s_age() {
    let db = rehost_test::mariadb::Mariadb::start();
    let client = rehost_test::mariadb::tool("mariadb");
    let mut args = db.client_args();
    args.extend([
        "--batch".into(),
        "--skip-column-names".into(),
        "--unbuffered".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let who = "SELECT CONCAT(CONNECTION_ID(), '|', HOST) FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID();\n";
    let in_xact = Held::open(
        &client,
        &args,
        &[],
        &format!("START TRANSACTION WITH CONSISTENT SNAPSHOT;\n{who}"),
    );
    let idle = Held::open(&client, &args, &[], who);
    std::thread::sleep(Duration::from_millis(1500));
    let d = TestDir::new();
    let port = db.port().to_string();
    let o = rehost(
        &d,
        &[
            "conns",
            "list",
            "--port",
            &port,
            "--db",
            &db.url("mysql"),
            "--json",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    let doc = json(&o);
    let sessions = doc["database"]["sessions"].as_array().unwrap();
    let find = |h: &Held| {
        let (id, host) = h.answer.split_once('|').unwrap();
        let s = sessions
            .iter()
            .find(|s| s["id"].as_u64() == Some(id.parse().unwrap()))
            .unwrap_or_else(|| panic!("connection {id} not listed: {doc}"));
        let (_, client_port) = host.rsplit_once(':').unwrap();
        (s, client_port.parse::<u64>().unwrap())
    };
    let (s, client_port) = find(&in_xact);
    assert_eq!(s["user"], "root");
    assert_eq!(s["command"], "Sleep");
    let age = s["transaction_age_s"].as_f64().unwrap();
    assert!((1.4..60.0).contains(&age), "transaction age {age}: {s}");
    assert_eq!(s["client_port"].as_u64(), Some(client_port), "{s}");
    assert_eq!(s["tcp"]["peer_port"].as_u64(), Some(client_port), "{s}");
    let (s, _) = find(&idle);
    assert!(s.get("transaction_age_s").is_none(), "{s}");
    assert!(s["tcp"].is_object(), "{s}");
    assert_eq!(
        sessions.len(),
        2,
        "its own session and the server's daemons left out: {doc}"
    );
    in_xact.close();
    idle.close();
}

#[test]
fn conns_watch_reports_clients_that_came_and_left_with_their_times() {
    // Dual-stack: 127.0.0.1 and ::1 are two client addresses of one service.
    let listener = TcpListener::bind("[::]:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let served = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acceptor = {
        let (served, stop) = (served.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok((s, _)) = listener.accept() {
                    served.lock().unwrap().push(s);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let v4 = format!("127.0.0.1:{port}");
    let v6 = format!("[::1]:{port}");
    let first = TcpStream::connect(&v4).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let d = TestDir::new();
    let mut child = Command::new(bin())
        .args([
            "conns",
            "watch",
            "--port",
            &port.to_string(),
            "--for",
            "3s",
            "--json",
        ])
        .current_dir(d.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first listing is made once the watch says what it sees.
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.starts_with("watching port "), "{line}");
    let t0 = Instant::now();
    let at = |ms: u64| {
        let until = t0 + Duration::from_millis(ms);
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
    };
    at(1300);
    drop(first);
    let brief = TcpStream::connect(&v6).unwrap();
    at(1500);
    let second = TcpStream::connect(&v4).unwrap();
    at(2700);
    drop(brief);
    let out = child.wait_with_output().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    acceptor.join().unwrap();
    drop(second);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(doc["listings"].as_u64().unwrap() >= 4, "{doc}");
    // From the first listing to the last: the watch's 3 s less the first listing's own time.
    let over = doc["over_ms"].as_u64().unwrap();
    assert!((2500..4000).contains(&over), "{doc}");
    let clients = doc["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 2, "{doc}");
    let by = |a: &str| {
        clients
            .iter()
            .find(|c| c["peer_addr"] == a)
            .unwrap_or_else(|| panic!("{a} not reported: {doc}"))
    };
    // 127.0.0.1: connected at the start, again from 1.5 s, still connected at the end.
    let c = by("127.0.0.1");
    assert_eq!(c["connections"], 2, "{c}");
    assert_eq!(c["first_seen_ms"], 0, "{c}");
    assert_eq!(c["connected_at_end"], true, "{c}");
    assert_eq!(c["last_seen_ms"].as_u64(), Some(over), "{c}");
    // ::1: from 1.3 s to 2.7 s: first seen in a listing after 1 s, gone before the end.
    let c = by("::1");
    assert_eq!(c["connections"], 1, "{c}");
    assert_eq!(c["connected_at_end"], false, "{c}");
    let (first, last) = (
        c["first_seen_ms"].as_u64().unwrap(),
        c["last_seen_ms"].as_u64().unwrap(),
    );
    assert!((1000..=2800).contains(&first), "{c}");
    assert!(last >= first && last < over && last <= 2800, "{c}");
    assert_eq!(c["local_port"].as_u64(), Some(u64::from(port)), "{c}");
}

#[test]
fn conns_watch_toml_prints_the_clients_as_the_plan_s_clients() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let _s = listener.accept().unwrap();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let quiet = other.local_addr().unwrap().port();
    let d = TestDir::new();
    let (p, q) = (port.to_string(), quiet.to_string());
    let o = rehost(
        &d,
        &[
            "conns", "watch", "--port", &p, "--port", &q, "--for", "1s", "--toml",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    let entries: Vec<&str> = o.stdout.matches("[[clients]]").collect();
    assert_eq!(entries.len(), 1, "{}", o.stdout);
    assert!(
        o.stdout.contains(&format!(
            "[[clients]]\nid = \"port-{port}-clients\"\nhosts = [\"127.0.0.1\"]\ncount = 1\n"
        )),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains(&format!("# port {quiet}: no client seen")),
        "{}",
        o.stdout
    );
    // The snippet is a valid part of a plan: it reads and validates (findings allowed).
    write_plan(&d, &o.stdout);
    let c = rehost(&d, &["check", "plan.toml"]);
    assert!(c.code == 0 || c.code == 1, "{}", c.all());
}

#[test]
fn conns_drain_socket_waits_for_the_socket_s_sessions_and_names_the_one_that_stays() {
    let pg = rehost_test::postgres::Postgres::start();
    let (a, b) = (
        Held::psql(&pg, true, "", "a"),
        Held::psql(&pg, true, "", "b"),
    );
    let d = TestDir::new();
    let sock = pg.socket();
    let sock = sock.to_str().unwrap();
    let (stays, stays_backend) = (b.client_pid(), b.pid_port().0);
    let o = std::thread::scope(|s| {
        let run = s.spawn(|| rehost(&d, &["conns", "drain", "--socket", sock, "--timeout", "3s"]));
        std::thread::sleep(Duration::from_millis(1200));
        a.close();
        run.join().unwrap()
    });
    assert_eq!(o.code, 1, "{}", o.all());
    assert!(
        o.stderr.contains("waiting: 2 connection(s) to the Unix socket ")
            && o.stderr.contains(&format!(
                "1 client(s) still connected to the Unix socket {sock} on this machine after 3s"
            ))
            && o.stderr.contains(&format!(
                "  process {stays} (psql) to the Unix socket {sock} (served by {stays_backend} (postgres))"
            )),
        "{}",
        o.all()
    );
    // The last one leaves (its backend exits a moment after psql): drained.
    b.close();
    let o = rehost(
        &d,
        &["conns", "drain", "--socket", sock, "--timeout", "10s"],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.starts_with(&format!(
            "drained: no established connection to the Unix socket {sock} on this machine"
        )),
        "{}",
        o.all()
    );
}

/// `conns drain --socket --terminate` ends the sessions still on PostgreSQL's Unix socket at the
/// timeout: each backend's socket is taken from it (`pidfd_getfd`) and shut down, the backend
/// reads the end of its client and exits, and the server logs each disconnection.
#[test]
fn conns_drain_socket_terminate_ends_the_sessions_on_the_postgresql_socket() {
    let pg = rehost_test::postgres::Postgres::start();
    pg.sql(
        "postgres",
        "alter system set log_disconnections = on;\nselect pg_reload_conf();",
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while pg.sql("postgres", "show log_disconnections") != "on" {
        assert!(
            std::time::Instant::now() < deadline,
            "log_disconnections never took"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (a, b) = (
        Held::psql(&pg, true, "", "a"),
        Held::psql(&pg, true, "", "b"),
    );
    let d = TestDir::new();
    let sock = pg.socket();
    let sock = sock.to_str().unwrap();
    let o = rehost(
        &d,
        &[
            "conns",
            "drain",
            "--socket",
            sock,
            "--timeout",
            "1s",
            "--terminate",
        ],
    );
    assert!(
        o.stderr
            .contains("2 client(s) still connected to Unix socket(s) on this machine; ending them"),
        "{}",
        o.all()
    );
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 && o.code != 0 {
        // Unprivileged, the ptrace policy may forbid taking the backends' sockets: named.
        assert!(o.stderr.contains("pidfd_"), "{}", o.all());
        return;
    }
    assert_eq!(o.code, 0, "{}", o.all());
    for h in [&a, &b] {
        let backend = h.pid_port().0;
        assert!(
            o.stdout.contains(&format!(
                "ended: process {} (psql) to the Unix socket {sock} (served by {backend} (postgres)) (by pidfd_shutdown; no longer listed by the kernel)",
                h.client_pid()
            )),
            "{}",
            o.all()
        );
    }
    assert!(
        o.stdout.contains(
            "drained: rehost ended 2 Unix-socket connection(s) on this machine; the kernel lists none any more"
        ),
        "{}",
        o.all()
    );
    // Each backend saw its client end and exited, and the server logged it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for h in [&a, &b] {
        let backend = h.pid_port().0;
        loop {
            let log = std::fs::read_to_string(pg.log_file()).unwrap_or_default();
            if log.lines().any(|l| {
                l.contains(&format!("[{backend}]"))
                    && l.contains("disconnection: session time")
                    && l.contains("host=[local]")
            }) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no disconnection of backend {backend} in the server's log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(
            pg.sql(
                "postgres",
                &format!("select count(*) from pg_stat_activity where pid = {backend}")
            ),
            "0",
            "backend {backend} has ended"
        );
    }
    a.close();
    b.close();
}

/// A `[[services]]` entry with a Unix socket (a real PostgreSQL's), drained in a plan run: with
/// a `psql` session held on the socket the step fails at its timeout naming the session's
/// process and the socket; once the session has closed the next run drains, and the report's
/// Connections section shows the socket's client and when it left.
#[test]
fn a_drain_step_waits_for_the_clients_of_a_services_unix_socket() {
    let pg = rehost_test::postgres::Postgres::start();
    let d = TestDir::new();
    let sock = pg.socket();
    let sock = sock.to_str().unwrap();
    // A TCP session is no connection to the socket and is not waited for.
    let tcp = Held::psql(&pg, false, "", "tcp");
    let held = Held::psql(&pg, true, "", "held");
    let client = held.client_pid();
    write_plan(
        &d,
        &format!(
            r#"
[[services]]
id = "db"
host = "old"
sockets = ["{sock}"]
persistent_connections = true

[[steps]]
id = "drain-db"
do = "drain"
service = "db"
timeout = "2s"
"#
        ),
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_ne!(o.code, 0, "{}", o.all());
    assert!(
        o.all().contains(&format!(
            "1 client(s) still connected to service `db` (the Unix socket {sock}) on host old after 2s"
        )) && o.all().contains(&format!("process {client} (psql) on the Unix socket {sock}")),
        "{}",
        o.all()
    );
    // Closed a second into the next run: it drains.
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        held.close();
    });
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    closer.join().unwrap();
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.all().contains(&format!(
            "no client connected to service `db` (the Unix socket {sock}) on host old after"
        )),
        "{}",
        o.all()
    );
    let r = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_ne!(r.code, 2, "{}", r.all());
    let json: serde_json::Value =
        serde_json::from_str(&d.read(".rehost/plan/test/report.json")).unwrap();
    let attempts = json["run"]["attempts"].as_array().unwrap();
    let last = &attempts.last().unwrap()["drain"];
    assert_eq!(last["drained"], true, "{last}");
    assert_eq!(last["sockets"], serde_json::json!([sock]), "{last}");
    let u = &last["unix_clients"][0];
    assert_eq!(u["peer_pid"], client, "{last}");
    assert_eq!(u["first_seen_ms"], 0, "{last}");
    assert!(u["left_ms"].as_u64().is_some(), "{last}");
    assert!(
        last["clients"].as_array().is_none_or(|c| c.is_empty()),
        "{last}"
    );
    let md = d.read(".rehost/plan/test/report.md");
    assert!(
        md.contains(&format!(
            "Drained: no client was connected to the Unix socket(s) `{sock}`"
        )),
        "{md}"
    );
    assert!(
        md.contains(&format!("| {client} `psql` | `{sock}` |")),
        "{md}"
    );
    tcp.close();
}

/// The `drain` step's `terminate` on a service with only a Unix socket (a real PostgreSQL's):
/// the session still there at the timeout is ended (its backend's socket shut down), the step
/// succeeds once the socket's listing no longer has it, and the report names it as ended by
/// rehost with the mechanism.
#[test]
fn a_terminate_drain_step_ends_the_clients_of_a_services_unix_socket() {
    let pg = rehost_test::postgres::Postgres::start();
    let d = TestDir::new();
    let sock = pg.socket();
    let sock = sock.to_str().unwrap();
    let held = Held::psql(&pg, true, "", "held");
    let (client, backend) = (held.client_pid(), held.pid_port().0);
    write_plan(
        &d,
        &format!(
            r#"
[[services]]
id = "db"
host = "old"
sockets = ["{sock}"]
persistent_connections = true

[[steps]]
id = "drain-db"
do = "drain"
service = "db"
timeout = "2s"
terminate = true
"#
        ),
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    let r = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_ne!(r.code, 2, "{}", r.all());
    let json: serde_json::Value =
        serde_json::from_str(&d.read(".rehost/plan/test/report.json")).unwrap();
    let drain = &json["run"]["attempts"][0]["drain"];
    let u = &drain["unix_clients"][0];
    assert_eq!(u["peer_pid"], client, "{drain}");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 && o.code != 0 {
        // Unprivileged, the ptrace policy may forbid it: it remained, named with why.
        assert_eq!(u["ended"]["result"], "remained", "{drain}");
        return;
    }
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains(&format!(
            "ended 1 client(s) of service `db` (the Unix socket {sock}) on host old at the timeout (2s) by pidfd_shutdown; 0 left by themselves meanwhile"
        )),
        "{}",
        o.all()
    );
    assert_eq!(drain["drained"], true, "{drain}");
    assert_eq!(u["ended"]["result"], "ended", "{drain}");
    assert_eq!(u["ended"]["mechanism"], "pidfd_shutdown", "{drain}");
    assert!(u["left_ms"].as_u64().is_some(), "{drain}");
    let md = d.read(".rehost/plan/test/report.md");
    assert!(
        md.contains("Drained: rehost ended 1 client(s) at the timeout"),
        "{md}"
    );
    let row = md
        .lines()
        .find(|l| l.contains(&format!("| {client} `psql` | `{sock}` |")))
        .unwrap_or_else(|| panic!("{client} not in {md}"));
    assert!(
        row.contains("ended by rehost (`pidfd_shutdown`) after"),
        "{row}"
    );
    backend_ends(&pg, backend);
    held.close();
}

/// `conns drain --socket --terminate` through an sshd host: the host's agent ends the session
/// on PostgreSQL's socket (the `end_unix_connections` request), and rehost calls it ended only
/// once the host's listing no longer has it.
#[test]
fn conns_drain_socket_terminate_through_an_ssh_host_ends_the_session() {
    let sshd = Sshd::start();
    let pg = rehost_test::postgres::Postgres::start();
    let held = Held::psql(&pg, true, "", "held");
    let (client, backend) = (held.client_pid(), held.pid_port().0);
    let d = TestDir::new();
    let sock = pg.socket();
    let sock = sock.to_str().unwrap();
    let config = sshd.ssh_config();
    let o = rehost(
        &d,
        &[
            "conns",
            "drain",
            sshd.destination(),
            "--ssh-config",
            config.to_str().unwrap(),
            "--socket",
            sock,
            "--timeout",
            "1s",
            "--terminate",
            "--json",
        ],
    );
    let doc = json(&o);
    let t = &doc["terminated_unix"];
    assert_eq!(t["outcomes"][0]["connection"]["peer_pid"], client, "{doc}");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 && o.code != 0 {
        assert_eq!(t["outcomes"][0]["result"], "remained", "{doc}");
        return;
    }
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(doc["result"], "drained_by_ending", "{doc}");
    assert_eq!(t["outcomes"][0]["result"], "ended", "{doc}");
    assert_eq!(t["outcomes"][0]["mechanism"], "pidfd_shutdown", "{doc}");
    assert_eq!(t["still_listed"], 0, "{doc}");
    backend_ends(&pg, backend);
    held.close();
}

/// Waits (at most 10 s) until PostgreSQL no longer lists the backend `pid`.
fn backend_ends(pg: &rehost_test::postgres::Postgres, pid: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while pg.sql(
        "postgres",
        &format!("select count(*) from pg_stat_activity where pid = {pid}"),
    ) != "0"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "backend {pid} has not ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
