//! `rehost report`: the evidence of a run, through the binary, and its HTML page in a real
//! headless Chromium (installed by `.ci/install-deps`).

use crate::support::*;
use rehost_test::TestDir;
use std::path::{Path, PathBuf};

const BODY: &str = r#"
[[data]]
id = "files"
from = "old:/srv/files"
to = "new:/srv/files"

[[services]]
id = "app"
host = "old"
ports = [8080]

[[steps]]
id = "announce"
title = "Announce <script>alert(1)</script> *now*"
do = "manual"
text = "Mail the users."

[[steps]]
id = "stop-app"
do = "run"
host = "old"
command = "PGPASSWORD=hunter2 touch stopped"
stops = ["app"]

[[steps]]
id = "copy"
do = "sync"
data = "files"

TAMPER

[[steps]]
id = "verify"
do = "verify-tree"
data = "files"

[[steps]]
id = "start-app"
do = "run"
host = "new"
argv = ["touch", "started"]
starts = ["app"]
"#;

const TAMPER: &str = r#"
[[steps]]
id = "tamper"
do = "run"
host = "new"
command = "echo changed > srv/files/a.txt; echo x > 'srv/files/<img src=x onerror=alert(1)> *[a](b)*'"
"#;

/// A file whose name is markup, made on the new side by `tamper`: the verification reports it.
const HOSTILE: &str = "<img src=x onerror=alert(1)> *[a](b)*";

const IDS: [&str; 5] = ["announce", "stop-app", "copy", "verify", "start-app"];

/// A rehearsed run in `test`; with `tamper`, the copy is changed before it is verified.
fn setup(tamper: bool) -> TestDir {
    setup_with(tamper, |_| {}).0
}

/// [`setup`], with `prepare` adding to the old side first; the run's output too.
fn setup_with(tamper: bool, prepare: impl FnOnce(&TestDir)) -> (TestDir, rehost_test::Output) {
    let d = TestDir::new();
    write_plan(
        &d,
        &BODY.replace("TAMPER", if tamper { TAMPER } else { "" }),
    );
    d.write("test-old/srv/files/a.txt", "alpha\n");
    d.write("test-old/srv/files/dir/b.txt", "beta\n");
    prepare(&d);

    std::fs::create_dir_all(d.join("test-new/srv")).unwrap();
    // Ada confirms the one manual step at the prompt.
    let o = rehost_stdin(
        &d,
        &[
            "run",
            "plan.toml",
            "--env",
            "test",
            "--confirm-as",
            "Ada Lovelace",
        ],
        "yes\n",
    );
    assert_eq!(o.code, if tamper { 2 } else { 0 }, "{}", o.all());
    (d, o)
}

