//! The `switch` step kind: asks a running `rehost hold` relay, through its control socket on
//! this machine, to move to another upstream (`rehost_hold::switch`: accept paused, the old
//! side drained up to three quarters of the time box and the rest ended, re-pointed,
//! resumed). The hold's report goes into the journal (`StepData::Switch`) and the report's
//! Connections section.

use super::{Executor, Need};
use crate::EngineError;
use crate::exec::{Ctx, Outcome, failed};
use rehost_journal::step_data::{STEP_DATA_VERSION, StepData, SwitchData, SwitchEnded};
use rehost_plan::{Step, StepKind};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

pub(super) static EXECUTOR: Executor = Executor {
    kind: "switch",
    rollback: None,
    execute,
    // The hold is on this machine; whether it runs is known only when the step asks it.
    needs: |_, step| match &step.kind {
        StepKind::Switch { hold, to, .. } => vec![
            Need::Endpoint {
                key: "hold",
                value: hold,
            },
            Need::Endpoint {
                key: "to",
                value: to,
            },
        ],
        _ => Vec::new(),
    },
};

fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    let StepKind::Switch {
        hold,
        to,
        state_dir,
    } = &step.kind
    else {
        unreachable!("the registry hands `switch` its own steps")
    };
    let (hold, to) = match (ctx.endpoint("hold", hold), ctx.endpoint("to", to)) {
        (Ok(h), Ok(t)) => (h, t),
        (Err(e), _) | (_, Err(e)) => return failed(e),
    };
    let Ok(listen) = hold.parse::<SocketAddr>() else {
        return failed(format!("`hold` {hold} is not IP:PORT"));
    };
    let target = match to.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(a)) => a,
        Ok(None) => return failed(format!("the new upstream {to} resolves to no address")),
        Err(e) => return failed(format!("the new upstream {to} does not resolve: {e}")),
    };
    let timeout = step.timeout.unwrap_or(rehost_hold::DEFAULT_TIMEOUT);
    let dir = state_dir
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(rehost_hold::default_state_dir);
    let r = match rehost_hold::switch(&dir, listen, target, timeout) {
        Ok(r) => r,
        Err(e) => return failed(format!("the hold on {listen}: {e}")),
    };
    let data = Some(StepData::Switch(Box::new(SwitchData {
        v: STEP_DATA_VERSION,
        hold: listen.to_string(),
        from: r.from.clone(),
        to: r.to.clone(),
        now: r.now.clone(),
        switched: r.switched,
        timeout_ms: timeout.as_millis() as u64,
        paused: r.paused,
        paused_ms: r.paused_ms,
        queued: r.queued,
        open_at_pause: r.open_at_pause,
        drained: r.drained,
        drain_deadline_ms: r.drain_deadline_ms,
        ended: r
            .ended
            .iter()
            .map(|e| SwitchEnded {
                client: e.client.clone(),
                upstream: e.upstream.clone(),
                age_ms: e.age_ms,
            })
            .collect(),
        ended_count: r.ended_count,
    })));
    let ended = if r.ended_count == 0 {
        String::new()
    } else {
        let named: Vec<&str> = r.ended.iter().take(20).map(|e| e.client.as_str()).collect();
        format!(
            "; ended (shut down) {} connection(s) still open at the {} ms drain deadline: {}{}",
            r.ended_count,
            r.drain_deadline_ms,
            named.join(", "),
            if r.ended_count as usize > named.len() {
                ", …"
            } else {
                ""
            }
        )
    };
    if let Some(f) = &r.failure {
        return Ok(Outcome::Failed {
            detail: format!("the hold on {listen}: {f}{ended}"),
            exit_code: None,
            data,
        });
    }
    Ok(Outcome::Done {
        detail: Some(if !r.paused {
            format!("the hold on {listen} already forwarded to {}", r.now)
        } else {
            format!(
                "the hold on {listen} forwards new connections to {} (was {}); accept paused {} ms, so no new client waited longer; {} waiting when it resumed; {} of {} connection(s) to the old upstream ended by themselves{ended}",
                r.now, r.from, r.paused_ms, r.queued, r.drained, r.open_at_pause
            )
        }),
        exit_code: None,
        confirmed_by: None,
        data,
    })
}
