//! The report as a document: one function per section, in the order they appear. A section
//! with nothing in it leaves itself out; [`without_empty_sections`] drops any bare heading.

use super::verification::verifications_section;
use super::*;
use crate::doc::{
    Bar, BarState, Block, Document, Lane, LaneSpan, LaneState, Level, Timeline, human_ms,
};
use crate::kompendium::Point;

/// The report as a document, verdict first.
pub fn document(r: &Report, plan: &Plan) -> Document {
    let mut b = Vec::new();
    verdict_section(r, &mut b);
    intro(r, &mut b);
    roles(r, &mut b);
    journal(r, &mut b);
    absent(r, &mut b);
    points_section(r, &mut b);
    downtime_section(r, &mut b);
    super::load::load_section(r, plan, &mut b);
    super::connections::connections_section(r, &mut b);
    // Under the Connections heading: the `switch` steps' blocks.
    super::switch::switch_blocks(r, &mut b);
    super::connections::references_section(r, &mut b);
    super::names::names_section(r, plan, &mut b);
    timeline_section(r, plan, &mut b);
    steps_section(r, &mut b);
    attempt_details(r, &mut b);
    verifications_section(r, &mut b);
    super::keys::keys_section(r, &mut b);
    decisions_section(r, &mut b);
    rollbacks_section(r, &mut b);
    preflight_section(r, &mut b);
    warnings_section(r, &mut b);
    comparison_section(r, plan, &mut b);
    plan_section(r, &mut b);
    Document {
        title: format!("Migration report: {}", r.migration.title),
        blocks: without_empty_sections(b),
    }
}

pub(super) fn h(level: u8, text: &str) -> Block {
    Block::Heading {
        level,
        text: text.into(),
    }
}

pub(super) fn p(text: String) -> Block {
    Block::Paragraph { text }
}

pub(super) fn table(head: &[&str], rows: Vec<Vec<String>>) -> Block {
    Block::Table {
        head: head.iter().map(|s| s.to_string()).collect(),
        rows,
    }
}

/// Text shown as code in a cell or paragraph (a backtick inside cannot end the span).
pub(super) fn code_span(s: &str) -> String {
    format!("`{}`", s.replace('`', "'"))
}

fn or_dash(s: Option<&str>) -> String {
    s.filter(|s| !s.is_empty()).unwrap_or("—").to_owned()
}

/// A kept file: its name, size and digest.
pub(super) fn kept(k: &Kept) -> String {
    match k.bytes {
        Some(n) => format!("`{}` ({n} bytes, BLAKE3 `{}`)", k.file, k.blake3),
        None => format!(
            "`{}` (could not be read when this report was made; the journal recorded BLAKE3 `{}`)",
            k.file, k.blake3
        ),
    }
}

/// An attempt's result in words, with what a rollback did to it.
fn result_word(a: &Attempt) -> String {
    let mut w = a
        .result
        .clone()
        .unwrap_or_else(|| "running or killed".into());
    if a.superseded {
        w.push_str(", superseded");
    }
    match a.rolled_back {
        Some(true) => w.push_str(", rolled back"),
        Some(false) => w.push_str(", rollback failed"),
        None => {}
    }
    w.replace('_', " ")
}

/// Each point of M 2.319: what this run proves of it, and the Kompendium's requirements it
/// answers (the fleet's matrix shows the same cells).
fn points_section(r: &Report, b: &mut Vec<Block>) {
    use crate::kompendium;
    b.push(h(2, "M 2.319 and the IT-Grundschutz-Kompendium"));
    b.push(p(format!(
        "What this run proves of each point of M 2.319, and the requirements of the {} that evidence answers; the journal itself (every step recorded with who did it and when, as it happened) answers {}. Each section below names its point again.",
        kompendium::EDITION,
        kompendium::ids(&kompendium::journal_requirements()).join(", ")
    )));
    b.push(table(
        &["Point", "State", "Why", "Kompendium"],
        r.points
            .iter()
            .map(|c| {
                vec![
                    c.point.label().into(),
                    c.state.label().into(),
                    c.text.clone(),
                    kompendium::ids(&c.point.requirements()).join(", "),
                ]
            })
            .collect(),
    ));
    b.push(kompendium::citations_table());
}

