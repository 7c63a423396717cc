//! The report's "Names" section: for each `[[names]]` entry, what the run did and saw of it in
//! one place: its TTL history (lowered by which step, when the old TTL expired and whether a
//! `dns-ttl` step checked the servers), the switch (which step, when, how), the convergence to
//! expect from those, when each server was first seen serving the new value (`dns-propagated`),
//! and the clients found holding the old value in their own files (`scan-refs`). Each part
//! says where it comes from; a part no step produced says so rather than being left out.

use super::document::{code_span, h, p, table};
use super::*;
use crate::doc::{Block, human_ms};
use rehost_journal::step_data::{DnsPropagatedData, DnsSwitchData, DnsTtlData};
use rehost_plan::{Effect, NameDecl};

pub(super) fn names_section(r: &Report, plan: &Plan, b: &mut Vec<Block>) {
    if plan.names.is_empty() {
        return;
    }
    b.push(h(2, "Names"));
    b.push(crate::kompendium::cite(&[crate::kompendium::Point::Names]));
    for n in &plan.names {
        name_block(r, plan, n, b);
    }
    b.push(p(
        "Not compared for any name: resolvers and caches the plan does not list (a client's own \
         resolver, nscd, a JVM's address cache, a browser's), and directory services other \
         than DNS (`/etc/hosts` is searched only where a `scan-refs` step names the files; LDAP \
         and NIS host entries are not). The expected convergence is computed from the TTLs, not \
         observed at the clients."
            .into(),
    ));
}

/// The latest attempt, not superseded, of the steps with effect `e`, in checklist order.
fn attempts_with<'r>(r: &'r Report, plan: &Plan, e: &Effect) -> Vec<&'r Attempt> {
    plan.steps
        .iter()
        .filter(|s| s.effects.contains(e))
        .filter_map(|s| latest(&r.run, &s.id))
        .collect()
}

fn data_for<'r, T>(
    r: &'r Report,
    pick: impl Fn(&'r Attempt) -> Option<&'r T>,
) -> Vec<(&'r Attempt, &'r T)> {
    let mut out: Vec<(&Attempt, &T)> = Vec::new();
    for a in r.run.attempts.iter().filter(|a| !a.superseded) {
        if let Some(d) = pick(a) {
            // One per step: its latest attempt.
            out.retain(|(x, _)| x.id != a.id);
            out.push((a, d));
        }
    }
    out
}

fn name_block(r: &Report, plan: &Plan, n: &NameDecl, b: &mut Vec<Block>) {
    b.push(h(
        3,
        &format!(
            "{} {}: {} → {}",
            code_span(&n.name),
            n.record,
            n.old
                .as_deref()
                .map(code_span)
                .unwrap_or_else(|| "(new name)".into()),
            n.new
                .as_deref()
                .map(code_span)
                .unwrap_or_else(|| "(not given)".into())
        ),
    ));
    let ttls: Vec<(&Attempt, &DnsTtlData)> = data_for(r, |a| {
        a.verification
            .as_ref()
            .and_then(|v| v.dns_ttl.as_ref())
            .filter(|d| d.id == n.id)
    });
    let switches: Vec<(&Attempt, &DnsSwitchData)> =
        data_for(r, |a| a.dns_switch.as_ref().filter(|d| d.id == n.id));
    let props: Vec<(&Attempt, &DnsPropagatedData)> = data_for(r, |a| {
        a.verification
            .as_ref()
            .and_then(|v| v.dns.as_ref())
            .filter(|d| d.id == n.id)
    });
    if n.via == rehost_plan::NameVia::HostsFile {
        hosts_file_rows(r, plan, n, b);
    } else {
        dns_rows(r, plan, n, &ttls, &switches, b);
    }
    propagation_and_clients(r, n, &props, b);
}

