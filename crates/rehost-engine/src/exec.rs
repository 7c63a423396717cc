//! The executors' contract: the run's hosts ([`Hosts`]), the context an executor gets
//! ([`Ctx`]: the plan, hosts, the sink, the clock, cancellation, the output file, the
//! confirmer, the attempt) and what it returns
//! ([`Outcome`]), and what the kinds share (`run_command`, `command_outcome`). The executors
//! themselves are in `steps/`, one module per kind.

use crate::EngineError;
use crate::events::{Event, Sink};
use rehost_host::{CommandSpec, Host, HostError, OutputStream, Program};
use rehost_journal::step_data::{CommandData, STEP_DATA_VERSION, StepData};
use rehost_plan::{Command, Step};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// The hosts of one run, opened on first use.
pub struct Hosts {
    specs: BTreeMap<String, rehost_host::HostSpec>,
    open: BTreeMap<String, std::sync::Arc<dyn Host>>,
}

/// How to reach a plan host. `ssh_config` (from `--ssh-config`) applies to ssh hosts whose plan
/// entry names none.
pub fn host_spec(
    target: rehost_plan::HostTarget,
    ssh_config: Option<&std::path::Path>,
) -> rehost_host::HostSpec {
    match target {
        rehost_plan::HostTarget::Local { root } => rehost_host::HostSpec::Local {
            root: root.map(Into::into),
        },
        rehost_plan::HostTarget::Ssh {
            destination,
            port,
            identity_file,
            proxy_jump,
            ssh_config: own,
            root,
        } => rehost_host::HostSpec::Ssh(rehost_host::SshSpec {
            destination,
            port,
            identity_file: identity_file.map(Into::into),
            proxy_jump,
            ssh_config: own.map(Into::into).or_else(|| ssh_config.map(Into::into)),
            root: root.map(Into::into),
        }),
    }
}

impl Hosts {
    /// `ssh_config` (from `--ssh-config`) applies to ssh hosts whose plan entry names none.
    pub fn new(
        targets: Vec<(String, rehost_plan::HostTarget)>,
        ssh_config: Option<&std::path::Path>,
    ) -> Hosts {
        let specs = targets
            .into_iter()
            .map(|(name, t)| (name, host_spec(t, ssh_config)))
            .collect();
        Hosts {
            specs,
            open: BTreeMap::new(),
        }
    }

    /// Hosts already opened by the caller (in-process tests give fake ones): the run uses
    /// these and opens no other.
    pub fn with_open(open: Vec<(String, Box<dyn Host>)>) -> Hosts {
        Hosts {
            specs: BTreeMap::new(),
            open: open.into_iter().map(|(n, h)| (n, h.into())).collect(),
        }
    }

    /// Opens two hosts (each once) and lends both, for work on both at once.
    pub fn pair(&mut self, a: &str, b: &str) -> Result<(&dyn Host, &dyn Host), String> {
        self.get(a)?;
        self.get(b)?;
        Ok((self.open[a].as_ref(), self.open[b].as_ref()))
    }

    pub fn get(&mut self, name: &str) -> Result<&dyn Host, String> {
        if !self.open.contains_key(name) {
            let spec = self
                .specs
                .get(name)
                .ok_or_else(|| format!("host `{name}` is not part of this run's environment"))?;
            let host = rehost_host::open(name, spec).map_err(|e| e.to_string())?;
            self.open.insert(name.to_owned(), host.into());
        }
        Ok(self.open[name].as_ref())
    }

    /// The host `name`, opened once, for work of its own thread that outlives a step (a
    /// load).
    pub fn shared(&mut self, name: &str) -> Result<std::sync::Arc<dyn Host>, String> {
        self.get(name)?;
        Ok(self.open[name].clone())
    }
}

/// Asks a person to confirm a manual step. Returns who confirmed, or why not.
pub trait Confirmer {
    /// `point_of_no_return`: the step after which nothing is rolled back; the person must
    /// type its id rather than answer yes.
    fn confirm(
        &mut self,
        step: &Step,
        text: &str,
        point_of_no_return: bool,
    ) -> Result<String, String>;
}

