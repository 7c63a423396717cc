//! Pre-flight: before the first step of a run, and on its own in `rehost check --hosts` (the
//! day before), open every host the remaining steps use and check what those steps need, so
//! that a dead host, a changed host key, an agent that cannot start, a missing rsync, a missing
//! source tree or a full destination is found before the window, not after `stop-old`.
//!
//! Everything goes through the `Host` trait (one `Probe` request per host, `rsync --version`
//! where a step needs rsync), so local and ssh hosts are checked alike.

use crate::exec::Hosts;
use crate::steps::Need;
use rehost_plan::{Plan, Step, SyncMethod};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

/// What a pre-flight checked and what it found wrong (one line each, naming the host).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Preflight {
    /// The hosts opened, in name order.
    pub hosts: Vec<String>,
    /// One line per problem; empty means the run may start.
    pub problems: Vec<String>,
    /// What could not be checked yet (a source tree an earlier step may create).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// What one host must offer the remaining steps.
#[derive(Default)]
struct Needs {
    /// A data set whose source tree must exist here: (data set, path, the step still to run
    /// before its first use that creates it: the data set's `created_by`).
    sources: Vec<(String, String, Option<String>)>,
    /// A data set copied here: (data set, path, source host, source path).
    destinations: Vec<(String, String, String, String)>,
    /// Data sets copied with rsync, which must run here.
    rsync: Vec<String>,
}

/// Checks the hosts of `steps` (the steps still to run).
pub fn preflight(plan: &Plan, steps: &[Step], hosts: &mut Hosts, cancel: &AtomicBool) -> Preflight {
    let mut needs: BTreeMap<String, Needs> = BTreeMap::new();
    for (i, step) in steps.iter().enumerate() {
        if let Some(h) = &step.host {
            needs.entry(h.clone()).or_default();
        }
        // What the step's kind needs (steps/*.rs says which).
        for need in crate::steps::needs(step) {
            let (data, sync) = match need {
                Need::ReadsData { data } => (data, None),
                Need::CopiesData { data, method } => (data, Some(method)),
            };
            let Some(ds) = plan.data.iter().find(|d| d.id == *data) else {
                continue;
            };
            let src = needs.entry(ds.from.host.clone()).or_default();
            if !src.sources.iter().any(|(id, _, _)| *id == ds.id) {
                // Made by a step still to come before this use: not there yet, by design.
                let maker = ds
                    .created_by
                    .as_ref()
                    .filter(|by| steps[..i].iter().any(|s| s.id == **by))
                    .cloned();
                src.sources
                    .push((ds.id.clone(), ds.from.path.clone(), maker));
            }
            if sync == Some(SyncMethod::Rsync) && !src.rsync.contains(&ds.id) {
                src.rsync.push(ds.id.clone());
            }
            let dst = needs.entry(ds.to.host.clone()).or_default();
            if sync.is_some() && !dst.destinations.iter().any(|d| d.0 == ds.id) {
                dst.destinations.push((
                    ds.id.clone(),
                    ds.to.path.clone(),
                    ds.from.host.clone(),
                    ds.from.path.clone(),
                ));
            }
            if sync == Some(SyncMethod::Rsync) && !dst.rsync.contains(&ds.id) {
                dst.rsync.push(ds.id.clone());
            }
        }
    }

    let mut out = Preflight::default();
    // Source sizes, filled as the source hosts are probed (sources sort before nothing in
    // particular, so probe every host's sources first, then destinations).
    let mut source_bytes: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut opened = Vec::new();
    for (name, n) in &needs {
        out.hosts.push(name.clone());
        let host = match hosts.get(name) {
            Ok(h) => h,
            Err(e) => {
                out.problems.push(format!("host `{name}`: {e}"));
                continue;
            }
        };
        let paths: Vec<&[u8]> = n.sources.iter().map(|(_, p, _)| p.as_bytes()).collect();
        match host.probe(&paths, true, cancel) {
            Err(e) => {
                out.problems.push(format!("host `{name}`: {e}"));
                continue;
            }
            Ok(probes) => {
                for ((id, path, maker), p) in n.sources.iter().zip(probes) {
                    let shown = String::from_utf8_lossy(&p.path.0).into_owned();
                    if let (None, Some(step)) = (&p.kind, maker) {
                        out.warnings.push(format!(
                            "host `{name}`: data set `{id}`: {shown} does not exist yet; step `{step}` creates it (created_by)"
                        ));
                    } else if let Some(e) = &p.error {
                        out.problems
                            .push(format!("host `{name}`: data set `{id}`: {shown}: {e}"));
                    } else if p.kind != Some(rehost_host::EntryKind::Dir) {
                        out.problems.push(format!(
                            "host `{name}`: data set `{id}`: {shown} {}; check the data set's `from` ({name}:{path})",
                            if p.kind.is_none() { "does not exist" } else { "is not a directory" }
                        ));
                    } else {
                        source_bytes.insert((name.clone(), path.clone()), p.bytes.unwrap_or(0));
                    }
                }
            }
        }
        opened.push(name.clone());
    }
    for name in &opened {
        let n = &needs[name];
        let Ok(host) = hosts.get(name) else { continue };
        let paths: Vec<&[u8]> = n.destinations.iter().map(|d| d.1.as_bytes()).collect();
        match host.probe(&paths, true, cancel) {
            Err(e) => out.problems.push(format!("host `{name}`: {e}")),
            Ok(probes) => {
                for ((id, _path, sh, sp), p) in n.destinations.iter().zip(probes) {
                    let shown = String::from_utf8_lossy(&p.path.0).into_owned();
                    if let Some(e) = &p.error {
                        out.problems
                            .push(format!("host `{name}`: data set `{id}`: {shown}: {e}"));
                        continue;
                    }
                    if p.kind.is_some() && p.kind != Some(rehost_host::EntryKind::Dir) {
                        out.problems.push(format!(
                            "host `{name}`: data set `{id}`: {shown} is not a directory"
                        ));
                        continue;
                    }
                    let Some(&want) = source_bytes.get(&(sh.clone(), sp.clone())) else {
                        continue;
                    };
                    let need = want.saturating_sub(p.bytes.unwrap_or(0));
                    if let Some(free) = p.fs_free
                        && free < need
                    {
                        out.problems.push(format!(
                            "host `{name}`: data set `{id}`: {shown} needs {} more and its file system has {} free; free space there or choose another destination",
                            rehost_tree::human_bytes(need),
                            rehost_tree::human_bytes(free)
                        ));
                    }
                }
            }
        }
        if !n.rsync.is_empty() {
            let spec = rehost_host::CommandSpec::new(rehost_host::Program::Argv(vec![
                "rsync".into(),
                "--version".into(),
            ]));
            let ok = host
                .run(&spec, cancel, &mut |_, _| {})
                .is_ok_and(|o| o.exit.code == Some(0));
            if !ok {
                out.problems.push(format!(
                    "host `{name}`: rsync does not run there, and data set(s) {} sync with method = \"rsync\"; install rsync on it, or use method = \"builtin\"",
                    n.rsync.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    out
}
