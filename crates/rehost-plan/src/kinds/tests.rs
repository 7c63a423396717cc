//! The registry agrees with the model: every `StepKind` has one entry, under its own name.

use super::*;

/// A plan with one step of every kind, each `do` as the registry spells it.
const ONE_OF_EACH: &str = r#"
[migration]
title = "t"
[hosts.old]
local = true
[hosts.new]
local = true
[[data]]
id = "files"
from = "old:/srv/a"
to = "new:/srv/a"
[[databases]]
id = "shop"
engine = "postgresql"
from = "old"
to = "new"
database = "shop"
user = "verify"
[[services]]
id = "web"
host = "new"
stop = "true"
start = "true"
health = "true"
[[steps]]
id = "manual"
do = "manual"
text = "look"
[[steps]]
id = "run"
do = "run"
host = "new"
command = "true"
[[steps]]
id = "wait"
do = "wait"
duration = "1s"
[[steps]]
id = "sync"
do = "sync"
data = "files"
[[steps]]
id = "verify-tree"
do = "verify-tree"
data = "files"
[[steps]]
id = "stop"
do = "stop"
service = "web"
[[steps]]
id = "start"
do = "start"
service = "web"
[[steps]]
id = "health"
do = "health"
service = "web"
[[steps]]
id = "verify-db"
do = "verify-db"
database = "shop"
"#;

#[test]
fn every_kind_is_registered_once_and_reads_back_under_its_own_name() {
    let mut names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "a kind is registered twice: {names:?}");
    for k in KINDS {
        for key in k.keys {
            assert!(
                !COMMON_KEYS.contains(key),
                "kind `{}` lists the common key `{key}`",
                k.name
            );
        }
    }
    // Each entry's reader makes a step whose kind names that entry again: a reader that built
    // another kind's step, or a model name that differs from the registry's, fails here (and
    // `spec` would panic on it at run time).
    let c = crate::check(ONE_OF_EACH);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let plan = c.plan.expect("the plan reads");
    let mut read: Vec<&str> = Vec::new();
    for step in &plan.steps {
        assert_eq!(
            step.kind.name(),
            step.id,
            "step `{}` read as another kind",
            step.id
        );
        assert_eq!(spec(&step.kind).name, step.id);
        read.push(step.kind.name());
    }
    read.sort_unstable();
    assert_eq!(
        read, names,
        "ONE_OF_EACH must hold one step of every registered kind"
    );
}

#[test]
fn each_kinds_description_and_references_come_from_its_own_module() {
    let plan = crate::check(
        r#"
[migration]
title = "t"
[hosts.old]
local = true
[hosts.new]
local = true
[[data]]
id = "files"
from = "old:/srv/a"
to = "new:/srv/a"
[[services]]
id = "web"
host = "new"
stop = "true"
start = "true"
health = "true"
[[steps]]
id = "s"
do = "sync"
data = "files"
phase = "bulk"
[[steps]]
id = "h"
do = "health"
service = "web"
[[steps]]
id = "r"
do = "run"
host = "new"
command = "echo hi"
"#,
    );
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    let plan = plan.plan.expect("the plan reads");
    assert_eq!(
        describe(&plan.steps[0].kind),
        Description(vec![
            Part::Text("sync ".into()),
            Part::Id("files".into()),
            Part::Text(" (bulk)".into())
        ])
    );
    assert_eq!(
        references(&plan.steps[0].kind),
        vec![Reference::DataSet("files")]
    );
    assert_eq!(
        references(&plan.steps[1].kind),
        vec![Reference::Service {
            id: "web",
            needs: "health"
        }]
    );
    assert_eq!(service_of(&plan.steps[1].kind), Some("web"));
    assert_eq!(describe(&plan.steps[2].kind).command(), Some("echo hi"));
    assert_eq!(
        implied_effect(&plan.steps[0].kind),
        Some(Effect::Transfers("files".into()))
    );
}