/// A name clients resolve from their hosts files: switched where each client's file changed.
fn hosts_file_rows(r: &Report, plan: &Plan, n: &NameDecl, b: &mut Vec<Block>) {
    let mut rows = Vec::new();
    for c in &n.clients {
        let done = attempts_with(r, plan, &Effect::Reconfigures(c.clone()));
        match done.iter().find(|a| a.result.as_deref() == Some("done")) {
            Some(a) => rows.push(vec![
                format!("Files of clients {} changed", code_span(c)),
                a.finished.as_deref().map(when).unwrap_or_default(),
                format!(
                    "step {}{} (rehost did not see the files change: a `scan-refs` step with \
                     `require_none` does)",
                    code_span(&a.id),
                    a.confirmed_by
                        .as_deref()
                        .map(|w| format!(", confirmed by {w}"))
                        .unwrap_or_default()
                ),
            ]),
            None => rows.push(vec![
                format!("Files of clients {} changed", code_span(c)),
                "—".into(),
                match done.first() {
                    Some(a) => format!(
                        "NOT done in this run: step {} {}",
                        code_span(&a.id),
                        result_of(a)
                    ),
                    None => "NOT planned: no step reconfigures them".into(),
                },
            ]),
        }
    }
    b.push(p(
        "Resolved from the clients' hosts files (`via = \"hosts-file\"`): no DNS server or TTL is \
         involved; each client follows when its file is changed, after any local cache (nscd) \
         lets go."
            .into(),
    ));
    b.push(table(&["", "When", "How, and who says so"], rows));
}

fn dns_rows(
    r: &Report,
    plan: &Plan,
    n: &NameDecl,
    ttls: &[(&Attempt, &DnsTtlData)],
    switches: &[(&Attempt, &DnsSwitchData)],
    b: &mut Vec<Block>,
) {
    let lowered = attempts_with(r, plan, &Effect::LowersTtl(n.id.clone()));
    let switched = attempts_with(r, plan, &Effect::Switches(n.id.clone()));

    let mut rows: Vec<Vec<String>> = Vec::new();
    // The TTL's history.
    let ttl_text = |s: Option<std::time::Duration>| {
        s.map(rehost_plan::format_duration)
            .unwrap_or_else(|| "not declared".into())
    };
    match lowered.iter().find(|a| a.result.as_deref() == Some("done")) {
        Some(a) => rows.push(vec![
            "TTL lowered".into(),
            a.finished.as_deref().map(when).unwrap_or_default(),
            format!(
                "step {} ({}), from {} to {}: as the step says; a `dns-ttl` step checks the servers",
                code_span(&a.id),
                result_of(a),
                ttl_text(n.ttl),
                ttl_text(n.lowered_ttl)
            ),
        ]),
        None if lowered.is_empty() => rows.push(vec![
            "TTL lowered".into(),
            "—".into(),
            "no step of the plan lowers it".into(),
        ]),
        None => rows.push(vec![
            "TTL lowered".into(),
            "—".into(),
            format!(
                "NOT done in this run: step {} {}",
                code_span(&lowered[0].id),
                result_of(lowered[0])
            ),
        ]),
    }
    for (a, d) in ttls {
        let worst = d.servers.iter().filter_map(|s| s.ttl).max();
        rows.push(vec![
            "Old TTL expired".into(),
            d.expired_at
                .as_deref()
                .map(when)
                .unwrap_or_else(|| "—".into()),
            if d.exit_code == 0 {
                format!(
                    "checked by step {}: {} authoritative server(s) served a TTL of at most {} s \
                     (longest {}), and {} s had passed since {} lowered it",
                    code_span(&a.id),
                    d.servers.len(),
                    d.lowered_ttl_s,
                    worst
                        .map(|t| format!("{t} s"))
                        .unwrap_or_else(|| "—".into()),
                    d.ttl_s,
                    d.lowered_by.as_deref().map(code_span).unwrap_or_default()
                )
            } else {
                format!(
                    "NOT shown: step {} {} (exit {}); see its verification",
                    code_span(&a.id),
                    result_of(a),
                    d.exit_code
                )
            },
        ]);
    }
    // The switch.
    let switch_done = switched
        .iter()
        .find(|a| a.result.as_deref() == Some("done"))
        .copied();
    match switch_done {
        Some(a) => {
            let how = match switches.iter().find(|(x, _)| x.id == a.id) {
                Some((_, d)) if d.outcome == "already_new" => format!(
                    "step {}: the primary {} already served {} (nothing sent)",
                    code_span(&a.id),
                    code_span(&d.server),
                    d.new.join(", ")
                ),
                Some((_, d)) => format!(
                    "step {}: a dynamic update signed with key {} at the primary {} ({} answer), \
                     which then served exactly {} with TTL {} s",
                    code_span(&a.id),
                    code_span(&d.key),
                    code_span(&d.server),
                    if d.answer_signed {
                        "signed"
                    } else {
                        "UNSIGNED"
                    },
                    d.new.join(", "),
                    d.ttl_s
                ),
                None => match &a.confirmed_by {
                    Some(who) => format!(
                        "step {}: by hand, confirmed by {} (rehost did not see the record change \
                         itself; a `dns-propagated` step does)",
                        code_span(&a.id),
                        who
                    ),
                    None => format!(
                        "step {} (rehost did not see the record change itself; a \
                         `dns-propagated` step does)",
                        code_span(&a.id)
                    ),
                },
            };
            rows.push(vec![
                "Switched".into(),
                a.finished.as_deref().map(when).unwrap_or_default(),
                how,
            ]);
            rows.push(vec![
                "Clients that ask DNS follow by (expected)".into(),
                expected_by(a, n, ttls).unwrap_or_else(|| "—".into()),
                expectation(n, ttls),
            ]);
        }
        None if switched.is_empty() => rows.push(vec![
            "Switched".into(),
            "—".into(),
            "no step of the plan switches it".into(),
        ]),
        None => rows.push(vec![
            "Switched".into(),
            "—".into(),
            format!(
                "NOT switched in this run: step {} {}",
                code_span(&switched[0].id),
                result_of(switched[0])
            ),
        ]),
    }
    b.push(table(&["", "When", "How, and who says so"], rows));
}

