//! `rehost compat record`: the recording proxy in front of the old service, until a signal.
//! `rehost compat replay`: recorded requests against the old and the new service, compared
//! structurally, the old service's own variation filtered as noise (rehost-compat). Every
//! string that came from a server or the traffic file is escaped before it reaches the
//! terminal; credential headers are never shown.

use crate::cli::{CompatProbeArgs, CompatRecordArgs, CompatReplayArgs};
use crate::exit;
use rehost_compat::replay::{self, Options, Summary, Target};
use rehost_plan::escape_control as esc;
use std::io::Write;
use std::time::{Duration, Instant};

pub fn replay(args: &CompatReplayArgs) -> i32 {
    let prepared = (|| -> Result<_, String> {
        let old = Target::parse(&args.old).map_err(|e| format!("--old {e}"))?;
        let new = Target::parse(&args.new).map_err(|e| format!("--new {e}"))?;
        if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 3600.0) {
            return Err(format!(
                "--timeout {}: give seconds between 0 and 3600",
                args.timeout
            ));
        }
        if args.concurrency == 0 || args.concurrency > 256 {
            return Err(format!(
                "--concurrency {}: give 1 to 256 requests in flight",
                args.concurrency
            ));
        }
        if args.max_body == 0 || args.max_body > 4096 {
            return Err(format!("--max-body {}: give 1 to 4096 MiB", args.max_body));
        }
        let file = std::fs::File::open(&args.traffic)
            .map_err(|e| format!("{}: {e}", args.traffic.display()))?;
        Ok((old, new, file))
    })();
    let (old, new, file) = match prepared {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rehost: compat replay: {}", esc(&e));
            return exit::TROUBLE;
        }
    };
    let opts = Options {
        concurrency: args.concurrency,
        allow_writes: args.allow_writes,
        again: !args.no_noise,
        examples: args.examples,
        limits: rehost_compat::http::Limits {
            body: args.max_body * 1024 * 1024,
            ..Default::default()
        },
        timeout: Duration::from_secs_f64(args.timeout),
        allow: args.allow.clone(),
    };
    crate::signals::install();
    let started = Instant::now();
    let summary = match replay::replay(
        std::io::BufReader::with_capacity(1 << 20, file),
        &old,
        &new,
        &opts,
        &crate::signals::CANCEL,
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "rehost: compat replay: {}: {}",
                esc(&args.traffic.display().to_string()),
                esc(&e)
            );
            return exit::TROUBLE;
        }
    };
    finish(
        &summary,
        started,
        args.json,
        &args.traffic.display().to_string(),
    )
}

/// Prints a summary (text or JSON) and returns the exit code.
fn finish(summary: &Summary, started: Instant, json: bool, source: &str) -> i32 {
    let secs = started.elapsed().as_secs_f64();
    let code = if summary.interrupted {
        exit::INTERRUPTED
    } else if summary.trouble() {
        exit::TROUBLE
    } else if summary.differs() {
        exit::FINDINGS
    } else {
        exit::OK
    };
    let written = if json {
        let mut v = serde_json::to_value(summary).unwrap_or_default();
        v["result"] = match code {
            exit::OK => "same",
            exit::FINDINGS => "differ",
            _ => "trouble",
        }
        .into();
        v["seconds"] = serde_json::json!((secs * 1000.0).round() / 1000.0);
        writeln!(std::io::stdout(), "{v}")
    } else {
        human(summary, secs, source)
    };
    match written {
        Ok(()) => code,
        Err(e) => {
            eprintln!("rehost: could not write the result: {e}");
            exit::TROUBLE
        }
    }
}

