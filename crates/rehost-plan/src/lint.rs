//! The M 2.319 lint: rules that hold a valid plan against the measure's clauses.
//!
//! Each rule has a stable id (used in `--json`, in docs/lints.md and to accept findings), the
//! clause it enforces, and a check that is a pure function of the plan.

use crate::diag::{Diagnostic, Severity};
use crate::model::*;
use std::time::Duration;

mod credentials;
mod db;
pub(crate) use credentials::mask_credentials;

pub struct Rule {
    pub id: &'static str,
    /// The clause of M 2.319 this rule enforces, quoted.
    pub clause: &'static str,
    pub summary: &'static str,
    check: Check,
}

/// What a rule looks at: the plan, or the plan's text (what the model does not keep, such as
/// a credential in a comment).
enum Check {
    Plan(fn(&Plan, &mut Vec<Diagnostic>)),
    Text(fn(&str, &mut Vec<Diagnostic>)),
}

pub static RULES: &[Rule] = &[
    Rule {
        id: "no-test-environment",
        clause: "the entire transition should be tested beforehand in a test environment",
        summary: "the plan declares no environment to rehearse in",
        check: Check::Plan(no_test_environment),
    },
    Rule {
        id: "no-window",
        clause: "it is recommended to perform the function transition to the replacement system outside normal operating hours",
        summary: "the plan sets no maintenance window",
        check: Check::Plan(no_window),
    },
    Rule {
        id: "no-downtime-budget",
        clause: "measures must be taken to ensure that data is not lost … or that unacceptable downtime occurs",
        summary: "the plan sets no downtime budget (max_downtime)",
        check: Check::Plan(no_downtime_budget),
    },
    Rule {
        id: "unverified-data",
        clause: "after the data has been transferred to the new system, it must be checked whether the data has been completely and correctly transferred",
        summary: "a data set is not verified after its last transfer",
        check: Check::Plan(unverified_data),
    },
    Rule {
        id: "undrained-service",
        clause: "if there are clients that establish longer existing or even permanent network connections … this must be taken into account during migration",
        summary: "a service with persistent connections is stopped without a drain before",
        check: Check::Plan(undrained_service),
    },
    Rule {
        id: "ttl-too-late",
        clause: "it takes a certain time until the change of the address has arrived at all clients; such latencies must be taken into account",
        summary: "a name is switched without its TTL lowered early enough before",
        check: Check::Plan(ttl_too_late),
    },
    Rule {
        id: "keys-unverified",
        clause: "it must be ensured that the keys are also transferred, otherwise access to the encrypted data will no longer be possible",
        summary: "declared key material is never verified on the new host",
        check: Check::Plan(keys_unverified),
    },
    Rule {
        id: "no-rollback-after-point-of-no-return",
        clause: "measures must be taken to ensure that data is not lost during the functional transition",
        summary: "a step after the point of no return that is not idempotent has no rollback",
        check: Check::Plan(no_rollback_after_pnr),
    },
    Rule {
        id: "no-backup-before-point-of-no-return",
        clause: "measures must be taken to ensure that data is not lost during the functional transition",
        summary: "no step up to the point of no return backs up the old side (`backup = \"WHERE\"`)",
        check: Check::Plan(no_backup_before_pnr),
    },
    Rule {
        id: "clients-not-reconfigured",
        clause: "the biggest problem is when clients access the servers through an application where the IP address or name of the server is stored in a local configuration file … this must be planned in advance",
        summary: "clients that hold the address locally are reconfigured by no step",
        check: Check::Plan(clients_not_reconfigured),
    },
    Rule {
        id: "hosts-file-not-changed",
        clause: "the biggest problem is when clients access the servers through an application where the IP address or name of the server is stored in a local configuration file … this must be planned in advance",
        summary: "a name clients resolve from their hosts files has a client whose file no step changes",
        check: Check::Plan(hosts_file_not_changed),
    },
    Rule {
        id: "copy-before-stop",
        clause: "measures must be taken to ensure that data is not lost during the functional transition",
        summary: "a data set's last transfer or verification comes before the last step that stops a service writing to it",
        check: Check::Plan(copy_before_stop),
    },
    Rule {
        id: "key-not-carried",
        clause: "it must be ensured that the keys are also transferred, otherwise access to the encrypted data will no longer be possible",
        summary: "declared key material is carried to the new host by no step",
        check: Check::Plan(key_not_carried),
    },
    Rule {
        id: "key-verification-misses-paths",
        clause: "it must be ensured that the keys are also transferred, otherwise access to the encrypted data will no longer be possible",
        summary: "a verification claims to verify a key whose paths its data set does not hold",
        check: Check::Plan(key_verification_misses_paths),
    },
    Rule {
        id: "service-never-started",
        clause: "measures must be taken to ensure that data is not lost … or that unacceptable downtime occurs",
        summary: "a service is stopped and no later step starts it anywhere",
        check: Check::Plan(service_never_started),
    },
    Rule {
        id: "database-unverified",
        clause: "after the data has been transferred to the new system, it must be checked whether the data has been completely and correctly transferred",
        summary: "a declared database is not checked by a `verify-db` step after its last copy",
        check: Check::Plan(db::database_unverified),
    },
    Rule {
        id: "database-copy-before-stop",
        clause: "measures must be taken to ensure that data is not lost during the functional transition",
        summary: "a database's last copy (a dump, a backup) or verification comes before the last step that stops a service writing to it",
        check: Check::Plan(db::database_copy_before_stop),
    },
    Rule {
        id: "credential-in-plan",
        clause: "an appropriate migration concept must be created in advance for the migration of important servers",
        summary: "the plan text holds a credential (a password in a URL, PGPASSWORD=, mysql -p…, --password=, IDENTIFIED BY, password= in a connection string)",
        check: Check::Text(credentials::credential_in_plan),
    },
    Rule {
        id: "config-unverified",
        clause: "it is important that the configuration of the old service on the new system correctly accepted or at least functionally equivalent can be recreated",
        summary: "a service that runs on the new system has its configuration verified by no step",
        check: Check::Plan(config_unverified),
    },
    Rule {
        id: "window-not-open",
        clause: "it is recommended to perform the function transition to the replacement system outside normal operating hours",
        summary: "a step that needs the window comes before the plan waits for the window to open",
        check: Check::Plan(window_not_open),
    },
];

