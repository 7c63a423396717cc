//! What a host is asked to run, and what came of it.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The program of a `run` step: an argument vector (no shell involved) or a shell string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Program {
    Argv(Vec<String>),
    Shell(String),
}

impl Program {
    /// The argument vector actually executed: a shell string runs as `sh -c STRING`.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Program::Argv(argv) => argv.clone(),
            Program::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
        }
    }

    /// A short display form for messages: the program's name only. A command line is never
    /// repeated in a message (it may carry credentials, `PGPASSWORD=… pg_dump`); the caller
    /// names the step it belongs to.
    pub fn display(&self) -> String {
        match self {
            Program::Argv(argv) => argv.first().cloned().unwrap_or_default(),
            Program::Shell(_) => "sh -c …".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandSpec {
    pub program: Program,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    pub timeout: Option<Duration>,
    /// A carriage return also ends a line, so progress meters that redraw one line (rsync's
    /// `--info=progress2`) arrive as they are drawn, not when the command ends.
    #[serde(default)]
    pub cr_ends_line: bool,
}

impl CommandSpec {
    pub fn new(program: Program) -> Self {
        CommandSpec {
            program,
            env: Vec::new(),
            timeout: None,
            cr_ends_line: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit status {c}"),
            (None, Some(s)) => write!(f, "killed by signal {s}"),
            (None, None) => write!(f, "unknown exit"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutcome {
    pub exit: ExitInfo,
    pub timed_out: bool,
    pub cancelled: bool,
}
