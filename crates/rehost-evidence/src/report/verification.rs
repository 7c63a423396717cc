//! The report's verifications: what every kind has in common (the two sides, the findings,
//! the kept files, the warnings), and one function per [`VerificationKind`] for what only that
//! kind has, chosen by an exhaustive match: a new kind is a compile error here until it says
//! how it renders.

use super::document::{code_span, h, kept, p, table};
use super::*;
use crate::doc::Block;
use rehost_journal::step_data::ExerciseData;

/// What a kind of verification adds to the parts every kind has.
struct KindParts {
    /// The outcome in the heading: complete, differences, not fully verified, and the scope.
    outcome: String,
    /// Rows of the table after the two sides.
    rows: Vec<Vec<String>>,
    /// Rows of the table after the findings and the kept files.
    closing_rows: Vec<Vec<String>>,
    /// Blocks after the table of findings.
    blocks: Vec<Block>,
}

fn kind_parts(v: &Verification) -> KindParts {
    match v.kind {
        VerificationKind::Tree => tree(v),
        VerificationKind::Database => database(v),
        VerificationKind::Files => files(v),
        VerificationKind::Keys => keys(v),
        VerificationKind::Dns => dns(v),
        VerificationKind::DnsTtl => dns_ttl(v),
        VerificationKind::Config => config(v),
        VerificationKind::Compat => compat(v),
        VerificationKind::Address => KindParts {
            outcome: if v.exit_code == 0 {
                "answers as the new host (its SSH host key)".into()
            } else {
                "DOES NOT ANSWER AS THE NEW HOST".into()
            },
            rows: vec![vec![
                "Not compared".into(),
                not_compared(v)
                    .trim_start_matches("; not compared: ")
                    .to_owned(),
            ]],
            closing_rows: Vec::new(),
            blocks: Vec::new(),
        },
    }
}

/// The points of M 2.319 a verification of this kind evidences.
fn cited_points(v: &Verification) -> Vec<crate::kompendium::Point> {
    use crate::kompendium::Point;
    match v.kind {
        VerificationKind::Tree | VerificationKind::Files => vec![Point::Data],
        VerificationKind::Database if v.exercise.is_some() => {
            vec![Point::Data, Point::NewVersion]
        }
        VerificationKind::Database => vec![Point::Data],
        VerificationKind::Keys => vec![Point::Keys],
        VerificationKind::Dns | VerificationKind::DnsTtl | VerificationKind::Address => {
            vec![Point::Names]
        }
        VerificationKind::Config => vec![Point::Configuration],
        VerificationKind::Compat => vec![Point::Compatibility],
    }
}

/// Each attempt's verification: a heading with its outcome, a table, its findings.
pub(super) fn verifications_section(r: &Report, b: &mut Vec<Block>) {
    let verifications: Vec<(&Attempt, &Verification)> = r
        .run
        .attempts
        .iter()
        .filter_map(|a| a.verification.as_ref().map(|v| (a, v)))
        .collect();
    if !verifications.is_empty() {
        b.push(h(2, "Verifications"));
    }
    for (a, v) in verifications {
        verification(a, v, b);
    }
}

