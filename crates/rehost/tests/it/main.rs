//! Integration tests of the `rehost` binary: what a user sees, through the real program.

mod check;
mod concept;
mod isolation;
mod resume;
mod run;
mod ssh;
mod support;
mod tree;
