//! The `drain` step kind: wait until no client holds an established TCP connection to a
//! declared service's ports on its host. Each listing comes from the host's kernel through
//! `Host::connections` (in process here, through the agent elsewhere); a `Tracker` keeps who
//! was there at the start, who came later and who left when, which goes into the journal
//! (`StepData::Drain`) and the report. At the step's timeout it fails naming each client still
//! connected: the ones to end by hand.

use super::Executor;
use crate::EngineError;
use crate::events::Event;
use crate::exec::{Ctx, Outcome, failed};
use rehost_host::conns::{MAX_CONNECTIONS, Tracker};
use rehost_journal::step_data::{DrainClient, DrainData, STEP_DATA_VERSION, StepData};
use rehost_plan::{Step, StepKind};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long `drain` waits when the step sets no timeout.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);
/// Between two listings.
const DRAIN_INTERVAL: Duration = Duration::from_secs(1);
/// How many clients a progress line or a failure names before it says how many more.
const NAMED: usize = 20;

pub(super) static EXECUTOR: Executor = Executor {
    kind: "drain",
    rollback: None,
    execute,
    // The step's host (the service's by default) is opened by every pre-flight; validation
    // has checked the service declares its ports.
    needs: |_, _| Vec::new(),
};

fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    let StepKind::Drain { service } = &step.kind else {
        unreachable!("the registry hands `drain` its own steps")
    };
    let Some(svc) = ctx.plan.service(service).cloned() else {
        return failed(format!("the plan declares no service `{service}`"));
    };
    let host = step.host.clone().unwrap_or_else(|| svc.host.clone());
    let limit = step.timeout.unwrap_or(DRAIN_TIMEOUT);
    let clock = ctx.clock;
    let started = clock.monotonic();
    let elapsed = || clock.monotonic().saturating_sub(started);
    let mut tracker = Tracker::default();
    let mut polls = 0u32;
    let ports_text = svc
        .ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    loop {
        let listing = match ctx.hosts.get(&host) {
            Ok(h) => h.connections(&svc.ports, MAX_CONNECTIONS, ctx.cancel),
            Err(e) => return failed(e),
        };
        if ctx.cancel.load(Ordering::Relaxed) {
            return Ok(Outcome::Cancelled);
        }
        let listing = match listing {
            Ok(l) => l,
            Err(e) => {
                return Ok(Outcome::Failed {
                    detail: format!(
                        "failed to list the connections to service `{}` on host {host}: {e}",
                        svc.id
                    ),
                    exit_code: None,
                    data: data(&svc, &host, &tracker, polls, elapsed(), false),
                });
            }
        };
        polls += 1;
        let at = elapsed();
        tracker.observe(&listing.connections, at.as_millis() as u64);
        let n = listing.connections.len();
        let left = tracker
            .clients()
            .iter()
            .filter(|c| c.left_ms.is_some())
            .count();
        if n == 0 {
            return Ok(Outcome::Done {
                detail: Some(format!(
                    "no client connected to service `{}` (port {ports_text}) on host {host} after {}; {left} client(s) left while waiting",
                    svc.id,
                    rehost_plan::format_duration(Duration::from_secs(at.as_secs())),
                )),
                exit_code: None,
                confirmed_by: None,
                data: data(&svc, &host, &tracker, polls, at, true),
            });
        }
        let named = names(&tracker, n);
        if at >= limit {
            return Ok(Outcome::Failed {
                detail: format!(
                    "{n} client(s) still connected to service `{}` (port {ports_text}) on host {host} after {}; end these by hand on the clients, then run again: {named}",
                    svc.id,
                    rehost_plan::format_duration(limit),
                ),
                exit_code: None,
                data: data(&svc, &host, &tracker, polls, at, false),
            });
        }
        ctx.sink.emit(&Event::Progress {
            id: step.id.clone(),
            message: format!(
                "draining `{}`: {n} connection(s) ({}s of {}): {named}",
                svc.id,
                at.as_secs(),
                rehost_plan::format_duration(limit)
            ),
        });
        let until = clock.monotonic() + DRAIN_INTERVAL;
        while clock.monotonic() < until {
            if ctx.cancel.load(Ordering::Relaxed) {
                return Ok(Outcome::Cancelled);
            }
            clock.sleep(Duration::from_millis(50));
        }
    }
}

/// The clients still connected, the first [`NAMED`] of them, escaped.
fn names(tracker: &Tracker, n: usize) -> String {
    let mut named: Vec<String> = tracker
        .remaining()
        .take(NAMED)
        .map(|c| c.describe())
        .collect();
    if n > named.len() {
        named.push(format!("and {} more", n - named.len()));
    }
    named.join("; ")
}

fn data(
    svc: &rehost_plan::Service,
    host: &str,
    tracker: &Tracker,
    polls: u32,
    waited: Duration,
    drained: bool,
) -> Option<StepData> {
    Some(StepData::Drain(DrainData {
        v: STEP_DATA_VERSION,
        service: svc.id.clone(),
        host: host.to_owned(),
        ports: svc.ports.clone(),
        drained,
        waited_ms: waited.as_millis() as u64,
        polls,
        clients: tracker
            .clients()
            .iter()
            .map(|c| DrainClient {
                peer: c.peer(),
                local_port: c.local_port,
                pid: c.pid,
                command: c.command.clone(),
                first_seen_ms: c.first_seen_ms,
                left_ms: c.left_ms,
            })
            .collect(),
        untracked: tracker.untracked,
    }))
}
