//! `rehost survey [HOST] [--for DURATION] [--json]`: what a host runs and what each service
//! depends on, collected on the host (`Host::survey`: in-process for this machine, by the
//! agent on an ssh host). The summary shows every fact with where it was read; every string
//! in it comes from the host and is escaped. Exit codes: 0 surveyed with nothing left
//! unread, 1 surveyed with gaps (each listed), 2 the host could not be surveyed.

use crate::cli::SurveyArgs;
use crate::exit;
use crate::term::escape;
use rehost_survey::{Found, Inventory};
use std::fmt::Write as _;
use std::io::IsTerminal;

pub fn run(args: &SurveyArgs) -> i32 {
    crate::signals::install();
    // What follows from a survey (survey_compare.rs): two surveys compared, or the draft and
    // map of a saved one.
    if args.draft.compare.is_some() {
        return super::survey_compare::run_compare(args);
    }
    if args.draft.inventory.is_some() {
        return super::survey_compare::from_saved(args);
    }
    let seconds = match args.sample_for.trim() {
        "0" => 0,
        s => match rehost_plan::parse_duration(s) {
            Some(d) => d.as_secs(),
            None => {
                crate::term::error(&format!(
                    "failed to read --for `{s}`: write a duration such as `5m`, `30s` or `0`"
                ));
                return exit::TROUBLE;
            }
        },
    };
    let options = rehost_host::survey::SurveyOptions {
        sample_seconds: seconds,
        interval_ms: 0,
    };
    let tty = std::io::stderr().is_terminal();
    let go = || -> Result<Inventory, String> {
        let host = super::conns::open(&args.on)?;
        let name = escape(host.name());
        let mut last = String::new();
        host.survey(&options, &crate::signals::CANCEL, &mut |p| {
            let stage = escape(&p.stage);
            if p.total > 0 && tty {
                eprint!(
                    "\rrehost: surveying {name}: {stage} {}/{}   ",
                    p.done, p.total
                );
                if p.done >= p.total {
                    eprintln!();
                }
            } else if stage != last {
                if p.total > 0 {
                    eprintln!("rehost: surveying {name}: {stage} (up to {})", p.total);
                } else {
                    eprintln!("rehost: surveying {name}: {stage}");
                }
            }
            last = stage;
        })
        .map_err(|e| e.to_string())
    };
    let inv = match go() {
        Ok(i) => i,
        Err(_) if crate::signals::cancelled() => return exit::INTERRUPTED,
        Err(e) => {
            crate::term::error(&format!("failed to survey the host: {e}"));
            return exit::TROUBLE;
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&inv) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                crate::term::error(&format!("failed to write the inventory: {e}"));
                return exit::TROUBLE;
            }
        }
    } else {
        print!("{}", summary(&inv));
    }
    if let Err(e) = super::survey_compare::outputs(&inv, args) {
        crate::term::error(&e);
        return exit::TROUBLE;
    }
    if inv.gaps.is_empty() {
        exit::OK
    } else {
        exit::FINDINGS
    }
}

/// `  ← SOURCE`: where a fact was read.
fn from(f: &Found) -> String {
    format!("  ← {}", escape(&f.source))
}

