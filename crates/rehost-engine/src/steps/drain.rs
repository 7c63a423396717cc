//! The `drain` step kind: wait until no client holds an established TCP connection to a
//! declared service's ports on its host. Each listing comes from the host's kernel through
//! `Host::connections` (in process here, through the agent elsewhere); a `Tracker` keeps who
//! was there at the start, who came later and who left when, which goes into the journal
//! (`StepData::Drain`) and the report. At the step's timeout it fails naming each client still
//! connected: the ones to end by hand.

use super::Executor;
use crate::EngineError;
use crate::events::Event;
use crate::exec::{Ctx, Outcome, failed};
use rehost_host::conns::{MAX_CONNECTIONS, Tracker};
use rehost_journal::step_data::{
    DrainClient, DrainData, DrainEnded, DrainUnixClient, STEP_DATA_VERSION, StepData,
};
use rehost_plan::{Step, StepKind};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long `drain` waits when the step sets no timeout.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);
/// Between two listings.
const DRAIN_INTERVAL: Duration = Duration::from_secs(1);
/// How many clients a progress line or a failure names before it says how many more.
const NAMED: usize = 20;

pub(super) static EXECUTOR: Executor = Executor {
    kind: "drain",
    rollback: None,
    execute,
    // The step's host (the service's by default) is opened by every pre-flight; validation
    // has checked the service declares its ports.
    needs: |_, _| Vec::new(),
};

fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    let StepKind::Drain { service, terminate } = &step.kind else {
        unreachable!("the registry hands `drain` its own steps")
    };
    let Some(svc) = ctx.plan.service(service).cloned() else {
        return failed(format!("the plan declares no service `{service}`"));
    };
    let host = step.host.clone().unwrap_or_else(|| svc.host.clone());
    let limit = step.timeout.unwrap_or(DRAIN_TIMEOUT);
    let clock = ctx.clock;
    let started = clock.monotonic();
    let elapsed = || clock.monotonic().saturating_sub(started);
    let mut tracker = Tracker::default();
    let mut polls = 0u32;
    let mut unix = UnixTracker::default();
    let paths: Vec<rehost_host::Bytes> = svc
        .sockets
        .iter()
        .map(|p| rehost_host::Bytes(p.as_bytes().to_vec()))
        .collect();
    loop {
        let listing = match ctx.hosts.get(&host) {
            // Only sockets: no TCP listing (no port would list every port).
            Ok(_) if svc.ports.is_empty() => Ok(rehost_host::conns::Listing {
                connections: Vec::new(),
                source: rehost_host::conns::Source::Netlink,
                fallback: None,
                truncated: false,
                processes_not_read: false,
            }),
            Ok(h) => h.connections(&svc.ports, MAX_CONNECTIONS, ctx.cancel),
            Err(e) => return failed(e),
        };
        let unix_listing = match ctx.hosts.get(&host) {
            Ok(_) if paths.is_empty() => Ok(None),
            Ok(h) => {
                rehost_host::conns::unix::on_host(h, &paths, MAX_CONNECTIONS, ctx.cancel).map(Some)
            }
            Err(e) => return failed(e),
        };
        if ctx.cancel.load(Ordering::Relaxed) {
            return Ok(Outcome::Cancelled);
        }
        let (listing, unix_listing) = match (listing, unix_listing) {
            (Ok(l), Ok(u)) => (l, u),
            (Err(e), _) | (_, Err(e)) => {
                return Ok(Outcome::Failed {
                    detail: format!(
                        "failed to list the connections to service `{}` on host {host}: {e}",
                        svc.id
                    ),
                    exit_code: None,
                    data: data(&svc, &host, &tracker, &unix, polls, elapsed(), false, None),
                });
            }
        };
        polls += 1;
        let at = elapsed();
        tracker.observe(&listing.connections, at.as_millis() as u64);
        if let Some(u) = &unix_listing {
            unix.observe(&u.connections, at.as_millis() as u64);
        }
        let n_unix = unix.remaining().count();
        let n = listing.connections.len() + n_unix;
        let left = tracker
            .clients()
            .iter()
            .filter(|c| c.left_ms.is_some())
            .count();
        let left = left + unix.clients.iter().filter(|c| c.left_ms.is_some()).count();
        if n == 0 {
            // A socket nobody listens on has no connection to wait for: said, not hidden.
            let not_listening: Vec<String> = match &unix_listing {
                Some(u) => svc
                    .sockets
                    .iter()
                    .filter(|p| !u.listening.iter().any(|l| l.as_bytes() == p.as_bytes()))
                    .map(|p| rehost_tree::escape::text(p))
                    .collect(),
                None => Vec::new(),
            };
            return Ok(Outcome::Done {
                detail: Some(format!(
                    "no client connected to service `{}` ({}) on host {host} after {}; {left} client(s) left while waiting{}",
                    svc.id,
                    what_text(&svc),
                    rehost_plan::format_duration(Duration::from_secs(at.as_secs())),
                    if not_listening.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; nothing listens on the Unix socket {} (no connection to wait for there)",
                            not_listening.join(", ")
                        )
                    }
                )),
                exit_code: None,
                confirmed_by: None,
                data: data(&svc, &host, &tracker, &unix, polls, at, true, None),
            });
        }
        let named = names(&tracker, &unix, n);
        if at >= limit && *terminate {
            let out = end_remaining(
                ctx,
                &svc,
                &host,
                &listing.connections,
                Run {
                    step: &step.id,
                    tracker: &mut tracker,
                    unix: &mut unix,
                    polls,
                    started,
                },
            );
            // Interrupted once rehost had asked the host to end them: what it proved before
            // the interruption is the attempt's record, the step counts as interrupted.
            let interrupted = |detail: String| {
                format!(
                    "interrupted while ending the connections; what the listing made before the interruption showed: {detail}"
                )
            };
            return Ok(match out {
                Outcome::Done { detail, data, .. } if ctx.cancel.load(Ordering::Relaxed) => {
                    Outcome::CancelledAfter {
                        detail: interrupted(detail.unwrap_or_default()),
                        data,
                    }
                }
                Outcome::Failed { detail, data, .. } if ctx.cancel.load(Ordering::Relaxed) => {
                    Outcome::CancelledAfter {
                        detail: interrupted(detail),
                        data,
                    }
                }
                out => out,
            });
        }
        if at >= limit {
            return Ok(Outcome::Failed {
                detail: format!(
                    "{n} client(s) still connected to service `{}` ({}) on host {host} after {}; end these by hand on the clients, then run again: {named}",
                    svc.id,
                    what_text(&svc),
                    rehost_plan::format_duration(limit),
                ),
                exit_code: None,
                data: data(&svc, &host, &tracker, &unix, polls, at, false, None),
            });
        }
        ctx.sink.emit(&Event::Progress {
            id: step.id.clone(),
            message: format!(
                "draining `{}`: {n} connection(s) ({}s of {}): {named}",
                svc.id,
                at.as_secs(),
                rehost_plan::format_duration(limit)
            ),
        });
        let until = clock.monotonic() + DRAIN_INTERVAL;
        while clock.monotonic() < until {
            if ctx.cancel.load(Ordering::Relaxed) {
                return Ok(Outcome::Cancelled);
            }
            clock.sleep(Duration::from_millis(50));
        }
    }
}

/// The clients still connected, the first [`NAMED`] of them, escaped.
fn names(tracker: &Tracker, unix: &UnixTracker, n: usize) -> String {
    let mut named: Vec<String> = tracker
        .remaining()
        .map(|c| c.describe())
        .chain(unix.remaining().map(|c| {
            format!(
                "process {} on the Unix socket {} (served by {})",
                c.peer_process(),
                c.path_text(),
                c.process()
            )
        }))
        .take(NAMED)
        .collect();
    if n > named.len() {
        named.push(format!("and {} more", n - named.len()));
    }
    named.join("; ")
}