#[test]
fn the_copys_setuid_files_and_devices_are_named_in_the_step_and_the_report() {
    use std::os::unix::fs::PermissionsExt;
    let (d, o) = setup_with(false, |d| {
        let su = d.write("test-old/srv/files/bin/su", "su\n");
        std::fs::set_permissions(&su, std::fs::Permissions::from_mode(0o4755)).unwrap();
        let disk = std::ffi::CString::new(
            d.join("test-old/srv/files/disk")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        // SAFETY: a valid NUL-terminated path; mknod(2) as root (the tests run as root).
        let r = unsafe { libc::mknod(disk.as_ptr(), libc::S_IFBLK | 0o660, libc::makedev(8, 0)) };
        assert_eq!(r, 0, "mknod: {}", std::io::Error::last_os_error());
        std::fs::set_permissions(
            d.join("test-old/srv/files/disk"),
            std::fs::Permissions::from_mode(0o660),
        )
        .unwrap();
    });
    assert!(
        o.all().contains(
            "2 privileged entries in the copy (setuid, setgid, file capabilities, devices"
        ),
        "{}",
        o.all()
    );
    rehost(&d, &["report", "plan.toml", "--env", "test", "-o", "out"]);
    let json: serde_json::Value = serde_json::from_str(&d.read("out/report.json")).unwrap();
    let v = json["run"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|a| a.get("verification").filter(|v| !v.is_null()))
        .expect("the verification's attempt");
    assert_eq!(v["privileged_total"], 2, "{v:#}");
    assert_eq!(v["privileged"][0]["path"], "bin/su");
    assert_eq!(
        v["privileged"][0]["what"],
        "setuid file, mode 4755, uid 0, gid 0"
    );
    assert_eq!(v["privileged"][1]["path"], "disk");
    assert_eq!(v["exit_code"], 0, "not findings: the verdict stands");
    let md = d.read("out/report.md");
    assert!(
        md.contains("| `disk` | block device 8:0, mode 660, uid 0, gid 0 |"),
        "{md}"
    );
}

fn chromium() -> PathBuf {
    rehost_test::require_tool("chromium")
}

/// Where screenshots are kept as test artifacts.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn headless(page: &Path, extra: &[&str]) -> std::process::Output {
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        // Every console message (a blocked request is one) on stderr.
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(url);
    let out = cmd.output().expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Loads the page in Chromium: its DOM after loading, with no console message (the page's
/// Content-Security-Policy turns any attempted request into one) and a screenshot kept.
pub(crate) fn open_in_chromium(page: &Path, shot: &str) -> String {
    let out = headless(page, &["--dump-dom"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    let png = artifacts().join(shot);
    headless(
        page,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1280,1800",
        ],
    );
    assert!(
        std::fs::metadata(&png)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "no screenshot at {}",
        png.display()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// No resource from anywhere: no element that loads one (script, link, img, iframe, …), no
/// `src`/`href`/`url()`/`@import` in any tag or in the stylesheet. Escaped text holds no `<`,
/// so every tag here is markup rehost wrote.
fn assert_self_contained(html: &str) {
    for tag in html
        .split('<')
        .skip(1)
        .map(|t| t.split('>').next().unwrap())
    {
        let name = tag.split([' ', '/']).next().unwrap_or_default();
        assert!(
            ![
                "script", "link", "img", "iframe", "object", "embed", "base", "source", "video",
                "audio"
            ]
            .contains(&name),
            "the page holds <{tag}>"
        );
        for bad in ["src=", "href=", "url(", "http:", "https:", "//"] {
            assert!(!tag.contains(bad), "the page holds <{tag}>");
        }
    }
    let style = &html[html.find("<style>").unwrap()..html.find("</style>").unwrap()];
    for bad in ["url(", "@import", "http", "//"] {
        assert!(!style.contains(bad), "the stylesheet holds {bad:?}");
    }
}

pub(crate) fn text_of(dom: &str) -> String {
    // Tags out, entities of the escaped text kept: enough to find the text a person sees.
    let mut out = String::new();
    let mut in_tag = false;
    for c in dom.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_html_report_opens_offline_with_verdict_timeline_steps_and_downtime() {
    let d = setup(false);
    let o = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout
            .contains("Report written to ./.rehost/plan/test: report.html, report.json, report.md"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("Verdict: CLEAN"), "{}", o.stdout);
    let page = d.join(".rehost/plan/test/report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert_self_contained(&html);
    assert!(html.contains("@media print"), "a print stylesheet");
    // Plan text is escaped, secrets redacted.
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("hunter2"), "a secret in the page");
    assert!(html.contains("PGPASSWORD=***"));

    let dom = open_in_chromium(&page, "clean.png");
    let text = text_of(&dom);
    assert!(
        text.contains("Verdict: CLEAN — all 5 steps done, 1 verification(s) passed"),
        "{text}"
    );
    assert!(dom.contains("id=\"timeline\""), "no timeline");
    for id in IDS {
        assert!(
            dom.contains(&format!("data-step=\"{id}\"")),
            "no bar for {id}"
        );
    }
    assert!(text.contains("Downtime declared by the steps"), "{text}");
    assert!(
        text.contains("(declared by the steps) within the budget of 15m"),
        "{text}"
    );
    assert!(text.contains("confirmed by Ada Lovelace at 20"), "{text}");
    // The verification with its totals and where the manifests are.
    assert!(
        text.contains("verify attempt 1: files — complete and correct"),
        "{text}"
    );
    assert!(text.contains("evidence/verify.1-source.manifest"), "{text}");
    assert!(text.contains("Full list of findings output/"), "{text}");
    // The verdict comes before everything else but the title.
    let verdict = dom.find("id=\"verdict\"").unwrap();
    assert!(verdict < dom.find("<table").unwrap());
    assert!(verdict < dom.find("id=\"timeline\"").unwrap());

    // JSON: versioned, the same verdict; Markdown: the same document.
    let json: serde_json::Value =
        serde_json::from_str(&d.read(".rehost/plan/test/report.json")).unwrap();
    assert_eq!(json["schema"], "rehost-report");
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["verdict"]["level"], "clean");
    assert_eq!(json["env"], "test");
    assert_eq!(json["run"]["attempts"].as_array().unwrap().len(), 5);
    let md = d.read(".rehost/plan/test/report.md");
    assert!(md.starts_with("# Migration report: Test migration\n\n> **Verdict: CLEAN"));
    assert!(
        md.contains("Announce &lt;script&gt;alert(1)&lt;/script&gt; \\*now\\*"),
        "{md}"
    );
    assert!(!md.contains("hunter2"));
}

#[test]
fn a_failed_verification_is_the_first_thing_on_the_page() {
    let d = setup(true);
    // A verdict that is not clean exits 1.
    let ran = test_in(&d)
        .args(["report", "plan.toml", "--env", "test", "-o", "out"])
        .stdout_has("Verdict: FAILED — Verification `verify`")
        .never_prints("hunter2")
        .code(1);
    snap!(ran, "report");
    let md = d.read("out/report.md");
    assert!(!md.contains("hunter2"));
    snap!(ran, "report_md", md);
    let page = d.join("out/report.html");
    assert_self_contained(&std::fs::read_to_string(&page).unwrap());
    let dom = open_in_chromium(&page, "failed-verification.png");
    let body = &dom[dom.find("<body>").unwrap()..];
    let text = text_of(body);
    // The title, then the verdict naming the failed verification, then what else failed.
    assert!(
        text.starts_with(
            "Migration report: Test migration Verdict: FAILED — Verification verify (attempt 1) found differences: "
        ),
        "{text}"
    );
    let stopped = text
        .find("Failed: The run stopped")
        .expect("the stop in the verdict");
    assert!(stopped < text.find("Rehearsal in the environment").unwrap());
    // A file name from the host is text, in the page and in the Markdown.
    assert!(
        dom.contains("&lt;img src=x onerror=alert(1)&gt; *[a](b)*"),
        "{dom}"
    );
    assert!(
        text.contains(&format!("extra {HOSTILE}")) || text.contains("extra &lt;img"),
        "{text}"
    );
    let md = d.read("out/report.md");
    assert!(!md.contains(&format!("| {HOSTILE}")), "{md}");
    assert!(
        md.contains(&format!("`{HOSTILE}`")),
        "a path is code in Markdown: {md}"
    );
    assert!(body.contains("class=\"verdict failed\""));
    assert!(text.contains("DIFFERENCES FOUND"), "{text}");
    assert!(text.contains("content a.txt"), "{text}");
    assert!(text.contains("The service has been down since"), "{text}");
    // The run stopped there: what did not run is in the verdict too.
    assert!(text.contains("Not done: start-app"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&d.read("out/report.json")).unwrap();
    assert_eq!(json["verdict"]["level"], "failed");
    assert_eq!(json["verdict"]["items"][0]["kind"], "verification_failed");
    assert_eq!(json["verdict"]["items"][0]["step"], "verify");
}

#[test]
fn a_report_rebuilt_from_a_copied_state_directory_is_identical() {
    let d = setup(false);
    assert_eq!(
        rehost(&d, &["report", "plan.toml", "--env", "test", "-o", "first"]).code,
        0
    );
    let cp = std::process::Command::new("cp")
        .args(["-a", ".rehost/plan", "archived"])
        .current_dir(d.path())
        .status()
        .unwrap();
    assert!(cp.success());
    // Years later: the plan file is gone; the plan comes from the state directory's snapshot.
    let plan = d.read("plan.toml");
    std::fs::remove_file(d.join("plan.toml")).unwrap();
    let o = rehost(
        &d,
        &[
            "report",
            "plan.toml",
            "--env",
            "test",
            "--state",
            "archived",
            "-o",
            "second",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    for f in ["report.html", "report.json", "report.md"] {
        assert_eq!(
            d.read(&format!("first/{f}")),
            d.read(&format!("second/{f}")),
            "{f} differs"
        );
    }
    let md = d.read("second/report.md");
    assert!(md.contains("From the snapshot `plans/"), "{md}");
    assert!(md.contains("The head of its hash chain is `"), "{md}");

    // A plan file edited since: the report still shows the plan as it was run.
    d.write("plan.toml", format!("{plan}\n# edited after the run\n"));
    let o = rehost(&d, &["report", "plan.toml", "--env", "test", "-o", "third"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(d.read("first/report.md"), d.read("third/report.md"));
}

#[test]
fn a_changed_journal_or_evidence_file_is_the_first_thing_in_the_report() {
    let d = setup(false);
    let manifest = ".rehost/plan/test/evidence";
    let name = std::fs::read_dir(d.join(manifest))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.contains("source"))
        .expect("a source manifest");
    let path = d.join(&format!("{manifest}/{name}"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"\n");
    std::fs::write(&path, bytes).unwrap();
    let o = rehost(&d, &["report", "plan.toml", "--env", "test", "-o", "out"]);
    assert_eq!(o.code, 1, "{}", o.all());
    assert!(
        o.stdout
            .contains("Verdict: FAILED — The state directory does not verify: "),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains(&name), "the file is named: {}", o.stdout);
    let json: serde_json::Value = serde_json::from_str(&d.read("out/report.json")).unwrap();
    assert_eq!(json["verdict"]["items"][0]["kind"], "tampered");
}

#[test]
fn decisions_by_flag_and_the_rehearsal_beside_production() {
    let d = setup(false);
    // Production, with every manual step confirmed by --yes and the findings accepted.
    d.write("prod-old/srv/files/a.txt", "alpha\n");
    std::fs::create_dir_all(d.join("prod-new/srv")).unwrap();
    let o = rehost(&d, &["run", "plan.toml", "--yes", "--accept-findings"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let o = rehost(&d, &["report", "plan.toml", "--format", "md,json"]);
    assert_eq!(o.code, 1, "--yes needs review: {}", o.all());
    assert!(o.stdout.contains("report.md, report.json"), "{}", o.stdout);
    assert!(!d.join(".rehost/plan/production/report.html").exists());
    let md = d.read(".rehost/plan/production/report.md");
    assert!(md.contains("> **Verdict: REVIEW NEEDED"), "{md}");
    assert!(md.contains("Decided by flag `--yes` by "), "{md}");
    assert!(
        md.contains("## Rehearsal and production side by side"),
        "{md}"
    );
    assert!(
        md.contains("| Step | production (this report) | test |"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&d.read(".rehost/plan/production/report.json")).unwrap();
    assert_eq!(json["comparison"][0]["env"], "test");
    assert_eq!(json["rehearsal"], false);
}

#[test]
fn no_run_is_trouble() {
    let d = TestDir::new();
    write_plan(&d, BODY.replace("TAMPER", "").as_str());
    let o = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr
            .contains("no run of plan.toml in test to report on"),
        "{}",
        o.stderr
    );
}

#[test]
fn every_field_of_the_json_is_documented() {
    let d = setup(false);
    rehost(&d, &["report", "plan.toml", "--env", "test", "-o", "out"]);
    let json: serde_json::Value = serde_json::from_str(&d.read("out/report.json")).unwrap();
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/report.md"))
            .unwrap();
    let mut missing = Vec::new();
    fn walk(v: &serde_json::Value, path: &str, doc: &str, missing: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(o) => {
                for (k, v) in o {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    if !doc.contains(&format!("`{p}`")) {
                        missing.push(p.clone());
                    }
                    walk(v, &p, doc, missing);
                }
            }
            serde_json::Value::Array(a) => {
                for v in a {
                    walk(v, &format!("{path}[]"), doc, missing);
                }
            }
            _ => {}
        }
    }
    walk(&json, "", &doc, &mut missing);
    missing.dedup();
    assert!(missing.is_empty(), "not in docs/report.md: {missing:#?}");
}

#[test]
fn after_a_rollback_the_superseded_attempts_are_on_the_timeline() {
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
command = "touch ../stopped"
rollback = "rm ../stopped"
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
id = "start-new"
do = "run"
host = "new"
argv = ["test", "-e", "../go"]
on_failure = "rollback"
starts = ["app"]
"#,
    );
    d.write("test-old/srv/data/first", "before the window\n");
    assert_eq!(rehost(&d, &["run", "plan.toml", "--env", "test"]).code, 2);
    // Rolled back: the old service runs again; the report says so, not "still down".
    let o = rehost(
        &d,
        &["report", "plan.toml", "--env", "test", "-o", "before"],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    let md = d.read("before/report.md");
    assert!(md.contains("## Rollbacks"), "{md}");
    assert!(md.contains("`stop-old` rolled back"), "{md}");
    assert!(!md.contains("has been down since"), "{md}");

    d.write("go", "");
    assert_eq!(rehost(&d, &["run", "plan.toml", "--env", "test"]).code, 0);
    let o = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 1, "a rollback needs review: {}", o.all());
    assert!(o.stdout.contains("Verdict: REVIEW NEEDED"), "{}", o.stdout);
    let html = d.read(".rehost/plan/test/report.html");
    assert!(html.contains("tl-bar superseded"), "{html}");
    assert!(html.contains("<code>final</code> attempt 1"), "{html}");
    assert!(html.contains("<code>final</code> attempt 2"), "{html}");
    let json: serde_json::Value =
        serde_json::from_str(&d.read(".rehost/plan/test/report.json")).unwrap();
    let finals: Vec<&serde_json::Value> = json["run"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["id"] == "final")
        .collect();
    assert_eq!(finals.len(), 2);
    assert_eq!(finals[0]["superseded"], true);
    assert_eq!(finals[1]["superseded"], false);
    let kinds: Vec<&str> = json["verdict"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"rolled_back"), "{kinds:?}");
    assert!(
        kinds.contains(&"retried"),
        "start-new failed once: {kinds:?}"
    );
}

#[test]
fn the_demo_ends_with_its_report() {
    let d = TestDir::new();
    let o = rehost(&d, &["demo", "--dir", "demo"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains(
            "Report written to demo/.rehost/plan/test: report.html, report.json, report.md"
        ),
        "{}",
        o.stdout
    );
    // The demo confirms its manual steps itself, with a recorded --yes: the report says so.
    assert!(o.stdout.contains("Verdict: REVIEW NEEDED"), "{}", o.stdout);
    let md = d.read("demo/.rehost/plan/test/report.md");
    assert!(
        md.contains("Decided by flag `--yes` by demo operator"),
        "{md}"
    );
    let html = d.read("demo/.rehost/plan/test/report.html");
    assert_self_contained(&html);
    assert!(html.contains("Billing service: old to new (demo)"));
}
