//! Snapshot tests of whole outputs (`insta`): the filters that take out of an output what
//! varies between runs and machines, so that a snapshot shows everything else and a reviewer
//! sees the whole output in the diff.
//!
//! What is filtered, and what it becomes: the test's directories (`[DIR]`) and other temporary
//! paths (`[TMP]`), times — RFC 3339 with a fraction, as the journal writes them, and the
//! report's `2026-01-02 03:04:05.678 UTC` — (`[TIME]`), durations (`[DURATION]`; `"…_ms": [MS]`
//! in JSON), 64-digit hex digests (`[B3]`), the size of a kept file beside its digest
//! (`[SIZE]`), the report timeline's bar positions, the HTML's stylesheet, the progress lines
//! of copies and walks (how many there are depends on timing), versions of rehost and rsync
//! (`[VERSION]`), loopback ports (`[PORT]`), PIDs (`[PID]`), the user and host name where the
//! evidence names who ran it (`[USER]`, `[HOST]`), and a manifest line's times, device and
//! inode. Times written in a plan (no fraction), byte counts of trees and budgets stay.
//!
//! On a mismatch the test fails (in CI, and under `bash scripts/test`, no file is written:
//! `INSTA_UPDATE=no`). To look at and accept a change: `cargo insta review` (with
//! cargo-insta), or run the test with `INSTA_UPDATE=always` and read `git diff`.

use std::path::{Path, PathBuf};

