//! `rehost check`: parse and validation errors, and each M 2.319 lint rule firing and not.
//! What the errors and findings look like (the line, the caret, the hint) is in the snapshots
//! `snapshots/it__check__*.snap`.

use crate::support::*;
use rehost_test::TestDir;

const OK_STEPS: &str = r#"
[[steps]]
id = "hello"
do = "run"
host = "old"
argv = ["true"]
"#;

#[test]
fn a_clean_plan_exits_0() {
    test()
        .plan(OK_STEPS)
        .args(["check", "plan.toml"])
        .stdout("plan.toml: plan is valid, 1 steps, no M 2.319 findings\n")
        .stderr("")
        .success();
}

#[test]
fn a_missing_file_exits_2_naming_it() {
    let ran = test()
        .args(["check", "nope.toml"])
        .stderr_has("failed to read plan nope.toml")
        .code(2);
    snap!(ran);
}

/// The errors' text, whole: `plan.toml:LINE:COL`, the code, the line with a caret under the
/// offending text, the hint.
fn check_shows(text: &str, code: i32, has: &str) -> rehost_test::cli::Ran<'static> {
    test()
        .file("plan.toml", text)
        .args(["check", "plan.toml"])
        .stdout_has(has)
        .code(code)
}

#[test]
fn toml_syntax_error_points_at_line_and_column() {
    let ran = check_shows(
        "[migration]\ntitle = \"x\"\nmax_downtime = = 3\n",
        2,
        "max_downtime = = 3",
    );
    assert!(ran.stdout().contains("plan.toml:3:"), "{}", ran.describe());
    snap!(ran);
}

#[test]
fn misspelt_keys_suggest_the_intended_one() {
    let ran = check_shows(
        &plan(OK_STEPS)
            .replace("max_downtime", "max_downtim")
            .replace("argv = [\"true\"]", "argv = [\"true\"]\ntimout = \"1m\""),
        2,
        "did you mean `max_downtime`?",
    );
    snap!(ran);
}

#[test]
fn unknown_step_kind_suggests() {
    let ran = check_shows(
        &plan("[[steps]]\nid = \"a\"\ndo = \"manaul\"\ntext = \"x\"\n"),
        2,
        "did you mean `manual`?",
    );
    snap!(ran);
}

#[test]
fn wrong_types_are_reported_with_what_was_expected() {
    let ran = check_shows(
        &plan(
            r#"
[[steps]]
id = "a"
do = "run"
host = "old"
argv = ["true"]
idempotent = "yes"
timeout = 30
"#,
        ),
        2,
        "key `timeout` needs a unit",
    );
    snap!(ran);
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let ran = check_shows(
        &plan(
            r#"
[[steps]]
id = "a"
do = "run"
host = "nowhere"
argv = ["true"]
[[steps]]
id = "a"
do = "wait"
duration = "soon"
[[steps]]
id = "c"
do = "verify-tree"
data = "missing-set"
"#,
        ),
        2,
        "4 error(s)",
    );
    snap!(ran);
}

#[test]
fn forward_dependency_names_both_steps() {
    let ran = check_shows(
        &plan(
            r#"
[[steps]]
id = "copy"
do = "wait"
duration = "1s"
after = ["stop"]
[[steps]]
id = "stop"
do = "wait"
duration = "1s"
"#,
        ),
        2,
        "step `copy` (#1) depends on step `stop` (#2), which comes after it",
    );
    snap!(ran);
}

#[test]
fn cycles_and_self_dependencies_are_errors() {
    let ran = check_shows(
        &plan(
            r#"
[[steps]]
id = "a"
do = "wait"
duration = "1s"
after = ["b"]
[[steps]]
id = "b"
do = "wait"
duration = "1s"
after = ["a", "b"]
"#,
        ),
        2,
        "step `b` depends on itself",
    );
    snap!(ran);
}

#[test]
fn unknown_dependency_and_point_of_no_return() {
    let ran = check_shows(
        &plan("[[steps]]\nid = \"a\"\ndo = \"wait\"\nduration = \"1s\"\nafter = [\"nope\"]\n")
            .replace(
                "max_downtime = \"15m\"",
                "max_downtime = \"15m\"\npoint_of_no_return = \"switch\"",
            ),
        2,
        "point_of_no_return names step `switch`",
    );
    snap!(ran);
}

#[test]
fn a_rehearsal_environment_may_not_reuse_a_production_host() {
    let ran = check_shows(
        &plan(OK_STEPS).replace(
            "new = { local = true, root = \"test-new\" }",
            "new = { local = true, root = \"prod-new\" }",
        ),
        2,
        "rehearsal-touches-production",
    );
    snap!(ran);
}