pub(crate) enum Outcome {
    Done {
        detail: Option<String>,
        exit_code: Option<i32>,
        confirmed_by: Option<String>,
        /// The kind's typed result, kept in the journal.
        data: Option<StepData>,
    },
    Failed {
        detail: String,
        exit_code: Option<i32>,
        data: Option<StepData>,
    },
    Cancelled,
    /// Interrupted after the step acted (a drain that had begun ending connections): recorded
    /// as interrupted, with what it did so far as its typed result.
    CancelledAfter {
        detail: String,
        data: Option<StepData>,
    },
}

pub(crate) struct Ctx<'a> {
    pub plan: &'a rehost_plan::Plan,
    /// The rehearsal environment being run, `None` in production: where a step finds the
    /// plan's databases ([`rehost_plan::Plan::database_in`]).
    pub env: Option<&'a str>,
    /// The run's state directory: evidence (manifests) and caches live under it.
    pub state_dir: &'a std::path::Path,
    /// The same, opened and checked: files in it are created through it.
    pub state: &'a rehost_tree::private::PrivateDir,
    pub hosts: &'a mut Hosts,
    pub sink: &'a mut dyn Sink,
    /// The run's clock: waits and polls sleep on it.
    pub clock: &'a dyn crate::clock::Clock,
    pub cancel: &'a AtomicBool,
    pub output: &'a mut dyn Write,
    pub confirmer: &'a mut dyn Confirmer,
    pub tail: &'a mut Vec<String>,
    /// The attempt of the step being run (1 for the first): evidence files are kept per attempt.
    pub attempt: u32,
    /// The journal so far: what earlier steps did (a verification names the walk whose digests
    /// it trusted).
    pub records: &'a [rehost_journal::journal::Record],
}

impl Ctx<'_> {
    /// The network endpoint a step acts on (a DNS primary, a hold, an address), as this run
    /// reaches it: in production the plan's; in a rehearsal the environment's mapping of it
    /// (`endpoints`), and an error naming the mapping to add when it has none: a rehearsal
    /// never acts on production.
    pub fn endpoint(&self, key: &str, plan_value: &str) -> Result<String, String> {
        let Some(env) = self.env else {
            return Ok(plan_value.to_owned());
        };
        self.plan
            .environments
            .iter()
            .find(|e| e.name == env)
            .and_then(|e| e.endpoints.iter().find(|(p, _)| p == plan_value))
            .map(|(_, to)| to.clone())
            .ok_or_else(|| {
                format!(
                    "the step's `{key}` {plan_value} is production's, and the environment `{env}` \
                     does not say what the rehearsal uses instead: nothing was done. Add \
                     endpoints = {{ \"{plan_value}\" = \"TEST-ADDRESS\" }} to [environments.{env}] \
                     (the same value, if it is the rehearsal's own)"
                )
            })
    }

    /// A server a step only asks (a DNS server a `dns-ttl` or `dns-propagated` step
    /// questions): in a rehearsal the environment's mapping of it where there is one, else the
    /// plan's own value — a question changes nothing, and a rehearsal's own servers are
    /// usually written in the plan as they are.
    pub fn endpoint_to_ask(&self, plan_value: &str) -> String {
        self.env
            .and_then(|env| self.plan.environments.iter().find(|e| e.name == env))
            .and_then(|e| e.endpoints.iter().find(|(p, _)| p == plan_value))
            .map(|(_, to)| to.clone())
            .unwrap_or_else(|| plan_value.to_owned())
    }
}

pub(crate) fn to_program(c: &Command) -> Program {
    match c {
        Command::Argv(a) => Program::Argv(a.clone()),
        Command::Shell(s) => Program::Shell(s.clone()),
    }
}

const TAIL_LINES: usize = 20;

/// Turns a line of a command's output into a progress message, if it is one.
pub(crate) type ProgressParser = fn(&str) -> Option<String>;

