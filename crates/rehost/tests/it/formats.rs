//! Every output format of rehost, whole, as snapshots (`tests/it/snapshots/it__formats__*.snap`;
//! what varies between runs — times, durations, paths, digests, versions — is filtered by
//! `rehost_test::snapshot`). The demo plan feeds them: checked, its concept, rehearsed in the
//! terminal and as JSON events, then its status, its report in every format, the copy verified
//! with a difference and a manifest of it. The database's formats are in `db.rs`, the plan
//! errors' in `check.rs`.
//!
//! A snapshot can be re-accepted too easily for what must never change: the HTML's policy
//! that forbids every request is asserted explicitly as well.

use crate::support::*;
use rehost_test::TestDir;

const DEMO: &str = include_str!("fixtures/billing.toml");

fn demo() -> TestDir {
    let d = TestDir::new();
    d.write("plan.toml", DEMO);
    d
}

#[test]
fn main_help() {
    let ran = test().arg("--help").success();
    snap!(ran);
}

/// `check` (text and `--json`) of a plan without findings, and its concept in both formats.
#[test]
fn demo_checked_and_its_concept() {
    let d = demo();
    let ran = test_in(&d)
        .args(["check", "plan.toml"])
        .stdout_has("no M 2.319 findings")
        .success();
    snap!(ran, "check");
    let ran = test_in(&d).args(["check", "plan.toml", "--json"]).success();
    snap!(ran, "check_json");
    let ran = test_in(&d).args(["concept", "plan.toml"]).success();
    snap!(ran, "concept_md");
    let ran = test_in(&d)
        .args(["concept", "plan.toml", "--format", "html"])
        .stdout_has(r#"content="default-src 'none'"#)
        .success();
    snap!(ran, "concept_html");
}

/// A rehearsal in the terminal, then `status` (text, `--json`, `--verify`) and `report` in
/// every format from its state directory.
#[test]
fn demo_rehearsed_then_status_and_report() {
    let d = demo();
    let ran = test_in(&d)
        .args(["run", "plan.toml", "--env", "test", "--yes"])
        .args(["--confirm-as", "demo operator"])
        .stdout_has("rehost run finished: all 16 steps done")
        .success();
    snap!(ran, "run");

    let ran = test_in(&d)
        .args(["status", "plan.toml", "--env", "test"])
        .success();
    snap!(ran, "status");
    let ran = test_in(&d)
        .args(["status", "plan.toml", "--env", "test", "--json"])
        .success();
    snap!(ran, "status_json");
    let ran = test_in(&d)
        .args(["status", "plan.toml", "--env", "test", "--verify"])
        .success();
    snap!(ran, "status_verify");

    let ran = test_in(&d)
        .args(["report", "plan.toml", "--env", "test", "-o", "evidence"])
        .stdout_has("Verdict: REVIEW NEEDED")
        .code(1);
    snap!(ran, "report");
    for (name, file) in [
        ("report_md", "evidence/report.md"),
        ("report_json", "evidence/report.json"),
        ("report_html", "evidence/report.html"),
    ] {
        let text = d.read(file);
        if file.ends_with(".html") {
            assert!(
                text.contains(r#"content="default-src 'none'; style-src 'unsafe-inline'""#),
                "the report may load something: {text}"
            );
        }
        snap!(ran, name, text);
    }
}

/// A rehearsal as JSON events; then the copy, changed behind rehost's back, verified (text and
/// `--json`) and a manifest of it.
#[test]
fn demo_as_json_then_a_changed_copy_verified() {
    let d = demo();
    let ran = test_in(&d)
        .args(["run", "plan.toml", "--env", "test", "--yes", "--json"])
        .args(["--confirm-as", "demo operator"])
        .success();
    for line in ran.stdout().lines() {
        let _: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{}", ran.describe()));
    }
    snap!(ran, "run_json");

    // What a careless hand does to a copy: one invoice changed, one gone, one file too many.
    let new = "hosts/test-new/srv/billing";
    d.write(
        &format!("{new}/invoices/2026/inv-3.txt"),
        "invoice 3\namount 0 EUR\n",
    );
    std::fs::remove_file(d.join(&format!("{new}/invoices/2026/inv-7.txt"))).unwrap();
    d.write(&format!("{new}/stray.txt"), "left behind\n");
    let verify = ["verify", "tree", "old:/srv/billing", "new:/srv/billing"];
    let ran = test_in(&d)
        .args(verify)
        .args(["--plan", "plan.toml", "--env", "test", "--exclude", "*.tmp"])
        .code(1);
    snap!(ran, "verify_tree");
    let ran = test_in(&d)
        .args(verify)
        .args(["--plan", "plan.toml", "--env", "test", "--exclude", "*.tmp"])
        .arg("--json")
        .code(1);
    snap!(ran, "verify_tree_json");

    let ran = test_in(&d)
        .args(["manifest", new, "-o", "billing.manifest"])
        .success();
    snap!(ran, "manifest");
    snap!(ran, "manifest_file", d.read("billing.manifest"));
}
