//! Load during a rehearsal (issue 24): each `[[environments.NAME.load]]` of the run's
//! environment is started before its `start_before` step and stopped after its `stop_after`
//! step, and whenever the run ends, fails or is interrupted. A load works in a thread of its
//! own; no step waits for it, and stopping it waits at most [`STOP_WAIT`] (the host ends the
//! command's process group: SIGTERM, then SIGKILL after its grace).
//!
//! - A command load runs under `sh -c` through the host it names (as a `run` step's command
//!   does), or on this machine; its output is kept in `output/load-ID.N.log` (at most
//!   [`MAX_LOAD_OUTPUT`]), named with its digest in `load_stopped`.
//! - The write load (`writes = "postgresql"`) connects to the database's old side as
//!   `verify-db` does (psql on the host that reaches it, the password from its file there,
//!   never shown), creates the table `rehost_load.acks` (its own schema) and inserts rows by
//!   id through a prepared `INSERT`, [`BATCH`] per session, each in its own transaction. An id
//!   is appended to `output/load-ID.N.acks` once psql printed it (its `EXECUTE` committed)
//!   and counts once the file is synced (every [`SYNC_EVERY`]); errors are counted and the
//!   load keeps reconnecting. After the run the acknowledged ids are looked for on the new side
//!   (`load_checked`: acknowledged, found, missing).

use crate::EngineError;
use crate::events::Event;
use crate::exec::Hosts;
use crate::recorder::{OutputFile, Recorder, sanitize};
use rehost_host::{CommandSpec, Host, Program};
use rehost_journal::journal::{MAX_MISSING_NAMED, OutputRef, Record};
use rehost_plan::{Load, LoadKind, Plan};
use rehost_tree::private::PrivateDir;
use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod http;

/// The most of a command load's output kept; the rest is counted.
pub const MAX_LOAD_OUTPUT: u64 = 16 << 20;
/// How long stopping a load waits for it to end (the host's SIGTERM grace and SIGKILL
/// included) before the run goes on without it.
pub const STOP_WAIT: Duration = Duration::from_secs(5);
/// Rows the write load inserts per psql session (a prepared `INSERT`, each execution its own
/// transaction); a session is opened again after each batch and after an error.
const BATCH: u64 = 500;
/// How often the acks file is synced to disk: the ids written since count as acknowledged
/// only once it is.
const SYNC_EVERY: Duration = Duration::from_millis(50);
/// The write load's pause after an error before it connects again.
const RETRY: Duration = Duration::from_millis(200);
/// The write load's table, in a schema of its own.
pub const ACKS_TABLE: &str = "rehost_load.acks";
/// What the check of a write load does not compare.
pub const NOT_COMPARED: &str = "writes that were not acknowledged (a commit under way when the server went down or the load was stopped), and rows changed rather than inserted: the load only inserts";

/// How a load's thread ended.
struct End {
    exit_code: Option<i32>,
    signal: Option<i32>,
    output: Option<OutputRef>,
    /// The write load: the acknowledged ids, the errors counted and the first of them.
    acked: Option<Vec<u64>>,
    errors: u64,
    first_error: Option<String>,
    acks: Option<OutputRef>,
}

struct Running {
    load: Load,
    n: usize,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<End>,
    t0: Instant,
}

/// A write load that ended, to check on the new side.
struct ToCheck {
    id: String,
    /// Which start of the load it is (`load-ID.N.acks`).
    n: usize,
    target: Target,
    acked: Vec<u64>,
}

/// What a write load wrote to.
#[derive(Clone)]
enum Target {
    /// A `[[databases]]` id (`writes = "postgresql"`).
    Database(String),
    /// A `[[services]]` id, the port and the path (`writes = "http"`).
    Http {
        service: String,
        port: Option<u16>,
        path: String,
    },
}

impl Target {
    fn of(what: &LoadKind) -> Option<Target> {
        match what {
            LoadKind::Command { .. } => None,
            LoadKind::Writes { database, .. } => Some(Target::Database(database.clone())),
            LoadKind::HttpWrites {
                service,
                port,
                path,
            } => Some(Target::Http {
                service: service.clone(),
                port: *port,
                path: path.clone(),
            }),
        }
    }
}

/// The loads of one run.
#[derive(Default)]
pub(crate) struct Loads {
    running: Vec<Running>,
    /// Loads started in this invocation (each starts once per invocation), and which start
    /// of each it was.
    started: BTreeSet<String>,
    started_n: BTreeSet<(String, usize)>,
    to_check: Vec<ToCheck>,
}

