//! Pre-flight: before the first step of a run, and on its own in `rehost check --hosts` (the
//! day before), open every host the remaining steps use and check what those steps need, so
//! that a dead host, a changed host key, an agent that cannot start, a missing rsync, a missing
//! source tree or a full destination is found before the window, not after `stop-old`.
//!
//! And every other resource a step will touch (each kind's `needs`, `steps/*.rs`): each
//! command's program is found on its host (`command -v` of the first word, through the host's
//! shell: shell builtins and words made of variables are not checked, and only the first
//! program of a command is), each systemd unit a service's command names exists
//! (`systemctl cat`), each name a health URL connects to resolves (`getent hosts`), each
//! database answers from its host (its client is there, it connects, the server says its
//! version). A problem names the step that would have failed mid-window and its plan line.
//!
//! Everything goes through the `Host` trait (one `Probe` request per host, commands through
//! `Host::run`), so local and ssh hosts are checked alike.

use crate::exec::Hosts;
use crate::steps::Need;
use rehost_host::ssh::sh_quoted;
use rehost_host::{CommandSpec, Host, OutputStream, Program};
use rehost_plan::{Command, Plan, SourceMap, Step, SyncMethod};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

/// What a pre-flight checked and what it found wrong (one line each, naming the host).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Preflight {
    /// The hosts opened, in name order.
    pub hosts: Vec<String>,
    /// One line per problem; empty means the run may start.
    pub problems: Vec<String>,
    /// What could not be settled and may need a look (a program an earlier step may
    /// install): journaled as warnings, so a report lists them for review.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// What the plan itself says is made later (a data set's `created_by`): not checked now,
    /// by design; shown by `check --hosts`, not a point to review.
    #[serde(default)]
    pub deferred: Vec<String>,
}

/// The first words of every command the pre-flight runs on a host, so that the commands are
/// told apart from the plan's own (in-process tests filter them).
pub const MARK: &str = ": rehost pre-flight;";

/// What one host must offer the remaining steps.
#[derive(Default)]
struct Needs {
    /// A data set whose source tree must exist here: (data set, path, the step still to run
    /// before its first use that creates it: the data set's `created_by`).
    sources: Vec<(String, String, Option<String>)>,
    /// A data set copied here: (data set, path, source host, source path).
    destinations: Vec<(String, String, String, String)>,
    /// Data sets copied with rsync, which must run here.
    rsync: Vec<String>,
    /// Programs that must be found here, each with the steps that run it (`step `x` (plan
    /// line N)`, and which of its commands), and the earlier step that names it, if any (it
    /// may install it: then a missing program is a warning).
    programs: BTreeMap<String, (Vec<String>, Option<String>)>,
    /// systemd units that must exist here, with the steps that name them.
    units: BTreeMap<String, Vec<String>>,
    /// Names that must resolve here, with the steps that connect to them.
    names: BTreeMap<String, Vec<String>>,
    /// Databases reached from here: (database, the `to` side, the step).
    databases: Vec<(String, bool, String)>,
    /// Single files that must exist here (the originals a `verify-files` compares), with the
    /// step.
    files: Vec<(String, String)>,
}

