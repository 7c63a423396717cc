//! The draft plan: an [`Inventory`] turned into `plan.toml` text (`rehost survey -o
//! DRAFT.toml`), every service, data set, database, key, name and client declared with a
//! `# found:` comment saying where the survey read it, and a checklist in M 2.319's order built
//! from the existing step kinds: pre-sync, lower the TTL, wait for the window, drain, stop,
//! final sync and database copy, verify (trees, databases, keys, configuration, cron and timer
//! files), watch the old side, switch, start, health, clients.
//!
//! What only a person can decide is a `"TODO: …"` value (who initiates and implements, the
//! window, the downtime budget, the new and the test hosts, each name's TTL, how each
//! database server is copied): `rehost check` reports exactly those, each on its line, and
//! the draft with them decided checks without errors or findings.
//!
//! Every string from the inventory is untrusted: values are encoded as TOML basic strings by
//! the TOML writer (a quote, a newline or `]]` stays inside its string), comments go through
//! the one escaper (a newline cannot end a comment), ids are reduced to `[a-z0-9-]`, and
//! free text is passed through `rehost_plan::redact` so that no credential a command line
//! carried is written.

use crate::model::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use toml_writer::WriteTomlValue as _;

/// How the plan reaches the surveyed host (the draft's `[hosts.old]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldHost {
    /// This machine, its paths under `root` where given.
    Local { root: Option<String> },
    /// An ssh destination (`user@host`), with its port where not the default, and the rest of
    /// the plan's ssh host keys where the survey's host had them.
    Ssh {
        destination: String,
        port: Option<u16>,
        more: SshMore,
    },
}

/// The other keys of an ssh host in the plan (`[hosts.NAME]`), as the survey reached it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshMore {
    pub identity_file: Option<String>,
    pub proxy_jump: Option<String>,
    pub ssh_config: Option<String>,
    /// Paths on the host taken under this directory (a test host sharing a machine).
    pub root: Option<String>,
}

impl OldHost {
    /// The host as `rehost survey` was given it: `ssh://user@host[:port]`, `user@host` or a
    /// host name (ssh), a path (this machine under that root), `local` (this machine).
    pub fn from_arg(arg: &str) -> OldHost {
        if let Some(rest) = arg.strip_prefix("ssh://") {
            let rest = rest.split('/').next().unwrap_or(rest);
            if let Some((dest, port)) = rest.rsplit_once(':')
                && let Ok(port) = port.parse()
            {
                return OldHost::Ssh {
                    destination: dest.to_owned(),
                    port: Some(port),
                    more: SshMore::default(),
                };
            }
            return OldHost::Ssh {
                destination: rest.to_owned(),
                port: None,
                more: SshMore::default(),
            };
        }
        if matches!(arg, "local" | "localhost" | "this machine") {
            return OldHost::Local { root: None };
        }
        if arg.starts_with('/') || arg.starts_with('.') {
            return OldHost::Local {
                root: Some(arg.to_owned()),
            };
        }
        OldHost::Ssh {
            destination: arg.to_owned(),
            port: None,
            more: SshMore::default(),
        }
    }
}

/// The TOML text of a string value: a basic string, one line, whatever it holds.
pub fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    let _ = toml_writer::TomlStringBuilder::new(s)
        .as_basic()
        .write_toml_value(&mut out);
    out
}

fn toml_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let v: Vec<String> = items.into_iter().map(toml_str).collect();
    format!("[{}]", v.join(", "))
}

/// Text from the inventory for a comment or a description: credentials out, then escaped so
/// that it stays on its line.
fn shown(s: &str) -> String {
    rehost_plan::escape_control(&rehost_plan::redact(s))
}

fn found(f: &Found) -> String {
    let by = match f.by {
        FoundBy::Kernel => "kernel",
        FoundBy::Server => "server",
        FoundBy::Package => "package",
        FoundBy::Init => "init",
        FoundBy::File => "file",
        FoundBy::Command => "command",
    };
    format!("# found: {} ({by})\n", shown(&f.source))
}

/// Plan ids made from the inventory's names: `[a-z0-9-]`, unique.
#[derive(Default)]
struct Ids(BTreeSet<String>);

impl Ids {
    fn make(&mut self, base: &str) -> String {
        let mut id = String::new();
        for c in base.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                id.push(c);
            } else if !id.ends_with('-') && !id.is_empty() {
                id.push('-');
            }
            if id.len() >= 40 {
                break;
            }
        }
        let id = id.trim_end_matches('-').to_owned();
        let id = if id.is_empty() { "item".to_owned() } else { id };
        let mut candidate = id.clone();
        let mut n = 2;
        while !self.0.insert(candidate.clone()) {
            candidate = format!("{id}-{n}");
            n += 1;
        }
        candidate
    }
}

