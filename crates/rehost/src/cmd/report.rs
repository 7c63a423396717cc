//! `rehost report PLAN [--env NAME] [-o DIR [--mode MODE]] [--format html,json,md,oscal]`: the
//! evidence of a run, read from its state directory (which it does not change) and written as
//! `report.html`, `report.json`, `report.md` and, asked for, `report.oscal.json`.
//!
//! Exit codes: 0 the report is written and its verdict is clean; 1 it is written and the
//! verdict is not clean (something failed, was not verified or finished, exceeded the budget,
//! or was decided by flag: the report says what); 2 trouble (no plan, no run, unwritable).

use crate::cli::{ReportArgs, ReportFormat};
use crate::exit;
use crate::plan_file::PlanFile;
use crate::term::escape;
use rehost_evidence::Level;
use rehost_evidence::report::{self, Input};
use std::path::{Path, PathBuf};

pub fn run(args: &ReportArgs) -> i32 {
    let env = args.state.env.as_deref();
    let state = args.state.state.as_deref();
    // The plan file, or the plan as run when the file is gone (a report years later).
    let pf = if args.plan.exists() {
        PlanFile::load_valid(&args.plan, "report on")
    } else {
        from_snapshot(&args.plan, env, state)
    };
    let pf = match pf {
        Ok(pf) => pf,
        Err(code) => return code,
    };
    if args.sign.sign_key.is_some() || args.sign.hmac_key.is_some() {
        // The head is signed before the report is built, so the report names the signature.
        let dir = rehost_engine::state_dir(&pf.path, state, env);
        let signed = crate::sign::keys(&args.sign, &dir).and_then(|keys| {
            let verify = |head: &str| crate::sign::verify_command(&args.plan, env, state, head);
            crate::sign::finish(&dir, env.unwrap_or("production"), &keys, &verify, false)
        });
        if let Err(e) = signed {
            crate::term::error(&e);
            return exit::TROUBLE;
        }
    }
    write(
        &pf,
        env,
        state,
        args.output.as_deref().map(|o| (o, args.mode)),
        &args.format,
    )
}

/// The plan from the snapshot the run's journal names last.
fn from_snapshot(plan: &Path, env: Option<&str>, state: Option<&Path>) -> Result<PlanFile, i32> {
    let dir = rehost_engine::state_dir(plan, state, env);
    let trouble = |m: String| {
        crate::term::error(&m);
        exit::TROUBLE
    };
    let sdir = rehost_engine::open_state_dir(&dir, false)
        .map_err(|e| trouble(e.to_string()))?
        .ok_or_else(|| {
            trouble(format!(
                "failed to read plan {}: it is gone, and there is no state directory {} to take its snapshot from",
                plan.display(),
                dir.display()
            ))
        })?;
    let loaded = rehost_journal::Journal::read(&sdir).map_err(|e| trouble(e.to_string()))?;
    match rehost_journal::archive::plan_snapshot(&sdir, &loaded.records) {
        Ok(Some(snap)) => PlanFile::from_text(
            plan,
            format!(
                "{} (gone; its snapshot {})",
                plan.display(),
                dir.join(&snap.file).display()
            ),
            snap.text,
        )
        .valid("report on"),
        Ok(None) => Err(trouble(format!(
            "failed to read plan {}: it is gone and the journal in {} names no snapshot of it; give the plan file",
            plan.display(),
            dir.display()
        ))),
        Err(e) => Err(trouble(e.to_string())),
    }
}

