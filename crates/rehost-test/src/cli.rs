//! A fluent builder for tests of a command-line program, after just's `Test`: lay out files
//! (the plan, trees), give the arguments, environment and standard input, run, and state the
//! exit code and what standard output and error must be, hold or lack. A failure names every
//! expectation that failed and shows the command and its whole output.
//!
//! ```text
//! let ran = test()
//!     .file("plan.toml", plan(STEPS))
//!     .args(["check", "plan.toml"])
//!     .stdout_has("no M 2.319 findings")
//!     .code(0);
//! snap!(ran); // the whole output, filtered (`snapshot`)
//! ```

use crate::{Output, TestDir};
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The directory a test runs in: its own, or one a test shares between several commands.
pub enum Dir<'d> {
    Owned(TestDir),
    Borrowed(&'d TestDir),
}

impl Dir<'_> {
    pub fn get(&self) -> &TestDir {
        match self {
            Dir::Owned(d) => d,
            Dir::Borrowed(d) => d,
        }
    }
}

impl std::ops::Deref for Dir<'_> {
    type Target = TestDir;
    fn deref(&self) -> &TestDir {
        self.get()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stream {
    Stdout,
    Stderr,
    /// Either: for what must never be printed anywhere.
    Both,
}

#[derive(Debug, Clone)]
enum Want {
    Exact(String),
    Has(String),
    Lacks(String),
}

/// A command to run, with what it must do. Nothing runs until [`Test::code`].
#[must_use = "a Test does nothing until .code(N) or .success() runs it"]
pub struct Test<'d> {
    bin: PathBuf,
    dir: Dir<'d>,
    cwd: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    env_remove: Vec<OsString>,
    stdin: Option<Vec<u8>>,
    wants: Vec<(Stream, Want)>,
}

impl Test<'static> {
    /// `bin` in a new temporary directory of its own.
    pub fn new(bin: &Path) -> Test<'static> {
        Test::with_dir(bin, Dir::Owned(TestDir::new()))
    }
}

impl<'d> Test<'d> {
    /// `bin` in `dir`, which the test keeps (to run another command there afterwards).
    pub fn in_dir(bin: &Path, dir: &'d TestDir) -> Test<'d> {
        Test::with_dir(bin, Dir::Borrowed(dir))
    }

    pub fn with_dir(bin: &Path, dir: Dir<'d>) -> Test<'d> {
        Test {
            bin: bin.to_path_buf(),
            dir,
            cwd: PathBuf::new(),
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            stdin: None,
            wants: Vec::new(),
        }
    }

    /// The test's directory (to lay out more, or to name a path in an argument).
    pub fn dir(&self) -> &TestDir {
        self.dir.get()
    }

    /// Writes a file relative to the test's directory, creating its parents.
    pub fn file(self, rel: &str, content: impl AsRef<[u8]>) -> Self {
        self.dir.write(rel, content);
        self
    }

    /// Runs in this directory, relative to the test's (default: the test's directory).
    pub fn current_dir(mut self, rel: impl AsRef<Path>) -> Self {
        self.cwd = rel.as_ref().to_path_buf();
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env_remove.push(key.as_ref().to_os_string());
        self
    }

    /// Standard input (default: none, `/dev/null`).
    pub fn stdin(mut self, input: impl AsRef<[u8]>) -> Self {
        self.stdin = Some(input.as_ref().to_vec());
        self
    }

    /// Standard output must be exactly this.
    pub fn stdout(mut self, exact: impl Into<String>) -> Self {
        self.wants.push((Stream::Stdout, Want::Exact(exact.into())));
        self
    }

    /// Standard error must be exactly this.
    pub fn stderr(mut self, exact: impl Into<String>) -> Self {
        self.wants.push((Stream::Stderr, Want::Exact(exact.into())));
        self
    }

    /// Standard output must contain this.
    pub fn stdout_has(mut self, part: impl Into<String>) -> Self {
        self.wants.push((Stream::Stdout, Want::Has(part.into())));
        self
    }

    /// Standard error must contain this.
    pub fn stderr_has(mut self, part: impl Into<String>) -> Self {
        self.wants.push((Stream::Stderr, Want::Has(part.into())));
        self
    }

    /// Neither stream may contain this: a credential, an unescaped control character.
    pub fn never_prints(mut self, part: impl Into<String>) -> Self {
        self.wants.push((Stream::Both, Want::Lacks(part.into())));
        self
    }

    /// Standard output must not contain this.
    pub fn stdout_lacks(mut self, part: impl Into<String>) -> Self {
        self.wants.push((Stream::Stdout, Want::Lacks(part.into())));
        self
    }

    /// Standard error must not contain this.
    pub fn stderr_lacks(mut self, part: impl Into<String>) -> Self {
        self.wants.push((Stream::Stderr, Want::Lacks(part.into())));
        self
    }

    /// Runs and checks that it exited 0 and did what was asked.
    #[track_caller]
    pub fn success(self) -> Ran<'d> {
        self.code(0)
    }

    /// Runs and checks that it exited with `code` and did what was asked.
    #[track_caller]
    pub fn code(self, code: i32) -> Ran<'d> {
        let ran = self.run_unchecked();
        let mut failed = Vec::new();
        if ran.out.code != code {
            failed.push(format!("exit code {}, not {code}", ran.out.code));
        }
        for (stream, want) in &ran.wants {
            let (name, text) = match stream {
                Stream::Stdout => ("stdout", ran.out.stdout.clone()),
                Stream::Stderr => ("stderr", ran.out.stderr.clone()),
                Stream::Both => ("the output", ran.out.all()),
            };
            match want {
                Want::Exact(s) if text != *s => {
                    failed.push(format!("{name} is not exactly:\n{}", block(s)))
                }
                Want::Has(s) if !text.contains(s.as_str()) => {
                    failed.push(format!("{name} lacks {s:?}"))
                }
                Want::Lacks(s) if text.contains(s.as_str()) => {
                    failed.push(format!("{name} contains {s:?}"))
                }
                _ => {}
            }
        }
        if !failed.is_empty() {
            panic!("{}\n{}", failed.join("\n"), ran.describe());
        }
        ran
    }