pub(crate) fn finding(
    rule: &str,
    span: Option<Span>,
    message: String,
    help: impl Into<String>,
) -> Diagnostic {
    let rule = RULES.iter().find(|r| r.id == rule).expect("known rule");
    Diagnostic {
        severity: Severity::Finding,
        code: rule.id,
        message,
        span,
        help: Some(help.into()),
    }
}

pub(crate) fn lint(plan: &Plan, text: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for rule in RULES {
        match rule.check {
            Check::Plan(check) => check(plan, &mut out),
            Check::Text(check) => check(text, &mut out),
        }
    }
    out
}

fn no_test_environment(plan: &Plan, out: &mut Vec<Diagnostic>) {
    if plan.environments.is_empty() {
        out.push(finding(
            "no-test-environment",
            Some(plan.migration.span.clone()),
            "the plan has no test environment to rehearse the transition in".into(),
            "add [environments.test] mapping each host to a test host, then `rehost run PLAN --env test`",
        ));
    }
}

fn no_window(plan: &Plan, out: &mut Vec<Diagnostic>) {
    if plan.migration.window.is_none() {
        out.push(finding(
            "no-window",
            Some(plan.migration.span.clone()),
            "the migration has no maintenance window".into(),
            "add window = { start = \"…+01:00\", end = \"…+01:00\" } to [migration], outside normal operating hours",
        ));
    }
}

fn no_downtime_budget(plan: &Plan, out: &mut Vec<Diagnostic>) {
    if plan.migration.max_downtime.is_none() {
        out.push(finding(
            "no-downtime-budget",
            Some(plan.migration.span.clone()),
            "the migration sets no downtime budget".into(),
            "add max_downtime = \"15m\" (or what the service owners accept) to [migration]",
        ));
    }
}

