//! `health`: wait until a declared service answers (see `service.rs`).

use super::Executor;

pub(super) static EXECUTOR: Executor = Executor {
    kind: "health",
    rollback: None,
    execute: super::service::execute,
    needs: super::service::needs,
};