/// The summary for a person: what was replayed, refused, skipped and failed, then per endpoint
/// the differing fields with examples and the noise, what was not compared, the verdict.
pub fn human(s: &Summary, secs: f64, traffic: &str) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    let rate = if secs > 0.0 {
        s.compared as f64 / secs
    } else {
        0.0
    };
    writeln!(
        o,
        "replayed {} of {} exchanges from {} against old {} and new {}{} in {:.1} s ({:.0} requests/s)",
        s.compared,
        s.exchanges,
        esc(traffic),
        esc(&s.old),
        esc(&s.new),
        if s.noise_measured {
            ", old asked twice for noise"
        } else {
            ""
        },
        secs,
        rate
    )?;
    if s.refused_writes > 0 {
        writeln!(
            o,
            "refused {} writes (not sent; --allow-writes sends them, for a rehearsal copy):",
            s.refused_writes
        )?;
        for l in &s.refused {
            writeln!(
                o,
                "  line {}: {} {}",
                l.line,
                esc(&l.method),
                esc(&l.target)
            )?;
        }
        more(&mut o, s.refused_writes, s.refused.len())?;
    }
    if s.truncated > 0 {
        writeln!(
            o,
            "skipped {} exchanges recorded truncated (a body over the recording cap): not compared",
            s.truncated
        )?;
    }
    for (what, n, list) in [
        ("lines not replayable", s.bad, &s.bad_lines),
        ("requests failed", s.failed, &s.failures),
    ] {
        if n > 0 {
            writeln!(o, "{n} {what}:")?;
            for l in list {
                writeln!(
                    o,
                    "  line {}: {} {}: {}",
                    l.line,
                    esc(&l.method),
                    esc(&l.target),
                    esc(&l.why)
                )?;
            }
            more(&mut o, n, list.len())?;
        }
    }
    for ep in &s.endpoints {
        writeln!(
            o,
            "{}: {} requests, {} differ",
            esc(&ep.endpoint),
            ep.requests,
            ep.differing
        )?;
        for f in &ep.differences {
            writeln!(
                o,
                "  {}: differs in {}{}",
                esc(&f.field),
                f.count,
                if f.allowed {
                    " (allowed: an expected difference)"
                } else {
                    ""
                }
            )?;
            for e in &f.examples {
                writeln!(
                    o,
                    "    line {} {}: old {} | new {}",
                    e.line,
                    esc(&e.target),
                    esc(&e.old),
                    esc(&e.new)
                )?;
            }
        }
        if !ep.noise.is_empty() {
            let n: Vec<String> = ep
                .noise
                .iter()
                .map(|f| format!("{} ({})", esc(&f.field), f.count))
                .collect();
            writeln!(
                o,
                "  noise (the old service differs from itself; not reported): {}",
                n.join(", ")
            )?;
        }
    }
    writeln!(o, "not compared: {}", s.not_compared)?;
    let verdict = if s.interrupted {
        "interrupted: not every exchange was replayed".to_string()
    } else if s.trouble() {
        format!(
            "trouble: {} requests failed, {} lines not replayable; {} answers compared, {} differ",
            s.failed, s.bad, s.compared, s.differing
        )
    } else if s.differs() {
        format!(
            "differ: {} of {} compared requests answered differently",
            s.differing, s.compared
        )
    } else {
        format!("same: {} compared requests answered the same", s.compared)
    };
    let allowed = if s.allowed > 0 {
        format!("; {} requests differ only in allowed fields", s.allowed)
    } else {
        String::new()
    };
    let unsent = if s.refused_writes + s.truncated > 0 {
        format!(
            "; {} writes refused and {} truncated exchanges not compared",
            s.refused_writes, s.truncated
        )
    } else {
        String::new()
    };
    writeln!(o, "{verdict}{allowed}{unsent}")
}

fn more(o: &mut impl Write, total: u64, shown: usize) -> std::io::Result<()> {
    if total > shown as u64 {
        writeln!(o, "  ... and {} more", total - shown as u64)?;
    }
    Ok(())
}

