//! The `watch-old` step kind: the old side of a data set (its source tree) walked and hashed
//! where it lives, the manifest kept in the state directory's `evidence/` per attempt and its
//! digest in the journal (`StepData::WatchOld`). At the end of the run [`recheck`] walks the
//! old side again and compares it with the kept manifest: what changed there after its final
//! state was taken are lost writes (`Record::OldSideRechecked`).

use super::{Executor, Need};
use crate::EngineError;
use crate::exec::{Ctx, Hosts, JOURNAL_FINDINGS, Outcome, failed};
use rehost_journal::journal::{Record, StepResult};
use rehost_journal::step_data::{
    EvidenceRef, FindingData, STEP_DATA_VERSION, StepData, WatchOldData,
};
use rehost_plan::{Plan, Step, StepKind};
use rehost_tree::private::PrivateDir;
use std::sync::atomic::AtomicBool;

pub(super) static EXECUTOR: Executor = Executor {
    kind: "watch-old",
    rollback: None,
    execute,
    needs: |_, step| match &step.kind {
        StepKind::WatchOld { data } => vec![Need::ReadsData { data }],
        _ => Vec::new(),
    },
};

/// The walk of the old side: the data set's excludes, every file hashed (no cache: a write
/// that kept size and times must not be trusted away).
fn walk(
    hosts: &mut Hosts,
    ds: &rehost_plan::DataSet,
    cancel: &AtomicBool,
) -> Result<rehost_tree::Manifest, String> {
    for x in &ds.exclude {
        rehost_tree::Glob::new(x).map_err(|e| format!("data set `{}`: {e}", ds.id))?;
    }
    let options = rehost_host::ManifestOptions {
        excludes: ds.exclude.clone(),
        incremental: false,
        ..Default::default()
    };
    let host = hosts.get(&ds.from.host)?;
    host.manifest(ds.from.path.as_bytes(), &options, cancel, &mut |_| {})
        .map_err(|e| format!("failed to walk the old side {}: {e}", ds.from))
}

fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    let StepKind::WatchOld { data } = &step.kind else {
        unreachable!("the registry hands `watch-old` its own steps")
    };
    let ds = ctx
        .plan
        .data_set(data)
        .expect("validated: the data set exists")
        .clone();
    let result = walk(ctx.hosts, &ds, ctx.cancel);
    if ctx.cancel.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(Outcome::Cancelled);
    }
    let manifest = match result {
        Ok(m) => m,
        Err(e) => return failed(e),
    };
    let name = format!(
        "{}.{}-old.manifest",
        crate::recorder::sanitize(&step.id),
        ctx.attempt
    );
    let evidence = ctx.state_dir.join("evidence");
    let bytes = ctx
        .state
        .subdir("evidence", true)
        .and_then(|d| {
            let d = d.expect("created");
            d.write_atomic(&name, true, &mut |w| manifest.write_to(w))?;
            d.read(&name).map(Option::unwrap_or_default)
        })
        .map_err(|e| {
            format!(
                "failed to keep the old side's manifest as evidence in {}: {e}",
                evidence.display()
            )
        });
    let bytes = match bytes {
        Ok(b) => b,
        Err(e) => return failed(e),
    };
    let entries = manifest.entries.len() as u64;
    let doc = StepData::WatchOld(WatchOldData {
        v: STEP_DATA_VERSION,
        data_set: ds.id.clone(),
        host: ds.from.host.clone(),
        path: ds.from.path.clone(),
        entries,
        manifest: EvidenceRef {
            side: "source".into(),
            file: format!("evidence/{name}"),
            blake3: blake3::hash(&bytes).to_hex().to_string(),
        },
        excludes: ds.exclude.clone(),
    });
    Ok(Outcome::Done {
        detail: Some(format!(
            "the old side {} taken: {entries} entries, kept in evidence/{name}; re-checked at the end of the run for writes after now",
            ds.from
        )),
        exit_code: None,
        confirmed_by: None,
        data: Some(doc),
    })
}

