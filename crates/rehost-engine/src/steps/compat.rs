//! `compat`: old clients served the same. A probe file's requests and client commands, or a
//! traffic file's recorded requests, go to the old service, the new one and the old one again
//! (rehost-compat); the answers are compared, the old service's own variation counted as noise.
//! The step's output lists every endpoint with its differing fields and examples (escaped);
//! the journal keeps the same as `StepData::Compat`. Credentials are never shown or kept.

use super::Executor;
use crate::EngineError;
use crate::exec::{Ctx, Outcome};
use rehost_compat::replay::{Options, Summary, Target};
use rehost_journal::step_data::{
    CompatData, CompatEndpointData, CompatExampleData, CompatFieldData, CompatListedData,
    STEP_DATA_VERSION, StepData,
};
use rehost_plan::{Step, StepKind, escape_control as esc};

pub(super) static EXECUTOR: Executor = Executor {
    kind: "compat",
    rollback: None,
    execute,
    needs: |_, _| Vec::new(),
};

fn failed(detail: String) -> Outcome {
    Outcome::Failed {
        detail,
        exit_code: Some(2),
        data: None,
    }
}

fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    let StepKind::Compat {
        probe,
        traffic,
        old,
        new,
        allow_writes,
        allow,
    } = &step.kind
    else {
        unreachable!("the registry hands `compat` its own steps")
    };
    let (source, file) = match (probe, traffic) {
        (Some(p), _) => ("probe", p),
        (_, Some(t)) => ("traffic", t),
        _ => {
            return Ok(failed(
                "the step names neither `probe` nor `traffic`".into(),
            ));
        }
    };
    let targets = Target::parse(old)
        .map_err(|e| format!("old: {e}"))
        .and_then(|o| Ok((o, Target::parse(new).map_err(|e| format!("new: {e}"))?)));
    let (old_t, new_t) = match targets {
        Ok(t) => t,
        Err(e) => return Ok(failed(e)),
    };
    let opts = Options {
        allow_writes: *allow_writes,
        allow: allow.clone(),
        ..Options::default()
    };
    let summary = if source == "probe" {
        let parsed = std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|t| rehost_compat::probe::parse(&t));
        match parsed {
            Ok(p) => rehost_compat::probe::probe(&p, &old_t, &new_t, &opts, ctx.cancel),
            Err(e) => return Ok(failed(format!("probe file {file}: {e}"))),
        }
    } else {
        let replayed = std::fs::File::open(file)
            .map_err(|e| e.to_string())
            .and_then(|f| {
                rehost_compat::replay::replay(
                    std::io::BufReader::new(f),
                    &old_t,
                    &new_t,
                    &opts,
                    ctx.cancel,
                )
            });
        match replayed {
            Ok(s) => s,
            Err(e) => return Ok(failed(format!("traffic file {file}: {e}"))),
        }
    };
    if summary.interrupted {
        return Ok(Outcome::Cancelled);
    }
    let _ = ctx.output.write_all(output(&summary).as_bytes());
    let code = if summary.trouble() {
        2
    } else if summary.differs() {
        1
    } else {
        0
    };
    let data = Some(StepData::Compat(Box::new(data(
        &summary, source, file, code,
    ))));
    let unsent = if summary.refused_writes + summary.truncated > 0 {
        format!(
            "; not compared: {} refused writes, {} truncated exchanges",
            summary.refused_writes, summary.truncated
        )
    } else {
        String::new()
    };
    let noise: usize = summary.endpoints.iter().map(|e| e.noise.len()).sum();
    if code == 0 {
        return Ok(Outcome::Done {
            detail: Some(format!(
                "{} of {} requests answered the same by {} and {} ({} only in allowed fields; {noise} noise fields in which the old service differs from itself not compared){unsent}",
                summary.same + summary.allowed,
                summary.compared,
                esc(old),
                esc(new),
                summary.allowed,
            )),
            exit_code: Some(0),
            confirmed_by: None,
            data,
        });
    }
    let fields: Vec<String> = summary
        .endpoints
        .iter()
        .flat_map(|e| {
            e.differences
                .iter()
                .filter(|f| !f.allowed)
                .map(move |f| format!("{} {}", esc(&e.endpoint), esc(&f.field)))
        })
        .take(5)
        .collect();
    let detail = if code == 2 {
        format!(
            "{} requests could not be replayed and {} lines not read (the step's output names them); {} of {} compared requests differ",
            summary.failed, summary.bad, summary.differing, summary.compared
        )
    } else {
        format!(
            "{} of {} requests answered differently by {} and {}: {}{}; the step's output has examples. Fix the new service or declare the field in `allow`",
            summary.differing,
            summary.compared,
            esc(old),
            esc(new),
            fields.join(", "),
            unsent
        )
    };
    Ok(Outcome::Failed {
        detail,
        exit_code: Some(code),
        data,
    })
}

