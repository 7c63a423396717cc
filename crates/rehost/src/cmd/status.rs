//! `rehost status PLAN [--env NAME]`: each step's state, times and who confirmed, read from the
//! journal alone (the plan from its snapshot in the state directory when the file is gone).
//! `--verify` checks the state directory instead: the journal's hash chain, every kept file, and
//! with a key the signature of the journal's head.

use crate::cli::StatusArgs;
use crate::exit;
use crate::plan_file::PlanFile;
use crate::term::escape;
use crate::view::secs;
use rehost_journal::{Journal, StepStatus};
use serde_json::json;

pub fn run(args: &StatusArgs) -> i32 {
    let dir = rehost_engine::state_dir(
        &args.plan,
        args.state.state.as_deref(),
        args.state.env.as_deref(),
    );
    if let Some(base) = args.state.state.as_ref().filter(|b| !b.exists()) {
        // A mistyped --state said "not started" with exit 0.
        crate::term::error(&format!(
            "no state directory at {}: check --state (a run keeps its journal there)",
            base.display()
        ));
        return exit::TROUBLE;
    }
    let sdir = match rehost_engine::open_state_dir(&dir, false) {
        Ok(d) => d,
        Err(e) => {
            crate::term::error(&e.to_string());
            return exit::TROUBLE;
        }
    };
    if args.verify {
        return verify(args, &dir, sdir.as_ref());
    }
    let loaded = match sdir.as_ref().map(Journal::read).transpose() {
        Ok(l) => l.unwrap_or_default(),
        Err(e) => {
            crate::term::error(&e.to_string());
            return exit::TROUBLE;
        }
    };
    // The plan file, or the plan as run when the file is gone (a report years later).
    let from_snapshot = !args.plan.exists() && sdir.is_some();
    let pf = if from_snapshot {
        let sdir = sdir.as_ref().expect("checked");
        match rehost_journal::archive::plan_snapshot(sdir, &loaded.records) {
            Ok(Some(snap)) => PlanFile::from_text(
                &args.plan,
                format!(
                    "{} (gone; its snapshot {})",
                    args.plan.display(),
                    dir.join(&snap.file).display()
                ),
                snap.text,
            )
            .valid("show the status of"),
            Ok(None) => {
                crate::term::error(&format!(
                    "failed to read plan {}: it is gone and the journal in {} names no snapshot of it; give the plan file",
                    args.plan.display(),
                    dir.display()
                ));
                Err(exit::TROUBLE)
            }
            Err(e) => {
                crate::term::error(&e.to_string());
                Err(exit::TROUBLE)
            }
        }
    } else {
        PlanFile::load_valid(&args.plan, "show the status of")
    };
    let pf = match pf {
        Ok(p) => p,
        Err(code) => return code,
    };
    let plan = pf.plan();
    if args.recheck {
        return recheck(args, plan, &dir);
    }
    let ids: Vec<String> = plan.steps.iter().map(|s| s.id.clone()).collect();
    let st = rehost_journal::status(&loaded.records, &ids);
    // The one figure `rehost run` and the report give too: every outage, rolled back or not.
    let down = rehost_journal::downtime(&loaded.records, plan);
    let env = args
        .state
        .env
        .clone()
        .unwrap_or_else(|| "production".into());
    if args.json {
        let out = json!({
            "plan": pf.display,
            "env": env,
            "started": st.started,
            "finished": st.finished.as_ref().map(|(ok, s)| json!({"ok": ok, "summary": s})),
            "decisions": st.decisions.iter().map(|(w, d, b)| json!({"what": w, "detail": d, "by": b})).collect::<Vec<_>>(),
            "steps": st.steps,
            "torn": loaded.torn,
            "head": loaded.head,
            "downtime_ms": down.total_ms,
            "downtime": down,
        });
        println!("{}", serde_json::to_string_pretty(&out).expect("json"));
        return exit::OK;
    }
    println!("{} [{}]", escape(&plan.migration.title), escape(&env));
    if from_snapshot {
        println!("plan {}", escape(&pf.display));
    }
    if let Some(w) = loaded.unchained_warning() {
        println!("warning: {}", escape(&w));
    }
    match &st.started {
        None => println!(
            "not started (journal {})",
            escape(&dir.join("journal").display().to_string())
        ),
        Some(t) => println!("started {t}"),
    }
    if let Some(w) = &loaded.torn {
        println!("warning: {}", escape(w));
    }
    for (i, s) in st.steps.iter().enumerate() {
        let word = match s.status {
            StepStatus::Pending => "pending",
            StepStatus::Interrupted => "INTERRUPTED",
            StepStatus::Done => "done",
            // Not a failure: nobody answered its prompt; the next run asks again.
            StepStatus::WaitingForConfirmation => "waiting for confirmation",
            StepStatus::Failed => "FAILED",
            StepStatus::Skipped => "skipped",
            StepStatus::RolledBack => "rolled back",
            StepStatus::Superseded => "superseded",
        };
        let mut line = format!("{:>3}. {:<12} {}", i + 1, word, escape(&s.id));
        if let Some(t) = &s.started {
            line.push_str(&format!("  started {t}"));
        }
        if let Some(ms) = s.elapsed_ms {
            line.push_str(&format!("  took {}", secs(ms)));
        }
        if s.attempts > 1 {
            line.push_str(&format!("  attempts {}", s.attempts));
        }
        if s.superseded > 0 && s.status != StepStatus::Superseded {
            let n = s.superseded;
            line.push_str(&format!(
                "  ({n} earlier attempt{} superseded by a rollback)",
                if n == 1 { "" } else { "s" }
            ));
        }
        if let Some(c) = &s.confirmed_by {
            line.push_str(&format!("  confirmed by {}", escape(c)));
        }
        println!("{line}");
        if let Some(d) = s.detail.as_ref().filter(|_| {
            matches!(
                s.status,
                StepStatus::Failed
                    | StepStatus::Interrupted
                    | StepStatus::Superseded
                    | StepStatus::WaitingForConfirmation
            )
        }) {
            println!("       {}", escape(d));
        }
    }
    for (w, d, b) in &st.decisions {
        println!("decision by {}: {}: {}", escape(b), escape(w), escape(d));
    }
    print_downtime(&down, plan);
    print_loads(&loaded.records);
    if let Some((ok, s)) = &st.finished {
        println!(
            "{}: {}",
            if *ok { "finished" } else { "stopped" },
            escape(s)
        );
    }
    exit::OK
}

