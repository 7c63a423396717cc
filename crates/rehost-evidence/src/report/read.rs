//! Reading a run from its state directory: the one place the report looks at journal records,
//! typed step results (`StepData`), plan snapshots and the archive's integrity.

use super::model::*;
use rehost_journal::journal::{self, JOURNAL, OutputRef, Record};
use rehost_journal::step_data::StepData;
use rehost_journal::{StepResult, archive};
use rehost_plan::Plan;
use rehost_tree::private::PrivateDir;

/// How many findings of a verification the report lists (the journal keeps the first ones; the
/// full list is in the step's output file).
pub const FIRST_FINDINGS: usize = 10;

/// The plan text the run ran with, and where it came from.
pub struct PlanText {
    pub text: String,
    pub origin: String,
}

/// The text of the plan as it was run: the snapshot the journal names last (checked against
/// its digest), else the plan file's text (`current`) for a journal from before snapshots.
pub fn plan_text_for(state: &PrivateDir, records: &[Record], current: Option<&str>) -> PlanText {
    match archive::plan_snapshot(state, records) {
        Ok(Some(snap)) => PlanText {
            text: snap.text,
            origin: format!("the snapshot `{}` in the state directory", snap.file),
        },
        Ok(None) => PlanText {
            text: current.unwrap_or_default().to_owned(),
            origin: "the plan file (the journal names no snapshot)".into(),
        },
        Err(e) => PlanText {
            text: current.unwrap_or_default().to_owned(),
            origin: format!(
                "the plan file: the snapshot could not be used ({})",
                e.to_string()
                    .replace(&format!("{}/", state.path().display()), "")
            ),
        },
    }
}

/// Reads the run of environment `env` from its state directory (read-only). `Ok(None)` when the
/// state directory holds no journal.
pub fn load_run(
    state: &PrivateDir,
    env: &str,
    plan: &Plan,
) -> Result<Option<Run>, rehost_journal::JournalError> {
    let path = state.path().join(JOURNAL);
    let Some(bytes) =
        state
            .read(JOURNAL)
            .map_err(|source| rehost_journal::JournalError::JournalRead {
                path: path.clone(),
                source,
            })?
    else {
        return Ok(None);
    };
    let loaded = journal::parse(&bytes, &path)?;
    let mut run = fold(&loaded.records, env, plan);
    run.journal_head = loaded.head.clone();
    // The hash chain and every kept file against its digest, as `rehost status --verify`.
    let here = format!("{}/", state.path().display());
    run.integrity = Some(match archive::verify(state, None) {
        Ok(v) => {
            // Every size the report prints is the size of the file it describes, read now.
            run.for_each_kept(|k| k.bytes = v.sizes.get(&k.file).copied());
            Integrity {
                records: v.records,
                files: v.files,
                problems: v
                    .problems
                    .iter()
                    .map(|p| p.to_string().replace(&here, ""))
                    .collect(),
                signature: v.seal.as_ref().map(|s| Signature {
                    head: s.head.clone(),
                    records: s.records,
                    kinds: s.kinds.clone(),
                    in_journal: s.line.is_some(),
                    covers_all: s.line == Some(v.records) && s.records == v.records,
                }),
            }
        }
        Err(e) => Integrity {
            records: 0,
            files: 0,
            problems: vec![e.to_string().replace(&here, "")],
            signature: None,
        },
    });
    run.records = loaded.records.clone();
    // The digest of the records the report was made from (a torn last line is not among them).
    run.journal_blake3 = blake3::hash(&bytes[..loaded.good_len]).to_hex().to_string();
    run.journal_records = loaded.records.len();
    run.torn = loaded.torn.map(|t| {
        // The path is the state directory's, which differs between copies: name the file only.
        t.replace(&path.display().to_string(), JOURNAL)
    });
    Ok(Some(run))
}

