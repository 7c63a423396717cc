//! Errors of the tree crate. Messages are lowercase fragments that read after "failed to".

use std::io;
use std::path::PathBuf;

/// Something that stops a whole walk, comparison or transfer. Per-entry trouble (an unreadable
/// file, a file that vanished) is not an error: it is recorded in the manifest and reported as
/// unverified.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("open tree root {}: {source}", path.display())]
    Root { path: PathBuf, source: io::Error },
    #[error("walk {}: root is not a directory", path.display())]
    RootNotDir { path: PathBuf },
    #[error("read manifest {}: {source}", path.display())]
    ReadManifest { path: PathBuf, source: io::Error },
    #[error("parse manifest {} line {line}: {msg}", path.display())]
    ParseManifest {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("check manifest {}: {msg}; refused whole", path.display())]
    InvalidManifest { path: PathBuf, msg: String },
    #[error(
        "check manifest {}: whole-manifest digest does not match (file corrupted or edited)",
        path.display()
    )]
    ManifestDigest { path: PathBuf },
    #[error("write manifest {}: {source}", path.display())]
    WriteManifest { path: PathBuf, source: io::Error },
    #[error("parse exclude pattern {pattern:?}: {msg}")]
    Glob { pattern: String, msg: String },
    #[error("start worker threads: {0}")]
    Threads(String),
    #[error("finish: interrupted")]
    Cancelled,
    #[error("transfer {}: {source}", path.display())]
    Transfer { path: PathBuf, source: io::Error },
    #[error("run rsync: {0}")]
    Rsync(String),
}

impl From<rehost_glob::GlobError> for TreeError {
    fn from(e: rehost_glob::GlobError) -> Self {
        TreeError::Glob {
            pattern: e.pattern,
            msg: e.msg,
        }
    }
}

impl TreeError {
    pub(crate) fn transfer(path: impl Into<PathBuf>, source: io::Error) -> Self {
        TreeError::Transfer {
            path: path.into(),
            source,
        }
    }
}