/// The title and the verdict box: its headline and items.
fn verdict_section(r: &Report, b: &mut Vec<Block>) {
    b.push(h(1, &format!("Migration report: {}", r.migration.title)));
    b.push(Block::Verdict {
        level: r.verdict.level,
        headline: r.verdict.headline.clone(),
        // A failed verdict's headline is its first item: not repeated below it.
        items: r
            .verdict
            .items
            .iter()
            .skip(usize::from(r.verdict.level == Level::Failed))
            .map(|i| {
                let mark = match i.level {
                    Level::Failed => "Failed",
                    Level::Attention => "Review",
                    Level::Clean => "OK",
                };
                format!("{mark}: {}", i.text)
            })
            .collect(),
    });
}

/// Who ran what, when, from where, and how it ended.
fn intro(r: &Report, b: &mut Vec<Block>) {
    let run = &r.run;
    let what = if r.rehearsal {
        format!("Rehearsal in the environment `{}`", r.env)
    } else {
        "Production run".into()
    };
    let mut intro = format!(
        "{what} of the plan `{}`, following BSI IT-Grundschutz M 2.319.",
        r.migration.plan_file
    );
    if let Some(i) = run.invocations.first() {
        let from = match (&i.operator_host, &i.terminal) {
            (Some(h), Some(t)) => format!(" (from {h}, terminal {t})"),
            (Some(h), None) => format!(" (from {h})"),
            (None, Some(t)) => format!(" (terminal {t})"),
            (None, None) => String::new(),
        };
        intro.push_str(&format!(
            " Started at {} by {}{from} with rehost {}",
            when(&i.at),
            i.user,
            i.version
        ));
        // Each invocation of `rehost run` that reached the steps began with a pre-flight.
        if run.preflights.len() > 1 {
            intro.push_str(&format!(
                "; {} invocations of `rehost run` (a pre-flight each)",
                run.preflights.len()
            ));
        }
        intro.push('.');
    }
    if let Some(f) = &run.finished {
        intro.push_str(&format!(
            " {} at {}: {}.",
            if f.ok { "Finished" } else { "Stopped" },
            when(&f.at),
            f.summary
        ));
    }
    b.push(p(intro));
}

/// Who initiated, implemented and ran the migration.
fn roles(r: &Report, b: &mut Vec<Block>) {
    let run = &r.run;
    b.push(table(
        &["Role", "Who"],
        vec![
            vec![
                "Initiated by".into(),
                or_dash(Some(&r.migration.initiated_by.join(", "))),
            ],
            vec![
                "Implemented by".into(),
                or_dash(Some(&r.migration.implemented_by.join(", "))),
            ],
            vec![
                "Ran as".into(),
                or_dash(Some(
                    &run.invocations
                        .iter()
                        .map(|i| i.user.clone())
                        .fold(Vec::<String>::new(), |mut v, u| {
                            if !v.contains(&u) {
                                v.push(u);
                            }
                            v
                        })
                        .join(", "),
                )),
            ],
        ],
    ));
}