/// Checks the hosts of `steps` (the steps still to run).
/// `text` is the plan's text, for the plan lines problems name; `env` the rehearsal
/// environment (`None`: production), where the databases are looked for.
pub fn preflight(
    plan: &Plan,
    env: Option<&str>,
    text: &str,
    steps: &[Step],
    hosts: &mut Hosts,
    cancel: &AtomicBool,
) -> Preflight {
    let map = SourceMap::new(text);
    let mut needs: BTreeMap<String, Needs> = BTreeMap::new();
    let mut out = Preflight::default();
    for (i, step) in steps.iter().enumerate() {
        if let Some(h) = &step.host {
            needs.entry(h.clone()).or_default();
        }
        let who = format!(
            "step `{}` (plan line {})",
            step.id,
            map.line_col(step.span.start).0
        );
        // What the step's kind needs (steps/*.rs says which).
        for need in crate::steps::needs(plan, step) {
            let (data, sync) = match need {
                Need::ReadsData { data } => (data, None),
                Need::CopiesData { data, method } => (data, Some(method)),
                Need::Runs {
                    host,
                    command,
                    what,
                } => {
                    if let Ok(program) = first_program(&command) {
                        let who = if what == "command" {
                            who.clone()
                        } else {
                            format!("{who} ({what})")
                        };
                        let entry = needs
                            .entry(host)
                            .or_default()
                            .programs
                            .entry(program.clone())
                            .or_insert_with(|| (Vec::new(), named_before(&steps[..i], &program)));
                        entry.0.push(who);
                    }
                    continue;
                }
                Need::Unit { host, unit } => {
                    let n = needs.entry(host).or_default();
                    n.units.entry(unit).or_default().push(who.clone());
                    continue;
                }
                Need::Resolves { host, name } => {
                    let n = needs.entry(host).or_default();
                    n.names.entry(name).or_default().push(who.clone());
                    continue;
                }
                Need::Database { database, to } => {
                    if let Some(db) = plan.database(database) {
                        let host = if to { &db.to } else { &db.from };
                        needs.entry(host.clone()).or_default().databases.push((
                            db.id.clone(),
                            to,
                            who.clone(),
                        ));
                    }
                    continue;
                }
                Need::Files { host, paths } => {
                    let n = needs.entry(host.to_owned()).or_default();
                    n.files
                        .extend(paths.iter().map(|p| (p.clone(), who.clone())));
                    continue;
                }
                Need::Opens { host } => {
                    needs.entry(host.to_owned()).or_default();
                    continue;
                }
                Need::Fails { why } => {
                    out.problems.push(format!("{who} would fail: {why}"));
                    continue;
                }
                Need::Endpoint { key, value } => {
                    if let Some(env) = env
                        && !plan
                            .environments
                            .iter()
                            .any(|e| e.name == env && e.endpoints.iter().any(|(p, _)| p == value))
                    {
                        out.problems.push(format!(
                            "{who} acts on `{key}` {value}, production's as the plan writes it, and \
                             the environment `{env}` does not say what the rehearsal uses instead: \
                             add endpoints = {{ \"{value}\" = \"TEST-ADDRESS\" }} to \
                             [environments.{env}] (the same value, if it is the rehearsal's own)"
                        ));
                    }
                    continue;
                }
            };
            let Some(ds) = plan.data.iter().find(|d| d.id == *data) else {
                continue;
            };
            let src = needs.entry(ds.from.host.clone()).or_default();
            if !src.sources.iter().any(|(id, _, _)| *id == ds.id) {
                // Made by a step still to come before this use: not there yet, by design.
                let maker = ds
                    .created_by
                    .as_ref()
                    .filter(|by| steps[..i].iter().any(|s| s.id == **by))
                    .cloned();
                src.sources
                    .push((ds.id.clone(), ds.from.path.clone(), maker));
            }
            if sync == Some(SyncMethod::Rsync) && !src.rsync.contains(&ds.id) {
                src.rsync.push(ds.id.clone());
            }
            let dst = needs.entry(ds.to.host.clone()).or_default();
            if sync.is_some() && !dst.destinations.iter().any(|d| d.0 == ds.id) {
                dst.destinations.push((
                    ds.id.clone(),
                    ds.to.path.clone(),
                    ds.from.host.clone(),
                    ds.from.path.clone(),
                ));
            }
            if sync == Some(SyncMethod::Rsync) && !dst.rsync.contains(&ds.id) {
                dst.rsync.push(ds.id.clone());
            }
        }
    }

    // The environment's loads that will run: a command's program on its host, the write
    // load's database answering on its old side.
    for load in plan
        .environments
        .iter()
        .filter(|e| Some(e.name.as_str()) == env)
        .flat_map(|e| &e.loads)
    {
        let Some(k) = steps.iter().position(|s| {
            let (a, b, i) = (
                plan.step_index(&load.start_before),
                plan.step_index(&load.stop_after),
                plan.step_index(&s.id),
            );
            matches!((a, b, i), (Some(a), Some(b), Some(i)) if (a..=b).contains(&i))
        }) else {
            continue;
        };
        let who = format!(
            "load `{}` (plan line {})",
            load.id,
            map.line_col(load.span.start).0
        );
        match &load.what {
            rehost_plan::LoadKind::Command {
                command,
                host: Some(host),
            } => {
                if let Ok(program) = first_program(&Command::Shell(command.clone())) {
                    needs
                        .entry(host.clone())
                        .or_default()
                        .programs
                        .entry(program.clone())
                        .or_insert_with(|| (Vec::new(), named_before(&steps[..k], &program)))
                        .0
                        .push(who);
                }
            }
            rehost_plan::LoadKind::Command { host: None, .. } => {}
            // The service it writes to may be started by a step of the run; a load that
            // cannot connect counts its errors and keeps trying.
            rehost_plan::LoadKind::HttpWrites { .. } => {}
            rehost_plan::LoadKind::Writes { database, .. } => {
                if let Some(db) = plan.database(database) {
                    needs.entry(db.from.clone()).or_default().databases.push((
                        db.id.clone(),
                        false,
                        who,
                    ));
                }
            }
        }
    }

    // Source sizes, filled as the source hosts are probed (sources sort before nothing in
    // particular, so probe every host's sources first, then destinations).
    let mut source_bytes: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut opened = Vec::new();
    for (name, n) in &needs {
        out.hosts.push(name.clone());
        let host = match hosts.get(name) {
            Ok(h) => h,
            Err(e) => {
                out.problems.push(format!("host `{name}`: {e}"));
                continue;
            }
        };
        let paths: Vec<&[u8]> = n.sources.iter().map(|(_, p, _)| p.as_bytes()).collect();
        match host.probe(&paths, true, cancel) {
            Err(e) => {
                out.problems.push(format!("host `{name}`: {e}"));
                continue;
            }
            Ok(probes) => {
                for ((id, path, maker), p) in n.sources.iter().zip(probes) {
                    let shown = String::from_utf8_lossy(&p.path.0).into_owned();
                    if let (None, Some(step)) = (&p.kind, maker) {
                        out.deferred.push(format!(
                            "host `{name}`: data set `{id}`: {shown} does not exist yet; step `{step}` creates it (created_by)"
                        ));
                    } else if let Some(e) = &p.error {
                        out.problems
                            .push(format!("host `{name}`: data set `{id}`: {shown}: {e}"));
                    } else if p.kind != Some(rehost_host::EntryKind::Dir) {
                        out.problems.push(format!(
                            "host `{name}`: data set `{id}`: {shown} {}; check the data set's `from` ({name}:{path})",
                            if p.kind.is_none() { "does not exist" } else { "is not a directory" }
                        ));
                    } else {
                        source_bytes.insert((name.clone(), path.clone()), p.bytes.unwrap_or(0));
                    }
                }
            }
        }
        opened.push(name.clone());
    }
    for name in &opened {
        let n = &needs[name];
        let Ok(host) = hosts.get(name) else { continue };
        let paths: Vec<&[u8]> = n.destinations.iter().map(|d| d.1.as_bytes()).collect();
        match host.probe(&paths, true, cancel) {
            Err(e) => out.problems.push(format!("host `{name}`: {e}")),
            Ok(probes) => {
                for ((id, _path, sh, sp), p) in n.destinations.iter().zip(probes) {
                    let shown = String::from_utf8_lossy(&p.path.0).into_owned();
                    if let Some(e) = &p.error {
                        out.problems
                            .push(format!("host `{name}`: data set `{id}`: {shown}: {e}"));
                        continue;
                    }
                    if p.kind.is_some() && p.kind != Some(rehost_host::EntryKind::Dir) {
                        out.problems.push(format!(
                            "host `{name}`: data set `{id}`: {shown} is not a directory"
                        ));
                        continue;
                    }
                    let Some(&want) = source_bytes.get(&(sh.clone(), sp.clone())) else {
                        continue;
                    };
                    let need = want.saturating_sub(p.bytes.unwrap_or(0));
                    if let Some(free) = p.fs_free
                        && free < need
                    {
                        out.problems.push(format!(
                            "host `{name}`: data set `{id}`: {shown} needs {} more and its file system has {} free; free space there or choose another destination",
                            rehost_tree::human_bytes(need),
                            rehost_tree::human_bytes(free)
                        ));
                    }
                }
            }
        }
        files(name, host, n, cancel, &mut out);
        programs(name, host, n, cancel, &mut out);
        units(name, host, n, cancel, &mut out);
        names(name, host, n, cancel, &mut out);
        databases(plan, env, name, host, n, cancel, &mut out);
        if !n.rsync.is_empty() {
            let spec = rehost_host::CommandSpec::new(rehost_host::Program::Argv(vec![
                "rsync".into(),
                "--version".into(),
            ]));
            let ok = host
                .run(&spec, cancel, &mut |_, _| {})
                .is_ok_and(|o| o.exit.code == Some(0));
            if !ok {
                out.problems.push(format!(
                    "host `{name}`: rsync does not run there, and data set(s) {} sync with method = \"rsync\"; install rsync on it, or use method = \"builtin\"",
                    n.rsync.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    out
}

/// Runs a pre-flight command (marked [`MARK`]) on the host: its exit code, standard output
/// and standard error (first lines of each), or why it could not run.
/// What a pre-flight command answered: its exit code and its first lines.
type Answer = (Option<i32>, Vec<String>, Vec<String>);

fn check_run(host: &dyn Host, script: &str, cancel: &AtomicBool) -> Result<Answer, String> {
    let mut spec = CommandSpec::new(Program::Shell(format!("{MARK} {script}")));
    spec.timeout = Some(std::time::Duration::from_secs(30));
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let outcome = host
        .run(&spec, cancel, &mut |stream, line| {
            let lines = match stream {
                OutputStream::Stdout => &mut stdout,
                OutputStream::Stderr => &mut stderr,
            };
            if lines.len() < 100 {
                lines.push(String::from_utf8_lossy(line).trim().to_owned());
            }
        })
        .map_err(|e| e.to_string())?;
    if outcome.timed_out {
        return Err("it did not answer within 30 s".into());
    }
    Ok((outcome.exit.code, stdout, stderr))
}

fn who_list(who: &[String]) -> String {
    let mut who = who.to_vec();
    who.dedup();
    who.join(", ")
}

/// Every single file a step compares exists on the host that holds the originals.
fn files(name: &str, host: &dyn Host, n: &Needs, cancel: &AtomicBool, out: &mut Preflight) {
    if n.files.is_empty() {
        return;
    }
    let paths: Vec<&[u8]> = n.files.iter().map(|(p, _)| p.as_bytes()).collect();
    match host.probe(&paths, false, cancel) {
        Err(e) => out.problems.push(format!(
            "host `{name}`: could not look for the files the steps compare: {e}"
        )),
        Ok(probes) => {
            for ((path, who), p) in n.files.iter().zip(probes) {
                if let Some(e) = &p.error {
                    out.problems
                        .push(format!("host `{name}`: {who} compares {path}: {e}"));
                } else if p.kind.is_none() {
                    out.problems.push(format!(
                        "host `{name}`: {who} compares {path}, which does not exist there; correct the step's `paths` or its `from`"
                    ));
                }
            }
        }
    }
}

/// Every program the host's steps run is found there (`command -v`, one run for all).
fn programs(name: &str, host: &dyn Host, n: &Needs, cancel: &AtomicBool, out: &mut Preflight) {
    if n.programs.is_empty() {
        return;
    }
    let list: Vec<String> = n.programs.keys().map(|p| sh_quoted(p)).collect();
    let script = format!(
        "for p in {}; do command -v -- \"$p\" >/dev/null 2>&1 || printf '%s\\n' \"$p\"; done",
        list.join(" ")
    );
    match check_run(host, &script, cancel) {
        Err(e) => out.problems.push(format!(
            "host `{name}`: could not look for the programs the steps run: {e}"
        )),
        Ok((_, missing, _)) => {
            for (program, (who, installer)) in &n.programs {
                if !missing.iter().any(|m| m == program) {
                    continue;
                }
                if let Some(step) = installer {
                    out.warnings.push(format!(
                        "host `{name}`: program `{program}` is not found there yet; step `{step}` before {} names it (installs it?)",
                        who_list(who)
                    ));
                } else {
                    out.problems.push(format!(
                        "host `{name}`: program `{program}` is not found there (command -v, in the host's shell and PATH): {} would fail; install it, or give its full path",
                        who_list(who)
                    ));
                }
            }
        }
    }
}

/// The first of `earlier` steps whose command or text names `program` as a word (`apt-get
/// install foo`, `cp foo /usr/local/bin/`): it may put the program there.
fn named_before(earlier: &[Step], program: &str) -> Option<String> {
    let name = program.rsplit('/').next().unwrap_or(program);
    earlier
        .iter()
        .find(|s| {
            let text = match &s.kind {
                rehost_plan::StepKind::Run { command, .. } => command.to_string(),
                rehost_plan::StepKind::Manual { text } => text.clone(),
                _ => return false,
            };
            text.split(|c: char| !(c.is_ascii_alphanumeric() || "._+-".contains(c)))
                .any(|w| w == name)
        })
        .map(|s| s.id.clone())
}

/// Every systemd unit the host's service steps name exists there (`systemctl cat`).
fn units(name: &str, host: &dyn Host, n: &Needs, cancel: &AtomicBool, out: &mut Preflight) {
    for (unit, who) in &n.units {
        let script = format!("systemctl cat -- {} >/dev/null", sh_quoted(unit));
        let (code, _, stderr) = match check_run(host, &script, cancel) {
            Ok(r) => r,
            Err(e) => {
                out.problems.push(format!(
                    "host `{name}`: could not check systemd unit `{unit}`: {e}"
                ));
                continue;
            }
        };
        let said = stderr.first().cloned().unwrap_or_default();
        match code {
            Some(0) => {}
            Some(127) => {
                out.problems.push(format!(
                    "host `{name}` has no systemctl (no systemd): {} would fail, its command runs `systemctl` for unit `{unit}`; use the host's own service commands in the [[services]] entry",
                    who_list(who)
                ));
                return;
            }
            _ if said.contains("booted with systemd") || said.contains("Failed to connect to bus") => {
                out.problems.push(format!(
                    "host `{name}` does not run systemd (systemctl: {said}): {} would fail, its command runs `systemctl` for unit `{unit}`",
                    who_list(who)
                ));
                return;
            }
            _ => out.problems.push(format!(
                "host `{name}`: systemd unit `{unit}` does not exist there (systemctl cat: {}): {} would fail; check the unit's name in the [[services]] entry",
                if said.is_empty() { format!("exit {code:?}") } else { said },
                who_list(who)
            )),
        }
    }
}

/// Every name the host's health checks connect to resolves there (`getent hosts`).
fn names(name: &str, host: &dyn Host, n: &Needs, cancel: &AtomicBool, out: &mut Preflight) {
    for (dns, who) in &n.names {
        let script = format!("getent hosts -- {} >/dev/null", sh_quoted(dns));
        match check_run(host, &script, cancel) {
            Err(e) => out
                .problems
                .push(format!("host `{name}`: could not resolve `{dns}`: {e}")),
            Ok((Some(0), _, _)) => {}
            Ok((Some(127), _, _)) => out.warnings.push(format!(
                "host `{name}` has no getent: whether `{dns}` resolves there ({}) is not checked",
                who_list(who)
            )),
            Ok((code, _, _)) => out.problems.push(format!(
                "host `{name}`: name `{dns}` does not resolve there (getent hosts: {}): {} would fail; check the health URL, or the host's resolver",
                match code {
                    Some(2) => "not found".to_owned(),
                    c => format!("exit {c:?}"),
                },
                who_list(who)
            )),
        }
    }
}

/// Every database reached from the host answers: the client runs, connects, and the server
/// says its version. A copy's database that does not exist yet is a warning: an earlier step
/// may create it.
fn databases(
    plan: &Plan,
    env: Option<&str>,
    name: &str,
    host: &dyn Host,
    n: &Needs,
    cancel: &AtomicBool,
    out: &mut Preflight,
) {
    let mut seen = Vec::new();
    for (id, to, who) in &n.databases {
        if seen.contains(&(id, to)) {
            continue;
        }
        seen.push((id, to));
        // A rehearsal's databases are where its environment places them.
        let Some(db) = plan.database_in(id, env) else {
            continue;
        };
        let Some(engine) = db.kind else {
            // Said once, from the `from` side.
            if *to {
                continue;
            }
            out.problems.push(format!(
                "{who} would fail: database `{id}` is a {} database, and verify-db compares PostgreSQL, MariaDB/MySQL and SQLite; verify it with a `run` step",
                db.engine
            ));
            continue;
        };
        let conn = match rehost_db::ConnInfo::of(&db, *to) {
            Ok(c) => c,
            Err(e) => {
                out.problems
                    .push(format!("{who} would fail: database `{id}`: {e}"));
                continue;
            }
        };
        let version = match engine {
            rehost_db::Engine::Postgres => "SELECT current_setting('server_version')",
            rehost_db::Engine::Mysql => "SELECT VERSION()",
            rehost_db::Engine::Sqlite => "SELECT sqlite_version()",
        };
        let session = rehost_db::connect(host, true, conn, cancel);
        match session.run(&[version.to_owned()]) {
            Ok(_) => {}
            Err(e) => {
                let e = e.to_string();
                let missing = e.contains("does not exist")
                    || e.contains("Unknown database")
                    || e.contains("unable to open database");
                if *to && missing {
                    out.warnings.push(format!(
                        "host `{name}`: database `{id}` does not exist there yet ({e}); a step before {who} must create it"
                    ));
                } else {
                    out.problems.push(format!(
                        "host `{name}`: database `{id}` ({} side) does not answer: {e}: {who} would fail",
                        if *to { "to" } else { "from" }
                    ));
                }
            }
        }
    }
}

/// Shell words that are not programs on PATH (builtins and keywords): not looked for.
const SHELL_WORDS: &[&str] = &[
    ".", ":", "[", "[[", "!", "{", "}", "(", "alias", "bg", "break", "case", "cd", "command",
    "continue", "do", "done", "echo", "elif", "else", "esac", "eval", "exec", "exit", "export",
    "false", "fg", "fi", "for", "getopts", "hash", "if", "jobs", "kill", "local", "printf", "pwd",
    "read", "readonly", "return", "set", "shift", "source", "test", "then", "times", "trap",
    "true", "type", "ulimit", "umask", "unalias", "unset", "until", "wait", "while",
];

/// The program a command runs first, as the pre-flight looks for it: an argument vector's
/// first word; a shell string's first word after `NAME=value` assignments and `exec`. Not
/// known (`Err`, why): a shell builtin or keyword, a word made of variables or substitutions.
pub(crate) fn first_program(command: &Command) -> Result<String, &'static str> {
    let word = match command {
        Command::Argv(a) => a.first().cloned().ok_or("empty")?,
        Command::Shell(s) => {
            let mut words = s.split_ascii_whitespace().map(|w| {
                if w.len() >= 2
                    && ((w.starts_with('\'') && w.ends_with('\''))
                        || (w.starts_with('"') && w.ends_with('"')))
                {
                    &w[1..w.len() - 1]
                } else {
                    w
                }
            });
            loop {
                let w = words.next().ok_or("empty")?;
                let assignment = w.split_once('=').is_some_and(|(n, _)| {
                    !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                });
                if !(assignment || w == "exec") {
                    break w.to_owned();
                }
            }
        }
    };
    if SHELL_WORDS.contains(&word.as_str()) || word.starts_with('(') || word.starts_with('{') {
        return Err("a shell builtin or keyword");
    }
    if word.is_empty()
        || word.starts_with('-')
        || word.contains(|c: char| "$`*?[]<>|;&(){}'\"\\".contains(c))
    {
        return Err("not known before it runs");
    }
    Ok(word)
}

/// The systemd units a service command names: `systemctl [OPTIONS] VERB UNIT…` for the verbs
/// that act on units, in each simple command of the string.
pub(crate) fn systemd_units(command: &str) -> Vec<String> {
    const VERBS: &[&str] = &[
        "start",
        "stop",
        "restart",
        "try-restart",
        "reload",
        "reload-or-restart",
        "try-reload-or-restart",
        "is-active",
        "is-failed",
        "status",
        "kill",
        "enable",
        "disable",
    ];
    let mut units = Vec::new();
    for simple in command.split(['\n', ';', '&', '|']) {
        let words: Vec<&str> = simple
            .split_ascii_whitespace()
            .map(|w| w.trim_matches(|c| c == '"' || c == '\''))
            .collect();
        let Some(at) = words
            .iter()
            .position(|w| w.rsplit('/').next() == Some("systemctl"))
        else {
            continue;
        };
        let mut rest = words[at + 1..].iter().filter(|w| !w.starts_with('-'));
        if rest.next().is_some_and(|verb| VERBS.contains(verb)) {
            for unit in rest {
                if !unit.is_empty() && !unit.contains(['$', '`', '*', '?', '[']) {
                    units.push((*unit).to_owned());
                }
            }
        }
    }
    units.sort();
    units.dedup();
    units
}

/// The host names of the URLs in a command (`curl -fsS https://www.example.org/health`):
/// not addresses, not `localhost`.
pub(crate) fn url_names(command: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = command;
    while let Some(k) = rest.find("://") {
        let after = &rest[k + 3..];
        rest = after;
        let end = after
            .find(|c: char| "/?#\"' \t".contains(c))
            .unwrap_or(after.len());
        let authority = &after[..end];
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if hostport.starts_with('[') {
            continue; // an IPv6 address
        }
        let host = hostport.split(':').next().unwrap_or_default();
        let is_address = host.parse::<std::net::IpAddr>().is_ok();
        if host.is_empty()
            || is_address
            || host.eq_ignore_ascii_case("localhost")
            || host.contains(['$', '`', '*', '{'])
        {
            continue;
        }
        names.push(host.to_ascii_lowercase());
    }
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests;