fn unverified_data(plan: &Plan, out: &mut Vec<Diagnostic>) {
    for d in &plan.data {
        let last_transfer = plan
            .steps
            .iter()
            .rposition(|s| s.effects.contains(&Effect::Transfers(d.id.clone())));
        let verified_after = |from: usize| {
            plan.steps[from..]
                .iter()
                .any(|s| s.effects.contains(&Effect::Verifies(d.id.clone())))
        };
        match last_transfer {
            None if !verified_after(0) => out.push(finding(
                "unverified-data",
                Some(d.span.clone()),
                format!("data set `{}` is never transferred nor verified", d.id),
                format!(
                    "add a `sync` step for `{}` and a `verify-tree` step after it",
                    d.id
                ),
            )),
            None => {}
            Some(i) if !verified_after(i + 1) => out.push(finding(
                "unverified-data",
                Some(plan.steps[i].effect_span(&Effect::Transfers(d.id.clone()))),
                format!(
                    "data set `{}` is not verified after its last transfer (step `{}`)",
                    d.id, plan.steps[i].id
                ),
                format!(
                    "add a step with do = \"verify-tree\", data = \"{}\" after `{}`",
                    d.id, plan.steps[i].id
                ),
            )),
            Some(_) => {}
        }
    }
}

fn undrained_service(plan: &Plan, out: &mut Vec<Diagnostic>) {
    for svc in plan.services.iter().filter(|s| s.persistent_connections) {
        for (i, s) in plan.steps.iter().enumerate() {
            if !s.effects.contains(&Effect::Stops(svc.id.clone())) {
                continue;
            }
            let drained = plan.steps[..i]
                .iter()
                .any(|p| p.effects.contains(&Effect::Drains(svc.id.clone())));
            if !drained {
                out.push(finding(
                    "undrained-service",
                    Some(s.effect_span(&Effect::Stops(svc.id.clone()))),
                    format!(
                        "step `{}` stops service `{}`, which has persistent connections, without draining it first",
                        s.id, svc.id
                    ),
                    format!(
                        "add a step before `{}` with drains = [\"{}\"]: end the connections, by hand on the clients if need be",
                        s.id, svc.id
                    ),
                ));
            }
        }
    }
}

fn ttl_too_late(plan: &Plan, out: &mut Vec<Diagnostic>) {
    // A name resolved from hosts files has no TTL: each client follows when its file changes.
    for name in plan.names.iter().filter(|n| n.via == NameVia::Dns) {
        for (i, s) in plan.steps.iter().enumerate() {
            if !s.effects.contains(&Effect::Switches(name.id.clone())) {
                continue;
            }
            let lowered = plan.steps[..i]
                .iter()
                .rposition(|p| p.effects.contains(&Effect::LowersTtl(name.id.clone())));
            let Some(l) = lowered else {
                out.push(finding(
                    "ttl-too-late",
                    Some(s.effect_span(&Effect::Switches(name.id.clone()))),
                    format!("step `{}` switches name `{}` but no earlier step lowers its TTL", s.id, name.name),
                    format!(
                        "add a step with lowers_ttl = [\"{}\"] early in the plan, and a wait of at least the old TTL before `{}`",
                        name.id, s.id
                    ),
                ));
                continue;
            };
            let Some(ttl) = name.ttl else {
                out.push(finding(
                    "ttl-too-late",
                    Some(name.span.clone()),
                    format!("name `{}` does not declare its current TTL, so the wait before the switch cannot be checked", name.name),
                    "add ttl = \"1h\" (the TTL clients have cached) to the [[names]] entry",
                ));
                continue;
            };
            let waited: Duration = plan.steps[l + 1..i]
                .iter()
                .filter_map(|p| match &p.kind {
                    StepKind::Wait {
                        wait: WaitFor::Duration(d),
                    } => Some(*d),
                    _ => None,
                })
                .sum();
            let until_wait = plan.steps[l + 1..i].iter().any(|p| {
                matches!(
                    p.kind,
                    StepKind::Wait {
                        wait: WaitFor::Until(_)
                    }
                )
            });
            if waited < ttl && !until_wait {
                out.push(finding(
                    "ttl-too-late",
                    Some(s.effect_span(&Effect::Switches(name.id.clone()))),
                    format!(
                        "step `{}` switches `{}` only {} after its TTL was lowered (step `{}`), but clients may cache the old address for {}",
                        s.id,
                        name.name,
                        format_duration(waited),
                        plan.steps[l].id,
                        format_duration(ttl)
                    ),
                    format!(
                        "add a wait of at least {} between `{}` and `{}`, or lower the TTL earlier",
                        format_duration(ttl - waited),
                        plan.steps[l].id,
                        s.id
                    ),
                ));
            }
        }
    }
}