/// Folds journal records into the run the report shows: its attempts, rollbacks and decisions
/// from rehost-journal's per-attempt fold ([`rehost_journal::history`]), its step states from
/// the one `rehost status` shows ([`rehost_journal::status`]), and the records only the report
/// shows (invocations, pre-flights, warnings). Pure.
pub fn fold(records: &[Record], env: &str, plan: &Plan) -> Run {
    let ids: Vec<String> = plan.steps.iter().map(|s| s.id.clone()).collect();
    let state = rehost_journal::status(records, &ids);
    let history = rehost_journal::history(records, &ids);
    let mut run = Run {
        env: env.to_owned(),
        ..Run::default()
    };
    for r in records {
        let at = r.at();
        if run.first_at.is_none() {
            run.first_at = Some(at.to_owned());
        }
        run.last_at = Some(at.to_owned());
        match r {
            Record::RunStarted {
                at,
                plan_digest,
                user,
                version,
                operator_host,
                terminal,
                ..
            } => {
                run.invocations.push(Invocation {
                    at: at.clone(),
                    user: user.clone(),
                    operator_host: operator_host.clone(),
                    terminal: terminal.clone(),
                    version: version.clone(),
                    plan_digest: plan_digest.clone(),
                });
                run.finished = None;
            }
            Record::Warning { at, message } => run.warnings.push(Note {
                at: at.clone(),
                text: message.clone(),
            }),
            Record::Preflight {
                at,
                hosts,
                problems,
            } => run.preflights.push(Preflight {
                at: at.clone(),
                hosts: hosts.clone(),
                problems: problems.clone(),
            }),
            Record::RunFinished { at, ok, summary } => {
                run.finished = Some(Finished {
                    at: at.clone(),
                    ok: *ok,
                    summary: summary.clone(),
                })
            }
            Record::ProbeStarted { at, targets } => run.probe_runs.push(ProbeRun {
                started: at.clone(),
                stopped: None,
                samples: None,
                targets: targets.clone(),
            }),
            Record::ProbeChanged {
                at,
                service,
                side,
                up,
                detail,
            } => run.probe_changes.push(ProbeChange {
                at: at.clone(),
                service: service.clone(),
                side: side.name().into(),
                up: *up,
                detail: detail.clone(),
            }),
            Record::ProbeSummary { at, samples } => {
                if let Some(p) = run.probe_runs.last_mut().filter(|p| p.stopped.is_none()) {
                    p.stopped = Some(at.clone());
                    p.samples = Some(*samples);
                }
            }
            // Read from the records by the verdict (`old_side`).
            Record::OldSideRechecked { .. } | Record::ReadOnlyRechecked { .. } => {}
            Record::LoadStarted {
                at,
                id,
                kind,
                before,
            } => run.loads.push(LoadRun {
                id: id.clone(),
                kind: kind.clone(),
                started: at.clone(),
                before: before.clone(),
                stopped: None,
                after: None,
                reason: None,
                duration_ms: None,
                exit_code: None,
                signal: None,
                output: None,
                acks: None,
                acknowledged: None,
                errors: None,
                first_error: None,
                check: None,
            }),
            Record::LoadStopped {
                at,
                id,
                after,
                reason,
                elapsed_ms,
                exit_code,
                signal,
                output,
                acknowledged,
                errors,
                first_error,
                acks,
            } => {
                if let Some(l) = run
                    .loads
                    .iter_mut()
                    .rev()
                    .find(|l| &l.id == id && l.stopped.is_none())
                {
                    l.stopped = Some(at.clone());
                    l.after = after.clone();
                    l.reason = Some(reason.clone());
                    l.duration_ms = Some(*elapsed_ms);
                    l.exit_code = *exit_code;
                    l.signal = *signal;
                    l.output = output.as_ref().map(|o| o.file.clone());
                    l.acks = acks.as_ref().map(|o| o.file.clone());
                    l.acknowledged = *acknowledged;
                    l.errors = *errors;
                    l.first_error = first_error.clone();
                }
            }
            Record::LoadChecked {
                at,
                id,
                database,
                service,
                new_side,
                acknowledged,
                found,
                missing_total,
                missing,
                error,
                not_compared,
            } => {
                if let Some(l) = run
                    .loads
                    .iter_mut()
                    .rev()
                    .find(|l| &l.id == id && l.stopped.is_some() && l.check.is_none())
                {
                    l.check = Some(LoadCheck {
                        at: at.clone(),
                        database: database.clone(),
                        service: service.clone(),
                        new_side: new_side.clone(),
                        acknowledged: *acknowledged,
                        found: *found,
                        missing_total: *missing_total,
                        missing: missing.clone(),
                        error: error.clone(),
                        not_compared: not_compared.clone(),
                    });
                }
            }
            // The history's.
            Record::PlanAccepted { .. }
            | Record::Decision { .. }
            | Record::StepStarted { .. }
            | Record::StepFinished { .. }
            | Record::RollbackStarted { .. }
            | Record::RolledBack { .. }
            | Record::Superseded { .. }
            | Record::PlanSnapshot { .. } => {}
        }
    }
    // A finish record counts only when no step started after it.
    if state.finished.is_none() {
        run.finished = None;
    }
    run.steps = state
        .steps
        .iter()
        .map(|s| StepOutcome {
            id: s.id.clone(),
            status: serde_json::to_value(&s.status)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            attempts: s.attempts,
            confirmed_by: s.confirmed_by.clone(),
        })
        .collect();
    run.attempts = history.attempts.iter().map(attempt).collect();
    run.decisions = history
        .decisions
        .into_iter()
        .map(|d| Decision {
            at: d.at,
            what: d.what,
            detail: d.detail,
            by: d.by,
        })
        .collect();
    run.rollbacks = history
        .rollbacks
        .into_iter()
        .map(|rb| Rollback {
            at: rb.at,
            failed: rb.failed,
            steps: rb
                .steps
                .into_iter()
                .map(|s| RolledBackStep {
                    at: s.at,
                    id: s.id,
                    ok: s.ok,
                    detail: s.detail,
                    output: s.output.as_ref().map(kept),
                })
                .collect(),
            again: rb.again,
            ran_again: rb.ran_again,
        })
        .collect();
    run.supersessions = history
        .supersessions
        .into_iter()
        .map(|s| Supersession {
            at: s.at,
            from: s.from,
            steps: s.steps,
            failed: s.failed,
        })
        .collect();
    // The one downtime `rehost run` and `rehost status` give too.
    run.downtime = rehost_journal::downtime(records, plan);
    run.downtime_ms = run.downtime.total_ms;
    if let Some(i) = run.invocations.last() {
        run.plan_digest = Some(i.plan_digest.clone());
    }
    if let Some(d) = records.iter().rev().find_map(|r| match r {
        Record::PlanAccepted { plan_digest, .. } => Some(plan_digest),
        _ => None,
    }) {
        // An accepted change after the last start is in force.
        let accepted_after_start = records
            .iter()
            .rposition(|r| matches!(r, Record::PlanAccepted { .. }))
            > records
                .iter()
                .rposition(|r| matches!(r, Record::RunStarted { .. }));
        if accepted_after_start {
            run.plan_digest = Some(d.clone());
        }
    }
    run
}

