//! Diagnostics: errors and findings that point at a plan line.

use rehost_tree::escape::text as escape_control;
use serde::Serialize;
use std::ops::Range;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The plan cannot be used as written.
    Error,
    /// An M 2.319 lint finding.
    Finding,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable identifier: `parse`, `unknown-key`, `type`, … for errors; the rule id for
    /// findings.
    pub code: &'static str,
    pub message: String,
    /// Where in the plan text (bytes).
    pub span: Option<Range<usize>>,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(
        code: &'static str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span,
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Turns byte offsets into lines and columns, and shows the offending line.
pub struct SourceMap<'a> {
    src: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> SourceMap<'a> {
    pub fn new(src: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        SourceMap { src, line_starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.src.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let col = self.src[start..offset].chars().count() + 1;
        (line + 1, col)
    }

    /// The text of a 1-based line, without its newline.
    pub fn line_text(&self, line: usize) -> &'a str {
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .map_or(self.src.len(), |&e| e - 1);
        self.src[start..end].trim_end_matches('\r')
    }

    /// Renders a diagnostic as `file:line:col: error[code]: message`, the offending line with a
    /// caret under the span, and the help.
    pub fn render(&self, file: &str, d: &Diagnostic) -> String {
        let kind = match d.severity {
            Severity::Error => "error",
            Severity::Finding => "finding",
        };
        let mut out = String::new();
        let file = escape_control(file);
        let message = escape_control(&d.message);
        match &d.span {
            Some(span) => {
                let (line, col) = self.line_col(span.start);
                out.push_str(&format!(
                    "{file}:{line}:{col}: {kind}[{}]: {message}\n",
                    d.code
                ));
                // The line as shown: any credential in it masked (`credential-in-plan`), the
                // caret placed on the masked text.
                let start = self.line_starts[line - 1];
                let (text, at) = crate::lint::mask_credentials(self.line_text(line));
                let column = |offset: usize| {
                    let i = at(offset.saturating_sub(start)).min(text.len());
                    text.get(..i).map_or(i, |t| t.chars().count()) + 1
                };
                let col = column(span.start);
                let (end_line, _) = self.line_col(span.end);
                let width = if end_line == line {
                    column(span.end).saturating_sub(col).max(1)
                } else {
                    text.chars().count().saturating_sub(col - 1).max(1)
                };
                let gutter = line.to_string();
                // Whatever else the redaction rules know (`--token X`, `Bearer X`, …) is
                // masked too: a plan line is shown, never a secret in it. The caret then
                // points near, not exactly at, what it names.
                let text = crate::redact::redact(&text);
                out.push_str(&format!("{gutter} | {}\n", escape_control(&text)));
                out.push_str(&format!(
                    "{} | {}{}\n",
                    " ".repeat(gutter.len()),
                    " ".repeat(col - 1),
                    "^".repeat(width.min(80))
                ));
            }
            None => out.push_str(&format!("{file}: {kind}[{}]: {message}\n", d.code)),
        }
        if let Some(help) = &d.help {
            out.push_str(&format!("  help: {}\n", escape_control(help)));
        }
        out
    }
}
