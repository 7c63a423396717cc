//! What the operator reads (issue 18, "the operator's view"): every figure in parentheses says
//! what it is, and `status --help` says what status shows and what --verify proves.

use crate::support::*;
use rehost_test::TestDir;

/// The parenthesised parts of `text` that are nothing but figures: `(13.0s)`, `(3)`,
/// `(1m 05s)`, `(4.2 MiB)`.
fn bare_figures(text: &str) -> Vec<String> {
    const UNITS: [&str; 11] = [
        "", "ms", "s", "m", "h", "d", "B", "KiB", "MiB", "GiB", "TiB",
    ];
    let figure = |t: &str| {
        let digits = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
            .unwrap_or(t.len());
        digits > 0 && t[..1].chars().all(|c| c.is_ascii_digit()) && {
            let unit = t[digits..].trim_end_matches("/s");
            UNITS.contains(&unit)
        }
    };
    let mut bare = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('(') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(')') else { break };
        let inner = &after[..close];
        let unit = |t: &str| !t.is_empty() && UNITS.contains(&t.trim_end_matches("/s"));
        if inner.split_whitespace().any(figure)
            && inner.split_whitespace().all(|t| figure(t) || unit(t))
        {
            bare.push(format!("({inner})"));
        }
        rest = &after[close + 1..];
    }
    bare
}

#[test]
fn the_checker_finds_bare_figures() {
    assert_eq!(
        bare_figures("done (13.0s) and (3) and (1m 05s) and (512.0 MiB/s)"),
        ["(13.0s)", "(3)", "(1m 05s)", "(512.0 MiB/s)"]
    );
    assert!(
        bare_figures("(took 13.0s) (budget 15m) (2 missing, 1 content) (run on old)").is_empty()
    );
}

/// Issue 18: "(13.0s)" at the end of a run, "(4.2s)" under the timeline: a figure in
/// parentheses said nothing of what it was.
#[test]
fn every_figure_in_parentheses_says_what_it_is() {
    let d = TestDir::new();
    write_plan(
        &d,
        r#"
[[services]]
id = "app"
host = "old"

[[steps]]
id = "ask"
do = "manual"
text = "go?"

[[steps]]
id = "stop"
do = "run"
host = "old"
argv = ["true"]
stops = ["app"]

[[steps]]
id = "hold"
do = "wait"
duration = "200ms"

[[steps]]
id = "start"
do = "run"
host = "new"
argv = ["true"]
starts = ["app"]
"#,
    );
    let run = rehost(&d, &["run", "plan.toml", "--env", "test", "--yes"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("rehost run finished: "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("(took "), "{}", run.stdout);
    let status = rehost(&d, &["status", "plan.toml", "--env", "test"]);
    let report = rehost(&d, &["report", "plan.toml", "--env", "test", "-o", "out"]);
    assert_eq!(report.code, 1, "{}", report.all());
    let html = d.read("out/report.html");
    assert!(html.contains("(a span of "), "the timeline's caption");
    for (what, text) in [
        ("run", run.all()),
        ("status", status.all()),
        ("report", report.all()),
        ("report.md", d.read("out/report.md")),
    ] {
        assert_eq!(bare_figures(&text), Vec::<String>::new(), "{what}: {text}");
    }
}

/// Issue 18: `status --help` said "Show the state of each step of a run", and nothing of what
/// --verify proves (the files agree with each other; not who wrote them).
#[test]
fn status_help_says_what_it_shows_and_what_verify_proves() {
    let d = TestDir::new();
    let o = rehost(&d, &["status", "--help"]);
    assert_eq!(o.code, 0, "{}", o.all());
    for says in [
        "from its journal",
        "waiting for confirmation",
        "the downtime: each outage",
        "Only the journal is read: nothing on the hosts is checked",
        "not who wrote them",
        "--head",
        "Print the state",
        "Show the run of this environment",
    ] {
        assert!(o.stdout.contains(says), "{says}: {}", o.stdout);
    }
    // --env chooses whose run is shown; status rehearses nothing.
    assert!(!o.stdout.contains("Rehearse"), "{}", o.stdout);
}

/// Colours follow the conventions `anstream` reads: `CLICOLOR_FORCE` turns them on where the
/// output is not a terminal, `NO_COLOR` turns them off whatever else says.
#[test]
fn colours_follow_clicolor_force_and_no_color() {
    let d = TestDir::new();
    write_plan(
        &d,
        "[[steps]]\nid = \"a\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"true\"]\n",
    );
    let run = |env: &[(&str, &str)]| {
        let o = std::process::Command::new(bin())
            .args(["run", "plan.toml", "--env", "test"])
            .current_dir(d.path())
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        std::fs::remove_dir_all(d.join(".rehost")).unwrap();
        String::from_utf8(o.stdout).unwrap()
    };
    let forced = run(&[("CLICOLOR_FORCE", "1")]);
    assert!(forced.contains("\x1b[32m✓"), "green tick: {forced:?}");
    let off = run(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(!off.contains('\x1b'), "{off:?}");
    let piped = run(&[]);
    assert!(!piped.contains('\x1b'), "not a terminal: {piped:?}");
}
