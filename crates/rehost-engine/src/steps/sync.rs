//! The `sync` step kind: a data set transferred from its source to its destination (rsync or
//! the built-in transfer). The data set's `HOST:PATH` ends resolve through the run's hosts, so
//! a rehearsal acts on the environment's hosts. `local_end` and the progress helpers are shared
//! with `verify-tree`.

use super::{Executor, Need};
use crate::EngineError;
use crate::events::Event;
use crate::exec::{Ctx, Outcome};
use rehost_journal::step_data::{STEP_DATA_VERSION, StepData, SyncCounts, SyncData};
use rehost_plan::{HostPath, Step, StepKind, SyncMethod};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::exec::failed;

/// A data set end on a local host: its path on this machine.
pub(super) fn local_end(ctx: &mut Ctx, end: &HostPath) -> Result<PathBuf, String> {
    if !ctx.hosts.is_local(&end.host) {
        return Err(format!(
            "host {} is reached over ssh; run rehost on that host, or use a `run` step with rsync, until tree work over ssh lands",
            end.host
        ));
    }
    Ok(ctx.hosts.get(&end.host)?.resolve(&end.path))
}

/// A progress callback that emits at most one event a second.
pub(super) fn progress_emitter<'s>(
    sink: &'s mut dyn crate::Sink,
    id: &'s str,
    sides: usize,
) -> impl FnMut(rehost_tree::Progress) + 's {
    let mut last = Instant::now();
    move |p: rehost_tree::Progress| {
        if last.elapsed() < Duration::from_secs(1) {
            return;
        }
        last = Instant::now();
        let message = progress_message(&p, sides);
        sink.emit(&Event::Progress {
            id: id.to_owned(),
            message,
        });
    }
}

/// A transfer or hashing rate for people, or `None` when it would mean nothing: under a second
/// or under a megabyte (issue 18: "910.9 GiB/s together" after a few milliseconds).
pub fn rate(bytes: u64, elapsed: Duration) -> Option<String> {
    (elapsed >= Duration::from_secs(1) && bytes >= 1 << 20).then(|| {
        format!(
            "{}/s",
            rehost_tree::human_bytes((bytes as f64 / elapsed.as_secs_f64()) as u64)
        )
    })
}

/// A progress line people can read: sizes in binary units, the rate (once there is one worth
/// giving, [`rate`]), and while copying the time left. Walking reports what each side has
/// hashed so far (no side's total is known).
pub(crate) fn progress_message(p: &rehost_tree::Progress, sides: usize) -> String {
    use rehost_tree::human_bytes;
    let secs = p.elapsed.as_secs_f64().max(0.001);
    if p.copying {
        let done = p.sides[0].bytes;
        let mut m = format!(
            "copied {} entries, {}",
            p.sides[0].entries,
            human_bytes(done)
        );
        if p.to_copy > 0 {
            m.push_str(&format!(" of {}", human_bytes(p.to_copy)));
        }
        if let Some(r) = rate(done, p.elapsed) {
            m.push_str(&format!(" at {r}"));
        }
        if p.to_copy > done && rate(done, p.elapsed).is_some() {
            let left = (p.to_copy - done) as f64 / (done as f64 / secs);
            m.push_str(&format!(
                ", about {} left",
                rehost_plan::format_duration(Duration::from_secs(left.ceil() as u64))
            ));
        }
        return m;
    }
    let side = |i: usize| {
        format!(
            "{} entries listed, {} hashed",
            p.sides[i].entries,
            human_bytes(p.sides[i].bytes)
        )
    };
    let (text, bytes) = if sides == 2 {
        (
            format!("source: {}; destination: {}", side(0), side(1)),
            p.sides[0].bytes + p.sides[1].bytes,
        )
    } else {
        (side(0), p.sides[0].bytes)
    };
    match rate(bytes, p.elapsed) {
        Some(r) if sides == 2 => format!("{text} (both sides hashing at {r} together)"),
        Some(r) => format!("{text} (hashing at {r})"),
        None => text,
    }
}

pub(super) static EXECUTOR: Executor = Executor {
    kind: "sync",
    execute,
    needs: |_, step| match &step.kind {
        StepKind::Sync { data, method, .. } => vec![Need::CopiesData {
            data,
            method: *method,
        }],
        _ => Vec::new(),
    },
};

fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    let StepKind::Sync { data, method, .. } = &step.kind else {
        unreachable!("the registry hands `sync` its own steps")
    };
    sync(ctx, step, data, *method)
}

