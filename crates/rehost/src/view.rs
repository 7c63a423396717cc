//! Sinks of engine events: the terminal view and JSON lines. Both see the same events.

use crate::term;
use rehost_engine::{Event, Sink};
use rehost_journal::StepResult;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// The human view: a line per step, its output indented with the host name, elapsed times,
/// and on a terminal a spinner with the running step's elapsed time on stderr.
pub struct TermSink {
    color: bool,
    spinner: Option<Spinner>,
}

/// A status line on stderr, redrawn ten times a second while a step runs.
struct Spinner {
    current: Arc<Mutex<Option<(String, Instant)>>>,
    _ticker: std::thread::JoinHandle<()>,
}

impl Spinner {
    fn start() -> Spinner {
        let current: Arc<Mutex<Option<(String, Instant)>>> = Arc::new(Mutex::new(None));
        let shared = Arc::clone(&current);
        let ticker = std::thread::spawn(move || {
            const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            let mut n = 0usize;
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let guard = shared.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((label, t0)) = guard.as_ref() {
                    n += 1;
                    let mut err = std::io::stderr().lock();
                    let _ = write!(
                        err,
                        "\r\x1b[K{} {label} {}",
                        FRAMES[n % FRAMES.len()],
                        secs(t0.elapsed().as_millis() as u64)
                    );
                    let _ = err.flush();
                }
            }
        });
        Spinner {
            current,
            _ticker: ticker,
        }
    }

    /// Clears the status line (before other output) and sets what it shows next.
    fn set(&self, label: Option<String>) {
        let mut guard = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
        *guard = label.map(|l| (l, Instant::now()));
    }

    fn pause(&self) -> Option<(String, Instant)> {
        let mut guard = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
        guard.take()
    }

    fn resume(&self, state: Option<(String, Instant)>) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }
}

impl TermSink {
    pub fn new() -> Self {
        TermSink {
            color: term::color_enabled_stdout(),
            spinner: std::io::stderr().is_terminal().then(Spinner::start),
        }
    }

