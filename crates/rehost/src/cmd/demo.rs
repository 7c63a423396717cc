//! `rehost demo`: the embedded example migration between two local hosts, of a running
//! service under a write load (examples/demo/plan.toml): lay out the old server, start its
//! service, check and rehearse the plan, write the report, stop what it started.

use crate::cli::{DemoArgs, DemoServe, ReportFormat, RunArgs, StateArgs};
use crate::exit;
use std::path::Path;

const PLAN: &str = include_str!("../../../../examples/demo/plan.toml");

/// Where the test environment's old and new servers answer (the plan's `address`es).
const OLD_ADDRESS: &str = "127.0.0.2";
const NEW_ADDRESS: &str = "127.0.0.3";

/// A port free on both addresses.
fn free_port() -> std::io::Result<u16> {
    let mut last = None;
    for _ in 0..50 {
        let l = std::net::TcpListener::bind((OLD_ADDRESS, 0))?;
        let port = l.local_addr()?.port();
        match std::net::TcpListener::bind((NEW_ADDRESS, port)) {
            Ok(_) => return Ok(port),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
}

/// The plan with this rehost and `port` filled in.
fn plan_text(exe: &Path, port: u16) -> std::io::Result<String> {
    let exe = exe
        .to_str()
        .filter(|s| !s.chars().any(char::is_control))
        .ok_or_else(|| {
            std::io::Error::other(format!(
                "rehost's own path {} cannot be written into the demo plan (not UTF-8, or control characters)",
                exe.display()
            ))
        })?;
    let toml_escaped = exe.replace('\\', "\\\\").replace('"', "\\\"");
    Ok(PLAN
        .replace("@REHOST@", &toml_escaped)
        .replace("@PORT@", &port.to_string()))
}

/// The old server as it is before the migration: its data, its key, its configuration.
fn lay_out_old(root: &Path) -> std::io::Result<()> {
    let invoices = root.join("srv/billing/invoices/2026");
    std::fs::create_dir_all(&invoices)?;
    std::fs::create_dir_all(root.join("etc/billing/tls"))?;
    let write_new = |p: &Path, text: &str| -> std::io::Result<()> {
        if !p.exists() {
            std::fs::write(p, text)?;
        }
        Ok(())
    };
    for i in 1..=10 {
        write_new(
            &invoices.join(format!("inv-{i}.txt")),
            &format!("invoice {i}\namount {} EUR\n", i * 42),
        )?;
    }
    write_new(
        &root.join("srv/billing/customers.csv"),
        "id,name\n1,Ada\n2,Grace\n",
    )?;
    write_new(&root.join("etc/billing/tls/key.pem"), "demo key material\n")?;
    write_new(
        &root.join("etc/billing/billing.ini"),
        "; billing\n[server]\nport = 8080\nworkers = 4\n[invoices]\ncurrency = EUR\n",
    )
}

/// Stops the demo's services (the old one if the run did not, the new one it started).
fn stop_services(dir: &Path) {
    for host in ["test-old", "test-new"] {
        let pid_file = dir.join("hosts").join(host).join("billing.pid");
        if pid_file.exists() {
            print!("{host}: ");
            if let Err(e) = super::demo_service::stop(&pid_file) {
                crate::term::error(&format!("demo service on {host}: {e}"));
            }
        }
    }
}

pub fn run(args: &DemoArgs) -> i32 {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("rehost-demo-{}", std::process::id())),
    };
    let setup = || -> std::io::Result<u16> {
        if args.dir.is_some() {
            std::fs::create_dir_all(&dir)?;
        } else {
            // A new directory of ours in the shared temporary directory: one planted there
            // under the same name by another user is refused, never written into.
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("{e} (remove it, or give the demo its own directory with --dir)"),
                    )
                })?;
        }
        let port = free_port()?;
        let exe = std::env::current_exe()?;
        std::fs::write(dir.join("plan.toml"), plan_text(&exe, port)?)?;
        lay_out_old(&dir.join("hosts/test-old"))?;
        Ok(port)
    };
    let port = match setup() {
        Ok(port) => port,
        Err(e) => {
            crate::term::error(&format!(
                "failed to lay out the demo in {}: {e}",
                dir.display()
            ));
            return exit::TROUBLE;
        }
    };
    println!(
        "Demo plan written to {}/plan.toml; its hosts live under {}.",
        dir.display(),
        dir.display()
    );
    let old = dir.join("hosts/test-old");
    let serve = DemoServe {
        listen: std::net::SocketAddr::new(OLD_ADDRESS.parse().expect("a literal address"), port),
        data: old.join("srv/billing"),
        key: old.join("etc/billing/tls/key.pem"),
        pid_file: old.join("billing.pid"),
        exit_after: "10m".into(),
    };
    print!("The old server's ");
    if let Err(e) = super::demo_service::start(&serve) {
        crate::term::error(&format!("the demo's old service did not start: {e}"));
        return exit::TROUBLE;
    }
    println!();
    let code = crate::cmd::check::run(&crate::cli::CheckArgs {
        plan: dir.join("plan.toml"),
        json: false,
        hosts: false,
        env: None,
        ssh_config: None,
    });
    if code == exit::TROUBLE {
        stop_services(&dir);
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
    println!("\nThe demo's services, stopped now that the demo is over:");
    stop_services(&dir);
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