/// The step's output: every endpoint, its fields with examples, the noise; escaped.
fn output(s: &Summary) -> String {
    let mut o = String::new();
    for l in &s.refused {
        o.push_str(&format!(
            "refused (a write; allow_writes sends it): line {}: {} {}\n",
            l.line,
            esc(&l.method),
            esc(&l.target)
        ));
    }
    for l in s.failures.iter().chain(&s.bad_lines) {
        o.push_str(&format!(
            "not replayed: line {}: {} {}: {}\n",
            l.line,
            esc(&l.method),
            esc(&l.target),
            esc(&l.why)
        ));
    }
    for e in &s.endpoints {
        o.push_str(&format!(
            "{}: {} requests, {} differ\n",
            esc(&e.endpoint),
            e.requests,
            e.differing
        ));
        for f in &e.differences {
            o.push_str(&format!(
                "  {}: differs in {}{}\n",
                esc(&f.field),
                f.count,
                if f.allowed { " (allowed)" } else { "" }
            ));
            for x in &f.examples {
                o.push_str(&format!(
                    "    line {} {}: old {} | new {}\n",
                    x.line,
                    esc(&x.target),
                    esc(&x.old),
                    esc(&x.new)
                ));
            }
        }
        for f in &e.noise {
            o.push_str(&format!("  noise: {} ({})\n", esc(&f.field), f.count));
        }
    }
    o.push_str(&format!("not compared: {}\n", s.not_compared));
    o
}

fn data(s: &Summary, source: &str, file: &str, code: i32) -> CompatData {
    let listed = |l: &rehost_compat::replay::Listed| CompatListedData {
        line: l.line as u64,
        method: l.method.clone(),
        target: l.target.clone(),
        why: l.why.clone(),
    };
    let field = |f: &rehost_compat::replay::FieldCount| CompatFieldData {
        field: f.field.clone(),
        count: f.count,
        allowed: f.allowed,
        examples: f
            .examples
            .iter()
            .map(|x| CompatExampleData {
                line: x.line as u64,
                target: x.target.clone(),
                old: x.old.clone(),
                new: x.new.clone(),
            })
            .collect(),
    };
    CompatData {
        v: STEP_DATA_VERSION,
        source: source.into(),
        file: file.into(),
        old: s.old.clone(),
        new: s.new.clone(),
        exit_code: code,
        exchanges: s.exchanges,
        compared: s.compared,
        same: s.same,
        differing: s.differing,
        allowed: s.allowed,
        refused_writes: s.refused_writes,
        truncated: s.truncated,
        failed: s.failed,
        bad: s.bad,
        noise_measured: s.noise_measured,
        endpoints: s
            .endpoints
            .iter()
            .map(|e| CompatEndpointData {
                endpoint: e.endpoint.clone(),
                requests: e.requests,
                differing: e.differing,
                differences: e.differences.iter().map(field).collect(),
                noise: e.noise.iter().map(field).collect(),
            })
            .collect(),
        refused: s.refused.iter().map(listed).collect(),
        failures: s.failures.iter().chain(&s.bad_lines).map(listed).collect(),
        not_compared: s.not_compared.clone(),
    }
}