    /// Runs and returns what happened, checking nothing.
    pub fn run_unchecked(self) -> Ran<'d> {
        let cwd = self.dir.path().join(&self.cwd);
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args)
            .current_dir(&cwd)
            .env("NO_COLOR", "1")
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for k in &self.env_remove {
            cmd.env_remove(k);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {}: {e}", self.bin.display()));
        if let Some(input) = &self.stdin {
            let mut s = child.stdin.take().expect("piped stdin");
            // A command that exits before reading all of it is not this builder's failure.
            let _ = s.write_all(input);
        }
        let out = child.wait_with_output().expect("wait for the command");
        let name = self
            .bin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut command = name;
        for a in &self.args {
            let a = a.to_string_lossy();
            // Only for reading: an argument with a space shown as one.
            if a.is_empty() || a.contains(char::is_whitespace) {
                let _ = write!(command, " {a:?}");
            } else {
                let _ = write!(command, " {a}");
            }
        }
        Ran {
            bin: self.bin,
            dir: self.dir,
            command,
            wants: self.wants,
            out: Output {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
        }
    }
}

/// A command that ran: its output, and the directory it ran in.
pub struct Ran<'d> {
    bin: PathBuf,
    dir: Dir<'d>,
    wants: Vec<(Stream, Want)>,
    /// The command line, as the snapshot's description and failure messages show it.
    pub command: String,
    pub out: Output,
}

impl<'d> Ran<'d> {
    pub fn dir(&self) -> &TestDir {
        self.dir.get()
    }

    pub fn stdout(&self) -> &str {
        &self.out.stdout
    }

    pub fn stderr(&self) -> &str {
        &self.out.stderr
    }

    /// The next command, in the same directory.
    pub fn then(self) -> Test<'d> {
        Test::with_dir(&self.bin, self.dir)
    }

    /// The exit code and both streams, as one text: what a snapshot of a command shows.
    pub fn shown(&self) -> String {
        let mut s = format!("exit code: {}\n", self.out.code);
        let _ = write!(s, "----- stdout -----\n{}", self.out.stdout);
        if !self.out.stdout.is_empty() && !self.out.stdout.ends_with('\n') {
            s.push_str("\n[no newline at the end]\n");
        }
        let _ = write!(s, "----- stderr -----\n{}", self.out.stderr);
        if !self.out.stderr.is_empty() && !self.out.stderr.ends_with('\n') {
            s.push_str("\n[no newline at the end]\n");
        }
        s
    }

    /// insta's settings for a snapshot of this command's output: the filters of
    /// [`crate::snapshot`] with its directory, the command line as the description.
    pub fn settings(&self) -> insta::Settings {
        crate::snapshot::settings(&[self.dir.path()], &self.command)
    }

    /// The command and its whole output, for a failure message.
    pub fn describe(&self) -> String {
        format!(
            "command: {}\nin: {}\nexit code: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command,
            self.dir.path().display(),
            self.out.code,
            block(&self.out.stdout),
            block(&self.out.stderr)
        )
    }
}

fn block(s: &str) -> String {
    if s.is_empty() {
        "(empty)".into()
    } else {
        s.trim_end_matches('\n').to_string()
    }
}