/// A declared key: its plan id and what the survey found.
type KeyItem<'a> = &'a (String, &'a KeyRef);

/// A service as the draft declares it.
struct Svc<'a> {
    s: &'a Service,
    id: String,
    unit: Option<&'a str>,
    /// A database server: kept running on the old host until its databases are copied and
    /// verified (every service on the old host writes to its databases, as the lint reads it).
    database_server: bool,
    /// The way rehost reaches the host: never stopped by the draft.
    sshd: bool,
    /// Nothing runs it now and it listens nowhere (a timer's or a path's target): declared,
    /// carried with what starts it, and not stopped or started by the checklist.
    passive: bool,
    persistent: bool,
    tcp_ports: Vec<u16>,
}

const DB_DATA_ROLES: &[&str] = &["postgresql-data-directory", "mariadb-datadir"];

fn is_public_name(n: &str) -> bool {
    n.contains('.')
        && !n.starts_with('.')
        && !n.ends_with(".localdomain")
        && n != "localhost.localdomain"
        && n.parse::<std::net::IpAddr>().is_err()
        && !n.contains('*')
}

fn is_loopback(peer: &str) -> bool {
    let p = peer.trim_start_matches("::ffff:");
    p.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// The draft plan of `inv`: TOML text that `rehost check` reads, failing only on its TODOs.
pub fn draft(inv: &Inventory, old: &OldHost) -> String {
    draft_from(inv, old, None)
}

/// [`draft`], naming in `[survey] inventory` the file the inventory was saved to (relative
/// to the draft's directory), so that `rehost concept` embeds its dependency map.
pub fn draft_from(inv: &Inventory, old: &OldHost, inventory: Option<&str>) -> String {
    let mut out = String::new();
    let w = &mut out;
    let host_name = if inv.system.hostname.is_empty() {
        inv.host.as_str()
    } else {
        inv.system.hostname.as_str()
    };
    let _ = writeln!(
        w,
        "# Draft migration plan for {}, written by `rehost survey` from its inventory taken at {}.",
        shown(host_name),
        shown(&inv.taken_at)
    );
    w.push_str(
        "# Every value that starts with TODO is for a person to decide: `rehost check` lists each\n\
         # with its line. Each declaration says where the survey found it (`# found:`). Remove what\n\
         # is not to be migrated; what the survey could not read is listed at the end.\n\n",
    );

    // [migration]
    w.push_str("[migration]\n");
    let mut title = format!("Migration of {host_name}");
    if !inv.system.os_pretty.is_empty() {
        title.push_str(&format!(" ({})", inv.system.os_pretty));
    }
    let _ = writeln!(w, "title = {}", toml_str(&rehost_plan::redact(&title)));
    let _ = writeln!(
        w,
        "purpose = {}",
        toml_str(&format!(
            "Move the services of {} to a replacement system (drafted by rehost survey).",
            rehost_plan::redact(host_name)
        ))
    );
    w.push_str("initiated_by = \"TODO: who initiates and signs off the migration (M 2.319: the IT security officer, the IT manager)\"\n");
    w.push_str("implemented_by = \"TODO: who implements it and confirms the manual steps (the administrator)\"\n");
    w.push_str("window = \"TODO: the maintenance window, outside normal operating hours, as { start = \\\"2026-12-05T22:00:00+01:00\\\", end = \\\"2026-12-06T02:00:00+01:00\\\" }\"\n");
    w.push_str(
        "max_downtime = \"TODO: the downtime the service owners accept, such as \\\"15m\\\"\"\n",
    );
    w.push_str("max_data_loss = \"0s\"\n");
    w.push_str("# point_of_no_return = \"switch\"  # with a step before it that backs up the old side (backup = \"WHERE\")\n\n");

    // Hosts.
    w.push_str("[hosts.old]\n");
    let _ = writeln!(
        w,
        "# found: the surveyed host {} (rehost survey)",
        shown(&inv.host)
    );
    match old {
        OldHost::Local { root } => {
            w.push_str("local = true\n");
            if let Some(r) = root {
                let _ = writeln!(w, "root = {}", toml_str(r));
            }
        }
        OldHost::Ssh {
            destination,
            port,
            more,
        } => {
            let _ = writeln!(w, "ssh = {}", toml_str(destination));
            if let Some(p) = port {
                let _ = writeln!(w, "port = {p}");
            }
            for (key, v) in [
                ("identity_file", &more.identity_file),
                ("proxy_jump", &more.proxy_jump),
                ("ssh_config", &more.ssh_config),
                ("root", &more.root),
            ] {
                if let Some(v) = v {
                    let _ = writeln!(w, "{key} = {}", toml_str(v));
                }
            }
        }
    }
    w.push_str("role = \"the server being replaced\"\n\n");
    w.push_str("[hosts.new]\n");
    w.push_str("ssh = \"TODO: the replacement server (user@host; or local = true with a root)\"\n");
    w.push_str("role = \"the replacement system\"\n\n");
    w.push_str("[environments.test]\n");
    w.push_str("old = { ssh = \"TODO: a copy of the old server to rehearse on (user@host)\" }\n");
    w.push_str("new = { ssh = \"TODO: a replacement server to rehearse on (user@host)\" }\n\n");
    match inventory {
        Some(file) => {
            w.push_str("[survey]\n# found: the inventory this draft was written from (rehost survey)\n");
            let _ = writeln!(w, "inventory = {}\n", toml_str(file));
        }
        None => w.push_str(
            "# [survey]\n# inventory = \"old.json\"  # the inventory this draft came from (rehost survey --inventory-out): rehost concept draws its map\n\n",
        ),
    }

    let mut ids = Ids::default();
    let mut svcs: Vec<Svc> = Vec::new();
    for s in &inv.services {
        let base = s
            .unit
            .as_ref()
            .map(|u| u.name.trim_end_matches(".service").to_owned())
            .unwrap_or_else(|| s.id.replace("process:", "process-"));
        let mut tcp_ports: Vec<u16> = s
            .listens
            .iter()
            .filter(|l| l.proto == Proto::Tcp && l.port != 0)
            .map(|l| l.port)
            .collect();
        tcp_ports.sort_unstable();
        tcp_ports.dedup();
        // Drained before it stops: a client held a connection through every sample (a drain
        // waits on TCP ports).
        let persistent = !tcp_ports.is_empty()
            && inv
                .clients
                .iter()
                .any(|c| c.persistent && c.service.as_deref() == Some(s.id.as_str()));
        svcs.push(Svc {
            s,
            id: ids.make(&base),
            unit: s.unit.as_ref().map(|u| u.name.as_str()),
            database_server: !s.databases.is_empty(),
            sshd: s.kind.as_deref() == Some("sshd"),
            passive: s.listens.is_empty() && s.processes.is_empty(),
            persistent,
            tcp_ports,
        });
    }

    // Services.
    for v in &svcs {
        let s = v.s;
        if let Some(u) = &s.unit {
            w.push_str(&found(&u.found));
        } else if let Some(p) = s.processes.first() {
            let _ = writeln!(w, "# found: process {} ({}) (kernel)", p.pid, shown(&p.exe));
        }
        if let Some(p) = &s.package {
            let _ = writeln!(
                w,
                "# package: {} {} ({})",
                shown(&p.name),
                shown(&p.version),
                shown(&p.found.source)
            );
        }
        let udp: Vec<String> = s
            .listens
            .iter()
            .filter(|l| l.proto == Proto::Udp)
            .map(|l| format!("udp {}:{}", shown(&l.address), l.port))
            .collect();
        if !udp.is_empty() {
            let _ = writeln!(w, "# also listens on {}", udp.join(", "));
        }
        if v.sshd {
            w.push_str("# the way rehost reaches the old host: this draft never stops it\n");
        }
        if v.passive {
            w.push_str("# nothing runs it now and it listens nowhere (a timer starts it): the checklist neither stops nor starts it\n");
        }
        if v.database_server {
            w.push_str("# a database server: it keeps running on the old host until its databases are copied and verified;\n\
                        # the new server's runs before the migration starts (the pre-flight asks both)\n");
        }
        w.push_str("[[services]]\n");
        let _ = writeln!(w, "id = {}", toml_str(&v.id));
        w.push_str("host = \"old\"\n");
        if !v.tcp_ports.is_empty() {
            let ports: Vec<String> = v.tcp_ports.iter().map(u16::to_string).collect();
            let _ = writeln!(w, "ports = [{}]", ports.join(", "));
        }
        let sockets: Vec<&str> = s
            .listens
            .iter()
            .filter(|l| l.proto == Proto::Unix && l.address.starts_with('/'))
            .map(|l| l.address.as_str())
            .collect();
        if !sockets.is_empty() {
            let _ = writeln!(w, "sockets = {}", toml_list(sockets));
        }
        if let Some(unit) = v.unit {
            service_commands(w, v, unit, &inv.system.init);
        }
        if v.persistent {
            w.push_str("persistent_connections = true\n");
        }
        w.push('\n');
    }

    // Data sets.
    let mut data: Vec<(String, &DataSet, &Svc)> = Vec::new();
    for v in &svcs {
        for d in &v.s.data {
            if v.database_server && DB_DATA_ROLES.contains(&d.role.as_str()) {
                let _ = writeln!(
                    w,
                    "# {} {} of {} is carried by the copy of its databases (below), not as files",
                    shown(&d.role),
                    shown(&d.path),
                    v.id
                );
                w.push_str(&found(&d.found));
                w.push('\n');
                continue;
            }
            if !d.path.starts_with('/') || data.iter().any(|(_, o, _)| o.path == d.path) {
                continue;
            }
            let id = ids.make(&format!(
                "{}-{}",
                v.id,
                d.path.rsplit('/').next().unwrap_or("")
            ));
            w.push_str(&found(&d.found));
            w.push_str("[[data]]\n");
            let _ = writeln!(w, "id = {}", toml_str(&id));
            let _ = writeln!(w, "from = {}", toml_str(&format!("old:{}", d.path)));
            let _ = writeln!(w, "to = {}", toml_str(&format!("new:{}", d.path)));
            let mut desc = format!("{} of {}", d.role, v.id);
            if let Some(o) = &d.owner {
                desc.push_str(&format!(", owner {o}"));
            }
            if let Some(b) = d.bytes {
                desc.push_str(&format!(", {b} bytes when surveyed"));
            }
            let _ = writeln!(w, "description = {}", toml_str(&shown(&desc)));
            w.push('\n');
            data.push((id, d, v));
        }
    }

    // Databases.
    // Per database server: the ids of its databases.
    let mut dbs: Vec<(&Svc, Vec<String>)> = Vec::new();
    for v in svcs.iter().filter(|v| v.database_server) {
        let mut mine = Vec::new();
        for r in &v.s.databases {
            for name in &r.names {
                let id = ids.make(&format!("{}-{name}", r.engine));
                w.push_str(&found(&r.found));
                w.push_str("[[databases]]\n");
                let _ = writeln!(w, "id = {}", toml_str(&id));
                let _ = writeln!(w, "engine = {}", toml_str(&r.engine));
                w.push_str("from = \"old\"\nto = \"new\"\n");
                let _ = writeln!(w, "database = {}", toml_str(name));
                let _ = writeln!(w, "port = {}", r.port);
                if let Some(ver) = &r.version {
                    let _ = writeln!(w, "old_version = {}", toml_str(&shown(ver)));
                }
                w.push('\n');
                mine.push(id);
            }
        }
        if !mine.is_empty() {
            dbs.push((v, mine));
        }
    }

    // Keys.
    let mut keys: Vec<(String, &KeyRef)> = Vec::new();
    for v in &svcs {
        for k in &v.s.keys {
            if !k.path.starts_with('/') || keys.iter().any(|(_, o)| o.path == k.path) {
                continue;
            }
            let stem = k.path.rsplit('/').next().unwrap_or("key");
            let id = ids.make(&format!("key-{stem}"));
            w.push_str(&found(&k.found));
            w.push_str("[[keys]]\n");
            let _ = writeln!(w, "id = {}", toml_str(&id));
            w.push_str("host = \"old\"\n");
            let kind = match k.kind.as_str() {
                "x509-certificate" | "private-key" | "public-key" => "tls",
                k if k.starts_with("ssh") => "ssh-host",
                _ => "file",
            };
            let _ = writeln!(w, "kind = {}", toml_str(kind));
            let _ = writeln!(w, "paths = {}", toml_list([k.path.as_str()]));
            let mut desc = format!("{} used by {}", k.kind, v.id);
            if let Some(f) = &k.fingerprint {
                desc.push_str(&format!(", {f}"));
            }
            let _ = writeln!(w, "description = {}", toml_str(&shown(&desc)));
            w.push('\n');
            keys.push((id, k));
        }
    }

    // Names.
    let mut names: Vec<String> = Vec::new();
    let mut name_ids: Vec<String> = Vec::new();
    for v in &svcs {
        for n in &v.s.names {
            let name = n.name.trim_end_matches('.').to_ascii_lowercase();
            if !is_public_name(&name) || names.contains(&name) {
                continue;
            }
            w.push_str(&found(&n.found));
            w.push_str("[[names]]\n");
            let id = ids.make(&name);
            let _ = writeln!(w, "id = {}", toml_str(&id));
            let _ = writeln!(w, "name = {}", toml_str(&name));
            w.push_str("ttl = \"TODO: the TTL resolvers may cache it for (dig +noall +answer NAME), such as \\\"1h\\\"\"\n");
            w.push('\n');
            names.push(name);
            name_ids.push(id);
        }
    }
    // Clients: peers other than this host, per service.
    let mut client_ids: Vec<String> = Vec::new();
    for v in &svcs {
        let mut peers: BTreeMap<&str, (&Client, bool)> = BTreeMap::new();
        for c in inv
            .clients
            .iter()
            .filter(|c| c.service.as_deref() == Some(v.s.id.as_str()))
        {
            if is_loopback(&c.peer) {
                continue;
            }
            let e = peers.entry(c.peer.as_str()).or_insert((c, false));
            e.1 |= c.persistent;
        }
        if peers.is_empty() {
            continue;
        }
        let id = ids.make(&format!("{}-clients", v.id));
        let _ = writeln!(
            w,
            "# found: connected to {} while sampled {} times over {} s (kernel)",
            v.id, inv.sampled.samples, inv.sampled.seconds
        );
        w.push_str("[[clients]]\n");
        let _ = writeln!(w, "id = {}", toml_str(&id));
        let _ = writeln!(w, "hosts = {}", toml_list(peers.keys().copied()));
        let _ = writeln!(w, "count = {}", peers.len());
        let held: Vec<&str> = peers
            .iter()
            .filter(|(_, (_, p))| *p)
            .map(|(k, _)| *k)
            .collect();
        let mut desc = format!("clients of {} seen connected", v.id);
        if !held.is_empty() {
            desc.push_str(&format!("; holding a connection: {}", held.join(", ")));
        }
        let _ = writeln!(w, "description = {}", toml_str(&shown(&desc)));
        w.push('\n');
        client_ids.push(id);
    }

    // The checklist.
    let steps = &mut Steps::default();
    for (id, _, _) in &data {
        steps.add(
            &format!("pre-sync-{id}"),
            &format!("Copy {id} while the service still runs"),
            "sync",
            &[("data", toml_str(id)), ("phase", "\"bulk\"".into())],
        );
    }
    if !names.is_empty() {
        steps.add(
            "lower-ttl",
            "Lower the TTL of the names",
            "manual",
            &[
                (
                    "text",
                    toml_str(&format!(
                        "Lower the TTL of {} to 60s at least the old TTL before the switch.",
                        names.join(", ")
                    )),
                ),
                ("lowers_ttl", toml_list(name_ids.iter().map(String::as_str))),
            ],
        );
    }
    steps.add(
        "window-open",
        "Wait for the maintenance window",
        "wait",
        &[(
            "until",
            "\"TODO: the window's start, as in [migration] window (it also waits out the names' old TTL)\"".into(),
        )],
    );
    for v in svcs.iter().filter(|v| v.persistent) {
        steps.add(
            &format!("drain-{}", v.id),
            &format!("Drain the connections to {}", v.id),
            "drain",
            &[
                ("service", toml_str(&v.id)),
                ("host", "\"old\"".into()),
                ("timeout", "\"10m\"".into()),
                ("needs_window", "true".into()),
            ],
        );
    }
    let stopped: Vec<&Svc> = svcs
        .iter()
        .filter(|v| !v.sshd && !v.database_server && !v.passive)
        .collect();
    for v in &stopped {
        stop_or_start(steps, v, "stop", "old");
    }
    for (id, _, _) in &data {
        steps.add(
            &format!("final-sync-{id}"),
            &format!("Final copy of {id} with its services stopped"),
            "sync",
            &[("data", toml_str(id)), ("needs_window", "true".into())],
        );
    }
    // What is carried as files: the keys, then each service's configuration under /etc, its
    // unit files under /etc, the cron and timer files. How they reach the new server (scp,
    // configuration management) is the administrator's to decide; `verify-keys`, the
    // configuration steps and `verify-files` below check the result.
    if !keys.is_empty() {
        steps.note(
            "the key files it carries:",
            keys.iter().map(|(_, k)| k.path.as_str()),
        );
        steps.add(
            "carry-keys",
            "Carry the key material to the new server",
            "run",
            &[
                ("host", "\"new\"".into()),
                (
                    "command",
                    "\"TODO: the command that copies the key files listed above to the new server over an encrypted channel, owners and modes kept (such as scp -p)\"".into(),
                ),
                ("transfers", toml_list(keys.iter().map(|(i, _)| i.as_str()))),
                ("needs_window", "true".into()),
            ],
        );
    }
    let carried = carried_files(inv, &svcs);
    let verified = verified_files(inv, &svcs);
    if !carried.is_empty() {
        steps.note("the files it carries:", carried.iter().copied());
        steps.add(
            "carry-files",
            "Carry the configuration, unit, cron and timer files to the new server",
            "run",
            &[
                ("host", "\"new\"".into()),
                (
                    "command",
                    "\"TODO: the command that copies the files listed above to the new server, owners and modes kept, and enables there the units the old server enables at boot\"".into(),
                ),
                ("needs_window", "true".into()),
            ],
        );
    }
    for (v, ids) in &dbs {
        steps.add(
            &format!("copy-{}", v.id),
            &format!("Copy the databases of {}", v.id),
            "run",
            &[
                ("host", "\"new\"".into()),
                (
                    "command",
                    toml_str(&format!(
                        "TODO: how the databases of {} (port {}) are copied to the new server: a dump and restore, pg_upgrade, replication",
                        v.id,
                        v.s.databases.first().map_or(0, |d| d.port)
                    )),
                ),
                ("transfers", toml_list(ids.iter().map(String::as_str))),
                ("needs_window", "true".into()),
            ],
        );
    }
    for (id, _, _) in &data {
        steps.add(
            &format!("verify-{id}"),
            &format!("Verify {id} complete and correct on the new server"),
            "verify-tree",
            &[("data", toml_str(id)), ("needs_window", "true".into())],
        );
    }
    for (_, ids) in &dbs {
        for id in ids {
            steps.add(
                &format!("verify-{id}"),
                &format!("Verify the database {id} on the new server"),
                "verify-db",
                &[("database", toml_str(id))],
            );
        }
    }
    let (scanned, other): (Vec<KeyItem>, Vec<KeyItem>) = keys
        .iter()
        .partition(|(_, k)| !matches!(k.kind.as_str(), "keytab" | "luks" | "pkcs12" | "file"));
    if !scanned.is_empty() {
        steps.add(
            "verify-keys",
            "Verify the keys on the new server",
            "verify-keys",
            &[
                ("keys", toml_list(scanned.iter().map(|(i, _)| i.as_str()))),
                ("to", "\"new\"".into()),
            ],
        );
    }
    if !other.is_empty() {
        steps.add(
            "verify-key-files",
            "Verify the key files on the new server",
            "verify-files",
            &[
                ("from", "\"old\"".into()),
                ("to", "\"new\"".into()),
                (
                    "paths",
                    toml_list(other.iter().map(|(_, k)| k.path.as_str())),
                ),
                ("verifies", toml_list(other.iter().map(|(i, _)| i.as_str()))),
            ],
        );
    }
    for v in svcs.iter().filter(|v| !v.sshd && !v.passive) {
        config_steps(steps, v, &dbs);
    }
    if !verified.is_empty() {
        steps.add(
            "verify-cron-timers",
            "Verify the cron, timer and unit files carried over",
            "verify-files",
            &[
                ("from", "\"old\"".into()),
                ("to", "\"new\"".into()),
                ("paths", toml_list(verified.iter().copied())),
            ],
        );
    }
    for (id, _, _) in &data {
        steps.add(
            &format!("watch-old-{id}"),
            &format!("Watch the old side of {id} from here (re-checked at the end of the run)"),
            "watch-old",
            &[("data", toml_str(id))],
        );
    }
    if !names.is_empty() {
        steps.add(
            "switch",
            "Point the names at the new server",
            "manual",
            &[
                (
                    "text",
                    toml_str(&format!("Point {} at the new server.", names.join(", "))),
                ),
                ("switches", toml_list(name_ids.iter().map(String::as_str))),
                ("needs_window", "true".into()),
            ],
        );
    }
    for v in &stopped {
        stop_or_start(steps, v, "start", "new");
    }
    for v in svcs.iter().filter(|v| !v.sshd && !v.passive) {
        if v.tcp_ports.is_empty() && v.unit.is_none() {
            continue;
        }
        steps.add(
            &format!("health-{}", v.id),
            &format!("{} answers on the new server", v.id),
            "health",
            &[
                ("service", toml_str(&v.id)),
                ("host", "\"new\"".into()),
                ("timeout", "\"2m\"".into()),
            ],
        );
    }
    if !client_ids.is_empty() {
        steps.add(
            "clients",
            "The clients reach the new server",
            "manual",
            &[
                (
                    "text",
                    toml_str("Check that each client seen connected (the [[clients]] above) reaches the new server, through the switched names or reconfigured by hand."),
                ),
                ("reconfigures", toml_list(client_ids.iter().map(String::as_str))),
            ],
        );
    }
    out.push_str(&steps.text);

    // What the survey could not read.
    if !inv.gaps.is_empty() {
        out.push_str("\n# Not surveyed (nothing above is planned for these):\n");
        for g in &inv.gaps {
            let _ = writeln!(out, "#   {}: {}", shown(&g.what), shown(&g.why));
        }
    }
    out
}

#[derive(Default)]
struct Steps {
    text: String,
    ids: Ids,
}

impl Steps {
    /// Comment lines above the next step: `what`, then one item a line (escaped, credentials
    /// out: the items come from the old server).
    fn note<'a>(&mut self, what: &str, items: impl IntoIterator<Item = &'a str>) {
        let _ = writeln!(self.text, "# {what}");
        for i in items {
            let _ = writeln!(self.text, "#   {}", shown(i));
        }
    }

    fn add(&mut self, id: &str, title: &str, kind: &str, keys: &[(&str, String)]) {
        let id = self.ids.make(id);
        let t = &mut self.text;
        t.push_str("[[steps]]\n");
        let _ = writeln!(t, "id = {}", toml_str(&id));
        let _ = writeln!(t, "title = {}", toml_str(&shown(title)));
        let _ = writeln!(t, "do = {}", toml_str(kind));
        for (k, v) in keys {
            let _ = writeln!(t, "{k} = {v}");
        }
        t.push('\n');
    }
}