/// The downtime: the total against the budget, then each outage with what began and ended it.
/// `--recheck`: every finished `watch-old` step's old side compared now with what it kept, and
/// every tree a `retire-old` step made read-only walked again for write bits, each re-check
/// appended to the journal; one line each.
fn recheck(args: &StatusArgs, plan: &rehost_plan::Plan, dir: &std::path::Path) -> i32 {
    crate::signals::install();
    let done = rehost_engine::recheck_old(
        plan,
        args.state.env.as_deref(),
        dir,
        args.ssh_config.as_deref(),
        &crate::signals::CANCEL,
    );
    let done = match done {
        Ok(d) => d,
        Err(e) => {
            crate::term::error(&e.to_string());
            return exit::TROUBLE;
        }
    };
    if done.is_empty() {
        crate::term::error(&format!(
            "nothing to re-check: the journal in {} has no finished `watch-old` step and no `retire-old` step that made a tree read-only",
            dir.display()
        ));
        return exit::TROUBLE;
    }
    let mut code = exit::OK;
    for (r, line) in &done {
        // The line is escaped where it was made (paths, messages).
        println!("{line}");
        let Some(r) = r else {
            // A watch a rollback made void: not compared.
            code = exit::TROUBLE;
            continue;
        };
        let (clean, error) = match r {
            rehost_journal::Record::OldSideRechecked {
                unchanged, error, ..
            } => (*unchanged, error.is_some()),
            rehost_journal::Record::ReadOnlyRechecked {
                read_only, error, ..
            } => (*read_only, error.is_some()),
            _ => (true, false),
        };
        if error {
            code = exit::TROUBLE;
        } else if !clean && code == exit::OK {
            code = exit::FINDINGS;
        }
    }
    if done.iter().any(|(r, _)| r.is_some()) {
        println!(
            "recorded in the journal {}",
            escape(&dir.join("journal").display().to_string())
        );
    }
    code
}

