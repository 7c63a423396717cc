//! The `survey` capability: what a server runs and what each service depends on, collected
//! where it runs (in-process for a local host, by the agent on an ssh host) into a
//! [`rehost_survey::Inventory`]. Only the inventory crosses the network, as JSON in pieces;
//! `Host::survey` refuses an oversize or garbage answer whole (`rehost_survey::check`).
//!
//! The chain is followed from the system's own records, never guessed from names:
//! listening sockets (the kernel) → the process holding each (`/proc/PID/fd`) → its systemd
//! unit (`/proc/PID/cgroup` when systemd runs, else the unit file whose `ExecStart=` runs that
//! executable with those arguments) → the package owning the executable (the package
//! manager) → configuration (the command line, the package's conffiles, nginx's effective
//! configuration) → data (asked of the running database server, or the configuration's
//! `root`/`alias`) → the keys the configuration names → the names in certificates and
//! `server_name` → the clients seen connected while sampling. Files are read under the
//! host's root (`root.rs`: no symlink leads out of it); processes and sockets are the
//! machine's. What cannot be read is a [`rehost_survey::Gap`] naming the record and the
//! remedy.

mod chain;
pub(crate) mod procs;
mod root;
mod services;
mod system;
mod units;

#[cfg(test)]
mod tests;

use crate::agent::{Request, Response};
use crate::bytes::Blob;
use crate::{Host, HostError, LocalHost};
use rehost_survey::{Client, Gap, Inventory, Sampling};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Bytes of the inventory's JSON per `SurveyData` response.
const PIECE: usize = 4 << 20;
/// The longest progress text accepted from a host.
const MAX_STAGE: usize = 200;
/// Connections listed per client sample.
const MAX_SAMPLE: usize = 20_000;

/// What a survey is asked to do.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyOptions {
    /// Sample the clients connected to the listening TCP ports for this long (0: not at all).
    pub sample_seconds: u64,
    /// Between two samples, in milliseconds (0: one second).
    #[serde(default)]
    pub interval_ms: u64,
}

/// How far a survey has come, as the host reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyProgress {
    /// What it is doing (`listening sockets`, `sampling clients`); untrusted text.
    pub stage: String,
    pub done: u64,
    pub total: u64,
}

/// Executes a `Survey` request on this host: collects, bounds and streams the inventory.
pub(crate) fn execute(
    host: &LocalHost,
    options: &SurveyOptions,
    cancel: &AtomicBool,
    emit: &mut dyn FnMut(Response),
) -> Result<(), HostError> {
    let inv = collect(host, options, cancel, &mut |p| {
        emit(Response::SurveyProgress { progress: p })
    })?;
    let inv = rehost_survey::check::bound(inv);
    let data = serde_json::to_vec(&inv).map_err(|e| HostError::Protocol {
        host: host.name().to_owned(),
        message: format!("the inventory could not be written: {e}"),
    })?;
    for piece in data.chunks(PIECE) {
        emit(Response::SurveyData {
            data: Blob::from(piece),
        });
    }
    emit(Response::Surveyed {
        bytes: data.len() as u64,
    });
    Ok(())
}

