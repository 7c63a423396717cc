//! Errors of database verification.

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The connection string could not be understood.
    #[error("{0}")]
    Url(String),
    /// A query failed or the client could not run: the server's or client's own message.
    #[error("failed to query {target}: {message}")]
    Query { target: String, message: String },
    /// The server answered something this crate cannot read.
    #[error("failed to read the answer of {target}: {message}")]
    Answer { target: String, message: String },
    #[error("interrupted")]
    Cancelled,
}
