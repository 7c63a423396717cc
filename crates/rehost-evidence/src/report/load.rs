//! The report's "Load" part of the downtime section (issue 24): each load of the rehearsal's
//! environment — what it ran (a command redacted, never raw), when, how long, how it ended —
//! and for the write load the acknowledged writes looked for on the new side: acknowledged,
//! found, missing, and what was not compared.

use super::document::{code_span, h, p, table};
use super::*;
use crate::doc::Block;

pub(super) fn load_section(r: &Report, plan: &Plan, b: &mut Vec<Block>) {
    if r.run.loads.is_empty() {
        return;
    }
    b.push(h(3, "Load"));
    let declared = plan.environment(&r.run.env).map(|e| &e.loads);
    let mut rows = Vec::new();
    for l in &r.run.loads {
        let what = declared
            .and_then(|ls| ls.iter().find(|d| d.id == l.id))
            .map_or_else(
                || format!("{} load (no longer in the plan)", l.kind),
                |d| d.describe(),
            );
        let stopped = match (&l.stopped, &l.after) {
            (Some(at), Some(step)) => format!("{} (after {})", when(at), code_span(step)),
            (Some(at), None) => format!(
                "{} ({})",
                when(at),
                l.reason.as_deref().unwrap_or("when the run ended")
            ),
            (None, _) => "no stop recorded (the run was killed while it ran)".into(),
        };
        let ended = match (l.exit_code, l.signal, &l.acknowledged) {
            (_, _, Some(n)) => format!(
                "{n} write(s) acknowledged, {} error(s){}",
                l.errors.unwrap_or(0),
                l.first_error
                    .as_ref()
                    .map(|e| format!(" (first: {e})"))
                    .unwrap_or_default()
            ),
            (Some(c), _, None) => format!("exit status {c}"),
            (None, Some(s), None) => format!("ended by signal {s}"),
            (None, None, None) => l.first_error.clone().unwrap_or_else(|| "—".into()),
        };
        let kept = l
            .output
            .iter()
            .chain(&l.acks)
            .map(|f| code_span(f))
            .collect::<Vec<_>>()
            .join(", ");
        rows.push(vec![
            code_span(&l.id),
            what,
            format!("{} (before {})", when(&l.started), code_span(&l.before)),
            stopped,
            l.duration_ms.map_or("—".into(), human_ms),
            ended,
            if kept.is_empty() { "—".into() } else { kept },
        ]);
    }
    b.push(table(
        &[
            "Load", "What", "Started", "Stopped", "Ran for", "Ended", "Kept",
        ],
        rows,
    ));
    for l in r.run.loads.iter().filter(|l| l.kind == "writes") {
        b.push(p(writes_text(l)));
    }
}

/// What the check of a write load found, in one paragraph: "no acknowledged write lost" only
/// when it ran against the new side and nothing was missing.
pub(super) fn writes_text(l: &LoadRun) -> String {
    let id = code_span(&l.id);
    let target = |c: &crate::report::model::LoadCheck| match &c.service {
        Some(s) => format!("service {}", code_span(s)),
        None => format!("database {}", code_span(&c.database)),
    };
    match &l.check {
        None => format!(
            "Write load {id}: its acknowledged writes were NOT looked for on the new side (the run ended before the check); whether any was lost is not known."
        ),
        Some(c) => match &c.error {
            Some(e) => format!(
                "Write load {id}: {} acknowledged write(s) could NOT be looked for on {}: {e}. Whether any was lost is not known.",
                c.acknowledged, c.new_side
            ),
            None if c.acknowledged == 0 => format!(
                "Write load {id}: no write was acknowledged on {}'s old side ({} error(s){}): nothing was measured.",
                target(c),
                l.errors.unwrap_or(0),
                l.first_error
                    .as_ref()
                    .map(|e| format!(", the first: {e}"))
                    .unwrap_or_default()
            ),
            None if c.missing_total == 0 => format!(
                "Write load {id}: no acknowledged write lost. {} write(s) acknowledged on {}'s old side, {} found on its new side {} at {}, 0 missing (not compared: {}).",
                c.acknowledged,
                target(c),
                c.found,
                c.new_side,
                when(&c.at),
                c.not_compared
            ),
            None => format!(
                "Write load {id}: {} of {} acknowledged write(s) MISSING on the new side {} at {} ({} found): ids {}{} (not compared: {}).",
                c.missing_total,
                c.acknowledged,
                c.new_side,
                when(&c.at),
                c.found,
                c.missing
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                if c.missing_total > c.missing.len() as u64 {
                    format!(" and {} more", c.missing_total - c.missing.len() as u64)
                } else {
                    String::new()
                },
                c.not_compared
            ),
        },
    }
}