fn keys_unverified(plan: &Plan, out: &mut Vec<Diagnostic>) {
    for k in &plan.keys {
        let verified = plan
            .steps
            .iter()
            .any(|s| s.effects.contains(&Effect::Verifies(k.id.clone())));
        if !verified {
            out.push(finding(
                "keys-unverified",
                Some(k.span.clone()),
                format!(
                    "key `{}` ({}) is never verified on the new host",
                    k.id, k.kind
                ),
                format!(
                    "add a step with verifies = [\"{}\"] after the keys are carried over",
                    k.id
                ),
            ));
        }
    }
}

/// A service runs on the new system when it names its `new_host`, or a step starts it on a
/// host other than its own; a service only stopped (retired with the old server) has no
/// configuration to carry over.
fn runs_on_new_system(plan: &Plan, svc: &Service) -> bool {
    svc.new_host.as_deref().is_some_and(|h| h != svc.host)
        || plan.steps.iter().any(|s| {
            s.effects.contains(&Effect::Starts(svc.id.clone()))
                && s.host.as_deref().is_some_and(|h| h != svc.host)
        })
}

fn config_unverified(plan: &Plan, out: &mut Vec<Diagnostic>) {
    for svc in &plan.services {
        if !runs_on_new_system(plan, svc) {
            continue;
        }
        let verified = plan
            .steps
            .iter()
            .any(|s| s.effects.contains(&Effect::Verifies(svc.id.clone())));
        if !verified {
            out.push(finding(
                "config-unverified",
                Some(svc.span.clone()),
                format!(
                    "service `{}` runs on the new system, and no step verifies that its configuration was carried over",
                    svc.id
                ),
                format!(
                    "add a `verify-config` step comparing its configuration (`command = \"nginx -T\"`, a file or a tree) with verifies = [\"{}\"]; a `run` or `manual` step that checks it may declare the same",
                    svc.id
                ),
            ));
        }
    }
}

fn no_rollback_after_pnr(plan: &Plan, out: &mut Vec<Diagnostic>) {
    let Some(pnr) = &plan.migration.point_of_no_return else {
        return;
    };
    let Some(p) = plan.step_index(&pnr.value) else {
        return;
    };
    for s in &plan.steps[p + 1..] {
        if !s.idempotent && s.rollback.is_none() && !matches!(s.kind, StepKind::Manual { .. }) {
            out.push(finding(
                "no-rollback-after-point-of-no-return",
                Some(s.span.clone()),
                format!(
                    "step `{}` comes after the point of no return (`{}`), is not idempotent and has no rollback",
                    s.id, pnr.value
                ),
                format!("give `{}` a rollback command, or mark it idempotent = true if running it twice is harmless", s.id),
            ));
        }
    }
}

/// A name resolved from hosts files switches only where someone edits each client's file: one
/// manual step per client entry (its hosts and files named), suggested with its text.
fn hosts_file_not_changed(plan: &Plan, out: &mut Vec<Diagnostic>) {
    for n in plan.names.iter().filter(|n| n.via == NameVia::HostsFile) {
        for id in &n.clients {
            let Some(c) = plan.clients.iter().find(|c| &c.id == id) else {
                continue;
            };
            if plan
                .steps
                .iter()
                .any(|s| s.effects.contains(&Effect::Reconfigures(c.id.clone())))
            {
                continue;
            }
            let files = if c.files.is_empty() {
                "/etc/hosts".to_string()
            } else {
                c.files.join(", ")
            };
            let change = format!(
                "change {} from {} to {}",
                n.name,
                n.old.as_deref().unwrap_or("the old value"),
                n.new.as_deref().unwrap_or("the new value")
            );
            let on: Vec<String> = if c.hosts.is_empty() {
                vec![format!(
                    "on each of the {} client(s): in {files}, {change}",
                    c.count
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "listed".into())
                )]
            } else {
                c.hosts
                    .iter()
                    .map(|h| format!("on {h}: in {files}, {change}"))
                    .collect()
            };
            out.push(finding(
                "hosts-file-not-changed",
                Some(n.span.clone()),
                format!(
                    "name `{}` is resolved from hosts files, and no step changes the files of clients `{}`: they will keep reaching {}",
                    n.id,
                    c.id,
                    n.old.as_deref().unwrap_or("the old address")
                ),
                format!(
                    "add a manual step with reconfigures = [\"{}\"] and the text \"{}\", then a scan-refs step (names = [\"{}\"], require_none = true) to check",
                    c.id,
                    on.join("; "),
                    n.id
                ),
            ));
        }
    }
}