/// What the journal holds, its head, its integrity and what vouches for it.
fn journal(r: &Report, b: &mut Vec<Block>) {
    let run = &r.run;
    let mut journal = format!(
        "The journal holds {} record(s); every time in this report is from it, and files are named relative to the state directory.",
        run.journal_records
    );
    if let Some(head) = &run.journal_head {
        journal.push_str(&format!(
            " The head of its hash chain is `{head}`: with this digest kept outside the state directory (the change ticket, a copy of this report), `rehost status {} {}--verify --head {head}` shows whether the journal changed since.",
            r.migration.plan_file,
            if r.rehearsal {
                format!("--env {} ", r.env)
            } else {
                String::new()
            }
        ));
    }
    if let Some(i) = &run.integrity
        && i.problems.is_empty()
    {
        journal.push_str(&format!(
            " When the report was made, the hash chain of all {} records was intact and all {} kept files matched their digests.",
            i.records, i.files
        ));
    }
    // What the chain proves, and what vouches for it beyond that.
    if let Some(i) = &run.integrity {
        journal.push_str(&match &i.signature {
            Some(s) if s.covers_all => {
                let with: Vec<&str> = s
                    .kinds
                    .iter()
                    .map(|k| match k.as_str() {
                        "ssh" => "an SSH signature in `journal.head.sig`",
                        _ => "a BLAKE3 keyed hash (an HMAC) in `journal.head.mac`",
                    })
                    .collect();
                format!(
                    " The head is signed with a key kept outside the state directory ({}, over `journal.head`). This report does not hold the key and has not checked the signature: `rehost status --verify --allowed-signers FILE` (or `--hmac-key FILE`) does, and a good signature proves the records were not rewritten by someone who could only write the state directory.",
                    if with.is_empty() {
                        "no signature file is there".to_owned()
                    } else {
                        with.join(" and ")
                    }
                )
            }
            Some(s) if !s.in_journal => " `journal.head` signs a head that no record of the journal has: the journal was rewritten after it was signed, and nothing vouches for it.".to_owned(),
            Some(s) => format!(
                " `journal.head` signs the head of {} record(s), not the journal's last: for the records after it, the hash chain proves consistency, not authenticity.",
                s.records
            ),
            None => " The head is not signed, so the hash chain proves consistency, not authenticity: the records and the files they name agree with each other, but anyone who could write the state directory could have rewritten a record and recomputed the chain. Keep the head outside the state directory, or sign runs with `--sign-key` or `--hmac-key`.".to_owned(),
        });
    }
    b.push(p(journal));
}

/// What the journal does not hold, said once in place of empty sections.
fn absent(r: &Report, b: &mut Vec<Block>) {
    let run = &r.run;

    // A section with nothing in it is left out (a heading over "none" reads as a section
    // someone forgot to fill); what the journal does not hold is said here, once.
    let mut absent = Vec::new();
    if run.attempts.is_empty() {
        absent.push("no step attempt (so no timeline)");
    }
    if !run.attempts.iter().any(|a| a.verification.is_some()) {
        absent.push("no verification result");
    }
    if run.decisions.is_empty() {
        absent.push("no decision taken by a flag (nothing accepted, skipped or confirmed by one)");
    }
    if run.preflights.is_empty() {
        absent.push("no pre-flight");
    }
    if !absent.is_empty() {
        let list = match absent.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => absent.join(""),
        };
        b.push(p(format!(
            "The journal records {list}; the report has no section for {}.",
            if absent.len() == 1 { "it" } else { "them" }
        )));
    }
}

