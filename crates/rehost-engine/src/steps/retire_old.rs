//! The `retire-old` step kind: the old service checked stopped (its health command fails, its
//! ports refuse) and disabled (`disable`, then `disabled_check` exits 0), and with `data` the
//! old tree kept read-only through the host's `read_only` capability (`rehost_host::retire`):
//! every change kept as evidence (one JSON line each, its digest in the journal), the tree
//! walked again to prove nothing is left writable. Its rollback sets back the modes that are
//! still as the step left them and runs `enable`. A step that fails after changing modes sets
//! them back before it returns, so a failed attempt leaves the tree as it found it.

use super::{Executor, Need};
use crate::EngineError;
use crate::exec::{Ctx, Outcome, run_command};
use rehost_host::retire::{ModeChange, ReadOnlyAction, ReadOnlySummary};
use rehost_journal::journal::Record;
use rehost_journal::step_data::{
    EvidenceRef, ReadOnlyData, RetireOldData, STEP_DATA_VERSION, StepData,
};
use rehost_plan::{Command, Plan, Step, StepKind};
use std::fmt::Write as _;

pub(super) static EXECUTOR: Executor = Executor {
    kind: "retire-old",
    rollback: Some(rollback),
    execute,
    needs,
};

/// The step's own fields, taken apart.
struct Parts<'s> {
    service: &'s str,
    disabled_check: &'s Command,
    disable: Option<&'s Command>,
    enable: Option<&'s Command>,
    data: Option<&'s str>,
    retention: Option<std::time::Duration>,
}

fn parts(step: &Step) -> Parts<'_> {
    let StepKind::RetireOld {
        service,
        disabled_check,
        disable,
        enable,
        data,
        retention,
    } = &step.kind
    else {
        unreachable!("the registry hands `retire-old` its own steps")
    };
    Parts {
        service,
        disabled_check,
        disable: disable.as_ref(),
        enable: enable.as_ref(),
        data: data.as_deref(),
        retention: *retention,
    }
}

/// The host the service is checked on: the step's, else the service's.
fn service_host(plan: &Plan, step: &Step, service: &str) -> Option<String> {
    step.host
        .clone()
        .or_else(|| plan.service(service).map(|s| s.host.clone()))
}

fn needs<'s>(plan: &'s Plan, step: &'s Step) -> Vec<Need<'s>> {
    let p = parts(step);
    let Some(host) = service_host(plan, step, p.service) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (c, what) in [
        (Some(p.disabled_check), "disabled_check command"),
        (p.disable, "disable command"),
        (p.enable, "enable command"),
    ] {
        if let Some(c) = c {
            out.push(Need::Runs {
                host: host.clone(),
                command: c.clone(),
                what,
            });
        }
    }
    if let Some(data) = p.data {
        out.push(Need::ReadsData { data });
    }
    out
}

fn failed(detail: String, data: Option<RetireOldData>) -> Result<Outcome, EngineError> {
    Ok(Outcome::Failed {
        detail,
        exit_code: None,
        data: data.map(|d| StepData::RetireOld(Box::new(d))),
    })
}

/// What rehost does not stop by removing write bits: said with every result that did.
const NOT_STOPPED: &str = "root (or CAP_DAC_OVERRIDE) can still write, an owner can give write bits back, and rehost does not end the retention itself";

fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    let p = parts(step);
    let Some(svc) = ctx.plan.service(p.service).cloned() else {
        return failed(
            format!("the plan declares no service `{}`", p.service),
            None,
        );
    };
    let host = step.host.clone().unwrap_or_else(|| svc.host.clone());
    let mut rec = RetireOldData {
        v: STEP_DATA_VERSION,
        service: svc.id.clone(),
        host: host.clone(),
        stopped: Vec::new(),
        disable_exit: None,
        disabled_check_exit: None,
        read_only: None,
    };

    // Stopped: the health command fails and every port refuses.
    if let Some(h) = &svc.health {
        let out = match run_command(ctx, step, &host, &Command::Shell(h.clone()), None) {
            Ok(o) if o.cancelled => return Ok(Outcome::Cancelled),
            Ok(o) => o,
            Err(e) => return failed(e, Some(rec)),
        };
        if out.exit.code == Some(0) {
            return failed(
                format!(
                    "service `{}` still answers on host {host}: its health command exited 0; stop it first (a `stop` step before this one)",
                    svc.id
                ),
                Some(rec),
            );
        }
        rec.stopped
            .push(format!("health command ended with {}", out.exit));
    }
    match listening(ctx, &host, &svc.ports) {
        Ok(Ok(closed)) => rec.stopped.extend(closed),
        Ok(Err(open)) => {
            return failed(
                format!(
                    "service `{}` is still listening on host {host}: {open}; stop it first (a `stop` step before this one)",
                    svc.id
                ),
                Some(rec),
            );
        }
        Err(e) => return failed(e, Some(rec)),
    }
    if rec.stopped.is_empty() {
        return failed(
            format!(
                "service `{}` declares neither a `health` command nor `ports`: rehost cannot check that it is stopped; declare one",
                svc.id
            ),
            Some(rec),
        );
    }

    // Disabled: `disable` if given, then the check.
    if let Some(c) = p.disable {
        let out = match run_command(ctx, step, &host, c, None) {
            Ok(o) if o.cancelled => return Ok(Outcome::Cancelled),
            Ok(o) => o,
            Err(e) => return failed(e, Some(rec)),
        };
        rec.disable_exit = out.exit.code;
        if out.exit.code != Some(0) {
            return failed(
                format!(
                    "the `disable` command ended with {} on host {host}",
                    out.exit
                ),
                Some(rec),
            );
        }
    }
    let out = match run_command(ctx, step, &host, p.disabled_check, None) {
        Ok(o) if o.cancelled => return Ok(Outcome::Cancelled),
        Ok(o) => o,
        Err(e) => return failed(e, Some(rec)),
    };
    rec.disabled_check_exit = out.exit.code;
    if out.exit.code != Some(0) {
        return failed(
            format!(
                "service `{}` would start again at the next boot: `disabled_check` ended with {} on host {host}{}",
                svc.id,
                out.exit,
                if p.disable.is_some() {
                    " after `disable` exited 0"
                } else {
                    "; give `disable`, or disable it by hand first"
                }
            ),
            Some(rec),
        );
    }
    let mut detail = format!(
        "service `{}` on host {host}: stopped ({}), disabled (`disabled_check` exited 0)",
        svc.id,
        rec.stopped.join("; ")
    );

    let Some(data) = p.data else {
        return Ok(Outcome::Done {
            detail: Some(detail),
            exit_code: None,
            confirmed_by: None,
            data: Some(StepData::RetireOld(Box::new(rec))),
        });
    };
    match keep_read_only(ctx, step, data, p.retention.unwrap_or_default()) {
        Ok((ro, note)) => {
            let _ = write!(detail, "; {note}");
            let bad = ro.still_writable > 0 || ro.errors > 0;
            rec.read_only = Some(ro);
            if bad {
                return failed(detail, Some(rec));
            }
            Ok(Outcome::Done {
                detail: Some(detail),
                exit_code: None,
                confirmed_by: None,
                data: Some(StepData::RetireOld(Box::new(rec))),
            })
        }
        Err(Stop::Cancelled) => Ok(Outcome::Cancelled),
        Err(Stop::Failed(e)) => failed(format!("{detail}; {e}"), Some(rec)),
    }
}

/// Whether anything listens on the service's ports on its host, from the host's kernel: `Ok`
/// with one line per port found closed, or `Err` naming the sockets still listening. Where the
/// plan gives the host an `address` (hosts that share a machine in a rehearsal), only sockets
/// bound to it or to a wildcard address count; otherwise every socket on the port does.
fn listening(
    ctx: &mut Ctx,
    host: &str,
    ports: &[u16],
) -> Result<Result<Vec<String>, String>, String> {
    if ports.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    let address: Option<std::net::IpAddr> = ctx
        .plan
        .host_decl(ctx.env, host)
        .and_then(|d| d.address.as_deref())
        .and_then(|a| a.parse().ok());
    let (sockets, gaps) = ctx
        .hosts
        .get(host)?
        .listening(ports, ctx.cancel)
        .map_err(|e| e.to_string())?;
    if let Some(g) = gaps.iter().find(|g| g.contains("could not be read either")) {
        return Err(format!(
            "the listening sockets on host {host} could not be read, so rehost cannot tell the service is stopped: {}",
            rehost_tree::escape::text(g)
        ));
    }
    let counts = |a: &str| match (address, a.parse::<std::net::IpAddr>()) {
        (None, _) => true,
        (Some(_), Ok(ip)) if ip.is_unspecified() => true,
        (Some(want), Ok(ip)) => ip == want,
        (Some(_), Err(_)) => true,
    };
    let open: Vec<String> = sockets
        .iter()
        .filter(|s| counts(&s.address))
        .map(|s| format!("{}:{}", s.address, s.port))
        .collect();
    if !open.is_empty() {
        return Ok(Err(open.join(", ")));
    }
    let scope = match address {
        Some(a) => format!(" on {a} or a wildcard address"),
        None => String::new(),
    };
    Ok(Ok(ports
        .iter()
        .map(|p| format!("port {p}: no listening socket{scope} (the host's kernel)"))
        .collect()))
}

