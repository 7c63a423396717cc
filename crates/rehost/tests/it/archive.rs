//! Issue 11: the state directory as an archive. The journal is hash-chained and names every
//! kept file with its digest; `rehost status --verify` detects an edited, removed or reordered
//! record and an edited, removed or replaced file, naming it; the plan is kept as run, so
//! status works from a copied state directory after the plan file is gone.

use crate::support::*;
use rehost_test::TestDir;

/// Two commands, a built-in copy and its verification: outputs and both manifests to keep.
const BODY: &str = TWO_RUNS_A_COPY_AND_ITS_VERIFICATION;

/// A finished rehearsal: outputs, both manifests and the plan snapshot in `.rehost/plan/test`.
fn finished_run() -> TestDir {
    let d = TestDir::new();
    write_plan(&d, BODY);
    d.write("test-old/srv/files/a.txt", "alpha\n");
    d.write("test-old/srv/files/dir/b", "beta\n");
    std::fs::create_dir_all(d.join("test-new/srv")).unwrap();
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    d
}

/// A copy of the finished run's state directory, as `<name>/test`, for one tampering.
fn copy_state(d: &TestDir, name: &str) -> String {
    let st = std::process::Command::new("cp")
        .args(["-a", ".rehost/plan", name])
        .current_dir(d.path())
        .status()
        .unwrap();
    assert!(st.success());
    name.to_owned()
}

fn verify(d: &TestDir, state: &str, extra: &[&str]) -> rehost_test::Output {
    let mut args = vec![
        "status",
        "plan.toml",
        "--env",
        "test",
        "--state",
        state,
        "--verify",
    ];
    args.extend_from_slice(extra);
    rehost(d, &args)
}

/// The 1-based line of the journal line that holds all of `needles`.
fn line_of(journal: &str, needles: &[&str]) -> usize {
    journal
        .lines()
        .position(|l| needles.iter().all(|n| l.contains(n)))
        .unwrap_or_else(|| panic!("no line with {needles:?}: {journal}"))
        + 1
}

fn write_lines(d: &TestDir, state: &str, lines: &[&str]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(d.join(&format!("{state}/test/journal")), text).unwrap();
}

fn assert_mismatch(o: &rehost_test::Output, what: &str) {
    assert_eq!(o.code, 1, "{}", o.all());
    assert!(
        o.stdout.contains(&format!("MISMATCH {what}")),
        "expected `MISMATCH {what}` in:\n{}",
        o.stdout
    );
    assert!(o.stderr.contains("does not verify"), "{}", o.stderr);
}