/// A `stop` (on the old host) or `start` (on the new host) step: the kind where the service
/// has a unit, a manual step otherwise.
fn stop_or_start(steps: &mut Steps, v: &Svc, what: &str, host: &str) {
    let on = if host == "old" { "old" } else { "new" };
    let title = format!(
        "{} {} on the {on} server",
        if what == "stop" { "Stop" } else { "Start" },
        v.id
    );
    let mut keys = vec![
        ("service", toml_str(&v.id)),
        ("host", toml_str(host)),
        ("needs_window", "true".into()),
    ];
    if v.unit.is_some() {
        steps.add(&format!("{what}-{}", v.id), &title, what, &keys);
        return;
    }
    keys.remove(0);
    let exe = v.s.processes.first().map_or("", |p| p.exe.as_str());
    keys.push((
        "text",
        toml_str(&shown(&format!(
            "{title}: it runs outside any unit ({exe})."
        ))),
    ));
    keys.push((
        if what == "stop" { "stops" } else { "starts" },
        toml_list([v.id.as_str()]),
    ));
    steps.add(&format!("{what}-{}", v.id), &title, "manual", &keys);
}

/// The files `verify-files` compares after they were carried: the cron and timer files, and
/// the unit files under `/etc` of every service but sshd (a package's own unit files under
/// `/lib` come with the package on the new server).
fn verified_files<'a>(inv: &'a Inventory, svcs: &[Svc<'a>]) -> Vec<&'a str> {
    let mut files: Vec<&str> = inv
        .cron
        .iter()
        .map(|c| c.file.as_str())
        .chain(inv.timers.iter().map(|t| t.file.as_str()))
        .chain(
            svcs.iter()
                .filter(|v| !v.sshd)
                .filter_map(|v| v.s.unit.as_ref())
                .flat_map(|u| u.files.iter().map(String::as_str))
                .filter(|f| f.starts_with("/etc/")),
        )
        .filter(|f| f.starts_with('/'))
        .collect();
    files.sort_unstable();
    files.dedup();
    files
}

/// The files the `carry-files` step copies: those [`verified_files`] compares, and each
/// service's configuration files under `/etc` but sshd's (compared by the configuration
/// steps, since the new server's paths may differ).
fn carried_files<'a>(inv: &'a Inventory, svcs: &[Svc<'a>]) -> Vec<&'a str> {
    let mut files = verified_files(inv, svcs);
    files.extend(
        svcs.iter()
            .filter(|v| !v.sshd)
            .flat_map(|v| v.s.config.iter().map(|c| c.path.as_str()))
            .filter(|f| f.starts_with("/etc/")),
    );
    files.sort_unstable();
    files.dedup();
    files
}

/// The command that dumps nginx's effective configuration as the surveyed server runs it:
/// `nginx -T`, with `-c FILE` where its command line named a configuration file. The path
/// comes from the old server: written bare where it holds only letters, digits and `/._-+`
/// (nothing a shell reads), else the command is a TODO (this crate quotes nothing: the one
/// quoter is rehost-host's).
fn nginx_dump(s: &Service) -> String {
    let given = s.config.iter().find(|c| {
        !c.conffile
            && (c.found.source.ends_with("/cmdline")
                || c.found.source.starts_with("ExecStart= of "))
    });
    match given {
        None => "nginx -T".to_owned(),
        Some(c)
            if c.path.starts_with('/')
                && c.path
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b)) =>
        {
            format!("nginx -T -c {}", c.path)
        }
        Some(_) => "TODO: nginx -T -c with the configuration file nginx runs with (its command line names one with characters a shell reads; the carry-files step lists the configuration files)".to_owned(),
    }
}

