//! Reading the fleet's state directories: which directories are state directories, and each
//! group of runs of one plan read into the report's model by the single-server report's own
//! reader ([`load_run`], [`build`](crate::report::build)).
//!
//! State directories may come from compromised hosts. Nothing read from one names what is read
//! next: the directories are the operator's arguments and their entries, found without
//! following a symlink; the journal is refused above [`MAX_JOURNAL_BYTES`] before it is read
//! and refused if it is a symlink; every file the journal names is read by rehost-journal's
//! archive through the state directory's descriptor (`read_kept`: no `..`, no symlink).

use crate::report::{self, Input, Report, Run, load_run, plan_text_for};
use rehost_journal::journal::{JOURNAL, Record};
use rehost_plan::Plan;
use rehost_tree::private::PrivateDir;
use std::path::{Path, PathBuf};

/// The largest journal read (64 MiB: a run of thousands of steps takes a few MiB).
pub const MAX_JOURNAL_BYTES: u64 = 64 << 20;

/// The largest file of a state directory read: the integrity check reads each kept file whole
/// to hash it, and a copied state directory is not trusted to be small.
pub const MAX_KEPT_BYTES: u64 = 1 << 30;

/// How deep below an argument state directories are looked for (`fleet/web01/.rehost/plan/
/// production` is four levels below `fleet`).
const MAX_DEPTH: usize = 4;

/// The state directories an argument names: itself when it holds a journal, else every
/// directory below it (at most four levels, symlinks not followed) that holds one, in
/// name order. An argument that is neither is one entry still, so it is reported as unreadable.
pub fn state_dirs(arg: &Path) -> Vec<PathBuf> {
    if holds_journal(arg) {
        return vec![arg.to_owned()];
    }
    let mut found = Vec::new();
    walk(arg, 0, &mut found);
    if found.is_empty() {
        found.push(arg.to_owned());
    }
    found
}

fn holds_journal(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir.join(JOURNAL)).is_ok()
}

fn walk(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    if depth >= MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut subdirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        // `file_type` does not follow a symlink: a planted link leads nowhere.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    subdirs.sort();
    for d in subdirs {
        if holds_journal(&d) {
            found.push(d);
        } else {
            walk(&d, depth + 1, found);
        }
    }
}

/// A state directory opened and its journal's records read: the first pass, which tells
/// which runs belong together.
pub struct Opened {
    pub dir: PathBuf,
    pub state: PrivateDir,
    pub records: Vec<Record>,
    /// The environment the run records (`run_started`), `production` when none did.
    pub env: String,
}

