//! The `verify-db` step kind: compares a plan database's copy with its original, each side
//! queried from its own host (`from`, `to`) by its client (psql, mariadb, sqlite3) — through the agent on ssh hosts, so servers
//! that listen only on their own loopback are reached. Only catalog rows and digests travel;
//! the typed result goes into the journal, the full report into the step's output. With
//! `exercise = true` the copy is then exercised (read, modify, add, each rolled back, between
//! two checksums of the whole database) as the application's login, on the `to` host; its
//! outcome is [`rehost_journal::step_data::ExerciseData`] in the same result.

use super::{Executor, Need};
use crate::EngineError;
use crate::events::Event;
use crate::exec::{Ctx, Outcome};
use rehost_db::{ConnInfo, VerifyOptions};
use rehost_plan::{DbExercise, Step, StepKind};

use crate::exec::{JOURNAL_FINDINGS, failed};
use rehost_journal::step_data::{ExerciseData, ExerciseProblem, LeftBehind};

pub(super) static EXECUTOR: Executor = Executor {
    kind: "verify-db",
    rollback: None,
    execute,
    // Each side is reached by its client on its host: both must answer before the run.
    needs: |_, step| match &step.kind {
        StepKind::VerifyDb { database, .. } => vec![
            Need::Database {
                database,
                to: false,
            },
            Need::Database { database, to: true },
        ],
        _ => Vec::new(),
    },
};

fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    let StepKind::VerifyDb { database, exercise } = &step.kind else {
        unreachable!("the registry hands `verify-db` its own steps")
    };
    verify_db(ctx, step, database, exercise.as_ref())
}

fn verify_db(
    ctx: &mut Ctx,
    step: &Step,
    id: &str,
    exercise: Option<&DbExercise>,
) -> Result<Outcome, EngineError> {
    // A rehearsal connects where the environment says the database is.
    let db = ctx
        .plan
        .database_in(id, ctx.env)
        .expect("validated: the database exists");
    let Some(engine) = db.kind else {
        return failed(format!(
            "database `{id}` is a {} database: verify-db compares PostgreSQL, MariaDB/MySQL and SQLite; verify it with a `run` step",
            db.engine
        ));
    };
    let conns = ConnInfo::of(&db, false).and_then(|a| Ok((a, ConnInfo::of(&db, true)?)));
    let (ca, cb) = match conns {
        Ok(c) => c,
        Err(e) => return failed(format!("database `{id}`: {e}")),
    };
    ctx.sink.emit(&Event::Progress {
        id: step.id.clone(),
        message: format!(
            "comparing database `{id}`: {}:{} with {}:{}",
            db.from, ca, db.to, cb
        ),
    });
    let cancel = ctx.cancel;
    let result = {
        let (ha, hb) = match ctx.hosts.pair(&db.from, &db.to) {
            Ok(p) => p,
            Err(e) => return failed(e),
        };
        let a = rehost_db::connect(ha, true, ca, cancel);
        let b = rehost_db::connect(hb, true, cb, cancel);
        rehost_db::verify_engine(engine, a.as_ref(), b.as_ref(), &VerifyOptions::default())
    };
    if cancel.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(Outcome::Cancelled);
    }
    let report = match result {
        Ok(r) => r,
        Err(e) => return failed(format!("failed to verify database `{id}`: {e}")),
    };
    let mut human = Vec::new();
    let _ = report.render_human(&mut human);
    let _ = ctx.output.write_all(&human);
    for line in String::from_utf8_lossy(&human).lines().take(20) {
        ctx.sink.emit(&Event::Output {
            id: step.id.clone(),
            host: db.to.clone(),
            stream: "out".into(),
            line: line.to_owned(),
        });
    }
    let exercised = match exercise {
        Some(e) => {
            let x = exercise_copy(ctx, step, &db, e);
            if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(Outcome::Cancelled);
            }
            Some(x)
        }
        None => None,
    };
    let mut doc = serde_json::to_value(&report).unwrap_or_default();
    let mut findings_total = 0;
    if let Some(f) = doc.get_mut("findings").and_then(|f| f.as_array_mut()) {
        findings_total = f.len();
        f.truncate(JOURNAL_FINDINGS);
    }
    let exercise_ok = exercised
        .as_ref()
        .is_none_or(|x| x.error.is_none() && x.failed == 0 && x.unchanged);
    let exercise_line = exercised.as_ref().map(exercise_summary);
    let doc = rehost_journal::step_data::StepData::VerifyDb(Box::new(
        rehost_journal::step_data::VerifyDbData {
            v: rehost_journal::step_data::STEP_DATA_VERSION,
            database: id.to_owned(),
            source: db.from.to_string(),
            destination: db.to.to_string(),
            equal: report.findings.is_empty(),
            findings_total,
            report: doc,
            exercise: exercised.clone(),
        },
    ));
    let mut code = report.exit_code();
    if let Some(x) = &exercised {
        let c = if x.error.is_some() {
            rehost_db::EXIT_TROUBLE
        } else if exercise_ok {
            rehost_db::EXIT_EQUAL
        } else {
            rehost_db::EXIT_DIFFERENT
        };
        code = code.max(c);
    }
    let then = exercise_line.map(|l| format!("; {l}")).unwrap_or_default();
    if code == rehost_db::EXIT_EQUAL {
        Ok(Outcome::Done {
            detail: Some(format!(
                "database `{id}` verified on {}: {}{then}",
                db.to,
                report.summary()
            )),
            exit_code: Some(code),
            confirmed_by: None,
            data: Some(doc),
        })
    } else if report.exit_code() != rehost_db::EXIT_EQUAL {
        Ok(Outcome::Failed {
            detail: format!(
                "database `{id}` on {} differs from {}: {}; the full list is in the step's output{then}",
                db.to,
                db.from,
                report.summary()
            ),
            exit_code: Some(code),
            data: Some(doc),
        })
    } else {
        Ok(Outcome::Failed {
            detail: format!(
                "database `{id}` verified on {}: {}{then}; the full exercise is in the step's output",
                db.to,
                report.summary()
            ),
            exit_code: Some(code),
            data: Some(doc),
        })
    }
}