/// A unit's `stop`, `start` and `health` commands: through `systemctl` where systemd runs
/// (or the survey could not tell), else `"TODO: …"` for each command the checklist uses, since
/// only a person knows how the service is stopped and started there.
fn service_commands(w: &mut String, v: &Svc, unit: &str, init: &str) {
    // A database server is neither stopped on the old host nor started by the checklist on
    // the new one (which runs before the migration: the pre-flight asks it).
    let stopped = !v.sshd && !v.database_server && !v.passive;
    let checked = !v.sshd && !v.passive && v.tcp_ports.is_empty();
    if init.is_empty() || init == "systemd" {
        let _ = writeln!(w, "stop = {}", toml_str(&format!("systemctl stop {unit}")));
        let _ = writeln!(
            w,
            "start = {}",
            toml_str(&format!("systemctl start {unit}"))
        );
        if v.tcp_ports.is_empty() {
            let _ = writeln!(
                w,
                "health = {}",
                toml_str(&format!("systemctl is-active --quiet {unit}"))
            );
        }
        return;
    }
    let _ = writeln!(
        w,
        "# systemd does not run on the surveyed host (init: {}): systemctl cannot stop or start {}",
        shown(init),
        shown(unit)
    );
    for (key, used, what) in [
        ("stop", stopped, "stopped on the old server"),
        ("start", stopped, "started on the new server"),
        (
            "health",
            checked,
            "found running on the new server (exits 0)",
        ),
    ] {
        if used {
            let _ = writeln!(
                w,
                "{key} = {}",
                toml_str(&format!("TODO: the command by which {unit} is {what}"))
            );
        }
    }
}