/// Opens a state directory and reads its journal, bounded. The error says what is wrong in
/// words for the fleet page.
pub fn open(dir: &Path) -> Result<Opened, String> {
    let journal = dir.join(JOURNAL);
    let meta = std::fs::symlink_metadata(&journal)
        .map_err(|e| format!("no journal: {}", io_reason(&e)))?;
    if meta.file_type().is_symlink() {
        return Err("its journal is a symbolic link: refused, nothing is read through one".into());
    }
    if !meta.is_file() {
        return Err("its journal is not a regular file".into());
    }
    if meta.len() > MAX_JOURNAL_BYTES {
        return Err(format!(
            "its journal is {} bytes, more than the {MAX_JOURNAL_BYTES} read: refused",
            meta.len()
        ));
    }
    if let Some((file, len)) = oversized(dir, 0) {
        return Err(format!(
            "`{}` is {len} bytes, more than the {MAX_KEPT_BYTES} read of a kept file: refused",
            file.strip_prefix(dir).unwrap_or(&file).display()
        ));
    }
    let state = match PrivateDir::open(dir, false) {
        Ok(Some(s)) => s,
        Ok(None) => return Err("it does not exist".into()),
        Err(e) => {
            return Err(format!(
                "it could not be opened: {}",
                strip(&e.to_string(), dir)
            ));
        }
    };
    let loaded = rehost_journal::Journal::read(&state).map_err(|e| {
        let e = strip(&e.to_string(), dir);
        // What the run's message goes on to say (start afresh) is not for a report.
        let e = e
            .split("; that is not a torn write")
            .next()
            .unwrap_or_default();
        format!("its journal could not be read: {e}")
    })?;
    if loaded.records.is_empty() {
        return Err("its journal holds no record".into());
    }
    let env = loaded
        .records
        .iter()
        .find_map(|r| match r {
            Record::RunStarted { env, .. } => Some(env.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "production".into());
    Ok(Opened {
        dir: dir.to_owned(),
        state,
        records: loaded.records,
        env,
    })
}

/// The first file below `dir` (the state directory's own layout: `evidence/`, `output/`,
/// `plans/`) larger than [`MAX_KEPT_BYTES`]; symlinks are not followed.
fn oversized(dir: &Path, depth: usize) -> Option<(PathBuf, u64)> {
    if depth > 2 {
        return None;
    }
    for e in std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok()) {
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            if let Some(found) = oversized(&e.path(), depth + 1) {
                return Some(found);
            }
        } else if t.is_file()
            && let Ok(m) = e.metadata()
            && m.len() > MAX_KEPT_BYTES
        {
            return Some((e.path(), m.len()));
        }
    }
    None
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "there is none".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// A message without the state directory's own path (the page names the directory once).
fn strip(msg: &str, dir: &Path) -> String {
    msg.replace(&format!("{}/", dir.display()), "")
        .replace(&dir.display().to_string(), "the state directory")
}

/// Which runs are one server's: `rehost` keeps a plan's runs side by side, one directory per
/// environment named after it (`.rehost/plan/production`, `.rehost/plan/test`). A directory
/// named after the environment its journal records is grouped with its siblings; any other
/// (a copy named after its host) stands alone.
pub fn group_key(o: &Opened) -> PathBuf {
    match (o.dir.file_name(), o.dir.parent()) {
        (Some(name), Some(parent)) if name.to_str() == Some(o.env.as_str()) => parent.to_owned(),
        _ => o.dir.clone(),
    }
}

/// One server's report, built as `rehost report` builds it, from the plan as run.
pub struct Built {
    pub dir: PathBuf,
    pub plan: Plan,
    pub report: Report,
    /// Runs of the group that could not be read beside it, each with why.
    pub left_out: Vec<(PathBuf, String)>,
}

/// Builds the report of a group of runs of one plan: production's run if there is one, else
/// the first; the others are the comparison, as `rehost report` finds them beside it.
pub fn build_group(mut runs: Vec<Opened>) -> Result<Built, (PathBuf, String)> {
    let main = runs.iter().position(|o| o.env == "production").unwrap_or(0);
    let main = runs.remove(main);
    let dir = main.dir.clone();
    let fail = |why: String| (dir.clone(), why);
    let snap = rehost_journal::archive::plan_snapshot(&main.state, &main.records)
        .map_err(|e| {
            fail(format!(
                "the plan it ran could not be read: {}",
                strip(&e.to_string(), &dir)
            ))
        })?
        .ok_or_else(|| fail("its journal names no snapshot of the plan it ran".into()))?;
    let checked = rehost_plan::check(&snap.text);
    let plan = match checked.plan {
        Some(p) if checked.errors.is_empty() => p,
        _ => {
            return Err(fail(format!(
                "the plan it ran (`{}`) has {} error(s)",
                snap.file,
                checked.errors.len()
            )));
        }
    };
    if main.env != "production" && plan.environment(&main.env).is_none() {
        return Err(fail(format!(
            "its journal names the environment `{}`, which the plan it ran does not define",
            main.env
        )));
    }
    let run = load_run(&main.state, &main.env, &plan)
        .map_err(|e| {
            fail(format!(
                "its journal could not be read: {}",
                strip(&e.to_string(), &dir)
            ))
        })?
        .ok_or_else(|| fail("it holds no journal".into()))?;
    let mut others: Vec<Run> = Vec::new();
    let mut left_out = Vec::new();
    for o in runs {
        match load_run(&o.state, &o.env, &plan) {
            Ok(Some(r)) if o.env != main.env => others.push(r),
            Ok(_) => left_out.push((
                o.dir.clone(),
                format!("a second run in `{}` beside the one shown", o.env),
            )),
            Err(e) => left_out.push((o.dir.clone(), strip(&e.to_string(), &o.dir))),
        }
    }
    let plan_text = plan_text_for(&main.state, &run.records, None);
    let report = report::build(Input {
        plan: &plan,
        plan_file: "plan.toml".into(),
        plan_text,
        run,
        others,
    });
    Ok(Built {
        dir,
        plan,
        report,
        left_out,
    })
}
