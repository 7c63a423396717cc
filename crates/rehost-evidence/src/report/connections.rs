//! The report's "Connections" section: for each `drain` step's attempt, who was connected to
//! the service when it began, who came later, who left when, and who was still connected
//! when it ended (the clients ended by hand, or still to end); with `terminate`, who rehost
//! ended at the timeout and by which mechanism, who left by itself, and who remained.

use super::document::{code_span, h, p, table};
use super::*;
use crate::doc::Block;

pub(super) fn connections_section(r: &Report, b: &mut Vec<Block>) {
    b.push(h(2, "Connections"));
    b.push(crate::kompendium::cite(&[
        crate::kompendium::Point::Connections,
    ]));
    for a in &r.run.attempts {
        let Some(d) = &a.drain else { continue };
        b.push(h(
            3,
            &format!(
                "Step {} (attempt {}): service {} on {}",
                code_span(&a.id),
                a.attempt,
                code_span(&d.service),
                code_span(&d.host)
            ),
        ));
        let ports: Vec<String> = d.ports.iter().map(u16::to_string).collect();
        // What was waited for: `port 5432`, `port 5432 and the Unix socket `PATH``.
        let socks: Vec<String> = d.sockets.iter().map(|s| code_span(s)).collect();
        let target = match (ports.is_empty(), socks.len()) {
            (_, 0) => format!("port {}", ports.join(", ")),
            (true, _) => format!("the Unix socket(s) {}", socks.join(", ")),
            (false, _) => format!(
                "port {} and the Unix socket(s) {}",
                ports.join(", "),
                socks.join(", ")
            ),
        };
        let unix_remained = d
            .unix_clients
            .iter()
            .filter(|c| c.left_ms.is_none())
            .count();
        let at_start = d.clients.iter().filter(|c| c.first_seen_ms == 0).count();
        let remained = d.clients.iter().filter(|c| c.left_ms.is_none()).count();
        let ended = d
            .clients
            .iter()
            .filter(|c| c.ended.as_ref().is_some_and(|e| e.result == "ended"))
            .count()
            + d.unix_clients
                .iter()
                .filter(|c| c.ended.as_ref().is_some_and(|e| e.result == "ended"))
                .count();
        let outcome = if a.result.as_deref() == Some("interrupted") {
            format!(
                "INTERRUPTED while rehost was ending the clients still connected to {target} at \
                 the timeout ({}): {ended} proven ended by the listing made before the \
                 interruption; list the connections again for the rest.",
                human_ms(d.waited_ms)
            )
        } else if d.drained && d.terminate && ended > 0 {
            format!(
                "Drained: rehost ended {ended} client(s) at the timeout; the host's kernel listed no \
                 connection to {target} after {}.",
                human_ms(d.waited_ms)
            )
        } else if d.drained {
            format!(
                "Drained: no client was connected to {target} after {}.",
                human_ms(d.waited_ms)
            )
        } else {
            format!(
                "NOT drained: {} client(s) were still connected to {target} after {}{}; \
                 each had to be ended by hand.",
                remained + unix_remained,
                human_ms(d.waited_ms),
                if d.terminate {
                    format!(" (rehost ended {ended} at the timeout)")
                } else {
                    String::new()
                }
            )
        };
        b.push(p(format!(
            "{outcome} {at_start} connected at the start, {} came later; {} listing(s) of the host's kernel.",
            d.clients.len() - at_start,
            d.polls
        )));
        if d.untracked > 0 {
            b.push(p(format!(
                "{} further client(s) were counted but not kept (more than {} distinct clients).",
                d.untracked,
                d.clients.len()
            )));
        }
        let rows = d
            .clients
            .iter()
            .map(|c| {
                vec![
                    code_span(&c.peer),
                    c.local_port.to_string(),
                    match (c.pid, &c.command) {
                        (Some(pid), Some(cmd)) => format!("{pid} {}", code_span(cmd)),
                        (Some(pid), None) => pid.to_string(),
                        _ => "not visible".into(),
                    },
                    if c.first_seen_ms == 0 {
                        "at the start".into()
                    } else {
                        format!("after {}", human_ms(c.first_seen_ms))
                    },
                    left(c.ended.as_ref(), c.left_ms, d.terminate),
                ]
            })
            .collect();
        if !d.clients.is_empty() || d.unix_clients.is_empty() {
            b.push(table(
                &["Client", "Port", "Process", "Connected", "Left"],
                rows,
            ));
        }
        if !d.unix_clients.is_empty() {
            let process = |pid: Option<u32>, cmd: &Option<String>| match (pid, cmd) {
                (Some(pid), Some(cmd)) => format!("{pid} {}", code_span(cmd)),
                (Some(pid), None) => pid.to_string(),
                _ => "not visible".into(),
            };
            let rows = d
                .unix_clients
                .iter()
                .map(|c| {
                    vec![
                        process(c.peer_pid, &c.peer_command),
                        code_span(&c.socket),
                        process(c.pid, &c.command),
                        if c.first_seen_ms == 0 {
                            "at the start".into()
                        } else {
                            format!("after {}", human_ms(c.first_seen_ms))
                        },
                        left(c.ended.as_ref(), c.left_ms, d.terminate),
                    ]
                })
                .collect();
            b.push(table(
                &[
                    "Client process",
                    "Unix socket",
                    "Served by",
                    "Connected",
                    "Left",
                ],
                rows,
            ));
        }
    }
}

