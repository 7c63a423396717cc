//! The fleet page: the verdict, the matrix of servers × points of M 2.319 (each row linked to
//! the server's own report), downtime against each budget, the waves on a timeline, every
//! finding in words, and the Kompendium's requirements the page cites.

use super::*;
use crate::doc::{
    Bar, BarState, Block, Document, Link, Matrix, MatrixCell, MatrixRow, Timeline, human_ms,
};
use crate::kompendium::{self, EDITION};

fn h(level: u8, text: &str) -> Block {
    Block::Heading {
        level,
        text: text.into(),
    }
}

fn p(text: String) -> Block {
    Block::Paragraph { text }
}

/// How many verdict items the box lists before it counts the rest.
const VERDICT_ITEMS: usize = 40;

/// The page; its rows link each server's report of extension `ext` (`html`, `md`).
pub fn document(f: &Fleet, ext: &str) -> Document {
    let mut b = Vec::new();
    let title = format!("Fleet report: {} server(s)", f.servers.len());
    b.push(h(1, &title));
    verdict(f, &mut b);
    b.push(p(
        "Each row is one server's run, read from its state directory by the same reader as `rehost report`; a cell says what that server's journal proves for the point of BSI IT-Grundschutz M 2.319, and its report (linked) shows the evidence.".into(),
    ));
    b.push(kompendium::cite(&Point::ALL));
    matrix(f, ext, &mut b);
    downtime(f, &mut b);
    waves(f, &mut b);
    findings(f, &mut b);
    citations(&mut b);
    Document { title, blocks: b }
}

fn verdict(f: &Fleet, b: &mut Vec<Block>) {
    let bad: Vec<&FleetServer> = f
        .servers
        .iter()
        .filter(|s| s.verdict != Level::Clean)
        .collect();
    let mut items: Vec<String> = bad
        .iter()
        .take(VERDICT_ITEMS)
        .map(|s| {
            let mark = if s.verdict == Level::Failed {
                "Failed"
            } else {
                "Review"
            };
            format!("{mark}: {} — {}", label(s), s.headline)
        })
        .collect();
    if bad.len() > VERDICT_ITEMS {
        items.push(format!(
            "and {} more (the matrix below)",
            bad.len() - VERDICT_ITEMS
        ));
    }
    b.push(Block::Verdict {
        level: f.verdict,
        headline: f.headline.clone(),
        items,
    });
}

/// `#3 web01 (production)`, or `#3 state directory fleet/x` when unreadable.
fn label(s: &FleetServer) -> String {
    match &s.env {
        Some(env) => format!("#{} {} ({env})", s.index, s.name),
        None => format!("#{} state directory {}", s.index, s.state_dir),
    }
}

fn matrix(f: &Fleet, ext: &str, b: &mut Vec<Block>) {
    b.push(h(2, "M 2.319, server by server"));
    b.push(p("verified: every step that proves the point passed and the journal holds its result; finding: a step found differences, failed or did not complete, or the state directory does not verify or could not be read; not run: the plan has a step for it that did not run; n/a, not applicable: the plan has no step for it (rollback: nothing needed rolling back). Hover over a cell for why; every finding is listed below, and each server's report (linked) holds its evidence.".into()));
    let mut head = vec!["Server".to_string(), "Environment".into()];
    head.extend(Point::ALL.iter().map(|p| p.label().to_string()));
    head.extend(["Downtime".into(), "Verdict".into()]);
    let rows = f
        .servers
        .iter()
        .map(|s| {
            let name = if s.unreadable.is_some() {
                format!("#{} (unreadable) {}", s.index, s.state_dir)
            } else {
                format!("#{} {}", s.index, s.name)
            };
            let mut cells = vec![plain(s.env.as_deref().unwrap_or("—"), "")];
            cells.extend(s.points.iter().map(|c| MatrixCell {
                mark: Some(c.state),
                // Narrow enough for nine columns side by side.
                text: if c.state == Mark::NotApplicable {
                    "n/a".into()
                } else {
                    String::new()
                },
                why: c.text.clone(),
            }));
            cells.push(plain(&downtime_short(s), ""));
            cells.push(MatrixCell {
                mark: Some(match s.verdict {
                    Level::Clean => Mark::Verified,
                    Level::Attention => Mark::NotRun,
                    Level::Failed => Mark::Finding,
                }),
                text: s.verdict.label().to_lowercase(),
                why: s.headline.clone(),
            });
            MatrixRow {
                label: name,
                link: s
                    .report
                    .as_ref()
                    .and_then(|stem| Link::sibling(&format!("{stem}.{ext}"))),
                cells,
            }
        })
        .collect();
    b.push(Block::Matrix(Matrix { head, rows }));
    b.push(Block::Table {
        head: ["Point", "Verified", "Finding", "Not run", "Not applicable"]
            .map(String::from)
            .to_vec(),
        rows: f
            .totals
            .iter()
            .map(|t| {
                vec![
                    t.point.label().into(),
                    t.verified.to_string(),
                    t.finding.to_string(),
                    t.not_run.to_string(),
                    t.not_applicable.to_string(),
                ]
            })
            .collect(),
    });
}

