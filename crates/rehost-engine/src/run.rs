//! The run loop: open the run (hosts, locks, journal), resume from the journal, then each step
//! in order — its resume decision, the window, the point of no return, its executor — recorded
//! as it goes, with the failure policy applied when one fails. Each concern is its own module:
//! [`crate::open`], [`crate::resume`], [`crate::window`], [`crate::rollback`],
//! [`crate::recorder`]. The engine never prints: everything goes to the sink.

use crate::EngineError;
use crate::clock::Clock;
use crate::events::{Event, Sink};
use crate::exec::{Ctx, Hosts, Outcome};
use crate::recorder::{OutputFile, Recorder, sanitize};
use crate::resume::{self, Resume};
use rehost_journal::StepResult;
use rehost_journal::journal::Record;
use rehost_journal::state::{StepStatus, status};
use rehost_plan::{Diagnostic, Plan, Step};
use rehost_tree::private::PrivateDir;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// Stop after this step is done (`--until`): the run ends there without `run_finished`,
    /// recorded as an `until` decision, and the next run resumes at the step after it.
    pub until: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every step is done.
    Finished,
    /// The run had already finished; nothing ran.
    AlreadyFinished,
    /// `--until`: every step up to and including this one is done; the rest wait for the next
    /// run.
    Stopped { after: String },
}

pub struct Engine<'a> {
    pub plan: &'a Plan,
    pub plan_text: &'a str,
    pub findings: &'a [Diagnostic],
    pub options: RunOptions,
    pub sink: &'a mut dyn Sink,
    pub cancel: &'a AtomicBool,
    pub confirmer: &'a mut dyn Confirmer,
    /// The run's clock: `SystemClock` but in tests.
    pub clock: &'a dyn Clock,
    /// The hosts, when the caller opened them (tests: fake hosts); else the environment's
    /// hosts from the plan, opened on first use.
    pub hosts: Option<Hosts>,
}

/// Confirms every step as a fixed person (`--confirm-as`, `--yes`).
struct FixedConfirmer(String);

impl Confirmer for FixedConfirmer {
    fn confirm(&mut self, _step: &Step, _text: &str, _pnr: bool) -> Result<String, String> {
        Ok(self.0.clone())
    }
}