/// The `watch-old` steps whose kept manifest holds: each one's last attempt, if it finished
/// done with its result and no rollback began since. After a rollback the old side serves
/// again and takes writes that are not lost: such a watch is void (the second list, by step
/// id) until it runs again. A later failed attempt leaves nothing.
#[allow(clippy::type_complexity)]
pub(crate) fn watched<'p>(
    plan: &'p Plan,
    records: &[Record],
) -> (Vec<(&'p Step, u32, WatchOldData)>, Vec<&'p str>) {
    let (mut out, mut void) = (Vec::new(), Vec::new());
    for step in plan
        .steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::WatchOld { .. }))
    {
        let mut last = None;
        let mut voided = false;
        for r in records {
            match r {
                Record::StepFinished {
                    id,
                    attempt,
                    result,
                    result_data,
                    ..
                } if *id == step.id => {
                    voided = false;
                    last = match (result, result_data) {
                        (StepResult::Done, Some(StepData::WatchOld(d))) => {
                            Some((*attempt, d.clone()))
                        }
                        _ => None,
                    }
                }
                // A rollback after the watch: the old side is the service again.
                Record::RollbackStarted { .. } if last.is_some() => {
                    last = None;
                    voided = true;
                }
                _ => {}
            }
        }
        match last {
            Some((attempt, d)) => out.push((step, attempt, d)),
            None if voided => void.push(step.id.as_str()),
            None => {}
        }
    }
    (out, void)
}

/// What the summary says of a watch a rollback made void.
pub(crate) fn void_summary(step: &str) -> String {
    format!(
        "; the old side watched by `{step}` was NOT re-checked: a rollback after it made the old side the service again; place the watch after the step the rollback resumes from (after the old service is stopped), so that the resumed run takes it again"
    )
}