fn no_backup_before_pnr(plan: &Plan, out: &mut Vec<Diagnostic>) {
    let Some(pnr) = &plan.migration.point_of_no_return else {
        return;
    };
    let Some(p) = plan.step_index(&pnr.value) else {
        return;
    };
    let backed_up = plan.steps[..=p].iter().any(|s| plan.backup_of(s).is_some());
    if !backed_up {
        out.push(finding(
            "no-backup-before-point-of-no-return",
            Some(pnr.span.clone()),
            format!(
                "no step up to the point of no return (`{}`) backs up the old side: after it, a failure cannot be undone by going back",
                pnr.value
            ),
            format!(
                "add `backup = \"WHERE\"` (where the copy is kept: `HOST:PATH` or a description) to the step before `{}` that makes it (a `run` step with the dump or snapshot), or sync a data set with `backup = true` (the old data copied to a third host) before it",
                pnr.value
            ),
        ));
    }
}

fn clients_not_reconfigured(plan: &Plan, out: &mut Vec<Diagnostic>) {
    // A hosts-file name's clients have their own finding (hosts-file-not-changed).
    let by_hosts_file = |id: &str| {
        plan.names
            .iter()
            .any(|n| n.via == NameVia::HostsFile && n.clients.iter().any(|c| c == id))
    };
    for c in plan.clients.iter().filter(|c| !by_hosts_file(&c.id)) {
        let planned = plan
            .steps
            .iter()
            .any(|s| s.effects.contains(&Effect::Reconfigures(c.id.clone())));
        if !planned {
            let many = c
                .count
                .map(|n| format!(" ({n} clients)"))
                .unwrap_or_default();
            out.push(finding(
                "clients-not-reconfigured",
                Some(c.span.clone()),
                format!("clients `{}`{many} hold the address locally, and no step reconfigures them", c.id),
                format!(
                    "add a step (manual, or run on the clients) with reconfigures = [\"{}\"], with the time it takes",
                    c.id
                ),
            ));
        }
    }
}

fn window_not_open(plan: &Plan, out: &mut Vec<Diagnostic>) {
    let Some(window) = &plan.migration.window else {
        return;
    };
    for (i, s) in plan.steps.iter().enumerate() {
        if !s.needs_window {
            continue;
        }
        let later_wait = plan.steps[i + 1..].iter().find(
            |w| matches!(&w.kind, StepKind::Wait { wait: WaitFor::Until(t) } if *t <= window.start),
        );
        if let Some(w) = later_wait {
            out.push(finding(
                "window-not-open",
                Some(s.span.clone()),
                format!(
                    "step `{}` needs the window but comes before step `{}`, which waits for the window to open",
                    s.id, w.id
                ),
                format!("move `{}` after `{}`", s.id, w.id),
            ));
        }
    }
}

/// The services that write to a data set: those on the host it is copied from.
fn writers<'a>(plan: &'a Plan, d: &DataSet) -> Vec<&'a Service> {
    plan.services
        .iter()
        .filter(|s| s.host == d.from.host)
        .collect()
}