/// An attempt as the report shows it: its result named, its verification typed.
fn attempt(a: &rehost_journal::attempts::Attempt) -> Attempt {
    Attempt {
        id: a.id.clone(),
        attempt: a.attempt,
        started: a.started.clone(),
        finished: a.finished.clone(),
        result: a.result.as_ref().map(|r| result_name(r).into()),
        elapsed_ms: a.elapsed_ms,
        detail: a.detail.clone(),
        confirmed_by: a.confirmed_by.clone(),
        exit_code: a.exit_code,
        output: a.output.as_ref().map(kept),
        superseded: a.superseded,
        rolled_back: a.rolled_back,
        verification: a.result_data.as_ref().and_then(|d| typed(d, a.exit_code)),
        drain: match &a.result_data {
            Some(StepData::Drain(d)) => Some(d.clone()),
            _ => None,
        },
        refs: match &a.result_data {
            Some(StepData::ScanRefs(d)) => Some((**d).clone()),
            _ => None,
        },
        switch: match &a.result_data {
            Some(StepData::Switch(d)) => Some((**d).clone()),
            _ => None,
        },
        dns_switch: match &a.result_data {
            Some(StepData::DnsSwitch(d)) => Some((**d).clone()),
            _ => None,
        },
    }
}

/// A file the journal names, by name and digest: its size on disk is filled in by `load_run`.
fn kept(o: &OutputRef) -> Kept {
    Kept {
        file: o.file.clone(),
        bytes: None,
        blake3: o.blake3.clone(),
    }
}

fn result_name(r: &StepResult) -> &'static str {
    match r {
        StepResult::Done => "done",
        StepResult::Failed => "failed",
        StepResult::Skipped => "skipped",
        StepResult::Interrupted => "interrupted",
        StepResult::NotConfirmed => "not_confirmed",
    }
}

