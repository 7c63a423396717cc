//! `rehost fleet report`: real runs of small plans (one clean and rehearsed, one whose
//! verification finds a difference, one rolled back), a state directory that does not verify,
//! one that cannot be read and a hostile one, gathered on one page; the page in headless
//! Chromium; the OSCAL export loaded by compliance-trestle's model.

use crate::report::{open_in_chromium, text_of};
use crate::support::*;
use rehost_test::TestDir;
use std::path::{Path, PathBuf};

const COPY_AND_VERIFY: &str = r#"
[[data]]
id = "files"
from = "old:/srv/files"
to = "new:/srv/files"

[[services]]
id = "app"
host = "old"

[[steps]]
id = "stop"
do = "run"
host = "old"
command = "touch ../stopped"
rollback = "rm ../stopped"
stops = ["app"]

[[steps]]
id = "copy"
do = "sync"
data = "files"
method = "builtin"

TAMPER

[[steps]]
id = "verify"
do = "verify-tree"
data = "files"

[[steps]]
id = "start"
do = "run"
host = "new"
argv = ["test", "-e", "../../go"]
starts = ["app"]
# Starting it with the copied configuration is its check (the lint's config-unverified).
verifies = ["app"]
on_failure = "ROLLBACK"
"#;

const TAMPER: &str = r#"
[[steps]]
id = "tamper"
do = "run"
host = "new"
command = "echo changed > srv/files/a.txt"
"#;

/// A server's plan in `dir/NAME/plan.toml`, titled `title`, its old side holding two files.
fn server(d: &TestDir, name: &str, title: &str, tamper: bool, on_failure: &str) -> PathBuf {
    let body = COPY_AND_VERIFY
        .replace("TAMPER", if tamper { TAMPER } else { "" })
        .replace("ROLLBACK", on_failure);
    d.write(
        &format!("{name}/plan.toml"),
        plan(&body).replace("title = \"Test migration\"", &format!("title = {title}")),
    );
    for env in ["test", "prod"] {
        d.write(&format!("{name}/{env}-old/srv/files/a.txt"), "alpha\n");
        d.write(&format!("{name}/{env}-old/srv/files/dir/b.txt"), "beta\n");
        std::fs::create_dir_all(d.join(&format!("{name}/{env}-new/srv"))).unwrap();
    }
    d.join(name)
}

fn run_in(d: &TestDir, name: &str, args: &[&str]) -> rehost_test::Output {
    rehost_test::run(bin(), args, &d.join(name), None)
}

fn fleet_json(d: &TestDir, out: &str) -> serde_json::Value {
    serde_json::from_str(&d.read(&format!("{out}/fleet.json"))).unwrap()
}