pub fn record(args: &CompatRecordArgs) -> i32 {
    let prepared = (|| -> Result<_, String> {
        if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 3600.0) {
            return Err(format!(
                "--timeout {}: give seconds between 0 and 3600",
                args.timeout
            ));
        }
        if args.workers > 64 {
            return Err(format!(
                "--workers {}: give 0 (one per CPU) to 64",
                args.workers
            ));
        }
        if args.max_record_body == 0 || args.max_record_body > 4096 {
            return Err(format!(
                "--max-record-body {}: give 1 to 4096 MiB",
                args.max_record_body
            ));
        }
        let upstream = rehost_compat::record::upstream_addrs(&args.upstream)?;
        let listener = std::net::TcpListener::bind(&args.listen)
            .map_err(|e| format!("--listen {}: {e}", args.listen))?;
        let here = listener
            .local_addr()
            .map_err(|e| format!("--listen {}: {e}", args.listen))?;
        let out = rehost_compat::record::create(&args.out)?;
        Ok((upstream, listener, here, out))
    })();
    let (upstream, listener, here, out) = match prepared {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rehost: compat record: {}", esc(&e));
            return exit::TROUBLE;
        }
    };
    crate::signals::install();
    let mut stdout = std::io::stdout();
    let _ = writeln!(
        stdout,
        "recording: listening on {here}, forwarding to {}, writing {} (mode 0600: it holds the \
         clients' credentials); stop with Ctrl-C or SIGTERM",
        esc(&args.upstream),
        esc(&args.out.display().to_string())
    );
    let _ = stdout.flush();
    let opts = rehost_compat::record::RecordOptions {
        limits: rehost_compat::http::Limits {
            body: args.max_record_body * 1024 * 1024,
            ..Default::default()
        },
        timeout: Duration::from_secs_f64(args.timeout),
        workers: args.workers,
        ..Default::default()
    };
    match rehost_compat::record::record(listener, upstream, out, opts, &crate::signals::CANCEL) {
        Ok(s) => {
            let _ = writeln!(
                stdout,
                "recorded {} exchanges on {} connections in {}: {} truncated (over \
                 --max-record-body; replay skips them), {} not completed (a side closed or sent \
                 something malformed; not recorded), {} relayed but not recorded (the traffic \
                 file fell behind)",
                s.exchanges,
                s.connections,
                esc(&args.out.display().to_string()),
                s.truncated,
                s.failed,
                s.dropped
            );
            if let Some(e) = &s.write_error {
                eprintln!(
                    "rehost: compat record: failed to write {}: {}; the exchanges after it were \
                     relayed but not recorded",
                    esc(&args.out.display().to_string()),
                    esc(e)
                );
                return exit::TROUBLE;
            }
            if s.dropped > 0 {
                eprintln!(
                    "rehost: compat record: {} exchanges were relayed but not recorded: the \
                     traffic file's writer was more than 64 MiB behind (a slow disk); the \
                     recording is incomplete",
                    s.dropped
                );
                return exit::TROUBLE;
            }
            exit::OK
        }
        Err(e) => {
            eprintln!(
                "rehost: compat record: {}: {e}",
                esc(&args.out.display().to_string())
            );
            exit::TROUBLE
        }
    }
}

pub fn probe(args: &CompatProbeArgs) -> i32 {
    let prepared = (|| -> Result<_, String> {
        let old = Target::parse(&args.old).map_err(|e| format!("--old {e}"))?;
        let new = Target::parse(&args.new).map_err(|e| format!("--new {e}"))?;
        if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 3600.0) {
            return Err(format!(
                "--timeout {}: give seconds between 0 and 3600",
                args.timeout
            ));
        }
        let text = std::fs::read_to_string(&args.file)
            .map_err(|e| format!("{}: {e}", args.file.display()))?;
        let file = rehost_compat::probe::parse(&text)
            .map_err(|e| format!("{}: {e}", args.file.display()))?;
        Ok((old, new, file))
    })();
    let (old, new, file) = match prepared {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rehost: compat probe: {}", esc(&e));
            return exit::TROUBLE;
        }
    };
    let opts = Options {
        concurrency: 4,
        allow_writes: args.allow_writes,
        again: !args.no_noise,
        examples: 3,
        limits: rehost_compat::http::Limits::default(),
        timeout: Duration::from_secs_f64(args.timeout),
        allow: args.allow.clone(),
    };
    crate::signals::install();
    let started = Instant::now();
    let summary = rehost_compat::probe::probe(&file, &old, &new, &opts, &crate::signals::CANCEL);
    finish(
        &summary,
        started,
        args.json,
        &args.file.display().to_string(),
    )
}
