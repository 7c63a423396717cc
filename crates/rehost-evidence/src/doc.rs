//! The document model shared by the concept and the report, and its three renderers.
//!
//! Text in the model is plain text with one convention: a part between backticks is code, read
//! as CommonMark reads code spans (`segments`). The renderers escape everything else (HTML
//! entities; Markdown's inline and block syntax; control characters as in a terminal) and write
//! each code span so that it ends where it should (Markdown: a fence longer than any backtick
//! run in it), so text from plans, hosts and files cannot become markup in either format. A
//! backtick inside such text can only shift which parts are code; both kinds are escaped.

use rehost_plan::escape_control;
use serde::Serialize;

/// A document: a title and its blocks, in reading order.
#[derive(Clone, Debug, Serialize)]
pub struct Document {
    pub title: String,
    pub blocks: Vec<Block>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "block", rename_all = "snake_case")]
pub enum Block {
    Heading {
        level: u8,
        text: String,
    },
    Paragraph {
        text: String,
    },
    List {
        items: Vec<String>,
    },
    Table {
        head: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    /// The verdict of a run: shown first, coloured by its level.
    Verdict {
        level: Level,
        headline: String,
        items: Vec<String>,
    },
    /// Bars on a time axis.
    Timeline(Timeline),
    /// Text shown as it is (the plan): monospaced, nothing interpreted.
    Preformatted {
        text: String,
    },
    /// Rows of marked cells (the fleet's servers × the points of M 2.319), each row perhaps
    /// linked to a document written beside this one.
    Matrix(Matrix),
    /// The survey's dependency map: inline SVG in HTML, where it is in Markdown.
    Map(crate::survey_map::DependencyMap),
}

/// A table whose first column names a row (linked where a [`Link`] is given) and whose cells
/// each carry a [`Mark`] or plain text.
#[derive(Clone, Debug, Serialize)]
pub struct Matrix {
    pub head: Vec<String>,
    pub rows: Vec<MatrixRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MatrixRow {
    pub label: String,
    pub link: Option<Link>,
    pub cells: Vec<MatrixCell>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MatrixCell {
    /// `None`: plain text (a figure), no colour.
    pub mark: Option<Mark>,
    /// What the cell shows (the mark's label when empty).
    pub text: String,
    /// Why, shown on hover and in print after the matrix's own findings list.
    pub why: String,
}

/// What a run shows for one point of M 2.319 (`report::points`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// Every step that proves it passed, and the journal holds their results.
    Verified,
    /// A step that proves it found differences, failed, or did not complete.
    Finding,
    /// The plan has no step for it (or nothing happened that needed it: no rollback).
    NotApplicable,
    /// The plan has a step for it that has not run (yet).
    NotRun,
}

impl Mark {
    pub fn label(self) -> &'static str {
        match self {
            Mark::Verified => "verified",
            Mark::Finding => "finding",
            Mark::NotApplicable => "not applicable",
            Mark::NotRun => "not run",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Mark::Verified => "m-verified",
            Mark::Finding => "m-finding",
            Mark::NotApplicable => "m-na",
            Mark::NotRun => "m-not-run",
        }
    }
}

/// A link to a document rehost wrote beside this one: a plain file name (letters, digits,
/// `.`, `-`, `_`; not starting with `.`), never a path or a URL, so nothing read from a state
/// directory can become one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Link(String);

impl Link {
    /// `None` unless `name` is a plain file name.
    pub fn sibling(name: &str) -> Option<Link> {
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        plain.then(|| Link(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Everything done, verified and within budget; nothing decided by flag.
    Clean,
    /// Finished, but something was decided by flag, skipped, retried or rolled back.
    Attention,
    /// Not finished, failed, not verified or over budget.
    Failed,
}

impl Level {
    /// How the verdict line names the level.
    pub fn label(self) -> &'static str {
        match self {
            Level::Clean => "CLEAN",
            Level::Attention => "REVIEW NEEDED",
            Level::Failed => "FAILED",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Clean => "clean",
            Level::Attention => "attention",
            Level::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Timeline {
    /// The time the axis starts at (RFC 3339) and its length.
    pub start: String,
    pub end: String,
    pub span_ms: u64,
    pub bars: Vec<Bar>,
    /// Availability over the same axis (the prober's samples), below the bars.
    pub lanes: Vec<Lane>,
}

/// One row of availability: spans of one state; no span where nothing was measured.
#[derive(Clone, Debug, Serialize)]
pub struct Lane {
    pub label: String,
    pub spans: Vec<LaneSpan>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LaneSpan {
    pub start_ms: u64,
    pub end_ms: u64,
    pub state: LaneState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LaneState {
    /// Reachable.
    Up,
    /// Unreachable.
    Down,
    /// Clients reached neither side.
    Outage,
}

impl LaneState {
    pub fn name(self) -> &'static str {
        match self {
            LaneState::Up => "reachable",
            LaneState::Down => "unreachable",
            LaneState::Outage => "outage",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Bar {
    /// The step id (also the bar's anchor).
    pub id: String,
    pub label: String,
    /// Offsets from the axis start.
    pub start_ms: u64,
    pub end_ms: u64,
    pub state: BarState,
    /// What happened, one line (who confirmed, the result).
    pub note: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BarState {
    Done,
    Manual,
    Failed,
    Skipped,
    Interrupted,
    Superseded,
    RolledBack,
    NotConfirmed,
}

impl BarState {
    pub fn name(self) -> &'static str {
        match self {
            BarState::Done => "done",
            BarState::Manual => "manual",
            BarState::Failed => "failed",
            BarState::Skipped => "skipped",
            BarState::Interrupted => "interrupted",
            BarState::Superseded => "superseded",
            BarState::RolledBack => "rolled-back",
            BarState::NotConfirmed => "not-confirmed",
        }
    }
}

/// A duration in milliseconds for people: `850ms`, `12.3s`, `4m 05s`, `2h 10m`.
pub fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        match (ms / 1000) % 60 {
            0 => format!("{}m", ms / 60_000),
            s => format!("{}m {s:02}s", ms / 60_000),
        }
    } else {
        match (ms / 60_000) % 60 {
            0 => format!("{}h", ms / 3_600_000),
            m => format!("{}h {m:02}m", ms / 3_600_000),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Markdown

/// The document as Markdown (GitHub-flavoured tables), for tickets and wikis.
pub fn render_markdown(doc: &Document) -> String {
    let mut out = String::new();
    for block in &doc.blocks {
        match block {
            Block::Heading { level, text } => {
                out.push_str(&format!(
                    "{} {}\n\n",
                    "#".repeat(*level as usize),
                    md_inline(text, false)
                ));
            }
            Block::Paragraph { text } => {
                out.push_str(&md_line(text));
                out.push_str("\n\n");
            }
            Block::List { items } => {
                for i in items {
                    out.push_str(&format!("- {}\n", md_line(i)));
                }
                out.push('\n');
            }
            Block::Table { head, rows } => md_table(&mut out, head, rows),
            Block::Matrix(m) => md_matrix(&mut out, m),
            Block::Verdict {
                level,
                headline,
                items,
            } => {
                out.push_str(&format!(
                    "> **Verdict: {} — {}**\n",
                    level.label(),
                    md_inline(headline, false)
                ));
                if !items.is_empty() {
                    out.push_str(">\n");
                }
                for i in items {
                    out.push_str(&format!("> - {}\n", md_line(i)));
                }
                out.push('\n');
            }
            Block::Timeline(t) => {
                let rows: Vec<Vec<String>> = t
                    .bars
                    .iter()
                    .map(|b| {
                        vec![
                            b.label.clone(),
                            format!("+{}", human_ms(b.start_ms)),
                            human_ms(b.end_ms.saturating_sub(b.start_ms)),
                            b.state.name().into(),
                            b.note.clone(),
                        ]
                    })
                    .collect();
                md_table(
                    &mut out,
                    &["Step", "Start", "Took", "Result", "Note"].map(String::from),
                    &rows,
                );
                if !t.lanes.is_empty() {
                    let rows: Vec<Vec<String>> = t
                        .lanes
                        .iter()
                        .flat_map(|l| {
                            l.spans.iter().map(|s| {
                                vec![
                                    l.label.clone(),
                                    format!("+{}", human_ms(s.start_ms)),
                                    human_ms(s.end_ms.saturating_sub(s.start_ms)),
                                    s.state.name().into(),
                                ]
                            })
                        })
                        .collect();
                    out.push_str("Availability, as the probes saw it:\n\n");
                    md_table(
                        &mut out,
                        &["Probed", "From", "For", "State"].map(String::from),
                        &rows,
                    );
                }
            }
            Block::Preformatted { text } => {
                let longest = longest_run(text, '`');
                let fence = "`".repeat(longest.max(2) + 1);
                out.push_str(&fence);
                out.push('\n');
                for line in text.lines() {
                    out.push_str(&escape_control(line));
                    out.push('\n');
                }
                out.push_str(&fence);
                out.push_str("\n\n");
            }
            Block::Map(m) => {
                out.push_str(&md_line(&format!(
                    "{} Markdown does not hold the map: the HTML form of this document embeds it, and `rehost survey --inventory FILE --map map.svg` draws it.",
                    m.caption()
                )));
                out.push_str("\n\n");
            }
        }
    }
    out
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut cur) = (0, 0);
    for x in s.chars() {
        cur = if x == c { cur + 1 } else { 0 };
        best = best.max(cur);
    }
    best
}

fn md_matrix(out: &mut String, m: &Matrix) {
    let rows: Vec<Vec<String>> = m
        .rows
        .iter()
        .map(|r| {
            let label = match &r.link {
                // The link text escaped like any text; the target is a plain file name.
                Some(l) => format!("[{}]({})", md_inline(&r.label, true), l.as_str()),
                None => md_inline(&r.label, true),
            };
            std::iter::once(label)
                .chain(r.cells.iter().map(|c| md_inline(&cell_text(c), true)))
                .collect()
        })
        .collect();
    let head: Vec<String> = m.head.iter().map(|h| md_inline(h, true)).collect();
    out.push_str(&format!("| {} |\n", head.join(" | ")));
    out.push_str(&format!("|{}\n", "---|".repeat(head.len())));
    for r in rows {
        out.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    out.push('\n');
}

fn cell_text(c: &MatrixCell) -> String {
    match (c.mark, c.text.is_empty()) {
        (Some(m), true) => m.label().to_owned(),
        _ => c.text.clone(),
    }
}

fn md_table(out: &mut String, head: &[String], rows: &[Vec<String>]) {
    let head: Vec<String> = head.iter().map(|h| md_inline(h, true)).collect();
    out.push_str(&format!("| {} |\n", head.join(" | ")));
    out.push_str(&format!("|{}\n", "---|".repeat(head.len())));
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| md_inline(c, true)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out.push('\n');
}

/// A piece of one line of the document model: text, or code.
#[derive(Debug, PartialEq, Eq)]
enum Seg<'a> {
    Text(&'a str),
    Code(&'a str),
}

/// Cuts a line of the document model into text and code as CommonMark reads backticks: a run of
/// n backticks opens a code span that the next run of exactly n closes, and a run without such
/// a closer is literal text. Both renderers use this one reading, and each writes what it found
/// so that its reader cannot read it otherwise (Markdown: a code fence longer than any run in
/// the code, backticks in text escaped), whatever backticks a value brought in. Linear: each
/// run's closer is found through the next run of its length.
fn segments(s: &str) -> Vec<Seg<'_>> {
    let b = s.as_bytes();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'`' {
            let start = i;
            while i < b.len() && b[i] == b'`' {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    let mut next_same = vec![None; runs.len()];
    let mut last_of_len: std::collections::HashMap<usize, usize> = Default::default();
    for k in (0..runs.len()).rev() {
        let len = runs[k].1 - runs[k].0;
        next_same[k] = last_of_len.insert(len, k);
    }
    let mut out = Vec::new();
    let (mut text_from, mut k) = (0, 0);
    while k < runs.len() {
        match next_same[k] {
            Some(close) => {
                if runs[k].0 > text_from {
                    out.push(Seg::Text(&s[text_from..runs[k].0]));
                }
                out.push(Seg::Code(&s[runs[k].1..runs[close].0]));
                text_from = runs[close].1;
                k = close + 1;
            }
            None => k += 1,
        }
    }
    if text_from < s.len() {
        out.push(Seg::Text(&s[text_from..]));
    }
    out
}

/// Markdown for one line of the document model: `code` spans kept as code (where nothing is
/// interpreted), everything else escaped by [`md_text`].
pub fn md_inline(s: &str, in_table: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for seg in segments(s) {
        match seg {
            Seg::Code(code) => md_code(&mut out, code, in_table),
            Seg::Text(text) => out.push_str(&md_text(text)),
        }
    }
    out
}

/// A CommonMark code span holding exactly `code`: fenced by one backtick more than the longest
/// run in it, padded with a space where it starts or ends with a backtick (or with a space at
/// both ends, which a reader strips).
fn md_code(out: &mut String, code: &str, in_table: bool) {
    let code = escape_control(&code.replace(['\n', '\r'], " "));
    // GFM splits table cells at `|` even inside code spans, unless escaped.
    let code = if in_table {
        code.replace('|', "\\|")
    } else {
        code
    };
    let fence = "`".repeat(longest_run(&code, '`') + 1);
    let pad = code.starts_with('`')
        || code.ends_with('`')
        || (code.starts_with(' ') && code.ends_with(' ') && !code.trim().is_empty());
    let pad = if pad { " " } else { "" };
    out.push_str(&fence);
    out.push_str(pad);
    out.push_str(&code);
    out.push_str(pad);
    out.push_str(&fence);
}

/// Escapes text for Markdown: HTML-significant characters as entities, inline syntax with
/// backslashes, newlines as spaces (so no block syntax can start), control characters as in a
/// terminal.
pub fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in escape_control(&s.replace(['\n', '\r'], " ")).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// A line that starts a block of its own (a paragraph, a list item): inline Markdown that can
/// start no other block — no indented code, no nested list.
fn md_line(s: &str) -> String {
    md_block_start(&md_inline(s.trim_start(), false))
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
    format!("{}\\{}", &s[..digits], &s[digits..])
}

// ---------------------------------------------------------------------------------------------
// HTML

const CSS: &str = "\
:root{--ok:#1b7f3b;--warn:#9a6700;--bad:#b3261e;--line:#c8c8c8;--soft:#f3f3f3}\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#1d1d1d;line-height:1.45}\
h1{font-size:1.7rem;margin-bottom:0.3rem}h2{border-bottom:1px solid var(--line);padding-bottom:0.2rem;margin-top:2rem}\
table{border-collapse:collapse;margin:0.5rem 0 1.5rem;max-width:100%}td,th{border:1px solid var(--line);padding:0.3rem 0.6rem;text-align:left;vertical-align:top;overflow-wrap:break-word}td code{overflow-wrap:anywhere}\
th{background:var(--soft)}code,pre{background:var(--soft);font-family:ui-monospace,'DejaVu Sans Mono',monospace}\
pre{padding:0.8rem;overflow-x:auto;white-space:pre-wrap;font-size:0.85rem;border:1px solid var(--line)}\
.verdict{border:2px solid;border-left-width:0.6rem;padding:0.6rem 1rem;margin:1rem 0 1.5rem}\
.verdict h2{border:0;margin:0.2rem 0}.verdict ul{margin:0.4rem 0}\
.verdict.clean{border-color:var(--ok);background:#eef8f0}.verdict.clean h2{color:var(--ok)}\
.verdict.attention{border-color:var(--warn);background:#fff8e5}.verdict.attention h2{color:var(--warn)}\
.verdict.failed{border-color:var(--bad);background:#fdeeed}.verdict.failed h2{color:var(--bad)}\
.timeline{margin:0.5rem 0 1.5rem}.tl-row{display:grid;grid-template-columns:16rem 1fr 18rem;gap:0.6rem;align-items:center;border-bottom:1px dotted var(--line);padding:0.15rem 0;break-inside:avoid}\
.tl-label{overflow-wrap:anywhere;font-size:0.9rem}.tl-note{font-size:0.8rem;color:#444;overflow-wrap:anywhere}\
.tl-track{position:relative;height:1rem;background:var(--soft)}\
.tl-bar{position:absolute;top:0;bottom:0;min-width:3px;background:var(--ok);-webkit-print-color-adjust:exact;print-color-adjust:exact}\
.tl-bar.manual{background:#2f5fb3}.tl-bar.failed,.tl-bar.interrupted{background:var(--bad)}\
.tl-bar.skipped,.tl-bar.not-confirmed{background:var(--warn)}\
.tl-bar.superseded,.tl-bar.rolled-back{background:repeating-linear-gradient(45deg,#888 0 4px,#ddd 4px 8px)}\
.tl-bar.reachable{background:#7cc68d}.tl-bar.unreachable{background:#e8a29c}.tl-bar.outage{background:var(--bad)}\
.tl-row.lane .tl-track{height:0.7rem}\
.tl-axis{display:grid;grid-template-columns:16rem 1fr 18rem;gap:0.6rem;font-size:0.75rem;color:#555}\
.tl-ticks{display:flex;justify-content:space-between}\
.matrix{display:block;overflow-x:auto}.matrix td,.matrix th{font-size:0.8rem;padding:0.2rem 0.4rem}.matrix td{white-space:nowrap}\
.matrix th[scope=row]{font-weight:normal;min-width:11rem;overflow-wrap:anywhere}\
.map{margin:0.5rem 0 1.5rem;overflow-x:auto}.map svg{max-width:none}.map figcaption{font-size:0.85rem;color:#444}\
.m-verified{background:#dcefe0}.m-finding{background:#f6d5d2;font-weight:bold}.m-not-run{background:#fff1c2}.m-na{color:#666}\
.matrix td{-webkit-print-color-adjust:exact;print-color-adjust:exact}\
.legend span{display:inline-block;margin-right:1rem;font-size:0.8rem}\
.legend i{display:inline-block;width:0.9rem;height:0.7rem;margin-right:0.3rem;vertical-align:middle;-webkit-print-color-adjust:exact;print-color-adjust:exact}\
@media print{body{max-width:none;margin:0;padding:0;font-size:10pt}h2{break-after:avoid}\
.matrix{display:table}.matrix td,.matrix th{font-size:7pt;padding:0.1rem 0.2rem}\
table,tr,.verdict{break-inside:avoid}pre{white-space:pre-wrap;border:0}\
.verdict,.tl-bar,.tl-track{-webkit-print-color-adjust:exact;print-color-adjust:exact}\
.tl-row,.tl-axis{grid-template-columns:12rem 1fr 12rem}@page{margin:1.5cm}}";

/// The document as one self-contained HTML page: inline CSS, no script, no external resource
/// (a Content-Security-Policy forbids the browser to fetch anything), a print stylesheet.
pub fn render_html(doc: &Document) -> String {
    let mut out =
        String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
    );
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(&format!("<title>{}</title>\n", esc(&doc.title)));
    out.push_str(&format!("<style>{CSS}</style>\n</head><body>\n"));
    for block in &doc.blocks {
        match block {
            Block::Heading { level, text } => {
                out.push_str(&format!("<h{level}>{}</h{level}>\n", inline(text)))
            }
            Block::Paragraph { text } => out.push_str(&format!("<p>{}</p>\n", inline(text))),
            Block::List { items } => {
                out.push_str("<ul>\n");
                for i in items {
                    out.push_str(&format!("<li>{}</li>\n", inline(i)));
                }
                out.push_str("</ul>\n");
            }
            Block::Table { head, rows } => html_table(&mut out, head, rows),
            Block::Matrix(m) => html_matrix(&mut out, m),
            Block::Verdict {
                level,
                headline,
                items,
            } => {
                out.push_str(&format!(
                    "<section class=\"verdict {}\" id=\"verdict\">\n<h2>Verdict: {} — {}</h2>\n",
                    level.name(),
                    level.label(),
                    inline(headline)
                ));
                if !items.is_empty() {
                    out.push_str("<ul>\n");
                    for i in items {
                        out.push_str(&format!("<li>{}</li>\n", inline(i)));
                    }
                    out.push_str("</ul>\n");
                }
                out.push_str("</section>\n");
            }
            Block::Timeline(t) => html_timeline(&mut out, t),
            Block::Preformatted { text } => {
                let text: Vec<String> = text.lines().map(escape_control).collect();
                out.push_str(&format!("<pre>{}</pre>\n", esc_raw(&text.join("\n"))));
            }
            Block::Map(m) => {
                // The SVG is map.rs's: every string in it XML-encoded after the one escaper.
                out.push_str(&format!(
                    "<figure class=\"map\">\n{}<figcaption>{}</figcaption>\n</figure>\n",
                    m.svg(),
                    inline(&m.caption())
                ));
            }
        }
    }
    out.push_str("</body></html>\n");
    out
}

fn html_table(out: &mut String, head: &[String], rows: &[Vec<String>]) {
    out.push_str("<table><tr>");
    for h in head {
        out.push_str(&format!("<th>{}</th>", inline(h)));
    }
    out.push_str("</tr>\n");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            out.push_str(&format!("<td>{}</td>", inline(c)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn html_matrix(out: &mut String, m: &Matrix) {
    out.push_str("<table class=\"matrix\"><tr>");
    for h in &m.head {
        out.push_str(&format!("<th>{}</th>", inline(h)));
    }
    out.push_str("</tr>\n");
    for r in &m.rows {
        let label = match &r.link {
            Some(l) => format!("<a href=\"{}\">{}</a>", esc(l.as_str()), inline(&r.label)),
            None => inline(&r.label),
        };
        out.push_str(&format!("<tr><th scope=\"row\">{label}</th>"));
        for c in &r.cells {
            let class = c.mark.map(|m| format!(" class=\"{}\"", m.class()));
            out.push_str(&format!(
                "<td{} title=\"{}\">{}</td>",
                class.unwrap_or_default(),
                esc(&c.why.replace('`', "")),
                inline(&cell_text(c))
            ));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn html_timeline(out: &mut String, t: &Timeline) {
    let span = t.span_ms.max(1) as f64;
    let pct = |ms: u64| (ms as f64 / span * 100.0).clamp(0.0, 100.0);
    out.push_str("<section class=\"timeline\" id=\"timeline\">\n");
    out.push_str("<div class=\"legend\">");
    for (class, what) in [
        ("done", "done"),
        ("manual", "manual, confirmed"),
        ("failed", "failed or interrupted"),
        ("skipped", "skipped or not confirmed"),
        ("superseded", "superseded or rolled back"),
    ] {
        out.push_str(&format!(
            "<span><i class=\"tl-bar {class}\" style=\"position:static\"></i>{what}</span>"
        ));
    }
    out.push_str("</div>\n");
    out.push_str("<div class=\"tl-axis\"><div></div><div class=\"tl-ticks\">");
    for i in 0..=4u64 {
        out.push_str(&format!("<span>+{}</span>", human_ms(t.span_ms * i / 4)));
    }
    out.push_str("</div><div></div></div>\n");
    for b in &t.bars {
        let left = pct(b.start_ms);
        let width = (pct(b.end_ms) - left).max(0.0);
        out.push_str(&format!(
            "<div class=\"tl-row\" data-step=\"{}\"><div class=\"tl-label\">{}</div>\
             <div class=\"tl-track\"><div class=\"tl-bar {}\" style=\"left:{left:.2}%;width:{width:.2}%\" title=\"{}\"></div></div>\
             <div class=\"tl-note\">{}</div></div>\n",
            esc(&b.id),
            inline(&b.label),
            b.state.name(),
            esc(&b.note.replace('`', "")),
            inline(&b.note),
        ));
    }
    if !t.lanes.is_empty() {
        out.push_str("<div class=\"legend\">Availability, as the probes saw it: ");
        for (class, what) in [
            ("reachable", "reachable"),
            ("unreachable", "unreachable"),
            ("outage", "clients reached neither side"),
        ] {
            out.push_str(&format!(
                "<span><i class=\"tl-bar {class}\" style=\"position:static\"></i>{what}</span>"
            ));
        }
        out.push_str("(blank: not probed)</div>\n");
    }
    for l in &t.lanes {
        out.push_str(&format!(
            "<div class=\"tl-row lane\"><div class=\"tl-label\">{}</div><div class=\"tl-track\">",
            inline(&l.label)
        ));
        for sp in &l.spans {
            let left = pct(sp.start_ms);
            let width = (pct(sp.end_ms) - left).max(0.0);
            out.push_str(&format!(
                "<div class=\"tl-bar {}\" style=\"left:{left:.2}%;width:{width:.2}%\" title=\"{} +{} for {}\"></div>",
                sp.state.name(),
                sp.state.name(),
                human_ms(sp.start_ms),
                human_ms(sp.end_ms.saturating_sub(sp.start_ms)),
            ));
        }
        let down: u64 = l
            .spans
            .iter()
            .filter(|s| s.state != LaneState::Up)
            .map(|s| s.end_ms.saturating_sub(s.start_ms))
            .sum();
        out.push_str(&format!(
            "</div><div class=\"tl-note\">{}</div></div>\n",
            if down > 0 {
                format!("{} not reachable", human_ms(down))
            } else {
                String::new()
            }
        ));
    }
    out.push_str(&format!(
        "<p class=\"tl-caption\">Time axis from {} to {} (a span of {}).</p>\n</section>\n",
        esc(&t.start),
        esc(&t.end),
        human_ms(t.span_ms)
    ));
}

/// Escapes text for HTML, `code` spans (read as `segments` reads them) as `<code>`.
pub fn inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for seg in segments(s) {
        match seg {
            Seg::Code(code) => {
                out.push_str("<code>");
                out.push_str(&esc(code));
                out.push_str("</code>");
            }
            Seg::Text(text) => out.push_str(&esc(text)),
        }
    }
    out
}

/// Escapes text for HTML text and attribute values, control characters as in a terminal.
pub fn esc(s: &str) -> String {
    let s = s
        .split('\n')
        .map(escape_control)
        .collect::<Vec<_>>()
        .join("\n");
    esc_raw(&s)
}

fn esc_raw(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
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

// ---------------------------------------------------------------------------------------------
// JSON

/// The document model as JSON (the blocks as they are; the report's own JSON is its typed
/// model, see `report`).
pub fn render_json(doc: &Document) -> String {
    serde_json::to_string_pretty(doc).expect("documents serialize") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(blocks: Vec<Block>) -> Document {
        Document {
            title: "<t>".into(),
            blocks,
        }
    }

    #[test]
    fn html_escapes_text_everywhere() {
        let d = doc(vec![
            Block::Paragraph {
                text: "<script>alert(1)</script> `<b>`".into(),
            },
            Block::Timeline(Timeline {
                start: "s".into(),
                end: "e".into(),
                span_ms: 10,
                lanes: vec![Lane {
                    label: "<svg onload=x>".into(),
                    spans: vec![LaneSpan {
                        start_ms: 0,
                        end_ms: 5,
                        state: LaneState::Down,
                    }],
                }],
                bars: vec![Bar {
                    id: "a\"><img src=x>".into(),
                    label: "<i>".into(),
                    start_ms: 0,
                    end_ms: 5,
                    state: BarState::Done,
                    note: "\" onmouseover=\"x".into(),
                }],
            }),
            Block::Preformatted {
                text: "</pre><script>\u{1b}[2J".into(),
            },
        ]);
        let h = render_html(&d);
        assert!(!h.contains("<script>"), "{h}");
        assert!(!h.contains("<img"), "{h}");
        assert!(!h.contains("\" onmouseover"), "{h}");
        assert!(!h.contains('\u{1b}'));
        assert!(h.contains("<code>&lt;b&gt;</code>"));
        assert!(h.contains("<title>&lt;t&gt;</title>"));
    }

    #[test]
    fn markdown_escapes_and_fences_hold() {
        let d = doc(vec![
            Block::Verdict {
                level: Level::Failed,
                headline: "[x](http://e) *y*".into(),
                items: vec!["<b>\n# not a heading".into()],
            },
            Block::Preformatted {
                text: "a ``` b\n````".into(),
            },
        ]);
        let m = render_markdown(&d);
        assert!(m.contains("\\[x\\](http://e) \\*y\\*"), "{m}");
        assert!(m.contains("&lt;b&gt; \\# not a heading"), "{m}");
        assert!(m.contains("`````\na ``` b\n````\n`````"), "{m}");
    }

    /// Issue 18: a backtick run in a value longer than the code span's fence made the rest of
    /// the line raw HTML in report.md and the concept (`` ```<img src=x onerror=alert(1)>` ``).
    #[test]
    fn backtick_runs_in_values_cannot_open_raw_html() {
        let m = md_inline("```<img src=x onerror=alert(1)>`", false);
        assert!(!m.contains("<img"), "{m}");
        assert_eq!(
            segments("a ``b`c`` `d` ```"),
            vec![
                Seg::Text("a "),
                Seg::Code("b`c"),
                Seg::Text(" "),
                Seg::Code("d"),
                Seg::Text(" ```")
            ]
        );
        assert_eq!(md_inline("x ``b`c`` ``", false), "x ``b`c`` \\`\\`");
        assert_eq!(md_inline("`` `y``", false), "`` `y``");
        assert_eq!(md_inline("```` `y` ````", false), "``  `y`  ``");
    }

    /// What a CommonMark reader makes of Markdown rehost wrote: every event, and the tags rehost
    /// writes (anything else — raw HTML, a link, an image, emphasis — came from a value).
    fn events(md: &str) -> Vec<pulldown_cmark::Event<'_>> {
        use pulldown_cmark::{Options, Parser};
        let opts = Options::ENABLE_TABLES
            | Options::ENABLE_STRIKETHROUGH
            | Options::ENABLE_TASKLISTS
            | Options::ENABLE_FOOTNOTES
            | Options::ENABLE_GFM;
        Parser::new_ext(md, opts).collect()
    }

    fn foreign_markup(md: &str) -> Option<String> {
        use pulldown_cmark::{Event, Tag};
        events(md).into_iter().find_map(|e| match &e {
            Event::Start(
                Tag::Paragraph
                | Tag::Heading { .. }
                | Tag::BlockQuote(None)
                | Tag::CodeBlock(_)
                | Tag::List(None)
                | Tag::Item
                | Tag::Table(_)
                | Tag::TableHead
                | Tag::TableRow
                | Tag::TableCell
                | Tag::Strong,
            )
            | Event::End(_)
            | Event::Text(_)
            | Event::Code(_)
            | Event::SoftBreak => None,
            other => Some(format!("{other:?}")),
        })
    }

    /// The inline pieces of the first paragraph-like container: adjacent text merged.
    fn pieces(md: &str) -> Vec<Seg<'static>> {
        use pulldown_cmark::Event;
        let mut out: Vec<(bool, String)> = Vec::new();
        for e in events(md) {
            let (code, t) = match e {
                Event::Text(t) => (false, t.to_string()),
                Event::Code(t) => (true, t.to_string()),
                _ => continue,
            };
            match out.last_mut() {
                Some((false, last)) if !code => last.push_str(&t),
                _ => out.push((code, t)),
            }
        }
        out.into_iter()
            .map(|(code, t)| {
                let t: &'static str = Box::leak(t.into_boxed_str());
                if code { Seg::Code(t) } else { Seg::Text(t) }
            })
            .collect()
    }

    fn hostile() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let parts = vec![
            "`",
            "``",
            "```",
            "````",
            " ",
            "  ",
            "a",
            "b",
            "<",
            ">",
            "&",
            "&lt;",
            "\\",
            "*",
            "_",
            "[",
            "]",
            "(",
            ")",
            "!",
            "|",
            "#",
            "-",
            "+",
            "1.",
            "2)",
            "~",
            "=",
            ":",
            "/",
            "\"",
            "'",
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "<b>",
            "</td>",
            "[x](http://e)",
            "![i](x.png)",
            "http://e/x",
            "www.e.org",
            "[^1]",
            "&#60;script&#62;",
            "\u{1b}[2J",
            "\u{202e}",
            "\t",
            "---",
            "***",
        ];
        proptest::collection::vec(proptest::sample::select(parts), 0..24).prop_map(|v| v.concat())
    }

    proptest::proptest! {
        /// Any value in any block: a CommonMark reader finds no element rehost did not write.
        #[test]
        fn markdown_holds_no_markup_from_values(s in hostile(), t in hostile()) {
            let d = doc(vec![
                Block::Heading { level: 2, text: s.clone() },
                Block::Paragraph { text: s.clone() },
                Block::List { items: vec![s.clone(), t.clone()] },
                Block::Table { head: vec![s.clone(), "b".into()], rows: vec![vec![t.clone(), s.clone()]] },
                Block::Verdict { level: Level::Failed, headline: s.clone(), items: vec![t.clone()] },
                Block::Preformatted { text: format!("{s}\n{t}") },
                Block::Paragraph { text: t.clone() },
            ]);
            let md = render_markdown(&d);
            proptest::prop_assert_eq!(foreign_markup(&md), None, "{}", md);
        }

        /// And it reads exactly the text and code spans the model holds, in a paragraph, a list
        /// item and a table cell.
        #[test]
        fn markdown_reads_back_as_the_models_text_and_code(s in hostile()) {
            let s = format!("a{}z", s.replace(['\u{1b}', '\u{202e}', '\t'], ""));
            let want: Vec<Seg<'_>> = segments(&s);
            for md in [
                render_markdown(&doc(vec![Block::Paragraph { text: s.clone() }])),
                render_markdown(&doc(vec![Block::List { items: vec![s.clone()] }])),
                render_markdown(&doc(vec![Block::Table { head: vec![s.clone()], rows: vec![] }])),
            ] {
                proptest::prop_assert_eq!(&pieces(&md), &want, "{}", md);
            }
        }
    }
}
