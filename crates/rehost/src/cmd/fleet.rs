//! `rehost fleet report STATEDIR... [-o DIR] [--format html,json,md,oscal]`: one page for many
//! servers' runs, and every server's own report beside it.
//!
//! The state directories are read on rayon's threads, two passes: each journal opened and read
//! (bounded, `rehost_evidence::fleet::read::open`), then each group of one plan's runs built
//! into its report (`build_group`, the single-server report's reader and model). Nothing is
//! written into a state directory; everything goes into the output directory through
//! `crate::output` (no symlink followed, 0600 unless `--mode`).

use crate::cli::{FleetReportArgs, ReportFormat};
use crate::exit;
use crate::term::escape;
use rayon::prelude::*;
use rehost_evidence::Level;
use rehost_evidence::fleet::{self, Entry, read};
use rehost_evidence::report;
use std::ffi::OsStr;
use std::path::PathBuf;

/// How many files are written at once: each is fsynced, and the disk commits waiting fsyncs
/// together (1,000 servers' reports took 16 s one after the other, about 9 ms per fsync).
const WRITERS: usize = 32;

/// A state directory's run, or why it could not be read, in the order given.
enum Item {
    Group(Vec<read::Opened>),
    Bad(PathBuf, String),
}

pub fn run(args: &FleetReportArgs) -> i32 {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for a in &args.dirs {
        for d in read::state_dirs(a) {
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
    // First pass: every journal, bounded, in parallel.
    let opened: Vec<Result<read::Opened, (PathBuf, String)>> = dirs
        .par_iter()
        .map(|d| read::open(d).map_err(|why| (d.clone(), why)))
        .collect();
    // One plan's runs side by side are one server, at the place of the first.
    let mut items: Vec<Item> = Vec::new();
    let mut keys: Vec<(PathBuf, usize)> = Vec::new();
    for o in opened {
        match o {
            Ok(o) => {
                let key = read::group_key(&o);
                match keys.iter().find(|(k, _)| *k == key) {
                    Some(&(_, i)) => {
                        if let Item::Group(g) = &mut items[i] {
                            g.push(o);
                        }
                    }
                    None => {
                        keys.push((key, items.len()));
                        items.push(Item::Group(vec![o]));
                    }
                }
            }
            Err((d, why)) => items.push(Item::Bad(d, why)),
        }
    }
    // Second pass: each server's report, in parallel.
    let built: Vec<Result<read::Built, (PathBuf, String)>> = items
        .into_par_iter()
        .map(|it| match it {
            Item::Group(g) => read::build_group(g),
            Item::Bad(d, why) => Err((d, why)),
        })
        .collect();
    let mut formats: Vec<ReportFormat> = Vec::new();
    for f in &args.format {
        if !formats.contains(f) {
            formats.push(*f);
        }
    }
    // Each server's own report, in the formats asked for, named by its index only.
    let server_files: Vec<Vec<(String, String)>> = built
        .par_iter()
        .enumerate()
        .map(|(i, b)| match b {
            Ok(b) => server_files(&fleet::file_stem(i + 1), b, &formats),
            Err(_) => Vec::new(),
        })
        .collect();
    // The fleet's OSCAL: every readable server's run a result of one assessment.
    let oscal = formats.contains(&ReportFormat::Oscal).then(|| {
        let runs: Vec<(&str, &report::Report)> = built
            .iter()
            .filter_map(|b| b.as_ref().ok())
            .map(|b| (b.report.migration.title.as_str(), &b.report))
            .collect();
        rehost_evidence::oscal::render("rehost fleet report", &runs)
    });
    let entries: Vec<Entry> = built
        .into_iter()
        .enumerate()
        .map(|(i, b)| match b {
            Ok(b) => Entry::Read {
                state_dir: b.dir.display().to_string(),
                report: Box::new(b.report),
                file_stem: fleet::file_stem(i + 1),
                left_out: b
                    .left_out
                    .iter()
                    .map(|(d, why)| format!("{}: {why}", d.display()))
                    .collect(),
            },
            Err((d, why)) => Entry::Unreadable {
                state_dir: d.display().to_string(),
                why,
            },
        })
        .collect();
    let f = fleet::build(entries);
    let mut files: Vec<(String, String)> = Vec::new();
    for fmt in &formats {
        let entry = match fmt {
            // Each page links the servers' reports of its own format, else their HTML.
            ReportFormat::Html => (
                "fleet.html",
                rehost_evidence::doc::render_html(&fleet::document(&f, "html")),
            ),
            ReportFormat::Md => (
                "fleet.md",
                rehost_evidence::doc::render_markdown(&fleet::document(
                    &f,
                    if formats.contains(&ReportFormat::Md) {
                        "md"
                    } else {
                        "html"
                    },
                )),
            ),
            ReportFormat::Json => ("fleet.json", fleet::render_json(&f)),
            ReportFormat::Oscal => continue,
        };
        files.push((entry.0.into(), entry.1));
    }
    if let Some(o) = oscal {
        files.push(("fleet.oscal.json".into(), o));
    }
    let servers = server_files.iter().filter(|s| !s.is_empty()).count();
    files.extend(server_files.into_iter().flatten());
    let named: Vec<(&OsStr, &[u8])> = files
        .iter()
        .map(|(n, t)| (OsStr::new(n.as_str()), t.as_bytes()))
        .collect();
    if let Err(e) = crate::output::write_many(&args.output, &named, args.mode, WRITERS) {
        crate::term::error(&e);
        return exit::TROUBLE;
    }
    println!(
        "Fleet report written to {}: {} and the reports of {servers} server(s)",
        escape(&args.output.display().to_string()),
        files
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| n.starts_with("fleet."))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("Verdict: {} — {}", f.verdict.label(), escape(&f.headline));
    if f.verdict == Level::Clean {
        exit::OK
    } else {
        exit::FINDINGS
    }
}

/// One server's report files, as `rehost report` writes them, named `server-0001.*`.
fn server_files(stem: &str, b: &read::Built, formats: &[ReportFormat]) -> Vec<(String, String)> {
    let doc = report::document(&b.report, &b.plan);
    formats
        .iter()
        .map(|f| match f {
            ReportFormat::Html => (
                format!("{stem}.html"),
                rehost_evidence::doc::render_html(&doc),
            ),
            ReportFormat::Json => (format!("{stem}.json"), report::render_json(&b.report)),
            ReportFormat::Md => (
                format!("{stem}.md"),
                rehost_evidence::doc::render_markdown(&doc),
            ),
            ReportFormat::Oscal => (
                format!("{stem}.oscal.json"),
                rehost_evidence::oscal::render(
                    &format!("rehost report: {}", b.report.migration.title),
                    &[(b.report.migration.title.as_str(), &b.report)],
                ),
            ),
        })
        .collect()
}
