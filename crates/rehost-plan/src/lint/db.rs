//! The database rules: every declared database checked by a `verify-db` step after its last
//! copy (`database-unverified`), and its last copy taken only after the services that write to
//! it are stopped (`database-copy-before-stop`: the final-sync rule of `copy-before-stop`, for
//! databases).
//!
//! A step copies a database when it says so (`transfers = ["DB"]`, or a kind that implies it),
//! or when it is a `run` step whose command runs one of the engine's copy programs
//! ([`COPIERS`]) on the database's host (or anywhere, when the plan has only one database of
//! that engine).

use super::finding;
use crate::diag::Diagnostic;
use crate::model::*;

/// The programs that copy a database, by engine (`Database::kind`). For SQLite it is
/// `sqlite3` with its `.backup` or `.dump` command.
pub(crate) const COPIERS: &[(Engine, &[&str])] = &[
    (
        Engine::Postgres,
        &["pg_dump", "pg_dumpall", "pg_basebackup"],
    ),
    (
        Engine::Mysql,
        &[
            "mariadb-dump",
            "mysqldump",
            "mariabackup",
            "mariadb-backup",
            "xtrabackup",
            "mysqlpump",
        ],
    ),
];

/// The words of a command: an argument vector as is, a shell string split at blanks and at
/// the shell's separators (good enough to find a program's name, not a shell parser).
pub(crate) fn words(c: &Command) -> Vec<String> {
    match c {
        Command::Argv(a) => a.clone(),
        Command::Shell(s) => s
            .split(|c: char| c.is_whitespace() || ";|&()`<>".contains(c))
            .map(|w| w.trim_matches(|c| c == '"' || c == '\''))
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect(),
    }
}

