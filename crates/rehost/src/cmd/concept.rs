//! `rehost concept PLAN`: render the migration concept for sign-off.

use crate::cli::{ConceptArgs, ConceptFormat};
use crate::exit;
use crate::plan_file::PlanFile;

pub fn run(args: &ConceptArgs) -> i32 {
    let pf = match PlanFile::load(&args.plan) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rehost: {e}");
            return exit::TROUBLE;
        }
    };
    let c = &pf.checked;
    let (Some(plan), true) = (&c.plan, c.errors.is_empty()) else {
        for d in &c.errors {
            eprint!("{}", pf.render(d));
        }
        eprintln!(
            "rehost: failed to render the concept: the plan has errors; `rehost check {}` shows them",
            pf.display
        );
        return exit::TROUBLE;
    };
    let text = match args.format {
        ConceptFormat::Markdown => rehost_plan::render_markdown(plan, &pf.text, &c.findings),
        ConceptFormat::Html => rehost_plan::render_html(plan, &pf.text, &c.findings),
    };
    match &args.output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("rehost: failed to write {}: {e}", path.display());
                return exit::TROUBLE;
            }
        }
        None => print!("{text}"),
    }
    exit::OK
}
