//! Issue 18, "No way in through rehost's own outputs": what `rehost report -o DIR` and `rehost
//! concept -o FILE` write (never through a planted symlink, never where another user could
//! replace it, 0600 unless `--mode`), and one spelling of the formats and of `--state`.

use crate::support::*;
use rehost_test::TestDir;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const ECHO: &str = "[[steps]]\nid = \"e\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"true\"\n";

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn is_regular(p: &Path) -> bool {
    std::fs::symlink_metadata(p).unwrap().file_type().is_file()
}

/// A plan run once in `test`, so there is something to report.
fn ran() -> TestDir {
    let d = TestDir::new();
    write_plan(&d, ECHO);
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    d
}

fn report_to(d: &TestDir, dir: &str, extra: &[&str]) -> rehost_test::Output {
    let mut args = vec!["report", "plan.toml", "--env", "test", "-o", dir];
    args.extend_from_slice(extra);
    rehost(d, &args)
}

/// Root ran `report -o out` where another user had planted `out/report.html` → a file of
/// root's (and `concept -o c.md` → the same): rehost wrote through the link. Now the link
/// itself is replaced by the report, and the victim is unchanged.
#[test]
fn a_planted_symlink_at_the_output_name_is_replaced_never_followed() {
    let d = ran();
    d.write("victim", "root's file");
    std::fs::set_permissions(d.join("victim"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::create_dir(d.join("out")).unwrap();
    for name in ["report.html", "report.json", "report.md"] {
        std::os::unix::fs::symlink(d.join("victim"), d.join("out").join(name)).unwrap();
    }
    let o = report_to(&d, "out", &[]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(d.read("victim"), "root's file");
    assert_eq!(mode(&d.join("victim")), 0o644);
    for name in ["report.html", "report.json", "report.md"] {
        let p = d.join("out").join(name);
        assert!(is_regular(&p), "{name} is still a link");
        assert!(
            std::fs::read_to_string(&p)
                .unwrap()
                .contains("Test migration")
        );
    }
    // No temporary file is left beside them.
    assert_eq!(std::fs::read_dir(d.join("out")).unwrap().count(), 3);

    std::os::unix::fs::symlink(d.join("victim"), d.join("c.md")).unwrap();
    let o = rehost(&d, &["concept", "plan.toml", "-o", "c.md"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(d.read("victim"), "root's file");
    assert!(is_regular(&d.join("c.md")));
    assert!(d.read("c.md").contains("# Migration concept"));
}

/// `out` planted as a symlink to a directory (here `elsewhere`; `/etc` in an attack): refused,
/// naming it and what to do, and nothing is written where it points.
#[test]
fn a_symlinked_output_directory_is_refused() {
    let d = ran();
    std::fs::create_dir(d.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(d.join("elsewhere"), d.join("out")).unwrap();
    let ran = test_in(&d)
        .args(["report", "plan.toml", "--env", "test", "-o", "out"])
        .stderr_has("rehost: refusing to write into out: out is a symlink")
        .code(2);
    snap!(ran, "report");
    let ran = test_in(&d)
        .args(["concept", "plan.toml", "-o", "out/c.md"])
        .stderr_has("out is a symlink")
        .code(2);
    snap!(ran, "concept");
    assert_eq!(std::fs::read_dir(d.join("elsewhere")).unwrap().count(), 0);
}

/// A directory another user can write (uid 65534, 0777, not sticky): she could replace the
/// evidence after it is written. Refused, naming the directory and what to do; so are one of
/// hers that is not writable by others, and one of ours writable by others without the sticky
/// bit. A sticky directory of ours (like /tmp, root's) is accepted.
#[test]
fn an_output_directory_another_user_can_write_is_refused() {
    let d = ran();
    let dir = |name: &str, uid: u32, m: u32| {
        std::fs::create_dir(d.join(name)).unwrap();
        std::os::unix::fs::chown(d.join(name), Some(uid), Some(uid)).unwrap();
        std::fs::set_permissions(d.join(name), std::fs::Permissions::from_mode(m)).unwrap();
    };
    dir("shared", 65534, 0o777);
    dir("hers", 65534, 0o755);
    dir("loose", 0, 0o777);
    dir("sticky", 0, 0o1777);
    for (dir, has) in [
        (
            "shared",
            "refusing to write into shared: shared is owned by uid 65534",
        ),
        ("hers", "hers is owned by uid 65534"),
        (
            "loose",
            "loose has mode 0777: group or others may write to it",
        ),
    ] {
        let ran = test_in(&d)
            .args(["report", "plan.toml", "--env", "test", "-o", dir])
            .stderr_has(has)
            .code(2);
        snap!(ran, dir);
    }
    test_in(&d)
        .args(["concept", "plan.toml", "-o", "loose/c.md"])
        .stderr_has("loose has mode 0777")
        .code(2);
    for refused in ["shared", "hers", "loose"] {
        assert_eq!(std::fs::read_dir(d.join(refused)).unwrap().count(), 0);
    }
    let o = report_to(&d, "sticky", &[]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(d.join("sticky/report.html").exists());
}

/// Reports were written 0644 whatever they held: now 0600, unless `--mode` says otherwise.
#[test]
fn outputs_are_0600_unless_mode_says_otherwise() {
    let d = ran();
    let o = report_to(&d, "new-dir/evidence", &[]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(mode(&d.join("new-dir/evidence")), 0o700);
    for name in ["report.html", "report.json", "report.md"] {
        assert_eq!(
            mode(&d.join("new-dir/evidence").join(name)),
            0o600,
            "{name}"
        );
    }
    let o = report_to(&d, "new-dir/evidence", &["--mode", "0644"]);
    assert_eq!(o.code, 0, "{}", o.all());
    for name in ["report.html", "report.json", "report.md"] {
        assert_eq!(
            mode(&d.join("new-dir/evidence").join(name)),
            0o644,
            "{name}"
        );
    }
    let o = rehost(&d, &["concept", "plan.toml", "-o", "c.md"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(mode(&d.join("c.md")), 0o600);
    let o = rehost(&d, &["concept", "plan.toml", "-o", "c.md", "--mode", "640"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(mode(&d.join("c.md")), 0o640);
    // Not a mode, or special bits, or without -o: refused before anything is written.
    for args in [
        &["concept", "plan.toml", "-o", "x.md", "--mode", "rw-r--r--"][..],
        &["concept", "plan.toml", "-o", "x.md", "--mode", "4755"][..],
        &["concept", "plan.toml", "--mode", "0644"][..],
    ] {
        let o = rehost(&d, args);
        assert_eq!(o.code, 2, "{args:?}: {}", o.all());
        assert!(!d.join("x.md").exists());
    }
}

/// `concept --format md` was refused while `report --format md` worked, and `report --format
/// markdown` the other way round: both spellings in both commands now.
#[test]
fn md_and_markdown_are_one_format_in_concept_and_report() {
    let d = ran();
    let md = rehost(&d, &["concept", "plan.toml", "--format", "md"]);
    assert_eq!(md.code, 0, "{}", md.all());
    let markdown = rehost(&d, &["concept", "plan.toml", "--format", "markdown"]);
    assert_eq!(markdown.code, 0, "{}", markdown.all());
    let default = rehost(&d, &["concept", "plan.toml"]);
    assert_eq!(md.stdout, markdown.stdout);
    assert_eq!(md.stdout, default.stdout);
    assert!(
        md.stdout.starts_with("# Migration concept"),
        "{}",
        md.stdout
    );
    for f in ["md", "markdown"] {
        let dir = format!("r-{f}");
        let o = report_to(&d, &dir, &["--format", f]);
        assert_eq!(o.code, 0, "{}", o.all());
        assert!(o.stdout.contains(": report.md\n"), "{}", o.stdout);
        assert!(
            d.read(&format!("{dir}/report.md"))
                .contains("Test migration")
        );
    }
    let help = rehost(&d, &["report", "--help"]).stdout;
    assert!(help.contains("md (or markdown)"), "{help}");
}

/// `--state` said its default was `.rehost` next to the plan, but the run of `plan.toml` lives
/// in `.rehost/plan/<env>`: `--state .rehost` found nothing. The help says what the code does,
/// and giving that default explicitly addresses the same run.
#[test]
fn the_state_option_says_its_real_default() {
    let d = ran();
    for cmd in ["run", "status", "report"] {
        let help = rehost(&d, &[cmd, "--help"]).stdout;
        assert!(
            help.contains("`.rehost/<plan file stem>` next to the plan"),
            "{cmd}: {help}"
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
            ".rehost/plan",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("done"), "{}", o.stdout);
    assert!(d.join(".rehost/plan/test/journal").exists());
}

/// Markdown as a CommonMark reader sees it: every raw-HTML, link or image event (rehost writes
/// none), and all text and code joined, so a test can see the hostile values arrived as text.
fn read_markdown(md: &str) -> (Vec<String>, String) {
    use pulldown_cmark::{Event, Options, Parser, Tag};
    let opts = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let (mut foreign, mut text) = (Vec::new(), String::new());
    for e in Parser::new_ext(md, opts) {
        match e {
            Event::Html(h) | Event::InlineHtml(h) => foreign.push(h.to_string()),
            Event::Start(
                t @ (Tag::Link { .. } | Tag::Image { .. } | Tag::Emphasis | Tag::HtmlBlock),
            ) => foreign.push(format!("{t:?}")),
            Event::Text(t) | Event::Code(t) => text.push_str(&t),
            _ => {}
        }
    }
    (foreign, text)
}

/// Issue 18: a value holding a backtick run longer than the code span around it turned the
/// rest of the line into raw HTML in report.md and the concept. Hostile step ids, titles,
/// descriptions and paths, read back with a CommonMark parser: no element rehost did not
/// write, and every value there as text.
#[test]
fn hostile_plan_values_are_text_in_report_md_and_the_concept() {
    let d = TestDir::new();
    let img = "<img src=x onerror=alert(1)>";
    let script = "<script>alert(1)</script>";
    write_plan(
        &d,
        &format!(
            r#"
[[data]]
id = "d```{img}`"
from = "old:/srv/``{script}`"
to = "new:/srv/```{img}``"

[[steps]]
id = "s```{img}`"
title = "t`` {script} ` *x* [l](http://e)"
do = "run"
host = "old"
command = "true '```{img}`' `{script}`"
"#
        ),
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let o = rehost(
        &d,
        &[
            "report",
            "plan.toml",
            "--env",
            "test",
            "--format",
            "md",
            "-o",
            "r",
        ],
    );
    assert!(o.code < 2, "{}", o.all());
    let concept = rehost(&d, &["concept", "plan.toml"]);
    assert_eq!(concept.code, 0, "{}", concept.all());
    for (what, md) in [
        ("report.md", d.read("r/report.md")),
        ("concept", concept.stdout),
    ] {
        let (foreign, text) = read_markdown(&md);
        assert!(foreign.is_empty(), "{what}: {foreign:?}\n{md}");
        for value in [
            format!("s```{img}`"),
            format!("t`` {script} ` *x* [l](http://e)"),
            format!("/srv/``{script}`"),
        ] {
            // Code spans read back as their content, text as itself: the value's characters,
            // in order, whichever parts were code.
            let bare = |s: &str| s.replace(['`', ' '], "");
            assert!(
                bare(&text).contains(&bare(&value)),
                "{what}: {value} not read back\n{md}"
            );
        }
    }
}

/// Random secrets, different in every run of the test (no fixed word a fix could special-case).
fn random_secrets(n: usize) -> Vec<String> {
    use std::hash::{BuildHasher, Hasher};
    (0..n)
        .map(|i| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            format!("Sx{:016x}", h.finish())
        })
        .collect()
}

/// Every file under `dir`, but the plan's own snapshots (`plans/`: the plan as written, as
/// secret as the plan file itself), as text.
fn files_under(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().unwrap() != "plans" {
                    stack.push(p);
                }
            } else {
                let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
                out.push((p.display().to_string(), text));
            }
        }
    }
    out
}

/// Issue 18: redaction missed `--password X`, `-pX`, `--token X`, `Authorization: Bearer X`.
/// A secret in each shape (and `--password=X`, `PGPASSWORD=`, a URL's userinfo, a conninfo's
/// `password=`) in a failing `run` command and its rollback: found in no output — stdout and
/// stderr of the run (text and `--json`), every file of the state directory (journal, outputs,
/// report.html/json/md), the concept in both formats.
#[test]
fn a_secret_in_every_shape_leaks_into_no_output() {
    let s = random_secrets(10);
    let d = TestDir::new();
    write_plan(
        &d,
        &format!(
            r#"
[[steps]]
id = "dump"
do = "run"
host = "old"
command = """
true || mysqldump -uroot -p{} shop
false --password {} --token {} -H 'Authorization: Bearer {}' \
  --password={} postgres://app:{}@db:5432/shop "host=db password={}"
"""
rollback = "PGPASSWORD={} false; true || sshpass -p {} ssh db; curl -H \"Cookie: s={}\" ; false"
"#,
            s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9]
        ),
    );
    let mut seen = Vec::new();
    for args in [
        &["run", "plan.toml", "--env", "test"][..],
        &["run", "plan.toml", "--env", "test", "--json"][..],
    ] {
        let o = rehost(&d, args);
        assert_eq!(o.code, 2, "{}", o.all());
        seen.push((format!("{args:?}"), o.all()));
    }
    let o = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 1, "{}", o.all());
    seen.push(("report".into(), o.all()));
    let report_md = d.read(".rehost/plan/test/report.md");
    assert!(report_md.contains("--password ***"), "{report_md}");
    for format in ["md", "html"] {
        let o = rehost(&d, &["concept", "plan.toml", "--format", format]);
        assert_eq!(o.code, 0, "{}", o.all());
        assert!(o.stdout.contains("-p***"), "{}", o.stdout);
        seen.push((format!("concept {format}"), o.all()));
    }
    let files = files_under(&d.join(".rehost/plan/test"));
    for name in ["journal", "report.html", "report.json", "report.md"] {
        assert!(
            files.iter().any(|(p, _)| p.ends_with(name)),
            "no {name} in {files:?}"
        );
    }
    seen.extend(files);
    for (what, text) in &seen {
        for secret in &s {
            assert!(
                !text.contains(secret.as_str()),
                "{secret} in {what}:\n{text}"
            );
        }
    }
}
