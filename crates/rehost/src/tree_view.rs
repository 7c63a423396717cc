//! What tree commands share: turning CLI options into walk options, resolving locations, and
//! the progress line on stderr (entries and bytes per second, both sides).

use crate::cli::TreeOptions;
use rehost_tree::{Glob, Progress, WalkOptions};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

pub fn walk_options(t: &TreeOptions) -> Result<WalkOptions, String> {
    let mut w = WalkOptions::default();
    for x in &t.exclude {
        w.excludes.push(Glob::new(x).map_err(|e| e.to_string())?);
    }
    if let Some(n) = t.threads {
        w.threads = n;
    }
    Ok(w)
}

/// Where a location's tree is: a path here, or a host reached over ssh and a path on it.
pub enum Place {
    Here(PathBuf),
    Remote {
        host: Box<dyn rehost_host::Host>,
        path: String,
    },
}

/// Resolves a location; a remote one is opened (one ssh master and the agent) right away, so
/// an unknown host key or an unreachable host is reported before any work starts. With
/// `--plan`, a HOST that names a plan host is reached as the plan (and `--env`) say.
pub fn place(location: &str, t: &TreeOptions) -> Result<Place, String> {
    let ssh_config = t.ssh_config.as_deref();
    let (host, port, path) =
        match rehost_host::Location::parse(location).map_err(|e| e.to_string())? {
            rehost_host::Location::Local(p) => return Ok(Place::Here(p)),
            rehost_host::Location::Remote { host, port, path } => (host, port, path),
        };
    let spec = match plan_target(&host, t)? {
        Some(target) => rehost_engine::host_spec(target, ssh_config),
        None => rehost_host::HostSpec::Ssh(rehost_host::SshSpec::for_destination(
            &host,
            port,
            ssh_config.map(Into::into),
        )),
    };
    if let rehost_host::HostSpec::Local { root } = &spec {
        use rehost_host::Host;
        return Ok(Place::Here(
            rehost_host::LocalHost::new(&host, root.clone()).resolve(&path),
        ));
    }
    let h = rehost_host::open(&host, &spec).map_err(|e| e.to_string())?;
    Ok(Place::Remote { host: h, path })
}

/// Opens the host `name`: the plan's (with `--plan`, as the plan and `--env` say; a local host
/// with its root), else reached over ssh.
pub fn open_host(name: &str, t: &TreeOptions) -> Result<Box<dyn rehost_host::Host>, String> {
    let ssh_config = t.ssh_config.as_deref();
    let spec = match plan_target(name, t)? {
        Some(target) => rehost_engine::host_spec(target, ssh_config),
        None => rehost_host::HostSpec::Ssh(rehost_host::SshSpec::for_destination(
            name,
            None,
            ssh_config.map(Into::into),
        )),
    };
    if let rehost_host::HostSpec::Local { root } = &spec {
        return Ok(Box::new(rehost_host::LocalHost::new(name, root.clone())));
    }
    rehost_host::open(name, &spec).map_err(|e| e.to_string())
}

/// The plan's target for `host`, when `--plan` is given and names it.
pub(crate) fn plan_target(
    host: &str,
    t: &TreeOptions,
) -> Result<Option<rehost_plan::HostTarget>, String> {
    let Some(plan_path) = &t.plan else {
        return Ok(None);
    };
    let pf = crate::plan_file::PlanFile::load_valid(plan_path, "use hosts of")
        .map_err(|_| "the plan has errors".to_owned())?;
    let targets = pf.plan().hosts_for(t.env.as_deref()).ok_or_else(|| {
        format!(
            "the plan has no environment `{}`",
            t.env.as_deref().unwrap_or_default()
        )
    })?;
    Ok(targets
        .into_iter()
        .find(|(n, _)| n == host)
        .map(|(_, target)| target))
}

/// Prints progress on stderr when it is a terminal, at most five times a second.
pub struct ProgressLine {
    on: bool,
    sides: usize,
    printed: bool,
}

impl ProgressLine {
    pub fn new(sides: usize) -> Self {
        ProgressLine {
            on: std::io::stderr().is_terminal(),
            sides,
            printed: false,
        }
    }

    pub fn update(&mut self, p: Progress) {
        if !self.on {
            return;
        }
        let side = |i: usize, name: &str| {
            let c = p.sides[i];
            // No rate under a second or a megabyte: it would mean nothing.
            let rate = rehost_engine::steps::rate(c.bytes, p.elapsed)
                .map(|r| {
                    format!(
                        " (hashing at {r}, {:.0} entries/s)",
                        c.entries as f64 / p.elapsed.as_secs_f64()
                    )
                })
                .unwrap_or_default();
            format!(
                "{name}{} entries {}{rate}",
                c.entries,
                rehost_tree::human_bytes(c.bytes)
            )
        };
        let line = if self.sides == 2 {
            format!("{}  {}", side(0, "A: "), side(1, "B: "))
        } else {
            side(0, "")
        };
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r\x1b[K{line}");
        let _ = e.flush();
        self.printed = true;
    }

    pub fn clear(&mut self) {
        if self.printed {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[K");
            let _ = e.flush();
        }
    }
}
