//! The migration concept for sign-off, rendered from the plan and its findings.
//!
//! The concept is built once as a small document model (headings, paragraphs, tables, lists)
//! and emitted as Markdown or as a self-contained HTML page, so both say the same thing.

use crate::diag::{Diagnostic, SourceMap, escape_control};
use crate::model::*;

enum Block {
    H(u8, String),
    P(String),
    List(Vec<String>),
    Table(Vec<&'static str>, Vec<Vec<String>>),
}

fn build(plan: &Plan, src: &str, findings: &[Diagnostic]) -> Vec<Block> {
    use Block::*;
    let m = &plan.migration;
    let map = SourceMap::new(src);
    let mut b = vec![H(1, format!("Migration concept: {}", m.title))];
    b.push(P(format!(
        "Prepared with rehost following BSI IT-Grundschutz M 2.319 \"Migration of a server\". Plan digest (BLAKE3): {}.",
        crate::digest(src)
    )));
    b.push(H(2, "1. Purpose and responsibilities".into()));
    if let Some(p) = &m.purpose {
        b.push(P(p.clone()));
    }
    b.push(Table(
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

    b.push(H(2, "2. Window, downtime and data loss".into()));
    b.push(Table(
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

    b.push(H(2, "3. Hosts and test environments".into()));
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
    b.push(Table(
        vec!["Environment", "Host", "Reached as", "Role"],
        rows,
    ));
    if plan.environments.is_empty() {
        b.push(P(
            "No test environment is declared: the transition cannot be rehearsed.".into(),
        ));
    }

    b.push(H(2, "4. Data migration".into()));
    if plan.data.is_empty() && plan.databases.is_empty() {
        b.push(P("No data sets or databases are declared.".into()));
    }
    if !plan.data.is_empty() {
        b.push(Table(
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
        b.push(Table(
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

    b.push(H(2, "5. Services and persistent connections".into()));
    if plan.services.is_empty() {
        b.push(P("No services are declared.".into()));
    } else {
        b.push(Table(
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

    b.push(H(2, "6. Cryptographic keys".into()));
    if plan.keys.is_empty() {
        b.push(P("No key material is declared.".into()));
    } else {
        b.push(Table(
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

    b.push(H(2, "7. Names, addresses and clients".into()));
    if plan.names.is_empty() {
        b.push(P("No names are declared.".into()));
    } else {
        b.push(Table(
            vec![
                "Name",
                "Type",
                "Old",
                "New",
                "TTL",
                "Lowered by",
                "Switched by",
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
                        steps_with(plan, &Effect::Switches(n.id.clone())),
                    ]
                })
                .collect(),
        ));
    }
    if !plan.clients.is_empty() {
        b.push(Table(
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

    b.push(H(2, "8. Checklist".into()));
    b.push(P("Each step depends only on steps before it.".into()));
    b.push(Table(
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
                vec![
                    (s.index + 1).to_string(),
                    label,
                    describe_kind(&s.kind),
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
                        .map(|r| crate::redact(&r.to_string()))
                        .unwrap_or_default(),
                ]
            })
            .collect(),
    ));

    b.push(H(2, "9. Findings of the M 2.319 check".into()));
    if findings.is_empty() {
        b.push(P("None.".into()));
    } else {
        b.push(List(
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
    b.push(H(2, "10. Sign-off".into()));
    b.push(Table(
        vec!["Role", "Name", "Date", "Signature"],
        m.initiated_by
            .iter()
            .chain(&m.implemented_by)
            .map(|r| vec![r.clone(), String::new(), String::new(), String::new()])
            .collect(),
    ));
    b
}

fn describe_kind(k: &StepKind) -> String {
    match k {
        StepKind::Manual { text } => format!("manual: {text}"),
        StepKind::Run { command, .. } => format!("run `{}`", crate::redact(&command.to_string())),
        StepKind::Wait {
            wait: WaitFor::Duration(d),
        } => format!("wait {}", format_duration(*d)),
        StepKind::Wait {
            wait: WaitFor::Until(t),
        } => format!("wait until {t}"),
        StepKind::Sync { data, phase, .. } => format!("sync `{data}` ({phase:?})").to_lowercase(),
        StepKind::VerifyTree { data } => format!("verify tree `{data}`"),
        StepKind::Stop { service } => format!("stop service `{service}`"),
        StepKind::Start { service } => format!("start service `{service}`"),
        StepKind::Health { service } => format!("wait until service `{service}` is healthy"),
        StepKind::VerifyDb { database } => format!("verify database `{database}`"),
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
pub fn render_markdown(plan: &Plan, src: &str, findings: &[Diagnostic]) -> String {
    let mut out = String::new();
    for block in build(plan, src, findings) {
        match block {
            Block::H(level, text) => {
                out.push_str(&format!(
                    "{} {}\n\n",
                    "#".repeat(level as usize),
                    md_inline(&text, false)
                ));
            }
            Block::P(text) => {
                out.push_str(&md_block_start(&md_inline(text.trim_start(), false)));
                out.push_str("\n\n");
            }
            Block::List(items) => {
                for i in items {
                    out.push_str(&format!("- {}\n", md_inline(&i, false)));
                }
                out.push('\n');
            }
            Block::Table(head, rows) => {
                out.push_str(&format!("| {} |\n", head.join(" | ")));
                out.push_str(&format!("|{}\n", "---|".repeat(head.len())));
                for r in rows {
                    let cells: Vec<String> = r.iter().map(|c| md_inline(c, true)).collect();
                    out.push_str(&format!("| {} |\n", cells.join(" | ")));
                }
                out.push('\n');
            }
        }
    }
    out
}

/// Markdown for one line of the document model: `code` spans kept as code (where nothing is
/// interpreted), everything else escaped by [`md_text`]. A backtick inside plan text can only
/// shift which parts are code; both kinds are safe.
fn md_inline(s: &str, in_table: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            let code = escape_control(&part.replace('\n', " "));
            // GFM splits table cells at `|` even inside code spans, unless escaped.
            let code = if in_table {
                code.replace('|', "\\|")
            } else {
                code
            };
            out.push('`');
            out.push_str(&code);
            out.push('`');
        } else {
            out.push_str(&md_text(part));
        }
    }
    out
}

/// Escapes text for Markdown: HTML-significant characters as entities, inline syntax with
/// backslashes, newlines as spaces (so no block syntax can start), control characters as in a
/// terminal.
fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in escape_control(&s.replace(['\n', '\r'], " ")).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '*' | '_' | '[' | ']' | '#' | '|' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// A paragraph that would start a list (`- `, `+ `, `1. `, `1) `) starts escaped.
fn md_block_start(s: &str) -> String {
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    let after = s[digits..].chars().next();
    let list = match s.chars().next() {
        Some('-' | '+' | '=') => true,
        Some(c) if c.is_ascii_digit() => matches!(after, Some('.' | ')')),
        _ => false,
    };
    if !list {
        return s.to_owned();
    }
    let at = if digits > 0 { digits } else { 0 };
    format!("{}\\{}", &s[..at], &s[at..])
}

/// The concept as one self-contained HTML page (no external resources).
pub fn render_html(plan: &Plan, src: &str, findings: &[Diagnostic]) -> String {
    let mut out =
        String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    out.push_str(&format!("<title>{}</title>\n", esc(&plan.migration.title)));
    out.push_str(
        "<style>body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}\
         table{border-collapse:collapse;margin:0.5rem 0 1.5rem}td,th{border:1px solid #bbb;padding:0.3rem 0.6rem;text-align:left;vertical-align:top}\
         th{background:#eee}h2{border-bottom:1px solid #ccc;padding-bottom:0.2rem}code{background:#f4f4f4}</style>\n</head><body>\n",
    );
    for block in build(plan, src, findings) {
        match block {
            Block::H(level, text) => {
                out.push_str(&format!("<h{level}>{}</h{level}>\n", inline(&text)))
            }
            Block::P(text) => out.push_str(&format!("<p>{}</p>\n", inline(&text))),
            Block::List(items) => {
                out.push_str("<ul>\n");
                for i in items {
                    out.push_str(&format!("<li>{}</li>\n", inline(&i)));
                }
                out.push_str("</ul>\n");
            }
            Block::Table(head, rows) => {
                out.push_str("<table><tr>");
                for h in head {
                    out.push_str(&format!("<th>{}</th>", esc(h)));
                }
                out.push_str("</tr>\n");
                for r in rows {
                    out.push_str("<tr>");
                    for c in r {
                        out.push_str(&format!("<td>{}</td>", inline(&c)));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</table>\n");
            }
        }
    }
    out.push_str("</body></html>\n");
    out
}

/// Escapes text for HTML, then turns `code` spans into <code>.
fn inline(s: &str) -> String {
    let e = esc(s);
    let mut out = String::new();
    for (i, part) in e.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{part}</code>"));
        } else {
            out.push_str(part);
        }
    }
    out
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let s = s
        .split('\n')
        .map(escape_control)
        .collect::<Vec<_>>()
        .join("\n");
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
