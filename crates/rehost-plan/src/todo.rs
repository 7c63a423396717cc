//! Values still to be decided: a string value that begins with `TODO` (`"TODO: the new
//! server, user@host"`) is a placeholder that a person must replace, as the draft plan of
//! `rehost survey -o` writes them. Each is an error of its own (`todo`) pointing at its line;
//! what the reader and validation would say about the placeholder itself (not a duration, not
//! a table) is left out while it stands, since it says nothing until the value is decided.

use crate::diag::Diagnostic;
use crate::model::Span;
use toml::de::{DeTable, DeValue};

/// What a placeholder value begins with.
pub const TODO: &str = "TODO";

/// A placeholder: its key path (`migration.window`, `steps[4].until`), its span, its text.
#[derive(Clone, Debug)]
pub(crate) struct Todo {
    pub key: String,
    pub span: Span,
    pub text: String,
}

/// Whether a string is a placeholder: `TODO` at its start, then nothing, blank or a colon.
pub fn is_todo(s: &str) -> bool {
    s.trim_start()
        .strip_prefix(TODO)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', ' ', '\t']))
}

/// Every placeholder in the plan's tree, in the order written.
pub(crate) fn find(root: &DeTable<'_>) -> Vec<Todo> {
    let mut out = Vec::new();
    table(root, "", &mut out);
    out.sort_by_key(|t| t.span.start);
    out
}

fn table(t: &DeTable<'_>, at: &str, out: &mut Vec<Todo>) {
    for (k, v) in t.iter() {
        let key = if at.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{at}.{}", k.get_ref())
        };
        value(v.get_ref(), v.span(), key, out);
    }
}

fn value(v: &DeValue<'_>, span: Span, key: String, out: &mut Vec<Todo>) {
    match v {
        DeValue::String(s) if is_todo(s) => out.push(Todo {
            key,
            span,
            text: s.trim_start()[TODO.len()..]
                .trim_start_matches([':', ' ', '\t'])
                .to_owned(),
        }),
        DeValue::Table(t) => table(t, &key, out),
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                value(item.get_ref(), item.span(), format!("{key}[{i}]"), out);
            }
        }
        _ => {}
    }
}

impl Todo {
    pub(crate) fn diagnostic(&self) -> Diagnostic {
        let what = if self.text.is_empty() {
            String::new()
        } else {
            format!(": {}", crate::escape_control(&self.text))
        };
        Diagnostic::error(
            "todo",
            Some(self.span.clone()),
            format!(
                "`{}` is still to be decided{what}",
                crate::escape_control(&self.key)
            ),
        )
        .with_help("decide it and edit this line: replace the TODO string with the value")
    }
}

/// Whether a diagnostic is about a placeholder itself: its span lies inside one (not a
/// duration, not a table, not a time). Anything else, even in the same table, is still said.
pub(crate) fn about_todo(todos: &[Todo], span: Option<&Span>) -> bool {
    let Some(s) = span else {
        return false;
    };
    todos
        .iter()
        .any(|t| s.start >= t.span.start && s.end <= t.span.end)
}
