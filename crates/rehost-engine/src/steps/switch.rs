//! The `switch` step kind: asks a running `rehost hold` relay, through its control socket on
//! this machine, to move to another upstream (`rehost_hold::switch`: accept paused, the old
//! side drained up to three quarters of the time box and the rest ended, re-pointed,
//! resumed). The hold's report goes into the journal (`StepData::Switch`) and the report's
//! Connections section. Its rollback switches the hold back to the upstream the journal says
//! it forwarded to before the step, and counts only once a new connection through the hold
//! reaches that upstream again.

use super::{Executor, Need};
use crate::EngineError;
use crate::exec::{Ctx, Outcome, failed};
use rehost_journal::journal::Record;
use rehost_journal::step_data::{STEP_DATA_VERSION, StepData, SwitchData, SwitchEnded, SwitchLeft};
use rehost_plan::{Step, StepKind};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long the rollback's proof waits for the hold's connection to the old upstream.
const PROOF_WAIT: Duration = Duration::from_secs(3);

/// The rollback: the hold switched back to the upstream it forwarded to before this step (the
/// journal's record of the step's switch: `from`), the same way (accept paused, the new side's
/// connections drained up to the time box, re-pointed). Counted as rolled back only when a
/// connection made through the hold afterwards reaches the old upstream again: this machine's
/// kernel (netlink) lists a connection established to it that was not there before the probe.
fn rollback(ctx: &mut Ctx, step: &Step) -> Result<String, String> {
    let StepKind::Switch {
        hold, state_dir, ..
    } = &step.kind
    else {
        unreachable!("the registry hands `switch` its own steps")
    };
    let hold = ctx.endpoint("hold", hold)?;
    let listen: SocketAddr = hold
        .parse()
        .map_err(|_| format!("`hold` {hold} is not IP:PORT"))?;
    let from = ctx
        .records
        .iter()
        .rev()
        .find_map(|r| match r {
            Record::StepFinished {
                id,
                result_data: Some(StepData::Switch(d)),
                ..
            } if *id == step.id && d.hold == listen.to_string() => Some(d.from.clone()),
            _ => None,
        })
        .ok_or_else(|| {
            format!(
                "the journal has no record of the upstream the hold on {listen} forwarded to before step `{}`: switch it back by hand (`rehost hold --switch OLD_UPSTREAM --listen {listen}`)",
                step.id
            )
        })?;
    let old: SocketAddr = from.parse().map_err(|_| {
        format!("the journal's upstream before the switch, `{from}`, is not IP:PORT")
    })?;
    let timeout = step.timeout.unwrap_or(rehost_hold::DEFAULT_TIMEOUT);
    let dir = state_dir
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(rehost_hold::default_state_dir);
    let r = rehost_hold::switch(&dir, listen, old, timeout)
        .map_err(|e| format!("the hold on {listen}: {e}"))?;
    if let Some(f) = &r.failure {
        return Err(format!("switching the hold on {listen} back to {old}: {f}"));
    }
    reaches(listen, old)?;
    let done = format!(
        "the hold on {listen} switched back from {} to {old} (accept paused {} ms, {} connection(s) ended at the drain deadline); a connection made through it afterwards reached {old} again",
        r.from, r.paused_ms, r.ended_count
    );
    let _ = ctx.output.write_all(format!("{done}\n").as_bytes());
    Ok(done)
}

/// Proves that a new connection through the hold on `listen` is relayed to `upstream`: the
/// connections established to `upstream` on this machine are listed, one is made to the hold,
/// and a connection to `upstream` that was not listed before must appear (the hold's, relaying
/// it) within [`PROOF_WAIT`].
fn reaches(listen: SocketAddr, upstream: SocketAddr) -> Result<(), String> {
    let to_upstream = || -> Result<std::collections::HashSet<(std::net::IpAddr, u16)>, String> {
        let l =
            rehost_host::conns::established_with(&[], rehost_host::conns::MAX_CONNECTIONS, false)
                .map_err(|e| format!("listing this machine's connections: {e}"))?;
        Ok(l.connections
            .iter()
            .filter(|c| {
                c.peer_addr == upstream.ip().to_canonical() && c.peer_port == upstream.port()
            })
            .map(|c| (c.local_addr, c.local_port))
            .collect())
    };
    let before = to_upstream()?;
    let probe = std::net::TcpStream::connect_timeout(&listen, PROOF_WAIT).map_err(|e| {
        format!("a connection to the hold on {listen} after switching back failed: {e}")
    })?;
    let until = Instant::now() + PROOF_WAIT;
    loop {
        if to_upstream()?.difference(&before).next().is_some() {
            drop(probe);
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(format!(
                "the hold on {listen} says it forwards to {upstream} again, but a connection made through it was not relayed there within {} s: not counted as rolled back",
                PROOF_WAIT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(super) static EXECUTOR: Executor = Executor {
    kind: "switch",
    rollback: Some(rollback),
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
        left: r
            .left
            .iter()
            .map(|l| SwitchLeft {
                client: l.client.clone(),
                upstream: l.upstream.clone(),
                after_ms: l.after_ms,
            })
            .collect(),
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