/// The readable summary of an inventory; every string from the host escaped.
pub fn summary(inv: &Inventory) -> String {
    let mut o = String::new();
    let s = &inv.system;
    let _ = writeln!(
        o,
        "survey of {} at {} ({} ms{})",
        escape(&inv.host),
        escape(&inv.taken_at),
        inv.took_ms,
        if inv.sampled.samples > 0 {
            format!(
                "; clients sampled for {} s, {} samples",
                inv.sampled.seconds, inv.sampled.samples
            )
        } else {
            "; clients not sampled".into()
        }
    );
    let _ = writeln!(
        o,
        "system: {}{} — {} — kernel {} {} — init {} — packages: {} ({})",
        escape(&s.hostname),
        s.fqdn
            .as_deref()
            .map(|f| format!(" ({} in /etc/hosts)", escape(f)))
            .unwrap_or_default(),
        escape(if s.os_pretty.is_empty() {
            "unknown OS"
        } else {
            &s.os_pretty
        }),
        escape(&s.kernel),
        escape(&s.arch),
        escape(&s.init),
        inv.packages.len(),
        escape(
            s.package_manager
                .as_deref()
                .unwrap_or("no package manager read")
        ),
    );
    for a in &s.addresses {
        let _ = writeln!(
            o,
            "  address {} {}",
            escape(&a.interface),
            escape(&a.address)
        );
    }
    let _ = writeln!(o, "\nservices ({}):", inv.services.len());
    for svc in &inv.services {
        let _ = writeln!(
            o,
            "  {}{}",
            escape(&svc.id),
            svc.kind
                .as_deref()
                .map(|k| format!(" [{}]", escape(k)))
                .unwrap_or_default()
        );
        if let Some(u) = &svc.unit {
            let _ = writeln!(
                o,
                "    unit      {}{}{}",
                escape(&u.name),
                if u.enabled { " (enabled)" } else { "" },
                from(&u.found)
            );
            if let Some(e) = &u.exec_start {
                let _ = writeln!(o, "              ExecStart={}", escape(e));
            }
        }
        for p in &svc.processes {
            let _ = writeln!(
                o,
                "    process   {} {} (user {})",
                p.pid,
                escape(&p.exe),
                escape(&p.user)
            );
        }
        if let Some(p) = &svc.package {
            let _ = writeln!(
                o,
                "    package   {} {}{}",
                escape(&p.name),
                escape(&p.version),
                from(&p.found)
            );
        }
        for l in &svc.listens {
            let _ = writeln!(o, "    listens   {}", listen(l));
        }
        for c in &svc.config {
            let _ = writeln!(
                o,
                "    config    {}{}{}",
                escape(&c.path),
                if c.conffile { " (conffile)" } else { "" },
                from(&c.found)
            );
        }
        for d in &svc.data {
            let _ = writeln!(
                o,
                "    data      {} {}{}{}",
                escape(&d.role),
                escape(&d.path),
                d.owner
                    .as_deref()
                    .map(|w| format!(" (owner {})", escape(w)))
                    .unwrap_or_default(),
                from(&d.found)
            );
        }
        for db in &svc.databases {
            let _ = writeln!(
                o,
                "    database  {} {} on port {}: {}{}",
                escape(&db.engine),
                escape(db.version.as_deref().unwrap_or("")),
                db.port,
                if db.names.is_empty() {
                    "no databases".into()
                } else {
                    escape(&db.names.join(", "))
                },
                from(&db.found)
            );
        }
        for k in &svc.keys {
            let _ = writeln!(
                o,
                "    key       {} {} {}{}",
                escape(&k.kind),
                escape(&k.path),
                escape(k.fingerprint.as_deref().unwrap_or("(no fingerprint)")),
                from(&k.found)
            );
        }
        for n in &svc.names {
            let _ = writeln!(o, "    name      {}{}", escape(&n.name), from(&n.found));
        }
        for c in inv
            .clients
            .iter()
            .filter(|c| c.service.as_deref() == Some(svc.id.as_str()))
        {
            let _ = writeln!(
                o,
                "    client    {} to port {}: {} connection(s), seen in {} of {} samples{}",
                escape(&c.peer),
                c.port,
                c.connections,
                c.seen_in,
                inv.sampled.samples,
                if c.persistent { ", persistent" } else { "" }
            );
        }
    }
    let loose: Vec<_> = inv.sockets.iter().filter(|s| s.service.is_none()).collect();
    if !loose.is_empty() {
        let _ = writeln!(
            o,
            "\nlistening sockets of no known process ({}):",
            loose.len()
        );
        for s in loose {
            let _ = writeln!(o, "  {}{}", listen(&s.listen), from(&s.found));
        }
    }
    let others: Vec<_> = inv.clients.iter().filter(|c| c.service.is_none()).collect();
    if !others.is_empty() {
        let _ = writeln!(
            o,
            "\nclients of sockets of no known process ({}):",
            others.len()
        );
        for c in others {
            let _ = writeln!(
                o,
                "  {} to port {}{}",
                escape(&c.peer),
                c.port,
                if c.persistent { ", persistent" } else { "" }
            );
        }
    }
    let _ = writeln!(o, "\ncron jobs ({}):", inv.cron.len());
    for c in &inv.cron {
        let _ = writeln!(
            o,
            "  {} {} {}  ({}:{})",
            escape(&c.schedule),
            escape(&c.user),
            escape(&c.command),
            escape(&c.file),
            c.line
        );
    }
    let _ = writeln!(o, "\ntimers ({}):", inv.timers.len());
    for t in &inv.timers {
        let _ = writeln!(
            o,
            "  {} → {} {}{}  ({})",
            escape(&t.name),
            escape(&t.unit),
            escape(&t.schedule.join(" ")),
            if t.enabled { " (enabled)" } else { "" },
            escape(&t.file)
        );
    }
    let _ = writeln!(
        o,
        "\nunits enabled: {}; accounts: {}; groups: {}",
        inv.units.len(),
        inv.accounts.len(),
        inv.groups.len()
    );
    let _ = writeln!(
        o,
        "mounts: {} in /etc/fstab, {} mounted",
        inv.mounts.iter().filter(|m| m.in_fstab).count(),
        inv.mounts.iter().filter(|m| m.mounted).count()
    );
    for c in &inv.crypttab {
        let _ = writeln!(
            o,
            "crypttab: {} on {} key {}  (/etc/crypttab:{})",
            escape(&c.name),
            escape(&c.device),
            escape(&c.key_file),
            c.line
        );
    }
    match &inv.firewall {
        Some(f) => {
            let _ = writeln!(
                o,
                "firewall: {} lines of `{}`",
                f.rules.len(),
                escape(&f.tool)
            );
        }
        None => {
            let _ = writeln!(o, "firewall: not read (see the gaps)");
        }
    }
    let _ = writeln!(o, "kernel parameters set: {}", inv.sysctl.len());
    if inv.gaps.is_empty() {
        let _ = writeln!(
            o,
            "\nnothing left unread of what the survey looks at (docs/survey.md says what it does not)"
        );
    } else {
        let _ = writeln!(o, "\nnot read or not followed ({}):", inv.gaps.len());
        for g in &inv.gaps {
            let _ = writeln!(o, "  {}: {}", escape(&g.what), escape(&g.why));
        }
    }
    o
}

