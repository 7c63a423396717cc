//! Integration tests of the `rehost` binary: what a user sees, through the real program.

mod agent;
mod archive;
mod check;
mod concept;
mod confirm;
mod db;
mod db_engines;
mod downtime;
mod isolation;
mod keys;
mod outputs;
mod plan_lint;
mod preflight;
mod report;
mod resume;
mod run;
mod security;
mod services;
mod signing;
mod ssh;
mod state;
mod support;
mod tidy;
mod tree;
mod verify_files;
mod view;