/// Surveys `host` through [`Host::request`]: the inventory, with what the host sent bounded
/// by `rehost_survey::limits` and checked before any of it is kept; the host's name set as
/// the inventory's `host`.
pub(crate) fn receive<H: Host + ?Sized>(
    host: &H,
    options: &SurveyOptions,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(&SurveyProgress),
) -> Result<Inventory, HostError> {
    let req = Request::Survey {
        options: options.clone(),
    };
    let mut data: Vec<u8> = Vec::new();
    let mut ended = None;
    crate::request_bounded(host, &req, cancel, &mut |r| match r {
        Response::SurveyProgress { progress: p } if ended.is_none() => {
            if p.stage.len() > MAX_STAGE {
                return Err(format!(
                    "refused: a progress text of {} bytes",
                    p.stage.len()
                ));
            }
            progress(&p);
            Ok(())
        }
        Response::SurveyData { data: d } if ended.is_none() => {
            if (data.len() + d.0.len()) as u64 > rehost_survey::limits::MAX_JSON_BYTES {
                return Err(format!(
                    "refused: an inventory larger than {} bytes",
                    rehost_survey::limits::MAX_JSON_BYTES
                ));
            }
            data.extend_from_slice(&d.0);
            Ok(())
        }
        Response::Surveyed { bytes } if ended.is_none() => {
            ended = Some(bytes);
            Ok(())
        }
        other => Err(format!(
            "refused: an answer `{}` to a survey",
            crate::agent::kind_name(&other)
        )),
    })?;
    let invalid = |message: String| HostError::Protocol {
        host: host.name().to_owned(),
        message,
    };
    match ended {
        None => return Err(invalid("the survey ended without its summary".into())),
        Some(n) if n != data.len() as u64 => {
            return Err(invalid(format!(
                "the survey said {n} bytes and sent {}: refused whole",
                data.len()
            )));
        }
        Some(_) => {}
    }
    let mut inv = rehost_survey::check::from_json(&data)
        .map_err(|e| invalid(format!("refused whole: {e}")))?;
    inv.host = host.name().to_owned();
    Ok(inv)
}

/// Collects the inventory of `host` in this process.
pub fn collect(
    host: &LocalHost,
    options: &SurveyOptions,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(SurveyProgress),
) -> Result<Inventory, HostError> {
    let started = Instant::now();
    let mut stage = |stage: &str, done: u64, total: u64| {
        progress(SurveyProgress {
            stage: stage.into(),
            done,
            total,
        })
    };
    let root = root::Root::open(host.root()).map_err(|source| HostError::Read {
        host: host.name().to_owned(),
        path: host.root().unwrap_or(std::path::Path::new("/")).to_owned(),
        source,
    })?;
    let cancelled = || HostError::Protocol {
        host: host.name().to_owned(),
        message: "the survey was cancelled".into(),
    };
    let mut inv = Inventory::new(host.name(), now_rfc3339());
    let gaps = &mut inv.gaps;
    stage("the system", 0, 0);
    inv.system = system::system(&root, gaps);
    inv.system.addresses = services::addresses(host, cancel, gaps);
    inv.accounts = system::accounts(&root, gaps);
    inv.groups = system::groups(&root, gaps);
    stage("unit files", 0, 0);
    let units = units::Units::read(&root, gaps);
    inv.timers = units.timers();
    inv.units = units.states();
    if cancel.load(Relaxed) {
        return Err(cancelled());
    }
    stage("listening sockets and their processes", 0, 0);
    let found = services::follow(
        &services::Context {
            host,
            root: &root,
            units: &units,
            accounts: &inv.accounts,
            hostname: &inv.system.hostname,
            manager: inv.system.package_manager.as_deref(),
            systemd: inv.system.init == "systemd",
            cancel,
        },
        &inv.timers,
        gaps,
        &mut |done, total| stage("following the services", done, total),
    );
    inv.services = found.services;
    inv.sockets = found.sockets;
    if cancel.load(Relaxed) {
        return Err(cancelled());
    }
    stage("cron, packages, accounts, mounts, firewall, sysctl", 0, 0);
    inv.cron = system::cron(&root, gaps);
    inv.packages = match inv.system.package_manager.as_deref() {
        Some("dpkg") => system::dpkg_packages(&root, gaps),
        Some("rpm") => services::rpm_packages(host, cancel, gaps),
        _ => Vec::new(),
    };
    inv.mounts = system::mounts(&root, gaps);
    inv.crypttab = system::crypttab(&root, gaps);
    inv.firewall = services::firewall(host, cancel, gaps);
    inv.sysctl = system::sysctl(&root, gaps);
    inv.took_ms = started.elapsed().as_millis() as u64;
    if options.sample_seconds > 0 {
        let ports: BTreeMap<u16, Option<String>> = inv
            .sockets
            .iter()
            .filter(|s| s.listen.proto == rehost_survey::Proto::Tcp)
            .map(|s| (s.listen.port, s.service.clone()))
            .collect();
        let (clients, sampled) = sample(options, &ports, cancel, &mut inv.gaps, &mut |d, t| {
            stage("sampling the clients", d, t)
        });
        inv.clients = clients;
        inv.sampled = sampled;
        if cancel.load(Relaxed) {
            return Err(cancelled());
        }
    }
    Ok(inv)
}

