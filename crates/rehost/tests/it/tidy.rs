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

/// Arrows point one way (issue 19): the journal crate and the evidence read the state
/// directory, and neither reaches the engine or the hosts. The journal crate is the bottom of
/// both; the evidence depending on the engine again would bring two folds of the journal back.
#[test]
fn the_journal_and_the_evidence_depend_on_neither_the_engine_nor_the_hosts() {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let packages = meta["packages"].as_array().expect("packages");
    for krate in ["rehost-journal", "rehost-evidence"] {
        let p = packages
            .iter()
            .find(|p| p["name"] == krate)
            .unwrap_or_else(|| panic!("{krate} is a workspace member"));
        let deps: Vec<&str> = p["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter_map(|d| d["name"].as_str())
            .collect();
        for banned in ["rehost-engine", "rehost-host"] {
            assert!(
                !deps.contains(&banned),
                "{krate} depends on {banned} ({deps:?}); it must reach the state directory through rehost-journal only (ARCHITECTURE.md)"
            );
        }
    }
    // And the engine writes through the journal crate.
    let engine = packages
        .iter()
        .find(|p| p["name"] == "rehost-engine")
        .expect("rehost-engine");
    assert!(
        engine["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .any(|d| d["name"] == "rehost-journal"),
        "rehost-engine must write the journal through rehost-journal"
    );
}

#[test]
fn library_crates_never_print() {
    let mut offenders = Vec::new();
    for krate in [
        "rehost-plan",
        "rehost-engine",
        "rehost-journal",
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

/// One escaper for terminals and text lines (issue 18): `rehost_tree::escape` (`text` for
/// strings — `rehost_plan::escape_control`, the binary's `term::escape` — and `display` for
/// bytes). The database crate had its own, which let the bidirectional controls through. Any
/// other source that classifies control characters or names a bidi control, or defines an
/// `escape` function, is a second escaper; use the one instead.
#[test]
fn there_is_one_escaper_for_terminal_text() {
    // What an escaper is made of.
    let markers = [
        "is_control()",
        "is_ascii_control()",
        "escape_default()",
        "escape_debug()",
        "fn escape",
        "\\u{202",
        "\\u{206",
        "\\u{200e}",
        "\\u{200f}",
        "\\u{61c}",
        "\\u{061c}",
        "0x202a",
        "0x2066",
    ];
    // Not escapers: rsync's `[[:cntrl:]]` class in the glob matcher.
    let allowed = [(
        "rehost-glob/src/lib.rs",
        "b\"cntrl\" => c.is_ascii_control()",
    )];
    let crates = root().join("crates");
    let mut offenders = Vec::new();
    let mut stack = vec![crates.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                // Tests may build hostile strings; `target` is not source.
                if !matches!(name.as_str(), "tests" | "target" | "proptest-regressions") {
                    stack.push(p);
                }
                continue;
            }
            let rel = p
                .strip_prefix(&crates)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if !name.ends_with(".rs")
                || name == "tests.rs"
                || name.ends_with("_tests.rs")
                || rel == "rehost-tree/src/escape.rs"
            {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let code = line.trim_start();
                // An inline test module ends the source proper.
                if code == "#[cfg(test)]"
                    && lines
                        .get(i + 1)
                        .is_some_and(|l| l.trim_start().starts_with("mod ") && l.ends_with('{'))
                {
                    break;
                }
                if code.starts_with("//") {
                    continue;
                }
                if markers.iter().any(|m| code.to_lowercase().contains(m))
                    && !allowed.iter().any(|(f, l)| rel == *f && code.contains(l))
                {
                    offenders.push(format!("crates/{rel}:{}: {}", i + 1, code));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "a second escaper: use rehost_tree::escape::text (or display for bytes):\n{}",
        offenders.join("\n")
    );
}
