//! Persistent connections (issue 21): `rehost conns list` and `conns drain` against real TCP
//! connections on loopback (IPv4 and IPv6), the same listing through an ssh host's agent, and
//! the `drain` step kind in a plan run with what the report shows of it.

use crate::support::*;
use rehost_test::TestDir;
use rehost_test::sshd::Sshd;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// A listener and clients connected to it, accepted: the test process holds both ends.
pub(crate) struct Service {
    listener: TcpListener,
    pub(crate) clients: Vec<TcpStream>,
    served: Vec<TcpStream>,
}

impl Service {
    pub(crate) fn start(addr: &str, clients: usize) -> Service {
        let listener = TcpListener::bind(addr).unwrap();
        let a = listener.local_addr().unwrap();
        let clients: Vec<TcpStream> = (0..clients)
            .map(|_| TcpStream::connect(a).unwrap())
            .collect();
        let served = (0..clients.len())
            .map(|_| listener.accept().unwrap().0)
            .collect();
        Service {
            listener,
            clients,
            served,
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }

    /// Each client's address as the server sees it (`ADDR:PORT`).
    pub(crate) fn peers(&self) -> Vec<String> {
        self.clients
            .iter()
            .map(|c| c.local_addr().unwrap().to_string())
            .collect()
    }

    /// Both ends of every connection closed.
    fn close(&mut self) {
        self.clients.clear();
        self.served.clear();
    }
}

fn json(o: &rehost_test::Output) -> serde_json::Value {
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.all()))
}

/// The connections of a `conns list --json`, as `local_port peer pid` lines, sorted.
fn listed(doc: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let peer: std::net::SocketAddr = format!(
                "{}:{}",
                match c["peer_addr"].as_str().unwrap() {
                    a if a.contains(':') => format!("[{a}]"),
                    a => a.to_owned(),
                },
                c["peer_port"]
            )
            .parse()
            .unwrap();
            format!("{} {peer} {}", c["local_port"], c["pid"])
        })
        .collect();
    v.sort();
    v
}

