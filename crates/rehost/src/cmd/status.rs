//! `rehost status PLAN [--env NAME]`: each step's state, times and who confirmed, read from the
//! journal alone.

use crate::cli::StatusArgs;
use crate::exit;
use crate::plan_file::PlanFile;
use crate::term::escape;
use crate::view::secs;
use rehost_engine::{Journal, StepStatus};
use serde_json::json;

pub fn run(args: &StatusArgs) -> i32 {
    let pf = match PlanFile::load_valid(&args.plan, "show the status of") {
        Ok(p) => p,
        Err(code) => return code,
    };
    let plan = pf.plan();
    let dir = rehost_engine::state_dir(
        &pf.path,
        args.state.state.as_deref(),
        args.state.env.as_deref(),
    );
    let read = rehost_engine::open_state_dir(&dir, false).and_then(|d| match d {
        Some(d) => Journal::read(&d),
        None => Ok(Default::default()),
    });
    if let Some(base) = args.state.state.as_ref().filter(|b| !b.exists()) {
        // A mistyped --state said "not started" with exit 0.
        crate::term::error(&format!(
            "no state directory at {}: check --state (a run keeps its journal there)",
            base.display()
        ));
        return exit::TROUBLE;
    }
    let loaded = match read {
        Ok(l) => l,
        Err(e) => {
            crate::term::error(&e.to_string());
            return exit::TROUBLE;
        }
    };
    let ids: Vec<String> = plan.steps.iter().map(|s| s.id.clone()).collect();
    let st = rehost_engine::status(&loaded.records, &ids);
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
            "downtime_ms": rehost_engine::downtime(&loaded.records, plan).map(|d| d.as_millis() as u64),
        });
        println!("{}", serde_json::to_string_pretty(&out).expect("json"));
        return exit::OK;
    }
    println!("{} [{}]", escape(&plan.migration.title), escape(&env));
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
                StepStatus::Failed | StepStatus::Interrupted | StepStatus::Superseded
            )
        }) {
            println!("       {}", escape(d));
        }
    }
    for (w, d, b) in &st.decisions {
        println!("decision by {}: {}: {}", escape(b), escape(w), escape(d));
    }
    if let Some(down) = rehost_engine::downtime(&loaded.records, plan) {
        let budget = plan
            .migration
            .max_downtime
            .map(|b| format!(" (budget {})", rehost_plan::format_duration(b)))
            .unwrap_or_default();
        println!("downtime {}{budget}", secs(down.as_millis() as u64));
    }
    if let Some((ok, s)) = &st.finished {
        println!(
            "{}: {}",
            if *ok { "finished" } else { "stopped" },
            escape(s)
        );
    }
    exit::OK
}