fn sync(
    ctx: &mut Ctx,
    step: &Step,
    data: &str,
    method: SyncMethod,
) -> Result<Outcome, EngineError> {
    let ds = ctx
        .plan
        .data_set(data)
        .expect("validated: the data set exists")
        .clone();
    let remote_from = !ctx.hosts.is_local(&ds.from.host);
    let remote_to = !ctx.hosts.is_local(&ds.to.host);
    if remote_from || remote_to {
        let builtin = match method {
            SyncMethod::Builtin => true,
            SyncMethod::Rsync => false,
            SyncMethod::Auto => match rsync_missing(ctx, &ds) {
                Ok(None) => false,
                Ok(Some(host)) => {
                    ctx.sink.emit(&Event::Progress {
                        id: step.id.clone(),
                        message: format!(
                            "host {host} has no rsync: built-in transfer {} → {}",
                            ds.from, ds.to
                        ),
                    });
                    true
                }
                Err(e) => return failed(e),
            },
        };
        if builtin {
            return sync_builtin_between(ctx, step, &ds);
        }
        return sync_remote(ctx, step, &ds, remote_from, remote_to);
    }
    let (src, dst) = match (local_end(ctx, &ds.from), local_end(ctx, &ds.to)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return failed(e),
    };
    if !src.is_dir() {
        return failed(format!(
            "{} ({}) is not a directory",
            ds.from,
            src.display()
        ));
    }
    let rsync = match method {
        SyncMethod::Builtin => None,
        SyncMethod::Auto => rehost_tree::transfer::rsync_available(),
        SyncMethod::Rsync => match rehost_tree::transfer::rsync_available() {
            Some(v) => Some(v),
            None => {
                return failed(format!(
                    "step `{}` asks for rsync and host {} has none; install rsync there, or write method = \"builtin\"",
                    step.id, ds.from.host
                ));
            }
        },
    };
    if let Some(version) = rsync {
        if let Err(e) = std::fs::create_dir_all(&dst) {
            return failed(format!(
                "failed to create {} ({}): {e}",
                ds.to,
                dst.display()
            ));
        }
        let argv = rehost_tree::transfer::rsync_command(
            &src.to_string_lossy(),
            &dst.to_string_lossy(),
            &rehost_tree::transfer::RsyncOptions {
                excludes: ds.exclude.clone(),
                ..Default::default()
            },
        );
        ctx.sink.emit(&Event::Progress {
            id: step.id.clone(),
            message: format!("rsync {version}: {} → {}", ds.from, ds.to),
        });
        let out = match run_rsync(ctx, step, &ds.from.host, argv) {
            Ok(o) => o,
            Err(e) => return failed(e),
        };
        return rsync_outcome(&ds, &out, &format!("rsync {version}"));
    }
    let mut opts = rehost_tree::transfer::TransferOptions::default();
    for x in &ds.exclude {
        match rehost_tree::Glob::new(x) {
            Ok(g) => opts.walk.excludes.push(g),
            Err(e) => return failed(format!("data set `{}`: {e}", ds.id)),
        }
    }
    let result = {
        let mut progress = progress_emitter(&mut *ctx.sink, &step.id, 2);
        rehost_tree::transfer::transfer(&src, &dst, &opts, &mut progress, ctx.cancel)
    };
    if ctx.cancel.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(Outcome::Cancelled);
    }
    match result {
        Ok(report) => builtin_outcome(ctx, step, &ds, report),
        Err(e) => failed(format!("failed to copy {} to {}: {e}", ds.from, ds.to)),
    }
}

/// `sync` with the built-in transfer where an end is on an ssh host: through the agents.
fn sync_builtin_between(
    ctx: &mut Ctx,
    step: &Step,
    ds: &rehost_plan::DataSet,
) -> Result<Outcome, EngineError> {
    let (src, dst) = match ctx.hosts.pair(&ds.from.host, &ds.to.host) {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    let opts = rehost_host::transfer::TransferOptions {
        excludes: ds.exclude.clone(),
        ..Default::default()
    };
    let sink = &mut *ctx.sink;
    let result = {
        let mut progress = progress_emitter(sink, &step.id, 2);
        rehost_host::transfer::transfer_between(
            (src, ds.from.path.as_bytes()),
            (dst, ds.to.path.as_bytes()),
            &opts,
            ctx.cancel,
            &mut progress,
        )
    };
    if ctx.cancel.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(Outcome::Cancelled);
    }
    match result {
        Ok(report) => builtin_outcome(ctx, step, ds, report),
        Err(e) => failed(format!("failed to copy {} to {}: {e}", ds.from, ds.to)),
    }
}

