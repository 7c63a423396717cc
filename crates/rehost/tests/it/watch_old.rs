//! The `watch-old` step kind: the old side's manifest kept after the final verification and
//! re-checked at the end of the run; writes that reached the old server after it are lost
//! writes, named by path in the run's summary, the journal and the report.

use crate::support::*;
use rehost_test::TestDir;

/// sync → verify-tree → watch-old, then `{after}` (a `run` step on the old host, whose
/// working directory is its root), with the data set's `exclude`.
fn body(exclude: &str, after: &str) -> String {
    format!(
        r#"
[[data]]
id = "files"
from = "old:/srv/data"
to = "new:/srv/data"
exclude = [{exclude}]

[[steps]]
id = "final-sync"
do = "sync"
data = "files"

[[steps]]
id = "verify"
do = "verify-tree"
data = "files"

[[steps]]
id = "watch"
do = "watch-old"
data = "files"
{after}
"#
    )
}

/// A client still writing to the old server after its final state was taken.
const LATE_WRITE: &str = r#"
[[steps]]
id = "late-client"
do = "run"
host = "old"
command = "echo late > srv/data/late.txt; echo more >> srv/data/a.txt"
"#;

fn old_tree(d: &TestDir) {
    d.write("test-old/srv/data/a.txt", "a\n");
    d.write("test-old/srv/data/sub/b.txt", "b\n");
    d.write("test-old/srv/data/cache/c.bin", "c\n");
}

fn rechecks(d: &TestDir) -> Vec<serde_json::Value> {
    d.read(".rehost/plan/test/journal")
        .lines()
        // Each line is the record's JSON, a tab, its checksum and chain digest.
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.split('\t').next()?).ok())
        .filter(|v| v["type"] == "old_side_rechecked")
        .collect()
}

fn report_md(d: &TestDir) -> String {
    let o = rehost(d, &["report", "plan.toml", "--env", "test"]);
    assert!(o.code == 0 || o.code == 1, "{}", o.all());
    d.read(".rehost/plan/test/report.md")
}

#[test]
fn a_write_after_the_watch_is_a_lost_write_in_the_summary_journal_and_report() {
    let d = TestDir::new();
    old_tree(&d);
    write_plan(&d, &body("", LATE_WRITE));
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("LOST WRITES: 4 change(s) reached the old side old:/srv/data after `watch` took its final state"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("created late.txt"), "{}", o.stdout);
    assert!(o.stdout.contains("content a.txt"), "{}", o.stdout);

    let r = rechecks(&d);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["unchanged"], false, "{r:?}");
    assert_eq!(r[0]["changes_total"], 4, "{r:?}");
    assert_eq!(r[0]["step"], "watch", "{r:?}");

    // The kept manifest is evidence: named in the journal with its digest, and present.
    let journal = d.read(".rehost/plan/test/journal");
    assert!(journal.contains("\"kind\":\"watch-old\""), "{journal}");
    assert!(
        d.join(".rehost/plan/test/evidence/watch.1-old.manifest")
            .exists()
    );

    let md = report_md(&d);
    assert!(
        md.contains("Writes reached the old server after its final state was taken: lost writes"),
        "{md}"
    );
    assert!(md.contains("late.txt (created)"), "{md}");
    assert!(md.contains("a.txt (content)"), "{md}");
}

#[test]
fn without_writes_the_recheck_says_unchanged_and_what_it_did_not_compare() {
    let d = TestDir::new();
    old_tree(&d);
    // A write under an excluded path is not watched: said, not claimed unchanged.
    let after = r#"
[[steps]]
id = "cache-write"
do = "run"
host = "old"
command = "echo new > srv/data/cache/d.bin"
"#;
    write_plan(&d, &body("\"cache\"", after));
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("the old side old:/srv/data unchanged since `watch` took it (not compared: anything written after this re-check"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("paths excluded by the data set: `cache`"),
        "{}",
        o.stdout
    );
    assert!(!o.stdout.contains("LOST WRITES"), "{}", o.stdout);
    let r = rechecks(&d);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["unchanged"], true, "{r:?}");
    assert_eq!(r[0]["changes_total"], 0, "{r:?}");

    let md = report_md(&d);
    assert!(
        md.contains("is unchanged since `watch` took its final state"),
        "{md}"
    );
    assert!(!md.contains("lost writes"), "{md}");
}

