//! The verdict and the timeline from journal records, without a run: pure functions of data.

use super::*;
use rehost_journal::step_data::{StepData, VerifyDbData};
use rehost_journal::{Record, StepResult};

const PLAN: &str = r#"
[migration]
title = "T"
initiated_by = ["ISO"]
implemented_by = "Admin"
max_downtime = "1s"

[hosts.old]
local = true
root = "o"

[hosts.new]
local = true
root = "n"

[[services]]
id = "app"
host = "old"

[[steps]]
id = "ask"
do = "manual"
text = "ok?"

[[steps]]
id = "stop"
do = "run"
host = "old"
argv = ["true"]
stops = ["app"]

[[steps]]
id = "start"
do = "run"
host = "new"
argv = ["true"]
starts = ["app"]
"#;

fn plan() -> rehost_plan::Plan {
    let c = rehost_plan::check(PLAN);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    c.plan.unwrap()
}

fn t(s: u32) -> String {
    format!("2026-12-05T21:00:{s:02}Z")
}

fn started(s: u32, id: &str, attempt: u32) -> Record {
    Record::StepStarted {
        at: t(s),
        id: id.into(),
        attempt,
    }
}

fn finished(s: u32, id: &str, attempt: u32, result: StepResult) -> Record {
    Record::StepFinished {
        at: t(s),
        id: id.into(),
        attempt,
        result,
        elapsed_ms: 1000,
        detail: None,
        confirmed_by: (id == "ask").then(|| "Ada".into()),
        exit_code: None,
        output: None,
        result_data: None,
    }
}

fn run_started() -> Record {
    Record::RunStarted {
        at: t(0),
        plan_digest: rehost_plan::digest(PLAN),
        env: "production".into(),
        steps: Vec::new(),
        user: "root".into(),
        pid: 1,
        version: "0.1.0".into(),
        plan_file: None,
        operator_host: None,
        terminal: None,
    }
}

fn report(records: &[Record]) -> Report {
    let plan = plan();
    let run = read::fold(records, "production", &plan);
    build(Input {
        plan: &plan,
        plan_file: "plan.toml".into(),
        plan_text: PlanText {
            text: PLAN.into(),
            origin: "test".into(),
        },
        run,
        others: Vec::new(),
    })
}

fn kinds(r: &Report) -> Vec<&str> {
    r.verdict.items.iter().map(|i| i.kind.as_str()).collect()
}

#[test]
fn a_finished_run_within_budget_is_clean() {
    let r = report(&[
        run_started(),
        started(1, "ask", 1),
        finished(2, "ask", 1, StepResult::Done),
        started(3, "stop", 1),
        finished(3, "stop", 1, StepResult::Done),
        started(3, "start", 1),
        finished(4, "start", 1, StepResult::Done),
        Record::RunFinished {
            at: t(4),
            ok: true,
            summary: "all done".into(),
        },
    ]);
    assert_eq!(r.verdict.level, Level::Clean, "{:?}", r.verdict);
    assert_eq!(r.downtime.declared_ms, Some(1000));
    assert_eq!(r.downtime.within_budget, Some(true));
    let doc = document(&r, &plan());
    let Some(Block::Timeline(tl)) = doc.blocks.iter().find(|b| matches!(b, Block::Timeline(_)))
    else {
        panic!("no timeline")
    };
    assert_eq!(tl.span_ms, 4000);
    assert_eq!(tl.bars.len(), 3);
    assert_eq!(tl.bars[0].state, crate::doc::BarState::Manual);
    assert!(
        tl.bars[0]
            .note
            .contains("confirmed by Ada at 2026-12-05 21:00:02.000 UTC")
    );
    assert_eq!((tl.bars[2].start_ms, tl.bars[2].end_ms), (3000, 4000));
}

#[test]
fn over_budget_and_still_down_and_not_finished_fail() {
    let r = report(&[
        run_started(),
        started(1, "ask", 1),
        finished(1, "ask", 1, StepResult::Done),
        started(2, "stop", 1),
        finished(2, "stop", 1, StepResult::Done),
        started(3, "start", 1),
    ]);
    assert_eq!(r.verdict.level, Level::Failed);
    let k = kinds(&r);
    assert!(k.contains(&"not_finished"), "{k:?}");
    assert!(k.contains(&"still_down"), "{k:?}");
    assert!(k.contains(&"step_failed"), "start is interrupted: {k:?}");

    let r = report(&[
        run_started(),
        started(1, "ask", 1),
        finished(1, "ask", 1, StepResult::Done),
        started(2, "stop", 1),
        finished(2, "stop", 1, StepResult::Done),
        started(3, "start", 1),
        finished(9, "start", 1, StepResult::Done),
        Record::RunFinished {
            at: t(9),
            ok: true,
            summary: "all done".into(),
        },
    ]);
    assert_eq!(kinds(&r), ["over_budget"]);
    assert!(
        r.verdict
            .headline
            .contains("The downtime declared by the steps, 7.0s, exceeded the budget of 1.0s"),
        "{}",
        r.verdict.headline
    );
}