/// One run under way: what every step works with.
struct Run<'r, 'a> {
    plan: &'a Plan,
    plan_text: &'a str,
    o: &'r RunOptions,
    state: &'r PrivateDir,
    outputs: &'r PrivateDir,
    hosts: &'r mut Hosts,
    rec: Recorder<'a>,
    cancel: &'a AtomicBool,
    /// The environment's loads under way.
    loads: crate::load::Loads,
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
            clock,
            hosts,
        } = self;
        let env_name = o.env.clone().unwrap_or_else(|| "production".into());
        let targets = plan
            .hosts_for(o.env.as_deref())
            .ok_or_else(|| EngineError::UnknownEnvironment(env_name.clone()))?;
        if o.env.is_none() && !findings.is_empty() && !o.accept_findings {
            return Err(EngineError::FindingsNotAccepted(findings.len()));
        }
        let until = match &o.until {
            Some(u) => Some(
                plan.steps
                    .iter()
                    .position(|s| &s.id == u)
                    .ok_or_else(|| EngineError::UnknownUntil(u.clone()))?,
            ),
            None => None,
        };
        let host_names: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
        let mut hosts = hosts.unwrap_or_else(|| Hosts::new(targets, o.ssh_config.as_deref()));
        let opened =
            crate::open::open(plan, &o, &env_name, &host_names, &mut hosts, cancel, clock)?;
        let (sdir, outputs, _lock) = (opened.state, opened.outputs, opened.lock);
        let (journal, torn) = (opened.journal, opened.torn);
        let mut rec = Recorder::new(journal, sink, clock);
        if let Some(message) = torn {
            rec.warning(message)?;
        }
        if rec.journal().unchained() > 0 {
            let n = rec.journal().unchained();
            rec.emit(&Event::Warning {
                message: format!(
                    "the first {n} record(s) of the journal were written by an older rehost, before the hash chain: they cannot be verified; the records from now on are chained"
                ),
            });
        }

        let ids: Vec<String> = plan.steps.iter().map(|s| s.id.clone()).collect();
        let prior = status(rec.records(), &ids);
        let start = resume::Start {
            plan,
            plan_text,
            env: &env_name,
            operator_host: crate::open::hostname(),
            terminal: crate::open::terminal(),
        };
        let resumed = resume::begin(&mut rec, &sdir, &o, start, &prior)?;
        if o.env.is_none() && !findings.is_empty() {
            let codes: Vec<&str> = findings.iter().map(|f| f.code).collect();
            rec.decision(&o.user, "accept-findings", &codes.join(", "))?;
        }

        let state = status(rec.records(), &ids);
        if matches!(state.finished, Some((true, _))) && state.next().is_none() {
            rec.emit(&Event::RunFinished {
                ok: true,
                elapsed_ms: 0,
                summary: "the run had already finished; nothing to do".into(),
            });
            return Ok(RunOutcome::AlreadyFinished);
        }
        let from = state.next().unwrap_or(plan.steps.len());
        // --until a step that is already done: nothing of this run's to do.
        if let Some(u) = until
            && u < from
        {
            let id = &plan.steps[u].id;
            rec.emit(&Event::RunStopped {
                after: id.clone(),
                left: state
                    .steps
                    .iter()
                    .filter(|s| !matches!(s.status, StepStatus::Done | StepStatus::Skipped))
                    .count(),
                elapsed_ms: 0,
                summary: format!("step `{id}` (--until) is already done; nothing to do"),
            });
            return Ok(RunOutcome::Stopped { after: id.clone() });
        }
        rec.emit(&Event::RunStarted {
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
            rec.decision(&who, "yes", "every manual step confirmed without asking")?;
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
        let pf = crate::preflight::preflight(
            plan,
            o.env.as_deref(),
            plan_text,
            &remaining,
            &mut hosts,
            cancel,
        );
        let at = rec.now();
        rec.record(
            Record::Preflight {
                at,
                hosts: pf.hosts.clone(),
                problems: pf.problems.clone(),
            },
            Event::Preflight {
                hosts: pf.hosts,
                problems: pf.problems.clone(),
            },
        )?;
        // What the pre-flight could not settle yet (a source or a program an earlier step
        // makes): journaled and shown, the run goes on.
        for w in &pf.warnings {
            rec.warning(format!("pre-flight: {w}"))?;
        }
        if !pf.problems.is_empty() {
            return Err(EngineError::Preflight {
                problems: pf.problems,
            });
        }
        rec.start_probes(plan, o.env.as_deref(), o.ssh_config.as_deref())?;
        let mut run = Run {
            plan,
            plan_text,
            o: &o,
            state: &sdir,
            outputs: &outputs,
            hosts: &mut hosts,
            rec,
            cancel,
            loads: Default::default(),
        };
        let outcome = run.steps(from, &state, confirmer);
        // A run that stopped on the way (interrupted, not confirmed): the prober's last
        // changes and its summary are journaled all the same, its loads stopped and checked.
        if let Err(e) = &outcome {
            let _ = run.rec.stop_probes();
            let why = format!("the run stopped ({e})");
            let _ = run.with_loads(|l, c| l.stop_all(c, &why));
            let _ = run.with_loads(|l, c| l.check(c));
        }
        outcome
    }
}

/// A step that is the point of no return and acts by itself (a `run`, a `sync`) needs a
/// person to type its id first, as a manual one does at its prompt.
fn point_of_no_return(
    run: &mut Run,
    step: &Step,
    index: usize,
    attempt: u32,
    confirmer: &mut dyn Confirmer,
) -> Result<(), EngineError> {
    if !crate::exec::is_point_of_no_return(run.plan, step)
        || matches!(step.kind, rehost_plan::StepKind::Manual { .. })
    {
        return Ok(());
    }
    run.rec.emit(&Event::Instructions {
        id: step.id.clone(),
        text: format!(
            "`{}` is the plan's point of no return: after it, nothing is rolled back.",
            step.id
        ),
    });
    let t0 = run.rec.clock.monotonic();
    let reason = match confirmer.confirm(step, "", true) {
        Ok(who) => {
            return run.rec.decision(
                &who,
                "point-of-no-return",
                &format!("step `{}` confirmed before it ran", step.id),
            );
        }
        Err(_) if run.cancel.load(Ordering::SeqCst) => {
            "interrupted at the prompt before anyone answered".to_owned()
        }
        Err(reason) => reason,
    };
    // Not started: recorded as waiting for confirmation (status, report), asked again next run.
    let elapsed_ms = (run.rec.clock.monotonic() - t0).as_millis() as u64;
    let detail = EngineError::NotConfirmed {
        step: step.id.clone(),
        reason: reason.clone(),
    }
    .to_string();
    let at = run.rec.now();
    run.rec.record(
        Record::StepFinished {
            at,
            id: step.id.clone(),
            attempt,
            result: StepResult::NotConfirmed,
            elapsed_ms,
            detail: Some(detail.clone()),
            confirmed_by: None,
            exit_code: None,
            output: None,
            result_data: None,
        },
        Event::StepFinished {
            index,
            id: step.id.clone(),
            result: StepResult::NotConfirmed,
            elapsed_ms,
            detail: Some(detail),
            confirmed_by: None,
        },
    )?;
    if run.cancel.load(Ordering::SeqCst) {
        Err(EngineError::CancelledBefore {
            step: step.id.clone(),
        })
    } else {
        Err(EngineError::NotConfirmed {
            step: step.id.clone(),
            reason,
        })
    }
}

