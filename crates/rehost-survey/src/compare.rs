//! Two surveys compared (`rehost survey --compare OLD NEW`): what the old host has that the
//! new one lacks. Packages (missing, or an older version on the new host), units enabled at
//! boot, listening sockets, accounts and groups (missing, or another uid/gid, members missing),
//! cron jobs, timers, mounts in fstab, crypttab entries, kernel parameters set in the
//! configuration with another value, firewall rules.
//!
//! Expected differences are declared as for `verify-config` (`[survey]` in the plan, or
//! `--allow`/`--rewrite`): `rewrite` replaces text in the old host's keys and values first (its
//! host name, its addresses), and a difference whose key an `allow` glob matches is listed
//! apart as allowed, never dropped. What the new host has beyond the old one is not a finding.
//! Nothing of a side's gaps is compared: they are named in the result.

use crate::model::*;
use rehost_config::{Rewrite, wildcard};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What a comparison is told to expect.
#[derive(Clone, Debug, Default)]
pub struct Expect {
    /// Globs on the comparison's keys (`package linux-image-*`, `sysctl kernel.*`).
    pub allow: Vec<String>,
    /// Text replaced in the old host's keys and values before comparing.
    pub rewrite: Vec<Rewrite>,
}

/// How the new host falls short of the old one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shortfall {
    /// Not there at all.
    Missing,
    /// A package in an older version.
    Older,
    /// There, but not enabled at boot.
    NotEnabled,
    /// There with another value (a uid, a kernel parameter, a mount's type).
    Differs,
}

impl Shortfall {
    fn text(self) -> &'static str {
        match self {
            Shortfall::Missing => "missing",
            Shortfall::Older => "older",
            Shortfall::NotEnabled => "not enabled",
            Shortfall::Differs => "differs",
        }
    }
}

/// One thing the old host has that the new one lacks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `package nginx`, `unit nginx.service`, `port tcp 0.0.0.0:443`, `account postgres`,
    /// `cron root 15 2 * * * /usr/local/bin/backup`, `sysctl net.ipv4.ip_forward`,
    /// `firewall tcp dport 443 accept`: what `allow` globs match. Credentials in a command are
    /// shown as `***`.
    pub key: String,
    pub shortfall: Shortfall,
    /// The old host's value and where it is (a version, `uid 105`, `/etc/cron.d/backup:3`).
    pub old: String,
    /// The new host's value, where it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
    /// The glob that declared it expected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_by: Option<String>,
}

/// The result: what is missing, what was allowed, what was compared and what was not.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Comparison {
    pub missing: Vec<Finding>,
    pub allowed: Vec<Finding>,
    /// Per category, how many of the old host's entries were compared.
    pub compared: BTreeMap<&'static str, usize>,
    /// What was not compared, and why.
    pub not_compared: Vec<String>,
}

impl Comparison {
    /// Nothing of the old host is missing on the new one (allowed differences aside).
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }
}

fn rewrite(s: &str, rw: &[Rewrite]) -> String {
    rw.iter()
        .fold(s.to_owned(), |acc, r| acc.replace(&r.from, &r.to))
}

/// An entry of one side: what identifies it (compared), what is shown, and its value.
struct Item {
    id: String,
    key: String,
    value: String,
    /// The value compared (a version, a uid); what the old one must equal or not exceed.
    compare: Option<String>,
}

fn item(id: String, value: String) -> Item {
    Item {
        key: id.clone(),
        id,
        value,
        compare: None,
    }
}

struct Run<'a> {
    expect: &'a Expect,
    out: Comparison,
}

