//! Opening a run, before anything is recorded: a rehearsal's hosts checked against
//! production's, the state directory opened and locked for the environment, every host's run
//! lock taken, and the journal loaded.

use crate::EngineError;
use crate::clock::Clock;
use crate::exec::Hosts;
use crate::run::RunOptions;
use rehost_journal::RunLock;
use rehost_journal::journal::Journal;
use rehost_plan::Plan;
use rehost_tree::private::PrivateDir;
use std::sync::atomic::AtomicBool;

/// What an opened run holds: dropping it releases the state directory's lock.
pub(crate) struct Opened {
    pub state: PrivateDir,
    /// The state directory's `output/`.
    pub outputs: PrivateDir,
    pub lock: RunLock,
    pub journal: Journal,
    /// Why the journal's last line was dropped (a torn write), to be recorded.
    pub torn: Option<String>,
}

pub(crate) fn open(
    plan: &Plan,
    o: &RunOptions,
    env_name: &str,
    host_names: &[String],
    hosts: &mut Hosts,
    cancel: &AtomicBool,
    clock: &dyn Clock,
) -> Result<Opened, EngineError> {
    // A rehearsal must not reach production, however the plan spells its hosts: checked
    // before anything is written or run.
    if let Some(env) = &o.env {
        let met = crate::isolation::check_run(plan, env, hosts, o.ssh_config.as_deref(), cancel)
            .map_err(|message| EngineError::IsolationUnknown {
                env: env.clone(),
                message,
            })?;
        if let Some(m) = met.into_iter().next() {
            if let Some((database, prod_database)) = m.database {
                return Err(EngineError::DatabaseMeetsProduction {
                    env: env.clone(),
                    database,
                    detail: format!(
                        "from rehearsal host `{}` is database `{prod_database}` from production host `{}`: {}",
                        m.env_host, m.prod_host, m.why
                    ),
                });
            }
            return Err(EngineError::MeetsProduction {
                env: env.clone(),
                env_host: m.env_host,
                prod_host: m.prod_host,
                why: m.why,
            });
        }
    }
    let dir = &o.state_dir;
    let sdir = crate::open_state_dir(dir, true)?.expect("created");
    let outputs = sdir
        .subdir("output", true)
        .map_err(EngineError::from_private)?
        .expect("created");
    let _lock = RunLock::acquire(&sdir, env_name)?;
    // One run per server, whatever its state directory: each host of the run holds its
    // lock until the run ends (see `rehost_host::host_lock`).
    let holder = format!(
        "pid {} on {}, user {}, started {}, state {}",
        std::process::id(),
        hostname(),
        o.user,
        clock.now(),
        dir.display()
    );
    for name in host_names {
        let lock = rehost_host::Request::Lock {
            holder: holder.clone(),
        };
        hosts
            .get(name)
            .and_then(|h| {
                h.request(&lock, cancel, &mut |_| {})
                    .map_err(|e| e.to_string())
            })
            .map_err(|reason| EngineError::HostLock {
                host: name.clone(),
                reason,
            })?;
    }
    let (journal, torn) = Journal::open(&sdir)?;
    Ok(Opened {
        state: sdir,
        outputs,
        lock: _lock,
        journal,
        torn,
    })
}

/// Where the operator sits: standard input's terminal, and the ssh client's address when the
/// operator came in over ssh (a jump host).
pub(crate) fn terminal() -> String {
    let tty = std::fs::read_link("/proc/self/fd/0")
        .ok()
        .filter(|p| p.starts_with("/dev/pts") || p.starts_with("/dev/tty"))
        .map_or_else(|| "not a terminal".to_owned(), |p| p.display().to_string());
    match std::env::var("SSH_CLIENT") {
        Ok(c) => format!(
            "{tty}, over ssh from {}",
            c.split_whitespace().next().unwrap_or("?")
        ),
        Err(_) => tty,
    }
}

/// This machine's name, for the holder of a host lock.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "this machine".into())
}