#[test]
fn json_output_lists_errors_with_lines() {
    let ran = test()
        .plan("[[steps]]\nid = \"a\"\ndo = \"run\"\nhost = \"old\"\n")
        .args(["check", "plan.toml", "--json"])
        .code(2);
    let v: serde_json::Value = serde_json::from_str(ran.stdout()).expect("json");
    assert_eq!(v["valid"], false);
    let e = &v["errors"][0];
    assert_eq!(e["code"], "missing-key");
    assert!(e["line"].as_u64().unwrap() > 20);
    assert!(e["message"].as_str().unwrap().contains("needs `command`"));
    snap!(ran);
}

// ---- lint rules: each fires on a plan that breaks it and not on one that keeps it ----

fn findings(text: &str) -> Vec<String> {
    let d = TestDir::new();
    d.write("plan.toml", text);
    let o = rehost(&d, &["check", "plan.toml", "--json"]);
    let v: serde_json::Value =
        serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.all()));
    assert!(
        v["errors"].as_array().unwrap().is_empty(),
        "unexpected errors: {}",
        o.stdout
    );
    let f: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(o.code, if f.is_empty() { 0 } else { 1 }, "{}", o.stdout);
    f
}

#[test]
fn lint_no_test_environment() {
    let bad = plan(OK_STEPS).replace("[environments.test]\nold = { local = true, root = \"test-old\" }\nnew = { local = true, root = \"test-new\" }", "");
    assert_eq!(findings(&bad), ["no-test-environment"]);
    assert!(findings(&plan(OK_STEPS)).is_empty());
}

#[test]
fn lint_no_window_and_no_budget() {
    let bad = plan(OK_STEPS)
        .replace(
            "window = { start = \"2020-01-01T00:00:00Z\", end = \"2099-01-01T00:00:00Z\" }",
            "",
        )
        .replace("max_downtime = \"15m\"", "");
    assert_eq!(findings(&bad), ["no-window", "no-downtime-budget"]);
}

const DATA: &str = r#"
[[data]]
id = "d"
from = "old:/srv"
to = "new:/srv"
"#;

#[test]
fn lint_unverified_data() {
    let sync = "[[steps]]\nid = \"s1\"\ndo = \"sync\"\ndata = \"d\"\n";
    let verify = "[[steps]]\nid = \"v\"\ndo = \"verify-tree\"\ndata = \"d\"\n";
    let sync2 = "[[steps]]\nid = \"s2\"\ndo = \"sync\"\ndata = \"d\"\n";
    assert_eq!(
        findings(&plan(DATA)),
        ["unverified-data"],
        "never transferred"
    );
    assert_eq!(
        findings(&plan(&format!("{DATA}{sync}"))),
        ["unverified-data"]
    );
    assert_eq!(
        findings(&plan(&format!("{DATA}{sync}{verify}{sync2}"))),
        ["unverified-data"],
        "a sync after the verification"
    );
    assert!(findings(&plan(&format!("{DATA}{sync}{sync2}{verify}"))).is_empty());
    // A run step may declare what it does.
    let run_copy = "[[steps]]\nid = \"c\"\ndo = \"run\"\nhost = \"new\"\nargv = [\"true\"]\ntransfers = [\"d\"]\n";
    let run_check = "[[steps]]\nid = \"k\"\ndo = \"run\"\nhost = \"new\"\nargv = [\"true\"]\nverifies = [\"d\"]\n";
    assert!(findings(&plan(&format!("{DATA}{run_copy}{run_check}"))).is_empty());
}

const SVC: &str = r#"
[[services]]
id = "db"
host = "old"
ports = [5432]
persistent_connections = true
"#;

#[test]
fn lint_undrained_service() {
    // Started again on the new host, its configuration checked, so only the drain is in
    // question here.
    let stop = "[[steps]]\nid = \"stop\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"true\"]\nstops = [\"db\"]\n\
                [[steps]]\nid = \"start\"\ndo = \"run\"\nhost = \"new\"\nargv = [\"true\"]\nstarts = [\"db\"]\n\
                [[steps]]\nid = \"config\"\ndo = \"manual\"\ntext = \"compare the settings\"\nverifies = [\"db\"]\n";
    let drain = "[[steps]]\nid = \"drain\"\ndo = \"manual\"\ntext = \"end the sessions\"\ndrains = [\"db\"]\n";
    assert_eq!(
        findings(&plan(&format!("{SVC}{stop}"))),
        ["undrained-service"]
    );
    assert_eq!(
        findings(&plan(&format!("{SVC}{stop}{drain}"))),
        ["undrained-service"],
        "drain after stop"
    );
    assert!(findings(&plan(&format!("{SVC}{drain}{stop}"))).is_empty());
    // The `drain` kind implies `drains`.
    let drain_kind = "[[steps]]\nid = \"drain\"\ndo = \"drain\"\nservice = \"db\"\n";
    assert!(findings(&plan(&format!("{SVC}{drain_kind}{stop}"))).is_empty());
    assert_eq!(
        findings(&plan(&format!("{SVC}{stop}{drain_kind}"))),
        ["undrained-service"],
        "a drain kind after stop"
    );
    let no_persistent = SVC.replace("persistent_connections = true", "");
    assert!(findings(&plan(&format!("{no_persistent}{stop}"))).is_empty());
}

