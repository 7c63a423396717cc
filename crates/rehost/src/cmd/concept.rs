//! `rehost concept PLAN`: render the migration concept for sign-off.

use crate::cli::{ConceptArgs, ConceptFormat};
use crate::exit;
use crate::plan_file::PlanFile;
use rehost_evidence::concept::Sources;
use rehost_evidence::survey_map::DependencyMap;
use std::path::Path;

pub fn run(args: &ConceptArgs) -> i32 {
    let pf = match PlanFile::load_valid(&args.plan, "render the concept of") {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (plan, c) = (pf.plan(), &pf.checked);
    // The expected timeline, from the latest rehearsal in the default state directory.
    let runs = crate::cmd::report::other_runs(&pf.path, plan, None, "production");
    let rehearsed = rehost_evidence::rehearsed::latest(plan, &runs);
    // The survey's dependency map, where `[survey] inventory` names the inventory: read
    // bounded and checked as one an agent sent (it came from the old server), refused whole
    // otherwise.
    let map = match plan.survey.as_ref().and_then(|s| s.inventory.as_ref()) {
        None => None,
        Some(name) => {
            let at = pf.path.parent().unwrap_or(Path::new(".")).join(&name.value);
            match super::survey_compare::read_inventory_digest(&at) {
                Ok((inv, digest)) => Some(DependencyMap::of(&inv, &name.value, &digest)),
                Err(e) => {
                    let line = rehost_plan::SourceMap::new(&pf.text)
                        .line_col(name.span.start)
                        .0;
                    crate::term::error(&format!(
                        "{e} ({}:{line}: [survey] inventory); survey the host again with `rehost survey HOST --json > FILE`, or remove the key",
                        crate::term::escape(&pf.path.display().to_string())
                    ));
                    return exit::TROUBLE;
                }
            }
        }
    };
    let from = Sources {
        rehearsed: rehearsed.as_ref(),
        map: map.as_ref(),
    };
    let text = match args.format {
        ConceptFormat::Md => {
            rehost_evidence::concept::render_markdown(plan, &pf.text, &c.findings, from)
        }
        ConceptFormat::Html => {
            rehost_evidence::concept::render_html(plan, &pf.text, &c.findings, from)
        }
    };
    match &args.output {
        // Not through a symlink, not where another user could replace it, 0600 unless
        // `--mode` (crate::output).
        Some(path) => {
            if let Err(e) = crate::output::write_file(path, text.as_bytes(), args.mode) {
                crate::term::error(&e);
                return exit::TROUBLE;
            }
        }
        None => print!("{text}"),
    }
    exit::OK
}
