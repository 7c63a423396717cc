//! The `verify-files` step kind: single files carried by hand (a licence file, a keytab, a
//! crontab) compared on the old and the new host. Each host records only the listed entries
//! and the directories leading to them (`rehost_tree::WalkOptions::only`: reached from `/`
//! through directory descriptors, never through a symlink), both at once; the listed entries
//! are compared like a tree's, without the modification time and hard links. Both manifests go
//! into the state directory's `evidence/`, the typed result into the journal
//! (`StepData::VerifyFiles`).

use super::verify_tree::{findings_data, keep_manifests};
use super::{Executor, Need};
use crate::EngineError;
use crate::exec::{Ctx, Outcome, failed};
use rehost_journal::step_data::{STEP_DATA_VERSION, StepData, VerifyFilesData};
use rehost_plan::{Step, StepKind};
use rehost_tree::{Class, CompareOptions, Kind, Manifest, State};

pub(super) static EXECUTOR: Executor = Executor {
    kind: "verify-files",
    rollback: None,
    execute,
    needs: |_, step| match &step.kind {
        StepKind::VerifyFiles { from, to, paths } => {
            vec![Need::Files { host: from, paths }, Need::Opens { host: to }]
        }
        _ => Vec::new(),
    },
};

/// What a `verify-files` step does not compare, in the words the journal and the report use.
pub const NOT_COMPARED: &[&str] = &[
    "modification times (a file carried by hand rarely keeps its own)",
    "hard links between the listed files",
    "the directories leading to the listed files (recorded in the manifests, not compared)",
];

fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    let StepKind::VerifyFiles { from, to, paths } = &step.kind else {
        unreachable!("the registry hands `verify-files` its own steps")
    };
    // Relative to `/`: the plan's reader accepted only absolute, normalised paths.
    let below: Vec<&str> = paths.iter().map(|p| p.trim_start_matches('/')).collect();
    let options = rehost_host::ManifestOptions {
        only: below.iter().map(|p| (*p).into()).collect(),
        ..Default::default()
    };
    let (ha, hb) = match ctx.hosts.pair(from, to) {
        Ok(h) => h,
        Err(e) => return failed(e),
    };
    let (ma, mb) =
        rehost_host::manifest_pair((ha, b"/"), (hb, b"/"), &options, ctx.cancel, &mut |_| {});
    if ctx.cancel.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(Outcome::Cancelled);
    }
    let ma = match ma {
        Ok(m) => m,
        Err(e) => return failed(format!("failed to read the files on host `{from}`: {e}")),
    };
    let mb = match mb {
        Ok(m) => m,
        Err(e) => return failed(format!("failed to read the files on host `{to}`: {e}")),
    };
    let manifests = match keep_manifests(ctx, step, &ma, &mb) {
        Ok(m) => m,
        Err(e) => return failed(e),
    };

    // The listed entries only, compared as a tree's are, without what a hand-carried file
    // does not keep.
    let (la, lb) = (listed(&ma, &below), listed(&mb, &below));
    let opts = CompareOptions {
        ignore: [Class::Mtime, Class::Hardlink].into_iter().collect(),
    };
    let mut report = rehost_tree::compare(&la, &lb, &opts);
    // A listed path that is missing on `to` because a directory on the way is a symlink (or
    // not a directory) there says so: the file was not looked for behind it.
    for f in &mut report.findings {
        if f.class == Class::Missing
            && let Some(why) = unreached(&mb, &f.path)
        {
            f.b = why;
        }
    }
    let absent: Vec<String> = paths
        .iter()
        .zip(&below)
        .filter(|(_, b)| la.find(b.as_bytes()).is_none())
        .map(|(p, b)| match unreached(&ma, b.as_bytes()) {
            Some(why) => format!("{p} ({why})"),
            None => p.clone(),
        })
        .collect();
    let mut code = report.exit_code();
    if !absent.is_empty() && code == rehost_tree::EXIT_EQUAL {
        code = rehost_tree::EXIT_UNVERIFIED;
    }
    let t = &report.totals;
    let data = StepData::VerifyFiles(Box::new(VerifyFilesData {
        v: STEP_DATA_VERSION,
        from: from.clone(),
        to: to.clone(),
        paths: paths.clone(),
        exit_code: code,
        totals: t.clone(),
        findings: findings_data(&report),
        findings_total: report.findings.len() as u64,
        absent: absent.clone(),
        not_compared: NOT_COMPARED.iter().map(|s| (*s).to_owned()).collect(),
        manifests,
    }));
    let mut human = Vec::new();
    let _ = report.render_human(&mut human);
    for a in &absent {
        human.extend_from_slice(format!("  absent on {from}: {a}\n").as_bytes());
    }
    let _ = ctx.output.write_all(&human);
    if code == rehost_tree::EXIT_EQUAL {
        return Ok(Outcome::Done {
            detail: Some(format!(
                "{n} file{s} on `{to}` equal to `{from}`'s: type, content (BLAKE3), symlink target, mode, owner, group, extended attributes, ACLs; not compared: modification times, hard links, the directories on the way",
                n = t.equal,
                s = if t.equal == 1 { "" } else { "s" },
            )),
            exit_code: Some(code),
            confirmed_by: None,
            data: Some(data),
        });
    }
    let mut what: Vec<String> = t
        .by_class
        .iter()
        .map(|(c, n)| format!("{n} {}", c.name()))
        .collect();
    if !absent.is_empty() {
        what.push(format!("absent on `{from}`: {}", absent.join(", ")));
    }
    Ok(Outcome::Failed {
        detail: format!(
            "the files on `{to}` {} `{from}`'s: {}; the full list is in the step's output. Carry the files again (or correct the step's `paths`) and run again",
            if code == rehost_tree::EXIT_DIFFERENT {
                "differ from"
            } else {
                "could not all be compared with"
            },
            what.join(", ")
        ),
        exit_code: Some(code),
        data: Some(data),
    })
}

/// The manifest's listed entries alone (no root, no directories on the way), each on its own:
/// hard-link groups are not compared.
fn listed(m: &Manifest, below: &[&str]) -> Manifest {
    let mut out = Manifest {
        root: m.root.clone(),
        excludes: Vec::new(),
        entries: Vec::new(),
        rehashed: m.rehashed,
        trusted: m.trusted,
        compared: m.compared,
        warnings: m.warnings.clone(),
    };
    for b in below {
        if let Some(i) = m.find(b.as_bytes()) {
            let mut e = m.entries[i].clone();
            e.link = rehost_tree::LINK_NONE;
            e.nlink = 1;
            out.entries.push(e);
        }
    }
    out.entries.sort_by(|x, y| x.path.cmp(&y.path));
    out
}

/// Why a path was not reached on a side: a directory on the way that is something else (a
/// symlink, never followed) or could not be read.
fn unreached(m: &Manifest, path: &[u8]) -> Option<String> {
    let mut at = 0;
    while let Some(slash) = path[at..].iter().position(|&b| b == b'/') {
        let parent = &path[..at + slash];
        at += slash + 1;
        let i = m.find(parent)?;
        let e = &m.entries[i];
        let shown = format!("/{}", rehost_tree::escape::display(parent));
        if e.kind != Kind::Dir {
            return Some(format!(
                "{shown} on the way is a {}, not followed",
                e.kind.name()
            ));
        }
        if e.state != State::Ok {
            return Some(format!("{shown} on the way could not be read"));
        }
    }
    None
}