impl Run<'_> {
    fn push(&mut self, key: String, shortfall: Shortfall, old: String, new: Option<String>) {
        let allowed_by = self
            .expect
            .allow
            .iter()
            .find(|g| wildcard(g, &key, true))
            .cloned();
        let f = Finding {
            key,
            shortfall,
            old,
            new,
            allowed_by,
        };
        if f.allowed_by.is_some() {
            self.out.allowed.push(f);
        } else {
            self.out.missing.push(f);
        }
    }

    /// Each old item whose id the new side lacks is missing; with `cmp`, one whose compared
    /// value `cmp` finds short is reported with `short`.
    fn category(
        &mut self,
        name: &'static str,
        old: Vec<Item>,
        new: Vec<Item>,
        short: Shortfall,
        cmp: fn(&str, &str) -> bool,
    ) {
        *self.out.compared.entry(name).or_default() += old.len();
        let rw = &self.expect.rewrite;
        let mut by_id: BTreeMap<String, Vec<&Item>> = BTreeMap::new();
        for n in &new {
            by_id.entry(n.id.clone()).or_default().push(n);
        }
        for o in old {
            let id = rewrite(&o.id, rw);
            let key = rewrite(&o.key, rw);
            let value = rewrite(&o.value, rw);
            match by_id.get_mut(&id) {
                None => self.push(key, Shortfall::Missing, value, None),
                Some(ns) if ns.is_empty() => self.push(key, Shortfall::Missing, value, None),
                Some(ns) => {
                    // Each new entry answers for one old entry (two identical cron lines
                    // need two).
                    let n = ns.remove(0);
                    if let (Some(oc), Some(nc)) = (&o.compare, &n.compare) {
                        let oc = rewrite(oc, rw);
                        if cmp(&oc, nc) {
                            self.push(key, short, value, Some(n.value.clone()));
                        }
                    }
                }
            }
        }
    }
}

fn differs(a: &str, b: &str) -> bool {
    a != b
}

fn older(old: &str, new: &str) -> bool {
    version_cmp(new, old) == Ordering::Less
}

