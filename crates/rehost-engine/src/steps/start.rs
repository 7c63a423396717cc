//! `start`: a declared service started with its `start` command (see `service.rs`).

use super::Executor;

pub(super) static EXECUTOR: Executor = Executor {
    kind: "start",
    rollback: None,
    execute: super::service::execute,
    needs: super::service::needs,
};