const NAME: &str = r#"
[[names]]
name = "db.example.org"
old = "192.0.2.1"
new = "192.0.2.2"
ttl = "1h"
"#;

#[test]
fn lint_ttl_too_late() {
    let lower = "[[steps]]\nid = \"lower\"\ndo = \"manual\"\ntext = \"lower the ttl\"\nlowers_ttl = [\"db.example.org\"]\n";
    let wait = |d: &str| format!("[[steps]]\nid = \"w{d}\"\ndo = \"wait\"\nduration = \"{d}\"\n");
    let switch = "[[steps]]\nid = \"switch\"\ndo = \"manual\"\ntext = \"switch\"\nswitches = [\"db.example.org\"]\n";
    assert_eq!(
        findings(&plan(&format!("{NAME}{switch}"))),
        ["ttl-too-late"],
        "never lowered"
    );
    assert_eq!(
        findings(&plan(&format!("{NAME}{lower}{switch}"))),
        ["ttl-too-late"],
        "no wait"
    );
    assert_eq!(
        findings(&plan(&format!("{NAME}{lower}{}{switch}", wait("30m")))),
        ["ttl-too-late"],
        "too short"
    );
    assert!(
        findings(&plan(&format!(
            "{NAME}{lower}{}{}{switch}",
            wait("30m"),
            wait("31m")
        )))
        .is_empty()
    );
}

#[test]
fn lint_keys_unverified() {
    let key = "[[keys]]\nid = \"tls\"\nhost = \"old\"\nkind = \"tls\"\npaths = [\"/etc/ssl/private/db.key\"]\n";
    let check = "[[steps]]\nid = \"k\"\ndo = \"run\"\nhost = \"new\"\nargv = [\"true\"]\nverifies = [\"tls\"]\n";
    assert_eq!(findings(&plan(key)), ["keys-unverified", "key-not-carried"]);
    let carry =
        "[[steps]]\nid = \"c\"\ndo = \"manual\"\ntext = \"copy the key\"\ntransfers = [\"tls\"]\n";
    assert_eq!(
        findings(&plan(&format!("{key}{check}"))),
        ["key-not-carried"]
    );
    assert!(findings(&plan(&format!("{key}{carry}{check}"))).is_empty());
}

/// Issue 10, item 6: the final sync and its verification before the step that stops the
/// service writing to the data set passed the lint; so did a key "verified" by a tree that
/// does not hold it, and a service stopped and never started. Findings point at the id.
#[test]
fn lint_data_loss_cases_point_at_the_offending_id() {
    let body = r#"
[[data]]
id = "www"
from = "old:/srv/www"
to = "new:/srv/www"
[[services]]
id = "web"
host = "old"
[[keys]]
id = "tls"
host = "old"
kind = "tls"
paths = ["/etc/ssl/private/www.key"]
[[steps]]
id = "final"
do = "sync"
data = "www"
transfers = ["tls"]
[[steps]]
id = "verify"
do = "verify-tree"
data = "www"
verifies = ["tls"]
[[steps]]
id = "stop"
do = "run"
host = "old"
argv = ["true"]
stops = ["web"]
"#;
    assert_eq!(
        findings(&plan(body)),
        [
            "copy-before-stop",
            "copy-before-stop",
            "key-not-carried",
            "key-not-carried",
            "key-verification-misses-paths",
            "service-never-started"
        ]
    );
    // The caret is under the id in `verifies`, not under `[[steps]]`.
    let ran = test()
        .plan(body)
        .args(["check", "plan.toml"])
        .stdout_has("verifies = [\"tls\"]\n")
        .code(1);
    snap!(ran);
}