/// Walks the old side of a watched step again and compares it with its kept manifest (read
/// back from the state directory and checked against the digest the journal holds). The
/// record says what changed, or that nothing did, or why it could not compare.
pub(crate) fn recheck(
    plan: &Plan,
    hosts: &mut Hosts,
    state: &PrivateDir,
    cancel: &AtomicBool,
    (step, attempt, d): (&Step, u32, &WatchOldData),
    at: String,
) -> Record {
    let source = format!("{}:{}", d.host, d.path);
    let mut not_compared = String::from(
        "anything written after this re-check; access and change times (not in manifests)",
    );
    if !d.excludes.is_empty() {
        not_compared.push_str(&format!(
            "; paths excluded by the data set: {}",
            d.excludes
                .iter()
                .map(|x| format!("`{x}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut rec = Record::OldSideRechecked {
        at,
        step: step.id.clone(),
        attempt,
        data_set: d.data_set.clone(),
        source: source.clone(),
        unchanged: false,
        changes_total: 0,
        changes: Vec::new(),
        error: None,
        not_compared,
    };
    let Record::OldSideRechecked {
        unchanged,
        changes_total,
        changes,
        error,
        ..
    } = &mut rec
    else {
        unreachable!()
    };
    match compare_now(plan, hosts, state, cancel, d) {
        Err(e) => *error = Some(e),
        Ok(report) => {
            *unchanged = report.findings.is_empty();
            *changes_total = report.findings.len() as u64;
            *changes = report
                .findings
                .iter()
                .take(JOURNAL_FINDINGS)
                .map(|f| FindingData {
                    class: match f.class {
                        rehost_tree::Class::Missing => "deleted".into(),
                        rehost_tree::Class::Extra => "created".into(),
                        c => c.name().into(),
                    },
                    // The tree's root is the empty path: "." for people.
                    path: if f.path.is_empty() {
                        ".".into()
                    } else {
                        String::from_utf8_lossy(&f.path).into_owned()
                    },
                    path_hex: std::str::from_utf8(&f.path)
                        .is_err()
                        .then(|| rehost_tree::escape::hex(&f.path)),
                    a: f.a.clone(),
                    b: f.b.clone(),
                })
                .collect();
        }
    }
    rec
}

fn compare_now(
    plan: &Plan,
    hosts: &mut Hosts,
    state: &PrivateDir,
    cancel: &AtomicBool,
    d: &WatchOldData,
) -> Result<rehost_tree::Report, String> {
    let name = d
        .manifest
        .file
        .strip_prefix("evidence/")
        .filter(|n| !n.contains('/'))
        .ok_or_else(|| {
            format!(
                "the kept manifest `{}` is not in evidence/",
                d.manifest.file
            )
        })?;
    let bytes = state
        .subdir("evidence", false)
        .and_then(|e| match e {
            Some(e) => e.read(name),
            None => Ok(None),
        })
        .map_err(|e| format!("failed to read the kept manifest {}: {e}", d.manifest.file))?
        .ok_or_else(|| format!("the kept manifest {} is gone", d.manifest.file))?;
    if blake3::hash(&bytes).to_hex().as_str() != d.manifest.blake3 {
        return Err(format!(
            "the kept manifest {} no longer has the digest the journal holds: not compared",
            d.manifest.file
        ));
    }
    let kept = rehost_tree::Manifest::read_from(
        &mut std::io::Cursor::new(&bytes),
        std::path::Path::new(&d.manifest.file),
    )
    .map_err(|e| format!("the kept manifest {} does not read: {e}", d.manifest.file))?;
    let ds = plan
        .data_set(&d.data_set)
        .ok_or_else(|| format!("data set `{}` is no longer in the plan", d.data_set))?;
    if ds.from.host != d.host || ds.from.path != d.path {
        return Err(format!(
            "data set `{}` now has its source at {}, not {}:{} where the manifest was taken",
            d.data_set, ds.from, d.host, d.path
        ));
    }
    let now = walk(hosts, ds, cancel)?;
    Ok(rehost_tree::compare(
        &kept,
        &now,
        &rehost_tree::CompareOptions::default(),
    ))
}

/// What a run's summary (and `rehost status --recheck`) says of a re-check: lost writes by
/// path (the first five, and the count), or unchanged with what was not compared, or why it
/// could not compare. Paths escaped for the terminal.
pub(crate) fn summary(r: &Record) -> String {
    let Record::OldSideRechecked {
        step,
        source,
        unchanged,
        changes_total,
        changes,
        error,
        not_compared,
        ..
    } = r
    else {
        return String::new();
    };
    let source = rehost_plan::escape_control(source);
    if let Some(e) = error {
        return format!(
            "; the old side {source} watched by `{step}` could NOT be re-checked: {}",
            rehost_plan::escape_control(e)
        );
    }
    if *unchanged {
        return format!(
            "; the old side {source} unchanged since `{step}` took it (not compared: {not_compared})"
        );
    }
    let shown: Vec<String> = changes
        .iter()
        .take(5)
        .map(|c| format!("{} {}", c.class, rehost_plan::escape_control(&c.path)))
        .collect();
    let more = if *changes_total > shown.len() as u64 {
        format!(" and {} more", *changes_total - shown.len() as u64)
    } else {
        String::new()
    };
    format!(
        "; LOST WRITES: {changes_total} change(s) reached the old side {source} after `{step}` took its final state: {}{more}",
        shown.join(", ")
    )
}

/// `rehost status --recheck`: every `watch-old` step the journal holds done re-checked now,
/// each re-check appended to the run's journal (after its `run_finished`, which it does not
/// change: a re-check starts no step), under the environment's run lock so that no run
/// writes the journal at the same time. Returns each record with the line the terminal
/// shows (no record for a watch a rollback made void); none when no `watch-old` step has
/// finished.
pub fn recheck_now(
    plan: &Plan,
    env: Option<&str>,
    state_dir: &std::path::Path,
    ssh_config: Option<&std::path::Path>,
    cancel: &AtomicBool,
) -> Result<Vec<(Option<Record>, String)>, EngineError> {
    let env_name = env.unwrap_or("production");
    let targets = plan
        .hosts_for(env)
        .ok_or_else(|| EngineError::UnknownEnvironment(env_name.to_owned()))?;
    let mut hosts = Hosts::new(targets, ssh_config);
    let Some(sdir) = crate::open_state_dir(state_dir, false)? else {
        return Ok(Vec::new());
    };
    let _lock = rehost_journal::RunLock::acquire(&sdir, env_name)?;
    let (mut journal, torn) = rehost_journal::journal::Journal::open(&sdir)?;
    let clock = crate::clock::SystemClock::default();
    if let Some(message) = torn {
        journal.append(Record::Warning {
            at: crate::Clock::now(&clock).to_string(),
            message,
        })?;
    }
    let (watched, void) = watched(plan, journal.records());
    let mut out: Vec<(Option<Record>, String)> = void
        .iter()
        .map(|s| (None, void_summary(s).trim_start_matches("; ").to_owned()))
        .collect();
    for (step, attempt, d) in watched {
        let at = crate::Clock::now(&clock).to_string();
        let r = recheck(plan, &mut hosts, &sdir, cancel, (step, attempt, &d), at);
        journal.append(r.clone())?;
        let line = summary(&r);
        out.push((Some(r), line.trim_start_matches("; ").to_owned()));
    }
    for (step, attempt, ro) in super::retire_old::retired(plan, journal.records()) {
        let at = crate::Clock::now(&clock).to_string();
        let r = super::retire_old::recheck(&mut hosts, cancel, (step, attempt, &ro), at);
        journal.append(r.clone())?;
        let line = super::retire_old::summary(&r);
        out.push((Some(r), line));
    }
    Ok(out)
}
