//! `rehost hold`: the relay in front of a service (`--upstream`), and the switch of a running
//! one (`--switch`, through its control socket). The relay itself is `rehost_hold`.

use crate::cli::HoldArgs;
use crate::exit;
use rehost_hold::SwitchReport;
use std::net::{SocketAddr, ToSocketAddrs};

pub fn run(args: &HoldArgs) -> i32 {
    let go = match &args.switch {
        Some(to) => switch(args, to),
        None => serve(args),
    };
    match go {
        Ok(code) => code,
        Err(e) => {
            crate::term::error(&e);
            exit::TROUBLE
        }
    }
}

/// `IP:PORT` exactly: the address a hold listens on names its control socket.
pub fn listen_addr(s: &str, flag: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        format!(
            "{flag} `{}` is not an address: write IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080",
            rehost_tree::escape::text(s)
        )
    })
}

/// `HOST:PORT` or `IP:PORT`, resolved now (the first address).
pub fn upstream_addr(s: &str, flag: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    let shown = rehost_tree::escape::text(s);
    match s.to_socket_addrs() {
        Ok(mut a) => a
            .next()
            .ok_or_else(|| format!("{flag} `{shown}` resolves to no address")),
        Err(e) => Err(format!(
            "{flag} `{shown}` is not HOST:PORT that resolves: {e}"
        )),
    }
}

fn serve(args: &HoldArgs) -> Result<i32, String> {
    let upstream = upstream_addr(
        args.upstream
            .as_deref()
            .expect("clap: --upstream or --switch"),
        "--upstream",
    )?;
    let listener = match rehost_hold::activated_listener().map_err(|e| e.to_string())? {
        Some(l) => {
            if let Some(want) = &args.listen {
                let want = listen_addr(want, "--listen")?;
                let got = l.local_addr().map_err(|e| e.to_string())?;
                if got != want {
                    return Err(format!(
                        "systemd passed a socket on {got}, not on --listen {want}: leave --listen out, or make them agree"
                    ));
                }
            }
            l
        }
        None => {
            let Some(listen) = &args.listen else {
                return Err(
                    "give --listen IP:PORT, or start rehost hold from a systemd socket unit (LISTEN_FDS)"
                        .into(),
                );
            };
            let addr = listen_addr(listen, "--listen")?;
            rehost_hold::bind(addr).map_err(|e| format!("failed to listen on {addr}: {e}"))?
        }
    };
    let listen = listener.local_addr().map_err(|e| e.to_string())?;
    let log: rehost_hold::Log = std::sync::Arc::new(|line: &str| {
        eprintln!("rehost hold: {}", rehost_tree::escape::text(line))
    });
    let hold = rehost_hold::Hold::with_workers(
        listener,
        upstream,
        args.max_connections,
        log,
        args.workers,
    )
    .map_err(|e| e.to_string())?;
    let dir = args
        .state_dir
        .clone()
        .unwrap_or_else(rehost_hold::default_state_dir);
    let sock = rehost_hold::serve(&hold, &dir).map_err(|e| e.to_string())?;
    eprintln!(
        "rehost hold: relaying {listen} to {upstream}; control socket {}",
        rehost_tree::escape::text(&sock.display().to_string())
    );
    hold.run().map_err(|e| e.to_string())?;
    Ok(exit::OK)
}

fn switch(args: &HoldArgs, to: &str) -> Result<i32, String> {
    let listen = listen_addr(
        args.listen
            .as_deref()
            .expect("clap: --switch requires --listen"),
        "--listen",
    )?;
    let to = upstream_addr(to, "--switch")?;
    let timeout = rehost_plan::parse_duration(&args.timeout)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            format!(
                "--timeout `{}` is not a duration; write it like `2s` or `500ms`",
                rehost_tree::escape::text(&args.timeout)
            )
        })?;
    let dir = args
        .state_dir
        .clone()
        .unwrap_or_else(rehost_hold::default_state_dir);
    let report = rehost_hold::switch(&dir, listen, to, timeout).map_err(|e| e.to_string())?;
    if args.json {
        println!(
            "{:#}",
            serde_json::to_value(&report).expect("a report serialises")
        );
    } else {
        for line in describe(listen, &report) {
            println!("{line}");
        }
    }
    Ok(match report.failure {
        None => exit::OK,
        Some(f) => {
            crate::term::error(&format!("the hold on {listen}: {f}"));
            exit::TROUBLE
        }
    })
}

/// What a switch did, in lines for a terminal.
pub fn describe(listen: SocketAddr, r: &SwitchReport) -> Vec<String> {
    let mut out = Vec::new();
    if !r.paused && r.failure.is_none() {
        out.push(format!(
            "the hold on {listen} already forwards to {}: nothing paused",
            r.to
        ));
        return out;
    }
    if !r.paused {
        out.push(format!(
            "NOT switched: the hold on {listen} still forwards new connections to {}",
            r.now
        ));
        return out;
    }
    out.push(if r.switched {
        format!(
            "switched the hold on {listen} from {} to {}: new connections go to {}",
            r.from, r.to, r.now
        )
    } else {
        format!(
            "NOT switched: the hold on {listen} resumed towards {}, not {}",
            r.now, r.to
        )
    });
    out.push(format!(
        "accept was paused {} ms: a client that arrived meanwhile waited in the kernel's backlog at most that long ({} waiting when it resumed)",
        r.paused_ms, r.queued
    ));
    out.push(format!(
        "{} connection(s) to the old upstream were open at the pause: {} ended by themselves, {} were still open at the {} ms drain deadline and were ended by the hold (shut down both ways)",
        r.open_at_pause, r.drained, r.ended_count, r.drain_deadline_ms
    ));
    for l in &r.left {
        out.push(format!(
            "  left {} (to {}) by itself {} ms after the pause",
            l.client, l.upstream, l.after_ms
        ));
    }
    if r.drained as usize > r.left.len() {
        out.push(format!(
            "  and {} more left by themselves",
            r.drained as usize - r.left.len()
        ));
    }
    for e in &r.ended {
        out.push(format!(
            "  ended {} (to {}, open {} ms)",
            e.client, e.upstream, e.age_ms
        ));
    }
    if r.ended_count as usize > r.ended.len() {
        out.push(format!(
            "  and {} more",
            r.ended_count as usize - r.ended.len()
        ));
    }
    out
}