fn listen(l: &rehost_survey::Listen) -> String {
    match l.proto {
        rehost_survey::Proto::Unix => format!("unix {}", escape(&l.address)),
        p => {
            let proto = if p == rehost_survey::Proto::Tcp {
                "tcp"
            } else {
                "udp"
            };
            if l.address.contains(':') {
                format!("{proto} [{}]:{}", escape(&l.address), l.port)
            } else {
                format!("{proto} {}:{}", escape(&l.address), l.port)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rehost_survey::*;

    /// A compromised host names its service, process and cron job with terminal escapes: the
    /// summary shows them escaped, never as control characters.
    #[test]
    fn the_summary_escapes_what_the_host_says() {
        let evil = "\u{1b}]0;owned\u{7}\u{1b}[2J";
        let mut inv = Inventory::new(evil, "2026-12-07T12:00:00Z");
        inv.system.hostname = evil.into();
        inv.services.push(Service {
            id: evil.into(),
            kind: Some(evil.into()),
            unit: None,
            processes: vec![Process {
                pid: 1,
                exe: evil.into(),
                cmdline: vec![evil.into()],
                user: evil.into(),
            }],
            package: None,
            listens: vec![Listen {
                proto: Proto::Unix,
                address: evil.into(),
                port: 0,
            }],
            config: Vec::new(),
            data: Vec::new(),
            databases: Vec::new(),
            keys: Vec::new(),
            names: vec![NameRef {
                name: evil.into(),
                found: Found::new(FoundBy::File, evil),
            }],
        });
        inv.cron.push(CronJob {
            file: evil.into(),
            line: 1,
            user: evil.into(),
            schedule: evil.into(),
            command: evil.into(),
        });
        inv.gaps.push(Gap {
            what: evil.into(),
            why: evil.into(),
        });
        let text = super::summary(&inv);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
        assert!(text.contains("owned"), "{text}");
    }
}
