//! `rehost run PLAN [--env NAME]`: execute (or rehearse) the checklist.

use crate::cli::RunArgs;
use crate::confirm::StdinConfirmer;
use crate::exit;
use crate::plan_file::PlanFile;
use crate::view::{JsonSink, TermSink};
use rehost_engine::{Engine, EngineError, RunOptions, Sink};

pub fn current_user() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| user_from_passwd())
}

/// The login name of the real uid from the password database, or `uid N`.
fn user_from_passwd() -> String {
    // SAFETY: getuid has no preconditions; getpwuid_r writes only into the buffers we pass and
    // returns a pointer into them, which we read before they go out of scope.
    unsafe {
        let uid = libc::getuid();
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        if libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut result) == 0
            && !result.is_null()
        {
            return std::ffi::CStr::from_ptr(pw.pw_name)
                .to_string_lossy()
                .into_owned();
        }
        format!("uid {uid}")
    }
}

pub fn run(args: &RunArgs) -> i32 {
    let pf = match PlanFile::load_valid(&args.plan, "run") {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (plan, c) = (pf.plan(), &pf.checked);
    if !args.json && !c.findings.is_empty() {
        println!("M 2.319 findings: {}", c.findings.len());
        let map = pf.source_map();
        for f in &c.findings {
            print!("{}", map.render(&pf.display, f));
        }
        println!();
    }
    let state_dir = rehost_engine::state_dir(
        &pf.path,
        args.state.state.as_deref(),
        args.state.env.as_deref(),
    );
    // The real migration: what the latest rehearsal took, and whether it fits.
    if args.state.env.is_none() && !args.json {
        let runs = crate::cmd::report::other_runs(
            &pf.path,
            plan,
            args.state.state.as_deref(),
            "production",
        );
        if let Some(r) = rehost_evidence::rehearsed::latest(plan, &runs) {
            println!("expected from {}", rehost_evidence::rehearsed::summary(&r));
            for w in rehost_evidence::rehearsed::warnings(plan, &r) {
                println!("warning: {w}");
            }
        }
    }
    // The signing keys are checked before anything runs, not after hours of work.
    let keys = match crate::sign::keys(&args.sign, &state_dir) {
        Ok(k) => k,
        Err(e) => {
            crate::term::error(&e);
            return exit::TROUBLE;
        }
    };
    crate::signals::install();
    let user = current_user();
    let options = RunOptions {
        env: args.state.env.clone(),
        state_dir: state_dir.clone(),
        user: user.clone(),
        confirm_as: args.confirm_as.clone(),
        yes: args.yes,
        accept_findings: args.accept_findings,
        accept_plan_change: args.accept_plan_change,
        ignore_window: args.ignore_window,
        retry_interrupted: args.retry_interrupted,
        skip_interrupted: args.skip_interrupted,
        ssh_config: args.ssh_config.clone(),
        until: args.until.clone(),
    };
    let mut term;
    let mut json;
    let sink: &mut dyn Sink = if args.json {
        json = JsonSink;
        &mut json
    } else {
        term = TermSink::new();
        &mut term
    };
    let mut confirmer = StdinConfirmer {
        // Who is at the keyboard: --confirm-as, else the login.
        user: args.confirm_as.clone().unwrap_or(user),
        cancel: &crate::signals::CANCEL,
    };
    let engine = Engine {
        plan,
        plan_text: &pf.text,
        findings: &c.findings,
        options,
        sink,
        cancel: &crate::signals::CANCEL,
        confirmer: &mut confirmer,
        clock: &rehost_engine::SystemClock::default(),
        hosts: None,
    };
    let (code, no_journal) = match engine.run() {
        Ok(_) => (exit::OK, false),
        Err(e) => {
            match &e {
                // One problem a line: escaped as one message, its newlines showed as `\n`.
                EngineError::Preflight { problems } => {
                    let mut lines = e.to_string();
                    lines.truncate(lines.find('\n').unwrap_or(lines.len()));
                    crate::term::error(&lines);
                    for p in problems {
                        eprintln!("  {}", crate::term::escape(p));
                    }
                }
                _ => crate::term::error(&e.to_string()),
            }
            match e {
                EngineError::Cancelled { .. } | EngineError::CancelledBefore { .. } => {
                    (exit::INTERRUPTED, false)
                }
                // Another run holds the state directory: its journal is not this run's to sign.
                EngineError::Journal(rehost_journal::JournalError::Locked { .. }) => {
                    (exit::TROUBLE, true)
                }
                // The state directory was refused: there is no journal to show or sign, and
                // opening it again would only repeat the refusal.
                EngineError::Journal(rehost_journal::JournalError::UnsafeState(_)) => {
                    (exit::TROUBLE, true)
                }
                // --until named no step: refused before the state directory was opened.
                EngineError::UnknownUntil(_) => (exit::TROUBLE, true),
                _ => (exit::TROUBLE, false),
            }
        }
    };
    if no_journal {
        return code;
    }
    // However the run ended, the head of what it recorded, signed when a key was given.
    let env = args.state.env.as_deref();
    let verify = |head: &str| {
        crate::sign::verify_command(&args.plan, env, args.state.state.as_deref(), head)
    };
    let env_name = env.unwrap_or("production");
    match crate::sign::finish(&state_dir, env_name, &keys, &verify, args.json) {
        Ok(_) => code,
        Err(e) => {
            crate::term::error(&e);
            if code == exit::OK {
                exit::TROUBLE
            } else {
                code
            }
        }
    }
}