/// A verification's result from a step's typed result (or, for a journal from before typed
/// results, its free JSON).
fn typed(d: &StepData, exit_code: Option<i32>) -> Option<Verification> {
    match d {
        StepData::VerifyTree(t) => {
            let mut by_class: Vec<(String, u64)> = t
                .totals
                .by_class
                .iter()
                .map(|(c, n)| (c.name().to_owned(), *n))
                .collect();
            by_class.sort();
            Some(Verification {
                kind: VerificationKind::Tree,
                data_set: t.data_set.clone(),
                source: t.source.clone(),
                destination: t.destination.clone(),
                exit_code: i64::from(t.exit_code),
                tree: Some(TreeTotals {
                    entries_a: t.totals.entries_a,
                    entries_b: t.totals.entries_b,
                    bytes_a: t.totals.bytes_a,
                    bytes_b: t.totals.bytes_b,
                    equal: t.totals.equal,
                    files_read: t.totals.rehashed,
                    trusted: t.totals.trusted,
                    compared: t.totals.compared,
                    trusted_from: t.trusted_from.clone(),
                }),
                database: None,
                by_class,
                findings_total: t.findings_total,
                findings: t
                    .findings
                    .iter()
                    .take(FIRST_FINDINGS)
                    .map(|f| Finding {
                        class: f.class.clone(),
                        path: f.path.clone(),
                        a: Some(f.a.clone()),
                        b: Some(f.b.clone()),
                    })
                    .collect(),
                manifests: t
                    .manifests
                    .iter()
                    .map(|m| Kept {
                        file: m.file.clone(),
                        bytes: None,
                        blake3: m.blake3.clone(),
                    })
                    .collect(),
                warnings: t.warnings.clone(),
                privileged: t
                    .privileged
                    .iter()
                    .take(FIRST_FINDINGS)
                    .map(|x| Privileged {
                        path: x.path.clone(),
                        what: x.what.clone(),
                    })
                    .collect(),
                privileged_total: t.privileged_total,
                not_compared: None,
                exercise: None,
                excludes: t.excludes.clone(),
                not_verified: t
                    .not_verified
                    .iter()
                    .map(|x| NotVerified {
                        path: x.path.clone(),
                        key: x.key.clone(),
                        exclude: x.exclude.clone(),
                    })
                    .collect(),
                paths: Vec::new(),
                absent: Vec::new(),
                keys: Vec::new(),
                dns: None,
                dns_ttl: None,
                config: None,
                compat: None,
            })
        }
        StepData::VerifyDb(db) => {
            let mut v = db_verification(&db.report, exit_code)?;
            v.data_set = db.database.clone();
            v.source = db.source.clone();
            v.destination = db.destination.clone();
            v.findings_total = db.findings_total as u64;
            v.exercise = db.exercise.clone();
            if exit_code.is_none() {
                v.exit_code = if db.equal { 0 } else { 1 };
            }
            Some(v)
        }
        StepData::VerifyFiles(f) => Some(files_verification(f)),
        StepData::VerifyKeys(k) => Some(keys_verification(k)),
        StepData::DnsPropagated(d) => Some(dns_verification(d)),
        StepData::DnsTtl(d) => Some(dns_ttl_verification(d)),
        StepData::VerifyConfig(c) => Some(config_verification(c)),
        StepData::Compat(d) => Some(compat_verification(d)),
        StepData::AddressMoved(d) => Some(address_verification(d)),
        StepData::Legacy(v) => verification(v).or_else(|| db_verification(v, exit_code)),
        // A newer rehost's result is not read: a verification recorded so has no result here.
        StepData::Newer { .. } => None,
        // Not verifications: their evidence is the attempt's result and detail.
        // Not verifications: a drain's clients are read by `attempt`.
        StepData::Sync(_)
        | StepData::Run(_)
        | StepData::Service(_)
        | StepData::Drain(_)
        // A list of the lines that mention the old address: the clients to reconfigure, in
        // its own section; not a verification of the copy.
        | StepData::ScanRefs(_)
        // A relay's switch is an action; its record is read by `attempt`.
        | StepData::Switch(_)
        // A watch of the old side proves nothing about the copy: its re-checks are records.
        | StepData::WatchOld(_)
        // Retiring the old side: its checks (stopped, disabled, read-only) are its detail.
        | StepData::RetireOld(_)
        // A switch is an action; its proof (the primary's answer after it) is in its detail,
        // and propagation is the `dns-propagated` step's verification.
        | StepData::DnsSwitch(_) => None,
    }
}

