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
    #[error("check manifest {}: {source}; refused whole", path.display())]
    InvalidManifest {
        path: PathBuf,
        source: Box<BadManifest>,
    },
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

/// Why a manifest is not one a walk could have produced ([`crate::Manifest::check`]): it is
/// refused whole. Paths are shown escaped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadManifest {
    #[error("entry {0} is not a path inside the tree")]
    OutsideTree(String),
    #[error("entries are not sorted by path, or {0} appears twice")]
    Unsorted(String),
    #[error("the root entry is not the first")]
    RootNotFirst,
    #[error("{path} is under {parent}, which is not a directory")]
    UnderNonDirectory { path: String, parent: String },
    #[error("{path} is under {parent}, which the manifest does not list")]
    UnderUnlisted { path: String, parent: String },
    #[error("{0} is under a root that is not a directory")]
    UnderNonDirectoryRoot(String),
    #[error("{path} has hard-link index {link}, which is not the first file of its group")]
    HardLink { path: String, link: u32 },
}

/// A path that is not one below a tree's root ([`crate::only_path`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a path below the root (relative, no empty, `.` or `..` part)")]
pub struct NotBelowRoot(pub String);

/// A class name `--ignore` does not take ([`crate::Class::parse_ignorable`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NotIgnorable {
    message: String,
}

impl NotIgnorable {
    pub(crate) fn new(message: String) -> Self {
        NotIgnorable { message }
    }
}
