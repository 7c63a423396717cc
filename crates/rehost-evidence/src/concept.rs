//! The migration concept for sign-off, rendered from the plan and its findings.
//!
//! The concept is built once as a small document model (headings, paragraphs, tables, lists)
//! and emitted as Markdown or as a self-contained HTML page, so both say the same thing.

use crate::doc::{Block, Document};
use crate::rehearsed::Rehearsed;
use crate::survey_map::DependencyMap;
use rehost_plan::*;

fn h(level: u8, text: String) -> Block {
    Block::Heading { level, text }
}

fn p(text: String) -> Block {
    Block::Paragraph { text }
}

fn list(items: Vec<String>) -> Block {
    Block::List { items }
}

fn table(head: Vec<&str>, rows: Vec<Vec<String>>) -> Block {
    Block::Table {
        head: head.into_iter().map(String::from).collect(),
        rows,
    }
}

/// What the concept is made from besides the plan: the latest rehearsal, for the expected
/// timeline, and the survey's dependency map, where the plan names its inventory.
#[derive(Default, Clone, Copy)]
pub struct Sources<'a> {
    pub rehearsed: Option<&'a Rehearsed>,
    pub map: Option<&'a DependencyMap>,
}

/// The concept as a document.
pub fn document(plan: &Plan, src: &str, findings: &[Diagnostic], from: Sources) -> Document {
    Document {
        title: plan.migration.title.clone(),
        blocks: build(plan, src, findings, from),
    }
}

