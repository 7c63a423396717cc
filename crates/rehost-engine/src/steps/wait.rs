//! `wait`: a duration, or until a time, by the run's clock; cancellable, with progress every
//! ten seconds.

use super::Executor;
use crate::EngineError;
use crate::events::Event;
use crate::exec::{Ctx, Outcome};
use rehost_plan::{Step, StepKind, WaitFor};
use std::sync::atomic::Ordering;
use std::time::Duration;

pub(super) static EXECUTOR: Executor = Executor {
    kind: "wait",
    rollback: None,
    execute,
    needs: |_, _| Vec::new(),
};

fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    let StepKind::Wait { wait } = &step.kind else {
        unreachable!("the registry hands `wait` its own steps")
    };
    let clock = ctx.clock;
    let deadline = match wait {
        WaitFor::Duration(d) => clock.monotonic() + *d,
        WaitFor::Until(t) => {
            let left = t.duration_since(clock.now());
            clock.monotonic() + Duration::try_from(left).unwrap_or(Duration::ZERO)
        }
    };
    let mut last_report = clock.monotonic();
    while clock.monotonic() < deadline {
        if ctx.cancel.load(Ordering::Relaxed) {
            return Ok(Outcome::Cancelled);
        }
        if clock.monotonic() - last_report >= Duration::from_secs(10) {
            last_report = clock.monotonic();
            let left = deadline.saturating_sub(clock.monotonic());
            ctx.sink.emit(&Event::Progress {
                id: step.id.clone(),
                message: format!(
                    "{} left",
                    rehost_plan::format_duration(Duration::from_secs(left.as_secs()))
                ),
            });
        }
        clock.sleep(
            deadline
                .saturating_sub(clock.monotonic())
                .min(Duration::from_millis(100)),
        );
    }
    Ok(Outcome::Done {
        detail: None,
        exit_code: None,
        confirmed_by: None,
        data: None,
    })
}
