//! `rehost compat replay-sql`: the read-only statements of a PostgreSQL log or a MariaDB
//! general log against the old and the new server, compared row by row, the old server's own
//! variation as noise (`rehost_compat::sql`, through rehost-engine's psql and mariadb
//! sessions). Every string from the log
//! or a server is escaped before it reaches the terminal.

use crate::cli::{CompatReplaySqlArgs, TreeOptions};
use crate::exit;
use rehost_compat::sql::{self, log::Format};
use rehost_engine::sql_replay::{replay_file, side};
use rehost_host::Host;
use rehost_plan::escape_control as esc;
use std::io::Write;
use std::time::Instant;

fn host_named(
    name: Option<&str>,
    args: &CompatReplaySqlArgs,
) -> Result<(Box<dyn Host>, bool), String> {
    match name {
        None | Some("") => Ok((
            Box::new(rehost_host::LocalHost::new("this machine", None)),
            false,
        )),
        Some(n) => {
            let t = TreeOptions {
                exclude: Vec::new(),
                threads: None,
                ssh_config: args.hosts.ssh_config.clone(),
                plan: args.hosts.plan.clone(),
                env: args.hosts.env.clone(),
            };
            Ok((crate::tree_view::open_host(n, &t)?, true))
        }
    }
}

pub fn replay_sql(args: &CompatReplaySqlArgs) -> i32 {
    let prepared = (|| -> Result<_, String> {
        let format = match args.format.as_deref() {
            None | Some("auto") => None,
            Some(f) => Some(
                Format::parse(f).ok_or_else(|| format!("--format {f}: give {}", Format::NAMES))?,
            ),
        };
        if args.concurrency == 0 || args.concurrency > 64 {
            return Err(format!(
                "--concurrency {}: give 1 to 64 statements at once",
                args.concurrency
            ));
        }
        if args.max_statements == 0 || args.max_statements > 1_000_000 {
            return Err(format!(
                "--max-statements {}: give 1 to 1000000",
                args.max_statements
            ));
        }
        let side = |flag: &str, s: &str| -> Result<_, String> {
            let (h, url) = rehost_db::split_host(s);
            let conn = rehost_db::ConnInfo::parse(url).map_err(|e| format!("{flag} {e}"))?;
            let (host, show) = host_named(h, args).map_err(|e| format!("{flag}: {e}"))?;
            Ok((host, show, conn))
        };
        Ok((format, side("--old", &args.old)?, side("--new", &args.new)?))
    })();
    let (format, (old_host, old_show, old_conn), (new_host, new_show, new_conn)) = match prepared {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rehost: compat replay-sql: {}", esc(&e));
            return exit::TROUBLE;
        }
    };
    crate::signals::install();
    let cancel = &crate::signals::CANCEL;
    let sides = side(old_host.as_ref(), old_show, old_conn, cancel)
        .and_then(|o| Ok((o, side(new_host.as_ref(), new_show, new_conn, cancel)?)));
    let (old, new) = match sides {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rehost: compat replay-sql: {}", esc(&e));
            return exit::TROUBLE;
        }
    };
    let opts = sql::Options {
        concurrency: args.concurrency,
        again: !args.no_noise,
        allow_writes: args.allow_writes,
        examples: args.examples,
        max_statements: args.max_statements,
        ..Default::default()
    };
    let started = Instant::now();
    let summary = match replay_file(&args.log, format, &*old, &*new, &opts, cancel) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "rehost: compat replay-sql: {}: {}",
                esc(&args.log.display().to_string()),
                esc(&e)
            );
            return exit::TROUBLE;
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let code = if summary.interrupted {
        exit::INTERRUPTED
    } else if summary.trouble() {
        exit::TROUBLE
    } else if summary.differs() {
        exit::FINDINGS
    } else {
        exit::OK
    };
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        let mut v = serde_json::to_value(&summary).unwrap_or_default();
        v["result"] = match code {
            exit::OK => "same",
            exit::FINDINGS => "differ",
            exit::INTERRUPTED => "interrupted",
            _ => "trouble",
        }
        .into();
        v["seconds"] = serde_json::json!((secs * 1000.0).round() / 1000.0);
        writeln!(out, "{v}")
    } else {
        sql::render(&summary, Some(secs), &|s| esc(s))
            .iter()
            .try_for_each(|l| writeln!(out, "{l}"))
    };
    match written {
        Ok(()) => code,
        Err(e) => {
            eprintln!("rehost: could not write the result: {e}");
            exit::TROUBLE
        }
    }
}
