//! Errors from reaching hosts and running work on them.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("failed to start `{program}` on host {host}: {source}")]
    Spawn {
        host: String,
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to wait for `{program}` on host {host}: {source}")]
    Wait {
        host: String,
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to use root directory {} of host {host}: {source}", root.display())]
    Root {
        host: String,
        root: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("host {host}: {what} are not supported yet")]
    Unsupported { host: String, what: String },
    #[error("empty command for host {host}: give `argv` or `command`")]
    EmptyCommand { host: String },
}
