//! `rehost conns drain --terminate`: at the timeout, end the connections still there and say
//! exactly what became of each, by the listing made afterwards (`conns::end::terminate`).

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
        } else if t.listing.connections.is_empty() {
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
