//! Tidy tests keep the map true (as rust-analyzer's do): every step kind in the registry is
//! documented, and no library crate prints (the engine and the capabilities emit events; only
//! the binary talks to the terminal).

use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn every_step_kind_in_the_registry_is_documented() {
    let doc = std::fs::read_to_string(root().join("docs/plan.md")).expect("docs/plan.md");
    for k in rehost_plan::KINDS {
        assert!(
            doc.contains(&format!("| `{}` |", k.name)),
            "docs/plan.md has no row for step kind `{}`",
            k.name
        );
    }
    // And the table documents no kind the registry lacks.
    let start = doc.find("| `manual` |").expect("the step kinds table");
    for line in doc[start..].lines().take_while(|l| l.starts_with('|')) {
        let name = line.split('`').nth(1).unwrap_or_default();
        assert!(
            rehost_plan::KINDS.iter().any(|k| k.name == name),
            "docs/plan.md documents step kind `{name}`, which the registry does not have"
        );
    }
}

/// A step kind is one module in rehost-plan's `kinds/` and one in rehost-engine's `steps/`: the
/// two registries name the same kinds, each once.
#[test]
fn every_step_kind_in_the_plan_has_an_executor_and_no_executor_lacks_a_kind() {
    let mut plan: Vec<&str> = rehost_plan::KINDS.iter().map(|k| k.name).collect();
    let mut engine = rehost_engine::steps::kinds();
    plan.sort_unstable();
    engine.sort_unstable();
    assert_eq!(
        plan, engine,
        "rehost-plan/src/kinds/mod.rs (left) and rehost-engine/src/steps/mod.rs (right) must register the same step kinds"
    );
}

#[test]
fn library_crates_never_print() {
    let mut offenders = Vec::new();
    for krate in [
        "rehost-plan",
        "rehost-engine",
        "rehost-host",
        "rehost-tree",
        "rehost-db",
        "rehost-evidence",
    ] {
        let src = root().join("crates").join(krate).join("src");
        let mut stack = vec![src];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                let p = e.path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                if p.is_dir() {
                    // Benchmark binaries print their figures; tests may print.
                    if name != "bin" {
                        stack.push(p);
                    }
                    continue;
                }
                if !name.ends_with(".rs") || name == "tests.rs" || name.ends_with("_tests.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&p).unwrap();
                for (i, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or_default();
                    if ["print!(", "println!(", "eprint!(", "eprintln!(", "dbg!("]
                        .iter()
                        .any(|m| code.contains(m))
                    {
                        offenders.push(format!("{}:{}", p.display(), i + 1));
                    }
                }
            }
        }
    }
    assert!(offenders.is_empty(), "library code prints: {offenders:?}");
}