fn plain(text: &str, why: &str) -> MatrixCell {
    MatrixCell {
        mark: None,
        text: text.into(),
        why: why.into(),
    }
}

fn downtime_short(s: &FleetServer) -> String {
    let Some(d) = &s.downtime else {
        return "—".into();
    };
    let figure = d.ms.map(human_ms).unwrap_or_else(|| "open".into());
    match (d.budget_ms, d.within_budget) {
        (Some(b), Some(true)) => format!("{figure} ≤ {}", human_ms(b)),
        (Some(b), Some(false)) => format!("{figure} > {} OVER", human_ms(b)),
        (Some(b), None) => format!("{figure} (budget {})", human_ms(b)),
        (None, _) => format!("{figure} (no budget)"),
    }
}

fn downtime(f: &Fleet, b: &mut Vec<Block>) {
    b.push(h(2, "Downtime against each budget"));
    b.push(p("The figure each server's report compares with its plan's `max_downtime`: the downtime measured by the probes where services have a `probe`, else the one the steps declare (their stops and starts).".into()));
    let rows = f
        .servers
        .iter()
        .filter_map(|s| {
            let d = s.downtime.as_ref()?;
            Some(vec![
                format!("#{} {}", s.index, s.name),
                d.ms.map(human_ms)
                    .unwrap_or_else(|| "not ended or not recorded".into()),
                d.basis.clone(),
                d.budget_ms.map(human_ms).unwrap_or_else(|| "—".into()),
                match d.within_budget {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => "—".into(),
                },
            ])
        })
        .collect::<Vec<_>>();
    if rows.is_empty() {
        b.push(p("No server recorded a downtime or has a budget.".into()));
    } else {
        b.push(Block::Table {
            head: ["Server", "Downtime", "Basis", "Budget", "Within budget"]
                .map(String::from)
                .to_vec(),
            rows,
        });
    }
}