/// A `verify-files` step's result as a verification.
fn files_verification(f: &rehost_journal::step_data::VerifyFilesData) -> Verification {
    let mut by_class: Vec<(String, u64)> = f
        .totals
        .by_class
        .iter()
        .map(|(c, n)| (c.name().to_owned(), *n))
        .collect();
    by_class.sort();
    Verification {
        kind: VerificationKind::Files,
        data_set: format!(
            "{} file{}",
            f.paths.len(),
            if f.paths.len() == 1 { "" } else { "s" }
        ),
        source: f.from.clone(),
        destination: f.to.clone(),
        exit_code: i64::from(f.exit_code),
        tree: Some(TreeTotals {
            entries_a: f.totals.entries_a,
            entries_b: f.totals.entries_b,
            bytes_a: f.totals.bytes_a,
            bytes_b: f.totals.bytes_b,
            equal: f.totals.equal,
            files_read: f.totals.rehashed,
            trusted: f.totals.trusted,
            compared: f.totals.compared,
            trusted_from: None,
        }),
        database: None,
        by_class,
        findings_total: f.findings_total,
        findings: f
            .findings
            .iter()
            .take(FIRST_FINDINGS)
            .map(|x| Finding {
                class: x.class.clone(),
                path: format!("/{}", x.path),
                a: Some(x.a.clone()),
                b: Some(x.b.clone()),
            })
            .collect(),
        manifests: f
            .manifests
            .iter()
            .map(|m| Kept {
                file: m.file.clone(),
                bytes: None,
                blake3: m.blake3.clone(),
            })
            .collect(),
        warnings: Vec::new(),
        privileged: Vec::new(),
        privileged_total: 0,
        not_compared: Some(f.not_compared.clone()),
        exercise: None,
        excludes: Vec::new(),
        not_verified: Vec::new(),
        paths: f.paths.clone(),
        absent: f.absent.clone(),
        keys: Vec::new(),
        dns: None,
        dns_ttl: None,
        config: None,
        compat: None,
    }
}

/// A `verify-keys` step's result as a verification: each key found at a `[[keys]]` entry's
/// paths, with its fingerprint and where it is on the new host.
fn keys_verification(k: &rehost_journal::step_data::VerifyKeysData) -> Verification {
    let mut rows = Vec::new();
    let mut findings = Vec::new();
    let mut by_class: std::collections::BTreeMap<String, u64> = Default::default();
    for e in &k.keys {
        if e.found.is_empty() {
            *by_class.entry("nothing found".into()).or_default() += 1;
            findings.push(Finding {
                class: "nothing found".into(),
                path: e.paths.join(", "),
                a: Some(format!(
                    "key `{}`: no key material rehost reads at its paths",
                    e.id
                )),
                b: None,
            });
        }
        for c in &e.found {
            rows.push(KeyRow {
                key: e.id.clone(),
                verdict: c.verdict.name().into(),
                kind: c.kind.name().into(),
                algorithm: c.algorithm.clone(),
                fingerprint: c.fingerprint.clone().unwrap_or_else(|| "unknown".into()),
                old: c.old.clone(),
                new: c.new.clone(),
                not_after: c.certificate.as_ref().map(|x| x.not_after.clone()),
                expiry_warning: e
                    .warnings
                    .iter()
                    .find(|w| c.new.contains(&w.path))
                    .map(|w| w.what.clone()),
                used_by_old: c.used_by_old.clone(),
                used_by_new: c.used_by_new.clone(),
            });
            if matches!(c.verdict.name(), "missing" | "unidentified") {
                *by_class.entry(c.verdict.name().into()).or_default() += 1;
                findings.push(Finding {
                    class: c.verdict.name().into(),
                    path: c.old.join(", "),
                    a: c.fingerprint.clone(),
                    b: None,
                });
            }
        }
        for p in &e.problems {
            *by_class.entry("problem".into()).or_default() += 1;
            findings.push(Finding {
                class: "problem".into(),
                path: p.path.clone(),
                a: None,
                b: Some(p.what.clone()),
            });
        }
    }
    for err in &k.errors {
        *by_class.entry("unread".into()).or_default() += 1;
        findings.push(Finding {
            class: "unread".into(),
            path: err.clone(),
            a: None,
            b: None,
        });
    }
    let hosts: Vec<&str> = {
        let mut h: Vec<&str> = k.keys.iter().map(|e| e.host.as_str()).collect();
        h.sort_unstable();
        h.dedup();
        h
    };
    Verification {
        kind: VerificationKind::Keys,
        data_set: k
            .keys
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        source: hosts.join(", "),
        destination: k.to.clone(),
        exit_code: i64::from(k.exit_code),
        tree: None,
        database: None,
        by_class: by_class.into_iter().collect(),
        findings_total: findings.len() as u64,
        findings: findings.into_iter().take(FIRST_FINDINGS).collect(),
        manifests: Vec::new(),
        warnings: Vec::new(),
        privileged: Vec::new(),
        privileged_total: 0,
        not_compared: Some(k.not_compared.clone()),
        exercise: None,
        excludes: Vec::new(),
        not_verified: Vec::new(),
        paths: k.search.clone(),
        absent: Vec::new(),
        keys: rows,
        dns: None,
        dns_ttl: None,
        config: None,
        compat: None,
    }
}

