//! The `verify-tree` step kind: a data set's copy proved complete and correct against its
//! source, each side walked and hashed where it lives. The result and the manifests' digests go
//! into the journal (`StepData::VerifyTree`), the manifests into the state directory's
//! `evidence/`, per attempt.

use super::sync::progress_emitter;
use super::{Executor, Need};
use crate::EngineError;
use crate::events::Event;
use crate::exec::{Ctx, JOURNAL_FINDINGS, Outcome, failed};
use rehost_journal::journal::Record;
use rehost_journal::step_data::{
    EvidenceRef, ExcludedData, FindingData, PrivilegedData, STEP_DATA_VERSION, StepData,
    VerifyTreeData,
};
use rehost_plan::{Step, StepKind};

pub(super) static EXECUTOR: Executor = Executor {
    kind: "verify-tree",
    rollback: None,
    execute,
    needs: |_, step| match &step.kind {
        StepKind::VerifyTree { data } => vec![Need::ReadsData { data }],
        _ => Vec::new(),
    },
};

/// Walks and hashes both ends of a data set where they live, both at once
/// (`rehost_host::verify_pair`: in process with the state directory's cache of the pair when
/// both are trees of this machine, else on each host through its agent).
fn walk_both(
    ctx: &mut Ctx,
    step: &Step,
    ds: &rehost_plan::DataSet,
) -> Result<rehost_host::PairVerified, String> {
    for x in &ds.exclude {
        rehost_tree::Glob::new(x).map_err(|e| format!("data set `{}`: {e}", ds.id))?;
    }
    let options = rehost_host::ManifestOptions {
        excludes: ds.exclude.clone(),
        incremental: true,
        ..Default::default()
    };
    let cache = ctx
        .state_dir
        .join("tree-cache")
        .join(crate::recorder::sanitize(&ds.id));
    let (ha, hb) = ctx.hosts.pair(&ds.from.host, &ds.to.host)?;
    let mut progress = progress_emitter(&mut *ctx.sink, &step.id, 2);
    rehost_host::verify_pair(
        (ha, ds.from.path.as_bytes()),
        (hb, ds.to.path.as_bytes()),
        &options,
        Some(&cache),
        ctx.cancel,
        &mut progress,
    )
    .map_err(|e| match e {
        rehost_host::PairError::Side(0, e) => format!("failed to walk {}: {e}", ds.from),
        rehost_host::PairError::Side(_, e) => format!("failed to walk {}: {e}", ds.to),
        rehost_host::PairError::Both(e) => {
            format!("failed to verify {} against {}: {e}", ds.to, ds.from)
        }
    })
}

fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    let StepKind::VerifyTree { data } = &step.kind else {
        unreachable!("the registry hands `verify-tree` its own steps")
    };
    let ds = ctx
        .plan
        .data_set(data)
        .expect("validated: the data set exists")
        .clone();
    let result = walk_both(ctx, step, &ds);
    if ctx.cancel.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(Outcome::Cancelled);
    }
    let (verified, trusted_from) = match result {
        Ok(v) => (v.verified, v.trusted_from),
        Err(e) => return failed(e),
    };
    let report = &verified.report;

    // What the plan names under the data set that its excludes leave out: said, not verified.
    let not_verified: Vec<ExcludedData> = rehost_plan::excluded_named_paths(ctx.plan, &ds)
        .into_iter()
        .map(|x| ExcludedData {
            path: x.path,
            key: x.key,
            exclude: x.exclude,
        })
        .collect();

    // The full report goes to the step's output file; the terminal gets the summary.
    let mut human = Vec::new();
    let _ = report.render_human(&mut human);
    for x in &not_verified {
        human.extend_from_slice(
            format!(
                "  not verified: {} (key `{}`), excluded by `{}`\n",
                x.path, x.key, x.exclude
            )
            .as_bytes(),
        );
    }
    let _ = ctx.output.write_all(&human);
    for line in String::from_utf8_lossy(&human).lines().take(20) {
        ctx.sink.emit(&Event::Output {
            id: step.id.clone(),
            host: ds.to.host.clone(),
            stream: "out".into(),
            line: line.to_owned(),
        });
    }

    // Both manifests are kept as evidence, per attempt (a rerun must not replace what an
    // earlier attempt's record points at), identified in the journal by their digests.
    let manifests = match keep_manifests(ctx, step, &verified.a, &verified.b) {
        Ok(m) => m,
        Err(e) => return failed(e),
    };
    let findings = findings_data(report);
    let doc = StepData::VerifyTree(Box::new(VerifyTreeData {
        v: STEP_DATA_VERSION,
        data_set: ds.id.clone(),
        source: ds.from.to_string(),
        destination: ds.to.to_string(),
        exit_code: report.exit_code(),
        totals: report.totals.clone(),
        ignored: report.ignored.iter().map(|c| c.name().to_owned()).collect(),
        excludes: report.excludes.clone(),
        warnings: report.warnings.clone(),
        findings,
        findings_total: report.findings.len() as u64,
        manifests,
        privileged: report
            .privileged
            .iter()
            .take(JOURNAL_FINDINGS)
            .map(|x| PrivilegedData {
                path: String::from_utf8_lossy(&x.path).into_owned(),
                path_hex: hex_unless_utf8(&x.path),
                what: x.what.clone(),
            })
            .collect(),
        privileged_total: report.privileged.len() as u64,
        trusted_from: (report.totals.trusted > 0)
            .then(|| trust_basis(ctx.records, &ds.id, trusted_from)),
        not_verified: not_verified.clone(),
    }));

    let code = report.exit_code();
    let t = &report.totals;
    if code == rehost_tree::EXIT_EQUAL {
        // Issue 18: "trusted unchanged since the last verification" was said where no
        // verification had run: the built-in transfer's walk had read the digests.
        let read = if t.trusted == 0 {
            format!(
                "files hashed now on either side: {}; none trusted",
                t.rehashed
            )
        } else {
            format!(
                "files hashed now on either side: {}; trusted unchanged since {}: {}",
                t.rehashed,
                trust_basis(ctx.records, &ds.id, trusted_from),
                t.trusted
            )
        };
        Ok(Outcome::Done {
            detail: Some(format!(
                "{} verified complete and correct: {} entries equal on both sides ({read}){}{}",
                ds.to,
                t.equal,
                privileged_note(report.privileged.len()),
                excluded_note(&ds.exclude, &not_verified)
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
                "{} {what} {}: {}; the full list is in the step's output. Fix the copy (run the sync again) and run again{}",
                ds.to,
                ds.from,
                classes.join(", "),
                excluded_note(&ds.exclude, &not_verified)
            ),
            exit_code: Some(code),
            data: Some(doc),
        })
    }
}

/// Keeps both manifests of a verification in the state directory's `evidence/`, per attempt
/// (a rerun must not replace what an earlier attempt's record points at), 0600 and never
/// through a symlink; returns where, with their digests, for the journal.
pub(super) fn keep_manifests(
    ctx: &mut Ctx,
    step: &Step,
    a: &rehost_tree::Manifest,
    b: &rehost_tree::Manifest,
) -> Result<Vec<EvidenceRef>, String> {
    let evidence = ctx.state_dir.join("evidence");
    let mut manifests = Vec::new();
    for (side, m) in [("source", a), ("destination", b)] {
        let name = format!(
            "{}.{}-{side}.manifest",
            crate::recorder::sanitize(&step.id),
            ctx.attempt
        );
        let bytes = ctx
            .state
            .subdir("evidence", true)
            .and_then(|d| {
                let d = d.expect("created");
                d.write_atomic(&name, true, &mut |w| m.write_to(w))?;
                d.read(&name).map(Option::unwrap_or_default)
            })
            .map_err(|e| {
                format!(
                    "failed to keep the {side} manifest as evidence in {}: {e}",
                    evidence.display()
                )
            })?;
        manifests.push(EvidenceRef {
            side: side.into(),
            file: format!("evidence/{name}"),
            blake3: blake3::hash(&bytes).to_hex().to_string(),
        });
    }
    Ok(manifests)
}

