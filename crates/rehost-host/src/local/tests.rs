//! The local host: streaming, roots, timeouts, process groups, long lines.

use super::*;
use crate::Program;

fn run(host: &LocalHost, spec: &CommandSpec) -> (RunOutcome, Vec<(OutputStream, String)>) {
    let mut lines = Vec::new();
    let cancel = AtomicBool::new(false);
    let out = host
        .run(spec, &cancel, &mut |s, l| {
            lines.push((s, String::from_utf8_lossy(l).into_owned()))
        })
        .unwrap();
    (out, lines)
}

#[test]
fn streams_both_outputs_and_exit_status() {
    let h = LocalHost::new("old", None);
    let (out, lines) = run(
        &h,
        &CommandSpec::new(Program::Shell("echo a; echo b >&2; exit 3".into())),
    );
    assert_eq!(out.exit.code, Some(3));
    assert!(lines.contains(&(OutputStream::Stdout, "a".into())));
    assert!(lines.contains(&(OutputStream::Stderr, "b".into())));
}

#[test]
fn root_is_cwd_and_env() {
    let dir = tempfile::tempdir().unwrap();
    let h = LocalHost::new("old", Some(dir.path().to_owned()));
    let (_, lines) = run(
        &h,
        &CommandSpec::new(Program::Shell("pwd; echo $REHOST_ROOT".into())),
    );
    let want = dir.path().to_string_lossy().into_owned();
    assert_eq!(lines[0].1, want);
    assert_eq!(lines[1].1, want);
    assert_eq!(h.resolve("/etc/../../x/y"), dir.path().join("x/y"));
}

#[test]
fn timeout_ends_the_whole_group() {
    let h = LocalHost::new("old", None);
    let mut spec = CommandSpec::new(Program::Shell("sleep 30 & sleep 30; echo never".into()));
    spec.timeout = Some(Duration::from_millis(200));
    let t = Instant::now();
    let (out, lines) = run(&h, &spec);
    assert!(out.timed_out);
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(lines.is_empty());
}

#[test]
fn argv_is_not_a_shell() {
    let h = LocalHost::new("old", None);
    let (out, lines) = run(
        &h,
        &CommandSpec::new(Program::Argv(vec!["echo".into(), "$(id); ls".into()])),
    );
    assert_eq!(out.exit.code, Some(0));
    assert_eq!(lines[0].1, "$(id); ls");
}

#[test]
fn output_without_newlines_arrives_in_bounded_pieces() {
    let h = LocalHost::new("old", None);
    let (out, lines) = run(
        &h,
        &CommandSpec::new(Program::Shell(
            "head -c 200000 /dev/zero | tr '\\0' x".into(),
        )),
    );
    assert_eq!(out.exit.code, Some(0));
    assert!(lines.iter().all(|(_, l)| l.len() <= MAX_LINE));
    assert_eq!(lines.iter().map(|(_, l)| l.len()).sum::<usize>(), 200_000);
}

#[test]
fn a_line_of_exactly_max_line_bytes_is_one_line() {
    let h = LocalHost::new("old", None);
    let (_, lines) = run(
        &h,
        &CommandSpec::new(Program::Shell(format!(
            "head -c {MAX_LINE} /dev/zero | tr '\\0' x; echo; echo next"
        ))),
    );
    let lens: Vec<usize> = lines.iter().map(|(_, l)| l.len()).collect();
    assert_eq!(lens, vec![MAX_LINE, 4]);
}

#[test]
fn carriage_returns_end_lines_only_when_asked() {
    let h = LocalHost::new("old", None);
    let mut spec = CommandSpec::new(Program::Shell("printf 'a\\rb\\rc\\n'".into()));
    let (_, lines) = run(&h, &spec);
    assert_eq!(lines, [(OutputStream::Stdout, "a\rb\rc".to_owned())]);
    spec.cr_ends_line = true;
    let (_, lines) = run(&h, &spec);
    let texts: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(texts, ["a", "b", "c"]);
}