/// The first end of the data set whose host has no rsync (rsync must run on both), if any.
fn rsync_missing(ctx: &mut Ctx, ds: &rehost_plan::DataSet) -> Result<Option<String>, String> {
    for end in [&ds.from, &ds.to] {
        let has = if ctx.hosts.is_local(&end.host) {
            rehost_tree::transfer::rsync_available().is_some()
        } else {
            let spec = rehost_host::CommandSpec::new(rehost_host::Program::Argv(vec![
                "rsync".into(),
                "--version".into(),
            ]));
            let host = ctx.hosts.get(&end.host)?;
            let out = host
                .run(&spec, ctx.cancel, &mut |_, _| {})
                .map_err(|e| e.to_string())?;
            out.exit.code == Some(0)
        };
        if !has {
            return Ok(Some(end.host.clone()));
        }
    }
    Ok(None)
}

/// The outcome of a built-in transfer: done when every entry was transferred, else failed
/// with each entry's reason in the step's output.
fn builtin_outcome(
    ctx: &mut Ctx,
    step: &Step,
    ds: &rehost_plan::DataSet,
    report: rehost_tree::transfer::TransferReport,
) -> Result<Outcome, EngineError> {
    let summary = format!(
        "{} created, {} updated, {} deleted, {} unchanged, {} bytes copied",
        report.created, report.updated, report.deleted, report.unchanged, report.bytes_copied
    );
    for (path, why) in &report.errors {
        let line = format!(
            "not transferred: {}: {why}",
            rehost_tree::escape::display(path)
        );
        let _ = writeln!(ctx.output, "{line}");
        ctx.sink.emit(&Event::Output {
            id: step.id.clone(),
            host: ds.to.host.clone(),
            stream: "err".into(),
            line,
        });
    }
    let data = StepData::Sync(SyncData {
        v: STEP_DATA_VERSION,
        data_set: ds.id.clone(),
        method: "builtin".into(),
        report: Some(SyncCounts {
            created: report.created,
            updated: report.updated,
            deleted: report.deleted,
            unchanged: report.unchanged,
            bytes_copied: report.bytes_copied,
            errors: report.errors.len() as u64,
        }),
        how: None,
    });
    if report.errors.is_empty() {
        Ok(Outcome::Done {
            detail: Some(format!(
                "{} copied to {} (built-in transfer): {summary}",
                ds.from, ds.to
            )),
            exit_code: None,
            confirmed_by: None,
            data: Some(data),
        })
    } else {
        Ok(Outcome::Failed {
            detail: format!(
                "{} entries of {} could not be transferred ({summary}); see the output, fix the cause and run again",
                report.errors.len(),
                ds.from
            ),
            exit_code: None,
            data: Some(data),
        })
    }
}

/// Runs rsync on `host`; its `--info=progress2` updates become progress events.
fn run_rsync(
    ctx: &mut Ctx,
    step: &Step,
    host: &str,
    argv: Vec<String>,
) -> Result<rehost_host::RunOutcome, String> {
    let command = rehost_plan::Command::Argv(argv);
    crate::exec::run_command(ctx, step, host, &command, Some(rsync_progress))
}

fn rsync_progress(line: &str) -> Option<String> {
    rehost_tree::transfer::parse_rsync_progress(line)
        .map(|p| format!("{}% ({} bytes)", p.percent, p.bytes))
}