/// The first findings of a comparison, as the journal keeps them.
pub(super) fn findings_data(report: &rehost_tree::Report) -> Vec<FindingData> {
    report
        .findings
        .iter()
        .take(JOURNAL_FINDINGS)
        .map(|f| FindingData {
            class: f.class.name().into(),
            path: String::from_utf8_lossy(&f.path).into_owned(),
            path_hex: hex_unless_utf8(&f.path),
            a: f.a.clone(),
            b: f.b.clone(),
        })
        .collect()
}

/// What the digests a verification of data set `ds` trusted rest on: the last walk of the same
/// trees that the journal records before it. From the pair's cache (both ends on this machine),
/// the cache is the state directory's, which only a verification of this data set writes;
/// otherwise it is each host's cache of its last walk of the tree, which the built-in
/// transfer's walk writes too.
pub(super) fn trust_basis(records: &[Record], ds: &str, from: rehost_host::TrustedFrom) -> String {
    let local = from == rehost_host::TrustedFrom::PairCache;
    let last = records.iter().rev().find_map(|r| match r {
        Record::StepFinished {
            id,
            attempt,
            result_data: Some(StepData::VerifyTree(v)),
            ..
        } if v.data_set == ds => Some((id, attempt, false)),
        Record::StepFinished {
            id,
            attempt,
            result_data: Some(StepData::Sync(s)),
            ..
        } if !local && s.data_set == ds && s.method == "builtin" => Some((id, attempt, true)),
        _ => None,
    });
    match (last, local) {
        (Some((id, attempt, false)), _) => format!("the verification `{id}` (attempt {attempt})"),
        (Some((id, attempt, true)), _) => format!(
            "the walk of the built-in transfer in sync `{id}` (attempt {attempt}), whose digests are not a verification's"
        ),
        (None, true) => "an earlier verification of this data set (the state directory's cache; not in this journal)".into(),
        (None, false) => "each host's last walk of the tree, outside this run's journal (a `rehost verify tree`, a `rehost manifest` or another run)".into(),
    }
}

/// A path's bytes in hex when they are not UTF-8 (the journal keeps the lossy text beside it).
fn hex_unless_utf8(path: &[u8]) -> Option<String> {
    std::str::from_utf8(path)
        .is_err()
        .then(|| rehost_tree::escape::hex(path))
}

/// What the step's one line says of what the data set's excludes left out: the patterns, and
/// each path the plan names among them (a key), not verified.
fn excluded_note(excludes: &[String], named: &[ExcludedData]) -> String {
    if excludes.is_empty() {
        return String::new();
    }
    let patterns = excludes
        .iter()
        .map(|x| format!("`{x}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut note = format!("; not compared, excluded by the data set: {patterns}");
    if !named.is_empty() {
        let paths = named
            .iter()
            .map(|x| format!("key `{}` {} (`{}`)", x.key, x.path, x.exclude))
            .collect::<Vec<_>>()
            .join(", ");
        note.push_str(&format!(
            "; NOT VERIFIED, though the plan names it: {paths}: carry and verify it another way, or narrow the exclude"
        ));
    }
    note
}

/// What the step's one line says of the copy's privileged entries, if it has any.
fn privileged_note(n: usize) -> String {
    if n == 0 {
        return String::new();
    }
    format!(
        "; {n} privileged entr{} in the copy (setuid, setgid, file capabilities, devices: the old side decided them; listed in the step's output and the report, check they belong)",
        if n == 1 { "y" } else { "ies" }
    )
}
