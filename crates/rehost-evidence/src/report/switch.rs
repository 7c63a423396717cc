//! Under the report's "Connections": for each `switch` step's attempt, how a `rehost hold`
//! relay moved from one upstream to another: how long new clients could have waited (accept
//! paused), how many waited, and who was connected to the old upstream at the pause: each one
//! that ended by itself and when, and each one the hold ended.

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
                if s.left.is_empty() && s.ended.is_empty() {
                    "."
                } else {
                    ":"
                }
            )));
        }
        // Who was connected to the old upstream at the pause: each one that left by itself,
        // when, and each one the relay ended (journals before `left` was recorded name only
        // the ended ones).
        let mut rows: Vec<Vec<String>> = s
            .left
            .iter()
            .map(|l| {
                vec![
                    code_span(&l.client),
                    code_span(&l.upstream),
                    format!("left by itself {} after the pause", human_ms(l.after_ms)),
                ]
            })
            .collect();
        rows.extend(s.ended.iter().map(|e| {
            vec![
                code_span(&e.client),
                code_span(&e.upstream),
                format!(
                    "ended by the relay at the drain deadline, open for {}",
                    human_ms(e.age_ms)
                ),
            ]
        }));
        if !rows.is_empty() {
            b.push(table(
                &[
                    "Client connected at the pause",
                    "Upstream",
                    "What became of it",
                ],
                rows,
            ));
        }
        let unnamed = (s.drained as usize).saturating_sub(s.left.len())
            + (s.ended_count as usize).saturating_sub(s.ended.len());
        if unnamed > 0 {
            b.push(p(format!("{unnamed} of them not named here.")));
        }
    }
}
