//! `rehost concept`: the migration concept for sign-off.

use crate::support::*;
use rehost_test::TestDir;

const BODY: &str = r#"
[[data]]
id = "billing"
from = "old:/srv/billing"
to = "new:/srv/billing"

[[steps]]
id = "announce"
title = "Announce the maintenance"
do = "manual"
text = "Mail the users."

[[steps]]
id = "stop"
do = "run"
host = "old"
command = "systemctl stop billing"
rollback = "systemctl start billing"
after = ["announce"]
"#;

#[test]
fn markdown_has_every_section_the_checklist_and_findings() {
    let d = TestDir::new();
    write_plan(&d, BODY);
    let o = rehost(&d, &["concept", "plan.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    for section in [
        "# Migration concept: Test migration",
        "## 1. Purpose and responsibilities",
        "## 2. Window, downtime and data loss",
        "## 3. Hosts and test environments",
        "## 4. Data migration",
        "## 5. Services and persistent connections",
        "## 6. Cryptographic keys",
        "## 7. Names, addresses and clients",
        "## 8. Checklist",
        "## 9. Findings of the M 2.319 check",
        "## 10. Sign-off",
    ] {
        assert!(
            o.stdout.contains(section),
            "missing {section}:\n{}",
            o.stdout
        );
    }
    assert!(o.stdout.contains("| 2 | stop (`stop`) | run `systemctl stop billing` | old | announce |  | systemctl start billing |"), "{}", o.stdout);
    assert!(
        o.stdout
            // Brackets are escaped like any text (they render the same).
            .contains("\\[unverified-data\\] data set `billing` is never transferred nor verified"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("15m"));
}

#[test]
fn html_is_self_contained_and_escapes_plan_text() {
    let d = TestDir::new();
    d.write(
        "plan.toml",
        plan(BODY).replace(
            "title = \"Test migration\"",
            "title = \"<script>alert(1)</script>\"",
        ),
    );
    let o = rehost(
        &d,
        &["concept", "plan.toml", "--format", "html", "-o", "c.html"],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    let html = d.read("c.html");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script>"), "plan text must be escaped");
    assert!(html.contains("&lt;script&gt;"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external resources"
    );
    assert!(html.contains("<td>systemctl start billing</td>"));
}

#[test]
fn a_plan_with_errors_has_no_concept() {
    let d = TestDir::new();
    write_plan(&d, "[[steps]]\nid = \"a\"\ndo = \"run\"\n");
    let o = rehost(&d, &["concept", "plan.toml"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr
            .contains("failed to render the concept of plan.toml: the plan has 2 error(s)"),
        "{}",
        o.stderr
    );
}

/// Issue 10 item 8: the concept flattened a multi-line command into one line, so a reviewer
/// read something else than what runs; long commands ran off the HTML page.
#[test]
fn multi_line_commands_are_shown_line_for_line() {
    let d = rehost_test::TestDir::new();
    crate::support::write_plan(
        &d,
        r#"
[[steps]]
id = "dump"
do = "run"
host = "old"
command = """
pg_dump -Fc billing > /srv/dump/billing.dump
PGPASSWORD=hunter2 psql -c 'select 1'
"""
"#,
    );
    let o = crate::support::rehost(&d, &["concept", "plan.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout
            .contains("```\npg_dump -Fc billing > /srv/dump/billing.dump\nPGPASSWORD=*** psql"),
        "{}",
        o.stdout
    );
    assert!(!o.stdout.contains("hunter2"));
    assert!(
        !o.stdout.contains("billing.dump PGPASSWORD"),
        "flattened: {}",
        o.stdout
    );
}
