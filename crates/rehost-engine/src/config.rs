//! A configuration side read through the [`Host`] trait, for `rehost verify config` and the
//! `verify-config` step kind: a command's output on a host, a file or a tree of files on it,
//! or a PostgreSQL server's settings (`pg_settings`, through `psql` where the server can be
//! reached). Bounded: a side holds at most [`max_bytes`]. The comparison itself is
//! rehost-config's (pure).

use rehost_config::{Entry, Format};
use rehost_host::{CommandSpec, Host, OutputStream, Program};
use std::sync::atomic::{AtomicBool, Ordering};

/// How long one command, or the read of one file, may take (seconds).
pub const READ_TIMEOUT_S: u64 = 300;

/// Where a side's configuration is read from, on its host.
#[derive(Clone, Debug)]
pub enum Source {
    /// A server's settings.
    Database(rehost_db::ConnInfo),
    /// A command's standard output (run as `sh -c`).
    Command(String),
    /// A file, or every regular file of a tree (relative paths as keys).
    Files(String),
}

impl Source {
    /// What the side is, for messages and the journal (a database without its password).
    pub fn describe(&self, host: &str) -> String {
        match self {
            Source::Database(c) => format!("{host}:{c}"),
            Source::Command(c) => format!("`{}` on {host}", rehost_plan::redact(c)),
            Source::Files(p) => format!("{host}:{p}"),
        }
    }
}

/// A side read and parsed.
#[derive(Clone, Debug)]
pub struct Side {
    pub entries: Vec<Entry>,
    /// The formats the side was read as (one per file of a tree, deduplicated).
    pub formats: Vec<Format>,
}

