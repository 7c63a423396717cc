//! `rehost dns check NAME`: ask each given server directly what it serves for a name
//! (rehost-dns), and say which serve the expected values, which do not, and which could not be
//! asked. Every string from the network is escaped before it reaches the terminal.

use crate::cli::DnsCheckArgs;
use crate::exit;
use rehost_dns::{Answer, Asked, Kind, Role, Server};
use rehost_plan::escape_control as esc;
use std::time::Duration;

pub fn check(args: &DnsCheckArgs) -> i32 {
    match prepare(args) {
        Ok((name, kind, expect, mut servers, timeout)) => {
            // No authoritative server given: the zone's own, found through its NS records.
            let mut unasked: Vec<Asked> = Vec::new();
            let discovered = if args.authoritative.is_empty() {
                match discover(args, &name, &servers, timeout) {
                    Ok(d) => {
                        let found: Vec<Server> = d
                            .addrs()
                            .into_iter()
                            .map(|addr| Server {
                                addr,
                                role: Role::Authoritative,
                            })
                            .collect();
                        servers.splice(0..0, found);
                        for s in d.servers.iter().filter(|s| s.addrs.is_empty()) {
                            unasked.push(Asked {
                                server: s.name.clone(),
                                role: Role::Authoritative,
                                answer: Answer::NotAnswered {
                                    reason: format!(
                                        "no address was found for it through {}",
                                        d.via
                                    ),
                                },
                            });
                        }
                        Some(Ok(d))
                    }
                    Err(e) => {
                        unasked.push(Asked {
                            server: "(the zone's NS)".into(),
                            role: Role::Authoritative,
                            answer: Answer::NotAnswered {
                                reason: format!(
                                    "the zone's authoritative servers could not be found: {e}; \
                                     give them with --authoritative IP[:PORT]"
                                ),
                            },
                        });
                        Some(Err(e))
                    }
                }
            } else {
                None
            };
            let mut asked = rehost_dns::ask_all(&servers, &name, kind, timeout);
            asked.extend(unasked);
            let code = verdict(&asked, &expect);
            let written = if args.json {
                let v = serde_json::json!({
                    "name": name.to_string(),
                    "type": kind.name(),
                    "expect": expect,
                    "discovered": match &discovered {
                        Some(Ok(d)) => serde_json::to_value(d).unwrap_or_default(),
                        Some(Err(e)) => serde_json::json!({ "error": e }),
                        None => serde_json::Value::Null,
                    },
                    "servers": asked,
                    "result": match code {
                        exit::OK => "agree",
                        exit::FINDINGS => "differ",
                        _ => "not_asked",
                    },
                });
                println!("{v}");
                Ok(())
            } else {
                human(
                    &name.to_string(),
                    kind,
                    &expect,
                    discovered.as_ref(),
                    &asked,
                    code,
                )
            };
            match written {
                Ok(()) => code,
                Err(e) => {
                    eprintln!("rehost: could not write the answers: {e}");
                    exit::TROUBLE
                }
            }
        }
        Err(e) => {
            eprintln!("rehost: dns check: {}", esc(&e));
            exit::TROUBLE
        }
    }
}

type Prepared = (rehost_dns::Name, Kind, Vec<String>, Vec<Server>, Duration);

fn prepare(args: &DnsCheckArgs) -> Result<Prepared, String> {
    let kind = Kind::parse(&args.rtype)?;
    let name = rehost_dns::fqdn(&args.name)?;
    let mut expect = args
        .expect
        .iter()
        .map(|e| kind.normalize(e))
        .collect::<Result<Vec<_>, _>>()?;
    expect.sort();
    expect.dedup();
    let mut servers = Vec::new();
    for (list, role) in [
        (&args.authoritative, Role::Authoritative),
        (&args.resolver, Role::Resolver),
    ] {
        for s in list {
            servers.push(Server {
                addr: rehost_dns::parse_server(s)?,
                role,
            });
        }
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 300.0) {
        return Err(format!(
            "--timeout {} is not a number of seconds between 0 and 300",
            args.timeout
        ));
    }
    Ok((
        name,
        kind,
        expect,
        servers,
        Duration::from_secs_f64(args.timeout),
    ))
}

/// The zone's authoritative servers through its NS records, asked of the given resolvers, else
/// of /etc/resolv.conf's name servers.
fn discover(
    args: &DnsCheckArgs,
    name: &rehost_dns::Name,
    resolvers: &[Server],
    timeout: Duration,
) -> Result<rehost_dns::Discovered, String> {
    let via: Vec<std::net::SocketAddr> = if args.resolver.is_empty() {
        let v = rehost_dns::system_resolvers()?;
        if v.is_empty() {
            return Err("/etc/resolv.conf names no name server to ask".into());
        }
        v
    } else {
        resolvers.iter().map(|s| s.addr).collect()
    };
    rehost_dns::discover(name, &via, timeout)
}