/// What a drain waits for: `port 5432`, `port 5432 and the Unix socket PATH`.
fn what_text(svc: &rehost_plan::Service) -> String {
    let ports = match svc.ports.len() {
        0 => String::new(),
        1 => format!("port {}", svc.ports[0]),
        _ => format!("ports {}", ports_text(&svc.ports)),
    };
    let socks: Vec<String> = svc
        .sockets
        .iter()
        .map(|p| rehost_tree::escape::text(p))
        .collect();
    let socks = match socks.len() {
        0 => return ports,
        1 => format!("the Unix socket {}", socks[0]),
        _ => format!("the Unix sockets {}", socks.join(", ")),
    };
    if ports.is_empty() {
        socks
    } else {
        format!("{ports} and {socks}")
    }
}

/// Who was connected to the service's Unix sockets across the listings: each connection (by
/// the service's end: path and inode), when first seen and when it left.
#[derive(Default)]
struct UnixTracker {
    clients: Vec<UnixSeen>,
    index: HashMap<(Vec<u8>, u64), usize>,
    origin: Option<u64>,
}

struct UnixSeen {
    conn: rehost_host::conns::unix::UnixConnection,
    first_seen_ms: u64,
    left_ms: Option<u64>,
    /// With `terminate`: what became of it when rehost ended it.
    ended: Option<DrainEnded>,
}

impl UnixTracker {
    fn observe(&mut self, conns: &[rehost_host::conns::unix::UnixConnection], at_ms: u64) {
        let at_ms = at_ms.saturating_sub(*self.origin.get_or_insert(at_ms));
        let mut now = std::collections::HashSet::new();
        for c in conns {
            let key = (c.path.as_bytes().to_vec(), c.inode);
            match self.index.get(&key) {
                Some(&i) => self.clients[i].left_ms = None,
                None if self.clients.len() < rehost_host::conns::MAX_TRACKED => {
                    self.index.insert(key.clone(), self.clients.len());
                    self.clients.push(UnixSeen {
                        conn: c.clone(),
                        first_seen_ms: at_ms,
                        left_ms: None,
                        ended: None,
                    });
                }
                None => {}
            }
            now.insert(key);
        }
        for c in &mut self.clients {
            if c.left_ms.is_none()
                && !now.contains(&(c.conn.path.as_bytes().to_vec(), c.conn.inode))
            {
                c.left_ms = Some(at_ms);
            }
        }
    }

    fn remaining(&self) -> impl Iterator<Item = &rehost_host::conns::unix::UnixConnection> {
        self.clients
            .iter()
            .filter(|c| c.left_ms.is_none())
            .map(|c| &c.conn)
    }
}

#[allow(clippy::too_many_arguments)]
fn data(
    svc: &rehost_plan::Service,
    host: &str,
    tracker: &Tracker,
    unix: &UnixTracker,
    polls: u32,
    waited: Duration,
    drained: bool,
    ended: Option<&HashMap<Peer, DrainEnded>>,
) -> Option<StepData> {
    Some(StepData::Drain(DrainData {
        v: STEP_DATA_VERSION,
        service: svc.id.clone(),
        host: host.to_owned(),
        ports: svc.ports.clone(),
        drained,
        waited_ms: waited.as_millis() as u64,
        polls,
        clients: tracker
            .clients()
            .iter()
            .map(|c| DrainClient {
                peer: c.peer(),
                local_port: c.local_port,
                pid: c.pid,
                command: c.command.clone(),
                first_seen_ms: c.first_seen_ms,
                left_ms: c.left_ms,
                ended: ended
                    .and_then(|e| e.get(&(c.peer_addr, c.peer_port, c.local_port)).cloned()),
            })
            .collect(),
        untracked: tracker.untracked,
        terminate: ended.is_some(),
        sockets: svc.sockets.clone(),
        unix_clients: unix
            .clients
            .iter()
            .map(|c| DrainUnixClient {
                socket: c.conn.path_text(),
                inode: c.conn.inode,
                peer_pid: c.conn.peer_pid,
                peer_command: c.conn.peer_command.clone(),
                pid: c.conn.pid,
                command: c.conn.command.clone(),
                first_seen_ms: c.first_seen_ms,
                left_ms: c.left_ms,
                ended: c.ended.clone(),
            })
            .collect(),
    }))
}

