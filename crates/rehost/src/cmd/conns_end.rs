//! `rehost conns drain --terminate`: at the timeout, end the connections still there and say
//! exactly what became of each, by the listing made afterwards (`conns::end::terminate`; the
//! clients of `--socket`s by `conns::unix_end::terminate`).

use crate::exit;
use rehost_host::Host;
use rehost_host::conns::Connection;
use rehost_host::conns::end::{Ended, describe, terminate};
use std::time::Duration;

/// Ends `remaining` (connections to `ports` on `host` at the drain's timeout `limit`): prints
/// each ended (peer, port, process, mechanism) on stdout and each that could not be (and why)
/// on stderr. Exit 0 when the host's kernel lists no connection to the ports afterwards, 1
/// when some remain (to be ended by hand), 2 when the ending could not be asked for.
pub fn at_timeout(
    host: &dyn Host,
    ports: &[u16],
    remaining: &[Connection],
    limit: Duration,
    json: Option<serde_json::Value>,
) -> i32 {
    let name = rehost_tree::escape::text(host.name());
    let ports_text = super::conns::ports_text(ports);
    eprintln!(
        "rehost: {} client(s) still connected to {ports_text} on {name} after {}; ending them",
        remaining.len(),
        rehost_plan::format_duration(limit)
    );
    let t = terminate(host, ports, remaining, &crate::signals::CANCEL);
    let cancelled = crate::signals::cancelled();
    let t = match t {
        Ok(t) => t,
        // Cut short before a listing after the ending: what was ended is not known.
        Err(_) if cancelled => {
            crate::term::error(&format!(
                "interrupted while ending the {} connection(s) to {ports_text} on {name}: whether each ended is not known; list them again (`rehost conns list`) to see which remain",
                remaining.len()
            ));
            return exit::INTERRUPTED;
        }
        Err(e) => {
            crate::term::error(&format!(
                "failed to end the connections to {ports_text} on {name}: {e}; end these by hand:"
            ));
            for c in remaining {
                eprintln!("  {}", describe(c));
            }
            return exit::TROUBLE;
        }
    };
    let mut remained = 0;
    // With --json the lines go to stderr and the document to stdout.
    let to_stderr = json.is_some();
    let say = |line: String| {
        if to_stderr {
            eprintln!("{line}")
        } else {
            println!("{line}")
        }
    };
    for o in &t.outcomes {
        let c = &o.connection;
        match &o.result {
            Ended::Ended { mechanism } => say(format!(
                "ended: {} (by {}; no longer listed by the kernel)",
                describe(c),
                mechanism.as_str()
            )),
            Ended::Left => say(format!("left by itself: {}", describe(c))),
            Ended::Remained { why } => {
                remained += 1;
                eprintln!(
                    "rehost: could not end {}: {}; end it by hand",
                    describe(c),
                    rehost_tree::escape::text(why)
                );
            }
        }
    }
    let asked: std::collections::HashSet<_> = t
        .outcomes
        .iter()
        .map(|o| (o.connection.inode, o.connection.peer_port))
        .collect();
    let came: Vec<&Connection> = t
        .listing
        .connections
        .iter()
        .filter(|c| !asked.contains(&(c.inode, c.peer_port)))
        .collect();
    for c in &came {
        eprintln!(
            "rehost: connected after the ending, not ended: {}",
            describe(c)
        );
    }
    let ended = t.count(|r| matches!(r, Ended::Ended { .. }));
    if let Some(mut doc) = json {
        doc["result"] = if cancelled {
            "interrupted".into()
        } else if t.listing.connections.is_empty()
            && doc
                .get("terminated_unix")
                .is_none_or(|u| u["still_listed"] == 0)
        {
            "drained_by_ending".into()
        } else {
            "remaining".into()
        };
        doc["terminated"] = serde_json::json!({
            "outcomes": t.outcomes,
            "ended": ended,
            "could_not_end": remained,
            "connected_after": came,
            "still_listed": t.listing.connections.len(),
        });
        super::conns::print_json(&doc);
    }
    if cancelled {
        // Interrupted while the kernel was still asked whether they had gone: the lines above
        // are what the last listing showed, a record of what was ended, not of what remains.
        crate::term::error(&format!(
            "interrupted while ending the connections to {ports_text} on {name}: above is what the listing made before the interruption showed ({ended} ended); list them again (`rehost conns list`) to see which remain"
        ));
        return exit::INTERRUPTED;
    }
    if t.listing.connections.is_empty() {
        say(format!(
            "drained: rehost ended {ended} connection(s) to {ports_text} on {name}; the kernel lists none any more"
        ));
        exit::OK
    } else {
        eprintln!(
            "rehost: {} connection(s) to {ports_text} remain on {name} ({remained} that could not be ended, {} newer); end these by hand",
            t.listing.connections.len(),
            came.len()
        );
        exit::FINDINGS
    }
}