/// 2 when any server could not be asked; else 1 when any does not serve the expected values
/// (without any expected: when the answers differ); else 0.
fn verdict(asked: &[Asked], expect: &[String]) -> i32 {
    if asked
        .iter()
        .any(|a| matches!(a.answer, Answer::NotAnswered { .. }))
    {
        return exit::TROUBLE;
    }
    let agree = if expect.is_empty() {
        let first = asked.first().map(values);
        asked.iter().all(|a| Some(values(a)) == first)
    } else {
        asked.iter().all(|a| a.answer.serves(expect) == Some(true))
    };
    if agree { exit::OK } else { exit::FINDINGS }
}

fn values(a: &Asked) -> (&str, &[String]) {
    match &a.answer {
        Answer::Answered { rcode, values, .. } => (rcode, values),
        Answer::NotAnswered { .. } => ("", &[]),
    }
}

fn human(
    name: &str,
    kind: Kind,
    expect: &[String],
    discovered: Option<&Result<rehost_dns::Discovered, String>>,
    asked: &[Asked],
    code: i32,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = anstream::stdout().lock();
    if let Some(Ok(d)) = discovered {
        let list: Vec<String> = d
            .servers
            .iter()
            .map(|s| {
                if s.addrs.is_empty() {
                    format!("{} (no address)", esc(&s.name))
                } else {
                    let a: Vec<String> = s.addrs.iter().map(|a| a.to_string()).collect();
                    format!("{} ({}, {})", esc(&s.name), a.join(", "), s.source)
                }
            })
            .collect();
        writeln!(
            out,
            "zone {}: authoritative servers from its NS records, asked of {}: {}{}{}",
            esc(&d.zone),
            d.via,
            list.join("; "),
            if d.not_taken > 0 {
                format!("; {} more NS names not asked", d.not_taken)
            } else {
                String::new()
            },
            d.primary
                .as_deref()
                .map(|p| format!("; primary (SOA) {}", esc(p)))
                .unwrap_or_default()
        )?;
    }
    if expect.is_empty() {
        writeln!(out, "{} {}", esc(name), kind.name())?;
    } else {
        writeln!(
            out,
            "{} {}, expecting {}",
            esc(name),
            kind.name(),
            esc(&expect.join(", "))
        )?;
    }
    for a in asked {
        let who = format!("{:<13} {:<21}", a.role.name(), a.server);
        match &a.answer {
            Answer::NotAnswered { reason } => {
                writeln!(out, "  {who} NOT ASKED  no answer: {}", esc(reason))?;
            }
            Answer::Answered {
                rcode,
                values,
                ttl,
                negative_ttl,
                authoritative,
                tcp,
            } => {
                let state = match a.answer.serves(expect) {
                    _ if expect.is_empty() => "answers",
                    Some(true) => "serves",
                    _ => "DIFFERS",
                };
                let shown = if values.is_empty() {
                    format!("no {} record ({rcode})", kind.name())
                } else {
                    esc(&values.join(", "))
                };
                let mut notes = Vec::new();
                if let Some(t) = ttl {
                    notes.push(format!("ttl {t}"));
                }
                if let Some(n) = negative_ttl {
                    notes.push(format!("negative ttl {n}"));
                }
                if *tcp {
                    notes.push("over TCP (UDP truncated)".into());
                }
                if a.role == Role::Authoritative && !authoritative {
                    notes.push("not authoritative for it (no AA bit)".into());
                }
                let notes = if notes.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", notes.join(", "))
                };
                writeln!(out, "  {who} {state:<10} {shown}{notes}")?;
            }
        }
    }
    let n = asked.len();
    let line = match code {
        exit::OK if expect.is_empty() => format!("all {n} servers give the same answer"),
        exit::OK => format!("all {n} servers serve the expected values"),
        exit::FINDINGS if expect.is_empty() => "the servers' answers differ".to_string(),
        exit::FINDINGS => {
            let lag = asked
                .iter()
                .filter(|a| a.answer.serves(expect) == Some(false))
                .count();
            format!("{lag} of {n} servers do not serve the expected values")
        }
        _ => {
            let silent = asked
                .iter()
                .filter(|a| matches!(a.answer, Answer::NotAnswered { .. }))
                .count();
            format!("{silent} of {n} servers could not be asked: nothing is proved for them")
        }
    };
    writeln!(out, "{line}")
}