/// Runs a command on a host, streaming its output to the sink, the output file and the tail.
/// With a progress parser, a carriage return also ends a line (progress meters redraw one
/// line), and lines the parser recognises become progress events, at most one a second.
pub(crate) fn run_command(
    ctx: &mut Ctx,
    step: &Step,
    host_name: &str,
    command: &Command,
    progress: Option<ProgressParser>,
) -> Result<rehost_host::RunOutcome, String> {
    let host = ctx.hosts.get(host_name)?;
    let mut spec = CommandSpec::new(to_program(command));
    spec.timeout = step.timeout;
    spec.env.push(("REHOST_STEP".into(), step.id.clone()));
    spec.cr_ends_line = progress.is_some();
    let sink = &mut *ctx.sink;
    let output = &mut *ctx.output;
    let tail = &mut *ctx.tail;
    let id = step.id.clone();
    let mut last_progress = Instant::now() - Duration::from_secs(1);
    let result = host.run(&spec, ctx.cancel, &mut |stream, line| {
        let text = String::from_utf8_lossy(line).into_owned();
        let tag = match stream {
            OutputStream::Stdout => "out",
            OutputStream::Stderr => "err",
        };
        let _ = writeln!(output, "{tag} {text}");
        if let Some(parse) = progress {
            if text.trim().is_empty() {
                return;
            }
            if let Some(message) = parse(&text) {
                if last_progress.elapsed() >= Duration::from_secs(1) {
                    last_progress = Instant::now();
                    sink.emit(&Event::Progress {
                        id: id.clone(),
                        message,
                    });
                }
                return;
            }
        }
        tail.push(text.clone());
        if tail.len() > TAIL_LINES {
            tail.remove(0);
        }
        sink.emit(&Event::Output {
            id: id.clone(),
            host: host_name.to_owned(),
            stream: tag.into(),
            line: text,
        });
    });
    result.map_err(|e: HostError| e.to_string())
}

/// How many findings the journal keeps inline; the full report is in the step's output file.
pub(crate) const JOURNAL_FINDINGS: usize = 100;

/// A step that failed before or without a command of its own.
pub(crate) fn failed(detail: String) -> Result<Outcome, EngineError> {
    Ok(Outcome::Failed {
        detail,
        exit_code: None,
        data: None,
    })
}

/// Whether `step` is the plan's point of no return.
pub(crate) fn is_point_of_no_return(plan: &rehost_plan::Plan, step: &Step) -> bool {
    plan.migration
        .point_of_no_return
        .as_ref()
        .is_some_and(|p| p.value == step.id)
}

/// The outcome of a step's command: done when it ended by itself with an expected status.
/// What a command step records: its exit status.
pub(crate) fn command_data(out: &rehost_host::RunOutcome) -> CommandData {
    CommandData {
        v: STEP_DATA_VERSION,
        exit_code: out.exit.code,
        timed_out: out.timed_out,
    }
}

impl Outcome {
    /// The same outcome with the kind's typed result (a finished one only).
    pub(crate) fn with_data(self, new: Option<StepData>) -> Outcome {
        match self {
            Outcome::Done {
                detail,
                exit_code,
                confirmed_by,
                ..
            } => Outcome::Done {
                detail,
                exit_code,
                confirmed_by,
                data: new,
            },
            Outcome::Failed {
                detail, exit_code, ..
            } => Outcome::Failed {
                detail,
                exit_code,
                data: new,
            },
            Outcome::Cancelled => Outcome::Cancelled,
            Outcome::CancelledAfter { detail, .. } => Outcome::CancelledAfter { detail, data: new },
        }
    }
}

pub(crate) fn command_outcome(
    step: &Step,
    host: &str,
    out: Result<rehost_host::RunOutcome, String>,
    expect_status: &[i32],
) -> Outcome {
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            return Outcome::Failed {
                detail: e,
                exit_code: None,
                data: None,
            };
        }
    };
    if out.cancelled {
        return Outcome::Cancelled;
    }
    if out.timed_out {
        return Outcome::Failed {
            detail: format!(
                "timed out after {} on host {host}; the command and its children were ended",
                rehost_plan::format_duration(step.timeout.unwrap_or_default())
            ),
            exit_code: out.exit.code,
            data: None,
        };
    }
    match out.exit.code {
        Some(c) if expect_status.contains(&c) => Outcome::Done {
            detail: Some(format!("exit status {c} on host {host}")),
            exit_code: Some(c),
            confirmed_by: None,
            data: None,
        },
        _ => Outcome::Failed {
            detail: format!(
                "the command ended with {} on host {host} (expected exit status {})",
                out.exit,
                expect_status
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            exit_code: out.exit.code,
            data: None,
        },
    }
}