/// Writes the report of `env`'s run of the plan; also the end of `rehost demo`.
pub fn write(
    pf: &PlanFile,
    env: Option<&str>,
    state: Option<&Path>,
    output: Option<(&Path, u32)>,
    formats: &[ReportFormat],
) -> i32 {
    let plan = pf.plan();
    let env_name = env.unwrap_or("production");
    if let Some(e) = env
        && plan.environment(e).is_none()
    {
        crate::term::error(&format!(
            "the plan {} has no environment `{e}` to report on",
            pf.display
        ));
        return exit::TROUBLE;
    }
    let dir = rehost_engine::state_dir(&pf.path, state, env);
    let state_dir = match rehost_engine::open_state_dir(&dir, false) {
        Ok(Some(d)) => d,
        Ok(None) => {
            crate::term::error(&format!(
                "no run of {} in {env_name} to report on: there is no state directory {}",
                pf.display,
                dir.display()
            ));
            return exit::TROUBLE;
        }
        Err(e) => {
            crate::term::error(&e.to_string());
            return exit::TROUBLE;
        }
    };
    let run = match report::load_run(&state_dir, env_name, plan) {
        Ok(Some(r)) => r,
        Ok(None) => {
            crate::term::error(&format!(
                "no run of {} in {env_name} to report on: {} holds no journal",
                pf.display,
                dir.display()
            ));
            return exit::TROUBLE;
        }
        Err(e) => {
            crate::term::error(&e.to_string());
            return exit::TROUBLE;
        }
    };
    // The other runs of the same plan, for the side-by-side comparison.
    let others = other_runs(&pf.path, plan, state, env_name);
    let plan_file = pf
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plan.toml".into());
    let plan_text = report::plan_text_for(&state_dir, &run.records, Some(&pf.text));
    let built = report::build(Input {
        plan,
        plan_file,
        plan_text,
        run,
        others,
    });
    let mut doc = report::document(&built, plan);
    // The survey's dependency map, where the plan names its inventory: read now from beside
    // the plan (the state directory does not keep it), named by its digest; a report is still
    // written when it cannot be read, saying so.
    if plan.survey.as_ref().is_some_and(|s| s.inventory.is_some()) {
        use rehost_evidence::Block;
        doc.blocks.push(Block::Heading {
            level: 2,
            text: "What the old server ran, as surveyed".into(),
        });
        match super::survey_compare::plan_map(pf) {
            Ok(Some(m)) => {
                doc.blocks.push(Block::Paragraph {
                    text: "Read when this report was written, from beside the plan: the run's state directory does not keep the inventory; its digest says which one it is.".into(),
                });
                doc.blocks.push(Block::Map(m));
            }
            Ok(None) => {}
            Err(e) => doc.blocks.push(Block::Paragraph {
                text: format!(
                    "The dependency map is not shown: {}.",
                    rehost_plan::escape_control(&e)
                ),
            }),
        }
    }
    let mut files: Vec<(&str, String)> = Vec::new();
    for f in formats {
        let entry = match f {
            ReportFormat::Html => ("report.html", rehost_evidence::doc::render_html(&doc)),
            ReportFormat::Json => ("report.json", report::render_json(&built)),
            ReportFormat::Md => ("report.md", rehost_evidence::doc::render_markdown(&doc)),
            ReportFormat::Oscal => (
                "report.oscal.json",
                rehost_evidence::oscal::render(
                    &format!("rehost report: {}", built.migration.title),
                    &[(built.migration.title.as_str(), &built)],
                ),
            ),
        };
        if !files.iter().any(|(n, _)| *n == entry.0) {
            files.push(entry);
        }
    }
    let (written_in, result): (PathBuf, Result<(), String>) = match output {
        // Where the operator says: not through a symlink, not where another user could
        // replace the evidence, 0600 unless `--mode` (crate::output).
        Some((out, mode)) => {
            let named: Vec<(&std::ffi::OsStr, &[u8])> = files
                .iter()
                .map(|(n, t)| (std::ffi::OsStr::new(*n), t.as_bytes()))
                .collect();
            (
                out.to_owned(),
                crate::output::write_files(out, true, &named, mode),
            )
        }
        // In the private state directory: 0600, atomically, never through a symlink.
        None => (
            dir.clone(),
            files.iter().try_for_each(|(name, text)| {
                state_dir
                    .write_atomic(name, true, &mut |w| w.write_all(text.as_bytes()))
                    .map_err(|e| format!("failed to write {}: {e}", dir.join(name).display()))
            }),
        ),
    };
    if let Err(e) = result {
        crate::term::error(&e);
        return exit::TROUBLE;
    }
    let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
    println!(
        "Report written to {}: {}",
        escape(&written_in.display().to_string()),
        names.join(", ")
    );
    println!(
        "Verdict: {} — {}",
        built.verdict.level.label(),
        escape(&built.verdict.headline)
    );
    if built.verdict.level == Level::Clean {
        exit::OK
    } else {
        exit::FINDINGS
    }
}

/// The runs of `plan`'s environments (and production) other than `except` that have a
/// journal; one that cannot be read is left out with a warning.
pub(crate) fn other_runs(
    path: &Path,
    plan: &rehost_plan::Plan,
    state: Option<&Path>,
    except: &str,
) -> Vec<report::Run> {
    let mut others = Vec::new();
    let envs = std::iter::once(None).chain(plan.environments.iter().map(|e| Some(e.name.as_str())));
    for other in envs {
        if other.unwrap_or("production") == except {
            continue;
        }
        let odir = rehost_engine::state_dir(path, state, other);
        let loaded = rehost_engine::open_state_dir(&odir, false)
            .map_err(|e| e.to_string())
            .and_then(|d| match d {
                Some(d) => report::load_run(&d, other.unwrap_or("production"), plan)
                    .map_err(|e| e.to_string()),
                None => Ok(None),
            });
        match loaded {
            Ok(Some(r)) => others.push(r),
            Ok(None) => {}
            Err(e) => eprintln!(
                "rehost: warning: the run in {} is left out: {}",
                escape(other.unwrap_or("production")),
                escape(&e)
            ),
        }
    }
    others
}
