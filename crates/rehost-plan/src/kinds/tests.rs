//! The registry agrees with the model: every `StepKind` has one entry, under its own name.

use super::*;

#[test]
fn every_kind_is_registered_once_under_its_name() {
    let mut names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "a kind is registered twice: {names:?}");
    // Every kind a plan can hold reads back to a step whose name finds its own entry.
    for k in KINDS {
        assert!(
            KINDS.iter().filter(|o| o.name == k.name).count() == 1,
            "{}",
            k.name
        );
        for key in k.keys {
            assert!(
                !COMMON_KEYS.contains(key),
                "kind `{}` lists the common key `{key}`",
                k.name
            );
        }
    }
}

#[test]
fn each_kinds_description_and_references_come_from_its_own_module() {
    let plan = crate::check(
        r#"
[migration]
title = "t"
[hosts.old]
local = {}
[hosts.new]
local = {}
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
