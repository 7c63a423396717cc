//! The `verify-config` step kind: the configuration on both sides read where it lives
//! (`crate::config`: a command's output, files, a database's settings), normalised and
//! compared by rehost-config; the result, never a secret's value, is `StepData::VerifyConfig`.

use super::{Executor, Need};
use crate::EngineError;
use crate::config::Source;
use crate::exec::{Ctx, Outcome, failed};
use rehost_config::{Format, Options, Rewrite};
use rehost_journal::step_data::{STEP_DATA_VERSION, StepData, VerifyConfigData};
use rehost_plan::{ConfigSide, Step, StepKind};
use std::sync::atomic::Ordering;

pub(super) static EXECUTOR: Executor = Executor {
    kind: "verify-config",
    rollback: None,
    execute,
    needs: |_, step| match &step.kind {
        StepKind::VerifyConfig {
            old, new, database, ..
        } => {
            let mut needs: Vec<Need> = old
                .iter()
                .chain(new.iter())
                .map(|s| Need::Opens { host: &s.host })
                .collect();
            if let Some(db) = database {
                needs.push(Need::Database {
                    database: db,
                    to: false,
                });
                needs.push(Need::Database {
                    database: db,
                    to: true,
                });
            }
            needs
        }
        _ => Vec::new(),
    },
};

fn source(s: &ConfigSide) -> Source {
    match (&s.path, &s.command) {
        (Some(p), _) => Source::Files(p.clone()),
        (None, Some(c)) => Source::Command(c.clone()),
        (None, None) => unreachable!("the plan reader requires a path or a command"),
    }
}

fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    let StepKind::VerifyConfig {
        old,
        new,
        database,
        allow,
        rewrite,
        format,
    } = &step.kind
    else {
        unreachable!("the registry hands `verify-config` its own steps")
    };
    let format = format.as_deref().and_then(Format::parse_name);
    // The two sides: (host, source).
    let sides: [(String, Source); 2] = match (old, new, database) {
        (_, _, Some(id)) => {
            let db = ctx
                .plan
                .database_in(id, ctx.env)
                .expect("validated: the database exists");
            let conns = rehost_db::ConnInfo::of(&db, false)
                .and_then(|a| Ok((a, rehost_db::ConnInfo::of(&db, true)?)));
            match conns {
                Ok((a, b)) => [
                    (db.from.clone(), Source::Database(a)),
                    (db.to.clone(), Source::Database(b)),
                ],
                Err(e) => return failed(format!("database `{id}`: {e}")),
            }
        }
        (Some(o), Some(n), None) => [(o.host.clone(), source(o)), (n.host.clone(), source(n))],
        _ => unreachable!("the plan reader requires old and new, or database"),
    };
    let mut read = Vec::new();
    for (host, src) in &sides {
        let h = match ctx.hosts.get(host) {
            Ok(h) => h,
            Err(e) => return failed(e),
        };
        match crate::config::read(h, true, src, format, ctx.cancel) {
            Ok(side) => read.push(side),
            Err(_) if ctx.cancel.load(Ordering::Relaxed) => return Ok(Outcome::Cancelled),
            Err(e) => {
                return failed(format!(
                    "cannot read {}: {e}",
                    rehost_plan::escape_control(&src.describe(host))
                ));
            }
        }
    }
    let opts = Options {
        allow: allow.clone(),
        expected: if database.is_some() {
            rehost_config::POSTGRES_EXPECTED
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else {
            Vec::new()
        },
        rewrite: rewrite
            .iter()
            .map(|r| Rewrite {
                from: r.from.clone(),
                to: r.to.clone(),
            })
            .collect(),
    };
    let c = rehost_config::compare(&read[0].entries, &read[1].entries, &opts);
    let not_compared = crate::config::not_compared(&[&sides[0].1, &sides[1].1]);
    let (old_name, new_name) = (
        sides[0].1.describe(&sides[0].0),
        sides[1].1.describe(&sides[1].0),
    );
    // The diff, every line escaped (render_human escapes what the sides sent).
    let text = rehost_config::render_human(&c, &old_name, &new_name, &not_compared);
    let _ = ctx.output.write_all(text.as_bytes());
    let names = |f: &[Format]| f.iter().map(|f| f.name().to_owned()).collect::<Vec<_>>();
    let code = if c.is_equal() { 0 } else { 1 };
    let summary = format!(
        "{} keys compared, {} equal, {} differ, {} allowed{}",
        c.keys,
        c.equal,
        c.differences.len(),
        c.allowed.len(),
        if c.secrets > 0 {
            format!(", {} secret (compared, not shown)", c.secrets)
        } else {
            String::new()
        }
    );
    let first: Vec<String> = c
        .differences
        .iter()
        .take(3)
        .map(|d| rehost_plan::escape_control(&d.key))
        .collect();
    let data = StepData::VerifyConfig(Box::new(VerifyConfigData {
        v: STEP_DATA_VERSION,
        old: old_name,
        new: new_name,
        database: database.clone(),
        old_formats: names(&read[0].formats),
        new_formats: names(&read[1].formats),
        comparison: c,
        exit_code: code,
        not_compared,
    }));
    if code == 0 {
        return Ok(Outcome::Done {
            detail: Some(format!(
                "configuration equal after the declared differences: {summary}; not compared: text order, comments, what the sides do not print"
            )),
            exit_code: Some(0),
            confirmed_by: None,
            data: Some(data),
        });
    }
    Ok(Outcome::Failed {
        detail: format!(
            "the configuration differs: {summary} (first: {}); the diff is in the step's output. Carry the setting over, or declare the difference expected with `allow` or `rewrite`",
            first.join(", ")
        ),
        exit_code: Some(code),
        data: Some(data),
    })
}
