//! `rehost conns list|drain [HOST]`: who is connected to a host's services, read from the
//! host's kernel (this machine in process, another through its agent: `Host::connections`).

use crate::cli::{ConnsDrainArgs, ConnsHost, ConnsListArgs};
use crate::exit;
use rehost_host::Host;
use rehost_host::conns::{Listing, MAX_CONNECTIONS, Tracker};
use std::io::Write;
use std::time::{Duration, Instant};

/// Between two listings of a drain.
const DRAIN_INTERVAL: Duration = Duration::from_secs(1);

pub fn list(args: &ConnsListArgs) -> i32 {
    crate::signals::install();
    if !args.sockets.is_empty() || args.db.is_some() {
        return super::conns_view::list(args);
    }
    let go = || -> Result<(String, Listing), String> {
        let host = open(&args.on)?;
        let listing = host
            .connections_with(
                &args.ports,
                MAX_CONNECTIONS,
                !args.no_process,
                &crate::signals::CANCEL,
            )
            .map_err(|e| e.to_string())?;
        Ok((host.name().to_owned(), listing))
    };
    let (name, listing) = match go() {
        Ok(l) => l,
        Err(_) if crate::signals::cancelled() => return exit::INTERRUPTED,
        Err(e) => {
            crate::term::error(&format!("failed to list the connections: {e}"));
            return exit::TROUBLE;
        }
    };
    if args.json {
        // Serialised straight from the listing: through a `serde_json::Value` each connection
        // would be a map of ten allocated keys first (a third of a 10,000-connection listing's
        // time).
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            host: &'a str,
            ports: &'a [u16],
            source: rehost_host::conns::Source,
            fallback: &'a Option<String>,
            limit: usize,
            truncated: bool,
            processes: bool,
            connections: &'a [rehost_host::conns::Connection],
        }
        let doc = Doc {
            host: &name,
            ports: &args.ports,
            source: listing.source,
            fallback: &listing.fallback,
            limit: MAX_CONNECTIONS,
            truncated: listing.truncated,
            processes: !listing.processes_not_read,
            connections: &listing.connections,
        };
        // Buffered: stdout is line-buffered, and 10,000 connections pretty-printed are 100,000
        // lines (a write each, most of the listing's time).
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        let _ = serde_json::to_writer_pretty(&mut out, &doc)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush());
        return exit::OK;
    }
    print_tcp(&name, &args.ports, &listing);
    exit::OK
}

