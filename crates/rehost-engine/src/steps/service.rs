//! What the service step kinds share: `stop` and `start` run the service's declared command on
//! the step's host; `health` polls the declared health command (or else the declared ports)
//! until the service answers or the step's timeout passes. The `[[services]]` declaration is
//! the one place a service is described. Each kind registers in its own module (`stop.rs`,
//! `start.rs`, `health.rs`).

use super::Need;
use crate::EngineError;
use crate::events::Event;
use crate::exec::{Ctx, Outcome, command_outcome, run_command};
use rehost_journal::step_data::{STEP_DATA_VERSION, ServiceData, StepData};
use rehost_plan::{Command, Plan, Step, StepKind};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long `health` waits when the step sets no timeout.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);
/// Between two health checks.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);

pub(super) fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    let Some(id) = rehost_plan::service_of(&step.kind) else {
        unreachable!("only service kinds come here")
    };
    let Some(svc) = ctx.plan.services.iter().find(|s| s.id == id).cloned() else {
        return Ok(failed(format!("the plan declares no service `{id}`")));
    };
    let host = step.host.clone().unwrap_or_else(|| svc.host.clone());
    let command = |c: &Option<String>, key: &str| {
        c.clone().map(Command::Shell).ok_or_else(|| {
            format!("service `{id}` declares no `{key}` command; add it to its [[services]] entry")
        })
    };
    match &step.kind {
        StepKind::Stop { .. } | StepKind::Start { .. } => {
            let (c, key) = match &step.kind {
                StepKind::Stop { .. } => (&svc.stop, "stop"),
                _ => (&svc.start, "start"),
            };
            let cmd = match command(c, key) {
                Ok(c) => c,
                Err(e) => return Ok(failed(e)),
            };
            let out = run_command(ctx, step, &host, &cmd, None);
            let data = out.as_ref().ok().map(|o| {
                StepData::Service(ServiceData {
                    v: STEP_DATA_VERSION,
                    service: id.to_owned(),
                    action: key.into(),
                    host: host.clone(),
                    exit_code: o.exit.code,
                    checks: None,
                })
            });
            Ok(command_outcome(step, &host, out, &[0]).with_data(data))
        }
        _ => health(ctx, step, &svc, &host),
    }
}

/// What a service step needs before the run: the service's command for it (stop, start or
/// health), its program on the host that runs it, the systemd units it names, and the names
/// of the URLs a health command asks.
pub(super) fn needs<'s>(plan: &'s Plan, step: &'s Step) -> Vec<Need<'s>> {
    let Some(id) = rehost_plan::service_of(&step.kind) else {
        return Vec::new();
    };
    let Some(svc) = plan.service(id) else {
        return Vec::new();
    };
    let host = step.host.clone().unwrap_or_else(|| svc.host.clone());
    let (command, key) = match &step.kind {
        StepKind::Stop { .. } => (&svc.stop, "stop"),
        StepKind::Start { .. } => (&svc.start, "start"),
        // Without a health command, health connects to the declared ports.
        _ => (&svc.health, "health"),
    };
    let Some(command) = command else {
        if key == "health" {
            return Vec::new();
        }
        return vec![Need::Fails {
            why: format!(
                "service `{id}` declares no `{key}` command; add it to its [[services]] entry"
            ),
        }];
    };
    let mut needs = vec![Need::Runs {
        host: host.clone(),
        command: Command::Shell(command.clone()),
        what: match key {
            "stop" => "stop command",
            "start" => "start command",
            _ => "health command",
        },
    }];
    for unit in crate::preflight::systemd_units(command) {
        needs.push(Need::Unit {
            host: host.clone(),
            unit,
        });
    }
    if key == "health" {
        for name in crate::preflight::url_names(command) {
            needs.push(Need::Resolves {
                host: host.clone(),
                name,
            });
        }
    }
    needs
}

fn failed(detail: String) -> Outcome {
    Outcome::Failed {
        detail,
        exit_code: None,
        data: None,
    }
}