#[test]
fn conns_list_names_each_client_with_its_port_and_owning_process() {
    let v4 = Service::start("127.0.0.1:0", 2);
    let v6 = Service::start("[::1]:0", 1);
    // Not asked for: a third service's client is not listed.
    let _other = Service::start("127.0.0.1:0", 1);
    let d = TestDir::new();
    let (p4, p6) = (v4.port().to_string(), v6.port().to_string());
    let o = rehost(
        &d,
        &["conns", "list", "--port", &p4, "--port", &p6, "--json"],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    let doc = json(&o);
    assert_eq!(doc["source"], "netlink", "{doc}");
    assert_eq!(doc["host"], "this machine");
    let me = std::process::id();
    let mut expected: Vec<String> = v4
        .peers()
        .iter()
        .map(|p| format!("{p4} {p} {me}"))
        .chain(v6.peers().iter().map(|p| format!("{p6} {p} {me}")))
        .collect();
    expected.sort();
    assert_eq!(listed(&doc), expected);

    let o = rehost(&d, &["conns", "list", "--port", &p4]);
    assert_eq!(o.code, 0, "{}", o.all());
    for peer in v4.peers() {
        let line = o
            .stdout
            .lines()
            .find(|l| l.contains(&peer))
            .unwrap_or_else(|| panic!("{peer} not listed: {}", o.stdout));
        assert!(line.starts_with(&p4), "{line}");
        assert!(line.contains(&format!("{me} (")), "{line}");
    }
    assert!(
        o.stdout.contains(&format!(
            "2 established connections to port {p4} on this machine (read with netlink sock_diag)"
        )),
        "{}",
        o.stdout
    );

    // Without the processes: the same connections, no pid, and said so (not "not visible").
    let o = rehost(
        &d,
        &["conns", "list", "--port", &p4, "--no-process", "--json"],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    let doc = json(&o);
    assert_eq!(doc["processes"], false, "{doc}");
    let conns = doc["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 2, "{doc}");
    assert!(conns.iter().all(|c| c.get("pid").is_none()), "{doc}");
    let o = rehost(&d, &["conns", "list", "--port", &p4, "--no-process"]);
    for peer in v4.peers() {
        let line = o.stdout.lines().find(|l| l.contains(&peer)).unwrap();
        assert!(
            line.contains("not read") && !line.contains("not visible"),
            "{line}"
        );
    }
}

#[test]
fn conns_list_through_an_ssh_host_equals_the_local_one() {
    let sshd = Sshd::start();
    let svc = Service::start("127.0.0.1:0", 2);
    let d = TestDir::new();
    let port = svc.port().to_string();
    let local = rehost(&d, &["conns", "list", "--port", &port, "--json"]);
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
            "--port",
            &port,
            "--json",
        ],
    );
    assert_eq!(remote.code, 0, "{}", remote.all());
    let (local, remote) = (json(&local), json(&remote));
    assert_eq!(listed(&local).len(), 2, "{local}");
    assert_eq!(local["connections"], remote["connections"]);
    assert_eq!(remote["host"], sshd.destination());
}

/// Waits (at most 60 s) until the run's journal in `state` records the `drain` step started,
/// then long enough for its first listings: the clients are seen before they leave, however
/// long opening the hosts took.
fn when_draining(d: &TestDir, state: &str) {
    let journal = d.join(&format!(".rehost/plan/{state}/journal"));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&journal).is_ok_and(|j| {
        j.lines()
            .any(|l| l.contains("step_started") && l.contains(r#""id":"drain""#))
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "the drain never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1200));
}

/// A plan whose service `app` on host `old` listens on `port`, clients holding connections to
/// it, and a step draining it within `timeout`.
fn drain_plan(d: &TestDir, port: u16, timeout: &str) {
    write_plan(
        d,
        &format!(
            r#"
[[services]]
id = "app"
host = "old"
ports = [{port}]
persistent_connections = true

[[steps]]
id = "drain"
do = "drain"
service = "app"
timeout = "{timeout}"
"#
        ),
    );
}

#[test]
fn a_drain_step_waits_until_the_clients_leave_and_the_report_shows_who_left_when() {
    let mut svc = Service::start("127.0.0.1:0", 2);
    let peers = svc.peers();
    let d = TestDir::new();
    drain_plan(&d, svc.port(), "30s");
    let o = std::thread::scope(|s| {
        let run = s.spawn(|| rehost(&d, &["run", "plan.toml", "--env", "test"]));
        // Mid-wait: the step has listed them at least once.
        when_draining(&d, "test");
        svc.close();
        run.join().unwrap()
    });
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("no client connected to service `app`")
            && o.stdout.contains("2 client(s) left while waiting"),
        "{}",
        o.all()
    );
    assert!(
        o.all().contains("draining `app`: 2 connection(s)"),
        "{}",
        o.all()
    );

    let r = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let json: serde_json::Value =
        serde_json::from_str(&d.read(".rehost/plan/test/report.json")).unwrap();
    let drain = &json["run"]["attempts"][0]["drain"];
    assert_eq!(drain["drained"], true, "{drain}");
    let clients = drain["clients"].as_array().unwrap();
    let mut seen: Vec<&str> = clients
        .iter()
        .map(|c| c["peer"].as_str().unwrap())
        .collect();
    seen.sort();
    let mut want: Vec<&str> = peers.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(seen, want);
    for c in clients {
        assert_eq!(c["first_seen_ms"], 0, "{c}");
        assert!(c["left_ms"].as_u64().unwrap() >= 1000, "{c}");
        assert_eq!(c["pid"], std::process::id(), "{c}");
    }
    let md = d.read(".rehost/plan/test/report.md");
    assert!(md.contains("## Connections"), "{md}");
    assert!(
        md.contains("Drained: no client was connected to port"),
        "{md}"
    );
    for p in &peers {
        assert!(md.contains(&format!("`{p}`")), "{p} not in {md}");
    }
}

#[test]
fn a_drain_step_fails_at_its_timeout_naming_the_client_still_connected() {
    let mut svc = Service::start("127.0.0.1:0", 2);
    let d = TestDir::new();
    drain_plan(&d, svc.port(), "2s");
    // One leaves at once, one stays.
    svc.clients.truncate(1);
    svc.served.truncate(1);
    let stays = svc.peers().remove(0);
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_ne!(o.code, 0, "{}", o.all());
    let me = std::process::id();
    assert!(
        o.all().contains(&format!(
            "1 client(s) still connected to service `app` (port {}) on host old after 2s; end these by hand on the clients, then run again: {stays} (process {me} ",
            svc.port()
        )),
        "{}",
        o.all()
    );
    let r = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_ne!(r.code, 2, "{}", r.all());
    let md = d.read(".rehost/plan/test/report.md");
    assert!(
        md.contains("NOT drained: 1 client(s) were still connected"),
        "{md}"
    );
    let row = md
        .lines()
        .find(|l| l.contains(&format!("`{stays}`")))
        .unwrap_or_else(|| panic!("{stays} not in {md}"));
    assert!(
        row.contains("STILL CONNECTED") && row.contains("at the start"),
        "{row}"
    );
    drop(svc);
}

#[test]
fn conns_drain_waits_for_the_clients_and_names_those_that_stay() {
    let mut svc = Service::start("[::1]:0", 1);
    let d = TestDir::new();
    let port = svc.port().to_string();
    let o = std::thread::scope(|s| {
        let run = s.spawn(|| rehost(&d, &["conns", "drain", "--port", &port, "--timeout", "30s"]));
        std::thread::sleep(Duration::from_millis(1500));
        svc.close();
        run.join().unwrap()
    });
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout
            .starts_with("drained: no established connection to port"),
        "{}",
        o.all()
    );
    assert!(o.stderr.contains("waiting: 1 connection(s)"), "{}", o.all());

    let svc = Service::start("[::1]:0", 1);
    let port = svc.port().to_string();
    let o = rehost(&d, &["conns", "drain", "--port", &port, "--timeout", "1s"]);
    assert_eq!(o.code, 1, "{}", o.all());
    let peer = svc.peers().remove(0);
    assert!(
        o.stderr
            .contains(&format!("  {peer} (process {} ", std::process::id())),
        "{}",
        o.all()
    );
}

/// A `psql` session held open (its standard input stays open), with the server's view of it.
pub(crate) struct Session {
    child: std::process::Child,
    /// The server process serving it, and the client's port as the server sees it.
    pub(crate) backend_pid: u32,
    pub(crate) client_port: u16,
}

impl Session {
    pub(crate) fn open(pg: &rehost_test::postgres::Postgres) -> Session {
        use std::io::{BufRead, Write};
        let mut child = std::process::Command::new(rehost_test::postgres::tool("psql"))
            .args(["-X", "-q", "-A", "-t", "-d", &pg.url("postgres")])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.as_mut().unwrap();
        stdin
            .write_all(b"select pg_backend_pid() || '|' || inet_client_port();\n")
            .unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let (pid, port) = line.trim().split_once('|').unwrap();
        Session {
            child,
            backend_pid: pid.parse().unwrap(),
            client_port: port.parse().unwrap(),
        }
    }

    /// psql ends at the end of its input, closing the session.
    fn close(mut self) {
        drop(self.child.stdin.take());
        assert!(self.child.wait().unwrap().success());
    }
}

/// A session still open when its test ends (or fails) is ended with it.
impl Drop for Session {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn postgresql_sessions_are_listed_with_their_backends_and_drained_when_they_end() {
    let pg = rehost_test::postgres::Postgres::start();
    let (a, b) = (Session::open(&pg), Session::open(&pg));
    let d = TestDir::new();
    let port = pg.port().to_string();
    let o = rehost(&d, &["conns", "list", "--port", &port, "--json"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let doc = json(&o);
    let mut seen: Vec<(u64, u64, String)> = doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["peer_port"].as_u64().unwrap(),
                c["pid"].as_u64().unwrap(),
                c["command"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    let mut want: Vec<(u64, u64, String)> = [&a, &b]
        .iter()
        .map(|s| {
            (
                u64::from(s.client_port),
                u64::from(s.backend_pid),
                "postgres".to_owned(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(seen, want, "each session by its client port and backend");

    // One session ends while the drain waits; the other is named at the timeout.
    let (stays_pid, stays_port) = (b.backend_pid, b.client_port);
    let o = std::thread::scope(|s| {
        let run = s.spawn(|| rehost(&d, &["conns", "drain", "--port", &port, "--timeout", "3s"]));
        std::thread::sleep(Duration::from_millis(1200));
        a.close();
        run.join().unwrap()
    });
    assert_eq!(o.code, 1, "{}", o.all());
    assert!(
        o.stderr.contains(&format!(
            "1 client(s) still connected to port {port} on this machine after 3s"
        )) && o.stderr.contains(&format!(
            "  127.0.0.1:{stays_port} (process {stays_pid} postgres) to port {port}"
        )),
        "{}",
        o.all()
    );
    b.close();
    let o = rehost(&d, &["conns", "drain", "--port", &port, "--timeout", "3s"]);
    assert_eq!(o.code, 0, "{}", o.all());
}

#[test]
fn a_drain_step_on_an_ssh_host_lists_through_its_agent() {
    let (old, new) = (Sshd::start(), Sshd::start());
    let mut svc = Service::start("[::1]:0", 1);
    let peer = svc.peers().remove(0);
    let d = TestDir::new();
    let body = format!(
        "[[services]]\nid = \"app\"\nhost = \"old\"\nports = [{}]\n\n[[steps]]\nid = \"drain\"\ndo = \"drain\"\nservice = \"app\"\ntimeout = \"30s\"\n",
        svc.port()
    );
    d.write("plan.toml", ssh_plan(&old, &new, &body));
    let o = std::thread::scope(|s| {
        let run = s.spawn(|| rehost(&d, &["run", "plan.toml"]));
        when_draining(&d, "production");
        svc.close();
        run.join().unwrap()
    });
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout
            .contains("no client connected to service `app` (port ")
            && o.stdout.contains("on host old after"),
        "{}",
        o.all()
    );
    let r = rehost(&d, &["report", "plan.toml"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let json: serde_json::Value =
        serde_json::from_str(&d.read(".rehost/plan/production/report.json")).unwrap();
    let drain = &json["run"]["attempts"][0]["drain"];
    assert_eq!(drain["host"], "old", "{drain}");
    assert_eq!(drain["clients"][0]["peer"], peer.as_str(), "{drain}");
    assert!(drain["clients"][0]["left_ms"].as_u64().is_some(), "{drain}");
}