#[test]
fn decisions_and_skips_need_review_with_who_and_when() {
    let r = report(&[
        run_started(),
        Record::Decision {
            at: t(1),
            what: "skip-interrupted".into(),
            detail: "step `ask` counted as done".into(),
            by: "Bob".into(),
        },
        finished(1, "ask", 1, StepResult::Skipped),
        started(2, "stop", 1),
        finished(2, "stop", 1, StepResult::Done),
        started(2, "start", 1),
        finished(2, "start", 1, StepResult::Done),
        Record::RunFinished {
            at: t(2),
            ok: true,
            summary: "all done".into(),
        },
    ]);
    assert_eq!(r.verdict.level, Level::Attention);
    assert_eq!(kinds(&r), ["skipped", "decision"]);
    assert_eq!(
        r.verdict.items[1].text,
        "Decided by flag `--skip-interrupted` by Bob at 2026-12-05 21:00:01.000 UTC: step `ask` counted as done"
    );
}

#[test]
fn a_failed_database_verification_leads_the_verdict_with_its_findings() {
    let src = format!(
        "{PLAN}\n[[databases]]\nid = \"shop\"\nengine = \"postgresql\"\nfrom = \"old\"\nto = \"new\"\ndatabase = \"shop\"\nuser = \"verify\"\n\n[[steps]]\nid = \"check-db\"\ndo = \"verify-db\"\ndatabase = \"shop\"\n"
    );
    let c = rehost_plan::check(&src);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let plan = c.plan.unwrap();
    let records = [
        run_started(),
        started(1, "check-db", 1),
        Record::StepFinished {
            at: t(2),
            id: "check-db".into(),
            attempt: 1,
            result: StepResult::Failed,
            elapsed_ms: 900,
            detail: Some("database `shop` on new differs from old".into()),
            confirmed_by: None,
            exit_code: Some(1),
            output: None,
            result_data: Some(StepData::VerifyDb(Box::new(VerifyDbData {
                v: 1,
                database: "shop".into(),
                source: "old:5432/shop".into(),
                destination: "new:5432/shop".into(),
                equal: false,
                findings_total: 1,
                report: serde_json::json!({
                    "old": "old:5432/shop", "new": "new:5432/shop",
                    "old_version": "16.4", "new_version": "17.0", "tables": 2, "rows": 5,
                    "sequences": 1, "objects": 9, "notes": [],
                    "findings": [{"class": "row-count", "kind": "table", "name": "public.orders",
                                  "old": "3", "new": "2"}],
                }),
                exercise: None,
            }))),
        },
    ];
    let run = read::fold(&records, "production", &plan);
    let r = build(Input {
        plan: &plan,
        plan_file: "plan.toml".into(),
        plan_text: PlanText {
            text: src.clone(),
            origin: "test".into(),
        },
        run,
        others: Vec::new(),
    });
    assert_eq!(r.verdict.level, Level::Failed);
    assert_eq!(r.verdict.items[0].kind, "verification_failed");
    assert_eq!(r.verdict.items[0].step.as_deref(), Some("check-db"));
    assert_eq!(
        r.verdict.headline,
        "Verification `check-db` (attempt 1) found differences: 1 finding(s) between old:5432/shop and new:5432/shop"
    );
    let md = crate::doc::render_markdown(&document(&r, &plan));
    assert!(
        md.contains("| Server versions A / B | 16.4 / 17.0 |"),
        "{md}"
    );
    assert!(
        md.contains("| row-count | `public.orders` | 3 | 2 |"),
        "{md}"
    );
    // The points of M 2.319 say the same: the data has a finding, the step it rests on named.
    let state = |p: crate::kompendium::Point| r.points.iter().find(|c| c.point == p).unwrap();
    use crate::doc::Mark;
    use crate::kompendium::Point;
    assert_eq!(state(Point::Data).state, Mark::Finding);
    assert_eq!(state(Point::Data).steps, ["check-db"]);
    assert!(state(Point::Data).text.contains("found differences"));
    assert_eq!(state(Point::NewVersion).state, Mark::NotApplicable);
    assert_eq!(state(Point::Rehearsal).state, Mark::NotApplicable);
    assert_eq!(state(Point::Rollback).state, Mark::Finding);
    assert!(md.contains("Evidences M 2.319: “Data complete and correct”; IT-Grundschutz-Kompendium, Edition 2023: SYS.1.1.A25."), "{md}");
}