/// Polls until healthy, the timeout, or cancellation.
fn health(
    ctx: &mut Ctx,
    step: &Step,
    svc: &rehost_plan::Service,
    host: &str,
) -> Result<Outcome, EngineError> {
    let limit = step.timeout.unwrap_or(HEALTH_TIMEOUT);
    let clock = ctx.clock;
    let started = clock.monotonic();
    let elapsed = || clock.monotonic().saturating_sub(started);
    let mut attempt = 0u32;
    let mut last_exit = None;
    let data = |checks: u32, exit_code: Option<i32>| {
        Some(StepData::Service(ServiceData {
            v: STEP_DATA_VERSION,
            service: svc.id.clone(),
            action: "health".into(),
            host: host.to_owned(),
            exit_code,
            checks: Some(checks),
        }))
    };
    loop {
        attempt += 1;
        let why = match &svc.health {
            Some(c) => {
                // Each check gets what is left of the step's time, at most 30 s.
                let mut check = step.clone();
                check.timeout = Some(
                    limit
                        .saturating_sub(elapsed())
                        .clamp(Duration::from_secs(1), Duration::from_secs(30)),
                );
                let out = run_command(ctx, &check, host, &Command::Shell(c.clone()), None);
                last_exit = out.as_ref().ok().and_then(|o| o.exit.code);
                match out {
                    Ok(o) if o.cancelled => return Ok(Outcome::Cancelled),
                    Ok(o) if o.exit.code == Some(0) => None,
                    Ok(o) => Some(format!("its health command ended with {}", o.exit)),
                    Err(e) => return Ok(failed(e)),
                }
            }
            None => match closed_ports(ctx, host, &svc.ports) {
                Ok(closed) if closed.is_empty() => None,
                Ok(closed) => Some(closed.join("; ")),
                Err(e) => return Ok(failed(e)),
            },
        };
        let Some(why) = why else {
            return Ok(Outcome::Done {
                detail: Some(format!(
                    "service `{}` healthy on host {host} after {attempt} check(s), {}",
                    svc.id,
                    rehost_plan::format_duration(Duration::from_secs(elapsed().as_secs()))
                )),
                exit_code: None,
                confirmed_by: None,
                data: data(attempt, last_exit),
            });
        };
        if elapsed() >= limit {
            return Ok(failed(format!(
                "service `{}` was not healthy on host {host} within {}: {why}",
                svc.id,
                rehost_plan::format_duration(limit)
            ))
            .with_data(data(attempt, last_exit)));
        }
        ctx.sink.emit(&Event::Progress {
            id: step.id.clone(),
            message: format!(
                "waiting for `{}` (check {attempt}, {}s of {}): {why}",
                svc.id,
                elapsed().as_secs(),
                rehost_plan::format_duration(limit)
            ),
        });
        let until = clock.monotonic() + HEALTH_INTERVAL;
        while clock.monotonic() < until {
            if ctx.cancel.load(Ordering::Relaxed) {
                return Ok(Outcome::Cancelled);
            }
            clock.sleep(Duration::from_millis(50));
        }
    }
}

/// The ports that do not accept a connection on the host, each with why.
pub(super) fn closed_ports(
    ctx: &mut Ctx,
    host: &str,
    ports: &[u16],
) -> Result<Vec<String>, String> {
    let h = ctx.hosts.get(host)?;
    let mut closed = Vec::new();
    for &port in ports {
        let req = rehost_host::Request::Connect {
            port,
            timeout_ms: 2000,
        };
        let mut error = Some("no answer".to_owned());
        h.request(&req, ctx.cancel, &mut |r| {
            if let rehost_host::Response::Connected { error: e } = r {
                error = e;
            }
        })
        .map_err(|e| e.to_string())?;
        if let Some(e) = error {
            closed.push(format!("port {port}: {e}"));
        }
    }
    Ok(closed)
}
