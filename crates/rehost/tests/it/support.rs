//! Helpers shared by the integration tests.

use rehost_test::{Output, TestDir};
use std::path::Path;

pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_rehost"))
}

pub fn rehost(dir: &TestDir, args: &[&str]) -> Output {
    rehost_test::run(bin(), args, dir.path(), None)
}

pub fn rehost_stdin(dir: &TestDir, args: &[&str], stdin: &str) -> Output {
    rehost_test::run(bin(), args, dir.path(), Some(stdin))
}

/// A plan with no findings: window, budget, test environment. `{steps}` and `{extra}` are
/// filled in by the test.
pub const HEAD: &str = r#"
[migration]
title = "Test migration"
initiated_by = ["IT security officer"]
implemented_by = "Administrator"
window = { start = "2020-01-01T00:00:00Z", end = "2099-01-01T00:00:00Z" }
max_downtime = "15m"

[hosts.old]
local = true
root = "prod-old"

[hosts.new]
local = true
root = "prod-new"

[environments.test]
old = { local = true, root = "test-old" }
new = { local = true, root = "test-new" }
"#;

pub fn plan(body: &str) -> String {
    format!("{HEAD}\n{body}")
}

/// Writes `plan.toml` with the standard head and the given body.
pub fn write_plan(dir: &TestDir, body: &str) {
    dir.write("plan.toml", plan(body));
}
