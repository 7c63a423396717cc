//! `rehost concept`: the migration concept for sign-off.

use crate::support::*;

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

/// The whole concept (`snapshots/it__concept__*.snap`): every section, the checklist with its
/// rollbacks, the findings.
#[test]
fn markdown_has_every_section_the_checklist_and_findings() {
    let ran = test()
        .plan(BODY)
        .args(["concept", "plan.toml"])
        .stdout_has("## 10. Sign-off")
        // Brackets are escaped like any text (they render the same).
        .stdout_has("\\[unverified-data\\] data set `billing` is never transferred nor verified")
        .success();
    snap!(ran);
}

#[test]
fn html_is_self_contained_and_escapes_plan_text() {
    let ran = test()
        .file(
            "plan.toml",
            plan(BODY).replace(
                "title = \"Test migration\"",
                "title = \"<script>alert(1)</script>\"",
            ),
        )
        .args(["concept", "plan.toml", "--format", "html", "-o", "c.html"])
        .stdout("")
        .success();
    let html = ran.dir().read("c.html");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script>"), "plan text must be escaped");
    assert!(html.contains("&lt;script&gt;"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external resources"
    );
    snap!(ran, "html", html);
}

#[test]
fn a_plan_with_errors_has_no_concept() {
    test()
        .plan("[[steps]]\nid = \"a\"\ndo = \"run\"\n")
        .args(["concept", "plan.toml"])
        .stdout("")
        .stderr_has("failed to render the concept of plan.toml: the plan has 2 error(s)")
        .code(2);
}

/// Issue 10 item 8: the concept flattened a multi-line command into one line, so a reviewer
/// read something else than what runs; long commands ran off the HTML page.
#[test]
fn multi_line_commands_are_shown_line_for_line() {
    let ran = test()
        .plan(
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
        )
        .args(["concept", "plan.toml"])
        .stdout_has("```\npg_dump -Fc billing > /srv/dump/billing.dump\nPGPASSWORD=*** psql")
        .stdout_lacks("billing.dump PGPASSWORD")
        .never_prints("hunter2")
        .success();
    snap!(ran);
}

/// Issue 22: the concept says how long after its switch the clients that ask DNS follow: the
/// lowered TTL when a step lowers it before the switch, else its full TTL.
#[test]
fn the_names_table_says_when_clients_follow_the_switch() {
    let names = r#"
[[names]]
id = "www"
name = "www.example.test"
type = "A"
old = "192.0.2.1"
new = "192.0.2.2"
ttl = "1h"
lowered_ttl = "5m"
authoritative = ["127.0.0.1:5300"]

[[names]]
id = "api"
name = "api.example.test"
type = "A"
old = "192.0.2.3"
new = "192.0.2.4"
ttl = "2h"

[[steps]]
id = "lower"
do = "manual"
text = "Lower the TTL of www in the zone."
lowers_ttl = ["www"]

[[steps]]
id = "switch-www"
do = "dns-switch"
name = "www"
server = "127.0.0.1:5300"
tsig_key = "/etc/rehost/tsig.key"

[[steps]]
id = "switch-api"
do = "dns-switch"
name = "api"
server = "127.0.0.1:5300"
tsig_key = "/etc/rehost/tsig.key"
"#;
    test()
        .plan(names)
        .args(["concept", "plan.toml"])
        // Markdown escapes `#`.
        .stdout_has("within 5m of step \\#2 (the lowered TTL)")
        .stdout_has("within 2h of step \\#3 (its full TTL: no step lowers it before the switch)")
        .stdout_has("cached as absent for the zone's negative TTL")
        .success();
}
