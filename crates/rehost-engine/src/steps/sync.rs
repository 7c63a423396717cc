//! The `sync` step kind: a data set transferred from its source to its destination (rsync or
//! the built-in transfer). The data set's `HOST:PATH` ends resolve through the run's hosts, so
//! a rehearsal acts on the environment's hosts. The progress helpers are shared with
//! `verify-tree`.
//!
//! Nothing here asks whether a host is this machine: rsync runs on an end that names its path
//! itself (`Host::remote_end` is `None`: this machine), the source first, and reaches the other
//! end through the remote shell that end gives; the built-in transfer is
//! `rehost_host::transfer::transfer_between` (in process for two trees of this machine).

use super::{Executor, Need};
use crate::EngineError;
use crate::events::Event;
use crate::exec::{Ctx, Outcome};
use rehost_journal::step_data::{STEP_DATA_VERSION, StepData, SyncCounts, SyncData};
use rehost_plan::{HostPath, Step, StepKind, SyncMethod};
use std::time::{Duration, Instant};

use crate::exec::failed;

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
    rollback: None,
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
    let mut versions = Versions::default();
    let builtin = match method {
        SyncMethod::Builtin => true,
        SyncMethod::Rsync => false,
        SyncMethod::Auto => match rsync_missing(ctx, &ds, &mut versions) {
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
        return sync_builtin(ctx, step, &ds);
    }
    sync_rsync(ctx, step, &ds, &mut versions)
}