/// Ends the clients still connected to the drain's Unix sockets at its timeout (`unix`), prints
/// what became of each (on stderr with `--json`, whose document gets `terminated_unix`), and
/// returns the exit code: 0 when the sockets' listing has none of them any more, 1 when some
/// remain, 2 when the ending could not be asked for, 130 when interrupted.
pub fn unix_at_timeout(
    host: &dyn Host,
    unix: &super::conns_view::UnixDrain,
    json: Option<&mut serde_json::Value>,
) -> i32 {
    let name = rehost_tree::escape::text(host.name());
    let (paths, remaining) = unix.to_end();
    let show = |c: &rehost_host::conns::unix::UnixConnection| {
        format!(
            "process {} to the Unix socket {} (served by {})",
            c.peer_process(),
            c.path_text(),
            c.process()
        )
    };
    eprintln!(
        "rehost: {} client(s) still connected to Unix socket(s) on {name}; ending them",
        remaining.len()
    );
    let t =
        rehost_host::conns::unix_end::terminate(host, paths, &remaining, &crate::signals::CANCEL);
    let cancelled = crate::signals::cancelled();
    let (outcomes, listed) = match t {
        Ok(t) => t,
        Err(_) if cancelled => {
            crate::term::error(&format!(
                "interrupted while ending the {} Unix-socket connection(s) on {name}: whether each ended is not known; list them again (`rehost conns list --socket`)",
                remaining.len()
            ));
            return exit::INTERRUPTED;
        }
        Err(e) => {
            crate::term::error(&format!(
                "failed to end the Unix-socket connections on {name}: {e}; end these by hand:"
            ));
            for c in &remaining {
                eprintln!("  {}", show(c));
            }
            return exit::TROUBLE;
        }
    };
    let to_stderr = json.is_some();
    let say = |line: String| {
        if to_stderr {
            eprintln!("{line}")
        } else {
            println!("{line}")
        }
    };
    let mut ended = 0;
    let mut remained = 0;
    for o in &outcomes {
        match &o.result {
            Ended::Ended { mechanism } => {
                ended += 1;
                say(format!(
                    "ended: {} (by {}; no longer listed by the kernel)",
                    show(&o.connection),
                    mechanism.as_str()
                ))
            }
            Ended::Left => say(format!("left by itself: {}", show(&o.connection))),
            Ended::Remained { why } => {
                remained += 1;
                eprintln!(
                    "rehost: could not end {}: {}; end it by hand",
                    show(&o.connection),
                    rehost_tree::escape::text(why)
                );
            }
        }
    }
    if let Some(doc) = json {
        doc["terminated_unix"] = serde_json::json!({
            "outcomes": outcomes,
            "ended": ended,
            "could_not_end": remained,
            "still_listed": listed.len(),
        });
    }
    if cancelled {
        crate::term::error(&format!(
            "interrupted while ending the Unix-socket connections on {name}: above is what the listing made before the interruption showed ({ended} ended); list them again (`rehost conns list --socket`) to see which remain"
        ));
        return exit::INTERRUPTED;
    }
    if listed.is_empty() {
        say(format!(
            "drained: rehost ended {ended} Unix-socket connection(s) on {name}; the kernel lists none any more"
        ));
        exit::OK
    } else {
        eprintln!(
            "rehost: {} Unix-socket connection(s) remain on {name} ({remained} that could not be ended); end these by hand",
            listed.len()
        );
        exit::FINDINGS
    }
}

/// The exit code of two parts of one drain: the more serious.
pub fn worse(a: i32, b: i32) -> i32 {
    let rank = |c: i32| match c {
        exit::OK => 0,
        exit::FINDINGS => 1,
        exit::TROUBLE => 2,
        _ => 3,
    };
    if rank(a) >= rank(b) { a } else { b }
}