/// The downtime declared by the steps and the one measured by the probes, each outage, the
/// budget and the window.
fn downtime_section(r: &Report, b: &mut Vec<Block>) {
    b.push(h(2, "Downtime and window"));
    let d = &r.downtime;
    let yes_no = |v: Option<bool>| match v {
        Some(true) => "yes".to_string(),
        Some(false) => "NO".to_string(),
        None => "—".to_string(),
    };
    let declared = match (d.declared_ms, d.outages.len()) {
        (Some(ms), 1) => human_ms(ms),
        (Some(ms), n) => format!("{} in {n} outages (each below)", human_ms(ms)),
        (None, 0) => "none: no step that stops a service has run".into(),
        (None, _) => "unknown: the service is still down (below)".into(),
    };
    let measured = match &d.measured {
        None => "not measured: no service has a `probe`".into(),
        Some(m) => format!(
            "{} ({} sample(s) every {} ms of {}; {} outage(s){})",
            human_ms(m.total_ms),
            m.samples,
            m.interval_ms,
            m.services
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", "),
            m.outages.len(),
            if m.runs > 1 {
                format!(", over {} runs", m.runs)
            } else {
                String::new()
            }
        ),
    };
    let mut rows = vec![
        vec!["Downtime declared by the steps".into(), declared],
        vec!["Downtime measured by the probes".into(), measured],
        vec![
            "Downtime budget".into(),
            d.budget_ms.map_or("not set".into(), human_ms),
        ],
        vec![
            match d.budget_basis.as_deref() {
                Some(basis) => format!("Within the budget ({basis})"),
                None => "Within the budget".into(),
            },
            yes_no(d.within_budget),
        ],
    ];
    if let Some(m) = &d.measured {
        for (i, o) in m.outages.iter().enumerate() {
            rows.push(vec![
                format!("Measured outage {}", i + 1),
                format!(
                    "`{}` answered on neither side for {}: from {} {}",
                    o.service,
                    human_ms(o.ms),
                    when(&o.down_at),
                    match &o.up_at {
                        Some(up) => format!("until {}", when(up)),
                        None => "until probing stopped (still unreachable then)".into(),
                    }
                ),
            ]);
        }
    }
    // Each outage, rolled-back attempts included: what took the service down and what brought
    // it back.
    for (i, o) in d.outages.iter().enumerate() {
        let label = if d.outages.len() == 1 {
            "Declared outage".to_string()
        } else {
            format!("Declared outage {}", i + 1)
        };
        let up = match (&o.up_at, o.how_up()) {
            (Some(at), Some(how)) => format!("serving again at {} ({how})", when(at)),
            _ => "NOT serving again".into(),
        };
        rows.push(vec![
            label,
            format!(
                "{}: down at {} ({}), {up}",
                o.ms.map_or("still down".into(), human_ms),
                when(&o.down_at),
                o.how_down()
            ),
        ]);
    }
    // What the measurement leaves out, where there is one (else the row above says it all).
    if d.measured.is_some() {
        rows.push(vec!["Not measured".into(), d.not_measured.join("; ")]);
    }
    b.push(table(
        &["Item", "Value"],
        rows.into_iter().chain([
            vec![
                "Maintenance window".into(),
                match (&d.window_start, &d.window_end) {
                    (Some(s), Some(e)) => format!("{s} to {e}"),
                    _ if r.rehearsal => {
                        "none for this environment (a rehearsal is not bound by the production window)".into()
                    }
                    _ => "not set".into(),
                },
            ],
            vec!["Downtime inside the window".into(), yes_no(d.within_window)],
        ]).collect(),
    ));
}

/// Each attempt on a time axis.
fn timeline_section(r: &Report, plan: &Plan, b: &mut Vec<Block>) {
    let run = &r.run;
    if !run.attempts.is_empty() {
        b.push(h(2, "Timeline"));
        b.push(p(
            "Each attempt of each step, in the order the journal recorded them; manual steps with who confirmed them. Hatched bars are attempts a rollback superseded or undid.".into(),
        ));
        b.push(Block::Timeline(timeline(r, plan)));
    }
}