fn build(plan: &Plan, src: &str, findings: &[Diagnostic], from: Sources) -> Vec<Block> {
    let rehearsed = from.rehearsed;
    let m = &plan.migration;
    let map = SourceMap::new(src);
    let mut b = vec![h(1, format!("Migration concept: {}", m.title))];
    b.push(p(format!(
        "Prepared with rehost following BSI IT-Grundschutz M 2.319 \"Migration of a server\". Plan digest (BLAKE3): {}.",
        rehost_plan::digest(src)
    )));
    b.push(h(2, "1. Purpose and responsibilities".into()));
    if let Some(purpose) = &m.purpose {
        b.push(p(purpose.clone()));
    }
    b.push(table(
        vec!["Role", "Who"],
        vec![
            vec![
                "Initiated by (responsible for initiation)".into(),
                list_or_dash(&m.initiated_by),
            ],
            vec![
                "Implemented by (responsible for implementation)".into(),
                list_or_dash(&m.implemented_by),
            ],
        ],
    ));

    b.push(h(2, "2. Window, downtime and data loss".into()));
    b.push(table(
        vec!["Item", "Value"],
        vec![
            vec![
                "Maintenance window".into(),
                m.window
                    .as_ref()
                    .map_or("not set".into(), |w| format!("{} to {}", w.start_text, w.end_text)),
            ],
            vec!["Downtime budget".into(), m.max_downtime.map_or("not set".into(), format_duration)],
            vec!["Acceptable data loss".into(), m.max_data_loss.map_or("not set".into(), format_duration)],
            vec![
                "Point of no return".into(),
                m.point_of_no_return
                    .as_ref()
                    .map_or("not set".into(), |p| format!("step `{}`", p.value)),
            ],
            vec![
                "On a failed step".into(),
                match m.on_failure {
                    OnFailure::Stop => "stop; the run can be resumed".into(),
                    OnFailure::Rollback => "roll back the finished steps in reverse order (before the point of no return)".into(),
                },
            ],
        ],
    ));

    b.push(h(2, "3. Hosts and test environments".into()));
    let mut rows: Vec<Vec<String>> = plan
        .hosts
        .iter()
        .map(|h| {
            vec![
                "production".into(),
                h.name.clone(),
                h.target.describe(),
                h.role.clone().unwrap_or_default(),
            ]
        })
        .collect();
    for env in &plan.environments {
        rows.extend(env.hosts.iter().map(|h| {
            vec![
                env.name.clone(),
                h.name.clone(),
                h.target.describe(),
                h.role.clone().unwrap_or_default(),
            ]
        }));
    }
    b.push(table(
        vec!["Environment", "Host", "Reached as", "Role"],
        rows,
    ));
    if plan.environments.is_empty() {
        b.push(p(
            "No test environment is declared: the transition cannot be rehearsed.".into(),
        ));
    }
    let loads: Vec<Vec<String>> = plan
        .environments
        .iter()
        .flat_map(|env| {
            env.loads.iter().map(|l| {
                vec![
                    env.name.clone(),
                    l.id.clone(),
                    l.describe(),
                    format!("before `{}`", l.start_before),
                    format!("after `{}`", l.stop_after),
                ]
            })
        })
        .collect();
    if !loads.is_empty() {
        b.push(p(
            "Load applied during a rehearsal (the run starts each before its first step and stops it, SIGTERM then SIGKILL, after its last; a write load's acknowledged writes are looked for on the new side afterwards):".into(),
        ));
        b.push(table(
            vec!["Environment", "Load", "What", "Started", "Stopped"],
            loads,
        ));
    }

    b.push(h(2, "4. Data migration".into()));
    if plan.data.is_empty() && plan.databases.is_empty() {
        b.push(p("No data sets or databases are declared.".into()));
    }
    if !plan.data.is_empty() {
        b.push(table(
            vec!["Data set", "From", "To", "Excluded", "Verified by"],
            plan.data
                .iter()
                .map(|d| {
                    vec![
                        d.id.clone(),
                        d.from.to_string(),
                        d.to.to_string(),
                        d.exclude.join(", "),
                        steps_with(plan, &Effect::Verifies(d.id.clone())),
                    ]
                })
                .collect(),
        ));
    }
    if !plan.databases.is_empty() {
        b.push(table(
            vec![
                "Database",
                "Engine",
                "From",
                "To",
                "Versions",
                "Verified by",
            ],
            plan.databases
                .iter()
                .map(|d| {
                    vec![
                        d.id.clone(),
                        d.engine.clone(),
                        d.from.clone(),
                        d.to.clone(),
                        format!(
                            "{} → {}",
                            d.old_version.as_deref().unwrap_or("?"),
                            d.new_version.as_deref().unwrap_or("?")
                        ),
                        steps_with(plan, &Effect::Verifies(d.id.clone())),
                    ]
                })
                .collect(),
        ));
    }

    b.push(h(2, "5. Services and persistent connections".into()));
    if plan.services.is_empty() {
        b.push(p("No services are declared.".into()));
    } else {
        b.push(table(
            vec![
                "Service",
                "Host",
                "Ports",
                "Persistent connections",
                "Drained by",
            ],
            plan.services
                .iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        s.host.clone(),
                        s.ports
                            .iter()
                            .map(|p| p.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        if s.persistent_connections {
                            "yes".into()
                        } else {
                            "no".into()
                        },
                        steps_with(plan, &Effect::Drains(s.id.clone())),
                    ]
                })
                .collect(),
        ));
    }

    if let Some(m) = from.map {
        b.push(h(3, "What the old server runs, as surveyed".into()));
        b.push(Block::Map(m.clone()));
    }

    b.push(h(2, "6. Cryptographic keys".into()));
    if plan.keys.is_empty() {
        b.push(p("No key material is declared.".into()));
    } else {
        b.push(table(
            vec!["Key", "Host", "Kind", "Where", "Verified by"],
            plan.keys
                .iter()
                .map(|k| {
                    vec![
                        k.id.clone(),
                        k.host.clone(),
                        k.kind.clone(),
                        k.paths.join(", "),
                        steps_with(plan, &Effect::Verifies(k.id.clone())),
                    ]
                })
                .collect(),
        ));
    }

    b.push(h(2, "7. Names, addresses and clients".into()));
    if plan.names.is_empty() {
        b.push(p("No names are declared.".into()));
    } else {
        b.push(table(
            vec![
                "Name",
                "Type",
                "Old",
                "New",
                "TTL",
                "Lowered by",
                "Switched by",
                "Clients follow",
            ],
            plan.names
                .iter()
                .map(|n| {
                    vec![
                        n.name.clone(),
                        n.record.clone(),
                        n.old.clone().unwrap_or_default(),
                        n.new.clone().unwrap_or_default(),
                        n.ttl.map(format_duration).unwrap_or_default(),
                        steps_with(plan, &Effect::LowersTtl(n.id.clone())),
                        if n.via == rehost_plan::NameVia::HostsFile {
                            format!(
                                "by hand in the clients' hosts files: {}",
                                clients_changed_by(plan, n)
                            )
                        } else {
                            steps_with(plan, &Effect::Switches(n.id.clone()))
                        },
                        convergence(plan, n),
                    ]
                })
                .collect(),
        ));
        b.push(p(
            "Clients follow: a resolver that cached the old answer just before the switch keeps \
             serving it for the TTL it was given, so clients that ask DNS reach the new address \
             within that time after the switch step (a `dns-propagated` step measures it). A \
             name that did not exist before is cached as absent for the zone's negative TTL (its \
             SOA, which `rehost dns check` shows). Clients that hold the address in their own \
             files do not follow at all: they are the plan's `[[clients]]` (found by `rehost refs scan`, the \
             `scan-refs` step)."
                .into(),
        ));
    }
    if !plan.clients.is_empty() {
        b.push(table(
            vec![
                "Clients",
                "Hosts",
                "Files holding the address",
                "Count",
                "Reconfigured by",
            ],
            plan.clients
                .iter()
                .map(|c| {
                    vec![
                        c.id.clone(),
                        c.hosts.join(", "),
                        c.files.join(", "),
                        c.count.map(|n| n.to_string()).unwrap_or_default(),
                        steps_with(plan, &Effect::Reconfigures(c.id.clone())),
                    ]
                })
                .collect(),
        ));
    }

    b.push(h(2, "8. Checklist".into()));
    b.push(p("Each step depends only on steps before it.".into()));
    b.push(table(
        vec!["#", "Step", "Kind", "Host", "After", "Window", "Rollback"],
        plan.steps
            .iter()
            .map(|s| {
                let mut label = format!("{} (`{}`)", s.label(), s.id);
                if m.point_of_no_return
                    .as_ref()
                    .is_some_and(|p| p.value == s.id)
                {
                    label.push_str(" — point of no return");
                }
                // Where the backup of the old side is kept, as the step or its data set says.
                if let Some(at) = plan.backup_of(s) {
                    label.push_str(&format!(" — backup of the old side kept at {at}"));
                }
                vec![
                    (s.index + 1).to_string(),
                    label,
                    match rehost_plan::describe(&s.kind) {
                        d if d.command().is_some_and(shown_apart) => {
                            "run the command shown below the checklist".into()
                        }
                        d => render(&d),
                    },
                    s.host.clone().unwrap_or_default(),
                    s.after
                        .iter()
                        .map(|a| a.value.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                    if s.needs_window {
                        "needs window".into()
                    } else {
                        String::new()
                    },
                    s.rollback
                        .as_ref()
                        .map(|r| {
                            let r = r.to_string();
                            if shown_apart(&r) {
                                "the command shown below the checklist".into()
                            } else {
                                rehost_plan::redact(&r)
                            }
                        })
                        .or_else(|| {
                            rehost_plan::spec(&s.kind)
                                .builtin_rollback
                                .map(|r| format!("built in: {r}"))
                        })
                        .unwrap_or_default(),
                ]
            })
            .collect(),
    ));
    // A reviewer reads exactly what runs: commands of several lines, or too long for a
    // table cell, line for line (they were flattened into one line before).
    for s in &plan.steps {
        let run = rehost_plan::describe(&s.kind).command().map(str::to_owned);
        for (what, cmd) in [
            ("command", run),
            ("rollback", s.rollback.as_ref().map(|r| r.to_string())),
        ] {
            if let Some(cmd) = cmd.filter(|c| shown_apart(c)) {
                b.push(h(3, format!("Step {} `{}`: {what}", s.index + 1, s.id)));
                b.push(Block::Preformatted {
                    text: rehost_plan::redact(cmd.trim_matches('\n')),
                });
            }
        }
    }

    // Rehearsal informs production: what the latest rehearsal took, step by step.
    b.push(h(3, "Expected timeline".into()));
    match rehearsed {
        None => b.push(p(
            "No rehearsal has finished yet: the timeline is known after `rehost run --env NAME`."
                .into(),
        )),
        Some(r) => {
            b.push(p(format!(
                "From {}. Each step as long as it took there; a production run differs where its hosts, data or people do.",
                crate::rehearsed::summary(r)
            )));
            let mut at = 0u64;
            b.push(table(
                vec!["#", "Step", "Rehearsed", "Expected end (from the start)"],
                r.steps
                    .iter()
                    .enumerate()
                    .map(|(i, (id, ms))| {
                        at += ms.unwrap_or(0);
                        vec![
                            (i + 1).to_string(),
                            format!("`{id}`"),
                            ms.map(fmt_ms).unwrap_or_else(|| "not run there".into()),
                            fmt_ms(at),
                        ]
                    })
                    .collect(),
            ));
            for w in crate::rehearsed::warnings(plan, r) {
                b.push(p(format!("Warning: {w}.")));
            }
        }
    }

    b.push(h(2, "9. Findings of the M 2.319 check".into()));
    if findings.is_empty() {
        b.push(p("None.".into()));
    } else {
        b.push(list(
            findings
                .iter()
                .map(|f| {
                    let at = f
                        .span
                        .as_ref()
                        .map(|s| format!("line {}: ", map.line_col(s.start).0))
                        .unwrap_or_default();
                    format!("{at}[{}] {}", f.code, f.message)
                })
                .collect(),
        ));
    }
    b.push(h(2, "10. Sign-off".into()));
    b.push(table(
        vec!["Role", "Name", "Date", "Signature"],
        m.initiated_by
            .iter()
            .chain(&m.implemented_by)
            .map(|r| vec![r.clone(), String::new(), String::new(), String::new()])
            .collect(),
    ));
    b
}

