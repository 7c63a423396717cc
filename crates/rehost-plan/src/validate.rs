//! Validation: what makes a plan unusable as written. Duplicate ids, references to hosts, data
//! sets, services, names or steps that do not exist, and a checklist whose steps depend on
//! anything but earlier steps.

use crate::diag::Diagnostic;
use crate::kinds::Reference;
use crate::model::*;
use crate::suggest::closest;
use std::collections::HashMap;

pub(crate) fn validate(plan: &Plan) -> Vec<Diagnostic> {
    let mut v = Vec::new();
    let hosts: Vec<&str> = plan.hosts.iter().map(|h| h.name.as_str()).collect();
    if plan.hosts.is_empty() {
        v.push(
            Diagnostic::error("missing-key", Some(plan.migration.span.clone()), "the plan declares no hosts")
                .with_help("add [hosts.old] and [hosts.new], each with `local = true` or `ssh = \"user@host\"`"),
        );
    }

    // Unique ids, per kind of declaration.
    dup(
        &mut v,
        "data set",
        plan.data.iter().map(|d| (d.id.as_str(), d.span.clone())),
    );
    dup(
        &mut v,
        "database",
        plan.databases
            .iter()
            .map(|d| (d.id.as_str(), d.span.clone())),
    );
    dup(
        &mut v,
        "service",
        plan.services
            .iter()
            .map(|d| (d.id.as_str(), d.span.clone())),
    );
    dup(
        &mut v,
        "key",
        plan.keys.iter().map(|d| (d.id.as_str(), d.span.clone())),
    );
    dup(
        &mut v,
        "name",
        plan.names.iter().map(|d| (d.id.as_str(), d.span.clone())),
    );
    dup(
        &mut v,
        "client",
        plan.clients.iter().map(|d| (d.id.as_str(), d.span.clone())),
    );

    let host_ref = |v: &mut Vec<Diagnostic>, name: &str, span: &Span, what: &str| {
        if !hosts.contains(&name) {
            v.push(unknown("host", name, span, what, &hosts));
        }
    };
    for d in &plan.data {
        host_ref(
            &mut v,
            &d.from.host,
            &d.span,
            &format!("data set `{}`", d.id),
        );
        host_ref(&mut v, &d.to.host, &d.span, &format!("data set `{}`", d.id));
        if let Some(by) = &d.created_by {
            let steps: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
            if !steps.contains(&by.as_str()) {
                v.push(unknown(
                    "step",
                    by,
                    &d.span,
                    &format!("data set `{}` (created_by)", d.id),
                    &steps,
                ));
            }
        }
    }
    for d in &plan.databases {
        host_ref(&mut v, &d.from, &d.span, &format!("database `{}`", d.id));
        host_ref(&mut v, &d.to, &d.span, &format!("database `{}`", d.id));
    }
    for s in &plan.services {
        host_ref(&mut v, &s.host, &s.span, &format!("service `{}`", s.id));
        if let Some(new) = &s.new_host {
            host_ref(&mut v, new, &s.span, &format!("service `{}`", s.id));
        }
    }
    for k in &plan.keys {
        host_ref(&mut v, &k.host, &k.span, &format!("key `{}`", k.id));
    }
    // Clients are often machines outside the plan, so their host names are not checked.

    // A name clients resolve from their own hosts files: which clients, from what to what.
    let client_ids: Vec<&str> = plan.clients.iter().map(|c| c.id.as_str()).collect();
    for n in &plan.names {
        for c in &n.clients {
            if !client_ids.contains(&c.as_str()) {
                v.push(unknown(
                    "client",
                    c,
                    &n.span,
                    &format!("name `{}`", n.id),
                    &client_ids,
                ));
            }
        }
        if n.via != NameVia::HostsFile {
            continue;
        }
        if n.clients.is_empty() {
            v.push(
                Diagnostic::error(
                    "missing-key",
                    Some(n.span.clone()),
                    format!(
                        "name `{}` is resolved from hosts files (via = \"hosts-file\") but names no clients whose files hold it",
                        n.id
                    ),
                )
                .with_help("add clients = [\"ID\"] ([[clients]] entries with their hosts and files) to the [[names]] entry"),
            );
        }
        for (key, val) in [("old", &n.old), ("new", &n.new)] {
            if val.is_none() {
                v.push(
                    Diagnostic::error(
                        "missing-key",
                        Some(n.span.clone()),
                        format!(
                            "name `{}` is resolved from hosts files, and each client's file is changed from `old` to `new`: the entry has no `{key}`",
                            n.id
                        ),
                    )
                    .with_help("give old = \"192.0.2.10\" and new = \"203.0.113.20\""),
                );
            }
        }
    }

    // Environments stand in for every production host, and never with a production host.
    for env in &plan.environments {
        for h in &env.hosts {
            if !hosts.contains(&h.name.as_str()) {
                v.push(unknown(
                    "host",
                    &h.name,
                    &h.span,
                    &format!("environment `{}`", env.name),
                    &hosts,
                ));
            }
            if let Some(prod) = plan
                .hosts
                .iter()
                .find(|p| same_machine(&p.target, &h.target))
            {
                v.push(
                    Diagnostic::error(
                        "rehearsal-touches-production",
                        Some(h.span.clone()),
                        format!(
                            "environment `{}` maps host `{}` to {}, which is production host `{}`",
                            env.name,
                            h.name,
                            h.target.describe(),
                            prod.name
                        ),
                    )
                    .with_help("a rehearsal must never touch production: give the test environment its own hosts"),
                );
            }
        }
        for p in &plan.hosts {
            if !env.hosts.iter().any(|h| h.name == p.name) {
                v.push(
                    Diagnostic::error(
                        "environment-incomplete",
                        Some(env.span.clone()),
                        format!(
                            "environment `{}` does not say which host stands in for `{}`",
                            env.name, p.name
                        ),
                    )
                    .with_help(format!(
                        "add `{} = {{ local = true, root = \"...\" }}` to [environments.{}]",
                        p.name, env.name
                    )),
                );
            }
        }
    }

    let data_ids: Vec<&str> = plan.data.iter().map(|d| d.id.as_str()).collect();
    let db_ids: Vec<&str> = plan.databases.iter().map(|d| d.id.as_str()).collect();
    let key_ids: Vec<&str> = plan.keys.iter().map(|k| k.id.as_str()).collect();
    for env in &plan.environments {
        for o in &env.databases {
            if !db_ids.contains(&o.id.as_str()) {
                v.push(unknown(
                    "database",
                    &o.id,
                    &o.span,
                    &format!("environment `{}`", env.name),
                    &db_ids,
                ));
            }
        }
    }
    loads(&mut v, plan, &hosts, &db_ids);
    let svc_ids: Vec<&str> = plan.services.iter().map(|d| d.id.as_str()).collect();
    let name_ids: Vec<&str> = plan.names.iter().map(|d| d.id.as_str()).collect();
    let client_ids: Vec<&str> = plan.clients.iter().map(|d| d.id.as_str()).collect();
    let verifiable: Vec<&str> = plan
        .data
        .iter()
        .map(|d| d.id.as_str())
        .chain(plan.databases.iter().map(|d| d.id.as_str()))
        .chain(plan.keys.iter().map(|d| d.id.as_str()))
        .collect();
    let verifiable_or_service: Vec<&str> =
        verifiable.iter().chain(svc_ids.iter()).copied().collect();
    let step_pos: HashMap<&str, usize> = plan
        .steps
        .iter()
        .map(|s| (s.id.as_str(), s.index))
        .collect();
    let step_ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();

    for s in &plan.steps {
        let what = format!("step `{}`", s.id);
        if let Some(h) = &s.host {
            host_ref(&mut v, h, &s.span, &what);
        }
        if s.rollback.is_some() && s.host.is_none() {
            v.push(
                Diagnostic::error(
                    "missing-key",
                    Some(s.span.clone()),
                    format!("{what} has a rollback command but no `host` to run it on"),
                )
                .with_help(format!("add host = \"...\" to step `{}`", s.id)),
            );
        }
        // What the step's kind refers to (kinds/*.rs says which).
        let span = s.effect_spans.last().cloned().unwrap_or(s.span.clone());
        for r in crate::kinds::references(&s.kind) {
            match r {
                Reference::Host(h) => host_ref(&mut v, h, &span, &what),
                Reference::DataSet(data) if !data_ids.contains(&data) => {
                    v.push(unknown("data set", data, &span, &what, &data_ids));
                }
                Reference::Database(database) if !db_ids.contains(&database) => {
                    v.push(unknown("database", database, &s.span, &what, &db_ids));
                }
                Reference::Key(key) if !key_ids.contains(&key) => {
                    v.push(unknown("key", key, &span, &what, &key_ids));
                }
                Reference::Name { id, needs } => match plan.name_decl(id) {
                    None => {
                        let ids: Vec<&str> = plan.names.iter().map(|n| n.id.as_str()).collect();
                        v.push(unknown("name", id, &s.span, &what, &ids));
                    }
                    Some(n) => dns_name(&mut v, n, needs, &s.span, &what),
                },
                Reference::Service {
                    id: svc,
                    needs: key,
                } => match plan.services.iter().find(|d| d.id == svc) {
                    None => v.push(unknown("service", svc, &span, &what, &svc_ids)),
                    Some(d) => {
                        let has = match key {
                            "stop" => d.stop.is_some(),
                            "start" => d.start.is_some(),
                            "ports" => !d.ports.is_empty(),
                            "connections" => !d.ports.is_empty() || !d.sockets.is_empty(),
                            _ => d.health.is_some() || !d.ports.is_empty(),
                        };
                        if !has {
                            v.push(
                                    Diagnostic::error(
                                        "missing-key",
                                        Some(span.clone()),
                                        format!(
                                            "{what} needs service `{svc}` to declare its `{}`{}",
                                            if key == "connections" { "ports" } else { key },
                                            match key {
                                                "health" => " command or its `ports`",
                                                "ports" => "",
                                                "connections" => " or its `sockets`",
                                                _ => " command",
                                            }
                                        ),
                                    )
                                    .with_help(if key == "ports" || key == "connections" {
                                        format!("add ports = [PORT, ...] to [[services]] `{svc}`: the ports its clients connect to{}", if key == "connections" { " (or sockets = [\"/PATH\"]: its listening Unix sockets)" } else { "" })
                                    } else {
                                        format!(
                                            "add {key} = \"...\" to [[services]] `{svc}`, or use a `run` step"
                                        )
                                    }),
                                );
                        }
                    }
                },
                _ => {}
            }
        }
        // Effects implied by the kind were checked with the kind above.
        let implied = crate::kinds::implied_effects(&s.kind);
        for e in s.effects.iter().filter(|e| !implied.contains(e)) {
            let (kind, id, ids) = match e {
                // Where the backup is kept: the plan's word, nothing to look up.
                Effect::BacksUp(_) => continue,
                Effect::Stops(id) | Effect::Starts(id) | Effect::Drains(id) => {
                    ("service", id, &svc_ids)
                }
                // Keys and databases are carried by steps too (a `run` or `manual` step).
                Effect::Transfers(id) => ("data set, database or key", id, &verifiable),
                // A service's configuration is verified too (`verify-config`, `config-unverified`).
                Effect::Verifies(id) => (
                    "data set, database, key or service",
                    id,
                    &verifiable_or_service,
                ),
                Effect::LowersTtl(id) | Effect::Switches(id) => ("name", id, &name_ids),
                Effect::Reconfigures(id) => ("client", id, &client_ids),
            };
            if !ids.contains(&id.as_str()) {
                v.push(unknown(kind, id, &s.effect_span(e), &what, ids));
            }
        }
        // Each step depends only on the steps before it (M 2.319's checklist rule).
        for dep in &s.after {
            match step_pos.get(dep.value.as_str()) {
                None => v.push(unknown("step", &dep.value, &dep.span, &what, &step_ids)),
                Some(&i) if i == s.index => v.push(
                    Diagnostic::error("self-dependency", Some(dep.span.clone()), format!("{what} depends on itself"))
                        .with_help("remove it from its own `after` list"),
                ),
                Some(&i) if i > s.index => v.push(
                    Diagnostic::error(
                        "forward-dependency",
                        Some(dep.span.clone()),
                        format!(
                            "step `{}` (#{}) depends on step `{}` (#{}), which comes after it",
                            s.id,
                            s.index + 1,
                            dep.value,
                            i + 1
                        ),
                    )
                    .with_help(format!(
                        "each step may depend only on earlier steps: move `{}` before `{}`, or drop the dependency",
                        dep.value, s.id
                    )),
                ),
                Some(_) => {}
            }
        }
    }
    if let Some(pnr) = &plan.migration.point_of_no_return
        && !step_ids.contains(&pnr.value.as_str())
    {
        v.push(unknown(
            "step",
            &pnr.value,
            &pnr.span,
            "point_of_no_return",
            &step_ids,
        ));
    }
    v
}