impl Drop for Loads {
    /// A run that ends without stopping its loads (a panic, an error on the way) still ends
    /// them: every stop flag set, so each host ends its command's process group.
    fn drop(&mut self) {
        for r in &self.running {
            r.stop.store(true, Ordering::SeqCst);
        }
        let deadline = Instant::now() + STOP_WAIT;
        for r in &self.running {
            while !r.thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// What a run's loads work with.
pub(crate) struct LoadCtx<'r, 'a> {
    pub plan: &'a Plan,
    pub env: Option<&'r str>,
    pub hosts: &'r mut Hosts,
    pub outputs: &'r PrivateDir,
    pub rec: &'r mut Recorder<'a>,
    /// `--ssh-config`: where an ssh host's address is looked up (the HTTP write load).
    pub ssh_config: Option<&'r std::path::Path>,
}

impl Loads {
    /// Before step `index` runs: every load of the environment whose steps span it and that
    /// has not run in this invocation is started (a resumed run starts the loads the step it
    /// resumes at falls in).
    pub fn start_before(&mut self, c: &mut LoadCtx, index: usize) -> Result<(), EngineError> {
        let Some(env) = c.env.and_then(|e| c.plan.environment(e)) else {
            return Ok(());
        };
        for load in &env.loads {
            let (Some(a), Some(b)) = (
                c.plan.step_index(&load.start_before),
                c.plan.step_index(&load.stop_after),
            ) else {
                continue;
            };
            if !(a..=b).contains(&index) || self.started.contains(&load.id) {
                continue;
            }
            self.started.insert(load.id.clone());
            self.start(c, load, &c.plan.steps[index].id.clone())?;
        }
        Ok(())
    }

    fn start(&mut self, c: &mut LoadCtx, load: &Load, before: &str) -> Result<(), EngineError> {
        let n = 1 + c
            .rec
            .records()
            .iter()
            .filter(|r| matches!(r, Record::LoadStarted { id, .. } if *id == load.id))
            .count();
        let base = acks_base(&load.id, n);
        self.started_n.insert((load.id.clone(), n));
        let stop = Arc::new(AtomicBool::new(false));
        let kind = match &load.what {
            LoadKind::Command { .. } => "command",
            LoadKind::Writes { .. } | LoadKind::HttpWrites { .. } => "writes",
        };
        let at = c.rec.now();
        c.rec.record(
            Record::LoadStarted {
                at,
                id: load.id.clone(),
                kind: kind.into(),
                before: before.into(),
            },
            Event::Load {
                id: load.id.clone(),
                message: format!("started before step `{before}`"),
            },
        )?;
        let thread = match &load.what {
            LoadKind::Command { command, host } => {
                let out = OutputFile::create(c.outputs, &format!("{base}.log"))?;
                let host = match host {
                    Some(h) => c.hosts.shared(h),
                    None => rehost_host::open(
                        "this machine",
                        &rehost_host::HostSpec::Local { root: None },
                    )
                    .map(Arc::from)
                    .map_err(|e| e.to_string()),
                };
                let command = command.clone();
                let stop = stop.clone();
                spawn(&load.id, move || match host {
                    Ok(host) => run_command(host, command, out, &stop),
                    Err(e) => failed_to_start(e),
                })
            }
            LoadKind::Writes { database, .. } => {
                let acks = OutputFile::create(c.outputs, &format!("{base}.acks"))?;
                let side = c
                    .plan
                    .database_in(database, c.env)
                    .ok_or_else(|| format!("database `{database}` is not in the plan"))
                    .and_then(|db| {
                        let conn =
                            rehost_db::ConnInfo::of(&db, false).map_err(|e| e.to_string())?;
                        Ok((c.hosts.shared(&db.from)?, conn))
                    });
                let stop = stop.clone();
                spawn(&load.id, move || match side {
                    Ok((host, conn)) => write_rows(host, conn, acks, &stop),
                    Err(e) => failed_to_start(e),
                })
            }
            LoadKind::HttpWrites {
                service,
                port,
                path,
            } => {
                let acks = OutputFile::create(c.outputs, &format!("{base}.acks"))?;
                let at = http::side(c, service, *port, path, false);
                let stop = stop.clone();
                spawn(&load.id, move || match at {
                    Ok(at) => http::write(&at, acks, &stop),
                    Err(e) => failed_to_start(e),
                })
            }
        };
        match thread {
            Ok(thread) => self.running.push(Running {
                load: load.clone(),
                n,
                stop,
                thread,
                t0: Instant::now(),
            }),
            Err(e) => c.rec.warning(format!(
                "load `{}` could not start a thread: {e}; the run goes on without it",
                load.id
            ))?,
        }
        Ok(())
    }

    /// After step `step` ended: every running load with `stop_after = step` stopped.
    pub fn stop_after(&mut self, c: &mut LoadCtx, step: &str) -> Result<(), EngineError> {
        let (stop, keep): (Vec<Running>, Vec<Running>) = std::mem::take(&mut self.running)
            .into_iter()
            .partition(|r| r.load.stop_after == step);
        self.running = keep;
        for r in stop {
            self.stop(c, r, Some(step), format!("stopped after step `{step}`"))?;
        }
        Ok(())
    }

    /// Every load still running stopped (the run ended, failed or was interrupted: `why`).
    pub fn stop_all(&mut self, c: &mut LoadCtx, why: &str) -> Result<(), EngineError> {
        for r in std::mem::take(&mut self.running) {
            self.stop(c, r, None, why.to_owned())?;
        }
        Ok(())
    }

    fn stop(
        &mut self,
        c: &mut LoadCtx,
        r: Running,
        after: Option<&str>,
        why: String,
    ) -> Result<(), EngineError> {
        let ended_before = r.thread.is_finished();
        r.stop.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + STOP_WAIT;
        while !r.thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let elapsed_ms = r.t0.elapsed().as_millis() as u64;
        let id = r.load.id.clone();
        let end = if r.thread.is_finished() {
            r.thread.join().ok()
        } else {
            None
        };
        let reason = match (&end, ended_before) {
            (None, _) => format!(
                "{why}; it did not end within {} s of being told to stop and was left behind",
                STOP_WAIT.as_secs()
            ),
            (Some(_), true) => format!("it had ended by itself before it was {why}"),
            (Some(_), false) => why,
        };
        let end = end.unwrap_or(End {
            exit_code: None,
            signal: None,
            output: None,
            acked: None,
            errors: 0,
            first_error: None,
            acks: None,
        });
        let mut message = format!("{reason} after {}", fmt_ms(elapsed_ms));
        if let Some(acked) = &end.acked {
            message.push_str(&format!(
                "; {} writes acknowledged, {} errors",
                acked.len(),
                end.errors
            ));
        }
        if let (Some(target), Some(acked)) = (Target::of(&r.load.what), &end.acked) {
            self.to_check.push(ToCheck {
                id: id.clone(),
                n: r.n,
                target,
                acked: acked.clone(),
            });
        }
        let at = c.rec.now();
        c.rec.record(
            Record::LoadStopped {
                at,
                id: id.clone(),
                after: after.map(str::to_owned),
                reason,
                elapsed_ms,
                exit_code: end.exit_code,
                signal: end.signal,
                output: end.output,
                acknowledged: end.acked.as_ref().map(|a| a.len() as u64),
                errors: end.acked.as_ref().map(|_| end.errors),
                first_error: end.first_error,
                acks: end.acks,
            },
            Event::Load { id, message },
        )
    }

    /// After the run's last step (or its failure): every write load stopped in this run has
    /// its acknowledged ids looked for on the database's new side, one `load_checked` each.
    pub fn check(&mut self, c: &mut LoadCtx) -> Result<(), EngineError> {
        self.earlier(c)?;
        for t in std::mem::take(&mut self.to_check) {
            let at = c.rec.now();
            let record = check_new_side(c, &t, at);
            let message = match &record {
                Record::LoadChecked {
                    error: Some(e),
                    new_side,
                    ..
                } => format!("acknowledged writes NOT checked on {new_side}: {e}"),
                Record::LoadChecked {
                    acknowledged,
                    found,
                    missing_total,
                    new_side,
                    ..
                } => format!(
                    "{acknowledged} acknowledged writes looked for on {new_side}: {found} found, {missing_total} missing"
                ),
                _ => String::new(),
            };
            c.rec.record(record, Event::Load { id: t.id, message })?;
        }
        Ok(())
    }
}

impl Loads {
    /// The write loads of earlier invocations of this run that were never checked: the
    /// invocation was killed (SIGKILL, a crash, the machine) after the load started. Their
    /// acknowledged ids are read back from their acks file (written and fsynced before an id
    /// counts), and they are checked with this invocation's. One still running when its
    /// invocation died gets its `load_stopped` now, saying so.
    fn earlier(&mut self, c: &mut LoadCtx) -> Result<(), EngineError> {
        let Some(env) = c.env.and_then(|e| c.plan.environment(e)) else {
            return Ok(());
        };
        struct Seen {
            id: String,
            n: usize,
            started_at: String,
            /// The last record of the invocation it started in.
            last_at: String,
            stopped: bool,
            checked: bool,
        }
        let mut seen: Vec<Seen> = Vec::new();
        let mut in_invocation: Vec<usize> = Vec::new();
        for r in c.rec.records() {
            match r {
                Record::RunStarted { .. } => in_invocation.clear(),
                Record::LoadStarted { at, id, kind, .. } => {
                    let n = 1 + seen.iter().filter(|s| s.id == *id).count();
                    if kind == "writes" {
                        in_invocation.push(seen.len());
                    }
                    seen.push(Seen {
                        id: id.clone(),
                        n,
                        started_at: at.clone(),
                        last_at: at.clone(),
                        stopped: kind != "writes",
                        checked: kind != "writes",
                    });
                }
                Record::LoadStopped { id, .. } => {
                    if let Some(s) = seen.iter_mut().rev().find(|s| s.id == *id) {
                        s.stopped = true;
                    }
                }
                Record::LoadChecked { id, .. } => {
                    if let Some(s) = seen.iter_mut().rev().find(|s| s.id == *id) {
                        s.checked = true;
                    }
                }
                _ => {}
            }
            for &i in &in_invocation {
                seen[i].last_at = r.at().to_owned();
            }
        }
        for s in seen {
            if s.checked
                || self.started_n.contains(&(s.id.clone(), s.n))
                || self.to_check.iter().any(|t| t.id == s.id && t.n == s.n)
            {
                continue;
            }
            let Some(target) = env
                .loads
                .iter()
                .find(|l| l.id == s.id)
                .and_then(|l| Target::of(&l.what))
            else {
                continue;
            };
            let name = format!("{}.acks", acks_base(&s.id, s.n));
            let bytes = c.outputs.read(&name).ok().flatten().unwrap_or_default();
            let acked = read_acks(&bytes);
            if !s.stopped {
                let elapsed_ms =
                    rehost_journal::downtime::ms_between(&s.started_at, &s.last_at).unwrap_or(0);
                let acks = (!bytes.is_empty()).then(|| OutputRef {
                    file: format!("output/{name}"),
                    bytes: bytes.len() as u64,
                    blake3: blake3::hash(&bytes).to_hex().to_string(),
                    tail: Vec::new(),
                });
                let reason = "the run that started it ended without stopping it (killed); its acknowledged writes were read back from its acks file".to_owned();
                let at = c.rec.now();
                c.rec.record(
                    Record::LoadStopped {
                        at,
                        id: s.id.clone(),
                        after: None,
                        reason: reason.clone(),
                        elapsed_ms,
                        exit_code: None,
                        signal: None,
                        output: None,
                        acknowledged: Some(acked.len() as u64),
                        errors: None,
                        first_error: None,
                        acks,
                    },
                    Event::Load {
                        id: s.id.clone(),
                        message: format!("{reason}: {} writes acknowledged", acked.len()),
                    },
                )?;
            }
            self.to_check.push(ToCheck {
                id: s.id,
                n: s.n,
                target,
                acked,
            });
        }
        Ok(())
    }
}

/// The name of a load's files without their extension: `load-ID.N`.
fn acks_base(id: &str, n: usize) -> String {
    format!("load-{}.{n}", sanitize(id))
}

/// The ids of an acks file: one per complete line (a line cut short by a kill is not one).
fn read_acks(bytes: &[u8]) -> Vec<u64> {
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => &bytes[..=i],
        None => &[][..],
    };
    complete
        .split(|&b| b == b'\n')
        .filter_map(|l| std::str::from_utf8(l).ok()?.trim().parse().ok())
        .collect()
}

fn fmt_ms(ms: u64) -> String {
    rehost_plan::format_duration(Duration::from_millis(ms))
}

fn spawn(id: &str, f: impl FnOnce() -> End + Send + 'static) -> std::io::Result<JoinHandle<End>> {
    std::thread::Builder::new()
        .name(format!("load-{id}"))
        .spawn(f)
}

fn failed_to_start(e: String) -> End {
    End {
        exit_code: None,
        signal: None,
        output: None,
        acked: None,
        errors: 1,
        first_error: Some(e),
        acks: None,
    }
}

/// A command load: `sh -c COMMAND` through `host` until it ends or `stop` is set (the host
/// then ends its process group, SIGTERM then SIGKILL); its output kept up to the cap.
fn run_command(
    host: Arc<dyn Host>,
    command: String,
    mut out: OutputFile,
    stop: &AtomicBool,
) -> End {
    let spec = CommandSpec::new(Program::Shell(command));
    let mut kept = 0u64;
    let mut dropped = 0u64;
    let r = host.run(&spec, stop, &mut |_, line| {
        let n = line.len() as u64 + 1;
        if kept + n > MAX_LOAD_OUTPUT {
            dropped += n;
            return;
        }
        kept += n;
        let _ = out.write_all(line);
        let _ = out.write_all(b"\n");
    });
    if dropped > 0 {
        let _ = writeln!(
            out,
            "[rehost: {dropped} more bytes of output were not kept (at most {} MiB are)]",
            MAX_LOAD_OUTPUT >> 20
        );
    }
    let output = out.finish(&[]);
    match r {
        Ok(o) => End {
            exit_code: o.exit.code,
            signal: o.exit.signal,
            output,
            acked: None,
            errors: 0,
            first_error: None,
            acks: None,
        },
        Err(e) => End {
            output,
            ..failed_to_start(format!("on host {}: {e}", host.name()))
        },
    }
}

/// Sleeps `d` unless `stop` is set first; `false` when it was.
fn pause(d: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    !stop.load(Ordering::SeqCst)
}

/// The write load on the database's old side, until `stop`.
fn write_rows(
    host: Arc<dyn Host>,
    conn: rehost_db::ConnInfo,
    mut acks: OutputFile,
    stop: &AtomicBool,
) -> End {
    let sql = rehost_db::connect(host.as_ref(), true, conn, stop);
    let mut acked = Vec::new();
    let mut errors = 0u64;
    let mut first_error: Option<String> = None;
    let mut fail = |e: rehost_db::DbError, errors: &mut u64| {
        *errors += 1;
        if first_error.is_none() {
            first_error = Some(e.to_string());
        }
    };
    // The table, and the first id: after every id the table holds (a run resumed, a second
    // load), so an id stands for one write.
    let setup = [
        "CREATE SCHEMA IF NOT EXISTS rehost_load".to_owned(),
        format!(
            "CREATE TABLE IF NOT EXISTS {ACKS_TABLE} (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())"
        ),
        format!("SELECT coalesce(max(id), 0) FROM {ACKS_TABLE}"),
    ];
    let mut next = loop {
        if stop.load(Ordering::SeqCst) {
            break None;
        }
        match sql.run(&setup) {
            Ok(lines) => match lines.last().and_then(|l| l.trim().parse::<u64>().ok()) {
                Some(max) => break Some(max + 1),
                None => fail(
                    rehost_db::DbError::Answer {
                        target: sql.describe(),
                        message: "psql did not answer the table's highest id".into(),
                    },
                    &mut errors,
                ),
            },
            Err(rehost_db::DbError::Cancelled) => break None,
            Err(e) => fail(e, &mut errors),
        }
        if !pause(RETRY, stop) {
            break None;
        }
    };
    // Ids psql answered, written to the acks file but not yet synced.
    let mut pending: Vec<u64> = Vec::new();
    let mut synced_at = Instant::now();
    let sync = |acks: &mut OutputFile, pending: &mut Vec<u64>, acked: &mut Vec<u64>| {
        if pending.is_empty() {
            return Ok(());
        }
        let r = acks.sync();
        if r.is_ok() {
            acked.append(pending);
        } else {
            // Not on disk: not counted as acknowledged either.
            pending.clear();
        }
        r
    };
    while let Some(first) = next {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        // One session: the insert prepared once, then executed per id. Each `-c` is its own
        // transaction (psql's autocommit), and psql prints an id only once its `EXECUTE`
        // completed, commit included: an id is acknowledged only then.
        let end = first + BATCH;
        let mut statements = vec![format!(
            "PREPARE rehost_ack(bigint) AS INSERT INTO {ACKS_TABLE} (id) VALUES ($1) RETURNING id"
        )];
        statements.extend((first..end).map(|id| format!("EXECUTE rehost_ack({id})")));
        let mut sync_failed = false;
        let r = sql.stream(&statements, &mut |line| {
            let Ok(id) = line.trim().parse::<u64>() else {
                return;
            };
            if !(first..end).contains(&id) || writeln!(acks, "{id}").is_err() {
                return;
            }
            pending.push(id);
            if synced_at.elapsed() >= SYNC_EVERY {
                synced_at = Instant::now();
                sync_failed |= sync(&mut acks, &mut pending, &mut acked).is_err();
            }
        });
        sync_failed |= sync(&mut acks, &mut pending, &mut acked).is_err();
        if sync_failed {
            errors += 1;
        }
        // The next session starts after every id this one may have used (a failed one may
        // have committed some before it failed).
        next = Some(end);
        match r {
            Ok(()) => {}
            Err(rehost_db::DbError::Cancelled) => break,
            Err(e) => {
                fail(e, &mut errors);
                if !pause(RETRY, stop) {
                    break;
                }
            }
        }
    }
    End {
        exit_code: None,
        signal: None,
        output: None,
        errors,
        first_error,
        acks: acks.finish(&[]),
        acked: Some(acked),
    }
}

/// The acknowledged ids of `t` looked for on its database's or service's new side.
fn check_new_side(c: &mut LoadCtx, t: &ToCheck, at: String) -> Record {
    let (database, service, mut new_side, found_ids) = match &t.target {
        Target::Database(database) => {
            let (new_side, found) = check_database(c, database, &t.acked);
            (database.clone(), None, new_side, found)
        }
        Target::Http {
            service,
            port,
            path,
        } => {
            let (new_side, found) = match http::side(c, service, *port, path, true) {
                Ok(at) => (at.url(""), http::check(&at, &t.acked)),
                Err(e) => (format!("service `{service}`'s new host"), Err(e)),
            };
            (String::new(), Some(service.clone()), new_side, found)
        }
    };
    if new_side.is_empty() {
        new_side = "the new side".into();
    }
    let (mut found, mut missing_total, mut missing, mut error) = (0, 0, Vec::new(), None);
    match found_ids {
        Err(e) => error = Some(e),
        Ok(ids) => {
            for id in &t.acked {
                if ids.contains(id) {
                    found += 1;
                } else {
                    missing_total += 1;
                    if missing.len() < MAX_MISSING_NAMED {
                        missing.push(*id);
                    }
                }
            }
        }
    }
    Record::LoadChecked {
        at,
        id: t.id.clone(),
        database,
        service,
        new_side,
        acknowledged: t.acked.len() as u64,
        found,
        missing_total,
        missing,
        error,
        not_compared: match t.target {
            Target::Database(_) => NOT_COMPARED.into(),
            Target::Http { .. } => http::NOT_COMPARED.into(),
        },
    }
}

/// The acknowledged ids found in the write load's table on `database`'s new side, and the
/// side asked.
fn check_database(
    c: &mut LoadCtx,
    database: &str,
    acked: &[u64],
) -> (String, Result<BTreeSet<u64>, String>) {
    let mut new_side = format!("database `{database}`'s new side");
    let found = (|| -> Result<BTreeSet<u64>, String> {
        let db = c
            .plan
            .database_in(database, c.env)
            .ok_or_else(|| format!("database `{database}` is not in the plan"))?;
        let conn = rehost_db::ConnInfo::of(&db, true).map_err(|e| e.to_string())?;
        new_side = format!("{}:{conn}", db.to);
        let host = c.hosts.shared(&db.to)?;
        let (Some(lo), Some(hi)) = (acked.iter().min(), acked.iter().max()) else {
            return Ok(BTreeSet::new());
        };
        // The check has a stop flag of its own: it runs after an interruption too.
        let stop = AtomicBool::new(false);
        let sql = rehost_db::connect(host.as_ref(), true, conn, &stop);
        let exists = sql
            .run(&[format!("SELECT to_regclass('{ACKS_TABLE}') IS NOT NULL")])
            .map_err(|e| e.to_string())?;
        if exists.first().map(|l| l.trim()) != Some("t") {
            return Ok(BTreeSet::new());
        }
        let rows = sql
            .run(&[format!(
                "SELECT id FROM {ACKS_TABLE} WHERE id BETWEEN {lo} AND {hi}"
            )])
            .map_err(|e| e.to_string())?;
        Ok(rows
            .iter()
            .filter_map(|l| l.trim().parse::<u64>().ok())
            .collect())
    })();
    (new_side, found)
}
