//! `rehost conns list --socket PATH / --db DB` (the clients of listening Unix sockets, the
//! database server's own view of its sessions joined to the TCP listing) and `rehost conns
//! watch` (who depends on a server, sampled once a second).

use super::conns::{open, open_as, ports_text, print_tcp, source_text};
use crate::cli::{ConnsListArgs, ConnsWatchArgs};
use crate::exit;
use rehost_db::activity::{Activity, Session};
use rehost_host::Bytes;
use rehost_host::conns::unix::UnixListing;
use rehost_host::conns::{Listing, MAX_CONNECTIONS, Source, Tracker, watch::Seen};
use std::time::{Duration, Instant};

/// Between two listings of a watch.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// What `--db` names: the database's connection and the host it is reached from (`None`:
/// the command's HOST).
fn database(args: &ConnsListArgs) -> Result<Option<(Option<String>, rehost_db::ConnInfo)>, String> {
    let Some(db) = &args.db else {
        return Ok(None);
    };
    if db.contains("://") || db.starts_with("sqlite:") {
        if args.new {
            return Err(
                "--new goes with a plan's database id (--db ID --plan PLAN), not a URL".into(),
            );
        }
        return rehost_db::ConnInfo::parse(db)
            .map(|c| Some((None, c)))
            .map_err(|e| e.to_string());
    }
    let Some(plan_path) = &args.on.plan else {
        return Err(format!(
            "--db `{}` is not a URL (postgres://…, mysql://…); a `[[databases]]` id needs --plan PLAN",
            rehost_tree::escape::text(db)
        ));
    };
    let pf = crate::plan_file::PlanFile::load_valid(plan_path, "use databases of")
        .map_err(|_| "the plan has errors".to_owned())?;
    let plan = pf.plan();
    let env = args.on.env.as_deref();
    let Some(d) = plan.database_in(db, env) else {
        return Err(format!(
            "the plan has no database `{}`",
            rehost_tree::escape::text(db)
        ));
    };
    let host = if args.new { &d.to } else { &d.from };
    if let Some(given) = &args.on.host
        && given != host
    {
        return Err(format!(
            "database `{}` is reached from host `{}`, not `{}`: leave out HOST with --db ID",
            d.id,
            rehost_tree::escape::text(host),
            rehost_tree::escape::text(given)
        ));
    }
    let conn = rehost_db::ConnInfo::of(&d, args.new).map_err(|e| e.to_string())?;
    Ok(Some((Some(host.clone()), conn)))
}

pub fn list(args: &ConnsListArgs) -> i32 {
    match list_all(args) {
        Ok(code) => code,
        Err(_) if crate::signals::cancelled() => exit::INTERRUPTED,
        Err(e) => {
            crate::term::error(&format!("failed to list the connections: {e}"));
            exit::TROUBLE
        }
    }
}

