//! Under the report's "Connections": for each `switch` step's attempt, how a `rehost hold`
//! relay moved from one upstream to another: how long new clients could have waited (accept
//! paused), how many waited, which connections to the old upstream ended by themselves and
//! which the hold ended.

use super::document::{code_span, h, p, table};
use super::*;
use crate::doc::Block;

pub(super) fn switch_blocks(r: &Report, b: &mut Vec<Block>) {
    for a in &r.run.attempts {
        let Some(s) = &a.switch else { continue };
        b.push(h(
            3,
            &format!(
                "Step {} (attempt {}): relay {} switched from {} to {}",
                code_span(&a.id),
                a.attempt,
                code_span(&s.hold),
                code_span(&s.from),
                code_span(&s.to)
            ),
        ));
        let outcome = if !s.paused && s.switched {
            format!(
                "The relay already forwarded to {}: nothing was paused.",
                code_span(&s.to)
            )
        } else if !s.paused {
            format!(
                "NOT switched: the new upstream did not accept a connection, so nothing was \
                 paused; the relay still forwarded to {}.",
                code_span(&s.now)
            )
        } else if s.switched {
            format!(
                "New connections went to {} after the switch. Accept was paused {} (time box {}): \
                 a client that arrived meanwhile waited in the kernel's backlog, not refused by \
                 the relay, and no longer than that; {} were waiting when it resumed.",
                code_span(&s.now),
                human_ms(s.paused_ms),
                human_ms(s.timeout_ms),
                s.queued
            )
        } else {
            format!(
                "NOT switched: the relay resumed towards {} after a pause of {} (time box {}); \
                 {} were waiting when it resumed.",
                code_span(&s.now),
                human_ms(s.paused_ms),
                human_ms(s.timeout_ms),
                s.queued
            )
        };
        b.push(p(outcome));
        if s.paused {
            b.push(p(format!(
                "{} connection(s) to the old upstream were open at the pause: {} ended by \
                 themselves, {} were still open at the drain deadline ({}) and were ended by the \
                 relay (shut down both ways){}",
                s.open_at_pause,
                s.drained,
                s.ended_count,
                human_ms(s.drain_deadline_ms),
                if s.ended_count == 0 { "." } else { ":" }
            )));
        }
        if !s.ended.is_empty() {
            let rows = s
                .ended
                .iter()
                .map(|e| {
                    vec![
                        code_span(&e.client),
                        code_span(&e.upstream),
                        human_ms(e.age_ms),
                    ]
                })
                .collect();
            b.push(table(&["Client ended", "Upstream", "Open for"], rows));
            if s.ended_count as usize > s.ended.len() {
                b.push(p(format!(
                    "and {} more not named.",
                    s.ended_count as usize - s.ended.len()
                )));
            }
        }
    }
}