/// Hostile: a symlink planted in the old tree after its manifest was taken is reported as a
/// created symlink; the walk does not follow it into what it points at.
#[test]
fn a_symlink_planted_after_the_watch_is_not_followed() {
    let d = TestDir::new();
    old_tree(&d);
    d.write("outside/secret.txt", "not part of the data set\n");
    let outside = d.join("outside");
    let after = format!(
        r#"
[[steps]]
id = "plant"
do = "run"
host = "old"
argv = ["ln", "-s", "{}", "srv/data/link"]
"#,
        outside.display()
    );
    write_plan(&d, &body("", &after));
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("LOST WRITES: 2 change(s)"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("created link"), "{}", o.stdout);
    assert!(!o.stdout.contains("secret.txt"), "{}", o.stdout);
    let r = rechecks(&d);
    // The root's mtime (an entry was created in it) and the link itself, nothing below it.
    assert_eq!(r[0]["changes_total"], 2, "{r:?}");
    assert_eq!(r[0]["changes"][0]["path"], ".", "{r:?}");
    assert_eq!(r[0]["changes"][1]["path"], "link", "{r:?}");
    assert_eq!(r[0]["changes"][1]["class"], "created", "{r:?}");
}

/// `rehost status --recheck` after the run: a file deleted on the old side since is found,
/// named, and appended to the journal; the report shows it. Before the deletion it says
/// unchanged.
#[test]
fn status_recheck_after_the_run_finds_a_file_deleted_since() {
    let d = TestDir::new();
    old_tree(&d);
    write_plan(&d, &body("", ""));
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());

    let o = rehost(&d, &["status", "plan.toml", "--env", "test", "--recheck"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("unchanged since `watch` took it"),
        "{}",
        o.stdout
    );

    std::fs::remove_file(d.join("test-old/srv/data/sub/b.txt")).unwrap();
    let o = rehost(&d, &["status", "plan.toml", "--env", "test", "--recheck"]);
    assert_eq!(o.code, 1, "{}", o.all());
    assert!(o.stdout.contains("LOST WRITES"), "{}", o.stdout);
    assert!(o.stdout.contains("deleted sub/b.txt"), "{}", o.stdout);

    // The run's recheck, then the two of status: all in the journal, which still verifies.
    let r = rechecks(&d);
    assert_eq!(r.len(), 3, "{r:?}");
    assert_eq!(r[2]["unchanged"], false, "{r:?}");
    let o = rehost(&d, &["status", "plan.toml", "--env", "test", "--verify"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let o = rehost(&d, &["status", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());

    let md = report_md(&d);
    assert!(md.contains("sub/b.txt (deleted)"), "{md}");
    assert!(md.contains("lost writes"), "{md}");
}

/// A plan without a finished `watch-old` step has nothing to re-check: said, exit 2.
#[test]
fn status_recheck_without_a_watch_says_so() {
    let d = TestDir::new();
    old_tree(&d);
    write_plan(
        &d,
        "[[steps]]\nid = \"a\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"true\"]\n",
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let o = rehost(&d, &["status", "plan.toml", "--env", "test", "--recheck"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("no finished `watch-old` step"),
        "{}",
        o.stderr
    );
}

/// Hostile: a file the old side created with a terminal escape in its name reaches the summary
/// escaped, never raw.
#[test]
fn a_lost_write_with_control_characters_in_its_name_is_escaped() {
    let d = TestDir::new();
    old_tree(&d);
    let after = r#"
[[steps]]
id = "late-client"
do = "run"
host = "old"
command = "touch \"srv/data/evil$(printf '\\033')[31mred\""
"#;
    write_plan(&d, &body("", after));
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("LOST WRITES"), "{}", o.stdout);
    assert!(o.stdout.contains("created evil"), "{}", o.stdout);
    assert!(!o.stdout.contains('\u{1b}'), "{:?}", o.stdout);
    let md = report_md(&d);
    assert!(!md.contains('\u{1b}'), "{md:?}");
}

/// After a rollback the old side serves again: what it takes then are not lost writes. The
/// watch is void (`status --recheck` says so, exit 2) until the resumed run takes it again.
#[test]
fn a_watch_before_a_rollback_is_void_until_it_runs_again() {
    let d = TestDir::new();
    old_tree(&d);
    write_plan(
        &d,
        r#"
[[data]]
id = "files"
from = "old:/srv/data"
to = "new:/srv/data"

[[steps]]
id = "stop-old"
do = "run"
host = "old"
command = "touch ../stopped"
rollback = "rm ../stopped"

[[steps]]
id = "final-sync"
do = "sync"
data = "files"

[[steps]]
id = "verify"
do = "verify-tree"
data = "files"

[[steps]]
id = "watch"
do = "watch-old"
data = "files"

[[steps]]
id = "start-new"
do = "run"
host = "new"
argv = ["test", "-e", "../go"]
on_failure = "rollback"
"#,
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(rechecks(&d).is_empty());
    // The old side takes writes again after the rollback: not lost, not reported as such.
    d.write("test-old/srv/data/after-rollback.txt", "served again\n");
    let o = rehost(&d, &["status", "plan.toml", "--env", "test", "--recheck"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stdout
            .contains("the old side watched by `watch` was NOT re-checked: a rollback after it"),
        "{}",
        o.stdout
    );
    assert!(!o.stdout.contains("LOST WRITES"), "{}", o.stdout);
    assert!(rechecks(&d).is_empty());

    // The resumed run takes the old side again (with that write) and re-checks it.
    d.write("go", "");
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("unchanged since `watch` took it"),
        "{}",
        o.stdout
    );
    let r = rechecks(&d);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["attempt"], 2, "{r:?}");
}

/// Over ssh the old side is walked by its agent, at the watch, at the end of the run and by
/// `status --recheck`: a late write and a later deletion are both found.
#[test]
fn over_ssh_the_agent_walks_the_old_side_for_the_watch_and_the_rechecks() {
    use rehost_test::sshd::Sshd;
    let (old, new) = (Sshd::start(), Sshd::start());
    let d = TestDir::new();
    d.write("old-root/srv/data/a.txt", "a\n");
    d.write("old-root/srv/data/sub/b.txt", "b\n");
    let with_root = |name: &str, sshd: &Sshd, root: &str| {
        format!(
            "{}root = \"{}\"\n",
            ssh_host(name, sshd),
            d.join(root).display()
        )
    };
    let late = format!(
        "\n[[steps]]\nid = \"late-client\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"touch\", \"{}\"]\n",
        d.join("old-root/srv/data/late.txt").display()
    );
    let plan = ssh_plan(&old, &new, &body("", &late))
        .replace("do = \"sync\"\n", "do = \"sync\"\nmethod = \"builtin\"\n")
        .replace(&ssh_host("old", &old), &with_root("old", &old, "old-root"))
        .replace(&ssh_host("new", &new), &with_root("new", &new, "new-root"));
    d.write("plan.toml", &plan);
    let o = rehost(&d, &["run", "plan.toml", "--accept-findings"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("LOST WRITES"), "{}", o.stdout);
    assert!(o.stdout.contains("created late.txt"), "{}", o.stdout);

    std::fs::remove_file(d.join("old-root/srv/data/sub/b.txt")).unwrap();
    let o = rehost(&d, &["status", "plan.toml", "--recheck"]);
    assert_eq!(o.code, 1, "{}", o.all());
    assert!(o.stdout.contains("deleted sub/b.txt"), "{}", o.stdout);
    let journal = d.read(".rehost/plan/production/journal");
    assert_eq!(
        journal.matches("\"type\":\"old_side_rechecked\"").count(),
        2,
        "{journal}"
    );
}