/// A verification of `kind` with nothing of any kind's own yet: the typed kinds fill in what
/// they have (findings, `not_compared`, their own part) with `..` over it.
fn base(
    kind: VerificationKind,
    data_set: String,
    source: String,
    destination: String,
    exit_code: i32,
) -> Verification {
    Verification {
        kind,
        data_set,
        source,
        destination,
        exit_code: i64::from(exit_code),
        tree: None,
        database: None,
        by_class: Vec::new(),
        findings_total: 0,
        findings: Vec::new(),
        manifests: Vec::new(),
        warnings: Vec::new(),
        privileged: Vec::new(),
        privileged_total: 0,
        not_compared: None,
        exercise: None,
        excludes: Vec::new(),
        not_verified: Vec::new(),
        paths: Vec::new(),
        absent: Vec::new(),
        keys: Vec::new(),
        dns: None,
        dns_ttl: None,
        config: None,
        compat: None,
    }
}

/// An `address-moved` step's result as a verification: each key offered at the address that
/// is not the new host's a finding (the old host's named as such), none offered a finding,
/// and hosts that share a key one (the key cannot tell them apart).
fn address_verification(d: &rehost_journal::step_data::AddressMovedData) -> Verification {
    let mut findings: Vec<Finding> = Vec::new();
    if d.offered.is_empty() {
        findings.push(Finding {
            class: "not-answered".into(),
            path: d.address.clone(),
            a: Some("no SSH host key offered".into()),
            b: None,
        });
    }
    for k in d.offered.iter().filter(|k| !d.to_keys.contains(k)) {
        findings.push(Finding {
            class: if d.from_keys.contains(k) {
                "old-host-answers".into()
            } else {
                "unknown-host-answers".into()
            },
            path: d.address.clone(),
            a: Some(k.clone()),
            b: Some(format!("not a host key of `{}`", d.to)),
        });
    }
    for k in d.to_keys.iter().filter(|k| d.from_keys.contains(k)) {
        findings.push(Finding {
            class: "shared-host-key".into(),
            path: format!("{} and {}", d.to, d.from.as_deref().unwrap_or("?")),
            a: Some(k.clone()),
            b: Some("both hosts hold it: it cannot tell them apart".into()),
        });
    }
    Verification {
        findings_total: findings.len() as u64,
        findings,
        not_compared: Some(vec![
            "services other than SSH at the address (another port may still reach the old host)"
                .into(),
            "what clients elsewhere reach: the address was asked from the machine rehost runs on"
                .into(),
        ]),
        ..base(
            VerificationKind::Address,
            d.address.clone(),
            format!("host `{}`: {}", d.to, d.to_keys.join(", ")),
            format!(
                "at {}: {}",
                d.address,
                if d.offered.is_empty() {
                    "nothing".to_string()
                } else {
                    d.offered.join(", ")
                }
            ),
            if d.moved { 0 } else { 1 },
        )
    }
}

/// A `dns-propagated` step's result as a verification: the name, the old and the new value,
/// each lagging server a finding (its last answer, the TTL it may still be held for).
fn dns_verification(d: &rehost_journal::step_data::DnsPropagatedData) -> Verification {
    let findings: Vec<Finding> = d
        .servers
        .iter()
        .filter(|s| s.status != "serves")
        .map(|s| Finding {
            class: if s.status == "not_answered" {
                "not-answered".into()
            } else {
                "lagging".into()
            },
            path: format!("{} ({})", s.server, s.role),
            a: Some(match &s.reason {
                Some(r) => r.clone(),
                None if s.values.is_empty() => "no record".into(),
                None => s.values.join(", "),
            }),
            b: s.ttl.map(|t| format!("TTL {t} s")),
        })
        .collect();
    Verification {
        findings_total: findings.len() as u64,
        findings,
        dns: Some(d.clone()),
        ..base(
            VerificationKind::Dns,
            format!("{} {}", d.name, d.record),
            d.old.clone().unwrap_or_else(|| "(not given)".into()),
            d.new.clone(),
            d.exit_code,
        )
    }
}

/// A `dns-ttl` step's result as a verification: the lowered TTL against each server's, each
/// server that serves a longer one (or none) a finding.
fn dns_ttl_verification(d: &rehost_journal::step_data::DnsTtlData) -> Verification {
    let findings: Vec<Finding> = d
        .servers
        .iter()
        .filter(|s| s.status != "serves")
        .map(|s| Finding {
            class: if s.status == "not_answered" {
                "not-answered".into()
            } else {
                "ttl-not-lowered".into()
            },
            path: format!("{} ({})", s.server, s.role),
            a: Some(match (&s.reason, s.ttl) {
                (Some(r), _) => r.clone(),
                (None, Some(t)) => format!("TTL {t} s"),
                (None, None) => "no record".into(),
            }),
            b: Some(format!("at most {} s", d.lowered_ttl_s)),
        })
        .collect();
    Verification {
        findings_total: findings.len() as u64,
        findings,
        dns_ttl: Some(d.clone()),
        ..base(
            VerificationKind::DnsTtl,
            format!("{} {}", d.name, d.record),
            format!("TTL {} s", d.ttl_s),
            format!("TTL at most {} s", d.lowered_ttl_s),
            d.exit_code,
        )
    }
}

