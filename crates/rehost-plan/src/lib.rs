//! The migration plan: the M 2.319 migration concept as a file.
//!
//! This crate does no IO. It parses `plan.toml` text into a [`Plan`], validates it (references,
//! the order of the checklist), lints it against M 2.319. The concept for sign-off is rendered from it
//! by `rehost-evidence`. Everything is a pure function over data, so the rules are tested with data.

mod diag;
mod kinds;
mod lint;
mod model;
mod read;
mod redact;
mod suggest;
mod todo;
mod validate;

pub use diag::{Diagnostic, Severity, SourceMap};
pub use kinds::{
    Description, KINDS, Key, KindSpec, Part, Reference, describe, implied_effects,
    reference as kinds_reference, references, service_of, spec,
};
pub use lint::{ExcludedPath, RULES, Rule, excluded_named_paths, key_not_carried_reason};
pub use model::*;
pub use redact::{is_secret_name, redact};
/// The one escaper for text lines (`rehost_tree::escape::text`), under the name the crates
/// that print have always used.
pub use rehost_tree::escape::text as escape_control;
pub use todo::{TODO, is_todo};

/// The result of checking a plan: the plan if it could be read, its errors (which make it
/// unusable) and its M 2.319 findings (which a rehearsal tolerates and production must accept).
#[derive(Debug)]
pub struct Checked {
    pub plan: Option<Plan>,
    pub errors: Vec<Diagnostic>,
    pub findings: Vec<Diagnostic>,
}

impl Checked {
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty() && self.plan.is_some()
    }
}

/// Parses, validates and lints plan text. All errors are collected, not just the first.
///
/// A value still to be decided (`"TODO: …"`, as the draft plan of `rehost survey -o` writes
/// them) is an error of its own (`todo`) on its line; while one stands, what reading and
/// validation say about the placeholder itself is left out, and the lint waits for the plan to
/// be complete like for any other error.
pub fn check(src: &str) -> Checked {
    let (plan, mut errors, todos) = read::read(src);
    let Some(plan) = plan else {
        return Checked {
            plan: None,
            errors,
            findings: Vec::new(),
        };
    };
    errors.extend(validate::validate(&plan));
    errors.retain(|d| !todo::about_todo(&todos, d.span.as_ref()));
    errors.extend(todos.iter().map(todo::Todo::diagnostic));
    errors.sort_by_key(|d| d.span.as_ref().map(|s| s.start));
    let findings = if errors.is_empty() {
        lint::lint(&plan, src)
    } else {
        Vec::new()
    };
    Checked {
        plan: Some(plan),
        errors,
        findings,
    }
}

/// The digest that identifies a plan's text in the journal (BLAKE3, hex).
pub fn digest(src: &str) -> String {
    blake3::hash(src.as_bytes()).to_hex().to_string()
}

#[cfg(test)]
mod tests;