fn list_all(args: &ConnsListArgs) -> Result<i32, String> {
    let cancel = &crate::signals::CANCEL;
    let db = database(args)?;
    let host = match &db {
        Some((Some(h), _)) => open_as(Some(h.as_str()), &args.on)?,
        _ => open(&args.on)?,
    };
    let name = host.name().to_owned();
    // The TCP table is shown for --port; with --db alone, every port is listed for the join.
    let show_tcp = !args.ports.is_empty();
    let tcp = if show_tcp || db.is_some() {
        Some(
            host.connections(&args.ports, MAX_CONNECTIONS, cancel)
                .map_err(|e| e.to_string())?,
        )
    } else {
        None
    };
    let paths: Vec<Bytes> = args
        .sockets
        .iter()
        .map(|p| Bytes(p.as_os_str().as_encoded_bytes().to_vec()))
        .collect();
    let unix = if paths.is_empty() {
        None
    } else {
        Some(
            rehost_host::conns::unix::on_host(host.as_ref(), &paths, MAX_CONNECTIONS, cancel)
                .map_err(|e| e.to_string())?,
        )
    };
    let activity = match db {
        Some((_, conn)) => {
            let engine = conn.engine();
            let sql = rehost_db::connect(host.as_ref(), false, conn, cancel);
            let a =
                rehost_db::activity::sessions(engine, sql.as_ref()).map_err(|e| e.to_string())?;
            Some((sql.describe(), a))
        }
        None => None,
    };
    if args.json {
        let mut doc = serde_json::json!({ "host": name });
        if let Some(l) = tcp.as_ref().filter(|_| show_tcp) {
            doc["ports"] = serde_json::json!(args.ports);
            doc["source"] = serde_json::json!(l.source);
            doc["fallback"] = serde_json::json!(l.fallback);
            doc["limit"] = serde_json::json!(MAX_CONNECTIONS);
            doc["truncated"] = serde_json::json!(l.truncated);
            doc["connections"] = serde_json::json!(l.connections);
        }
        if let Some(u) = &unix {
            doc["unix"] = serde_json::json!({
                "paths": paths,
                "listening": u.listening,
                "source": u.source,
                "fallback": u.fallback,
                "truncated": u.truncated,
                "connections": u.connections,
            });
        }
        if let Some((target, a)) = &activity {
            let sessions: Vec<serde_json::Value> = a
                .sessions
                .iter()
                .map(|s| {
                    let mut v = serde_json::json!(s);
                    v["tcp"] = serde_json::json!(joined(s, tcp.as_ref()));
                    v
                })
                .collect();
            doc["database"] = serde_json::json!({
                "target": target,
                "truncated": a.truncated,
                "sessions": sessions,
            });
        }
        println!("{doc:#}");
        return Ok(exit::OK);
    }
    if let Some(l) = tcp.as_ref().filter(|_| show_tcp) {
        print_tcp(&name, &args.ports, l);
    }
    if let Some(u) = &unix {
        print_unix(&name, &paths, u);
    }
    if let Some((target, a)) = &activity {
        print_sessions(&name, target, a, tcp.as_ref());
    }
    Ok(exit::OK)
}

/// The TCP connection of a session: the server's end whose peer is the session's client
/// address and port (the port alone where the server names the client by host name).
fn joined<'l>(s: &Session, tcp: Option<&'l Listing>) -> Option<&'l rehost_host::conns::Connection> {
    let port = s.client_port?;
    tcp?.connections
        .iter()
        .find(|c| c.peer_port == port && s.client_addr.is_none_or(|a| a == c.peer_addr))
}

fn print_unix(name: &str, paths: &[Bytes], l: &UnixListing) {
    if !l.connections.is_empty() {
        println!(
            "{:<40} {:<28} {:<28} {:>8}",
            "SOCKET", "PROCESS", "CLIENT PROCESS", "RECV-Q"
        );
    }
    for c in &l.connections {
        println!(
            "{:<40} {:<28} {:<28} {:>8}",
            c.path_text(),
            c.process(),
            if c.peer_inode.is_some() {
                c.peer_process()
            } else {
                "not read (no peers in /proc/net/unix)".into()
            },
            c.recv_queue
        );
    }
    let source = match (&l.source, &l.fallback) {
        (Source::Netlink, _) => "netlink sock_diag".to_owned(),
        (Source::Procfs, why) => format!(
            "/proc/net/unix, netlink being refused: {}",
            rehost_tree::escape::text(why.as_deref().unwrap_or("-"))
        ),
    };
    for (path, conns) in rehost_host::conns::unix::by_path(paths, l) {
        let p = rehost_tree::escape::display(path.as_bytes());
        if l.listening.contains(path) || !conns.is_empty() {
            let n = conns.len();
            println!(
                "{n} connection{} to the Unix socket {p} on {} (read with {source})",
                if n == 1 { "" } else { "s" },
                rehost_tree::escape::text(name),
            );
        } else {
            println!(
                "nothing listens on the Unix socket {p} on {} (read with {source})",
                rehost_tree::escape::text(name)
            );
        }
    }
    if l.truncated {
        crate::term::error(&format!(
            "more than {MAX_CONNECTIONS} Unix socket connections: only the first {MAX_CONNECTIONS} are listed"
        ));
    }
}

/// Seconds as shown: `3.2s`, `4m05s`.
fn age(s: Option<f64>) -> String {
    match s {
        None => "-".into(),
        Some(s) if s < 60.0 => format!("{:.1}s", s.max(0.0)),
        Some(s) => {
            let s = s as u64;
            match s {
                ..3600 => format!("{}m{:02}s", s / 60, s % 60),
                _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
            }
        }
    }
}

