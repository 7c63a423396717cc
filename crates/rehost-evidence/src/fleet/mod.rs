//! `rehost fleet report`: one page for many servers, built from each server's own report.
//!
//! Each server's row is its [`Report`], built by the single-server
//! report's reader and [`build`](crate::report::build) from its state directory (`read.rs`);
//! its cells are that report's [`points`](crate::report::Report::points), so the fleet page
//! cannot say more than the server's own report. A state directory that cannot be read is a
//! row that says why, with every cell a finding. The waves are found from the runs' times:
//! runs whose spans overlap ran in one wave (`serial` in Ansible), a gap starts the next.
//!
//! [`Fleet`] is `fleet.json`; [`document`] (`document.rs`) the HTML and Markdown page.

mod document;
pub mod read;

pub use document::document;

use crate::doc::{Level, Mark};
use crate::kompendium::{Point, REQUIREMENTS, Requirement};
use crate::report::{Report, points::Cell, when};
use serde::Serialize;

pub const SCHEMA: &str = "rehost-fleet-report";
pub const SCHEMA_VERSION: u32 = 1;

/// The longest server name shown (a plan's title from a host is data, bounded).
const MAX_NAME_CHARS: usize = 120;

#[derive(Clone, Debug, Serialize)]
pub struct Fleet {
    pub schema: &'static str,
    pub schema_version: u32,
    pub verdict: Level,
    pub headline: String,
    pub servers: Vec<FleetServer>,
    pub waves: Vec<Wave>,
    /// Per point of M 2.319: how many servers show each state.
    pub totals: Vec<PointTotal>,
    /// Every requirement of the Kompendium the page cites, with its sentence.
    pub citations: &'static [Requirement],
}

#[derive(Clone, Debug, Serialize)]
pub struct FleetServer {
    /// 1-based, in the order the state directories were given (and found).
    pub index: usize,
    /// The migration's title, from the plan the run ran (escaped wherever shown).
    pub name: String,
    /// The state directory, as given or found below an argument.
    pub state_dir: String,
    pub env: Option<String>,
    /// The server's own report beside the page, without the extension (`server-0001`: its
    /// `.html`, `.md`, `.json`, `.oscal.json` as written); `None` if unreadable.
    pub report: Option<String>,
    /// Why the state directory could not be read (then every cell is a finding).
    pub unreadable: Option<String>,
    /// Runs beside it that could not be read, with why.
    pub left_out: Vec<String>,
    pub verdict: Level,
    pub headline: String,
    pub points: Vec<Cell>,
    pub downtime: Option<ServerDowntime>,
    /// The run's first and last record, or its end.
    pub started: Option<String>,
    pub ended: Option<String>,
    pub wave: Option<usize>,
}

