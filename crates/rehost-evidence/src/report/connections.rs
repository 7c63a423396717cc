//! The report's "Connections" section: for each `drain` step's attempt, who was connected to
//! the service when it began, who came later, who left when, and who was still connected
//! when it ended (the clients ended by hand, or still to end).

use super::document::{code_span, h, p, table};
use super::*;
use crate::doc::Block;

pub(super) fn connections_section(r: &Report, b: &mut Vec<Block>) {
    b.push(h(2, "Connections"));
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
        let at_start = d.clients.iter().filter(|c| c.first_seen_ms == 0).count();
        let remained = d.clients.iter().filter(|c| c.left_ms.is_none()).count();
        let outcome = if d.drained {
            format!(
                "Drained: no client was connected to port {} after {}.",
                ports.join(", "),
                human_ms(d.waited_ms)
            )
        } else {
            format!(
                "NOT drained: {remained} client(s) were still connected to port {} after {}; \
                 each had to be ended by hand.",
                ports.join(", "),
                human_ms(d.waited_ms)
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
                    match c.left_ms {
                        Some(ms) => format!("after {}", human_ms(ms)),
                        None => "STILL CONNECTED".into(),
                    },
                ]
            })
            .collect();
        b.push(table(
            &["Client", "Port", "Process", "Connected", "Left"],
            rows,
        ));
    }
}
