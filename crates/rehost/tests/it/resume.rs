//! Resume after a rollback: the steps after the earliest rolled-back one run again.

use crate::support::*;
use rehost_test::TestDir;

/// Issue 10, item 1 (a blocker): after a rollback restarted the old service, the next run
/// re-ran only the rolled-back steps and skipped the final sync and the verification that were
/// "done" before the rollback, ending "all steps done" with a copy that missed the writes the
/// old side took in between.
#[test]
fn after_a_rollback_the_final_sync_and_verification_run_again() {
    let d = TestDir::new();
    write_plan(
        &d,
        r#"
[[data]]
id = "files"
from = "old:/srv/data"
to = "new:/srv/data"

[[services]]
id = "app"
host = "old"

[[steps]]
id = "bulk"
do = "sync"
data = "files"
phase = "bulk"

[[steps]]
id = "stop-old"
do = "run"
host = "old"
command = "touch ../stopped"
rollback = "rm ../stopped"
stops = ["app"]

[[steps]]
id = "final"
do = "sync"
data = "files"
transfers = ["files"]

[[steps]]
id = "verify"
do = "verify-tree"
data = "files"
verifies = ["files"]

[[steps]]
id = "start-new"
do = "run"
host = "new"
argv = ["test", "-e", "../go"]
on_failure = "rollback"
starts = ["app"]
"#,
    );
    d.write("test-old/srv/data/first", "before the window\n");
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("rolled back 1 step(s)"), "{}", o.stderr);
    // Issue 18: every step that runs again is named, not only the superseded ones.
    assert!(
        o.stderr
            .contains("the next run does again `stop-old`, `final`, `verify`, `start-new`"),
        "{}",
        o.stderr
    );
    assert!(
        !d.join("stopped").exists(),
        "the rollback restarted the old side"
    );
    assert_eq!(d.read("test-new/srv/data/first"), "before the window\n");

    // The old service is back and takes a write.
    d.write("test-old/srv/data/late", "written after the rollback\n");
    let s = rehost(&d, &["status", "plan.toml", "--env", "test"]);
    assert!(s.stdout.contains("rolled back  stop-old"), "{}", s.stdout);
    assert!(s.stdout.contains("superseded   final"), "{}", s.stdout);
    assert!(s.stdout.contains("superseded   verify"), "{}", s.stdout);
    assert!(s.stdout.contains("done         bulk"), "{}", s.stdout);
    let journal = d.read(".rehost/plan/test/journal");
    assert!(
        journal.contains(r#""type":"superseded","at":"#)
            && journal
                .contains(r#""from":"stop-old","steps":["final","verify"],"failed":"start-new""#),
        "{journal}"
    );

    // The operator fixes the cause and runs again.
    d.write("go", "");
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("resuming at step 2 of 5"), "{}", o.stdout);
    assert_eq!(
        d.read("test-new/srv/data/late"),
        "written after the rollback\n",
        "the write after the rollback must arrive on the new side"
    );
    let s = rehost(&d, &["status", "plan.toml", "--env", "test"]);
    for id in ["final", "verify"] {
        assert!(
            s.stdout.contains(&format!("done         {id}")),
            "{}",
            s.stdout
        );
    }
    assert!(
        s.stdout
            .contains("(1 earlier attempt superseded by a rollback)"),
        "{}",
        s.stdout
    );
    // The second verification saw the late file: its typed result counts two files.
    let journal = d.read(".rehost/plan/test/journal");
    let verify2 = journal
        .lines()
        .find(|l| {
            l.contains(r#""type":"step_finished""#) && l.contains(r#""id":"verify","attempt":2"#)
        })
        .unwrap_or_else(|| panic!("verify did not run again: {journal}"));
    assert!(verify2.contains(r#""result":"done""#), "{verify2}");

    // Issue 18: the report's review line named only the superseded steps (`final`, `verify`)
    // as run again; the rolled-back and the failed one ran again too.
    let r = rehost(&d, &["report", "plan.toml", "--env", "test", "-o", "out"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let md = d.read("out/report.md");
    assert!(
        md.contains(
            "After step `start-new` failed, the rollback undid `stop-old`; ran again: `stop-old`, `final`, `verify` and `start-new`."
        ),
        "{md}"
    );
}