/// Two host targets that reach the same machine and directory.
fn same_machine(a: &HostTarget, b: &HostTarget) -> bool {
    match (a, b) {
        (HostTarget::Local { root: ra }, HostTarget::Local { root: rb }) => {
            let norm = |r: &Option<String>| {
                r.as_deref()
                    .map(|s| s.trim_end_matches('/').to_owned())
                    .unwrap_or_default()
            };
            norm(ra) == norm(rb)
        }
        (
            HostTarget::Ssh {
                destination: da,
                port: pa,
                root: ra,
                ..
            },
            HostTarget::Ssh {
                destination: db,
                port: pb,
                root: rb,
                ..
            },
        ) => {
            let host = |d: &str| d.rsplit('@').next().unwrap_or(d).to_ascii_lowercase();
            let root =
                |r: &Option<String>| r.as_deref().unwrap_or("/").trim_end_matches('/').to_owned();
            host(da) == host(db) && pa.unwrap_or(22) == pb.unwrap_or(22) && root(ra) == root(rb)
        }
        _ => false,
    }
}

fn dup<'a>(v: &mut Vec<Diagnostic>, what: &str, items: impl Iterator<Item = (&'a str, Span)>) {
    let mut seen: HashMap<&str, Span> = HashMap::new();
    for (id, span) in items {
        if seen.contains_key(id) {
            v.push(
                Diagnostic::error(
                    "duplicate-id",
                    Some(span),
                    format!("{what} id `{id}` is used twice"),
                )
                .with_help(format!("give each {what} its own id")),
            );
        } else {
            seen.insert(id, span);
        }
    }
}

