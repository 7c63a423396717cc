//! `rehost verify config OLD NEW`: the effective configuration of the new system against the
//! old one's, normalised by format (rehost-config), read where each side lives
//! (`rehost_engine::config`: a command's output, files, a server's settings). docs/config.md.

use crate::cli::{TreeOptions, VerifyConfigArgs};
use crate::exit;
use crate::term::escape;
use rehost_config::{Format, Options, Rewrite};
use rehost_engine::config::Source;
use rehost_host::Host;
use serde_json::json;
use std::io::Write;

const DB_SCHEMES: &[&str] = &[
    "postgres://",
    "postgresql://",
    "mysql://",
    "mariadb://",
    "sqlite:",
];

/// A side: its host, whether messages name it, and what to read there.
struct Side {
    host: Box<dyn Host>,
    show_host: bool,
    source: Source,
}

impl Side {
    fn describe(&self) -> String {
        match &self.source {
            Source::Database(c) if !self.show_host => c.to_string(),
            Source::Files(p) if !self.show_host => p.clone(),
            s => s.describe(self.host.name()),
        }
    }
}

fn here() -> Box<dyn Host> {
    Box::new(rehost_host::LocalHost::new("this machine", None))
}

fn tree_options(args: &VerifyConfigArgs) -> TreeOptions {
    TreeOptions {
        exclude: Vec::new(),
        threads: None,
        ssh_config: args.hosts.ssh_config.clone(),
        plan: args.hosts.plan.clone(),
        env: args.hosts.env.clone(),
    }
}

fn host_named(name: &str, t: &TreeOptions) -> Result<(Box<dyn Host>, bool), String> {
    if name.is_empty() {
        return Ok((here(), false));
    }
    Ok((crate::tree_view::open_host(name, t)?, true))
}

fn side(s: &str, command: Option<&str>, args: &VerifyConfigArgs) -> Result<Side, String> {
    let t = tree_options(args);
    let (h, url) = rehost_db::split_host(s);
    if DB_SCHEMES.iter().any(|p| url.starts_with(p)) {
        let conn = rehost_db::ConnInfo::parse(url).map_err(|e| e.to_string())?;
        let (host, show_host) = host_named(h.unwrap_or(""), &t)?;
        return Ok(Side {
            host,
            show_host,
            source: Source::Database(conn),
        });
    }
    if let Some(cmd) = command {
        let Some(name) = s.strip_suffix(':').filter(|n| !n.contains([':', '/'])) else {
            return Err(format!(
                "`{}` is not a side for a command: write HOST: (the command's output on HOST) or : (this machine)",
                escape(s)
            ));
        };
        let (host, show_host) = host_named(name, &t)?;
        return Ok(Side {
            host,
            show_host,
            source: Source::Command(cmd.to_owned()),
        });
    }
    if s.ends_with(':') && !s.contains('/') {
        return Err(format!(
            "`{}` names a host but nothing on it: give HOST:PATH, or --command CMD for the output of a command there",
            escape(s)
        ));
    }
    match crate::tree_view::place(s, &t)? {
        crate::tree_view::Place::Here(p) => {
            let p = std::path::absolute(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(Side {
                host: here(),
                show_host: false,
                source: Source::Files(p.to_string_lossy().into_owned()),
            })
        }
        crate::tree_view::Place::Remote { host, path } => Ok(Side {
            host,
            show_host: true,
            source: Source::Files(path),
        }),
    }
}

pub fn run(args: &VerifyConfigArgs) -> i32 {
    match verify(args) {
        Ok(code) => code,
        Err(_) if crate::signals::cancelled() => {
            eprintln!("rehost: interrupted; nothing was verified");
            exit::INTERRUPTED
        }
        Err(e) => {
            crate::term::error(&format!("verify config: {e}"));
            exit::TROUBLE
        }
    }
}

fn verify(args: &VerifyConfigArgs) -> Result<i32, String> {
    crate::signals::install();
    let cancel = &crate::signals::CANCEL;
    let format = match &args.format {
        None => None,
        Some(f) => Some(Format::parse_name(f).ok_or_else(|| {
            format!(
                "--format {}: not a format rehost reads; one of {}",
                escape(f),
                Format::ALL
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?),
    };
    let rewrite = args
        .rewrite
        .iter()
        .map(|r| Rewrite::parse(r).map_err(|e| format!("--rewrite: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let old_cmd = args.old_command.as_deref().or(args.command.as_deref());
    let new_cmd = args.new_command.as_deref().or(args.command.as_deref());
    let old = side(&args.old, old_cmd, args).map_err(|e| format!("OLD: {e}"))?;
    let new = side(&args.new, new_cmd, args).map_err(|e| format!("NEW: {e}"))?;
    let db = |s: &Side| matches!(s.source, Source::Database(_));
    if db(&old) != db(&new) {
        return Err(
            "one side is a database server and the other is not: compare a server's settings with another server's settings".into(),
        );
    }
    let read = |s: &Side| {
        rehost_engine::config::read(s.host.as_ref(), s.show_host, &s.source, format, cancel)
            .map_err(|e| format!("cannot read {}: {e}", escape(&s.describe())))
    };
    let a = read(&old)?;
    let b = read(&new)?;
    let opts = Options {
        allow: args.allow.clone(),
        expected: if db(&old) {
            rehost_config::POSTGRES_EXPECTED
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else {
            Vec::new()
        },
        rewrite,
    };
    let c = rehost_config::compare(&a.entries, &b.entries, &opts);
    let not_compared = rehost_engine::config::not_compared(&[&old.source, &new.source]);
    let code = if c.is_equal() {
        exit::OK
    } else {
        exit::FINDINGS
    };
    let names = |f: &[Format]| f.iter().map(|f| f.name()).collect::<Vec<_>>();
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        let doc = json!({
            "old": old.describe(),
            "new": new.describe(),
            "formats": { "old": names(&a.formats), "new": names(&b.formats) },
            "comparison": c,
            "not_compared": not_compared,
            "exit_code": code,
        });
        writeln!(out, "{doc}")
    } else {
        write!(
            out,
            "{}",
            rehost_config::render_human(&c, &old.describe(), &new.describe(), &not_compared)
        )
    };
    written.map_err(|e| format!("standard output: {e}"))?;
    Ok(code)
}