fn copy_before_stop(plan: &Plan, out: &mut Vec<Diagnostic>) {
    for d in &plan.data {
        let writers = writers(plan, d);
        if writers.is_empty() {
            continue;
        }
        let transfers = Effect::Transfers(d.id.clone());
        let verifies = Effect::Verifies(d.id.clone());
        // The last step that stops a writer, and which writer.
        let last_stop = plan.steps.iter().enumerate().rev().find_map(|(i, s)| {
            writers
                .iter()
                .find(|w| s.effects.contains(&Effect::Stops(w.id.clone())))
                .map(|w| (i, *w))
        });
        let names = writers
            .iter()
            .map(|w| format!("`{}`", w.id))
            .collect::<Vec<_>>()
            .join(", ");
        let Some((stop, writer)) = last_stop else {
            // Copied while its writers run, and never after they stop: fine only when the
            // owners accept losing what is written meanwhile.
            let accepted = plan.migration.max_data_loss.is_some_and(|l| !l.is_zero());
            if let Some(last) = plan.steps.iter().rfind(|s| s.effects.contains(&transfers))
                && !accepted
            {
                out.push(finding(
                    "copy-before-stop",
                    Some(last.effect_span(&transfers)),
                    format!(
                        "data set `{}` is copied while service(s) {names} on host `{}` write to it, and no step stops them: what they write after step `{}` is lost",
                        d.id, d.from.host, last.id
                    ),
                    "stop the services (a step with stops = [...]) before the final sync and its verification, or set max_data_loss in [migration] to what the owners accept",
                ));
            }
            continue;
        };
        let stop_id = &plan.steps[stop].id;
        let last_transfer = plan
            .steps
            .iter()
            .rposition(|s| s.effects.contains(&transfers));
        let last_verify = plan
            .steps
            .iter()
            .rposition(|s| s.effects.contains(&verifies));
        for (i, s) in plan.steps[..stop].iter().enumerate() {
            let final_sync = matches!(
                s.kind,
                StepKind::Sync {
                    phase: SyncPhase::Final,
                    ..
                }
            ) && s.effects.contains(&transfers);
            if Some(i) == last_transfer || final_sync {
                out.push(finding(
                    "copy-before-stop",
                    Some(s.effect_span(&transfers)),
                    format!(
                        "step `{}` is the {} copy of data set `{}`, but step `{stop_id}` stops service `{}` (which writes to it) only after: what is written in between is lost",
                        s.id,
                        if final_sync { "final" } else { "last" },
                        d.id,
                        writer.id
                    ),
                    format!(
                        "move `{}` after `{stop_id}`, or add a final sync of `{}` after it (with phase = \"bulk\" on this one)",
                        s.id, d.id
                    ),
                ));
            }
            if Some(i) == last_verify {
                out.push(finding(
                    "copy-before-stop",
                    Some(s.effect_span(&verifies)),
                    format!(
                        "step `{}` is the last verification of data set `{}`, but step `{stop_id}` stops service `{}` (which writes to it) only after: it cannot vouch for the final copy",
                        s.id, d.id, writer.id
                    ),
                    format!("verify `{}` again after its final sync, after `{stop_id}`", d.id),
                ));
            }
        }
    }
}

/// How a data set holds a key's paths (pure: paths compared as written, excludes with
/// rsync's meaning through `rehost_glob`, the matcher the walk uses).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Holding {
    /// Every path is under the data set's root and no exclude leaves one out.
    All,
    /// Some path is not under the root (or the key is on another host).
    NotUnder,
    /// Every path is under the root, but exclude number `pattern` leaves `path` out.
    Excluded { path: String, pattern: usize },
}

pub(crate) fn holding(d: &DataSet, host: &str, paths: &[String]) -> Holding {
    if paths.is_empty() || d.from.host != host {
        return Holding::NotUnder;
    }
    let mut rels = Vec::new();
    for p in paths {
        match std::path::Path::new(p).strip_prefix(&d.from.path) {
            Ok(rel) => rels.push((p, rel.to_string_lossy().into_owned())),
            Err(_) => return Holding::NotUnder,
        }
    }
    for (p, rel) in rels {
        for (i, x) in d.exclude.iter().enumerate() {
            // A pattern that does not parse fails the sync itself; it leaves nothing out here.
            let Ok(g) = rehost_glob::Glob::new(x) else {
                continue;
            };
            if rehost_glob::excluded_by(std::slice::from_ref(&g), rel.as_bytes(), None).is_some() {
                return Holding::Excluded {
                    path: p.clone(),
                    pattern: i,
                };
            }
        }
    }
    Holding::All
}

/// A path the plan names (a key's) that lies under a data set's root but that the data set's
/// excludes leave out: no sync carries it, no verification compares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExcludedPath {
    /// As the plan writes it (absolute, on the data set's source host).
    pub path: String,
    /// The `[[keys]]` entry that names it.
    pub key: String,
    /// The exclude pattern that leaves it (or a parent directory) out.
    pub exclude: String,
}

