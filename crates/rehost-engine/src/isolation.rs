//! A rehearsal cannot reach production: its hosts are compared with production's by what they
//! are, not by how the plan spells them.
//!
//! Two hosts are the same place when they are both this machine (a local host; an ssh host
//! whose machine id or host key is this machine's), when ssh resolves them to the same
//! host name and port or address and port (`ssh -G`, the user's config applied), or when
//! known_hosts files them under the same host key. Within the same place, a rehearsal host
//! meets a production host when their roots overlap (one inside the other after
//! canonicalisation; no root is `/`).
//!
//! `rehost check` uses what is known without connecting ([`meetings`]); the run adds the
//! machine id each rehearsal host reports once it is open. Production hosts are never
//! connected to during a rehearsal: their known host keys stand for them.

use crate::exec::{Hosts, host_spec};
use rehost_host::HostSpec;
use rehost_host::ssh::{self, Resolved};
use rehost_plan::{Database, Engine, HostDecl, Plan};
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// A rehearsal host that is a production host, or a rehearsal's database that is production's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meeting {
    pub env_host: String,
    pub prod_host: String,
    /// Why they are the same, as a fragment: "both present host key SHA256:…".
    pub why: String,
    /// For a database endpoint: the plan's database ids, the rehearsal's and production's
    /// (`None`: the hosts themselves meet).
    pub database: Option<(String, String)>,
}

/// Where a database client lands on its host: what decides which server (or file) it reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Endpoint {
    /// A server by its port: TCP on the host's loopback, or PostgreSQL's socket, which is
    /// named by the port too (`.s.PGSQL.PORT`).
    Port(u16),
    /// A MariaDB socket, as written and as resolved under the host's root (either may be the
    /// one the client opens).
    Socket(Vec<PathBuf>),
    /// An SQLite file, resolved under the host's root.
    File(PathBuf),
}

impl Endpoint {
    fn of(db: &Database, to: bool, root: &Path) -> Option<Endpoint> {
        // The way the host itself resolves a path of the plan (`..` cannot climb out).
        let under = |p: &str| canonical(&rehost_host::resolve_under(Some(root), Path::new(p)));
        match db.kind? {
            Engine::Sqlite => Some(Endpoint::File(under(db.name_on(to)?))),
            Engine::Mysql => Some(match &db.socket {
                Some(s) => Endpoint::Socket(vec![canonical(Path::new(s)), under(s)]),
                None => Endpoint::Port(db.effective_port(to)?),
            }),
            Engine::Postgres => Some(Endpoint::Port(db.effective_port(to)?)),
        }
    }

    fn same(&self, other: &Endpoint) -> Option<String> {
        match (self, other) {
            (Endpoint::Port(a), Endpoint::Port(b)) if a == b => {
                Some(format!("both connect to the server on port {a}"))
            }
            (Endpoint::Socket(a), Endpoint::Socket(b)) => a
                .iter()
                .find(|p| b.contains(p))
                .map(|p| format!("both connect through socket {}", p.display())),
            (Endpoint::File(a), Endpoint::File(b)) if a == b => {
                Some(format!("both open {}", a.display()))
            }
            _ => None,
        }
    }
}

/// Each side of each plan database: its id, the host its client runs on, and whether it is
/// the new side (`to`).
fn db_sides(plan: &Plan) -> Vec<(String, String, bool)> {
    plan.databases
        .iter()
        .flat_map(|d| {
            [
                (d.id.clone(), d.from.clone(), false),
                (d.id.clone(), d.to.clone(), true),
            ]
        })
        .collect()
}

fn find<'l>(list: &'l [(String, Identity)], name: &str) -> Option<&'l Identity> {
    list.iter().find(|(n, _)| n == name).map(|(_, i)| i)
}

/// The rehearsal's database endpoints that are production's: on hosts that are the same
/// place (whatever their roots: a server serves the whole machine), the same port, socket or
/// file. A rehearsal must never connect to production's database.
fn compare_databases(
    plan: &Plan,
    env: &str,
    ids: &[(String, Identity)],
    prod: &[(String, Identity)],
) -> Vec<Meeting> {
    let mut out = Vec::new();
    for (eid, ehost, eto) in db_sides(plan) {
        let (Some(e), Some(edb)) = (find(ids, &ehost), plan.database_in(&eid, Some(env))) else {
            continue;
        };
        let Some(eend) = Endpoint::of(&edb, eto, &e.root) else {
            continue;
        };
        for (pid, phost, pto) in db_sides(plan) {
            let (Some(p), Some(pdb)) = (find(prod, &phost), plan.database(&pid)) else {
                continue;
            };
            if edb.kind != pdb.kind {
                continue;
            }
            let Some(pend) = Endpoint::of(pdb, pto, &p.root) else {
                continue;
            };
            if let (Some(place), Some(same)) = (same_place(e, p), eend.same(&pend)) {
                out.push(Meeting {
                    env_host: ehost.clone(),
                    prod_host: phost.clone(),
                    why: format!("{place}, and {same}"),
                    database: Some((eid.clone(), pid.clone())),
                });
            }
        }
    }
    out
}

/// What one host is, as far as rehost can tell.
struct Identity {
    /// Both ends of a local host; an ssh host known to be this machine.
    this_machine: Option<String>,
    /// `ssh -G` and known_hosts, for ssh hosts.
    resolved: Option<Resolved>,
    addresses: Vec<IpAddr>,
    /// Where its paths live: its root, or `/`.
    root: PathBuf,
}