/// A client by its address, port and the local port.
type Peer = (std::net::IpAddr, u16, u16);

/// Where a drain is when its timeout comes.
struct Run<'a> {
    step: &'a str,
    tracker: &'a mut Tracker,
    unix: &'a mut UnixTracker,
    polls: u32,
    started: Duration,
}

/// `terminate` at the timeout: ends the connections still listed (`conns::end::terminate`:
/// the host ends exactly those, then they are listed again), records what became of each, and
/// succeeds only when the kernel's listing no longer has any connection to the service.
fn end_remaining(
    ctx: &mut Ctx,
    svc: &rehost_plan::Service,
    host: &str,
    remaining: &[rehost_host::conns::Connection],
    run: Run,
) -> Outcome {
    use rehost_host::conns::end::{Ended, terminate};
    let clock = ctx.clock;
    let elapsed = || clock.monotonic().saturating_sub(run.started);
    let at_ms = elapsed().as_millis() as u64;
    let ports_text = ports_text(&svc.ports);
    ctx.sink.emit(&Event::Progress {
        id: run.step.to_owned(),
        message: format!(
            "ending the {} connection(s) still to `{}` ({}) on host {host}",
            remaining.len() + run.unix.remaining().count(),
            svc.id,
            what_text(svc)
        ),
    });
    // The Unix sockets' clients first (they have no SOCK_DESTROY: the fallback alone).
    let (unix_ended, unix_remained) = match end_unix(ctx, svc, host, run.unix, at_ms, elapsed) {
        Ok(u) => u,
        Err(e) => {
            let cancelled = ctx.cancel.load(Ordering::Relaxed);
            if cancelled {
                for c in run.unix.clients.iter_mut().filter(|c| c.left_ms.is_none()) {
                    c.ended = Some(DrainEnded {
                        at_ms,
                        result: "interrupted".into(),
                        mechanism: None,
                        why: format!(
                            "interrupted while rehost was ending it ({e}): whether it ended is not known; list the connections again (`rehost conns list --socket`)"
                        ),
                    });
                }
            }
            let detail = format!(
                "{} the {} client(s) still connected to the Unix socket(s) of service `{}` on host {host}: {e}; end these by hand on the clients, then run again: {}",
                if cancelled {
                    "interrupted while ending"
                } else {
                    "failed to end"
                },
                run.unix.remaining().count(),
                svc.id,
                names(
                    run.tracker,
                    run.unix,
                    remaining.len() + run.unix.remaining().count()
                )
            );
            let data = data(
                svc,
                host,
                run.tracker,
                run.unix,
                run.polls,
                elapsed(),
                false,
                None,
            );
            return if cancelled {
                Outcome::CancelledAfter { detail, data }
            } else {
                Outcome::Failed {
                    detail,
                    exit_code: None,
                    data,
                }
            };
        }
    };
    let result = match ctx.hosts.get(host) {
        // Only Unix-socket clients remained: no TCP ending (and no listing of every port).
        Ok(_) if remaining.is_empty() => Ok(rehost_host::conns::end::Termination {
            outcomes: Vec::new(),
            listing: rehost_host::conns::Listing {
                connections: Vec::new(),
                source: rehost_host::conns::Source::Netlink,
                fallback: None,
                truncated: false,
                processes_not_read: false,
            },
        }),
        Ok(h) => terminate(h, &svc.ports, remaining, ctx.cancel).map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    let t = match result {
        Ok(t) => t,
        // Interrupted before the host answered, or before the listing after it: rehost may have
        // ended some; each is recorded as not known either way, and the step as interrupted.
        Err(e) if ctx.cancel.load(Ordering::Relaxed) => {
            let why = format!(
                "interrupted while rehost was ending it ({e}): whether it ended is not known; list the connections again (`rehost conns list`)"
            );
            let ended: HashMap<Peer, DrainEnded> = remaining
                .iter()
                .map(|c| {
                    let ended = DrainEnded {
                        at_ms,
                        result: "interrupted".into(),
                        mechanism: None,
                        why: why.clone(),
                    };
                    ((c.peer_addr, c.peer_port, c.local_port), ended)
                })
                .collect();
            return Outcome::CancelledAfter {
                detail: format!(
                    "interrupted while ending the {} connection(s) still to service `{}` (port {ports_text}) on host {host}: whether each ended is not known; list them again (`rehost conns list`)",
                    remaining.len(),
                    svc.id,
                ),
                data: data(
                    svc,
                    host,
                    run.tracker,
                    run.unix,
                    run.polls,
                    elapsed(),
                    false,
                    Some(&ended),
                ),
            };
        }
        Err(e) => {
            let named = names(run.tracker, run.unix, remaining.len());
            return Outcome::Failed {
                detail: format!(
                    "failed to end the {} connection(s) still to service `{}` (port {ports_text}) on host {host}: {e}; end these by hand on the clients, then run again: {named}",
                    remaining.len(),
                    svc.id,
                ),
                exit_code: None,
                data: data(
                    svc,
                    host,
                    run.tracker,
                    run.unix,
                    run.polls,
                    elapsed(),
                    false,
                    None,
                ),
            };
        }
    };
    let polls = run.polls + 1;
    let now = elapsed();
    run.tracker
        .observe(&t.listing.connections, now.as_millis() as u64);
    let mut ended: HashMap<Peer, DrainEnded> = HashMap::new();
    let mut by: Vec<&'static str> = Vec::new();
    let mut remained: Vec<String> = Vec::new();
    for o in &t.outcomes {
        let c = &o.connection;
        let (result, mechanism, why) = match &o.result {
            Ended::Ended { mechanism } => {
                if !by.contains(&mechanism.as_str()) {
                    by.push(mechanism.as_str());
                }
                ("ended", Some(mechanism.as_str().to_owned()), String::new())
            }
            Ended::Left => ("left", None, String::new()),
            Ended::Remained { why } => {
                remained.push(format!(
                    "{}: {}",
                    rehost_host::conns::end::describe(c),
                    rehost_tree::escape::text(why)
                ));
                ("remained", None, why.clone())
            }
        };
        ended.insert(
            (c.peer_addr, c.peer_port, c.local_port),
            DrainEnded {
                at_ms,
                result: result.into(),
                mechanism,
                why,
            },
        );
    }
    let n_ended = t.count(|r| matches!(r, Ended::Ended { .. })) + unix_ended;
    if unix_ended > 0 && !by.contains(&"pidfd_shutdown") {
        by.push("pidfd_shutdown");
    }
    let n_left = t.count(|r| matches!(r, Ended::Left));
    let still = t.listing.connections.len();
    let still_unix = run.unix.remaining().count();
    let data = data(
        svc,
        host,
        run.tracker,
        run.unix,
        polls,
        now,
        still == 0 && still_unix == 0,
        Some(&ended),
    );
    if still == 0 && still_unix > 0 {
        return Outcome::Failed {
            detail: format!(
                "ended {n_ended} client(s) of service `{}` ({}) on host {host} at the timeout; {still_unix} client(s) still connected to its Unix socket(s): end these by hand on the clients, then run again: {}",
                svc.id,
                what_text(svc),
                if unix_remained.is_empty() {
                    run.unix
                        .remaining()
                        .take(NAMED)
                        .map(|c| {
                            format!(
                                "process {} on the Unix socket {} (connected after the ending)",
                                c.peer_process(),
                                c.path_text()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                } else {
                    unix_remained.join("; ")
                }
            ),
            exit_code: None,
            data,
        };
    }
    if still == 0 {
        return Outcome::Done {
            detail: Some(format!(
                "ended {n_ended} client(s) of service `{}` ({}) on host {host} at the timeout ({}){}; {n_left} left by themselves meanwhile; the host's kernel lists no connection to the service any more",
                svc.id,
                what_text(svc),
                rehost_plan::format_duration(Duration::from_secs(now.as_secs())),
                if by.is_empty() {
                    String::new()
                } else {
                    format!(" by {}", by.join(" and "))
                },
            )),
            exit_code: None,
            confirmed_by: None,
            data,
        };
    }
    // Those listed now that were not asked to be ended: they connected after the ending.
    let newer: Vec<String> = t
        .listing
        .connections
        .iter()
        .filter(|c| !ended.contains_key(&(c.peer_addr, c.peer_port, c.local_port)))
        .take(NAMED)
        .map(rehost_host::conns::end::describe)
        .collect();
    let came = still.saturating_sub(remained.len());
    Outcome::Failed {
        detail: format!(
            "{still} client(s) still connected to service `{}` (port {ports_text}) on host {host} after ending {n_ended} at the timeout; end these by hand on the clients, then run again: {}{}",
            svc.id,
            remained.join("; "),
            if came > 0 {
                format!(
                    "{}{came} connected after the ending: {}{}",
                    if remained.is_empty() { "" } else { "; " },
                    newer.join("; "),
                    if came > newer.len() { "; …" } else { "" }
                )
            } else {
                String::new()
            }
        ),
        exit_code: None,
        data,
    }
}

/// `terminate` for the service's Unix sockets: the clients still connected to them ended
/// (`conns::unix_end::terminate`: the service's end taken from its process and shut down, then
/// listed again), each one's ending kept in `unix`, the listing after observed. Returns how
/// many were ended and each that remained, named with why.
fn end_unix(
    ctx: &mut Ctx,
    svc: &rehost_plan::Service,
    host: &str,
    unix: &mut UnixTracker,
    at_ms: u64,
    elapsed: impl Fn() -> Duration,
) -> Result<(usize, Vec<String>), String> {
    use rehost_host::conns::end::Ended;
    let remaining: Vec<rehost_host::conns::unix::UnixConnection> =
        unix.remaining().cloned().collect();
    if remaining.is_empty() {
        return Ok((0, Vec::new()));
    }
    let paths: Vec<rehost_host::Bytes> = svc
        .sockets
        .iter()
        .map(|p| rehost_host::Bytes(p.as_bytes().to_vec()))
        .collect();
    let h = ctx.hosts.get(host)?;
    let (outcomes, listed) =
        rehost_host::conns::unix_end::terminate(h, &paths, &remaining, ctx.cancel)
            .map_err(|e| e.to_string())?;
    unix.observe(&listed, elapsed().as_millis() as u64);
    let mut ended = 0;
    let mut remained = Vec::new();
    for o in &outcomes {
        let c = &o.connection;
        let (result, mechanism, why) = match &o.result {
            Ended::Ended { mechanism } => {
                ended += 1;
                ("ended", Some(mechanism.as_str().to_owned()), String::new())
            }
            Ended::Left => ("left", None, String::new()),
            Ended::Remained { why } => {
                remained.push(format!(
                    "process {} on the Unix socket {}: {}",
                    c.peer_process(),
                    c.path_text(),
                    rehost_tree::escape::text(why)
                ));
                ("remained", None, why.clone())
            }
        };
        let key = (c.path.as_bytes().to_vec(), c.inode);
        if let Some(&i) = unix.index.get(&key) {
            unix.clients[i].ended = Some(DrainEnded {
                at_ms,
                result: result.into(),
                mechanism,
                why,
            });
        }
    }
    Ok((ended, remained))
}

fn ports_text(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