#[test]
fn status_verify_detects_every_change_to_the_journal_and_the_kept_files() {
    let d = finished_run();
    let journal = d.read(".rehost/plan/test/journal");
    let lines: Vec<&str> = journal.lines().collect();

    // Untouched: exit 0 with the head digest, which is the last record's chain digest.
    let o = verify(&d, ".rehost/plan", &[]);
    assert_eq!(o.code, 0, "{}", o.all());
    let head = lines.last().unwrap().rsplit_once('\t').unwrap().1;
    assert_eq!(head.len(), 64);
    assert!(o.stdout.contains(&format!("head {head}")), "{}", o.stdout);
    assert!(o.stdout.contains("hash chain intact"), "{}", o.stdout);
    // Outputs of a, verify and b (the transfer printed nothing), two manifests, the plan.
    assert!(o.stdout.contains("and 6 kept files match"), "{}", o.stdout);
    assert_eq!(verify(&d, ".rehost/plan", &["--head", head]).code, 0);

    // An edited record: the checksum says so, naming the line and the step.
    let s = copy_state(&d, "edited");
    let n = line_of(&journal, &["step_finished", r#""id":"a""#]);
    let mut edited = lines.clone();
    let changed = edited[n - 1].replace(r#""result":"done""#, r#""result":"failed""#);
    edited[n - 1] = &changed;
    write_lines(&d, &s, &edited);
    assert_mismatch(
        &verify(&d, &s, &[]),
        &format!("journal line {n} (step `a`): checksum mismatch: the record was edited"),
    );
    // The whole of what the operator reads.
    let ran = test_in(&d)
        .args([
            "status",
            "plan.toml",
            "--env",
            "test",
            "--state",
            &s,
            "--verify",
        ])
        .code(1);
    snap!(ran, "edited_record");

    // A removed record: the chain breaks at the record after it.
    let s = copy_state(&d, "removed");
    let n = line_of(&journal, &["step_started", r#""id":"b""#]);
    let mut removed = lines.clone();
    removed.remove(n - 1);
    write_lines(&d, &s, &removed);
    assert_mismatch(
        &verify(&d, &s, &[]),
        &format!("journal line {n} (step `b`): the hash chain breaks here"),
    );

    // Two records swapped.
    let s = copy_state(&d, "reordered");
    let n = line_of(&journal, &["step_started", r#""id":"copy""#]);
    let mut reordered = lines.clone();
    reordered.swap(n - 1, n);
    write_lines(&d, &s, &reordered);
    let o = verify(&d, &s, &[]);
    assert_mismatch(
        &o,
        &format!("journal line {n} (step `copy`): the hash chain breaks here"),
    );

    // The last record removed still forms a chain; the head printed earlier tells.
    let s = copy_state(&d, "truncated");
    write_lines(&d, &s, &lines[..lines.len() - 1]);
    assert_eq!(verify(&d, &s, &[]).code, 0);
    assert_mismatch(
        &verify(&d, &s, &["--head", head]),
        &format!("journal: no record has the head digest {head}"),
    );

    // An evidence manifest edited.
    let s = copy_state(&d, "manifest");
    let n = line_of(&journal, &["step_finished", r#""id":"verify""#]);
    let m = d.join(&format!("{s}/test/evidence/verify.1-destination.manifest"));
    let mut bytes = std::fs::read(&m).unwrap();
    bytes.extend_from_slice(b"# added\n");
    std::fs::write(&m, bytes).unwrap();
    let o = verify(&d, &s, &[]);
    assert_mismatch(
        &o,
        &format!(
            "evidence/verify.1-destination.manifest (journal line {n}, step `verify`): its digest"
        ),
    );
    assert!(o.stdout.contains("the file was changed"), "{}", o.stdout);

    // A step's output removed.
    let s = copy_state(&d, "output");
    let n = line_of(&journal, &["step_finished", r#""id":"a""#]);
    std::fs::remove_file(d.join(&format!("{s}/test/output/0001-a.1.log"))).unwrap();
    assert_mismatch(
        &verify(&d, &s, &[]),
        &format!("output/0001-a.1.log (journal line {n}, step `a`): missing"),
    );

    // A manifest replaced by a symlink to an identical copy: not followed.
    let s = copy_state(&d, "symlink");
    let m = d.join(&format!("{s}/test/evidence/verify.1-source.manifest"));
    std::fs::rename(&m, d.join("moved.manifest")).unwrap();
    std::os::unix::fs::symlink(d.join("moved.manifest"), &m).unwrap();
    let o = verify(&d, &s, &[]);
    assert_mismatch(&o, "evidence/verify.1-source.manifest (journal line");
    assert!(o.stdout.contains("is a symlink"), "{}", o.stdout);

    // The plan snapshot edited.
    let s = copy_state(&d, "plan");
    let snap = std::fs::read_dir(d.join(&format!("{s}/test/plans")))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let name = snap.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::write(&snap, "[migration]\ntitle = \"something else\"\n").unwrap();
    assert_mismatch(
        &verify(&d, &s, &[]),
        &format!("plans/{name} (journal line 1): its digest"),
    );

    // --json names the same.
    let o = verify(&d, &s, &["--json"]);
    assert_eq!(o.code, 1);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["verified"], false);
    assert_eq!(v["problems"][0]["file"], format!("plans/{name}"));
    assert_eq!(v["problems"][0]["line"], 1);
}

/// A report years later: the state directory copied to an archive, the plan file gone.
#[test]
fn status_works_from_a_copied_state_directory_without_the_plan_file() {
    let d = finished_run();
    let s = copy_state(&d, "archive");
    std::fs::remove_dir_all(d.join(".rehost")).unwrap();
    std::fs::remove_file(d.join("plan.toml")).unwrap();
    let o = verify(&d, &s, &[]);
    assert_eq!(o.code, 0, "{}", o.all());
    let o = rehost(&d, &["status", "plan.toml", "--env", "test", "--state", &s]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.starts_with("Test migration [test]"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("plan plan.toml (gone; its snapshot"),
        "{}",
        o.stdout
    );
    for id in ["a", "copy", "verify", "b"] {
        assert!(
            o.stdout.contains(&format!("done         {id}")),
            "{}",
            o.stdout
        );
    }
    let o = rehost(
        &d,
        &[
            "status",
            "plan.toml",
            "--env",
            "test",
            "--state",
            &s,
            "--json",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["steps"][3]["status"], "done");
    assert_eq!(v["head"].as_str().unwrap().len(), 64);
    // Without a state directory there is nothing to read the plan from.
    let o = rehost(&d, &["status", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("failed to read plan plan.toml"),
        "{}",
        o.stderr
    );
}

/// A change of the plan text that changes no step (the title) is kept too: the state directory
/// holds the plan as it was when the run went on.
#[test]
fn a_plan_text_change_is_snapshotted() {
    let d = finished_run();
    let text = d
        .read("plan.toml")
        .replace("Test migration", "Renamed migration");
    d.write("plan.toml", &text);
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let journal = d.read(".rehost/plan/test/journal");
    assert!(journal.contains(r#""type":"plan_snapshot""#), "{journal}");
    std::fs::remove_file(d.join("plan.toml")).unwrap();
    let o = rehost(&d, &["status", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.starts_with("Renamed migration [test]"),
        "{}",
        o.stdout
    );
    assert_eq!(verify(&d, ".rehost/plan", &[]).code, 0);
}

/// A journal written before the chain (checksums only) still reads, with a warning, and a run
/// goes on chaining; `status --verify` says its old records cannot be verified.
#[test]
fn a_journal_from_before_the_chain_reads_with_a_warning() {
    let d = finished_run();
    let j = d.join(".rehost/plan/test/journal");
    let old: String = std::fs::read_to_string(&j)
        .unwrap()
        .lines()
        .map(|l| format!("{}\n", l.rsplit_once('\t').unwrap().0))
        .collect();
    let n = old.lines().count();
    std::fs::write(&j, old).unwrap();
    let o = rehost(&d, &["status", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains(&format!(
            "warning: the first {n} record(s) of the journal were written by an older rehost"
        )),
        "{}",
        o.stdout
    );
    let o = verify(&d, ".rehost/plan", &[]);
    assert_mismatch(
        &o,
        &format!("journal line 1: journal lines 1 to {n} were written by an older rehost"),
    );
    // A title change makes the next run append a record: chained.
    let text = d
        .read("plan.toml")
        .replace("Test migration", "Renamed migration");
    d.write("plan.toml", &text);
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("before the hash chain"), "{}", o.stdout);
    let last = d.read(".rehost/plan/test/journal");
    assert_eq!(last.lines().last().unwrap().split('\t').count(), 3);
}

/// Issue 18: report.json listed kept evidence manifests with wrong sizes (12 of 22 in a real
/// run, several as 0 bytes) while their digests checked. Every size the report prints is now
/// read from the file it describes. A run that keeps several manifests and outputs: two
/// verifications, and a rollback and a resume that make a second attempt of each.
#[test]
fn every_size_the_report_prints_is_the_size_of_the_file_on_disk() {
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
id = "stop-old"
do = "run"
host = "old"
command = "touch ../stopped; echo stopping the old side"
rollback = "rm ../stopped; echo the old side runs again"
stops = ["app"]

[[steps]]
id = "final"
do = "sync"
data = "files"

[[steps]]
id = "verify"
do = "verify-tree"
data = "files"

[[steps]]
id = "verify-again"
do = "verify-tree"
data = "files"

[[steps]]
id = "start-new"
do = "run"
host = "new"
argv = ["test", "-e", "../go"]
on_failure = "rollback"
starts = ["app"]
"#,
    );
    for i in 0..20 {
        d.write(&format!("test-old/srv/data/f{i}"), "x".repeat(i * 37));
    }
    assert_eq!(rehost(&d, &["run", "plan.toml", "--env", "test"]).code, 2);
    d.write("test-old/srv/data/late", "written after the rollback\n");
    d.write("go", "");
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    rehost(
        &d,
        &[
            "report",
            "plan.toml",
            "--env",
            "test",
            "--format",
            "json,md",
        ],
    );
    let state = d.join(".rehost/plan/test");
    let json: serde_json::Value =
        serde_json::from_str(&d.read(".rehost/plan/test/report.json")).unwrap();
    let mut kept = Vec::new();
    for a in json["run"]["attempts"].as_array().unwrap() {
        if !a["output"].is_null() {
            kept.push(a["output"].clone());
        }
        if let Some(ms) = a["verification"]["manifests"].as_array() {
            kept.extend(ms.iter().cloned());
        }
    }
    for rb in json["run"]["rollbacks"].as_array().unwrap() {
        for s in rb["steps"].as_array().unwrap() {
            if !s["output"].is_null() {
                kept.push(s["output"].clone());
            }
        }
    }
    let manifests = kept
        .iter()
        .filter(|k| k["file"].as_str().unwrap().starts_with("evidence/"))
        .count();
    assert_eq!(
        manifests, 8,
        "two verifications, two attempts each, two sides"
    );
    assert!(kept.len() >= 14, "{kept:#?}");
    let md = d.read(".rehost/plan/test/report.md");
    for k in &kept {
        let file = k["file"].as_str().unwrap();
        let on_disk = std::fs::metadata(state.join(file)).unwrap().len();
        assert_eq!(k["bytes"], on_disk, "{file}");
        // The Markdown prints the same figure.
        assert!(
            md.contains(&format!("`{file}` ({on_disk} bytes, BLAKE3")),
            "{file}: {on_disk} bytes not in the report"
        );
    }
    // A kept file gone since: no figure at all, and the integrity check names it.
    let gone = "evidence/verify.1-source.manifest";
    std::fs::remove_file(state.join(gone)).unwrap();
    rehost(
        &d,
        &["report", "plan.toml", "--env", "test", "--format", "json"],
    );
    let json: serde_json::Value =
        serde_json::from_str(&d.read(".rehost/plan/test/report.json")).unwrap();
    let m = json["run"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| {
            a["verification"]["manifests"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|m| m["file"] == gone)
        .unwrap();
    assert_eq!(m["bytes"], serde_json::Value::Null);
    let problems = json["run"]["integrity"]["problems"].to_string();
    assert!(
        problems.contains(&format!("{gone} (journal line")),
        "{problems}"
    );
}
