//! OSCAL assessment results (NIST OSCAL 1.1.2, `assessment-results`) from reports: one result
//! per run, an observation per point of M 2.319 with its verdict, and a finding per point and
//! Kompendium requirement its evidence answers, the requirement's id as the finding's
//! `target`. Text is the report's, escaped for Markdown (OSCAL's markup fields are Markdown);
//! identifiers are derived from the journal's digest, so the same state directory gives the
//! same document.

use crate::doc::{Mark, md_inline};
use crate::kompendium;
use crate::report::Report;
use serde_json::{Value, json};

pub const OSCAL_VERSION: &str = "1.1.2";

/// The namespace of rehost's own props.
pub const NS: &str = "https://github.com/rehost/rehost/ns/oscal";

/// A deterministic UUID (version 5's layout) from `seed`.
fn uuid(seed: &str) -> String {
    let h = blake3::hash(seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h.as_bytes()[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x: String = b.iter().map(|v| format!("{v:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// Text for an OSCAL markup field: escaped Markdown on one line, never empty (OSCAL's strings
/// have no leading or trailing space).
fn markup(s: &str) -> String {
    let t = md_inline(s.trim(), false);
    let t = t.trim();
    if t.is_empty() { "—".into() } else { t.into() }
}

/// A journal time as OSCAL's `date-time-with-timezone`.
fn datetime(at: Option<&str>) -> Option<String> {
    at.and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.to_string())
}

fn prop(name: &str, value: &str) -> Value {
    json!({ "name": name, "ns": NS, "value": value })
}

fn state_word(m: Mark) -> &'static str {
    match m {
        Mark::Verified => "verified",
        Mark::Finding => "finding",
        Mark::NotApplicable => "not-applicable",
        Mark::NotRun => "not-run",
    }
}

/// The back-matter resource that stands for a run's journal (and its state directory).
fn journal_resource(i: usize, r: &Report) -> Value {
    json!({
        "uuid": uuid(&format!("{i}:{}:{}:journal", r.run.journal_blake3, r.env)),
        "title": markup(&format!("The journal of the run in `{}`", r.env)),
        "description": markup(&format!(
            "The state directory's journal (`journal`), {} records, BLAKE3 `{}`; the files it names are kept beside it with their digests",
            r.run.journal_records, r.run.journal_blake3
        )),
        "props": [prop("journal-blake3", &r.run.journal_blake3)],
    })
}

/// One result: the `i`-th run (copies of one state directory are runs of their own).
fn result(i: usize, name: &str, r: &Report) -> Value {
    let seed = format!("{i}:{}:{}", r.run.journal_blake3, r.env);
    let collected = datetime(r.run.last_at.as_deref())
        .or_else(|| datetime(r.run.first_at.as_deref()))
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
    let mut observations = Vec::new();
    let mut findings = Vec::new();
    let mut controls: Vec<&str> = Vec::new();
    for c in &r.points {
        let reqs = c.point.requirements();
        for id in kompendium::ids(&reqs) {
            if !controls.contains(&id) {
                controls.push(id);
            }
        }
        let obs = uuid(&format!("{seed}:observation:{}", c.point.id()));
        let journal = journal_resource(i, r);
        observations.push(json!({
            "uuid": obs,
            "title": markup(&format!("M 2.319: {}", c.point.label())),
            "description": markup(&format!("{} — {}: {}", c.point.clause(), c.state.label(), c.text)),
            "props": [
                prop("m2319-point", c.point.id()),
                prop("verdict", state_word(c.state)),
            ],
            "methods": ["TEST"],
            "types": ["finding"],
            "collected": collected,
            "relevant-evidence": [{
                "href": format!("#{}", journal["uuid"].as_str().unwrap_or_default()),
                "description": markup(&format!(
                    "The run's journal, BLAKE3 `{}` ({} records), and the state directory's kept files",
                    r.run.journal_blake3, r.run.journal_records
                )),
            }],
        }));
        let (state, reason) = match c.state {
            Mark::Verified => ("satisfied", "pass"),
            Mark::Finding => ("not-satisfied", "fail"),
            Mark::NotRun => ("not-satisfied", "other"),
            // Nothing to say about a requirement the run had no part in.
            Mark::NotApplicable => continue,
        };
        for req in &reqs {
            findings.push(json!({
                "uuid": uuid(&format!("{seed}:finding:{}:{}:{}", c.point.id(), req.id, req.sentence)),
                "title": markup(&format!("{} {} — M 2.319 {}", req.id, req.title, c.point.label())),
                "description": markup(&format!(
                    "{} ({}, sentence {}: “{}”): {}",
                    c.state.label(), req.edition, req.sentence, req.quote, c.text
                )),
                "props": [
                    prop("m2319-point", c.point.id()),
                    prop("verdict", state_word(c.state)),
                ],
                "target": {
                    "type": "statement-id",
                    "target-id": req.id,
                    "status": { "state": state, "reason": reason },
                },
                "related-observations": [{ "observation-uuid": obs }],
            }));
        }
    }
    let mut res = json!({
        "uuid": uuid(&format!("{seed}:result")),
        "title": markup(&format!("Migration “{name}” ({})", r.env)),
        "description": markup(&format!("{}: {}", r.verdict.level.label(), r.verdict.headline)),
        "start": datetime(r.run.first_at.as_deref()).unwrap_or_else(|| collected.clone()),
        "props": [prop("verdict", r.verdict.level.name())],
        "reviewed-controls": {
            "control-selections": [{
                "include-controls": controls.iter().map(|id| json!({ "control-id": id })).collect::<Vec<_>>(),
            }],
        },
        "observations": observations,
    });
    if let Some(end) = r.run.finished.as_ref().and_then(|f| datetime(Some(&f.at))) {
        res["end"] = json!(end);
    }
    if !findings.is_empty() {
        res["findings"] = json!(findings);
    }
    res
}

/// The assessment results of `runs` (a server's name and its report), one result each.
pub fn assessment_results(title: &str, runs: &[(&str, &Report)]) -> Value {
    let seed: String = runs
        .iter()
        .map(|(_, r)| r.run.journal_blake3.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let last = runs
        .iter()
        .filter_map(|(_, r)| r.run.last_at.as_deref())
        .filter_map(|t| t.parse::<jiff::Timestamp>().ok())
        .max()
        .map(|t| t.to_string())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
    let plan = uuid(&format!("{seed}:plan"));
    let mut resources = vec![json!({
        "uuid": plan,
        "title": "The migration plans as run",
        "description": "Each run's plan, as the snapshot its journal names (`plans/<digest>.toml` in the state directory): what was to be done and checked, the assessment plan of these results.",
    })];
    resources.extend(
        runs.iter()
            .enumerate()
            .map(|(i, (_, r))| journal_resource(i, r)),
    );
    let version = runs
        .iter()
        .map(|(_, r)| r.rehost_version.as_str())
        .find(|v| !v.is_empty())
        .unwrap_or("unknown");
    json!({
        "assessment-results": {
            "uuid": uuid(&format!("{seed}:assessment-results")),
            "metadata": {
                "title": markup(title),
                "last-modified": last,
                "version": format!("rehost {version}"),
                "oscal-version": OSCAL_VERSION,
                "remarks": markup(&format!(
                    "Points of BSI IT-Grundschutz M 2.319 (Migration of a server) and the requirements of the {} their evidence answers, as rehost's report shows them.",
                    kompendium::EDITION
                )),
            },
            "import-ap": {
                "href": format!("#{plan}"),
                "remarks": "The assessment plan is the migration plan each run's journal names (its snapshot is in the state directory).",
            },
            "results": runs
                .iter()
                .enumerate()
                .map(|(i, (name, r))| result(i, name, r))
                .collect::<Vec<_>>(),
            "back-matter": { "resources": resources },
        }
    })
}

/// [`assessment_results`] as pretty JSON.
pub fn render(title: &str, runs: &[(&str, &Report)]) -> String {
    serde_json::to_string_pretty(&assessment_results(title, runs)).expect("JSON values serialize")
        + "\n"
}
