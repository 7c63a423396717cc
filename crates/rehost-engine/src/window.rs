//! The window: a step that `needs_window` starts only inside the environment's own window (or
//! production's, for a production run), by the run's clock; `--ignore-window` starts it anyway,
//! recorded as a decision.

use crate::EngineError;
use crate::recorder::Recorder;
use rehost_plan::{Plan, Step};

/// Whether `step` may start now; records the decision when the window is ignored.
pub(crate) fn check(
    rec: &mut Recorder,
    plan: &Plan,
    env: Option<&str>,
    step: &Step,
    ignore_window: bool,
    user: &str,
) -> Result<(), EngineError> {
    if !step.needs_window {
        return Ok(());
    }
    let Some(w) = plan.window_for(env) else {
        return Ok(());
    };
    let t = rec.clock.now();
    if w.contains(t) {
        return Ok(());
    }
    if !ignore_window {
        return Err(EngineError::OutsideWindow {
            step: step.id.clone(),
            start: w.start_text.clone(),
            end: w.end_text.clone(),
            now: t.to_string(),
        });
    }
    rec.decision(
        user,
        "ignore-window",
        &format!(
            "step `{}` started at {t}, outside the window {} to {}",
            step.id, w.start_text, w.end_text
        ),
    )
}
