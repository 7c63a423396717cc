//! Reading a plan file from disk: the one place the binary turns a path into a checked plan.

use rehost_plan::{Checked, HostTarget, Plan, SourceMap};
use std::path::{Path, PathBuf};

pub struct PlanFile {
    pub path: PathBuf,
    pub display: String,
    pub text: String,
    pub checked: Checked,
}

impl PlanFile {
    /// Reads and checks a plan. Relative `root`s of local hosts, and a `compat` step's
    /// relative `probe` or `traffic` file, are taken relative to the plan's directory, so a
    /// plan and its files can move together.
    pub fn load(path: &Path) -> Result<PlanFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("failed to read plan {}: {e}", path.display()))?;
        Ok(PlanFile::from_text(path, path.display().to_string(), text))
    }

    /// A plan from its text (a snapshot in the state directory), as if read from `path`.
    pub fn from_text(path: &Path, display: String, text: String) -> PlanFile {
        let mut checked = rehost_plan::check(&text);
        if let Some(plan) = checked.plan.as_mut() {
            let base = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            absolutize_roots(plan, base);
        }
        PlanFile {
            path: path.to_owned(),
            display,
            text,
            checked,
        }
    }

    /// Loads a plan that must be free of errors to `action` it: prints what is wrong on
    /// stderr and returns the exit code otherwise.
    pub fn load_valid(path: &Path, action: &str) -> Result<PlanFile, i32> {
        let pf = PlanFile::load(path).map_err(|e| {
            crate::term::error(&e);
            crate::exit::TROUBLE
        })?;
        pf.valid(action)
    }

    /// This plan if it is free of errors; otherwise prints what is wrong on stderr and returns
    /// the exit code.
    pub fn valid(self, action: &str) -> Result<PlanFile, i32> {
        let pf = self;
        if pf.checked.plan.is_none() || !pf.checked.errors.is_empty() {
            let map = pf.source_map();
            for d in &pf.checked.errors {
                eprint!("{}", map.render(&pf.display, d));
            }
            crate::term::error(&format!(
                "failed to {action} {}: the plan has {} error(s); `rehost check {0}` shows them",
                pf.display,
                pf.checked.errors.len()
            ));
            return Err(crate::exit::TROUBLE);
        }
        Ok(pf)
    }

    /// The checked plan; only after `load_valid`.
    pub fn plan(&self) -> &Plan {
        self.checked.plan.as_ref().expect("loaded with load_valid")
    }

    /// Line and column lookups for this plan. Build it once and use it for every diagnostic:
    /// building it reads the whole text, so one per diagnostic made `check` quadratic.
    pub fn source_map(&self) -> SourceMap<'_> {
        SourceMap::new(&self.text)
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
    // A `compat` step's probe or traffic file and a `compat-sql` step's log, like the roots:
    // relative to the plan.
    for step in &mut plan.steps {
        let files = match &mut step.kind {
            rehost_plan::StepKind::Compat { probe, traffic, .. } => {
                [probe.as_mut(), traffic.as_mut()]
            }
            rehost_plan::StepKind::CompatSql { log, .. } => [Some(log), None],
            _ => [None, None],
        };
        for f in files.into_iter().flatten() {
            if Path::new(f.as_str()).is_relative() {
                *f = base.join(&*f).to_string_lossy().into_owned();
            }
        }
    }
}