#[test]
fn lint_no_rollback_after_point_of_no_return() {
    let steps = "[[steps]]\nid = \"switch\"\ndo = \"manual\"\ntext = \"x\"\nbackup = \"vault:/srv/backups\"\n[[steps]]\nid = \"start\"\ndo = \"run\"\nhost = \"new\"\nargv = [\"true\"]\n";
    let text = plan(steps).replace(
        "max_downtime = \"15m\"",
        "max_downtime = \"15m\"\npoint_of_no_return = \"switch\"",
    );
    assert_eq!(findings(&text), ["no-rollback-after-point-of-no-return"]);
    assert!(
        findings(&text.replace(
            "argv = [\"true\"]",
            "argv = [\"true\"]\nrollback = [\"true\"]"
        ))
        .is_empty()
    );
    assert!(
        findings(&text.replace("argv = [\"true\"]", "argv = [\"true\"]\nidempotent = true"))
            .is_empty()
    );
}

#[test]
fn lint_window_not_open() {
    let steps = "[[steps]]\nid = \"stop\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"true\"]\nneeds_window = true\n[[steps]]\nid = \"open\"\ndo = \"wait\"\nuntil = \"2020-01-01T00:00:00Z\"\n";
    assert_eq!(findings(&plan(steps)), ["window-not-open"]);
    let fixed = "[[steps]]\nid = \"open\"\ndo = \"wait\"\nuntil = \"2020-01-01T00:00:00Z\"\n[[steps]]\nid = \"stop\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"true\"]\nneeds_window = true\n";
    assert!(findings(&plan(fixed)).is_empty());
}

#[test]
fn findings_quote_the_clause_in_text_output() {
    let ran = test()
        .plan(DATA)
        .args(["check", "plan.toml"])
        .stdout_has("M 2.319: \"after the data has been transferred")
        .code(1);
    snap!(ran);
}

#[test]
fn docs_lints_documents_every_rule() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/lints.md"))
        .expect("docs/lints.md");
    for rule in rehost_plan::RULES {
        assert!(
            doc.contains(&format!("`{}`", rule.id)),
            "docs/lints.md does not document `{}`",
            rule.id
        );
    }
}

#[test]
fn the_example_in_docs_plan_md_is_a_valid_plan() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/plan.md"))
        .expect("docs/plan.md");
    let example = doc
        .split("## A complete example")
        .nth(1)
        .and_then(|s| s.split("```toml\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("an example block");
    let d = TestDir::new();
    d.write("plan.toml", example);
    let o = rehost(&d, &["check", "plan.toml", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["valid"], true, "{}", o.stdout);
}

/// The plan `rehost demo` runs (its placeholders filled as the demo fills them) and the format
/// snapshots' plan have no finding.
#[test]
fn the_demo_plans_are_clean() {
    let d = TestDir::new();
    let demo = include_str!("../../../../examples/demo/plan.toml")
        .replace("@REHOST@", "/usr/local/bin/rehost")
        .replace("@PORT@", "8080");
    d.write("plan.toml", demo);
    d.write("billing.toml", include_str!("fixtures/billing.toml"));
    for plan in ["plan.toml", "billing.toml"] {
        let o = rehost(&d, &["check", plan]);
        assert_eq!(o.code, 0, "{plan}: {}", o.all());
        assert!(o.stdout.contains("no M 2.319 findings"), "{}", o.stdout);
    }
}

#[test]
fn host_environment_and_declaration_errors() {
    let text = plan(
        r#"
[[data]]
id = "d"
from = "/srv/no-host"
to = "new:/srv"

[[steps]]
id = "a"
do = "run"
host = "old"
command = "true"
argv = ["true"]

[[steps]]
id = "b"
do = "sync"
data = "d"
phase = "halfway"
"#,
    )
    .replace(
        "[hosts.new]\nlocal = true",
        "[hosts.new]\nlocal = true\nssh = \"root@db02\"",
    )
    .replace(
        "end = \"2099-01-01T00:00:00Z\"",
        "end = \"2019-01-01T00:00:00Z\"",
    )
    .replace("new = { local = true, root = \"test-new\" }", "")
    .replace(
        "implemented_by = \"Administrator\"",
        "implemented_by = \"Administrator\"\non_failure = \"retry\"",
    ) + "\n[hosts.third]\nssh = \"root@db03\"\nport = 70000\n[hosts.fourth]\nrole = \"nothing\"\n";
    let ran = check_shows(
        &text,
        2,
        "environment `test` does not say which host stands in",
    );
    snap!(ran);
}

#[test]
fn lint_clients_not_reconfigured() {
    let clients = "[[clients]]\nid = \"pcs\"\nhosts = [\"acc01\"]\nfiles = [\"C:/Billing/client.ini\"]\ncount = 40\n";
    let step = "[[steps]]\nid = \"reconf\"\ndo = \"manual\"\ntext = \"edit client.ini on the 40 PCs\"\nreconfigures = [\"pcs\"]\n";
    assert_eq!(findings(&plan(clients)), ["clients-not-reconfigured"]);
    assert!(findings(&plan(&format!("{clients}{step}"))).is_empty());
}