/// `rehost dns switch NAME`: one signed DNS UPDATE at the zone's primary (rehost-dns `update`).
pub fn switch(args: &crate::cli::DnsSwitchArgs) -> i32 {
    match do_switch(args) {
        Ok((change, zone, server, key_name, outcome)) => {
            if args.json {
                let v = serde_json::json!({
                    "name": change.name.to_string(),
                    "type": change.kind.name(),
                    "zone": zone.to_string(),
                    "server": server.to_string(),
                    "key": key_name,
                    "from": change.old,
                    "to": change.new,
                    "ttl": change.ttl,
                    "result": outcome,
                });
                println!("{v}");
            } else {
                let what = format!("{} {}", esc(&change.name.to_string()), change.kind.name());
                match outcome {
                    rehost_dns::update::Switched::AlreadyNew => println!(
                        "{what}: {server} serves {} already; nothing sent",
                        change.new.join(", ")
                    ),
                    rehost_dns::update::Switched::Switched { answer_signed } => println!(
                        "{what}: switched from {} to {} (TTL {} s) at {server}, zone {}; it \
                         answered the update {}and now serves exactly the new value. Other \
                         servers and caches are not checked here: `rehost dns check`, or a \
                         `dns-propagated` step",
                        change.old.join(", "),
                        change.new.join(", "),
                        change.ttl,
                        esc(&zone.to_string()),
                        if answer_signed {
                            "with a valid signature of the key "
                        } else {
                            "without a valid signature (not trusted: its answer to a question decided) "
                        },
                    ),
                }
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("rehost: dns switch: {}", esc(&e));
            exit::TROUBLE
        }
    }
}

type SwitchDone = (
    rehost_dns::update::Change,
    rehost_dns::Name,
    std::net::SocketAddr,
    String,
    rehost_dns::update::Switched,
);

fn do_switch(args: &crate::cli::DnsSwitchArgs) -> Result<SwitchDone, String> {
    let kind = Kind::parse(&args.rtype)?;
    let name = rehost_dns::fqdn(&args.name)?;
    let values = |v: &[String]| -> Result<Vec<String>, String> {
        let mut v = v
            .iter()
            .map(|e| kind.normalize(e))
            .collect::<Result<Vec<_>, _>>()?;
        v.sort();
        v.dedup();
        Ok(v)
    };
    let change = rehost_dns::update::Change {
        name: name.clone(),
        kind,
        old: values(&args.from)?,
        new: values(&args.to)?,
        ttl: args.ttl,
    };
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or("--timeout must be a positive number of seconds")?;
    let server = match &args.server {
        Some(s) => rehost_dns::parse_server(s)?,
        None => primary(args, &name, timeout)?,
    };
    let key = rehost_dns::update::read_key_file(&args.key_file)?;
    let zone = match &args.zone {
        Some(z) => rehost_dns::fqdn(z)?,
        None => rehost_dns::update::zone_of(server, &name, timeout)?,
    };
    let outcome = rehost_dns::update::switch(server, &zone, &change, &key, timeout)?;
    Ok((change, zone, server, key.name.to_string(), outcome))
}

/// The zone's primary as its SOA names it (MNAME), found through the given resolvers (else
/// /etc/resolv.conf's), at port 53; said on stderr so the operator sees where the update goes.
fn primary(
    args: &crate::cli::DnsSwitchArgs,
    name: &rehost_dns::Name,
    timeout: Duration,
) -> Result<std::net::SocketAddr, String> {
    let via = if args.resolver.is_empty() {
        rehost_dns::system_resolvers()?
    } else {
        args.resolver
            .iter()
            .map(|r| rehost_dns::parse_server(r))
            .collect::<Result<Vec<_>, _>>()?
    };
    if via.is_empty() {
        return Err(
            "no --server given and no resolver to find the zone's primary through: give \
             --server IP[:PORT] or --resolver IP[:PORT]"
                .into(),
        );
    }
    let d = rehost_dns::discover(name, &via, timeout).map_err(|e| {
        format!("the zone's primary could not be found ({e}); give it with --server IP[:PORT]")
    })?;
    let Some(mname) = d.primary.clone() else {
        return Err(format!(
            "{} gave no SOA for zone {}, so its primary is not known; give it with --server IP[:PORT]",
            d.via, d.zone
        ));
    };
    let mname_name = rehost_dns::fqdn(&mname)?;
    let addrs = match d
        .servers
        .iter()
        .find(|s| s.name == mname && !s.addrs.is_empty())
    {
        Some(s) => s.addrs.clone(),
        None => rehost_dns::addresses(
            d.via.parse().map_err(|_| "bad resolver address")?,
            &mname_name,
            timeout,
        ),
    };
    let Some(addr) = addrs.first().copied() else {
        return Err(format!(
            "the zone's primary {mname} (its SOA's MNAME) has no address through {}; give it with --server IP[:PORT]",
            d.via
        ));
    };
    eprintln!(
        "rehost: zone {}: its SOA names {} as the primary; the update goes to {addr}",
        esc(&d.zone),
        esc(&mname)
    );
    Ok(addr)
}