/// One phrase for the step's detail: what the exercise found.
fn exercise_summary(x: &ExerciseData) -> String {
    if let Some(e) = &x.error {
        return format!("the exercise did not run to its end: {e}");
    }
    let who = if x.login.is_empty() {
        String::new()
    } else {
        format!(" as {}", x.login)
    };
    let first = x
        .problems
        .iter()
        .find(|p| p.status == "failed")
        .map(|p| format!(" (first: {} {}: {})", p.table, p.operation, p.detail))
        .unwrap_or_default();
    let left = if x.unchanged {
        "the database unchanged by checksum before and after".to_owned()
    } else {
        let names: Vec<String> = x
            .left_behind
            .iter()
            .take(5)
            .map(|l| format!("{} {}", l.kind, l.name))
            .collect();
        format!("the exercise LEFT CHANGES in {}", names.join(", "))
    };
    format!(
        "exercised{who}: {} tables, {} operations, {} failed{first}, {} skipped; {left}",
        x.tables, x.operations, x.failed, x.skipped
    )
}

/// The exercise of the copy on the `to` host as the application's login: its report goes to
/// the step's output and its outcome into the journal; an exercise that cannot run is an
/// outcome too (`error`), not the step's end.
fn exercise_copy(
    ctx: &mut Ctx,
    step: &Step,
    db: &rehost_plan::Database,
    e: &DbExercise,
) -> ExerciseData {
    let mut login = db.clone();
    if e.user.is_some() {
        login.user = e.user.clone();
        login.password_file = e.password_file.clone();
    } else if e.password_file.is_some() {
        login.password_file = e.password_file.clone();
    }
    let who = e.user.clone().unwrap_or_default();
    let conn = match ConnInfo::of(&login, true) {
        Ok(c) => c,
        Err(err) => {
            return ExerciseData {
                login: who,
                error: Some(format!("database `{}`: {err}", db.id)),
                ..Default::default()
            };
        }
    };
    let target = format!("{}:{}", db.to, conn);
    ctx.sink.emit(&Event::Progress {
        id: step.id.clone(),
        message: format!("exercising database `{}`: {target}", db.id),
    });
    let engine = conn.engine();
    let cancel = ctx.cancel;
    let result = match ctx.hosts.get(&db.to) {
        Ok(h) => {
            let sql = rehost_db::connect_for_exercise(h, true, conn, cancel);
            rehost_db::exercise_engine(engine, sql.as_ref(), &[]).map_err(|e| e.to_string())
        }
        Err(err) => Err(err.to_string()),
    };
    match result {
        Ok(r) => {
            let mut human = Vec::new();
            let _ = r.render_human(&mut human);
            let _ = ctx.output.write_all(&human);
            ctx.sink.emit(&Event::Output {
                id: step.id.clone(),
                host: db.to.clone(),
                stream: "out".into(),
                line: r.summary(),
            });
            exercise_data(&r, &who, JOURNAL_FINDINGS)
        }
        Err(err) => {
            let _ = ctx
                .output
                .write_all(format!("the exercise of {target} failed: {err}\n").as_bytes());
            ExerciseData {
                target,
                login: who,
                error: Some(err),
                ..Default::default()
            }
        }
    }
}

/// The journal's form of an exercise's report ([`ExerciseData`]): figures, the differences and
/// the first `max` failed or skipped operations. Here, not in rehost-journal, so that the
/// journal crate needs no database crate (which runs clients on hosts).
fn exercise_data(r: &rehost_db::ExerciseReport, login: &str, max: usize) -> ExerciseData {
    use rehost_db::exercise::Status;
    let ops = || {
        r.tables
            .iter()
            .flat_map(|t| t.operations.iter().map(move |o| (t, o)))
    };
    let u = r.unchanged.clone().unwrap_or_default();
    ExerciseData {
        target: r.target.clone(),
        login: login.to_owned(),
        error: None,
        tables: r.tables.len(),
        operations: ops().count(),
        failed: r.failed(),
        skipped: ops().filter(|(_, o)| o.status == Status::Skipped).count(),
        unchanged: r.unchanged(),
        check: u.check,
        checksum_before: u.before,
        checksum_after: u.after,
        checked_tables: u.tables,
        checked_rows: u.rows,
        checked_sequences: u.sequences,
        left_behind: u
            .findings
            .iter()
            .take(max)
            .map(|f| LeftBehind {
                class: f.class.name().into(),
                kind: f.kind.name().into(),
                name: f.name.clone(),
                before: f.old.clone(),
                after: f.new.clone(),
            })
            .collect(),
        not_covered: u.not_covered,
        problems: ops()
            .filter(|(_, o)| o.status != Status::Ok)
            .take(max)
            .map(|(t, o)| ExerciseProblem {
                table: t.table.clone(),
                operation: o.what.clone(),
                status: match o.status {
                    Status::Failed => "failed",
                    _ => "skipped",
                }
                .into(),
                detail: o.detail.clone(),
            })
            .collect(),
    }
}
