//! `rehost demo`: the embedded example migration between two local hosts.

use crate::cli::{DemoArgs, ReportFormat, RunArgs, StateArgs};
use crate::exit;

const PLAN: &str = include_str!("../../../../examples/demo/plan.toml");

pub fn run(args: &DemoArgs) -> i32 {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("rehost-demo-{}", std::process::id())),
    };
    let setup = || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("plan.toml"), PLAN)?;
        Ok(())
    };
    if let Err(e) = setup() {
        crate::term::error(&format!(
            "failed to lay out the demo in {}: {e}",
            dir.display()
        ));
        return exit::TROUBLE;
    }
    println!(
        "Demo plan written to {}/plan.toml; its hosts live under {}.\n",
        dir.display(),
        dir.display()
    );
    let code = crate::cmd::check::run(&crate::cli::CheckArgs {
        plan: dir.join("plan.toml"),
        json: false,
        hosts: false,
        env: None,
        ssh_config: None,
    });
    if code == exit::TROUBLE {
        return code;
    }
    println!();
    let run = RunArgs {
        plan: dir.join("plan.toml"),
        state: StateArgs {
            env: Some("test".into()),
            state: None,
        },
        // The demo confirms its manual steps itself, as a recorded --yes by "demo operator".
        confirm_as: Some("demo operator".into()),
        yes: true,
        accept_findings: false,
        accept_plan_change: false,
        ignore_window: false,
        retry_interrupted: false,
        skip_interrupted: false,
        until: None,
        ssh_config: None,
        sign: Default::default(),
        json: false,
    };
    let code = crate::cmd::run::run(&run);
    // The evidence, whatever the outcome: a failed demo has a report too.
    println!();
    let report = crate::plan_file::PlanFile::load_valid(&dir.join("plan.toml"), "report on")
        .map(|pf| {
            crate::cmd::report::write(
                &pf,
                Some("test"),
                None,
                None,
                &[ReportFormat::Html, ReportFormat::Json, ReportFormat::Md],
            )
        })
        .unwrap_or(exit::TROUBLE);
    if report != exit::TROUBLE {
        println!(
            "Open {}/.rehost/plan/test/report.html in a browser: the demo's evidence.",
            dir.display()
        );
    }
    if code == exit::OK {
        println!(
            "\nThe journal is in {}/.rehost/plan/test/. Try: rehost status {0}/plan.toml --env test; rehost report {0}/plan.toml --env test; rehost concept {0}/plan.toml",
            dir.display()
        );
    }
    if args.dir.is_none() {
        // The demo left its files in a temporary directory without saying so.
        println!(
            "The demo's files stay in {} for you to look at; remove them with: rm -r {0}",
            dir.display()
        );
    }
    code
}