/// The states of one server's cells, by point id.
fn cells(server: &serde_json::Value) -> Vec<(String, String)> {
    server["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["point"].as_str().unwrap().to_owned(),
                c["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn cell<'a>(cells: &'a [(String, String)], point: &str) -> &'a str {
    &cells.iter().find(|(p, _)| p == point).unwrap().1
}

/// Three servers that ran for real, a copy whose evidence was changed, one whose journal was,
/// and a directory that is no state directory.
fn fleet() -> TestDir {
    let d = TestDir::new();
    d.write("go", "");
    // web01: rehearsed, then run in production; every step passes.
    server(&d, "web01", "\"web01\"", false, "stop");
    let o = run_in(&d, "web01", &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let o = run_in(&d, "web01", &["run", "plan.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    // db02: the copy is changed before it is verified.
    server(&d, "db02", "\"db02\"", true, "stop");
    let o = run_in(&d, "db02", &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    // app03: the last step fails and the plan rolls back.
    server(&d, "app03", "\"app03\"", false, "rollback");
    std::fs::remove_file(d.join("go")).unwrap();
    let o = run_in(&d, "app03", &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    d.write("go", "");
    // copy04: web01's rehearsal, copied, a manifest it kept as evidence changed afterwards.
    std::fs::create_dir_all(d.join("copies")).unwrap();
    copy_dir(&d.join("web01/.rehost/plan/test"), &d.join("copies/copy04"));
    let manifest = d.join("copies/copy04/evidence/verify.1-destination.manifest");
    let mut text = std::fs::read(&manifest).unwrap();
    text.extend_from_slice(b"\n");
    std::fs::write(&manifest, text).unwrap();
    // copy06: the same, one record of its journal changed: its checksum no longer holds.
    copy_dir(&d.join("web01/.rehost/plan/test"), &d.join("copies/copy06"));
    let journal = d.join("copies/copy06/journal");
    let text = std::fs::read_to_string(&journal).unwrap();
    std::fs::write(&journal, text.replacen("\"verify\"", "\"verifx\"", 1)).unwrap();
    // broken05: its journal is a directory.
    std::fs::create_dir_all(d.join("copies/broken05/journal")).unwrap();
    d
}

fn copy_dir(from: &Path, to: &Path) {
    let o = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(o.success());
}

#[test]
fn the_matrix_says_what_each_servers_journal_proves_and_nothing_more() {
    let d = fleet();
    let o = rehost(
        &d,
        &[
            "fleet",
            "report",
            "web01/.rehost/plan",
            "db02/.rehost/plan/test",
            "app03",
            "copies",
            "-o",
            "out",
            "--format",
            "html,json,md,oscal",
        ],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    assert!(
        o.stdout.contains("Fleet report written to out: fleet.html, fleet.json, fleet.md, fleet.oscal.json and the reports of 4 server(s)"),
        "{}",
        o.stdout
    );
    let f = fleet_json(&d, "out");
    let servers = f["servers"].as_array().unwrap();
    let names: Vec<&str> = servers
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    // web01's production and rehearsal are one server; the copies are found below `copies`.
    assert_eq!(names, ["web01", "db02", "app03", "", "web01", ""], "{f:#}");

    let web = cells(&servers[0]);
    assert_eq!(servers[0]["env"], "production");
    assert_eq!(cell(&web, "data"), "verified");
    assert_eq!(cell(&web, "rehearsal"), "verified", "{:#}", servers[0]);
    assert_eq!(cell(&web, "rollback"), "not_applicable");
    assert_eq!(cell(&web, "keys"), "not_applicable");
    assert_eq!(servers[0]["verdict"], "clean");
    assert_eq!(servers[0]["report"], "server-0001");

    let db = cells(&servers[1]);
    assert_eq!(cell(&db, "data"), "finding", "{:#}", servers[1]);
    // The failed verification was rolled back? No: the plan stops (`on_failure = "stop"`).
    assert_eq!(cell(&db, "rollback"), "finding");
    assert_eq!(cell(&db, "rehearsal"), "finding");
    assert_eq!(servers[1]["verdict"], "failed");

    let app = cells(&servers[2]);
    // The rollback sent the copy and its verification round again: as the server's own report
    // says, the data has no verification that holds.
    assert_eq!(cell(&app, "data"), "finding", "{:#}", servers[2]);
    assert!(
        servers[2]["points"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Verification `verify` has no result"),
        "{:#}",
        servers[2]
    );
    assert_eq!(cell(&app, "rollback"), "verified", "{:#}", servers[2]);
    assert_eq!(servers[2]["verdict"], "failed");

    // A changed journal: nothing of it counts as verified.
    let copy = cells(&servers[4]);
    assert!(
        copy.iter().all(|(_, s)| s != "verified"),
        "{:#}",
        servers[4]
    );
    assert_eq!(cell(&copy, "data"), "finding");
    assert!(
        servers[4]["points"][0]["text"]
            .as_str()
            .unwrap()
            .contains("does not verify"),
        "{:#}",
        servers[4]
    );

    let broken = &servers[3];
    assert!(
        broken["unreadable"]
            .as_str()
            .unwrap()
            .contains("not a regular file"),
        "{broken:#}"
    );
    assert!(cells(broken).iter().all(|(_, s)| s == "finding"));
    assert!(broken["report"].is_null());
    let edited = &servers[5];
    assert!(
        edited["unreadable"]
            .as_str()
            .unwrap()
            .contains("corrupt at line 1: checksum mismatch"),
        "{edited:#}"
    );
    assert!(cells(edited).iter().all(|(_, s)| s == "finding"));

    // Each readable server's own report beside the page, the same as `rehost report` writes.
    for i in [1, 2, 3, 5] {
        assert!(d.join(&format!("out/server-000{i}.html")).exists());
    }
    for i in [4, 6] {
        assert!(!d.join(&format!("out/server-000{i}.html")).exists());
    }
    let own = rehost(
        &d,
        &[
            "report",
            "db02/plan.toml",
            "--env",
            "test",
            "-o",
            "own",
            "--format",
            "json",
        ],
    );
    assert_eq!(own.code, 1, "{}", own.all());
    let own: serde_json::Value = serde_json::from_str(&d.read("own/report.json")).unwrap();
    let beside: serde_json::Value = serde_json::from_str(&d.read("out/server-0002.json")).unwrap();
    assert_eq!(own["points"], beside["points"]);
    assert_eq!(own["verdict"], beside["verdict"]);

    // Waves: every run here overlapped none of the others.
    assert!(
        f["waves"].as_array().unwrap().len() >= 3,
        "{:#}",
        f["waves"]
    );

    // The Markdown page: the matrix, rows linked to the servers' Markdown reports.
    let md = d.read("out/fleet.md");
    assert!(
        md.contains("| [\\#1 web01](server-0001.md) | production | verified |"),
        "{md}"
    );
    assert!(md.contains("SYS.1.1.A25"), "{md}");
    assert!(md.contains("not a regular file"), "{md}");
}

#[test]
fn the_fleet_page_opens_offline_in_chromium_with_the_matrix_linked() {
    let d = fleet();
    let o = rehost(&d, &["fleet", "report", ".", "-o", "out"]);
    assert_eq!(o.code, 1, "{}", o.all());
    let page = d.join("out/fleet.html");
    let dom = open_in_chromium(&page, "fleet.png");
    let text = text_of(&dom);
    assert!(
        text.contains("Verdict: FAILED — 1 of 6 server(s) clean"),
        "{text}"
    );
    assert!(dom.contains("<table class=\"matrix\">"), "{dom}");
    assert!(
        dom.contains("<a href=\"server-0001.html\">#1 app03</a>"),
        "{dom}"
    );
    // The matrix's marks are coloured cells, one per point and server.
    assert!(dom.matches("class=\"m-verified\"").count() >= 4, "{dom}");
    assert!(dom.matches("class=\"m-finding\"").count() >= 9, "{dom}");
    assert!(dom.contains("id=\"timeline\""), "{dom}");
    assert!(text.contains("Downtime against each budget"), "{text}");
    assert!(
        text.contains("IT-Grundschutz-Kompendium, Edition 2023"),
        "{text}"
    );
    // The linked report opens too, and names the points and requirements.
    let own = open_in_chromium(&d.join("out/server-0001.html"), "fleet-server.png");
    let own = text_of(&own);
    assert!(
        own.contains("M 2.319 and the IT-Grundschutz-Kompendium"),
        "{own}"
    );
    assert!(own.contains("OPS.1.1.3.A1"), "{own}");
}

/// Where compliance-trestle is: `REHOST_TRESTLE_PYTHON`, else the venv `.ci/install-deps`
/// makes at the workspace's root.
fn trestle_python() -> PathBuf {
    let python = std::env::var_os("REHOST_TRESTLE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-trestle/bin/python")
        });
    let ok = std::process::Command::new(&python)
        .args(["-c", "import trestle.oscal.assessment_results"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "compliance-trestle is not installed at {}: run .ci/install-deps (it makes .venv-trestle with `pip install compliance-trestle`), or set REHOST_TRESTLE_PYTHON",
        python.display()
    );
    python
}

/// Loads an OSCAL file through trestle's pydantic model of assessment results (every field,
/// pattern and required property of OSCAL 1.1.2); prints the results' and findings' counts.
fn trestle_load(python: &Path, file: &Path) -> String {
    let o = std::process::Command::new(python)
        .arg("-c")
        .arg(
            "import json,sys\n\
             from trestle.oscal.assessment_results import AssessmentResults\n\
             d = json.load(open(sys.argv[1]))\n\
             ar = AssessmentResults.parse_obj(d['assessment-results'])\n\
             print(len(ar.results), sum(len(r.findings or []) for r in ar.results))\n",
        )
        .arg(file)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "trestle refused {}: {}",
        file.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

#[test]
fn the_oscal_assessment_results_load_in_compliance_trestle() {
    let python = trestle_python();
    let d = fleet();
    let o = rehost(
        &d,
        &["fleet", "report", ".", "-o", "out", "--format", "oscal"],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    // Four readable runs; findings for every point that applies, per requirement.
    let counts = trestle_load(&python, &d.join("out/fleet.oscal.json"));
    assert!(counts.starts_with("4 "), "{counts}");
    let doc: serde_json::Value = serde_json::from_str(&d.read("out/fleet.oscal.json")).unwrap();
    let results = doc["assessment-results"]["results"].as_array().unwrap();
    let targets: Vec<(&str, &str)> = results
        .iter()
        .flat_map(|r| r["findings"].as_array().into_iter().flatten())
        .map(|f| {
            (
                f["target"]["target-id"].as_str().unwrap(),
                f["target"]["status"]["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        targets.contains(&("SYS.1.1.A25", "satisfied")),
        "{targets:?}"
    );
    assert!(
        targets.contains(&("SYS.1.1.A25", "not-satisfied")),
        "{targets:?}"
    );
    assert!(
        targets.contains(&("OPS.1.1.3.A1", "satisfied")),
        "{targets:?}"
    );
    // Every id once (trestle's model does not check that), every `#` reference to one of them.
    fn uuids<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>, refs: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::Object(o) => {
                for (k, v) in o {
                    match (k.as_str(), v.as_str()) {
                        ("uuid", Some(u)) => out.push(u),
                        ("href", Some(h)) if h.starts_with('#') => refs.push(&h[1..]),
                        _ => uuids(v, out, refs),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| uuids(v, out, refs)),
            _ => {}
        }
    }
    let (mut ids, mut refs) = (Vec::new(), Vec::new());
    uuids(&doc, &mut ids, &mut refs);
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "a uuid twice");
    assert!(
        !refs.is_empty() && refs.iter().all(|r| ids.contains(r)),
        "{refs:?}"
    );

    // `rehost report --format oscal`: one result, the same model.
    let o = run_in(
        &d,
        "web01",
        &["report", "plan.toml", "-o", "out", "--format", "oscal"],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    let counts = trestle_load(&python, &d.join("web01/out/report.oscal.json"));
    assert!(counts.starts_with("1 "), "{counts}");
}

#[test]
fn hostile_state_directories_are_escaped_or_refused() {
    let d = TestDir::new();
    d.write("go", "");
    // A title full of markup and terminal control, as a compromised host could write it.
    server(
        &d,
        "evil",
        r#""<script>alert(1)</script>\u001b[31m*[x](javascript:alert(1))*""#,
        false,
        "stop",
    );
    let o = run_in(&d, "evil", &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    // A journal that is a symlink to another state directory's journal.
    std::fs::create_dir_all(d.join("links/linked")).unwrap();
    std::os::unix::fs::symlink(
        d.join("evil/.rehost/plan/test/journal"),
        d.join("links/linked/journal"),
    )
    .unwrap();
    // A symlink to a state directory, below a directory given: not followed.
    std::os::unix::fs::symlink(d.join("evil/.rehost/plan/test"), d.join("links/followed")).unwrap();
    // A copy with a kept file too large to read whole (sparse: it takes no room).
    copy_dir(&d.join("evil/.rehost/plan/test"), &d.join("links/huge"));
    std::fs::File::create(d.join("links/huge/evidence/huge"))
        .unwrap()
        .set_len((1 << 30) + 1)
        .unwrap();
    let o = rehost(&d, &["fleet", "report", "evil", "links", "-o", "out"]);
    assert_eq!(o.code, 1, "{}", o.all());
    assert!(!o.stdout.contains('\u{1b}'), "{:?}", o.stdout);
    let f = fleet_json(&d, "out");
    let servers = f["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 3, "{f:#}");
    assert!(
        servers[1]["unreadable"]
            .as_str()
            .unwrap()
            .contains("`evidence/huge` is 1073741825 bytes, more than the 1073741824 read"),
        "{f:#}"
    );
    assert!(
        servers[2]["unreadable"]
            .as_str()
            .unwrap()
            .contains("symbolic link"),
        "{f:#}"
    );
    for file in [
        "fleet.html",
        "fleet.md",
        "server-0001.html",
        "server-0001.md",
    ] {
        let text = d.read(&format!("out/{file}"));
        assert!(!text.contains('\u{1b}'), "{file} holds an escape character");
        if file.ends_with(".html") {
            assert!(!text.contains("<script>alert"), "{file}: {text}");
        } else {
            // Markdown as a reader sees it: no HTML, and no link but to a server's report.
            use pulldown_cmark::{Event, Options, Parser, Tag};
            for e in Parser::new_ext(&text, Options::ENABLE_TABLES) {
                match e {
                    Event::Html(h) | Event::InlineHtml(h) => panic!("{file}: HTML {h:?}"),
                    Event::Start(Tag::Link { dest_url, .. }) => {
                        assert!(
                            dest_url.starts_with("server-0"),
                            "{file}: a link to {dest_url}"
                        )
                    }
                    _ => {}
                }
            }
        }
    }
    let html = d.read("out/fleet.html");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    // Only links rehost made: one per readable server.
    assert_eq!(html.matches("<a href=").count(), 1, "{html}");
    assert!(html.contains("<a href=\"server-0001.html\">"), "{html}");
}