/// An environment's `[[environments.NAME.load]]` entries: unique ids, steps the plan has, in
/// order (stopped no earlier than started), a plan host, a PostgreSQL database.
fn loads(v: &mut Vec<Diagnostic>, plan: &Plan, hosts: &[&str], db_ids: &[&str]) {
    let step_ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    for env in &plan.environments {
        dup(
            v,
            &format!("environment `{}` load", env.name),
            env.loads.iter().map(|l| (l.id.as_str(), l.span.clone())),
        );
        for l in &env.loads {
            let what = format!("load `{}` of environment `{}`", l.id, env.name);
            let start = plan.step_index(&l.start_before);
            let stop = plan.step_index(&l.stop_after);
            if start.is_none() {
                v.push(unknown(
                    "step",
                    &l.start_before,
                    &l.start_span,
                    &format!("{what} (start_before)"),
                    &step_ids,
                ));
            }
            if stop.is_none() {
                v.push(unknown(
                    "step",
                    &l.stop_after,
                    &l.stop_span,
                    &format!("{what} (stop_after)"),
                    &step_ids,
                ));
            }
            if let (Some(a), Some(b)) = (start, stop)
                && b < a
            {
                v.push(
                    Diagnostic::error(
                        "load-order",
                        Some(l.stop_span.clone()),
                        format!(
                            "{what} stops after step `{}`, which comes before `{}`, the step it starts before",
                            l.stop_after, l.start_before
                        ),
                    )
                    .with_help("name in `stop_after` a step at or after `start_before`"),
                );
            }
            match &l.what {
                LoadKind::Command { host: Some(h), .. } if !hosts.contains(&h.as_str()) => {
                    v.push(unknown("host", h, &l.span, &what, hosts));
                }
                LoadKind::Command { .. } => {}
                LoadKind::Writes { engine, database } => {
                    if Engine::from_plan(engine) != Some(Engine::Postgres) {
                        v.push(
                            Diagnostic::error(
                                "value",
                                Some(l.span.clone()),
                                format!("{what}: rehost has write loads for PostgreSQL and HTTP only, not `{engine}`"),
                            )
                            .with_help("write writes = \"postgresql\" (with `database`) or writes = \"http\" (with `service`), or give a `command` that writes (and logs what was acknowledged) yourself"),
                        );
                    }
                    match plan.database(database) {
                        None => v.push(unknown("database", database, &l.span, &what, db_ids)),
                        Some(db) if db.kind != Some(Engine::Postgres) => v.push(
                            Diagnostic::error(
                                "value",
                                Some(l.span.clone()),
                                format!(
                                    "{what} writes to database `{database}`, a {} database: the write load writes to PostgreSQL only",
                                    db.engine
                                ),
                            )
                            .with_help("name a [[databases]] entry with engine = \"postgresql\""),
                        ),
                        Some(_) => {}
                    }
                }
                LoadKind::HttpWrites { service, port, .. } => match plan.service(service) {
                    None => {
                        let ids: Vec<&str> = plan.services.iter().map(|s| s.id.as_str()).collect();
                        v.push(unknown("service", service, &l.span, &what, &ids));
                    }
                    Some(s) => {
                        if s.new_host.is_none() {
                            v.push(
                                Diagnostic::error(
                                    "value",
                                    Some(l.span.clone()),
                                    format!("{what} writes to service `{service}`, which has no `new_host`: the acknowledged writes are looked for there"),
                                )
                                .with_help(format!("add new_host = \"HOST\" to [[services]] `{service}`")),
                            );
                        }
                        if s.write_port(*port).is_none() {
                            v.push(
                                Diagnostic::error(
                                    "value",
                                    Some(l.span.clone()),
                                    format!("{what}: service `{service}` has no probe port and not exactly one of `ports`, so the port to write to is not known"),
                                )
                                .with_help("give the load `port = N`"),
                            );
                        }
                    }
                },
            }
        }
    }
}

