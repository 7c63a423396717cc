//! The `verify-keys` step kind: each `[[keys]]` entry's key material, found at its paths on its
//! host, is found on the new host by the fingerprint of its public half, whatever its path or
//! format there. Both hosts are scanned where they are (`rehost_host::scan_keys`: in-process
//! or by the agent), so only public facts cross the network and reach the journal
//! (`StepData::VerifyKeys`).

use super::{Executor, Need};
use crate::EngineError;
use crate::exec::{Ctx, Outcome, failed};
use rehost_journal::step_data::{KeyEntryData, STEP_DATA_VERSION, StepData, VerifyKeysData};
use rehost_keys::{Scan, Verdict};
use rehost_plan::{Step, StepKind};
use std::collections::BTreeMap;

pub(super) static EXECUTOR: Executor = Executor {
    kind: "verify-keys",
    rollback: None,
    execute,
    needs: |plan, step| match &step.kind {
        StepKind::VerifyKeys { keys, to, .. } => {
            let mut needs = vec![Need::Opens { host: to }];
            for k in plan.keys.iter().filter(|k| keys.contains(&k.id)) {
                needs.push(Need::Files {
                    host: &k.host,
                    paths: &k.paths,
                });
            }
            needs
        }
        _ => Vec::new(),
    },
};

/// What a `verify-keys` step does not check, in the words the journal and the report use.
pub const NOT_COMPARED: &[&str] = &[
    "key material rehost does not read yet (what a PKCS#12 bundle or a PKCS#8 key encrypts under a password none of the step's `password_file` opens, GnuPG agent keys other than RSA and elliptic curves in libgcrypt's table beyond their file's name, key files neither a crypttab nor a service configuration names: verify them with verify-files)",
    "whether certificates are still valid (expiring ones are warned of in the step's output)",
    "a LUKS volume's data and whether its passphrases or key files still open it (its header is matched by UUID and key slot layout, a crypttab key file by a keyed digest)",
    "whether the service's user can read the key, and configurations of services other than nginx, Apache, PostgreSQL, sshd, OpenVPN and HAProxy",
    "owners (user ids differ between hosts)",
];

/// Whether `path` is `under` or below it.
fn within(path: &str, under: &str) -> bool {
    let under = under.trim_end_matches('/');
    path == under || path.strip_prefix(under).is_some_and(|r| r.starts_with('/'))
}

/// The directory of a path (`/` for a top-level one).
fn dir_of(p: &str) -> String {
    match p.rsplit_once('/') {
        Some(("", _)) | None => "/".into(),
        Some((d, _)) => d.into(),
    }
}

fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    let StepKind::VerifyKeys {
        keys,
        to,
        search,
        password_file,
    } = &step.kind
    else {
        unreachable!("the registry hands `verify-keys` its own steps")
    };
    // The passwords, read here and handed to each scan; never shown or kept.
    let passwords = match password_file {
        Some(f) => match rehost_host::read_password_file(std::path::Path::new(f)) {
            Ok(p) => p,
            Err(e) => return failed(e),
        },
        None => Vec::new(),
    };
    let decls: Vec<_> = keys
        .iter()
        .filter_map(|id| ctx.plan.keys.iter().find(|k| &k.id == id))
        .collect();
    // The new side, where the step says or in the directories of the keys' paths.
    let search: Vec<String> = if search.is_empty() {
        let mut dirs: Vec<String> = decls
            .iter()
            .flat_map(|d| d.paths.iter().map(|p| dir_of(p)))
            .collect();
        dirs.sort();
        dirs.dedup();
        // A directory already below another is scanned with it.
        let all = dirs.clone();
        dirs.retain(|d| !all.iter().any(|o| o != d && within(d, o)));
        dirs
    } else {
        search.clone()
    };
    // The old side: one scan per host, of its keys' paths and of where the new side is
    // searched (the configurations there say where each key is used).
    let mut by_host: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for d in &decls {
        by_host
            .entry(&d.host)
            .or_default()
            .extend(d.paths.iter().map(String::as_str));
    }
    for paths in by_host.values_mut() {
        paths.extend(search.iter().map(String::as_str));
        paths.sort_unstable();
        paths.dedup();
    }
    // One key for the key file digests of both sides, drawn for this step and not kept.
    let digest_key = match rehost_host::fresh_digest_key() {
        Ok(k) => k,
        Err(e) => {
            return failed(format!(
                "failed to draw a key for key file digests from /dev/urandom: {e}"
            ));
        }
    };
    let mut old: BTreeMap<&str, Scan> = BTreeMap::new();
    for (host, paths) in &by_host {
        let h = match ctx.hosts.get(host) {
            Ok(h) => h,
            Err(e) => return failed(e),
        };
        match rehost_host::scan_keys_opened(h, paths, Some(&digest_key), &passwords, ctx.cancel) {
            Ok(s) => {
                old.insert(host, s);
            }
            Err(_) if ctx.cancel.load(std::sync::atomic::Ordering::Relaxed) => {
                return Ok(Outcome::Cancelled);
            }
            Err(e) => return failed(format!("failed to scan host `{host}` for keys: {e}")),
        }
    }
    let new = {
        let h = match ctx.hosts.get(to) {
            Ok(h) => h,
            Err(e) => return failed(e),
        };
        let paths: Vec<&str> = search.iter().map(String::as_str).collect();
        match rehost_host::scan_keys_opened(h, &paths, Some(&digest_key), &passwords, ctx.cancel) {
            Ok(s) => s,
            Err(_) if ctx.cancel.load(std::sync::atomic::Ordering::Relaxed) => {
                return Ok(Outcome::Cancelled);
            }
            Err(e) => return failed(format!("failed to scan host `{to}` for keys: {e}")),
        }
    };

    let mut entries = Vec::new();
    let mut errors: Vec<String> = new.errors.iter().map(|e| format!("{to}: {e}")).collect();
    let (mut missing, mut unverified, mut problems_n) = (0usize, 0usize, 0usize);
    let mut out = String::new();
    for d in &decls {
        let s = &old[d.host.as_str()];
        let mine = Scan {
            found: s
                .found
                .iter()
                .filter(|f| {
                    // At its paths, or a key file a crypttab at its paths names.
                    d.paths.iter().any(|p| {
                        within(&f.path, p)
                            || f.used_by.iter().any(|u| {
                                within(u.rsplit_once(':').map_or(u.as_str(), |(f, _)| f), p)
                            })
                    })
                })
                .cloned()
                .collect(),
            errors: s
                .errors
                .iter()
                .filter(|e| d.paths.iter().any(|p| e.starts_with(p.as_str())))
                .cloned()
                .collect(),
            ..Scan::default()
        };
        errors.extend(mine.errors.iter().map(|e| format!("{}: {e}", d.host)));
        let c = rehost_keys::compare(&mine, &new);
        let found: Vec<_> = c.keys.into_iter().filter(|k| !k.old.is_empty()).collect();
        let problems: Vec<_> = c
            .problems
            .into_iter()
            .filter(|p| p.side == "new" && found.iter().any(|k| k.new.contains(&p.path)))
            .collect();
        out.push_str(&format!(
            "key {} ({} on {}):\n",
            d.id,
            d.paths.join(", "),
            d.host
        ));
        if found.is_empty() {
            unverified += 1;
            out.push_str("  no key material rehost reads at its paths\n");
        }
        for k in &found {
            let fp = k.fingerprint.as_deref().unwrap_or("fingerprint unknown");
            out.push_str(&format!(
                "  {} {} {} {fp}: {}{}\n",
                k.verdict.name(),
                k.kind.name(),
                k.algorithm,
                k.old.join(", "),
                if k.new.is_empty() {
                    String::new()
                } else {
                    format!(" -> {to}:{}", k.new.join(", "))
                }
            ));
            match k.verdict {
                Verdict::Missing => missing += 1,
                Verdict::Unidentified => unverified += 1,
                _ => {}
            }
        }
        for p in &problems {
            out.push_str(&format!("  problem on {to}: {}: {}\n", p.path, p.what));
        }
        let warnings: Vec<_> = c
            .warnings
            .into_iter()
            .filter(|w| w.side == "new" && found.iter().any(|k| k.new.contains(&w.path)))
            .collect();
        for w in &warnings {
            out.push_str(&format!("  warning on {to}: {}: {}\n", w.path, w.what));
        }
        problems_n += problems.len();
        entries.push(KeyEntryData {
            id: d.id.clone(),
            host: d.host.clone(),
            paths: d.paths.clone(),
            found,
            problems,
            warnings,
        });
    }
    for e in &errors {
        out.push_str(&format!("could not read: {e}\n"));
    }
    let code = if missing > 0 || problems_n > 0 {
        1
    } else if unverified > 0 || !errors.is_empty() {
        2
    } else {
        0
    };
    // Paths and messages from the hosts are untrusted: each line escaped on its own.
    for line in out.lines() {
        let _ = ctx
            .output
            .write_all(format!("{}\n", rehost_tree::escape::text(line)).as_bytes());
    }
    let total: usize = entries.iter().map(|e| e.found.len()).sum();
    let data = StepData::VerifyKeys(Box::new(VerifyKeysData {
        v: STEP_DATA_VERSION,
        to: to.clone(),
        search: search.clone(),
        keys: entries,
        errors: errors.clone(),
        exit_code: code,
        not_compared: NOT_COMPARED.iter().map(|s| (*s).to_owned()).collect(),
    }));
    if code == 0 {
        return Ok(Outcome::Done {
            detail: Some(format!(
                "{total} key{s} of {n} [[keys]] entr{ies} found on `{to}` by fingerprint; not checked: whether the service's user can read them, key kinds rehost does not read yet, whether a LUKS volume still opens",
                s = if total == 1 { "" } else { "s" },
                n = decls.len(),
                ies = if decls.len() == 1 { "y" } else { "ies" },
            )),
            exit_code: Some(code),
            confirmed_by: None,
            data: Some(data),
        });
    }
    let mut what = Vec::new();
    if missing > 0 {
        what.push(format!("{missing} missing on `{to}`"));
    }
    if problems_n > 0 {
        what.push(format!(
            "{problems_n} problem(s) on `{to}` (readable by group or others, a key file missing, a damaged header)"
        ));
    }
    if unverified > 0 {
        what.push(format!("{unverified} not identified"));
    }
    if !errors.is_empty() {
        what.push(format!("{} path(s) could not be read", errors.len()));
    }
    Ok(Outcome::Failed {
        detail: format!(
            "the keys are not all proved on `{to}`: {}; the full list is in the step's output. Carry the keys (or correct the step's `search`) and run again",
            what.join(", ")
        ),
        exit_code: Some(code),
        data: Some(data),
    })
}
