//! `rehost concept PLAN`: render the migration concept for sign-off.

use crate::cli::{ConceptArgs, ConceptFormat};
use crate::exit;
use crate::plan_file::PlanFile;
use rehost_evidence::concept::Sources;

pub fn run(args: &ConceptArgs) -> i32 {
    let pf = match PlanFile::load_valid(&args.plan, "render the concept of") {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (plan, c) = (pf.plan(), &pf.checked);
    // The expected timeline, from the latest rehearsal in the default state directory.
    let runs = crate::cmd::report::other_runs(&pf.path, plan, None, "production");
    let rehearsed = rehost_evidence::rehearsed::latest(plan, &runs);
    let map = match super::survey_compare::plan_map(&pf) {
        Ok(m) => m,
        Err(e) => {
            crate::term::error(&format!(
                "{e}; survey the host again with `rehost survey HOST --json > FILE`, or remove the key"
            ));
            return exit::TROUBLE;
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
