//! What follows from a survey (docs/survey.md): `rehost survey … -o DRAFT.toml` (the draft
//! plan), `--map FILE.svg` (the dependency map), `--inventory FILE` (a saved survey instead of
//! a new one), and `rehost survey --compare OLD NEW` (what the old host has that the new one
//! lacks, the plan's `[survey]` declaring what is expected). The pure parts are rehost-survey's
//! `draft`, `map` and `compare`; this module reads the sides and writes the files.
//!
//! Exit codes of `--compare`: 0 nothing missing, 1 something missing (each listed), 2 a side
//! could not be read or surveyed.

use crate::cli::{SurveyArgs, SurveyDraftArgs};
use crate::exit;
use rehost_survey::{Inventory, compare, draft, limits, map};
use std::io::Read as _;
use std::path::Path;

/// `rehost survey --inventory FILE`: the draft and the map of a saved survey.
pub(super) fn from_saved(args: &SurveyArgs) -> i32 {
    let Some(file) = &args.draft.inventory else {
        return exit::TROUBLE;
    };
    let inv = match read_inventory(file) {
        Ok(i) => i,
        Err(e) => {
            crate::term::error(&e);
            return exit::TROUBLE;
        }
    };
    if args.draft.draft.is_none() && args.draft.map.is_none() {
        crate::term::error(
            "--inventory reads a saved survey for -o DRAFT.toml or --map FILE.svg: give one of them",
        );
        return exit::TROUBLE;
    }
    match outputs(&inv, args) {
        Ok(()) => exit::OK,
        Err(e) => {
            crate::term::error(&e);
            exit::TROUBLE
        }
    }
}

/// Reads an inventory saved by `rehost survey --json`, bounded as one received from a host.
pub fn read_inventory(path: &Path) -> Result<Inventory, String> {
    read_inventory_digest(path).map(|(inv, _)| inv)
}

/// [`read_inventory`], and the BLAKE3 of the file's bytes (which inventory it is).
pub fn read_inventory_digest(path: &Path) -> Result<(Inventory, String), String> {
    let shown = || crate::term::escape(&path.display().to_string());
    let f = std::fs::File::open(path)
        .map_err(|e| format!("failed to read the inventory {}: {e}", shown()))?;
    let mut text = String::new();
    f.take(limits::MAX_JSON_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("failed to read the inventory {}: {e}", shown()))?;
    if text.len() as u64 > limits::MAX_JSON_BYTES {
        return Err(format!(
            "failed to read the inventory {}: larger than {} MiB",
            shown(),
            limits::MAX_JSON_BYTES >> 20
        ));
    }
    // Bounded as an agent's answer is: a saved file may come from the old server too.
    let inv = rehost_survey::check::from_json(text.as_bytes()).map_err(|e| {
        format!(
            "failed to read the inventory {}: not an inventory `rehost survey --json` wrote: {e}",
            shown()
        )
    })?;
    if inv.format != rehost_survey::FORMAT {
        return Err(format!(
            "failed to read the inventory {}: its format is {}, this rehost reads {}",
            shown(),
            inv.format,
            rehost_survey::FORMAT
        ));
    }
    Ok((inv, rehost_plan::digest(&text)))
}