fn propagation_and_clients(
    r: &Report,
    n: &NameDecl,
    props: &[(&Attempt, &DnsPropagatedData)],
    b: &mut Vec<Block>,
) {
    // Each server's convergence, from the dns-propagated steps.
    if props.is_empty() && n.via == rehost_plan::NameVia::Dns {
        b.push(p(
            "When each server served the new value: not observed (no `dns-propagated` step for \
             this name ran)."
                .into(),
        ));
    }
    for (a, d) in props {
        b.push(p(format!(
            "Step {} asked {} server(s) {} time(s) over {}: {}.",
            code_span(&a.id),
            d.servers.len(),
            d.rounds,
            human_ms(d.waited_ms),
            match d.exit_code {
                0 => format!("every one served {}", code_span(&d.new)),
                1 => "NOT every server served the new value at its timeout".to_string(),
                _ => "NOT every server could be asked at its timeout".to_string(),
            }
        )));
        let rows = d
            .servers
            .iter()
            .map(|s| {
                vec![
                    code_span(&s.server),
                    s.role.clone(),
                    s.first_served
                        .as_deref()
                        .map(when)
                        .unwrap_or_else(|| "NOT seen serving it".into()),
                    match s.status.as_str() {
                        "serves" => "serves the new value".into(),
                        "differs" => format!("serves {}", s.values.join(", ")),
                        _ => format!(
                            "did not answer{}",
                            s.reason
                                .as_deref()
                                .map(|r| format!(": {r}"))
                                .unwrap_or_default()
                        ),
                    },
                    s.ttl
                        .map(|t| format!("{t} s"))
                        .unwrap_or_else(|| "—".into()),
                ]
            })
            .collect();
        b.push(table(
            &[
                "Server",
                "Role",
                "First seen serving the new value",
                "Last answer",
                "Its TTL",
            ],
            rows,
        ));
    }

    // Clients holding the old value in their own files.
    let wanted: Vec<String> = [n.old.as_deref(), Some(n.name.as_str())]
        .into_iter()
        .flatten()
        .map(|v| v.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    let scans = data_for(r, |a| {
        a.refs.as_ref().filter(|d| {
            d.find
                .iter()
                .any(|f| wanted.contains(&f.trim_end_matches('.').to_ascii_lowercase()))
        })
    });
    if scans.is_empty() {
        b.push(p(
            "Clients holding the old value in their own files: not searched (no `scan-refs` \
             step looks for it)."
                .into(),
        ));
    }
    for (a, d) in scans {
        let lines: u64 = d.scans.iter().map(|s| s.found_total).sum();
        let files: std::collections::BTreeSet<String> = d
            .scans
            .iter()
            .flat_map(|s| {
                s.found
                    .iter()
                    .map(move |f| format!("{}:{}", s.host, f.path))
            })
            .collect();
        let unread = d.scans.iter().any(|s| !s.errors.is_empty() || s.truncated);
        b.push(p(format!(
            "Clients holding the old value: step {} found {lines} line(s) in {} file(s){}{} (see \
             \"Clients holding the old address\").",
            code_span(&a.id),
            files.len(),
            if files.is_empty() {
                String::new()
            } else {
                format!(
                    ": {}",
                    files
                        .iter()
                        .take(10)
                        .map(|f| code_span(f))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            if unread {
                "; NOT everything was searched"
            } else {
                ""
            }
        )));
    }
}

fn result_of(a: &Attempt) -> String {
    match a.result.as_deref() {
        Some("done") => "done".into(),
        Some(r) => r.replace('_', " "),
        None => "did not finish".into(),
    }
}

/// The switch's time plus the longest time a cache may hold the old answer: the lowered TTL
/// when a `dns-ttl` step showed it served and the old one expired, else the full TTL.
fn expected_by(a: &Attempt, n: &NameDecl, ttls: &[(&Attempt, &DnsTtlData)]) -> Option<String> {
    let at: jiff::Timestamp = a.finished.as_deref()?.parse().ok()?;
    let secs = hold_secs(n, ttls)?;
    let by = at
        .checked_add(jiff::SignedDuration::from_secs(secs as i64))
        .ok()?;
    Some(when(&by.to_string()))
}

fn hold_secs(n: &NameDecl, ttls: &[(&Attempt, &DnsTtlData)]) -> Option<u64> {
    let shown = ttls.iter().any(|(_, d)| d.exit_code == 0);
    match (shown, n.lowered_ttl, n.ttl) {
        (true, Some(l), _) => Some(l.as_secs()),
        (_, _, Some(t)) => Some(t.as_secs()),
        _ => None,
    }
}

fn expectation(n: &NameDecl, ttls: &[(&Attempt, &DnsTtlData)]) -> String {
    let shown = ttls.iter().any(|(_, d)| d.exit_code == 0);
    let mut s = match (shown, n.lowered_ttl, n.ttl) {
        (true, Some(l), _) => format!(
            "the switch's time plus the lowered TTL ({}), which a `dns-ttl` step showed served \
             with the old TTL expired",
            rehost_plan::format_duration(l)
        ),
        (_, _, Some(t)) => format!(
            "the switch's time plus the full TTL ({}): no `dns-ttl` step showed a lowered TTL \
             in place",
            rehost_plan::format_duration(t)
        ),
        _ => "not known: the entry declares no `ttl`".into(),
    };
    if n.old.is_none() {
        s.push_str(
            "; a name that did not exist before may be cached as absent for the zone's \
             negative TTL (its SOA) on top",
        );
    }
    s
}