/// The steps that verify a service's configuration on the new server: `nginx -T`, a
/// PostgreSQL server's settings, else each configuration file; a manual check where the survey
/// found none.
fn config_steps(steps: &mut Steps, v: &Svc, dbs: &[(&Svc, Vec<String>)]) {
    let title = format!("Verify the configuration of {} carried over", v.id);
    let verifies = ("verifies", toml_list([v.id.as_str()]));
    if v.s.kind.as_deref() == Some("nginx") {
        steps.add(
            &format!("config-{}", v.id),
            &title,
            "verify-config",
            &[
                ("old", "\"old:\"".into()),
                ("new", "\"new:\"".into()),
                ("command", toml_str(&nginx_dump(v.s))),
                verifies,
            ],
        );
        return;
    }
    let pg =
        v.s.databases
            .iter()
            .position(|d| d.engine == "postgresql")
            .and_then(|_| dbs.iter().find(|(s, _)| s.id == v.id))
            .and_then(|(_, ids)| ids.first());
    if let Some(db) = pg {
        steps.add(
            &format!("config-{}", v.id),
            &title,
            "verify-config",
            &[("database", toml_str(db)), verifies],
        );
        return;
    }
    let files: Vec<&ConfigFile> =
        v.s.config
            .iter()
            .filter(|c| c.path.starts_with('/'))
            .collect();
    if files.is_empty() {
        steps.add(
            &format!("config-{}", v.id),
            &title,
            "manual",
            &[
                (
                    "text",
                    toml_str(&format!(
                        "Check that {} is configured on the new server as on the old one (the survey found no configuration file of it).",
                        v.id
                    )),
                ),
                verifies,
            ],
        );
        return;
    }
    for (i, c) in files.iter().enumerate() {
        let mut keys = vec![
            ("old", toml_str(&format!("old:{}", c.path))),
            ("new", toml_str(&format!("new:{}", c.path))),
        ];
        if i == 0 {
            keys.push(verifies.clone());
        }
        steps.add(&format!("config-{}", v.id), &title, "verify-config", &keys);
    }
}

#[cfg(test)]
mod tests;