impl<'a> Run<'_, 'a> {
    /// `f` with the run's loads and what they work with.
    fn with_loads<R>(
        &mut self,
        f: impl FnOnce(&mut crate::load::Loads, &mut crate::load::LoadCtx<'_, 'a>) -> R,
    ) -> R {
        let mut c = crate::load::LoadCtx {
            plan: self.plan,
            env: self.o.env.as_deref(),
            hosts: &mut *self.hosts,
            outputs: self.outputs,
            rec: &mut self.rec,
            ssh_config: self.o.ssh_config.as_deref(),
        };
        f(&mut self.loads, &mut c)
    }

    /// Runs the steps from `from` on, each after its resume decision, the window and the point
    /// of no return; a failed one is handled by the failure policy and ends the run.
    fn steps(
        &mut self,
        from: usize,
        state: &rehost_journal::state::RunState,
        confirmer: &mut dyn Confirmer,
    ) -> Result<RunOutcome, EngineError> {
        let (plan, plan_text, o, cancel, clock) = (
            self.plan,
            self.plan_text,
            self.o,
            self.cancel,
            self.rec.clock,
        );
        let run = self;
        let started = clock.monotonic();
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
            match resume::decide(&mut run.rec, o, step, i, &statuses[i], attempts[i])? {
                Resume::Pass => {
                    if statuses[i] == StepStatus::Interrupted {
                        statuses[i] = StepStatus::Skipped;
                    }
                    continue;
                }
                Resume::Run => {}
            }
            crate::window::check(
                &mut run.rec,
                plan,
                o.env.as_deref(),
                step,
                o.ignore_window,
                &o.user,
            )?;
            point_of_no_return(run, step, i, attempts[i] + 1, &mut *confirmer)?;
            attempts[i] += 1;
            run.with_loads(|l, c| l.start_before(c, i))?;
            let (result, detail) = run.step(i, attempts[i], &mut *confirmer)?;
            if result == StepResult::Done {
                statuses[i] = StepStatus::Done;
                run.with_loads(|l, c| l.stop_after(c, &step.id))?;
                if o.until.as_deref() == Some(step.id.as_str()) {
                    return run.stop_until(i, started);
                }
                continue;
            }
            statuses[i] = StepStatus::Failed;
            let why = format!("stopped when step `{}` failed", step.id);
            run.with_loads(|l, c| l.stop_all(c, &why))?;
            let mut env = crate::rollback::Env {
                plan,
                env: run.o.env.as_deref(),
                state: run.state,
                hosts: &mut *run.hosts,
                rec: &mut run.rec,
                cancel,
            };
            let reason =
                crate::rollback::after_failure(&mut env, i, &statuses, detail.unwrap_or_default())?;
            run.rec.stop_probes()?;
            run.with_loads(|l, c| l.check(c))?;
            let at = run.rec.now();
            run.rec.record(
                Record::RunFinished {
                    at,
                    ok: false,
                    summary: format!("step `{}` failed", step.id),
                },
                Event::RunFinished {
                    ok: false,
                    elapsed_ms: (clock.monotonic() - started).as_millis() as u64,
                    summary: format!("step `{}` failed", step.id),
                },
            )?;
            return Err(EngineError::StepFailed {
                step: step.id.clone(),
                line: rehost_plan::SourceMap::new(plan_text)
                    .line_col(step.span.start)
                    .0,
                reason,
            });
        }
        run.rec.stop_probes()?;
        run.with_loads(|l, c| l.stop_all(c, "stopped when the run ended"))?;
        let rechecked = run.recheck_old()?;
        run.with_loads(|l, c| l.check(c))?;
        let mut summary = run.summary()?;
        summary.push_str(&rechecked);
        let at = run.rec.now();
        run.rec.record(
            Record::RunFinished {
                at,
                ok: true,
                summary: summary.clone(),
            },
            Event::RunFinished {
                ok: true,
                elapsed_ms: (clock.monotonic() - started).as_millis() as u64,
                summary,
            },
        )?;
        Ok(RunOutcome::Finished)
    }

    /// `--until` reached: the prober and the loads stopped as at the end of a run, the stop
    /// recorded as a decision (not as `run_finished`: the run is not over, the next resumes
    /// at the step after `i`), and an event that says so.
    fn stop_until(
        &mut self,
        i: usize,
        started: std::time::Duration,
    ) -> Result<RunOutcome, EngineError> {
        let id = self.plan.steps[i].id.clone();
        let left = self.plan.steps.len() - i - 1;
        self.rec.stop_probes()?;
        let why = format!("stopped after step `{id}` (--until)");
        self.with_loads(|l, c| l.stop_all(c, &why))?;
        self.with_loads(|l, c| l.check(c))?;
        let detail = format!("stopped after step `{id}`; {left} step(s) left for the next run");
        self.rec.decision(&self.o.user, "until", &detail)?;
        self.rec.emit(&Event::RunStopped {
            after: id.clone(),
            left,
            elapsed_ms: (self.rec.clock.monotonic() - started).as_millis() as u64,
            summary: detail,
        });
        Ok(RunOutcome::Stopped { after: id })
    }

    /// Runs step `i`: its start recorded, its executor called with the run's context, its end
    /// recorded (one record and one event, whatever the outcome). Returns the result and its
    /// detail; an interruption or a refused confirmation stops the run once recorded.
    fn step(
        &mut self,
        i: usize,
        attempt: u32,
        confirmer: &mut dyn Confirmer,
    ) -> Result<(StepResult, Option<String>), EngineError> {
        let plan = self.plan;
        let step = &plan.steps[i];
        let at = self.rec.now();
        self.rec.record(
            Record::StepStarted {
                at,
                id: step.id.clone(),
                attempt,
            },
            Event::StepStarted {
                index: i,
                total: plan.steps.len(),
                id: step.id.clone(),
                title: step.label().to_owned(),
                kind: step.kind.name().into(),
                host: step.host.clone(),
                attempt,
            },
        )?;
        let name = format!("{:04}-{}.{attempt}.log", i + 1, sanitize(&step.id));
        let mut out = OutputFile::create(self.outputs, &name)?;
        let mut tail = Vec::new();
        let clock = self.rec.clock;
        let t0 = clock.monotonic();
        let outcome = {
            let (records, mut relay) = self.rec.records_and_sink();
            let sink = &mut relay;
            let mut ctx = Ctx {
                plan,
                env: self.o.env.as_deref(),
                state_dir: &self.o.state_dir,
                state: self.state,
                hosts: &mut *self.hosts,
                sink,
                records: &records,
                clock,
                cancel: self.cancel,
                output: &mut out,
                confirmer,
                tail: &mut tail,
                attempt,
            };
            crate::steps::execute(&mut ctx, step)
        };
        let elapsed_ms = (clock.monotonic() - t0).as_millis() as u64;
        let output = out.finish(&tail);
        let (result, detail, exit_code, confirmed_by, result_data, stop) = match outcome {
            // Not confirmed: recorded as waiting for confirmation, and the run stops; after a
            // signal at the prompt, as interrupted (exit 130).
            Err(e @ EngineError::NotConfirmed { .. }) => {
                let detail = e.to_string();
                let stop = if self.cancel.load(Ordering::SeqCst) {
                    EngineError::Cancelled {
                        step: step.id.clone(),
                    }
                } else {
                    e
                };
                (
                    StepResult::NotConfirmed,
                    Some(detail),
                    None,
                    None,
                    None,
                    Some(stop),
                )
            }
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
            Ok(Outcome::CancelledAfter { detail, data }) => (
                StepResult::Interrupted,
                Some(detail),
                None,
                None,
                data,
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
        let at = self.rec.now();
        self.rec.record(
            Record::StepFinished {
                at,
                id: step.id.clone(),
                attempt,
                result: result.clone(),
                elapsed_ms,
                detail: detail.clone(),
                confirmed_by: confirmed_by.clone(),
                exit_code,
                output,
                result_data,
            },
            Event::StepFinished {
                index: i,
                id: step.id.clone(),
                result: result.clone(),
                elapsed_ms,
                detail: detail.clone(),
                confirmed_by,
            },
        )?;
        match stop {
            Some(e) => Err(e),
            None => Ok((result, detail)),
        }
    }

    /// The summary of a finished run: the steps, and the downtime against the budget (a
    /// warning recorded when it was exceeded): every outage the journal records, rolled-back
    /// attempts included ([`rehost_journal::downtime`]).
    /// At the end of the run: every `watch-old` step's old side walked again and compared with
    /// the manifest it kept, each re-check journaled (`old_side_rechecked`). Returns what the
    /// run's summary says of them.
    fn recheck_old(&mut self) -> Result<String, EngineError> {
        let (watched, void) = crate::steps::watch_old::watched(self.plan, self.rec.records());
        let mut out = String::new();
        for step in void {
            out.push_str(&crate::steps::watch_old::void_summary(step));
        }
        for (step, attempt, d) in watched {
            let at = self.rec.now();
            let r = crate::steps::watch_old::recheck(
                self.plan,
                self.hosts,
                self.state,
                self.cancel,
                (step, attempt, &d),
                at,
            );
            out.push_str(&crate::steps::watch_old::summary(&r));
            self.rec.append(r)?;
        }
        Ok(out)
    }

    fn summary(&mut self) -> Result<String, EngineError> {
        let plan = self.plan;
        let mut summary = format!("all {} steps done", plan.steps.len());
        let down = rehost_journal::downtime::downtime(self.rec.records(), plan);
        let fmt = |ms: u64| rehost_plan::format_duration(std::time::Duration::from_millis(ms));
        if let Some(total) = down.total_ms {
            let mut down_text = fmt(total);
            if down.outages.len() > 1 {
                let each: Vec<String> = down
                    .outages
                    .iter()
                    .map(|o| fmt(o.ms.unwrap_or(0)))
                    .collect();
                let (last, rest) = each.split_last().expect("more than one");
                down_text.push_str(&format!(
                    " in {} outages (lasting {} and {last})",
                    down.outages.len(),
                    rest.join(", ")
                ));
            }
            match plan.migration.max_downtime {
                Some(budget) if total > budget.as_millis() as u64 && down.measured.is_none() => {
                    let message = format!(
                        "the downtime declared by the steps, {down_text}, exceeded the budget of {}",
                        rehost_plan::format_duration(budget)
                    );
                    self.rec.warning(message)?;
                    summary.push_str(&format!(
                        "; downtime {down_text} (declared by the steps), OVER the budget of {}",
                        rehost_plan::format_duration(budget)
                    ));
                }
                Some(budget) if down.measured.is_none() => summary.push_str(&format!(
                    "; downtime {down_text} (declared by the steps) of the {} budget",
                    rehost_plan::format_duration(budget)
                )),
                _ => summary.push_str(&format!("; downtime {down_text} declared by the steps")),
            }
        } else if let Some(o) = down.still_down() {
            summary.push_str(&format!(
                "; the service is still down: {} took it down and no step started it again",
                o.how_down()
            ));
        }
        if let Some(m) = &down.measured {
            let text = crate::probe::measured_text(m);
            match plan.migration.max_downtime {
                Some(budget) if m.total_ms > budget.as_millis() as u64 => {
                    let message = format!(
                        "the measured downtime {text} exceeded the budget of {}",
                        rehost_plan::format_duration(budget)
                    );
                    self.rec.warning(message)?;
                    summary.push_str(&format!(
                        "; measured {text}, OVER the budget of {}",
                        rehost_plan::format_duration(budget)
                    ));
                }
                Some(budget) => summary.push_str(&format!(
                    "; measured {text} of the {} budget",
                    rehost_plan::format_duration(budget)
                )),
                None => summary.push_str(&format!("; measured {text}")),
            }
        }
        Ok(summary)
    }
}
