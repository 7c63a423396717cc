//! The run loop: resume from the journal, check the plan did not change, honour the window,
//! execute each step, record it, and roll back where the plan says so.

use crate::EngineError;
use crate::events::{Event, Sink, StepResult};
use crate::exec::{self, Ctx, Hosts, Outcome};
use crate::journal::{Journal, OutputRef, Record};
use crate::lock::RunLock;
use crate::state::{StepStatus, status};
use rehost_plan::{Diagnostic, OnFailure, Plan, Step};
use rehost_tree::private::PrivateDir;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub use crate::exec::Confirmer;

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub env: Option<String>,
    pub state_dir: PathBuf,
    /// Who runs rehost (recorded with every decision).
    pub user: String,
    pub confirm_as: Option<String>,
    pub yes: bool,
    pub accept_findings: bool,
    pub accept_plan_change: bool,
    pub ignore_window: bool,
    pub retry_interrupted: bool,
    pub skip_interrupted: bool,
    /// The ssh config file for ssh hosts whose plan entry names none (`--ssh-config`).
    pub ssh_config: Option<PathBuf>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every step is done.
    Finished,
    /// The run had already finished; nothing ran.
    AlreadyFinished,
}

pub struct Engine<'a> {
    pub plan: &'a Plan,
    pub plan_text: &'a str,
    pub findings: &'a [Diagnostic],
    pub options: RunOptions,
    pub sink: &'a mut dyn Sink,
    pub cancel: &'a AtomicBool,
    pub confirmer: &'a mut dyn Confirmer,
}

/// Confirms every step as a fixed person (`--confirm-as`, `--yes`).
struct FixedConfirmer(String);

impl Confirmer for FixedConfirmer {
    fn confirm(&mut self, _step: &Step, _text: &str, _pnr: bool) -> Result<String, String> {
        Ok(self.0.clone())
    }
}

/// Where the operator sits: standard input's terminal, and the ssh client's address when the
/// operator came in over ssh (a jump host).
fn terminal() -> String {
    let tty = std::fs::read_link("/proc/self/fd/0")
        .ok()
        .filter(|p| p.starts_with("/dev/pts") || p.starts_with("/dev/tty"))
        .map_or_else(|| "not a terminal".to_owned(), |p| p.display().to_string());
    match std::env::var("SSH_CLIENT") {
        Ok(c) => format!(
            "{tty}, over ssh from {}",
            c.split_whitespace().next().unwrap_or("?")
        ),
        Err(_) => tty,
    }
}

/// This machine's name, for the holder of a host lock.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "this machine".into())
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// The digest of a step's definition, independent of where it sits in the file.
pub(crate) fn step_digest(s: &Step) -> String {
    let canonical = serde_json::json!({
        "title": s.title, "kind": s.kind, "host": s.host,
        "after": s.after.iter().map(|a| &a.value).collect::<Vec<_>>(),
        "timeout": s.timeout.map(|t| t.as_millis() as u64), "rollback": s.rollback,
        "idempotent": s.idempotent, "needs_window": s.needs_window, "on_failure": s.on_failure,
        "effects": s.effects,
    });
    blake3::hash(canonical.to_string().as_bytes()).to_hex()[..16].to_string()
}

fn describe_changes(old: &[(String, String)], new: &[(String, String)]) -> String {
    let mut parts = Vec::new();
    for (id, d) in new {
        match old.iter().find(|(o, _)| o == id) {
            None => parts.push(format!("step `{id}` added")),
            Some((_, od)) if od != d => parts.push(format!("step `{id}` changed")),
            _ => {}
        }
    }
    for (id, _) in old {
        if !new.iter().any(|(n, _)| n == id) {
            parts.push(format!("step `{id}` removed"));
        }
    }
    let old_order: Vec<&String> = old
        .iter()
        .map(|(i, _)| i)
        .filter(|i| new.iter().any(|(n, _)| n == *i))
        .collect();
    let new_order: Vec<&String> = new
        .iter()
        .map(|(i, _)| i)
        .filter(|i| old.iter().any(|(o, _)| o == *i))
        .collect();
    if parts.is_empty() && old_order != new_order {
        parts.push("steps reordered".into());
    }
    parts.join(", ")
}