/// The downtime the report compares with the budget.
#[derive(Clone, Debug, Serialize)]
pub struct ServerDowntime {
    pub ms: Option<u64>,
    /// `measured` (by probes) or `declared` (by the steps).
    pub basis: String,
    pub budget_ms: Option<u64>,
    pub within_budget: Option<bool>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Wave {
    pub index: usize,
    pub start: String,
    pub end: String,
    /// The servers' indexes.
    pub servers: Vec<usize>,
    /// How many of them did not end clean or needing review.
    pub failed: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct PointTotal {
    pub point: Point,
    pub verified: usize,
    pub finding: usize,
    pub not_applicable: usize,
    pub not_run: usize,
}

/// One server as read: its report, or why there is none.
pub enum Entry {
    Read {
        state_dir: String,
        report: Box<Report>,
        /// The file name of its report beside the page, without the extension.
        file_stem: String,
        left_out: Vec<String>,
    },
    Unreadable {
        state_dir: String,
        why: String,
    },
}

/// The file stem of the `index`-th server's own report: `server-0001`. Made from the index
/// only, so nothing a state directory holds can name a file.
pub fn file_stem(index: usize) -> String {
    format!("server-{index:04}")
}

fn name_of(r: &Report) -> String {
    let t = r.migration.title.trim();
    let mut name: String = t.chars().take(MAX_NAME_CHARS).collect();
    if name.len() < t.len() {
        name.push('…');
    }
    name
}

/// The fleet's model from its servers, in order.
pub fn build(entries: Vec<Entry>) -> Fleet {
    let mut servers: Vec<FleetServer> = entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| server(i + 1, e))
        .collect();
    let waves = waves(&mut servers);
    let totals = Point::ALL
        .iter()
        .enumerate()
        .map(|(i, &point)| {
            let count = |m: Mark| {
                servers
                    .iter()
                    .filter(|s| s.points.get(i).is_some_and(|c| c.state == m))
                    .count()
            };
            PointTotal {
                point,
                verified: count(Mark::Verified),
                finding: count(Mark::Finding),
                not_applicable: count(Mark::NotApplicable),
                not_run: count(Mark::NotRun),
            }
        })
        .collect();
    let (verdict, headline) = headline(&servers);
    Fleet {
        schema: SCHEMA,
        schema_version: SCHEMA_VERSION,
        verdict,
        headline,
        servers,
        waves,
        totals,
        citations: REQUIREMENTS,
    }
}

fn server(index: usize, e: Entry) -> FleetServer {
    match e {
        Entry::Read {
            state_dir,
            report,
            file_stem,
            left_out,
        } => {
            let r = &report;
            let d = &r.downtime;
            let downtime = (d.declared_ms.is_some()
                || d.measured.is_some()
                || d.budget_ms.is_some())
            .then(|| ServerDowntime {
                ms: d.measured.as_ref().map(|m| m.total_ms).or(d.declared_ms),
                basis: if d.measured.is_some() {
                    "measured"
                } else {
                    "declared"
                }
                .into(),
                budget_ms: d.budget_ms,
                within_budget: d.within_budget,
            });
            FleetServer {
                index,
                name: name_of(r),
                state_dir,
                env: Some(r.env.clone()),
                report: Some(file_stem),
                unreadable: None,
                left_out,
                verdict: r.verdict.level,
                headline: r.verdict.headline.clone(),
                points: r.points.clone(),
                downtime,
                started: r.run.first_at.clone(),
                ended: r
                    .run
                    .finished
                    .as_ref()
                    .map(|f| f.at.clone())
                    .or_else(|| r.run.last_at.clone()),
                wave: None,
            }
        }
        Entry::Unreadable { state_dir, why } => FleetServer {
            index,
            name: String::new(),
            state_dir,
            env: None,
            report: None,
            unreadable: Some(why.clone()),
            left_out: Vec::new(),
            verdict: Level::Failed,
            headline: format!("The state directory could not be read: {why}."),
            points: Point::ALL
                .iter()
                .map(|&point| Cell {
                    point,
                    state: Mark::Finding,
                    text: format!("not verified: the state directory could not be read ({why})"),
                    steps: Vec::new(),
                })
                .collect(),
            downtime: None,
            started: None,
            ended: None,
            wave: None,
        },
    }
}

/// Runs whose spans overlap are one wave; each server gets its wave's number.
fn waves(servers: &mut [FleetServer]) -> Vec<Wave> {
    let ms = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| t.as_millisecond())
    };
    let mut spans: Vec<(i64, i64, usize)> = servers
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let a = ms(&s.started)?;
            Some((a, ms(&s.ended).unwrap_or(a).max(a), i))
        })
        .collect();
    spans.sort();
    let mut waves: Vec<Wave> = Vec::new();
    let mut end = i64::MIN;
    for (a, b, i) in spans {
        let s = &servers[i];
        if waves.is_empty() || a > end {
            waves.push(Wave {
                index: waves.len() + 1,
                start: s.started.clone().unwrap_or_default(),
                end: s.ended.clone().unwrap_or_default(),
                servers: Vec::new(),
                failed: 0,
            });
            end = b;
        }
        let w = waves.last_mut().expect("pushed");
        if b >= end {
            end = b;
            w.end = s.ended.clone().unwrap_or_default();
        }
        w.servers.push(s.index);
        if s.verdict == Level::Failed {
            w.failed += 1;
        }
        servers[i].wave = Some(w.index);
    }
    waves
}

fn headline(servers: &[FleetServer]) -> (Level, String) {
    let n = servers.len();
    let unreadable = servers.iter().filter(|s| s.unreadable.is_some()).count();
    let failed = servers
        .iter()
        .filter(|s| s.unreadable.is_none() && s.verdict == Level::Failed)
        .count();
    let review = servers
        .iter()
        .filter(|s| s.verdict == Level::Attention)
        .count();
    let clean = servers.iter().filter(|s| s.verdict == Level::Clean).count();
    let level = if unreadable + failed > 0 {
        Level::Failed
    } else if review > 0 {
        Level::Attention
    } else {
        Level::Clean
    };
    let mut parts = vec![format!("{clean} of {n} server(s) clean")];
    if review > 0 {
        parts.push(format!("{review} need review"));
    }
    if failed > 0 {
        parts.push(format!("{failed} failed"));
    }
    if unreadable > 0 {
        parts.push(format!(
            "{unreadable} state director(ies) could not be read"
        ));
    }
    (level, parts.join(", "))
}

/// The fleet as pretty JSON (docs/report.md, "The fleet report").
pub fn render_json(f: &Fleet) -> String {
    serde_json::to_string_pretty(f).expect("the fleet serializes") + "\n"
}

/// `2026-12-05 21:03:11.482 UTC`, or `—`.
fn at(t: &Option<String>) -> String {
    t.as_deref().map(when).unwrap_or_else(|| "—".into())
}

#[cfg(test)]
mod tests;