/// The report's "Clients holding the old address" section: for each `scan-refs` step's
/// attempt, the lines of files on the hosts that mention the old address or name (the clients
/// to reconfigure), and what was searched and what could not be.
pub(super) fn references_section(r: &Report, b: &mut Vec<Block>) {
    b.push(h(2, "Clients holding the old address"));
    for a in &r.run.attempts {
        let Some(d) = &a.refs else { continue };
        b.push(h(
            3,
            &format!("Step {} (attempt {})", code_span(&a.id), a.attempt),
        ));
        let lines: u64 = d.scans.iter().map(|s| s.found_total).sum();
        let searched: u64 = d.scans.iter().map(|s| s.files).sum();
        let unread = d.scans.iter().any(|s| !s.errors.is_empty() || s.truncated);
        let find: Vec<String> = d.find.iter().map(|f| code_span(f)).collect();
        b.push(p(format!(
            "{lines} line(s) mention {} in the {searched} file(s) searched{}{}",
            find.join(", "),
            if d.require_none {
                if lines == 0 && !unread {
                    "; none may remain, and none did."
                } else {
                    "; none may remain: the step failed."
                }
            } else {
                ": each is a client to reconfigure, by hand where the switch does not reach it."
            },
            if unread {
                " NOT everything was searched: see what could not be read below."
            } else {
                ""
            }
        )));
        let rows = d
            .scans
            .iter()
            .map(|s| {
                vec![
                    code_span(&s.host),
                    code_span(&s.path),
                    s.files.to_string(),
                    s.found_total.to_string(),
                    s.binary.to_string(),
                    s.symlinks.to_string(),
                    if s.errors.is_empty() && !s.truncated {
                        "none".into()
                    } else {
                        let mut e: Vec<String> = s.errors.iter().take(5).cloned().collect();
                        if s.errors.len() > 5 {
                            e.push(format!("and {} more", s.errors.len() - 5));
                        }
                        if s.truncated {
                            e.push("stopped at the bound of lines".into());
                        }
                        e.join("; ")
                    },
                ]
            })
            .collect();
        b.push(table(
            &[
                "Host",
                "Path",
                "Files searched",
                "Lines found",
                "Binary (not searched)",
                "Symlinks (not followed)",
                "Not searched",
            ],
            rows,
        ));
        let rows: Vec<Vec<String>> = d
            .scans
            .iter()
            .flat_map(|s| {
                s.found.iter().map(move |f| {
                    vec![
                        code_span(&format!("{}:{}", s.host, f.path)),
                        f.line.to_string(),
                        f.find.join(", "),
                        code_span(&f.text),
                    ]
                })
            })
            .collect();
        if !rows.is_empty() {
            b.push(table(&["File", "Line", "Mentions", "Text"], rows));
        }
        let kept: u64 = d.scans.iter().map(|s| s.found.len() as u64).sum();
        if kept < lines {
            b.push(p(format!(
                "{} further line(s) were counted but not kept (1,000 per path).",
                lines - kept
            )));
        }
        b.push(p(
            "Not searched: binary files (an address compiled into a program), files behind \
             symlinks, directories on the kernel's pseudo file systems (`/proc`, `/sys`), other hosts and \
             paths than these, and settings held elsewhere (LDAP, NIS, \
             a database, a client's registry)."
                .to_string(),
        ));
    }
}

/// When and how a client left: by itself, ended by rehost (and by which mechanism, gone from
/// the next listing), or not at all (with why rehost could not end it).
fn left(
    ended: Option<&rehost_journal::step_data::DrainEnded>,
    left_ms: Option<u64>,
    terminate: bool,
) -> String {
    match (ended, left_ms) {
        (Some(e), Some(ms)) if e.result == "ended" => format!(
            "ended by rehost ({}) after {}",
            e.mechanism.as_deref().map(code_span).unwrap_or_default(),
            human_ms(ms.max(e.at_ms))
        ),
        (Some(e), None) if e.result == "interrupted" => format!(
            "NOT KNOWN: interrupted while rehost was ending it ({})",
            code_span(&e.why)
        ),
        (Some(e), None) if e.result == "remained" => format!(
            "STILL CONNECTED: rehost could not end it ({})",
            code_span(&e.why)
        ),
        (_, Some(ms)) if terminate => format!("left by itself after {}", human_ms(ms)),
        (_, Some(ms)) => format!("after {}", human_ms(ms)),
        (_, None) => "STILL CONNECTED".into(),
    }
}
