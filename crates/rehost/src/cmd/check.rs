//! `rehost check PLAN`: validate the plan and lint it against M 2.319.

use crate::cli::CheckArgs;
use crate::exit;
use crate::plan_file::PlanFile;
use rehost_plan::RULES;
use serde_json::json;

pub fn run(args: &CheckArgs) -> i32 {
    let mut pf = match PlanFile::load(&args.plan) {
        Ok(p) => p,
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    json!({ "plan": args.plan, "ok": false, "trouble": e })
                );
            } else {
                crate::term::error(&e);
            }
            return exit::TROUBLE;
        }
    };
    rehearsals_by_identity(&mut pf);
    let c = &pf.checked;
    let map = pf.source_map();
    let mut code = if !c.errors.is_empty() || c.plan.is_none() {
        exit::TROUBLE
    } else if !c.findings.is_empty() {
        exit::FINDINGS
    } else {
        exit::OK
    };
    let preflight = match (&c.plan, args.hosts) {
        (Some(plan), true) => Some(hosts(plan, &pf.text, args)),
        _ => None,
    };
    let not_ready = preflight
        .as_ref()
        .is_some_and(|p| p.as_ref().map_or(true, |p| !p.problems.is_empty()));
    if not_ready {
        code = exit::TROUBLE;
    }
    if args.json {
        let diag = |d: &rehost_plan::Diagnostic| {
            let (line, column) = d.span.as_ref().map(|s| map.line_col(s.start)).unzip();
            let rule = RULES.iter().find(|r| r.id == d.code);
            json!({
                "code": d.code,
                "message": d.message,
                "line": line,
                "column": column,
                "help": d.help,
                "clause": rule.map(|r| r.clause),
            })
        };
        let out = json!({
            "plan": pf.display,
            "ok": code == exit::OK,
            "valid": c.errors.is_empty(),
            "steps": c.plan.as_ref().map(|p| p.steps.len()),
            "errors": c.errors.iter().map(diag).collect::<Vec<_>>(),
            "findings": c.findings.iter().map(diag).collect::<Vec<_>>(),
            "preflight": preflight.as_ref().map(|p| match p {
                Ok(p) => json!(p),
                Err(e) => json!({ "trouble": e }),
            }),
        });
        println!("{}", serde_json::to_string_pretty(&out).expect("json"));
        return code;
    }
    for d in c.errors.iter().chain(&c.findings) {
        print!("{}", map.render(&pf.display, d));
        if let Some(rule) = RULES.iter().find(|r| r.id == d.code) {
            println!("  M 2.319: \"{}\"", rule.clause);
        }
        println!();
    }
    if let Some(Ok(p)) = &preflight {
        for w in &p.deferred {
            println!("note: {}", crate::term::escape(w));
        }
        for w in &p.warnings {
            println!("warning: {}", crate::term::escape(w));
        }
    }
    match &preflight {
        Some(Err(e)) => eprintln!("rehost: {}", crate::term::escape(e)),
        Some(Ok(p)) if p.problems.is_empty() => println!(
            "pre-flight: {} host(s) reachable, their paths and space, the programs the steps run (the first of each command), their systemd units, health names and databases checked ({})",
            p.hosts.len(),
            crate::term::escape(&p.hosts.join(", "))
        ),
        Some(Ok(p)) => {
            for line in &p.problems {
                println!("pre-flight: {}", crate::term::escape(line));
            }
        }
        None => {}
    }
    if not_ready {
        println!(
            "{}: the hosts are not ready; fix the problems above",
            pf.display
        );
        return code;
    }
    let steps = c.plan.as_ref().map_or(0, |p| p.steps.len());
    match code {
        exit::OK => println!(
            "{}: plan is valid, {steps} steps, no M 2.319 findings",
            pf.display
        ),
        exit::FINDINGS => println!(
            "{}: plan is valid, {steps} steps, {} M 2.319 finding(s)",
            pf.display,
            c.findings.len()
        ),
        _ => println!(
            "{}: {} error(s); fix them and check again",
            pf.display,
            c.errors.len()
        ),
    }
    code
}

/// The pre-flight of `rehost run` over every step, against the hosts of `--env`.
fn hosts(
    plan: &rehost_plan::Plan,
    text: &str,
    args: &CheckArgs,
) -> Result<rehost_engine::preflight::Preflight, String> {
    let targets = plan.hosts_for(args.env.as_deref()).ok_or_else(|| {
        format!(
            "the plan has no environment `{}`; declare it or choose another with --env",
            args.env.as_deref().unwrap_or_default()
        )
    })?;
    let mut hosts = rehost_engine::Hosts::new(targets, args.ssh_config.as_deref());
    crate::signals::install();
    Ok(rehost_engine::preflight::preflight(
        plan,
        args.env.as_deref(),
        text,
        &plan.steps,
        &mut hosts,
        &crate::signals::CANCEL,
    ))
}

/// Adds an error for each rehearsal host that resolves to a production host (`ssh -G`, the
/// addresses, known_hosts keys, canonical local roots): the plan's spelling is not the test.
/// Needs IO, so it is here rather than in the plan crate's validation.
fn rehearsals_by_identity(pf: &mut PlanFile) {
    let Some(plan) = pf.checked.plan.as_ref() else {
        return;
    };
    // A host still to be decided (`"TODO: …"`) is no host to resolve: its placeholder is the
    // error, and identity is checked once it is written.
    if pf.checked.errors.iter().any(|d| d.code == "todo") {
        return;
    }
    let mut found = Vec::new();
    for env in &plan.environments {
        for m in rehost_engine::isolation::meetings(plan, &env.name, None) {
            if let Some((db, prod_db)) = &m.database {
                let span = env
                    .databases
                    .iter()
                    .find(|o| &o.id == db)
                    .map(|o| o.span.clone())
                    .or_else(|| {
                        env.hosts
                            .iter()
                            .find(|h| h.name == m.env_host)
                            .map(|h| h.span.clone())
                    });
                found.push(
                    rehost_plan::Diagnostic::error(
                        "rehearsal-touches-production",
                        span,
                        format!(
                            "environment `{}` reaches production's database: `{db}` from host `{}` is `{prod_db}` from production host `{}`: {}",
                            env.name, m.env_host, m.prod_host, m.why
                        ),
                    )
                    .with_help(format!(
                        "give the rehearsal its own database server: [environments.{}.databases.{db}] with its own port or socket (for SQLite, a file under the rehearsal host's root)",
                        env.name
                    )),
                );
                continue;
            }
            let span = env
                .hosts
                .iter()
                .find(|h| h.name == m.env_host)
                .map(|h| h.span.clone());
            let already = pf
                .checked
                .errors
                .iter()
                .any(|d| d.code == "rehearsal-touches-production" && d.span == span);
            if !already {
                found.push(
                    rehost_plan::Diagnostic::error(
                        "rehearsal-touches-production",
                        span,
                        format!(
                            "environment `{}` maps host `{}` to production host `{}`: {}",
                            env.name, m.env_host, m.prod_host, m.why
                        ),
                    )
                    .with_help(
                        "a rehearsal must never touch production: give the test environment its own hosts",
                    ),
                );
            }
        }
    }
    pf.checked.errors.extend(found);
}
