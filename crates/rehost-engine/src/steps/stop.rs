//! `stop`: a declared service stopped with its `stop` command (see `service.rs`).

use super::Executor;

pub(super) static EXECUTOR: Executor = Executor {
    kind: "stop",
    rollback: None,
    execute: super::service::execute,
    needs: super::service::needs,
};