/// The most a side may hold: `REHOST_MAX_CONFIG_BYTES`, else [`rehost_config::MAX_SIDE_BYTES`].
pub fn max_bytes() -> u64 {
    std::env::var("REHOST_MAX_CONFIG_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(rehost_config::MAX_SIDE_BYTES)
}

fn too_big(what: &str, max: u64) -> String {
    format!(
        "{what} is larger than {max} bytes, rehost's bound for a configuration; refused (a misbehaving host, or raise it with REHOST_MAX_CONFIG_BYTES)"
    )
}

/// Runs `argv` (or a shell line) on `host`, its standard output bounded by `budget` (what is
/// left of the side's bound). Returns stdout, the exit code and the start of stderr.
fn run_bounded(
    host: &dyn Host,
    program: Program,
    what: &str,
    budget: &mut u64,
    max: u64,
    cancel: &AtomicBool,
) -> Result<(String, Option<i32>, String), String> {
    let mut out = Vec::new();
    let mut err = String::new();
    let mut over = false;
    // A file read or a dump is quick; a FIFO swapped in for a file, or a command that hangs,
    // is ended rather than waited for.
    let mut spec = CommandSpec::new(program);
    spec.timeout = Some(std::time::Duration::from_secs(READ_TIMEOUT_S));
    let outcome = rehost_host::with_own_stop(cancel, |stop| {
        host.run(&spec, stop, &mut |stream, line| match stream {
            OutputStream::Stdout => {
                let n = line.len() as u64 + 1;
                if n > *budget {
                    over = true;
                    stop.store(true, Ordering::Relaxed);
                    return;
                }
                *budget -= n;
                out.extend_from_slice(line);
                out.push(b'\n');
            }
            _ => {
                if err.len() < 2000 {
                    err.push_str(&String::from_utf8_lossy(line));
                    err.push(' ');
                }
            }
        })
    });
    if over {
        return Err(too_big(what, max));
    }
    if cancel.load(Ordering::Relaxed) {
        return Err("interrupted".into());
    }
    let outcome = outcome.map_err(|e| format!("{what}: {e}"))?;
    if outcome.timed_out {
        return Err(format!(
            "{what}: did not finish within {READ_TIMEOUT_S} s and was ended"
        ));
    }
    Ok((
        String::from_utf8_lossy(&out).into_owned(),
        outcome.exit.code,
        err.trim().to_owned(),
    ))
}

/// Reads `source` on `host`; `format` overrides detection (not for a database).
pub fn read(
    host: &dyn Host,
    show_host: bool,
    source: &Source,
    format: Option<Format>,
    cancel: &AtomicBool,
) -> Result<Side, String> {
    let max = max_bytes();
    let mut budget = max;
    let name = host.name().to_owned();
    match source {
        Source::Database(conn) => {
            if conn.engine() != rehost_plan::Engine::Postgres {
                return Err(format!(
                    "{}: rehost reads the settings of PostgreSQL servers only; compare a MariaDB or SQLite configuration as files or by a command's output",
                    source.describe(&name)
                ));
            }
            let sql = rehost_db::connect(host, show_host, conn.clone(), cancel);
            let lines = sql
                .run(&[rehost_config::POSTGRES_SETTINGS_SQL.to_owned()])
                .map_err(|e| e.to_string())?;
            let size: u64 = lines.iter().map(|l| l.len() as u64 + 1).sum();
            if size > max {
                return Err(too_big(&format!("the settings of {}", sql.describe()), max));
            }
            let entries =
                rehost_config::parse(Some(Format::Postgres), "pg_settings", &lines.join("\n"))
                    .map_err(|e| format!("{}: {e}", sql.describe()))?
                    .1;
            Ok(Side {
                entries,
                formats: vec![Format::Postgres],
            })
        }
        Source::Command(cmd) => {
            let what = format!("the output of {}", source.describe(&name));
            let (text, code, err) = run_bounded(
                host,
                Program::Shell(cmd.clone()),
                &what,
                &mut budget,
                max,
                cancel,
            )?;
            if code != Some(0) {
                return Err(format!(
                    "{} failed (exit {}): {}; run it there by hand to see why",
                    source.describe(&name),
                    code.map_or("by a signal".into(), |c| c.to_string()),
                    rehost_plan::escape_control(&err)
                ));
            }
            let label = rehost_plan::redact(cmd);
            let (f, entries) = rehost_config::parse(format, &label, &text)
                .map_err(|e| format!("{}: {e}", source.describe(&name)))?;
            Ok(Side {
                entries,
                formats: vec![f],
            })
        }
        Source::Files(path) => {
            let resolved = host.resolve(path).to_string_lossy().into_owned();
            let (_, is_dir, _) = run_bounded(
                host,
                Program::Argv(vec!["test".into(), "-d".into(), resolved.clone()]),
                &format!("{name}:{path}"),
                &mut 0,
                max,
                cancel,
            )?;
            let cat = |file: &str, budget: &mut u64| -> Result<String, String> {
                let what = format!("{name}:{file}");
                let (text, code, err) = run_bounded(
                    host,
                    Program::Argv(vec!["cat".into(), "--".into(), file.to_owned()]),
                    &what,
                    budget,
                    max,
                    cancel,
                )?;
                if code != Some(0) {
                    return Err(format!(
                        "cannot read {what}: {}; check that the path exists and is readable there",
                        rehost_plan::escape_control(&err)
                    ));
                }
                Ok(text)
            };
            if is_dir != Some(0) {
                let text = cat(&resolved, &mut budget)?;
                let file = path.rsplit('/').next().unwrap_or(path);
                let (f, entries) = rehost_config::parse(format, file, &text)
                    .map_err(|e| format!("{name}:{path}: {e}"))?;
                return Ok(Side {
                    entries,
                    formats: vec![f],
                });
            }
            let listing = host
                .list_tree(path.as_bytes(), cancel)
                .map_err(|e| format!("cannot list {name}:{path}: {e}"))?;
            let mut files = Vec::new();
            for e in listing {
                let rel = e.path.to_string_lossy();
                if let Some(err) = e.error {
                    return Err(format!(
                        "cannot read {name}:{path}/{rel}: {}",
                        rehost_plan::escape_control(&err)
                    ));
                }
                if e.kind != rehost_host::EntryKind::File {
                    continue;
                }
                if e.size > budget {
                    return Err(too_big(&format!("{name}:{path}"), max));
                }
                let text = cat(
                    &format!("{}/{rel}", resolved.trim_end_matches('/')),
                    &mut budget,
                )?;
                files.push((rel, text));
            }
            let entries = rehost_config::parse_tree(format, &files)
                .map_err(|e| format!("{name}:{path}: {e}"))?;
            let mut formats: Vec<Format> = files
                .iter()
                .map(|(rel, text)| format.unwrap_or_else(|| rehost_config::detect(rel, text)))
                .collect();
            formats.sort_by_key(|f| f.name());
            formats.dedup();
            Ok(Side { entries, formats })
        }
    }
}

/// What a comparison of these sides does not compare, in the words the journal, the report
/// and `verify config` use.
pub fn not_compared(sources: &[&Source]) -> Vec<String> {
    let mut out = vec![
        "text order where the format is unordered, comments, blank lines and surrounding whitespace (normalised away)".to_owned(),
    ];
    if sources.iter().any(|s| matches!(s, Source::Files(_))) {
        out.push("files' owners, modes and other metadata (verify-tree compares those); symbolic links and special files in a tree (not followed)".into());
    }
    if sources.iter().any(|s| matches!(s, Source::Command(_))) {
        out.push(
            "what the command does not print (built-in defaults nginx -T does not show)".into(),
        );
    }
    if sources.iter().any(|s| matches!(s, Source::Database(_))) {
        out.push("settings the server does not report in pg_settings: per-database and per-role settings (ALTER DATABASE/ROLE … SET), pg_hba.conf and pg_ident.conf".into());
    }
    out.push("secret values: compared, never shown".into());
    out
}
