//! The report's "Keys" section (issue 20): each key the plan declares (`[[keys]]`), whether a
//! step carries it to the new host — "not carried" in the `key-not-carried` rule's own words
//! when none does (no step, or every data set that holds it excludes it) — and what the last
//! `verify-keys` step found of it: its fingerprint, its paths and the configurations that use
//! it on both hosts, and the verdict. Public facts only: the evidence holds nothing else.

use super::document::{code_span, h, p, table};
use super::model::{KeyRow, KeyStatus, Run};
use super::*;
use crate::doc::Block;

/// Each declared key's status from the plan and the run's last `verify-keys` evidence of it.
pub(super) fn statuses(plan: &Plan, run: &Run) -> Vec<KeyStatus> {
    plan.keys
        .iter()
        .map(|k| {
            let not_carried = rehost_plan::key_not_carried_reason(plan, &k.id);
            // The last attempt of a verify-keys step that names the key and recorded evidence.
            let last = run.attempts.iter().rev().find(|a| {
                !a.superseded
                    && a.verification.is_some()
                    && plan.step(&a.id).is_some_and(|s| {
                        matches!(&s.kind, StepKind::VerifyKeys { keys, .. } if keys.contains(&k.id))
                    })
            });
            let found: Vec<KeyRow> = last
                .and_then(|a| a.verification.as_ref())
                .map(|v| v.keys.iter().filter(|r| r.key == k.id).cloned().collect())
                .unwrap_or_default();
            let any = |v: &str| found.iter().any(|r| r.verdict == v);
            let on_new = !found.is_empty()
                && found
                    .iter()
                    .all(|r| matches!(r.verdict.as_str(), "present" | "moved"));
            let verdict = match (&not_carried, last) {
                (Some(_), _) if on_new => {
                    "not carried by any step, yet found on the new host".to_owned()
                }
                (Some(_), _) => "not carried".to_owned(),
                (None, None) => {
                    // Another step says it verifies the key: a verify-tree or verify-files
                    // compares its bytes (its own verification says how it went); a command or
                    // a person is taken at the plan's word.
                    let claim = rehost_plan::Effect::Verifies(k.id.clone());
                    match plan.steps.iter().find(|s| s.effects.contains(&claim)) {
                        Some(s)
                            if matches!(
                                s.kind,
                                StepKind::VerifyTree { .. } | StepKind::VerifyFiles { .. }
                            ) =>
                        {
                            format!(
                                "carried; compared as files by step `{}` (its verification above), not by fingerprint",
                                s.id
                            )
                        }
                        Some(s) => format!(
                            "carried; step `{}` ({}) says it verifies it: not checked by rehost",
                            s.id,
                            s.kind.name()
                        ),
                        None => "carried; verified by no step".to_owned(),
                    }
                }
                (None, Some(_)) if found.is_empty() => {
                    "nothing rehost reads at its paths".to_owned()
                }
                (None, Some(_)) if any("missing") => "missing on the new host".to_owned(),
                (None, Some(_)) if any("unidentified") => "not identified".to_owned(),
                (None, Some(_)) if any("moved") => "present (at other paths)".to_owned(),
                (None, Some(_)) => "present".to_owned(),
            };
            KeyStatus {
                key: k.id.clone(),
                kind: k.kind.clone(),
                host: k.host.clone(),
                paths: k.paths.clone(),
                not_carried,
                verified_by: last.map(|a| format!("{} attempt {}", code_span(&a.id), a.attempt)),
                found,
                verdict,
            }
        })
        .collect()
}

pub(super) fn keys_section(r: &Report, b: &mut Vec<Block>) {
    if r.keys.is_empty() {
        return;
    }
    b.push(h(2, "Keys"));
    b.push(crate::kompendium::cite(&[crate::kompendium::Point::Keys]));
    b.push(p(
        "Each key the plan declares: whether a step carries it to the new host, and what the last verify-keys step found of it on the old host (A) and the new host (B). Keys are matched by the fingerprint of their public half (symmetric key files and keytab keys by a digest under a key drawn for that step), whatever their path or format; nothing secret is recorded. Not compared: whether the service's user can read the key on B, and whether a LUKS volume still opens.".into(),
    ));
    let list = |xs: &[String]| {
        if xs.is_empty() {
            "—".to_owned()
        } else {
            xs.iter()
                .map(|x| code_span(x))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let mut rows = Vec::new();
    for k in &r.keys {
        let declared = format!("{} on {}: {}", k.kind, code_span(&k.host), list(&k.paths));
        // One key's verdict cell: why no step carries it, or which step proved it.
        let verdict = |what: &str| match (&k.not_carried, &k.verified_by) {
            (Some(why), _) => format!("not carried: {why}; {what}"),
            (None, Some(by)) => format!("{what}, by step {by}"),
            (None, None) => what.to_owned(),
        };
        if k.found.is_empty() {
            rows.push(vec![
                code_span(&k.key),
                declared,
                "—".into(),
                "—".into(),
                "—".into(),
                "—".into(),
                if k.not_carried.is_some() {
                    verdict("not verified by rehost")
                } else {
                    k.verdict.clone()
                },
            ]);
            continue;
        }
        for f in &k.found {
            let used = |u: &[String]| {
                if u.is_empty() {
                    String::new()
                } else {
                    format!("; used by {}", list(u))
                }
            };
            rows.push(vec![
                code_span(&k.key),
                declared.clone(),
                format!("{} {}", f.kind, f.algorithm),
                code_span(&f.fingerprint),
                format!("{}{}", list(&f.old), used(&f.used_by_old)),
                format!(
                    "{}{}{}{}",
                    if f.new.is_empty() {
                        "not found".into()
                    } else {
                        list(&f.new)
                    },
                    used(&f.used_by_new),
                    f.not_after
                        .as_ref()
                        .map(|t| format!("; valid until {t}"))
                        .unwrap_or_default(),
                    f.expiry_warning
                        .as_ref()
                        .map(|w| format!("; warning: {w}"))
                        .unwrap_or_default(),
                ),
                verdict(&match f.verdict.as_str() {
                    "missing" => "missing on B".to_owned(),
                    "moved" => "present at other paths".to_owned(),
                    v => v.to_owned(),
                }),
            ]);
        }
    }
    b.push(table(
        &[
            "Key",
            "Declared",
            "Kind",
            "Fingerprint",
            "A",
            "B",
            "Verdict",
        ],
        rows,
    ));
}