/// `sync` with the built-in transfer, between any two hosts (in process for two trees of this
/// machine, else through the agents).
fn sync_builtin(
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

/// rsync's version on each host asked so far (`None`: it has none), so that each host is asked
/// once per step.
#[derive(Default)]
struct Versions(std::collections::BTreeMap<String, Option<String>>);

impl Versions {
    fn of(&mut self, ctx: &mut Ctx, host: &str) -> Result<Option<String>, String> {
        if let Some(v) = self.0.get(host) {
            return Ok(v.clone());
        }
        let v = ctx
            .hosts
            .get(host)?
            .rsync_version(ctx.cancel)
            .map_err(|e| e.to_string())?;
        self.0.insert(host.to_owned(), v.clone());
        Ok(v)
    }
}

/// The first end of the data set whose host has no rsync (rsync must run on both), if any.
fn rsync_missing(
    ctx: &mut Ctx,
    ds: &rehost_plan::DataSet,
    versions: &mut Versions,
) -> Result<Option<String>, String> {
    for end in [&ds.from, &ds.to] {
        if versions.of(ctx, &end.host)?.is_none() {
            return Ok(Some(end.host.clone()));
        }
    }
    Ok(None)
}

/// Where rsync runs and how it names both ends.
struct RsyncEnds {
    /// The host rsync runs on.
    runner: String,
    /// The ends as rsync names them.
    src: String,
    dst: String,
    /// The remote shell (`-e`) rsync reaches the other end with; `None` when it names both
    /// ends itself.
    shell: Option<String>,
    /// The destination, when rsync reaches it through the remote shell.
    far_dst: Option<rehost_host::RemoteEnd>,
    /// Both ends are reached over ssh from here: rsync runs on the source host and reaches the
    /// destination with the source host's own ssh setup.
    between_servers: bool,
}

/// rsync runs where it can name an end itself and reach the other: on the source when this
/// machine is the source or neither end (server to server, as an administrator's rsync would),
/// on the destination when it alone is this machine.
fn rsync_ends(ctx: &mut Ctx, ds: &rehost_plan::DataSet) -> Result<RsyncEnds, String> {
    let (from, to) = ctx.hosts.pair(&ds.from.host, &ds.to.host)?;
    let own = |h: &dyn rehost_host::Host, p: &str| h.resolve(p).to_string_lossy().into_owned();
    let src_own = own(from, &ds.from.path);
    Ok(
        match (
            from.remote_end(&ds.from.path, true),
            to.remote_end(&ds.to.path, true),
        ) {
            (None, None) => RsyncEnds {
                runner: ds.from.host.clone(),
                src: src_own,
                dst: own(to, &ds.to.path),
                shell: None,
                far_dst: None,
                between_servers: false,
            },
            (None, Some(d)) => RsyncEnds {
                runner: ds.from.host.clone(),
                src: src_own,
                dst: d.target.clone(),
                shell: Some(d.shell.clone()),
                far_dst: Some(d),
                between_servers: false,
            },
            (Some(s), None) => RsyncEnds {
                runner: ds.to.host.clone(),
                src: s.target,
                dst: own(to, &ds.to.path),
                shell: Some(s.shell),
                far_dst: None,
                between_servers: false,
            },
            (Some(_), Some(d)) => {
                // rsync runs on the source host: the destination as that host reaches it.
                let d = to.remote_end(&ds.to.path, false).unwrap_or(d);
                RsyncEnds {
                    runner: ds.from.host.clone(),
                    src: src_own,
                    dst: d.target.clone(),
                    shell: Some(d.shell.clone()),
                    far_dst: Some(d),
                    between_servers: true,
                }
            }
        },
    )
}

/// `sync` with rsync, run on the host [`rsync_ends`] chooses.
fn sync_rsync(
    ctx: &mut Ctx,
    step: &Step,
    ds: &rehost_plan::DataSet,
    versions: &mut Versions,
) -> Result<Outcome, EngineError> {
    let ends = match rsync_ends(ctx, ds) {
        Ok(e) => e,
        Err(e) => return failed(e),
    };
    let version = match versions.of(ctx, &ends.runner) {
        Ok(Some(v)) => v,
        Ok(None) => {
            return failed(format!(
                "step `{}` asks for rsync and host {} has none; install rsync there, or write method = \"builtin\"",
                step.id, ends.runner
            ));
        }
        Err(e) => return failed(e),
    };
    let mut extra = Vec::new();
    if let Some(shell) = &ends.shell {
        extra.extend(["-e".to_owned(), shell.clone()]);
    }
    // The destination's parent may be missing, which rsync does not create: where rsync
    // reaches the destination over ssh, `--mkpath` when both rsyncs know it, else `mkdir -p`
    // there first; where it names it itself, the directory is made first.
    if ends.far_dst.is_some() {
        match mkpath_or_mkdir(ctx, &ends.runner, &ds.to, versions) {
            Ok(true) => extra.push("--mkpath".into()),
            Ok(false) => {}
            Err(e) => return failed(e),
        }
    } else if let Err(e) = make_dir(ctx, &ds.to) {
        return failed(e);
    }
    let argv = rehost_tree::transfer::rsync_command(
        &ends.src,
        &ends.dst,
        &rehost_tree::transfer::RsyncOptions {
            excludes: ds.exclude.clone(),
            extra,
            ..Default::default()
        },
    );
    let how = match ends.shell {
        None => format!("rsync {version}"),
        Some(_) => format!("rsync on {}", ends.runner),
    };
    ctx.sink.emit(&Event::Progress {
        id: step.id.clone(),
        message: format!("{how}: {} → {}", ds.from, ds.to),
    });
    let out = match run_rsync(ctx, step, &ends.runner, argv) {
        Ok(o) => o,
        Err(e) => return failed(e),
    };
    if ends.between_servers
        && let Some(d) = ends.far_dst.as_ref()
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
    rsync_outcome(ds, &out, &how)
}

/// Makes the directory of a data set's end on its host.
fn make_dir(ctx: &mut Ctx, end: &HostPath) -> Result<(), String> {
    ctx.hosts
        .get(&end.host)?
        .make_dir(&end.path, ctx.cancel)
        .map_err(|e| e.to_string())
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
fn mkpath_or_mkdir(
    ctx: &mut Ctx,
    runner: &str,
    to: &HostPath,
    versions: &mut Versions,
) -> Result<bool, String> {
    let both = match (versions.of(ctx, runner)?, versions.of(ctx, &to.host)?) {
        (Some(a), Some(b)) => has_mkpath(&a) && has_mkpath(&b),
        _ => false,
    };
    if both {
        return Ok(true);
    }
    make_dir(ctx, to)?;
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
    to: &rehost_host::RemoteEnd,
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