/// How the draft's `[hosts.old]` reaches the surveyed host: as the plan has it (`--plan`), as
/// the command line named it, or as the saved inventory names it.
fn old_host(inv: &Inventory, args: &SurveyArgs) -> draft::OldHost {
    if let (Some(host), Some(plan)) = (&args.on.host, &args.on.plan)
        && let Ok(pf) = crate::plan_file::PlanFile::load_valid(plan, "use hosts of")
        && let Some(t) = pf
            .plan()
            .hosts_for(args.on.env.as_deref())
            .and_then(|ts| ts.into_iter().find(|(n, _)| n == host).map(|(_, t)| t))
    {
        return match t {
            rehost_plan::HostTarget::Local { root } => draft::OldHost::Local { root },
            rehost_plan::HostTarget::Ssh {
                destination,
                port,
                identity_file,
                proxy_jump,
                ssh_config,
                root,
            } => draft::OldHost::Ssh {
                destination,
                port,
                more: draft::SshMore {
                    identity_file,
                    proxy_jump,
                    ssh_config,
                    root,
                },
            },
        };
    }
    // No HOST: this machine, unless the inventory was saved elsewhere.
    let saved = args.draft.inventory.is_some();
    let mut old = draft::OldHost::from_arg(args.on.host.as_deref().unwrap_or(if saved {
        &inv.host
    } else {
        "local"
    }));
    if let (draft::OldHost::Ssh { more, .. }, Some(c)) = (&mut old, &args.on.ssh_config) {
        more.ssh_config = Some(c.display().to_string());
    }
    old
}

/// Writes the draft plan and the map the arguments ask for.
pub fn outputs(inv: &Inventory, args: &SurveyArgs) -> Result<(), String> {
    let d: &SurveyDraftArgs = &args.draft;
    if let Some(path) = &d.draft {
        // The inventory the draft names: the one saved now, or the one it was read from.
        if let Some(out) = &d.inventory_out {
            let json = serde_json::to_string_pretty(inv)
                .map_err(|e| format!("failed to write the inventory: {e}"))?;
            crate::output::write_file(out, format!("{json}\n").as_bytes(), d.mode)?;
            eprintln!(
                "rehost: wrote the inventory {}",
                crate::term::escape(&out.display().to_string())
            );
        }
        let named = d
            .inventory_out
            .as_deref()
            .or(d.inventory.as_deref())
            .map(|i| relative_to_draft(path, i));
        let text = draft::draft_from(inv, &old_host(inv, args), named.as_deref());
        crate::output::write_file(path, text.as_bytes(), d.mode)?;
        let todos = rehost_plan::check(&text)
            .errors
            .iter()
            .filter(|e| e.code == "todo")
            .count();
        eprintln!(
            "rehost: wrote the draft plan {}: {todos} TODO(s) to decide; `rehost check {}` lists each with its line",
            crate::term::escape(&path.display().to_string()),
            crate::term::escape(&path.display().to_string())
        );
    }
    if let Some(path) = &d.map {
        let svg = map::svg(inv);
        crate::output::write_file(path, svg.as_bytes(), d.mode)?;
        eprintln!(
            "rehost: wrote the dependency map {} ({} services)",
            crate::term::escape(&path.display().to_string()),
            inv.services.len()
        );
    }
    Ok(())
}

/// The dependency map of the inventory the plan names in `[survey] inventory` (relative to
/// the plan), read bounded and checked as an agent's answer (it came from the old server);
/// none where the plan names none. The error names the file and the plan's line.
pub fn plan_map(
    pf: &crate::plan_file::PlanFile,
) -> Result<Option<rehost_evidence::survey_map::DependencyMap>, String> {
    let Some(name) = pf.plan().survey.as_ref().and_then(|s| s.inventory.as_ref()) else {
        return Ok(None);
    };
    let at = pf.path.parent().unwrap_or(Path::new(".")).join(&name.value);
    match read_inventory_digest(&at) {
        Ok((inv, digest)) => Ok(Some(rehost_evidence::survey_map::DependencyMap::of(
            &inv,
            &name.value,
            &digest,
        ))),
        Err(e) => {
            let line = rehost_plan::SourceMap::new(&pf.text)
                .line_col(name.span.start)
                .0;
            // Unescaped: each sink escapes (the terminal, the document).
            Err(format!(
                "{e} ({}:{line}: [survey] inventory)",
                pf.path.display()
            ))
        }
    }
}

