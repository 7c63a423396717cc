//! The `address-moved` step kind: the SSH server at an address that moved answers with the new
//! host's host keys (`ssh-keyscan` from this machine, the keys' fingerprints compared with the
//! host keys read on the hosts through `rehost_host::scan_keys`), so the address is proven to
//! reach the new host by identity, not merely to answer. Hosts holding the same host key
//! cannot be told apart by it: said so, never passed.

use super::{Executor, Need};
use crate::EngineError;
use crate::exec::{Ctx, Outcome, failed};
use rehost_journal::step_data::{AddressMovedData, STEP_DATA_VERSION, StepData};
use rehost_plan::{Step, StepKind};
use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long `ssh-keyscan` waits for the address (its `-T`) unless the step says.
const KEYSCAN_TIMEOUT: Duration = Duration::from_secs(10);
/// The most bytes of `ssh-keyscan`'s answer read (a hostile server's keys are bounded).
const MAX_KEYSCAN: u64 = 64 << 10;

pub(super) static EXECUTOR: Executor = Executor {
    kind: "address-moved",
    rollback: None,
    execute,
    needs: |_, step| match &step.kind {
        StepKind::AddressMoved {
            address, to, from, ..
        } => [
            Need::Opens { host: to },
            Need::Endpoint {
                key: "address",
                value: address,
            },
        ]
        .into_iter()
        .chain(from.as_deref().map(|host| Need::Opens { host }))
        .collect(),
        _ => Vec::new(),
    },
};

fn address(s: &str) -> Option<SocketAddr> {
    match s.parse::<std::net::IpAddr>() {
        Ok(ip) => Some(SocketAddr::new(ip, 22)),
        Err(_) => s.parse().ok(),
    }
}

/// The SSH fingerprints of the host keys under `paths` on `host`.
fn host_keys(ctx: &mut Ctx, host: &str, paths: &[String]) -> Result<Vec<String>, String> {
    let h = ctx.hosts.get(host)?;
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let scan = rehost_host::scan_keys(h, &paths, ctx.cancel)
        .map_err(|e| format!("failed to read the SSH host keys of host `{host}`: {e}"))?;
    if !scan.errors.is_empty() {
        return Err(format!(
            "failed to read the SSH host keys of host `{host}`: {}",
            rehost_plan::escape_control(&scan.errors.join("; "))
        ));
    }
    let mut keys: Vec<String> = scan
        .found
        .iter()
        .filter(|f| {
            matches!(
                f.key.kind,
                rehost_keys::Kind::SshPublic | rehost_keys::Kind::SshPrivate
            )
        })
        .filter_map(|f| f.key.ssh_sha256.clone())
        .collect();
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// The fingerprints of the host keys the SSH server at `addr` offers.
fn offered(addr: SocketAddr, timeout: Duration) -> Result<Vec<String>, String> {
    let mut child = Command::new("ssh-keyscan")
        .args(["-T", &timeout.as_secs().max(1).to_string(), "-p"])
        .arg(addr.port().to_string())
        .arg(addr.ip().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("failed to run ssh-keyscan: {e} (install openssh-client)"))?;
    let mut out = Vec::new();
    if let Some(o) = child.stdout.take() {
        o.take(MAX_KEYSCAN)
            .read_to_end(&mut out)
            .map_err(|e| format!("failed to read ssh-keyscan's answer: {e}"))?;
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut keys = Vec::new();
    for line in String::from_utf8_lossy(&out).lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // `HOST TYPE BASE64`: the key without the host is an OpenSSH public key line.
        let Some((_, key)) = line.split_once(' ') else {
            continue;
        };
        let (parsed, _) = rehost_keys::parse(format!("{key}\n").as_bytes());
        keys.extend(parsed.into_iter().filter_map(|k| k.ssh_sha256));
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
}

fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    let StepKind::AddressMoved {
        address: at,
        to,
        from,
        host_keys: paths,
    } = &step.kind
    else {
        unreachable!("the registry hands `address-moved` its own steps")
    };
    let at = match ctx.endpoint("address", at) {
        Ok(a) => a,
        Err(e) => return failed(e),
    };
    let Some(addr) = address(&at) else {
        return failed(format!("`{at}` is not IP, IP:PORT or [IPv6]:PORT"));
    };
    let to_keys = match host_keys(ctx, to, paths) {
        Ok(k) => k,
        Err(e) => return failed(e),
    };
    if to_keys.is_empty() {
        return failed(format!(
            "no SSH host key found on host `{to}` at {}: name where it keeps them with `host_keys`",
            paths.join(", ")
        ));
    }
    let from_keys = match from {
        Some(f) => match host_keys(ctx, f, paths) {
            Ok(k) => k,
            Err(e) => return failed(e),
        },
        None => Vec::new(),
    };
    if ctx.cancel.load(Ordering::Relaxed) {
        return Ok(Outcome::Cancelled);
    }
    let offered = match offered(addr, step.timeout.unwrap_or(KEYSCAN_TIMEOUT)) {
        Ok(k) => k,
        Err(e) => return failed(e),
    };
    let shared: Vec<&String> = to_keys.iter().filter(|k| from_keys.contains(k)).collect();
    let foreign: Vec<&String> = offered.iter().filter(|k| !to_keys.contains(k)).collect();
    let old: Vec<&String> = offered.iter().filter(|k| from_keys.contains(k)).collect();
    let moved = !offered.is_empty() && foreign.is_empty() && old.is_empty() && shared.is_empty();
    let data = Some(StepData::AddressMoved(Box::new(AddressMovedData {
        v: STEP_DATA_VERSION,
        address: addr.to_string(),
        to: to.clone(),
        from: from.clone(),
        offered: offered.clone(),
        to_keys: to_keys.clone(),
        from_keys: from_keys.clone(),
        moved,
    })));
    if moved {
        return Ok(Outcome::Done {
            detail: Some(format!(
                "{addr} answers as host `{to}`: the SSH server there offered {} host key(s), each one of `{to}`'s{}",
                offered.len(),
                if from.is_some() {
                    ", none of the old host's"
                } else {
                    ""
                }
            )),
            exit_code: None,
            confirmed_by: None,
            data,
        });
    }
    let why = if !shared.is_empty() {
        format!(
            "hosts `{to}` and `{}` hold the same SSH host key ({}): it cannot tell them apart, so it proves nothing here; prove the move another way (a `health` step against a page only the new host serves)",
            from.as_deref().unwrap_or("?"),
            shared
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else if offered.is_empty() {
        format!(
            "nothing at {addr} offered an SSH host key (no SSH server answered within the time): the address does not reach host `{to}` yet"
        )
    } else if !old.is_empty() {
        format!(
            "{addr} still answers as the old host `{}` (host key {}): the address has not moved",
            from.as_deref().unwrap_or("?"),
            old.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        format!(
            "{addr} answers with host key(s) {} that are not host `{to}`'s: something else holds the address",
            foreign
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Ok(Outcome::Failed {
        detail: why,
        exit_code: None,
        data,
    })
}