fn print_sessions(name: &str, target: &str, a: &Activity, tcp: Option<&Listing>) {
    let t = |s: &Option<String>| rehost_tree::escape::text(s.as_deref().unwrap_or("-"));
    if !a.sessions.is_empty() {
        println!(
            "{:<8} {:<12} {:<12} {:<16} {:<24} {:<22} {:>8} {:>9}  TCP",
            "ID", "USER", "DATABASE", "APPLICATION", "CLIENT", "STATE", "FOR", "XACT-AGE"
        );
    }
    let mut matched = 0;
    for s in &a.sessions {
        let client = match (s.client_addr, s.client_port, &s.client_host) {
            (Some(a), Some(p), _) => std::net::SocketAddr::new(a, p).to_string(),
            (_, _, Some(h)) => rehost_tree::escape::text(h),
            _ => "local socket".into(),
        };
        let state = match (&s.command, &s.state) {
            (Some(c), Some(st)) if !st.is_empty() => format!("{c}: {st}"),
            (Some(c), _) => c.clone(),
            (None, st) => st.clone().unwrap_or_else(|| "-".into()),
        };
        let j = joined(s, tcp);
        matched += usize::from(j.is_some());
        println!(
            "{:<8} {:<12} {:<12} {:<16} {:<24} {:<22} {:>8} {:>9}  {}",
            s.id,
            t(&s.user),
            t(&s.database),
            t(&s.application),
            client,
            rehost_tree::escape::text(&state),
            age(s.state_s),
            age(s.transaction_age_s),
            match j {
                Some(c) => format!("port {} {}", c.local_port, c.process()),
                None if s.client_port.is_some() => "not in the TCP listing".into(),
                None => "-".into(),
            }
        );
    }
    let n = a.sessions.len();
    let open = a
        .sessions
        .iter()
        .filter(|s| s.transaction_age_s.is_some())
        .count();
    println!(
        "{n} session{} on {} as the server sees them ({open} in an open transaction; the session that read them left out); {matched} joined to the TCP connections on {} by client address and port",
        if n == 1 { "" } else { "s" },
        rehost_tree::escape::text(target),
        rehost_tree::escape::text(name),
    );
    if a.truncated {
        crate::term::error(&format!(
            "more than {} sessions: only the first are listed",
            rehost_db::activity::MAX_SESSIONS
        ));
    }
}