/// Whether a command is shown apart from the checklist table, line for line: it has several
/// lines, or it is too long for a cell.
fn shown_apart(cmd: &str) -> bool {
    cmd.trim_matches('\n').contains('\n') || cmd.len() > 100
}

/// A step kind's description (`rehost_plan::describe`) as a line of text: ids as code,
/// commands redacted.
pub(crate) fn render(d: &Description) -> String {
    d.0.iter()
        .map(|p| match p {
            Part::Text(t) => t.clone(),
            Part::Id(id) => format!("`{id}`"),
            Part::Command(c) => format!("`{}`", rehost_plan::redact(c)),
        })
        .collect()
}

/// How long after its switch the clients that ask DNS may still get a name's old answer: the
/// lowered TTL when a step lowers it before the switch, else the TTL it has.
fn convergence(plan: &Plan, n: &rehost_plan::NameDecl) -> String {
    if n.via == rehost_plan::NameVia::HostsFile {
        return format!(
            "as each client's hosts file is changed ({}): no TTL; a local cache (nscd) keeps the old address for its own time",
            clients_changed_by(plan, n)
        );
    }
    let first = |e: Effect| {
        plan.steps
            .iter()
            .filter(|s| s.effects.contains(&e))
            .map(|s| s.index)
            .min()
    };
    let Some(switch) = first(Effect::Switches(n.id.clone())) else {
        return "— (no step switches it)".into();
    };
    let lowered = first(Effect::LowersTtl(n.id.clone())).filter(|&l| l < switch);
    match (lowered, n.lowered_ttl, n.ttl) {
        (Some(_), Some(l), _) => format!(
            "within {} of step #{} (the lowered TTL)",
            format_duration(l),
            switch + 1
        ),
        (_, _, Some(t)) => format!(
            "within {} of step #{} (its full TTL: no step lowers it before the switch)",
            format_duration(t),
            switch + 1
        ),
        _ => "not known: the entry declares no `ttl`".into(),
    }
}

