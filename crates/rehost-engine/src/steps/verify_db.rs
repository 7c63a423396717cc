//! The `verify-db` step kind: compares a plan database's copy with its original, each side
//! queried from its own host (`from`, `to`) by its client (psql, mariadb, sqlite3) — through the agent on ssh hosts, so servers
//! that listen only on their own loopback are reached. Only catalog rows and digests travel;
//! the typed result goes into the journal, the full report into the step's output.

use super::{Executor, Need};
use crate::EngineError;
use crate::events::Event;
use crate::exec::{Ctx, Outcome};
use rehost_db::{ConnInfo, VerifyOptions};
use rehost_plan::{Step, StepKind};

use crate::exec::{JOURNAL_FINDINGS, failed};

pub(super) static EXECUTOR: Executor = Executor {
    kind: "verify-db",
    execute,
    // Each side is reached by its client on its host: both must answer before the run.
    needs: |_, step| match &step.kind {
        StepKind::VerifyDb { database } => vec![
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
    let StepKind::VerifyDb { database } = &step.kind else {
        unreachable!("the registry hands `verify-db` its own steps")
    };
    verify_db(ctx, step, database)
}

fn verify_db(ctx: &mut Ctx, step: &Step, id: &str) -> Result<Outcome, EngineError> {
    let db = ctx
        .plan
        .database(id)
        .expect("validated: the database exists")
        .clone();
    if db.engine_kind().is_none() {
        return failed(format!(
            "database `{id}` is a {} database: verify-db compares PostgreSQL, MariaDB/MySQL and SQLite; verify it with a `run` step",
            db.engine
        ));
    }
    let conns =
        ConnInfo::parse(&db.url(false)).and_then(|a| Ok((a, ConnInfo::parse(&db.url(true))?)));
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
        let engine = ca.engine;
        let a = rehost_host::dbclient::connect(ha, true, ca, cancel);
        let b = rehost_host::dbclient::connect(hb, true, cb, cancel);
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
    let mut doc = serde_json::to_value(&report).unwrap_or_default();
    let mut findings_total = 0;
    if let Some(f) = doc.get_mut("findings").and_then(|f| f.as_array_mut()) {
        findings_total = f.len();
        f.truncate(JOURNAL_FINDINGS);
    }
    let doc = crate::step_data::StepData::VerifyDb(Box::new(crate::step_data::VerifyDbData {
        v: crate::step_data::STEP_DATA_VERSION,
        database: id.to_owned(),
        source: db.from.to_string(),
        destination: db.to.to_string(),
        equal: report.findings.is_empty(),
        findings_total,
        report: doc,
    }));
    let code = report.exit_code();
    if code == rehost_db::EXIT_EQUAL {
        Ok(Outcome::Done {
            detail: Some(format!(
                "database `{id}` verified on {}: {}",
                db.to,
                report.summary()
            )),
            exit_code: Some(code),
            confirmed_by: None,
            data: Some(doc),
        })
    } else {
        Ok(Outcome::Failed {
            detail: format!(
                "database `{id}` on {} differs from {}: {}; the full list is in the step's output",
                db.to,
                db.from,
                report.summary()
            ),
            exit_code: Some(code),
            data: Some(doc),
        })
    }
}
