//! The `scan-refs` step kind: the lines of files on the plan's hosts that mention the old
//! address or name (`rehost_host::scan_refs`: in process here, by the agent on an ssh host),
//! recorded in the journal (`StepData::ScanRefs`) for the report's list of clients to
//! reconfigure. Fails when a path could not be read (nothing unreadable is counted as
//! searched) and, with `require_none`, when a line was found.

use super::{Executor, Need};
use crate::EngineError;
use crate::exec::{Ctx, Outcome, failed};
use rehost_journal::step_data::{RefLine, RefsScanned, STEP_DATA_VERSION, ScanRefsData, StepData};
use rehost_plan::{Step, StepKind};
use rehost_refs::Needle;
use std::sync::atomic::Ordering;

/// Lines kept in the journal per path; more are counted.
const KEPT: usize = 1000;
/// Files a failure names before it says how many more.
const NAMED: usize = 10;

pub(super) static EXECUTOR: Executor = Executor {
    kind: "scan-refs",
    rollback: None,
    execute,
    needs: |_, step| match &step.kind {
        StepKind::ScanRefs { paths, .. } => paths
            .iter()
            .filter_map(|p| p.split_once(':'))
            .map(|(host, _)| Need::Opens { host })
            .collect(),
        _ => Vec::new(),
    },
};

/// The needles a step looks for: its `find`, then each `[[names]]` entry's name and old value
/// (only the old value of a name resolved from hosts files, where the name stays).
pub(crate) fn needles(
    plan: &rehost_plan::Plan,
    find: &[String],
    names: &[String],
) -> Result<Vec<Needle>, String> {
    let mut out: Vec<Needle> = Vec::new();
    let mut add = |s: &str| -> Result<(), String> {
        let n = Needle::parse(s).map_err(|e| format!("`{s}`: {e}"))?;
        if !out.contains(&n) {
            out.push(n);
        }
        Ok(())
    };
    for f in find {
        add(f)?;
    }
    for id in names {
        let Some(n) = plan.name_decl(id) else {
            return Err(format!("the plan declares no name `{id}`"));
        };
        // A name clients resolve from their hosts files stays in them, with its new address:
        // only the old value is what must not remain.
        if n.via != rehost_plan::NameVia::HostsFile {
            add(&n.name)?;
        }
        if let Some(old) = &n.old {
            add(old)?;
        }
    }
    Ok(out)
}

fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    let StepKind::ScanRefs {
        paths,
        find,
        names,
        clients,
        require_none,
    } = &step.kind
    else {
        unreachable!("the registry hands `scan-refs` its own steps")
    };
    let needles = match needles(ctx.plan, find, names) {
        Ok(n) => n,
        Err(e) => return failed(e),
    };
    let shown: Vec<String> = needles.iter().map(Needle::to_string).collect();
    let mut scans = Vec::new();
    for p in paths {
        let Some((host, path)) = p.split_once(':') else {
            return failed(format!("`{p}` is not HOST:PATH"));
        };
        let h = match ctx.hosts.get(host) {
            Ok(h) => h,
            Err(e) => return failed(e),
        };
        let scan = rehost_host::scan_refs(h, &[path], &needles, ctx.cancel);
        if ctx.cancel.load(Ordering::Relaxed) {
            return Ok(Outcome::Cancelled);
        }
        scans.push(match scan {
            Ok(s) => RefsScanned {
                host: host.to_owned(),
                path: path.to_owned(),
                files: s.files,
                bytes: s.bytes,
                binary: s.binary,
                symlinks: s.symlinks,
                found_total: s.found.len() as u64,
                found: s
                    .found
                    .into_iter()
                    .take(KEPT)
                    .map(|f| RefLine {
                        path: f.path,
                        line: f.line,
                        find: f
                            .needles
                            .iter()
                            .filter_map(|&i| shown.get(i as usize).cloned())
                            .collect(),
                        text: f.text,
                    })
                    .collect(),
                truncated: s.truncated,
                errors: s.errors,
            },
            Err(e) => RefsScanned {
                host: host.to_owned(),
                path: path.to_owned(),
                files: 0,
                bytes: 0,
                binary: 0,
                symlinks: 0,
                found: Vec::new(),
                found_total: 0,
                truncated: false,
                errors: vec![format!("failed to scan: {e}")],
            },
        });
    }
    let lines: u64 = scans.iter().map(|s| s.found_total).sum();
    let mut files: Vec<String> = scans
        .iter()
        .flat_map(|s| {
            s.found
                .iter()
                .map(move |f| format!("{}:{}", s.host, f.path))
        })
        .collect();
    files.dedup();
    let unread: Vec<String> = scans
        .iter()
        .flat_map(|s| s.errors.iter().map(move |e| format!("{}: {e}", s.host)))
        .collect();
    let searched: u64 = scans.iter().map(|s| s.files).sum();
    let truncated = scans.iter().any(|s| s.truncated);
    let data = Some(StepData::ScanRefs(Box::new(ScanRefsData {
        v: STEP_DATA_VERSION,
        find: shown.clone(),
        clients: clients.clone(),
        require_none: *require_none,
        scans,
    })));
    let what = shown.join(", ");
    let named = {
        let mut n: Vec<String> = files.iter().take(NAMED).cloned().collect();
        if files.len() > NAMED {
            n.push(format!("and {} more", files.len() - NAMED));
        }
        rehost_plan::escape_control(&n.join(", "))
    };
    if !unread.is_empty() || truncated {
        let mut why: Vec<String> = unread.iter().take(NAMED).cloned().collect();
        if unread.len() > NAMED {
            why.push(format!("and {} more", unread.len() - NAMED));
        }
        if truncated {
            why.push("a host stopped at its bound of lines: narrow the paths".into());
        }
        return Ok(Outcome::Failed {
            detail: format!(
                "not everything under the paths could be searched for {what} ({lines} line(s) found in what was): {}",
                rehost_plan::escape_control(&why.join("; "))
            ),
            exit_code: None,
            data,
        });
    }
    if *require_none && lines > 0 {
        return Ok(Outcome::Failed {
            detail: format!(
                "{lines} line(s) in {} file(s) still mention {what}: reconfigure them, then run again: {named}",
                files.len()
            ),
            exit_code: None,
            data,
        });
    }
    Ok(Outcome::Done {
        detail: Some(if lines == 0 {
            format!("no line of the {searched} file(s) searched mentions {what}")
        } else {
            format!(
                "{lines} line(s) in {} file(s) mention {what}: the clients to reconfigure (listed in the report): {named}",
                files.len()
            )
        }),
        exit_code: None,
        confirmed_by: None,
        data,
    })
}