/// The `-e` of rsync for an ssh host: the same options rehost passes to ssh, each word quoted
/// for rsync's own splitting. With `local_config` false (rsync running on another host) the
/// plan's ssh config file is not passed: it names a file on this machine.
fn rsync_ssh(spec: &rehost_host::SshSpec, local_config: bool) -> String {
    let mut words = vec!["ssh".to_owned(), "-o".into(), "BatchMode=yes".into()];
    if let Some(port) = spec.port {
        words.extend(["-p".into(), port.to_string()]);
    }
    if local_config {
        if let Some(cfg) = &spec.ssh_config {
            words.extend(["-F".into(), cfg.to_string_lossy().into_owned()]);
        }
        if let Some(id) = &spec.identity_file {
            words.extend(["-i".into(), id.to_string_lossy().into_owned()]);
        }
        if let Some(j) = &spec.proxy_jump {
            words.extend(["-J".into(), j.clone()]);
        }
    }
    words
        .iter()
        .map(|w| rehost_host::ssh::rsync_e_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `sync` where an end is on an ssh host: rsync runs where it can reach both ends. Local to
/// remote and remote to local run rsync here (through the local host); remote to remote runs
/// rsync on the source host, which reaches the destination with its own ssh setup, as an
/// administrator's rsync would.
fn sync_remote(
    ctx: &mut Ctx,
    step: &Step,
    ds: &rehost_plan::DataSet,
    remote_from: bool,
    remote_to: bool,
) -> Result<Outcome, EngineError> {
    let end = |ctx: &mut Ctx,
               e: &HostPath,
               remote: bool|
     -> Result<(String, Option<rehost_host::SshSpec>), String> {
        let path = ctx
            .hosts
            .get(&e.host)?
            .resolve(&e.path)
            .to_string_lossy()
            .into_owned();
        if !remote {
            return Ok((path, None));
        }
        let spec = ctx
            .hosts
            .ssh_spec(&e.host)
            .expect("a remote host has an ssh spec");
        Ok((format!("{}:{path}", spec.destination), Some(spec)))
    };
    let (src, src_spec) = match end(ctx, &ds.from, remote_from) {
        Ok(x) => x,
        Err(e) => return failed(e),
    };
    let (dst, dst_spec) = match end(ctx, &ds.to, remote_to) {
        Ok(x) => x,
        Err(e) => return failed(e),
    };
    // Where rsync runs, and how it reaches the other end.
    let (runner, ssh) = match (&src_spec, &dst_spec) {
        (None, Some(d)) => (ds.from.host.clone(), rsync_ssh(d, true)),
        (Some(s), None) => (ds.to.host.clone(), rsync_ssh(s, true)),
        (Some(_), Some(d)) => (ds.from.host.clone(), rsync_ssh(d, false)),
        (None, None) => unreachable!("one end is remote"),
    };
    // rsync runs on the source host when both ends are remote: its own side is then local.
    let src = if src_spec.is_some() && dst_spec.is_some() {
        ctx.hosts
            .get(&ds.from.host)
            .map(|h| h.resolve(&ds.from.path).to_string_lossy().into_owned())
            .unwrap_or(src)
    } else {
        src
    };
    // The destination's parent may be missing, which rsync (unlike the local and built-in
    // paths) does not create: `--mkpath` where both rsyncs know it, else `mkdir -p` first.
    let mut extra = vec!["-e".into(), ssh];
    if dst_spec.is_some() {
        match mkpath_or_mkdir(ctx, &runner, &ds.to) {
            Ok(true) => extra.push("--mkpath".into()),
            Ok(false) => {}
            Err(e) => return failed(e),
        }
    }
    let argv = rehost_tree::transfer::rsync_command(
        &src,
        &dst,
        &rehost_tree::transfer::RsyncOptions {
            excludes: ds.exclude.clone(),
            extra,
            ..Default::default()
        },
    );
    ctx.sink.emit(&Event::Progress {
        id: step.id.clone(),
        message: format!("rsync on {runner}: {} → {}", ds.from, ds.to),
    });
    let out = match run_rsync(ctx, step, &runner, argv) {
        Ok(o) => o,
        Err(e) => return failed(e),
    };
    if src_spec.is_some()
        && let Some(d) = dst_spec.as_ref()
        && !out.cancelled
        && out.exit.code != Some(0)
        && ssh_failed(out.exit.code, ctx.tail)
    {
        return Ok(Outcome::Failed {
            detail: server_to_server_failure(step, ds, d, ctx.tail),
            exit_code: out.exit.code,
            data: None,
        });
    }
    rsync_outcome(ds, &out, &format!("rsync on {runner}"))
}

/// rsync's version on a host (`rsync --version`), if it has one.
fn rsync_version(ctx: &mut Ctx, host: &str) -> Result<Option<String>, String> {
    if ctx.hosts.is_local(host) {
        return Ok(rehost_tree::transfer::rsync_available());
    }
    let spec = rehost_host::CommandSpec::new(rehost_host::Program::Argv(vec![
        "rsync".into(),
        "--version".into(),
    ]));
    let mut first = String::new();
    let out = ctx
        .hosts
        .get(host)?
        .run(&spec, ctx.cancel, &mut |stream, line| {
            if stream == rehost_host::OutputStream::Stdout && first.is_empty() {
                first = String::from_utf8_lossy(line).into_owned();
            }
        })
        .map_err(|e| e.to_string())?;
    Ok((out.exit.code == Some(0))
        .then(|| {
            first
                .split_whitespace()
                .skip_while(|w| *w != "version")
                .nth(1)
                .map(str::to_owned)
        })
        .flatten())
}

/// Whether an rsync version knows `--mkpath` (3.2.3 and later).
pub(crate) fn has_mkpath(version: &str) -> bool {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let v = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    v >= (3, 2, 3)
}

/// Makes sure rsync can create the destination of `to`: `Ok(true)` when rsync on `runner` and
/// on the destination's host both know `--mkpath`, else the destination directory is created
/// through its host (`mkdir -p`) and `Ok(false)`.
fn mkpath_or_mkdir(ctx: &mut Ctx, runner: &str, to: &HostPath) -> Result<bool, String> {
    let both = match (rsync_version(ctx, runner)?, rsync_version(ctx, &to.host)?) {
        (Some(a), Some(b)) => has_mkpath(&a) && has_mkpath(&b),
        _ => false,
    };
    if both {
        return Ok(true);
    }
    let host = ctx.hosts.get(&to.host)?;
    let path = host.resolve(&to.path).to_string_lossy().into_owned();
    let spec = rehost_host::CommandSpec::new(rehost_host::Program::Argv(vec![
        "mkdir".into(),
        "-p".into(),
        "--".into(),
        path.clone(),
    ]));
    let mut err = String::new();
    let out = host
        .run(&spec, ctx.cancel, &mut |stream, line| {
            if stream == rehost_host::OutputStream::Stderr && err.len() < 1000 {
                err.push_str(&String::from_utf8_lossy(line));
            }
        })
        .map_err(|e| e.to_string())?;
    if out.exit.code != Some(0) {
        return Err(format!(
            "failed to create {to} ({path}) on host {}: {}",
            to.host,
            err.trim()
        ));
    }
    Ok(false)
}

/// Whether rsync failed because its ssh to the other end did (ssh's own messages, or rsync's
/// 255 and "connection unexpectedly closed").
fn ssh_failed(code: Option<i32>, tail: &[String]) -> bool {
    code == Some(255)
        || tail.iter().any(|l| {
            [
                "Could not resolve hostname",
                "Permission denied",
                "Host key verification failed",
                "Connection refused",
                "Connection timed out",
                "No route to host",
                "connection unexpectedly closed",
            ]
            .iter()
            .any(|m| l.contains(m))
        })
}

/// The failure of rsync between two ssh hosts because the source host could not reach the
/// destination: what is missing and why, and the relay that needs no trust between servers.
fn server_to_server_failure(
    step: &Step,
    ds: &rehost_plan::DataSet,
    to: &rehost_host::SshSpec,
    tail: &[String],
) -> String {
    let ssh_said = tail
        .iter()
        .rev()
        .map(|l| l.trim_start_matches("err ").trim())
        .find(|l| {
            l.starts_with("ssh:") || l.contains("Permission denied") || l.contains("Host key")
        })
        .or_else(|| tail.last().map(|l| l.trim()))
        .unwrap_or("no output");
    let port = to.port.map(|p| format!(" port {p}")).unwrap_or_default();
    format!(
        "rsync runs on host {from} and copies to host {dest} over ssh from there, with {from}'s own ssh setup, not this machine's: {from} must resolve `{dest_ssh}`{port}, know its host key, and log in to it as the user given there (its key in {dest}'s authorized_keys). That failed: {ssh_said}. Give {from} that access, or write method = \"builtin\" in step `{id}`: the built-in transfer relays through rehost and needs no trust between the servers",
        from = ds.from.host,
        dest = ds.to.host,
        dest_ssh = to.destination,
        id = step.id,
    )
}

fn rsync_outcome(
    ds: &rehost_plan::DataSet,
    out: &rehost_host::RunOutcome,
    how: &str,
) -> Result<Outcome, EngineError> {
    if out.cancelled {
        return Ok(Outcome::Cancelled);
    }
    match out.exit.code {
        Some(0) => Ok(Outcome::Done {
            detail: Some(format!("{} copied to {} with {how}", ds.from, ds.to)),
            exit_code: Some(0),
            confirmed_by: None,
            data: Some(StepData::Sync(SyncData {
                v: STEP_DATA_VERSION,
                data_set: ds.id.clone(),
                method: "rsync".into(),
                report: None,
                how: Some(how.to_owned()),
            })),
        }),
        _ => Ok(Outcome::Failed {
            detail: format!(
                "{how} from {} to {} ended with {}{}; its output is above and in the step's output file",
                ds.from,
                ds.to,
                out.exit,
                if out.timed_out { " (timed out)" } else { "" }
            ),
            exit_code: out.exit.code,
            data: None,
        }),
    }
}

#[cfg(test)]
#[path = "sync_tests.rs"]
mod tests;