/// A path made absolute and canonical as far as it exists (a root may not exist yet).
fn canonical(p: &Path) -> PathBuf {
    let mut existing = p.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            let mut out = c;
            for r in rest.iter().rev() {
                out.push(r);
            }
            return out;
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_owned());
                existing = parent.to_path_buf();
            }
            _ => return p.components().filter(|c| *c != Component::CurDir).collect(),
        }
    }
}

fn overlap(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn identity(decl: &HostDecl, ssh_config: Option<&Path>, local_keys: &[String]) -> Identity {
    match host_spec(decl.target.clone(), ssh_config) {
        HostSpec::Local { root } => Identity {
            this_machine: Some("a local host".into()),
            resolved: None,
            addresses: Vec::new(),
            root: canonical(root.as_deref().unwrap_or(Path::new("/"))),
        },
        HostSpec::Ssh(spec) => {
            let resolved = ssh::resolve(&spec).ok();
            let addresses: Vec<IpAddr> = resolved
                .as_ref()
                .and_then(|r| (r.hostname.as_str(), r.port).to_socket_addrs().ok())
                .map(|a| a.map(|a| a.ip()).collect())
                .unwrap_or_default();
            // A loopback address is not enough: a tunnel (`ssh -L`) ends elsewhere.
            let this_machine = resolved
                .as_ref()
                .and_then(|r| r.known_keys.iter().find(|k| local_keys.contains(k)))
                .map(|k| format!("known by this machine's host key {}", ssh::fingerprint(k)));
            let root = spec.root.clone().unwrap_or_else(|| PathBuf::from("/"));
            Identity {
                root: if this_machine.is_some() {
                    canonical(&root)
                } else {
                    root
                },
                this_machine,
                resolved,
                addresses,
            }
        }
    }
}

/// Why two hosts are the same place, if they are.
fn same_place(e: &Identity, p: &Identity) -> Option<String> {
    if let (Some(re), Some(rp)) = (&e.resolved, &p.resolved) {
        if let Some(k) = re.known_keys.iter().find(|k| rp.known_keys.contains(k)) {
            return Some(format!("both present host key {}", ssh::fingerprint(k)));
        }
        if re.port == rp.port {
            if re.hostname.eq_ignore_ascii_case(&rp.hostname) {
                return Some(format!("both resolve to {} port {}", re.hostname, re.port));
            }
            if let Some(a) = e.addresses.iter().find(|a| p.addresses.contains(a)) {
                return Some(format!("both resolve to {a} port {}", re.port));
            }
        }
    }
    match (&e.this_machine, &p.this_machine) {
        (Some(a), Some(b)) => Some(format!("both are this machine ({a}; {b})")),
        _ => None,
    }
}

fn compare(identities: Vec<(String, Identity)>, prod: &[(String, Identity)]) -> Vec<Meeting> {
    let mut out = Vec::new();
    for (en, e) in &identities {
        for (pn, p) in prod {
            if let Some(why) = same_place(e, p)
                && overlap(&e.root, &p.root)
            {
                out.push(Meeting {
                    env_host: en.clone(),
                    prod_host: pn.clone(),
                    why: format!(
                        "{why}, and the paths overlap ({} and {})",
                        e.root.display(),
                        p.root.display()
                    ),
                    database: None,
                });
            }
        }
    }
    out
}

fn production(
    plan: &Plan,
    ssh_config: Option<&Path>,
    local_keys: &[String],
) -> Vec<(String, Identity)> {
    plan.hosts
        .iter()
        .map(|h| (h.name.clone(), identity(h, ssh_config, local_keys)))
        .collect()
}

/// The rehearsal hosts of `env` that meet production hosts, as far as is known without
/// connecting to any host (`rehost check`).
pub fn meetings(plan: &Plan, env: &str, ssh_config: Option<&Path>) -> Vec<Meeting> {
    let Some(environment) = plan.environment(env) else {
        return Vec::new();
    };
    let local_keys = ssh::local_host_keys();
    let prod = production(plan, ssh_config, &local_keys);
    let ids: Vec<(String, Identity)> = environment
        .hosts
        .iter()
        .map(|h| (h.name.clone(), identity(h, ssh_config, &local_keys)))
        .collect();
    let mut out = compare_databases(plan, env, &ids, &prod);
    out.splice(0..0, compare(ids, &prod));
    out
}

/// The run-time check of a rehearsal: [`meetings`], and each ssh rehearsal host opened and
/// asked for its machine id (the same as this machine's: it is this machine).
pub(crate) fn check_run(
    plan: &Plan,
    env: &str,
    hosts: &mut Hosts,
    ssh_config: Option<&Path>,
    cancel: &AtomicBool,
) -> Result<Vec<Meeting>, String> {
    let Some(environment) = plan.environment(env) else {
        return Ok(Vec::new());
    };
    let local_keys = ssh::local_host_keys();
    let local_id = rehost_host::this_machine_id();
    let prod = production(plan, ssh_config, &local_keys);
    let mut ids = Vec::new();
    for h in &environment.hosts {
        let mut id = identity(h, ssh_config, &local_keys);
        if id.resolved.is_some() && id.this_machine.is_none() {
            let host = hosts.get(&h.name)?;
            let remote = host
                .machine_id(cancel)
                .map_err(|e| format!("failed to read /etc/machine-id on host {}: {e}", h.name))?;
            if remote.is_some() && remote == local_id {
                id.this_machine = Some(format!(
                    "its /etc/machine-id is this machine's, {}",
                    remote.unwrap_or_default()
                ));
                id.root = canonical(&id.root);
            }
        }
        ids.push((h.name.clone(), id));
    }
    let mut out = compare_databases(plan, env, &ids, &prod);
    out.splice(0..0, compare(ids, &prod));
    Ok(out)
}
