//! The engine's registry and the plan's agree: every kind a plan can hold has an executor, and
//! no executor waits for a kind the plan cannot hold.

use super::*;

#[test]
fn every_plan_kind_has_one_executor_and_every_executor_a_plan_kind() {
    let plan: Vec<&str> = rehost_plan::KINDS.iter().map(|k| k.name).collect();
    let engine = kinds();
    for k in &plan {
        assert_eq!(
            engine.iter().filter(|e| *e == k).count(),
            1,
            "step kind `{k}` is in rehost_plan::KINDS but has {} executor(s) in steps/mod.rs",
            engine.iter().filter(|e| *e == k).count()
        );
    }
    for e in &engine {
        assert!(
            plan.contains(e),
            "steps/mod.rs has an executor for `{e}`, which rehost_plan::KINDS does not have"
        );
    }
}