/// The checklist's steps with their state, attempts, time, confirmation and output.
fn steps_section(r: &Report, b: &mut Vec<Block>) {
    let run = &r.run;
    b.push(h(2, "Steps"));
    let rows = r
        .checklist
        .iter()
        .map(|c| {
            let attempts: Vec<&Attempt> = run.attempts.iter().filter(|a| a.id == c.id).collect();
            let last = attempts.last();
            let status = run
                .steps
                .iter()
                .find(|s| s.id == c.id)
                .map(|s| s.status.replace('_', " "))
                .unwrap_or_default();
            let mut label = if c.title == c.id {
                format!("`{}`", c.id)
            } else {
                format!("{} `{}`", c.title, c.id)
            };
            if c.point_of_no_return {
                label.push_str(" — point of no return");
            }
            vec![
                c.index.to_string(),
                label,
                c.does.clone(),
                status,
                attempts.len().to_string(),
                last.and_then(|a| a.elapsed_ms)
                    .map(human_ms)
                    .unwrap_or_default(),
                last.and_then(|a| {
                    a.confirmed_by
                        .clone()
                        .map(|by| format!("{by} at {}", when(a.finished.as_deref().unwrap_or("?"))))
                })
                .unwrap_or_default(),
                attempts
                    .iter()
                    .filter_map(|a| {
                        a.output.as_ref().map(|o| {
                            if attempts.len() > 1 {
                                format!("attempt {}: {}", a.attempt, kept(o))
                            } else {
                                kept(o)
                            }
                        })
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ]
        })
        .collect();
    b.push(table(
        &[
            "#",
            "Step",
            "Does",
            "Result",
            "Attempts",
            "Took",
            "Confirmed by",
            "Output kept in",
        ],
        rows,
    ));
}

/// What each attempt reported (a detail, or an exit code other than 0).
fn attempt_details(r: &Report, b: &mut Vec<Block>) {
    let details: Vec<String> = r
        .run
        .attempts
        .iter()
        .filter(|a| a.detail.is_some() || a.exit_code.is_some_and(|c| c != 0))
        .map(|a| {
            format!(
                "`{}` attempt {} ({}): {}",
                a.id,
                a.attempt,
                result_word(a),
                a.detail.as_deref().unwrap_or("no detail")
            )
        })
        .collect();
    if !details.is_empty() {
        b.push(h(3, "What each attempt reported"));
        b.push(Block::List { items: details });
    }
}

/// The decisions taken by a flag.
fn decisions_section(r: &Report, b: &mut Vec<Block>) {
    let run = &r.run;
    if !run.decisions.is_empty() {
        b.push(h(2, "Decisions"));
        b.push(table(
            &["At", "Decision", "By", "What"],
            run.decisions
                .iter()
                .map(|d| {
                    vec![
                        when(&d.at),
                        format!("`--{}`", d.what),
                        d.by.clone(),
                        d.detail.clone(),
                    ]
                })
                .collect(),
        ));
    }
}

/// Each rollback and each supersession.
fn rollbacks_section(r: &Report, b: &mut Vec<Block>) {
    let run = &r.run;
    if !run.rollbacks.is_empty() || !run.supersessions.is_empty() {
        b.push(h(2, "Rollbacks"));
        b.push(crate::kompendium::cite(&[Point::Rollback]));
        let mut items = Vec::new();
        for rb in &run.rollbacks {
            items.push(format!(
                "At {}, after step `{}` failed: {}",
                when(&rb.at),
                rb.failed,
                rb.steps
                    .iter()
                    .map(|s| format!(
                        "`{}` {}{}",
                        s.id,
                        if s.ok {
                            "rolled back"
                        } else {
                            "NOT rolled back"
                        },
                        s.output
                            .as_ref()
                            .map(|o| format!(" (output {})", kept(o)))
                            .unwrap_or_default()
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        for s in &run.supersessions {
            items.push(format!(
                "At {}, the attempts of {} were superseded (the run resumed from `{}`).",
                when(&s.at),
                s.steps
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                s.from
            ));
        }
        b.push(Block::List { items });
    }
}

/// Each pre-flight: the hosts it checked and what it found.
fn preflight_section(r: &Report, b: &mut Vec<Block>) {
    let run = &r.run;
    if !run.preflights.is_empty() {
        b.push(h(2, "Pre-flight"));
        b.push(table(
            &["At", "Hosts checked", "Problems"],
            run.preflights
                .iter()
                .map(|p| {
                    vec![
                        when(&p.at),
                        p.hosts.join(", "),
                        if p.problems.is_empty() {
                            "none".into()
                        } else {
                            p.problems.join("; ")
                        },
                    ]
                })
                .collect(),
        ));
    }
}

/// The run's warnings.
fn warnings_section(r: &Report, b: &mut Vec<Block>) {
    let run = &r.run;
    if !run.warnings.is_empty() {
        b.push(h(2, "Warnings"));
        b.push(Block::List {
            items: run
                .warnings
                .iter()
                .map(|w| format!("{}: {}", when(&w.at), w.text))
                .collect(),
        });
    }
}

/// This run beside the plan's other runs, step by step.
fn comparison_section(r: &Report, plan: &Plan, b: &mut Vec<Block>) {
    let run = &r.run;
    if !r.comparison.is_empty() {
        b.push(h(2, "Rehearsal and production side by side"));
        b.push(crate::kompendium::cite(&[Point::Rehearsal]));
        let mut head = vec!["Step".to_string(), format!("{} (this report)", r.env)];
        head.extend(r.comparison.iter().map(|c| c.env.clone()));
        let cell = |result: Option<&str>, ms: Option<u64>, attempts: u32| match result {
            None => "not run".to_string(),
            Some(res) => {
                let mut s = res.replace('_', " ");
                if let Some(ms) = ms {
                    s.push_str(&format!(", {}", human_ms(ms)));
                }
                if attempts > 1 {
                    s.push_str(&format!(", {attempts} attempts"));
                }
                s
            }
        };
        let mut rows: Vec<Vec<String>> = plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let a = latest(run, &s.id);
                let mut row = vec![
                    format!("`{}`", s.id),
                    cell(
                        a.and_then(|a| a.result.as_deref()),
                        a.and_then(|a| a.elapsed_ms),
                        run.attempts.iter().filter(|x| x.id == s.id).count() as u32,
                    ),
                ];
                for c in &r.comparison {
                    let cs = &c.steps[i];
                    row.push(cell(cs.result.as_deref(), cs.elapsed_ms, cs.attempts));
                }
                row
            })
            .collect();
        let mut down = vec![
            "Downtime".to_string(),
            run.downtime_ms.map_or("—".into(), human_ms),
        ];
        down.extend(
            r.comparison
                .iter()
                .map(|c| c.downtime_ms.map_or("—".into(), human_ms)),
        );
        rows.push(down);
        let mut fin = vec![
            "Finished".to_string(),
            run.finished.as_ref().map_or("no".into(), |f| {
                if f.ok { "yes".into() } else { "stopped".into() }
            }),
        ];
        fin.extend(r.comparison.iter().map(|c| {
            c.finished.as_ref().map_or("no".into(), |f| {
                if f.ok { "yes".into() } else { "stopped".into() }
            })
        }));
        rows.push(fin);
        let head: Vec<&str> = head.iter().map(String::as_str).collect();
        b.push(table(&head, rows));
        for c in &r.comparison {
            if !c.failed.is_empty() {
                b.push(p(format!(
                    "Failed at least once in `{}`: {}.",
                    c.env,
                    c.failed
                        .iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
}

/// The plan as it was run, credentials redacted, with its digest.
fn plan_section(r: &Report, b: &mut Vec<Block>) {
    b.push(h(2, "The plan as it was run"));
    b.push(p(format!(
        "From {}; BLAKE3 of the text `{}`{}. Credentials in commands are shown as `***`.",
        r.plan.origin,
        r.plan.text_digest,
        match &r.plan.run_digest {
            Some(d) if *d == r.plan.text_digest => ", the digest the run recorded".to_string(),
            Some(d) => format!(", NOT the digest the run recorded (`{d}`)"),
            None => String::new(),
        }
    )));
    b.push(Block::Preformatted {
        text: r.plan.text.clone(),
    });
}

/// Drops every heading with nothing under it before the next heading of its level or above (or
/// the end): the sections above leave themselves out when empty; this keeps one that a later
/// change forgets from printing a bare heading.
pub(super) fn without_empty_sections(blocks: Vec<Block>) -> Vec<Block> {
    let level_of = |b: &Block| match b {
        Block::Heading { level, .. } => Some(*level),
        _ => None,
    };
    // A section's line naming what it evidences is not content of its own.
    let is_cite = |b: &Block| matches!(b, Block::Paragraph { text } if text.starts_with(crate::kompendium::CITE_PREFIX));
    let mut keep = vec![true; blocks.len()];
    // From the end, so a heading whose only content was an empty subsection goes too.
    for i in (0..blocks.len()).rev() {
        let Some(level) = level_of(&blocks[i]) else {
            continue;
        };
        let next = (i + 1..blocks.len()).find(|&j| keep[j] && !is_cite(&blocks[j]));
        let empty = match next {
            None => true,
            Some(j) => level_of(&blocks[j]).is_some_and(|l| l <= level),
        };
        if empty && level > 1 {
            keep[i] = false;
            let end = next.unwrap_or(blocks.len());
            keep[i + 1..end].iter_mut().for_each(|k| *k = false);
        }
    }
    blocks
        .into_iter()
        .zip(keep)
        .filter_map(|(b, k)| k.then_some(b))
        .collect()
}

fn timeline(r: &Report, plan: &Plan) -> Timeline {
    let run = &r.run;
    let start = run.first_at.clone().unwrap_or_default();
    let end = run.last_at.clone().unwrap_or_default();
    let span_ms = ms_between(&start, &end).unwrap_or(0);
    let index = |id: &str| plan.step_index(id).map_or(0, |i| i + 1);
    let bars = run
        .attempts
        .iter()
        .map(|a| {
            let s = ms_between(&start, &a.started).unwrap_or(0);
            let e = a
                .finished
                .as_deref()
                .or(run.last_at.as_deref())
                .and_then(|f| ms_between(&start, f))
                .unwrap_or(s)
                .max(s);
            let manual = is_manual(plan, &a.id);
            let state = if a.superseded {
                BarState::Superseded
            } else if a.rolled_back == Some(true) {
                BarState::RolledBack
            } else {
                match a.result.as_deref() {
                    Some("done") if manual => BarState::Manual,
                    Some("done") => BarState::Done,
                    Some("failed") => BarState::Failed,
                    Some("skipped") => BarState::Skipped,
                    Some("not_confirmed") => BarState::NotConfirmed,
                    _ => BarState::Interrupted,
                }
            };
            let failed_verification = a.verification.as_ref().is_some_and(|v| v.exit_code != 0);
            let state = if failed_verification && state == BarState::Done {
                BarState::Failed
            } else {
                state
            };
            let mut note = result_word(a);
            if let Some(ms) = a.elapsed_ms.filter(|_| !manual) {
                note.push_str(&format!(" in {}", human_ms(ms)));
            }
            if let Some(by) = &a.confirmed_by {
                note.push_str(&format!(
                    "; confirmed by {by} at {}",
                    when(a.finished.as_deref().unwrap_or("?"))
                ));
            }
            let mut label = format!("{}. `{}`", index(&a.id), a.id);
            if run.attempts.iter().filter(|x| x.id == a.id).count() > 1 {
                label.push_str(&format!(" attempt {}", a.attempt));
            }
            Bar {
                id: a.id.clone(),
                label,
                start_ms: s,
                end_ms: e,
                state,
                note,
            }
        })
        .collect();
    Timeline {
        start: when(&start),
        end: when(&end),
        span_ms,
        bars,
        lanes: availability_lanes(r, &start),
    }
}

/// The prober's view on the same axis: per probed service, its old and its new side
/// (reachable, unreachable, or blank where no prober ran or before the first sample), and
/// the measured outages, when clients reached neither.
fn availability_lanes(r: &Report, start: &str) -> Vec<Lane> {
    let run = &r.run;
    let off = |at: &str| ms_between(start, at).unwrap_or(0);
    let last = run.last_at.as_deref().unwrap_or(start);
    let mut lanes = Vec::new();
    let Some(m) = &r.downtime.measured else {
        return lanes;
    };
    for service in &m.services {
        for side in ["old", "new"] {
            let mut spans = Vec::new();
            for pr in &run.probe_runs {
                let stop = pr.stopped.as_deref().unwrap_or(last);
                let changes: Vec<&ProbeChange> = run
                    .probe_changes
                    .iter()
                    .filter(|c| {
                        &c.service == service
                            && c.side == side
                            && c.at.as_str() >= pr.started.as_str()
                            && c.at.as_str() <= stop
                    })
                    .collect();
                for (i, c) in changes.iter().enumerate() {
                    let end = changes.get(i + 1).map_or(stop, |n| n.at.as_str());
                    spans.push(LaneSpan {
                        start_ms: off(&c.at),
                        end_ms: off(end).max(off(&c.at)),
                        state: if c.up { LaneState::Up } else { LaneState::Down },
                    });
                }
            }
            lanes.push(Lane {
                label: format!("`{service}` {side} side"),
                spans,
            });
        }
        lanes.push(Lane {
            label: format!("`{service}`: clients reached neither"),
            spans: m
                .outages
                .iter()
                .filter(|o| &o.service == service)
                .map(|o| LaneSpan {
                    start_ms: off(&o.down_at),
                    end_ms: off(&o.down_at) + o.ms,
                    state: LaneState::Outage,
                })
                .collect(),
        });
    }
    lanes
}