pub fn watch(args: &ConnsWatchArgs) -> i32 {
    crate::signals::install();
    let limit = match &args.duration {
        None => None,
        Some(d) => match rehost_plan::parse_duration(d) {
            Some(d) => Some(d),
            None => {
                crate::term::error(&format!(
                    "--for `{}` is not a duration; write it like `90s`, `10m` or `1h`",
                    rehost_tree::escape::text(d)
                ));
                return exit::TROUBLE;
            }
        },
    };
    let host = match open(&args.on) {
        Ok(h) => h,
        Err(e) => {
            crate::term::error(&format!("failed to open the host: {e}"));
            return exit::TROUBLE;
        }
    };
    let name = host.name().to_owned();
    let ports = ports_text(&args.ports);
    let started = Instant::now();
    let started_at = jiff::Timestamp::now();
    let mut tracker = Tracker::default();
    let mut times = Vec::new();
    let mut source = String::new();
    let mut truncated = false;
    let mut shown = usize::MAX;
    loop {
        let listing = match host.connections(&args.ports, MAX_CONNECTIONS, &crate::signals::CANCEL)
        {
            Ok(l) => l,
            Err(_) if crate::signals::cancelled() => break,
            Err(e) => {
                crate::term::error(&format!("failed to list the connections: {e}"));
                return exit::TROUBLE;
            }
        };
        let at = started.elapsed();
        tracker.observe(&listing.connections, at.as_millis() as u64);
        times.push(at.as_millis() as u64);
        truncated |= listing.truncated;
        if source.is_empty() {
            source = source_text(&listing);
        }
        let n = listing.connections.len();
        if n != shown {
            eprintln!(
                "watching {ports} on {}: {n} connection(s) now, {} seen ({}s)",
                rehost_tree::escape::text(&name),
                tracker.clients().len(),
                at.as_secs()
            );
            shown = n;
        }
        if limit.is_some_and(|l| at >= l) {
            break;
        }
        let until = started + WATCH_INTERVAL * times.len() as u32;
        while Instant::now() < until && !crate::signals::cancelled() {
            std::thread::sleep(Duration::from_millis(50));
        }
        if crate::signals::cancelled() {
            break;
        }
    }
    let seen = rehost_host::conns::watch::summarize(&tracker, &times);
    let over_ms = times.last().copied().unwrap_or(0) - times.first().copied().unwrap_or(0);
    if args.json {
        let doc = serde_json::json!({
            "host": name,
            "ports": args.ports,
            "started": started_at.to_string(),
            "listings": times.len(),
            "interval_ms": WATCH_INTERVAL.as_millis() as u64,
            "over_ms": over_ms,
            "truncated": truncated,
            "untracked": tracker.untracked,
            "clients": seen,
        });
        println!("{doc:#}");
        return exit::OK;
    }
    if args.toml {
        print_toml(&name, &args.ports, started_at, over_ms, &seen);
        return exit::OK;
    }
    if !seen.is_empty() {
        println!(
            "{:<40} {:<6} {:>6} {:>8} {:>8} {:>9}  AT THE END",
            "CLIENT", "PORT", "CONNS", "FIRST", "LAST", "SEEN FOR"
        );
    }
    for s in &seen {
        println!(
            "{:<40} {:<6} {:>6} {:>8} {:>8} {:>9}  {}",
            s.peer_addr,
            s.local_port,
            s.connections,
            secs(s.first_seen_ms),
            secs(s.last_seen_ms),
            secs(s.seen_for_ms()),
            if s.connected_at_end {
                "connected"
            } else {
                "gone"
            }
        );
    }
    println!(
        "{} client address(es) seen on {ports} on {} in {} listing(s) over {} from {} (read with {source}); a listing a second: a connection shorter than that may not be seen",
        seen.len(),
        rehost_tree::escape::text(&name),
        times.len(),
        secs(over_ms),
        started_at.round(jiff::Unit::Second).unwrap_or(started_at),
    );
    if tracker.untracked > 0 {
        crate::term::error(&format!(
            "more than {} distinct connections: {} further ones were counted, not kept",
            rehost_host::conns::MAX_TRACKED,
            tracker.untracked
        ));
    }
    if truncated {
        crate::term::error(&format!(
            "a listing held more than {MAX_CONNECTIONS} connections: only the first were seen"
        ));
    }
    exit::OK
}

/// Milliseconds as seconds, `2.0s`.
fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// The clients seen as the plan's `[[clients]]`, one entry per local port; `files` (where each
/// client keeps the address) is for the operator to fill in.
fn print_toml(name: &str, ports: &[u16], at: jiff::Timestamp, over_ms: u64, seen: &[Seen]) {
    let q = |s: &str| serde_json::Value::String(rehost_tree::escape::text(s)).to_string();
    println!(
        "# Clients seen by `rehost conns watch` on {} ({}) from {} for {}.",
        rehost_tree::escape::text(name),
        ports_text(ports),
        at.round(jiff::Unit::Second).unwrap_or(at),
        secs(over_ms)
    );
    println!("# A listing a second: clients that connect rarely or briefly may be missing.");
    for port in ports {
        let hosts: Vec<String> = seen
            .iter()
            .filter(|s| s.local_port == *port)
            .map(|s| q(&s.peer_addr.to_string()))
            .collect();
        println!();
        if hosts.is_empty() {
            println!("# port {port}: no client seen");
            continue;
        }
        println!("[[clients]]");
        println!("id = \"port-{port}-clients\"");
        println!("hosts = [{}]", hosts.join(", "));
        println!("count = {}", hosts.len());
        println!(
            "description = {}",
            q(&format!(
                "connected to port {port} on {name} (seen by rehost conns watch)"
            ))
        );
        println!("# files = [\"…\"]   # where these clients keep the address: fill in");
    }
}