/// The steps that change the files of a hosts-file name's clients.
fn clients_changed_by(plan: &Plan, n: &rehost_plan::NameDecl) -> String {
    let ids: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| {
            n.clients
                .iter()
                .any(|c| s.effects.contains(&Effect::Reconfigures(c.clone())))
        })
        .map(|s| format!("#{} `{}`", s.index + 1, s.id))
        .collect();
    if ids.is_empty() {
        "no step changes them yet".into()
    } else {
        ids.join(", ")
    }
}

fn steps_with(plan: &Plan, e: &Effect) -> String {
    let ids: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.effects.contains(e))
        .map(|s| format!("#{} `{}`", s.index + 1, s.id))
        .collect();
    if ids.is_empty() {
        "—".into()
    } else {
        ids.join(", ")
    }
}

fn list_or_dash(v: &[String]) -> String {
    if v.is_empty() {
        "—".into()
    } else {
        v.join(", ")
    }
}

/// The concept as Markdown. Text from the plan is escaped: no HTML, link, emphasis or block
/// syntax from the plan reaches the document, and control characters are escaped as in a
/// terminal.
pub fn render_markdown(plan: &Plan, src: &str, findings: &[Diagnostic], from: Sources) -> String {
    crate::doc::render_markdown(&document(plan, src, findings, from))
}

/// The concept as one self-contained HTML page (no external resources).
pub fn render_html(plan: &Plan, src: &str, findings: &[Diagnostic], from: Sources) -> String {
    crate::doc::render_html(&document(plan, src, findings, from))
}

fn fmt_ms(ms: u64) -> String {
    rehost_plan::format_duration(std::time::Duration::from_millis(ms))
}