fn verification(a: &Attempt, v: &Verification, b: &mut Vec<Block>) {
    let parts = kind_parts(v);
    b.push(h(
        3,
        &format!(
            "`{}` attempt {}: `{}` — {}{}",
            a.id,
            a.attempt,
            v.data_set,
            parts.outcome,
            if a.superseded { " (superseded)" } else { "" }
        ),
    ));
    b.push(crate::kompendium::cite(&cited_points(v)));
    let (la, lb) = match v.kind {
        VerificationKind::Dns => ("Old value", "New value"),
        VerificationKind::DnsTtl => ("TTL before", "Lowered TTL"),
        VerificationKind::Compat => ("Old service", "New service"),
        VerificationKind::Address => ("Expected", "Answered"),
        _ => ("Original (A)", "Copy (B)"),
    };
    let mut rows = vec![
        vec![la.into(), v.source.clone()],
        vec![lb.into(), v.destination.clone()],
    ];
    rows.extend(parts.rows);
    rows.push(vec!["Findings".into(), {
        let classes: Vec<String> = v.by_class.iter().map(|(c, n)| format!("{n} {c}")).collect();
        if classes.is_empty() {
            v.findings_total.to_string()
        } else {
            format!("{} ({})", v.findings_total, classes.join(", "))
        }
    }]);
    if let Some(o) = &a.output {
        rows.push(vec!["Full list of findings".into(), kept(o)]);
    }
    for (side, m) in ["Manifest of A", "Manifest of B"].iter().zip(&v.manifests) {
        rows.push(vec![side.to_string(), kept(m)]);
    }
    rows.extend(parts.closing_rows);
    b.push(table(&["Item", "Value"], rows));
    if !v.findings.is_empty() {
        b.push(p(format!(
            "The first {} of {} finding(s):",
            v.findings.len(),
            v.findings_total
        )));
        b.push(table(
            &["Class", "Path or object", "A", "B"],
            v.findings
                .iter()
                .map(|f| {
                    vec![
                        f.class.clone(),
                        format!("`{}`", f.path.replace('`', "'")),
                        f.a.clone().unwrap_or_default(),
                        f.b.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        ));
    }
    b.extend(parts.blocks);
    if !v.warnings.is_empty() {
        b.push(Block::List {
            items: v.warnings.clone(),
        });
    }
}

/// The outcome by the step's exit code.
fn exit_outcome(v: &Verification) -> String {
    match v.exit_code {
        0 => "complete and correct",
        1 => "DIFFERENCES FOUND",
        _ => "NOT FULLY VERIFIED",
    }
    .to_owned()
}

/// A database's or files' verdict names its scope: what it holds for, what was not compared.
fn not_compared(v: &Verification) -> String {
    match &v.not_compared {
        Some(n) if n.is_empty() => String::new(),
        // Table names come from the databases: no backtick may open a code span.
        Some(n) => format!("; not compared: {}", n.join("; ").replace('`', "'")),
        None => "; not compared: not recorded by the rehost that ran it".into(),
    }
}

/// The walk's figures of two trees (or of single files): entries, bytes, what was hashed.
fn totals_rows(v: &Verification, rows: &mut Vec<Vec<String>>) {
    let Some(t) = &v.tree else {
        return;
    };
    rows.extend([
        vec![
            "Entries A / B".into(),
            format!("{} / {}", t.entries_a, t.entries_b),
        ],
        vec![
            "Bytes A / B".into(),
            format!("{} / {}", t.bytes_a, t.bytes_b),
        ],
        vec!["Equal entries".into(), t.equal.to_string()],
        vec![
            "Files hashed now / trusted unchanged from an earlier walk".into(),
            format!("{} / {}", t.files_read, t.trusted),
        ],
    ]);
    if t.compared > 0 {
        rows.push(vec![
            "Of the files read, B's compared byte for byte with A's, read side by side".into(),
            format!(
                "{} (B's BLAKE3 computed once with A's where every piece was equal, else hashed \
                 from the first piece that differed)",
                t.compared
            ),
        ]);
    }
    // Issue 18: say which check the trusted digests rest on (a verification, or only the
    // built-in transfer's walk).
    if t.trusted > 0 {
        rows.push(vec![
            "The trusted digests were read by".into(),
            t.trusted_from.clone().unwrap_or_else(|| {
                "an earlier walk of the same tree (this journal does not say which)".into()
            }),
        ]);
    }
}

/// A `verify-tree` step: the walk's figures; what carries privilege and what the data set
/// excludes (and what the plan names that the excludes leave out: not verified).
fn tree(v: &Verification) -> KindParts {
    let mut rows = Vec::new();
    totals_rows(v, &mut rows);
    let closing_rows = vec![
        vec![
            "Privileged entries in B (setuid, setgid, file capabilities, devices)".into(),
            v.privileged_total.to_string(),
        ],
        vec![
            "Excluded by the data set (not compared)".into(),
            if v.excludes.is_empty() {
                "nothing".into()
            } else {
                v.excludes
                    .iter()
                    .map(|x| code_span(x))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ],
    ];
    let mut blocks = Vec::new();
    if !v.not_verified.is_empty() {
        blocks.push(p(format!(
            "Not verified: {} path(s) the plan names lie under the data set but its excludes leave them out, so no sync carried them and this verification did not compare them:",
            v.not_verified.len()
        )));
        blocks.push(table(
            &["Path", "Named by", "Excluded by"],
            v.not_verified
                .iter()
                .map(|x| {
                    vec![
                        code_span(&x.path),
                        format!("key {}", code_span(&x.key)),
                        code_span(&x.exclude),
                    ]
                })
                .collect(),
        ));
    }
    if !v.privileged.is_empty() {
        blocks.push(p(format!(
            "The copy holds {} entr{} that carry privilege on the new host; the old side decided them, as it would with rsync -a. Check that each belongs (the first {}; all are in the manifest of B):",
            v.privileged_total,
            if v.privileged_total == 1 { "y" } else { "ies" },
            v.privileged.len()
        )));
        blocks.push(table(
            &["Path", "What"],
            v.privileged
                .iter()
                .map(|x| vec![format!("`{}`", x.path.replace('`', "'")), x.what.clone()])
                .collect(),
        ));
    }
    KindParts {
        outcome: exit_outcome(v),
        rows,
        closing_rows,
        blocks,
    }
}

/// A `verify-db` step: the servers' versions, what was compared, and the exercise of the copy.
fn database(v: &Verification) -> KindParts {
    let mut outcome = match &v.exercise {
        // The step's exit code covers the exercise too; the comparison is the findings.
        Some(_) if v.findings_total == 0 => "complete and correct".to_owned(),
        _ => exit_outcome(v),
    };
    outcome.push_str(&not_compared(v));
    if let Some(x) = &v.exercise {
        outcome.push_str(&format!("; exercise: {}", exercise_outcome(x)));
    }
    let mut rows = Vec::new();
    if let Some(db) = &v.database {
        rows.extend([
            vec![
                "Server versions A / B".into(),
                format!("{} / {}", db.old_version, db.new_version),
            ],
            vec![
                "Tables, rows compared".into(),
                format!("{}, {}", db.tables, db.rows),
            ],
            vec![
                "Sequences, other objects".into(),
                format!("{}, {}", db.sequences, db.objects),
            ],
        ]);
    }
    let mut blocks = Vec::new();
    if let Some(x) = &v.exercise {
        exercise_rows(x, &mut rows);
        exercise_tables(x, &mut blocks);
    }
    KindParts {
        outcome,
        rows,
        closing_rows: Vec::new(),
        blocks,
    }
}

/// A `verify-files` step: the walk's figures, the files compared and those absent on A.
fn files(v: &Verification) -> KindParts {
    let mut rows = Vec::new();
    totals_rows(v, &mut rows);
    rows.push(vec![
        "Files compared".into(),
        v.paths
            .iter()
            .map(|x| code_span(x))
            .collect::<Vec<_>>()
            .join(", "),
    ]);
    if !v.absent.is_empty() {
        rows.push(vec![
            "Absent on A (nothing to compare with)".into(),
            v.absent
                .iter()
                .map(|x| code_span(x))
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    KindParts {
        outcome: exit_outcome(v) + &not_compared(v),
        rows,
        closing_rows: Vec::new(),
        blocks: Vec::new(),
    }
}

fn keys(v: &Verification) -> KindParts {
    let list = |xs: &[String]| {
        xs.iter()
            .map(|x| code_span(x))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut rows = vec![vec![
        "Searched on B".into(),
        if v.paths.is_empty() {
            "nothing".into()
        } else {
            list(&v.paths)
        },
    ]];
    for k in &v.keys {
        rows.push(vec![
            format!("Key `{}`: {} {} {}", k.key, k.kind, k.algorithm, k.verdict),
            format!(
                "{}; A: {}; B: {}{}",
                code_span(&k.fingerprint),
                list(&k.old),
                if k.new.is_empty() {
                    "not found".into()
                } else {
                    list(&k.new)
                },
                k.not_after
                    .as_ref()
                    .map(|t| format!("; valid until {t}"))
                    .unwrap_or_default()
            ),
        ]);
    }
    KindParts {
        outcome: exit_outcome(v) + &not_compared(v),
        rows,
        closing_rows: Vec::new(),
        blocks: Vec::new(),
    }
}

/// A configuration compared: the formats read, the counts, and each allowed difference with
/// both values and what allowed it (declared expected: shown, not counted).
fn config(v: &Verification) -> KindParts {
    let Some(c) = &v.config else {
        return KindParts {
            outcome: exit_outcome(v) + &not_compared(v),
            rows: Vec::new(),
            closing_rows: Vec::new(),
            blocks: Vec::new(),
        };
    };
    let k = &c.comparison;
    let outcome = match c.exit_code {
        0 => "equal after the declared differences".to_owned(),
        _ => "DIFFERENCES FOUND".to_owned(),
    } + &not_compared(v);
    let rows = vec![
        vec![
            "Read as".into(),
            format!(
                "A: {}; B: {}",
                c.old_formats.join(", "),
                c.new_formats.join(", ")
            ),
        ],
        vec![
            "Compared".into(),
            format!(
                "{} keys: {} equal, {} differ, {} allowed (declared expected){}",
                k.keys,
                k.equal,
                k.differences.len(),
                k.allowed.len(),
                if k.secrets > 0 {
                    format!("; {} secret (compared, not shown)", k.secrets)
                } else {
                    String::new()
                }
            ),
        ],
    ];
    let shown = |x: &Option<rehost_config::Value>, secret: bool| match x {
        None => "not set".to_owned(),
        Some(_) if secret => "(secret, not shown)".to_owned(),
        Some(x) => {
            let mut s = code_span(x.value.as_deref().unwrap_or(""));
            if let Some(src) = &x.source {
                s.push_str(&format!(" ({})", code_span(src)));
            }
            s
        }
    };
    let mut blocks = Vec::new();
    if !k.allowed.is_empty() {
        blocks.push(p(
            "Allowed differences (declared expected, not counted as findings):".into(),
        ));
        blocks.push(table(
            &["Key", "A", "B", "Allowed by"],
            k.allowed
                .iter()
                .map(|d| {
                    vec![
                        code_span(&d.key),
                        shown(&d.old, d.secret),
                        shown(&d.new, d.secret),
                        code_span(d.allowed_by.as_deref().unwrap_or("")),
                    ]
                })
                .collect(),
        ));
    }
    KindParts {
        outcome,
        rows,
        closing_rows: Vec::new(),
        blocks,
    }
}

/// A name's new value on its DNS servers: how long it took, and each server's last answer and
/// when it was first seen serving the new value.
fn dns(v: &Verification) -> KindParts {
    let Some(d) = &v.dns else {
        return KindParts {
            outcome: exit_outcome(v),
            rows: Vec::new(),
            closing_rows: Vec::new(),
            blocks: Vec::new(),
        };
    };
    let outcome = match d.exit_code {
        0 => "every server serves the new value".to_owned(),
        1 => "SERVERS STILL SERVE ANOTHER VALUE".to_owned(),
        _ => "SERVERS DID NOT ANSWER".to_owned(),
    };
    let rows = vec![vec![
        "Waited".into(),
        format!(
            "{} ({} round{} of questions)",
            rehost_plan::format_duration(std::time::Duration::from_secs(d.waited_ms / 1000)),
            d.rounds,
            if d.rounds == 1 { "" } else { "s" }
        ),
    ]];
    let servers = table(
        &[
            "Server",
            "Role",
            "Last answer",
            "TTL",
            "First seen serving the new value",
        ],
        d.servers
            .iter()
            .map(|s| {
                let answer = match (&s.reason, s.values.is_empty()) {
                    (Some(r), _) => format!("no answer: {r}"),
                    (None, true) => "no record".into(),
                    (None, false) => s.values.join(", "),
                };
                vec![
                    format!("`{}`", s.server),
                    s.role.clone(),
                    answer,
                    s.ttl.map(|t| format!("{t} s")).unwrap_or_default(),
                    s.first_served.clone().unwrap_or_else(|| "never".into()),
                ]
            })
            .collect(),
    );
    KindParts {
        outcome,
        rows,
        closing_rows: Vec::new(),
        blocks: vec![servers],
    }
}

/// A name's lowered TTL: when it was lowered, when the old one expired, each server's TTL.
fn dns_ttl(v: &Verification) -> KindParts {
    let Some(d) = &v.dns_ttl else {
        return KindParts {
            outcome: exit_outcome(v),
            rows: Vec::new(),
            closing_rows: Vec::new(),
            blocks: Vec::new(),
        };
    };
    let outcome = match d.exit_code {
        0 => "lowered, and the old TTL expired".to_owned(),
        2 => "SERVERS DID NOT ANSWER".to_owned(),
        _ => "NOT LOWERED OR NOT YET EXPIRED".to_owned(),
    };
    let never = || "—".to_string();
    let rows = vec![
        vec![
            "Lowered by".into(),
            match (&d.lowered_by, &d.lowered_at) {
                (Some(s), Some(at)) => format!("step `{s}`, finished {at}"),
                _ => "no step that lowers it finished".into(),
            },
        ],
        vec![
            "Old TTL expired".into(),
            d.expired_at.clone().unwrap_or_else(never),
        ],
        vec![
            "Waited".into(),
            rehost_plan::format_duration(std::time::Duration::from_millis(d.waited_ms)),
        ],
    ];
    let servers = table(
        &["Server", "Answer", "TTL"],
        d.servers
            .iter()
            .map(|s| {
                vec![
                    format!("`{}`", s.server),
                    match (&s.reason, s.values.is_empty()) {
                        (Some(r), _) => format!("no answer: {r}"),
                        (None, true) => "no record".into(),
                        (None, false) => s.values.join(", "),
                    },
                    s.ttl.map(|t| format!("{t} s")).unwrap_or_default(),
                ]
            })
            .collect(),
    );
    KindParts {
        outcome,
        rows,
        closing_rows: Vec::new(),
        blocks: vec![servers],
    }
}

/// A database exercise's outcome in a few words, for the verification's heading.
fn exercise_outcome(x: &ExerciseData) -> String {
    if x.error.is_some() {
        "DID NOT RUN TO ITS END".into()
    } else if !x.unchanged {
        "LEFT CHANGES BEHIND".into()
    } else if x.failed > 0 {
        format!("{} OPERATION(S) FAILED", x.failed)
    } else {
        "read, modify, add passed; database unchanged".into()
    }
}

/// The exercise's figures and what "unchanged" rests on, as rows of the verification's table.
fn exercise_rows(x: &ExerciseData, rows: &mut Vec<Vec<String>>) {
    rows.push(vec![
        "Exercised (read, modify, add; rolled back) on".into(),
        if x.login.is_empty() {
            x.target.clone()
        } else {
            format!("{} as the application's login {}", x.target, x.login)
        },
    ]);
    if let Some(e) = &x.error {
        rows.push(vec![
            "Exercise".into(),
            format!("did not run to its end: {e}"),
        ]);
        return;
    }
    rows.push(vec![
        "Exercise: tables, operations, failed, skipped".into(),
        format!(
            "{}, {}, {}, {}",
            x.tables, x.operations, x.failed, x.skipped
        ),
    ]);
    rows.push(vec![
        "Database unchanged by the exercise".into(),
        if x.unchanged {
            format!(
                "yes: the checksum after equals the one before (BLAKE3 {}); the check: {}",
                x.checksum_after, x.check
            )
        } else {
            format!(
                "NO: {} difference(s) between the checksum before (BLAKE3 {}) and after (BLAKE3 {}); the check: {}",
                x.left_behind.len(),
                x.checksum_before,
                x.checksum_after,
                x.check
            )
        },
    ]);
    rows.push(vec![
        "Checksummed: tables (rows), sequences".into(),
        format!(
            "{} ({}), {}",
            x.checked_tables, x.checked_rows, x.checked_sequences
        ),
    ]);
    if !x.not_covered.is_empty() {
        rows.push(vec![
            "Not covered by the checksum".into(),
            x.not_covered.join("; "),
        ]);
    }
}

/// What the exercise left behind, and its failed and skipped operations.
fn exercise_tables(x: &ExerciseData, b: &mut Vec<Block>) {
    if !x.left_behind.is_empty() {
        b.push(Block::Paragraph {
            text: "The exercise left these changed (checksum before and after the exercise):"
                .into(),
        });
        b.push(Block::Table {
            head: ["Class", "Object", "Before", "After"]
                .map(String::from)
                .to_vec(),
            rows: x
                .left_behind
                .iter()
                .map(|l| {
                    vec![
                        l.class.clone(),
                        format!("{} {}", l.kind, l.name),
                        l.before.clone().unwrap_or_default(),
                        l.after.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        });
    }
    if !x.problems.is_empty() {
        b.push(Block::Paragraph {
            text: format!(
                "Operations of the exercise that failed or were skipped ({} failed, {} skipped):",
                x.failed, x.skipped
            ),
        });
        b.push(Block::Table {
            head: ["Table", "Operation", "Result", "Detail"]
                .map(String::from)
                .to_vec(),
            rows: x
                .problems
                .iter()
                .map(|o| {
                    vec![
                        o.table.clone(),
                        o.operation.clone(),
                        o.status.clone(),
                        o.detail.clone(),
                    ]
                })
                .collect(),
        });
    }
}

/// A `compat` step: what was sent and compared, the endpoints, the noise, the refused writes,
/// what was not compared.
fn compat(v: &Verification) -> KindParts {
    let Some(d) = &v.compat else {
        return KindParts {
            outcome: exit_outcome(v),
            rows: Vec::new(),
            closing_rows: Vec::new(),
            blocks: Vec::new(),
        };
    };
    // A `compat-sql` step's result: statements of a query log, not HTTP requests.
    let sql = d.source == "sql-log";
    let unit = if sql { "statements" } else { "requests" };
    let outcome = match d.exit_code {
        // Only what was sent was compared: the claim names how many, not "old clients".
        0 => format!("the {} {unit} compared were answered the same", d.compared),
        1 => "ANSWERS DIFFER".to_owned(),
        _ => "NOT FULLY COMPARED".to_owned(),
    } + &not_compared(v);
    let rows = if sql {
        vec![
            vec![
                "Statements".into(),
                format!(
                    "{} in the log, {} distinct compared: {} the same, {} differ",
                    d.exchanges, d.compared, d.same, d.differing
                ),
            ],
            vec![
                "Not compared".into(),
                format!(
                    "{} not read-only (refused), {} past the cap, {} failed, {} log entries unreadable",
                    d.refused_writes, d.truncated, d.failed, d.bad
                ),
            ],
            vec![
                "Noise".into(),
                if d.noise_measured {
                    "measured: each statement ran twice on the old server; columns in which it differs from itself are not compared".into()
                } else {
                    "not measured: each statement ran once on the old server".into()
                },
            ],
        ]
    } else {
        vec![
            vec![
                "Requests".into(),
                format!(
                    "{} read, {} compared: {} the same, {} differ, {} differ only in allowed fields",
                    d.exchanges, d.compared, d.same, d.differing, d.allowed
                ),
            ],
            vec![
                "Not compared".into(),
                format!(
                    "{} writes refused (not sent), {} truncated in the recording, {} failed, {} unreadable",
                    d.refused_writes, d.truncated, d.failed, d.bad
                ),
            ],
            vec![
                "Noise".into(),
                if d.noise_measured {
                    "measured: the old service was asked twice; fields in which it differs from itself are not compared".into()
                } else {
                    "not measured: the old service was asked once".into()
                },
            ],
        ]
    };
    let endpoints = table(
        &[
            if sql { "Statement" } else { "Endpoint" },
            if sql { "Occurrences" } else { "Requests" },
            "Differ",
            "Noise (old differs from itself)",
        ],
        d.endpoints
            .iter()
            .map(|e| {
                vec![
                    format!("`{}`", e.endpoint.replace('`', "'")),
                    e.requests.to_string(),
                    e.differing.to_string(),
                    e.noise
                        .iter()
                        .map(|f| format!("`{}` ({})", f.field.replace('`', "'"), f.count))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect(),
    );
    let mut blocks = vec![endpoints];
    if !d.refused.is_empty() || !d.failures.is_empty() {
        blocks.push(table(
            &[
                "Line",
                if sql { "Statement" } else { "Request" },
                "Not compared because",
            ],
            d.refused
                .iter()
                .map(|l| {
                    if sql {
                        (l, l.why.as_str())
                    } else {
                        (l, "a write; the step does not allow writes")
                    }
                })
                .chain(d.failures.iter().map(|l| (l, l.why.as_str())))
                .map(|(l, why)| {
                    vec![
                        l.line.to_string(),
                        format!("`{} {}`", l.method, l.target.replace('`', "'")),
                        why.to_string(),
                    ]
                })
                .collect(),
        ));
    }
    KindParts {
        outcome,
        rows,
        closing_rows: Vec::new(),
        blocks,
    }
}