    fn paint(&self, style: anstyle::Style, s: &str) -> String {
        if self.color {
            format!("{style}{s}{style:#}")
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
        // The spinner line is cleared while anything is printed, then shows the running step.
        let paused = self.spinner.as_ref().and_then(Spinner::pause);
        self.print(event);
        if let Some(sp) = &self.spinner {
            match event {
                Event::StepStarted {
                    index, total, id, ..
                } => sp.set(Some(format!(
                    "[{}/{total}] {}",
                    index + 1,
                    term::escape(id)
                ))),
                Event::StepFinished { .. }
                | Event::RunFinished { .. }
                | Event::RunStopped { .. }
                | Event::Instructions { .. } => sp.resume(None),
                _ => sp.resume(paused),
            }
        }
    }
}

impl TermSink {
    fn print(&mut self, event: &Event) {
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
                    self.paint(term::BOLD, "rehost run:"),
                    term::escape(plan),
                    term::escape(env)
                )
            }
            Event::Preflight { hosts, problems } if problems.is_empty() => writeln!(
                out,
                "pre-flight: {} host(s) reachable, their paths and space checked{}",
                hosts.len(),
                if hosts.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", term::escape(&hosts.join(", ")))
                }
            ),
            Event::Preflight { problems, .. } => problems.iter().try_for_each(|p| {
                writeln!(
                    out,
                    "{} {}",
                    self.paint(term::BAD, "pre-flight:"),
                    term::escape(p)
                )
            }),
            Event::Warning { message } => writeln!(
                out,
                "{} {}",
                self.paint(term::NOTE, "warning:"),
                term::escape(message)
            ),
            Event::Decision { what, detail } => {
                writeln!(
                    out,
                    "{} {}: {} (recorded)",
                    self.paint(term::NOTE, "decision:"),
                    term::escape(what),
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
                    .map(|h| format!(" on {}", term::escape(h)))
                    .unwrap_or_default();
                let again = if *attempt > 1 {
                    format!(", attempt {attempt}")
                } else {
                    String::new()
                };
                writeln!(
                    out,
                    "{} {} — {} ({kind}{on}{again})",
                    self.paint(term::BOLD, &format!("[{}/{total}]", index + 1)),
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
                    self.paint(term::DIM, &format!("{}!", term::escape(host)))
                } else {
                    self.paint(term::DIM, &format!("{}|", term::escape(host)))
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
                    StepResult::Done => (self.paint(term::GOOD, "✓"), "done"),
                    StepResult::Skipped => (self.paint(term::NOTE, "↷"), "skipped"),
                    StepResult::Failed => (self.paint(term::BAD, "✗"), "failed"),
                    StepResult::Interrupted => (self.paint(term::NOTE, "‖"), "interrupted"),
                    // Not a failure: the step waits for a person, and the next run asks.
                    StepResult::NotConfirmed => (
                        self.paint(term::NOTE, "‖"),
                        "not confirmed, waiting for confirmation,",
                    ),
                };
                let who = confirmed_by
                    .as_ref()
                    .map(|c| format!(", confirmed by {}", term::escape(c)))
                    .unwrap_or_default();
                let det = detail
                    .as_ref()
                    .map(|d| format!(": {}", term::escape(d)))
                    .unwrap_or_default();
                let took = if *result == StepResult::NotConfirmed {
                    "asked for"
                } else {
                    "in"
                };
                writeln!(
                    out,
                    "      {mark} {word} {took} {}{who}{det}",
                    secs(*elapsed_ms)
                )
            }
            Event::RollbackStarted { failed, steps } => writeln!(
                out,
                "{} after `{}` failed: {}",
                self.paint(term::NOTE, "rolling back"),
                term::escape(failed),
                if steps.is_empty() {
                    "no step has a rollback".into()
                } else {
                    term::escape(&steps.join(", "))
                }
            ),
            Event::RolledBack { id, ok, detail } => writeln!(
                out,
                "      {} rollback of `{}`{}",
                if *ok {
                    self.paint(term::GOOD, "✓")
                } else {
                    self.paint(term::BAD, "✗")
                },
                term::escape(id),
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
                    self.paint(term::GOOD, "finished")
                } else {
                    self.paint(term::BAD, "stopped")
                };
                writeln!(
                    out,
                    "rehost run {word}: {} (took {})",
                    term::escape(summary),
                    secs(*elapsed_ms)
                )
            }
            Event::RunStopped {
                summary,
                elapsed_ms,
                ..
            } => writeln!(
                out,
                "rehost run {}: {} (took {})",
                self.paint(term::NOTE, "paused"),
                term::escape(summary),
                secs(*elapsed_ms)
            ),
            Event::ProbeStarted { targets } => targets.iter().try_for_each(|t| {
                writeln!(
                    out,
                    "{} `{}`: {} at {} (old) and {} (new), every {} ms",
                    self.paint(term::NOTE, "probing"),
                    term::escape(&t.service),
                    term::escape(&t.check),
                    term::escape(&t.old),
                    term::escape(&t.new),
                    t.interval_ms
                )
            }),
            Event::ProbeChanged {
                service,
                side,
                up,
                detail,
            } => writeln!(
                out,
                "      {} `{}` {side} side {}{}",
                self.paint(term::NOTE, "probe:"),
                term::escape(service),
                if *up {
                    self.paint(term::GOOD, "reachable")
                } else {
                    self.paint(term::BAD, "unreachable")
                },
                detail
                    .as_ref()
                    .map(|d| format!(" ({})", term::escape(d)))
                    .unwrap_or_default()
            ),
            Event::Load { id, message } => writeln!(
                out,
                "      {} `{}`: {}",
                self.paint(term::NOTE, "load"),
                term::escape(id),
                term::escape(message)
            ),
        };
        let _ = out.flush();
    }
}
