//! `run`: the step's command on its host, done when it ends with an expected status.

use super::{Executor, Need};
use crate::EngineError;
use crate::exec::{Ctx, Outcome, command_data, command_outcome, run_command};
use rehost_journal::step_data::StepData;
use rehost_plan::{Step, StepKind};

pub(super) static EXECUTOR: Executor = Executor {
    kind: "run",
    rollback: None,
    execute,
    needs: |_, step| match (&step.kind, &step.host) {
        (StepKind::Run { command, .. }, Some(host)) => vec![Need::Runs {
            host: host.clone(),
            command: command.clone(),
            what: "command",
        }],
        _ => Vec::new(),
    },
};

fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    let StepKind::Run {
        command,
        expect_status,
    } = &step.kind
    else {
        unreachable!("the registry hands `run` its own steps")
    };
    let host = step.host.clone().unwrap_or_default();
    let out = run_command(ctx, step, &host, command, None);
    let data = out.as_ref().ok().map(|o| StepData::Run(command_data(o)));
    Ok(command_outcome(step, &host, out, expect_status).with_data(data))
}