/// Each load's last stop and each write load's last check, as the journal has them.
fn print_loads(records: &[rehost_journal::Record]) {
    use rehost_journal::Record;
    for r in records {
        match r {
            Record::LoadStopped {
                id,
                reason,
                elapsed_ms,
                acknowledged,
                errors,
                ..
            } => {
                let writes = acknowledged
                    .map(|a| {
                        format!(
                            ", {a} write(s) acknowledged, {} error(s)",
                            errors.unwrap_or(0)
                        )
                    })
                    .unwrap_or_default();
                println!(
                    "load `{}`: {} after {}{writes}",
                    escape(id),
                    escape(reason),
                    secs(*elapsed_ms)
                );
            }
            Record::LoadChecked {
                id,
                new_side,
                acknowledged,
                found,
                missing_total,
                missing,
                error,
                ..
            } => match error {
                Some(e) => println!(
                    "load `{}`: acknowledged writes NOT checked on {}: {}",
                    escape(id),
                    escape(new_side),
                    escape(e)
                ),
                None => println!(
                    "load `{}`: {acknowledged} acknowledged, {found} found on {}, {missing_total} missing{}",
                    escape(id),
                    escape(new_side),
                    if missing.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (first: {})",
                            missing
                                .iter()
                                .map(u64::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                ),
            },
            _ => {}
        }
    }
}

fn print_downtime(down: &rehost_journal::Downtime, plan: &rehost_plan::Plan) {
    if let Some(m) = &down.measured {
        let budget = match plan.migration.max_downtime {
            Some(b) if m.total_ms > b.as_millis() as u64 => {
                format!(", OVER the budget of {}", rehost_plan::format_duration(b))
            }
            Some(b) => format!(" (budget {})", rehost_plan::format_duration(b)),
            None => String::new(),
        };
        println!(
            "downtime measured {}{budget}; not measured: the time between samples, clients elsewhere in the network",
            rehost_engine::probe::measured_text(m)
        );
        for (i, o) in m.outages.iter().enumerate() {
            let line = format!(
                "  {}. `{}` answered on neither side for {}: from {} {}",
                i + 1,
                o.service,
                secs(o.ms),
                o.down_at,
                match &o.up_at {
                    Some(up) => format!("until {up}"),
                    None => "until probing stopped (still unreachable then)".into(),
                }
            );
            println!("{}", escape(&line));
        }
    }
    if down.outages.is_empty() {
        return;
    }
    let budget = plan
        .migration
        .max_downtime
        .map(|b| format!(" (budget {})", rehost_plan::format_duration(b)))
        .unwrap_or_default();
    let n = down.outages.len();
    let outages = if n == 1 {
        "1 outage".to_owned()
    } else {
        format!("{n} outages")
    };
    match down.total_ms {
        Some(total) => println!(
            "downtime declared by the steps {} in {outages}{budget}",
            secs(total)
        ),
        None => println!(
            "downtime declared by the steps: the service is STILL DOWN; {} in {outages} so far, not counting the one still open{budget}",
            secs(down.ended_ms())
        ),
    }
    for (i, o) in down.outages.iter().enumerate() {
        let up = match (&o.up_at, o.how_up()) {
            (Some(at), Some(how)) => format!("serving again at {at} ({how})"),
            _ => "not serving again yet".to_owned(),
        };
        // Journal text: escaped as every other line of it.
        let line = format!(
            "  {}. {}: down at {} ({}), {up}",
            i + 1,
            o.ms.map_or("still down".to_owned(), secs),
            o.down_at,
            o.how_down()
        );
        println!("{}", escape(&line));
    }
}

/// `status --verify`: exit 0 with the head digest when the journal's chain and every kept file
/// match; exit 1 naming each record or file that does not.
fn verify(
    args: &StatusArgs,
    dir: &std::path::Path,
    sdir: Option<&rehost_tree::private::PrivateDir>,
) -> i32 {
    let journal = dir.join(rehost_journal::journal::JOURNAL);
    let Some(sdir) = sdir.filter(|_| journal.exists()) else {
        crate::term::error(&format!(
            "failed to verify {}: there is no journal (the run has not started, or give its state directory with --state and --env)",
            dir.display()
        ));
        return exit::TROUBLE;
    };
    let trust = match trust(args, dir) {
        Ok(t) => t,
        Err(e) => {
            crate::term::error(&e);
            return exit::TROUBLE;
        }
    };
    let head = args.head.as_deref().map(|h| h.trim().to_ascii_lowercase());
    let v = match rehost_journal::archive::verify_with(sdir, head.as_deref(), &trust) {
        Ok(v) => v,
        Err(e) => {
            crate::term::error(&e.to_string());
            return exit::TROUBLE;
        }
    };
    let code = if v.ok() { exit::OK } else { exit::FINDINGS };
    // What vouches for the journal beyond its own consistency.
    let authenticity = if !v.authenticated.is_empty() {
        format!(
            "authentic: {}",
            v.authenticated
                .iter()
                .map(|a| escape(a))
                .collect::<Vec<_>>()
                .join("; ")
        )
    } else if let Some(seal) = v.seal.as_ref().filter(|_| trust.is_empty()) {
        let files: Vec<&str> = seal
            .kinds
            .iter()
            .map(|k| match k.as_str() {
                "ssh" => rehost_journal::signing::SSH_SIG_FILE,
                _ => rehost_journal::signing::MAC_FILE,
            })
            .collect();
        format!(
            "signed ({}), but the signature was not checked: give --allowed-signers FILE or --hmac-key FILE; until then {}",
            if files.is_empty() {
                "journal.head, with no signature file".to_owned()
            } else {
                files.join(", ")
            },
            crate::sign::UNSIGNED
        )
    } else if trust.is_empty() {
        format!(
            "not signed: {}; compare the head with the one recorded when the run ended (--head DIGEST), or sign runs with --sign-key or --hmac-key",
            crate::sign::UNSIGNED
        )
    } else {
        // A key was given and the signature did not hold: the problems say why.
        "NOT authentic: the signature of the journal's head does not hold (above)".to_owned()
    };
    // A head recorded earlier that is not the last: records were added after it.
    let after_head = head.as_deref().and_then(|h| {
        let n = v.chain_line(h)?;
        (n < v.records).then(|| {
            format!(
                "records {} to {} were added after the head {h} was recorded",
                n + 1,
                v.records
            )
        })
    });
    if args.json {
        let out = json!({
            "state": dir.display().to_string(),
            "verified": v.ok(),
            "head": v.head,
            "records": v.records,
            "files": v.files,
            "problems": v.problems.iter().map(|p| json!({
                "line": p.line, "step": p.step, "file": p.file, "message": p.message,
                "text": p.to_string(),
            })).collect::<Vec<_>>(),
            "warnings": v.warnings,
            "signature": v.seal,
            "authenticated": v.authenticated,
            "authenticity": authenticity,
            "after_head": after_head,
        });
        println!("{}", serde_json::to_string_pretty(&out).expect("json"));
        return code;
    }
    for w in v.warnings.iter().chain(&after_head) {
        println!("warning: {}", escape(w));
    }
    for p in &v.problems {
        println!("MISMATCH {}", escape(&p.to_string()));
    }
    if v.ok() {
        println!(
            "verified: {} journal records (hash chain intact) and {} kept files match their digests",
            v.records, v.files
        );
        println!("head {}", v.head.as_deref().unwrap_or("(none)"));
        println!("{authenticity}");
    } else {
        println!("{authenticity}");
        crate::term::error(&format!(
            "{} does not verify: {} problem(s); the journal or the files it names were changed, removed or moved since they were written",
            dir.display(),
            v.problems.len()
        ));
    }
    code
}

/// The keys `--verify` checks the head's signature against: an HMAC key is refused inside the
/// state directory (it would vouch for itself) and must be readable; the allowed signers file
/// must be there.
fn trust(
    args: &StatusArgs,
    dir: &std::path::Path,
) -> Result<rehost_journal::signing::Trust, String> {
    if let Some(f) = &args.allowed_signers
        && let Err(e) = std::fs::metadata(f)
    {
        return Err(format!(
            "failed to read the allowed signers file {}: {e}",
            f.display()
        ));
    }
    Ok(rehost_journal::signing::Trust {
        allowed_signers: args.allowed_signers.clone(),
        identity: args.signer_identity.clone(),
        hmac: args
            .hmac_key
            .as_deref()
            .map(|k| rehost_journal::signing::HmacKey::load(k, crate::sign::state_base(dir)))
            .transpose()
            .map_err(|e| e.to_string())?,
    })
}