fn unknown(kind: &str, name: &str, span: &Span, what: &str, known: &[&str]) -> Diagnostic {
    let help = match closest(name, known.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None if known.is_empty() => format!("the plan declares no {kind}s"),
        None => format!("known: {}", known.join(", ")),
    };
    Diagnostic::error(
        "unknown-reference",
        Some(span.clone()),
        format!("{what} names {kind} `{name}`, which the plan does not declare"),
    )
    .with_help(help)
}

/// A `[[names]]` entry a DNS step asks about: a type rehost asks for, a `new` value of that
/// type, and servers given as addresses (a server's name would be resolved by a resolver,
/// whose answer is what is checked).
fn dns_name(v: &mut Vec<Diagnostic>, n: &NameDecl, needs: &str, span: &Span, what: &str) {
    let err = |msg: String, help: &str| {
        Diagnostic::error("value", Some(n.span.clone()), msg).with_help(help.to_string())
    };
    // A `scan-refs` step (`needs` "old") searches files for the old value: hosts files too.
    if n.via == NameVia::HostsFile && needs != "old" {
        v.push(
            Diagnostic::error(
                "value",
                Some(span.clone()),
                format!(
                    "{what} asks DNS about name `{}`, which clients resolve from their hosts files (via = \"hosts-file\"): no DNS server answers for them",
                    n.id
                ),
            )
            .with_help(format!(
                "change each client's file by hand (a manual step with reconfigures = [CLIENT] per client; `rehost check` suggests them) and check with a scan-refs step: names = [\"{}\"], require_none = true",
                n.id
            )),
        );
        return;
    }
    let record = n.record.to_ascii_uppercase();
    let new_ok = |x: &str| match record.as_str() {
        "A" => x.parse::<std::net::Ipv4Addr>().is_ok(),
        "AAAA" => x.parse::<std::net::Ipv6Addr>().is_ok(),
        _ => !x.is_empty(),
    };
    if !["A", "AAAA", "CNAME"].contains(&record.as_str()) {
        v.push(err(
            format!(
                "{what} asks DNS for name `{}`, of type `{}`: rehost asks for A, AAAA or CNAME",
                n.id, n.record
            ),
            "set type = \"A\", \"AAAA\" or \"CNAME\"",
        ));
    }
    if needs == "lowered_ttl" {
        for (key, val) in [("ttl", n.ttl), ("lowered_ttl", n.lowered_ttl)] {
            if val.is_none() {
                v.push(err(
                    format!("{what} checks the lowered TTL of name `{}`, but the entry has no `{key}`", n.id),
                    "give ttl (the TTL before it was lowered, which caches may hold) and lowered_ttl",
                ));
            }
        }
        if n.authoritative.is_empty() {
            v.push(
                Diagnostic::error(
                    "missing-key",
                    Some(span.clone()),
                    format!("{what} asks the authoritative servers of name `{}`, which lists none", n.id),
                )
                .with_help("add authoritative = [\"IP[:PORT]\"] (the zone's servers) to the [[names]] entry".to_string()),
            );
        }
    }
    // `switch` (a `dns-switch` step): the old value is what the update replaces; `old` (a
    // `scan-refs` step): the old value is what is searched for.
    if needs == "switch" || needs == "old" {
        match &n.old {
            None => v.push(err(
                format!(
                    "{what} needs the old value of name `{}`, but the entry has no `old`",
                    n.id
                ),
                "add old = \"192.0.2.10\" (the value it has now) to the [[names]] entry",
            )),
            Some(x) if !new_ok(x) => v.push(err(
                format!(
                    "name `{}`: old = `{}` is not a value of type {}",
                    n.id,
                    crate::escape_control(x),
                    n.record
                ),
                "an A record's value is an IPv4 address, an AAAA record's an IPv6 address",
            )),
            Some(_) => {}
        }
    }
    match &n.new {
        None if needs != "new" && needs != "switch" => {}
        None => v.push(err(
            format!(
                "{what} waits for name `{}` to serve its new value, but the entry has no `new`",
                n.id
            ),
            "add new = \"203.0.113.20\" (the value after the switch) to the [[names]] entry",
        )),
        Some(x) if !new_ok(x) => v.push(err(
            format!(
                "name `{}`: new = `{}` is not a value of type {}",
                n.id,
                crate::escape_control(x),
                n.record
            ),
            "an A record's value is an IPv4 address, an AAAA record's an IPv6 address",
        )),
        Some(_) => {}
    }
    // A switch asks the step's own `server`, not the entry's.
    if n.resolvers.is_empty() && n.authoritative.is_empty() && needs != "switch" && needs != "old" {
        v.push(
            Diagnostic::error(
                "missing-key",
                Some(span.clone()),
                format!(
                    "{what} asks the servers of name `{}`, which lists none",
                    n.id
                ),
            )
            .with_help(
                "add authoritative = [\"IP[:PORT]\"] (the zone's servers) and resolvers = \
                 [\"IP[:PORT]\"] (the ones clients use) to the [[names]] entry"
                    .to_string(),
            ),
        );
    }
    for s in n.resolvers.iter().chain(&n.authoritative) {
        let ok = s.parse::<std::net::SocketAddr>().is_ok() || s.parse::<std::net::IpAddr>().is_ok();
        if !ok {
            v.push(err(
                format!("name `{}`: server `{}` is not an address", n.id, crate::escape_control(s)),
                "give servers as IP, IP:PORT or [IPv6]:PORT: a name would be resolved by a resolver, whose answer is what is checked",
            ));
        }
    }
}
