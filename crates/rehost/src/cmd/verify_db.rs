//! `rehost verify db OLD NEW` and `rehost verify db URL --exercise`: prove a database copy
//! complete and correct, or show that a server handles its data. The SQL runs where each
//! server can be reached (`HOST:postgres://…` through that host's agent); only digests travel.

use crate::cli::VerifyDbArgs;
use crate::exit;
use rehost_db::{ConnInfo, DbError};
use rehost_host::Host;
use std::sync::atomic::Ordering;

pub fn run(args: &VerifyDbArgs) -> i32 {
    match verify(args) {
        Ok(code) => code,
        Err(DbError::Cancelled) => {
            eprintln!("rehost: interrupted; nothing was verified");
            exit::INTERRUPTED
        }
        Err(e) => {
            let what = match &args.new {
                Some(new) => format!(
                    "verify {} against {}",
                    rehost_db::redact(new),
                    rehost_db::redact(&args.old)
                ),
                None => format!("exercise {}", rehost_db::redact(&args.old)),
            };
            eprintln!(
                "rehost: failed to {what}: {}",
                rehost_plan::escape_control(&e.to_string())
            );
            exit::TROUBLE
        }
    }
}

/// Where a side's SQL runs: this machine, or the host named before the URL.
fn side(s: &str, args: &VerifyDbArgs) -> Result<(Box<dyn Host>, bool, ConnInfo), DbError> {
    let (host, url) = rehost_db::split_host(s);
    let conn = ConnInfo::parse(url)?;
    match host {
        None => Ok((
            Box::new(rehost_host::LocalHost::new("this machine", None)),
            false,
            conn,
        )),
        Some(h) => {
            let spec = rehost_host::HostSpec::Ssh(rehost_host::SshSpec::for_destination(
                h,
                None,
                args.ssh_config.clone(),
            ));
            let host = rehost_host::open(h, &spec).map_err(|e| DbError::Query {
                target: format!("{h}:{conn}"),
                message: e.to_string(),
            })?;
            Ok((host, true, conn))
        }
    }
}

fn verify(args: &VerifyDbArgs) -> Result<i32, DbError> {
    crate::signals::install();
    let cancel = &crate::signals::CANCEL;
    let (ha, show_a, ca) = side(&args.old, args)?;
    let engine = ca.engine();
    let mut out = std::io::stdout().lock();
    let written = match &args.new {
        None => {
            let a = rehost_db::connect_for_exercise(ha.as_ref(), show_a, ca, cancel);
            let report = rehost_db::exercise_engine(engine, a.as_ref(), &args.table)?;
            let r = if args.json {
                report.render_json(&mut out)
            } else {
                report.render_human(&mut out)
            };
            r.map(|_| report.exit_code())
        }
        Some(new) => {
            let (hb, show_b, cb) = side(new, args)?;
            if cb.engine() != engine {
                return Err(DbError::Url(format!(
                    "`{}` is a {} database and `{}` a {} one: rehost compares databases of one engine",
                    rehost_db::redact(&args.old),
                    engine.name(),
                    rehost_db::redact(new),
                    cb.engine().name()
                )));
            }
            let a = rehost_db::connect(ha.as_ref(), show_a, ca, cancel);
            let b = rehost_db::connect(hb.as_ref(), show_b, cb, cancel);
            let mut opts = rehost_db::VerifyOptions {
                tables: args.table.clone(),
                ..Default::default()
            };
            if let Some(n) = args.parallel {
                opts.parallel = n.max(1);
            }
            let report = rehost_db::verify_engine(engine, a.as_ref(), b.as_ref(), &opts)?;
            if cancel.load(Ordering::Relaxed) {
                return Err(DbError::Cancelled);
            }
            let r = if args.json {
                report.render_json(&mut out)
            } else {
                report.render_human(&mut out)
            };
            r.map(|_| report.exit_code())
        }
    };
    written.map_err(|e| DbError::Answer {
        target: "standard output".into(),
        message: e.to_string(),
    })
}