/// Filters in the order they are applied: paths first (a path may hold anything), then the
/// rest. Each is a regular expression and its replacement (`$1` for a group).
pub fn filters(dirs: &[&Path]) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = Vec::new();
    let mut add = |re: &str, with: &str| f.push((re.to_string(), with.to_string()));

    // The test's own directories, as given and canonical (the longest first, so a directory
    // inside another is named by itself).
    let mut paths: Vec<PathBuf> = Vec::new();
    for d in dirs {
        paths.push(d.to_path_buf());
        if let Ok(c) = d.canonicalize() {
            paths.push(c);
        }
    }
    paths.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    paths.dedup();
    for p in &paths {
        add(&regex::escape(&p.to_string_lossy()), "[DIR]");
    }
    add(r"/tmp/rehost-[\w.-]+", "[TMP]");
    add(r"\brehost-demo-\d+\b", "rehost-demo-[PID]");

    // Times: the journal's RFC 3339 (always with a fraction) and the report's.
    add(
        r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+(Z|[+-]\d{2}:\d{2})",
        "[TIME]",
    );
    add(
        r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} UTC\b",
        "[TIME]",
    );
    // A manifest line: `#- KIND MODE UID GID SIZE MTIME CTIME DEV INO …`.
    add(
        r"(?m)^#([-+]) (\S+) (\S+) (\S+) (\S+) (\S+) \d+\.\d+ \d+\.\d+ [0-9a-f]+ \d+ ",
        "#$1 $2 $3 $4 $5 $6 [MTIME] [CTIME] [DEV] [INO] ",
    );

    // Digests, and the size printed beside a kept file's digest (logs hold rsync's progress,
    // manifests hold times and inodes).
    // Other times as seconds and nanoseconds since the epoch (a finding's mtimes).
    add(r"\b\d{9,11}\.\d{9}\b", "[MTIME]");
    add(r"\b[0-9a-f]{64}\b", "[B3]");
    add(r"\(\d+ bytes, BLAKE3", "([SIZE] bytes, BLAKE3");
    add(
        r#""bytes":( ?)\d+,(\s*)"blake3""#,
        r#""bytes":$1[SIZE],$2"blake3""#,
    );

    // Progress lines of copies and walks (rsync's percentages, the built-in copy's and the
    // walk's counts): how many arrive depends on timing.
    let progress = r"(\d+% \(|source: |copied \d+ entries|\d+ entries listed)";
    add(&format!(r"(?m)^ *… {progress}.*\n"), "");
    add(
        &format!(r#"(?m)^\{{"event":"progress","id":"[^"]*","message":"{progress}.*\n"#),
        "",
    );

    // Durations: `0.1s`, `278ms`, `+1.2s` (whole seconds and minutes as a plan writes them,
    // `1s`, `15m`, stay), and the measured milliseconds in JSON.
    add(r"\b\d+m ?\d{2}s\b", "[DURATION]");
    add(r"\b\d+\.\d+s\b", "[DURATION]");
    add(r"\b\d+ms\b", "[DURATION]");
    // A measured duration of whole seconds (a downtime of exactly 1,000 ms is `1s`), where a
    // measured one stands; a plan's `1s` stays.
    add(r"\b(downtime|took|in) \d+s\b", "$1 [DURATION]");
    add(
        r#""(elapsed_ms|ms|total_ms|downtime_ms|measured_ms|declared_ms|probed_ms)":( ?)\d+"#,
        r#""$1":$2[MS]"#,
    );
    // The HTML report's timeline: where a bar is comes from the times.
    add(r"left:[\d.]+%;width:[\d.]+%", "left:[X]%;width:[W]%");
    add(r"(?s)<style>.*?</style>", "<style>[STYLESHEET]</style>");

    // Versions.
    let version = regex::escape(env!("CARGO_PKG_VERSION"));
    add(&format!(r"\brehost {version}\b"), "rehost [VERSION]");
    add(
        &format!(r#""(rehost_version|version)":( ?)"{version}""#),
        r#""$1":$2"[VERSION]""#,
    );
    add(r"\brsync( version)? \d+\.\d+\.\d+\b", "rsync$1 [VERSION]");
    add(
        r"\bPostgreSQL \d+\.\d+( \([^)]*\))?",
        "PostgreSQL [VERSION]",
    );
    add(
        r#""(old|new)_version":( ?)"[^"]*""#,
        r#""${1}_version":$2"[VERSION]""#,
    );

    // Ports on loopback, PIDs.
    add(r"\b(127\.0\.0\.1|localhost|\[::1\]):\d+\b", "$1:[PORT]");
    add(r"\bpid \d+\b", "pid [PID]");
    add(r#""pid":( ?)\d+"#, r#""pid":$1[PID]"#);

    // Who ran it, where the evidence says so (the names alone are too short to replace
    // everywhere: a host called `vm`, a user called `root`).
    let user = regex::escape(&user_name());
    let host = regex::escape(&host_name());
    add(
        &format!(r"\bby {user} \(from {host}\b"),
        "by [USER] (from [HOST]",
    );
    add(&format!(r"\| Ran as \| {user} \|"), "| Ran as | [USER] |");
    add(
        &format!(r"\bto confirm as {user}\b"),
        "to confirm as [USER]",
    );
    add(&format!(r"\bconfirmed by {user}\b"), "confirmed by [USER]");
    add(
        &format!(r"<td>Ran as</td><td>{user}</td>"),
        "<td>Ran as</td><td>[USER]</td>",
    );
    add(&format!(r#""user":( ?)"{user}""#), r#""user":$1"[USER]""#);
    add(
        &format!(r#""operator_host":( ?)"{host}""#),
        r#""operator_host":$1"[HOST]""#,
    );
    f
}

/// insta's settings for a snapshot of what a command printed in `dirs`: the filters above,
/// and `description` (the command line) in the snapshot's header, filtered the same way and
/// with a password in a URL masked. (Only there: a password in the output must fail its
/// test's explicit assertion, not vanish behind a filter.)
pub fn settings(dirs: &[&Path], description: &str) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    let mut description = description.to_string();
    for (re, with) in filters(dirs) {
        let r = regex::Regex::new(&re).expect("a valid filter");
        description = r.replace_all(&description, with.as_str()).into_owned();
        s.add_filter(&re, with);
    }
    let password = regex::Regex::new(r"://([^:/@\s]+):[^@/\s]+@").expect("a valid pattern");
    let description = password.replace_all(&description, "://$1:[PASSWORD]@");
    s.set_description(description);
    s.set_omit_expression(true);
    s
}

/// Runs `assert` (an `insta::assert_snapshot!`) under `settings`; on a mismatch, says how to
/// review and accept before failing.
pub fn check(settings: &insta::Settings, assert: impl FnOnce()) {
    let r = settings.bind(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(assert)));
    if let Err(e) = r {
        eprintln!(
            "the output differs from its snapshot (the .snap file named above): review with \
             `cargo insta review`, or run this test again with INSTA_UPDATE=always and read \
             `git diff`; a snapshot that shows a credential, or loses an escape, is a bug, not \
             a new snapshot"
        );
        std::panic::resume_unwind(e);
    }
}

/// The user a run records, as rehost finds it: `SUDO_USER`, `USER`, `LOGNAME`, else the
/// password database.
pub fn user_name() -> String {
    for var in ["SUDO_USER", "USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var) {
            return v;
        }
    }
    // SAFETY: getpwuid returns a pointer into static storage or null; read at once.
    unsafe {
        let uid = libc::getuid();
        let pw = libc::getpwuid(uid);
        if pw.is_null() || (*pw).pw_name.is_null() {
            return format!("uid {uid}");
        }
        std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

/// This machine's host name.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it when
    // the name fits.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(dirs: &[&Path], text: &str) -> String {
        let mut out = text.to_string();
        for (re, with) in filters(dirs) {
            out = regex::Regex::new(&re)
                .unwrap()
                .replace_all(&out, with.as_str())
                .into_owned();
        }
        out
    }

    #[test]
    fn what_varies_is_replaced_and_what_a_plan_says_stays() {
        let dir = Path::new("/tmp/rehost-test-AbC123");
        let text = "\
/tmp/rehost-test-AbC123/plan.toml started 2026-12-06T22:52:55.039789055Z
done in 0.1s, 278ms, (took 12s); downtime 1s of the 15m budget; wait 1s
head ae07e8a3404abafd444039d23bb6baf451a63b0e79cda26bb4904c26ca5d5d4e
`output/0001-seed.1.log` (31 bytes, BLAKE3 `x`) at 2026-12-06 22:52:55.040 UTC
      … 8% (22 bytes)
{\"event\":\"step_finished\",\"elapsed_ms\":26}
window = { start = \"2026-01-01T00:00:00+01:00\" }
";
        assert_eq!(
            apply(&[dir], text),
            "\
[DIR]/plan.toml started [TIME]
done in [DURATION], [DURATION], (took [DURATION]); downtime [DURATION] of the 15m budget; wait 1s
head [B3]
`output/0001-seed.1.log` ([SIZE] bytes, BLAKE3 `x`) at [TIME]
{\"event\":\"step_finished\",\"elapsed_ms\":[MS]}
window = { start = \"2026-01-01T00:00:00+01:00\" }
"
        );
    }

    /// A filter must never hide a leak: a password printed in an output stays in the snapshot
    /// (and fails the test's explicit assertion); only the description masks the test's own.
    #[test]
    fn a_password_in_the_output_is_not_filtered() {
        let text = "new: postgres://app:hunter2@127.0.0.1:5432/app PGPASSWORD=hunter2";
        let out = apply(&[], text);
        assert!(out.contains("app:hunter2@"), "{out}");
        assert!(out.contains("PGPASSWORD=hunter2"), "{out}");
        assert!(out.contains("127.0.0.1:[PORT]"), "{out}");
    }
}