/// Every path the plan names under `d`'s root that `d`'s excludes leave out, in plan order.
pub fn excluded_named_paths(plan: &Plan, d: &DataSet) -> Vec<ExcludedPath> {
    let mut out = Vec::new();
    for k in plan.keys.iter().filter(|k| k.host == d.from.host) {
        for p in &k.paths {
            if let Holding::Excluded { path, pattern } =
                holding(d, &k.host, std::slice::from_ref(p))
            {
                out.push(ExcludedPath {
                    path,
                    key: k.id.clone(),
                    exclude: d.exclude[pattern].clone(),
                });
            }
        }
    }
    out
}

/// The data set a `sync` or `verify-tree` step works on.
fn step_data<'a>(plan: &'a Plan, s: &Step) -> Option<&'a DataSet> {
    match &s.kind {
        StepKind::Sync { data, .. } | StepKind::VerifyTree { data } => plan.data_set(data),
        _ => None,
    }
}

/// Where exclude number `i` of `d` was written (the data set if not known).
fn exclude_span(d: &DataSet, i: usize) -> Span {
    d.exclude_spans
        .get(i)
        .cloned()
        .unwrap_or_else(|| d.span.clone())
}

/// Why key `id` of the plan reaches the new host by no step (the `key-not-carried` rule's own
/// words: no step carries it, or every data set that holds it excludes it), or `None` when a
/// step carries it (or no key has that id). The report's Keys section names it "not carried".
pub fn key_not_carried_reason(plan: &Plan, id: &str) -> Option<String> {
    let k = plan.keys.iter().find(|k| k.id == id)?;
    let mut one = plan.clone();
    one.keys = vec![k.clone()];
    let mut out = Vec::new();
    key_not_carried(&one, &mut out);
    out.into_iter().next().map(|d| d.message)
}

fn key_not_carried(plan: &Plan, out: &mut Vec<Diagnostic>) {
    for k in &plan.keys {
        let claim = Effect::Transfers(k.id.clone());
        let mut carried = false;
        // A sync of a data set that would hold the key but for an exclude.
        let mut left_out: Option<(&Step, &DataSet, String, usize)> = None;
        for s in &plan.steps {
            let d = step_data(plan, s).filter(|_| matches!(s.kind, StepKind::Sync { .. }));
            let held = d.map(|d| (d, holding(d, &k.host, &k.paths)));
            if s.effects.contains(&claim) {
                match held {
                    // A sync that names the key must hold it.
                    Some((d, Holding::NotUnder)) => out.push(finding(
                        "key-not-carried",
                        Some(s.effect_span(&claim)),
                        format!(
                            "step `{}` says it transfers key `{}`, but its data set `{}` ({}) does not hold the key's paths ({})",
                            s.id,
                            k.id,
                            d.id,
                            d.from,
                            k.paths.join(", ")
                        ),
                        format!(
                            "carry `{}` with a step of its own, or sync a data set that holds {}",
                            k.id,
                            k.paths.join(", ")
                        ),
                    )),
                    Some((d, Holding::Excluded { path, pattern })) => out.push(finding(
                        "key-not-carried",
                        Some(s.effect_span(&claim)),
                        format!(
                            "step `{}` says it transfers key `{}`, but data set `{}` ({}) excludes {path} (exclude `{}`): the sync leaves the key behind",
                            s.id, k.id, d.id, d.from, d.exclude[pattern]
                        ),
                        excluded_help(k, d, &path, pattern),
                    )),
                    // A person or a command carries it: the plan takes its word.
                    _ => carried = true,
                }
            } else if let Some((d, h)) = held {
                match h {
                    Holding::All => carried = true,
                    Holding::Excluded { path, pattern } => {
                        left_out.get_or_insert((s, d, path, pattern));
                    }
                    Holding::NotUnder => {}
                }
            }
        }
        // A verification that says it verifies the key while its data set excludes it.
        let verifies = Effect::Verifies(k.id.clone());
        for s in plan.steps.iter().filter(|s| s.effects.contains(&verifies)) {
            let Some(d) =
                step_data(plan, s).filter(|_| matches!(s.kind, StepKind::VerifyTree { .. }))
            else {
                continue;
            };
            if let Holding::Excluded { path, pattern } = holding(d, &k.host, &k.paths) {
                out.push(finding(
                    "key-not-carried",
                    Some(s.effect_span(&verifies)),
                    format!(
                        "step `{}` says it verifies key `{}`, but data set `{}` ({}) excludes {path} (exclude `{}`): the verification never compares it",
                        s.id, k.id, d.id, d.from, d.exclude[pattern]
                    ),
                    excluded_help(k, d, &path, pattern),
                ));
            }
        }
        if carried {
            continue;
        }
        match left_out {
            Some((s, d, path, pattern)) => out.push(finding(
                "key-not-carried",
                Some(exclude_span(d, pattern)),
                format!(
                    "key `{}` ({}) is carried to the new host by no step: {path} is in data set `{}` ({}), but its exclude `{}` leaves it out of step `{}`",
                    k.id, k.kind, d.id, d.from, d.exclude[pattern], s.id
                ),
                excluded_help(k, d, &path, pattern),
            )),
            None => out.push(finding(
                "key-not-carried",
                Some(k.span.clone()),
                format!(
                    "key `{}` ({}) on host `{}` is carried to the new host by no step",
                    k.id, k.kind, k.host
                ),
                format!(
                    "add a step with transfers = [\"{}\"] (a manual or run step that copies it), or a sync of a data set that holds its paths",
                    k.id
                ),
            )),
        }
    }
}

