//! `manual`: the instructions shown, then a person confirms (who is recorded).

use super::Executor;
use crate::EngineError;
use crate::events::Event;
use crate::exec::{Ctx, Outcome, is_point_of_no_return};
use rehost_plan::{Step, StepKind};
use std::sync::atomic::Ordering;

pub(super) static EXECUTOR: Executor = Executor {
    kind: "manual",
    rollback: None,
    execute,
    needs: |_, _| Vec::new(),
};

fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    let StepKind::Manual { text } = &step.kind else {
        unreachable!("the registry hands `manual` its own steps")
    };
    ctx.sink.emit(&Event::Instructions {
        id: step.id.clone(),
        text: text.clone(),
    });
    let pnr = is_point_of_no_return(ctx.plan, step);
    match ctx.confirmer.confirm(step, text, pnr) {
        Ok(who) => Ok(Outcome::Done {
            detail: None,
            exit_code: None,
            confirmed_by: Some(who),
            data: None,
        }),
        // Regression: Ctrl-C at the prompt was survived by the read, and the next
        // Enter confirmed the step. A signal while asking stops the run, and the step is
        // recorded as not confirmed (issue 18: it was "interrupted", which a resume refused
        // without --retry-interrupted, and reports called a failure): an unanswered prompt did
        // nothing, so the next run simply asks again.
        Err(_) if ctx.cancel.load(Ordering::SeqCst) => Err(EngineError::NotConfirmed {
            step: step.id.clone(),
            reason: "interrupted at the prompt before anyone answered".into(),
        }),
        Err(reason) => Err(EngineError::NotConfirmed {
            step: step.id.clone(),
            reason,
        }),
    }
}