/// Issue 26: a cell is verified only while the state directory verifies; a changed kept file
/// or record turns every verified point into a finding that says so.
#[test]
fn a_state_directory_that_does_not_verify_verifies_no_point() {
    use crate::doc::Mark;
    use crate::kompendium::Point;
    let src = format!(
        "{PLAN}\n[[data]]\nid = \"d\"\nfrom = \"old:/srv\"\nto = \"new:/srv\"\n\n[[steps]]\nid = \"check\"\ndo = \"verify-tree\"\ndata = \"d\"\n"
    );
    let plan = rehost_plan::check(&src).plan.unwrap();
    let records = [
        run_started(),
        started(1, "check", 1),
        Record::StepFinished {
            at: t(2),
            id: "check".into(),
            attempt: 1,
            result: StepResult::Done,
            elapsed_ms: 900,
            detail: None,
            confirmed_by: None,
            exit_code: Some(0),
            output: None,
            result_data: Some(StepData::VerifyTree(Box::new(
                serde_json::from_value(serde_json::json!({
                    "v": 1, "data_set": "d", "source": "old:/srv", "destination": "new:/srv",
                    "exit_code": 0, "findings": [], "findings_total": 0, "manifests": [],
                    "totals": {"entries_a": 1, "entries_b": 1, "bytes_a": 1, "bytes_b": 1,
                               "equal": 1, "rehashed": 2, "trusted": 0, "by_class": {}},
                }))
                .unwrap(),
            ))),
        },
    ];
    let mut run = read::fold(&records, "production", &plan);
    let input = |run| Input {
        plan: &plan,
        plan_file: "plan.toml".into(),
        plan_text: PlanText {
            text: src.clone(),
            origin: "test".into(),
        },
        run,
        others: Vec::new(),
    };
    let r = build(input(run.clone()));
    let data = r.points.iter().find(|c| c.point == Point::Data).unwrap();
    assert_eq!(data.state, Mark::Verified, "{data:?}");
    run.integrity = Some(Integrity {
        records: 3,
        files: 1,
        problems: vec!["evidence/check.1-source.manifest: the file was changed".into()],
        signature: None,
    });
    let r = build(input(run));
    assert!(
        r.points.iter().all(|c| c.state != Mark::Verified),
        "{:?}",
        r.points
    );
    let data = r.points.iter().find(|c| c.point == Point::Data).unwrap();
    assert!(
        data.text.starts_with("the state directory does not verify"),
        "{data:?}"
    );
}

/// Every heading of a document has something under it before the next heading of its level or
/// above.
fn bare_headings(doc: &Document) -> Vec<String> {
    let level = |b: &Block| match b {
        Block::Heading { level, .. } => Some(*level),
        _ => None,
    };
    let mut bare = Vec::new();
    for (i, b) in doc.blocks.iter().enumerate() {
        if let Block::Heading { level: l, text } = b
            && doc
                .blocks
                .get(i + 1)
                .is_none_or(|n| level(n).is_some_and(|n| n <= *l))
        {
            bare.push(text.clone());
        }
    }
    bare
}