/// A writer that keeps the BLAKE3 digest and size of what passes through it.
struct HashingWriter {
    file: std::fs::File,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl HashingWriter {
    /// Syncs the file and describes it for the journal (`None` if nothing was written).
    fn finish(&self, rel: &str, tail: &[String]) -> Option<OutputRef> {
        let _ = self.file.sync_data();
        (self.bytes > 0).then(|| OutputRef {
            file: rel.to_owned(),
            bytes: self.bytes,
            blake3: self.hasher.finalize().to_hex().to_string(),
            tail: tail.to_vec(),
        })
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Engine<'_> {
    pub fn run(self) -> Result<RunOutcome, EngineError> {
        let Engine {
            plan,
            plan_text,
            findings,
            options: o,
            sink,
            cancel,
            confirmer,
        } = self;
        let env_name = o.env.clone().unwrap_or_else(|| "production".into());
        let targets = plan
            .hosts_for(o.env.as_deref())
            .ok_or_else(|| EngineError::UnknownEnvironment(env_name.clone()))?;
        if o.env.is_none() && !findings.is_empty() && !o.accept_findings {
            return Err(EngineError::FindingsNotAccepted(findings.len()));
        }
        let host_names: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
        let mut hosts = Hosts::new(targets, o.ssh_config.as_deref());
        // A rehearsal must not reach production, however the plan spells its hosts: checked
        // before anything is written or run.
        if let Some(env) = &o.env {
            let met =
                crate::isolation::check_run(plan, env, &mut hosts, o.ssh_config.as_deref(), cancel)
                    .map_err(|message| EngineError::IsolationUnknown {
                        env: env.clone(),
                        message,
                    })?;
            if let Some(m) = met.into_iter().next() {
                return Err(EngineError::MeetsProduction {
                    env: env.clone(),
                    env_host: m.env_host,
                    prod_host: m.prod_host,
                    why: m.why,
                });
            }
        }
        let dir = &o.state_dir;
        let sdir = crate::open_state_dir(dir, true)?.expect("created");
        let outputs = sdir
            .subdir("output", true)
            .map_err(EngineError::from_private)?
            .expect("created");
        let _lock = RunLock::acquire(&sdir, &env_name)?;
        // One run per server, whatever its state directory: each host of the run holds its
        // lock until the run ends (see `rehost_host::host_lock`).
        let holder = format!(
            "pid {} on {}, user {}, started {}, state {}",
            std::process::id(),
            hostname(),
            o.user,
            now(),
            dir.display()
        );
        for name in &host_names {
            let lock = rehost_host::Request::Lock {
                holder: holder.clone(),
            };
            hosts
                .get(name)
                .and_then(|h| {
                    h.request(&lock, cancel, &mut |_| {})
                        .map_err(|e| e.to_string())
                })
                .map_err(|reason| EngineError::HostLock {
                    host: name.clone(),
                    reason,
                })?;
        }
        let (mut journal, torn) = Journal::open(&sdir)?;
        if let Some(message) = torn {
            sink.emit(&Event::Warning {
                message: message.clone(),
            });
            journal.append(Record::Warning { at: now(), message })?;
        }
        if journal.unchained() > 0 {
            sink.emit(&Event::Warning {
                message: format!(
                    "the first {} record(s) of the journal were written by an older rehost, before the hash chain: they cannot be verified; the records from now on are chained",
                    journal.unchained()
                ),
            });
        }

        let ids: Vec<String> = plan.steps.iter().map(|s| s.id.clone()).collect();
        let digests: Vec<(String, String)> = plan
            .steps
            .iter()
            .map(|s| (s.id.clone(), step_digest(s)))
            .collect();
        let plan_digest = rehost_plan::digest(plan_text);
        let prior = status(journal.records(), &ids);
        let resumed = prior.started.is_some();
        if !resumed {
            let plan_file = snapshot_plan(&sdir, plan_text, &plan_digest)?;
            journal.append(Record::RunStarted {
                at: now(),
                plan_digest: plan_digest.clone(),
                env: env_name.clone(),
                steps: digests.clone(),
                user: o.user.clone(),
                pid: std::process::id(),
                version: env!("CARGO_PKG_VERSION").into(),
                plan_file: Some(plan_file),
                operator_host: Some(hostname()),
                terminal: Some(terminal()),
            })?;
        } else if prior.step_digests != digests {
            let changes = describe_changes(&prior.step_digests, &digests);
            if !o.accept_plan_change {
                return Err(EngineError::PlanChanged { changes });
            }
            record_decision(&mut journal, sink, &o.user, "accept-plan-change", &changes)?;
            let plan_file = snapshot_plan(&sdir, plan_text, &plan_digest)?;
            journal.append(Record::PlanAccepted {
                at: now(),
                plan_digest: plan_digest.clone(),
                steps: digests.clone(),
                by: o.user.clone(),
                plan_file: Some(plan_file),
            })?;
        } else if prior.plan_digest.as_deref() != Some(plan_digest.as_str())
            || prior.plan_file.is_none()
        {
            // The text changed where no step did, or an older rehost kept no snapshot: the
            // plan as run from now on is kept too.
            let plan_file = snapshot_plan(&sdir, plan_text, &plan_digest)?;
            journal.append(Record::PlanSnapshot {
                at: now(),
                plan_digest: plan_digest.clone(),
                plan_file,
            })?;
        }
        if o.env.is_none() && !findings.is_empty() {
            let codes: Vec<&str> = findings.iter().map(|f| f.code).collect();
            record_decision(
                &mut journal,
                sink,
                &o.user,
                "accept-findings",
                &codes.join(", "),
            )?;
        }

        let state = status(journal.records(), &ids);
        if matches!(state.finished, Some((true, _))) && state.next().is_none() {
            sink.emit(&Event::RunFinished {
                ok: true,
                elapsed_ms: 0,
                summary: "the run had already finished; nothing to do".into(),
            });
            return Ok(RunOutcome::AlreadyFinished);
        }
        let from = state.next().unwrap_or(plan.steps.len());
        sink.emit(&Event::RunStarted {
            plan: plan.migration.title.clone(),
            env: env_name.clone(),
            steps: plan.steps.len(),
            resumed,
            from,
        });

        // --confirm-as only names who is at the keyboard (the prompts still come); --yes is
        // the one way to skip them, and it is recorded.
        let mut fixed;
        let confirmer: &mut dyn Confirmer = if o.yes {
            let who = o.confirm_as.clone().unwrap_or_else(|| o.user.clone());
            record_decision(
                &mut journal,
                sink,
                &who,
                "yes",
                "every manual step confirmed without asking",
            )?;
            fixed = FixedConfirmer(format!("{who} (--yes)"));
            &mut fixed
        } else {
            confirmer
        };
        // Every host the remaining steps use, before the first of them runs.
        let remaining: Vec<rehost_plan::Step> = plan.steps[from..]
            .iter()
            .zip(&state.steps[from..])
            .filter(|(_, s)| !matches!(s.status, StepStatus::Done | StepStatus::Skipped))
            .map(|(step, _)| step.clone())
            .collect();
        let pf = crate::preflight::preflight(plan, &remaining, &mut hosts, cancel);
        journal.append(Record::Preflight {
            at: now(),
            hosts: pf.hosts.clone(),
            problems: pf.problems.clone(),
        })?;
        sink.emit(&Event::Preflight {
            hosts: pf.hosts,
            problems: pf.problems.clone(),
        });
        if !pf.problems.is_empty() {
            return Err(EngineError::Preflight {
                problems: pf.problems,
            });
        }
        let started = Instant::now();
        let mut statuses: Vec<StepStatus> = state.steps.iter().map(|s| s.status.clone()).collect();
        let mut attempts: Vec<u32> = state.steps.iter().map(|s| s.attempts).collect();

        for i in from..plan.steps.len() {
            let step = &plan.steps[i];
            // A signal that arrived between steps (or while the last one was being recorded)
            // stops the run before anything else starts.
            if cancel.load(Ordering::SeqCst) {
                return Err(EngineError::CancelledBefore {
                    step: step.id.clone(),
                });
            }
            match statuses[i] {
                StepStatus::Done | StepStatus::Skipped => continue,
                StepStatus::Interrupted if !step.idempotent => {
                    if o.skip_interrupted {
                        record_decision(&mut journal, sink, &o.user, "skip-interrupted", &format!("step `{}` counted as done", step.id))?;
                        journal.append(Record::StepFinished {
                            at: now(),
                            id: step.id.clone(),
                            attempt: attempts[i],
                            result: StepResult::Skipped,
                            elapsed_ms: 0,
                            detail: Some("interrupted earlier; the operator counted it as done (--skip-interrupted)".into()),
                            confirmed_by: Some(o.user.clone()),
                            exit_code: None,
                            output: None,
                            result_data: None,
                        })?;
                        sink.emit(&Event::StepFinished {
                            index: i,
                            id: step.id.clone(),
                            result: StepResult::Skipped,
                            elapsed_ms: 0,
                            detail: Some("interrupted earlier; counted as done (--skip-interrupted)".into()),
                            confirmed_by: None,
                        });
                        statuses[i] = StepStatus::Skipped;
                        continue;
                    } else if o.retry_interrupted {
                        record_decision(&mut journal, sink, &o.user, "retry-interrupted", &format!("step `{}` runs again", step.id))?;
                    } else {
                        return Err(EngineError::Interrupted {
                            step: step.id.clone(),
                            kind: step.kind.name().into(),
                        });
                    }
                }
                StepStatus::Interrupted => sink.emit(&Event::Warning {
                    message: format!("step `{}` was interrupted in an earlier run; it is idempotent, so it runs again", step.id),
                }),
                _ => {}
            }

            if step.needs_window
                && let Some(w) = plan.window_for(o.env.as_deref())
            {
                let t = jiff::Timestamp::now();
                if !w.contains(t) {
                    if !o.ignore_window {
                        return Err(EngineError::OutsideWindow {
                            step: step.id.clone(),
                            start: w.start_text.clone(),
                            end: w.end_text.clone(),
                            now: t.to_string(),
                        });
                    }
                    record_decision(
                        &mut journal,
                        sink,
                        &o.user,
                        "ignore-window",
                        &format!(
                            "step `{}` started at {t}, outside the window {} to {}",
                            step.id, w.start_text, w.end_text
                        ),
                    )?;
                }
            }

            // A step that is the point of no return and acts by itself (a `run`, a `sync`)
            // needs a person to type its id first, as a manual one does at its prompt.
            if crate::exec::is_point_of_no_return(plan, step)
                && !matches!(step.kind, rehost_plan::StepKind::Manual { .. })
            {
                sink.emit(&Event::Instructions {
                    id: step.id.clone(),
                    text: format!(
                        "`{}` is the plan's point of no return: after it, nothing is rolled back.",
                        step.id
                    ),
                });
                match confirmer.confirm(step, "", true) {
                    Ok(who) => record_decision(
                        &mut journal,
                        sink,
                        &who,
                        "point-of-no-return",
                        &format!("step `{}` confirmed before it ran", step.id),
                    )?,
                    Err(_) if cancel.load(std::sync::atomic::Ordering::SeqCst) => {
                        return Err(EngineError::CancelledBefore {
                            step: step.id.clone(),
                        });
                    }
                    Err(reason) => {
                        return Err(EngineError::NotConfirmed {
                            step: step.id.clone(),
                            reason,
                        });
                    }
                }
            }
            attempts[i] += 1;
            let attempt = attempts[i];
            journal.append(Record::StepStarted {
                at: now(),
                id: step.id.clone(),
                attempt,
            })?;
            sink.emit(&Event::StepStarted {
                index: i,
                total: plan.steps.len(),
                id: step.id.clone(),
                title: step.label().to_owned(),
                kind: step.kind.name().into(),
                host: step.host.clone(),
                attempt,
            });
            let name = format!("{:04}-{}.{attempt}.log", i + 1, sanitize(&step.id));
            let rel = format!("output/{name}");
            let file = outputs
                .create_file(&name)
                .map_err(EngineError::from_private)?;
            let mut out = HashingWriter {
                file,
                hasher: blake3::Hasher::new(),
                bytes: 0,
            };
            let mut tail = Vec::new();
            let t0 = Instant::now();
            let outcome = {
                let mut ctx = Ctx {
                    plan,
                    state_dir: dir,
                    state: &sdir,
                    hosts: &mut hosts,
                    sink: &mut *sink,
                    cancel,
                    output: &mut out,
                    confirmer: &mut *confirmer,
                    tail: &mut tail,
                    attempt,
                };
                crate::steps::execute(&mut ctx, step)
            };
            let elapsed_ms = t0.elapsed().as_millis() as u64;
            let output = out.finish(&rel, &tail);
            // One record and one event per finished step, whatever the outcome.
            let (result, detail, exit_code, confirmed_by, result_data, stop) = match outcome {
                Err(e @ EngineError::NotConfirmed { .. }) => (
                    StepResult::NotConfirmed,
                    Some(e.to_string()),
                    None,
                    None,
                    None,
                    Some(e),
                ),
                Err(e) => return Err(e),
                Ok(Outcome::Done {
                    detail,
                    exit_code,
                    confirmed_by,
                    data,
                }) => (
                    StepResult::Done,
                    detail,
                    exit_code,
                    confirmed_by,
                    data,
                    None,
                ),
                Ok(Outcome::Cancelled) => (
                    StepResult::Interrupted,
                    Some("interrupted by the operator".into()),
                    None,
                    None,
                    None,
                    Some(EngineError::Cancelled {
                        step: step.id.clone(),
                    }),
                ),
                Ok(Outcome::Failed {
                    detail,
                    exit_code,
                    data,
                }) => (
                    StepResult::Failed,
                    Some(detail),
                    exit_code,
                    None,
                    data,
                    None,
                ),
            };
            journal.append(Record::StepFinished {
                at: now(),
                id: step.id.clone(),
                attempt,
                result: result.clone(),
                elapsed_ms,
                detail: detail.clone(),
                confirmed_by: confirmed_by.clone(),
                exit_code,
                output,
                result_data,
            })?;
            sink.emit(&Event::StepFinished {
                index: i,
                id: step.id.clone(),
                result: result.clone(),
                elapsed_ms,
                detail: detail.clone(),
                confirmed_by,
            });
            if let Some(e) = stop {
                return Err(e);
            }
            match result {
                StepResult::Done => statuses[i] = StepStatus::Done,
                _ => {
                    statuses[i] = StepStatus::Failed;
                    let detail = detail.unwrap_or_default();
                    let policy = step.on_failure.unwrap_or(plan.migration.on_failure);
                    let pnr = plan
                        .migration
                        .point_of_no_return
                        .as_ref()
                        .and_then(|p| plan.step_index(&p.value));
                    let reason = if policy == OnFailure::Rollback && pnr.is_none_or(|p| i <= p) {
                        let (n, again) = rollback(
                            plan,
                            &sdir,
                            i,
                            &statuses,
                            &mut hosts,
                            &mut journal,
                            sink,
                            cancel,
                        )?;
                        let again = if again.is_empty() {
                            String::new()
                        } else {
                            format!(
                                "; the finished steps after the first rolled-back one run again ({})",
                                again
                                    .iter()
                                    .map(|s| format!("`{s}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        };
                        if n == 0 {
                            format!(
                                "{detail}; no earlier step had finished, so nothing was rolled back. Fix the cause, then run again to retry from this step"
                            )
                        } else {
                            format!(
                                "{detail}; rolled back {n} step(s) in reverse order{again}. Fix the cause, then `rehost run` starts again from the first rolled-back step"
                            )
                        }
                    } else if policy == OnFailure::Rollback {
                        format!(
                            "{detail}; no rollback: the step is past the point of no return. Fix the cause on the host and run again to retry from this step"
                        )
                    } else {
                        format!("{detail}. Fix the cause, then run again to retry from this step")
                    };
                    journal.append(Record::RunFinished {
                        at: now(),
                        ok: false,
                        summary: format!("step `{}` failed", step.id),
                    })?;
                    sink.emit(&Event::RunFinished {
                        ok: false,
                        elapsed_ms: started.elapsed().as_millis() as u64,
                        summary: format!("step `{}` failed", step.id),
                    });
                    return Err(EngineError::StepFailed {
                        step: step.id.clone(),
                        line: rehost_plan::SourceMap::new(plan_text)
                            .line_col(step.span.start)
                            .0,
                        reason,
                    });
                }
            }
        }
        let mut summary = format!("all {} steps done", plan.steps.len());
        if let Some(down) = crate::state::downtime(journal.records(), plan) {
            let down_text = rehost_plan::format_duration(std::time::Duration::from_millis(
                down.as_millis() as u64,
            ));
            match plan.migration.max_downtime {
                Some(budget) if down > budget => {
                    let message = format!(
                        "the measured downtime {down_text} exceeded the budget of {}",
                        rehost_plan::format_duration(budget)
                    );
                    sink.emit(&Event::Warning {
                        message: message.clone(),
                    });
                    journal.append(Record::Warning { at: now(), message })?;
                    summary.push_str(&format!(
                        "; downtime {down_text}, OVER the budget of {}",
                        rehost_plan::format_duration(budget)
                    ));
                }
                Some(budget) => summary.push_str(&format!(
                    "; downtime {down_text} of the {} budget",
                    rehost_plan::format_duration(budget)
                )),
                None => summary.push_str(&format!("; downtime {down_text}")),
            }
        }
        journal.append(Record::RunFinished {
            at: now(),
            ok: true,
            summary: summary.clone(),
        })?;
        sink.emit(&Event::RunFinished {
            ok: true,
            elapsed_ms: started.elapsed().as_millis() as u64,
            summary,
        });
        Ok(RunOutcome::Finished)
    }
}

fn record_decision(
    journal: &mut Journal,
    sink: &mut dyn Sink,
    by: &str,
    what: &str,
    detail: &str,
) -> Result<(), EngineError> {
    journal.append(Record::Decision {
        at: now(),
        what: what.into(),
        detail: detail.into(),
        by: by.into(),
    })?;
    sink.emit(&Event::Decision {
        what: what.into(),
        detail: detail.into(),
    });
    Ok(())
}

/// Runs the rollbacks of the failed step and of every finished step before it, in reverse
/// order, recording each. Returns how many rollbacks succeeded, and the finished steps after
/// the earliest rolled-back one, which a `superseded` record sends round again.
///
/// Those steps must run again: once the old side is back (its service restarted by the
/// rollback), it takes writes that the final sync, the dump and the verifications before the
/// failure never saw. Resuming only the rolled-back steps would end "done" with a stale copy.
#[allow(clippy::too_many_arguments)]
fn rollback(
    plan: &Plan,
    state: &PrivateDir,
    failed: usize,
    statuses: &[StepStatus],
    hosts: &mut Hosts,
    journal: &mut Journal,
    sink: &mut dyn Sink,
    cancel: &AtomicBool,
) -> Result<(usize, Vec<String>), EngineError> {
    let order: Vec<usize> = (0..=failed)
        .rev()
        .filter(|&j| j == failed || statuses[j] == StepStatus::Done)
        .filter(|&j| plan.steps[j].rollback.is_some())
        .collect();
    journal.append(Record::RollbackStarted {
        at: now(),
        failed: plan.steps[failed].id.clone(),
    })?;
    sink.emit(&Event::RollbackStarted {
        failed: plan.steps[failed].id.clone(),
        steps: order.iter().map(|&j| plan.steps[j].id.clone()).collect(),
    });
    let mut ok_count = 0;
    let mut undone = Vec::new();
    for &j in &order {
        let step = &plan.steps[j];
        let command = step.rollback.as_ref().expect("filtered");
        let host = step.host.clone().unwrap_or_default();
        // Kept as evidence, like a step's output; numbered, as a step can be rolled back more
        // than once (a failed rollback leaves it done, and the next failure rolls back again).
        let n = journal
            .records()
            .iter()
            .filter(|r| matches!(r, Record::RolledBack { id, .. } if *id == step.id))
            .count()
            + 1;
        let name = format!("{:04}-{}.rollback-{n}.log", j + 1, sanitize(&step.id));
        let rel = format!("output/{name}");
        let file = state
            .subdir("output", true)
            .map_err(EngineError::from_private)?
            .expect("created")
            .create_file(&name)
            .map_err(EngineError::from_private)?;
        let mut sink_out = HashingWriter {
            file,
            hasher: blake3::Hasher::new(),
            bytes: 0,
        };
        let mut tail = Vec::new();
        let mut no_confirm = FixedConfirmer(String::new());
        let result = {
            let mut ctx = Ctx {
                plan,
                state_dir: state.path(),
                state,
                hosts: &mut *hosts,
                sink: &mut *sink,
                cancel,
                output: &mut sink_out,
                confirmer: &mut no_confirm,
                tail: &mut tail,
                attempt: 0,
            };
            exec::run_command(&mut ctx, step, &host, command, None)
        };
        let (ok, detail) = match result {
            Ok(o) if o.exit.code == Some(0) => (true, None),
            Ok(o) => (
                false,
                Some(format!(
                    "the rollback command ended with {} on host {host}",
                    o.exit
                )),
            ),
            Err(e) => (false, Some(e)),
        };
        if ok {
            ok_count += 1;
            undone.push(j);
        }
        let output = sink_out.finish(&rel, &tail);
        journal.append(Record::RolledBack {
            at: now(),
            id: step.id.clone(),
            ok,
            detail: detail.clone(),
            output,
        })?;
        sink.emit(&Event::RolledBack {
            id: step.id.clone(),
            ok,
            detail,
        });
    }
    // The earliest step whose rollback ran (even if it failed: the operator fixes that too,
    // and running the steps after it again never loses data). Steps rolled back stay
    // "rolled back"; the others in between are superseded.
    let Some(&from) = order.last() else {
        return Ok((ok_count, Vec::new()));
    };
    let again: Vec<String> = (from..failed)
        .filter(|&j| matches!(statuses[j], StepStatus::Done | StepStatus::Skipped))
        .filter(|j| !undone.contains(j))
        .map(|j| plan.steps[j].id.clone())
        .collect();
    if !again.is_empty() {
        journal.append(Record::Superseded {
            at: now(),
            from: plan.steps[from].id.clone(),
            steps: again.clone(),
            failed: plan.steps[failed].id.clone(),
        })?;
    }
    Ok((ok_count, again))
}

/// Where the state directory keeps the plan text whose BLAKE3 digest is `digest`.
pub fn plan_snapshot_name(digest: &str) -> String {
    format!("plans/{digest}.toml")
}

/// Keeps the plan text in the state directory (content-addressed, 0600), so a report can be
/// rebuilt when the plan file has changed or is gone. Returns its name there.
fn snapshot_plan(state: &PrivateDir, text: &str, digest: &str) -> Result<String, EngineError> {
    let plans = state
        .subdir("plans", true)
        .map_err(EngineError::from_private)?
        .expect("created");
    let name = format!("{digest}.toml");
    plans
        .write_atomic(&name, true, &mut |w| w.write_all(text.as_bytes()))
        .map_err(EngineError::from_private)?;
    Ok(plan_snapshot_name(digest))
}

/// A step or data set id made safe as a file name.
pub(crate) fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