/// `inventory` as the draft at `draft` names it: relative to the draft's directory where it
/// lies beneath it, else absolute (the plan reads `[survey] inventory` relative to itself).
fn relative_to_draft(draft: &Path, inventory: &Path) -> String {
    let abs = |p: &Path| -> Option<std::path::PathBuf> {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        Some(dir.canonicalize().ok()?.join(p.file_name()?))
    };
    let (Some(inv), Some(dir)) = (
        abs(inventory),
        abs(draft).and_then(|d| d.parent().map(Path::to_owned)),
    ) else {
        return inventory.display().to_string();
    };
    match inv.strip_prefix(&dir) {
        Ok(rel) => rel.display().to_string(),
        Err(_) => inv.display().to_string(),
    }
}

/// One side of `--compare`: a saved inventory when the argument is a file, else a host
/// surveyed now (without sampling clients: the comparison does not look at them).
fn side(spec: &str, args: &SurveyArgs) -> Result<Inventory, String> {
    let p = Path::new(spec);
    if p.is_file() {
        return read_inventory(p);
    }
    survey_host(spec, args)
}

/// A host surveyed now for `--compare`: as `rehost survey HOST` reaches it (`--plan`'s hosts,
/// `--ssh-config`), without sampling clients, progress on stderr.
fn survey_host(spec: &str, args: &SurveyArgs) -> Result<Inventory, String> {
    let host = if spec == "local" {
        super::conns::open_as(None, &args.on)?
    } else {
        super::conns::open_as(Some(spec), &args.on)?
    };
    eprintln!("rehost: surveying {}", crate::term::escape(host.name()));
    let options = rehost_host::survey::SurveyOptions {
        sample_seconds: 0,
        interval_ms: 0,
    };
    host.survey(&options, &crate::signals::CANCEL, &mut |_| {})
        .map_err(|e| format!("failed to survey {}: {e}", crate::term::escape(spec)))
}

/// The expected differences: the plan's `[survey]` (with --plan), then --allow and --rewrite.
fn expectations(args: &SurveyArgs) -> Result<compare::Expect, String> {
    let mut e = compare::Expect::default();
    if let Some(plan) = &args.on.plan {
        let pf = crate::plan_file::PlanFile::load_valid(plan, "read the expected differences of")
            .map_err(|_| "the plan has errors".to_owned())?;
        if let Some(s) = &pf.plan().survey {
            e.allow.extend(s.allow.iter().cloned());
            e.rewrite
                .extend(s.rewrite.iter().map(|r| rehost_config::Rewrite {
                    from: r.from.clone(),
                    to: r.to.clone(),
                }));
        }
    }
    e.allow.extend(args.draft.allow.iter().cloned());
    for r in &args.draft.rewrite {
        e.rewrite.push(rehost_config::Rewrite::parse(r)?);
    }
    Ok(e)
}

pub(super) fn run_compare(args: &SurveyArgs) -> i32 {
    let Some([old, new]) = args.draft.compare.as_deref() else {
        crate::term::error("--compare needs OLD and NEW");
        return exit::TROUBLE;
    };
    if let Some(h) = &args.on.host {
        crate::term::error(&format!(
            "--compare takes its two sides as OLD and NEW, not `{}` before them: write `rehost survey --compare OLD NEW`",
            crate::term::escape(h)
        ));
        return exit::TROUBLE;
    }
    let go = || -> Result<(Inventory, Inventory, compare::Expect), String> {
        let e = expectations(args)?;
        Ok((side(old, args)?, side(new, args)?, e))
    };
    let (a, b, e) = match go() {
        Ok(x) => x,
        Err(_) if crate::signals::cancelled() => return exit::INTERRUPTED,
        Err(e) => {
            crate::term::error(&e);
            return exit::TROUBLE;
        }
    };
    let c = compare::compare(&a, &b, &e);
    if args.json {
        let out = serde_json::json!({
            "old": a.host,
            "new": b.host,
            "complete": c.is_complete(),
            "comparison": c,
        });
        println!("{}", serde_json::to_string_pretty(&out).expect("json"));
    } else {
        print!("{}", compare::render_human(&c, old, new));
    }
    if c.is_complete() {
        exit::OK
    } else {
        exit::FINDINGS
    }
}