pub fn drain(args: &ConnsDrainArgs) -> i32 {
    crate::signals::install();
    let Some(limit) = rehost_plan::parse_duration(&args.timeout) else {
        crate::term::error(&format!(
            "--timeout `{}` is not a duration; write it like `90s`, `10m` or `1h`",
            rehost_tree::escape::text(&args.timeout)
        ));
        return exit::TROUBLE;
    };
    let host = match open(&args.on) {
        Ok(h) => h,
        Err(e) => {
            crate::term::error(&format!("failed to open the host: {e}"));
            return exit::TROUBLE;
        }
    };
    let name = rehost_tree::escape::text(host.name());
    let mut unix = super::conns_view::UnixDrain::new(&args.sockets);
    let ports = unix.with_sockets(&args.ports);
    let started = Instant::now();
    let mut tracker = Tracker::default();
    loop {
        let listing = match unix.tcp(host.as_ref(), &args.ports) {
            Ok(l) => l,
            Err(_) if crate::signals::cancelled() => return exit::INTERRUPTED,
            Err(e) => {
                crate::term::error(&format!("failed to list the connections: {e}"));
                return exit::TROUBLE;
            }
        };
        let at = started.elapsed();
        tracker.observe(&listing.connections, at.as_millis() as u64);
        let on_sockets = match unix.observe(host.as_ref()) {
            Ok(n) => n,
            Err(_) if crate::signals::cancelled() => return exit::INTERRUPTED,
            Err(e) => {
                crate::term::error(&format!("failed to list the connections: {e}"));
                return exit::TROUBLE;
            }
        };
        let n = listing.connections.len() + on_sockets;
        let doc = |result: &str| {
            serde_json::json!({
                "host": host.name(),
                "ports": args.ports,
                "sockets": args.sockets,
                "result": result,
                "after_ms": at.as_millis() as u64,
                "timeout_ms": limit.as_millis() as u64,
                "clients": tracker.clients(),
                "untracked": tracker.untracked,
                "unix_clients_seen": unix.seen(),
                "unix_remaining": unix.remaining().collect::<Vec<_>>(),
            })
        };
        if n == 0 && args.json {
            print_json(&doc("drained"));
            return exit::OK;
        }
        if n == 0 {
            println!(
                "drained: no established connection to {ports} on {name} after {}s; {} client(s) left while waiting",
                at.as_secs(),
                tracker.clients().len() + unix.seen()
            );
            return exit::OK;
        }
        if at >= limit && args.terminate {
            let mut json = args.json.then(|| doc("terminated"));
            // The Unix sockets' clients first (their lines and `terminated_unix`), then the
            // TCP ones, whose ending prints the document.
            let unix_code = (on_sockets > 0)
                .then(|| super::conns_end::unix_at_timeout(&*host, &unix, json.as_mut()));
            if unix_code == Some(exit::INTERRUPTED) {
                return exit::INTERRUPTED;
            }
            if listing.connections.is_empty() {
                let code = unix_code.unwrap_or(exit::OK);
                if let Some(mut doc) = json {
                    doc["result"] = if code == exit::OK {
                        "drained_by_ending".into()
                    } else {
                        "remaining".into()
                    };
                    print_json(&doc);
                }
                return code;
            }
            let code = super::conns_end::at_timeout(
                &*host,
                &args.ports,
                &listing.connections,
                limit,
                json,
            );
            return super::conns_end::worse(code, unix_code.unwrap_or(exit::OK));
        }
        if at >= limit && args.json {
            for c in tracker.remaining() {
                eprintln!("rehost: still connected: {}", c.describe());
            }
            print_json(&doc("timeout"));
            return exit::FINDINGS;
        }
        if at >= limit {
            eprintln!(
                "rehost: {n} client(s) still connected to {ports} on {name} after {}; end these by hand:",
                rehost_plan::format_duration(limit)
            );
            for c in tracker.remaining() {
                eprintln!("  {}", c.describe());
            }
            for c in unix.remaining() {
                eprintln!("  {c}");
            }
            return exit::FINDINGS;
        }
        let peers: Vec<String> = tracker
            .remaining()
            .map(|c| c.peer())
            .chain(unix.remaining_peers())
            .take(5)
            .collect();
        eprintln!(
            "waiting: {n} connection(s) to {ports} ({}s of {}): {}{}",
            at.as_secs(),
            rehost_plan::format_duration(limit),
            peers.join(", "),
            if n > peers.len() { ", …" } else { "" }
        );
        let until = Instant::now() + DRAIN_INTERVAL;
        while Instant::now() < until {
            if crate::signals::cancelled() {
                return exit::INTERRUPTED;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One JSON document on stdout, buffered.
pub(super) fn print_json(doc: &serde_json::Value) {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let _ = serde_json::to_writer_pretty(&mut out, doc)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
}

/// The text form of a TCP listing: a table, a line saying what was listed, a line on stderr
/// when it was truncated.
pub(super) fn print_tcp(name: &str, ports: &[u16], listing: &Listing) {
    // Buffered: a line each would be a write each.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    if !listing.connections.is_empty() {
        let _ = writeln!(
            out,
            "{:<6} {:<46} {:<28} {:>8} {:>8}",
            "PORT", "PEER", "PROCESS", "SEND-Q", "RECV-Q"
        );
    }
    for c in &listing.connections {
        let _ = writeln!(
            out,
            "{:<6} {:<46} {:<28} {:>8} {:>8}",
            c.local_port,
            c.peer(),
            if listing.processes_not_read {
                "not read".to_owned()
            } else {
                c.process()
            },
            c.send_queue,
            c.recv_queue
        );
    }
    let n = listing.connections.len();
    let _ = writeln!(
        out,
        "{n} established connection{} to {} on {} (read with {})",
        if n == 1 { "" } else { "s" },
        ports_text(ports),
        rehost_tree::escape::text(name),
        source_text(listing)
    );
    let _ = out.flush();
    drop(out);
    if listing.truncated {
        crate::term::error(&format!(
            "more than {MAX_CONNECTIONS} connections: only the first {MAX_CONNECTIONS} are listed"
        ));
    }
}

/// The host a `conns` command looks at: this machine, a plan's host, or an ssh destination
/// (opened right away: an unknown host key or an unreachable host is said before anything).
pub(super) fn open(on: &ConnsHost) -> Result<Box<dyn Host>, String> {
    open_as(on.host.as_deref(), on)
}

/// [`open`] with `host` in place of `on.host` (a plan database's host).
pub(super) fn open_as(host: Option<&str>, on: &ConnsHost) -> Result<Box<dyn Host>, String> {
    let Some(host) = host else {
        return Ok(Box::new(rehost_host::LocalHost::new("this machine", None)));
    };
    let spec = match plan_target(host, on)? {
        Some(target) => rehost_engine::host_spec(target, on.ssh_config.as_deref()),
        None => {
            let (destination, port) = match host.strip_prefix("ssh://") {
                Some(rest) => {
                    let rest = rest.trim_end_matches('/');
                    match rest.rsplit_once(':') {
                        Some((h, p)) if !h.is_empty() => (
                            h.to_owned(),
                            Some(p.parse::<u16>().map_err(|_| {
                                format!("`{}` is not ssh://[USER@]HOST[:PORT]", host)
                            })?),
                        ),
                        _ => (rest.to_owned(), None),
                    }
                }
                None => (host.to_owned(), None),
            };
            if destination.is_empty() || destination.ends_with('@') || destination.contains('/') {
                return Err(format!(
                    "`{host}` is not [USER@]HOST or ssh://[USER@]HOST[:PORT]"
                ));
            }
            rehost_host::HostSpec::Ssh(rehost_host::SshSpec::for_destination(
                &destination,
                port,
                on.ssh_config.clone(),
            ))
        }
    };
    rehost_host::open(host, &spec).map_err(|e| e.to_string())
}

/// The plan's target for `host`, when `--plan` is given; a name the plan does not have is an
/// error there (it would otherwise be tried as an ssh destination).
fn plan_target(host: &str, on: &ConnsHost) -> Result<Option<rehost_plan::HostTarget>, String> {
    let Some(plan_path) = &on.plan else {
        return Ok(None);
    };
    let pf = crate::plan_file::PlanFile::load_valid(plan_path, "use hosts of")
        .map_err(|_| "the plan has errors".to_owned())?;
    let targets = pf.plan().hosts_for(on.env.as_deref()).ok_or_else(|| {
        format!(
            "the plan has no environment `{}`",
            on.env.as_deref().unwrap_or_default()
        )
    })?;
    match targets.into_iter().find(|(n, _)| n == host) {
        Some((_, target)) => Ok(Some(target)),
        None => Err(format!(
            "the plan has no host `{}`",
            rehost_tree::escape::text(host)
        )),
    }
}

pub(super) fn ports_text(ports: &[u16]) -> String {
    match ports {
        [] => "any local port".into(),
        [p] => format!("port {p}"),
        ps => format!(
            "ports {}",
            ps.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
        ),
    }
}

pub(super) fn source_text(l: &Listing) -> String {
    match (&l.source, &l.fallback) {
        (rehost_host::conns::Source::Netlink, _) => "netlink sock_diag".into(),
        (rehost_host::conns::Source::Procfs, Some(why)) => format!(
            "/proc/net/tcp*, netlink being refused: {}",
            rehost_tree::escape::text(why)
        ),
        (rehost_host::conns::Source::Procfs, None) => "/proc/net/tcp*".into(),
    }
}