/// Issue 18: "Decisions" stood over nothing but "None". A section with nothing in it is left
/// out, and the report says once what the journal does not hold.
#[test]
fn no_section_is_a_bare_heading() {
    let clean = [
        run_started(),
        started(1, "ask", 1),
        finished(2, "ask", 1, StepResult::Done),
        started(3, "stop", 1),
        finished(3, "stop", 1, StepResult::Done),
        started(3, "start", 1),
        finished(4, "start", 1, StepResult::Done),
        Record::RunFinished {
            at: t(4),
            ok: true,
            summary: "all done".into(),
        },
    ];
    for records in [&[run_started()][..], &clean[..], &[]] {
        let r = report(records);
        let doc = document(&r, &plan());
        assert_eq!(bare_headings(&doc), Vec::<String>::new());
        let md = crate::doc::render_markdown(&doc);
        for gone in ["## Decisions", "## Verifications", "## Pre-flight", "None:"] {
            assert!(!md.contains(gone), "{gone}: {md}");
        }
        assert!(
            md.contains("The journal records ")
                && md.contains("no verification result, no decision taken by a flag"),
            "{md}"
        );
        assert_eq!(
            md.contains("## Timeline"),
            !r.run.attempts.is_empty(),
            "{md}"
        );
    }
    // The safety net: a heading left over nothing is dropped, a filled one kept.
    let blocks = without_empty_sections(vec![
        Block::Heading {
            level: 1,
            text: "T".into(),
        },
        Block::Heading {
            level: 2,
            text: "Empty".into(),
        },
        Block::Heading {
            level: 3,
            text: "Empty too".into(),
        },
        Block::Heading {
            level: 2,
            text: "Full".into(),
        },
        Block::Paragraph { text: "x".into() },
        Block::Heading {
            level: 2,
            text: "Last".into(),
        },
    ]);
    let left: Vec<String> = blocks
        .iter()
        .filter_map(|b| match b {
            Block::Heading { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(left, ["T", "Full"]);
}

/// Issue 18: after a rollback and a resume, the review line named only the superseded steps
/// as run again. It names every step the rollback sent round (rolled back, superseded and the
/// failed one), and which of them have not run again yet.
#[test]
fn the_rollback_line_names_every_step_that_runs_again() {
    let mut records = vec![
        run_started(),
        started(1, "ask", 1),
        finished(1, "ask", 1, StepResult::Done),
        started(2, "stop", 1),
        finished(2, "stop", 1, StepResult::Done),
        started(3, "start", 1),
        finished(3, "start", 1, StepResult::Failed),
        Record::RollbackStarted {
            at: t(3),
            failed: "start".into(),
        },
        Record::RolledBack {
            at: t(4),
            id: "stop".into(),
            ok: true,
            detail: None,
            output: None,
        },
    ];
    let line = |r: &Report| {
        r.verdict
            .items
            .iter()
            .find(|i| i.kind == "rolled_back" && i.step.as_deref() == Some("start"))
            .map(|i| i.text.clone())
            .unwrap_or_else(|| panic!("{:?}", r.verdict))
    };
    assert_eq!(
        line(&report(&records)),
        "After step `start` failed, the rollback undid `stop`; to run again, not run yet: `stop` and `start`."
    );
    records.extend([
        started(10, "stop", 2),
        finished(10, "stop", 2, StepResult::Done),
    ]);
    assert_eq!(
        line(&report(&records)),
        "After step `start` failed, the rollback undid `stop`; ran again: `stop`; to run again, not run yet: `start`."
    );
    records.extend([
        started(11, "start", 2),
        finished(12, "start", 2, StepResult::Done),
    ]);
    assert_eq!(
        line(&report(&records)),
        "After step `start` failed, the rollback undid `stop`; ran again: `stop` and `start`."
    );
}

/// Issue 18: the report said "trusted from the last verification" whatever had read the
/// trusted digests; it names the check they rest on, as the step recorded it.
#[test]
fn the_report_says_which_walk_the_trusted_digests_rest_on() {
    use rehost_journal::step_data::VerifyTreeData;
    let src = format!(
        "{PLAN}\n[[data]]\nid = \"web\"\nfrom = \"old:/srv/web\"\nto = \"new:/srv/web\"\n\n[[steps]]\nid = \"verify\"\ndo = \"verify-tree\"\ndata = \"web\"\n"
    );
    let c = rehost_plan::check(&src);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let plan = c.plan.unwrap();
    let basis = "the walk of the built-in transfer in sync `final` (attempt 2), whose digests are not a verification's";
    let data = StepData::VerifyTree(Box::new(VerifyTreeData {
        v: 1,
        data_set: "web".into(),
        source: "old:/srv/web".into(),
        destination: "new:/srv/web".into(),
        exit_code: 0,
        totals: rehost_tree::Totals {
            rehashed: 2,
            trusted: 5,
            compared: 1,
            ..rehost_tree::Totals::default()
        },
        ignored: Vec::new(),
        excludes: Vec::new(),
        warnings: Vec::new(),
        findings: Vec::new(),
        findings_total: 0,
        manifests: Vec::new(),
        privileged: Vec::new(),
        privileged_total: 0,
        trusted_from: Some(basis.into()),
        not_verified: Vec::new(),
    }));
    let records = [
        run_started(),
        started(1, "verify", 1),
        Record::StepFinished {
            at: t(2),
            id: "verify".into(),
            attempt: 1,
            result: StepResult::Done,
            elapsed_ms: 1000,
            detail: None,
            confirmed_by: None,
            exit_code: Some(0),
            output: None,
            result_data: Some(data),
        },
    ];
    let run = read::fold(&records, "production", &plan);
    let r = build(Input {
        plan: &plan,
        plan_file: "plan.toml".into(),
        plan_text: PlanText {
            text: src.clone(),
            origin: "test".into(),
        },
        run,
        others: Vec::new(),
    });
    let md = crate::doc::render_markdown(&document(&r, &plan));
    assert!(
        md.contains("| Files hashed now / trusted unchanged from an earlier walk | 2 / 5 |"),
        "{md}"
    );
    assert!(md.contains("| The trusted digests were read by | the walk of the built-in transfer in sync `final` (attempt 2)"), "{md}");
    assert!(!md.contains("last verification"), "{md}");
    // Issue 27: a file of B read side by side with A's is said to be compared, not hashed alone.
    assert!(
        md.contains("| Of the files read, B's compared byte for byte with A's, read side by side | 1 (B's BLAKE3 computed once with A's where every piece was equal, else hashed from the first piece that differed) |"),
        "{md}"
    );
}

/// A database verification's verdict names its scope: "complete and correct" holds for what
/// was compared, and the heading says what was not (a table name's backtick opens no code
/// span); a run whose rehost did not record its scope says so instead of claiming more.
#[test]
fn a_database_verdict_names_what_was_not_compared() {
    let src = format!(
        "{PLAN}\n[[databases]]\nid = \"shop\"\nengine = \"sqlite\"\nfrom = \"old\"\nto = \"new\"\ndatabase = \"/srv/shop.db\"\n\n[[steps]]\nid = \"check-db\"\ndo = \"verify-db\"\ndatabase = \"shop\"\n"
    );
    let c = rehost_plan::check(&src);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let plan = c.plan.unwrap();
    let heading = |report: serde_json::Value| {
        let records = [
            run_started(),
            started(1, "check-db", 1),
            Record::StepFinished {
                at: t(2),
                id: "check-db".into(),
                attempt: 1,
                result: StepResult::Done,
                elapsed_ms: 900,
                detail: Some("database `shop` verified on new".into()),
                confirmed_by: None,
                exit_code: Some(0),
                output: None,
                result_data: Some(StepData::VerifyDb(Box::new(VerifyDbData {
                    v: 1,
                    database: "shop".into(),
                    source: "old".into(),
                    destination: "new".into(),
                    equal: true,
                    findings_total: 0,
                    report,
                    exercise: None,
                }))),
            },
        ];
        let run = read::fold(&records, "production", &plan);
        let r = build(Input {
            plan: &plan,
            plan_file: "plan.toml".into(),
            plan_text: PlanText {
                text: src.clone(),
                origin: "test".into(),
            },
            run,
            others: Vec::new(),
        });
        let md = crate::doc::render_markdown(&document(&r, &plan));
        md.lines()
            .find(|l| l.starts_with("### `check-db`"))
            .unwrap_or_else(|| panic!("{md}"))
            .to_owned()
    };
    let base = serde_json::json!({
        "old": "old:sqlite:/srv/shop.db", "new": "new:sqlite:/srv/shop.db",
        "old_version": "3.40.1", "new_version": "3.40.1", "tables": 2, "rows": 5,
        "sequences": 0, "objects": 4, "notes": [], "findings": [],
    });
    let mut scoped = base.clone();
    scoped["not_compared"] = serde_json::json!([
        "accounts and privileges: SQLite has none",
        "row by row, tables without a usable primary key (counted and summed: a difference is found, not located to rows): lo`g"
    ]);
    assert_eq!(
        heading(scoped),
        "### `check-db` attempt 1: `shop` — complete and correct; not compared: accounts and privileges: SQLite has none; row by row, tables without a usable primary key (counted and summed: a difference is found, not located to rows): lo'g"
    );
    assert_eq!(
        heading(base),
        "### `check-db` attempt 1: `shop` — complete and correct; not compared: not recorded by the rehost that ran it"
    );
}

/// A verification whose result a newer rehost wrote (a kind this one does not know) is not
/// taken for evidence: the verdict fails it and says why, never "complete and correct".
#[test]
fn a_verification_result_of_a_newer_rehost_is_not_counted() {
    let src = format!(
        "{PLAN}\n[[steps]]\nid = \"keys\"\ndo = \"verify-files\"\nfrom = \"old\"\nto = \"new\"\npaths = [\"/etc/krb5.keytab\"]\n"
    );
    let c = rehost_plan::check(&src);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let plan = c.plan.unwrap();
    let newer: StepData =
        serde_json::from_str(r#"{"kind":"verify-files-v2","v":7,"equal":true}"#).unwrap();
    let records = vec![
        run_started(),
        started(1, "keys", 1),
        Record::StepFinished {
            at: t(2),
            id: "keys".into(),
            attempt: 1,
            result: StepResult::Done,
            elapsed_ms: 1000,
            detail: Some("1 file equal".into()),
            confirmed_by: None,
            exit_code: Some(0),
            output: None,
            result_data: Some(newer),
        },
    ];
    let run = read::fold(&records, "production", &plan);
    let r = build(Input {
        plan: &plan,
        plan_file: "plan.toml".into(),
        plan_text: PlanText {
            text: src.clone(),
            origin: "test".into(),
        },
        run,
        others: Vec::new(),
    });
    assert_eq!(r.verdict.level, Level::Failed);
    let item = r
        .verdict
        .items
        .iter()
        .find(|i| i.step.as_deref() == Some("keys"))
        .expect("an item for the step");
    assert_eq!(item.kind, "not_verified");
    assert!(
        item.text
            .contains("its result is not one this rehost reads"),
        "{}",
        item.text
    );
}

fn probe_started(s: u32) -> Record {
    Record::ProbeStarted {
        at: t(s),
        targets: vec![rehost_journal::journal::ProbeTarget {
            service: "app".into(),
            check: "TCP connect to port 1".into(),
            old: "127.0.0.1".into(),
            new: "127.0.0.2".into(),
            interval_ms: 200,
            timeout_ms: 1000,
        }],
    }
}

fn probe_changed(s: u32, side: rehost_journal::journal::ProbeSide, up: bool) -> Record {
    Record::ProbeChanged {
        at: t(s),
        service: "app".into(),
        side,
        up,
        detail: None,
    }
}

/// Where services were probed, the budget is compared with what clients saw, not with what
/// the steps declare: a 7 s declared outage that clients never saw (the new side answered
/// before the old one stopped) is within the budget; a 2 s measured one is over it, named so.
#[test]
fn the_budget_is_compared_with_the_measured_downtime_where_there_is_one() {
    use rehost_journal::journal::ProbeSide::{New, Old};
    let records = |new_up_at: u32| {
        vec![
            run_started(),
            probe_started(1),
            probe_changed(1, Old, true),
            probe_changed(1, New, false),
            started(1, "ask", 1),
            finished(1, "ask", 1, StepResult::Done),
            started(2, "stop", 1),
            probe_changed(3, Old, false),
            finished(2, "stop", 1, StepResult::Done),
            probe_changed(new_up_at, New, true),
            started(9, "start", 1),
            finished(9, "start", 1, StepResult::Done),
            Record::ProbeSummary {
                at: t(10),
                samples: 90,
            },
            Record::RunFinished {
                at: t(10),
                ok: true,
                summary: "all done".into(),
            },
        ]
    };
    let r = report(&records(2));
    assert_eq!(r.downtime.declared_ms, Some(7000));
    assert_eq!(r.downtime.measured.as_ref().unwrap().total_ms, 0);
    assert_eq!(r.downtime.budget_basis.as_deref(), Some("measured"));
    assert_eq!(r.downtime.within_budget, Some(true));
    assert!(!kinds(&r).contains(&"over_budget"), "{:?}", kinds(&r));

    let r = report(&records(5));
    assert_eq!(r.downtime.measured.as_ref().unwrap().total_ms, 2000);
    assert_eq!(r.downtime.within_budget, Some(false));
    let item = r
        .verdict
        .items
        .iter()
        .find(|i| i.kind == "over_budget")
        .expect("over budget");
    assert!(
        item.text.contains(
            "The downtime measured by the probes, 2.0s (clients reached neither side of `app`)"
        ),
        "{}",
        item.text
    );
    // Both sides and the outage drawn on the timeline's axis (it starts at the first record).
    let doc = document(&r, &plan());
    let Some(Block::Timeline(tl)) = doc.blocks.iter().find(|b| matches!(b, Block::Timeline(_)))
    else {
        panic!("no timeline")
    };
    let lanes: Vec<&str> = tl.lanes.iter().map(|l| l.label.as_str()).collect();
    assert_eq!(
        lanes,
        [
            "`app` old side",
            "`app` new side",
            "`app`: clients reached neither"
        ]
    );
    let outage = &tl.lanes[2].spans[0];
    assert_eq!((outage.start_ms, outage.end_ms), (3000, 5000));
}

/// A write load's check: "no acknowledged write lost" only when it ran on the new side and
/// found every acknowledged id; missing ids fail the verdict, named; a check that could not
/// run, or a load with nothing acknowledged, claims nothing and asks for review.
#[test]
fn a_write_loads_check_is_clean_only_when_every_acknowledged_write_was_found() {
    let records = |acknowledged: u64, found: u64, error: Option<&str>| {
        let missing: Vec<u64> = (found + 1..=acknowledged).collect();
        vec![
            run_started(),
            Record::LoadStarted {
                at: t(1),
                id: "acks".into(),
                kind: "writes".into(),
                before: "ask".into(),
            },
            started(1, "ask", 1),
            finished(1, "ask", 1, StepResult::Done),
            Record::LoadStopped {
                at: t(2),
                id: "acks".into(),
                after: Some("ask".into()),
                reason: "stopped after step `ask`".into(),
                elapsed_ms: 1000,
                exit_code: None,
                signal: None,
                output: None,
                acknowledged: Some(acknowledged),
                errors: Some(2),
                first_error: Some("connection refused".into()),
                acks: None,
            },
            Record::LoadChecked {
                at: t(3),
                id: "acks".into(),
                database: "db".into(),
                service: None,
                new_side: "new:postgres://x/db".into(),
                acknowledged,
                found,
                missing_total: missing.len() as u64,
                missing,
                error: error.map(str::to_owned),
                not_compared: "unacknowledged writes".into(),
            },
        ]
    };
    let item = |r: &Report, kind: &str| {
        r.verdict
            .items
            .iter()
            .find(|i| i.kind == kind)
            .unwrap_or_else(|| panic!("no {kind}: {:?}", kinds(r)))
            .clone()
    };
    let r = report(&records(50, 50, None));
    let clean = item(&r, "no_acknowledged_write_lost");
    assert_eq!(clean.level, Level::Clean);
    assert!(
        clean
            .text
            .contains("no acknowledged write lost. 50 write(s) acknowledged"),
        "{}",
        clean.text
    );
    assert!(
        clean.text.contains("not compared: unacknowledged writes"),
        "{}",
        clean.text
    );

    let r = report(&records(50, 47, None));
    assert_eq!(r.verdict.level, Level::Failed);
    let lost = item(&r, "acknowledged_writes_lost");
    assert!(
        lost.text.contains("3 of 50 acknowledged write(s) MISSING"),
        "{}",
        lost.text
    );
    assert!(lost.text.contains("ids 48, 49, 50"), "{}", lost.text);
    assert!(!kinds(&r).contains(&"no_acknowledged_write_lost"));

    for r in [
        report(&records(50, 0, Some("connection refused"))),
        report(&records(0, 0, None)),
    ] {
        let not = item(&r, "acknowledged_writes_not_checked");
        assert_eq!(not.level, Level::Attention, "{}", not.text);
        assert!(
            !not.text.contains("no acknowledged write lost"),
            "{}",
            not.text
        );
    }
}

/// A done `watch-old` step is no finding against "Data complete and correct": it can only find
/// against the point (its lost writes are a failed verdict item of the step), and proves
/// nothing itself: the point rests on the verification. Regression: it fell through to "finished without a result this rehost
/// reads", which marked the point a finding in every run that watched the old side.
#[test]
fn a_done_watch_old_is_no_finding_and_no_proof() {
    use crate::doc::Mark;
    use crate::kompendium::Point;
    let src = format!(
        "{PLAN}\n[[data]]\nid = \"d\"\nfrom = \"old:/srv\"\nto = \"new:/srv\"\n\n[[steps]]\nid = \"check\"\ndo = \"verify-tree\"\ndata = \"d\"\n\n[[steps]]\nid = \"watch\"\ndo = \"watch-old\"\ndata = \"d\"\n"
    );
    let plan = rehost_plan::check(&src).plan.unwrap();
    let done = |s: u32, id: &str, data: Option<StepData>| Record::StepFinished {
        at: t(s),
        id: id.into(),
        attempt: 1,
        result: StepResult::Done,
        elapsed_ms: 10,
        detail: None,
        confirmed_by: None,
        exit_code: Some(0),
        output: None,
        result_data: data,
    };
    let tree = StepData::VerifyTree(Box::new(
        serde_json::from_value(serde_json::json!({
            "v": 1, "data_set": "d", "source": "old:/srv", "destination": "new:/srv",
            "exit_code": 0, "findings": [], "findings_total": 0, "manifests": [],
            "totals": {"entries_a": 1, "entries_b": 1, "bytes_a": 1, "bytes_b": 1,
                       "equal": 1, "rehashed": 2, "trusted": 0, "by_class": {}},
        }))
        .unwrap(),
    ));
    let build_with = |records: &[Record]| {
        build(Input {
            plan: &plan,
            plan_file: "plan.toml".into(),
            plan_text: PlanText {
                text: src.clone(),
                origin: "test".into(),
            },
            run: read::fold(records, "production", &plan),
            others: Vec::new(),
        })
    };
    // The tree verified, the old side watched: verified, resting on the verification only.
    let r = build_with(&[
        run_started(),
        started(1, "check", 1),
        done(2, "check", Some(tree)),
        started(3, "watch", 1),
        done(4, "watch", None),
    ]);
    let data = r.points.iter().find(|c| c.point == Point::Data).unwrap();
    assert_eq!(data.state, Mark::Verified, "{data:?}");
    assert_eq!(data.steps, ["check", "watch"]);
    assert!(
        !data.text.contains("watch"),
        "proven by the verification only: {data:?}"
    );
}

/// Issue 21: the Connections section names who was connected to the old upstream when a
/// switch paused (each one that left by itself and when, each one the relay ended), and a
/// `drain` interrupted while rehost ended its clients is shown as interrupted with what the
/// listing before the interruption proved, not as drained or as clients to end by hand.
#[test]
fn connections_name_who_was_there_at_a_switch_and_an_interrupted_drains_record() {
    use rehost_journal::step_data::{
        DrainClient, DrainData, DrainEnded, SwitchData, SwitchEnded, SwitchLeft,
    };
    let switch = SwitchData {
        v: 1,
        hold: "127.0.0.1:6432".into(),
        from: "10.0.4.10:5432".into(),
        to: "10.0.4.20:5432".into(),
        now: "10.0.4.20:5432".into(),
        switched: true,
        timeout_ms: 2000,
        paused: true,
        paused_ms: 1502,
        queued: 3,
        open_at_pause: 2,
        drained: 1,
        left: vec![SwitchLeft {
            client: "10.0.7.31:51234".into(),
            upstream: "10.0.4.10:5432".into(),
            after_ms: 40,
        }],
        drain_deadline_ms: 1500,
        ended: vec![SwitchEnded {
            client: "10.0.7.32:40022".into(),
            upstream: "10.0.4.10:5432".into(),
            age_ms: 61_000,
        }],
        ended_count: 1,
    };
    let client = |peer: &str, ended: DrainEnded| DrainClient {
        peer: peer.into(),
        local_port: 5432,
        pid: Some(4711),
        command: Some("postgres".into()),
        first_seen_ms: 0,
        left_ms: (ended.result == "ended").then_some(5000),
        ended: Some(ended),
    };
    let drain = DrainData {
        v: 1,
        service: "db".into(),
        host: "old".into(),
        ports: vec![5432],
        drained: false,
        waited_ms: 5000,
        polls: 6,
        clients: vec![
            client(
                "10.0.7.33:50001",
                DrainEnded {
                    at_ms: 5000,
                    result: "ended".into(),
                    mechanism: Some("sock_destroy".into()),
                    why: String::new(),
                },
            ),
            client(
                "10.0.7.34:50002",
                DrainEnded {
                    at_ms: 5000,
                    result: "interrupted".into(),
                    mechanism: None,
                    why: "interrupted while rehost was ending it".into(),
                },
            ),
        ],
        untracked: 0,
        terminate: true,
        sockets: Vec::new(),
        unix_clients: Vec::new(),
    };
    let with = |r: Record, data: StepData| match r {
        Record::StepFinished {
            at,
            id,
            attempt,
            result,
            elapsed_ms,
            detail,
            confirmed_by,
            exit_code,
            output,
            ..
        } => Record::StepFinished {
            at,
            id,
            attempt,
            result,
            elapsed_ms,
            detail,
            confirmed_by,
            exit_code,
            output,
            result_data: Some(data),
        },
        other => other,
    };
    let records = [
        run_started(),
        started(1, "stop", 1),
        with(
            finished(2, "stop", 1, StepResult::Interrupted),
            StepData::Drain(drain),
        ),
        started(3, "start", 1),
        with(
            finished(4, "start", 1, StepResult::Done),
            StepData::Switch(Box::new(switch)),
        ),
    ];
    let r = report(&records);
    let md = crate::doc::render_markdown(&document(&r, &plan()));
    let row = |needle: &str| {
        md.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in {md}"))
            .to_owned()
    };
    assert!(
        row("`10.0.7.31:51234`").contains("left by itself 40ms after the pause"),
        "{md}"
    );
    assert!(
        row("`10.0.7.32:40022`").contains("ended by the relay at the drain deadline, open for"),
        "{md}"
    );
    assert!(
        md.contains("2 connection(s) to the old upstream were open at the pause: 1 ended by themselves, 1 were still open"),
        "{md}"
    );
    assert!(md.contains("| Client connected at the pause |"), "{md}");
    assert!(!md.contains("not named here"), "{md}");
    assert!(
        md.contains("INTERRUPTED while rehost was ending the clients still connected to port 5432")
            && md.contains("1 proven ended by the listing made before the interruption"),
        "{md}"
    );
    assert!(!md.contains("NOT drained"), "{md}");
    assert!(
        row("`10.0.7.33:50001`").contains("ended by rehost (`sock_destroy`)"),
        "{md}"
    );
    assert!(
        row("`10.0.7.34:50002`").contains("NOT KNOWN: interrupted while rehost was ending it"),
        "{md}"
    );
}
