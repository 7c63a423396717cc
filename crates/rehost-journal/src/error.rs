//! Errors in using the state directory. Each names what failed and what to do next.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("failed to use state directory {}: {source}", path.display())]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "refusing the state directory: {0}. It holds the journal and the outputs, so only a directory of the user running rehost that no one else can write is used: move it aside, fix its owner and mode (chown, chmod 700), or choose another with --state"
    )]
    UnsafeState(rehost_tree::private::PrivateError),
    #[error("failed to read {}: {source}", path.display())]
    JournalRead {
        path: PathBuf,
        #[source]
        source: rehost_tree::private::PrivateError,
    },
    #[error("failed to write journal {}: {source}", path.display())]
    JournalWrite {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "journal {} is corrupt at line {line}: {reason}; that is not a torn write (which leaves the last line without its newline). Nothing was run. `rehost status --verify` lists every problem; keep the file as evidence, inspect it, and move it aside to start the run afresh",
        path.display()
    )]
    JournalCorrupt {
        path: PathBuf,
        line: usize,
        reason: crate::journal::BadLine,
    },
    #[error(
        "failed to read the plan snapshot {}: {reason}; run `rehost status --verify` to check the state directory",
        file.display()
    )]
    Snapshot { file: PathBuf, reason: String },
    #[error("another `rehost run` of this plan ({env}) is running{}; wait for it to end, or end it", match pid { Some(p) => format!(" (pid {p})"), None => String::new() })]
    Locked { env: String, pid: Option<u32> },
}

impl JournalError {
    /// A refused state directory, or trouble using it.
    pub fn from_private(e: rehost_tree::private::PrivateError) -> JournalError {
        match e {
            rehost_tree::private::PrivateError::Io { path, source } => {
                JournalError::State { path, source }
            }
            e => JournalError::UnsafeState(e),
        }
    }
}
