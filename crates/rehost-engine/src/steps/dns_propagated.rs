//! `dns-propagated`: asks every server of a `[[names]]` entry directly (rehost-dns: no cache,
//! each on its own) every `interval`, by the run's clock, until all serve the entry's `new`
//! value; at the step's timeout fails naming each server that lags, its last answer and the
//! TTL it may still hold it for. Each round goes to the step's output; the journal keeps each
//! server's last answer and when it was first seen serving the new value
//! (`StepData::DnsPropagated`).

use super::Executor;
use crate::EngineError;
use crate::events::Event;
use crate::exec::{Ctx, Outcome};
use rehost_dns::{Answer, Asked, Kind, Role, Server};
use rehost_journal::step_data::{DnsPropagatedData, DnsServerData, STEP_DATA_VERSION, StepData};
use rehost_plan::{Step, StepKind, format_duration};
use std::sync::atomic::Ordering;
use std::time::Duration;

pub(super) static EXECUTOR: Executor = Executor {
    kind: "dns-propagated",
    rollback: None,
    execute,
    needs: |_, _| Vec::new(),
};

/// How long the step waits when it sets no timeout.
const DNS_TIMEOUT: Duration = Duration::from_secs(3600);
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
    let StepKind::DnsPropagated { name: id, interval } = &step.kind else {
        unreachable!("the registry hands `dns-propagated` its own steps")
    };
    let Some(decl) = ctx.plan.name_decl(id).cloned() else {
        return Ok(failed(format!("the plan declares no name `{id}`")));
    };
    let prepared = (|| -> Result<_, String> {
        let kind = Kind::parse(&decl.record)?;
        let name = rehost_dns::fqdn(&decl.name)?;
        let new = decl
            .new
            .as_deref()
            .ok_or_else(|| format!("name `{id}` has no `new` value to wait for"))?;
        let new = kind.normalize(new)?;
        let mut servers = Vec::new();
        for (list, role) in [
            (&decl.authoritative, Role::Authoritative),
            (&decl.resolvers, Role::Resolver),
        ] {
            for s in list {
                servers.push(Server {
                    addr: rehost_dns::parse_server(&ctx.endpoint_to_ask(s))?,
                    role,
                });
            }
        }
        if servers.is_empty() {
            return Err(format!(
                "name `{id}` lists no servers: add `authoritative` and `resolvers`"
            ));
        }
        Ok((kind, name, new, servers))
    })();
    let (kind, name, new, servers) = match prepared {
        Ok(p) => p,
        Err(e) => return Ok(failed(e)),
    };
    let expect = vec![new.clone()];
    let clock = ctx.clock;
    let start = clock.monotonic();
    let deadline = start + step.timeout.unwrap_or(DNS_TIMEOUT);
    let mut first_served: Vec<Option<String>> = vec![None; servers.len()];
    let mut rounds = 0u32;
    loop {
        if ctx.cancel.load(Ordering::Relaxed) {
            return Ok(Outcome::Cancelled);
        }
        let asked = rehost_dns::ask_all(&servers, &name, kind, QUESTION_TIMEOUT);
        rounds += 1;
        let now = clock.now().to_string();
        for (i, a) in asked.iter().enumerate() {
            if a.answer.serves(&expect) == Some(true) && first_served[i].is_none() {
                first_served[i] = Some(now.clone());
            }
        }
        let lagging: Vec<&Asked> = asked
            .iter()
            .filter(|a| a.answer.serves(&expect) != Some(true))
            .collect();
        let line = if lagging.is_empty() {
            format!("round {rounds}: all {} servers serve {new}\n", asked.len())
        } else {
            format!(
                "round {rounds}: {} of {} lag: {}\n",
                lagging.len(),
                asked.len(),
                lagging
                    .iter()
                    .map(|a| lag(a))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        };
        let _ = ctx.output.write_all(line.as_bytes());
        let waited = clock.monotonic().saturating_sub(start);
        let timed_out = clock.monotonic() >= deadline;
        if lagging.is_empty() || timed_out {
            let code = if lagging.is_empty() {
                0
            } else if lagging
                .iter()
                .any(|a| matches!(a.answer, Answer::NotAnswered { .. }))
            {
                2
            } else {
                1
            };
            let data = Some(StepData::DnsPropagated(Box::new(DnsPropagatedData {
                v: STEP_DATA_VERSION,
                id: id.clone(),
                name: name.to_string(),
                record: kind.name().into(),
                old: decl.old.clone(),
                new: new.clone(),
                exit_code: code,
                rounds,
                waited_ms: waited.as_millis() as u64,
                servers: asked
                    .iter()
                    .zip(&first_served)
                    .map(|(a, f)| server_data(a, f.clone(), &expect))
                    .collect(),
            })));
            let after = format_duration(Duration::from_secs(waited.as_secs()));
            if lagging.is_empty() {
                return Ok(Outcome::Done {
                    detail: Some(format!(
                        "all {} servers of `{}` serve {new} (after {after}, {rounds} round{})",
                        asked.len(),
                        name,
                        if rounds == 1 { "" } else { "s" }
                    )),
                    exit_code: Some(0),
                    confirmed_by: None,
                    data,
                });
            }
            return Ok(Outcome::Failed {
                detail: format!(
                    "after {after}, {} of {} servers of `{}` do not serve {new}: {}. Wait longer \
                     (the step's `timeout`) or correct the lagging servers, and run again",
                    lagging.len(),
                    asked.len(),
                    name,
                    lagging
                        .iter()
                        .map(|a| lag(a))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                exit_code: Some(code),
                data,
            });
        }
        ctx.sink.emit(&Event::Progress {
            id: step.id.clone(),
            message: line.trim_end().to_string(),
        });
        let next = (clock.monotonic() + *interval).min(deadline);
        while clock.monotonic() < next {
            if ctx.cancel.load(Ordering::Relaxed) {
                return Ok(Outcome::Cancelled);
            }
            clock.sleep(
                next.saturating_sub(clock.monotonic())
                    .min(Duration::from_millis(100)),
            );
        }
    }
}

/// A lagging server in a few words: who, what it serves, how long caches may keep it.
fn lag(a: &Asked) -> String {
    let who = format!("{} ({})", a.server, a.role.name());
    match &a.answer {
        Answer::NotAnswered { reason } => format!("{who} did not answer: {reason}"),
        Answer::Answered {
            values, ttl, rcode, ..
        } => {
            let what = if values.is_empty() {
                format!("no record ({rcode})")
            } else {
                values.join(", ")
            };
            let hold = match (ttl, a.role) {
                (Some(t), Role::Resolver) => format!(", which it may keep for {t} s more"),
                (Some(t), Role::Authoritative) => {
                    format!(", which caches may keep for up to {t} s")
                }
                (None, _) => String::new(),
            };
            format!("{who} serves {}{hold}", rehost_plan::escape_control(&what))
        }
    }
}

fn server_data(a: &Asked, first_served: Option<String>, expect: &[String]) -> DnsServerData {
    let (status, values, reason, ttl, negative_ttl) = match &a.answer {
        Answer::NotAnswered { reason } => {
            ("not_answered", Vec::new(), Some(reason.clone()), None, None)
        }
        Answer::Answered {
            values,
            ttl,
            negative_ttl,
            ..
        } => (
            if a.answer.serves(expect) == Some(true) {
                "serves"
            } else {
                "differs"
            },
            values.clone(),
            None,
            *ttl,
            *negative_ttl,
        ),
    };
    DnsServerData {
        server: a.server.clone(),
        role: a.role.name().into(),
        status: status.into(),
        values,
        reason,
        ttl,
        negative_ttl,
        first_served,
    }
}