/// The last path component of a word (`/usr/bin/pg_dump` → `pg_dump`; `"$PGBIN/pg_dump"` too).
pub(crate) fn program_name(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// The engine whose database this command copies, if it runs a copy program.
fn copies_engine(c: &Command) -> Option<Engine> {
    let words = words(c);
    let names: Vec<&str> = words.iter().map(|w| program_name(w)).collect();
    for (engine, programs) in COPIERS {
        if names.iter().any(|n| programs.contains(n)) {
            return Some(*engine);
        }
    }
    let sqlite = names.contains(&"sqlite3");
    let backup = words
        .iter()
        .any(|w| w.starts_with(".backup") || w.starts_with(".dump"));
    (sqlite && backup).then_some(Engine::Sqlite)
}

/// Whether step `s` copies database `db`.
fn copies(plan: &Plan, s: &Step, db: &Database) -> bool {
    if s.effects.contains(&Effect::Transfers(db.id.clone())) {
        return true;
    }
    let StepKind::Run { command, .. } = &s.kind else {
        return false;
    };
    let Some(engine) = copies_engine(command).filter(|e| db.kind == Some(*e)) else {
        return false;
    };
    let alone = plan
        .databases
        .iter()
        .filter(|d| d.kind == Some(engine))
        .count()
        == 1;
    alone || s.host.as_deref() == Some(db.from.as_str())
}

fn is_verify_db(s: &Step, db: &Database) -> bool {
    matches!(&s.kind, StepKind::VerifyDb { database, .. } if *database == db.id)
}

/// Where a finding about step `s` copying `db` points: the id in its `transfers`, or the step.
fn copy_span(s: &Step, db: &Database) -> Span {
    s.effect_span(&Effect::Transfers(db.id.clone()))
}

pub(crate) fn database_unverified(plan: &Plan, out: &mut Vec<Diagnostic>) {
    for db in &plan.databases {
        let comparable = db.kind.is_some();
        // verify-db compares what it can; for another engine, a step that says it verifies
        // the database is taken at its word.
        let verifies = |s: &Step| {
            is_verify_db(s, db)
                || (!comparable && s.effects.contains(&Effect::Verifies(db.id.clone())))
        };
        let how = if comparable {
            format!(
                "add a step with do = \"verify-db\", database = \"{}\"",
                db.id
            )
        } else {
            format!(
                "verify-db compares PostgreSQL, MariaDB/MySQL and SQLite; for a {} database add a `run` step that checks the copy, with verifies = [\"{}\"]",
                db.engine, db.id
            )
        };
        let last_copy = plan.steps.iter().rposition(|s| copies(plan, s, db));
        match last_copy {
            None if !plan.steps.iter().any(verifies) => out.push(finding(
                "database-unverified",
                Some(db.span.clone()),
                format!(
                    "database `{}` ({}, host `{}` to host `{}`) is checked by no `verify-db` step",
                    db.id, db.engine, db.from, db.to
                ),
                format!("{how}, after the database is copied and before the service starts on the new host"),
            )),
            Some(i) if !plan.steps[i + 1..].iter().any(verifies) => {
                let s = &plan.steps[i];
                out.push(finding(
                    "database-unverified",
                    Some(copy_span(s, db)),
                    format!(
                        "database `{}` is not verified after its last copy (step `{}`)",
                        db.id, s.id
                    ),
                    format!("{how} after `{}`", s.id),
                ));
            }
            _ => {}
        }
    }
}

pub(crate) fn database_copy_before_stop(plan: &Plan, out: &mut Vec<Diagnostic>) {
    for db in &plan.databases {
        // The services that write to it: those on the host it is copied from (as for data
        // sets).
        let writers: Vec<&Service> = plan.services.iter().filter(|s| s.host == db.from).collect();
        if writers.is_empty() {
            continue;
        }
        let names = writers
            .iter()
            .map(|w| format!("`{}`", w.id))
            .collect::<Vec<_>>()
            .join(", ");
        let last_stop = plan.steps.iter().enumerate().rev().find_map(|(i, s)| {
            writers
                .iter()
                .find(|w| s.effects.contains(&Effect::Stops(w.id.clone())))
                .map(|w| (i, *w))
        });
        let last_copy = plan.steps.iter().rposition(|s| copies(plan, s, db));
        let Some((stop, writer)) = last_stop else {
            let accepted = plan.migration.max_data_loss.is_some_and(|l| !l.is_zero());
            if let Some(i) = last_copy
                && !accepted
            {
                let s = &plan.steps[i];
                out.push(finding(
                    "database-copy-before-stop",
                    Some(copy_span(s, db)),
                    format!(
                        "database `{}` is copied by step `{}` while service(s) {names} on host `{}` write to it, and no step stops them: what they write after the copy is lost",
                        db.id, s.id, db.from
                    ),
                    "stop the services (a step with stops = [...]) before the final dump and its verification, or set max_data_loss in [migration] to what the owners accept",
                ));
            }
            continue;
        };
        let stop_id = &plan.steps[stop].id;
        if let Some(i) = last_copy.filter(|&i| i < stop) {
            let s = &plan.steps[i];
            out.push(finding(
                "database-copy-before-stop",
                Some(copy_span(s, db)),
                format!(
                    "step `{}` is the last copy of database `{}`, but step `{stop_id}` stops service `{}` (which writes to it) only after: what is written in between is lost",
                    s.id, db.id, writer.id
                ),
                format!(
                    "move `{}` after `{stop_id}`, or dump `{}` again after it (the earlier copy then only shortens the final one)",
                    s.id, db.id
                ),
            ));
        }
        let last_verify = plan.steps.iter().rposition(|s| is_verify_db(s, db));
        if let Some(i) = last_verify.filter(|&i| i < stop) {
            let s = &plan.steps[i];
            out.push(finding(
                "database-copy-before-stop",
                Some(s.effect_span(&Effect::Verifies(db.id.clone()))),
                format!(
                    "step `{}` is the last verification of database `{}`, but step `{stop_id}` stops service `{}` (which writes to it) only after: it cannot vouch for the final copy",
                    s.id, db.id, writer.id
                ),
                format!(
                    "verify `{}` again after its final copy, after `{stop_id}`",
                    db.id
                ),
            ));
        }
    }
}
