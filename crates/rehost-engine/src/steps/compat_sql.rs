//! `compat-sql`: the old clients' queries from the old server's log, replayed against the
//! database's `from` and `to` sides (psql or the mariadb client on each side's host,
//! `crate::sql_replay`) and
//! compared row by row, the old server's own variation as noise (`rehost_compat::sql`). The
//! journal keeps the result as a `compat` result (`StepData::Compat`, source `sql-log`): one
//! "endpoint" per differing or noisy statement, named by its log line and text, its field the
//! first difference (`row 1, column at`) or the class (`error on new only`).

use super::{Executor, Need};
use crate::EngineError;
use crate::events::Event;
use crate::exec::{Ctx, Outcome, failed};
use crate::sql_replay::{replay_file, side};
use rehost_compat::sql::{self, Summary, log::Format};
use rehost_db::ConnInfo;
use rehost_journal::step_data::{
    CompatData, CompatEndpointData, CompatExampleData, CompatFieldData, CompatListedData,
    STEP_DATA_VERSION, StepData,
};
use rehost_plan::{Step, StepKind, escape_control as esc};

pub(super) static EXECUTOR: Executor = Executor {
    kind: "compat-sql",
    rollback: None,
    execute,
    // Each side is reached by its client on its host: both must answer before the run.
    needs: |_, step| match &step.kind {
        StepKind::CompatSql { database, .. } => vec![
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
    let StepKind::CompatSql {
        database: id,
        log,
        format,
        allow_writes,
    } = &step.kind
    else {
        unreachable!("the registry hands `compat-sql` its own steps")
    };
    let db = ctx
        .plan
        .database_in(id, ctx.env)
        .expect("validated: the database exists");
    let conns = ConnInfo::of(&db, false).and_then(|a| Ok((a, ConnInfo::of(&db, true)?)));
    let (ca, cb) = match conns {
        Ok(c) => c,
        Err(e) => return failed(format!("database `{id}`: {e}")),
    };
    ctx.sink.emit(&Event::Progress {
        id: step.id.clone(),
        message: format!(
            "replaying the statements of {} against database `{id}`: {}:{} and {}:{}",
            esc(log),
            db.from,
            ca,
            db.to,
            cb
        ),
    });
    let opts = sql::Options {
        allow_writes: *allow_writes,
        ..sql::Options::default()
    };
    let cancel = ctx.cancel;
    let result = {
        let (ha, hb) = match ctx.hosts.pair(&db.from, &db.to) {
            Ok(p) => p,
            Err(e) => return failed(e),
        };
        side(ha, true, ca, cancel)
            .and_then(|a| Ok((a, side(hb, true, cb, cancel)?)))
            .and_then(|(a, b)| {
                replay_file(
                    std::path::Path::new(log),
                    format.as_deref().and_then(Format::parse),
                    &*a,
                    &*b,
                    &opts,
                    cancel,
                )
            })
    };
    let summary = match result {
        Ok(s) => s,
        Err(e) => return failed(format!("log {}: {}", esc(log), esc(&e))),
    };
    if summary.interrupted || cancel.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(Outcome::Cancelled);
    }
    let lines = sql::render(&summary, None, &|s| esc(s));
    for l in &lines {
        let _ = writeln!(ctx.output, "{l}");
    }
    for l in lines.iter().take(20) {
        ctx.sink.emit(&Event::Output {
            id: step.id.clone(),
            host: db.to.clone(),
            stream: "out".into(),
            line: l.clone(),
        });
    }
    let code = if summary.trouble() {
        2
    } else if summary.differs() {
        1
    } else {
        0
    };
    let data = Some(StepData::Compat(Box::new(data(&summary, log, code))));
    let not_replayed = format!(
        "{} refused as not read-only, {} transaction and session statements not replayed",
        summary.refused, summary.session
    );
    match code {
        0 => Ok(Outcome::Done {
            detail: Some(format!(
                "the {} distinct statements compared were answered the same by both sides of database `{id}` ({} with noise columns not compared); {not_replayed}",
                summary.compared, summary.noise
            )),
            exit_code: Some(0),
            confirmed_by: None,
            data,
        }),
        1 => {
            let first: Vec<String> = summary
                .findings
                .iter()
                .take(3)
                .map(|f| format!("log line {} ({})", f.line, f.class))
                .collect();
            Ok(Outcome::Failed {
                detail: format!(
                    "{} of {} statements answered differently by the two sides of database `{id}` ({} errors only the new server raises): {}; the step's output names row, column and values",
                    summary.differing,
                    summary.compared,
                    summary.new_errors,
                    first.join(", ")
                ),
                exit_code: Some(1),
                data,
            })
        }
        _ => Ok(Outcome::Failed {
            // The verdict line says what kind of trouble: nothing in the log, nothing compared,
            // statements not replayed or entries not read.
            detail: format!(
                "{} (the step's output names them)",
                lines.last().map(String::as_str).unwrap_or("trouble")
            ),
            exit_code: Some(2),
            data,
        }),
    }
}

/// The summary as a `compat` result: each differing or noisy statement an endpoint.
fn data(s: &Summary, log: &str, code: i32) -> CompatData {
    // MariaDB: the database the statement ran in, where the log names it.
    let endpoint = |line: u64, statement: &str, db: &Option<String>| match db {
        Some(d) => format!("log line {line} (database {d}): {statement}"),
        None => format!("log line {line}: {statement}"),
    };
    let mut endpoints: Vec<CompatEndpointData> = s
        .findings
        .iter()
        .map(|f| {
            let field = match (&f.row, &f.column) {
                (Some(r), Some(c)) => format!("{} at row {r}, column {c}", f.class),
                (Some(r), None) => format!("{} from row {r}", f.class),
                _ => f.class.clone(),
            };
            CompatEndpointData {
                endpoint: endpoint(f.line, &f.statement, &f.database),
                requests: f.occurrences,
                differing: f.occurrences,
                differences: vec![CompatFieldData {
                    field,
                    count: f.occurrences,
                    allowed: false,
                    examples: vec![CompatExampleData {
                        line: f.line,
                        target: f.statement.clone(),
                        old: f.old.clone(),
                        new: f.new.clone(),
                    }],
                }],
                noise: f
                    .noise_columns
                    .iter()
                    .map(|c| CompatFieldData {
                        field: format!("column {c}"),
                        count: 1,
                        allowed: false,
                        examples: Vec::new(),
                    })
                    .collect(),
            }
        })
        .collect();
    endpoints.extend(s.noisy.iter().map(|l| CompatEndpointData {
        endpoint: endpoint(l.line, &l.statement, &l.database),
        requests: l.occurrences,
        differing: 0,
        differences: Vec::new(),
        noise: vec![CompatFieldData {
            field: l.why.clone(),
            count: 1,
            allowed: false,
            examples: Vec::new(),
        }],
    }));
    let listed = |l: &sql::Listed, method: &str| CompatListedData {
        line: l.line,
        method: method.into(),
        target: l.statement.clone(),
        why: l.why.clone(),
    };
    CompatData {
        v: STEP_DATA_VERSION,
        source: "sql-log".into(),
        file: log.into(),
        old: s.old.clone(),
        new: s.new.clone(),
        exit_code: code,
        exchanges: s.statements,
        compared: s.compared,
        same: s.same,
        differing: s.differing,
        allowed: 0,
        refused_writes: s.refused,
        truncated: s.over_cap,
        failed: s.failed,
        bad: s.unreadable,
        noise_measured: s.noise_measured,
        endpoints,
        refused: s.refused_list.iter().map(|l| listed(l, "SQL")).collect(),
        failures: s
            .failures
            .iter()
            .chain(&s.unreadable_list)
            .map(|l| listed(l, "SQL"))
            .collect(),
        not_compared: s.not_compared.clone(),
    }
}