/// A `verify-config` step's result as a verification: each difference a finding (the key,
/// the old and the new value with their sources; a secret's value never), the allowed ones
/// listed apart by `kind_parts`.
fn config_verification(c: &rehost_journal::step_data::VerifyConfigData) -> Verification {
    let side = |v: &Option<rehost_config::Value>, secret: bool| {
        v.as_ref().map(|v| {
            let value = match (&v.value, secret) {
                (_, true) => "(secret, not shown)".to_owned(),
                (Some(x), false) => x.clone(),
                (None, false) => String::new(),
            };
            match &v.source {
                Some(s) => format!("{value} ({s})"),
                None => value,
            }
        })
    };
    let mut by_class: std::collections::BTreeMap<String, u64> = Default::default();
    let findings: Vec<Finding> = c
        .comparison
        .differences
        .iter()
        .map(|d| {
            let class = match (&d.old, &d.new) {
                (Some(_), Some(_)) if d.secret => "secret differs",
                (Some(_), Some(_)) => "changed",
                (Some(_), None) => "only old",
                _ => "only new",
            };
            *by_class.entry(class.into()).or_default() += 1;
            Finding {
                class: class.into(),
                path: d.key.clone(),
                a: side(&d.old, d.secret),
                b: side(&d.new, d.secret),
            }
        })
        .collect();
    Verification {
        by_class: by_class.into_iter().collect(),
        findings_total: findings.len() as u64,
        findings: findings.into_iter().take(FIRST_FINDINGS).collect(),
        not_compared: Some(c.not_compared.clone()),
        config: Some(c.clone()),
        ..base(
            VerificationKind::Config,
            c.database.clone().unwrap_or_else(|| "configuration".into()),
            c.old.clone(),
            c.new.clone(),
            c.exit_code,
        )
    }
}

/// A `compat` step's result as a verification: the old and the new service, each differing
/// field of an endpoint a finding (allowed ones too, classed `allowed`), with its first example.
fn compat_verification(d: &rehost_journal::step_data::CompatData) -> Verification {
    let findings: Vec<Finding> = d
        .endpoints
        .iter()
        .flat_map(|e| {
            e.differences.iter().map(move |f| {
                let ex = f.examples.first();
                Finding {
                    class: if f.allowed {
                        "allowed".into()
                    } else {
                        "differs".into()
                    },
                    path: format!("{} {} ({}×)", e.endpoint, f.field, f.count),
                    a: ex.map(|x| x.old.clone()),
                    b: ex.map(|x| x.new.clone()),
                }
            })
        })
        .collect();
    Verification {
        findings_total: findings.len() as u64,
        findings: findings.into_iter().take(FIRST_FINDINGS).collect(),
        not_compared: Some(vec![d.not_compared.clone()]),
        compat: Some(d.clone()),
        ..base(
            VerificationKind::Compat,
            format!("{} {}", d.source, d.file),
            d.old.clone(),
            d.new.clone(),
            d.exit_code,
        )
    }
}

