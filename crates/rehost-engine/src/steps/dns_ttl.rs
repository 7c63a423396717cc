//! `dns-ttl`: asks each authoritative server of a `[[names]]` entry (rehost-dns: directly, no
//! recursion) for the TTL it serves, which must be at most the entry's `lowered_ttl`; then finds
//! in the journal when the step that lowered it (`lowers_ttl`) finished and waits, by the run's
//! clock with a countdown, until the old `ttl` has passed since: no cache can then still hold
//! the long-lived answer. The journal keeps each server's TTL and both times
//! (`StepData::DnsTtl`).

use super::Executor;
use crate::EngineError;
use crate::events::Event;
use crate::exec::{Ctx, Outcome};
use rehost_dns::{Answer, Role, Server};
use rehost_journal::journal::{Record, StepResult};
use rehost_journal::step_data::{DnsServerData, DnsTtlData, STEP_DATA_VERSION, StepData};
use rehost_plan::{Effect, Step, StepKind, format_duration};
use std::sync::atomic::Ordering;
use std::time::Duration;

pub(super) static EXECUTOR: Executor = Executor {
    kind: "dns-ttl",
    rollback: None,
    execute,
    needs: |_, _| Vec::new(),
};

/// How long one question to one server may take (UDP, and TCP after it).
const QUESTION_TIMEOUT: Duration = Duration::from_secs(3);

fn failed(detail: String) -> Outcome {
    Outcome::Failed {
        detail,
        exit_code: None,
        data: None,
    }
}

fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    let StepKind::DnsTtl { name: id } = &step.kind else {
        unreachable!("the registry hands `dns-ttl` its own steps")
    };
    let Some(decl) = ctx.plan.name_decl(id).cloned() else {
        return Ok(failed(format!("the plan declares no name `{id}`")));
    };
    let (Some(ttl), Some(lowered)) = (decl.ttl, decl.lowered_ttl) else {
        return Ok(failed(format!(
            "name `{id}` needs `ttl` and `lowered_ttl` in its [[names]] entry"
        )));
    };
    let prepared = (|| -> Result<_, String> {
        let kind = rehost_dns::Kind::parse(&decl.record)?;
        let name = rehost_dns::fqdn(&decl.name)?;
        let servers = decl
            .authoritative
            .iter()
            .map(|s| {
                rehost_dns::parse_server(&ctx.endpoint_to_ask(s)).map(|addr| Server {
                    addr,
                    role: Role::Authoritative,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if servers.is_empty() {
            return Err(format!(
                "name `{id}` lists no `authoritative` servers to ask"
            ));
        }
        Ok((kind, name, servers))
    })();
    let (kind, name, servers) = match prepared {
        Ok(p) => p,
        Err(e) => return Ok(failed(e)),
    };
    let clock = ctx.clock;
    let start = clock.monotonic();
    let asked = rehost_dns::ask_all(&servers, &name, kind, QUESTION_TIMEOUT);
    let limit = lowered.as_secs();
    let mut problems = Vec::new();
    let mut silent = false;
    let rows: Vec<DnsServerData> = asked
        .iter()
        .map(|a| {
            let (status, values, reason, t, neg) = match &a.answer {
                Answer::NotAnswered { reason } => {
                    silent = true;
                    problems.push(format!("{} did not answer: {reason}", a.server));
                    ("not_answered", Vec::new(), Some(reason.clone()), None, None)
                }
                Answer::Answered {
                    values,
                    ttl: t,
                    negative_ttl,
                    rcode,
                    ..
                } => {
                    let ok = matches!(t, Some(t) if u64::from(*t) <= limit);
                    if !ok {
                        problems.push(match t {
                            Some(t) => format!(
                                "{} serves TTL {t} s, more than the lowered {limit} s",
                                a.server
                            ),
                            None => format!(
                                "{} serves no {} record for it ({rcode})",
                                a.server,
                                kind.name()
                            ),
                        });
                    }
                    (
                        if ok { "serves" } else { "differs" },
                        values.clone(),
                        None,
                        *t,
                        *negative_ttl,
                    )
                }
            };
            DnsServerData {
                server: a.server.clone(),
                role: a.role.name().into(),
                status: status.into(),
                values,
                reason,
                ttl: t,
                negative_ttl: neg,
                first_served: None,
            }
        })
        .collect();
    // The latest finished step that declares it lowers this name's TTL.
    let lowering = ctx.records.iter().rev().find_map(|r| match r {
        Record::StepFinished {
            at,
            id: sid,
            result: StepResult::Done,
            ..
        } if ctx
            .plan
            .step(sid)
            .is_some_and(|s| s.effects.contains(&Effect::LowersTtl(id.clone()))) =>
        {
            Some((sid.clone(), at.clone()))
        }
        _ => None,
    });
    let mut data = DnsTtlData {
        v: STEP_DATA_VERSION,
        id: id.clone(),
        name: name.to_string(),
        record: kind.name().into(),
        ttl_s: ttl.as_secs(),
        lowered_ttl_s: limit,
        lowered_by: lowering.as_ref().map(|(s, _)| s.clone()),
        lowered_at: lowering.as_ref().map(|(_, at)| at.clone()),
        expired_at: None,
        waited_ms: 0,
        exit_code: 0,
        servers: rows,
    };
    let fail = |mut data: DnsTtlData, code: i32, detail: String| {
        data.exit_code = code;
        Ok(Outcome::Failed {
            detail,
            exit_code: Some(code),
            data: Some(StepData::DnsTtl(Box::new(data))),
        })
    };
    if !problems.is_empty() {
        return fail(
            data,
            if silent { 2 } else { 1 },
            format!(
                "the TTL of `{name}` is not lowered to {} on every authoritative server: {}. \
                 Lower it on every server (and its zone's secondaries), then run again",
                format_duration(lowered),
                problems.join("; ")
            ),
        );
    }
    let Some((by, at)) = lowering else {
        return fail(
            data,
            1,
            format!(
                "no step that lowers the TTL of name `{id}` has finished in this run's journal, \
                 so when caches let the old TTL ({}) go is unknown: declare lowers_ttl = \
                 [\"{id}\"] on the step that lowers it, and run it before this one",
                format_duration(ttl)
            ),
        );
    };
    let Ok(lowered_at) = at.parse::<jiff::Timestamp>() else {
        return fail(
            data,
            1,
            format!("the journal's time of step `{by}`, `{at}`, does not read"),
        );
    };
    let expiry = lowered_at + jiff::SignedDuration::try_from(ttl).unwrap_or_default();
    data.expired_at = Some(expiry.to_string());
    let left = Duration::try_from(expiry.duration_since(clock.now())).unwrap_or(Duration::ZERO);
    if let Some(limit) = step.timeout
        && left > limit
    {
        data.expired_at = None;
        return fail(
            data,
            1,
            format!(
                "the old TTL of `{name}` ({}) expires at {expiry}, {} after step `{by}` lowered \
                 it: in {}, beyond this step's timeout ({}). Run again then, or raise the timeout",
                format_duration(ttl),
                format_duration(ttl),
                format_duration(Duration::from_secs(left.as_secs())),
                format_duration(limit)
            ),
        );
    }
    let deadline = start + left;
    let mut last_report: Option<Duration> = None;
    while clock.monotonic() < deadline {
        if ctx.cancel.load(Ordering::Relaxed) {
            return Ok(Outcome::Cancelled);
        }
        if last_report.is_none_or(|t| clock.monotonic() - t >= Duration::from_secs(10)) {
            last_report = Some(clock.monotonic());
            let rest = deadline.saturating_sub(clock.monotonic());
            ctx.sink.emit(&Event::Progress {
                id: step.id.clone(),
                message: format!(
                    "the old TTL of `{name}` expires in {} (at {expiry})",
                    format_duration(Duration::from_secs(rest.as_secs().max(1)))
                ),
            });
        }
        clock.sleep(
            deadline
                .saturating_sub(clock.monotonic())
                .min(Duration::from_millis(100)),
        );
    }
    data.waited_ms = clock.monotonic().saturating_sub(start).as_millis() as u64;
    let ttls: Vec<String> = data
        .servers
        .iter()
        .map(|s| format!("{} {} s", s.server, s.ttl.unwrap_or_default()))
        .collect();
    Ok(Outcome::Done {
        detail: Some(format!(
            "every authoritative server serves `{name}` with a TTL of at most {} ({}); the old \
             TTL ({}) expired at {expiry}, after step `{by}` lowered it",
            format_duration(lowered),
            ttls.join(", "),
            format_duration(ttl)
        )),
        exit_code: Some(0),
        confirmed_by: None,
        data: Some(StepData::DnsTtl(Box::new(data))),
    })
}