enum Stop {
    Cancelled,
    Failed(String),
}

/// Removes the write bits beneath the data set's old side, keeps the changes as evidence and
/// walks it again. On any failure after changes were made, they are set back first.
fn keep_read_only(
    ctx: &mut Ctx,
    step: &Step,
    data: &str,
    retention: std::time::Duration,
) -> Result<(ReadOnlyData, String), Stop> {
    let ds = ctx
        .plan
        .data_set(data)
        .expect("validated: the data set exists")
        .clone();
    let (host_name, path) = (ds.from.host.clone(), ds.from.path.clone());
    let name = format!(
        "{}.{}-modes.jsonl",
        crate::recorder::sanitize(&step.id),
        ctx.attempt
    );
    let mut changes: Vec<ModeChange> = Vec::new();
    let host = ctx.hosts.get(&host_name).map_err(Stop::Failed)?;
    let applied = host.read_only(&path, ReadOnlyAction::Apply, ctx.cancel, &mut |batch| {
        changes.extend(batch);
        Ok(())
    });
    // Sets back what this attempt changed; `why` with what that did.
    let undo = |ctx: &mut Ctx, changes: &[ModeChange], why: String| -> String {
        if changes.is_empty() {
            return why;
        }
        let never = std::sync::atomic::AtomicBool::new(false);
        let restored = ctx.hosts.get(&host_name).and_then(|h| {
            h.restore_modes(&path, changes, &never)
                .map_err(|e| e.to_string())
        });
        match restored {
            Ok(r) if r.left_count == 0 => format!(
                "{why}; the {} mode(s) this attempt removed were set back",
                r.restored
            ),
            Ok(r) => format!(
                "{why}; {} mode(s) set back, {} left as found: {}",
                r.restored,
                r.left_count,
                r.left.join("; ")
            ),
            Err(e) => format!(
                "{why}; setting back the {} mode(s) this attempt removed failed too: {e}",
                changes.len()
            ),
        }
    };
    let summary = match applied {
        Ok(s) => s,
        Err(e) if ctx.cancel.load(std::sync::atomic::Ordering::Relaxed) => {
            undo(ctx, &changes, e.to_string());
            return Err(Stop::Cancelled);
        }
        Err(e) => {
            return Err(Stop::Failed(undo(
                ctx,
                &changes,
                format!("keeping {} read-only: {e}", ds.from),
            )));
        }
    };
    let mut bytes = Vec::with_capacity(changes.len() * 64);
    for c in &changes {
        serde_json::to_writer(&mut bytes, c).expect("a mode change serialises");
        bytes.push(b'\n');
    }
    let kept = ctx
        .state
        .subdir("evidence", true)
        .and_then(|d| {
            d.expect("created")
                .write_atomic(&name, true, &mut |w| w.write_all(&bytes))
        })
        .map_err(|e| format!("failed to keep the mode changes as evidence/{name}: {e}"));
    if let Err(e) = kept {
        return Err(Stop::Failed(undo(ctx, &changes, e)));
    }
    let host = ctx.hosts.get(&host_name).map_err(Stop::Failed)?;
    let check = host.read_only(&path, ReadOnlyAction::Check, ctx.cancel, &mut |_| {
        Err("sent mode changes to a check".into())
    });
    let check: ReadOnlySummary = match check {
        Ok(c) => c,
        Err(e) => {
            return Err(Stop::Failed(undo(
                ctx,
                &changes,
                format!("walking {} again to check it is read-only: {e}", ds.from),
            )));
        }
    };
    let until = ctx.clock.now() + jiff::SignedDuration::try_from(retention).unwrap_or_default();
    let until = until.round(jiff::Unit::Second).unwrap_or(until).to_string();
    let shown = |v: &[rehost_host::Bytes]| {
        v.iter()
            .take(10)
            .map(|p| rehost_tree::escape::display(p.as_bytes()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ro = ReadOnlyData {
        data_set: ds.id.clone(),
        host: host_name.clone(),
        path: path.clone(),
        entries: summary.entries,
        changed: summary.changed,
        already: summary.already,
        symlinks: summary.symlinks,
        linked: summary.linked,
        other_fs: summary
            .other_fs
            .iter()
            .map(|p| rehost_tree::escape::display(p.as_bytes()))
            .collect(),
        still_writable: check.writable_count,
        errors: summary.error_count,
        modes: EvidenceRef {
            side: "source".into(),
            file: format!("evidence/{name}"),
            blake3: blake3::hash(&bytes).to_hex().to_string(),
        },
        retention_secs: retention.as_secs(),
        until: until.clone(),
    };
    if check.writable_count > 0 || summary.error_count > 0 {
        let mut why = format!(
            "{} is not read-only: {} entr(y/ies) still writable ({}{}), {} could not be changed",
            ds.from,
            check.writable_count,
            shown(&check.writable),
            if check.writable_count > 10 {
                ", …"
            } else {
                ""
            },
            summary.error_count
        );
        if !summary.errors.is_empty() {
            let _ = write!(
                why,
                " ({})",
                summary
                    .errors
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        let why = undo(ctx, &changes, why);
        return Ok((ro, why));
    }
    let mut note = format!(
        "{} made read-only, to stay so for the retention, until {until}: {} entr(y/ies), write bits removed from {}, {} already without; walked again: none writable; changes kept in evidence/{name}",
        ds.from, summary.entries, summary.changed, summary.already
    );
    if summary.symlinks > 0 {
        let _ = write!(note, "; {} symlink(s) not followed", summary.symlinks);
    }
    if summary.linked > 0 {
        let _ = write!(
            note,
            "; {} file(s) with other names (hard links), read-only under those too",
            summary.linked
        );
    }
    if !summary.other_fs.is_empty() {
        let _ = write!(
            note,
            "; NOT changed: mount point(s) below it ({})",
            shown(&summary.other_fs)
        );
    }
    let _ = write!(note, "; not prevented: {NOT_STOPPED}");
    Ok((ro, note))
}

/// The rollback: the kept changes read back (their digest checked against the journal's),
/// each mode set back where the entry is still as the step left it, then `enable`.
fn rollback(ctx: &mut Ctx, step: &Step) -> Result<String, String> {
    let p = parts(step);
    let rec = ctx
        .records
        .iter()
        .rev()
        .find_map(|r| match r {
            Record::StepFinished {
                id,
                result_data: Some(StepData::RetireOld(d)),
                ..
            } if *id == step.id => Some(d.clone()),
            _ => None,
        })
        .ok_or_else(|| {
            format!(
                "the journal has no result of step `{}` to undo: give its modes back and enable the service by hand",
                step.id
            )
        })?;
    let mut done = Vec::new();
    let mut incomplete = false;
    if let Some(ro) = &rec.read_only {
        let name = ro.modes.file.strip_prefix("evidence/").ok_or_else(|| {
            format!(
                "the journal names an evidence file outside evidence/: {}",
                ro.modes.file
            )
        })?;
        let bytes = ctx
            .state
            .subdir("evidence", false)
            .ok()
            .flatten()
            .and_then(|d| d.read(name).ok().flatten())
            .ok_or_else(|| format!("the kept mode changes {} are missing from the state directory: set the modes back by hand", ro.modes.file))?;
        if blake3::hash(&bytes).to_hex().as_str() != ro.modes.blake3 {
            return Err(format!(
                "the kept mode changes {} do not match the digest the journal holds: not used; set the modes back by hand",
                ro.modes.file
            ));
        }
        let mut changes = Vec::new();
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            changes.push(
                serde_json::from_slice::<ModeChange>(line)
                    .map_err(|e| format!("{} line {}: {e}", ro.modes.file, i + 1))?,
            );
        }
        let host = ctx.hosts.get(&ro.host)?;
        let r = host
            .restore_modes(&ro.path, &changes, ctx.cancel)
            .map_err(|e| format!("setting back the modes under {}:{}: {e}", ro.host, ro.path))?;
        if r.left_count > 0 {
            // Not undone in full; `enable` still runs below, and the whole is a failure.
            incomplete = true;
            done.push(format!(
                "{} of {} mode(s) set back under {}:{}; {} left as found (changed since the step): {}",
                r.restored,
                changes.len(),
                ro.host,
                ro.path,
                r.left_count,
                r.left.join("; ")
            ));
        } else {
            done.push(format!(
                "{} mode(s) set back under {}:{}, each still as the step left it",
                r.restored, ro.host, ro.path
            ));
        }
    }
    if let Some(enable) = p.enable {
        let out = run_command(ctx, step, &rec.host, enable, None)?;
        if out.exit.code != Some(0) {
            return Err(format!(
                "{}the `enable` command ended with {} on host {}",
                done.iter().map(|d| format!("{d}; ")).collect::<String>(),
                out.exit,
                rec.host
            ));
        }
        done.push(format!("`enable` exited 0 on host {}", rec.host));
    } else if rec.disable_exit.is_some() {
        done.push(format!(
            "service `{}` NOT enabled again: the step gives no `enable` command",
            rec.service
        ));
    }
    if incomplete {
        return Err(done.join("; "));
    }
    Ok(done.join("; "))
}

/// The `retire-old` steps whose read-only tree stands: each one's last attempt, if it finished
/// done with a `read_only` result and no rollback began since (a rollback gave the modes back).
pub(crate) fn retired<'p>(
    plan: &'p Plan,
    records: &[Record],
) -> Vec<(&'p Step, u32, ReadOnlyData)> {
    let mut out = Vec::new();
    for step in plan
        .steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::RetireOld { .. }))
    {
        let mut last = None;
        for r in records {
            match r {
                Record::StepFinished {
                    id,
                    attempt,
                    result,
                    result_data,
                    ..
                } if *id == step.id => {
                    last = match (result, result_data) {
                        (
                            rehost_journal::journal::StepResult::Done,
                            Some(StepData::RetireOld(d)),
                        ) => d.read_only.clone().map(|ro| (*attempt, ro)),
                        _ => None,
                    }
                }
                Record::RollbackStarted { .. } => last = None,
                _ => {}
            }
        }
        if let Some((attempt, ro)) = last {
            out.push((step, attempt, ro));
        }
    }
    out
}

/// Walks a retired tree again: a `ReadOnlyRechecked` record saying whether any entry has a
/// write bit again.
pub(crate) fn recheck(
    hosts: &mut crate::exec::Hosts,
    cancel: &std::sync::atomic::AtomicBool,
    (step, attempt, ro): (&Step, u32, &ReadOnlyData),
    at: String,
) -> Record {
    let mut rec = Record::ReadOnlyRechecked {
        at,
        step: step.id.clone(),
        attempt,
        data_set: ro.data_set.clone(),
        source: format!("{}:{}", ro.host, ro.path),
        read_only: false,
        entries: 0,
        writable_total: 0,
        writable: Vec::new(),
        until: ro.until.clone(),
        error: None,
    };
    let checked = hosts.get(&ro.host).and_then(|h| {
        h.read_only(&ro.path, ReadOnlyAction::Check, cancel, &mut |_| {
            Err("sent mode changes to a check".into())
        })
        .map_err(|e| e.to_string())
    });
    let Record::ReadOnlyRechecked {
        read_only,
        entries,
        writable_total,
        writable,
        error,
        ..
    } = &mut rec
    else {
        unreachable!("made above")
    };
    match checked {
        Ok(s) if s.error_count > 0 => {
            *error = Some(format!(
                "{} entr(y/ies) could not be read: {}",
                s.error_count,
                s.errors.join("; ")
            ));
        }
        Ok(s) => {
            *entries = s.entries;
            *writable_total = s.writable_count;
            *writable = s
                .writable
                .iter()
                .map(|p| {
                    rehost_tree::escape::display(if p.as_bytes().is_empty() {
                        b"."
                    } else {
                        p.as_bytes()
                    })
                })
                .collect();
            *read_only = s.writable_count == 0;
        }
        Err(e) => *error = Some(e),
    }
    rec
}

/// One line for a read-only re-check (escaped where it was made).
pub(crate) fn summary(r: &Record) -> String {
    let Record::ReadOnlyRechecked {
        step,
        source,
        read_only,
        entries,
        writable_total,
        writable,
        until,
        error,
        ..
    } = r
    else {
        return String::new();
    };
    match error {
        Some(e) => {
            format!("the old tree {source} made read-only by `{step}` could NOT be re-checked: {e}")
        }
        None if *read_only => format!(
            "the old tree {source} made read-only by `{step}` is still read-only: {entries} entr(y/ies) walked, none with a write bit (retention until {until})"
        ),
        None => format!(
            "the old tree {source} made read-only by `{step}` is WRITABLE AGAIN during its retention (until {until}): {writable_total} entr(y/ies) with a write bit: {}{}",
            writable
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            if *writable_total > 10 { ", …" } else { "" }
        ),
    }
}