/// Samples the established connections to `ports` every interval for the time asked: one
/// [`Client`] per port and peer address; a four-tuple alive in every sample is persistent.
fn sample(
    options: &SurveyOptions,
    ports: &BTreeMap<u16, Option<String>>,
    cancel: &AtomicBool,
    gaps: &mut Vec<Gap>,
    progress: &mut dyn FnMut(u64, u64),
) -> (Vec<Client>, Sampling) {
    let interval = Duration::from_millis(match options.interval_ms {
        0 => 1000,
        n => n.clamp(50, 60_000),
    });
    let total = Duration::from_secs(options.sample_seconds);
    let expected = (total.as_millis() / interval.as_millis()) as u64 + 1;
    let wanted: Vec<u16> = ports.keys().copied().collect();
    let start = Instant::now();
    let mut samples = 0u64;
    // (port, peer) → (most at once, samples seen in); four-tuple → samples seen in.
    let mut peers: BTreeMap<(u16, String), (u32, u64)> = BTreeMap::new();
    let mut tuples: HashMap<(std::net::IpAddr, u16, std::net::IpAddr, u16), u64> = HashMap::new();
    let mut failed = None;
    loop {
        if wanted.is_empty() {
            samples += 1;
        } else {
            match crate::conns::established_with(&wanted, MAX_SAMPLE, false) {
                Ok(l) => {
                    samples += 1;
                    let mut now: BTreeMap<(u16, String), u32> = BTreeMap::new();
                    let mut seen = BTreeSet::new();
                    for c in &l.connections {
                        *now.entry((c.local_port, c.peer_addr.to_string()))
                            .or_default() += 1;
                        let t = (c.local_addr, c.local_port, c.peer_addr, c.peer_port);
                        if seen.insert(t) {
                            *tuples.entry(t).or_default() += 1;
                        }
                    }
                    for (k, n) in now {
                        let e = peers.entry(k).or_default();
                        e.0 = e.0.max(n);
                        e.1 += 1;
                    }
                    // Only tuples alive in every sample so far can still be persistent.
                    tuples.retain(|_, n| *n == samples);
                }
                Err(e) => failed = Some(e.to_string()),
            }
        }
        progress(samples, expected);
        if cancel.load(Relaxed) || start.elapsed() >= total || failed.is_some() {
            break;
        }
        // The next sample on the interval's grid (not an interval after this one's end), the
        // last at the end of the time asked for.
        let until = (start + interval * (samples as u32)).min(start + total);
        while Instant::now() < until && !cancel.load(Relaxed) {
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(100)));
        }
    }
    if let Some(e) = failed {
        gaps.push(Gap {
            what: "the established connections".into(),
            why: format!("not listed ({e}): the clients are unknown"),
        });
    }
    let clients = peers
        .into_iter()
        .map(|((port, peer), (connections, seen_in))| {
            let persistent = samples > 1
                && tuples
                    .iter()
                    .any(|((_, p, a, _), n)| *p == port && a.to_string() == peer && *n == samples);
            Client {
                port,
                service: ports.get(&port).cloned().flatten(),
                peer,
                connections,
                seen_in,
                persistent,
            }
        })
        .collect();
    (
        clients,
        Sampling {
            seconds: options.sample_seconds,
            samples,
        },
    )
}

/// Now, as RFC 3339 in UTC (`2026-12-07T12:00:00Z`).
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