/// Compares what `old` has with what `new` has.
pub fn compare(old: &Inventory, new: &Inventory, expect: &Expect) -> Comparison {
    let mut run = Run {
        expect,
        out: Comparison::default(),
    };

    // Packages: missing, or older.
    let pkgs = |inv: &Inventory| -> Vec<Item> {
        inv.packages
            .iter()
            .map(|p| Item {
                id: format!("package {}", p.name),
                key: format!("package {}", p.name),
                value: p.version.clone(),
                compare: Some(p.version.clone()),
            })
            .collect()
    };
    run.category("packages", pkgs(old), pkgs(new), Shortfall::Older, older);

    // Units enabled at boot.
    let units = |inv: &Inventory, enabled_only: bool| -> Vec<Item> {
        inv.units
            .iter()
            .filter(|u| u.enabled || !enabled_only)
            .map(|u| Item {
                compare: Some(u.enabled.to_string()),
                ..item(
                    format!("unit {}", u.name),
                    if u.enabled { "enabled" } else { "not enabled" }.into(),
                )
            })
            .collect()
    };
    run.category(
        "units",
        units(old, true),
        units(new, false),
        Shortfall::NotEnabled,
        |_, n| n != "true",
    );

    // Listening sockets: a wildcard address on the new host serves any address of the old.
    let wild = |a: &str| matches!(a, "0.0.0.0" | "::" | "*" | "[::]");
    let proto = |p: Proto| match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
        Proto::Unix => "unix",
    };
    let listen_key = |l: &Listen| match l.proto {
        Proto::Unix => format!("port unix {}", l.address),
        p => format!("port {} {}:{}", proto(p), l.address, l.port),
    };
    let mut olds: Vec<&Listen> = old.sockets.iter().map(|s| &s.listen).collect();
    olds.sort();
    olds.dedup();
    run.out.compared.insert("ports", olds.len());
    for l in olds {
        let key = rewrite(&listen_key(l), &expect.rewrite);
        let addr = rewrite(&l.address, &expect.rewrite);
        let served = new.sockets.iter().any(|n| {
            let n = &n.listen;
            n.proto == l.proto
                && n.port == l.port
                && (n.address == addr || (l.proto != Proto::Unix && wild(&n.address)))
        });
        if !served {
            let owner = old
                .sockets
                .iter()
                .find(|s| &s.listen == l)
                .and_then(|s| s.service.clone())
                .unwrap_or_else(|| "no service known".into());
            run.push(key, Shortfall::Missing, owner, None);
        }
    }

    // Accounts and groups: missing, or another uid/gid (files keep numeric owners).
    let accounts = |inv: &Inventory| -> Vec<Item> {
        inv.accounts
            .iter()
            .map(|a| Item {
                compare: Some(format!("uid {} gid {}", a.uid, a.gid)),
                ..item(
                    format!("account {}", a.name),
                    format!("uid {} gid {}", a.uid, a.gid),
                )
            })
            .collect()
    };
    run.category(
        "accounts",
        accounts(old),
        accounts(new),
        Shortfall::Differs,
        differs,
    );
    let groups = |inv: &Inventory| -> Vec<Item> {
        inv.groups
            .iter()
            .map(|g| Item {
                compare: Some(format!("gid {}", g.gid)),
                ..item(format!("group {}", g.name), format!("gid {}", g.gid))
            })
            .collect()
    };
    run.category(
        "groups",
        groups(old),
        groups(new),
        Shortfall::Differs,
        differs,
    );
    for g in &old.groups {
        let name = rewrite(&g.name, &expect.rewrite);
        let Some(n) = new.groups.iter().find(|n| n.name == name) else {
            continue;
        };
        for m in &g.members {
            let m = rewrite(m, &expect.rewrite);
            if !n.members.contains(&m) {
                run.push(
                    format!("group {name} member {m}"),
                    Shortfall::Missing,
                    format!("member of {name}"),
                    None,
                );
            }
        }
    }

    // Cron jobs, by who runs what when (the file may move, as from a crontab to cron.d).
    let cron = |inv: &Inventory| -> Vec<Item> {
        inv.cron
            .iter()
            .map(|c| Item {
                id: format!("cron {} {} {}", c.user, c.schedule, c.command),
                key: format!(
                    "cron {} {} {}",
                    c.user,
                    c.schedule,
                    rehost_plan::redact(&c.command)
                ),
                value: format!("{}:{}", c.file, c.line),
                compare: None,
            })
            .collect()
    };
    run.category(
        "cron jobs",
        cron(old),
        cron(new),
        Shortfall::Missing,
        differs,
    );

    // Timers: missing, not enabled, or another schedule.
    let timers = |inv: &Inventory| -> Vec<Item> {
        inv.timers
            .iter()
            .map(|t| Item {
                compare: Some(format!("{} {}", t.schedule.join(" "), t.enabled)),
                ..item(
                    format!("timer {}", t.name),
                    format!(
                        "{} ({}{})",
                        t.schedule.join(" "),
                        t.file,
                        if t.enabled { "" } else { ", not enabled" }
                    ),
                )
            })
            .collect()
    };
    run.category(
        "timers",
        timers(old),
        timers(new),
        Shortfall::Differs,
        differs,
    );

    // Mounts that come back at boot: by target, with their type.
    let mounts = |inv: &Inventory| -> Vec<Item> {
        inv.mounts
            .iter()
            .filter(|m| m.in_fstab)
            .map(|m| Item {
                compare: Some(m.fstype.clone()),
                ..item(
                    format!("mount {}", m.target),
                    format!("{} {}", m.fstype, m.source),
                )
            })
            .collect()
    };
    run.category(
        "mounts",
        mounts(old),
        mounts(new),
        Shortfall::Differs,
        differs,
    );
    let crypt = |inv: &Inventory| -> Vec<Item> {
        inv.crypttab
            .iter()
            .map(|c| {
                item(
                    format!("crypttab {}", c.name),
                    format!("/etc/crypttab:{}", c.line),
                )
            })
            .collect()
    };
    run.category(
        "crypttab",
        crypt(old),
        crypt(new),
        Shortfall::Missing,
        differs,
    );

    // Kernel parameters the old host's configuration sets.
    let sysctl = |inv: &Inventory, set_only: bool| -> Vec<Item> {
        inv.sysctl
            .iter()
            .filter(|s| s.set_in.is_some() || !set_only)
            .map(|s| Item {
                compare: Some(s.value.clone()),
                ..item(
                    format!("sysctl {}", s.key),
                    match &s.set_in {
                        Some(at) => format!("{} ({at})", s.value),
                        None => s.value.clone(),
                    },
                )
            })
            .collect()
    };
    run.category(
        "kernel parameters",
        sysctl(old, true),
        sysctl(new, false),
        Shortfall::Differs,
        differs,
    );
    if old.sysctl.iter().any(|s| s.set_in.is_none()) {
        run.out.not_compared.push(
            "kernel parameters the old host's configuration does not set (their running values differ between any two hosts)".into(),
        );
    }

    // Firewall rules, line by line.
    match (&old.firewall, &new.firewall) {
        (Some(o), Some(n)) => {
            let rules = |f: &Firewall| -> Vec<Item> {
                f.rules
                    .iter()
                    .map(|r| item(format!("firewall {}", r.trim()), f.tool.clone()))
                    .collect()
            };
            run.category(
                "firewall rules",
                rules(o),
                rules(n),
                Shortfall::Missing,
                differs,
            );
        }
        (Some(o), None) => {
            run.out.compared.insert("firewall rules", o.rules.len());
            run.push(
                "firewall".into(),
                Shortfall::Missing,
                format!("{} rules ({})", o.rules.len(), o.tool),
                None,
            );
        }
        (None, _) => run
            .out
            .not_compared
            .push("firewall rules: none read on the old host".into()),
    }

    for (side, inv) in [("old", old), ("new", new)] {
        for g in &inv.gaps {
            run.out
                .not_compared
                .push(format!("{side} host did not survey {}: {}", g.what, g.why));
        }
    }
    run.out.missing.sort_by(|a, b| a.key.cmp(&b.key));
    run.out.allowed.sort_by(|a, b| a.key.cmp(&b.key));
    run.out
}

