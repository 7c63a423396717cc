//! Who depends on a server, from listings sampled over time (`rehost conns watch`): a
//! [`Tracker`]'s connections grouped by client address and local port, with when each client
//! was first and last seen and how many connections it made. Pure.

use super::Tracker;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One client address connected to one local port during a watch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub peer_addr: IpAddr,
    pub local_port: u16,
    /// Distinct connections seen (by the client's port), at most the tracker's bound.
    pub connections: u64,
    /// Milliseconds from the first listing to the first one that showed it.
    pub first_seen_ms: u64,
    /// Milliseconds from the first listing to the last one that showed it.
    pub last_seen_ms: u64,
    /// Connected at the last listing.
    pub connected_at_end: bool,
    /// The processes holding the service's end, where visible (pids, each once).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<String>,
}

impl Seen {
    /// How long it was seen: from the first listing that showed it to the last.
    pub fn seen_for_ms(&self) -> u64 {
        self.last_seen_ms - self.first_seen_ms
    }
}

/// The tracker's clients grouped by (client address, local port), ordered by local port and
/// address. `times`: the times of every listing the tracker observed, in order, on the same
/// clock as [`Tracker::observe`]'s (the first is the origin).
pub fn summarize(tracker: &Tracker, times: &[u64]) -> Vec<Seen> {
    let origin = times.first().copied().unwrap_or(0);
    let rel: Vec<u64> = times.iter().map(|t| t - origin).collect();
    let end = rel.last().copied().unwrap_or(0);
    // The last listing before the one in which the client was no longer there.
    let last_before = |left: u64| {
        let i = rel.partition_point(|&t| t < left);
        rel[..i].last().copied().unwrap_or(0)
    };
    let mut m: BTreeMap<(u16, IpAddr), Seen> = BTreeMap::new();
    for c in tracker.clients() {
        let last = match c.left_ms {
            Some(l) => last_before(l),
            None => end,
        };
        let s = m.entry((c.local_port, c.peer_addr)).or_insert(Seen {
            peer_addr: c.peer_addr,
            local_port: c.local_port,
            connections: 0,
            first_seen_ms: c.first_seen_ms,
            last_seen_ms: last,
            connected_at_end: false,
            processes: Vec::new(),
        });
        s.connections += 1;
        s.first_seen_ms = s.first_seen_ms.min(c.first_seen_ms);
        s.last_seen_ms = s.last_seen_ms.max(last);
        s.connected_at_end |= c.left_ms.is_none();
        if let Some(pid) = c.pid {
            let p = match &c.command {
                Some(cmd) => format!("{pid} ({})", rehost_tree::escape::text(cmd)),
                None => pid.to_string(),
            };
            if !s.processes.contains(&p) && s.processes.len() < 16 {
                s.processes.push(p);
            }
        }
    }
    m.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conns::Connection;

    fn conn(peer: &str, peer_port: u16, local_port: u16) -> Connection {
        Connection {
            local_addr: "127.0.0.1".parse().unwrap(),
            local_port,
            peer_addr: peer.parse().unwrap(),
            peer_port,
            send_queue: 0,
            recv_queue: 0,
            uid: 0,
            inode: 1,
            pid: Some(9),
            command: Some("svc".into()),
        }
    }

    #[test]
    fn clients_are_grouped_by_address_and_port_with_first_and_last_listing() {
        let mut t = Tracker::default();
        let times = [1000, 2000, 3000, 4000];
        // 10.0.0.1 connects twice (two client ports) to 5432; 10.0.0.2 only in the middle.
        t.observe(&[conn("10.0.0.1", 40000, 5432)], times[0]);
        t.observe(
            &[conn("10.0.0.1", 40000, 5432), conn("10.0.0.2", 50000, 5432)],
            times[1],
        );
        t.observe(&[conn("10.0.0.1", 40001, 5432)], times[2]);
        t.observe(
            &[conn("10.0.0.1", 40001, 5432), conn("10.0.0.1", 1, 80)],
            times[3],
        );
        let s = summarize(&t, &times);
        let got: Vec<(u16, String, u64, u64, u64, bool)> = s
            .iter()
            .map(|s| {
                (
                    s.local_port,
                    s.peer_addr.to_string(),
                    s.connections,
                    s.first_seen_ms,
                    s.last_seen_ms,
                    s.connected_at_end,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (80, "10.0.0.1".into(), 1, 3000, 3000, true),
                (5432, "10.0.0.1".into(), 2, 0, 3000, true),
                (5432, "10.0.0.2".into(), 1, 1000, 1000, false),
            ]
        );
        assert_eq!(s[1].seen_for_ms(), 3000);
        assert_eq!(s[1].processes, vec!["9 (svc)".to_owned()]);
    }
}