fn waves(f: &Fleet, b: &mut Vec<Block>) {
    b.push(h(2, "Waves"));
    if f.waves.is_empty() {
        b.push(p("No run recorded a time.".into()));
        return;
    }
    b.push(p("Runs whose times overlap ran in one wave; a wave starts when every run of the one before has ended (as Ansible's `serial` runs them). The times are the journals' own: each run's first record to its end record (or its last, when it did not end).".into()));
    b.push(Block::Table {
        head: ["Wave", "Start", "End", "Servers", "Failed"]
            .map(String::from)
            .to_vec(),
        rows: f
            .waves
            .iter()
            .map(|w| {
                vec![
                    w.index.to_string(),
                    at(&Some(w.start.clone())),
                    at(&Some(w.end.clone())),
                    w.servers.len().to_string(),
                    w.failed.to_string(),
                ]
            })
            .collect(),
    });
    let start = f
        .waves
        .iter()
        .filter_map(|w| w.start.parse::<jiff::Timestamp>().ok())
        .min();
    let end = f
        .waves
        .iter()
        .filter_map(|w| w.end.parse::<jiff::Timestamp>().ok())
        .max();
    let (Some(start), Some(end)) = (start, end) else {
        return;
    };
    let off = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| u64::try_from(t.as_millisecond() - start.as_millisecond()).unwrap_or(0))
    };
    let mut bars: Vec<Bar> = f
        .servers
        .iter()
        .filter_map(|s| {
            let a = off(&s.started)?;
            let e = off(&s.ended).unwrap_or(a).max(a);
            let rolled_back = s
                .points
                .iter()
                .any(|c| c.point == Point::Rollback && c.state == Mark::Verified);
            Some(Bar {
                id: file_stem(s.index),
                label: format!("wave {} · #{} {}", s.wave.unwrap_or(0), s.index, s.name),
                start_ms: a,
                end_ms: e,
                state: if rolled_back {
                    BarState::RolledBack
                } else if s.verdict == Level::Failed {
                    BarState::Failed
                } else {
                    BarState::Done
                },
                note: format!("{}: {}", s.verdict.label().to_lowercase(), s.headline),
            })
        })
        .collect();
    bars.sort_by_key(|b| (b.start_ms, b.end_ms));
    b.push(Block::Timeline(Timeline {
        start: start.to_string(),
        end: end.to_string(),
        span_ms: u64::try_from(end.as_millisecond() - start.as_millisecond()).unwrap_or(0),
        bars,
        lanes: Vec::new(),
    }));
}

fn findings(f: &Fleet, b: &mut Vec<Block>) {
    let items: Vec<String> = f
        .servers
        .iter()
        .filter(|s| s.unreadable.is_none())
        .flat_map(|s| {
            s.points
                .iter()
                .filter(|c| matches!(c.state, Mark::Finding | Mark::NotRun))
                .map(move |c| {
                    format!(
                        "{} — {} ({}): {}",
                        label(s),
                        c.point.label(),
                        c.state.label(),
                        c.text
                    )
                })
        })
        .collect();
    let left_out: Vec<String> = f
        .servers
        .iter()
        .flat_map(|s| {
            s.left_out
                .iter()
                .map(move |w| format!("{}: a run beside it was left out: {w}", label(s)))
        })
        .collect();
    let unreadable: Vec<String> = f
        .servers
        .iter()
        .filter_map(|s| {
            s.unreadable
                .as_ref()
                .map(|why| format!("{}: {why}; nothing of it is verified", label(s)))
        })
        .collect();
    if items.is_empty() && left_out.is_empty() && unreadable.is_empty() {
        return;
    }
    b.push(h(2, "Findings and points not run"));
    if !unreadable.is_empty() {
        b.push(Block::List { items: unreadable });
    }
    if !items.is_empty() {
        b.push(Block::List { items });
    }
    if !left_out.is_empty() {
        b.push(Block::List { items: left_out });
    }
}

fn citations(b: &mut Vec<Block>) {
    b.push(h(2, "M 2.319 and the IT-Grundschutz-Kompendium"));
    b.push(p(format!(
        "Each point of M 2.319 and the requirements of the {EDITION} its evidence answers (the sentences quoted below). The journal itself, every step recorded with who did it and when as it happened, answers {}.",
        kompendium::ids(&kompendium::journal_requirements()).join(", ")
    )));
    b.push(Block::Table {
        head: ["Point", "M 2.319", "Kompendium"]
            .map(String::from)
            .to_vec(),
        rows: Point::ALL
            .iter()
            .map(|p| {
                vec![
                    p.label().into(),
                    p.clause().into(),
                    kompendium::ids(&p.requirements()).join(", "),
                ]
            })
            .collect(),
    });
    b.push(kompendium::citations_table());
}