/// dpkg's version order (`[epoch:]upstream[-revision]`, `~` before anything, letters before
/// other characters, digits compared as numbers); RPM versions of the usual shape order the
/// same.
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    let split = |v: &str| -> (u64, String, String) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) if e.chars().all(|c| c.is_ascii_digit()) && !e.is_empty() => {
                (e.parse().unwrap_or(u64::MAX), r)
            }
            _ => (0, v),
        };
        let (up, rev) = match rest.rsplit_once('-') {
            Some((u, r)) => (u, r),
            None => (rest, ""),
        };
        (epoch, up.to_owned(), rev.to_owned())
    };
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| part_cmp(&ua, &ub))
        .then_with(|| part_cmp(&ra, &rb))
}

fn order(c: Option<char>) -> i64 {
    match c {
        None => 0,
        Some('~') => -1,
        Some(c) if c.is_ascii_alphabetic() => c as i64,
        Some(c) => c as i64 + 256,
    }
}

fn part_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        // The non-digit prefix, character by character.
        loop {
            let ca = a
                .first()
                .filter(|c| !c.is_ascii_digit())
                .map(|&c| c as char);
            let cb = b
                .first()
                .filter(|c| !c.is_ascii_digit())
                .map(|&c| c as char);
            if ca.is_none() && cb.is_none() {
                break;
            }
            let o = order(ca).cmp(&order(cb));
            if o != Ordering::Equal {
                return o;
            }
            a = &a[1..];
            b = &b[1..];
        }
        // The digits, as a number.
        let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
        let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let na = std::str::from_utf8(&a[..da])
            .unwrap_or("0")
            .trim_start_matches('0');
        let nb = std::str::from_utf8(&b[..db])
            .unwrap_or("0")
            .trim_start_matches('0');
        let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
        if o != Ordering::Equal {
            return o;
        }
        a = &a[da..];
        b = &b[db..];
    }
    Ordering::Equal
}

/// The comparison for a person: each missing entry on a line, then the allowed ones, then
/// what was compared and what was not. Every text from a host is escaped.
pub fn render_human(c: &Comparison, old: &str, new: &str) -> String {
    let e = rehost_plan::escape_control;
    let mut s = String::new();
    let line = |s: &mut String, f: &Finding| {
        let _ = write!(s, "  {:<11} {}", f.shortfall.text(), e(&f.key));
        let _ = write!(s, "  (old: {}", e(&f.old));
        if let Some(n) = &f.new {
            let _ = write!(s, "; new: {}", e(n));
        }
        s.push_str(")\n");
    };
    if !c.missing.is_empty() {
        let _ = writeln!(s, "{} has what {} lacks:", e(old), e(new));
        for f in &c.missing {
            line(&mut s, f);
        }
    }
    if !c.allowed.is_empty() {
        let _ = writeln!(s, "\nallowed differences (declared expected, not counted):");
        for f in &c.allowed {
            line(&mut s, f);
            if let Some(by) = &f.allowed_by {
                let _ = writeln!(s, "              allowed by {}", e(by));
            }
        }
    }
    if !c.not_compared.is_empty() {
        let _ = writeln!(s, "\nnot compared:");
        for n in &c.not_compared {
            let _ = writeln!(s, "  {}", e(n));
        }
    }
    let compared: Vec<String> = c.compared.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let _ = writeln!(
        s,
        "\n{} → {}: {} missing, {} allowed; compared {}",
        e(old),
        e(new),
        c.missing.len(),
        c.allowed.len(),
        compared.join(", ")
    );
    s
}

#[cfg(test)]
mod tests;
