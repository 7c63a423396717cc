//! The step kinds that act on the plan's data sets: `sync` (transfer) and `verify-tree`
//! (prove the copy complete and correct). Both resolve the data set's `HOST:PATH` ends through
//! the run's hosts, so a rehearsal acts on the environment's hosts.

use crate::EngineError;
use crate::events::Event;
use crate::exec::{Ctx, Outcome};
use rehost_plan::{HostPath, Step, SyncPhase};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How many findings the journal keeps inline; the full report is in the step's output file.
const JOURNAL_FINDINGS: usize = 100;

fn failed(detail: String) -> Result<Outcome, EngineError> {
    Ok(Outcome::Failed {
        detail,
        exit_code: None,
        data: None,
    })
}

/// A data set end on a local host: its path on this machine.
fn local_end(ctx: &mut Ctx, end: &HostPath) -> Result<PathBuf, String> {
    if ctx.hosts.local_root(&end.host).is_none() {
        return Err(format!(
            "host {} is reached over ssh; run rehost on that host, or use a `run` step with rsync, until tree work over ssh lands",
            end.host
        ));
    }
    Ok(ctx.hosts.get(&end.host)?.resolve(&end.path))
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A progress callback that emits at most one event a second.
fn progress_emitter<'s>(
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
        let side = |i: usize| format!("{} entries, {} bytes", p.sides[i].entries, p.sides[i].bytes);
        let message = if sides == 2 {
            format!("source {}; destination {}", side(0), side(1))
        } else {
            side(0)
        };
        sink.emit(&Event::Progress {
            id: id.to_owned(),
            message,
        });
    }
}

pub(crate) fn verify_tree(ctx: &mut Ctx, step: &Step, data: &str) -> Result<Outcome, EngineError> {
    let ds = ctx
        .plan
        .data_set(data)
        .expect("validated: the data set exists")
        .clone();
    let (a, b) = match (local_end(ctx, &ds.from), local_end(ctx, &ds.to)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return failed(e),
    };
    let mut opts = rehost_tree::VerifyOptions::default();
    for x in &ds.exclude {
        match rehost_tree::Glob::new(x) {
            Ok(g) => opts.walk.excludes.push(g),
            Err(e) => return failed(format!("data set `{}`: {e}", ds.id)),
        }
    }
    opts.cache = Some(ctx.state_dir.join("tree-cache").join(sanitize(&ds.id)));
    for (p, end) in [(&a, &ds.from), (&b, &ds.to)] {
        if !p.is_dir() {
            return failed(format!("{end} ({}) is not a directory", p.display()));
        }
    }
    let result = {
        let mut progress = progress_emitter(&mut *ctx.sink, &step.id, 2);
        rehost_tree::verify_trees(&a, &b, &opts, &mut progress, ctx.cancel)
    };
    if ctx.cancel.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(Outcome::Cancelled);
    }
    let verified = match result {
        Ok(v) => v,
        Err(e) => {
            return failed(format!(
                "failed to verify {} against {}: {e}",
                ds.to, ds.from
            ));
        }
    };
    let report = &verified.report;

    // The full report goes to the step's output file; the terminal gets the summary.
    let mut human = Vec::new();
    let _ = report.render_human(&mut human);
    let _ = ctx.output.write_all(&human);
    for line in String::from_utf8_lossy(&human).lines().take(20) {
        ctx.sink.emit(&Event::Output {
            id: step.id.clone(),
            host: ds.to.host.clone(),
            stream: "out".into(),
            line: line.to_owned(),
        });
    }

    // Both manifests are kept as evidence, identified in the journal by their digests.
    let evidence = ctx.state_dir.join("evidence");
    let mut manifests = serde_json::Map::new();
    for (side, m) in [("source", &verified.a), ("destination", &verified.b)] {
        let file = evidence.join(format!("{}-{side}.manifest", sanitize(&step.id)));
        let entry = std::fs::create_dir_all(&evidence)
            .map_err(|e| e.to_string())
            .and_then(|_| m.write_file(&file).map_err(|e| e.to_string()))
            .and_then(|_| std::fs::read(&file).map_err(|e| e.to_string()))
            .map(|bytes| {
                serde_json::json!({
                    "file": file.strip_prefix(ctx.state_dir).unwrap_or(&file).to_string_lossy(),
                    "blake3": blake3::hash(&bytes).to_hex().to_string(),
                })
            });
        match entry {
            Ok(v) => {
                manifests.insert(side.into(), v);
            }
            Err(e) => {
                return failed(format!(
                    "failed to keep the {side} manifest as evidence in {}: {e}",
                    evidence.display()
                ));
            }
        }
    }
    let mut json = Vec::new();
    let _ = report.render_json(&mut json);
    let mut doc: serde_json::Value = serde_json::from_slice(&json).unwrap_or_default();
    if let Some(f) = doc.get_mut("findings").and_then(|f| f.as_array_mut()) {
        let total = f.len();
        f.truncate(JOURNAL_FINDINGS);
        doc["findings_total"] = total.into();
    }
    doc["data_set"] = ds.id.clone().into();
    doc["source"] = ds.from.to_string().into();
    doc["destination"] = ds.to.to_string().into();
    doc["manifests"] = manifests.into();

    let code = report.exit_code();
    let t = &report.totals;
    if code == rehost_tree::EXIT_EQUAL {
        Ok(Outcome::Done {
            detail: Some(format!(
                "{} verified complete and correct: {} entries equal ({} files read, {} trusted from the last verification)",
                ds.to, t.equal, t.rehashed, t.trusted
            )),
            exit_code: Some(code),
            confirmed_by: None,
            data: Some(doc),
        })
    } else {
        let classes: Vec<String> = t
            .by_class
            .iter()
            .map(|(c, n)| format!("{n} {}", c.name()))
            .collect();
        let what = if code == rehost_tree::EXIT_DIFFERENT {
            "differs from"
        } else {
            "could not be fully verified against"
        };
        Ok(Outcome::Failed {
            detail: format!(
                "{} {what} {}: {}; the full list is in the step's output. Fix the copy (run the sync again) and run again",
                ds.to,
                ds.from,
                classes.join(", ")
            ),
            exit_code: Some(code),
            data: Some(doc),
        })
    }
}

pub(crate) fn sync(
    ctx: &mut Ctx,
    step: &Step,
    data: &str,
    phase: SyncPhase,
) -> Result<Outcome, EngineError> {
    let _ = (ctx, step, data, phase);
    failed("the sync step is not available in this build".into())
}