/// A verification's result, from the free JSON a `verify-tree` step recorded before results
/// were typed.
fn verification(v: &serde_json::Value) -> Option<Verification> {
    let totals = v.get("totals")?;
    let s = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let n = |o: &serde_json::Value, k: &str| o.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
    let findings: Vec<Finding> = v
        .get("findings")
        .and_then(|f| f.as_array())
        .map(|f| {
            f.iter()
                .take(FIRST_FINDINGS)
                .map(|f| Finding {
                    class: f
                        .get("class")
                        .and_then(|c| c.as_str())
                        .unwrap_or_default()
                        .into(),
                    path: f
                        .get("path")
                        .and_then(|c| c.as_str())
                        .unwrap_or_default()
                        .into(),
                    a: f.get("a").and_then(|c| c.as_str()).map(String::from),
                    b: f.get("b").and_then(|c| c.as_str()).map(String::from),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut by_class: Vec<(String, u64)> = totals
        .get("by_class")
        .and_then(|b| b.as_object())
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    by_class.sort();
    let manifests = ["source", "destination"]
        .iter()
        .filter_map(|side| {
            let m = v.get("manifests")?.get(side)?;
            Some(Kept {
                file: m.get("file")?.as_str()?.to_owned(),
                bytes: None,
                blake3: m.get("blake3")?.as_str()?.to_owned(),
            })
        })
        .collect();
    Some(Verification {
        kind: VerificationKind::Tree,
        data_set: s("data_set"),
        source: s("source"),
        destination: s("destination"),
        exit_code: v.get("exit_code").and_then(|x| x.as_i64()).unwrap_or(2),
        tree: Some(TreeTotals {
            entries_a: n(totals, "entries_a"),
            entries_b: n(totals, "entries_b"),
            bytes_a: n(totals, "bytes_a"),
            bytes_b: n(totals, "bytes_b"),
            equal: n(totals, "equal"),
            files_read: n(totals, "rehashed"),
            trusted: n(totals, "trusted"),
            compared: n(totals, "compared"),
            trusted_from: None,
        }),
        database: None,
        by_class,
        findings_total: v
            .get("findings_total")
            .and_then(|x| x.as_u64())
            .unwrap_or(findings.len() as u64),
        findings,
        manifests,
        warnings: v
            .get("warnings")
            .and_then(|w| w.as_array())
            .map(|w| {
                w.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        privileged: Vec::new(),
        privileged_total: 0,
        not_compared: None,
        exercise: None,
        excludes: v
            .get("excludes")
            .and_then(|w| w.as_array())
            .map(|w| {
                w.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        not_verified: Vec::new(),
        paths: Vec::new(),
        absent: Vec::new(),
        keys: Vec::new(),
        dns: None,
        dns_ttl: None,
        config: None,
        compat: None,
    })
}

/// A database verification's result, from the free JSON a `verify-db` step records today.
fn db_verification(v: &serde_json::Value, exit_code: Option<i32>) -> Option<Verification> {
    // `rehost_db`'s report: recognised by its versions (the id is the caller's, or the free
    // JSON's `database` from before typed results).
    v.get("old_version")?;
    let database = v
        .get("database")
        .and_then(|d| d.as_str())
        .unwrap_or_default()
        .to_owned();
    let s = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let n = |k: &str| v.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
    let text = |f: &serde_json::Value, k: &str| f.get(k).and_then(|c| c.as_str()).map(String::from);
    let findings: Vec<Finding> = v
        .get("findings")
        .and_then(|f| f.as_array())
        .map(|f| {
            f.iter()
                .take(FIRST_FINDINGS)
                .map(|f| {
                    let mut path = text(f, "name").unwrap_or_default();
                    if let Some(key) = f.get("key").and_then(|k| k.as_array()) {
                        let cols: Vec<String> = key
                            .iter()
                            .filter_map(|c| {
                                let c = c.as_array()?;
                                let name = c.first()?.as_str()?;
                                let value = c.get(1)?.as_str().unwrap_or("NULL");
                                Some(format!("{name}={value}"))
                            })
                            .collect();
                        path.push_str(&format!(" ({})", cols.join(", ")));
                    }
                    Finding {
                        class: text(f, "class").unwrap_or_default(),
                        path,
                        a: text(f, "old"),
                        b: text(f, "new"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let equal = v.get("equal").and_then(|e| e.as_bool()).unwrap_or(false);
    Some(Verification {
        kind: VerificationKind::Database,
        data_set: database,
        source: s("old"),
        destination: s("new"),
        exit_code: exit_code.map_or(if equal { 0 } else { 1 }, i64::from),
        tree: None,
        database: Some(DbTotals {
            old_version: s("old_version"),
            new_version: s("new_version"),
            tables: n("tables"),
            rows: n("rows"),
            sequences: n("sequences"),
            objects: n("objects"),
        }),
        by_class: Vec::new(),
        findings_total: v
            .get("findings_total")
            .and_then(|x| x.as_u64())
            .unwrap_or(findings.len() as u64),
        findings,
        manifests: Vec::new(),
        warnings: v
            .get("notes")
            .and_then(|w| w.as_array())
            .map(|w| {
                w.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        privileged: Vec::new(),
        privileged_total: 0,
        not_compared: v.get("not_compared").and_then(|n| n.as_array()).map(|n| {
            n.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        }),
        exercise: None,
        excludes: Vec::new(),
        not_verified: Vec::new(),
        paths: Vec::new(),
        absent: Vec::new(),
        keys: Vec::new(),
        dns: None,
        dns_ttl: None,
        config: None,
        compat: None,
    })
}
