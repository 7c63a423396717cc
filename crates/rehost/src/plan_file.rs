//! Reading a plan file from disk: the one place the binary turns a path into a checked plan.

use rehost_plan::{Checked, Diagnostic, HostTarget, Plan, SourceMap};
use std::path::{Path, PathBuf};

pub struct PlanFile {
    pub path: PathBuf,
    pub display: String,
    pub text: String,
    pub checked: Checked,
}

impl PlanFile {
    /// Reads and checks a plan. Relative `root`s of local hosts are taken relative to the
    /// plan's directory, so a plan and its demo hosts can move together.
    pub fn load(path: &Path) -> Result<PlanFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("failed to read plan {}: {e}", path.display()))?;
        let mut checked = rehost_plan::check(&text);
        if let Some(plan) = checked.plan.as_mut() {
            let base = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            absolutize_roots(plan, base);
        }
        Ok(PlanFile {
            path: path.to_owned(),
            display: path.display().to_string(),
            text,
            checked,
        })
    }

    pub fn render(&self, d: &Diagnostic) -> String {
        SourceMap::new(&self.text).render(&self.display, d)
    }

    pub fn line_col(&self, d: &Diagnostic) -> Option<(usize, usize)> {
        d.span
            .as_ref()
            .map(|s| SourceMap::new(&self.text).line_col(s.start))
    }
}

fn absolutize_roots(plan: &mut Plan, base: &Path) {
    let base = std::path::absolute(base).unwrap_or_else(|_| base.to_owned());
    let fix = |t: &mut HostTarget| {
        if let HostTarget::Local { root: Some(r) } = t
            && Path::new(r.as_str()).is_relative()
        {
            *r = base.join(&*r).to_string_lossy().into_owned();
        }
    };
    for h in &mut plan.hosts {
        fix(&mut h.target);
    }
    for e in &mut plan.environments {
        for h in &mut e.hosts {
            fix(&mut h.target);
        }
    }
}
