//! Sinks of engine events: the terminal view and JSON lines. Both see the same events.

use crate::term;
use rehost_engine::{Event, Sink, StepResult};
use std::io::Write;

/// JSON lines on standard output, one event per line.
pub struct JsonSink;

impl Sink for JsonSink {
    fn emit(&mut self, event: &Event) {
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer(&mut out, event);
        let _ = writeln!(out);
        let _ = out.flush();
    }
}

/// The human view: a line per step, its output indented with the host name, elapsed times.
pub struct TermSink {
    color: bool,
}

impl TermSink {
    pub fn new() -> Self {
        TermSink {
            color: term::color_enabled_stdout(),
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
}

pub fn secs(ms: u64) -> String {
    if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

impl Sink for TermSink {
    fn emit(&mut self, event: &Event) {
        let mut out = std::io::stdout().lock();
        let _ = match event {
            Event::RunStarted {
                plan,
                env,
                steps,
                resumed,
                from,
            } => {
                let how = if *resumed {
                    format!("resuming at step {} of {steps}", from + 1)
                } else {
                    format!("{steps} steps")
                };
                writeln!(
                    out,
                    "{} {} [{}], {how}",
                    self.paint("1", "rehost run:"),
                    term::escape(plan),
                    env
                )
            }
            Event::Warning { message } => writeln!(
                out,
                "{} {}",
                self.paint("33", "warning:"),
                term::escape(message)
            ),
            Event::Decision { what, detail } => {
                writeln!(
                    out,
                    "{} {what}: {} (recorded)",
                    self.paint("33", "decision:"),
                    term::escape(detail)
                )
            }
            Event::StepStarted {
                index,
                total,
                id,
                title,
                kind,
                host,
                attempt,
            } => {
                let on = host
                    .as_ref()
                    .map(|h| format!(" on {h}"))
                    .unwrap_or_default();
                let again = if *attempt > 1 {
                    format!(", attempt {attempt}")
                } else {
                    String::new()
                };
                writeln!(
                    out,
                    "{} {} — {} ({kind}{on}{again})",
                    self.paint("1", &format!("[{}/{total}]", index + 1)),
                    term::escape(id),
                    term::escape(title)
                )
            }
            Event::Instructions { text, .. } => {
                let mut r = Ok(());
                for line in text.lines() {
                    r = writeln!(out, "      {}", term::escape(line));
                }
                r
            }
            Event::Output {
                host, stream, line, ..
            } => {
                let tag = if stream == "err" {
                    self.paint("2", &format!("{host}!"))
                } else {
                    self.paint("2", &format!("{host}|"))
                };
                writeln!(out, "      {tag} {}", term::escape(line))
            }
            Event::Progress { message, .. } => writeln!(out, "      … {}", term::escape(message)),
            Event::StepFinished {
                result,
                elapsed_ms,
                detail,
                confirmed_by,
                ..
            } => {
                let (mark, word) = match result {
                    StepResult::Done => (self.paint("32", "✓"), "done"),
                    StepResult::Skipped => (self.paint("33", "↷"), "skipped"),
                    StepResult::Failed => (self.paint("31", "✗"), "failed"),
                    StepResult::Interrupted => (self.paint("33", "‖"), "interrupted"),
                    StepResult::NotConfirmed => (self.paint("33", "‖"), "not confirmed"),
                };
                let who = confirmed_by
                    .as_ref()
                    .map(|c| format!(", confirmed by {}", term::escape(c)))
                    .unwrap_or_default();
                let det = detail
                    .as_ref()
                    .map(|d| format!(": {}", term::escape(d)))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "      {mark} {word} in {}{who}{det}",
                    secs(*elapsed_ms)
                )
            }
            Event::RollbackStarted { failed, steps } => writeln!(
                out,
                "{} after `{failed}` failed: {}",
                self.paint("33", "rolling back"),
                if steps.is_empty() {
                    "no step has a rollback".into()
                } else {
                    steps.join(", ")
                }
            ),
            Event::RolledBack { id, ok, detail } => writeln!(
                out,
                "      {} rollback of `{id}`{}",
                if *ok {
                    self.paint("32", "✓")
                } else {
                    self.paint("31", "✗")
                },
                detail
                    .as_ref()
                    .map(|d| format!(": {}", term::escape(d)))
                    .unwrap_or_default()
            ),
            Event::RunFinished {
                ok,
                elapsed_ms,
                summary,
            } => {
                let word = if *ok {
                    self.paint("32", "finished")
                } else {
                    self.paint("31", "stopped")
                };
                writeln!(out, "rehost run {word}: {summary} ({})", secs(*elapsed_ms))
            }
        };
        let _ = out.flush();
    }
}