/// The Unix sockets of a `conns drain` (`--socket`): who is connected to them, across
/// listings, by the service's end of each connection; at most `MAX_TRACKED` kept.
pub(super) struct UnixDrain {
    paths: Vec<Bytes>,
    /// Each connection seen, and whether it was there at the last listing.
    seen: Vec<(rehost_host::conns::unix::UnixConnection, bool)>,
    index: std::collections::HashMap<(Bytes, u64), usize>,
}

impl UnixDrain {
    pub(super) fn new(paths: &[std::path::PathBuf]) -> UnixDrain {
        UnixDrain {
            paths: paths
                .iter()
                .map(|p| Bytes(p.as_os_str().as_encoded_bytes().to_vec()))
                .collect(),
            seen: Vec::new(),
            index: Default::default(),
        }
    }

    /// What a drain waits for: `port 5432`, `port 5432 and the Unix socket PATH`, `the Unix
    /// sockets A, B`.
    pub(super) fn with_sockets(&self, ports: &[u16]) -> String {
        let socks: Vec<String> = self
            .paths
            .iter()
            .map(|p| rehost_tree::escape::display(p.as_bytes()))
            .collect();
        let socks = match socks.len() {
            0 => return ports_text(ports),
            1 => format!("the Unix socket {}", socks[0]),
            _ => format!("the Unix sockets {}", socks.join(", ")),
        };
        match ports {
            [] => socks,
            _ => format!("{} and {socks}", ports_text(ports)),
        }
    }

    /// The TCP listing of a drain: none asked for when it names only sockets (an empty port
    /// list would list every port).
    pub(super) fn tcp(
        &self,
        host: &dyn rehost_host::Host,
        ports: &[u16],
    ) -> Result<Listing, String> {
        if ports.is_empty() && !self.paths.is_empty() {
            return Ok(Listing {
                connections: Vec::new(),
                source: Source::Netlink,
                fallback: None,
                truncated: false,
                processes_not_read: false,
            });
        }
        host.connections(ports, MAX_CONNECTIONS, &crate::signals::CANCEL)
            .map_err(|e| e.to_string())
    }

    /// Lists the sockets' connections; returns how many there are now.
    pub(super) fn observe(&mut self, host: &dyn rehost_host::Host) -> Result<usize, String> {
        if self.paths.is_empty() {
            return Ok(0);
        }
        let l = rehost_host::conns::unix::on_host(
            host,
            &self.paths,
            MAX_CONNECTIONS,
            &crate::signals::CANCEL,
        )
        .map_err(|e| e.to_string())?;
        for s in &mut self.seen {
            s.1 = false;
        }
        for c in &l.connections {
            match self.index.get(&(c.path.clone(), c.inode)) {
                Some(&i) => self.seen[i].1 = true,
                None if self.seen.len() < rehost_host::conns::MAX_TRACKED => {
                    self.index
                        .insert((c.path.clone(), c.inode), self.seen.len());
                    self.seen.push((c.clone(), true));
                }
                None => {}
            }
        }
        Ok(l.connections.len())
    }

    /// How many connections were seen in all.
    pub(super) fn seen(&self) -> usize {
        self.seen.len()
    }

    /// Each connection still there at the last listing, described for the operator: the
    /// client's process, the socket, the service's process.
    pub(super) fn remaining(&self) -> impl Iterator<Item = String> + '_ {
        self.seen.iter().filter(|s| s.1).map(|(c, _)| {
            format!(
                "process {} to the Unix socket {} (served by {})",
                c.peer_process(),
                c.path_text(),
                c.process()
            )
        })
    }

    /// The connections still there at the last listing, and the paths asked for: what
    /// `--terminate` ends.
    pub(super) fn to_end(&self) -> (&[Bytes], Vec<rehost_host::conns::unix::UnixConnection>) {
        let conns = self
            .seen
            .iter()
            .filter(|s| s.1)
            .map(|(c, _)| c.clone())
            .collect();
        (&self.paths, conns)
    }

    /// The clients still there, briefly: `PID (COMMAND) on PATH`.
    pub(super) fn remaining_peers(&self) -> impl Iterator<Item = String> + '_ {
        self.seen
            .iter()
            .filter(|s| s.1)
            .map(|(c, _)| format!("{} on {}", c.peer_process(), c.path_text()))
    }
}
