//! Issue 8 (security review): what reaches a terminal or a document from a plan, secrets in
//! command lines, and `check` on huge plans. The state directory's tests are in `state.rs`.

use crate::support::*;
use rehost_test::TestDir;

/// A credential in a failing command: the step is named by its id and line; the secret
/// appears in no error, journal record, terminal line or JSON event (issue 8, item 6).
#[test]
fn a_failing_command_with_a_credential_leaks_it_nowhere() {
    let d = TestDir::new();
    write_plan(
        &d,
        r#"
[[steps]]
id = "dump"
do = "run"
host = "old"
command = "PGPASSWORD=hunter2 false"
rollback = "MYSQL_PWD=hunter3 false postgres://u:hunter4@db/x"
"#,
    );
    for args in [
        &["run", "plan.toml", "--env", "test"][..],
        &["run", "plan.toml", "--env", "test", "--json"][..],
    ] {
        let o = rehost(&d, args);
        assert_eq!(o.code, 2, "{}", o.all());
        assert!(
            o.all().contains("step `dump`") || o.all().contains("\"id\":\"dump\""),
            "{}",
            o.all()
        );
        for secret in ["hunter2", "hunter3", "hunter4"] {
            assert!(!o.all().contains(secret), "{args:?}: {}", o.all());
        }
    }
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert!(o.stderr.contains("(plan line "), "{}", o.stderr);
    let journal = d.read(".rehost/plan/test/journal");
    assert!(journal.contains("\"id\":\"dump\""), "{journal}");
    for secret in ["hunter2", "hunter3", "hunter4"] {
        assert!(!journal.contains(secret), "{journal}");
    }
    // The concept must show the commands: redacted.
    let o = rehost(&d, &["concept", "plan.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("PGPASSWORD=*** false"), "{}", o.stdout);
    for secret in ["hunter2", "hunter3", "hunter4"] {
        assert!(!o.stdout.contains(secret), "{}", o.stdout);
    }
}

/// An unknown key made of escape sequences must not clear the reviewer's screen: `check`
/// prints it escaped (issue 8, item 8).
#[test]
fn check_escapes_control_and_bidi_characters_in_diagnostics() {
    let d = TestDir::new();
    d.write(
        "plan.toml",
        plan("[[steps]]\nid = \"a\"\ndo = \"manual\"\ntext = \"x\"\n\"\\u001b[2J\\u001b[H\\u202e\\u2066evil\" = 1\n"),
    );
    let o = rehost(&d, &["check", "plan.toml"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stdout.contains("unknown key"), "{}", o.stdout);
    assert!(o.stdout.contains("\\u{1b}[2J"), "{}", o.stdout);
    assert!(o.stdout.contains("\\u{202e}\\u{2066}evil"), "{}", o.stdout);
    for c in ['\x1b', '\u{202e}', '\u{2066}'] {
        assert!(!o.all().contains(c), "{:?}", o.all());
    }
}

/// The final `rehost: …` line escapes what it quotes (here a plan path with an escape).
#[test]
fn the_final_error_line_is_escaped() {
    let d = TestDir::new();
    let o = rehost(&d, &["check", "no\x1b[2Jsuch\u{202e}.toml"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.starts_with("rehost: "), "{}", o.stderr);
    assert!(
        o.stderr.contains("no\\u{1b}[2Jsuch\\u{202e}.toml"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains('\x1b') && !o.stderr.contains('\u{202e}'));
}

/// No raw HTML or Markdown syntax from the plan passes into the Markdown concept.
#[test]
fn markdown_concept_escapes_html_and_markdown_from_the_plan() {
    let d = TestDir::new();
    d.write(
        "plan.toml",
        plan("[[steps]]\nid = \"a\"\ntitle = \"<img src=x onerror=alert(1)> [click](http://evil) **b**\"\ndo = \"manual\"\ntext = \"<script>x</script>\\n# heading\"\n")
            .replace(
                "title = \"Test migration\"",
                "title = \"<b>T</b>\"\npurpose = \"- not a list\\n<iframe>\"",
            ),
    );
    let o = rehost(&d, &["concept", "plan.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    for raw in [
        "<img",
        "<script",
        "<iframe",
        "<b>",
        "[click](",
        "**b**",
        "\n# heading",
        "\n- not",
    ] {
        assert!(!o.stdout.contains(raw), "{raw} in\n{}", o.stdout);
    }
    assert!(
        o.stdout.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("\\[click\\](http://evil)"),
        "{}",
        o.stdout
    );
}

/// `check` was quadratic in the number of diagnostics (100,000 unknown keys ran past a
/// minute): every diagnostic built its own line table. The timeout is only a guard.
#[test]
fn check_reports_100000_unknown_keys() {
    let d = TestDir::new();
    let mut body = String::from("[[steps]]\nid = \"a\"\ndo = \"manual\"\ntext = \"x\"\n");
    for i in 0..100_000 {
        body.push_str(&format!("unknown_key_{i} = 1\n"));
    }
    d.write("plan.toml", plan(&body));
    let (tx, rx) = std::sync::mpsc::channel();
    let path = d.path().to_owned();
    std::thread::spawn(move || {
        let o = rehost_test::run(bin(), &["check", "plan.toml", "--json"], &path, None);
        let _ = tx.send(o);
    });
    let o = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("check of 100,000 unknown keys finishes");
    assert_eq!(o.code, 2);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    let unknown = v["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter(|e| e["code"] == "unknown-key")
        .count();
    assert_eq!(unknown, 100_000);
}