fn excluded_help(k: &KeyDecl, d: &DataSet, path: &str, pattern: usize) -> String {
    format!(
        "narrow or drop the exclude `{}` of data set `{}` so that it spares {path}, or carry and verify key `{}` with steps of its own (transfers = [\"{}\"], verifies = [\"{}\"])",
        d.exclude[pattern], d.id, k.id, k.id, k.id
    )
}

fn key_verification_misses_paths(plan: &Plan, out: &mut Vec<Diagnostic>) {
    for k in &plan.keys {
        let claim = Effect::Verifies(k.id.clone());
        for s in plan.steps.iter().filter(|s| s.effects.contains(&claim)) {
            if let StepKind::VerifyFiles { from, paths, .. } = &s.kind {
                let missed: Vec<&str> = k
                    .paths
                    .iter()
                    .filter(|p| *from != k.host || !paths.contains(p))
                    .map(String::as_str)
                    .collect();
                if !missed.is_empty() {
                    out.push(finding(
                        "key-verification-misses-paths",
                        Some(s.effect_span(&claim)),
                        format!(
                            "step `{}` says it verifies key `{}`, but it compares {} on host `{from}`, not the key's {} on host `{}`",
                            s.id,
                            k.id,
                            paths.join(", "),
                            missed.join(", "),
                            k.host
                        ),
                        format!(
                            "list every path of key `{}` in the step's `paths`, with from = \"{}\"",
                            k.id, k.host
                        ),
                    ));
                }
                continue;
            }
            let Some(d) = step_data(plan, s) else {
                continue; // a person or a command verifies it: the plan takes its word
            };
            // Held but excluded: `key-not-carried` names the exclude.
            if holding(d, &k.host, &k.paths) == Holding::NotUnder {
                out.push(finding(
                    "key-verification-misses-paths",
                    Some(s.effect_span(&claim)),
                    format!(
                        "step `{}` says it verifies key `{}`, but it verifies data set `{}` ({}), which does not hold the key's paths ({})",
                        s.id,
                        k.id,
                        d.id,
                        d.from,
                        k.paths.join(", ")
                    ),
                    format!(
                        "verify `{}` with a step that covers {} (a data set holding them, or a run step that compares the keys' fingerprints)",
                        k.id,
                        k.paths.join(", ")
                    ),
                ));
            }
        }
    }
}

fn service_never_started(plan: &Plan, out: &mut Vec<Diagnostic>) {
    for svc in &plan.services {
        let stops = Effect::Stops(svc.id.clone());
        let Some(last) = plan.steps.iter().rposition(|s| s.effects.contains(&stops)) else {
            continue;
        };
        let started = plan.steps[last + 1..]
            .iter()
            .any(|s| s.effects.contains(&Effect::Starts(svc.id.clone())));
        if !started {
            let s = &plan.steps[last];
            out.push(finding(
                "service-never-started",
                Some(s.effect_span(&stops)),
                format!(
                    "step `{}` stops service `{}` (on host `{}`) and no step after it starts it anywhere",
                    s.id, svc.id, svc.host
                ),
                format!(
                    "add a step after `{}` that starts `{}` on the new host, with starts = [\"{}\"]",
                    s.id, svc.id, svc.id
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests;
